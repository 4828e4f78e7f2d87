
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The JSON the module reads and writes: events printed by the runtime,
 * request bodies sent by clients, trees of what containers and engines
 * write, and strings escaped into JSON.
 *
 * This file depends on the C library and yajl only, so that it can be unit
 * tested and fuzzed without nginx.
 */


#ifndef _NGX_HTTP_PERSTACK_JSON_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_JSON_H_INCLUDED_


#include <sys/types.h>
#include <stddef.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>


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

/* whether an event's type is 1 to NGX_HTTP_PERSTACK_TYPE_MAX bytes of
 * [A-Za-z0-9_.:-], which an SSE "event:" field can carry as it is */
int ngx_http_perstack_json_type_valid(const u_char *value, size_t len);


/*
 * The exact length of src escaped as the inside of a JSON string: '"', '\\'
 * and control characters are escaped, valid UTF-8 is kept as it is, and
 * each byte of an invalid UTF-8 sequence becomes \ufffd.
 */
size_t ngx_http_perstack_json_escape_size(const u_char *src, size_t len);

u_char *ngx_http_perstack_json_escape(u_char *dst, const u_char *src,
    size_t len);


/* what ngx_http_perstack_json_parse() checks before yajl sees the text */
#define NGX_HTTP_PERSTACK_JSON_UTF8       0x01
#define NGX_HTTP_PERSTACK_JSON_PAIRS      0x02


typedef enum {
    NGX_HTTP_PERSTACK_PARSE_OK = 0,
    /* not JSON, or more than one value */
    NGX_HTTP_PERSTACK_PARSE_INVALID,
    /* UTF-8 well-formed in shape only (NGX_HTTP_PERSTACK_JSON_UTF8) */
    NGX_HTTP_PERSTACK_PARSE_UTF8,
    /* an escaped surrogate without its pair (NGX_HTTP_PERSTACK_JSON_PAIRS) */
    NGX_HTTP_PERSTACK_PARSE_SURROGATE,
    /* a callback stopped the parser */
    NGX_HTTP_PERSTACK_PARSE_CANCELED,
    NGX_HTTP_PERSTACK_PARSE_NOMEM
} ngx_http_perstack_parse_rc_e;


/* whether p .. p + len is well-formed UTF-8 (RFC 3629) */
int ngx_http_perstack_utf8_valid(const u_char *p, size_t len);

/* yajl over text that passed the checks asked for: how it went */
ngx_http_perstack_parse_rc_e ngx_http_perstack_json_parse(
    const yajl_callbacks *callbacks, void *ctx, const u_char *data,
    size_t len, unsigned checks);



/*
 * The deepest a tree may nest arrays and objects: yajl_tree_free() and the
 * module's own walks recurse once a level.
 */
#define NGX_HTTP_PERSTACK_JSON_DEPTH_MAX  64

/*
 * The most values (arrays, objects, strings, numbers, literals: each one
 * counts) a tree may hold when the caller says 0.  Memory follows the
 * number of values more than the length of the text: "[0,0,...]" is two
 * bytes a value, and each value costs about eighty (its yajl_val, its place
 * in its parent, a key, the copy of a number), so that 4 MiB of it would
 * build two million values and take some 160 MB.  65536 values take about
 * 5 MB, and are one value every 16 bytes of a 1 MiB text (an event line of
 * the default perstack_max_line): real JSON has fewer.
 */
#define NGX_HTTP_PERSTACK_JSON_NODES_MAX    65536

/*
 * The same ratio for a text of up to 4 MiB: the engine's list of
 * containers, about 40 values in 1 KB a container, so that a few thousand
 * containers fit.  About 20 MB at most.
 */
#define NGX_HTTP_PERSTACK_JSON_NODES_LARGE  262144


/*
 * Builds the tree of the JSON text data (len bytes, which need not be
 * followed by a NUL), for yajl_tree_get() and yajl_tree_free(): the same
 * yajl_val nodes yajl_tree_parse() builds, from yajl's callbacks, with no
 * comments and nothing yajl takes that JSON does not ("\f" and "\v" as
 * white space, invalid UTF-8, a string left open at the end, an escaped
 * surrogate without its pair).  Nesting deeper than
 * NGX_HTTP_PERSTACK_JSON_DEPTH_MAX and more than max_nodes values (0: the
 * default, NGX_HTTP_PERSTACK_JSON_NODES_MAX) are refused where the tree is
 * built, before the value over the bound is allocated; so is a string or
 * key with a NUL in it ("\u0000").  Returns the root, or NULL with a short
 * reason in *err (when err is not NULL; never echoing the input).  Text
 * from containers and engines goes through this, never through
 * yajl_tree_parse().
 */
yajl_val ngx_http_perstack_json_tree(const u_char *data, size_t len,
    size_t max_nodes, const char **err);


#endif /* _NGX_HTTP_PERSTACK_JSON_H_INCLUDED_ */
