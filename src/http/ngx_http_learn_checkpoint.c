
/*
 * Durable model state: checkpoint=PATH checkpoint_interval=TIME.
 *
 * The file is read and validated at configuration time, so a torn or
 * foreign checkpoint fails "nginx -t" on the terminal; zone init then
 * restores it into a fresh zone (a zone kept across reload is newer).
 *
 * One worker (worker 0) writes: every interval, if the parameters
 * changed since the last write (a train step or an import), a task on
 * nginx's thread pool ("default", unless the model names one) copies
 * the published parameters and the optimizer state under the train
 * mutex, encodes them and writes them (temporary file, fsync, rename,
 * fsync of the directory), so the event loop neither copies nor waits
 * for the disk; the task's completion event logs the outcome and arms
 * the next interval.  Graceful shutdown writes a last checkpoint.
 *
 * With checkpoint_keep the write also leaves PATH.vSTEP (never for step
 * 0, never over an existing one) and removes the oldest beyond N, except
 * the versions that learn_candidate names.
 *
 * With store=URL the same thread then publishes the file's bytes to
 * Redis as that version (ngx_http_learn_store.c); while the newest
 * version is not in the store (Redis down), each interval writes again,
 * and that write is the retry.
 */


#include "ngx_http_learn.h"

#include <dirent.h>


struct ngx_http_learn_ckpt_job_s {
    const lt_model                *model;
    ngx_http_learn_shm_t          *shm;
    char                          *name;      /* NUL-terminated copies */
    char                          *path;
    float                         *snapshot;  /* P + S floats */
    uint8_t                       *file;      /* the encoded checkpoint */
    size_t                         file_cap;
    /*
     * the thread's path and directory buffers: here rather than on its
     * stack, where they would touch 28k more of each pool thread's stack
     * (the pool has 32 threads, and a task lands on any of them)
     */
    char                           tmp[NGX_MAX_PATH];
    char                           ver[NGX_MAX_PATH];
    char                           dir[NGX_MAX_PATH];
    char                           old[2 * NGX_MAX_PATH + 32];
    char                           ents[4096];
    lt_checkpoint_meta             meta;
    ngx_atomic_uint_t              version;   /* of the snapshot */
    ngx_uint_t                     keep;      /* unprotected versions */
    int64_t                        protect[NGX_HTTP_LEARN_MAX_VERSIONS];
    ngx_uint_t                     nprotect;  /* learn_candidate steps */
    ngx_pid_t                      unlocked;  /* a dead lock owner */
    ngx_http_learn_model_t        *lm;
#if (NGX_THREADS)
    ngx_thread_task_t              task;
#endif
    volatile ngx_atomic_t          done;
    int                            failed;
    int                            linked;    /* PATH.vSTEP is new */
    char                           msg[LT_ERR_LEN];
    ngx_uint_t                     publish;   /* store=: to Redis too */
    ngx_http_learn_store_op_t      store;
    const char                    *tag;       /* of the temporary file */
};


static u_char *ngx_http_learn_checkpoint_dir(ngx_pool_t *pool,
    ngx_str_t *path);
static void ngx_http_learn_checkpoint_probe(ngx_cycle_t *cycle,
    ngx_http_learn_model_t *lm);
static void ngx_http_learn_checkpoint_timer(ngx_event_t *ev);
static ngx_http_learn_ckpt_job_t *ngx_http_learn_checkpoint_job(
    ngx_http_learn_model_t *lm);
static void ngx_http_learn_checkpoint_copy(ngx_http_learn_ckpt_job_t *job);
static void ngx_http_learn_checkpoint_finish(ngx_http_learn_model_t *lm,
    ngx_log_t *log);
static void ngx_http_learn_checkpoint_end(ngx_http_learn_model_t *lm,
    ngx_http_learn_ckpt_job_t *job, ngx_log_t *log);
static void ngx_http_learn_checkpoint_thread(void *data, ngx_log_t *log);
#if (NGX_THREADS)
static void ngx_http_learn_checkpoint_done(ngx_event_t *ev);
#endif
static void ngx_http_learn_checkpoint_write(ngx_http_learn_ckpt_job_t *job);
static int ngx_http_learn_checkpoint_write_file(
    ngx_http_learn_ckpt_job_t *job, const uint8_t *buf, size_t len);
