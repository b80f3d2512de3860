
/*
 * learn_weights: GET exports every parameter as a map name -> tensor
 * (msgpack-numpy, or JSON with Accept: application/json); PUT imports
 * such a map, all or nothing, every name and shape checked, so weights
 * trained elsewhere (numpy, a PyTorch state_dict) load as they are.
 */


#include "ngx_http_learn.h"


static ngx_int_t ngx_http_learn_weights_export(ngx_http_request_t *r,
    ngx_http_learn_loc_conf_t *lcf);
static void ngx_http_learn_weights_body(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, u_char *data, size_t len);
static ngx_int_t ngx_http_learn_weights_check(ngx_http_learn_ctx_t *ctx,
    u_char *msg, size_t size);
static ngx_int_t ngx_http_learn_weights_locked(ngx_http_learn_ctx_t *ctx,
    lt_workspace *ws, ngx_uint_t wait);
static ngx_int_t ngx_http_learn_weights_reply(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, ngx_int_t rc);


ngx_int_t
ngx_http_learn_weights_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_learn_ctx_t       *ctx;
    ngx_http_learn_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_learn_module);

    /* follow=: the store's version is served, never replaced here */
    if (lcf->model->shm
        && (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_PUT)))
    {
        rc = ngx_http_learn_store_check(r, lcf->model,
                                        r->method & NGX_HTTP_PUT);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_learn_weights_export(r, lcf);
    }

    if (!(r->method & NGX_HTTP_PUT)) {
        return ngx_http_learn_reject_method(r, "GET, PUT");
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

    if (lcf->model->shm == NULL) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_learn_reject(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "model \"%V\" is not ready",
                                     &lcf->model->name);
    }

    ctx = ngx_http_learn_ctx_create(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_learn_body_read(r, ctx, ngx_http_learn_weights_body);
}


/*
 * A consistent copy of the published parameters: re-read if a step
 * rewrote the buffer meanwhile (see ngx_http_learn_zone_read_valid()).
 */

static ngx_int_t
ngx_http_learn_weights_export(ngx_http_request_t *r,
    ngx_http_learn_loc_conf_t *lcf)
{
    int                      i;
    float                   *copy;
    size_t                   len;
    u_char                  *out;
    lt_err                   err;
    int64_t                **ints;
    lt_tensor               *tensors;
    const char             **names;
    const float             *params;
    lt_codec_ctx             codec;
    ngx_atomic_uint_t        version;
    const lt_param_info     *pi;
    ngx_http_learn_model_t  *lm;

    lm = lcf->model;

    copy = ngx_palloc(r->pool, lt_model_values(&lm->model) * sizeof(float));
    names = ngx_palloc(r->pool, lm->model.nparams * sizeof(char *));
    tensors = ngx_pcalloc(r->pool, lm->model.nparams * sizeof(lt_tensor));
    ints = ngx_pcalloc(r->pool, lm->model.nparams * sizeof(int64_t *));

    if (copy == NULL || names == NULL || tensors == NULL || ints == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    do {
        params = ngx_http_learn_zone_params(lm->shm, &version);
        ngx_memcpy(copy, params, lt_model_values(&lm->model) * sizeof(float));
    } while (!ngx_http_learn_zone_read_valid(lm->shm, version));

    for (i = 0; i < lm->model.nparams; i++) {
        pi = &lm->model.params[i];
        names[i] = pi->name;
        lt_tensor_view(&tensors[i], copy + pi->offset, pi->ndim, pi->shape);

        /* BatchNorm's num_batches_tracked is int64 in a state dict */
        if (pi->dtype == LT_DTYPE_I64) {
            ints[i] = ngx_palloc(r->pool, pi->numel * sizeof(int64_t));
            if (ints[i] == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            for (len = 0; len < pi->numel; len++) {
                ints[i][len] = lt_i64_get(copy + pi->offset + 2 * len);
            }
        }
    }

    codec.alloc = ngx_http_learn_pool_alloc;
    codec.ctx = r->pool;
    codec.max_elements = 0;
    codec.max_named = 0;

    if (lt_codec_encode_named_ints(&codec, lm->model.nparams, names, tensors,
                                   (const int64_t *const *) ints,
                                   ngx_http_learn_wants_json(r)
                                   ? LT_ENC_JSON : LT_ENC_NUMPY,
                                   &out, &len, &err)
        != 0)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "learn_weights \"%V\": %s", &lm->name, err.msg);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_learn_send(r, NGX_HTTP_OK,
                               ngx_http_learn_wants_json(r)
                               ? &ngx_http_learn_type_json
                               : &ngx_http_learn_type_msgpack,
                               out, len);
}


static void
ngx_http_learn_weights_body(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx,
    u_char *data, size_t len)
{
    lt_err                 err;
    ngx_int_t              rc;
    lt_codec_ctx           codec;
    u_char                 msg[NGX_MAX_ERROR_STR];

    codec.alloc = ngx_http_learn_pool_alloc;
    codec.ctx = r->pool;
    codec.max_elements = lt_model_values(&ctx->lcf->model->model);
    codec.max_named = (size_t) ctx->lcf->model->model.nparams;

    ctx->json_out = (ngx_http_learn_body_format(r) == NGX_HTTP_LEARN_FMT_JSON);

    if (lt_codec_decode_named(&codec, data, len, ctx->json_out,
                              &ctx->nnamed, &ctx->names, &ctx->tensors, &err)
        != 0)
    {
        ngx_http_finalize_request(r,
            ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST, "%s", err.msg));
        return;
    }

    if (ngx_http_learn_weights_check(ctx, msg, sizeof(msg)) != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST, "%s", msg));
        return;
    }

    ctx->run = ngx_http_learn_weights_locked;
    ctx->reply = ngx_http_learn_weights_reply;
    ctx->locked = 1;

    rc = ngx_http_learn_run_locked(r, ctx);

    if (rc != NGX_AGAIN) {
        ngx_http_finalize_request(r, rc);
    }
}


