/*
 * lt_workspace.c: per-worker scratch memory for forward and train steps.
 *
 * Everything a step writes besides the parameters lives in two blocks
 * allocated together: one in the backend's memory (activations, deltas,
 * gradients, device copies of x and y) and one in host memory (class
 * indices, the output copied back).  They are replaced only when a batch
 * larger than the capacity arrives, so steady-state steps allocate nothing.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lt_workspace.h"

/* Every buffer starts on a 64-byte boundary (16 floats). */
#define LT_WS_ALIGN_FLOATS  16


static size_t
lt_ws_round(size_t n)
{
    return (n + LT_WS_ALIGN_FLOATS - 1) / LT_WS_ALIGN_FLOATS
           * LT_WS_ALIGN_FLOATS;
}


/* Hands out consecutive aligned pieces of a block; with base NULL it only
 * counts, so the same code sizes the block and carves it. */
typedef struct {
    float   *base;
    size_t   used;              /* in floats */
} lt_carver;


static float *
lt_carve(lt_carver *c, size_t nfloats)
{
    float  *p;

    p = c->base ? c->base + c->used : NULL;
    c->used += lt_ws_round(nfloats);

    return p;
}


static void
lt_ws_carve_device(lt_workspace *ws, lt_carver *c, size_t cap)
{
    const lt_model  *m;
    int              i, dev;

    m = &ws->model;
    dev = ws->be->to_device != NULL;

    for (i = 0; i < m->spec.nlayers; i++) {
        ws->act[i] = lt_carve(c, cap * (size_t) m->widths[i]);
        ws->scratch[i] = lt_carve(c, cap * m->layer[i].scratch_row
                                     + m->layer[i].scratch);
    }

    ws->delta[0] = lt_carve(c, cap * m->max_width);
    ws->delta[1] = lt_carve(c, cap * m->max_width);
    ws->grad = lt_carve(c, m->param_count);
    ws->x = dev ? lt_carve(c, cap * (size_t) m->in_dim) : NULL;
    ws->y = dev ? lt_carve(c, cap * (size_t) m->out_dim) : NULL;
    ws->index = dev ? (int32_t *) lt_carve(c, cap) : NULL;
}


static void
lt_ws_carve_host(lt_workspace *ws, lt_carver *c, size_t cap)
{
    int  dev;

    dev = ws->be->to_device != NULL;

    ws->index_host = (int32_t *) lt_carve(c, cap);
    ws->out_host = dev ? lt_carve(c, cap * (size_t) ws->model.out_dim)
                       : NULL;

    /* a host backend reads the indices where they were converted */
    if (!dev) {
        ws->index = ws->index_host;
    }
}


/* Sizes cap rows worth of buffers; 0 when the size overflows. */
static size_t
lt_ws_bytes(lt_workspace *ws, size_t cap, int host)
{
    lt_carver  c;
    size_t     limit;

    /* no product in the carving can overflow below this many rows */
    limit = SIZE_MAX / sizeof(float) / 4 / (ws->model.max_width + 1)
            / (2 * LT_MAX_LAYERS + 4);
    if (cap > limit) {
        return 0;
    }

    c.base = NULL;
    c.used = 0;

    if (host) {
        lt_ws_carve_host(ws, &c, cap);

    } else {
        lt_ws_carve_device(ws, &c, cap);
    }

    return c.used * sizeof(float);
}


static void
lt_ws_release(lt_workspace *ws)
{
    if (ws->block != NULL) {
        ws->be->free(ws->be, ws->block);
        ws->block = NULL;
    }

    free(ws->host);
    ws->host = NULL;
}


/*
 * Sizes, allocates and carves into a copy of the workspace, so that on
 * failure the old buffers are still in place and still valid.
 */
static int
lt_ws_resize(lt_workspace *ws, int cap, int batch, lt_err *err)
{
    lt_workspace  next;
    lt_carver     c;
    size_t        dev_bytes, host_bytes;

    next = *ws;
    dev_bytes = lt_ws_bytes(&next, (size_t) cap, 0);
    host_bytes = lt_ws_bytes(&next, (size_t) cap, 1);
    if (dev_bytes == 0 || host_bytes == 0) {
        return lt_error(err, "a batch of %d rows is too large", batch);
    }

    next.block = ws->be->alloc(ws->be, dev_bytes);
    next.host = malloc(host_bytes);
    if (next.block == NULL || next.host == NULL) {
        if (next.block != NULL) {
            ws->be->free(ws->be, next.block);
        }
        free(next.host);
        return lt_error(err, "out of memory for a workspace of %d rows"
                        " (%zu bytes)", cap, dev_bytes + host_bytes);
    }

    next.capacity = cap;

    c.base = next.block;
    c.used = 0;
    lt_ws_carve_device(&next, &c, (size_t) cap);

    c.base = next.host;
    c.used = 0;
    lt_ws_carve_host(&next, &c, (size_t) cap);

    lt_ws_release(ws);
    *ws = next;

    return 0;
}


int
lt_workspace_reserve(lt_workspace *ws, int batch, lt_err *err)
{
    int  cap;

    if (batch <= ws->capacity) {
        return 0;
    }

    /* at least double, so a slowly rising batch size reallocates rarely */
    cap = ws->capacity > INT_MAX / 2 ? INT_MAX : ws->capacity * 2;
    if (cap < batch) {
        cap = batch;
    }

    return lt_ws_resize(ws, cap, batch, err);
}


int
lt_workspace_shrink(lt_workspace *ws, int batch, lt_err *err)
{
    if (batch < 1 || batch >= ws->capacity) {
        return 0;
    }

    return lt_ws_resize(ws, batch, batch, err);
}


size_t
lt_workspace_bytes(const lt_workspace *ws)
{
    lt_workspace  copy;

    copy = *ws;

    return lt_ws_bytes(&copy, (size_t) ws->capacity, 0)
           + lt_ws_bytes(&copy, (size_t) ws->capacity, 1);
}


int
lt_workspace_rows_within(const lt_workspace *ws, size_t bytes)
{
    lt_workspace  copy;
    size_t        one, two, row;

    copy = *ws;
    one = lt_ws_bytes(&copy, 1, 0) + lt_ws_bytes(&copy, 1, 1);
    two = lt_ws_bytes(&copy, 2, 0) + lt_ws_bytes(&copy, 2, 1);
    row = two > one ? two - one : 1;

    if (bytes <= one) {
        return 1;
    }

    return (bytes - one) / row + 1 > (size_t) INT_MAX
           ? INT_MAX : (int) ((bytes - one) / row + 1);
}


lt_workspace *
lt_workspace_new(const lt_model *m, const lt_backend *be, int max_batch,
    lt_err *err)
{
    lt_workspace  *ws;

    if (lt_model_backend_check(m, be, err) != 0) {
        return NULL;
    }

    ws = calloc(1, sizeof(*ws));
    if (ws == NULL) {
        lt_error(err, "out of memory for a workspace");
        return NULL;
    }

    ws->model = *m;
    ws->be = be;

    if (lt_workspace_reserve(ws, max_batch > 0 ? max_batch : 1, err) != 0) {
        free(ws);
        return NULL;
    }

    return ws;
}


int
lt_workspace_capacity(const lt_workspace *ws)
{
    return ws->capacity;
}


void
lt_workspace_free(lt_workspace *ws)
{
    if (ws == NULL) {
        return;
    }

    lt_ws_release(ws);
    free(ws);
}
