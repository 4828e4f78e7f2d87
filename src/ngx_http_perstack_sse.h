
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
size_t ngx_http_perstack_sse_size(const u_char *stream, size_t stream_len,
    uint64_t id, size_t type_len, const u_char *data, size_t len);

/*
 * Writes one event:
 *
 *     id: <stream>-<id>\n    ("id: <id>" when stream_len is 0)
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
u_char *ngx_http_perstack_sse_write(u_char *dst, const u_char *stream,
    size_t stream_len, uint64_t id, const u_char *type, size_t type_len,
    const u_char *data, size_t len);


/*
 * An event whose data comes in parts, for a line too long to hold:
 *
 *     id: <stream>-<id>\n
 *     data: <part><part>...\n
 *     event: <type>\n        (only when type_len is not 0)
 *     \n
 *
 * The "event:" field follows the data, as EventSource allows: the type is
 * known once the whole line was read.  open() writes up to "data: ",
 * data() one part (its line breaks split as in sse_write(); a part never
 * ends between a "\r" and a "\n"), close() the rest.  close() with
 * type_len 0 also ends an event cut short.
 */
size_t ngx_http_perstack_sse_open_size(const u_char *stream,
    size_t stream_len, uint64_t id);
u_char *ngx_http_perstack_sse_open(u_char *dst, const u_char *stream,
    size_t stream_len, uint64_t id);
size_t ngx_http_perstack_sse_data_size(const u_char *data, size_t len);
u_char *ngx_http_perstack_sse_data(u_char *dst, const u_char *data,
    size_t len);
size_t ngx_http_perstack_sse_close_size(size_t type_len);
u_char *ngx_http_perstack_sse_close(u_char *dst, const u_char *type,
    size_t type_len);


/*
 * NDJSON's framing of an event, or of a long line's first part: the JSON
 * object with "position":<position> as its first member.  size() is the
 * exact length write() writes; neither adds the line's "\n".
 */
size_t ngx_http_perstack_ndjson_size(uint64_t position, const u_char *data,
    size_t len);
u_char *ngx_http_perstack_ndjson_write(u_char *dst, uint64_t position,
    const u_char *data, size_t len);


#endif /* _NGX_HTTP_PERSTACK_SSE_H_INCLUDED_ */
