
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_OUTPUT_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_OUTPUT_H_INCLUDED_


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_writer.h"


ngx_int_t ngx_http_perstack_held_drop(ngx_http_perstack_exec_t *exec,
    size_t len);
ngx_int_t ngx_http_perstack_send_headers(ngx_http_perstack_exec_t *exec);
ngx_int_t ngx_http_perstack_emit_text(ngx_http_perstack_exec_t *exec,
    const char *type, ngx_http_perstack_line_t *line);
ngx_int_t ngx_http_perstack_emit(ngx_http_perstack_exec_t *exec, u_char *type,
    size_t type_len, const u_char *data, size_t len);
size_t ngx_http_perstack_prefix_size(ngx_http_perstack_exec_t *exec,
    ngx_uint_t cut, ngx_uint_t *events);
u_char *ngx_http_perstack_prefix(ngx_http_perstack_exec_t *exec, u_char *dst);
ngx_int_t ngx_http_perstack_stderr(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_line_t *line);
ngx_int_t ngx_http_perstack_send(ngx_http_perstack_exec_t *exec, size_t len);
ngx_int_t ngx_http_perstack_flush(ngx_http_perstack_exec_t *exec);
u_char *ngx_http_perstack_out_reserve(ngx_http_perstack_exec_t *exec,
    size_t size);
void ngx_http_perstack_out_free(ngx_http_perstack_exec_t *exec);
void ngx_http_perstack_mark(ngx_http_perstack_exec_t *exec, u_char *dst);
ngx_int_t ngx_http_perstack_busy(ngx_http_perstack_exec_t *exec);
void ngx_http_perstack_keepalive(ngx_event_t *ev);
u_char *ngx_http_perstack_reserve(ngx_http_perstack_exec_t *exec, u_char **buf,
    size_t *size, size_t keep, size_t len);
void ngx_http_perstack_finalize(ngx_http_perstack_exec_t *exec,
    ngx_int_t rc);
const char *ngx_http_perstack_state_name(ngx_http_perstack_state_e state);
void ngx_http_perstack_event_open(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_jw_t *jw, const char *type);
ngx_int_t ngx_http_perstack_event_send(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_jw_t *jw, const char *type);


#endif /* _NGX_HTTP_PERSTACK_OUTPUT_H_INCLUDED_ */
