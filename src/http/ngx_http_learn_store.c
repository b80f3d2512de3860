
/*
 * Model versions replicated through Redis: learn_model ... store=URL
 * publishes every checkpoint version; learn_model ... follow=URL serves
 * the newest version published there.  This file: the URL, the
 * connection, the trainer's publication, outages, the request-side
 * checks and status; the follower's checks are in
 * ngx_http_learn_store_follow.c.
 *
 * Keys, for PREFIX (default "learn") and model NAME; the braces are a
 * Redis Cluster hash tag, so every key of one model is in one slot (the
 * publish script touches several) and models spread over the slots:
 *
 *   PREFIX:{NAME}:v:STEP     the checkpoint bytes (lt_checkpoint format)
 *                            of version STEP: SET NX, never overwritten
 *   PREFIX:{NAME}:versions   sorted set of the kept steps (score = step)
 *   PREFIX:{NAME}:latest     "STEP:MS": the newest step, and when the
 *                            trainer published it (ms since the epoch)
 *   PREFIX:{NAME}:published  pub/sub channel: "STEP:MS" at each new one
 *
 * Every Redis call (hiredis, blocking, with timeouts) runs on a thread of
 * nginx's thread pool, never on the event loop: the trainer's from the
 * checkpoint writer's task, right after the file is on disk; a
 * follower's from a task that worker 0 posts every
 * NGX_HTTP_LEARN_STORE_POLL ms (backing off while Redis is down).  A
 * follower checks a value completely (size, CRC, layout hash, its step)
 * with the checkpoint decoder before anything touches the zone, then
 * publishes it under the train mutex like a weights import does, so
 * every worker's predicts move to it at once and never see a mix.
 *
 * Unlike the checkpoint writer, these threads allocate: hiredis mallocs
 * its replies (the value of a version: its size, once per new version).
 */


#include "ngx_http_learn.h"

#include <sys/time.h>


#include "ngx_http_learn_store.h"



/*
 * The trainer's publication, one round trip, atomic: the version
 * (never overwritten), the set of kept steps, the pointer (only ever
 * forward) with its notification, then pruning beyond the newest KEEP
 * steps, never a protected one (learn_candidate) nor the pointed-to one.
 *
 * KEYS: version, latest, versions.  ARGV: value, step, channel, keep,
 * version key prefix, "STEP:MS", protected steps...
 * Returns {1 if the version is new, versions pruned}.
 */
static const char  ngx_http_learn_store_script[] =
    "local step = tonumber(ARGV[2])\n"
    "local new = redis.call('SET', KEYS[1], ARGV[1], 'NX') and 1 or 0\n"
    "redis.call('ZADD', KEYS[3], step, ARGV[2])\n"
    "local cur = redis.call('GET', KEYS[2])\n"
    "local curstep = cur and tonumber(string.match(cur, '^(%d+):')) or -1\n"
    "if curstep < step then\n"
    "  redis.call('SET', KEYS[2], ARGV[6])\n"
    "  redis.call('PUBLISH', ARGV[3], ARGV[6])\n"
    "  curstep = step\n"
    "end\n"
    "local keep = tonumber(ARGV[4])\n"
    "local prot = {}\n"
    "for i = 7, #ARGV do prot[ARGV[i]] = true end\n"
    "local n, gone = 0, 0\n"
    "for _, s in ipairs(redis.call('ZREVRANGE', KEYS[3], 0,"
    " keep + #ARGV + 64)) do\n"
    "  if not prot[s] then\n"
    "    n = n + 1\n"
    "    if n > keep and tonumber(s) ~= curstep then\n"
    "      redis.call('DEL', ARGV[5] .. s)\n"
    "      redis.call('ZREM', KEYS[3], s)\n"
    "      gone = gone + 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {new, gone}\n";


static ngx_int_t ngx_http_learn_store_parse_url(ngx_http_learn_store_t *st,
    ngx_pool_t *pool, u_char *p, u_char *last, u_char *prefix,
    size_t *prefix_len, const char **why);


/*
 * learn_model ... store=URL | follow=URL: NGX_OK (taken), NGX_DECLINED
 * (another parameter), NGX_ERROR (said why).  The URL is never echoed:
 * it may hold a password.
 */

