/*
 * test_cuda_layers.c: the CUDA backend's layer ops against the CPU
 * backend (activations with arguments, Dropout, im2col / col2im and the
 * channel bias, pools, BatchNorm, LayerNorm, Embedding), then whole
 * train steps of nets with each layer (a LeNet-like CNN, Conv1d, BatchNorm,
 * LayerNorm, Embedding, Dropout).  Without a CUDA device it says
 * "1..0 # SKIP no CUDA device".
 *
 * What the GPU must give bit for bit (im2col, max pooling's argmax,
 * Dropout's mask, Embedding's lookup) is compared with memcmp; the rest
 * to the tolerances of cuda_test.h.  Built with -DLT_CUDA_TEST_FAKE the
 * "GPU" is the CPU backend with the ops that round differently
 * recomputed (cuda_fake_layers.h): that checks the test, not CUDA.
 */
#include "cuda_test.h"


/* -- activations with arguments, Dropout ----------------------------------- */

static void
test_act_arg(void)
{
    static const struct {
        lt_act       act;
        float        a, b;
        const char  *name;
    } acts[] = {
        { LT_ACT_GELU, 0, 0, "GELU" },
        { LT_ACT_GELU_TANH, 0, 0, "GELU tanh" },
        { LT_ACT_LEAKY_RELU, 0.1f, 0, "LeakyReLU 0.1" },
        { LT_ACT_ELU, 1.0f, 0, "ELU" },
        { LT_ACT_ELU, 0.5f, 0, "ELU 0.5" },
        { LT_ACT_SILU, 0, 0, "SiLU" },
        { LT_ACT_SOFTPLUS, 1.0f, 20.0f, "Softplus" },
        { LT_ACT_SOFTPLUS, 2.0f, 5.0f, "Softplus beta 2, threshold 5" }
    };
    static const size_t  sizes[] = { 1, 1000, 300007 };
    float   *x, *y, *dy, *dx, *got, *d_x, *d_y, *d_dy, *d_dx;
    size_t   a, s, n;
    char     name[128];

    for (a = 0; a < sizeof(acts) / sizeof(acts[0]); a++) {
        for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            n = sizes[s];
            x = host_rand(n, -8, 8);
            if (n >= 4) {
                x[0] = 40.0f;
                x[1] = -40.0f;
                x[2] = 0.0f;
                x[3] = 2.5f;    /* Softplus beta 2: at its threshold */
            }
            y = malloc(n * sizeof(float));
            dy = host_rand(n, -1, 1);
            dx = malloc(n * sizeof(float));
            d_x = dev_floats(x, n);
            d_y = dev_floats(NULL, n);
            d_dy = dev_floats(dy, n);
            d_dx = dev_floats(NULL, n);

            CPU->act_arg_forward(CPU, acts[a].act, acts[a].a, acts[a].b, x,
                                 y, n);
            GPU->act_arg_forward(GPU, acts[a].act, acts[a].a, acts[a].b,
                                 d_x, d_y, n);
            got = fetch(d_y, n);
            snprintf(name, sizeof(name), "%s forward, %zu", acts[a].name, n);
            agree(name, got, y, n, TOL, 1e-2 * max_abs(y, n));
            free(got);

            GPU->to_device(GPU, d_y, y, n * sizeof(float));
            CPU->act_arg_backward(CPU, acts[a].act, acts[a].a, acts[a].b, x,
                                  y, dy, dx, n);
            GPU->act_arg_backward(GPU, acts[a].act, acts[a].a, acts[a].b,
                                  d_x, d_y, d_dy, d_dx, n);
            got = fetch(d_dx, n);
            snprintf(name, sizeof(name), "%s backward, %zu", acts[a].name,
                     n);
            agree(name, got, dx, n, TOL, 1e-2 * max_abs(dx, n));
            free(got);

            free(x);
            free(y);
            free(dy);
            free(dx);
            GPU->free(GPU, d_x);
            GPU->free(GPU, d_y);
            GPU->free(GPU, d_dy);
            GPU->free(GPU, d_dx);
        }
    }
}


