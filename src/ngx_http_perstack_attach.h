
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_ATTACH_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_ATTACH_H_INCLUDED_


#include "ngx_http_perstack_common.h"


ngx_int_t ngx_http_perstack_attach_target(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx);
void ngx_http_perstack_attach(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx);


#endif /* _NGX_HTTP_PERSTACK_ATTACH_H_INCLUDED_ */
