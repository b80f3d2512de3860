/*
 * test_cuda_optim.c: the CUDA backend's losses beyond MSE / BCE / CE,
 * its optimizers beyond SGD / Adam and clip_grad_norm's two ops, against
 * the CPU backend: each op on random inputs on both, then whole train
 * steps of small MLPs with each new loss, optimizer, clipping and a
 * schedule.  Without a CUDA device it says "1..0 # SKIP no CUDA device".
 *
 * Built with -DLT_CUDA_TEST_FAKE (make unit-cuda-harness) the "GPU" is
 * the CPU backend with these ops recomputed in double
 * (cuda_fake_optim.h): that checks the test and its tolerances, not CUDA.
 * The helpers and the tolerances are in cuda_test.h.
 */
#include <float.h>

#include "cuda_test.h"


/* -- losses ---------------------------------------------------------------- */

enum {
    K_L1 = 0,
    K_SMOOTH_L1,                /* beta 1 */
    K_SMOOTH_L1_HALF,           /* beta 0.5 */
    K_HUBER,                    /* delta 1.5 */
    K_BCE_LOGITS,
    K_BCE_LOGITS_PW1,           /* one pos_weight */
    K_BCE_LOGITS_PWC,           /* one per column */
    K_NLL,
    K_CE_SMOOTH_INDEX,          /* label_smoothing 0.1 */
    K_CE_SMOOTH_ROWS,           /* label_smoothing 0.3 */
    K_NKINDS
};

static const char  *loss_names[] = {
    "L1", "SmoothL1 beta 1", "SmoothL1 beta 0.5", "Huber delta 1.5",
    "BCEWithLogits", "BCEWithLogits pos_weight", "BCEWithLogits "
    "pos_weight per column", "NLL", "CE smoothing 0.1 (indices)",
    "CE smoothing 0.3 (rows)"
};


