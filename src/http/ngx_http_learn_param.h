
/*
 * NAME=VALUE parameters of the module's directives, parsed with nginx's
 * own parsers.
 */


#ifndef _NGX_HTTP_LEARN_PARAM_H_INCLUDED_
#define _NGX_HTTP_LEARN_PARAM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * arg is "NAME=TIME" (name given with its "="): NGX_OK with *msec set,
 * NGX_ERROR when TIME is not an nginx time, NGX_DECLINED for another
 * parameter
 */
ngx_int_t ngx_http_learn_param_msec(ngx_str_t *arg, const char *name,
    ngx_msec_t *msec);


#endif /* _NGX_HTTP_LEARN_PARAM_H_INCLUDED_ */
