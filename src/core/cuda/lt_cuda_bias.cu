/*
 * lt_cuda_bias.cu: a Linear's bias, forward (add_bias) and backward
 * (sum_rows).
 */
#include "lt_cuda.h"

/* sum_rows: a block is a tile of 32 columns by LT_SUM_ROWS row lanes;
 * each thread sums every LT_SUM_ROWS-th row of one column, then the row
 * lanes of a column are added in shared memory, in a fixed order (the
 * result does not depend on timing). */
#define LT_SUM_COLS  32
#define LT_SUM_ROWS  32


/* y[r, j] += bias[j] */
static __global__ void
lt_add_bias_kernel(float *y, const float *bias, size_t n, int cols)
{
    LT_CUDA_FOR(i, n) {
        y[i] += bias[i % (size_t) cols];
    }
}


void
lt_cuda_add_bias(const lt_backend *be, float *y, const float *bias,
    int rows, int cols)
{
    lt_cuda_ctx  *c;
    size_t        n;

    c = lt_cuda_enter(be);

    if (rows <= 0 || cols <= 0) {
        return;
    }

    n = (size_t) rows * cols;
    lt_add_bias_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS), LT_CUDA_THREADS,
                         0, c->stream>>>(y, bias, n, cols);
    lt_cuda_launched(c, "add_bias");
}


/* out[j] = sum over r of g[r, j]; blockDim is (LT_SUM_COLS, LT_SUM_ROWS).
 * The tile loop's bounds depend on blockIdx only, so every thread of a
 * block reaches the same __syncthreads. */
static __global__ void __launch_bounds__(LT_SUM_COLS * LT_SUM_ROWS)
lt_sum_rows_kernel(float *out, const float *g, int rows, int cols)
{
    __shared__ float  part[LT_SUM_ROWS][LT_SUM_COLS + 1];
    float             s;
    int               tx, ty, c0, col, r, i;

    tx = threadIdx.x;
    ty = threadIdx.y;

    for (c0 = blockIdx.x * LT_SUM_COLS; c0 < cols;
         c0 += gridDim.x * LT_SUM_COLS)
    {
        col = c0 + tx;
        s = 0.0f;

        if (col < cols) {
            for (r = ty; r < rows; r += LT_SUM_ROWS) {
                s += g[(size_t) r * cols + col];
            }
        }

        part[ty][tx] = s;
        __syncthreads();

        if (ty == 0 && col < cols) {
            s = 0.0f;
            for (i = 0; i < LT_SUM_ROWS; i++) {
                s += part[i][tx];
            }
            out[col] = s;
        }

        /* part is rewritten by the next tile */
        __syncthreads();
    }
}


void
lt_cuda_sum_rows(const lt_backend *be, float *out, const float *g, int rows,
    int cols)
{
    lt_cuda_ctx  *c;
    dim3          block(LT_SUM_COLS, LT_SUM_ROWS);

    c = lt_cuda_enter(be);

    if (cols <= 0) {
        return;
    }

    /* rows == 0 writes zeros, the sum of nothing */
    lt_sum_rows_kernel<<<lt_cuda_blocks((size_t) cols, LT_SUM_COLS), block,
                         0, c->stream>>>(out, g, rows, cols);
    lt_cuda_launched(c, "sum_rows");
}