static void
test_dropout(void)
{
    static const float  ps[] = { 0.25f, 0.0f, 0.5f, 1.0f };
    float   *x, *y, *mask, *got, *gmask, *d_x, *d_y, *d_m, *prod;
    size_t   n, i, zeros;
    char     name[128];
    int      k;

    n = 300007;
    x = host_rand(n, -1, 1);
    y = malloc(n * sizeof(float));
    mask = malloc(n * sizeof(float));
    d_x = dev_floats(x, n);
    d_y = dev_floats(NULL, n);
    d_m = dev_floats(NULL, n);

    for (k = 0; k < 4; k++) {
        CPU->dropout_forward(CPU, x, y, mask, n, ps[k], 0x5eed0000 + k);
        GPU->dropout_forward(GPU, d_x, d_y, d_m, n, ps[k], 0x5eed0000 + k);
        got = fetch(d_y, n);
        gmask = fetch(d_m, n);

        zeros = 0;
        for (i = 0; i < n; i++) {
            zeros += gmask[i] == 0.0f;
        }

        snprintf(name, sizeof(name), "Dropout p %g: the CPU's mask, bit for"
                 " bit (%zu of %zu dropped)", (double) ps[k], zeros, n);
        ok(memcmp(gmask, mask, n * sizeof(float)) == 0
           && memcmp(got, y, n * sizeof(float)) == 0, name);
        free(got);
        free(gmask);
    }

    /* the backward pass is dy * mask */
    prod = malloc(n * sizeof(float));
    CPU->mul(CPU, x, mask, prod, n);
    GPU->to_device(GPU, d_m, mask, n * sizeof(float));
    GPU->mul(GPU, d_x, d_m, d_y, n);
    got = fetch(d_y, n);
    ok(memcmp(got, prod, n * sizeof(float)) == 0, "mul: the same products");
    free(got);
    free(prod);

    free(x);
    free(y);
    free(mask);
    GPU->free(GPU, d_x);
    GPU->free(GPU, d_y);
    GPU->free(GPU, d_m);
}


/* -- convolutions ---------------------------------------------------------- */

/* c, h, w, kh, kw, sh, sw, ph, pw, dh, dw: the output size follows */
static const int  windows[][11] = {
    { 1, 28, 28, 5, 5, 1, 1, 2, 2, 1, 1 },      /* LeNet's first */
    { 6, 14, 14, 5, 5, 1, 1, 0, 0, 1, 1 },
    { 3, 9, 11, 3, 3, 2, 2, 1, 1, 1, 1 },       /* stride 2 */
    { 4, 10, 10, 3, 3, 1, 1, 2, 2, 2, 2 },      /* dilation 2 */
    { 2, 7, 5, 2, 3, 3, 1, 0, 1, 1, 2 },        /* uneven */
    { 8, 1, 50, 1, 5, 1, 2, 0, 2, 1, 1 },       /* Conv1d, stride 2 */
    { 16, 1, 33, 1, 3, 1, 1, 0, 0, 1, 3 },      /* Conv1d, dilation 3 */
    { 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1 }
};

#define NWINDOWS  (sizeof(windows) / sizeof(windows[0]))


static void
window(lt_window *g, const int *w)
{
    g->c = w[0];
    g->h = w[1];
    g->w = w[2];
    g->kh = w[3];
    g->kw = w[4];
    g->sh = w[5];
    g->sw = w[6];
    g->ph = w[7];
    g->pw = w[8];
    g->dh = w[9];
    g->dw = w[10];
    g->oh = (g->h + 2 * g->ph - g->dh * (g->kh - 1) - 1) / g->sh + 1;
    g->ow = (g->w + 2 * g->pw - g->dw * (g->kw - 1) - 1) / g->sw + 1;
}


