/*
 * lt_backend_cuda.cu: the CUDA backend's table, its setup and teardown,
 * memory and the matrix product (cuBLAS).
 *
 * Everything runs on the backend's own stream, in the order the model code
 * calls the ops; the host waits only where it needs data back (to_device,
 * to_host, a loss).  Nothing here allocates after open except alloc.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_cuda.h"

/* cuBLAS's recommended workspace: 32 MiB on Hopper and later, 4 MiB
 * before.  Set once, so cuBLAS never allocates inside a product. */
#define LT_CUDA_BLAS_WS_HOPPER  (32u << 20)
#define LT_CUDA_BLAS_WS         (4u << 20)

/* cudaMalloc of 0 bytes gives NULL; callers expect a pointer. */
#define LT_CUDA_MIN_ALLOC       256


int
lt_cuda_check(lt_cuda_ctx *c, cudaError_t err, const char *what)
{
    if (err == cudaSuccess) {
        return 1;
    }

    if (!c->failed) {
        c->failed = 1;
        snprintf(c->failure, sizeof(c->failure), "%s: %s (CUDA error %d)",
                 what, cudaGetErrorString(err), (int) err);
    }

    return 0;
}


int
lt_cuda_check_blas(lt_cuda_ctx *c, cublasStatus_t st, const char *what)
{
    if (st == CUBLAS_STATUS_SUCCESS) {
        return 1;
    }

    if (!c->failed) {
        c->failed = 1;
        snprintf(c->failure, sizeof(c->failure), "%s: %s (cuBLAS status %d)",
                 what, cublasGetStatusString(st), (int) st);
    }

    return 0;
}


float
lt_cuda_fetch_result(lt_cuda_ctx *c)
{
    if (!lt_cuda_check(c, cudaMemcpyAsync(c->result_host, c->result,
                                          sizeof(float),
                                          cudaMemcpyDeviceToHost, c->stream),
                       "copying a loss to the host")
        || !lt_cuda_check(c, cudaStreamSynchronize(c->stream),
                          "waiting for a loss"))
    {
        return NAN;
    }

    return *c->result_host;
}


double
lt_cuda_fetch_result_d(lt_cuda_ctx *c)
{
    if (!lt_cuda_check(c, cudaMemcpyAsync(c->result_host_d, c->result_d,
                                          sizeof(double),
                                          cudaMemcpyDeviceToHost, c->stream),
                       "copying a sum to the host")
        || !lt_cuda_check(c, cudaStreamSynchronize(c->stream),
                          "waiting for a sum"))
    {
        return NAN;
    }

    return *c->result_host_d;
}


/* -- memory ------------------------------------------------------------- */

static void *
lt_cuda_alloc(const lt_backend *be, size_t bytes)
{
    void  *p;

    lt_cuda_enter(be);
    p = NULL;

    /* running out of memory is the caller's to report (it gets NULL);
     * the error is not sticky in CUDA, so clear it */
    if (cudaMalloc(&p, bytes ? bytes : LT_CUDA_MIN_ALLOC) != cudaSuccess) {
        (void) cudaGetLastError();
        return NULL;
    }

    return p;
}


static void
lt_cuda_free(const lt_backend *be, void *p)
{
    lt_cuda_ctx  *c;

    if (p != NULL) {
        /* no op queued on the stream may still use p */
        c = lt_cuda_enter(be);
        lt_cuda_check(c, cudaStreamSynchronize(c->stream), "waiting for the"
                      " stream before cudaFree");
        lt_cuda_check(c, cudaFree(p), "cudaFree");
    }
}


/*
 * Host to device.  The host may reuse or free src as soon as this returns
 * (the workspace converts class indices into one host buffer step after
 * step), so the copy is waited for: from pageable memory CUDA would return
 * early only after staging it anyway.
 */
