
/*
 * The HTML pages' writer (ngx_http_learn_html.h): buffer, escaping,
 * numbers, skeleton, answer, and the content negotiation.
 */


#include "ngx_http_learn.h"
#include "ngx_http_learn_html.h"

#include <math.h>


#define NGX_HTTP_LEARN_HTML_PRINTF_MAX  512

/* above this, an integer-valued double may not be exact */
#define NGX_HTTP_LEARN_HTML_INT_MAX     9007199254740992.0


static ngx_str_t  ngx_http_learn_html_type =
    ngx_string("text/html; charset=utf-8");


/* one stylesheet for every page, inline: the CSP allows nothing else */

static const char  ngx_http_learn_html_style[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;"
    "background:#fff}"
    "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;"
    "border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}"
    "th{background:#f4f4f4}td.name,th.name{text-align:left}"
    "figure{margin:1em 0}figcaption{color:#555;font-size:.9em}"
    "svg text{font:11px sans-serif;fill:#333}"
    ".note{color:#777}"
    ".tables{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}"
    ".tables p{max-width:24em}";


ngx_int_t
ngx_http_learn_html_init(ngx_http_learn_html_t *h, ngx_pool_t *pool,
    size_t size)
{
    h->pool = pool;
    h->failed = 0;

    h->start = ngx_pnalloc(pool, size);
    if (h->start == NULL) {
        h->failed = 1;
        return NGX_ERROR;
    }

    h->pos = h->start;
    h->end = h->start + size;

    return NGX_OK;
}


u_char *
ngx_http_learn_html_reserve(ngx_http_learn_html_t *h, size_t n)
{
    size_t   used, size;
    u_char  *p;

    if (h->failed) {
        return NULL;
    }

    if ((size_t) (h->end - h->pos) >= n) {
        return h->pos;
    }

    used = h->pos - h->start;
    size = 2 * (h->end - h->start);

    if (size < used + n) {
        size = 2 * (used + n);
    }

    p = ngx_pnalloc(h->pool, size);
    if (p == NULL) {
        h->failed = 1;
        return NULL;
    }

    ngx_memcpy(p, h->start, used);

    /* a block below the pool's large size stays until the request ends */
    (void) ngx_pfree(h->pool, h->start);

    h->start = p;
    h->pos = p + used;
    h->end = p + size;

    return h->pos;
}


void
ngx_http_learn_html_raw(ngx_http_learn_html_t *h, const u_char *data,
    size_t len)
{
    u_char  *p;

    p = ngx_http_learn_html_reserve(h, len);
    if (p == NULL) {
        return;
    }

    h->pos = ngx_cpymem(p, data, len);
}


void
ngx_http_learn_html_text(ngx_http_learn_html_t *h, const u_char *data,
    size_t len)
{
    u_char        *p;
    const u_char  *c, *last;

    /* "&#xFFFD;" is the longest replacement: 8 bytes */
    p = ngx_http_learn_html_reserve(h, 8 * len);
    if (p == NULL) {
        return;
    }

    last = data + len;

    for (c = data; c < last; c++) {
        switch (*c) {

        case '&':
            p = ngx_cpymem(p, "&amp;", 5);
            break;

        case '<':
            p = ngx_cpymem(p, "&lt;", 4);
            break;

        case '>':
            p = ngx_cpymem(p, "&gt;", 4);
            break;

        case '"':
            p = ngx_cpymem(p, "&quot;", 6);
            break;

        case '\'':
            p = ngx_cpymem(p, "&#39;", 5);
            break;

        case '\t':
        case '\n':
            *p++ = *c;
            break;

        default:
            if (*c < 0x20 || *c == 0x7f) {
                p = ngx_cpymem(p, "&#xFFFD;", 8);

            } else {
                *p++ = *c;
            }
        }
    }

    h->pos = p;
}


void
ngx_http_learn_html_printf(ngx_http_learn_html_t *h, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    p = ngx_http_learn_html_reserve(h, NGX_HTTP_LEARN_HTML_PRINTF_MAX);
    if (p == NULL) {
        return;
    }

    va_start(args, fmt);
    h->pos = ngx_vslprintf(p, p + NGX_HTTP_LEARN_HTML_PRINTF_MAX, fmt, args);
    va_end(args);
}


void
ngx_http_learn_html_number(ngx_http_learn_html_t *h, double v, int digits)
{
    int      n;
    u_char  *p;

    if (isnan(v) || isinf(v)) {
        ngx_http_learn_html_literal(h, "n/a");
        return;
    }

    p = ngx_http_learn_html_reserve(h, 64);
    if (p == NULL) {
        return;
    }

    if (v == floor(v) && fabs(v) <= NGX_HTTP_LEARN_HTML_INT_MAX) {
        n = snprintf((char *) p, 64, "%.0f", v);

    } else {
        n = snprintf((char *) p, 64, "%.*g", digits, v);
    }

    h->pos += (n > 0 && n < 64) ? n : 0;
}


void
ngx_http_learn_html_row(ngx_http_learn_html_t *h, const char *key, double v)
{
    ngx_http_learn_html_printf(h, "<tr><td class=\"name\">%s</td>"
                               "<td data-key=\"%s\">", key, key);
    ngx_http_learn_html_number(h, v, 6);
    ngx_http_learn_html_literal(h, "</td></tr>");
}


void
ngx_http_learn_html_value(ngx_http_learn_html_t *h, double v)
{
    int      n;
    u_char  *p;

    p = ngx_http_learn_html_reserve(h, 64);
    if (p == NULL) {
        return;
    }

    if (v == floor(v) && fabs(v) <= NGX_HTTP_LEARN_HTML_INT_MAX) {
        n = snprintf((char *) p, 64, "%.0f", v);

    } else {
        n = lt_json_float((char *) p, 64, v);
    }

    h->pos += (n > 0 && n < 64) ? n : 0;
}


void
ngx_http_learn_html_begin(ngx_http_learn_html_t *h, ngx_str_t *title,
    ngx_uint_t refresh)
{
    ngx_http_learn_html_literal(h, "<!DOCTYPE html>\n<html lang=\"en\">"
                                "<head><meta charset=\"utf-8\">");

    if (refresh) {
        ngx_http_learn_html_printf(h, "<meta http-equiv=\"refresh\" "
                                   "content=\"%ui\">", refresh);
    }

    ngx_http_learn_html_literal(h, "<title>");
    ngx_http_learn_html_str(h, title);
    ngx_http_learn_html_literal(h, "</title><style>");
    ngx_http_learn_html_raw(h, (const u_char *) ngx_http_learn_html_style,
                            sizeof(ngx_http_learn_html_style) - 1);
    ngx_http_learn_html_literal(h, "</style></head>\n<body>\n<h1>");
    ngx_http_learn_html_str(h, title);
    ngx_http_learn_html_literal(h, "</h1>\n");
}


void
ngx_http_learn_html_end(ngx_http_learn_html_t *h)
{
    ngx_http_learn_html_literal(h, "</body>\n</html>\n");
}


static ngx_int_t
ngx_http_learn_html_header(ngx_http_request_t *r, const char *name,
    const char *value)
{
    ngx_table_elt_t  *e;

    e = ngx_list_push(&r->headers_out.headers);
    if (e == NULL) {
        return NGX_ERROR;
    }

    e->hash = 1;
    e->key.data = (u_char *) name;
    e->key.len = ngx_strlen(name);
    e->value.data = (u_char *) value;
    e->value.len = ngx_strlen(value);
#if (nginx_version >= 1023000)
    e->next = NULL;
#endif

    return NGX_OK;
}


ngx_int_t
ngx_http_learn_html_send(ngx_http_request_t *r, ngx_http_learn_html_t *h)
{
    if (h->failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_learn_html_header(r, "Content-Security-Policy",
                                   "default-src 'none'; "
                                   "style-src 'unsafe-inline'")
        != NGX_OK
        || ngx_http_learn_html_header(r, "X-Content-Type-Options",
                                      "nosniff") != NGX_OK
        || ngx_http_learn_html_header(r, "Cache-Control", "no-store")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_learn_send(r, NGX_HTTP_OK, &ngx_http_learn_html_type,
                               h->start, h->pos - h->start);
}


ngx_uint_t
ngx_http_learn_html_wanted(ngx_http_request_t *r)
{
    ngx_str_t   arg;
#if (NGX_HTTP_GZIP || NGX_HTTP_HEADERS)
    u_char     *html, *json;
    ngx_str_t  *accept;
#endif

    if (ngx_http_arg(r, (u_char *) "format", 6, &arg) == NGX_OK) {
        return arg.len == 4 && ngx_strncasecmp(arg.data, (u_char *) "html", 4)
                               == 0;
    }

#if (NGX_HTTP_GZIP || NGX_HTTP_HEADERS)
    if (r->headers_in.accept == NULL) {
        return 0;
    }

    accept = &r->headers_in.accept->value;

    html = ngx_strlcasestrn(accept->data, accept->data + accept->len,
                            (u_char *) "text/html", 9 - 1);
    json = ngx_strlcasestrn(accept->data, accept->data + accept->len,
                            (u_char *) "application/json", 16 - 1);

    /* a client that names JSON first (q= aside) is an API client */
    return html != NULL && (json == NULL || html < json);
#else
    return 0;
#endif
}
