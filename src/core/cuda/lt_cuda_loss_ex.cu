/*
 * lt_cuda_loss_ex.cu: the losses beyond MSE, BCE and plain cross-entropy
 * (L1 / SmoothL1 / Huber, BCE with logits, NLL, cross-entropy with label
 * smoothing), each written after its CPU twin in lt_loss_cpu.c, operation
 * by operation, so the two differ only by the order of the sums.
 *
 * The mean is reduced as lt_cuda_loss.cu does: per-block double sums in
 * the scratch area, added in a fixed order by one block
 * (lt_cuda_loss_finish), no atomics.
 */
#include <math.h>

#include "lt_cuda.h"

extern "C" {
#include "lt_model.h"           /* LT_MAX_POS_WEIGHT */
}

#define LT_ROWS_PER_BLOCK  (LT_CUDA_THREADS / LT_CUDA_WARP)


/* scale * smooth_l1(d, beta) per element; beta 0 takes the |d| branch
 * (a < 0 never holds), so L1 divides by nothing */
static __global__ void
lt_smooth_l1_kernel(const float *pred, const float *target, float *grad,
    size_t n, float beta, float inv_n, double *partial)
{
    double  acc;
    float   d, a, g, l;

    acc = 0.0;

    LT_CUDA_FOR(i, n) {
        d = pred[i] - target[i];
        a = fabsf(d);

        if (a < beta) {
            l = 0.5f * d * d / beta;
            g = d / beta;

        } else {
            l = a - 0.5f * beta;
            g = d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f);
        }

        acc += (double) l;
        grad[i] = inv_n * g;
    }

    acc = lt_block_sum(acc);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = acc;
    }
}


float
lt_cuda_loss_smooth_l1(const lt_backend *be, const float *pred,
    const float *target, float *grad, int rows, int cols, float beta,
    float scale)
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

    lt_smooth_l1_kernel<<<blocks, LT_CUDA_THREADS, 0, c->stream>>>(
        pred, target, grad, n, beta, scale / (float) n, c->partial);

    return lt_cuda_loss_finish(c, blocks, (double) n, (double) scale,
                               "loss_smooth_l1");
}


/* pos_weight travels in the kernel's arguments: it is host memory and at
 * most LT_MAX_POS_WEIGHT floats, so no copy and no wait */
typedef struct {
    float  w[LT_MAX_POS_WEIGHT];
} lt_pos_weight;


static __device__ __forceinline__ float
lt_softplus(float x)
{
    return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}




/* pw t softplus(-x) + (1 - t) softplus(x); its derivative (1 - t)
 * sigmoid(x) - pw t sigmoid(-x), sigmoid(-x) as 1 - sigmoid(x) as the
 * CPU computes it */
static __global__ void
lt_bce_logits_kernel(const float *logits, const float *target,
    lt_pos_weight pos_weight, int npw, float *grad, size_t n, size_t cols,
    float inv_n, double *partial)
{
    double  acc;
    float   x, t, pw, s;

    acc = 0.0;

    LT_CUDA_FOR(i, n) {
        x = logits[i];
        t = target[i];
        pw = npw == 0 ? 1.0f : pos_weight.w[npw == 1 ? 0 : i % cols];
        s = lt_sigmoid(x);

        acc += (double) (pw * t * lt_softplus(-x)
                         + (1.0f - t) * lt_softplus(x));
        grad[i] = inv_n * ((1.0f - t) * s - pw * t * (1.0f - s));
    }

    acc = lt_block_sum(acc);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = acc;
    }
}


float
lt_cuda_loss_bce_logits(const lt_backend *be, const float *logits,
    const float *target, const float *pos_weight, int npw, float *grad,
    int rows, int cols)
{
    lt_cuda_ctx    *c;
    lt_pos_weight   pw;
    unsigned        blocks;
    size_t          n;
    int             i;

    c = lt_cuda_enter(be);

    if (rows <= 0 || cols <= 0) {
        return NAN;
    }

    /* one weight, or one per column, and no more than the argument holds
     * (the model code checks this; a kernel must not read past it) */
    if (npw < 0 || npw > LT_MAX_POS_WEIGHT || (npw > 1 && npw != cols)
        || (npw > 0 && pos_weight == NULL))
    {
        lt_cuda_check(c, cudaErrorInvalidValue, "loss_bce_logits: "
                      "pos_weight must have 1 or one per column, at most "
                      "LT_MAX_POS_WEIGHT");
        return NAN;
    }

    for (i = 0; i < LT_MAX_POS_WEIGHT; i++) {
        pw.w[i] = i < npw ? pos_weight[i] : 0.0f;
    }

    n = (size_t) rows * cols;
    blocks = lt_cuda_blocks(n, LT_CUDA_THREADS);

    lt_bce_logits_kernel<<<blocks, LT_CUDA_THREADS, 0, c->stream>>>(
        logits, target, pw, npw, grad, n, (size_t) cols, 1.0f / (float) n,
        c->partial);

    return lt_cuda_loss_finish(c, blocks, (double) n, 1.0,
                               "loss_bce_logits");
}


