/*
 * lt_layer_shape.c: what each layer is at build time: its arguments
 * checked as PyTorch checks them, its output shape from its input shape,
 * its state-dict entries and the scratch it needs in a workspace.
 */
#include <stdio.h>
#include <string.h>
#include <math.h>

#include "lt_layer.h"


const char *
lt_layer_name(lt_layer_kind kind)
{
    static const char  *names[] = {
        "Linear", "ReLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax",
        "GELU", "LeakyReLU", "ELU", "SiLU", "Softplus", "Identity",
        "Flatten", "Dropout", "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d",
        "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d",
        "BatchNorm2d", "LayerNorm", "Embedding"
    };

    if ((int) kind < 0 || kind > LT_LAYER_LAST) {
        return "unknown";
    }

    return names[kind];
}


/* Widest side of anything: keeps size products far from overflow. */
#define LT_MAX_SIDE  (1 << 24)

#define LT_SHAPE_BUF 64


size_t
lt_shape_numel(const lt_shape *s)
{
    size_t  n;
    int     i;

    for (n = 1, i = 0; i < s->ndim; i++) {
        n *= (size_t) s->d[i];
    }

    return n;
}


char *
lt_shape_print(const lt_shape *s, char *buf, size_t size)
{
    size_t  len;
    int     i;

    len = (size_t) snprintf(buf, size, "[");

    for (i = 0; i < s->ndim && len < size; i++) {
        len += (size_t) snprintf(buf + len, size - len, "%s%lld",
                                 i ? ", " : "", (long long) s->d[i]);
    }

    if (len < size) {
        snprintf(buf + len, size - len, "]");
    }

    return buf;
}


char *
lt_param_shape_str(const lt_param_info *p, char *buf, size_t size)
{
    lt_shape  s;
    int       i;

    s.ndim = p->ndim < LT_MAX_SHAPE ? p->ndim : LT_MAX_SHAPE;
    for (i = 0; i < s.ndim; i++) {
        s.d[i] = p->shape[i];
    }

    if (p->ndim <= LT_MAX_SHAPE) {
        return lt_shape_print(&s, buf, size);
    }

    snprintf(buf, size, "[%lld, %lld, %lld, %lld]", (long long) p->shape[0],
             (long long) p->shape[1], (long long) p->shape[2],
             (long long) p->shape[3]);

    return buf;
}


const char *
lt_layer_label(const lt_model *m, int i, char *buf, size_t size)
{
    snprintf(buf, size, "layer \"%s\" (%s)", m->spec.layers[i].name,
             lt_layer_name(m->spec.layers[i].kind));
    return buf;
}


static int
lt_is_1d(lt_layer_kind k)
{
    return k == LT_LAYER_CONV1D || k == LT_LAYER_MAXPOOL1D
           || k == LT_LAYER_AVGPOOL1D;
}


static int
lt_is_pool(lt_layer_kind k)
{
    return k == LT_LAYER_MAXPOOL1D || k == LT_LAYER_MAXPOOL2D
           || k == LT_LAYER_AVGPOOL1D || k == LT_LAYER_AVGPOOL2D;
}


static int
lt_bad_input(const lt_layer_spec *l, const lt_shape *in, const char *want,
    lt_err *err)
{
    char  buf[LT_SHAPE_BUF];

    return lt_error(err, "layer \"%s\" (%s) expects input %s but gets %s",
                    l->name, lt_layer_name(l->kind), want,
                    lt_shape_print(in, buf, sizeof(buf)));
}


static int
lt_bad_arg(const lt_layer_spec *l, const char *what, long long v,
    const char *must, lt_err *err)
{
    return lt_error(err, "layer \"%s\" (%s): %s = %lld %s", l->name,
                    lt_layer_name(l->kind), what, v, must);
}


static int
lt_range(const lt_layer_spec *l, const char *what, long long v,
    long long lo, lt_err *err)
{
    char  must[48];

    if (v >= lo && v <= LT_MAX_SIDE) {
        return 0;
    }

    snprintf(must, sizeof(must), "must be in [%lld, %d]", lo, LT_MAX_SIDE);
    return lt_bad_arg(l, what, v, must, err);
}


