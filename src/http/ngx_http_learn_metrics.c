
/*
 * The predict and train latency histograms (recorded where a request is
 * answered, read by learn_status) and the Prometheus text exposition
 * helpers: "# HELP"/"# TYPE" lines, label values, sample values.
 */


#include "ngx_http_learn_metrics.h"

#include <math.h>


typedef struct {
    ngx_atomic_uint_t              us;
    ngx_str_t                      le;        /* the bound in seconds */
} ngx_http_learn_hist_bound_t;


/*
 * A tiny model answers in about 10 us, a large one in 10-100 ms; "le" is
 * written the way the Go and Python clients write these bounds, so that
 * series from other exporters aggregate with these
 */

static ngx_http_learn_hist_bound_t
    ngx_http_learn_hist_bounds[NGX_HTTP_LEARN_HIST_BOUNDS] =
{
    { 25, ngx_string("2.5e-05") },
    { 50, ngx_string("5e-05") },
    { 100, ngx_string("0.0001") },
    { 250, ngx_string("0.00025") },
    { 500, ngx_string("0.0005") },
    { 1000, ngx_string("0.001") },
    { 2500, ngx_string("0.0025") },
    { 5000, ngx_string("0.005") },
    { 10000, ngx_string("0.01") },
    { 25000, ngx_string("0.025") },
    { 50000, ngx_string("0.05") },
    { 100000, ngx_string("0.1") },
    { 250000, ngx_string("0.25") },
    { 1000000, ngx_string("1") }
};


static ngx_atomic_uint_t ngx_http_learn_hist_read(ngx_http_learn_hist_t *h,
    ngx_atomic_uint_t *bucket, ngx_atomic_uint_t *sum_us);


/* on every answered request: a short scan and two atomic adds, no lock */

void
ngx_http_learn_hist_observe(ngx_http_learn_hist_t *h, uint64_t us)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_LEARN_HIST_BOUNDS; i++) {
        if (us <= ngx_http_learn_hist_bounds[i].us) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&h->bucket[i], 1);
    (void) ngx_atomic_fetch_add(&h->sum_us, (ngx_atomic_int_t) us);
}


/*
 * ", \"NAME\": {\"buckets_us\": [25, ...], \"counts\": [...], ...}":
 * counts[i] is the requests of at most buckets_us[i] and more than the
 * bound before; the one count more than there are bounds is those above
 * the last
 */

u_char *
ngx_http_learn_hist_json(u_char *p, const char *name,
    ngx_http_learn_hist_t *h)
{
    ngx_uint_t         i;
    ngx_atomic_uint_t  bucket[NGX_HTTP_LEARN_HIST_BUCKETS], sum_us, count;

    count = ngx_http_learn_hist_read(h, bucket, &sum_us);

    p = ngx_sprintf(p, ", \"%s\": {\"buckets_us\": [", name);

    for (i = 0; i < NGX_HTTP_LEARN_HIST_BOUNDS; i++) {
        p = ngx_sprintf(p, "%s%uA", i ? ", " : "",
                        ngx_http_learn_hist_bounds[i].us);
    }

    p = ngx_cpymem(p, "], \"counts\": [", sizeof("], \"counts\": [") - 1);

    for (i = 0; i < NGX_HTTP_LEARN_HIST_BUCKETS; i++) {
        p = ngx_sprintf(p, "%s%uA", i ? ", " : "", bucket[i]);
    }

    return ngx_sprintf(p, "], \"sum_us\": %uA, \"count\": %uA}",
                       sum_us, count);
}


/*
 * The bound of the bucket that holds quantile q (0 < q <= 1), in us: the
 * q-quantile is at most that; UINT64_MAX when it is in +Inf,
 * 0 when nothing was observed.  *count: the observations.
 */

uint64_t
ngx_http_learn_hist_quantile(ngx_http_learn_hist_t *h, double q,
    ngx_atomic_uint_t *count)
{
    ngx_uint_t         i;
    ngx_atomic_uint_t  bucket[NGX_HTTP_LEARN_HIST_BUCKETS], sum_us, below;

    *count = ngx_http_learn_hist_read(h, bucket, &sum_us);

    if (*count == 0) {
        return 0;
    }

    below = 0;

    for (i = 0; i < NGX_HTTP_LEARN_HIST_BOUNDS; i++) {
        below += bucket[i];

        if (below >= q * *count) {
            return ngx_http_learn_hist_bounds[i].us;
        }
    }

    return UINT64_MAX;
}


