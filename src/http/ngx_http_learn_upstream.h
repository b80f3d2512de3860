
/*
 * ngx_http_learn_upstream_module: the learned balancer (learn_balancer)
 * and sticky sessions (learn_sticky), shared between the balancer's
 * files (ngx_http_learn_upstream_{module,peer,learn,status}.c) and
 * ngx_http_learn_sticky.c, and the entry points that learn_status calls.
 */


#ifndef _NGX_HTTP_LEARN_UPSTREAM_H_INCLUDED_
#define _NGX_HTTP_LEARN_UPSTREAM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_learn_param.h"


/* features: 1, recent latency, in flight, recent failures, body size */
#define NGX_HTTP_LEARN_UPSTREAM_NF       5


#define NGX_HTTP_LEARN_PIN_NONE          0
#define NGX_HTTP_LEARN_PIN_HIT           1
#define NGX_HTTP_LEARN_PIN_NEW           2
#define NGX_HTTP_LEARN_PIN_MOVED         3
#define NGX_HTTP_LEARN_PIN_BUSY          4   /* pinned elsewhere, not moved */


/*
 * One peer's learned state, in the balancer zone.  Counters are atomics;
 * the floats change only under the upstream's lock (free_peer) and are
 * read without it: each is one aligned 32-bit load.
 */
typedef struct {
    ngx_atomic_t                   in_flight;  /* all workers */
    ngx_atomic_t                   picks;
    ngx_atomic_t                   explored;   /* picks made by exploring */
    ngx_atomic_t                   done;       /* requests learned from */
    ngx_atomic_t                   failures;   /* errors, resets, 5xx */
    ngx_atomic_t                   pins;       /* sticky keys pinned here */
    ngx_atomic_t                   last;       /* ngx_current_msec */

    float                          lat;        /* EWMA of target, ms */
    float                          fail;       /* EWMA of 0/1 failures */
    float                          predicted;  /* EWMA of predictions */
    float                          observed;   /* EWMA of raw latency */
} ngx_http_learn_upstream_peer_sh_t;


/* an upstream's balancer zone: this header, then one entry per peer */
typedef struct {
    ngx_atomic_t                   lock;       /* ngx_rwlock, writers */
    uint32_t                       layout;     /* crc32 of peer names */
    ngx_uint_t                     npeers;

    float                          w[NGX_HTTP_LEARN_UPSTREAM_NF];
    float                          lat_avg;    /* successes, all peers */
    float                          err_avg;    /* EWMA of |error|, ms */

    ngx_atomic_t                   updates;
    ngx_atomic_t                   moves;      /* sticky keys re-pinned */
    ngx_atomic_t                   pick_ns;    /* time spent picking */
    ngx_atomic_t                   pick_count;

    ngx_http_learn_upstream_peer_sh_t  peer[1];
} ngx_http_learn_upstream_sh_t;


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    lru;
    uint32_t                       layout;
    ngx_atomic_t                   keys;
    ngx_atomic_t                   hits;
    ngx_atomic_t                   evicted;
} ngx_http_learn_sticky_sh_t;


typedef struct {
    ngx_http_complex_value_t      *key;        /* header=, cookie=, arg=
                                                  as $http_, $cookie_,
                                                  $arg_; or key= */
    ngx_msec_t                     timeout;
    ngx_str_t                      zone_name;
    size_t                         zone_size;

    ngx_shm_zone_t                *shm_zone;
    ngx_slab_pool_t               *shpool;
    ngx_http_learn_sticky_sh_t    *sh;
    uint32_t                       layout;
} ngx_http_learn_sticky_conf_t;


