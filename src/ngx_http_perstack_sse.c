/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#include <string.h>

#include "ngx_http_perstack_sse.h"


#define NGX_HTTP_PERSTACK_UINT64_LEN  (sizeof("18446744073709551615") - 1)


static u_char *ngx_http_perstack_sse_id(u_char *dst, const u_char *stream,
    size_t stream_len, uint64_t id);
static u_char *ngx_http_perstack_sse_copy(u_char *dst, const char *s,
    size_t len);
static const u_char *ngx_http_perstack_sse_break(const u_char *p,
    const u_char *last);


size_t
ngx_http_perstack_sse_size(const u_char *stream, size_t stream_len,
    uint64_t id, size_t type_len, const u_char *data, size_t len)
{
    size_t  size;

    size = ngx_http_perstack_sse_open_size(stream, stream_len, id)
           + ngx_http_perstack_sse_data_size(data, len)
           + sizeof("\n\n") - 1;

    if (type_len != 0) {
        size += sizeof("event: \n") - 1 + type_len;
    }

    return size;
}


u_char *
ngx_http_perstack_sse_write(u_char *dst, const u_char *stream,
    size_t stream_len, uint64_t id, const u_char *type, size_t type_len,
    const u_char *data, size_t len)
{
    dst = ngx_http_perstack_sse_id(dst, stream, stream_len, id);

    if (type_len != 0) {
        dst = ngx_http_perstack_sse_copy(dst, "event: ",
                                         sizeof("event: ") - 1);
        memcpy(dst, type, type_len);
        dst += type_len;
        *dst++ = '\n';
    }

    dst = ngx_http_perstack_sse_copy(dst, "data: ", sizeof("data: ") - 1);
    dst = ngx_http_perstack_sse_data(dst, data, len);

    *dst++ = '\n';
    *dst++ = '\n';

    return dst;
}


size_t
ngx_http_perstack_sse_open_size(const u_char *stream, size_t stream_len,
    uint64_t id)
{
    size_t  size;

    size = sizeof("id: \ndata: ") - 1;

    if (stream_len != 0) {
        size += stream_len + 1;
    }

    do {
        size++;
        id /= 10;
    } while (id != 0);

    return size;
}


u_char *
ngx_http_perstack_sse_open(u_char *dst, const u_char *stream,
    size_t stream_len, uint64_t id)
{
    dst = ngx_http_perstack_sse_id(dst, stream, stream_len, id);

    return ngx_http_perstack_sse_copy(dst, "data: ", sizeof("data: ") - 1);
}


size_t
ngx_http_perstack_sse_data_size(const u_char *data, size_t len)
{
    size_t         size;
    const u_char  *p, *q, *last;

    size = 0;

    p = data;
    last = data + len;

    for ( ;; ) {
        q = ngx_http_perstack_sse_break(p, last);

        size += q - p;

        if (q == last) {
            return size;
        }

        if (*q == '\r' && q + 1 < last && q[1] == '\n') {
            q++;
        }

        size += sizeof("\ndata: ") - 1;

        p = q + 1;
    }
}


u_char *
ngx_http_perstack_sse_data(u_char *dst, const u_char *data, size_t len)
{
    const u_char  *p, *q, *last;

    p = data;
    last = data + len;

    for ( ;; ) {
        q = ngx_http_perstack_sse_break(p, last);

        memcpy(dst, p, q - p);
        dst += q - p;

        if (q == last) {
            return dst;
        }

        if (*q == '\r' && q + 1 < last && q[1] == '\n') {
            q++;
        }

        dst = ngx_http_perstack_sse_copy(dst, "\ndata: ",
                                         sizeof("\ndata: ") - 1);

        p = q + 1;
    }
}


/* the next CR or LF from p, or last (lines seldom have one: memchr()) */