static void
test_conv_ops(void)
{
    lt_window  g;
    float     *x, *col, *got, *d_x, *d_col, *y, *bias, *d_y, *d_b;
    size_t     s, nx, ncol, ny;
    char       name[160];
    int        n;

    for (s = 0; s < NWINDOWS; s++) {
        window(&g, windows[s]);
        nx = (size_t) g.c * g.h * g.w;
        ncol = (size_t) g.c * g.kh * g.kw * g.oh * g.ow;

        x = host_rand(nx, -1, 1);
        col = malloc(ncol * sizeof(float));
        d_x = dev_floats(x, nx);
        d_col = dev_floats(NULL, ncol);

        CPU->im2col(CPU, &g, x, col);
        GPU->im2col(GPU, &g, d_x, d_col);
        got = fetch(d_col, ncol);
        snprintf(name, sizeof(name), "im2col [%d, %d, %d] k %dx%d s %d,%d "
                 "p %d,%d d %d,%d: the same columns", g.c, g.h, g.w, g.kh,
                 g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw);
        ok(memcmp(got, col, ncol * sizeof(float)) == 0, name);
        free(got);

        /* col2im overwrites x: start it as NaN on the GPU */
        free(col);
        col = host_rand(ncol, -1, 1);
        GPU->to_device(GPU, d_col, col, ncol * sizeof(float));
        got = malloc(nx * sizeof(float));
        for (n = 0; n < (int) nx; n++) {
            got[n] = NAN;
        }
        GPU->to_device(GPU, d_x, got, nx * sizeof(float));
        free(got);
        CPU->col2im(CPU, &g, col, x);
        GPU->col2im(GPU, &g, d_col, d_x);
        got = fetch(d_x, nx);
        snprintf(name, sizeof(name), "col2im [%d, %d, %d] k %dx%d s %d,%d "
                 "p %d,%d d %d,%d", g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw,
                 g.ph, g.pw, g.dh, g.dw);
        agree(name, got, x, nx, TOL, 1.0);
        free(got);

        /* the bias and its gradient over a batch of the outputs */
        n = 5;
        ny = (size_t) n * g.c * g.oh * g.ow;
        y = host_rand(ny, -1, 1);
        bias = host_rand((size_t) g.c, -1, 1);
        d_y = dev_floats(y, ny);
        d_b = dev_floats(bias, (size_t) g.c);
        CPU->channel_bias(CPU, y, bias, n, g.c, g.oh * g.ow);
        GPU->channel_bias(GPU, d_y, d_b, n, g.c, g.oh * g.ow);
        got = fetch(d_y, ny);
        snprintf(name, sizeof(name), "channel_bias [%d, %d, %d]", n, g.c,
                 g.oh * g.ow);
        agree(name, got, y, ny, TOL, 1.0);
        free(got);

        CPU->channel_sum(CPU, bias, y, n, g.c, g.oh * g.ow);
        GPU->channel_sum(GPU, d_b, d_y, n, g.c, g.oh * g.ow);
        got = fetch(d_b, (size_t) g.c);
        snprintf(name, sizeof(name), "channel_sum [%d, %d, %d]", n, g.c,
                 g.oh * g.ow);
        agree(name, got, bias, (size_t) g.c, TOL,
              sqrt((double) n * g.oh * g.ow));
        free(got);

        free(x);
        free(col);
        free(y);
        free(bias);
        GPU->free(GPU, d_x);
        GPU->free(GPU, d_col);
        GPU->free(GPU, d_y);
        GPU->free(GPU, d_b);
    }
}


/* -- pools ----------------------------------------------------------------- */

static const char  *pool_names[] = {
    "MaxPool", "AvgPool", "AvgPool (padding not counted)", "AdaptiveAvgPool"
};


static void
check_pool(lt_pool kind, const lt_window *g, int n)
{
    float    *x, *y, *dy, *dx, *got, *d_x, *d_y, *d_dy, *d_dx;
    int32_t  *arg, *garg, *d_arg;
    size_t    nx, ny;
    char      name[200];

    nx = (size_t) n * g->c * g->h * g->w;
    ny = (size_t) n * g->c * g->oh * g->ow;

    x = host_rand(nx, -4, 4);
    if (kind == LT_POOL_MAX && nx > 10) {
        x[7] = NAN;             /* a NaN wins its windows */
        x[3] = x[4];            /* ties: the first wins */
    }
    y = malloc(ny * sizeof(float));
    arg = calloc(ny, sizeof(int32_t));
    dy = host_rand(ny, -1, 1);
    dx = malloc(nx * sizeof(float));
    d_x = dev_floats(x, nx);
    d_y = dev_floats(NULL, ny);
    d_arg = dev_bytes(arg, ny * sizeof(int32_t));
    d_dy = dev_floats(dy, ny);
    d_dx = dev_floats(NULL, nx);

    snprintf(name, sizeof(name), "%s n %d [%d, %d, %d] -> [%d, %d] k %dx%d "
             "s %d,%d p %d,%d d %d,%d", pool_names[kind], n, g->c, g->h, g->w,
             g->oh, g->ow, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, g->dh,
             g->dw);

    CPU->pool_forward(CPU, kind, g, n, x, y, arg);
    GPU->pool_forward(GPU, kind, g, n, d_x, d_y, d_arg);
    got = fetch(d_y, ny);
    agree(name, got, y, ny, TOL, 1.0);
    free(got);

    if (kind == LT_POOL_MAX) {
        garg = malloc(ny * sizeof(int32_t));
        GPU->to_host(GPU, garg, d_arg, ny * sizeof(int32_t));
        strcat(name, ": the same argmax");
        ok(memcmp(garg, arg, ny * sizeof(int32_t)) == 0, name);
        name[strlen(name) - strlen(": the same argmax")] = '\0';
        free(garg);
    }

    CPU->pool_backward(CPU, kind, g, n, dy, arg, dx);
    GPU->pool_backward(GPU, kind, g, n, d_dy, d_arg, d_dx);
    got = fetch(d_dx, nx);
    strcat(name, ": backward");
    agree(name, got, dx, nx, TOL, 1.0);
    free(got);

    free(x);
    free(y);
    free(arg);
    free(dy);
    free(dx);
    GPU->free(GPU, d_x);
    GPU->free(GPU, d_y);
    GPU->free(GPU, d_arg);
    GPU->free(GPU, d_dy);
    GPU->free(GPU, d_dx);
}


