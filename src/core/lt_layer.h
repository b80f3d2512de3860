/*
 * lt_layer.h: the layers' insides, shared by lt_model.c, lt_train.c,
 * lt_workspace.c and the lt_layer_*.c files (one per family).  Users see
 * only lt_model.h.
 *
 * At build time each layer checks its arguments and input shape, gives
 * its output shape, its state-dict entries and the workspace scratch it
 * needs (lt_layer_shape.c).  At run time the forward and backward passes
 * call it through lt_layer_forward / lt_layer_backward (lt_layer.c),
 * which pass everything in one lt_layer_run.
 */
#ifndef LT_LAYER_H
#define LT_LAYER_H

#include "lt_spec.h"

/* One state-dict entry a layer declares ("weight", [out, in], ...). */
typedef struct {
    const char    *what;
    int            ndim;
    int64_t        shape[4];
    int            buffer;
    lt_param_dtype dtype;
} lt_entry_def;

#define LT_LAYER_MAX_ENTRIES  5

/* Puts PyTorch's defaults where a hand-written spec left 0. */
void lt_layer_defaults(lt_layer_spec *l);

/* Checks l's arguments against its input shape and gives the output
 * shape; the message names the layer by its state-dict name. */
int lt_layer_shape(const lt_layer_spec *l, const lt_shape *in, lt_shape *out,
    lt_err *err);

/* Its state-dict entries, in PyTorch's order; returns how many. */
int lt_layer_entries(const lt_layer_spec *l, const lt_shape *in,
    lt_entry_def *defs);

/* Workspace floats it needs per batch row and per batch. */
void lt_layer_scratch(const lt_layer_spec *l, const lt_layer_info *li,
    size_t *per_row, size_t *per_batch);

/* 1 when be has every op the layer calls. */
int lt_layer_on_backend(const lt_layer_spec *l, const lt_backend *be);

/* 1 when a convolution's forward pass goes by im2row on be; and the
 * scratch that path needs (lt_layer_conv.c) */
int lt_layer_conv_by_rows(const lt_layer_spec *l, const lt_window *g,
    const lt_backend *be);
size_t lt_layer_conv_rows_scratch(const lt_layer_spec *l,
    const lt_window *g);

/* The window of a convolution or pool over its input shape. */
void lt_layer_window(const lt_layer_spec *l, const lt_layer_info *li,
    lt_window *g);

/* "Conv2d(1, 6, ...)": the layer's kind; and its name for messages */
const char *lt_layer_label(const lt_model *m, int i, char *buf,
    size_t size);

size_t lt_shape_numel(const lt_shape *s);
/* "[1, 28, 28]" */
char *lt_shape_print(const lt_shape *s, char *buf, size_t size);

/* What a layer's forward or backward pass works on. */
typedef struct {
    const lt_model       *m;
    const lt_backend     *be;
    const lt_layer_spec  *l;
    const lt_layer_info  *li;
    const lt_param_info  *p;    /* its entries, m->params + li->param */
    int                   index; /* the layer's */
    int                   n;    /* batch rows */
    int                   train; /* 1: a train step (Dropout, BatchNorm) */
    uint64_t              seed; /* Dropout's, for this step and layer */
    const float          *params; /* the block (parameters and buffers) */
    const float          *x;    /* input [n, in] */
    float                *y;    /* output [n, out] (the layer's act[]) */
    float                *scratch; /* the layer's workspace scratch */
    /* backward only */
    const float          *dy;
    float                *dx;   /* NULL: the input needs no gradient */
    float                *grad; /* P floats of parameter gradients */
} lt_layer_run;

void lt_layer_forward(const lt_layer_run *r);
void lt_layer_backward(const lt_layer_run *r);

/* the families */
void lt_layer_act_forward(const lt_layer_run *r);
void lt_layer_act_backward(const lt_layer_run *r);
void lt_layer_conv_forward(const lt_layer_run *r);
void lt_layer_conv_backward(const lt_layer_run *r);
void lt_layer_pool_forward(const lt_layer_run *r);
void lt_layer_pool_backward(const lt_layer_run *r);
void lt_layer_norm_forward(const lt_layer_run *r);
void lt_layer_norm_backward(const lt_layer_run *r);
void lt_layer_embed_forward(const lt_layer_run *r);
void lt_layer_embed_backward(const lt_layer_run *r);

/* After a train step's backward pass: BatchNorm's running statistics
 * from the batch's (saved in scratch), from params_in to params_out. */
void lt_layer_norm_update(const lt_layer_run *r, float *params_out);

#endif /* LT_LAYER_H */
