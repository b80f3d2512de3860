/*
 * test_train.c: models as a user meets them: building (and refusing to
 * build), the parameter layout, initialization, input checking with its
 * messages, workspaces, and training that actually learns.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lt_model.h"
#include "lt_rand.h"
#include "tap.h"

static uint64_t  rng_state = 1234;


static float
urand(void)
{
    return lt_rand_unit(&rng_state);
}


static void
add_linear(lt_model_spec *s, int in, int out)
{
    s->layers[s->nlayers].kind = LT_LAYER_LINEAR;
    s->layers[s->nlayers].in = in;
    s->layers[s->nlayers].out = out;
    s->nlayers++;
}


static void
add_act(lt_model_spec *s, lt_layer_kind kind)
{
    s->layers[s->nlayers++].kind = kind;
}


/* Linear(in, hidden) - act - Linear(hidden, out) [- last] */
static void
mlp_spec(lt_model_spec *s, int in, int hidden, int out, lt_layer_kind act,
    int last, lt_loss_kind loss, lt_optim_kind optim, float lr)
{
    memset(s, 0, sizeof(*s));
    add_linear(s, in, hidden);
    add_act(s, act);
    add_linear(s, hidden, out);
    if (last >= 0) {
        add_act(s, (lt_layer_kind) last);
    }

    s->loss = loss;
    s->optim.kind = optim;
    s->optim.lr = lr;
    s->optim.beta1 = 0.9f;
    s->optim.beta2 = 0.999f;
    s->optim.eps = 1e-8f;
}


static int
has_nan(const float *v, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            return 1;
        }
    }

    return 0;
}


/* A model with its block (parameters + state) and a workspace. */
typedef struct {
    lt_model       m;
    float         *block;
    lt_workspace  *ws;
} net;


static int
net_new(net *n, const lt_model_spec *spec, uint64_t seed)
{
    lt_err  err;

    memset(n, 0, sizeof(*n));

    if (lt_model_build(&n->m, spec, &err) != 0) {
        diag("build: %s", err.msg);
        return -1;
    }

    n->block = malloc((n->m.param_count + n->m.state_count)
                      * sizeof(float));
    n->ws = lt_workspace_new(&n->m, lt_backend_cpu(), 1, &err);
    if (n->block == NULL || n->ws == NULL) {
        diag("out of memory");
        return -1;
    }

    lt_model_init_params(&n->m, n->block, seed);
    return 0;
}


static void
net_free(net *n)
{
    lt_workspace_free(n->ws);
    free(n->block);
}


static int
net_step(net *n, int64_t step, const lt_tensor *x, const lt_tensor *y,
    float *loss)
{
    lt_err  err;

    if (lt_model_train_step(&n->m, n->ws, n->block, n->block,
                            n->block + n->m.param_count, step, x, y, loss,
                            &err) != 0)
    {
        diag("train step %lld: %s", (long long) step, err.msg);
        return -1;
    }

    return 0;
}


/* -- learning ---------------------------------------------------------------- */

static void
test_xor(void)
{
    static float   xs[] = { 0, 0, 0, 1, 1, 0, 1, 1 };
    static float   ys[] = { 0, 1, 1, 0 };
    static int64_t xshape[] = { 4, 2 };
    static int64_t yshape[] = { 4, 1 };
    lt_model_spec  spec;
    lt_tensor      x, y, out;
    lt_err         err;
    float          loss;
    net            n;
    int            step, right, i;

    mlp_spec(&spec, 2, 16, 1, LT_LAYER_TANH, LT_LAYER_SIGMOID, LT_LOSS_MSE,
             LT_OPTIM_ADAM, 0.05f);
    if (net_new(&n, &spec, 1) != 0) {
        fail("XOR net builds");
        return;
    }

    lt_tensor_view(&x, xs, 2, xshape);
    lt_tensor_view(&y, ys, 2, yshape);

    loss = 1.0f;
    for (step = 1; step <= 600 && loss >= 0.01f; step++) {
        if (net_step(&n, step, &x, &y, &loss) != 0) {
            break;
        }
    }

    if (!ok(loss < 0.01f, "XOR 2-16-1 (Adam 0.05) reaches MSE < 0.01 within"
            " 600 steps"))
    {
        diag("loss %g after %d steps", (double) loss, step - 1);
    }
    diag("XOR: loss %g after %d steps", (double) loss, step - 1);

    right = 0;
    if (lt_model_forward(&n.m, n.ws, n.block, &x, &out, &err) == 0) {
        for (i = 0; i < 4; i++) {
            right += (out.data[i] > 0.5f) == (ys[i] > 0.5f);
        }
    }
    is_int(right, 4, "XOR: the trained net answers all four cases");
    ok(!has_nan(n.block, n.m.param_count + n.m.state_count),
       "XOR: no NaN in parameters or state");

    net_free(&n);
}


