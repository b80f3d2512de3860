/*
 * lt_backend_cpu_norm.c: the CPU backend's BatchNorm and LayerNorm.
 * Statistics are summed in double: a channel of a large batch holds
 * many values, and float sums would drift from PyTorch's.
 */
#include <math.h>
#include <string.h>

#include "lt_backend_cpu.h"
#include "lt_model.h"


void
lt_cpu_batchnorm_forward(const lt_backend *be, int n, int c, int s,
    const float *x, float *y, const float *gamma, const float *beta,
    const float *mean, const float *var, float eps, int batch, float *save)
{
    const float  *p;
    float        *q, mu, inv, g, b;
    double        sum, sq, d, m;
    int           i, j, k;

    m = (double) n * s;

    for (j = 0; j < c; j++) {
        if (batch) {
            sum = 0.0;
            for (i = 0; i < n; i++) {
                p = x + ((size_t) i * c + j) * s;
                for (k = 0; k < s; k++) {
                    sum += p[k];
                }
            }

            sum /= m;
            sq = 0.0;
            for (i = 0; i < n; i++) {
                p = x + ((size_t) i * c + j) * s;
                for (k = 0; k < s; k++) {
                    d = p[k] - sum;
                    sq += d * d;
                }
            }

            mu = (float) sum;
            inv = (float) (1.0 / sqrt(sq / m + eps));
            save[2 * c + j] = (float) (m > 1.0 ? sq / (m - 1.0) : sq);

        } else {
            mu = mean[j];
            inv = (float) (1.0 / sqrt((double) var[j] + eps));
        }

        save[j] = mu;
        save[c + j] = inv;
        g = gamma ? gamma[j] * inv : inv;
        b = beta ? beta[j] : 0.0f;

        for (i = 0; i < n; i++) {
            p = x + ((size_t) i * c + j) * s;
            q = y + ((size_t) i * c + j) * s;
            for (k = 0; k < s; k++) {
                q[k] = (p[k] - mu) * g + b;
            }
        }
    }
}


void
lt_cpu_batchnorm_backward(const lt_backend *be, int n, int c, int s,
    const float *x, const float *dy, float *dx, const float *gamma,
    const float *save, int batch, float *dgamma, float *dbeta)
{
    const float  *p, *d;
    float        *q, mu, inv, g, sd, sdx, m;
    double        sum_d, sum_dx;
    int           i, j, k;

    m = (float) n * s;

    for (j = 0; j < c; j++) {
        mu = save[j];
        inv = save[c + j];
        sum_d = 0.0;
        sum_dx = 0.0;

        for (i = 0; i < n; i++) {
            p = x + ((size_t) i * c + j) * s;
            d = dy + ((size_t) i * c + j) * s;
            for (k = 0; k < s; k++) {
                sum_d += d[k];
                sum_dx += d[k] * (p[k] - mu) * inv;
            }
        }

        if (dgamma != NULL) {
            dgamma[j] = (float) sum_dx;
        }
        if (dbeta != NULL) {
            dbeta[j] = (float) sum_d;
        }

        if (dx == NULL) {
            continue;
        }

        g = (gamma ? gamma[j] : 1.0f) * inv;
        sd = (float) (sum_d / m);
        sdx = (float) (sum_dx / m);

        for (i = 0; i < n; i++) {
            p = x + ((size_t) i * c + j) * s;
            d = dy + ((size_t) i * c + j) * s;
            q = dx + ((size_t) i * c + j) * s;

            for (k = 0; k < s; k++) {
                q[k] = batch ? g * (d[k] - sd - (p[k] - mu) * inv * sdx)
                             : g * d[k];
            }
        }
    }
}


void
lt_cpu_batchnorm_running(const lt_backend *be, int c, float momentum,
    const float *save, const float *mean_in, const float *var_in,
    const float *count_in, float *mean_out, float *var_out, float *count_out)
{
    int64_t  count;
    int      j;

    for (j = 0; j < c; j++) {
        mean_out[j] = (1.0f - momentum) * mean_in[j] + momentum * save[j];
        var_out[j] = (1.0f - momentum) * var_in[j]
                     + momentum * save[2 * c + j];
    }

    count = lt_i64_get(count_in) + 1;
    lt_i64_set(count_out, count < LT_I64_MAX ? count : LT_I64_MAX - 1);
}


void
lt_cpu_layernorm_forward(const lt_backend *be, int rows, int d,
    const float *x, float *y, const float *gamma, const float *beta,
    float eps, float *save)
{
    const float  *p;
    float        *q, mu, inv;
    double        sum, sq, t;
    int           i, k;

    for (i = 0; i < rows; i++) {
        p = x + (size_t) i * d;
        q = y + (size_t) i * d;

        sum = 0.0;
        for (k = 0; k < d; k++) {
            sum += p[k];
        }
        sum /= d;

        sq = 0.0;
        for (k = 0; k < d; k++) {
            t = p[k] - sum;
            sq += t * t;
        }

        mu = (float) sum;
        inv = (float) (1.0 / sqrt(sq / d + eps));
        save[2 * i] = mu;
        save[2 * i + 1] = inv;

        for (k = 0; k < d; k++) {
            q[k] = (p[k] - mu) * inv;
            if (gamma != NULL) {
                q[k] = q[k] * gamma[k] + beta[k];
            }
        }
    }
}


void
lt_cpu_layernorm_backward(const lt_backend *be, int rows, int d,
    const float *x, const float *dy, float *dx, const float *gamma,
    const float *save, float *dgamma, float *dbeta)
{
    const float  *p, *g;
    float        *q, mu, inv, xh, dxh, a, b;
    double        s1, s2;
    int           i, k;

    if (dgamma != NULL) {
        memset(dgamma, 0, (size_t) d * sizeof(float));
        memset(dbeta, 0, (size_t) d * sizeof(float));
    }

    for (i = 0; i < rows; i++) {
        p = x + (size_t) i * d;
        g = dy + (size_t) i * d;
        mu = save[2 * i];
        inv = save[2 * i + 1];
        s1 = 0.0;
        s2 = 0.0;

        for (k = 0; k < d; k++) {
            xh = (p[k] - mu) * inv;
            dxh = gamma != NULL ? g[k] * gamma[k] : g[k];
            s1 += dxh;
            s2 += dxh * xh;

            if (dgamma != NULL) {
                dgamma[k] += g[k] * xh;
                dbeta[k] += g[k];
            }
        }

        if (dx == NULL) {
            continue;
        }

        q = dx + (size_t) i * d;
        a = (float) (s1 / d);
        b = (float) (s2 / d);

        for (k = 0; k < d; k++) {
            xh = (p[k] - mu) * inv;
            dxh = gamma != NULL ? g[k] * gamma[k] : g[k];
            q[k] = inv * (dxh - a - xh * b);
        }
    }
}
