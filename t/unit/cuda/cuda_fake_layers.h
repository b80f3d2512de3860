/*
 * cuda_fake_layers.h: the harness's stand-ins for the layer ops whose
 * GPU results round differently from the CPU's (LT_CUDA_TEST_FAKE
 * only): the activations with arguments and the norms in double,
 * rounded once; the channel sums and Embedding's scatter-add in the
 * opposite order.  The ops the GPU computes bit for bit as the CPU
 * (im2col, col2im, pools, lookups, Dropout's mask) stay the CPU's.
 * Included by cuda_test.h.
 */
#ifndef LT_CUDA_FAKE_LAYERS_H
#define LT_CUDA_FAKE_LAYERS_H

#define FAKE_PI  3.14159265358979323846


static double
fake_sigmoid(double x)
{
    return 1.0 / (1.0 + exp(-x));
}


static TAP_UNUSED void
fake_act_arg_forward(const lt_backend *be, lt_act act, float a, float b,
    const float *x, float *y, size_t n)
{
    double  v, r;
    size_t  i;

    for (i = 0; i < n; i++) {
        v = x[i];

        switch (act) {
        case LT_ACT_GELU:
            r = 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
            break;
        case LT_ACT_GELU_TANH:
            r = 0.5 * v * (1.0 + tanh(sqrt(2.0 / FAKE_PI)
                                      * (v + 0.044715 * v * v * v)));
            break;
        case LT_ACT_LEAKY_RELU:
            r = v > 0.0 ? v : a * v;
            break;
        case LT_ACT_ELU:
            r = v > 0.0 ? v : a * expm1(v);
            break;
        case LT_ACT_SILU:
            r = v * fake_sigmoid(v);
            break;
        case LT_ACT_SOFTPLUS:
            r = v * a > b ? v : log1p(exp(v * a)) / a;
            break;
        default:
            r = NAN;
        }

        y[i] = (float) r;
    }
}


static TAP_UNUSED void
fake_act_arg_backward(const lt_backend *be, lt_act act, float a, float b,
    const float *x, const float *y, const float *dy, float *dx, size_t n)
{
    double  v, t, s, k, r;
    size_t  i;

    k = sqrt(2.0 / FAKE_PI);

    for (i = 0; i < n; i++) {
        v = x[i];

        switch (act) {
        case LT_ACT_GELU:
            r = 0.5 * (1.0 + erf(v / sqrt(2.0)))
                + v * exp(-0.5 * v * v) / sqrt(2.0 * FAKE_PI);
            break;
        case LT_ACT_GELU_TANH:
            t = tanh(k * (v + 0.044715 * v * v * v));
            r = 0.5 * (1.0 + t)
                + 0.5 * v * (1.0 - t * t) * k * (1.0 + 3 * 0.044715 * v * v);
            break;
        case LT_ACT_LEAKY_RELU:
            r = v > 0.0 ? 1.0 : a;
            break;
        case LT_ACT_ELU:
            r = v > 0.0 ? 1.0 : (double) y[i] + a;
            break;
        case LT_ACT_SILU:
            s = fake_sigmoid(v);
            r = s * (1.0 + v * (1.0 - s));
            break;
        case LT_ACT_SOFTPLUS:
            r = v * a > b ? 1.0 : fake_sigmoid(v * a);
            break;
        default:
            r = NAN;
        }

        dx[i] = (float) (dy[i] * r);
    }
}


static TAP_UNUSED void
fake_channel_sum(const lt_backend *be, float *out, const float *g, int n,
    int c, int s)
{
    double  sum;
    int     i, j, k;

    for (j = 0; j < c; j++) {
        sum = 0.0;
        for (i = n - 1; i >= 0; i--) {
            for (k = s - 1; k >= 0; k--) {
                sum += g[((size_t) i * c + j) * s + k];
            }
        }
        out[j] = (float) sum;
    }
}


/* x [n, c, s]: value k of channel j */
#define FAKE_BN(p, k)  (p)[(((size_t) (k) / s) * c + j) * s + (k) % s]

static TAP_UNUSED void
fake_batchnorm_forward(const lt_backend *be, int n, int c, int s,
    const float *x, float *y, const float *gamma, const float *beta,
    const float *mean, const float *var, float eps, int batch, float *save)
{
    double  mu, sq, inv, d;
    size_t  m, k;
    int     j;

    m = (size_t) n * s;

    for (j = 0; j < c; j++) {
        if (batch) {
            mu = 0.0;
            for (k = m; k-- > 0; ) {
                mu += FAKE_BN(x, k);
            }
            mu /= (double) m;

            sq = 0.0;
            for (k = m; k-- > 0; ) {
                d = FAKE_BN(x, k) - mu;
                sq += d * d;
            }
            inv = 1.0 / sqrt(sq / (double) m + eps);
            save[2 * c + j] = (float) (m > 1 ? sq / (double) (m - 1) : sq);

        } else {
            mu = mean[j];
            inv = 1.0 / sqrt((double) var[j] + eps);
        }

        save[j] = (float) mu;
        save[c + j] = (float) inv;

        for (k = 0; k < m; k++) {
            FAKE_BN(y, k) = (float) ((FAKE_BN(x, k) - mu) * inv
                                     * (gamma ? gamma[j] : 1.0)
                                     + (beta ? beta[j] : 0.0));
        }
    }
}


