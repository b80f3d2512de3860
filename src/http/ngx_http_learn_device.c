
/*
 * learn_model ... device=cuda[:N]: train steps and forward passes on a GPU.
 *
 * The CUDA backend is its own shared object (ngx_http_learn_cuda.so next
 * to the module, built where nvcc is), opened by each worker in
 * init_process.  The module links no CUDA library, so one module file
 * serves machines with and without a GPU, and the master never touches
 * CUDA, which does not survive fork().
 *
 * The zone stays the source of truth.  Each worker keeps a device copy of
 * the live parameters and of the optimizer state, each tagged with the
 * zone version it holds.  A predict refreshes the parameters when the
 * version moved; a step uploads what is stale, runs on the device, writes
 * the new parameters and optimizer state back into the zone and then
 * publishes them like a CPU step.  Whatever the device cannot do now (a
 * pool thread is using it, it failed) runs on the CPU from the zone: the
 * GPU accelerates a model, it never holds the only copy of its state.
 */


#include "ngx_http_learn.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>


#define NGX_HTTP_LEARN_MAX_GPUS     16
#define NGX_HTTP_LEARN_DEV_TRIES    8


typedef int (*ngx_http_learn_cuda_count_pt)(void);
typedef const lt_backend *(*ngx_http_learn_cuda_open_pt)(int device,
    int allow_tf32, lt_err *err);
typedef void (*ngx_http_learn_cuda_close_pt)(const lt_backend *be);
typedef int (*ngx_http_learn_cuda_status_pt)(const lt_backend *be,
    lt_err *err);


typedef struct {
    void                          *handle;
    ngx_http_learn_cuda_open_pt    open;
    ngx_http_learn_cuda_close_pt   close;
    ngx_http_learn_cuda_status_pt  status;
} ngx_http_learn_cuda_lib_t;


/* one backend (cuBLAS handle, stream) per device and math mode, per worker */
typedef struct {
    const lt_backend              *be;
    ngx_int_t                      device;
    ngx_flag_t                     tf32;
    pthread_mutex_t                lock;      /* one user of the stream */
} ngx_http_learn_gpu_t;


struct ngx_http_learn_dev_s {
    ngx_http_learn_gpu_t          *gpu;
    lt_workspace                  *ws;
    void                          *block;     /* the three buffers below */
    float                         *params;    /* live, of params_version */
    float                         *next;      /* a step's output */
    float                         *state;     /* optimizer, of state_version */
    ngx_atomic_uint_t              params_version;
    ngx_atomic_uint_t              state_version;
    ngx_uint_t                     failed;
};


#define NGX_HTTP_LEARN_DEV_STALE   ((ngx_atomic_uint_t) -1)


static ngx_int_t ngx_http_learn_cuda_load(ngx_http_learn_cuda_lib_t *lib,
    const char *path, lt_err *err);
static ngx_http_learn_gpu_t *ngx_http_learn_gpu_get(
    ngx_http_learn_model_t *lm, const char *path, lt_err *err);
static ngx_int_t ngx_http_learn_device_probe(ngx_http_learn_main_conf_t *lmcf,
    ngx_http_learn_model_t *lm, lt_err *err);
static ngx_int_t ngx_http_learn_gpu_lock(ngx_http_learn_gpu_t *gpu,
    ngx_uint_t wait);
static void ngx_http_learn_device_failed(ngx_http_learn_model_t *lm,
    const char *what, const char *msg);


static ngx_http_learn_cuda_lib_t  ngx_http_learn_cuda;
static ngx_http_learn_gpu_t       ngx_http_learn_gpus[NGX_HTTP_LEARN_MAX_GPUS];
static ngx_uint_t                 ngx_http_learn_ngpus;


/*
 * device=cpu | cuda | cuda:N, tf32=on|off, fallback=cpu|off.
 * NGX_DECLINED: not a device parameter.
 */

