
/*
 * learn_status: every model's counters as JSON, or as Prometheus text
 * with ?format=prometheus.
 */


#include "ngx_http_learn.h"
#include "ngx_http_learn_upstream.h"
#include "ngx_http_learn_status_html.h"

#include <math.h>


#define NGX_HTTP_LEARN_STATUS_MODEL_LEN                                       \
    (2304 + NGX_MAX_PATH + NGX_HTTP_LEARN_MAX_VERSIONS * 256                  \
     + 2 * NGX_HTTP_LEARN_HIST_JSON_LEN + NGX_HTTP_LEARN_HISTORY_JSON_LEN)

/* one model's Prometheus series (model names are at most 64 bytes) */
#define NGX_HTTP_LEARN_STATUS_PROM_LEN                                        \
    (NGX_HTTP_LEARN_STATUS_NFAMILIES * 256                                    \
     + 2 * NGX_HTTP_LEARN_HIST_PROM_LEN(64))


typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      type;
    ngx_str_t                      help;
    ngx_uint_t                     checkpoint; /* only models with a
                                                  checkpoint (1), with
                                                  learn_feedback (2), with
                                                  store= or follow= (3) */
} ngx_http_learn_status_family_t;


/*
 * ?format=prometheus lists family by family, each model's sample in it;
 * status_sample() switches on the position in this table
 */

static ngx_http_learn_status_family_t  ngx_http_learn_status_families[] = {
    { ngx_string("learn_model_step"), ngx_string("gauge"),
      ngx_string("Train steps applied to the model."), 0 },
    { ngx_string("learn_model_loss"), ngx_string("gauge"),
      ngx_string("Loss of the last train step."), 0 },
    { ngx_string("learn_model_loss_avg"), ngx_string("gauge"),
      ngx_string("Exponential moving average of the train loss."), 0 },
    { ngx_string("learn_model_params"), ngx_string("gauge"),
      ngx_string("Parameters of the model."), 0 },
    { ngx_string("learn_model_train_requests_total"), ngx_string("counter"),
      ngx_string("Answered train requests."), 0 },
    { ngx_string("learn_model_predict_requests_total"), ngx_string("counter"),
      ngx_string("Answered predict requests."), 0 },
    { ngx_string("learn_model_rejected_requests_total"),
      ngx_string("counter"),
      ngx_string("Train and predict requests answered with a 4xx error."),
      0 },
    { ngx_string("learn_model_predict_rereads_total"), ngx_string("counter"),
      ngx_string("Predicts run again because two train steps landed "
                 "during them."), 0 },
    { ngx_string("learn_model_batches_total"), ngx_string("counter"),
      ngx_string("Forward passes of learn_batch."), 0 },
    { ngx_string("learn_model_batched_predicts_total"),
      ngx_string("counter"),
      ngx_string("Predicts answered by forward passes of learn_batch."), 0 },
    { ngx_string("learn_model_device_steps_total"), ngx_string("counter"),
      ngx_string("Train steps run on a GPU."), 0 },
    { ngx_string("learn_model_device_predicts_total"), ngx_string("counter"),
      ngx_string("Predicts run on a GPU."), 0 },
    { ngx_string("learn_model_checkpoint_step"), ngx_string("gauge"),
      ngx_string("Train step of the last checkpoint written."), 1 },
    { ngx_string("learn_model_checkpoint_writes_total"),
      ngx_string("counter"), ngx_string("Checkpoints written."), 1 },
    { ngx_string("learn_model_checkpoint_failures_total"),
      ngx_string("counter"), ngx_string("Checkpoint writes that failed."),
      1 },
    { ngx_string("learn_model_predict_duration_seconds"),
      ngx_string("histogram"),
      ngx_string("Time from a predict's checked body to its encoded "
                 "answer."), 0 },
    { ngx_string("learn_model_train_duration_seconds"),
      ngx_string("histogram"),
      ngx_string("Time from a train's checked body to its applied step, "
                 "the wait for the model's lock included."), 0 },
    { ngx_string("learn_model_rejected_steps_total"), ngx_string("counter"),
      ngx_string("Train steps refused because they would make the model "
                 "NaN or Inf (answered 422)."), 0 },
    { ngx_string("learn_model_set_evaluations_total"), ngx_string("counter"),
      ngx_string("Evaluations of the model's learn_set variables."), 0 },
    { ngx_string("learn_model_set_empty_total"), ngx_string("counter"),
      ngx_string("learn_set evaluations that left the variable empty (a "
                 "feature not a number, an output not finite)."), 0 },
    { ngx_string("learn_model_feedback_steps_total"), ngx_string("counter"),
      ngx_string("Train steps applied from learn_feedback labels."), 2 },
    { ngx_string("learn_model_feedback_labels_total"), ngx_string("counter"),
      ngx_string("Labels those steps trained on."), 2 },
    { ngx_string("learn_model_feedback_unknown_total"),
      ngx_string("counter"),
      ngx_string("Labels refused for an unknown or expired id (404)."), 2 },
    { ngx_string("learn_model_feedback_repeated_total"),
      ngx_string("counter"),
      ngx_string("Labels refused for an id labelled already (409)."), 2 },
    { ngx_string("learn_model_store_up"), ngx_string("gauge"),
      ngx_string("1 when the last call to the model's Redis store (store= "
                 "or follow=) succeeded."), 3 },
    { ngx_string("learn_model_store_step"), ngx_string("gauge"),
      ngx_string("Newest version published to the store (store=) or "
                 "served from it (follow=)."), 3 },
    { ngx_string("learn_model_store_latest_step"), ngx_string("gauge"),
      ngx_string("Newest version seen in the store."), 3 },
    { ngx_string("learn_model_store_transfers_total"), ngx_string("counter"),
      ngx_string("Versions published to the store, or taken from it."), 3 },
    { ngx_string("learn_model_store_errors_total"), ngx_string("counter"),
      ngx_string("Calls to the store that failed (unreachable, refused, "
                 "timed out)."), 3 },
    { ngx_string("learn_model_store_refused_total"), ngx_string("counter"),
      ngx_string("Values in the store a follower refused (corrupt, "
                 "another layout)."), 3 },
    { ngx_string("learn_model_lr"), ngx_string("gauge"),
      ngx_string("Learning rate of the next train step (the schedule's, "
                 "else the optimizer's)."), 0 },
    { ngx_null_string, ngx_null_string, ngx_null_string, 0 }
};

