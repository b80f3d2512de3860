/*
 * lt_cuda_act.cu: activations, forward and backward, with the CPU
 * backend's formulas (PyTorch's): ReLU, Tanh and Sigmoid elementwise,
 * Softmax and LogSoftmax per row.
 *
 * The row-wise ones give each row to one warp: the lanes stride over the
 * columns and combine their maxima and sums with shuffles, so a row of 10
 * and a row of 1000 columns both run without shared memory or
 * __syncthreads.
 */
#include <math.h>

#include "lt_cuda.h"

#define LT_ROWS_PER_BLOCK  (LT_CUDA_THREADS / LT_CUDA_WARP)


static __global__ void
lt_act_forward_kernel(lt_act act, const float *x, float *y, size_t n)
{
    float  v;

    LT_CUDA_FOR(i, n) {
        v = x[i];

        switch (act) {
        case LT_ACT_RELU:
            y[i] = v > 0.0f ? v : 0.0f;
            break;
        case LT_ACT_TANH:
            y[i] = tanhf(v);
            break;
        default:
            y[i] = lt_sigmoid(v);
            break;
        }
    }
}


static __global__ void
lt_act_backward_kernel(lt_act act, const float *x, const float *y,
    const float *dy, float *dx, size_t n)
{
    LT_CUDA_FOR(i, n) {
        switch (act) {
        case LT_ACT_RELU:
            dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
            break;
        case LT_ACT_TANH:
            dx[i] = dy[i] * (1.0f - y[i] * y[i]);
            break;
        default:
            dx[i] = dy[i] * y[i] * (1.0f - y[i]);
            break;
        }
    }
}


/*
 * One warp per row: y = exp(x - max) / sum, or x - (max + log(sum)) for
 * the log.  The row loop's bounds are the same for the 32 lanes of a warp,
 * so every lane takes part in every shuffle.  A lane writes only the
 * columns it read, so x == y is safe.
 */
static __global__ void
lt_softmax_kernel(const float *x, float *y, int rows, int cols, int log_out)
{
    const float  *xr;
    float        *yr, max, sum, lse, inv;
    int           lane, r, j, warp, nwarps;

    lane = threadIdx.x % LT_CUDA_WARP;
    warp = (int) ((blockIdx.x * blockDim.x + threadIdx.x) / LT_CUDA_WARP);
    nwarps = (int) (gridDim.x * blockDim.x / LT_CUDA_WARP);

    for (r = warp; r < rows; r += nwarps) {
        xr = x + (size_t) r * cols;
        yr = y + (size_t) r * cols;

        max = -INFINITY;
        for (j = lane; j < cols; j += LT_CUDA_WARP) {
            max = fmaxf(max, xr[j]);
        }
        max = lt_warp_max(max);

        sum = 0.0f;
        for (j = lane; j < cols; j += LT_CUDA_WARP) {
            sum += expf(xr[j] - max);
        }
        sum = lt_warp_sum(sum);

        if (log_out) {
            lse = max + logf(sum);
            for (j = lane; j < cols; j += LT_CUDA_WARP) {
                yr[j] = xr[j] - lse;
            }

        } else {
            inv = 1.0f / sum;
            for (j = lane; j < cols; j += LT_CUDA_WARP) {
                yr[j] = expf(xr[j] - max) * inv;
            }
        }
    }
}


/*
 * One warp per row.  Softmax: dx = y * (dy - <dy, y>); log-softmax:
 * dx = dy - exp(y) * sum(dy).
 */
static __global__ void
lt_softmax_backward_kernel(const float *y, const float *dy, float *dx,
    int rows, int cols, int log_out)
{
    const float  *yr, *dyr;
    float        *dxr, s;
    int           lane, r, j, warp, nwarps;

    lane = threadIdx.x % LT_CUDA_WARP;
    warp = (int) ((blockIdx.x * blockDim.x + threadIdx.x) / LT_CUDA_WARP);
    nwarps = (int) (gridDim.x * blockDim.x / LT_CUDA_WARP);

    for (r = warp; r < rows; r += nwarps) {
        yr = y + (size_t) r * cols;
        dyr = dy + (size_t) r * cols;
        dxr = dx + (size_t) r * cols;

        s = 0.0f;
        for (j = lane; j < cols; j += LT_CUDA_WARP) {
            s += log_out ? dyr[j] : dyr[j] * yr[j];
        }
        s = lt_warp_sum(s);

        for (j = lane; j < cols; j += LT_CUDA_WARP) {
            dxr[j] = log_out ? dyr[j] - expf(yr[j]) * s
                             : yr[j] * (dyr[j] - s);
        }
    }
}


void
lt_cuda_act_forward(const lt_backend *be, lt_act act, const float *x,
    float *y, int rows, int cols)
{
    lt_cuda_ctx  *c;
    size_t        n;

    c = lt_cuda_enter(be);

    if (rows <= 0 || cols <= 0) {
        return;
    }

    n = (size_t) rows * cols;

    switch (act) {

    case LT_ACT_RELU:
    case LT_ACT_TANH:
    case LT_ACT_SIGMOID:
        lt_act_forward_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS),
                                LT_CUDA_THREADS, 0, c->stream>>>(act, x, y,
                                                                 n);
        break;

    case LT_ACT_SOFTMAX:
    case LT_ACT_LOGSOFTMAX:
        lt_softmax_kernel<<<lt_cuda_blocks((size_t) rows, LT_ROWS_PER_BLOCK),
                            LT_CUDA_THREADS, 0, c->stream>>>(
            x, y, rows, cols, act == LT_ACT_LOGSOFTMAX);
        break;

    default:
        lt_cuda_check(c, cudaErrorInvalidValue, "act_forward: unknown"
                      " activation");
        return;
    }

    lt_cuda_launched(c, "act_forward");
}


void
lt_cuda_act_backward(const lt_backend *be, lt_act act, const float *x,
    const float *y, const float *dy, float *dx, int rows, int cols)
{
    lt_cuda_ctx  *c;
    size_t        n;

    c = lt_cuda_enter(be);

    if (rows <= 0 || cols <= 0) {
        return;
    }

    n = (size_t) rows * cols;

    switch (act) {

    case LT_ACT_RELU:
    case LT_ACT_TANH:
    case LT_ACT_SIGMOID:
        lt_act_backward_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS),
                                 LT_CUDA_THREADS, 0, c->stream>>>(
            act, x, y, dy, dx, n);
        break;

    case LT_ACT_SOFTMAX:
    case LT_ACT_LOGSOFTMAX:
        lt_softmax_backward_kernel<<<lt_cuda_blocks((size_t) rows,
                                                    LT_ROWS_PER_BLOCK),
                                     LT_CUDA_THREADS, 0, c->stream>>>(
            y, dy, dx, rows, cols, act == LT_ACT_LOGSOFTMAX);
        break;

    default:
        lt_cuda_check(c, cudaErrorInvalidValue, "act_backward: unknown"
                      " activation");
        return;
    }

    lt_cuda_launched(c, "act_backward");
}
