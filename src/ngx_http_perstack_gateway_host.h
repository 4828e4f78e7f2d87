
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_GATEWAY_HOST_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_GATEWAY_HOST_H_INCLUDED_


#include "ngx_http_perstack_common.h"


ngx_int_t ngx_http_perstack_gateway_init(ngx_conf_t *cf);


#endif /* _NGX_HTTP_PERSTACK_GATEWAY_HOST_H_INCLUDED_ */
