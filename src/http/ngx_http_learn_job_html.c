
/*
 * learn_job_status as a page (Accept: text/html, ?format=html): one job
 * with its per-epoch curves, or the list of jobs with a small loss curve
 * each, written with ngx_http_learn_html.h and ngx_http_learn_svg.h from
 * copies of the same table entries as the JSON (job.c takes them under
 * the table's lock), so the points' data-x / data-y are the JSON's
 * history numbers, text for text.
 */


#include "ngx_http_learn_job.h"
#include "ngx_http_learn_svg.h"

#include <math.h>


#define NGX_HTTP_LEARN_JOB_HTML_SIZE     (32 * 1024)
#define NGX_HTTP_LEARN_JOB_REFRESH_MAX   3600


typedef struct {
    double                        *epoch;
    double                        *loss;
    double                        *val_loss;
    double                        *val_accuracy;
    ngx_uint_t                     n;
    ngx_uint_t                     accuracy;  /* a finite val_accuracy */
} ngx_http_learn_job_curves_t;


static ngx_int_t ngx_http_learn_job_html_curves(ngx_http_learn_html_t *h,
    ngx_http_learn_job_entry_t *e, ngx_http_learn_job_curves_t *c);
static void ngx_http_learn_job_html_one(ngx_http_learn_html_t *h,
    ngx_http_learn_job_entry_t *e);
static void ngx_http_learn_job_html_list(ngx_http_learn_html_t *h,
    ngx_http_learn_job_entry_t *jobs, ngx_uint_t n);
static void ngx_http_learn_job_html_text(ngx_http_learn_html_t *h,
    const char *key, const u_char *s);
static void ngx_http_learn_job_html_time(ngx_http_learn_html_t *h,
    const char *key, time_t t);


/*
 * "one": jobs[0] is the job asked for (?jobId=); else the n jobs of the
 * table in the order they came
 */

ngx_int_t
ngx_http_learn_job_html(ngx_http_request_t *r,
    ngx_http_learn_job_entry_t *jobs, ngx_uint_t n, ngx_uint_t one)
{
    u_char                 buf[32];
    ngx_int_t              k;
    ngx_str_t              title, arg;
    ngx_uint_t             refresh;
    ngx_http_learn_html_t  h;

    refresh = 0;

    if (ngx_http_arg(r, (u_char *) "refresh", 7, &arg) == NGX_OK) {
        k = ngx_atoi(arg.data, arg.len);

        if (k < 0 || k > NGX_HTTP_LEARN_JOB_REFRESH_MAX) {
            return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                         "refresh must be 0 to %d seconds",
                                         NGX_HTTP_LEARN_JOB_REFRESH_MAX);
        }

        refresh = (ngx_uint_t) k;
    }

    if (ngx_http_learn_html_init(&h, r->pool, NGX_HTTP_LEARN_JOB_HTML_SIZE)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (one) {
        title.data = buf;
        title.len = ngx_sprintf(buf, "learn job %016uxL", jobs[0].id) - buf;

    } else {
        ngx_str_set(&title, "learn jobs");
    }

    ngx_http_learn_html_begin(&h, &title, refresh);

    if (one) {
        ngx_http_learn_job_html_one(&h, &jobs[0]);

    } else {
        ngx_http_learn_job_html_list(&h, jobs, n);
    }

    ngx_http_learn_html_end(&h);

    return ngx_http_learn_html_send(r, &h);
}


/* the history ring, oldest first, as the JSON's "history" */

