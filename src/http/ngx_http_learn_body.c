
/*
 * Request bodies: their format, and their bytes as one contiguous block.
 * A body nginx holds in one buffer is used where it lies; one in several
 * parts is copied once.  Parts that nginx spooled to a temporary file
 * (any body over client_body_buffer_size) are read on a thread pool,
 * never on the event loop.
 */


#include "ngx_http_learn.h"


#define NGX_HTTP_LEARN_BODY_PARTS  8


typedef struct {
    ngx_fd_t                       fd;
    off_t                          offset;
    size_t                         size;
    u_char                        *dst;
} ngx_http_learn_body_part_t;


typedef struct {
    ngx_http_request_t            *request;
    ngx_http_learn_ctx_t          *ctx;
    u_char                        *data;
    size_t                         len;
    ngx_uint_t                     nparts;
    ngx_http_learn_body_part_t     parts[NGX_HTTP_LEARN_BODY_PARTS];
    ngx_err_t                      err;       /* of a failed read */
    ngx_uint_t                     short_read;
} ngx_http_learn_body_task_t;


static void ngx_http_learn_body_ready(ngx_http_request_t *r);
static ngx_int_t ngx_http_learn_body_gather(ngx_http_request_t *r,
    ngx_http_learn_body_task_t *bt);
static void ngx_http_learn_body_read_parts(void *data, ngx_log_t *log);
#if (NGX_THREADS)
static void ngx_http_learn_body_read_done(ngx_event_t *ev);
#endif
static void ngx_http_learn_body_deliver(ngx_http_learn_body_task_t *bt);


/*
 * What every POST of tensors passes before its body is read: the method,
 * a content type the codec reads, a declared length within what
 * max_elements can need (a JSON number takes at most ~24 bytes; x and y,
 * plus framing) and a ready model.  NGX_DECLINED: go on; else the answer
 * (the body discarded first, so the JSON error is nginx's last word).
 * hint, when not NULL, ends the "too large" message.
 */

ngx_int_t
ngx_http_learn_body_admit(ngx_http_request_t *r, ngx_http_learn_model_t *lm,
    size_t max_elements, ngx_uint_t ready, const char *hint)
{
    off_t       max, length;
    ngx_int_t   rc;
    ngx_uint_t  unknown;

    if (!(r->method & NGX_HTTP_POST)) {
        return ngx_http_learn_reject_method(r, "POST");
    }

    max = (off_t) max_elements * 48 + 65536;
    length = r->headers_in.content_length_n;
    unknown = (ngx_http_learn_body_format(r) == NGX_HTTP_LEARN_FMT_UNKNOWN);

    if (!unknown && length <= max && lm->shm != NULL && lm->ws != NULL
        && ready)
    {
        return NGX_DECLINED;
    }

    /* after this, content_length_n is what is left to discard */
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (unknown) {
        return ngx_http_learn_reject(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                     "content type \"%V\" is not supported, "
                                     "use application/msgpack or "
                                     "application/json",
                                     &r->headers_in.content_type->value);
    }

    if (length > max) {
        return ngx_http_learn_reject(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                     "body of %O bytes is too large for "
                                     "learn_max_elements %uz%s",
                                     length, max_elements, hint ? hint : "");
    }

    return ngx_http_learn_reject(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "model \"%V\" is not ready", &lm->name);
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


/*
 * Reads the body; done(r, ctx, data, len) runs once it is all in memory
 * and finalizes the request.  Returns what a content handler returns.
 */

ngx_int_t
ngx_http_learn_body_read(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx,
    ngx_http_learn_body_pt done)
{
    ngx_int_t  rc;

    ctx->body_done = done;

    rc = ngx_http_read_client_request_body(r, ngx_http_learn_body_ready);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_learn_body_ready(ngx_http_request_t *r)
{
    ngx_chain_t                 *cl;
    ngx_http_learn_ctx_t        *ctx;
    ngx_http_learn_body_task_t   one, *bt;
#if (NGX_THREADS)
    ngx_thread_task_t           *task;
#endif

    ctx = ngx_http_get_module_ctx(r, ngx_http_learn_module);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        ctx->body_done(r, ctx, NULL, 0);
        return;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        ctx->body_done(r, ctx, cl->buf->pos, cl->buf->last - cl->buf->pos);
        return;
    }

    bt = &one;

#if (NGX_THREADS)
    task = NULL;

    if (ctx->lcf->io_pool) {
        task = ngx_thread_task_alloc(r->pool,
                                     sizeof(ngx_http_learn_body_task_t));
        if (task == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        bt = task->ctx;
    }
#endif

    ngx_memzero(bt, sizeof(ngx_http_learn_body_task_t));
    bt->request = r;
    bt->ctx = ctx;

    if (ngx_http_learn_body_gather(r, bt) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

#if (NGX_THREADS)
    if (task && bt->nparts) {
        task->handler = ngx_http_learn_body_read_parts;
        task->event.handler = ngx_http_learn_body_read_done;
        task->event.data = bt;

        if (ngx_http_learn_task_post(r, ctx->lcf->io_pool, task) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "learn: body of %uz bytes read on a thread", bt->len);
        return;
    }
#endif

    /* built without threads: no way around a blocking read */
    ngx_http_learn_body_read_parts(bt, r->connection->log);
    ngx_http_learn_body_deliver(bt);
}


/* one block for the body: memory parts copied, file parts listed */

static ngx_int_t
ngx_http_learn_body_gather(ngx_http_request_t *r,
    ngx_http_learn_body_task_t *bt)
{
    u_char       *p;
    off_t         size;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    size = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        size += ngx_buf_size(cl->buf);
    }

    bt->len = (size_t) size;

    if (size == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, (size_t) size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    bt->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        if (bt->nparts == NGX_HTTP_LEARN_BODY_PARTS) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "learn: request body in more than %d file parts",
                          NGX_HTTP_LEARN_BODY_PARTS);
            return NGX_ERROR;
        }

        bt->parts[bt->nparts].fd = b->file->fd;
        bt->parts[bt->nparts].offset = b->file_pos;
        bt->parts[bt->nparts].size = (size_t) (b->file_last - b->file_pos);
        bt->parts[bt->nparts].dst = p;
        bt->nparts++;

        p += b->file_last - b->file_pos;
    }

    return NGX_OK;
}


