
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_END_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_END_H_INCLUDED_


#include "ngx_http_perstack_common.h"


void ngx_http_perstack_set_state(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_state_e state);
void ngx_http_perstack_stop_timers(ngx_http_perstack_exec_t *exec);
void ngx_http_perstack_end(ngx_http_perstack_exec_t *exec);
void ngx_http_perstack_free_if_idle(ngx_http_perstack_exec_t *exec);
void ngx_http_perstack_free_handler(ngx_event_t *ev);


#endif /* _NGX_HTTP_PERSTACK_END_H_INCLUDED_ */