static ngx_int_t
ngx_http_learn_job_html_curves(ngx_http_learn_html_t *h,
    ngx_http_learn_job_entry_t *e, ngx_http_learn_job_curves_t *c)
{
    ngx_uint_t                   i, n, first;
    ngx_http_learn_job_epoch_t  *ep;

    n = ngx_min(e->nhist, NGX_HTTP_LEARN_JOB_HISTORY);
    first = e->nhist - n;

    c->epoch = ngx_palloc(h->pool, 4 * (n + 1) * sizeof(double));
    if (c->epoch == NULL) {
        h->failed = 1;
        return NGX_ERROR;
    }

    c->loss = c->epoch + n + 1;
    c->val_loss = c->loss + n + 1;
    c->val_accuracy = c->val_loss + n + 1;
    c->n = n;
    c->accuracy = 0;

    for (i = 0; i < n; i++) {
        ep = &e->hist[(first + i) % NGX_HTTP_LEARN_JOB_HISTORY];

        c->epoch[i] = (double) ep->epoch;
        c->loss[i] = ep->loss;
        c->val_loss[i] = ep->val_loss;
        c->val_accuracy[i] = ep->val_accuracy;

        if (isfinite(ep->val_accuracy)) {
            c->accuracy = 1;
        }
    }

    return NGX_OK;
}


static void
ngx_http_learn_job_html_one(ngx_http_learn_html_t *h,
    ngx_http_learn_job_entry_t *e)
{
    u_char                        id[17];
    ngx_uint_t                    train;
    ngx_http_learn_svg_chart_t    chart;
    ngx_http_learn_svg_series_t   s[2];
    ngx_http_learn_job_curves_t   c;

    train = (e->kind == NGX_HTTP_LEARN_JOB_KIND_TRAIN);
    (void) ngx_sprintf(id, "%016uxL%Z", e->id);

    ngx_http_learn_html_printf(h, "<section class=\"job\" data-job=\"%s\" "
                               "data-status=\"%V\">\n", id,
                               &ngx_http_learn_job_states[e->state]);

    ngx_http_learn_html_printf(h, "<p class=\"note\">The same figures as "
                               "JSON: <code>?jobId=%s&amp;format=json</code>;"
                               " every job: <a href=\"?format=html\">the "
                               "list</a>; this page every N seconds: "
                               "<code>&amp;refresh=N</code>.</p>\n", id);

    if (train && ngx_http_learn_job_html_curves(h, e, &c) == NGX_OK) {
        ngx_memzero(&chart, sizeof(chart));
        ngx_str_set(&chart.title, "loss by epoch");
        ngx_str_set(&chart.x_label, "epoch");
        ngx_str_set(&chart.y_label, "loss");
        chart.y_scale = NGX_HTTP_LEARN_SVG_AUTO;

        ngx_str_set(&s[0].name, "loss");
        s[0].x = c.epoch;
        s[0].y = c.loss;
        s[0].n = c.n;
        ngx_str_set(&s[1].name, "val_loss");
        s[1].x = c.epoch;
        s[1].y = c.val_loss;
        s[1].n = c.n;

        ngx_http_learn_html_literal(h, "<figure class=\"loss\">");
        (void) ngx_http_learn_svg_lines(h, &chart, s, 2);

        if (c.n == 0) {
            ngx_http_learn_html_literal(h, "<figcaption>No epoch has ended "
                                        "yet.</figcaption>");

        } else {
            ngx_http_learn_html_printf(h, "<figcaption>%ui epoch(s): the "
                                       "mean training loss of each epoch "
                                       "and, with a validation split, the "
                                       "loss on the held-out rows after "
                                       "it.</figcaption>", c.n);
        }

        ngx_http_learn_html_literal(h, "</figure>\n");

        if (c.accuracy) {
            ngx_memzero(&chart, sizeof(chart));
            ngx_str_set(&chart.title, "validation accuracy by epoch");
            ngx_str_set(&chart.x_label, "epoch");
            ngx_str_set(&chart.y_label, "accuracy");
            chart.height = 220;
            chart.y_scale = NGX_HTTP_LEARN_SVG_LINEAR;

            ngx_str_set(&s[0].name, "val_accuracy");
            s[0].x = c.epoch;
            s[0].y = c.val_accuracy;
            s[0].n = c.n;

            ngx_http_learn_html_literal(h, "<figure class=\"accuracy\">");
            (void) ngx_http_learn_svg_lines(h, &chart, s, 1);
            ngx_http_learn_html_literal(h, "</figure>\n");
        }
    }

    ngx_http_learn_html_literal(h, "<table class=\"job\"><tr>"
                                "<th class=\"name\">field</th>"
                                "<th>value</th></tr>");

    ngx_http_learn_job_html_text(h, "status",
                                 ngx_http_learn_job_states[e->state].data);
    ngx_http_learn_job_html_text(h, "kind", (u_char *) (train ? "train"
                                                              : "predict"));
    ngx_http_learn_job_html_text(h, "model", e->model);
    ngx_http_learn_job_html_text(h, "input", e->input);

    if (train) {
        ngx_http_learn_html_row(h, "epoch", (double) e->epoch);
        ngx_http_learn_html_row(h, "epochs", (double) e->epochs);
    }

    ngx_http_learn_html_row(h, "samples", (double) e->samples);

    if (train) {
        ngx_http_learn_html_row(h, "rows", (double) e->rows);
        ngx_http_learn_html_row(h, "val_rows", (double) e->val_rows);
        ngx_http_learn_html_row(h, "batch_size", (double) e->batch_size);
        ngx_http_learn_html_row(h, "steps", (double) e->steps);
        ngx_http_learn_job_html_text(h, "shuffle",
                                     (u_char *) (e->shuffle ? "true"
                                                            : "false"));
        ngx_http_learn_html_row(h, "seed", (double) e->seed);
        ngx_http_learn_html_row(h, "loss", e->loss);
        ngx_http_learn_html_row(h, "val_loss", e->val_loss);
        ngx_http_learn_html_row(h, "val_accuracy", e->val_accuracy);
        ngx_http_learn_html_row(h, "samples_per_s", e->samples_per_s);
        ngx_http_learn_html_row(h, "version",
                                e->version > 0 ? (double) e->version
                                               : NAN);
    }

    ngx_http_learn_html_row(h, "step",
                            e->step >= 0 ? (double) e->step : NAN);
    ngx_http_learn_job_html_text(h, "output",
                                 e->output[0] ? e->output
                                              : (u_char *) "n/a");
    ngx_http_learn_job_html_text(h, "error",
                                 e->state == NGX_HTTP_LEARN_JOB_ERROR
                                 && e->error[0] ? e->error
                                                : (u_char *) "n/a");
    ngx_http_learn_job_html_time(h, "created", e->created);
    ngx_http_learn_job_html_time(h, "started", e->started);
    ngx_http_learn_job_html_time(h, "finished", e->finished);
    ngx_http_learn_html_row(h, "worker", (double) e->pid);

    ngx_http_learn_html_literal(h, "</table>\n</section>\n");
}


