
/*
 * The functions lua/resty/learn.lua calls through the LuaJIT FFI, for
 * lua-nginx-module handlers in any phase and in timers.  nginx loads
 * modules with RTLD_GLOBAL, so ffi.C finds these symbols.
 *
 * They keep the HTTP handlers' semantics: the same zone and counters,
 * one applied step per successful train, predicts that never see a
 * half-applied step, every input checked (shapes named as the HTTP
 * answers name them, non-finite numbers refused) before anything
 * changes.  A call runs on the event loop (a workspace of its own, since
 * a batch's outputs may still lie in the worker's), or, when the caller
 * names a thread pool and the work is above its threshold, as a task
 * that the Lua side polls while its coroutine sleeps
 * (ngx_http_learn_ffi_task.c).
 *
 * A model handle is only given out in a worker, after this module's
 * init_process: in the master (init_by_lua) the configuration being read
 * is not the one workers will run, and a handle cached there would point
 * into a freed cycle.
 */


#include "ngx_http_learn_ffi.h"


/* the train mutex: spins on the event loop before "busy" */
#define NGX_HTTP_LEARN_FFI_SPINS      64

/* a caller that cannot yield (log, balancer) waits this long at most */
#define NGX_HTTP_LEARN_FFI_BLOCK_US   10000
#define NGX_HTTP_LEARN_FFI_SLEEP_US   100


static ngx_http_learn_main_conf_t  *ngx_http_learn_ffi_conf;


static ngx_int_t ngx_http_learn_ffi_lock(ngx_http_learn_model_t *lm,
    ngx_uint_t block, u_char *err, size_t *errlen);


/* this worker's configuration, once its workspaces exist */

void
ngx_http_learn_ffi_init_process(ngx_http_learn_main_conf_t *lmcf)
{
    ngx_http_learn_ffi_conf = lmcf;
}


void
ngx_http_learn_ffi_exit_process(void)
{
    ngx_uint_t               i;
    ngx_http_learn_model_t **lmp;

    if (ngx_http_learn_ffi_conf == NULL) {
        return;
    }

    lmp = ngx_http_learn_ffi_conf->models.elts;

    for (i = 0; i < ngx_http_learn_ffi_conf->models.nelts; i++) {
        if (lmp[i]->lua_ws) {
            lt_workspace_free(lmp[i]->lua_ws);
            lmp[i]->lua_ws = NULL;
        }
    }

    ngx_http_learn_ffi_conf = NULL;
}


ngx_http_learn_model_t *
ngx_http_learn_ffi_model(const u_char *name, size_t len,
    ngx_http_learn_ffi_info_t *info)
{
    ngx_uint_t                i;
    ngx_http_learn_model_t  **lmp, *lm;

    if (ngx_http_learn_ffi_conf == NULL) {
        info->ready = 0;
        return NULL;
    }

    info->ready = 1;

    lmp = ngx_http_learn_ffi_conf->models.elts;

    for (i = 0; i < ngx_http_learn_ffi_conf->models.nelts; i++) {
        lm = lmp[i];

        if (lm->name.len != len || ngx_strncmp(lm->name.data, name, len) != 0)
        {
            continue;
        }

        info->in_dim = lm->model.in_dim;
        info->out_dim = lm->model.out_dim;
        info->nparams = lm->model.nparams;
        info->param_count = lt_model_values(&lm->model);
        info->classes = lt_loss_takes_indices(lm->model.spec.loss);
        info->max_width = lm->model.max_width;
        info->max_elements = NGX_HTTP_LEARN_DEFAULT_MAX_ELEMENTS;

        return lm;
    }

    return NULL;
}


/* a call that resty.learn refused itself (a table that is not a tensor,
 * an unknown option): counted with the refusals of learn_status */

void
ngx_http_learn_ffi_reject(ngx_http_learn_model_t *lm)
{
    if (lm->shm) {
        (void) ngx_atomic_fetch_add(&lm->shm->rejects, 1);
    }
}


