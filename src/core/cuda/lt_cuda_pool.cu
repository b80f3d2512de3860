/*
 * lt_cuda_pool.cu: max, average (with and without the padding counted)
 * and adaptive average pools over [n, c, h, w], after the CPU's
 * lt_backend_cpu_layers.c: the same windows (lt_pool_window below is
 * its function, line for line), the first maximum winning, a NaN over
 * any number, averages summed in double.
 *
 * The forward pass is one thread per output.  The backward pass is one
 * thread per input pixel gathering from the outputs whose windows hold
 * it, in the CPU's order of outputs (oy, then ox): the same float sums
 * as the CPU's scatter, without atomics.
 */
#include <math.h>

#include "lt_cuda.h"


static __device__ __forceinline__ void
lt_adaptive(int o, int in, int out, int *lo, int *hi)
{
    *lo = (int) (((int64_t) o * in) / out);
    *hi = (int) (((int64_t) (o + 1) * in + out - 1) / out);
}


/* The window of output (oy, ox) clipped to the input, and its divisor. */
static __device__ float
lt_pool_window(lt_pool kind, const lt_window *g, int oy, int ox, int *y0,
    int *y1, int *x0, int *x1)
{
    int  size;

    if (kind == LT_POOL_ADAPTIVE) {
        lt_adaptive(oy, g->h, g->oh, y0, y1);
        lt_adaptive(ox, g->w, g->ow, x0, x1);
        return (float) ((*y1 - *y0) * (*x1 - *x0));
    }

    *y0 = oy * g->sh - g->ph;
    *x0 = ox * g->sw - g->pw;
    *y1 = *y0 + (g->kh - 1) * g->dh + 1;
    *x1 = *x0 + (g->kw - 1) * g->dw + 1;

    /* count_include_pad counts the padding, not what lies beyond it */
    size = ((*y1 < g->h + g->ph ? *y1 : g->h + g->ph) - *y0)
           * ((*x1 < g->w + g->pw ? *x1 : g->w + g->pw) - *x0);

    if (*y0 < 0) {
        *y0 = 0;
    }
    if (*x0 < 0) {
        *x0 = 0;
    }
    if (*y1 > g->h) {
        *y1 = g->h;
    }
    if (*x1 > g->w) {
        *x1 = g->w;
    }

    if (kind == LT_POOL_AVG) {
        return (float) size;
    }

    return (float) ((*y1 - *y0) * (*x1 - *x0));
}


static __global__ void
lt_pool_forward_kernel(lt_pool kind, lt_window g, size_t total,
    const float *x, float *y, int32_t *arg)
{
    const float  *plane;
    double        sum;
    size_t        p, t;
    float         best, v, div;
    int           oy, ox, iy, ix, y0, y1, x0, x1, at, dh, dw;

    dh = kind == LT_POOL_MAX ? g.dh : 1;
    dw = kind == LT_POOL_MAX ? g.dw : 1;

    LT_CUDA_FOR(i, total) {
        t = i;
        ox = (int) (t % g.ow);
        t /= g.ow;
        oy = (int) (t % g.oh);
        p = t / g.oh;
        plane = x + p * g.h * g.w;

        div = lt_pool_window(kind, &g, oy, ox, &y0, &y1, &x0, &x1);

        if (kind != LT_POOL_MAX) {
            sum = 0.0;
            for (iy = y0; iy < y1; iy++) {
                for (ix = x0; ix < x1; ix++) {
                    sum += plane[(size_t) iy * g.w + ix];
                }
            }
            y[i] = (float) (sum / div);
            continue;
        }

        best = -INFINITY;
        at = -1;
        iy = oy * g.sh - g.ph;
        iy += iy < 0 ? ((-iy + dh - 1) / dh) * dh : 0;

        for ( ; iy < y1 && !(at >= 0 && isnan(best)); iy += dh) {
            ix = ox * g.sw - g.pw;
            ix += ix < 0 ? ((-ix + dw - 1) / dw) * dw : 0;

            for ( ; ix < x1; ix += dw) {
                v = plane[(size_t) iy * g.w + ix];
                if (at < 0 || v > best || isnan(v)) {
                    best = v;
                    at = iy * g.w + ix;
                    if (isnan(v)) {
                        break;
                    }
                }
            }
        }

        y[i] = best;
        arg[i] = at;
    }
}


