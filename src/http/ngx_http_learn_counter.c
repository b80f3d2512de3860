
/*
 * learn_counter $VAR KEY window=TIME [zone=NAME:SIZE]: how many requests
 * with this KEY (a complex value: "$binary_remote_addr", "$arg_user")
 * arrived in the last window, this one included, as a number that a
 * learn_set feature, a map or a log line can read.
 *
 * A request counts once, when $VAR is first read (the variable is
 * cacheable).  Each key keeps two fixed windows, the current and the
 * previous one, and the count is the current one plus the share of the
 * previous one that the sliding window still covers: two integers per
 * key instead of a timestamp per request, exact when arrivals are even
 * within a window.  Keys live in a red-black tree in a shared zone with
 * an LRU queue; a key unseen for two windows is worth nothing and goes
 * first when the zone needs room, then the least recently used ones.
 */


#include "ngx_http_learn.h"


#define NGX_HTTP_LEARN_COUNTER_MAX_KEY  256


typedef struct {
    ngx_str_node_t                 sn;        /* sn.node.key: crc32 */
    ngx_queue_t                    queue;     /* LRU, newest first */
    ngx_msec_t                     start;     /* of the current window */
    ngx_msec_t                     last;      /* last request */
    uint32_t                       current;
    uint32_t                       previous;
    u_char                         data[1];   /* the key */
} ngx_http_learn_counter_node_t;


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    lru;
    ngx_atomic_t                   full;      /* keys that found no room */
} ngx_http_learn_counter_sh_t;


typedef struct {
    ngx_str_t                      var;
    ngx_http_complex_value_t      *key;
    ngx_msec_t                     window;
    ngx_shm_zone_t                *shm_zone;
    ngx_slab_pool_t               *shpool;
    ngx_http_learn_counter_sh_t   *sh;
} ngx_http_learn_counter_t;


static ngx_int_t ngx_http_learn_counter_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_learn_counter_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_learn_counter_hit(ngx_http_learn_counter_t *lc,
    ngx_str_t *key, ngx_uint_t *count);
static ngx_http_learn_counter_node_t *ngx_http_learn_counter_alloc(
    ngx_http_learn_counter_t *lc, size_t size);
static void ngx_http_learn_counter_free(ngx_http_learn_counter_t *lc,
    ngx_http_learn_counter_node_t *node);


ngx_int_t
ngx_http_learn_counter_add(ngx_conf_t *cf, ngx_str_t *var,
    ngx_http_complex_value_t *key, ngx_msec_t window, ngx_str_t *zone,
    size_t size)
{
    ngx_http_variable_t       *v;
    ngx_http_learn_counter_t  *lc;

    lc = ngx_pcalloc(cf->pool, sizeof(ngx_http_learn_counter_t));
    if (lc == NULL) {
        return NGX_ERROR;
    }

    lc->var = *var;
    lc->key = key;
    lc->window = window;

    lc->shm_zone = ngx_shared_memory_add(cf, zone, size,
                                         &ngx_http_learn_module);
    if (lc->shm_zone == NULL) {
        return NGX_ERROR;
    }

    if (lc->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_counter $%V: zone \"%V\" is used by "
                           "another directive", var, zone);
        return NGX_ERROR;
    }

    lc->shm_zone->init = ngx_http_learn_counter_init_zone;
    lc->shm_zone->data = lc;

    v = ngx_http_add_variable(cf, var, 0);
    if (v == NULL) {
        return NGX_ERROR;
    }

    v->get_handler = ngx_http_learn_counter_variable;
    v->data = (uintptr_t) lc;

    return NGX_OK;
}


static ngx_int_t
ngx_http_learn_counter_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_learn_counter_t  *olc = data;

    size_t                     len;
    ngx_http_learn_counter_t  *lc;

    lc = shm_zone->data;
    lc->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (olc) {
        /* a reload keeps the counts (a zone is only reused unchanged) */
        lc->sh = olc->sh;
        return NGX_OK;
    }

    lc->sh = ngx_slab_alloc(lc->shpool, sizeof(ngx_http_learn_counter_sh_t));
    if (lc->sh == NULL) {
        return NGX_ERROR;
    }

    lc->shpool->data = lc->sh;

    ngx_rbtree_init(&lc->sh->rbtree, &lc->sh->sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&lc->sh->lru);
    lc->sh->full = 0;

    len = sizeof(" in learn_counter zone \"\"") + shm_zone->shm.name.len;

    lc->shpool->log_ctx = ngx_slab_alloc(lc->shpool, len);
    if (lc->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(lc->shpool->log_ctx, " in learn_counter zone \"%V\"%Z",
                &shm_zone->shm.name);

    lc->shpool->log_nomem = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_learn_counter_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_learn_counter_t *lc = (ngx_http_learn_counter_t *) data;

    u_char      *p;
    ngx_str_t    key;
    ngx_uint_t   count;

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->len = 0;
    v->data = (u_char *) "";

    if (ngx_http_complex_value(r, lc->key, &key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (key.len == 0 || key.len > NGX_HTTP_LEARN_COUNTER_MAX_KEY) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "learn_counter $%V: no usable key, %uz bytes",
                       &lc->var, key.len);
        return NGX_OK;
    }

    if (ngx_http_learn_counter_hit(lc, &key, &count) != NGX_OK) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%ui", count) - p;
    v->data = p;

    return NGX_OK;
}


