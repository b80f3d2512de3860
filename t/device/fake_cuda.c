/*
 * fake_cuda.c: a stand-in for build/ngx_http_learn_cuda.so on machines
 * without a GPU, so that the module's device path (the per-worker copies,
 * their refresh when the zone moves, the write-back, the fall-back to the
 * CPU) is tested everywhere.  t/110-device.t loads it with
 * learn_cuda_library.  It exports the functions of lt_backend_cuda.h;
 * the arithmetic is the CPU backend's.
 *
 * "Device" memory is host memory, but fresh allocations are filled with
 * NaN: a buffer the module forgot to upload poisons the answers.
 *
 *   device 0   works
 *   device 1   works for 3 optimizer updates, then fails (status reports
 *              it), as a GPU that falls off the bus would
 *   device 2+  do not exist
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_backend.h"
#include "lt_tensor.h"
#include "lt_backend_cuda.h"

#define FAKE_DEVICES        2
#define FAKE_FAIL_AFTER     3

typedef struct {
    lt_backend  be;
    int         device;
    int         updates;
    int         failed;
} fake_ctx;


static fake_ctx *
fake_of(const lt_backend *be)
{
    return (fake_ctx *) be->ctx;
}


static void *
fake_alloc(const lt_backend *be, size_t bytes)
{
    float   *p;
    size_t   i, n;

    n = bytes / sizeof(float) + 1;
    p = malloc(n * sizeof(float));

    for (i = 0; p != NULL && i < n; i++) {
        p[i] = NAN;
    }

    return p;
}


static void
fake_free(const lt_backend *be, void *p)
{
    free(p);
}


static void
fake_copy(const lt_backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes) {
        memcpy(dst, src, bytes);
    }
}


static void
fake_updated(const lt_backend *be)
{
    fake_ctx  *c = fake_of(be);

    if (c->device == 1 && ++c->updates > FAKE_FAIL_AFTER) {
        c->failed = 1;
    }
}


static void
fake_sgd(const lt_backend *be, const float *in, float *out, const float *grad,
    const float *velocity_in, float *velocity_out, size_t n, float lr,
    float momentum, float weight_decay, int first_step)
{
    lt_backend_cpu()->sgd(be, in, out, grad, velocity_in, velocity_out, n,
                          lr, momentum, weight_decay, first_step);
    fake_updated(be);
}


static void
fake_adam(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *m_in, const float *v_in, float *m_out,
    float *v_out, size_t n, float lr, float beta1, float beta2, float eps,
    float weight_decay, int64_t step)
{
    lt_backend_cpu()->adam(be, in, out, grad, m_in, v_in, m_out, v_out, n,
                           lr, beta1, beta2, eps, weight_decay, step);
    fake_updated(be);
}


/* The other optimizers count as updates too, so device 1 fails under
 * any of them; the losses and clipping are the CPU table's as they are. */
static void
fake_sgd_ex(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float momentum, float dampening, float weight_decay,
    int nesterov, int first_step)
{
    lt_backend_cpu()->sgd_ex(be, in, out, grad, state_in, state_out, n, lr,
                             momentum, dampening, weight_decay, nesterov,
                             first_step);
    fake_updated(be);
}


static void
fake_adam_ex(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float beta1, float beta2, float eps, float weight_decay,
    int decoupled, int amsgrad, int64_t step)
{
    lt_backend_cpu()->adam_ex(be, in, out, grad, state_in, state_out, n, lr,
                              beta1, beta2, eps, weight_decay, decoupled,
                              amsgrad, step);
    fake_updated(be);
}


static void
fake_rmsprop(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float alpha, float eps, float weight_decay, float momentum,
    int centered)
{
    lt_backend_cpu()->rmsprop(be, in, out, grad, state_in, state_out, n, lr,
                              alpha, eps, weight_decay, momentum, centered);
    fake_updated(be);
}


static void
fake_adagrad(const lt_backend *be, const float *in, float *out,
    const float *grad, const float *state_in, float *state_out, size_t n,
    float lr, float lr_decay, float weight_decay, float eps, int64_t step)
{
    lt_backend_cpu()->adagrad(be, in, out, grad, state_in, state_out, n, lr,
                              lr_decay, weight_decay, eps, step);
    fake_updated(be);
}


int
lt_backend_cuda_device_count(void)
{
    return FAKE_DEVICES;
}


const lt_backend *
lt_backend_cuda_open(int device, int allow_tf32, lt_err *err)
{
    fake_ctx  *c;

    if (device < 0 || device >= FAKE_DEVICES) {
        snprintf(err->msg, sizeof(err->msg), "no CUDA device %d (the fake"
                 " has %d, numbered from 0)", device, FAKE_DEVICES);
        return NULL;
    }

    c = calloc(1, sizeof(fake_ctx));
    if (c == NULL) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return NULL;
    }

    c->be = *lt_backend_cpu();
    c->be.name = "cuda";
    c->be.alloc = fake_alloc;
    c->be.free = fake_free;
    c->be.to_device = fake_copy;
    c->be.to_host = fake_copy;
    c->be.copy = fake_copy;
    c->be.sgd = fake_sgd;
    c->be.adam = fake_adam;
    c->be.sgd_ex = fake_sgd_ex;
    c->be.adam_ex = fake_adam_ex;
    c->be.rmsprop = fake_rmsprop;
    c->be.adagrad = fake_adagrad;
    c->be.ctx = c;
    c->device = device;

    return &c->be;
}


void
lt_backend_cuda_close(const lt_backend *be)
{
    if (be != NULL) {
        free(fake_of(be));
    }
}


int
lt_backend_cuda_status(const lt_backend *be, lt_err *err)
{
    if (!fake_of(be)->failed) {
        return 0;
    }

    snprintf(err->msg, sizeof(err->msg), "fake device %d failed",
             fake_of(be)->device);

    return -1;
}


int
lt_backend_cuda_device(const lt_backend *be)
{
    return fake_of(be)->device;
}
