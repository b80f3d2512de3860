
/*
 * learn_train: one optimizer step per request, serialized across
 * workers by the model's mutex, on the model's GPU or on the CPU.  The
 * event loop never sleeps on the mutex: after a short spin the request
 * retries from a timer, so a worker waiting for another's step keeps
 * serving.  A step that would make the model NaN or Inf is refused.
 */


#include "ngx_http_learn.h"


#define NGX_HTTP_LEARN_LOCK_SPINS   64
#define NGX_HTTP_LEARN_LOCK_DELAY   1      /* ms between lock retries */


static ngx_int_t ngx_http_learn_train_run(ngx_http_learn_ctx_t *ctx,
    lt_workspace *ws, ngx_uint_t wait);
static void ngx_http_learn_lock_retry(ngx_event_t *ev);
static void ngx_http_learn_train_count(ngx_http_learn_shm_t *shm, float loss);


/* Returns the status to finalize with, or NGX_AGAIN: parked. */

ngx_int_t
ngx_http_learn_train(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx)
{
    int64_t                  rows;
    ngx_int_t                rc;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;

    if (!ctx->body.has_x || !ctx->body.has_y) {
        return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                     ctx->body.has_x ? "missing \"y\""
                                                     : "missing \"x\"");
    }

    if (lt_model_check_input(&lm->model, &ctx->body.x, &ctx->err) != 0
        || lt_model_check_target(&lm->model, &ctx->body.x, &ctx->body.y,
                                 &ctx->err) != 0)
    {
        return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST, "%s",
                                     ctx->err.msg);
    }

    rc = ngx_http_learn_body_bound(r, ctx);
    if (rc != NGX_DECLINED) {
        return rc;     /* refused: the answer is sent */
    }

    /* the wait for the model's mutex counts: a user waits as well */
    ctx->start_us = ngx_http_learn_now_us();
    ctx->run = ngx_http_learn_train_run;
    if (ctx->reply == NULL) {
        /* learn_feedback wraps the reply: it settles its labels first */
        ctx->reply = ngx_http_learn_train_reply;
    }

    ctx->locked = 1;

    rows = (ctx->body.x.ndim == lm->model.in_shape.ndim) ? 1
                                                   : ctx->body.x.shape[0];

    rc = ngx_http_learn_thread_offload(r, ctx,
             lt_model_step_flops(&lm->model, (int) rows));
    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_learn_run_locked(r, ctx);
}


/* under the mutex: NGX_DECLINED when the step was refused (not finite) */

static ngx_int_t
ngx_http_learn_train_run(ngx_http_learn_ctx_t *ctx, lt_workspace *ws,
    ngx_uint_t wait)
{
    return ngx_http_learn_train_step(ctx->lcf->model, ws, &ctx->body.x,
                                     &ctx->body.y, &ctx->loss, &ctx->step,
                                     wait, &ctx->err);
}


ngx_int_t
ngx_http_learn_train_reply(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx,
    ngx_int_t rc)
{
    size_t                   len;
    u_char                  *out;
    lt_codec_ctx             codec;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;

    if (rc == NGX_DECLINED) {
        /* 422: a valid batch whose step would make the model NaN or Inf */
        return ngx_http_learn_reject(r, NGX_HTTP_LEARN_UNPROCESSABLE,
                                     "%s: the step was not applied, the "
                                     "model is unchanged", ctx->err.msg);
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "learn_train \"%V\": %s", &lm->name, ctx->err.msg);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->compute_us = ngx_http_learn_now_us() - ctx->start_us;
    ctx->done = 1;

    (void) ngx_atomic_fetch_add(&lm->shm->trains, 1);
    ngx_http_learn_hist_observe(&lm->shm->train_hist, ctx->compute_us);

    codec.alloc = ngx_http_learn_pool_alloc;
    codec.ctx = r->pool;
    codec.max_elements = 0;
    codec.max_named = 0;

    if (lt_codec_encode_train(&codec, ctx->loss, ctx->step, ctx->json_out,
                              &out, &len, &ctx->err)
        != 0)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "learn_train \"%V\": %s", &lm->name, ctx->err.msg);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_learn_send(r, NGX_HTTP_OK,
                               ctx->json_out ? &ngx_http_learn_type_json
                                             : &ngx_http_learn_type_msgpack,
                               out, len);
}


