/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "ngx_http_perstack_json.h"


/* an unknown field's name is only shown to the client up to this length */
#define NGX_HTTP_PERSTACK_FIELD_NAME_MAX  32


typedef struct {
    size_t                       depth;
    unsigned                     object:1;
    /* the next value is the one of a top-level "type" member */
    unsigned                     type_next:1;
    u_char                      *type;
    size_t                      *type_len;
} ngx_http_perstack_classify_ctx_t;


typedef struct {
    ngx_http_perstack_field_t   *fields;
    size_t                       nfields;
    /* the field whose value comes next, or NULL */
    ngx_http_perstack_field_t   *field;
    unsigned                     in_object:1;
    char                        *err;
    size_t                       err_size;
} ngx_http_perstack_body_ctx_t;


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
static int ngx_http_perstack_type_valid(const u_char *value, size_t len);

static int ngx_http_perstack_utf8_valid(const u_char *p, size_t len);
static size_t ngx_http_perstack_utf8_len(const u_char *p, const u_char *last);
static u_char ngx_http_perstack_json_short_escape(u_char c);

static int ngx_http_perstack_body_not_string(void *data);
static int ngx_http_perstack_body_boolean(void *data, int value);
static int ngx_http_perstack_body_number(void *data, const char *value,
    size_t len);
static int ngx_http_perstack_body_string(void *data,
    const unsigned char *value, size_t len);
static int ngx_http_perstack_body_start_map(void *data);
static int ngx_http_perstack_body_map_key(void *data,
    const unsigned char *key, size_t len);
static int ngx_http_perstack_body_not_object(
    ngx_http_perstack_body_ctx_t *ctx);
static int ngx_http_perstack_name_printable(const u_char *name, size_t len);


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


static const yajl_callbacks  ngx_http_perstack_body_callbacks = {
    ngx_http_perstack_body_not_string,
    ngx_http_perstack_body_boolean,
    NULL,
    NULL,
    ngx_http_perstack_body_number,
    ngx_http_perstack_body_string,
    ngx_http_perstack_body_start_map,
    ngx_http_perstack_body_map_key,
    NULL,
    ngx_http_perstack_body_not_string,
    NULL
};


static const u_char  ngx_http_perstack_hex[] = "0123456789abcdef";