/*
 * -mean(logp[r, index[r]]): every element's gradient in one pass, 0 but
 * at the row's class, where it is -1/rows; that element also adds its
 * term to the loss.  A class index outside [0, cols) makes the loss NaN
 * (added once, by the row's first element) and writes nowhere else.
 */
static __global__ void
lt_nll_kernel(const float *logp, const int32_t *target_index, float *grad,
    size_t n, size_t cols, float inv_n, double *partial)
{
    double   acc;
    size_t   r, j;
    int32_t  k;

    acc = 0.0;

    LT_CUDA_FOR(i, n) {
        r = i / cols;
        j = i % cols;
        k = target_index[r];

        if (k >= 0 && (size_t) k == j) {
            acc -= (double) logp[i];
            grad[i] = -inv_n;

        } else {
            grad[i] = 0.0f;
        }

        if (j == 0 && (k < 0 || (size_t) k >= cols)) {
            acc += NAN;
        }
    }

    acc = lt_block_sum(acc);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = acc;
    }
}


float
lt_cuda_loss_nll(const lt_backend *be, const float *logp,
    const int32_t *target_index, float *grad, int rows, int cols)
{
    lt_cuda_ctx  *c;
    unsigned      blocks;
    size_t        n;

    c = lt_cuda_enter(be);

    if (rows <= 0 || cols <= 0 || target_index == NULL) {
        return NAN;
    }

    n = (size_t) rows * cols;
    blocks = lt_cuda_blocks(n, LT_CUDA_THREADS);

    lt_nll_kernel<<<blocks, LT_CUDA_THREADS, 0, c->stream>>>(
        logp, target_index, grad, n, (size_t) cols, 1.0f / (float) rows,
        c->partial);

    return lt_cuda_loss_finish(c, blocks, (double) rows, 1.0, "loss_nll");
}


/*
 * Cross-entropy with label smoothing e, one warp per row as
 * lt_cuda_loss.cu's: q = (1 - e) t + e / C, the row's loss sum(q) lse -
 * <q, z>, its gradient (softmax sum(q) - q) / rows.  For an index the
 * CPU's shortcut: sum(q) = 1, <q, z> = keep z[k] + spread sum(z).  Every
 * lane of a warp runs the same row loop, so every shuffle has all 32.
 */
static __global__ void
lt_ce_smooth_kernel(const float *logits, const int32_t *target_index,
    const float *target, float keep, float spread, float *grad, int rows,
    int cols, float inv_n, double *partial)
{
    const float  *z, *t;
    double        acc, row_loss;
    float        *g, max, se, zsum, lse, q, qsum, qz;
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
        zsum = 0.0f;
        for (j = lane; j < cols; j += LT_CUDA_WARP) {
            se += expf(z[j] - max);
            zsum += z[j];
        }
        se = lt_warp_sum(se);
        zsum = lt_warp_sum(zsum);
        lse = max + logf(se);

        if (target_index != NULL) {
            k = target_index[r];

            for (j = lane; j < cols; j += LT_CUDA_WARP) {
                g[j] = inv_n * (expf(z[j] - max) / se - spread);
                if (j == k) {
                    g[j] -= inv_n * keep;
                }
            }

            row_loss = k >= 0 && k < cols
                       ? (double) (lse - (keep * z[k] + spread * zsum))
                       : NAN;

        } else {
            t = target + (size_t) r * cols;

            qsum = 0.0f;
            qz = 0.0f;
            for (j = lane; j < cols; j += LT_CUDA_WARP) {
                q = keep * t[j] + spread;
                qsum += q;
                qz += q * z[j];
            }
            qsum = lt_warp_sum(qsum);
            qz = lt_warp_sum(qz);

            for (j = lane; j < cols; j += LT_CUDA_WARP) {
                q = keep * t[j] + spread;
                g[j] = inv_n * (expf(z[j] - max) / se * qsum - q);
            }

            row_loss = (double) (qsum * lse - qz);
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
lt_cuda_loss_ce_smooth(const lt_backend *be, const float *logits,
    const int32_t *target_index, const float *target, float label_smoothing,
    float *grad, int rows, int cols)
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

    lt_ce_smooth_kernel<<<blocks, LT_CUDA_THREADS, 0, c->stream>>>(
        logits, target_index, target, 1.0f - label_smoothing,
        label_smoothing / (float) cols, grad, rows, cols,
        1.0f / (float) rows, c->partial);

    return lt_cuda_loss_finish(c, blocks, (double) rows, 1.0,
                               "loss_ce_smooth");
}
