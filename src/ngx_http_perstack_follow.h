
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_FOLLOW_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_FOLLOW_H_INCLUDED_


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_record.h"


ngx_int_t ngx_http_perstack_follow_start(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx, ngx_http_perstack_record_meta_t *meta);


#endif /* _NGX_HTTP_PERSTACK_FOLLOW_H_INCLUDED_ */
