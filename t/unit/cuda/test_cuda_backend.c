/*
 * test_cuda_backend.c: the CUDA backend against the CPU backend.
 *
 * Every op runs on random inputs on both backends and the results must
 * agree to 1e-4; then whole train steps (forward, loss, backward, SGD or
 * Adam) of small MLPs run 20 steps on both from the same parameters, and
 * XOR must converge on the GPU.  Without a CUDA device the test says
 * "1..0 # SKIP no CUDA device" and passes.
 *
 * Built with -DLT_CUDA_TEST_FAKE (make unit-cuda-harness) the "GPU" is the
 * CPU backend behind host copies: that checks the test itself, not CUDA,
 * on a machine with no GPU.
 *
 * Tolerances: |got - want| <= tol * max(|want|, floor), floor chosen per
 * quantity (1 for parameters, sqrt(k) for products over k terms of O(1)
 * numbers, a fraction of the largest magnitude for gradients, which are
 * O(1/n)).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_backend.h"
#include "lt_rand.h"
#include "lt_model.h"
#include "lt_backend_cuda.h"
#include "tap.h"

#define TOL  1e-4

static const lt_backend  *CPU;
static const lt_backend  *GPU;
static uint64_t           rng_state = 2024;


/* -- the backend under test (or the harness's stand-in) -------------------- */

#ifdef LT_CUDA_TEST_FAKE

#define LT_CUDA_TEST_NAME  "fake"

static lt_backend  fake_backend;


static void
fake_copy(const lt_backend *be, void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
}


/*
 * The stand-in rounds differently from the CPU backend where a GPU would
 * (products summed in another order and precision, functions rounded
 * differently), so the tolerances are tried against honest differences.
 */
static void
fake_gemm(const lt_backend *be, int ta, int tb, int m, int n, int k,
    float alpha, const float *a, int lda, const float *b, int ldb,
    float beta, float *c, int ldc)
{
    double  s;
    float  *cij;
    int     i, j, p;

    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            s = 0.0;
            for (p = k - 1; p >= 0; p--) {
                s += (double) (ta ? a[(size_t) p * lda + i]
                                  : a[(size_t) i * lda + p])
                     * (tb ? b[(size_t) j * ldb + p]
                           : b[(size_t) p * ldb + j]);
            }
            cij = &c[(size_t) i * ldc + j];
            *cij = (float) (alpha * s + (beta == 0.0f ? 0.0 : beta * *cij));
        }
    }
}


static void
fake_sum_rows(const lt_backend *be, float *out, const float *g, int rows,
    int cols)
{
    int  r, j;

    for (j = 0; j < cols; j++) {
        out[j] = 0.0f;
        for (r = rows - 1; r >= 0; r--) {
            out[j] += g[(size_t) r * cols + j];
        }
    }
}


static void
fake_act_forward(const lt_backend *be, lt_act act, const float *x, float *y,
    int rows, int cols)
{
    size_t  i, n;

    n = (size_t) rows * cols;

    if (act == LT_ACT_TANH) {
        for (i = 0; i < n; i++) {
            y[i] = (float) tanh((double) x[i]);
        }
        return;
    }

    if (act == LT_ACT_SIGMOID) {
        for (i = 0; i < n; i++) {
            y[i] = (float) (1.0 / (1.0 + exp(-(double) x[i])));
        }
        return;
    }

    lt_backend_cpu()->act_forward(lt_backend_cpu(), act, x, y, rows, cols);
}


static int
gpu_count(void)
{
    return 1;
}


static const lt_backend *
gpu_open(int device, int tf32, lt_err *err)
{
    if (device != 0) {
        snprintf(err->msg, sizeof(err->msg), "no CUDA device %d", device);
        return NULL;
    }

    fake_backend = *lt_backend_cpu();
    fake_backend.name = "fake";
    fake_backend.to_device = fake_copy;
    fake_backend.to_host = fake_copy;
    fake_backend.gemm = fake_gemm;
    fake_backend.sum_rows = fake_sum_rows;
    fake_backend.act_forward = fake_act_forward;

    return &fake_backend;
}


static int
gpu_status(const lt_backend *be, lt_err *err)
{
    return 0;
}


static void
gpu_close(const lt_backend *be)
{
}

#else

#define LT_CUDA_TEST_NAME  "cuda"

#define gpu_count   lt_backend_cuda_device_count
#define gpu_open    lt_backend_cuda_open
#define gpu_status  lt_backend_cuda_status
#define gpu_close   lt_backend_cuda_close

#endif


/* -- helpers --------------------------------------------------------------- */

static float
urand(float lo, float hi)
{
    return lo + (hi - lo) * lt_rand_unit(&rng_state);
}


static float *
host_rand(size_t n, float lo, float hi)
{
    float   *h;
    size_t   i;

    h = malloc((n ? n : 1) * sizeof(float));
    for (i = 0; i < n; i++) {
        h[i] = urand(lo, hi);
    }

    return h;
}


static float *
host_copy(const float *src, size_t n)
{
    float  *h;

    h = malloc((n ? n : 1) * sizeof(float));
    memcpy(h, src, n * sizeof(float));

    return h;
}


