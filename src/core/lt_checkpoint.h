/*
 * lt_checkpoint.h: a model's parameters and optimizer state as one
 * self-describing, checksummed byte string.
 *
 *   offset 0   "LEARNCKP"                      magic
 *          8   u32 LE format version (1)
 *         12   u32 LE header length H (multiple of 64 with the 16 above)
 *         16   H bytes: JSON header, NUL padded: model name, step, loss,
 *              optimizer, dtype "<f4", params [{name, shape}], state
 *              float count, layout hash
 *       16+H   parameters (P float32 LE), then optimizer state (S)
 *    end - 4   u32 LE CRC-32 (zlib) of every byte before it
 *
 * A step that is not a whole number in range, and parameters or state
 * that are not finite (NaN, Inf), are refused as corrupt.
 *
 * A torn, truncated or foreign file fails the checksum or the layout
 * comparison with a message that names what differs: the first parameter
 * whose name or shape differs (even when the size differs too), then the
 * optimizer, then the layout hash, which also covers the layer kinds
 * (Tanh and ReLU have the same shapes) but no hyper-parameter.
 */
#ifndef LT_CHECKPOINT_H
#define LT_CHECKPOINT_H

#include "lt_model.h"

#define LT_CHECKPOINT_FORMAT  1

/* steps are whole numbers in [0, 2^53]: exact in the JSON header */
#define LT_CHECKPOINT_MAX_STEP  9007199254740992LL

typedef struct {
    int64_t   step;
    int64_t   optim_step;   /* steps the optimizer state has seen since it
                               was last reset (a weights import); absent
                               in older files: step */
    double    loss;
} lt_checkpoint_meta;

/* The most bytes lt_checkpoint_encode_into writes for this model. */
size_t lt_checkpoint_size(const lt_model *m, const char *name);

/* Encode into buf (cap >= lt_checkpoint_size()), *len bytes; allocates
 * nothing, so it may run on any thread. */
int lt_checkpoint_encode_into(const lt_model *m, const char *name,
    const lt_checkpoint_meta *meta, const float *params, const float *state,
    uint8_t *buf, size_t cap, size_t *len, lt_err *err);

/* Encode into a malloc'ed buffer (*out, *len; free() it). */
int lt_checkpoint_encode(const lt_model *m, const char *name,
    const lt_checkpoint_meta *meta, const float *params, const float *state,
    uint8_t **out, size_t *len, lt_err *err);

/* Validate buf against m; on success *params and *state point into buf
 * (possibly unaligned: copy them with memcpy). */
int lt_checkpoint_decode(const lt_model *m, const uint8_t *buf, size_t len,
    lt_checkpoint_meta *meta, const uint8_t **params, const uint8_t **state,
    lt_err *err);

#endif /* LT_CHECKPOINT_H */
