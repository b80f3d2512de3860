/*
 * test_gradcheck_layers.c: the layers beyond Linear, inside whole nets,
 * against central finite differences of the loss lt_model_gradients
 * reports (train mode: BatchNorm with the batch's statistics, Dropout
 * with the mask of step 0, the same on every call).
 *
 * Every layer under test sits after a layer with parameters, so a wrong
 * input gradient shows in that layer's parameter gradients; each net
 * ends in a Linear and MSE or cross-entropy.  As in test_gradcheck.c,
 * h = 1e-2 for smooth nets and 1e-3 where a kink (max, LeakyReLU) is
 * near, with the same tolerances.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lt_backend.h"
#include "lt_model.h"
#include "lt_rand.h"
#include "tap.h"

#define H       1e-2f
#define H_KINK  1e-3f
#define ATOL    5e-4
#define RTOL    1e-2
#define ROWS    4
#define MAXP    4096
#define MAXX    1024

static uint64_t  rng_state = 4242;


static float
urand(float lo, float hi)
{
    return lo + (hi - lo) * lt_rand_unit(&rng_state);
}


typedef struct {
    const lt_model  *m;
    lt_workspace    *ws;
    const lt_tensor *x, *y;
    float           *grad;
} model_ctx;


static double
model_loss(model_ctx *c, const float *params)
{
    float   loss;
    lt_err  err;

    if (lt_model_gradients(c->m, c->ws, params, c->x, c->y, c->grad, &loss,
                           &err) != 0)
    {
        diag("lt_model_gradients: %s", err.msg);
        return NAN;
    }

    return loss;
}


/* The trained parameters (not the buffers) against central differences. */
static void
check_net(const char *name, lt_model_spec *s, float h, int indices)
{
    static float   params[MAXP], grad[MAXP], scratch[MAXP];
    float          xs[MAXX], ys[MAXX], loss, saved;
    int64_t        xshape[LT_MAX_DIMS], yshape[2];
    double         fd, err, worst;
    lt_model       m;
    lt_tensor      x, y;
    lt_err         e;
    model_ctx      c;
    int            i, n, worst_i;

    s->optim.kind = LT_OPTIM_SGD;
    s->optim.lr = 0.1f;

    if (lt_model_build(&m, s, &e) != 0) {
        fail(name);
        diag("build: %s", e.msg);
        return;
    }

    if (lt_model_values(&m) > MAXP || (size_t) ROWS * m.in_dim > MAXX) {
        fail(name);
        diag("net too large for the test's buffers");
        return;
    }

    lt_model_init_params(&m, params, 11);

    for (i = 0; i < ROWS * m.in_dim; i++) {
        xs[i] = m.in_index ? (float) (lt_splitmix64(&rng_state)
                                      % (uint64_t) s->layers[0].in)
                           : urand(-1.0f, 1.0f);
    }
    lt_tensor_view(&x, xs, lt_model_input_shape(&m, ROWS, xshape), xshape);

    yshape[0] = ROWS;
    yshape[1] = m.out_dim;
    if (s->loss == LT_LOSS_CE) {
        for (i = 0; i < ROWS; i++) {
            ys[i] = (float) (i % m.out_dim);
        }
        lt_tensor_view(&y, ys, 1, yshape);
    } else {
        for (i = 0; i < ROWS * m.out_dim; i++) {
            ys[i] = urand(-1.0f, 1.0f);
        }
        lt_tensor_view(&y, ys, 2, yshape);
    }

    c.m = &m;
    c.x = &x;
    c.y = &y;
    c.ws = lt_workspace_new(&m, lt_backend_cpu(), ROWS, &e);
    if (c.ws == NULL) {
        fail(name);
        diag("workspace: %s", e.msg);
        return;
    }

    c.grad = grad;
    if (lt_model_gradients(&m, c.ws, params, &x, &y, grad, &loss, &e)) {
        fail(name);
        diag("gradients: %s", e.msg);
        lt_workspace_free(c.ws);
        return;
    }

    c.grad = scratch;
    n = (int) m.param_count;
    worst = 0.0;
    worst_i = -1;

    for (i = 0; i < n; i++) {
        saved = params[i];
        params[i] = saved + h;
        fd = model_loss(&c, params);
        params[i] = saved - h;
        fd -= model_loss(&c, params);
        params[i] = saved;
        fd /= 2.0 * h;

        err = fabs(fd - grad[i]) / (ATOL + RTOL * fabs(fd));
        if (!(err <= worst)) {
            worst = err;
            worst_i = i;
        }
    }

    if (!ok(worst <= 1.0 && n > 0, name) && worst_i >= 0) {
        diag("parameter float %d: analytic %.6g", worst_i, grad[worst_i]);
    }

    (void) indices;
    lt_workspace_free(c.ws);
}


