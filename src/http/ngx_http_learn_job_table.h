
/*
 * The dataset jobs' shared table (ngx_http_learn_job_table.c) and the
 * file that keeps a model's records over a restart
 * (ngx_http_learn_job_state.c).
 */


#ifndef _NGX_HTTP_LEARN_JOB_TABLE_H_INCLUDED_
#define _NGX_HTTP_LEARN_JOB_TABLE_H_INCLUDED_


#include "ngx_http_learn.h"
#include "ngx_http_learn_job_record.h"


/* ngx_http_learn_job_table.c */
extern ngx_str_t  ngx_http_learn_job_states[];

void ngx_http_learn_job_table_changed(ngx_http_learn_job_entry_t *e);

ngx_int_t ngx_http_learn_job_table_add(ngx_conf_t *cf, ngx_uint_t max);
ngx_http_learn_job_shm_t *ngx_http_learn_job_table(void);
ngx_http_learn_job_entry_t *ngx_http_learn_job_table_new(ngx_uint_t kind,
    ngx_str_t *model, ngx_uint_t *full);
ngx_http_learn_job_entry_t *ngx_http_learn_job_table_find(uint64_t id);
ngx_int_t ngx_http_learn_job_table_set(ngx_http_learn_job_entry_t *e,
    uint64_t id, ngx_uint_t from, ngx_uint_t to);
ngx_uint_t ngx_http_learn_job_table_may_start(ngx_http_learn_job_entry_t *e);
void ngx_http_learn_job_table_check(ngx_http_learn_job_entry_t *e);
void ngx_http_learn_job_table_lock(void);
void ngx_http_learn_job_table_unlock(void);


#endif /* _NGX_HTTP_LEARN_JOB_TABLE_H_INCLUDED_ */