static void ngx_http_learn_checkpoint_prune(ngx_http_learn_ckpt_job_t *job);
static void ngx_http_learn_checkpoint_free(ngx_http_learn_ckpt_job_t *job);


ngx_int_t
ngx_http_learn_checkpoint_load(ngx_conf_t *cf, ngx_http_learn_model_t *lm)
{
    u_char           *buf;
    lt_err            err;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    fd = ngx_open_file(lm->ckpt_path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        if (ngx_errno == NGX_ENOENT) {
            /* the first start: there is nothing to restore yet */
            return NGX_OK;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "learn_model \"%V\": cannot open checkpoint "
                           "\"%V\"", &lm->name, &lm->ckpt_path);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    buf = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);
    if (buf == NULL) {
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.fd = fd;
    file.name = lm->ckpt_path;
    file.log = cf->log;

    n = ngx_read_file(&file, buf, (size_t) ngx_file_size(&fi), 0);
    ngx_close_file(fd);

    if (n != (ssize_t) ngx_file_size(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_model \"%V\": short read of checkpoint "
                           "\"%V\"", &lm->name, &lm->ckpt_path);
        return NGX_ERROR;
    }

    if (lt_checkpoint_decode(&lm->model, buf, (size_t) n, &lm->ckpt_meta,
                             &lm->ckpt_params, &lm->ckpt_state, &err)
        == 0)
    {
        return NGX_OK;
    }

    if (lm->ckpt_fresh) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "learn_model \"%V\": checkpoint \"%V\" is not "
                           "usable, starting fresh (checkpoint_bad=fresh): "
                           "%s", &lm->name, &lm->ckpt_path, err.msg);
        return NGX_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "learn_model \"%V\": checkpoint \"%V\" refused: %s "
                       "(move it away, or add checkpoint_bad=fresh)",
                       &lm->name, &lm->ckpt_path, err.msg);

    return NGX_ERROR;
}


/* zone init, fresh zone: both parameter buffers and the state */

void
ngx_http_learn_checkpoint_restore(ngx_http_learn_model_t *lm, ngx_log_t *log)
{
    size_t                 pbytes, sbytes;
    ngx_uint_t             i;
    ngx_http_learn_shm_t  *shm;

    shm = lm->shm;
    pbytes = shm->param_count * sizeof(float);
    sbytes = shm->state_count * sizeof(float);

    for (i = 0; i < 2; i++) {
        ngx_memcpy(ngx_http_learn_zone_buffer(shm, i), lm->ckpt_params,
                   pbytes);
        ngx_memcpy(ngx_http_learn_zone_state(shm, i), lm->ckpt_state,
                   sbytes);
    }

    shm->step = (ngx_atomic_uint_t) lm->ckpt_meta.step;
    shm->optim_step = (ngx_atomic_uint_t) lm->ckpt_meta.optim_step;
    shm->ckpt_version = shm->version;
    shm->loss = (float) lm->ckpt_meta.loss;
    shm->loss_avg = shm->loss;
    shm->ready = 1;           /* a follower serves it until the store moves */

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "learn_model \"%V\": restored step %L from \"%V\"",
                  &lm->name, lm->ckpt_meta.step, &lm->ckpt_path);
}


/*
 * Master, a model's zone init: the zone sets itself up; a zone that is
 * new and took nothing from a running one then gets the checkpoint read
 * at configuration time (a zone kept across a reload is newer than any
 * file).
 */

ngx_int_t
ngx_http_learn_checkpoint_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_learn_model_t  *lm;

    if (ngx_http_learn_zone_init(shm_zone, data) != NGX_OK) {
        return NGX_ERROR;
    }

    lm = shm_zone->data;

    if (lm->fresh && !lm->copied && lm->ckpt_params) {
        ngx_http_learn_checkpoint_restore(lm, shm_zone->shm.log);
    }

    return NGX_OK;
}


/*
 * Master, after configuration: a checkpoint directory that does not exist
 * stops the start; whether the workers may write in it is their own check
 * (ngx_http_learn_checkpoint_probe), with the credentials they run with.
 */

