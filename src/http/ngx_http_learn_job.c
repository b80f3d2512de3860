
/*
 * Dataset jobs, the routes: learn_job_train MODEL, learn_job_predict
 * MODEL [sync=on], learn_job_status, and their directives
 * (learn_data_root, learn_job_max, learn_job_max_file_size).
 *
 *   POST learn_job_train    {"files": [...], "epochs", ...}  -> 202 {"jobId"}
 *   POST learn_job_predict  {"files": [...]}                  -> 202 {"jobId"}
 *   POST learn_job_predict ?sync=1 (or sync=on)  -> 200 {"outputVector"}
 *   GET  learn_job_status ?jobId=ID   -> the job;  without: every job
 *   DELETE learn_job_status ?jobId=ID -> cancels it
 *
 * A POST is checked whole before it is answered: the body (400 for an
 * unknown key), every file name (400 for "..", an absolute path, a NUL
 * byte, or a symlink that leads out of learn_data_root); what a file
 * holds is the job's to find out, and a bad file ends the job with an
 * error that names it.
 */


#include "ngx_http_learn_job.h"
#include "ngx_http_learn_html.h"

#include <math.h>


static ngx_int_t ngx_http_learn_job_handler(ngx_http_request_t *r);
static void ngx_http_learn_job_body(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, u_char *data, size_t len);
static ngx_int_t ngx_http_learn_job_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_learn_job_sync_reply(ngx_http_request_t *r,
    ngx_http_learn_job_t *job);


/* ---- directives ------------------------------------------------------- */

/* learn_data_root PATH; (http, server, location) */

