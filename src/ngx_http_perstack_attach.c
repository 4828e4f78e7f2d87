
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Requests about an execution that exists, in any worker: a client that
 * follows it (again) from the event after the last one it had, its
 * status, and its cancel.  They are answered from the execution's record
 * (ngx_http_perstack_record.c), never by starting anything; a follower is
 * ngx_http_perstack_follow.c's.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_attach.h"
#include "ngx_http_perstack_follow.h"
#include "ngx_http_perstack_record.h"
#include "ngx_http_perstack_process.h"
#include "ngx_http_perstack_response.h"
#include "ngx_http_perstack_writer.h"



#define NGX_HTTP_PERSTACK_NOT_ACCEPTABLE  406





static ngx_int_t ngx_http_perstack_attach_parse(ngx_str_t *value,
    ngx_http_perstack_ctx_t *ctx, ngx_uint_t position);
static ngx_int_t ngx_http_perstack_attach_uint(u_char *p, size_t len,
    uint64_t *value);
static ngx_int_t ngx_http_perstack_attach_wants_json(ngx_http_request_t *r);
static ngx_int_t ngx_http_perstack_attach_refuses(ngx_http_request_t *r,
    ngx_uint_t format);
static ngx_int_t ngx_http_perstack_attach_status(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx, ngx_http_perstack_record_meta_t *meta,
    ngx_uint_t status, const char *state);
static void ngx_http_perstack_attach_time(ngx_http_perstack_jw_t *jw,
    uint64_t ms);


/*
 * Whether the request is about an execution that exists, and which: a
 * Last-Event-ID (the header, or the lastEventId argument) names one and
 * the position of the last event the client had; "execution" names one,
 * with "after" the position; DELETE cancels it; "execution" with Accept:
 * application/json asks for its status.  NGX_DECLINED: it is not;
 * NGX_HTTP_BAD_REQUEST: it is, but the name is not one.
 */

ngx_int_t
ngx_http_perstack_attach_target(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    u_char           *dst, *src;
    ngx_str_t         value, after;
    ngx_table_elt_t  *h;

    h = ngx_http_perstack_header_in(r, "Last-Event-ID");

    if (h == NULL && ngx_http_arg(r, (u_char *) "lastEventId",
                                  sizeof("lastEventId") - 1, &value)
                     == NGX_OK)
    {
        /* an argument may be escaped: "%2D" for "-" */
        dst = ngx_pnalloc(r->pool, value.len);
        if (dst == NULL) {
            return NGX_ERROR;
        }

        src = value.data;
        value.data = dst;
        ngx_unescape_uri(&dst, &src, value.len, 0);
        value.len = dst - value.data;

        h = (ngx_table_elt_t *) -1;
    }

    if (h && r->method != NGX_HTTP_DELETE) {
        if (h != (ngx_table_elt_t *) -1) {
            value = h->value;
        }

        ctx->verb = NGX_HTTP_PERSTACK_VERB_FOLLOW;
        ctx->last_event_id = 1;

        return ngx_http_perstack_attach_parse(&value, ctx, 1);
    }

    if (ngx_http_arg(r, (u_char *) "execution", sizeof("execution") - 1,
                     &value)
        != NGX_OK)
    {
        return (r->method == NGX_HTTP_DELETE) ? NGX_HTTP_BAD_REQUEST
                                              : NGX_DECLINED;
    }

    if (ngx_http_perstack_attach_parse(&value, ctx, 0) != NGX_OK) {
        return NGX_HTTP_BAD_REQUEST;
    }

    if (r->method == NGX_HTTP_DELETE) {
        ctx->verb = NGX_HTTP_PERSTACK_VERB_CANCEL;
        return NGX_OK;
    }

    if (ngx_http_arg(r, (u_char *) "after", sizeof("after") - 1, &after)
        == NGX_OK)
    {
        if (ngx_http_perstack_attach_uint(after.data, after.len, &ctx->after)
            != NGX_OK)
        {
            return NGX_HTTP_BAD_REQUEST;
        }

    } else if (ngx_http_perstack_attach_wants_json(r)) {
        ctx->verb = NGX_HTTP_PERSTACK_VERB_STATUS;
        return NGX_OK;
    }

    ctx->verb = NGX_HTTP_PERSTACK_VERB_FOLLOW;

    return NGX_OK;
}


/* "<id>" or, with position set, "<id>-<position>" */

static ngx_int_t
ngx_http_perstack_attach_parse(ngx_str_t *value, ngx_http_perstack_ctx_t *ctx,
    ngx_uint_t position)
{
    u_char      c;
    ngx_uint_t  i;

    if (value->len < NGX_HTTP_PERSTACK_ID_LEN) {
        return NGX_HTTP_BAD_REQUEST;
    }

    for (i = 0; i < NGX_HTTP_PERSTACK_ID_LEN; i++) {
        c = value->data[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return NGX_HTTP_BAD_REQUEST;
        }
    }

    ctx->execution.data = value->data;
    ctx->execution.len = NGX_HTTP_PERSTACK_ID_LEN;
    ctx->after = 0;

    if (value->len == NGX_HTTP_PERSTACK_ID_LEN) {
        return NGX_OK;
    }

    if (!position || value->data[NGX_HTTP_PERSTACK_ID_LEN] != '-') {
        return NGX_HTTP_BAD_REQUEST;
    }

    return ngx_http_perstack_attach_uint(value->data
                                         + NGX_HTTP_PERSTACK_ID_LEN + 1,
                                         value->len
                                         - NGX_HTTP_PERSTACK_ID_LEN - 1,
                                         &ctx->after);
}


