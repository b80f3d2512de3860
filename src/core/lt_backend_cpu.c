/*
 * lt_backend_cpu.c: the CPU backend, OpenBLAS for large products and
 * plain loops for everything else.
 *
 * No op allocates: every buffer comes from the caller's workspace.  The
 * activations, losses and optimizers follow PyTorch's definitions so a
 * model trained here matches the same model trained with torch.nn.
 */
/*
 * The elementwise loops here are memory-bound only once vectorized, and
 * -O2 (the flags nginx builds the module with) vectorizes no loop whose
 * trip count is unknown.  Nothing here reads floating-point exception
 * flags or errno, so trapping math and math errno can go too.
 * clang vectorizes these loops at -O2 already.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("tree-vectorize", "vect-cost-model=dynamic", \
                      "no-math-errno", \
                      "no-trapping-math")
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "lt_backend_cpu.h"
#include "lt_math.h"

/*
 * Below this many multiply-adds (m * n * k) a plain loop beats the BLAS
 * call, whose dispatch and argument handling cost 20-100 ns whatever the
 * size; above it OpenBLAS's kernels win quickly (bench/gemm_threshold.c
 * measures both: at 40 MACs the loop takes ~17 ns against ~22 ns, at 256
 * MACs BLAS is ahead).  On the XOR net (2-20-1) the loops make the whole
 * train step 2.4x faster than BLAS calls do (180 ns against 430 ns).
 */
#define LT_CPU_SMALL_GEMM  128

/* Below this length a dot product costs more in loop overhead than the
 * strided alternative (see lt_cpu_gemm_small_bt). */
#define LT_CPU_SHORT_DOT   8

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


static void
lt_cpu_copy(const lt_backend *be, void *dst, const void *src, size_t bytes)
{
    memcpy(dst, src, bytes);
}


/* C = beta * C, reading nothing when beta is 0 (BLAS semantics: C may
 * hold garbage, even NaN, then). */
static void
lt_cpu_scale_rows(float *c, int ldc, int m, int n, float beta)
{
    float  *row;
    int     i, j;

    if (beta == 1.0f) {
        return;
    }

    for (i = 0; i < m; i++) {
        row = c + (size_t) i * ldc;

        for (j = 0; j < n; j++) {
            row[j] = beta == 0.0f ? 0.0f : beta * row[j];
        }
    }
}


/*
 * The small products, C += alpha * op(A) op(B) after C was scaled.  Row i
 * of op(A) is read at a + i * ai with stride as: the transpose only
 * changes those two numbers, so no branch sits inside the loops.
 */

/* op(B) = B: rows of B are contiguous, so accumulate scaled rows of B
 * into row i of C (the inner loop vectorizes). */
static void
lt_cpu_gemm_small_bn(int m, int n, int k, float alpha, const float *a,
    size_t ai, size_t as, const float *b, int ldb, float *c, int ldc)
{
    const float  *brow;
    float        *crow, aip;
    int           i, j, p;

    for (i = 0; i < m; i++) {
        crow = c + (size_t) i * ldc;

        for (p = 0; p < k; p++) {
            aip = alpha * a[i * ai + p * as];
            brow = b + (size_t) p * ldb;

            for (j = 0; j < n; j++) {
                crow[j] += aip * brow[j];
            }
        }
    }
}


/* A dot product in four independent sums: the adds overlap in the
 * pipeline where one running sum would wait on itself. */
static float
lt_cpu_dot(const float *x, size_t xs, const float *y, int k)
{
    float  s0, s1, s2, s3;
    int    p;

    s0 = s1 = s2 = s3 = 0.0f;

    for (p = 0; p + 4 <= k; p += 4) {
        s0 += x[p * xs] * y[p];
        s1 += x[(p + 1) * xs] * y[p + 1];
        s2 += x[(p + 2) * xs] * y[p + 2];
        s3 += x[(p + 3) * xs] * y[p + 3];
    }

    for ( ; p < k; p++) {
        s0 += x[p * xs] * y[p];
    }

    return (s0 + s1) + (s2 + s3);
}


/*
 * op(B) = B^T: column j of op(B) is row j of B.  For a long k each
 * element of C is a dot product over a contiguous row of B; for a short
 * one (a Linear with 2 inputs) the dot products are too short to pay for
 * their loop, and walking p outside with a strided j inside is faster.
 */
