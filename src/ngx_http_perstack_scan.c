
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#include <stdlib.h>
#include <string.h>

#include "ngx_http_perstack_scan.h"


enum {
    NGX_HTTP_PERSTACK_KEY_OTHER = 0,
    /* at depth 1 */
    NGX_HTTP_PERSTACK_KEY_TYPE,
    NGX_HTTP_PERSTACK_KEY_EXPERT,
    NGX_HTTP_PERSTACK_KEY_CHECKPOINT,
    NGX_HTTP_PERSTACK_KEY_ERROR,
    /* at depth 2 */
    NGX_HTTP_PERSTACK_KEY_PENDING,
    NGX_HTTP_PERSTACK_KEY_NAME,
    NGX_HTTP_PERSTACK_KEY_MESSAGE,
    NGX_HTTP_PERSTACK_KEY_STATUS
};


typedef struct {
    const char  *name;
    size_t       len;
    unsigned     key;
} ngx_http_perstack_scan_key_t;


#define ngx_http_perstack_scan_key(name, key)  { name, sizeof(name) - 1, key }

static const ngx_http_perstack_scan_key_t  ngx_http_perstack_keys1[] = {
    ngx_http_perstack_scan_key("type", NGX_HTTP_PERSTACK_KEY_TYPE),
    ngx_http_perstack_scan_key("expertKey", NGX_HTTP_PERSTACK_KEY_EXPERT),
    ngx_http_perstack_scan_key("checkpoint",
                               NGX_HTTP_PERSTACK_KEY_CHECKPOINT),
    ngx_http_perstack_scan_key("error", NGX_HTTP_PERSTACK_KEY_ERROR),
    { NULL, 0, 0 }
};

static const ngx_http_perstack_scan_key_t  ngx_http_perstack_keys2[] = {
    ngx_http_perstack_scan_key("pendingToolCalls",
                               NGX_HTTP_PERSTACK_KEY_PENDING),
    ngx_http_perstack_scan_key("name", NGX_HTTP_PERSTACK_KEY_NAME),
    ngx_http_perstack_scan_key("message", NGX_HTTP_PERSTACK_KEY_MESSAGE),
    ngx_http_perstack_scan_key("statusCode", NGX_HTTP_PERSTACK_KEY_STATUS),
    { NULL, 0, 0 }
};


static int ngx_http_perstack_scan_null(void *ctx);
static int ngx_http_perstack_scan_boolean(void *ctx, int value);
static int ngx_http_perstack_scan_number(void *ctx, const char *value,
    size_t len);
static int ngx_http_perstack_scan_string(void *ctx,
    const unsigned char *value, size_t len);
static int ngx_http_perstack_scan_start_map(void *ctx);
static int ngx_http_perstack_scan_map_key(void *ctx,
    const unsigned char *key, size_t len);
static int ngx_http_perstack_scan_end_map(void *ctx);
static int ngx_http_perstack_scan_start_array(void *ctx);
static int ngx_http_perstack_scan_end_array(void *ctx);

static int ngx_http_perstack_scan_value(ngx_http_perstack_scan_t *s);
static int ngx_http_perstack_scan_open(ngx_http_perstack_scan_t *s);
static void ngx_http_perstack_scan_close(ngx_http_perstack_scan_t *s);
static void ngx_http_perstack_scan_copied(ngx_http_perstack_scan_t *s);
static void ngx_http_perstack_scan_drop(ngx_http_perstack_scan_t *s);
static int ngx_http_perstack_scan_refuse(ngx_http_perstack_scan_t *s,
    const char *error);
static unsigned ngx_http_perstack_scan_match(
    const ngx_http_perstack_scan_key_t *keys, const unsigned char *key,
    size_t len);
static size_t ngx_http_perstack_scan_cut(const unsigned char *p, size_t len,
    size_t max);
static ngx_http_perstack_scan_rc_e ngx_http_perstack_scan_parse(
    ngx_http_perstack_scan_t *s, const u_char *p, size_t len);
