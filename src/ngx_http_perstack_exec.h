
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_EXEC_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_EXEC_H_INCLUDED_


#include "ngx_http_perstack_common.h"


ngx_int_t ngx_http_perstack_exec_start(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx);
ngx_uint_t ngx_http_perstack_exec_running(u_char *id);
void ngx_http_perstack_exec_abort_all(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_PERSTACK_EXEC_H_INCLUDED_ */
