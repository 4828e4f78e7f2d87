
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_VARS_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_VARS_H_INCLUDED_


#include "ngx_http_perstack_common.h"


ngx_int_t ngx_http_perstack_vars_add(ngx_conf_t *cf);


#endif /* _NGX_HTTP_PERSTACK_VARS_H_INCLUDED_ */
