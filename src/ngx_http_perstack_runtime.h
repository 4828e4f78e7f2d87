
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The Perstack runtime's protocol: which of its events end a run, what
 * they say of it, and how a run ended.
 */


#ifndef _NGX_HTTP_PERSTACK_RUNTIME_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_RUNTIME_H_INCLUDED_


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_writer.h"


/* whether an event of this type ends a run, or may (stopRunByDelegate) */
ngx_uint_t ngx_http_perstack_runtime_ends(const u_char *type,
    size_t type_len);

/*
 * An event that may end a run, and what the scanner read of it (NULL: it
 * could not be read): the coordinator's sets the run's outcome, its
 * pending tool calls or its error.
 */
void ngx_http_perstack_runtime_event(ngx_http_perstack_exec_t *exec,
    const u_char *type, size_t type_len, ngx_http_perstack_scan_t *scan);

/* the outcome of a run whose container exited by itself */
void ngx_http_perstack_runtime_outcome(ngx_http_perstack_exec_t *exec);
const char *ngx_http_perstack_outcome_name(ngx_http_perstack_outcome_e outcome);
void ngx_http_perstack_jw_outcome(ngx_http_perstack_jw_t *jw,
    ngx_http_perstack_exec_t *exec);


#endif /* _NGX_HTTP_PERSTACK_RUNTIME_H_INCLUDED_ */
