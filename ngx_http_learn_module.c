
/*
 * ngx_http_learn_module: train and serve neural networks inside nginx.
 *
 * This file holds the module object, the directives and their conf
 * structs; the work is in src/http (handlers, zone, Lua, status) and in
 * the tensor core, src/core.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <cblas.h>

#include "ngx_http_learn.h"


static void *ngx_http_learn_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_learn_init_main_conf(ngx_conf_t *cf, void *conf);
static void ngx_http_learn_blas_check(ngx_conf_t *cf);
static void *ngx_http_learn_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_learn_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_learn_model(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_learn_role(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_learn_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_http_learn_model_t *ngx_http_learn_find_model(ngx_conf_t *cf,
    ngx_str_t *name);
static ngx_http_learn_shm_t *ngx_http_learn_model_changed(ngx_conf_t *cf,
    ngx_http_learn_model_t *lm);
static ngx_int_t ngx_http_learn_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_learn_init_process(ngx_cycle_t *cycle);
static void ngx_http_learn_exit_process(ngx_cycle_t *cycle);
static void ngx_http_learn_exit_master(ngx_cycle_t *cycle);
static void ngx_http_learn_known_free(void);


/*
 * The layouts of the running configuration's models, kept by the master
 * across reloads (the .so stays loaded), so that a reload with changed
 * layers starts that model fresh instead of refusing its checkpoint.
 */
typedef struct {
    u_char                  name[65];
    uint64_t                hash;
    ngx_http_learn_shm_t   *shm;
} ngx_http_learn_known_t;

static ngx_http_learn_known_t  *ngx_http_learn_known;
static ngx_uint_t               ngx_http_learn_nknown;


static ngx_conf_num_bounds_t  ngx_http_learn_max_elements_bounds = {
    ngx_conf_check_num_bounds, 1, 1 << 30
};


static ngx_command_t  ngx_http_learn_commands[] = {

    { ngx_string("learn_model"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_learn_model,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("learn_lua_path"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_array_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_learn_main_conf_t, lua_paths),
      NULL },

    { ngx_string("learn_cuda_library"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_learn_cuda_library,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("learn_train"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_learn_role,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_LEARN_TRAIN,
      NULL },

    { ngx_string("learn_predict"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_learn_role,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_LEARN_PREDICT,
      NULL },

    { ngx_string("learn_weights"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_learn_role,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_LEARN_WEIGHTS,
      NULL },

    { ngx_string("learn_candidate"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_learn_candidate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("learn_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_learn_thread_pool,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("learn_batch"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_learn_batch,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("learn_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_learn_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("learn_max_elements"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_learn_loc_conf_t, max_elements),
      &ngx_http_learn_max_elements_bounds },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_learn_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_learn_create_main_conf,       /* create main configuration */
    ngx_http_learn_init_main_conf,         /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_learn_create_loc_conf,        /* create location configuration */
    ngx_http_learn_merge_loc_conf          /* merge location configuration */
};


ngx_module_t  ngx_http_learn_module = {
    NGX_MODULE_V1,
    &ngx_http_learn_module_ctx,            /* module context */
    ngx_http_learn_commands,               /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_learn_init_module,            /* init module */
    ngx_http_learn_init_process,           /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_learn_exit_process,           /* exit process */
    ngx_http_learn_exit_master,            /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_learn_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_learn_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_learn_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&lmcf->models, cf->pool, 4,
                       sizeof(ngx_http_learn_model_t *))
        != NGX_OK)
    {
        return NULL;
    }

    lmcf->lua_paths = NGX_CONF_UNSET_PTR;

    return lmcf;
}


static char *
ngx_http_learn_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_learn_main_conf_t  *lmcf = conf;

    if (lmcf->models.nelts) {
        ngx_http_learn_blas_check(cf);
    }

    return NGX_CONF_OK;
}


/*
 * Debian's OpenBLAS 0.3.21 falls back to its SSE3 "Prescott" kernels on
 * a CPU it cannot name, about 3x slower than the AVX-512 ones the CPU
 * may have.  It chooses when it is loaded, before any directive is read,
 * so the module can only say how to start nginx (once per master).
 */

static void
ngx_http_learn_blas_check(ngx_conf_t *cf)
{
    char               *core;
    const char         *fit;
    static ngx_uint_t   warned;

    core = openblas_get_corename();

    if (warned || core == NULL || ngx_strcmp(core, "Prescott") != 0) {
        return;
    }

    __builtin_cpu_init();

    if (__builtin_cpu_supports("avx512f")
        && __builtin_cpu_supports("avx512bw"))
    {
        fit = "SkylakeX";

    } else if (__builtin_cpu_supports("avx2")
               && __builtin_cpu_supports("fma"))
    {
        fit = "Haswell";

    } else {
        return;
    }

    warned = 1;

    ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                       "OpenBLAS runs its \"%s\" kernels on this CPU, "
                       "which it does not recognise: start nginx with "
                       "OPENBLAS_CORETYPE=%s in its environment for "
                       "faster matrix products", core, fit);
}


static void *
ngx_http_learn_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_learn_loc_conf_t  *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_learn_loc_conf_t));
    if (lcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     lcf->role = NGX_HTTP_LEARN_NONE;
     *     lcf->model = NULL;
     */

    lcf->max_elements = NGX_CONF_UNSET_SIZE;
    lcf->thread_pool = NGX_CONF_UNSET_PTR;
    lcf->thread_threshold = -1;
    lcf->batch_max = NGX_CONF_UNSET_UINT;
    ngx_queue_init(&lcf->batch_queue);

    return lcf;
}


static char *
ngx_http_learn_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_learn_loc_conf_t  *prev = parent;
    ngx_http_learn_loc_conf_t  *conf = child;

    ngx_uint_t                  i;
    ngx_http_learn_model_t     *lm;

    ngx_conf_merge_size_value(conf->max_elements, prev->max_elements,
                              NGX_HTTP_LEARN_DEFAULT_MAX_ELEMENTS);

    if (conf->thread_pool == NGX_CONF_UNSET_PTR) {
        conf->thread_pool = (prev->thread_pool == NGX_CONF_UNSET_PTR)
                            ? NULL : prev->thread_pool;
        conf->thread_threshold = prev->thread_threshold;
    }

    /* bodies spooled to disk and kept versions are read on a pool */
    if (conf->role == NGX_HTTP_LEARN_TRAIN
        || conf->role == NGX_HTTP_LEARN_PREDICT
        || conf->role == NGX_HTTP_LEARN_WEIGHTS)
    {
        conf->io_pool = conf->thread_pool;

#if (NGX_THREADS)
        if (conf->io_pool == NULL) {
            conf->io_pool = ngx_thread_pool_add(cf, NULL);
            if (conf->io_pool == NULL) {
                return NGX_CONF_ERROR;
            }
        }
#endif
    }

    if (conf->batch_max == NGX_CONF_UNSET_UINT) {
        conf->batch_max = 0;

    } else if (conf->role != NGX_HTTP_LEARN_PREDICT) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_batch needs learn_predict in the same "
                           "location");
        return NGX_CONF_ERROR;
    }

    if (conf->candidate == 0) {
        return NGX_CONF_OK;
    }

    lm = conf->model;

    if (conf->role != NGX_HTTP_LEARN_PREDICT || lm->ckpt_keep == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_candidate needs learn_predict of a model "
                           "with checkpoint_keep");
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
        if (lm->kept[i].step == conf->candidate) {
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "learn_candidate: model \"%V\" keeps no version %L",
                       &lm->name, conf->candidate);

    return NGX_CONF_ERROR;
}


