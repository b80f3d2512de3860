/*
 * lt_backend_cpu.h: the CPU backend's ops that live outside
 * lt_backend_cpu.c (its table there names them): the losses of
 * lt_loss_cpu.c and the optimizers and clipping of lt_optim_cpu.c.
 * Their contracts are those of the table's members in lt_backend.h.
 */
#ifndef LT_BACKEND_CPU_H
#define LT_BACKEND_CPU_H

#include "lt_backend.h"

float lt_cpu_loss_smooth_l1(const lt_backend *be, const float *pred,
    const float *target, float *grad, int rows, int cols, float beta,
    float scale);
float lt_cpu_loss_bce_logits(const lt_backend *be, const float *logits,
    const float *target, const float *pos_weight, int npw, float *grad,
    int rows, int cols);
float lt_cpu_loss_nll(const lt_backend *be, const float *logp,
    const int32_t *target_index, float *grad, int rows, int cols);
float lt_cpu_loss_ce_smooth(const lt_backend *be, const float *logits,
    const int32_t *target_index, const float *target, float label_smoothing,
    float *grad, int rows, int cols);

double lt_cpu_sum_squares(const lt_backend *be, const float *x, size_t n);
void lt_cpu_scale(const lt_backend *be, float *x, size_t n, float alpha);

void lt_cpu_sgd_ex(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float momentum, float dampening, float weight_decay,
    int nesterov, int first_step);
void lt_cpu_adam_ex(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float beta1, float beta2, float eps, float weight_decay,
    int decoupled, int amsgrad, int64_t step);
void lt_cpu_rmsprop(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float alpha, float eps, float weight_decay, float momentum,
    int centered);
void lt_cpu_adagrad(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float lr_decay, float weight_decay, float eps, int64_t step);

#endif /* LT_BACKEND_CPU_H */
