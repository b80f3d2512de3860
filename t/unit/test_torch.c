/*
 * test_torch.c: losses, optimizers, learning rate schedules, gradient
 * clipping and whole train steps against PyTorch itself.
 *
 * fixtures/gen_torch.py ran torch (float32, CPU) on fixed data and wrote
 * what it computed; here the C core repeats each computation and must
 * agree to 1e-5 relative (1e-6 absolute near zero).  Regenerating the
 * fixtures needs torch; this test does not.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lt_backend.h"
#include "lt_model.h"
#include "lt_optim.h"
#include "tap.h"

typedef struct {
    const char     *name;
    lt_loss_kind    loss;
    lt_loss_spec    opt;        /* pos_weight comes from the array below */
    const float    *pos_weight;
    int             index;      /* y holds class indices */
    const float    *x, *y, *grad;
    float           value;
} loss_case;

typedef struct {
    const char     *name;
    lt_optim_spec   optim;
    int             state_n;
    const float    *p0, *grads, *p, *state;
} torch_optim_case;

typedef struct {
    const char        *name;
    float              lr;
    lt_schedule_spec   schedule;
    const float       *lrs;
} sched_case;

typedef struct {
    const char     *name;
    float           max_norm, norm;
    const float    *g0, *g;
} clip_case;

typedef struct {
    const char        *name;
    lt_loss_kind       loss;
    lt_loss_spec       loss_opt;
    int                y_index;
    int                logsoftmax;  /* the net ends with LogSoftmax */
    lt_optim_spec      optim;
    lt_schedule_spec   schedule;
    float              clip;
    int                in, hidden, out;
    const float       *p0, *x, *y, *losses, *p;
} train_case;

#include "fixtures/torch_fixtures.h"

#define NCASES(a)  ((int) (sizeof(a) / sizeof((a)[0])))
#define REL_TOL    1e-5
#define ABS_TOL    1e-6


/* One TAP line for a whole array; the worst element on failure. */
static int
is_close_all(const float *got, const float *want, size_t n, const char *name)
{
    double  err, worst, lim;
    size_t  i, at;
    int     good;

    worst = 0.0;
    at = 0;
    good = 1;

    for (i = 0; i < n; i++) {
        err = fabs((double) got[i] - want[i]);
        lim = REL_TOL * fabs(want[i]) + ABS_TOL;

        if (!(err <= lim)) {
            good = 0;
        }

        if (!(err / lim <= worst)) {
            worst = err / lim;
            at = i;
        }
    }

    if (!ok(good, name)) {
        diag("element %zu: got %.9g, expected %.9g", at, (double) got[at],
             (double) want[at]);
    }

    return good;
}


static void
run_loss_case(const loss_case *c)
{
    lt_model_spec  spec;
    int32_t        index[LOSS_ROWS];
    float          grad[LOSS_ROWS * LOSS_COLS], value;
    char           name[128];
    int            i;

    memset(&spec, 0, sizeof(spec));
    spec.loss = c->loss;
    spec.loss_opt = c->opt;
    memcpy(spec.loss_opt.pos_weight, c->pos_weight,
           (size_t) c->opt.npos_weight * sizeof(float));

    for (i = 0; i < LOSS_ROWS; i++) {
        index[i] = (int32_t) c->y[i];
    }

    value = lt_loss_apply(lt_backend_cpu(), &spec, c->x,
                          c->index ? index : NULL, c->index ? NULL : c->y,
                          grad, LOSS_ROWS, LOSS_COLS);

    snprintf(name, sizeof(name), "%s: loss value as torch", c->name);
    is_close_all(&value, &c->value, 1, name);
    snprintf(name, sizeof(name), "%s: gradient as torch", c->name);
    is_close_all(grad, c->grad, LOSS_ROWS * LOSS_COLS, name);
}