static void
test_overfit_batch(void)
{
    static float   xs[32 * 64], ys[32];
    int64_t        xshape[] = { 32, 64 };
    int64_t        yshape[] = { 32 };
    lt_model_spec  spec;
    lt_tensor      x, y, out;
    lt_err         err;
    float          loss, first;
    net            n;
    int            step, right, i, j, best;

    for (i = 0; i < 32 * 64; i++) {
        xs[i] = 2.0f * urand() - 1.0f;
    }
    for (i = 0; i < 32; i++) {
        ys[i] = (float) (int) (urand() * 10.0f);
    }

    mlp_spec(&spec, 64, 64, 10, LT_LAYER_RELU, -1, LT_LOSS_CE,
             LT_OPTIM_SGD, 0.1f);
    spec.optim.momentum = 0.9f;
    if (net_new(&n, &spec, 2) != 0) {
        fail("64-64-10 net builds");
        return;
    }

    lt_tensor_view(&x, xs, 2, xshape);
    lt_tensor_view(&y, ys, 1, yshape);

    first = -1.0f;
    loss = 1.0f;
    for (step = 1; step <= 500 && loss >= 0.05f; step++) {
        if (net_step(&n, step, &x, &y, &loss) != 0) {
            break;
        }
        if (first < 0.0f) {
            first = loss;
        }
    }

    /* random labels over 10 classes start near ln(10) */
    ok(first > 1.8f && first < 2.8f, "CE of an untrained 10-class net is"
       " near ln 10");
    if (!ok(loss < 0.05f, "64-64-10 CE net overfits 32 random labels"
            " (loss < 0.05)"))
    {
        diag("loss %g after %d steps", (double) loss, step - 1);
    }

    right = 0;
    if (lt_model_forward(&n.m, n.ws, n.block, &x, &out, &err) == 0) {
        for (i = 0; i < 32; i++) {
            for (best = 0, j = 1; j < 10; j++) {
                if (out.data[i * 10 + j] > out.data[i * 10 + best]) {
                    best = j;
                }
            }
            right += best == (int) ys[i];
        }
    }
    is_int(right, 32, "the overfit net classifies all 32 samples");

    net_free(&n);
}


/* -- building ------------------------------------------------------------- */

static void
expect_build_error(const lt_model_spec *spec, const char *needle,
    const char *name)
{
    lt_model  m;
    lt_err    err;

    err.msg[0] = '\0';
    ok(lt_model_build(&m, spec, &err) == -1, name);
    like(err.msg, needle, name);
}


static void
test_build_errors(void)
{
    lt_model_spec  s;

    memset(&s, 0, sizeof(s));
    add_linear(&s, 4, 16);
    add_act(&s, LT_LAYER_RELU);
    add_linear(&s, 20, 1);
    s.optim.lr = 0.1f;
    expect_build_error(&s, "layer \"2\" (Linear) expects input [..., 20] "
                       "but gets [16]", "mismatched Linear chain");

    memset(&s, 0, sizeof(s));
    add_act(&s, LT_LAYER_TANH);
    add_act(&s, LT_LAYER_RELU);
    s.optim.lr = 0.1f;
    expect_build_error(&s, "does not say the shape of a sample",
                       "a net without Linear");

    memset(&s, 0, sizeof(s));
    s.optim.lr = 0.1f;
    expect_build_error(&s, "1 to 64 layers", "an empty net");

    mlp_spec(&s, 2, 3, 1, LT_LAYER_TANH, -1, LT_LOSS_MSE, LT_OPTIM_SGD,
             -0.1f);
    expect_build_error(&s, "SGD: invalid learning rate -0.1",
                       "a negative learning rate");

    mlp_spec(&s, 2, 3, 1, LT_LAYER_TANH, -1, LT_LOSS_MSE, LT_OPTIM_ADAM,
             0.1f);
    s.optim.beta1 = 1.0f;
    expect_build_error(&s, "beta1", "Adam beta1 of 1");

    mlp_spec(&s, 2, 3, 1, LT_LAYER_TANH, -1, LT_LOSS_BCE, LT_OPTIM_SGD,
             0.1f);
    expect_build_error(&s, "BCELoss expects probabilities",
                       "BCE after a Linear");

    mlp_spec(&s, 2, 0, 1, LT_LAYER_TANH, -1, LT_LOSS_MSE, LT_OPTIM_SGD,
             0.1f);
    expect_build_error(&s, "layer \"0\" (Linear): out_features = 0",
                       "a Linear with 0 outputs");
}


