
/*
 * resty.learn's work on nginx thread pools: a train step or a forward
 * pass above the caller's threshold, with copies of x and y, that the
 * Lua side polls while its coroutine sleeps.  The coroutine may die
 * meanwhile (a killed light thread, a request that ended): its GC
 * finalizer abandons the task, which its completion handler then frees;
 * a train abandoned before it took the mutex applies no step.  Every
 * task keeps the worker through a reload (ngx_http_learn_tasks_add).
 */


#include "ngx_http_learn_ffi.h"


typedef enum {
    NGX_HTTP_LEARN_FFI_RUNNING = 0,
    NGX_HTTP_LEARN_FFI_DONE,
    NGX_HTTP_LEARN_FFI_ABANDONED
} ngx_http_learn_ffi_state_e;


/* a train step or a forward pass on a pool thread, and its copy of x, y */
struct ngx_http_learn_ffi_task_s {
    ngx_http_learn_model_t        *model;
    lt_workspace                  *ws;
    ngx_uint_t                     train;
    ngx_http_learn_ffi_state_e     state;

    lt_tensor                      x;
    lt_tensor                      y;         /* train: the target */
    lt_tensor                      out;       /* predict: in ws, or */
    float                         *ybuf;      /* here after a GPU pass */

    float                          loss;
    int64_t                        step;
    uint64_t                       start_us;
    ngx_int_t                      rc;
    ngx_pid_t                      unlocked;
    lt_err                         err;

    /* set on the event loop, read by the pool thread before the step */
    volatile ngx_atomic_t          abandoned;
};


#if (NGX_THREADS)
static void ngx_http_learn_ffi_task_run(void *data, ngx_log_t *log);
static void ngx_http_learn_ffi_task_done(ngx_event_t *ev);
#endif
static void ngx_http_learn_ffi_task_free(ngx_http_learn_ffi_task_t *t);


/* a caller that will not use the pool (it cannot yield) still names one:
 * it must exist, as for one that does */

ngx_int_t
ngx_http_learn_ffi_pool(const u_char *pool, size_t len, u_char *err,
    size_t *errlen)
{
#if (NGX_THREADS)
    ngx_str_t  name;

    name.data = (u_char *) pool;
    name.len = len;

    if (ngx_thread_pool_get((ngx_cycle_t *) ngx_cycle, &name) != NULL) {
        return NGX_OK;
    }

    return ngx_http_learn_ffi_error(err, errlen, NGX_ABORT,
                                    "no thread_pool \"%V\"", &name);
#else
    return NGX_OK;
#endif
}


/*
 * A step or a forward pass as a task on thread pool "pool" when its cost
 * (multiply-adds) is at least threshold: x and y are copied, the caller
 * polls ngx_http_learn_ffi_task_poll() and ends with _task_finish() (or,
 * when its coroutine is gone, _task_abandon(), from a finalizer).  NULL
 * with *rc NGX_DECLINED: run it inline instead (it is cheap); NGX_ABORT:
 * refused (bad input, no such pool), err says why; NGX_ERROR.
 */

ngx_http_learn_ffi_task_t *
ngx_http_learn_ffi_task_post(ngx_http_learn_model_t *lm, const u_char *pool,
    size_t len, double threshold, int train, const float *xdata, int xndim,
    const int64_t *xshape, const float *ydata, int yndim,
    const int64_t *yshape, ngx_int_t *rc, u_char *err, size_t *errlen)
{
#if (NGX_THREADS)
    int64_t                     rows;
    size_t                      xn, yn;
    double                      cost;
    ngx_str_t                   name;
    lt_tensor                   x, y;
    ngx_thread_task_t          *task;
    ngx_thread_pool_t          *tp;
    ngx_http_learn_ffi_task_t  *t;

    *rc = ngx_http_learn_ffi_ready(lm, train != 0, err, errlen);

    if (*rc == NGX_OK) {
        *rc = ngx_http_learn_ffi_input(lm, &x, xdata, xndim, xshape,
                                       train ? &y : NULL, ydata, yndim,
                                       yshape, err, errlen);
    }

    if (*rc != NGX_OK) {
        *rc = (*rc == NGX_DECLINED) ? NGX_ABORT : *rc;
        return NULL;
    }

    rows = (x.ndim == 1) ? 1 : x.shape[0];
    cost = train ? lt_model_step_flops(&lm->model, (int) rows)
                 : lt_model_forward_flops(&lm->model, (int) rows);

    *rc = NGX_DECLINED;

    if (cost < threshold) {
        return NULL;
    }

    name.data = (u_char *) pool;
    name.len = len;

    tp = ngx_thread_pool_get((ngx_cycle_t *) ngx_cycle, &name);
    if (tp == NULL) {
        *rc = ngx_http_learn_ffi_error(err, errlen, NGX_ABORT,
                                       "no thread_pool \"%V\"", &name);
        return NULL;
    }

    xn = (size_t) lt_tensor_numel(&x);
    yn = train ? (size_t) lt_tensor_numel(&y)
               : (size_t) rows * lm->model.out_dim;

    /* not from a request's pool: the task may outlive the caller */
    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_learn_ffi_task_t)
                      + (xn + yn) * sizeof(float), ngx_cycle->log);
    if (task == NULL) {
        *rc = ngx_http_learn_ffi_error(err, errlen, NGX_ERROR,
                                       "no memory for a task");
        return NULL;
    }

    t = (ngx_http_learn_ffi_task_t *) (task + 1);
    task->ctx = t;

    t->model = lm;
    t->train = (train != 0);
    t->state = NGX_HTTP_LEARN_FFI_RUNNING;
    t->x = x;
    t->x.data = (float *) (t + 1);
    ngx_memcpy(t->x.data, xdata, xn * sizeof(float));

    if (train) {
        t->y = y;
        t->y.data = t->x.data + xn;
        ngx_memcpy(t->y.data, ydata, yn * sizeof(float));

    } else {
        t->ybuf = t->x.data + xn;
    }

    t->ws = ngx_http_learn_ws_get(lm, &t->err);
    if (t->ws == NULL) {
        ngx_free(task);
        *rc = ngx_http_learn_ffi_error(err, errlen, NGX_ERROR,
                                       "no workspace for a pool thread");
        return NULL;
    }

    t->start_us = ngx_http_learn_now_us();

    task->handler = ngx_http_learn_ffi_task_run;
    task->event.handler = ngx_http_learn_ffi_task_done;
    task->event.data = task;
    task->event.log = ngx_cycle->log;

    if (ngx_thread_task_post(tp, task) != NGX_OK) {
        ngx_http_learn_ws_put(lm, t->ws);
        ngx_free(task);
        *rc = ngx_http_learn_ffi_error(err, errlen, NGX_ERROR,
                                       "thread pool \"%V\" refused the task",
                                       &name);
        return NULL;
    }

    /* the worker stays, on reload, until the task is over */
    ngx_http_learn_tasks_add(1);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "learn.%s \"%V\" on the thread pool",
                   t->train ? "train" : "predict", &lm->name);

    *rc = NGX_AGAIN;

    return t;