static void
test_pools(void)
{
    /* c, h, w, kh, kw, sh, sw, ph, pw, dh, dw */
    static const int  pools[][11] = {
        { 6, 28, 28, 2, 2, 2, 2, 0, 0, 1, 1 },  /* LeNet's */
        { 3, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1 },    /* overlapping, padded */
        { 4, 10, 11, 3, 2, 1, 2, 1, 1, 1, 1 },
        { 2, 12, 12, 3, 3, 3, 3, 1, 1, 2, 2 },  /* dilation (max only) */
        { 5, 1, 40, 1, 4, 1, 3, 0, 2, 1, 1 }    /* 1-d */
    };
    static const int  adaptive[][5] = {
        /* c, h, w, oh, ow */
        { 4, 7, 7, 1, 1 }, { 3, 10, 13, 3, 4 }, { 2, 5, 5, 7, 7 },
        { 6, 9, 6, 4, 5 }
    };
    lt_window  g;
    size_t     i;
    int        kind;

    for (i = 0; i < sizeof(pools) / sizeof(pools[0]); i++) {
        window(&g, pools[i]);
        for (kind = LT_POOL_MAX; kind <= LT_POOL_AVG_EXCL; kind++) {
            if (kind != LT_POOL_MAX && (g.dh != 1 || g.dw != 1)) {
                continue;
            }
            check_pool((lt_pool) kind, &g, 3);
        }
    }

    for (i = 0; i < sizeof(adaptive) / sizeof(adaptive[0]); i++) {
        memset(&g, 0, sizeof(g));
        g.c = adaptive[i][0];
        g.h = adaptive[i][1];
        g.w = adaptive[i][2];
        g.oh = adaptive[i][3];
        g.ow = adaptive[i][4];
        g.kh = g.kw = g.sh = g.sw = g.dh = g.dw = 1;
        check_pool(LT_POOL_ADAPTIVE, &g, 2);
    }
}


/* -- norms ----------------------------------------------------------------- */

/*
 * A norm's dx is gamma inv (dy - mean(dy) - xhat mean(dy xhat)): terms of
 * the size of gamma inv dy that cancel, completely where a channel or row
 * has 2 values.  Its rounding error is then a few ulps of those terms,
 * not of dx; the floor allows 1e-6 of them (a dozen ulps).
 */
static double
cancelled(double inv, const float *gamma, size_t ngamma, const float *dy,
    size_t n)
{
    return 1e-2 * inv * (gamma != NULL ? max_abs(gamma, ngamma) : 1.0)
           * max_abs(dy, n);
}


/* the largest of save[1], save[3], ... (LayerNorm's 1/sqrt(var + eps)) */
static double
max_odd(const float *save, size_t rows)
{
    double  m;
    size_t  i;

    m = 0.0;
    for (i = 0; i < rows; i++) {
        m = fmax(m, fabs(save[2 * i + 1]));
    }

    return m;
}