ngx_int_t
ngx_http_learn_device_parse(ngx_conf_t *cf, ngx_http_learn_model_t *lm,
    ngx_str_t *value)
{
    ngx_int_t  n;

    if (ngx_strncmp(value->data, "device=", 7) == 0) {

        if (ngx_strcmp(value->data + 7, "cpu") == 0) {
            lm->device = -1;
            return NGX_OK;
        }

        if (ngx_strcmp(value->data + 7, "cuda") == 0) {
            lm->device = 0;
            return NGX_OK;
        }

        if (ngx_strncmp(value->data + 7, "cuda:", 5) == 0) {
            n = ngx_atoi(value->data + 12, value->len - 12);

            if (n != NGX_ERROR && n < NGX_HTTP_LEARN_MAX_GPUS) {
                lm->device = n;
                return NGX_OK;
            }
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_model \"%V\": device \"%s\" is not "
                           "\"cpu\", \"cuda\" or \"cuda:N\" (N below %d)",
                           &lm->name, value->data + 7,
                           NGX_HTTP_LEARN_MAX_GPUS);
        return NGX_ERROR;
    }

    if (ngx_strcmp(value->data, "tf32=on") == 0) {
        lm->tf32 = 1;
        return NGX_OK;
    }

    if (ngx_strcmp(value->data, "tf32=off") == 0) {
        lm->tf32 = 0;
        return NGX_OK;
    }

    if (ngx_strcmp(value->data, "fallback=off") == 0) {
        lm->strict = 1;
        return NGX_OK;
    }

    if (ngx_strcmp(value->data, "fallback=cpu") == 0) {
        lm->strict = 0;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * At configuration time, in the master.  Without a library path the
 * backend is looked for next to the module.  fallback=off asks a child
 * process whether the device opens, so that "nginx -t" and the start
 * fail here, while the master itself stays free of CUDA.
 */

ngx_int_t
ngx_http_learn_device_check(ngx_conf_t *cf, ngx_http_learn_main_conf_t *lmcf,
    ngx_http_learn_model_t *lm)
{
    u_char     *last;
    lt_err      err;
    ngx_int_t   rc;
    ngx_int_t   i;
    ngx_str_t   dir;

    if (lm->device < 0) {
        return NGX_OK;
    }

    /* a layer the CUDA backend has no kernels for yet */
    i = lt_model_device_layer(&lm->model);

    if (i >= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_model \"%V\": device=cuda does not run "
                           "layer \"%s\" (%s) yet; use device=cpu",
                           &lm->name, lm->model.spec.layers[i].name,
                           lt_layer_name(lm->model.spec.layers[i].kind));
        return NGX_ERROR;
    }

    if (lmcf->cuda_library.len == 0) {
        rc = ngx_http_learn_module_dir(cf, &dir,
                                       sizeof("/ngx_http_learn_cuda.so"));
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK) {
            last = ngx_cpymem(dir.data + dir.len, "/ngx_http_learn_cuda.so",
                              sizeof("/ngx_http_learn_cuda.so") - 1);
            *last = '\0';

            lmcf->cuda_library.data = dir.data;
            lmcf->cuda_library.len = last - dir.data;
        }
    }

    if (!lm->strict) {
        return NGX_OK;
    }

    if (ngx_http_learn_device_probe(lmcf, lm, &err) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_model \"%V\": device=cuda:%i with "
                           "fallback=off, but %s", &lm->name, lm->device,
                           err.msg);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* Opens the device in a child process; err says why it did not. */

static ngx_int_t
ngx_http_learn_device_probe(ngx_http_learn_main_conf_t *lmcf,
    ngx_http_learn_model_t *lm, lt_err *err)
{
    int                         fd[2], status;
    pid_t                       pid;
    sigset_t                    set, old_set;
    struct sigaction            sa, old_sa;
    size_t                      got;
    ssize_t                     n;
    const lt_backend           *be;
    ngx_http_learn_cuda_lib_t   lib;

    ngx_memzero(err, sizeof(lt_err));
    ngx_memzero(&lib, sizeof(ngx_http_learn_cuda_lib_t));

    if (lmcf->cuda_library.len == 0) {
        ngx_cpystrn((u_char *) err->msg, (u_char *) "the CUDA backend's "
                    "library is not found (set learn_cuda_library)",
                    sizeof(err->msg));
        return NGX_ERROR;
    }

    if (pipe(fd) == -1) {
        ngx_snprintf((u_char *) err->msg, sizeof(err->msg) - 1,
                     "pipe() failed (%d)", ngx_errno);
        return NGX_ERROR;
    }

    /*
     * The child must be ours to reap: not auto-reaped (SIGCHLD ignored by
     * whoever started nginx), not reaped by a running master's handler.
     */

    ngx_memzero(&sa, sizeof(struct sigaction));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    (void) sigaction(SIGCHLD, &sa, &old_sa);

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    (void) sigprocmask(SIG_BLOCK, &set, &old_set);

    pid = fork();

    if (pid == -1) {
        ngx_snprintf((u_char *) err->msg, sizeof(err->msg) - 1,
                     "fork() failed (%d)", ngx_errno);
        close(fd[0]);
        close(fd[1]);
        (void) sigprocmask(SIG_SETMASK, &old_set, NULL);
        (void) sigaction(SIGCHLD, &old_sa, NULL);
        return NGX_ERROR;
    }

    if (pid == 0) {
        /* the child: an empty message means the device opened */
        close(fd[0]);
        (void) sigprocmask(SIG_SETMASK, &old_set, NULL);
        err->msg[0] = '\0';

        if (ngx_http_learn_cuda_load(&lib, (char *) lmcf->cuda_library.data,
                                     err)
            == NGX_OK)
        {
            be = lib.open((int) lm->device, (int) lm->tf32, err);
            if (be != NULL) {
                err->msg[0] = '\0';

                /* the model's loss and optimizer must run there too */
                (void) lt_model_check_backend(&lm->model, be, err);

                /* what the probe opened is released, not left to exit */
                lib.close(be);
            }
        }

        n = write(fd[1], err->msg, ngx_strlen(err->msg));
        _exit(n < 0);
    }

    close(fd[1]);

    got = 0;

    for ( ;; ) {
        n = read(fd[0], err->msg + got, sizeof(err->msg) - 1 - got);

        if (n > 0) {
            got += n;
            if (got < sizeof(err->msg) - 1) {
                continue;
            }

        } else if (n == -1 && ngx_errno == NGX_EINTR) {
            continue;
        }

        break;
    }

    close(fd[0]);
    err->msg[got] = '\0';

    status = 0;

    while (waitpid(pid, &status, 0) == -1 && ngx_errno == NGX_EINTR) {
        /* void */
    }

    (void) sigprocmask(SIG_SETMASK, &old_set, NULL);
    (void) sigaction(SIGCHLD, &old_sa, NULL);

    if (!WIFEXITED(status)) {
        ngx_cpystrn((u_char *) err->msg, (u_char *) "the process that "
                    "opened the CUDA device crashed", sizeof(err->msg));
        return NGX_ERROR;
    }

    return got == 0 ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_learn_cuda_load(ngx_http_learn_cuda_lib_t *lib, const char *path,
    lt_err *err)
{
    const char  *msg;

    if (lib->handle) {
        return NGX_OK;
    }

    lib->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);

    if (lib->handle == NULL) {
        msg = dlerror();
        ngx_snprintf((u_char *) err->msg, sizeof(err->msg) - 1,
                     "the CUDA backend did not load (%s)%Z",
                     msg ? msg : path);
        return NGX_ERROR;
    }

    lib->open = (ngx_http_learn_cuda_open_pt)
                    dlsym(lib->handle, "lt_backend_cuda_open");
    lib->close = (ngx_http_learn_cuda_close_pt)
                    dlsym(lib->handle, "lt_backend_cuda_close");
    lib->status = (ngx_http_learn_cuda_status_pt)
                    dlsym(lib->handle, "lt_backend_cuda_status");

    if (lib->open == NULL || lib->close == NULL || lib->status == NULL) {
        ngx_snprintf((u_char *) err->msg, sizeof(err->msg) - 1,
                     "\"%s\" is not the CUDA backend (lt_backend_cuda_* "
                     "missing)%Z", path);
        dlclose(lib->handle);
        lib->handle = NULL;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A worker's device copy of the model, or a line saying why the model
 * runs on the CPU (a warning from one worker, so N workers do not say it
 * N times; fallback=off makes the worker exit instead).
 */

ngx_int_t
ngx_http_learn_device_init(ngx_cycle_t *cycle,
    ngx_http_learn_main_conf_t *lmcf, ngx_http_learn_model_t *lm)
{
    size_t                 p, s;
    lt_err                 err;
    ngx_uint_t             level;
    ngx_http_learn_dev_t  *dev;
    ngx_http_learn_gpu_t  *gpu;

    if (lm->device < 0) {
        return NGX_OK;
    }

    ngx_memzero(&err, sizeof(lt_err));
    dev = NULL;

    gpu = ngx_http_learn_gpu_get(lm, (char *) lmcf->cuda_library.data, &err);
    if (gpu == NULL) {
        goto cpu;
    }

    dev = ngx_calloc(sizeof(ngx_http_learn_dev_t), cycle->log);
    if (dev == NULL) {
        return NGX_ERROR;
    }

    dev->gpu = gpu;
    dev->params_version = NGX_HTTP_LEARN_DEV_STALE;
    dev->state_version = NGX_HTTP_LEARN_DEV_STALE;

    p = lt_model_values(&lm->model);
    s = lm->model.state_count;

    dev->block = gpu->be->alloc(gpu->be, (2 * p + s) * sizeof(float));
    if (dev->block == NULL) {
        ngx_cpystrn((u_char *) err.msg, (u_char *) "out of device memory "
                    "for the parameters", sizeof(err.msg));
        goto cpu;
    }

    dev->params = dev->block;
    dev->next = dev->params + p;
    dev->state = dev->next + p;

    dev->ws = lt_workspace_new(&lm->model, gpu->be, 1, &err);
    if (dev->ws == NULL) {
        goto cpu;
    }

    /* a loss or optimizer the device backend does not implement */
    if (lt_model_check_backend(&lm->model, gpu->be, &err) != 0) {
        lt_workspace_free(dev->ws);
        goto cpu;
    }

    lm->dev = dev;

    ngx_log_error(NGX_LOG_INFO, cycle->log, 0,
                  "learn_model \"%V\": on cuda:%i%s", &lm->name, lm->device,
                  lm->tf32 ? " (TF32 products)" : "");

    return NGX_OK;

cpu:

    if (dev) {
        if (dev->block) {
            gpu->be->free(gpu->be, dev->block);
        }

        ngx_free(dev);
    }

    if (lm->strict) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "learn_model \"%V\": device=cuda:%i with fallback=off, "
                      "but %s", &lm->name, lm->device, err.msg);
        return NGX_ERROR;
    }

    level = (ngx_process == NGX_PROCESS_SINGLE || ngx_worker == 0)
            ? NGX_LOG_WARN : NGX_LOG_INFO;

    ngx_log_error(level, cycle->log, 0,
                  "learn_model \"%V\": device=cuda:%i is not usable (%s), "
                  "the model runs on the CPU", &lm->name, lm->device,
                  err.msg);

    return NGX_OK;
}


static ngx_http_learn_gpu_t *
ngx_http_learn_gpu_get(ngx_http_learn_model_t *lm, const char *path,
    lt_err *err)
{
    ngx_uint_t             i;
    ngx_http_learn_gpu_t  *gpu;

    for (i = 0; i < ngx_http_learn_ngpus; i++) {
        gpu = &ngx_http_learn_gpus[i];

        if (gpu->device == lm->device && gpu->tf32 == lm->tf32) {
            return gpu;
        }
    }

    if (path == NULL) {
        ngx_cpystrn((u_char *) err->msg, (u_char *) "the CUDA backend's "
                    "library is not found (set learn_cuda_library)",
                    sizeof(err->msg));
        return NULL;
    }

    if (ngx_http_learn_ngpus == NGX_HTTP_LEARN_MAX_GPUS) {
        ngx_cpystrn((u_char *) err->msg, (u_char *) "too many devices",
                    sizeof(err->msg));
        return NULL;
    }

    if (ngx_http_learn_cuda_load(&ngx_http_learn_cuda, path, err) != NGX_OK) {
        return NULL;
    }

    gpu = &ngx_http_learn_gpus[ngx_http_learn_ngpus];

    gpu->be = ngx_http_learn_cuda.open((int) lm->device, (int) lm->tf32,
                                       err);
    if (gpu->be == NULL) {
        return NULL;
    }

    if (pthread_mutex_init(&gpu->lock, NULL) != 0) {
        ngx_http_learn_cuda.close(gpu->be);
        ngx_cpystrn((u_char *) err->msg, (u_char *) "pthread_mutex_init() "
                    "failed", sizeof(err->msg));
        return NULL;
    }

    gpu->device = lm->device;
    gpu->tf32 = lm->tf32;

    ngx_http_learn_ngpus++;

    return gpu;
}


void
ngx_http_learn_device_exit(ngx_http_learn_model_t *lm)
{
    ngx_http_learn_dev_t  *dev;

    dev = lm->dev;

    if (dev == NULL) {
        return;
    }

    lm->dev = NULL;

    lt_workspace_free(dev->ws);
    dev->gpu->be->free(dev->gpu->be, dev->block);
    ngx_free(dev);
}


/* after every model's device_exit */

void
ngx_http_learn_device_exit_process(void)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_http_learn_ngpus; i++) {
        ngx_http_learn_cuda.close(ngx_http_learn_gpus[i].be);
        (void) pthread_mutex_destroy(&ngx_http_learn_gpus[i].lock);
    }

    ngx_http_learn_ngpus = 0;
}