ngx_int_t
ngx_http_learn_store_parse(ngx_conf_t *cf, ngx_http_learn_model_t *lm,
    ngx_str_t *value)
{
    u_char                  *p, *last, *u;
    size_t                   prefix_len;
    ngx_uint_t               follow;
    const char              *why;
    u_char                   prefix[65];
    ngx_http_learn_store_t  *st;

    if (value->len > 6 && ngx_strncmp(value->data, "store=", 6) == 0) {
        follow = 0;
        p = value->data + 6;

    } else if (value->len > 7 && ngx_strncmp(value->data, "follow=", 7) == 0)
    {
        follow = 1;
        p = value->data + 7;

    } else {
        return NGX_DECLINED;
    }

    if (lm->store) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_model \"%V\": one store= or follow= only "
                           "(an instance either publishes a model or "
                           "follows it)", &lm->name);
        return NGX_ERROR;
    }

#if !(NGX_THREADS)
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "learn_model \"%V\": %s needs nginx built with "
                       "threads", &lm->name, follow ? "follow=" : "store=");
    return NGX_ERROR;
#endif

    st = ngx_pcalloc(cf->pool, sizeof(ngx_http_learn_store_t));
    if (st == NULL) {
        return NGX_ERROR;
    }

    st->follow = follow;
    last = value->data + value->len;

    if (last - p > 8 && ngx_strncmp(p, "rediss://", 9) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_model \"%V\": %s: TLS (rediss://) is not "
                           "supported by this build's hiredis",
                           &lm->name, follow ? "follow=" : "store=");
        return NGX_ERROR;
    }

    if (last - p < 9 || ngx_strncmp(p, "redis://", 8) != 0) {
        why = "it must start with redis://";
        goto invalid;
    }

    if (ngx_http_learn_store_parse_url(st, cf->pool, p + 8, last, prefix,
                                       &prefix_len, &why)
        != NGX_OK)
    {
        goto invalid;
    }

    /* redis://HOST:PORT/PREFIX, for logs and learn_status */
    u = ngx_pnalloc(cf->pool, sizeof("redis://:65535/") + ngx_strlen(st->host)
                              + prefix_len);
    if (u == NULL) {
        return NGX_ERROR;
    }

    st->url.data = u;
    st->url.len = ngx_sprintf(u, "redis://%s:%d/%*s", st->host, st->port,
                              prefix_len, prefix)
                  - u;

    ngx_sprintf((u_char *) st->key_latest, "%*s:{%V}:latest%Z",
                prefix_len, prefix, &lm->name);
    ngx_sprintf((u_char *) st->key_versions, "%*s:{%V}:versions%Z",
                prefix_len, prefix, &lm->name);
    ngx_sprintf((u_char *) st->key_v, "%*s:{%V}:v:%Z",
                prefix_len, prefix, &lm->name);
    ngx_sprintf((u_char *) st->channel, "%*s:{%V}:published%Z",
                prefix_len, prefix, &lm->name);

#if (NGX_THREADS)
    /* the follower's checks go to nginx's "default" pool */
    st->pool = ngx_thread_pool_add(cf, NULL);
    if (st->pool == NULL) {
        return NGX_ERROR;
    }
#endif

    st->backoff = NGX_HTTP_LEARN_STORE_BACKOFF_MIN;
    lm->store = st;
    lm->follow = follow;
    lm->store_url = st->url;

    return NGX_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "learn_model \"%V\": invalid %s URL: %s (the form is "
                       "redis://[[USER]:PASSWORD@]HOST[:PORT][/PREFIX])",
                       &lm->name, follow ? "follow=" : "store=", why);

    return NGX_ERROR;
}


/* after "redis://": [[USER]:PASSWORD@]HOST[:PORT][/PREFIX] */

