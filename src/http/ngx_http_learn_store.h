
/*
 * store= / follow=: what ngx_http_learn_store.c and
 * ngx_http_learn_store_follow.c share.
 */


#ifndef _NGX_HTTP_LEARN_STORE_H_INCLUDED_
#define _NGX_HTTP_LEARN_STORE_H_INCLUDED_


#include "ngx_http_learn.h"

#include <hiredis/hiredis.h>


#define NGX_HTTP_LEARN_STORE_POLL         200    /* ms between checks */
#define NGX_HTTP_LEARN_STORE_POLL_SUB     1000   /* ... while subscribed */
#define NGX_HTTP_LEARN_STORE_BACKOFF_MIN  200    /* ms, after a failure */
#define NGX_HTTP_LEARN_STORE_BACKOFF_MAX  5000
#define NGX_HTTP_LEARN_STORE_CONNECT_S    1      /* connect timeout */
#define NGX_HTTP_LEARN_STORE_COMMAND_S    5      /* a reply's timeout */
#define NGX_HTTP_LEARN_STORE_KEY_LEN      200    /* prefix 64 + name 64 + 19 */


typedef struct ngx_http_learn_store_sub_s  ngx_http_learn_store_sub_t;


/* a follower's check, owned by the thread while it runs */
typedef struct {
    ngx_http_learn_model_t        *lm;
#if (NGX_THREADS)
    ngx_thread_task_t              task;
#endif
    ngx_int_t                      rc;        /* NGX_ERROR: Redis failed */
    ngx_uint_t                     took;      /* a new version is served */
    ngx_uint_t                     announced; /* woken by a message */
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
    ngx_uint_t                     again;     /* notified while busy */
    ngx_uint_t                     announced; /* the next check's cause */
    ngx_http_learn_store_sub_t    *sub;       /* the subscriber thread */
    int64_t                        bad_step;  /* refused: not again */
};


/* connect (and AUTH) unless connected: 0, or -1 with msg set */
int ngx_http_learn_store_connect(ngx_http_learn_store_t *st, char *msg);
int ngx_http_learn_store_dial(ngx_http_learn_store_t *st, redisContext **ctx,
    char *msg);
int ngx_http_learn_store_auth(ngx_http_learn_store_t *st, redisContext *ctx,
    char *msg);
redisReply *ngx_http_learn_store_command(ngx_http_learn_store_t *st,
    int argc, const char **argv, const size_t *lens, char *msg);
int64_t ngx_http_learn_store_now_ms(void);
void ngx_http_learn_store_outcome(ngx_http_learn_model_t *lm, ngx_int_t rc,
    const char *msg, ngx_log_t *log);

/* ngx_http_learn_store_sub.c: the subscription, in worker 0; wake runs
 * on the event loop when a publication was announced */
typedef void (*ngx_http_learn_store_wake_pt)(ngx_http_learn_model_t *lm);

ngx_int_t ngx_http_learn_store_sub_start(ngx_cycle_t *cycle,
    ngx_http_learn_model_t *lm, ngx_http_learn_store_wake_pt wake);
void ngx_http_learn_store_sub_stop(ngx_http_learn_model_t *lm);
/* ngx_http_learn_store_follow.c: check now (a publication was announced) */
void ngx_http_learn_store_wake(ngx_http_learn_model_t *lm);


#endif /* _NGX_HTTP_LEARN_STORE_H_INCLUDED_ */
