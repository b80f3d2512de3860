/*
 * lt_cuda_loss.cu: the losses, with the CPU backend's formulas
 * (PyTorch's, reduction='mean').  Each writes d(loss)/d(pred) and returns
 * the mean loss on the host.
 *
 * The loss is reduced on the device in double, as the CPU backend sums
 * in double: every block leaves its sum in the scratch area's partial
 * sums (the grid is capped at LT_CUDA_MAX_BLOCKS), one block adds those
 * in a fixed order and writes the mean as one float, and that float is
 * the only thing copied back.  No atomics: the same inputs give the same
 * loss bit for bit, run after run.
 */
#include <math.h>

#include "lt_cuda.h"

/* BCE's floor for log(p), and its gradient's denominator, as PyTorch. */
#define LT_BCE_LOG_MIN     -100.0f
#define LT_BCE_EPS         1e-12f

#define LT_ROWS_PER_BLOCK  (LT_CUDA_THREADS / LT_CUDA_WARP)


/* result = scale * (sum of the nparts partial sums) / divisor, one
 * block. */
static __global__ void
lt_loss_finish_kernel(const double *partial, int nparts, double divisor,
    double scale, float *result)
{
    double  s;
    int     i;

    s = 0.0;
    for (i = threadIdx.x; i < nparts; i += blockDim.x) {
        s += partial[i];
    }

    s = lt_block_sum(s);

    if (threadIdx.x == 0) {
        *result = (float) (scale * (s / divisor));
    }
}


float
lt_cuda_loss_finish(lt_cuda_ctx *c, unsigned nparts, double divisor,
    double scale, const char *what)
{
    if (!lt_cuda_launched(c, what)) {
        return NAN;
    }

    lt_loss_finish_kernel<<<1, LT_CUDA_THREADS, 0, c->stream>>>(
        c->partial, (int) nparts, divisor, scale, c->result);

    if (!lt_cuda_launched(c, "loss reduction")) {
        return NAN;
    }

    return lt_cuda_fetch_result(c);
}


/* mean((p - t)^2); grad = 2 (p - t) / n */
static __global__ void
lt_mse_kernel(const float *pred, const float *target, float *grad, size_t n,
    float scale, double *partial)
{
    double  acc;
    float   d;

    acc = 0.0;

    LT_CUDA_FOR(i, n) {
        d = pred[i] - target[i];
        acc += (double) d * d;
        grad[i] = scale * d;
    }

    acc = lt_block_sum(acc);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = acc;
    }
}


float
lt_cuda_loss_mse(const lt_backend *be, const float *pred,
    const float *target, float *grad, int rows, int cols)
{
    lt_cuda_ctx  *c;
    unsigned      blocks;
    size_t        n;

    c = lt_cuda_enter(be);

    if (rows <= 0 || cols <= 0) {
        return NAN;             /* the mean of nothing, as 0.0 / 0 */
    }

    n = (size_t) rows * cols;
    blocks = lt_cuda_blocks(n, LT_CUDA_THREADS);

    lt_mse_kernel<<<blocks, LT_CUDA_THREADS, 0, c->stream>>>(
        pred, target, grad, n, 2.0f / (float) n, c->partial);

    return lt_cuda_loss_finish(c, blocks, (double) n, 1.0, "loss_mse");
}


/* PyTorch's binary_cross_entropy: log clamped at -100 so p = 0 or 1
 * gives a finite loss, and the gradient's denominator floored at 1e-12. */
static __global__ void
lt_bce_kernel(const float *pred, const float *target, float *grad, size_t n,
    float inv_n, double *partial)
{
    double  acc;
    float   p, t, lp, l1p;

    acc = 0.0;

    LT_CUDA_FOR(i, n) {
        p = pred[i];
        t = target[i];
        lp = fmaxf(logf(p), LT_BCE_LOG_MIN);
        l1p = fmaxf(logf(1.0f - p), LT_BCE_LOG_MIN);
        acc -= (double) (t * lp + (1.0f - t) * l1p);
        grad[i] = inv_n * (p - t) / fmaxf((1.0f - p) * p, LT_BCE_EPS);
    }

    acc = lt_block_sum(acc);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = acc;
    }
}


