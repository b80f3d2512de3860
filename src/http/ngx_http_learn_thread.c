
/*
 * Work off the event loop, on nginx thread pools.
 *
 * learn_thread_pool NAME [threshold=N]: a train step or a forward pass
 * whose cost (multiply-adds, from the layer sizes and the batch) is above
 * the threshold runs on nginx's thread pool NAME, so a 100 ms step never
 * stops a worker's other connections; cheaper work stays inline, where a
 * thread hop would cost more than the arithmetic.  A task owns a
 * workspace from the worker's free list (the event loop's own stays with
 * it); the train mutex is taken inside the task, where waiting on it
 * blocks only that thread (and frees it from a worker that was killed
 * holding it: ngx_http_learn_zone_lock_wait()).
 *
 * Every task the module posts for a request (a step, a forward pass, a
 * body read from disk, a kept version's read) keeps the request
 * (r->blocked) and keeps the worker: while any is in flight a timer is
 * armed, so a worker told to exit (a reload) stays until every task has
 * completed and its request is answered.  A request that nginx
 * terminated meanwhile (worker_shutdown_timeout) is marked cancelled by
 * its cleanup, and a train task then applies no step: each applied step
 * is answered, each answered train request is one step.
 */


#include "ngx_http_learn.h"


/* what a workspace may keep between requests */
#define NGX_HTTP_LEARN_WS_KEEP           (4 * 1024 * 1024)
#define NGX_HTTP_LEARN_WS_KEEP_ROWS      64

#define NGX_HTTP_LEARN_TASKS_TICK        1000    /* ms */


static void ngx_http_learn_tasks_tick(ngx_event_t *ev);


static ngx_event_t       ngx_http_learn_tasks_timer;
static ngx_connection_t  ngx_http_learn_tasks_dumb; /* the timer's "data":
                                                       debug logs read fd */
static ngx_int_t         ngx_http_learn_tasks;  /* in flight, this worker */


#if (NGX_THREADS)

typedef struct {
    ngx_http_request_t            *request;
    ngx_http_learn_ctx_t          *ctx;
} ngx_http_learn_task_t;


static void ngx_http_learn_thread_run(void *data, ngx_log_t *log);
static void ngx_http_learn_thread_done(ngx_event_t *ev);


/*
 * NGX_AGAIN: posted, the request resumes in ngx_http_learn_thread_done();
 * NGX_DECLINED: run it inline.
 */

ngx_int_t
ngx_http_learn_thread_offload(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, double cost)
{
    ngx_thread_task_t       *task;
    ngx_http_learn_task_t   *lt;
    ngx_http_learn_model_t  *lm;

    if (ctx->lcf->thread_pool == NULL
        || cost < ctx->lcf->thread_threshold)
    {
        return NGX_DECLINED;
    }

    lm = ctx->lcf->model;

    ctx->task_ws = ngx_http_learn_ws_get(lm, &ctx->err);
    if (ctx->task_ws == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "learn: no workspace for a pool thread: %s",
                      ctx->err.msg);
        return NGX_DECLINED;
    }

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_learn_task_t));
    if (task == NULL) {
        ngx_http_learn_ws_put(lm, ctx->task_ws);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lt = task->ctx;
    lt->request = r;
    lt->ctx = ctx;

    task->handler = ngx_http_learn_thread_run;
    task->event.handler = ngx_http_learn_thread_done;
    task->event.data = lt;

    if (ngx_http_learn_task_post(r, ctx->lcf->thread_pool, task) != NGX_OK) {
        ngx_http_learn_ws_put(lm, ctx->task_ws);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "learn \"%V\": %.0f multiply-adds on the thread pool",
                   &lm->name, cost);

    return NGX_AGAIN;
}


/* on a pool thread: no pools, no logging, no request */

static void
ngx_http_learn_thread_run(void *data, ngx_log_t *log)
{
    ngx_http_learn_task_t   *lt = data;

    ngx_http_learn_ctx_t    *ctx;
    ngx_http_learn_model_t  *lm;

    ctx = lt->ctx;
    lm = ctx->lcf->model;

    if (!ctx->locked) {
        ctx->task_rc = ctx->run(ctx, ctx->task_ws, 1);
        return;
    }

    ctx->task_unlocked = ngx_http_learn_zone_lock_wait(lm->shm);

    /* terminated while it waited: no step nobody would hear of */
    ngx_memory_barrier();

    ctx->task_rc = ctx->cancelled ? NGX_ABORT
                                  : ctx->run(ctx, ctx->task_ws, 1);

    ngx_shmtx_unlock(&lm->shm->mutex);
}