/* Convolutions and pools over [C, L] or [C, H, W]. */
static int
lt_window_shape(const lt_layer_spec *s, const lt_shape *in, lt_shape *out,
    lt_err *err)
{
    static const char  *axis[2] = { "height", "width" };
    lt_layer_spec       l;
    char                want[LT_SHAPE_BUF];
    int64_t             side, span, o;
    int                 i, d0, pool, conv;

    l = *s;
    pool = lt_is_pool(l.kind);
    conv = l.kind == LT_LAYER_CONV1D || l.kind == LT_LAYER_CONV2D;
    d0 = lt_is_1d(l.kind) ? 1 : 0;

    if (in->ndim != 3 - d0 || (conv && in->d[0] != l.in)) {
        if (conv) {
            snprintf(want, sizeof(want), d0 ? "[%d, L]" : "[%d, H, W]",
                     l.in);
        } else {
            snprintf(want, sizeof(want), d0 ? "[C, L]" : "[C, H, W]");
        }
        return lt_bad_input(&l, in, want, err);
    }

    if (conv) {
        if (lt_range(&l, "in_channels", l.in, 1, err) != 0
            || lt_range(&l, "out_channels", l.out, 1, err) != 0
            || lt_range(&l, "groups", l.groups, 1, err) != 0)
        {
            return -1;
        }
        if (l.in % l.groups || l.out % l.groups) {
            return lt_bad_arg(&l, "groups", l.groups, "must divide "
                              "in_channels and out_channels", err);
        }
    }

    out->ndim = in->ndim;
    out->d[0] = conv ? l.out : in->d[0];

    for (i = d0; i < 2; i++) {
        side = in->d[1 + i - d0];

        if (lt_range(&l, "kernel_size", l.kernel[i], 1, err) != 0
            || lt_range(&l, "stride", l.stride[i], 1, err) != 0
            || lt_range(&l, "padding", l.padding[i], 0, err) != 0
            || lt_range(&l, "dilation", l.dilation[i], 1, err) != 0)
        {
            return -1;
        }

        if (pool && l.padding[i] > l.kernel[i] / 2) {
            return lt_bad_arg(&l, "padding", l.padding[i], "must be at "
                              "most half the kernel size", err);
        }

        span = (int64_t) l.dilation[i] * (l.kernel[i] - 1) + 1;
        o = (side + 2 * (int64_t) l.padding[i] - span) / l.stride[i] + 1;

        if (side + 2 * (int64_t) l.padding[i] < span || o < 1) {
            return lt_error(err, "layer \"%s\" (%s): its input %s of %lld "
                            "is smaller than the kernel (%lld with "
                            "dilation and padding)", l.name,
                            lt_layer_name(l.kind), d0 ? "length"
                            : axis[i], (long long) side, (long long) span);
        }

        out->d[1 + i - d0] = o;
    }

    return 0;
}


/* Normalises the 0 defaults of a hand-written spec (see lt_model.h). */
void
lt_layer_defaults(lt_layer_spec *l)
{
    int  i, pool;

    pool = lt_is_pool(l->kind);

    if (lt_is_1d(l->kind)) {
        l->kernel[0] = 1;
        l->stride[0] = 1;
        l->padding[0] = 0;
        l->dilation[0] = 1;
    }

    for (i = 0; i < 2; i++) {
        if (l->stride[i] == 0) {
            l->stride[i] = pool ? l->kernel[i] : 1;
        }
        if (l->dilation[i] == 0) {
            l->dilation[i] = 1;
        }
    }

    if (l->groups == 0) {
        l->groups = 1;
    }

    if (l->kind == LT_LAYER_FLATTEN && l->dim[0] == 0 && l->dim[1] == 0) {
        l->dim[0] = 1;
        l->dim[1] = -1;
    }
}


static int
lt_flatten_shape(const lt_layer_spec *l, const lt_shape *in, lt_shape *out,
    lt_err *err)
{
    int  nd, s, e, i, j;

    nd = in->ndim + 1;          /* with N */
    s = l->dim[0] < 0 ? l->dim[0] + nd : l->dim[0];
    e = l->dim[1] < 0 ? l->dim[1] + nd : l->dim[1];

    if (s < 1 || s >= nd || e < s || e >= nd) {
        return lt_error(err, "layer \"%s\" (Flatten): start_dim = %d, "
                        "end_dim = %d over an input of %d dims (with N) "
                        "is not supported: the batch dimension stays",
                        l->name, l->dim[0], l->dim[1], nd);
    }

    out->ndim = 0;
    for (i = 1; i < nd; i++) {
        if (i <= s || i > e) {
            out->d[out->ndim++] = in->d[i - 1];
        } else {
            j = out->ndim - 1;
            out->d[j] *= in->d[i - 1];
        }
    }

    return 0;
}


