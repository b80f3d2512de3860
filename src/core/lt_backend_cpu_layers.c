/*
 * lt_backend_cpu_layers.c: the CPU backend's ops for activations with
 * arguments, convolutions (im2col / col2im; the product is gemm's),
 * pools, embeddings and dropout.  Definitions follow PyTorch's, so the
 * fixtures made with torch (t/unit/fixtures/gen_layers.py) hold here.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("tree-vectorize", "vect-cost-model=dynamic", \
                      "no-math-errno", \
                      "no-trapping-math")
#endif

#include <float.h>
#include <math.h>
#include <string.h>

#include "lt_backend_cpu.h"
#include "lt_math.h"
#include "lt_rand.h"

#define LT_SQRT1_2       0.70710678118654752440f
#define LT_INV_SQRT_2PI  0.39894228040143267794f
#define LT_GELU_K        0.79788456080286535588f   /* sqrt(2 / pi) */
#define LT_GELU_C        0.044715f


static float
lt_sigmoidf(float x)
{
    return x >= 0.0f ? 1.0f / (1.0f + expf(-x))
                     : expf(x) / (1.0f + expf(x));
}


void
lt_cpu_act_arg_forward(const lt_backend *be, lt_act act, float a, float b,
    const float *x, float *y, size_t n)
{
    size_t  i;
    float   v;

    switch (act) {

    case LT_ACT_GELU:
        for (i = 0; i < n; i++) {
            v = x[i];
            y[i] = 0.5f * v * (1.0f + erff(v * LT_SQRT1_2));
        }
        break;

    case LT_ACT_GELU_TANH:
        for (i = 0; i < n; i++) {
            v = x[i];
            y[i] = 0.5f * v * (1.0f + lt_tanh(LT_GELU_K
                                            * (v + LT_GELU_C * v * v * v)));
        }
        break;

    case LT_ACT_LEAKY_RELU:
        for (i = 0; i < n; i++) {
            v = x[i];
            y[i] = v > 0.0f ? v : a * v;
        }
        break;

    case LT_ACT_ELU:
        for (i = 0; i < n; i++) {
            v = x[i];
            y[i] = v > 0.0f ? v : a * expm1f(v);
        }
        break;

    case LT_ACT_SILU:
        for (i = 0; i < n; i++) {
            v = x[i];
            y[i] = v / (1.0f + expf(-v));
        }
        break;

    case LT_ACT_SOFTPLUS:
        for (i = 0; i < n; i++) {
            v = x[i];
            y[i] = v * a > b ? v : log1pf(expf(v * a)) / a;
        }
        break;

    default:
        break;
    }
}


void
lt_cpu_act_arg_backward(const lt_backend *be, lt_act act, float a, float b,
    const float *x, const float *y, const float *dy, float *dx, size_t n)
{
    size_t  i;
    float   v, t, s;

    switch (act) {

    case LT_ACT_GELU:
        for (i = 0; i < n; i++) {
            v = x[i];
            dx[i] = dy[i] * (0.5f * (1.0f + erff(v * LT_SQRT1_2))
                             + v * LT_INV_SQRT_2PI * expf(-0.5f * v * v));
        }
        break;

    case LT_ACT_GELU_TANH:
        for (i = 0; i < n; i++) {
            v = x[i];
            t = lt_tanh(LT_GELU_K * (v + LT_GELU_C * v * v * v));
            dx[i] = dy[i] * (0.5f * (1.0f + t)
                             + 0.5f * v * (1.0f - t * t) * LT_GELU_K
                               * (1.0f + 3.0f * LT_GELU_C * v * v));
        }
        break;

    case LT_ACT_LEAKY_RELU:
        for (i = 0; i < n; i++) {
            dx[i] = x[i] > 0.0f ? dy[i] : a * dy[i];
        }
        break;

    case LT_ACT_ELU:
        /* y + alpha = alpha * exp(x) where x <= 0 */
        for (i = 0; i < n; i++) {
            dx[i] = x[i] > 0.0f ? dy[i] : dy[i] * (y[i] + a);
        }
        break;

    case LT_ACT_SILU:
        for (i = 0; i < n; i++) {
            s = lt_sigmoidf(x[i]);
            dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
        }
        break;

    case LT_ACT_SOFTPLUS:
        for (i = 0; i < n; i++) {
            v = x[i];
            dx[i] = v * a > b ? dy[i] : dy[i] * lt_sigmoidf(v * a);
        }
        break;

    default:
        break;
    }
}


