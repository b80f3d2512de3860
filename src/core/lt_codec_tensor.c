/*
 * lt_codec_tensor.c: the tensor builder, over either reader: nested arrays
 * of numbers, the {shape, dtype, data} map, and (MessagePack only, where
 * ops->binary) msgpack-numpy maps and bin data.
 */
#include "lt_codec_int.h"


enum { LT_K_ND = 0, LT_K_TYPE, LT_K_SHAPE, LT_K_DATA, LT_K_DTYPE, LT_K_N };

static const char *const  lt_tensor_keys[LT_K_N] = {
    "nd", "type", "shape", "data", "dtype"
};
static const uint64_t     lt_tensor_key_len[LT_K_N] = { 2, 4, 5, 4, 5 };


/* Reads a map key: a string comes back as such; any other key (even a
 * container, skipped whole) comes back as LT_RD_NIL. */
void
lt_rd_key(lt_rd *r, lt_rv *k)
{
    lt_rd  at;

    at = *r;
    r->ops->next(r, k);

    if (k->kind == LT_RD_ARRAY || k->kind == LT_RD_MAP) {
        *r = at;
        r->ops->skip(r);
        k->kind = LT_RD_NIL;
    }
}


/* lt_rd_is for a JSON string with escapes in it: the key's bytes with
 * the escapes undone, against s's n bytes */
int
lt_rd_is_escaped(const lt_rd *r, const lt_rv *k, const char *s, size_t n)
{
    uint8_t  buf[8];

    return n <= sizeof(buf) && r->ops->str(k, buf, sizeof(buf)) == n
           && memcmp(buf, s, n) == 0;
}


/* The tensor key k names (LT_K_*), or -1.  JSON tensors have no numpy
 * form: there "nd" and "type" are keys like any other. */
static int
lt_tensor_key(const lt_rd *r, const lt_rv *k)
{
    int  j;

    if (k->kind != LT_RD_STR && k->kind != LT_RD_BIN) {
        return -1;
    }

    for (j = r->ops->binary ? 0 : LT_K_SHAPE; j < LT_K_N; j++) {
        if (k->escaped ? lt_rd_is_escaped(r, k, lt_tensor_keys[j],
                                          lt_tensor_key_len[j])
                       : k->n == lt_tensor_key_len[j]
                         && memcmp(k->ptr, lt_tensor_keys[j],
                                   lt_tensor_key_len[j]) == 0)
        {
            return j;
        }
    }

    return -1;
}


/* What makes a map in a body's place a bare tensor rather than {"x": ...}:
 * any tensor key in MessagePack, "shape" or "data" in JSON (as the two
 * decoders this builder replaced did). */
int
lt_rd_tensor_key(const lt_rd *r, const lt_rv *k)
{
    int  j;

    j = lt_tensor_key(r, k);

    return j >= 0 && (r->ops->binary || j != LT_K_DTYPE);
}


/*
 * Walks a nested array of the shape ndim/dims: rectangular, numbers only,
 * with the first error in the body's order.  A row's length is checked on
 * entry where the reader knows it (MessagePack), else as its entries are
 * read.  With out, the numbers are stored too.
 */
static int
lt_nested_walk(lt_dec *d, lt_rd *r, int depth, int ndim,
    const uint64_t *dims, int *integer, float **out)
{
    uint64_t  i;
    lt_rv     v;

    r->ops->next(r, &v);

    if (depth < ndim) {
        if (v.kind != LT_RD_ARRAY || (v.counted && v.n != dims[depth])) {
            return lt_error(d->err, "tensor \"%s\": ragged array at depth %d",
                            d->name, depth);
        }

        for (i = 0; r->ops->more(r, &v); i++) {
            if (i == dims[depth]
                || lt_nested_walk(d, r, depth + 1, ndim, dims, integer, out)
                   != 0)
            {
                if (i == dims[depth]) {
                    lt_error(d->err, "tensor \"%s\": ragged array at depth "
                             "%d", d->name, depth);
                }
                return -1;
            }
        }

        if (i != dims[depth]) {
            return lt_error(d->err, "tensor \"%s\": ragged array at depth %d",
                            d->name, depth);
        }

        return 0;
    }

    if (v.kind == LT_RD_ARRAY) {
        return lt_error(d->err, "tensor \"%s\": ragged array at depth %d",
                        d->name, depth);
    }

    if (v.kind != LT_RD_NUMBER) {
        return lt_error(d->err, "tensor \"%s\": element at depth %d is a %s, "
                        "not a number", d->name, depth,
                        r->ops->type_name(&v));
    }

    if (!v.integer) {
        *integer = 0;
    }

    if (out != NULL) {
        *(*out)++ = v.f;
    }

    return 0;
}


