/*
 * test_gradcheck.c: every backward pass against central finite
 * differences.
 *
 * Each check evaluates a scalar L(v) in float (accumulated in double),
 * perturbs one element of v by +-h and compares (L(v+h) - L(v-h)) / 2h
 * with the analytic gradient.  With h = 1e-2 the finite difference is
 * good to ~1e-4 for these smooth functions, so a wrong gradient (off by a
 * factor, a sign, a transpose) stands far outside the tolerance.  Nets
 * with ReLU use h = 1e-3: a hidden unit within h of ReLU's kink makes the
 * difference quotient meaningless, and a smaller h makes that rarer
 * (float rounding still leaves it good to ~1e-4).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lt_backend.h"
#include "lt_rand.h"
#include "lt_model.h"
#include "tap.h"

#define H       1e-2f
#define H_RELU  1e-3f
#define ATOL    5e-4
#define RTOL    1e-2
#define MAXN    512

typedef double (*scalar_fn)(void *ctx, const float *v);

static uint64_t  rng_state = 42;


static float
urand(float lo, float hi)
{
    return lo + (hi - lo) * lt_rand_unit(&rng_state);
}


static void
fill(float *v, int n, float lo, float hi)
{
    int  i;

    for (i = 0; i < n; i++) {
        v[i] = urand(lo, hi);
    }
}


/* Keeps values away from ReLU's kink, where a finite difference lies. */
static void
fill_away_from_zero(float *v, int n)
{
    int  i;

    for (i = 0; i < n; i++) {
        v[i] = urand(0.1f, 1.0f) * (urand(0.0f, 1.0f) < 0.5f ? -1.0f : 1.0f);
    }
}


/* Compares analytic[0..n) with central differences of f around v; one
 * TAP line, the worst element in the diagnostics when it fails. */
static int
check_grad(const char *name, scalar_fn f, void *ctx, float *v, int n,
    const float *analytic, float h)
{
    double  fd, err, worst, worst_fd;
    float   saved;
    int     i, worst_i;

    worst = 0.0;
    worst_fd = 0.0;
    worst_i = -1;

    for (i = 0; i < n; i++) {
        saved = v[i];
        v[i] = saved + h;
        fd = f(ctx, v);
        v[i] = saved - h;
        fd -= f(ctx, v);
        v[i] = saved;
        fd /= 2.0 * h;

        err = fabs(fd - analytic[i]) / (ATOL + RTOL * fabs(fd));
        if (!(err <= worst)) {
            worst = err;
            worst_fd = fd;
            worst_i = i;
        }
    }

    if (!ok(worst <= 1.0, name)) {
        diag("element %d: analytic %.6g, finite difference %.6g", worst_i,
             worst_i >= 0 ? analytic[worst_i] : 0.0, worst_fd);
    }

    return worst <= 1.0;
}


/* -- activations: L(x) = sum(w * act(x)), so dL/dy = w ------------------ */

typedef struct {
    const lt_backend  *be;
    lt_act             act;
    int                rows, cols;
    float             *w, *y;
} act_ctx;


static double
act_loss(void *p, const float *x)
{
    act_ctx  *c = p;
    double    sum;
    int       i;

    c->be->act_forward(c->be, c->act, x, c->y, c->rows, c->cols);

    sum = 0.0;
    for (i = 0; i < c->rows * c->cols; i++) {
        sum += (double) c->w[i] * c->y[i];
    }

    return sum;
}


static void
check_act(const lt_backend *be, lt_act act, const char *name)
{
    float    x[MAXN], y[MAXN], w[MAXN], dx[MAXN], ys[MAXN];
    act_ctx  c;
    int      n;

    c.be = be;
    c.act = act;
    c.rows = 3;
    c.cols = 5;
    c.w = w;
    c.y = ys;
    n = c.rows * c.cols;

    if (act == LT_ACT_RELU) {
        fill_away_from_zero(x, n);
    } else {
        fill(x, n, -2.0f, 2.0f);
    }
    fill(w, n, -1.0f, 1.0f);

    be->act_forward(be, act, x, y, c.rows, c.cols);
    be->act_backward(be, act, x, y, w, dx, c.rows, c.cols);

    check_grad(name, act_loss, &c, x, n, dx, H);
}


