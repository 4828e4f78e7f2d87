
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_REAPER_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_REAPER_H_INCLUDED_


#include "ngx_http_perstack_common.h"


/* whether this worker's execution of that id runs on */
typedef ngx_uint_t (*ngx_http_perstack_reaper_running_pt)(u_char *id);

void ngx_http_perstack_reaper_init_process(ngx_cycle_t *cycle,
    ngx_http_perstack_reaper_running_pt running);
void ngx_http_perstack_reaper_soon(void);


#endif /* _NGX_HTTP_PERSTACK_REAPER_H_INCLUDED_ */
