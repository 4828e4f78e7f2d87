
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_CONF_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_CONF_H_INCLUDED_


#include "ngx_http_perstack_common.h"


ngx_int_t ngx_http_perstack_zone_parse(ngx_conf_t *cf, ngx_str_t *value,
    ngx_str_t *name, ssize_t *size);


ngx_int_t ngx_http_perstack_add_variables(ngx_conf_t *cf,
    ngx_http_variable_t *vars);


#endif /* _NGX_HTTP_PERSTACK_CONF_H_INCLUDED_ */
