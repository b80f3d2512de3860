/*
 * lt_optim.c: losses and optimizers as the model sees them: their names,
 * torch's checks of their hyper-parameters, the optimizer state's size
 * and start, which backend op runs each (and whether a backend has it),
 * and gradient clipping.
 */
#include <math.h>

#include "lt_layer.h"
#include "lt_optim.h"

/* clip_grad_norm_'s guard against a zero norm */
#define LT_CLIP_EPS  1e-6


const char *
lt_optim_name(lt_optim_kind kind)
{
    switch (kind) {
    case LT_OPTIM_SGD:      return "SGD";
    case LT_OPTIM_ADAM:     return "Adam";
    case LT_OPTIM_ADAMW:    return "AdamW";
    case LT_OPTIM_RMSPROP:  return "RMSprop";
    case LT_OPTIM_ADAGRAD:  return "Adagrad";
    }

    return "unknown";
}


const char *
lt_loss_name(lt_loss_kind kind)
{
    switch (kind) {
    case LT_LOSS_MSE:        return "MSELoss";
    case LT_LOSS_BCE:        return "BCELoss";
    case LT_LOSS_CE:         return "CrossEntropyLoss";
    case LT_LOSS_NLL:        return "NLLLoss";
    case LT_LOSS_L1:         return "L1Loss";
    case LT_LOSS_SMOOTH_L1:  return "SmoothL1Loss";
    case LT_LOSS_HUBER:      return "HuberLoss";
    case LT_LOSS_BCE_LOGITS: return "BCEWithLogitsLoss";
    }

    return "unknown";
}


int
lt_loss_takes_indices(lt_loss_kind kind)
{
    return kind == LT_LOSS_CE || kind == LT_LOSS_NLL;
}


size_t
lt_optim_state_floats(const lt_optim_spec *o, size_t p)
{
    switch (o->kind) {
    case LT_OPTIM_SGD:
        return o->momentum != 0.0f ? p : 0;
    case LT_OPTIM_ADAM:
    case LT_OPTIM_ADAMW:
        return (o->amsgrad ? 3 : 2) * p;
    case LT_OPTIM_RMSPROP:
        return (1 + (o->momentum > 0.0f) + (o->centered != 0)) * p;
    case LT_OPTIM_ADAGRAD:
        return p;
    }

    return 0;
}


int
lt_optim_state_flags(const lt_optim_spec *o)
{
    switch (o->kind) {
    case LT_OPTIM_ADAM:
    case LT_OPTIM_ADAMW:
        return o->amsgrad ? 1 : 0;
    case LT_OPTIM_RMSPROP:
        return (o->momentum > 0.0f ? 2 : 0) | (o->centered ? 4 : 0);
    default:
        return 0;
    }
}


void
lt_optim_init_state(const lt_optim_spec *o, float *state, size_t n)
{
    float   v;
    size_t  i, s;

    s = lt_optim_state_floats(o, n);
    v = o->kind == LT_OPTIM_ADAGRAD ? o->initial_accumulator_value : 0.0f;

    for (i = 0; i < s; i++) {
        state[i] = v;
    }
}


void
lt_model_init_state(const lt_model *m, float *state)
{
    lt_optim_init_state(&m->spec.optim, state, m->param_count);
}


/* "not (x >= lo)" so NaN is rejected too. */
static int
lt_check_nonneg(const char *optim, const char *what, float x, lt_err *err)
{
    if (!(x >= 0.0f) || isinf(x)) {
        return lt_error(err, "%s: invalid %s %g (must be >= 0)",
                        optim, what, (double) x);
    }

    return 0;
}


static int
lt_check_beta(const char *optim, const char *what, float x, lt_err *err)
{
    if (!(x >= 0.0f && x < 1.0f)) {
        return lt_error(err, "%s: invalid %s %g (must be in [0, 1))",
                        optim, what, (double) x);
    }

    return 0;
}


/* The same bounds torch.optim checks in its constructors. */
int
lt_optim_check(const lt_optim_spec *o, lt_err *err)
{
    const char  *name;

    if ((int) o->kind < 0 || o->kind > LT_OPTIM_ADAGRAD) {
        return lt_error(err, "unknown optimizer kind %d", (int) o->kind);
    }

    name = lt_optim_name(o->kind);

    if (lt_check_nonneg(name, "learning rate", o->lr, err) != 0
        || lt_check_nonneg(name, "weight_decay", o->weight_decay, err) != 0)
    {
        return -1;
    }

    switch (o->kind) {

    case LT_OPTIM_SGD:
        if (lt_check_nonneg(name, "momentum", o->momentum, err) != 0) {
            return -1;
        }

        if (!isfinite(o->dampening)) {
            return lt_error(err, "SGD: invalid dampening %g",
                            (double) o->dampening);
        }

        if (o->nesterov && (o->momentum <= 0.0f || o->dampening != 0.0f)) {
            return lt_error(err, "SGD: Nesterov momentum requires a "
                            "momentum and zero dampening");
        }

        return 0;

    case LT_OPTIM_ADAM:
    case LT_OPTIM_ADAMW:
        if (lt_check_beta(name, "beta1", o->beta1, err) != 0
            || lt_check_beta(name, "beta2", o->beta2, err) != 0)
        {
            return -1;
        }

        return lt_check_nonneg(name, "eps", o->eps, err);

    case LT_OPTIM_RMSPROP:
        return lt_check_nonneg(name, "eps", o->eps, err)
               || lt_check_nonneg(name, "momentum", o->momentum, err)
               || lt_check_nonneg(name, "alpha", o->alpha, err);

    case LT_OPTIM_ADAGRAD:
        return lt_check_nonneg(name, "lr_decay", o->lr_decay, err)
               || lt_check_nonneg(name, "initial_accumulator_value",
                                  o->initial_accumulator_value, err)
               || lt_check_nonneg(name, "eps", o->eps, err);
    }

    return 0;
}


