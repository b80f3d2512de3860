/*
 * lt_codec_enc.c: replies: tensors, train results and named tensors as JSON,
 * MessagePack or msgpack-numpy, sized by a counting pass first.
 */
#include <msgpack.h>
#include <stdio.h>

#include "lt_codec_int.h"


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


/* one byte of a JSON string's text: itself, or its escape (at most 6) */
size_t
lt_json_char(char *out, unsigned char c)
{
    if (c == '"' || c == '\\') {
        out[0] = '\\';
        out[1] = (char) c;
        return 2;
    }

    if (c < 0x20) {
        snprintf(out, 7, "\\u%04x", c);
        return 6;
    }

    out[0] = (char) c;
    return 1;
}


static void
lt_wbuf_json_string(lt_wbuf *w, const char *s)
{
    const unsigned char  *p;
    char                  esc[8];

    lt_wbuf_puts(w, "\"");

    for (p = (const unsigned char *) s; *p != '\0'; p++) {
        (void) lt_wbuf_write(w, esc, lt_json_char(esc, *p));
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


/* An int64 tensor's values: numpy "<i8" (little-endian), "int64" in the
 * raw form, integers in the nested and JSON forms. */
static void
lt_pack_ints(msgpack_packer *pk, const int64_t *v, size_t n)
{
    uint8_t   chunk[1024];
    uint64_t  u;
    size_t    i, k;
    int       b;

    msgpack_pack_bin(pk, n * 8);

    for (i = 0; i < n; ) {
        for (k = 0; k + 8 <= sizeof(chunk) && i < n; k += 8, i++) {
            u = (uint64_t) v[i];
            for (b = 0; b < 8; b++) {
                chunk[k + b] = (uint8_t) (u >> (8 * b));
            }
        }
        msgpack_pack_bin_body(pk, chunk, k);
    }
}


static void
lt_nested_ints(lt_wbuf *w, msgpack_packer *pk, const lt_tensor *t,
    int depth, const int64_t **p, int json)
{
    char     num[24];
    int64_t  i;

    if (depth == t->ndim) {
        if (json) {
            snprintf(num, sizeof(num), "%lld", (long long) *(*p)++);
            lt_wbuf_puts(w, num);
        } else {
            msgpack_pack_int64(pk, *(*p)++);
        }
        return;
    }

    if (json) {
        lt_wbuf_puts(w, "[");
    } else {
        msgpack_pack_array(pk, (size_t) t->shape[depth]);
    }

    for (i = 0; i < t->shape[depth]; i++) {
        if (json && i > 0) {
            lt_wbuf_puts(w, ",");
        }
        lt_nested_ints(w, pk, t, depth + 1, p, json);
    }

    if (json) {
        lt_wbuf_puts(w, "]");
    }
}


static void
lt_emit_ints(lt_wbuf *w, msgpack_packer *pk, const lt_tensor *t,
    const int64_t *v, lt_encoding enc)
{
    switch (enc) {
    case LT_ENC_NUMPY:
        msgpack_pack_map(pk, 5);
        lt_pack_bin_str(pk, "nd");
        msgpack_pack_true(pk);
        lt_pack_bin_str(pk, "type");
        lt_pack_str(pk, "<i8");
        lt_pack_bin_str(pk, "kind");
        lt_pack_bin_str(pk, "");
        lt_pack_bin_str(pk, "shape");
        lt_pack_shape(pk, t);
        lt_pack_bin_str(pk, "data");
        lt_pack_ints(pk, v, lt_enc_numel(t));
        break;

    case LT_ENC_RAW:
        msgpack_pack_map(pk, 3);
        lt_pack_str(pk, "shape");
        lt_pack_shape(pk, t);
        lt_pack_str(pk, "dtype");
        lt_pack_str(pk, "int64");
        lt_pack_str(pk, "data");
        lt_pack_ints(pk, v, lt_enc_numel(t));
        break;

    default:
        lt_nested_ints(w, pk, t, 0, &v, enc == LT_ENC_JSON);
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
    const int64_t *const    *ints;      /* named: int64 tensors, or NULL */
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
            if (a->ints != NULL && a->ints[i] != NULL) {
                lt_emit_ints(w, &pk, &a->t[i], a->ints[i], a->enc);
            } else {
                lt_emit_tensor(w, &pk, &a->t[i], a->enc);
            }
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
    return lt_codec_encode_named_ints(c, n, names, tensors, NULL, enc, out,
                                      len, err);
}


int
lt_codec_encode_named_ints(const lt_codec_ctx *c, int n,
    const char *const *names, const lt_tensor *tensors,
    const int64_t *const *ints, lt_encoding enc, uint8_t **out, size_t *len,
    lt_err *err)
{
    lt_emit_args  a;
    lt_tensor     t;
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

        t = tensors[i];
        if (ints != NULL && ints[i] != NULL) {
            t.data = (float *) ints[i];     /* only checked for NULL */
        }

        if (lt_enc_check(&t, err) != 0) {
            return -1;
        }

        /* an int64 takes 8 bytes of the bin's 2^32 - 1 */
        if (ints != NULL && ints[i] != NULL
            && lt_enc_numel(&t) > UINT32_MAX / 8)
        {
            return lt_error(err, "cannot encode an int64 tensor of %zu "
                            "elements", lt_enc_numel(&t));
        }
    }

    memset(&a, 0, sizeof(a));
    a.kind = 2;
    a.t = tensors;
    a.enc = enc;
    a.n = n;
    a.names = names;
    a.ints = ints;

    return lt_encode(c, &a, out, len, err);
}
