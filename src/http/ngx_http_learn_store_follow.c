
/*
 * follow=URL: worker 0 checks the store when the trainer announces a
 * version (ngx_http_learn_store_sub.c), and every
 * NGX_HTTP_LEARN_STORE_POLL ms as well (NGX_HTTP_LEARN_STORE_POLL_SUB
 * while the subscription is up), on a thread of nginx's pool (backing
 * off while Redis fails); it reads
 * a new version, checks it whole with the checkpoint decoder, and swaps
 * it into the zone under the train mutex, as a weights import does, so
 * every worker's predicts move to it at once and never see a mix.
 */


#include "ngx_http_learn_store.h"


static int ngx_http_learn_store_pointer(const char *s, size_t len,
    int64_t *step, int64_t *ms);
#if (NGX_THREADS)
static void ngx_http_learn_store_timer(ngx_event_t *ev);
static void ngx_http_learn_store_follow_thread(void *data, ngx_log_t *log);
static void ngx_http_learn_store_follow_done(ngx_event_t *ev);
static void ngx_http_learn_store_take(ngx_http_learn_store_job_t *job,
    const uint8_t *value, size_t len);
#endif


/* "STEP:MS", each 1-16 digits: what the publish script writes */

static int
ngx_http_learn_store_pointer(const char *s, size_t len, int64_t *step,
    int64_t *ms)
{
    size_t    i, n;
    int64_t   v[2];
    unsigned  part;

    part = 0;
    n = 0;
    v[0] = 0;
    v[1] = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == ':' && part == 0 && n > 0) {
            part = 1;
            n = 0;
            continue;
        }

        if (s[i] < '0' || s[i] > '9' || ++n > 16) {
            return -1;
        }

        v[part] = v[part] * 10 + (s[i] - '0');
    }

    if (part != 1 || n == 0 || v[0] < 1 || v[0] > LT_CHECKPOINT_MAX_STEP) {
        return -1;
    }

    *step = v[0];
    *ms = v[1];

    return 0;
}


#if (NGX_THREADS)

ngx_int_t
ngx_http_learn_store_init_worker(ngx_cycle_t *cycle,
    ngx_http_learn_model_t *lm)
{
    ngx_http_learn_store_t      *st;
    ngx_http_learn_store_job_t  *job;

    st = lm->store;

    job = ngx_calloc(sizeof(ngx_http_learn_store_job_t), cycle->log);
    if (job == NULL) {
        return NGX_ERROR;
    }

    job->lm = lm;
    job->task.ctx = job;
    job->task.handler = ngx_http_learn_store_follow_thread;
    job->task.event.handler = ngx_http_learn_store_follow_done;
    job->task.event.data = job;
    job->task.event.log = cycle->log;

    st->job = job;
    st->timer.handler = ngx_http_learn_store_timer;
    st->timer.data = lm;
    st->timer.log = cycle->log;
    st->timer.cancelable = 1;

    /* the first check at once: a follower without state waits for it */
    ngx_add_timer(&st->timer, 1);

    return ngx_http_learn_store_sub_start(cycle, lm,
                                          ngx_http_learn_store_wake);
}


/* the poll and the subscription stop, before the connection goes */

void
ngx_http_learn_store_follow_exit(ngx_http_learn_model_t *lm)
{
    ngx_http_learn_store_t  *st;

    st = lm->store;

    if (st->timer.timer_set) {
        ngx_del_timer(&st->timer);
    }

    ngx_http_learn_store_sub_stop(lm);
}


/* a publication was announced: check now, or once the running check ends */

void
ngx_http_learn_store_wake(ngx_http_learn_model_t *lm)
{
    ngx_http_learn_store_t  *st;

    st = lm->store;

    if (ngx_exiting || ngx_terminate || lm->shm->retired) {
        return;
    }

    st->announced = 1;

    if (st->busy) {
        st->again = 1;
        return;
    }

    /* backing off after a failure: the subscription says Redis is back */
    if (st->timer.timer_set) {
        ngx_del_timer(&st->timer);
    }

    ngx_http_learn_store_timer(&st->timer);
}


