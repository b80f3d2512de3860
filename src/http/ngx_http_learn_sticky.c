
/*
 * learn_sticky: a bounded key -> peer table in a shared zone, so that the
 * requests of one key (a model id) keep reaching the peer that holds its
 * state.  The first request of a key is placed by the learned balancer;
 * the pin moves when its peer is down, failing, or failed this request.
 *
 * The table is a red-black tree of (crc32, key) with an LRU queue: a pin
 * unused for "timeout" expires, and when the zone is full the least
 * recently used pins go first.
 *
 * A pin names its peer by position, so each pin also carries the peer
 * layout it was made under: after a reload that changed the peers of an
 * upstream whose table is named with zone=NAME (a default name holds the
 * layout, so that table is new), the old workers' pins and the new
 * workers' pins do not mix.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_learn_upstream.h"


#define NGX_HTTP_LEARN_STICKY_MAX_KEY  512


typedef struct {
    ngx_str_node_t                 sn;        /* sn.node.key: crc32 */
    ngx_queue_t                    queue;     /* LRU, newest first */
    ngx_msec_t                     last;      /* last use */
    ngx_uint_t                     peer;      /* zone index of the peer */
    uint32_t                       layout;    /* the peers it indexes */
    u_char                         data[1];   /* the key */
} ngx_http_learn_sticky_node_t;


static ngx_int_t ngx_http_learn_sticky_source(ngx_conf_t *cf,
    ngx_http_learn_sticky_conf_t *scf, ngx_str_t *param);
static ngx_int_t ngx_http_learn_sticky_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_learn_sticky_flush(ngx_http_learn_sticky_conf_t *scf);
static void ngx_http_learn_sticky_delete(ngx_http_learn_sticky_conf_t *scf,
    ngx_http_learn_upstream_sh_t *ush, ngx_http_learn_sticky_node_t *node);
static ngx_uint_t ngx_http_learn_sticky_expire(
    ngx_http_learn_sticky_conf_t *scf, ngx_http_learn_upstream_sh_t *ush,
    ngx_uint_t n, ngx_uint_t force);


/*
 * header=NAME, cookie=NAME and arg=NAME are nginx's own $http_name,
 * $cookie_NAME and $arg_NAME, so they read requests as nginx does in
 * every version; key= takes any complex value ("$arg_user:$cookie_m").
 */

