
/*
 * A dataset job on nginx's thread pool: read the files and check them
 * against the model (ngx_http_learn_job_load.c), then for a train job
 * run epochs of mini-batches through the step learn_train runs, under
 * the same zone mutex, into the same double buffer, so live predicts see
 * the job's progress and learn_train requests interleave with it, and
 * end by writing a checkpoint (a kept version with checkpoint_keep).  A
 * predict job runs the forward pass on the published parameters and
 * writes an .npy.
 *
 * On the CPU the job holds the mutex for a run of steps (at most 16, or
 * as many as start within 4 ms) and publishes the run once: the first
 * step writes the next buffer from the published one, the others update
 * it in place, and one finite check covers them all.  Stepping and
 * checking each batch out of place costs a 784-256-10 step at batch 64
 * about 20 us of its 280 (bench/README.md, "Dataset jobs"); a predict
 * sees the job at most 4 ms late.  A run that fails is stepped again one
 * checked step at a time, so the job ends at the batch that failed and
 * the model keeps the step before it.  A cancel (DELETE) or nginx
 * stopping is seen before the next batch: the run so far is published
 * and the model keeps the last whole step.  A shuffled job's batches are
 * gathered one ahead on a loader thread (ngx_http_learn_job_loader.c).
 * The thread allocates its data with malloc (sizes come from the files)
 * and frees it before it returns; the job itself, its workspace and its
 * checkpoint job are allocated on the event loop.
 *
 * While a job is queued or running it counts as a task of this worker
 * (ngx_http_learn_tasks_add()), so a worker told to exit by a reload
 * stays until its jobs are done: the old worker finishes them, and the
 * shared table shows their end to the new workers.
 */


#include "ngx_http_learn_job.h"
#include "lt_npy.h"
#include "lt_rand.h"

#include <math.h>


#define NGX_HTTP_LEARN_JOB_POLL       20     /* ms between queue checks */

/* a run of steps published once: at most so many, started within so long */
#define NGX_HTTP_LEARN_JOB_RUN_STEPS  16
#define NGX_HTTP_LEARN_JOB_RUN_US     4000


static void ngx_http_learn_job_thread(void *data, ngx_log_t *log);
static void ngx_http_learn_job_done(ngx_event_t *ev);
static void ngx_http_learn_job_finish(ngx_http_learn_job_t *job);
static void ngx_http_learn_job_poll(ngx_event_t *ev);


static ngx_queue_t       ngx_http_learn_job_queued;
static ngx_uint_t        ngx_http_learn_job_queue_init;
static ngx_event_t       ngx_http_learn_job_timer;
static ngx_connection_t  ngx_http_learn_job_dumb;


/* ---- on the thread ---------------------------------------------------- */

/* the validation rows' loss and accuracy, with the published parameters */

static int
ngx_http_learn_job_validate(ngx_http_learn_job_t *job, int64_t first,
    int64_t n, float *loss, float *acc)
{
    double       sum;
    int64_t      i, b, correct, right, step;
    lt_tensor    vx, vy, out;

    sum = 0.0;
    right = 0;

    for (i = 0; i < n; i += b) {
        b = ngx_min(job->batch, n - i);

        ngx_http_learn_job_rows(&job->x, NULL, first + i, b, NULL, &vx);
        ngx_http_learn_job_rows(&job->y, NULL, first + i, b, NULL, &vy);

        if (ngx_http_learn_predict_live(job->lm, job->ws, &vx, &out, &step,
                                        &job->err)
            != NGX_OK
            || lt_eval_batch(&job->lm->model, &out, &vy, &sum, &correct,
                             &job->err)
               != 0)
        {
            return -1;
        }

        right += correct;
    }

    *loss = (float) (sum / (double) n);
    *acc = (job->lm->model.spec.loss == LT_LOSS_CE)
           ? (float) ((double) right / (double) n) : NAN;

    return 0;
}


