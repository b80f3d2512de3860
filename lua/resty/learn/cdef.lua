-- resty.learn.cdef: the C side of resty.learn, declared once per Lua VM.
-- The module exports these (src/http/ngx_http_learn_ffi.h); nginx loads
-- modules with RTLD_GLOBAL, so ffi.C finds them.

local ffi = require "ffi"

-- must match src/http/ngx_http_learn_ffi.h field for field
ffi.cdef [[
typedef struct {
    int       ready;
    int       in_dim;
    int       out_dim;
    int       nparams;
    int       classes;
    size_t    param_count;
    size_t    max_width;
    size_t    max_elements;
} ngx_http_learn_ffi_info_t;

typedef struct {
    int64_t   step;
    double    loss;
    int64_t   time;
    uint64_t  predicts;
    uint64_t  predict_latency_us;
} ngx_http_learn_ffi_version_t;

typedef struct {
    int       ready;
    int       checkpoint;
    int       keep;
    unsigned char  device[32];
    int64_t   step;
    double    loss;
    double    loss_avg;
    uint64_t  trains;
    uint64_t  predicts;
    uint64_t  rejected;
    uint64_t  rejected_steps;
    uint64_t  predict_rereads;
    uint64_t  batches;
    uint64_t  batched_predicts;
    uint64_t  device_steps;
    uint64_t  device_predicts;
    uint64_t  set_evals;
    uint64_t  set_empty;
    uint64_t  predict_latency_us;
    int64_t   checkpoint_step;
    uint64_t  checkpoint_writes;
    uint64_t  checkpoint_failures;
    int64_t   checkpoint_time;
    int       nversions;
    ngx_http_learn_ffi_version_t  versions[16];
} ngx_http_learn_ffi_status_t;

typedef struct ngx_http_learn_ffi_task_s  ngx_http_learn_ffi_task_t;

void *ngx_http_learn_ffi_model(const unsigned char *name, size_t len,
    ngx_http_learn_ffi_info_t *info);
intptr_t ngx_http_learn_ffi_param(void *lm, int i, const char **name,
    int *ndim, int64_t *shape, size_t *offset, int *dtype);
intptr_t ngx_http_learn_ffi_predict(void *lm, int64_t version,
    const float *x, int ndim, const int64_t *shape, float *y,
    int64_t *step, unsigned char *err, size_t *errlen);
intptr_t ngx_http_learn_ffi_train(void *lm, const float *x, int xndim,
    const int64_t *xshape, const float *y, int yndim,
    const int64_t *yshape, int block, uint64_t *start_us, float *loss,
    int64_t *step, unsigned char *err, size_t *errlen);
intptr_t ngx_http_learn_ffi_weights(void *lm, float *out, int64_t *step,
    unsigned char *err, size_t *errlen);
intptr_t ngx_http_learn_ffi_load_weights(void *lm, const float *params,
    int block, unsigned char *err, size_t *errlen);
void ngx_http_learn_ffi_status(void *lm, ngx_http_learn_ffi_status_t *st);
void ngx_http_learn_ffi_reject(void *lm);

intptr_t ngx_http_learn_ffi_pool(const unsigned char *pool, size_t len,
    unsigned char *err, size_t *errlen);
ngx_http_learn_ffi_task_t *ngx_http_learn_ffi_task_post(void *lm,
    const unsigned char *pool, size_t len, double threshold, int train,
    const float *x, int xndim, const int64_t *xshape, const float *y,
    int yndim, const int64_t *yshape, intptr_t *rc, unsigned char *err,
    size_t *errlen);
intptr_t ngx_http_learn_ffi_task_poll(ngx_http_learn_ffi_task_t *t);
intptr_t ngx_http_learn_ffi_task_finish(ngx_http_learn_ffi_task_t *t,
    float *y, float *loss, int64_t *step, unsigned char *err,
    size_t *errlen);
void ngx_http_learn_ffi_task_abandon(ngx_http_learn_ffi_task_t *t);
]]

return true
