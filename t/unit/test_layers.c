/*
 * test_layers.c: every layer against PyTorch itself.
 *
 * fixtures/layer_fixtures.h (made by fixtures/gen_layers.py with torch)
 * holds, per case, one torch.nn layer's input, upstream gradient dy,
 * train-mode output and input gradient, eval-mode output, and each
 * state-dict entry's value, gradient and value after the train-mode
 * pass.  Here the same layer is built from an lt_layer_spec, given those
 * values by name, and run forward and backward on the CPU backend; every
 * number must agree to 1e-5 relative (with a 1e-5 floor scaled by the
 * largest magnitude of the reference, for sums that cancel).
 *
 * Dropout has no PyTorch fixture (its masks come from another
 * generator); its tests check the semantics PyTorch documents.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_backend.h"
#include "lt_layer.h"
#include "lt_model.h"
#include "lt_workspace.h"
#include "tap.h"

#define RTOL  1e-5
#define ATOL  1e-5

typedef struct {
    const char   *name;
    int           numel;
    const float  *value;
    const float  *grad;
    const float  *after;
} fx_entry;

typedef struct {
    const char      *name;
    int              ndim;
    int              shape[4];
    const float     *x;
    const float     *dy;
    const float     *y;
    const float     *y_eval;
    const float     *dx;
    int              ny;
    int              nentries;
    const fx_entry  *entries;
} fx_case;

#include "fixtures/layer_fixtures.h"


/* The spec of each case, as gen_layers.py makes its torch layer. */
static int
case_spec(const char *name, lt_layer_spec *l)
{
    memset(l, 0, sizeof(*l));

#define IS(s)  (strcmp(name, s) == 0)
#define WIN(k0, k1, s0, s1, p0, p1, d0, d1)                                  \
    do {                                                                     \
        l->kernel[0] = k0; l->kernel[1] = k1;                                \
        l->stride[0] = s0; l->stride[1] = s1;                                \
        l->padding[0] = p0; l->padding[1] = p1;                              \
        l->dilation[0] = d0; l->dilation[1] = d1;                            \
    } while (0)

    if (IS("linear_nobias")) {
        l->kind = LT_LAYER_LINEAR; l->in = 5; l->out = 3; l->no_bias = 1;
    } else if (IS("linear")) {
        l->kind = LT_LAYER_LINEAR; l->in = 6; l->out = 4;
    } else if (IS("gelu")) {
        l->kind = LT_LAYER_GELU;
    } else if (IS("gelu_tanh")) {
        l->kind = LT_LAYER_GELU; l->approximate = 1;
    } else if (IS("leaky_relu")) {
        l->kind = LT_LAYER_LEAKY_RELU; l->a = 0.1f;
    } else if (IS("elu")) {
        l->kind = LT_LAYER_ELU; l->a = 0.7f;
    } else if (IS("silu")) {
        l->kind = LT_LAYER_SILU;
    } else if (IS("softplus")) {
        l->kind = LT_LAYER_SOFTPLUS; l->a = 2.0f; l->b = 1.5f;
    } else if (IS("conv2d")) {
        l->kind = LT_LAYER_CONV2D; l->in = 3; l->out = 4;
        WIN(3, 3, 2, 2, 1, 1, 1, 1);
    } else if (IS("conv2d_groups")) {
        l->kind = LT_LAYER_CONV2D; l->in = 4; l->out = 6; l->groups = 2;
        WIN(3, 2, 1, 1, 2, 0, 2, 1);
    } else if (IS("conv2d_1x1")) {
        l->kind = LT_LAYER_CONV2D; l->in = 3; l->out = 5; l->no_bias = 1;
        WIN(1, 1, 1, 1, 0, 0, 1, 1);
    } else if (IS("conv1d")) {
        l->kind = LT_LAYER_CONV1D; l->in = 3; l->out = 4;
        WIN(1, 3, 1, 2, 0, 2, 1, 2);
    } else if (IS("maxpool2d")) {
        l->kind = LT_LAYER_MAXPOOL2D;
        WIN(3, 3, 2, 2, 1, 1, 1, 1);
    } else if (IS("maxpool2d_2x2")) {
        l->kind = LT_LAYER_MAXPOOL2D;
        WIN(2, 2, 0, 0, 0, 0, 1, 1);
    } else if (IS("maxpool2d_dil")) {
        l->kind = LT_LAYER_MAXPOOL2D;
        WIN(2, 2, 1, 1, 0, 0, 2, 2);
    } else if (IS("maxpool1d")) {
        l->kind = LT_LAYER_MAXPOOL1D;
        WIN(1, 3, 1, 2, 0, 0, 1, 1);
    } else if (IS("avgpool2d")) {
        l->kind = LT_LAYER_AVGPOOL2D;
        WIN(3, 3, 2, 2, 1, 1, 1, 1);
    } else if (IS("avgpool2d_excl")) {
        l->kind = LT_LAYER_AVGPOOL2D; l->exclude_pad = 1;
        WIN(3, 3, 2, 2, 1, 1, 1, 1);
    } else if (IS("avgpool1d")) {
        l->kind = LT_LAYER_AVGPOOL1D;
        WIN(1, 4, 1, 3, 0, 2, 1, 1);
    } else if (IS("adaptive")) {
        l->kind = LT_LAYER_ADAPTIVE_AVGPOOL2D; l->dim[0] = 3; l->dim[1] = 2;
    } else if (IS("bn1d")) {
        l->kind = LT_LAYER_BATCHNORM1D; l->in = 5; l->a = 1e-5f;
        l->b = 0.2f;
    } else if (IS("bn1d_3d")) {
        l->kind = LT_LAYER_BATCHNORM1D; l->in = 3; l->a = 1e-5f;
        l->b = 0.1f;
    } else if (IS("bn2d")) {
        l->kind = LT_LAYER_BATCHNORM2D; l->in = 3; l->a = 1e-3f;
        l->b = 0.1f;
    } else if (IS("bn2d_noaffine")) {
        l->kind = LT_LAYER_BATCHNORM2D; l->in = 3; l->a = 1e-5f;
        l->b = 0.1f; l->no_bias = 1;
    } else if (IS("layernorm")) {
        l->kind = LT_LAYER_LAYERNORM; l->a = 1e-5f;
        l->norm.ndim = 1; l->norm.d[0] = 6;
    } else if (IS("layernorm_2d")) {
        l->kind = LT_LAYER_LAYERNORM; l->a = 1e-4f;
        l->norm.ndim = 2; l->norm.d[0] = 3; l->norm.d[1] = 4;
    } else if (IS("embedding")) {
        l->kind = LT_LAYER_EMBEDDING; l->in = 10; l->out = 4;
        l->padding_idx = 1 + 1;
    } else {
        return -1;
    }

#undef WIN
#undef IS

    return 0;
}


