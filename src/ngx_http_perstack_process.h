
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Whether a process is gone, zombies and reused pids included: the one
 * answer for the admission slots, the gateway's credentials and the
 * reaper, which all outlive the worker that made them.
 */


#ifndef _NGX_HTTP_PERSTACK_PROCESS_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_PROCESS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* reads this worker's start time and master; at the start of each worker */
void ngx_http_perstack_process_init(void);

/* the master of this worker (this process, outside a worker) */
ngx_pid_t ngx_http_perstack_process_master(void);

/* this worker's start time, in clock ticks since boot; 0: not known */
uint64_t ngx_http_perstack_process_self(void);

ngx_uint_t ngx_http_perstack_process_gone(ngx_pid_t pid, uint64_t start);

#endif /* _NGX_HTTP_PERSTACK_PROCESS_H_INCLUDED_ */
