/*
 * test_checkpoint.c: a checkpoint file is hostile input, read by the
 * master at start: a torn, foreign or crafted file is refused with a
 * message, never loaded.  These cases craft headers and floats the
 * writer never produces, with a valid checksum, so only the checks in
 * lt_checkpoint_decode() stand between them and the model.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "lt_checkpoint.h"
#include "tap.h"


static lt_model  model;


static void
build(void)
{
    lt_model_spec  s;
    lt_err         err;

    memset(&s, 0, sizeof(s));
    s.layers[0].kind = LT_LAYER_LINEAR;
    s.layers[0].in = 2;
    s.layers[0].out = 3;
    s.nlayers = 1;
    s.loss = LT_LOSS_MSE;
    s.optim.kind = LT_OPTIM_ADAM;
    s.optim.lr = 0.01f;
    s.optim.beta1 = 0.9f;
    s.optim.beta2 = 0.999f;
    s.optim.eps = 1e-8f;

    if (lt_model_build(&model, &s, &err) != 0) {
        diag("build: %s", err.msg);
        exit(1);
    }
}


/* a checkpoint of a seeded model, with step and optim_step */
static uint8_t *
encode(int64_t step, int64_t optim_step, size_t *len)
{
    float               *block;
    uint8_t             *out;
    lt_checkpoint_meta   meta;
    lt_err               err;

    block = calloc(model.param_count + model.state_count, sizeof(float));
    lt_model_init_params(&model, block, 7);

    meta.step = step;
    meta.optim_step = optim_step;
    meta.loss = 0.5;

    if (lt_checkpoint_encode(&model, "m", &meta, block,
                             block + model.param_count, &out, len, &err)
        != 0)
    {
        diag("encode: %s", err.msg);
        exit(1);
    }

    free(block);
    return out;
}


/* the trailing CRC-32 again, after a patch */
static void
reseal(uint8_t *buf, size_t len)
{
    uint32_t  crc;

    crc = (uint32_t) crc32(0L, buf, (uInt) (len - 4));
    buf[len - 4] = (uint8_t) crc;
    buf[len - 3] = (uint8_t) (crc >> 8);
    buf[len - 2] = (uint8_t) (crc >> 16);
    buf[len - 1] = (uint8_t) (crc >> 24);
}


/* replaces the first "from" in the header by "to" (same length) */
static int
patch(uint8_t *buf, size_t len, const char *from, const char *to)
{
    size_t  n, i;

    n = strlen(from);

    for (i = 16; i + n < len; i++) {
        if (memcmp(buf + i, from, n) == 0) {
            memcpy(buf + i, to, n);
            reseal(buf, len);
            return 0;
        }
    }

    diag("\"%s\" not in the header", from);
    return -1;
}


static int
decode(const uint8_t *buf, size_t len, lt_checkpoint_meta *meta,
    lt_err *err)
{
    const uint8_t  *p, *s;

    return lt_checkpoint_decode(&model, buf, len, meta, &p, &s, err);
}


static void
test_roundtrip(void)
{
    size_t               len;
    uint8_t             *buf;
    lt_checkpoint_meta   meta;
    lt_err               err;

    buf = encode(12, 5, &len);
    is_int(decode(buf, len, &meta, &err), 0, "a written checkpoint loads");
    ok(meta.step == 12 && meta.optim_step == 5,
       "with its step and optim_step");

    /* files from before optim_step: the optimizer saw every step */
    if (patch(buf, len, "\"optim_step\"", "\"optim_stXp\"") == 0) {
        is_int(decode(buf, len, &meta, &err), 0,
               "a file without optim_step loads");
        ok(meta.optim_step == 12, "its optim_step is its step");
    }

    free(buf);
}


