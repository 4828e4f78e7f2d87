
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_GATEWAY_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_GATEWAY_H_INCLUDED_


#include "ngx_http_perstack_common.h"


typedef struct {
    ngx_uint_t                       live;
    ngx_uint_t                       issued;
    ngx_uint_t                       accepted;
    ngx_uint_t                       required;
    ngx_uint_t                       invalid;
} ngx_http_perstack_gateway_stats_t;


ngx_int_t ngx_http_perstack_gateway_add_variables(ngx_conf_t *cf);
char *ngx_http_perstack_gateway_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_perstack_gateway_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_perstack_gateway_merge(ngx_conf_t *cf,
    ngx_http_perstack_loc_conf_t *prev, ngx_http_perstack_loc_conf_t *conf);
ngx_int_t ngx_http_perstack_gateway_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_perstack_gateway_issue(ngx_http_request_t *r,
    ngx_http_perstack_exec_t *exec);
void ngx_http_perstack_gateway_revoke(ngx_http_perstack_exec_t *exec);
void ngx_http_perstack_gateway_stats(ngx_http_perstack_gateway_t *gw,
    ngx_http_perstack_gateway_stats_t *st);
void ngx_http_perstack_gateway_init_process(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_PERSTACK_GATEWAY_H_INCLUDED_ */
