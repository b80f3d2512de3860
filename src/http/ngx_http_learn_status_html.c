
/*
 * learn_status's HTML page (ngx_http_learn_status_html.h), written with
 * ngx_http_learn_html.h and ngx_http_learn_svg.h from the same zone
 * fields as the JSON.
 */


#include "ngx_http_learn.h"
#include "ngx_http_learn_upstream.h"
#include "ngx_http_learn_status_html.h"
#include "ngx_http_learn_svg.h"

#include <math.h>


#define NGX_HTTP_LEARN_STATUS_HTML_SIZE   (64 * 1024)
#define NGX_HTTP_LEARN_STATUS_REFRESH_MAX 3600


static void ngx_http_learn_status_html_model(ngx_http_learn_html_t *h,
    ngx_http_learn_model_t *lm, ngx_msec_t now);
static void ngx_http_learn_status_html_loss(ngx_http_learn_html_t *h,
    ngx_http_learn_model_t *lm);
static void ngx_http_learn_status_html_rates(ngx_http_learn_html_t *h,
    ngx_http_learn_shm_t *shm, ngx_msec_t now);
static void ngx_http_learn_status_html_latency(ngx_http_learn_html_t *h,
    const char *name, ngx_http_learn_hist_t *hist);
static void ngx_http_learn_status_html_upstreams(ngx_http_request_t *r,
    ngx_http_learn_html_t *h);
static void ngx_http_learn_status_html_upstream(ngx_http_request_t *r,
    ngx_http_learn_html_t *h, ngx_http_upstream_srv_conf_t *uscf,
    ngx_http_learn_upstream_srv_conf_t *lucf);
static void ngx_http_learn_status_html_current(ngx_http_learn_shm_t *shm,
    ngx_http_learn_sample_t *s);


void
ngx_http_learn_status_samples_take(ngx_http_learn_main_conf_t *lmcf)
{
    ngx_uint_t                i;
    ngx_msec_t                now;
    ngx_http_learn_sample_t   current;
    ngx_http_learn_model_t  **lmp;

    now = ngx_http_learn_samples_now();
    lmp = lmcf->models.elts;

    for (i = 0; i < lmcf->models.nelts; i++) {
        ngx_http_learn_status_html_current(lmp[i]->shm, &current);
        ngx_http_learn_samples_take(&lmp[i]->shm->samples, now, &current);
    }
}


static void
ngx_http_learn_status_html_current(ngx_http_learn_shm_t *shm,
    ngx_http_learn_sample_t *s)
{
    s->msec = 0;
    s->trains = shm->trains;
    s->predicts = shm->predicts;
    s->rejects = shm->rejects;
}


ngx_int_t
ngx_http_learn_status_html(ngx_http_request_t *r)
{
    ngx_int_t                    n;
    ngx_str_t                    title, arg;
    ngx_uint_t                   i, refresh;
    ngx_msec_t                   now;
    ngx_http_learn_html_t        h;
    ngx_http_learn_model_t     **lmp;
    ngx_http_learn_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_learn_module);
    lmp = lmcf->models.elts;

    refresh = 0;

    if (ngx_http_arg(r, (u_char *) "refresh", 7, &arg) == NGX_OK) {
        n = ngx_atoi(arg.data, arg.len);

        if (n < 0 || n > NGX_HTTP_LEARN_STATUS_REFRESH_MAX) {
            return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                         "refresh must be 0 to %d seconds",
                                         NGX_HTTP_LEARN_STATUS_REFRESH_MAX);
        }

        refresh = n;
    }

    if (ngx_http_learn_html_init(&h, r->pool, NGX_HTTP_LEARN_STATUS_HTML_SIZE)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&title, "learn status");
    ngx_http_learn_html_begin(&h, &title, refresh);

    now = ngx_http_learn_samples_now();

    ngx_http_learn_html_printf(&h, "<p class=\"note\">nginx " NGINX_VERSION
                               ", worker %P, %ui model(s). The same figures "
                               "as JSON: <code>?format=json</code>; for "
                               "Prometheus: <code>?format=prometheus</code>;"
                               " this page every N seconds: "
                               "<code>?format=html&amp;refresh=N</code>.</p>\n",
                               ngx_pid, lmcf->models.nelts);

    for (i = 0; i < lmcf->models.nelts; i++) {
        ngx_http_learn_status_html_model(&h, lmp[i], now);
    }

    ngx_http_learn_status_html_upstreams(r, &h);

    ngx_http_learn_html_end(&h);

    return ngx_http_learn_html_send(r, &h);
}