ngx_int_t
ngx_http_learn_checkpoint_init_module(ngx_cycle_t *cycle,
    ngx_http_learn_model_t *lm)
{
    u_char           *dir;
    ngx_file_info_t   fi;

    dir = ngx_http_learn_checkpoint_dir(cycle->pool, &lm->ckpt_path);
    if (dir == NULL) {
        return NGX_ERROR;
    }

    if (ngx_file_info(dir, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "learn_model \"%V\": checkpoint directory \"%s\"",
                      &lm->name, dir);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static u_char *
ngx_http_learn_checkpoint_dir(ngx_pool_t *pool, ngx_str_t *path)
{
    u_char  *dir, *slash;

    dir = ngx_pnalloc(pool, path->len + 2);
    if (dir == NULL) {
        return NULL;
    }

    ngx_memcpy(dir, path->data, path->len);
    dir[path->len] = '\0';

    slash = (u_char *) strrchr((char *) dir, '/');

    if (slash == NULL) {
        dir[0] = '.';
        dir[1] = '\0';

    } else if (slash == dir) {
        dir[1] = '\0';

    } else {
        *slash = '\0';
    }

    return dir;
}


/*
 * Worker 0, after nginx has dropped to "user": the writer creates a
 * temporary file beside the checkpoint and renames it, so it needs write
 * and search permission on the directory and on every directory above it
 * (a checkout in a 0700 home is the usual trap).  One line at start says
 * so, instead of one failed write per interval.
 */

static void
ngx_http_learn_checkpoint_probe(ngx_cycle_t *cycle,
    ngx_http_learn_model_t *lm)
{
    u_char           *dir;
    ngx_err_t         err;
    ngx_core_conf_t  *ccf;

    dir = ngx_http_learn_checkpoint_dir(cycle->pool, &lm->ckpt_path);
    if (dir == NULL) {
        return;
    }

    if (access((char *) dir, W_OK|X_OK) == 0) {
        return;
    }

    err = ngx_errno;
    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    ngx_log_error(NGX_LOG_ERR, cycle->log, err,
                  "learn_model \"%V\": workers (user \"%s\") cannot write "
                  "checkpoints in \"%s\", the model will not be saved",
                  &lm->name,
                  ccf->username ? ccf->username : "(current)", dir);
}


void
ngx_http_learn_checkpoint_init_worker(ngx_cycle_t *cycle,
    ngx_http_learn_model_t *lm)
{
    lm->ckpt_timer.handler = ngx_http_learn_checkpoint_timer;
    lm->ckpt_timer.data = lm;
    lm->ckpt_timer.log = cycle->log;
    lm->ckpt_timer.cancelable = 1;

    if (ngx_worker == 0) {
        ngx_http_learn_checkpoint_probe(cycle, lm);
    }

    ngx_add_timer(&lm->ckpt_timer, lm->ckpt_interval);
}


static void
ngx_http_learn_checkpoint_timer(ngx_event_t *ev)
{
    ngx_http_learn_model_t     *lm;
    ngx_http_learn_ckpt_job_t  *job;

    lm = ev->data;

    if (lm->ckpt_job
        || (lm->shm->version == lm->shm->ckpt_version
            && !ngx_http_learn_store_behind(lm))
        || lm->shm->retired)
    {
        /* a write in flight re-arms the timer when it completes */
        if (lm->ckpt_job == NULL) {
            ngx_add_timer(ev, lm->ckpt_interval);
        }

        return;
    }

    job = ngx_http_learn_checkpoint_job(lm);
    if (job == NULL) {
        ngx_add_timer(ev, lm->ckpt_interval);
        return;
    }

    lm->ckpt_job = job;

#if (NGX_THREADS)
    if (lm->ckpt_pool) {
        job->task.ctx = job;
        job->task.handler = ngx_http_learn_checkpoint_thread;
        job->task.event.handler = ngx_http_learn_checkpoint_done;
        job->task.event.data = job;
        job->task.event.log = ev->log;

        if (ngx_thread_task_post(lm->ckpt_pool, &job->task) == NGX_OK) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                           "learn_model \"%V\": checkpoint task posted",
                           &lm->name);
            return;
        }

        ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                      "learn_model \"%V\": the thread pool refused the "
                      "checkpoint task, writing inline", &lm->name);
    }
