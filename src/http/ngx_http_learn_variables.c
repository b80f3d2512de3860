
/*
 * Variables of any learn location, for access logs and headers:
 * $learn_model, $learn_version ("live" or the kept version's step that
 * answered), $learn_step (the step of the parameters that answered a
 * predict, or that a train applied), $learn_loss (train and feedback)
 * and $learn_compute_us (from the checked body to the answer).  Until the
 * request is answered (or where no learn handler ran) they are empty.
 * Not cacheable: an early reader would otherwise fix them empty.
 */


#include "ngx_http_learn.h"


typedef enum {
    NGX_HTTP_LEARN_VAR_MODEL = 0,
    NGX_HTTP_LEARN_VAR_VERSION,
    NGX_HTTP_LEARN_VAR_STEP,
    NGX_HTTP_LEARN_VAR_LOSS,
    NGX_HTTP_LEARN_VAR_COMPUTE_US
} ngx_http_learn_var_e;


static ngx_int_t ngx_http_learn_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_learn_vars[] = {

    { ngx_string("learn_model"), NULL, ngx_http_learn_variable,
      NGX_HTTP_LEARN_VAR_MODEL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("learn_version"), NULL, ngx_http_learn_variable,
      NGX_HTTP_LEARN_VAR_VERSION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("learn_step"), NULL, ngx_http_learn_variable,
      NGX_HTTP_LEARN_VAR_STEP, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("learn_loss"), NULL, ngx_http_learn_variable,
      NGX_HTTP_LEARN_VAR_LOSS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("learn_compute_us"), NULL, ngx_http_learn_variable,
      NGX_HTTP_LEARN_VAR_COMPUTE_US, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_learn_variables_add(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_learn_vars; v->name.len; v++) {
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
ngx_http_learn_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    int                         n;
    char                        buf[32];
    u_char                     *p;
    ngx_http_learn_ctx_t       *ctx;
    ngx_http_learn_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_learn_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_learn_module);

    if (lcf->model == NULL
        || (data != NGX_HTTP_LEARN_VAR_MODEL && (ctx == NULL || !ctx->done)))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    switch (data) {

    case NGX_HTTP_LEARN_VAR_MODEL:
        v->len = lcf->model->name.len;
        v->data = lcf->model->name.data;
        return NGX_OK;

    case NGX_HTTP_LEARN_VAR_VERSION:
        if (ctx->vstep == 0) {
            v->len = sizeof("live") - 1;
            v->data = (u_char *) "live";
            return NGX_OK;
        }

        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_sprintf(p, "%L", ctx->vstep) - p;
        v->data = p;
        return NGX_OK;

    case NGX_HTTP_LEARN_VAR_STEP:
        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_sprintf(p, "%L", ctx->step) - p;
        v->data = p;
        return NGX_OK;

    case NGX_HTTP_LEARN_VAR_LOSS:
        if (lcf->role != NGX_HTTP_LEARN_TRAIN
            && lcf->role != NGX_HTTP_LEARN_FEEDBACK)
        {
            v->not_found = 1;
            return NGX_OK;
        }

        n = lt_json_float(buf, sizeof(buf), ctx->loss);

        p = ngx_pnalloc(r->pool, n);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_cpymem(p, buf, n) - p;
        v->data = p;
        return NGX_OK;

    default: /* NGX_HTTP_LEARN_VAR_COMPUTE_US */
        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_sprintf(p, "%uL", ctx->compute_us) - p;
        v->data = p;
        return NGX_OK;
    }
}
