
/*
 * ngx_http_learn_upstream_module: learn_balancer, an upstream balancer
 * that learns each peer's response time online and sends a request to
 * the peer with the lowest predicted time, and learn_sticky, which pins
 * a key to one peer.  This file holds the module, its directives, its
 * zone and its variables; the pick is ngx_http_learn_upstream_peer.c,
 * the model ngx_http_learn_upstream_learn.c, learn_status's part
 * ngx_http_learn_upstream_status.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_learn_upstream.h"


static ngx_int_t ngx_http_learn_upstream_init(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_learn_upstream_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_uint_t ngx_http_learn_upstream_changed(ngx_shm_zone_t *shm_zone);

static ngx_int_t ngx_http_learn_upstream_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_learn_upstream_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static size_t ngx_http_learn_upstream_ms(u_char *buf, size_t size,
    double v);
static void *ngx_http_learn_upstream_create_conf(ngx_conf_t *cf);
static char *ngx_http_learn_balancer(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_learn_sticky(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_learn_upstream_enable(ngx_conf_t *cf,
    ngx_http_learn_upstream_srv_conf_t *lucf);


static ngx_command_t  ngx_http_learn_upstream_commands[] = {

    { ngx_string("learn_balancer"),
      NGX_HTTP_UPS_CONF|NGX_CONF_ANY,
      ngx_http_learn_balancer,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("learn_sticky"),
      NGX_HTTP_UPS_CONF|NGX_CONF_1MORE,
      ngx_http_learn_sticky,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_learn_upstream_module_ctx = {
    ngx_http_learn_upstream_add_variables, /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_learn_upstream_create_conf,   /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_learn_upstream_module = {
    NGX_MODULE_V1,
    &ngx_http_learn_upstream_module_ctx,   /* module context */
    ngx_http_learn_upstream_commands,      /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_learn_upstream_vars[] = {

    { ngx_string("learn_upstream_predicted_ms"), NULL,
      ngx_http_learn_upstream_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("learn_upstream_pin"), NULL,
      ngx_http_learn_upstream_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("learn_upstream_explored"), NULL,
      ngx_http_learn_upstream_variable, 2,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_learn_upstream_pins[] = {
    ngx_string("none"),
    ngx_string("hit"),
    ngx_string("new"),
    ngx_string("moved"),
    ngx_string("busy")
};


static ngx_int_t
ngx_http_learn_upstream_init(ngx_conf_t *cf, ngx_http_upstream_srv_conf_t *us)
{
    size_t                               size;
    uint32_t                             crc;
    ngx_str_t                            name;
    ngx_shm_zone_t                      *shm_zone;
    ngx_http_upstream_rr_peer_t         *peer;
    ngx_http_upstream_rr_peers_t        *peers, *list;
    ngx_http_learn_upstream_srv_conf_t  *lucf;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, cf->log, 0, "init learn balancer");

    if (ngx_http_upstream_init_round_robin(cf, us) != NGX_OK) {
        return NGX_ERROR;
    }

    us->peer.init = ngx_http_learn_upstream_init_peer;

    lucf = ngx_http_conf_upstream_srv_conf(us, ngx_http_learn_upstream_module);

    lucf->uscf = us;

    if (lucf->explore < 0) {
        lucf->explore = 0.005f;
    }

    if (lucf->rate < 0) {
        lucf->rate = 0.1f;
    }

    if (lucf->fail_penalty == NGX_CONF_UNSET_MSEC) {
        lucf->fail_penalty = 1000;
    }

    if (lucf->probe == NGX_CONF_UNSET_MSEC) {
        lucf->probe = 10000;
    }

    /* our index space: primary peers first, then the backup ones */

    peers = us->peer.data;

    lucf->nprimary = peers->number;
    lucf->npeers = peers->number + (peers->next ? peers->next->number : 0);

    ngx_crc32_init(crc);

    for (list = peers; list; list = list->next) {
        for (peer = list->peer; peer; peer = peer->next) {
            ngx_crc32_update(&crc, peer->name.data, peer->name.len);
            ngx_crc32_update(&crc, (u_char *) "\n", 1);
        }
    }

    ngx_crc32_final(crc);

    lucf->layout = crc;

    size = offsetof(ngx_http_learn_upstream_sh_t, peer)
           + lucf->npeers * sizeof(ngx_http_learn_upstream_peer_sh_t);

    if (lucf->zone_size == 0) {
        lucf->zone_size = 8 * ngx_pagesize + ngx_align(size, ngx_pagesize);

    } else if (lucf->zone_size < 8 * ngx_pagesize + size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_balancer zone \"%V\" is too small for "
                           "%ui peers, it needs %uz bytes",
                           &lucf->zone_name, lucf->npeers,
                           8 * ngx_pagesize + size);
        return NGX_ERROR;
    }

    if (lucf->zone_name.len == 0) {

        /*
         * The peer layout is part of the name: a reload that changes the
         * peers gets a new zone, and the old workers finish their requests
         * on the old one, untouched.
         */

        name.len = sizeof("learn_balancer::01234567") - 1 + us->host.len;
        name.data = ngx_pnalloc(cf->pool, name.len);
        if (name.data == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(name.data, "learn_balancer:%V:%08xD", &us->host, crc);
        lucf->zone_name = name;

    } else {
        lucf->zone_named = 1;
    }

    shm_zone = ngx_shared_memory_add(cf, &lucf->zone_name, lucf->zone_size,
                                     &ngx_http_learn_upstream_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_balancer zone \"%V\" is already used",
                           &lucf->zone_name);
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_learn_upstream_init_zone;
    shm_zone->data = lucf;

    lucf->shm_zone = shm_zone;

    if (lucf->sticky) {
        return ngx_http_learn_sticky_init(cf, lucf);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_learn_upstream_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_learn_upstream_srv_conf_t  *olucf = data;

    size_t                               size, len;
    ngx_slab_pool_t                     *shpool;
    ngx_http_learn_upstream_sh_t        *sh;
    ngx_http_learn_upstream_srv_conf_t  *lucf;

    lucf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (olucf && olucf->sh) {

        /* reload: keep what was learned while the peers are the same */

        if (olucf->sh->layout == lucf->layout
            && olucf->sh->npeers == lucf->npeers)
        {
            lucf->sh = olucf->sh;
            return NGX_OK;
        }

        /*
         * Only a zone=NAME zone comes back with other peers (a default
         * name holds the layout).  The old workers keep writing into the
         * old model until they exit, so it is never freed: the new model
         * takes new memory in the zone.
         */

        ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                      "learn_balancer \"%V\": the peers changed, "
                      "learning afresh", &lucf->uscf->host);

    } else if (shm_zone->shm.exists) {
        lucf->sh = shpool->data;
        return NGX_OK;

    } else if (!lucf->zone_named && ngx_http_learn_upstream_changed(shm_zone))
    {
        ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                      "learn_balancer \"%V\": the peers changed, "
                      "learning afresh", &lucf->uscf->host);
    }

    size = offsetof(ngx_http_learn_upstream_sh_t, peer)
           + lucf->npeers * sizeof(ngx_http_learn_upstream_peer_sh_t);

    sh = ngx_slab_calloc(shpool, size);
    if (sh == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "learn_balancer zone \"%V\" has no room for the new "
                      "peers of upstream \"%V\" (the old workers may still "
                      "use the old ones): give the zone a larger size or "
                      "another name, or restart nginx",
                      &shm_zone->shm.name, &lucf->uscf->host);
        return NGX_ERROR;
    }

    sh->layout = lucf->layout;
    sh->npeers = lucf->npeers;

    ngx_http_learn_upstream_model_init(sh);

    shpool->data = sh;
    lucf->sh = sh;

    if (shpool->log_ctx != &shpool->zero) {
        return NGX_OK;
    }

    len = sizeof(" in learn_balancer zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in learn_balancer zone \"%V\"%Z",
                &shm_zone->shm.name);

    return NGX_OK;
}


