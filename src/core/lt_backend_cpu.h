/*
 * lt_backend_cpu.h: the CPU backend's ops that live outside
 * lt_backend_cpu.c (its table there names them): the products of
 * lt_cpu_gemm.c, the losses of
 * lt_loss_cpu.c, the optimizers and clipping of lt_optim_cpu.c, and the
 * layer ops of lt_backend_cpu_layers.c and lt_backend_cpu_norm.c.
 * Their contracts are those of the table's members in lt_backend.h.
 */
#ifndef LT_BACKEND_CPU_H
#define LT_BACKEND_CPU_H

#include "lt_backend.h"


void lt_cpu_gemm(const lt_backend *be, int trans_a, int trans_b, int m,
    int n, int k, float alpha, const float *a, int lda, const float *b,
    int ldb, float beta, float *c, int ldc);

/* C = alpha A B^T + beta C in column panels that OpenBLAS's small-matrix
 * sgemm takes (lt_cpu_gemm.c says when); exposed for the unit tests,
 * which check it on every CPU, and for core_bench. */
void lt_cpu_gemm_panels(int m, int n, int k, float alpha, const float *a,
    int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* Whether lt_cpu_gemm uses the panels on this CPU (measured once). */
int lt_cpu_gemm_panels_on(void);

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

void lt_cpu_act_arg_forward(const lt_backend *be, lt_act act, float a,
    float b, const float *x, float *y, size_t n);
void lt_cpu_act_arg_backward(const lt_backend *be, lt_act act, float a,
    float b, const float *x, const float *y, const float *dy, float *dx,
    size_t n);

void lt_cpu_im2col(const lt_backend *be, const lt_window *g, const float *x,
    float *col);
void lt_cpu_col2im(const lt_backend *be, const lt_window *g,
    const float *col, float *x);
void lt_cpu_im2row(const lt_backend *be, const lt_window *g,
    const float *x, float *pad, float *row);
void lt_cpu_transpose(const lt_backend *be, const float *src, float *dst,
    int rows, int cols);
void lt_cpu_channel_bias(const lt_backend *be, float *y, const float *bias,
    int n, int c, int s);
void lt_cpu_channel_sum(const lt_backend *be, float *out, const float *g,
    int n, int c, int s);

void lt_cpu_pool_forward(const lt_backend *be, lt_pool kind,
    const lt_window *g, int n, const float *x, float *y, int32_t *arg);
void lt_cpu_pool_backward(const lt_backend *be, lt_pool kind,
    const lt_window *g, int n, const float *dy, const int32_t *arg,
    float *dx);

void lt_cpu_batchnorm_forward(const lt_backend *be, int n, int c, int s,
    const float *x, float *y, const float *gamma, const float *beta,
    const float *mean, const float *var, float eps, int batch, float *save);
void lt_cpu_batchnorm_backward(const lt_backend *be, int n, int c, int s,
    const float *x, const float *dy, float *dx, const float *gamma,
    const float *save, int batch, float *dgamma, float *dbeta);
void lt_cpu_batchnorm_running(const lt_backend *be, int c, float momentum,
    const float *save, const float *mean_in, const float *var_in,
    const float *count_in, float *mean_out, float *var_out,
    float *count_out);
void lt_cpu_layernorm_forward(const lt_backend *be, int rows, int d,
    const float *x, float *y, const float *gamma, const float *beta,
    float eps, float *save);
void lt_cpu_layernorm_backward(const lt_backend *be, int rows, int d,
    const float *x, const float *dy, float *dx, const float *gamma,
    const float *save, float *dgamma, float *dbeta);

void lt_cpu_embedding_forward(const lt_backend *be, const float *index,
    int n, const float *w, int dim, float *y);
void lt_cpu_embedding_backward(const lt_backend *be, const float *index,
    int n, const float *dy, int dim, int num, int skip, float *dw);
void lt_cpu_dropout_forward(const lt_backend *be, const float *x, float *y,
    float *mask, size_t n, float p, uint64_t seed);
void lt_cpu_mul(const lt_backend *be, const float *a, const float *b,
    float *y, size_t n);

#endif /* LT_BACKEND_CPU_H */