/* One loss on both backends; the targets and inputs suit the kind. */
static void
check_loss(int kind, int rows, int cols)
{
    float    *p, *t, *pw, *gc, *gg, *d_p, *d_t, *d_g, lc, lg;
    int32_t  *idx, *d_idx;
    size_t    n, i;
    char      name[160];
    int       npw;

    n = (size_t) rows * cols;
    npw = kind == K_BCE_LOGITS_PW1 ? 1 : kind == K_BCE_LOGITS_PWC ? cols : 0;

    p = host_rand(n, -4, 4);
    t = host_rand(n, -1, 1);
    pw = host_rand((size_t) (npw ? npw : 1), 0.5f, 3.0f);
    idx = malloc((size_t) rows * sizeof(int32_t));
    for (i = 0; i < (size_t) rows; i++) {
        idx[i] = (int32_t) ((i * 7 + 3) % (size_t) cols);
    }

    if (kind <= K_HUBER) {
        /* d = 0 exactly (sign(0) = 0), and |d| on both sides of beta */
        for (i = 0; i < n; i += 17) {
            t[i] = p[i];
        }

    } else if (kind <= K_BCE_LOGITS_PWC) {
        /* soft targets; logits far out where softplus must not
         * overflow */
        for (i = 0; i < n; i++) {
            t[i] = fabsf(t[i]);
            p[i] *= 2.0f;
        }
        if (n >= 4) {
            p[0] = 100.0f;
            p[1] = -100.0f;
            p[2] = 30.0f;
            p[3] = -30.0f;
        }

    } else if (kind == K_NLL) {
        /* log-probabilities, as a LogSoftmax layer gives them */
        CPU->act_forward(CPU, LT_ACT_LOGSOFTMAX, p, p, rows, cols);

    } else if (kind == K_CE_SMOOTH_ROWS) {
        for (i = 0; i < n; i++) {
            t[i] = fabsf(t[i]);
        }
    }

    gc = malloc(n * sizeof(float));
    d_p = dev_floats(p, n);
    d_t = dev_floats(t, n);
    d_g = dev_floats(NULL, n);
    d_idx = dev_bytes(idx, (size_t) rows * sizeof(int32_t));

    switch (kind) {
    case K_L1:
        lc = CPU->loss_smooth_l1(CPU, p, t, gc, rows, cols, 0.0f, 1.0f);
        lg = GPU->loss_smooth_l1(GPU, d_p, d_t, d_g, rows, cols, 0.0f, 1.0f);
        break;
    case K_SMOOTH_L1:
        lc = CPU->loss_smooth_l1(CPU, p, t, gc, rows, cols, 1.0f, 1.0f);
        lg = GPU->loss_smooth_l1(GPU, d_p, d_t, d_g, rows, cols, 1.0f, 1.0f);
        break;
    case K_SMOOTH_L1_HALF:
        lc = CPU->loss_smooth_l1(CPU, p, t, gc, rows, cols, 0.5f, 1.0f);
        lg = GPU->loss_smooth_l1(GPU, d_p, d_t, d_g, rows, cols, 0.5f, 1.0f);
        break;
    case K_HUBER:
        lc = CPU->loss_smooth_l1(CPU, p, t, gc, rows, cols, 1.5f, 1.5f);
        lg = GPU->loss_smooth_l1(GPU, d_p, d_t, d_g, rows, cols, 1.5f, 1.5f);
        break;
    case K_NLL:
        lc = CPU->loss_nll(CPU, p, idx, gc, rows, cols);
        lg = GPU->loss_nll(GPU, d_p, d_idx, d_g, rows, cols);
        break;
    case K_CE_SMOOTH_INDEX:
        lc = CPU->loss_ce_smooth(CPU, p, idx, NULL, 0.1f, gc, rows, cols);
        lg = GPU->loss_ce_smooth(GPU, d_p, d_idx, NULL, 0.1f, d_g, rows,
                                 cols);
        break;
    case K_CE_SMOOTH_ROWS:
        lc = CPU->loss_ce_smooth(CPU, p, NULL, t, 0.3f, gc, rows, cols);
        lg = GPU->loss_ce_smooth(GPU, d_p, NULL, d_t, 0.3f, d_g, rows, cols);
        break;
    default:
        /* pos_weight is host memory, as the model passes it */
        lc = CPU->loss_bce_logits(CPU, p, t, pw, npw, gc, rows, cols);
        lg = GPU->loss_bce_logits(GPU, d_p, d_t, pw, npw, d_g, rows, cols);
        break;
    }

    gg = fetch(d_g, n);

    snprintf(name, sizeof(name), "%s loss %dx%d", loss_names[kind], rows,
             cols);
    agree_float(name, lg, lc, TOL);
    strcat(name, ": gradient");
    agree(name, gg, gc, n, TOL, 1e-2 * max_abs(gc, n));

    free(p);
    free(t);
    free(pw);
    free(idx);
    free(gc);
    free(gg);
    GPU->free(GPU, d_p);
    GPU->free(GPU, d_t);
    GPU->free(GPU, d_g);
    GPU->free(GPU, d_idx);
}


static void
test_loss_ex(void)
{
    size_t  s;
    int     kind;

    for (s = 0; s < NSHAPES; s++) {
        for (kind = 0; kind < K_NKINDS; kind++) {
            if (kind == K_BCE_LOGITS_PWC && row_shapes[s][1] > LT_MAX_POS_WEIGHT)
            {
                continue;
            }
            check_loss(kind, row_shapes[s][0], row_shapes[s][1]);
        }
    }
}


/* What the GPU does with inputs the model code never passes: a NaN loss
 * or a recorded failure, never a write out of bounds.  (The CPU backend
 * trusts its caller here, so there is nothing to compare with, and the
 * harness has no such check to run.) */