/* BCE takes log(p): a net that can output values outside [0, 1] would
 * only produce NaN (PyTorch raises at run time), so reject it here. */
int
lt_loss_check(const lt_model *m, lt_err *err)
{
    const lt_loss_spec  *l;
    lt_layer_kind        last;
    char                 buf[64];
    int                  i;

    last = m->spec.layers[m->spec.nlayers - 1].kind;
    l = &m->spec.loss_opt;

    /* the classes of CrossEntropyLoss and NLLLoss are the last layer's
     * [C] outputs */
    if (lt_loss_takes_indices(m->spec.loss)
        && m->layer[m->spec.nlayers - 1].out.ndim != 1)
    {
        return lt_error(err, "%s expects [N, C] outputs, but the net gives "
                        "[N] + %s; add nn.Flatten()",
                        lt_loss_name(m->spec.loss),
                        lt_shape_print(&m->layer[m->spec.nlayers - 1].out,
                                       buf, sizeof(buf)));
    }

    switch (m->spec.loss) {

    case LT_LOSS_MSE:
    case LT_LOSS_NLL:
    case LT_LOSS_L1:
        return 0;

    case LT_LOSS_CE:
        if (!(l->label_smoothing >= 0.0f && l->label_smoothing <= 1.0f)) {
            return lt_error(err, "CrossEntropyLoss: label_smoothing must be"
                            " in [0, 1], got %g",
                            (double) l->label_smoothing);
        }
        return 0;

    case LT_LOSS_SMOOTH_L1:
        if (!(l->beta >= 0.0f) || isinf(l->beta)) {
            return lt_error(err, "SmoothL1Loss: beta must be >= 0, got %g",
                            (double) l->beta);
        }
        return 0;

    case LT_LOSS_HUBER:
        if (!(l->beta > 0.0f) || isinf(l->beta)) {
            return lt_error(err, "HuberLoss: delta must be > 0, got %g",
                            (double) l->beta);
        }
        return 0;

    case LT_LOSS_BCE_LOGITS:
        if (l->npos_weight < 0 || l->npos_weight > LT_MAX_POS_WEIGHT
            || (l->npos_weight > 1 && l->npos_weight != m->out_dim))
        {
            return lt_error(err, "BCEWithLogitsLoss: pos_weight has %d "
                            "values; the net gives %d outputs",
                            l->npos_weight, m->out_dim);
        }

        for (i = 0; i < l->npos_weight; i++) {
            if (!isfinite(l->pos_weight[i])) {
                return lt_error(err, "BCEWithLogitsLoss: pos_weight[%d] is"
                                " not finite", i);
            }
        }
        return 0;

    case LT_LOSS_BCE:
        if (last == LT_LAYER_SIGMOID || last == LT_LAYER_SOFTMAX) {
            return 0;
        }
        return lt_error(err, "BCELoss expects probabilities, but the last"
                        " layer is %s; end the net with Sigmoid (or use "
                        "BCEWithLogitsLoss)", lt_layer_name(last));
    }

    return lt_error(err, "unknown loss kind %d", (int) m->spec.loss);
}


float
lt_loss_apply(const lt_backend *be, const lt_model_spec *s, const float *out,
    const int32_t *index, const float *y, float *grad, int rows, int cols)
{
    const lt_loss_spec  *l;

    l = &s->loss_opt;

    switch (s->loss) {
    case LT_LOSS_BCE:
        return be->loss_bce(be, out, y, grad, rows, cols);
    case LT_LOSS_CE:
        if (l->label_smoothing > 0.0f) {
            return be->loss_ce_smooth(be, out, index, y, l->label_smoothing,
                                      grad, rows, cols);
        }
        return be->loss_ce(be, out, index, y, grad, rows, cols);
    case LT_LOSS_NLL:
        return be->loss_nll(be, out, index, grad, rows, cols);
    case LT_LOSS_L1:
        return be->loss_smooth_l1(be, out, y, grad, rows, cols, 0.0f, 1.0f);
    case LT_LOSS_SMOOTH_L1:
        return be->loss_smooth_l1(be, out, y, grad, rows, cols, l->beta,
                                  1.0f);
    case LT_LOSS_HUBER:
        return be->loss_smooth_l1(be, out, y, grad, rows, cols, l->beta,
                                  l->beta);
    case LT_LOSS_BCE_LOGITS:
        return be->loss_bce_logits(be, out, y, l->pos_weight, l->npos_weight,
                                   grad, rows, cols);
    default:
        return be->loss_mse(be, out, y, grad, rows, cols);
    }
}