#define NGX_HTTP_LEARN_STATUS_NFAMILIES                                       \
    (sizeof(ngx_http_learn_status_families)                                  \
     / sizeof(ngx_http_learn_status_family_t) - 1)

#define NGX_HTTP_LEARN_STATUS_PREDICT_HIST  15
#define NGX_HTTP_LEARN_STATUS_TRAIN_HIST    16
#define NGX_HTTP_LEARN_STATUS_STORE         24   /* the first store family */
#define NGX_HTTP_LEARN_STATUS_LR            30   /* after the six of it */


static u_char *ngx_http_learn_status_json(u_char *p,
    ngx_http_learn_model_t *lm, ngx_uint_t first);
static u_char *ngx_http_learn_status_prometheus(u_char *p,
    ngx_array_t *models);
static u_char *ngx_http_learn_status_sample(u_char *p, ngx_uint_t family,
    ngx_http_learn_model_t *lm);
static u_char *ngx_http_learn_status_versions(u_char *p,
    ngx_http_learn_shm_t *shm);
static u_char *ngx_http_learn_status_float(u_char *p, double v);
static u_char *ngx_http_learn_status_lr(u_char *p,
    ngx_http_learn_model_t *lm, ngx_uint_t prometheus);


ngx_int_t
ngx_http_learn_status_handler(ngx_http_request_t *r)
{
    u_char                      *out, *p;
    size_t                       size;
    ngx_str_t                    type, arg;
    ngx_int_t                    rc;
    ngx_uint_t                   i, prometheus;
    ngx_http_learn_model_t     **lmp;
    ngx_http_learn_main_conf_t  *lmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_learn_reject_method(r, "GET");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_learn_module);
    lmp = lmcf->models.elts;

    /* every look keeps the counters for rates (at most one a second) */
    ngx_http_learn_status_samples_take(lmcf);

    if (ngx_http_learn_html_wanted(r)) {
        return ngx_http_learn_status_html(r);
    }

    prometheus = ngx_http_arg(r, (u_char *) "format", 6, &arg) == NGX_OK
                 && arg.len == 10
                 && ngx_strncmp(arg.data, "prometheus", 10) == 0;

    size = 64 + lmcf->models.nelts
                * ngx_max(NGX_HTTP_LEARN_STATUS_MODEL_LEN
                          + 2 * NGX_MAX_ERROR_STR,
                          NGX_HTTP_LEARN_STATUS_PROM_LEN)
           + NGX_HTTP_LEARN_STATUS_NFAMILIES * NGX_HTTP_LEARN_PROM_HEAD_LEN
           + ngx_http_learn_upstream_status_size(r);

    out = ngx_pnalloc(r->pool, size);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = out;

    if (prometheus) {
        p = ngx_http_learn_status_prometheus(p, &lmcf->models);
        p = ngx_http_learn_upstream_prometheus(r, p, out + size);

        ngx_str_set(&type, "text/plain; version=0.0.4; charset=utf-8");

    } else {
        p = ngx_cpymem(p, "{\"models\": {", sizeof("{\"models\": {") - 1);

        for (i = 0; i < lmcf->models.nelts; i++) {
            p = ngx_http_learn_status_json(p, lmp[i], i == 0);
        }

        p = ngx_cpymem(p, "}, \"upstreams\": {",
                       sizeof("}, \"upstreams\": {") - 1);
        p = ngx_http_learn_upstream_status(r, p, out + size);
        p = ngx_cpymem(p, "}}\n", sizeof("}}\n") - 1);

        ngx_str_set(&type, "application/json");
    }

    return ngx_http_learn_send(r, NGX_HTTP_OK, &type, out, p - out);
}