/*
 * The event loop only tries the lock: a pool thread holding it for a big
 * step must not stop the worker.  Pool threads wait for it.
 */

static ngx_int_t
ngx_http_learn_gpu_lock(ngx_http_learn_gpu_t *gpu, ngx_uint_t wait)
{
    if (wait) {
        return pthread_mutex_lock(&gpu->lock) == 0 ? NGX_OK : NGX_BUSY;
    }

    return pthread_mutex_trylock(&gpu->lock) == 0 ? NGX_OK : NGX_BUSY;
}


/* would ngx_http_learn_device_step() try this model's GPU here */

ngx_uint_t
ngx_http_learn_device_usable(ngx_http_learn_model_t *lm)
{
    return lm->dev != NULL && !lm->dev->failed;
}


/*
 * One optimizer step on the device, the caller holding the zone mutex
 * between ngx_http_learn_zone_begin_write() and _publish(): the new
 * parameters go to params_out (the zone's next buffer), the optimizer
 * state back into the zone.  NGX_DECLINED: run it on the CPU instead;
 * the zone is then as it was, but for a failure in the final copies,
 * which disables the device in this worker.
 */

ngx_int_t
ngx_http_learn_device_step(ngx_http_learn_model_t *lm, const lt_tensor *x,
    const lt_tensor *y, float *params_out, float *state_out, int64_t step,
    float *loss, ngx_uint_t wait, lt_err *step_err)
{
    float                 *swap;
    lt_err                 err;
    ngx_atomic_uint_t      v;
    const lt_backend      *be;
    ngx_http_learn_shm_t  *shm;
    ngx_http_learn_dev_t  *dev;

    dev = lm->dev;

    if (dev == NULL || dev->failed
        || ngx_http_learn_gpu_lock(dev->gpu, wait) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    be = dev->gpu->be;
    shm = lm->shm;
    v = shm->version;

    if (dev->params_version != v) {
        be->to_device(be, dev->params, ngx_http_learn_zone_buffer(shm, v & 1),
                      shm->param_count * sizeof(float));
    }

    if (dev->state_version != v) {
        be->to_device(be, dev->state, ngx_http_learn_zone_state(shm, v),
                      shm->state_count * sizeof(float));
    }

    /* a failure below leaves both copies half-done */
    dev->params_version = NGX_HTTP_LEARN_DEV_STALE;
    dev->state_version = NGX_HTTP_LEARN_DEV_STALE;

    if (lt_model_train_step(&lm->model, dev->ws, dev->params, dev->next,
                            dev->state, step, x, y, loss, &err)
        != 0)
    {
        if (err.code == LT_ENONFINITE) {
            /* the parameters were not written; the state is in place */
            dev->params_version = v;
            *step_err = err;
            pthread_mutex_unlock(&dev->gpu->lock);
            return NGX_ERROR;
        }

        if (ngx_http_learn_cuda.status(be, &err) != 0) {
            ngx_http_learn_device_failed(lm, "a step", err.msg);

        } else {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "learn_train \"%V\": on the CPU: %s", &lm->name,
                          err.msg);
        }

        pthread_mutex_unlock(&dev->gpu->lock);
        return NGX_DECLINED;
    }

    if (ngx_http_learn_cuda.status(be, &err) != 0) {
        ngx_http_learn_device_failed(lm, "a step", err.msg);
        pthread_mutex_unlock(&dev->gpu->lock);
        return NGX_DECLINED;
    }

    be->to_host(be, params_out, dev->next, shm->param_count * sizeof(float));
    be->to_host(be, state_out, dev->state, shm->state_count * sizeof(float));

    if (ngx_http_learn_cuda.status(be, &err) != 0) {
        /* only the zone's unpublished buffers were written */
        ngx_http_learn_device_failed(lm, "copying a step back", err.msg);
        pthread_mutex_unlock(&dev->gpu->lock);
        return NGX_DECLINED;
    }

    if (lt_model_step_check(&lm->model, *loss, params_out, state_out,
                            step_err)
        != 0)
    {
        dev->params_version = v;
        pthread_mutex_unlock(&dev->gpu->lock);
        return NGX_ERROR;
    }

    swap = dev->params;
    dev->params = dev->next;
    dev->next = swap;

    dev->params_version = v + 1;
    dev->state_version = v + 1;

    pthread_mutex_unlock(&dev->gpu->lock);

    (void) ngx_atomic_fetch_add(&shm->device_steps, 1);

    return NGX_OK;
}