/* Steps alternate out of place and in place: the ops allow both. */
static void
run_optim_case(const torch_optim_case *c)
{
    const lt_optim_spec  *o;
    float                 a[OPTIM_N], b[OPTIM_N], state[3 * OPTIM_N];
    float                *in, *out, *t;
    char                  name[128];
    int                   s;

    o = &c->optim;
    memcpy(a, c->p0, sizeof(a));
    lt_optim_init_state(o, state, OPTIM_N);

    snprintf(name, sizeof(name), "%s: %d state floats, as torch keeps",
             c->name, c->state_n);
    ok((int) lt_optim_state_floats(o, OPTIM_N) == c->state_n, name);

    in = a;
    out = b;

    for (s = 0; s < OPTIM_STEPS; s++) {
        lt_optim_apply(lt_backend_cpu(), o, o->lr, in, s & 1 ? in : out,
                       c->grads + s * OPTIM_N, state, state, OPTIM_N, s + 1);
        if (!(s & 1)) {
            t = in;
            in = out;
            out = t;
        }
    }

    snprintf(name, sizeof(name), "%s: parameters after %d steps as torch",
             c->name, OPTIM_STEPS);
    is_close_all(in, c->p, OPTIM_N, name);

    if (c->state_n > 0) {
        snprintf(name, sizeof(name), "%s: optimizer state as torch",
                 c->name);
        is_close_all(state, c->state, (size_t) c->state_n, name);
    }
}


static void
run_sched_case(const sched_case *c)
{
    lt_model_spec  spec;
    lt_err         err;
    float          lrs[SCHED_STEPS];
    char           name[128];
    int            s;

    memset(&spec, 0, sizeof(spec));
    spec.optim.kind = LT_OPTIM_SGD;
    spec.optim.lr = c->lr;
    spec.schedule = c->schedule;

    snprintf(name, sizeof(name), "%s: the schedule is valid", c->name);
    if (!ok(lt_schedule_check(&spec.schedule, &err) == 0, name)) {
        diag("%s", err.msg);
    }

    for (s = 0; s < SCHED_STEPS; s++) {
        lrs[s] = (float) lt_schedule_lr(&spec, s + 1);
    }

    snprintf(name, sizeof(name), "%s: lr of %d steps as get_last_lr()",
             c->name, SCHED_STEPS);
    is_close_all(lrs, c->lrs, SCHED_STEPS, name);
}


static void
run_clip_case(const clip_case *c)
{
    float   g[CLIP_N], norm;
    double  total;
    lt_err  err;
    char    name[128];

    memcpy(g, c->g0, sizeof(g));

    snprintf(name, sizeof(name), "%s: clipping succeeds", c->name);
    ok(lt_grad_clip(lt_backend_cpu(), g, CLIP_N, c->max_norm, &total, &err)
       == 0, name);

    norm = (float) total;
    snprintf(name, sizeof(name), "%s: total norm as clip_grad_norm_",
             c->name);
    is_close_all(&norm, &c->norm, 1, name);
    snprintf(name, sizeof(name), "%s: clipped gradient as torch", c->name);
    is_close_all(g, c->g, CLIP_N, name);
}


static int
build_train_case(const train_case *c, lt_model *m)
{
    lt_model_spec  spec;
    lt_err         err;

    memset(&spec, 0, sizeof(spec));
    spec.nlayers = c->logsoftmax ? 4 : 3;
    spec.layers[0].kind = LT_LAYER_LINEAR;
    spec.layers[0].in = c->in;
    spec.layers[0].out = c->hidden;
    spec.layers[1].kind = LT_LAYER_TANH;
    spec.layers[2].kind = LT_LAYER_LINEAR;
    spec.layers[2].in = c->hidden;
    spec.layers[2].out = c->out;
    spec.layers[3].kind = LT_LAYER_LOGSOFTMAX;
    spec.loss = c->loss;
    spec.loss_opt = c->loss_opt;
    spec.optim = c->optim;
    spec.schedule = c->schedule;
    spec.clip_grad_norm = c->clip;

    if (lt_model_build(m, &spec, &err) != 0) {
        diag("%s: %s", c->name, err.msg);
        return -1;
    }

    return 0;
}


/* Steps from the fixture's parameters into two alternating buffers, as
 * nginx's double buffer does. */