float
lt_cuda_loss_bce(const lt_backend *be, const float *pred,
    const float *target, float *grad, int rows, int cols)
{
    lt_cuda_ctx  *c;
    unsigned      blocks;
    size_t        n;

    c = lt_cuda_enter(be);

    if (rows <= 0 || cols <= 0) {
        return NAN;
    }

    n = (size_t) rows * cols;
    blocks = lt_cuda_blocks(n, LT_CUDA_THREADS);

    lt_bce_kernel<<<blocks, LT_CUDA_THREADS, 0, c->stream>>>(
        pred, target, grad, n, 1.0f / (float) n, c->partial);

    return lt_cuda_loss_finish(c, blocks, (double) n, 1.0, "loss_bce");
}


/*
 * Cross-entropy over logits, one warp per row, mean over rows.  With
 * class indices the row's loss is lse - z[t] and its gradient
 * (softmax - onehot) / n; with probability rows t it is
 * sum(t) * lse - <t, z> and (softmax * sum(t) - t) / n.  A class index
 * outside [0, cols) (the model code checks them before) makes the loss
 * NaN instead of writing out of bounds.  The row loop's bounds are the
 * same for the lanes of a warp, so every lane takes part in every
 * shuffle; lane 0 keeps the warp's running sum.
 */
static __global__ void
lt_ce_kernel(const float *logits, const int32_t *target_index,
    const float *target, float *grad, int rows, int cols, float inv_n,
    double *partial)
{
    const float  *z, *t;
    double        acc, row_loss;
    float        *g, max, se, lse, scale, tsum, tz;
    int           lane, warp, nwarps, r, j, k;

    lane = threadIdx.x % LT_CUDA_WARP;
    warp = (int) ((blockIdx.x * blockDim.x + threadIdx.x) / LT_CUDA_WARP);
    nwarps = (int) (gridDim.x * blockDim.x / LT_CUDA_WARP);
    acc = 0.0;

    for (r = warp; r < rows; r += nwarps) {
        z = logits + (size_t) r * cols;
        g = grad + (size_t) r * cols;

        max = -INFINITY;
        for (j = lane; j < cols; j += LT_CUDA_WARP) {
            max = fmaxf(max, z[j]);
        }
        max = lt_warp_max(max);

        se = 0.0f;
        for (j = lane; j < cols; j += LT_CUDA_WARP) {
            se += expf(z[j] - max);
        }
        se = lt_warp_sum(se);
        lse = max + logf(se);

        if (target_index != NULL) {
            k = target_index[r];
            scale = inv_n / se;

            for (j = lane; j < cols; j += LT_CUDA_WARP) {
                g[j] = expf(z[j] - max) * scale;
                if (j == k) {
                    g[j] -= inv_n;
                }
            }

            row_loss = k >= 0 && k < cols ? (double) (lse - z[k]) : NAN;

        } else {
            t = target + (size_t) r * cols;

            tsum = 0.0f;
            tz = 0.0f;
            for (j = lane; j < cols; j += LT_CUDA_WARP) {
                tsum += t[j];
                tz += t[j] * z[j];
            }
            tsum = lt_warp_sum(tsum);
            tz = lt_warp_sum(tz);

            scale = inv_n * tsum / se;
            for (j = lane; j < cols; j += LT_CUDA_WARP) {
                g[j] = expf(z[j] - max) * scale - inv_n * t[j];
            }

            row_loss = (double) (tsum * lse - tz);
        }

        if (lane == 0) {
            acc += row_loss;
        }
    }

    acc = lt_block_sum(acc);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = acc;
    }
}


float
lt_cuda_loss_ce(const lt_backend *be, const float *logits,
    const int32_t *target_index, const float *target, float *grad, int rows,
    int cols)
{
    lt_cuda_ctx  *c;
    unsigned      blocks;

    c = lt_cuda_enter(be);

    if (rows <= 0 || cols <= 0
        || (target_index == NULL && target == NULL))
    {
        return NAN;
    }

    blocks = lt_cuda_blocks((size_t) rows, LT_ROWS_PER_BLOCK);

    lt_ce_kernel<<<blocks, LT_CUDA_THREADS, 0, c->stream>>>(
        logits, target_index, target, grad, rows, cols, 1.0f / (float) rows,
        c->partial);

    return lt_cuda_loss_finish(c, blocks, (double) rows, 1.0, "loss_ce");
}