/*
 * Row (ci, ki, kj) of col holds, for every output position, the input
 * pixel that kernel tap sees: a contiguous run of ow values when the
 * stride is 1, so those rows are copied a run at a time.
 */
void
lt_cpu_im2col(const lt_backend *be, const lt_window *g, const float *x,
    float *col)
{
    const float  *plane, *row;
    float        *out;
    int           ci, ki, kj, oy, ox, iy, ix, lo, hi;

    out = col;

    for (ci = 0; ci < g->c; ci++) {
        plane = x + (size_t) ci * g->h * g->w;

        for (ki = 0; ki < g->kh; ki++) {
            for (kj = 0; kj < g->kw; kj++) {
                /* the ox whose ix = ox * sw - pw + kj * dw is in [0, w) */
                lo = 0;
                while (lo < g->ow && lo * g->sw - g->pw + kj * g->dw < 0) {
                    lo++;
                }
                hi = g->ow;
                while (hi > lo
                       && (hi - 1) * g->sw - g->pw + kj * g->dw >= g->w)
                {
                    hi--;
                }

                for (oy = 0; oy < g->oh; oy++, out += g->ow) {
                    iy = oy * g->sh - g->ph + ki * g->dh;

                    if (iy < 0 || iy >= g->h) {
                        memset(out, 0, (size_t) g->ow * sizeof(float));
                        continue;
                    }

                    row = plane + (size_t) iy * g->w;
                    ix = lo * g->sw - g->pw + kj * g->dw;

                    for (ox = 0; ox < lo; ox++) {
                        out[ox] = 0.0f;
                    }

                    if (g->sw == 1) {
                        memcpy(out + lo, row + ix,
                               (size_t) (hi - lo) * sizeof(float));

                    } else {
                        for (ox = lo; ox < hi; ox++, ix += g->sw) {
                            out[ox] = row[ix];
                        }
                    }

                    for (ox = hi; ox < g->ow; ox++) {
                        out[ox] = 0.0f;
                    }
                }
            }
        }
    }
}


void
lt_cpu_col2im(const lt_backend *be, const lt_window *g, const float *col,
    float *x)
{
    const float  *in;
    float        *plane, *row;
    int           ci, ki, kj, oy, ox, iy, ix;

    memset(x, 0, (size_t) g->c * g->h * g->w * sizeof(float));
    in = col;

    for (ci = 0; ci < g->c; ci++) {
        plane = x + (size_t) ci * g->h * g->w;

        for (ki = 0; ki < g->kh; ki++) {
            for (kj = 0; kj < g->kw; kj++) {
                for (oy = 0; oy < g->oh; oy++, in += g->ow) {
                    iy = oy * g->sh - g->ph + ki * g->dh;

                    if (iy < 0 || iy >= g->h) {
                        continue;
                    }

                    row = plane + (size_t) iy * g->w;

                    for (ox = 0; ox < g->ow; ox++) {
                        ix = ox * g->sw - g->pw + kj * g->dw;
                        if (ix >= 0 && ix < g->w) {
                            row[ix] += in[ox];
                        }
                    }
                }
            }
        }
    }
}


/*
 * The patches as rows: with x copied channel-last into a zero-padded
 * plane, the kw * c numbers of one kernel row are contiguous, so a patch
 * is kh copies and no bounds checks.  The product then runs with the
 * positions as its rows ([oh * ow, K] x [K, out]), a shape OpenBLAS's
 * AVX-512 kernels run 1.5-1.8x faster than [out, K] x [K, oh * ow].
 */
void
lt_cpu_im2row(const lt_backend *be, const lt_window *g, const float *x,
    float *pad, float *row)
{
    const float  *plane;
    size_t        hp, wp, run;
    float        *out;
    int           ci, iy, ix, oy, ox, ki;

    hp = (size_t) g->h + 2 * g->ph;
    wp = (size_t) g->w + 2 * g->pw;
    run = (size_t) g->kw * g->c;

    memset(pad, 0, hp * wp * g->c * sizeof(float));

    for (ci = 0; ci < g->c; ci++) {
        plane = x + (size_t) ci * g->h * g->w;

        for (iy = 0; iy < g->h; iy++) {
            out = pad + ((iy + g->ph) * wp + g->pw) * g->c + ci;

            for (ix = 0; ix < g->w; ix++) {
                out[(size_t) ix * g->c] = plane[(size_t) iy * g->w + ix];
            }
        }
    }

    out = row;

    for (oy = 0; oy < g->oh; oy++) {
        for (ox = 0; ox < g->ow; ox++) {
            for (ki = 0; ki < g->kh; ki++, out += run) {
                memcpy(out, pad + (((size_t) oy * g->sh + ki * g->dh) * wp
                                   + (size_t) ox * g->sw) * g->c,
                       run * sizeof(float));
            }
        }
    }
}


