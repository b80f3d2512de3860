
/*
 * Dataset jobs (learn_job_train, learn_job_predict, learn_job_status):
 * what ngx_http_learn_job.c (routes, directives), _job_table.c (the
 * shared table), _job_run.c (the thread task) and _data_root.c (file
 * names) share.
 */


#ifndef _NGX_HTTP_LEARN_JOB_H_INCLUDED_
#define _NGX_HTTP_LEARN_JOB_H_INCLUDED_


#include "ngx_http_learn.h"
#include "lt_job.h"


#define NGX_HTTP_LEARN_JOB_DEFAULT_MAX        64
#define NGX_HTTP_LEARN_JOB_DEFAULT_FILE_SIZE  (256 * 1024 * 1024)
#define NGX_HTTP_LEARN_JOB_DEFAULT_BATCH      32
#define NGX_HTTP_LEARN_JOB_HISTORY            256  /* epochs kept */
#define NGX_HTTP_LEARN_JOB_TEXT               256
#define NGX_HTTP_LEARN_JOB_SYNC_ROWS          4096 /* ?sync=1 at most */

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


typedef struct ngx_http_learn_job_s  ngx_http_learn_job_t;

/* a job in the worker that runs it: what the thread needs */
struct ngx_http_learn_job_s {
    ngx_http_learn_job_entry_t    *e;         /* NULL: a sync predict */
    uint64_t                       id;
    ngx_uint_t                     kind;
    ngx_http_learn_model_t        *lm;
    ngx_log_t                     *log;
    void                          *pool;      /* ngx_thread_pool_t */
    ngx_queue_t                    queue;     /* queued in this worker */

    char                           root[NGX_MAX_PATH];
    size_t                         max_file_size;
    size_t                         max_elements;

    /* what the request asked for */
    char                           files[LT_JOB_FILES_MAX]
                                        [LT_JOB_NAME_MAX + 1];
    ngx_uint_t                     nfiles;
    char                           x_file[LT_JOB_NAME_MAX + 1];
    char                           y_file[LT_JOB_NAME_MAX + 1];
    char                           output[LT_JOB_NAME_MAX + 1];
    lt_tensor                      x;         /* inline, then loaded */
    lt_tensor                      y;
    int                            has_x;
    int                            has_y;
    int64_t                        epochs;
    int64_t                        batch;
    ngx_uint_t                     shuffle;
    double                         validation;
    uint64_t                       seed;

    lt_workspace                  *ws;
    ngx_http_learn_ckpt_job_t     *ckpt;
    ngx_uint_t                     ckpt_written;
#if (NGX_THREADS)
    ngx_thread_task_t              task;
#endif

    /* results, from the thread */
    ngx_int_t                      rc;        /* NGX_OK, NGX_ERROR, NGX_ABORT
                                                 (cancelled), NGX_DONE
                                                 (nginx stops) */
    lt_err                         err;
    ngx_pid_t                      unlocked;  /* a dead lock owner */
    int64_t                        step;

    /* a sync predict: the request, its answer (job.c's, called through
     * this pointer so job_run.c names no file above it), the outputs */
    ngx_http_request_t            *request;
    ngx_int_t                    (*reply)(ngx_http_request_t *r,
                                          ngx_http_learn_job_t *job);
    ngx_uint_t                     json_out;
    lt_encoding                    enc;
    lt_tensor                      out;
};


/* ngx_http_learn_data_root.c */
ngx_int_t ngx_http_learn_data_root_check(ngx_str_t *name, const char **why);
int ngx_http_learn_data_root_open(const char *root, const char *name,
    int flags, lt_err *err);
int ngx_http_learn_data_root_escapes(const char *root, const char *name);
uint8_t *ngx_http_learn_data_root_read(const char *root, const char *name,
    size_t max, size_t *len, lt_err *err);

/* ngx_http_learn_job_state.c */
void ngx_http_learn_job_state_save(ngx_http_learn_job_shm_t *t,
    const u_char *model, ngx_log_t *log);
void ngx_http_learn_job_state_load(ngx_http_learn_job_shm_t *t,
    ngx_http_learn_main_conf_t *lmcf, ngx_log_t *log);

/* ngx_http_learn_job_table.c */
extern ngx_str_t  ngx_http_learn_job_states[];

void ngx_http_learn_job_table_changed(ngx_http_learn_job_entry_t *e);

ngx_int_t ngx_http_learn_job_table_add(ngx_conf_t *cf, ngx_uint_t max);
ngx_http_learn_job_shm_t *ngx_http_learn_job_table(void);
ngx_http_learn_job_entry_t *ngx_http_learn_job_table_new(ngx_uint_t kind,
    ngx_str_t *model, ngx_uint_t *full);
ngx_http_learn_job_entry_t *ngx_http_learn_job_table_find(uint64_t id);
ngx_int_t ngx_http_learn_job_table_set(ngx_http_learn_job_entry_t *e,
    uint64_t id, ngx_uint_t from, ngx_uint_t to);
ngx_uint_t ngx_http_learn_job_table_may_start(ngx_http_learn_job_entry_t *e);
void ngx_http_learn_job_table_check(ngx_http_learn_job_entry_t *e);
void ngx_http_learn_job_table_lock(void);
void ngx_http_learn_job_table_unlock(void);

/* ngx_http_learn_job_html.c */
ngx_int_t ngx_http_learn_job_html(ngx_http_request_t *r,
    ngx_http_learn_job_entry_t *jobs, ngx_uint_t n, ngx_uint_t one);

/* ngx_http_learn_job_run.c */
ngx_int_t ngx_http_learn_job_start(ngx_http_learn_job_t *job);
void ngx_http_learn_job_free(ngx_http_learn_job_t *job);
void ngx_http_learn_job_queue(ngx_http_learn_job_t *job);
ngx_int_t ngx_http_learn_job_sync(ngx_http_request_t *r,
    ngx_http_learn_job_t *job);


#endif /* _NGX_HTTP_LEARN_JOB_H_INCLUDED_ */
