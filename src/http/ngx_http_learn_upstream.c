
/*
 * ngx_http_learn_upstream_module: learn_balancer, an upstream balancer
 * that learns each peer's response time online and sends a request to
 * the peer with the lowest predicted time.
 *
 * It wraps round robin the way least_conn does: round robin builds the
 * peer lists and keeps max_fails, fail_timeout, backup, down, max_conns,
 * "zone" and "keepalive" working; this file replaces get and free.
 *
 * The model, one per upstream, shared by all workers in the balancer
 * zone: for peer p and a request of body size b,
 *
 *     predicted_ms = L * (w0 + w1 * lat_p / L + w2 * in_flight_p * lat_p / L
 *                         + w3 * fail_p + w4 * log2(1 + b / 1KiB))
 *
 * lat_p is the peer's recent latency (EWMA, failures counted as a
 * penalty), fail_p its recent failure rate (EWMA of 0/1), in_flight_p
 * its requests in flight across workers, and L the upstream's average
 * latency, which keeps the features near 1.  free_peer trains w with one
 * normalized LMS step per finished request, a few floats under the
 * zone's lock.
 *
 * The pick compares costs, not predictions: a peer's cost is its
 * predicted time divided by its weight, a never-seen peer costs one mean
 * latency per request already in flight to it (0 when idle: it is tried
 * first), and a peer idle for longer than "probe" costs 0 once.  What
 * the variables and learn_status report is the prediction itself.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <math.h>

#include "ngx_http_learn_upstream.h"
#include "ngx_http_learn_metrics.h"


#define NGX_HTTP_LEARN_UPSTREAM_ALPHA    0.2f   /* per peer EWMAs */
#define NGX_HTTP_LEARN_UPSTREAM_BETA     0.05f  /* upstream-wide EWMAs */
#define NGX_HTTP_LEARN_UPSTREAM_YMAX     50.0f  /* target cap, units of L */
#define NGX_HTTP_LEARN_UPSTREAM_EMAX     10.0f  /* error clip, units of L */
#define NGX_HTTP_LEARN_UPSTREAM_FAILING  0.5f   /* a pin moves above this */
#define NGX_HTTP_LEARN_UPSTREAM_MS_LEN   32     /* "%.3f" of at most 1e9 */

#define ngx_http_learn_upstream_tried(rrp, i)                                 \
    ((rrp)->tried[(i) / (8 * sizeof(uintptr_t))]                             \
     & ((uintptr_t) 1 << (i) % (8 * sizeof(uintptr_t))))