static ngx_int_t
ngx_http_learn_store_parse_url(ngx_http_learn_store_t *st, ngx_pool_t *pool,
    u_char *p, u_char *last, u_char *prefix, size_t *prefix_len,
    const char **why)
{
    u_char     *at, *colon, *slash, *host, *q;
    ngx_int_t   port;

    /* the credentials end at the last "@" (a password may hold one) */
    at = NULL;

    for (q = p; q < last; q++) {
        if (*q == '@') {
            at = q;
        }
    }

    if (at) {
        colon = ngx_strlchr(p, at, ':');

        if (colon == NULL || colon + 1 == at) {
            *why = "credentials must be [USER]:PASSWORD";
            return NGX_ERROR;
        }

        for (q = p; q < at; q++) {
            if (*q <= ' ' || *q == 0x7f) {
                *why = "credentials hold a space or a control character";
                return NGX_ERROR;
            }
        }

        if (colon > p) {
            st->user = ngx_pcalloc(pool, colon - p + 1);
            if (st->user == NULL) {
                *why = "no memory";
                return NGX_ERROR;
            }

            ngx_memcpy(st->user, p, colon - p);
        }

        st->pass = ngx_pcalloc(pool, at - colon);
        if (st->pass == NULL) {
            *why = "no memory";
            return NGX_ERROR;
        }

        ngx_memcpy(st->pass, colon + 1, at - colon - 1);
        p = at + 1;
    }

    slash = ngx_strlchr(p, last, '/');
    if (slash == NULL) {
        slash = last;
    }

    host = p;
    colon = ngx_strlchr(p, slash, ':');

    for (q = host; q < (colon ? colon : slash); q++) {
        if (!(isalnum(*q) || *q == '.' || *q == '-')) {
            *why = "the host must be a name or an IPv4 address";
            return NGX_ERROR;
        }
    }

    if (q == host || q - host > 253) {
        *why = "the host must be a name or an IPv4 address";
        return NGX_ERROR;
    }

    st->host = ngx_pcalloc(pool, q - host + 1);
    if (st->host == NULL) {
        *why = "no memory";
        return NGX_ERROR;
    }

    ngx_memcpy(st->host, host, q - host);

    st->port = 6379;

    if (colon) {
        port = ngx_atoi(colon + 1, slash - colon - 1);
        if (port < 1 || port > 65535) {
            *why = "the port must be 1-65535";
            return NGX_ERROR;
        }

        st->port = (int) port;
    }

    if (slash == last) {
        ngx_memcpy(prefix, "learn", 5);
        *prefix_len = 5;
        return NGX_OK;
    }

    p = slash + 1;

    if (p == last || last - p > 64) {
        *why = "the prefix must be 1-64 characters";
        return NGX_ERROR;
    }

    for (q = p; q < last; q++) {
        if (!(isalnum(*q) || *q == '_' || *q == '-' || *q == '.'
              || *q == ':'))
        {
            *why = "the prefix may hold letters, digits, \"_\", \"-\", "
                   "\".\" and \":\"";
            return NGX_ERROR;
        }
    }

    ngx_memcpy(prefix, p, last - p);
    *prefix_len = last - p;

    return NGX_OK;
}


/* after the model is built: the largest value a follower reads */

void
ngx_http_learn_store_sized(ngx_http_learn_model_t *lm)
{
    char  name[65];

    if (lm->store == NULL) {
        return;
    }

    ngx_memcpy(name, lm->name.data, lm->name.len);
    name[lm->name.len] = '\0';

    lm->store->cap = lt_checkpoint_size(&lm->model, name);
}


/* ---- the connection (pool threads, or the event loop at exit) -------- */

int
ngx_http_learn_store_connect(ngx_http_learn_store_t *st, char *msg)
{
    struct timeval  tv;

    if (st->rc) {
        return 0;
    }

    if (ngx_http_learn_store_dial(st, &st->rc, msg) != 0) {
        return -1;
    }

    tv.tv_sec = NGX_HTTP_LEARN_STORE_COMMAND_S;
    tv.tv_usec = 0;
    (void) redisSetTimeout(st->rc, tv);
    (void) redisEnableKeepAlive(st->rc);

    if (ngx_http_learn_store_auth(st, st->rc, msg) != 0) {
        redisFree(st->rc);
        st->rc = NULL;
        return -1;
    }

    return 0;
}


/* a TCP connection with the connect timeout: 0, or -1 with msg set */

int
ngx_http_learn_store_dial(ngx_http_learn_store_t *st, redisContext **ctx,
    char *msg)
{
    struct timeval  tv;

    tv.tv_sec = NGX_HTTP_LEARN_STORE_CONNECT_S;
    tv.tv_usec = 0;

    *ctx = redisConnectWithTimeout(st->host, st->port, tv);

    if (*ctx == NULL) {
        snprintf(msg, LT_ERR_LEN, "no memory for a connection");
        return -1;
    }

    if ((*ctx)->err) {
        snprintf(msg, LT_ERR_LEN, "connect: %s", (*ctx)->errstr);
        redisFree(*ctx);
        *ctx = NULL;
        return -1;
    }

    return 0;
}


