/*
 * lt_backend_cpu.c: the CPU backend, OpenBLAS for large products and
 * plain loops for everything else.
 *
 * No op allocates: every buffer comes from the caller's workspace.  The
 * activations, losses and optimizers follow PyTorch's definitions so a
 * model trained here matches the same model trained with torch.nn.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "lt_backend.h"

/*
 * Below this many multiply-adds (m * n * k) a plain loop beats
 * cblas_sgemm, whose argument checks, dispatch and packing cost about as
 * much as a few thousand multiply-adds (measured with bench/core_bench:
 * the XOR net's 2x20 products take ~10 ns in the loop and ~100 ns
 * through OpenBLAS).
 */
#define LT_CPU_SMALL_GEMM  4096

/* BCE's floor for log(p), and its gradient's denominator, as PyTorch. */
#define LT_BCE_LOG_MIN     -100.0f
#define LT_BCE_EPS         1e-12f

/* 64-byte alignment: a cache line, and enough for any SIMD load. */
#define LT_CPU_ALIGN       64


static void *
lt_cpu_alloc(const lt_backend *be, size_t bytes)
{
    void  *p;

    if (posix_memalign(&p, LT_CPU_ALIGN, bytes ? bytes : LT_CPU_ALIGN)) {
        return NULL;
    }

    return p;
}


static void
lt_cpu_free(const lt_backend *be, void *p)
{
    free(p);
}


/* C = beta * C, reading nothing when beta is 0 (BLAS semantics: C may
 * hold garbage, even NaN, then). */
static void
lt_cpu_scale_rows(float *c, int ldc, int m, int n, float beta)
{
    int  i, j;

    for (i = 0; i < m; i++) {
        if (beta == 0.0f) {
            memset(c + (size_t) i * ldc, 0, (size_t) n * sizeof(float));
            continue;
        }

        if (beta != 1.0f) {
            for (j = 0; j < n; j++) {
                c[(size_t) i * ldc + j] *= beta;
            }
        }
    }
}


/* op(B) = B: rows of B are contiguous, so accumulate scaled rows of B
 * into rows of C (the inner loop vectorizes). */
static void
lt_cpu_gemm_small_bn(int trans_a, int m, int n, int k, float alpha,
    const float *a, int lda, const float *b, int ldb, float *c, int ldc)
{
    const float  *brow;
    float        *crow, aip;
    int           i, j, p;

    for (i = 0; i < m; i++) {
        crow = c + (size_t) i * ldc;

        for (p = 0; p < k; p++) {
            aip = alpha * (trans_a ? a[(size_t) p * lda + i]
                                   : a[(size_t) i * lda + p]);
            brow = b + (size_t) p * ldb;

            for (j = 0; j < n; j++) {
                crow[j] += aip * brow[j];
            }
        }
    }
}


/* op(B) = B^T: column j of op(B) is row j of B, so each element of C is
 * a dot product over contiguous memory when A is not transposed. */
static void
lt_cpu_gemm_small_bt(int trans_a, int m, int n, int k, float alpha,
    const float *a, int lda, const float *b, int ldb, float *c, int ldc)
{
    const float  *brow;
    float         sum;
    int           i, j, p;

    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            brow = b + (size_t) j * ldb;
            sum = 0.0f;

            for (p = 0; p < k; p++) {
                sum += (trans_a ? a[(size_t) p * lda + i]
                                : a[(size_t) i * lda + p]) * brow[p];
            }

            c[(size_t) i * ldc + j] += alpha * sum;
        }
    }
}


static void
lt_cpu_gemm(const lt_backend *be, int trans_a, int trans_b, int m, int n,
    int k, float alpha, const float *a, int lda, const float *b, int ldb,
    float beta, float *c, int ldc)
{
    if ((double) m * n * k >= LT_CPU_SMALL_GEMM) {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                    a, lda, b, ldb, beta, c, ldc);
        return;
    }

    lt_cpu_scale_rows(c, ldc, m, n, beta);

    if (trans_b) {
        lt_cpu_gemm_small_bt(trans_a, m, n, k, alpha, a, lda, b, ldb, c, ldc);

    } else {
        lt_cpu_gemm_small_bn(trans_a, m, n, k, alpha, a, lda, b, ldb, c, ldc);
    }
}


static void
lt_cpu_add_bias(const lt_backend *be, float *y, const float *bias, int rows,
    int cols)
{
    float  *row;
    int     r, j;

    for (r = 0; r < rows; r++) {
        row = y + (size_t) r * cols;

        for (j = 0; j < cols; j++) {
            row[j] += bias[j];
        }
    }
}


static void
lt_cpu_sum_rows(const lt_backend *be, float *out, const float *g, int rows,
    int cols)
{
    const float  *row;
    int           r, j;

    memcpy(out, g, (size_t) cols * sizeof(float));

    for (r = 1; r < rows; r++) {
        row = g + (size_t) r * cols;

        for (j = 0; j < cols; j++) {
            out[j] += row[j];
        }
    }
}


