
/*
 * Kept versions: with checkpoint_keep=N every checkpoint write also
 * leaves PATH.vSTEP, never overwritten, the oldest removed beyond N.
 * A predict may ask for one (?version=STEP), and learn_candidate sends a
 * share of a location's predicts to one (A/B); learn_status counts the
 * predicts and their latency per version.
 *
 * A worker reads a version's file once, on a thread pool (never on the
 * event loop), and keeps its parameters while the model keeps the
 * version; predicts that ask for it meanwhile wait for that one read.  A
 * file that cannot be read is remembered for a minute: one warning, not
 * one per request.
 *
 * A follower (follow=) may also be asked for a version it does not keep
 * itself: one the store holds (a "remote" slot, read from Redis on the
 * same pool, ngx_http_learn_store_read_version()).  Only steps the store
 * can hold are asked for (1 .. the newest seen there); one the store
 * does not have is remembered like an unreadable file and answers 404.
 * A remote slot stays cached until the slots are needed for others.
 *
 * A version that a learn_candidate of the running configuration names is
 * protected: never removed, and not counted in N.  The table has
 * NGX_HTTP_LEARN_MAX_VERSIONS slots, so N shrinks when N plus the
 * protected versions would not fit.
 */


#include "ngx_http_learn.h"

#include <math.h>


#define NGX_HTTP_LEARN_VERSION_RETRY  60     /* s before a bad file again */


typedef enum {
    NGX_HTTP_LEARN_VSLOT_EMPTY = 0,
    NGX_HTTP_LEARN_VSLOT_LOADING,
    NGX_HTTP_LEARN_VSLOT_READY,
    NGX_HTTP_LEARN_VSLOT_BAD
} ngx_http_learn_vslot_state_e;


typedef struct {
    int64_t                        step;
    ngx_http_learn_vslot_state_e   state;
    float                         *params;    /* READY: P floats */
    time_t                         failed;    /* BAD: since when */
    ngx_uint_t                     remote;    /* from the store */
    ngx_uint_t                     absent;    /* BAD: not in the store */
    ngx_queue_t                    waiters;   /* LOADING: their ctx->queue */
} ngx_http_learn_vslot_t;


struct ngx_http_learn_vcache_s {
    ngx_http_learn_vslot_t         slots[NGX_HTTP_LEARN_MAX_VERSIONS];
};


/* a read on a pool thread */
typedef struct {
    ngx_http_learn_model_t        *model;
    ngx_http_learn_vslot_t        *slot;
    int64_t                        step;
    float                         *params;
    ngx_uint_t                     remote;
    ngx_int_t                      rc;
    lt_err                         err;
} ngx_http_learn_vread_t;


static ngx_http_learn_vslot_t *ngx_http_learn_versions_slot(
    ngx_http_learn_model_t *lm, int64_t step, ngx_uint_t remote);
static ngx_int_t ngx_http_learn_versions_load(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, ngx_http_learn_vslot_t *slot);
static void ngx_http_learn_versions_read_task(void *data, ngx_log_t *log);
static void ngx_http_learn_versions_loaded(ngx_event_t *ev);
static void ngx_http_learn_versions_wake(ngx_http_learn_model_t *lm,
    ngx_http_learn_vslot_t *slot, ngx_http_learn_vread_t *vr);
static void ngx_http_learn_versions_insert(ngx_http_learn_version_t *table,
    ngx_uint_t keep, int64_t *protect, ngx_uint_t nprotect, int64_t step,
    float loss, time_t time);
static void ngx_http_learn_versions_trim(ngx_http_learn_model_t *lm,
    ngx_http_learn_version_t *table);


int
ngx_http_learn_versions_path(char *buf, size_t size, ngx_str_t *path,
    int64_t step)
{
    return snprintf(buf, size, "%.*s.v%lld", (int) path->len,
                    (char *) path->data, (long long) step);
}


/*
 * Configuration time: the versions already on disk, each read and
 * validated (a torn one is skipped with a warning).  All of them, up to
 * the table's size, not only the newest N: a learn_candidate (its
 * location is parsed later) may name an older, protected one.
 * init_module trims the list to N and the candidates.
 */

