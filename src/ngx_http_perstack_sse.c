/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#include <string.h>

#include "ngx_http_perstack_sse.h"


#define NGX_HTTP_PERSTACK_UINT64_LEN  (sizeof("18446744073709551615") - 1)


static u_char *ngx_http_perstack_sse_copy(u_char *dst, const char *s,
    size_t len);


size_t
ngx_http_perstack_sse_size(uint64_t id, size_t type_len, const u_char *data,
    size_t len)
{
    size_t         size;
    const u_char  *p, *last;

    size = sizeof("id: \n") - 1;

    do {
        size++;
        id /= 10;
    } while (id != 0);

    if (type_len != 0) {
        size += sizeof("event: \n") - 1 + type_len;
    }

    /* the first data line, then one more for each line break */

    size += sizeof("data: \n") - 1;

    p = data;
    last = data + len;

    while (p < last) {

        if (*p == '\r' || *p == '\n') {
            if (*p == '\r' && p + 1 < last && p[1] == '\n') {
                p++;
            }

            size += sizeof("data: \n") - 1;

        } else {
            size++;
        }

        p++;
    }

    /* the blank line that ends the event */

    return size + 1;
}


u_char *
ngx_http_perstack_sse_write(u_char *dst, uint64_t id, const u_char *type,
    size_t type_len, const u_char *data, size_t len)
{
    u_char        *d, digits[NGX_HTTP_PERSTACK_UINT64_LEN];
    const u_char  *p, *last;

    dst = ngx_http_perstack_sse_copy(dst, "id: ", sizeof("id: ") - 1);

    d = digits + sizeof(digits);

    do {
        *--d = (u_char) ('0' + id % 10);
        id /= 10;
    } while (id != 0);

    memcpy(dst, d, digits + sizeof(digits) - d);
    dst += digits + sizeof(digits) - d;
    *dst++ = '\n';

    if (type_len != 0) {
        dst = ngx_http_perstack_sse_copy(dst, "event: ",
                                         sizeof("event: ") - 1);
        memcpy(dst, type, type_len);
        dst += type_len;
        *dst++ = '\n';
    }

    dst = ngx_http_perstack_sse_copy(dst, "data: ", sizeof("data: ") - 1);

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

    *dst++ = '\n';
    *dst++ = '\n';

    return dst;
}


static u_char *
ngx_http_perstack_sse_copy(u_char *dst, const char *s, size_t len)
{
    memcpy(dst, s, len);

    return dst + len;
}