/*
 * 64 source rows at a time (8 KiB of a 32-column Y^T), each output row
 * written as one run: written the other way, the stores of a block fall
 * rows * 4 bytes apart, which for 1024 rows is one L1 set.
 */
void
lt_cpu_transpose(const lt_backend *be, const float *src, float *dst,
    int rows, int cols)
{
    const float  *in;
    float        *out;
    int           i, j, i0, i1;

    for (i0 = 0; i0 < rows; i0 += 64) {
        i1 = i0 + 64 < rows ? i0 + 64 : rows;

        for (j = 0; j < cols; j++) {
            in = src + (size_t) i0 * cols + j;
            out = dst + (size_t) j * rows + i0;

            for (i = 0; i < i1 - i0; i++) {
                out[i] = in[(size_t) i * cols];
            }
        }
    }
}


void
lt_cpu_channel_bias(const lt_backend *be, float *y, const float *bias,
    int n, int c, int s)
{
    float  *p, b;
    int     i, j, k;

    for (i = 0; i < n; i++) {
        for (j = 0; j < c; j++) {
            p = y + ((size_t) i * c + j) * s;
            b = bias[j];

            for (k = 0; k < s; k++) {
                p[k] += b;
            }
        }
    }
}


void
lt_cpu_channel_sum(const lt_backend *be, float *out, const float *g, int n,
    int c, int s)
{
    const float  *p;
    double        sum;
    int           i, j, k;

    for (j = 0; j < c; j++) {
        sum = 0.0;

        for (i = 0; i < n; i++) {
            p = g + ((size_t) i * c + j) * s;

            for (k = 0; k < s; k++) {
                sum += p[k];
            }
        }

        out[j] = (float) sum;
    }
}


/* PyTorch's adaptive window: [floor(o * in / out), ceil((o + 1) * in / out)) */
static void
lt_adaptive(int o, int in, int out, int *lo, int *hi)
{
    *lo = (int) (((int64_t) o * in) / out);
    *hi = (int) (((int64_t) (o + 1) * in + out - 1) / out);
}


/* The window of output (oy, ox) clipped to the input, and its divisor. */
static float
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


/*
 * Max over one output's window: rows y0.. and columns x0.. of the plane
 * in steps of the dilation, clipped to the input; the first maximum wins
 * and a NaN wins over any number (PyTorch's rule).
 */
static float
lt_pool_max(const float *plane, const lt_window *g, int oy, int ox,
    int32_t *arg)
{
    float  best, v;
    int    iy, ix, y0, x0, y1, x1, at;

    y0 = oy * g->sh - g->ph;
    x0 = ox * g->sw - g->pw;
    y1 = y0 + (g->kh - 1) * g->dh + 1;
    x1 = x0 + (g->kw - 1) * g->dw + 1;
    y1 = y1 < g->h ? y1 : g->h;
    x1 = x1 < g->w ? x1 : g->w;
    y0 += y0 < 0 ? ((-y0 + g->dh - 1) / g->dh) * g->dh : 0;
    x0 += x0 < 0 ? ((-x0 + g->dw - 1) / g->dw) * g->dw : 0;

    best = -INFINITY;
    at = -1;

    for (iy = y0; iy < y1; iy += g->dh) {
        for (ix = x0; ix < x1; ix += g->dw) {
            v = plane[(size_t) iy * g->w + ix];
            if (at < 0 || v > best || isnan(v)) {
                best = v;
                at = iy * g->w + ix;
                if (isnan(v)) {
                    *arg = at;
                    return v;
                }
            }
        }
    }

    *arg = at;
    return best;
}


/* The common 2x2, stride 2 max pool without padding or dilation. */
static int
lt_pool_is_2x2(const lt_window *g)
{
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2
           && g->ph == 0 && g->pw == 0 && g->dh == 1 && g->dw == 1;
}