ngx_int_t
ngx_http_learn_versions_scan(ngx_conf_t *cf, ngx_http_learn_model_t *lm)
{
    u_char              *name, *slash;
    size_t               blen, len;
    int64_t              step;
    ngx_dir_t            dir;
    ngx_str_t            dpath, base;
    lt_err               err;
    ngx_uint_t           i;
    lt_checkpoint_meta   meta;

    slash = (u_char *) strrchr((char *) lm->ckpt_path.data, '/');

    dpath.len = slash - lm->ckpt_path.data;
    dpath.data = ngx_pnalloc(cf->pool, dpath.len + 2);
    if (dpath.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dpath.data, lm->ckpt_path.data, dpath.len);
    if (dpath.len == 0) {
        dpath.data[dpath.len++] = '/';
    }
    dpath.data[dpath.len] = '\0';

    base.data = slash + 1;
    base.len = lm->ckpt_path.data + lm->ckpt_path.len - base.data;

    if (ngx_open_dir(&dpath, &dir) == NGX_ERROR) {
        return NGX_OK;
    }

    while (ngx_read_dir(&dir) == NGX_OK) {
        name = ngx_de_name(&dir);
        len = ngx_de_namelen(&dir);
        blen = base.len;

        if (len <= blen + 2 || ngx_strncmp(name, base.data, blen) != 0
            || name[blen] != '.' || name[blen + 1] != 'v')
        {
            continue;
        }

        step = 0;

        for (i = blen + 2; i < len; i++) {
            if (name[i] < '0' || name[i] > '9' || step > (1LL << 50)) {
                break;
            }

            step = step * 10 + (name[i] - '0');
        }

        if (i != len || step == 0) {
            continue;
        }

        meta.loss = NAN;
        ngx_http_learn_versions_insert(lm->kept, NGX_HTTP_LEARN_MAX_VERSIONS,
                                       NULL, 0, step, (float) meta.loss, 0);
    }

    ngx_close_dir(&dir);

    /* read the survivors for their loss, and to skip broken ones */

    for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
        if (lm->kept[i].step == 0) {
            continue;
        }

        if (ngx_http_learn_versions_read(lm, lm->kept[i].step, NULL, &meta,
                                         &err)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "learn_model \"%V\": version %L is not "
                               "usable, not listed: %s", &lm->name,
                               lm->kept[i].step, err.msg);
            lm->kept[i].step = 0;
            continue;
        }

        lm->kept[i].loss = (float) meta.loss;
    }

    return NGX_OK;
}


/*
 * Read and validate PATH.vSTEP; params (P floats, may be NULL) gets its
 * parameters.  Blocks on the disk: runs at configuration time and on a
 * pool thread, so it neither logs nor touches a pool: err says why it
 * failed.  NGX_DECLINED: there is no such file.
 */