static u_char *
ngx_http_learn_status_json(u_char *p, ngx_http_learn_model_t *lm,
    ngx_uint_t first)
{
    ngx_http_learn_shm_t  *shm;

    shm = lm->shm;

    p = ngx_sprintf(p, "%s\"%V\": {\"step\": %uA, \"loss\": ",
                    first ? "" : ", ", &lm->name, shm->step);
    p = ngx_http_learn_status_float(p, shm->loss);
    p = ngx_cpymem(p, ", \"loss_avg\": ", sizeof(", \"loss_avg\": ") - 1);
    p = ngx_http_learn_status_float(p, shm->loss_avg);
    p = ngx_cpymem(p, ", \"lr\": ", sizeof(", \"lr\": ") - 1);
    p = ngx_http_learn_status_lr(p, lm, 0);

    p = ngx_cpymem(p, ", \"device\": \"", sizeof(", \"device\": \"") - 1);
    p = ngx_http_learn_device_name(p, lm);

    p = ngx_sprintf(p, "\", \"params\": %uz, \"inputs\": %d, \"outputs\": %d, "
                    "\"trains\": %uA, \"predicts\": %uA, "
                    "\"rejected\": %uA, \"rejected_steps\": %uA, "
                    "\"predict_rereads\": %uA, "
                    "\"predict_latency_us\": %uA, \"batches\": %uA, "
                    "\"batched_predicts\": %uA, \"device_steps\": %uA, "
                    "\"device_predicts\": %uA, \"set_evals\": %uA, "
                    "\"set_empty\": %uA",
                    lm->model.param_count, lm->model.in_dim,
                    lm->model.out_dim, shm->trains, shm->predicts,
                    shm->rejects, shm->rejected_steps, shm->retries, shm->live_latency_us,
                    shm->batches, shm->batched, shm->device_steps,
                    shm->device_predicts, shm->set_evals, shm->set_empty);

    p = ngx_http_learn_feedback_status(p, lm);

    p = ngx_http_learn_hist_json(p, "predict_latency", &shm->predict_hist);
    p = ngx_http_learn_hist_json(p, "train_latency", &shm->train_hist);
    p = ngx_http_learn_history_json(p, &shm->history);

    if (lm->ckpt_path.len) {
        p = ngx_sprintf(p, ", \"checkpoint\": {\"path\": \"%V\", "
                        "\"step\": %uA, \"writes\": %uA, "
                        "\"failures\": %uA, \"time\": %T}",
                        &lm->ckpt_path, shm->ckpt_step, shm->ckpt_writes,
                        shm->ckpt_failures, shm->ckpt_time);
    }

    if (lm->ckpt_keep) {
        p = ngx_http_learn_status_versions(p, shm);
    }

    p = ngx_http_learn_store_status(p, lm);

    *p++ = '}';

    return p;
}


