/*
 * test_npy.c: .npy and .npz files as numpy writes them
 * (fixtures/npy_vectors.h, from fixtures/gen_npy.py), the ways they can
 * be wrong, the header the module writes for its outputs, the job body
 * decoder and the validation figures.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_npy.h"
#include "lt_job.h"
#include "lt_model.h"
#include "tap.h"
#include "fixtures/npy_vectors.h"


static int
load(const unsigned char *buf, size_t len, float *out, int64_t cap,
    lt_npy_info *info, lt_err *err)
{
    if (lt_npy_parse(buf, len, info, err) != 0) {
        return -1;
    }

    if (info->numel > cap) {
        return lt_error(err, "fixture larger than the test's buffer");
    }

    return lt_npy_to_float(info, buf, out, err);
}


static void
test_npy(void)
{
    float        f[16];
    lt_err       err;
    lt_npy_info  info;

    ok(load(npy_f4_3x4, sizeof(npy_f4_3x4), f, 16, &info, &err) == 0,
       "f4 [3, 4] parses");
    is_int(info.ndim, 2, "two dimensions");
    is_int((int) info.shape[0], 3, "3 rows");
    is_int((int) info.shape[1], 4, "4 columns");
    is_float(f[11], 11.0 / 4, 1e-7, "last element");
    ok(info.data_off % 64 == 0, "data aligned as numpy writes it");

    ok(load(npy_f8_3x4, sizeof(npy_f8_3x4), f, 16, &info, &err) == 0
       && fabsf(f[5] - 1.25f) < 1e-7, "f8 converts");
    ok(load(npy_i8_3, sizeof(npy_i8_3), f, 16, &info, &err) == 0
       && info.integer && f[0] == 2.0f, "i8 labels");
    ok(load(npy_i4_3, sizeof(npy_i4_3), f, 16, &info, &err) == 0
       && f[0] == -1.0f && f[2] == 7.0f, "i4 with a negative");
    ok(load(npy_u1_3, sizeof(npy_u1_3), f, 16, &info, &err) == 0
       && f[2] == 255.0f, "u1");
    ok(load(npy_i1_3, sizeof(npy_i1_3), f, 16, &info, &err) == 0
       && f[0] == -128.0f, "i1");
    ok(load(npy_v2, sizeof(npy_v2), f, 16, &info, &err) == 0
       && f[3] == 0.75f, "format version 2.0");
    ok(load(npy_scalar, sizeof(npy_scalar), f, 16, &info, &err) == 0
       && info.ndim == 0 && f[0] == 1.5f, "a 0-d array");

    ok(lt_npy_parse(npy_fortran, sizeof(npy_fortran), &info, &err) != 0
       && strstr(err.msg, "Fortran") != NULL, "Fortran order refused");
    diag("%s", err.msg);
    ok(lt_npy_parse(npy_big_endian, sizeof(npy_big_endian), &info, &err)
       != 0 && strstr(err.msg, "big-endian") != NULL, "big-endian refused");
    ok(lt_npy_parse(npy_c8, sizeof(npy_c8), &info, &err) != 0
       && strstr(err.msg, "<c8") != NULL, "complex refused, named");
    ok(load(npy_nan, sizeof(npy_nan), f, 16, &info, &err) != 0
       && strstr(err.msg, "element 1") != NULL, "NaN refused, element named");

    /* cut short: the shape promises more bytes than there are */
    ok(lt_npy_parse(npy_f4_3x4, sizeof(npy_f4_3x4) - 4, &info, &err) != 0
       && strstr(err.msg, "needs 48 bytes") != NULL, "truncated data");
    ok(lt_npy_parse(npy_f4_3x4, 40, &info, &err) != 0, "truncated header");
    ok(lt_npy_parse((const uint8_t *) "hello world", 11, &info, &err) != 0
       && strstr(err.msg, "magic") != NULL, "not an npy");
}


static void
test_header(void)
{
    char         buf[256], *data;
    float        v[6] = { 1, 2, 3, 4, 5, 6 }, f[6];
    size_t       h;
    int64_t      shape[2] = { 3, 2 }, one[1] = { 6 };
    lt_err       err;
    lt_npy_info  info;

    h = lt_npy_header(buf, sizeof(buf), 2, shape);
    ok(h == 128, "header of a [3, 2] f4: 128 bytes, as numpy writes it");

    data = malloc(h + sizeof(v));
    memcpy(data, buf, h);
    memcpy(data + h, v, sizeof(v));
    ok(load((uint8_t *) data, h + sizeof(v), f, 6, &info, &err) == 0
       && info.ndim == 2 && info.shape[1] == 2 && f[5] == 6.0f,
       "our own header reads back");
    free(data);

    h = lt_npy_header(buf, sizeof(buf), 1, one);
    buf[h] = '\0';
    ok(strstr(buf + 10, "(6,)") != NULL, "a 1-tuple keeps its comma");
    ok(lt_npy_header(buf, 32, 2, shape) == 0, "too small a buffer: 0");
}


