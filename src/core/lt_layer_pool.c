/*
 * lt_layer_pool.c: MaxPool1d/2d, AvgPool1d/2d and AdaptiveAvgPool2d
 * over the backend's pool ops (a 1-d pool is a 2-d one of height 1).
 * MaxPool keeps each output's argmax in its scratch for the backward
 * pass.
 */
#include "lt_layer.h"


static lt_pool
lt_pool_of(const lt_layer_spec *l)
{
    switch (l->kind) {
    case LT_LAYER_MAXPOOL1D:
    case LT_LAYER_MAXPOOL2D:
        return LT_POOL_MAX;
    case LT_LAYER_ADAPTIVE_AVGPOOL2D:
        return LT_POOL_ADAPTIVE;
    default:
        return l->exclude_pad ? LT_POOL_AVG_EXCL : LT_POOL_AVG;
    }
}


void
lt_layer_pool_forward(const lt_layer_run *r)
{
    lt_window  g;

    lt_layer_window(r->l, r->li, &g);
    r->be->pool_forward(r->be, lt_pool_of(r->l), &g, r->n, r->x, r->y,
                        (int32_t *) r->scratch);
}


void
lt_layer_pool_backward(const lt_layer_run *r)
{
    lt_window  g;

    if (r->dx == NULL) {
        return;
    }

    lt_layer_window(r->l, r->li, &g);
    r->be->pool_backward(r->be, lt_pool_of(r->l), &g, r->n, r->dy,
                         (const int32_t *) r->scratch, r->dx);
}
