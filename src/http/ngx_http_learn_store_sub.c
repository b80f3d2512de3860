
/*
 * follow=URL: the subscription to PREFIX:{NAME}:published, so that a
 * follower checks the store as soon as the trainer announces a version
 * instead of at its next poll.
 *
 * Debian 12's hiredis (0.14) cannot resume a read after a timeout, and
 * its async API resolves the host name on the caller's thread; so the
 * subscription is a thread of worker 0's own, blocked in a SUBSCRIBE
 * read without a read timeout, and the event loop never waits on it.
 * A message only wakes the event loop (a byte in a pipe that is an
 * nginx connection), which then runs the usual check on the thread
 * pool: what the message says is never trusted, the check reads the
 * pointer and the version and checks them as a poll does.  The poll
 * stays as the fallback (every NGX_HTTP_LEARN_STORE_POLL_SUB ms while
 * subscribed, every NGX_HTTP_LEARN_STORE_POLL ms otherwise).
 *
 * Exit: the worker sets "stop", shuts the subscription's socket down
 * (the blocked read returns at once), wakes a backoff wait, and joins
 * the thread; the thread holds the lock whenever it publishes or drops
 * its socket, so the worker never shuts down a descriptor that was
 * closed (and possibly reused).  Nothing of it outlives the worker.
 */


#include "ngx_http_learn_store.h"

#if (NGX_THREADS)

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>


struct ngx_http_learn_store_sub_s {
    ngx_http_learn_model_t        *lm;
    pthread_t                      tid;
    pthread_mutex_t                mutex;
    pthread_cond_t                 cond;     /* wakes a backoff at stop */
    int                            fd;       /* under mutex; -1: none */
    ngx_uint_t                     stop;     /* under mutex */
    int                            wake[2];  /* thread -> event loop */
    ngx_connection_t              *c;        /* wake[0] on the loop */
    ngx_http_learn_store_wake_pt   announce; /* on the loop: check now */
};


static void *ngx_http_learn_store_sub_thread(void *data);
static ngx_int_t ngx_http_learn_store_sub_listen(
    ngx_http_learn_store_sub_t *sub, redisContext *ctx);
static ngx_uint_t ngx_http_learn_store_sub_wait(
    ngx_http_learn_store_sub_t *sub, ngx_msec_t ms);
static void ngx_http_learn_store_sub_notify(ngx_http_learn_store_sub_t *sub);
static void ngx_http_learn_store_sub_read(ngx_event_t *rev);
static ngx_uint_t ngx_http_learn_store_sub_message(redisReply *rep,
    const char *channel);


ngx_int_t
ngx_http_learn_store_sub_start(ngx_cycle_t *cycle, ngx_http_learn_model_t *lm,
    ngx_http_learn_store_wake_pt wake)
{
    int                          err;
    sigset_t                     all, old;
    ngx_connection_t            *c;
    ngx_http_learn_store_sub_t  *sub;

    sub = ngx_calloc(sizeof(ngx_http_learn_store_sub_t), cycle->log);
    if (sub == NULL) {
        return NGX_ERROR;
    }

    sub->lm = lm;
    sub->announce = wake;
    sub->fd = -1;

    if (pipe(sub->wake) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "learn_model \"%V\": pipe() failed", &lm->name);
        ngx_free(sub);
        return NGX_ERROR;
    }

    if (ngx_nonblocking(sub->wake[0]) == -1
        || ngx_nonblocking(sub->wake[1]) == -1)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "learn_model \"%V\": " ngx_nonblocking_n " failed",
                      &lm->name);
        goto failed;
    }

    c = ngx_get_connection(sub->wake[0], cycle->log);
    if (c == NULL) {
        goto failed;
    }

    c->data = sub;
    c->read->handler = ngx_http_learn_store_sub_read;
    c->read->log = cycle->log;
    c->write->log = cycle->log;
    sub->c = c;

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_free_connection(c);
        sub->c = NULL;
        goto failed;
    }

    (void) pthread_mutex_init(&sub->mutex, NULL);
    (void) pthread_cond_init(&sub->cond, NULL);

    /*
     * the thread takes no signals: they are the event loop's (a signal
     * handled here would not interrupt its epoll_wait)
     */
    sigfillset(&all);
    (void) pthread_sigmask(SIG_BLOCK, &all, &old);
    err = pthread_create(&sub->tid, NULL, ngx_http_learn_store_sub_thread,
                         sub);
    (void) pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (err != 0) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, err,
                      "learn_model \"%V\": pthread_create() failed; "
                      "following %V by polling only", &lm->name,
                      &lm->store->url);
        ngx_close_connection(c);
        (void) close(sub->wake[1]);
        (void) pthread_mutex_destroy(&sub->mutex);
        (void) pthread_cond_destroy(&sub->cond);
        ngx_free(sub);
        return NGX_OK;
    }

    lm->store->sub = sub;

    return NGX_OK;

