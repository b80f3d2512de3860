/*
 * test_backend.c: the CPU backend's ops against plain references, and the
 * model code driving a backend with memory of its own.
 *
 * The "device" backend here wraps the CPU ops but keeps its own memory
 * (to_device / to_host set) and checks that every pointer an op receives
 * lies in memory it allocated: that is the contract a CUDA backend will
 * rely on, tested before one exists.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "lt_backend.h"
#include "lt_backend_cpu.h"
#include "lt_rand.h"
#include "lt_model.h"
#include "lt_math.h"
#include "lt_tensor.h"
#include "tap.h"

static uint64_t  rng_state = 99;


static float
urand(float lo, float hi)
{
    return lo + (hi - lo) * lt_rand_unit(&rng_state);
}


/* -- gemm --------------------------------------------------------------------- */

/* Row-major element (i, j) of op(M) for a matrix stored with stride ld. */
static double
op_at(const float *m, int ld, int trans, int i, int j)
{
    return trans ? m[(size_t) j * ld + i] : m[(size_t) i * ld + j];
}


/*
 * One product against a double reference.  The stored matrices get a
 * stride 3 wider than needed (the padding must be left alone), and with
 * beta = 0 the output starts as NaN, which BLAS semantics ignore.
 */
static void
check_gemm(const lt_backend *be, int ta, int tb, int m, int n, int k,
    float alpha, float beta)
{
    float   *a, *b, *c, *c0;
    double   ref, err, worst;
    char     name[128];
    int      lda, ldb, ldc, i, j, p, pad_ok;

    lda = (ta ? m : k) + 3;
    ldb = (tb ? k : n) + 3;
    ldc = n + 3;
    a = malloc(sizeof(float) * (size_t) lda * (ta ? k : m));
    b = malloc(sizeof(float) * (size_t) ldb * (tb ? n : k));
    c = malloc(sizeof(float) * (size_t) ldc * m);
    c0 = malloc(sizeof(float) * (size_t) ldc * m);

    for (i = 0; i < lda * (ta ? k : m); i++) {
        a[i] = urand(-1, 1);
    }
    for (i = 0; i < ldb * (tb ? n : k); i++) {
        b[i] = urand(-1, 1);
    }
    for (i = 0; i < ldc * m; i++) {
        c0[i] = beta == 0.0f ? NAN : urand(-1, 1);
    }
    memcpy(c, c0, sizeof(float) * (size_t) ldc * m);

    be->gemm(be, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    worst = 0.0;
    pad_ok = 1;
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            ref = 0.0;
            for (p = 0; p < k; p++) {
                ref += op_at(a, lda, ta, i, p) * op_at(b, ldb, tb, p, j);
            }
            ref = alpha * ref + (beta == 0.0f ? 0.0
                                 : beta * (double) c0[i * ldc + j]);
            err = fabs(c[i * ldc + j] - ref) / (1.0 + fabs(ref));
            if (!(err <= worst)) {
                worst = err;
            }
        }
        for (j = n; j < ldc; j++) {
            pad_ok &= memcmp(&c[i * ldc + j], &c0[i * ldc + j],
                             sizeof(float)) == 0;
        }
    }

    snprintf(name, sizeof(name), "gemm %c%c %dx%dx%d alpha %g beta %g",
             ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, (double) alpha,
             (double) beta);
    if (!ok(worst < 1e-5 * sqrt((double) k) && pad_ok, name)) {
        diag("worst relative error %g, padding kept: %d", worst, pad_ok);
    }

    free(a);
    free(b);
    free(c);
    free(c0);
}


