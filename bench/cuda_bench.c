/*
 * cuda_bench.c: the CUDA backend's forward pass and train step on an
 * MNIST-sized MLP, beside raw cuBLAS SGEMM on the same shapes.
 *
 *   model: 784-1024-ReLU-1024-ReLU-10, cross-entropy, plain SGD (the
 *   update fused into the weight-gradient products), batch 256/1024/4096
 *
 * For each batch and each math mode (FP32, and TF32 tensor cores):
 *   model forward   lt_model_forward: x copied in, 3 products, bias, ReLU,
 *                   the output copied back (what a predict costs)
 *   raw forward     the same 3 products, cublasSgemm alone
 *   model train     lt_model_train_step: x, y in, forward, loss (one float
 *                   back), backward, update
 *   raw train       the step's 8 products (3 forward, 2 input gradients,
 *                   3 weight gradients), cublasSgemm alone
 *
 * TFLOP/s counts 2 flops per multiply-add of the products only, so the
 * model's figure against the raw one is the share of time the products
 * get.  Without a GPU it prints "no CUDA device" and exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime_api.h>
#include <cublas_v2.h>

#include "lt_model.h"
#include "lt_rand.h"
#include "lt_backend_cuda.h"

#define IN        784
#define HIDDEN    1024
#define CLASSES   10
#define MIN_SECS  0.3
#define WARMUP    3

static const int  batches[] = { 256, 1024, 4096 };


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}


static float
urand(uint64_t *s)
{
    return lt_rand_unit(s) * 2.0f - 1.0f;
}


/* Multiply-adds of the products: forward, and a whole train step (no
 * input gradient for the first Linear). */
static double
macs_forward(int b)
{
    return (double) b * (IN * HIDDEN + HIDDEN * HIDDEN + HIDDEN * CLASSES);
}


static double
macs_train(int b)
{
    return 2.0 * macs_forward(b)
           + (double) b * (HIDDEN * HIDDEN + HIDDEN * CLASSES);
}


/* -- the backend ----------------------------------------------------------- */

typedef struct {
    lt_model       m;
    lt_workspace  *ws;
    float         *params;      /* device */
    float         *xs, *ys;     /* host */
    lt_tensor      x, y;
    int64_t        step;
} model_bench;


static int
model_init(model_bench *mb, const lt_backend *be, int batch)
{
    lt_model_spec  s;
    int64_t        xshape[2], yshape[1];
    uint64_t       seed;
    float         *host;
    size_t         total;
    lt_err         err;
    int            i;

    memset(&s, 0, sizeof(s));
    memset(mb, 0, sizeof(*mb));
    s.nlayers = 5;
    s.layers[0].kind = LT_LAYER_LINEAR;
    s.layers[0].in = IN;
    s.layers[0].out = HIDDEN;
    s.layers[1].kind = LT_LAYER_RELU;
    s.layers[2].kind = LT_LAYER_LINEAR;
    s.layers[2].in = HIDDEN;
    s.layers[2].out = HIDDEN;
    s.layers[3].kind = LT_LAYER_RELU;
    s.layers[4].kind = LT_LAYER_LINEAR;
    s.layers[4].in = HIDDEN;
    s.layers[4].out = CLASSES;
    s.loss = LT_LOSS_CE;
    s.optim.kind = LT_OPTIM_SGD;
    s.optim.lr = 0.01f;

    if (lt_model_build(&mb->m, &s, &err) != 0) {
        fprintf(stderr, "model: %s\n", err.msg);
        return -1;
    }

    mb->ws = lt_workspace_new(&mb->m, be, batch, &err);
    if (mb->ws == NULL) {
        fprintf(stderr, "workspace: %s\n", err.msg);
        return -1;
    }

    total = mb->m.param_count + mb->m.state_count;
    host = malloc(total * sizeof(float));
    mb->params = be->alloc(be, total * sizeof(float));
    if (host == NULL || mb->params == NULL) {
        fprintf(stderr, "out of memory for the parameters\n");
        free(host);
        return -1;
    }
    lt_model_init_params(&mb->m, host, 1);
    be->to_device(be, mb->params, host, total * sizeof(float));
    free(host);

    seed = 7;
    mb->xs = malloc((size_t) batch * IN * sizeof(float));
    mb->ys = malloc((size_t) batch * sizeof(float));
    for (i = 0; i < batch * IN; i++) {
        mb->xs[i] = urand(&seed);
    }
    for (i = 0; i < batch; i++) {
        mb->ys[i] = (float) (i % CLASSES);
    }

    xshape[0] = batch;
    xshape[1] = IN;
    yshape[0] = batch;
    lt_tensor_view(&mb->x, mb->xs, 2, xshape);
    lt_tensor_view(&mb->y, mb->ys, 1, yshape);
    mb->step = 1;

    return 0;
}


