/*
 * lt_backend_cuda.h: the CUDA backend (cuBLAS for products, small kernels
 * for everything else), behind the operation table of lt_backend.h.
 *
 * Plain C: no CUDA type appears here, so C code (the nginx module, the
 * tests) includes it without the CUDA headers.  Link with
 * build/cuda/liblt_cuda.a before build/core/liblt.a, and with
 *     -L$CUDA_HOME/lib64 -lcublas -lcudart -lstdc++ -lm
 *     -Wl,-rpath,$CUDA_HOME/lib64
 *
 * FORK: CUDA does not survive fork().  A process that has initialised the
 * driver (any call below, lt_backend_cuda_device_count included) and then
 * forks leaves children that cannot use CUDA at all.  In nginx, call these
 * in init_process (each worker), never at configuration time in the master.
 *
 * One backend object serves one user at a time (one worker, or one thread
 * at a time): it owns a cuBLAS handle, one stream and a small scratch area.
 * Its ops are queued on that stream in order; loss_* and to_host wait for
 * the stream, because the host needs their result.  Memory from be->alloc
 * is device memory: host code must not touch it except through to_device,
 * to_host and copy.
 *
 * The ops return nothing, so a failure inside one (a kernel launch, a
 * cuBLAS call, a copy) is recorded in the backend: the first one sticks
 * until lt_backend_cuda_status reports it.  A loss whose result could not
 * be fetched returns NaN.
 */
#ifndef LT_BACKEND_CUDA_H
#define LT_BACKEND_CUDA_H

#include "lt_backend.h"
#include "lt_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices; 0 when there is no GPU or no driver (the
 * error is swallowed).  Initialises the driver: not before fork. */
int lt_backend_cuda_device_count(void);

/* A backend on device number `device`; allow_tf32 lets cuBLAS use TF32
 * tensor cores for float products (about 10 significant bits in the
 * inputs: faster, not bit-comparable with the CPU).  NULL with a message
 * in err when there is no such device or it cannot be set up, e.g.
 * "no CUDA device (cudaGetDeviceCount: ...)". */
const lt_backend *lt_backend_cuda_open(int device, int allow_tf32,
    lt_err *err);

/* Waits for queued work, releases the handle, stream and scratch.  Memory
 * handed out by be->alloc must have been given back with be->free first.
 * NULL is ignored. */
void lt_backend_cuda_close(const lt_backend *be);

/* Waits for every queued op, then returns 0, or -1 with the first failure
 * since the last call in err (the failure is then forgotten).  Call it
 * after a step when the caller must know the step really happened. */
int lt_backend_cuda_status(const lt_backend *be, lt_err *err);

/* The device number the backend runs on. */
int lt_backend_cuda_device(const lt_backend *be);

#ifdef __cplusplus
}
#endif

#endif /* LT_BACKEND_CUDA_H */