/*
 * A fresh default zone: did the running configuration (ngx_cycle, the old
 * cycle while a reload initializes zones) have this upstream with other
 * peers?  Only for the log line.
 */

static ngx_uint_t
ngx_http_learn_upstream_changed(ngx_shm_zone_t *shm_zone)
{
    size_t            len;
    ngx_str_t        *name;
    ngx_uint_t        i;
    ngx_shm_zone_t   *zone;
    ngx_list_part_t  *part;

    name = &shm_zone->shm.name;
    len = name->len - 8;              /* without the layout hash */

    part = (ngx_list_part_t *) &ngx_cycle->shared_memory.part;
    zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            zone = part->elts;
            i = 0;
        }

        if (zone[i].tag == shm_zone->tag
            && zone[i].shm.name.len == name->len
            && ngx_strncmp(zone[i].shm.name.data, name->data, len) == 0
            && ngx_strncmp(zone[i].shm.name.data, name->data, name->len) != 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_learn_upstream_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_learn_upstream_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_learn_upstream_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                               *p;
    ngx_str_t                            *s;
    ngx_http_learn_upstream_peer_data_t  *lp;

    lp = ngx_http_get_module_ctx(r, ngx_http_learn_upstream_module);

    if (lp == NULL || lp->picks == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (data == 0) {
        p = ngx_pnalloc(r->pool, NGX_HTTP_LEARN_UPSTREAM_MS_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_http_learn_upstream_ms(p, NGX_HTTP_LEARN_UPSTREAM_MS_LEN,
                                            lp->predicted);
        v->data = p;

    } else if (data == 1) {
        s = &ngx_http_learn_upstream_pins[lp->pin];
        v->len = s->len;
        v->data = s->data;

    } else {
        v->len = 1;
        v->data = (u_char *) (lp->explored ? "1" : "0");
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * "12.345" for $learn_upstream_predicted_ms: at most size bytes; NaN is
 * "-", and the value is clamped to 0 .. 1e9 ms
 */

static size_t
ngx_http_learn_upstream_ms(u_char *buf, size_t size, double v)
{
    int  n;

    if (v != v) {
        buf[0] = '-';
        return 1;
    }

    v = ngx_max(ngx_min(v, 1e9), 0.0);

    n = snprintf((char *) buf, size, "%.3f", v);

    return (n > 0 && (size_t) n < size) ? (size_t) n : 0;
}


static void *
ngx_http_learn_upstream_create_conf(ngx_conf_t *cf)
{
    ngx_http_learn_upstream_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_learn_upstream_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->enabled = 0;
     *     conf->zone_name = { 0, NULL };
     *     conf->zone_size = 0;
     *     conf->sticky = NULL;
     */

    conf->explore = -1;
    conf->rate = -1;
    conf->fail_penalty = NGX_CONF_UNSET_MSEC;
    conf->probe = NGX_CONF_UNSET_MSEC;

    return conf;
}


/*
 * learn_balancer [explore=RATE] [rate=STEP] [fail_penalty=TIME]
 *                [probe=TIME] [zone=NAME[:SIZE]];
 */

static char *
ngx_http_learn_balancer(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_upstream_srv_conf_t  *lucf = conf;

    u_char      *colon;
    ngx_int_t    n, rc;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (lucf->explore >= 0) {
        return "is duplicate";
    }

    value = cf->args->elts;

    lucf->explore = 0.005f;
    lucf->rate = 0.1f;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "explore=", 8) == 0) {
            n = ngx_atofp(value[i].data + 8, value[i].len - 8, 4);
            if (n == NGX_ERROR || n > 10000) {
                goto invalid;
            }

            lucf->explore = (float) n / 10000.0f;
            continue;
        }

        if (ngx_strncmp(value[i].data, "rate=", 5) == 0) {
            n = ngx_atofp(value[i].data + 5, value[i].len - 5, 4);
            if (n == NGX_ERROR || n == 0 || n > 10000) {
                goto invalid;
            }

            lucf->rate = (float) n / 10000.0f;
            continue;
        }

        rc = ngx_http_learn_param_msec(&value[i], "fail_penalty=",
                                       &lucf->fail_penalty);
        if (rc == NGX_DECLINED) {
            rc = ngx_http_learn_param_msec(&value[i], "probe=", &lucf->probe);
        }

        if (rc == NGX_OK) {
            continue;
        }

        if (rc == NGX_ERROR) {
            goto invalid;
        }

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            colon = ngx_strlchr(s.data, s.data + s.len, ':');

            if (colon) {
                lucf->zone_name.data = s.data;
                lucf->zone_name.len = colon - s.data;

                s.data = colon + 1;
                s.len = value[i].data + value[i].len - s.data;

                n = ngx_parse_size(&s);
                if (n == NGX_ERROR || n == 0) {
                    goto invalid;
                }

                lucf->zone_size = n;

            } else {
                lucf->zone_name = s;
            }

            if (lucf->zone_name.len == 0) {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    return ngx_http_learn_upstream_enable(cf, lucf);

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * learn_sticky header=NAME|cookie=NAME|arg=NAME [timeout=TIME]
 *              [zone=NAME:SIZE];  the balancer comes with it
 */

static char *
ngx_http_learn_sticky(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_upstream_srv_conf_t  *lucf = conf;

    char  *rv;

    if (lucf->sticky) {
        return "is duplicate";
    }

    rv = ngx_http_learn_sticky_parse(cf, lucf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    return ngx_http_learn_upstream_enable(cf, lucf);
}


static char *
ngx_http_learn_upstream_enable(ngx_conf_t *cf,
    ngx_http_learn_upstream_srv_conf_t *lucf)
{
    ngx_http_upstream_srv_conf_t  *uscf;

    if (lucf->enabled) {
        return NGX_CONF_OK;
    }

    uscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module);

    if (uscf->peer.init_upstream) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "load balancing method redefined");
    }

    uscf->peer.init_upstream = ngx_http_learn_upstream_init;

    uscf->flags = NGX_HTTP_UPSTREAM_CREATE
                  |NGX_HTTP_UPSTREAM_WEIGHT
                  |NGX_HTTP_UPSTREAM_MAX_CONNS
                  |NGX_HTTP_UPSTREAM_MAX_FAILS
                  |NGX_HTTP_UPSTREAM_FAIL_TIMEOUT
                  |NGX_HTTP_UPSTREAM_DOWN
                  |NGX_HTTP_UPSTREAM_BACKUP;

    lucf->enabled = 1;

    return NGX_CONF_OK;
}