int
lt_layer_shape(const lt_layer_spec *spec, const lt_shape *in, lt_shape *out,
    lt_err *err)
{
    lt_layer_spec  l;
    char           want[LT_SHAPE_BUF];
    int            i, off;

    l = *spec;
    lt_layer_defaults(&l);
    *out = *in;

    switch (l.kind) {

    case LT_LAYER_LINEAR:
        if (lt_range(&l, "in_features", l.in, 1, err) != 0
            || lt_range(&l, "out_features", l.out, 1, err) != 0)
        {
            return -1;
        }
        if (in->ndim < 1 || in->d[in->ndim - 1] != l.in) {
            snprintf(want, sizeof(want), "[..., %d]", l.in);
            return lt_bad_input(&l, in, want, err);
        }
        out->d[in->ndim - 1] = l.out;
        return 0;

    case LT_LAYER_SOFTMAX:
    case LT_LAYER_LOGSOFTMAX:
        if (in->ndim != 1) {
            return lt_bad_input(&l, in, "[F] (add nn.Flatten() before it)",
                                err);
        }
        return 0;

    case LT_LAYER_RELU:
    case LT_LAYER_TANH:
    case LT_LAYER_SIGMOID:
    case LT_LAYER_GELU:
    case LT_LAYER_LEAKY_RELU:
    case LT_LAYER_ELU:
    case LT_LAYER_SILU:
    case LT_LAYER_IDENTITY:
        return 0;

    case LT_LAYER_SOFTPLUS:
        if (!(l.a > 0.0f) || isinf(l.a) || isnan(l.b)) {
            return lt_error(err, "layer \"%s\" (Softplus): beta = %g must "
                            "be > 0", l.name, (double) l.a);
        }
        return 0;

    case LT_LAYER_DROPOUT:
        if (!(l.a >= 0.0f && l.a <= 1.0f)) {
            return lt_error(err, "layer \"%s\" (Dropout): p = %g must be "
                            "in [0, 1]", l.name, (double) l.a);
        }
        return 0;

    case LT_LAYER_FLATTEN:
        return lt_flatten_shape(&l, in, out, err);

    case LT_LAYER_CONV1D:
    case LT_LAYER_CONV2D:
    case LT_LAYER_MAXPOOL1D:
    case LT_LAYER_MAXPOOL2D:
    case LT_LAYER_AVGPOOL1D:
    case LT_LAYER_AVGPOOL2D:
        return lt_window_shape(&l, in, out, err);

    case LT_LAYER_ADAPTIVE_AVGPOOL2D:
        if (in->ndim != 3) {
            return lt_bad_input(&l, in, "[C, H, W]", err);
        }
        for (i = 0; i < 2; i++) {
            if (l.dim[i] != 0
                && lt_range(&l, "output_size", l.dim[i], 1, err) != 0)
            {
                return -1;
            }
            out->d[1 + i] = l.dim[i] ? l.dim[i] : in->d[1 + i];
        }
        return 0;

    case LT_LAYER_BATCHNORM1D:
    case LT_LAYER_BATCHNORM2D:
        if (lt_range(&l, "num_features", l.in, 1, err) != 0) {
            return -1;
        }
        if (!(l.a > 0.0f) || !(l.b >= 0.0f && l.b <= 1.0f)) {
            return lt_error(err, "layer \"%s\" (%s): eps = %g must be > 0 "
                            "and momentum = %g in [0, 1]", l.name,
                            lt_layer_name(l.kind), (double) l.a,
                            (double) l.b);
        }
        if (l.kind == LT_LAYER_BATCHNORM2D
            ? in->ndim != 3 || in->d[0] != l.in
            : (in->ndim != 1 && in->ndim != 2) || in->d[0] != l.in)
        {
            snprintf(want, sizeof(want), l.kind == LT_LAYER_BATCHNORM2D
                     ? "[%d, H, W]" : "[%d] or [%d, L]", l.in, l.in);
            return lt_bad_input(&l, in, want, err);
        }
        return 0;

    case LT_LAYER_LAYERNORM:
        if (!(l.a > 0.0f)) {
            return lt_error(err, "layer \"%s\" (LayerNorm): eps = %g must "
                            "be > 0", l.name, (double) l.a);
        }
        off = in->ndim - l.norm.ndim;
        for (i = 0; i < l.norm.ndim; i++) {
            if (lt_range(&l, "normalized_shape", l.norm.d[i], 1, err) != 0)
            {
                return -1;
            }
        }
        for (i = 0; off >= 0 && i < l.norm.ndim; i++) {
            if (in->d[off + i] != l.norm.d[i]) {
                break;
            }
        }
        if (l.norm.ndim < 1 || off < 0 || i < l.norm.ndim) {
            lt_shape_print(&l.norm, want, sizeof(want));
            snprintf(want + strlen(want), sizeof(want) - strlen(want),
                     " at its end");
            return lt_bad_input(&l, in, want, err);
        }
        return 0;

    case LT_LAYER_EMBEDDING:
        if (lt_range(&l, "num_embeddings", l.in, 1, err) != 0
            || lt_range(&l, "embedding_dim", l.out, 1, err) != 0)
        {
            return -1;
        }
        if (l.padding_idx < 0 || l.padding_idx > l.in) {
            return lt_bad_arg(&l, "padding_idx", l.padding_idx - 1,
                              "must name an embedding", err);
        }
        if (in->ndim != 1) {
            return lt_bad_input(&l, in, "[L] (integer indices)", err);
        }
        out->ndim = 2;
        out->d[1] = l.out;
        return 0;
    }

    return lt_error(err, "layer \"%s\" has unknown kind %d", l.name,
                    (int) l.kind);
}


