/*
 * lt_model.h: a Sequential model described by plain structs, its
 * parameter layout, and training / inference steps.
 *
 * A model is immutable once built (lt_model_build): it holds the layer
 * list, each layer's per-sample shapes, and the layout of one contiguous
 * float block holding
 *
 *     [ parameters (P) | buffers (B) | optimizer state (S floats) ]
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

#define LT_MAX_LAYERS   64
#define LT_NAME_LEN     32
/* dims of one sample: [C, H, W], [C, L], [L] or [F] */
#define LT_MAX_SHAPE    3
/* state-dict entries: BatchNorm has the most (5) */
#define LT_MAX_ENTRIES  (LT_MAX_LAYERS * 3)

typedef enum {
    LT_LAYER_LINEAR = 0,
    LT_LAYER_RELU,
    LT_LAYER_TANH,
    LT_LAYER_SIGMOID,
    LT_LAYER_SOFTMAX,
    LT_LAYER_LOGSOFTMAX,
    LT_LAYER_GELU,
    LT_LAYER_LEAKY_RELU,
    LT_LAYER_ELU,
    LT_LAYER_SILU,
    LT_LAYER_SOFTPLUS,
    LT_LAYER_IDENTITY,
    LT_LAYER_FLATTEN,
    LT_LAYER_DROPOUT,
    LT_LAYER_CONV1D,
    LT_LAYER_CONV2D,
    LT_LAYER_MAXPOOL1D,
    LT_LAYER_MAXPOOL2D,
    LT_LAYER_AVGPOOL1D,
    LT_LAYER_AVGPOOL2D,
    LT_LAYER_ADAPTIVE_AVGPOOL2D,
    LT_LAYER_BATCHNORM1D,
    LT_LAYER_BATCHNORM2D,
    LT_LAYER_LAYERNORM,
    LT_LAYER_EMBEDDING
} lt_layer_kind;

#define LT_LAYER_LAST  LT_LAYER_EMBEDDING

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

/* The shape of one sample (the batch dimension N is not in it). */
typedef struct {
    int            ndim;        /* 0: not given */
    int64_t        d[LT_MAX_SHAPE];
} lt_shape;

/*
 * One layer, with PyTorch's arguments.  Windowed layers (convolutions,
 * pools) keep [H, W] pairs; the 1-d ones use index 1 (index 0 is then
 * kernel 1, stride 1, padding 0, dilation 1, whatever it holds).  A 0 in
 * stride, dilation or groups means PyTorch's default (stride = kernel for
 * pools, else 1), so a spec written by hand may leave them out.
 */
typedef struct {
    lt_layer_kind  kind;
    int            in;          /* Linear in_features, Conv in_channels,
                                   BatchNorm num_features, Embedding
                                   num_embeddings */
    int            out;         /* Linear out_features, Conv out_channels,
                                   Embedding embedding_dim */
    int            no_bias;     /* Linear, Conv: bias = false; norms:
                                   affine / elementwise_affine = false */
    int            kernel[2];
    int            stride[2];
    int            padding[2];
    int            dilation[2];
    int            groups;
    int            dim[2];      /* Flatten start_dim, end_dim (0: 1, -1);
                                   AdaptiveAvgPool2d output H, W */
    int            exclude_pad; /* AvgPool count_include_pad = false */
    int            approximate; /* GELU: 1 = 'tanh' */
    int            padding_idx; /* Embedding: the index + 1, 0 = none */
    int            no_stats;    /* BatchNorm track_running_stats = false */
    float          a;           /* LeakyReLU negative_slope, ELU alpha,
                                   Softplus beta, Dropout p, norms' eps */
    float          b;           /* Softplus threshold, BatchNorm momentum */
    lt_shape       norm;        /* LayerNorm normalized_shape */
    char           name[LT_NAME_LEN]; /* state-dict prefix ("3", "1.0");
                                   "" is the layer's index */
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
    lt_shape       input;       /* per-sample input shape; ndim 0 when the
                                   first layer implies it (Linear,
                                   BatchNorm1d, LayerNorm) */
} lt_model_spec;

typedef enum {
    LT_DTYPE_F32 = 0,
    LT_DTYPE_I64                /* two floats: low and high 24 bits */
} lt_param_dtype;

/*
 * One state-dict entry: "0.weight" [out, in], "0.bias" [out],
 * "1.running_mean" [C], ...  Parameters (trained) lie in the block's
 * first P floats, buffers (published, not trained) in the B after them.
 */