static void
run_train_case(const train_case *c)
{
    float         *a, *b, *t, *state, losses[MODEL_STEPS];
    int64_t        xshape[2], yshape[2];
    lt_workspace  *ws;
    lt_tensor      x, y;
    lt_model       m;
    lt_err         err;
    char           name[128];
    int            s, rc;

    if (build_train_case(c, &m) != 0) {
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
    lt_model_init_state(&m, state);

    xshape[0] = MODEL_ROWS;
    xshape[1] = c->in;
    lt_tensor_view(&x, (float *) c->x, 2, xshape);
    yshape[0] = MODEL_ROWS;
    yshape[1] = c->out;
    lt_tensor_view(&y, (float *) c->y, c->y_index ? 1 : 2, yshape);

    rc = 0;
    for (s = 0; s < MODEL_STEPS && rc == 0; s++) {
        rc = lt_model_train_step_to(&m, ws, a, b, state, state, s + 1, &x,
                                    &y, &losses[s], &err);
        t = a;
        a = b;
        b = t;
    }

    snprintf(name, sizeof(name), "%s: %d train steps succeed", c->name,
             MODEL_STEPS);
    if (!ok(rc == 0, name)) {
        diag("%s", err.msg);
    }

    snprintf(name, sizeof(name), "%s: losses as torch", c->name);
    is_close_all(losses, c->losses, MODEL_STEPS, name);
    snprintf(name, sizeof(name), "%s: parameters as torch", c->name);
    is_close_all(a, c->p, m.param_count, name);

    lt_workspace_free(ws);
    free(a);
    free(b);
    free(state);
}


static void
mlp(lt_model_spec *s, lt_optim_kind kind)
{
    memset(s, 0, sizeof(*s));
    s->nlayers = 3;
    s->layers[0].kind = LT_LAYER_LINEAR;
    s->layers[0].in = 3;
    s->layers[0].out = 4;
    s->layers[1].kind = LT_LAYER_TANH;
    s->layers[2].kind = LT_LAYER_LINEAR;
    s->layers[2].in = 4;
    s->layers[2].out = 2;
    s->loss = LT_LOSS_MSE;
    s->optim.kind = kind;
    s->optim.lr = 0.01f;
    s->optim.beta1 = 0.9f;
    s->optim.beta2 = 0.999f;
    s->optim.alpha = 0.99f;
}


/* What the layout hash and the backend check tell apart. */
static void
check_layouts(void)
{
    lt_model_spec  s;
    lt_backend     be;
    lt_model       a, b;
    lt_err         err;
    uint64_t       h;

    mlp(&s, LT_OPTIM_ADAM);
    lt_model_build(&a, &s, &err);
    s.optim.amsgrad = 1;
    lt_model_build(&b, &s, &err);
    ok(b.state_count == 3 * b.param_count, "Adam amsgrad keeps 3P floats");
    ok(a.hash != b.hash, "amsgrad changes the layout hash");
    s.optim.kind = LT_OPTIM_ADAMW;
    lt_model_build(&a, &s, &err);
    ok(a.hash != b.hash, "AdamW and Adam (same state size) hash apart");

    mlp(&s, LT_OPTIM_RMSPROP);
    s.optim.momentum = 0.9f;
    lt_model_build(&a, &s, &err);
    s.optim.momentum = 0.0f;
    s.optim.centered = 1;
    lt_model_build(&b, &s, &err);
    ok(a.state_count == b.state_count && a.hash != b.hash,
       "RMSprop with momentum or centered: same size, other hash");

    /* hyper-parameters and schedules stay out of it */
    h = b.hash;
    s.optim.lr = 0.5f;
    s.schedule.nphases = 1;
    s.schedule.phases[0].kind = LT_SCHED_STEP;
    s.schedule.phases[0].step_size = 3;
    s.schedule.phases[0].gamma = 0.5;
    s.clip_grad_norm = 1.0f;
    lt_model_build(&b, &s, &err);
    ok(b.hash == h, "lr, schedule and clipping keep the layout hash");

    mlp(&s, LT_OPTIM_ADAGRAD);
    s.optim.initial_accumulator_value = 0.25f;
    lt_model_build(&a, &s, &err);
    {
        float  st[64];

        lt_model_init_state(&a, st);
        ok(a.state_count == a.param_count && st[0] == 0.25f
           && st[a.state_count - 1] == 0.25f,
           "Adagrad's sums start at initial_accumulator_value");
    }

    /* a backend without the extended ops refuses what needs them */
    be = *lt_backend_cpu();
    be.name = "test";
    be.adam_ex = NULL;
    be.loss_smooth_l1 = NULL;
    be.sum_squares = NULL;
    mlp(&s, LT_OPTIM_ADAMW);
    lt_model_build(&a, &s, &err);
    ok(lt_model_check_backend(&a, &be, &err) != 0
       && strstr(err.msg, "AdamW is not implemented on the test backend"),
       "a backend without adam_ex refuses AdamW, naming it");
    mlp(&s, LT_OPTIM_ADAM);
    lt_model_build(&a, &s, &err);
    ok(lt_model_check_backend(&a, &be, &err) == 0,
       "and still runs plain Adam");
    s.loss = LT_LOSS_HUBER;
    s.loss_opt.beta = 1.0f;
    lt_model_build(&a, &s, &err);
    ok(lt_model_check_backend(&a, &be, &err) != 0
       && strstr(err.msg, "HuberLoss"), "refuses HuberLoss, naming it");
    s.loss = LT_LOSS_MSE;
    s.clip_grad_norm = 1.0f;
    lt_model_build(&a, &s, &err);
    ok(lt_model_check_backend(&a, &be, &err) != 0
       && strstr(err.msg, "clip_grad_norm"), "refuses clip_grad_norm");
    ok(lt_model_check_backend(&a, lt_backend_cpu(), &err) == 0,
       "the CPU backend has every op");
}


/* Values torch would reject are refused by lt_model_build too. */
static void
check_refusals(void)
{
    lt_model_spec  s;
    lt_model       m;
    lt_err         err;
    float          g[3] = { 1.0f, INFINITY, 2.0f };
    double         norm;

    mlp(&s, LT_OPTIM_SGD);
    s.optim.nesterov = 1;
    ok(lt_model_build(&m, &s, &err) != 0
       && strstr(err.msg, "Nesterov momentum requires a momentum"),
       "nesterov without momentum is refused");

    mlp(&s, LT_OPTIM_SGD);
    s.schedule.nphases = 1;
    s.schedule.phases[0].kind = LT_SCHED_STEP;
    ok(lt_model_build(&m, &s, &err) != 0 && strstr(err.msg, "step_size"),
       "StepLR with step_size 0 is refused");

    s.schedule.nphases = 2;
    s.schedule.phases[0].step_size = 2;
    s.schedule.phases[1].kind = LT_SCHED_EXPONENTIAL;
    s.schedule.phases[1].gamma = 0.5;
    ok(lt_model_build(&m, &s, &err) != 0 && strstr(err.msg, "milestone"),
       "SequentialLR without its milestone is refused");

    mlp(&s, LT_OPTIM_SGD);
    s.clip_grad_norm = -1.0f;
    ok(lt_model_build(&m, &s, &err) != 0, "a negative max_norm is refused");

    mlp(&s, LT_OPTIM_SGD);
    s.loss = LT_LOSS_BCE_LOGITS;
    s.loss_opt.npos_weight = 3;
    ok(lt_model_build(&m, &s, &err) != 0 && strstr(err.msg, "pos_weight"),
       "pos_weight of another width than the outputs is refused");

    ok(lt_grad_clip(lt_backend_cpu(), g, 3, 1.0f, &norm, &err) != 0
       && err.code == LT_ENONFINITE && g[0] == 1.0f && g[2] == 2.0f,
       "a non-finite gradient norm refuses the step, gradient untouched");
}


int
main(void)
{
    int  i;

    check_layouts();
    check_refusals();

    for (i = 0; i < NCASES(loss_cases); i++) {
        run_loss_case(&loss_cases[i]);
    }

    for (i = 0; i < NCASES(optim_cases); i++) {
        run_optim_case(&optim_cases[i]);
    }

    for (i = 0; i < NCASES(sched_cases); i++) {
        run_sched_case(&sched_cases[i]);
    }

    for (i = 0; i < NCASES(clip_cases); i++) {
        run_clip_case(&clip_cases[i]);
    }

    for (i = 0; i < NCASES(train_cases); i++) {
        run_train_case(&train_cases[i]);
    }

    return done_testing();
}