static int ngx_http_perstack_scan_byte(ngx_http_perstack_scan_t *s,
    u_char c);


static const yajl_callbacks  ngx_http_perstack_scan_callbacks = {
    ngx_http_perstack_scan_null,
    ngx_http_perstack_scan_boolean,
    NULL,
    NULL,
    ngx_http_perstack_scan_number,
    ngx_http_perstack_scan_string,
    ngx_http_perstack_scan_start_map,
    ngx_http_perstack_scan_map_key,
    ngx_http_perstack_scan_end_map,
    ngx_http_perstack_scan_start_array,
    ngx_http_perstack_scan_end_array
};


int
ngx_http_perstack_scan_start(ngx_http_perstack_scan_t *s)
{
    ngx_http_perstack_scan_free(s);

    memset(s, 0, sizeof(ngx_http_perstack_scan_t));

    s->yajl = yajl_alloc(&ngx_http_perstack_scan_callbacks, NULL, s);
    if (s->yajl == NULL) {
        s->rc = NGX_HTTP_PERSTACK_SCAN_NOMEM;
        return -1;
    }

    return 0;
}


ngx_http_perstack_scan_rc_e
ngx_http_perstack_scan_feed(ngx_http_perstack_scan_t *s, const u_char *data,
    size_t len)
{
    const u_char  *p, *last, *seg;

    if (s->rc != NGX_HTTP_PERSTACK_SCAN_OK) {
        return s->rc;
    }

    p = data;
    last = data + len;
    seg = s->eliding ? NULL : p;

    for ( /* void */ ; p < last; p++) {

        if (!s->in_string) {

            if (*p == '"') {
                s->in_string = 1;
                s->string_len = 0;
                s->string_max = NGX_HTTP_PERSTACK_SCAN_STRING_MAX;
                s->number_len = 0;
                continue;
            }

            if ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+'
                || *p == '.' || *p == 'e' || *p == 'E')
            {
                if (++s->number_len > NGX_HTTP_PERSTACK_SCAN_NUMBER_MAX) {
                    ngx_http_perstack_scan_refuse(s, "a number is too long");
                    return s->rc;
                }

                continue;
            }

            s->number_len = 0;

            if (*p == '\f' || *p == '\v') {
                /* white space to yajl, not to JSON */
                ngx_http_perstack_scan_refuse(s, "not JSON");
                return s->rc;
            }

            continue;
        }

        /* in a string */

        if (*p == '"' && s->escape == 0 && s->utf8_need == 0) {
            if (s->want_low) {
                ngx_http_perstack_scan_refuse(s, "an unpaired surrogate");
                return s->rc;
            }

            s->in_string = 0;

            if (s->eliding) {
                /* yajl gets the closing quote after what it was given */
                s->eliding = 0;
                seg = p;
            }

            continue;
        }

        if (!ngx_http_perstack_scan_byte(s, *p)) {
            return s->rc;
        }

        s->string_len++;

        if (s->eliding || s->string_len < s->string_max || s->escape
            || s->utf8_need || s->want_low)
        {
            continue;
        }

        /*
         * The string is long, and a character ends here.  yajl gets what
         * comes before, so that its callbacks tell where the string is.
         */

        if (ngx_http_perstack_scan_parse(s, seg, p + 1 - seg)
            != NGX_HTTP_PERSTACK_SCAN_OK)
        {
            return s->rc;
        }

        if (s->gen && s->string_max < NGX_HTTP_PERSTACK_SCAN_PENDING_MAX) {
            /* a string of pendingToolCalls: copied up to the copy's bound */
            s->string_max = NGX_HTTP_PERSTACK_SCAN_PENDING_MAX;
            seg = p + 1;
            continue;
        }

        s->eliding = 1;
        s->elided = 1;
        seg = NULL;
    }

    if (seg != NULL) {
        return ngx_http_perstack_scan_parse(s, seg, last - seg);
    }

    return s->rc;
}


