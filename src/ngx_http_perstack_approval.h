
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_APPROVAL_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_APPROVAL_H_INCLUDED_


#include "ngx_http_perstack_common.h"


ngx_int_t ngx_http_perstack_approve(ngx_http_request_t *r,
    ngx_http_perstack_loc_conf_t *plcf, ngx_int_t *rc);
ngx_int_t ngx_http_perstack_approval_request(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx);
char *ngx_http_perstack_approval_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_PERSTACK_APPROVAL_H_INCLUDED_ */
