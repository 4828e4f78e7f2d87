
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_ORIGIN_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_ORIGIN_H_INCLUDED_


#include "ngx_http_perstack_common.h"


ngx_int_t ngx_http_perstack_origin_check(ngx_http_request_t *r,
    ngx_http_perstack_loc_conf_t *plcf, ngx_int_t *rc);
char *ngx_http_perstack_allow_origin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_PERSTACK_ORIGIN_H_INCLUDED_ */
