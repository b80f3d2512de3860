
/*
 * learn_batch max=N [timeout=TIME]: concurrent predicts of one location
 * in one worker are stacked into one forward pass of up to N rows, whose
 * output rows are split back: one matrix product over N rows instead of
 * N matrix-vector products.  Without a timeout a batch holds what arrived
 * in the same turn of the event loop (under load: what arrived while the
 * last batch computed), and adds no wait; with one, the first request
 * waits at most TIME for company.
 */


#include "ngx_http_learn.h"


static void ngx_http_learn_batch_timer(ngx_event_t *ev);
static void ngx_http_learn_batch_flush(ngx_http_learn_loc_conf_t *lcf);
static ngx_uint_t ngx_http_learn_batch_all_in(ngx_http_learn_loc_conf_t *lcf);
static ngx_int_t ngx_http_learn_batch_stack(ngx_http_learn_loc_conf_t *lcf,
    ngx_queue_t *q, lt_tensor *x);


/* an x without N (its ndim is one sample's) is one row */
#define ngx_http_learn_batch_rows(ctx)                                        \
    ((ctx)->body.x.ndim == (ctx)->lcf->model->model.in_shape.ndim            \
     ? 1 : (ngx_uint_t) (ctx)->body.x.shape[0])


/* NGX_AGAIN: queued (the flush answers it); NGX_DECLINED: run it alone */

ngx_int_t
ngx_http_learn_batch_add(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx)
{
    ngx_uint_t                  rows;
    ngx_http_learn_loc_conf_t  *lcf;

    lcf = ctx->lcf;

    if (lcf->batch_max == 0) {
        return NGX_DECLINED;
    }

    rows = ngx_http_learn_batch_rows(ctx);

    if (rows >= lcf->batch_max) {
        return NGX_DECLINED;
    }

    if (lcf->batch_rows + rows > lcf->batch_max) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "learn: batch of %ui rows cut before %ui more",
                       lcf->batch_rows, rows);
        ngx_http_learn_batch_flush(lcf);
    }

    if (ngx_queue_empty(&lcf->batch_queue)) {
        lcf->batch_timer.handler = ngx_http_learn_batch_timer;
        lcf->batch_timer.data = lcf;
        lcf->batch_timer.log = ngx_cycle->log;

        if (lcf->batch_timeout) {
            ngx_add_timer(&lcf->batch_timer, lcf->batch_timeout);

        } else {
            /* after the events at hand: whatever arrived with this one */
            ngx_post_event(&lcf->batch_timer, &ngx_posted_events);
        }
    }

    ngx_queue_insert_tail(&lcf->batch_queue, &ctx->queue);
    ctx->parked = NGX_HTTP_LEARN_PARK_BATCH;
    lcf->batch_rows += rows;
    lcf->batch_requests++;

    if (lcf->batch_rows == lcf->batch_max) {
        ngx_http_learn_batch_flush(lcf);

    } else if (lcf->batch_timeout && ngx_http_learn_batch_all_in(lcf)) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "learn: batch of %ui rows cut, every connection "
                       "is in it", lcf->batch_rows);
        ngx_http_learn_batch_flush(lcf);
    }

    return NGX_AGAIN;
}


/*
 * Waiting for the timeout is worth it only while more requests can come
 * on the connections the worker has: when each of its connections is a
 * request in this batch (its listening sockets and its channel to the
 * master aside), nothing more arrives before a new connection does, and
 * the batch goes now.  Idle keepalive and upstream connections count as
 * busy, so the cut is never early; HTTP/2 streams beyond the first of a
 * connection can only make it early by one turn.
 */

