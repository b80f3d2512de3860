
/*
 * learn_train and learn_predict: read the body, decode it into tensors
 * with the codec, run one step or one forward pass, answer in the
 * request's encoding.  Errors are JSON {"error": "..."} bodies.
 */


#include "ngx_http_learn.h"


#define NGX_HTTP_LEARN_LOCK_SPINS   64
#define NGX_HTTP_LEARN_LOCK_DELAY   1      /* ms between lock retries */
#define NGX_HTTP_LEARN_READ_TRIES   8


static void ngx_http_learn_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_learn_predict(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx);
static ngx_int_t ngx_http_learn_predict_version(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, int64_t *step);
static ngx_int_t ngx_http_learn_train(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx);
static ngx_int_t ngx_http_learn_train_locked(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx);
static void ngx_http_learn_locked_retry(ngx_event_t *ev);
static ngx_int_t ngx_http_learn_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *fmt, ...);


ngx_str_t  ngx_http_learn_type_msgpack = ngx_string("application/msgpack");
ngx_str_t  ngx_http_learn_type_json = ngx_string("application/json");


ngx_int_t
ngx_http_learn_handler(ngx_http_request_t *r)
{
    off_t                       max;
    ngx_int_t                   rc;
    ngx_http_learn_ctx_t       *ctx;
    ngx_http_learn_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_learn_module);

    if (!(r->method & NGX_HTTP_POST)) {
        return ngx_http_learn_reject_method(r, "POST");
    }

    if (ngx_http_learn_body_format(r) == NGX_HTTP_LEARN_FMT_UNKNOWN) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_learn_reject(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                     "content type \"%V\" is not supported, "
                                     "use application/msgpack or "
                                     "application/json",
                                     &r->headers_in.content_type->value);
    }

    /* a JSON number takes at most ~24 bytes; x and y, plus framing */
    max = (off_t) lcf->max_elements * 48 + 65536;

    if (r->headers_in.content_length_n > max) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_learn_reject(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                     "body of %O bytes is too large for "
                                     "learn_max_elements %uz",
                                     r->headers_in.content_length_n,
                                     lcf->max_elements);
    }

    if (lcf->model->shm == NULL || lcf->model->ws == NULL) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_learn_reject(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "model \"%V\" is not ready",
                                     &lcf->model->name);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_learn_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->lcf = lcf;
    ngx_http_set_ctx(r, ctx, ngx_http_learn_module);

    rc = ngx_http_read_client_request_body(r, ngx_http_learn_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * application/msgpack, application/x-msgpack and application/json, with
 * parameters ignored; no Content-Type at all means MessagePack.
 */

ngx_http_learn_fmt_e
ngx_http_learn_body_format(ngx_http_request_t *r)
{
    size_t      len;
    u_char     *p;
    ngx_str_t  *type;

    if (r->headers_in.content_type == NULL) {
        return NGX_HTTP_LEARN_FMT_MSGPACK;
    }

    type = &r->headers_in.content_type->value;
    p = ngx_strlchr(type->data, type->data + type->len, ';');
    len = (p ? (size_t) (p - type->data) : type->len);

    while (len && type->data[len - 1] == ' ') {
        len--;
    }

#define ngx_http_learn_type_is(s)                                            \
    (len == sizeof(s) - 1 && ngx_strncasecmp(type->data, (u_char *) s, len) == 0)

    if (ngx_http_learn_type_is("application/msgpack")
        || ngx_http_learn_type_is("application/x-msgpack"))
    {
        return NGX_HTTP_LEARN_FMT_MSGPACK;
    }

    if (ngx_http_learn_type_is("application/json")) {
        return NGX_HTTP_LEARN_FMT_JSON;
    }

#undef ngx_http_learn_type_is

    return NGX_HTTP_LEARN_FMT_UNKNOWN;
}


/* Accept names application/json and not MessagePack */

ngx_uint_t
ngx_http_learn_wants_json(ngx_http_request_t *r)
{
    ngx_str_t  *accept;

#if (NGX_HTTP_GZIP || NGX_HTTP_HEADERS)
    if (r->headers_in.accept == NULL) {
        return 0;
    }

    accept = &r->headers_in.accept->value;
#else
    return 0;
#endif

    if (ngx_strlcasestrn(accept->data, accept->data + accept->len,
                         (u_char *) "application/json", 16 - 1)
        == NULL)
    {
        return 0;
    }

    return ngx_strlcasestrn(accept->data, accept->data + accept->len,
                            (u_char *) "msgpack", 7 - 1)
           == NULL;
}


static void
ngx_http_learn_body_handler(ngx_http_request_t *r)
{
    size_t                  len;
    u_char                 *data;
    lt_err                  err;
    ngx_int_t               rc;
    lt_codec_ctx            codec;
    ngx_http_learn_ctx_t   *ctx;
    ngx_http_learn_fmt_e    fmt;

    ctx = ngx_http_get_module_ctx(r, ngx_http_learn_module);

    rc = ngx_http_learn_body_bytes(r, &data, &len);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

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

    fmt = ngx_http_learn_body_format(r);

    if (fmt == NGX_HTTP_LEARN_FMT_JSON) {
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
        /* the train lock is busy; ngx_http_learn_train_retry() goes on */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * The request body as one contiguous block: the buffer itself when nginx
 * holds it in one piece of memory, else one copy (memory and temp file
 * parts alike).
 */

ngx_int_t
ngx_http_learn_body_bytes(ngx_http_request_t *r, u_char **data, size_t *len)
{
    u_char       *p;
    off_t         size;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    *data = NULL;
    *len = 0;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        *data = cl->buf->pos;
        *len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    size = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        size += ngx_buf_size(cl->buf);
    }

    if (size == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, (size_t) size);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *data = p;
    *len = (size_t) size;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                              b->file_pos);

            if (n != b->file_last - b->file_pos) {
                ngx_log_error(NGX_LOG_CRIT, r->connection->log, 0,
                              "learn: short read of the request body from "
                              "\"%V\"", &b->file->name);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            p += n;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    return NGX_OK;
}


/*
 * A predict is checked here, computed inline, on the thread pool or in a
 * batch with other requests (ngx_http_learn_predict_compute()), and
 * answered by ngx_http_learn_predict_reply().
 */

static ngx_int_t
ngx_http_learn_predict(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx)
{
    lt_err                   err;
    ngx_int_t                rc;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;

    if (!ctx->body.has_x) {
        return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                     "missing \"x\"");
    }

    if (lt_model_check_input(&lm->model, &ctx->body.x, &err) != 0) {
        return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST, "%s", err.msg);
    }

    rc = ngx_http_learn_predict_version(r, ctx, &ctx->vstep);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->start_us = ngx_http_learn_now_us();

    if (lm->dev) {
        ctx->y_buf = ngx_palloc(r->pool, lt_tensor_numel(&ctx->body.x)
                                         / lm->model.in_dim
                                         * lm->model.out_dim * sizeof(float));
        if (ctx->y_buf == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ctx->vstep == 0) {
        rc = ngx_http_learn_batch_add(r, ctx);
        if (rc != NGX_DECLINED) {
            return rc;
        }

        rc = ngx_http_learn_thread_post(r, ctx, 0);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    rc = ngx_http_learn_predict_compute(ctx, lm->ws, 0, &err);

    if (rc == NGX_DECLINED) {
        return ngx_http_learn_reject(r, NGX_HTTP_NOT_FOUND,
                                     "model \"%V\" keeps no version %L",
                                     &lm->name, ctx->vstep);
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "learn_predict \"%V\": %s", &lm->name, err.msg);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_learn_predict_reply(r, ctx);
}


/*
 * The forward pass of ctx->body.x into ctx->y (borrowed from ws, or in
 * ctx->y_buf after a GPU pass): with a kept version, or with the live
 * parameters, re-read if a step rewrote them meanwhile.  Runs on the
 * event loop or on a pool thread (wait: it may wait for the GPU): it
 * touches the zone, ws and ctx, never the request or its pool.
 * NGX_DECLINED: no such version.
 */

ngx_int_t
ngx_http_learn_predict_compute(ngx_http_learn_ctx_t *ctx, lt_workspace *ws,
    ngx_uint_t wait, lt_err *err)
{
    const float             *params;
    ngx_atomic_uint_t        version;
    ngx_http_learn_shm_t    *shm;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;
    shm = lm->shm;

    if (ctx->vstep) {
        params = ngx_http_learn_versions_params(lm, ctx->vstep,
                                                ngx_cycle->log);
        if (params == NULL) {
            return NGX_DECLINED;
        }

        return lt_model_forward(&lm->model, ws, params, &ctx->body.x,
                                &ctx->y, err) == 0 ? NGX_OK : NGX_ERROR;
    }

    if (ngx_http_learn_device_forward(lm, &ctx->body.x, ctx->y_buf, &ctx->y,
                                      wait)
        == NGX_OK)
    {
        return NGX_OK;
    }

    for ( ;; ) {
        params = ngx_http_learn_zone_params(shm, &version);

        if (lt_model_forward(&lm->model, ws, params, &ctx->body.x, &ctx->y,
                             err)
            != 0)
        {
            return NGX_ERROR;
        }

        if (ngx_http_learn_zone_read_valid(shm, version)) {
            return NGX_OK;
        }

        (void) ngx_atomic_fetch_add(&shm->retries, 1);
    }
}


ngx_int_t
ngx_http_learn_predict_reply(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx)
{
    size_t                     len;
    u_char                    *out;
    lt_err                     err;
    uint64_t                   us;
    lt_codec_ctx               codec;
    ngx_table_elt_t           *h;
    ngx_http_learn_shm_t      *shm;
    ngx_http_learn_model_t    *lm;
    ngx_http_learn_version_t  *kept;

    lm = ctx->lcf->model;
    shm = lm->shm;

    codec.alloc = ngx_http_learn_pool_alloc;
    codec.ctx = r->pool;
    codec.max_elements = 0;

    if (lt_codec_encode_tensor(&codec, "y", &ctx->y,
                               ctx->json_out ? LT_ENC_JSON : ctx->body.enc,
                               &out, &len, &err)
        != 0)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "learn_predict \"%V\": %s", &lm->name, err.msg);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    us = ngx_http_learn_now_us() - ctx->start_us;

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

    if (lm->ckpt_keep) {
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
 * *step is 0 for the live parameters.
 */

static ngx_int_t
ngx_http_learn_predict_version(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, int64_t *step)
{
    ngx_str_t                   arg;
    ngx_int_t                   n;
    ngx_http_learn_loc_conf_t  *lcf;

    lcf = ctx->lcf;
    *step = 0;

    if (ngx_http_arg(r, (u_char *) "version", 7, &arg) == NGX_OK) {
        if (arg.len == 4 && ngx_strncmp(arg.data, "live", 4) == 0) {
            return NGX_OK;
        }

        n = ngx_atoi(arg.data, arg.len);
        if (n <= 0) {
            return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                         "version must be a checkpoint's "
                                         "step or \"live\"");
        }

        *step = n;
        return NGX_OK;
    }

    if (lcf->candidate && (ngx_uint_t) ngx_random() % 10000
                          < lcf->candidate_share)
    {
        *step = lcf->candidate;
    }

    return NGX_OK;
}


/* CLOCK_MONOTONIC from the vDSO: no syscall */

uint64_t
ngx_http_learn_now_us(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


static ngx_int_t
ngx_http_learn_train(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx)
{
    lt_err                   err;
    ngx_int_t                rc;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;

    if (!ctx->body.has_x || !ctx->body.has_y) {
        return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                     ctx->body.has_x ? "missing \"y\""
                                                     : "missing \"x\"");
    }

    if (lt_model_check_input(&lm->model, &ctx->body.x, &err) != 0
        || lt_model_check_target(&lm->model, &ctx->body.x, &ctx->body.y,
                                 &err) != 0
        || lt_workspace_reserve(lm->ws, (int) ctx->body.x.shape[0], &err)
           != 0)
    {
        return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST, "%s", err.msg);
    }

    ctx->locked = ngx_http_learn_train_locked;
    ctx->reply = ngx_http_learn_train_reply;

    /* the wait for the model's mutex counts: a user waits as well */
    ctx->start_us = ngx_http_learn_now_us();

    rc = ngx_http_learn_thread_post(r, ctx, 1);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_learn_run_locked(r, ctx);
}


static ngx_int_t
ngx_http_learn_train_locked(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx)
{
    lt_err                   err;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;

    if (ngx_http_learn_zone_step(lm, lm->ws, &ctx->body.x, &ctx->body.y,
                                 &ctx->loss, &ctx->step, 0, &err)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "learn_train \"%V\": %s", &lm->name, err.msg);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_learn_train_reply(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx)
{
    size_t                   len;
    u_char                  *out;
    lt_err                   err;
    lt_codec_ctx             codec;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;

    (void) ngx_atomic_fetch_add(&lm->shm->trains, 1);
    ngx_http_learn_hist_observe(&lm->shm->train_hist,
                                ngx_http_learn_now_us() - ctx->start_us);

    codec.alloc = ngx_http_learn_pool_alloc;
    codec.ctx = r->pool;
    codec.max_elements = 0;

    if (lt_codec_encode_train(&codec, ctx->loss, ctx->step, ctx->json_out,
                              &out, &len, &err)
        != 0)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "learn_train \"%V\": %s", &lm->name, err.msg);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_learn_send(r, NGX_HTTP_OK,
                               ctx->json_out ? &ngx_http_learn_type_json
                                             : &ngx_http_learn_type_msgpack,
                               out, len);
}


/*
 * Whatever changes a model's parameters (a train step, a weights import)
 * runs under the model's mutex, serialized across workers.  The event
 * loop never sleeps on it: after a short spin the request retries from a
 * timer, so a worker waiting for another's step keeps serving.  Returns
 * NGX_AGAIN while waiting, else the reply's status.  The timer retries
 * also free the mutex from a worker that was killed holding it.
 */

ngx_int_t
ngx_http_learn_run_locked(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx)
{
    ngx_int_t              rc;
    ngx_uint_t             i;
    ngx_http_learn_shm_t  *shm;

    shm = ctx->lcf->model->shm;

    for (i = 0; i < NGX_HTTP_LEARN_LOCK_SPINS; i++) {
        if (ngx_shmtx_trylock(&shm->mutex)) {
            rc = ctx->locked(r, ctx);
            ngx_shmtx_unlock(&shm->mutex);

            if (rc != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ctx->reply(r, ctx);
        }

        ngx_cpu_pause();
    }

    ctx->retry.handler = ngx_http_learn_locked_retry;
    ctx->retry.data = r;
    ctx->retry.log = r->connection->log;
    ngx_add_timer(&ctx->retry, NGX_HTTP_LEARN_LOCK_DELAY);

    return NGX_AGAIN;
}


static void
ngx_http_learn_locked_retry(ngx_event_t *ev)
{
    ngx_int_t                rc;
    ngx_pid_t                pid;
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_learn_ctx_t    *ctx;
    ngx_http_learn_model_t  *lm;

    r = ev->data;
    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_learn_module);
    lm = ctx->lcf->model;

    /* busy for a timer tick: is its owner still alive? */
    pid = ngx_http_learn_zone_lock_recover(lm->shm);
    if (pid) {
        ngx_http_learn_zone_lock_unlocked(lm, pid, c->log);
    }

    rc = ngx_http_learn_run_locked(r, ctx);

    if (rc != NGX_AGAIN) {
        ngx_http_finalize_request(r, rc);
        ngx_http_run_posted_requests(c);
    }
}


/* 405 with Allow (e.g. "GET, PUT"), after discarding the body */

ngx_int_t
ngx_http_learn_reject_method(ngx_http_request_t *r, char *allowed)
{
    ngx_int_t         rc;
    ngx_table_elt_t  *allow;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    allow = ngx_list_push(&r->headers_out.headers);
    if (allow == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    allow->hash = 1;
    ngx_str_set(&allow->key, "Allow");
    allow->value.data = (u_char *) allowed;
    allow->value.len = ngx_strlen(allowed);

    return ngx_http_learn_reject(r, NGX_HTTP_NOT_ALLOWED,
                                 "method %V is not allowed, use %s",
                                 &r->method_name, allowed);
}


/* A client error: one info line in error.log and a JSON body. */

ngx_int_t
ngx_http_learn_reject(ngx_http_request_t *r, ngx_uint_t status,
    const char *fmt, ...)
{
    u_char                     *p;
    va_list                     args;
    u_char                      msg[NGX_MAX_ERROR_STR];
    ngx_http_learn_loc_conf_t  *lcf;

    va_start(args, fmt);
    p = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    va_end(args);

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_learn_module);

    if (lcf->model && lcf->model->shm) {
        (void) ngx_atomic_fetch_add(&lcf->model->shm->rejects, 1);
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "learn: %ui: %*s", status, p - msg, msg);

    return ngx_http_learn_send_error(r, status, "%*s", p - msg, msg);
}


/* {"error": "..."}, the message escaped for JSON */

static ngx_int_t
ngx_http_learn_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *fmt, ...)
{
    u_char   *p, *last, *out, *o;
    va_list   args;
    u_char    msg[NGX_MAX_ERROR_STR];

    va_start(args, fmt);
    last = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    va_end(args);

    out = ngx_pnalloc(r->pool, sizeof("{\"error\": \"\"}\n") - 1
                               + 2 * (last - msg));
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    o = ngx_cpymem(out, "{\"error\": \"", sizeof("{\"error\": \"") - 1);

    for (p = msg; p < last; p++) {
        if (*p == '"' || *p == '\\') {
            *o++ = '\\';
            *o++ = *p;

        } else if (*p < 0x20 || *p >= 0x7f) {
            /* client bytes (a method, a content type) stay valid JSON */
            *o++ = '?';

        } else {
            *o++ = *p;
        }
    }

    o = ngx_cpymem(o, "\"}\n", 3);

    return ngx_http_learn_send(r, status, &ngx_http_learn_type_json, out,
                               o - out);
}


ngx_int_t
ngx_http_learn_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *data, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_length_n = len;

    if (len == 0) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


void *
ngx_http_learn_pool_alloc(void *ctx, size_t size)
{
    /* tensors hold floats: keep pool memory aligned */
    return ngx_palloc(ctx, size);
}