/* AUTH when the URL has a password: 0, or -1 with msg set */

int
ngx_http_learn_store_auth(ngx_http_learn_store_t *st, redisContext *ctx,
    char *msg)
{
    int           argc;
    size_t        lens[3];
    const char   *argv[3], *e;
    redisReply   *rep;

    if (st->pass == NULL) {
        return 0;
    }

    argc = 0;
    argv[argc] = "AUTH";
    lens[argc++] = 4;

    if (st->user) {
        argv[argc] = st->user;
        lens[argc++] = strlen(st->user);
    }

    argv[argc] = st->pass;
    lens[argc++] = strlen(st->pass);

    rep = redisCommandArgv(ctx, argc, argv, lens);

    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        /*
         * only the error's code (WRONGPASS, ERR, NOAUTH): some servers'
         * messages quote what was sent
         */
        if (rep == NULL) {
            snprintf(msg, LT_ERR_LEN, "AUTH: %s", ctx->errstr);

        } else {
            e = rep->str;
            snprintf(msg, LT_ERR_LEN, "AUTH refused (%.*s)",
                     (int) strcspn(e, " "), e);
        }

        if (rep) {
            freeReplyObject(rep);
        }

        return -1;
    }

    freeReplyObject(rep);

    return 0;
}


/*
 * A reply, or NULL with msg set: an I/O error closes the connection (the
 * next attempt reconnects), an error reply leaves it open.
 */

redisReply *
ngx_http_learn_store_command(ngx_http_learn_store_t *st, int argc,
    const char **argv, const size_t *lens, char *msg)
{
    redisReply  *rep;

    rep = redisCommandArgv(st->rc, argc, argv, lens);

    if (rep == NULL) {
        snprintf(msg, LT_ERR_LEN, "%s: %s", argv[0],
                 st->rc->errstr[0] ? st->rc->errstr : "connection lost");
        redisFree(st->rc);
        st->rc = NULL;
        return NULL;
    }

    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(msg, LT_ERR_LEN, "%s: %.*s", argv[0],
                 (int) ngx_min(rep->len, 120), rep->str);
        freeReplyObject(rep);
        return NULL;
    }

    return rep;
}


int64_t
ngx_http_learn_store_now_ms(void)
{
    struct timeval  tv;

    (void) gettimeofday(&tv, NULL);

    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


/* ---- store=: the trainer ------------------------------------------- */

void
ngx_http_learn_store_prepare(ngx_http_learn_model_t *lm,
    ngx_http_learn_store_op_t *op, ngx_uint_t keep, int64_t *protect,
    ngx_uint_t nprotect)
{
    ngx_uint_t  i;

    /* the newest "keep" kept, as on disk; without checkpoint_keep one */
    op->keep = keep ? keep : 1;
    op->nprotect = nprotect;

    for (i = 0; i < nprotect; i++) {
        op->protect[i] = protect[i];
    }

    op->rc = NGX_ABORT;
    op->msg[0] = '\0';
}


/*
 * The checkpoint thread, with the file written: publish its bytes as
 * version "step".  op->rc: NGX_OK (new), NGX_DECLINED (the version was
 * there: never overwritten), NGX_DONE (step 0 is no version), NGX_ERROR
 * (op->msg says why).
 */

void
ngx_http_learn_store_publish(ngx_http_learn_model_t *lm,
    ngx_http_learn_store_op_t *op, const uint8_t *buf, size_t len,
    int64_t step)
{
    int                      argc;
    ngx_uint_t               i;
    redisReply              *rep;
    ngx_http_learn_store_t  *st;
    const char              *argv[12 + NGX_HTTP_LEARN_MAX_VERSIONS];
    size_t                   lens[12 + NGX_HTTP_LEARN_MAX_VERSIONS];

    st = lm->store;

    if (step <= 0) {
        op->rc = NGX_DONE;
        return;
    }

    if (ngx_http_learn_store_connect(st, op->msg) != 0) {
        op->rc = NGX_ERROR;
        return;
    }

    snprintf(op->vkey, sizeof(op->vkey), "%s%lld", st->key_v,
             (long long) step);
    snprintf(op->num[0], sizeof(op->num[0]), "%lld", (long long) step);
    snprintf(op->num[1], sizeof(op->num[1]), "%u", (unsigned) op->keep);
    snprintf(op->pointer, sizeof(op->pointer), "%lld:%lld",
             (long long) step, (long long) ngx_http_learn_store_now_ms());

    argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = ngx_http_learn_store_script;
    argv[argc++] = "3";
    argv[argc++] = op->vkey;
    argv[argc++] = st->key_latest;
    argv[argc++] = st->key_versions;
    argv[argc++] = (const char *) buf;
    argv[argc++] = op->num[0];
    argv[argc++] = st->channel;
    argv[argc++] = op->num[1];
    argv[argc++] = st->key_v;
    argv[argc++] = op->pointer;

    for (i = 0; i < op->nprotect; i++) {
        snprintf(op->num[2 + i], sizeof(op->num[0]), "%lld",
                 (long long) op->protect[i]);
        argv[argc++] = op->num[2 + i];
    }

    for (i = 0; i < (ngx_uint_t) argc; i++) {
        lens[i] = strlen(argv[i]);
    }

    lens[6] = len;

    rep = ngx_http_learn_store_command(st, argc, argv, lens, op->msg);
    if (rep == NULL) {
        op->rc = NGX_ERROR;
        return;
    }

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2
        || rep->element[0]->type != REDIS_REPLY_INTEGER
        || rep->element[1]->type != REDIS_REPLY_INTEGER)
    {
        snprintf(op->msg, LT_ERR_LEN, "unexpected reply to the publish "
                 "script");
        op->rc = NGX_ERROR;

    } else {
        op->rc = rep->element[0]->integer ? NGX_OK : NGX_DECLINED;
        op->pruned = (ngx_uint_t) rep->element[1]->integer;
    }

    freeReplyObject(rep);
}