/*
 * Family by family, as the text format wants: "# HELP" and "# TYPE"
 * once, then the sample of every model (those with a checkpoint only,
 * for the checkpoint families, and no lines for a family without any)
 */

static u_char *
ngx_http_learn_status_prometheus(u_char *p, ngx_array_t *models)
{
    ngx_uint_t                       f, i, head;
    ngx_http_learn_model_t         **lmp;
    ngx_http_learn_status_family_t  *family;

    lmp = models->elts;

    for (f = 0; f < NGX_HTTP_LEARN_STATUS_NFAMILIES; f++) {
        family = &ngx_http_learn_status_families[f];
        head = 0;

        for (i = 0; i < models->nelts; i++) {
            if ((family->checkpoint == 1 && lmp[i]->ckpt_path.len == 0)
                || (family->checkpoint == 2 && lmp[i]->feedback == NULL)
                || (family->checkpoint == 3 && lmp[i]->store == NULL))
            {
                continue;
            }

            if (!head) {
                p = ngx_http_learn_prom_head(p, &family->name, &family->type,
                                             &family->help);
                head = 1;
            }

            p = ngx_http_learn_status_sample(p, f, lmp[i]);
        }
    }

    return p;
}


static u_char *
ngx_http_learn_status_sample(u_char *p, ngx_uint_t family,
    ngx_http_learn_model_t *lm)
{
    ngx_str_t             *name;
    ngx_http_learn_shm_t  *shm;

    shm = lm->shm;
    name = &ngx_http_learn_status_families[family].name;

    switch (family) {

    case NGX_HTTP_LEARN_STATUS_PREDICT_HIST:
        return ngx_http_learn_hist_prometheus(p, name, "model", &lm->name,
                                              &shm->predict_hist);

    case NGX_HTTP_LEARN_STATUS_TRAIN_HIST:
        return ngx_http_learn_hist_prometheus(p, name, "model", &lm->name,
                                              &shm->train_hist);
    }

    p = ngx_sprintf(p, "%V{model=\"", name);
    p = ngx_http_learn_prom_label(p, &lm->name);
    p = ngx_cpymem(p, "\"} ", sizeof("\"} ") - 1);

    if (family == NGX_HTTP_LEARN_STATUS_LR) {
        p = ngx_http_learn_status_lr(p, lm, 0);
        *p++ = '\n';
        return p;
    }

    if (family >= NGX_HTTP_LEARN_STATUS_STORE) {
        p = ngx_http_learn_store_sample(p,
                                        family - NGX_HTTP_LEARN_STATUS_STORE,
                                        lm);
        *p++ = '\n';
        return p;
    }

    switch (family) {

    case 0:
        p = ngx_sprintf(p, "%uA", shm->step);
        break;

    case 1:
        p = ngx_http_learn_prom_float(p, shm->loss);
        break;

    case 2:
        p = ngx_http_learn_prom_float(p, shm->loss_avg);
        break;

    case 3:
        p = ngx_sprintf(p, "%uz", lm->model.param_count);
        break;

    case 4:
        p = ngx_sprintf(p, "%uA", shm->trains);
        break;

    case 5:
        p = ngx_sprintf(p, "%uA", shm->predicts);
        break;

    case 6:
        p = ngx_sprintf(p, "%uA", shm->rejects);
        break;

    case 7:
        p = ngx_sprintf(p, "%uA", shm->retries);
        break;

    case 8:
        p = ngx_sprintf(p, "%uA", shm->batches);
        break;

    case 9:
        p = ngx_sprintf(p, "%uA", shm->batched);
        break;

    case 10:
        p = ngx_sprintf(p, "%uA", shm->device_steps);
        break;

    case 11:
        p = ngx_sprintf(p, "%uA", shm->device_predicts);
        break;

    case 12:
        p = ngx_sprintf(p, "%uA", shm->ckpt_step);
        break;

    case 13:
        p = ngx_sprintf(p, "%uA", shm->ckpt_writes);
        break;

    case 14:
        p = ngx_sprintf(p, "%uA", shm->ckpt_failures);
        break;

    case 17:
        p = ngx_sprintf(p, "%uA", shm->rejected_steps);
        break;

    case 18:
        p = ngx_sprintf(p, "%uA", shm->set_evals);
        break;

    case 19:
        p = ngx_sprintf(p, "%uA", shm->set_empty);
        break;

    case 20:
        p = ngx_sprintf(p, "%uA", shm->feedback_steps);
        break;

    case 21:
        p = ngx_sprintf(p, "%uA", shm->feedback_labels);
        break;

    case 22:
        p = ngx_sprintf(p, "%uA", shm->feedback_unknown);
        break;

    case 23:
        p = ngx_sprintf(p, "%uA", shm->feedback_repeated);
        break;

    default:
        break;
    }

    *p++ = '\n';

    return p;
}


