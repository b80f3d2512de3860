/*
 * lt_codec_feedback.c: feedback bodies, {"id", "y"} and {"ids", "y"}
 * (learn_feedback).
 */
#include "lt_codec_int.h"


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

    if (lt_mp_open(&mp, buf, len, &v, d->err) != 0) {
        return -1;
    }

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