static void
ngx_http_learn_status_html_model(ngx_http_learn_html_t *h,
    ngx_http_learn_model_t *lm, ngx_msec_t now)
{
    u_char                *p;
    ngx_http_learn_shm_t  *shm;

    shm = lm->shm;

    ngx_http_learn_html_literal(h, "<section class=\"model\" data-model=\"");
    ngx_http_learn_html_str(h, &lm->name);
    ngx_http_learn_html_literal(h, "\">\n<h2>model ");
    ngx_http_learn_html_str(h, &lm->name);
    ngx_http_learn_html_literal(h, "</h2>\n");

    ngx_http_learn_status_html_loss(h, lm);

    ngx_http_learn_html_literal(h, "<div class=\"tables\">"
                                "<table class=\"counters\">"
                                "<tr><th class=\"name\">counter</th>"
                                "<th>value</th></tr>");

    ngx_http_learn_html_row(h, "step", (double) shm->step);
    ngx_http_learn_html_row(h, "loss", shm->loss);
    ngx_http_learn_html_row(h, "loss_avg", shm->loss_avg);

    p = ngx_http_learn_html_reserve(h, 128);
    if (p) {
        p = ngx_cpymem(p, "<tr><td class=\"name\">device</td>"
                       "<td data-key=\"device\">",
                       sizeof("<tr><td class=\"name\">device</td>"
                              "<td data-key=\"device\">") - 1);
        p = ngx_http_learn_device_name(p, lm);
        h->pos = ngx_cpymem(p, "</td></tr>", sizeof("</td></tr>") - 1);
    }

    ngx_http_learn_html_row(h, "params",
                            (double) lm->model.param_count);
    ngx_http_learn_html_row(h, "inputs", lm->model.in_dim);
    ngx_http_learn_html_row(h, "outputs", lm->model.out_dim);
    ngx_http_learn_html_row(h, "trains", (double) shm->trains);
    ngx_http_learn_html_row(h, "predicts", (double) shm->predicts);
    ngx_http_learn_html_row(h, "rejected", (double) shm->rejects);
    ngx_http_learn_html_row(h, "rejected_steps",
                            (double) shm->rejected_steps);
    ngx_http_learn_html_row(h, "predict_rereads",
                            (double) shm->retries);
    ngx_http_learn_html_row(h, "batches", (double) shm->batches);
    ngx_http_learn_html_row(h, "batched_predicts",
                            (double) shm->batched);
    ngx_http_learn_html_row(h, "device_steps",
                            (double) shm->device_steps);
    ngx_http_learn_html_row(h, "device_predicts",
                            (double) shm->device_predicts);
    ngx_http_learn_html_row(h, "set_evals", (double) shm->set_evals);

    if (lm->ckpt_path.len) {
        ngx_http_learn_html_row(h, "checkpoint_step",
                                (double) shm->ckpt_step);
        ngx_http_learn_html_row(h, "checkpoint_writes",
                                (double) shm->ckpt_writes);
        ngx_http_learn_html_row(h, "checkpoint_failures",
                                (double) shm->ckpt_failures);
    }

    ngx_http_learn_html_literal(h, "</table>\n");

    ngx_http_learn_status_html_rates(h, shm, now);

    ngx_http_learn_html_literal(h, "<div><table class=\"latency\"><tr>"
                                "<th class=\"name\">latency</th>"
                                "<th>requests</th><th>mean ms</th>"
                                "<th>p50 &le; ms</th><th>p90 &le; ms</th>"
                                "<th>p99 &le; ms</th></tr>");
    ngx_http_learn_status_html_latency(h, "predict", &shm->predict_hist);
    ngx_http_learn_status_html_latency(h, "train", &shm->train_hist);
    ngx_http_learn_html_literal(h, "</table>\n<p class=\"note\">Quantiles "
                                "are the bounds of the histogram buckets "
                                "they fall in (as in the JSON's "
                                "<code>predict_latency</code>).</p>"
                                "</div>\n</section>\n");
}


