
/*
 * ngx_http_learn_module: shared declarations of the nginx side.
 */


#ifndef _NGX_HTTP_LEARN_H_INCLUDED_
#define _NGX_HTTP_LEARN_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "lt_tensor.h"
#include "lt_model.h"
#include "lt_codec.h"
#include "lt_checkpoint.h"

#include "ngx_http_learn_metrics.h"
#include "ngx_http_learn_history.h"
#include "ngx_http_learn_param.h"


#define NGX_HTTP_LEARN_DEFAULT_MAX_ELEMENTS  (1024 * 1024)
#define NGX_HTTP_LEARN_MAX_VERSIONS          16

/* nginx 1.22 has no name for it (nor a reason phrase: see _send()) */
#define NGX_HTTP_LEARN_UNPROCESSABLE         422


/* a kept checkpoint (PATH.vSTEP) and the predicts it answered */
typedef struct {
    int64_t                        step;      /* 0: a free slot */
    float                          loss;
    time_t                         time;
    ngx_atomic_t                   predicts;
    ngx_atomic_t                   latency_us;
} ngx_http_learn_version_t;


/*
 * What lives in a model's shared memory zone, in one slab allocation:
 * this header, then two buffers of parameters and optimizer state (the
 * one that predicts and the next step read is buf[version & 1]).
 *
 * A train step, holding the mutex, announces itself in "writing",
 * writes the other buffer and publishes it by bumping "version".  A
 * predict that read buffer version & 1 is valid unless a step that
 * writes that same buffer (version + 2) started meanwhile, so predicts
 * neither lock nor wait for a step in progress.
 */
typedef struct {
    ngx_shmtx_sh_t                 lock;
    ngx_shmtx_t                    mutex;     /* serializes train steps */

    uint64_t                       hash;      /* lt_model layout hash */
    size_t                         param_count;
    size_t                         state_count;

    ngx_atomic_t                   version;   /* published buffers */
    ngx_atomic_t                   writing;   /* version being written */
    ngx_atomic_t                   step;      /* applied train steps */
    ngx_atomic_t                   optim_step; /* steps the optimizer
                                                  state saw since its last
                                                  reset (weights import) */
    ngx_atomic_t                   retired;   /* a reload replaced it */

    float                          loss;      /* of the last step */
    float                          loss_avg;  /* exponential average */

    ngx_atomic_t                   trains;    /* answered train requests */
    ngx_atomic_t                   rejected_steps; /* not finite: refused */
    ngx_atomic_t                   predicts;  /* answered predicts */
    ngx_atomic_t                   rejects;   /* 4xx answers */
    ngx_atomic_t                   retries;   /* predicts that re-read */
    ngx_atomic_t                   batches;   /* learn_batch forward passes */
    ngx_atomic_t                   batched;   /* predicts answered by them */
    ngx_atomic_t                   device_steps;    /* run on a GPU */
    ngx_atomic_t                   device_predicts;

    /* checkpoints: the version last written, and outcomes */
    ngx_atomic_t                   ckpt_version;
    ngx_atomic_t                   ckpt_step;
    ngx_atomic_t                   ckpt_writes;
    ngx_atomic_t                   ckpt_failures;
    time_t                         ckpt_time;

    /* predicts by the live parameters, and by kept versions */
    ngx_atomic_t                   live_latency_us;
    ngx_http_learn_version_t       versions[NGX_HTTP_LEARN_MAX_VERSIONS];

    /* learn_set evaluations, and those whose $VAR came out empty (a
     * feature not a number, the model not ready, an output not finite) */
    ngx_atomic_t                   set_evals;
    ngx_atomic_t                   set_empty;

    /* learn_feedback: steps trained on labels, and refused labels */
    ngx_atomic_t                   feedback_steps;
    ngx_atomic_t                   feedback_labels;
    ngx_atomic_t                   feedback_unknown;  /* 404 */
    ngx_atomic_t                   feedback_repeated; /* 409 */

    /*
     * store= / follow= (ngx_http_learn_store.c): the zone version last
     * published (store=), the step last published or served, the newest
     * step seen in the store, and outcomes; "ready": a follower has
     * parameters to serve (restored from its checkpoint, or taken)
     */
    ngx_atomic_t                   ready;
    ngx_atomic_t                   store_version;
    ngx_atomic_t                   store_step;
    ngx_atomic_t                   store_latest;
    ngx_atomic_t                   store_up;
    ngx_atomic_t                   store_transfers;
    ngx_atomic_t                   store_errors;
    ngx_atomic_t                   store_refused;
    ngx_atomic_t                   store_lag_ms; /* publication -> served */
    ngx_atomic_t                   store_subscribed; /* follow=: listening */
    ngx_atomic_t                   store_notices;    /* messages heard */
    time_t                         store_time;

    /* time to answer, of every answered predict (any version) and train */
    ngx_http_learn_hist_t          predict_hist;
    ngx_http_learn_hist_t          train_hist;

    /* the loss curve, and counter samples for rates (history.c) */
    ngx_http_learn_history_t       history;
    ngx_http_learn_samples_t       samples;

    size_t                         data_off;  /* bytes from this header */
} ngx_http_learn_shm_t;