static void
ngx_http_learn_store_timer(ngx_event_t *ev)
{
    ngx_http_learn_model_t  *lm = ev->data;

    ngx_http_learn_store_t  *st;

    st = lm->store;

    if (st->busy || lm->shm->retired) {
        return;
    }

    st->busy = 1;
    st->job->announced = st->announced;
    st->announced = 0;

    if (ngx_thread_task_post(st->pool, &st->job->task) != NGX_OK) {
        st->busy = 0;
        st->announced = st->job->announced;
        ngx_add_timer(ev, st->backoff);
    }
}


/* a pool thread: is there a newer version?  fetch, check, swap */

static void
ngx_http_learn_store_follow_thread(void *data, ngx_log_t *log)
{
    ngx_http_learn_store_job_t  *job = data;

    int64_t                  start;
    size_t                   lens[4];
    const char              *argv[4];
    redisReply              *rep;
    ngx_http_learn_store_t  *st;
    ngx_http_learn_model_t  *lm;

    lm = job->lm;
    st = lm->store;
    job->rc = NGX_OK;
    job->latest = 0;
    job->latest_ms = 0;
    job->took = 0;
    job->refused = 0;
    job->unlocked = 0;
    job->msg[0] = '\0';

    if (ngx_http_learn_store_connect(st, job->msg) != 0) {
        job->rc = NGX_ERROR;
        return;
    }

    start = ngx_http_learn_store_now_ms();

    argv[0] = "GET";
    argv[1] = st->key_latest;
    lens[0] = 3;
    lens[1] = strlen(argv[1]);

    rep = ngx_http_learn_store_command(st, 2, argv, lens, job->msg);
    if (rep == NULL) {
        job->rc = NGX_ERROR;
        return;
    }

    if (rep->type == REDIS_REPLY_NIL) {
        /* nothing published yet */
        freeReplyObject(rep);
        return;
    }

    if (rep->type != REDIS_REPLY_STRING
        || ngx_http_learn_store_pointer(rep->str, rep->len, &job->latest,
                                        &job->latest_ms)
           != 0)
    {
        /* not a version to refuse: a store in a bad state, logged once */
        freeReplyObject(rep);
        snprintf(job->msg, LT_ERR_LEN, "\"%s\" is not \"STEP:MS\"",
                 st->key_latest);
        job->rc = NGX_ERROR;
        job->latest = 0;
        return;
    }

    freeReplyObject(rep);

    if (((ngx_atomic_uint_t) job->latest == lm->shm->store_step
         && lm->shm->ready)
        || job->latest == st->bad_step)
    {
        return;
    }

    /* at most one byte more than a valid value: a larger one is refused */
    snprintf(job->vkey, sizeof(job->vkey), "%s%lld", st->key_v,
             (long long) job->latest);
    snprintf(job->cap, sizeof(job->cap), "%lld", (long long) st->cap);

    argv[0] = "GETRANGE";
    argv[1] = job->vkey;
    argv[2] = "0";
    argv[3] = job->cap;
    lens[0] = 8;
    lens[1] = strlen(argv[1]);
    lens[2] = 1;
    lens[3] = strlen(argv[3]);

    rep = ngx_http_learn_store_command(st, 4, argv, lens, job->msg);
    if (rep == NULL) {
        job->rc = NGX_ERROR;
        return;
    }

    if (rep->type != REDIS_REPLY_STRING || rep->len == 0) {
        /* pruned since the pointer moved on: the next check sees it */
        snprintf(job->msg, LT_ERR_LEN, "version %lld is not in the store",
                 (long long) job->latest);
        freeReplyObject(rep);
        job->rc = NGX_ERROR;
        return;
    }

    if ((size_t) rep->len > st->cap) {
        snprintf(job->msg, LT_ERR_LEN, "the value is larger than a "
                 "checkpoint of this model (%lld bytes)",
                 (long long) st->cap);
        job->refused = 1;

    } else {
        ngx_http_learn_store_take(job, (const uint8_t *) rep->str,
                                  (size_t) rep->len);
    }

    freeReplyObject(rep);

    job->took_ms = (uint64_t) (ngx_http_learn_store_now_ms() - start);
}