static void
ngx_http_learn_thread_done(ngx_event_t *ev)
{
    ngx_http_learn_task_t  *lt = ev->data;

    ngx_int_t                rc;
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_learn_ctx_t    *ctx;
    ngx_http_learn_model_t  *lm;

    r = lt->request;
    ctx = lt->ctx;
    c = r->connection;
    lm = ctx->lcf->model;

    ngx_http_learn_task_done(r);

    if (ctx->task_unlocked) {
        ngx_http_learn_zone_lock_unlocked(lm, ctx->task_unlocked, c->log);
        ctx->task_unlocked = 0;
    }

    if (ctx->cancelled) {
        ngx_http_learn_ws_put(lm, ctx->task_ws);
        ctx->task_ws = NULL;

        r->write_event_handler(r);
        ngx_http_run_posted_requests(c);
        return;
    }

    /* a predict's ctx->y lies in the task's workspace: reply first */
    rc = ctx->reply(r, ctx, ctx->task_rc);

    ngx_http_learn_ws_put(lm, ctx->task_ws);
    ctx->task_ws = NULL;

    ngx_http_learn_finalize(r, rc);
}


/* posts a task that reads the request; the request and the worker wait */

ngx_int_t
ngx_http_learn_task_post(ngx_http_request_t *r, void *pool,
    ngx_thread_task_t *task)
{
    if (ngx_thread_task_post(pool, task) != NGX_OK) {
        return NGX_ERROR;
    }

    r->main->blocked++;
    r->aio = 1;

    ngx_http_learn_tasks_add(1);

    return NGX_OK;
}

#else

ngx_int_t
ngx_http_learn_thread_offload(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, double cost)
{
    return NGX_DECLINED;
}


ngx_int_t
ngx_http_learn_task_post(ngx_http_request_t *r, void *pool,
    ngx_thread_task_t *task)
{
    return NGX_ERROR;
}

#endif


/* first thing in a task's completion handler */

void
ngx_http_learn_task_done(ngx_http_request_t *r)
{
    r->main->blocked--;
    r->aio = 0;

    ngx_http_learn_tasks_add(-1);
}


/*
 * Tasks in flight in this worker (request tasks and version reads): a
 * timer that is not cancelable is armed while there are any, because a
 * worker exits once it has no such timer left, and it would then never
 * answer what its tasks did.
 */

void
ngx_http_learn_tasks_add(ngx_int_t n)
{
    ngx_http_learn_tasks += n;

    if (ngx_http_learn_tasks > 0 && !ngx_http_learn_tasks_timer.timer_set) {
        ngx_http_learn_tasks_dumb.fd = (ngx_socket_t) -1;
        ngx_http_learn_tasks_timer.handler = ngx_http_learn_tasks_tick;
        ngx_http_learn_tasks_timer.data = &ngx_http_learn_tasks_dumb;
        ngx_http_learn_tasks_timer.log = ngx_cycle->log;
        ngx_add_timer(&ngx_http_learn_tasks_timer,
                      NGX_HTTP_LEARN_TASKS_TICK);

    } else if (ngx_http_learn_tasks == 0
               && ngx_http_learn_tasks_timer.timer_set)
    {
        ngx_del_timer(&ngx_http_learn_tasks_timer);
    }
}


static void
ngx_http_learn_tasks_tick(ngx_event_t *ev)
{
    if (ngx_http_learn_tasks > 0) {
        ngx_add_timer(ev, NGX_HTTP_LEARN_TASKS_TICK);
    }
}


/* workspaces for pool threads: taken and returned on the event loop */

lt_workspace *
ngx_http_learn_ws_get(ngx_http_learn_model_t *lm, lt_err *err)
{
    if (lm->nws_free) {
        return lm->ws_free[--lm->nws_free];
    }

    return lt_workspace_new(&lm->model, lt_backend_cpu(), 1, err);
}


void
ngx_http_learn_ws_put(ngx_http_learn_model_t *lm, lt_workspace *ws)
{
    if (ws == NULL) {
        return;
    }

    if (lm->nws_free < sizeof(lm->ws_free) / sizeof(lm->ws_free[0])) {
        ngx_http_learn_ws_fit(lm, ws);
        lm->ws_free[lm->nws_free++] = ws;
        return;
    }

    lt_workspace_free(ws);
}


/*
 * After a request that grew a workspace past what a worker keeps (4 MB,
 * or 64 rows when more), back down: one large request must not hold its
 * memory for the worker's lifetime.
 */

void
ngx_http_learn_ws_fit(ngx_http_learn_model_t *lm, lt_workspace *ws)
{
    int     keep;
    lt_err  err;

    if (lm->ws_keep == 0) {
        keep = lt_workspace_rows_within(ws, NGX_HTTP_LEARN_WS_KEEP);
        lm->ws_keep = ngx_max(keep, NGX_HTTP_LEARN_WS_KEEP_ROWS);
    }

    keep = lm->ws_keep;

    if (lt_workspace_capacity(ws) <= keep) {
        return;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "learn \"%V\": workspace back from %d to %d rows",
                   &lm->name, lt_workspace_capacity(ws), keep);

    if (lt_workspace_shrink(ws, keep, &err) != 0) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "learn \"%V\": %s", &lm->name, err.msg);
    }
}
