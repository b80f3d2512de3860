/*
 * lt_layer_conv.c: Conv1d and Conv2d as im2col + gemm, one sample at a
 * time (the columns of one sample fit in cache where a batch's would
 * not), a product per group.  Conv1d is Conv2d over a height of 1.
 * A 1x1 convolution with stride 1 and no padding reads its input as the
 * columns themselves.
 *
 * Where the backend has im2row (the CPU), an ungrouped, undilated
 * forward pass multiplies the patches as rows instead, Y^T = rows W'^T
 * with W' the weight tap-major ([out, kh, kw, c]), and transposes Y^T
 * back: OpenBLAS runs that product up to 1.8x faster (lt_cpu_im2row).
 */
#include "lt_layer.h"


static int
lt_conv_direct(const lt_window *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1
           && g->ph == 0 && g->pw == 0;
}


int
lt_layer_conv_by_rows(const lt_layer_spec *l, const lt_window *g,
    const lt_backend *be)
{
    /* below 16 numbers per kernel row (LeNet's first 5x1, a 3x3 over
     * RGB) or 16 outputs, the copies and the transpose cost more than the
     * product saves: measured 2-3x slower there */
    return be->im2row != NULL && be->transpose != NULL && l->groups == 1
           && g->dw == 1 && !lt_conv_direct(g) && g->kw * g->c >= 16
           && l->out >= 16;
}


static void
lt_conv_forward_rows(const lt_layer_run *r, const lt_window *g)
{
    const lt_backend     *be;
    const lt_layer_spec  *l;
    const float          *w;
    size_t                k, s, in_n, out_n;
    float                *row, *pad, *yt, *wt;
    int                   i, co, taps;

    be = r->be;
    l = r->l;
    taps = g->kh * g->kw;
    k = (size_t) g->c * taps;
    s = (size_t) g->oh * g->ow;
    in_n = (size_t) g->c * g->h * g->w;
    out_n = (size_t) l->out * s;
    w = r->params + r->p[0].offset;

    row = r->scratch;
    pad = row + s * k;
    yt = pad + ((size_t) g->h + 2 * g->ph) * (g->w + 2 * g->pw) * g->c;
    wt = yt + s * l->out;

    /* W' [out, kh * kw, c]: each output's [c, kh * kw] transposed */
    for (co = 0; co < l->out; co++) {
        be->transpose(be, w + co * k, wt + co * k, g->c, taps);
    }

    for (i = 0; i < r->n; i++) {
        be->im2row(be, g, r->x + i * in_n, pad, row);
        be->gemm(be, 0, 1, (int) s, l->out, (int) k, 1.0f, row, (int) k, wt,
                 (int) k, 0.0f, yt, l->out);
        be->transpose(be, yt, r->y + i * out_n, (int) s, l->out);
    }
}


void
lt_layer_conv_forward(const lt_layer_run *r)
{
    const lt_backend     *be;
    const lt_layer_spec  *l;
    const float          *w, *x, *col;
    lt_window             g;
    size_t                in_n, out_n;
    float                *y;
    int                   i, j, k, s, cog, groups;

    be = r->be;
    l = r->l;
    lt_layer_window(l, r->li, &g);
    groups = l->groups;
    k = g.c / groups * g.kh * g.kw;
    s = g.oh * g.ow;
    cog = l->out / groups;
    in_n = (size_t) g.c * g.h * g.w;
    out_n = (size_t) l->out * s;
    w = r->params + r->p[0].offset;

    /* by rows, every sample is done before the loop */
    i = 0;
    if (lt_layer_conv_by_rows(l, &g, be)) {
        lt_conv_forward_rows(r, &g);
        i = r->n;
    }

    for ( /* i */ ; i < r->n; i++) {
        x = r->x + i * in_n;
        y = r->y + i * out_n;

        if (lt_conv_direct(&g)) {
            col = x;
        } else {
            be->im2col(be, &g, x, r->scratch);
            col = r->scratch;
        }

        for (j = 0; j < groups; j++) {
            be->gemm(be, 0, 0, cog, s, k, 1.0f, w + (size_t) j * cog * k, k,
                     col + (size_t) j * k * s, s, 0.0f,
                     y + (size_t) j * cog * s, s);
        }
    }

    if (!l->no_bias) {
        be->channel_bias(be, r->y, r->params + r->p[1].offset, r->n,
                         l->out, s);
    }
}


void
lt_layer_conv_backward(const lt_layer_run *r)
{
    const lt_backend     *be;
    const lt_layer_spec  *l;
    const float          *w, *x, *dy, *col;
    lt_window             g;
    size_t                in_n, out_n, cols;
    float                *dw, *dcol;
    int                   i, j, k, s, cog, groups, direct;

    be = r->be;
    l = r->l;
    lt_layer_window(l, r->li, &g);
    groups = l->groups;
    k = g.c / groups * g.kh * g.kw;
    s = g.oh * g.ow;
    cog = l->out / groups;
    in_n = (size_t) g.c * g.h * g.w;
    out_n = (size_t) l->out * s;
    cols = (size_t) g.c * g.kh * g.kw * s;
    w = r->params + r->p[0].offset;
    dw = r->grad + r->p[0].offset;
    direct = lt_conv_direct(&g);
    dcol = r->scratch + cols;

    for (i = 0; i < r->n; i++) {
        x = r->x + i * in_n;
        dy = r->dy + i * out_n;

        if (direct) {
            col = x;
        } else {
            be->im2col(be, &g, x, r->scratch);
            col = r->scratch;
        }

        for (j = 0; j < groups; j++) {
            /* dW_j (+)= dY_j col_j^T */
            be->gemm(be, 0, 1, cog, k, s, 1.0f, dy + (size_t) j * cog * s,
                     s, col + (size_t) j * k * s, s, i ? 1.0f : 0.0f,
                     dw + (size_t) j * cog * k, k);

            if (r->dx == NULL) {
                continue;
            }

            /* dcol_j = W_j^T dY_j, straight into dx when direct */
            be->gemm(be, 1, 0, k, s, cog, 1.0f, w + (size_t) j * cog * k, k,
                     dy + (size_t) j * cog * s, s, 0.0f,
                     (direct ? r->dx + i * in_n : dcol) + (size_t) j * k * s,
                     s);
        }

        if (r->dx != NULL && !direct) {
            be->col2im(be, &g, dcol, r->dx + i * in_n);
        }
    }

    if (!l->no_bias) {
        be->channel_sum(be, r->grad + r->p[1].offset, r->dy, r->n, l->out,
                        s);
    }
}
