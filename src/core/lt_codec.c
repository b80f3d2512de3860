/*
 * lt_codec.c: request and response bodies <-> tensors.
 *
 * Decoding MessagePack does not use msgpack-c's unpacker.  Even with
 * every length checked beforehand, msgpack_unpack_next() builds a tree
 * of msgpack_object in a zone it mallocs itself: 24 bytes per array
 * element and 48 per map entry, so a body of one-byte integers costs 24
 * times its size outside the caller's pool before the first float is
 * converted (a 4 MB nested-array body: about 100 MB of malloc in a
 * worker).  Instead a validating pre-scan walks the bytes once (every
 * declared length against the bytes left, depth at most 32, exactly one
 * object), and the decoder then reads the validated bytes in place.  The
 * only memory a decode takes is the output, from the caller's allocator,
 * at most 4 bytes per float and never before the shape, the element
 * limit and the data length have been checked.  Encoding uses msgpack-c's
 * packer with a write callback into one buffer whose size a first,
 * counting pass computed exactly.
 *
 * JSON goes through cJSON (its tree is malloc'ed and always deleted
 * before returning), after a pre-scan that bounds nesting depth and
 * rejects what cJSON would accept but JSON does not.  cJSON's tree takes
 * about 32 times the body (64 bytes per value), so its allocations are
 * counted per decode, per thread, and a parse fails once they pass
 * lt_codec_json_cap().
 *
 * A request's tensors are finite: NaN or Inf in x or y would poison the
 * model for good (one step, and every later prediction is NaN), so the
 * request decoders reject them, in one pass over the decoded floats.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <msgpack.h>

#include "lt_codec.h"


#define LT_MP_MAX_DEPTH    32
#define LT_JSON_MAX_DEPTH  32
#define LT_NAME_MAX        64

/* Shapes from a request are multiplied in uint64_t; without a configured
 * limit this keeps element counts (and counts * 8 bytes) far from
 * overflow in code that later does arithmetic on them. */
#define LT_NUMEL_LIMIT     ((uint64_t) INT64_MAX / 16)

/* lt_codec_json_cap(): what cJSON may allocate for one body */
#define LT_JSON_PER_BYTE   64
#define LT_JSON_PER_ELEM   (4 * sizeof(cJSON))
#define LT_JSON_SLACK      ((size_t) 1 << 20)

#if defined(__GNUC__)
#define LT_THREAD_LOCAL    __thread
#else
#define LT_THREAD_LOCAL    _Thread_local
#endif


/* ---- MessagePack reader ---------------------------------------------- */

enum {
    LT_MP_NIL = 0,
    LT_MP_BOOL,
    LT_MP_UINT,
    LT_MP_INT,
    LT_MP_FLOAT,
    LT_MP_STR,
    LT_MP_BIN,
    LT_MP_ARRAY,
    LT_MP_MAP,
    LT_MP_EXT
};

typedef struct {
    const uint8_t  *buf;
    size_t          len;
    size_t          pos;
} lt_mp;

typedef struct {
    int             type;
    int             boolean;
    uint64_t        u;
    int64_t         i;
    double          f;
    const uint8_t  *ptr;        /* str, bin, ext bytes (unaligned) */
    uint32_t        n;          /* bytes of str/bin/ext, entries of array/map */
} lt_mpv;


static uint64_t
lt_be(const uint8_t *p, int n)
{
    uint64_t  v;
    int       i;

    v = 0;
    for (i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }

    return v;
}


/* Two's complement of a big- or little-endian field of 1..8 bytes, by
 * arithmetic: converting an out-of-range unsigned value to a signed type
 * is implementation-defined in C99. */
static int64_t
lt_sext(uint64_t n, int bytes)
{
    uint64_t  sign;

    sign = (uint64_t) 1 << (bytes * 8 - 1);
    if ((n & sign) == 0) {
        return (int64_t) n;
    }

    /* n - 2^(8 * bytes) == -((2^(8 * bytes) - 1 - n) + 1), and the inner
     * term is below 2^63 */
    return -(int64_t) (~n & (sign | (sign - 1))) - 1;
}


/*
 * Reads one value's header (and scalar payload, or the position of str,
 * bin and ext bytes).  Arrays and maps: only the header; their entries
 * follow.  Every length is checked against the bytes left, so a declared
 * array of 2^32 entries in a 5-byte body fails here, before anything is
 * built for it: an array entry takes at least 1 byte, a map entry 2.
 */
static int
lt_mp_read(lt_mp *mp, lt_mpv *v)
{
    const uint8_t  *p;
    uint64_t        n, need;
    size_t          left, hdr;
    uint32_t        f32;
    uint8_t         b;
    float           fv;
    double          dv;
    int             lsz;

    left = mp->len - mp->pos;
    if (left == 0) {
        return -1;
    }

    p = mp->buf + mp->pos;
    b = p[0];
    v->ptr = NULL;
    v->n = 0;

    if (b <= 0x7f) {
        v->type = LT_MP_UINT;
        v->u = b;
        mp->pos++;
        return 0;
    }

    if (b >= 0xe0) {
        v->type = LT_MP_INT;
        v->i = (int64_t) b - 256;
        mp->pos++;
        return 0;
    }

    /* containers and byte strings: a length field of lsz bytes after a
     * header byte, or the length inside the header byte (lsz 0) */
    lsz = -1;
    n = 0;

    if ((b & 0xf0) == 0x80) {
        v->type = LT_MP_MAP;
        n = b & 0x0f;
        lsz = 0;

    } else if ((b & 0xf0) == 0x90) {
        v->type = LT_MP_ARRAY;
        n = b & 0x0f;
        lsz = 0;

    } else if ((b & 0xe0) == 0xa0) {
        v->type = LT_MP_STR;
        n = b & 0x1f;
        lsz = 0;

    } else {
        switch (b) {
        case 0xc4: v->type = LT_MP_BIN; lsz = 1; break;
        case 0xc5: v->type = LT_MP_BIN; lsz = 2; break;
        case 0xc6: v->type = LT_MP_BIN; lsz = 4; break;
        case 0xd9: v->type = LT_MP_STR; lsz = 1; break;
        case 0xda: v->type = LT_MP_STR; lsz = 2; break;
        case 0xdb: v->type = LT_MP_STR; lsz = 4; break;
        case 0xdc: v->type = LT_MP_ARRAY; lsz = 2; break;
        case 0xdd: v->type = LT_MP_ARRAY; lsz = 4; break;
        case 0xde: v->type = LT_MP_MAP; lsz = 2; break;
        case 0xdf: v->type = LT_MP_MAP; lsz = 4; break;
        default: break;
        }
    }

    if (lsz >= 0) {
        hdr = 1 + (size_t) lsz;
        if (left < hdr) {
            return -1;
        }

        if (lsz > 0) {
            n = lt_be(p + 1, lsz);
        }

        switch (v->type) {
        case LT_MP_ARRAY:
            need = n;
            break;
        case LT_MP_MAP:
            need = 2 * n;
            break;
        default:
            need = n;
            v->ptr = p + hdr;
            break;
        }

        if (need > left - hdr) {
            return -1;
        }

        v->n = (uint32_t) n;
        mp->pos += hdr;
        if (v->ptr != NULL) {
            mp->pos += (size_t) n;
        }

        return 0;
    }

    /* fixed-size scalars and ext */
    switch (b) {
    case 0xc0:
        v->type = LT_MP_NIL;
        hdr = 1;
        break;

    case 0xc2:
    case 0xc3:
        v->type = LT_MP_BOOL;
        v->boolean = (b == 0xc3);
        hdr = 1;
        break;

    case 0xca:
    case 0xcb:
        hdr = (b == 0xca) ? 5 : 9;
        if (left < hdr) {
            return -1;
        }
        v->type = LT_MP_FLOAT;
        if (b == 0xca) {
            f32 = (uint32_t) lt_be(p + 1, 4);
            memcpy(&fv, &f32, 4);
            v->f = fv;
        } else {
            n = lt_be(p + 1, 8);
            memcpy(&dv, &n, 8);
            v->f = dv;
        }
        break;

    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        hdr = 1 + ((size_t) 1 << (b - 0xcc));
        if (left < hdr) {
            return -1;
        }
        v->type = LT_MP_UINT;
        v->u = lt_be(p + 1, (int) hdr - 1);
        break;

    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        hdr = 1 + ((size_t) 1 << (b - 0xd0));
        if (left < hdr) {
            return -1;
        }
        v->type = LT_MP_INT;
        v->i = lt_sext(lt_be(p + 1, (int) hdr - 1), (int) hdr - 1);
        break;

    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        /* fixext: one type byte and 1..16 data bytes */
        hdr = 2 + ((size_t) 1 << (b - 0xd4));
        if (left < hdr) {
            return -1;
        }
        v->type = LT_MP_EXT;
        v->ptr = p + 2;
        v->n = (uint32_t) (hdr - 2);
        break;

    case 0xc7:
    case 0xc8:
    case 0xc9:
        lsz = (b == 0xc7) ? 1 : (b == 0xc8) ? 2 : 4;
        hdr = 2 + (size_t) lsz;
        if (left < hdr) {
            return -1;
        }
        n = lt_be(p + 1, lsz);
        if (n > left - hdr) {
            return -1;
        }
        v->type = LT_MP_EXT;
        v->ptr = p + hdr;
        v->n = (uint32_t) n;
        hdr += (size_t) n;
        break;

    default:
        /* 0xc1 is reserved: never valid */
        return -1;
    }

    mp->pos += hdr;
    return 0;
}


/*
 * Validates (err != NULL) or skips one whole value.  Recursion is bounded
 * by LT_MP_MAX_DEPTH; msgpack-c itself gives up at 32 levels as well.
 */
static int
lt_mp_skip(lt_mp *mp, int depth, lt_err *err)
{
    lt_mpv    v;
    uint64_t  i, n;

    if (lt_mp_read(mp, &v) != 0) {
        return lt_error(err, "body is not valid MessagePack");
    }

    if (v.type != LT_MP_ARRAY && v.type != LT_MP_MAP) {
        return 0;
    }

    if (depth >= LT_MP_MAX_DEPTH) {
        return lt_error(err, "MessagePack nesting is deeper than %d levels",
                        LT_MP_MAX_DEPTH);
    }

    n = (v.type == LT_MP_MAP) ? 2 * (uint64_t) v.n : v.n;
    for (i = 0; i < n; i++) {
        if (lt_mp_skip(mp, depth + 1, err) != 0) {
            return -1;
        }
    }

    return 0;
}


