/*
 * cuda_test.h: what the CUDA backend's tests share (header-only, as
 * tap.h, so that each test is one program): the backend under test or
 * the harness's stand-in for it (LT_CUDA_TEST_FAKE), random inputs,
 * device buffers, the agreement check with its tolerances, and whole
 * train steps on both backends.
 *
 * Tolerances: |got - want| <= tol * max(|want|, floor), floor chosen per
 * quantity (1 for parameters, sqrt(k) for products over k terms of O(1)
 * numbers, a fraction of the largest magnitude for gradients, which are
 * O(1/n)).
 */
#ifndef LT_CUDA_TEST_H
#define LT_CUDA_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_backend.h"
#include "lt_rand.h"
#include "lt_model.h"
#include "lt_optim.h"
#include "lt_backend_cuda.h"
#include "tap.h"

#define TOL  1e-4

static TAP_UNUSED const lt_backend  *CPU;
static const lt_backend  *GPU;
static uint64_t           rng_state = 2024;


/* -- the backend under test (or the harness's stand-in) -------------------- */

#ifdef LT_CUDA_TEST_FAKE

#define LT_CUDA_TEST_NAME  "fake"

static lt_backend  fake_backend;


static TAP_UNUSED void
fake_copy(const lt_backend *be, void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
}


/*
 * The stand-in rounds differently from the CPU backend where a GPU would
 * (products summed in another order and precision, functions rounded
 * differently), so the tolerances are tried against honest differences.
 */
static TAP_UNUSED void
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


static TAP_UNUSED void
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


static TAP_UNUSED void
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


#include "cuda_fake_optim.h"
#include "cuda_fake_layers.h"


static TAP_UNUSED int
gpu_count(void)
{
    return 1;
}


static TAP_UNUSED const lt_backend *
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
    fake_optim_ops(&fake_backend);
    fake_layer_ops(&fake_backend);

    return &fake_backend;
}


static TAP_UNUSED int
gpu_status(const lt_backend *be, lt_err *err)
{
    return 0;
}


static TAP_UNUSED void
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

static TAP_UNUSED float
urand(float lo, float hi)
{
    return lo + (hi - lo) * lt_rand_unit(&rng_state);
}


static TAP_UNUSED float *
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


static TAP_UNUSED float *
host_copy(const float *src, size_t n)
{
    float  *h;

    h = malloc((n ? n : 1) * sizeof(float));
    memcpy(h, src, n * sizeof(float));

    return h;
}


/* Device memory holding a copy of n host floats (or bytes, for ints). */
static TAP_UNUSED void *
dev_bytes(const void *src, size_t bytes)
{
    void  *d;

    d = GPU->alloc(GPU, bytes);
    if (d != NULL && src != NULL && bytes > 0) {
        GPU->to_device(GPU, d, src, bytes);
    }

    return d;
}


static TAP_UNUSED float *
dev_floats(const float *src, size_t n)
{
    return dev_bytes(src, n * sizeof(float));
}


/* A host copy of n device floats (malloc'ed). */
static TAP_UNUSED float *
fetch(const float *d, size_t n)
{
    float  *h;

    h = malloc((n ? n : 1) * sizeof(float));
    GPU->to_host(GPU, h, d, n * sizeof(float));

    return h;
}


static TAP_UNUSED double
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
static TAP_UNUSED int
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


static TAP_UNUSED int
agree_float(const char *name, float got, float want, double tol)
{
    return agree(name, &got, &want, 1, tol, 1.0);
}



static TAP_UNUSED const int  row_shapes[][2] = {
    { 1, 1 }, { 7, 10 }, { 3, 1 }, { 1, 1000 }, { 64, 1000 }, { 4097, 33 },
    { 300, 784 }, { 4096, 10 }, { 10000, 3 }, { 1100, 300 }
};

#define NSHAPES  (sizeof(row_shapes) / sizeof(row_shapes[0]))



/* -- whole models ---------------------------------------------------------- */

