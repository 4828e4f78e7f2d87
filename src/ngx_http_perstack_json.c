/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "ngx_http_perstack_json.h"



typedef struct {
    size_t                       depth;
    unsigned                     object:1;
    /* the next value is the one of a top-level "type" member */
    unsigned                     type_next:1;
    u_char                      *type;
    size_t                      *type_len;
} ngx_http_perstack_classify_ctx_t;


/* an array or object still open, into which values go */
typedef struct {
    yajl_val                     value;
    /* the room in its values (and keys), which grows by doubling */
    size_t                       size;
    /* in an object: the key of the value to come, malloc()ed, or NULL */
    char                        *key;
} ngx_http_perstack_tree_level_t;


typedef struct {
    yajl_val                         root;
    size_t                           depth;
    size_t                           nodes;
    size_t                           max_nodes;
    const char                      *err;
    ngx_http_perstack_tree_level_t   levels[NGX_HTTP_PERSTACK_JSON_DEPTH_MAX];
} ngx_http_perstack_tree_ctx_t;


static int ngx_http_perstack_json_surrogates_paired(const u_char *data,
    size_t len);
static int ngx_http_perstack_classify_value(void *data);
static int ngx_http_perstack_classify_boolean(void *data, int value);
static int ngx_http_perstack_classify_number(void *data, const char *value,
    size_t len);
static int ngx_http_perstack_classify_string(void *data,
    const unsigned char *value, size_t len);
static int ngx_http_perstack_classify_start(void *data);
static int ngx_http_perstack_classify_start_map(void *data);
static int ngx_http_perstack_classify_map_key(void *data,
    const unsigned char *key, size_t len);
static int ngx_http_perstack_classify_end(void *data);

static size_t ngx_http_perstack_utf8_len(const u_char *p, const u_char *last);
static u_char ngx_http_perstack_json_short_escape(u_char c);

static yajl_val ngx_http_perstack_tree_value(
    ngx_http_perstack_tree_ctx_t *ctx, yajl_type type);
static int ngx_http_perstack_tree_add(ngx_http_perstack_tree_ctx_t *ctx,
    yajl_val v);
static char *ngx_http_perstack_tree_text(ngx_http_perstack_tree_ctx_t *ctx,
    const u_char *data, size_t len);
static int ngx_http_perstack_tree_null(void *data);
static int ngx_http_perstack_tree_boolean(void *data, int value);
static int ngx_http_perstack_tree_number(void *data, const char *value,
    size_t len);
static int ngx_http_perstack_tree_string(void *data,
    const unsigned char *value, size_t len);
static int ngx_http_perstack_tree_start_map(void *data);
static int ngx_http_perstack_tree_map_key(void *data,
    const unsigned char *key, size_t len);
static int ngx_http_perstack_tree_start_array(void *data);
static int ngx_http_perstack_tree_start(ngx_http_perstack_tree_ctx_t *ctx,
    yajl_type type);
static int ngx_http_perstack_tree_end(void *data);


/*
 * yajl_number rather than yajl_integer and yajl_double: yajl then passes
 * numbers as they are, and does not fail on those too large for a long
 * long or a double, which are still JSON
 */

static const yajl_callbacks  ngx_http_perstack_classify_callbacks = {
    ngx_http_perstack_classify_value,
    ngx_http_perstack_classify_boolean,
    NULL,
    NULL,
    ngx_http_perstack_classify_number,
    ngx_http_perstack_classify_string,
    ngx_http_perstack_classify_start_map,
    ngx_http_perstack_classify_map_key,
    ngx_http_perstack_classify_end,
    ngx_http_perstack_classify_start,
    ngx_http_perstack_classify_end
};


static const yajl_callbacks  ngx_http_perstack_tree_callbacks = {
    ngx_http_perstack_tree_null,
    ngx_http_perstack_tree_boolean,
    NULL,
    NULL,
    ngx_http_perstack_tree_number,
    ngx_http_perstack_tree_string,
    ngx_http_perstack_tree_start_map,
    ngx_http_perstack_tree_map_key,
    ngx_http_perstack_tree_end,
    ngx_http_perstack_tree_start_array,
    ngx_http_perstack_tree_end
};


