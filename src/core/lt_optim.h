/*
 * lt_optim.h: the core's internal view of losses, optimizers, learning
 * rate schedules and gradient clipping (lt_optim.c, lt_schedule.c):
 * checking their hyper-parameters as torch does, and choosing the
 * backend op that runs each.  lt_model.c and lt_train.c call it; the
 * unit tests call the ops through it with PyTorch's fixtures.
 */
#ifndef LT_OPTIM_H
#define LT_OPTIM_H

#include "lt_spec.h"

/* The bounds torch.optim and torch.nn check in their constructors. */
int lt_optim_check(const lt_optim_spec *o, lt_err *err);
int lt_loss_check(const lt_model *m, lt_err *err);
int lt_schedule_check(const lt_schedule_spec *s, lt_err *err);

/* Which optional blocks the state holds (Adam's amsgrad, RMSprop's
 * momentum and centered), 0 when none: part of the layout hash. */
int lt_optim_state_flags(const lt_optim_spec *o);

/* The optimizer's state for n parameters at its start. */
void lt_optim_init_state(const lt_optim_spec *o, float *state, size_t n);

/* Mean loss of out [rows, cols] against index (class indices) or y, with
 * d(loss)/d(out) into grad; every pointer in the backend's memory. */
float lt_loss_apply(const lt_backend *be, const lt_model_spec *s,
    const float *out, const int32_t *index, const float *y, float *grad,
    int rows, int cols);

/* One step of the optimizer at learning rate lr over n floats; step is
 * the 1-based optimizer step. */
void lt_optim_apply(const lt_backend *be, const lt_optim_spec *o, float lr,
    const float *in, float *out, const float *grad, const float *state_in,
    float *state_out, size_t n, int64_t step);

/* torch.nn.utils.clip_grad_norm_(max_norm, norm_type=2) over the n
 * gradient floats: scaled by max_norm / (norm + 1e-6) when that is below
 * 1.  *norm gets the total norm; a non-finite one fails with
 * LT_ENONFINITE and leaves grad as it was. */
int lt_grad_clip(const lt_backend *be, float *grad, size_t n,
    float max_norm, double *norm, lt_err *err);

/* -- the model-level names, declared for lt_model.h's users ---------- */

/* The S optimizer floats at their start: zero, except Adagrad's sums,
 * which start at initial_accumulator_value (after an import too). */
void lt_model_init_state(const lt_model *m, float *state);

/* PyTorch's class names: "SGD", "AdamW", "HuberLoss", ... */
const char *lt_optim_name(lt_optim_kind kind);
const char *lt_loss_name(lt_loss_kind kind);

/* 1 when the loss takes [N] class indices as targets (CE, NLL). */
int lt_loss_takes_indices(lt_loss_kind kind);

/* The optimizer state's floats for P parameters: 0 (SGD), P (SGD with
 * momentum, Adagrad, RMSprop), 2P (Adam, AdamW, RMSprop with momentum or
 * centered), 3P (Adam amsgrad, RMSprop centered with momentum). */
size_t lt_optim_state_floats(const lt_optim_spec *o, size_t p);

/* The learning rate of optimizer step `step` (1-based): the schedule's
 * value after step - 1 scheduler steps, as torch's get_last_lr() reads
 * before that step.  lt_model_lr(m, optim_step) is the next step's. */
double lt_schedule_lr(const lt_model_spec *s, int64_t step);
float lt_model_lr(const lt_model *m, int64_t steps_done);

/* 0 when the backend has every op the model's loss, optimizer and
 * clipping need; else -1 and a message naming the loss or optimizer
 * (a device backend may lack some). */
int lt_model_check_backend(const lt_model *m, const lt_backend *be,
    lt_err *err);

#endif /* LT_OPTIM_H */