failed:

    (void) close(sub->wake[0]);
    (void) close(sub->wake[1]);
    ngx_free(sub);

    return NGX_ERROR;
}


void
ngx_http_learn_store_sub_stop(ngx_http_learn_model_t *lm)
{
    ngx_http_learn_store_sub_t  *sub;

    sub = lm->store->sub;

    if (sub == NULL) {
        return;
    }

    (void) pthread_mutex_lock(&sub->mutex);

    sub->stop = 1;

    if (sub->fd != -1) {
        (void) shutdown(sub->fd, SHUT_RDWR);
    }

    (void) pthread_cond_signal(&sub->cond);
    (void) pthread_mutex_unlock(&sub->mutex);

    /* at most a connect in progress: NGX_HTTP_LEARN_STORE_CONNECT_S */
    (void) pthread_join(sub->tid, NULL);

    ngx_close_connection(sub->c);
    (void) close(sub->wake[1]);
    (void) pthread_mutex_destroy(&sub->mutex);
    (void) pthread_cond_destroy(&sub->cond);

    ngx_free(sub);
    lm->store->sub = NULL;
}


/* the thread: connect, subscribe, listen; again after a backoff */

static void *
ngx_http_learn_store_sub_thread(void *data)
{
    ngx_http_learn_store_sub_t  *sub = data;

    char                     msg[LT_ERR_LEN];
    ngx_uint_t               stop;
    ngx_msec_t               backoff;
    redisContext            *ctx;
    ngx_http_learn_store_t  *st;

    st = sub->lm->store;
    backoff = NGX_HTTP_LEARN_STORE_BACKOFF_MIN;

    for ( ;; ) {

        /* failures are the poll's to log: this side stays quiet */
        if (ngx_http_learn_store_dial(st, &ctx, msg) == 0) {

            (void) pthread_mutex_lock(&sub->mutex);
            stop = sub->stop;
            if (!stop) {
                sub->fd = ctx->fd;
            }
            (void) pthread_mutex_unlock(&sub->mutex);

            if (stop) {
                redisFree(ctx);
                break;
            }

            if (ngx_http_learn_store_sub_listen(sub, ctx) == NGX_OK) {
                /* it was subscribed: the next outage starts afresh */
                backoff = NGX_HTTP_LEARN_STORE_BACKOFF_MIN;
            }

            (void) pthread_mutex_lock(&sub->mutex);
            sub->fd = -1;
            (void) pthread_mutex_unlock(&sub->mutex);

            redisFree(ctx);
        }

        if (ngx_http_learn_store_sub_wait(sub, backoff)) {
            break;
        }

        backoff = ngx_min(backoff * 2, NGX_HTTP_LEARN_STORE_BACKOFF_MAX);
    }

    return NULL;
}


/*
 * AUTH, SUBSCRIBE, then one read after another without a timeout until
 * the connection fails or is shut down.  NGX_OK: it was subscribed.
 */