/* -- Linear: L = sum(w * (x W^T + b)) ------------------------------------ */

enum { WRT_X, WRT_W, WRT_B };

typedef struct {
    const lt_backend  *be;
    int                rows, in, out, wrt;
    float             *x, *wt, *b, *w, *y;
} lin_ctx;


static double
lin_loss(void *p, const float *v)
{
    lin_ctx      *c = p;
    const float  *x, *wt, *b;
    double        sum;
    int           i;

    x = c->wrt == WRT_X ? v : c->x;
    wt = c->wrt == WRT_W ? v : c->wt;
    b = c->wrt == WRT_B ? v : c->b;

    c->be->gemm(c->be, 0, 1, c->rows, c->out, c->in, 1.0f, x, c->in, wt,
                c->in, 0.0f, c->y, c->out);
    c->be->add_bias(c->be, c->y, b, c->rows, c->out);

    sum = 0.0;
    for (i = 0; i < c->rows * c->out; i++) {
        sum += (double) c->w[i] * c->y[i];
    }

    return sum;
}


/* rows x in -> out; big sizes take the BLAS path of gemm, small the loop */
static void
check_linear(const lt_backend *be, int rows, int in, int out)
{
    static float  x[4096], wt[4096], b[64], w[4096], y[4096];
    static float  dx[4096], dw[4096], db[64];
    lin_ctx       c;
    char          name[96];

    c.be = be;
    c.rows = rows;
    c.in = in;
    c.out = out;
    c.x = x;
    c.wt = wt;
    c.b = b;
    c.w = w;
    c.y = y;

    fill(x, rows * in, -1.0f, 1.0f);
    fill(wt, out * in, -1.0f, 1.0f);
    fill(b, out, -1.0f, 1.0f);
    fill(w, rows * out, -1.0f, 1.0f);

    /* the model's backward: dX = dY W, dW = dY^T X, db = sum_rows(dY) */
    be->gemm(be, 0, 0, rows, in, out, 1.0f, w, out, wt, in, 0.0f, dx, in);
    be->gemm(be, 1, 0, out, in, rows, 1.0f, w, out, x, in, 0.0f, dw, in);
    be->sum_rows(be, db, w, rows, out);

    c.wrt = WRT_X;
    snprintf(name, sizeof(name), "Linear %dx%d->%d: input", rows, in, out);
    check_grad(name, lin_loss, &c, x, rows * in, dx, H);

    c.wrt = WRT_W;
    snprintf(name, sizeof(name), "Linear %dx%d->%d: weight", rows, in, out);
    check_grad(name, lin_loss, &c, wt, out * in, dw, H);

    c.wrt = WRT_B;
    snprintf(name, sizeof(name), "Linear %dx%d->%d: bias", rows, in, out);
    check_grad(name, lin_loss, &c, b, out, db, H);
}


/* -- losses ---------------------------------------------------------------- */

typedef struct {
    const lt_backend  *be;
    lt_loss_kind       kind;
    int                rows, cols;
    const int32_t     *index;
    const float       *target;
    float             *grad;
} loss_ctx;


static double
loss_value(void *p, const float *pred)
{
    loss_ctx           *c = p;
    const lt_backend   *be = c->be;

    switch (c->kind) {
    case LT_LOSS_MSE:
        return be->loss_mse(be, pred, c->target, c->grad, c->rows, c->cols);
    case LT_LOSS_BCE:
        return be->loss_bce(be, pred, c->target, c->grad, c->rows, c->cols);
    default:
        return be->loss_ce(be, pred, c->index, c->target, c->grad, c->rows,
                           c->cols);
    }
}


