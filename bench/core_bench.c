/*
 * core_bench.c: time full train steps of the C core (forward, loss,
 * backward, optimizer update), single-threaded.
 *
 *   (a) the WebTorch XOR net: 2-20-1, Tanh, MSE, SGD lr 0.01, batch 1
 *   (b) an MNIST-sized MLP: 784-256-10, ReLU, cross-entropy, SGD lr 0.01,
 *       at batch 1, 64 and 1024
 *   (c) LeNet-5 as lua/models/lenet.lua has it (two 5x5 convolutions, max
 *       pools, three Linear), cross-entropy, SGD lr 0.01, batch 1 and 64
 *   (d) a Conv2d-heavy forward pass: Conv2d(3, 32, 3, padding=1), ReLU,
 *       Conv2d(32, 32, 3, padding=1), ReLU on [N, 3, 32, 32], batch 1, 64
 *
 * bench/core_bench_torch.py times the same steps and passes in PyTorch.
 * Each figure is the best of several repeats of many steps, so it is the
 * machine's speed rather than its noise.  Output lines are
 * "name batch value unit", read by bench/core_bench.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "lt_model.h"

#define REPEATS      7
#define REPEAT_SECS  0.2


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}


typedef struct {
    lt_model       m;
    lt_workspace  *ws;
    float         *block;       /* parameters then optimizer state */
    float         *xs, *ys;
    lt_tensor      x, y;
    int64_t        step;
} bench;


static int
bench_init(bench *b, const lt_model_spec *spec, int batch, int classes)
{
    int64_t  shape[LT_MAX_DIMS];
    lt_err   err;
    int      i, n, ndim;

    if (lt_model_build(&b->m, spec, &err) != 0) {
        fprintf(stderr, "build: %s\n", err.msg);
        return -1;
    }

    b->ws = lt_workspace_new(&b->m, lt_backend_cpu(), batch, &err);
    b->block = malloc((lt_model_values(&b->m) + b->m.state_count + 1)
                      * sizeof(float));
    n = batch * b->m.in_dim;
    b->xs = malloc((size_t) n * sizeof(float));
    b->ys = malloc((size_t) batch * b->m.out_dim * sizeof(float));
    if (b->ws == NULL || b->block == NULL || b->xs == NULL || b->ys == NULL)
    {
        fprintf(stderr, "out of memory\n");
        return -1;
    }

    lt_model_init_params(&b->m, b->block, 1);

    srand(1);
    for (i = 0; i < n; i++) {
        b->xs[i] = (float) rand() / (float) RAND_MAX;
    }

    ndim = lt_model_input_shape(&b->m, batch, shape);
    lt_tensor_view(&b->x, b->xs, ndim, shape);

    /* class indices for CE, regression targets otherwise */
    for (i = 0; i < batch * (classes ? 1 : b->m.out_dim); i++) {
        b->ys[i] = classes ? (float) (rand() % classes)
                           : (float) rand() / (float) RAND_MAX;
    }

    shape[0] = batch;
    shape[1] = b->m.out_dim;
    lt_tensor_view(&b->y, b->ys, classes ? 1 : 2, shape);

    b->step = 0;
    return 0;
}


static void
bench_free(bench *b)
{
    lt_workspace_free(b->ws);
    free(b->block);
    free(b->xs);
    free(b->ys);
}


static int
bench_steps(bench *b, long iters)
{
    float   loss;
    lt_err  err;
    long    i;

    for (i = 0; i < iters; i++) {
        b->step++;
        if (lt_model_train_step(&b->m, b->ws, b->block, b->block,
                                b->block + lt_model_values(&b->m), b->step,
                                &b->x, &b->y, &loss, &err) != 0)
        {
            fprintf(stderr, "train step: %s\n", err.msg);
            return -1;
        }
    }

    return 0;
}


static int
bench_forwards(bench *b, long iters)
{
    lt_tensor  out;
    lt_err     err;
    long       i;

    for (i = 0; i < iters; i++) {
        if (lt_model_forward(&b->m, b->ws, b->block, &b->x, &out, &err) != 0)
        {
            fprintf(stderr, "forward: %s\n", err.msg);
            return -1;
        }
    }

    return 0;
}


/* Seconds per step (or per forward pass): best of REPEATS runs of
 * ~REPEAT_SECS each. */
