
/*
 * A model's shared memory zone: parameters, optimizer state and counters,
 * created in the master before fork so every worker maps the same bytes,
 * and kept across "nginx -s reload" while the layout stays the same.
 */


#include "ngx_http_learn.h"

#include <math.h>


#define ngx_http_learn_zone_header_size                                       \
    ngx_align(sizeof(ngx_http_learn_shm_t), 64)

/* ngx_http_learn_zone_lock_wait(): yields, then sleeps of 100 us */
#define NGX_HTTP_LEARN_LOCK_YIELDS    64
#define NGX_HTTP_LEARN_LOCK_SLEEP_US  100
#define NGX_HTTP_LEARN_LOCK_CHECK     16     /* sleeps between owner checks */


static void ngx_http_learn_zone_copy(ngx_http_learn_model_t *lm,
    ngx_http_learn_shm_t *old, ngx_log_t *log);


/*
 * Layout after the header: [params A | state A | params B | state B].
 * Buffer "which" is A for 0 and B for 1: a step reads one pair and
 * writes the other, so a step that is not published (its results were
 * not finite) leaves both parameters and optimizer state as they were.
 * lt_model_init_params() fills P floats and starts the S after them, so
 * params A and state A are initialised in one call.
 */

float *
ngx_http_learn_zone_buffer(ngx_http_learn_shm_t *shm, ngx_uint_t which)
{
    float  *base;

    base = (float *) ((u_char *) shm + shm->data_off);

    return base + (which & 1) * (shm->param_count + shm->state_count);
}


float *
ngx_http_learn_zone_state(ngx_http_learn_shm_t *shm, ngx_uint_t which)
{
    return ngx_http_learn_zone_buffer(shm, which) + shm->param_count;
}


static size_t
ngx_http_learn_zone_bytes(const lt_model *model)
{
    return ngx_http_learn_zone_header_size
           + 2 * (model->param_count + model->state_count) * sizeof(float);
}


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


/*
 * The zone holds one slab allocation of the bytes above; the slab pool
 * needs its own header and a page descriptor per page on top of that.
 */

size_t
ngx_http_learn_zone_size(const lt_model *model)
{
    size_t  pages;

    pages = (ngx_http_learn_zone_bytes(model) + ngx_pagesize - 1)
            / ngx_pagesize;

    return (pages + 16) * ngx_pagesize + pages * 64;
}


ngx_int_t
ngx_http_learn_zone_add(ngx_conf_t *cf, ngx_http_learn_model_t *lm,
    size_t size, ngx_shm_zone_init_pt init)
{
    ngx_str_t        name;
    ngx_shm_zone_t  *shm_zone;

    /*
     * The layout hash is part of the name: a reload with other layers
     * gets a new zone, and the old workers finish on the old one.
     */

    name.len = sizeof("learn__0123456789abcdef") - 1 + lm->name.len;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name.data, "learn_%V_%016xL", &lm->name, lm->model.hash);

    shm_zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_learn_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_ERROR;
    }

    shm_zone->init = init;
    shm_zone->data = lm;

    lm->shm_zone = shm_zone;

    return NGX_OK;
}


