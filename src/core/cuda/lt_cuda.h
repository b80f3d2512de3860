/*
 * lt_cuda.h: what the CUDA backend's files share (CUDA C++, not for C
 * users: they include lt_backend_cuda.h).
 *
 * One concept per file, as ggml-cuda does:
 *   lt_backend_cuda.cu   open / close / status, memory, gemm (cuBLAS)
 *   lt_cuda_bias.cu      add_bias, sum_rows
 *   lt_cuda_act.cu       activations, forward and backward
 *   lt_cuda_loss.cu      MSE, BCE, cross-entropy and their reductions
 *   lt_cuda_loss_ex.cu   L1 / SmoothL1 / Huber, BCE with logits, NLL,
 *                        cross-entropy with label smoothing
 *   lt_cuda_optim.cu     SGD and Adam
 *   lt_cuda_optim_ex.cu  SGD dampening / Nesterov, Adam amsgrad / AdamW,
 *                        RMSprop, Adagrad
 *   lt_cuda_clip.cu      clip_grad_norm's sum of squares and scale
 *   lt_cuda_act_arg.cu   GELU, LeakyReLU, ELU, SiLU, Softplus; Dropout's
 *                        mask (the CPU's generator); elementwise product
 *   lt_cuda_conv.cu      im2col, col2im, per-channel bias and its sum
 *                        (the convolution's products are gemm's)
 *   lt_cuda_pool.cu      max / average / adaptive average pools
 *   lt_cuda_norm.cu      BatchNorm (train, eval, running statistics),
 *                        LayerNorm
 *   lt_cuda_embed.cu     Embedding's lookup and scatter-add
 *
 * Every kernel walks its elements with a grid-stride loop and a bounds
 * check, so any grid size is correct; the grid is capped at
 * LT_CUDA_MAX_BLOCKS blocks, which is also the number of per-block partial
 * sums the scratch area holds for the loss reductions.
 */
#ifndef LT_CUDA_H
#define LT_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>
#include <cublas_v2.h>

/* the core's headers are C: their functions have C linkage */
extern "C" {
#include "lt_backend.h"
#include "lt_tensor.h"
}

#include "lt_backend_cuda.h"

#define LT_CUDA_THREADS     256     /* threads per block, every kernel */
#define LT_CUDA_WARP        32
#define LT_CUDA_MAX_BLOCKS  1024    /* grid cap = partial sums in scratch */

typedef struct {
    lt_backend       be;            /* the table; be.ctx points here */
    int              device;
    cudaStream_t     stream;
    cublasHandle_t   cublas;

    void            *cublas_ws;     /* cuBLAS workspace, set once */
    double          *partial;       /* [LT_CUDA_MAX_BLOCKS] block sums */
    double          *result_d;      /* one double: a sum of squares */
    float           *result;        /* one float: a loss, on the device */
    double          *result_host_d; /* the two, pinned host memory */
    float           *result_host;

    /* the first failure since lt_backend_cuda_status last reported */
    int              failed;
    char             failure[200];
} lt_cuda_ctx;


/* Record a failure (the first one sticks); returns err == success. */
int lt_cuda_check(lt_cuda_ctx *c, cudaError_t err, const char *what);
int lt_cuda_check_blas(lt_cuda_ctx *c, cublasStatus_t st, const char *what);


static inline lt_cuda_ctx *
lt_cuda_ctx_of(const lt_backend *be)
{
    return (lt_cuda_ctx *) be->ctx;
}


/*
 * The context of an op, with its device made current in the calling
 * thread: a backend opened in one thread may be used from another (an
 * nginx thread-pool thread, one at a time), whose current device would
 * otherwise be 0.  Costs a thread-local read when it is already current.
 */
static inline lt_cuda_ctx *
lt_cuda_enter(const lt_backend *be)
{
    lt_cuda_ctx  *c;
    int           d;

    c = lt_cuda_ctx_of(be);

    if (cudaGetDevice(&d) != cudaSuccess || d != c->device) {
        lt_cuda_check(c, cudaSetDevice(c->device), "cudaSetDevice");
    }

    return c;
}


/* Blocks for n independent items: at least 1, at most the cap; the
 * grid-stride loops cover whatever the grid does not. */