static void
check_batchnorm(int n, int c, int s, int affine, int batch)
{
    float   *x, *y, *gamma, *beta, *mean, *var, *save, *dy, *dx, *dg, *db;
    float   *d_x, *d_y, *d_gamma, *d_beta, *d_mean, *d_var, *d_save, *d_dy;
    float   *d_dx, *d_dg, *d_db, *got, *run, *d_run, *grun;
    size_t   nx, i;
    char     name[160];

    nx = (size_t) n * c * s;
    x = host_rand(nx, -2, 3);
    y = malloc(nx * sizeof(float));
    gamma = host_rand((size_t) c, 0.5f, 1.5f);
    beta = host_rand((size_t) c, -1, 1);
    mean = host_rand((size_t) c, -0.5f, 0.5f);
    var = host_rand((size_t) c, 0.5f, 2.0f);
    save = calloc(3 * (size_t) c, sizeof(float));
    dy = host_rand(nx, -1, 1);
    dx = malloc(nx * sizeof(float));
    dg = malloc((size_t) c * sizeof(float));
    db = malloc((size_t) c * sizeof(float));

    d_x = dev_floats(x, nx);
    d_y = dev_floats(NULL, nx);
    d_gamma = dev_floats(gamma, (size_t) c);
    d_beta = dev_floats(beta, (size_t) c);
    d_mean = dev_floats(mean, (size_t) c);
    d_var = dev_floats(var, (size_t) c);
    d_save = dev_floats(save, 3 * (size_t) c);
    d_dy = dev_floats(dy, nx);
    d_dx = dev_floats(NULL, nx);
    d_dg = dev_floats(NULL, (size_t) c);
    d_db = dev_floats(NULL, (size_t) c);

    snprintf(name, sizeof(name), "BatchNorm [%d, %d, %d]%s, %s", n, c, s,
             affine ? "" : " without affine", batch ? "train" : "eval");

    CPU->batchnorm_forward(CPU, n, c, s, x, y, affine ? gamma : NULL,
                           affine ? beta : NULL, mean, var, 1e-5f, batch,
                           save);
    GPU->batchnorm_forward(GPU, n, c, s, d_x, d_y, affine ? d_gamma : NULL,
                           affine ? d_beta : NULL, d_mean, d_var, 1e-5f,
                           batch, d_save);
    got = fetch(d_y, nx);
    agree(name, got, y, nx, TOL, 1.0);
    free(got);

    got = fetch(d_save, 3 * (size_t) c);
    strcat(name, ": saved statistics");
    agree(name, got, save, (batch ? 3 : 2) * (size_t) c, TOL, 1.0);
    free(got);

    /* backward from the CPU's saved statistics */
    GPU->to_device(GPU, d_save, save, 3 * (size_t) c * sizeof(float));
    CPU->batchnorm_backward(CPU, n, c, s, x, dy, dx, affine ? gamma : NULL,
                            save, batch, affine ? dg : NULL,
                            affine ? db : NULL);
    GPU->batchnorm_backward(GPU, n, c, s, d_x, d_dy, d_dx,
                            affine ? d_gamma : NULL, d_save, batch,
                            affine ? d_dg : NULL, affine ? d_db : NULL);
    got = fetch(d_dx, nx);
    name[strlen(name) - strlen(": saved statistics")] = '\0';
    strcat(name, ": dx");
    agree(name, got, dx, nx, TOL,
          fmax(1e-2 * max_abs(dx, nx),
               cancelled(max_abs(save + c, (size_t) c),
                         affine ? gamma : NULL, (size_t) c, dy, nx)));
    free(got);

    if (affine) {
        got = fetch(d_dg, (size_t) c);
        strcat(name, ", dgamma");
        agree(name, got, dg, (size_t) c, TOL, sqrt((double) n * s));
        free(got);
        got = fetch(d_db, (size_t) c);
        strcat(name, ", dbeta");
        agree(name, got, db, (size_t) c, TOL, sqrt((double) n * s));
        free(got);
    }

    if (batch) {
        /* running statistics, in place as the layer does; the count is
         * an int64 in two floats, past 2^24 */
        run = malloc((2 * (size_t) c + 2) * sizeof(float));
        memcpy(run, mean, (size_t) c * sizeof(float));
        memcpy(run + c, var, (size_t) c * sizeof(float));
        lt_i64_set(run + 2 * c, 16777215);
        d_run = dev_floats(run, 2 * (size_t) c + 2);
        for (i = 0; i < 2; i++) {
            CPU->batchnorm_running(CPU, c, 0.1f, save, run, run + c,
                                   run + 2 * c, run, run + c, run + 2 * c);
            GPU->batchnorm_running(GPU, c, 0.1f, d_save, d_run, d_run + c,
                                   d_run + 2 * c, d_run, d_run + c,
                                   d_run + 2 * c);
        }
        grun = fetch(d_run, 2 * (size_t) c + 2);
        snprintf(name, sizeof(name), "BatchNorm [%d, %d, %d]%s: running "
                 "statistics", n, c, s, affine ? "" : " without affine");
        agree(name, grun, run, 2 * (size_t) c, TOL, 1.0);
        ok(lt_i64_get(grun + 2 * c) == 16777217
           && lt_i64_get(run + 2 * c) == 16777217,
           "num_batches_tracked counts past 2^24 on both");
        free(grun);
        free(run);
        GPU->free(GPU, d_run);
    }

    free(x);
    free(y);
    free(gamma);
    free(beta);
    free(mean);
    free(var);
    free(save);
    free(dy);
    free(dx);
    free(dg);
    free(db);
    GPU->free(GPU, d_x);
    GPU->free(GPU, d_y);
    GPU->free(GPU, d_gamma);
    GPU->free(GPU, d_beta);
    GPU->free(GPU, d_mean);
    GPU->free(GPU, d_var);
    GPU->free(GPU, d_save);
    GPU->free(GPU, d_dy);
    GPU->free(GPU, d_dx);
    GPU->free(GPU, d_dg);
    GPU->free(GPU, d_db);
}


