/*
 * lt_tensor.h: float32 tensors and error reporting for the learn core.
 *
 * The core is plain C99 with no nginx headers.  A tensor either owns its
 * data (lt_tensor_alloc) or borrows it (lt_tensor_view).  Parameters in
 * a shared memory zone are borrowed and used in place.  A request's
 * tensors are not views of the request body: the codec converts them to
 * aligned float32 and copies them once into memory from the caller's
 * allocator (the request pool), and everything after that borrows the
 * copy without copying again.
 */
#ifndef LT_TENSOR_H
#define LT_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define LT_MAX_DIMS   4
#define LT_ERR_LEN    256

/* what went wrong, where a caller answers differently */
#define LT_EINVAL       0       /* bad input, or anything else */
#define LT_ENONFINITE   1       /* a step would publish NaN or Inf */

typedef struct {
    int   code;
    char  msg[LT_ERR_LEN];
} lt_err;

typedef struct {
    float    *data;
    int       ndim;
    int64_t   shape[LT_MAX_DIMS];
    int       owned;            /* 1: lt_tensor_free() releases data */
} lt_tensor;

/* Allocator used by code that must not pick its own (nginx pools, fuzzers). */
typedef void *(*lt_alloc_fn)(void *ctx, size_t size);

/* Returns -1 after writing a formatted message into err (err may be NULL). */
int lt_error(lt_err *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The same with err->code set to code. */
int lt_error_code(lt_err *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

int64_t lt_tensor_numel(const lt_tensor *t);

/* Borrow data with the given shape; never allocates. */
void lt_tensor_view(lt_tensor *t, float *data, int ndim, const int64_t *shape);

/* Allocate (malloc) zeroed data; returns -1 on bad shape or no memory. */
int lt_tensor_alloc(lt_tensor *t, int ndim, const int64_t *shape, lt_err *err);

void lt_tensor_free(lt_tensor *t);

/* The index of the first NaN or +-Inf element, or -1 when all are finite. */
int64_t lt_tensor_nonfinite_at(const lt_tensor *t);
int64_t lt_floats_nonfinite_at(const float *p, size_t n);

/* Writes "[2, 3]" into buf; returns buf. */
char *lt_shape_str(const lt_tensor *t, char *buf, size_t size);

#endif /* LT_TENSOR_H */