static void
test_gemm(const lt_backend *be)
{
    /* loop path, gemv paths (m or n of 1), outer products, BLAS */
    static const int  shapes[][3] = {
        { 1, 1, 1 }, { 2, 3, 4 }, { 1, 20, 2 }, { 20, 2, 1 }, { 1, 1, 20 },
        { 1, 256, 784 }, { 300, 1, 50 }, { 256, 784, 1 }, { 64, 40, 30 },
        { 7, 9, 200 }, { 2, 3, 16 }
    };
    static const int  panel_shapes[][3] = {
        { 2, 1000, 784 }, { 25, 1024, 784 }, { 32, 300, 1024 },
        { 8, 257, 512 }, { 16, 2000, 16 }
    };
    size_t  s;
    int     t;

    for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        for (t = 0; t < 4; t++) {
            check_gemm(be, t & 1, t >> 1, shapes[s][0], shapes[s][1],
                       shapes[s][2], 1.0f, 0.0f);
        }
        check_gemm(be, 1, 0, shapes[s][0], shapes[s][1], shapes[s][2],
                   -0.5f, 0.75f);
        check_gemm(be, 0, 1, shapes[s][0], shapes[s][1], shapes[s][2],
                   2.0f, 1.0f);
    }

    /* a few rows against a wide B^T: the column panels where this CPU's
     * OpenBLAS has a small-matrix sgemm, one call elsewhere; widths that
     * leave a narrow last panel */
    for (s = 0; s < sizeof(panel_shapes) / sizeof(panel_shapes[0]); s++) {
        check_gemm(be, 0, 1, panel_shapes[s][0], panel_shapes[s][1],
                   panel_shapes[s][2], 1.0f, 0.0f);
        check_gemm(be, 0, 1, panel_shapes[s][0], panel_shapes[s][1],
                   panel_shapes[s][2], -0.5f, 0.75f);
    }

    diag("column panels for small-batch products: %s",
         lt_cpu_gemm_panels_on() ? "on (measured faster)" : "off");
}


/* The panel path itself, whether or not lt_cpu_gemm picks it here. */
static void
test_gemm_panels(void)
{
    static const int  shapes[][3] = {
        { 2, 1000, 784 }, { 25, 1024, 784 }, { 32, 300, 1024 },
        { 8, 257, 512 }, { 3, 20, 64 }
    };
    float    *a, *b, *c, *ref;
    double    worst, err;
    size_t    s;
    int       m, n, k, lda, ldb, ldc, i, j;
    char      name[96];

    for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        m = shapes[s][0];
        n = shapes[s][1];
        k = shapes[s][2];
        lda = k + 5;
        ldb = k + 1;
        ldc = n + 2;
        a = malloc(sizeof(float) * (size_t) lda * m);
        b = malloc(sizeof(float) * (size_t) ldb * n);
        c = malloc(sizeof(float) * (size_t) ldc * m);
        ref = malloc(sizeof(float) * (size_t) ldc * m);

        for (i = 0; i < lda * m; i++) {
            a[i] = urand(-1, 1);
        }
        for (i = 0; i < ldb * n; i++) {
            b[i] = urand(-1, 1);
        }
        for (i = 0; i < ldc * m; i++) {
            c[i] = ref[i] = urand(-1, 1);
        }

        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 0.5f,
                    a, lda, b, ldb, -2.0f, ref, ldc);
        lt_cpu_gemm_panels(m, n, k, 0.5f, a, lda, b, ldb, -2.0f, c, ldc);

        worst = 0.0;
        for (i = 0; i < m; i++) {
            for (j = 0; j < ldc; j++) {
                err = fabs(c[i * ldc + j] - ref[i * ldc + j])
                      / (1.0 + fabs(ref[i * ldc + j]));
                if (!(err <= worst)) {
                    worst = err;
                }
            }
        }

        snprintf(name, sizeof(name), "gemm panels %dx%dx%d match one sgemm",
                 m, n, k);
        if (!ok(worst < 1e-5 * sqrt((double) k), name)) {
            diag("worst relative error %g", worst);
        }

        free(a);
        free(b);
        free(c);
        free(ref);
    }
}


/* -- activations and losses ---------------------------------------------------- */

