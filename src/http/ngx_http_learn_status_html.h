
/*
 * learn_status as a page (Accept: text/html or ?format=html): every
 * model's loss history, counters, rates and latencies, and every
 * learn_balancer upstream's predicted and observed latency per peer.
 */


#ifndef _NGX_HTTP_LEARN_STATUS_HTML_H_INCLUDED_
#define _NGX_HTTP_LEARN_STATUS_HTML_H_INCLUDED_


#include "ngx_http_learn.h"
#include "ngx_http_learn_html.h"


/* every learn_status request: the counters for rates, at most 1/s */
void ngx_http_learn_status_samples_take(ngx_http_learn_main_conf_t *lmcf);

ngx_int_t ngx_http_learn_status_html(ngx_http_request_t *r);


#endif /* _NGX_HTTP_LEARN_STATUS_HTML_H_INCLUDED_ */
