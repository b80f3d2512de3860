/*
 * lt_cuda_clip.cu: the two ops of clip_grad_norm (lt_grad_clip in
 * lt_optim.c): the sum of squares of the whole gradient, in double as
 * the CPU backend sums it, and the scaling by max_norm / norm.
 *
 * The sum is reduced as the losses are (per-block double sums, one block
 * adds them in a fixed order), and the double comes back to the host:
 * clipping needs it there to decide, so this op waits for the stream.
 */
#include <math.h>

#include "lt_cuda.h"


static __global__ void
lt_sum_squares_kernel(const float *x, size_t n, double *partial)
{
    double  acc;

    acc = 0.0;

    LT_CUDA_FOR(i, n) {
        acc += (double) x[i] * x[i];
    }

    acc = lt_block_sum(acc);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = acc;
    }
}


static __global__ void
lt_sum_finish_kernel(const double *partial, int nparts, double *result)
{
    double  s;
    int     i;

    s = 0.0;
    for (i = threadIdx.x; i < nparts; i += blockDim.x) {
        s += partial[i];
    }

    s = lt_block_sum(s);

    if (threadIdx.x == 0) {
        *result = s;
    }
}


double
lt_cuda_sum_squares(const lt_backend *be, const float *x, size_t n)
{
    lt_cuda_ctx  *c;
    unsigned      blocks;

    c = lt_cuda_enter(be);

    if (n == 0) {
        return 0.0;
    }

    blocks = lt_cuda_blocks(n, LT_CUDA_THREADS);

    lt_sum_squares_kernel<<<blocks, LT_CUDA_THREADS, 0, c->stream>>>(
        x, n, c->partial);
    if (!lt_cuda_launched(c, "sum_squares")) {
        return NAN;
    }

    lt_sum_finish_kernel<<<1, LT_CUDA_THREADS, 0, c->stream>>>(
        c->partial, (int) blocks, c->result_d);
    if (!lt_cuda_launched(c, "sum_squares reduction")) {
        return NAN;
    }

    return lt_cuda_fetch_result_d(c);
}


static __global__ void
lt_scale_kernel(float *x, size_t n, float alpha)
{
    LT_CUDA_FOR(i, n) {
        x[i] *= alpha;
    }
}


void
lt_cuda_scale(const lt_backend *be, float *x, size_t n, float alpha)
{
    lt_cuda_ctx  *c;

    c = lt_cuda_enter(be);

    if (n == 0) {
        return;
    }

    lt_scale_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS), LT_CUDA_THREADS, 0,
                      c->stream>>>(x, n, alpha);
    lt_cuda_launched(c, "scale");
}
