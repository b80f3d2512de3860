/*
 * lt_npy.h: numpy's .npy and .npz files <-> float32 tensors, for the
 * dataset jobs (learn_job_train, learn_job_predict).
 *
 * A file is hostile: its header is parsed strictly (the dict numpy
 * writes: 'descr', 'fortran_order', 'shape', nothing else), and the
 * shape times the item size is checked against the bytes the file holds
 * before a caller allocates anything.  Little-endian (or byte-sized)
 * dtypes only: <f4 <f8 <i4 <i8 <i2 <u2 |u1 |i1 |b1; C order only.
 *
 * An .npz is a zip of .npy members (np.savez: stored; np.savez_compressed:
 * deflate, through zlib).  Members are found through the central
 * directory (zip64 sizes and offsets too); each member's local header,
 * method, sizes and CRC-32 are checked.  No nginx header, no allocation
 * here: the caller provides every buffer, sized from what these
 * functions report.
 */
#ifndef LT_NPY_H
#define LT_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "lt_tensor.h"

typedef enum {
    LT_NPY_F4 = 0,
    LT_NPY_F8,
    LT_NPY_I4,
    LT_NPY_I8,
    LT_NPY_I2,
    LT_NPY_U2,
    LT_NPY_U1,
    LT_NPY_I1,
    LT_NPY_B1
} lt_npy_dtype;

typedef struct {
    lt_npy_dtype  dtype;
    int           itemsize;
    int           integer;      /* an integer (or bool) dtype */
    int           ndim;
    int64_t       shape[LT_MAX_DIMS];
    int64_t       numel;
    size_t        data_off;     /* where the array's bytes start */
    size_t        data_len;     /* numel * itemsize */
} lt_npy_info;

/* Parse an .npy held in buf: checks the magic, version (1.0, 2.0, 3.0),
 * the header dict, the dtype, C order, at most LT_MAX_DIMS dimensions and
 * that the data is exactly numel * itemsize bytes. */
int lt_npy_parse(const uint8_t *buf, size_t len, lt_npy_info *info,
    lt_err *err);

/* Convert the array's data (buf as given to lt_npy_parse) into out, which
 * holds info->numel floats.  A NaN or Inf fails, naming the element. */
int lt_npy_to_float(const lt_npy_info *info, const uint8_t *buf, float *out,
    lt_err *err);

/* The header of a C-order '<f4' .npy of the given shape: writes at most
 * cap bytes into buf and returns the header's length (a multiple of 64,
 * as numpy writes it), or 0 when cap is too small. */
size_t lt_npy_header(char *buf, size_t cap, int ndim, const int64_t *shape);

/* ---- .npz ------------------------------------------------------------ */

typedef struct {
    size_t    data_off;         /* the member's (compressed) bytes */
    uint64_t  csize;
    uint64_t  usize;            /* its size as an .npy file */
    int       method;           /* 0 stored, 8 deflate */
    uint32_t  crc;
} lt_npz_member;

/* Find the member "NAME.npy" (np.savez(x=..., y=...) names them so).
 * Returns 0 when found, 1 when the archive is valid but has no such
 * member (err then lists the members it has), -1 when it is not a zip
 * numpy could have written. */
int lt_npz_find(const uint8_t *buf, size_t len, const char *name,
    lt_npz_member *m, lt_err *err);

/* The member's .npy bytes into out (m->usize bytes): a copy, or inflated;
 * the CRC-32 must match. */
int lt_npz_extract(const uint8_t *buf, size_t len, const lt_npz_member *m,
    uint8_t *out, lt_err *err);

/* ---- evaluation (validation split) ------------------------------------ */

#include "lt_model.h"

/* The mean loss of outputs out [n, out_dim] against targets y, as the
 * model's loss computes it (cross-entropy over logits, BCE over
 * probabilities, MSE), and for cross-entropy the rows whose argmax is
 * the target class (*correct; -1 for other losses).  y is checked
 * (lt_model_check_target) by the caller. */
int lt_eval_batch(const lt_model *m, const lt_tensor *out,
    const lt_tensor *y, double *loss_sum, int64_t *correct, lt_err *err);

#endif /* LT_NPY_H */