static void
test_npz(void)
{
    uint8_t        *m;
    float           f[16];
    lt_err          err;
    lt_npy_info     info;
    lt_npz_member   mem;
    int             which;
    const uint8_t  *z;
    size_t          zlen;

    for (which = 0; which < 2; which++) {
        z = which ? npz_deflate : npz_stored;
        zlen = which ? sizeof(npz_deflate) : sizeof(npz_stored);

        diag("%s", which ? "deflate" : "stored");
        ok(lt_npz_find(z, zlen, "x", &mem, &err) == 0, "x found");
        is_int(mem.method, which ? 8 : 0, "method");

        m = malloc(mem.usize);
        ok(lt_npz_extract(z, zlen, &mem, m, &err) == 0
           && load(m, mem.usize, f, 16, &info, &err) == 0
           && info.shape[0] == 3 && f[11] == 11.0f / 4, "x extracts");
        free(m);

        ok(lt_npz_find(z, zlen, "y", &mem, &err) == 0, "y found");
        m = malloc(mem.usize);
        ok(lt_npz_extract(z, zlen, &mem, m, &err) == 0
           && load(m, mem.usize, f, 16, &info, &err) == 0
           && f[0] == 2.0f, "y extracts");

        /* one flipped byte of the member: the CRC or inflate says so */
        if (lt_npz_find(z, zlen, "y", &mem, &err) == 0) {
            uint8_t *bad = malloc(zlen);
            memcpy(bad, z, zlen);
            bad[mem.data_off + mem.csize - 1] ^= 0x40;
            ok(lt_npz_extract(bad, zlen, &mem, m, &err) != 0,
               "a corrupt member is refused");
            diag("%s", err.msg);
            free(bad);
        }
        free(m);
    }

    ok(lt_npz_find(npz_other, sizeof(npz_other), "x", &mem, &err) == 1
       && strstr(err.msg, "a.npy") != NULL,
       "a missing array names those there are");
    diag("%s", err.msg);
    ok(lt_npz_find(npy_f4_3x4, sizeof(npy_f4_3x4), "x", &mem, &err) == -1,
       "an .npy is no zip");

    /* every truncation of the archive fails cleanly (ASan checks reads) */
    {
        size_t  n;
        int     fine = 1;

        for (n = 0; n < sizeof(npz_stored) - 1; n++) {
            if (lt_npz_find(npz_stored, n, "x", &mem, &err) == 0) {
                fine = 0;
            }
        }
        ok(fine, "no truncation of an npz is taken for one");
    }
}


/* the decoder's allocator: everything it took, freed at the end */
static void   *t_ptrs[256];
static int     t_nptrs;

static void *
t_alloc(void *ctx, size_t size)
{
    void  *p;

    (void) ctx;

    if (t_nptrs == 256) {
        return NULL;
    }

    p = malloc(size);
    t_ptrs[t_nptrs++] = p;

    return p;
}


static void
t_free_all(void)
{
    while (t_nptrs) {
        free(t_ptrs[--t_nptrs]);
    }
}


