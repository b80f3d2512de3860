/*
 * test_cuda_backend.c: the CUDA backend against the CPU backend.
 *
 * Every op runs on random inputs on both backends and the results must
 * agree to 1e-4; then whole train steps (forward, loss, backward, SGD or
 * Adam) of small MLPs run 20 steps on both from the same parameters, and
 * XOR must converge on the GPU.  Without a CUDA device the test says
 * "1..0 # SKIP no CUDA device" and passes.
 *
 * Built with -DLT_CUDA_TEST_FAKE (make unit-cuda-harness) the "GPU" is the
 * CPU backend behind host copies: that checks the test itself, not CUDA,
 * on a machine with no GPU.  The helpers and the tolerances are in cuda_test.h.
 */
#include "cuda_test.h"

/* -- memory ---------------------------------------------------------------- */

static void
test_memory(void)
{
    float  *h, *back, *d1, *d2;
    void   *z;
    size_t  n;

    n = 100003;
    h = host_rand(n, -10, 10);

    d1 = dev_floats(h, n);
    d2 = GPU->alloc(GPU, n * sizeof(float));
    ok(d1 != NULL && d2 != NULL, "alloc gives device memory");

    GPU->copy(GPU, d2, d1, n * sizeof(float));
    back = fetch(d2, n);
    ok(memcmp(back, h, n * sizeof(float)) == 0,
       "to_device, copy and to_host keep every byte");
    free(back);

    /* a copy into the middle leaves the rest alone */
    GPU->copy(GPU, d2 + 10, d1, 5 * sizeof(float));
    back = fetch(d2, 20);
    ok(memcmp(back, h, 10 * sizeof(float)) == 0
       && memcmp(back + 10, h, 5 * sizeof(float)) == 0
       && memcmp(back + 15, h + 15, 5 * sizeof(float)) == 0,
       "copy of a range writes that range only");
    free(back);

    z = GPU->alloc(GPU, 0);
    ok(z != NULL, "alloc of 0 bytes gives a pointer");
    GPU->free(GPU, z);
    GPU->free(GPU, NULL);

    GPU->free(GPU, d1);
    GPU->free(GPU, d2);
    free(h);
}


/* -- gemm ------------------------------------------------------------------ */

/*
 * One product on both backends.  The stored matrices are 3 wider than
 * needed (the padding must be left alone), and with beta = 0 C starts as
 * NaN, which BLAS semantics ignore.
 */
static void
check_gemm(const lt_backend *gpu, double tol, int ta, int tb, int m, int n,
    int k, float alpha, float beta)
{
    const lt_backend  *keep;
    float             *a, *b, *c0, *cc, *gc, *da, *db, *dc;
    size_t             na, nb, nc;
    char               name[160];
    int                lda, ldb, ldc, i, j, pad_ok;
    float             *want, *got;

    keep = GPU;
    GPU = gpu;

    lda = (ta ? m : k) + 3;
    ldb = (tb ? k : n) + 3;
    ldc = n + 3;
    na = (size_t) lda * (ta ? k : m);
    nb = (size_t) ldb * (tb ? n : k);
    nc = (size_t) ldc * m;

    a = host_rand(na, -1, 1);
    b = host_rand(nb, -1, 1);
    c0 = host_rand(nc, -1, 1);
    if (beta == 0.0f) {
        for (i = 0; i < (int) nc; i++) {
            c0[i] = NAN;
        }
    }
    cc = host_copy(c0, nc);

    da = dev_floats(a, na);
    db = dev_floats(b, nb);
    dc = dev_floats(c0, nc);

    CPU->gemm(CPU, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc);
    GPU->gemm(GPU, ta, tb, m, n, k, alpha, da, lda, db, ldb, beta, dc, ldc);
    gc = fetch(dc, nc);

    /* the m x n results, packed, then the padding */
    want = malloc((size_t) m * n * sizeof(float));
    got = malloc((size_t) m * n * sizeof(float));
    pad_ok = 1;
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            want[(size_t) i * n + j] = cc[(size_t) i * ldc + j];
            got[(size_t) i * n + j] = gc[(size_t) i * ldc + j];
        }
        pad_ok &= memcmp(gc + (size_t) i * ldc + n, c0 + (size_t) i * ldc + n,
                         3 * sizeof(float)) == 0;
    }

    snprintf(name, sizeof(name), "%s gemm %c%c %dx%dx%d alpha %g beta %g",
             gpu->name, ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k,
             (double) alpha, (double) beta);
    /* summation-order differences grow as sqrt(k) */
    agree(name, got, want, (size_t) m * n, tol,
          fmax(1.0, sqrt((double) k)));

    if (!pad_ok) {
        snprintf(name, sizeof(name), "gemm %c%c %dx%dx%d: padding kept",
                 ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k);
        fail(name);
    }

    GPU->free(GPU, da);
    GPU->free(GPU, db);
    GPU->free(GPU, dc);
    free(a);
    free(b);
    free(c0);
    free(cc);
    free(gc);
    free(want);
    free(got);

    GPU = keep;
}