/*
 * A forward pass on the device with the live parameters, refreshed from
 * the zone when its version moved (and read again if a step rewrote that
 * buffer during the copy).  The output rows are copied to y_buf, which
 * the caller owns: the device's workspace is the next user's once the
 * lock is released.  NGX_DECLINED: run it on the CPU.
 */

ngx_int_t
ngx_http_learn_device_forward(ngx_http_learn_model_t *lm, const lt_tensor *x,
    float *y_buf, lt_tensor *y, ngx_uint_t wait)
{
    int                    rc;
    lt_err                 err;
    ngx_uint_t             i;
    ngx_atomic_uint_t      v;
    const float           *params;
    const lt_backend      *be;
    ngx_http_learn_shm_t  *shm;
    ngx_http_learn_dev_t  *dev;

    dev = lm->dev;

    if (dev == NULL || dev->failed || y_buf == NULL
        || ngx_http_learn_gpu_lock(dev->gpu, wait) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    be = dev->gpu->be;
    shm = lm->shm;

    for (i = 0; i < NGX_HTTP_LEARN_DEV_TRIES; i++) {
        params = ngx_http_learn_zone_params(shm, &v);

        if (dev->params_version == v) {
            break;
        }

        dev->params_version = NGX_HTTP_LEARN_DEV_STALE;

        be->to_device(be, dev->params, params,
                      shm->param_count * sizeof(float));

        if (ngx_http_learn_zone_read_valid(shm, v)) {
            dev->params_version = v;
            break;
        }

        (void) ngx_atomic_fetch_add(&shm->retries, 1);
    }

    if (dev->params_version == NGX_HTTP_LEARN_DEV_STALE) {
        pthread_mutex_unlock(&dev->gpu->lock);
        return NGX_DECLINED;
    }

    rc = lt_model_forward(&lm->model, dev->ws, dev->params, x, y, &err);

    if (ngx_http_learn_cuda.status(be, &err) != 0) {
        ngx_http_learn_device_failed(lm, "a forward pass", err.msg);
        rc = -1;
    }

    if (rc != 0) {
        pthread_mutex_unlock(&dev->gpu->lock);
        return NGX_DECLINED;
    }

    ngx_memcpy(y_buf, y->data, lt_tensor_numel(y) * sizeof(float));
    y->data = y_buf;

    pthread_mutex_unlock(&dev->gpu->lock);

    (void) ngx_atomic_fetch_add(&shm->device_predicts, 1);

    return NGX_OK;
}


/* a failed CUDA context stays failed: this worker goes on without it */

static void
ngx_http_learn_device_failed(ngx_http_learn_model_t *lm, const char *what,
    const char *msg)
{
    lm->dev->failed = 1;

    ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                  "learn_model \"%V\": cuda:%i failed in %s (%s), this "
                  "worker runs the model on the CPU from now on",
                  &lm->name, lm->device, what, msg);
}


/* "cuda:N" where this worker runs the model on a GPU, else "cpu" */

u_char *
ngx_http_learn_device_name(u_char *p, ngx_http_learn_model_t *lm)
{
    if (lm->dev && !lm->dev->failed) {
        return ngx_sprintf(p, "cuda:%i", lm->device);
    }

    return ngx_cpymem(p, "cpu", 3);
}