ngx_int_t
ngx_http_learn_versions_read(ngx_http_learn_model_t *lm, int64_t step,
    float *params, lt_checkpoint_meta *meta, lt_err *err)
{
    u_char           *buf;
    char              path[NGX_MAX_PATH];
    size_t            size, done;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_int_t         rc;
    const uint8_t    *p, *state;
    ngx_file_info_t   fi;

    if ((size_t) ngx_http_learn_versions_path(path, sizeof(path),
                                              &lm->ckpt_path, step)
        >= sizeof(path))
    {
        lt_error(err, "path too long");
        return NGX_ERROR;
    }

    fd = ngx_open_file(path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        lt_error(err, "\"%s\": %s", path, strerror(ngx_errno));
        return NGX_DECLINED;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        lt_error(err, "\"%s\": fstat(): %s", path, strerror(ngx_errno));
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    size = (size_t) ngx_file_size(&fi);

    buf = malloc(size + 1);
    if (buf == NULL) {
        lt_error(err, "\"%s\": no memory for %zu bytes", path, size);
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    for (done = 0; done < size; done += (size_t) n) {
        n = pread(fd, buf + done, size - done, (off_t) done);

        if (n == -1 && ngx_errno == NGX_EINTR) {
            n = 0;
            continue;
        }

        if (n <= 0) {
            break;
        }
    }

    ngx_close_file(fd);

    rc = NGX_ERROR;

    if (done != size) {
        lt_error(err, "\"%s\": short read", path);

    } else if (lt_checkpoint_decode(&lm->model, buf, size, meta, &p, &state,
                                    err)
               == 0)
    {
        if (params) {
            ngx_memcpy(params, p, lt_model_values(&lm->model) * sizeof(float));
        }

        rc = NGX_OK;
    }

    free(buf);

    return rc;
}


/*
 * Master, init_module: the steps that this configuration's
 * learn_candidate directives name become protected, and a fresh zone's
 * list (all versions on disk) is trimmed to N and those.
 */

ngx_int_t
ngx_http_learn_versions_init_module(ngx_cycle_t *cycle,
    ngx_http_learn_main_conf_t *lmcf)
{
    ngx_uint_t                   i;
    ngx_http_learn_model_t      *lm, **lmp;
    ngx_http_learn_loc_conf_t  **lcfp;

    if (lmcf->candidates) {
        lcfp = lmcf->candidates->elts;

        for (i = 0; i < lmcf->candidates->nelts; i++) {
            lm = lcfp[i]->model;

            /* merge_loc_conf checked that the model keeps that version */
            if (lm == NULL || lm->ckpt_keep == 0
                || ngx_http_learn_versions_protected(lm->protect,
                                                     lm->nprotect,
                                                     lcfp[i]->candidate)
                || lm->nprotect == NGX_HTTP_LEARN_MAX_VERSIONS)
            {
                continue;
            }

            lm->protect[lm->nprotect++] = lcfp[i]->candidate;
        }
    }

    lmp = lmcf->models.elts;

    for (i = 0; i < lmcf->models.nelts; i++) {
        lm = lmp[i];

        if (lm->ckpt_keep && lm->fresh && lm->shm) {
            ngx_http_learn_versions_trim(lm, lm->shm->versions);
        }
    }

    return NGX_OK;
}


/* N, less what the protected versions need of the table */

ngx_uint_t
ngx_http_learn_versions_keep(ngx_http_learn_model_t *lm)
{
    return ngx_min(lm->ckpt_keep, NGX_HTTP_LEARN_MAX_VERSIONS - lm->nprotect);
}


ngx_uint_t
ngx_http_learn_versions_protected(int64_t *protect, ngx_uint_t n,
    int64_t step)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (protect[i] == step) {
            return 1;
        }
    }

    return 0;
}


/* the newest N unprotected versions stay, and the protected ones */

static void
ngx_http_learn_versions_trim(ngx_http_learn_model_t *lm,
    ngx_http_learn_version_t *table)
{
    ngx_uint_t  i, used, oldest, keep;

    keep = ngx_http_learn_versions_keep(lm);

    for ( ;; ) {
        used = 0;
        oldest = NGX_HTTP_LEARN_MAX_VERSIONS;

        for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
            if (table[i].step == 0
                || ngx_http_learn_versions_protected(lm->protect,
                                                     lm->nprotect,
                                                     table[i].step))
            {
                continue;
            }

            used++;

            if (oldest == NGX_HTTP_LEARN_MAX_VERSIONS
                || table[i].step < table[oldest].step)
            {
                oldest = i;
            }
        }

        if (used <= keep) {
            return;
        }

        ngx_memzero(&table[oldest], sizeof(ngx_http_learn_version_t));
    }
}


/* the writer made PATH.vSTEP (the thread already removed older files) */

void
ngx_http_learn_versions_added(ngx_http_learn_model_t *lm, int64_t step,
    float loss)
{
    ngx_http_learn_versions_insert(lm->shm->versions,
                                   ngx_http_learn_versions_keep(lm),
                                   lm->protect, lm->nprotect, step, loss,
                                   ngx_time());
}