/* Device memory holding a copy of n host floats (or bytes, for ints). */
static void *
dev_bytes(const void *src, size_t bytes)
{
    void  *d;

    d = GPU->alloc(GPU, bytes);
    if (d != NULL && src != NULL && bytes > 0) {
        GPU->to_device(GPU, d, src, bytes);
    }

    return d;
}


static float *
dev_floats(const float *src, size_t n)
{
    return dev_bytes(src, n * sizeof(float));
}


/* A host copy of n device floats (malloc'ed). */
static float *
fetch(const float *d, size_t n)
{
    float  *h;

    h = malloc((n ? n : 1) * sizeof(float));
    GPU->to_host(GPU, h, d, n * sizeof(float));

    return h;
}


static double
max_abs(const float *a, size_t n)
{
    double  m;
    size_t  i;

    m = 0.0;
    for (i = 0; i < n; i++) {
        if (isfinite(a[i]) && fabs(a[i]) > m) {
            m = fabs(a[i]);
        }
    }

    return m;
}


/*
 * One test: got[i] within tol * max(|want[i]|, floor) of want[i] for every
 * i; NaN must meet NaN and an infinity the same infinity.
 */
static int
agree(const char *name, const float *got, const float *want, size_t n,
    double tol, double floor)
{
    double  e, worst, lim;
    size_t  i, at;

    worst = 0.0;
    at = 0;

    for (i = 0; i < n; i++) {
        if (isnan(want[i]) || isnan(got[i])) {
            e = isnan(want[i]) && isnan(got[i]) ? 0.0 : INFINITY;

        } else if (isinf(want[i]) || isinf(got[i])) {
            e = got[i] == want[i] ? 0.0 : INFINITY;

        } else {
            lim = fmax(fabs(want[i]), floor);
            lim = fmax(lim, 1e-30);
            e = fabs((double) got[i] - want[i]) / lim;
        }

        if (e > worst) {
            worst = e;
            at = i;
        }
    }

    if (!ok(worst <= tol, name)) {
        diag("worst error %.3g (limit %.3g) at [%zu]: got %.9g, want %.9g",
             worst, tol, at, (double) got[at], (double) want[at]);
        return 0;
    }

    return 1;
}


static int
agree_float(const char *name, float got, float want, double tol)
{
    return agree(name, &got, &want, 1, tol, 1.0);
}


/* -- memory ---------------------------------------------------------------- */

static void
test_memory(void)
{
    float  *h, *back, *d1, *d2;
    void   *z;
    size_t  n;

    n = 100003;
    h = host_rand(n, -10, 10);

    d1 = dev_floats(h, n);
    d2 = GPU->alloc(GPU, n * sizeof(float));
    ok(d1 != NULL && d2 != NULL, "alloc gives device memory");

    GPU->copy(GPU, d2, d1, n * sizeof(float));
    back = fetch(d2, n);
    ok(memcmp(back, h, n * sizeof(float)) == 0,
       "to_device, copy and to_host keep every byte");
    free(back);

    /* a copy into the middle leaves the rest alone */
    GPU->copy(GPU, d2 + 10, d1, 5 * sizeof(float));
    back = fetch(d2, 20);
    ok(memcmp(back, h, 10 * sizeof(float)) == 0
       && memcmp(back + 10, h, 5 * sizeof(float)) == 0
       && memcmp(back + 15, h + 15, 5 * sizeof(float)) == 0,
       "copy of a range writes that range only");
    free(back);

    z = GPU->alloc(GPU, 0);
    ok(z != NULL, "alloc of 0 bytes gives a pointer");
    GPU->free(GPU, z);
    GPU->free(GPU, NULL);

    GPU->free(GPU, d1);
    GPU->free(GPU, d2);
    free(h);
}


/* -- gemm ------------------------------------------------------------------ */

/*
 * One product on both backends.  The stored matrices are 3 wider than
 * needed (the padding must be left alone), and with beta = 0 C starts as
 * NaN, which BLAS semantics ignore.
 */
static void
check_gemm(const lt_backend *gpu, double tol, int ta, int tb, int m, int n,
    int k, float alpha, float beta)
{
    const lt_backend  *keep;
    float             *a, *b, *c0, *cc, *gc, *da, *db, *dc;
    size_t             na, nb, nc;
    char               name[160];
    int                lda, ldb, ldc, i, j, pad_ok;
    float             *want, *got;

    keep = GPU;
    GPU = gpu;

    lda = (ta ? m : k) + 3;
    ldb = (tb ? k : n) + 3;
    ldc = n + 3;
    na = (size_t) lda * (ta ? k : m);
    nb = (size_t) ldb * (tb ? n : k);
    nc = (size_t) ldc * m;

    a = host_rand(na, -1, 1);
    b = host_rand(nb, -1, 1);
    c0 = host_rand(nc, -1, 1);
    if (beta == 0.0f) {
        for (i = 0; i < (int) nc; i++) {
            c0[i] = NAN;
        }
    }
    cc = host_copy(c0, nc);

    da = dev_floats(a, na);
    db = dev_floats(b, nb);
    dc = dev_floats(c0, nc);

    CPU->gemm(CPU, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc);
    GPU->gemm(GPU, ta, tb, m, n, k, alpha, da, lda, db, ldb, beta, dc, ldc);
    gc = fetch(dc, nc);

    /* the m x n results, packed, then the padding */
    want = malloc((size_t) m * n * sizeof(float));
    got = malloc((size_t) m * n * sizeof(float));
    pad_ok = 1;
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            want[(size_t) i * n + j] = cc[(size_t) i * ldc + j];
            got[(size_t) i * n + j] = gc[(size_t) i * ldc + j];
        }
        pad_ok &= memcmp(gc + (size_t) i * ldc + n, c0 + (size_t) i * ldc + n,
                         3 * sizeof(float)) == 0;
    }

    snprintf(name, sizeof(name), "%s gemm %c%c %dx%dx%d alpha %g beta %g",
             gpu->name, ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k,
             (double) alpha, (double) beta);
    /* summation-order differences grow as sqrt(k) */
    agree(name, got, want, (size_t) m * n, tol,
          fmax(1.0, sqrt((double) k)));

    if (!pad_ok) {
        snprintf(name, sizeof(name), "gemm %c%c %dx%dx%d: padding kept",
                 ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k);
        fail(name);
    }

    GPU->free(GPU, da);
    GPU->free(GPU, db);
    GPU->free(GPU, dc);
    free(a);
    free(b);
    free(c0);
    free(cc);
    free(gc);
    free(want);
    free(got);

    GPU = keep;
}