static double
bench_time(bench *b, int (*run)(bench *b, long iters))
{
    double  t, best;
    long    iters;
    int     r;

    /* warm up and size the runs */
    iters = 1;
    for ( ;; ) {
        t = now();
        if (run(b, iters) != 0) {
            return -1.0;
        }
        t = now() - t;
        if (t > REPEAT_SECS / 10) {
            break;
        }
        iters *= 2;
    }

    iters = (long) (iters * (REPEAT_SECS / t)) + 1;
    best = 1e30;

    for (r = 0; r < REPEATS; r++) {
        t = now();
        if (run(b, iters) != 0) {
            return -1.0;
        }
        t = (now() - t) / (double) iters;
        if (t < best) {
            best = t;
        }
    }

    return best;
}


static void
spec_linear(lt_model_spec *s, int i, int in, int out)
{
    s->layers[i].kind = LT_LAYER_LINEAR;
    s->layers[i].in = in;
    s->layers[i].out = out;
}


static int
bench_xor(void)
{
    lt_model_spec  s;
    bench          b;
    double         t;

    memset(&s, 0, sizeof(s));
    s.nlayers = 4;
    spec_linear(&s, 0, 2, 20);
    s.layers[1].kind = LT_LAYER_TANH;
    spec_linear(&s, 2, 20, 1);
    s.layers[3].kind = LT_LAYER_TANH;
    s.loss = LT_LOSS_MSE;
    s.optim.kind = LT_OPTIM_SGD;
    s.optim.lr = 0.01f;

    if (bench_init(&b, &s, 1, 0) != 0) {
        return -1;
    }

    t = bench_time(&b, bench_steps);
    bench_free(&b);
    if (t < 0) {
        return -1;
    }

    printf("xor_2_20_1_sgd 1 %.1f ns\n", t * 1e9);
    return 0;
}


/*
 * A ReLU MLP of the given widths (cross-entropy, SGD lr 0.01), timed by
 * run (train steps or forward passes) at one batch size.
 */
static int
bench_relu_mlp(const char *name, const int *width, int nwidths, int batch,
    int (*run)(bench *b, long iters))
{
    lt_model_spec  s;
    bench          b;
    double         t;
    int            i;

    memset(&s, 0, sizeof(s));
    for (i = 0; i + 1 < nwidths; i++) {
        if (i > 0) {
            s.layers[s.nlayers++].kind = LT_LAYER_RELU;
        }
        spec_linear(&s, s.nlayers++, width[i], width[i + 1]);
    }
    s.loss = LT_LOSS_CE;
    s.optim.kind = LT_OPTIM_SGD;
    s.optim.lr = 0.01f;

    if (bench_init(&b, &s, batch, width[nwidths - 1]) != 0) {
        return -1;
    }

    t = bench_time(&b, run);
    bench_free(&b);
    if (t < 0) {
        return -1;
    }

    printf("%s %d %.4f ms\n", name, batch, t * 1e3);
    return 0;
}


static int
bench_mlp(int batch)
{
    static const int  width[] = { 784, 256, 10 };

    return bench_relu_mlp("mlp_784_256_10_sgd", width, 3, batch, bench_steps);
}


static lt_layer_spec *
spec_add(lt_model_spec *s, lt_layer_kind kind, int in, int out)
{
    lt_layer_spec  *l;

    l = &s->layers[s->nlayers++];
    l->kind = kind;
    l->in = in;
    l->out = out;

    return l;
}


static lt_layer_spec *
spec_conv(lt_model_spec *s, int in, int out, int kernel, int padding)
{
    lt_layer_spec  *l;

    l = spec_add(s, LT_LAYER_CONV2D, in, out);
    l->kernel[0] = l->kernel[1] = kernel;
    l->padding[0] = l->padding[1] = padding;

    return l;
}


static void
spec_maxpool(lt_model_spec *s, int kernel)
{
    lt_layer_spec  *l;

    l = spec_add(s, LT_LAYER_MAXPOOL2D, 0, 0);
    l->kernel[0] = l->kernel[1] = kernel;
}