static void
test_gemm(void)
{
    /* tiny, vectors (m or n of 1), outer products, the MLP's shapes */
    static const int  shapes[][3] = {
        { 1, 1, 1 }, { 2, 3, 4 }, { 1, 20, 2 }, { 20, 2, 1 }, { 1, 1, 20 },
        { 1, 256, 784 }, { 300, 1, 50 }, { 256, 784, 1 }, { 64, 40, 30 },
        { 7, 9, 200 }, { 33, 65, 129 }, { 256, 1024, 784 },
        { 1024, 784, 256 }, { 256, 784, 1024 }
    };
    size_t  s;
    int     t;

    for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        for (t = 0; t < 4; t++) {
            check_gemm(GPU, TOL, t & 1, t >> 1, shapes[s][0], shapes[s][1],
                       shapes[s][2], 1.0f, 0.0f);
        }
        /* the backward product and the fused SGD update */
        check_gemm(GPU, TOL, 1, 0, shapes[s][0], shapes[s][1], shapes[s][2],
                   -0.5f, 0.75f);
        check_gemm(GPU, TOL, 0, 1, shapes[s][0], shapes[s][1], shapes[s][2],
                   2.0f, 1.0f);
    }
}


/* TF32: a separate backend object; about 3 significant digits. */
static void
test_tf32(void)
{
#ifndef LT_CUDA_TEST_FAKE
    const lt_backend  *tf;
    lt_err             err;

    tf = gpu_open(0, 1, &err);
    if (!ok(tf != NULL, "a second backend, with TF32")) {
        diag("%s", err.msg);
        return;
    }

    check_gemm(tf, 2e-2, 0, 1, 256, 1024, 784, 1.0f, 0.0f);
    check_gemm(tf, 2e-2, 1, 0, 1024, 784, 256, -0.5f, 1.0f);
    ok(gpu_status(tf, &err) == 0, "the TF32 backend reports no failure");
    gpu_close(tf);
#endif
}


/* -- bias ------------------------------------------------------------------ */