/* The whole body must be exactly one valid value. */
static int
lt_mp_validate(const uint8_t *buf, size_t len, lt_err *err)
{
    lt_mp  mp;

    if (len == 0) {
        return lt_error(err, "body is empty");
    }

    mp.buf = buf;
    mp.len = len;
    mp.pos = 0;

    if (lt_mp_skip(&mp, 0, err) != 0) {
        return -1;
    }

    if (mp.pos != len) {
        return lt_error(err, "trailing bytes after the MessagePack body");
    }

    return 0;
}


/* Reads a map key: str and bin keys come back as such; any other key
 * (even a container) is skipped and comes back as LT_MP_NIL. */
static void
lt_mp_key(lt_mp *mp, lt_mpv *k)
{
    size_t  at;

    at = mp->pos;
    (void) lt_mp_read(mp, k);

    if (k->type == LT_MP_ARRAY || k->type == LT_MP_MAP) {
        mp->pos = at;
        (void) lt_mp_skip(mp, 0, NULL);
        k->type = LT_MP_NIL;
    }
}


static int
lt_mp_is(const lt_mpv *k, const char *s)
{
    size_t  n;

    n = strlen(s);
    return (k->type == LT_MP_STR || k->type == LT_MP_BIN)
           && k->n == n && memcmp(k->ptr, s, n) == 0;
}


static int
lt_mp_is_number(const lt_mpv *v)
{
    return v->type == LT_MP_UINT || v->type == LT_MP_INT
           || v->type == LT_MP_FLOAT;
}


static float
lt_mp_float(const lt_mpv *v)
{
    switch (v->type) {
    case LT_MP_UINT:
        return (float) v->u;
    case LT_MP_INT:
        return (float) v->i;
    default:
        return (float) v->f;
    }
}


static const char *
lt_mp_type_name(int type)
{
    static const char *const  names[] = {
        "nil", "boolean", "integer", "integer", "float", "str", "bin",
        "array", "map", "ext"
    };

    return names[type];
}


/* ---- decoding helpers shared by MessagePack and JSON ------------------ */

typedef struct {
    const lt_codec_ctx  *c;
    lt_err              *err;
    char                 name[LT_NAME_MAX + 4];   /* for messages */
} lt_dec;


/* Names go into error messages that end up in a JSON reply: keep them
 * short and printable ASCII without quotes or backslashes. */
static void
lt_dec_name(lt_dec *d, const uint8_t *s, size_t n)
{
    size_t  i, m;

    m = n < LT_NAME_MAX ? n : LT_NAME_MAX;
    for (i = 0; i < m; i++) {
        d->name[i] = (s[i] < 0x20 || s[i] >= 0x7f || s[i] == '"'
                      || s[i] == '\\') ? '?' : (char) s[i];
    }

    if (n > m) {
        memcpy(d->name + m, "...", 3);
        m += 3;
    }

    d->name[m] = '\0';
}


static void
lt_sanitize(char *dst, size_t size, const uint8_t *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n && i + 1 < size; i++) {
        dst[i] = (s[i] < 0x20 || s[i] >= 0x7f || s[i] == '"'
                  || s[i] == '\\') ? '?' : (char) s[i];
    }

    dst[i] = '\0';
}


static uint64_t
lt_mul_sat(uint64_t a, uint64_t b)
{
    if (a != 0 && b > UINT64_MAX / a) {
        return UINT64_MAX;
    }

    return a * b;
}


static void
lt_fmt_shape(char *buf, size_t size, int ndim, const uint64_t *dims)
{
    size_t  len;
    int     i;

    len = (size_t) snprintf(buf, size, "[");
    for (i = 0; i < ndim && len < size; i++) {
        len += (size_t) snprintf(buf + len, size - len, "%s%llu",
                                 i ? ", " : "", (unsigned long long) dims[i]);
    }

    if (len < size) {
        snprintf(buf + len, size - len, "]");
    }
}


/*
 * Checks a shape before anything is allocated for it: the element count
 * against learn_max_elements, and (because a zero dimension makes any
 * other dimension "fit") the product of the non-zero dimensions against
 * the same limit, so no caller ever multiplies dimensions into overflow.
 */
static int
lt_dec_shape(lt_dec *d, int ndim, const uint64_t *dims, uint64_t *numel)
{
    uint64_t  n, nz, limit;
    char      shape[128];
    int       i;

    n = 1;
    nz = 1;
    for (i = 0; i < ndim; i++) {
        n = lt_mul_sat(n, dims[i]);
        nz = lt_mul_sat(nz, dims[i] ? dims[i] : 1);
    }

    limit = LT_NUMEL_LIMIT;
    if (d->c->max_elements != 0 && d->c->max_elements < limit) {
        limit = d->c->max_elements;
    }

    if (d->c->max_elements != 0 && n > d->c->max_elements) {
        if (n == UINT64_MAX) {
            return lt_error(d->err, "tensor has more than %llu elements, "
                            "learn_max_elements is %llu",
                            (unsigned long long) UINT64_MAX - 1,
                            (unsigned long long) d->c->max_elements);
        }

        return lt_error(d->err, "tensor has %llu elements, "
                        "learn_max_elements is %llu", (unsigned long long) n,
                        (unsigned long long) d->c->max_elements);
    }

    if (nz > limit) {
        lt_fmt_shape(shape, sizeof(shape), ndim, dims);
        return lt_error(d->err, "tensor \"%s\": shape %s is too large",
                        d->name, shape);
    }

    *numel = n;
    return 0;
}


static float *
lt_dec_alloc(lt_dec *d, uint64_t numel)
{
    float  *p;

    /* one float for an empty tensor, so data is never NULL */
    p = d->c->alloc(d->c->ctx, (size_t) (numel ? numel : 1) * sizeof(float));
    if (p == NULL) {
        lt_error(d->err, "out of memory decoding tensor \"%s\"", d->name);
    }

    return p;
}


static void
lt_dec_set(lt_tensor *t, float *data, int ndim, const uint64_t *dims)
{
    int  i;

    memset(t, 0, sizeof(*t));
    t->data = data;
    t->ndim = ndim;
    for (i = 0; i < ndim; i++) {
        t->shape[i] = (int64_t) dims[i];
    }
    t->owned = 0;               /* the caller's allocator owns it */
}


static int
lt_body_finite(const lt_body *b, lt_err *err)
{
    int64_t  at;

    at = b->has_x ? lt_tensor_nonfinite_at(&b->x) : -1;
    if (at >= 0) {
        return lt_error(err, "x has a non-finite value (NaN or Inf) at "
                        "element %lld", (long long) at);
    }

    at = b->has_y ? lt_tensor_nonfinite_at(&b->y) : -1;
    if (at >= 0) {
        return lt_error(err, "y has a non-finite value (NaN or Inf) at "
                        "element %lld", (long long) at);
    }

    return 0;
}


static int
lt_dec_dims_error(lt_dec *d, int ndim)
{
    return lt_error(d->err, "tensor has %d dimensions, at most %d are "
                    "supported", ndim, LT_MAX_DIMS);
}


/* A 0-d array (shape []) is a number, and a number is not a tensor: the
 * models take [N, features] or [features], and a nested-array reply
 * could not say "0-d" anyway. */
static int
lt_dec_scalar_error(lt_dec *d)
{
    return lt_error(d->err, "tensor \"%s\" has 0 dimensions, at least 1 is "
                    "needed", d->name);
}


typedef struct {
    const char  *name;
    int          size;
    int          integer;
} lt_dtype;

/* numpy's little-endian type strings (msgpack-numpy) and plain names */
static const lt_dtype  lt_dtypes[] = {
    { "<f4", 4, 0 }, { "<f8", 8, 0 }, { "<i4", 4, 1 }, { "<i8", 8, 1 },
    { "float32", 4, 0 }, { "float64", 8, 0 }, { "int32", 4, 1 },
    { "int64", 8, 1 }
};


static const lt_dtype *
lt_dtype_find(const uint8_t *s, size_t n)
{
    size_t  i;

    for (i = 0; i < sizeof(lt_dtypes) / sizeof(lt_dtypes[0]); i++) {
        if (strlen(lt_dtypes[i].name) == n
            && memcmp(lt_dtypes[i].name, s, n) == 0)
        {
            return &lt_dtypes[i];
        }
    }

    return NULL;
}


static int
lt_dtype_error(lt_dec *d, int numpy, const uint8_t *s, size_t n)
{
    char  buf[40];

    lt_sanitize(buf, sizeof(buf), s, n);

    if (numpy) {
        return lt_error(d->err, "tensor \"%s\": type \"%s\" is not supported, "
                        "use <f4, <f8, <i4 or <i8", d->name, buf);
    }

    return lt_error(d->err, "tensor \"%s\": dtype \"%s\" is not supported, "
                    "use float32, float64, int32 or int64", d->name, buf);
}


/* Little-endian bytes (unaligned, straight from the body) to floats. */
static void
lt_convert(float *out, const uint8_t *p, uint64_t numel, const lt_dtype *dt)
{
    uint64_t  i, u;
    uint32_t  one;
    uint8_t   first;
    float     f;
    double    g;
    int       k;

    one = 1;
    memcpy(&first, &one, 1);

    if (dt->size == 4 && !dt->integer && first == 1) {
        /* the common case: little-endian float32 on a little-endian host */
        memcpy(out, p, (size_t) numel * 4);
        return;
    }

    for (i = 0; i < numel; i++, p += dt->size) {
        u = 0;
        for (k = dt->size - 1; k >= 0; k--) {
            u = (u << 8) | p[k];
        }

        if (dt->size == 4) {
            if (dt->integer) {
                out[i] = (float) lt_sext(u, 4);
            } else {
                one = (uint32_t) u;
                memcpy(&f, &one, 4);
                out[i] = f;
            }

        } else if (dt->integer) {
            out[i] = (float) lt_sext(u, 8);

        } else {
            memcpy(&g, &u, 8);
            out[i] = (float) g;
        }
    }
}