static void
test_gemm(void)
{
    /* tiny, vectors (m or n of 1), outer products, the MLP's shapes */
    static const int  shapes[][3] = {
        { 1, 1, 1 }, { 2, 3, 4 }, { 1, 20, 2 }, { 20, 2, 1 }, { 1, 1, 20 },
        { 1, 256, 784 }, { 300, 1, 50 }, { 256, 784, 1 }, { 64, 40, 30 },
        { 7, 9, 200 }, { 33, 65, 129 }, { 256, 1024, 784 },
        { 1024, 784, 256 }, { 256, 784, 1024 }
    };
    size_t  s;
    int     t;

    for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        for (t = 0; t < 4; t++) {
            check_gemm(GPU, TOL, t & 1, t >> 1, shapes[s][0], shapes[s][1],
                       shapes[s][2], 1.0f, 0.0f);
        }
        /* the backward product and the fused SGD update */
        check_gemm(GPU, TOL, 1, 0, shapes[s][0], shapes[s][1], shapes[s][2],
                   -0.5f, 0.75f);
        check_gemm(GPU, TOL, 0, 1, shapes[s][0], shapes[s][1], shapes[s][2],
                   2.0f, 1.0f);
    }
}


/* TF32: a separate backend object; about 3 significant digits. */
static void
test_tf32(void)
{
#ifndef LT_CUDA_TEST_FAKE
    const lt_backend  *tf;
    lt_err             err;

    tf = gpu_open(0, 1, &err);
    if (!ok(tf != NULL, "a second backend, with TF32")) {
        diag("%s", err.msg);
        return;
    }

    check_gemm(tf, 2e-2, 0, 1, 256, 1024, 784, 1.0f, 0.0f);
    check_gemm(tf, 2e-2, 1, 0, 1024, 784, 256, -0.5f, 1.0f);
    ok(gpu_status(tf, &err) == 0, "the TF32 backend reports no failure");
    gpu_close(tf);
#endif
}


/* -- bias ------------------------------------------------------------------ */

static const int  row_shapes[][2] = {
    { 1, 1 }, { 7, 10 }, { 3, 1 }, { 1, 1000 }, { 64, 1000 }, { 4097, 33 },
    { 300, 784 }, { 4096, 10 }, { 10000, 3 }, { 1100, 300 }
};

#define NSHAPES  (sizeof(row_shapes) / sizeof(row_shapes[0]))


static void
test_bias(void)
{
    float   *y, *bias, *g, *want, *got, *dy, *db, *dg, *dout;
    size_t   s, n;
    char     name[128];
    int      rows, cols, i;

    for (s = 0; s < NSHAPES; s++) {
        rows = row_shapes[s][0];
        cols = row_shapes[s][1];
        n = (size_t) rows * cols;

        y = host_rand(n, -1, 1);
        bias = host_rand((size_t) cols, -1, 1);
        dy = dev_floats(y, n);
        db = dev_floats(bias, (size_t) cols);

        CPU->add_bias(CPU, y, bias, rows, cols);
        GPU->add_bias(GPU, dy, db, rows, cols);
        got = fetch(dy, n);
        snprintf(name, sizeof(name), "add_bias %dx%d", rows, cols);
        agree(name, got, y, n, TOL, 1.0);
        free(got);

        /* sum_rows overwrites out: start it as NaN */
        g = host_rand(n, -1, 1);
        want = malloc((size_t) cols * sizeof(float));
        for (i = 0; i < cols; i++) {
            want[i] = NAN;
        }
        dg = dev_floats(g, n);
        dout = dev_floats(want, (size_t) cols);

        CPU->sum_rows(CPU, want, g, rows, cols);
        GPU->sum_rows(GPU, dout, dg, rows, cols);
        got = fetch(dout, (size_t) cols);
        snprintf(name, sizeof(name), "sum_rows %dx%d", rows, cols);
        agree(name, got, want, (size_t) cols, TOL, sqrt((double) rows));

        free(got);
        free(want);
        free(g);
        free(y);
        free(bias);
        GPU->free(GPU, dy);
        GPU->free(GPU, db);
        GPU->free(GPU, dg);
        GPU->free(GPU, dout);
    }
}