/* parameter i: its name, shape and offset among the P floats */

ngx_int_t
ngx_http_learn_ffi_param(ngx_http_learn_model_t *lm, int i,
    const char **name, int *ndim, int64_t *shape, size_t *offset,
    int *dtype)
{
    int                   d;
    const lt_param_info  *pi;

    if (i < 0 || i >= lm->model.nparams) {
        return NGX_DECLINED;
    }

    pi = &lm->model.params[i];

    *name = pi->name;
    *ndim = pi->ndim;

    for (d = 0; d < NGX_HTTP_LEARN_FFI_DIMS; d++) {
        shape[d] = d < pi->ndim ? pi->shape[d] : 0;
    }

    *offset = pi->offset;
    *dtype = pi->dtype == LT_DTYPE_I64 ? 1 : 0;

    return NGX_OK;
}


/*
 * The forward pass of x into y (rows x out_dim floats of the caller's),
 * with the live parameters (version 0) or a kept version's.  NGX_OK;
 * NGX_DECLINED: refused, err says why (nothing was run); NGX_AGAIN: the
 * version is being read by a thread, ask again later; NGX_ERROR.
 *
 * A kept version that this worker has not read yet is read here, on the
 * event loop (the HTTP path reads it on a thread): it is one file of P
 * floats, read once per worker and version.
 */

ngx_int_t
ngx_http_learn_ffi_predict(ngx_http_learn_model_t *lm, int64_t version,
    const float *data, int ndim, const int64_t *shape, float *y,
    int64_t *step, u_char *err, size_t *errlen)
{
    uint64_t      start;
    ngx_int_t     rc;
    lt_err        e;
    lt_tensor     x, out;
    const float  *params;

    rc = ngx_http_learn_ffi_ready(lm, 0, err, errlen);
    if (rc != NGX_OK) {
        return rc;
    }

    if (y == NULL) {
        return ngx_http_learn_ffi_error(err, errlen, NGX_DECLINED,
                                        "no buffer for y");
    }

    rc = ngx_http_learn_ffi_input(lm, &x, data, ndim, shape, NULL, NULL, 0,
                                  NULL, err, errlen);
    if (rc != NGX_OK) {
        return rc;
    }

    start = ngx_http_learn_now_us();

    if (version) {
        rc = ngx_http_learn_versions_params(lm, version, &params, &e);

        if (rc == NGX_DECLINED) {
            (void) ngx_atomic_fetch_add(&lm->shm->rejects, 1);
            return ngx_http_learn_ffi_error(err, errlen, NGX_DECLINED,
                                            "model \"%V\" keeps no version "
                                            "%L", &lm->name, version);
        }

        if (rc == NGX_AGAIN) {
            return ngx_http_learn_ffi_error(err, errlen, NGX_AGAIN, "%s",
                                            e.msg);
        }

        if (rc != NGX_OK
            || lt_model_forward(&lm->model, lm->lua_ws, params, &x, &out,
                                &e) != 0)
        {
            return ngx_http_learn_ffi_error(err, errlen, NGX_ERROR, "%s",
                                            e.msg);
        }

        *step = version;

    } else if (ngx_http_learn_device_forward(lm, &x, y, &out, 0) == NGX_OK) {
        *step = (int64_t) lm->shm->step;

    } else if (ngx_http_learn_predict_live(lm, lm->lua_ws, &x, &out, step,
                                           &e)
               != NGX_OK)
    {
        return ngx_http_learn_ffi_error(err, errlen, NGX_ERROR, "%s", e.msg);
    }

    if (out.data != y) {
        ngx_memcpy(y, out.data, lt_tensor_numel(&out) * sizeof(float));
    }

    /* one big predict must not keep its memory for the worker's life */
    ngx_http_learn_ws_fit(lm, lm->lua_ws);

    ngx_http_learn_ffi_predicted(lm, version, start);

    return NGX_OK;
}