#endif

    ngx_http_learn_checkpoint_thread(job, ev->log);
    ngx_http_learn_checkpoint_finish(lm, ev->log);
    ngx_add_timer(ev, lm->ckpt_interval);
}


#if (NGX_THREADS)

static void
ngx_http_learn_checkpoint_done(ngx_event_t *ev)
{
    ngx_http_learn_ckpt_job_t  *job = ev->data;

    ngx_http_learn_model_t  *lm;

    lm = job->lm;

    ngx_http_learn_checkpoint_finish(lm, ev->log);

    if (!ngx_exiting && !ngx_terminate) {
        ngx_add_timer(&lm->ckpt_timer, lm->ckpt_interval);
    }
}

#endif


/*
 * A job with its snapshot and file buffers, allocated on the event loop:
 * the thread that fills them allocates nothing (each pool thread that
 * mallocs wakes one more of glibc's arenas, and its pages stay).
 */

static ngx_http_learn_ckpt_job_t *
ngx_http_learn_checkpoint_job(ngx_http_learn_model_t *lm)
{
    ngx_http_learn_ckpt_job_t  *job;

    job = ngx_calloc(sizeof(ngx_http_learn_ckpt_job_t), ngx_cycle->log);
    if (job == NULL) {
        return NULL;
    }

    job->model = &lm->model;
    job->shm = lm->shm;
    job->lm = lm;
    job->tag = "";

    if (lm->ckpt_keep) {
        job->keep = ngx_http_learn_versions_keep(lm);
        job->nprotect = lm->nprotect;
        ngx_memcpy(job->protect, lm->protect, sizeof(job->protect));
    }

    if (lm->store && !lm->follow) {
        job->publish = 1;
        ngx_http_learn_store_prepare(lm, &job->store, job->keep,
                                     lm->protect, lm->nprotect);
    }

    job->name = ngx_calloc(lm->name.len + 1, ngx_cycle->log);
    job->path = ngx_calloc(lm->ckpt_path.len + 1, ngx_cycle->log);
    job->snapshot = ngx_alloc((lt_model_values(&lm->model) + lm->model.state_count)
                              * sizeof(float), ngx_cycle->log);

    if (job->name == NULL || job->path == NULL || job->snapshot == NULL) {
        ngx_http_learn_checkpoint_free(job);
        return NULL;
    }

    ngx_memcpy(job->name, lm->name.data, lm->name.len);
    ngx_memcpy(job->path, lm->ckpt_path.data, lm->ckpt_path.len);

    job->file_cap = lt_checkpoint_size(&lm->model, job->name);
    job->file = ngx_alloc(job->file_cap, ngx_cycle->log);

    if (job->file == NULL) {
        ngx_http_learn_checkpoint_free(job);
        return NULL;
    }

    return job;
}


/*
 * A consistent copy of the published parameters and of the optimizer
 * state, which a step changes in place: under the train mutex, on the
 * checkpoint thread (or at exit), so the event loop never copies.  The
 * mutex is taken with ngx_http_learn_zone_lock_wait(), which frees it
 * from a worker killed in a step.
 */

static void
ngx_http_learn_checkpoint_copy(ngx_http_learn_ckpt_job_t *job)
{
    size_t                 p, s;
    ngx_http_learn_shm_t  *shm;

    shm = job->shm;
    p = shm->param_count;
    s = shm->state_count;

    job->unlocked = ngx_http_learn_zone_lock_wait(shm);

    ngx_memcpy(job->snapshot, ngx_http_learn_zone_buffer(shm, shm->version & 1),
               p * sizeof(float));
    ngx_memcpy(job->snapshot + p, ngx_http_learn_zone_state(shm, shm->version),
               s * sizeof(float));
    job->meta.step = (int64_t) shm->step;
    job->meta.optim_step = (int64_t) shm->optim_step;
    job->meta.loss = shm->loss;
    job->version = shm->version;

    ngx_shmtx_unlock(&shm->mutex);
}