static void
ngx_http_learn_job_html_list(ngx_http_learn_html_t *h,
    ngx_http_learn_job_entry_t *jobs, ngx_uint_t n)
{
    u_char                        id[17];
    ngx_uint_t                    i;
    ngx_http_learn_svg_chart_t    chart;
    ngx_http_learn_svg_series_t   s[2];
    ngx_http_learn_job_curves_t   c;
    ngx_http_learn_job_entry_t   *e;

    ngx_http_learn_html_printf(h, "<p class=\"note\">%ui job(s) in the "
                               "table, oldest first. The same as JSON: "
                               "<code>?format=json</code>; one job: its "
                               "id.</p>\n", n);

    if (n == 0) {
        ngx_http_learn_html_literal(h, "<p class=\"empty\">No job yet.</p>\n");
        return;
    }

    ngx_http_learn_html_literal(h, "<table class=\"jobs\"><tr>"
                                "<th class=\"name\">job</th>"
                                "<th class=\"name\">kind</th>"
                                "<th class=\"name\">model</th>"
                                "<th class=\"name\">status</th>"
                                "<th>epoch</th><th>samples</th>"
                                "<th>loss</th><th>val_loss</th>"
                                "<th>val_accuracy</th><th>version</th>"
                                "<th class=\"name\">error</th>"
                                "<th>loss by epoch</th></tr>\n");

    ngx_memzero(&chart, sizeof(chart));
    chart.width = 320;
    chart.height = 170;
    chart.y_scale = NGX_HTTP_LEARN_SVG_AUTO;

    for (i = 0; i < n; i++) {
        e = &jobs[i];
        (void) ngx_sprintf(id, "%016uxL%Z", e->id);

        ngx_http_learn_html_printf(h, "<tr data-job=\"%s\"><td class=\"name\">"
                                   "<a href=\"?jobId=%s&amp;format=html\">"
                                   "%s</a></td><td class=\"name\">%s</td>"
                                   "<td class=\"name\" data-key=\"model\">",
                                   id, id, id,
                                   e->kind == NGX_HTTP_LEARN_JOB_KIND_TRAIN
                                   ? "train" : "predict");
        ngx_http_learn_html_text(h, e->model, ngx_strlen(e->model));
        ngx_http_learn_html_printf(h, "</td><td class=\"name\" "
                                   "data-key=\"status\">%V</td><td>",
                                   &ngx_http_learn_job_states[e->state]);

        if (e->kind == NGX_HTTP_LEARN_JOB_KIND_TRAIN) {
            ngx_http_learn_html_printf(h, "%L / %L", e->epoch, e->epochs);
        }

        ngx_http_learn_html_literal(h, "</td><td>");
        ngx_http_learn_html_number(h, (double) e->samples, 15);
        ngx_http_learn_html_literal(h, "</td><td>");
        ngx_http_learn_html_number(h, e->loss, 6);
        ngx_http_learn_html_literal(h, "</td><td>");
        ngx_http_learn_html_number(h, e->val_loss, 6);
        ngx_http_learn_html_literal(h, "</td><td>");
        ngx_http_learn_html_number(h, e->val_accuracy, 6);
        ngx_http_learn_html_literal(h, "</td><td>");
        ngx_http_learn_html_number(h, e->version > 0 ? (double) e->version
                                                     : NAN, 15);
        ngx_http_learn_html_literal(h, "</td><td class=\"name\" "
                                    "data-key=\"error\">");

        if (e->state == NGX_HTTP_LEARN_JOB_ERROR) {
            ngx_http_learn_html_text(h, e->error, ngx_strlen(e->error));
        }

        ngx_http_learn_html_literal(h, "</td><td>");

        /* a curve once an epoch has ended: a predict job has none */
        if (e->kind == NGX_HTTP_LEARN_JOB_KIND_TRAIN && e->nhist
            && ngx_http_learn_job_html_curves(h, e, &c) == NGX_OK)
        {
            ngx_str_set(&s[0].name, "loss");
            s[0].x = c.epoch;
            s[0].y = c.loss;
            s[0].n = c.n;
            ngx_str_set(&s[1].name, "val_loss");
            s[1].x = c.epoch;
            s[1].y = c.val_loss;
            s[1].n = c.n;

            (void) ngx_http_learn_svg_lines(h, &chart, s, 2);
        }

        ngx_http_learn_html_literal(h, "</td></tr>\n");
    }

    ngx_http_learn_html_literal(h, "</table>\n");
}