/* -- activations ----------------------------------------------------------- */

static const char  *act_names[] = {
    "ReLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax"
};


static void
test_act(void)
{
    float   *x, *y, *dyv, *dx, *got, *d_x, *d_y, *d_dy, *d_dx;
    size_t   s, n;
    char     name[128];
    int      a, rows, cols;

    for (a = LT_ACT_RELU; a <= LT_ACT_LOGSOFTMAX; a++) {
        for (s = 0; s < NSHAPES; s++) {
            rows = row_shapes[s][0];
            cols = row_shapes[s][1];
            n = (size_t) rows * cols;

            x = host_rand(n, -6, 6);
            y = malloc(n * sizeof(float));
            dyv = host_rand(n, -1, 1);
            dx = malloc(n * sizeof(float));

            d_x = dev_floats(x, n);
            d_y = dev_floats(NULL, n);
            d_dy = dev_floats(dyv, n);
            d_dx = dev_floats(NULL, n);

            CPU->act_forward(CPU, (lt_act) a, x, y, rows, cols);
            GPU->act_forward(GPU, (lt_act) a, d_x, d_y, rows, cols);
            got = fetch(d_y, n);
            snprintf(name, sizeof(name), "%s forward %dx%d", act_names[a],
                     rows, cols);
            /* log-softmax values are O(log cols): floor 1 */
            agree(name, got, y, n, TOL,
                  a == LT_ACT_LOGSOFTMAX ? 1.0 : 1e-2 * max_abs(y, n));
            free(got);

            /* backward from the CPU's y, so both see the same inputs */
            GPU->to_device(GPU, d_y, y, n * sizeof(float));
            CPU->act_backward(CPU, (lt_act) a, x, y, dyv, dx, rows, cols);
            GPU->act_backward(GPU, (lt_act) a, d_x, d_y, d_dy, d_dx, rows,
                              cols);
            got = fetch(d_dx, n);
            snprintf(name, sizeof(name), "%s backward %dx%d", act_names[a],
                     rows, cols);
            agree(name, got, dx, n, TOL, 1e-2 * max_abs(dx, n));
            free(got);

            free(x);
            free(y);
            free(dyv);
            free(dx);
            GPU->free(GPU, d_x);
            GPU->free(GPU, d_y);
            GPU->free(GPU, d_dy);
            GPU->free(GPU, d_dx);
        }
    }
}


/* The CPU backend's edge cases (test_backend.c) on the GPU. */
static void
test_act_edges(void)
{
    float  x[4], *y, *d_x, *d_y;

    d_x = dev_floats(NULL, 4);
    d_y = dev_floats(NULL, 4);

    x[0] = 1e30f;
    x[1] = -1e30f;
    x[2] = NAN;
    x[3] = 0.0f;
    GPU->to_device(GPU, d_x, x, sizeof(x));
    GPU->act_forward(GPU, LT_ACT_TANH, d_x, d_y, 1, 4);
    y = fetch(d_y, 4);
    ok(y[0] == 1.0f && y[1] == -1.0f && isnan(y[2]) && y[3] == 0.0f,
       "tanh(+-huge) = +-1, tanh(NaN) is NaN, tanh(0) = 0");
    free(y);

    x[0] = 100.0f;
    x[1] = -100.0f;
    x[2] = 0.0f;
    GPU->to_device(GPU, d_x, x, 3 * sizeof(float));
    GPU->act_forward(GPU, LT_ACT_SIGMOID, d_x, d_y, 1, 3);
    y = fetch(d_y, 3);
    ok(y[0] == 1.0f && y[1] >= 0.0f && y[1] < 1e-40f && y[2] == 0.5f,
       "sigmoid saturates without NaN");
    free(y);

    x[0] = 1000.0f;
    x[1] = 0.0f;
    x[2] = -1000.0f;
    x[3] = 3.0f;
    GPU->to_device(GPU, d_x, x, sizeof(x));
    GPU->act_forward(GPU, LT_ACT_SOFTMAX, d_x, d_y, 2, 2);
    y = fetch(d_y, 4);
    ok(y[0] == 1.0f && y[1] == 0.0f && fabsf(y[2] + y[3] - 1.0f) < 1e-6f,
       "softmax of +-1000: finite rows summing to 1");
    free(y);
    GPU->act_forward(GPU, LT_ACT_LOGSOFTMAX, d_x, d_y, 2, 2);
    y = fetch(d_y, 4);
    ok(y[0] == 0.0f && y[1] == -1000.0f && isfinite(y[2]),
       "log-softmax of +-1000 is finite");
    free(y);

    /* in place, as the CPU backend allows */
    x[0] = 1.0f;
    x[1] = 2.0f;
    x[2] = 3.0f;
    x[3] = 4.0f;
    GPU->to_device(GPU, d_x, x, sizeof(x));
    GPU->act_forward(GPU, LT_ACT_SOFTMAX, d_x, d_x, 2, 2);
    y = fetch(d_x, 4);
    CPU->act_forward(CPU, LT_ACT_SOFTMAX, x, x, 2, 2);
    agree("softmax in place", y, x, 4, TOL, 1e-2);
    free(y);

    GPU->free(GPU, d_x);
    GPU->free(GPU, d_y);
}


