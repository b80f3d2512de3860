/*
 * lt_cuda_act_arg.cu: the activations with arguments (GELU exact and
 * tanh, LeakyReLU, ELU, SiLU, Softplus), Dropout's mask and the
 * elementwise product, each after its CPU twin in
 * lt_backend_cpu_layers.c.
 *
 * Dropout's mask is the CPU's, bit for bit: splitmix64 is a counter
 * generator (its i-th output mixes seed + (i + 1) * its increment), so
 * each thread computes its own element's draw with lt_rand.h's
 * arithmetic, and a step's mask does not depend on the device.
 */
#include <math.h>

#include "lt_cuda.h"

#define LT_SQRT1_2       0.70710678118654752440f
#define LT_INV_SQRT_2PI  0.39894228040143267794f
#define LT_GELU_K        0.79788456080286535588f   /* sqrt(2 / pi) */
#define LT_GELU_C        0.044715f

/* lt_rand.h's splitmix64 constants */
#define LT_SM_GAMMA      0x9e3779b97f4a7c15ULL
#define LT_SM_MUL1       0xbf58476d1ce4e5b9ULL
#define LT_SM_MUL2       0x94d049bb133111ebULL


static __device__ __forceinline__ float
lt_sigmoidf(float x)
{
    return x >= 0.0f ? 1.0f / (1.0f + expf(-x))
                     : expf(x) / (1.0f + expf(x));
}


static __global__ void
lt_act_arg_forward_kernel(lt_act act, float a, float b, const float *x,
    float *y, size_t n)
{
    float  v;

    LT_CUDA_FOR(i, n) {
        v = x[i];

        switch (act) {
        case LT_ACT_GELU:
            y[i] = 0.5f * v * (1.0f + erff(v * LT_SQRT1_2));
            break;
        case LT_ACT_GELU_TANH:
            y[i] = 0.5f * v * (1.0f + tanhf(LT_GELU_K
                                            * (v + LT_GELU_C * v * v * v)));
            break;
        case LT_ACT_LEAKY_RELU:
            y[i] = v > 0.0f ? v : a * v;
            break;
        case LT_ACT_ELU:
            y[i] = v > 0.0f ? v : a * expm1f(v);
            break;
        case LT_ACT_SILU:
            y[i] = v / (1.0f + expf(-v));
            break;
        case LT_ACT_SOFTPLUS:
            y[i] = v * a > b ? v : log1pf(expf(v * a)) / a;
            break;
        default:
            break;
        }
    }
}


static __global__ void
lt_act_arg_backward_kernel(lt_act act, float a, float b, const float *x,
    const float *y, const float *dy, float *dx, size_t n)
{
    float  v, t, s;

    LT_CUDA_FOR(i, n) {
        v = x[i];

        switch (act) {
        case LT_ACT_GELU:
            dx[i] = dy[i] * (0.5f * (1.0f + erff(v * LT_SQRT1_2))
                             + v * LT_INV_SQRT_2PI * expf(-0.5f * v * v));
            break;
        case LT_ACT_GELU_TANH:
            t = tanhf(LT_GELU_K * (v + LT_GELU_C * v * v * v));
            dx[i] = dy[i] * (0.5f * (1.0f + t)
                             + 0.5f * v * (1.0f - t * t) * LT_GELU_K
                               * (1.0f + 3.0f * LT_GELU_C * v * v));
            break;
        case LT_ACT_LEAKY_RELU:
            dx[i] = v > 0.0f ? dy[i] : a * dy[i];
            break;
        case LT_ACT_ELU:
            /* y + alpha = alpha * exp(x) where x <= 0 */
            dx[i] = v > 0.0f ? dy[i] : dy[i] * (y[i] + a);
            break;
        case LT_ACT_SILU:
            s = lt_sigmoidf(v);
            dx[i] = dy[i] * s * (1.0f + v * (1.0f - s));
            break;
        case LT_ACT_SOFTPLUS:
            dx[i] = v * a > b ? dy[i] : dy[i] * lt_sigmoidf(v * a);
            break;
        default:
            break;
        }
    }
}


static int
lt_act_has_arg(lt_act act)
{
    return act == LT_ACT_GELU || act == LT_ACT_GELU_TANH
           || act == LT_ACT_LEAKY_RELU || act == LT_ACT_ELU
           || act == LT_ACT_SILU || act == LT_ACT_SOFTPLUS;
}


void
lt_cuda_act_arg_forward(const lt_backend *be, lt_act act, float a, float b,
    const float *x, float *y, size_t n)
{
    lt_cuda_ctx  *c;

    c = lt_cuda_enter(be);

    if (n == 0) {
        return;
    }

    if (!lt_act_has_arg(act)) {
        lt_cuda_check(c, cudaErrorInvalidValue, "act_arg_forward: not an "
                      "activation with arguments");
        return;
    }

    lt_act_arg_forward_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS),
                                LT_CUDA_THREADS, 0, c->stream>>>(
        act, a, b, x, y, n);
    lt_cuda_launched(c, "act_arg_forward");
}


void
lt_cuda_act_arg_backward(const lt_backend *be, lt_act act, float a,
    float b, const float *x, const float *y, const float *dy, float *dx,
    size_t n)
{
    lt_cuda_ctx  *c;

    c = lt_cuda_enter(be);

    if (n == 0) {
        return;
    }

    if (!lt_act_has_arg(act)) {
        lt_cuda_check(c, cudaErrorInvalidValue, "act_arg_backward: not an "
                      "activation with arguments");
        return;
    }

    lt_act_arg_backward_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS),
                                 LT_CUDA_THREADS, 0, c->stream>>>(
        act, a, b, x, y, dy, dx, n);
    lt_cuda_launched(c, "act_arg_backward");
}


/* lt_rand_unit() of draw number i (from 0) of a generator seeded seed */
static __device__ __forceinline__ float
lt_rand_unit_at(uint64_t seed, size_t i)
{
    uint64_t  z;

    z = seed + ((uint64_t) i + 1) * LT_SM_GAMMA;
    z = (z ^ (z >> 30)) * LT_SM_MUL1;
    z = (z ^ (z >> 27)) * LT_SM_MUL2;
    z ^= z >> 31;

    return (float) (z >> 40) * (1.0f / 16777216.0f);
}


static __global__ void
lt_dropout_kernel(const float *x, float *y, float *mask, size_t n, float p,
    float keep, uint64_t seed)
{
    float  m;

    LT_CUDA_FOR(i, n) {
        m = lt_rand_unit_at(seed, i) < p ? 0.0f : keep;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}


void
lt_cuda_dropout_forward(const lt_backend *be, const float *x, float *y,
    float *mask, size_t n, float p, uint64_t seed)
{
    lt_cuda_ctx  *c;
    float         keep;

    c = lt_cuda_enter(be);

    if (n == 0) {
        return;
    }

    keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;

    lt_dropout_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS), LT_CUDA_THREADS,
                        0, c->stream>>>(x, y, mask, n, p, keep, seed);
    lt_cuda_launched(c, "dropout_forward");
}


static __global__ void
lt_mul_kernel(const float *a, const float *b, float *y, size_t n)
{
    LT_CUDA_FOR(i, n) {
        y[i] = a[i] * b[i];
    }
}


void
lt_cuda_mul(const lt_backend *be, const float *a, const float *b, float *y,
    size_t n)
{
    lt_cuda_ctx  *c;

    c = lt_cuda_enter(be);

    if (n == 0) {
        return;
    }

    lt_mul_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS), LT_CUDA_THREADS, 0,
                    c->stream>>>(a, b, y, n);
    lt_cuda_launched(c, "mul");
}
