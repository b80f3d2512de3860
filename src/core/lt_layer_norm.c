/*
 * lt_layer_norm.c: BatchNorm1d/2d and LayerNorm.  BatchNorm normalizes
 * with the batch's statistics in train steps (and always without
 * running statistics), with the running ones in predicts; the running
 * statistics move only after the step's loss was found finite
 * (lt_layer_norm_update), from the batch statistics its forward pass
 * saved in its scratch.
 */
#include "lt_layer.h"


/* [n, c, s] of a BatchNorm's input */
static int
lt_bn_spatial(const lt_layer_run *r)
{
    return (int) (lt_shape_numel(&r->li->in) / (size_t) r->l->in);
}


static int
lt_bn_batch(const lt_layer_run *r)
{
    return r->train || r->l->no_stats;
}


/* Its running statistics' entries, after weight and bias when affine. */
static const lt_param_info *
lt_bn_stats(const lt_layer_run *r)
{
    return r->l->no_stats ? NULL : r->p + (r->l->no_bias ? 0 : 2);
}


void
lt_layer_norm_forward(const lt_layer_run *r)
{
    const lt_backend     *be;
    const lt_layer_spec  *l;
    const lt_param_info  *st;
    const float          *gamma, *beta;
    size_t                d;

    be = r->be;
    l = r->l;
    gamma = l->no_bias ? NULL : r->params + r->p[0].offset;
    beta = l->no_bias ? NULL : r->params + r->p[1].offset;

    if (l->kind == LT_LAYER_LAYERNORM) {
        d = lt_shape_numel(&l->norm);
        be->layernorm_forward(be, (int) (r->n * lt_shape_numel(&r->li->in)
                                         / d),
                              (int) d, r->x, r->y, gamma, beta, l->a,
                              r->scratch);
        return;
    }

    st = lt_bn_stats(r);
    be->batchnorm_forward(be, r->n, l->in, lt_bn_spatial(r), r->x, r->y,
                          gamma, beta,
                          st ? r->params + st[0].offset : NULL,
                          st ? r->params + st[1].offset : NULL,
                          l->a, lt_bn_batch(r), r->scratch);
}


void
lt_layer_norm_backward(const lt_layer_run *r)
{
    const lt_backend     *be;
    const lt_layer_spec  *l;
    const float          *gamma;
    float                *dgamma, *dbeta;
    size_t                d;

    be = r->be;
    l = r->l;
    gamma = l->no_bias ? NULL : r->params + r->p[0].offset;
    dgamma = l->no_bias ? NULL : r->grad + r->p[0].offset;
    dbeta = l->no_bias ? NULL : r->grad + r->p[1].offset;

    if (l->kind == LT_LAYER_LAYERNORM) {
        d = lt_shape_numel(&l->norm);
        be->layernorm_backward(be, (int) (r->n * lt_shape_numel(&r->li->in)
                                          / d),
                               (int) d, r->x, r->dy, r->dx, gamma,
                               r->scratch, dgamma, dbeta);
        return;
    }

    be->batchnorm_backward(be, r->n, l->in, lt_bn_spatial(r), r->x, r->dy,
                           r->dx, gamma, r->scratch, lt_bn_batch(r), dgamma,
                           dbeta);
}


void
lt_layer_norm_update(const lt_layer_run *r, float *params_out)
{
    const lt_param_info  *st;

    if (r->l->kind == LT_LAYER_LAYERNORM || r->l->no_stats) {
        return;
    }

    st = lt_bn_stats(r);
    r->be->batchnorm_running(r->be, r->l->in, r->l->b, r->scratch,
                             r->params + st[0].offset,
                             r->params + st[1].offset,
                             r->params + st[2].offset,
                             params_out + st[0].offset,
                             params_out + st[1].offset,
                             params_out + st[2].offset);
}