static const u_char  ngx_http_perstack_hex[] = "0123456789abcdef";


/*
 * Runs yajl over the whole of data, with callbacks, as every parser of
 * this file does: comments off, UTF-8 checked, one value and nothing after
 * it.  Before yajl sees the text, what yajl takes and JSON does not is
 * refused: "\f" and "\v" as white space, which JSON has nowhere outside
 * escapes; with NGX_HTTP_PERSTACK_JSON_UTF8, UTF-8 that has the right shape
 * only (yajl lets overlong forms, surrogates and code points above U+10FFFF
 * through); with NGX_HTTP_PERSTACK_JSON_PAIRS, an escaped surrogate without
 * its pair, which yajl turns into "?" or into another character.
 */

ngx_http_perstack_parse_rc_e
ngx_http_perstack_json_parse(const yajl_callbacks *callbacks, void *ctx,
    const u_char *data, size_t len, unsigned checks)
{
    yajl_handle  h;
    yajl_status  status;

    if (memchr(data, '\f', len) != NULL || memchr(data, '\v', len) != NULL) {
        return NGX_HTTP_PERSTACK_PARSE_INVALID;
    }

    if ((checks & NGX_HTTP_PERSTACK_JSON_UTF8)
        && !ngx_http_perstack_utf8_valid(data, len))
    {
        return NGX_HTTP_PERSTACK_PARSE_UTF8;
    }

    if ((checks & NGX_HTTP_PERSTACK_JSON_PAIRS)
        && !ngx_http_perstack_json_surrogates_paired(data, len))
    {
        return NGX_HTTP_PERSTACK_PARSE_SURROGATE;
    }

    h = yajl_alloc(callbacks, NULL, ctx);
    if (h == NULL) {
        return NGX_HTTP_PERSTACK_PARSE_NOMEM;
    }

    /* yajl's defaults, said out loud: they are what makes this JSON */

    yajl_config(h, yajl_allow_comments, 0);
    yajl_config(h, yajl_dont_validate_strings, 0);
    yajl_config(h, yajl_allow_trailing_garbage, 0);
    yajl_config(h, yajl_allow_multiple_values, 0);
    yajl_config(h, yajl_allow_partial_values, 0);

    status = yajl_parse(h, data, len);

    /*
     * yajl waits for more of a string left open after the value, and
     * yajl_complete_parse() does not complain about it: a line break, which
     * a JSON string cannot hold, makes it an error
     */

    if (status == yajl_status_ok) {
        status = yajl_parse(h, (const u_char *) "\n", 1);
    }

    if (status == yajl_status_ok) {
        status = yajl_complete_parse(h);
    }

    yajl_free(h);

    switch (status) {

    case yajl_status_ok:
        return NGX_HTTP_PERSTACK_PARSE_OK;

    case yajl_status_client_canceled:
        return NGX_HTTP_PERSTACK_PARSE_CANCELED;

    default:
        return NGX_HTTP_PERSTACK_PARSE_INVALID;
    }
}


ngx_http_perstack_json_rc_e
ngx_http_perstack_json_classify(const u_char *data, size_t len, u_char *type,
    size_t *type_len)
{
    ngx_http_perstack_parse_rc_e      rc;
    ngx_http_perstack_classify_ctx_t  ctx;

    *type_len = 0;

    memset(&ctx, 0, sizeof(ngx_http_perstack_classify_ctx_t));
    ctx.type = type;
    ctx.type_len = type_len;

    /*
     * the whole line must be valid UTF-8: an object forwarded as it is must
     * not carry overlong forms or surrogates
     */

    rc = ngx_http_perstack_json_parse(&ngx_http_perstack_classify_callbacks,
                                      &ctx, data, len,
                                      NGX_HTTP_PERSTACK_JSON_UTF8);

    if (rc == NGX_HTTP_PERSTACK_PARSE_NOMEM) {
        return NGX_HTTP_PERSTACK_JSON_NOMEM;
    }

    if (rc != NGX_HTTP_PERSTACK_PARSE_OK) {
        *type_len = 0;
        return NGX_HTTP_PERSTACK_JSON_INVALID;
    }

    if (!ctx.object) {
        return NGX_HTTP_PERSTACK_JSON_OTHER;
    }

    return NGX_HTTP_PERSTACK_JSON_OBJECT;
}


