/*
 * lt_codec_named.c: named tensors, a map of parameter name -> tensor
 * (learn_weights).
 */
#include "lt_codec_int.h"


/* ---- named tensors (weights) -------------------------------------------- */

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


static char *
lt_named_name(lt_dec *d, const uint8_t *s, size_t n)
{
    char  *name;

    if (memchr(s, '\0', n) != NULL) {
        lt_error(d->err, "weight name \"%s\" contains a NUL byte", d->name);
        return NULL;
    }

    name = d->c->alloc(d->c->ctx, n + 1);
    if (name == NULL) {
        lt_error(d->err, "out of memory decoding weights");
        return NULL;
    }

    memcpy(name, s, n);
    name[n] = '\0';

    return name;
}


static int
lt_named_msgpack(lt_dec *d, const uint8_t *buf, size_t len, int *n,
    char ***names, lt_tensor **tensors)
{
    lt_encoding  enc;
    lt_mpv       v, k;
    uint32_t     i;
    lt_mp        mp;
    int          integer;

    if (lt_mp_open(&mp, buf, len, &v, d->err) != 0) {
        return -1;
    }

    if (v.type != LT_MP_MAP) {
        return lt_error(d->err, "weights must be a map of name to tensor, "
                        "not a %s", lt_mp_type_name(v.type));
    }

    if (v.n > INT32_MAX) {
        return lt_error(d->err, "too many weights");
    }

    if (lt_named_arrays(d->c, v.n, names, tensors, d->err) != 0) {
        return -1;
    }

    for (i = 0; i < v.n; i++) {
        (void) lt_mp_read(&mp, &k);
        if (k.type != LT_MP_STR && k.type != LT_MP_BIN) {
            return lt_error(d->err, "weight names must be strings, not a %s",
                            lt_mp_type_name(k.type));
        }

        lt_dec_name(d, k.ptr, k.n);
        (*names)[i] = lt_named_name(d, k.ptr, k.n);
        if ((*names)[i] == NULL) {
            return -1;
        }

        if (lt_mp_tensor(d, &mp, &(*tensors)[i], &integer, &enc) != 0) {
            return -1;
        }
    }

    *n = (int) v.n;
    return 0;
}


static int
lt_named_json(lt_dec *d, const cJSON *root, int *n, char ***names,
    lt_tensor **tensors)
{
    const cJSON  *e;
    uint64_t      count, i;
    int           integer;

    if (!cJSON_IsObject(root)) {
        return lt_error(d->err, "weights must be an object of name to "
                        "tensor, not a %s", lt_json_type_name(root));
    }

    count = 0;
    for (e = root->child; e != NULL; e = e->next) {
        count++;
    }

    if (count > INT32_MAX) {
        return lt_error(d->err, "too many weights");
    }

    if (lt_named_arrays(d->c, count, names, tensors, d->err) != 0) {
        return -1;
    }

    i = 0;
    for (e = root->child; e != NULL; e = e->next, i++) {
        /* no NUL inside: lt_json_validate() refuses \u0000 */
        lt_dec_name(d, (const uint8_t *) e->string, strlen(e->string));
        (*names)[i] = lt_named_name(d, (const uint8_t *) e->string,
                                    strlen(e->string));
        if ((*names)[i] == NULL) {
            return -1;
        }

        if (lt_json_tensor(d, e, &(*tensors)[i], &integer) != 0) {
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
    cJSON   *root;
    lt_dec   d;
    int      rc;

    *n = 0;
    *names = NULL;
    *tensors = NULL;
    d.c = c;
    d.err = err;
    d.name[0] = '\0';

    if (!json) {
        rc = lt_named_msgpack(&d, buf, len, n, names, tensors);

    } else {
        root = lt_json_parse(buf, len, c->max_elements, err);
        if (root == NULL) {
            return -1;
        }

        rc = lt_named_json(&d, root, n, names, tensors);
        cJSON_Delete(root);
    }

    if (rc != 0) {
        *n = 0;
        *names = NULL;
        *tensors = NULL;
    }

    return rc;
}
