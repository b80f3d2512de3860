/*
 * cuda_fake_optim.h: the harness's stand-ins for the losses, optimizers
 * and clipping ops beyond the first ones (LT_CUDA_TEST_FAKE only).
 *
 * Each computes its CPU formula in double and rounds once at the end,
 * and sums in the opposite order: a GPU's fused multiply-adds and tree
 * sums round differently from the CPU too, so a tolerance that passes
 * here is one that does not demand bit-identical arithmetic.  Included by
 * cuda_test.h.
 */
#ifndef LT_CUDA_FAKE_OPTIM_H
#define LT_CUDA_FAKE_OPTIM_H


static TAP_UNUSED float
fake_loss_smooth_l1(const lt_backend *be, const float *pred,
    const float *target, float *grad, int rows, int cols, float beta,
    float scale)
{
    double  sum, d, a, l, g;
    size_t  i, n;

    n = (size_t) rows * cols;
    sum = 0.0;

    for (i = n; i-- > 0; ) {
        d = (double) pred[i] - target[i];
        a = fabs(d);

        if (a < beta) {
            l = 0.5 * d * d / beta;
            g = d / beta;

        } else {
            l = a - 0.5 * beta;
            g = d > 0.0 ? 1.0 : (d < 0.0 ? -1.0 : 0.0);
        }

        sum += l;
        grad[i] = (float) (scale * g / (double) n);
    }

    return (float) (scale * sum / (double) n);
}


static double
fake_softplus(double x)
{
    return fmax(x, 0.0) + log1p(exp(-fabs(x)));
}


static TAP_UNUSED float
fake_loss_bce_logits(const lt_backend *be, const float *logits,
    const float *target, const float *pos_weight, int npw, float *grad,
    int rows, int cols)
{
    double  sum, x, t, pw, s;
    size_t  i, n;

    n = (size_t) rows * cols;
    sum = 0.0;

    for (i = n; i-- > 0; ) {
        x = logits[i];
        t = target[i];
        pw = npw == 0 ? 1.0
                      : pos_weight[npw == 1 ? 0 : (int) (i % (size_t) cols)];
        s = 1.0 / (1.0 + exp(-x));

        sum += pw * t * fake_softplus(-x) + (1.0 - t) * fake_softplus(x);
        grad[i] = (float) (((1.0 - t) * s - pw * t * (1.0 - s)) / (double) n);
    }

    return (float) (sum / (double) n);
}


static TAP_UNUSED float
fake_loss_ce_smooth(const lt_backend *be, const float *logits,
    const int32_t *target_index, const float *target, float label_smoothing,
    float *grad, int rows, int cols)
{
    const float  *z;
    double        sum, max, se, lse, q, qsum, qz, keep, spread;
    int           r, j;

    keep = 1.0 - label_smoothing;
    spread = (double) label_smoothing / cols;
    sum = 0.0;

    for (r = rows - 1; r >= 0; r--) {
        z = logits + (size_t) r * cols;

        max = z[0];
        for (j = 1; j < cols; j++) {
            max = fmax(max, z[j]);
        }

        se = 0.0;
        for (j = cols - 1; j >= 0; j--) {
            se += exp(z[j] - max);
        }
        lse = max + log(se);

        qsum = 0.0;
        qz = 0.0;
        for (j = cols - 1; j >= 0; j--) {
            q = target_index != NULL
                ? keep * (j == target_index[r]) + spread
                : keep * target[(size_t) r * cols + j] + spread;
            qsum += q;
            qz += q * z[j];
        }

        for (j = 0; j < cols; j++) {
            q = target_index != NULL
                ? keep * (j == target_index[r]) + spread
                : keep * target[(size_t) r * cols + j] + spread;
            grad[(size_t) r * cols + j] =
                (float) ((exp(z[j] - max) / se * qsum - q) / rows);
        }

        sum += qsum * lse - qz;
    }

    return (float) (sum / rows);
}


