
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Approval before anything runs: header rules (perstack_approve), and a
 * callback subrequest with auth_request's semantics
 * (perstack_approval_request): 2xx allows, 401 and 403 pass to the client,
 * anything else is an error.  The callback sees headers only, and learns
 * what it approves from X-Perstack-* headers the module sets; a client's
 * own X-Perstack-* headers (X_Perstack_* too) never reach it.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_approval.h"
#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_response.h"

#include <openssl/sha.h>


static ngx_int_t ngx_http_perstack_approval_headers(ngx_http_request_t *r,
    ngx_http_request_t *sr, ngx_http_perstack_ctx_t *ctx);
static ngx_int_t ngx_http_perstack_approval_header(ngx_http_request_t *sr,
    char *key, ngx_str_t *value);
static ngx_uint_t ngx_http_perstack_approval_name(ngx_str_t *name,
    char *want, ngx_uint_t prefix);
static ngx_int_t ngx_http_perstack_approval_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_perstack_approval_resume(ngx_http_request_t *r);
static ngx_int_t ngx_http_perstack_approval_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/*
 * NGX_OK: every rule is met.  NGX_DECLINED: one is not, and the refusal
 * was sent; *rc is what to return from the handler.
 */

ngx_int_t
ngx_http_perstack_approve(ngx_http_request_t *r,
    ngx_http_perstack_loc_conf_t *plcf, ngx_int_t *rc)
{
    u_char                    *p;
    ngx_str_t                  value, message, extra;
    ngx_uint_t                 i;
    ngx_http_perstack_jw_t     jw;
    ngx_http_complex_value_t  *rules;

    if (plcf->approve == NULL) {
        return NGX_OK;
    }

    rules = plcf->approve->elts;

    for (i = 0; i < plcf->approve->nelts; i++) {

        if (ngx_http_complex_value(r, &rules[i], &value) != NGX_OK) {
            *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DECLINED;
        }

        if (value.len && !(value.len == 1 && value.data[0] == '0')) {
            continue;
        }

        /* the rule's number only: its text or value may be a secret */

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "perstack: approval rule %ui of %ui refused the request",
                      i + 1, plcf->approve->nelts);

        *rc = ngx_http_discard_request_body(r);
        if (*rc != NGX_OK) {
            return NGX_DECLINED;
        }

        message.data = ngx_pnalloc(r->pool, 64);

        ngx_http_perstack_jw_pool(&jw, r->pool, 32);
        ngx_http_perstack_jw_raw(&jw, ",\"rule\":");
        ngx_http_perstack_jw_uint(&jw, i + 1);

        if (message.data == NULL || ngx_http_perstack_jw_failed(&jw)) {
            *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DECLINED;
        }

        p = ngx_sprintf(message.data, "approval rule %ui of %ui is not met",
                        i + 1, plcf->approve->nelts);
        message.len = p - message.data;

        extra.data = jw.start;
        extra.len = ngx_http_perstack_jw_len(&jw);

        *rc = ngx_http_perstack_send_error_json(r, NGX_HTTP_FORBIDDEN,
                                                "not_approved", &message,
                                                &extra);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_perstack_approval_request(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    ngx_http_request_t            *sr;
    ngx_http_post_subrequest_t    *ps;
    ngx_http_perstack_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_perstack_approval_done;
    ps->data = ctx;

    if (ngx_http_subrequest(r, &plcf->approval_uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* as auth_request: the callback gets the headers, not the body */

    sr->request_body = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (sr->request_body == NULL) {
        return NGX_ERROR;
    }

    sr->header_only = 1;

    if (ngx_http_perstack_approval_headers(r, sr, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    /* run when the subrequest is done and this request is posted again */
    r->write_event_handler = ngx_http_perstack_approval_resume;

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_perstack_approval_headers(ngx_http_request_t *r,
    ngx_http_request_t *sr, ngx_http_perstack_ctx_t *ctx)
{
    u_char            *p, digest[SHA256_DIGEST_LENGTH];
    ngx_str_t          value;
    ngx_uint_t         i;
    ngx_list_part_t   *part;
    ngx_table_elt_t   *h, *copy;

    /*
     * The subrequest shares the parent's header list: it gets a list of
     * its own, without what the client wrote in our header namespace.
     */

    if (ngx_list_init(&sr->headers_in.headers, r->pool, 20,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr->headers_in.content_length = NULL;
    sr->headers_in.content_length_n = -1;
    sr->headers_in.content_type = NULL;
    sr->headers_in.transfer_encoding = NULL;
    sr->headers_in.chunked = 0;

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

        if (ngx_http_perstack_approval_name(&h[i].key, "x-perstack-", 1)) {
            continue;
        }

        /* the callback gets no body, so nothing may announce one */
        if (ngx_http_perstack_approval_name(&h[i].key, "content-length", 0)
            || ngx_http_perstack_approval_name(&h[i].key, "content-type", 0)
            || ngx_http_perstack_approval_name(&h[i].key,
                                               "transfer-encoding", 0))
        {
            continue;
        }

        copy = ngx_list_push(&sr->headers_in.headers);
        if (copy == NULL) {
            return NGX_ERROR;
        }

        *copy = h[i];
    }

    if (ngx_http_perstack_approval_header(sr, "X-Perstack-Expert",
                                          &ctx->expert)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    value.data = ngx_pnalloc(r->pool,
                             2 * SHA256_DIGEST_LENGTH + NGX_SIZE_T_LEN);
    if (value.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(value.data, "%uz", ctx->query.len);
    value.len = p - value.data;

    if (ngx_http_perstack_approval_header(sr, "X-Perstack-Query-Length",
                                          &value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    SHA256(ctx->query.data, ctx->query.len, digest);

    value.data = p;
    p = ngx_hex_dump(p, digest, SHA256_DIGEST_LENGTH);
    value.len = p - value.data;

    if (ngx_http_perstack_approval_header(sr, "X-Perstack-Query-SHA256",
                                          &value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->verb != NGX_HTTP_PERSTACK_VERB_NONE) {
        /* about an execution that exists: which, and what for */

        if (ctx->verb == NGX_HTTP_PERSTACK_VERB_CANCEL) {
            ngx_str_set(&value, "cancel");

        } else if (ctx->verb == NGX_HTTP_PERSTACK_VERB_STATUS) {
            ngx_str_set(&value, "status");

        } else {
            ngx_str_set(&value, "resume");
        }

        if (ngx_http_perstack_approval_header(sr, "X-Perstack-Job", &value)
            != NGX_OK
            || ngx_http_perstack_approval_header(sr, "X-Perstack-Execution",
                                                 &ctx->execution)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ctx->answer) {
        ngx_str_set(&value, "answer");

    } else if (ctx->continuing) {
        ngx_str_set(&value, "continue");

    } else {
        ngx_str_set(&value, "new");
    }

    if (ngx_http_perstack_approval_header(sr, "X-Perstack-Job", &value)
        != NGX_OK
        || ngx_http_perstack_approval_header(sr, "X-Perstack-Job-Id",
                                             &ctx->job)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->pending_tool.len
        && ngx_http_perstack_approval_header(sr, "X-Perstack-Tool-Call",
                                             &ctx->pending_tool)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Whether a header's name is want (lowercase, with '-'), or starts with it
 * when prefix is set.  Case does not count, and neither does '_' for '-':
 * with underscores_in_headers, a client's X_Perstack_Expert is
 * X-Perstack-Expert to $http_x_perstack_expert and to many applications.
 */

static ngx_uint_t
ngx_http_perstack_approval_name(ngx_str_t *name, char *want,
    ngx_uint_t prefix)
{
    u_char      c;
    size_t      len;
    ngx_uint_t  i;

    len = ngx_strlen(want);

    if (name->len < len || (!prefix && name->len != len)) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = ngx_tolower(name->data[i]);

        if (c == '_') {
            c = '-';
        }

        if (c != (u_char) want[i]) {
            return 0;
        }
    }

    return 1;
}


static ngx_int_t
ngx_http_perstack_approval_header(ngx_http_request_t *sr, char *key,
    ngx_str_t *value)
{
    u_char           *p;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&sr->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value = *value;

    h->lowcase_key = ngx_pnalloc(sr->pool, h->key.len);
    if (h->lowcase_key == NULL) {
        return NGX_ERROR;
    }

    ngx_strlow(h->lowcase_key, h->key.data, h->key.len);
    h->hash = ngx_hash_key(h->lowcase_key, h->key.len);

    /* header values must not carry line breaks to an upstream */
    for (p = h->value.data; p < h->value.data + h->value.len; p++) {
        if (*p == '\r' || *p == '\n' || *p == '\0') {
            return NGX_ERROR;
        }
    }

#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


static ngx_int_t
ngx_http_perstack_approval_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_perstack_ctx_t  *ctx = data;

    ngx_str_t                          value;
    ngx_uint_t                         i;
    ngx_http_request_t                *r;
    ngx_http_variable_value_t         *vv;
    ngx_http_perstack_loc_conf_t      *plcf;
    ngx_http_perstack_approval_set_t  *set;

    r = sr->parent;

    ctx->approval_done = 1;
    ctx->approval_status = sr->headers_out.status;

    if (ctx->approval_status == 0) {
        /* the callback failed before it had a status: fail closed */
        ctx->approval_status = (rc >= NGX_HTTP_SPECIAL_RESPONSE)
                               ? (ngx_uint_t) rc
                               : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->approval_status == NGX_HTTP_UNAUTHORIZED) {
        ctx->approval_challenge = sr->headers_out.www_authenticate;

        /* a proxied callback's header stays with its upstream */
        if (ctx->approval_challenge == NULL && sr->upstream) {
            ctx->approval_challenge = sr->upstream->headers_in.www_authenticate;
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "perstack approval done: %ui, rc %i",
                   ctx->approval_status, rc);

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    if (plcf->approval_set == NULL) {
        return rc;
    }

    set = plcf->approval_set->elts;

    for (i = 0; i < plcf->approval_set->nelts; i++) {

        /* evaluated in the callback, where $upstream_http_* are its own */
        if (ngx_http_complex_value(sr, &set[i].value, &value) != NGX_OK) {
            return NGX_ERROR;
        }

        vv = &r->variables[set[i].index];

        vv->valid = 1;
        vv->not_found = 0;
        vv->no_cacheable = 0;
        vv->escape = 0;
        vv->data = value.data;
        vv->len = value.len;
    }

    return rc;
}


static void
ngx_http_perstack_approval_resume(ngx_http_request_t *r)
{
    ngx_str_t                 message;
    ngx_uint_t                status;
    ngx_table_elt_t          *h;
    ngx_http_perstack_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_perstack_module);

    if (ctx == NULL || !ctx->approval_done) {
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    status = ctx->approval_status;

    if (status >= 200 && status < 300) {
        ctx->resume(r, ctx);
        return;
    }

    if (status == NGX_HTTP_UNAUTHORIZED || status == NGX_HTTP_FORBIDDEN) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "perstack: the approval callback refused the request "
                      "with %ui", status);

        if (ctx->approval_challenge) {
            h = ngx_list_push(&r->headers_out.headers);
            if (h == NULL) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            *h = *ctx->approval_challenge;
#if (nginx_version >= 1023000)
            h->next = NULL;
#endif
            r->headers_out.www_authenticate = h;
        }

        ngx_str_set(&message, "the approval callback refused this execution");

        ngx_http_finalize_request(r,
                ngx_http_perstack_send_error(r, status, "not_approved",
                                             &message, NULL, NULL));
        return;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "perstack: the approval callback \"%V\" answered %ui, "
                  "refusing the request",
                  &((ngx_http_perstack_loc_conf_t *)
                    ngx_http_get_module_loc_conf(r, ngx_http_perstack_module))
                   ->approval_uri, status);

    ngx_str_set(&message, "the approval callback failed");

    ngx_http_finalize_request(r,
            ngx_http_perstack_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                         "approval_failed", &message,
                                         NULL, NULL));
}


char *
ngx_http_perstack_approval_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_perstack_loc_conf_t *plcf = conf;

    ngx_str_t                         *value;
    ngx_http_variable_t               *v;
    ngx_http_perstack_approval_set_t  *set;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    if (value[1].data[0] != '$') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid variable name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    value[1].len--;
    value[1].data++;

    if (plcf->approval_set == NGX_CONF_UNSET_PTR) {
        plcf->approval_set = ngx_array_create(cf->pool, 1,
                                      sizeof(ngx_http_perstack_approval_set_t));
        if (plcf->approval_set == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    set = ngx_array_push(plcf->approval_set);
    if (set == NULL) {
        return NGX_CONF_ERROR;
    }

    set->name = value[1];

    v = ngx_http_add_variable(cf, &value[1], NGX_HTTP_VAR_CHANGEABLE);
    if (v == NULL) {
        return NGX_CONF_ERROR;
    }

    set->index = ngx_http_get_variable_index(cf, &value[1]);
    if (set->index == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    if (v->get_handler == NULL) {
        v->get_handler = ngx_http_perstack_approval_variable;
        v->data = 0;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = &set->value;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_perstack_approval_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    /* set only once the callback answered */
    v->not_found = 1;

    return NGX_OK;
}