static ngx_int_t
ngx_http_learn_job_stop(ngx_http_learn_job_t *job)
{
    if (job->e->cancel) {
        return NGX_ABORT;
    }

    /* nginx -s stop: the worker exits after the pool's threads end */
    if (ngx_terminate) {
        return NGX_DONE;
    }

    return NGX_OK;
}


/* a train job's pass over its rows, as each run of steps needs it */

typedef struct {
    ngx_http_learn_job_t          *job;
    const int64_t                 *idx;       /* the order; NULL: in order */
    float                         *bx;        /* a batch gathered here, */
    float                         *by;
    ngx_http_learn_job_loader_t   *loader;    /* or there; NULL: none */
    int64_t                        epoch;
    int64_t                        rows;      /* the rows trained on */
    double                         sum;       /* loss x rows, this epoch */
} ngx_http_learn_job_pass_t;


/* the batch of rows [i, i + b): a fresh one from the loader if it runs */

static void
ngx_http_learn_job_batch(ngx_http_learn_job_pass_t *ps, int64_t i, int64_t b,
    ngx_uint_t fresh, lt_tensor *vx, lt_tensor *vy)
{
    if (fresh && ps->loader) {
        ngx_http_learn_job_loader_get(ps->loader, i / ps->job->batch, vx, vy);
        return;
    }

    ngx_http_learn_job_rows(&ps->job->x, ps->idx, i, b, ps->bx, vx);
    ngx_http_learn_job_rows(&ps->job->y, ps->idx, i, b, ps->by, vy);
}


/*
 * The mini-batches from row "from" of the pass, the caller holding the
 * mutex: on the CPU, a run of them published once (until the run's time
 * or step limit, the epoch's end or a cancel), which spares every step
 * but the first the copy into the next buffer and every step but the
 * last the finite check; on a GPU, one step.  A run that fails is
 * stepped again one checked step at a time from where it began, so the
 * job ends at the batch that failed with the model of the step before
 * it, as with one step per batch.  *rows: the rows stepped.
 */

static ngx_int_t
ngx_http_learn_job_steps(ngx_http_learn_job_pass_t *ps, int64_t from,
    int64_t *rows)
{
    float                        loss[NGX_HTTP_LEARN_JOB_RUN_STEPS];
    double                       run_sum;
    int64_t                      i, b, step;
    lt_err                       err;
    uint64_t                     t0;
    lt_tensor                    vx, vy;
    ngx_int_t                    rc;
    ngx_uint_t                   k, n, fresh;
    ngx_http_learn_job_t        *job;
    ngx_http_learn_job_entry_t  *e;

    job = ps->job;
    e = job->e;
    n = 1;
    fresh = 1;

    if (!ngx_http_learn_device_usable(job->lm)) {
        t0 = ngx_http_learn_now_us();
        run_sum = 0.0;
        rc = NGX_OK;

        for (k = 0, i = from, b = 0;
             k < NGX_HTTP_LEARN_JOB_RUN_STEPS && i < ps->rows;
             k++, i += b)
        {
            if (k > 0
                && (ngx_http_learn_job_stop(job) != NGX_OK
                    || ngx_http_learn_now_us() - t0
                       >= NGX_HTTP_LEARN_JOB_RUN_US))
            {
                break;
            }

            b = ngx_min(job->batch, ps->rows - i);

            ngx_http_learn_job_batch(ps, i, b, 1, &vx, &vy);

            rc = ngx_http_learn_train_run_step(job->lm, job->ws, &vx, &vy, k,
                                               &loss[k], &err);
            if (rc != NGX_OK) {
                k++;
                break;
            }

            run_sum += (double) loss[k] * (double) b;
        }

        if (rc == NGX_OK
            && ngx_http_learn_train_run_publish(job->lm, loss, k, &step, &err)
               == NGX_OK)
        {
            ps->sum += run_sum;
            *rows = i - from;
            e->samples += *rows;
            e->steps += k;
            job->step = step;
            return NGX_OK;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "learn job: a run of %ui steps failed (%s), "
                       "stepping it again one by one", k, err.msg);

        /* the failed step's batch too, if it was one */
        n = k;
        fresh = 0;
    }

    for (k = 0, i = from; k < n; k++, i += b) {
        b = ngx_min(job->batch, ps->rows - i);

        ngx_http_learn_job_batch(ps, i, b, fresh, &vx, &vy);

        rc = ngx_http_learn_train_step(job->lm, job->ws, &vx, &vy, &loss[0],
                                       &step, 1, &err);
        if (rc != NGX_OK) {
            lt_error(&job->err, "epoch %lld, rows %lld to %lld: %s%s",
                     (long long) ps->epoch, (long long) i,
                     (long long) (i + b - 1), err.msg,
                     rc == NGX_DECLINED ? " (the step was not applied; the "
                                          "model keeps the last one)" : "");
            return NGX_ERROR;
        }

        ps->sum += (double) loss[0] * (double) b;
        e->samples += b;
        e->steps++;
        job->step = step;
    }

    *rows = i - from;

    return NGX_OK;
}


