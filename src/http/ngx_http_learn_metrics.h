
/*
 * What learn_status exposes beyond plain counters: the latency histogram
 * kept in a model's zone, and the Prometheus text helpers that the model
 * part (ngx_http_learn_status.c) and the upstream part
 * (ngx_http_learn_upstream_status.c) share.
 */


#ifndef _NGX_HTTP_LEARN_METRICS_H_INCLUDED_
#define _NGX_HTTP_LEARN_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* upper bounds from 25 us to 1 s, then +Inf */
#define NGX_HTTP_LEARN_HIST_BOUNDS   14
#define NGX_HTTP_LEARN_HIST_BUCKETS  (NGX_HTTP_LEARN_HIST_BOUNDS + 1)


/*
 * In shared memory, written by any worker or pool thread without a lock:
 * an observation adds 1 to the one bucket it falls in (the cumulative
 * counts of the exposition are summed when read) and its time to sum_us.
 * The count is the sum of the buckets, so the +Inf bucket and _count
 * always agree, even while requests are recorded during a read.
 */
typedef struct {
    ngx_atomic_t                   bucket[NGX_HTTP_LEARN_HIST_BUCKETS];
    ngx_atomic_t                   sum_us;
} ngx_http_learn_hist_t;


/* ", \"NAME\": {...}" with a name of up to 32 bytes */
#define NGX_HTTP_LEARN_HIST_JSON_LEN                                          \
    (128 + NGX_HTTP_LEARN_HIST_BOUNDS * 8                                     \
     + (NGX_HTTP_LEARN_HIST_BUCKETS + 2) * (NGX_ATOMIC_T_LEN + 2))

/* a histogram's series for one label value, names up to 64 bytes */
#define NGX_HTTP_LEARN_HIST_PROM_LEN(label)                                   \
    ((NGX_HTTP_LEARN_HIST_BUCKETS + 2)                                        \
     * (128 + 2 * (label) + NGX_ATOMIC_T_LEN))

/* "# HELP" and "# TYPE" of a family: name up to 64, help up to 128 */
#define NGX_HTTP_LEARN_PROM_HEAD_LEN  320


void ngx_http_learn_hist_observe(ngx_http_learn_hist_t *h, uint64_t us);
uint64_t ngx_http_learn_now_us(void);
uint64_t ngx_http_learn_hist_quantile(ngx_http_learn_hist_t *h, double q,
    ngx_atomic_uint_t *count);
u_char *ngx_http_learn_hist_json(u_char *p, const char *name,
    ngx_http_learn_hist_t *h);
u_char *ngx_http_learn_hist_prometheus(u_char *p, ngx_str_t *name,
    const char *label, ngx_str_t *value, ngx_http_learn_hist_t *h);

u_char *ngx_http_learn_prom_head(u_char *p, ngx_str_t *name,
    ngx_str_t *type, ngx_str_t *help);
u_char *ngx_http_learn_prom_label(u_char *p, ngx_str_t *value);
u_char *ngx_http_learn_prom_float(u_char *p, double v);


#endif /* _NGX_HTTP_LEARN_METRICS_H_INCLUDED_ */
