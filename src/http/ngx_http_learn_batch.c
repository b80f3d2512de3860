
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
static ngx_int_t ngx_http_learn_batch_stack(ngx_http_learn_loc_conf_t *lcf,
    ngx_http_learn_ctx_t *head, lt_tensor *x);


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

    rows = (ctx->body.x.ndim == 1) ? 1 : (ngx_uint_t) ctx->body.x.shape[0];

    if (rows >= lcf->batch_max) {
        return NGX_DECLINED;
    }

    if (lcf->batch_rows + rows > lcf->batch_max) {
        ngx_http_learn_batch_flush(lcf);
    }

    ctx->request = r;
    ctx->batch_next = NULL;

    if (lcf->batch_head == NULL) {
        lcf->batch_head = ctx;
        lcf->batch_tail = &lcf->batch_head;

        lcf->batch_timer.handler = ngx_http_learn_batch_timer;
        lcf->batch_timer.data = lcf;
        lcf->batch_timer.log = ngx_cycle->log;

        if (lcf->batch_timeout) {
            ngx_add_timer(&lcf->batch_timer, lcf->batch_timeout);

        } else {
            /* after the events at hand: whatever arrived with this one */
            ngx_post_event(&lcf->batch_timer, &ngx_posted_events);
        }

    } else {
        *lcf->batch_tail = ctx;
    }

    lcf->batch_tail = &ctx->batch_next;
    lcf->batch_rows += rows;

    if (lcf->batch_rows == lcf->batch_max) {
        ngx_http_learn_batch_flush(lcf);
    }

    return NGX_AGAIN;
}


static void
ngx_http_learn_batch_timer(ngx_event_t *ev)
{
    ngx_http_learn_batch_flush(ev->data);
}


/*
 * One forward pass over every queued request's rows, then each request
 * answered with its own rows, as if it had run alone.
 */

static void
ngx_http_learn_batch_flush(ngx_http_learn_loc_conf_t *lcf)
{
    lt_err                 err;
    int64_t                off;
    ngx_int_t              rc;
    ngx_connection_t      *c;
    ngx_http_request_t    *r;
    ngx_http_learn_ctx_t   batch, *head, *ctx, *next;

    if (lcf->batch_timer.timer_set) {
        ngx_del_timer(&lcf->batch_timer);
    }

    if (lcf->batch_timer.posted) {
        ngx_delete_posted_event(&lcf->batch_timer);
    }

    head = lcf->batch_head;

    lcf->batch_head = NULL;
    lcf->batch_rows = 0;

    if (head == NULL) {
        return;
    }

    if (head->batch_next == NULL) {
        /* alone after all: no copy */
        r = head->request;
        c = r->connection;

        rc = ngx_http_learn_predict_compute(head, lcf->model->ws, 0, &err);
        rc = (rc == NGX_OK) ? ngx_http_learn_predict_reply(r, head)
                            : NGX_HTTP_INTERNAL_SERVER_ERROR;

        ngx_http_finalize_request(r, rc);
        ngx_http_run_posted_requests(c);
        return;
    }

    ngx_memzero(&batch, sizeof(ngx_http_learn_ctx_t));
    batch.lcf = lcf;

    rc = ngx_http_learn_batch_stack(lcf, head, &batch.body.x);

    if (rc == NGX_OK) {
        batch.y_buf = lcf->batch_ybuf;

        rc = ngx_http_learn_predict_compute(&batch, lcf->model->ws, 0,
                                            &err);

        (void) ngx_atomic_fetch_add(&lcf->model->shm->batches, 1);

        if (rc != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "learn_predict \"%V\": %s", &lcf->model->name,
                          err.msg);
        }
    }

    off = 0;

    for (ctx = head; ctx; ctx = next) {
        next = ctx->batch_next;
        r = ctx->request;
        c = r->connection;

        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            ngx_http_run_posted_requests(c);
            continue;
        }

        /* this request's rows of the output, in the shape alone gives */
        ctx->y = batch.y;
        ctx->y.data = batch.y.data + off * batch.y.shape[1];

        if (ctx->body.x.ndim == 1) {
            ctx->y.ndim = 1;
            ctx->y.shape[0] = batch.y.shape[1];
            off += 1;

        } else {
            ctx->y.shape[0] = ctx->body.x.shape[0];
            off += ctx->body.x.shape[0];
        }

        (void) ngx_atomic_fetch_add(&lcf->model->shm->batched, 1);

        ngx_http_finalize_request(r, ngx_http_learn_predict_reply(r, ctx));
        ngx_http_run_posted_requests(c);
    }
}


/* the queued x rows, one after another, in this worker's batch buffer */

static ngx_int_t
ngx_http_learn_batch_stack(ngx_http_learn_loc_conf_t *lcf,
    ngx_http_learn_ctx_t *head, lt_tensor *x)
{
    float                 *p;
    size_t                 n;
    int64_t                shape[2];
    ngx_http_learn_ctx_t  *ctx;

    shape[0] = 0;
    shape[1] = lcf->model->model.in_dim;

    if (lcf->batch_buf == NULL) {
        lcf->batch_buf = ngx_alloc(lcf->batch_max * (size_t) shape[1]
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

    for (ctx = head; ctx; ctx = ctx->batch_next) {
        n = (size_t) lt_tensor_numel(&ctx->body.x);
        ngx_memcpy(p, ctx->body.x.data, n * sizeof(float));
        p += n;
        shape[0] += (int64_t) (n / (size_t) shape[1]);
    }

    lt_tensor_view(x, lcf->batch_buf, 2, shape);

    return NGX_OK;
}


/* learn_batch max=N timeout=TIME; */

char *
ngx_http_learn_batch(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_loc_conf_t *lcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (lcf->batch_max != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    lcf->batch_max = 64;
    lcf->batch_timeout = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "max=", 4) == 0) {
            n = ngx_atoi(value[i].data + 4, value[i].len - 4);
            if (n < 2 || n > 65536) {
                goto invalid;
            }

            lcf->batch_max = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            lcf->batch_timeout = ngx_parse_time(&s, 0);
            if (lcf->batch_timeout == (ngx_msec_t) NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}