static ngx_int_t
ngx_http_learn_job_train(ngx_http_learn_job_t *job)
{
    float                        vloss, vacc;
    int64_t                      n, nval, ntrain, ep, i, j, rows, *idx;
    int64_t                      ycols, done;
    uint64_t                     rng, t0, tmp;
    ngx_int_t                    rc;
    ngx_pid_t                    pid;
    ngx_http_learn_shm_t        *shm;
    ngx_http_learn_job_entry_t  *e;
    ngx_http_learn_job_epoch_t  *h;
    ngx_http_learn_job_loader_t *ld;
    ngx_http_learn_job_pass_t    ps;

    e = job->e;
    shm = job->lm->shm;

    n = job->x.shape[0];
    nval = (int64_t) ((double) n * job->validation);
    ntrain = n - nval;

    if (ntrain < 1) {
        lt_error(&job->err, "validation %.3f of %lld rows leaves none to "
                 "train on", job->validation, (long long) n);
        return NGX_ERROR;
    }

    e->rows = ntrain;
    e->val_rows = nval;

    job->batch = ngx_min(job->batch, ntrain);
    e->batch_size = job->batch;

    ycols = (job->y.ndim == 2) ? job->y.shape[1] : 1;

    ngx_memzero(&ps, sizeof(ngx_http_learn_job_pass_t));
    ps.job = job;
    ps.rows = ntrain;

    idx = NULL;
    ld = NULL;

    if (job->shuffle) {
        idx = malloc(ntrain * sizeof(int64_t));
        ps.bx = malloc(job->batch * job->x.shape[1] * sizeof(float));
        ps.by = malloc(job->batch * ycols * sizeof(float));
        ps.idx = idx;

        if (idx == NULL || ps.bx == NULL || ps.by == NULL) {
            lt_error(&job->err, "out of memory for the mini-batches");
            rc = NGX_ERROR;
            goto done;
        }

        for (i = 0; i < ntrain; i++) {
            idx[i] = i;
        }
    }

    /* NULL: the job reads its batches itself */
    ld = job->shuffle ? ngx_http_learn_job_loader_new(&job->x, &job->y,
                                                   job->batch)
                       : NULL;

    rng = job->seed;
    t0 = ngx_http_learn_now_us();
    rc = NGX_OK;

    for (ep = 1; ep <= job->epochs; ep++) {

        if (idx) {
            /* Fisher-Yates, from the job's seed: the same order again */
            for (i = ntrain - 1; i > 0; i--) {
                j = (int64_t) (lt_splitmix64(&rng) % (uint64_t) (i + 1));
                tmp = (uint64_t) idx[i];
                idx[i] = idx[j];
                idx[j] = (int64_t) tmp;
            }
        }

        ps.epoch = ep;
        ps.sum = 0.0;
        ps.loader = (ld && ngx_http_learn_job_loader_start(ld, idx, ntrain)
                           == NGX_OK)
                    ? ld : NULL;
        done = 0;

        for (i = 0; i < ntrain; i += rows) {
            rc = ngx_http_learn_job_stop(job);
            if (rc != NGX_OK) {
                goto done;
            }

            pid = ngx_http_learn_zone_lock_wait(shm);
            if (pid) {
                job->unlocked = pid;
            }

            rc = ngx_http_learn_job_steps(&ps, i, &rows);

            ngx_shmtx_unlock(&shm->mutex);

            if (rc != NGX_OK) {
                goto done;
            }

            done += rows;
            e->loss = (float) (ps.sum / (double) done);
        }

        if (ld) {
            ngx_http_learn_job_loader_stop(ld);
        }

        vloss = NAN;
        vacc = NAN;

        if (nval > 0
            && ngx_http_learn_job_validate(job, ntrain, nval, &vloss, &vacc)
               != 0)
        {
            rc = NGX_ERROR;
            goto done;
        }

        h = &e->hist[e->nhist % NGX_HTTP_LEARN_JOB_HISTORY];
        h->epoch = ep;
        h->loss = (float) (ps.sum / (double) ntrain);
        h->val_loss = vloss;
        h->val_accuracy = vacc;
        h->seconds = (float) ((ngx_http_learn_now_us() - t0) / 1e6);

        e->loss = h->loss;
        e->val_loss = vloss;
        e->val_accuracy = vacc;
        e->samples_per_s = (float) ((double) e->samples
                                    / ngx_max(h->seconds, 1e-6f));

        ngx_memory_barrier();
        e->nhist++;
        e->epoch = ep;
    }

    /*
     * a reload that changed the model's layers retired this zone: its
     * checkpoint would overwrite the new layout's file (an old worker
     * finishing its job writes none, as its interval writes stop)
     */
    if (job->ckpt && !shm->retired) {
        ngx_http_learn_checkpoint_job_write(job->ckpt);
        job->ckpt_written = 1;
    }

    job->step = (int64_t) shm->step;

done:

    ngx_http_learn_job_loader_free(ld);
    free(idx);
    free(ps.bx);
    free(ps.by);

    return rc;
}


