/*
 * lt_cuda_optim.cu: SGD and Adam, elementwise over n parameters, with
 * the CPU backend's formulas (torch.optim's).  in == out is allowed: each
 * element is read before it is written, by the same thread; so is state
 * read from one buffer and written to another.
 */
#include <math.h>

#include "lt_cuda.h"


/* g = grad + wd * p; p -= lr * g */
static __global__ void
lt_sgd_kernel(const float *in, float *out, const float *grad, size_t n,
    float lr, float weight_decay)
{
    float  g;

    LT_CUDA_FOR(i, n) {
        g = grad[i] + weight_decay * in[i];
        out[i] = in[i] - lr * g;
    }
}


/* b = g on the first step, momentum * b + g after; p -= lr * b
 * (dampening 0, no Nesterov) */
static __global__ void
lt_sgd_momentum_kernel(const float *in, float *out, const float *grad,
    const float *velocity_in, float *velocity_out, size_t n, float lr,
    float momentum, float weight_decay, int first_step)
{
    float  g, b;

    LT_CUDA_FOR(i, n) {
        g = grad[i] + weight_decay * in[i];
        b = first_step ? g : momentum * velocity_in[i] + g;
        velocity_out[i] = b;
        out[i] = in[i] - lr * b;
    }
}


void
lt_cuda_sgd(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *velocity_in, float *velocity_out,
    size_t n, float lr, float momentum, float weight_decay, int first_step)
{
    lt_cuda_ctx  *c;
    unsigned      blocks;

    c = lt_cuda_enter(be);

    if (n == 0) {
        return;
    }

    blocks = lt_cuda_blocks(n, LT_CUDA_THREADS);

    if (momentum == 0.0f) {
        lt_sgd_kernel<<<blocks, LT_CUDA_THREADS, 0, c->stream>>>(
            in, out, grad, n, lr, weight_decay);

    } else if (velocity_in == NULL || velocity_out == NULL) {
        lt_cuda_check(c, cudaErrorInvalidValue, "sgd: momentum without"
                      " a velocity buffer");
        return;

    } else {
        lt_sgd_momentum_kernel<<<blocks, LT_CUDA_THREADS, 0, c->stream>>>(
            in, out, grad, velocity_in, velocity_out, n, lr, momentum,
            weight_decay, first_step);
    }

    lt_cuda_launched(c, "sgd");
}


/* torch.optim.Adam, L2 weight decay added to the gradient (not AdamW):
 * p -= step_size * m / (sqrt(v) * inv_bc2_sqrt + eps) */
static __global__ void
lt_adam_kernel(const float *in, float *out, const float *grad,
    const float *m_in, const float *v_in, float *m_out, float *v_out,
    size_t n, float beta1, float beta2, float eps, float weight_decay,
    float step_size, float inv_bc2_sqrt)
{
    float  g, mi, vi;

    LT_CUDA_FOR(i, n) {
        g = grad[i] + weight_decay * in[i];
        mi = beta1 * m_in[i] + (1.0f - beta1) * g;
        vi = beta2 * v_in[i] + (1.0f - beta2) * g * g;
        m_out[i] = mi;
        v_out[i] = vi;
        out[i] = in[i] - step_size * mi / (sqrtf(vi) * inv_bc2_sqrt + eps);
    }
}


void
lt_cuda_adam(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *m_in, const float *v_in, float *m_out,
    float *v_out, size_t n, float lr, float beta1, float beta2, float eps,
    float weight_decay, int64_t step)
{
    lt_cuda_ctx  *c;
    float         step_size, inv_bc2_sqrt;

    c = lt_cuda_enter(be);

    if (n == 0) {
        return;
    }

    /* the bias corrections, in double on the host as the CPU backend */
    step_size = (float) (lr / (1.0 - pow(beta1, (double) step)));
    inv_bc2_sqrt = (float) (1.0 / sqrt(1.0 - pow(beta2, (double) step)));

    lt_adam_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS), LT_CUDA_THREADS, 0,
                     c->stream>>>(in, out, grad, m_in, v_in, m_out, v_out, n,
                                  beta1, beta2, eps, weight_decay, step_size,
                                  inv_bc2_sqrt);
    lt_cuda_launched(c, "adam");
}
