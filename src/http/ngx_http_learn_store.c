
/*
 * Model versions replicated through Redis: learn_model ... store=URL
 * publishes every checkpoint version; learn_model ... follow=URL serves
 * the newest version published there.
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

#include <hiredis/hiredis.h>
#include <sys/time.h>


#define NGX_HTTP_LEARN_STORE_POLL         200    /* ms between checks */
#define NGX_HTTP_LEARN_STORE_BACKOFF_MIN  200    /* ms, after a failure */
#define NGX_HTTP_LEARN_STORE_BACKOFF_MAX  5000
#define NGX_HTTP_LEARN_STORE_CONNECT_S    1      /* connect timeout */
#define NGX_HTTP_LEARN_STORE_COMMAND_S    5      /* a reply's timeout */
#define NGX_HTTP_LEARN_STORE_KEY_LEN      200    /* prefix 64 + name 64 + 19 */


/* a follower's check, owned by the thread while it runs */
typedef struct {
    ngx_http_learn_model_t        *lm;
#if (NGX_THREADS)
    ngx_thread_task_t              task;
#endif
    ngx_int_t                      rc;        /* NGX_ERROR: Redis failed */
    ngx_uint_t                     took;      /* a new version is served */
    ngx_uint_t                     refused;   /* a value was not valid */
    int64_t                        latest;    /* the store's newest */
    int64_t                        latest_ms; /* when it was published */
    int64_t                        step;      /* taken */
    uint64_t                       took_ms;   /* fetch, check and swap */
    ngx_pid_t                      unlocked;  /* a dead lock owner */
    char                           vkey[256];  /* KEY_LEN + a step */
    char                           cap[24];
    char                           msg[LT_ERR_LEN];
} ngx_http_learn_store_job_t;


struct ngx_http_learn_store_s {
    ngx_str_t                      url;       /* without the credentials */
    char                          *host;      /* NUL-terminated */
    int                            port;
    char                          *user;      /* NULL: none */
    char                          *pass;      /* NULL: no AUTH */
    ngx_uint_t                     follow;

    char                           key_latest[NGX_HTTP_LEARN_STORE_KEY_LEN];
    char                           key_versions[NGX_HTTP_LEARN_STORE_KEY_LEN];
    char                           key_v[NGX_HTTP_LEARN_STORE_KEY_LEN];
    char                           channel[NGX_HTTP_LEARN_STORE_KEY_LEN];

    void                          *pool;      /* ngx_thread_pool_t */
    size_t                         cap;       /* largest valid value */

    /* per worker: the connection (one task uses it at a time) */
    redisContext                  *rc;
    ngx_uint_t                     down;      /* an outage was logged */
    ngx_uint_t                     failures;  /* attempts in this outage */
    ngx_msec_t                     backoff;

    /* follow=, in worker 0 */
    ngx_event_t                    timer;
    ngx_http_learn_store_job_t    *job;
    ngx_uint_t                     busy;      /* job posted, not done */
    int64_t                        bad_step;  /* refused: not again */
};


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
static int ngx_http_learn_store_connect(ngx_http_learn_store_t *st,
    char *msg);
static redisReply *ngx_http_learn_store_command(ngx_http_learn_store_t *st,
    int argc, const char **argv, const size_t *lens, char *msg);
static int64_t ngx_http_learn_store_now_ms(void);
static int ngx_http_learn_store_pointer(const char *s, size_t len,
    int64_t *step, int64_t *ms);
#if (NGX_THREADS)
static void ngx_http_learn_store_timer(ngx_event_t *ev);
static void ngx_http_learn_store_follow_thread(void *data, ngx_log_t *log);
static void ngx_http_learn_store_follow_done(ngx_event_t *ev);
static void ngx_http_learn_store_take(ngx_http_learn_store_job_t *job,
    const uint8_t *value, size_t len);
#endif
static void ngx_http_learn_store_outcome(ngx_http_learn_model_t *lm,
    ngx_int_t rc, const char *msg, ngx_log_t *log);


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

static int
ngx_http_learn_store_connect(ngx_http_learn_store_t *st, char *msg)
{
    int              argc;
    size_t           lens[3];
    const char      *argv[3], *e;
    redisReply      *rep;
    struct timeval   tv;

    if (st->rc) {
        return 0;
    }

    tv.tv_sec = NGX_HTTP_LEARN_STORE_CONNECT_S;
    tv.tv_usec = 0;

    st->rc = redisConnectWithTimeout(st->host, st->port, tv);

    if (st->rc == NULL) {
        snprintf(msg, LT_ERR_LEN, "no memory for a connection");
        return -1;
    }

    if (st->rc->err) {
        snprintf(msg, LT_ERR_LEN, "connect: %s", st->rc->errstr);
        redisFree(st->rc);
        st->rc = NULL;
        return -1;
    }

    tv.tv_sec = NGX_HTTP_LEARN_STORE_COMMAND_S;
    (void) redisSetTimeout(st->rc, tv);
    (void) redisEnableKeepAlive(st->rc);

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

    rep = redisCommandArgv(st->rc, argc, argv, lens);

    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        /*
         * only the error's code (WRONGPASS, ERR, NOAUTH): some servers'
         * messages quote what was sent
         */
        if (rep == NULL) {
            snprintf(msg, LT_ERR_LEN, "AUTH: %s", st->rc->errstr);

        } else {
            e = rep->str;
            snprintf(msg, LT_ERR_LEN, "AUTH refused (%.*s)",
                     (int) strcspn(e, " "), e);
        }

        if (rep) {
            freeReplyObject(rep);
        }

        redisFree(st->rc);
        st->rc = NULL;
        return -1;
    }

    freeReplyObject(rep);

    return 0;
}


/*
 * A reply, or NULL with msg set: an I/O error closes the connection (the
 * next attempt reconnects), an error reply leaves it open.
 */

static redisReply *
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


static int64_t
ngx_http_learn_store_now_ms(void)
{
    struct timeval  tv;

    (void) gettimeofday(&tv, NULL);

    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


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


/* ---- follow=: a follower ------------------------------------------- */

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

    return NGX_OK;
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

    if (ngx_thread_task_post(st->pool, &st->job->task) != NGX_OK) {
        st->busy = 0;
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
                      "(taken in %uL ms, %L ms after its publication)",
                      &lm->name, job->step, &st->url, job->took_ms,
                      ngx_max(lag, 0));
    }

    if (ngx_exiting || ngx_terminate || shm->retired) {
        return;
    }

    ngx_add_timer(&st->timer, st->down ? st->backoff
                                       : NGX_HTTP_LEARN_STORE_POLL);
}

#endif


/*
 * Up or down, logged once per outage: the first failure at "error"
 * (with the reason), the recovery at "notice"; reconnects back off from
 * 200 ms to 5 s meanwhile.  Messages never hold the credentials.
 */

static void
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
 * not have run: a job marked busy is left to the exiting process).
 */

void
ngx_http_learn_store_exit_worker(ngx_http_learn_model_t *lm)
{
    ngx_http_learn_store_t  *st;

    st = lm->store;

    if (st->timer.timer_set) {
        ngx_del_timer(&st->timer);
    }

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
                       "\"errors\": %uA, \"refused\": %uA, \"time\": %T}",
                       &st->url, st->follow ? "follow" : "store",
                       st->pass ? "true" : "false",
                       shm->store_up ? "true" : "false", shm->store_step,
                       shm->store_latest, ngx_max(lag, 0), shm->store_lag_ms,
                       shm->store_transfers, shm->store_errors,
                       shm->store_refused, shm->store_time);
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
