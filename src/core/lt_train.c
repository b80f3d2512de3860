/*
 * lt_train.c: forward pass, loss, backward pass and optimizer step of a
 * Sequential model, expressed only in backend operations so the same code
 * drives the CPU and a device backend.
 */
#include <math.h>

#include "lt_layer.h"
#include "lt_optim.h"
#include "lt_rand.h"
#include "lt_workspace.h"

/* One checked batch, every pointer in the backend's memory. */
typedef struct {
    int             n;          /* rows */
    int             one;        /* x was one 1-D sample */
    const float    *x;          /* [n, in_dim] */
    const float    *y;          /* [n, out_dim] targets, or NULL */
    const int32_t  *index;      /* [n] class indices, or NULL */
    int             train;      /* a train step: Dropout, BatchNorm */
    int64_t         step;       /* its number (Dropout's seed) */
} lt_batch;


/* Where the data goes when the backend has memory of its own: into the
 * workspace's copy; a host backend reads the caller's data in place. */
static const float *
lt_to_backend(lt_workspace *ws, float *dev, const float *src, size_t n)
{
    if (ws->be->to_device == NULL) {
        return src;
    }

    ws->be->to_device(ws->be, dev, src, n * sizeof(float));
    return dev;
}


/* The indices were checked by lt_model_check_target: the casts are exact. */
static const int32_t *
lt_class_indices(lt_workspace *ws, const lt_tensor *y, int n)
{
    int  i;

    for (i = 0; i < n; i++) {
        ws->index_host[i] = (int32_t) y->data[i];
    }

    if (ws->be->to_device != NULL) {
        ws->be->to_device(ws->be, ws->index, ws->index_host,
                          (size_t) n * sizeof(int32_t));
    }

    return ws->index;
}


/* Checks x (and y), makes room for the batch and puts it where the
 * backend reads it. */
static int
lt_prepare(const lt_model *m, lt_workspace *ws, const lt_tensor *x,
    const lt_tensor *y, lt_batch *b, lt_err *err)
{
    if (ws->model.hash != m->hash
        || ws->model.param_count != m->param_count)
    {
        return lt_error(err, "the workspace was made for another model");
    }

    if (y != NULL ? lt_model_check_target(m, x, y, err)
                  : lt_model_check_input(m, x, err))
    {
        return -1;
    }

    /* an unbatched sample, as PyTorch takes one */
    b->one = x->ndim == m->in_shape.ndim;
    b->n = b->one ? 1 : (int) x->shape[0];
    b->train = y != NULL;
    b->step = 0;

    if (lt_workspace_reserve(ws, b->n, err) != 0) {
        return -1;
    }

    b->x = lt_to_backend(ws, ws->x, x->data, (size_t) b->n * m->in_dim);
    b->y = NULL;
    b->index = NULL;

    if (y == NULL) {
        return 0;
    }

    if (lt_loss_takes_indices(m->spec.loss) && y->ndim <= 1) {
        b->index = lt_class_indices(ws, y, b->n);

    } else {
        b->y = lt_to_backend(ws, ws->y, y->data,
                             (size_t) b->n * m->out_dim);
    }

    return 0;
}


/* Dropout's seed for one step and layer: the same step draws the same
 * masks, whichever worker runs it. */
static uint64_t
lt_step_seed(const lt_model *m, int64_t step, int layer)
{
    uint64_t  state;

    state = m->seed ^ ((uint64_t) step * 0x9e3779b97f4a7c15ULL)
            ^ ((uint64_t) (layer + 1) << 48);

    return lt_splitmix64(&state);
}