static void
lt_cuda_to_device(const lt_backend *be, void *dst, const void *src,
    size_t bytes)
{
    lt_cuda_ctx  *c;

    c = lt_cuda_enter(be);

    if (bytes == 0) {
        return;
    }

    if (lt_cuda_check(c, cudaMemcpyAsync(dst, src, bytes,
                                         cudaMemcpyHostToDevice, c->stream),
                      "copying to the device"))
    {
        lt_cuda_check(c, cudaStreamSynchronize(c->stream),
                      "waiting for a copy to the device");
    }
}


/* Device to host, after every op queued before it: the host reads dst
 * when this returns. */
static void
lt_cuda_to_host(const lt_backend *be, void *dst, const void *src,
    size_t bytes)
{
    lt_cuda_ctx  *c;

    c = lt_cuda_enter(be);

    if (bytes == 0) {
        return;
    }

    if (lt_cuda_check(c, cudaMemcpyAsync(dst, src, bytes,
                                         cudaMemcpyDeviceToHost, c->stream),
                      "copying to the host"))
    {
        lt_cuda_check(c, cudaStreamSynchronize(c->stream),
                      "waiting for a copy to the host");
    }
}


/* Device to device, queued like a kernel. */
static void
lt_cuda_copy(const lt_backend *be, void *dst, const void *src, size_t bytes)
{
    lt_cuda_ctx  *c;

    c = lt_cuda_enter(be);

    if (bytes == 0) {
        return;
    }

    lt_cuda_check(c, cudaMemcpyAsync(dst, src, bytes,
                                     cudaMemcpyDeviceToDevice, c->stream),
                  "copy on the device");
}


/* -- gemm --------------------------------------------------------------- */

/*
 * cuBLAS is column-major.  A row-major matrix with row stride ld is the
 * same bytes as its transpose, column-major with leading dimension ld.
 * So the row-major C = op(A) op(B) is computed as the column-major
 * C^T = op(B)^T op(A)^T: swap the operands, swap m and n, keep each
 * operand's own transpose flag.  With beta = 0 cuBLAS does not read C
 * (it may hold NaN), as BLAS promises.
 */
static void
lt_cuda_gemm(const lt_backend *be, int trans_a, int trans_b, int m, int n,
    int k, float alpha, const float *a, int lda, const float *b, int ldb,
    float beta, float *c, int ldc)
{
    lt_cuda_ctx  *ctx;

    ctx = lt_cuda_enter(be);

    if (m <= 0 || n <= 0) {
        return;
    }

    lt_cuda_check_blas(ctx,
        cublasSgemm(ctx->cublas,
                    trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                    trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                    n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc),
        "cublasSgemm");
}


/* -- setup -------------------------------------------------------------- */

int
lt_backend_cuda_device_count(void)
{
    int  n;

    /* without a GPU this fails (35: driver too old / absent, 100: no
     * device) and may leave n alone */
    n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void) cudaGetLastError();
        return 0;
    }

    return n > 0 ? n : 0;
}


static void
lt_cuda_destroy(lt_cuda_ctx *c)
{
    if (c->stream != NULL) {
        (void) cudaStreamSynchronize(c->stream);
    }

    if (c->cublas != NULL) {
        (void) cublasDestroy(c->cublas);
    }

    if (c->cublas_ws != NULL) {
        (void) cudaFree(c->cublas_ws);
    }

    if (c->partial != NULL) {
        (void) cudaFree(c->partial);
    }

    if (c->result_host_d != NULL) {
        (void) cudaFreeHost(c->result_host_d);
    }

    if (c->stream != NULL) {
        (void) cudaStreamDestroy(c->stream);
    }

    (void) cudaGetLastError();
    free(c);
}


static int
lt_cuda_fail(lt_err *err, const char *what, cudaError_t rc)
{
    if (err != NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s: %s (CUDA error %d)",
                 what, cudaGetErrorString(rc), (int) rc);
    }

    (void) cudaGetLastError();
    return -1;
}


static int
lt_cuda_fail_blas(lt_err *err, const char *what, cublasStatus_t st)
{
    if (err != NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s: %s (cuBLAS status %d)",
                 what, cublasGetStatusString(st), (int) st);
    }

    return -1;
}