typedef struct {
    char           name[LT_NAME_LEN];
    size_t         offset;      /* in floats from the start of the block */
    int            ndim;
    int64_t        shape[4];
    size_t         numel;       /* elements */
    size_t         nfloats;     /* floats in the block: numel, 2 for I64 */
    int            buffer;      /* 1: a buffer */
    lt_param_dtype dtype;
    int            layer;       /* index into spec.layers */
} lt_param_info;

/* I64 buffers hold whole numbers below 2^48: exact, and finite floats. */
#define LT_I64_MAX     ((int64_t) 1 << 48)

static inline int64_t
lt_i64_get(const float *p)
{
    return (int64_t) p[0] + (int64_t) p[1] * 16777216;
}

static inline void
lt_i64_set(float *p, int64_t v)
{
    p[0] = (float) (v % 16777216);
    p[1] = (float) (v / 16777216);
}

/* What the model computed for one layer at build time. */
typedef struct {
    lt_shape       in;          /* per-sample input and output shapes */
    lt_shape       out;
    int            param;       /* its first entry in params[] */
    int            nparam;      /* its entries (parameters and buffers) */
    size_t         scratch_row; /* workspace floats per batch row */
    size_t         scratch;     /* and per batch */
} lt_layer_info;

typedef struct {
    lt_model_spec  spec;
    lt_shape       in_shape;    /* per-sample input shape */
    int            in_index;    /* 1: x holds Embedding indices */
    int            in_dim;      /* elements per sample (numel of in_shape) */
    int            out_dim;     /* outputs per sample */
    int            nparams;     /* entries in params[], buffers included */
    lt_param_info  params[LT_MAX_ENTRIES];
    size_t         param_count; /* P: trained floats (the optimizer's) */
    size_t         buffer_count; /* B: buffer floats, after the P */
    size_t         state_count; /* S: per optimizer (lt_optim_state_floats),
                                   after the B */
    size_t         max_width;   /* widest activation, per sample */
    int            widths[LT_MAX_LAYERS]; /* each layer's outputs/sample */
    lt_layer_info  layer[LT_MAX_LAYERS];
    int            fused_sgd;   /* 1: every parameter is a biased Linear's */
    uint64_t       seed;        /* Dropout's masks: mixed with the step */
    uint64_t       hash;        /* layout hash: layers, shapes, optimizer */
} lt_model;

/* The floats a model publishes (versions, checkpoints, learn_weights):
 * parameters and buffers; the optimizer state follows them. */
static inline size_t
lt_model_values(const lt_model *m)
{
    return m->param_count + m->buffer_count;
}

/* Validate the spec (each layer's arguments, the per-sample shapes through
 * the whole net from spec->input or what the first layer implies, at
 * least one parameter to train, sane hyper-parameters) and compute the
 * layout.  On a mismatch the message names the layer by its state-dict
 * name and both shapes. */
int lt_model_build(lt_model *m, const lt_model_spec *spec, lt_err *err);

/* Fill the P parameters and B buffers as PyTorch's layers do by default
 * (Linear and Conv: Kaiming-uniform weights, bound 1/sqrt(fan_in), bias
 * uniform in +-1/sqrt(fan_in); norms: weight 1, bias 0, running_var 1;
 * Embedding: N(0, 1)) from a deterministic generator seeded by seed, and
 * zero the S optimizer floats that follow them. */
void lt_model_init_params(const lt_model *m, float *block, uint64_t seed);

/* The S optimizer floats at their start: zero, except Adagrad's sums,
 * which start at initial_accumulator_value (after an import too). */
void lt_model_init_state(const lt_model *m, float *state);

/* 0 when be has the ops of every layer of m and of its loss, optimizer
 * and clipping; else -1 and a message naming the first it lacks. */
int lt_model_backend_check(const lt_model *m, const lt_backend *be,
    lt_err *err);

/* The first layer the CUDA backend does not implement yet, or -1: the
 * master asks before any backend is loaded. */
int lt_model_device_layer(const lt_model *m);

/* [n, input shape...] into shape (LT_MAX_DIMS); returns its ndim. */
int lt_model_input_shape(const lt_model *m, int64_t n, int64_t *shape);

/* "[6, 1, 5, 5]" */
char *lt_param_shape_str(const lt_param_info *p, char *buf, size_t size);

/* NULL when no parameter or buffer has that name. */
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

/* Check x (and y) against the model: x is [N, input shape...] (or the
 * input shape alone for one sample; for an Embedding first, whole numbers
 * naming its embeddings; a BatchNorm in a train step needs two values per
 * channel); y is [N, out_dim] (also [N] when out_dim is 1, [out_dim] or a
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
