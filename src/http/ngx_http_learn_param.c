
/*
 * NAME=VALUE parameters of the module's directives.
 */


#include "ngx_http_learn_param.h"


ngx_int_t
ngx_http_learn_param_msec(ngx_str_t *arg, const char *name, ngx_msec_t *msec)
{
    size_t      len;
    ngx_str_t   s;
    ngx_msec_t  t;

    len = ngx_strlen(name);

    if (arg->len < len || ngx_strncmp(arg->data, name, len) != 0) {
        return NGX_DECLINED;
    }

    s.data = arg->data + len;
    s.len = arg->len - len;

    t = ngx_parse_time(&s, 0);
    if (t == (ngx_msec_t) NGX_ERROR) {
        return NGX_ERROR;
    }

    *msec = t;

    return NGX_OK;
}
