/*
 * lt_checkpoint.c: checkpoint encoding and validation (format in the
 * header file).  Float data is little-endian float32 on disk, which is
 * the host layout on every machine this module targets (x86-64, arm64).
 */
#include "lt_checkpoint.h"
#include "lt_codec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#define LT_CKPT_MAGIC     "LEARNCKP"
#define LT_CKPT_PREFIX    16


static void
lt_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}

static uint32_t
lt_get_u32(const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16
           | (uint32_t) p[3] << 24;
}

static uint32_t
lt_crc32(const uint8_t *p, size_t len)
{
    uLong  crc;

    crc = crc32(0L, Z_NULL, 0);

    /* zlib takes uInt lengths: feed large buffers in pieces */
    while (len > 0) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt) len;
        crc = crc32(crc, p, n);
        p += n;
        len -= n;
    }

    return (uint32_t) crc;
}

/*
 * root[key]: a whole number in [0, LT_CHECKPOINT_MAX_STEP]; a missing key
 * is def, or an error when def is -1.
 */
static int
lt_checkpoint_step(const cJSON *root, const char *key, int64_t def,
    int64_t *step, lt_err *err)
{
    const cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(root, key);

    if (v == NULL && def >= 0) {
        *step = def;
        return 0;
    }

    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0)
        || v->valuedouble > (double) LT_CHECKPOINT_MAX_STEP
        || v->valuedouble != floor(v->valuedouble))
    {
        return lt_error(err, "checkpoint header: %s must be a whole number "
                        "in [0, 2^53]", key);
    }

    *step = (int64_t) v->valuedouble;

    return 0;
}


/* The P + S floats after the header, unaligned: every one finite. */
static int
lt_checkpoint_finite(const lt_model *m, const uint8_t *data, lt_err *err)
{
    float   chunk[1024];
    size_t  n, i, k;
    int64_t at;

    n = lt_model_values(m) + m->state_count;

    for (i = 0; i < n; i += k) {
        k = n - i < 1024 ? n - i : 1024;
        memcpy(chunk, data + i * sizeof(float), k * sizeof(float));

        at = lt_floats_nonfinite_at(chunk, k);
        if (at >= 0) {
            return lt_error(err, "checkpoint holds a non-finite value (NaN "
                            "or Inf) in the %s at float %zu",
                            i + (size_t) at < lt_model_values(m)
                            ? "parameters" : "optimizer state",
                            i + (size_t) at < lt_model_values(m)
                            ? i + (size_t) at
                            : i + (size_t) at - lt_model_values(m));
        }
    }

    return 0;
}


/*
 * The header is written straight into the caller's buffer, with no
 * allocation: the checkpoint writer runs it on a pool thread, where a
 * malloc would wake one more of glibc's per-thread arenas and keep its
 * pages (a worker's memory crept up by an arena's worth at a time).
 */
typedef struct {
    char  *p;
    char  *end;
    int    over;
} lt_hbuf;

static void
lt_hbuf_raw(lt_hbuf *h, const char *s, size_t n)
{
    if (h->over || n > (size_t) (h->end - h->p)) {
        h->over = 1;
        return;
    }

    memcpy(h->p, s, n);
    h->p += n;
}

static void
lt_hbuf_str(lt_hbuf *h, const char *s)
{
    lt_hbuf_raw(h, s, strlen(s));
}

/* s as a JSON string (lt_json_char escapes it) */
static void
lt_hbuf_quoted(lt_hbuf *h, const char *s)
{
    char                  esc[8];
    const unsigned char  *c;

    lt_hbuf_raw(h, "\"", 1);

    for (c = (const unsigned char *) s; *c != '\0'; c++) {
        lt_hbuf_raw(h, esc, lt_json_char(esc, *c));
    }

    lt_hbuf_raw(h, "\"", 1);
}

static void
lt_hbuf_int(lt_hbuf *h, long long v)
{
    char  num[24];
    int   n;

    n = snprintf(num, sizeof(num), "%lld", v);
    lt_hbuf_raw(h, num, (size_t) n);
}