static void
lt_def(lt_entry_def *d, const char *what, int buffer, lt_param_dtype dtype,
    int ndim, int64_t a, int64_t b, int64_t c, int64_t e)
{
    d->what = what;
    d->buffer = buffer;
    d->dtype = dtype;
    d->ndim = ndim;
    d->shape[0] = a;
    d->shape[1] = b;
    d->shape[2] = c;
    d->shape[3] = e;
}


int
lt_layer_entries(const lt_layer_spec *spec, const lt_shape *in,
    lt_entry_def *d)
{
    lt_layer_spec  l;
    int            n, i, bias;

    l = *spec;
    lt_layer_defaults(&l);
    n = 0;
    bias = !l.no_bias;

    switch (l.kind) {

    case LT_LAYER_LINEAR:
        lt_def(&d[n++], "weight", 0, LT_DTYPE_F32, 2, l.out, l.in, 0, 0);
        if (bias) {
            lt_def(&d[n++], "bias", 0, LT_DTYPE_F32, 1, l.out, 0, 0, 0);
        }
        break;

    case LT_LAYER_CONV1D:
        lt_def(&d[n++], "weight", 0, LT_DTYPE_F32, 3, l.out,
               l.in / l.groups, l.kernel[1], 0);
        if (bias) {
            lt_def(&d[n++], "bias", 0, LT_DTYPE_F32, 1, l.out, 0, 0, 0);
        }
        break;

    case LT_LAYER_CONV2D:
        lt_def(&d[n++], "weight", 0, LT_DTYPE_F32, 4, l.out,
               l.in / l.groups, l.kernel[0], l.kernel[1]);
        if (bias) {
            lt_def(&d[n++], "bias", 0, LT_DTYPE_F32, 1, l.out, 0, 0, 0);
        }
        break;

    case LT_LAYER_BATCHNORM1D:
    case LT_LAYER_BATCHNORM2D:
        if (bias) {
            lt_def(&d[n++], "weight", 0, LT_DTYPE_F32, 1, l.in, 0, 0, 0);
            lt_def(&d[n++], "bias", 0, LT_DTYPE_F32, 1, l.in, 0, 0, 0);
        }
        if (!l.no_stats) {
            lt_def(&d[n++], "running_mean", 1, LT_DTYPE_F32, 1, l.in, 0, 0,
                   0);
            lt_def(&d[n++], "running_var", 1, LT_DTYPE_F32, 1, l.in, 0, 0,
                   0);
            lt_def(&d[n++], "num_batches_tracked", 1, LT_DTYPE_I64, 0, 0, 0,
                   0, 0);
        }
        break;

    case LT_LAYER_LAYERNORM:
        if (bias) {
            for (i = 0; i < 2; i++) {
                lt_def(&d[n], i ? "bias" : "weight", 0, LT_DTYPE_F32,
                       l.norm.ndim, l.norm.d[0], l.norm.d[1], l.norm.d[2],
                       0);
                n++;
            }
        }
        break;

    case LT_LAYER_EMBEDDING:
        lt_def(&d[n++], "weight", 0, LT_DTYPE_F32, 2, l.in, l.out, 0, 0);
        break;

    default:
        break;
    }

    (void) in;

    return n;
}


/* A forward pass that multiplies patches as rows (lt_layer_conv.c):
 * its scratch per sample */