static ngx_int_t ngx_http_learn_upstream_init(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_learn_upstream_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_uint_t ngx_http_learn_upstream_changed(ngx_shm_zone_t *shm_zone);
static ngx_int_t ngx_http_learn_upstream_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_learn_upstream_get_peer(ngx_peer_connection_t *pc,
    void *data);
static ngx_int_t ngx_http_learn_upstream_backup_pin(
    ngx_http_learn_upstream_peer_data_t *lp, ngx_int_t pinned, time_t now,
    ngx_msec_t msec);
static void ngx_http_learn_upstream_restore(
    ngx_http_learn_upstream_peer_data_t *lp);
static ngx_int_t ngx_http_learn_upstream_stick(
    ngx_http_learn_upstream_peer_data_t *lp,
    ngx_http_upstream_rr_peers_t *peers, ngx_uint_t base, ngx_int_t pinned,
    ngx_int_t chosen, time_t now, ngx_msec_t msec, ngx_log_t *log);
static ngx_int_t ngx_http_learn_upstream_choose(
    ngx_http_learn_upstream_peer_data_t *lp,
    ngx_http_upstream_rr_peers_t *peers, ngx_uint_t base, ngx_int_t pinned,
    time_t now, ngx_msec_t msec);
static ngx_http_upstream_rr_peer_t *ngx_http_learn_upstream_nth(
    ngx_http_upstream_rr_peers_t *peers, ngx_uint_t i);
static ngx_int_t ngx_http_learn_upstream_state(
    ngx_http_upstream_rr_peer_data_t *rrp, ngx_http_upstream_rr_peer_t *peer,
    ngx_uint_t i, time_t now);
static float ngx_http_learn_upstream_score(
    ngx_http_learn_upstream_peer_data_t *lp, ngx_uint_t gi,
    ngx_http_upstream_rr_peer_t *peer, ngx_msec_t msec, float *x,
    float *predicted);
static void ngx_http_learn_upstream_free_peer(ngx_peer_connection_t *pc,
    void *data, ngx_uint_t state);
static void ngx_http_learn_upstream_learn(
    ngx_http_learn_upstream_peer_data_t *lp, ngx_uint_t state);

static ngx_int_t ngx_http_learn_upstream_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_learn_upstream_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static void *ngx_http_learn_upstream_create_conf(ngx_conf_t *cf);
static char *ngx_http_learn_balancer(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_learn_sticky(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_learn_upstream_enable(ngx_conf_t *cf,
    ngx_http_learn_upstream_srv_conf_t *lucf);
static u_char *ngx_http_learn_upstream_prom_series(u_char *p,
    ngx_uint_t metric, ngx_http_upstream_srv_conf_t *uscf,
    ngx_http_learn_upstream_srv_conf_t *lucf);
static size_t ngx_http_learn_upstream_ms(u_char *buf, size_t size, double v);
static u_char *ngx_http_learn_upstream_float(u_char *p, double v);


static ngx_command_t  ngx_http_learn_upstream_commands[] = {

    { ngx_string("learn_balancer"),
      NGX_HTTP_UPS_CONF|NGX_CONF_ANY,
      ngx_http_learn_balancer,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("learn_sticky"),
      NGX_HTTP_UPS_CONF|NGX_CONF_1MORE,
      ngx_http_learn_sticky,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_learn_upstream_module_ctx = {
    ngx_http_learn_upstream_add_variables, /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_learn_upstream_create_conf,   /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_learn_upstream_module = {
    NGX_MODULE_V1,
    &ngx_http_learn_upstream_module_ctx,   /* module context */
    ngx_http_learn_upstream_commands,      /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_learn_upstream_vars[] = {

    { ngx_string("learn_upstream_predicted_ms"), NULL,
      ngx_http_learn_upstream_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("learn_upstream_pin"), NULL,
      ngx_http_learn_upstream_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("learn_upstream_explored"), NULL,
      ngx_http_learn_upstream_variable, 2,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_learn_upstream_pins[] = {
    ngx_string("none"),
    ngx_string("hit"),
    ngx_string("new"),
    ngx_string("moved"),
    ngx_string("busy")
};


/* the prior: predicted = recent latency, plus a little for queueing */
static float  ngx_http_learn_upstream_w0[NGX_HTTP_LEARN_UPSTREAM_NF] = {
    0.0f, 1.0f, 0.05f, 1.0f, 0.0f
};

/*
 * w2 stays positive: of two peers predicted alike, the one with fewer
 * requests in flight wins even where latency does not grow with them
 */
static float  ngx_http_learn_upstream_wmin[NGX_HTTP_LEARN_UPSTREAM_NF] = {
    -10.0f, 0.25f, 0.02f, 0.0f, 0.0f
};

static float  ngx_http_learn_upstream_wmax[NGX_HTTP_LEARN_UPSTREAM_NF] = {
    10.0f, 4.0f, 4.0f, 100.0f, 10.0f
};



static ngx_int_t
ngx_http_learn_upstream_init(ngx_conf_t *cf, ngx_http_upstream_srv_conf_t *us)
{
    size_t                               size;
    uint32_t                             crc;
    ngx_str_t                            name;
    ngx_shm_zone_t                      *shm_zone;
    ngx_http_upstream_rr_peer_t         *peer;
    ngx_http_upstream_rr_peers_t        *peers, *list;
    ngx_http_learn_upstream_srv_conf_t  *lucf;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, cf->log, 0, "init learn balancer");

    if (ngx_http_upstream_init_round_robin(cf, us) != NGX_OK) {
        return NGX_ERROR;
    }

    us->peer.init = ngx_http_learn_upstream_init_peer;

    lucf = ngx_http_conf_upstream_srv_conf(us, ngx_http_learn_upstream_module);

    lucf->uscf = us;

    if (lucf->explore < 0) {
        lucf->explore = 0.005f;
    }

    if (lucf->rate < 0) {
        lucf->rate = 0.1f;
    }

    if (lucf->fail_penalty == NGX_CONF_UNSET_MSEC) {
        lucf->fail_penalty = 1000;
    }

    if (lucf->probe == NGX_CONF_UNSET_MSEC) {
        lucf->probe = 10000;
    }

    /* our index space: primary peers first, then the backup ones */

    peers = us->peer.data;

    lucf->nprimary = peers->number;
    lucf->npeers = peers->number + (peers->next ? peers->next->number : 0);

    ngx_crc32_init(crc);

    for (list = peers; list; list = list->next) {
        for (peer = list->peer; peer; peer = peer->next) {
            ngx_crc32_update(&crc, peer->name.data, peer->name.len);
            ngx_crc32_update(&crc, (u_char *) "\n", 1);
        }
    }

    ngx_crc32_final(crc);

    lucf->layout = crc;

    size = offsetof(ngx_http_learn_upstream_sh_t, peer)
           + lucf->npeers * sizeof(ngx_http_learn_upstream_peer_sh_t);

    if (lucf->zone_size == 0) {
        lucf->zone_size = 8 * ngx_pagesize + ngx_align(size, ngx_pagesize);

    } else if (lucf->zone_size < 8 * ngx_pagesize + size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_balancer zone \"%V\" is too small for "
                           "%ui peers, it needs %uz bytes",
                           &lucf->zone_name, lucf->npeers,
                           8 * ngx_pagesize + size);
        return NGX_ERROR;
    }

    if (lucf->zone_name.len == 0) {

        /*
         * The peer layout is part of the name: a reload that changes the
         * peers gets a new zone, and the old workers finish their requests
         * on the old one, untouched.
         */

        name.len = sizeof("learn_balancer::01234567") - 1 + us->host.len;
        name.data = ngx_pnalloc(cf->pool, name.len);
        if (name.data == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(name.data, "learn_balancer:%V:%08xD", &us->host, crc);
        lucf->zone_name = name;

    } else {
        lucf->zone_named = 1;
    }

    shm_zone = ngx_shared_memory_add(cf, &lucf->zone_name, lucf->zone_size,
                                     &ngx_http_learn_upstream_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_balancer zone \"%V\" is already used",
                           &lucf->zone_name);
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_learn_upstream_init_zone;
    shm_zone->data = lucf;

    lucf->shm_zone = shm_zone;

    if (lucf->sticky) {
        return ngx_http_learn_sticky_init(cf, lucf);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_learn_upstream_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_learn_upstream_srv_conf_t  *olucf = data;

    size_t                               size, len;
    ngx_uint_t                           i;
    ngx_slab_pool_t                     *shpool;
    ngx_http_learn_upstream_sh_t        *sh;
    ngx_http_learn_upstream_srv_conf_t  *lucf;

    lucf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (olucf && olucf->sh) {

        /* reload: keep what was learned while the peers are the same */

        if (olucf->sh->layout == lucf->layout
            && olucf->sh->npeers == lucf->npeers)
        {
            lucf->sh = olucf->sh;
            return NGX_OK;
        }

        /*
         * Only a zone=NAME zone comes back with other peers (a default
         * name holds the layout).  The old workers keep writing into the
         * old model until they exit, so it is never freed: the new model
         * takes new memory in the zone.
         */

        ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                      "learn_balancer \"%V\": the peers changed, "
                      "learning afresh", &lucf->uscf->host);

    } else if (shm_zone->shm.exists) {
        lucf->sh = shpool->data;
        return NGX_OK;

    } else if (!lucf->zone_named && ngx_http_learn_upstream_changed(shm_zone))
    {
        ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                      "learn_balancer \"%V\": the peers changed, "
                      "learning afresh", &lucf->uscf->host);
    }

    size = offsetof(ngx_http_learn_upstream_sh_t, peer)
           + lucf->npeers * sizeof(ngx_http_learn_upstream_peer_sh_t);

    sh = ngx_slab_calloc(shpool, size);
    if (sh == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "learn_balancer zone \"%V\" has no room for the new "
                      "peers of upstream \"%V\" (the old workers may still "
                      "use the old ones): give the zone a larger size or "
                      "another name, or restart nginx",
                      &shm_zone->shm.name, &lucf->uscf->host);
        return NGX_ERROR;
    }

    sh->layout = lucf->layout;
    sh->npeers = lucf->npeers;

    for (i = 0; i < NGX_HTTP_LEARN_UPSTREAM_NF; i++) {
        sh->w[i] = ngx_http_learn_upstream_w0[i];
    }

    shpool->data = sh;
    lucf->sh = sh;

    if (shpool->log_ctx != &shpool->zero) {
        return NGX_OK;
    }

    len = sizeof(" in learn_balancer zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in learn_balancer zone \"%V\"%Z",
                &shm_zone->shm.name);

    return NGX_OK;
}


/*
 * A fresh default zone: did the running configuration (ngx_cycle, the old
 * cycle while a reload initializes zones) have this upstream with other
 * peers?  Only for the log line.
 */

static ngx_uint_t
ngx_http_learn_upstream_changed(ngx_shm_zone_t *shm_zone)
{
    size_t            len;
    ngx_str_t        *name;
    ngx_uint_t        i;
    ngx_shm_zone_t   *zone;
    ngx_list_part_t  *part;

    name = &shm_zone->shm.name;
    len = name->len - 8;              /* without the layout hash */

    part = (ngx_list_part_t *) &ngx_cycle->shared_memory.part;
    zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            zone = part->elts;
            i = 0;
        }

        if (zone[i].tag == shm_zone->tag
            && zone[i].shm.name.len == name->len
            && ngx_strncmp(zone[i].shm.name.data, name->data, len) == 0
            && ngx_strncmp(zone[i].shm.name.data, name->data, name->len) != 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_learn_upstream_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    off_t                                 len;
    ngx_http_learn_upstream_srv_conf_t   *lucf;
    ngx_http_learn_upstream_peer_data_t  *lp;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "init learn balancer peer");

    lucf = ngx_http_conf_upstream_srv_conf(us, ngx_http_learn_upstream_module);

    lp = ngx_pcalloc(r->pool, sizeof(ngx_http_learn_upstream_peer_data_t));
    if (lp == NULL) {
        return NGX_ERROR;
    }

    r->upstream->peer.data = &lp->rrp;

    if (ngx_http_upstream_init_round_robin_peer(r, us) != NGX_OK) {
        return NGX_ERROR;
    }

    r->upstream->peer.get = ngx_http_learn_upstream_get_peer;
    r->upstream->peer.free = ngx_http_learn_upstream_free_peer;

    lp->conf = lucf;
    lp->request = r;
    lp->index = NGX_ERROR;

    len = r->headers_in.content_length_n;
    lp->body = len > 0 ? log2f(1.0f + (float) len / 1024.0f) : 0.0f;

    if (lucf->sticky
        && ngx_http_learn_sticky_key(r, lucf->sticky, &lp->key) == NGX_OK)
    {
        lp->hash = ngx_crc32_short(lp->key.data, lp->key.len);
    }

    ngx_http_set_ctx(r, lp, ngx_http_learn_upstream_module);

    return NGX_OK;
}


static ngx_int_t
ngx_http_learn_upstream_get_peer(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_learn_upstream_peer_data_t  *lp = data;

    time_t                                now;
    ngx_int_t                             rc, pinned, chosen;
    ngx_uint_t                            i, n, pin, base;
    ngx_msec_t                            msec;
    struct timespec                       t0;
    ngx_http_upstream_rr_peer_t          *peer;
    ngx_http_upstream_rr_peers_t         *peers;
    ngx_http_upstream_rr_peer_data_t     *rrp;
    ngx_http_learn_upstream_sh_t         *sh;
    ngx_http_learn_upstream_srv_conf_t   *lucf;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                   "get learn balancer peer, try: %ui", pc->tries);

    lucf = lp->conf;
    sh = lucf->sh;
    rrp = &lp->rrp;

    (void) clock_gettime(CLOCK_MONOTONIC, &t0);

    lp->index = NGX_ERROR;
    lp->explored = 0;
    lp->busy = 0;
    lp->picks++;

    if (rrp->peers->single) {
        rc = ngx_http_upstream_get_round_robin_peer(pc, rrp);
        if (rc != NGX_OK) {
            return rc;
        }

        lp->pin = NGX_HTTP_LEARN_PIN_NONE;
        (void) ngx_http_learn_upstream_score(lp, 0, rrp->current,
                                             ngx_current_msec, lp->x,
                                             &lp->predicted);
        chosen = 0;
        goto found;
    }

    pinned = NGX_ERROR;

    if (lp->key.len
        && ngx_http_learn_sticky_lookup(lucf->sticky, sh, &lp->key,
                                        lp->hash, &pin)
           == NGX_OK
        && pin < lucf->npeers)
    {
        pinned = pin;
    }

    pc->cached = 0;
    pc->connection = NULL;

    now = ngx_time();
    msec = ngx_current_msec;

    if (lp->restore) {
        ngx_http_learn_upstream_restore(lp);
    }

    peers = rrp->peers;
    base = (peers == lucf->uscf->peer.data) ? 0 : lucf->nprimary;

    if (pinned >= (ngx_int_t) lucf->nprimary
        && base == 0
        && peers->next
        && !lp->no_backup_pin)
    {
        chosen = ngx_http_learn_upstream_backup_pin(lp, pinned, now, msec);

        if (chosen >= 0) {
            /* on the backup list now, and it is locked */
            peers = rrp->peers;
            base = lucf->nprimary;
            goto take;
        }
    }

    ngx_http_upstream_rr_peers_wlock(peers);

    chosen = ngx_http_learn_upstream_choose(lp, peers, base, pinned, now,
                                            msec);

    if (chosen == NGX_ERROR && peers->next && base == 0) {

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                       "get learn balancer peer, backup servers");

        ngx_http_upstream_rr_peers_unlock(peers);

        rrp->peers = peers->next;

        n = (rrp->peers->number + (8 * sizeof(uintptr_t) - 1))
            / (8 * sizeof(uintptr_t));

        for (i = 0; i < n; i++) {
            rrp->tried[i] = 0;
        }

        peers = rrp->peers;
        base = lucf->nprimary;

        ngx_http_upstream_rr_peers_wlock(peers);

        chosen = ngx_http_learn_upstream_choose(lp, peers, base, pinned, now,
                                                msec);
    }

    if (chosen == NGX_ERROR) {

        /* all peers failed, mark them as live for quick recovery */

        for (peer = peers->peer; peer; peer = peer->next) {
            peer->fails = 0;
        }

        ngx_http_upstream_rr_peers_unlock(peers);

        if (base) {
            peers = lucf->uscf->peer.data;

            ngx_http_upstream_rr_peers_wlock(peers);

            for (peer = peers->peer; peer; peer = peer->next) {
                peer->fails = 0;
            }

            ngx_http_upstream_rr_peers_unlock(peers);
        }

        pc->name = peers->name;

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                       "get learn balancer peer, no peer found");

        return NGX_BUSY;
    }

take:

    if (lp->key.len) {
        chosen = ngx_http_learn_upstream_stick(lp, peers, base, pinned,
                                               chosen, now, msec, pc->log);

    } else {
        lp->pin = NGX_HTTP_LEARN_PIN_NONE;
    }

    /* take the peer, as round robin does */

    peer = ngx_http_learn_upstream_nth(peers, chosen - base);

    if (now - peer->checked > peer->fail_timeout) {
        peer->checked = now;
    }

    pc->sockaddr = peer->sockaddr;
    pc->socklen = peer->socklen;
    pc->name = &peer->name;

    peer->conns++;

    rrp->current = peer;

    i = chosen - base;
    rrp->tried[i / (8 * sizeof(uintptr_t))]
        |= (uintptr_t) 1 << i % (8 * sizeof(uintptr_t));

    ngx_http_upstream_rr_peers_unlock(peers);

found:

    lp->index = chosen;

    (void) ngx_atomic_fetch_add(&sh->peer[chosen].in_flight, 1);
    (void) ngx_atomic_fetch_add(&sh->peer[chosen].picks, 1);

    if (lp->explored) {
        (void) ngx_atomic_fetch_add(&sh->peer[chosen].explored, 1);
    }

    (void) clock_gettime(CLOCK_MONOTONIC, &lp->start);

    (void) ngx_atomic_fetch_add(&sh->pick_ns,
                                (lp->start.tv_sec - t0.tv_sec) * 1000000000
                                + lp->start.tv_nsec - t0.tv_nsec);
    (void) ngx_atomic_fetch_add(&sh->pick_count, 1);

    return NGX_OK;
}


/*
 * A key pinned to a backup peer stays there while that peer is usable,
 * also once the primary peers are back: the key's state lives there.
 * The request moves to the backup list (the primary tried bits are saved
 * for a retry), and the function returns with that list locked.  Returns
 * NGX_ERROR, nothing locked, when the peer is not usable; NGX_BUSY when
 * only its max_conns stops it (the key stays pinned there).
 */

static ngx_int_t
ngx_http_learn_upstream_backup_pin(ngx_http_learn_upstream_peer_data_t *lp,
    ngx_int_t pinned, time_t now, ngx_msec_t msec)
{
    ngx_int_t                            rc;
    ngx_uint_t                           i, n;
    ngx_http_upstream_rr_peer_t         *peer;
    ngx_http_upstream_rr_peers_t        *backup;
    ngx_http_upstream_rr_peer_data_t    *rrp;
    ngx_http_learn_upstream_srv_conf_t  *lucf;

    lucf = lp->conf;
    rrp = &lp->rrp;
    backup = rrp->peers->next;
    i = pinned - lucf->nprimary;

    if (i >= backup->number) {
        return NGX_ERROR;
    }

    n = ngx_max(rrp->peers->number, backup->number);
    n = (n + (8 * sizeof(uintptr_t) - 1)) / (8 * sizeof(uintptr_t));

    if (lp->saved == NULL) {
        lp->saved = ngx_palloc(lp->request->pool, n * sizeof(uintptr_t));
        if (lp->saved == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_http_upstream_rr_peers_wlock(backup);

    peer = ngx_http_learn_upstream_nth(backup, i);

    /* no backup peer was tried yet: the tried bits are the primary ones */

    rc = ngx_http_learn_upstream_state(NULL, peer, i, now);

    if (rc != NGX_OK
        || lucf->sh->peer[pinned].fail >= NGX_HTTP_LEARN_UPSTREAM_FAILING)
    {
        ngx_http_upstream_rr_peers_unlock(backup);

        if (rc == NGX_BUSY
            && lucf->sh->peer[pinned].fail < NGX_HTTP_LEARN_UPSTREAM_FAILING)
        {
            lp->busy = 1;
            return NGX_BUSY;
        }

        return NGX_ERROR;
    }

    ngx_memcpy(lp->saved, rrp->tried, n * sizeof(uintptr_t));
    ngx_memzero(rrp->tried, n * sizeof(uintptr_t));

    rrp->peers = backup;
    lp->restore = 1;

    (void) ngx_http_learn_upstream_score(lp, pinned, peer, msec, lp->x,
                                         &lp->predicted);

    return pinned;
}


/* a retry after a pinned backup peer: back to the primary peers */

static void
ngx_http_learn_upstream_restore(ngx_http_learn_upstream_peer_data_t *lp)
{
    ngx_uint_t                         n;
    ngx_http_upstream_rr_peers_t      *peers;
    ngx_http_upstream_rr_peer_data_t  *rrp;

    rrp = &lp->rrp;
    peers = lp->conf->uscf->peer.data;

    n = ngx_max(peers->number, peers->next->number);
    n = (n + (8 * sizeof(uintptr_t) - 1)) / (8 * sizeof(uintptr_t));

    ngx_memcpy(rrp->tried, lp->saved, n * sizeof(uintptr_t));

    rrp->peers = peers;
    lp->restore = 0;
    lp->no_backup_pin = 1;
}


/*
 * The sticky part of a pick, with the peer list locked: a new key is
 * pinned to the chosen peer; a key whose peer is not usable (down,
 * failing, failed this request) moves there, logged at info; a key whose
 * peer is only full (max_conns) stays pinned while this one request goes
 * to the chosen peer.  When another worker placed or moved the key
 * first, the request follows that worker's pin if it is usable here.
 * Returns the peer to take.
 */

static ngx_int_t
ngx_http_learn_upstream_stick(ngx_http_learn_upstream_peer_data_t *lp,
    ngx_http_upstream_rr_peers_t *peers, ngx_uint_t base, ngx_int_t pinned,
    ngx_int_t chosen, time_t now, ngx_msec_t msec, ngx_log_t *log)
{
    ngx_int_t                            rc;
    ngx_uint_t                           current, i;
    ngx_http_upstream_rr_peer_t         *peer;
    ngx_http_learn_upstream_sh_t        *sh;
    ngx_http_learn_upstream_srv_conf_t  *lucf;

    if (chosen == pinned) {
        lp->pin = NGX_HTTP_LEARN_PIN_HIT;
        return chosen;
    }

    if (lp->busy) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                       "learn_sticky: pinned peer full, key stays, "
                       "request to %ui", chosen);

        lp->pin = NGX_HTTP_LEARN_PIN_BUSY;
        return chosen;
    }

    lucf = lp->conf;
    sh = lucf->sh;

    rc = ngx_http_learn_sticky_pin(lucf->sticky, sh, &lp->key, lp->hash,
                                   pinned, chosen, &current);

    if (rc == NGX_OK) {

        if (pinned == NGX_ERROR) {
            lp->pin = NGX_HTTP_LEARN_PIN_NEW;
            return chosen;
        }

        lp->pin = NGX_HTTP_LEARN_PIN_MOVED;

        peer = ngx_http_learn_upstream_nth(peers, chosen - base);

        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "learn_sticky: key \"%V\" moved to %V "
                      "in upstream \"%V\"",
                      &lp->key, &peer->name, &lucf->uscf->host);

        return chosen;
    }

    if (rc == NGX_DECLINED) {

        /* another worker pinned the key first: follow it */

        if (current >= base && current < base + peers->number) {
            i = current - base;
            peer = ngx_http_learn_upstream_nth(peers, i);

            if (ngx_http_learn_upstream_state(&lp->rrp, peer, i, now) == NGX_OK
                && sh->peer[current].fail < NGX_HTTP_LEARN_UPSTREAM_FAILING)
            {
                (void) ngx_http_learn_upstream_score(lp, current, peer, msec,
                                                     lp->x, &lp->predicted);
                lp->explored = 0;
                lp->pin = NGX_HTTP_LEARN_PIN_HIT;

                return current;
            }
        }

        lp->pin = NGX_HTTP_LEARN_PIN_BUSY;
        return chosen;
    }

    /* the table is full: the key goes unpinned */

    lp->pin = (pinned == NGX_ERROR) ? NGX_HTTP_LEARN_PIN_NEW
                                    : NGX_HTTP_LEARN_PIN_MOVED;

    return chosen;
}


/*
 * Chooses among the usable peers of one list (primary or backup; base
 * is the index of its first peer in the zone): the pinned peer while it
 * is usable and not failing, else the lowest cost among all peers (at
 * most 3) or two random ones, or with probability "explore" a random
 * one.  A pinned peer held back only by max_conns sets lp->busy.
 * Returns the zone index, or NGX_ERROR when none is usable.
 */

static ngx_int_t
ngx_http_learn_upstream_choose(ngx_http_learn_upstream_peer_data_t *lp,
    ngx_http_upstream_rr_peers_t *peers, ngx_uint_t base, ngx_int_t pinned,
    time_t now, ngx_msec_t msec)
{
    float                                c, best, predicted;
    float                                x[NGX_HTTP_LEARN_UPSTREAM_NF];
    ngx_int_t                            rc;
    ngx_uint_t                           i, k, n, m, start, cand[3];
    ngx_http_upstream_rr_peer_t         *peer, *cpeer[3];
    ngx_http_learn_upstream_sh_t        *sh;
    ngx_http_learn_upstream_srv_conf_t  *lucf;

    lucf = lp->conf;
    sh = lucf->sh;
    n = peers->number;

    if (pinned >= (ngx_int_t) base && pinned < (ngx_int_t) (base + n)
        && sh->peer[pinned].fail < NGX_HTTP_LEARN_UPSTREAM_FAILING)
    {
        i = pinned - base;
        peer = ngx_http_learn_upstream_nth(peers, i);

        rc = ngx_http_learn_upstream_state(&lp->rrp, peer, i, now);

        if (rc == NGX_OK) {
            (void) ngx_http_learn_upstream_score(lp, pinned, peer, msec,
                                                 lp->x, &lp->predicted);
            return pinned;
        }

        if (rc == NGX_BUSY) {
            lp->busy = 1;
        }
    }

    /* the candidates: every usable peer of a short list, else two */

    m = 0;

    if (n <= 3) {
        start = ngx_random() % n;

        for (k = 0; k < n; k++) {
            i = (start + k) % n;
            peer = ngx_http_learn_upstream_nth(peers, i);

            if (ngx_http_learn_upstream_state(&lp->rrp, peer, i, now)
                == NGX_OK)
            {
                cand[m] = i;
                cpeer[m++] = peer;
            }
        }

    } else {
        for (k = 0; k < 20 && m < 2; k++) {
            i = ngx_random() % n;

            if (m == 1 && i == cand[0]) {
                continue;
            }

            peer = ngx_http_learn_upstream_nth(peers, i);

            if (ngx_http_learn_upstream_state(&lp->rrp, peer, i, now)
                == NGX_OK)
            {
                cand[m] = i;
                cpeer[m++] = peer;
            }
        }

        /* few usable peers left: look at each */

        for (peer = peers->peer, i = 0; peer && m < 2; peer = peer->next) {
            if ((m == 0 || i != cand[0])
                && ngx_http_learn_upstream_state(&lp->rrp, peer, i, now)
                   == NGX_OK)
            {
                cand[m] = i;
                cpeer[m++] = peer;
            }

            i++;
        }
    }

    if (m == 0) {
        return NGX_ERROR;
    }

    if (m > 1
        && lucf->explore > 0
        && (float) ngx_random() < lucf->explore * (float) 0x7fffffff)
    {
        k = ngx_random() % m;
        lp->explored = 1;
        (void) ngx_http_learn_upstream_score(lp, base + cand[k], cpeer[k],
                                             msec, lp->x, &lp->predicted);
        return base + cand[k];
    }

    best = 0;
    k = 0;

    for (i = 0; i < m; i++) {
        c = ngx_http_learn_upstream_score(lp, base + cand[i], cpeer[i], msec,
                                          x, &predicted);

        if (i == 0 || c < best) {
            best = c;
            k = i;
            lp->predicted = predicted;
            ngx_memcpy(lp->x, x, sizeof(x));
        }
    }

    if (sh->peer[base + cand[k]].done
        && (ngx_msec_int_t) (msec - sh->peer[base + cand[k]].last)
           > (ngx_msec_int_t) lucf->probe)
    {
        /* a probe of an idle peer: one at a time */
        sh->peer[base + cand[k]].last = msec;
    }

    return base + cand[k];
}


static ngx_http_upstream_rr_peer_t *
ngx_http_learn_upstream_nth(ngx_http_upstream_rr_peers_t *peers, ngx_uint_t i)
{
    ngx_http_upstream_rr_peer_t  *peer;

    for (peer = peers->peer; i; i--) {
        peer = peer->next;
    }

    return peer;
}


/*
 * NGX_OK: peer i can take the request; NGX_BUSY: only its max_conns
 * stops it; NGX_DECLINED: tried for this request (rrp may be NULL not to
 * look), down, or out for fail_timeout after max_fails failures.
 */

static ngx_int_t
ngx_http_learn_upstream_state(ngx_http_upstream_rr_peer_data_t *rrp,
    ngx_http_upstream_rr_peer_t *peer, ngx_uint_t i, time_t now)
{
    if (rrp && ngx_http_learn_upstream_tried(rrp, i)) {
        return NGX_DECLINED;
    }

    if (peer->down) {
        return NGX_DECLINED;
    }

    if (peer->max_fails
        && peer->fails >= peer->max_fails
        && now - peer->checked <= peer->fail_timeout)
    {
        return NGX_DECLINED;
    }

    if (peer->max_conns && peer->conns >= peer->max_conns) {
        return NGX_BUSY;
    }

    return NGX_OK;
}


/*
 * Peer gi: fills x with its features and *predicted with its predicted
 * time in ms, and returns its pick cost.  A peer never seen is predicted
 * at the upstream's mean latency (1 ms before anything is known) times
 * 1 + its requests in flight, and costs one mean less: an idle one is
 * tried first, and a burst of first requests spreads instead of piling
 * onto it.  A peer idle for longer than "probe" costs 0 (a re-probe).
 * The cost is divided by the peer's weight.
 */

static float
ngx_http_learn_upstream_score(ngx_http_learn_upstream_peer_data_t *lp,
    ngx_uint_t gi, ngx_http_upstream_rr_peer_t *peer, ngx_msec_t msec,
    float *x, float *predicted)
{
    float                               L, y, lat, q, cost;
    ngx_uint_t                          j;
    ngx_atomic_int_t                    n;
    ngx_http_learn_upstream_sh_t       *sh;
    ngx_http_learn_upstream_peer_sh_t  *ps;

    sh = lp->conf->sh;
    ps = &sh->peer[gi];

    n = (ngx_atomic_int_t) ps->in_flight;
    q = n > 0 ? (float) n : 0.0f;

    L = sh->lat_avg > 0.001f ? sh->lat_avg : 1.0f;
    lat = ps->lat / L;

    x[0] = 1.0f;
    x[1] = lat;
    x[2] = q * lat;
    x[3] = ps->fail;
    x[4] = lp->body;

    if (ps->done == 0) {
        *predicted = L * (1.0f + q);
        cost = L * q;

    } else {
        y = 0.0f;

        for (j = 0; j < NGX_HTTP_LEARN_UPSTREAM_NF; j++) {
            y += sh->w[j] * x[j];
        }

        y *= L;

        if (y < 0.001f) {
            y = 0.001f;
        }

        *predicted = y;

        cost = ((ngx_msec_int_t) (msec - ps->last)
                > (ngx_msec_int_t) lp->conf->probe) ? 0.0f : y;
    }

    return peer->weight > 1 ? cost / peer->weight : cost;
}


static void
ngx_http_learn_upstream_free_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
    ngx_http_learn_upstream_peer_data_t  *lp = data;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                   "free learn balancer peer, state: %ui", state);

    if (lp->index != NGX_ERROR) {
        ngx_http_learn_upstream_learn(lp, state);
        lp->index = NGX_ERROR;
    }

    ngx_http_upstream_free_round_robin_peer(pc, &lp->rrp, state);
}