static void
lt_run_init(const lt_model *m, lt_workspace *ws, const float *params,
    const lt_batch *b, int i, lt_layer_run *r)
{
    r->m = m;
    r->be = ws->be;
    r->l = &m->spec.layers[i];
    r->li = &m->layer[i];
    r->p = m->params + m->layer[i].param;
    r->index = i;
    r->n = b->n;
    r->train = b->train;
    r->seed = b->train ? lt_step_seed(m, b->step, i) : 0;
    r->params = params;
    r->x = i > 0 ? ws->act[i - 1] : b->x;
    r->y = ws->act[i];
    r->scratch = ws->scratch[i];
    r->dy = NULL;
    r->dx = NULL;
    r->grad = NULL;
}


/* Runs every layer; returns the last layer's output [n, out_dim]. */
static float *
lt_forward(const lt_model *m, lt_workspace *ws, const float *params,
    const lt_batch *b)
{
    lt_layer_run  r;
    int           i;

    for (i = 0; i < m->spec.nlayers; i++) {
        lt_run_init(m, ws, params, b, i, &r);
        lt_layer_forward(&r);
    }

    return ws->act[m->spec.nlayers - 1];
}


/* Mean loss of the output; d(loss)/d(output) goes into delta[0]. */
static float
lt_loss(const lt_model *m, lt_workspace *ws, const float *out,
    const lt_batch *b)
{
    return lt_loss_apply(ws->be, &m->spec, out, b->index, b->y,
                         ws->delta[0], b->n, m->out_dim);
}


/* Layers before the first with parameters need no gradient. */
static int
lt_first_trained(const lt_model *m)
{
    int  i;

    for (i = 0; i < m->spec.nlayers; i++) {
        if (m->layer[i].nparam > 0
            && !m->params[m->layer[i].param].buffer)
        {
            return i;
        }
    }

    return 0;
}


/*
 * Plain SGD (no momentum) is applied inside the backward pass: a Linear's
 * weight gradient is a product dY^T X, and gemm can add -lr times it to
 * the weights directly (beta = 1 - lr * weight_decay), so the weight
 * gradient is never written and read back, and no separate pass over the
 * parameters follows (the larger part of a batch-1 step on 784-256-10).
 * NULL means: write gradients, update later.
 */
typedef struct {
    float  *params_out;
    float   lr;
    float   weight_decay;
} lt_fused_sgd;


/* dW and db of one Linear (p: its weight and bias) from its output delta
 * d and its input x, into grad or straight into the update. */
static void
lt_linear_grad(lt_workspace *ws, const lt_layer_spec *l,
    const lt_param_info *p, const float *d, const float *x, int n,
    const float *params, float *grad, const lt_fused_sgd *sgd)
{
    const lt_backend  *be;
    const float       *w_in;
    float             *w_out;

    be = ws->be;

    /* db = column sums of dY; dW = dY^T X */
    be->sum_rows(be, grad + p[1].offset, d, n, l->out);

    if (sgd == NULL) {
        be->gemm(be, 1, 0, l->out, l->in, n, 1.0f, d, l->out, x, l->in,
                 0.0f, grad + p[0].offset, l->in);
        return;
    }

    /* W_out = (1 - lr * wd) W_in - lr dW, with W_out holding W_in first */
    w_in = params + p[0].offset;
    w_out = sgd->params_out + p[0].offset;
    if (w_out != w_in) {
        be->copy(be, w_out, w_in, p[0].numel * sizeof(float));
    }
    be->gemm(be, 1, 0, l->out, l->in, n, -sgd->lr, d, l->out, x, l->in,
             1.0f - sgd->lr * sgd->weight_decay, w_out, l->in);
    be->sgd(be, params + p[1].offset, sgd->params_out + p[1].offset,
            grad + p[1].offset, NULL, NULL, p[1].numel, sgd->lr, 0.0f,
            sgd->weight_decay, 1);
}


/*
 * Back from delta[0] (set by lt_loss) to the first layer with
 * parameters: layers before it have none, so the gradient is not taken
 * further.  Each layer reads its delta from one buffer and writes its
 * input's delta into the other.  With the fused SGD (MLPs only) a Linear
 * passes its delta on (dX = dY W) before its weights change, so the
 * update may write over params in place.
 */