/* any value that is not a string */

static int
ngx_http_perstack_classify_value(void *data)
{
    ngx_http_perstack_classify_ctx_t  *ctx;

    ctx = data;

    if (ctx->type_next) {
        /* the last "type" member counts, even when it is not a string */
        *ctx->type_len = 0;
        ctx->type_next = 0;
    }

    return 1;
}


static int
ngx_http_perstack_classify_boolean(void *data, int value)
{
    return ngx_http_perstack_classify_value(data);
}


static int
ngx_http_perstack_classify_number(void *data, const char *value, size_t len)
{
    return ngx_http_perstack_classify_value(data);
}


static int
ngx_http_perstack_classify_string(void *data, const unsigned char *value,
    size_t len)
{
    ngx_http_perstack_classify_ctx_t  *ctx;

    ctx = data;

    if (!ctx->type_next) {
        return 1;
    }

    ctx->type_next = 0;

    if (ngx_http_perstack_json_type_valid(value, len)) {
        memcpy(ctx->type, value, len);
        *ctx->type_len = len;

    } else {
        *ctx->type_len = 0;
    }

    return 1;
}


static int
ngx_http_perstack_classify_start(void *data)
{
    ngx_http_perstack_classify_ctx_t  *ctx;

    ctx = data;

    ngx_http_perstack_classify_value(ctx);
    ctx->depth++;

    return 1;
}


static int
ngx_http_perstack_classify_start_map(void *data)
{
    ngx_http_perstack_classify_ctx_t  *ctx;

    ctx = data;

    if (ctx->depth == 0) {
        ctx->object = 1;
    }

    return ngx_http_perstack_classify_start(ctx);
}


static int
ngx_http_perstack_classify_map_key(void *data, const unsigned char *key,
    size_t len)
{
    ngx_http_perstack_classify_ctx_t  *ctx;

    ctx = data;

    /* members of nested objects do not count */

    if (ctx->depth == 1 && len == sizeof("type") - 1
        && memcmp(key, "type", len) == 0)
    {
        ctx->type_next = 1;
    }

    return 1;
}


static int
ngx_http_perstack_classify_end(void *data)
{
    ngx_http_perstack_classify_ctx_t  *ctx;

    ctx = data;

    ctx->depth--;

    return 1;
}


int
ngx_http_perstack_json_type_valid(const u_char *value, size_t len)
{
    size_t  i;
    u_char  c;

    if (len == 0 || len > NGX_HTTP_PERSTACK_TYPE_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = value[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9')
            || c == '_' || c == '.' || c == ':' || c == '-')
        {
            continue;
        }

        return 0;
    }

    return 1;
}


size_t
ngx_http_perstack_json_escape_size(const u_char *src, size_t len)
{
    size_t         size, n;
    const u_char  *p, *last;

    size = 0;
    p = src;
    last = src + len;

    while (p < last) {

        if (*p >= 0x80) {
            n = ngx_http_perstack_utf8_len(p, last);

            if (n == 0) {
                size += sizeof("\\ufffd") - 1;
                p++;

            } else {
                size += n;
                p += n;
            }

            continue;
        }

        if (ngx_http_perstack_json_short_escape(*p)) {
            size += 2;

        } else if (*p < 0x20 || *p == 0x7f) {
            size += sizeof("\\u00XX") - 1;

        } else {
            size++;
        }

        p++;
    }

    return size;
}


