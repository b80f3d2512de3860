/*
 * test_model_layers.c: what the layers change in a model as a whole:
 * shapes chained at build time (and the messages when they do not
 * chain), the state-dict entries with buffers after the parameters,
 * PyTorch's initialisation, input checks, train steps that move
 * BatchNorm's running statistics, checkpoints that carry them, and a
 * backend without a layer's ops refusing the model.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lt_backend.h"
#include "lt_checkpoint.h"
#include "lt_layer.h"
#include "lt_model.h"
#include "tap.h"


static lt_layer_spec *
add(lt_model_spec *s, lt_layer_kind kind, int in, int out)
{
    lt_layer_spec  *l;

    l = &s->layers[s->nlayers++];
    memset(l, 0, sizeof(*l));
    l->kind = kind;
    l->in = in;
    l->out = out;

    return l;
}


/* LeNet-5 as lua/models/lenet.lua has it */
static void
lenet(lt_model_spec *s)
{
    lt_layer_spec  *l;

    memset(s, 0, sizeof(*s));
    s->input.ndim = 3;
    s->input.d[0] = 1;
    s->input.d[1] = 28;
    s->input.d[2] = 28;
    l = add(s, LT_LAYER_CONV2D, 1, 6);
    l->kernel[0] = l->kernel[1] = 5;
    l->padding[0] = l->padding[1] = 2;
    add(s, LT_LAYER_RELU, 0, 0);
    l = add(s, LT_LAYER_MAXPOOL2D, 0, 0);
    l->kernel[0] = l->kernel[1] = 2;
    l = add(s, LT_LAYER_CONV2D, 6, 16);
    l->kernel[0] = l->kernel[1] = 5;
    add(s, LT_LAYER_RELU, 0, 0);
    l = add(s, LT_LAYER_MAXPOOL2D, 0, 0);
    l->kernel[0] = l->kernel[1] = 2;
    add(s, LT_LAYER_FLATTEN, 0, 0);
    add(s, LT_LAYER_LINEAR, 400, 120);
    add(s, LT_LAYER_RELU, 0, 0);
    add(s, LT_LAYER_LINEAR, 120, 84);
    add(s, LT_LAYER_RELU, 0, 0);
    add(s, LT_LAYER_LINEAR, 84, 10);
    s->loss = LT_LOSS_CE;
    s->optim.kind = LT_OPTIM_SGD;
    s->optim.lr = 0.05f;
}


static void
test_shapes(void)
{
    lt_model_spec  s;
    lt_model       m;
    lt_err         err;

    lenet(&s);
    ok(lt_model_build(&m, &s, &err) == 0, "LeNet-5 builds");
    is_int(m.in_dim, 784, "its input is [1, 28, 28]");
    is_int(m.widths[5], 400, "the second pool gives 16 x 5 x 5");
    is_int(m.out_dim, 10, "ten outputs");
    is_int(m.nparams, 10, "ten state-dict entries");
    is_str(m.params[2].name, "3.weight", "named by their index");
    is_int((int) m.params[2].ndim, 4, "a Conv2d weight has 4 dims");
    is_int((int) m.params[2].shape[1], 6, "[out, in / groups, kH, kW]");
    is_int((int) m.param_count, 61706, "61706 parameters, as PyTorch counts");
    is_int((int) m.buffer_count, 0, "and no buffers");

    s.layers[7].in = 256;
    ok(lt_model_build(&m, &s, &err) != 0, "a Linear(256, ...) after [400]");
    like(err.msg, "layer \"7\" (Linear) expects input [..., 256] but gets "
         "[400]", "names the layer and both shapes");

    lenet(&s);
    s.input.d[0] = 3;
    ok(lt_model_build(&m, &s, &err) != 0, "three channels into Conv2d(1, 6)");
    like(err.msg, "layer \"0\" (Conv2d) expects input [1, H, W] but gets "
         "[3, 28, 28]", "names the layer and both shapes");

    lenet(&s);
    s.input.ndim = 0;
    ok(lt_model_build(&m, &s, &err) != 0, "a Conv2d first needs the input "
       "shape");
    like(err.msg, "input = {...}", "and says how to give it");

    lenet(&s);
    s.input.d[1] = s.input.d[2] = 8;
    ok(lt_model_build(&m, &s, &err) != 0, "8 x 8 is too small for LeNet");
    like(err.msg, "smaller than the kernel", "the kernel does not fit");
}