ngx_http_perstack_scan_rc_e
ngx_http_perstack_scan_end(ngx_http_perstack_scan_t *s)
{
    if (s->rc != NGX_HTTP_PERSTACK_SCAN_OK) {
        return s->rc;
    }

    if (s->in_string) {
        /* yajl takes a string left open after the value */
        ngx_http_perstack_scan_refuse(s, "not JSON");
        return s->rc;
    }

    if (yajl_complete_parse(s->yajl) != yajl_status_ok) {
        if (s->rc == NGX_HTTP_PERSTACK_SCAN_OK) {
            ngx_http_perstack_scan_refuse(s, "not JSON");
        }

        return s->rc;
    }

    if (!s->value_seen) {
        ngx_http_perstack_scan_refuse(s, "not JSON");
    }

    return s->rc;
}


void
ngx_http_perstack_scan_free(ngx_http_perstack_scan_t *s)
{
    if (s->yajl) {
        yajl_free(s->yajl);
        s->yajl = NULL;
    }

    if (s->gen) {
        ngx_http_perstack_scan_drop(s);
    }

    free(s->pending);
    s->pending = NULL;
    s->pending_len = 0;
}


/*
 * One byte of a string, other than the quote that ends it: escapes,
 * surrogate pairs, control characters and UTF-8 are checked here, for the
 * bytes yajl never sees.  Returns 1, or 0 when the byte is refused.
 */

static int
ngx_http_perstack_scan_byte(ngx_http_perstack_scan_t *s, u_char c)
{
    unsigned  digit;

    if (s->escape == 1) {

        if (c == 'u') {
            s->escape = 2;
            s->hex = 0;
            return 1;
        }

        if (s->want_low || strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
            return ngx_http_perstack_scan_refuse(s, "a bad escape");
        }

        s->escape = 0;
        return 1;
    }

    if (s->escape >= 2) {

        if (c >= '0' && c <= '9') {
            digit = c - '0';

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            digit = (c | 0x20) - 'a' + 10;

        } else {
            return ngx_http_perstack_scan_refuse(s, "a bad escape");
        }

        s->hex = s->hex * 16 + digit;

        if (++s->escape < 6) {
            return 1;
        }

        s->escape = 0;

        if (s->want_low) {
            if (s->hex < 0xdc00 || s->hex > 0xdfff) {
                return ngx_http_perstack_scan_refuse(s,
                                                     "an unpaired surrogate");
            }

            s->want_low = 0;

        } else if (s->hex >= 0xd800 && s->hex <= 0xdbff) {
            s->want_low = 1;

        } else if (s->hex >= 0xdc00 && s->hex <= 0xdfff) {
            return ngx_http_perstack_scan_refuse(s, "an unpaired surrogate");
        }

        return 1;
    }

    if (s->utf8_need) {
        if (c < s->utf8_lo || c > s->utf8_hi) {
            return ngx_http_perstack_scan_refuse(s, "invalid UTF-8");
        }

        s->utf8_need--;
        s->utf8_lo = 0x80;
        s->utf8_hi = 0xbf;
        return 1;
    }

    if (c == '\\') {
        s->escape = 1;
        return 1;
    }

    if (s->want_low) {
        return ngx_http_perstack_scan_refuse(s, "an unpaired surrogate");
    }

    if (c < 0x20) {
        return ngx_http_perstack_scan_refuse(s,
                                             "a control character in a string");
    }

    if (c < 0x80) {
        return 1;
    }

    /* RFC 3629: no overlong forms, no surrogates, nothing over U+10FFFF */

    s->utf8_lo = 0x80;
    s->utf8_hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        s->utf8_need = 1;

    } else if (c >= 0xe0 && c <= 0xef) {
        s->utf8_need = 2;

        if (c == 0xe0) {
            s->utf8_lo = 0xa0;

        } else if (c == 0xed) {
            s->utf8_hi = 0x9f;
        }

    } else if (c >= 0xf0 && c <= 0xf4) {
        s->utf8_need = 3;

        if (c == 0xf0) {
            s->utf8_lo = 0x90;

        } else if (c == 0xf4) {
            s->utf8_hi = 0x8f;
        }

    } else {
        return ngx_http_perstack_scan_refuse(s, "invalid UTF-8");
    }

    return 1;
}


