/*
 * codec_bench.c: decode speed of the codec on the bodies the benchmarks
 * send, in ns per decode and MB/s of body.  bench/codec_bench.sh builds it
 * twice, against the codec of this tree and against an older commit's
 * (the cJSON / twin-decoder codec), so the two can be compared.
 *
 *   xor     {"x": [[0, 1]], "y": [[1]]}: JSON, MessagePack nested, and
 *           msgpack-numpy as Python sends it (bench-http's train body)
 *   batch   x [64, 784] of pixels (k / 255 as float32): JSON as the
 *           module writes floats (%.9g) and as Python's json.dumps does
 *           (shortest repr, up to 17 digits); MessagePack nested float64
 *           and msgpack-numpy
 *   weights a 784-256-10 MLP's parameters as learn_weights exports them
 *           (lt_codec_encode_named): JSON and msgpack-numpy
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "lt_codec.h"


typedef struct {
    uint8_t  *base;
    size_t    cap, used;
} cb_arena;


static void *
cb_alloc(void *ctx, size_t size)
{
    cb_arena  *a;
    void      *p;

    a = ctx;
    size = (size + 15) & ~(size_t) 15;
    if (size > a->cap - a->used) {
        return NULL;
    }
    p = a->base + a->used;
    a->used += size;
    return p;
}


static double
cb_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}


/* Python's repr of a double: the shortest %.Ng that reads back */
static int
cb_repr(char *buf, size_t size, double v)
{
    int  p, n;

    for (p = 1; p <= 17; p++) {
        n = snprintf(buf, size, "%.*g", p, v);
        if (strtod(buf, NULL) == v) {
            break;
        }
    }
    if (strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL) {
        n += snprintf(buf + n, size - n, ".0");
    }
    return n;
}


static char *
cb_json_batch(int rows, int cols, int repr, size_t *len)
{
    size_t  cap, k;
    char   *s;
    int     i, j;
    float   f;

    cap = (size_t) rows * cols * 24 + 64;
    s = malloc(cap);
    k = (size_t) snprintf(s, cap, "{\"x\": [");
    for (i = 0; i < rows; i++) {
        k += (size_t) snprintf(s + k, cap - k, "%s[", i ? ", " : "");
        for (j = 0; j < cols; j++) {
            f = (float) ((i * 31 + j * 7) % 256) / 255.0f;
            if (j) {
                k += (size_t) snprintf(s + k, cap - k, ", ");
            }
            k += repr ? (size_t) cb_repr(s + k, cap - k, f)
                      : (size_t) lt_json_float(s + k, cap - k, f);
        }
        s[k++] = ']';
    }
    k += (size_t) snprintf(s + k, cap - k, "]}");
    *len = k;
    return s;
}


static uint8_t *
cb_mp_batch(int rows, int cols, int numpy, size_t *len)
{
    msgpack_sbuffer  sb;
    msgpack_packer   pk;
    uint8_t         *out;
    float           *d;
    int              i, j;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    d = malloc(sizeof(float) * rows * cols);
    for (i = 0; i < rows * cols; i++) {
        d[i] = (float) ((i / cols * 31 + i % cols * 7) % 256) / 255.0f;
    }

    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "x", 1);

    if (numpy) {
        msgpack_pack_map(&pk, 4);
        msgpack_pack_bin(&pk, 2);
        msgpack_pack_bin_body(&pk, "nd", 2);
        msgpack_pack_true(&pk);
        msgpack_pack_bin(&pk, 4);
        msgpack_pack_bin_body(&pk, "type", 4);
        msgpack_pack_str(&pk, 3);
        msgpack_pack_str_body(&pk, "<f4", 3);
        msgpack_pack_bin(&pk, 5);
        msgpack_pack_bin_body(&pk, "shape", 5);
        msgpack_pack_array(&pk, 2);
        msgpack_pack_int(&pk, rows);
        msgpack_pack_int(&pk, cols);
        msgpack_pack_bin(&pk, 4);
        msgpack_pack_bin_body(&pk, "data", 4);
        msgpack_pack_bin(&pk, sizeof(float) * rows * cols);
        msgpack_pack_bin_body(&pk, d, sizeof(float) * rows * cols);

    } else {
        msgpack_pack_array(&pk, rows);
        for (i = 0; i < rows; i++) {
            msgpack_pack_array(&pk, cols);
            for (j = 0; j < cols; j++) {
                msgpack_pack_double(&pk, d[i * cols + j]);
            }
        }
    }

    out = malloc(sb.size);
    memcpy(out, sb.data, sb.size);
    *len = sb.size;
    msgpack_sbuffer_destroy(&sb);
    free(d);
    return out;
}


static uint8_t *
cb_weights(int json, cb_arena *a, size_t *len)
{
    static const char *const  names[4] = {
        "0.weight", "0.bias", "2.weight", "2.bias"
    };
    static const int64_t      shapes[4][2] = {
        { 256, 784 }, { 256, 0 }, { 10, 256 }, { 10, 0 }
    };
    lt_codec_ctx  c;
    lt_tensor     t[4];
    uint8_t      *out;
    lt_err        err;
    int64_t       i, n;
    int           k;

    memset(t, 0, sizeof(t));
    for (k = 0; k < 4; k++) {
        t[k].ndim = shapes[k][1] ? 2 : 1;
        t[k].shape[0] = shapes[k][0];
        t[k].shape[1] = shapes[k][1];
        n = shapes[k][0] * (shapes[k][1] ? shapes[k][1] : 1);
        t[k].data = malloc(sizeof(float) * n);
        for (i = 0; i < n; i++) {
            t[k].data[i] = (float) (((i * 2654435761u) >> 8) % 20001)
                           / 100000.0f - 0.1f;
        }
    }

    c.alloc = cb_alloc;
    c.ctx = a;
    c.max_elements = 0;
    c.max_named = 0;
    a->used = 0;
    if (lt_codec_encode_named(&c, 4, names, t,
                              json ? LT_ENC_JSON : LT_ENC_NUMPY, &out, len,
                              &err) != 0)
    {
        fprintf(stderr, "encode: %s\n", err.msg);
        exit(1);
    }

    for (k = 0; k < 4; k++) {
        free(t[k].data);
    }
    return out;
}