static void
lt_pool_max_2x2(const float *plane, const lt_window *g, float *y,
    int32_t *arg)
{
    const float  *r0, *r1;
    float         best, v[4];
    int           oy, ox, k, at, i0;

    for (oy = 0; oy < g->oh; oy++) {
        r0 = plane + (size_t) (2 * oy) * g->w;
        r1 = r0 + g->w;

        for (ox = 0; ox < g->ow; ox++) {
            v[0] = r0[2 * ox];
            v[1] = r0[2 * ox + 1];
            v[2] = r1[2 * ox];
            v[3] = r1[2 * ox + 1];
            best = v[0];
            at = 0;

            for (k = 1; k < 4 && !isnan(best); k++) {
                if (v[k] > best || isnan(v[k])) {
                    best = v[k];
                    at = k;
                }
            }

            i0 = 2 * oy * g->w + 2 * ox;
            *y++ = best;
            *arg++ = i0 + (at >> 1) * g->w + (at & 1);
        }
    }
}


void
lt_cpu_pool_forward(const lt_backend *be, lt_pool kind, const lt_window *g,
    int n, const float *x, float *y, int32_t *arg)
{
    const float  *plane;
    double        sum;
    float         div;
    size_t        per;
    int           p, oy, ox, iy, ix, y0, y1, x0, x1;

    per = (size_t) g->oh * g->ow;

    for (p = 0; p < n * g->c; p++) {
        plane = x + (size_t) p * g->h * g->w;

        if (kind == LT_POOL_MAX && lt_pool_is_2x2(g)) {
            lt_pool_max_2x2(plane, g, y, arg);
            y += per;
            arg += per;
            continue;
        }

        for (oy = 0; oy < g->oh; oy++) {
            for (ox = 0; ox < g->ow; ox++) {
                if (kind == LT_POOL_MAX) {
                    *y++ = lt_pool_max(plane, g, oy, ox, arg++);
                    continue;
                }

                div = lt_pool_window(kind, g, oy, ox, &y0, &y1, &x0, &x1);
                sum = 0.0;
                for (iy = y0; iy < y1; iy++) {
                    for (ix = x0; ix < x1; ix++) {
                        sum += plane[(size_t) iy * g->w + ix];
                    }
                }
                *y++ = (float) (sum / div);
            }
        }
    }
}


void
lt_cpu_pool_backward(const lt_backend *be, lt_pool kind, const lt_window *g,
    int n, const float *dy, const int32_t *arg, float *dx)
{
    float  *plane, d, div;
    int     p, oy, ox, iy, ix, y0, y1, x0, x1;

    memset(dx, 0, (size_t) n * g->c * g->h * g->w * sizeof(float));

    for (p = 0; p < n * g->c; p++) {
        plane = dx + (size_t) p * g->h * g->w;

        for (oy = 0; oy < g->oh; oy++) {
            for (ox = 0; ox < g->ow; ox++) {
                if (kind == LT_POOL_MAX) {
                    plane[*arg++] += *dy++;
                    continue;
                }

                div = lt_pool_window(kind, g, oy, ox, &y0, &y1, &x0, &x1);
                d = *dy++ / div;

                for (iy = y0; iy < y1; iy++) {
                    for (ix = x0; ix < x1; ix++) {
                        plane[(size_t) iy * g->w + ix] += d;
                    }
                }
            }
        }
    }
}


void
lt_cpu_embedding_forward(const lt_backend *be, const float *index, int n,
    const float *w, int dim, float *y)
{
    int  i;

    for (i = 0; i < n; i++) {
        memcpy(y + (size_t) i * dim, w + (size_t) index[i] * dim,
               (size_t) dim * sizeof(float));
    }
}


void
lt_cpu_embedding_backward(const lt_backend *be, const float *index, int n,
    const float *dy, int dim, int num, int skip, float *dw)
{
    const float  *d;
    float        *row;
    int           i, j, k;

    memset(dw, 0, (size_t) num * dim * sizeof(float));

    for (i = 0; i < n; i++) {
        k = (int) index[i];
        if (k == skip) {
            continue;
        }

        row = dw + (size_t) k * dim;
        d = dy + (size_t) i * dim;

        for (j = 0; j < dim; j++) {
            row[j] += d[j];
        }
    }
}


void
lt_cpu_dropout_forward(const lt_backend *be, const float *x, float *y,
    float *mask, size_t n, float p, uint64_t seed)
{
    uint64_t  state;
    float     keep;
    size_t    i;

    state = seed;
    keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;

    for (i = 0; i < n; i++) {
        mask[i] = lt_rand_unit(&state) < p ? 0.0f : keep;
    }

    for (i = 0; i < n; i++) {
        y[i] = x[i] * mask[i];
    }
}


void
lt_cpu_mul(const lt_backend *be, const float *a, const float *b, float *y,
    size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        y[i] = a[i] * b[i];
    }
}