typedef struct {
    ngx_flag_t                     enabled;
    float                          explore;
    float                          rate;       /* NLMS step */
    ngx_msec_t                     fail_penalty;
    ngx_msec_t                     probe;      /* re-probe idle peers */
    ngx_str_t                      zone_name;
    size_t                         zone_size;
    ngx_uint_t                     zone_named; /* zone=NAME given */

    ngx_http_upstream_srv_conf_t  *uscf;
    ngx_uint_t                     nprimary;
    ngx_uint_t                     npeers;
    uint32_t                       layout;

    ngx_shm_zone_t                *shm_zone;
    ngx_http_learn_upstream_sh_t  *sh;

    ngx_http_learn_sticky_conf_t  *sticky;
} ngx_http_learn_upstream_srv_conf_t;


/* per request; the round robin data must be first */
typedef struct {
    ngx_http_upstream_rr_peer_data_t     rrp;

    ngx_http_learn_upstream_srv_conf_t  *conf;
    ngx_http_request_t                  *request;

    ngx_str_t                            key;       /* sticky key */
    uint32_t                             hash;

    ngx_int_t                            index;     /* peer in flight */
    struct timespec                      start;
    float                                x[NGX_HTTP_LEARN_UPSTREAM_NF];
    float                                predicted;
    float                                body;

    ngx_uint_t                           pin;       /* NGX_HTTP_LEARN_PIN_ */
    ngx_uint_t                           picks;
    uintptr_t                           *saved;     /* primary tried bits */

    unsigned                             explored:1;
    unsigned                             busy:1;    /* pinned peer full */
    unsigned                             restore:1; /* on a pinned backup */
    unsigned                             no_backup_pin:1;
} ngx_http_learn_upstream_peer_data_t;


extern ngx_module_t  ngx_http_learn_upstream_module;


/* ngx_http_learn_sticky.c */
char *ngx_http_learn_sticky_parse(ngx_conf_t *cf,
    ngx_http_learn_upstream_srv_conf_t *lucf);
ngx_int_t ngx_http_learn_sticky_init(ngx_conf_t *cf,
    ngx_http_learn_upstream_srv_conf_t *lucf);
ngx_int_t ngx_http_learn_sticky_key(ngx_http_request_t *r,
    ngx_http_learn_sticky_conf_t *scf, ngx_str_t *key);
ngx_int_t ngx_http_learn_sticky_lookup(ngx_http_learn_sticky_conf_t *scf,
    ngx_http_learn_upstream_sh_t *ush, ngx_str_t *key, uint32_t hash,
    ngx_uint_t *peer);
ngx_int_t ngx_http_learn_sticky_pin(ngx_http_learn_sticky_conf_t *scf,
    ngx_http_learn_upstream_sh_t *ush, ngx_str_t *key, uint32_t hash,
    ngx_int_t expect, ngx_uint_t peer, ngx_uint_t *current);
u_char *ngx_http_learn_sticky_status(ngx_http_learn_sticky_conf_t *scf,
    u_char *p);

/* ngx_http_learn_upstream_peer.c: the pick */
ngx_int_t ngx_http_learn_upstream_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);

/* ngx_http_learn_upstream_learn.c: the latency model */
void ngx_http_learn_upstream_model_init(ngx_http_learn_upstream_sh_t *sh);
float ngx_http_learn_upstream_score(ngx_http_learn_upstream_peer_data_t *lp,
    ngx_uint_t gi, ngx_http_upstream_rr_peer_t *peer, ngx_msec_t msec,
    float *x, float *predicted);
void ngx_http_learn_upstream_learn(ngx_http_learn_upstream_peer_data_t *lp,
    ngx_uint_t state);

/*
 * ngx_http_learn_upstream_status.c: the "upstreams" object of
 * learn_status, and its Prometheus text; the size covers either
 */
size_t ngx_http_learn_upstream_status_size(ngx_http_request_t *r);
u_char *ngx_http_learn_upstream_status(ngx_http_request_t *r, u_char *p,
    u_char *last);
u_char *ngx_http_learn_upstream_prometheus(ngx_http_request_t *r, u_char *p,
    u_char *last);

#define NGX_HTTP_LEARN_UPSTREAM_MS_LEN   32     /* "%.3f" of at most 1e9 */


#endif /* _NGX_HTTP_LEARN_UPSTREAM_H_INCLUDED_ */
