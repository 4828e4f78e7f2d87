
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * What every step of a request needs from HTTP, below all of them: a
 * request header by name, a response header, the JSON error answered
 * before a stream starts, and values escaped for the error log.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_response.h"
#include "ngx_http_perstack_metrics.h"
#include "ngx_http_perstack_json.h"


/*
 * A value that came from a client, a container or the engine, fit for the
 * error log: control bytes, '"', '\\' and bytes past 0x7e are written
 * \\xNN, as nginx's access log writes them, so that the value can neither
 * start a line of its own nor end the quotes it is logged in.  The value
 * itself when nothing needs escaping; memory from pool.
 */

#define ngx_http_perstack_log_unsafe(c)                                      \
    ((c) < 0x20 || (c) > 0x7e || (c) == '"' || (c) == '\\')

ngx_str_t *
ngx_http_perstack_log_escape(ngx_pool_t *pool, ngx_str_t *value)
{
    u_char      *p, *s, *last;
    size_t       n;
    ngx_str_t   *esc;

    static u_char     hex[] = "0123456789ABCDEF";
    static ngx_str_t  failed = ngx_string("(not logged: no memory)");

    n = 0;
    last = value->data + value->len;

    for (s = value->data; s < last; s++) {
        if (ngx_http_perstack_log_unsafe(*s)) {
            n++;
        }
    }

    if (n == 0) {
        return value;
    }

    esc = ngx_palloc(pool, sizeof(ngx_str_t));
    if (esc == NULL) {
        return &failed;
    }

    esc->data = ngx_pnalloc(pool, value->len + 3 * n);
    if (esc->data == NULL) {
        return &failed;
    }

    p = esc->data;

    for (s = value->data; s < last; s++) {
        if (ngx_http_perstack_log_unsafe(*s)) {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[*s >> 4];
            *p++ = hex[*s & 0xf];

        } else {
            *p++ = *s;
        }
    }

    esc->len = p - esc->data;

    return esc;
}


/* The first request header of that name, or NULL. */

ngx_table_elt_t *
ngx_http_perstack_header_in(ngx_http_request_t *r, char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }

    return NULL;
}


/* A response header; key and value must outlive the request (literals). */

ngx_table_elt_t *
ngx_http_perstack_add_header(ngx_http_request_t *r, char *key, char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = (u_char *) value;
    h->value.len = ngx_strlen(value);
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return h;
}


ngx_int_t
ngx_http_perstack_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, ngx_str_t *message, const char *extra_name,
    ngx_str_t *extra_value)
{
    ngx_str_t               extra;
    ngx_http_perstack_jw_t  jw;

    ngx_str_null(&extra);

    if (extra_name) {
        ngx_http_perstack_jw_pool(&jw, r->pool, 128);
        ngx_http_perstack_jw_raw(&jw, ",");
        ngx_http_perstack_jw_str(&jw, (u_char *) extra_name,
                                 ngx_strlen(extra_name));
        ngx_http_perstack_jw_raw(&jw, ":");
        ngx_http_perstack_jw_str(&jw, extra_value->data, extra_value->len);

        if (ngx_http_perstack_jw_failed(&jw)) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        extra.data = jw.start;
        extra.len = ngx_http_perstack_jw_len(&jw);
    }

    return ngx_http_perstack_send_error_json(r, status, code, message,
                                             &extra);
}


/*
 * extra: more members for the JSON object, each after a comma, or empty;
 * written by the JSON writer as all the rest
 */

ngx_int_t
ngx_http_perstack_send_error_json(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, ngx_str_t *message, ngx_str_t *extra)
{
    ngx_http_perstack_jw_t         jw;
    ngx_http_perstack_ctx_t       *ctx;
    ngx_http_perstack_loc_conf_t  *plcf;

    /* the refusal's code, for $perstack_outcome, and counted once */

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_perstack_module);

    if (ctx == NULL && r == r->main) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_perstack_ctx_t));
        if (ctx) {
            ngx_http_set_ctx(r, ctx, ngx_http_perstack_module);
        }
    }

    if (ctx && ctx->log.outcome == NULL) {
        ctx->log.outcome = code;

        plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

        if (plcf->execute == 1) {
            ngx_http_perstack_metrics_refused(status, code);
        }
    }

    ngx_http_perstack_jw_pool(&jw, r->pool, 256 + extra->len);
    ngx_http_perstack_jw_raw(&jw, "{\"error\":");
    ngx_http_perstack_jw_str(&jw, (u_char *) code, ngx_strlen(code));
    ngx_http_perstack_jw_raw(&jw, ",\"message\":");
    ngx_http_perstack_jw_str(&jw, message->data, message->len);
    ngx_http_perstack_jw_rawn(&jw, extra->data, extra->len);
    ngx_http_perstack_jw_raw(&jw, "}\n");

    return ngx_http_perstack_send_json(r, status, &jw);
}


/* a JSON body, the writer's text (checked here), with its status */

ngx_int_t
ngx_http_perstack_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_http_perstack_jw_t *jw)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    b = ngx_calloc_buf(r->pool);

    if (b == NULL || ngx_http_perstack_jw_failed(jw)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = jw->start;
    b->last = jw->pos;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * An execution's stream starts: its format's type, no caching, nothing
 * held back by a proxy in front, and which execution it is.
 */

ngx_int_t
ngx_http_perstack_stream_headers(ngx_http_request_t *r, ngx_uint_t format,
    ngx_str_t *execution)
{
    ngx_table_elt_t  *h;

    r->headers_out.status = NGX_HTTP_OK;

    if (format == NGX_HTTP_PERSTACK_FORMAT_NDJSON) {
        ngx_str_set(&r->headers_out.content_type, "application/x-ndjson");

    } else {
        ngx_str_set(&r->headers_out.content_type, "text/event-stream");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);

    /* X-Accel-Buffering: a proxy in front must not hold events back */

    if (ngx_http_perstack_add_header(r, "Cache-Control", "no-cache") == NULL
        || ngx_http_perstack_add_header(r, "X-Accel-Buffering", "no") == NULL
        || (h = ngx_http_perstack_add_header(r, "X-Perstack-Execution", ""))
           == NULL)
    {
        return NGX_ERROR;
    }

    h->value = *execution;

    return ngx_http_send_header(r);
}


/*
 * The JSON writer's text in a pool, starting with room for hint bytes:
 * what it outgrows stays in the pool until the pool goes.
 */

static u_char *
ngx_http_perstack_jw_pool_grow(void *data, u_char *old, size_t used,
    size_t size)
{
    ngx_pool_t  *pool = data;

    u_char  *p;

    p = ngx_pnalloc(pool, size);

    if (p && used) {
        ngx_memcpy(p, old, used);
    }

    return p;
}


void
ngx_http_perstack_jw_pool(ngx_http_perstack_jw_t *jw, ngx_pool_t *pool,
    size_t hint)
{
    ngx_http_perstack_jw_init(jw, ngx_http_perstack_jw_pool_grow, pool, 0);

    jw->start = ngx_pnalloc(pool, hint);

    if (jw->start == NULL) {
        jw->failed = 1;
        return;
    }

    jw->pos = jw->start;
    jw->end = jw->start + hint;
}