static void
lt_cpu_gemm_small_bt(int m, int n, int k, float alpha, const float *a,
    size_t ai, size_t as, const float *b, int ldb, float *c, int ldc)
{
    const float  *arow;
    float        *crow, aip;
    int           i, j, p;

    for (i = 0; i < m; i++) {
        arow = a + i * ai;
        crow = c + (size_t) i * ldc;

        if (k >= LT_CPU_SHORT_DOT) {
            for (j = 0; j < n; j++) {
                crow[j] += alpha * lt_cpu_dot(arow, as,
                                              b + (size_t) j * ldb, k);
            }
            continue;
        }

        for (p = 0; p < k; p++) {
            aip = alpha * arow[p * as];

            for (j = 0; j < n; j++) {
                crow[j] += aip * b[(size_t) j * ldb + p];
            }
        }
    }
}


static void
lt_cpu_gemm_small(int trans_a, int trans_b, int m, int n, int k,
    float alpha, const float *a, int lda, const float *b, int ldb,
    float beta, float *c, int ldc)
{
    size_t  ai, as;

    ai = trans_a ? 1 : (size_t) lda;
    as = trans_a ? (size_t) lda : 1;

    lt_cpu_scale_rows(c, ldc, m, n, beta);

    if (trans_b) {
        lt_cpu_gemm_small_bt(m, n, k, alpha, a, ai, as, b, ldb, c, ldc);

    } else {
        lt_cpu_gemm_small_bn(m, n, k, alpha, a, ai, as, b, ldb, c, ldc);
    }
}


/*
 * A product with one row or one column of output is a matrix-vector
 * product, and cblas_sgemv does it several times faster than
 * cblas_sgemm, which packs its operands for a blocked kernel first
 * (784x256 at batch 1: 9 us against 63 us).
 */
static int
lt_cpu_gemv(int trans_a, int trans_b, int m, int n, int k, float alpha,
    const float *a, int lda, const float *b, int ldb, float beta, float *c,
    int ldc)
{
    if (m == 1) {
        /* c[1, n] = a[1, k] op(B): op(B)^T times the vector a */
        cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans,
                    trans_b ? n : k, trans_b ? k : n, alpha, b, ldb,
                    a, trans_a ? lda : 1, beta, c, 1);
        return 1;
    }

    if (n == 1) {
        /* c[m, 1] = op(A) b[k, 1]: column c with stride ldc */
        cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_a ? k : m, trans_a ? m : k, alpha, a, lda,
                    b, trans_b ? 1 : ldb, beta, c, ldc);
        return 1;
    }

    return 0;
}


static void
lt_cpu_gemm(const lt_backend *be, int trans_a, int trans_b, int m, int n,
    int k, float alpha, const float *a, int lda, const float *b, int ldb,
    float beta, float *c, int ldc)
{
    if ((double) m * n * k < LT_CPU_SMALL_GEMM) {
        lt_cpu_gemm_small(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                          beta, c, ldc);
        return;
    }

    if (lt_cpu_gemv(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta,
                    c, ldc))
    {
        return;
    }

    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                a, lda, b, ldb, beta, c, ldc);
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
            y[i] = lt_tanh(x[i]);
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

    default:
        /* those with arguments: act_arg_forward */
        lt_cpu_act_arg_forward(be, act, 0.0f, 0.0f, x, y, n);
        break;
    }
}


/* Softmax: dx = y * (dy - <dy, y>), per row. */
static void
lt_cpu_softmax_backward(const float *y, const float *dy, float *dx,
    int rows, int cols)
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
            s += dyr[j] * yr[j];
        }

        for (j = 0; j < cols; j++) {
            dxr[j] = yr[j] * (dyr[j] - s);
        }
    }
}


/* Log-softmax: dx = dy - softmax * sum(dy), softmax = exp(y), per row. */
static void
lt_cpu_logsoftmax_backward(const float *y, const float *dy, float *dx,
    int rows, int cols)
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
            s += dyr[j];
        }

        for (j = 0; j < cols; j++) {
            dxr[j] = dyr[j] - expf(yr[j]) * s;
        }
    }
}