/* All of got[0..n) against want; one TAP line, the worst in diagnostics. */
static void
check_close(const char *what, const char *name, const float *got,
    const float *want, int n)
{
    double  scale, err, worst, tol;
    char    title[128];
    int     i, bad;

    scale = 0.0;
    for (i = 0; i < n; i++) {
        scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
    }

    worst = 0.0;
    bad = -1;

    for (i = 0; i < n; i++) {
        err = fabs((double) got[i] - want[i]);
        tol = RTOL * fabs(want[i]) + ATOL * (scale > 1.0 ? scale : 1.0);

        if (!(err <= tol) && (bad < 0 || err > worst)) {
            worst = err;
            bad = i;
        }
    }

    snprintf(title, sizeof(title), "%s: %s matches PyTorch", name, what);
    ok(bad < 0, title);

    if (bad >= 0) {
        diag("element %d: got %.9g, PyTorch %.9g", bad, (double) got[bad],
             (double) want[bad]);
    }
}


static void
run_case(const fx_case *c)
{
    const lt_param_info  *pi;
    lt_model_spec         s;
    lt_workspace         *ws;
    lt_layer_run          r;
    lt_model              m;
    lt_err                err;
    float                *block, *after, *grad, *dx;
    size_t                total;
    int                   i, j;

    memset(&s, 0, sizeof(s));

    if (case_spec(c->name, &s.layers[0]) != 0) {
        fail(c->name);
        diag("no spec for case %s", c->name);
        return;
    }

    s.nlayers = 1;
    s.input.ndim = c->ndim - 1;
    for (i = 1; i < c->ndim; i++) {
        s.input.d[i - 1] = c->shape[i];
    }

    /* a layer without parameters to train gets a Linear after it, so the
     * model builds */
    for (i = 0, j = 0; c->entries[0].name != NULL && i < c->nentries; i++) {
        j += c->entries[i].grad != NULL;
    }

    if (j == 0) {
        s.layers[1].kind = LT_LAYER_FLATTEN;
        s.layers[2].kind = LT_LAYER_LINEAR;
        s.layers[2].in = c->ny / c->shape[0];
        s.layers[2].out = 1;
        s.nlayers = 3;
    }

    s.loss = LT_LOSS_MSE;
    s.optim.lr = 0.1f;

    if (lt_model_build(&m, &s, &err) != 0) {
        fail(c->name);
        diag("%s: %s", c->name, err.msg);
        return;
    }

    ws = lt_workspace_new(&m, lt_backend_cpu(), c->shape[0], &err);
    total = lt_model_values(&m) + m.state_count;
    block = calloc(total + 1, sizeof(float));
    after = calloc(total + 1, sizeof(float));
    grad = calloc(m.param_count + 1, sizeof(float));
    dx = calloc((size_t) c->shape[0] * m.in_dim + 1, sizeof(float));

    if (ws == NULL || block == NULL || after == NULL || grad == NULL
        || dx == NULL)
    {
        fail(c->name);
        goto done;
    }

    lt_model_init_params(&m, block, 7);

    /* the entries by name, with the count of entries checked both ways */
    for (i = 0; c->entries[0].name != NULL && i < c->nentries; i++) {
        pi = lt_model_find_param(&m, c->entries[i].name);

        if (pi == NULL || (int) pi->numel != c->entries[i].numel) {
            fail(c->name);
            diag("%s: entry %s is not the model's", c->name,
                 c->entries[i].name);
            goto done;
        }

        for (j = 0; j < c->entries[i].numel; j++) {
            if (pi->dtype == LT_DTYPE_I64) {
                lt_i64_set(block + pi->offset + 2 * j,
                           (int64_t) c->entries[i].value[j]);
            } else {
                block[pi->offset + j] = c->entries[i].value[j];
            }
        }
    }

    is_int(m.layer[0].nparam, c->entries[0].name ? c->nentries : 0,
           "the layer has PyTorch's state-dict entries");

    memcpy(after, block, total * sizeof(float));

    memset(&r, 0, sizeof(r));
    r.m = &m;
    r.be = lt_backend_cpu();
    r.l = &m.spec.layers[0];
    r.li = &m.layer[0];
    r.p = m.params + m.layer[0].param;
    r.n = c->shape[0];
    r.train = 1;
    r.params = block;
    r.x = c->x;
    r.y = ws->act[0];
    r.scratch = ws->scratch[0];
    r.dy = c->dy;
    r.dx = c->dx ? dx : NULL;
    r.grad = grad;

    is_int(m.widths[0] * c->shape[0], c->ny, "the output has torch's size");

    lt_layer_forward(&r);
    check_close("train forward", c->name, r.y, c->y, c->ny);

    lt_layer_backward(&r);

    if (c->dx != NULL) {
        check_close("input gradient", c->name, dx, c->dx,
                    c->shape[0] * m.in_dim);
    }

    lt_layer_norm_update(&r, after);

    for (i = 0; c->entries[0].name != NULL && i < c->nentries; i++) {
        char  what[96];

        pi = lt_model_find_param(&m, c->entries[i].name);

        if (c->entries[i].grad != NULL) {
            snprintf(what, sizeof(what), "gradient of %s",
                     c->entries[i].name);
            check_close(what, c->name, grad + pi->offset,
                        c->entries[i].grad, c->entries[i].numel);
        }

        if (pi->buffer && pi->dtype == LT_DTYPE_I64) {
            snprintf(what, sizeof(what), "%s: %s after the train pass",
                     c->name, c->entries[i].name);
            is_int(lt_i64_get(after + pi->offset),
                   (long long) c->entries[i].after[0], what);

        } else if (pi->buffer) {
            snprintf(what, sizeof(what), "%s after the train pass",
                     c->entries[i].name);
            check_close(what, c->name, after + pi->offset,
                        c->entries[i].after, c->entries[i].numel);
        }
    }

    r.train = 0;
    lt_layer_forward(&r);
    check_close("eval forward", c->name, r.y, c->y_eval, c->ny);

done:
    lt_workspace_free(ws);
    free(block);
    free(after);
    free(grad);
    free(dx);
}