typedef struct ngx_http_learn_ckpt_job_s  ngx_http_learn_ckpt_job_t;
typedef struct ngx_http_learn_dev_s       ngx_http_learn_dev_t;
typedef struct ngx_http_learn_vcache_s    ngx_http_learn_vcache_t;
typedef struct ngx_http_learn_feedback_s  ngx_http_learn_feedback_t;
typedef struct ngx_http_learn_store_s     ngx_http_learn_store_t;


/* one publication of a checkpoint version (store=), in the writer's job */
typedef struct {
    ngx_int_t                      rc;        /* NGX_ABORT: not tried */
    ngx_uint_t                     keep;      /* newest versions kept */
    ngx_uint_t                     pruned;
    int64_t                        protect[NGX_HTTP_LEARN_MAX_VERSIONS];
    ngx_uint_t                     nprotect;
    char                           vkey[256];
    char                           pointer[48];
    char                           num[2 + NGX_HTTP_LEARN_MAX_VERSIONS][24];
    char                           msg[LT_ERR_LEN];
} ngx_http_learn_store_op_t;


typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      file;      /* resolved path */
    uint64_t                       seed;
    lt_model                       model;

    /* device=cuda[:N] [tf32=on] [fallback=off]; -1: the CPU */
    ngx_int_t                      device;
    ngx_flag_t                     tf32;
    ngx_flag_t                     strict;    /* no GPU: refuse to start */

    ngx_shm_zone_t                *shm_zone;
    ngx_http_learn_shm_t          *shm;       /* set by zone init */
    ngx_http_learn_shm_t          *running;   /* the running
                                                 configuration's zone of
                                                 this model (master) */
    ngx_http_learn_shm_t          *retire;    /* the zone it replaces,
                                                 retired in init_module */
    unsigned                       fresh:1;   /* its zone is new (not
                                                 kept across reload) */
    unsigned                       copied:1;  /* state from the old zone */

    /* checkpoint=PATH; the file read at config time, used by zone init */
    ngx_str_t                      ckpt_path;
    ngx_msec_t                     ckpt_interval;
    ngx_flag_t                     ckpt_fresh; /* bad file: start fresh */
    ngx_uint_t                     ckpt_keep;  /* versions kept */
    ngx_http_learn_version_t       kept[NGX_HTTP_LEARN_MAX_VERSIONS];

    /* learn_candidate steps of this configuration: never pruned */
    int64_t                        protect[NGX_HTTP_LEARN_MAX_VERSIONS];
    ngx_uint_t                     nprotect;
    lt_checkpoint_meta             ckpt_meta;
    const uint8_t                 *ckpt_params;
    const uint8_t                 *ckpt_state;

    /* per worker, set in init_process */
    lt_workspace                  *ws;
    lt_workspace                  *ws_free[8]; /* for pool threads */
    ngx_uint_t                     nws_free;
    int                            ws_keep;   /* rows kept between requests */
    ngx_http_learn_dev_t          *dev;       /* NULL: on the CPU */
    ngx_event_t                    ckpt_timer;
    void                          *ckpt_pool; /* ngx_thread_pool_t */
    ngx_http_learn_ckpt_job_t     *ckpt_job;
    ngx_http_learn_vcache_t       *vcache;    /* kept versions read */

    /* learn_set variables of this model, and their workspace (one row,
     * per worker: a variable may be read while a batch's outputs are
     * still in ws) */
    ngx_uint_t                     nsets;
    lt_workspace                  *set_ws;

    /* resty.learn's calls (per worker, made on first use) */
    lt_workspace                  *lua_ws;

    /* learn_feedback: the features its learn_set evaluations left */
    ngx_http_learn_feedback_t     *feedback;

    /* store=URL (publishes its versions) or follow=URL (serves them) */
    ngx_http_learn_store_t        *store;
    ngx_flag_t                     follow;
    ngx_str_t                      store_url; /* without credentials */
} ngx_http_learn_model_t;