/* nn.Linear(1e6, 1e6) is a typo: it is refused naming the layer, before
 * anyone tries to map 8 TB of zone for it. */
static void
test_size_limits(void)
{
    lt_model_spec  s;
    lt_model       m;
    lt_err         err;
    int            i;

    memset(&s, 0, sizeof(s));
    add_linear(&s, 2, 1000000);
    add_act(&s, LT_LAYER_RELU);
    add_linear(&s, 1000000, 1000000);
    s.optim.lr = 0.1f;
    expect_build_error(&s, "layer \"2\" (Linear) has "
                       "1000001000000 parameters; a model may have at most "
                       "268435456", "Linear(1e6, 1e6) names the layer");

    memset(&s, 0, sizeof(s));
    add_linear(&s, 16384, 16384);
    s.optim.lr = 0.1f;
    expect_build_error(&s, "has 268451840 parameters",
                       "2^28 weights and a bias: one too many");

    memset(&s, 0, sizeof(s));
    add_linear(&s, 16383, 16384);
    s.optim.lr = 0.1f;
    ok(lt_model_build(&m, &s, &err) == 0 && m.param_count == 268435456u,
       "exactly 2^28 parameters build");

    memset(&s, 0, sizeof(s));
    for (i = 0; i < 16; i++) {
        add_linear(&s, 4096, 4096);
    }
    s.optim.lr = 0.1f;
    expect_build_error(&s, "the net has 268500992 parameters; a model may "
                       "have at most 268435456", "the total is bounded too");

    memset(&s, 0, sizeof(s));
    add_linear(&s, (1 << 24) + 1, 1);
    s.optim.lr = 0.1f;
    expect_build_error(&s, "must be in [1, 16777216]",
                       "a width above 2^24");
}


static void
test_layout(void)
{
    lt_model_spec         s;
    const lt_param_info  *p;
    lt_model              m, m2;
    lt_err                err;

    mlp_spec(&s, 2, 16, 1, LT_LAYER_TANH, LT_LAYER_SIGMOID, LT_LOSS_MSE,
             LT_OPTIM_SGD, 0.1f);
    if (!ok(lt_model_build(&m, &s, &err) == 0, "2-16-1 builds")) {
        diag("%s", err.msg);
        return;
    }

    is_int(m.in_dim, 2, "in_dim");
    is_int(m.out_dim, 1, "out_dim");
    is_int(m.nparams, 4, "4 parameters");
    is_int(m.param_count, 2 * 16 + 16 + 16 + 1, "P = 65");
    is_int(m.state_count, 0, "plain SGD has no state");
    is_int(m.max_width, 16, "max_width");

    is_str(m.params[0].name, "0.weight", "params[0] is 0.weight");
    ok(m.params[0].ndim == 2 && m.params[0].shape[0] == 16
       && m.params[0].shape[1] == 2, "0.weight is [16, 2] ([out, in])");
    is_int(m.params[0].offset, 0, "0.weight at offset 0");
    is_str(m.params[1].name, "0.bias", "params[1] is 0.bias");
    ok(m.params[1].ndim == 1 && m.params[1].shape[0] == 16,
       "0.bias is [16]");
    is_int(m.params[1].offset, 32, "0.bias at offset 32");
    is_str(m.params[2].name, "2.weight", "Sequential index: 2.weight");
    ok(m.params[2].shape[0] == 1 && m.params[2].shape[1] == 16,
       "2.weight is [1, 16]");
    is_int(m.params[2].offset, 48, "2.weight at offset 48");
    is_str(m.params[3].name, "2.bias", "2.bias");
    is_int(m.params[3].offset, 64, "2.bias at offset 64");
    is_int(m.params[3].numel, 1, "2.bias has 1 element");

    p = lt_model_find_param(&m, "2.weight");
    ok(p == &m.params[2], "find_param finds 2.weight");
    ok(lt_model_find_param(&m, "1.weight") == NULL,
       "find_param: no 1.weight (Tanh has none)");

    s.optim.momentum = 0.9f;
    lt_model_build(&m2, &s, &err);
    is_int(m2.state_count, m2.param_count, "SGD with momentum: S = P");
    ok(m2.hash != m.hash, "momentum changes the layout hash (S differs)");

    s.optim.kind = LT_OPTIM_ADAM;
    s.optim.beta1 = 0.9f;
    s.optim.beta2 = 0.999f;
    lt_model_build(&m2, &s, &err);
    is_int(m2.state_count, 2 * m2.param_count, "Adam: S = 2P");

    mlp_spec(&s, 2, 16, 1, LT_LAYER_TANH, LT_LAYER_SIGMOID, LT_LOSS_BCE,
             LT_OPTIM_SGD, 0.5f);
    lt_model_build(&m2, &s, &err);
    ok(m2.hash == m.hash, "loss and learning rate leave the hash alone");

    mlp_spec(&s, 2, 17, 1, LT_LAYER_TANH, LT_LAYER_SIGMOID, LT_LOSS_MSE,
             LT_OPTIM_SGD, 0.1f);
    lt_model_build(&m2, &s, &err);
    ok(m2.hash != m.hash, "a different width changes the hash");

    is_str(lt_layer_name(LT_LAYER_LOGSOFTMAX), "LogSoftmax", "layer names");
    ok(lt_model_step_flops(&m, 1) > 2 * 2 * 16,
       "a step costs more than the first Linear's forward and dW");
    ok(lt_model_step_flops(&m, 64) > 30 * lt_model_step_flops(&m, 1),
       "step flops grow with the batch");
}