static void
ngx_http_learn_checkpoint_finish(ngx_http_learn_model_t *lm, ngx_log_t *log)
{
    ngx_http_learn_ckpt_job_t  *job;

    job = lm->ckpt_job;
    lm->ckpt_job = NULL;

    ngx_http_learn_checkpoint_end(lm, job, log);
}


static void
ngx_http_learn_checkpoint_end(ngx_http_learn_model_t *lm,
    ngx_http_learn_ckpt_job_t *job, ngx_log_t *log)
{
    if (job->unlocked) {
        ngx_http_learn_zone_lock_unlocked(lm, job->unlocked, log);
    }

    if (job->failed) {
        (void) ngx_atomic_fetch_add(&lm->shm->ckpt_failures, 1);
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "learn_model \"%V\": checkpoint \"%s\" not written: %s",
                      &lm->name, job->path, job->msg);

    } else {
        lm->shm->ckpt_version = job->version;
        lm->shm->ckpt_step = (ngx_atomic_uint_t) job->meta.step;

        if (job->linked) {
            ngx_http_learn_versions_added(lm, job->meta.step,
                                          (float) job->meta.loss);
        }

        lm->shm->ckpt_time = ngx_time();
        (void) ngx_atomic_fetch_add(&lm->shm->ckpt_writes, 1);
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "learn_model \"%V\": checkpoint \"%s\" written at "
                      "step %L", &lm->name, job->path, job->meta.step);
    }

    if (job->publish) {
        ngx_http_learn_store_published(lm, &job->store, job->version,
                                       job->meta.step, log);
    }

    ngx_http_learn_checkpoint_free(job);
}


/*
 * Graceful exit, after nginx's thread pools have stopped (their module
 * exits before this one, and waits for the tasks in flight): a write in
 * flight is done; then the last state is written here.
 */

void
ngx_http_learn_checkpoint_exit_worker(ngx_cycle_t *cycle,
    ngx_http_learn_model_t *lm)
{
    if (lm->ckpt_timer.timer_set) {
        ngx_del_timer(&lm->ckpt_timer);
    }

    if (lm->ckpt_job) {
        if (!lm->ckpt_job->done) {
            /* the thread still owns the job: leave it, do not free */
            return;
        }

        ngx_http_learn_checkpoint_finish(lm, cycle->log);
    }

    if (lm->shm->version == lm->shm->ckpt_version || lm->shm->retired) {
        return;
    }

    lm->ckpt_job = ngx_http_learn_checkpoint_job(lm);
    if (lm->ckpt_job == NULL) {
        return;
    }

    ngx_http_learn_checkpoint_thread(lm->ckpt_job, cycle->log);
    ngx_http_learn_checkpoint_finish(lm, cycle->log);
}


static void
ngx_http_learn_checkpoint_thread(void *data, ngx_log_t *log)
{
    ngx_http_learn_checkpoint_copy(data);
    ngx_http_learn_checkpoint_write(data);
}


/* runs on the checkpoint thread: no pools, no logging, no nginx state */

static void
ngx_http_learn_checkpoint_write(ngx_http_learn_ckpt_job_t *job)
{
    size_t  len;
    lt_err  err;

    if (lt_checkpoint_encode_into(job->model, job->name, &job->meta,
                                  job->snapshot,
                                  job->snapshot + lt_model_values(job->model),
                                  job->file, job->file_cap, &len, &err)
        != 0)
    {
        ngx_cpystrn((u_char *) job->msg, (u_char *) err.msg, LT_ERR_LEN);
        job->failed = 1;

    } else {
        job->failed = ngx_http_learn_checkpoint_write_file(job, job->file,
                                                           len);

        /* a version in the store is one on the trainer's disk as well */
        if (!job->failed && job->publish) {
            ngx_http_learn_store_publish(job->lm, &job->store, job->file,
                                         len, job->meta.step);
        }
    }

    ngx_memory_barrier();
    job->done = 1;
}


/*
 * PATH.tmp.PID, fsync, rename over PATH, fsync the directory: a crash at
 * any point leaves either the old file or the new one, whole.  A kept
 * version is a hard link to the same bytes, made before the rename.
 *
 * A version is never overwritten: a weights import moves the parameters
 * but not the step, so the next write may come at a step whose PATH.vSTEP
 * exists already; that file stays as it is (and so do the copies that
 * workers keep of it).  Step 0, the untrained model, is no version.
 */