/* on a pool thread (or inline): pread only, no logging, no pools */

static void
ngx_http_learn_body_read_parts(void *data, ngx_log_t *log)
{
    ngx_http_learn_body_task_t *bt = data;

    size_t                       done;
    ssize_t                      n;
    ngx_uint_t                   i;
    ngx_http_learn_body_part_t  *part;

    for (i = 0; i < bt->nparts; i++) {
        part = &bt->parts[i];

        for (done = 0; done < part->size; done += (size_t) n) {
            n = pread(part->fd, part->dst + done, part->size - done,
                      part->offset + (off_t) done);

            if (n == -1 && ngx_errno == NGX_EINTR) {
                n = 0;
                continue;
            }

            if (n <= 0) {
                bt->err = (n == -1) ? ngx_errno : 0;
                bt->short_read = 1;
                return;
            }
        }
    }
}


#if (NGX_THREADS)

static void
ngx_http_learn_body_read_done(ngx_event_t *ev)
{
    ngx_http_learn_body_task_t *bt = ev->data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = bt->request;
    c = r->connection;

    if (ngx_http_learn_task_done(r), bt->ctx->cancelled) {
        r->write_event_handler(r);
        ngx_http_run_posted_requests(c);
        return;
    }

    ngx_http_learn_body_deliver(bt);
    ngx_http_run_posted_requests(c);
}

#endif


static void
ngx_http_learn_body_deliver(ngx_http_learn_body_task_t *bt)
{
    ngx_http_request_t  *r;

    r = bt->request;

    if (bt->short_read) {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, bt->err,
                      "learn: reading the request body from \"%V\" failed",
                      &r->request_body->temp_file->file.name);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    bt->ctx->body_done(r, bt->ctx, bt->data, bt->len);
}


/*
 * What a forward pass or a step allocates is rows times the model's
 * widest layer: above learn_max_elements the request is refused (413)
 * before a workspace grows for it.  NGX_DECLINED: within the bound, go
 * on; otherwise what the refusal returned.
 */

ngx_int_t
ngx_http_learn_body_bound(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx)
{
    double                   elements;
    int64_t                  rows;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;

    rows = (ctx->body.x.ndim == lm->model.in_shape.ndim) ? 1
                                                   : ctx->body.x.shape[0];
    elements = (double) rows * (double) lm->model.max_width;

    if (elements <= (double) ctx->lcf->max_elements) {
        return NGX_DECLINED;
    }

    return ngx_http_learn_reject(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                 "%L rows make activations of %.0f "
                                 "elements (%L x %uz), above "
                                 "learn_max_elements %uz", rows, elements,
                                 rows, lm->model.max_width,
                                 ctx->lcf->max_elements);
}