static void
test_init(void)
{
    lt_model_spec  s;
    lt_model       m;
    lt_err         err;
    float         *a, *b;
    double         bound, maxabs, sum;
    size_t         i, j, total;
    int            inside, same, differ;

    mlp_spec(&s, 300, 100, 10, LT_LAYER_RELU, -1, LT_LOSS_CE,
             LT_OPTIM_ADAM, 0.01f);
    if (lt_model_build(&m, &s, &err) != 0) {
        fail("model for init builds");
        return;
    }

    total = m.param_count + m.state_count;
    a = malloc(total * sizeof(float));
    b = malloc(total * sizeof(float));
    for (i = 0; i < total; i++) {
        a[i] = b[i] = 7.0f;     /* the state must be zeroed */
    }

    lt_model_init_params(&m, a, 42);

    inside = 1;
    for (i = 0; i < (size_t) m.nparams; i++) {
        /* a bias has the fan-in of its weight */
        bound = 1.0 / sqrt((double) m.params[i & ~(size_t) 1].shape[1]);
        maxabs = 0.0;
        sum = 0.0;
        for (j = 0; j < m.params[i].numel; j++) {
            maxabs = fmax(maxabs, fabs(a[m.params[i].offset + j]));
            sum += a[m.params[i].offset + j];
        }
        inside &= maxabs <= bound;
        if (m.params[i].numel > 1000) {
            ok(maxabs > 0.98 * bound, "weights fill +-1/sqrt(fan_in)");
            ok(fabs(sum / (double) m.params[i].numel) < 0.05 * bound,
               "weights are centred on 0");
        }
    }
    ok(inside, "every |w| and |b| <= 1/sqrt(fan_in)");

    for (same = 1, i = m.param_count; i < total; i++) {
        same &= a[i] == 0.0f;
    }
    ok(same, "optimizer state zeroed");

    lt_model_init_params(&m, b, 42);
    ok(memcmp(a, b, total * sizeof(float)) == 0, "same seed, same values");

    lt_model_init_params(&m, b, 43);
    for (differ = 0, i = 0; i < m.param_count; i++) {
        differ += a[i] != b[i];
    }
    ok(differ > (int) m.param_count * 9 / 10,
       "another seed, other values");

    free(a);
    free(b);
}


/* -- input checking --------------------------------------------------------- */