/* the longest header for this model: 6 bytes per name byte at most */
static size_t
lt_checkpoint_header_cap(const lt_model *m, const char *name)
{
    int     i;
    size_t  cap;

    cap = 512 + 6 * strlen(name);

    for (i = 0; i < m->nparams; i++) {
        cap += 64 + 6 * strlen(m->params[i].name);
    }

    return cap;
}

/* the header's JSON text at h, or h->over */
static void
lt_checkpoint_header(lt_hbuf *h, const lt_model *m, const char *name,
    const lt_checkpoint_meta *meta)
{
    int   i, n, d;
    char  num[40];

    lt_hbuf_str(h, "{\"format\":");
    lt_hbuf_int(h, LT_CHECKPOINT_FORMAT);
    lt_hbuf_str(h, ",\"model\":");
    lt_hbuf_quoted(h, name);
    lt_hbuf_str(h, ",\"step\":");
    lt_hbuf_int(h, (long long) meta->step);
    lt_hbuf_str(h, ",\"optim_step\":");
    lt_hbuf_int(h, (long long) meta->optim_step);
    lt_hbuf_str(h, ",\"loss\":");

    if (isfinite(meta->loss)) {
        n = snprintf(num, sizeof(num), "%.17g", meta->loss);
        lt_hbuf_raw(h, num, (size_t) n);
    } else {
        lt_hbuf_str(h, "null");
    }

    lt_hbuf_str(h, ",\"optimizer\":");
    lt_hbuf_quoted(h, lt_optim_name(m->spec.optim.kind));
    n = snprintf(num, sizeof(num), "%016llx", (unsigned long long) m->hash);
    lt_hbuf_str(h, ",\"dtype\":\"<f4\",\"layout_hash\":\"");
    lt_hbuf_raw(h, num, (size_t) n);
    lt_hbuf_str(h, "\",\"state_floats\":");
    lt_hbuf_int(h, (long long) m->state_count);
    lt_hbuf_str(h, ",\"params\":[");

    for (i = 0; i < m->nparams; i++) {
        lt_hbuf_str(h, i ? ",{\"name\":" : "{\"name\":");
        lt_hbuf_quoted(h, m->params[i].name);
        lt_hbuf_str(h, ",\"shape\":[");
        for (d = 0; d < m->params[i].ndim; d++) {
            if (d > 0) {
                lt_hbuf_str(h, ",");
            }
            lt_hbuf_int(h, (long long) m->params[i].shape[d]);
        }

        lt_hbuf_str(h, "]}");
    }

    lt_hbuf_str(h, "]}");
}

size_t
lt_checkpoint_size(const lt_model *m, const char *name)
{
    size_t  padded;

    padded = (LT_CKPT_PREFIX + lt_checkpoint_header_cap(m, name) + 1 + 63)
             / 64 * 64 - LT_CKPT_PREFIX;

    return LT_CKPT_PREFIX + padded
           + (lt_model_values(m) + m->state_count) * sizeof(float) + 4;
}

int
lt_checkpoint_encode_into(const lt_model *m, const char *name,
    const lt_checkpoint_meta *meta, const float *params, const float *state,
    uint8_t *buf, size_t cap, size_t *len, lt_err *err)
{
    size_t    hlen, padded, total;
    uint8_t  *p;
    lt_hbuf   h;

    if (cap < lt_checkpoint_size(m, name)) {
        return lt_error(err, "a %zu byte buffer for a checkpoint of up to "
                        "%zu bytes", cap, lt_checkpoint_size(m, name));
    }

    h.p = (char *) buf + LT_CKPT_PREFIX;
    h.end = h.p + lt_checkpoint_header_cap(m, name);
    h.over = 0;

    lt_checkpoint_header(&h, m, name, meta);

    if (h.over) {
        return lt_error(err, "checkpoint header longer than its bound");
    }

    hlen = (size_t) (h.p - ((char *) buf + LT_CKPT_PREFIX));
    padded = (LT_CKPT_PREFIX + hlen + 1 + 63) / 64 * 64 - LT_CKPT_PREFIX;
    total = LT_CKPT_PREFIX + padded
            + (lt_model_values(m) + m->state_count) * sizeof(float) + 4;

    memcpy(buf, LT_CKPT_MAGIC, 8);
    lt_put_u32(buf + 8, LT_CHECKPOINT_FORMAT);
    lt_put_u32(buf + 12, (uint32_t) padded);
    memset(buf + LT_CKPT_PREFIX + hlen, 0, padded - hlen);

    p = buf + LT_CKPT_PREFIX + padded;
    memcpy(p, params, lt_model_values(m) * sizeof(float));
    p += lt_model_values(m) * sizeof(float);

    if (m->state_count) {
        memcpy(p, state, m->state_count * sizeof(float));
        p += m->state_count * sizeof(float);
    }

    lt_put_u32(p, lt_crc32(buf, total - 4));

    *len = total;

    return 0;
}