static ngx_int_t
ngx_http_learn_job_predict(ngx_http_learn_job_t *job)
{
    int              fd;
    char             hdr[256];
    size_t           hlen, off, bytes;
    ssize_t          w;
    int64_t          n, i, b, k, step, shape[2];
    lt_err           err;
    lt_tensor        vx, out;
    ngx_int_t        rc;
    const u_char    *p;

    n = job->x.shape[0];
    k = job->lm->model.out_dim;

    if (job->e == NULL && n > NGX_HTTP_LEARN_JOB_SYNC_ROWS) {
        lt_error(&job->err, "%lld rows: a synchronous predict takes at most "
                 "%d (post it without sync=1, as a job)", (long long) n,
                 NGX_HTTP_LEARN_JOB_SYNC_ROWS);
        return NGX_DECLINED;
    }

    shape[0] = n;
    shape[1] = k;

    if (lt_tensor_alloc(&job->out, 2, shape, &job->err) != 0) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i += b) {
        if (job->e) {
            rc = ngx_http_learn_job_stop(job);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        b = ngx_min(job->batch, n - i);
        ngx_http_learn_job_rows(&job->x, NULL, i, b, NULL, &vx);

        if (ngx_http_learn_predict_live(job->lm, job->ws, &vx, &out, &step,
                                        &job->err)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ngx_memcpy(job->out.data + i * k, out.data, b * k * sizeof(float));

        if (job->e) {
            job->e->samples += b;
        }

        job->step = step;
    }

    if (job->e == NULL) {
        return NGX_OK;
    }

    hlen = lt_npy_header(hdr, sizeof(hdr), 2, shape);

    fd = ngx_http_learn_data_root_open(job->root, job->output,
                                       O_WRONLY | O_CREAT | O_EXCL, &err);
    if (fd == -1) {
        ngx_http_learn_job_fail(job, job->output, &err);
        return NGX_ERROR;
    }

    rc = NGX_OK;
    bytes = (size_t) (n * k) * sizeof(float);

    for (off = 0; off < hlen + bytes; off += (size_t) w) {
        p = (off < hlen) ? (u_char *) hdr + off
                         : (u_char *) job->out.data + (off - hlen);

        w = write(fd, p, (off < hlen) ? hlen - off : hlen + bytes - off);

        if (w <= 0) {
            lt_error(&job->err, "%s: write(): %s", job->output,
                     w == 0 ? "no progress" : strerror(errno));
            rc = NGX_ERROR;
            break;
        }
    }

    if (close(fd) != 0 && rc == NGX_OK) {
        lt_error(&job->err, "%s: close(): %s", job->output, strerror(errno));
        rc = NGX_ERROR;
    }

    if (rc != NGX_OK) {
        /* beneath the root, as it was created: the name resolved there */
        fd = ngx_http_learn_data_root_open(job->root, ".", O_PATH, &err);
        if (fd != -1) {
            (void) unlinkat(fd, job->output, 0);
            close(fd);
        }
    }

    return rc;
}


static void
ngx_http_learn_job_thread(void *data, ngx_log_t *log)
{
    ngx_http_learn_job_t  *job = data;

    ngx_http_learn_job_mem_t    *mem;

    mem = NULL;

    if (ngx_http_learn_job_load(job, &mem) != 0) {
        job->rc = NGX_ERROR;

    } else if (job->kind == NGX_HTTP_LEARN_JOB_KIND_TRAIN) {
        job->rc = ngx_http_learn_job_train(job);

    } else {
        job->rc = ngx_http_learn_job_predict(job);
    }

    /* the data goes now: a sync predict keeps only its outputs */
    if (job->x.owned) {
        lt_tensor_free(&job->x);
    }

    if (job->y.owned) {
        lt_tensor_free(&job->y);
    }

    ngx_memzero(&job->x, sizeof(lt_tensor));
    ngx_memzero(&job->y, sizeof(lt_tensor));
    ngx_http_learn_job_mem_free(mem);

    /* nginx stops: no completion event will run, say it here */
    if (job->rc == NGX_DONE && job->e) {
        ngx_http_learn_job_table_lock();
        ngx_snprintf(job->e->error, NGX_HTTP_LEARN_JOB_TEXT - 1,
                     "interrupted: nginx was stopped at epoch %L%Z",
                     job->e->epoch);
        job->e->finished = ngx_time();
        ngx_memory_barrier();
        job->e->state = NGX_HTTP_LEARN_JOB_ERROR;
        ngx_http_learn_job_table_changed(job->e);
        ngx_http_learn_job_table_unlock();
    }
}


/* ---- on the event loop ------------------------------------------------ */

/*
 * A queued job whose turn has come (or a predict job): running, on the
 * pool.  NGX_ERROR: it could not start (its entry says why).
 */

ngx_int_t
ngx_http_learn_job_start(ngx_http_learn_job_t *job)
{
    lt_err  err;

    if (ngx_http_learn_job_table_set(job->e, job->id,
                                     NGX_HTTP_LEARN_JOB_QUEUED,
                                     NGX_HTTP_LEARN_JOB_RUNNING)
        != NGX_OK)
    {
        /* cancelled while it waited */
        ngx_http_learn_job_free(job);
        return NGX_DECLINED;
    }

    /* what a job that fails before its first step reports */
    job->step = (int64_t) job->lm->shm->step;
    job->e->step = job->step;

    job->ws = ngx_http_learn_ws_get(job->lm, &err);
    if (job->ws == NULL) {
        ngx_cpystrn(job->e->error, (u_char *) err.msg,
                    NGX_HTTP_LEARN_JOB_TEXT);
        goto failed;
    }

    if (job->kind == NGX_HTTP_LEARN_JOB_KIND_TRAIN
        && job->lm->ckpt_path.len && !job->lm->follow)
    {
        job->ckpt = ngx_http_learn_checkpoint_job_new(job->lm);
        if (job->ckpt == NULL) {
            ngx_cpystrn(job->e->error, (u_char *) "out of memory",
                        NGX_HTTP_LEARN_JOB_TEXT);
            goto failed;
        }
    }

#if (NGX_THREADS)
    job->task.ctx = job;
    job->task.handler = ngx_http_learn_job_thread;
    job->task.event.handler = ngx_http_learn_job_done;
    job->task.event.data = job;
    job->task.event.log = job->log;

    if (ngx_thread_task_post(job->pool, &job->task) == NGX_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, job->log, 0,
                       "learn job %016uxL: running", job->id);
        return NGX_OK;
    }
#endif

    ngx_cpystrn(job->e->error, (u_char *) "the thread pool refused the job",
                NGX_HTTP_LEARN_JOB_TEXT);

failed:

    (void) ngx_http_learn_job_table_set(job->e, job->id,
                                        NGX_HTTP_LEARN_JOB_RUNNING,
                                        NGX_HTTP_LEARN_JOB_ERROR);
    ngx_http_learn_job_free(job);

    return NGX_ERROR;
}


