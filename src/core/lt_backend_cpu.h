/*
 * lt_backend_cpu.h: the CPU backend's layer ops (lt_backend_cpu_layers.c,
 * lt_backend_cpu_norm.c), for the op table in lt_backend_cpu.c.
 */
#ifndef LT_BACKEND_CPU_H
#define LT_BACKEND_CPU_H

#include "lt_backend.h"

void lt_cpu_act_arg_forward(const lt_backend *be, lt_act act, float a,
    float b, const float *x, float *y, size_t n);
void lt_cpu_act_arg_backward(const lt_backend *be, lt_act act, float a,
    float b, const float *x, const float *y, const float *dy, float *dx,
    size_t n);

void lt_cpu_im2col(const lt_backend *be, const lt_window *g, const float *x,
    float *col);
void lt_cpu_col2im(const lt_backend *be, const lt_window *g,
    const float *col, float *x);
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
