/*
 * lt_model.c: validating a model spec, its parameter layout, layout hash
 * and initial parameters.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lt_model.h"
#include "lt_optim.h"
#include "lt_rand.h"

#define LT_FNV_OFFSET  0xcbf29ce484222325ULL
#define LT_FNV_PRIME   0x100000001b3ULL

/* Widest Linear side: keeps every size product far from overflow. */
#define LT_MAX_DIM     (1 << 24)


const char *
lt_layer_name(lt_layer_kind kind)
{
    switch (kind) {
    case LT_LAYER_LINEAR:     return "Linear";
    case LT_LAYER_RELU:       return "ReLU";
    case LT_LAYER_TANH:       return "Tanh";
    case LT_LAYER_SIGMOID:    return "Sigmoid";
    case LT_LAYER_SOFTMAX:    return "Softmax";
    case LT_LAYER_LOGSOFTMAX: return "LogSoftmax";
    }

    return "unknown";
}


/*
 * Walks the layers keeping the width of the data flowing through them:
 * activations keep it, a Linear must accept it.  Before the first Linear
 * the width is unknown and taken from that Linear's input.
 */
static int
lt_check_layers(lt_model *m, lt_err *err)
{
    const lt_model_spec  *s;
    const lt_layer_spec  *l;
    int                   i, j, prev;

    s = &m->spec;
    prev = -1;

    if (s->nlayers < 1 || s->nlayers > LT_MAX_LAYERS) {
        return lt_error(err, "a net has 1 to %d layers, not %d",
                        LT_MAX_LAYERS, s->nlayers);
    }

    for (i = 0; i < s->nlayers; i++) {
        l = &s->layers[i];

        if ((int) l->kind < 0 || l->kind > LT_LAYER_LOGSOFTMAX) {
            return lt_error(err, "layer %d has unknown kind %d", i,
                            (int) l->kind);
        }

        if (l->kind != LT_LAYER_LINEAR) {
            continue;
        }

        if (l->in < 1 || l->out < 1 || l->in > LT_MAX_DIM
            || l->out > LT_MAX_DIM)
        {
            return lt_error(err, "layer %d (Linear) has shape %d -> %d;"
                            " both must be in [1, %d]", i, l->in, l->out,
                            LT_MAX_DIM);
        }

        if (prev < 0) {
            m->in_dim = l->in;

        } else if (s->layers[prev].out != l->in) {
            return lt_error(err, "layer %d (Linear) expects %d inputs but"
                            " layer %d gives %d", i, l->in, prev,
                            s->layers[prev].out);
        }

        prev = i;
    }

    if (prev < 0) {
        return lt_error(err, "the net has no Linear layer");
    }

    m->out_dim = s->layers[prev].out;

    /* per-layer output widths, for the workspace */
    for (i = 0, j = m->in_dim; i < s->nlayers; i++) {
        if (s->layers[i].kind == LT_LAYER_LINEAR) {
            j = s->layers[i].out;
        }
        m->widths[i] = j;
    }

    return 0;
}


static void
lt_add_param(lt_model *m, int layer, const char *what, int ndim, int rows,
    int cols)
{
    lt_param_info  *p;

    p = &m->params[m->nparams++];
    snprintf(p->name, sizeof(p->name), "%d.%s", layer, what);
    p->offset = m->param_count;
    p->ndim = ndim;
    p->shape[0] = rows;
    p->shape[1] = ndim == 2 ? cols : 0;
    p->numel = (size_t) rows * (ndim == 2 ? (size_t) cols : 1);
    m->param_count += p->numel;
}


/* PyTorch's state_dict order: per Linear, weight [out, in] then bias. */
static void
lt_layout(lt_model *m)
{
    const lt_layer_spec  *l;
    int                   i;

    m->nparams = 0;
    m->param_count = 0;
    m->max_width = (size_t) m->in_dim;

    for (i = 0; i < m->spec.nlayers; i++) {
        l = &m->spec.layers[i];

        if ((size_t) m->widths[i] > m->max_width) {
            m->max_width = (size_t) m->widths[i];
        }

        if (l->kind == LT_LAYER_LINEAR) {
            lt_add_param(m, i, "weight", 2, l->out, l->in);
            lt_add_param(m, i, "bias", 1, l->out, 0);
        }
    }

    m->state_count = lt_optim_state_floats(&m->spec.optim, m->param_count);
}


static uint64_t
lt_fnv_int(uint64_t h, int64_t v)
{
    int  i;

    /* byte by byte, little-endian, so the hash is the same everywhere */
    for (i = 0; i < 8; i++) {
        h ^= (uint64_t) ((v >> (8 * i)) & 0xff);
        h *= LT_FNV_PRIME;
    }

    return h;
}


/*
 * FNV-1a over what decides the block's layout and meaning: layer kinds
 * and shapes, the optimizer and its state size (SGD with and without
 * momentum differ in S) and composition.  A zone or checkpoint with another hash holds
 * someone else's numbers.  Hyper-parameters (learning rate, momentum's
 * value, betas, the loss) stay out: a user may change them and keep the
 * trained parameters.
 */
