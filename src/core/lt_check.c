/*
 * lt_check.c: checking request tensors against a model, with messages a
 * client can act on (they name the expected and the received shape).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "lt_layer.h"

#define LT_SHAPE_BUF  96


/* Rows of a checked x: an unbatched x is one sample. */
static int64_t
lt_rows(const lt_model *m, const lt_tensor *x)
{
    return x->ndim == m->in_shape.ndim ? 1 : x->shape[0];
}


/* "[N, 1, 28, 28]" */
static char *
lt_expected_x(const lt_model *m, char *buf, size_t size)
{
    char  in[LT_SHAPE_BUF / 2];

    lt_shape_print(&m->in_shape, in, sizeof(in));
    snprintf(buf, size, "[N, %.40s", in + 1);

    return buf;
}


/* Embedding's indices arrive as floats (the codec converts every
 * dtype): each must be a whole number naming one of its embeddings. */
static int
lt_check_x_indices(const lt_model *m, const lt_tensor *x, lt_err *err)
{
    const lt_layer_spec  *l;
    int64_t               i, n, len;
    float                 v;

    l = &m->spec.layers[0];
    len = m->in_dim;
    n = lt_rows(m, x) * len;

    for (i = 0; i < n; i++) {
        v = x->data[i];

        if (v >= 0.0f && v < (float) l->in && v == floorf(v)) {
            continue;
        }

        if (x->ndim == m->in_shape.ndim) {
            return lt_error(err, "x[%lld] = %g is not an index in [0, %d) "
                            "of layer \"%s\" (Embedding)", (long long) i,
                            (double) v, l->in, l->name);
        }

        return lt_error(err, "x[%lld, %lld] = %g is not an index in [0, %d)"
                        " of layer \"%s\" (Embedding)",
                        (long long) (i / len), (long long) (i % len),
                        (double) v, l->in, l->name);
    }

    return 0;
}


int
lt_model_check_input(const lt_model *m, const lt_tensor *x, lt_err *err)
{
    char  buf[LT_SHAPE_BUF], want[LT_SHAPE_BUF];
    int   i, off, fits;

    /* [N, shape...], or one unbatched sample [shape...] */
    off = x->ndim == m->in_shape.ndim ? 0 : 1;
    fits = x->ndim == m->in_shape.ndim + off;

    for (i = 0; fits && i < m->in_shape.ndim; i++) {
        fits = x->shape[off + i] == m->in_shape.d[i];
    }

    if (!fits) {
        return lt_error(err, "x has shape %s, expected %s",
                        lt_shape_str(x, buf, sizeof(buf)),
                        lt_expected_x(m, want, sizeof(want)));
    }

    if (off && (x->shape[0] < 1 || x->shape[0] > INT_MAX)) {
        return lt_error(err, "x has shape %s, expected %s with N"
                        " in [1, %d]", lt_shape_str(x, buf, sizeof(buf)),
                        lt_expected_x(m, want, sizeof(want)), INT_MAX);
    }

    if (m->in_index) {
        return lt_check_x_indices(m, x, err);
    }

    return 0;
}


/*
 * Regression targets hold N * out_dim numbers laid out as [N, out_dim]:
 * that shape itself, [N] when out_dim is 1, [out_dim] (or a scalar) when
 * N is 1.
 */
static int
lt_check_dense_target(const lt_model *m, int64_t n, const lt_tensor *y,
    lt_err *err)
{
    const lt_shape  *out;
    char             buf[LT_SHAPE_BUF];
    int              fits, i;

    out = &m->layer[m->spec.nlayers - 1].out;

    switch (y->ndim) {
    case 0:
        fits = n == 1 && m->out_dim == 1;
        break;
    case 1:
        fits = (y->shape[0] == n && m->out_dim == 1)
               || (y->shape[0] == m->out_dim && n == 1);
        break;
    case 2:
        fits = y->shape[0] == n && y->shape[1] == m->out_dim;
        break;
    default:
        fits = 0;
    }

    /* or [N, the output shape...] */
    if (!fits && y->ndim == 1 + out->ndim && y->shape[0] == n) {
        for (i = 0, fits = 1; i < out->ndim; i++) {
            fits = fits && y->shape[1 + i] == out->d[i];
        }
    }

    if (fits) {
        return 0;
    }

    return lt_error(err, "y has shape %s, expected [%lld, %d]",
                    lt_shape_str(y, buf, sizeof(buf)), (long long) n,
                    m->out_dim);
}