u_char *
ngx_http_perstack_json_escape(u_char *dst, const u_char *src, size_t len)
{
    size_t         n;
    u_char         c, e;
    const u_char  *p, *last;

    p = src;
    last = src + len;

    while (p < last) {

        if (*p >= 0x80) {
            n = ngx_http_perstack_utf8_len(p, last);

            if (n == 0) {
                memcpy(dst, "\\ufffd", sizeof("\\ufffd") - 1);
                dst += sizeof("\\ufffd") - 1;
                p++;

            } else {
                memcpy(dst, p, n);
                dst += n;
                p += n;
            }

            continue;
        }

        c = *p++;
        e = ngx_http_perstack_json_short_escape(c);

        if (e) {
            *dst++ = '\\';
            *dst++ = e;

        } else if (c < 0x20 || c == 0x7f) {
            *dst++ = '\\';
            *dst++ = 'u';
            *dst++ = '0';
            *dst++ = '0';
            *dst++ = ngx_http_perstack_hex[c >> 4];
            *dst++ = ngx_http_perstack_hex[c & 0x0f];

        } else {
            *dst++ = c;
        }
    }

    return dst;
}


int
ngx_http_perstack_utf8_valid(const u_char *p, size_t len)
{
    size_t         n;
    uint64_t       word;
    const u_char  *last;

    last = p + len;

    while (p < last) {

        /* ASCII, as most of the runtime's output is: a word at a time */

        while (last - p >= 8) {
            memcpy(&word, p, 8);

            if (word & 0x8080808080808080ULL) {
                break;
            }

            p += 8;
        }

        if (p == last) {
            break;
        }

        if (*p < 0x80) {
            p++;
            continue;
        }

        n = ngx_http_perstack_utf8_len(p, last);

        if (n == 0) {
            return 0;
        }

        p += n;
    }

    return 1;
}


/*
 * The length of the well-formed UTF-8 sequence of a non-ASCII character at
 * p (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF),
 * or 0.
 */

static size_t
ngx_http_perstack_utf8_len(const u_char *p, const u_char *last)
{
    size_t  n, i;
    u_char  c, lo, hi;

    c = p[0];
    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;

        if (c == 0xe0) {
            lo = 0xa0;

        } else if (c == 0xed) {
            hi = 0x9f;
        }

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;

        if (c == 0xf0) {
            lo = 0x90;

        } else if (c == 0xf4) {
            hi = 0x8f;
        }

    } else {
        return 0;
    }

    if ((size_t) (last - p) < n || p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


/* the letter after "\\" for characters JSON escapes that way, or 0 */

static u_char
ngx_http_perstack_json_short_escape(u_char c)
{
    switch (c) {

    case '"':
        return '"';
    case '\\':
        return '\\';
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    default:
        return 0;
    }
}


/* the 4 hex digits at p as a number, or -1 */

static long
ngx_http_perstack_hex4(const u_char *p, const u_char *end)
{
    long    n;
    size_t  i;
    u_char  c;

    if (end - p < 4) {
        return -1;
    }

    n = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            n = n * 16 + (c - '0');

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            n = n * 16 + ((c | 0x20) - 'a' + 10);

        } else {
            return -1;
        }
    }

    return n;
}


/*
 * Whether every escaped surrogate in the strings of data is one half of a
 * pair: "\uD8xx" to "\uDBxx" followed at once by "\uDCxx" to "\uDFxx".
 */

static int
ngx_http_perstack_json_surrogates_paired(const u_char *data, size_t len)
{
    long           u, v;
    int            in_string;
    const u_char  *p, *end;

    in_string = 0;

    for (p = data, end = data + len; p < end; p++) {

        if (!in_string) {
            in_string = (*p == '"');
            continue;
        }

        if (*p == '"') {
            in_string = 0;
            continue;
        }

        if (*p != '\\' || p + 1 >= end) {
            continue;
        }

        p++;

        if (*p != 'u') {
            continue;
        }

        u = ngx_http_perstack_hex4(p + 1, end);

        if (u < 0xd800 || u > 0xdfff) {
            /* not a surrogate (or not an escape yajl would take) */
            continue;
        }

        if (u >= 0xdc00) {
            return 0;
        }

        /* "\uXXXX" then "\uDCxx" */

        if (end - p < 11 || p[5] != '\\' || p[6] != 'u') {
            return 0;
        }

        v = ngx_http_perstack_hex4(p + 7, end);

        if (v < 0xdc00 || v > 0xdfff) {
            return 0;
        }

        p += 10;
    }

    return 1;
}