/* ---- MessagePack tensors ---------------------------------------------- */

static int
lt_mp_nested_check(lt_dec *d, lt_mp *mp, int depth, int ndim,
    const uint64_t *dims, int *integer)
{
    lt_mpv    v;
    uint32_t  i;

    (void) lt_mp_read(mp, &v);

    if (depth < ndim) {
        if (v.type != LT_MP_ARRAY || v.n != dims[depth]) {
            return lt_error(d->err, "tensor \"%s\": ragged array at depth %d",
                            d->name, depth);
        }

        for (i = 0; i < v.n; i++) {
            if (lt_mp_nested_check(d, mp, depth + 1, ndim, dims, integer)
                != 0)
            {
                return -1;
            }
        }

        return 0;
    }

    if (v.type == LT_MP_ARRAY) {
        return lt_error(d->err, "tensor \"%s\": ragged array at depth %d",
                        d->name, depth);
    }

    if (!lt_mp_is_number(&v)) {
        return lt_error(d->err, "tensor \"%s\": element at depth %d is a %s, "
                        "not a number", d->name, depth,
                        lt_mp_type_name(v.type));
    }

    if (v.type == LT_MP_FLOAT) {
        *integer = 0;
    }

    return 0;
}


static void
lt_mp_nested_fill(lt_mp *mp, int depth, int ndim, float **out)
{
    lt_mpv    v;
    uint32_t  i;

    (void) lt_mp_read(mp, &v);

    if (depth < ndim) {
        for (i = 0; i < v.n; i++) {
            lt_mp_nested_fill(mp, depth + 1, ndim, out);
        }
        return;
    }

    *(*out)++ = lt_mp_float(&v);
}


/* Nested arrays: the shape comes from the first element at each level,
 * then one walk checks that the array is rectangular and all numbers,
 * and only then is the output allocated and filled by a second walk. */
static int
lt_mp_nested(lt_dec *d, lt_mp *mp, lt_tensor *t, int *integer)
{
    uint64_t   dims[LT_MAX_DIMS], numel;
    lt_mpv     v;
    float     *data, *p;
    lt_mp      m;
    int        ndim;

    m = *mp;
    ndim = 0;
    for ( ;; ) {
        (void) lt_mp_read(&m, &v);
        if (v.type != LT_MP_ARRAY) {
            break;
        }
        if (ndim < LT_MAX_DIMS) {
            dims[ndim] = v.n;
        }
        ndim++;
        if (v.n == 0) {
            break;
        }
    }

    if (ndim > LT_MAX_DIMS) {
        return lt_dec_dims_error(d, ndim);
    }

    if (lt_dec_shape(d, ndim, dims, &numel) != 0) {
        return -1;
    }

    m = *mp;
    *integer = 1;
    if (lt_mp_nested_check(d, &m, 0, ndim, dims, integer) != 0) {
        return -1;
    }

    data = lt_dec_alloc(d, numel);
    if (data == NULL) {
        return -1;
    }

    p = data;
    lt_mp_nested_fill(mp, 0, ndim, &p);
    lt_dec_set(t, data, ndim, dims);

    return 0;
}


enum { LT_K_ND = 0, LT_K_TYPE, LT_K_SHAPE, LT_K_DATA, LT_K_DTYPE, LT_K_N };

static const char *const  lt_tensor_keys[LT_K_N] = {
    "nd", "type", "shape", "data", "dtype"
};


static int
lt_mp_shape(lt_dec *d, lt_mp *mp, uint64_t *dims, int *ndim)
{
    lt_mpv    v, e;
    uint32_t  i;

    *ndim = 0;

    (void) lt_mp_read(mp, &v);
    if (v.type != LT_MP_ARRAY) {
        return lt_error(d->err, "tensor \"%s\": \"shape\" must be an array, "
                        "not a %s", d->name, lt_mp_type_name(v.type));
    }

    if (v.n > LT_MAX_DIMS) {
        return lt_dec_dims_error(d, (int) v.n);
    }

    for (i = 0; i < v.n; i++) {
        (void) lt_mp_read(mp, &e);
        if (e.type == LT_MP_UINT) {
            dims[i] = e.u;
        } else if (e.type == LT_MP_INT && e.i >= 0) {
            dims[i] = (uint64_t) e.i;
        } else {
            /* nested containers inside shape are not walked further:
             * the caller repositions after the whole map */
            return lt_error(d->err, "tensor \"%s\": \"shape\" must hold "
                            "non-negative integers", d->name);
        }
    }

    *ndim = (int) v.n;
    return 0;
}


/* The two map forms: msgpack-numpy (nd/type/shape/data, str or bin keys)
 * and {"shape", "dtype", "data"}; data is bin (or str, as old msgpack
 * sends bytes) in the given dtype, or an array of numbers. */
static int
lt_mp_tensor_map(lt_dec *d, lt_mp *mp, lt_tensor *t, int *integer,
    lt_encoding *enc)
{
    const lt_dtype  *dt;
    uint64_t         dims[LT_MAX_DIMS], numel;
    lt_tensor        flat;
    size_t           at[LT_K_N], end;
    lt_mpv           v, k, dv, tv;
    float           *data;
    char             shape[128];
    uint32_t         i;
    lt_mp            m;
    int              have[LT_K_N], j, numpy, ndim, flat_int;

    (void) lt_mp_read(mp, &v);
    memset(have, 0, sizeof(have));

    for (i = 0; i < v.n; i++) {
        lt_mp_key(mp, &k);
        for (j = 0; j < LT_K_N; j++) {
            if (lt_mp_is(&k, lt_tensor_keys[j])) {
                if (have[j]) {
                    return lt_error(d->err, "tensor \"%s\": duplicate key "
                                    "\"%s\"", d->name, lt_tensor_keys[j]);
                }
                have[j] = 1;
                at[j] = mp->pos;
                break;
            }
        }
        (void) lt_mp_skip(mp, 0, NULL);
    }

    end = mp->pos;
    m = *mp;

    numpy = have[LT_K_ND] || have[LT_K_TYPE];

    if (!numpy && !have[LT_K_SHAPE] && !have[LT_K_DATA]) {
        return lt_error(d->err, "tensor \"%s\" is a map without \"shape\" "
                        "and \"data\"", d->name);
    }

    if (have[LT_K_ND]) {
        m.pos = at[LT_K_ND];
        (void) lt_mp_read(&m, &tv);
        if (tv.type != LT_MP_BOOL) {
            return lt_error(d->err, "tensor \"%s\": \"nd\" must be true",
                            d->name);
        }
        if (!tv.boolean) {
            return lt_error(d->err, "tensor \"%s\" is a numpy scalar, "
                            "not an array", d->name);
        }
    }

    /* dtype: numpy's "type", or "dtype", float32 when absent */
    dt = &lt_dtypes[4];
    j = numpy ? LT_K_TYPE : LT_K_DTYPE;

    if (numpy && !have[LT_K_TYPE]) {
        return lt_error(d->err, "tensor \"%s\": missing \"type\"", d->name);
    }

    if (have[j]) {
        m.pos = at[j];
        (void) lt_mp_read(&m, &tv);
        if (tv.type != LT_MP_STR && tv.type != LT_MP_BIN) {
            return lt_error(d->err, "tensor \"%s\": \"%s\" must be a string, "
                            "not a %s", d->name, lt_tensor_keys[j],
                            lt_mp_type_name(tv.type));
        }
        dt = lt_dtype_find(tv.ptr, tv.n);
        if (dt == NULL) {
            return lt_dtype_error(d, numpy, tv.ptr, tv.n);
        }
    }

    if (!have[LT_K_SHAPE]) {
        return lt_error(d->err, "tensor \"%s\": missing \"shape\"", d->name);
    }

    if (!have[LT_K_DATA]) {
        return lt_error(d->err, "tensor \"%s\": missing \"data\"", d->name);
    }

    m.pos = at[LT_K_SHAPE];
    if (lt_mp_shape(d, &m, dims, &ndim) != 0) {
        return -1;
    }

    if (ndim == 0) {
        return lt_dec_scalar_error(d);
    }

    if (lt_dec_shape(d, ndim, dims, &numel) != 0) {
        return -1;
    }

    m.pos = at[LT_K_DATA];
    dv.type = LT_MP_NIL;
    (void) lt_mp_read(&m, &dv);

    if (dv.type == LT_MP_BIN || dv.type == LT_MP_STR) {
        /* numel * size cannot overflow: numel <= LT_NUMEL_LIMIT */
        if ((uint64_t) dv.n != numel * (uint64_t) dt->size) {
            lt_fmt_shape(shape, sizeof(shape), ndim, dims);
            return lt_error(d->err, "tensor \"%s\": data has %u bytes, "
                            "shape %s of %s needs %llu", d->name,
                            (unsigned) dv.n, shape, dt->name,
                            (unsigned long long) (numel * dt->size));
        }

        data = lt_dec_alloc(d, numel);
        if (data == NULL) {
            return -1;
        }

        lt_convert(data, dv.ptr, numel, dt);
        lt_dec_set(t, data, ndim, dims);
        *integer = dt->integer;

    } else if (dv.type == LT_MP_ARRAY) {
        m.pos = at[LT_K_DATA];
        if (lt_mp_nested(d, &m, &flat, &flat_int) != 0) {
            return -1;
        }

        if ((uint64_t) lt_tensor_numel(&flat) != numel) {
            lt_fmt_shape(shape, sizeof(shape), ndim, dims);
            return lt_error(d->err, "tensor \"%s\": data has %lld numbers, "
                            "shape %s needs %llu", d->name,
                            (long long) lt_tensor_numel(&flat), shape,
                            (unsigned long long) numel);
        }

        lt_dec_set(t, flat.data, ndim, dims);
        *integer = have[j] ? dt->integer : flat_int;

    } else {
        return lt_error(d->err, "tensor \"%s\": \"data\" must be bin or an "
                        "array, not a %s", d->name, lt_mp_type_name(dv.type));
    }

    *enc = numpy ? LT_ENC_NUMPY : LT_ENC_RAW;
    mp->pos = end;

    return 0;
}