static void
test_bias(void)
{
    float   *y, *bias, *g, *want, *got, *dy, *db, *dg, *dout;
    size_t   s, n;
    char     name[128];
    int      rows, cols, i;

    for (s = 0; s < NSHAPES; s++) {
        rows = row_shapes[s][0];
        cols = row_shapes[s][1];
        n = (size_t) rows * cols;

        y = host_rand(n, -1, 1);
        bias = host_rand((size_t) cols, -1, 1);
        dy = dev_floats(y, n);
        db = dev_floats(bias, (size_t) cols);

        CPU->add_bias(CPU, y, bias, rows, cols);
        GPU->add_bias(GPU, dy, db, rows, cols);
        got = fetch(dy, n);
        snprintf(name, sizeof(name), "add_bias %dx%d", rows, cols);
        agree(name, got, y, n, TOL, 1.0);
        free(got);

        /* sum_rows overwrites out: start it as NaN */
        g = host_rand(n, -1, 1);
        want = malloc((size_t) cols * sizeof(float));
        for (i = 0; i < cols; i++) {
            want[i] = NAN;
        }
        dg = dev_floats(g, n);
        dout = dev_floats(want, (size_t) cols);

        CPU->sum_rows(CPU, want, g, rows, cols);
        GPU->sum_rows(GPU, dout, dg, rows, cols);
        got = fetch(dout, (size_t) cols);
        snprintf(name, sizeof(name), "sum_rows %dx%d", rows, cols);
        agree(name, got, want, (size_t) cols, TOL, sqrt((double) rows));

        free(got);
        free(want);
        free(g);
        free(y);
        free(bias);
        GPU->free(GPU, dy);
        GPU->free(GPU, db);
        GPU->free(GPU, dg);
        GPU->free(GPU, dout);
    }
}


/* -- activations ----------------------------------------------------------- */

static const char  *act_names[] = {
    "ReLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax"
};


static void
test_act(void)
{
    float   *x, *y, *dyv, *dx, *got, *d_x, *d_y, *d_dy, *d_dx;
    size_t   s, n;
    char     name[128];
    int      a, rows, cols;

    for (a = LT_ACT_RELU; a <= LT_ACT_LOGSOFTMAX; a++) {
        for (s = 0; s < NSHAPES; s++) {
            rows = row_shapes[s][0];
            cols = row_shapes[s][1];
            n = (size_t) rows * cols;

            x = host_rand(n, -6, 6);
            y = malloc(n * sizeof(float));
            dyv = host_rand(n, -1, 1);
            dx = malloc(n * sizeof(float));

            d_x = dev_floats(x, n);
            d_y = dev_floats(NULL, n);
            d_dy = dev_floats(dyv, n);
            d_dx = dev_floats(NULL, n);

            CPU->act_forward(CPU, (lt_act) a, x, y, rows, cols);
            GPU->act_forward(GPU, (lt_act) a, d_x, d_y, rows, cols);
            got = fetch(d_y, n);
            snprintf(name, sizeof(name), "%s forward %dx%d", act_names[a],
                     rows, cols);
            /* log-softmax values are O(log cols): floor 1 */
            agree(name, got, y, n, TOL,
                  a == LT_ACT_LOGSOFTMAX ? 1.0 : 1e-2 * max_abs(y, n));
            free(got);

            /* backward from the CPU's y, so both see the same inputs */
            GPU->to_device(GPU, d_y, y, n * sizeof(float));
            CPU->act_backward(CPU, (lt_act) a, x, y, dyv, dx, rows, cols);
            GPU->act_backward(GPU, (lt_act) a, d_x, d_y, d_dy, d_dx, rows,
                              cols);
            got = fetch(d_dx, n);
            snprintf(name, sizeof(name), "%s backward %dx%d", act_names[a],
                     rows, cols);
            agree(name, got, dx, n, TOL, 1e-2 * max_abs(dx, n));
            free(got);

            free(x);
            free(y);
            free(dyv);
            free(dx);
            GPU->free(GPU, d_x);
            GPU->free(GPU, d_y);
            GPU->free(GPU, d_dy);
            GPU->free(GPU, d_dx);
        }
    }
}


