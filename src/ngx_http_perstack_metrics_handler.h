
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_METRICS_HANDLER_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_METRICS_HANDLER_H_INCLUDED_


#include "ngx_http_perstack_common.h"


ngx_int_t ngx_http_perstack_metrics_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_PERSTACK_METRICS_HANDLER_H_INCLUDED_ */