ngx_int_t
ngx_http_learn_zone_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_learn_model_t  *olm = data;

    float                   *a;
    ngx_slab_pool_t         *shpool;
    ngx_http_learn_shm_t    *shm;
    ngx_http_learn_model_t  *lm;

    lm = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (olm && olm->shm) {
        /* reload: the same name, so the same layout; keep the state */
        lm->shm = olm->shm;
        return NGX_OK;
    }

    /*
     * A fresh zone.  If the running configuration has one of this model
     * (other layers, or the same layers and another zone=SIZE), it is
     * retired in init_module, once nginx has accepted this configuration:
     * a reload that fails later (a listen on a busy port) must leave the
     * running model checkpointing.
     */

    lm->fresh = 1;

    shm = ngx_slab_alloc(shpool, ngx_http_learn_zone_bytes(&lm->model));
    if (shm == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "learn_model \"%V\": zone is too small", &lm->name);
        return NGX_ERROR;
    }

    ngx_memzero(shm, sizeof(ngx_http_learn_shm_t));

    shm->hash = lm->model.hash;
    shm->param_count = lt_model_values(&lm->model); /* with buffers */
    shm->state_count = lm->model.state_count;
    shm->data_off = ngx_http_learn_zone_header_size;

    if (ngx_shmtx_create(&shm->mutex, &shm->lock, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    a = ngx_http_learn_zone_buffer(shm, 0);
    lt_model_init_params(&lm->model, a, lm->seed);
    ngx_memcpy(ngx_http_learn_zone_buffer(shm, 1), a,
               (shm->param_count + shm->state_count) * sizeof(float));

    shm->loss = NAN;
    shm->loss_avg = NAN;

    lm->shm = shm;

    /*
     * A model not restored from its checkpoint differs from the file (a
     * first start, or other layers after a reload): write it at the first
     * chance, or a restart would find a file that does not fit.
     */
    shm->ckpt_version = (ngx_atomic_uint_t) -1;

    ngx_memcpy(shm->versions, lm->kept, sizeof(lm->kept));

    if (lm->running && lm->running->hash == lm->model.hash) {
        /*
         * The same layers in a zone of another size: the running zone
         * (still mapped here: nginx frees it after init_module) is newer
         * than the file read at configuration time.
         */
        ngx_http_learn_zone_copy(lm, lm->running, shm_zone->shm.log);
        lm->retire = lm->running;
    }

    shpool->data = shm;

    return NGX_OK;
}


/*
 * Master, zone init: the state of the running zone "old" (same layout)
 * into lm's new one, under the old zone's train mutex, as the running
 * workers may be in a step.  Trains that the old workers answer after
 * this copy, during the reload, are not carried over.
 */

static void
ngx_http_learn_zone_copy(ngx_http_learn_model_t *lm,
    ngx_http_learn_shm_t *old, ngx_log_t *log)
{
    size_t                 bytes;
    ngx_pid_t              pid;
    ngx_http_learn_shm_t  *shm;

    shm = lm->shm;
    bytes = (shm->param_count + shm->state_count) * sizeof(float);

    pid = ngx_http_learn_zone_lock_wait(old);

    ngx_memcpy(ngx_http_learn_zone_buffer(shm, 0),
               ngx_http_learn_zone_buffer(old, old->version), bytes);
    ngx_memcpy(ngx_http_learn_zone_buffer(shm, 1),
               ngx_http_learn_zone_buffer(shm, 0), bytes);

    shm->version = old->version;
    shm->writing = old->version;
    shm->step = old->step;
    shm->optim_step = old->optim_step;
    shm->loss = old->loss;
    shm->loss_avg = old->loss_avg;

    shm->trains = old->trains;
    shm->rejected_steps = old->rejected_steps;
    shm->predicts = old->predicts;
    shm->rejects = old->rejects;
    shm->retries = old->retries;
    shm->batches = old->batches;
    shm->batched = old->batched;
    shm->device_steps = old->device_steps;
    shm->device_predicts = old->device_predicts;

    shm->ckpt_version = old->ckpt_version;
    shm->ckpt_step = old->ckpt_step;
    shm->ckpt_writes = old->ckpt_writes;
    shm->ckpt_failures = old->ckpt_failures;
    shm->ckpt_time = old->ckpt_time;

    shm->ready = old->ready;
    shm->store_version = old->store_version;
    shm->store_step = old->store_step;
    shm->store_latest = old->store_latest;
    shm->store_transfers = old->store_transfers;
    shm->store_errors = old->store_errors;
    shm->store_refused = old->store_refused;
    shm->store_lag_ms = old->store_lag_ms;
    shm->store_time = old->store_time;

    shm->live_latency_us = old->live_latency_us;
    ngx_memcpy(shm->versions, old->versions, sizeof(shm->versions));
    shm->predict_hist = old->predict_hist;
    shm->train_hist = old->train_hist;
    shm->history = old->history;
    shm->samples = old->samples;
    shm->samples.lock = 0;

    ngx_shmtx_unlock(&old->mutex);

    if (pid) {
        ngx_http_learn_zone_lock_unlocked(lm, pid, log);
    }

    lm->copied = 1;
}


/*
 * Master, init_module: the configuration is accepted, so the zone this
 * model replaces stops writing checkpoints (its exiting workers would
 * overwrite the new zone's file with older or other-layout state).
 */

void
ngx_http_learn_zone_retire(ngx_http_learn_model_t *lm, ngx_log_t *log)
{
    if (lm->retire == NULL) {
        return;
    }

    lm->retire->retired = 1;

    if (lm->copied) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "learn_model \"%V\": the zone size changed, the state "
                      "moved to the new zone at step %uA",
                      &lm->name, lm->shm->step);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "learn_model \"%V\": the layers changed since the running "
                  "configuration, the model starts fresh", &lm->name);
}


/*
 * A process killed while it held a model's train mutex (SIGKILL during a
 * step) leaves it locked: nginx's master force-unlocks only the slab
 * pool's own mutex.  If the owner recorded in the lock no longer exists,
 * unlock it; returns that pid, or 0.
 *
 * The dead process's step is unpublished and harmless: "version" did
 * not move, so no predict reads the buffer it wrote, and the next step
 * rewrites it.  Only the optimizer state (momentum, Adam's moments),
 * which a step updates in place, may hold part of that step.
 */

ngx_pid_t
ngx_http_learn_zone_lock_recover(ngx_http_learn_shm_t *shm)
{
    ngx_pid_t  pid;

    pid = (ngx_pid_t) shm->lock.lock;

    if (pid <= 0 || pid == ngx_pid) {
        return 0;
    }

    if (kill(pid, 0) == 0 || ngx_errno != NGX_ESRCH) {
        return 0;
    }

    return ngx_shmtx_force_unlock(&shm->mutex, pid) ? pid : 0;
}


/*
 * The train mutex for a thread that may wait (a pool thread, the
 * checkpoint writer, the master copying a zone): trylock, yields, then
 * short sleeps, checking for a dead owner now and then; ngx_shmtx_lock()
 * would wait for a dead one forever.  Returns the pid of a dead owner it
 * unlocked on the way (the caller logs it, not being on the event loop),
 * or 0.
 */