/*
 * Into a table of kept versions: beyond "keep" unprotected ones the
 * oldest unprotected entry makes room; protected entries are never
 * replaced.
 */

static void
ngx_http_learn_versions_insert(ngx_http_learn_version_t *table,
    ngx_uint_t keep, int64_t *protect, ngx_uint_t nprotect, int64_t step,
    float loss, time_t time)
{
    ngx_uint_t  i, used, oldest, free, prot;

    used = 0;
    oldest = NGX_HTTP_LEARN_MAX_VERSIONS;
    free = NGX_HTTP_LEARN_MAX_VERSIONS;
    prot = ngx_http_learn_versions_protected(protect, nprotect, step);

    for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
        if (table[i].step == step) {
            table[i].loss = loss;
            table[i].time = time;
            return;
        }

        if (table[i].step == 0) {
            free = i;
            continue;
        }

        if (ngx_http_learn_versions_protected(protect, nprotect,
                                              table[i].step))
        {
            continue;
        }

        used++;

        if (oldest == NGX_HTTP_LEARN_MAX_VERSIONS
            || table[i].step < table[oldest].step)
        {
            oldest = i;
        }
    }

    if (!prot && used >= keep) {
        if (oldest == NGX_HTTP_LEARN_MAX_VERSIONS
            || table[oldest].step > step)
        {
            return;
        }

        free = oldest;
    }

    if (free == NGX_HTTP_LEARN_MAX_VERSIONS) {
        return;
    }

    ngx_memzero(&table[free], sizeof(ngx_http_learn_version_t));
    table[free].step = step;
    table[free].loss = loss;
    table[free].time = time;
}


ngx_http_learn_version_t *
ngx_http_learn_versions_find(ngx_http_learn_shm_t *shm, int64_t step)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
        if (shm->versions[i].step == step) {
            return &shm->versions[i];
        }
    }

    return NULL;
}


/*
 * The parameters of kept version ctx->vstep for a predict: NGX_OK with
 * ctx->vparams set; NGX_AGAIN: being read, the request waits and
 * done(r, ctx, rc) goes on once it is read; NGX_DECLINED: the model keeps
 * no such version; NGX_ERROR: its file cannot be read (ctx->err).
 */

ngx_int_t
ngx_http_learn_versions_get(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx,
    ngx_http_learn_resume_pt done)
{
    ngx_http_learn_vslot_t  *slot;
    ngx_http_learn_model_t  *lm;

    ngx_uint_t               remote;

    lm = ctx->lcf->model;
    ctx->version_done = done;

    remote = 0;

    if (lm->ckpt_keep == 0
        || ngx_http_learn_versions_find(lm->shm, ctx->vstep) == NULL)
    {
        if (!lm->follow
            || (ngx_atomic_uint_t) ctx->vstep > lm->shm->store_latest)
        {
            return NGX_DECLINED;
        }

        remote = 1;
    }

    slot = ngx_http_learn_versions_slot(lm, ctx->vstep, remote);
    if (slot == NULL) {
        lt_error(&ctx->err, "no memory for the version cache");
        return NGX_ERROR;
    }

    switch (slot->state) {

    case NGX_HTTP_LEARN_VSLOT_READY:
        ctx->vparams = slot->params;
        return NGX_OK;

    case NGX_HTTP_LEARN_VSLOT_LOADING:
        ngx_queue_insert_tail(&slot->waiters, &ctx->queue);
        ctx->parked = NGX_HTTP_LEARN_PARK_QUEUE;
        return NGX_AGAIN;

    case NGX_HTTP_LEARN_VSLOT_BAD:
        if (ngx_time() - slot->failed < NGX_HTTP_LEARN_VERSION_RETRY) {
            if (slot->absent) {
                return NGX_DECLINED;
            }

            lt_error(&ctx->err, "version %lld of the model cannot be read "
                     "(see the warning in error.log)",
                     (long long) ctx->vstep);
            return NGX_ERROR;
        }

        /* a minute later: try the file again */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "learn: version %L was unreadable, trying again",
                       ctx->vstep);

        return ngx_http_learn_versions_load(r, ctx, slot);

    default:
        return ngx_http_learn_versions_load(r, ctx, slot);
    }
}