/*
 * All or nothing: every parameter once, with its exact shape.  On a
 * mismatch msg gets the reason, NUL-terminated.
 */

static ngx_int_t
ngx_http_learn_weights_check(ngx_http_learn_ctx_t *ctx, u_char *msg,
    size_t size)
{
    int                      i, d;
    char                     got[64], want[64];
    int64_t                  at;
    lt_tensor                shape;
    const lt_param_info     *pi;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;
    size--;

    for (i = 0; i < ctx->nnamed; i++) {
        pi = lt_model_find_param(&lm->model, ctx->names[i]);

        if (pi == NULL) {
            *ngx_snprintf(msg, size, "model \"%V\" has no parameter \"%s\"",
                          &lm->name, ctx->names[i]) = '\0';
            return NGX_DECLINED;
        }

        for (d = 0; d < pi->ndim || ctx->tensors[i].ndim != pi->ndim; d++) {
            if (ctx->tensors[i].ndim != pi->ndim
                || ctx->tensors[i].shape[d] != pi->shape[d])
            {
                lt_tensor_view(&shape, NULL, pi->ndim, pi->shape);

                *ngx_snprintf(msg, size,
                              "\"%s\" has shape %s, the model's is %s",
                              pi->name,
                              lt_shape_str(&ctx->tensors[i], got, sizeof(got)),
                              lt_shape_str(&shape, want, sizeof(want)))
                    = '\0';
                return NGX_DECLINED;
            }
        }

        at = lt_tensor_nonfinite_at(&ctx->tensors[i]);

        if (at >= 0) {
            *ngx_snprintf(msg, size, "\"%s\" has a non-finite value (NaN "
                          "or Inf) at element %L", pi->name, at) = '\0';
            return NGX_DECLINED;
        }

        /* int64 entries (a count) arrive as floats: whole, exact ones */
        for (d = 0; pi->dtype == LT_DTYPE_I64 && d < (int) pi->numel; d++) {
            if (!(ctx->tensors[i].data[d] >= 0.0f
                  && ctx->tensors[i].data[d] <= 16777216.0f
                  && ctx->tensors[i].data[d]
                     == (float) (int64_t) ctx->tensors[i].data[d]))
            {
                *ngx_snprintf(msg, size, "\"%s\" must hold whole numbers "
                              "in [0, 2^24], not %.1f", pi->name,
                              (double) ctx->tensors[i].data[d]) = '\0';
                return NGX_DECLINED;
            }
        }

        for (d = i + 1; d < ctx->nnamed; d++) {
            if (ngx_strcmp(ctx->names[i], ctx->names[d]) == 0) {
                *ngx_snprintf(msg, size, "\"%s\" appears twice",
                              ctx->names[i]) = '\0';
                return NGX_DECLINED;
            }
        }
    }

    /* every name is the model's and none twice: count the missing ones */

    for (i = 0; ctx->nnamed != lm->model.nparams && i < lm->model.nparams;
         i++)
    {
        for (d = 0; d < ctx->nnamed; d++) {
            if (ngx_strcmp(ctx->names[d], lm->model.params[i].name) == 0) {
                break;
            }
        }

        if (d == ctx->nnamed) {
            *ngx_snprintf(msg, size, "missing \"%s\": an import sets every "
                          "parameter (%d), this body has %d",
                          lm->model.params[i].name, lm->model.nparams,
                          ctx->nnamed) = '\0';
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * The new parameters go to the unpublished buffer, then one publish.
 * The optimizer state starts over with them (momentum, Adam's moments
 * and bias correction): state earned by other weights would push the
 * new ones, and a non-finite moment would never wear off.
 */

static ngx_int_t
ngx_http_learn_weights_locked(ngx_http_learn_ctx_t *ctx, lt_workspace *ws,
    ngx_uint_t wait)
{
    int                      i;
    size_t                   d;
    float                   *back;
    const lt_param_info     *pi;
    ngx_http_learn_shm_t    *shm;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;
    shm = lm->shm;

    back = ngx_http_learn_zone_begin_write(shm);

    for (i = 0; i < ctx->nnamed; i++) {
        pi = lt_model_find_param(&lm->model, ctx->names[i]);

        if (pi->dtype == LT_DTYPE_I64) {
            for (d = 0; d < pi->numel; d++) {
                lt_i64_set(back + pi->offset + 2 * d,
                           (int64_t) ctx->tensors[i].data[d]);
            }
            continue;
        }

        ngx_memcpy(back + pi->offset, ctx->tensors[i].data,
                   pi->numel * sizeof(float));
    }

    ngx_http_learn_zone_publish_import(lm->shm, &lm->model);

    return NGX_OK;
}



static ngx_int_t
ngx_http_learn_weights_reply(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, ngx_int_t rc)
{
    u_char                  *out, *p;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "learn_weights \"%V\": imported %d parameters",
                  &lm->name, ctx->nnamed);

    out = ngx_pnalloc(r->pool, 128);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(out, "{\"imported\": %d, \"params\": %uz}\n",
                    ctx->nnamed, lm->model.param_count);

    return ngx_http_learn_send(r, NGX_HTTP_OK, &ngx_http_learn_type_json, out,
                               p - out);
}