static int
lt_mp_tensor(lt_dec *d, lt_mp *mp, lt_tensor *t, int *integer,
    lt_encoding *enc)
{
    lt_mpv  v;
    lt_mp   m;

    m = *mp;
    (void) lt_mp_read(&m, &v);

    if (v.type == LT_MP_ARRAY) {
        *enc = LT_ENC_NESTED;
        return lt_mp_nested(d, mp, t, integer);
    }

    if (v.type == LT_MP_MAP) {
        return lt_mp_tensor_map(d, mp, t, integer, enc);
    }

    return lt_error(d->err, "tensor \"%s\" must be an array or a map, "
                    "not a %s", d->name, lt_mp_type_name(v.type));
}


static int
lt_mp_body(const lt_codec_ctx *c, const uint8_t *buf, size_t len,
    lt_body *out, lt_err *err)
{
    lt_encoding  enc;
    size_t       at_x, at_y;
    lt_mpv       v, k;
    uint32_t     i;
    lt_dec       d;
    lt_mp        mp;
    int          tensorish, j, integer;

    memset(out, 0, sizeof(*out));
    d.c = c;
    d.err = err;
    strcpy(d.name, "x");

    if (lt_mp_validate(buf, len, err) != 0) {
        return -1;
    }

    mp.buf = buf;
    mp.len = len;
    mp.pos = 0;

    (void) lt_mp_read(&mp, &v);

    if (v.type == LT_MP_ARRAY) {
        mp.pos = 0;
        if (lt_mp_nested(&d, &mp, &out->x, &integer) != 0) {
            return -1;
        }
        out->has_x = 1;
        out->enc = LT_ENC_NESTED;
        return 0;
    }

    if (v.type != LT_MP_MAP) {
        return lt_error(err, "body must be a map with \"x\" or a tensor, "
                        "not a %s", lt_mp_type_name(v.type));
    }

    /* {"x": ..., "y": ...} (unknown keys such as "kind" ignored), or a
     * bare tensor map, told apart by its keys */
    at_x = 0;
    at_y = 0;
    tensorish = 0;

    for (i = 0; i < v.n; i++) {
        lt_mp_key(&mp, &k);

        if (lt_mp_is(&k, "x") || lt_mp_is(&k, "y")) {
            if ((k.ptr[0] == 'x' ? at_x : at_y) != 0) {
                return lt_error(err, "duplicate key \"%c\"", k.ptr[0]);
            }
            if (k.ptr[0] == 'x') {
                at_x = mp.pos;
            } else {
                at_y = mp.pos;
            }

        } else {
            for (j = 0; j < LT_K_N; j++) {
                if (lt_mp_is(&k, lt_tensor_keys[j])) {
                    tensorish = 1;
                }
            }
        }

        (void) lt_mp_skip(&mp, 0, NULL);
    }

    if (at_x == 0 && at_y == 0 && tensorish) {
        mp.pos = 0;
        if (lt_mp_tensor_map(&d, &mp, &out->x, &integer, &out->enc) != 0) {
            return -1;
        }
        out->has_x = 1;
        return 0;
    }

    if (at_x == 0) {
        return lt_error(err, "missing \"x\"");
    }

    mp.pos = at_x;
    if (lt_mp_tensor(&d, &mp, &out->x, &integer, &out->enc) != 0) {
        return -1;
    }
    out->has_x = 1;

    if (at_y != 0) {
        strcpy(d.name, "y");
        mp.pos = at_y;
        if (lt_mp_tensor(&d, &mp, &out->y, &out->y_integer, &enc) != 0) {
            return -1;
        }
        out->has_y = 1;
    }

    return 0;
}


int
lt_codec_decode_msgpack(const lt_codec_ctx *c, const uint8_t *buf,
    size_t len, lt_body *out, lt_err *err)
{
    if (lt_mp_body(c, buf, len, out, err) != 0
        || lt_body_finite(out, err) != 0)
    {
        return -1;
    }

    return 0;
}


/* ---- JSON --------------------------------------------------------------- */

/*
 * cJSON allocates through hooks installed once per process; they count
 * the bytes of the decode running on this thread against its cap (a
 * thread-local budget: decodes may run on pool threads).  Outside a
 * decode they are plain malloc and free, so any other cJSON user in the
 * process (checkpoint headers, freed with free()) is unaffected.  The
 * count is cumulative, not the peak: parsing frees nothing it keeps.
 */
typedef struct {
    size_t  used;
    size_t  cap;
    int     active;
    int     over;
} lt_json_budget;

static LT_THREAD_LOCAL lt_json_budget  lt_json_bud;
static pthread_once_t                  lt_json_once = PTHREAD_ONCE_INIT;


static void *
lt_json_malloc(size_t size)
{
    lt_json_budget  *b;

    b = &lt_json_bud;

    if (b->active) {
        if (size > b->cap - b->used) {
            b->over = 1;
            return NULL;
        }
        b->used += size;
    }

    return malloc(size);
}


static void
lt_json_free(void *p)
{
    free(p);
}


static void
lt_json_hooks(void)
{
    cJSON_Hooks  h;

    h.malloc_fn = lt_json_malloc;
    h.free_fn = lt_json_free;
    cJSON_InitHooks(&h);
}


/*
 * A tree costs at most 64 bytes (one cJSON) per 2 bytes of body ("0,"),
 * plus the strings, shorter than their text: 64 * len is never reached
 * by a valid body.  And a request that learn_max_elements allows has at
 * most 4 values per element: x [N, 1] and y [N, 1], nested, are 2N each.
 */
size_t
lt_codec_json_cap(size_t len, size_t max_elements)
{
    size_t  cap, room;

    room = SIZE_MAX - LT_JSON_SLACK;

    cap = (len > room / LT_JSON_PER_BYTE) ? room : len * LT_JSON_PER_BYTE;

    if (max_elements != 0 && max_elements <= room / LT_JSON_PER_ELEM
        && max_elements * LT_JSON_PER_ELEM < cap)
    {
        cap = max_elements * LT_JSON_PER_ELEM;
    }

    return cap + LT_JSON_SLACK;
}


/* cJSON recurses once per level (up to 1000); bound the depth before it
 * parses anything.  Brackets inside strings do not count.  Also the
 * checks cJSON does not make. */
static int
lt_json_digits(const uint8_t *buf, size_t len, size_t *pos)
{
    size_t  p;

    for (p = *pos; p < len && buf[p] >= '0' && buf[p] <= '9'; p++) {
        /* void */
    }

    if (p == *pos) {
        return -1;
    }

    *pos = p;
    return 0;
}


/* RFC 8259's number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, and
 * then no more number characters.  cJSON hands anything made of them to
 * strtod(), so it takes "01", "1." and "-01" as well. */
static int
lt_json_number(const uint8_t *buf, size_t len, size_t *pos)
{
    size_t  p;

    p = *pos;

    if (buf[p] == '-') {
        p++;
    }

    if (p < len && buf[p] == '0') {
        p++;

    } else if (lt_json_digits(buf, len, &p) != 0) {
        return -1;
    }

    if (p < len && buf[p] == '.') {
        p++;
        if (lt_json_digits(buf, len, &p) != 0) {
            return -1;
        }
    }

    if (p < len && (buf[p] == 'e' || buf[p] == 'E')) {
        p++;
        if (p < len && (buf[p] == '+' || buf[p] == '-')) {
            p++;
        }
        if (lt_json_digits(buf, len, &p) != 0) {
            return -1;
        }
    }

    if (p < len && ((buf[p] >= '0' && buf[p] <= '9') || buf[p] == '.'
                    || buf[p] == 'e' || buf[p] == 'E' || buf[p] == '+'
                    || buf[p] == '-'))
    {
        return -1;
    }

    *pos = p;
    return 0;
}


static int
lt_json_validate(const uint8_t *buf, size_t len, lt_err *err)
{
    size_t  i;
    int     depth, in_str;

    if (len == 0) {
        return lt_error(err, "body is empty");
    }

    /* cJSON skips a UTF-8 byte order mark; JSON text has none (RFC 8259,
     * 8.1), and Python's json.loads() refuses it too */
    if (len >= 3 && buf[0] == 0xef && buf[1] == 0xbb && buf[2] == 0xbf) {
        return lt_error(err, "body is not valid JSON: it starts with a byte "
                        "order mark");
    }

    depth = 0;
    in_str = 0;

    for (i = 0; i < len; i++) {
        /* cJSON takes any control byte for whitespace, and a raw NUL
         * inside a string would silently cut a name short: JSON allows
         * neither */
        if (buf[i] < 0x20 && (in_str || (buf[i] != '\t' && buf[i] != '\n'
                                         && buf[i] != '\r')))
        {
            return lt_error(err, "body is not valid JSON");
        }

        if (in_str) {
            if (buf[i] == '\\') {
                /* cJSON cuts a string at \u0000: {"x\u0000y": ...}
                 * would be read as "x" */
                if (len - i >= 6 && memcmp(buf + i + 1, "u0000", 5) == 0) {
                    return lt_error(err, "JSON strings must not contain "
                                    "\\u0000");
                }
                i++;
            } else if (buf[i] == '"') {
                in_str = 0;
            }
            continue;
        }

        if (buf[i] == '-' || (buf[i] >= '0' && buf[i] <= '9')) {
            if (lt_json_number(buf, len, &i) != 0) {
                return lt_error(err, "body is not valid JSON: a malformed "
                                "number (leading zeros, or no digits after "
                                "a point or an exponent)");
            }
            i--;
            continue;
        }

        switch (buf[i]) {
        case '"':
            in_str = 1;
            break;
        case '[':
        case '{':
            if (++depth > LT_JSON_MAX_DEPTH) {
                return lt_error(err, "JSON nesting is deeper than %d levels",
                                LT_JSON_MAX_DEPTH);
            }
            break;
        case ']':
        case '}':
            depth--;
            break;
        default:
            break;
        }
    }

    return 0;
}


