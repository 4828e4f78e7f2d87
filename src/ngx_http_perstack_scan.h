
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * What the module reads of a runtime event, read as the event's line
 * streams through: its "type", and for the events that end a run, its
 * "expertKey", its checkpoint's "pendingToolCalls" and its "error".
 *
 * The line is fed in pieces of any size, and memory stays bounded however
 * long the line is: yajl checks the grammar and builds nothing, and the
 * scanner in front of it passes yajl at most
 * NGX_HTTP_PERSTACK_SCAN_STRING_MAX bytes of a string (of one in
 * pendingToolCalls: NGX_HTTP_PERSTACK_SCAN_PENDING_MAX), checking the rest
 * itself, so that yajl, which holds a whole token before it reports it,
 * never holds a long one.
 *
 * This file depends on the C library and yajl only, so that it can be unit
 * tested and fuzzed without nginx.
 */


#ifndef _NGX_HTTP_PERSTACK_SCAN_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_SCAN_H_INCLUDED_


#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_parse.h>

#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_writer.h"


#define NGX_HTTP_PERSTACK_SCAN_STRING_MAX    4096
#define NGX_HTTP_PERSTACK_SCAN_PENDING_MAX   (512 * 1024)
#define NGX_HTTP_PERSTACK_SCAN_NUMBER_MAX    256
#define NGX_HTTP_PERSTACK_SCAN_EXPERT_MAX    512
#define NGX_HTTP_PERSTACK_SCAN_NAME_MAX      256
#define NGX_HTTP_PERSTACK_SCAN_MESSAGE_MAX   4096


typedef enum {
    NGX_HTTP_PERSTACK_SCAN_OK = 0,
    /* not one JSON object, or one the module refuses: see error */
    NGX_HTTP_PERSTACK_SCAN_INVALID,
    NGX_HTTP_PERSTACK_SCAN_NOMEM
} ngx_http_perstack_scan_rc_e;


typedef struct {
    yajl_handle                  yajl;
    /* the copy of pendingToolCalls, while it is made */
    ngx_http_perstack_jw_t      *gen;

    ngx_http_perstack_scan_rc_e  rc;
    /* why the line is refused: a short text that never echoes the input */
    const char                  *error;

    /* the nesting depth; the keys last read at depths 1 and 2 */
    unsigned                     depth;
    unsigned                     key1;
    unsigned                     key2;
    unsigned                     map2:1;
    /* pendingToolCalls is being copied: the depth of its array */
    unsigned                     pending_depth;

    /* the scanner's view of the text: where strings are */
    unsigned                     in_string:1;
    unsigned                     eliding:1;
    /* the next string yajl reports was cut short */
    unsigned                     elided:1;
    unsigned                     value_seen:1;
    /* 0, 1 after "\\", 2 to 5 in the hex digits of "\\u" */
    unsigned                     escape;
    unsigned                     hex;
    /* an escaped high surrogate wants its low half next */
    unsigned                     want_low:2;
    /* continuation bytes still to come in a UTF-8 sequence, and the range
     * of the next one */
    unsigned                     utf8_need;
    u_char                       utf8_lo;
    u_char                       utf8_hi;
    size_t                       string_len;
    size_t                       string_max;
    size_t                       number_len;

    /* what was read: type[] 1 to NGX_HTTP_PERSTACK_TYPE_MAX bytes of
     * [A-Za-z0-9_.:-], or type_len 0 */
    u_char                       type[NGX_HTTP_PERSTACK_TYPE_MAX];
    size_t                       type_len;

    /* expertKey: expert_len > NGX_HTTP_PERSTACK_SCAN_EXPERT_MAX when it
     * is longer than that; has_expert when there was one */
    u_char                       expert[NGX_HTTP_PERSTACK_SCAN_EXPERT_MAX];
    size_t                       expert_len;
    unsigned                     has_expert:1;

    /* error.name, error.message (cut on a character's boundary), and
     * error.statusCode when it is an integer */
    u_char                       error_name[NGX_HTTP_PERSTACK_SCAN_NAME_MAX];
    size_t                       error_name_len;
    u_char                       error_message[
                                     NGX_HTTP_PERSTACK_SCAN_MESSAGE_MAX];
    size_t                       error_message_len;
    int64_t                      status_code;
    unsigned                     has_error_name:1;
    unsigned                     has_error_message:1;
    unsigned                     has_status_code:1;

    /* checkpoint.pendingToolCalls as JSON (malloc()ed), when an array of
     * at most NGX_HTTP_PERSTACK_SCAN_PENDING_MAX bytes */
    u_char                      *pending;
    size_t                       pending_len;
} ngx_http_perstack_scan_t;


/* a scanner for a new line: returns 0, or -1 when out of memory */
int ngx_http_perstack_scan_start(ngx_http_perstack_scan_t *s);

/*
 * The next piece of the line.  Returns NGX_HTTP_PERSTACK_SCAN_OK while the
 * line may still be one JSON object, and anything else, again and again,
 * once it cannot: nesting deeper than NGX_HTTP_PERSTACK_JSON_DEPTH_MAX, a
 * number longer than NGX_HTTP_PERSTACK_SCAN_NUMBER_MAX, a top-level "type"
 * in the module's "perstack." namespace, and what JSON does not allow
 * (comments, "\\f" and "\\v" as white space, invalid UTF-8, control
 * characters and unpaired surrogates in strings) are refused too.
 */
ngx_http_perstack_scan_rc_e ngx_http_perstack_scan_feed(
    ngx_http_perstack_scan_t *s, const u_char *data, size_t len);

/* the line ended: whether it was one JSON object */
ngx_http_perstack_scan_rc_e ngx_http_perstack_scan_end(
    ngx_http_perstack_scan_t *s);

/* frees what the scanner holds; it may be started again */
void ngx_http_perstack_scan_free(ngx_http_perstack_scan_t *s);


#endif /* _NGX_HTTP_PERSTACK_SCAN_H_INCLUDED_ */
