/*
 * lt_model.h: a Sequential model described by plain structs, its
 * parameter layout, and training / inference steps.
 *
 * A model is immutable once built (lt_model_build): it holds the layer
 * list, each layer's per-sample shapes, and the layout of one contiguous
 * float block holding
 *
 *     [ parameters (P) | buffers (B) | optimizer state (S floats) ]
 *
 * so the block can live in a shared memory zone, be written to a
 * checkpoint in one write and be exported by name.  Gradients and
 * activations live in a workspace owned by the caller (one per worker),
 * sized once per batch size; a step allocates nothing.
 */
#ifndef LT_MODEL_H
#define LT_MODEL_H

#include "lt_spec.h"
#include "lt_optim.h"


/* Validate the spec (each layer's arguments, the per-sample shapes through
 * the whole net from spec->input or what the first layer implies, at
 * least one parameter to train, sane hyper-parameters) and compute the
 * layout.  On a mismatch the message names the layer by its state-dict
 * name and both shapes. */
int lt_model_build(lt_model *m, const lt_model_spec *spec, lt_err *err);

/* Fill the P parameters and B buffers as PyTorch's layers do by default
 * (Linear and Conv: Kaiming-uniform weights, bound 1/sqrt(fan_in), bias
 * uniform in +-1/sqrt(fan_in); norms: weight 1, bias 0, running_var 1;
 * Embedding: N(0, 1)) from a deterministic generator seeded by seed, and
 * zero the S optimizer floats that follow them. */
void lt_model_init_params(const lt_model *m, float *block, uint64_t seed);


/* 0 when be has the ops of every layer of m and of its loss, optimizer
 * and clipping; else -1 and a message naming the first it lacks. */
int lt_model_backend_check(const lt_model *m, const lt_backend *be,
    lt_err *err);

/* The first layer the CUDA backend does not implement yet, or -1: the
 * master asks before any backend is loaded. */
int lt_model_device_layer(const lt_model *m);

/* [n, input shape...] into shape (LT_MAX_DIMS); returns its ndim. */
int lt_model_input_shape(const lt_model *m, int64_t n, int64_t *shape);

/* "[6, 1, 5, 5]" */
char *lt_param_shape_str(const lt_param_info *p, char *buf, size_t size);

/* NULL when no parameter or buffer has that name. */
const lt_param_info *lt_model_find_param(const lt_model *m, const char *name);

/* Per-worker scratch: activations, gradients, loss buffers for up to
 * max_batch rows, on the given backend.  The workspace keeps a copy of the
 * model's layout; it serves only models with the same layout hash. */
typedef struct lt_workspace_s  lt_workspace;

lt_workspace *lt_workspace_new(const lt_model *m, const lt_backend *be,
    int max_batch, lt_err *err);
/* Grow to at least batch rows (allocates only when growing, then to at
 * least twice the old capacity; on failure the old buffers stay valid).
 * forward, gradients and train_step call it themselves, so a batch larger
 * than the capacity costs one allocation and later ones none. */
int lt_workspace_reserve(lt_workspace *ws, int batch, lt_err *err);
int lt_workspace_capacity(const lt_workspace *ws);
/* Back down to batch rows when it holds more (an oversized request is
 * not paid for by every later one); on failure the old buffers stay. */
int lt_workspace_shrink(lt_workspace *ws, int batch, lt_err *err);
/* The bytes it holds now, and the most rows whose buffers fit in bytes
 * (at least 1). */
size_t lt_workspace_bytes(const lt_workspace *ws);
int lt_workspace_rows_within(const lt_workspace *ws, size_t bytes);
void lt_workspace_free(lt_workspace *ws);

/* Check x (and y) against the model: x is [N, input shape...] (or the
 * input shape alone for one sample; for an Embedding first, whole numbers
 * naming its embeddings; a BatchNorm in a train step needs two values per
 * channel); y is [N, out_dim] (also [N] when out_dim is 1, [out_dim] or a
 * scalar when N is 1), or for cross-entropy [N] class indices (floats
 * holding whole numbers in [0, out_dim)) or [N, out_dim] one-hot or
 * probability rows.  The message names expected and received shapes. */
int lt_model_check_input(const lt_model *m, const lt_tensor *x, lt_err *err);
int lt_model_check_target(const lt_model *m, const lt_tensor *x,
    const lt_tensor *y, lt_err *err);

/* Forward pass with the parameters at params (P floats, in the backend's
 * memory: host memory for the CPU backend).  x is in host memory.  On
 * success *out holds the output rows ([N, out_dim]; [out_dim] for a 1-D x,
 * as in PyTorch) in host memory, borrowed from the workspace and valid
 * until the next call on ws. */
int lt_model_forward(const lt_model *m, lt_workspace *ws,
    const float *params, const lt_tensor *x, lt_tensor *out, lt_err *err);

/* One optimizer step: forward and loss with params_in, backward, then the
 * update written to params_out (may equal params_in).  opt_state is the S
 * floats after the parameters; step is the 1-based number of this step
 * (Adam's bias correction; SGD momentum starts on step 1).  *loss gets the
 * mean loss before the update. */
int lt_model_train_step(const lt_model *m, lt_workspace *ws,
    const float *params_in, float *params_out, float *opt_state,
    int64_t step, const lt_tensor *x, const lt_tensor *y, float *loss,
    lt_err *err);

/* The same with the optimizer state read from state_in and written to
 * state_out (may be equal): out of place, a step that fails
 * lt_model_step_check() leaves params_in and state_in as they were.
 * A non-finite loss fails with err->code LT_ENONFINITE before any
 * update is written. */
int lt_model_train_step_to(const lt_model *m, lt_workspace *ws,
    const float *params_in, float *params_out, const float *state_in,
    float *state_out, int64_t step, const lt_tensor *x, const lt_tensor *y,
    float *loss, lt_err *err);

/* 0 when loss, the P parameters and the S optimizer floats (host memory;
 * state may be NULL) are all finite; else -1 with err->code LT_ENONFINITE
 * and a message naming the parameter. */
int lt_model_step_check(const lt_model *m, float loss, const float *params,
    const float *state, lt_err *err);

/* Forward, loss and backward only: gradients into grad (P floats, in the
 * backend's memory). */
int lt_model_gradients(const lt_model *m, lt_workspace *ws,
    const float *params, const lt_tensor *x, const lt_tensor *y,
    float *grad, float *loss, lt_err *err);

/* Cost of one train step in multiply-adds, for choosing inline vs thread
 * pool. */
double lt_model_step_flops(const lt_model *m, int batch);
double lt_model_forward_flops(const lt_model *m, int batch);


#endif /* LT_MODEL_H */