static void
test_job_body(void)
{
    lt_err        err;
    lt_job_req    j;
    lt_codec_ctx  c = { t_alloc, NULL, 0, 0 };
    const char   *s;

    s = "{\"files\": [\"x.npy\", \"y.npy\"], \"epochs\": 3, "
        "\"batch_size\": 64, \"shuffle\": true, \"validation\": 0.25, "
        "\"seed\": 9}";
    ok(lt_codec_decode_job(&c, (const uint8_t *) s, strlen(s), 1, 0, &j,
                           &err) == 0, "a train job");
    ok(j.nfiles == 2 && strcmp(j.files[1], "y.npy") == 0 && j.epochs == 3
       && j.batch_size == 64 && j.shuffle == 1 && j.validation == 0.25
       && j.has_seed && j.seed == 9, "its fields");

    s = "{\"Files\": [\"d.npz\"]}";
    ok(lt_codec_decode_job(&c, (const uint8_t *) s, strlen(s), 1, 0, &j,
                           &err) == 0 && j.nfiles == 1 && j.epochs == 0
       && j.shuffle == -1, "the seed's Files");

    s = "{\"x\": [[1, 2], [3, 4]], \"y\": \"labels.npy\"}";
    ok(lt_codec_decode_job(&c, (const uint8_t *) s, strlen(s), 1, 0, &j,
                           &err) == 0 && j.has_x && j.x.shape[0] == 2
       && strcmp(j.y_file, "labels.npy") == 0, "inline x, y a file");

    s = "{\"files\": [\"d.npz\"], \"epoch\": 3}";
    ok(lt_codec_decode_job(&c, (const uint8_t *) s, strlen(s), 1, 0, &j,
                           &err) != 0 && strstr(err.msg, "\"epoch\"") != NULL,
       "an unknown key is refused");
    diag("%s", err.msg);

    s = "{\"files\": [\"d.npz\"], \"epochs\": 3}";
    ok(lt_codec_decode_job(&c, (const uint8_t *) s, strlen(s), 1, 1, &j,
                           &err) != 0, "epochs in a predict job: refused");

    /* MessagePack {"files": ["a\0b"]} (JSON refuses \u0000 earlier) */
    s = "\x81\xa5" "files" "\x91\xa3" "a\0b";
    ok(lt_codec_decode_job(&c, (const uint8_t *) s, 12, 0, 0, &j,
                           &err) != 0 && strstr(err.msg, "NUL") != NULL,
       "a NUL byte in a name: refused");

    /* MessagePack {"epochs": 2, "files": ["d.npz"]} with bin keys, as
     * Perl's Data::MessagePack packs it: entries after a number count */
    s = "\x82\xc4\x06" "epochs" "\x02" "\xc4\x05" "files" "\x91\xc4\x05"
        "d.npz";
    ok(lt_codec_decode_job(&c, (const uint8_t *) s, 25, 0, 0, &j,
                           &err) == 0 && j.nfiles == 1 && j.epochs == 2,
       "MessagePack: a key after a number's value is read");

    s = "{\"files\": [\"d.npz\"], \"validation\": 1}";
    ok(lt_codec_decode_job(&c, (const uint8_t *) s, strlen(s), 1, 0, &j,
                           &err) != 0, "validation 1: refused");

    s = "{\"files\": [\"a\", \"b\", \"c\"]}";
    ok(lt_codec_decode_job(&c, (const uint8_t *) s, strlen(s), 1, 0, &j,
                           &err) != 0, "three files: refused");

    s = "{\"files\": [\"d.npz\"], \"x\": \"a.npy\"}";
    ok(lt_codec_decode_job(&c, (const uint8_t *) s, strlen(s), 1, 0, &j,
                           &err) != 0, "files and x: refused");

    t_free_all();
}


static void
test_eval(void)
{
    lt_err         err;
    lt_model       m;
    lt_model_spec  spec;
    lt_tensor      out, y;
    double         sum;
    int64_t        correct, shape[2] = { 2, 3 }, n[1] = { 2 };
    float          o[6] = { 2, 0, 0, 0, 0, 5 }, t[2] = { 0, 1 };

    memset(&spec, 0, sizeof(spec));
    spec.nlayers = 1;
    spec.layers[0].kind = LT_LAYER_LINEAR;
    spec.layers[0].in = 4;
    spec.layers[0].out = 3;
    spec.loss = LT_LOSS_CE;
    spec.optim.kind = LT_OPTIM_SGD;
    spec.optim.lr = 0.1f;

    ok(lt_model_build(&m, &spec, &err) == 0, "a 4 -> 3 CE model");

    lt_tensor_view(&out, o, 2, shape);
    lt_tensor_view(&y, t, 1, n);
    sum = 0;
    ok(lt_eval_batch(&m, &out, &y, &sum, &correct, &err) == 0, "evaluates");
    is_int((int) correct, 1, "one row right (argmax 0 = 0), one wrong");
    /* row 0: lse(2,0,0) - 2; row 1: lse(0,0,5) - 0 */
    is_float(sum, (log(exp(2) + 2) - 2) + log(2 + exp(5)), 1e-5,
             "cross-entropy sum as PyTorch computes it");
}


int
main(void)
{
    test_npy();
    test_header();
    test_npz();
    test_job_body();
    test_eval();

    return done_testing();
}