/* The CPU backend's edge cases (test_backend.c) on the GPU. */
static void
test_act_edges(void)
{
    float  x[4], *y, *d_x, *d_y;

    d_x = dev_floats(NULL, 4);
    d_y = dev_floats(NULL, 4);

    x[0] = 1e30f;
    x[1] = -1e30f;
    x[2] = NAN;
    x[3] = 0.0f;
    GPU->to_device(GPU, d_x, x, sizeof(x));
    GPU->act_forward(GPU, LT_ACT_TANH, d_x, d_y, 1, 4);
    y = fetch(d_y, 4);
    ok(y[0] == 1.0f && y[1] == -1.0f && isnan(y[2]) && y[3] == 0.0f,
       "tanh(+-huge) = +-1, tanh(NaN) is NaN, tanh(0) = 0");
    free(y);

    x[0] = 100.0f;
    x[1] = -100.0f;
    x[2] = 0.0f;
    GPU->to_device(GPU, d_x, x, 3 * sizeof(float));
    GPU->act_forward(GPU, LT_ACT_SIGMOID, d_x, d_y, 1, 3);
    y = fetch(d_y, 3);
    ok(y[0] == 1.0f && y[1] >= 0.0f && y[1] < 1e-40f && y[2] == 0.5f,
       "sigmoid saturates without NaN");
    free(y);

    x[0] = 1000.0f;
    x[1] = 0.0f;
    x[2] = -1000.0f;
    x[3] = 3.0f;
    GPU->to_device(GPU, d_x, x, sizeof(x));
    GPU->act_forward(GPU, LT_ACT_SOFTMAX, d_x, d_y, 2, 2);
    y = fetch(d_y, 4);
    ok(y[0] == 1.0f && y[1] == 0.0f && fabsf(y[2] + y[3] - 1.0f) < 1e-6f,
       "softmax of +-1000: finite rows summing to 1");
    free(y);
    GPU->act_forward(GPU, LT_ACT_LOGSOFTMAX, d_x, d_y, 2, 2);
    y = fetch(d_y, 4);
    ok(y[0] == 0.0f && y[1] == -1000.0f && isfinite(y[2]),
       "log-softmax of +-1000 is finite");
    free(y);

    /* in place, as the CPU backend allows */
    x[0] = 1.0f;
    x[1] = 2.0f;
    x[2] = 3.0f;
    x[3] = 4.0f;
    GPU->to_device(GPU, d_x, x, sizeof(x));
    GPU->act_forward(GPU, LT_ACT_SOFTMAX, d_x, d_x, 2, 2);
    y = fetch(d_x, 4);
    CPU->act_forward(CPU, LT_ACT_SOFTMAX, x, x, 2, 2);
    agree("softmax in place", y, x, 4, TOL, 1e-2);
    free(y);

    GPU->free(GPU, d_x);
    GPU->free(GPU, d_y);
}


/* -- losses ---------------------------------------------------------------- */

