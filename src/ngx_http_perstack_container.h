
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_CONTAINER_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_CONTAINER_H_INCLUDED_


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_curl.h"


ngx_http_perstack_op_t *ngx_http_perstack_call(
    ngx_http_perstack_exec_t *exec, const char *name,
    ngx_http_perstack_op_handler_pt handler);
void ngx_http_perstack_fail_internal(ngx_http_perstack_exec_t *exec);
void ngx_http_perstack_fail_op(ngx_http_perstack_op_t *op, const char *what);
ngx_int_t ngx_http_perstack_begin(ngx_http_perstack_exec_t *exec);
void ngx_http_perstack_start(ngx_event_t *ev);
void ngx_http_perstack_stop(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_outcome_e outcome);
void ngx_http_perstack_wait(ngx_http_perstack_exec_t *exec);
void ngx_http_perstack_remove(ngx_http_perstack_exec_t *exec);
void ngx_http_perstack_fail(ngx_http_perstack_exec_t *exec, ngx_uint_t status,
    const char *code, ngx_str_t *message);


#endif /* _NGX_HTTP_PERSTACK_CONTAINER_H_INCLUDED_ */