/*
 * One optimizer step.  NGX_OK: *loss and *step; NGX_DECLINED: refused
 * (bad input, or a step that would make the model NaN or Inf: not
 * applied); NGX_AGAIN: another worker's step holds the mutex, call again
 * later (block: wait for it, a little); NGX_BUSY: it held the mutex for
 * longer than a caller that cannot yield may wait; NGX_ERROR.  *start_us
 * is 0 on a first call, and is set to when the call began: a caller that
 * calls again after NGX_AGAIN passes it back, so the latency histogram
 * counts the wait for the mutex, as learn_train's does.
 */

ngx_int_t
ngx_http_learn_ffi_train(ngx_http_learn_model_t *lm, const float *xdata,
    int xndim, const int64_t *xshape, const float *ydata, int yndim,
    const int64_t *yshape, int block, uint64_t *start_us, float *loss,
    int64_t *step, u_char *err, size_t *errlen)
{
    ngx_int_t  rc;
    lt_err     e;
    lt_tensor  x, y;

    rc = ngx_http_learn_ffi_ready(lm, 1, err, errlen);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_learn_ffi_input(lm, &x, xdata, xndim, xshape, &y, ydata,
                                  yndim, yshape, err, errlen);
    if (rc != NGX_OK) {
        return rc;
    }

    if (*start_us == 0) {
        *start_us = ngx_http_learn_now_us();
    }

    rc = ngx_http_learn_ffi_lock(lm, block, err, errlen);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_learn_train_step(lm, lm->lua_ws, &x, &y, loss, step, 0, &e);

    ngx_shmtx_unlock(&lm->shm->mutex);

    ngx_http_learn_ws_fit(lm, lm->lua_ws);

    if (rc == NGX_OK) {
        ngx_http_learn_ffi_trained(lm, *start_us);
    }

    return ngx_http_learn_ffi_train_reply(lm, rc, &e, err, errlen);
}


/* a consistent copy of the live parameters (P floats) */

ngx_int_t
ngx_http_learn_ffi_weights(ngx_http_learn_model_t *lm, float *out,
    int64_t *step, u_char *err, size_t *errlen)
{
    ngx_int_t          rc;
    const float       *params;
    ngx_atomic_uint_t  version;

    rc = ngx_http_learn_ffi_ready(lm, 0, err, errlen);
    if (rc != NGX_OK) {
        return rc;
    }

    do {
        params = ngx_http_learn_zone_params(lm->shm, &version);
        *step = (int64_t) lm->shm->step;
        ngx_memcpy(out, params, lt_model_values(&lm->model) * sizeof(float));
    } while (!ngx_http_learn_zone_read_valid(lm->shm, version));

    return NGX_OK;
}


/*
 * Every parameter at once (P floats, in the model's order: resty.learn
 * checked the names and shapes), all finite, published in one step as a
 * learn_weights PUT does.  NGX_AGAIN and NGX_BUSY as for a train.
 */

ngx_int_t
ngx_http_learn_ffi_load_weights(ngx_http_learn_model_t *lm,
    const float *params, int block, u_char *err, size_t *errlen)
{
    int                   i;
    int64_t               at;
    ngx_int_t             rc;
    const lt_param_info  *pi;

    rc = ngx_http_learn_ffi_ready(lm, 1, err, errlen);
    if (rc != NGX_OK) {
        return rc;
    }

    for (i = 0; i < lm->model.nparams; i++) {
        pi = &lm->model.params[i];
        at = lt_floats_nonfinite_at(params + pi->offset, pi->numel);

        if (at >= 0) {
            (void) ngx_atomic_fetch_add(&lm->shm->rejects, 1);
            return ngx_http_learn_ffi_error(err, errlen, NGX_DECLINED,
                                            "\"%s\" has a non-finite value "
                                            "(NaN or Inf) at element %L",
                                            pi->name, at);
        }
    }

    rc = ngx_http_learn_ffi_lock(lm, block, err, errlen);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_memcpy(ngx_http_learn_zone_begin_write(lm->shm), params,
               lt_model_values(&lm->model) * sizeof(float));
    ngx_http_learn_zone_publish_import(lm->shm, &lm->model);

    ngx_shmtx_unlock(&lm->shm->mutex);

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "learn.load_weights \"%V\": imported %d parameters",
                  &lm->name, lm->model.nparams);

    return NGX_OK;
}