#else
    *rc = NGX_DECLINED;

    return NULL;
#endif
}


ngx_int_t
ngx_http_learn_ffi_task_poll(ngx_http_learn_ffi_task_t *t)
{
    return t->state == NGX_HTTP_LEARN_FFI_DONE ? NGX_OK : NGX_AGAIN;
}


/*
 * The results of a task that is done, which is freed: a predict's y
 * (rows x out_dim floats), a train's loss and step; return codes as for
 * the inline calls.
 */

ngx_int_t
ngx_http_learn_ffi_task_finish(ngx_http_learn_ffi_task_t *t, float *y,
    float *loss, int64_t *step, u_char *err, size_t *errlen)
{
    ngx_int_t                rc;
    ngx_http_learn_model_t  *lm;

    lm = t->model;
    rc = t->rc;

    if (t->train) {
        *loss = t->loss;
        *step = t->step;

        rc = (rc == NGX_ABORT) ? NGX_ERROR
                               : ngx_http_learn_ffi_train_reply(lm, rc,
                                                                &t->err,
                                                                err, errlen);

    } else if (rc == NGX_OK) {
        ngx_memcpy(y, t->out.data, lt_tensor_numel(&t->out) * sizeof(float));
        *step = t->step;
        ngx_http_learn_ffi_predicted(lm, 0, t->start_us);

    } else {
        rc = ngx_http_learn_ffi_error(err, errlen, NGX_ERROR, "%s",
                                      t->err.msg);
    }

    ngx_http_learn_ffi_task_free(t);

    return rc;
}


/* the caller is gone: free the task now, or when it is done */

void
ngx_http_learn_ffi_task_abandon(ngx_http_learn_ffi_task_t *t)
{
    if (t->state == NGX_HTTP_LEARN_FFI_DONE) {
        ngx_http_learn_ffi_task_free(t);
        return;
    }

    t->state = NGX_HTTP_LEARN_FFI_ABANDONED;
    t->abandoned = 1;
}


#if (NGX_THREADS)

/* on a pool thread: no pools, no logging */

static void
ngx_http_learn_ffi_task_run(void *data, ngx_log_t *log)
{
    ngx_http_learn_ffi_task_t  *t = data;

    ngx_http_learn_model_t  *lm;

    lm = t->model;

    if (!t->train) {
        if (ngx_http_learn_device_forward(lm, &t->x, t->ybuf, &t->out, 1)
            == NGX_OK)
        {
            t->step = (int64_t) lm->shm->step;
            t->rc = NGX_OK;
            return;
        }

        t->rc = ngx_http_learn_predict_live(lm, t->ws, &t->x, &t->out,
                                            &t->step, &t->err);
        return;
    }

    t->unlocked = ngx_http_learn_zone_lock_wait(lm->shm);

    /* its caller died while it waited: no step nobody would hear of */
    ngx_memory_barrier();

    t->rc = t->abandoned ? NGX_ABORT
                         : ngx_http_learn_train_step(lm, t->ws, &t->x, &t->y,
                                                     &t->loss, &t->step, 1,
                                                     &t->err);

    ngx_shmtx_unlock(&lm->shm->mutex);
}


static void
ngx_http_learn_ffi_task_done(ngx_event_t *ev)
{
    ngx_thread_task_t  *task = ev->data;

    ngx_http_learn_ffi_task_t  *t;

    t = task->ctx;

    ngx_http_learn_tasks_add(-1);

    if (t->unlocked) {
        ngx_http_learn_zone_lock_unlocked(t->model, t->unlocked, ev->log);
        t->unlocked = 0;
    }

    /* an applied step counts, whether its caller still waits or not */
    if (t->train && t->rc == NGX_OK) {
        ngx_http_learn_ffi_trained(t->model, t->start_us);
    }

    if (t->state == NGX_HTTP_LEARN_FFI_ABANDONED) {
        ngx_http_learn_ffi_task_free(t);
        return;
    }

    t->state = NGX_HTTP_LEARN_FFI_DONE;
}

#endif


static void
ngx_http_learn_ffi_task_free(ngx_http_learn_ffi_task_t *t)
{
    ngx_http_learn_ws_put(t->model, t->ws);

    /* the task header lies just before t, in the same allocation */
    ngx_free((ngx_thread_task_t *) t - 1);
}