/* The stream, the cuBLAS handle and the scratch area; -1 with a message. */
static int
lt_cuda_setup(lt_cuda_ctx *c, int allow_tf32, lt_err *err)
{
    cublasStatus_t  st;
    cudaError_t     rc;
    size_t          ws_bytes;
    int             major;

    rc = cudaSetDevice(c->device);
    if (rc != cudaSuccess) {
        return lt_cuda_fail(err, "cudaSetDevice", rc);
    }

    rc = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (rc != cudaSuccess) {
        c->stream = NULL;
        return lt_cuda_fail(err, "cudaStreamCreate", rc);
    }

    major = 0;
    rc = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor,
                                c->device);
    if (rc != cudaSuccess) {
        return lt_cuda_fail(err, "cudaDeviceGetAttribute", rc);
    }

    ws_bytes = major >= 9 ? LT_CUDA_BLAS_WS_HOPPER : LT_CUDA_BLAS_WS;

    rc = cudaMalloc(&c->cublas_ws, ws_bytes);
    if (rc != cudaSuccess) {
        c->cublas_ws = NULL;
        return lt_cuda_fail(err, "cudaMalloc of the cuBLAS workspace", rc);
    }

    /* the partial sums, then the result double, then the result float */
    rc = cudaMalloc((void **) &c->partial,
                    (LT_CUDA_MAX_BLOCKS + 2) * sizeof(double));
    if (rc != cudaSuccess) {
        c->partial = NULL;
        return lt_cuda_fail(err, "cudaMalloc of the scratch area", rc);
    }
    c->result_d = c->partial + LT_CUDA_MAX_BLOCKS;
    c->result = (float *) (c->partial + LT_CUDA_MAX_BLOCKS + 1);

    rc = cudaMallocHost((void **) &c->result_host_d, 2 * sizeof(double));
    if (rc != cudaSuccess) {
        c->result_host_d = NULL;
        return lt_cuda_fail(err, "cudaMallocHost", rc);
    }
    c->result_host = (float *) (c->result_host_d + 1);

    st = cublasCreate(&c->cublas);
    if (st != CUBLAS_STATUS_SUCCESS) {
        c->cublas = NULL;
        return lt_cuda_fail_blas(err, "cublasCreate", st);
    }

    /* setting the stream resets the workspace: stream first */
    st = cublasSetStream(c->cublas, c->stream);
    if (st == CUBLAS_STATUS_SUCCESS) {
        st = cublasSetWorkspace(c->cublas, c->cublas_ws, ws_bytes);
    }
    if (st == CUBLAS_STATUS_SUCCESS) {
        st = cublasSetPointerMode(c->cublas, CUBLAS_POINTER_MODE_HOST);
    }
    if (st == CUBLAS_STATUS_SUCCESS) {
        st = cublasSetMathMode(c->cublas, allow_tf32
                               ? CUBLAS_TF32_TENSOR_OP_MATH
                               : CUBLAS_DEFAULT_MATH);
    }
    if (st != CUBLAS_STATUS_SUCCESS) {
        return lt_cuda_fail_blas(err, "cuBLAS setup", st);
    }

    return 0;
}