static ngx_http_perstack_scan_rc_e
ngx_http_perstack_scan_parse(ngx_http_perstack_scan_t *s, const u_char *p,
    size_t len)
{
    if (len == 0 || s->rc != NGX_HTTP_PERSTACK_SCAN_OK) {
        return s->rc;
    }

    if (yajl_parse(s->yajl, p, len) != yajl_status_ok
        && s->rc == NGX_HTTP_PERSTACK_SCAN_OK)
    {
        ngx_http_perstack_scan_refuse(s, "not JSON");
    }

    return s->rc;
}


/* yajl's callbacks */

static int
ngx_http_perstack_scan_null(void *ctx)
{
    ngx_http_perstack_scan_t  *s = ctx;

    if (!ngx_http_perstack_scan_value(s)) {
        return 0;
    }

    if (s->gen) {
        ngx_http_perstack_jw_value_lit(s->gen, "null");
        ngx_http_perstack_scan_copied(s);
    }

    return 1;
}


static int
ngx_http_perstack_scan_boolean(void *ctx, int value)
{
    ngx_http_perstack_scan_t  *s = ctx;

    if (!ngx_http_perstack_scan_value(s)) {
        return 0;
    }

    if (s->gen) {
        if (value) {
            ngx_http_perstack_jw_value_lit(s->gen, "true");

        } else {
            ngx_http_perstack_jw_value_lit(s->gen, "false");
        }

        ngx_http_perstack_scan_copied(s);
    }

    return 1;
}


static int
ngx_http_perstack_scan_number(void *ctx, const char *value, size_t len)
{
    size_t                     i;
    int64_t                    n;
    ngx_http_perstack_scan_t  *s = ctx;

    if (!ngx_http_perstack_scan_value(s)) {
        return 0;
    }

    if (s->depth == 2 && s->map2 && s->key1 == NGX_HTTP_PERSTACK_KEY_ERROR
        && s->key2 == NGX_HTTP_PERSTACK_KEY_STATUS)
    {
        /* an integer, of at most 18 digits */

        s->has_status_code = 0;

        i = (len > 0 && value[0] == '-') ? 1 : 0;

        if (len > i && len - i <= 18) {
            n = 0;

            for ( /* void */ ; i < len; i++) {
                if (value[i] < '0' || value[i] > '9') {
                    break;
                }

                n = n * 10 + (value[i] - '0');
            }

            if (i == len) {
                s->status_code = (value[0] == '-') ? -n : n;
                s->has_status_code = 1;
            }
        }
    }

    if (s->gen) {
        ngx_http_perstack_jw_value_raw(s->gen, (const u_char *) value, len);
        ngx_http_perstack_scan_copied(s);
    }

    return 1;
}


