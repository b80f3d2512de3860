
/*
 * learn_predict: a forward pass with the live parameters or with a kept
 * version, run inline, on the thread pool, or stacked with other
 * requests by learn_batch, and answered in the request's encoding.
 */


#include "ngx_http_learn.h"


static ngx_int_t ngx_http_learn_predict_version(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx);
static void ngx_http_learn_predict_resume(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, ngx_int_t rc);
static ngx_int_t ngx_http_learn_predict_go(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx);
static ngx_int_t ngx_http_learn_predict_run(ngx_http_learn_ctx_t *ctx,
    lt_workspace *ws, ngx_uint_t wait);
static ngx_int_t ngx_http_learn_predict_reply(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, ngx_int_t rc);


/* Returns the status to finalize with, or NGX_AGAIN: parked. */

ngx_int_t
ngx_http_learn_predict(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx)
{
    int64_t                  rows;
    ngx_int_t                rc;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;

    if (!ctx->body.has_x) {
        return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                     "missing \"x\"");
    }

    if (lt_model_check_input(&lm->model, &ctx->body.x, &ctx->err) != 0) {
        return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST, "%s",
                                     ctx->err.msg);
    }

    rc = ngx_http_learn_body_bound(r, ctx);
    if (rc != NGX_DECLINED) {
        return rc;     /* refused: the answer is sent */
    }

    if (ngx_http_learn_predict_version(r, ctx) != NGX_OK) {
        return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                     "version must be a checkpoint's step "
                                     "or \"live\"");
    }

    ctx->start_us = ngx_http_learn_now_us();
    ctx->run = ngx_http_learn_predict_run;
    ctx->reply = ngx_http_learn_predict_reply;

    if (lm->dev) {
        rows = (ctx->body.x.ndim == lm->model.in_shape.ndim) ? 1
                                                   : ctx->body.x.shape[0];
        ctx->y_buf = ngx_palloc(r->pool, (size_t) rows * lm->model.out_dim
                                         * sizeof(float));
        if (ctx->y_buf == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ctx->vstep) {
        rc = ngx_http_learn_versions_get(r, ctx,
                                         ngx_http_learn_predict_resume);

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        if (rc != NGX_OK) {
            return ngx_http_learn_predict_reply(r, ctx, rc);
        }
    }

    return ngx_http_learn_predict_go(r, ctx);
}


/* a kept version was read (NGX_OK), or could not be */

static void
ngx_http_learn_predict_resume(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, ngx_int_t rc)
{
    rc = (rc == NGX_OK) ? ngx_http_learn_predict_go(r, ctx)
                        : ngx_http_learn_predict_reply(r, ctx, rc);

    if (rc != NGX_AGAIN) {
        ngx_http_learn_finalize(r, rc);
    }
}


