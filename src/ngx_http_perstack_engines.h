
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_ENGINES_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_ENGINES_H_INCLUDED_


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_docker.h"


/* engines in a group, and workers counted in its zone */
#define NGX_HTTP_PERSTACK_ENGINES_MAX     32
#define NGX_HTTP_PERSTACK_ENGINES_WORKERS 64


typedef struct ngx_http_perstack_engines_sh_s  ngx_http_perstack_engines_sh_t;
typedef struct ngx_http_perstack_engines_worker_s
    ngx_http_perstack_engines_worker_t;


/* One engine of a group. */
struct ngx_http_perstack_engine_s {
    ngx_http_perstack_docker_t      *docker;
    ngx_http_perstack_engines_t     *group;
    ngx_uint_t                       weight;
    ngx_uint_t                       max;         /* 0: no bound */
    /* its place in the group's zone, stable across reloads */
    ngx_uint_t                       slot;
};


/* perstack_engines: a named group of engines. */
struct ngx_http_perstack_engines_s {
    ngx_str_t                        name;
    /* ngx_http_perstack_engine_t */
    ngx_array_t                      engines;
    time_t                           fail_timeout;
    ngx_flag_t                       shared_workspaces;

    ngx_shm_zone_t                  *shm_zone;
    ngx_http_perstack_engines_sh_t  *sh;
    /* this worker's counts in the zone, or NULL */
    ngx_http_perstack_engines_worker_t  *worker;

    /* where a location first named it, for an error if never defined */
    u_char                          *file;
    ngx_uint_t                       line;
    unsigned                         defined:1;
};


typedef struct {
    ngx_uint_t                       running;
    ngx_uint_t                       up;
    ngx_uint_t                       executions;
    ngx_uint_t                       failures;
} ngx_http_perstack_engine_stats_t;


char *ngx_http_perstack_engines_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_uint_t ngx_http_perstack_engines_name(ngx_str_t *name);
ngx_http_perstack_engines_t *ngx_http_perstack_engines_ref(ngx_conf_t *cf,
    ngx_array_t *groups, ngx_str_t *name);
ngx_int_t ngx_http_perstack_engines_check(ngx_conf_t *cf,
    ngx_array_t *groups);
void ngx_http_perstack_engines_init_process(ngx_array_t *groups);
void ngx_http_perstack_engines_exit_process(ngx_array_t *groups);

ngx_int_t ngx_http_perstack_engines_pick(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_engines_t *group, ngx_str_t *affinity,
    ngx_uint_t *status, const char **code, ngx_str_t *message);
ngx_int_t ngx_http_perstack_engines_failed(ngx_http_perstack_exec_t *exec,
    ngx_uint_t retry);
void ngx_http_perstack_engines_release(ngx_http_perstack_exec_t *exec);

void ngx_http_perstack_engines_stats(ngx_http_perstack_engine_t *engine,
    ngx_http_perstack_engine_stats_t *st);


#endif /* _NGX_HTTP_PERSTACK_ENGINES_H_INCLUDED_ */
