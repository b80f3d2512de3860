
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
#include "ngx_http_learn_ffi.h"


static ngx_int_t ngx_http_learn_preconfiguration(ngx_conf_t *cf);
static void *ngx_http_learn_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_learn_init_main_conf(ngx_conf_t *cf, void *conf);
static void ngx_http_learn_blas_check(ngx_conf_t *cf);
static void *ngx_http_learn_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_learn_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_learn_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_learn_init_process(ngx_cycle_t *cycle);
static void ngx_http_learn_exit_process(ngx_cycle_t *cycle);
static void ngx_http_learn_exit_master(ngx_cycle_t *cycle);




static ngx_conf_num_bounds_t  ngx_http_learn_max_elements_bounds = {
    ngx_conf_check_num_bounds, 1, 1 << 30
};


/* what learn_train, learn_predict and learn_weights make a location */
static ngx_uint_t  ngx_http_learn_role_train = NGX_HTTP_LEARN_TRAIN;
static ngx_uint_t  ngx_http_learn_role_predict = NGX_HTTP_LEARN_PREDICT;
static ngx_uint_t  ngx_http_learn_role_weights = NGX_HTTP_LEARN_WEIGHTS;

/* dataset jobs (ngx_http_learn_job.c) */
static ngx_uint_t  ngx_http_learn_role_job_train = NGX_HTTP_LEARN_JOB_TRAIN;
static ngx_uint_t  ngx_http_learn_role_job_predict =
    NGX_HTTP_LEARN_JOB_PREDICT;
static ngx_uint_t  ngx_http_learn_role_job_status = NGX_HTTP_LEARN_JOB_STATUS;


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
      0,
      &ngx_http_learn_role_train },

    { ngx_string("learn_predict"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_learn_role,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_learn_role_predict },

    { ngx_string("learn_weights"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_learn_role,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_learn_role_weights },

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

    { ngx_string("learn_set"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_learn_set,
      0,
      0,
      NULL },

    { ngx_string("learn_feedback"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_learn_feedback_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("learn_counter"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_learn_counter,
      0,
      0,
      NULL },

    { ngx_string("learn_max_elements"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_learn_loc_conf_t, max_elements),
      &ngx_http_learn_max_elements_bounds },

    /* dataset jobs (ngx_http_learn_job.c) */

    { ngx_string("learn_data_root"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_learn_data_root,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("learn_job_max_file_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_learn_loc_conf_t, job_max_file_size),
      NULL },

    { ngx_string("learn_job_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_learn_job_max,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("learn_job_train"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_learn_job_role,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_learn_role_job_train },

    { ngx_string("learn_job_predict"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_learn_job_role,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_learn_role_job_predict },

    { ngx_string("learn_job_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_learn_job_role,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_learn_role_job_status },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_learn_module_ctx = {
    ngx_http_learn_preconfiguration,       /* preconfiguration */
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


/* $learn_model, $learn_step, ...: before any directive can name them */

static ngx_int_t
ngx_http_learn_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_learn_variables_add(cf);
}


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
    lmcf->request_id = NGX_ERROR;

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
    lcf->job_max_file_size = NGX_CONF_UNSET_SIZE;

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

    if (ngx_http_learn_job_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
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
 * Master, the configuration accepted (this runs after the shared zones
 * and the listening sockets are set up; a reload that fails earlier never
 * gets here): remember layouts, retire the zones that models replace,
 * settle the kept versions, check paths.
 */

static ngx_int_t
ngx_http_learn_init_module(ngx_cycle_t *cycle)
{
    ngx_uint_t                   i;
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

    for (i = 0; i < lmcf->models.nelts; i++) {
        ngx_http_learn_zone_retire(lmp[i], cycle->log);

        if (lmp[i]->ckpt_path.len
            && ngx_http_learn_checkpoint_init_module(cycle, lmp[i])
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_learn_zone_remember(cycle, lmcf);
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

        if (ngx_http_learn_set_init_process(cycle, lmp[i]) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_http_learn_device_init(cycle, lmcf, lmp[i]) != NGX_OK) {
            return NGX_ERROR;
        }

        if (lmp[i]->ckpt_path.len && ngx_http_learn_checkpoint_writer()) {
            ngx_http_learn_checkpoint_init_worker(cycle, lmp[i]);
        }

#if (NGX_THREADS)
        /* one process checks the store; the zone serves every worker */
        if (lmp[i]->follow && ngx_http_learn_checkpoint_writer()
            && ngx_http_learn_store_init_worker(cycle, lmp[i]) != NGX_OK)
        {
            return NGX_ERROR;
        }
#endif
    }

    /* resty.learn may look models up from now on */
    ngx_http_learn_ffi_init_process(lmcf);

    return NGX_OK;
}


static void
ngx_http_learn_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                   i;
    ngx_http_learn_model_t     **lmp;
    ngx_http_learn_main_conf_t  *lmcf;

    /* a worker's copy of the master's table (single mode: the table) */
    ngx_http_learn_zone_forget();

    ngx_http_learn_ffi_exit_process();

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_learn_module);
    if (lmcf == NULL) {
        return;
    }

    lmp = lmcf->models.elts;

    for (i = 0; i < lmcf->models.nelts; i++) {
        if (lmp[i]->ckpt_path.len && ngx_http_learn_checkpoint_writer()) {
            ngx_http_learn_checkpoint_exit_worker(cycle, lmp[i]);
        }

#if (NGX_THREADS)
        if (lmp[i]->follow && ngx_http_learn_checkpoint_writer()) {
            ngx_http_learn_store_follow_exit(lmp[i]);
        }
#endif

        if (lmp[i]->store && ngx_http_learn_checkpoint_writer()) {
            ngx_http_learn_store_exit_worker(lmp[i]);
        }

        if (lmp[i]->ws) {
            lt_workspace_free(lmp[i]->ws);
            lmp[i]->ws = NULL;
        }

        if (lmp[i]->set_ws) {
            lt_workspace_free(lmp[i]->set_ws);
            lmp[i]->set_ws = NULL;
        }

        while (lmp[i]->nws_free) {
            lt_workspace_free(lmp[i]->ws_free[--lmp[i]->nws_free]);
        }

        ngx_http_learn_versions_exit(lmp[i]);

        ngx_http_learn_device_exit(lmp[i]);
    }

    ngx_http_learn_device_exit_process();
}


/* the running layouts (ngx_http_learn_zone_forget) */

static void
ngx_http_learn_exit_master(ngx_cycle_t *cycle)
{
    ngx_http_learn_zone_forget();
}