/*
 * learn_model NAME FILE.lua [seed=N] [zone=SIZE] [checkpoint=PATH ...]
 *     [device=cpu|cuda[:N] [tf32=on] [fallback=off]];
 *
 * The model file runs here, in the master, so a broken model fails
 * "nginx -t" with the file and line; its parameters then get a zone
 * sized exactly for them.
 */

static char *
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

        if (ngx_strncmp(value[i].data, "checkpoint_interval=", 20) == 0) {
            s.data = value[i].data + 20;
            s.len = value[i].len - 20;

            lm->ckpt_interval = ngx_parse_time(&s, 0);
            if (lm->ckpt_interval == (ngx_msec_t) NGX_ERROR
                || lm->ckpt_interval == 0)
            {
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

    if (ngx_http_learn_device_check(cf, lmcf, lm) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /*
     * Other layers than the running configuration's: the file holds the
     * old ones, so the model starts fresh; init_module retires the old
     * zone and says so, once nginx has accepted this configuration.
     */

    lm->retire = ngx_http_learn_model_changed(cf, lm);

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

    if (ngx_http_learn_zone_add(cf, lm, size) != NGX_OK) {
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


static ngx_http_learn_model_t *
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


/* learn_train NAME; learn_predict NAME; learn_weights NAME; */

static char *
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

    lcf->role = cmd->offset;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = (lcf->role == NGX_HTTP_LEARN_WEIGHTS)
                    ? ngx_http_learn_weights_handler
                    : ngx_http_learn_handler;

    return NGX_CONF_OK;
}


static char *
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
 * The running configuration's zone of this model goes to lm->running
 * (zone init copies the state from it when only the zone size changed);
 * it is returned if its layers differ.
 */

static ngx_http_learn_shm_t *
ngx_http_learn_model_changed(ngx_conf_t *cf, ngx_http_learn_model_t *lm)
{
    ngx_uint_t               i;
    ngx_http_learn_known_t  *k;

    for (i = 0; i < ngx_http_learn_nknown; i++) {
        k = &ngx_http_learn_known[i];

        if (ngx_strlen(k->name) == lm->name.len
            && ngx_strncmp(k->name, lm->name.data, lm->name.len) == 0)
        {
            lm->running = k->shm;

            return (k->hash != lm->model.hash) ? k->shm : NULL;
        }
    }

    return NULL;
}


/*
 * Master, the configuration accepted (this runs after the shared zones
 * and the listening sockets are set up; a reload that fails earlier never
 * gets here): remember layouts, retire the zones that models replace,
 * settle the kept versions, check paths.
 */

static ngx_int_t
ngx_http_learn_init_module(ngx_cycle_t *cycle)
{
    ngx_uint_t                   i;
    ngx_http_learn_known_t      *known;
    ngx_http_learn_model_t     **lmp;
    ngx_http_learn_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_learn_module);
    if (lmcf == NULL || lmcf->models.nelts == 0) {
        return NGX_OK;
    }

    lmp = lmcf->models.elts;

    if (ngx_http_learn_versions_init_module(cycle, lmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    known = ngx_alloc(lmcf->models.nelts * sizeof(ngx_http_learn_known_t),
                      cycle->log);
    if (known == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < lmcf->models.nelts; i++) {
        ngx_http_learn_zone_retire(lmp[i], cycle->log);

        ngx_cpystrn(known[i].name, lmp[i]->name.data,
                    ngx_min(lmp[i]->name.len + 1, sizeof(known[i].name)));
        known[i].hash = lmp[i]->model.hash;
        known[i].shm = lmp[i]->shm;

        if (lmp[i]->ckpt_path.len
            && ngx_http_learn_checkpoint_init_module(cycle, lmp[i])
               != NGX_OK)
        {
            ngx_free(known);
            return NGX_ERROR;
        }
    }

    ngx_free(ngx_http_learn_known);
    ngx_http_learn_known = known;
    ngx_http_learn_nknown = lmcf->models.nelts;

    return NGX_OK;
}


/*
 * Worker-local state is created here, after fork: OpenBLAS runs one
 * thread per worker (the workers are the parallelism), and every model
 * gets its own workspace.
 */

static ngx_int_t
ngx_http_learn_init_process(ngx_cycle_t *cycle)
{
    lt_err                       err;
    ngx_uint_t                   i;
    ngx_http_learn_model_t     **lmp;
    ngx_http_learn_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_learn_module);
    if (lmcf == NULL) {
        return NGX_OK;
    }

    /* helpers (cache manager, loader) run no model: no workspace, no GPU */
    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    openblas_set_num_threads(1);

    lmp = lmcf->models.elts;

    for (i = 0; i < lmcf->models.nelts; i++) {
        lmp[i]->ws = lt_workspace_new(&lmp[i]->model, lt_backend_cpu(), 1,
                                      &err);
        if (lmp[i]->ws == NULL) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "learn_model \"%V\": %s", &lmp[i]->name, err.msg);
            return NGX_ERROR;
        }

        if (ngx_http_learn_device_init(cycle, lmcf, lmp[i]) != NGX_OK) {
            return NGX_ERROR;
        }

        if (lmp[i]->ckpt_path.len && ngx_http_learn_checkpoint_writer()) {
            ngx_http_learn_checkpoint_init_worker(cycle, lmp[i]);
        }
    }

    return NGX_OK;
}


static void
ngx_http_learn_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                   i;
    ngx_http_learn_model_t     **lmp;
    ngx_http_learn_main_conf_t  *lmcf;

    /* a worker's copy of the master's table (single mode: the table) */
    ngx_http_learn_known_free();

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_learn_module);
    if (lmcf == NULL) {
        return;
    }

    lmp = lmcf->models.elts;

    for (i = 0; i < lmcf->models.nelts; i++) {
        if (lmp[i]->ckpt_path.len && ngx_http_learn_checkpoint_writer()) {
            ngx_http_learn_checkpoint_exit_worker(cycle, lmp[i]);
        }

        if (lmp[i]->ws) {
            lt_workspace_free(lmp[i]->ws);
            lmp[i]->ws = NULL;
        }

        while (lmp[i]->nws_free) {
            lt_workspace_free(lmp[i]->ws_free[--lmp[i]->nws_free]);
        }

        ngx_http_learn_versions_exit(lmp[i]);

        ngx_http_learn_device_exit(lmp[i]);
    }

    ngx_http_learn_device_exit_process();
}


/*
 * The known-layouts table outlives every cycle, so no pool frees it: the
 * exiting master (and each exiting worker, for its copy) frees it here.
 * Left allocated, the pointer to it goes away with the module's data when
 * nginx unloads the module at exit, and the block counts as lost.
 */

static void
ngx_http_learn_exit_master(ngx_cycle_t *cycle)
{
    ngx_http_learn_known_free();
}


static void
ngx_http_learn_known_free(void)
{
    ngx_free(ngx_http_learn_known);
    ngx_http_learn_known = NULL;
    ngx_http_learn_nknown = 0;
}