static void
lt_backward(const lt_model *m, lt_workspace *ws, const float *params,
    const lt_batch *b, float *grad, const lt_fused_sgd *sgd)
{
    const lt_backend     *be;
    const lt_layer_spec  *l;
    const lt_param_info  *p;
    lt_layer_run          r;
    float                *d, *dnext, *t;
    int                   i, first;

    be = ws->be;
    d = ws->delta[0];
    dnext = ws->delta[1];
    first = lt_first_trained(m);

    for (i = m->spec.nlayers - 1; i >= first; i--) {
        l = &m->spec.layers[i];

        if (sgd != NULL && l->kind == LT_LAYER_LINEAR) {
            p = m->params + m->layer[i].param;
            if (i > first) {
                be->gemm(be, 0, 0, b->n, l->in, l->out, 1.0f, d, l->out,
                         params + p[0].offset, l->in, 0.0f, dnext, l->in);
            }
            lt_linear_grad(ws, l, p, d, i > 0 ? ws->act[i - 1] : b->x,
                           b->n, params, grad, sgd);

        } else {
            lt_run_init(m, ws, params, b, i, &r);
            r.dy = d;
            r.dx = i > first ? dnext : NULL;
            r.grad = grad;
            lt_layer_backward(&r);
        }

        t = d;
        d = dnext;
        dnext = t;
    }
}


/* BatchNorm's running statistics, once the step is known good. */
static void
lt_update_buffers(const lt_model *m, lt_workspace *ws, const float *params,
    float *params_out, const lt_batch *b)
{
    lt_layer_run  r;
    int           i;

    if (m->buffer_count == 0) {
        return;
    }

    for (i = 0; i < m->spec.nlayers; i++) {
        if (m->spec.layers[i].kind == LT_LAYER_BATCHNORM1D
            || m->spec.layers[i].kind == LT_LAYER_BATCHNORM2D)
        {
            lt_run_init(m, ws, params, b, i, &r);
            lt_layer_norm_update(&r, params_out);
        }
    }
}


int
lt_model_forward(const lt_model *m, lt_workspace *ws, const float *params,
    const lt_tensor *x, lt_tensor *out, lt_err *err)
{
    const lt_shape  *os;
    float           *y, *host;
    int64_t          shape[LT_MAX_DIMS];
    size_t           bytes;
    lt_batch         b;
    int              i;

    if (lt_prepare(m, ws, x, NULL, &b, err) != 0) {
        return -1;
    }

    y = lt_forward(m, ws, params, &b);
    host = y;

    if (ws->be->to_host != NULL) {
        bytes = (size_t) b.n * m->out_dim * sizeof(float);
        ws->be->to_host(ws->be, ws->out_host, y, bytes);
        host = ws->out_host;
    }

    /* [N, out shape...]; an unbatched sample gives an unbatched output,
     * as in PyTorch */
    os = &m->layer[m->spec.nlayers - 1].out;
    shape[0] = b.n;
    for (i = 0; i < os->ndim; i++) {
        shape[1 + i] = os->d[i];
    }
    lt_tensor_view(out, host, os->ndim + !b.one, shape + b.one);

    return 0;
}


int
lt_model_gradients(const lt_model *m, lt_workspace *ws,
    const float *params, const lt_tensor *x, const lt_tensor *y,
    float *grad, float *loss, lt_err *err)
{
    const float  *out;
    lt_batch      b;

    if (lt_prepare(m, ws, x, y, &b, err) != 0) {
        return -1;
    }

    out = lt_forward(m, ws, params, &b);
    *loss = lt_loss(m, ws, out, &b);
    lt_backward(m, ws, params, &b, grad, NULL);

    return 0;
}


int
lt_model_train_step(const lt_model *m, lt_workspace *ws,
    const float *params_in, float *params_out, float *opt_state,
    int64_t step, const lt_tensor *x, const lt_tensor *y, float *loss,
    lt_err *err)
{
    return lt_model_train_step_to(m, ws, params_in, params_out, opt_state,
                                  opt_state, step, x, y, loss, err);
}