static void
test_loss(void)
{
    float    *p, *t, *gc, *gg, *d_p, *d_t, *d_g, lc, lg;
    double    gfloor;
    int32_t  *idx, *d_idx;
    size_t    s, n, i;
    char      name[128];
    int       rows, cols, kind;

    for (s = 0; s < NSHAPES; s++) {
        rows = row_shapes[s][0];
        cols = row_shapes[s][1];
        n = (size_t) rows * cols;

        for (kind = 0; kind < 4; kind++) {
            /* 0 MSE, 1 BCE, 2 CE indices, 3 CE probabilities */
            p = kind == 1 ? host_rand(n, 0.001f, 0.999f)
                          : host_rand(n, -4, 4);
            t = kind == 1 ? host_rand(n, 0, 1) : host_rand(n, -1, 1);
            idx = malloc((size_t) rows * sizeof(int32_t));

            for (i = 0; i < (size_t) rows; i++) {
                idx[i] = (int32_t) ((i * 7 + 3) % (size_t) cols);
            }

            if (kind == 1 && n >= 4) {
                /* certain answers, right and wrong: the log clamp */
                p[0] = 0.0f;
                t[0] = 1.0f;
                p[1] = 1.0f;
                t[1] = 0.0f;
                p[2] = 1.0f;
                t[2] = 1.0f;
                p[3] = 0.0f;
                t[3] = 0.0f;
            }

            if (kind == 3) {
                /* rows of non-negative weights, some summing to 1 */
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
            case 0:
                lc = CPU->loss_mse(CPU, p, t, gc, rows, cols);
                lg = GPU->loss_mse(GPU, d_p, d_t, d_g, rows, cols);
                break;
            case 1:
                lc = CPU->loss_bce(CPU, p, t, gc, rows, cols);
                lg = GPU->loss_bce(GPU, d_p, d_t, d_g, rows, cols);
                break;
            case 2:
                lc = CPU->loss_ce(CPU, p, idx, NULL, gc, rows, cols);
                lg = GPU->loss_ce(GPU, d_p, d_idx, NULL, d_g, rows, cols);
                break;
            default:
                lc = CPU->loss_ce(CPU, p, NULL, t, gc, rows, cols);
                lg = GPU->loss_ce(GPU, d_p, NULL, d_t, d_g, rows, cols);
                break;
            }

            gg = fetch(d_g, n);

            /* BCE's certain answers have gradients of 1e12 / n: scale
             * the others' tolerance by the others */
            gfloor = kind == 1 && n > 8 ? 1e-2 * max_abs(gc + 4, n - 4)
                                        : 1e-2 * max_abs(gc, n);

            snprintf(name, sizeof(name), "%s loss %dx%d",
                     kind == 0 ? "MSE" : kind == 1 ? "BCE"
                     : kind == 2 ? "CE (indices)" : "CE (probabilities)",
                     rows, cols);
            agree_float(name, lg, lc, TOL);
            strcat(name, ": gradient");
            agree(name, gg, gc, n, TOL, gfloor);

            free(p);
            free(t);
            free(idx);
            free(gc);
            free(gg);
            GPU->free(GPU, d_p);
            GPU->free(GPU, d_t);
            GPU->free(GPU, d_g);
            GPU->free(GPU, d_idx);
        }
    }
}


/* -- optimizers ------------------------------------------------------------ */

static void
test_optim(void)
{
    float   *p, *g, *vel, *m, *v, *out, *got;
    float   *d_p, *d_g, *d_vel, *d_m, *d_v, *d_out;
    size_t   n;
    int      step;

    n = 300007;
    p = host_rand(n, -1, 1);
    g = host_rand(n, -1, 1);
    vel = host_rand(n, -1, 1);
    m = host_rand(n, -0.1f, 0.1f);
    v = host_rand(n, 0, 0.01f);
    out = malloc(n * sizeof(float));

    d_p = dev_floats(p, n);
    d_g = dev_floats(g, n);
    d_vel = dev_floats(vel, n);
    d_m = dev_floats(m, n);
    d_v = dev_floats(v, n);
    d_out = dev_floats(NULL, n);

    /* plain SGD: no velocity at all (the fused path's bias update) */
    CPU->sgd(CPU, p, out, g, NULL, NULL, n, 0.1f, 0.0f, 0.01f, 1);
    GPU->sgd(GPU, d_p, d_out, d_g, NULL, NULL, n, 0.1f, 0.0f, 0.01f, 1);
    got = fetch(d_out, n);
    agree("SGD, weight decay", got, out, n, TOL, 1.0);
    free(got);

    /* momentum: the first step sets the velocity, later ones update it;
     * in place */
    for (step = 1; step <= 3; step++) {
        CPU->sgd(CPU, p, p, g, vel, vel, n, 0.05f, 0.9f, 0.001f, step == 1);
        GPU->sgd(GPU, d_p, d_p, d_g, d_vel, d_vel, n, 0.05f, 0.9f, 0.001f,
                 step == 1);
    }
    got = fetch(d_p, n);
    agree("SGD momentum, 3 steps in place: parameters", got, p, n, TOL, 1.0);
    free(got);
    got = fetch(d_vel, n);
    agree("SGD momentum: velocity", got, vel, n, TOL, 1.0);
    free(got);

    /* Adam, steps 1..7, into out then back in place */
    for (step = 1; step <= 7; step++) {
        CPU->adam(CPU, p, step == 1 ? out : p, g, m, v, m, v, n, 0.001f, 0.9f,
                  0.999f, 1e-8f, step == 1 ? 0.0f : 0.01f, step);
        GPU->adam(GPU, d_p, step == 1 ? d_out : d_p, d_g, d_m, d_v, d_m, d_v,
                  n,
                  0.001f, 0.9f, 0.999f, 1e-8f, step == 1 ? 0.0f : 0.01f,
                  step);
    }
    got = fetch(d_out, n);
    agree("Adam step 1 into another buffer", got, out, n, TOL, 1.0);
    free(got);
    got = fetch(d_p, n);
    agree("Adam steps 2-7 in place, weight decay: parameters", got, p, n,
          TOL, 1.0);
    free(got);
    got = fetch(d_m, n);
    agree("Adam: first moments", got, m, n, TOL, 1e-2 * max_abs(m, n));
    free(got);
    got = fetch(d_v, n);
    agree("Adam: second moments", got, v, n, TOL, 1e-2 * max_abs(v, n));
    free(got);

    free(p);
    free(g);
    free(vel);
    free(m);
    free(v);
    free(out);
    GPU->free(GPU, d_p);
    GPU->free(GPU, d_g);
    GPU->free(GPU, d_vel);
    GPU->free(GPU, d_m);
    GPU->free(GPU, d_v);
    GPU->free(GPU, d_out);
}