static void
test_loss_refusals(void)
{
#ifndef LT_CUDA_TEST_FAKE
    float    p[6] = { -1.0f, -2.0f, -0.5f, -3.0f, -0.1f, -4.0f };
    float    w[LT_MAX_POS_WEIGHT + 1];
    float   *d_p, *d_g, *g, l;
    int32_t  bad[2] = { 1, 3 };
    int32_t *d_idx;
    lt_err   err;
    int      i;

    d_p = dev_floats(p, 6);
    d_g = dev_floats(NULL, 6);
    d_idx = dev_bytes(bad, sizeof(bad));

    l = GPU->loss_nll(GPU, d_p, d_idx, d_g, 2, 3);
    g = fetch(d_g, 6);
    ok(isnan(l) && g[1] == -0.5f && g[0] == 0.0f && g[3] == 0.0f
       && g[4] == 0.0f && g[5] == 0.0f,
       "NLL: a class index out of range makes the loss NaN");
    free(g);

    l = GPU->loss_ce_smooth(GPU, d_p, d_idx, NULL, 0.1f, d_g, 2, 3);
    ok(isnan(l), "CE with smoothing: a class index out of range gives NaN");
    ok(gpu_status(GPU, &err) == 0, "... and no failure (the model's check"
       " comes first)");

    for (i = 0; i <= LT_MAX_POS_WEIGHT; i++) {
        w[i] = 1.0f;
    }
    l = GPU->loss_bce_logits(GPU, d_p, d_p, w, 2, d_g, 2, 3);
    err.msg[0] = '\0';
    ok(isnan(l) && gpu_status(GPU, &err) == -1,
       "BCEWithLogits: pos_weight neither 1 nor one per column is refused");
    like(err.msg, "pos_weight", "... naming pos_weight");

    GPU->free(GPU, d_p);
    GPU->free(GPU, d_g);
    GPU->free(GPU, d_idx);
#endif
}


/* -- clipping -------------------------------------------------------------- */

/* Both sum in double; the CPU's sequential sum is within n * 2^-53 of
 * the truth, the GPU's tree closer. */
static void
check_sum_squares(const char *name, const float *h, size_t n)
{
    double  want, got, lim;
    float  *d;

    d = dev_floats(h, n);
    want = CPU->sum_squares(CPU, h, n);
    got = GPU->sum_squares(GPU, d, n);
    lim = 2.0 * ((double) n + 1) * 1.2e-16 * fabs(want);

    if (!ok((isnan(want) && isnan(got)) || got == want
            || fabs(got - want) <= lim, name))
    {
        diag("got %.17g, want %.17g", got, want);
    }

    GPU->free(GPU, d);
}


static void
test_clip(void)
{
    static const size_t  sizes[] = { 1, 7, 1000, 262145, 300007, 3000017 };
    float   *h, *d, *got, *want;
    double   hn, dn;
    lt_err   err;
    size_t   s, n;
    char     name[128];
    int      hrc, drc;

    for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        n = sizes[s];
        h = host_rand(n, -1, 1);
        snprintf(name, sizeof(name), "sum_squares of %zu floats", n);
        check_sum_squares(name, h, n);
        free(h);
    }

    ok(GPU->sum_squares(GPU, NULL, 0) == 0.0, "sum_squares of nothing is 0");

    h = host_rand(1000, -1, 1);
    h[500] = INFINITY;
    check_sum_squares("sum_squares with an infinity is infinite", h, 1000);
    h[700] = NAN;
    check_sum_squares("sum_squares with a NaN is NaN", h, 1000);
    free(h);

    /* scale, then the whole clip through lt_grad_clip */
    n = 300007;
    h = host_rand(n, -1, 1);
    d = dev_floats(h, n);
    CPU->scale(CPU, h, n, 0.37f);
    GPU->scale(GPU, d, n, 0.37f);
    got = fetch(d, n);
    agree("scale by 0.37", got, h, n, TOL, 1.0);
    free(got);

    want = host_copy(h, n);
    GPU->to_device(GPU, d, h, n * sizeof(float));
    hrc = lt_grad_clip(CPU, want, n, 1.0f, &hn, &err);
    drc = lt_grad_clip(GPU, d, n, 1.0f, &dn, &err);
    ok(hrc == 0 && drc == 0 && fabs(dn - hn) <= 1e-9 * hn,
       "clip_grad_norm: the same total norm");
    got = fetch(d, n);
    agree("clip_grad_norm 1.0: the clipped gradient", got, want, n, TOL,
          1e-2 * max_abs(want, n));
    ok(sqrt(CPU->sum_squares(CPU, got, n)) < 1.0 + 1e-4,
       "... whose norm is max_norm");
    free(got);

    /* a norm below max_norm leaves every bit */
    GPU->to_device(GPU, d, h, n * sizeof(float));
    drc = lt_grad_clip(GPU, d, n, 1e6f, &dn, &err);
    got = fetch(d, n);
    ok(drc == 0 && memcmp(got, h, n * sizeof(float)) == 0,
       "clip_grad_norm above the norm changes nothing");
    free(got);

    h[12345] = NAN;
    GPU->to_device(GPU, d, h, n * sizeof(float));
    drc = lt_grad_clip(GPU, d, n, 1.0f, &dn, &err);
    got = fetch(d, n);
    ok(drc == -1 && err.code == LT_ENONFINITE
       && memcmp(got, h, n * sizeof(float)) == 0,
       "a NaN gradient is refused and left as it was");
    free(got);

    free(h);
    free(want);
    GPU->free(GPU, d);
}