static TAP_UNUSED void
fake_batchnorm_backward(const lt_backend *be, int n, int c, int s,
    const float *x, const float *dy, float *dx, const float *gamma,
    const float *save, int batch, float *dgamma, float *dbeta)
{
    double  mu, inv, sd, sdx, g;
    size_t  m, k;
    int     j;

    m = (size_t) n * s;

    for (j = 0; j < c; j++) {
        mu = save[j];
        inv = save[c + j];
        sd = 0.0;
        sdx = 0.0;

        for (k = m; k-- > 0; ) {
            sd += FAKE_BN(dy, k);
            sdx += FAKE_BN(dy, k) * (FAKE_BN(x, k) - mu) * inv;
        }

        if (dgamma != NULL) {
            dgamma[j] = (float) sdx;
        }
        if (dbeta != NULL) {
            dbeta[j] = (float) sd;
        }
        if (dx == NULL) {
            continue;
        }

        g = (gamma ? gamma[j] : 1.0) * inv;
        for (k = 0; k < m; k++) {
            FAKE_BN(dx, k) = (float) (batch
                ? g * (FAKE_BN(dy, k) - sd / (double) m
                       - (FAKE_BN(x, k) - mu) * inv * sdx / (double) m)
                : g * FAKE_BN(dy, k));
        }
    }
}

#undef FAKE_BN


static TAP_UNUSED void
fake_layernorm_forward(const lt_backend *be, int rows, int d,
    const float *x, float *y, const float *gamma, const float *beta,
    float eps, float *save)
{
    const float  *p;
    double        mu, sq, inv, t, v;
    int           i, k;

    for (i = 0; i < rows; i++) {
        p = x + (size_t) i * d;

        mu = 0.0;
        for (k = d - 1; k >= 0; k--) {
            mu += p[k];
        }
        mu /= d;

        sq = 0.0;
        for (k = d - 1; k >= 0; k--) {
            t = p[k] - mu;
            sq += t * t;
        }
        inv = 1.0 / sqrt(sq / d + eps);
        save[2 * i] = (float) mu;
        save[2 * i + 1] = (float) inv;

        for (k = 0; k < d; k++) {
            v = (p[k] - mu) * inv;
            if (gamma != NULL) {
                v = v * gamma[k] + beta[k];
            }
            y[(size_t) i * d + k] = (float) v;
        }
    }
}


static TAP_UNUSED void
fake_layernorm_backward(const lt_backend *be, int rows, int d,
    const float *x, const float *dy, float *dx, const float *gamma,
    const float *save, float *dgamma, float *dbeta)
{
    const float  *p, *g;
    double        mu, inv, xh, dxh, s1, s2, sg, sb;
    int           i, k;

    for (k = 0; dgamma != NULL && k < d; k++) {
        sg = 0.0;
        sb = 0.0;
        for (i = rows - 1; i >= 0; i--) {
            xh = (x[(size_t) i * d + k] - (double) save[2 * i])
                 * save[2 * i + 1];
            sg += dy[(size_t) i * d + k] * xh;
            sb += dy[(size_t) i * d + k];
        }
        dgamma[k] = (float) sg;
        dbeta[k] = (float) sb;
    }

    for (i = 0; dx != NULL && i < rows; i++) {
        p = x + (size_t) i * d;
        g = dy + (size_t) i * d;
        mu = save[2 * i];
        inv = save[2 * i + 1];
        s1 = 0.0;
        s2 = 0.0;

        for (k = d - 1; k >= 0; k--) {
            xh = (p[k] - mu) * inv;
            dxh = gamma != NULL ? (double) g[k] * gamma[k] : g[k];
            s1 += dxh;
            s2 += dxh * xh;
        }

        for (k = 0; k < d; k++) {
            xh = (p[k] - mu) * inv;
            dxh = gamma != NULL ? (double) g[k] * gamma[k] : g[k];
            dx[(size_t) i * d + k] = (float) (inv * (dxh - s1 / d
                                                     - xh * s2 / d));
        }
    }
}


static TAP_UNUSED void
fake_embedding_backward(const lt_backend *be, const float *index, int n,
    const float *dy, int dim, int num, int skip, float *dw)
{
    int  i, j, k;

    memset(dw, 0, (size_t) num * dim * sizeof(float));

    for (i = n - 1; i >= 0; i--) {
        k = (int) index[i];
        if (k == skip) {
            continue;
        }
        for (j = 0; j < dim; j++) {
            dw[(size_t) k * dim + j] += dy[(size_t) i * dim + j];
        }
    }
}


static TAP_UNUSED void
fake_layer_ops(lt_backend *be)
{
    be->act_arg_forward = fake_act_arg_forward;
    be->act_arg_backward = fake_act_arg_backward;
    be->channel_sum = fake_channel_sum;
    be->batchnorm_forward = fake_batchnorm_forward;
    be->batchnorm_backward = fake_batchnorm_backward;
    be->layernorm_forward = fake_layernorm_forward;
    be->layernorm_backward = fake_layernorm_backward;
    be->embedding_backward = fake_embedding_backward;
}

#endif /* LT_CUDA_FAKE_LAYERS_H */