/*
 * One finished request: its latency (a failure counts as at least the
 * penalty, so that a peer failing fast does not look fast) trains the
 * model with one normalized LMS step and moves the peer's averages.  The
 * first request of a peer trains only its averages: its features were
 * placeholders (no latency known yet).
 */

static void
ngx_http_learn_upstream_learn(ngx_http_learn_upstream_peer_data_t *lp,
    ngx_uint_t state)
{
    float                                ms, y, L, e, norm, yhat, a, pen;
    ngx_uint_t                           j, failed, status;
    struct timespec                      t1;
    ngx_http_upstream_t                 *u;
    ngx_http_learn_upstream_sh_t        *sh;
    ngx_http_learn_upstream_peer_sh_t   *ps;
    ngx_http_learn_upstream_srv_conf_t  *lucf;

    lucf = lp->conf;
    sh = lucf->sh;
    ps = &sh->peer[lp->index];

    (void) ngx_atomic_fetch_add(&ps->in_flight, -1);

    u = lp->request->upstream;
    status = u ? u->headers_in.status_n : 0;

    failed = (state & NGX_PEER_FAILED) || status >= 500;

    if (!failed && status == 0) {
        /* the client went away before an answer: nothing to learn */
        return;
    }

    (void) clock_gettime(CLOCK_MONOTONIC, &t1);

    ms = (float) (t1.tv_sec - lp->start.tv_sec) * 1000.0f
         + (float) (t1.tv_nsec - lp->start.tv_nsec) / 1000000.0f;

    y = ms;

    if (failed) {
        pen = (float) lucf->fail_penalty;

        if (pen < 5.0f * sh->lat_avg) {
            pen = 5.0f * sh->lat_avg;
        }

        if (y < pen) {
            y = pen;
        }
    }

    a = NGX_HTTP_LEARN_UPSTREAM_ALPHA;

    ngx_rwlock_wlock(&sh->lock);

    L = sh->lat_avg > 0.001f ? sh->lat_avg : 1.0f;

    if (lp->x[1] > 0.0f) {
        yhat = 0.0f;
        norm = 1.0f;

        for (j = 0; j < NGX_HTTP_LEARN_UPSTREAM_NF; j++) {
            yhat += sh->w[j] * lp->x[j];
            norm += lp->x[j] * lp->x[j];
        }

        e = ngx_min(y / L, NGX_HTTP_LEARN_UPSTREAM_YMAX) - yhat;
        e = ngx_max(ngx_min(e, NGX_HTTP_LEARN_UPSTREAM_EMAX),
                    -NGX_HTTP_LEARN_UPSTREAM_EMAX);

        for (j = 0; j < NGX_HTTP_LEARN_UPSTREAM_NF; j++) {
            sh->w[j] += lucf->rate * e * lp->x[j] / norm;
            sh->w[j] = ngx_max(sh->w[j], ngx_http_learn_upstream_wmin[j]);
            sh->w[j] = ngx_min(sh->w[j], ngx_http_learn_upstream_wmax[j]);
        }
    }

    if (ps->done == 0) {
        ps->lat = y;
        ps->observed = ms;
        ps->predicted = lp->predicted;

    } else {
        ps->lat += a * (y - ps->lat);
        ps->observed += a * (ms - ps->observed);
        ps->predicted += a * (lp->predicted - ps->predicted);
    }

    ps->fail += a * ((failed ? 1.0f : 0.0f) - ps->fail);

    if (!failed) {
        sh->lat_avg = (sh->lat_avg > 0.0f)
                      ? sh->lat_avg + NGX_HTTP_LEARN_UPSTREAM_BETA
                                      * (ms - sh->lat_avg)
                      : ms;
    }

    e = y - lp->predicted;
    sh->err_avg += NGX_HTTP_LEARN_UPSTREAM_BETA
                   * ((e < 0 ? -e : e) - sh->err_avg);

    ngx_rwlock_unlock(&sh->lock);

    ps->last = ngx_current_msec;

    (void) ngx_atomic_fetch_add(&ps->done, 1);
    (void) ngx_atomic_fetch_add(&sh->updates, 1);

    if (failed) {
        (void) ngx_atomic_fetch_add(&ps->failures, 1);
    }
}


