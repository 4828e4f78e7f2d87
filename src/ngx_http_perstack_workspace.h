
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_WORKSPACE_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_WORKSPACE_H_INCLUDED_


#include "ngx_http_perstack_common.h"


ngx_int_t ngx_http_perstack_workspace_peek(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx);
ngx_int_t ngx_http_perstack_workspace_prepare(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx);
ngx_int_t ngx_http_perstack_workspace_record(ngx_http_perstack_exec_t *exec,
    ngx_event_handler_pt handler);
const char *ngx_http_perstack_workspace_record_error(
    ngx_http_perstack_exec_t *exec, ngx_err_t *err);
char *ngx_http_perstack_workspace_merge(ngx_conf_t *cf,
    ngx_http_perstack_loc_conf_t *prev, ngx_http_perstack_loc_conf_t *conf);


#endif /* _NGX_HTTP_PERSTACK_WORKSPACE_H_INCLUDED_ */