static void
test_buffers_and_init(void)
{
    lt_model_spec         s;
    lt_model              m;
    lt_err                err;
    lt_layer_spec        *l;
    const lt_param_info  *w, *rm, *rv, *nb, *e;
    float                *block;
    double                sum, sq;
    size_t                i;
    float                 bound;

    memset(&s, 0, sizeof(s));
    add(&s, LT_LAYER_LINEAR, 4, 6);
    l = add(&s, LT_LAYER_BATCHNORM1D, 6, 0);
    l->a = 1e-5f;
    l->b = 0.1f;
    add(&s, LT_LAYER_RELU, 0, 0);
    add(&s, LT_LAYER_LINEAR, 6, 2);
    s.optim.kind = LT_OPTIM_ADAM;
    s.optim.lr = 0.01f;
    s.optim.beta1 = 0.9f;
    s.optim.beta2 = 0.999f;
    s.optim.eps = 1e-8f;

    ok(lt_model_build(&m, &s, &err) == 0, "Linear-BatchNorm1d-ReLU-Linear");
    is_int(m.nparams, 9, "4 + 5 state-dict entries");
    is_int((int) m.param_count, 30 + 12 + 14, "P: the trained floats");
    is_int((int) m.buffer_count, 6 + 6 + 2, "B: running stats and the "
           "count (two floats)");
    is_int((int) m.state_count, 2 * 56, "Adam's state covers P only");

    rm = lt_model_find_param(&m, "1.running_mean");
    rv = lt_model_find_param(&m, "1.running_var");
    nb = lt_model_find_param(&m, "1.num_batches_tracked");
    ok(rm && rv && nb && rm->buffer && nb->dtype == LT_DTYPE_I64,
       "PyTorch's buffer names");
    ok(rm && rm->offset >= m.param_count && nb
       && nb->offset + 2 <= lt_model_values(&m),
       "buffers lie after the parameters");
    is_int(nb ? nb->ndim : -1, 0, "num_batches_tracked is a scalar");

    block = calloc(lt_model_values(&m) + m.state_count, sizeof(float));
    lt_model_init_params(&m, block, 3);
    ok(block[lt_model_find_param(&m, "1.weight")->offset] == 1.0f
       && block[rv->offset] == 1.0f && block[rm->offset] == 0.0f
       && lt_i64_get(block + nb->offset) == 0,
       "BatchNorm starts as PyTorch's: weight 1, running_var 1, mean 0");
    free(block);

    /* Conv2d(3, 8, 3): weights and bias in +-1/sqrt(27) */
    memset(&s, 0, sizeof(s));
    s.input.ndim = 3;
    s.input.d[0] = 3;
    s.input.d[1] = s.input.d[2] = 6;
    l = add(&s, LT_LAYER_CONV2D, 3, 8);
    l->kernel[0] = l->kernel[1] = 3;
    add(&s, LT_LAYER_FLATTEN, 0, 0);
    add(&s, LT_LAYER_LINEAR, 128, 1);
    s.optim.lr = 0.1f;
    ok(lt_model_build(&m, &s, &err) == 0, "Conv2d(3, 8, 3) builds");

    block = calloc(lt_model_values(&m), sizeof(float));
    lt_model_init_params(&m, block, 5);
    w = &m.params[0];
    bound = 1.0f / sqrtf(27.0f);
    for (i = 0, sq = 0.0; i < w->numel + 8; i++) {
        sq = fabs(block[w->offset + i]) > sq ? fabs(block[w->offset + i])
                                             : sq;
    }
    ok(sq <= bound && sq > 0.9 * bound, "Conv2d's weight and bias in "
       "+-1/sqrt(fan_in), fan_in = in * kH * kW");
    free(block);

    /* Embedding: N(0, 1), padding_idx's row 0 */
    memset(&s, 0, sizeof(s));
    s.input.ndim = 1;
    s.input.d[0] = 4;
    l = add(&s, LT_LAYER_EMBEDDING, 500, 8);
    l->padding_idx = 3 + 1;
    add(&s, LT_LAYER_FLATTEN, 0, 0);
    add(&s, LT_LAYER_LINEAR, 32, 2);
    s.optim.lr = 0.1f;
    ok(lt_model_build(&m, &s, &err) == 0, "Embedding(500, 8) builds");

    block = calloc(lt_model_values(&m), sizeof(float));
    lt_model_init_params(&m, block, 9);
    e = &m.params[0];
    for (i = 0, sum = 0.0, sq = 0.0; i < e->numel; i++) {
        sum += block[e->offset + i];
        sq += (double) block[e->offset + i] * block[e->offset + i];
    }
    ok(fabs(sum / 4000) < 0.05 && fabs(sq / 4000 - 1.0) < 0.08,
       "Embedding's weight is N(0, 1)");
    diag("mean %.4f, variance %.4f", sum / 4000, sq / 4000);
    ok(block[e->offset + 3 * 8] == 0.0f && block[e->offset + 3 * 8 + 7]
       == 0.0f, "and padding_idx's row is 0");
    free(block);
}