static cJSON *
lt_json_parse(const uint8_t *buf, size_t len, size_t max_elements,
    lt_err *err)
{
    lt_json_budget  *b;
    const char      *end;
    cJSON           *root;
    size_t           pos;

    if (lt_json_validate(buf, len, err) != 0) {
        return NULL;
    }

    if (pthread_once(&lt_json_once, lt_json_hooks) != 0) {
        lt_error(err, "cannot set up the JSON parser");
        return NULL;
    }

    b = &lt_json_bud;
    b->used = 0;
    b->cap = lt_codec_json_cap(len, max_elements);
    b->over = 0;
    b->active = 1;

    end = NULL;
    root = cJSON_ParseWithLengthOpts((const char *) buf, len, &end, 0);

    b->active = 0;

    if (root == NULL) {
        lt_error(err, b->over ? "JSON body too large to parse"
                              : "body is not valid JSON");
        return NULL;
    }

    /* cJSON stops after the first value: only whitespace may follow */
    pos = (size_t) (end - (const char *) buf);
    while (pos < len && (buf[pos] == ' ' || buf[pos] == '\t'
                         || buf[pos] == '\n' || buf[pos] == '\r'))
    {
        pos++;
    }

    if (pos != len) {
        cJSON_Delete(root);
        lt_error(err, "trailing bytes after the JSON body");
        return NULL;
    }

    return root;
}


static const char *
lt_json_type_name(const cJSON *j)
{
    if (cJSON_IsNull(j)) {
        return "null";
    }
    if (cJSON_IsBool(j)) {
        return "boolean";
    }
    if (cJSON_IsNumber(j)) {
        return "number";
    }
    if (cJSON_IsString(j)) {
        return "string";
    }
    if (cJSON_IsArray(j)) {
        return "array";
    }
    if (cJSON_IsObject(j)) {
        return "object";
    }
    return "invalid value";
}


static int
lt_json_nested_check(lt_dec *d, const cJSON *j, int depth, int ndim,
    const uint64_t *dims, int *integer)
{
    const cJSON  *e;
    uint64_t      n;
    double        v;

    if (depth < ndim) {
        if (!cJSON_IsArray(j)) {
            return lt_error(d->err, "tensor \"%s\": ragged array at depth %d",
                            d->name, depth);
        }

        n = 0;
        for (e = j->child; e != NULL; e = e->next) {
            if (++n > dims[depth]) {
                break;
            }
            if (lt_json_nested_check(d, e, depth + 1, ndim, dims, integer)
                != 0)
            {
                return -1;
            }
        }

        if (n != dims[depth]) {
            return lt_error(d->err, "tensor \"%s\": ragged array at depth %d",
                            d->name, depth);
        }

        return 0;
    }

    if (cJSON_IsArray(j)) {
        return lt_error(d->err, "tensor \"%s\": ragged array at depth %d",
                        d->name, depth);
    }

    if (!cJSON_IsNumber(j)) {
        return lt_error(d->err, "tensor \"%s\": element at depth %d is a %s, "
                        "not a number", d->name, depth, lt_json_type_name(j));
    }

    /* JSON has one number type: integral values count as integers */
    v = j->valuedouble;
    if (!isfinite(v) || floor(v) != v) {
        *integer = 0;
    }

    return 0;
}


static void
lt_json_nested_fill(const cJSON *j, int depth, int ndim, float **out)
{
    const cJSON  *e;

    if (depth < ndim) {
        for (e = j->child; e != NULL; e = e->next) {
            lt_json_nested_fill(e, depth + 1, ndim, out);
        }
        return;
    }

    *(*out)++ = (float) j->valuedouble;
}


static int
lt_json_nested(lt_dec *d, const cJSON *j, lt_tensor *t, int *integer)
{
    const cJSON  *a, *e;
    uint64_t      dims[LT_MAX_DIMS], numel, n;
    float        *data, *p;
    int           ndim;

    ndim = 0;
    for (a = j; cJSON_IsArray(a); a = a->child) {
        n = 0;
        for (e = a->child; e != NULL; e = e->next) {
            n++;
        }
        if (ndim < LT_MAX_DIMS) {
            dims[ndim] = n;
        }
        ndim++;
        if (n == 0) {
            break;
        }
    }

    if (ndim > LT_MAX_DIMS) {
        return lt_dec_dims_error(d, ndim);
    }

    if (lt_dec_shape(d, ndim, dims, &numel) != 0) {
        return -1;
    }

    *integer = 1;
    if (lt_json_nested_check(d, j, 0, ndim, dims, integer) != 0) {
        return -1;
    }

    data = lt_dec_alloc(d, numel);
    if (data == NULL) {
        return -1;
    }

    p = data;
    lt_json_nested_fill(j, 0, ndim, &p);
    lt_dec_set(t, data, ndim, dims);

    return 0;
}


/* {"shape": [...], "data": [numbers, flat or nested], "dtype": ...} */
static int
lt_json_tensor_obj(lt_dec *d, const cJSON *j, lt_tensor *t, int *integer)
{
    const lt_dtype  *dt;
    const cJSON     *shape, *data, *dtype, *e;
    lt_tensor        flat;
    uint64_t         dims[LT_MAX_DIMS], numel;
    char             buf[128];
    double           v;
    int              ndim, flat_int;

    shape = NULL;
    data = NULL;
    dtype = NULL;

    for (e = j->child; e != NULL; e = e->next) {
        if (e->string == NULL) {
            continue;
        }
        if (strcmp(e->string, "shape") == 0) {
            if (shape != NULL) {
                return lt_error(d->err, "tensor \"%s\": duplicate key "
                                "\"shape\"", d->name);
            }
            shape = e;
        } else if (strcmp(e->string, "data") == 0) {
            if (data != NULL) {
                return lt_error(d->err, "tensor \"%s\": duplicate key "
                                "\"data\"", d->name);
            }
            data = e;
        } else if (strcmp(e->string, "dtype") == 0) {
            dtype = e;
        }
    }

    if (shape == NULL && data == NULL) {
        return lt_error(d->err, "tensor \"%s\" is an object without "
                        "\"shape\" and \"data\"", d->name);
    }

    dt = NULL;
    if (dtype != NULL) {
        if (!cJSON_IsString(dtype)) {
            return lt_error(d->err, "tensor \"%s\": \"dtype\" must be a "
                            "string, not a %s", d->name,
                            lt_json_type_name(dtype));
        }
        dt = lt_dtype_find((const uint8_t *) dtype->valuestring,
                           strlen(dtype->valuestring));
        if (dt == NULL) {
            return lt_dtype_error(d, 0, (const uint8_t *) dtype->valuestring,
                                  strlen(dtype->valuestring));
        }
    }

    if (shape == NULL) {
        return lt_error(d->err, "tensor \"%s\": missing \"shape\"", d->name);
    }

    if (data == NULL) {
        return lt_error(d->err, "tensor \"%s\": missing \"data\"", d->name);
    }

    if (!cJSON_IsArray(shape)) {
        return lt_error(d->err, "tensor \"%s\": \"shape\" must be an array, "
                        "not a %s", d->name, lt_json_type_name(shape));
    }

    ndim = 0;
    for (e = shape->child; e != NULL; e = e->next) {
        ndim++;
    }

    if (ndim > LT_MAX_DIMS) {
        return lt_dec_dims_error(d, ndim);
    }

    ndim = 0;
    for (e = shape->child; e != NULL; e = e->next) {
        v = cJSON_IsNumber(e) ? e->valuedouble : -1.0;
        /* 2^53: every integer below is exact in a double */
        if (!(v >= 0.0 && v <= 9007199254740992.0) || floor(v) != v) {
            return lt_error(d->err, "tensor \"%s\": \"shape\" must hold "
                            "non-negative integers", d->name);
        }
        dims[ndim++] = (uint64_t) v;
    }

    if (ndim == 0) {
        return lt_dec_scalar_error(d);
    }

    if (lt_dec_shape(d, ndim, dims, &numel) != 0) {
        return -1;
    }

    if (!cJSON_IsArray(data)) {
        return lt_error(d->err, "tensor \"%s\": \"data\" must be an array, "
                        "not a %s", d->name, lt_json_type_name(data));
    }

    if (lt_json_nested(d, data, &flat, &flat_int) != 0) {
        return -1;
    }

    if ((uint64_t) lt_tensor_numel(&flat) != numel) {
        lt_fmt_shape(buf, sizeof(buf), ndim, dims);
        return lt_error(d->err, "tensor \"%s\": data has %lld numbers, "
                        "shape %s needs %llu", d->name,
                        (long long) lt_tensor_numel(&flat), buf,
                        (unsigned long long) numel);
    }

    lt_dec_set(t, flat.data, ndim, dims);
    *integer = (dt != NULL) ? dt->integer : flat_int;

    return 0;
}


static int
lt_json_tensor(lt_dec *d, const cJSON *j, lt_tensor *t, int *integer)
{
    if (cJSON_IsArray(j)) {
        return lt_json_nested(d, j, t, integer);
    }

    if (cJSON_IsObject(j)) {
        return lt_json_tensor_obj(d, j, t, integer);
    }

    return lt_error(d->err, "tensor \"%s\" must be an array or an object, "
                    "not a %s", d->name, lt_json_type_name(j));
}


static int
lt_json_body(lt_dec *d, const cJSON *root, lt_body *out)
{
    const cJSON  *x, *y, *e;
    int           tensorish, integer;

    if (cJSON_IsArray(root)) {
        if (lt_json_nested(d, root, &out->x, &integer) != 0) {
            return -1;
        }
        out->has_x = 1;
        return 0;
    }

    if (!cJSON_IsObject(root)) {
        return lt_error(d->err, "body must be an object with \"x\" or a "
                        "tensor, not a %s", lt_json_type_name(root));
    }

    x = NULL;
    y = NULL;
    tensorish = 0;

    for (e = root->child; e != NULL; e = e->next) {
        if (e->string == NULL) {
            continue;
        }
        if (strcmp(e->string, "x") == 0 || strcmp(e->string, "y") == 0) {
            if ((e->string[0] == 'x' ? x : y) != NULL) {
                return lt_error(d->err, "duplicate key \"%s\"", e->string);
            }
            if (e->string[0] == 'x') {
                x = e;
            } else {
                y = e;
            }
        } else if (strcmp(e->string, "shape") == 0
                   || strcmp(e->string, "data") == 0)
        {
            tensorish = 1;
        }
    }

    if (x == NULL && y == NULL && tensorish) {
        if (lt_json_tensor_obj(d, root, &out->x, &integer) != 0) {
            return -1;
        }
        out->has_x = 1;
        return 0;
    }

    if (x == NULL) {
        return lt_error(d->err, "missing \"x\"");
    }

    if (lt_json_tensor(d, x, &out->x, &integer) != 0) {
        return -1;
    }
    out->has_x = 1;

    if (y != NULL) {
        strcpy(d->name, "y");
        if (lt_json_tensor(d, y, &out->y, &out->y_integer) != 0) {
            return -1;
        }
        out->has_y = 1;
    }

    return 0;
}


