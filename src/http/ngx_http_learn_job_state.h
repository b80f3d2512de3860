
/*
 * A model's job records in a file beside its checkpoint, so that they
 * outlive a restart (ngx_http_learn_job_state.c).
 */


#ifndef _NGX_HTTP_LEARN_JOB_STATE_H_INCLUDED_
#define _NGX_HTTP_LEARN_JOB_STATE_H_INCLUDED_


#include "ngx_http_learn.h"
#include "ngx_http_learn_job_record.h"


/* ngx_http_learn_job_state.c */
void ngx_http_learn_job_state_save(ngx_http_learn_job_shm_t *t,
    const u_char *model, ngx_log_t *log);
void ngx_http_learn_job_state_load(ngx_http_learn_job_shm_t *t,
    ngx_http_learn_main_conf_t *lmcf, ngx_log_t *log);


#endif /* _NGX_HTTP_LEARN_JOB_STATE_H_INCLUDED_ */
