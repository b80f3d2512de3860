
/*
 * learn_status: every model's counters as JSON, or as Prometheus text
 * with ?format=prometheus.
 */


#include "ngx_http_learn.h"
#include "ngx_http_learn_upstream.h"


#define NGX_HTTP_LEARN_STATUS_MODEL_LEN                                       \
    (1024 + NGX_MAX_PATH + NGX_HTTP_LEARN_MAX_VERSIONS * 256)


static u_char *ngx_http_learn_status_json(u_char *p,
    ngx_http_learn_model_t *lm, ngx_uint_t first);
static u_char *ngx_http_learn_status_prometheus(u_char *p,
    ngx_http_learn_model_t *lm);
static u_char *ngx_http_learn_status_versions(u_char *p,
    ngx_http_learn_shm_t *shm);
static u_char *ngx_http_learn_status_float(u_char *p, double v);


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

    prometheus = ngx_http_arg(r, (u_char *) "format", 6, &arg) == NGX_OK
                 && arg.len == 10
                 && ngx_strncmp(arg.data, "prometheus", 10) == 0;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_learn_module);
    lmp = lmcf->models.elts;

    size = 64 + lmcf->models.nelts * (NGX_HTTP_LEARN_STATUS_MODEL_LEN
                                      + 2 * NGX_MAX_ERROR_STR)
           + ngx_http_learn_upstream_status_size(r);

    out = ngx_pnalloc(r->pool, size);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = out;

    if (prometheus) {
        for (i = 0; i < lmcf->models.nelts; i++) {
            p = ngx_http_learn_status_prometheus(p, lmp[i]);
        }

        p = ngx_http_learn_upstream_prometheus(r, p, out + size);

        ngx_str_set(&type, "text/plain; version=0.0.4");

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

    p = ngx_cpymem(p, ", \"device\": \"", sizeof(", \"device\": \"") - 1);
    p = ngx_http_learn_device_name(p, lm);

    p = ngx_sprintf(p, "\", \"params\": %uz, \"inputs\": %d, \"outputs\": %d, "
                    "\"trains\": %uA, \"predicts\": %uA, "
                    "\"rejected\": %uA, \"rejected_steps\": %uA, "
                    "\"predict_rereads\": %uA, "
                    "\"predict_latency_us\": %uA, \"batches\": %uA, "
                    "\"batched_predicts\": %uA, \"device_steps\": %uA, "
                    "\"device_predicts\": %uA",
                    lm->model.param_count, lm->model.in_dim,
                    lm->model.out_dim, shm->trains, shm->predicts,
                    shm->rejects, shm->rejected_steps, shm->retries, shm->live_latency_us,
                    shm->batches, shm->batched, shm->device_steps,
                    shm->device_predicts);

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

    *p++ = '}';

    return p;
}


static u_char *
ngx_http_learn_status_prometheus(u_char *p, ngx_http_learn_model_t *lm)
{
    ngx_http_learn_shm_t  *shm;

    shm = lm->shm;

    p = ngx_sprintf(p, "learn_model_step{model=\"%V\"} %uA\n"
                    "learn_model_params{model=\"%V\"} %uz\n"
                    "learn_model_train_requests_total{model=\"%V\"} %uA\n"
                    "learn_model_predict_requests_total{model=\"%V\"} %uA\n"
                    "learn_model_rejected_requests_total{model=\"%V\"} %uA\n"
                    "learn_model_device_steps_total{model=\"%V\"} %uA\n"
                    "learn_model_device_predicts_total{model=\"%V\"} %uA\n"
                    "learn_model_loss{model=\"%V\"} ",
                    &lm->name, shm->step, &lm->name,
                    lm->model.param_count, &lm->name, shm->trains,
                    &lm->name, shm->predicts, &lm->name, shm->rejects,
                    &lm->name, shm->device_steps, &lm->name,
                    shm->device_predicts, &lm->name);

    if (shm->loss != shm->loss) {
        p = ngx_cpymem(p, "NaN", 3);

    } else {
        p = ngx_http_learn_status_float(p, shm->loss);
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