/* counts one request of key; *count: the requests in the last window */

static ngx_int_t
ngx_http_learn_counter_hit(ngx_http_learn_counter_t *lc, ngx_str_t *key,
    ngx_uint_t *count)
{
    uint32_t                        hash;
    ngx_msec_t                      now, elapsed;
    ngx_http_learn_counter_node_t  *node;

    hash = ngx_crc32_short(key->data, key->len);
    now = ngx_current_msec;

    ngx_shmtx_lock(&lc->shpool->mutex);

    node = (ngx_http_learn_counter_node_t *)
           ngx_str_rbtree_lookup(&lc->sh->rbtree, key, hash);

    if (node == NULL) {
        node = ngx_http_learn_counter_alloc(lc,
                   offsetof(ngx_http_learn_counter_node_t, data) + key->len);

        if (node == NULL) {
            lc->sh->full++;
            ngx_shmtx_unlock(&lc->shpool->mutex);

            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "learn_counter zone \"%V\" is full, $%V is empty",
                          &lc->shm_zone->shm.name, &lc->var);
            return NGX_ERROR;
        }

        ngx_memcpy(node->data, key->data, key->len);
        node->sn.str.data = node->data;
        node->sn.str.len = key->len;
        node->sn.node.key = hash;
        node->start = now;
        node->current = 0;
        node->previous = 0;

        ngx_rbtree_insert(&lc->sh->rbtree, &node->sn.node);

    } else {
        ngx_queue_remove(&node->queue);
    }

    ngx_queue_insert_head(&lc->sh->lru, &node->queue);
    node->last = now;

    elapsed = now - node->start;

    if (elapsed >= lc->window) {
        /* the windows move on by whole windows */
        node->previous = (elapsed < 2 * lc->window) ? node->current : 0;
        node->current = 0;
        node->start += elapsed - elapsed % lc->window;
        elapsed %= lc->window;
    }

    if (node->current < 0xffffffff) {
        node->current++;
    }

    *count = node->current
             + (ngx_uint_t) ((uint64_t) node->previous
                             * (lc->window - elapsed) / lc->window);

    ngx_shmtx_unlock(&lc->shpool->mutex);

    return NGX_OK;
}


/* under the zone's mutex: room for a key, at the expense of old ones */

static ngx_http_learn_counter_node_t *
ngx_http_learn_counter_alloc(ngx_http_learn_counter_t *lc, size_t size)
{
    ngx_uint_t                      i;
    ngx_http_learn_counter_node_t  *node;

    /* keys unseen for two windows count nothing: two go every time */
    for (i = 0; i < 2 && !ngx_queue_empty(&lc->sh->lru); i++) {
        node = ngx_queue_data(ngx_queue_last(&lc->sh->lru),
                              ngx_http_learn_counter_node_t, queue);

        if (ngx_current_msec - node->last < 2 * lc->window) {
            break;
        }

        ngx_http_learn_counter_free(lc, node);
    }

    for (i = 0; /* void */; i++) {
        node = ngx_slab_alloc_locked(lc->shpool, size);

        if (node || i == 16 || ngx_queue_empty(&lc->sh->lru)) {
            return node;
        }

        /* full: the least recently used key makes room */
        ngx_http_learn_counter_free(lc,
            ngx_queue_data(ngx_queue_last(&lc->sh->lru),
                           ngx_http_learn_counter_node_t, queue));
    }
}


static void
ngx_http_learn_counter_free(ngx_http_learn_counter_t *lc,
    ngx_http_learn_counter_node_t *node)
{
    ngx_queue_remove(&node->queue);
    ngx_rbtree_delete(&lc->sh->rbtree, &node->sn.node);
    ngx_slab_free_locked(lc->shpool, node);
}