static void
ngx_http_learn_job_done(ngx_event_t *ev)
{
    ngx_http_learn_job_t  *job = ev->data;

    if (job->unlocked) {
        ngx_http_learn_zone_lock_unlocked(job->lm, job->unlocked, ev->log);
        job->unlocked = 0;
    }

    ngx_http_learn_ws_put(job->lm, job->ws);
    job->ws = NULL;

    if (job->request) {
        ngx_http_learn_task_done(job->request);
        ngx_http_learn_finalize(job->request,
                                job->reply(job->request, job));
        return;
    }

    ngx_http_learn_job_finish(job);
}


/* the end of an asynchronous job: its entry says how it went */

static void
ngx_http_learn_job_finish(ngx_http_learn_job_t *job)
{
    u_char                       msg[LT_ERR_LEN];
    int64_t                      version;
    ngx_uint_t                   to;
    ngx_http_learn_job_entry_t  *e;

    e = job->e;
    version = 0;

    if (job->ckpt) {
        if (job->rc == NGX_OK && job->ckpt_written) {
            version = ngx_http_learn_checkpoint_job_end(job->lm, job->ckpt,
                                                        job->log, msg,
                                                        sizeof(msg));
            if (version < 0) {
                job->rc = NGX_ERROR;
                lt_error(&job->err, "trained to step %lld, but the "
                         "checkpoint was not written: %s",
                         (long long) job->step, msg);
                version = 0;
            }

        } else {
            ngx_http_learn_checkpoint_job_free(job->ckpt);
        }

        job->ckpt = NULL;
    }

    switch (job->rc) {

    case NGX_OK:
        to = NGX_HTTP_LEARN_JOB_DONE;
        break;

    case NGX_ABORT:
        to = NGX_HTTP_LEARN_JOB_CANCELLED;
        break;

    case NGX_DONE:
        ngx_http_learn_job_free(job);   /* the thread said so already */
        return;

    default:
        to = NGX_HTTP_LEARN_JOB_ERROR;
        break;
    }

    if (e->id == job->id) {
        e->step = job->step;
        e->version = version;

        if (to == NGX_HTTP_LEARN_JOB_ERROR) {
            ngx_cpystrn(e->error, (u_char *) job->err.msg,
                        NGX_HTTP_LEARN_JOB_TEXT);
            ngx_log_error(NGX_LOG_INFO, job->log, 0,
                          "learn job %016uxL (%s): %s", job->id, e->model,
                          job->err.msg);
        }

        (void) ngx_http_learn_job_table_set(e, job->id,
                                            NGX_HTTP_LEARN_JOB_RUNNING, to);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, job->log, 0,
                   "learn job %016uxL: ended, %ui", job->id, to);

    ngx_http_learn_job_free(job);
}


