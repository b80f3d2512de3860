
/*
 * learn_balancer's model, one per upstream, shared by all workers in the
 * balancer zone: for peer p and a request of body size b,
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


#define NGX_HTTP_LEARN_UPSTREAM_ALPHA    0.2f   /* per peer EWMAs */
#define NGX_HTTP_LEARN_UPSTREAM_BETA     0.05f  /* upstream-wide EWMAs */
#define NGX_HTTP_LEARN_UPSTREAM_YMAX     50.0f  /* target cap, units of L */
#define NGX_HTTP_LEARN_UPSTREAM_EMAX     10.0f  /* error clip, units of L */


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


/* a fresh model: the prior */

void
ngx_http_learn_upstream_model_init(ngx_http_learn_upstream_sh_t *sh)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_LEARN_UPSTREAM_NF; i++) {
        sh->w[i] = ngx_http_learn_upstream_w0[i];
    }
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

float
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


/*
 * One finished request: its latency (a failure counts as at least the
 * penalty, so that a peer failing fast does not look fast) trains the
 * model with one normalized LMS step and moves the peer's averages.  The
 * first request of a peer trains only its averages: its features were
 * placeholders (no latency known yet).
 */

void
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
