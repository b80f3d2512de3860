/*
 * lt_codec_dec.c: what the MessagePack and JSON decoders share: names for
 * messages, shapes, dtypes and their conversion, the output allocation.
 */
#include "lt_codec_int.h"


/* ---- decoding helpers shared by MessagePack and JSON ------------------ */



/* Names go into error messages that end up in a JSON reply: keep them
 * short and printable ASCII without quotes or backslashes. */
void
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


uint64_t
lt_mul_sat(uint64_t a, uint64_t b)
{
    if (a != 0 && b > UINT64_MAX / a) {
        return UINT64_MAX;
    }

    return a * b;
}


void
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
int
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


float *
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


/* n checked bytes as a C string from the allocator; what names the body */
char *
lt_dec_strdup(lt_dec *d, const uint8_t *s, size_t n, const char *what)
{
    char  *p;

    p = d->c->alloc(d->c->ctx, n + 1);
    if (p == NULL) {
        lt_error(d->err, "out of memory decoding %s", what);
        return NULL;
    }

    memcpy(p, s, n);
    p[n] = '\0';

    return p;
}


void
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


int
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


int
lt_dec_dims_error(lt_dec *d, int ndim)
{
    return lt_error(d->err, "tensor has %d dimensions, at most %d are "
                    "supported", ndim, LT_MAX_DIMS);
}


/* A 0-d array (shape []) is a number, and a number is not a tensor: the
 * models take [N, features] or [features], and a nested-array reply
 * could not say "0-d" anyway. */
int
lt_dec_scalar_error(lt_dec *d)
{
    return lt_error(d->err, "tensor \"%s\" has 0 dimensions, at least 1 is "
                    "needed", d->name);
}



/* numpy's little-endian type strings (msgpack-numpy) and plain names */
const lt_dtype  lt_dtypes[8] = {
    { "<f4", 4, 0 }, { "<f8", 8, 0 }, { "<i4", 4, 1 }, { "<i8", 8, 1 },
    { "float32", 4, 0 }, { "float64", 8, 0 }, { "int32", 4, 1 },
    { "int64", 8, 1 }
};


const lt_dtype *
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


int
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
void
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
