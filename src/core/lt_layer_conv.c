/*
 * lt_layer_conv.c: Conv1d and Conv2d as im2col + gemm, a product per
 * group.  Conv1d is Conv2d over a height of 1.
 *
 * Where one sample's columns are small (LeNet's: 15,000-20,000 floats),
 * a product per sample is too small for OpenBLAS to run at speed, so a
 * chunk of samples is laid side by side in one column matrix
 * (im2col_n) and one product covers the chunk; its output [out, chunk,
 * s] is swapped back to sample order.  The chunk is bounded so its
 * columns stay in cache (LT_CONV_CHUNK_FLOATS).  Where one sample's
 * columns already fill that (or the backend has no im2col_n), it goes
 * a sample at a time, and a 1x1 convolution with stride 1 and no
 * padding reads its input as the columns themselves.
 */
#include "lt_layer.h"

/* a chunk's columns (and its output) within 512 KiB: a quarter of L2 */
#define LT_CONV_CHUNK_FLOATS  (128 * 1024)


static int
lt_conv_direct(const lt_window *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1
           && g->ph == 0 && g->pw == 0;
}


int
lt_layer_conv_chunk(const lt_layer_spec *l, const lt_window *g)
{
    size_t  cols, outs, most;

    cols = (size_t) g->c * g->kh * g->kw * g->oh * g->ow;
    outs = (size_t) l->out * g->oh * g->ow;
    most = cols > outs ? cols : outs;

    if (most == 0 || most >= LT_CONV_CHUNK_FLOATS / 2) {
        return 1;
    }

    return (int) (LT_CONV_CHUNK_FLOATS / most);
}


static int
lt_conv_chunked(const lt_layer_run *r, int chunk)
{
    return chunk > 1 && r->n > 1 && r->be->im2col_n != NULL
           && r->be->col2im_n != NULL && r->be->swap_ab != NULL;
}


/* the scratch of a chunked pass: [col | dcol | out], chunk samples each */
static void
lt_conv_chunk_scratch(const lt_layer_run *r, const lt_window *g, int chunk,
    float **col, float **dcol, float **out)
{
    size_t  cols;

    cols = (size_t) chunk * g->c * g->kh * g->kw * g->oh * g->ow;
    *col = r->scratch;
    *dcol = r->scratch + cols;
    *out = r->scratch + 2 * cols;
}


static void
lt_conv_forward_chunked(const lt_layer_run *r, const lt_window *g,
    int chunk)
{
    const lt_backend     *be;
    const lt_layer_spec  *l;
    const float          *w;
    size_t                in_n, out_n, ld;
    float                *col, *dcol, *out;
    int                   i, j, b, k, s, cog, groups;

    be = r->be;
    l = r->l;
    groups = l->groups;
    k = g->c / groups * g->kh * g->kw;
    s = g->oh * g->ow;
    cog = l->out / groups;
    in_n = (size_t) g->c * g->h * g->w;
    out_n = (size_t) l->out * s;
    w = r->params + r->p[0].offset;
    lt_conv_chunk_scratch(r, g, chunk, &col, &dcol, &out);

    for (i = 0; i < r->n; i += b) {
        b = r->n - i < chunk ? r->n - i : chunk;
        ld = (size_t) b * s;

        be->im2col_n(be, g, r->x + i * in_n, b, col);

        for (j = 0; j < groups; j++) {
            be->gemm(be, 0, 0, cog, (int) ld, k, 1.0f,
                     w + (size_t) j * cog * k, k, col + (size_t) j * k * ld,
                     (int) ld, 0.0f, out + (size_t) j * cog * ld, (int) ld);
        }

        /* [out, b, s] -> [b, out, s] */
        be->swap_ab(be, out, r->y + i * out_n, l->out, b, s);
    }
}


