/*
 * lt_cuda_conv.cu: what a convolution needs besides its products
 * (lt_layer_conv.c calls gemm, cuBLAS here, between these): im2col and
 * col2im over one sample, and the per-channel bias and its gradient.
 * The CPU twins are in lt_backend_cpu_layers.c.
 *
 * im2col is one thread per column entry, a copy or a zero: the same
 * bits as the CPU's.  col2im is one thread per input pixel gathering
 * the entries that saw it, in the CPU's order of kernel taps (ki, kj),
 * from 0: the same float sums as the CPU's scatter, and no atomics.
 */
#include <math.h>

#include "lt_cuda.h"


static __global__ void
lt_im2col_kernel(lt_window g, const float *x, float *col, size_t n)
{
    size_t  t;
    int     ox, oy, kj, ki, ci, iy, ix;

    LT_CUDA_FOR(i, n) {
        t = i;
        ox = (int) (t % g.ow);
        t /= g.ow;
        oy = (int) (t % g.oh);
        t /= g.oh;
        kj = (int) (t % g.kw);
        t /= g.kw;
        ki = (int) (t % g.kh);
        ci = (int) (t / g.kh);

        iy = oy * g.sh - g.ph + ki * g.dh;
        ix = ox * g.sw - g.pw + kj * g.dw;

        col[i] = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w
                 ? x[((size_t) ci * g.h + iy) * g.w + ix] : 0.0f;
    }
}


void
lt_cuda_im2col(const lt_backend *be, const lt_window *g, const float *x,
    float *col)
{
    lt_cuda_ctx  *c;
    size_t        n;

    c = lt_cuda_enter(be);

    n = (size_t) g->c * g->kh * g->kw * g->oh * g->ow;
    if (n == 0) {
        return;
    }

    lt_im2col_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS), LT_CUDA_THREADS,
                       0, c->stream>>>(*g, x, col, n);
    lt_cuda_launched(c, "im2col");
}


/*
 * Pixel (ci, iy, ix) was seen by tap (ki, kj) at output (oy, ox) when
 * iy = oy sh - ph + ki dh and the same across: oy = (iy + ph - ki dh) /
 * sh, exactly, within [0, oh).
 */
static __global__ void
lt_col2im_kernel(lt_window g, const float *col, float *x, size_t n)
{
    size_t  t, tap;
    float   acc;
    int     ix, iy, ci, ki, kj, ny, nx, oy, ox;

    LT_CUDA_FOR(i, n) {
        t = i;
        ix = (int) (t % g.w);
        t /= g.w;
        iy = (int) (t % g.h);
        ci = (int) (t / g.h);
        acc = 0.0f;

        for (ki = 0; ki < g.kh; ki++) {
            ny = iy + g.ph - ki * g.dh;
            if (ny < 0 || ny % g.sh != 0) {
                continue;
            }
            oy = ny / g.sh;
            if (oy >= g.oh) {
                continue;
            }

            for (kj = 0; kj < g.kw; kj++) {
                nx = ix + g.pw - kj * g.dw;
                if (nx < 0 || nx % g.sw != 0) {
                    continue;
                }
                ox = nx / g.sw;
                if (ox >= g.ow) {
                    continue;
                }

                tap = ((size_t) ci * g.kh + ki) * g.kw + kj;
                acc += col[(tap * g.oh + oy) * g.ow + ox];
            }
        }

        x[i] = acc;
    }
}


void
lt_cuda_col2im(const lt_backend *be, const lt_window *g, const float *col,
    float *x)
{
    lt_cuda_ctx  *c;
    size_t        n;

    c = lt_cuda_enter(be);

    n = (size_t) g->c * g->h * g->w;
    if (n == 0) {
        return;
    }

    lt_col2im_kernel<<<lt_cuda_blocks(n, LT_CUDA_THREADS), LT_CUDA_THREADS,
                       0, c->stream>>>(*g, col, x, n);
    lt_cuda_launched(c, "col2im");
}


/* y[i, j, k] += bias[j] over [n, c, s] */
static __global__ void
lt_channel_bias_kernel(float *y, const float *bias, size_t total, int c,
    int s)
{
    LT_CUDA_FOR(i, total) {
        y[i] += bias[(i / (size_t) s) % (size_t) c];
    }
}


void
lt_cuda_channel_bias(const lt_backend *be, float *y, const float *bias,
    int n, int c, int s)
{
    lt_cuda_ctx  *c_;
    size_t        total;

    c_ = lt_cuda_enter(be);

    total = (size_t) n * c * s;
    if (total == 0) {
        return;
    }

    lt_channel_bias_kernel<<<lt_cuda_blocks(total, LT_CUDA_THREADS),
                             LT_CUDA_THREADS, 0, c_->stream>>>(
        y, bias, total, c, s);
    lt_cuda_launched(c_, "channel_bias");
}


/*
 * out[j] = the sum of g[:, j, :], in double as the CPU: one block per
 * channel (a grid-stride loop over channels), the block's threads
 * striding over the n * s values.  lt_block_sum's shared slots are
 * reused per channel, hence the barrier after each.
 */
static __global__ void
lt_channel_sum_kernel(float *out, const float *g, int n, int c, int s)
{
    size_t  m, k;
    double  acc;
    int     j;

    m = (size_t) n * s;

    for (j = blockIdx.x; j < c; j += gridDim.x) {
        acc = 0.0;

        for (k = threadIdx.x; k < m; k += blockDim.x) {
            acc += g[((k / (size_t) s) * c + j) * s + k % (size_t) s];
        }

        acc = lt_block_sum(acc);
        if (threadIdx.x == 0) {
            out[j] = (float) acc;
        }
        __syncthreads();
    }
}


void
lt_cuda_channel_sum(const lt_backend *be, float *out, const float *g,
    int n, int c, int s)
{
    lt_cuda_ctx  *c_;

    c_ = lt_cuda_enter(be);

    if (c <= 0) {
        return;
    }

    lt_channel_sum_kernel<<<lt_cuda_blocks((size_t) c, 1), LT_CUDA_THREADS,
                            0, c_->stream>>>(out, g, n, c, s);
    lt_cuda_launched(c_, "channel_sum");
}