static void
test_inputs(void)
{
    lt_model_spec  s;
    lt_model       m;
    lt_err         err;
    lt_tensor      x;
    lt_layer_spec *l;
    int64_t        shape[4];
    float          data[2 * 784];

    lenet(&s);
    lt_model_build(&m, &s, &err);
    memset(data, 0, sizeof(data));

    shape[0] = 2;
    shape[1] = 784;
    lt_tensor_view(&x, data, 2, shape);
    ok(lt_model_check_input(&m, &x, &err) != 0, "flat [2, 784] is refused");
    like(err.msg, "x has shape [2, 784], expected [N, 1, 28, 28]",
         "naming the expected shape");

    lt_tensor_view(&x, data, lt_model_input_shape(&m, 2, shape), shape);
    ok(lt_model_check_input(&m, &x, &err) == 0, "[2, 1, 28, 28] is taken");

    lt_tensor_view(&x, data, 3, shape + 1);
    ok(lt_model_check_input(&m, &x, &err) == 0, "so is one unbatched "
       "[1, 28, 28]");

    memset(&s, 0, sizeof(s));
    s.input.ndim = 1;
    s.input.d[0] = 3;
    l = add(&s, LT_LAYER_EMBEDDING, 10, 2);
    (void) l;
    add(&s, LT_LAYER_FLATTEN, 0, 0);
    add(&s, LT_LAYER_LINEAR, 6, 2);
    s.optim.lr = 0.1f;
    lt_model_build(&m, &s, &err);

    data[0] = 1; data[1] = 9; data[2] = 0;
    data[3] = 2; data[4] = 10; data[5] = 3;
    shape[0] = 2;
    shape[1] = 3;
    lt_tensor_view(&x, data, 2, shape);
    ok(lt_model_check_input(&m, &x, &err) != 0, "index 10 of Embedding(10)");
    like(err.msg, "x[1, 1] = 10 is not an index in [0, 10) of layer \"0\" "
         "(Embedding)", "names it and its position");

    data[4] = 2.5f;
    ok(lt_model_check_input(&m, &x, &err) != 0, "2.5 is not an index");
    data[4] = 4;
    ok(lt_model_check_input(&m, &x, &err) == 0, "whole numbers in range "
       "are");
}


