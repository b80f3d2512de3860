
/*
 * What a model's zone remembers over time, for learn_status's pictures:
 * the loss curve of its train steps (a bounded, downsampled history) and
 * a few samples of its request counters (rates need two of them).
 */


#ifndef _NGX_HTTP_LEARN_HISTORY_H_INCLUDED_
#define _NGX_HTTP_LEARN_HISTORY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* points of the loss history, and counter samples kept for rates */
#define NGX_HTTP_LEARN_HISTORY         512
#define NGX_HTTP_LEARN_SAMPLES         16

/* a rate compares the counters with a sample 1 s to 60 s old */
#define NGX_HTTP_LEARN_RATE_MIN_MS     1000
#define NGX_HTTP_LEARN_RATE_MAX_MS     60000


typedef struct {
    int64_t                        step;
    float                          loss;
} ngx_http_learn_point_t;


/*
 * In the zone header.  Written only by a train step, under the model's
 * train mutex; read without a lock ("gen" is odd while a step writes, so
 * a reader that raced one copies again).
 *
 * Downsampling: a step is kept when it is a multiple of "stride" (0 is
 * read as 1).  When the array is full, the points whose step is not a
 * multiple of 2 * stride go and the stride doubles, so a run of any
 * length keeps its whole shape in at most NGX_HTTP_LEARN_HISTORY evenly
 * spaced points, and a long run costs one compaction per doubling.
 */
typedef struct {
    ngx_atomic_t                   gen;
    ngx_uint_t                     n;
    uint64_t                       stride;
    ngx_http_learn_point_t         point[NGX_HTTP_LEARN_HISTORY];
} ngx_http_learn_history_t;


/* the counters a rate is made of, at one moment (ms of wall clock) */
typedef struct {
    ngx_atomic_t                   msec;      /* 0: empty, or being written */
    ngx_atomic_t                   trains;
    ngx_atomic_t                   predicts;
    ngx_atomic_t                   rejects;
} ngx_http_learn_sample_t;


/*
 * Samples are taken when learn_status is read (any format, at most one
 * a second, by whichever worker answers first), not on a timer: nothing
 * runs while nobody looks, and a scraper or the HTML page's refresh
 * keeps them fresh.
 */
typedef struct {
    ngx_atomic_t                   lock;      /* one writer: a CAS 0 -> 1 */
    ngx_atomic_t                   next;
    ngx_http_learn_sample_t        sample[NGX_HTTP_LEARN_SAMPLES];
} ngx_http_learn_samples_t;


/* per second, over the last window_ms; window_ms 0: no sample fits */
typedef struct {
    ngx_msec_t                     window_ms;
    double                         trains;
    double                         predicts;
    double                         rejects;
} ngx_http_learn_rate_t;


void ngx_http_learn_history_add(ngx_http_learn_history_t *h, int64_t step,
    float loss);
ngx_uint_t ngx_http_learn_history_read(ngx_http_learn_history_t *h,
    ngx_http_learn_point_t *out, uint64_t *stride);
u_char *ngx_http_learn_history_json(u_char *p, ngx_http_learn_history_t *h);

/* ", \"loss_history\": [...], \"loss_history_stride\": N" */
#define NGX_HTTP_LEARN_HISTORY_JSON_LEN                                       \
    (96 + NGX_HTTP_LEARN_HISTORY * (NGX_INT64_LEN + 40))

void ngx_http_learn_samples_take(ngx_http_learn_samples_t *s,
    ngx_msec_t now, const ngx_http_learn_sample_t *current);
void ngx_http_learn_samples_rate(ngx_http_learn_samples_t *s,
    ngx_msec_t now, const ngx_http_learn_sample_t *current,
    ngx_http_learn_rate_t *rate);
ngx_msec_t ngx_http_learn_samples_now(void);


#endif /* _NGX_HTTP_LEARN_HISTORY_H_INCLUDED_ */