/*
 * ctx->run under the model's mutex (a train step, a weights import),
 * then ctx->reply.  Returns NGX_AGAIN while the mutex is busy (the retry
 * timer goes on), else the reply's status.  The timer retries also free
 * the mutex from a worker that was killed holding it.
 */

ngx_int_t
ngx_http_learn_run_locked(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx)
{
    ngx_int_t                rc;
    ngx_uint_t               i;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;

    for (i = 0; i < NGX_HTTP_LEARN_LOCK_SPINS; i++) {
        if (ngx_shmtx_trylock(&lm->shm->mutex)) {
            rc = ctx->run(ctx, lm->ws, 0);
            ngx_shmtx_unlock(&lm->shm->mutex);

            rc = ctx->reply(r, ctx, rc);
            ngx_http_learn_ws_fit(lm, lm->ws);

            return rc;
        }

        ngx_cpu_pause();
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "learn \"%V\": train lock busy, retry", &lm->name);

    ctx->retry.handler = ngx_http_learn_lock_retry;
    ctx->retry.data = ctx;
    ctx->retry.log = r->connection->log;
    ngx_add_timer(&ctx->retry, NGX_HTTP_LEARN_LOCK_DELAY);

    ctx->parked = NGX_HTTP_LEARN_PARK_LOCK;

    return NGX_AGAIN;
}


void
ngx_http_learn_lock_cancel(ngx_http_learn_ctx_t *ctx)
{
    if (ctx->retry.timer_set) {
        ngx_del_timer(&ctx->retry);
    }
}


static void
ngx_http_learn_lock_retry(ngx_event_t *ev)
{
    ngx_int_t                rc;
    ngx_pid_t                pid;
    ngx_http_request_t      *r;
    ngx_http_learn_ctx_t    *ctx;
    ngx_http_learn_model_t  *lm;

    ctx = ev->data;
    r = ctx->request;
    lm = ctx->lcf->model;

    ctx->parked = NGX_HTTP_LEARN_PARK_NONE;

    /* busy for a timer tick: is its owner still alive? */
    pid = ngx_http_learn_zone_lock_recover(lm->shm);
    if (pid) {
        ngx_http_learn_zone_lock_unlocked(lm, pid, ev->log);
    }

    rc = ngx_http_learn_run_locked(r, ctx);

    if (rc != NGX_AGAIN) {
        ngx_http_learn_finalize(r, rc);
    }
}


/*
 * One optimizer step from the published buffers into the next ones, on
 * the model's GPU when it has one here and it is free (wait: a pool
 * thread, which may wait for it), else on the CPU with ws.  A step whose
 * loss, parameters or optimizer state are not finite is not published:
 * NGX_DECLINED, err says why, and the model is as it was.
 */