/*
 * Nested arrays: the shape comes from the first element at each level and
 * is checked against the limits; then one walk checks and fills.  Every
 * number takes a byte of the body at least, so a shape with more
 * elements than bytes left cannot be rectangular: such a shape gets a
 * walk that only checks (and finds where it is ragged) instead of an
 * allocation, which stays within 4 bytes per byte of body.
 */
int
lt_rd_nested(lt_dec *d, lt_rd *r, lt_tensor *t, int *integer)
{
    uint64_t   dims[LT_MAX_DIMS], numel, n;
    float     *data, *p;
    lt_rv      v;
    lt_rd      m;
    int        ndim;

    m = *r;
    ndim = 0;
    for ( ;; ) {
        m.ops->next(&m, &v);
        if (v.kind != LT_RD_ARRAY) {
            break;
        }
        n = v.counted ? v.n : m.ops->count(&m, &v);
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

    if (numel > r->len - r->pos) {
        m = *r;
        if (lt_nested_walk(d, &m, 0, ndim, dims, integer, NULL) != 0) {
            return -1;
        }
        *integer = 1;
    }

    data = lt_dec_alloc(d, numel);
    if (data == NULL) {
        return -1;
    }

    p = data;
    if (lt_nested_walk(d, r, 0, ndim, dims, integer, &p) != 0) {
        return -1;
    }

    lt_dec_set(t, data, ndim, dims);

    return 0;
}


static int
lt_tensor_shape(lt_dec *d, lt_rd *r, uint64_t *dims, int *ndim)
{
    uint64_t  n, i;
    lt_rv     v, e;

    *ndim = 0;

    r->ops->next(r, &v);
    if (v.kind != LT_RD_ARRAY) {
        return lt_error(d->err, "tensor \"%s\": \"shape\" must be an array, "
                        "not a %s", d->name, r->ops->type_name(&v));
    }

    n = v.counted ? v.n : r->ops->count(r, &v);
    if (n > LT_MAX_DIMS) {
        return lt_dec_dims_error(d, n > INT32_MAX ? INT32_MAX : (int) n);
    }

    for (i = 0; r->ops->more(r, &v); i++) {
        r->ops->next(r, &e);
        if (e.kind != LT_RD_NUMBER || !e.is_dim) {
            /* nested containers inside shape are not walked further:
             * the caller repositions after the whole map */
            return lt_error(d->err, "tensor \"%s\": \"shape\" must hold "
                            "non-negative integers", d->name);
        }
        dims[i] = e.dim;
    }

    *ndim = (int) n;
    return 0;
}


/* The map forms: {"shape", "dtype", "data"}, data an array of numbers
 * (flat or nested) or, in MessagePack, bin (or str, as old msgpack sends
 * bytes) in the given dtype; and msgpack-numpy (nd/type/shape/data). */
int
lt_rd_tensor_map(lt_dec *d, lt_rd *r, lt_tensor *t, int *integer,
    lt_encoding *enc)
{
    const lt_dtype  *dt;
    uint64_t         dims[LT_MAX_DIMS], numel;
    lt_tensor        flat;
    lt_rv            v, k, dv, tv;
    uint8_t          tbuf[40];
    size_t           tn;
    float           *data;
    char             shape[128];
    lt_rd            at[LT_K_N], m;
    int              have[LT_K_N], j, numpy, ndim, flat_int;

    r->ops->next(r, &v);
    memset(have, 0, sizeof(have));

    while (r->ops->more(r, &v)) {
        lt_rd_key(r, &k);
        j = lt_tensor_key(r, &k);
        if (j >= 0) {
            if (have[j]) {
                return lt_error(d->err, "tensor \"%s\": duplicate key "
                                "\"%s\"", d->name, lt_tensor_keys[j]);
            }
            have[j] = 1;
            at[j] = *r;
        }
        r->ops->skip(r);
    }

    numpy = have[LT_K_ND] || have[LT_K_TYPE];

    if (!numpy && !have[LT_K_SHAPE] && !have[LT_K_DATA]) {
        return lt_error(d->err, "tensor \"%s\" is %s without \"shape\" "
                        "and \"data\"", d->name, r->ops->a_map);
    }

    if (have[LT_K_ND]) {
        m = at[LT_K_ND];
        m.ops->next(&m, &tv);
        if (tv.kind != LT_RD_BOOL) {
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
        m = at[j];
        m.ops->next(&m, &tv);
        if (tv.kind != LT_RD_STR && tv.kind != LT_RD_BIN) {
            return lt_error(d->err, "tensor \"%s\": \"%s\" must be a string, "
                            "not a %s", d->name, lt_tensor_keys[j],
                            m.ops->type_name(&tv));
        }
        tn = m.ops->str(&tv, tbuf, sizeof(tbuf));
        dt = lt_dtype_find(tbuf, tn);
        if (dt == NULL) {
            return lt_dtype_error(d, numpy, tbuf,
                                  tn < sizeof(tbuf) ? tn : sizeof(tbuf));
        }
    }

    if (!have[LT_K_SHAPE]) {
        return lt_error(d->err, "tensor \"%s\": missing \"shape\"", d->name);
    }

    if (!have[LT_K_DATA]) {
        return lt_error(d->err, "tensor \"%s\": missing \"data\"", d->name);
    }

    m = at[LT_K_SHAPE];
    if (lt_tensor_shape(d, &m, dims, &ndim) != 0) {
        return -1;
    }

    if (ndim == 0 && !d->scalars) {
        return lt_dec_scalar_error(d);
    }

    if (lt_dec_shape(d, ndim, dims, &numel) != 0) {
        return -1;
    }

    m = at[LT_K_DATA];
    m.ops->next(&m, &dv);

    if (m.ops->binary && (dv.kind == LT_RD_BIN || dv.kind == LT_RD_STR)) {
        /* numel * size cannot overflow: numel <= LT_NUMEL_LIMIT */
        if (dv.n != numel * (uint64_t) dt->size) {
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

    } else if (dv.kind == LT_RD_ARRAY) {
        m = at[LT_K_DATA];
        if (lt_rd_nested(d, &m, &flat, &flat_int) != 0) {
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

    } else if (m.ops->binary) {
        return lt_error(d->err, "tensor \"%s\": \"data\" must be bin or an "
                        "array, not a %s", d->name, m.ops->type_name(&dv));

    } else {
        return lt_error(d->err, "tensor \"%s\": \"data\" must be an array, "
                        "not a %s", d->name, m.ops->type_name(&dv));
    }

    *enc = numpy ? LT_ENC_NUMPY : LT_ENC_RAW;

    return 0;
}


int
lt_rd_tensor(lt_dec *d, lt_rd *r, lt_tensor *t, int *integer,
    lt_encoding *enc)
{
    lt_rv  v;
    lt_rd  m;

    m = *r;
    m.ops->next(&m, &v);

    if (v.kind == LT_RD_ARRAY) {
        *enc = LT_ENC_NESTED;
        return lt_rd_nested(d, r, t, integer);
    }

    if (v.kind == LT_RD_MAP) {
        return lt_rd_tensor_map(d, r, t, integer, enc);
    }

    /* a state dict's 0-d entry written as a bare number (JSON export) */
    if (v.kind == LT_RD_NUMBER && d->scalars) {
        float     *data;
        uint64_t   none[1];

        r->ops->next(r, &v);
        data = lt_dec_alloc(d, 1);
        if (data == NULL) {
            return -1;
        }

        data[0] = v.f;
        none[0] = 0;
        lt_dec_set(t, data, 0, none);
        *integer = v.integer;
        *enc = LT_ENC_NESTED;
        return 0;
    }

    return lt_error(d->err, "tensor \"%s\" must be an array or %s, "
                    "not a %s", d->name, r->ops->a_map,
                    r->ops->type_name(&v));
}