static void
test_values(const lt_backend *be)
{
    float   x[8], y[8], g[8], t[8];
    double  worst;
    int32_t idx[2];
    int     i, ok_all;
    float   loss;

    /* tanh against double-precision libm, and saturation */
    worst = 0.0;
    for (i = -2000; i <= 2000; i++) {
        x[0] = (float) i * 0.01f;
        be->act_forward(be, LT_ACT_TANH, x, y, 1, 1);
        worst = fmax(worst, fabs(y[0] - tanh((double) x[0])));
    }
    ok(worst < 5e-7, "tanh within 5e-7 of libm on [-20, 20]");

    x[0] = 1e30f;
    x[1] = -1e30f;
    x[2] = NAN;
    x[3] = 0.0f;
    be->act_forward(be, LT_ACT_TANH, x, y, 1, 4);
    ok(y[0] == 1.0f && y[1] == -1.0f && isnan(y[2]) && y[3] == 0.0f,
       "tanh(+-huge) = +-1, tanh(NaN) is NaN, tanh(0) = 0");

    x[0] = 100.0f;
    x[1] = -100.0f;
    x[2] = 0.0f;
    be->act_forward(be, LT_ACT_SIGMOID, x, y, 1, 3);
    ok(y[0] == 1.0f && y[1] >= 0.0f && y[1] < 1e-40f && y[2] == 0.5f,
       "sigmoid saturates without NaN");

    x[0] = 1000.0f;
    x[1] = 0.0f;
    x[2] = -1000.0f;
    x[3] = 3.0f;
    be->act_forward(be, LT_ACT_SOFTMAX, x, y, 2, 2);
    ok(y[0] == 1.0f && y[1] == 0.0f && fabsf(y[2] + y[3] - 1.0f) < 1e-6f,
       "softmax of +-1000: finite rows summing to 1");
    be->act_forward(be, LT_ACT_LOGSOFTMAX, x, y, 2, 2);
    ok(y[0] == 0.0f && y[1] == -1000.0f && isfinite(y[2]),
       "log-softmax of +-1000 is finite");

    /* MSE: mean over every element, as reduction='mean' */
    x[0] = 1.0f; x[1] = 2.0f; x[2] = 3.0f; x[3] = 4.0f;
    t[0] = 0.0f; t[1] = 0.0f; t[2] = 0.0f; t[3] = 0.0f;
    loss = be->loss_mse(be, x, t, g, 2, 2);
    is_float(loss, 7.5, 1e-6, "MSE of 1,2,3,4 against 0 is 7.5");
    is_float(g[3], 2.0 * 4.0 / 4.0, 1e-6, "MSE gradient 2(p - t)/n");

    /* BCE: log clamped at -100 */
    x[0] = 0.0f; x[1] = 1.0f;
    t[0] = 1.0f; t[1] = 0.0f;
    loss = be->loss_bce(be, x, t, g, 1, 2);
    is_float(loss, 100.0, 1e-6, "BCE of a certain wrong answer is 100");
    ok(isfinite(g[0]) && isfinite(g[1]), "... with a finite gradient");

    /* CE: log(sum exp) - z[t] */
    x[0] = 1.0f; x[1] = 2.0f; x[2] = 3.0f;
    x[3] = 0.0f; x[4] = 0.0f; x[5] = 0.0f;
    idx[0] = 2;
    idx[1] = 0;
    loss = be->loss_ce(be, x, idx, NULL, g, 2, 3);
    is_float(loss, 0.5 * ((log(exp(1.0) + exp(2.0) + exp(3.0)) - 3.0)
                          + log(3.0)), 1e-6, "CE with class indices");
    for (ok_all = 1, i = 0; i < 2; i++) {
        ok_all &= fabsf(g[i * 3] + g[i * 3 + 1] + g[i * 3 + 2]) < 1e-7f;
    }
    ok(ok_all, "CE gradient rows sum to 0");
}


/* -- a backend with memory of its own ------------------------------------------- */

#define DEV_BLOCKS  32

static struct {
    const char  *base[DEV_BLOCKS];
    size_t       size[DEV_BLOCKS];
    int          violations;
    int          to_device, to_host, allocs;
} dev;


static void *
dev_alloc(const lt_backend *be, size_t bytes)
{
    int  i;

    for (i = 0; i < DEV_BLOCKS; i++) {
        if (dev.base[i] == NULL) {
            dev.allocs++;
            dev.base[i] = malloc(bytes);
            dev.size[i] = bytes;
            return (void *) dev.base[i];
        }
    }

    return NULL;
}


static void
dev_free(const lt_backend *be, void *p)
{
    int  i;

    for (i = 0; i < DEV_BLOCKS; i++) {
        if (dev.base[i] == p && p != NULL) {
            dev.base[i] = NULL;
        }
    }

    free(p);
}


/* Counts a pointer that is neither NULL nor in device memory. */
static void
dev_check(const void *p)
{
    const char  *c = p;
    int          i;

    if (p == NULL) {
        return;
    }

    for (i = 0; i < DEV_BLOCKS; i++) {
        if (dev.base[i] && c >= dev.base[i] && c < dev.base[i] + dev.size[i])
        {
            return;
        }
    }

    dev.violations++;
}