static ngx_int_t
ngx_http_learn_sticky_source(ngx_conf_t *cf,
    ngx_http_learn_sticky_conf_t *scf, ngx_str_t *param)
{
    u_char                            *p, *eq, c;
    size_t                             skip;
    ngx_str_t                          name, src;
    ngx_uint_t                         i;
    ngx_http_compile_complex_value_t   ccv;

    eq = ngx_strlchr(param->data, param->data + param->len, '=');
    skip = eq - param->data + 1;

    name.data = eq + 1;
    name.len = param->len - skip;

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_sticky: \"%V\" names nothing", param);
        return NGX_ERROR;
    }

    if (param->data[0] == 'k') {
        src = name;

    } else {
        /* "${http_x_model_id}" and the like: braces keep any name whole */
        src.len = sizeof("${cookie_}") - 1 + name.len;
        src.data = ngx_pnalloc(cf->pool, src.len);
        if (src.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(src.data, "${", 2);

        switch (param->data[0]) {

        case 'h':
            p = ngx_cpymem(p, "http_", 5);

            for (i = 0; i < name.len; i++) {
                c = ngx_tolower(name.data[i]);
                *p++ = (c == '-') ? '_' : c;
            }

            break;

        case 'c':
            p = ngx_cpymem(p, "cookie_", 7);
            p = ngx_cpymem(p, name.data, name.len);
            break;

        default: /* 'a' */
            p = ngx_cpymem(p, "arg_", 4);
            p = ngx_cpymem(p, name.data, name.len);
        }

        *p++ = '}';
        src.len = p - src.data;

        for (i = 0; i < name.len; i++) {
            if (name.data[i] == '}' || name.data[i] == '$') {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "learn_sticky: invalid name in \"%V\"",
                                   param);
                return NGX_ERROR;
            }
        }
    }

    scf->key = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (scf->key == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &src;
    ccv.complex_value = scf->key;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


char *
ngx_http_learn_sticky_parse(ngx_conf_t *cf,
    ngx_http_learn_upstream_srv_conf_t *lucf)
{
    u_char                        *colon;
    ssize_t                        size;
    ngx_int_t                      rc;
    ngx_str_t                     *value, s;
    ngx_uint_t                     i;
    ngx_http_learn_sticky_conf_t  *scf;

    scf = ngx_pcalloc(cf->pool, sizeof(ngx_http_learn_sticky_conf_t));
    if (scf == NULL) {
        return NGX_CONF_ERROR;
    }

    scf->timeout = NGX_CONF_UNSET_MSEC;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "header=", 7) == 0
            || ngx_strncmp(value[i].data, "cookie=", 7) == 0
            || ngx_strncmp(value[i].data, "arg=", 4) == 0
            || ngx_strncmp(value[i].data, "key=", 4) == 0)
        {
            if (scf->key) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "learn_sticky takes one of header=, "
                                   "cookie=, arg= and key=");
                return NGX_CONF_ERROR;
            }

            if (ngx_http_learn_sticky_source(cf, scf, &value[i]) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        } else if ((rc = ngx_http_learn_param_msec(&value[i], "timeout=",
                                                   &scf->timeout))
                   != NGX_DECLINED)
        {
            if (rc == NGX_ERROR || scf->timeout == 0) {
                goto invalid;
            }

            continue;

        } else if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            colon = ngx_strlchr(s.data, s.data + s.len, ':');
            if (colon == NULL || colon == s.data) {
                goto invalid;
            }

            scf->zone_name.data = s.data;
            scf->zone_name.len = colon - s.data;

            s.data = colon + 1;
            s.len = value[i].data + value[i].len - s.data;

            size = ngx_parse_size(&s);
            if (size == NGX_ERROR) {
                goto invalid;
            }

            if (size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "learn_sticky zone \"%V\" is too small",
                                   &scf->zone_name);
                return NGX_CONF_ERROR;
            }

            scf->zone_size = size;
            continue;

        } else {
            goto invalid;
        }
    }

    if (scf->key == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_sticky needs header=NAME, cookie=NAME, "
                           "arg=NAME or key=EXPRESSION");
        return NGX_CONF_ERROR;
    }

    if (scf->timeout == NGX_CONF_UNSET_MSEC) {
        scf->timeout = 3600 * 1000;
    }

    if (scf->zone_size == 0) {
        scf->zone_size = 1024 * 1024;
    }

    lucf->sticky = scf;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/* from the balancer's init_upstream, once the peers are known */

