/*
 * lt_model.h: a Sequential model described by plain structs, its
 * parameter layout, and training / inference steps.
 *
 * A model is immutable once built (lt_model_build): it holds the layer
 * list and the layout of one contiguous float block holding
 *
 *     [ parameters (P floats) | optimizer state (S floats) ]
 *
 * so the block can live in a shared memory zone, be written to a
 * checkpoint in one write and be exported by name.  Gradients and
 * activations live in a workspace owned by the caller (one per worker),
 * sized once per batch size; a step allocates nothing.
 */
#ifndef LT_MODEL_H
#define LT_MODEL_H

#include "lt_tensor.h"
#include "lt_backend.h"

#define LT_MAX_LAYERS   32
#define LT_NAME_LEN     32

typedef enum {
    LT_LAYER_LINEAR = 0,
    LT_LAYER_RELU,
    LT_LAYER_TANH,
    LT_LAYER_SIGMOID,
    LT_LAYER_SOFTMAX,
    LT_LAYER_LOGSOFTMAX
} lt_layer_kind;

typedef enum {
    LT_LOSS_MSE = 0,
    LT_LOSS_BCE,
    LT_LOSS_CE,                 /* cross-entropy over logits */
    LT_LOSS_NLL,                /* over log-probabilities, class indices */
    LT_LOSS_L1,
    LT_LOSS_SMOOTH_L1,          /* loss_opt.beta */
    LT_LOSS_HUBER,              /* loss_opt.beta holds delta */
    LT_LOSS_BCE_LOGITS          /* sigmoid inside, loss_opt.pos_weight */
} lt_loss_kind;

typedef enum {
    LT_OPTIM_SGD = 0,
    LT_OPTIM_ADAM,
    LT_OPTIM_ADAMW,
    LT_OPTIM_RMSPROP,
    LT_OPTIM_ADAGRAD
} lt_optim_kind;

/* BCEWithLogitsLoss's pos_weight: one value, or one per output */
#define LT_MAX_POS_WEIGHT  64

typedef struct {
    float          beta;        /* SmoothL1Loss beta, HuberLoss delta */
    float          label_smoothing;     /* CrossEntropyLoss */
    int            npos_weight; /* 0: none, 1: every output, or out_dim */
    float          pos_weight[LT_MAX_POS_WEIGHT];
} lt_loss_spec;

typedef enum {
    LT_SCHED_CONSTANT = 0,
    LT_SCHED_STEP,              /* StepLR(step_size, gamma) */
    LT_SCHED_MULTISTEP,         /* MultiStepLR(milestones, gamma) */
    LT_SCHED_EXPONENTIAL,       /* ExponentialLR(gamma) */
    LT_SCHED_LINEAR,            /* LinearLR(start_factor, end_factor,
                                            total_iters) */
    LT_SCHED_COSINE             /* CosineAnnealingLR(T_max, eta_min) */
} lt_sched_kind;

#define LT_MAX_SCHED       4    /* phases of a SequentialLR */
#define LT_MAX_MILESTONES  8    /* of a MultiStepLR */

typedef struct {
    lt_sched_kind  kind;
    int64_t        step_size;   /* StepLR; T_max of CosineAnnealingLR;
                                   total_iters of LinearLR */
    double         gamma;       /* StepLR, MultiStepLR, ExponentialLR */
    double         start_factor;        /* LinearLR */
    double         end_factor;
    double         eta_min;     /* CosineAnnealingLR */
    int            nmilestones; /* MultiStepLR */
    int64_t        milestones[LT_MAX_MILESTONES];
} lt_sched_phase;

/* torch.optim.lr_scheduler, stepped once per optimizer step: one phase,
 * or a SequentialLR of nphases with nphases - 1 milestones. */
typedef struct {
    int            nphases;     /* 0: the optimizer's lr throughout */
    lt_sched_phase phases[LT_MAX_SCHED];
    int64_t        milestones[LT_MAX_SCHED - 1];
} lt_schedule_spec;

typedef struct {
    lt_layer_kind  kind;
    int            in;          /* Linear only */
    int            out;         /* Linear only */
} lt_layer_spec;

typedef struct {
    lt_optim_kind  kind;
    float          lr;
    float          momentum;    /* SGD */
    float          weight_decay;
    float          beta1;       /* Adam, AdamW */
    float          beta2;
    float          eps;         /* Adam, AdamW, RMSprop, Adagrad */
    float          dampening;   /* SGD */
    int            nesterov;    /* SGD */
    int            amsgrad;     /* Adam, AdamW */
    float          alpha;       /* RMSprop (momentum above too) */
    int            centered;    /* RMSprop */
    float          lr_decay;    /* Adagrad */
    float          initial_accumulator_value;   /* Adagrad */
} lt_optim_spec;

typedef struct {
    int            nlayers;
    lt_layer_spec  layers[LT_MAX_LAYERS];
    lt_loss_kind   loss;
    lt_optim_spec  optim;
    lt_loss_spec   loss_opt;
    lt_schedule_spec  schedule;
    float          clip_grad_norm;  /* max_norm (L2, all parameters);
                                       0: no clipping */
} lt_model_spec;

/* One named parameter: "0.weight" [out, in], "0.bias" [out], ... */
typedef struct {
    char           name[LT_NAME_LEN];
    size_t         offset;      /* in floats from the start of the block */
    int            ndim;
    int64_t        shape[2];
    size_t         numel;
} lt_param_info;

