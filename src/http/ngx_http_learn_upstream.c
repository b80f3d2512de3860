
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
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <math.h>

#include "ngx_http_learn_upstream.h"


#define NGX_HTTP_LEARN_UPSTREAM_ALPHA    0.2f   /* per peer EWMAs */
#define NGX_HTTP_LEARN_UPSTREAM_BETA     0.05f  /* upstream-wide EWMAs */
#define NGX_HTTP_LEARN_UPSTREAM_YMAX     50.0f  /* target cap, units of L */
#define NGX_HTTP_LEARN_UPSTREAM_EMAX     10.0f  /* error clip, units of L */
#define NGX_HTTP_LEARN_UPSTREAM_FAILING  0.5f   /* a pin moves above this */

#define ngx_http_learn_upstream_tried(rrp, i)                                 \
    ((rrp)->tried[(i) / (8 * sizeof(uintptr_t))]                             \
     & ((uintptr_t) 1 << (i) % (8 * sizeof(uintptr_t))))


static ngx_int_t ngx_http_learn_upstream_init(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_learn_upstream_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_learn_upstream_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_learn_upstream_get_peer(ngx_peer_connection_t *pc,
    void *data);
static ngx_int_t ngx_http_learn_upstream_choose(
    ngx_http_learn_upstream_peer_data_t *lp,
    ngx_http_upstream_rr_peers_t *peers, ngx_uint_t base, ngx_int_t pinned,
    time_t now, ngx_msec_t msec);
static ngx_http_upstream_rr_peer_t *ngx_http_learn_upstream_nth(
    ngx_http_upstream_rr_peers_t *peers, ngx_uint_t i);
static ngx_uint_t ngx_http_learn_upstream_usable(
    ngx_http_upstream_rr_peer_data_t *rrp, ngx_http_upstream_rr_peer_t *peer,
    ngx_uint_t i, time_t now);
static float ngx_http_learn_upstream_score(
    ngx_http_learn_upstream_peer_data_t *lp, ngx_uint_t gi,
    ngx_http_upstream_rr_peer_t *peer, ngx_msec_t msec, float *x);
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
    ngx_string("moved")
};


/* the prior: predicted = recent latency, plus a little for queueing */
static float  ngx_http_learn_upstream_w0[NGX_HTTP_LEARN_UPSTREAM_NF] = {
    0.0f, 1.0f, 0.05f, 1.0f, 0.0f
};

