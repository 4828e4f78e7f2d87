
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_perstack_writer.h"


#define NGX_HTTP_PERSTACK_JW_EMPTY   0
#define NGX_HTTP_PERSTACK_JW_VALUE   1
#define NGX_HTTP_PERSTACK_JW_KEY     2


static int ngx_http_perstack_jw_reserve(ngx_http_perstack_jw_t *jw,
    size_t len);
static void ngx_http_perstack_jw_next(ngx_http_perstack_jw_t *jw);


void
ngx_http_perstack_jw_init(ngx_http_perstack_jw_t *jw,
    ngx_http_perstack_jw_grow_pt grow, void *data, size_t max)
{
    jw->start = NULL;
    jw->pos = NULL;
    jw->end = NULL;
    jw->grow = grow;
    jw->data = data;
    jw->max = max;
    jw->depth = 0;
    jw->state[0] = NGX_HTTP_PERSTACK_JW_EMPTY;
    jw->failed = 0;
}


/* the grow function of a text in memory of its own: free() it at the end */

u_char *
ngx_http_perstack_jw_malloc(void *data, u_char *old, size_t used, size_t size)
{
    return realloc(old, size);
}


static int
ngx_http_perstack_jw_reserve(ngx_http_perstack_jw_t *jw, size_t len)
{
    u_char  *p;
    size_t   used, size;

    if (jw->failed) {
        return 0;
    }

    if ((size_t) (jw->end - jw->pos) >= len) {
        return 1;
    }

    used = jw->pos - jw->start;

    if (jw->max && used + len > jw->max) {
        jw->failed = 1;
        return 0;
    }

    size = (size_t) (jw->end - jw->start) * 2;

    if (size < used + len) {
        size = used + len;
    }

    if (size < 256) {
        size = 256;
    }

    if (jw->max && size > jw->max) {
        size = jw->max;
    }

    /* a buffer of fixed size: no more room */
    if (jw->grow == NULL) {
        jw->failed = 1;
        return 0;
    }

    p = jw->grow(jw->data, jw->start, used, size);
    if (p == NULL) {
        jw->failed = 1;
        return 0;
    }

    jw->start = p;
    jw->pos = p + used;
    jw->end = p + size;

    return 1;
}


void
ngx_http_perstack_jw_raw(ngx_http_perstack_jw_t *jw, const char *text)
{
    ngx_http_perstack_jw_rawn(jw, (const u_char *) text, strlen(text));
}


void
ngx_http_perstack_jw_rawn(ngx_http_perstack_jw_t *jw, const u_char *data,
    size_t len)
{
    if (!ngx_http_perstack_jw_reserve(jw, len)) {
        return;
    }

    if (len) {
        memcpy(jw->pos, data, len);
        jw->pos += len;
    }
}


void
ngx_http_perstack_jw_str(ngx_http_perstack_jw_t *jw, const u_char *data,
    size_t len)
{
    if (!ngx_http_perstack_jw_reserve(jw,
                               ngx_http_perstack_json_escape_size(data, len)
                               + 2))
    {
        return;
    }

    *jw->pos++ = '"';
    jw->pos = ngx_http_perstack_json_escape(jw->pos, data, len);
    *jw->pos++ = '"';
}


/* a string's text, escaped, without its quotes: a string written in parts */

void
ngx_http_perstack_jw_text(ngx_http_perstack_jw_t *jw, const u_char *data,
    size_t len)
{
    if (!ngx_http_perstack_jw_reserve(jw,
                               ngx_http_perstack_json_escape_size(data, len)))
    {
        return;
    }

    jw->pos = ngx_http_perstack_json_escape(jw->pos, data, len);
}


void
ngx_http_perstack_jw_buffer(ngx_http_perstack_jw_t *jw, u_char *buf,
    size_t used, size_t size)
{
    ngx_http_perstack_jw_init(jw, NULL, NULL, 0);

    jw->start = buf;
    jw->pos = buf + used;
    jw->end = buf + size;
}


void
ngx_http_perstack_jw_int(ngx_http_perstack_jw_t *jw, int64_t n)
{
    char  buf[32];
    int   len;

    len = snprintf(buf, sizeof(buf), "%lld", (long long) n);

    ngx_http_perstack_jw_rawn(jw, (u_char *) buf, (size_t) len);
}


void
ngx_http_perstack_jw_uint(ngx_http_perstack_jw_t *jw, uint64_t n)
{
    char  buf[32];
    int   len;

    len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long) n);

    ngx_http_perstack_jw_rawn(jw, (u_char *) buf, (size_t) len);
}


/* before a value: the comma after the one before it */

static void
ngx_http_perstack_jw_next(ngx_http_perstack_jw_t *jw)
{
    /* after a key, its value; in an array or object, after another one */
    if (jw->state[jw->depth] == NGX_HTTP_PERSTACK_JW_VALUE
        && jw->depth > 0)
    {
        ngx_http_perstack_jw_rawn(jw, (u_char *) ",", 1);
    }

    jw->state[jw->depth] = NGX_HTTP_PERSTACK_JW_VALUE;
}


void
ngx_http_perstack_jw_open(ngx_http_perstack_jw_t *jw, u_char bracket)
{
    if (jw->depth + 1 >= NGX_HTTP_PERSTACK_JSON_DEPTH_MAX) {
        jw->failed = 1;
        return;
    }

    ngx_http_perstack_jw_next(jw);
    ngx_http_perstack_jw_rawn(jw, &bracket, 1);

    jw->depth++;
    jw->state[jw->depth] = NGX_HTTP_PERSTACK_JW_EMPTY;
    jw->open[jw->depth] = bracket;
}


void
ngx_http_perstack_jw_close(ngx_http_perstack_jw_t *jw)
{
    u_char  bracket;

    if (jw->depth == 0) {
        jw->failed = 1;
        return;
    }

    bracket = (jw->open[jw->depth] == '{') ? '}' : ']';
    jw->depth--;

    ngx_http_perstack_jw_rawn(jw, &bracket, 1);
}


void
ngx_http_perstack_jw_key(ngx_http_perstack_jw_t *jw, const u_char *key,
    size_t len)
{
    ngx_http_perstack_jw_next(jw);
    ngx_http_perstack_jw_str(jw, key, len);
    ngx_http_perstack_jw_rawn(jw, (u_char *) ":", 1);

    jw->state[jw->depth] = NGX_HTTP_PERSTACK_JW_KEY;
}


void
ngx_http_perstack_jw_value_str(ngx_http_perstack_jw_t *jw,
    const u_char *data, size_t len)
{
    ngx_http_perstack_jw_next(jw);
    ngx_http_perstack_jw_str(jw, data, len);
}


/* a number, true, false or null, as its text */

void
ngx_http_perstack_jw_value_raw(ngx_http_perstack_jw_t *jw,
    const u_char *data, size_t len)
{
    ngx_http_perstack_jw_next(jw);
    ngx_http_perstack_jw_rawn(jw, data, len);
}


void
ngx_http_perstack_jw_value_int(ngx_http_perstack_jw_t *jw, int64_t n)
{
    ngx_http_perstack_jw_next(jw);
    ngx_http_perstack_jw_int(jw, n);
}