typedef struct {
    ngx_array_t                    models;    /* ngx_http_learn_model_t * */
    ngx_array_t                   *lua_paths; /* ngx_str_t */
    ngx_str_t                      lua_dir;   /* the repo's lua/ */
    ngx_str_t                      cuda_library; /* the CUDA backend .so */
    ngx_array_t                   *candidates; /* learn_candidate locations:
                                                  ngx_http_learn_loc_conf_t *
                                                */
    ngx_int_t                      request_id; /* $request_id's index, for
                                                  learn_feedback */
    ngx_uint_t                     job_max;   /* learn_job_max; 0: unset */
} ngx_http_learn_main_conf_t;


typedef enum {
    NGX_HTTP_LEARN_NONE = 0,
    NGX_HTTP_LEARN_TRAIN,
    NGX_HTTP_LEARN_PREDICT,
    NGX_HTTP_LEARN_STATUS,
    NGX_HTTP_LEARN_WEIGHTS,
    NGX_HTTP_LEARN_FEEDBACK,
    NGX_HTTP_LEARN_JOB_TRAIN,      /* dataset jobs: ngx_http_learn_job.c */
    NGX_HTTP_LEARN_JOB_PREDICT,
    NGX_HTTP_LEARN_JOB_STATUS
} ngx_http_learn_role_e;


typedef struct ngx_http_learn_ctx_s  ngx_http_learn_ctx_t;


typedef struct {
    ngx_http_learn_role_e          role;
    ngx_http_learn_model_t        *model;
    size_t                         max_elements;
    int64_t                        candidate;  /* learn_candidate STEP */
    ngx_uint_t                     candidate_share; /* of 10000 */

    /* learn_thread_pool NAME [threshold=N] */
    void                          *thread_pool; /* ngx_thread_pool_t */
    double                         thread_threshold;

    /* file reads (bodies on disk, kept versions): thread_pool, else
     * nginx's "default" pool */
    void                          *io_pool;

    /* learn_batch max=N timeout=TIME, and this worker's queue */
    ngx_uint_t                     batch_max;
    ngx_msec_t                     batch_timeout;
    ngx_queue_t                    batch_queue;
    ngx_uint_t                     batch_rows;
    ngx_uint_t                     batch_requests;
    ngx_event_t                    batch_timer;
    float                         *batch_buf;  /* batch_max rows of x */
    float                         *batch_ybuf; /* their outputs (GPU) */

    /* learn_feedback MODEL ... relabel=on: a label may replace one */
    ngx_flag_t                     relabel;

    /* dataset jobs (ngx_http_learn_job.c): learn_data_root (absolute,
     * NUL-terminated), learn_job_max_file_size, learn_job_predict sync= */
    ngx_str_t                      data_root;
    size_t                         job_max_file_size;
    ngx_flag_t                     job_sync;
} ngx_http_learn_loc_conf_t;