static void
test_bad_steps(void)
{
    size_t               i, len;
    uint8_t             *buf;
    lt_checkpoint_meta   meta;
    lt_err               err;
    char                 name[128];

    /* "step": 900 in the header, patched into other 3-byte texts */
    static const char  *bad[] = { "-90", "1.5", "\"9\"", "nul" };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf = encode(900, 900, &len);

        if (patch(buf, len, "\"step\":900", "\"step\":XXX") != 0) {
            free(buf);
            continue;
        }

        patch(buf, len, "\"step\":XXX", "\"step\":   ");
        memcpy(strstr((char *) buf + 16, "\"step\":   ") + 7, bad[i], 3);
        reseal(buf, len);

        snprintf(name, sizeof(name), "step %s is refused", bad[i]);
        is_int(decode(buf, len, &meta, &err), -1, name);

        if (strcmp(bad[i], "nul") != 0 && strcmp(bad[i], "\"9\"") != 0) {
            ok(strstr(err.msg, "step must be a whole number") != NULL,
               "naming the step");
        }

        free(buf);
    }

    /* past 2^53 a double has no odd steps: refused */
    buf = encode(100000, 100000, &len);
    patch(buf, len, "\"step\":100000", "\"step\":1e+300");
    is_int(decode(buf, len, &meta, &err), -1, "step 1e300 is refused");
    free(buf);

    buf = encode(9007199254740994LL, 0, &len);
    is_int(decode(buf, len, &meta, &err), -1, "step 2^53 + 2 is refused");
    free(buf);

    buf = encode(10, 11, &len);
    is_int(decode(buf, len, &meta, &err), -1,
           "optim_step above step is refused");
    free(buf);
}


static void
test_nonfinite(void)
{
    size_t               len, hlen, at;
    uint8_t             *buf;
    float                v;
    lt_checkpoint_meta   meta;
    lt_err               err;
    int                  i;

    for (i = 0; i < 2; i++) {
        buf = encode(3, 3, &len);
        hlen = (size_t) buf[12] | (size_t) buf[13] << 8
               | (size_t) buf[14] << 16 | (size_t) buf[15] << 24;

        /* a parameter, then a float of the optimizer state */
        at = 16 + hlen + (i ? model.param_count + 2 : 4) * sizeof(float);
        v = i ? INFINITY : NAN;
        memcpy(buf + at, &v, sizeof(v));
        reseal(buf, len);

        is_int(decode(buf, len, &meta, &err), -1,
               i ? "an Inf in the optimizer state is refused"
                 : "a NaN parameter is refused");
        ok(strstr(err.msg, i ? "in the optimizer state at float 2"
                             : "in the parameters at float 4") != NULL,
           "naming where");
        free(buf);
    }
}


/*
 * The writer's encoder fills a buffer it is given (the checkpoint
 * thread allocates nothing): its bound holds, a smaller buffer is
 * refused, names with JSON's special bytes come back as they went in,
 * and lt_checkpoint_encode writes the same bytes.
 */
static void
test_encode_into(void)
{
    float               *block;
    size_t               cap, len, len2;
    uint8_t             *buf, *out;
    const uint8_t       *p, *st;
    const char          *name = "we\"ird\\na\001me";
    lt_checkpoint_meta   meta, back;
    lt_err               err;

    block = calloc(model.param_count + model.state_count, sizeof(float));
    lt_model_init_params(&model, block, 3);
    meta.step = 9007199254740992LL;
    meta.optim_step = 12;
    meta.loss = 0.1;

    cap = lt_checkpoint_size(&model, name);
    buf = malloc(cap);

    ok(lt_checkpoint_encode_into(&model, name, &meta, block,
                                 block + model.param_count, buf, cap - 1,
                                 &len, &err) != 0,
       "encode_into: a buffer below lt_checkpoint_size is refused");
    like(err.msg, "buffer", "... saying so");

    ok(lt_checkpoint_encode_into(&model, name, &meta, block,
                                 block + model.param_count, buf, cap, &len,
                                 &err) == 0 && len <= cap,
       "encode_into: fits lt_checkpoint_size");
    like((char *) buf + 16, "\"model\":\"we\\\"ird\\\\na\\u0001me\"",
         "the model name is escaped in the header");

    ok(lt_checkpoint_decode(&model, buf, len, &back, &p, &st, &err) == 0
       && back.step == meta.step && back.optim_step == 12
       && back.loss == 0.1 && memcmp(p, block, model.param_count * 4) == 0,
       "and decodes to the same step, loss (exactly) and parameters");

    ok(lt_checkpoint_encode(&model, name, &meta, block,
                            block + model.param_count, &out, &len2, &err)
       == 0 && len2 == len && memcmp(out, buf, len) == 0,
       "lt_checkpoint_encode writes the same bytes");

    free(out);
    free(buf);
    free(block);
}


int
main(void)
{
    build();
    test_roundtrip();
    test_bad_steps();
    test_nonfinite();
    test_encode_into();

    return done_testing();
}
