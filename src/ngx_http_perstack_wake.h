
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_WAKE_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_WAKE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* the workers woken after one pass, without a syscall each */
#define NGX_HTTP_PERSTACK_WAKE_MAX   16


/* The workers to wake once a lock is released. */
typedef struct {
    ngx_uint_t                       n;
    ngx_pid_t                        pid[NGX_HTTP_PERSTACK_WAKE_MAX];
    uint64_t                         start[NGX_HTTP_PERSTACK_WAKE_MAX];
} ngx_http_perstack_wake_t;


void ngx_http_perstack_wake_init(ngx_cycle_t *cycle, void (*handler)(void));
void ngx_http_perstack_wake_exit(void);
void ngx_http_perstack_wake_add(ngx_http_perstack_wake_t *wake,
    ngx_pid_t pid, uint64_t start);
void ngx_http_perstack_wake_send(ngx_http_perstack_wake_t *wake);


#endif /* _NGX_HTTP_PERSTACK_WAKE_H_INCLUDED_ */
