/*
 * lt_loss_cpu.c: the CPU backend's losses beyond MSE, BCE and plain
 * cross-entropy: L1 / SmoothL1 / Huber, BCE with logits, NLL and
 * cross-entropy with label smoothing, each as torch.nn.functional
 * defines it with reduction='mean'.  Sums run in double so a large
 * batch's mean does not drift with the order of the rows.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("tree-vectorize", "vect-cost-model=dynamic", \
                      "no-math-errno", \
                      "no-trapping-math")
#endif

#include <math.h>

#include "lt_backend_cpu.h"


/*
 * smooth_l1: 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere;
 * its derivative d / beta or sign(d), with sign(0) = 0 as torch's
 * l1_loss (beta 0, which torch turns into l1_loss, takes that branch).
 */
float
lt_cpu_loss_smooth_l1(const lt_backend *be, const float *pred,
    const float *target, float *grad, int rows, int cols, float beta,
    float scale)
{
    double  sum;
    float   d, a, g, l, inv_n;
    size_t  i, n;

    n = (size_t) rows * cols;
    inv_n = scale / (float) n;
    sum = 0.0;

    for (i = 0; i < n; i++) {
        d = pred[i] - target[i];
        a = fabsf(d);

        if (a < beta) {
            l = 0.5f * d * d / beta;
            g = d / beta;

        } else {
            l = a - 0.5f * beta;
            g = d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f);
        }

        sum += (double) l;
        grad[i] = inv_n * g;
    }

    return (float) (scale * (sum / (double) n));
}


/* log(1 + exp(x)) without overflow, and the logistic function */
static float
lt_softplus(float x)
{
    return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}


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


/*
 * binary_cross_entropy_with_logits: pw t softplus(-x) + (1 - t)
 * softplus(x), whose derivative is (1 - t) sigmoid(x) - pw t sigmoid(-x).
 */
float
lt_cpu_loss_bce_logits(const lt_backend *be, const float *logits,
    const float *target, const float *pos_weight, int npw, float *grad,
    int rows, int cols)
{
    double  sum;
    float   x, t, pw, s, inv_n;
    size_t  i, n;

    n = (size_t) rows * cols;
    inv_n = 1.0f / (float) n;
    sum = 0.0;

    for (i = 0; i < n; i++) {
        x = logits[i];
        t = target[i];
        pw = npw == 0 ? 1.0f
                      : pos_weight[npw == 1 ? 0 : (int) (i % (size_t) cols)];
        s = lt_sigmoid(x);

        sum += (double) (pw * t * lt_softplus(-x)
                         + (1.0f - t) * lt_softplus(x));
        grad[i] = inv_n * ((1.0f - t) * s - pw * t * (1.0f - s));
    }

    return (float) (sum / (double) n);
}


float
lt_cpu_loss_nll(const lt_backend *be, const float *logp,
    const int32_t *target_index, float *grad, int rows, int cols)
{
    double  sum;
    float   inv_n;
    size_t  i, n;
    int     r, t;

    n = (size_t) rows * cols;
    inv_n = 1.0f / (float) rows;
    sum = 0.0;

    for (i = 0; i < n; i++) {
        grad[i] = 0.0f;
    }

    for (r = 0; r < rows; r++) {
        t = target_index[r];
        sum -= (double) logp[(size_t) r * cols + t];
        grad[(size_t) r * cols + t] = -inv_n;
    }

    return (float) (sum / (double) rows);
}


/*
 * cross_entropy with label_smoothing e: the target becomes q = (1 - e)
 * t + e / C (t one-hot for an index), the row's loss -<q, log_softmax(z)>
 * = sum(q) lse - <q, z>, its gradient softmax * sum(q) - q.
 */
float
lt_cpu_loss_ce_smooth(const lt_backend *be, const float *logits,
    const int32_t *target_index, const float *target, float label_smoothing,
    float *grad, int rows, int cols)
{
    const float  *z, *t;
    double        sum;
    float        *g, max, se, lse, q, qsum, qz, zsum, inv_n, keep, spread;
    int           r, j;

    inv_n = 1.0f / (float) rows;
    keep = 1.0f - label_smoothing;
    spread = label_smoothing / (float) cols;
    sum = 0.0;

    for (r = 0; r < rows; r++) {
        z = logits + (size_t) r * cols;
        g = grad + (size_t) r * cols;

        max = z[0];
        for (j = 1; j < cols; j++) {
            max = z[j] > max ? z[j] : max;
        }

        se = 0.0f;
        zsum = 0.0f;
        for (j = 0; j < cols; j++) {
            g[j] = expf(z[j] - max);
            se += g[j];
            zsum += z[j];
        }

        lse = max + logf(se);

        if (target_index != NULL) {
            /* q sums to 1 */
            qz = keep * z[target_index[r]] + spread * zsum;
            for (j = 0; j < cols; j++) {
                g[j] = inv_n * (g[j] / se - spread);
            }
            g[target_index[r]] -= inv_n * keep;
            sum += (double) (lse - qz);
            continue;
        }

        t = target + (size_t) r * cols;
        qsum = 0.0f;
        qz = 0.0f;
        for (j = 0; j < cols; j++) {
            q = keep * t[j] + spread;
            qsum += q;
            qz += q * z[j];
        }

        for (j = 0; j < cols; j++) {
            q = keep * t[j] + spread;
            g[j] = inv_n * (g[j] / se * qsum - q);
        }

        sum += (double) (qsum * lse - qz);
    }

    return (float) (sum / (double) rows);
}
