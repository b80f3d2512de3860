/*
 * lt_model.c: validating a model spec, its parameter layout, layout hash
 * and initial parameters.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lt_layer.h"
#include "lt_optim.h"
#include "lt_rand.h"

#define LT_FNV_OFFSET  0xcbf29ce484222325ULL
#define LT_FNV_PRIME   0x100000001b3ULL

/* Widest Linear side: keeps every size product far from overflow. */
#define LT_MAX_DIM     (1 << 24)


/* The first layer's input when the model does not name one: a Linear's
 * [in_features], BatchNorm1d's [C], LayerNorm's normalized_shape. */
static int
lt_input_shape(lt_model *m, lt_err *err)
{
    const lt_layer_spec  *l;
    const lt_shape       *in;
    int                   i;

    l = &m->spec.layers[0];
    in = &m->spec.input;

    if (in->ndim > 0) {
        if (in->ndim > LT_MAX_SHAPE) {
            return lt_error(err, "the input shape has %d dims; at most %d "
                            "(N is not part of it)", in->ndim, LT_MAX_SHAPE);
        }
        for (i = 0; i < in->ndim; i++) {
            if (in->d[i] < 1 || in->d[i] > LT_MAX_DIM) {
                return lt_error(err, "the input shape's dim %d is %lld; "
                                "it must be in [1, %d]", i,
                                (long long) in->d[i], LT_MAX_DIM);
            }
        }
        m->in_shape = *in;
        return 0;
    }

    m->in_shape.ndim = 1;

    /* a net may start with shape-keeping layers: Tanh, then Linear */
    for (i = 0; i + 1 < m->spec.nlayers
                && (l->kind == LT_LAYER_RELU || l->kind == LT_LAYER_TANH
                    || l->kind == LT_LAYER_SIGMOID
                    || (l->kind >= LT_LAYER_GELU
                        && l->kind <= LT_LAYER_IDENTITY)
                    || l->kind == LT_LAYER_DROPOUT); i++)
    {
        l++;
    }

    switch (l->kind) {
    case LT_LAYER_LINEAR:
        m->in_shape.d[0] = l->in;
        return 0;
    case LT_LAYER_BATCHNORM1D:
        m->in_shape.d[0] = l->in;
        return 0;
    case LT_LAYER_LAYERNORM:
        m->in_shape = l->norm;
        return 0;
    default:
        break;
    }

    return lt_error(err, "the first layer (%s) does not say the shape of a"
                    " sample: give the model its input shape (nn.model{"
                    "input = {...}}, without N)", lt_layer_name(l->kind));
}


/*
 * Walks the layers from the input shape, each layer checking what it
 * gets and giving what it passes on: a mismatch names the layer (by its
 * state-dict name) and both shapes.
 */
static int
lt_check_layers(lt_model *m, lt_err *err)
{
    lt_model_spec  *s;
    lt_layer_spec  *l;
    lt_shape        cur;
    size_t          width;
    char            buf[64];
    int             i;

    s = &m->spec;

    if (s->nlayers < 1 || s->nlayers > LT_MAX_LAYERS) {
        return lt_error(err, "a net has 1 to %d layers, not %d",
                        LT_MAX_LAYERS, s->nlayers);
    }

    for (i = 0; i < s->nlayers; i++) {
        l = &s->layers[i];

        if ((int) l->kind < 0 || l->kind > LT_LAYER_LAST) {
            return lt_error(err, "layer %d has unknown kind %d", i,
                            (int) l->kind);
        }

        if (l->name[0] == '\0') {
            snprintf(l->name, sizeof(l->name), "%d", i);
        }
        l->name[LT_NAME_LEN - 1] = '\0';

        if (l->kind == LT_LAYER_EMBEDDING && i > 0) {
            return lt_error(err, "layer \"%s\" (Embedding) takes indices: "
                            "it must be the first layer", l->name);
        }

        lt_layer_defaults(l);
    }

    if (lt_input_shape(m, err) != 0) {
        return -1;
    }

    m->in_index = s->layers[0].kind == LT_LAYER_EMBEDDING;
    cur = m->in_shape;

    for (i = 0; i < s->nlayers; i++) {
        m->layer[i].in = cur;

        if (lt_layer_shape(&s->layers[i], &cur, &m->layer[i].out, err)
            != 0)
        {
            return -1;
        }

        cur = m->layer[i].out;
        width = lt_shape_numel(&cur);

        if (width > LT_MAX_DIM) {
            return lt_error(err, "layer \"%s\" (%s) gives %s: %zu values a"
                            " sample, at most %d", s->layers[i].name,
                            lt_layer_name(s->layers[i].kind),
                            lt_shape_print(&cur, buf, sizeof(buf)), width,
                            LT_MAX_DIM);
        }

        m->widths[i] = (int) width;
    }

    if (lt_shape_numel(&m->in_shape) > LT_MAX_DIM) {
        return lt_error(err, "the input has %zu values a sample, at most %d",
                        lt_shape_numel(&m->in_shape), LT_MAX_DIM);
    }

    m->in_dim = (int) lt_shape_numel(&m->in_shape);
    m->out_dim = m->widths[s->nlayers - 1];

    return 0;
}


