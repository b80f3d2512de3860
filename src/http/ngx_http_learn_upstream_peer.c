
/*
 * learn_balancer's pick: it wraps round robin the way least_conn does
 * (round robin builds the peer lists and keeps max_fails, fail_timeout,
 * backup, down, max_conns, "zone" and "keepalive" working); this file
 * replaces get and free.  get_peer asks the sticky table for the key's
 * pin, then the model (ngx_http_learn_upstream_learn.c) for each usable
 * peer's cost; free_peer hands the finished request to the model.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <math.h>

#include "ngx_http_learn_upstream.h"


#define NGX_HTTP_LEARN_UPSTREAM_FAILING  0.5f   /* a pin moves above this */

#define ngx_http_learn_upstream_tried(rrp, i)                                 \
    ((rrp)->tried[(i) / (8 * sizeof(uintptr_t))]                             \
     & ((uintptr_t) 1 << (i) % (8 * sizeof(uintptr_t))))


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
static void ngx_http_learn_upstream_free_peer(ngx_peer_connection_t *pc,
    void *data, ngx_uint_t state);


ngx_int_t
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