static TAP_UNUSED double
fake_sum_squares(const lt_backend *be, const float *x, size_t n)
{
    double  s;
    size_t  i;

    s = 0.0;
    for (i = n; i-- > 0; ) {
        s += (double) x[i] * x[i];
    }

    return s;
}


static TAP_UNUSED void
fake_sgd_ex(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float momentum, float dampening, float weight_decay,
    int nesterov, int first_step)
{
    double  d, b;
    size_t  i;

    for (i = 0; i < n; i++) {
        d = grad[i] + (double) weight_decay * in[i];
        b = first_step ? d
                       : (double) momentum * state_in[i]
                         + (1.0 - dampening) * d;
        state_out[i] = (float) b;
        out[i] = (float) (in[i] - lr * (nesterov ? d + momentum * b : b));
    }
}


static TAP_UNUSED void
fake_adam_ex(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float beta1, float beta2, float eps, float weight_decay,
    int decoupled, int amsgrad, int64_t step)
{
    double  g, p, mi, vi, bc1, bc2;
    size_t  i;

    bc1 = 1.0 - pow(beta1, (double) step);
    bc2 = sqrt(1.0 - pow(beta2, (double) step));

    for (i = 0; i < n; i++) {
        g = grad[i];
        p = in[i];

        if (decoupled) {
            p *= 1.0 - (double) lr * weight_decay;

        } else {
            g += (double) weight_decay * p;
        }

        mi = beta1 * (double) state_in[i] + (1.0 - beta1) * g;
        vi = beta2 * (double) state_in[n + i] + (1.0 - beta2) * g * g;
        state_out[i] = (float) mi;
        state_out[n + i] = (float) vi;

        if (amsgrad) {
            vi = fmax(vi, state_in[2 * n + i]);
            state_out[2 * n + i] = (float) vi;
        }

        out[i] = (float) (p - lr / bc1 * (mi / (sqrt(vi) / bc2 + eps)));
    }
}


static TAP_UNUSED void
fake_rmsprop(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float alpha, float eps, float weight_decay, float momentum,
    int centered)
{
    double  g, sq, ga, avg, b;
    size_t  i, nb, ng;

    nb = n;
    ng = momentum > 0.0f ? 2 * n : n;

    for (i = 0; i < n; i++) {
        g = grad[i] + (double) weight_decay * in[i];
        sq = alpha * (double) state_in[i] + (1.0 - alpha) * g * g;
        state_out[i] = (float) sq;

        if (centered) {
            ga = state_in[ng + i] + (1.0 - alpha) * (g - state_in[ng + i]);
            state_out[ng + i] = (float) ga;
            avg = sqrt(sq - ga * ga) + eps;

        } else {
            avg = sqrt(sq) + eps;
        }

        if (momentum > 0.0f) {
            b = momentum * (double) state_in[nb + i] + g / avg;
            state_out[nb + i] = (float) b;
            out[i] = (float) (in[i] - lr * b);

        } else {
            out[i] = (float) (in[i] - lr * (g / avg));
        }
    }
}


static TAP_UNUSED void
fake_adagrad(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float lr_decay, float weight_decay, float eps, int64_t step)
{
    double  g, s, clr;
    size_t  i;

    clr = lr / (1.0 + (double) (step - 1) * lr_decay);

    for (i = 0; i < n; i++) {
        g = grad[i] + (double) weight_decay * in[i];
        s = state_in[i] + g * g;
        state_out[i] = (float) s;
        out[i] = (float) (in[i] - clr * (g / (sqrt(s) + eps)));
    }
}


/* The table entries above, over the CPU backend's. */
static TAP_UNUSED void
fake_optim_ops(lt_backend *be)
{
    be->loss_smooth_l1 = fake_loss_smooth_l1;
    be->loss_bce_logits = fake_loss_bce_logits;
    be->loss_ce_smooth = fake_loss_ce_smooth;
    be->sum_squares = fake_sum_squares;
    be->sgd_ex = fake_sgd_ex;
    be->adam_ex = fake_adam_ex;
    be->rmsprop = fake_rmsprop;
    be->adagrad = fake_adagrad;
}

#endif /* LT_CUDA_FAKE_OPTIM_H */