static int
bench_lenet(int batch)
{
    lt_model_spec  s;
    bench          b;
    double         t;

    memset(&s, 0, sizeof(s));
    s.input.ndim = 3;
    s.input.d[0] = 1;
    s.input.d[1] = 28;
    s.input.d[2] = 28;
    spec_conv(&s, 1, 6, 5, 2);
    spec_add(&s, LT_LAYER_RELU, 0, 0);
    spec_maxpool(&s, 2);
    spec_conv(&s, 6, 16, 5, 0);
    spec_add(&s, LT_LAYER_RELU, 0, 0);
    spec_maxpool(&s, 2);
    spec_add(&s, LT_LAYER_FLATTEN, 0, 0);
    spec_add(&s, LT_LAYER_LINEAR, 400, 120);
    spec_add(&s, LT_LAYER_RELU, 0, 0);
    spec_add(&s, LT_LAYER_LINEAR, 120, 84);
    spec_add(&s, LT_LAYER_RELU, 0, 0);
    spec_add(&s, LT_LAYER_LINEAR, 84, 10);
    s.loss = LT_LOSS_CE;
    s.optim.kind = LT_OPTIM_SGD;
    s.optim.lr = 0.01f;

    if (bench_init(&b, &s, batch, 10) != 0) {
        return -1;
    }

    t = bench_time(&b, bench_steps);
    bench_free(&b);
    if (t < 0) {
        return -1;
    }

    printf("lenet5_sgd %d %.4f ms\n", batch, t * 1e3);
    return 0;
}


static int
bench_conv_forward(int batch)
{
    lt_model_spec  s;
    bench          b;
    double         t;

    memset(&s, 0, sizeof(s));
    s.input.ndim = 3;
    s.input.d[0] = 3;
    s.input.d[1] = 32;
    s.input.d[2] = 32;
    spec_conv(&s, 3, 32, 3, 1);
    spec_add(&s, LT_LAYER_RELU, 0, 0);
    spec_conv(&s, 32, 32, 3, 1);
    spec_add(&s, LT_LAYER_RELU, 0, 0);
    s.loss = LT_LOSS_MSE;
    s.optim.kind = LT_OPTIM_SGD;
    s.optim.lr = 0.01f;

    if (bench_init(&b, &s, batch, 0) != 0) {
        return -1;
    }

    t = bench_time(&b, bench_forwards);
    bench_free(&b);
    if (t < 0) {
        return -1;
    }

    printf("conv_3_32_32_forward %d %.4f ms\n", batch, t * 1e3);
    return 0;
}


/*
 * The 784-1024-1024-10 forward pass that learn_batch serves in
 * bench/batch_bench.sh: at batch 1, at a light load's 4 rows and at the
 * 24 rows a batch holds under wrk -c64, what batching gains the core's
 * own math.
 */
static int
bench_big_forward(int batch)
{
    static const int  width[] = { 784, 1024, 1024, 10 };

    return bench_relu_mlp("mlp_784_1024_1024_forward", width, 4, batch,
                          bench_forwards);
}


/* With an argument, only the cases whose name starts with it (for perf). */
static int
want(int argc, char **argv, const char *name)
{
    return argc < 2 || strncmp(name, argv[1], strlen(argv[1])) == 0;
}


int
main(int argc, char **argv)
{
    static const int  batches[] = { 1, 64, 1024 };
    static const int  conv_batches[] = { 1, 64 };
    static const int  big_batches[] = { 1, 4, 24 };
    size_t            i;

    openblas_set_num_threads(1);

    if (want(argc, argv, "xor") && bench_xor() != 0) {
        return 1;
    }

    for (i = 0; want(argc, argv, "mlp") && i < sizeof(batches)
                                              / sizeof(batches[0]); i++)
    {
        if (bench_mlp(batches[i]) != 0) {
            return 1;
        }
        fflush(stdout);
    }

    for (i = 0; want(argc, argv, "lenet") && i < sizeof(conv_batches)
                                                / sizeof(conv_batches[0]); i++)
    {
        if (bench_lenet(conv_batches[i]) != 0) {
            return 1;
        }
        fflush(stdout);
    }

    for (i = 0; want(argc, argv, "conv") && i < sizeof(conv_batches)
                                               / sizeof(conv_batches[0]); i++)
    {
        if (bench_conv_forward(conv_batches[i]) != 0) {
            return 1;
        }
        fflush(stdout);
    }

    for (i = 0; want(argc, argv, "mlp_784_1024") && i < sizeof(big_batches)
                                                 / sizeof(big_batches[0]); i++)
    {
        if (bench_big_forward(big_batches[i]) != 0) {
            return 1;
        }
        fflush(stdout);
    }

    return 0;
}
