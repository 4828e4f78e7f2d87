
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The JSON the module reads and writes: events printed by the runtime,
 * request bodies sent by clients, and strings escaped into JSON.
 *
 * This file depends on the C library and yajl only, so that it can be unit
 * tested and fuzzed without nginx.
 */


#ifndef _NGX_HTTP_PERSTACK_JSON_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_JSON_H_INCLUDED_


#include <sys/types.h>
#include <stddef.h>


#define NGX_HTTP_PERSTACK_TYPE_MAX  64


typedef enum {
    /* a complete JSON object, and nothing else but white space */
    NGX_HTTP_PERSTACK_JSON_OBJECT = 0,
    /* valid JSON, but not an object (array, string, number, ...) */
    NGX_HTTP_PERSTACK_JSON_OTHER,
    /* not JSON at all, or more than one value */
    NGX_HTTP_PERSTACK_JSON_INVALID,
    NGX_HTTP_PERSTACK_JSON_NOMEM
} ngx_http_perstack_json_rc_e;


/*
 * Classifies one line of the runtime's stdout.  For an object, type
 * receives the value of its top-level "type" member (the last one when
 * repeated) and *type_len its length, when that value is a string of 1 to
 * NGX_HTTP_PERSTACK_TYPE_MAX bytes from [A-Za-z0-9_.:-]; otherwise
 * *type_len is 0.  type must have room for NGX_HTTP_PERSTACK_TYPE_MAX
 * bytes.  Nesting depth is not limited beyond what the line length allows.
 */
ngx_http_perstack_json_rc_e ngx_http_perstack_json_classify(
    const u_char *data, size_t len, u_char *type, size_t *type_len);


/*
 * The exact length of src escaped as the inside of a JSON string: '"', '\\'
 * and control characters are escaped, valid UTF-8 is kept as it is, and
 * each byte of an invalid UTF-8 sequence becomes \ufffd.
 */
size_t ngx_http_perstack_json_escape_size(const u_char *src, size_t len);

u_char *ngx_http_perstack_json_escape(u_char *dst, const u_char *src,
    size_t len);


/* A member of a request body that the module knows. */
typedef struct {
    const char                  *name;
    /* set by the parser: a NUL-terminated malloc()ed copy, or NULL */
    u_char                      *data;
    size_t                       len;
} ngx_http_perstack_field_t;


/*
 * Parses a request body: one JSON object whose members are all among
 * fields[0 .. nfields - 1], each a string without NUL bytes, none twice.
 * Returns 0, or -1 with a short message for the client in err (never
 * echoing the input).  On either return, the caller frees the values with
 * ngx_http_perstack_body_free().
 */
int ngx_http_perstack_body_parse(const u_char *data, size_t len,
    ngx_http_perstack_field_t *fields, size_t nfields, char *err,
    size_t err_size);

void ngx_http_perstack_body_free(ngx_http_perstack_field_t *fields,
    size_t nfields);

/*
 * Whether every escaped surrogate in data's strings is half of a pair
 * ("\uD800\uDC00"); yajl turns a lone one into "?" or into another
 * character.
 */
int ngx_http_perstack_json_surrogates_paired(const u_char *data,
    size_t len);


/*
 * Whether the JSON text data (not NUL-terminated, not validated) nests
 * arrays and objects at most max deep; brackets inside strings do not
 * count.  yajl's tree parser and yajl_tree_free() recurse once a level:
 * text from a container or an engine goes through this first, so that no
 * input can exhaust a worker's (or a thread's) stack.
 */
int ngx_http_perstack_json_depth_ok(const u_char *data, size_t len,
    size_t max);

#define NGX_HTTP_PERSTACK_JSON_DEPTH_MAX  64


#endif /* _NGX_HTTP_PERSTACK_JSON_H_INCLUDED_ */