static int
ngx_http_perstack_scan_string(void *ctx, const unsigned char *value,
    size_t len)
{
    unsigned                   elided;
    ngx_http_perstack_scan_t  *s = ctx;

    elided = s->elided;
    s->elided = 0;

    if (!ngx_http_perstack_scan_value(s)) {
        return 0;
    }

    if (s->depth == 1) {

        switch (s->key1) {

        case NGX_HTTP_PERSTACK_KEY_TYPE:

            if (len >= sizeof("perstack.") - 1
                && memcmp(value, "perstack.", sizeof("perstack.") - 1) == 0)
            {
                /* the module's namespace: a container cannot speak in it */
                return ngx_http_perstack_scan_refuse(s,
                           "a type in the module's namespace");
            }

            s->type_len = 0;

            if (!elided && ngx_http_perstack_json_type_valid(value, len)) {
                memcpy(s->type, value, len);
                s->type_len = len;
            }

            break;

        case NGX_HTTP_PERSTACK_KEY_EXPERT:
            s->has_expert = 1;

            if (elided || len > NGX_HTTP_PERSTACK_SCAN_EXPERT_MAX) {
                s->expert_len = NGX_HTTP_PERSTACK_SCAN_EXPERT_MAX + 1;

            } else {
                memcpy(s->expert, value, len);
                s->expert_len = len;
            }

            break;

        default:
            break;
        }

    } else if (s->depth == 2 && s->map2
               && s->key1 == NGX_HTTP_PERSTACK_KEY_ERROR)
    {
        if (s->key2 == NGX_HTTP_PERSTACK_KEY_NAME) {
            s->error_name_len = ngx_http_perstack_scan_cut(value, len,
                                    NGX_HTTP_PERSTACK_SCAN_NAME_MAX);
            memcpy(s->error_name, value, s->error_name_len);
            s->has_error_name = 1;

        } else if (s->key2 == NGX_HTTP_PERSTACK_KEY_MESSAGE) {
            s->error_message_len = ngx_http_perstack_scan_cut(value, len,
                                       NGX_HTTP_PERSTACK_SCAN_MESSAGE_MAX);
            memcpy(s->error_message, value, s->error_message_len);
            s->has_error_message = 1;
        }
    }

    if (s->gen == NULL) {
        return 1;
    }

    if (elided) {
        /* a string of pendingToolCalls over the copy's bound */
        ngx_http_perstack_scan_drop(s);
        return 1;
    }

    ngx_http_perstack_jw_value_str(s->gen, value, len);
    ngx_http_perstack_scan_copied(s);

    return 1;
}


static int
ngx_http_perstack_scan_start_map(void *ctx)
{
    ngx_http_perstack_scan_t  *s = ctx;

    if (s->depth > 0 && !ngx_http_perstack_scan_value(s)) {
        return 0;
    }

    if (!ngx_http_perstack_scan_open(s)) {
        return 0;
    }

    if (s->depth == 2) {
        s->map2 = 1;
        s->key2 = NGX_HTTP_PERSTACK_KEY_OTHER;
    }

    if (s->gen) {
        ngx_http_perstack_jw_open(s->gen, '{');
        ngx_http_perstack_scan_copied(s);
    }

    return 1;
}


static int
ngx_http_perstack_scan_map_key(void *ctx, const unsigned char *key,
    size_t len)
{
    unsigned                   elided;
    ngx_http_perstack_scan_t  *s = ctx;

    elided = s->elided;
    s->elided = 0;

    if (s->depth == 1) {
        s->key1 = elided ? NGX_HTTP_PERSTACK_KEY_OTHER
                         : ngx_http_perstack_scan_match(
                               ngx_http_perstack_keys1, key, len);

    } else if (s->depth == 2) {
        s->key2 = elided ? NGX_HTTP_PERSTACK_KEY_OTHER
                         : ngx_http_perstack_scan_match(
                               ngx_http_perstack_keys2, key, len);
    }

    if (s->gen == NULL) {
        return 1;
    }

    if (elided) {
        ngx_http_perstack_scan_drop(s);
        return 1;
    }

    ngx_http_perstack_jw_key(s->gen, key, len);
    ngx_http_perstack_scan_copied(s);

    return 1;
}


static int
ngx_http_perstack_scan_end_map(void *ctx)
{
    ngx_http_perstack_scan_t  *s = ctx;

    if (s->gen) {
        ngx_http_perstack_jw_close(s->gen);
        ngx_http_perstack_scan_copied(s);
    }

    ngx_http_perstack_scan_close(s);

    return 1;
}


