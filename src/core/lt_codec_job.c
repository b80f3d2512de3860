/*
 * lt_codec_job.c: dataset job bodies (lt_job.h).
 */
#include "lt_codec_int.h"
#include "lt_job.h"


/* a key's bytes (escapes undone), NUL-terminated, for comparisons */
static void
lt_job_key(const lt_rd *r, const lt_rv *k, char *buf, size_t cap)
{
    size_t  n;

    if (k->kind != LT_RD_STR && k->kind != LT_RD_BIN) {
        buf[0] = '\0';
        return;
    }

    n = r->ops->str(k, (uint8_t *) buf, cap - 1);
    buf[n < cap - 1 ? n : cap - 1] = '\0';
}


static int
lt_job_name(lt_dec *d, const lt_rd *r, const lt_rv *v, const char *key,
    char **out)
{
    uint8_t  s[LT_JOB_NAME_MAX + 1];
    size_t   n;

    if (v->kind != LT_RD_STR && v->kind != LT_RD_BIN) {
        return lt_error(d->err, "\"%s\" must be a file name (a string), not "
                        "a %s", key, r->ops->type_name(v));
    }

    n = r->ops->str(v, s, sizeof(s));

    if (n == 0 || n > LT_JOB_NAME_MAX) {
        return lt_error(d->err, "a file name in \"%s\" must be 1 to %d "
                        "bytes, not %zu", key, LT_JOB_NAME_MAX, n);
    }

    if (memchr(s, '\0', n) != NULL) {
        return lt_error(d->err, "a file name in \"%s\" has a NUL byte",
                        key);
    }

    *out = lt_dec_strdup(d, s, n, "the job");

    return *out != NULL ? 0 : -1;
}


static int
lt_job_files(lt_dec *d, lt_rd *r, const char *key, lt_job_req *out)
{
    lt_rv  a, s;

    r->ops->next(r, &a);

    if (a.kind == LT_RD_STR || a.kind == LT_RD_BIN) {
        out->nfiles = 1;
        return lt_job_name(d, r, &a, key, &out->files[0]);
    }

    if (a.kind != LT_RD_ARRAY) {
        return lt_error(d->err, "\"%s\" must be an array of file names, "
                        "not a %s", key, r->ops->type_name(&a));
    }

    while (r->ops->more(r, &a)) {
        r->ops->next(r, &s);

        if (out->nfiles == LT_JOB_FILES_MAX) {
            return lt_error(d->err, "\"%s\" names more than %d files (one "
                            ".npz or MessagePack file, or x.npy and y.npy)",
                            key, LT_JOB_FILES_MAX);
        }

        if (lt_job_name(d, r, &s, key, &out->files[out->nfiles]) != 0) {
            return -1;
        }

        out->nfiles++;
    }

    if (out->nfiles == 0) {
        return lt_error(d->err, "\"%s\" is empty", key);
    }

    return 0;
}


/* "x" or "y": a file name, or a tensor */
static int
lt_job_data(lt_dec *d, lt_rd *r, int is_y, lt_job_req *out)
{
    lt_rd        peek;
    lt_rv        v;
    int          integer;
    lt_encoding  enc;

    peek = *r;
    peek.ops->next(&peek, &v);

    if (v.kind == LT_RD_STR || v.kind == LT_RD_BIN) {
        *r = peek;
        return lt_job_name(d, r, &v, is_y ? "y" : "x",
                           is_y ? &out->y_file : &out->x_file);
    }

    strcpy(d->name, is_y ? "y" : "x");

    if (lt_rd_tensor(d, r, is_y ? &out->y : &out->x, &integer, &enc) != 0) {
        return -1;
    }

    if (is_y) {
        out->has_y = 1;
        out->y_integer = integer;

    } else {
        out->has_x = 1;
        out->enc = enc;
    }

    return 0;
}


static int
lt_job_count(lt_dec *d, const lt_rd *r, const lt_rv *v, const char *key,
    uint64_t max, int64_t *out)
{
    if (v->kind != LT_RD_NUMBER || !v->is_dim || v->dim == 0
        || v->dim > max)
    {
        return lt_error(d->err, "\"%s\" must be a whole number from 1 to "
                        "%llu", key, (unsigned long long) max);
    }

    *out = (int64_t) v->dim;

    return 0;
}