/*
 * The parameters of kept version step for a caller that cannot wait for
 * a thread (resty.learn): NGX_OK with *params; NGX_DECLINED: the model
 * keeps no such version; NGX_AGAIN: an HTTP predict is having it read
 * on a thread, ask again later; NGX_ERROR (err).  A version this worker
 * has not read yet is read here, blocking.
 */

ngx_int_t
ngx_http_learn_versions_params(ngx_http_learn_model_t *lm, int64_t step,
    const float **params, lt_err *err)
{
    ngx_http_learn_vslot_t  *slot;
    ngx_http_learn_vread_t   vr;

    if (lm->ckpt_keep == 0
        || ngx_http_learn_versions_find(lm->shm, step) == NULL)
    {
        return NGX_DECLINED;
    }

    /* a version only the store has is read over HTTP, never here */
    slot = ngx_http_learn_versions_slot(lm, step, 0);
    if (slot == NULL) {
        lt_error(err, "no memory for the version cache");
        return NGX_ERROR;
    }

    switch (slot->state) {

    case NGX_HTTP_LEARN_VSLOT_READY:
        *params = slot->params;
        return NGX_OK;

    case NGX_HTTP_LEARN_VSLOT_LOADING:
        lt_error(err, "version %lld of the model is being read",
                 (long long) step);
        return NGX_AGAIN;

    case NGX_HTTP_LEARN_VSLOT_BAD:
        if (ngx_time() - slot->failed < NGX_HTTP_LEARN_VERSION_RETRY) {
            lt_error(err, "version %lld of the model cannot be read "
                     "(see the warning in error.log)", (long long) step);
            return NGX_ERROR;
        }

        /* fall through */

    default:
        break;
    }

    ngx_memzero(&vr, sizeof(ngx_http_learn_vread_t));
    vr.model = lm;
    vr.slot = slot;
    vr.step = step;
    vr.params = ngx_alloc(lt_model_values(&lm->model) * sizeof(float),
                          ngx_cycle->log);
    if (vr.params == NULL) {
        lt_error(err, "no memory to read a version");
        return NGX_ERROR;
    }

    ngx_http_learn_versions_read_task(&vr, ngx_cycle->log);
    ngx_http_learn_versions_wake(lm, slot, &vr);

    if (slot->state != NGX_HTTP_LEARN_VSLOT_READY) {
        *err = vr.err;
        return NGX_ERROR;
    }

    *params = slot->params;

    return NGX_OK;
}


/*
 * This worker's slot for step: its own, else a free one.  Slots of
 * versions the model no longer keeps are freed on the way, so the cache
 * holds at most what the model keeps.
 */

static ngx_http_learn_vslot_t *
ngx_http_learn_versions_slot(ngx_http_learn_model_t *lm, int64_t step,
    ngx_uint_t remote)
{
    ngx_uint_t               i;
    ngx_http_learn_vslot_t  *s, *found, *empty;

    if (lm->vcache == NULL) {
        lm->vcache = ngx_calloc(sizeof(ngx_http_learn_vcache_t),
                                ngx_cycle->log);
        if (lm->vcache == NULL) {
            return NULL;
        }

        for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
            ngx_queue_init(&lm->vcache->slots[i].waiters);
        }
    }

    found = NULL;
    empty = NULL;

    for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
        s = &lm->vcache->slots[i];

        if (s->state != NGX_HTTP_LEARN_VSLOT_EMPTY
            && s->state != NGX_HTTP_LEARN_VSLOT_LOADING
            && !s->remote
            && ngx_http_learn_versions_find(lm->shm, s->step) == NULL)
        {
            ngx_free(s->params);
            s->params = NULL;
            s->state = NGX_HTTP_LEARN_VSLOT_EMPTY;
        }

        if (s->state != NGX_HTTP_LEARN_VSLOT_EMPTY && s->step == step
            && s->remote == remote)
        {
            found = s;

        } else if (s->state == NGX_HTTP_LEARN_VSLOT_EMPTY && empty == NULL) {
            empty = s;
        }
    }

    if (found) {
        return found;
    }

    if (empty == NULL) {
        /* every slot is a kept version or being read: reuse a ready one */
        for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
            s = &lm->vcache->slots[i];

            if (s->state == NGX_HTTP_LEARN_VSLOT_READY
                || s->state == NGX_HTTP_LEARN_VSLOT_BAD)
            {
                ngx_free(s->params);
                s->params = NULL;
                s->state = NGX_HTTP_LEARN_VSLOT_EMPTY;
                empty = s;
                break;
            }
        }

        if (empty == NULL) {
            return NULL;
        }
    }

    empty->step = step;
    empty->remote = remote;
    empty->absent = 0;

    return empty;
}


