
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_RESPONSE_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_RESPONSE_H_INCLUDED_


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_writer.h"


ngx_str_t *ngx_http_perstack_log_escape(ngx_pool_t *pool,
    ngx_str_t *value);
ngx_table_elt_t *ngx_http_perstack_header_in(ngx_http_request_t *r,
    char *name);
ngx_table_elt_t *ngx_http_perstack_add_header(ngx_http_request_t *r,
    char *key, char *value);
ngx_int_t ngx_http_perstack_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, ngx_str_t *message,
    const char *extra_name, ngx_str_t *extra_value);
ngx_int_t ngx_http_perstack_send_error_json(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, ngx_str_t *message,
    ngx_str_t *extra);
ngx_int_t ngx_http_perstack_send_json(ngx_http_request_t *r,
    ngx_uint_t status, ngx_http_perstack_jw_t *jw);
ngx_int_t ngx_http_perstack_stream_headers(ngx_http_request_t *r,
    ngx_uint_t format, ngx_str_t *execution);
void ngx_http_perstack_jw_pool(ngx_http_perstack_jw_t *jw, ngx_pool_t *pool,
    size_t hint);


#endif /* _NGX_HTTP_PERSTACK_RESPONSE_H_INCLUDED_ */