int
lt_codec_decode_json(const lt_codec_ctx *c, const uint8_t *buf, size_t len,
    lt_body *out, lt_err *err)
{
    cJSON   *root;
    lt_dec   d;
    int      rc;

    memset(out, 0, sizeof(*out));
    out->enc = LT_ENC_JSON;
    d.c = c;
    d.err = err;
    strcpy(d.name, "x");

    root = lt_json_parse(buf, len, c->max_elements, err);
    if (root == NULL) {
        return -1;
    }

    rc = lt_json_body(&d, root, out);
    out->enc = LT_ENC_JSON;
    cJSON_Delete(root);

    if (rc == 0) {
        rc = lt_body_finite(out, err);
    }

    return rc;
}


/* ---- named tensors (weights) -------------------------------------------- */

/*
 * Memory: besides the tensors' floats, n names and n lt_tensor structs
 * (about 72 bytes per entry, from as little as 2 bytes of body), so the
 * bound for this call is 8 * len + 4096 + 72 * entries, not 8 * len.
 */
static int
lt_named_arrays(const lt_codec_ctx *c, uint64_t n, char ***names,
    lt_tensor **tensors, lt_err *err)
{
    if (n == 0) {
        return 0;
    }

    if (c->max_named != 0 && n > c->max_named) {
        return lt_error(err, "the body names %llu tensors, the model has "
                        "%zu parameters", (unsigned long long) n,
                        c->max_named);
    }

    *names = c->alloc(c->ctx, (size_t) n * sizeof(char *));
    *tensors = c->alloc(c->ctx, (size_t) n * sizeof(lt_tensor));
    if (*names == NULL || *tensors == NULL) {
        return lt_error(err, "out of memory decoding weights");
    }

    return 0;
}


static char *
lt_named_name(lt_dec *d, const uint8_t *s, size_t n)
{
    char  *name;

    if (memchr(s, '\0', n) != NULL) {
        lt_error(d->err, "weight name \"%s\" contains a NUL byte", d->name);
        return NULL;
    }

    name = d->c->alloc(d->c->ctx, n + 1);
    if (name == NULL) {
        lt_error(d->err, "out of memory decoding weights");
        return NULL;
    }

    memcpy(name, s, n);
    name[n] = '\0';

    return name;
}


static int
lt_named_msgpack(lt_dec *d, const uint8_t *buf, size_t len, int *n,
    char ***names, lt_tensor **tensors)
{
    lt_encoding  enc;
    lt_mpv       v, k;
    uint32_t     i;
    lt_mp        mp;
    int          integer;

    if (lt_mp_validate(buf, len, d->err) != 0) {
        return -1;
    }

    mp.buf = buf;
    mp.len = len;
    mp.pos = 0;
    (void) lt_mp_read(&mp, &v);

    if (v.type != LT_MP_MAP) {
        return lt_error(d->err, "weights must be a map of name to tensor, "
                        "not a %s", lt_mp_type_name(v.type));
    }

    if (v.n > INT32_MAX) {
        return lt_error(d->err, "too many weights");
    }

    if (lt_named_arrays(d->c, v.n, names, tensors, d->err) != 0) {
        return -1;
    }

    for (i = 0; i < v.n; i++) {
        (void) lt_mp_read(&mp, &k);
        if (k.type != LT_MP_STR && k.type != LT_MP_BIN) {
            return lt_error(d->err, "weight names must be strings, not a %s",
                            lt_mp_type_name(k.type));
        }

        lt_dec_name(d, k.ptr, k.n);
        (*names)[i] = lt_named_name(d, k.ptr, k.n);
        if ((*names)[i] == NULL) {
            return -1;
        }

        if (lt_mp_tensor(d, &mp, &(*tensors)[i], &integer, &enc) != 0) {
            return -1;
        }
    }

    *n = (int) v.n;
    return 0;
}


static int
lt_named_json(lt_dec *d, const cJSON *root, int *n, char ***names,
    lt_tensor **tensors)
{
    const cJSON  *e;
    uint64_t      count, i;
    int           integer;

    if (!cJSON_IsObject(root)) {
        return lt_error(d->err, "weights must be an object of name to "
                        "tensor, not a %s", lt_json_type_name(root));
    }

    count = 0;
    for (e = root->child; e != NULL; e = e->next) {
        count++;
    }

    if (count > INT32_MAX) {
        return lt_error(d->err, "too many weights");
    }

    if (lt_named_arrays(d->c, count, names, tensors, d->err) != 0) {
        return -1;
    }

    i = 0;
    for (e = root->child; e != NULL; e = e->next, i++) {
        /* no NUL inside: lt_json_validate() refuses \u0000 */
        lt_dec_name(d, (const uint8_t *) e->string, strlen(e->string));
        (*names)[i] = lt_named_name(d, (const uint8_t *) e->string,
                                    strlen(e->string));
        if ((*names)[i] == NULL) {
            return -1;
        }

        if (lt_json_tensor(d, e, &(*tensors)[i], &integer) != 0) {
            return -1;
        }
    }

    *n = (int) count;
    return 0;
}


int
lt_codec_decode_named(const lt_codec_ctx *c, const uint8_t *buf, size_t len,
    int json, int *n, char ***names, lt_tensor **tensors, lt_err *err)
{
    cJSON   *root;
    lt_dec   d;
    int      rc;

    *n = 0;
    *names = NULL;
    *tensors = NULL;
    d.c = c;
    d.err = err;
    d.name[0] = '\0';

    if (!json) {
        rc = lt_named_msgpack(&d, buf, len, n, names, tensors);

    } else {
        root = lt_json_parse(buf, len, c->max_elements, err);
        if (root == NULL) {
            return -1;
        }

        rc = lt_named_json(&d, root, n, names, tensors);
        cJSON_Delete(root);
    }

    if (rc != 0) {
        *n = 0;
        *names = NULL;
        *tensors = NULL;
    }

    return rc;
}


/* ---- feedback (learn_feedback) ------------------------------------------ */

static int
lt_feedback_id(lt_dec *d, const uint8_t *s, size_t n, char **id)
{
    size_t  i;

    if (n == 0 || n > LT_FEEDBACK_ID_MAX) {
        return lt_error(d->err, "an id must be 1 to %d bytes, not %zu",
                        LT_FEEDBACK_ID_MAX, n);
    }

    for (i = 0; i < n; i++) {
        if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\') {
            return lt_error(d->err, "an id is printable ASCII without "
                            "spaces or quotes (a $request_id)");
        }
    }

    *id = d->c->alloc(d->c->ctx, n + 1);
    if (*id == NULL) {
        return lt_error(d->err, "out of memory decoding feedback");
    }

    memcpy(*id, s, n);
    (*id)[n] = '\0';

    return 0;
}


static int
lt_feedback_ids(lt_dec *d, uint64_t n, lt_feedback *out)
{
    if (n == 0) {
        return lt_error(d->err, "\"ids\" is empty");
    }

    if (d->c->max_named != 0 && n > d->c->max_named) {
        return lt_error(d->err, "%llu ids, at most %zu are kept",
                        (unsigned long long) n, d->c->max_named);
    }

    if (n > INT32_MAX) {
        return lt_error(d->err, "too many ids");
    }

    out->ids = d->c->alloc(d->c->ctx, (size_t) n * sizeof(char *));
    if (out->ids == NULL) {
        return lt_error(d->err, "out of memory decoding feedback");
    }

    out->nids = (int) n;

    return 0;
}


/* a number label: a tensor of one element, shape [1] */
static int
lt_feedback_scalar(lt_dec *d, double v, int integer, lt_feedback *out)
{
    float     *data;
    uint64_t   one;

    data = lt_dec_alloc(d, 1);
    if (data == NULL) {
        return -1;
    }

    one = 1;
    data[0] = (float) v;
    lt_dec_set(&out->y, data, 1, &one);
    out->y_integer = integer;

    return 0;
}


static int
lt_feedback_msgpack(lt_dec *d, const uint8_t *buf, size_t len,
    lt_feedback *out)
{
    lt_encoding  enc;
    size_t       at_y;
    lt_mpv       v, k, e, s;
    uint32_t     i, j;
    lt_mp        mp, peek;
    int          has_id;

    if (lt_mp_validate(buf, len, d->err) != 0) {
        return -1;
    }

    mp.buf = buf;
    mp.len = len;
    mp.pos = 0;
    (void) lt_mp_read(&mp, &v);

    if (v.type != LT_MP_MAP) {
        return lt_error(d->err, "feedback must be a map with \"id\" (or "
                        "\"ids\") and \"y\", not a %s",
                        lt_mp_type_name(v.type));
    }

    at_y = 0;
    has_id = 0;

    for (i = 0; i < v.n; i++) {
        lt_mp_key(&mp, &k);

        if (lt_mp_is(&k, "id") || lt_mp_is(&k, "ids")) {
            if (has_id) {
                return lt_error(d->err, "feedback has both \"id\" and "
                                "\"ids\", or one twice");
            }
            has_id = 1;

            (void) lt_mp_read(&mp, &e);

            if (k.n == 2) {
                if (e.type != LT_MP_STR && e.type != LT_MP_BIN) {
                    return lt_error(d->err, "\"id\" must be a string, not "
                                    "a %s", lt_mp_type_name(e.type));
                }

                if (lt_feedback_ids(d, 1, out) != 0
                    || lt_feedback_id(d, e.ptr, e.n, &out->ids[0]) != 0)
                {
                    return -1;
                }

                continue;
            }

            if (e.type != LT_MP_ARRAY) {
                return lt_error(d->err, "\"ids\" must be an array of "
                                "strings, not a %s", lt_mp_type_name(e.type));
            }

            if (lt_feedback_ids(d, e.n, out) != 0) {
                return -1;
            }
            out->batched = 1;

            for (j = 0; j < e.n; j++) {
                (void) lt_mp_read(&mp, &s);
                if (s.type != LT_MP_STR && s.type != LT_MP_BIN) {
                    return lt_error(d->err, "\"ids\" must be an array of "
                                    "strings, not of %s",
                                    lt_mp_type_name(s.type));
                }
                if (lt_feedback_id(d, s.ptr, s.n, &out->ids[j]) != 0) {
                    return -1;
                }
            }

            continue;
        }

        if (lt_mp_is(&k, "y")) {
            if (at_y != 0) {
                return lt_error(d->err, "duplicate key \"y\"");
            }
            at_y = mp.pos;

        } else if (!lt_mp_is(&k, "kind")) {
            if (k.type == LT_MP_STR || k.type == LT_MP_BIN) {
                lt_dec_name(d, k.ptr, k.n);
                return lt_error(d->err, "unknown key \"%s\": feedback has "
                                "\"id\" (or \"ids\") and \"y\"", d->name);
            }
            return lt_error(d->err, "feedback keys must be strings");
        }

        (void) lt_mp_skip(&mp, 0, NULL);
    }

    if (!has_id) {
        return lt_error(d->err, "missing \"id\" (or \"ids\")");
    }

    if (at_y == 0) {
        return lt_error(d->err, "missing \"y\"");
    }

    strcpy(d->name, "y");
    mp.pos = at_y;

    peek = mp;
    (void) lt_mp_read(&peek, &e);

    if (lt_mp_is_number(&e)) {
        return lt_feedback_scalar(d, e.type == LT_MP_FLOAT ? e.f
                                     : (double) lt_mp_float(&e),
                                  e.type != LT_MP_FLOAT, out);
    }

    return lt_mp_tensor(d, &mp, &out->y, &out->y_integer, &enc);
}