/*
 * PyTorch's state_dict order: per layer its entries (Linear: weight,
 * bias; BatchNorm: weight, bias, running_mean, running_var,
 * num_batches_tracked).  Parameters take the block's first floats in
 * that order, buffers the floats after all parameters.
 */
static void
lt_layout(lt_model *m)
{
    lt_entry_def    defs[LT_LAYER_MAX_ENTRIES];
    lt_param_info  *p;
    lt_layer_info  *li;
    size_t          boff;
    int             i, j, k, n, pass;

    m->nparams = 0;
    m->param_count = 0;
    m->buffer_count = 0;
    m->max_width = (size_t) m->in_dim;
    m->fused_sgd = 1;

    for (pass = 0; pass < 2; pass++) {
        boff = 0;
        m->nparams = 0;

        for (i = 0; i < m->spec.nlayers; i++) {
            li = &m->layer[i];
            n = lt_layer_entries(&m->spec.layers[i], &li->in, defs);
            li->param = m->nparams;
            li->nparam = n;

            for (j = 0; j < n; j++) {
                p = &m->params[m->nparams++];

                if (pass == 0) {
                    memset(p, 0, sizeof(*p));
                    snprintf(p->name, sizeof(p->name), "%s.%s",
                             m->spec.layers[i].name, defs[j].what);
                    p->ndim = defs[j].ndim;
                    p->numel = 1;
                    for (k = 0; k < p->ndim; k++) {
                        p->shape[k] = defs[j].shape[k];
                        p->numel *= (size_t) p->shape[k];
                    }
                    p->dtype = defs[j].dtype;
                    p->nfloats = p->dtype == LT_DTYPE_I64 ? 2 * p->numel
                                                          : p->numel;
                    p->buffer = defs[j].buffer;
                    p->layer = i;

                    if (!p->buffer) {
                        p->offset = m->param_count;
                        m->param_count += p->nfloats;
                    }
                    continue;
                }

                if (p->buffer) {
                    p->offset = m->param_count + boff;
                    boff += p->nfloats;
                }
            }

            if (pass == 0 && n > 0
                && (m->spec.layers[i].kind != LT_LAYER_LINEAR
                    || m->spec.layers[i].no_bias))
            {
                m->fused_sgd = 0;
            }
        }

        if (pass == 0) {
            continue;
        }

        m->buffer_count = boff;
    }

    for (i = 0; i < m->spec.nlayers; i++) {
        li = &m->layer[i];

        if ((size_t) m->widths[i] > m->max_width) {
            m->max_width = (size_t) m->widths[i];
        }

        lt_layer_scratch(&m->spec.layers[i], li, &li->scratch_row,
                         &li->scratch);
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
lt_fnv_shape(uint64_t h, const lt_shape *s)
{
    int  i;

    h = lt_fnv_int(h, s->ndim);
    for (i = 0; i < s->ndim; i++) {
        h = lt_fnv_int(h, s->d[i]);
    }

    return h;
}


/*
 * FNV-1a over what decides the block's layout and meaning: layer kinds
 * and shapes, the optimizer and its state size (SGD with and without
 * momentum differ in S).  A zone or checkpoint with another hash holds
 * someone else's numbers.  Hyper-parameters (learning rate, momentum's
 * value, betas, the loss) stay out: a user may change them and keep the
 * trained parameters.  What MLPs of Linear and the first five
 * activations did not have is hashed only where used, so their hash
 * (and so their zones and checkpoints) stays what it was.
 */
static uint64_t
lt_layout_hash(const lt_model *m)
{
    const lt_layer_spec  *l;
    uint64_t              h;
    int                   i, j, flags;

    h = lt_fnv_int(LT_FNV_OFFSET, m->spec.nlayers);

    for (i = 0; i < m->spec.nlayers; i++) {
        l = &m->spec.layers[i];
        h = lt_fnv_int(h, l->kind);
        h = lt_fnv_int(h, l->kind == LT_LAYER_LINEAR ? l->in : 0);
        h = lt_fnv_int(h, l->kind == LT_LAYER_LINEAR ? l->out : 0);

        if (l->kind <= LT_LAYER_LOGSOFTMAX && !l->no_bias) {
            continue;
        }

        h = lt_fnv_int(h, l->in);
        h = lt_fnv_int(h, l->out);
        h = lt_fnv_int(h, l->no_bias);
        for (j = 0; j < 2; j++) {
            h = lt_fnv_int(h, l->kernel[j]);
            h = lt_fnv_int(h, l->stride[j]);
            h = lt_fnv_int(h, l->padding[j]);
            h = lt_fnv_int(h, l->dilation[j]);
            h = lt_fnv_int(h, l->dim[j]);
        }
        h = lt_fnv_int(h, l->groups);
        h = lt_fnv_int(h, l->padding_idx);
        h = lt_fnv_int(h, l->no_stats);
        h = lt_fnv_shape(h, &l->norm);
        h = lt_fnv_shape(h, &m->layer[i].out);
    }

    if (m->spec.input.ndim > 0) {
        h = lt_fnv_shape(h, &m->in_shape);
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

/* The floats of a layer's entries, without overflow (each side is at
 * most LT_MAX_DIM, so no product of two overflows; three are checked). */
static uint64_t
lt_layer_floats(const lt_model *m, int i)
{
    lt_entry_def  defs[LT_LAYER_MAX_ENTRIES];
    uint64_t      total, n;
    int           j, k, count;

    count = lt_layer_entries(&m->spec.layers[i], &m->layer[i].in, defs);
    total = 0;

    for (j = 0; j < count; j++) {
        n = defs[j].dtype == LT_DTYPE_I64 ? 2 : 1;
        /* exact while it may still be reported; each side < 2^25 */
        for (k = 0; k < defs[j].ndim; k++) {
            if (n > ((uint64_t) 1 << 38)) {
                return (uint64_t) 1 << 62;
            }
            n *= (uint64_t) defs[j].shape[k];
        }
        total += n;
    }

    return total;
}


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

    total = 0;
    for (i = 0; i < spec->nlayers; i++) {
        l = &m->spec.layers[i];
        n = lt_layer_floats(m, i);

        if (n > LT_MAX_PARAMS) {
            return lt_error(err, "layer \"%s\" (%s) has %llu parameters; a "
                            "model may have at most %llu", l->name,
                            lt_layer_name(l->kind), (unsigned long long) n,
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

    /* a convolution's columns (one sample) are bounded as a layer's
     * parameters are: a wider one is a typo, not a model to serve */
    for (i = 0; i < spec->nlayers; i++) {
        if (m->layer[i].scratch > 4 * LT_MAX_PARAMS) {
            return lt_error(err, "layer \"%s\" (%s) needs %zu floats of "
                            "columns per sample; at most %llu",
                            m->spec.layers[i].name,
                            lt_layer_name(m->spec.layers[i].kind),
                            m->layer[i].scratch,
                            (unsigned long long) (4 * LT_MAX_PARAMS));
        }
    }

    if (m->param_count == 0) {
        return lt_error(err, "the net has no layer with parameters to train");
    }

    m->hash = lt_layout_hash(m);

    return 0;
}


int
lt_model_backend_check(const lt_model *m, const lt_backend *be,
    lt_err *err)
{
    int  i;

    for (i = 0; i < m->spec.nlayers; i++) {
        if (!lt_layer_on_backend(&m->spec.layers[i], be)) {
            return lt_error(err, "layer \"%s\" (%s) is not implemented on "
                            "the %s backend", m->spec.layers[i].name,
                            lt_layer_name(m->spec.layers[i].kind), be->name);
        }
    }

    /* and the loss, the optimizer and clipping */
    return lt_model_check_backend(m, be, err);
}


int
lt_model_device_layer(const lt_model *m)
{
    const lt_layer_spec  *l;
    int                   i;

    for (i = 0; i < m->spec.nlayers; i++) {
        l = &m->spec.layers[i];

        /* src/core/cuda has the ops of every layer up to Embedding; a
         * kind added later is refused until it has its kernels */
        if (l->kind > LT_LAYER_EMBEDDING) {
            return i;
        }
    }

    return -1;
}


int
lt_model_input_shape(const lt_model *m, int64_t n, int64_t *shape)
{
    int  i;

    shape[0] = n;
    for (i = 0; i < m->in_shape.ndim; i++) {
        shape[1 + i] = m->in_shape.d[i];
    }

    return 1 + m->in_shape.ndim;
}


/* Uniform in [-bound, bound): 24 random bits are all a float holds. */
static float
lt_uniform(uint64_t *state, float bound)
{
    float  u;

    u = lt_rand_unit(state);

    return bound * (2.0f * u - 1.0f);
}


/* Standard normal, Box-Muller over two uniforms (the first in (0, 1]). */
static float
lt_normal(uint64_t *state)
{
    double  u1, u2;

    u1 = 1.0 - (double) lt_rand_unit(state);
    u2 = (double) lt_rand_unit(state);

    return (float) (sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}


/*
 * PyTorch's reset_parameters: Linear and Conv weights by
 * kaiming_uniform_(a=sqrt(5)), i.e. uniform in +-1/sqrt(fan_in) (fan_in =
 * the weight's elements per output), the bias uniform in the same bound;
 * BatchNorm and LayerNorm weight 1, bias 0, running_mean 0, running_var 1,
 * no batches tracked; Embedding N(0, 1) with padding_idx's row 0.
 */
void
lt_model_init_params(const lt_model *m, float *block, uint64_t seed)
{
    const lt_layer_spec  *l;
    const lt_param_info  *p;
    uint64_t              state;
    float                 bound, *v;
    size_t                j;
    int                   i, norm;

    state = seed;
    bound = 1.0f;

    for (i = 0; i < m->nparams; i++) {
        p = &m->params[i];
        l = &m->spec.layers[p->layer];
        v = block + p->offset;
        norm = l->kind == LT_LAYER_BATCHNORM1D
               || l->kind == LT_LAYER_BATCHNORM2D
               || l->kind == LT_LAYER_LAYERNORM;

        if (norm) {
            /* weight and running_var 1, the rest 0 */
            for (j = 0; j < p->nfloats; j++) {
                v[j] = strcmp(p->name + strlen(l->name), ".weight") == 0
                       || strcmp(p->name + strlen(l->name),
                                 ".running_var") == 0 ? 1.0f : 0.0f;
            }
            continue;
        }

        if (l->kind == LT_LAYER_EMBEDDING) {
            for (j = 0; j < p->numel; j++) {
                v[j] = lt_normal(&state);
            }
            if (l->padding_idx > 0) {
                memset(v + (size_t) (l->padding_idx - 1) * l->out, 0,
                       (size_t) l->out * sizeof(float));
            }
            continue;
        }

        /* a weight gives the bound its bias uses too */
        if (p->ndim >= 2) {
            bound = 1.0f / sqrtf((float) (p->numel / (size_t) p->shape[0]));
        }

        for (j = 0; j < p->numel; j++) {
            v[j] = lt_uniform(&state, bound);
        }
    }

    lt_model_init_state(m, block + lt_model_values(m));
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


/* Multiply-adds of layer i's forward pass for batch rows. */
static double
lt_layer_macs(const lt_model *m, int i, int batch)
{
    const lt_layer_spec  *l;
    const lt_layer_info  *li;

    l = &m->spec.layers[i];
    li = &m->layer[i];

    switch (l->kind) {
    case LT_LAYER_LINEAR:
        return (double) batch * lt_shape_numel(&li->in) * l->out;
    case LT_LAYER_CONV1D:
    case LT_LAYER_CONV2D:
        return (double) batch * lt_shape_numel(&li->out)
               * (l->in / l->groups) * l->kernel[0] * l->kernel[1];
    default:
        return 0.0;
    }
}


/*
 * Multiply-adds of one train step: per Linear or Conv the forward
 * product, the weight gradient and (except the first, whose input needs
 * no gradient) the input gradient; plus a few per activation element and
 * per parameter for the update.
 */
double
lt_model_step_flops(const lt_model *m, int batch)
{
    double  f, mac;
    int     i, first;

    f = 0.0;
    first = 1;

    for (i = 0; i < m->spec.nlayers; i++) {
        mac = lt_layer_macs(m, i, batch);

        if (mac == 0.0) {
            f += 4.0 * batch * m->widths[i];
            continue;
        }

        f += (first ? 2.0 : 3.0) * mac;
        first = 0;
    }

    f += (m->state_count > 0 ? 8.0 : 2.0) * (double) m->param_count;

    return f;
}


/* Multiply-adds of one forward pass: the Linear and Conv products. */
double
lt_model_forward_flops(const lt_model *m, int batch)
{
    double  f;
    int     i;

    f = 0.0;

    for (i = 0; i < m->spec.nlayers; i++) {
        f += lt_layer_macs(m, i, batch);
    }

    return f;
}