ngx_int_t
ngx_http_learn_train_step(ngx_http_learn_model_t *lm, lt_workspace *ws,
    const lt_tensor *x, const lt_tensor *y, float *loss, int64_t *step,
    ngx_uint_t wait, lt_err *err)
{
    float                 *next, *state;
    ngx_int_t              rc;
    ngx_http_learn_shm_t  *shm;

    shm = lm->shm;

    next = ngx_http_learn_zone_begin_write(shm);
    state = ngx_http_learn_zone_state(shm, shm->version + 1);

    rc = ngx_http_learn_device_step(lm, x, y, next, state,
                                    (int64_t) shm->optim_step + 1, loss,
                                    wait, err);

    if (rc == NGX_DECLINED) {
        if (lt_model_train_step_to(&lm->model, ws,
                                   ngx_http_learn_zone_buffer(shm,
                                                              shm->version),
                                   next,
                                   ngx_http_learn_zone_state(shm,
                                                             shm->version),
                                   state, (int64_t) shm->optim_step + 1,
                                   x, y, loss, err)
            != 0
            || lt_model_step_check(&lm->model, *loss, next, state, err) != 0)
        {
            rc = NGX_ERROR;

        } else {
            rc = NGX_OK;
        }
    }

    if (rc != NGX_OK) {
        if (err->code == LT_ENONFINITE) {
            (void) ngx_atomic_fetch_add(&shm->rejected_steps, 1);
            return NGX_DECLINED;
        }

        return NGX_ERROR;
    }

    ngx_http_learn_train_count(shm, *loss);
    ngx_http_learn_zone_publish(shm);

    *step = (int64_t) shm->step;

    return NGX_OK;
}


/*
 * A run of steps published once, for a job that holds the mutex across
 * them: the first step goes from the published buffers into the next
 * ones, as ngx_http_learn_train_step() does, the others update those in
 * place, and ngx_http_learn_train_run_publish() checks and publishes the
 * result.  A predict meanwhile reads the published buffers, which the
 * run does not touch.  Each step's loss is checked by the step itself
 * (a non-finite one updates nothing), the parameters and state once per
 * run.  The CPU only: a model on a GPU here steps with
 * ngx_http_learn_train_step().  Not NGX_OK: nothing was published, and
 * the caller must step the run's batches again one at a time (the
 * checked step names the batch that failed).
 */

ngx_int_t
ngx_http_learn_train_run_step(ngx_http_learn_model_t *lm, lt_workspace *ws,
    const lt_tensor *x, const lt_tensor *y, ngx_uint_t nth, float *loss,
    lt_err *err)
{
    float                 *next, *state;
    ngx_http_learn_shm_t  *shm;

    shm = lm->shm;

    if (nth == 0) {
        next = ngx_http_learn_zone_begin_write(shm);

    } else {
        next = ngx_http_learn_zone_buffer(shm, shm->version + 1);
    }

    state = ngx_http_learn_zone_state(shm, shm->version + 1);

    if (lt_model_train_step_to(&lm->model, ws,
                               nth ? next
                                   : ngx_http_learn_zone_buffer(shm,
                                                                shm->version),
                               next,
                               nth ? state
                                   : ngx_http_learn_zone_state(shm,
                                                               shm->version),
                               state, (int64_t) (shm->optim_step + 1 + nth),
                               x, y, loss, err)
        != 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_learn_train_run_publish(ngx_http_learn_model_t *lm,
    const float *loss, ngx_uint_t n, int64_t *step, lt_err *err)
{
    ngx_uint_t             i;
    ngx_http_learn_shm_t  *shm;

    shm = lm->shm;

    if (lt_model_step_check(&lm->model, loss[n - 1],
                            ngx_http_learn_zone_buffer(shm, shm->version + 1),
                            ngx_http_learn_zone_state(shm, shm->version + 1),
                            err)
        != 0)
    {
        return NGX_DECLINED;
    }

    for (i = 0; i < n; i++) {
        ngx_http_learn_train_count(shm, loss[i]);
    }

    ngx_http_learn_zone_publish(shm);

    *step = (int64_t) shm->step;

    return NGX_OK;
}


static void
ngx_http_learn_train_count(ngx_http_learn_shm_t *shm, float loss)
{
    shm->loss = loss;
    shm->loss_avg = (shm->loss_avg != shm->loss_avg)
                    ? loss : 0.99f * shm->loss_avg + 0.01f * loss;
    shm->step++;
    shm->optim_step++;

    ngx_http_learn_history_add(&shm->history, (int64_t) shm->step, loss);
}