static void
model_free(model_bench *mb, const lt_backend *be)
{
    lt_workspace_free(mb->ws);
    if (mb->params != NULL) {
        be->free(be, mb->params);
    }
    free(mb->xs);
    free(mb->ys);
}


/* One forward (train == 0) or train step; 0 or -1. */
static int
model_call(model_bench *mb, int train, lt_err *err)
{
    lt_tensor  out;
    float      loss;

    if (train) {
        return lt_model_train_step(&mb->m, mb->ws, mb->params, mb->params,
                                   mb->params + mb->m.param_count,
                                   mb->step++, &mb->x, &mb->y, &loss, err);
    }

    return lt_model_forward(&mb->m, mb->ws, mb->params, &mb->x, &out, err);
}


/* Seconds per call, over at least MIN_SECS, after WARMUP calls; the time
 * includes waiting for the last call's work. */
static double
model_time(model_bench *mb, const lt_backend *be, int train)
{
    lt_err  err;
    double  t0, t;
    long    i, n, done;
    int     rc;

    rc = 0;
    for (i = 0; i < WARMUP; i++) {
        rc |= model_call(mb, train, &err);
    }
    rc |= lt_backend_cuda_status(be, &err);

    n = 1;
    done = 0;
    t0 = now();

    while (rc == 0) {
        for (i = 0; i < n; i++) {
            rc |= model_call(mb, train, &err);
        }
        done += n;
        rc |= lt_backend_cuda_status(be, &err);

        t = now();
        if (rc == 0 && t - t0 >= MIN_SECS) {
            return (t - t0) / (double) done;
        }
        n *= 2;
    }

    fprintf(stderr, "%s: %s\n", train ? "train" : "forward", err.msg);
    return -1.0;
}


/* -- raw cuBLAS ------------------------------------------------------------ */

typedef struct {
    cublasHandle_t  h;
    float          *x, *w1, *h1, *w2, *h2, *w3, *o;    /* forward */
    float          *d3, *d2, *g1, *g2, *g3;            /* backward */
} raw_bench;


/* Row-major C[m, n] = op(A) op(B) (+ beta C) as lt_backend_cuda does. */
static void
raw_gemm(raw_bench *r, int ta, int tb, int m, int n, int k, const float *a,
    int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    float  alpha;

    alpha = 1.0f;
    cublasSgemm(r->h, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb,
                a, lda, &beta, c, ldc);
}


static float *
raw_buf(size_t n)
{
    void  *p;

    if (cudaMalloc(&p, n * sizeof(float)) != cudaSuccess) {
        return NULL;
    }
    cudaMemset(p, 0, n * sizeof(float));

    return p;
}


static int
raw_init(raw_bench *r, int batch, int tf32)
{
    size_t  b;

    b = (size_t) batch;
    memset(r, 0, sizeof(*r));

    if (cublasCreate(&r->h) != CUBLAS_STATUS_SUCCESS) {
        return -1;
    }
    cublasSetMathMode(r->h, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                 : CUBLAS_DEFAULT_MATH);

    r->x = raw_buf(b * IN);
    r->w1 = raw_buf((size_t) HIDDEN * IN);
    r->h1 = raw_buf(b * HIDDEN);
    r->w2 = raw_buf((size_t) HIDDEN * HIDDEN);
    r->h2 = raw_buf(b * HIDDEN);
    r->w3 = raw_buf((size_t) CLASSES * HIDDEN);
    r->o = raw_buf(b * CLASSES);
    r->d3 = raw_buf(b * HIDDEN);
    r->d2 = raw_buf(b * HIDDEN);
    r->g1 = raw_buf((size_t) HIDDEN * IN);
    r->g2 = raw_buf((size_t) HIDDEN * HIDDEN);
    r->g3 = raw_buf((size_t) CLASSES * HIDDEN);

    return r->x && r->w1 && r->h1 && r->w2 && r->h2 && r->w3 && r->o
           && r->d3 && r->d2 && r->g1 && r->g2 && r->g3 ? 0 : -1;
}


static void
raw_free(raw_bench *r)
{
    float  **p[] = { &r->x, &r->w1, &r->h1, &r->w2, &r->h2, &r->w3, &r->o,
                     &r->d3, &r->d2, &r->g1, &r->g2, &r->g3 };
    size_t   i;

    for (i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
        if (*p[i] != NULL) {
            cudaFree(*p[i]);
        }
    }

    if (r->h != NULL) {
        cublasDestroy(r->h);
    }
}