/* SGD's extended op serves dampening and Nesterov; without momentum
 * neither means anything (torch ignores dampening then). */
static int
lt_sgd_needs_ex(const lt_optim_spec *o)
{
    return o->momentum != 0.0f && (o->nesterov || o->dampening != 0.0f);
}


void
lt_optim_apply(const lt_backend *be, const lt_optim_spec *o, float lr,
    const float *in, float *out, const float *grad, const float *state_in,
    float *state_out, size_t n, int64_t step)
{
    switch (o->kind) {

    case LT_OPTIM_ADAM:
        if (!o->amsgrad) {
            be->adam(be, in, out, grad, state_in, state_in + n, state_out,
                     state_out + n, n, lr, o->beta1, o->beta2, o->eps,
                     o->weight_decay, step);
            return;
        }
        /* fall through */

    case LT_OPTIM_ADAMW:
        be->adam_ex(be, in, out, grad, state_in, state_out, n, lr, o->beta1,
                    o->beta2, o->eps, o->weight_decay,
                    o->kind == LT_OPTIM_ADAMW, o->amsgrad, step);
        return;

    case LT_OPTIM_RMSPROP:
        be->rmsprop(be, in, out, grad, state_in, state_out, n, lr, o->alpha,
                    o->eps, o->weight_decay, o->momentum, o->centered);
        return;

    case LT_OPTIM_ADAGRAD:
        be->adagrad(be, in, out, grad, state_in, state_out, n, lr,
                    o->lr_decay, o->weight_decay, o->eps, step);
        return;

    default:
        if (lt_sgd_needs_ex(o)) {
            be->sgd_ex(be, in, out, grad, state_in, state_out, n, lr,
                       o->momentum, o->dampening, o->weight_decay,
                       o->nesterov, step == 1);
            return;
        }

        be->sgd(be, in, out, grad, o->momentum != 0.0f ? state_in : NULL,
                o->momentum != 0.0f ? state_out : NULL, n, lr, o->momentum,
                o->weight_decay, step == 1);
    }
}


int
lt_grad_clip(const lt_backend *be, float *grad, size_t n, float max_norm,
    double *norm, lt_err *err)
{
    double  total, coef;

    total = sqrt(be->sum_squares(be, grad, n));
    *norm = total;

    if (!isfinite(total)) {
        return lt_error_code(err, LT_ENONFINITE, "the gradient's norm is "
                             "%s", isnan(total) ? "NaN" : "infinite");
    }

    coef = (double) max_norm / (total + LT_CLIP_EPS);

    if (coef < 1.0) {
        be->scale(be, grad, n, (float) coef);
    }

    return 0;
}


/* What the model needs of a backend beyond the ops every one has. */
int
lt_model_check_backend(const lt_model *m, const lt_backend *be,
    lt_err *err)
{
    const lt_model_spec  *s;
    const lt_optim_spec  *o;
    const char           *what;
    int                   has;

    s = &m->spec;
    o = &s->optim;
    what = NULL;

    switch (s->loss) {
    case LT_LOSS_CE:
        has = s->loss_opt.label_smoothing == 0.0f
              || be->loss_ce_smooth != NULL;
        what = "CrossEntropyLoss with label_smoothing";
        break;
    case LT_LOSS_NLL:
        has = be->loss_nll != NULL;
        break;
    case LT_LOSS_L1:
    case LT_LOSS_SMOOTH_L1:
    case LT_LOSS_HUBER:
        has = be->loss_smooth_l1 != NULL;
        break;
    case LT_LOSS_BCE_LOGITS:
        has = be->loss_bce_logits != NULL;
        break;
    default:
        has = 1;
    }

    if (!has) {
        return lt_error(err, "%s is not implemented on the %s backend",
                        what ? what : lt_loss_name(s->loss), be->name);
    }

    switch (o->kind) {
    case LT_OPTIM_ADAM:
        has = !o->amsgrad || be->adam_ex != NULL;
        what = "Adam with amsgrad";
        break;
    case LT_OPTIM_ADAMW:
        has = be->adam_ex != NULL;
        what = "AdamW";
        break;
    case LT_OPTIM_RMSPROP:
        has = be->rmsprop != NULL;
        what = "RMSprop";
        break;
    case LT_OPTIM_ADAGRAD:
        has = be->adagrad != NULL;
        what = "Adagrad";
        break;
    default:
        has = !lt_sgd_needs_ex(o) || be->sgd_ex != NULL;
        what = "SGD with nesterov or dampening";
    }

    if (!has) {
        return lt_error(err, "%s is not implemented on the %s backend",
                        what, be->name);
    }

    if (s->clip_grad_norm > 0.0f
        && (be->sum_squares == NULL || be->scale == NULL))
    {
        return lt_error(err, "clip_grad_norm is not implemented on the %s "
                        "backend", be->name);
    }

    return 0;
}
