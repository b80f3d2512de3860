/*
 * lt_backend_cpu_conv.c: the CPU backend's column ops for convolutions:
 * im2col / col2im of one sample, of several samples side by side (so one
 * product covers a chunk of the batch, lt_layer_conv.c), and the
 * [a, b, s] <-> [b, a, s] swap that puts a chunk's product back in
 * sample order.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("tree-vectorize", "vect-cost-model=dynamic")
#endif

#include <string.h>

#include "lt_backend_cpu.h"


/* The output columns [lo, hi) whose input column ox * sw - pw + kj * dw
 * lies in [0, w): outside them a tap reads padding. */
static void
lt_cpu_tap_span(const lt_window *g, int kj, int *lo, int *hi)
{
    int  off, l, h;

    off = kj * g->dw - g->pw;

    /* the least ox with ox * sw + off >= 0 */
    l = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
    /* the least ox with ox * sw + off >= w */
    h = g->w - off <= 0 ? 0 : (g->w - off + g->sw - 1) / g->sw;

    if (l > g->ow) {
        l = g->ow;
    }
    if (h > g->ow) {
        h = g->ow;
    }
    if (h < l) {
        h = l;
    }

    *lo = l;
    *hi = h;
}


/*
 * Row (ci, ki, kj) of col holds, for every output position, the input
 * pixel that kernel tap sees; rows are ld floats apart (oh * ow for one
 * sample, more when several samples share the rows).
 */
static void
lt_cpu_im2col_ld(const lt_window *g, const float *x, float *col, size_t ld)
{
    const float  *plane, *src;
    float        *row, *out;
    int           ci, ki, kj, oy, ox, iy, lo, hi, sw;

    sw = g->sw;
    row = col;

    for (ci = 0; ci < g->c; ci++) {
        plane = x + (size_t) ci * g->h * g->w;

        for (ki = 0; ki < g->kh; ki++) {
            for (kj = 0; kj < g->kw; kj++, row += ld) {
                lt_cpu_tap_span(g, kj, &lo, &hi);
                out = row;

                for (oy = 0; oy < g->oh; oy++, out += g->ow) {
                    iy = oy * g->sh - g->ph + ki * g->dh;

                    if (iy < 0 || iy >= g->h) {
                        memset(out, 0, (size_t) g->ow * sizeof(float));
                        continue;
                    }

                    /* src[(ox - lo) * sw] is the pixel output ox sees */
                    src = plane + (size_t) iy * g->w + lo * sw
                          + kj * g->dw - g->pw;

                    for (ox = 0; ox < lo; ox++) {
                        out[ox] = 0.0f;
                    }

                    if (sw == 1) {
                        memcpy(out + lo, src,
                               (size_t) (hi - lo) * sizeof(float));

                    } else {
                        for (ox = lo; ox < hi; ox++) {
                            out[ox] = src[(size_t) (ox - lo) * sw];
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


/* x (zeroed first) += each column entry at the pixel it was read from */
static void
lt_cpu_col2im_ld(const lt_window *g, const float *col, size_t ld, float *x)
{
    const float  *row, *in;
    float        *plane, *dst;
    int           ci, ki, kj, oy, ox, iy, lo, hi, sw;

    memset(x, 0, (size_t) g->c * g->h * g->w * sizeof(float));
    sw = g->sw;
    row = col;

    for (ci = 0; ci < g->c; ci++) {
        plane = x + (size_t) ci * g->h * g->w;

        for (ki = 0; ki < g->kh; ki++) {
            for (kj = 0; kj < g->kw; kj++, row += ld) {
                lt_cpu_tap_span(g, kj, &lo, &hi);
                in = row;

                for (oy = 0; oy < g->oh; oy++, in += g->ow) {
                    iy = oy * g->sh - g->ph + ki * g->dh;

                    if (iy < 0 || iy >= g->h) {
                        continue;
                    }

                    dst = plane + (size_t) iy * g->w + lo * sw
                          + kj * g->dw - g->pw;

                    if (sw == 1) {
                        for (ox = lo; ox < hi; ox++) {
                            dst[ox - lo] += in[ox];
                        }

                    } else {
                        for (ox = lo; ox < hi; ox++) {
                            dst[(size_t) (ox - lo) * sw] += in[ox];
                        }
                    }
                }
            }
        }
    }
}


void
lt_cpu_im2col(const lt_backend *be, const lt_window *g, const float *x,
    float *col)
{
    lt_cpu_im2col_ld(g, x, col, (size_t) g->oh * g->ow);
}


void
lt_cpu_col2im(const lt_backend *be, const lt_window *g, const float *col,
    float *x)
{
    lt_cpu_col2im_ld(g, col, (size_t) g->oh * g->ow, x);
}


void
lt_cpu_im2col_n(const lt_backend *be, const lt_window *g, const float *x,
    int n, float *col)
{
    size_t  s, in_n;
    int     i;

    s = (size_t) g->oh * g->ow;
    in_n = (size_t) g->c * g->h * g->w;

    for (i = 0; i < n; i++) {
        lt_cpu_im2col_ld(g, x + i * in_n, col + i * s, (size_t) n * s);
    }
}


void
lt_cpu_col2im_n(const lt_backend *be, const lt_window *g, const float *col,
    int n, float *x)
{
    size_t  s, in_n;
    int     i;

    s = (size_t) g->oh * g->ow;
    in_n = (size_t) g->c * g->h * g->w;

    for (i = 0; i < n; i++) {
        lt_cpu_col2im_ld(g, col + i * s, (size_t) n * s, x + i * in_n);
    }
}


void
lt_cpu_swap_ab(const lt_backend *be, const float *src, float *dst, int a,
    int b, int s)
{
    const float  *in;
    float        *out;
    int           i, j, k;

    for (i = 0; i < a; i++) {
        for (j = 0; j < b; j++) {
            in = src + ((size_t) i * b + j) * s;
            out = dst + ((size_t) j * a + i) * s;

            for (k = 0; k < s; k++) {
                out[k] = in[k];
            }
        }
    }
}