static void
test_shape_errors(void)
{
    static float   data[64];
    int64_t        shape[3];
    lt_model_spec  s;
    lt_tensor      x, y, out;
    lt_err         err;
    float          loss;
    net            n;

    mlp_spec(&s, 2, 4, 1, LT_LAYER_TANH, -1, LT_LOSS_MSE, LT_OPTIM_SGD,
             0.1f);
    if (net_new(&n, &s, 1) != 0) {
        fail("net builds");
        return;
    }

    shape[0] = 3;
    shape[1] = 5;
    lt_tensor_view(&x, data, 2, shape);
    is_int(lt_model_check_input(&n.m, &x, &err), -1, "x [3, 5] rejected");
    is_str(err.msg, "x has shape [3, 5], expected [N, 2]",
           "message names both shapes");
    is_int(lt_model_forward(&n.m, n.ws, n.block, &x, &out, &err), -1,
           "forward refuses it too");
    is_int(lt_model_train_step(&n.m, n.ws, n.block, n.block, NULL, 1, &x,
                               &x, &loss, &err), -1,
           "and so does train_step");
    like(err.msg, "[3, 5]", "with the same message");

    shape[0] = 5;
    lt_tensor_view(&x, data, 1, shape);
    is_int(lt_model_check_input(&n.m, &x, &err), -1, "x [5] rejected");
    is_str(err.msg, "x has shape [5], expected [N, 2]", "1-D message");

    shape[0] = 0;
    shape[1] = 2;
    lt_tensor_view(&x, data, 2, shape);
    is_int(lt_model_check_input(&n.m, &x, &err), -1, "x [0, 2] rejected");

    shape[0] = 3;
    shape[1] = 2;
    lt_tensor_view(&x, data, 2, shape);
    is_int(lt_model_check_input(&n.m, &x, &err), 0, "x [3, 2] accepted");

    shape[1] = 2;
    lt_tensor_view(&y, data, 2, shape);
    is_int(lt_model_check_target(&n.m, &x, &y, &err), -1,
           "y [3, 2] rejected for 1 output");
    is_str(err.msg, "y has shape [3, 2], expected [3, 1]",
           "message names both shapes");

    lt_tensor_view(&y, data, 1, shape);
    is_int(lt_model_check_target(&n.m, &x, &y, &err), 0,
           "y [3] accepted for 1 output");

    shape[0] = 2;
    lt_tensor_view(&y, data, 1, shape);
    is_int(lt_model_check_target(&n.m, &x, &y, &err), -1,
           "y [2] rejected for 3 rows");

    shape[0] = 2;
    lt_tensor_view(&x, data, 1, shape);
    shape[0] = 1;
    lt_tensor_view(&y, data, 1, shape);
    is_int(lt_model_check_target(&n.m, &x, &y, &err), 0,
           "one 1-D sample with y [1]");
    lt_tensor_view(&y, data, 0, shape);
    is_int(lt_model_check_target(&n.m, &x, &y, &err), 0,
           "one 1-D sample with a scalar y");

    net_free(&n);
}


static void
test_ce_targets(void)
{
    static float   xs[4 * 3], onehot[4 * 5], grad_a[64], grad_b[64];
    float          idx[4] = { 0, 4, 2, 2 };
    int64_t        xshape[] = { 4, 3 };
    int64_t        yshape[] = { 4, 5 };
    lt_model_spec  s;
    lt_tensor      x, y;
    lt_err         err;
    float          la, lb;
    net            n;
    int            i, same;

    mlp_spec(&s, 3, 6, 5, LT_LAYER_TANH, -1, LT_LOSS_CE, LT_OPTIM_SGD,
             0.1f);
    if (net_new(&n, &s, 3) != 0) {
        fail("CE net builds");
        return;
    }

    for (i = 0; i < 12; i++) {
        xs[i] = urand();
    }
    for (i = 0; i < 4; i++) {
        onehot[i * 5 + (int) idx[i]] = 1.0f;
    }
    lt_tensor_view(&x, xs, 2, xshape);

    lt_tensor_view(&y, idx, 1, yshape);
    ok(lt_model_gradients(&n.m, n.ws, n.block, &x, &y, grad_a, &la, &err)
       == 0, "CE with class indices");
    lt_tensor_view(&y, onehot, 2, yshape);
    ok(lt_model_gradients(&n.m, n.ws, n.block, &x, &y, grad_b, &lb, &err)
       == 0, "CE with one-hot rows");

    is_float(la, lb, 1e-6, "indices and one-hot give the same loss");
    for (same = 1, i = 0; i < (int) n.m.param_count; i++) {
        same &= fabsf(grad_a[i] - grad_b[i]) < 1e-6f;
    }
    ok(same, "... and the same gradients");

    idx[1] = 2.5f;
    lt_tensor_view(&y, idx, 1, yshape);
    is_int(lt_model_check_target(&n.m, &x, &y, &err), -1,
           "class 2.5 rejected");
    is_str(err.msg, "y[1] = 2.5 is not a class index in [0, 5)",
           "message names the element");

    idx[1] = 5.0f;
    is_int(lt_model_check_target(&n.m, &x, &y, &err), -1,
           "class 5 of 5 rejected");
    idx[1] = -1.0f;
    is_int(lt_model_check_target(&n.m, &x, &y, &err), -1,
           "class -1 rejected");
    idx[1] = NAN;
    is_int(lt_model_check_target(&n.m, &x, &y, &err), -1,
           "class NaN rejected");
    idx[1] = 4.0f;

    yshape[1] = 4;
    lt_tensor_view(&y, onehot, 2, yshape);
    is_int(lt_model_check_target(&n.m, &x, &y, &err), -1,
           "one-hot [4, 4] rejected for 5 classes");
    is_str(err.msg, "y has shape [4, 4], expected [4] class indices or"
           " [4, 5] one-hot rows", "CE message names both forms");

    net_free(&n);
}


