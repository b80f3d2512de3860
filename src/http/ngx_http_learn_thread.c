
/*
 * learn_thread_pool NAME [threshold=N]: a train step or a forward pass
 * whose cost (multiply-adds, from the layer sizes and the batch) is above
 * the threshold runs on nginx's thread pool NAME, so a 100 ms step never
 * stops a worker's other connections; cheaper work stays inline, where a
 * thread hop would cost more than the arithmetic.
 *
 * A task owns a workspace from the worker's free list (the event loop's
 * own stays with it); the train mutex is taken inside the task, where
 * waiting on it blocks only that thread (and frees it from a worker that
 * was killed holding it: ngx_http_learn_zone_lock_wait()).
 */


#include "ngx_http_learn.h"


/* about 100 us of single-threaded float work */
#define NGX_HTTP_LEARN_THREAD_THRESHOLD  1e6


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
ngx_http_learn_thread_post(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx,
    ngx_uint_t train)
{
    int                      batch;
    double                   cost;
    lt_err                   err;
    ngx_thread_task_t       *task;
    ngx_http_learn_task_t   *lt;
    ngx_http_learn_model_t  *lm;

    if (ctx->lcf->thread_pool == NULL) {
        return NGX_DECLINED;
    }

    lm = ctx->lcf->model;
    batch = (int) (ctx->body.x.ndim == 1 ? 1 : ctx->body.x.shape[0]);
    cost = train ? lt_model_step_flops(&lm->model, batch)
                 : lt_model_forward_flops(&lm->model, batch);

    if (cost < ctx->lcf->thread_threshold) {
        return NGX_DECLINED;
    }

    ctx->task_ws = ngx_http_learn_ws_get(lm, &err);
    if (ctx->task_ws == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "learn: no workspace for a pool thread: %s", err.msg);
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

    ctx->task_train = train;

    task->handler = ngx_http_learn_thread_run;
    task->event.handler = ngx_http_learn_thread_done;
    task->event.data = lt;

    if (ngx_thread_task_post(ctx->lcf->thread_pool, task) != NGX_OK) {
        ngx_http_learn_ws_put(lm, ctx->task_ws);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the thread reads the request's tensors: keep the request alive */
    r->main->blocked++;
    r->aio = 1;

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

    if (!ctx->task_train) {
        ctx->task_rc = ngx_http_learn_predict_compute(ctx, ctx->task_ws, 1,
                                                      &ctx->task_err);
        return;
    }

    ctx->task_unlocked = ngx_http_learn_zone_lock_wait(lm->shm);

    ctx->task_rc = ngx_http_learn_zone_step(lm, ctx->task_ws, &ctx->body.x,
                                            &ctx->body.y, &ctx->loss,
                                            &ctx->step, 1, &ctx->task_err);

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

    r->main->blocked--;
    r->aio = 0;

    if (ctx->task_unlocked) {
        ngx_http_learn_zone_lock_unlocked(lm, ctx->task_unlocked, c->log);
        ctx->task_unlocked = 0;
    }

    if (ctx->task_rc == NGX_DECLINED && ctx->task_train) {
        rc = ngx_http_learn_reject_step(r, ctx);

    } else if (ctx->task_rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0, "learn \"%V\": %s", &lm->name,
                      ctx->task_err.msg);
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else if (ctx->task_train) {
        rc = ngx_http_learn_train_reply(r, ctx);

    } else {
        /* ctx->y lies in the task's workspace: encode before giving it back */
        rc = ngx_http_learn_predict_reply(r, ctx);
    }

    ngx_http_learn_ws_put(lm, ctx->task_ws);
    ctx->task_ws = NULL;

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


char *
ngx_http_learn_thread_pool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_loc_conf_t *lcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (lcf->thread_pool != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    lcf->thread_pool = ngx_thread_pool_add(cf, &value[1]);
    if (lcf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "threshold=", 10) == 0) {
            lcf->thread_threshold = strtod((char *) value[i].data + 10, NULL);

            if (lcf->thread_threshold >= 0) {
                continue;
            }
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (lcf->thread_threshold < 0) {
        lcf->thread_threshold = NGX_HTTP_LEARN_THREAD_THRESHOLD;
    }

    return NGX_CONF_OK;
}

#else

ngx_int_t
ngx_http_learn_thread_post(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx,
    ngx_uint_t train)
{
    return NGX_DECLINED;
}


char *
ngx_http_learn_thread_pool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return "needs nginx built --with-threads";
}

#endif


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
    if (lm->nws_free < sizeof(lm->ws_free) / sizeof(lm->ws_free[0])) {
        lm->ws_free[lm->nws_free++] = ws;
        return;
    }

    lt_workspace_free(ws);
}