static void
dev_to_device(const lt_backend *be, void *dst, const void *src, size_t n)
{
    dev_check(dst);
    dev.to_device++;
    memcpy(dst, src, n);
}


static void
dev_to_host(const lt_backend *be, void *dst, const void *src, size_t n)
{
    dev_check(src);
    dev.to_host++;
    memcpy(dst, src, n);
}


#define CPU  lt_backend_cpu()

static void
dev_copy(const lt_backend *be, void *dst, const void *src, size_t n)
{
    dev_check(dst);
    dev_check(src);
    CPU->copy(CPU, dst, src, n);
}


static void
dev_gemm(const lt_backend *be, int ta, int tb, int m, int n, int k,
    float alpha, const float *a, int lda, const float *b, int ldb,
    float beta, float *c, int ldc)
{
    dev_check(a);
    dev_check(b);
    dev_check(c);
    CPU->gemm(CPU, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}


static void
dev_add_bias(const lt_backend *be, float *y, const float *bias, int rows,
    int cols)
{
    dev_check(y);
    dev_check(bias);
    CPU->add_bias(CPU, y, bias, rows, cols);
}


static void
dev_sum_rows(const lt_backend *be, float *out, const float *g, int rows,
    int cols)
{
    dev_check(out);
    dev_check(g);
    CPU->sum_rows(CPU, out, g, rows, cols);
}


static void
dev_act_forward(const lt_backend *be, lt_act act, const float *x, float *y,
    int rows, int cols)
{
    dev_check(x);
    dev_check(y);
    CPU->act_forward(CPU, act, x, y, rows, cols);
}


static void
dev_act_backward(const lt_backend *be, lt_act act, const float *x,
    const float *y, const float *dy, float *dx, int rows, int cols)
{
    dev_check(x);
    dev_check(y);
    dev_check(dy);
    dev_check(dx);
    CPU->act_backward(CPU, act, x, y, dy, dx, rows, cols);
}


static float
dev_loss_mse(const lt_backend *be, const float *p, const float *t, float *g,
    int rows, int cols)
{
    dev_check(p);
    dev_check(t);
    dev_check(g);
    return CPU->loss_mse(CPU, p, t, g, rows, cols);
}


static float
dev_loss_bce(const lt_backend *be, const float *p, const float *t, float *g,
    int rows, int cols)
{
    dev_check(p);
    dev_check(t);
    dev_check(g);
    return CPU->loss_bce(CPU, p, t, g, rows, cols);
}


static float
dev_loss_ce(const lt_backend *be, const float *z, const int32_t *idx,
    const float *t, float *g, int rows, int cols)
{
    dev_check(z);
    dev_check(idx);
    dev_check(t);
    dev_check(g);
    return CPU->loss_ce(CPU, z, idx, t, g, rows, cols);
}


static void
dev_sgd(const lt_backend *be, const float *in, float *out, const float *g,
    const float *vel_in, float *vel_out, size_t n, float lr, float mom,
    float wd, int first)
{
    dev_check(in);
    dev_check(out);
    dev_check(g);
    dev_check(vel_in);
    dev_check(vel_out);
    CPU->sgd(CPU, in, out, g, vel_in, vel_out, n, lr, mom, wd, first);
}


static void
dev_adam(const lt_backend *be, const float *in, float *out, const float *g,
    const float *m_in, const float *v_in, float *m_out, float *v_out,
    size_t n, float lr, float b1, float b2, float eps, float wd,
    int64_t step)
{
    dev_check(in);
    dev_check(out);
    dev_check(g);
    dev_check(m_in);
    dev_check(v_in);
    dev_check(m_out);
    dev_check(v_out);
    CPU->adam(CPU, in, out, g, m_in, v_in, m_out, v_out, n, lr, b1, b2, eps,
              wd, step);
}


static const lt_backend  dev_backend = {
    .name = "test-device",
    .alloc = dev_alloc,
    .free = dev_free,
    .to_device = dev_to_device,
    .to_host = dev_to_host,
    .copy = dev_copy,
    .gemm = dev_gemm,
    .add_bias = dev_add_bias,
    .sum_rows = dev_sum_rows,
    .act_forward = dev_act_forward,
    .act_backward = dev_act_backward,
    .loss_mse = dev_loss_mse,
    .loss_bce = dev_loss_bce,
    .loss_ce = dev_loss_ce,
    .sgd = dev_sgd,
    .adam = dev_adam,
    .ctx = NULL
};


/*
 * The same steps on the CPU backend (host pointers) and on the device
 * backend (parameters in device memory; x and y copied in, the output
 * copied out) must agree bit for bit: the ops underneath are the same.
 */
static void
check_device(const char *name, lt_loss_kind loss, lt_optim_kind optim,
    float momentum, int onehot)
{
    static float   xs[6 * 4], ys[6 * 3];
    float         *host, *devp, *host2, *devp2;
    int64_t        xshape[] = { 6, 4 };
    int64_t        yshape[] = { 6, 3 };
    lt_model_spec  s;
    lt_workspace  *hws, *dws;
    lt_tensor      x, y, hout, dout;
    lt_model       m;
    lt_err         err;
    float          hl, dl;
    size_t         total;
    char           what[160];
    int            i, rc, step, allocs;

    memset(&s, 0, sizeof(s));
    s.nlayers = 4;
    s.layers[0].kind = LT_LAYER_LINEAR;
    s.layers[0].in = 4;
    s.layers[0].out = 8;
    s.layers[1].kind = LT_LAYER_TANH;
    s.layers[2].kind = LT_LAYER_LINEAR;
    s.layers[2].in = 8;
    s.layers[2].out = 3;
    s.layers[3].kind = LT_LAYER_SIGMOID;
    s.loss = loss;
    s.optim.kind = optim;
    s.optim.lr = 0.1f;
    s.optim.momentum = momentum;
    s.optim.beta1 = 0.9f;
    s.optim.beta2 = 0.999f;
    s.optim.eps = 1e-8f;
    if (lt_model_build(&m, &s, &err) != 0) {
        fail(name);
        diag("%s", err.msg);
        return;
    }

    for (i = 0; i < 24; i++) {
        xs[i] = urand(-1, 1);
    }
    for (i = 0; i < 18; i++) {
        ys[i] = loss == LT_LOSS_CE && !onehot ? (float) (i % 3)
                : (float) (urand(0, 1) > 0.5f);
    }
    lt_tensor_view(&x, xs, 2, xshape);
    lt_tensor_view(&y, ys, loss == LT_LOSS_CE && !onehot ? 1 : 2, yshape);

    total = m.param_count + m.state_count;
    host = calloc(total, sizeof(float));
    host2 = calloc(total, sizeof(float));
    devp = dev_alloc(&dev_backend, total * sizeof(float));
    devp2 = dev_alloc(&dev_backend, total * sizeof(float));
    lt_model_init_params(&m, host, 11);
    memcpy(devp, host, total * sizeof(float));

    hws = lt_workspace_new(&m, lt_backend_cpu(), 1, &err);
    dws = lt_workspace_new(&m, &dev_backend, 1, &err);

    /* double-buffered steps on the device, in place on the host */
    rc = 0;
    allocs = 0;
    for (step = 1; step <= 3; step++) {
        if (step == 2) {
            allocs = dev.allocs;
        }
        rc |= lt_model_train_step(&m, hws, host, host, host + m.param_count,
                                  step, &x, &y, &hl, &err);
        rc |= lt_model_train_step(&m, dws, devp, devp2,
                                  devp + m.param_count, step, &x, &y, &dl,
                                  &err);
        memcpy(devp, devp2, m.param_count * sizeof(float));
    }
    memcpy(host2, devp, total * sizeof(float));
    snprintf(what, sizeof(what), "%s: steps after the first allocate"
             " nothing", name);
    is_int(dev.allocs, allocs, what);

    rc |= lt_model_forward(&m, hws, host, &x, &hout, &err);
    rc |= lt_model_forward(&m, dws, devp, &x, &dout, &err);

    snprintf(what, sizeof(what), "%s: steps and forward succeed", name);
    if (!ok(rc == 0, what)) {
        diag("%s", err.msg);
    }
    snprintf(what, sizeof(what), "%s: device and host agree", name);
    ok(hl == dl && memcmp(host, host2, total * sizeof(float)) == 0
       && memcmp(hout.data, dout.data, 18 * sizeof(float)) == 0, what);
    snprintf(what, sizeof(what), "%s: the output is in host memory", name);
    dev_check(dout.data);
    ok(dev.violations == 1, what);
    dev.violations = 0;

    lt_workspace_free(hws);
    lt_workspace_free(dws);
    dev_free(&dev_backend, devp);
    dev_free(&dev_backend, devp2);
    free(host);
    free(host2);
}


static void
test_device(void)
{
    check_device("device MSE SGD", LT_LOSS_MSE, LT_OPTIM_SGD, 0.0f, 0);
    check_device("device BCE SGD momentum", LT_LOSS_BCE, LT_OPTIM_SGD,
                 0.9f, 0);
    check_device("device CE indices Adam", LT_LOSS_CE, LT_OPTIM_ADAM, 0.0f,
                 0);
    check_device("device CE one-hot SGD", LT_LOSS_CE, LT_OPTIM_SGD, 0.0f, 1);

    is_int(dev.violations, 0, "no op ever saw a host pointer");
    ok(dev.to_device > 0 && dev.to_host > 0,
       "inputs went to the device and outputs came back");
}


/* lt_tanh against double tanh over a float every 4099 bit patterns (all
 * exponents, both signs): the CPU backend's Tanh and GELU use it */
static void
test_tanh(void)
{
    double    worst, e, r;
    uint32_t  u;
    float     x, y;
    int       odd, bad;

    worst = 0;
    odd = 0;
    bad = 0;
    for (u = 0; u < 0x7f800000u; u += 4099) {
        memcpy(&x, &u, sizeof(x));
        r = tanh((double) x);
        y = lt_tanh(x);
        bad += !(y >= -1.0f && y <= 1.0f);
        odd += lt_tanh(-x) != -y;
        if (r != 0) {
            e = fabs(y - r) / fabs(r);
            worst = e > worst ? e : worst;
        }
    }

    ok(worst < 1e-6, "lt_tanh is within 1e-6 of tanh, relative");
    is_int(odd, 0, "lt_tanh is odd");
    is_int(bad, 0, "lt_tanh stays in [-1, 1]");
    is_int(isnan(lt_tanh(NAN)), 1, "lt_tanh(NaN) is NaN");
    ok(lt_tanh(INFINITY) == 1.0f && lt_tanh(-INFINITY) == -1.0f,
       "lt_tanh(+-Inf) is +-1");
}


/*
 * The finite check every train step runs on what it wrote: for bit
 * patterns across every exponent and both signs, placed in a buffer of
 * finite values in the vectorized blocks and in the scalar tail, it
 * names the first non-finite element and passes every finite one.
 */
static void
test_nonfinite_at(void)
{
    static float  buf[1000];
    uint32_t      u;
    size_t        at, n;
    int           wrong, i;
    int64_t       got;
    float         x;
    size_t        where[] = { 0, 1, 255, 256, 511, 700, 767, 768, 999 };

    n = sizeof(buf) / sizeof(buf[0]);
    for (at = 0; at < n; at++) {
        buf[at] = (float) at - 500.0f;
    }

    is_int((int) lt_floats_nonfinite_at(buf, n), -1, "finite buffer passes");

    wrong = 0;
    for (u = 0; u < 0xffffffffu - 65537; u += 65537) {
        memcpy(&x, &u, sizeof(x));
        for (i = 0; i < (int) (sizeof(where) / sizeof(where[0])); i++) {
            at = where[i];
            buf[at] = x;
            got = lt_floats_nonfinite_at(buf, n);
            wrong += got != (isfinite(x) ? -1 : (int64_t) at);
            buf[at] = (float) at - 500.0f;
        }
    }
    is_int(wrong, 0, "one value of every exponent, anywhere: finite passes, "
           "Inf and NaN are found where they are");

    buf[900] = -INFINITY;
    buf[300] = NAN;
    is_int((int) lt_floats_nonfinite_at(buf, n), 300, "the first is named");
    is_int((int) lt_floats_nonfinite_at(buf, 256), -1,
           "only the first n are read");
    buf[900] = 400.0f;
    buf[300] = -200.0f;
    buf[0] = 3.4028235e38f;
    buf[1] = -3.4028235e38f;
    buf[2] = 1e-45f;
    is_int((int) lt_floats_nonfinite_at(buf, n), -1,
           "FLT_MAX, -FLT_MAX and denormals are finite");
}


int
main(void)
{
    test_tanh();
    test_nonfinite_at();
    test_gemm(lt_backend_cpu());
    test_gemm_panels();
    test_values(lt_backend_cpu());
    test_device();

    return done_testing();
}