static const u_char *
ngx_http_perstack_sse_break(const u_char *p, const u_char *last)
{
    const u_char  *lf, *cr;

    if (p == last) {
        /* no memchr() of a NULL with nothing in it */
        return last;
    }

    lf = memchr(p, '\n', last - p);

    if (lf == NULL) {
        lf = last;
    }

    cr = memchr(p, '\r', lf - p);

    return cr ? cr : lf;
}


size_t
ngx_http_perstack_sse_close_size(size_t type_len)
{
    if (type_len == 0) {
        return sizeof("\n\n") - 1;
    }

    return sizeof("\nevent: \n\n") - 1 + type_len;
}


u_char *
ngx_http_perstack_sse_close(u_char *dst, const u_char *type, size_t type_len)
{
    *dst++ = '\n';

    if (type_len != 0) {
        dst = ngx_http_perstack_sse_copy(dst, "event: ",
                                         sizeof("event: ") - 1);
        memcpy(dst, type, type_len);
        dst += type_len;
        *dst++ = '\n';
    }

    *dst++ = '\n';

    return dst;
}


/* "id: <stream>-<id>\n", or "id: <id>\n" */

static u_char *
ngx_http_perstack_sse_id(u_char *dst, const u_char *stream,
    size_t stream_len, uint64_t id)
{
    u_char  *d, digits[NGX_HTTP_PERSTACK_UINT64_LEN];

    dst = ngx_http_perstack_sse_copy(dst, "id: ", sizeof("id: ") - 1);

    if (stream_len != 0) {
        memcpy(dst, stream, stream_len);
        dst += stream_len;
        *dst++ = '-';
    }

    d = digits + sizeof(digits);

    do {
        *--d = (u_char) ('0' + id % 10);
        id /= 10;
    } while (id != 0);

    memcpy(dst, d, digits + sizeof(digits) - d);
    dst += digits + sizeof(digits) - d;
    *dst++ = '\n';

    return dst;
}


static u_char *
ngx_http_perstack_sse_copy(u_char *dst, const char *s, size_t len)
{
    memcpy(dst, s, len);

    return dst + len;
}


/*
 * NDJSON's framing: the event's JSON object with its position as its first
 * member, "{"position":N," in place of its "{".  data that is not an
 * object goes as it is.  A part that has only white space after the "{"
 * gets the comma too: the rest of the object follows.
 */

size_t
ngx_http_perstack_ndjson_size(uint64_t position, const u_char *data,
    size_t len)
{
    size_t         size;
    const u_char  *p, *last;

    p = memchr(data, '{', len);

    if (p == NULL) {
        return len;
    }

    size = len + sizeof("\"position\":,") - 1;

    do {
        size++;
        position /= 10;
    } while (position != 0);

    last = data + len;

    for (p++; p < last; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            break;
        }
    }

    if (p < last && *p == '}') {
        size--;
    }

    return size;
}


u_char *
ngx_http_perstack_ndjson_write(u_char *dst, uint64_t position,
    const u_char *data, size_t len)
{
    u_char        *d, digits[NGX_HTTP_PERSTACK_UINT64_LEN];
    const u_char  *p, *q, *last;

    p = memchr(data, '{', len);

    if (p == NULL) {
        memcpy(dst, data, len);
        return dst + len;
    }

    p++;
    memcpy(dst, data, p - data);
    dst += p - data;

    dst = ngx_http_perstack_sse_copy(dst, "\"position\":",
                                     sizeof("\"position\":") - 1);

    d = digits + sizeof(digits);

    do {
        *--d = (u_char) ('0' + position % 10);
        position /= 10;
    } while (position != 0);

    memcpy(dst, d, digits + sizeof(digits) - d);
    dst += digits + sizeof(digits) - d;

    last = data + len;

    for (q = p; q < last; q++) {
        if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n') {
            break;
        }
    }

    if (!(q < last && *q == '}')) {
        *dst++ = ',';
    }

    memcpy(dst, p, last - p);

    return dst + (last - p);
}