void
ngx_http_learn_job_free(ngx_http_learn_job_t *job)
{
    if (job->x.owned) {
        lt_tensor_free(&job->x);
    }

    if (job->y.owned) {
        lt_tensor_free(&job->y);
    }

    if (job->out.owned) {
        lt_tensor_free(&job->out);
    }

    if (job->ws) {
        ngx_http_learn_ws_put(job->lm, job->ws);
    }

    if (job->ckpt) {
        ngx_http_learn_checkpoint_job_free(job->ckpt);
    }

    if (job->request == NULL) {
        ngx_http_learn_tasks_add(-1);
    }

    ngx_free(job);
}


/* ---- the queue: train jobs that wait for their model ------------------ */

void
ngx_http_learn_job_queue(ngx_http_learn_job_t *job)
{
    if (!ngx_http_learn_job_queue_init) {
        ngx_queue_init(&ngx_http_learn_job_queued);
        ngx_http_learn_job_queue_init = 1;
    }

    if (ngx_http_learn_job_table_may_start(job->e)) {
        (void) ngx_http_learn_job_start(job);
        return;
    }

    ngx_queue_insert_tail(&ngx_http_learn_job_queued, &job->queue);

    if (!ngx_http_learn_job_timer.timer_set) {
        ngx_http_learn_job_dumb.fd = (ngx_socket_t) -1;
        ngx_http_learn_job_timer.handler = ngx_http_learn_job_poll;
        ngx_http_learn_job_timer.data = &ngx_http_learn_job_dumb;
        ngx_http_learn_job_timer.log = ngx_cycle->log;
        ngx_add_timer(&ngx_http_learn_job_timer, NGX_HTTP_LEARN_JOB_POLL);
    }
}