yajl_val
ngx_http_perstack_json_tree(const u_char *data, size_t len, size_t max_nodes,
    const char **err)
{
    size_t                         i;
    const char                    *e;
    ngx_http_perstack_parse_rc_e   rc;
    ngx_http_perstack_tree_ctx_t   ctx;

    if (err == NULL) {
        err = &e;
    }

    *err = NULL;

    /* nothing at all: an empty answer, say, whose buffer may be anything */

    if (data == NULL || len == 0) {
        *err = "empty";
        return NULL;
    }

    memset(&ctx, 0, sizeof(ngx_http_perstack_tree_ctx_t));
    ctx.max_nodes = max_nodes ? max_nodes : NGX_HTTP_PERSTACK_JSON_NODES_MAX;

    rc = ngx_http_perstack_json_parse(&ngx_http_perstack_tree_callbacks,
                                      &ctx, data, len,
                                      NGX_HTTP_PERSTACK_JSON_UTF8
                                      |NGX_HTTP_PERSTACK_JSON_PAIRS);

    if (rc == NGX_HTTP_PERSTACK_PARSE_OK) {
        return ctx.root;
    }

    switch (rc) {

    case NGX_HTTP_PERSTACK_PARSE_CANCELED:
        /* the callback that stopped the parser has said why */
        *err = ctx.err;
        break;

    case NGX_HTTP_PERSTACK_PARSE_UTF8:
        *err = "not valid UTF-8";
        break;

    case NGX_HTTP_PERSTACK_PARSE_SURROGATE:
        *err = "half a surrogate pair";
        break;

    case NGX_HTTP_PERSTACK_PARSE_NOMEM:
        *err = "out of memory";
        break;

    default:
        *err = "not JSON";
        break;
    }

    /*
     * everything built so far hangs from the root, but for the keys of
     * values that did not come: the depth is bounded, and so is the
     * recursion of yajl_tree_free()
     */

    for (i = 0; i < ctx.depth; i++) {
        free(ctx.levels[i].key);
    }

    if (ctx.root) {
        yajl_tree_free(ctx.root);
    }

    return NULL;
}


/*
 * A new value of the type, counted, allocated and put in its place at
 * once, so that whatever happens next, the root holds all that was built.
 */

static yajl_val
ngx_http_perstack_tree_value(ngx_http_perstack_tree_ctx_t *ctx,
    yajl_type type)
{
    yajl_val  v;

    if (ctx->nodes >= ctx->max_nodes) {
        ctx->err = "too many values";
        return NULL;
    }

    v = calloc(1, sizeof(struct yajl_val_s));
    if (v == NULL) {
        ctx->err = "out of memory";
        return NULL;
    }

    v->type = type;

    if (ngx_http_perstack_tree_add(ctx, v) != 0) {
        free(v);
        ctx->err = "out of memory";
        return NULL;
    }

    ctx->nodes++;

    return v;
}


static int
ngx_http_perstack_tree_add(ngx_http_perstack_tree_ctx_t *ctx, yajl_val v)
{
    size_t                           n, size;
    yajl_val                         parent, *values;
    const char                     **keys;
    ngx_http_perstack_tree_level_t  *level;

    if (ctx->depth == 0) {
        /* yajl takes one value only */
        ctx->root = v;
        return 0;
    }

    level = &ctx->levels[ctx->depth - 1];
    parent = level->value;

    if (parent->type == yajl_t_array) {
        n = parent->u.array.len;

        if (n == level->size) {
            size = n ? 2 * n : 4;

            values = realloc(parent->u.array.values, size * sizeof(yajl_val));
            if (values == NULL) {
                return -1;
            }

            parent->u.array.values = values;
            level->size = size;
        }

        parent->u.array.values[n] = v;
        parent->u.array.len++;

        return 0;
    }

    n = parent->u.object.len;

    if (n == level->size) {
        size = n ? 2 * n : 4;

        keys = realloc((void *) parent->u.object.keys,
                       size * sizeof(const char *));
        if (keys == NULL) {
            return -1;
        }

        parent->u.object.keys = keys;

        values = realloc(parent->u.object.values, size * sizeof(yajl_val));
        if (values == NULL) {
            return -1;
        }

        parent->u.object.values = values;
        level->size = size;
    }

    /* yajl gives a key before each value of an object */

    parent->u.object.keys[n] = level->key;
    parent->u.object.values[n] = v;
    parent->u.object.len++;
    level->key = NULL;

    return 0;
}