/* NAME_bucket (cumulative, "+Inf" last), NAME_sum in seconds, NAME_count */

u_char *
ngx_http_learn_hist_prometheus(u_char *p, ngx_str_t *name, const char *label,
    ngx_str_t *value, ngx_http_learn_hist_t *h)
{
    ngx_uint_t         i;
    ngx_atomic_uint_t  bucket[NGX_HTTP_LEARN_HIST_BUCKETS], sum_us, count,
                       below;

    count = ngx_http_learn_hist_read(h, bucket, &sum_us);
    below = 0;

    for (i = 0; i < NGX_HTTP_LEARN_HIST_BUCKETS; i++) {
        below += bucket[i];

        p = ngx_sprintf(p, "%V_bucket{%s=\"", name, label);
        p = ngx_http_learn_prom_label(p, value);

        if (i < NGX_HTTP_LEARN_HIST_BOUNDS) {
            p = ngx_sprintf(p, "\",le=\"%V\"} %uA\n",
                            &ngx_http_learn_hist_bounds[i].le, below);

        } else {
            p = ngx_sprintf(p, "\",le=\"+Inf\"} %uA\n", below);
        }
    }

    p = ngx_sprintf(p, "%V_sum{%s=\"", name, label);
    p = ngx_http_learn_prom_label(p, value);
    p = ngx_sprintf(p, "\"} %uA.%06uA\n", sum_us / 1000000, sum_us % 1000000);

    p = ngx_sprintf(p, "%V_count{%s=\"", name, label);
    p = ngx_http_learn_prom_label(p, value);

    return ngx_sprintf(p, "\"} %uA\n", count);
}


/* one read of every bucket: the count is their sum */

static ngx_atomic_uint_t
ngx_http_learn_hist_read(ngx_http_learn_hist_t *h, ngx_atomic_uint_t *bucket,
    ngx_atomic_uint_t *sum_us)
{
    ngx_uint_t         i;
    ngx_atomic_uint_t  count;

    count = 0;

    for (i = 0; i < NGX_HTTP_LEARN_HIST_BUCKETS; i++) {
        bucket[i] = h->bucket[i];
        count += bucket[i];
    }

    *sum_us = h->sum_us;

    return count;
}


/*
 * A family's "# HELP" and "# TYPE" lines, once before its first sample:
 * the text format wants all samples of a family in one group after them
 */

u_char *
ngx_http_learn_prom_head(u_char *p, ngx_str_t *name, ngx_str_t *type,
    ngx_str_t *help)
{
    return ngx_sprintf(p, "# HELP %V %V\n# TYPE %V %V\n",
                       name, help, name, type);
}


/* a label value: backslash, double quote and newline escaped */

u_char *
ngx_http_learn_prom_label(u_char *p, ngx_str_t *value)
{
    u_char  *c, *end;

    end = value->data + value->len;

    for (c = value->data; c < end; c++) {
        switch (*c) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = *c;
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = *c;
        }
    }

    return p;
}


/*
 * A sample value, at most 32 bytes: ngx_sprintf() has no %g, and the
 * text format spells the special values NaN, +Inf and -Inf
 */

u_char *
ngx_http_learn_prom_float(u_char *p, double v)
{
    int  n;

    if (isnan(v)) {
        return ngx_cpymem(p, "NaN", 3);
    }

    if (isinf(v)) {
        return v > 0 ? ngx_cpymem(p, "+Inf", 4) : ngx_cpymem(p, "-Inf", 4);
    }

    n = snprintf((char *) p, 32, "%.9g", v);

    return p + ((n > 0 && n < 32) ? n : 0);
}


/* the clock of the latency histograms: CLOCK_MONOTONIC from the vDSO,
 * no syscall */

uint64_t
ngx_http_learn_now_us(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