/* The logistic function without overflow: exp of a non-positive number
 * only. */
static float
lt_sigmoid(float x)
{
    float  e;

    if (x >= 0.0f) {
        return 1.0f / (1.0f + expf(-x));
    }

    e = expf(x);
    return e / (1.0f + e);
}


static float
lt_row_max(const float *x, int n)
{
    float  m;
    int    j;

    m = x[0];
    for (j = 1; j < n; j++) {
        if (x[j] > m) {
            m = x[j];
        }
    }

    return m;
}


/* y = exp(x - max); returns the sum, so y / sum is the softmax and
 * max + log(sum) the log-sum-exp, both without overflow. */
static float
lt_row_exp(const float *x, float *y, int n, float max)
{
    float  sum;
    int    j;

    sum = 0.0f;
    for (j = 0; j < n; j++) {
        y[j] = expf(x[j] - max);
        sum += y[j];
    }

    return sum;
}


static void
lt_cpu_softmax(const float *x, float *y, int rows, int cols, int log_out)
{
    const float  *xr;
    float        *yr, max, sum, lse, inv;
    int           r, j;

    for (r = 0; r < rows; r++) {
        xr = x + (size_t) r * cols;
        yr = y + (size_t) r * cols;
        max = lt_row_max(xr, cols);
        sum = lt_row_exp(xr, yr, cols, max);

        if (log_out) {
            lse = max + logf(sum);
            for (j = 0; j < cols; j++) {
                yr[j] = xr[j] - lse;
            }

        } else {
            inv = 1.0f / sum;
            for (j = 0; j < cols; j++) {
                yr[j] *= inv;
            }
        }
    }
}


static void
lt_cpu_act_forward(const lt_backend *be, lt_act act, const float *x,
    float *y, int rows, int cols)
{
    size_t  i, n;

    n = (size_t) rows * cols;

    switch (act) {

    case LT_ACT_RELU:
        for (i = 0; i < n; i++) {
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        }
        break;

    case LT_ACT_TANH:
        for (i = 0; i < n; i++) {
            y[i] = tanhf(x[i]);
        }
        break;

    case LT_ACT_SIGMOID:
        for (i = 0; i < n; i++) {
            y[i] = lt_sigmoid(x[i]);
        }
        break;

    case LT_ACT_SOFTMAX:
        lt_cpu_softmax(x, y, rows, cols, 0);
        break;

    case LT_ACT_LOGSOFTMAX:
        lt_cpu_softmax(x, y, rows, cols, 1);
        break;
    }
}


/* Softmax: dx = y * (dy - <dy, y>); log-softmax: dx = dy - exp(y) *
 * sum(dy).  Both per row; dx may alias dy. */
static void
lt_cpu_softmax_backward(const float *y, const float *dy, float *dx,
    int rows, int cols, int log_out)
{
    const float  *yr, *dyr;
    float        *dxr, s;
    int           r, j;

    for (r = 0; r < rows; r++) {
        yr = y + (size_t) r * cols;
        dyr = dy + (size_t) r * cols;
        dxr = dx + (size_t) r * cols;

        s = 0.0f;
        for (j = 0; j < cols; j++) {
            s += log_out ? dyr[j] : dyr[j] * yr[j];
        }

        for (j = 0; j < cols; j++) {
            dxr[j] = log_out ? dyr[j] - expf(yr[j]) * s
                             : yr[j] * (dyr[j] - s);
        }
    }
}


static void
lt_cpu_act_backward(const lt_backend *be, lt_act act, const float *x,
    const float *y, const float *dy, float *dx, int rows, int cols)
{
    size_t  i, n;

    n = (size_t) rows * cols;

    switch (act) {

    case LT_ACT_RELU:
        for (i = 0; i < n; i++) {
            dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
        }
        break;

    case LT_ACT_TANH:
        for (i = 0; i < n; i++) {
            dx[i] = dy[i] * (1.0f - y[i] * y[i]);
        }
        break;

    case LT_ACT_SIGMOID:
        for (i = 0; i < n; i++) {
            dx[i] = dy[i] * y[i] * (1.0f - y[i]);
        }
        break;

    case LT_ACT_SOFTMAX:
        lt_cpu_softmax_backward(y, dy, dx, rows, cols, 0);
        break;

    case LT_ACT_LOGSOFTMAX:
        lt_cpu_softmax_backward(y, dy, dx, rows, cols, 1);
        break;
    }
}


/* mean((p - t)^2) over every element, as reduction='mean'. */
static float
lt_cpu_loss_mse(const lt_backend *be, const float *pred, const float *target,
    float *grad, int rows, int cols)
{
    double  sum;
    float   d, scale;
    size_t  i, n;

    n = (size_t) rows * cols;
    scale = 2.0f / (float) n;
    sum = 0.0;

    for (i = 0; i < n; i++) {
        d = pred[i] - target[i];
        sum += (double) d * d;
        grad[i] = scale * d;
    }

    return (float) (sum / (double) n);
}


