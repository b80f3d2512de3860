
/*
 * Dataset jobs (learn_job_train, learn_job_predict, learn_job_status):
 * a job in the worker that runs it, and the functions of
 * ngx_http_learn_job.c (routes, directives), _job_run.c (the thread
 * task), _job_load.c (its files), _job_loader.c (its shuffled batches),
 * _job_html.c (pages) and _data_root.c (file names).  The shared
 * table's records are ngx_http_learn_job_record.h's.
 */


#ifndef _NGX_HTTP_LEARN_JOB_H_INCLUDED_
#define _NGX_HTTP_LEARN_JOB_H_INCLUDED_


#include "ngx_http_learn.h"
#include "lt_job.h"
#include "ngx_http_learn_job_table.h"


#define NGX_HTTP_LEARN_JOB_DEFAULT_MAX        64
#define NGX_HTTP_LEARN_JOB_DEFAULT_FILE_SIZE  (256 * 1024 * 1024)
#define NGX_HTTP_LEARN_JOB_DEFAULT_BATCH      32
#define NGX_HTTP_LEARN_JOB_SYNC_ROWS          4096 /* ?sync=1 at most */


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

/* ngx_http_learn_job_html.c */
ngx_int_t ngx_http_learn_job_html(ngx_http_request_t *r,
    ngx_http_learn_job_entry_t *jobs, ngx_uint_t n, ngx_uint_t one);

/* ngx_http_learn_job_load.c: on the job's thread */
typedef struct ngx_http_learn_job_mem_s  ngx_http_learn_job_mem_t;

int ngx_http_learn_job_load(ngx_http_learn_job_t *job,
    ngx_http_learn_job_mem_t **mem);
void ngx_http_learn_job_mem_free(ngx_http_learn_job_mem_t *m);
int ngx_http_learn_job_fail(ngx_http_learn_job_t *job, const char *file,
    lt_err *why);

/* ngx_http_learn_job_loader.c: on the job's thread */
typedef struct ngx_http_learn_job_loader_s  ngx_http_learn_job_loader_t;

void ngx_http_learn_job_rows(const lt_tensor *t, const int64_t *idx,
    int64_t from, int64_t n, float *buf, lt_tensor *view);
ngx_http_learn_job_loader_t *ngx_http_learn_job_loader_new(
    const lt_tensor *x, const lt_tensor *y, int64_t batch);
ngx_int_t ngx_http_learn_job_loader_start(ngx_http_learn_job_loader_t *ld,
    const int64_t *idx, int64_t rows);
void ngx_http_learn_job_loader_get(ngx_http_learn_job_loader_t *ld,
    int64_t k, lt_tensor *vx, lt_tensor *vy);
void ngx_http_learn_job_loader_stop(ngx_http_learn_job_loader_t *ld);
void ngx_http_learn_job_loader_free(ngx_http_learn_job_loader_t *ld);

/* ngx_http_learn_job_run.c */
ngx_int_t ngx_http_learn_job_start(ngx_http_learn_job_t *job);
void ngx_http_learn_job_free(ngx_http_learn_job_t *job);
void ngx_http_learn_job_queue(ngx_http_learn_job_t *job);
ngx_int_t ngx_http_learn_job_sync(ngx_http_request_t *r,
    ngx_http_learn_job_t *job);


#endif /* _NGX_HTTP_LEARN_JOB_H_INCLUDED_ */