const lt_backend *
lt_backend_cuda_open(int device, int allow_tf32, lt_err *err)
{
    lt_cuda_ctx  *c;
    cudaError_t   rc;
    int           count;

    count = 0;
    rc = cudaGetDeviceCount(&count);
    if (rc != cudaSuccess) {
        if (err != NULL) {
            snprintf(err->msg, sizeof(err->msg), "no CUDA device"
                     " (cudaGetDeviceCount: %s, error %d)",
                     cudaGetErrorString(rc), (int) rc);
        }
        (void) cudaGetLastError();
        return NULL;
    }

    if (count <= 0) {
        if (err != NULL) {
            snprintf(err->msg, sizeof(err->msg),
                     "no CUDA device (cudaGetDeviceCount: 0 devices)");
        }
        return NULL;
    }

    if (device < 0 || device >= count) {
        if (err != NULL) {
            snprintf(err->msg, sizeof(err->msg), "no CUDA device %d (the"
                     " machine has %d, numbered from 0)", device, count);
        }
        return NULL;
    }

    c = (lt_cuda_ctx *) calloc(1, sizeof(*c));
    if (c == NULL) {
        if (err != NULL) {
            snprintf(err->msg, sizeof(err->msg),
                     "out of memory for a CUDA backend");
        }
        return NULL;
    }

    c->device = device;

    if (lt_cuda_setup(c, allow_tf32, err) != 0) {
        lt_cuda_destroy(c);
        return NULL;
    }

    c->be.name = "cuda";
    c->be.alloc = lt_cuda_alloc;
    c->be.free = lt_cuda_free;
    c->be.to_device = lt_cuda_to_device;
    c->be.to_host = lt_cuda_to_host;
    c->be.copy = lt_cuda_copy;
    c->be.gemm = lt_cuda_gemm;
    c->be.add_bias = lt_cuda_add_bias;
    c->be.sum_rows = lt_cuda_sum_rows;
    c->be.act_forward = lt_cuda_act_forward;
    c->be.act_backward = lt_cuda_act_backward;
    c->be.loss_mse = lt_cuda_loss_mse;
    c->be.loss_bce = lt_cuda_loss_bce;
    c->be.loss_ce = lt_cuda_loss_ce;
    c->be.sgd = lt_cuda_sgd;
    c->be.adam = lt_cuda_adam;
    c->be.loss_smooth_l1 = lt_cuda_loss_smooth_l1;
    c->be.loss_bce_logits = lt_cuda_loss_bce_logits;
    c->be.loss_nll = lt_cuda_loss_nll;
    c->be.loss_ce_smooth = lt_cuda_loss_ce_smooth;
    c->be.sum_squares = lt_cuda_sum_squares;
    c->be.scale = lt_cuda_scale;
    c->be.sgd_ex = lt_cuda_sgd_ex;
    c->be.adam_ex = lt_cuda_adam_ex;
    c->be.rmsprop = lt_cuda_rmsprop;
    c->be.adagrad = lt_cuda_adagrad;
    c->be.act_arg_forward = lt_cuda_act_arg_forward;
    c->be.act_arg_backward = lt_cuda_act_arg_backward;
    c->be.im2col = lt_cuda_im2col;
    c->be.col2im = lt_cuda_col2im;
    c->be.channel_bias = lt_cuda_channel_bias;
    c->be.channel_sum = lt_cuda_channel_sum;
    c->be.pool_forward = lt_cuda_pool_forward;
    c->be.pool_backward = lt_cuda_pool_backward;
    c->be.batchnorm_forward = lt_cuda_batchnorm_forward;
    c->be.batchnorm_backward = lt_cuda_batchnorm_backward;
    c->be.batchnorm_running = lt_cuda_batchnorm_running;
    c->be.layernorm_forward = lt_cuda_layernorm_forward;
    c->be.layernorm_backward = lt_cuda_layernorm_backward;
    c->be.embedding_forward = lt_cuda_embedding_forward;
    c->be.embedding_backward = lt_cuda_embedding_backward;
    c->be.dropout_forward = lt_cuda_dropout_forward;
    c->be.mul = lt_cuda_mul;
    c->be.ctx = c;

    return &c->be;
}


void
lt_backend_cuda_close(const lt_backend *be)
{
    if (be == NULL) {
        return;
    }

    lt_cuda_destroy(lt_cuda_enter(be));
}


int
lt_backend_cuda_status(const lt_backend *be, lt_err *err)
{
    lt_cuda_ctx  *c;

    c = lt_cuda_enter(be);

    lt_cuda_check(c, cudaStreamSynchronize(c->stream), "waiting for the"
                  " stream");

    if (!c->failed) {
        return 0;
    }

    if (err != NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s", c->failure);
    }

    c->failed = 0;
    c->failure[0] = '\0';

    return -1;
}


int
lt_backend_cuda_device(const lt_backend *be)
{
    return lt_cuda_ctx_of(be)->device;
}