static ngx_int_t
ngx_http_perstack_attach_uint(u_char *p, size_t len, uint64_t *value)
{
    uint64_t  n;

    /* at most 18 digits: no overflow */
    if (len == 0 || len > 18) {
        return NGX_HTTP_BAD_REQUEST;
    }

    n = 0;

    while (len--) {
        if (*p < '0' || *p > '9') {
            return NGX_HTTP_BAD_REQUEST;
        }

        n = n * 10 + (*p++ - '0');
    }

    *value = n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_perstack_attach_wants_json(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_http_perstack_header_in(r, "Accept");

    return (h != NULL
            && ngx_strlcasestrn(h->value.data, h->value.data + h->value.len,
                                (u_char *) "application/json",
                                sizeof("application/json") - 2)
               != NULL);
}


/*
 * The record keeps the stream in the execution's own format: an Accept
 * that names only the other one is refused (no Accept, or any type,
 * takes the execution's).
 */

static ngx_int_t
ngx_http_perstack_attach_refuses(ngx_http_request_t *r, ngx_uint_t format)
{
    u_char           *last;
    ngx_table_elt_t  *h;

    h = ngx_http_perstack_header_in(r, "Accept");

    if (h == NULL) {
        return 0;
    }

    last = h->value.data + h->value.len;

    if (ngx_strlcasestrn(h->value.data, last, (u_char *) "*/*", 2) != NULL) {
        return 0;
    }

    if (format == NGX_HTTP_PERSTACK_FORMAT_SSE) {
        return (ngx_strlcasestrn(h->value.data, last, (u_char *) "ndjson",
                                 sizeof("ndjson") - 2)
                != NULL
                && ngx_strlcasestrn(h->value.data, last,
                                    (u_char *) "text/event-stream",
                                    sizeof("text/event-stream") - 2)
                   == NULL);
    }

    return (ngx_strlcasestrn(h->value.data, last,
                             (u_char *) "text/event-stream",
                             sizeof("text/event-stream") - 2)
            != NULL
            && ngx_strlcasestrn(h->value.data, last, (u_char *) "ndjson",
                                sizeof("ndjson") - 2)
               == NULL);
}


/*
 * The request passed the approval: it is answered from the record.  An
 * unknown execution, one whose record expired and another owner's get
 * the same answer.
 */

void
ngx_http_perstack_attach(ngx_http_request_t *r, ngx_http_perstack_ctx_t *ctx)
{
    char                             *outcome;
    ngx_int_t                         rc;
    ngx_str_t                         owner, message;
    ngx_http_perstack_loc_conf_t     *plcf;
    ngx_http_perstack_record_meta_t   meta;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    rc = ngx_http_perstack_record_read_meta(r->pool, &plcf->record_path->name,
                                            &ctx->execution, &meta,
                                            r->connection->log);

    if (rc == NGX_ERROR
        || ngx_http_perstack_record_owner(r, plcf->owner, r->pool, &owner)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_DECLINED
        || ngx_http_perstack_record_expired(&meta)
        || owner.len != meta.owner.len
        || ngx_strncmp(owner.data, meta.owner.data, owner.len) != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "perstack: no execution \"%V\" for this request%s",
                      &ctx->execution,
                      rc == NGX_DECLINED ? "" : " (expired, or another "
                                                "owner's)");

        ngx_str_set(&message, "no such execution");
        ngx_http_finalize_request(r,
                                  ngx_http_perstack_send_error(r,
                                                    NGX_HTTP_NOT_FOUND,
                                                    "not_found", &message,
                                                    NULL, NULL));
        return;
    }

    /* for the access log's $perstack_job and $perstack_expert */
    ctx->job = meta.job;
    ctx->expert = meta.expert;

    /* and $perstack_outcome once it ended (a follower's: follow.c's) */
    outcome = (meta.ended && meta.outcome.len) ? (char *) meta.outcome.data
                                               : NULL;

    switch (ctx->verb) {

    case NGX_HTTP_PERSTACK_VERB_STATUS:
        ctx->log.outcome = outcome;
        rc = ngx_http_perstack_attach_status(r, ctx, &meta, NGX_HTTP_OK,
                                             NULL);
        break;

    case NGX_HTTP_PERSTACK_VERB_CANCEL:
        if (meta.ended) {
            ctx->log.outcome = outcome;
            rc = ngx_http_perstack_attach_status(r, ctx, &meta, NGX_HTTP_OK,
                                                 NULL);
            break;
        }

        if (ngx_http_perstack_record_cancel(r->pool,
                                            &plcf->record_path->name,
                                            &ctx->execution,
                                            r->connection->log)
            != NGX_OK)
        {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            break;
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "perstack: execution \"%V\" cancelled by the client",
                      &ctx->execution);

        rc = ngx_http_perstack_attach_status(r, ctx, &meta,
                                             NGX_HTTP_ACCEPTED,
                                             "cancelling");
        break;

    default: /* NGX_HTTP_PERSTACK_VERB_FOLLOW */

        if ((ctx->last_event_id
             && meta.format != NGX_HTTP_PERSTACK_FORMAT_SSE)
            || ngx_http_perstack_attach_refuses(r, meta.format))
        {
            if (meta.format == NGX_HTTP_PERSTACK_FORMAT_SSE) {
                ngx_str_set(&message, "the execution streams "
                                      "text/event-stream");

            } else {
                ngx_str_set(&message, "the execution streams NDJSON: "
                                      "follow it with ?execution=ID&after=N");
            }

            rc = ngx_http_perstack_send_error(r, NGX_HTTP_PERSTACK_NOT_ACCEPTABLE,
                                              "not_acceptable", &message,
                                              NULL, NULL);
            break;
        }

        rc = ngx_http_perstack_follow_start(r, ctx, &meta);

        if (rc == NGX_DONE) {
            return;
        }

        break;
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * {"execution","state","outcome","events","job","expert","started",
 * "ended"}: from the .json, and the index for a running one's events.
 */

static ngx_int_t
ngx_http_perstack_attach_status(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx, ngx_http_perstack_record_meta_t *meta,
    ngx_uint_t status, const char *state)
{
    u_char                        *name;
    off_t                          offset;
    uint64_t                       events;
    ngx_fd_t                       fd;
    ngx_uint_t                     ended;
    ngx_http_perstack_jw_t         jw;
    ngx_http_perstack_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    events = meta->events;

    if (!meta->ended) {
        name = ngx_http_perstack_record_name(r->pool,
                                             &plcf->record_path->name,
                                             &ctx->execution, ".index");
        if (name == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        fd = ngx_open_file(name, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

        if (fd != NGX_INVALID_FILE) {
            if (ngx_http_perstack_record_position(fd, 0, &offset, &events,
                                                  &ended)
                != NGX_OK)
            {
                events = 0;
            }

            (void) ngx_close_file(fd);
        }

        if (state == NULL) {
            state = ngx_http_perstack_process_gone(meta->pid, meta->start)
                    ? "lost" : "running";
        }

    } else if (state == NULL) {
        state = "ended";
    }

    ngx_http_perstack_jw_pool(&jw, r->pool, 512);
    ngx_http_perstack_jw_raw(&jw, "{\"execution\":");
    ngx_http_perstack_jw_str(&jw, ctx->execution.data, ctx->execution.len);
    ngx_http_perstack_jw_raw(&jw, ",\"state\":");
    ngx_http_perstack_jw_str(&jw, (u_char *) state, ngx_strlen(state));
    ngx_http_perstack_jw_raw(&jw, ",\"outcome\":");

    if (meta->ended) {
        ngx_http_perstack_jw_str(&jw, meta->outcome.data, meta->outcome.len);

    } else {
        ngx_http_perstack_jw_raw(&jw, "null");
    }

    ngx_http_perstack_jw_raw(&jw, ",\"events\":");
    ngx_http_perstack_jw_uint(&jw, events);
    ngx_http_perstack_jw_raw(&jw, ",\"job\":");
    ngx_http_perstack_jw_str(&jw, meta->job.data, meta->job.len);
    ngx_http_perstack_jw_raw(&jw, ",\"expert\":");
    ngx_http_perstack_jw_str(&jw, meta->expert.data, meta->expert.len);
    ngx_http_perstack_jw_raw(&jw, ",\"started\":");
    ngx_http_perstack_attach_time(&jw, meta->started);
    ngx_http_perstack_jw_raw(&jw, ",\"ended\":");

    if (meta->ended) {
        ngx_http_perstack_attach_time(&jw, meta->finished);

    } else {
        ngx_http_perstack_jw_raw(&jw, "null");
    }

    ngx_http_perstack_jw_raw(&jw, "}\n");

    if (ngx_http_perstack_add_header(r, "Cache-Control", "no-store")
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_perstack_send_json(r, status, &jw);
}


/* "2026-12-02T01:02:03.456Z" */

static void
ngx_http_perstack_attach_time(ngx_http_perstack_jw_t *jw, uint64_t ms)
{
    u_char     buf[sizeof("\"1970-01-01T00:00:00.000Z\"")], *p;
    ngx_tm_t   tm;

    ngx_gmtime((time_t) (ms / 1000), &tm);

    p = ngx_sprintf(buf, "\"%4d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                    tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                    tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec,
                    (int) (ms % 1000));

    ngx_http_perstack_jw_rawn(jw, buf, p - buf);
}
