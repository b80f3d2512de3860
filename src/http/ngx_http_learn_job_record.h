
/*
 * A dataset job's record in the shared table (ngx_http_learn_job_table.c)
 * and in the file that keeps it over a restart
 * (ngx_http_learn_job_state.c): plain data, so that every job file can
 * read a record without depending on the files that write it.
 */


#ifndef _NGX_HTTP_LEARN_JOB_RECORD_H_INCLUDED_
#define _NGX_HTTP_LEARN_JOB_RECORD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_LEARN_JOB_HISTORY            256  /* epochs kept */
#define NGX_HTTP_LEARN_JOB_TEXT               256

typedef enum {
    NGX_HTTP_LEARN_JOB_QUEUED = 0,
    NGX_HTTP_LEARN_JOB_RUNNING,
    NGX_HTTP_LEARN_JOB_DONE,
    NGX_HTTP_LEARN_JOB_ERROR,
    NGX_HTTP_LEARN_JOB_CANCELLED
} ngx_http_learn_job_state_e;

#define ngx_http_learn_job_live(state)                                       \
    ((state) == NGX_HTTP_LEARN_JOB_QUEUED                                    \
     || (state) == NGX_HTTP_LEARN_JOB_RUNNING)

typedef enum {
    NGX_HTTP_LEARN_JOB_KIND_TRAIN = 1,
    NGX_HTTP_LEARN_JOB_KIND_PREDICT
} ngx_http_learn_job_kind_e;


/* one epoch's figures; NaN: none (no validation split) */
typedef struct {
    int64_t                        epoch;
    float                          loss;
    float                          val_loss;
    float                          val_accuracy;
    float                          seconds;   /* since the job started */
} ngx_http_learn_job_epoch_t;


/*
 * A job in the shared table.  The slab pool's mutex guards taking and
 * freeing entries and every state change; the figures are written by
 * the job's thread alone, as aligned words, and read without the mutex.
 */
typedef struct {
    uint64_t                       id;        /* 0: a free entry */
    uint64_t                       seq;       /* order of submission */
    ngx_pid_t                      pid;       /* the worker that owns it */
    ngx_uint_t                     kind;
    ngx_atomic_t                   state;
    ngx_atomic_t                   cancel;    /* DELETE asked for it */

    u_char                         model[64];
    u_char                         input[NGX_HTTP_LEARN_JOB_TEXT];
    u_char                         output[NGX_HTTP_LEARN_JOB_TEXT];
    u_char                         error[NGX_HTTP_LEARN_JOB_TEXT];

    int64_t                        epochs;
    int64_t                        epoch;     /* epochs done */
    int64_t                        batch_size;
    int64_t                        rows;      /* training rows */
    int64_t                        val_rows;
    int64_t                        samples;   /* rows stepped (or predicted) */
    int64_t                        steps;     /* steps this job applied */
    uint64_t                       seed;
    ngx_uint_t                     shuffle;

    float                          loss;      /* last epoch's mean, or
                                                 the running one */
    float                          val_loss;
    float                          val_accuracy;
    float                          samples_per_s;

    int64_t                        step;      /* the model's, at the end */
    int64_t                        version;   /* kept version; 0: none */

    time_t                         created;
    time_t                         started;
    time_t                         finished;

    ngx_uint_t                     nhist;     /* epochs recorded */
    ngx_http_learn_job_epoch_t     hist[NGX_HTTP_LEARN_JOB_HISTORY];
} ngx_http_learn_job_entry_t;


typedef struct {
    uint64_t                       magic;     /* layout of this table */
    ngx_uint_t                     max;
    uint64_t                       nonce;     /* ids differ per zone */
    uint64_t                       seq;
    ngx_http_learn_job_entry_t     jobs[1];
} ngx_http_learn_job_shm_t;


#endif /* _NGX_HTTP_LEARN_JOB_RECORD_H_INCLUDED_ */
