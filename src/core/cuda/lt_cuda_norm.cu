/*
 * lt_cuda_norm.cu: BatchNorm (train and eval, the running statistics)
 * and LayerNorm, after the CPU's lt_backend_cpu_norm.c: statistics in
 * double, two passes (the mean, then the squares about it), the same
 * saved values (mean, 1/sqrt(var + eps), unbiased variance).
 *
 * One block per channel (BatchNorm) or per row (LayerNorm), a
 * grid-stride loop over them; the block's sums go through lt_block_sum
 * and reach every thread through shared memory.  LayerNorm's weight
 * gradients are one thread per column adding the rows in the CPU's
 * order.
 */
#include <math.h>

#include "lt_cuda.h"

extern "C" {
#include "lt_model.h"           /* LT_I64_MAX */
}

/* lt_model.h's int64 as two floats of 24 bits, for device code */
#define LT_I64_UNIT  16777216


/* The sum of v over the block, in every thread.  Ends with a barrier,
 * so it may be called again at once. */
static __device__ double
lt_block_sum_all(double v)
{
    __shared__ double  total;

    v = lt_block_sum(v);
    if (threadIdx.x == 0) {
        total = v;
    }
    __syncthreads();
    v = total;
    __syncthreads();

    return v;
}


/* x [n, c, s]: element k of channel j's n * s values */
static __device__ __forceinline__ size_t
lt_bn_at(size_t k, int c, int s, int j)
{
    return ((k / (size_t) s) * c + j) * s + k % (size_t) s;
}


static __global__ void
lt_bn_forward_kernel(int n, int c, int s, const float *x, float *y,
    const float *gamma, const float *beta, const float *mean,
    const float *var, float eps, int batch, float *save)
{
    size_t  m, k, at;
    double  sum, sq, d, dm;
    float   mu, inv, g, b;
    int     j;

    m = (size_t) n * s;
    dm = (double) n * s;

    for (j = blockIdx.x; j < c; j += gridDim.x) {
        if (batch) {
            sum = 0.0;
            for (k = threadIdx.x; k < m; k += blockDim.x) {
                sum += x[lt_bn_at(k, c, s, j)];
            }
            sum = lt_block_sum_all(sum) / dm;

            sq = 0.0;
            for (k = threadIdx.x; k < m; k += blockDim.x) {
                d = x[lt_bn_at(k, c, s, j)] - sum;
                sq += d * d;
            }
            sq = lt_block_sum_all(sq);

            mu = (float) sum;
            inv = (float) (1.0 / sqrt(sq / dm + eps));
            if (threadIdx.x == 0) {
                save[2 * c + j] = (float) (dm > 1.0 ? sq / (dm - 1.0) : sq);
            }

        } else {
            mu = mean[j];
            inv = (float) (1.0 / sqrt((double) var[j] + eps));
        }

        if (threadIdx.x == 0) {
            save[j] = mu;
            save[c + j] = inv;
        }

        g = gamma ? gamma[j] * inv : inv;
        b = beta ? beta[j] : 0.0f;

        for (k = threadIdx.x; k < m; k += blockDim.x) {
            at = lt_bn_at(k, c, s, j);
            y[at] = (x[at] - mu) * g + b;
        }
    }
}


void
lt_cuda_batchnorm_forward(const lt_backend *be, int n, int c, int s,
    const float *x, float *y, const float *gamma, const float *beta,
    const float *mean, const float *var, float eps, int batch, float *save)
{
    lt_cuda_ctx  *cx;

    cx = lt_cuda_enter(be);

    if (c <= 0) {
        return;
    }

    lt_bn_forward_kernel<<<lt_cuda_blocks((size_t) c, 1), LT_CUDA_THREADS, 0,
                           cx->stream>>>(n, c, s, x, y, gamma, beta, mean,
                                         var, eps, batch, save);
    lt_cuda_launched(cx, "batchnorm_forward");
}