/*
 * Checked whole (CRC, layout hash, finite numbers, its step) before the
 * zone is touched; then written to the unpublished buffer and published
 * under the train mutex, as a weights import is, with the trainer's
 * optimizer state, step and loss: every worker's next predict reads it.
 */

static void
ngx_http_learn_store_take(ngx_http_learn_store_job_t *job,
    const uint8_t *value, size_t len)
{
    float                   *back;
    lt_err                   err;
    const uint8_t           *params, *state;
    lt_checkpoint_meta       meta;
    ngx_http_learn_shm_t    *shm;
    ngx_http_learn_model_t  *lm;

    lm = job->lm;
    shm = lm->shm;

    if (lt_checkpoint_decode(&lm->model, value, len, &meta, &params, &state,
                             &err)
        != 0)
    {
        ngx_cpystrn((u_char *) job->msg, (u_char *) err.msg, LT_ERR_LEN);
        job->refused = 1;
        return;
    }

    if (meta.step != job->latest) {
        snprintf(job->msg, LT_ERR_LEN, "its header says step %lld",
                 (long long) meta.step);
        job->refused = 1;
        return;
    }

    job->unlocked = ngx_http_learn_zone_lock_wait(shm);

    if (shm->retired) {
        ngx_shmtx_unlock(&shm->mutex);
        return;
    }

    back = ngx_http_learn_zone_begin_write(shm);
    ngx_memcpy(back, params, shm->param_count * sizeof(float));
    ngx_memcpy(ngx_http_learn_zone_state(shm, shm->version + 1), state,
               shm->state_count * sizeof(float));

    shm->step = (ngx_atomic_uint_t) meta.step;
    shm->optim_step = (ngx_atomic_uint_t) meta.optim_step;
    shm->loss = (float) meta.loss;
    shm->loss_avg = shm->loss;

    ngx_http_learn_zone_publish(shm);

    shm->store_step = (ngx_atomic_uint_t) meta.step;
    shm->ready = 1;

    ngx_shmtx_unlock(&shm->mutex);

    job->took = 1;
    job->step = meta.step;
}


static void
ngx_http_learn_store_follow_done(ngx_event_t *ev)
{
    ngx_http_learn_store_job_t  *job = ev->data;

    int64_t                  lag;
    ngx_http_learn_shm_t    *shm;
    ngx_http_learn_store_t  *st;
    ngx_http_learn_model_t  *lm;

    lm = job->lm;
    st = lm->store;
    shm = lm->shm;
    st->busy = 0;

    if (job->unlocked) {
        ngx_http_learn_zone_lock_unlocked(lm, job->unlocked, ev->log);
    }

    if (job->latest > 0) {
        shm->store_latest = (ngx_atomic_uint_t) job->latest;
    }

    ngx_http_learn_store_outcome(lm, job->rc, job->msg, ev->log);

    if (job->refused) {
        (void) ngx_atomic_fetch_add(&shm->store_refused, 1);

        if (job->latest != st->bad_step) {
            ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                          "learn_model \"%V\": refused version %L from %V: "
                          "%s; step %uA keeps serving",
                          &lm->name, job->latest, &st->url, job->msg,
                          shm->step);
            st->bad_step = job->latest;
        }
    }

    if (job->took) {
        lag = ngx_http_learn_store_now_ms() - job->latest_ms;

        (void) ngx_atomic_fetch_add(&shm->store_transfers, 1);
        shm->store_time = ngx_time();
        shm->store_lag_ms = (ngx_atomic_uint_t) ngx_max(lag, 0);
        st->bad_step = 0;

        ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                      "learn_model \"%V\": serving version %L from %V "
                      "(%s, taken in %uL ms, %L ms after its publication)",
                      &lm->name, job->step, &st->url,
                      job->announced ? "announced" : "polled", job->took_ms,
                      ngx_max(lag, 0));
    }

    if (ngx_exiting || ngx_terminate || shm->retired) {
        return;
    }

    if (st->again) {
        st->again = 0;
        ngx_add_timer(&st->timer, 1);
        return;
    }

    ngx_add_timer(&st->timer, st->down ? st->backoff
                              : shm->store_subscribed
                              ? NGX_HTTP_LEARN_STORE_POLL_SUB
                              : NGX_HTTP_LEARN_STORE_POLL);
}