size_t
lt_layer_conv_rows_scratch(const lt_layer_spec *l, const lt_window *g)
{
    size_t  k, s;

    k = (size_t) g->c * g->kh * g->kw;
    s = (size_t) g->oh * g->ow;

    /* rows, the padded copy, Y^T, W' */
    return s * k + ((size_t) g->h + 2 * g->ph) * (g->w + 2 * g->pw) * g->c
           + s * l->out + (size_t) l->out * k;
}


void
lt_layer_scratch(const lt_layer_spec *l, const lt_layer_info *li,
    size_t *per_row, size_t *per_batch)
{
    lt_window  g;

    *per_row = 0;
    *per_batch = 0;

    switch (l->kind) {

    case LT_LAYER_DROPOUT:
    case LT_LAYER_MAXPOOL1D:
    case LT_LAYER_MAXPOOL2D:
        /* the mask; the argmax of each output */
        *per_row = lt_shape_numel(&li->out);
        break;

    case LT_LAYER_CONV1D:
    case LT_LAYER_CONV2D:
        /* one sample's columns, and their gradient */
        lt_layer_window(l, li, &g);
        *per_batch = 2 * (size_t) g.c * g.kh * g.kw * g.oh * g.ow;
        /* or, for a forward pass by rows, rows, a padded copy, Y^T, W'
         * (whichever backend runs it: the layer asks at run time) */
        if (lt_layer_conv_rows_scratch(l, &g) > *per_batch) {
            *per_batch = lt_layer_conv_rows_scratch(l, &g);
        }
        break;

    case LT_LAYER_BATCHNORM1D:
    case LT_LAYER_BATCHNORM2D:
        *per_batch = 3 * (size_t) l->in;
        break;

    case LT_LAYER_LAYERNORM:
        /* mean and 1/std of each normalized group */
        *per_row = 2 * lt_shape_numel(&li->in)
                   / lt_shape_numel(&l->norm);
        break;

    default:
        break;
    }
}


void
lt_layer_window(const lt_layer_spec *s, const lt_layer_info *li,
    lt_window *g)
{
    lt_layer_spec  l;
    int            one;

    l = *s;
    lt_layer_defaults(&l);
    one = li->in.ndim == 2;

    g->c = (int) li->in.d[0];
    g->h = one ? 1 : (int) li->in.d[1];
    g->w = (int) li->in.d[one ? 1 : 2];
    g->oh = one ? 1 : (int) li->out.d[1];
    g->ow = (int) li->out.d[one ? 1 : 2];
    g->kh = l.kernel[0];
    g->kw = l.kernel[1];
    g->sh = l.stride[0];
    g->sw = l.stride[1];
    g->ph = l.padding[0];
    g->pw = l.padding[1];
    g->dh = l.dilation[0];
    g->dw = l.dilation[1];
}


int
lt_layer_on_backend(const lt_layer_spec *l, const lt_backend *be)
{
    switch (l->kind) {

    case LT_LAYER_GELU:
    case LT_LAYER_LEAKY_RELU:
    case LT_LAYER_ELU:
    case LT_LAYER_SILU:
    case LT_LAYER_SOFTPLUS:
        return be->act_arg_forward != NULL && be->act_arg_backward != NULL;

    case LT_LAYER_DROPOUT:
        return be->dropout_forward != NULL && be->mul != NULL;

    case LT_LAYER_CONV1D:
    case LT_LAYER_CONV2D:
        return be->im2col != NULL && be->col2im != NULL
               && be->channel_bias != NULL && be->channel_sum != NULL;

    case LT_LAYER_MAXPOOL1D:
    case LT_LAYER_MAXPOOL2D:
    case LT_LAYER_AVGPOOL1D:
    case LT_LAYER_AVGPOOL2D:
    case LT_LAYER_ADAPTIVE_AVGPOOL2D:
        return be->pool_forward != NULL && be->pool_backward != NULL;

    case LT_LAYER_BATCHNORM1D:
    case LT_LAYER_BATCHNORM2D:
        return be->batchnorm_forward != NULL
               && be->batchnorm_backward != NULL
               && be->batchnorm_running != NULL;

    case LT_LAYER_LAYERNORM:
        return be->layernorm_forward != NULL
               && be->layernorm_backward != NULL;

    case LT_LAYER_EMBEDDING:
        return be->embedding_forward != NULL
               && be->embedding_backward != NULL;

    default:
        /* Linear (gemm, add_bias, sum_rows), the first five activations,
         * Identity and Flatten: every backend has what they need */
        return 1;
    }
}