static ngx_int_t
ngx_http_learn_upstream_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_learn_upstream_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_learn_upstream_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                               *p;
    ngx_str_t                            *s;
    ngx_http_learn_upstream_peer_data_t  *lp;

    lp = ngx_http_get_module_ctx(r, ngx_http_learn_upstream_module);

    if (lp == NULL || lp->picks == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (data == 0) {
        p = ngx_pnalloc(r->pool, NGX_HTTP_LEARN_UPSTREAM_MS_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_http_learn_upstream_ms(p, NGX_HTTP_LEARN_UPSTREAM_MS_LEN,
                                            lp->predicted);
        v->data = p;

    } else if (data == 1) {
        s = &ngx_http_learn_upstream_pins[lp->pin];
        v->len = s->len;
        v->data = s->data;

    } else {
        v->len = 1;
        v->data = (u_char *) (lp->explored ? "1" : "0");
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static void *
ngx_http_learn_upstream_create_conf(ngx_conf_t *cf)
{
    ngx_http_learn_upstream_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_learn_upstream_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->enabled = 0;
     *     conf->zone_name = { 0, NULL };
     *     conf->zone_size = 0;
     *     conf->sticky = NULL;
     */

    conf->explore = -1;
    conf->rate = -1;
    conf->fail_penalty = NGX_CONF_UNSET_MSEC;
    conf->probe = NGX_CONF_UNSET_MSEC;

    return conf;
}


/*
 * learn_balancer [explore=RATE] [rate=STEP] [fail_penalty=TIME]
 *                [probe=TIME] [zone=NAME[:SIZE]];
 */

static char *
ngx_http_learn_balancer(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_upstream_srv_conf_t  *lucf = conf;

    u_char      *colon;
    ngx_int_t    n;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (lucf->explore >= 0) {
        return "is duplicate";
    }

    value = cf->args->elts;

    lucf->explore = 0.005f;
    lucf->rate = 0.1f;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "explore=", 8) == 0) {
            n = ngx_atofp(value[i].data + 8, value[i].len - 8, 4);
            if (n == NGX_ERROR || n > 10000) {
                goto invalid;
            }

            lucf->explore = (float) n / 10000.0f;
            continue;
        }

        if (ngx_strncmp(value[i].data, "rate=", 5) == 0) {
            n = ngx_atofp(value[i].data + 5, value[i].len - 5, 4);
            if (n == NGX_ERROR || n == 0 || n > 10000) {
                goto invalid;
            }

            lucf->rate = (float) n / 10000.0f;
            continue;
        }

        if (ngx_strncmp(value[i].data, "fail_penalty=", 13) == 0) {
            s.data = value[i].data + 13;
            s.len = value[i].len - 13;

            lucf->fail_penalty = ngx_parse_time(&s, 0);
            if (lucf->fail_penalty == (ngx_msec_t) NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "probe=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            lucf->probe = ngx_parse_time(&s, 0);
            if (lucf->probe == (ngx_msec_t) NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            colon = ngx_strlchr(s.data, s.data + s.len, ':');

            if (colon) {
                lucf->zone_name.data = s.data;
                lucf->zone_name.len = colon - s.data;

                s.data = colon + 1;
                s.len = value[i].data + value[i].len - s.data;

                n = ngx_parse_size(&s);
                if (n == NGX_ERROR || n == 0) {
                    goto invalid;
                }

                lucf->zone_size = n;

            } else {
                lucf->zone_name = s;
            }

            if (lucf->zone_name.len == 0) {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    return ngx_http_learn_upstream_enable(cf, lucf);

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * learn_sticky header=NAME|cookie=NAME|arg=NAME [timeout=TIME]
 *              [zone=NAME:SIZE];  the balancer comes with it
 */

static char *
ngx_http_learn_sticky(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_upstream_srv_conf_t  *lucf = conf;

    char  *rv;

    if (lucf->sticky) {
        return "is duplicate";
    }

    rv = ngx_http_learn_sticky_parse(cf, lucf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    return ngx_http_learn_upstream_enable(cf, lucf);
}


static char *
ngx_http_learn_upstream_enable(ngx_conf_t *cf,
    ngx_http_learn_upstream_srv_conf_t *lucf)
{
    ngx_http_upstream_srv_conf_t  *uscf;

    if (lucf->enabled) {
        return NGX_CONF_OK;
    }

    uscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module);

    if (uscf->peer.init_upstream) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "load balancing method redefined");
    }

    uscf->peer.init_upstream = ngx_http_learn_upstream_init;

    uscf->flags = NGX_HTTP_UPSTREAM_CREATE
                  |NGX_HTTP_UPSTREAM_WEIGHT
                  |NGX_HTTP_UPSTREAM_MAX_CONNS
                  |NGX_HTTP_UPSTREAM_MAX_FAILS
                  |NGX_HTTP_UPSTREAM_FAIL_TIMEOUT
                  |NGX_HTTP_UPSTREAM_DOWN
                  |NGX_HTTP_UPSTREAM_BACKUP;

    lucf->enabled = 1;

    return NGX_CONF_OK;
}



/*
 * learn_status: "NAME": {...}, ... for every upstream with the balancer,
 * or the same counters as Prometheus series
 */

#define NGX_HTTP_LEARN_UPSTREAM_STATUS_LEN  512
#define NGX_HTTP_LEARN_UPSTREAM_PEER_LEN    (512 + NGX_SOCKADDR_STRLEN)

/* one Prometheus line: name, labels (escaped: twice as long), value */
#define NGX_HTTP_LEARN_UPSTREAM_PROM_LEN(host)                                \
    (128 + 2 * (host) + 2 * NGX_SOCKADDR_STRLEN)

#define NGX_HTTP_LEARN_UPSTREAM_PEER_METRIC  0
#define NGX_HTTP_LEARN_UPSTREAM_UP_METRIC    1
#define NGX_HTTP_LEARN_UPSTREAM_STICKY_METRIC 2


typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      type;
    ngx_str_t                      help;
    ngx_uint_t                     scope;
} ngx_http_learn_upstream_metric_t;


/* prom_series() switches on the position in this table */

static ngx_http_learn_upstream_metric_t  ngx_http_learn_upstream_metrics[] = {
    { ngx_string("learn_upstream_picks_total"), ngx_string("counter"),
      ngx_string("Requests the balancer sent to the peer."),
      NGX_HTTP_LEARN_UPSTREAM_PEER_METRIC },
    { ngx_string("learn_upstream_explored_total"), ngx_string("counter"),
      ngx_string("Picks of the peer made by exploring."),
      NGX_HTTP_LEARN_UPSTREAM_PEER_METRIC },
    { ngx_string("learn_upstream_in_flight"), ngx_string("gauge"),
      ngx_string("Requests to the peer in progress, all workers."),
      NGX_HTTP_LEARN_UPSTREAM_PEER_METRIC },
    { ngx_string("learn_upstream_failures_total"), ngx_string("counter"),
      ngx_string("Failed requests to the peer (errors, resets, 5xx)."),
      NGX_HTTP_LEARN_UPSTREAM_PEER_METRIC },
    { ngx_string("learn_upstream_pins"), ngx_string("gauge"),
      ngx_string("Sticky keys pinned to the peer."),
      NGX_HTTP_LEARN_UPSTREAM_PEER_METRIC },
    { ngx_string("learn_upstream_predicted_ms"), ngx_string("gauge"),
      ngx_string("Recent average of the predicted response time, ms."),
      NGX_HTTP_LEARN_UPSTREAM_PEER_METRIC },
    { ngx_string("learn_upstream_observed_ms"), ngx_string("gauge"),
      ngx_string("Recent average of the observed response time, ms."),
      NGX_HTTP_LEARN_UPSTREAM_PEER_METRIC },
    { ngx_string("learn_upstream_pick_ns"), ngx_string("gauge"),
      ngx_string("Mean time of a pick, ns."),
      NGX_HTTP_LEARN_UPSTREAM_UP_METRIC },
    { ngx_string("learn_upstream_updates_total"), ngx_string("counter"),
      ngx_string("Finished requests the model learned from."),
      NGX_HTTP_LEARN_UPSTREAM_UP_METRIC },
    { ngx_string("learn_upstream_moves_total"), ngx_string("counter"),
      ngx_string("Sticky keys moved to another peer."),
      NGX_HTTP_LEARN_UPSTREAM_UP_METRIC },
    { ngx_string("learn_upstream_error_ms"), ngx_string("gauge"),
      ngx_string("Mean absolute error of the predictions, ms."),
      NGX_HTTP_LEARN_UPSTREAM_UP_METRIC },
    { ngx_string("learn_sticky_keys"), ngx_string("gauge"),
      ngx_string("Keys in the sticky table."),
      NGX_HTTP_LEARN_UPSTREAM_STICKY_METRIC },
    { ngx_string("learn_sticky_hits_total"), ngx_string("counter"),
      ngx_string("Requests whose key was pinned to a peer."),
      NGX_HTTP_LEARN_UPSTREAM_STICKY_METRIC },
    { ngx_string("learn_sticky_evicted_total"), ngx_string("counter"),
      ngx_string("Pins evicted from a full sticky table."),
      NGX_HTTP_LEARN_UPSTREAM_STICKY_METRIC },
    { ngx_null_string, ngx_null_string, ngx_null_string, 0 }
};

#define NGX_HTTP_LEARN_UPSTREAM_NMETRICS                                      \
    (sizeof(ngx_http_learn_upstream_metrics)                                  \
     / sizeof(ngx_http_learn_upstream_metric_t) - 1)


size_t
ngx_http_learn_upstream_status_size(ngx_http_request_t *r)
{
    size_t                               size, json, prom;
    ngx_uint_t                           i;
    ngx_http_upstream_srv_conf_t       **uscfp;
    ngx_http_upstream_main_conf_t       *umcf;
    ngx_http_learn_upstream_srv_conf_t  *lucf;

    umcf = ngx_http_get_module_main_conf(r, ngx_http_upstream_module);
    if (umcf == NULL) {
        return 0;
    }

    uscfp = umcf->upstreams.elts;
    size = 0;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if (uscfp[i]->srv_conf == NULL) {
            continue;
        }

        lucf = ngx_http_conf_upstream_srv_conf(uscfp[i],
                                               ngx_http_learn_upstream_module);

        if (!lucf->enabled || lucf->sh == NULL) {
            continue;
        }

        json = NGX_HTTP_LEARN_UPSTREAM_STATUS_LEN + uscfp[i]->host.len
               + lucf->npeers * NGX_HTTP_LEARN_UPSTREAM_PEER_LEN;

        prom = NGX_HTTP_LEARN_UPSTREAM_NMETRICS * (lucf->npeers + 1)
               * NGX_HTTP_LEARN_UPSTREAM_PROM_LEN(uscfp[i]->host.len);

        size += ngx_max(json, prom);
    }

    if (size) {
        size += NGX_HTTP_LEARN_UPSTREAM_NMETRICS
                * NGX_HTTP_LEARN_PROM_HEAD_LEN;
    }

    return size;
}


u_char *
ngx_http_learn_upstream_status(ngx_http_request_t *r, u_char *p,
    u_char *last)
{
    ngx_uint_t                           i, j, gi, first, count;
    ngx_atomic_uint_t                    ns;
    ngx_http_upstream_rr_peer_t         *peer;
    ngx_http_upstream_rr_peers_t        *peers, *list;
    ngx_http_upstream_srv_conf_t       **uscfp;
    ngx_http_upstream_main_conf_t       *umcf;
    ngx_http_learn_upstream_sh_t        *sh;
    ngx_http_learn_upstream_peer_sh_t   *ps;
    ngx_http_learn_upstream_srv_conf_t  *lucf;

    umcf = ngx_http_get_module_main_conf(r, ngx_http_upstream_module);
    if (umcf == NULL) {
        return p;
    }

    uscfp = umcf->upstreams.elts;
    first = 1;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if (uscfp[i]->srv_conf == NULL) {
            continue;
        }

        lucf = ngx_http_conf_upstream_srv_conf(uscfp[i],
                                               ngx_http_learn_upstream_module);

        if (!lucf->enabled || lucf->sh == NULL) {
            continue;
        }

        if ((size_t) (last - p) < NGX_HTTP_LEARN_UPSTREAM_STATUS_LEN
                                  + uscfp[i]->host.len
                                  + lucf->npeers
                                    * NGX_HTTP_LEARN_UPSTREAM_PEER_LEN)
        {
            break;
        }

        sh = lucf->sh;
        count = sh->pick_count;
        ns = count ? sh->pick_ns / count : 0;

        p = ngx_sprintf(p, "%s\"%V\": {\"balancer\": \"learn\", "
                        "\"explore\": ",
                        first ? "" : ", ", &uscfp[i]->host);
        p = ngx_http_learn_upstream_float(p, lucf->explore);
        p = ngx_sprintf(p, ", \"picks\": %uA, \"pick_ns\": %uA, "
                        "\"updates\": %uA, \"moves\": %uA, "
                        "\"latency_ms\": ",
                        count, ns, sh->updates, sh->moves);
        p = ngx_http_learn_upstream_float(p, sh->lat_avg);
        p = ngx_cpymem(p, ", \"error_ms\": ", sizeof(", \"error_ms\": ") - 1);
        p = ngx_http_learn_upstream_float(p, sh->err_avg);
        p = ngx_cpymem(p, ", \"weights\": [", sizeof(", \"weights\": [") - 1);

        for (j = 0; j < NGX_HTTP_LEARN_UPSTREAM_NF; j++) {
            if (j) {
                *p++ = ',';
                *p++ = ' ';
            }

            p = ngx_http_learn_upstream_float(p, sh->w[j]);
        }

        *p++ = ']';

        if (lucf->sticky) {
            p = ngx_http_learn_sticky_status(lucf->sticky, p);
        }

        p = ngx_cpymem(p, ", \"peers\": {", sizeof(", \"peers\": {") - 1);

        peers = uscfp[i]->peer.data;
        gi = 0;

        ngx_http_upstream_rr_peers_rlock(peers);

        for (list = peers; list; list = list->next) {
            for (peer = list->peer; peer && gi < lucf->npeers;
                 peer = peer->next)
            {
                ps = &sh->peer[gi];

                p = ngx_sprintf(p, "%s\"%V\": {\"picks\": %uA, "
                                "\"in_flight\": %uA, \"explored\": %uA, "
                                "\"failures\": %uA, \"pins\": %uA, "
                                "\"backup\": %s, \"down\": %s, "
                                "\"predicted_ms\": ",
                                gi ? ", " : "", &peer->name, ps->picks,
                                ps->in_flight, ps->explored, ps->failures,
                                ps->pins, list == peers ? "false" : "true",
                                peer->down ? "true" : "false");
                p = ngx_http_learn_upstream_float(p, ps->predicted);
                p = ngx_cpymem(p, ", \"observed_ms\": ",
                               sizeof(", \"observed_ms\": ") - 1);
                p = ngx_http_learn_upstream_float(p, ps->observed);
                p = ngx_cpymem(p, ", \"latency_ms\": ",
                               sizeof(", \"latency_ms\": ") - 1);
                p = ngx_http_learn_upstream_float(p, ps->lat);
                p = ngx_cpymem(p, ", \"fail_rate\": ",
                               sizeof(", \"fail_rate\": ") - 1);
                p = ngx_http_learn_upstream_float(p, ps->fail);
                p = ngx_sprintf(p, ", \"weight\": %i}", peer->weight);

                gi++;
            }
        }

        ngx_http_upstream_rr_peers_unlock(peers);

        *p++ = '}';
        *p++ = '}';

        first = 0;
    }

    return p;
}


/*
 * learn_status?format=prometheus: each metric once, "# HELP" and
 * "# TYPE" first, then its series of every upstream (and peer): labels
 * upstream="NAME" and peer="ADDRESS"
 */

u_char *
ngx_http_learn_upstream_prometheus(ngx_http_request_t *r, u_char *p,
    u_char *last)
{
    size_t                               need;
    ngx_uint_t                           i, m, typed;
    ngx_http_upstream_srv_conf_t       **uscfp;
    ngx_http_upstream_main_conf_t       *umcf;
    ngx_http_learn_upstream_metric_t    *metric;
    ngx_http_learn_upstream_srv_conf_t  *lucf;

    umcf = ngx_http_get_module_main_conf(r, ngx_http_upstream_module);
    if (umcf == NULL) {
        return p;
    }

    uscfp = umcf->upstreams.elts;

    for (m = 0; m < NGX_HTTP_LEARN_UPSTREAM_NMETRICS; m++) {
        metric = &ngx_http_learn_upstream_metrics[m];
        typed = 0;

        for (i = 0; i < umcf->upstreams.nelts; i++) {
            if (uscfp[i]->srv_conf == NULL) {
                continue;
            }

            lucf = ngx_http_conf_upstream_srv_conf(uscfp[i],
                                               ngx_http_learn_upstream_module);

            if (!lucf->enabled || lucf->sh == NULL) {
                continue;
            }

            if (metric->scope == NGX_HTTP_LEARN_UPSTREAM_STICKY_METRIC
                && (lucf->sticky == NULL || lucf->sticky->sh == NULL))
            {
                continue;
            }

            /* what status_size allowed for this metric and upstream */

            need = (lucf->npeers + 1)
                   * NGX_HTTP_LEARN_UPSTREAM_PROM_LEN(uscfp[i]->host.len)
                   + NGX_HTTP_LEARN_PROM_HEAD_LEN;

            if ((size_t) (last - p) < need) {
                return p;
            }

            if (!typed) {
                p = ngx_http_learn_prom_head(p, &metric->name, &metric->type,
                                             &metric->help);
                typed = 1;
            }

            p = ngx_http_learn_upstream_prom_series(p, m, uscfp[i], lucf);
        }
    }

    return p;
}


static u_char *
ngx_http_learn_upstream_prom_series(u_char *p, ngx_uint_t metric,
    ngx_http_upstream_srv_conf_t *uscf,
    ngx_http_learn_upstream_srv_conf_t *lucf)
{
    double                               v;
    ngx_uint_t                           gi;
    ngx_atomic_uint_t                    count;
    ngx_http_upstream_rr_peer_t         *peer;
    ngx_http_upstream_rr_peers_t        *peers, *list;
    ngx_http_learn_sticky_sh_t          *ssh;
    ngx_http_learn_upstream_sh_t        *sh;
    ngx_http_learn_upstream_peer_sh_t   *ps;
    ngx_http_learn_upstream_metric_t    *m;

    m = &ngx_http_learn_upstream_metrics[metric];
    sh = lucf->sh;

    if (m->scope != NGX_HTTP_LEARN_UPSTREAM_PEER_METRIC) {
        p = ngx_cpymem(p, m->name.data, m->name.len);
        p = ngx_cpymem(p, "{upstream=\"", sizeof("{upstream=\"") - 1);
        p = ngx_http_learn_prom_label(p, &uscf->host);
        p = ngx_cpymem(p, "\"} ", sizeof("\"} ") - 1);

        ssh = lucf->sticky ? lucf->sticky->sh : NULL;
        count = sh->pick_count;

        switch (metric) {

        case 7:
            p = ngx_sprintf(p, "%uA", count ? sh->pick_ns / count : 0);
            break;

        case 8:
            p = ngx_sprintf(p, "%uA", sh->updates);
            break;

        case 9:
            p = ngx_sprintf(p, "%uA", sh->moves);
            break;

        case 10:
            p = ngx_http_learn_prom_float(p, sh->err_avg);
            break;

        case 11:
            p = ngx_sprintf(p, "%uA", ssh->keys);
            break;

        case 12:
            p = ngx_sprintf(p, "%uA", ssh->hits);
            break;

        default: /* 13 */
            p = ngx_sprintf(p, "%uA", ssh->evicted);
        }

        *p++ = '\n';

        return p;
    }

    peers = uscf->peer.data;
    gi = 0;

    ngx_http_upstream_rr_peers_rlock(peers);

    for (list = peers; list; list = list->next) {
        for (peer = list->peer; peer && gi < lucf->npeers; peer = peer->next) {
            ps = &sh->peer[gi++];

            p = ngx_cpymem(p, m->name.data, m->name.len);
            p = ngx_cpymem(p, "{upstream=\"", sizeof("{upstream=\"") - 1);
            p = ngx_http_learn_prom_label(p, &uscf->host);
            p = ngx_cpymem(p, "\",peer=\"", sizeof("\",peer=\"") - 1);
            p = ngx_http_learn_prom_label(p, &peer->name);
            p = ngx_cpymem(p, "\"} ", sizeof("\"} ") - 1);

            switch (metric) {

            case 0:
                p = ngx_sprintf(p, "%uA", ps->picks);
                break;

            case 1:
                p = ngx_sprintf(p, "%uA", ps->explored);
                break;

            case 2:
                p = ngx_sprintf(p, "%uA", ps->in_flight);
                break;

            case 3:
                p = ngx_sprintf(p, "%uA", ps->failures);
                break;

            case 4:
                p = ngx_sprintf(p, "%uA", ps->pins);
                break;

            default: /* 5, 6 */
                v = (metric == 5) ? ps->predicted : ps->observed;
                p = ngx_http_learn_prom_float(p, v);
            }

            *p++ = '\n';
        }
    }

    ngx_http_upstream_rr_peers_unlock(peers);

    return p;
}


/*
 * "12.345" for $learn_upstream_predicted_ms: at most size bytes; NaN is
 * "-", and the value is clamped to 0 .. 1e9 ms
 */

static size_t
ngx_http_learn_upstream_ms(u_char *buf, size_t size, double v)
{
    int  n;

    if (v != v) {
        buf[0] = '-';
        return 1;
    }

    v = ngx_max(ngx_min(v, 1e9), 0.0);

    n = snprintf((char *) buf, size, "%.3f", v);

    return (n > 0 && (size_t) n < size) ? (size_t) n : 0;
}


/* JSON: at most 31 bytes; NaN, Inf and absurd values are null */

static u_char *
ngx_http_learn_upstream_float(u_char *p, double v)
{
    int  n;

    if (v != v || v > 1e30 || v < -1e30) {
        return ngx_cpymem(p, "null", 4);
    }

    n = snprintf((char *) p, 32, "%.6g", v);

    return p + ((n > 0 && n < 32) ? n : 0);
}