/* one read of the file for every predict that waits for it */

static ngx_int_t
ngx_http_learn_versions_load(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx,
    ngx_http_learn_vslot_t *slot)
{
    ngx_http_learn_model_t  *lm;
    ngx_http_learn_vread_t  *vr, one;
#if (NGX_THREADS)
    ngx_thread_task_t       *task;
#endif

    lm = ctx->lcf->model;

    vr = &one;

#if (NGX_THREADS)
    task = NULL;

    if (ctx->lcf->io_pool) {
        /* not from the request's pool: the read may outlive the request */
        task = ngx_calloc(sizeof(ngx_thread_task_t)
                          + sizeof(ngx_http_learn_vread_t), r->connection->log);
        if (task == NULL) {
            lt_error(&ctx->err, "no memory to read a version");
            return NGX_ERROR;
        }

        task->ctx = task + 1;
        vr = task->ctx;
    }
#endif

    ngx_memzero(vr, sizeof(ngx_http_learn_vread_t));
    vr->model = lm;
    vr->slot = slot;
    vr->step = ctx->vstep;
    vr->remote = slot->remote;

#if (NGX_THREADS)
    if (vr->remote && task == NULL) {
        /* a Redis round trip is never made on the event loop */
        lt_error(&ctx->err, "reading a version from the store needs a "
                 "thread pool");
        return NGX_ERROR;
    }
#else
    if (vr->remote) {
        lt_error(&ctx->err, "reading a version from the store needs nginx "
                 "built --with-threads");
        return NGX_ERROR;
    }
#endif

    vr->params = ngx_alloc(lt_model_values(&lm->model) * sizeof(float),
                           r->connection->log);

    if (vr->params == NULL) {
#if (NGX_THREADS)
        ngx_free(task);
#endif
        lt_error(&ctx->err, "no memory to read a version");
        return NGX_ERROR;
    }

    slot->state = NGX_HTTP_LEARN_VSLOT_LOADING;
    ngx_queue_insert_tail(&slot->waiters, &ctx->queue);
    ctx->parked = NGX_HTTP_LEARN_PARK_QUEUE;

#if (NGX_THREADS)
    if (task) {
        task->handler = ngx_http_learn_versions_read_task;
        task->event.handler = ngx_http_learn_versions_loaded;
        task->event.data = task;
        task->event.log = ngx_cycle->log;

        if (ngx_thread_task_post(ctx->lcf->io_pool, task) == NGX_OK) {
            ngx_http_learn_tasks_add(1);

            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "learn \"%V\": reading version %L on a thread",
                           &lm->name, vr->step);
            return NGX_AGAIN;
        }

        ngx_queue_remove(&ctx->queue);
        ctx->parked = NGX_HTTP_LEARN_PARK_NONE;
        slot->state = NGX_HTTP_LEARN_VSLOT_EMPTY;
        ngx_free(vr->params);
        ngx_free(task);
        lt_error(&ctx->err, "the thread pool refused the read of a version");
        return NGX_ERROR;
    }