static void
test_models(void)
{
    lt_model_spec  s;

    /* plain SGD: the update fused into the backward gemm */
    mlp(&s, 8, 32, 4, LT_LAYER_TANH, LT_LAYER_LINEAR, LT_LOSS_MSE,
        LT_OPTIM_SGD, 0.05f, 0.0f, 0.0f);
    check_train("Linear-Tanh-Linear MSE SGD, in place", &s, 64, 20, 0, 1);
    check_train("Linear-Tanh-Linear MSE SGD, double-buffered", &s, 64, 20,
                0, 0);

    mlp(&s, 8, 32, 4, LT_LAYER_TANH, LT_LAYER_LINEAR, LT_LOSS_MSE,
        LT_OPTIM_SGD, 0.05f, 0.9f, 1e-3f);
    check_train("Linear-Tanh-Linear MSE SGD momentum, weight decay", &s, 64,
                20, 0, 0);

    mlp(&s, 20, 64, 5, LT_LAYER_RELU, LT_LAYER_LINEAR, LT_LOSS_CE,
        LT_OPTIM_ADAM, 0.001f, 0.0f, 0.0f);
    check_train("Linear-ReLU-Linear CE (indices) Adam", &s, 64, 20, 0, 0);

    mlp(&s, 20, 64, 5, LT_LAYER_RELU, LT_LAYER_LINEAR, LT_LOSS_CE,
        LT_OPTIM_SGD, 0.1f, 0.0f, 1e-4f);
    check_train("Linear-ReLU-Linear CE (one-hot) SGD, weight decay", &s, 64,
                20, 1, 0);

    mlp(&s, 8, 16, 1, LT_LAYER_TANH, LT_LAYER_SIGMOID, LT_LOSS_BCE,
        LT_OPTIM_SGD, 0.1f, 0.5f, 0.0f);
    check_train("Linear-Tanh-Linear-Sigmoid BCE SGD momentum", &s, 32, 20, 0,
                1);

    /* a batch above the grid cap of the row kernels (8192 warps) */
    mlp(&s, 16, 32, 10, LT_LAYER_RELU, LT_LAYER_LOGSOFTMAX, LT_LOSS_MSE,
        LT_OPTIM_ADAM, 0.001f, 0.0f, 0.0f);
    check_train("Linear-ReLU-Linear-LogSoftmax MSE Adam, batch 9000", &s,
                9000, 3, 0, 0);
}