static uint64_t
lt_layout_hash(const lt_model *m)
{
    const lt_layer_spec  *l;
    uint64_t              h;
    int                   i, flags;

    h = lt_fnv_int(LT_FNV_OFFSET, m->spec.nlayers);

    for (i = 0; i < m->spec.nlayers; i++) {
        l = &m->spec.layers[i];
        h = lt_fnv_int(h, l->kind);
        h = lt_fnv_int(h, l->kind == LT_LAYER_LINEAR ? l->in : 0);
        h = lt_fnv_int(h, l->kind == LT_LAYER_LINEAR ? l->out : 0);
    }

    h = lt_fnv_int(h, m->spec.optim.kind);
    h = lt_fnv_int(h, (int64_t) m->state_count);

    /* which blocks the state holds where its size leaves a choice
     * (RMSprop's momentum or centered); absent for SGD and plain Adam,
     * whose hashes stay what they were */
    flags = lt_optim_state_flags(&m->spec.optim);
    if (flags != 0) {
        h = lt_fnv_int(h, flags);
    }

    return h;
}


/* At most 2^28 parameters (1 GiB of floats): the zone holds two copies
 * and up to two floats of optimizer state per parameter, so a larger
 * net is a typo (nn.Linear(1e6, 1e6)) rather than a model to serve, and
 * would only fail later as a bare mmap() error. */
#define LT_MAX_PARAMS  ((uint64_t) 1 << 28)

int
lt_model_build(lt_model *m, const lt_model_spec *spec, lt_err *err)
{
    const lt_layer_spec  *l;
    uint64_t              n, total;
    int                   i;

    memset(m, 0, sizeof(*m));
    m->spec = *spec;

    if (lt_check_layers(m, err) != 0
        || lt_loss_check(m, err) != 0
        || lt_optim_check(&spec->optim, err) != 0
        || lt_schedule_check(&spec->schedule, err) != 0)
    {
        return -1;
    }

    if (!(spec->clip_grad_norm >= 0.0f) || isinf(spec->clip_grad_norm)) {
        return lt_error(err, "clip_grad_norm must be a finite number > 0 "
                        "(0: off), got %g", (double) spec->clip_grad_norm);
    }

    /* widths are at most LT_MAX_DIM (lt_check_layers): no overflow here */
    total = 0;
    for (i = 0; i < spec->nlayers; i++) {
        l = &spec->layers[i];
        if (l->kind != LT_LAYER_LINEAR) {
            continue;
        }

        n = (uint64_t) l->in * (uint64_t) l->out + (uint64_t) l->out;
        if (n > LT_MAX_PARAMS) {
            return lt_error(err, "layer %d (Linear %d -> %d) has %llu"
                            " parameters; a model may have at most %llu",
                            i, l->in, l->out, (unsigned long long) n,
                            (unsigned long long) LT_MAX_PARAMS);
        }

        total += n;
    }

    if (total > LT_MAX_PARAMS) {
        return lt_error(err, "the net has %llu parameters; a model may have"
                        " at most %llu", (unsigned long long) total,
                        (unsigned long long) LT_MAX_PARAMS);
    }

    lt_layout(m);
    m->hash = lt_layout_hash(m);

    return 0;
}


/* Uniform in [-bound, bound): 24 random bits are all a float holds. */
static float
lt_uniform(uint64_t *state, float bound)
{
    float  u;

    u = lt_rand_unit(state);

    return bound * (2.0f * u - 1.0f);
}


/*
 * nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) gives weights
 * in +-sqrt(6 / ((1 + 5) * fan_in)) = +-1/sqrt(fan_in), and the bias is
 * uniform in +-1/sqrt(fan_in) as well.
 */
void
lt_model_init_params(const lt_model *m, float *block, uint64_t seed)
{
    const lt_param_info  *p;
    uint64_t              state;
    float                 bound;
    size_t                j;
    int                   i, fan_in;

    state = seed;

    for (i = 0; i < m->nparams; i++) {
        p = &m->params[i];
        /* a bias follows its weight, whose shape[1] is the fan-in */
        fan_in = (int) (p->ndim == 2 ? p->shape[1] : m->params[i - 1].shape[1]);
        bound = 1.0f / sqrtf((float) fan_in);

        for (j = 0; j < p->numel; j++) {
            block[p->offset + j] = lt_uniform(&state, bound);
        }
    }

    lt_model_init_state(m, block + m->param_count);
}


const lt_param_info *
lt_model_find_param(const lt_model *m, const char *name)
{
    int  i;

    for (i = 0; i < m->nparams; i++) {
        if (strcmp(m->params[i].name, name) == 0) {
            return &m->params[i];
        }
    }

    return NULL;
}


/*
 * Multiply-adds of one train step: per Linear the forward product, the
 * weight gradient and (except the first Linear, whose input needs no
 * gradient) the input gradient; plus a few per activation element and
 * per parameter for the update.
 */
double
lt_model_step_flops(const lt_model *m, int batch)
{
    const lt_layer_spec  *l;
    double                f, mac;
    int                   i, first;

    f = 0.0;
    first = 1;

    for (i = 0; i < m->spec.nlayers; i++) {
        l = &m->spec.layers[i];

        if (l->kind != LT_LAYER_LINEAR) {
            f += 4.0 * batch * m->widths[i];
            continue;
        }

        mac = (double) batch * l->in * l->out;
        f += (first ? 2.0 : 3.0) * mac;
        first = 0;
    }

    f += (m->state_count > 0 ? 8.0 : 2.0) * (double) m->param_count;

    return f;
}


/* Multiply-adds of one forward pass: the Linear products. */
double
lt_model_forward_flops(const lt_model *m, int batch)
{
    const lt_layer_spec  *l;
    double                f;
    int                   i;

    f = 0.0;

    for (i = 0; i < m->spec.nlayers; i++) {
        l = &m->spec.layers[i];

        if (l->kind == LT_LAYER_LINEAR) {
            f += (double) batch * l->in * l->out;
        }
    }

    return f;
}
