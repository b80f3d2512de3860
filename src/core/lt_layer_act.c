/*
 * lt_layer_act.c: activations and Dropout.  The first five activations
 * are the backend's act_forward (Softmax and LogSoftmax per row), the
 * rest elementwise ops with arguments; Dropout multiplies by a mask it
 * draws in train steps only, and is the identity in predicts.
 */
#include "lt_layer.h"


static lt_act
lt_act_of(const lt_layer_spec *l)
{
    switch (l->kind) {
    case LT_LAYER_TANH:       return LT_ACT_TANH;
    case LT_LAYER_SIGMOID:    return LT_ACT_SIGMOID;
    case LT_LAYER_SOFTMAX:    return LT_ACT_SOFTMAX;
    case LT_LAYER_LOGSOFTMAX: return LT_ACT_LOGSOFTMAX;
    case LT_LAYER_GELU:
        return l->approximate ? LT_ACT_GELU_TANH : LT_ACT_GELU;
    case LT_LAYER_LEAKY_RELU: return LT_ACT_LEAKY_RELU;
    case LT_LAYER_ELU:        return LT_ACT_ELU;
    case LT_LAYER_SILU:       return LT_ACT_SILU;
    case LT_LAYER_SOFTPLUS:   return LT_ACT_SOFTPLUS;
    default:                  return LT_ACT_RELU;
    }
}


void
lt_layer_act_forward(const lt_layer_run *r)
{
    const lt_backend  *be;
    lt_act             act;
    size_t             width;

    be = r->be;
    act = lt_act_of(r->l);
    width = lt_shape_numel(&r->li->out);

    if (r->l->kind == LT_LAYER_DROPOUT) {
        if (r->train && r->l->a > 0.0f) {
            be->dropout_forward(be, r->x, r->y, r->scratch,
                                (size_t) r->n * width, r->l->a, r->seed);
        } else {
            be->copy(be, r->y, r->x, (size_t) r->n * width * sizeof(float));
        }
        return;
    }

    if (act >= LT_ACT_GELU) {
        be->act_arg_forward(be, act, r->l->a, r->l->b, r->x, r->y,
                            (size_t) r->n * width);
        return;
    }

    be->act_forward(be, act, r->x, r->y, r->n, (int) width);
}


void
lt_layer_act_backward(const lt_layer_run *r)
{
    const lt_backend  *be;
    lt_act             act;
    size_t             width;

    be = r->be;
    act = lt_act_of(r->l);
    width = lt_shape_numel(&r->li->out);

    if (r->dx == NULL) {
        return;
    }

    if (r->l->kind == LT_LAYER_DROPOUT) {
        if (r->l->a > 0.0f) {
            be->mul(be, r->dy, r->scratch, r->dx, (size_t) r->n * width);
        } else {
            be->copy(be, r->dx, r->dy,
                     (size_t) r->n * width * sizeof(float));
        }
        return;
    }

    if (act >= LT_ACT_GELU) {
        be->act_arg_backward(be, act, r->l->a, r->l->b, r->x, r->y, r->dy,
                             r->dx, (size_t) r->n * width);
        return;
    }

    be->act_backward(be, act, r->x, r->y, r->dy, r->dx, r->n, (int) width);
}
