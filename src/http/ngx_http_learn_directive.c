
/*
 * The module's directive handlers, in the order of the directive table
 * in ngx_http_learn_module.c: each parses its arguments with nginx's own
 * parsers, refuses what it does not know, and fills the conf.  What a
 * directive sets up beyond its conf (a zone, a checkpoint read, a thread
 * pool) is done by the file that owns it.
 */


#include "ngx_http_learn.h"


/* about 100 us of single-threaded float work */
#define NGX_HTTP_LEARN_THREAD_THRESHOLD  1e6


/*
 * learn_model NAME FILE.lua [seed=N] [zone=SIZE] [checkpoint=PATH ...]
 *     [device=cpu|cuda[:N] [tf32=on] [fallback=off]];
 *
 * The model file runs here, in the master, so a broken model fails
 * "nginx -t" with the file and line; its parameters then get a zone
 * sized exactly for them.
 */

char *
ngx_http_learn_model(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_main_conf_t  *lmcf = conf;

    size_t                   size, min;
    ngx_str_t               *value, s;
    ngx_int_t                n, rc;
    ngx_uint_t               i, ckpt_opts;
    lt_err                   err;
    lt_model_spec            spec;
    ngx_http_learn_model_t  *lm, **lmp;

    value = cf->args->elts;

    for (i = 0; i < value[1].len; i++) {
        if (!(isalnum(value[1].data[i]) || value[1].data[i] == '_'
              || value[1].data[i] == '-')
            || i >= 64)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "learn_model name \"%V\" must be 1-64 "
                               "letters, digits, \"_\" or \"-\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_learn_find_model(cf, &value[1]) != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_model \"%V\" is already declared",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    lm = ngx_pcalloc(cf->pool, sizeof(ngx_http_learn_model_t));
    if (lm == NULL) {
        return NGX_CONF_ERROR;
    }

    lm->name = value[1];
    lm->seed = 0;
    lm->device = -1;
    lm->ckpt_interval = 60000;
    size = 0;
    ckpt_opts = 0;

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "seed=", 5) == 0) {
            n = ngx_atoi(value[i].data + 5, value[i].len - 5);
            if (n == NGX_ERROR) {
                goto invalid;
            }

            lm->seed = (uint64_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            size = ngx_parse_size(&s);
            if (size == (size_t) NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "checkpoint=", 11) == 0) {
            lm->ckpt_path.data = value[i].data + 11;
            lm->ckpt_path.len = value[i].len - 11;

            if (lm->ckpt_path.len == 0
                || ngx_conf_full_name(cf->cycle, &lm->ckpt_path, 0)
                   != NGX_OK
                || lm->ckpt_path.len > NGX_MAX_PATH - 64)
            {
                goto invalid;
            }

            continue;
        }

        rc = ngx_http_learn_param_msec(&value[i], "checkpoint_interval=",
                                       &lm->ckpt_interval);
        if (rc != NGX_DECLINED) {
            if (rc == NGX_ERROR || lm->ckpt_interval == 0) {
                goto invalid;
            }

            ckpt_opts = i;
            continue;
        }

        if (ngx_strncmp(value[i].data, "checkpoint_keep=", 16) == 0) {
            n = ngx_atoi(value[i].data + 16, value[i].len - 16);
            if (n < 0 || n > NGX_HTTP_LEARN_MAX_VERSIONS) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "checkpoint_keep must be 0 to %d",
                                   NGX_HTTP_LEARN_MAX_VERSIONS);
                return NGX_CONF_ERROR;
            }

            lm->ckpt_keep = n;
            continue;
        }

        if (ngx_strcmp(value[i].data, "checkpoint_bad=fresh") == 0) {
            lm->ckpt_fresh = 1;
            ckpt_opts = i;
            continue;
        }

        if (ngx_strcmp(value[i].data, "checkpoint_bad=refuse") == 0) {
            lm->ckpt_fresh = 0;
            ckpt_opts = i;
            continue;
        }

        rc = ngx_http_learn_store_parse(cf, lm, &value[i]);

        if (rc == NGX_OK) {
            continue;
        }

        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        rc = ngx_http_learn_device_parse(cf, lm, &value[i]);

        if (rc == NGX_OK) {
            continue;
        }

        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        goto invalid;
    }

    if (ckpt_opts && lm->ckpt_path.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_model \"%V\": \"%V\" needs "
                           "checkpoint=PATH", &lm->name, &value[ckpt_opts]);
        return NGX_CONF_ERROR;
    }

    /*
     * a trainer publishes what its checkpoint writer writes; a follower
     * may keep a checkpoint of what it serves, for a start without Redis
     */
    if (lm->store && !lm->follow && lm->ckpt_path.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_model \"%V\": store= needs "
                           "checkpoint=PATH (the versions it publishes are "
                           "the checkpoints written)", &lm->name);
        return NGX_CONF_ERROR;
    }