/*
 * "versions": the kept checkpoints, newest first, with the predicts each
 * answered and their summed latency (live predicts: predict_latency_us)
 */

static u_char *
ngx_http_learn_status_versions(u_char *p, ngx_http_learn_shm_t *shm)
{
    int64_t                    last;
    ngx_uint_t                 i, best, first;
    ngx_http_learn_version_t  *v;

    p = ngx_cpymem(p, ", \"versions\": [", sizeof(", \"versions\": [") - 1);

    first = 1;
    last = INT64_MAX;

    for ( ;; ) {
        best = NGX_HTTP_LEARN_MAX_VERSIONS;

        for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
            v = &shm->versions[i];

            if (v->step && v->step < last
                && (best == NGX_HTTP_LEARN_MAX_VERSIONS
                    || v->step > shm->versions[best].step))
            {
                best = i;
            }
        }

        if (best == NGX_HTTP_LEARN_MAX_VERSIONS) {
            break;
        }

        v = &shm->versions[best];
        last = v->step;

        p = ngx_sprintf(p, "%s{\"step\": %L, \"loss\": ",
                        first ? "" : ", ", v->step);
        p = ngx_http_learn_status_float(p, v->loss);
        p = ngx_sprintf(p, ", \"time\": %T, \"predicts\": %uA, "
                        "\"predict_latency_us\": %uA}",
                        v->time, v->predicts, v->latency_us);
        first = 0;
    }

    *p++ = ']';

    return p;
}


/* ngx_sprintf() has no %g; NaN and Inf are JSON null */

static u_char *
ngx_http_learn_status_float(u_char *p, double v)
{
    int  n;

    n = lt_json_float((char *) p, 32, v);

    return p + (n > 0 ? n : 0);
}


/*
 * The learning rate of the next step, as a float32 holds it: 7
 * significant digits show 0.01 as configured rather than the float's
 * 0.00999999978.  Inf (ExponentialLR with gamma > 1, long enough) is
 * written as every other float of the format writes it.
 */

static u_char *
ngx_http_learn_status_lr(u_char *p, ngx_http_learn_model_t *lm,
    ngx_uint_t prometheus)
{
    int    n;
    float  lr;

    lr = lt_model_lr(&lm->model, (int64_t) lm->shm->optim_step);

    if (!isfinite(lr)) {
        return prometheus ? ngx_http_learn_prom_float(p, lr)
                          : ngx_http_learn_status_float(p, lr);
    }

    n = snprintf((char *) p, 32, "%.7g", (double) lr);

    return p + (n > 0 ? n : 0);
}
