/*
 * lt_backend.h: the operations a compute backend provides.
 *
 * Layers, losses and optimizers call only these, so a CUDA backend can
 * supply the same table over device pointers without the model code
 * knowing which backend runs it.  All matrices are row-major.
 */
#ifndef LT_BACKEND_H
#define LT_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    LT_ACT_RELU = 0,
    LT_ACT_TANH,
    LT_ACT_SIGMOID,
    LT_ACT_SOFTMAX,             /* over the last dimension, per row */
    LT_ACT_LOGSOFTMAX,
    /* elementwise with arguments a, b (act_arg_forward) */
    LT_ACT_GELU,                /* exact, with erf */
    LT_ACT_GELU_TANH,           /* approximate = 'tanh' */
    LT_ACT_LEAKY_RELU,          /* a: negative_slope */
    LT_ACT_ELU,                 /* a: alpha */
    LT_ACT_SILU,
    LT_ACT_SOFTPLUS             /* a: beta, b: threshold */
} lt_act;

/*
 * A sliding window over one sample [c, h, w] (a 1-d layer has h = kh = 1,
 * sh = dh = 1, ph = 0): kernel, stride, padding, dilation and the output
 * size [oh, ow] the model computed.
 */
typedef struct {
    int  c, h, w;
    int  kh, kw, sh, sw, ph, pw, dh, dw;
    int  oh, ow;
} lt_window;

typedef enum {
    LT_POOL_MAX = 0,            /* padding counts as -inf */
    LT_POOL_AVG,                /* count_include_pad = true */
    LT_POOL_AVG_EXCL,           /* count_include_pad = false */
    LT_POOL_ADAPTIVE            /* PyTorch's adaptive windows; k, s, p unused */
} lt_pool;

typedef struct lt_backend_s  lt_backend;

struct lt_backend_s {
    const char  *name;          /* "cpu", "cuda" */

    /* memory: host backends return malloc'ed memory and leave to_device
     * and to_host NULL, so host data is used where it lies */
    void   *(*alloc)(const lt_backend *be, size_t bytes);
    void    (*free)(const lt_backend *be, void *p);
    void    (*to_device)(const lt_backend *be, void *dst, const void *src,
                             size_t bytes);
    void    (*to_host)(const lt_backend *be, void *dst, const void *src,
                           size_t bytes);
    /* dst = src, both in the backend's memory, not overlapping */
    void    (*copy)(const lt_backend *be, void *dst, const void *src,
                    size_t bytes);

    /* C[M,N] = alpha * op(A) op(B) + beta * C, row-major, op = transpose
     * when the flag is set; lda/ldb/ldc are row strides of the stored
     * matrices */
    void    (*gemm)(const lt_backend *be, int trans_a, int trans_b,
                    int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb,
                    float beta, float *c, int ldc);

    /* y[r, :] += bias[:] for every row r of an [rows, cols] matrix */
    void    (*add_bias)(const lt_backend *be, float *y, const float *bias,
                        int rows, int cols);
    /* out[c] = sum over rows of g[r, c] (bias gradient); overwrites out */
    void    (*sum_rows)(const lt_backend *be, float *out, const float *g,
                        int rows, int cols);

    /* elementwise / row-wise activation over an [rows, cols] matrix */
    void    (*act_forward)(const lt_backend *be, lt_act act, const float *x,
                           float *y, int rows, int cols);
    /* dx from dy, using the forward input x and output y */
    void    (*act_backward)(const lt_backend *be, lt_act act,
                            const float *x, const float *y, const float *dy,
                            float *dx, int rows, int cols);

    /* losses: return the mean loss and write d(loss)/d(pred) into grad.
     * target_index != NULL means class indices (one per row) for CE. */
    float   (*loss_mse)(const lt_backend *be, const float *pred,
                        const float *target, float *grad, int rows, int cols);
    float   (*loss_bce)(const lt_backend *be, const float *pred,
                        const float *target, float *grad, int rows, int cols);
    /* cross-entropy over logits (log-softmax inside), targets either as
     * class indices (target_index) or one-hot / probabilities (target) */
    float   (*loss_ce)(const lt_backend *be, const float *logits,
                       const int32_t *target_index, const float *target,
                       float *grad, int rows, int cols);

