
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Server-Sent Events framing.
 *
 * This file depends on the C library only, so that it can be unit tested
 * and fuzzed without nginx.
 */


#ifndef _NGX_HTTP_PERSTACK_SSE_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_SSE_H_INCLUDED_


#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_PERSTACK_SSE_PING  ": ping\n\n"


/*
 * The exact size of the event ngx_http_perstack_sse_write() writes for the
 * same arguments.
 */
size_t ngx_http_perstack_sse_size(uint64_t id, size_t type_len,
    const u_char *data, size_t len);

/*
 * Writes one event:
 *
 *     id: <id>\n
 *     event: <type>\n        (only when type_len is not 0)
 *     data: <line>\n         (one for each line of data)
 *     \n
 *
 * data is split into lines at "\r\n", "\r" and "\n", as an EventSource
 * client splits them, so that no byte of data can end the event early; a
 * client that joins the data lines with "\n" gets the payload back (for a
 * JSON object, an equivalent one).  type must not contain "\r" or "\n".
 * Returns the end of what was written.
 */
u_char *ngx_http_perstack_sse_write(u_char *dst, uint64_t id,
    const u_char *type, size_t type_len, const u_char *data, size_t len);


#endif /* _NGX_HTTP_PERSTACK_SSE_H_INCLUDED_ */