static int
ngx_http_perstack_scan_start_array(void *ctx)
{
    ngx_http_perstack_scan_t  *s = ctx;

    if (!ngx_http_perstack_scan_value(s)) {
        return 0;
    }

    if (s->depth == 2 && s->map2
        && s->key1 == NGX_HTTP_PERSTACK_KEY_CHECKPOINT
        && s->key2 == NGX_HTTP_PERSTACK_KEY_PENDING
        && s->pending_depth == 0)
    {
        /* checkpoint.pendingToolCalls: the last one counts */

        free(s->pending);
        s->pending = NULL;
        s->pending_len = 0;

        s->gen = malloc(sizeof(ngx_http_perstack_jw_t));
        if (s->gen == NULL) {
            s->rc = NGX_HTTP_PERSTACK_SCAN_NOMEM;
            return 0;
        }

        ngx_http_perstack_jw_init(s->gen, ngx_http_perstack_jw_malloc, NULL,
                                  NGX_HTTP_PERSTACK_SCAN_PENDING_MAX);

        s->pending_depth = 3;
    }

    if (!ngx_http_perstack_scan_open(s)) {
        return 0;
    }

    if (s->depth == 2) {
        s->map2 = 0;
    }

    if (s->gen) {
        ngx_http_perstack_jw_open(s->gen, '[');
        ngx_http_perstack_scan_copied(s);
    }

    return 1;
}


static int
ngx_http_perstack_scan_end_array(void *ctx)
{
    ngx_http_perstack_scan_t  *s = ctx;

    if (s->gen) {
        ngx_http_perstack_jw_close(s->gen);
        ngx_http_perstack_scan_copied(s);
    }

    if (s->pending_depth && s->depth == s->pending_depth) {
        s->pending_depth = 0;

        if (s->gen) {
            /* the copy is the pending calls' now */
            s->pending = s->gen->start;
            s->pending_len = ngx_http_perstack_jw_len(s->gen);

            free(s->gen);
            s->gen = NULL;
        }
    }

    ngx_http_perstack_scan_close(s);

    return 1;
}


/* a value inside the top-level object; the line is nothing else */

static int
ngx_http_perstack_scan_value(ngx_http_perstack_scan_t *s)
{
    if (s->depth == 0) {
        return ngx_http_perstack_scan_refuse(s, "not a JSON object");
    }

    if (s->depth == 1 && s->key1 == NGX_HTTP_PERSTACK_KEY_TYPE) {
        /* the last "type" counts, as for a short line: a string sets it */
        s->type_len = 0;
    }

    return 1;
}


static int
ngx_http_perstack_scan_open(ngx_http_perstack_scan_t *s)
{
    if (s->depth >= NGX_HTTP_PERSTACK_JSON_DEPTH_MAX) {
        return ngx_http_perstack_scan_refuse(s, "nested too deep");
    }

    s->depth++;

    return 1;
}


static void
ngx_http_perstack_scan_close(ngx_http_perstack_scan_t *s)
{
    s->depth--;

    if (s->depth == 0) {
        s->value_seen = 1;
    }
}


/* the copy of pendingToolCalls grew: dropped when over its bound */

static void
ngx_http_perstack_scan_copied(ngx_http_perstack_scan_t *s)
{
    if (ngx_http_perstack_jw_failed(s->gen)) {
        ngx_http_perstack_scan_drop(s);
    }
}


static void
ngx_http_perstack_scan_drop(ngx_http_perstack_scan_t *s)
{
    /* pending_depth stays: the array's end is still to be found */
    free(s->gen->start);
    free(s->gen);
    s->gen = NULL;
}


static int
ngx_http_perstack_scan_refuse(ngx_http_perstack_scan_t *s, const char *error)
{
    if (s->rc == NGX_HTTP_PERSTACK_SCAN_OK) {
        s->rc = NGX_HTTP_PERSTACK_SCAN_INVALID;
        s->error = error;
    }

    /* for yajl's callbacks: cancels the parse */
    return 0;
}


static unsigned
ngx_http_perstack_scan_match(const ngx_http_perstack_scan_key_t *keys,
    const unsigned char *key, size_t len)
{
    for ( /* void */ ; keys->name; keys++) {
        if (keys->len == len && memcmp(keys->name, key, len) == 0) {
            return keys->key;
        }
    }

    return NGX_HTTP_PERSTACK_KEY_OTHER;
}


/* at most max bytes of p, not inside a UTF-8 character */

static size_t
ngx_http_perstack_scan_cut(const unsigned char *p, size_t len, size_t max)
{
    if (len <= max) {
        return len;
    }

    len = max;

    while (len && (p[len] & 0xc0) == 0x80) {
        len--;
    }

    return len;
}