/* -- Dropout: PyTorch's semantics, not its random numbers -------------- */

static void
test_dropout(void)
{
    lt_model_spec  s;
    lt_model       m;
    lt_err         err;
    lt_workspace  *ws;
    lt_layer_run   r;
    float          x[4000], dx[4000], dy[4000], first[4000];
    int            i, zeros, scaled, same;

    memset(&s, 0, sizeof(s));
    s.layers[0].kind = LT_LAYER_DROPOUT;
    s.layers[0].a = 0.25f;
    s.layers[1].kind = LT_LAYER_LINEAR;
    s.layers[1].in = 1000;
    s.layers[1].out = 1;
    s.nlayers = 2;
    s.input.ndim = 1;
    s.input.d[0] = 1000;
    s.optim.lr = 0.1f;

    ok(lt_model_build(&m, &s, &err) == 0, "Dropout(0.25) builds");
    ws = lt_workspace_new(&m, lt_backend_cpu(), 4, &err);

    for (i = 0; i < 4000; i++) {
        x[i] = 1.0f + (float) (i % 7);
        dy[i] = 0.5f;
    }

    memset(&r, 0, sizeof(r));
    r.m = &m;
    r.be = lt_backend_cpu();
    r.l = &m.spec.layers[0];
    r.li = &m.layer[0];
    r.p = m.params;
    r.n = 4;
    r.train = 1;
    r.seed = 12345;
    r.x = x;
    r.y = ws->act[0];
    r.scratch = ws->scratch[0];
    r.dy = dy;
    r.dx = dx;

    lt_layer_forward(&r);

    zeros = 0;
    scaled = 0;
    for (i = 0; i < 4000; i++) {
        zeros += r.y[i] == 0.0f;
        scaled += fabsf(r.y[i] - x[i] / 0.75f) < 1e-6f * x[i];
    }

    ok(zeros + scaled == 4000, "train: each value is dropped or scaled by "
       "1/(1-p)");
    ok(zeros > 900 && zeros < 1100, "train: about p of them are dropped");
    diag("%d of 4000 dropped", zeros);

    lt_layer_backward(&r);
    for (i = 0, same = 1; i < 4000; i++) {
        same = same && dx[i] == (r.y[i] == 0.0f ? 0.0f : 0.5f / 0.75f);
    }
    ok(same, "backward: the gradient goes through the kept ones, scaled");

    memcpy(first, r.y, sizeof(first));
    lt_layer_forward(&r);
    ok(memcmp(first, r.y, sizeof(first)) == 0,
       "the same seed draws the same mask");

    r.seed = 12346;
    lt_layer_forward(&r);
    ok(memcmp(first, r.y, sizeof(first)) != 0,
       "another step's seed draws another mask");

    r.train = 0;
    lt_layer_forward(&r);
    ok(memcmp(x, r.y, sizeof(x)) == 0, "eval: the identity");

    lt_workspace_free(ws);
}