/* -- losses ---------------------------------------------------------------- */

static void
test_loss(void)
{
    float    *p, *t, *gc, *gg, *d_p, *d_t, *d_g, lc, lg;
    double    gfloor;
    int32_t  *idx, *d_idx;
    size_t    s, n, i;
    char      name[128];
    int       rows, cols, kind;

    for (s = 0; s < NSHAPES; s++) {
        rows = row_shapes[s][0];
        cols = row_shapes[s][1];
        n = (size_t) rows * cols;

        for (kind = 0; kind < 4; kind++) {
            /* 0 MSE, 1 BCE, 2 CE indices, 3 CE probabilities */
            p = kind == 1 ? host_rand(n, 0.001f, 0.999f)
                          : host_rand(n, -4, 4);
            t = kind == 1 ? host_rand(n, 0, 1) : host_rand(n, -1, 1);
            idx = malloc((size_t) rows * sizeof(int32_t));

            for (i = 0; i < (size_t) rows; i++) {
                idx[i] = (int32_t) ((i * 7 + 3) % (size_t) cols);
            }

            if (kind == 1 && n >= 4) {
                /* certain answers, right and wrong: the log clamp */
                p[0] = 0.0f;
                t[0] = 1.0f;
                p[1] = 1.0f;
                t[1] = 0.0f;
                p[2] = 1.0f;
                t[2] = 1.0f;
                p[3] = 0.0f;
                t[3] = 0.0f;
            }

            if (kind == 3) {
                /* rows of non-negative weights, some summing to 1 */
                for (i = 0; i < n; i++) {
                    t[i] = fabsf(t[i]);
                }
            }

            gc = malloc(n * sizeof(float));
            d_p = dev_floats(p, n);
            d_t = dev_floats(t, n);
            d_g = dev_floats(NULL, n);
            d_idx = dev_bytes(idx, (size_t) rows * sizeof(int32_t));

            switch (kind) {
            case 0:
                lc = CPU->loss_mse(CPU, p, t, gc, rows, cols);
                lg = GPU->loss_mse(GPU, d_p, d_t, d_g, rows, cols);
                break;
            case 1:
                lc = CPU->loss_bce(CPU, p, t, gc, rows, cols);
                lg = GPU->loss_bce(GPU, d_p, d_t, d_g, rows, cols);
                break;
            case 2:
                lc = CPU->loss_ce(CPU, p, idx, NULL, gc, rows, cols);
                lg = GPU->loss_ce(GPU, d_p, d_idx, NULL, d_g, rows, cols);
                break;
            default:
                lc = CPU->loss_ce(CPU, p, NULL, t, gc, rows, cols);
                lg = GPU->loss_ce(GPU, d_p, NULL, d_t, d_g, rows, cols);
                break;
            }

            gg = fetch(d_g, n);

            /* BCE's certain answers have gradients of 1e12 / n: scale
             * the others' tolerance by the others */
            gfloor = kind == 1 && n > 8 ? 1e-2 * max_abs(gc + 4, n - 4)
                                        : 1e-2 * max_abs(gc, n);

            snprintf(name, sizeof(name), "%s loss %dx%d",
                     kind == 0 ? "MSE" : kind == 1 ? "BCE"
                     : kind == 2 ? "CE (indices)" : "CE (probabilities)",
                     rows, cols);
            agree_float(name, lg, lc, TOL);
            strcat(name, ": gradient");
            agree(name, gg, gc, n, TOL, gfloor);

            free(p);
            free(t);
            free(idx);
            free(gc);
            free(gg);
            GPU->free(GPU, d_p);
            GPU->free(GPU, d_t);
            GPU->free(GPU, d_g);
            GPU->free(GPU, d_idx);
        }
    }
}


/* -- optimizers ------------------------------------------------------------ */

