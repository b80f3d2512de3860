/*
 * lt_layer_conv.c: Conv1d and Conv2d as im2col + gemm, one sample at a
 * time (the columns of one sample fit in cache where a batch's would
 * not), a product per group.  Conv1d is Conv2d over a height of 1.
 * A 1x1 convolution with stride 1 and no padding reads its input as the
 * columns themselves.
 */
#include "lt_layer.h"


static int
lt_conv_direct(const lt_window *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1
           && g->ph == 0 && g->pw == 0;
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

    for (i = 0; i < r->n; i++) {
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
