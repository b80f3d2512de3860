
/*
 * learn_status for the balancer: the "upstreams" object of the JSON page
 * and the learn_upstream_* / learn_sticky_* Prometheus families, for every
 * upstream with learn_balancer; and the formatting of
 * $learn_upstream_predicted_ms.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_learn_upstream.h"
#include "ngx_http_learn_metrics.h"


/*
 * learn_status: "NAME": {...}, ... for every upstream with the balancer,
 * or the same counters as Prometheus series
 */

#define NGX_HTTP_LEARN_UPSTREAM_STATUS_LEN  512
#define NGX_HTTP_LEARN_UPSTREAM_PEER_LEN    (512 + 6 * NGX_SOCKADDR_STRLEN)

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


static u_char *ngx_http_learn_upstream_prom_series(u_char *p,
    ngx_uint_t metric, ngx_http_upstream_srv_conf_t *uscf,
    ngx_http_learn_upstream_srv_conf_t *lucf);
static u_char *ngx_http_learn_upstream_float(u_char *p, double v);
static u_char *ngx_http_learn_upstream_json_str(u_char *p, ngx_str_t *s);
static ngx_http_learn_upstream_srv_conf_t *ngx_http_learn_upstream_balanced(
    ngx_http_upstream_srv_conf_t *uscf);


/* the balancer's conf of an upstream that has learn_balancer and a model */

static ngx_http_learn_upstream_srv_conf_t *
ngx_http_learn_upstream_balanced(ngx_http_upstream_srv_conf_t *uscf)
{
    ngx_http_learn_upstream_srv_conf_t  *lucf;

    if (uscf->srv_conf == NULL) {
        return NULL;
    }

    lucf = ngx_http_conf_upstream_srv_conf(uscf,
                                           ngx_http_learn_upstream_module);

    return (lucf->enabled && lucf->sh) ? lucf : NULL;
}


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
        lucf = ngx_http_learn_upstream_balanced(uscfp[i]);
        if (lucf == NULL) {
            continue;
        }

        /* names are escaped for JSON: at most 6 bytes each */
        json = NGX_HTTP_LEARN_UPSTREAM_STATUS_LEN + 6 * uscfp[i]->host.len
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
        lucf = ngx_http_learn_upstream_balanced(uscfp[i]);
        if (lucf == NULL) {
            continue;
        }

        if ((size_t) (last - p) < NGX_HTTP_LEARN_UPSTREAM_STATUS_LEN
                                  + 6 * uscfp[i]->host.len
                                  + lucf->npeers
                                    * NGX_HTTP_LEARN_UPSTREAM_PEER_LEN)
        {
            break;
        }

        sh = lucf->sh;
        count = sh->pick_count;
        ns = count ? sh->pick_ns / count : 0;

        p = first ? ngx_cpymem(p, "\"", 1) : ngx_cpymem(p, ", \"", 3);
        p = ngx_http_learn_upstream_json_str(p, &uscfp[i]->host);
        p = ngx_cpymem(p, "\": {\"balancer\": \"learn\", \"explore\": ",
                       sizeof("\": {\"balancer\": \"learn\", \"explore\": ")
                       - 1);
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

                p = gi ? ngx_cpymem(p, ", \"", 3) : ngx_cpymem(p, "\"", 1);
                p = ngx_http_learn_upstream_json_str(p, &peer->name);
                p = ngx_sprintf(p, "\": {\"picks\": %uA, "
                                "\"in_flight\": %uA, \"explored\": %uA, "
                                "\"failures\": %uA, \"pins\": %uA, "
                                "\"backup\": %s, \"down\": %s, "
                                "\"predicted_ms\": ",
                                ps->picks,
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
            lucf = ngx_http_learn_upstream_balanced(uscfp[i]);
            if (lucf == NULL) {
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
 * A name from the configuration as a JSON string's contents, at most 6
 * bytes a byte (this file needs nothing of the core: bench/pick_bench.c
 * builds it alone)
 */

static u_char *
ngx_http_learn_upstream_json_str(u_char *p, ngx_str_t *s)
{
    u_char      c;
    ngx_uint_t  i;

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = c;

        } else if (c < 0x20 || c == 0x7f) {
            p = ngx_sprintf(p, "\\u%04xi", (ngx_int_t) c);

        } else {
            *p++ = c;
        }
    }

    return p;
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