/* The WebTorch example, trained on the GPU alone. */
static void
test_xor(void)
{
    static float   xs[8] = { 0, 0, 0, 1, 1, 0, 1, 1 };
    static float   ys[4] = { 0, 1, 1, 0 };
    lt_model_spec  s;
    lt_workspace  *ws;
    lt_tensor      x, y, out;
    lt_model       m;
    lt_err         err;
    int64_t        xshape[] = { 4, 2 };
    int64_t        yshape[] = { 4, 1 };
    float         *host, *d, loss;
    int            step, rc, right, i;

    mlp(&s, 2, 20, 1, LT_LAYER_TANH, LT_LAYER_TANH, LT_LOSS_MSE,
        LT_OPTIM_SGD, 0.1f, 0.9f, 0.0f);
    if (lt_model_build(&m, &s, &err) != 0) {
        fail("XOR model builds");
        diag("%s", err.msg);
        return;
    }

    lt_tensor_view(&x, xs, 2, xshape);
    lt_tensor_view(&y, ys, 2, yshape);

    host = calloc(m.param_count + m.state_count, sizeof(float));
    lt_model_init_params(&m, host, 1);
    d = dev_floats(host, m.param_count + m.state_count);
    ws = lt_workspace_new(&m, GPU, 4, &err);

    rc = 0;
    loss = NAN;
    for (step = 1; step <= 500; step++) {
        rc |= lt_model_train_step(&m, ws, d, d, d + m.param_count, step,
                                  &x, &y, &loss, &err);
    }

    rc |= lt_model_forward(&m, ws, d, &x, &out, &err);
    if (!ok(rc == 0, "XOR: 500 steps on the GPU")) {
        diag("%s", err.msg);
    }

    right = 0;
    for (i = 0; rc == 0 && i < 4; i++) {
        right += fabsf(out.data[i] - ys[i]) < 0.2f;
    }

    diag("XOR: loss %g after 500 steps", (double) loss);
    if (!ok(loss < 0.01f && right == 4, "XOR converges on the GPU")) {
        diag("loss %g, %d of 4 within 0.2", (double) loss, right);
    }

    lt_workspace_free(ws);
    GPU->free(GPU, d);
    free(host);
}


/* -- failures -------------------------------------------------------------- */

static void
test_failures(int count)
{
    const lt_backend  *be;
    lt_err             err;

    err.msg[0] = '\0';
    be = gpu_open(count, 0, &err);
    ok(be == NULL, "opening a device that does not exist fails");
    like(err.msg, "no CUDA device", "... and says so");

#ifndef LT_CUDA_TEST_FAKE
    {
    float  *d;

    /* an op that cannot run is recorded, reported once, then forgotten */
    d = dev_floats(NULL, 16);
    GPU->sgd(GPU, d, d, d, NULL, NULL, 16, 0.1f, 0.9f, 0.0f, 1);
    err.msg[0] = '\0';
    ok(lt_backend_cuda_status(GPU, &err) == -1, "a failed op is reported");
    like(err.msg, "velocity", "... with what failed");
    ok(lt_backend_cuda_status(GPU, &err) == 0, "... once");
    GPU->free(GPU, d);
    is_int(lt_backend_cuda_device(GPU), 0, "the backend is on device 0");
    }
#endif

    is_str(GPU->name, LT_CUDA_TEST_NAME, "the backend's name");
}


int
main(void)
{
    lt_err  err;
    int     count;

    count = gpu_count();
    if (count <= 0) {
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

    diag("%d device(s); testing device 0", count);

    test_memory();
    test_gemm();
    test_tf32();
    test_bias();
    test_act();
    test_act_edges();
    test_loss();
    test_optim();
    test_models();
    test_xor();
    test_failures(count);

    if (!ok(gpu_status(GPU, &err) == 0, "no failure was recorded")) {
        diag("%s", err.msg);
    }

    gpu_close(GPU);

    return done_testing();
}