/* A train step moves the running statistics; the checkpoint keeps them. */
static void
test_train_buffers(void)
{
    lt_model_spec         s;
    lt_model              m, m2;
    lt_err                err;
    lt_layer_spec        *l;
    lt_workspace         *ws;
    lt_tensor             x, y, out;
    lt_checkpoint_meta    meta;
    const lt_param_info  *rm, *nb;
    const uint8_t        *cp, *cs;
    uint8_t              *file;
    float                *a, *b, xs[24], ys[8], loss, before;
    int64_t               shape[2];
    size_t                n, len;
    int                   i;

    memset(&s, 0, sizeof(s));
    add(&s, LT_LAYER_LINEAR, 3, 4);
    l = add(&s, LT_LAYER_BATCHNORM1D, 4, 0);
    l->a = 1e-5f;
    l->b = 0.1f;
    add(&s, LT_LAYER_TANH, 0, 0);
    add(&s, LT_LAYER_LINEAR, 4, 1);
    s.optim.kind = LT_OPTIM_SGD;
    s.optim.lr = 0.1f;
    s.optim.momentum = 0.9f;
    lt_model_build(&m, &s, &err);

    n = lt_model_values(&m) + m.state_count;
    a = calloc(n, sizeof(float));
    b = calloc(n, sizeof(float));
    lt_model_init_params(&m, a, 1);
    ws = lt_workspace_new(&m, lt_backend_cpu(), 8, &err);

    for (i = 0; i < 24; i++) {
        xs[i] = (float) ((i * 7) % 11) / 5.0f - 1.0f;
    }
    for (i = 0; i < 8; i++) {
        ys[i] = (float) (i % 2);
    }
    shape[0] = 8;
    shape[1] = 3;
    lt_tensor_view(&x, xs, 2, shape);
    shape[1] = 1;
    lt_tensor_view(&y, ys, 2, shape);

    rm = lt_model_find_param(&m, "1.running_mean");
    nb = lt_model_find_param(&m, "1.num_batches_tracked");

    memcpy(b, a, n * sizeof(float));
    before = a[rm->offset];
    ok(lt_model_train_step_to(&m, ws, a, b, a + lt_model_values(&m),
                              b + lt_model_values(&m), 1, &x, &y, &loss,
                              &err) == 0, "a train step out of place");
    ok(a[rm->offset] == before && lt_i64_get(a + nb->offset) == 0,
       "leaves the input's running statistics as they were");
    ok(b[rm->offset] != before && lt_i64_get(b + nb->offset) == 1,
       "and moves the output's, counting the batch");

    for (i = 2; i <= 5; i++) {
        lt_model_train_step(&m, ws, b, b, b + lt_model_values(&m), i, &x, &y,
                            &loss, &err);
    }
    is_int(lt_i64_get(b + nb->offset), 5, "five batches tracked");
    ok(lt_model_step_check(&m, loss, b, b + lt_model_values(&m), &err) == 0,
       "the step check passes buffers and the int64 count");

    /* one sample predicts with the running statistics (eval mode) */
    shape[0] = 1;
    shape[1] = 3;
    lt_tensor_view(&x, xs, 2, shape);
    ok(lt_model_forward(&m, ws, b, &x, &out, &err) == 0,
       "a batch of one predicts (running statistics)");
    shape[1] = 1;
    lt_tensor_view(&y, ys, 2, shape);
    ok(lt_model_train_step(&m, ws, b, b, b + lt_model_values(&m), 6, &x,
                           &y, &loss, &err) != 0, "but does not train");
    like(err.msg, "more than one value per channel", "as in PyTorch");

    /* the checkpoint holds the buffers */
    memset(&meta, 0, sizeof(meta));
    meta.step = 5;
    meta.optim_step = 5;
    file = malloc(lt_checkpoint_size(&m, "bn"));
    ok(lt_checkpoint_encode_into(&m, "bn", &meta, b, b + lt_model_values(&m),
                                 file, lt_checkpoint_size(&m, "bn"), &len,
                                 &err) == 0, "a checkpoint is written");
    lt_model_build(&m2, &s, &err);
    ok(lt_checkpoint_decode(&m2, file, len, &meta, &cp, &cs, &err) == 0,
       "and read back");
    ok(memcmp(cp, b, lt_model_values(&m) * sizeof(float)) == 0,
       "with the running statistics and the count");

    free(file);
    lt_workspace_free(ws);
    free(a);
    free(b);
}


