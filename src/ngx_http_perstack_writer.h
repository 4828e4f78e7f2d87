
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The one JSON writer: everything the module writes as JSON goes through
 * it, the events, the error bodies, the container's configuration, the
 * jobs' records and the copy of a run's pending tool calls.  Strings are
 * escaped by ngx_http_perstack_json_escape(), which turns invalid UTF-8
 * into U+FFFD.  No memory is a state, not a return: every call after a
 * failed one does nothing, and ngx_http_perstack_jw_failed() tells at the
 * end.
 *
 * Text is written as it is told (jw_raw, jw_str, ...), or as values and
 * keys (jw_open, jw_key, jw_value_...), where the writer puts the commas
 * and colons itself.
 *
 * This file depends on the C library only, so that it can be unit tested
 * and fuzzed without nginx; the buffer grows through the caller's
 * function (a pool's, or a buffer the caller keeps).
 */


#ifndef _NGX_HTTP_PERSTACK_WRITER_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_WRITER_H_INCLUDED_


#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include "ngx_http_perstack_json.h"


typedef struct ngx_http_perstack_jw_s  ngx_http_perstack_jw_t;

/*
 * A buffer of at least size bytes that begins with the used bytes of old
 * (NULL at first), or NULL.
 */
typedef u_char *(*ngx_http_perstack_jw_grow_pt)(void *data, u_char *old,
    size_t used, size_t size);


struct ngx_http_perstack_jw_s {
    u_char                          *start;
    u_char                          *pos;
    u_char                          *end;

    ngx_http_perstack_jw_grow_pt     grow;
    void                            *data;
    /* the most the text may hold (0: no bound); beyond, it fails */
    size_t                           max;

    /* per open array or object: 0 empty, 1 after a value, 2 after a key */
    unsigned char                    state[NGX_HTTP_PERSTACK_JSON_DEPTH_MAX];
    /* and its opening bracket */
    unsigned char                    open[NGX_HTTP_PERSTACK_JSON_DEPTH_MAX];
    unsigned                         depth;

    unsigned                         failed:1;
};


void ngx_http_perstack_jw_init(ngx_http_perstack_jw_t *jw,
    ngx_http_perstack_jw_grow_pt grow, void *data, size_t max);
u_char *ngx_http_perstack_jw_malloc(void *data, u_char *old, size_t used,
    size_t size);
/* a buffer of fixed size, used bytes of it written already */
void ngx_http_perstack_jw_buffer(ngx_http_perstack_jw_t *jw, u_char *buf,
    size_t used, size_t size);

/* text as it is told */
void ngx_http_perstack_jw_raw(ngx_http_perstack_jw_t *jw, const char *text);
void ngx_http_perstack_jw_rawn(ngx_http_perstack_jw_t *jw, const u_char *data,
    size_t len);
void ngx_http_perstack_jw_str(ngx_http_perstack_jw_t *jw, const u_char *data,
    size_t len);
void ngx_http_perstack_jw_text(ngx_http_perstack_jw_t *jw, const u_char *data,
    size_t len);
void ngx_http_perstack_jw_int(ngx_http_perstack_jw_t *jw, int64_t n);
void ngx_http_perstack_jw_uint(ngx_http_perstack_jw_t *jw, uint64_t n);

/* values and keys, with the commas and colons put by the writer */
void ngx_http_perstack_jw_open(ngx_http_perstack_jw_t *jw, u_char bracket);
void ngx_http_perstack_jw_close(ngx_http_perstack_jw_t *jw);
void ngx_http_perstack_jw_key(ngx_http_perstack_jw_t *jw, const u_char *key,
    size_t len);
void ngx_http_perstack_jw_value_str(ngx_http_perstack_jw_t *jw,
    const u_char *data, size_t len);
void ngx_http_perstack_jw_value_raw(ngx_http_perstack_jw_t *jw,
    const u_char *data, size_t len);
void ngx_http_perstack_jw_value_int(ngx_http_perstack_jw_t *jw, int64_t n);

#define ngx_http_perstack_jw_key_lit(jw, key)                                 \
    ngx_http_perstack_jw_key(jw, (const u_char *) key, sizeof(key) - 1)
/* true, false, null, or a number written as a literal */
#define ngx_http_perstack_jw_value_lit(jw, text)                              \
    ngx_http_perstack_jw_value_raw(jw, (const u_char *) text,               \
                                   sizeof(text) - 1)

#define ngx_http_perstack_jw_failed(jw)   ((jw)->failed)
#define ngx_http_perstack_jw_len(jw)      ((size_t) ((jw)->pos - (jw)->start))


#endif /* _NGX_HTTP_PERSTACK_WRITER_H_INCLUDED_ */