    /* optimizers over n floats, reading parameters and state from *_in
     * and writing them to *_out: in == out is allowed (in place), and
     * out of place a rejected step leaves the inputs as they were */
    void    (*sgd)(const lt_backend *be, const float *in, float *out,
                   const float *grad, const float *velocity_in,
                   float *velocity_out, size_t n, float lr, float momentum,
                   float weight_decay, int first_step);
    void    (*adam)(const lt_backend *be, const float *in, float *out,
                    const float *grad, const float *m_in, const float *v_in,
                    float *m_out, float *v_out, size_t n, float lr,
                    float beta1, float beta2, float eps, float weight_decay,
                    int64_t step);

    /*
     * The ops below serve the other losses, optimizers and clipping
     * (src/core/lt_loss_cpu.c, lt_optim_cpu.c).  A backend may leave any
     * of them NULL: lt_model_check_backend() then refuses the models
     * that need it, naming the loss or optimizer.
     */

    /* mean over every element of scale * smooth_l1(pred - target, beta):
     * L1Loss is beta 0, SmoothL1Loss scale 1, HuberLoss(delta) beta =
     * scale = delta */
    float   (*loss_smooth_l1)(const lt_backend *be, const float *pred,
                              const float *target, float *grad, int rows,
                              int cols, float beta, float scale);
    /* BCEWithLogitsLoss; pos_weight (host memory, constant) holds npw
     * values: 0 none, 1 for every column, or one per column */
    float   (*loss_bce_logits)(const lt_backend *be, const float *logits,
                               const float *target, const float *pos_weight,
                               int npw, float *grad, int rows, int cols);
    /* NLLLoss: -mean(logp[r, index[r]]) */
    float   (*loss_nll)(const lt_backend *be, const float *logp,
                        const int32_t *target_index, float *grad, int rows,
                        int cols);
    /* CrossEntropyLoss with label_smoothing > 0, indices or rows */
    float   (*loss_ce_smooth)(const lt_backend *be, const float *logits,
                              const int32_t *target_index,
                              const float *target, float label_smoothing,
                              float *grad, int rows, int cols);

    /* sum of x[i]^2 (clip_grad_norm's total norm, squared); x *= alpha */
    double  (*sum_squares)(const lt_backend *be, const float *x, size_t n);
    void    (*scale)(const lt_backend *be, float *x, size_t n, float alpha);

    /*
     * Optimizer state is S floats read from state_in and written to
     * state_out (may be equal), laid out in blocks of n:
     *   sgd_ex   [momentum_buffer]
     *   adam_ex  [exp_avg | exp_avg_sq | max_exp_avg_sq if amsgrad]
     *   rmsprop  [square_avg | momentum_buffer if momentum > 0
     *             | grad_avg if centered]
     *   adagrad  [sum]
     */
    /* SGD with dampening and/or nesterov (momentum > 0) */
    void    (*sgd_ex)(const lt_backend *be, const float *in, float *out,
                      const float *grad, const float *state_in,
                      float *state_out, size_t n, float lr, float momentum,
                      float dampening, float weight_decay, int nesterov,
                      int first_step);
    /* Adam with amsgrad, AdamW (decoupled: p *= 1 - lr * weight_decay) */
    void    (*adam_ex)(const lt_backend *be, const float *in, float *out,
                       const float *grad, const float *state_in,
                       float *state_out, size_t n, float lr, float beta1,
                       float beta2, float eps, float weight_decay,
                       int decoupled, int amsgrad, int64_t step);
    void    (*rmsprop)(const lt_backend *be, const float *in, float *out,
                       const float *grad, const float *state_in,
                       float *state_out, size_t n, float lr, float alpha,
                       float eps, float weight_decay, float momentum,
                       int centered);
    void    (*adagrad)(const lt_backend *be, const float *in, float *out,
                       const float *grad, const float *state_in,
                       float *state_out, size_t n, float lr, float lr_decay,
                       float weight_decay, float eps, int64_t step);

    /*
     * The ops of the layers beyond Linear (lt_layer_*.c).  A backend
     * that lacks one leaves it NULL, and a model using that layer is
     * refused on it (lt_model_backend_check).
     */

    /* y = act(x) over n floats, with the arguments of lt_act */
    void    (*act_arg_forward)(const lt_backend *be, lt_act act, float a,
                               float b, const float *x, float *y, size_t n);
    void    (*act_arg_backward)(const lt_backend *be, lt_act act, float a,
                                float b, const float *x, const float *y,
                                const float *dy, float *dx, size_t n);