#endif

    /* built without threads: no way around a blocking read */
    ngx_http_learn_versions_read_task(vr, r->connection->log);

    ngx_queue_remove(&ctx->queue);
    ctx->parked = NGX_HTTP_LEARN_PARK_NONE;

    ngx_http_learn_versions_wake(lm, slot, vr);

    if (slot->state != NGX_HTTP_LEARN_VSLOT_READY) {
        ctx->err = vr->err;
        return NGX_ERROR;
    }

    ctx->vparams = slot->params;

    return NGX_OK;
}


/* on a pool thread */

static void
ngx_http_learn_versions_read_task(void *data, ngx_log_t *log)
{
    ngx_http_learn_vread_t  *vr = data;

    lt_checkpoint_meta  meta;

    if (vr->remote) {
        vr->rc = ngx_http_learn_store_read_version(vr->model, vr->step,
                                                   vr->params, &vr->err);
        return;
    }

    vr->rc = ngx_http_learn_versions_read(vr->model, vr->step, vr->params,
                                          &meta, &vr->err);
}


static void
ngx_http_learn_versions_loaded(ngx_event_t *ev)
{
    ngx_thread_task_t       *task = ev->data;

    ngx_http_learn_vread_t  *vr;

    vr = task->ctx;

    ngx_http_learn_tasks_add(-1);

    ngx_http_learn_versions_wake(vr->model, vr->slot, vr);

    ngx_free(task);
}


/* the read is over: the slot says how, and every waiter goes on */

static void
ngx_http_learn_versions_wake(ngx_http_learn_model_t *lm,
    ngx_http_learn_vslot_t *slot, ngx_http_learn_vread_t *vr)
{
    ngx_int_t              rc;
    ngx_queue_t           *q;
    ngx_http_learn_ctx_t  *ctx;

    if (vr->rc == NGX_OK) {
        slot->params = vr->params;
        slot->state = NGX_HTTP_LEARN_VSLOT_READY;
        rc = NGX_OK;

    } else if (vr->remote && vr->rc == NGX_DECLINED) {
        /* versions come only at the newest end: it will not appear */
        ngx_free(vr->params);
        slot->params = NULL;
        slot->state = NGX_HTTP_LEARN_VSLOT_BAD;
        slot->absent = 1;
        slot->failed = ngx_time();
        rc = NGX_DECLINED;

    } else {
        ngx_free(vr->params);
        slot->params = NULL;
        slot->state = NGX_HTTP_LEARN_VSLOT_BAD;
        slot->absent = 0;
        slot->failed = ngx_time();
        rc = NGX_ERROR;

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "learn_model \"%V\": version %L cannot be read, its "
                      "predicts get 500 for %d s: %s", &lm->name, vr->step,
                      NGX_HTTP_LEARN_VERSION_RETRY, vr->err.msg);
    }

    vr->params = NULL;

    while (!ngx_queue_empty(&slot->waiters)) {
        q = ngx_queue_head(&slot->waiters);
        ngx_queue_remove(q);
        ngx_queue_init(q);

        ctx = ngx_queue_data(q, ngx_http_learn_ctx_t, queue);
        ctx->parked = NGX_HTTP_LEARN_PARK_NONE;

        if (rc == NGX_OK) {
            ctx->vparams = slot->params;

        } else if (rc == NGX_DECLINED) {
            /* 404 */

        } else {
            lt_error(&ctx->err, "version %lld of the model cannot be read "
                     "(see the warning in error.log)",
                     (long long) vr->step);
        }

        ctx->version_done(ctx->request, ctx, rc);
    }
}


/* worker exit: the thread pools are stopped by now */

void
ngx_http_learn_versions_exit(ngx_http_learn_model_t *lm)
{
    ngx_uint_t  i;

    if (lm->vcache == NULL) {
        return;
    }

    for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
        if (lm->vcache->slots[i].state != NGX_HTTP_LEARN_VSLOT_LOADING) {
            ngx_free(lm->vcache->slots[i].params);
        }
    }

    ngx_free(lm->vcache);
    lm->vcache = NULL;
}