static inline unsigned
lt_cuda_blocks(size_t n, size_t per_block)
{
    size_t  b;

    b = (n + per_block - 1) / per_block;

    if (b < 1) {
        return 1;
    }

    return b > LT_CUDA_MAX_BLOCKS ? LT_CUDA_MAX_BLOCKS : (unsigned) b;
}


/* After a kernel launch: a bad configuration shows up here. */
#define lt_cuda_launched(c, what)  lt_cuda_check(c, cudaGetLastError(), what)

/* Waits for the stream and copies the device's result float to the host;
 * NaN when that fails. */
float lt_cuda_fetch_result(lt_cuda_ctx *c);

/* The same for the double result (sum_squares). */
double lt_cuda_fetch_result_d(lt_cuda_ctx *c);

/* After a kernel that left one partial sum per block (nparts of them):
 * one block adds them in a fixed order and leaves scale * (sum /
 * divisor) in c->result; then the float comes back to the host.  NaN
 * when the kernel did not launch (what names it). */
float lt_cuda_loss_finish(lt_cuda_ctx *c, unsigned nparts, double divisor,
    double scale, const char *what);

/* Grid-stride loop over [0, n) with a size_t index. */
#define LT_CUDA_FOR(i, n)                                                    \
    for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x;          \
         i < (n);                                                            \
         i += (size_t) gridDim.x * blockDim.x)


/* Sums and maxima over the 32 lanes of a warp; every lane gets the
 * result.  All 32 lanes must call them together. */
static __device__ __forceinline__ float
lt_warp_sum(float v)
{
    int  o;

    for (o = LT_CUDA_WARP / 2; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }

    return v;
}


static __device__ __forceinline__ double
lt_warp_sum_d(double v)
{
    int  o;

    for (o = LT_CUDA_WARP / 2; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }

    return v;
}


static __device__ __forceinline__ float
lt_warp_max(float v)
{
    int  o;

    for (o = LT_CUDA_WARP / 2; o > 0; o >>= 1) {
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    }

    return v;
}


/* The sum of v over a block of LT_CUDA_THREADS threads, in thread 0 (the
 * others get a partial value).  Call it once per kernel, from every
 * thread. */
static __device__ __forceinline__ double
lt_block_sum(double v)
{
    __shared__ double  warp_sums[LT_CUDA_THREADS / LT_CUDA_WARP];
    int                lane, warp;

    lane = threadIdx.x % LT_CUDA_WARP;
    warp = threadIdx.x / LT_CUDA_WARP;

    v = lt_warp_sum_d(v);
    if (lane == 0) {
        warp_sums[warp] = v;
    }
    __syncthreads();

    if (warp == 0) {
        v = lane < LT_CUDA_THREADS / LT_CUDA_WARP ? warp_sums[lane] : 0.0;
        v = lt_warp_sum_d(v);
    }

    return v;
}


/* The backend's ops, one file per concept. */
void lt_cuda_add_bias(const lt_backend *be, float *y, const float *bias,
    int rows, int cols);
void lt_cuda_sum_rows(const lt_backend *be, float *out, const float *g,
    int rows, int cols);
void lt_cuda_act_forward(const lt_backend *be, lt_act act, const float *x,
    float *y, int rows, int cols);
void lt_cuda_act_backward(const lt_backend *be, lt_act act, const float *x,
    const float *y, const float *dy, float *dx, int rows, int cols);
float lt_cuda_loss_mse(const lt_backend *be, const float *pred,
    const float *target, float *grad, int rows, int cols);
float lt_cuda_loss_bce(const lt_backend *be, const float *pred,
    const float *target, float *grad, int rows, int cols);
float lt_cuda_loss_ce(const lt_backend *be, const float *logits,
    const int32_t *target_index, const float *target, float *grad, int rows,
    int cols);
void lt_cuda_sgd(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *velocity_in, float *velocity_out,
    size_t n, float lr, float momentum, float weight_decay, int first_step);
void lt_cuda_adam(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *m_in, const float *v_in, float *m_out,
    float *v_out, size_t n, float lr, float beta1, float beta2, float eps,
    float weight_decay, int64_t step);