ngx_pid_t
ngx_http_learn_zone_lock_wait(ngx_http_learn_shm_t *shm)
{
    ngx_pid_t   pid, unlocked;
    ngx_uint_t  i;

    unlocked = 0;

    for (i = 0; !ngx_shmtx_trylock(&shm->mutex); i++) {

        if (i < NGX_HTTP_LEARN_LOCK_YIELDS) {
            ngx_sched_yield();
            continue;
        }

        if ((i - NGX_HTTP_LEARN_LOCK_YIELDS) % NGX_HTTP_LEARN_LOCK_CHECK
            == 0)
        {
            pid = ngx_http_learn_zone_lock_recover(shm);

            if (pid) {
                unlocked = pid;
                continue;
            }
        }

        (void) usleep(NGX_HTTP_LEARN_LOCK_SLEEP_US);
    }

    return unlocked;
}


void
ngx_http_learn_zone_lock_unlocked(ngx_http_learn_model_t *lm, ngx_pid_t pid,
    ngx_log_t *log)
{
    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "learn_model \"%V\": process %P died holding the train "
                  "lock, unlocked it (its unfinished step is dropped; the "
                  "optimizer state may hold part of it)", &lm->name, pid);
}


/*
 * Under the mutex, with imported parameters written to the unpublished
 * buffer: publish them with an optimizer state that starts over
 * (momentum, Adam's moments and bias correction earned by other weights
 * would push the new ones).
 */

void
ngx_http_learn_zone_publish_import(ngx_http_learn_shm_t *shm,
    const lt_model *model)
{
    /* zero, or Adagrad's initial_accumulator_value */
    lt_model_init_state(model, ngx_http_learn_zone_state(shm,
                                                         shm->version + 1));
    shm->optim_step = 0;

    ngx_http_learn_zone_publish(shm);
}


/*
 * The parameters a predict should read, and the version to validate the
 * read with afterwards.
 */

const float *
ngx_http_learn_zone_params(ngx_http_learn_shm_t *shm,
    ngx_atomic_uint_t *version)
{
    ngx_atomic_uint_t  v;

    v = shm->version;
    ngx_memory_barrier();

    *version = v;

    return ngx_http_learn_zone_buffer(shm, v & 1);
}


/* buffer (version & 1) is rewritten only by step version + 2 */

ngx_int_t
ngx_http_learn_zone_read_valid(ngx_http_learn_shm_t *shm,
    ngx_atomic_uint_t version)
{
    ngx_memory_barrier();

    return shm->writing < version + 2;
}


/*
 * Writers hold shm->mutex.  begin_write announces the next version and
 * returns the buffer it goes to (not the one predicts read); publish
 * makes it the one predicts read.
 */

float *
ngx_http_learn_zone_begin_write(ngx_http_learn_shm_t *shm)
{
    shm->writing = shm->version + 1;
    ngx_memory_barrier();

    return ngx_http_learn_zone_buffer(shm, (shm->version + 1) & 1);
}


void
ngx_http_learn_zone_publish(ngx_http_learn_shm_t *shm)
{
    ngx_memory_barrier();
    shm->version = shm->version + 1;
}


/*
 * The running configuration's zone of this model goes to lm->running
 * (zone init copies the state from it when only the zone size changed);
 * it is returned if its layers differ.
 */

ngx_http_learn_shm_t *
ngx_http_learn_zone_running(ngx_http_learn_model_t *lm)
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
 * Master, init_module: the accepted configuration's layouts become the
 * running ones.
 */

ngx_int_t
ngx_http_learn_zone_remember(ngx_cycle_t *cycle,
    ngx_http_learn_main_conf_t *lmcf)
{
    ngx_uint_t                i;
    ngx_http_learn_known_t   *known;
    ngx_http_learn_model_t  **lmp;

    known = ngx_alloc(lmcf->models.nelts * sizeof(ngx_http_learn_known_t),
                      cycle->log);
    if (known == NULL) {
        return NGX_ERROR;
    }

    lmp = lmcf->models.elts;

    for (i = 0; i < lmcf->models.nelts; i++) {
        ngx_cpystrn(known[i].name, lmp[i]->name.data,
                    ngx_min(lmp[i]->name.len + 1, sizeof(known[i].name)));
        known[i].hash = lmp[i]->model.hash;
        known[i].shm = lmp[i]->shm;
    }

    ngx_free(ngx_http_learn_known);
    ngx_http_learn_known = known;
    ngx_http_learn_nknown = lmcf->models.nelts;

    return NGX_OK;
}


/*
 * The running layouts outlive every cycle, so no pool frees them: the
 * exiting master (and each exiting worker, for its copy) does.  Left
 * allocated, the pointer goes with the module's data when nginx unloads
 * the module at exit, and the block counts as lost.
 */

void
ngx_http_learn_zone_forget(void)
{
    ngx_free(ngx_http_learn_known);
    ngx_http_learn_known = NULL;
    ngx_http_learn_nknown = 0;
}
