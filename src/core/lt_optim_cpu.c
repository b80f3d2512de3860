/*
 * lt_optim_cpu.c: the CPU backend's optimizers beyond plain SGD and
 * Adam (SGD with dampening / Nesterov, Adam with amsgrad, AdamW,
 * RMSprop, Adagrad) and the two ops of gradient clipping.  Each loop
 * follows torch.optim's single-tensor code, operation by operation, so
 * float32 results agree with PyTorch's to rounding.  Every op reads its
 * inputs before writing an output element, so in == out is allowed.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("tree-vectorize", "vect-cost-model=dynamic", \
                      "no-math-errno", \
                      "no-trapping-math")
#endif

#include <math.h>

#include "lt_backend_cpu.h"


double
lt_cpu_sum_squares(const lt_backend *be, const float *x, size_t n)
{
    double  s;
    size_t  i;

    s = 0.0;
    for (i = 0; i < n; i++) {
        s += (double) x[i] * x[i];
    }

    return s;
}


void
lt_cpu_scale(const lt_backend *be, float *x, size_t n, float alpha)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        x[i] *= alpha;
    }
}


/*
 * d = g + wd p; buf = d on the first step, momentum buf + (1 - dampening)
 * d after; the step is d + momentum buf (Nesterov) or buf.
 */
void
lt_cpu_sgd_ex(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float momentum, float dampening, float weight_decay,
    int nesterov, int first_step)
{
    float   d, b;
    size_t  i;

    for (i = 0; i < n; i++) {
        d = grad[i] + weight_decay * in[i];
        b = first_step ? d
                       : momentum * state_in[i] + (1.0f - dampening) * d;
        state_out[i] = b;
        out[i] = in[i] - lr * (nesterov ? d + momentum * b : b);
    }
}


/*
 * Adam: g += wd p; AdamW instead p *= 1 - lr wd.  m and v as Adam's; with
 * amsgrad the denominator uses the running maximum of v.
 */
void
lt_cpu_adam_ex(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float beta1, float beta2, float eps, float weight_decay,
    int decoupled, int amsgrad, int64_t step)
{
    const float  *m_in, *v_in, *x_in;
    float        *m_out, *v_out, *x_out;
    float         g, p, mi, vi, vmax, step_size, bc2_sqrt, keep;
    size_t        i;

    m_in = state_in;
    v_in = state_in + n;
    x_in = state_in + 2 * n;
    m_out = state_out;
    v_out = state_out + n;
    x_out = state_out + 2 * n;

    step_size = (float) (lr / (1.0 - pow(beta1, (double) step)));
    bc2_sqrt = (float) sqrt(1.0 - pow(beta2, (double) step));
    keep = 1.0f - lr * weight_decay;

    for (i = 0; i < n; i++) {
        g = grad[i];
        p = in[i];

        if (decoupled) {
            p *= keep;

        } else {
            g += weight_decay * p;
        }

        mi = m_in[i] + (1.0f - beta1) * (g - m_in[i]);   /* lerp */
        vi = beta2 * v_in[i] + (1.0f - beta2) * g * g;
        m_out[i] = mi;
        v_out[i] = vi;

        if (amsgrad) {
            vmax = x_in[i] > vi ? x_in[i] : vi;
            x_out[i] = vmax;
            vi = vmax;
        }

        out[i] = p - step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
    }
}


/*
 * g += wd p; sq = alpha sq + (1 - alpha) g^2; centered: ga = lerp(ga, g,
 * 1 - alpha), avg = sqrt(sq - ga^2), else sqrt(sq); avg += eps; with
 * momentum buf = momentum buf + g / avg, p -= lr buf; else p -= lr g /
 * avg.
 */
void
lt_cpu_rmsprop(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float alpha, float eps, float weight_decay, float momentum,
    int centered)
{
    const float  *sq_in, *buf_in, *ga_in;
    float        *sq_out, *buf_out, *ga_out;
    float         g, sq, ga, avg, b;
    size_t        i, next;

    sq_in = state_in;
    sq_out = state_out;
    next = n;
    buf_in = NULL;
    buf_out = NULL;
    ga_in = NULL;
    ga_out = NULL;

    if (momentum > 0.0f) {
        buf_in = state_in + next;
        buf_out = state_out + next;
        next += n;
    }

    if (centered) {
        ga_in = state_in + next;
        ga_out = state_out + next;
    }

    for (i = 0; i < n; i++) {
        g = grad[i] + weight_decay * in[i];
        sq = alpha * sq_in[i] + (1.0f - alpha) * g * g;
        sq_out[i] = sq;

        if (centered) {
            ga = ga_in[i] + (1.0f - alpha) * (g - ga_in[i]);
            ga_out[i] = ga;
            avg = sqrtf(sq - ga * ga) + eps;

        } else {
            avg = sqrtf(sq) + eps;
        }

        if (buf_in != NULL) {
            b = momentum * buf_in[i] + g / avg;
            buf_out[i] = b;
            out[i] = in[i] - lr * b;

        } else {
            out[i] = in[i] - lr * (g / avg);
        }
    }
}


/* g += wd p; clr = lr / (1 + (step - 1) lr_decay); sum += g^2;
 * p -= clr g / (sqrt(sum) + eps). */
void
lt_cpu_adagrad(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float lr_decay, float weight_decay, float eps, int64_t step)
{
    float   g, s, clr;
    size_t  i;

    clr = (float) (lr / (1.0 + (double) (step - 1) * lr_decay));

    for (i = 0; i < n; i++) {
        g = grad[i] + weight_decay * in[i];
        s = state_in[i] + g * g;
        state_out[i] = s;
        out[i] = in[i] - clr * (g / (sqrtf(s) + eps));
    }
}