void
ngx_http_learn_ffi_status(ngx_http_learn_model_t *lm,
    ngx_http_learn_ffi_status_t *st)
{
    ngx_uint_t             i, j, n;
    ngx_http_learn_shm_t  *shm;

    ngx_memzero(st, sizeof(ngx_http_learn_ffi_status_t));

    shm = lm->shm;
    if (shm == NULL) {
        return;
    }

    st->ready = 1;
    st->step = (int64_t) shm->step;
    st->loss = shm->loss;
    st->loss_avg = shm->loss_avg;
    st->trains = shm->trains;
    st->predicts = shm->predicts;
    st->rejected = shm->rejects;
    st->rejected_steps = shm->rejected_steps;
    st->predict_rereads = shm->retries;
    st->batches = shm->batches;
    st->batched_predicts = shm->batched;
    st->device_steps = shm->device_steps;
    st->device_predicts = shm->device_predicts;
    st->set_evals = shm->set_evals;
    st->set_empty = shm->set_empty;
    st->checkpoint_step = (int64_t) shm->ckpt_step;
    st->checkpoint_writes = shm->ckpt_writes;
    st->checkpoint_failures = shm->ckpt_failures;
    st->checkpoint_time = (int64_t) shm->ckpt_time;
    st->predict_latency_us = shm->live_latency_us;
    st->checkpoint = (lm->ckpt_path.len != 0);
    st->keep = (int) lm->ckpt_keep;

    /* "cuda:N" only while the device works here, as learn_status says */
    *ngx_http_learn_device_name(st->device, lm) = '\0';

    n = 0;

    for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
        if (shm->versions[i].step == 0) {
            continue;
        }

        /* newest first, as learn_status lists them */
        for (j = n; j > 0 && st->versions[j - 1].step < shm->versions[i].step;
             j--)
        {
            st->versions[j] = st->versions[j - 1];
        }

        st->versions[j].step = shm->versions[i].step;
        st->versions[j].loss = shm->versions[i].loss;
        st->versions[j].time = (int64_t) shm->versions[i].time;
        st->versions[j].predicts = shm->versions[i].predicts;
        st->versions[j].predict_latency_us = shm->versions[i].latency_us;
        n++;
    }

    st->nversions = (int) n;
}


ngx_int_t
ngx_http_learn_ffi_error(u_char *buf, size_t *len, ngx_int_t rc,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + NGX_HTTP_LEARN_FFI_ERR_LEN, fmt, args);
    va_end(args);

    *len = p - buf;

    return rc;
}


/*
 * the zone exists, this worker has a workspace for Lua's calls, and a
 * follower has a version to serve (writes: it takes no train or import)
 */

ngx_int_t
ngx_http_learn_ffi_ready(ngx_http_learn_model_t *lm, ngx_uint_t writes,
    u_char *err, size_t *errlen)
{
    lt_err  e;

    if (lm->shm == NULL || lm->ws == NULL
        || (!writes && ngx_http_learn_store_waiting(lm)))
    {
        return ngx_http_learn_ffi_error(err, errlen, NGX_DECLINED,
                                        "model \"%V\" is not ready",
                                        &lm->name);
    }

    /* follow=: the store's versions are served, never changed here */
    if (writes && lm->follow) {
        return ngx_http_learn_ffi_error(err, errlen, NGX_DECLINED,
                                        "model \"%V\" follows %V: train it "
                                        "on the instance that publishes "
                                        "there", &lm->name, &lm->store_url);
    }

    if (lm->lua_ws == NULL) {
        lm->lua_ws = lt_workspace_new(&lm->model, lt_backend_cpu(), 1, &e);
        if (lm->lua_ws == NULL) {
            return ngx_http_learn_ffi_error(err, errlen, NGX_ERROR, "%s",
                                            e.msg);
        }
    }

    return NGX_OK;
}