typedef struct {
    lt_model_spec  spec;
    int            in_dim;      /* features per sample */
    int            out_dim;     /* outputs per sample */
    int            nparams;
    lt_param_info  params[LT_MAX_LAYERS * 2];
    size_t         param_count; /* P */
    size_t         state_count; /* S: per optimizer (lt_optim_state_floats) */
    size_t         max_width;   /* widest activation, per sample */
    int            widths[LT_MAX_LAYERS]; /* each layer's outputs/sample */
    uint64_t       hash;        /* layout hash: layers, shapes, optimizer */
} lt_model;

/* Validate the spec (consecutive Linear shapes agree, at least one Linear,
 * sane hyper-parameters) and compute the layout.  On a mismatch the message
 * names the layer index and both shapes. */
int lt_model_build(lt_model *m, const lt_model_spec *spec, lt_err *err);

/* Fill the P parameters as PyTorch's nn.Linear does by default
 * (Kaiming-uniform weights, bound 1/sqrt(fan_in), bias uniform in
 * +-1/sqrt(fan_in)) from a deterministic generator seeded by seed, and zero
 * the S optimizer floats that follow them. */
void lt_model_init_params(const lt_model *m, float *block, uint64_t seed);

/* The S optimizer floats at their start: zero, except Adagrad's sums,
 * which start at initial_accumulator_value (after an import too). */
void lt_model_init_state(const lt_model *m, float *state);

/* NULL when no parameter has that name. */
const lt_param_info *lt_model_find_param(const lt_model *m, const char *name);

/* Per-worker scratch: activations, gradients, loss buffers for up to
 * max_batch rows, on the given backend.  The workspace keeps a copy of the
 * model's layout; it serves only models with the same layout hash. */
typedef struct lt_workspace_s  lt_workspace;

lt_workspace *lt_workspace_new(const lt_model *m, const lt_backend *be,
    int max_batch, lt_err *err);
/* Grow to at least batch rows (allocates only when growing, then to at
 * least twice the old capacity; on failure the old buffers stay valid).
 * forward, gradients and train_step call it themselves, so a batch larger
 * than the capacity costs one allocation and later ones none. */
int lt_workspace_reserve(lt_workspace *ws, int batch, lt_err *err);
int lt_workspace_capacity(const lt_workspace *ws);
/* Back down to batch rows when it holds more (an oversized request is
 * not paid for by every later one); on failure the old buffers stay. */
int lt_workspace_shrink(lt_workspace *ws, int batch, lt_err *err);
/* The bytes it holds now, and the most rows whose buffers fit in bytes
 * (at least 1). */
size_t lt_workspace_bytes(const lt_workspace *ws);
int lt_workspace_rows_within(const lt_workspace *ws, size_t bytes);
void lt_workspace_free(lt_workspace *ws);

/* Check x (and y) against the model: x is [N, in_dim] (or [in_dim] for one
 * sample); y is [N, out_dim] (also [N] when out_dim is 1, [out_dim] or a
 * scalar when N is 1), or for cross-entropy [N] class indices (floats
 * holding whole numbers in [0, out_dim)) or [N, out_dim] one-hot or
 * probability rows.  The message names expected and received shapes. */
int lt_model_check_input(const lt_model *m, const lt_tensor *x, lt_err *err);
int lt_model_check_target(const lt_model *m, const lt_tensor *x,
    const lt_tensor *y, lt_err *err);

/* Forward pass with the parameters at params (P floats, in the backend's
 * memory: host memory for the CPU backend).  x is in host memory.  On
 * success *out holds the output rows ([N, out_dim]; [out_dim] for a 1-D x,
 * as in PyTorch) in host memory, borrowed from the workspace and valid
 * until the next call on ws. */
int lt_model_forward(const lt_model *m, lt_workspace *ws,
    const float *params, const lt_tensor *x, lt_tensor *out, lt_err *err);

/* One optimizer step: forward and loss with params_in, backward, then the
 * update written to params_out (may equal params_in).  opt_state is the S
 * floats after the parameters; step is the 1-based number of this step
 * (Adam's bias correction; SGD momentum starts on step 1).  *loss gets the
 * mean loss before the update. */
int lt_model_train_step(const lt_model *m, lt_workspace *ws,
    const float *params_in, float *params_out, float *opt_state,
    int64_t step, const lt_tensor *x, const lt_tensor *y, float *loss,
    lt_err *err);

/* The same with the optimizer state read from state_in and written to
 * state_out (may be equal): out of place, a step that fails
 * lt_model_step_check() leaves params_in and state_in as they were.
 * A non-finite loss fails with err->code LT_ENONFINITE before any
 * update is written. */
int lt_model_train_step_to(const lt_model *m, lt_workspace *ws,
    const float *params_in, float *params_out, const float *state_in,
    float *state_out, int64_t step, const lt_tensor *x, const lt_tensor *y,
    float *loss, lt_err *err);

/* 0 when loss, the P parameters and the S optimizer floats (host memory;
 * state may be NULL) are all finite; else -1 with err->code LT_ENONFINITE
 * and a message naming the parameter. */
int lt_model_step_check(const lt_model *m, float loss, const float *params,
    const float *state, lt_err *err);

/* Forward, loss and backward only: gradients into grad (P floats, in the
 * backend's memory). */
int lt_model_gradients(const lt_model *m, lt_workspace *ws,
    const float *params, const lt_tensor *x, const lt_tensor *y,
    float *grad, float *loss, lt_err *err);

/* Cost of one train step in multiply-adds, for choosing inline vs thread
 * pool. */
double lt_model_step_flops(const lt_model *m, int batch);
double lt_model_forward_flops(const lt_model *m, int batch);

const char *lt_layer_name(lt_layer_kind kind);

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

#endif /* LT_MODEL_H */