static void
check_layernorm(int rows, int d, int affine)
{
    float   *x, *y, *gamma, *beta, *save, *dy, *dx, *dg, *db, *got;
    float   *d_x, *d_y, *d_gamma, *d_beta, *d_save, *d_dy, *d_dx, *d_dg;
    float   *d_db;
    size_t   nx;
    char     name[160];

    nx = (size_t) rows * d;
    x = host_rand(nx, -2, 3);
    y = malloc(nx * sizeof(float));
    gamma = host_rand((size_t) d, 0.5f, 1.5f);
    beta = host_rand((size_t) d, -1, 1);
    save = malloc(2 * (size_t) rows * sizeof(float));
    dy = host_rand(nx, -1, 1);
    dx = malloc(nx * sizeof(float));
    dg = malloc((size_t) d * sizeof(float));
    db = malloc((size_t) d * sizeof(float));

    d_x = dev_floats(x, nx);
    d_y = dev_floats(NULL, nx);
    d_gamma = dev_floats(gamma, (size_t) d);
    d_beta = dev_floats(beta, (size_t) d);
    d_save = dev_floats(NULL, 2 * (size_t) rows);
    d_dy = dev_floats(dy, nx);
    d_dx = dev_floats(NULL, nx);
    d_dg = dev_floats(NULL, (size_t) d);
    d_db = dev_floats(NULL, (size_t) d);

    snprintf(name, sizeof(name), "LayerNorm %d rows of %d%s", rows, d,
             affine ? "" : " without affine");

    CPU->layernorm_forward(CPU, rows, d, x, y, affine ? gamma : NULL,
                           affine ? beta : NULL, 1e-5f, save);
    GPU->layernorm_forward(GPU, rows, d, d_x, d_y, affine ? d_gamma : NULL,
                           affine ? d_beta : NULL, 1e-5f, d_save);
    got = fetch(d_y, nx);
    agree(name, got, y, nx, TOL, 1.0);
    free(got);
    got = fetch(d_save, 2 * (size_t) rows);
    strcat(name, ": saved statistics");
    agree(name, got, save, 2 * (size_t) rows, TOL, 1.0);
    free(got);

    GPU->to_device(GPU, d_save, save, 2 * (size_t) rows * sizeof(float));
    CPU->layernorm_backward(CPU, rows, d, x, dy, dx, affine ? gamma : NULL,
                            save, affine ? dg : NULL, affine ? db : NULL);
    GPU->layernorm_backward(GPU, rows, d, d_x, d_dy, d_dx,
                            affine ? d_gamma : NULL, d_save,
                            affine ? d_dg : NULL, affine ? d_db : NULL);
    got = fetch(d_dx, nx);
    name[strlen(name) - strlen(": saved statistics")] = '\0';
    strcat(name, ": dx");
    agree(name, got, dx, nx, TOL,
          fmax(1e-2 * max_abs(dx, nx),
               cancelled(max_odd(save, (size_t) rows),
                         affine ? gamma : NULL, (size_t) d, dy, nx)));
    free(got);

    if (affine) {
        got = fetch(d_dg, (size_t) d);
        strcat(name, ", dgamma");
        agree(name, got, dg, (size_t) d, TOL, sqrt((double) rows));
        free(got);
        got = fetch(d_db, (size_t) d);
        strcat(name, ", dbeta");
        agree(name, got, db, (size_t) d, TOL, sqrt((double) rows));
        free(got);
    }

    free(x);
    free(y);
    free(gamma);
    free(beta);
    free(save);
    free(dy);
    free(dx);
    free(dg);
    free(db);
    GPU->free(GPU, d_x);
    GPU->free(GPU, d_y);
    GPU->free(GPU, d_gamma);
    GPU->free(GPU, d_beta);
    GPU->free(GPU, d_save);
    GPU->free(GPU, d_dy);
    GPU->free(GPU, d_dx);
    GPU->free(GPU, d_dg);
    GPU->free(GPU, d_db);
}


static void
test_norms(void)
{
    static const int  bn[][3] = {
        { 64, 16, 1 }, { 8, 6, 49 }, { 2, 32, 1024 }, { 300, 4, 1 },
        { 3, 1, 5 }, { 1, 3, 2 }
    };
    static const int  ln[][2] = {
        { 64, 10 }, { 7, 512 }, { 300, 33 }, { 2, 4096 }, { 5, 2 }
    };
    size_t  i;

    for (i = 0; i < sizeof(bn) / sizeof(bn[0]); i++) {
        check_batchnorm(bn[i][0], bn[i][1], bn[i][2], 1, 1);
        check_batchnorm(bn[i][0], bn[i][1], bn[i][2], 1, 0);
        check_batchnorm(bn[i][0], bn[i][1], bn[i][2], 0, 1);
    }

    for (i = 0; i < sizeof(ln) / sizeof(ln[0]); i++) {
        check_layernorm(ln[i][0], ln[i][1], 1);
        check_layernorm(ln[i][0], ln[i][1], 0);
    }
}


/* -- Embedding ------------------------------------------------------------- */