#if (NGX_THREADS)
    if (lm->ckpt_path.len) {
        /* the writer's task goes to nginx's "default" pool */
        lm->ckpt_pool = ngx_thread_pool_add(cf, NULL);
        if (lm->ckpt_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }
#endif

    if (ngx_http_learn_lua_load_model(cf, lmcf, &value[2], &spec)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (lt_model_build(&lm->model, &spec, &err) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_model \"%V\": %s", &lm->name, err.msg);
        return NGX_CONF_ERROR;
    }

    lm->file = value[2];

    ngx_http_learn_store_sized(lm);

    if (ngx_http_learn_device_check(cf, lmcf, lm) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /*
     * Other layers than the running configuration's: the file holds the
     * old ones, so the model starts fresh; init_module retires the old
     * zone and says so, once nginx has accepted this configuration.
     */

    lm->retire = ngx_http_learn_zone_running(lm);

    if (lm->retire == NULL
        && lm->ckpt_path.len
        && ngx_http_learn_checkpoint_load(cf, lm) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (lm->ckpt_keep) {
        if (lm->ckpt_path.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "learn_model \"%V\": checkpoint_keep needs "
                               "checkpoint=PATH", &lm->name);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_learn_versions_scan(cf, lm) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    min = ngx_http_learn_zone_size(&lm->model);

    if (size == 0) {
        size = min;

    } else if (size < min) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_model \"%V\": zone=%uz is too small, "
                           "the model needs %uz", &lm->name, size, min);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_learn_zone_add(cf, lm, size,
                                ngx_http_learn_checkpoint_init_zone)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    lmp = ngx_array_push(&lmcf->models);
    if (lmp == NULL) {
        return NGX_CONF_ERROR;
    }

    *lmp = lm;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/* the learn_model of that name, or NULL; every directive naming one */
ngx_http_learn_model_t *
ngx_http_learn_find_model(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                   i;
    ngx_http_learn_model_t     **lmp;
    ngx_http_learn_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_learn_module);

    lmp = lmcf->models.elts;

    for (i = 0; i < lmcf->models.nelts; i++) {
        if (lmp[i]->name.len == name->len
            && ngx_strncmp(lmp[i]->name.data, name->data, name->len) == 0)
        {
            return lmp[i];
        }
    }

    return NULL;
}


/* learn_cuda_library PATH; (before learn_model) */

char *
ngx_http_learn_cuda_library(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_main_conf_t *lmcf = conf;

    ngx_str_t  *value;

    if (lmcf->cuda_library.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    lmcf->cuda_library = value[1];

    if (ngx_conf_full_name(cf->cycle, &lmcf->cuda_library, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* learn_train NAME; learn_predict NAME; learn_weights NAME; */

char *
ngx_http_learn_role(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_loc_conf_t *lcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (lcf->role != NGX_HTTP_LEARN_NONE) {
        return "is duplicate";
    }

    value = cf->args->elts;

    lcf->model = ngx_http_learn_find_model(cf, &value[1]);
    if (lcf->model == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown model \"%V\" (declare it with "
                           "learn_model in the http block first)",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    lcf->role = *(ngx_uint_t *) cmd->post;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = (lcf->role == NGX_HTTP_LEARN_WEIGHTS)
                    ? ngx_http_learn_weights_handler
                    : ngx_http_learn_handler;

    return NGX_CONF_OK;
}


/* learn_candidate STEP PERCENT%; in a learn_predict location */

char *
ngx_http_learn_candidate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_loc_conf_t *lcf = conf;

    ngx_str_t                   *value;
    ngx_int_t                    step, share;
    ngx_http_learn_loc_conf_t  **lcfp;
    ngx_http_learn_main_conf_t  *lmcf;

    if (lcf->candidate) {
        return "is duplicate";
    }

    value = cf->args->elts;

    step = ngx_atoi(value[1].data, value[1].len);
    if (step <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_candidate: \"%V\" is not a version (a "
                           "checkpoint's step)", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (value[2].len < 2 || value[2].data[value[2].len - 1] != '%') {
        goto invalid;
    }

    /* "12.5%": hundredths of a percent, i.e. of 10000 */
    share = ngx_atofp(value[2].data, value[2].len - 1, 2);
    if (share <= 0 || share > 10000) {
        goto invalid;
    }

    lcf->candidate = step;
    lcf->candidate_share = (ngx_uint_t) share;

    /* init_module protects the version from pruning */

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_learn_module);

    if (lmcf->candidates == NULL) {
        lmcf->candidates = ngx_array_create(cf->pool, 4,
                                          sizeof(ngx_http_learn_loc_conf_t *));
        if (lmcf->candidates == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    lcfp = ngx_array_push(lmcf->candidates);
    if (lcfp == NULL) {
        return NGX_CONF_ERROR;
    }

    *lcfp = lcf;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "learn_candidate: share \"%V\" must be a percentage "
                       "above 0 and at most 100, with at most two "
                       "decimals, such as \"10%%\" or \"2.5%%\"",
                       &value[2]);
    return NGX_CONF_ERROR;
}


#if (NGX_THREADS)

char *
ngx_http_learn_thread_pool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_loc_conf_t *lcf = conf;

    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (lcf->thread_pool != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    lcf->thread_pool = ngx_thread_pool_add(cf, &value[1]);
    if (lcf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "threshold=", 10) == 0) {
            s.data = value[i].data + 10;
            s.len = value[i].len - 10;

            /* a count of multiply-adds: digits, as ngx_atoof() reads */
            lcf->thread_threshold = (double) ngx_atoof(s.data, s.len);

            if (s.len && lcf->thread_threshold >= 0) {
                continue;
            }
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (lcf->thread_threshold < 0) {
        lcf->thread_threshold = NGX_HTTP_LEARN_THREAD_THRESHOLD;
    }

    return NGX_CONF_OK;
}

#else

char *
ngx_http_learn_thread_pool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return "needs nginx built --with-threads";
}

#endif


/* learn_batch max=N timeout=TIME; */

char *
ngx_http_learn_batch(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_loc_conf_t *lcf = conf;

    ngx_int_t            n, rc;
    ngx_str_t           *value;
    ngx_uint_t           i;
    ngx_pool_cleanup_t  *cln;

    if (lcf->batch_max != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    /* the batch buffers a worker allocates go with the configuration */
    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_learn_batch_cleanup;
    cln->data = lcf;

    value = cf->args->elts;
    lcf->batch_max = 64;
    lcf->batch_timeout = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "max=", 4) == 0) {
            n = ngx_atoi(value[i].data + 4, value[i].len - 4);
            if (n < 2 || n > 65536) {
                goto invalid;
            }

            lcf->batch_max = n;
            continue;
        }

        rc = ngx_http_learn_param_msec(&value[i], "timeout=",
                                       &lcf->batch_timeout);
        if (rc == NGX_OK) {
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


char *
ngx_http_learn_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_loc_conf_t *lcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (lcf->role != NGX_HTTP_LEARN_NONE) {
        return "is duplicate";
    }

    lcf->role = NGX_HTTP_LEARN_STATUS;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_learn_status_handler;

    return NGX_CONF_OK;
}


/*
 * learn_set $VAR MODEL FEATURE... [output=N|max|argmax];  (http)
 *
 * One complex value per model input, checked against the model here:
 * a model of 3 inputs takes 3 features.
 */

char *
ngx_http_learn_set(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                         *value, name;
    ngx_int_t                          n;
    ngx_uint_t                         i, nfeatures;
    ngx_http_variable_t               *var;
    ngx_http_learn_set_t              *set;
    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    if (value[1].len < 2 || value[1].data[0] != '$') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_set: \"%V\" is not a variable name (such "
                           "as $score)", &value[1]);
        return NGX_CONF_ERROR;
    }

    set = ngx_pcalloc(cf->pool, sizeof(ngx_http_learn_set_t));
    if (set == NULL) {
        return NGX_CONF_ERROR;
    }

    set->name.data = value[1].data + 1;
    set->name.len = value[1].len - 1;
    set->output = NGX_HTTP_LEARN_SET_DEFAULT;

    set->model = ngx_http_learn_find_model(cf, &value[2]);
    if (set->model == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_set $%V: unknown model \"%V\" (declare "
                           "it with learn_model first)", &set->name,
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    nfeatures = cf->args->nelts - 3;

    if (nfeatures
        && ngx_strncmp(value[cf->args->nelts - 1].data, "output=", 7) == 0)
    {
        nfeatures--;
        name.data = value[cf->args->nelts - 1].data + 7;
        name.len = value[cf->args->nelts - 1].len - 7;

        if (name.len == 3 && ngx_strncmp(name.data, "max", 3) == 0) {
            set->output = NGX_HTTP_LEARN_SET_MAX;

        } else if (name.len == 6 && ngx_strncmp(name.data, "argmax", 6) == 0)
        {
            set->output = NGX_HTTP_LEARN_SET_ARGMAX;

        } else {
            n = ngx_atoi(name.data, name.len);
            if (n == NGX_ERROR || n >= set->model->model.out_dim) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "learn_set $%V: \"%V\": output is a "
                                   "component 0 to %d of model \"%V\", "
                                   "\"max\" or \"argmax\"", &set->name,
                                   &value[cf->args->nelts - 1],
                                   set->model->model.out_dim - 1,
                                   &set->model->name);
                return NGX_CONF_ERROR;
            }

            set->output = n;
        }
    }

    if (nfeatures != (ngx_uint_t) set->model->model.in_dim) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_set $%V: model \"%V\" takes %d features, "
                           "%ui given", &set->name, &set->model->name,
                           set->model->model.in_dim, nfeatures);
        return NGX_CONF_ERROR;
    }

    if (set->model->nsets == 255) {
        return "has too many variables for one model";
    }

    set->index = set->model->nsets++;

    if (ngx_array_init(&set->features, cf->pool, nfeatures,
                       sizeof(ngx_http_complex_value_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < nfeatures; i++) {
        cv = ngx_array_push(&set->features);
        if (cv == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &value[3 + i];
        ccv.complex_value = cv;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    /* not changeable: a second learn_set (or set) of $VAR is an error */
    var = ngx_http_add_variable(cf, &set->name, 0);
    if (var == NULL) {
        return NGX_CONF_ERROR;
    }

    var->get_handler = ngx_http_learn_set_variable;
    var->data = (uintptr_t) set;

    return NGX_CONF_OK;
}


/* learn_feedback MODEL [keep=N] [ttl=TIME] [relabel=on|off];  (location) */

char *
ngx_http_learn_feedback_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_loc_conf_t *lcf = conf;

    ngx_str_t                    *value;
    ngx_int_t                     keep, rc;
    ngx_uint_t                    i;
    ngx_msec_t                    ttl;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_learn_main_conf_t   *lmcf;
    static ngx_str_t              request_id = ngx_string("request_id");

    if (lcf->role != NGX_HTTP_LEARN_NONE) {
        return "is duplicate";
    }

    value = cf->args->elts;

    lcf->model = ngx_http_learn_find_model(cf, &value[1]);
    if (lcf->model == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown model \"%V\" (declare it with "
                           "learn_model in the http block first)",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    keep = 1024;
    ttl = 0;
    lcf->relabel = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "keep=", 5) == 0) {
            keep = ngx_atoi(value[i].data + 5, value[i].len - 5);
            if (keep < 1 || keep > 16 * 1024 * 1024) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "learn_feedback: \"%V\": keep is 1 to "
                                   "16777216 evaluations", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        rc = ngx_http_learn_param_msec(&value[i], "ttl=", &ttl);
        if (rc == NGX_OK && ttl >= 1000) {
            continue;
        }

        if (rc == NGX_OK || rc == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "learn_feedback: \"%V\": ttl is a time of "
                               "at least 1s", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (value[i].len == 10
            && ngx_strncmp(value[i].data, "relabel=on", 10) == 0)
        {
            lcf->relabel = 1;
            continue;
        }

        if (value[i].len == 11
            && ngx_strncmp(value[i].data, "relabel=off", 11) == 0)
        {
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_learn_feedback_add(cf, lcf->model, (ngx_uint_t) keep,
                                    (time_t) (ttl / 1000))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_learn_module);

    lmcf->request_id = ngx_http_get_variable_index(cf, &request_id);
    if (lmcf->request_id == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    lcf->role = NGX_HTTP_LEARN_FEEDBACK;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_learn_handler;

    return NGX_CONF_OK;
}


/* learn_counter $VAR KEY window=TIME [zone=NAME:SIZE];  (http) */

char *
ngx_http_learn_counter(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char                            *colon;
    size_t                             size;
    ngx_str_t                         *value, var, zone, s;
    ngx_int_t                          rc;
    ngx_uint_t                         i;
    ngx_msec_t                         window;
    ngx_http_complex_value_t          *key;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    if (value[1].len < 2 || value[1].data[0] != '$') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_counter: \"%V\" is not a variable name "
                           "(such as $requests_10s)", &value[1]);
        return NGX_CONF_ERROR;
    }

    var.data = value[1].data + 1;
    var.len = value[1].len - 1;

    key = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = key;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    window = 0;
    size = 1024 * 1024;

    zone.len = sizeof("learn_counter_") - 1 + var.len;
    zone.data = ngx_pnalloc(cf->pool, zone.len);
    if (zone.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(zone.data, "learn_counter_%V", &var);

    for (i = 3; i < cf->args->nelts; i++) {

        rc = ngx_http_learn_param_msec(&value[i], "window=", &window);
        if (rc == NGX_OK && window > 0) {
            continue;
        }

        if (rc != NGX_DECLINED) {
            goto invalid;
        }

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            zone.data = value[i].data + 5;
            zone.len = value[i].len - 5;

            colon = ngx_strlchr(zone.data, zone.data + zone.len, ':');

            if (colon) {
                s.data = colon + 1;
                s.len = zone.data + zone.len - s.data;
                zone.len = colon - zone.data;

                size = ngx_parse_size(&s);
                if (size == (size_t) NGX_ERROR || size < 8 * ngx_pagesize) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "learn_counter: zone \"%V\" is too "
                                       "small", &value[i]);
                    return NGX_CONF_ERROR;
                }
            }

            if (zone.len == 0) {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    if (window == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_counter $%V: window=TIME is missing",
                           &var);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_learn_counter_add(cf, &var, key, window, &zone, size)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}