/* -- workspaces, forward, numerics ------------------------------------------- */

static void
test_workspace(void)
{
    static float   xs[100 * 3], ys[100], out1[100];
    int64_t        shape[2];
    lt_model_spec  s;
    lt_workspace  *fresh;
    lt_tensor      x, y, out;
    lt_err         err;
    float          la, lb;
    float          grad_a[64], grad_b[64];
    net            n;
    int            i, same;

    mlp_spec(&s, 3, 8, 1, LT_LAYER_SIGMOID, -1, LT_LOSS_MSE, LT_OPTIM_SGD,
             0.1f);
    if (net_new(&n, &s, 4) != 0) {
        fail("net builds");
        return;
    }

    for (i = 0; i < 300; i++) {
        xs[i] = urand();
    }
    for (i = 0; i < 100; i++) {
        ys[i] = urand();
    }

    is_int(lt_workspace_capacity(n.ws), 1, "a new workspace holds 1 row");
    ok(lt_workspace_reserve(n.ws, 1, &err) == 0
       && lt_workspace_capacity(n.ws) == 1, "reserve(1) keeps it");
    ok(lt_workspace_reserve(n.ws, 3, &err) == 0
       && lt_workspace_capacity(n.ws) >= 3, "reserve(3) grows it");

    shape[0] = 100;
    shape[1] = 3;
    lt_tensor_view(&x, xs, 2, shape);
    lt_tensor_view(&y, ys, 1, shape);
    ok(lt_model_gradients(&n.m, n.ws, n.block, &x, &y, grad_a, &la, &err)
       == 0, "a batch of 100 grows the workspace by itself");
    ok(lt_workspace_capacity(n.ws) >= 100, "capacity >= 100 now");

    fresh = lt_workspace_new(&n.m, lt_backend_cpu(), 100, &err);
    ok(fresh != NULL && lt_workspace_capacity(fresh) == 100,
       "workspace_new(100)");
    lt_model_gradients(&n.m, fresh, n.block, &x, &y, grad_b, &lb, &err);
    for (same = la == lb, i = 0; i < (int) n.m.param_count; i++) {
        same &= grad_a[i] == grad_b[i];
    }
    ok(same, "a grown workspace computes what a fresh one does");

    /* forward of a batch, then of one 1-D sample */
    ok(lt_model_forward(&n.m, n.ws, n.block, &x, &out, &err) == 0,
       "forward [100, 3]");
    ok(out.ndim == 2 && out.shape[0] == 100 && out.shape[1] == 1,
       "output is [100, 1]");
    memcpy(out1, out.data, sizeof(out1));

    shape[0] = 3;
    lt_tensor_view(&x, xs + 3 * 7, 1, shape);
    ok(lt_model_forward(&n.m, n.ws, n.block, &x, &out, &err) == 0,
       "forward of one 1-D sample");
    ok(out.ndim == 1 && out.shape[0] == 1, "gives a 1-D output, as torch");
    is_float(out.data[0], out1[7], 1e-6, "equal to that row of the batch");

    lt_workspace_free(fresh);
    net_free(&n);
}