static void
check_loss(const lt_backend *be, lt_loss_kind kind, int use_index,
    const char *name)
{
    float     pred[MAXN], target[MAXN], grad[MAXN], scratch[MAXN];
    int32_t   index[16];
    loss_ctx  c;
    int       r, n;

    c.be = be;
    c.kind = kind;
    c.rows = 4;
    c.cols = 3;
    c.index = NULL;
    c.target = target;
    c.grad = scratch;
    n = c.rows * c.cols;

    if (kind == LT_LOSS_BCE) {
        fill(pred, n, 0.05f, 0.95f);
        fill(target, n, 0.0f, 1.0f);
    } else {
        fill(pred, n, -2.0f, 2.0f);
        fill(target, n, -1.0f, 1.0f);
    }

    if (kind == LT_LOSS_CE) {
        memset(target, 0, sizeof(target));
        for (r = 0; r < c.rows; r++) {
            index[r] = (r * 2 + 1) % c.cols;
            target[r * c.cols + index[r]] = 1.0f;
        }
        if (use_index) {
            c.index = index;
            c.target = NULL;
        }
    }

    c.grad = grad;
    loss_value(&c, pred);
    c.grad = scratch;

    check_grad(name, loss_value, &c, pred, n, grad, H);
}


/* Soft (probability) targets: the general form of CE's gradient. */
static void
check_ce_soft(const lt_backend *be)
{
    float     pred[12], target[12], grad[12], scratch[12];
    loss_ctx  c;
    int       r, j;
    float     s;

    c.be = be;
    c.kind = LT_LOSS_CE;
    c.rows = 4;
    c.cols = 3;
    c.index = NULL;
    c.target = target;

    fill(pred, 12, -2.0f, 2.0f);
    fill(target, 12, 0.1f, 1.0f);
    for (r = 0; r < 4; r++) {
        for (s = 0.0f, j = 0; j < 3; j++) {
            s += target[r * 3 + j];
        }
        for (j = 0; j < 3; j++) {
            target[r * 3 + j] /= s;
        }
    }

    c.grad = grad;
    loss_value(&c, pred);
    c.grad = scratch;

    check_grad("CE loss, probability targets", loss_value, &c, pred, 12,
               grad, H);
}


/* -- whole models: lt_model_gradients against the loss it reports -------- */

typedef struct {
    const lt_model  *m;
    lt_workspace    *ws;
    const lt_tensor *x, *y;
    float           *grad;
} model_ctx;


static double
model_loss(void *p, const float *params)
{
    model_ctx  *c = p;
    float       loss;
    lt_err      err;

    if (lt_model_gradients(c->m, c->ws, params, c->x, c->y, c->grad, &loss,
                           &err) != 0)
    {
        diag("lt_model_gradients: %s", err.msg);
        return NAN;
    }

    return loss;
}


static void
check_model(const char *name, const lt_layer_kind *kinds, const int *dims,
    int nlayers, lt_loss_kind loss_kind, int index_targets)
{
    static float   params[4096], grad[4096], scratch[4096];
    float          xs[64], ys[64], loss;
    int64_t        xshape[2], yshape[2];
    lt_model_spec  spec;
    lt_model       m;
    lt_tensor      x, y;
    lt_err         err;
    model_ctx      c;
    int            i, rows, d, has_relu;

    memset(&spec, 0, sizeof(spec));
    spec.nlayers = nlayers;
    spec.loss = loss_kind;
    spec.optim.kind = LT_OPTIM_SGD;
    spec.optim.lr = 0.1f;

    has_relu = 0;
    for (i = 0, d = 0; i < nlayers; i++) {
        spec.layers[i].kind = kinds[i];
        has_relu |= kinds[i] == LT_LAYER_RELU;
        if (kinds[i] == LT_LAYER_LINEAR) {
            spec.layers[i].in = dims[d];
            spec.layers[i].out = dims[d + 1];
            d++;
        }
    }

    if (lt_model_build(&m, &spec, &err) != 0) {
        fail(name);
        diag("build: %s", err.msg);
        return;
    }

    lt_model_init_params(&m, params, 7);

    rows = 5;
    fill(xs, rows * m.in_dim, -1.0f, 1.0f);
    xshape[0] = rows;
    xshape[1] = m.in_dim;
    lt_tensor_view(&x, xs, 2, xshape);

    yshape[0] = rows;
    yshape[1] = m.out_dim;
    if (loss_kind == LT_LOSS_CE && index_targets) {
        for (i = 0; i < rows; i++) {
            ys[i] = (float) (i % m.out_dim);
        }
        lt_tensor_view(&y, ys, 1, yshape);

    } else if (loss_kind == LT_LOSS_CE) {
        memset(ys, 0, sizeof(ys));
        for (i = 0; i < rows; i++) {
            ys[i * m.out_dim + (i + 1) % m.out_dim] = 1.0f;
        }
        lt_tensor_view(&y, ys, 2, yshape);

    } else {
        fill(ys, rows * m.out_dim, loss_kind == LT_LOSS_BCE ? 0.0f : -1.0f,
             1.0f);
        lt_tensor_view(&y, ys, 2, yshape);
    }

    c.m = &m;
    c.x = &x;
    c.y = &y;
    c.ws = lt_workspace_new(&m, lt_backend_cpu(), 2, &err);
    if (c.ws == NULL) {
        fail(name);
        diag("workspace: %s", err.msg);
        return;
    }

    c.grad = grad;
    if (lt_model_gradients(&m, c.ws, params, &x, &y, grad, &loss, &err)) {
        fail(name);
        diag("gradients: %s", err.msg);
        lt_workspace_free(c.ws);
        return;
    }

    c.grad = scratch;
    check_grad(name, model_loss, &c, params, (int) m.param_count, grad,
               has_relu ? H_RELU : H);

    lt_workspace_free(c.ws);
}


