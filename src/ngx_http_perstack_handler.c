
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The request handler of "perstack_execute": the request's arguments and
 * body, and the chain of steps that turns it into an execution, each of
 * which moves the request on through ctx->resume once it is done:
 * cross-site checks, the approval, the workspace, admission, and the
 * execution.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_handler.h"
#include "ngx_http_perstack_approval.h"
#include "ngx_http_perstack_attach.h"
#include "ngx_http_perstack_exec.h"
#include "ngx_http_perstack_body.h"
#include "ngx_http_perstack_limit.h"
#include "ngx_http_perstack_origin.h"
#include "ngx_http_perstack_random.h"
#include "ngx_http_perstack_response.h"
#include "ngx_http_perstack_workspace.h"


/* why a request is refused before anything runs for it */
typedef struct {
    ngx_uint_t                       status;
    const char                      *code;
    ngx_str_t                        message;
    /* a member of the JSON error with the value the request gave */
    const char                      *extra_name;
    ngx_str_t                       *extra_value;
    /* the body parser's words, which message may point to */
    char                             err[128];
} ngx_http_perstack_refusal_t;


static void ngx_http_perstack_continue(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx);
static void ngx_http_perstack_handler_finalize(ngx_http_request_t *r,
    ngx_int_t rc, ngx_http_perstack_refusal_t *ref);
static ngx_int_t ngx_http_perstack_read_request(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx, ngx_http_perstack_refusal_t *ref);
static void ngx_http_perstack_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_perstack_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_perstack_job_id_valid(ngx_str_t *job);
static ngx_int_t ngx_http_perstack_field_copy(ngx_http_request_t *r,
    ngx_http_perstack_field_t *field, ngx_str_t *value);
static ngx_int_t ngx_http_perstack_arg(ngx_http_request_t *r, char *name,
    ngx_str_t *value);
static ngx_int_t ngx_http_perstack_expert_allowed(
    ngx_http_perstack_loc_conf_t *plcf, ngx_str_t *expert);


ngx_int_t
ngx_http_perstack_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_str_t                      message;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_perstack_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    /*
     * Requests from pages of other sites first, and POSTs that are not
     * JSON: before anything is read or run for them.
     */

    if (ngx_http_perstack_origin_check(r, plcf, &rc) != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_POST|NGX_HTTP_DELETE))) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ngx_http_perstack_add_header(r, "Allow", "GET, POST, DELETE")
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&message, "an execution is started by GET or POST, "
                              "and cancelled by DELETE");

        return ngx_http_perstack_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                            "method_not_allowed", &message,
                                            NULL, NULL);
    }

    /* header rules first: a request they refuse is not even read */

    if (ngx_http_perstack_approve(r, plcf, &rc) != NGX_OK) {
        return rc;
    }

    /*
     * The body is parsed from memory: a larger one is refused, not spooled;
     * when its length is announced, before it is read.
     */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (r->headers_in.content_length_n > (off_t) clcf->client_body_buffer_size)
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        ngx_str_set(&message, "the request body is larger than "
                              "client_body_buffer_size");

        return ngx_http_perstack_send_error(r,
                                            NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                            "body_too_large", &message,
                                            NULL, NULL);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_perstack_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


#define NGX_HTTP_PERSTACK_FIELDS  4


/*
 * The request's body has been read (or there is none): its arguments
 * checked, and the chain of steps started.  Every way the request ends
 * here goes through ngx_http_perstack_handler_finalize().
 */

static void
ngx_http_perstack_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_http_perstack_ctx_t      *ctx;
    ngx_http_perstack_refusal_t   ref;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_perstack_ctx_t));
    if (ctx == NULL) {
        ngx_http_perstack_handler_finalize(r, NGX_ERROR, NULL);
        return;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_perstack_module);

    ctx->resume = ngx_http_perstack_continue;

    /* a request about an execution that exists never starts one */

    rc = ngx_http_perstack_attach_target(r, ctx);

    if (rc == NGX_OK) {
        ngx_http_perstack_continue(r, ctx);
        return;
    }

    if (rc == NGX_HTTP_BAD_REQUEST) {
        ngx_memzero(&ref, sizeof(ngx_http_perstack_refusal_t));
        ref.status = NGX_HTTP_BAD_REQUEST;
        ref.code = "bad_execution";
        ngx_str_set(&ref.message, "an execution is named by its id, 32 "
                                  "lowercase hex digits, and a position by "
                                  "\"<id>-<n>\"");
        ngx_http_perstack_handler_finalize(r, NGX_DECLINED, &ref);
        return;
    }

    if (rc != NGX_DECLINED) {
        ngx_http_perstack_handler_finalize(r, NGX_ERROR, NULL);
        return;
    }

    rc = ngx_http_perstack_read_request(r, ctx, &ref);

    if (rc != NGX_OK) {
        ngx_http_perstack_handler_finalize(r, rc, &ref);
        return;
    }

    ngx_http_perstack_continue(r, ctx);
}