static ngx_uint_t
ngx_http_learn_batch_all_in(ngx_http_learn_loc_conf_t *lcf)
{
    ngx_uint_t         i, busy;
    ngx_listening_t   *ls;

    static ngx_uint_t  own;

    if (own == 0) {
        /* this worker's listening sockets (reuseport: its own copies) and
         * its channel to the master; fixed for the worker's life */
        ls = ngx_cycle->listening.elts;

        for (i = 0; i < ngx_cycle->listening.nelts; i++) {
            if (ls[i].connection) {
                own++;
            }
        }

        own += (ngx_process == NGX_PROCESS_WORKER) ? 1 : 0;
    }

    busy = ngx_cycle->connection_n - ngx_cycle->free_connection_n;

    return busy > own && lcf->batch_requests >= busy - own;
}


/* the request's cleanup: it leaves the queue, and its rows with it */

void
ngx_http_learn_batch_remove(ngx_http_learn_ctx_t *ctx)
{
    ngx_http_learn_loc_conf_t  *lcf;

    lcf = ctx->lcf;

    ngx_queue_remove(&ctx->queue);
    lcf->batch_rows -= ngx_http_learn_batch_rows(ctx);
    lcf->batch_requests--;

    if (!ngx_queue_empty(&lcf->batch_queue)) {
        return;
    }

    if (lcf->batch_timer.timer_set) {
        ngx_del_timer(&lcf->batch_timer);
    }

    if (lcf->batch_timer.posted) {
        ngx_delete_posted_event(&lcf->batch_timer);
    }
}


static void
ngx_http_learn_batch_timer(ngx_event_t *ev)
{
    ngx_http_learn_loc_conf_t  *lcf = ev->data;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "learn \"%V\": batch timeout, %ui rows",
                   &lcf->model->name, lcf->batch_rows);

    ngx_http_learn_batch_flush(lcf);
}


/*
 * One forward pass over every queued request's rows, then each request
 * answered with its own rows, as if it had run alone.  The queue is
 * taken whole first: answering a request may queue new ones.
 */

static void
ngx_http_learn_batch_flush(ngx_http_learn_loc_conf_t *lcf)
{
    int64_t                  off;
    ngx_int_t                rc;
    ngx_queue_t              batch, *q;
    ngx_http_request_t      *r;
    ngx_http_learn_ctx_t     all, *ctx;
    ngx_http_learn_model_t  *lm;

    if (lcf->batch_timer.timer_set) {
        ngx_del_timer(&lcf->batch_timer);
    }

    if (lcf->batch_timer.posted) {
        ngx_delete_posted_event(&lcf->batch_timer);
    }

    if (ngx_queue_empty(&lcf->batch_queue)) {
        return;
    }

    lm = lcf->model;

    ngx_queue_init(&batch);
    ngx_queue_add(&batch, &lcf->batch_queue);
    ngx_queue_init(&lcf->batch_queue);
    lcf->batch_rows = 0;
    lcf->batch_requests = 0;

    for (q = ngx_queue_head(&batch);
         q != ngx_queue_sentinel(&batch);
         q = ngx_queue_next(q))
    {
        /* answering one may end another (an HTTP/2 connection closing) */
        ctx = ngx_queue_data(q, ngx_http_learn_ctx_t, queue);
        ctx->parked = NGX_HTTP_LEARN_PARK_QUEUE;
    }

    ctx = ngx_queue_data(ngx_queue_head(&batch), ngx_http_learn_ctx_t,
                         queue);

    if (ngx_queue_next(&ctx->queue) == ngx_queue_sentinel(&batch)) {
        /* alone after all: no copy */
        ngx_queue_init(&ctx->queue);
        ctx->parked = NGX_HTTP_LEARN_PARK_NONE;
        r = ctx->request;

        rc = ctx->run(ctx, lm->ws, 0);
        rc = ctx->reply(r, ctx, rc);
        ngx_http_learn_ws_fit(lm, lm->ws);

        ngx_http_learn_finalize(r, rc);
        return;
    }

    ngx_memzero(&all, sizeof(ngx_http_learn_ctx_t));
    all.lcf = lcf;

    rc = ngx_http_learn_batch_stack(lcf, &batch, &all.body.x);

    if (rc == NGX_OK) {
        all.y_buf = lcf->batch_ybuf;
        rc = ctx->run(&all, lm->ws, 0);

        (void) ngx_atomic_fetch_add(&lm->shm->batches, 1);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "learn \"%V\": batch of %L rows", &lm->name,
                   all.body.x.shape[0]);

    off = 0;

    while (!ngx_queue_empty(&batch)) {
        q = ngx_queue_head(&batch);
        ngx_queue_remove(q);
        ngx_queue_init(q);

        ctx = ngx_queue_data(q, ngx_http_learn_ctx_t, queue);
        ctx->parked = NGX_HTTP_LEARN_PARK_NONE;
        r = ctx->request;

        if (rc == NGX_OK) {
            /* this request's rows of the output, in the shape alone gives */
            ctx->y = all.y;
            ctx->y.data = all.y.data + off * lm->model.out_dim;

            if (ngx_http_learn_batch_rows(ctx) == 1
                && ctx->body.x.ndim == lm->model.in_shape.ndim)
            {
                ctx->y.ndim = all.y.ndim - 1;
                ngx_memmove(ctx->y.shape, all.y.shape + 1,
                            ctx->y.ndim * sizeof(int64_t));
                off += 1;

            } else {
                ctx->y.shape[0] = ctx->body.x.shape[0];
                off += ctx->body.x.shape[0];
            }

            ctx->step = all.step;

            (void) ngx_atomic_fetch_add(&lm->shm->batched, 1);

        } else {
            ctx->err = all.err;
        }

        ngx_http_learn_finalize(r, ctx->reply(r, ctx, rc));
    }

    ngx_http_learn_ws_fit(lm, lm->ws);
}