/* A backend without some ops (the CUDA backend before it had them). */
static void
test_backend_refusal(void)
{
    lt_model_spec  s;
    lt_model       m;
    lt_err         err;
    lt_backend     be;
    lt_layer_spec *l;
    lt_workspace  *ws;

    be = *lt_backend_cpu();
    be.name = "partial";
    be.im2col = NULL;

    lenet(&s);
    lt_model_build(&m, &s, &err);
    ok(lt_workspace_new(&m, &be, 1, &err) == NULL, "a backend without "
       "im2col gets no LeNet workspace");
    like(err.msg, "layer \"0\" (Conv2d) is not implemented on the partial "
         "backend", "the message names the layer");
    is_int(lt_model_device_layer(&m), -1, "LeNet runs on CUDA (its backend "
           "has every layer op)");

    memset(&s, 0, sizeof(s));
    add(&s, LT_LAYER_LINEAR, 2, 3);
    add(&s, LT_LAYER_FLATTEN, 0, 0);
    l = add(&s, LT_LAYER_LINEAR, 3, 1);
    l->no_bias = 1;
    s.optim.lr = 0.1f;
    lt_model_build(&m, &s, &err);
    is_int(lt_model_device_layer(&m), -1, "Linear(bias = false) and Flatten "
           "run on CUDA");
    ws = lt_workspace_new(&m, &be, 1, &err);
    ok(ws != NULL, "and on the partial backend");
    lt_workspace_free(ws);

    /* the loss and the optimizer are asked for too */
    be.loss_nll = NULL;
    s.loss = LT_LOSS_NLL;
    lt_model_build(&m, &s, &err);
    ok(lt_workspace_new(&m, &be, 1, &err) == NULL, "a backend without "
       "loss_nll gets no NLLLoss workspace");
    like(err.msg, "NLLLoss is not implemented on the partial backend",
         "the message names the loss");
}


/* An MLP keeps the layout hash it had before layers had shapes. */
static void
test_mlp_hash(void)
{
    lt_model_spec  s;
    lt_model       m;
    lt_err         err;

    memset(&s, 0, sizeof(s));
    add(&s, LT_LAYER_LINEAR, 2, 8);
    add(&s, LT_LAYER_TANH, 0, 0);
    add(&s, LT_LAYER_LINEAR, 8, 1);
    s.optim.kind = LT_OPTIM_SGD;
    s.optim.lr = 0.5f;
    lt_model_build(&m, &s, &err);

    /* the value the code before issue 17 gave (zone names, checkpoints) */
    ok(m.hash == 0x97f5a40527ca6b07ULL, "an MLP's hash is what it was");
    diag("2-8-1 Tanh SGD hash %016llx", (unsigned long long) m.hash);
}


/* The largest |a - b| over the largest |b|. */
static double
rel_diff(const float *a, const float *b, size_t n)
{
    double  d, top;
    size_t  i;

    d = 0.0;
    top = 1e-30;
    for (i = 0; i < n; i++) {
        if (fabs((double) a[i] - b[i]) > d) {
            d = fabs((double) a[i] - b[i]);
        }
        if (fabs((double) b[i]) > top) {
            top = fabs((double) b[i]);
        }
    }

    return d / top;
}


/*
 * The CPU backend's forward pass by patch rows (im2row, for convolutions
 * with 16 or more numbers per kernel row and 16 or more outputs) against
 * the same backend without im2row (im2col), on strides, padding, a
 * dilation in height, a rectangular kernel and Conv1d.
 */