static ngx_int_t
ngx_http_learn_store_sub_listen(ngx_http_learn_store_sub_t *sub,
    redisContext *ctx)
{
    char                     msg[LT_ERR_LEN];
    void                    *r;
    size_t                   lens[2];
    const char              *argv[2];
    redisReply              *rep;
    struct timeval           tv;
    ngx_http_learn_shm_t    *shm;
    ngx_http_learn_store_t  *st;

    st = sub->lm->store;
    shm = sub->lm->shm;

    tv.tv_sec = NGX_HTTP_LEARN_STORE_COMMAND_S;
    tv.tv_usec = 0;
    (void) redisSetTimeout(ctx, tv);
    (void) redisEnableKeepAlive(ctx);

    if (ngx_http_learn_store_auth(st, ctx, msg) != 0) {
        return NGX_ERROR;
    }

    argv[0] = "SUBSCRIBE";
    argv[1] = st->channel;
    lens[0] = 9;
    lens[1] = strlen(st->channel);

    rep = redisCommandArgv(ctx, 2, argv, lens);

    if (rep == NULL
        || rep->type != REDIS_REPLY_ARRAY
        || rep->elements != 3
        || rep->element[0]->type != REDIS_REPLY_STRING
        || rep->element[0]->len != 9
        || ngx_strncasecmp((u_char *) rep->element[0]->str,
                           (u_char *) "subscribe", 9) != 0)
    {
        if (rep) {
            freeReplyObject(rep);
        }

        return NGX_ERROR;
    }

    freeReplyObject(rep);

    /* from now on a read waits as long as Redis is silent */
    tv.tv_sec = 0;
    (void) redisSetTimeout(ctx, tv);

    (void) ngx_atomic_fetch_add(&shm->store_subscribed, 1);

    /* what was published before the subscription: one check catches up */
    ngx_http_learn_store_sub_notify(sub);

    for ( ;; ) {
        r = NULL;

        if (redisGetReply(ctx, &r) != REDIS_OK || r == NULL) {
            break;
        }

        if (ngx_http_learn_store_sub_message(r, st->channel)) {
            (void) ngx_atomic_fetch_add(&shm->store_notices, 1);
            ngx_http_learn_store_sub_notify(sub);
        }

        freeReplyObject(r);
    }

    (void) ngx_atomic_fetch_add(&shm->store_subscribed, -1);

    return NGX_OK;
}


/* ["message", CHANNEL, payload]: only the shape; the check reads Redis */

static ngx_uint_t
ngx_http_learn_store_sub_message(redisReply *rep, const char *channel)
{
    size_t  len;

    len = strlen(channel);

    return rep->type == REDIS_REPLY_ARRAY
           && rep->elements == 3
           && rep->element[0]->type == REDIS_REPLY_STRING
           && rep->element[0]->len == 7
           && ngx_strncmp(rep->element[0]->str, "message", 7) == 0
           && rep->element[1]->type == REDIS_REPLY_STRING
           && (size_t) rep->element[1]->len == len
           && ngx_strncmp(rep->element[1]->str, channel, len) == 0;
}


/* a backoff that "stop" ends at once: 1 when stopped */

static ngx_uint_t
ngx_http_learn_store_sub_wait(ngx_http_learn_store_sub_t *sub, ngx_msec_t ms)
{
    ngx_uint_t       stop;
    struct timespec  ts;

    (void) clock_gettime(CLOCK_REALTIME, &ts);

    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long) (ms % 1000) * 1000000;

    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }

    (void) pthread_mutex_lock(&sub->mutex);

    while (!sub->stop) {
        if (pthread_cond_timedwait(&sub->cond, &sub->mutex, &ts) != 0) {
            break;
        }
    }

    stop = sub->stop;

    (void) pthread_mutex_unlock(&sub->mutex);

    return stop;
}


/* one byte wakes the event loop; a full pipe has woken it already */

static void
ngx_http_learn_store_sub_notify(ngx_http_learn_store_sub_t *sub)
{
    u_char  b;

    b = 1;

    if (write(sub->wake[1], &b, 1) == -1) {
        /* EAGAIN: bytes are waiting to be read */
    }
}


/* the event loop: drain the pipe, then check the store now */

static void
ngx_http_learn_store_sub_read(ngx_event_t *rev)
{
    u_char                       buf[64];
    ssize_t                      n;
    ngx_connection_t            *c;
    ngx_http_learn_store_sub_t  *sub;

    c = rev->data;
    sub = c->data;

    do {
        n = read(c->fd, buf, sizeof(buf));
    } while (n > 0);

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rev->log, 0,
                   "learn_model \"%V\": a version was announced",
                   &sub->lm->name);

    sub->announce(sub->lm);
}

#endif