/* the event loop, the checkpoint task done: counters and the log */

void
ngx_http_learn_store_published(ngx_http_learn_model_t *lm,
    ngx_http_learn_store_op_t *op, ngx_atomic_uint_t version, int64_t step,
    ngx_log_t *log)
{
    ngx_http_learn_shm_t  *shm;

    shm = lm->shm;

    if (op->rc == NGX_ABORT) {
        /* the file was not written: nothing was tried */
        return;
    }

    ngx_http_learn_store_outcome(lm, op->rc == NGX_ERROR ? NGX_ERROR : NGX_OK,
                                 op->msg, log);

    if (op->rc == NGX_ERROR) {
        /* retried by the next interval's write (store_version behind) */
        return;
    }

    shm->store_version = version;

    if (op->rc == NGX_DONE) {
        return;
    }

    if ((ngx_atomic_uint_t) step > shm->store_step) {
        shm->store_step = (ngx_atomic_uint_t) step;
        shm->store_latest = (ngx_atomic_uint_t) step;
    }

    if (op->rc == NGX_OK) {
        (void) ngx_atomic_fetch_add(&shm->store_transfers, 1);
        shm->store_time = ngx_time();
    }

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "learn_model \"%V\": version %L %s %V%s%ui pruned",
                  &lm->name, step,
                  op->rc == NGX_OK ? "published to" : "already in",
                  &lm->store->url, ", ", op->pruned);
}


/*
 * The trainer's checkpoint timer writes again while the newest version
 * is not in the store (Redis was down): the write is the retry.
 */

ngx_uint_t
ngx_http_learn_store_behind(ngx_http_learn_model_t *lm)
{
    return lm->store && !lm->follow
           && lm->shm->store_version != lm->shm->version;
}




/*
 * Up or down, logged once per outage: the first failure at "error"
 * (with the reason), the recovery at "notice"; reconnects back off from
 * 200 ms to 5 s meanwhile.  Messages never hold the credentials.
 */

void
ngx_http_learn_store_outcome(ngx_http_learn_model_t *lm, ngx_int_t rc,
    const char *msg, ngx_log_t *log)
{
    ngx_http_learn_store_t  *st;
    ngx_http_learn_shm_t    *shm;

    st = lm->store;
    shm = lm->shm;

    if (rc == NGX_ERROR) {
        (void) ngx_atomic_fetch_add(&shm->store_errors, 1);
        shm->store_up = 0;
        st->failures++;

        if (!st->down) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "learn_model \"%V\": store %V: %s; %s",
                          &lm->name, &st->url, msg,
                          st->follow ? "serving what it has, retrying"
                                     : "the versions are published once "
                                       "it answers again");
            st->down = 1;

        } else {
            st->backoff = ngx_min(st->backoff * 2,
                                  NGX_HTTP_LEARN_STORE_BACKOFF_MAX);
        }

        return;
    }

    shm->store_up = 1;

    if (st->down) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "learn_model \"%V\": store %V answers again (after "
                      "%ui failed attempts)", &lm->name, &st->url,
                      st->failures);
        st->down = 0;
    }

    st->failures = 0;
    st->backoff = NGX_HTTP_LEARN_STORE_BACKOFF_MIN;
}