static void
ngx_http_learn_job_html_text(ngx_http_learn_html_t *h, const char *key,
    const u_char *s)
{
    ngx_http_learn_html_printf(h, "<tr><td class=\"name\">%s</td>"
                               "<td class=\"name\" data-key=\"%s\">", key,
                               key);
    ngx_http_learn_html_text(h, s, ngx_strlen(s));
    ngx_http_learn_html_literal(h, "</td></tr>");
}


static void
ngx_http_learn_job_html_time(ngx_http_learn_html_t *h, const char *key,
    time_t t)
{
    ngx_tm_t  tm;

    ngx_http_learn_html_printf(h, "<tr><td class=\"name\">%s</td>"
                               "<td data-key=\"%s\">", key, key);

    if (t > 0) {
        ngx_gmtime(t, &tm);
        ngx_http_learn_html_printf(h, "%4d-%02d-%02d %02d:%02d:%02d UTC",
                                   tm.ngx_tm_year, tm.ngx_tm_mon,
                                   tm.ngx_tm_mday, tm.ngx_tm_hour,
                                   tm.ngx_tm_min, tm.ngx_tm_sec);

    } else {
        ngx_http_learn_html_literal(h, "n/a");
    }

    ngx_http_learn_html_literal(h, "</td></tr>");
}