/* -- optimizers ------------------------------------------------------------ */

typedef struct {
    const char     *name;
    lt_optim_spec   o;
} optim_case;


static void
optim_cases(optim_case *c, int *count)
{
    int  i;

    memset(c, 0, 12 * sizeof(*c));
    for (i = 0; i < 12; i++) {
        c[i].o.lr = 0.01f;
        c[i].o.beta1 = 0.9f;
        c[i].o.beta2 = 0.999f;
        c[i].o.eps = 1e-8f;
        c[i].o.alpha = 0.99f;
    }

    i = 0;
    c[i].name = "SGD momentum 0.9, dampening 0.1, weight decay";
    c[i].o.kind = LT_OPTIM_SGD;
    c[i].o.momentum = 0.9f;
    c[i].o.dampening = 0.1f;
    c[i++].o.weight_decay = 1e-3f;

    c[i].name = "SGD Nesterov 0.9";
    c[i].o.kind = LT_OPTIM_SGD;
    c[i].o.momentum = 0.9f;
    c[i++].o.nesterov = 1;

    c[i].name = "Adam amsgrad, weight decay";
    c[i].o.kind = LT_OPTIM_ADAM;
    c[i].o.amsgrad = 1;
    c[i++].o.weight_decay = 0.01f;

    c[i].name = "AdamW 0.01";
    c[i].o.kind = LT_OPTIM_ADAMW;
    c[i++].o.weight_decay = 0.01f;

    c[i].name = "AdamW amsgrad";
    c[i].o.kind = LT_OPTIM_ADAMW;
    c[i].o.amsgrad = 1;
    c[i++].o.weight_decay = 0.1f;

    c[i].name = "RMSprop";
    c[i++].o.kind = LT_OPTIM_RMSPROP;

    c[i].name = "RMSprop momentum 0.9, weight decay";
    c[i].o.kind = LT_OPTIM_RMSPROP;
    c[i].o.momentum = 0.9f;
    c[i++].o.weight_decay = 1e-3f;

    c[i].name = "RMSprop centered";
    c[i].o.kind = LT_OPTIM_RMSPROP;
    c[i++].o.centered = 1;

    c[i].name = "RMSprop centered, momentum 0.5, alpha 0.9";
    c[i].o.kind = LT_OPTIM_RMSPROP;
    c[i].o.centered = 1;
    c[i].o.alpha = 0.9f;
    c[i++].o.momentum = 0.5f;

    c[i].name = "Adagrad";
    c[i].o.kind = LT_OPTIM_ADAGRAD;
    c[i++].o.eps = 1e-10f;

    c[i].name = "Adagrad lr_decay 0.05, weight decay, accumulator 0.1";
    c[i].o.kind = LT_OPTIM_ADAGRAD;
    c[i].o.eps = 1e-10f;
    c[i].o.lr_decay = 0.05f;
    c[i].o.weight_decay = 1e-3f;
    c[i++].o.initial_accumulator_value = 0.1f;

    *count = i;
}


/* The parameters' change since p0 (where a wrong update shows, not
 * hidden under parameters of magnitude 1). */
static float *
change(const float *p, const float *p0, size_t n)
{
    float   *d;
    size_t   i;

    d = malloc(n * sizeof(float));
    for (i = 0; i < n; i++) {
        d[i] = (float) ((double) p[i] - p0[i]);
    }

    return d;
}


/*
 * 6 steps on both backends through lt_optim_apply (the model's own
 * dispatch), a new gradient each step: the first out of place, which
 * must leave the GPU's inputs as they were, the rest in place.
 */