/*
 * x (and y) as tensors over the caller's floats, checked as a request
 * body is: shapes against the model, finite numbers, and the activations
 * within learn_max_elements' default.
 */

ngx_int_t
ngx_http_learn_ffi_input(ngx_http_learn_model_t *lm, lt_tensor *x,
    const float *data, int ndim, const int64_t *shape, lt_tensor *y,
    const float *ydata, int yndim, const int64_t *yshape, u_char *err,
    size_t *errlen)
{
    int64_t  rows, at, full[LT_MAX_DIMS];
    lt_err   e;

    if (data == NULL || ndim < 1 || ndim > 2) {
        (void) ngx_atomic_fetch_add(&lm->shm->rejects, 1);
        return ngx_http_learn_ffi_error(err, errlen, NGX_DECLINED,
                                        "x must be a buffer of 1 or 2 "
                                        "dimensions");
    }

    if (y && (ydata == NULL || yndim < 0 || yndim > 2)) {
        (void) ngx_atomic_fetch_add(&lm->shm->rejects, 1);
        return ngx_http_learn_ffi_error(err, errlen, NGX_DECLINED,
                                        "y must be a buffer of at most 2 "
                                        "dimensions");
    }

    lt_tensor_view(x, (float *) data, ndim, shape);

    /* resty.learn passes rows of in_dim floats: a net whose sample has
     * more dims ([C, H, W]) reads them as [rows, C, H, W] */
    if (lm->model.in_shape.ndim > 1
        && shape[ndim - 1] == (int64_t) lm->model.in_dim)
    {
        lt_tensor_view(x, (float *) data,
                       lt_model_input_shape(&lm->model,
                                            ndim == 1 ? 1 : shape[0], full),
                       full);
    }

    if (y) {
        lt_tensor_view(y, (float *) ydata, yndim, yshape);
    }

    if ((y ? lt_model_check_target(&lm->model, x, y, &e)
           : lt_model_check_input(&lm->model, x, &e))
        != 0)
    {
        (void) ngx_atomic_fetch_add(&lm->shm->rejects, 1);
        return ngx_http_learn_ffi_error(err, errlen, NGX_DECLINED, "%s",
                                        e.msg);
    }

    rows = (x->ndim == 1) ? 1 : x->shape[0];

    if ((double) rows * (double) lm->model.max_width
        > (double) NGX_HTTP_LEARN_DEFAULT_MAX_ELEMENTS)
    {
        (void) ngx_atomic_fetch_add(&lm->shm->rejects, 1);
        return ngx_http_learn_ffi_error(err, errlen, NGX_DECLINED,
                                        "%L rows make activations of %.0f "
                                        "elements (%L x %uz), above %uz",
                                        rows, (double) rows
                                              * lm->model.max_width,
                                        rows, lm->model.max_width,
                                        (size_t)
                                        NGX_HTTP_LEARN_DEFAULT_MAX_ELEMENTS);
    }

    at = lt_tensor_nonfinite_at(x);
    if (at < 0 && y) {
        at = lt_tensor_nonfinite_at(y);

        if (at >= 0) {
            (void) ngx_atomic_fetch_add(&lm->shm->rejects, 1);
            return ngx_http_learn_ffi_error(err, errlen, NGX_DECLINED,
                                            "y has a non-finite value (NaN "
                                            "or Inf) at element %L", at);
        }
    }

    if (at >= 0) {
        (void) ngx_atomic_fetch_add(&lm->shm->rejects, 1);
        return ngx_http_learn_ffi_error(err, errlen, NGX_DECLINED,
                                        "x has a non-finite value (NaN or "
                                        "Inf) at element %L", at);
    }

    return NGX_OK;
}


