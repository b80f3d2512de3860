
/*
 * The job table: learn_job_max entries in one shared zone
 * ("learn_jobs"), so any worker answers for any job, and a reload with
 * the same learn_job_max keeps it (nginx reuses a zone of the same name,
 * size and tag; the layout is checked by a magic number).  A job is owned
 * by the worker that accepted it: a job whose owner died (SIGKILL, a
 * crash) is found out by the next look at it (kill(pid, 0)) and marked
 * an error with the reason.  A full table reuses the oldest finished
 * entry; when every entry is queued or running, a new job is refused.
 */


#include "ngx_http_learn_job_table.h"
#include "ngx_http_learn_job_state.h"

#include <math.h>


#define NGX_HTTP_LEARN_JOB_MAGIC                                              \
    (0x4c4a4f4200000000ULL                                                    \
     | (uint64_t) sizeof(ngx_http_learn_job_entry_t))


static ngx_int_t ngx_http_learn_job_table_init(ngx_shm_zone_t *shm_zone,
    void *data);


/* by ngx_http_learn_job_state_e, as the JSON and the page name them */
ngx_str_t  ngx_http_learn_job_states[] = {
    ngx_string("queued"),
    ngx_string("running"),
    ngx_string("done"),
    ngx_string("error"),
    ngx_string("cancelled")
};


static ngx_shm_zone_t            *ngx_http_learn_job_zone;
static ngx_http_learn_job_shm_t  *ngx_http_learn_job_shm;
static ngx_slab_pool_t           *ngx_http_learn_job_slab;
static ngx_uint_t                 ngx_http_learn_job_tag;

/* the configuration being read: its models' record files fill a new
 * table (ngx_cycle is still the old cycle while zones are made) */
static ngx_http_learn_main_conf_t  *ngx_http_learn_job_conf;


ngx_int_t
ngx_http_learn_job_table_add(ngx_conf_t *cf, ngx_uint_t max)
{
    size_t           size;
    ngx_str_t        name = ngx_string("learn_jobs");
    ngx_shm_zone_t  *zone;

    size = sizeof(ngx_http_learn_job_shm_t)
           + max * sizeof(ngx_http_learn_job_entry_t);

    /* the slab pool's header and page rounding */
    size = ngx_align(size + 16 * ngx_pagesize, ngx_pagesize);

    zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_learn_job_tag);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    zone->init = ngx_http_learn_job_table_init;
    zone->data = (void *) (uintptr_t) max;
    zone->noreuse = 0;

    ngx_http_learn_job_zone = zone;
    ngx_http_learn_job_conf = ngx_http_conf_get_module_main_conf(cf,
                                                     ngx_http_learn_module);

    return NGX_OK;
}


static ngx_int_t
ngx_http_learn_job_table_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_uint_t                 max;
    ngx_slab_pool_t           *shpool;
    ngx_http_learn_job_shm_t  *t, *old;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    max = (ngx_uint_t) (uintptr_t) shm_zone->data;

    /* data: the running configuration's table (a reload) */
    old = data;

    if (old && old->magic == NGX_HTTP_LEARN_JOB_MAGIC && old->max == max) {
        shm_zone->data = old;
        ngx_http_learn_job_shm = old;
        ngx_http_learn_job_slab = shpool;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        ngx_http_learn_job_shm = shpool->data;
        ngx_http_learn_job_slab = shpool;
        return NGX_OK;
    }

    t = ngx_slab_alloc(shpool, sizeof(ngx_http_learn_job_shm_t)
                               + max * sizeof(ngx_http_learn_job_entry_t));
    if (t == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(t, sizeof(ngx_http_learn_job_shm_t)
                   + max * sizeof(ngx_http_learn_job_entry_t));

    t->magic = NGX_HTTP_LEARN_JOB_MAGIC;
    t->max = max;
    t->nonce = (uint64_t) ngx_time() * 1000003ULL ^ (uint64_t) ngx_pid
               ^ ((uint64_t) (uintptr_t) t << 16) ^ ngx_current_msec;

    shpool->data = t;
    shm_zone->data = t;
    ngx_http_learn_job_shm = t;
    ngx_http_learn_job_slab = shpool;

    if (old) {
        ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                      "learn jobs: learn_job_max changed, the job table "
                      "starts empty");

    } else {
        /* nginx starts: the records of the jobs before it stopped */
        ngx_http_learn_job_state_load(t, ngx_http_learn_job_conf,
                                      shm_zone->shm.log);
    }

    return NGX_OK;
}


ngx_http_learn_job_shm_t *
ngx_http_learn_job_table(void)
{
    return ngx_http_learn_job_shm;
}


void
ngx_http_learn_job_table_lock(void)
{
    ngx_shmtx_lock(&ngx_http_learn_job_slab->mutex);
}


void
ngx_http_learn_job_table_unlock(void)
{
    ngx_shmtx_unlock(&ngx_http_learn_job_slab->mutex);
}


/* under the lock, after a state change: the model's records on disk */

void
ngx_http_learn_job_table_changed(ngx_http_learn_job_entry_t *e)
{
    ngx_http_learn_job_state_save(ngx_http_learn_job_shm, e->model,
                                  ngx_cycle->log);
}


/* under the lock: a live job whose worker is gone is an error now */