/* in -> hidden -> act -> out (-> last, unless last is LT_LAYER_LINEAR) */
static TAP_UNUSED void
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
static TAP_UNUSED void
check_train(const char *name, const lt_model_spec *s, int batch, int steps,
    int onehot, int in_place)
{
    lt_workspace  *hws, *dws;
    lt_tensor      x, y, hout, dout;
    lt_model       m;
    lt_err         err;
    int64_t        xshape[LT_MAX_DIMS], yshape[2];
    float         *xs, *ys, *host, *dA, *dB, *cur, *other, *t, *got;
    float         *hgrad, *dgrad, hl, dl;
    double         e, worst_loss;
    size_t         P, V, S, i;
    char           what[200];
    int            rc, step, ce_index, regression, xdims;

    if (lt_model_build(&m, s, &err) != 0) {
        fail(name);
        diag("%s", err.msg);
        return;
    }

    snprintf(what, sizeof(what), "%s: the backend has every op it needs",
             name);
    if (!ok(lt_model_check_backend(&m, GPU, &err) == 0, what)) {
        diag("%s", err.msg);
        return;
    }

    P = m.param_count;
    V = lt_model_values(&m);     /* the parameters, then the buffers */
    S = m.state_count;
    /* class indices for CE and NLL unless one-hot rows are asked for */
    ce_index = lt_loss_takes_indices(s->loss) && !onehot;
    regression = s->loss == LT_LOSS_MSE || s->loss == LT_LOSS_L1
                 || s->loss == LT_LOSS_SMOOTH_L1 || s->loss == LT_LOSS_HUBER;

    xs = host_rand((size_t) batch * m.in_dim, -1, 1);
    if (m.in_index) {
        /* Embedding's indices: whole numbers below num_embeddings */
        for (i = 0; i < (size_t) batch * m.in_dim; i++) {
            xs[i] = (float) ((i * 7 + 3) % (size_t) s->layers[0].in);
        }
    }
    ys = malloc((size_t) batch * m.out_dim * sizeof(float));
    for (i = 0; i < (size_t) batch * m.out_dim; i++) {
        ys[i] = regression ? urand(-0.8f, 0.8f)
                : s->loss == LT_LOSS_BCE_LOGITS ? (float) (urand(0, 1) > 0.5f)
                : 0.0f;
    }
    for (i = 0; i < (size_t) batch; i++) {
        if (ce_index) {
            ys[i] = (float) ((i * 5 + 1) % (size_t) m.out_dim);

        } else if (lt_loss_takes_indices(s->loss)) {
            ys[i * m.out_dim + (i * 5 + 1) % (size_t) m.out_dim] = 1.0f;

        } else if (s->loss == LT_LOSS_BCE) {
            ys[i * m.out_dim] = (float) (urand(0, 1) > 0.5f);
        }
    }

    xdims = lt_model_input_shape(&m, batch, xshape);
    yshape[0] = batch;
    yshape[1] = m.out_dim;
    lt_tensor_view(&x, xs, xdims, xshape);
    lt_tensor_view(&y, ys, ce_index ? 1 : 2, yshape);

    host = calloc(V + S, sizeof(float));
    lt_model_init_params(&m, host, 5);
    lt_model_init_state(&m, host + V);
    dA = dev_floats(host, V + S);       /* parameters, buffers, state */
    dB = dev_floats(NULL, V);

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
        rc |= lt_model_train_step(&m, hws, host, host, host + V, step, &x,
                                  &y, &hl, &err);
        rc |= lt_model_train_step(&m, dws, cur, in_place ? cur : other,
                                  dA + V, step, &x, &y, &dl, &err);
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

    got = fetch(cur, V);
    snprintf(what, sizeof(what), "%s: parameters (and buffers) agree "
             "after %d steps",
             name, steps);
    agree(what, got, host, V, TOL, 1.0);
    free(got);

    if (S > 0) {
        got = fetch(dA + V, S);
        snprintf(what, sizeof(what), "%s: optimizer state agrees", name);
        agree(what, got, host + V, S, TOL, 1e-2 * max_abs(host + V, S));
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


#endif /* LT_CUDA_TEST_H */