static void
ngx_http_learn_status_html_loss(ngx_http_learn_html_t *h,
    ngx_http_learn_model_t *lm)
{
    double                        *x, *y;
    uint64_t                       stride;
    ngx_uint_t                     i, n;
    ngx_http_learn_point_t         pts[NGX_HTTP_LEARN_HISTORY];
    ngx_http_learn_svg_chart_t     chart;
    ngx_http_learn_svg_series_t    series;

    n = ngx_http_learn_history_read(&lm->shm->history, pts, &stride);

    x = ngx_pnalloc(h->pool, 2 * (n + 1) * sizeof(double));
    if (x == NULL) {
        h->failed = 1;
        return;
    }

    y = x + n + 1;

    for (i = 0; i < n; i++) {
        x[i] = (double) pts[i].step;
        y[i] = pts[i].loss;
    }

    ngx_memzero(&chart, sizeof(chart));
    ngx_str_set(&chart.title, "loss history");
    ngx_str_set(&chart.x_label, "step");
    ngx_str_set(&chart.y_label, "loss");
    chart.y_scale = NGX_HTTP_LEARN_SVG_AUTO;

    series.name = lm->name;
    series.x = x;
    series.y = y;
    series.n = n;

    ngx_http_learn_html_literal(h, "<figure class=\"loss\">");
    (void) ngx_http_learn_svg_lines(h, &chart, &series, 1);

    if (n == 0) {
        ngx_http_learn_html_literal(h, "<figcaption>No train step since "
                                    "this zone started (the history is not "
                                    "kept in checkpoints).</figcaption>"
                                    "</figure>\n");
        return;
    }

    ngx_http_learn_html_printf(h, "<figcaption class=\"history\" "
                               "data-stride=\"%uL\">Steps %L to %L: %ui "
                               "points, one per %uL step%s (at most %d: "
                               "when they fill, every other one goes and "
                               "the spacing doubles).</figcaption>"
                               "</figure>\n",
                               stride, pts[0].step, pts[n - 1].step, n,
                               stride, stride == 1 ? "" : "s",
                               NGX_HTTP_LEARN_HISTORY);
}


static void
ngx_http_learn_status_html_rates(ngx_http_learn_html_t *h,
    ngx_http_learn_shm_t *shm, ngx_msec_t now)
{
    ngx_http_learn_rate_t     rate;
    ngx_http_learn_sample_t   current;

    ngx_http_learn_status_html_current(shm, &current);
    ngx_http_learn_samples_rate(&shm->samples, now, &current, &rate);

    if (rate.window_ms == 0) {
        ngx_http_learn_html_literal(h, "<p class=\"rates note\" "
                                    "data-window-ms=\"0\">Rates need an "
                                    "earlier look at this page (or any "
                                    "learn_status format) 1 to 60 s ago: "
                                    "reload it, or add "
                                    "<code>&amp;refresh=5</code>.</p>\n");
        return;
    }

    ngx_http_learn_html_printf(h, "<table class=\"rates\" "
                               "data-window-ms=\"%M\"><tr>"
                               "<th class=\"name\">per second, last %.1f s"
                               "</th><th>value</th></tr>",
                               rate.window_ms, rate.window_ms / 1000.0);
    ngx_http_learn_html_row(h, "trains_per_s", rate.trains);
    ngx_http_learn_html_row(h, "predicts_per_s", rate.predicts);
    ngx_http_learn_html_row(h, "rejected_per_s", rate.rejects);
    ngx_http_learn_html_literal(h, "</table>\n");
}


static void
ngx_http_learn_status_html_latency(ngx_http_learn_html_t *h,
    const char *name, ngx_http_learn_hist_t *hist)
{
    double             q[3] = { 0.5, 0.9, 0.99 };
    uint64_t           us;
    ngx_uint_t         i;
    ngx_atomic_uint_t  count, sum;

    sum = hist->sum_us;
    (void) ngx_http_learn_hist_quantile(hist, 1, &count);

    ngx_http_learn_html_printf(h, "<tr data-key=\"%s\"><td class=\"name\">%s"
                               "</td><td>%uA</td><td>", name, name, count);
    ngx_http_learn_html_number(h, count ? sum / 1000.0 / count : NAN, 4);
    ngx_http_learn_html_literal(h, "</td>");

    for (i = 0; i < 3; i++) {
        us = ngx_http_learn_hist_quantile(hist, q[i], &count);

        ngx_http_learn_html_literal(h, "<td>");

        if (count == 0) {
            ngx_http_learn_html_literal(h, "n/a");

        } else if (us == UINT64_MAX) {
            ngx_http_learn_html_literal(h, "&gt; 1000");

        } else {
            ngx_http_learn_html_number(h, us / 1000.0, 4);
        }

        ngx_http_learn_html_literal(h, "</td>");
    }

    ngx_http_learn_html_literal(h, "</tr>");
}


static void
ngx_http_learn_status_html_upstreams(ngx_http_request_t *r,
    ngx_http_learn_html_t *h)
{
    ngx_uint_t                           i;
    ngx_http_upstream_srv_conf_t       **uscfp;
    ngx_http_upstream_main_conf_t       *umcf;
    ngx_http_learn_upstream_srv_conf_t  *lucf;

    umcf = ngx_http_get_module_main_conf(r, ngx_http_upstream_module);
    if (umcf == NULL) {
        return;
    }

    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if (uscfp[i]->srv_conf == NULL) {
            continue;
        }

        lucf = ngx_http_conf_upstream_srv_conf(uscfp[i],
                                               ngx_http_learn_upstream_module);

        if (lucf->enabled && lucf->sh) {
            ngx_http_learn_status_html_upstream(r, h, uscfp[i], lucf);
        }
    }
}


/*
 * The balancer's figures per peer: a table and predicted vs observed
 * latency as bars (the recent averages the JSON's "peers" has)
 */