int
lt_checkpoint_encode(const lt_model *m, const char *name,
    const lt_checkpoint_meta *meta, const float *params, const float *state,
    uint8_t **out, size_t *len, lt_err *err)
{
    size_t    cap;
    uint8_t  *buf;

    cap = lt_checkpoint_size(m, name);

    buf = malloc(cap);
    if (buf == NULL) {
        return lt_error(err, "out of memory for a %zu byte checkpoint", cap);
    }

    if (lt_checkpoint_encode_into(m, name, meta, params, state, buf, cap,
                                  len, err)
        != 0)
    {
        free(buf);
        return -1;
    }

    *out = buf;

    return 0;
}

/*
 * The params array of the header against the model's, by name and shape:
 * the first parameter that differs is named, then a differing count.
 */
static int
lt_checkpoint_check_params(const lt_model *m, const cJSON *params,
    lt_err *err)
{
    int           i, d, n, ndim;
    int64_t       dim;
    char          buf[64];
    const cJSON  *p, *name, *shape, *v;

    if (!cJSON_IsArray(params)) {
        return lt_error(err, "checkpoint header has no parameter list");
    }

    n = cJSON_GetArraySize(params);

    for (i = 0; i < n && i < m->nparams; i++) {
        p = cJSON_GetArrayItem(params, i);
        name = cJSON_GetObjectItemCaseSensitive(p, "name");
        shape = cJSON_GetObjectItemCaseSensitive(p, "shape");

        if (!cJSON_IsString(name) || !cJSON_IsArray(shape)) {
            return lt_error(err, "checkpoint parameter %d has no name or "
                            "shape", i);
        }

        if (strcmp(name->valuestring, m->params[i].name) != 0) {
            return lt_error(err, "checkpoint parameter %d is \"%s\", the "
                            "model's is \"%s\"", i, name->valuestring,
                            m->params[i].name);
        }

        ndim = cJSON_GetArraySize(shape);

        for (d = 0; d < ndim || d < m->params[i].ndim; d++) {
            v = cJSON_GetArrayItem(shape, d);
            dim = cJSON_IsNumber(v) ? (int64_t) v->valuedouble : -1;

            if (ndim != m->params[i].ndim || dim != m->params[i].shape[d]) {
                return lt_error(err, "checkpoint has \"%s\" with another "
                                "shape than the model's %s",
                                m->params[i].name,
                                lt_param_shape_str(&m->params[i], buf,
                                                   sizeof(buf)));
            }
        }
    }

    if (n != m->nparams) {
        return lt_error(err, "checkpoint has %d parameters, the model has %d",
                        n, m->nparams);
    }

    return 0;
}

/*
 * The header's parameter list, read before the size and the checksum
 * are checked, so that a file of another architecture names the first
 * parameter that differs rather than only its size.  0 when the header
 * cannot be read or its parameters match: the caller's message stands.
 */
static int
lt_checkpoint_other_params(const lt_model *m, const uint8_t *buf,
    size_t len, size_t hlen, lt_err *err)
{
    int     rc;
    cJSON  *root;

    if (hlen > len - LT_CKPT_PREFIX) {
        return 0;
    }

    root = cJSON_ParseWithLength((const char *) buf + LT_CKPT_PREFIX,
                                 strnlen((const char *) buf + LT_CKPT_PREFIX,
                                         hlen));
    if (root == NULL) {
        return 0;
    }

    rc = lt_checkpoint_check_params(m,
             cJSON_GetObjectItemCaseSensitive(root, "params"), err);

    cJSON_Delete(root);

    return rc;
}

/*
 * The layout hash covers layer kinds as well as shapes (lt_model.c), so
 * Tanh -> ReLU, which keeps every shape, is another model; it does not
 * cover the learning rate or other hyper-parameters.
 */