static void
check_optim(const optim_case *oc)
{
    const lt_optim_spec  *o;
    lt_err                err;
    float                *p0, *p, *p1, *s0, *s, *s1, *g, *got, *want, *dg;
    float                *d_p, *d_p1, *d_s, *d_s1, *d_g;
    size_t                n, S, b;
    char                  name[200];
    int                   step;

    o = &oc->o;
    n = 300007;
    S = lt_optim_state_floats(o, n);

    if (lt_optim_check(o, &err) != 0 || S == 0) {
        fail(oc->name);
        diag("%s", err.msg);
        return;
    }

    p0 = host_rand(n, -1, 1);
    p = host_copy(p0, n);
    p1 = malloc(n * sizeof(float));
    s0 = malloc(S * sizeof(float));
    lt_optim_init_state(o, s0, n);
    s = host_copy(s0, S);
    s1 = malloc(S * sizeof(float));

    d_p = dev_floats(p, n);
    d_p1 = dev_floats(NULL, n);
    d_s = dev_floats(s, S);
    d_s1 = dev_floats(NULL, S);
    d_g = dev_floats(NULL, n);

    for (step = 1; step <= 6; step++) {
        g = host_rand(n, -1, 1);
        GPU->to_device(GPU, d_g, g, n * sizeof(float));

        if (step == 1) {
            lt_optim_apply(CPU, o, o->lr, p, p1, g, s, s1, n, step);
            lt_optim_apply(GPU, o, o->lr, d_p, d_p1, d_g, d_s, d_s1, n,
                           step);
        } else {
            lt_optim_apply(CPU, o, o->lr, p1, p1, g, s1, s1, n, step);
            lt_optim_apply(GPU, o, o->lr, d_p1, d_p1, d_g, d_s1, d_s1, n,
                           step);
        }
        free(g);

        if (step == 1) {
            got = fetch(d_p, n);
            want = fetch(d_s, S);
            snprintf(name, sizeof(name), "%s: a step out of place leaves "
                     "its inputs", oc->name);
            ok(memcmp(got, p0, n * sizeof(float)) == 0
               && memcmp(want, s0, S * sizeof(float)) == 0, name);
            free(got);
            free(want);
        }
    }

    got = fetch(d_p1, n);
    snprintf(name, sizeof(name), "%s: parameters after 6 steps", oc->name);
    agree(name, got, p1, n, TOL, 1.0);

    dg = change(got, p0, n);
    want = change(p1, p0, n);
    /* each step rounds the parameters (about 1) to float: 6 steps move
     * the change by up to 6 ulps of the largest one, which the floor
     * allows; a wrong update would be off by far more */
    snprintf(name, sizeof(name), "%s: the parameters' change", oc->name);
    agree(name, dg, want, n, TOL,
          fmax(1e-2 * max_abs(want, n),
               6.0 * FLT_EPSILON * max_abs(p1, n) / TOL));
    free(dg);
    free(want);
    free(got);

    got = fetch(d_s1, S);
    for (b = 0; b < S / n; b++) {
        snprintf(name, sizeof(name), "%s: state block %zu of %zu", oc->name,
                 b + 1, S / n);
        agree(name, got + b * n, s1 + b * n, n, TOL,
              1e-2 * max_abs(s1 + b * n, n));
    }
    free(got);

    ok(gpu_status(GPU, &err) == 0, oc->name);

    free(p0);
    free(p);
    free(p1);
    free(s0);
    free(s);
    free(s1);
    GPU->free(GPU, d_p);
    GPU->free(GPU, d_p1);
    GPU->free(GPU, d_s);
    GPU->free(GPU, d_s1);
    GPU->free(GPU, d_g);
}


static void
test_optim_ex(void)
{
    optim_case  cases[12];
    int         count, i;

    optim_cases(cases, &count);

    for (i = 0; i < count; i++) {
        check_optim(&cases[i]);
    }
}


/* -- whole train steps ------------------------------------------------------ */

