/*
 * lt_codec_body.c: opening a body with the reader of its syntax, and
 * train/predict bodies: {"x": tensor, "y": tensor}, or a bare tensor.
 */
#include "lt_codec_int.h"


int
lt_rd_open(lt_rd *r, int json, const uint8_t *buf, size_t len, lt_err *err)
{
    return json ? lt_json_open(r, buf, len, err)
                : lt_mp_open(r, buf, len, err);
}


static int
lt_body_read(lt_dec *d, lt_rd *r, lt_body *out)
{
    lt_encoding  enc;
    lt_rv        v, k;
    lt_rd        at_x, at_y, m;
    int          tensorish, has_x, has_y, integer;

    m = *r;
    m.ops->next(&m, &v);

    if (v.kind == LT_RD_ARRAY) {
        if (lt_rd_nested(d, r, &out->x, &integer) != 0) {
            return -1;
        }
        out->has_x = 1;
        out->enc = LT_ENC_NESTED;
        return 0;
    }

    if (v.kind != LT_RD_MAP) {
        return lt_error(d->err, "body must be %s with \"x\" or a tensor, "
                        "not a %s", r->ops->a_map, r->ops->type_name(&v));
    }

    /* {"x": ..., "y": ...} (unknown keys such as "kind" ignored), or a
     * bare tensor map, told apart by its keys */
    has_x = 0;
    has_y = 0;
    tensorish = 0;

    while (m.ops->more(&m, &v)) {
        lt_rd_key(&m, &k);

        if (lt_rd_is(&m, &k, "x") || lt_rd_is(&m, &k, "y")) {
            if (lt_rd_is(&m, &k, "x") ? has_x : has_y) {
                return lt_error(d->err, "duplicate key \"%s\"",
                                lt_rd_is(&m, &k, "x") ? "x" : "y");
            }
            if (lt_rd_is(&m, &k, "x")) {
                has_x = 1;
                at_x = m;
            } else {
                has_y = 1;
                at_y = m;
            }

        } else if (lt_rd_tensor_key(&m, &k)) {
            tensorish = 1;
        }

        m.ops->skip(&m);
    }

    if (!has_x && !has_y && tensorish) {
        if (lt_rd_tensor_map(d, r, &out->x, &integer, &out->enc) != 0) {
            return -1;
        }
        out->has_x = 1;
        return 0;
    }

    if (!has_x) {
        return lt_error(d->err, "missing \"x\"");
    }

    if (lt_rd_tensor(d, &at_x, &out->x, &integer, &out->enc) != 0) {
        return -1;
    }
    out->has_x = 1;

    if (has_y) {
        strcpy(d->name, "y");
        if (lt_rd_tensor(d, &at_y, &out->y, &out->y_integer, &enc) != 0) {
            return -1;
        }
        out->has_y = 1;
    }

    return 0;
}


static int
lt_body_decode(const lt_codec_ctx *c, int json, const uint8_t *buf,
    size_t len, lt_body *out, lt_err *err)
{
    lt_dec  d;
    lt_rd   r;
    int     rc;

    memset(out, 0, sizeof(*out));
    d.c = c;
    d.scalars = 0;
    d.err = err;
    strcpy(d.name, "x");

    if (lt_rd_open(&r, json, buf, len, err) != 0) {
        return -1;
    }

    rc = lt_body_read(&d, &r, out);
    if (json) {
        out->enc = LT_ENC_JSON;
    }

    if (rc != 0 || lt_body_finite(out, err) != 0) {
        return -1;
    }

    return 0;
}


int
lt_codec_decode_msgpack(const lt_codec_ctx *c, const uint8_t *buf,
    size_t len, lt_body *out, lt_err *err)
{
    return lt_body_decode(c, 0, buf, len, out, err);
}


int
lt_codec_decode_json(const lt_codec_ctx *c, const uint8_t *buf, size_t len,
    lt_body *out, lt_err *err)
{
    return lt_body_decode(c, 1, buf, len, out, err);
}