/* the queued x rows, one after another, in this worker's batch buffer */

static ngx_int_t
ngx_http_learn_batch_stack(ngx_http_learn_loc_conf_t *lcf, ngx_queue_t *batch,
    lt_tensor *x)
{
    float                 *p;
    size_t                 n;
    int64_t                shape[LT_MAX_DIMS], rows;
    ngx_queue_t           *q;
    ngx_http_learn_ctx_t  *ctx;

    rows = 0;

    if (lcf->batch_buf == NULL) {
        lcf->batch_buf = ngx_alloc(lcf->batch_max
                                   * (size_t) lcf->model->model.in_dim
                                   * sizeof(float), ngx_cycle->log);
        if (lcf->batch_buf == NULL) {
            return NGX_ERROR;
        }
    }

    if (lcf->model->dev && lcf->batch_ybuf == NULL) {
        lcf->batch_ybuf = ngx_alloc(lcf->batch_max
                                    * (size_t) lcf->model->model.out_dim
                                    * sizeof(float), ngx_cycle->log);
        if (lcf->batch_ybuf == NULL) {
            return NGX_ERROR;
        }
    }

    p = lcf->batch_buf;

    for (q = ngx_queue_head(batch);
         q != ngx_queue_sentinel(batch);
         q = ngx_queue_next(q))
    {
        ctx = ngx_queue_data(q, ngx_http_learn_ctx_t, queue);
        n = (size_t) lt_tensor_numel(&ctx->body.x);
        ngx_memcpy(p, ctx->body.x.data, n * sizeof(float));
        p += n;
        rows += (int64_t) (n / (size_t) lcf->model->model.in_dim);
    }

    lt_tensor_view(x, lcf->batch_buf,
                   lt_model_input_shape(&lcf->model->model, rows, shape),
                   shape);

    return NGX_OK;
}


/*
 * The batch buffers are allocated by a worker on its first batch and live
 * as long as the location's configuration: the cycle pool that holds it
 * frees them (at the worker's exit, or when a reload retires the cycle in
 * single-process mode).
 */

void
ngx_http_learn_batch_cleanup(void *data)
{
    ngx_http_learn_loc_conf_t *lcf = data;

    ngx_free(lcf->batch_buf);
    ngx_free(lcf->batch_ybuf);

    lcf->batch_buf = NULL;
    lcf->batch_ybuf = NULL;
}