static void
test_models_ex(void)
{
    lt_model_spec  s;
    int            i;

    mlp(&s, 8, 32, 4, LT_LAYER_TANH, LT_LAYER_LINEAR, LT_LOSS_L1,
        LT_OPTIM_ADAM, 0.001f, 0.0f, 0.01f);
    s.optim.amsgrad = 1;
    check_train("L1Loss, Adam amsgrad", &s, 64, 20, 0, 0);

    mlp(&s, 8, 32, 4, LT_LAYER_RELU, LT_LAYER_LINEAR, LT_LOSS_SMOOTH_L1,
        LT_OPTIM_RMSPROP, 0.001f, 0.9f, 0.0f);
    s.loss_opt.beta = 0.5f;
    s.optim.alpha = 0.99f;
    s.optim.centered = 1;
    check_train("SmoothL1Loss beta 0.5, RMSprop centered momentum", &s, 64,
                20, 0, 1);

    mlp(&s, 8, 32, 4, LT_LAYER_TANH, LT_LAYER_LINEAR, LT_LOSS_HUBER,
        LT_OPTIM_ADAGRAD, 0.05f, 0.0f, 1e-4f);
    s.loss_opt.beta = 1.5f;
    s.optim.eps = 1e-10f;
    s.optim.lr_decay = 0.01f;
    s.optim.initial_accumulator_value = 0.1f;
    check_train("HuberLoss delta 1.5, Adagrad", &s, 64, 20, 0, 0);

    mlp(&s, 12, 32, 3, LT_LAYER_RELU, LT_LAYER_LINEAR, LT_LOSS_BCE_LOGITS,
        LT_OPTIM_ADAMW, 0.003f, 0.0f, 0.01f);
    s.loss_opt.npos_weight = 3;
    for (i = 0; i < 3; i++) {
        s.loss_opt.pos_weight[i] = 0.5f + (float) i;
    }
    s.clip_grad_norm = 0.5f;
    check_train("BCEWithLogitsLoss pos_weight, AdamW, clip_grad_norm 0.5",
                &s, 64, 20, 0, 0);

    mlp(&s, 20, 64, 5, LT_LAYER_TANH, LT_LAYER_LOGSOFTMAX, LT_LOSS_NLL,
        LT_OPTIM_SGD, 0.05f, 0.9f, 1e-4f);
    s.optim.nesterov = 1;
    check_train("LogSoftmax NLLLoss, SGD Nesterov", &s, 64, 20, 0, 1);

    mlp(&s, 20, 64, 5, LT_LAYER_RELU, LT_LAYER_LINEAR, LT_LOSS_CE,
        LT_OPTIM_ADAMW, 0.003f, 0.0f, 0.01f);
    s.loss_opt.label_smoothing = 0.1f;
    s.optim.amsgrad = 1;
    s.clip_grad_norm = 1.0f;
    s.schedule.nphases = 1;
    s.schedule.phases[0].kind = LT_SCHED_STEP;
    s.schedule.phases[0].step_size = 5;
    s.schedule.phases[0].gamma = 0.5;
    check_train("CE label_smoothing 0.1 (indices), AdamW amsgrad, clip 1, "
                "StepLR", &s, 64, 20, 0, 0);

    mlp(&s, 20, 64, 5, LT_LAYER_RELU, LT_LAYER_LINEAR, LT_LOSS_CE,
        LT_OPTIM_SGD, 0.05f, 0.9f, 0.0f);
    s.loss_opt.label_smoothing = 0.2f;
    s.optim.dampening = 0.1f;
    s.clip_grad_norm = 0.25f;
    check_train("CE label_smoothing 0.2 (one-hot), SGD dampening, clip 0.25",
                &s, 64, 20, 1, 0);

    /* a batch above the grid cap of the row kernels (8192 warps) */
    mlp(&s, 16, 32, 10, LT_LAYER_RELU, LT_LAYER_LINEAR, LT_LOSS_CE,
        LT_OPTIM_RMSPROP, 0.001f, 0.0f, 0.0f);
    s.loss_opt.label_smoothing = 0.05f;
    s.optim.alpha = 0.99f;
    check_train("CE label_smoothing, RMSprop, batch 9000", &s, 9000, 3, 0, 0);
}


int
main(void)
{
    lt_err  err;

    if (gpu_count() <= 0) {
        printf("1..0 # SKIP no CUDA device\n");
        return 0;
    }

    CPU = lt_backend_cpu();
    GPU = gpu_open(0, 0, &err);
    if (GPU == NULL) {
        fail("the CUDA backend opens on device 0");
        diag("%s", err.msg);
        return done_testing();
    }

    test_loss_ex();
    test_loss_refusals();
    test_clip();
    test_optim_ex();
    test_models_ex();

    if (!ok(gpu_status(GPU, &err) == 0, "no failure was recorded")) {
        diag("%s", err.msg);
    }

    gpu_close(GPU);

    return done_testing();
}