static void
test_extremes(void)
{
    static float   xs[8 * 4], ys[8];
    int64_t        shape[] = { 8, 4 };
    lt_model_spec  s;
    lt_tensor      x, y;
    float          loss;
    net            n;
    int            i, step, finite;

    for (i = 0; i < 32; i++) {
        xs[i] = (i % 2 ? 1e4f : -1e4f) * urand();
    }
    for (i = 0; i < 8; i++) {
        ys[i] = (float) (i % 2);
    }
    lt_tensor_view(&x, xs, 2, shape);
    lt_tensor_view(&y, ys, 1, shape);

    /* huge logits: log-softmax must not overflow */
    mlp_spec(&s, 4, 16, 2, LT_LAYER_RELU, -1, LT_LOSS_CE, LT_OPTIM_SGD,
             0.01f);
    if (net_new(&n, &s, 5) == 0) {
        for (finite = 1, step = 1; step <= 20; step++) {
            finite &= net_step(&n, step, &x, &y, &loss) == 0
                      && isfinite(loss);
        }
        ok(finite && !has_nan(n.block, n.m.param_count),
           "CE on inputs of 1e4: finite loss, no NaN");
        net_free(&n);
    }

    /* a saturated sigmoid: BCE clamps log at -100 as PyTorch */
    mlp_spec(&s, 4, 16, 1, LT_LAYER_TANH, LT_LAYER_SIGMOID, LT_LOSS_BCE,
             LT_OPTIM_ADAM, 0.01f);
    if (net_new(&n, &s, 6) == 0) {
        for (finite = 1, step = 1; step <= 20; step++) {
            finite &= net_step(&n, step, &x, &y, &loss) == 0
                      && isfinite(loss) && loss <= 100.0f;
        }
        ok(finite && !has_nan(n.block, n.m.param_count + n.m.state_count),
           "BCE on a saturated sigmoid: loss <= 100, no NaN");
        net_free(&n);
    }
}


static void
test_step_errors(void)
{
    static float   xs[2], ys[1];
    int64_t        shape[] = { 1, 2 };
    lt_model_spec  s;
    lt_tensor      x, y;
    lt_err         err;
    float          loss;
    net            n;

    mlp_spec(&s, 2, 3, 1, LT_LAYER_TANH, -1, LT_LOSS_MSE, LT_OPTIM_ADAM,
             0.01f);
    s.optim.beta1 = 0.9f;
    if (net_new(&n, &s, 1) != 0) {
        fail("net builds");
        return;
    }

    lt_tensor_view(&x, xs, 2, shape);
    shape[1] = 1;
    lt_tensor_view(&y, ys, 2, shape);

    is_int(lt_model_train_step(&n.m, n.ws, n.block, n.block,
                               n.block + n.m.param_count, 0, &x, &y, &loss,
                               &err), -1, "step 0 is refused (Adam counts"
           " from 1)");
    is_int(lt_model_train_step(&n.m, n.ws, n.block, n.block, NULL, 1, &x,
                               &y, &loss, &err), -1,
           "Adam without its state is refused");

    net_free(&n);
}


/*
 * A valid batch that drives the model to Inf: refused with LT_ENONFINITE,
 * and out of place nothing of the inputs changes.
 */