ngx_http_perstack_json_rc_e
ngx_http_perstack_json_classify(const u_char *data, size_t len, u_char *type,
    size_t *type_len)
{
    yajl_handle                       h;
    yajl_status                       status;
    ngx_http_perstack_classify_ctx_t  ctx;

    *type_len = 0;

    /*
     * yajl only checks the shape of UTF-8 sequences: overlong forms,
     * surrogates and code points above U+10FFFF pass, and an object
     * forwarded as it is must not carry them
     */

    if (!ngx_http_perstack_utf8_valid(data, len)) {
        return NGX_HTTP_PERSTACK_JSON_INVALID;
    }

    /*
     * yajl also takes "\f" and "\v" for white space; JSON has them nowhere
     * outside escapes, so a line with one is not JSON
     */

    if (memchr(data, '\f', len) != NULL || memchr(data, '\v', len) != NULL) {
        return NGX_HTTP_PERSTACK_JSON_INVALID;
    }

    memset(&ctx, 0, sizeof(ngx_http_perstack_classify_ctx_t));
    ctx.type = type;
    ctx.type_len = type_len;

    h = yajl_alloc(&ngx_http_perstack_classify_callbacks, NULL, &ctx);
    if (h == NULL) {
        return NGX_HTTP_PERSTACK_JSON_NOMEM;
    }

    /* yajl's defaults: one value only, no comments */

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

    if (status != yajl_status_ok) {
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

    if (ngx_http_perstack_type_valid(value, len)) {
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


static int
ngx_http_perstack_type_valid(const u_char *value, size_t len)
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


static int
ngx_http_perstack_utf8_valid(const u_char *p, size_t len)
{
    size_t         n;
    const u_char  *last;

    last = p + len;

    while (p < last) {
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

int
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


int
ngx_http_perstack_body_parse(const u_char *data, size_t len,
    ngx_http_perstack_field_t *fields, size_t nfields, char *err,
    size_t err_size)
{
    size_t                        i;
    yajl_handle                   h;
    yajl_status                   status;
    ngx_http_perstack_body_ctx_t  ctx;

    for (i = 0; i < nfields; i++) {
        fields[i].data = NULL;
        fields[i].len = 0;
    }

    if (err_size > 0) {
        err[0] = '\0';
    }

    memset(&ctx, 0, sizeof(ngx_http_perstack_body_ctx_t));
    ctx.fields = fields;
    ctx.nfields = nfields;
    ctx.err = err;
    ctx.err_size = err_size;

    /*
     * What yajl takes and JSON does not: "\f" and "\v" as white space, and
     * an escaped surrogate without its pair, which yajl turns into "?" or
     * into another character
     */

    if (memchr(data, '\f', len) != NULL || memchr(data, '\v', len) != NULL) {
        snprintf(err, err_size, "body is not valid JSON");
        return -1;
    }

    if (!ngx_http_perstack_json_surrogates_paired(data, len)) {
        snprintf(err, err_size, "body escapes half a surrogate pair");
        return -1;
    }

    h = yajl_alloc(&ngx_http_perstack_body_callbacks, NULL, &ctx);
    if (h == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }

    status = yajl_parse(h, data, len);

    /* a string left open after the object: as in classify() */

    if (status == yajl_status_ok) {
        status = yajl_parse(h, (const u_char *) "\n", 1);
    }

    if (status == yajl_status_ok) {
        status = yajl_complete_parse(h);
    }

    yajl_free(h);

    if (status == yajl_status_ok) {
        return 0;
    }

    /* a callback that stopped the parser has set its own message */

    if (status != yajl_status_client_canceled) {
        snprintf(err, err_size, "body is not valid JSON");
    }

    return -1;
}


void
ngx_http_perstack_body_free(ngx_http_perstack_field_t *fields,
    size_t nfields)
{
    size_t  i;

    for (i = 0; i < nfields; i++) {
        free(fields[i].data);
        fields[i].data = NULL;
        fields[i].len = 0;
    }
}


/* null, arrays, and, through the wrappers below, booleans and numbers */

static int
ngx_http_perstack_body_not_string(void *data)
{
    ngx_http_perstack_body_ctx_t  *ctx;

    ctx = data;

    if (!ctx->in_object) {
        return ngx_http_perstack_body_not_object(ctx);
    }

    snprintf(ctx->err, ctx->err_size, "field \"%s\" must be a string",
             ctx->field->name);

    return 0;
}


static int
ngx_http_perstack_body_boolean(void *data, int value)
{
    return ngx_http_perstack_body_not_string(data);
}


static int
ngx_http_perstack_body_number(void *data, const char *value, size_t len)
{
    return ngx_http_perstack_body_not_string(data);
}


static int
ngx_http_perstack_body_string(void *data, const unsigned char *value,
    size_t len)
{
    ngx_http_perstack_field_t     *field;
    ngx_http_perstack_body_ctx_t  *ctx;

    ctx = data;

    if (!ctx->in_object) {
        return ngx_http_perstack_body_not_object(ctx);
    }

    field = ctx->field;

    if (len > 0 && memchr(value, '\0', len) != NULL) {
        snprintf(ctx->err, ctx->err_size, "field \"%s\" contains a NUL byte",
                 field->name);
        return 0;
    }

    /*
     * yajl lets overlong forms and surrogates through, and decodes a "\u"
     * escape of a lone low surrogate into one
     */

    if (!ngx_http_perstack_utf8_valid(value, len)) {
        snprintf(ctx->err, ctx->err_size, "field \"%s\" is not valid UTF-8",
                 field->name);
        return 0;
    }

    field->data = malloc(len + 1);
    if (field->data == NULL) {
        snprintf(ctx->err, ctx->err_size, "out of memory");
        return 0;
    }

    if (len > 0) {
        memcpy(field->data, value, len);
    }

    field->data[len] = '\0';
    field->len = len;

    ctx->field = NULL;

    return 1;
}


static int
ngx_http_perstack_body_start_map(void *data)
{
    ngx_http_perstack_body_ctx_t  *ctx;

    ctx = data;

    if (ctx->in_object) {
        return ngx_http_perstack_body_not_string(ctx);
    }

    ctx->in_object = 1;

    return 1;
}


static int
ngx_http_perstack_body_map_key(void *data, const unsigned char *key,
    size_t len)
{
    size_t                         i;
    ngx_http_perstack_field_t     *field;
    ngx_http_perstack_body_ctx_t  *ctx;

    ctx = data;

    for (i = 0; i < ctx->nfields; i++) {
        field = &ctx->fields[i];

        if (strlen(field->name) != len || memcmp(field->name, key, len) != 0)
        {
            continue;
        }

        if (field->data != NULL) {
            snprintf(ctx->err, ctx->err_size, "field \"%s\" appears twice",
                     field->name);
            return 0;
        }

        ctx->field = field;

        return 1;
    }

    if (ngx_http_perstack_name_printable(key, len)) {
        snprintf(ctx->err, ctx->err_size, "unknown field \"%.*s\"", (int) len,
                 key);

    } else {
        snprintf(ctx->err, ctx->err_size, "unknown field");
    }

    return 0;
}


static int
ngx_http_perstack_body_not_object(ngx_http_perstack_body_ctx_t *ctx)
{
    snprintf(ctx->err, ctx->err_size, "body must be a JSON object");

    return 0;
}


/*
 * Whether a name the client sent may be put in a message as it is: short,
 * printable ASCII, and neither a quote nor a backslash, so that the message
 * needs no escaping in JSON or in a log.
 */

static int
ngx_http_perstack_name_printable(const u_char *name, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_PERSTACK_FIELD_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (name[i] < 0x20 || name[i] > 0x7e
            || name[i] == '"' || name[i] == '\\')
        {
            return 0;
        }
    }

    return 1;
}


int
ngx_http_perstack_json_depth_ok(const u_char *data, size_t len, size_t max)
{
    size_t        depth;
    const u_char  *p, *end;
    int           in_string;

    depth = 0;
    in_string = 0;

    for (p = data, end = data + len; p < end; p++) {

        if (in_string) {
            if (*p == '\\') {
                /* what follows is escaped, whatever it is */
                p++;

            } else if (*p == '"') {
                in_string = 0;
            }

            continue;
        }

        switch (*p) {

        case '"':
            in_string = 1;
            break;

        case '[':
        case '{':
            if (++depth > max) {
                return 0;
            }

            break;

        case ']':
        case '}':
            if (depth) {
                depth--;
            }

            break;
        }
    }

    return 1;
}