char *
ngx_http_learn_data_root(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_loc_conf_t *lcf = conf;

    u_char           *p;
    ngx_str_t        *value;
    ngx_file_info_t   fi;

    if (lcf->data_root.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    lcf->data_root = value[1];

    if (ngx_conf_full_name(cf->cycle, &lcf->data_root, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    while (lcf->data_root.len > 1
           && lcf->data_root.data[lcf->data_root.len - 1] == '/')
    {
        lcf->data_root.len--;
    }

    if (lcf->data_root.len >= NGX_MAX_PATH - LT_JOB_NAME_MAX - 2) {
        return "is too long";
    }

    /* NUL-terminated, for the thread's open() */
    p = ngx_pnalloc(cf->pool, lcf->data_root.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(p, lcf->data_root.data, lcf->data_root.len);
    p[lcf->data_root.len] = '\0';
    lcf->data_root.data = p;

    if (ngx_file_info(p, &fi) == NGX_FILE_ERROR || !ngx_is_dir(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "learn_data_root \"%s\" is not a directory", p);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* learn_job_max N; (http): entries of the job table */

char *
ngx_http_learn_job_max(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_main_conf_t *lmcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (lmcf->job_max) {
        return "is duplicate";
    }

    value = cf->args->elts;
    n = ngx_atoi(value[1].data, value[1].len);

    if (n < 1 || n > 65536) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_job_max: invalid value \"%V\" (1 to 65536)",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    lmcf->job_max = (ngx_uint_t) n;

    return NGX_CONF_OK;
}


/*
 * learn_job_train MODEL;  learn_job_predict MODEL [sync=on|off];
 * learn_job_status;  (location)
 */

char *
ngx_http_learn_job_role(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_loc_conf_t *lcf = conf;

    ngx_str_t                 *value;
    ngx_uint_t                 i, role;
    ngx_http_core_loc_conf_t  *clcf;

    if (lcf->role != NGX_HTTP_LEARN_NONE) {
        return "is duplicate";
    }

    value = cf->args->elts;
    role = *(ngx_uint_t *) cmd->post;

    if (role != NGX_HTTP_LEARN_JOB_STATUS) {
        lcf->model = ngx_http_learn_find_model(cf, &value[1]);
        if (lcf->model == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown model \"%V\" (declare it with "
                               "learn_model in the http block first)",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    for (i = 2; i < cf->args->nelts; i++) {
        if (role == NGX_HTTP_LEARN_JOB_PREDICT
            && (ngx_strcmp(value[i].data, "sync=on") == 0
                || ngx_strcmp(value[i].data, "sync=off") == 0))
        {
            lcf->job_sync = (value[i].data[6] == 'n');
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    lcf->role = role;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = (role == NGX_HTTP_LEARN_JOB_STATUS)
                    ? ngx_http_learn_job_status_handler
                    : ngx_http_learn_job_handler;

    return NGX_CONF_OK;
}


/* from ngx_http_learn_merge_loc_conf(): inherit, and make the table */

char *
ngx_http_learn_job_merge(ngx_conf_t *cf, ngx_http_learn_loc_conf_t *prev,
    ngx_http_learn_loc_conf_t *conf)
{
    ngx_http_learn_main_conf_t  *lmcf;

    if (conf->data_root.data == NULL) {
        conf->data_root = prev->data_root;
    }

    ngx_conf_merge_size_value(conf->job_max_file_size,
                              prev->job_max_file_size,
                              NGX_HTTP_LEARN_JOB_DEFAULT_FILE_SIZE);

    if (conf->role != NGX_HTTP_LEARN_JOB_TRAIN
        && conf->role != NGX_HTTP_LEARN_JOB_PREDICT
        && conf->role != NGX_HTTP_LEARN_JOB_STATUS)
    {
        return NGX_CONF_OK;
    }

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_learn_module);

    if (ngx_http_learn_job_table_add(cf, lmcf->job_max
                                         ? lmcf->job_max
                                         : NGX_HTTP_LEARN_JOB_DEFAULT_MAX)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->role == NGX_HTTP_LEARN_JOB_STATUS) {
        return NGX_CONF_OK;
    }

#if (NGX_THREADS)
    /* jobs run on learn_thread_pool's pool, else nginx's "default" */
    conf->io_pool = conf->thread_pool;

    if (conf->io_pool == NULL) {
        conf->io_pool = ngx_thread_pool_add(cf, NULL);
        if (conf->io_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
#else
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "learn_job_train and learn_job_predict need nginx "
                       "built --with-threads");
    return NGX_CONF_ERROR;
#endif
}


/* ---- POST: a new job -------------------------------------------------- */

static ngx_int_t
ngx_http_learn_job_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_learn_ctx_t       *ctx;
    ngx_http_learn_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_learn_module);

    rc = ngx_http_learn_body_admit(r, lcf->model, lcf->max_elements,
                                   ngx_http_learn_job_table() != NULL,
                                   " (name files under learn_data_root "
                                   "instead)");
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_learn_store_check(r, lcf->model,
                                    lcf->role == NGX_HTTP_LEARN_JOB_TRAIN);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx = ngx_http_learn_ctx_create(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_learn_body_read(r, ctx, ngx_http_learn_job_body);
}


/*
 * A name from the body, checked by its text and where it resolves:
 * NGX_OK, or NGX_DECLINED with the refusal sent (*rc: what to finalize
 * the request with).
 */

static ngx_int_t
ngx_http_learn_job_name(ngx_http_request_t *r, ngx_http_learn_loc_conf_t *lcf,
    const char *name, char *to, ngx_int_t *rc)
{
    ngx_str_t    s;
    const char  *why;

    if (lcf->data_root.data == NULL) {
        *rc = ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                    "file \"%s\": no learn_data_root is "
                                    "configured here", name);
        return NGX_DECLINED;
    }

    s.data = (u_char *) name;
    s.len = ngx_strlen(name);

    if (ngx_http_learn_data_root_check(&s, &why) != NGX_OK) {
        *rc = ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                    "file \"%s\" %s", name, why);
        return NGX_DECLINED;
    }

    if (ngx_http_learn_data_root_escapes((char *) lcf->data_root.data,
                                         name))
    {
        *rc = ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                    "file \"%s\" leads out of "
                                    "learn_data_root (a symlink)", name);
        return NGX_DECLINED;
    }

    ngx_cpystrn((u_char *) to, s.data, LT_JOB_NAME_MAX + 1);

    return NGX_OK;
}


/* an inline tensor, copied out of the request's pool */

static ngx_int_t
ngx_http_learn_job_copy(lt_tensor *to, const lt_tensor *from)
{
    lt_err  err;

    if (lt_tensor_alloc(to, from->ndim, from->shape, &err) != 0) {
        return NGX_ERROR;
    }

    ngx_memcpy(to->data, from->data, lt_tensor_numel(from) * sizeof(float));

    return NGX_OK;
}


/* NGX_OK, or NGX_DECLINED with the refusal sent (*rc as above) */

static ngx_int_t
ngx_http_learn_job_fill(ngx_http_request_t *r, ngx_http_learn_loc_conf_t *lcf,
    lt_job_req *req, ngx_http_learn_job_t *job, ngx_int_t *rc)
{
    int  i;

    for (i = 0; i < req->nfiles; i++) {
        if (ngx_http_learn_job_name(r, lcf, req->files[i], job->files[i], rc)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }
    }

    job->nfiles = (ngx_uint_t) req->nfiles;

    if ((req->x_file
         && ngx_http_learn_job_name(r, lcf, req->x_file, job->x_file, rc)
            != NGX_OK)
        || (req->y_file
            && ngx_http_learn_job_name(r, lcf, req->y_file, job->y_file, rc)
               != NGX_OK)
        || (req->output
            && ngx_http_learn_job_name(r, lcf, req->output, job->output, rc)
               != NGX_OK))
    {
        return NGX_DECLINED;
    }

    if ((req->has_x && ngx_http_learn_job_copy(&job->x, &req->x) != NGX_OK)
        || (req->has_y
            && ngx_http_learn_job_copy(&job->y, &req->y) != NGX_OK))
    {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    job->has_x = req->has_x;
    job->has_y = req->has_y;

    job->epochs = req->epochs ? req->epochs : 1;
    job->batch = req->batch_size ? req->batch_size
                                 : NGX_HTTP_LEARN_JOB_DEFAULT_BATCH;
    job->shuffle = (req->shuffle != 0);      /* -1, not given: on */
    job->validation = (req->validation > 0) ? req->validation : 0;
    job->seed = req->has_seed ? req->seed
                              : ((uint64_t) ngx_time() * 2654435761ULL
                                 ^ (uint64_t) ngx_random())
                                & ((1ULL << 53) - 1);

    ngx_cpystrn((u_char *) job->root, lcf->data_root.data
                                      ? lcf->data_root.data
                                      : (u_char *) "",
                sizeof(job->root));
    job->max_file_size = lcf->job_max_file_size;
    job->max_elements = lcf->job_max_file_size / 4;
    job->lm = lcf->model;
    job->pool = lcf->io_pool;
    job->log = ngx_cycle->log;

    return NGX_OK;
}


/* what the status shows as the job's input */

static void
ngx_http_learn_job_input(ngx_http_learn_job_t *job, u_char *buf, size_t size)
{
    u_char  *p, *last;

    last = buf + size - 1;

    if (job->nfiles == 2) {
        p = ngx_slprintf(buf, last, "%s, %s", job->files[0], job->files[1]);

    } else if (job->nfiles == 1) {
        p = ngx_slprintf(buf, last, "%s", job->files[0]);

    } else {
        p = ngx_slprintf(buf, last, "%s%s%s",
                         job->x_file[0] ? job->x_file : "(inline x)",
                         job->kind == NGX_HTTP_LEARN_JOB_KIND_TRAIN ? ", " : "",
                         job->kind != NGX_HTTP_LEARN_JOB_KIND_TRAIN ? ""
                         : (job->y_file[0] ? job->y_file : "(inline y)"));
    }

    *p = '\0';
}


static void
ngx_http_learn_job_body(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx,
    u_char *data, size_t len)
{
    u_char                      *p;
    lt_err                       err;
    ngx_int_t                    rc;
    ngx_str_t                    arg;
    ngx_uint_t                   full, sync, json;
    lt_job_req                   req;
    lt_codec_ctx                 codec;
    ngx_http_learn_job_t        *job;
    ngx_http_learn_loc_conf_t   *lcf;
    ngx_http_learn_job_entry_t  *e;

    lcf = ctx->lcf;

    codec.alloc = ngx_http_learn_pool_alloc;
    codec.ctx = r->pool;
    codec.max_elements = lcf->max_elements;
    codec.max_named = 0;

    json = (ngx_http_learn_body_format(r) == NGX_HTTP_LEARN_FMT_JSON);

    if (lt_codec_decode_job(&codec, data, len, json,
                            lcf->role == NGX_HTTP_LEARN_JOB_PREDICT, &req,
                            &err)
        != 0)
    {
        ngx_http_finalize_request(r,
            ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST, "%s", err.msg));
        return;
    }

    sync = lcf->job_sync;

    if (ngx_http_arg(r, (u_char *) "sync", 4, &arg) == NGX_OK) {
        sync = (arg.len == 1 && arg.data[0] == '1');
    }

    if (lcf->role != NGX_HTTP_LEARN_JOB_PREDICT) {
        sync = 0;
    }

    job = ngx_calloc(sizeof(ngx_http_learn_job_t), r->connection->log);
    if (job == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    job->kind = (lcf->role == NGX_HTTP_LEARN_JOB_TRAIN)
                ? NGX_HTTP_LEARN_JOB_KIND_TRAIN
                : NGX_HTTP_LEARN_JOB_KIND_PREDICT;
    job->request = sync ? r : NULL;
    job->reply = ngx_http_learn_job_sync_reply;
    job->json_out = json || ngx_http_learn_wants_json(r);
    job->enc = req.has_x ? req.enc : LT_ENC_NUMPY;

    if (ngx_http_learn_job_fill(r, lcf, &req, job, &rc) != NGX_OK) {
        job->request = r;       /* not counted as a task yet */
        ngx_http_learn_job_free(job);
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (sync) {
        if (ngx_http_learn_job_sync(r, job) != NGX_OK) {
            ngx_http_learn_job_free(job);
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        /* the task answers */
        return;
    }

    if (job->kind == NGX_HTTP_LEARN_JOB_KIND_PREDICT && !job->output[0]
        && lcf->data_root.data == NULL)
    {
        job->request = r;
        ngx_http_learn_job_free(job);
        ngx_http_finalize_request(r,
            ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                  "a predict job writes its output under "
                                  "learn_data_root: none is configured "
                                  "here (or use sync=1)"));
        return;
    }

    e = ngx_http_learn_job_table_new(job->kind, &lcf->model->name, &full);
    if (e == NULL) {
        job->request = r;
        ngx_http_learn_job_free(job);
        ngx_http_finalize_request(r,
            ngx_http_learn_reject(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "the job table is full: learn_job_max "
                                  "%ui jobs are queued or running",
                                  ngx_http_learn_job_table()->max));
        return;
    }

    job->e = e;
    job->id = e->id;

    /* a task of this worker from now on: a reload waits for it */
    ngx_http_learn_tasks_add(1);

    if (job->kind == NGX_HTTP_LEARN_JOB_KIND_PREDICT && !job->output[0]) {
        (void) ngx_snprintf((u_char *) job->output, LT_JOB_NAME_MAX,
                            "job-%016uxL.npy%Z", job->id);
    }

    e->epochs = (job->kind == NGX_HTTP_LEARN_JOB_KIND_TRAIN) ? job->epochs
                                                             : 0;
    e->batch_size = job->batch;
    e->seed = job->seed;
    e->shuffle = job->shuffle;
    ngx_http_learn_job_input(job, e->input, sizeof(e->input));
    ngx_cpystrn(e->output, (u_char *) job->output, sizeof(e->output));

    /* the new record, whole, on disk (a model with checkpoint=) */
    ngx_http_learn_job_table_lock();
    ngx_http_learn_job_table_changed(e);
    ngx_http_learn_job_table_unlock();

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "learn job %016uxL: accepted for \"%V\"", job->id,
                   &lcf->model->name);

    ngx_http_learn_job_queue(job);

    p = ngx_pnalloc(r->pool, 64);
    if (p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    len = ngx_sprintf(p, "{\"jobId\": \"%016uxL\"}\n", e->id) - p;

    ngx_http_finalize_request(r,
        ngx_http_learn_send(r, NGX_HTTP_ACCEPTED, &ngx_http_learn_type_json,
                            p, len));
}


/* the answer of a sync predict: {"outputVector": rows}, then the job goes */

static ngx_int_t
ngx_http_learn_job_sync_reply(ngx_http_request_t *r, ngx_http_learn_job_t *job)
{
    size_t        len;
    u_char       *out;
    ngx_int_t     rc;
    lt_codec_ctx  codec;

    if (job->rc == NGX_DECLINED) {
        rc = ngx_http_learn_reject(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "%s",
                                   job->err.msg);

    } else if (job->rc != NGX_OK) {
        rc = ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST, "%s",
                                   job->err.msg);

    } else {
        codec.alloc = ngx_http_learn_pool_alloc;
        codec.ctx = r->pool;
        codec.max_elements = 0;
        codec.max_named = 0;

        if (lt_codec_encode_tensor(&codec, "outputVector", &job->out,
                                   job->json_out ? LT_ENC_JSON : job->enc,
                                   &out, &len, &job->err)
            != 0)
        {
            rc = ngx_http_learn_fail(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     job->err.msg);

        } else {
            rc = ngx_http_learn_send(r, NGX_HTTP_OK,
                                     job->json_out
                                     ? &ngx_http_learn_type_json
                                     : &ngx_http_learn_type_msgpack,
                                     out, len);
        }
    }

    ngx_http_learn_job_free(job);

    return rc;
}


/* ---- learn_job_status ------------------------------------------------- */

static u_char *
ngx_http_learn_job_str(u_char *p, const u_char *s)
{
    *p++ = '"';

    for ( ; *s; s++) {
        p += lt_json_char((char *) p, *s);
    }

    *p++ = '"';

    return p;
}


static u_char *
ngx_http_learn_job_float(u_char *p, double v)
{
    return p + lt_json_float((char *) p, 32, v);
}


/* room for the JSON of one entry */
#define ngx_http_learn_job_json_size(nhist)                                   \
    (2048 + 6 * (64 + 3 * NGX_HTTP_LEARN_JOB_TEXT)                            \
     + ngx_min(nhist, NGX_HTTP_LEARN_JOB_HISTORY) * 192)


static u_char *
ngx_http_learn_job_json(u_char *p, ngx_http_learn_job_entry_t *e,
    ngx_uint_t history)
{
    ngx_uint_t                   i, n, first;
    ngx_http_learn_job_epoch_t  *h;

    p = ngx_sprintf(p, "{\"jobId\": \"%016uxL\", \"status\": \"%V\", "
                    "\"kind\": \"%s\", \"model\": ", e->id,
                    &ngx_http_learn_job_states[e->state],
                    e->kind == NGX_HTTP_LEARN_JOB_KIND_TRAIN ? "train"
                                                             : "predict");
    p = ngx_http_learn_job_str(p, e->model);

    p = ngx_sprintf(p, ", \"epoch\": %L, \"epochs\": %L, \"samples\": %L, "
                    "\"rows\": %L, \"val_rows\": %L, \"batch_size\": %L, "
                    "\"steps\": %L, \"shuffle\": %s, \"seed\": %uL, "
                    "\"loss\": ", e->epoch, e->epochs, e->samples, e->rows,
                    e->val_rows, e->batch_size, e->steps,
                    e->shuffle ? "true" : "false", e->seed);
    p = ngx_http_learn_job_float(p, e->loss);
    p = ngx_sprintf(p, ", \"val_loss\": ");
    p = ngx_http_learn_job_float(p, e->val_loss);
    p = ngx_sprintf(p, ", \"val_accuracy\": ");
    p = ngx_http_learn_job_float(p, e->val_accuracy);
    p = ngx_sprintf(p, ", \"samples_per_s\": ");
    p = ngx_http_learn_job_float(p, e->samples_per_s);

    if (e->step >= 0) {
        p = ngx_sprintf(p, ", \"step\": %L", e->step);
    } else {
        p = ngx_sprintf(p, ", \"step\": null");
    }

    if (e->version > 0) {
        p = ngx_sprintf(p, ", \"version\": %L", e->version);
    } else {
        p = ngx_sprintf(p, ", \"version\": null");
    }

    p = ngx_sprintf(p, ", \"input\": ");
    p = ngx_http_learn_job_str(p, e->input);

    p = ngx_sprintf(p, ", \"output\": ");
    if (e->output[0]) {
        p = ngx_http_learn_job_str(p, e->output);
    } else {
        p = ngx_sprintf(p, "null");
    }

    p = ngx_sprintf(p, ", \"error\": ");
    if (e->state == NGX_HTTP_LEARN_JOB_ERROR && e->error[0]) {
        p = ngx_http_learn_job_str(p, e->error);
    } else {
        p = ngx_sprintf(p, "null");
    }

    p = ngx_sprintf(p, ", \"created\": %T, \"started\": %T, "
                    "\"finished\": %T, \"worker\": %P",
                    e->created, e->started, e->finished, e->pid);

    if (history) {
        p = ngx_sprintf(p, ", \"history\": [");

        n = ngx_min(e->nhist, NGX_HTTP_LEARN_JOB_HISTORY);
        first = e->nhist - n;

        for (i = first; i < e->nhist; i++) {
            h = &e->hist[i % NGX_HTTP_LEARN_JOB_HISTORY];

            p = ngx_sprintf(p, "%s{\"epoch\": %L, \"loss\": ",
                            i == first ? "" : ", ", h->epoch);
            p = ngx_http_learn_job_float(p, h->loss);
            p = ngx_sprintf(p, ", \"val_loss\": ");
            p = ngx_http_learn_job_float(p, h->val_loss);
            p = ngx_sprintf(p, ", \"val_accuracy\": ");
            p = ngx_http_learn_job_float(p, h->val_accuracy);
            p = ngx_sprintf(p, ", \"seconds\": ");
            p = ngx_http_learn_job_float(p, h->seconds);
            *p++ = '}';
        }

        *p++ = ']';
    }

    *p++ = '}';

    return p;
}


/* 16 hex digits; 0 when not */

static uint64_t
ngx_http_learn_job_parse_id(ngx_str_t *s)
{
    size_t    i;
    u_char    c;
    uint64_t  id;

    if (s->len != 16) {
        return 0;
    }

    id = 0;

    for (i = 0; i < 16; i++) {
        c = s->data[i] | 0x20;

        if (c >= '0' && c <= '9') {
            id = id * 16 + (c - '0');

        } else if (c >= 'a' && c <= 'f') {
            id = id * 16 + (c - 'a' + 10);

        } else {
            return 0;
        }
    }

    return id;
}


static ngx_int_t
ngx_http_learn_job_list(ngx_http_request_t *r, ngx_uint_t html)
{
    u_char                      *out, *p;
    ngx_uint_t                   i, n;
    ngx_http_learn_job_shm_t    *t;
    ngx_http_learn_job_entry_t  *copy, *e;

    t = ngx_http_learn_job_table();

    copy = ngx_palloc(r->pool, t->max * sizeof(ngx_http_learn_job_entry_t));
    if (copy == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 0;

    ngx_http_learn_job_table_lock();

    for (i = 0; i < t->max; i++) {
        e = &t->jobs[i];

        if (e->id) {
            ngx_http_learn_job_table_check(e);
            ngx_memcpy(&copy[n++], e, sizeof(ngx_http_learn_job_entry_t));
        }
    }

    ngx_http_learn_job_table_unlock();

    /* in the order they came */
    for (i = 1; i < n; i++) {
        ngx_http_learn_job_entry_t  tmp;
        ngx_uint_t                  j;

        tmp = copy[i];
        for (j = i; j > 0 && copy[j - 1].seq > tmp.seq; j--) {
            copy[j] = copy[j - 1];
        }
        copy[j] = tmp;
    }

    if (html) {
        return ngx_http_learn_job_html(r, copy, n, 0);
    }

    out = ngx_pnalloc(r->pool, 64 + n * ngx_http_learn_job_json_size(0));
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(out, "{\"jobs\": [");

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
            *p++ = ' ';
        }

        p = ngx_http_learn_job_json(p, &copy[i], 0);
    }

    p = ngx_sprintf(p, "]}\n");

    return ngx_http_learn_send(r, NGX_HTTP_OK, &ngx_http_learn_type_json,
                               out, p - out);
}


static ngx_int_t
ngx_http_learn_job_status_handler(ngx_http_request_t *r)
{
    u_char                      *out, *p;
    uint64_t                     id;
    ngx_int_t                    rc;
    ngx_str_t                    arg;
    ngx_uint_t                   state, cancelled, html;
    ngx_http_learn_job_entry_t  *e, copy;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD | NGX_HTTP_DELETE))) {
        return ngx_http_learn_reject_method(r, "GET, DELETE");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_learn_job_table() == NULL) {
        return ngx_http_learn_reject(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "the job table is not ready");
    }

    /* a page for people, JSON for everyone else (DELETE answers JSON) */
    if (ngx_http_arg(r, (u_char *) "format", 6, &arg) == NGX_OK
        && !(arg.len == 4
             && (ngx_strncasecmp(arg.data, (u_char *) "json", 4) == 0
                 || ngx_strncasecmp(arg.data, (u_char *) "html", 4) == 0)))
    {
        return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                     "format \"%V\" is not json or html",
                                     &arg);
    }

    html = !(r->method & NGX_HTTP_DELETE) && ngx_http_learn_html_wanted(r);

    if (ngx_http_arg(r, (u_char *) "jobId", 5, &arg) != NGX_OK) {
        if (r->method & NGX_HTTP_DELETE) {
            return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                         "DELETE needs ?jobId=");
        }

        return ngx_http_learn_job_list(r, html);
    }

    id = ngx_http_learn_job_parse_id(&arg);

    cancelled = 0;

    ngx_http_learn_job_table_lock();

    e = ngx_http_learn_job_table_find(id);

    if (e && (r->method & NGX_HTTP_DELETE)) {
        state = e->state;

        if (state == NGX_HTTP_LEARN_JOB_QUEUED) {
            /* its worker's queue lets it go */
            e->finished = ngx_time();
            ngx_memory_barrier();
            e->state = NGX_HTTP_LEARN_JOB_CANCELLED;
            cancelled = 1;
            ngx_http_learn_job_table_changed(e);

        } else if (state == NGX_HTTP_LEARN_JOB_RUNNING) {
            /* the job stops before its next mini-batch */
            e->cancel = 1;
            cancelled = 1;
        }
    }

    if (e) {
        ngx_memcpy(&copy, e, sizeof(ngx_http_learn_job_entry_t));
    }

    ngx_http_learn_job_table_unlock();

    if (e == NULL) {
        return ngx_http_learn_reject(r, NGX_HTTP_NOT_FOUND,
                                     "unknown job \"%V\"", &arg);
    }

    if ((r->method & NGX_HTTP_DELETE) && !cancelled) {
        return ngx_http_learn_reject(r, NGX_HTTP_CONFLICT,
                                     "job %016uxL has ended (%V)", id,
                                     &ngx_http_learn_job_states[copy.state]);
    }

    if (html) {
        return ngx_http_learn_job_html(r, &copy, 1, 1);
    }

    out = ngx_pnalloc(r->pool, ngx_http_learn_job_json_size(copy.nhist) + 64);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method & NGX_HTTP_DELETE) {
        p = ngx_sprintf(out, "{\"jobId\": \"%016uxL\", \"status\": \"%s\"}\n",
                        id, copy.state == NGX_HTTP_LEARN_JOB_CANCELLED
                            ? "cancelled" : "cancelling");

    } else {
        p = ngx_http_learn_job_json(out, &copy, 1);
        *p++ = '\n';
    }

    return ngx_http_learn_send(r, NGX_HTTP_OK, &ngx_http_learn_type_json,
                               out, p - out);
}