static void
test_conv_rows(void)
{
    lt_model_spec   s;
    lt_layer_spec  *l;
    lt_backend      cols;
    lt_model        m;
    lt_workspace   *ws[2];
    lt_tensor       x, out;
    lt_window       g;
    lt_err          err;
    int64_t         shape[LT_MAX_DIMS];
    float          *params, *xs, *ys[2];
    size_t          nx, ny, i;
    int             k, n;

    n = 5;
    memset(&s, 0, sizeof(s));
    s.input.ndim = 3;
    s.input.d[0] = 8;
    s.input.d[1] = 11;
    s.input.d[2] = 9;
    l = add(&s, LT_LAYER_CONV2D, 8, 16);
    l->kernel[0] = l->kernel[1] = 3;
    l->stride[0] = l->stride[1] = 2;
    l->padding[0] = 1;
    l->padding[1] = 2;
    add(&s, LT_LAYER_TANH, 0, 0);
    l = add(&s, LT_LAYER_CONV2D, 16, 24);
    l->kernel[0] = 2;
    l->kernel[1] = 3;
    l->dilation[0] = 2;
    l->padding[1] = 1;
    add(&s, LT_LAYER_FLATTEN, 0, 0);
    s.loss = LT_LOSS_MSE;
    s.optim.kind = LT_OPTIM_SGD;
    s.optim.lr = 0.01f;

    ok(lt_model_build(&m, &s, &err) == 0, "a net of two rows-sized "
       "convolutions builds");
    for (k = 0; k < 2; k++) {
        lt_layer_window(&m.spec.layers[2 * k], &m.layer[2 * k], &g);
        ok(lt_layer_conv_by_rows(&m.spec.layers[2 * k], &g,
                                 lt_backend_cpu()),
           k ? "the second goes by rows" : "the first goes by rows");
    }

    cols = *lt_backend_cpu();
    cols.im2row = NULL;
    ws[0] = lt_workspace_new(&m, lt_backend_cpu(), n, &err);
    ws[1] = lt_workspace_new(&m, &cols, n, &err);
    nx = (size_t) n * m.in_dim;
    ny = (size_t) n * m.out_dim;
    params = malloc(lt_model_values(&m) * sizeof(float));
    xs = malloc(nx * sizeof(float));
    lt_model_init_params(&m, params, 3);
    for (i = 0; i < nx; i++) {
        xs[i] = (float) ((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    }
    lt_tensor_view(&x, xs, lt_model_input_shape(&m, n, shape), shape);

    for (k = 0; k < 2; k++) {
        ys[k] = malloc(ny * sizeof(float));
        ok(lt_model_forward(&m, ws[k], params, &x, &out, &err) == 0,
           k ? "forward by columns" : "forward by rows");
        memcpy(ys[k], out.data, ny * sizeof(float));
    }
    ok(rel_diff(ys[0], ys[1], ny) < 1e-5, "rows give the columns' outputs");

    /* and Conv1d: a height of 1 */
    memset(&s, 0, sizeof(s));
    s.input.ndim = 2;
    s.input.d[0] = 6;
    s.input.d[1] = 20;
    /* a 1-d layer keeps its window in [1] over a height of 1 */
    l = add(&s, LT_LAYER_CONV1D, 6, 16);
    l->kernel[0] = 1;
    l->kernel[1] = 4;
    l->stride[0] = 1;
    l->stride[1] = 3;
    l->padding[1] = 2;
    add(&s, LT_LAYER_FLATTEN, 0, 0);
    s.loss = LT_LOSS_MSE;
    s.optim.kind = LT_OPTIM_SGD;
    s.optim.lr = 0.01f;

    for (k = 0; k < 2; k++) {
        lt_workspace_free(ws[k]);
        free(ys[k]);
    }
    free(params);
    free(xs);

    ok(lt_model_build(&m, &s, &err) == 0, "a Conv1d builds");
    lt_layer_window(&m.spec.layers[0], &m.layer[0], &g);
    ok(lt_layer_conv_by_rows(&m.spec.layers[0], &g, lt_backend_cpu()),
       "Conv1d(6, 16, 4) goes by rows");
    ws[0] = lt_workspace_new(&m, lt_backend_cpu(), n, &err);
    ws[1] = lt_workspace_new(&m, &cols, n, &err);
    nx = (size_t) n * m.in_dim;
    ny = (size_t) n * m.out_dim;
    params = malloc(lt_model_values(&m) * sizeof(float));
    xs = malloc(nx * sizeof(float));
    lt_model_init_params(&m, params, 4);
    for (i = 0; i < nx; i++) {
        xs[i] = (float) ((i * 40503u) % 777) / 388.0f - 1.0f;
    }
    lt_tensor_view(&x, xs, lt_model_input_shape(&m, n, shape), shape);

    for (k = 0; k < 2; k++) {
        ys[k] = malloc(ny * sizeof(float));
        ok(lt_model_forward(&m, ws[k], params, &x, &out, &err) == 0,
           k ? "Conv1d forward by columns" : "Conv1d forward by rows");
        memcpy(ys[k], out.data, ny * sizeof(float));
    }
    ok(rel_diff(ys[0], ys[1], ny) < 1e-5,
       "Conv1d: rows give the columns' outputs");

    for (k = 0; k < 2; k++) {
        lt_workspace_free(ws[k]);
        free(ys[k]);
    }
    free(params);
    free(xs);
}


int
main(void)
{
    test_shapes();
    test_buffers_and_init();
    test_inputs();
    test_train_buffers();
    test_backend_refusal();
    test_conv_rows();
    test_mlp_hash();

    return done_testing();
}