static ngx_int_t
ngx_http_learn_predict_go(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx)
{
    int64_t                  rows;
    ngx_int_t                rc;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;

    if (ctx->vstep == 0) {
        rc = ngx_http_learn_batch_add(r, ctx);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    rows = (ctx->body.x.ndim == lm->model.in_shape.ndim) ? 1
                                                   : ctx->body.x.shape[0];

    rc = ngx_http_learn_thread_offload(r, ctx,
             lt_model_forward_flops(&lm->model, (int) rows));
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_learn_predict_run(ctx, lm->ws, 0);
    rc = ngx_http_learn_predict_reply(r, ctx, rc);

    /* ctx->y was in the workspace: encoded now, it may shrink */
    ngx_http_learn_ws_fit(lm, lm->ws);

    return rc;
}


/*
 * The forward pass of ctx->body.x into ctx->y (borrowed from ws, or in
 * ctx->y_buf after a GPU pass): with a kept version's parameters, or
 * with the live ones, re-read if a step rewrote them meanwhile.  Runs on
 * the event loop or on a pool thread (wait: it may wait for the GPU): it
 * touches the zone, ws and ctx, never the request or its pool.
 */

static ngx_int_t
ngx_http_learn_predict_run(ngx_http_learn_ctx_t *ctx, lt_workspace *ws,
    ngx_uint_t wait)
{
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;

    if (ctx->vstep) {
        ctx->step = ctx->vstep;

        return lt_model_forward(&lm->model, ws, ctx->vparams, &ctx->body.x,
                                &ctx->y, &ctx->err) == 0
               ? NGX_OK : NGX_ERROR;
    }

    if (ngx_http_learn_device_forward(lm, &ctx->body.x, ctx->y_buf, &ctx->y,
                                      wait)
        == NGX_OK)
    {
        ctx->step = (int64_t) lm->shm->step;
        return NGX_OK;
    }

    return ngx_http_learn_predict_live(lm, ws, &ctx->body.x, &ctx->y,
                                       &ctx->step, &ctx->err);
}


/*
 * The forward pass with the live parameters on the CPU, read again if a
 * step rewrote them meanwhile; *step: the step they are the result of.
 */

ngx_int_t
ngx_http_learn_predict_live(ngx_http_learn_model_t *lm, lt_workspace *ws,
    const lt_tensor *x, lt_tensor *y, int64_t *step, lt_err *err)
{
    const float           *params;
    ngx_atomic_uint_t      version;
    ngx_http_learn_shm_t  *shm;

    shm = lm->shm;

    for ( ;; ) {
        params = ngx_http_learn_zone_params(shm, &version);
        *step = (int64_t) shm->step;

        if (lt_model_forward(&lm->model, ws, params, x, y, err) != 0) {
            return NGX_ERROR;
        }

        if (ngx_http_learn_zone_read_valid(shm, version)) {
            return NGX_OK;
        }

        (void) ngx_atomic_fetch_add(&shm->retries, 1);
    }
}


/*
 * NGX_OK: ctx->y in the request's encoding.  NGX_DECLINED: the model
 * keeps no such version (404); NGX_ERROR: the pass or the version file
 * failed (500 with ctx->err in its JSON body, and logged).
 */

static ngx_int_t
ngx_http_learn_predict_reply(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx,
    ngx_int_t rc)
{
    size_t                     len;
    u_char                    *out;
    uint64_t                   us;
    lt_codec_ctx               codec;
    ngx_table_elt_t           *h;
    ngx_http_learn_shm_t      *shm;
    ngx_http_learn_model_t    *lm;
    ngx_http_learn_version_t  *kept;

    lm = ctx->lcf->model;
    shm = lm->shm;

    if (rc == NGX_DECLINED) {
        return ngx_http_learn_reject(r, NGX_HTTP_NOT_FOUND,
                                     "model \"%V\" keeps no version %L",
                                     &lm->name, ctx->vstep);
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "learn_predict \"%V\": %s", &lm->name, ctx->err.msg);
        return ngx_http_learn_fail(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   ctx->err.msg);
    }

    codec.alloc = ngx_http_learn_pool_alloc;
    codec.ctx = r->pool;
    codec.max_elements = 0;
    codec.max_named = 0;

    if (lt_codec_encode_tensor(&codec, "y", &ctx->y,
                               ctx->json_out ? LT_ENC_JSON : ctx->body.enc,
                               &out, &len, &ctx->err)
        != 0)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "learn_predict \"%V\": %s", &lm->name, ctx->err.msg);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    us = ngx_http_learn_now_us() - ctx->start_us;
    ctx->compute_us = us;
    ctx->done = 1;

    (void) ngx_atomic_fetch_add(&shm->predicts, 1);
    ngx_http_learn_hist_observe(&shm->predict_hist, us);

    if (ctx->vstep) {
        kept = ngx_http_learn_versions_find(shm, ctx->vstep);

        if (kept) {
            (void) ngx_atomic_fetch_add(&kept->predicts, 1);
            (void) ngx_atomic_fetch_add(&kept->latency_us, us);
        }

    } else {
        (void) ngx_atomic_fetch_add(&shm->live_latency_us, us);
    }

    if (lm->ckpt_keep || lm->follow) {
        /* which parameters answered: "live" or the version's step */
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "X-Learn-Version");

        if (ctx->vstep) {
            h->value.data = ngx_pnalloc(r->pool, NGX_INT64_LEN);
            if (h->value.data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            h->value.len = ngx_sprintf(h->value.data, "%L", ctx->vstep)
                           - h->value.data;

        } else {
            ngx_str_set(&h->value, "live");
        }
    }

    return ngx_http_learn_send(r, NGX_HTTP_OK,
                               ctx->json_out ? &ngx_http_learn_type_json
                                             : &ngx_http_learn_type_msgpack,
                               out, len);
}


/*
 * ?version=STEP asks for a kept version (?version=live for the live
 * parameters); otherwise learn_candidate sends its share to its version.
 * ctx->vstep is 0 for the live parameters.  NGX_DECLINED: the argument
 * is neither.
 */

static ngx_int_t
ngx_http_learn_predict_version(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx)
{
    ngx_str_t                   arg;
    ngx_int_t                   n;
    ngx_http_learn_loc_conf_t  *lcf;

    lcf = ctx->lcf;
    ctx->vstep = 0;

    if (ngx_http_arg(r, (u_char *) "version", 7, &arg) == NGX_OK) {
        if (arg.len == 4 && ngx_strncmp(arg.data, "live", 4) == 0) {
            return NGX_OK;
        }

        n = ngx_atoi(arg.data, arg.len);
        if (n <= 0) {
            return NGX_DECLINED;
        }

        ctx->vstep = n;
        return NGX_OK;
    }

    if (lcf->candidate && (ngx_uint_t) ngx_random() % 10000
                          < lcf->candidate_share)
    {
        ctx->vstep = lcf->candidate;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "learn: predict sent to candidate version %L",
                       ctx->vstep);
    }

    return NGX_OK;
}