static void
test_nonfinite_steps(void)
{
    static float   xs[2], ys[1];
    int64_t        shape[] = { 1, 2 };
    lt_model_spec  s;
    lt_tensor      x, y;
    lt_err         err;
    float          loss, *in, *out, *before;
    size_t         bytes;
    net            n;
    int            rc;

    /* MSE against 3e38: the loss overflows, no update is written */
    mlp_spec(&s, 2, 4, 1, LT_LAYER_TANH, -1, LT_LOSS_MSE, LT_OPTIM_SGD,
             0.1f);
    s.optim.momentum = 0.9f;
    if (net_new(&n, &s, 3) != 0) {
        fail("net builds");
        return;
    }

    bytes = (n.m.param_count + n.m.state_count) * sizeof(float);
    in = n.block;
    out = malloc(bytes);
    before = malloc(bytes);
    memcpy(before, in, bytes);
    memset(out, 0x7f, bytes);

    xs[0] = 0.0f;
    xs[1] = 1.0f;
    ys[0] = 3e38f;
    lt_tensor_view(&x, xs, 2, shape);
    shape[1] = 1;
    lt_tensor_view(&y, ys, 2, shape);

    err.code = LT_EINVAL;
    rc = lt_model_train_step_to(&n.m, n.ws, in, out, in + n.m.param_count,
                                out + n.m.param_count, 1, &x, &y, &loss,
                                &err);
    is_int(rc, -1, "a target of 3e38: the step fails");
    is_int(err.code, LT_ENONFINITE, "as not finite");
    ok(strstr(err.msg, "loss of this batch is infinite") != NULL,
       "the message says the loss is infinite");
    ok(memcmp(in, before, bytes) == 0,
       "parameters and momentum in are untouched");
    net_free(&n);

    /* Adam: a finite loss whose gradient squares to Inf */
    mlp_spec(&s, 2, 1, 1, LT_LAYER_RELU, -1, LT_LOSS_MSE, LT_OPTIM_ADAM,
             0.01f);
    s.nlayers = 1;              /* Linear(2, 1) alone */
    s.layers[0].out = 1;
    if (net_new(&n, &s, 4) != 0) {
        fail("net builds");
        return;
    }

    free(out);
    free(before);
    bytes = (n.m.param_count + n.m.state_count) * sizeof(float);
    in = n.block;
    out = malloc(bytes);
    before = malloc(bytes);
    memcpy(before, in, bytes);

    xs[0] = 1e19f;
    xs[1] = 0.0f;
    ys[0] = 0.0f;

    rc = lt_model_train_step_to(&n.m, n.ws, in, out, in + n.m.param_count,
                                out + n.m.param_count, 1, &x, &y, &loss,
                                &err);
    ok(rc == 0 && isfinite(loss), "x of 1e19: the step itself runs, with a "
       "finite loss");
    ok(!has_nan(out, n.m.param_count), "and finite new parameters");
    rc = lt_model_step_check(&n.m, loss, out, out + n.m.param_count, &err);
    is_int(rc, -1, "but the check refuses it");
    is_int(err.code, LT_ENONFINITE, "as not finite");
    ok(strstr(err.msg, "optimizer state of \"0.weight\"") != NULL,
       "naming the optimizer state of 0.weight");
    ok(memcmp(in, before, bytes) == 0, "and the inputs are untouched");
    is_int(lt_model_step_check(&n.m, loss, in, in + n.m.param_count, &err),
           0, "the old buffers pass the check");
    is_int(lt_model_step_check(&n.m, NAN, in, in + n.m.param_count, &err),
           -1, "a NaN loss does not");

    free(out);
    free(before);
    net_free(&n);
}


/* Out of place gives the same numbers as in place. */
static void
test_out_of_place(void)
{
    static float   xs[4 * 2], ys[4];
    int64_t        shape[] = { 4, 2 };
    lt_model_spec  s;
    lt_tensor      x, y;
    lt_err         err;
    float          loss_a, loss_b, *a, *b, *c;
    size_t         bytes, total;
    net            n;
    int            i, step, rc;

    mlp_spec(&s, 2, 8, 1, LT_LAYER_TANH, -1, LT_LOSS_MSE, LT_OPTIM_ADAM,
             0.01f);
    if (net_new(&n, &s, 9) != 0) {
        fail("net builds");
        return;
    }

    for (i = 0; i < 8; i++) {
        xs[i] = urand();
    }
    for (i = 0; i < 4; i++) {
        ys[i] = urand();
    }
    lt_tensor_view(&x, xs, 2, shape);
    shape[1] = 1;
    lt_tensor_view(&y, ys, 2, shape);

    total = n.m.param_count + n.m.state_count;
    bytes = total * sizeof(float);
    a = malloc(bytes);
    b = malloc(bytes);
    memcpy(a, n.block, bytes);
    memcpy(b, n.block, bytes);

    rc = 0;
    for (step = 1; step <= 5; step++) {
        rc |= lt_model_train_step(&n.m, n.ws, a, a, a + n.m.param_count,
                                  step, &x, &y, &loss_a, &err);
        c = n.block;            /* b -> block, then swap, like the zone */
        rc |= lt_model_train_step_to(&n.m, n.ws, b, c, b + n.m.param_count,
                                     c + n.m.param_count, step, &x, &y,
                                     &loss_b, &err);
        n.block = b;
        b = c;
    }

    ok(rc == 0 && memcmp(a, b, bytes) == 0,
       "5 Adam steps out of place equal 5 in place, bit for bit");

    free(a);
    free(n.block);
    n.block = b;
    net_free(&n);
}


int
main(void)
{
    test_build_errors();
    test_size_limits();
    test_layout();
    test_init();
    test_shape_errors();
    test_ce_targets();
    test_workspace();
    test_extremes();
    test_step_errors();
    test_nonfinite_steps();
    test_out_of_place();
    test_xor();
    test_overfit_batch();

    return done_testing();
}
