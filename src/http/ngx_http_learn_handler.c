
/*
 * learn_train, learn_predict and learn_feedback: the content handler.  It checks what
 * can be checked before the body arrives (method, type, declared size),
 * reads the body, decodes it into tensors with the codec and hands the
 * request to ngx_http_learn_train() or ngx_http_learn_predict().
 *
 * Every request's context has a cleanup: wherever the module parks it
 * (a batch queue, the wait for a kept version, the train-lock retry
 * timer, a pool task), nginx finalizing or terminating the request
 * unlinks it there first, so nothing the module holds outlives it.
 */


#include "ngx_http_learn.h"


static void ngx_http_learn_ctx_cleanup(void *data);
static void ngx_http_learn_decode(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, u_char *data, size_t len);


ngx_int_t
ngx_http_learn_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_learn_ctx_t       *ctx;
    ngx_http_learn_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_learn_module);

    rc = ngx_http_learn_body_admit(r, lcf->model, lcf->max_elements, 1,
                                   NULL);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    /* follow=: no train (409), no predict before a first version (503) */
    rc = ngx_http_learn_store_check(r, lcf->model,
                                    lcf->role != NGX_HTTP_LEARN_PREDICT);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx = ngx_http_learn_ctx_create(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_learn_body_read(r, ctx, ngx_http_learn_decode);
}


ngx_http_learn_ctx_t *
ngx_http_learn_ctx_create(ngx_http_request_t *r)
{
    ngx_http_cleanup_t    *cln;
    ngx_http_learn_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_learn_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_learn_ctx_cleanup;
    cln->data = ctx;

    ctx->request = r;
    ctx->lcf = ngx_http_get_module_loc_conf(r, ngx_http_learn_module);
    ngx_queue_init(&ctx->queue);

    ngx_http_set_ctx(r, ctx, ngx_http_learn_module);

    return ctx;
}


/*
 * nginx ends the request (finalized, terminated, or its connection
 * closed, as a worker_shutdown_timeout does): wherever it waits, it
 * waits no longer.  A pool task still reading it keeps the request
 * (r->blocked) until it completes; it sees "cancelled" and applies no
 * step.
 */

static void
ngx_http_learn_ctx_cleanup(void *data)
{
    ngx_http_learn_ctx_t  *ctx = data;

    switch (ctx->parked) {

    case NGX_HTTP_LEARN_PARK_BATCH:
        ngx_http_learn_batch_remove(ctx);
        break;

    case NGX_HTTP_LEARN_PARK_QUEUE:
        ngx_queue_remove(&ctx->queue);
        break;

    case NGX_HTTP_LEARN_PARK_LOCK:
        ngx_http_learn_lock_cancel(ctx);
        break;

    default:
        break;
    }

    ctx->parked = NGX_HTTP_LEARN_PARK_NONE;

    ngx_memory_barrier();
    ctx->cancelled = 1;
}


static void
ngx_http_learn_decode(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx,
    u_char *data, size_t len)
{
    lt_err                  err;
    ngx_int_t               rc;
    lt_codec_ctx            codec;

    if ((off_t) len > (off_t) ctx->lcf->max_elements * 48 + 65536) {
        ngx_http_finalize_request(r,
            ngx_http_learn_reject(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "body of %uz bytes is too large for "
                                  "learn_max_elements %uz",
                                  len, ctx->lcf->max_elements));
        return;
    }

    codec.alloc = ngx_http_learn_pool_alloc;
    codec.ctx = r->pool;
    codec.max_elements = ctx->lcf->max_elements;
    codec.max_named = 0;

    if (ctx->lcf->role == NGX_HTTP_LEARN_FEEDBACK) {
        ctx->json_out = (ngx_http_learn_body_format(r)
                         == NGX_HTTP_LEARN_FMT_JSON)
                        || ngx_http_learn_wants_json(r);

        rc = ngx_http_learn_feedback(r, ctx, data, len);

        if (rc != NGX_AGAIN) {
            ngx_http_finalize_request(r, rc);
        }

        return;
    }

    if (ngx_http_learn_body_format(r) == NGX_HTTP_LEARN_FMT_JSON) {
        rc = lt_codec_decode_json(&codec, data, len, &ctx->body, &err);
        ctx->json_out = 1;

    } else {
        rc = lt_codec_decode_msgpack(&codec, data, len, &ctx->body, &err);
        ctx->json_out = ngx_http_learn_wants_json(r);
    }

    if (rc != 0) {
        ngx_http_finalize_request(r,
            ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST, "%s", err.msg));
        return;
    }

    if (ctx->lcf->role == NGX_HTTP_LEARN_TRAIN) {
        rc = ngx_http_learn_train(r, ctx);

    } else {
        rc = ngx_http_learn_predict(r, ctx);
    }

    if (rc == NGX_AGAIN) {
        /* parked: a queue, a timer or a pool task answers it */
        return;
    }

    ngx_http_finalize_request(r, rc);
}

