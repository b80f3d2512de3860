/*
 * lt_cuda_optim_ex.cu: the optimizers beyond plain SGD and Adam (SGD
 * with dampening / Nesterov, Adam with amsgrad, AdamW, RMSprop,
 * Adagrad), each kernel the loop of its CPU twin in lt_optim_cpu.c,
 * operation by operation; the per-step scalars (bias corrections, the
 * decayed rate) are computed on the host exactly as the CPU computes
 * them.  The state is laid out as lt_backend.h says, in blocks of n.
 * One thread reads an element's inputs before it writes its outputs, so
 * in == out and state_in == state_out are allowed.
 */
#include <math.h>

#include "lt_cuda.h"


static int
lt_optim_args(lt_cuda_ctx *c, const float *state_in, float *state_out,
    const char *what)
{
    if (state_in == NULL || state_out == NULL) {
        lt_cuda_check(c, cudaErrorInvalidValue, what);
        return 0;
    }

    return 1;
}


/* d = g + wd p; buf = d first, momentum buf + (1 - dampening) d after;
 * the step is d + momentum buf (Nesterov) or buf */
static __global__ void
lt_sgd_ex_kernel(const float *in, float *out, const float *grad,
    const float *state_in, float *state_out, size_t n, float lr,
    float momentum, float dampening, float weight_decay, int nesterov,
    int first_step)
{
    float  d, b;

    LT_CUDA_FOR(i, n) {
        d = grad[i] + weight_decay * in[i];
        b = first_step ? d
                       : momentum * state_in[i] + (1.0f - dampening) * d;
        state_out[i] = b;
        out[i] = in[i] - lr * (nesterov ? d + momentum * b : b);
    }
}


void
lt_cuda_sgd_ex(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float momentum, float dampening, float weight_decay,
    int nesterov, int first_step)
{
    lt_cuda_ctx  *c;

    c = lt_cuda_enter(be);

    if (n == 0
        || !lt_optim_args(c, state_in, state_out,
                          "sgd_ex: no momentum buffer"))
    {
        return;
    }

    lt_sgd_ex_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS), LT_CUDA_THREADS,
                       0, c->stream>>>(in, out, grad, state_in, state_out, n,
                                       lr, momentum, dampening, weight_decay,
                                       nesterov, first_step);
    lt_cuda_launched(c, "sgd_ex");
}


/* Adam (g += wd p) or AdamW (p *= keep); m by lerp, v as Adam's, and with
 * amsgrad the running maximum of v in the third block */
static __global__ void
lt_adam_ex_kernel(const float *in, float *out, const float *grad,
    const float *state_in, float *state_out, size_t n, float beta1,
    float beta2, float eps, float weight_decay, int decoupled, int amsgrad,
    float step_size, float bc2_sqrt, float keep)
{
    const float  *m_in, *v_in, *x_in;
    float        *m_out, *v_out, *x_out;
    float         g, p, mi, vi, vmax;

    m_in = state_in;
    v_in = state_in + n;
    x_in = state_in + 2 * n;
    m_out = state_out;
    v_out = state_out + n;
    x_out = state_out + 2 * n;

    LT_CUDA_FOR(i, n) {
        g = grad[i];
        p = in[i];

        if (decoupled) {
            p *= keep;

        } else {
            g += weight_decay * p;
        }

        mi = m_in[i] + (1.0f - beta1) * (g - m_in[i]);
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


void
lt_cuda_adam_ex(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float beta1, float beta2, float eps, float weight_decay,
    int decoupled, int amsgrad, int64_t step)
{
    lt_cuda_ctx  *c;
    float         step_size, bc2_sqrt, keep;

    c = lt_cuda_enter(be);

    if (n == 0
        || !lt_optim_args(c, state_in, state_out, "adam_ex: no state"))
    {
        return;
    }

    step_size = (float) (lr / (1.0 - pow(beta1, (double) step)));
    bc2_sqrt = (float) sqrt(1.0 - pow(beta2, (double) step));
    keep = 1.0f - lr * weight_decay;

    lt_adam_ex_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS), LT_CUDA_THREADS,
                        0, c->stream>>>(in, out, grad, state_in, state_out,
                                        n, beta1, beta2, eps, weight_decay,
                                        decoupled, amsgrad, step_size,
                                        bc2_sqrt, keep);
    lt_cuda_launched(c, "adam_ex");
}


/*
 * g += wd p; sq = alpha sq + (1 - alpha) g^2; centered: ga = lerp(ga, g,
 * 1 - alpha), avg = sqrt(sq - ga^2) + eps, else sqrt(sq) + eps; with
 * momentum buf = momentum buf + g / avg, p -= lr buf, else p -= lr g /
 * avg.  buf_in NULL: no momentum; ga_in NULL: not centered.
 */
static __global__ void
lt_rmsprop_kernel(const float *in, float *out, const float *grad,
    const float *sq_in, float *sq_out, const float *buf_in, float *buf_out,
    const float *ga_in, float *ga_out, size_t n, float lr, float alpha,
    float eps, float weight_decay, float momentum)
{
    float  g, sq, ga, avg, b;

    LT_CUDA_FOR(i, n) {
        g = grad[i] + weight_decay * in[i];
        sq = alpha * sq_in[i] + (1.0f - alpha) * g * g;
        sq_out[i] = sq;

        if (ga_in != NULL) {
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


void
lt_cuda_rmsprop(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float alpha, float eps, float weight_decay, float momentum,
    int centered)
{
    const float  *buf_in, *ga_in;
    float        *buf_out, *ga_out;
    lt_cuda_ctx  *c;
    size_t        next;

    c = lt_cuda_enter(be);

    if (n == 0
        || !lt_optim_args(c, state_in, state_out, "rmsprop: no state"))
    {
        return;
    }

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

    lt_rmsprop_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS), LT_CUDA_THREADS,
                        0, c->stream>>>(in, out, grad, state_in, state_out,
                                        buf_in, buf_out, ga_in, ga_out, n,
                                        lr, alpha, eps, weight_decay,
                                        momentum);
    lt_cuda_launched(c, "rmsprop");
}


/* g += wd p; sum += g^2; p -= clr g / (sqrt(sum) + eps) */
static __global__ void
lt_adagrad_kernel(const float *in, float *out, const float *grad,
    const float *state_in, float *state_out, size_t n, float clr,
    float weight_decay, float eps)
{
    float  g, s;

    LT_CUDA_FOR(i, n) {
        g = grad[i] + weight_decay * in[i];
        s = state_in[i] + g * g;
        state_out[i] = s;
        out[i] = in[i] - clr * (g / (sqrtf(s) + eps));
    }
}


void
lt_cuda_adagrad(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float lr_decay, float weight_decay, float eps, int64_t step)
{
    lt_cuda_ctx  *c;
    float         clr;

    c = lt_cuda_enter(be);

    if (n == 0
        || !lt_optim_args(c, state_in, state_out, "adagrad: no state"))
    {
        return;
    }

    clr = (float) (lr / (1.0 + (double) (step - 1) * lr_decay));

    lt_adagrad_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS), LT_CUDA_THREADS,
                        0, c->stream>>>(in, out, grad, state_in, state_out,
                                        n, clr, weight_decay, eps);
    lt_cuda_launched(c, "adagrad");
}