/*
 * Exit: the connection goes, unless a task still owns it (nginx's thread
 * pool has finished its tasks by now, but a task's completion event may
 * not have run: a job marked busy is left to the exiting process).  A
 * follower's poll and subscription are stopped before this
 * (ngx_http_learn_store_follow_exit).
 */

void
ngx_http_learn_store_exit_worker(ngx_http_learn_model_t *lm)
{
    ngx_http_learn_store_t  *st;

    st = lm->store;

    if (st->busy || lm->ckpt_job) {
        return;
    }

    if (st->rc) {
        redisFree(st->rc);
        st->rc = NULL;
    }

    ngx_free(st->job);
    st->job = NULL;
}


/*
 * A follower answers what it does not do, before the body is read:
 * train (409, naming the store it follows), or anything before it has
 * parameters to serve (503).  NGX_DECLINED: go on.
 */

ngx_int_t
ngx_http_learn_store_check(ngx_http_request_t *r, ngx_http_learn_model_t *lm,
    ngx_uint_t writes)
{
    ngx_int_t  rc;

    if (!lm->follow || (!writes && lm->shm->ready)) {
        return NGX_DECLINED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (writes) {
        return ngx_http_learn_reject(r, NGX_HTTP_CONFLICT,
                                     "model \"%V\" follows %V: train it on "
                                     "the instance that publishes there",
                                     &lm->name, &lm->store->url);
    }

    return ngx_http_learn_reject(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "model \"%V\" is not ready: no version "
                                 "from %V yet", &lm->name, &lm->store->url);
}


/* learn_status: "store": {...} */

u_char *
ngx_http_learn_store_status(u_char *p, ngx_http_learn_model_t *lm)
{
    int64_t                  lag;
    ngx_http_learn_shm_t    *shm;
    ngx_http_learn_store_t  *st;

    st = lm->store;
    shm = lm->shm;

    if (st == NULL) {
        return p;
    }

    lag = st->follow ? (int64_t) shm->store_latest - (int64_t) shm->store_step
                     : (int64_t) shm->step - (int64_t) shm->store_step;

    return ngx_sprintf(p, ", \"store\": {\"url\": \"%V\", \"role\": \"%s\", "
                       "\"auth\": %s, \"up\": %s, \"step\": %uA, "
                       "\"latest\": %uA, \"lag_steps\": %L, "
                       "\"lag_ms\": %uA, \"transfers\": %uA, "
                       "\"errors\": %uA, \"refused\": %uA, \"time\": %T, "
                       "\"subscribed\": %s, \"notices\": %uA}",
                       &st->url, st->follow ? "follow" : "store",
                       st->pass ? "true" : "false",
                       shm->store_up ? "true" : "false", shm->store_step,
                       shm->store_latest, ngx_max(lag, 0), shm->store_lag_ms,
                       shm->store_transfers, shm->store_errors,
                       shm->store_refused, shm->store_time,
                       (st->follow && (ngx_atomic_int_t) shm->store_subscribed
                                      > 0) ? "true" : "false",
                       shm->store_notices);
}


/* learn_status ?format=prometheus: one value of family "which" */

u_char *
ngx_http_learn_store_sample(u_char *p, ngx_uint_t which,
    ngx_http_learn_model_t *lm)
{
    ngx_http_learn_shm_t  *shm;

    shm = lm->shm;

    switch (which) {

    case 0:
        return ngx_sprintf(p, "%d", shm->store_up ? 1 : 0);

    case 1:
        return ngx_sprintf(p, "%uA", shm->store_step);

    case 2:
        return ngx_sprintf(p, "%uA", shm->store_latest);

    case 3:
        return ngx_sprintf(p, "%uA", shm->store_transfers);

    case 4:
        return ngx_sprintf(p, "%uA", shm->store_errors);

    default: /* 5 */
        return ngx_sprintf(p, "%uA", shm->store_refused);
    }
}