/*
 * A NUL-terminated copy of a string, a key or a number.  The module reads
 * them as C strings: a string with "\u0000" in it would be read as a
 * shorter one, and is refused.
 */

static char *
ngx_http_perstack_tree_text(ngx_http_perstack_tree_ctx_t *ctx,
    const u_char *data, size_t len)
{
    char  *s;

    if (len > 0 && memchr(data, '\0', len) != NULL) {
        ctx->err = "a NUL in a string";
        return NULL;
    }

    s = malloc(len + 1);
    if (s == NULL) {
        ctx->err = "out of memory";
        return NULL;
    }

    if (len > 0) {
        memcpy(s, data, len);
    }

    s[len] = '\0';

    return s;
}


static int
ngx_http_perstack_tree_null(void *data)
{
    return ngx_http_perstack_tree_value(data, yajl_t_null) != NULL;
}


static int
ngx_http_perstack_tree_boolean(void *data, int value)
{
    return ngx_http_perstack_tree_value(data,
                                        value ? yajl_t_true : yajl_t_false)
           != NULL;
}


/*
 * As yajl's tree parser: the text, and the number as a long long and as a
 * double where it is one exactly (a number yajl checked: no sign but '-',
 * no space, base 10).
 */

static int
ngx_http_perstack_tree_number(void *data, const char *value, size_t len)
{
    char      *end;
    yajl_val   v;

    v = ngx_http_perstack_tree_value(data, yajl_t_number);
    if (v == NULL) {
        return 0;
    }

    v->u.number.r = ngx_http_perstack_tree_text(data, (const u_char *) value,
                                                len);
    if (v->u.number.r == NULL) {
        return 0;
    }

    errno = 0;
    v->u.number.i = strtoll(v->u.number.r, &end, 10);

    if (errno == 0 && *end == '\0') {
        v->u.number.flags |= YAJL_NUMBER_INT_VALID;
    }

    errno = 0;
    v->u.number.d = strtod(v->u.number.r, &end);

    if (errno == 0 && *end == '\0') {
        v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
    }

    return 1;
}


static int
ngx_http_perstack_tree_string(void *data, const unsigned char *value,
    size_t len)
{
    yajl_val  v;

    v = ngx_http_perstack_tree_value(data, yajl_t_string);
    if (v == NULL) {
        return 0;
    }

    v->u.string = ngx_http_perstack_tree_text(data, value, len);

    return v->u.string != NULL;
}


static int
ngx_http_perstack_tree_start_map(void *data)
{
    return ngx_http_perstack_tree_start(data, yajl_t_object);
}


static int
ngx_http_perstack_tree_map_key(void *data, const unsigned char *key,
    size_t len)
{
    ngx_http_perstack_tree_ctx_t  *ctx;

    ctx = data;

    ctx->levels[ctx->depth - 1].key = ngx_http_perstack_tree_text(ctx, key,
                                                                  len);

    return ctx->levels[ctx->depth - 1].key != NULL;
}


static int
ngx_http_perstack_tree_start_array(void *data)
{
    return ngx_http_perstack_tree_start(data, yajl_t_array);
}


/* the depth is checked here, before the array or object is made */

static int
ngx_http_perstack_tree_start(ngx_http_perstack_tree_ctx_t *ctx,
    yajl_type type)
{
    yajl_val                         v;
    ngx_http_perstack_tree_level_t  *level;

    if (ctx->depth == NGX_HTTP_PERSTACK_JSON_DEPTH_MAX) {
        ctx->err = "nested too deep";
        return 0;
    }

    v = ngx_http_perstack_tree_value(ctx, type);
    if (v == NULL) {
        return 0;
    }

    level = &ctx->levels[ctx->depth++];
    level->value = v;
    level->size = 0;
    level->key = NULL;

    return 1;
}


static int
ngx_http_perstack_tree_end(void *data)
{
    ngx_http_perstack_tree_ctx_t  *ctx;

    ctx = data;

    ctx->depth--;

    return 1;
}