void
lt_cuda_pool_forward(const lt_backend *be, lt_pool kind, const lt_window *g,
    int n, const float *x, float *y, int32_t *arg)
{
    lt_cuda_ctx  *c;
    size_t        total;

    c = lt_cuda_enter(be);

    total = (size_t) n * g->c * g->oh * g->ow;
    if (total == 0) {
        return;
    }

    if (kind == LT_POOL_MAX && arg == NULL) {
        lt_cuda_check(c, cudaErrorInvalidValue, "pool_forward: max pool "
                      "without an argmax buffer");
        return;
    }

    lt_pool_forward_kernel<<<lt_cuda_blocks(total, LT_CUDA_THREADS),
                             LT_CUDA_THREADS, 0, c->stream>>>(
        kind, *g, total, x, y, arg);
    lt_cuda_launched(c, "pool_forward");
}


/* floor(a / b) for b > 0 and any a */
static __device__ __forceinline__ int
lt_floor_div(int a, int b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}


/* The outputs along one side whose windows may hold input position i
 * (a superset: each candidate is checked) */
static __device__ __forceinline__ void
lt_pool_candidates(lt_pool kind, int i, int in, int out, int k, int s,
    int pad, int d, int *lo, int *hi)
{
    if (kind == LT_POOL_ADAPTIVE) {
        *lo = (int) (((int64_t) i * out) / in) - 1;
        *hi = (int) (((int64_t) (i + 1) * out + in - 1) / in);

    } else {
        *lo = lt_floor_div(i + pad - ((k - 1) * d + 1), s);
        *hi = (i + pad) / s;
    }

    *lo = *lo < 0 ? 0 : *lo;
    *hi = *hi > out - 1 ? out - 1 : *hi;
}


static __global__ void
lt_pool_backward_kernel(lt_pool kind, lt_window g, size_t total,
    const float *dy, const int32_t *arg, float *dx)
{
    const float    *dyp;
    const int32_t  *argp;
    size_t          p, t, o;
    float           acc, div;
    int             ix, iy, at, oy, ox, oy0, oy1, ox0, ox1, y0, y1, x0, x1;

    LT_CUDA_FOR(i, total) {
        t = i;
        ix = (int) (t % g.w);
        t /= g.w;
        iy = (int) (t % g.h);
        p = t / g.h;
        at = iy * g.w + ix;
        dyp = dy + p * g.oh * g.ow;
        argp = arg != NULL ? arg + p * g.oh * g.ow : NULL;

        lt_pool_candidates(kind, iy, g.h, g.oh, g.kh, g.sh, g.ph, g.dh,
                           &oy0, &oy1);
        lt_pool_candidates(kind, ix, g.w, g.ow, g.kw, g.sw, g.pw, g.dw,
                           &ox0, &ox1);
        acc = 0.0f;

        for (oy = oy0; oy <= oy1; oy++) {
            for (ox = ox0; ox <= ox1; ox++) {
                o = (size_t) oy * g.ow + ox;

                if (kind == LT_POOL_MAX) {
                    if (argp[o] == at) {
                        acc += dyp[o];
                    }
                    continue;
                }

                div = lt_pool_window(kind, &g, oy, ox, &y0, &y1, &x0, &x1);
                if (iy >= y0 && iy < y1 && ix >= x0 && ix < x1) {
                    acc += dyp[o] / div;
                }
            }
        }

        dx[i] = acc;
    }
}


void
lt_cuda_pool_backward(const lt_backend *be, lt_pool kind, const lt_window *g,
    int n, const float *dy, const int32_t *arg, float *dx)
{
    lt_cuda_ctx  *c;
    size_t        total;

    c = lt_cuda_enter(be);

    total = (size_t) n * g->c * g->h * g->w;
    if (total == 0) {
        return;
    }

    if (kind == LT_POOL_MAX && arg == NULL) {
        lt_cuda_check(c, cudaErrorInvalidValue, "pool_backward: max pool "
                      "without its argmax");
        return;
    }

    lt_pool_backward_kernel<<<lt_cuda_blocks(total, LT_CUDA_THREADS),
                              LT_CUDA_THREADS, 0, c->stream>>>(
        kind, *g, total, dy, arg, dx);
    lt_cuda_launched(c, "pool_backward");
}