static void
test_embedding(void)
{
    float   *idx, *w, *y, *dy, *dw, *got, *d_idx, *d_w, *d_y, *d_dy, *d_dw;
    size_t   i;
    int      n, num, dim, skip;

    n = 5000;
    num = 1000;
    dim = 16;
    idx = malloc((size_t) n * sizeof(float));
    for (i = 0; i < (size_t) n; i++) {
        /* repeats, and row 0 often (padding_idx below) */
        idx[i] = (float) (i % 7 == 0 ? 0 : (i * 37) % (size_t) num);
    }
    w = host_rand((size_t) num * dim, -1, 1);
    y = malloc((size_t) n * dim * sizeof(float));
    dy = host_rand((size_t) n * dim, -1, 1);
    dw = malloc((size_t) num * dim * sizeof(float));

    d_idx = dev_floats(idx, (size_t) n);
    d_w = dev_floats(w, (size_t) num * dim);
    d_y = dev_floats(NULL, (size_t) n * dim);
    d_dy = dev_floats(dy, (size_t) n * dim);
    d_dw = dev_floats(NULL, (size_t) num * dim);

    CPU->embedding_forward(CPU, idx, n, w, dim, y);
    GPU->embedding_forward(GPU, d_idx, n, d_w, dim, d_y);
    got = fetch(d_y, (size_t) n * dim);
    ok(memcmp(got, y, (size_t) n * dim * sizeof(float)) == 0,
       "Embedding lookup: the same rows");
    free(got);

    for (skip = -1; skip <= 0; skip++) {
        CPU->embedding_backward(CPU, idx, n, dy, dim, num, skip, dw);
        GPU->embedding_backward(GPU, d_idx, n, d_dy, dim, num, skip, d_dw);
        got = fetch(d_dw, (size_t) num * dim);
        agree(skip < 0 ? "Embedding gradient (scatter-add)"
                       : "Embedding gradient, padding_idx 0",
              got, dw, (size_t) num * dim, TOL, 1.0);
        if (skip == 0) {
            for (i = 0; i < (size_t) dim && got[i] == 0.0f; i++) {
            }
            ok(i == (size_t) dim, "... whose row stays zero");
        }
        free(got);
    }

    free(idx);
    free(w);
    free(y);
    free(dy);
    free(dw);
    GPU->free(GPU, d_idx);
    GPU->free(GPU, d_w);
    GPU->free(GPU, d_y);
    GPU->free(GPU, d_dy);
    GPU->free(GPU, d_dw);
}


/* -- whole nets ------------------------------------------------------------ */

static lt_layer_spec *
add(lt_model_spec *s, lt_layer_kind kind, int in, int out)
{
    lt_layer_spec  *l;

    l = &s->layers[s->nlayers++];
    memset(l, 0, sizeof(*l));
    l->kind = kind;
    l->in = in;
    l->out = out;

    return l;
}


static void
optim(lt_model_spec *s, lt_loss_kind loss, lt_optim_kind kind, float lr)
{
    s->loss = loss;
    s->optim.kind = kind;
    s->optim.lr = lr;
    s->optim.beta1 = 0.9f;
    s->optim.beta2 = 0.999f;
    s->optim.eps = 1e-8f;
    s->optim.momentum = kind == LT_OPTIM_SGD ? 0.9f : 0.0f;
}