static float  ngx_http_learn_upstream_wmin[NGX_HTTP_LEARN_UPSTREAM_NF] = {
    -10.0f, 0.25f, 0.0f, 0.0f, 0.0f
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
        name.len = sizeof("learn_balancer:") - 1 + us->host.len;
        name.data = ngx_pnalloc(cf->pool, name.len);
        if (name.data == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(name.data, "learn_balancer:%V", &us->host);
        lucf->zone_name = name;
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

        ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                      "learn_balancer \"%V\": the peers changed, "
                      "learning afresh", &lucf->uscf->host);

        ngx_slab_free(shpool, olucf->sh);
    }

    if (shm_zone->shm.exists) {
        lucf->sh = shpool->data;
        return NGX_OK;
    }

    size = offsetof(ngx_http_learn_upstream_sh_t, peer)
           + lucf->npeers * sizeof(ngx_http_learn_upstream_peer_sh_t);

    sh = ngx_slab_calloc(shpool, size);
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->layout = lucf->layout;
    sh->npeers = lucf->npeers;

    for (i = 0; i < NGX_HTTP_LEARN_UPSTREAM_NF; i++) {
        sh->w[i] = ngx_http_learn_upstream_w0[i];
    }

    shpool->data = sh;
    lucf->sh = sh;

    len = sizeof(" in learn_balancer zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in learn_balancer zone \"%V\"%Z",
                &shm_zone->shm.name);

    return NGX_OK;
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
    ngx_int_t                             rc, pinned, chosen, base;
    ngx_uint_t                            i, n, pin;
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
    lp->picks++;

    if (rrp->peers->single) {
        rc = ngx_http_upstream_get_round_robin_peer(pc, rrp);
        if (rc != NGX_OK) {
            return rc;
        }

        lp->pin = NGX_HTTP_LEARN_PIN_NONE;
        lp->predicted = ngx_http_learn_upstream_score(lp, 0, rrp->current,
                                                      ngx_current_msec, lp->x);
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

    peers = rrp->peers;
    base = (peers == lucf->uscf->peer.data) ? 0 : lucf->nprimary;

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

    if (lp->key.len && chosen != pinned) {
        lp->pin = (pinned == NGX_ERROR) ? NGX_HTTP_LEARN_PIN_NEW
                                        : NGX_HTTP_LEARN_PIN_MOVED;

        if (ngx_http_learn_sticky_pin(lucf->sticky, sh, &lp->key, lp->hash,
                                      pinned, chosen)
            == NGX_OK
            && pinned != NGX_ERROR)
        {
            ngx_log_error(NGX_LOG_INFO, pc->log, 0,
                          "learn_sticky: key \"%V\" moved to %V "
                          "in upstream \"%V\"",
                          &lp->key, &peer->name, &lucf->uscf->host);
        }

    } else {
        lp->pin = lp->key.len ? NGX_HTTP_LEARN_PIN_HIT
                              : NGX_HTTP_LEARN_PIN_NONE;
    }

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
 * Chooses among the usable peers of one list (primary or backup; base
 * is the index of its first peer in the zone): the pinned peer while it
 * is usable and not failing, else the lowest predicted time among all
 * peers (at most 3) or two random ones, or with probability "explore" a
 * random one.  Returns the zone index, or NGX_ERROR when none is usable.
 */

static ngx_int_t
ngx_http_learn_upstream_choose(ngx_http_learn_upstream_peer_data_t *lp,
    ngx_http_upstream_rr_peers_t *peers, ngx_uint_t base, ngx_int_t pinned,
    time_t now, ngx_msec_t msec)
{
    float                                s, best, x[NGX_HTTP_LEARN_UPSTREAM_NF];
    ngx_uint_t                           i, k, n, m, start, cand[3];
    ngx_http_upstream_rr_peer_t         *peer, *cpeer[3];
    ngx_http_learn_upstream_sh_t        *sh;
    ngx_http_learn_upstream_srv_conf_t  *lucf;

    lucf = lp->conf;
    sh = lucf->sh;
    n = peers->number;

    if (pinned >= (ngx_int_t) base && pinned < (ngx_int_t) (base + n)) {
        i = pinned - base;
        peer = ngx_http_learn_upstream_nth(peers, i);

        if (ngx_http_learn_upstream_usable(&lp->rrp, peer, i, now)
            && sh->peer[pinned].fail < NGX_HTTP_LEARN_UPSTREAM_FAILING)
        {
            lp->predicted = ngx_http_learn_upstream_score(lp, pinned, peer,
                                                          msec, lp->x);
            return pinned;
        }
    }

    /* the candidates: every usable peer of a short list, else two */

    m = 0;

    if (n <= 3) {
        start = ngx_random() % n;

        for (k = 0; k < n; k++) {
            i = (start + k) % n;
            peer = ngx_http_learn_upstream_nth(peers, i);

            if (ngx_http_learn_upstream_usable(&lp->rrp, peer, i, now)) {
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

            if (ngx_http_learn_upstream_usable(&lp->rrp, peer, i, now)) {
                cand[m] = i;
                cpeer[m++] = peer;
            }
        }

        /* few usable peers left: look at each */

        for (peer = peers->peer, i = 0; peer && m < 2; peer = peer->next) {
            if ((m == 0 || i != cand[0])
                && ngx_http_learn_upstream_usable(&lp->rrp, peer, i, now))
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
        lp->predicted = ngx_http_learn_upstream_score(lp, base + cand[k],
                                                      cpeer[k], msec, lp->x);
        return base + cand[k];
    }

    best = 0;
    k = 0;

    for (i = 0; i < m; i++) {
        s = ngx_http_learn_upstream_score(lp, base + cand[i], cpeer[i], msec,
                                          x);

        if (i == 0 || s < best) {
            best = s;
            k = i;
            ngx_memcpy(lp->x, x, sizeof(x));
        }
    }

    lp->predicted = best;

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


static ngx_uint_t
ngx_http_learn_upstream_usable(ngx_http_upstream_rr_peer_data_t *rrp,
    ngx_http_upstream_rr_peer_t *peer, ngx_uint_t i, time_t now)
{
    if (ngx_http_learn_upstream_tried(rrp, i)) {
        return 0;
    }

    if (peer->down) {
        return 0;
    }

    if (peer->max_fails
        && peer->fails >= peer->max_fails
        && now - peer->checked <= peer->fail_timeout)
    {
        return 0;
    }

    if (peer->max_conns && peer->conns >= peer->max_conns) {
        return 0;
    }

    return 1;
}


/*
 * The predicted time of peer gi in ms divided by its weight; fills x with
 * the features.  A peer never seen, or idle for longer than "probe",
 * scores 0, so that it is tried.
 */

static float
ngx_http_learn_upstream_score(ngx_http_learn_upstream_peer_data_t *lp,
    ngx_uint_t gi, ngx_http_upstream_rr_peer_t *peer, ngx_msec_t msec,
    float *x)
{
    float                               L, y, lat;
    ngx_uint_t                          j;
    ngx_http_learn_upstream_sh_t       *sh;
    ngx_http_learn_upstream_peer_sh_t  *ps;

    sh = lp->conf->sh;
    ps = &sh->peer[gi];

    L = sh->lat_avg > 0.001f ? sh->lat_avg : 1.0f;
    lat = ps->lat / L;

    x[0] = 1.0f;
    x[1] = lat;
    x[2] = (float) ps->in_flight * lat;
    x[3] = ps->fail;
    x[4] = lp->body;

    if (ps->done == 0
        || (ngx_msec_int_t) (msec - ps->last)
           > (ngx_msec_int_t) lp->conf->probe)
    {
        return 0.0f;
    }

    y = 0.0f;

    for (j = 0; j < NGX_HTTP_LEARN_UPSTREAM_NF; j++) {
        y += sh->w[j] * x[j];
    }

    y *= L;

    if (y < 0.001f) {
        y = 0.001f;
    }

    return peer->weight > 1 ? y / peer->weight : y;
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
 * model with one normalized LMS step and moves the peer's averages.
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
        p = ngx_pnalloc(r->pool, NGX_INT32_LEN + 8);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_sprintf(p, "%.3f", (double) lp->predicted) - p;
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


/* learn_status: "NAME": {...}, ... for every upstream with the balancer */

#define NGX_HTTP_LEARN_UPSTREAM_STATUS_LEN  512
#define NGX_HTTP_LEARN_UPSTREAM_PEER_LEN    (384 + NGX_SOCKADDR_STRLEN)


size_t
ngx_http_learn_upstream_status_size(ngx_http_request_t *r)
{
    size_t                               size;
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

        size += NGX_HTTP_LEARN_UPSTREAM_STATUS_LEN + uscfp[i]->host.len
                + lucf->npeers * NGX_HTTP_LEARN_UPSTREAM_PEER_LEN;
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
                *p++ = '}';

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


static u_char *
ngx_http_learn_upstream_float(u_char *p, double v)
{
    int  n;

    if (v != v || v > 1e30 || v < -1e30) {
        return ngx_cpymem(p, "null", 4);
    }

    n = snprintf((char *) p, 32, "%.6g", v);

    return p + (n > 0 ? n : 0);
}