/* 0: body, 1: named */
static void
cb_run(const char *name, int kind, int json, const uint8_t *buf, size_t len,
    cb_arena *a)
{
    lt_codec_ctx  c;
    lt_tensor    *ts;
    lt_body       b;
    lt_err        err;
    double        t0, t, best;
    char        **names;
    long          iters, i;
    int           n, rc, round;

    c.alloc = cb_alloc;
    c.ctx = a;
    c.max_elements = 0;
    c.max_named = 0;

    best = 1e30;
    iters = 1;
    for (round = 0; round < 8; round++) {
        t0 = cb_now();
        for (i = 0; i < iters; i++) {
            a->used = 0;
            if (kind == 0) {
                rc = json ? lt_codec_decode_json(&c, buf, len, &b, &err)
                          : lt_codec_decode_msgpack(&c, buf, len, &b, &err);
            } else {
                rc = lt_codec_decode_named(&c, buf, len, json, &n, &names,
                                           &ts, &err);
            }
            if (rc != 0) {
                fprintf(stderr, "%s: %s\n", name, err.msg);
                exit(1);
            }
        }
        t = (cb_now() - t0) / iters;
        if (round > 0 && t < best) {
            best = t;
        }
        /* rounds of about 50 ms */
        iters = (long) (0.05 / (t > 1e-9 ? t : 1e-9)) + 1;
    }

    printf("%-28s %9zu bytes %12.0f ns %8.1f MB/s\n", name, len, best * 1e9,
           len / best / 1e6);
}


int
main(void)
{
    static const char  xor_json[] = "{\"x\": [[0, 1]], \"y\": [[1]]}";
    static const uint8_t xor_mp[] = {
        0x82, 0xa1, 'x', 0x91, 0x92, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0,
        0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xa1, 'y', 0x91, 0x91,
        0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0
    };
    /* what Python's msgpack_numpy.packb({"x": [[0, 1]], "y": [[1]]}) sends
     * as float32 arrays: bench-http's train body */
    static const uint8_t xor_np[] = {
        0x82, 0xa1, 0x78, 0x85, 0xc4, 0x02, 0x6e, 0x64, 0xc3, 0xc4, 0x04,
        0x74, 0x79, 0x70, 0x65, 0xa3, 0x3c, 0x66, 0x34, 0xc4, 0x04, 0x6b,
        0x69, 0x6e, 0x64, 0xc4, 0x00, 0xc4, 0x05, 0x73, 0x68, 0x61, 0x70,
        0x65, 0x92, 0x01, 0x02, 0xc4, 0x04, 0x64, 0x61, 0x74, 0x61, 0xc4,
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f, 0xa1, 0x79,
        0x85, 0xc4, 0x02, 0x6e, 0x64, 0xc3, 0xc4, 0x04, 0x74, 0x79, 0x70,
        0x65, 0xa3, 0x3c, 0x66, 0x34, 0xc4, 0x04, 0x6b, 0x69, 0x6e, 0x64,
        0xc4, 0x00, 0xc4, 0x05, 0x73, 0x68, 0x61, 0x70, 0x65, 0x92, 0x01,
        0x01, 0xc4, 0x04, 0x64, 0x61, 0x74, 0x61, 0xc4, 0x04, 0x00, 0x00,
        0x80, 0x3f
    };
    cb_arena  a;
    uint8_t  *body;
    size_t    len;

    a.cap = (size_t) 64 << 20;
    a.base = malloc(a.cap);
    a.used = 0;

    cb_run("xor json", 0, 1, (const uint8_t *) xor_json,
           sizeof(xor_json) - 1, &a);
    cb_run("xor msgpack", 0, 0, xor_mp, sizeof(xor_mp), &a);
    cb_run("xor msgpack-numpy (x, y)", 0, 0, xor_np, sizeof(xor_np), &a);

    body = (uint8_t *) cb_json_batch(64, 784, 0, &len);
    cb_run("batch 64x784 json %.9g", 0, 1, body, len, &a);
    free(body);
    body = (uint8_t *) cb_json_batch(64, 784, 1, &len);
    cb_run("batch 64x784 json repr", 0, 1, body, len, &a);
    free(body);
    body = cb_mp_batch(64, 784, 0, &len);
    cb_run("batch 64x784 msgpack nested", 0, 0, body, len, &a);
    free(body);
    body = cb_mp_batch(64, 784, 1, &len);
    cb_run("batch 64x784 msgpack-numpy", 0, 0, body, len, &a);
    free(body);

    body = cb_weights(1, &a, &len);
    body = memcpy(malloc(len), body, len);
    cb_run("weights 784-256-10 json", 1, 1, body, len, &a);
    free(body);
    body = cb_weights(0, &a, &len);
    body = memcpy(malloc(len), body, len);
    cb_run("weights 784-256-10 numpy", 1, 0, body, len, &a);
    free(body);

    free(a.base);
    return 0;
}