typedef enum {
    NGX_HTTP_LEARN_FMT_MSGPACK = 0,
    NGX_HTTP_LEARN_FMT_JSON,
    NGX_HTTP_LEARN_FMT_UNKNOWN
} ngx_http_learn_fmt_e;


/* where a request waits, if anywhere: its cleanup unlinks it */
typedef enum {
    NGX_HTTP_LEARN_PARK_NONE = 0,
    NGX_HTTP_LEARN_PARK_BATCH,     /* in lcf->batch_queue */
    NGX_HTTP_LEARN_PARK_QUEUE,     /* in another queue: waiting for a
                                      version to load, or a batch being
                                      answered */
    NGX_HTTP_LEARN_PARK_LOCK       /* ctx->retry armed: the mutex was busy */
} ngx_http_learn_park_e;


/* the request's body has arrived (data, len): go on */
typedef void (*ngx_http_learn_body_pt)(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, u_char *data, size_t len);

/* a wait (for a kept version to be read) is over: rc says how it went */
typedef void (*ngx_http_learn_resume_pt)(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, ngx_int_t rc);

/* an operation under the model's mutex (event loop or a pool thread) */
typedef ngx_int_t (*ngx_http_learn_op_pt)(ngx_http_learn_ctx_t *ctx,
    lt_workspace *ws, ngx_uint_t wait);

/*
 * The answer to an operation's result: NGX_OK, NGX_DECLINED (refused,
 * ctx->err says why) or NGX_ERROR; returns what the request is
 * finalized with.
 */
typedef ngx_int_t (*ngx_http_learn_reply_pt)(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, ngx_int_t rc);


/* per request */
struct ngx_http_learn_ctx_s {
    ngx_http_request_t            *request;
    ngx_http_learn_loc_conf_t     *lcf;
    lt_body                        body;
    unsigned                       json_out:1;
    unsigned                       task:1;    /* a pool task reads it */
    unsigned                       done:1;    /* answered: $learn_* */
    ngx_http_learn_park_e          parked;
    ngx_queue_t                    queue;     /* batch or version waiters */

    /* set by the request's cleanup: a task must not apply its step */
    volatile ngx_atomic_t          cancelled;

    ngx_http_learn_body_pt         body_done;
    ngx_http_learn_resume_pt       version_done;

    /* the operation (run under the mutex for train and import, or on a
     * pool thread), and its reply */
    ngx_http_learn_op_pt           run;
    ngx_http_learn_reply_pt        reply;
    ngx_uint_t                     locked;    /* run needs the mutex */
    ngx_event_t                    retry;     /* the mutex was busy */
    lt_err                         err;

    float                          loss;      /* train results */
    int64_t                        step;

    int64_t                        vstep;     /* predict: version, 0 live */
    const float                   *vparams;   /* its parameters, loaded */
    uint64_t                       start_us;
    lt_tensor                      y;         /* predict: the output */
    float                         *y_buf;     /* where a GPU forward
                                                 leaves it */

    /* a step or forward pass on the thread pool */
    lt_workspace                  *task_ws;
    ngx_int_t                      task_rc;
    ngx_pid_t                      task_unlocked; /* a dead owner's pid */

    uint64_t                       compute_us; /* $learn_compute_us */

    void                          *claim;     /* learn_feedback: the
                                                 evaluations it labels */

    int                            nnamed;    /* weights import */
    char                         **names;
    lt_tensor                     *tensors;
};


extern ngx_module_t  ngx_http_learn_module;


