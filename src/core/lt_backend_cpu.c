/*
 * lt_backend_cpu.c: the CPU backend's table, its buffers and its
 * elementwise ops; the products are in lt_cpu_gemm.c.
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

#include "lt_backend_cpu.h"
#include "lt_math.h"

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