#endif


/*
 * ?version=STEP on a follower, for a version it does not keep itself:
 * version STEP as the store holds it, read on a pool thread (any worker,
 * ngx_http_learn_versions.c) on a connection of its own (worker 0's is
 * its check task's), and checked as a new version is (at most cap + 1
 * bytes, the decoder's CRC, layout hash and finite numbers, the step
 * its key names).  NGX_OK: params (P floats) has it; NGX_DECLINED: the
 * store has no such version; NGX_ERROR: err says why.
 */

ngx_int_t
ngx_http_learn_store_read_version(ngx_http_learn_model_t *lm, int64_t step,
    float *params, lt_err *err)
{
    char                     vkey[256], cap[24], msg[LT_ERR_LEN];
    size_t                   lens[4];
    ngx_int_t                rc;
    const char              *argv[4];
    redisReply              *rep;
    redisContext            *ctx;
    struct timeval           tv;
    const uint8_t           *p, *state;
    lt_checkpoint_meta       meta;
    ngx_http_learn_store_t  *st;

    st = lm->store;

    if (ngx_http_learn_store_dial(st, &ctx, msg) != 0) {
        lt_error(err, "store %.*s: %s", (int) st->url.len, st->url.data, msg);
        return NGX_ERROR;
    }

    tv.tv_sec = NGX_HTTP_LEARN_STORE_COMMAND_S;
    tv.tv_usec = 0;
    (void) redisSetTimeout(ctx, tv);

    if (ngx_http_learn_store_auth(st, ctx, msg) != 0) {
        redisFree(ctx);
        lt_error(err, "store %.*s: %s", (int) st->url.len, st->url.data, msg);
        return NGX_ERROR;
    }

    snprintf(vkey, sizeof(vkey), "%s%lld", st->key_v, (long long) step);
    snprintf(cap, sizeof(cap), "%lld", (long long) st->cap);

    argv[0] = "GETRANGE";
    argv[1] = vkey;
    argv[2] = "0";
    argv[3] = cap;
    lens[0] = 8;
    lens[1] = strlen(vkey);
    lens[2] = 1;
    lens[3] = strlen(cap);

    rep = redisCommandArgv(ctx, 4, argv, lens);

    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        lt_error(err, "store %.*s: GETRANGE: %s", (int) st->url.len,
                 st->url.data, rep ? "an error reply" : ctx->errstr);
        if (rep) {
            freeReplyObject(rep);
        }
        redisFree(ctx);
        return NGX_ERROR;
    }

    redisFree(ctx);

    rc = NGX_ERROR;

    if (rep->type != REDIS_REPLY_STRING || rep->len == 0) {
        /* GETRANGE of a missing key is "": pruned, or never published */
        rc = NGX_DECLINED;

    } else if ((size_t) rep->len > st->cap) {
        lt_error(err, "version %lld in the store is larger than a "
                 "checkpoint of this model", (long long) step);

    } else if (lt_checkpoint_decode(&lm->model, (const uint8_t *) rep->str,
                                    rep->len, &meta, &p, &state, err)
               != 0)
    {
        /* err says why */

    } else if (meta.step != step) {
        lt_error(err, "version %lld in the store: its header says step %lld",
                 (long long) step, (long long) meta.step);

    } else {
        ngx_memcpy(params, p, lt_model_values(&lm->model) * sizeof(float));
        rc = NGX_OK;
    }

    freeReplyObject(rep);

    return rc;
}
