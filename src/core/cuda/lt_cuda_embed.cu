/*
 * lt_cuda_embed.cu: Embedding's lookup and its gradient, after the CPU's
 * lt_backend_cpu_layers.c.  The indices are floats holding whole numbers
 * already checked against num_embeddings (lt_model_check_input); the
 * gradient, which knows the table's size, still skips an index outside
 * it.
 *
 * The gradient adds each sample's row into the table's with atomicAdd:
 * rows that share an index are added in no fixed order, so the sums may
 * differ from the CPU's in their last bits.
 */
#include <math.h>

#include "lt_cuda.h"


/* the op does not say the table's size: the model checked the indices
 * against it; a negative one (which it cannot be) gives NaN */
static __global__ void
lt_embed_forward_kernel(const float *index, size_t total, const float *w,
    int dim, float *y)
{
    size_t  r;
    int     k;

    LT_CUDA_FOR(i, total) {
        r = i / (size_t) dim;
        k = (int) index[r];
        y[i] = k >= 0 ? w[(size_t) k * dim + i % (size_t) dim] : NAN;
    }
}


void
lt_cuda_embedding_forward(const lt_backend *be, const float *index, int n,
    const float *w, int dim, float *y)
{
    lt_cuda_ctx  *c;
    size_t        total;

    c = lt_cuda_enter(be);

    total = (size_t) n * dim;
    if (total == 0) {
        return;
    }

    lt_embed_forward_kernel<<<lt_cuda_blocks(total, LT_CUDA_THREADS),
                              LT_CUDA_THREADS, 0, c->stream>>>(
        index, total, w, dim, y);
    lt_cuda_launched(c, "embedding_forward");
}


static __global__ void
lt_embed_backward_kernel(const float *index, size_t total, const float *dy,
    int dim, int num, int skip, float *dw)
{
    size_t  r;
    int     k;

    LT_CUDA_FOR(i, total) {
        r = i / (size_t) dim;
        k = (int) index[r];

        if (k != skip && k >= 0 && k < num) {
            atomicAdd(&dw[(size_t) k * dim + i % (size_t) dim], dy[i]);
        }
    }
}


void
lt_cuda_embedding_backward(const lt_backend *be, const float *index, int n,
    const float *dy, int dim, int num, int skip, float *dw)
{
    lt_cuda_ctx  *c;
    size_t        total;

    c = lt_cuda_enter(be);

    if (num <= 0 || dim <= 0) {
        return;
    }

    if (!lt_cuda_check(c, cudaMemsetAsync(dw, 0,
                                          (size_t) num * dim * sizeof(float),
                                          c->stream),
                       "embedding_backward: clearing the gradient"))
    {
        return;
    }

    total = (size_t) n * dim;
    if (total == 0) {
        return;
    }

    lt_embed_backward_kernel<<<lt_cuda_blocks(total, LT_CUDA_THREADS),
                               LT_CUDA_THREADS, 0, c->stream>>>(
        index, total, dy, dim, num, skip, dw);
    lt_cuda_launched(c, "embedding_backward");
}