ngx_int_t
ngx_http_learn_sticky_init(ngx_conf_t *cf,
    ngx_http_learn_upstream_srv_conf_t *lucf)
{
    ngx_str_t                      name;
    ngx_shm_zone_t                *shm_zone;
    ngx_http_learn_sticky_conf_t  *scf;

    scf = lucf->sticky;
    scf->layout = lucf->layout;

    if (scf->zone_name.len == 0) {

        /* as the balancer's zone: the layout in the name */

        name.len = sizeof("learn_sticky::01234567") - 1 + lucf->uscf->host.len;
        name.data = ngx_pnalloc(cf->pool, name.len);
        if (name.data == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(name.data, "learn_sticky:%V:%08xD", &lucf->uscf->host,
                    lucf->layout);
        scf->zone_name = name;
    }

    shm_zone = ngx_shared_memory_add(cf, &scf->zone_name, scf->zone_size,
                                     &ngx_http_learn_upstream_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_sticky zone \"%V\" is already used",
                           &scf->zone_name);
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_learn_sticky_init_zone;
    shm_zone->data = scf;

    scf->shm_zone = shm_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_learn_sticky_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_learn_sticky_conf_t  *oscf = data;

    size_t                         len;
    ngx_http_learn_sticky_conf_t  *scf;

    scf = shm_zone->data;
    scf->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (oscf && oscf->sh) {
        scf->sh = oscf->sh;

        if (scf->sh->layout != scf->layout) {

            /* the pins name peers by position: those positions changed */

            ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                          "learn_sticky zone \"%V\": the peers changed, "
                          "dropping the pins", &shm_zone->shm.name);

            ngx_shmtx_lock(&scf->shpool->mutex);
            ngx_http_learn_sticky_flush(scf);
            scf->sh->layout = scf->layout;
            ngx_shmtx_unlock(&scf->shpool->mutex);
        }

        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        scf->sh = scf->shpool->data;
        return NGX_OK;
    }

    scf->sh = ngx_slab_calloc(scf->shpool, sizeof(ngx_http_learn_sticky_sh_t));
    if (scf->sh == NULL) {
        return NGX_ERROR;
    }

    scf->shpool->data = scf->sh;

    ngx_rbtree_init(&scf->sh->rbtree, &scf->sh->sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&scf->sh->lru);
    scf->sh->layout = scf->layout;

    len = sizeof(" in learn_sticky zone \"\"") + shm_zone->shm.name.len;

    scf->shpool->log_ctx = ngx_slab_alloc(scf->shpool, len);
    if (scf->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(scf->shpool->log_ctx, " in learn_sticky zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full table evicts the oldest pins: not worth a log line each */
    scf->shpool->log_nomem = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_learn_sticky_key(ngx_http_request_t *r,
    ngx_http_learn_sticky_conf_t *scf, ngx_str_t *key)
{
    if (ngx_http_complex_value(r, scf->key, key) != NGX_OK) {
        key->len = 0;
    }

    if (key->len == 0 || key->len > NGX_HTTP_LEARN_STICKY_MAX_KEY) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "learn_sticky: no usable key, %uz bytes", key->len);
        key->len = 0;
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* the peer a key is pinned to: NGX_OK, or NGX_DECLINED for none */

ngx_int_t
ngx_http_learn_sticky_lookup(ngx_http_learn_sticky_conf_t *scf,
    ngx_http_learn_upstream_sh_t *ush, ngx_str_t *key, uint32_t hash,
    ngx_uint_t *peer)
{
    ngx_int_t                      rc;
    ngx_str_node_t                *sn;
    ngx_http_learn_sticky_node_t  *node;

    rc = NGX_DECLINED;

    ngx_shmtx_lock(&scf->shpool->mutex);

    sn = ngx_str_rbtree_lookup(&scf->sh->rbtree, key, hash);

    if (sn) {
        node = (ngx_http_learn_sticky_node_t *) sn;

        if ((ngx_msec_int_t) (ngx_current_msec - node->last)
            > (ngx_msec_int_t) scf->timeout)
        {
            ngx_http_learn_sticky_delete(scf, ush, node);

        } else if (node->layout != scf->layout) {
            /* pinned under other peers (old or new workers): not ours */

        } else {
            node->last = ngx_current_msec;

            ngx_queue_remove(&node->queue);
            ngx_queue_insert_head(&scf->sh->lru, &node->queue);

            *peer = node->peer;
            scf->sh->hits++;
            rc = NGX_OK;
        }
    }

    ngx_shmtx_unlock(&scf->shpool->mutex);

    return rc;
}


/*
 * Pins key to peer if it is still pinned where the caller saw it
 * ("expect", NGX_ERROR for not pinned): when two workers place or move
 * the same key at once, the first one wins, and the other gets
 * NGX_DECLINED with the winner's peer in *current.  NGX_ERROR: the table
 * is full even after evicting, the key is not pinned.
 */

ngx_int_t
ngx_http_learn_sticky_pin(ngx_http_learn_sticky_conf_t *scf,
    ngx_http_learn_upstream_sh_t *ush, ngx_str_t *key, uint32_t hash,
    ngx_int_t expect, ngx_uint_t peer, ngx_uint_t *current)
{
    size_t                         size;
    ngx_uint_t                     tries;
    ngx_str_node_t                *sn;
    ngx_http_learn_sticky_node_t  *node;

    ngx_shmtx_lock(&scf->shpool->mutex);

    sn = ngx_str_rbtree_lookup(&scf->sh->rbtree, key, hash);

    if (sn) {
        node = (ngx_http_learn_sticky_node_t *) sn;

        if (node->layout != scf->layout) {

            /* a pin made under other peers: this layout places it anew */

            node->layout = scf->layout;

        } else if ((ngx_int_t) node->peer != expect) {
            *current = node->peer;
            ngx_shmtx_unlock(&scf->shpool->mutex);
            return NGX_DECLINED;

        } else {
            (void) ngx_atomic_fetch_add(&ush->peer[node->peer].pins, -1);
            (void) ngx_atomic_fetch_add(&ush->moves, 1);
        }

        (void) ngx_atomic_fetch_add(&ush->peer[peer].pins, 1);

        node->peer = peer;
        node->last = ngx_current_msec;

        ngx_queue_remove(&node->queue);
        ngx_queue_insert_head(&scf->sh->lru, &node->queue);

        ngx_shmtx_unlock(&scf->shpool->mutex);

        return NGX_OK;
    }

    (void) ngx_http_learn_sticky_expire(scf, ush, 2, 0);

    size = offsetof(ngx_http_learn_sticky_node_t, data) + key->len;

    for (tries = 0; /* void */; tries++) {
        node = ngx_slab_alloc_locked(scf->shpool, size);

        if (node || tries == 4) {
            break;
        }

        /* full: the least recently used pins make room */

        if (ngx_http_learn_sticky_expire(scf, ush, 8, 1) == 0) {
            break;
        }
    }

    if (node == NULL) {
        ngx_shmtx_unlock(&scf->shpool->mutex);

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "learn_sticky zone \"%V\" is full, key not pinned",
                      &scf->shm_zone->shm.name);
        return NGX_ERROR;
    }

    ngx_memcpy(node->data, key->data, key->len);

    node->sn.node.key = hash;
    node->sn.str.len = key->len;
    node->sn.str.data = node->data;
    node->last = ngx_current_msec;
    node->peer = peer;
    node->layout = scf->layout;

    ngx_rbtree_insert(&scf->sh->rbtree, &node->sn.node);
    ngx_queue_insert_head(&scf->sh->lru, &node->queue);

    scf->sh->keys++;
    (void) ngx_atomic_fetch_add(&ush->peer[peer].pins, 1);

    ngx_shmtx_unlock(&scf->shpool->mutex);

    return NGX_OK;
}


/* drops up to n of the oldest pins: expired ones, or any when forced */

static ngx_uint_t
ngx_http_learn_sticky_expire(ngx_http_learn_sticky_conf_t *scf,
    ngx_http_learn_upstream_sh_t *ush, ngx_uint_t n, ngx_uint_t force)
{
    ngx_uint_t                     dropped;
    ngx_queue_t                   *q;
    ngx_http_learn_sticky_node_t  *node;

    for (dropped = 0; dropped < n; dropped++) {

        if (ngx_queue_empty(&scf->sh->lru)) {
            break;
        }

        q = ngx_queue_last(&scf->sh->lru);
        node = ngx_queue_data(q, ngx_http_learn_sticky_node_t, queue);

        if (!force
            && (ngx_msec_int_t) (ngx_current_msec - node->last)
               <= (ngx_msec_int_t) scf->timeout)
        {
            break;
        }

        if (force) {
            scf->sh->evicted++;
        }

        ngx_http_learn_sticky_delete(scf, ush, node);
    }

    return dropped;
}


static void
ngx_http_learn_sticky_delete(ngx_http_learn_sticky_conf_t *scf,
    ngx_http_learn_upstream_sh_t *ush, ngx_http_learn_sticky_node_t *node)
{
    if (ush && node->layout == ush->layout && node->peer < ush->npeers) {
        (void) ngx_atomic_fetch_add(&ush->peer[node->peer].pins, -1);
    }

    ngx_queue_remove(&node->queue);
    ngx_rbtree_delete(&scf->sh->rbtree, &node->sn.node);
    ngx_slab_free_locked(scf->shpool, node);

    scf->sh->keys--;
}


static void
ngx_http_learn_sticky_flush(ngx_http_learn_sticky_conf_t *scf)
{
    ngx_queue_t                   *q;
    ngx_http_learn_sticky_node_t  *node;

    while (!ngx_queue_empty(&scf->sh->lru)) {
        q = ngx_queue_head(&scf->sh->lru);
        node = ngx_queue_data(q, ngx_http_learn_sticky_node_t, queue);

        ngx_http_learn_sticky_delete(scf, NULL, node);
    }
}


u_char *
ngx_http_learn_sticky_status(ngx_http_learn_sticky_conf_t *scf, u_char *p)
{
    if (scf->sh == NULL) {
        return p;
    }

    return ngx_sprintf(p, ", \"sticky\": {\"keys\": %uA, \"hits\": %uA, "
                       "\"evicted\": %uA, \"timeout_ms\": %M}",
                       scf->sh->keys, scf->sh->hits, scf->sh->evicted,
                       scf->timeout);
}