/* Class indices arrive as floats (the codec converts every dtype): each
 * must be a whole number naming one of the out_dim classes. */
static int
lt_check_indices(const lt_model *m, int64_t n, const lt_tensor *y,
    lt_err *err)
{
    float    v;
    int64_t  i;

    for (i = 0; i < n; i++) {
        v = y->data[i];

        if (!(v >= 0.0f && v < (float) m->out_dim && v == floorf(v))) {
            return lt_error(err, "y[%lld] = %g is not a class index in"
                            " [0, %d)", (long long) i, (double) v,
                            m->out_dim);
        }
    }

    return 0;
}


/* Cross-entropy targets: [N] class indices (a scalar when N is 1) or
 * [N, out_dim] one-hot / probability rows. */
static int
lt_check_class_target(const lt_model *m, int64_t n, const lt_tensor *y,
    lt_err *err)
{
    char  buf[LT_SHAPE_BUF];

    if ((y->ndim == 1 && y->shape[0] == n) || (y->ndim == 0 && n == 1)) {
        return lt_check_indices(m, n, y, err);
    }

    if (y->ndim == 2 && y->shape[0] == n && y->shape[1] == m->out_dim) {
        return 0;
    }

    return lt_error(err, "y has shape %s, expected [%lld] class indices or"
                    " [%lld, %d] one-hot rows",
                    lt_shape_str(y, buf, sizeof(buf)), (long long) n,
                    (long long) n, m->out_dim);
}


/* NLLLoss takes class indices only: [N] (a scalar when N is 1). */
static int
lt_check_index_target(const lt_model *m, int64_t n, const lt_tensor *y,
    lt_err *err)
{
    char  buf[LT_SHAPE_BUF];

    if ((y->ndim == 1 && y->shape[0] == n) || (y->ndim == 0 && n == 1)) {
        return lt_check_indices(m, n, y, err);
    }

    return lt_error(err, "y has shape %s, expected [%lld] class indices "
                    "(NLLLoss)", lt_shape_str(y, buf, sizeof(buf)),
                    (long long) n);
}


/* A BatchNorm normalizing with the batch's statistics needs two values
 * or more per channel, as in PyTorch. */
static int
lt_check_batch_stats(const lt_model *m, int64_t n, lt_err *err)
{
    const lt_layer_spec  *l;
    int                   i;

    for (i = 0; i < m->spec.nlayers; i++) {
        l = &m->spec.layers[i];

        if ((l->kind == LT_LAYER_BATCHNORM1D
             || l->kind == LT_LAYER_BATCHNORM2D)
            && (size_t) n * lt_shape_numel(&m->layer[i].in)
               / (size_t) l->in < 2)
        {
            return lt_error(err, "layer \"%s\" (%s) needs more than one "
                            "value per channel to train: send a batch of "
                            "2 or more", l->name, lt_layer_name(l->kind));
        }
    }

    return 0;
}


int
lt_model_check_target(const lt_model *m, const lt_tensor *x,
    const lt_tensor *y, lt_err *err)
{
    int64_t  n;

    if (lt_model_check_input(m, x, err) != 0) {
        return -1;
    }

    n = lt_rows(m, x);

    if (lt_check_batch_stats(m, n, err) != 0) {
        return -1;
    }

    if (m->spec.loss == LT_LOSS_CE) {
        return lt_check_class_target(m, n, y, err);
    }

    if (m->spec.loss == LT_LOSS_NLL) {
        return lt_check_index_target(m, n, y, err);
    }

    return lt_check_dense_target(m, n, y, err);
}