static void
ngx_http_learn_status_html_upstream(ngx_http_request_t *r,
    ngx_http_learn_html_t *h, ngx_http_upstream_srv_conf_t *uscf,
    ngx_http_learn_upstream_srv_conf_t *lucf)
{
    double                              *predicted, *observed;
    ngx_str_t                           *names;
    ngx_uint_t                           gi, n;
    ngx_http_upstream_rr_peer_t         *peer;
    ngx_http_upstream_rr_peers_t        *peers, *list;
    ngx_http_learn_upstream_sh_t        *sh;
    ngx_http_learn_upstream_peer_sh_t   *ps;
    ngx_http_learn_svg_chart_t           chart;
    ngx_http_learn_svg_series_t          series[2];

    sh = lucf->sh;
    n = lucf->npeers;

    names = ngx_pcalloc(r->pool, (n + 1) * sizeof(ngx_str_t));
    predicted = ngx_pnalloc(r->pool, 2 * (n + 1) * sizeof(double));

    if (names == NULL || predicted == NULL) {
        h->failed = 1;
        return;
    }

    observed = predicted + n + 1;

    ngx_http_learn_html_literal(h, "<section class=\"upstream\" "
                                "data-upstream=\"");
    ngx_http_learn_html_str(h, &uscf->host);
    ngx_http_learn_html_literal(h, "\">\n<h2>upstream ");
    ngx_http_learn_html_str(h, &uscf->host);
    ngx_http_learn_html_printf(h, "</h2>\n<p>learn_balancer: %uA updates, "
                               "mean latency ", sh->updates);
    ngx_http_learn_html_number(h, sh->lat_avg, 4);
    ngx_http_learn_html_literal(h, " ms, mean prediction error ");
    ngx_http_learn_html_number(h, sh->err_avg, 4);
    ngx_http_learn_html_literal(h, " ms.</p>\n<table class=\"peers\"><tr>"
                                "<th class=\"name\">peer</th><th>picks</th>"
                                "<th>in flight</th><th>failures</th>"
                                "<th>predicted ms</th><th>observed ms</th>"
                                "<th>fail rate</th><th>state</th></tr>");

    peers = uscf->peer.data;
    gi = 0;

    ngx_http_upstream_rr_peers_rlock(peers);

    for (list = peers; list; list = list->next) {
        for (peer = list->peer; peer && gi < n; peer = peer->next) {
            ps = &sh->peer[gi];

            names[gi].data = ngx_pstrdup(r->pool, &peer->name);
            names[gi].len = names[gi].data ? peer->name.len : 0;
            predicted[gi] = ps->predicted;
            observed[gi] = ps->observed;

            ngx_http_learn_html_literal(h, "<tr class=\"peer\" data-peer=\"");
            ngx_http_learn_html_text(h, names[gi].data, names[gi].len);
            ngx_http_learn_html_literal(h, "\"><td class=\"name\">");
            ngx_http_learn_html_text(h, names[gi].data, names[gi].len);
            ngx_http_learn_html_printf(h, "</td><td>%uA</td><td>%uA</td>"
                                       "<td>%uA</td><td>",
                                       ps->picks, ps->in_flight,
                                       ps->failures);
            ngx_http_learn_html_number(h, ps->predicted, 4);
            ngx_http_learn_html_literal(h, "</td><td>");
            ngx_http_learn_html_number(h, ps->observed, 4);
            ngx_http_learn_html_literal(h, "</td><td>");
            ngx_http_learn_html_number(h, ps->fail, 3);
            ngx_http_learn_html_printf(h, "</td><td>%s%s</td></tr>",
                                       list == peers ? "primary" : "backup",
                                       peer->down ? ", down" : "");
            gi++;
        }
    }

    ngx_http_upstream_rr_peers_unlock(peers);

    ngx_http_learn_html_literal(h, "</table>\n<figure class=\"latency\">");

    ngx_memzero(&chart, sizeof(chart));
    ngx_str_set(&chart.title, "predicted vs observed latency");
    ngx_str_set(&chart.x_label, "peer");
    ngx_str_set(&chart.y_label, "ms");

    ngx_str_set(&series[0].name, "predicted");
    series[0].x = NULL;
    series[0].y = predicted;
    series[0].n = gi;

    ngx_str_set(&series[1].name, "observed");
    series[1].x = NULL;
    series[1].y = observed;
    series[1].n = gi;

    (void) ngx_http_learn_svg_bars(h, &chart, names, gi, series, 2);

    ngx_http_learn_html_literal(h, "<figcaption>Recent averages (EWMA) of "
                                "the balancer's predictions for each peer "
                                "and of the latencies it saw; a peer not "
                                "picked yet has none.</figcaption></figure>"
                                "\n</section>\n");
}