static __global__ void
lt_bn_backward_kernel(int n, int c, int s, const float *x, const float *dy,
    float *dx, const float *gamma, const float *save, int batch,
    float *dgamma, float *dbeta)
{
    size_t  m, k, at;
    double  sum_d, sum_dx;
    float   mu, inv, g, sd, sdx, fm, d;
    int     j;

    m = (size_t) n * s;
    fm = (float) n * s;

    for (j = blockIdx.x; j < c; j += gridDim.x) {
        mu = save[j];
        inv = save[c + j];
        sum_d = 0.0;
        sum_dx = 0.0;

        for (k = threadIdx.x; k < m; k += blockDim.x) {
            at = lt_bn_at(k, c, s, j);
            d = dy[at];
            sum_d += d;
            sum_dx += d * (x[at] - mu) * inv;
        }
        sum_d = lt_block_sum_all(sum_d);
        sum_dx = lt_block_sum_all(sum_dx);

        if (threadIdx.x == 0) {
            if (dgamma != NULL) {
                dgamma[j] = (float) sum_dx;
            }
            if (dbeta != NULL) {
                dbeta[j] = (float) sum_d;
            }
        }

        if (dx == NULL) {
            continue;
        }

        g = (gamma ? gamma[j] : 1.0f) * inv;
        sd = (float) (sum_d / fm);
        sdx = (float) (sum_dx / fm);

        for (k = threadIdx.x; k < m; k += blockDim.x) {
            at = lt_bn_at(k, c, s, j);
            dx[at] = batch ? g * (dy[at] - sd - (x[at] - mu) * inv * sdx)
                           : g * dy[at];
        }
    }
}


void
lt_cuda_batchnorm_backward(const lt_backend *be, int n, int c, int s,
    const float *x, const float *dy, float *dx, const float *gamma,
    const float *save, int batch, float *dgamma, float *dbeta)
{
    lt_cuda_ctx  *cx;

    cx = lt_cuda_enter(be);

    if (c <= 0) {
        return;
    }

    lt_bn_backward_kernel<<<lt_cuda_blocks((size_t) c, 1), LT_CUDA_THREADS,
                            0, cx->stream>>>(n, c, s, x, dy, dx, gamma, save,
                                             batch, dgamma, dbeta);
    lt_cuda_launched(cx, "batchnorm_backward");
}


/* running = (1 - momentum) running + momentum batch; count + 1 (two
 * floats of 24 bits, lt_model.h), by the first thread */
static __global__ void
lt_bn_running_kernel(int c, float momentum, const float *save,
    const float *mean_in, const float *var_in, const float *count_in,
    float *mean_out, float *var_out, float *count_out)
{
    int64_t  count;

    LT_CUDA_FOR(j, (size_t) c) {
        mean_out[j] = (1.0f - momentum) * mean_in[j] + momentum * save[j];
        var_out[j] = (1.0f - momentum) * var_in[j]
                     + momentum * save[2 * c + j];
    }

    if (blockIdx.x == 0 && threadIdx.x == 0) {
        count = (int64_t) count_in[0] + (int64_t) count_in[1] * LT_I64_UNIT
                + 1;
        count = count < LT_I64_MAX ? count : LT_I64_MAX - 1;
        count_out[0] = (float) (count % LT_I64_UNIT);
        count_out[1] = (float) (count / LT_I64_UNIT);
    }
}


void
lt_cuda_batchnorm_running(const lt_backend *be, int c, float momentum,
    const float *save, const float *mean_in, const float *var_in,
    const float *count_in, float *mean_out, float *var_out, float *count_out)
{
    lt_cuda_ctx  *cx;

    cx = lt_cuda_enter(be);

    if (c <= 0) {
        return;
    }

    lt_bn_running_kernel<<<lt_cuda_blocks((size_t) c, LT_CUDA_THREADS),
                           LT_CUDA_THREADS, 0, cx->stream>>>(
        c, momentum, save, mean_in, var_in, count_in, mean_out, var_out,
        count_out);
    lt_cuda_launched(cx, "batchnorm_running");
}


static __global__ void
lt_ln_forward_kernel(int rows, int d, const float *x, float *y,
    const float *gamma, const float *beta, float eps, float *save)
{
    const float  *p;
    double        sum, sq, t;
    float        *q, mu, inv, v;
    int           i, k;

    for (i = blockIdx.x; i < rows; i += gridDim.x) {
        p = x + (size_t) i * d;
        q = y + (size_t) i * d;

        sum = 0.0;
        for (k = threadIdx.x; k < d; k += blockDim.x) {
            sum += p[k];
        }
        sum = lt_block_sum_all(sum) / d;

        sq = 0.0;
        for (k = threadIdx.x; k < d; k += blockDim.x) {
            t = p[k] - sum;
            sq += t * t;
        }
        sq = lt_block_sum_all(sq);

        mu = (float) sum;
        inv = (float) (1.0 / sqrt(sq / d + eps));
        if (threadIdx.x == 0) {
            save[2 * i] = mu;
            save[2 * i + 1] = inv;
        }

        for (k = threadIdx.x; k < d; k += blockDim.x) {
            v = (p[k] - mu) * inv;
            if (gamma != NULL) {
                v = v * gamma[k] + beta[k];
            }
            q[k] = v;
        }
    }
}


