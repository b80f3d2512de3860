/*
 * test_optim.c: optimizers and whole train steps against numpy.
 *
 * fixtures/gen_optim.py computes, in float64 numpy and independently of
 * this code, what torch.optim.SGD / Adam do over given gradients and what
 * full train steps of small Linear-Tanh-Linear nets do (losses, final
 * parameters, optimizer state).  Here the C core repeats them in float32.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lt_backend.h"
#include "lt_model.h"
#include "tap.h"

typedef struct {
    const char     *name;
    lt_optim_spec   optim;
    int             state_n;
    const float    *p0, *grads, *p, *state;
} optim_case;

typedef struct {
    const char     *name;
    lt_loss_kind    loss;
    int             y_index;    /* y is [rows] class indices */
    lt_optim_spec   optim;
    int             in, hidden, out;
    const float    *p0, *x, *y, *losses, *p, *state;
} model_case;

#include "fixtures/optim_fixtures.h"

#define NCASES(a)  ((int) (sizeof(a) / sizeof((a)[0])))
#define TOL        2e-5


/* One TAP line for a whole array; the worst element on failure. */
static int
is_close_all(const float *got, const float *want, size_t n, double tol,
    const char *name)
{
    double  err, worst;
    size_t  i, at;

    worst = 0.0;
    at = 0;

    for (i = 0; i < n; i++) {
        err = fabs((double) got[i] - want[i]) / (fabs(want[i]) > 1.0
                                                 ? fabs(want[i]) : 1.0);
        if (!(err <= worst)) {
            worst = err;
            at = i;
        }
    }

    if (!ok(worst <= tol, name)) {
        diag("element %zu: got %.9g, expected %.9g", at, (double) got[at],
             (double) want[at]);
    }

    return worst <= tol;
}


/* The first step writes a separate output, the others update in place:
 * the backend allows both. */
static void
run_optim_case(const lt_backend *be, const optim_case *c)
{
    const lt_optim_spec  *o;
    float                 p[OPTIM_N], out[OPTIM_N], state[2 * OPTIM_N];
    float                *src;
    char                  name[128];
    int                   t;

    o = &c->optim;
    memcpy(p, c->p0, sizeof(p));
    memset(state, 0, sizeof(state));
    src = p;

    for (t = 0; t < OPTIM_STEPS; t++) {
        if (o->kind == LT_OPTIM_SGD) {
            be->sgd(be, src, out, c->grads + t * OPTIM_N,
                    c->state_n ? state : NULL, c->state_n ? state : NULL,
                    OPTIM_N, o->lr, o->momentum, o->weight_decay, t == 0);
        } else {
            be->adam(be, src, out, c->grads + t * OPTIM_N, state,
                     state + OPTIM_N, state, state + OPTIM_N, OPTIM_N,
                     o->lr, o->beta1, o->beta2, o->eps, o->weight_decay,
                     t + 1);
        }
        src = out;
    }

    snprintf(name, sizeof(name), "%s: parameters after %d steps", c->name,
             OPTIM_STEPS);
    is_close_all(out, c->p, OPTIM_N, TOL, name);

    if (c->state_n > 0) {
        snprintf(name, sizeof(name), "%s: optimizer state", c->name);
        is_close_all(state, c->state, (size_t) c->state_n, TOL, name);
    }
}


static int
build_case(const model_case *c, lt_model *m)
{
    lt_model_spec  spec;
    lt_err         err;

    memset(&spec, 0, sizeof(spec));
    spec.nlayers = 3;
    spec.layers[0].kind = LT_LAYER_LINEAR;
    spec.layers[0].in = c->in;
    spec.layers[0].out = c->hidden;
    spec.layers[1].kind = LT_LAYER_TANH;
    spec.layers[2].kind = LT_LAYER_LINEAR;
    spec.layers[2].in = c->hidden;
    spec.layers[2].out = c->out;
    spec.loss = c->loss;
    spec.optim = c->optim;

    if (lt_model_build(m, &spec, &err) != 0) {
        diag("%s: %s", c->name, err.msg);
        return -1;
    }

    return 0;
}


/*
 * MODEL_STEPS train steps from the fixture's parameters; in_place picks
 * params_out == params_in, otherwise two buffers alternate as nginx's
 * double buffer does.
 */
static void
run_model_case(const model_case *c, int in_place)
{
    float         *a, *b, *state, *t, losses[MODEL_STEPS];
    int64_t        xshape[2], yshape[2];
    lt_workspace  *ws;
    lt_tensor      x, y;
    lt_model       m;
    lt_err         err;
    char           name[128];
    int            s, rc;

    if (build_case(c, &m) != 0) {
        fail(c->name);
        return;
    }

    a = calloc(m.param_count, sizeof(float));
    b = calloc(m.param_count, sizeof(float));
    state = calloc(m.state_count + 1, sizeof(float));
    ws = lt_workspace_new(&m, lt_backend_cpu(), 1, &err);
    if (a == NULL || b == NULL || state == NULL || ws == NULL) {
        fail("allocation");
        return;
    }

    memcpy(a, c->p0, m.param_count * sizeof(float));

    xshape[0] = MODEL_ROWS;
    xshape[1] = c->in;
    lt_tensor_view(&x, (float *) c->x, 2, xshape);
    yshape[0] = MODEL_ROWS;
    yshape[1] = c->out;
    lt_tensor_view(&y, (float *) c->y, c->y_index ? 1 : 2, yshape);

    rc = 0;
    for (s = 0; s < MODEL_STEPS && rc == 0; s++) {
        rc = lt_model_train_step(&m, ws, a, in_place ? a : b, state, s + 1,
                                 &x, &y, &losses[s], &err);
        if (!in_place) {
            t = a;
            a = b;
            b = t;
        }
    }

    snprintf(name, sizeof(name), "%s (%s): %d train steps succeed", c->name,
             in_place ? "in place" : "double buffer", MODEL_STEPS);
    if (!ok(rc == 0, name)) {
        diag("%s", err.msg);
    }

    snprintf(name, sizeof(name), "%s (%s): losses", c->name,
             in_place ? "in place" : "double buffer");
    is_close_all(losses, c->losses, MODEL_STEPS, TOL, name);

    snprintf(name, sizeof(name), "%s (%s): parameters", c->name,
             in_place ? "in place" : "double buffer");
    is_close_all(a, c->p, m.param_count, TOL, name);

    if (m.state_count > 0) {
        snprintf(name, sizeof(name), "%s (%s): optimizer state", c->name,
                 in_place ? "in place" : "double buffer");
        is_close_all(state, c->state, m.state_count, TOL, name);
    }

    lt_workspace_free(ws);
    free(a);
    free(b);
    free(state);
}


int
main(void)
{
    int  i;

    for (i = 0; i < NCASES(optim_cases); i++) {
        run_optim_case(lt_backend_cpu(), &optim_cases[i]);
    }

    for (i = 0; i < NCASES(model_cases); i++) {
        run_model_case(&model_cases[i], 1);
        run_model_case(&model_cases[i], 0);
    }

    return done_testing();
}