static lt_layer_spec *
add(lt_model_spec *s, lt_layer_kind kind)
{
    lt_layer_spec  *l;

    l = &s->layers[s->nlayers++];
    memset(l, 0, sizeof(*l));
    l->kind = kind;

    return l;
}


static lt_layer_spec *
add_io(lt_model_spec *s, lt_layer_kind kind, int in, int out)
{
    lt_layer_spec  *l;

    l = add(s, kind);
    l->in = in;
    l->out = out;

    return l;
}


static void
window(lt_layer_spec *l, int k0, int k1, int s0, int s1, int p0, int p1)
{
    l->kernel[0] = k0;
    l->kernel[1] = k1;
    l->stride[0] = s0;
    l->stride[1] = s1;
    l->padding[0] = p0;
    l->padding[1] = p1;
}


static void
input(lt_model_spec *s, int n, int a, int b, int c)
{
    s->input.ndim = n;
    s->input.d[0] = a;
    s->input.d[1] = b;
    s->input.d[2] = c;
}


int
main(void)
{
    lt_model_spec   s;
    lt_layer_spec  *l;

    /* Conv2d, GELU, MaxPool2d, grouped and dilated Conv2d, ELU */
    memset(&s, 0, sizeof(s));
    input(&s, 3, 2, 6, 5);
    window(add_io(&s, LT_LAYER_CONV2D, 2, 4), 3, 3, 1, 1, 1, 1);
    add(&s, LT_LAYER_GELU);
    window(add(&s, LT_LAYER_MAXPOOL2D), 2, 2, 2, 2, 0, 0);
    l = add_io(&s, LT_LAYER_CONV2D, 4, 2);
    window(l, 2, 1, 1, 1, 1, 0);
    l->groups = 2;
    l->dilation[0] = 2;
    l = add(&s, LT_LAYER_ELU);
    l->a = 0.8f;
    add(&s, LT_LAYER_FLATTEN);
    add_io(&s, LT_LAYER_LINEAR, 2 * 3 * 2, 3);
    s.loss = LT_LOSS_CE;
    check_net("Conv2d, GELU, MaxPool2d, grouped dilated Conv2d, ELU, CE", &s,
              H_KINK, 1);

    /* Conv1d, SiLU, AvgPool1d, grouped Conv1d without bias, Softplus */
    memset(&s, 0, sizeof(s));
    input(&s, 2, 3, 10, 0);
    window(add_io(&s, LT_LAYER_CONV1D, 3, 4), 1, 3, 1, 2, 0, 1);
    add(&s, LT_LAYER_SILU);
    window(add(&s, LT_LAYER_AVGPOOL1D), 1, 2, 1, 2, 0, 1);
    l = add_io(&s, LT_LAYER_CONV1D, 4, 2);
    window(l, 1, 2, 1, 1, 0, 0);
    l->groups = 2;
    l->no_bias = 1;
    l = add(&s, LT_LAYER_SOFTPLUS);
    l->a = 1.5f;
    l->b = 20.0f;
    add(&s, LT_LAYER_FLATTEN);
    add_io(&s, LT_LAYER_LINEAR, 2 * 2, 2);
    s.loss = LT_LOSS_MSE;
    check_net("Conv1d, SiLU, AvgPool1d, grouped Conv1d, Softplus, MSE", &s,
              H, 0);

    /* BatchNorm1d with batch statistics, LeakyReLU */
    memset(&s, 0, sizeof(s));
    add_io(&s, LT_LAYER_LINEAR, 4, 6);
    l = add_io(&s, LT_LAYER_BATCHNORM1D, 6, 0);
    l->a = 1e-5f;
    l->b = 0.1f;
    l = add(&s, LT_LAYER_LEAKY_RELU);
    l->a = 0.1f;
    add_io(&s, LT_LAYER_LINEAR, 6, 2);
    s.loss = LT_LOSS_MSE;
    check_net("Linear, BatchNorm1d, LeakyReLU, Linear, MSE", &s, H_KINK, 0);

    /* BatchNorm2d, Tanh, AvgPool2d (padding excluded), AdaptiveAvgPool2d */
    memset(&s, 0, sizeof(s));
    input(&s, 3, 2, 5, 5);
    window(add_io(&s, LT_LAYER_CONV2D, 2, 3), 3, 3, 1, 1, 1, 1);
    l = add_io(&s, LT_LAYER_BATCHNORM2D, 3, 0);
    l->a = 1e-5f;
    l->b = 0.1f;
    add(&s, LT_LAYER_TANH);
    l = add(&s, LT_LAYER_AVGPOOL2D);
    window(l, 2, 2, 2, 2, 1, 1);
    l->exclude_pad = 1;
    l = add(&s, LT_LAYER_ADAPTIVE_AVGPOOL2D);
    l->dim[0] = 2;
    l->dim[1] = 2;
    add(&s, LT_LAYER_FLATTEN);
    add_io(&s, LT_LAYER_LINEAR, 12, 2);
    s.loss = LT_LOSS_CE;
    check_net("Conv2d, BatchNorm2d, Tanh, AvgPool2d, AdaptiveAvgPool2d, CE",
              &s, H, 1);

    /* BatchNorm1d over [N, C, L] without affine */
    memset(&s, 0, sizeof(s));
    input(&s, 2, 2, 5, 0);
    window(add_io(&s, LT_LAYER_CONV1D, 2, 3), 1, 2, 1, 1, 0, 0);
    l = add_io(&s, LT_LAYER_BATCHNORM1D, 3, 0);
    l->a = 1e-5f;
    l->b = 0.1f;
    l->no_bias = 1;
    add(&s, LT_LAYER_SIGMOID);
    add(&s, LT_LAYER_FLATTEN);
    add_io(&s, LT_LAYER_LINEAR, 12, 2);
    s.loss = LT_LOSS_MSE;
    check_net("Conv1d, BatchNorm1d [N, C, L] without affine, MSE", &s, H, 0);

    /* Linear over the last dim of [L, F], LayerNorm over [L, F], GELU */
    memset(&s, 0, sizeof(s));
    input(&s, 2, 3, 4, 0);
    add_io(&s, LT_LAYER_LINEAR, 4, 5);
    l = add(&s, LT_LAYER_LAYERNORM);
    l->a = 1e-5f;
    l->norm.ndim = 2;
    l->norm.d[0] = 3;
    l->norm.d[1] = 5;
    l = add(&s, LT_LAYER_GELU);
    l->approximate = 1;
    add(&s, LT_LAYER_FLATTEN);
    add_io(&s, LT_LAYER_LINEAR, 15, 2);
    s.loss = LT_LOSS_MSE;
    check_net("Linear over [L, F], LayerNorm([3, 5]), GELU tanh, MSE", &s, H,
              0);

    /* Embedding, LayerNorm, Identity, Linear without bias (padding_idx's
     * zero gradient is PyTorch's rule, not a derivative: test_layers.c
     * checks it against PyTorch) */
    memset(&s, 0, sizeof(s));
    input(&s, 1, 5, 0, 0);
    add_io(&s, LT_LAYER_EMBEDDING, 7, 3);
    l = add(&s, LT_LAYER_LAYERNORM);
    l->a = 1e-5f;
    l->norm.ndim = 1;
    l->norm.d[0] = 3;
    add(&s, LT_LAYER_IDENTITY);
    add(&s, LT_LAYER_FLATTEN);
    l = add_io(&s, LT_LAYER_LINEAR, 15, 3);
    l->no_bias = 1;
    s.loss = LT_LOSS_CE;
    check_net("Embedding, LayerNorm, Identity, Linear(bias = false), CE", &s,
              H, 1);

    /* Dropout: the same mask on every call of one step */
    memset(&s, 0, sizeof(s));
    add_io(&s, LT_LAYER_LINEAR, 4, 8);
    add(&s, LT_LAYER_TANH);
    l = add(&s, LT_LAYER_DROPOUT);
    l->a = 0.3f;
    add_io(&s, LT_LAYER_LINEAR, 8, 2);
    s.loss = LT_LOSS_MSE;
    check_net("Linear, Tanh, Dropout(0.3), Linear, MSE", &s, H, 0);

    return done_testing();
}
