/*
 * lt_check.c: checking request tensors against a model, with messages a
 * client can act on (they name the expected and the received shape).
 */
#include <limits.h>
#include <math.h>

#include "lt_model.h"

#define LT_SHAPE_BUF  96


/* Rows of a checked x: a 1-D x is one sample. */
static int64_t
lt_rows(const lt_tensor *x)
{
    return x->ndim == 1 ? 1 : x->shape[0];
}


int
lt_model_check_input(const lt_model *m, const lt_tensor *x, lt_err *err)
{
    char  buf[LT_SHAPE_BUF];

    if (x->ndim == 1 && x->shape[0] == m->in_dim) {
        return 0;
    }

    if (x->ndim != 2 || x->shape[1] != m->in_dim) {
        return lt_error(err, "x has shape %s, expected [N, %d]",
                        lt_shape_str(x, buf, sizeof(buf)), m->in_dim);
    }

    if (x->shape[0] < 1 || x->shape[0] > INT_MAX) {
        return lt_error(err, "x has shape %s, expected [N, %d] with N"
                        " in [1, %d]", lt_shape_str(x, buf, sizeof(buf)),
                        m->in_dim, INT_MAX);
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
    char  buf[LT_SHAPE_BUF];
    int   fits;

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


int
lt_model_check_target(const lt_model *m, const lt_tensor *x,
    const lt_tensor *y, lt_err *err)
{
    int64_t  n;

    if (lt_model_check_input(m, x, err) != 0) {
        return -1;
    }

    n = lt_rows(x);

    if (m->spec.loss == LT_LOSS_CE) {
        return lt_check_class_target(m, n, y, err);
    }

    if (m->spec.loss == LT_LOSS_NLL) {
        return lt_check_index_target(m, n, y, err);
    }

    return lt_check_dense_target(m, n, y, err);
}