    /* one sample [c, h, w] -> col [c * kh * kw, oh * ow] (zero padding),
     * and back: x = the sum of col's entries at each pixel (overwrites) */
    void    (*im2col)(const lt_backend *be, const lt_window *g,
                      const float *x, float *col);
    void    (*col2im)(const lt_backend *be, const lt_window *g,
                      const float *col, float *x);
    /* optional (NULL: the forward pass uses im2col): one sample [c, h, w]
     * -> row [oh * ow, kh * kw * c], row p holding the patch output p
     * sees tap by tap (ki, kj, then ci), read through pad, room for a
     * zero-padded [h + 2ph, w + 2pw, c] copy of x; only for dw = 1.
     * And dst [cols, rows] = src [rows, cols] transposed. */
    void    (*im2row)(const lt_backend *be, const lt_window *g,
                      const float *x, float *pad, float *row);
    void    (*transpose)(const lt_backend *be, const float *src, float *dst,
                         int rows, int cols);
    /* y[i, j, :] += bias[j] over [n, c, s]; out[j] = sum of g[:, j, :] */
    void    (*channel_bias)(const lt_backend *be, float *y, const float *bias,
                            int n, int c, int s);
    void    (*channel_sum)(const lt_backend *be, float *out, const float *g,
                           int n, int c, int s);

    /* pools over n samples [c, h, w] -> [c, oh, ow]; arg holds MAX's
     * argmax per output (the input offset within its plane) */
    void    (*pool_forward)(const lt_backend *be, lt_pool kind,
                            const lt_window *g, int n, const float *x,
                            float *y, int32_t *arg);
    /* dx from dy; overwrites dx */
    void    (*pool_backward)(const lt_backend *be, lt_pool kind,
                             const lt_window *g, int n, const float *dy,
                             const int32_t *arg, float *dx);

    /*
     * Batch normalization over x [n, c, s] per channel.  batch = 1: the
     * batch's statistics, saved as mean, 1/sqrt(var + eps) and the
     * unbiased variance into save[3c]; batch = 0: mean and var (the
     * running statistics) instead.  gamma and beta may be NULL (affine =
     * false).  The backward pass overwrites dx and (when not NULL)
     * dgamma, dbeta.
     */
    void    (*batchnorm_forward)(const lt_backend *be, int n, int c, int s,
                                 const float *x, float *y, const float *gamma,
                                 const float *beta, const float *mean,
                                 const float *var, float eps, int batch,
                                 float *save);
    void    (*batchnorm_backward)(const lt_backend *be, int n, int c, int s,
                                  const float *x, const float *dy, float *dx,
                                  const float *gamma, const float *save,
                                  int batch, float *dgamma, float *dbeta);
    /* running = (1 - momentum) running + momentum batch (save's mean and
     * unbiased variance), in to out; count (an LT_DTYPE_I64) + 1 */
    void    (*batchnorm_running)(const lt_backend *be, int c, float momentum,
                                 const float *save, const float *mean_in,
                                 const float *var_in, const float *count_in,
                                 float *mean_out, float *var_out,
                                 float *count_out);

    /* LayerNorm over the last d floats of each of rows rows; save[2 rows]
     * gets each row's mean and 1/sqrt(var + eps) */
    void    (*layernorm_forward)(const lt_backend *be, int rows, int d,
                                 const float *x, float *y, const float *gamma,
                                 const float *beta, float eps, float *save);
    void    (*layernorm_backward)(const lt_backend *be, int rows, int d,
                                  const float *x, const float *dy, float *dx,
                                  const float *gamma, const float *save,
                                  float *dgamma, float *dbeta);

    /* y[i, :] = w[index[i], :] for n indices (whole floats, checked);
     * backward overwrites dw [num, dim] with the sums of dy's rows,
     * leaving row skip (padding_idx, or -1) zero */
    void    (*embedding_forward)(const lt_backend *be, const float *index,
                                 int n, const float *w, int dim, float *y);
    void    (*embedding_backward)(const lt_backend *be, const float *index,
                                  int n, const float *dy, int dim, int num,
                                  int skip, float *dw);

    /* y = x * mask, mask[i] = 0 with probability p else 1 / (1 - p), from
     * a generator seeded with seed; y = a * b elementwise */
    void    (*dropout_forward)(const lt_backend *be, const float *x, float *y,
                               float *mask, size_t n, float p, uint64_t seed);
    void    (*mul)(const lt_backend *be, const float *a, const float *b,
                   float *y, size_t n);

    void    *ctx;               /* backend private (cuBLAS handle, stream) */
};

/* The OpenBLAS backend; single-threaded, no allocation in its ops. */
const lt_backend *lt_backend_cpu(void);

#endif /* LT_BACKEND_H */
