
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_POLICY_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_POLICY_H_INCLUDED_


#include "ngx_http_perstack_common.h"


ngx_int_t ngx_http_perstack_container_config(ngx_http_perstack_exec_t *exec,
    ngx_str_t *body);
ngx_int_t ngx_http_perstack_env_evaluate(ngx_http_request_t *r,
    ngx_http_perstack_exec_t *exec);
char *ngx_http_perstack_set_user(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_perstack_set_cpus(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_perstack_set_pair(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_perstack_set_config(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_perstack_set_env(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_perstack_set_caps(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_perstack_policy_merge(ngx_conf_t *cf,
    ngx_http_perstack_loc_conf_t *prev, ngx_http_perstack_loc_conf_t *conf);


#endif /* _NGX_HTTP_PERSTACK_POLICY_H_INCLUDED_ */