static void
lt_cpu_act_backward(const lt_backend *be, lt_act act, const float *x,
    const float *y, const float *dy, float *dx, int rows, int cols)
{
    size_t  i, n;
    float   d;

    n = (size_t) rows * cols;

    switch (act) {

    case LT_ACT_RELU:
        /* dy is loaded unconditionally so the select vectorizes */
        for (i = 0; i < n; i++) {
            d = dy[i];
            dx[i] = x[i] > 0.0f ? d : 0.0f;
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
        lt_cpu_softmax_backward(y, dy, dx, rows, cols);
        break;

    case LT_ACT_LOGSOFTMAX:
        lt_cpu_logsoftmax_backward(y, dy, dx, rows, cols);
        break;

    default:
        lt_cpu_act_arg_backward(be, act, 0.0f, 0.0f, x, y, dy, dx, n);
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
    const float *grad, const float *velocity_in, float *velocity_out,
    size_t n, float lr, float momentum, float weight_decay, int first_step)
{
    float   g, b;
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
        b = first_step ? g : momentum * velocity_in[i] + g;
        velocity_out[i] = b;
        out[i] = in[i] - lr * b;
    }
}


/*
 * torch.optim.Adam (L2 weight decay added to the gradient, not AdamW):
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 */
static void
lt_cpu_adam(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *m_in, const float *v_in, float *m_out,
    float *v_out, size_t n, float lr, float beta1, float beta2, float eps,
    float weight_decay, int64_t step)
{
    float   g, mi, vi, step_size, inv_bc2_sqrt;
    size_t  i;

    step_size = (float) (lr / (1.0 - pow(beta1, (double) step)));
    inv_bc2_sqrt = (float) (1.0 / sqrt(1.0 - pow(beta2, (double) step)));

    for (i = 0; i < n; i++) {
        g = grad[i] + weight_decay * in[i];
        mi = beta1 * m_in[i] + (1.0f - beta1) * g;
        vi = beta2 * v_in[i] + (1.0f - beta2) * g * g;
        m_out[i] = mi;
        v_out[i] = vi;
        out[i] = in[i] - step_size * mi / (sqrtf(vi) * inv_bc2_sqrt + eps);
    }
}


static const lt_backend  lt_cpu_backend = {
    .name = "cpu",
    .alloc = lt_cpu_alloc,
    .free = lt_cpu_free,
    .to_device = NULL,          /* host memory: data is used in place */
    .to_host = NULL,
    .copy = lt_cpu_copy,
    .gemm = lt_cpu_gemm,
    .add_bias = lt_cpu_add_bias,
    .sum_rows = lt_cpu_sum_rows,
    .act_forward = lt_cpu_act_forward,
    .act_backward = lt_cpu_act_backward,
    .loss_mse = lt_cpu_loss_mse,
    .loss_bce = lt_cpu_loss_bce,
    .loss_ce = lt_cpu_loss_ce,
    .sgd = lt_cpu_sgd,
    .adam = lt_cpu_adam,
    .loss_smooth_l1 = lt_cpu_loss_smooth_l1,
    .loss_bce_logits = lt_cpu_loss_bce_logits,
    .loss_nll = lt_cpu_loss_nll,
    .loss_ce_smooth = lt_cpu_loss_ce_smooth,
    .sum_squares = lt_cpu_sum_squares,
    .scale = lt_cpu_scale,
    .sgd_ex = lt_cpu_sgd_ex,
    .adam_ex = lt_cpu_adam_ex,
    .rmsprop = lt_cpu_rmsprop,
    .adagrad = lt_cpu_adagrad,
    .act_arg_forward = lt_cpu_act_arg_forward,
    .act_arg_backward = lt_cpu_act_arg_backward,
    .im2col = lt_cpu_im2col,
    .col2im = lt_cpu_col2im,
    .im2row = lt_cpu_im2row,
    .transpose = lt_cpu_transpose,
    .channel_bias = lt_cpu_channel_bias,
    .channel_sum = lt_cpu_channel_sum,
    .pool_forward = lt_cpu_pool_forward,
    .pool_backward = lt_cpu_pool_backward,
    .batchnorm_forward = lt_cpu_batchnorm_forward,
    .batchnorm_backward = lt_cpu_batchnorm_backward,
    .batchnorm_running = lt_cpu_batchnorm_running,
    .layernorm_forward = lt_cpu_layernorm_forward,
    .layernorm_backward = lt_cpu_layernorm_backward,
    .embedding_forward = lt_cpu_embedding_forward,
    .embedding_backward = lt_cpu_embedding_backward,
    .dropout_forward = lt_cpu_dropout_forward,
    .mul = lt_cpu_mul,
    .ctx = NULL
};


const lt_backend *
lt_backend_cpu(void)
{
    return &lt_cpu_backend;
}