static void
check_models(void)
{
    static const lt_layer_kind  tanh_net[] = {
        LT_LAYER_LINEAR, LT_LAYER_TANH, LT_LAYER_LINEAR
    };
    static const lt_layer_kind  sig_net[] = {
        LT_LAYER_LINEAR, LT_LAYER_TANH, LT_LAYER_LINEAR, LT_LAYER_SIGMOID
    };
    static const lt_layer_kind  relu_net[] = {
        LT_LAYER_LINEAR, LT_LAYER_RELU, LT_LAYER_LINEAR, LT_LAYER_RELU,
        LT_LAYER_LINEAR
    };
    static const lt_layer_kind  soft_net[] = {
        LT_LAYER_LINEAR, LT_LAYER_SIGMOID, LT_LAYER_LINEAR, LT_LAYER_SOFTMAX
    };
    static const lt_layer_kind  logsoft_net[] = {
        LT_LAYER_TANH, LT_LAYER_LINEAR, LT_LAYER_LOGSOFTMAX, LT_LAYER_LINEAR
    };
    static const int  d3[] = { 3, 6, 2 };
    static const int  d4[] = { 4, 7, 5, 3 };
    static const int  d2[] = { 4, 5, 3 };

    check_model("model Linear-Tanh-Linear, MSE", tanh_net, d3, 3,
                LT_LOSS_MSE, 0);
    check_model("model ...-Sigmoid, BCE", sig_net, d3, 4, LT_LOSS_BCE, 0);
    check_model("model ReLU MLP, CE with class indices", relu_net, d4, 5,
                LT_LOSS_CE, 1);
    check_model("model ReLU MLP, CE with one-hot rows", relu_net, d4, 5,
                LT_LOSS_CE, 0);
    check_model("model ...-Softmax, MSE", soft_net, d2, 4, LT_LOSS_MSE, 0);
    check_model("model ...-Softmax, BCE", soft_net, d2, 4, LT_LOSS_BCE, 0);
    check_model("model Tanh first, LogSoftmax inside, CE", logsoft_net, d2,
                4, LT_LOSS_CE, 1);
}


int
main(void)
{
    const lt_backend  *be;

    be = lt_backend_cpu();

    check_act(be, LT_ACT_RELU, "ReLU backward");
    check_act(be, LT_ACT_TANH, "Tanh backward");
    check_act(be, LT_ACT_SIGMOID, "Sigmoid backward");
    check_act(be, LT_ACT_SOFTMAX, "Softmax backward");
    check_act(be, LT_ACT_LOGSOFTMAX, "LogSoftmax backward");

    check_linear(be, 3, 4, 2);      /* loop path */
    check_linear(be, 16, 32, 24);   /* BLAS path */

    check_loss(be, LT_LOSS_MSE, 0, "MSE loss");
    check_loss(be, LT_LOSS_BCE, 0, "BCE loss");
    check_loss(be, LT_LOSS_CE, 1, "CE loss, class indices");
    check_loss(be, LT_LOSS_CE, 0, "CE loss, one-hot rows");
    check_ce_soft(be);

    check_models();

    return done_testing();
}