static void
lt_conv_backward_chunked(const lt_layer_run *r, const lt_window *g,
    int chunk)
{
    const lt_backend     *be;
    const lt_layer_spec  *l;
    const float          *w;
    size_t                in_n, out_n, ld;
    float                *dw, *col, *dcol, *dy;
    int                   i, j, b, k, s, cog, groups;

    be = r->be;
    l = r->l;
    groups = l->groups;
    k = g->c / groups * g->kh * g->kw;
    s = g->oh * g->ow;
    cog = l->out / groups;
    in_n = (size_t) g->c * g->h * g->w;
    out_n = (size_t) l->out * s;
    w = r->params + r->p[0].offset;
    dw = r->grad + r->p[0].offset;
    lt_conv_chunk_scratch(r, g, chunk, &col, &dcol, &dy);

    for (i = 0; i < r->n; i += b) {
        b = r->n - i < chunk ? r->n - i : chunk;
        ld = (size_t) b * s;

        be->im2col_n(be, g, r->x + i * in_n, b, col);
        /* [b, out, s] -> [out, b, s], the chunk's dY side by side */
        be->swap_ab(be, r->dy + i * out_n, dy, b, l->out, s);

        for (j = 0; j < groups; j++) {
            /* dW_j (+)= dY_j col_j^T */
            be->gemm(be, 0, 1, cog, k, (int) ld, 1.0f,
                     dy + (size_t) j * cog * ld, (int) ld,
                     col + (size_t) j * k * ld, (int) ld, i ? 1.0f : 0.0f,
                     dw + (size_t) j * cog * k, k);

            if (r->dx != NULL) {
                /* dcol_j = W_j^T dY_j */
                be->gemm(be, 1, 0, k, (int) ld, cog, 1.0f,
                         w + (size_t) j * cog * k, k,
                         dy + (size_t) j * cog * ld, (int) ld, 0.0f,
                         dcol + (size_t) j * k * ld, (int) ld);
            }
        }

        if (r->dx != NULL) {
            be->col2im_n(be, g, dcol, b, r->dx + i * in_n);
        }
    }
}


/* one sample at a time: the columns of one sample in scratch */
static void
lt_conv_forward_samples(const lt_layer_run *r, const lt_window *g)
{
    const lt_backend     *be;
    const lt_layer_spec  *l;
    const float          *w, *x, *col;
    size_t                in_n, out_n;
    float                *y;
    int                   i, j, k, s, cog, groups;

    be = r->be;
    l = r->l;
    groups = l->groups;
    k = g->c / groups * g->kh * g->kw;
    s = g->oh * g->ow;
    cog = l->out / groups;
    in_n = (size_t) g->c * g->h * g->w;
    out_n = (size_t) l->out * s;
    w = r->params + r->p[0].offset;

    for (i = 0; i < r->n; i++) {
        x = r->x + i * in_n;
        y = r->y + i * out_n;

        if (lt_conv_direct(g)) {
            col = x;
        } else {
            be->im2col(be, g, x, r->scratch);
            col = r->scratch;
        }

        for (j = 0; j < groups; j++) {
            be->gemm(be, 0, 0, cog, s, k, 1.0f, w + (size_t) j * cog * k, k,
                     col + (size_t) j * k * s, s, 0.0f,
                     y + (size_t) j * cog * s, s);
        }
    }
}


static void
lt_conv_backward_samples(const lt_layer_run *r, const lt_window *g)
{
    const lt_backend     *be;
    const lt_layer_spec  *l;
    const float          *w, *x, *dy, *col;
    size_t                in_n, out_n, cols;
    float                *dw, *dcol;
    int                   i, j, k, s, cog, groups, direct;

    be = r->be;
    l = r->l;
    groups = l->groups;
    k = g->c / groups * g->kh * g->kw;
    s = g->oh * g->ow;
    cog = l->out / groups;
    in_n = (size_t) g->c * g->h * g->w;
    out_n = (size_t) l->out * s;
    cols = (size_t) g->c * g->kh * g->kw * s;
    w = r->params + r->p[0].offset;
    dw = r->grad + r->p[0].offset;
    direct = lt_conv_direct(g);
    dcol = r->scratch + cols;

    for (i = 0; i < r->n; i++) {
        x = r->x + i * in_n;
        dy = r->dy + i * out_n;

        if (direct) {
            col = x;
        } else {
            be->im2col(be, g, x, r->scratch);
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
            be->col2im(be, g, dcol, r->dx + i * in_n);
        }
    }
}


void
lt_layer_conv_forward(const lt_layer_run *r)
{
    lt_window  g;
    int        chunk;

    lt_layer_window(r->l, r->li, &g);
    chunk = lt_layer_conv_chunk(r->l, &g);

    if (lt_conv_chunked(r, chunk)) {
        lt_conv_forward_chunked(r, &g, chunk);

    } else {
        lt_conv_forward_samples(r, &g);
    }

    if (!r->l->no_bias) {
        r->be->channel_bias(r->be, r->y, r->params + r->p[1].offset, r->n,
                            r->l->out, g.oh * g.ow);
    }
}


void
lt_layer_conv_backward(const lt_layer_run *r)
{
    lt_window  g;
    int        chunk;

    lt_layer_window(r->l, r->li, &g);
    chunk = lt_layer_conv_chunk(r->l, &g);

    if (lt_conv_chunked(r, chunk)) {
        lt_conv_backward_chunked(r, &g, chunk);

    } else {
        lt_conv_backward_samples(r, &g);
    }

    if (!r->l->no_bias) {
        r->be->channel_sum(r->be, r->grad + r->p[1].offset, r->dy, r->n,
                           r->l->out, g.oh * g.ow);
    }
}