static void
test_optim(void)
{
    float   *p, *g, *vel, *m, *v, *out, *got;
    float   *d_p, *d_g, *d_vel, *d_m, *d_v, *d_out;
    size_t   n;
    int      step;

    n = 300007;
    p = host_rand(n, -1, 1);
    g = host_rand(n, -1, 1);
    vel = host_rand(n, -1, 1);
    m = host_rand(n, -0.1f, 0.1f);
    v = host_rand(n, 0, 0.01f);
    out = malloc(n * sizeof(float));

    d_p = dev_floats(p, n);
    d_g = dev_floats(g, n);
    d_vel = dev_floats(vel, n);
    d_m = dev_floats(m, n);
    d_v = dev_floats(v, n);
    d_out = dev_floats(NULL, n);

    /* plain SGD: no velocity at all (the fused path's bias update) */
    CPU->sgd(CPU, p, out, g, NULL, NULL, n, 0.1f, 0.0f, 0.01f, 1);
    GPU->sgd(GPU, d_p, d_out, d_g, NULL, NULL, n, 0.1f, 0.0f, 0.01f, 1);
    got = fetch(d_out, n);
    agree("SGD, weight decay", got, out, n, TOL, 1.0);
    free(got);

    /* momentum: the first step sets the velocity, later ones update it;
     * in place */
    for (step = 1; step <= 3; step++) {
        CPU->sgd(CPU, p, p, g, vel, vel, n, 0.05f, 0.9f, 0.001f, step == 1);
        GPU->sgd(GPU, d_p, d_p, d_g, d_vel, d_vel, n, 0.05f, 0.9f, 0.001f,
                 step == 1);
    }
    got = fetch(d_p, n);
    agree("SGD momentum, 3 steps in place: parameters", got, p, n, TOL, 1.0);
    free(got);
    got = fetch(d_vel, n);
    agree("SGD momentum: velocity", got, vel, n, TOL, 1.0);
    free(got);

    /* Adam, steps 1..7, into out then back in place */
    for (step = 1; step <= 7; step++) {
        CPU->adam(CPU, p, step == 1 ? out : p, g, m, v, m, v, n, 0.001f, 0.9f,
                  0.999f, 1e-8f, step == 1 ? 0.0f : 0.01f, step);
        GPU->adam(GPU, d_p, step == 1 ? d_out : d_p, d_g, d_m, d_v, d_m, d_v,
                  n,
                  0.001f, 0.9f, 0.999f, 1e-8f, step == 1 ? 0.0f : 0.01f,
                  step);
    }
    got = fetch(d_out, n);
    agree("Adam step 1 into another buffer", got, out, n, TOL, 1.0);
    free(got);
    got = fetch(d_p, n);
    agree("Adam steps 2-7 in place, weight decay: parameters", got, p, n,
          TOL, 1.0);
    free(got);
    got = fetch(d_m, n);
    agree("Adam: first moments", got, m, n, TOL, 1e-2 * max_abs(m, n));
    free(got);
    got = fetch(d_v, n);
    agree("Adam: second moments", got, v, n, TOL, 1e-2 * max_abs(v, n));
    free(got);

    free(p);
    free(g);
    free(vel);
    free(m);
    free(v);
    free(out);
    GPU->free(GPU, d_p);
    GPU->free(GPU, d_g);
    GPU->free(GPU, d_vel);
    GPU->free(GPU, d_m);
    GPU->free(GPU, d_v);
    GPU->free(GPU, d_out);
}


/* -- whole models ---------------------------------------------------------- */

/* in -> hidden -> act -> out (-> last, unless last is LT_LAYER_LINEAR) */
static void
mlp(lt_model_spec *s, int in, int hidden, int out, lt_layer_kind act,
    lt_layer_kind last, lt_loss_kind loss, lt_optim_kind optim, float lr,
    float momentum, float weight_decay)
{
    memset(s, 0, sizeof(*s));

    s->layers[0].kind = LT_LAYER_LINEAR;
    s->layers[0].in = in;
    s->layers[0].out = hidden;
    s->layers[1].kind = act;
    s->layers[2].kind = LT_LAYER_LINEAR;
    s->layers[2].in = hidden;
    s->layers[2].out = out;
    s->nlayers = 3;

    if (last != LT_LAYER_LINEAR) {
        s->layers[3].kind = last;
        s->nlayers = 4;
    }

    s->loss = loss;
    s->optim.kind = optim;
    s->optim.lr = lr;
    s->optim.momentum = momentum;
    s->optim.weight_decay = weight_decay;
    s->optim.beta1 = 0.9f;
    s->optim.beta2 = 0.999f;
    s->optim.eps = 1e-8f;
}


/*
 * steps train steps on both backends from the same parameters: the CPU
 * updates in place; the GPU in place too, or double-buffered (params_in
 * and params_out alternate, as the module's zone does).  Then the
 * parameters, the optimizer state, a forward pass and the gradients must
 * agree.
 */