static int
lt_checkpoint_check_hash(const lt_model *m, const cJSON *root, lt_err *err)
{
    char          hash[17];
    const cJSON  *v;

    snprintf(hash, sizeof(hash), "%016llx", (unsigned long long) m->hash);

    v = cJSON_GetObjectItemCaseSensitive(root, "layout_hash");

    if (!cJSON_IsString(v)) {
        return lt_error(err, "checkpoint header has no layout_hash");
    }

    if (strcmp(v->valuestring, hash) != 0) {
        return lt_error(err, "checkpoint was written by a model with other "
                        "layers (layout hash %.16s, the model's %s)",
                        v->valuestring, hash);
    }

    return 0;
}

int
lt_checkpoint_decode(const lt_model *m, const uint8_t *buf, size_t len,
    lt_checkpoint_meta *meta, const uint8_t **params, const uint8_t **state,
    lt_err *err)
{
    int           rc;
    size_t        hlen, want;
    cJSON        *root;
    const cJSON  *v;

    if (len < LT_CKPT_PREFIX + 4 || memcmp(buf, LT_CKPT_MAGIC, 8) != 0) {
        return lt_error(err, "not a checkpoint file (no LEARNCKP magic)");
    }

    if (lt_get_u32(buf + 8) != LT_CHECKPOINT_FORMAT) {
        return lt_error(err, "checkpoint format %u is not supported "
                        "(this build reads %d)", lt_get_u32(buf + 8),
                        LT_CHECKPOINT_FORMAT);
    }

    hlen = lt_get_u32(buf + 12);
    want = LT_CKPT_PREFIX + hlen
           + (lt_model_values(m) + m->state_count) * sizeof(float) + 4;

    if (hlen > len || len != want) {
        if (lt_checkpoint_other_params(m, buf, len, hlen, err) != 0) {
            return -1;
        }

        return lt_error(err, "checkpoint is %zu bytes, the model's needs %zu "
                        "(truncated, or another architecture)", len, want);
    }

    if (lt_crc32(buf, len - 4) != lt_get_u32(buf + len - 4)) {
        return lt_error(err, "checkpoint checksum mismatch (torn or corrupt "
                        "file)");
    }

    root = cJSON_ParseWithLength((const char *) buf + LT_CKPT_PREFIX,
                                 strnlen((const char *) buf + LT_CKPT_PREFIX,
                                         hlen));
    if (root == NULL) {
        return lt_error(err, "checkpoint header is not valid JSON");
    }

    rc = lt_checkpoint_check_params(m,
             cJSON_GetObjectItemCaseSensitive(root, "params"), err);

    if (rc == 0) {
        v = cJSON_GetObjectItemCaseSensitive(root, "optimizer");
        if (!cJSON_IsString(v)
            || strcmp(v->valuestring, lt_optim_name(m->spec.optim.kind)))
        {
            rc = lt_error(err, "checkpoint was written with optimizer %s, "
                          "the model uses %s",
                          cJSON_IsString(v) ? v->valuestring : "(none)",
                          lt_optim_name(m->spec.optim.kind));
        }
    }

    if (rc == 0) {
        rc = lt_checkpoint_check_hash(m, root, err);
    }

    if (rc == 0) {
        rc = lt_checkpoint_step(root, "step", -1, &meta->step, err);
    }

    if (rc == 0) {
        rc = lt_checkpoint_step(root, "optim_step", meta->step,
                                &meta->optim_step, err);

        if (rc == 0 && meta->optim_step > meta->step) {
            rc = lt_error(err, "checkpoint header: optim_step %lld is "
                          "above step %lld", (long long) meta->optim_step,
                          (long long) meta->step);
        }
    }

    if (rc == 0) {
        v = cJSON_GetObjectItemCaseSensitive(root, "loss");
        meta->loss = cJSON_IsNumber(v) ? v->valuedouble : NAN;

        *params = buf + LT_CKPT_PREFIX + hlen;
        *state = *params + lt_model_values(m) * sizeof(float);

        rc = lt_checkpoint_finite(m, *params, err);
    }

    cJSON_Delete(root);

    return rc;
}
