/*
 * lt_layer.c: a layer's forward and backward pass, by kind: Linear,
 * Identity and Flatten here (Flatten only renames the dims of data that
 * is already contiguous), the families in lt_layer_*.c.
 */
#include <string.h>

#include "lt_layer.h"


/* A Linear acts on the last dim: every other dim is a row. */
static int
lt_linear_rows(const lt_layer_run *r)
{
    return (int) ((size_t) r->n * lt_shape_numel(&r->li->in)
                  / (size_t) r->l->in);
}


static void
lt_linear_forward(const lt_layer_run *r)
{
    const lt_backend     *be;
    const lt_layer_spec  *l;
    int                   rows;

    be = r->be;
    l = r->l;
    rows = lt_linear_rows(r);

    /* y = x W^T + b, W stored [out, in] as in PyTorch */
    be->gemm(be, 0, 1, rows, l->out, l->in, 1.0f, r->x, l->in,
             r->params + r->p[0].offset, l->in, 0.0f, r->y, l->out);

    if (!l->no_bias) {
        be->add_bias(be, r->y, r->params + r->p[1].offset, rows, l->out);
    }
}


static void
lt_linear_backward(const lt_layer_run *r)
{
    const lt_backend     *be;
    const lt_layer_spec  *l;
    int                   rows;

    be = r->be;
    l = r->l;
    rows = lt_linear_rows(r);

    /* dX = dY W, before anything else may change W */
    if (r->dx != NULL) {
        be->gemm(be, 0, 0, rows, l->in, l->out, 1.0f, r->dy, l->out,
                 r->params + r->p[0].offset, l->in, 0.0f, r->dx, l->in);
    }

    /* dW = dY^T X; db = column sums of dY */
    be->gemm(be, 1, 0, l->out, l->in, rows, 1.0f, r->dy, l->out, r->x,
             l->in, 0.0f, r->grad + r->p[0].offset, l->in);

    if (!l->no_bias) {
        be->sum_rows(be, r->grad + r->p[1].offset, r->dy, rows, l->out);
    }
}


static void
lt_copy_forward(const lt_layer_run *r)
{
    r->be->copy(r->be, r->y, r->x,
                (size_t) r->n * lt_shape_numel(&r->li->out) * sizeof(float));
}


static void
lt_copy_backward(const lt_layer_run *r)
{
    if (r->dx != NULL) {
        r->be->copy(r->be, r->dx, r->dy, (size_t) r->n
                    * lt_shape_numel(&r->li->out) * sizeof(float));
    }
}


void
lt_layer_forward(const lt_layer_run *r)
{
    switch (r->l->kind) {

    case LT_LAYER_LINEAR:
        lt_linear_forward(r);
        return;

    case LT_LAYER_IDENTITY:
    case LT_LAYER_FLATTEN:
        lt_copy_forward(r);
        return;

    case LT_LAYER_CONV1D:
    case LT_LAYER_CONV2D:
        lt_layer_conv_forward(r);
        return;

    case LT_LAYER_MAXPOOL1D:
    case LT_LAYER_MAXPOOL2D:
    case LT_LAYER_AVGPOOL1D:
    case LT_LAYER_AVGPOOL2D:
    case LT_LAYER_ADAPTIVE_AVGPOOL2D:
        lt_layer_pool_forward(r);
        return;

    case LT_LAYER_BATCHNORM1D:
    case LT_LAYER_BATCHNORM2D:
    case LT_LAYER_LAYERNORM:
        lt_layer_norm_forward(r);
        return;

    case LT_LAYER_EMBEDDING:
        lt_layer_embed_forward(r);
        return;

    default:
        lt_layer_act_forward(r);
        return;
    }
}


void
lt_layer_backward(const lt_layer_run *r)
{
    switch (r->l->kind) {

    case LT_LAYER_LINEAR:
        lt_linear_backward(r);
        return;

    case LT_LAYER_IDENTITY:
    case LT_LAYER_FLATTEN:
        lt_copy_backward(r);
        return;

    case LT_LAYER_CONV1D:
    case LT_LAYER_CONV2D:
        lt_layer_conv_backward(r);
        return;

    case LT_LAYER_MAXPOOL1D:
    case LT_LAYER_MAXPOOL2D:
    case LT_LAYER_AVGPOOL1D:
    case LT_LAYER_AVGPOOL2D:
    case LT_LAYER_ADAPTIVE_AVGPOOL2D:
        lt_layer_pool_backward(r);
        return;

    case LT_LAYER_BATCHNORM1D:
    case LT_LAYER_BATCHNORM2D:
    case LT_LAYER_LAYERNORM:
        lt_layer_norm_backward(r);
        return;

    case LT_LAYER_EMBEDDING:
        lt_layer_embed_backward(r);
        return;

    default:
        lt_layer_act_backward(r);
        return;
    }
}
