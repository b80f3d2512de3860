
/*
 * Answers: a body of the module's own (msgpack or JSON), or an error as
 * {"error": "<one sentence>"} with its status, never nginx's HTML page.
 */


#include "ngx_http_learn.h"


static ngx_int_t ngx_http_learn_send_error(ngx_http_request_t *r,
    ngx_uint_t status, u_char *msg, size_t len);


ngx_str_t  ngx_http_learn_type_msgpack = ngx_string("application/msgpack");
ngx_str_t  ngx_http_learn_type_json = ngx_string("application/json");


ngx_int_t
ngx_http_learn_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *data, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;

    if (status == NGX_HTTP_LEARN_UNPROCESSABLE) {
        ngx_str_set(&r->headers_out.status_line, "422 Unprocessable Entity");
    }

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

    return ngx_http_learn_send_error(r, status, msg, p - msg);
}


/*
 * A failure on the server's side (a 5xx that the caller has logged): the
 * same JSON body as a client error instead of nginx's HTML page, so the
 * client reads what failed and a kept-alive connection stays usable.
 * Not counted as a rejected request.
 */

ngx_int_t
ngx_http_learn_fail(ngx_http_request_t *r, ngx_uint_t status,
    const char *msg)
{
    if (msg[0] == '\0') {
        msg = "internal error";
    }

    return ngx_http_learn_send_error(r, status, (u_char *) msg,
                                     ngx_strlen(msg));
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


/*
 * From an event handler (a timer, a pool task, a batch flush): the
 * request ends here, and what it posted runs now.
 */

void
ngx_http_learn_finalize(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* {"error": "..."}, the message escaped for JSON */

static ngx_int_t
ngx_http_learn_send_error(ngx_http_request_t *r, ngx_uint_t status,
    u_char *msg, size_t len)
{
    u_char  *p, *out, *o;

    out = ngx_pnalloc(r->pool, sizeof("{\"error\": \"\"}\n") - 1 + 2 * len);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    o = ngx_cpymem(out, "{\"error\": \"", sizeof("{\"error\": \"") - 1);

    for (p = msg; p < msg + len; p++) {
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


/* the codec's allocator: the request pool, freed with the request */

void *
ngx_http_learn_pool_alloc(void *ctx, size_t size)
{
    /* tensors hold floats: keep pool memory aligned */
    return ngx_palloc(ctx, size);
}
