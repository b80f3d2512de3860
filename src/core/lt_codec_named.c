/*
 * lt_codec_named.c: named tensors, a map of parameter name -> tensor
 * (learn_weights).
 */
#include "lt_codec_int.h"


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


/* a weight's name, escapes undone, as a C string from the allocator */
static char *
lt_named_name(lt_dec *d, const lt_rd *r, const lt_rv *k)
{
    size_t  n;
    char   *name;

    n = r->ops->str(k, NULL, 0);

    /* the decoded name is never longer than its text */
    name = d->c->alloc(d->c->ctx, n + 1);
    if (name == NULL) {
        lt_error(d->err, "out of memory decoding weights");
        return NULL;
    }

    (void) r->ops->str(k, (uint8_t *) name, n);
    name[n] = '\0';

    lt_dec_name(d, (const uint8_t *) name, n);

    /* JSON cannot hold one (lt_json_open() refuses \u0000), MessagePack
     * can */
    if (memchr(name, '\0', n) != NULL) {
        lt_error(d->err, "weight name \"%s\" contains a NUL byte", d->name);
        return NULL;
    }

    return name;
}


static int
lt_named_read(lt_dec *d, lt_rd *r, int *n, char ***names,
    lt_tensor **tensors)
{
    lt_encoding  enc;
    uint64_t     count, i;
    lt_rv        v, k;
    int          integer;

    r->ops->next(r, &v);

    if (v.kind != LT_RD_MAP) {
        return lt_error(d->err, "weights must be %s of name to tensor, "
                        "not a %s", r->ops->a_map, r->ops->type_name(&v));
    }

    count = v.counted ? v.n : r->ops->count(r, &v);

    if (count > INT32_MAX) {
        return lt_error(d->err, "too many weights");
    }

    if (lt_named_arrays(d->c, count, names, tensors, d->err) != 0) {
        return -1;
    }

    for (i = 0; r->ops->more(r, &v); i++) {
        r->ops->next(r, &k);
        if (k.kind != LT_RD_STR && k.kind != LT_RD_BIN) {
            return lt_error(d->err, "weight names must be strings, not a %s",
                            r->ops->type_name(&k));
        }

        (*names)[i] = lt_named_name(d, r, &k);
        if ((*names)[i] == NULL) {
            return -1;
        }

        if (lt_rd_tensor(d, r, &(*tensors)[i], &integer, &enc) != 0) {
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
    lt_dec  d;
    lt_rd   r;
    int     rc;

    *n = 0;
    *names = NULL;
    *tensors = NULL;
    d.c = c;
    d.scalars = 1;
    d.err = err;
    d.name[0] = '\0';

    rc = lt_rd_open(&r, json, buf, len, err);
    if (rc == 0) {
        rc = lt_named_read(&d, &r, n, names, tensors);
    }

    if (rc != 0) {
        *n = 0;
        *names = NULL;
        *tensors = NULL;
    }

    return rc;
}