static int
lt_job_read(lt_dec *d, lt_rd *r, int predict, lt_job_req *out)
{
    char   key[LT_NAME_MAX + 4];
    lt_rv  map, v, k;

    /* the map's own value counts its entries (MessagePack): values are
     * read into v, never into it */
    r->ops->next(r, &map);

    if (map.kind != LT_RD_MAP) {
        return lt_error(d->err, "a job must be %s with \"files\" (or \"x\" "
                        "and \"y\"), not a %s", r->ops->a_map,
                        r->ops->type_name(&map));
    }

    while (r->ops->more(r, &map)) {
        lt_rd_key(r, &k);

        if (k.kind != LT_RD_STR && k.kind != LT_RD_BIN) {
            return lt_error(d->err, "job keys must be strings");
        }

        lt_job_key(r, &k, key, sizeof(key));

        if (strcmp(key, "files") == 0 || strcmp(key, "Files") == 0) {
            if (out->nfiles) {
                return lt_error(d->err, "\"files\" given twice");
            }
            if (lt_job_files(d, r, key, out) != 0) {
                return -1;
            }
            continue;
        }

        if (strcmp(key, "x") == 0 || strcmp(key, "y") == 0) {
            if ((key[0] == 'x' && (out->has_x || out->x_file))
                || (key[0] == 'y' && (out->has_y || out->y_file)))
            {
                return lt_error(d->err, "duplicate key \"%s\"", key);
            }
            if (lt_job_data(d, r, key[0] == 'y', out) != 0) {
                return -1;
            }
            continue;
        }

        if (strcmp(key, "kind") == 0) {
            r->ops->skip(r);
            continue;
        }

        if (strcmp(key, "output") == 0 && predict) {
            r->ops->next(r, &v);
            if (out->output) {
                return lt_error(d->err, "duplicate key \"output\"");
            }
            if (lt_job_name(d, r, &v, "output", &out->output) != 0) {
                return -1;
            }
            continue;
        }

        if (strcmp(key, "batch_size") == 0) {
            r->ops->next(r, &v);
            if (lt_job_count(d, r, &v, key, 1u << 20, &out->batch_size)
                != 0)
            {
                return -1;
            }
            continue;
        }

        if (predict) {
            lt_dec_name(d, (const uint8_t *) key, strlen(key));
            return lt_error(d->err, "unknown key \"%s\": a predict job has "
                            "\"files\" (or \"x\"), \"batch_size\" and "
                            "\"output\"", d->name);
        }

        r->ops->next(r, &v);

        if (strcmp(key, "epochs") == 0) {
            if (lt_job_count(d, r, &v, key, 1000000, &out->epochs) != 0) {
                return -1;
            }

        } else if (strcmp(key, "shuffle") == 0) {
            if (v.kind != LT_RD_BOOL) {
                return lt_error(d->err, "\"shuffle\" must be true or false");
            }
            out->shuffle = v.boolean;

        } else if (strcmp(key, "validation") == 0) {
            if (v.kind != LT_RD_NUMBER || !(v.f >= 0.0f && v.f < 1.0f)) {
                return lt_error(d->err, "\"validation\" must be a fraction "
                                "in [0, 1)");
            }
            out->validation = v.f;

        } else if (strcmp(key, "seed") == 0) {
            if (v.kind != LT_RD_NUMBER || !v.is_dim) {
                return lt_error(d->err, "\"seed\" must be a whole number "
                                "from 0 to 2^53");
            }
            out->seed = v.dim;
            out->has_seed = 1;

        } else {
            lt_dec_name(d, (const uint8_t *) key, strlen(key));
            return lt_error(d->err, "unknown key \"%s\": a train job has "
                            "\"files\" (or \"x\" and \"y\"), \"epochs\", "
                            "\"batch_size\", \"shuffle\", \"validation\" "
                            "and \"seed\"", d->name);
        }
    }

    if (out->nfiles && (out->x_file || out->has_x || out->y_file
                        || out->has_y))
    {
        return lt_error(d->err, "give \"files\" or \"x\"/\"y\", not both");
    }

    if (out->nfiles == 0 && !out->x_file && !out->has_x) {
        return lt_error(d->err, "missing \"files\" (or \"x\")");
    }

    if (!predict && out->nfiles == 0 && !out->y_file && !out->has_y) {
        return lt_error(d->err, "missing \"y\"");
    }

    if (predict && (out->y_file || out->has_y)) {
        return lt_error(d->err, "a predict job takes no \"y\"");
    }

    return 0;
}


int
lt_codec_decode_job(const lt_codec_ctx *c, const uint8_t *buf, size_t len,
    int json, int predict, lt_job_req *out, lt_err *err)
{
    lt_dec   d;
    lt_rd    r;
    int      rc;
    int64_t  at;

    memset(out, 0, sizeof(*out));
    out->shuffle = -1;
    out->validation = -1.0;

    d.c = c;
    d.err = err;
    d.name[0] = '\0';

    rc = lt_rd_open(&r, json, buf, len, err);
    if (rc == 0) {
        rc = lt_job_read(&d, &r, predict, out);
    }

    if (rc == 0 && out->has_x) {
        at = lt_tensor_nonfinite_at(&out->x);
        if (at >= 0) {
            rc = lt_error(err, "x has a non-finite value (NaN or Inf) at "
                          "element %lld", (long long) at);
        }
    }

    if (rc == 0 && out->has_y) {
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