/*
 * The one way the handler ends a request before its execution starts: a
 * refusal (NGX_DECLINED) is answered with its status and JSON body, any
 * other error with 500.
 */

static void
ngx_http_perstack_handler_finalize(ngx_http_request_t *r, ngx_int_t rc,
    ngx_http_perstack_refusal_t *ref)
{
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "perstack handler finalize: %i \"%s\"", rc,
                   ref && rc == NGX_DECLINED ? ref->code : "");

    if (rc == NGX_DECLINED) {
        rc = ngx_http_perstack_send_error(r, ref->status, ref->code,
                                          &ref->message, ref->extra_name,
                                          ref->extra_value);

    } else {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * The request's arguments: from a JSON body, or from the query string;
 * what the configuration pins wins.  NGX_DECLINED: refused, as ref says.
 */

static ngx_int_t
ngx_http_perstack_read_request(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx, ngx_http_perstack_refusal_t *ref)
{
    ngx_int_t                      rc;
    ngx_str_t                      body, message, answer;
    ngx_uint_t                     status, i;
    const char                    *code;
    ngx_http_perstack_field_t      fields[NGX_HTTP_PERSTACK_FIELDS];
    ngx_http_perstack_loc_conf_t  *plcf;

    static char  *names[NGX_HTTP_PERSTACK_FIELDS] = {
        "expert", "query", "jobId", "answer"
    };

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    ref->extra_name = NULL;
    ref->extra_value = NULL;

    ngx_memzero(fields, sizeof(fields));

    for (i = 0; i < NGX_HTTP_PERSTACK_FIELDS; i++) {
        fields[i].name = names[i];
    }

    ngx_str_null(&answer);

    status = NGX_HTTP_BAD_REQUEST;
    code = "bad_request";
    ngx_str_null(&message);

    if (r->method == NGX_HTTP_POST) {
        rc = ngx_http_perstack_read_body(r, &body);

        if (rc == NGX_DECLINED) {
            status = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
            code = "body_too_large";
            ngx_str_set(&message, "the request body is larger than "
                                  "client_body_buffer_size");
            goto failed;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        if (body.len == 0) {
            ngx_str_set(&message, "the request body is empty: send a JSON "
                                  "object with \"expert\" and \"query\"");
            goto failed;
        }

        if (ngx_http_perstack_body_parse(body.data, body.len, fields,
                                         NGX_HTTP_PERSTACK_FIELDS,
                                         ref->err, sizeof(ref->err))
            != 0)
        {
            message.data = (u_char *) ref->err;
            message.len = ngx_strlen(ref->err);
            goto failed;
        }

        /* the values must outlive the parser's malloc()ed copies */

        if (ngx_http_perstack_field_copy(r, &fields[0], &ctx->expert)
               != NGX_OK
            || ngx_http_perstack_field_copy(r, &fields[1], &ctx->query)
               != NGX_OK
            || ngx_http_perstack_field_copy(r, &fields[2], &ctx->job)
               != NGX_OK
            || ngx_http_perstack_field_copy(r, &fields[3], &answer)
               != NGX_OK)
        {
            ngx_http_perstack_body_free(fields, NGX_HTTP_PERSTACK_FIELDS);
            return NGX_ERROR;
        }

        ngx_http_perstack_body_free(fields, NGX_HTTP_PERSTACK_FIELDS);

    } else {
        rc = ngx_http_perstack_arg(r, "expert", &ctx->expert);

        if (rc == NGX_OK) {
            rc = ngx_http_perstack_arg(r, "query", &ctx->query);
        }

        if (rc == NGX_OK) {
            rc = ngx_http_perstack_arg(r, "jobId", &ctx->job);
        }

        if (rc == NGX_OK) {
            rc = ngx_http_perstack_arg(r, "answer", &answer);
        }

        if (rc == NGX_DECLINED) {
            ngx_str_set(&message, "an argument contains a NUL byte");
            goto failed;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* what the configuration pins wins over what the request says */

    if (plcf->expert) {
        if (ngx_http_complex_value(r, plcf->expert, &ctx->expert) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (plcf->query) {
        if (ngx_http_complex_value(r, plcf->query, &ctx->query) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_complex_value(r, plcf->image, &ctx->image) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->expert.len == 0) {
        ngx_str_set(&message, "no expert given: send \"expert\" in the JSON "
                              "body or as an argument");
        goto failed;
    }

    if ((ctx->job.data && ctx->job.len == 0)
        || (answer.data && answer.len == 0))
    {
        ngx_str_set(&message, "\"jobId\" and \"answer\" must not be empty");
        goto failed;
    }

    /* an answer to a pending interactive tool call takes the query's place */

    if (answer.len) {
        if (plcf->query) {
            /* a pinned query pins every text the agent is given */
            status = NGX_HTTP_FORBIDDEN;
            code = "answer_not_allowed";
            ngx_str_set(&message, "this location pins the query: it takes "
                                  "no answer");
            goto failed;
        }

        if (ctx->job.len == 0) {
            ngx_str_set(&message, "an answer needs the \"jobId\" of the job "
                                  "that asked");
            goto failed;
        }

        if (ctx->query.len) {
            ngx_str_set(&message, "send either \"query\" or \"answer\", "
                                  "not both");
            goto failed;
        }

        ctx->query = answer;
        ctx->answer = 1;
    }

    if (ctx->query.len == 0) {
        ngx_str_set(&message, "no query given: send \"query\" in the JSON "
                              "body or as an argument");
        goto failed;
    }

    if (ngx_strlchr(ctx->expert.data, ctx->expert.data + ctx->expert.len,
                    '\0')
        || ngx_strlchr(ctx->query.data, ctx->query.data + ctx->query.len,
                       '\0'))
    {
        ngx_str_set(&message, "the expert or the query contains a NUL byte");
        goto failed;
    }

    if (ctx->query.len > plcf->max_query) {
        ngx_str_set(&message, "the query is too long");
        goto failed;
    }

    if (ctx->job.len) {
        if (plcf->workspace == NULL) {
            ngx_str_set(&message, "jobs cannot be continued here: this "
                                  "location keeps no workspace");
            goto failed;
        }

        if (ngx_http_perstack_job_id_valid(&ctx->job) != NGX_OK) {
            ngx_str_set(&message, "\"jobId\" must be 1 to 64 letters, "
                                  "digits, '-' or '_'");
            goto failed;
        }

        ctx->continuing = 1;

    } else {
        /* a new job: its id is the module's, so the client can continue */
        ctx->job.data = ngx_pnalloc(r->pool, NGX_HTTP_PERSTACK_JOB_ID_LEN);
        if (ctx->job.data == NULL) {
            return NGX_ERROR;
        }

        ngx_http_perstack_random_string(ctx->job.data,
                                        NGX_HTTP_PERSTACK_JOB_ID_LEN,
                                        "0123456789abcdefghijklmnopqrstuvwxyz");
        ctx->job.len = NGX_HTTP_PERSTACK_JOB_ID_LEN;
    }

    if (ngx_http_perstack_expert_allowed(plcf, &ctx->expert) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "perstack: expert \"%V\" is not allowed",
                      ngx_http_perstack_log_escape(r->pool, &ctx->expert));

        ref->status = NGX_HTTP_FORBIDDEN;
        ref->code = "expert_not_allowed";
        ngx_str_set(&ref->message, "this expert may not run here");
        ref->extra_name = "expert";
        ref->extra_value = &ctx->expert;

        return NGX_DECLINED;
    }

    if (ctx->image.len == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "perstack: perstack_image evaluated to an empty string");
        return NGX_ERROR;
    }

    return NGX_OK;

failed:

    ngx_http_perstack_body_free(fields, NGX_HTTP_PERSTACK_FIELDS);

    /* the module's words: a member's name is quoted only when printable */
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "perstack: request refused: %V", &message);

    ref->status = status;
    ref->code = code;
    ref->message = message;

    return NGX_DECLINED;
}


/*
 * The steps between a valid request and its execution, each of which may
 * wait: the approval callback, the workspace and admission.  Each step
 * calls this again when it is done.
 */

static void
ngx_http_perstack_continue(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_http_perstack_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    if (ctx->verb != NGX_HTTP_PERSTACK_VERB_NONE) {
        /* the same approval as a new execution's, then the record */

        if (plcf->approval_uri.len && !ctx->approval_done) {
            rc = ngx_http_perstack_approval_request(r, ctx);

            if (rc != NGX_OK) {
                if (rc == NGX_ERROR) {
                    ngx_http_perstack_handler_finalize(r, NGX_ERROR, NULL);
                }

                return;
            }
        }

        ngx_http_perstack_attach(r, ctx);
        return;
    }

    /*
     * Nothing is written, and no answer depends on a job or a workspace,
     * before the approval allowed the request.  The callback is told which
     * tool call a continuation answers, from the module's record of the
     * job, when the workspace can be named before the callback answers.
     */

    if (plcf->workspace && plcf->approval_uri.len && ctx->continuing
        && !plcf->workspace_after_approval && !ctx->workspace_peeked)
    {
        rc = ngx_http_perstack_workspace_peek(r, ctx);

        if (rc != NGX_OK) {
            if (rc == NGX_ERROR) {
                ngx_http_perstack_handler_finalize(r, NGX_ERROR, NULL);
            }

            return;
        }
    }

    if (plcf->approval_uri.len && !ctx->approval_done) {
        rc = ngx_http_perstack_approval_request(r, ctx);

        if (rc != NGX_OK) {
            if (rc == NGX_ERROR) {
                ngx_http_perstack_handler_finalize(r, NGX_ERROR, NULL);
            }

            return;
        }
    }

    if (plcf->workspace && !ctx->workspace_done) {
        rc = ngx_http_perstack_workspace_prepare(r, ctx);

        if (rc != NGX_OK) {
            /* waiting (NGX_AGAIN), or answered already (NGX_DONE) */
            if (rc == NGX_ERROR) {
                ngx_http_perstack_handler_finalize(r, NGX_ERROR, NULL);
            }

            return;
        }
    }

    if (plcf->limit && ctx->slot == NULL) {
        rc = ngx_http_perstack_limit_acquire(r, ctx);

        if (rc != NGX_OK) {
            /* queued (NGX_AGAIN), or refused with 429 (NGX_DONE) */
            if (rc == NGX_ERROR) {
                ngx_http_perstack_handler_finalize(r, NGX_ERROR, NULL);
            }

            return;
        }
    }

    if (ngx_http_perstack_exec_start(r, ctx) != NGX_OK) {
        ngx_http_perstack_handler_finalize(r, NGX_ERROR, NULL);
    }
}


static ngx_int_t
ngx_http_perstack_job_id_valid(ngx_str_t *job)
{
    u_char  *p, c;

    if (job->len == 0 || job->len > NGX_HTTP_PERSTACK_JOB_ID_MAX) {
        return NGX_DECLINED;
    }

    for (p = job->data; p < job->data + job->len; p++) {
        c = *p;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_perstack_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    size_t                     len;
    u_char                    *p;
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    ngx_http_core_loc_conf_t  *clcf;

    ngx_str_null(body);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file || r->request_body->temp_file) {
            return NGX_DECLINED;
        }

        len += b->last - b->pos;
    }

    /*
     * A body that came with the headers sits in the header buffer and never
     * reaches a file: its size is what decides.
     */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (len > (size_t) clcf->client_body_buffer_size) {
        return NGX_DECLINED;
    }

    if (len == 0) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL) {
        body->data = cl->buf->pos;
        body->len = len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for ( /* void */ ; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_perstack_field_copy(ngx_http_request_t *r,
    ngx_http_perstack_field_t *field, ngx_str_t *value)
{
    if (field->data == NULL) {
        ngx_str_null(value);
        return NGX_OK;
    }

    if (field->len == 0) {
        /* present but empty: not the same as absent */
        ngx_str_set(value, "");
        return NGX_OK;
    }

    value->data = ngx_pnalloc(r->pool, field->len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(value->data, field->data, field->len);
    value->len = field->len;

    return NGX_OK;
}


/*
 * An argument, decoded as a browser's form encoding writes it: "+" is a
 * space.  NGX_DECLINED when it decodes to something with a NUL byte.
 */

static ngx_int_t
ngx_http_perstack_arg(ngx_http_request_t *r, char *name, ngx_str_t *value)
{
    u_char     *src, *dst, *p;
    ngx_str_t   raw;

    ngx_str_null(value);

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, raw.len);
    if (p == NULL && raw.len) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, raw.data, raw.len);

    for (dst = p; dst < p + raw.len; dst++) {
        if (*dst == '+') {
            *dst = ' ';
        }
    }

    src = p;
    dst = p;
    ngx_unescape_uri(&dst, &src, raw.len, 0);

    value->data = p;
    value->len = dst - p;

    if (ngx_strlchr(value->data, value->data + value->len, '\0')) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_perstack_expert_allowed(ngx_http_perstack_loc_conf_t *plcf,
    ngx_str_t *expert)
{
    int  rc;

    /* whether it matches, not where: one pair, made once per worker */
    static pcre2_match_data  *md;

    if (md == NULL) {
        md = pcre2_match_data_create(1, NULL);
        if (md == NULL) {
            return NGX_ERROR;
        }
    }

    rc = pcre2_match(plcf->expert_allow, expert->data, expert->len, 0,
                     PCRE2_ANCHORED|PCRE2_ENDANCHORED, md, NULL);

    return rc >= 0 ? NGX_OK : NGX_DECLINED;
}