/* PyTorch's binary_cross_entropy: log clamped at -100 so p = 0 or 1
 * gives a finite loss, and the gradient's denominator floored at 1e-12. */
static float
lt_cpu_loss_bce(const lt_backend *be, const float *pred, const float *target,
    float *grad, int rows, int cols)
{
    double  sum;
    float   p, t, lp, l1p, inv_n;
    size_t  i, n;

    n = (size_t) rows * cols;
    inv_n = 1.0f / (float) n;
    sum = 0.0;

    for (i = 0; i < n; i++) {
        p = pred[i];
        t = target[i];
        lp = fmaxf(logf(p), LT_BCE_LOG_MIN);
        l1p = fmaxf(logf(1.0f - p), LT_BCE_LOG_MIN);
        sum -= (double) (t * lp + (1.0f - t) * l1p);
        grad[i] = inv_n * (p - t) / fmaxf((1.0f - p) * p, LT_BCE_EPS);
    }

    return (float) (sum / (double) n);
}


/*
 * Cross-entropy over logits, mean over rows.  With class indices the
 * row's loss is lse - z[t] and its gradient softmax - onehot; with
 * probability rows t it is sum(t) * lse - <t, z> and softmax * sum(t) - t
 * (the same thing when t is one-hot).
 */
static float
lt_cpu_loss_ce(const lt_backend *be, const float *logits,
    const int32_t *target_index, const float *target, float *grad, int rows,
    int cols)
{
    const float  *z, *t;
    double        sum;
    float        *g, max, se, lse, tsum, tz, inv_n, scale;
    int           r, j;

    inv_n = 1.0f / (float) rows;
    sum = 0.0;

    for (r = 0; r < rows; r++) {
        z = logits + (size_t) r * cols;
        g = grad + (size_t) r * cols;
        max = lt_row_max(z, cols);
        se = lt_row_exp(z, g, cols, max);
        lse = max + logf(se);

        if (target_index != NULL) {
            scale = inv_n / se;
            for (j = 0; j < cols; j++) {
                g[j] *= scale;
            }
            g[target_index[r]] -= inv_n;
            sum += (double) (lse - z[target_index[r]]);
            continue;
        }

        t = target + (size_t) r * cols;
        tsum = 0.0f;
        tz = 0.0f;
        for (j = 0; j < cols; j++) {
            tsum += t[j];
            tz += t[j] * z[j];
        }

        scale = inv_n * tsum / se;
        for (j = 0; j < cols; j++) {
            g[j] = g[j] * scale - inv_n * t[j];
        }
        sum += (double) (tsum * lse - tz);
    }

    return (float) (sum / (double) rows);
}


/*
 * torch.optim.SGD with dampening 0 and no Nesterov: g = grad + wd * p;
 * with momentum, b = g on the first step and momentum * b + g after;
 * p -= lr * (b or g).
 */
static void
lt_cpu_sgd(const lt_backend *be, const float *in, float *out,
    const float *grad, float *velocity, size_t n, float lr, float momentum,
    float weight_decay, int first_step)
{
    float   g;
    size_t  i;

    if (momentum == 0.0f) {
        for (i = 0; i < n; i++) {
            g = grad[i] + weight_decay * in[i];
            out[i] = in[i] - lr * g;
        }
        return;
    }

    for (i = 0; i < n; i++) {
        g = grad[i] + weight_decay * in[i];
        velocity[i] = first_step ? g : momentum * velocity[i] + g;
        out[i] = in[i] - lr * velocity[i];
    }
}


/*
 * torch.optim.Adam (L2 weight decay added to the gradient, not AdamW):
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 */
static void
lt_cpu_adam(const lt_backend *be, const float *in, float *out,
    const float *grad, float *m, float *v, size_t n, float lr, float beta1,
    float beta2, float eps, float weight_decay, int64_t step)
{
    float   g, step_size, inv_bc2_sqrt;
    size_t  i;

    step_size = (float) (lr / (1.0 - pow(beta1, (double) step)));
    inv_bc2_sqrt = (float) (1.0 / sqrt(1.0 - pow(beta2, (double) step)));

    for (i = 0; i < n; i++) {
        g = grad[i] + weight_decay * in[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        out[i] = in[i] - step_size * m[i] / (sqrtf(v[i]) * inv_bc2_sqrt + eps);
    }
}


static const lt_backend  lt_cpu_backend = {
    "cpu",
    lt_cpu_alloc,
    lt_cpu_free,
    NULL,
    NULL,
    lt_cpu_gemm,
    lt_cpu_add_bias,
    lt_cpu_sum_rows,
    lt_cpu_act_forward,
    lt_cpu_act_backward,
    lt_cpu_loss_mse,
    lt_cpu_loss_bce,
    lt_cpu_loss_ce,
    lt_cpu_sgd,
    lt_cpu_adam,
    NULL
};


const lt_backend *
lt_backend_cpu(void)
{
    return &lt_cpu_backend;
}