static void
test_nets(void)
{
    lt_model_spec   s;
    lt_layer_spec  *l;

    /* LeNet-like on 1 x 12 x 12: Conv2d, ReLU, MaxPool2d, Conv2d with
     * groups, AvgPool2d, Flatten, Linear */
    memset(&s, 0, sizeof(s));
    s.input.ndim = 3;
    s.input.d[0] = 1;
    s.input.d[1] = 12;
    s.input.d[2] = 12;
    l = add(&s, LT_LAYER_CONV2D, 1, 4);
    l->kernel[0] = l->kernel[1] = 3;
    l->padding[0] = l->padding[1] = 1;
    add(&s, LT_LAYER_RELU, 0, 0);
    l = add(&s, LT_LAYER_MAXPOOL2D, 0, 0);
    l->kernel[0] = l->kernel[1] = 2;
    l = add(&s, LT_LAYER_CONV2D, 4, 8);
    l->kernel[0] = l->kernel[1] = 3;
    l->groups = 2;
    add(&s, LT_LAYER_TANH, 0, 0);
    l = add(&s, LT_LAYER_AVGPOOL2D, 0, 0);
    l->kernel[0] = l->kernel[1] = 2;
    add(&s, LT_LAYER_FLATTEN, 0, 0);
    add(&s, LT_LAYER_LINEAR, 32, 5);
    optim(&s, LT_LOSS_CE, LT_OPTIM_SGD, 0.05f);
    check_train("CNN: Conv2d, MaxPool2d, grouped Conv2d, AvgPool2d, SGD "
                "momentum", &s, 16, 10, 0, 0);

    /* Conv2d, BatchNorm2d, ReLU, AdaptiveAvgPool2d, Linear */
    memset(&s, 0, sizeof(s));
    s.input.ndim = 3;
    s.input.d[0] = 3;
    s.input.d[1] = 9;
    s.input.d[2] = 9;
    l = add(&s, LT_LAYER_CONV2D, 3, 6);
    l->kernel[0] = l->kernel[1] = 3;
    l->stride[0] = l->stride[1] = 2;
    l->no_bias = 1;
    l = add(&s, LT_LAYER_BATCHNORM2D, 6, 0);
    l->a = 1e-5f;
    l->b = 0.1f;
    add(&s, LT_LAYER_RELU, 0, 0);
    l = add(&s, LT_LAYER_ADAPTIVE_AVGPOOL2D, 0, 0);
    l->dim[0] = l->dim[1] = 2;
    add(&s, LT_LAYER_FLATTEN, 0, 0);
    add(&s, LT_LAYER_LINEAR, 24, 3);
    optim(&s, LT_LOSS_CE, LT_OPTIM_ADAM, 0.01f);
    check_train("Conv2d (no bias), BatchNorm2d, AdaptiveAvgPool2d, Adam", &s,
                8, 10, 0, 0);

    /* Conv1d, GELU, MaxPool1d, Flatten, Linear, LayerNorm */
    memset(&s, 0, sizeof(s));
    s.input.ndim = 2;
    s.input.d[0] = 2;
    s.input.d[1] = 20;
    l = add(&s, LT_LAYER_CONV1D, 2, 4);
    l->kernel[1] = 5;
    l->padding[1] = 2;
    l->dilation[1] = 1;
    add(&s, LT_LAYER_GELU, 0, 0);
    l = add(&s, LT_LAYER_MAXPOOL1D, 0, 0);
    l->kernel[1] = 2;
    add(&s, LT_LAYER_FLATTEN, 0, 0);
    add(&s, LT_LAYER_LINEAR, 40, 6);
    l = add(&s, LT_LAYER_LAYERNORM, 0, 0);
    l->norm.ndim = 1;
    l->norm.d[0] = 6;
    l->a = 1e-5f;
    add(&s, LT_LAYER_LINEAR, 6, 1);
    optim(&s, LT_LOSS_MSE, LT_OPTIM_ADAMW, 0.01f);
    s.optim.weight_decay = 0.01f;
    check_train("Conv1d, GELU, MaxPool1d, LayerNorm, AdamW", &s, 16, 10, 0,
                1);

    /* Linear, BatchNorm1d, LeakyReLU, Dropout, ELU, SiLU, Softplus */
    memset(&s, 0, sizeof(s));
    add(&s, LT_LAYER_LINEAR, 10, 16);
    l = add(&s, LT_LAYER_BATCHNORM1D, 16, 0);
    l->a = 1e-5f;
    l->b = 0.1f;
    l = add(&s, LT_LAYER_LEAKY_RELU, 0, 0);
    l->a = 0.1f;
    l = add(&s, LT_LAYER_DROPOUT, 0, 0);
    l->a = 0.25f;
    add(&s, LT_LAYER_LINEAR, 16, 16);
    l = add(&s, LT_LAYER_ELU, 0, 0);
    l->a = 1.0f;
    add(&s, LT_LAYER_LINEAR, 16, 8);
    add(&s, LT_LAYER_SILU, 0, 0);
    add(&s, LT_LAYER_LINEAR, 8, 4);
    l = add(&s, LT_LAYER_SOFTPLUS, 0, 0);
    l->a = 1.0f;
    l->b = 20.0f;
    optim(&s, LT_LOSS_MSE, LT_OPTIM_SGD, 0.05f);
    check_train("BatchNorm1d, LeakyReLU, Dropout, ELU, SiLU, Softplus, SGD",
                &s, 32, 10, 0, 0);

    /* Embedding, Flatten, Linear */
    memset(&s, 0, sizeof(s));
    s.input.ndim = 1;
    s.input.d[0] = 6;
    l = add(&s, LT_LAYER_EMBEDDING, 50, 8);
    l->padding_idx = 1;                 /* index 0 */
    add(&s, LT_LAYER_FLATTEN, 0, 0);
    add(&s, LT_LAYER_LINEAR, 48, 4);
    optim(&s, LT_LOSS_CE, LT_OPTIM_ADAM, 0.01f);
    check_train("Embedding (padding_idx 0), Flatten, Linear, Adam", &s, 32,
                10, 0, 0);
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

    test_act_arg();
    test_dropout();
    test_conv_ops();
    test_pools();
    test_norms();
    test_embedding();
    test_nets();

    if (!ok(gpu_status(GPU, &err) == 0, "no failure was recorded")) {
        diag("%s", err.msg);
    }

    gpu_close(GPU);

    return done_testing();
}
