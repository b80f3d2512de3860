
/*
 * Self-contained HTML pages (learn_status's, a job's): a growing buffer
 * in the request pool, escaping, numbers, the page's skeleton and its
 * answer.  Pages have no external assets and no script; the answer
 * carries "Content-Security-Policy: default-src 'none'; style-src
 * 'unsafe-inline'", so a name that escaped escaping still runs nothing.
 *
 * Usage (every call after a failed allocation does nothing, and
 * ngx_http_learn_html_send() then answers 500):
 *
 *     ngx_http_learn_html_t  h;
 *
 *     if (ngx_http_learn_html_init(&h, r->pool, 16384) != NGX_OK) {
 *         return NGX_HTTP_INTERNAL_SERVER_ERROR;
 *     }
 *
 *     ngx_http_learn_html_begin(&h, &title, 0);
 *     ngx_http_learn_html_literal(&h, "<h2>Job ");
 *     ngx_http_learn_html_text(&h, id.data, id.len);      (escaped)
 *     ngx_http_learn_html_literal(&h, "</h2>");
 *     ngx_http_learn_svg_lines(&h, &chart, series, 3);   (svg.h)
 *     ngx_http_learn_html_end(&h);
 *
 *     return ngx_http_learn_html_send(r, &h);
 */


#ifndef _NGX_HTTP_LEARN_HTML_H_INCLUDED_
#define _NGX_HTTP_LEARN_HTML_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_pool_t                    *pool;
    u_char                        *start;
    u_char                        *pos;
    u_char                        *end;
    ngx_uint_t                     failed;    /* an allocation failed */
} ngx_http_learn_html_t;


/* a buffer of "size" bytes to start with; it doubles as needed */
ngx_int_t ngx_http_learn_html_init(ngx_http_learn_html_t *h,
    ngx_pool_t *pool, size_t size);

/* room for n more bytes at h->pos, or NULL (failed) */
u_char *ngx_http_learn_html_reserve(ngx_http_learn_html_t *h, size_t n);

/* markup the code wrote itself, as it is */
void ngx_http_learn_html_raw(ngx_http_learn_html_t *h, const u_char *data,
    size_t len);
#define ngx_http_learn_html_literal(h, s)                                     \
    ngx_http_learn_html_raw(h, (const u_char *) s, sizeof(s) - 1)

/*
 * Text from anywhere (configuration, requests, files): & < > " ' as
 * entities, other control bytes as U+FFFD; safe in element content and
 * in quoted attribute values.
 */
void ngx_http_learn_html_text(ngx_http_learn_html_t *h, const u_char *data,
    size_t len);
#define ngx_http_learn_html_str(h, s)                                         \
    ngx_http_learn_html_text(h, (s)->data, (s)->len)

/*
 * ngx_sprintf()'s formats, at most 512 bytes per call, written as they
 * are: for numbers and trusted strings only (a %V or %s of outside text
 * must go through ngx_http_learn_html_text()).
 */
void ngx_http_learn_html_printf(ngx_http_learn_html_t *h, const char *fmt,
    ...);

/*
 * A number for people: an integer as one (up to 2^53), else "%.*g" with
 * "digits" significant digits; NaN and Inf as "n/a".
 */
void ngx_http_learn_html_number(ngx_http_learn_html_t *h, double v,
    int digits);

/*
 * One row of a figures table: key (a name of the code's own, also its
 * data-key for tests and scripts) and v as a number for people.
 */
void ngx_http_learn_html_row(ngx_http_learn_html_t *h, const char *key,
    double v);

/*
 * A number for machines (data-* attributes, SVG coordinates): the same
 * text as learn_status JSON writes (lt_json_float, "%.9g"-exact; an
 * integer up to 2^53 in full).  Non-finite values must not be passed
 * (they are written as "null").
 */
void ngx_http_learn_html_value(ngx_http_learn_html_t *h, double v);

/*
 * <!DOCTYPE html> ... <body>: the title (escaped) is also the <h1>; a
 * "refresh" of N > 0 seconds reloads the page (a <meta> refresh, no
 * script).
 */
void ngx_http_learn_html_begin(ngx_http_learn_html_t *h, ngx_str_t *title,
    ngx_uint_t refresh);
void ngx_http_learn_html_end(ngx_http_learn_html_t *h);

/* 200 text/html with the CSP and no caching; 500 if anything failed */
ngx_int_t ngx_http_learn_html_send(ngx_http_request_t *r,
    ngx_http_learn_html_t *h);

/*
 * Does the request want HTML: ?format=html, or no format= argument and
 * an Accept header that names text/html (as browsers send it) and not
 * application/json before it (q= values are not weighed)
 */
ngx_uint_t ngx_http_learn_html_wanted(ngx_http_request_t *r);


#endif /* _NGX_HTTP_LEARN_HTML_H_INCLUDED_ */
