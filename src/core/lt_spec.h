/*
 * lt_spec.h: the plain data of a model: what a model file describes
 * (layers, loss, optimizer, schedule: lt_model_spec) and what
 * lt_model_build() makes of it (shapes, the named entries of the block,
 * the layout: lt_model).  Types only, and the name of a layer kind, so
 * that the files that check layers and optimizers (lt_layer_shape.c,
 * lt_optim.c) read a model without depending on lt_model.c, which calls
 * them.
 */
#ifndef LT_SPEC_H
#define LT_SPEC_H

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

/* PyTorch's class name of a layer kind: "Linear", "Conv2d", ...
 * (lt_layer_shape.c) */
const char *lt_layer_name(lt_layer_kind kind);

#endif /* LT_SPEC_H */