/* The products of lt_train.c, in its order and shapes. */
static void
raw_step(raw_bench *r, int b, int train)
{
    raw_gemm(r, 0, 1, b, HIDDEN, IN, r->x, IN, r->w1, IN, 0.0f, r->h1,
             HIDDEN);
    raw_gemm(r, 0, 1, b, HIDDEN, HIDDEN, r->h1, HIDDEN, r->w2, HIDDEN, 0.0f,
             r->h2, HIDDEN);
    raw_gemm(r, 0, 1, b, CLASSES, HIDDEN, r->h2, HIDDEN, r->w3, HIDDEN, 0.0f,
             r->o, CLASSES);

    if (!train) {
        return;
    }

    /* layer 3: dX = dO W3, dW3 = dO^T H2 (o stands in for dO) */
    raw_gemm(r, 0, 0, b, HIDDEN, CLASSES, r->o, CLASSES, r->w3, HIDDEN, 0.0f,
             r->d3, HIDDEN);
    raw_gemm(r, 1, 0, CLASSES, HIDDEN, b, r->o, CLASSES, r->h2, HIDDEN,
             1.0f, r->g3, HIDDEN);
    /* layer 2 */
    raw_gemm(r, 0, 0, b, HIDDEN, HIDDEN, r->d3, HIDDEN, r->w2, HIDDEN, 0.0f,
             r->d2, HIDDEN);
    raw_gemm(r, 1, 0, HIDDEN, HIDDEN, b, r->d3, HIDDEN, r->h1, HIDDEN, 1.0f,
             r->g2, HIDDEN);
    /* layer 1: weight gradient only */
    raw_gemm(r, 1, 0, HIDDEN, IN, b, r->d2, HIDDEN, r->x, IN, 1.0f, r->g1,
             IN);
}


static double
raw_time(raw_bench *r, int b, int train)
{
    double  t0, t;
    long    i, n, done;

    for (i = 0; i < WARMUP; i++) {
        raw_step(r, b, train);
    }
    if (cudaDeviceSynchronize() != cudaSuccess) {
        return -1.0;
    }

    n = 1;
    done = 0;
    t0 = now();

    for (;;) {
        for (i = 0; i < n; i++) {
            raw_step(r, b, train);
        }
        done += n;

        if (cudaDeviceSynchronize() != cudaSuccess) {
            return -1.0;
        }

        t = now();
        if (t - t0 >= MIN_SECS) {
            return (t - t0) / (double) done;
        }
        n *= 2;
    }
}


/* -- report ---------------------------------------------------------------- */

static void
row(int batch, const char *what, double macs, const double secs[2])
{
    printf("%6d  %-22s %9.2f %9.2f %10.3f %10.3f\n", batch, what,
           secs[0] > 0 ? 2.0 * macs / secs[0] * 1e-12 : 0.0,
           secs[1] > 0 ? 2.0 * macs / secs[1] * 1e-12 : 0.0,
           secs[0] * 1e3, secs[1] * 1e3);
}


int
main(void)
{
    const lt_backend       *be[2];
    struct cudaDeviceProp   prop;
    model_bench             mb;
    raw_bench               rb;
    double                  mf[2], mt[2], rf[2], rt[2];
    lt_err                  err;
    size_t                  bi;
    int                     mode, b;

    if (lt_backend_cuda_device_count() == 0) {
        printf("no CUDA device\n");
        return 0;
    }

    be[0] = lt_backend_cuda_open(0, 0, &err);
    be[1] = be[0] != NULL ? lt_backend_cuda_open(0, 1, &err) : NULL;
    if (be[0] == NULL || be[1] == NULL) {
        printf("no CUDA device (%s)\n", err.msg);
        lt_backend_cuda_close(be[0]);
        return 0;
    }

    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
        printf("device 0: %s, compute capability %d.%d\n", prop.name,
               prop.major, prop.minor);
    }
    printf("MLP %d-%d-ReLU-%d-ReLU-%d, cross-entropy, SGD; TFLOP/s counts"
           " the Linear products only\n\n", IN, HIDDEN, HIDDEN, CLASSES);
    printf("%6s  %-22s %9s %9s %10s %10s\n", "batch", "", "FP32", "TF32",
           "FP32 ms", "TF32 ms");

    for (bi = 0; bi < sizeof(batches) / sizeof(batches[0]); bi++) {
        b = batches[bi];

        for (mode = 0; mode < 2; mode++) {
            mf[mode] = mt[mode] = rf[mode] = rt[mode] = -1.0;

            if (model_init(&mb, be[mode], b) == 0) {
                mf[mode] = model_time(&mb, be[mode], 0);
                mt[mode] = model_time(&mb, be[mode], 1);
            }
            model_free(&mb, be[mode]);

            if (raw_init(&rb, b, mode) == 0) {
                rf[mode] = raw_time(&rb, b, 0);
                rt[mode] = raw_time(&rb, b, 1);
            } else {
                fprintf(stderr, "raw cuBLAS setup failed at batch %d\n", b);
            }
            raw_free(&rb);
        }

        row(b, "model forward", macs_forward(b), mf);
        row(b, "raw SGEMM forward", macs_forward(b), rf);
        row(b, "model train step", macs_train(b), mt);
        row(b, "raw SGEMM train step", macs_train(b), rt);
    }

    lt_backend_cuda_close(be[0]);
    lt_backend_cuda_close(be[1]);

    return 0;
}
