
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_LINES_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_LINES_H_INCLUDED_


#include "ngx_http_perstack_common.h"


void ngx_http_perstack_process(ngx_event_t *ev);


#endif /* _NGX_HTTP_PERSTACK_LINES_H_INCLUDED_ */