float lt_cuda_loss_smooth_l1(const lt_backend *be, const float *pred,
    const float *target, float *grad, int rows, int cols, float beta,
    float scale);
float lt_cuda_loss_bce_logits(const lt_backend *be, const float *logits,
    const float *target, const float *pos_weight, int npw, float *grad,
    int rows, int cols);
float lt_cuda_loss_nll(const lt_backend *be, const float *logp,
    const int32_t *target_index, float *grad, int rows, int cols);
float lt_cuda_loss_ce_smooth(const lt_backend *be, const float *logits,
    const int32_t *target_index, const float *target, float label_smoothing,
    float *grad, int rows, int cols);

double lt_cuda_sum_squares(const lt_backend *be, const float *x, size_t n);
void lt_cuda_scale(const lt_backend *be, float *x, size_t n, float alpha);

void lt_cuda_sgd_ex(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float momentum, float dampening, float weight_decay,
    int nesterov, int first_step);
void lt_cuda_adam_ex(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float beta1, float beta2, float eps, float weight_decay,
    int decoupled, int amsgrad, int64_t step);
void lt_cuda_rmsprop(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float alpha, float eps, float weight_decay, float momentum,
    int centered);
void lt_cuda_adagrad(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float lr_decay, float weight_decay, float eps, int64_t step);

void lt_cuda_act_arg_forward(const lt_backend *be, lt_act act, float a,
    float b, const float *x, float *y, size_t n);
void lt_cuda_act_arg_backward(const lt_backend *be, lt_act act, float a,
    float b, const float *x, const float *y, const float *dy, float *dx,
    size_t n);
void lt_cuda_dropout_forward(const lt_backend *be, const float *x, float *y,
    float *mask, size_t n, float p, uint64_t seed);
void lt_cuda_mul(const lt_backend *be, const float *a, const float *b,
    float *y, size_t n);

void lt_cuda_im2col(const lt_backend *be, const lt_window *g,
    const float *x, float *col);
void lt_cuda_col2im(const lt_backend *be, const lt_window *g,
    const float *col, float *x);
void lt_cuda_channel_bias(const lt_backend *be, float *y, const float *bias,
    int n, int c, int s);
void lt_cuda_channel_sum(const lt_backend *be, float *out, const float *g,
    int n, int c, int s);

void lt_cuda_pool_forward(const lt_backend *be, lt_pool kind,
    const lt_window *g, int n, const float *x, float *y, int32_t *arg);
void lt_cuda_pool_backward(const lt_backend *be, lt_pool kind,
    const lt_window *g, int n, const float *dy, const int32_t *arg,
    float *dx);

void lt_cuda_batchnorm_forward(const lt_backend *be, int n, int c, int s,
    const float *x, float *y, const float *gamma, const float *beta,
    const float *mean, const float *var, float eps, int batch, float *save);
void lt_cuda_batchnorm_backward(const lt_backend *be, int n, int c, int s,
    const float *x, const float *dy, float *dx, const float *gamma,
    const float *save, int batch, float *dgamma, float *dbeta);
void lt_cuda_batchnorm_running(const lt_backend *be, int c, float momentum,
    const float *save, const float *mean_in, const float *var_in,
    const float *count_in, float *mean_out, float *var_out,
    float *count_out);
void lt_cuda_layernorm_forward(const lt_backend *be, int rows, int d,
    const float *x, float *y, const float *gamma, const float *beta,
    float eps, float *save);
void lt_cuda_layernorm_backward(const lt_backend *be, int rows, int d,
    const float *x, const float *dy, float *dx, const float *gamma,
    const float *save, float *dgamma, float *dbeta);

void lt_cuda_embedding_forward(const lt_backend *be, const float *index,
    int n, const float *w, int dim, float *y);
void lt_cuda_embedding_backward(const lt_backend *be, const float *index,
    int n, const float *dy, int dim, int num, int skip, float *dw);

/* The logistic function without overflow: exp of a non-positive number
 * only, as the CPU backend (activations and BCE with logits) */
static __device__ __forceinline__ float
lt_sigmoid(float x)
{
    float  e;

    if (x >= 0.0f) {
        return 1.0f / (1.0f + expf(-x));
    }

    e = expf(x);
    return e / (1.0f + e);
}


#endif /* LT_CUDA_H */