static void
check_train(const char *name, const lt_model_spec *s, int batch, int steps,
    int onehot, int in_place)
{
    lt_workspace  *hws, *dws;
    lt_tensor      x, y, hout, dout;
    lt_model       m;
    lt_err         err;
    int64_t        xshape[2], yshape[2];
    float         *xs, *ys, *host, *dA, *dB, *cur, *other, *t, *got;
    float         *hgrad, *dgrad, hl, dl;
    double         e, worst_loss;
    size_t         P, S, i;
    char           what[200];
    int            rc, step, ce_index;

    if (lt_model_build(&m, s, &err) != 0) {
        fail(name);
        diag("%s", err.msg);
        return;
    }

    P = m.param_count;
    S = m.state_count;
    ce_index = s->loss == LT_LOSS_CE && !onehot;

    xs = host_rand((size_t) batch * m.in_dim, -1, 1);
    ys = malloc((size_t) batch * m.out_dim * sizeof(float));
    for (i = 0; i < (size_t) batch * m.out_dim; i++) {
        ys[i] = s->loss == LT_LOSS_MSE ? urand(-0.8f, 0.8f) : 0.0f;
    }
    for (i = 0; i < (size_t) batch; i++) {
        if (ce_index) {
            ys[i] = (float) ((i * 5 + 1) % (size_t) m.out_dim);

        } else if (s->loss == LT_LOSS_CE) {
            ys[i * m.out_dim + (i * 5 + 1) % (size_t) m.out_dim] = 1.0f;

        } else if (s->loss == LT_LOSS_BCE) {
            ys[i * m.out_dim] = (float) (urand(0, 1) > 0.5f);
        }
    }

    xshape[0] = batch;
    xshape[1] = m.in_dim;
    yshape[0] = batch;
    yshape[1] = m.out_dim;
    lt_tensor_view(&x, xs, 2, xshape);
    lt_tensor_view(&y, ys, ce_index ? 1 : 2, yshape);

    host = calloc(P + S, sizeof(float));
    lt_model_init_params(&m, host, 5);
    dA = dev_floats(host, P + S);       /* parameters, then the state */
    dB = dev_floats(NULL, P);

    hws = lt_workspace_new(&m, CPU, 1, &err);
    dws = lt_workspace_new(&m, GPU, 1, &err);
    if (hws == NULL || dws == NULL || dA == NULL || dB == NULL) {
        fail(name);
        diag("setup: %s", err.msg);
        return;
    }

    rc = 0;
    cur = dA;
    other = dB;
    worst_loss = 0.0;

    for (step = 1; step <= steps; step++) {
        rc |= lt_model_train_step(&m, hws, host, host, host + P, step, &x,
                                  &y, &hl, &err);
        rc |= lt_model_train_step(&m, dws, cur, in_place ? cur : other,
                                  dA + P, step, &x, &y, &dl, &err);
        if (!in_place) {
            t = cur;
            cur = other;
            other = t;
        }
        e = fabs((double) dl - hl) / fmax(1.0, fabs(hl));
        if (!(e <= worst_loss)) {
            worst_loss = isnan(e) ? INFINITY : e;
        }
    }

    snprintf(what, sizeof(what), "%s: %d train steps succeed", name, steps);
    if (!ok(rc == 0 && gpu_status(GPU, &err) == 0, what)) {
        diag("%s", err.msg);
    }

    snprintf(what, sizeof(what), "%s: losses agree at every step", name);
    if (!ok(worst_loss <= TOL, what)) {
        diag("worst relative loss difference %g", worst_loss);
    }

    got = fetch(cur, P);
    snprintf(what, sizeof(what), "%s: parameters agree after %d steps",
             name, steps);
    agree(what, got, host, P, TOL, 1.0);
    free(got);

    if (S > 0) {
        got = fetch(dA + P, S);
        snprintf(what, sizeof(what), "%s: optimizer state agrees", name);
        agree(what, got, host + P, S, TOL, 1e-2 * max_abs(host + P, S));
        free(got);
    }

    /* forward with the trained parameters: the output is on the host */
    rc = lt_model_forward(&m, hws, host, &x, &hout, &err);
    rc |= lt_model_forward(&m, dws, cur, &x, &dout, &err);
    snprintf(what, sizeof(what), "%s: forward outputs agree", name);
    if (rc != 0) {
        fail(what);
        diag("%s", err.msg);

    } else {
        agree(what, dout.data, hout.data, (size_t) batch * m.out_dim, TOL,
              1e-2 * max_abs(hout.data, (size_t) batch * m.out_dim));
    }

    /* gradients only */
    hgrad = malloc(P * sizeof(float));
    dgrad = dev_floats(NULL, P);
    rc = lt_model_gradients(&m, hws, host, &x, &y, hgrad, &hl, &err);
    rc |= lt_model_gradients(&m, dws, cur, &x, &y, dgrad, &dl, &err);
    snprintf(what, sizeof(what), "%s: gradients agree", name);
    if (rc != 0) {
        fail(what);
        diag("%s", err.msg);

    } else {
        got = fetch(dgrad, P);
        agree(what, got, hgrad, P, TOL, 1e-2 * max_abs(hgrad, P));
        free(got);
    }

    lt_workspace_free(hws);
    lt_workspace_free(dws);
    GPU->free(GPU, dA);
    GPU->free(GPU, dB);
    GPU->free(GPU, dgrad);
    free(hgrad);
    free(host);
    free(xs);
    free(ys);
}


static void
test_models(void)
{
    lt_model_spec  s;

    /* plain SGD: the update fused into the backward gemm */
    mlp(&s, 8, 32, 4, LT_LAYER_TANH, LT_LAYER_LINEAR, LT_LOSS_MSE,
        LT_OPTIM_SGD, 0.05f, 0.0f, 0.0f);
    check_train("Linear-Tanh-Linear MSE SGD, in place", &s, 64, 20, 0, 1);
    check_train("Linear-Tanh-Linear MSE SGD, double-buffered", &s, 64, 20,
                0, 0);

    mlp(&s, 8, 32, 4, LT_LAYER_TANH, LT_LAYER_LINEAR, LT_LOSS_MSE,
        LT_OPTIM_SGD, 0.05f, 0.9f, 1e-3f);
    check_train("Linear-Tanh-Linear MSE SGD momentum, weight decay", &s, 64,
                20, 0, 0);

    mlp(&s, 20, 64, 5, LT_LAYER_RELU, LT_LAYER_LINEAR, LT_LOSS_CE,
        LT_OPTIM_ADAM, 0.001f, 0.0f, 0.0f);
    check_train("Linear-ReLU-Linear CE (indices) Adam", &s, 64, 20, 0, 0);

    mlp(&s, 20, 64, 5, LT_LAYER_RELU, LT_LAYER_LINEAR, LT_LOSS_CE,
        LT_OPTIM_SGD, 0.1f, 0.0f, 1e-4f);
    check_train("Linear-ReLU-Linear CE (one-hot) SGD, weight decay", &s, 64,
                20, 1, 0);

    mlp(&s, 8, 16, 1, LT_LAYER_TANH, LT_LAYER_SIGMOID, LT_LOSS_BCE,
        LT_OPTIM_SGD, 0.1f, 0.5f, 0.0f);
    check_train("Linear-Tanh-Linear-Sigmoid BCE SGD momentum", &s, 32, 20, 0,
                1);

    /* a batch above the grid cap of the row kernels (8192 warps) */
    mlp(&s, 16, 32, 10, LT_LAYER_RELU, LT_LAYER_LOGSOFTMAX, LT_LOSS_MSE,
        LT_OPTIM_ADAM, 0.001f, 0.0f, 0.0f);
    check_train("Linear-ReLU-Linear-LogSoftmax MSE Adam, batch 9000", &s,
                9000, 3, 0, 0);
}


