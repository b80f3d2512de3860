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


/* Decodes the value at m as tensor "x" or "y" where it stands, so the
 * body is not walked twice for it; on success m is past the value.  A
 * failure is kept in failed (the first one of each name) and m is left
 * for the caller to skip: an error in x wins over one in y, and a
 * duplicate key or a missing "x" over both, in whatever order the keys
 * come. */
static int
lt_body_tensor(lt_dec *d, lt_rd *m, const char *name, lt_tensor *t,
    int *integer, lt_encoding *enc, lt_err *failed)
{
    lt_rd  at;

    at = *m;
    strcpy(d->name, name);
    d->err = failed;

    if (lt_rd_tensor(d, &at, t, integer, enc) != 0) {
        return -1;
    }

    *m = at;
    return 0;
}


static int
lt_body_read(lt_dec *d, lt_rd *r, lt_body *out)
{
    lt_encoding  enc, yenc;
    lt_rv        v, k;
    lt_rd        m;
    lt_err      *err, xerr, yerr;
    int          tensorish, has_x, has_y, bad_x, bad_y, integer, is_x;

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
    err = d->err;
    has_x = 0;
    has_y = 0;
    bad_x = 0;
    bad_y = 0;
    tensorish = 0;
    enc = LT_ENC_NESTED;

    while (m.ops->more(&m, &v)) {
        lt_rd_key(&m, &k);
        is_x = lt_rd_is(&m, &k, "x");

        if (is_x || lt_rd_is(&m, &k, "y")) {
            if (is_x ? has_x : has_y) {
                d->err = err;
                return lt_error(err, "duplicate key \"%s\"",
                                is_x ? "x" : "y");
            }

            if (is_x) {
                has_x = 1;
                if (lt_body_tensor(d, &m, "x", &out->x, &integer, &enc,
                                   &xerr) == 0)
                {
                    continue;
                }
                bad_x = 1;

            } else {
                has_y = 1;
                if (lt_body_tensor(d, &m, "y", &out->y, &out->y_integer,
                                   &yenc, &yerr) == 0)
                {
                    continue;
                }
                bad_y = 1;
            }

        } else if (lt_rd_tensor_key(&m, &k)) {
            tensorish = 1;
        }

        m.ops->skip(&m);
    }

    d->err = err;

    if (!has_x && !has_y && tensorish) {
        strcpy(d->name, "x");
        if (lt_rd_tensor_map(d, r, &out->x, &integer, &out->enc) != 0) {
            return -1;
        }
        out->has_x = 1;
        return 0;
    }

    if (!has_x) {
        return lt_error(err, "missing \"x\"");
    }

    if (bad_x || bad_y) {
        *err = bad_x ? xerr : yerr;
        return -1;
    }

    out->has_x = 1;
    out->has_y = has_y;
    out->enc = enc;

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
