/*
 * lt_workspace.h: the workspace's insides, shared by lt_workspace.c and
 * lt_train.c.  Users see only the opaque lt_workspace of lt_model.h.
 */
#ifndef LT_WORKSPACE_H
#define LT_WORKSPACE_H

#include "lt_model.h"

struct lt_workspace_s {
    lt_model           model;       /* a copy: reserve needs the widths */
    const lt_backend  *be;
    int                capacity;    /* rows every buffer below holds */

    /* one be->alloc block, in the backend's memory */
    void              *block;
    float             *act[LT_MAX_LAYERS]; /* layer outputs [cap, width] */
    float             *scratch[LT_MAX_LAYERS]; /* lt_layer_scratch's */
    float             *delta[2];    /* backward ping-pong [cap, max_width] */
    float             *grad;        /* P parameter gradients */
    float             *x;           /* copy of x, when be->to_device */
    float             *y;           /* copy of y, when be->to_device */
    int32_t           *index;       /* CE class indices [cap] */

    /* one malloc block in host memory */
    void              *host;
    int32_t           *index_host;  /* indices as converted on the host */
    float             *out_host;    /* output copied back, when to_device */
};

#endif /* LT_WORKSPACE_H */