/* The WebTorch example, trained on the GPU alone. */
static void
test_xor(void)
{
    static float   xs[8] = { 0, 0, 0, 1, 1, 0, 1, 1 };
    static float   ys[4] = { 0, 1, 1, 0 };
    lt_model_spec  s;
    lt_workspace  *ws;
    lt_tensor      x, y, out;
    lt_model       m;
    lt_err         err;
    int64_t        xshape[] = { 4, 2 };
    int64_t        yshape[] = { 4, 1 };
    float         *host, *d, loss;
    int            step, rc, right, i;

    mlp(&s, 2, 20, 1, LT_LAYER_TANH, LT_LAYER_TANH, LT_LOSS_MSE,
        LT_OPTIM_SGD, 0.1f, 0.9f, 0.0f);
    if (lt_model_build(&m, &s, &err) != 0) {
        fail("XOR model builds");
        diag("%s", err.msg);
        return;
    }

    lt_tensor_view(&x, xs, 2, xshape);
    lt_tensor_view(&y, ys, 2, yshape);

    host = calloc(m.param_count + m.state_count, sizeof(float));
    lt_model_init_params(&m, host, 1);
    d = dev_floats(host, m.param_count + m.state_count);
    ws = lt_workspace_new(&m, GPU, 4, &err);

    rc = 0;
    loss = NAN;
    for (step = 1; step <= 500; step++) {
        rc |= lt_model_train_step(&m, ws, d, d, d + m.param_count, step,
                                  &x, &y, &loss, &err);
    }

    rc |= lt_model_forward(&m, ws, d, &x, &out, &err);
    if (!ok(rc == 0, "XOR: 500 steps on the GPU")) {
        diag("%s", err.msg);
    }

    right = 0;
    for (i = 0; rc == 0 && i < 4; i++) {
        right += fabsf(out.data[i] - ys[i]) < 0.2f;
    }

    diag("XOR: loss %g after 500 steps", (double) loss);
    if (!ok(loss < 0.01f && right == 4, "XOR converges on the GPU")) {
        diag("loss %g, %d of 4 within 0.2", (double) loss, right);
    }

    lt_workspace_free(ws);
    GPU->free(GPU, d);
    free(host);
}


/* -- failures -------------------------------------------------------------- */

static void
test_failures(int count)
{
    const lt_backend  *be;
    lt_err             err;

    err.msg[0] = '\0';
    be = gpu_open(count, 0, &err);
    ok(be == NULL, "opening a device that does not exist fails");
    like(err.msg, "no CUDA device", "... and says so");

#ifndef LT_CUDA_TEST_FAKE
    {
    float  *d;

    /* an op that cannot run is recorded, reported once, then forgotten */
    d = dev_floats(NULL, 16);
    GPU->sgd(GPU, d, d, d, NULL, NULL, 16, 0.1f, 0.9f, 0.0f, 1);
    err.msg[0] = '\0';
    ok(lt_backend_cuda_status(GPU, &err) == -1, "a failed op is reported");
    like(err.msg, "velocity", "... with what failed");
    ok(lt_backend_cuda_status(GPU, &err) == 0, "... once");
    GPU->free(GPU, d);
    is_int(lt_backend_cuda_device(GPU), 0, "the backend is on device 0");
    }
#endif

    is_str(GPU->name, LT_CUDA_TEST_NAME, "the backend's name");
}


int
main(void)
{
    lt_err  err;
    int     count;

    count = gpu_count();
    if (count <= 0) {
        printf("1..0 # SKIP no CUDA device\n");
        return 0;
    }

    CPU = lt_backend_cpu();
    GPU = gpu_open(0, 0, &err);
    if (GPU == NULL) {
        fail("the CUDA backend opens on device 0");
        diag("%s", err.msg);
        return done_testing();
    }

    diag("%d device(s); testing device 0", count);

    test_memory();
    test_gemm();
    test_tf32();
    test_bias();
    test_act();
    test_act_edges();
    test_loss();
    test_optim();
    test_models();
    test_xor();
    test_failures(count);

    if (!ok(gpu_status(GPU, &err) == 0, "no failure was recorded")) {
        diag("%s", err.msg);
    }

    gpu_close(GPU);

    return done_testing();
}
