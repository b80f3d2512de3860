
/*
 * The C side of lua/resty/learn.lua.  The structs and prototypes below
 * are also declared, field for field, in lua/resty/learn/cdef.lua's
 * ffi.cdef: change both together.  Every field has a fixed-size type, so the declarations
 * there need no nginx header; the model handle is a void * there.
 */


#ifndef _NGX_HTTP_LEARN_FFI_H_INCLUDED_
#define _NGX_HTTP_LEARN_FFI_H_INCLUDED_


#include "ngx_http_learn.h"


/* the room a caller gives for a message */
#define NGX_HTTP_LEARN_FFI_ERR_LEN  256
/* dimensions of a state-dict entry (a Conv2d weight has 4) */
#define NGX_HTTP_LEARN_FFI_DIMS     4


typedef struct {
    int                            ready;     /* 0: not in a worker */
    int                            in_dim;
    int                            out_dim;
    int                            nparams;
    int                            classes;   /* targets may be indices */
    size_t                         param_count;
    size_t                         max_width; /* widest activation */
    size_t                         max_elements; /* rows x max_width bound */
} ngx_http_learn_ffi_info_t;


typedef struct {
    int64_t                        step;
    double                         loss;
    int64_t                        time;
    uint64_t                       predicts;
    uint64_t                       predict_latency_us;
} ngx_http_learn_ffi_version_t;


/* learn_status's counters of one model, named as its JSON names them */
typedef struct {
    int                            ready;
    int                            checkpoint; /* checkpoint= configured */
    int                            keep;      /* checkpoint_keep */
    u_char                         device[32]; /* "cpu", "cuda:0" */
    int64_t                        step;
    double                         loss;
    double                         loss_avg;
    uint64_t                       trains;
    uint64_t                       predicts;
    uint64_t                       rejected;
    uint64_t                       rejected_steps;
    uint64_t                       predict_rereads;
    uint64_t                       batches;
    uint64_t                       batched_predicts;
    uint64_t                       device_steps;
    uint64_t                       device_predicts;
    uint64_t                       set_evals;
    uint64_t                       set_empty;
    uint64_t                       predict_latency_us;
    int64_t                        checkpoint_step;
    uint64_t                       checkpoint_writes;
    uint64_t                       checkpoint_failures;
    int64_t                        checkpoint_time;
    int                            nversions;
    ngx_http_learn_ffi_version_t   versions[16];
} ngx_http_learn_ffi_status_t;


/* the cdef's versions[16] is a literal: it must stay the table's size */
typedef char  ngx_http_learn_ffi_versions_fit[
    (NGX_HTTP_LEARN_MAX_VERSIONS == 16) ? 1 : -1];


typedef struct ngx_http_learn_ffi_task_s  ngx_http_learn_ffi_task_t;


/* between ngx_http_learn_ffi.c and ngx_http_learn_ffi_task.c */
ngx_int_t ngx_http_learn_ffi_error(u_char *buf, size_t *len, ngx_int_t rc,
    const char *fmt, ...);
ngx_int_t ngx_http_learn_ffi_ready(ngx_http_learn_model_t *lm,
    ngx_uint_t writes, u_char *err, size_t *errlen);
ngx_int_t ngx_http_learn_ffi_input(ngx_http_learn_model_t *lm, lt_tensor *x,
    const float *data, int ndim, const int64_t *shape, lt_tensor *y,
    const float *ydata, int yndim, const int64_t *yshape, u_char *err,
    size_t *errlen);
void ngx_http_learn_ffi_predicted(ngx_http_learn_model_t *lm,
    int64_t version, uint64_t start_us);
void ngx_http_learn_ffi_trained(ngx_http_learn_model_t *lm,
    uint64_t start_us);
ngx_int_t ngx_http_learn_ffi_train_reply(ngx_http_learn_model_t *lm,
    ngx_int_t rc, lt_err *e, u_char *err, size_t *errlen);


/* called by the module's init_process and exit_process */
void ngx_http_learn_ffi_init_process(ngx_http_learn_main_conf_t *lmcf);
void ngx_http_learn_ffi_exit_process(void);


/* exported to LuaJIT */
ngx_http_learn_model_t *ngx_http_learn_ffi_model(const u_char *name,
    size_t len, ngx_http_learn_ffi_info_t *info);
/* entry i of the state dict: shape has NGX_HTTP_LEARN_FFI_DIMS slots
 * (ndim of them used; 0 dims: a scalar), dtype 0 float32, 1 int64 */
ngx_int_t ngx_http_learn_ffi_param(ngx_http_learn_model_t *lm, int i,
    const char **name, int *ndim, int64_t *shape, size_t *offset,
    int *dtype);
ngx_int_t ngx_http_learn_ffi_predict(ngx_http_learn_model_t *lm,
    int64_t version, const float *x, int ndim, const int64_t *shape,
    float *y, int64_t *step, u_char *err, size_t *errlen);
ngx_int_t ngx_http_learn_ffi_train(ngx_http_learn_model_t *lm,
    const float *x, int xndim, const int64_t *xshape, const float *y,
    int yndim, const int64_t *yshape, int block, uint64_t *start_us,
    float *loss, int64_t *step, u_char *err, size_t *errlen);
ngx_int_t ngx_http_learn_ffi_weights(ngx_http_learn_model_t *lm,
    float *out, int64_t *step, u_char *err, size_t *errlen);
ngx_int_t ngx_http_learn_ffi_load_weights(ngx_http_learn_model_t *lm,
    const float *params, int block, u_char *err, size_t *errlen);
void ngx_http_learn_ffi_status(ngx_http_learn_model_t *lm,
    ngx_http_learn_ffi_status_t *st);
void ngx_http_learn_ffi_reject(ngx_http_learn_model_t *lm);

ngx_int_t ngx_http_learn_ffi_pool(const u_char *pool, size_t len,
    u_char *err, size_t *errlen);
ngx_http_learn_ffi_task_t *ngx_http_learn_ffi_task_post(
    ngx_http_learn_model_t *lm, const u_char *pool, size_t len,
    double threshold, int train, const float *x, int xndim,
    const int64_t *xshape, const float *y, int yndim,
    const int64_t *yshape, ngx_int_t *rc, u_char *err, size_t *errlen);
ngx_int_t ngx_http_learn_ffi_task_poll(ngx_http_learn_ffi_task_t *t);
ngx_int_t ngx_http_learn_ffi_task_finish(ngx_http_learn_ffi_task_t *t,
    float *y, float *loss, int64_t *step, u_char *err, size_t *errlen);
void ngx_http_learn_ffi_task_abandon(ngx_http_learn_ffi_task_t *t);


#endif /* _NGX_HTTP_LEARN_FFI_H_INCLUDED_ */