static int
lt_feedback_json(lt_dec *d, const cJSON *root, lt_feedback *out)
{
    const cJSON  *e, *y, *s;
    int           has_id, j;

    if (!cJSON_IsObject(root)) {
        return lt_error(d->err, "feedback must be an object with \"id\" "
                        "(or \"ids\") and \"y\", not a %s",
                        lt_json_type_name(root));
    }

    y = NULL;
    has_id = 0;

    for (e = root->child; e != NULL; e = e->next) {
        if (strcmp(e->string, "id") == 0 || strcmp(e->string, "ids") == 0) {
            if (has_id) {
                return lt_error(d->err, "feedback has both \"id\" and "
                                "\"ids\", or one twice");
            }
            has_id = 1;

            if (e->string[2] == '\0') {
                if (!cJSON_IsString(e)) {
                    return lt_error(d->err, "\"id\" must be a string, not "
                                    "a %s", lt_json_type_name(e));
                }

                if (lt_feedback_ids(d, 1, out) != 0
                    || lt_feedback_id(d, (const uint8_t *) e->valuestring,
                                      strlen(e->valuestring), &out->ids[0])
                       != 0)
                {
                    return -1;
                }

                continue;
            }

            if (!cJSON_IsArray(e)) {
                return lt_error(d->err, "\"ids\" must be an array of "
                                "strings, not a %s", lt_json_type_name(e));
            }

            if (lt_feedback_ids(d, (uint64_t) cJSON_GetArraySize(e), out)
                != 0)
            {
                return -1;
            }
            out->batched = 1;

            j = 0;
            for (s = e->child; s != NULL; s = s->next, j++) {
                if (!cJSON_IsString(s)) {
                    return lt_error(d->err, "\"ids\" must be an array of "
                                    "strings, not of %s",
                                    lt_json_type_name(s));
                }
                if (lt_feedback_id(d, (const uint8_t *) s->valuestring,
                                   strlen(s->valuestring), &out->ids[j])
                    != 0)
                {
                    return -1;
                }
            }

            continue;
        }

        if (strcmp(e->string, "y") == 0) {
            if (y != NULL) {
                return lt_error(d->err, "duplicate key \"y\"");
            }
            y = e;

        } else if (strcmp(e->string, "kind") != 0) {
            lt_dec_name(d, (const uint8_t *) e->string, strlen(e->string));
            return lt_error(d->err, "unknown key \"%s\": feedback has "
                            "\"id\" (or \"ids\") and \"y\"", d->name);
        }
    }

    if (!has_id) {
        return lt_error(d->err, "missing \"id\" (or \"ids\")");
    }

    if (y == NULL) {
        return lt_error(d->err, "missing \"y\"");
    }

    strcpy(d->name, "y");

    if (cJSON_IsNumber(y)) {
        return lt_feedback_scalar(d, y->valuedouble,
                                  floor(y->valuedouble) == y->valuedouble,
                                  out);
    }

    return lt_json_tensor(d, y, &out->y, &out->y_integer);
}


int
lt_codec_decode_feedback(const lt_codec_ctx *c, const uint8_t *buf,
    size_t len, int json, lt_feedback *out, lt_err *err)
{
    cJSON   *root;
    lt_dec   d;
    int      rc;
    int64_t  at;

    memset(out, 0, sizeof(*out));
    d.c = c;
    d.err = err;
    d.name[0] = '\0';

    if (!json) {
        rc = lt_feedback_msgpack(&d, buf, len, out);

    } else {
        root = lt_json_parse(buf, len, c->max_elements, err);
        if (root == NULL) {
            return -1;
        }

        rc = lt_feedback_json(&d, root, out);
        cJSON_Delete(root);
    }

    if (rc == 0) {
        at = lt_tensor_nonfinite_at(&out->y);
        if (at >= 0) {
            rc = lt_error(err, "y has a non-finite value (NaN or Inf) at "
                          "element %lld", (long long) at);
        }
    }

    if (rc != 0) {
        memset(out, 0, sizeof(*out));
    }

    return rc;
}


/* ---- encoding ----------------------------------------------------------- */

/* Output goes through a writer that only counts when buf is NULL: every
 * encoder runs twice, once to size the buffer exactly, once to fill it. */
typedef struct {
    uint8_t  *buf;
    size_t    cap;
    size_t    len;
    int       overflow;
} lt_wbuf;


static int
lt_wbuf_write(void *data, const char *p, size_t n)
{
    lt_wbuf  *w;

    w = data;

    if (w->buf != NULL) {
        if (n > w->cap - w->len) {
            w->overflow = 1;
            return -1;
        }
        memcpy(w->buf + w->len, p, n);
    }

    w->len += n;
    return 0;
}


static void
lt_wbuf_puts(lt_wbuf *w, const char *s)
{
    (void) lt_wbuf_write(w, s, strlen(s));
}


/*
 * "%.9g" without printf, for what replies hold most: a float with a
 * decimal exponent from -4 to 8 (printf's fixed notation).  Such a
 * float is m * 2^e with m < 2^24, so m * 5^k * 2^(e+k) = v * 10^k for
 * k <= 12 fits 53 bits: the product is exact, and rounding it half to
 * even is printf's rounding of the exact value.  Anything else (a double
 * that is no float, other exponents, a rounding up to 10^9) goes to
 * snprintf; t/unit/test_codec.c compares the two on millions of floats.
 */

static int
lt_json_float_fixed(char *buf, double v)
{
    static const double  pow10[] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12
    };

    char      digits[9], *p;
    double    a, scaled, frac;
    uint32_t  r;
    int       k, e10, i, last;

    if ((double) (float) v != v || v == 0) {
        return -1;
    }

    a = fabs(v);

    if (a < 1e-4 || a >= 1e9) {
        return -1;
    }

    /* the k that puts |v| * 10^k in [1e8, 1e9): compared exactly */
    for (k = 0; k <= 12; k++) {
        scaled = a * pow10[k];

        if (scaled >= 1e8) {
            break;
        }
    }

    if (k > 12 || scaled >= 1e9) {
        return -1;
    }

    r = (uint32_t) scaled;
    frac = scaled - r;

    if (frac > 0.5 || (frac == 0.5 && (r & 1))) {
        r++;
    }

    if (r >= 1000000000u) {
        return -1;                  /* 9.999999995e8 and the like */
    }

    e10 = 8 - k;

    for (i = 8; i >= 0; i--) {
        digits[i] = (char) ('0' + r % 10);
        r /= 10;
    }

    for (last = 8; last > 0 && digits[last] == '0'; last--) {
        /* void */
    }

    p = buf;

    if (v < 0) {
        *p++ = '-';
    }

    if (e10 >= 0) {
        for (i = 0; i <= e10; i++) {
            *p++ = digits[i];
        }

        if (last > e10) {
            *p++ = '.';

            for (i = e10 + 1; i <= last; i++) {
                *p++ = digits[i];
            }
        }

    } else {
        *p++ = '0';
        *p++ = '.';

        for (i = -1; i > e10; i--) {
            *p++ = '0';
        }

        for (i = 0; i <= last; i++) {
            *p++ = digits[i];
        }
    }

    *p = '\0';

    return (int) (p - buf);
}


int
lt_json_float(char *buf, size_t size, double v)
{
    int  n;

    if (isnan(v) || isinf(v)) {
        return snprintf(buf, size, "null");
    }

    /* the longest fixed form: "-0.000123456789" */
    if (size >= 16) {
        n = lt_json_float_fixed(buf, v);

        if (n >= 0) {
            return n;
        }
    }

    return snprintf(buf, size, "%.9g", v);
}


static void
lt_wbuf_float(lt_wbuf *w, double v)
{
    char  tmp[40];
    int   n;

    n = lt_json_float(tmp, sizeof(tmp), v);
    (void) lt_wbuf_write(w, tmp, (size_t) n);
}


static void
lt_wbuf_json_string(lt_wbuf *w, const char *s)
{
    const unsigned char  *p;
    char                  esc[8];

    lt_wbuf_puts(w, "\"");

    for (p = (const unsigned char *) s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char) *p;
            (void) lt_wbuf_write(w, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            (void) lt_wbuf_write(w, esc, 6);
        } else {
            (void) lt_wbuf_write(w, (const char *) p, 1);
        }
    }

    lt_wbuf_puts(w, "\"");
}


