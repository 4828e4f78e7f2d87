/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#include <string.h>

#include "ngx_http_perstack_sse.h"


#define NGX_HTTP_PERSTACK_UINT64_LEN  (sizeof("18446744073709551615") - 1)


static u_char *ngx_http_perstack_sse_id(u_char *dst, uint64_t id);
static u_char *ngx_http_perstack_sse_copy(u_char *dst, const char *s,
    size_t len);


size_t
ngx_http_perstack_sse_size(uint64_t id, size_t type_len, const u_char *data,
    size_t len)
{
    size_t  size;

    size = ngx_http_perstack_sse_open_size(id)
           + ngx_http_perstack_sse_data_size(data, len)
           + sizeof("\n\n") - 1;

    if (type_len != 0) {
        size += sizeof("event: \n") - 1 + type_len;
    }

    return size;
}


u_char *
ngx_http_perstack_sse_write(u_char *dst, uint64_t id, const u_char *type,
    size_t type_len, const u_char *data, size_t len)
{
    dst = ngx_http_perstack_sse_id(dst, id);

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
ngx_http_perstack_sse_open_size(uint64_t id)
{
    size_t  size;

    size = sizeof("id: \ndata: ") - 1;

    do {
        size++;
        id /= 10;
    } while (id != 0);

    return size;
}


u_char *
ngx_http_perstack_sse_open(u_char *dst, uint64_t id)
{
    dst = ngx_http_perstack_sse_id(dst, id);

    return ngx_http_perstack_sse_copy(dst, "data: ", sizeof("data: ") - 1);
}


size_t
ngx_http_perstack_sse_data_size(const u_char *data, size_t len)
{
    size_t         size;
    const u_char  *p, *last;

    size = 0;

    p = data;
    last = data + len;

    while (p < last) {

        if (*p == '\r' || *p == '\n') {
            if (*p == '\r' && p + 1 < last && p[1] == '\n') {
                p++;
            }

            size += sizeof("\ndata: ") - 1;

        } else {
            size++;
        }

        p++;
    }

    return size;
}


u_char *
ngx_http_perstack_sse_data(u_char *dst, const u_char *data, size_t len)
{
    const u_char  *p, *last;

    p = data;
    last = data + len;

    while (p < last) {

        if (*p == '\r' || *p == '\n') {
            if (*p == '\r' && p + 1 < last && p[1] == '\n') {
                p++;
            }

            dst = ngx_http_perstack_sse_copy(dst, "\ndata: ",
                                             sizeof("\ndata: ") - 1);

        } else {
            *dst++ = *p;
        }

        p++;
    }

    return dst;
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


/* "id: <id>\n" */

static u_char *
ngx_http_perstack_sse_id(u_char *dst, uint64_t id)
{
    u_char  *d, digits[NGX_HTTP_PERSTACK_UINT64_LEN];

    dst = ngx_http_perstack_sse_copy(dst, "id: ", sizeof("id: ") - 1);

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