/*
 * The train mutex on the event loop: a short spin, then NGX_AGAIN (the
 * Lua side sleeps and calls again), or, for a caller that cannot yield,
 * short sleeps for NGX_HTTP_LEARN_FFI_BLOCK_US at most (NGX_BUSY, and err
 * says so).  A dead owner is unlocked on the way, as the HTTP retry timer
 * does.
 */

static ngx_int_t
ngx_http_learn_ffi_lock(ngx_http_learn_model_t *lm, ngx_uint_t block,
    u_char *err, size_t *errlen)
{
    ngx_pid_t   pid;
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_LEARN_FFI_SPINS; i++) {
        if (ngx_shmtx_trylock(&lm->shm->mutex)) {
            return NGX_OK;
        }

        ngx_cpu_pause();
    }

    pid = ngx_http_learn_zone_lock_recover(lm->shm);
    if (pid) {
        ngx_http_learn_zone_lock_unlocked(lm, pid, ngx_cycle->log);
    }

    if (!block) {
        return ngx_shmtx_trylock(&lm->shm->mutex) ? NGX_OK : NGX_AGAIN;
    }

    for (i = 0;
         i < NGX_HTTP_LEARN_FFI_BLOCK_US / NGX_HTTP_LEARN_FFI_SLEEP_US;
         i++)
    {
        if (ngx_shmtx_trylock(&lm->shm->mutex)) {
            return NGX_OK;
        }

        (void) usleep(NGX_HTTP_LEARN_FFI_SLEEP_US);
    }

    if (ngx_shmtx_trylock(&lm->shm->mutex)) {
        return NGX_OK;
    }

    return ngx_http_learn_ffi_error(err, errlen, NGX_BUSY,
                                    "model \"%V\" is busy: another step "
                                    "held it for %d ms", &lm->name,
                                    NGX_HTTP_LEARN_FFI_BLOCK_US / 1000);
}


void
ngx_http_learn_ffi_predicted(ngx_http_learn_model_t *lm, int64_t version,
    uint64_t start_us)
{
    uint64_t                   us;
    ngx_http_learn_version_t  *kept;

    us = ngx_http_learn_now_us() - start_us;

    (void) ngx_atomic_fetch_add(&lm->shm->predicts, 1);
    ngx_http_learn_hist_observe(&lm->shm->predict_hist, us);

    if (version == 0) {
        (void) ngx_atomic_fetch_add(&lm->shm->live_latency_us, us);
        return;
    }

    kept = ngx_http_learn_versions_find(lm->shm, version);

    if (kept) {
        (void) ngx_atomic_fetch_add(&kept->predicts, 1);
        (void) ngx_atomic_fetch_add(&kept->latency_us, us);
    }
}


void
ngx_http_learn_ffi_trained(ngx_http_learn_model_t *lm, uint64_t start_us)
{
    (void) ngx_atomic_fetch_add(&lm->shm->trains, 1);
    ngx_http_learn_hist_observe(&lm->shm->train_hist,
                                ngx_http_learn_now_us() - start_us);
}


ngx_int_t
ngx_http_learn_ffi_train_reply(ngx_http_learn_model_t *lm, ngx_int_t rc,
    lt_err *e, u_char *err, size_t *errlen)
{
    if (rc == NGX_OK) {
        return NGX_OK;
    }

    if (rc == NGX_DECLINED) {
        (void) ngx_atomic_fetch_add(&lm->shm->rejects, 1);
        return ngx_http_learn_ffi_error(err, errlen, NGX_DECLINED,
                                        "%s: the step was not applied, the "
                                        "model is unchanged", e->msg);
    }

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "learn.train \"%V\": %s", &lm->name, e->msg);

    return ngx_http_learn_ffi_error(err, errlen, NGX_ERROR, "%s", e->msg);
}