void
ngx_http_learn_job_table_check(ngx_http_learn_job_entry_t *e)
{
    if (e->id == 0 || !ngx_http_learn_job_live(e->state)
        || e->pid == ngx_pid)
    {
        return;
    }

    if (kill(e->pid, 0) == 0 || ngx_errno != NGX_ESRCH) {
        return;
    }

    ngx_snprintf(e->error, NGX_HTTP_LEARN_JOB_TEXT - 1,
                 "interrupted: the worker process %P that ran the job "
                 "exited before it ended (killed, or nginx was stopped)%Z",
                 e->pid);
    e->finished = ngx_time();

    ngx_memory_barrier();
    e->state = NGX_HTTP_LEARN_JOB_ERROR;

    ngx_http_learn_job_table_changed(e);
}


/* a splitmix64 step over the nonce: ids are unique and unguessable enough
 * that one client does not stumble on another's by counting */

static uint64_t
ngx_http_learn_job_id(ngx_http_learn_job_shm_t *t)
{
    uint64_t  z;

    z = (t->nonce += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;

    return z ? z : 1;
}


ngx_http_learn_job_entry_t *
ngx_http_learn_job_table_new(ngx_uint_t kind, ngx_str_t *model,
    ngx_uint_t *full)
{
    uint64_t                     id;
    ngx_uint_t                   i;
    ngx_http_learn_job_shm_t    *t;
    ngx_http_learn_job_entry_t  *e, *oldest;

    t = ngx_http_learn_job_shm;
    *full = 0;

    ngx_http_learn_job_table_lock();

    e = NULL;
    oldest = NULL;

    for (i = 0; i < t->max; i++) {
        if (t->jobs[i].id == 0) {
            e = &t->jobs[i];
            break;
        }

        ngx_http_learn_job_table_check(&t->jobs[i]);

        if (!ngx_http_learn_job_live(t->jobs[i].state)
            && (oldest == NULL || t->jobs[i].seq < oldest->seq))
        {
            oldest = &t->jobs[i];
        }
    }

    if (e == NULL) {
        e = oldest;
    }

    if (e == NULL) {
        ngx_http_learn_job_table_unlock();
        *full = 1;
        return NULL;
    }

    for ( ;; ) {
        id = ngx_http_learn_job_id(t);

        for (i = 0; i < t->max; i++) {
            if (t->jobs[i].id == id) {
                break;
            }
        }

        if (i == t->max) {
            break;
        }
    }

    ngx_memzero(e, sizeof(ngx_http_learn_job_entry_t));

    e->id = id;
    e->seq = ++t->seq;
    e->pid = ngx_pid;
    e->kind = kind;
    e->state = NGX_HTTP_LEARN_JOB_QUEUED;
    e->loss = NAN;
    e->val_loss = NAN;
    e->val_accuracy = NAN;
    e->step = -1;
    e->created = ngx_time();
    ngx_cpystrn(e->model, model->data, ngx_min(model->len + 1,
                                               sizeof(e->model)));

    /* saved once the caller has filled in the rest (job.c) */

    ngx_http_learn_job_table_unlock();

    return e;
}


/* under the lock */

ngx_http_learn_job_entry_t *
ngx_http_learn_job_table_find(uint64_t id)
{
    ngx_uint_t                 i;
    ngx_http_learn_job_shm_t  *t;

    t = ngx_http_learn_job_shm;

    for (i = 0; id && i < t->max; i++) {
        if (t->jobs[i].id == id) {
            ngx_http_learn_job_table_check(&t->jobs[i]);
            return &t->jobs[i];
        }
    }

    return NULL;
}


/* a state change, if the entry is still that job in that state */

ngx_int_t
ngx_http_learn_job_table_set(ngx_http_learn_job_entry_t *e, uint64_t id,
    ngx_uint_t from, ngx_uint_t to)
{
    ngx_int_t  rc;

    ngx_http_learn_job_table_lock();

    rc = NGX_DECLINED;

    if (e->id == id && e->state == from) {
        if (to == NGX_HTTP_LEARN_JOB_RUNNING) {
            e->started = ngx_time();

        } else if (!ngx_http_learn_job_live(to)) {
            e->finished = ngx_time();
        }

        ngx_memory_barrier();
        e->state = to;
        rc = NGX_OK;

        ngx_http_learn_job_table_changed(e);
    }

    ngx_http_learn_job_table_unlock();

    return rc;
}


/*
 * One train job per model at a time, in the order they came: a queued
 * train job starts when no train job of its model runs and none queued
 * before it waits.  Predict jobs read the published parameters and start
 * at once.
 */

ngx_uint_t
ngx_http_learn_job_table_may_start(ngx_http_learn_job_entry_t *e)
{
    ngx_uint_t                   i, may;
    ngx_http_learn_job_shm_t    *t;
    ngx_http_learn_job_entry_t  *o;

    if (e->kind != NGX_HTTP_LEARN_JOB_KIND_TRAIN) {
        return 1;
    }

    t = ngx_http_learn_job_shm;
    may = 1;

    ngx_http_learn_job_table_lock();

    for (i = 0; i < t->max; i++) {
        o = &t->jobs[i];

        if (o == e || o->id == 0 || o->kind != NGX_HTTP_LEARN_JOB_KIND_TRAIN
            || ngx_strcmp(o->model, e->model) != 0)
        {
            continue;
        }

        ngx_http_learn_job_table_check(o);

        if (o->state == NGX_HTTP_LEARN_JOB_RUNNING
            || (o->state == NGX_HTTP_LEARN_JOB_QUEUED && o->seq < e->seq))
        {
            may = 0;
            break;
        }
    }

    ngx_http_learn_job_table_unlock();

    return may;
}
