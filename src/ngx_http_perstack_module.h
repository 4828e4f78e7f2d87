
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_MODULE_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_MODULE_H_INCLUDED_


#include "ngx_http_perstack_common.h"


/*
 * ngx_http_perstack_module.c exports the module itself, declared in
 * ngx_http_perstack_common.h, and nothing else: the directives, the
 * configuration's create and merge, and the process hooks call down into
 * the other files, and none calls up into it.
 */


#endif /* _NGX_HTTP_PERSTACK_MODULE_H_INCLUDED_ */