/* ngx_http_learn_directive.c: the directive handlers */
char *ngx_http_learn_model(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_learn_cuda_library(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_learn_role(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_learn_candidate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_learn_thread_pool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_learn_batch(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_learn_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_learn_set(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_learn_feedback_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_learn_counter(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_http_learn_model_t *ngx_http_learn_find_model(ngx_conf_t *cf,
    ngx_str_t *name);

/* ngx_http_learn_job.c: dataset jobs' directives */
char *ngx_http_learn_data_root(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_learn_job_max(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_learn_job_role(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_learn_job_merge(ngx_conf_t *cf,
    ngx_http_learn_loc_conf_t *prev, ngx_http_learn_loc_conf_t *conf);

/* ngx_http_learn_lua.c */
ngx_int_t ngx_http_learn_lua_load_model(ngx_conf_t *cf,
    ngx_http_learn_main_conf_t *lmcf, ngx_str_t *file, lt_model_spec *spec);
ngx_int_t ngx_http_learn_lua_find_dir(ngx_conf_t *cf, ngx_str_t *dir);
ngx_int_t ngx_http_learn_module_dir(ngx_conf_t *cf, ngx_str_t *dir,
    size_t reserve);

/* ngx_http_learn_zone.c */
ngx_int_t ngx_http_learn_zone_add(ngx_conf_t *cf,
    ngx_http_learn_model_t *lm, size_t size, ngx_shm_zone_init_pt init);
ngx_int_t ngx_http_learn_zone_init(ngx_shm_zone_t *shm_zone, void *data);
size_t ngx_http_learn_zone_size(const lt_model *model);
float *ngx_http_learn_zone_buffer(ngx_http_learn_shm_t *shm,
    ngx_uint_t which);
float *ngx_http_learn_zone_state(ngx_http_learn_shm_t *shm,
    ngx_uint_t which);
const float *ngx_http_learn_zone_params(ngx_http_learn_shm_t *shm,
    ngx_atomic_uint_t *version);
ngx_int_t ngx_http_learn_zone_read_valid(ngx_http_learn_shm_t *shm,
    ngx_atomic_uint_t version);
float *ngx_http_learn_zone_begin_write(ngx_http_learn_shm_t *shm);
void ngx_http_learn_zone_publish(ngx_http_learn_shm_t *shm);
void ngx_http_learn_zone_publish_import(ngx_http_learn_shm_t *shm,
    const lt_model *model);
ngx_pid_t ngx_http_learn_zone_lock_recover(ngx_http_learn_shm_t *shm);
ngx_pid_t ngx_http_learn_zone_lock_wait(ngx_http_learn_shm_t *shm);
void ngx_http_learn_zone_lock_unlocked(ngx_http_learn_model_t *lm,
    ngx_pid_t pid, ngx_log_t *log);
void ngx_http_learn_zone_retire(ngx_http_learn_model_t *lm, ngx_log_t *log);
ngx_http_learn_shm_t *ngx_http_learn_zone_running(ngx_http_learn_model_t *lm);
ngx_int_t ngx_http_learn_zone_remember(ngx_cycle_t *cycle,
    ngx_http_learn_main_conf_t *lmcf);
void ngx_http_learn_zone_forget(void);

/*
 * One process writes checkpoints: worker 0, or the single process.  The
 * cache manager and loader have ngx_worker == 0 as well: not them.
 */
#define ngx_http_learn_checkpoint_writer()                                    \
    (ngx_process == NGX_PROCESS_SINGLE                                        \
     || (ngx_process == NGX_PROCESS_WORKER && ngx_worker == 0))

/* ngx_http_learn_checkpoint.c */
ngx_int_t ngx_http_learn_checkpoint_load(ngx_conf_t *cf,
    ngx_http_learn_model_t *lm);
void ngx_http_learn_checkpoint_restore(ngx_http_learn_model_t *lm,
    ngx_log_t *log);
ngx_int_t ngx_http_learn_checkpoint_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
ngx_int_t ngx_http_learn_checkpoint_init_module(ngx_cycle_t *cycle,
    ngx_http_learn_model_t *lm);
void ngx_http_learn_checkpoint_init_worker(ngx_cycle_t *cycle,
    ngx_http_learn_model_t *lm);
void ngx_http_learn_checkpoint_exit_worker(ngx_cycle_t *cycle,
    ngx_http_learn_model_t *lm);
ngx_http_learn_ckpt_job_t *ngx_http_learn_checkpoint_job_new(
    ngx_http_learn_model_t *lm);
void ngx_http_learn_checkpoint_job_write(ngx_http_learn_ckpt_job_t *job);
int64_t ngx_http_learn_checkpoint_job_end(ngx_http_learn_model_t *lm,
    ngx_http_learn_ckpt_job_t *job, ngx_log_t *log, u_char *msg,
    size_t size);
void ngx_http_learn_checkpoint_job_free(ngx_http_learn_ckpt_job_t *job);

/* ngx_http_learn_store.c: store= and follow= through Redis */
ngx_int_t ngx_http_learn_store_parse(ngx_conf_t *cf,
    ngx_http_learn_model_t *lm, ngx_str_t *value);
void ngx_http_learn_store_sized(ngx_http_learn_model_t *lm);
void ngx_http_learn_store_prepare(ngx_http_learn_model_t *lm,
    ngx_http_learn_store_op_t *op, ngx_uint_t keep, int64_t *protect,
    ngx_uint_t nprotect);
void ngx_http_learn_store_publish(ngx_http_learn_model_t *lm,
    ngx_http_learn_store_op_t *op, const uint8_t *buf, size_t len,
    int64_t step);
void ngx_http_learn_store_published(ngx_http_learn_model_t *lm,
    ngx_http_learn_store_op_t *op, ngx_atomic_uint_t version, int64_t step,
    ngx_log_t *log);
ngx_uint_t ngx_http_learn_store_behind(ngx_http_learn_model_t *lm);
void ngx_http_learn_store_exit_worker(ngx_http_learn_model_t *lm);
ngx_int_t ngx_http_learn_store_check(ngx_http_request_t *r,
    ngx_http_learn_model_t *lm, ngx_uint_t writes);
u_char *ngx_http_learn_store_status(u_char *p, ngx_http_learn_model_t *lm);
u_char *ngx_http_learn_store_sample(u_char *p, ngx_uint_t which,
    ngx_http_learn_model_t *lm);

/* a follower without parameters to serve yet (nothing restored or taken) */
#define ngx_http_learn_store_waiting(lm)                                      \
    ((lm)->follow && !(lm)->shm->ready)

/* ngx_http_learn_store_follow.c: a follower's poll, check and swap */
ngx_int_t ngx_http_learn_store_init_worker(ngx_cycle_t *cycle,
    ngx_http_learn_model_t *lm);
void ngx_http_learn_store_follow_exit(ngx_http_learn_model_t *lm);
ngx_int_t ngx_http_learn_store_read_version(ngx_http_learn_model_t *lm,
    int64_t step, float *params, lt_err *err);

/* ngx_http_learn_handler.c: learn_train, learn_predict */
ngx_int_t ngx_http_learn_handler(ngx_http_request_t *r);
ngx_http_learn_ctx_t *ngx_http_learn_ctx_create(ngx_http_request_t *r);

/* ngx_http_learn_body.c */
ngx_http_learn_fmt_e ngx_http_learn_body_format(ngx_http_request_t *r);
ngx_int_t ngx_http_learn_body_admit(ngx_http_request_t *r,
    ngx_http_learn_model_t *lm, size_t max_elements, ngx_uint_t ready,
    const char *hint);
ngx_uint_t ngx_http_learn_wants_json(ngx_http_request_t *r);
ngx_int_t ngx_http_learn_body_read(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, ngx_http_learn_body_pt done);
ngx_int_t ngx_http_learn_body_bound(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx);

/* ngx_http_learn_reply.c */
extern ngx_str_t  ngx_http_learn_type_msgpack;
extern ngx_str_t  ngx_http_learn_type_json;

ngx_int_t ngx_http_learn_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *data, size_t len);
ngx_int_t ngx_http_learn_reject(ngx_http_request_t *r, ngx_uint_t status,
    const char *fmt, ...);
ngx_int_t ngx_http_learn_fail(ngx_http_request_t *r, ngx_uint_t status,
    const char *msg);
ngx_int_t ngx_http_learn_reject_method(ngx_http_request_t *r, char *allowed);
void ngx_http_learn_finalize(ngx_http_request_t *r, ngx_int_t rc);
void *ngx_http_learn_pool_alloc(void *ctx, size_t size);

/* ngx_http_learn_predict.c */
ngx_int_t ngx_http_learn_predict(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx);

ngx_int_t ngx_http_learn_predict_live(ngx_http_learn_model_t *lm,
    lt_workspace *ws, const lt_tensor *x, lt_tensor *y, int64_t *step,
    lt_err *err);

/* ngx_http_learn_train.c */
ngx_int_t ngx_http_learn_train(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx);
ngx_int_t ngx_http_learn_train_reply(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, ngx_int_t rc);
ngx_int_t ngx_http_learn_train_step(ngx_http_learn_model_t *lm,
    lt_workspace *ws, const lt_tensor *x, const lt_tensor *y, float *loss,
    int64_t *step, ngx_uint_t wait, lt_err *err);
ngx_int_t ngx_http_learn_train_run_step(ngx_http_learn_model_t *lm,
    lt_workspace *ws, const lt_tensor *x, const lt_tensor *y, ngx_uint_t nth,
    float *loss, lt_err *err);
ngx_int_t ngx_http_learn_train_run_publish(ngx_http_learn_model_t *lm,
    const float *loss, ngx_uint_t n, int64_t *step, lt_err *err);
ngx_int_t ngx_http_learn_run_locked(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx);
void ngx_http_learn_lock_cancel(ngx_http_learn_ctx_t *ctx);

/* ngx_http_learn_thread.c */
ngx_int_t ngx_http_learn_thread_offload(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, double cost);
ngx_int_t ngx_http_learn_task_post(ngx_http_request_t *r, void *pool,
    ngx_thread_task_t *task);
void ngx_http_learn_task_done(ngx_http_request_t *r);
void ngx_http_learn_tasks_add(ngx_int_t n);
lt_workspace *ngx_http_learn_ws_get(ngx_http_learn_model_t *lm,
    lt_err *err);
void ngx_http_learn_ws_put(ngx_http_learn_model_t *lm, lt_workspace *ws);
void ngx_http_learn_ws_fit(ngx_http_learn_model_t *lm, lt_workspace *ws);

/* ngx_http_learn_batch.c */
ngx_int_t ngx_http_learn_batch_add(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx);
void ngx_http_learn_batch_remove(ngx_http_learn_ctx_t *ctx);
void ngx_http_learn_batch_cleanup(void *data);

/* ngx_http_learn_versions.c */
ngx_int_t ngx_http_learn_versions_scan(ngx_conf_t *cf,
    ngx_http_learn_model_t *lm);
ngx_int_t ngx_http_learn_versions_read(ngx_http_learn_model_t *lm,
    int64_t step, float *params, lt_checkpoint_meta *meta, lt_err *err);
void ngx_http_learn_versions_added(ngx_http_learn_model_t *lm, int64_t step,
    float loss);
ngx_int_t ngx_http_learn_versions_init_module(ngx_cycle_t *cycle,
    ngx_http_learn_main_conf_t *lmcf);
ngx_uint_t ngx_http_learn_versions_keep(ngx_http_learn_model_t *lm);
ngx_uint_t ngx_http_learn_versions_protected(int64_t *protect, ngx_uint_t n,
    int64_t step);
ngx_int_t ngx_http_learn_versions_get(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, ngx_http_learn_resume_pt done);
void ngx_http_learn_versions_exit(ngx_http_learn_model_t *lm);
ngx_http_learn_version_t *ngx_http_learn_versions_find(
    ngx_http_learn_shm_t *shm, int64_t step);
int ngx_http_learn_versions_path(char *buf, size_t size, ngx_str_t *path,
    int64_t step);
ngx_int_t ngx_http_learn_versions_params(ngx_http_learn_model_t *lm,
    int64_t step, const float **params, lt_err *err);

/* ngx_http_learn_weights.c */
ngx_int_t ngx_http_learn_weights_handler(ngx_http_request_t *r);

/* ngx_http_learn_device.c */
ngx_int_t ngx_http_learn_device_parse(ngx_conf_t *cf,
    ngx_http_learn_model_t *lm, ngx_str_t *value);
ngx_int_t ngx_http_learn_device_check(ngx_conf_t *cf,
    ngx_http_learn_main_conf_t *lmcf, ngx_http_learn_model_t *lm);
ngx_int_t ngx_http_learn_device_init(ngx_cycle_t *cycle,
    ngx_http_learn_main_conf_t *lmcf, ngx_http_learn_model_t *lm);
void ngx_http_learn_device_exit(ngx_http_learn_model_t *lm);
void ngx_http_learn_device_exit_process(void);
ngx_uint_t ngx_http_learn_device_usable(ngx_http_learn_model_t *lm);
ngx_int_t ngx_http_learn_device_step(ngx_http_learn_model_t *lm,
    const lt_tensor *x, const lt_tensor *y, float *params_out,
    float *state_out, int64_t step, float *loss, ngx_uint_t wait,
    lt_err *err);
ngx_int_t ngx_http_learn_device_forward(ngx_http_learn_model_t *lm,
    const lt_tensor *x, float *y_buf, lt_tensor *y, ngx_uint_t wait);
u_char *ngx_http_learn_device_name(u_char *p, ngx_http_learn_model_t *lm);

/* ngx_http_learn_set.c: learn_set $VAR MODEL FEATURE... */
typedef struct {
    ngx_http_learn_model_t        *model;
    ngx_str_t                      name;      /* the variable, without $ */
    ngx_array_t                    features;  /* ngx_http_complex_value_t */
    ngx_int_t                      output;    /* a component, or one of: */
    ngx_uint_t                     index;     /* among the model's sets */
} ngx_http_learn_set_t;

#define NGX_HTTP_LEARN_SET_DEFAULT  -1        /* the value, or the argmax */
#define NGX_HTTP_LEARN_SET_ARGMAX   -2
#define NGX_HTTP_LEARN_SET_MAX      -3

ngx_int_t ngx_http_learn_set_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_learn_set_init_process(ngx_cycle_t *cycle,
    ngx_http_learn_model_t *lm);

/* ngx_http_learn_feedback.c */
ngx_int_t ngx_http_learn_feedback_add(ngx_conf_t *cf,
    ngx_http_learn_model_t *lm, ngx_uint_t keep, time_t ttl);
void ngx_http_learn_feedback_keep(ngx_http_request_t *r,
    ngx_http_learn_set_t *set, const float *x);
ngx_int_t ngx_http_learn_feedback(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, u_char *data, size_t len);
u_char *ngx_http_learn_feedback_status(u_char *p,
    ngx_http_learn_model_t *lm);

/* ngx_http_learn_counter.c: learn_counter $VAR KEY window=TIME zone=.. */
ngx_int_t ngx_http_learn_counter_add(ngx_conf_t *cf, ngx_str_t *var,
    ngx_http_complex_value_t *key, ngx_msec_t window, ngx_str_t *zone,
    size_t size);

/* ngx_http_learn_variables.c: $learn_model, $learn_step, ... */
ngx_int_t ngx_http_learn_variables_add(ngx_conf_t *cf);

/* ngx_http_learn_status.c */
ngx_int_t ngx_http_learn_status_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_LEARN_H_INCLUDED_ */
