
/*
 * A model's shared memory zone: parameters, optimizer state and counters,
 * created in the master before fork so every worker maps the same bytes,
 * and kept across "nginx -s reload" while the layout stays the same.
 */


#include <math.h>

#include "ngx_http_learn.h"


#define ngx_http_learn_zone_header_size                                       \
    ngx_align(sizeof(ngx_http_learn_shm_t), 64)


static ngx_int_t ngx_http_learn_zone_init(ngx_shm_zone_t *shm_zone,
    void *data);


/*
 * Layout after the header: [params A | optimizer state | params B].
 * Buffer "which" is A for 0 and B for 1.
 * lt_model_init_params() fills P floats and zeroes the S after them, so
 * A and the state are initialised in one call.
 */

float *
ngx_http_learn_zone_buffer(ngx_http_learn_shm_t *shm, ngx_uint_t which)
{
    float  *base;

    base = (float *) ((u_char *) shm + shm->data_off);

    return which ? base + shm->param_count + shm->state_count : base;
}


float *
ngx_http_learn_zone_state(ngx_http_learn_shm_t *shm)
{
    return (float *) ((u_char *) shm + shm->data_off) + shm->param_count;
}


static size_t
ngx_http_learn_zone_bytes(const lt_model *model)
{
    return ngx_http_learn_zone_header_size
           + (2 * model->param_count + model->state_count) * sizeof(float);
}


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
    size_t size)
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

    shm_zone->init = ngx_http_learn_zone_init;
    shm_zone->data = lm;

    lm->shm_zone = shm_zone;

    return NGX_OK;
}


static ngx_int_t
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

    if (lm->retire) {
        /* the old workers' zone: they must not write its checkpoint */
        lm->retire->retired = 1;
    }

    shm = ngx_slab_alloc(shpool, ngx_http_learn_zone_bytes(&lm->model));
    if (shm == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "learn_model \"%V\": zone is too small", &lm->name);
        return NGX_ERROR;
    }

    ngx_memzero(shm, sizeof(ngx_http_learn_shm_t));

    shm->hash = lm->model.hash;
    shm->param_count = lm->model.param_count;
    shm->state_count = lm->model.state_count;
    shm->data_off = ngx_http_learn_zone_header_size;

    if (ngx_shmtx_create(&shm->mutex, &shm->lock, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    a = ngx_http_learn_zone_buffer(shm, 0);
    lt_model_init_params(&lm->model, a, lm->seed);
    ngx_memcpy(ngx_http_learn_zone_buffer(shm, 1), a,
               shm->param_count * sizeof(float));

    shm->loss = NAN;
    shm->loss_avg = NAN;

    lm->shm = shm;

    /*
     * A model not restored from its checkpoint differs from the file (a
     * first start, or other layers after a reload): write it at the first
     * chance, or a restart would find a file that does not fit.
     */
    shm->ckpt_version = (ngx_atomic_uint_t) -1;

    if (lm->ckpt_params) {
        ngx_http_learn_checkpoint_restore(lm, shm_zone->shm.log);
    }

    ngx_memcpy(shm->versions, lm->kept, sizeof(lm->kept));

    shpool->data = shm;

    return NGX_OK;
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
 * One optimizer step from the published buffer into the next one, on the
 * model's GPU when it has one here and it is free (wait: a pool thread,
 * which may wait for it), else on the CPU with ws.
 */

ngx_int_t
ngx_http_learn_zone_step(ngx_http_learn_model_t *lm, lt_workspace *ws,
    const lt_tensor *x, const lt_tensor *y, float *loss, int64_t *step,
    ngx_uint_t wait, lt_err *err)
{
    float                 *next;
    ngx_http_learn_shm_t  *shm;

    shm = lm->shm;

    next = ngx_http_learn_zone_begin_write(shm);

    if (ngx_http_learn_device_step(lm, x, y, next, (int64_t) shm->step + 1,
                                   loss, wait)
        == NGX_DECLINED
        && lt_model_train_step(&lm->model, ws,
                               ngx_http_learn_zone_buffer(shm,
                                                          shm->version & 1),
                               next, ngx_http_learn_zone_state(shm),
                               (int64_t) shm->step + 1, x, y, loss, err)
           != 0)
    {
        return NGX_ERROR;
    }

    shm->loss = *loss;
    shm->loss_avg = (shm->loss_avg != shm->loss_avg)
                    ? *loss : 0.99f * shm->loss_avg + 0.01f * *loss;
    shm->step++;

    ngx_http_learn_zone_publish(shm);

    *step = (int64_t) shm->step;

    return NGX_OK;
}
