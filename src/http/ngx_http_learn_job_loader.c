
/*
 * A shuffled train job's mini-batches, gathered one batch ahead on a
 * thread of its own (as a data loader beside a training loop does): the
 * 64 rows of a batch lie anywhere in a file of tens of megabytes, and
 * gathering them from DRAM on the step's thread costs about a tenth of
 * a 784-256-10 step (bench/README.md, "Dataset jobs").  The loader owns
 * two slots: while the step reads batch k from one, it fills batch k + 1
 * into the other, and it fills batch k + 2 only once the step has asked
 * for batch k + 1.  It lives for one epoch (the job shuffles the order
 * between epochs) and is joined before the job goes on, whatever ends
 * the epoch, so it never outlives the job.  Where no thread can be
 * started the job gathers on its own thread, as before.
 */


#include "ngx_http_learn_job.h"

#include <pthread.h>


struct ngx_http_learn_job_loader_s {
    const lt_tensor               *x;
    const lt_tensor               *y;
    const int64_t                 *idx;
    int64_t                        batch;
    int64_t                        rows;
    float                         *bx[2];
    float                         *by[2];

    pthread_t                      tid;
    pthread_mutex_t                mutex;
    pthread_cond_t                 cond;
    int64_t                        ready;     /* batches gathered */
    int64_t                        allowed;   /* batches it may gather */
    ngx_uint_t                     quit;
    ngx_uint_t                     running;
};


static void *ngx_http_learn_job_loader_thread(void *data);


/* rows [from, from + n) of t, or those that idx names, into buf */

void
ngx_http_learn_job_rows(const lt_tensor *t, const int64_t *idx, int64_t from,
    int64_t n, float *buf, lt_tensor *view)
{
    int64_t  i, cols, shape[2];

    cols = (t->ndim == 2) ? t->shape[1] : 1;
    shape[0] = n;
    shape[1] = cols;

    if (idx == NULL) {
        lt_tensor_view(view, t->data + from * cols, t->ndim, shape);
        return;
    }

    for (i = 0; i < n; i++) {
        ngx_memcpy(buf + i * cols, t->data + idx[from + i] * cols,
                   cols * sizeof(float));
    }

    lt_tensor_view(view, buf, t->ndim, shape);
}


ngx_http_learn_job_loader_t *
ngx_http_learn_job_loader_new(const lt_tensor *x, const lt_tensor *y,
    int64_t batch)
{
    size_t                        xs, ys;
    ngx_http_learn_job_loader_t  *ld;

    xs = (size_t) batch * ((x->ndim == 2) ? x->shape[1] : 1);
    ys = (size_t) batch * ((y->ndim == 2) ? y->shape[1] : 1);

    ld = calloc(1, sizeof(ngx_http_learn_job_loader_t));
    if (ld == NULL) {
        return NULL;
    }

    ld->bx[0] = malloc(2 * (xs + ys) * sizeof(float));
    if (ld->bx[0] == NULL) {
        free(ld);
        return NULL;
    }

    ld->bx[1] = ld->bx[0] + xs;
    ld->by[0] = ld->bx[1] + xs;
    ld->by[1] = ld->by[0] + ys;

    ld->x = x;
    ld->y = y;
    ld->batch = batch;

    if (pthread_mutex_init(&ld->mutex, NULL) != 0) {
        free(ld->bx[0]);
        free(ld);
        return NULL;
    }

    if (pthread_cond_init(&ld->cond, NULL) != 0) {
        pthread_mutex_destroy(&ld->mutex);
        free(ld->bx[0]);
        free(ld);
        return NULL;
    }

    return ld;
}


/* one epoch of rows [0, rows) in idx's order; NGX_DECLINED: no thread */

ngx_int_t
ngx_http_learn_job_loader_start(ngx_http_learn_job_loader_t *ld,
    const int64_t *idx, int64_t rows)
{
    int  err;

    ld->idx = idx;
    ld->rows = rows;
    ld->ready = 0;
    ld->allowed = 2;
    ld->quit = 0;

    err = pthread_create(&ld->tid, NULL, ngx_http_learn_job_loader_thread, ld);
    if (err != 0) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, err,
                       "learn job: no loader thread");
        return NGX_DECLINED;
    }

    ld->running = 1;

    return NGX_OK;
}


/*
 * Batch k, that is rows [k * batch, ...) of the epoch: waits until the
 * loader has it, and lets it fill the slot of batch k - 1.
 */

void
ngx_http_learn_job_loader_get(ngx_http_learn_job_loader_t *ld, int64_t k,
    lt_tensor *vx, lt_tensor *vy)
{
    int64_t  n, cols, shape[2];

    pthread_mutex_lock(&ld->mutex);

    while (ld->ready <= k) {
        pthread_cond_wait(&ld->cond, &ld->mutex);
    }

    ld->allowed = k + 2;
    pthread_cond_broadcast(&ld->cond);

    pthread_mutex_unlock(&ld->mutex);

    n = ngx_min(ld->batch, ld->rows - k * ld->batch);

    cols = (ld->x->ndim == 2) ? ld->x->shape[1] : 1;
    shape[0] = n;
    shape[1] = cols;
    lt_tensor_view(vx, ld->bx[k & 1], ld->x->ndim, shape);

    cols = (ld->y->ndim == 2) ? ld->y->shape[1] : 1;
    shape[1] = cols;
    lt_tensor_view(vy, ld->by[k & 1], ld->y->ndim, shape);
}


void
ngx_http_learn_job_loader_stop(ngx_http_learn_job_loader_t *ld)
{
    if (!ld->running) {
        return;
    }

    pthread_mutex_lock(&ld->mutex);
    ld->quit = 1;
    pthread_cond_broadcast(&ld->cond);
    pthread_mutex_unlock(&ld->mutex);

    (void) pthread_join(ld->tid, NULL);

    ld->running = 0;
}


void
ngx_http_learn_job_loader_free(ngx_http_learn_job_loader_t *ld)
{
    if (ld == NULL) {
        return;
    }

    ngx_http_learn_job_loader_stop(ld);

    pthread_cond_destroy(&ld->cond);
    pthread_mutex_destroy(&ld->mutex);
    free(ld->bx[0]);
    free(ld);
}


static void *
ngx_http_learn_job_loader_thread(void *data)
{
    ngx_http_learn_job_loader_t *ld = data;

    int64_t    k, from, n;
    lt_tensor  v;

    for (k = 0; k * ld->batch < ld->rows; k++) {

        pthread_mutex_lock(&ld->mutex);

        while (ld->allowed <= k && !ld->quit) {
            pthread_cond_wait(&ld->cond, &ld->mutex);
        }

        pthread_mutex_unlock(&ld->mutex);

        if (ld->quit) {
            break;
        }

        from = k * ld->batch;
        n = ngx_min(ld->batch, ld->rows - from);

        ngx_http_learn_job_rows(ld->x, ld->idx, from, n, ld->bx[k & 1], &v);
        ngx_http_learn_job_rows(ld->y, ld->idx, from, n, ld->by[k & 1], &v);

        pthread_mutex_lock(&ld->mutex);
        ld->ready = k + 1;
        pthread_cond_broadcast(&ld->cond);
        pthread_mutex_unlock(&ld->mutex);
    }

    return NULL;
}
