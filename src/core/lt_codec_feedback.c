/*
 * lt_codec_feedback.c: feedback bodies, {"id", "y"} and {"ids", "y"}
 * (learn_feedback).
 */
#include "lt_codec_int.h"


/* one id: its bytes with escapes undone, checked, copied */
static int
lt_feedback_id(lt_dec *d, const lt_rd *r, const lt_rv *v, char **id)
{
    uint8_t  s[LT_FEEDBACK_ID_MAX];
    size_t   i, n;

    n = r->ops->str(v, s, sizeof(s));

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

    *id = lt_dec_strdup(d, s, n, "feedback");

    return *id != NULL ? 0 : -1;
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
lt_feedback_scalar(lt_dec *d, float v, int integer, lt_feedback *out)
{
    float     *data;
    uint64_t   one;

    data = lt_dec_alloc(d, 1);
    if (data == NULL) {
        return -1;
    }

    one = 1;
    data[0] = v;
    lt_dec_set(&out->y, data, 1, &one);
    out->y_integer = integer;

    return 0;
}


/* "id": a string, or "ids": an array of strings */
static int
lt_feedback_read_ids(lt_dec *d, lt_rd *r, int batched, lt_feedback *out)
{
    uint64_t  j;
    lt_rv     e, s;

    r->ops->next(r, &e);

    if (!batched) {
        if (e.kind != LT_RD_STR && e.kind != LT_RD_BIN) {
            return lt_error(d->err, "\"id\" must be a string, not a %s",
                            r->ops->type_name(&e));
        }

        if (lt_feedback_ids(d, 1, out) != 0
            || lt_feedback_id(d, r, &e, &out->ids[0]) != 0)
        {
            return -1;
        }

        return 0;
    }

    if (e.kind != LT_RD_ARRAY) {
        return lt_error(d->err, "\"ids\" must be an array of strings, not "
                        "a %s", r->ops->type_name(&e));
    }

    if (lt_feedback_ids(d, e.counted ? e.n : r->ops->count(r, &e), out)
        != 0)
    {
        return -1;
    }
    out->batched = 1;

    for (j = 0; r->ops->more(r, &e); j++) {
        r->ops->next(r, &s);
        if (s.kind != LT_RD_STR && s.kind != LT_RD_BIN) {
            return lt_error(d->err, "\"ids\" must be an array of strings, "
                            "not of %s", r->ops->type_name(&s));
        }
        if (lt_feedback_id(d, r, &s, &out->ids[j]) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
lt_feedback_read(lt_dec *d, lt_rd *r, lt_feedback *out)
{
    lt_encoding  enc;
    uint8_t      kbuf[LT_NAME_MAX + 4];
    size_t       kn;
    lt_rv        v, k, e;
    lt_rd        at_y, peek;
    int          has_id, has_y;

    r->ops->next(r, &v);

    if (v.kind != LT_RD_MAP) {
        return lt_error(d->err, "feedback must be %s with \"id\" (or "
                        "\"ids\") and \"y\", not a %s", r->ops->a_map,
                        r->ops->type_name(&v));
    }

    has_y = 0;
    has_id = 0;

    while (r->ops->more(r, &v)) {
        lt_rd_key(r, &k);

        if (lt_rd_is(r, &k, "id") || lt_rd_is(r, &k, "ids")) {
            if (has_id) {
                return lt_error(d->err, "feedback has both \"id\" and "
                                "\"ids\", or one twice");
            }
            has_id = 1;

            if (lt_feedback_read_ids(d, r, lt_rd_is(r, &k, "ids"), out)
                != 0)
            {
                return -1;
            }

            continue;
        }

        if (lt_rd_is(r, &k, "y")) {
            if (has_y) {
                return lt_error(d->err, "duplicate key \"y\"");
            }
            has_y = 1;
            at_y = *r;

        } else if (!lt_rd_is(r, &k, "kind")) {
            if (k.kind == LT_RD_STR || k.kind == LT_RD_BIN) {
                kn = r->ops->str(&k, kbuf, sizeof(kbuf));
                lt_dec_name(d, kbuf, kn);
                return lt_error(d->err, "unknown key \"%s\": feedback has "
                                "\"id\" (or \"ids\") and \"y\"", d->name);
            }
            return lt_error(d->err, "feedback keys must be strings");
        }

        r->ops->skip(r);
    }

    if (!has_id) {
        return lt_error(d->err, "missing \"id\" (or \"ids\")");
    }

    if (!has_y) {
        return lt_error(d->err, "missing \"y\"");
    }

    strcpy(d->name, "y");

    peek = at_y;
    peek.ops->next(&peek, &e);

    if (e.kind == LT_RD_NUMBER) {
        return lt_feedback_scalar(d, e.f, e.integer, out);
    }

    return lt_rd_tensor(d, &at_y, &out->y, &out->y_integer, &enc);
}


int
lt_codec_decode_feedback(const lt_codec_ctx *c, const uint8_t *buf,
    size_t len, int json, lt_feedback *out, lt_err *err)
{
    lt_dec   d;
    lt_rd    r;
    int      rc;
    int64_t  at;

    memset(out, 0, sizeof(*out));
    d.c = c;
    d.scalars = 0;
    d.err = err;
    d.name[0] = '\0';

    rc = lt_rd_open(&r, json, buf, len, err);
    if (rc == 0) {
        rc = lt_feedback_read(&d, &r, out);
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