static int
ngx_http_learn_checkpoint_write_file(ngx_http_learn_ckpt_job_t *job,
    const uint8_t *buf, size_t len)
{
    int          fd, dfd;
    char        *slash, *msg, *tmp, *dir, *ver;
    size_t       off;
    ssize_t      n;
    ngx_str_t    p;
    const char  *path;

    path = job->path;
    msg = job->msg;
    tmp = job->tmp;
    dir = job->dir;
    ver = job->ver;

    if ((size_t) snprintf(tmp, NGX_MAX_PATH, "%s.tmp.%d%s", path,
                          (int) getpid(), job->tag)
        >= NGX_MAX_PATH)
    {
        snprintf(msg, LT_ERR_LEN, "path too long");
        return 1;
    }

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd == -1) {
        snprintf(msg, LT_ERR_LEN, "open() of the temporary file: %s",
                 strerror(errno));
        return 1;
    }

    for (off = 0; off < len; off += (size_t) n) {
        n = write(fd, buf + off, len - off);

        if (n <= 0) {
            snprintf(msg, LT_ERR_LEN, "write(): %s",
                     n == 0 ? "no progress" : strerror(errno));
            close(fd);
            unlink(tmp);
            return 1;
        }
    }

    if (fsync(fd) != 0 || close(fd) != 0) {
        snprintf(msg, LT_ERR_LEN, "fsync(): %s", strerror(errno));
        unlink(tmp);
        return 1;
    }

    if (job->keep && job->meta.step > 0) {
        p.data = (u_char *) path;
        p.len = ngx_strlen(path);

        if ((size_t) ngx_http_learn_versions_path(ver, NGX_MAX_PATH, &p,
                                                  job->meta.step)
            >= NGX_MAX_PATH)
        {
            snprintf(msg, LT_ERR_LEN, "path too long");
            unlink(tmp);
            return 1;
        }

        if (link(tmp, ver) == 0) {
            job->linked = 1;

        } else if (errno != EEXIST) {
            snprintf(msg, LT_ERR_LEN, "link() of the version file: %s",
                     strerror(errno));
            unlink(tmp);
            return 1;
        }
    }

    if (rename(tmp, path) != 0) {
        snprintf(msg, LT_ERR_LEN, "rename() over it: %s", strerror(errno));
        unlink(tmp);
        return 1;
    }

    ngx_cpystrn((u_char *) dir, (u_char *) path, NGX_MAX_PATH);
    slash = strrchr(dir, '/');

    if (slash != NULL) {
        *(slash == dir ? slash + 1 : slash) = '\0';

        dfd = open(dir, O_RDONLY);
        if (dfd != -1) {
            (void) fsync(dfd);
            close(dfd);
        }
    }

    if (job->keep || job->nprotect) {
        ngx_http_learn_checkpoint_prune(job);
    }

    return 0;
}


/*
 * Remove PATH.vSTEP files beyond the newest "keep" unprotected ones; the
 * protected (learn_candidate) ones stay, a PATH.v0 of older builds goes.
 */