static void
ngx_http_learn_job_poll(ngx_event_t *ev)
{
    ngx_queue_t           *q, *next;
    ngx_http_learn_job_t  *job;

    for (q = ngx_queue_head(&ngx_http_learn_job_queued);
         q != ngx_queue_sentinel(&ngx_http_learn_job_queued);
         q = next)
    {
        next = ngx_queue_next(q);
        job = ngx_queue_data(q, ngx_http_learn_job_t, queue);

        if (job->e->id != job->id
            || job->e->state != NGX_HTTP_LEARN_JOB_QUEUED)
        {
            /* cancelled while queued */
            ngx_queue_remove(q);
            ngx_http_learn_job_free(job);
            continue;
        }

        if (ngx_http_learn_job_table_may_start(job->e)) {
            ngx_queue_remove(q);
            (void) ngx_http_learn_job_start(job);
        }
    }

    if (!ngx_queue_empty(&ngx_http_learn_job_queued)) {
        ngx_add_timer(ev, NGX_HTTP_LEARN_JOB_POLL);
    }
}


/* a sync predict: the request waits for the task, which it keeps */

ngx_int_t
ngx_http_learn_job_sync(ngx_http_request_t *r, ngx_http_learn_job_t *job)
{
    lt_err  err;

    job->ws = ngx_http_learn_ws_get(job->lm, &err);
    if (job->ws == NULL) {
        return NGX_ERROR;
    }

#if (NGX_THREADS)
    job->task.ctx = job;
    job->task.handler = ngx_http_learn_job_thread;
    job->task.event.handler = ngx_http_learn_job_done;
    job->task.event.data = job;
    job->task.event.log = r->connection->log;

    return ngx_http_learn_task_post(r, job->pool, &job->task);
#else
    return NGX_ERROR;
#endif
}