/* Flatten and Identity: shapes and a plain copy. */
static void
test_flatten(void)
{
    lt_model_spec  s;
    lt_model       m;
    lt_err         err;

    memset(&s, 0, sizeof(s));
    s.layers[0].kind = LT_LAYER_FLATTEN;
    s.layers[1].kind = LT_LAYER_IDENTITY;
    s.layers[2].kind = LT_LAYER_LINEAR;
    s.layers[2].in = 60;
    s.layers[2].out = 2;
    s.nlayers = 3;
    s.input.ndim = 3;
    s.input.d[0] = 3;
    s.input.d[1] = 4;
    s.input.d[2] = 5;
    s.optim.lr = 0.1f;

    ok(lt_model_build(&m, &s, &err) == 0, "Flatten() of [3, 4, 5] feeds "
       "Linear(60, 2)");
    is_int(m.layer[0].out.ndim, 1, "Flatten gives one dim");

    s.layers[0].dim[0] = 2;
    s.layers[0].dim[1] = -1;
    s.layers[2].in = 20;
    ok(lt_model_build(&m, &s, &err) == 0, "Flatten(2) of [3, 4, 5] gives "
       "[3, 20]");
    is_int((int) m.layer[0].out.d[1], 20, "its last dim is 20");

    s.layers[0].dim[0] = 0;
    s.layers[0].dim[1] = 1;
    ok(lt_model_build(&m, &s, &err) != 0, "Flatten(0, 1) would fold N in");
    like(err.msg, "batch dimension", "and says so");
}


int
main(void)
{
    size_t  i;

    for (i = 0; i < sizeof(fx_cases) / sizeof(fx_cases[0]); i++) {
        run_case(&fx_cases[i]);
    }

    test_dropout();
    test_flatten();

    return done_testing();
}