static void
ngx_http_learn_checkpoint_prune(ngx_http_learn_ckpt_job_t *job)
{
    char              *dir, *file, *slash, *base, *end, *name;
    size_t             blen;
    int64_t            steps[NGX_HTTP_LEARN_MAX_VERSIONS + 1], step, gone;
    ngx_uint_t         n, i;
#if (NGX_LINUX)
    int                fd;
    char              *ents;
    ssize_t            got, off;
    struct dirent64   *de;
#else
    DIR               *d;
    struct dirent     *de;
#endif

    dir = job->dir;
    file = job->old;
    ngx_cpystrn((u_char *) dir, (u_char *) job->path, NGX_MAX_PATH);
    slash = strrchr(dir, '/');
    if (slash == NULL) {
        return;
    }

    *slash = '\0';
    base = slash + 1;
    blen = strlen(base);

    /*
     * On Linux the entries are read with getdents64 into the job's buffer:
     * opendir() mallocs 32k, and a malloc on a pool thread wakes one more
     * of glibc's arenas, whose pages stay
     */
#if (NGX_LINUX)
    ents = job->ents;
    fd = open(slash == dir ? "/" : dir, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
    if (fd == -1) {
        return;
    }

    got = 0;
    off = 0;
#else
    d = opendir(slash == dir ? "/" : dir);
    if (d == NULL) {
        return;
    }
#endif

    /* the newest "keep" unprotected steps, descending */

    n = 0;

    for ( ;; ) {
#if (NGX_LINUX)
        if (off >= got) {
            got = getdents64(fd, ents, sizeof(job->ents));
            if (got <= 0) {
                break;
            }

            off = 0;
        }

        de = (struct dirent64 *) (ents + off);
        off += de->d_reclen;
#else
        de = readdir(d);
        if (de == NULL) {
            break;
        }
#endif
        name = de->d_name;

        /* PATH.vSTEP as the writer names it: digits, no leading zero */
        if (strncmp(name, base, blen) != 0
            || name[blen] != '.' || name[blen + 1] != 'v'
            || name[blen + 2] < '0' || name[blen + 2] > '9'
            || (name[blen + 2] == '0' && name[blen + 3] != '\0'))
        {
            continue;
        }

        step = strtoll(name + blen + 2, &end, 10);
        if (*end != '\0' || step < 0) {
            continue;
        }

        if (step > 0
            && ngx_http_learn_versions_protected(job->protect,
                                                 job->nprotect, step))
        {
            continue;
        }

        if (step > 0
            && (n < job->keep || (n > 0 && step > steps[n - 1])))
        {
            gone = (n == job->keep) ? steps[--n] : 0;

            /* insertion, descending */
            for (i = n++; i > 0 && steps[i - 1] < step; i--) {
                steps[i] = steps[i - 1];
            }

            steps[i] = step;

            if (gone == 0) {
                continue;
            }

            step = gone;
        }

        /* older than the newest "keep", or step 0: it goes */
        snprintf(file, sizeof(job->old), "%s/%s.v%lld", dir, base,
                 (long long) step);
        (void) unlink(file);
    }

#if (NGX_LINUX)
    (void) close(fd);
#else
    closedir(d);
#endif
}


static void
ngx_http_learn_checkpoint_free(ngx_http_learn_ckpt_job_t *job)
{
    ngx_free(job->name);
    ngx_free(job->path);
    ngx_free(job->snapshot);
    ngx_free(job->file);
    ngx_free(job);
}


/*
 * A write of a dataset job's own when it ends (ngx_http_learn_job_run.c):
 * the job allocated on the event loop when the job starts, written on
 * the job's thread, ended on the event loop.  Its temporary file has a
 * name of its own, so worker 0's interval write may run at the same time.
 */

ngx_http_learn_ckpt_job_t *
ngx_http_learn_checkpoint_job_new(ngx_http_learn_model_t *lm)
{
    ngx_http_learn_ckpt_job_t  *job;

    job = ngx_http_learn_checkpoint_job(lm);
    if (job != NULL) {
        job->tag = ".job";
        /*
         * store=: the worker's Redis connection serves one checkpoint job
         * at a time; the next interval's write publishes this version
         */
        job->publish = 0;
    }

    return job;
}


void
ngx_http_learn_checkpoint_job_write(ngx_http_learn_ckpt_job_t *job)
{
    ngx_http_learn_checkpoint_thread(job, NULL);
}


/* the kept version's step (0: none kept), or -1 with msg set */

int64_t
ngx_http_learn_checkpoint_job_end(ngx_http_learn_model_t *lm,
    ngx_http_learn_ckpt_job_t *job, ngx_log_t *log, u_char *msg, size_t size)
{
    int64_t  step;

    if (job->failed) {
        ngx_cpystrn(msg, (u_char *) job->msg, size);
        step = -1;

    } else {
        step = (job->keep && job->meta.step > 0) ? job->meta.step : 0;
    }

    ngx_http_learn_checkpoint_end(lm, job, log);

    return step;
}


/* a job's checkpoint that never ran (the job failed before it) */

void
ngx_http_learn_checkpoint_job_free(ngx_http_learn_ckpt_job_t *job)
{
    ngx_http_learn_checkpoint_free(job);
}
