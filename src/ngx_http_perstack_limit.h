
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_LIMIT_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_LIMIT_H_INCLUDED_


#include "ngx_http_perstack_common.h"


char *ngx_http_perstack_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_perstack_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_perstack_limit_acquire(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx);
void ngx_http_perstack_limit_release(ngx_http_perstack_slot_t *slot);
ngx_int_t ngx_http_perstack_limit_stats(ngx_shm_zone_t *shm_zone,
    ngx_str_t *name, ngx_uint_t *used, ngx_uint_t *waiting);
void ngx_http_perstack_limit_init_process(ngx_cycle_t *cycle);
void ngx_http_perstack_limit_exit_process(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_PERSTACK_LIMIT_H_INCLUDED_ */