static int
lt_enc_check(const lt_tensor *t, lt_err *err)
{
    uint64_t  n;
    int       i;

    if (t == NULL || t->ndim < 0 || t->ndim > LT_MAX_DIMS) {
        return lt_error(err, "cannot encode a tensor with %d dimensions",
                        t ? t->ndim : -1);
    }

    n = 1;
    for (i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0) {
            return lt_error(err, "cannot encode a tensor with a negative "
                            "dimension");
        }
        n = lt_mul_sat(n, (uint64_t) t->shape[i]);
    }

    /* a msgpack bin holds at most 2^32 - 1 bytes */
    if (n > UINT32_MAX / sizeof(float)) {
        return lt_error(err, "cannot encode a tensor of %llu elements",
                        (unsigned long long) n);
    }

    if (n > 0 && t->data == NULL) {
        return lt_error(err, "cannot encode a tensor without data");
    }

    return 0;
}


static size_t
lt_enc_numel(const lt_tensor *t)
{
    size_t  n;
    int     i;

    n = 1;
    for (i = 0; i < t->ndim; i++) {
        n *= (size_t) t->shape[i];
    }

    return n;
}


static void
lt_pack_data(msgpack_packer *pk, const float *d, size_t n)
{
    uint8_t   chunk[1024];
    uint32_t  one, u;
    uint8_t   first;
    size_t    i, k;

    msgpack_pack_bin(pk, n * 4);

    one = 1;
    memcpy(&first, &one, 1);
    if (first == 1) {
        if (n > 0) {
            msgpack_pack_bin_body(pk, d, n * 4);
        }
        return;
    }

    /* big-endian host: the wire is little-endian */
    for (i = 0; i < n; ) {
        for (k = 0; k + 4 <= sizeof(chunk) && i < n; k += 4, i++) {
            memcpy(&u, &d[i], 4);
            chunk[k] = (uint8_t) u;
            chunk[k + 1] = (uint8_t) (u >> 8);
            chunk[k + 2] = (uint8_t) (u >> 16);
            chunk[k + 3] = (uint8_t) (u >> 24);
        }
        msgpack_pack_bin_body(pk, chunk, k);
    }
}


static void
lt_pack_shape(msgpack_packer *pk, const lt_tensor *t)
{
    int  i;

    msgpack_pack_array(pk, (size_t) t->ndim);
    for (i = 0; i < t->ndim; i++) {
        msgpack_pack_uint64(pk, (uint64_t) t->shape[i]);
    }
}


static void
lt_pack_bin_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_bin(pk, strlen(s));
    msgpack_pack_bin_body(pk, s, strlen(s));
}


static void
lt_pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}


static void
lt_pack_nested(msgpack_packer *pk, const lt_tensor *t, int depth,
    const float **p)
{
    int64_t  i;

    if (depth == t->ndim) {
        msgpack_pack_float(pk, *(*p)++);
        return;
    }

    msgpack_pack_array(pk, (size_t) t->shape[depth]);
    for (i = 0; i < t->shape[depth]; i++) {
        lt_pack_nested(pk, t, depth + 1, p);
    }
}


static void
lt_json_nested_out(lt_wbuf *w, const lt_tensor *t, int depth,
    const float **p)
{
    int64_t  i;

    if (depth == t->ndim) {
        lt_wbuf_float(w, *(*p)++);
        return;
    }

    lt_wbuf_puts(w, "[");
    for (i = 0; i < t->shape[depth]; i++) {
        if (i > 0) {
            lt_wbuf_puts(w, ",");
        }
        lt_json_nested_out(w, t, depth + 1, p);
    }
    lt_wbuf_puts(w, "]");
}


/* One tensor's value, without a key. */
static void
lt_emit_tensor(lt_wbuf *w, msgpack_packer *pk, const lt_tensor *t,
    lt_encoding enc)
{
    const float  *p;

    p = t->data;

    switch (enc) {
    case LT_ENC_NUMPY:
        /* bin keys and a str type: what msgpack_numpy.decode expects */
        msgpack_pack_map(pk, 5);
        lt_pack_bin_str(pk, "nd");
        msgpack_pack_true(pk);
        lt_pack_bin_str(pk, "type");
        lt_pack_str(pk, "<f4");
        lt_pack_bin_str(pk, "kind");
        lt_pack_bin_str(pk, "");
        lt_pack_bin_str(pk, "shape");
        lt_pack_shape(pk, t);
        lt_pack_bin_str(pk, "data");
        lt_pack_data(pk, t->data, lt_enc_numel(t));
        break;

    case LT_ENC_RAW:
        msgpack_pack_map(pk, 3);
        lt_pack_str(pk, "shape");
        lt_pack_shape(pk, t);
        lt_pack_str(pk, "dtype");
        lt_pack_str(pk, "float32");
        lt_pack_str(pk, "data");
        lt_pack_data(pk, t->data, lt_enc_numel(t));
        break;

    case LT_ENC_NESTED:
        lt_pack_nested(pk, t, 0, &p);
        break;

    default:
        lt_json_nested_out(w, t, 0, &p);
        break;
    }
}


typedef struct {
    int                      kind;      /* 0 tensor, 1 train, 2 named */
    const char              *key;
    const lt_tensor         *t;
    lt_encoding              enc;
    double                   loss;
    int64_t                  step;
    int                      n;
    const char *const       *names;
} lt_emit_args;


static void
lt_emit(lt_wbuf *w, const lt_emit_args *a)
{
    msgpack_packer  pk;
    char            tmp[32];
    int             i, json;

    msgpack_packer_init(&pk, w, lt_wbuf_write);
    json = (a->enc == LT_ENC_JSON);

    switch (a->kind) {
    case 0:
        if (a->key == NULL) {
            lt_emit_tensor(w, &pk, a->t, a->enc);
            break;
        }
        if (json) {
            lt_wbuf_puts(w, "{");
            lt_wbuf_json_string(w, a->key);
            lt_wbuf_puts(w, ":");
            lt_emit_tensor(w, &pk, a->t, a->enc);
            lt_wbuf_puts(w, "}");
        } else {
            msgpack_pack_map(&pk, 1);
            lt_pack_str(&pk, a->key);
            lt_emit_tensor(w, &pk, a->t, a->enc);
        }
        break;

    case 1:
        if (json) {
            lt_wbuf_puts(w, "{\"loss\":");
            lt_wbuf_float(w, a->loss);
            snprintf(tmp, sizeof(tmp), ",\"step\":%lld}",
                     (long long) a->step);
            lt_wbuf_puts(w, tmp);
        } else {
            msgpack_pack_map(&pk, 2);
            lt_pack_str(&pk, "loss");
            msgpack_pack_double(&pk, a->loss);
            lt_pack_str(&pk, "step");
            msgpack_pack_int64(&pk, a->step);
        }
        break;

    default:
        if (json) {
            lt_wbuf_puts(w, "{");
        } else {
            msgpack_pack_map(&pk, (size_t) a->n);
        }
        for (i = 0; i < a->n; i++) {
            if (json) {
                if (i > 0) {
                    lt_wbuf_puts(w, ",");
                }
                lt_wbuf_json_string(w, a->names[i]);
                lt_wbuf_puts(w, ":");
            } else {
                lt_pack_str(&pk, a->names[i]);
            }
            lt_emit_tensor(w, &pk, &a->t[i], a->enc);
        }
        if (json) {
            lt_wbuf_puts(w, "}");
        }
        break;
    }
}


static int
lt_encode(const lt_codec_ctx *c, const lt_emit_args *a, uint8_t **out,
    size_t *len, lt_err *err)
{
    lt_wbuf   w;
    uint8_t  *buf;
    size_t    size;

    *out = NULL;
    *len = 0;

    memset(&w, 0, sizeof(w));
    lt_emit(&w, a);
    size = w.len;

    buf = c->alloc(c->ctx, size ? size : 1);
    if (buf == NULL) {
        return lt_error(err, "out of memory encoding the reply");
    }

    memset(&w, 0, sizeof(w));
    w.buf = buf;
    w.cap = size;
    lt_emit(&w, a);

    if (w.overflow || w.len != size) {
        return lt_error(err, "the reply changed size while it was encoded");
    }

    *out = buf;
    *len = size;

    return 0;
}


int
lt_codec_encode_tensor(const lt_codec_ctx *c, const char *key,
    const lt_tensor *t, lt_encoding enc, uint8_t **out, size_t *len,
    lt_err *err)
{
    lt_emit_args  a;

    *out = NULL;
    *len = 0;

    if (lt_enc_check(t, err) != 0) {
        return -1;
    }

    if ((unsigned) enc > LT_ENC_JSON) {
        return lt_error(err, "unknown encoding %d", (int) enc);
    }

    memset(&a, 0, sizeof(a));
    a.kind = 0;
    a.key = key;
    a.t = t;
    a.enc = enc;

    return lt_encode(c, &a, out, len, err);
}


int
lt_codec_encode_train(const lt_codec_ctx *c, double loss, int64_t step,
    int json, uint8_t **out, size_t *len, lt_err *err)
{
    lt_emit_args  a;

    memset(&a, 0, sizeof(a));
    a.kind = 1;
    a.enc = json ? LT_ENC_JSON : LT_ENC_NESTED;
    a.loss = loss;
    a.step = step;

    return lt_encode(c, &a, out, len, err);
}


int
lt_codec_encode_named(const lt_codec_ctx *c, int n,
    const char *const *names, const lt_tensor *tensors, lt_encoding enc,
    uint8_t **out, size_t *len, lt_err *err)
{
    lt_emit_args  a;
    int           i;

    *out = NULL;
    *len = 0;

    if (n < 0 || (n > 0 && (names == NULL || tensors == NULL))) {
        return lt_error(err, "cannot encode %d weights", n);
    }

    if ((unsigned) enc > LT_ENC_JSON) {
        return lt_error(err, "unknown encoding %d", (int) enc);
    }

    for (i = 0; i < n; i++) {
        if (names[i] == NULL) {
            return lt_error(err, "weight %d has no name", i);
        }
        if (lt_enc_check(&tensors[i], err) != 0) {
            return -1;
        }
    }

    memset(&a, 0, sizeof(a));
    a.kind = 2;
    a.t = tensors;
    a.enc = enc;
    a.n = n;
    a.names = names;

    return lt_encode(c, &a, out, len, err);
}