void
lt_cuda_layernorm_forward(const lt_backend *be, int rows, int d,
    const float *x, float *y, const float *gamma, const float *beta,
    float eps, float *save)
{
    lt_cuda_ctx  *c;

    c = lt_cuda_enter(be);

    if (rows <= 0 || d <= 0) {
        return;
    }

    lt_ln_forward_kernel<<<lt_cuda_blocks((size_t) rows, 1), LT_CUDA_THREADS,
                           0, c->stream>>>(rows, d, x, y, gamma, beta, eps,
                                           save);
    lt_cuda_launched(c, "layernorm_forward");
}


static __global__ void
lt_ln_backward_kernel(int rows, int d, const float *x, const float *dy,
    float *dx, const float *gamma, const float *save)
{
    const float  *p, *g;
    double        s1, s2;
    float        *q, mu, inv, xh, dxh, a, b;
    int           i, k;

    for (i = blockIdx.x; i < rows; i += gridDim.x) {
        p = x + (size_t) i * d;
        g = dy + (size_t) i * d;
        q = dx + (size_t) i * d;
        mu = save[2 * i];
        inv = save[2 * i + 1];
        s1 = 0.0;
        s2 = 0.0;

        for (k = threadIdx.x; k < d; k += blockDim.x) {
            xh = (p[k] - mu) * inv;
            dxh = gamma != NULL ? g[k] * gamma[k] : g[k];
            s1 += dxh;
            s2 += dxh * xh;
        }
        s1 = lt_block_sum_all(s1);
        s2 = lt_block_sum_all(s2);

        a = (float) (s1 / d);
        b = (float) (s2 / d);

        for (k = threadIdx.x; k < d; k += blockDim.x) {
            xh = (p[k] - mu) * inv;
            dxh = gamma != NULL ? g[k] * gamma[k] : g[k];
            q[k] = inv * (dxh - a - xh * b);
        }
    }
}


/* dgamma[k] = sum over rows of dy xhat, dbeta[k] = of dy: float sums in
 * the rows' order, as the CPU's */
static __global__ void
lt_ln_params_kernel(int rows, int d, const float *x, const float *dy,
    const float *save, float *dgamma, float *dbeta)
{
    float  sg, sb, xh, gk;
    int    i;

    LT_CUDA_FOR(k, (size_t) d) {
        sg = 0.0f;
        sb = 0.0f;

        for (i = 0; i < rows; i++) {
            xh = (x[(size_t) i * d + k] - save[2 * i]) * save[2 * i + 1];
            gk = dy[(size_t) i * d + k];
            sg += gk * xh;
            sb += gk;
        }

        dgamma[k] = sg;
        dbeta[k] = sb;
    }
}


void
lt_cuda_layernorm_backward(const lt_backend *be, int rows, int d,
    const float *x, const float *dy, float *dx, const float *gamma,
    const float *save, float *dgamma, float *dbeta)
{
    lt_cuda_ctx  *c;

    c = lt_cuda_enter(be);

    if (rows <= 0 || d <= 0) {
        return;
    }

    if (dgamma != NULL) {
        if (dbeta == NULL) {
            lt_cuda_check(c, cudaErrorInvalidValue, "layernorm_backward: "
                          "a weight gradient without the bias's");
            return;
        }

        lt_ln_params_kernel<<<lt_cuda_blocks((size_t) d, LT_CUDA_THREADS),
                              LT_CUDA_THREADS, 0, c->stream>>>(
            rows, d, x, dy, save, dgamma, dbeta);
        if (!lt_cuda_launched(c, "layernorm_backward (weights)")) {
            return;
        }
    }

    if (dx == NULL) {
        return;
    }

    lt_ln_backward_kernel<<<lt_cuda_blocks((size_t) rows, 1),
                            LT_CUDA_THREADS, 0, c->stream>>>(
        rows, d, x, dy, dx, gamma, save);
    lt_cuda_launched(c, "layernorm_backward");
}
