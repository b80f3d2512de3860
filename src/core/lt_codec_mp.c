/*
 * lt_codec_mp.c: MessagePack tensors (nested arrays, msgpack-numpy maps, the
 * {shape, dtype, data} form) and train/predict bodies.
 */
#include "lt_codec_int.h"


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


int
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

    if (lt_mp_open(&mp, buf, len, &v, err) != 0) {
        return -1;
    }

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