int
lt_model_train_step_to(const lt_model *m, lt_workspace *ws,
    const float *params_in, float *params_out, const float *state_in,
    float *state_out, int64_t step, const lt_tensor *x, const lt_tensor *y,
    float *loss, lt_err *err)
{
    const lt_optim_spec  *o;
    const float          *out;
    lt_fused_sgd          sgd;
    lt_batch              b;
    double                norm;
    float                 lr;

    o = &m->spec.optim;

    if (step < 1) {
        return lt_error(err, "train step number %lld: steps count from 1",
                        (long long) step);
    }

    if (m->state_count > 0 && (state_in == NULL || state_out == NULL)) {
        return lt_error(err, "the optimizer needs its state");
    }

    if (lt_prepare(m, ws, x, y, &b, err) != 0) {
        return -1;
    }

    b.step = step;
    out = lt_forward(m, ws, params_in, &b);
    *loss = lt_loss(m, ws, out, &b);

    if (!isfinite(*loss)) {
        /* no update: its result could only be non-finite too */
        return lt_error_code(err, LT_ENONFINITE,
                             "the loss of this batch is %s",
                             isnan(*loss) ? "NaN" : "infinite");
    }

    lr = (float) lt_schedule_lr(&m->spec, step);

    /* clipping needs the whole gradient before any update */
    if (o->kind == LT_OPTIM_SGD && o->momentum == 0.0f && m->fused_sgd
        && m->spec.clip_grad_norm == 0.0f)
    {
        sgd.params_out = params_out;
        sgd.lr = lr;
        sgd.weight_decay = o->weight_decay;
        lt_backward(m, ws, params_in, &b, ws->grad, &sgd);
        return 0;
    }

    lt_backward(m, ws, params_in, &b, ws->grad, NULL);

    if (m->spec.clip_grad_norm > 0.0f
        && lt_grad_clip(ws->be, ws->grad, m->param_count,
                        m->spec.clip_grad_norm, &norm, err) != 0)
    {
        return -1;
    }

    lt_optim_apply(ws->be, o, lr, params_in, params_out, ws->grad,
                   m->state_count ? state_in : NULL,
                   m->state_count ? state_out : NULL, m->param_count, step);
    lt_update_buffers(m, ws, params_in, params_out, &b);

    return 0;
}


/*
 * A step's results, in host memory, before they are published: a loss,
 * parameters or optimizer state that is not finite would poison every
 * later step and predict (Adam's second moment never recovers), so the
 * caller keeps the old buffers instead.
 */
int
lt_model_step_check(const lt_model *m, float loss, const float *params,
    const float *state, lt_err *err)
{
    const lt_param_info  *p;
    int64_t               at;
    size_t                off;
    int                   i;

    if (!isfinite(loss)) {
        return lt_error_code(err, LT_ENONFINITE, "the loss of this batch is "
                             "%s", isnan(loss) ? "NaN" : "infinite");
    }

    for (i = 0; i < 2; i++) {
        const float  *block = i ? state : params;
        size_t        n = i ? m->state_count : lt_model_values(m);

        if (block == NULL || n == 0) {
            continue;
        }

        at = lt_floats_nonfinite_at(block, n);
        if (at < 0) {
            continue;
        }

        /* name the entry: state is laid out per P as parameters are */
        off = i ? (size_t) at % m->param_count : (size_t) at;

        for (p = m->params; p < m->params + m->nparams - 1
                            && !(off >= p->offset
                                 && off < p->offset + p->nfloats); p++)
        {
            /* void */
        }

        return lt_error_code(err, LT_ENONFINITE, "the step would make %s "
                             "\"%s\" non-finite (element %zu)",
                             i ? "the optimizer state of"
                             : p->buffer ? "buffer" : "parameter",
                             p->name, off - p->offset);
    }

    return 0;
}
