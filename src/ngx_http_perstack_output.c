
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The events on their way to the client: the response's headers, SSE or
 * NDJSON framing, stderr lines grouped, the keep-alives, and the write
 * handler that moves on when the client took the last event.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_output.h"
#include "ngx_http_perstack_metrics.h"
#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_writer.h"
#include "ngx_http_perstack_sse.h"
#include "ngx_http_perstack_response.h"
#include "ngx_http_perstack_runtime.h"
#include "ngx_http_perstack_record.h"

#include <yajl/yajl_tree.h>


static ngx_int_t ngx_http_perstack_emit_module(
    ngx_http_perstack_exec_t *exec, const char *type, u_char *last);
static size_t ngx_http_perstack_frame_size(ngx_http_perstack_exec_t *exec,
    uint64_t id, size_t type_len, const u_char *data, size_t len);
static u_char *ngx_http_perstack_frame(ngx_http_perstack_exec_t *exec,
    u_char *dst, uint64_t id, u_char *type, size_t type_len, const u_char *data,
    size_t len);
static void ngx_http_perstack_write_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_perstack_deliver(ngx_http_perstack_exec_t *exec,
    size_t len);


/* output of another stream while the runtime's event streams */

ngx_int_t
ngx_http_perstack_held_drop(ngx_http_perstack_exec_t *exec, size_t len)
{
    exec->held_dropped += len;

    return NGX_OK;
}


ngx_int_t
ngx_http_perstack_send_headers(ngx_http_perstack_exec_t *exec)
{
    ngx_int_t                rc;
    ngx_str_t                id;
    ngx_http_request_t      *r;
    ngx_http_perstack_jw_t   jw;

    r = exec->request;

    id.data = exec->id;
    id.len = NGX_HTTP_PERSTACK_ID_LEN;

    rc = ngx_http_perstack_stream_headers(r, exec->format, &id);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        ngx_http_perstack_finalize(exec, rc);
        return NGX_ERROR;
    }

    exec->headers_sent = 1;

    ngx_http_perstack_event_open(exec, &jw, "perstack.execution");
    ngx_http_perstack_jw_raw(&jw, ",\"execution\":");
    ngx_http_perstack_jw_str(&jw, exec->id, NGX_HTTP_PERSTACK_ID_LEN);
    ngx_http_perstack_jw_raw(&jw, ",\"container\":");
    ngx_http_perstack_jw_str(&jw, exec->container.data, exec->container.len);
    ngx_http_perstack_jw_raw(&jw, ",\"image\":");
    ngx_http_perstack_jw_str(&jw, exec->image.data, exec->image.len);
    ngx_http_perstack_jw_raw(&jw, ",\"expert\":");
    ngx_http_perstack_jw_str(&jw, exec->expert.data, exec->expert.len);
    ngx_http_perstack_jw_raw(&jw, ",\"job\":");
    ngx_http_perstack_jw_str(&jw, exec->job.data, exec->job.len);
    ngx_http_perstack_jw_raw(&jw, exec->continuing ? ",\"continued\":true"
                                                   : ",\"continued\":false");

    return ngx_http_perstack_event_send(exec, &jw, "perstack.execution");
}


ngx_int_t
ngx_http_perstack_emit_text(ngx_http_perstack_exec_t *exec, const char *type,
    ngx_http_perstack_line_t *line)
{
    ngx_http_perstack_jw_t  jw;

    ngx_http_perstack_event_open(exec, &jw, type);
    ngx_http_perstack_jw_raw(&jw, ",\"text\":");
    ngx_http_perstack_jw_str(&jw, line->data, line->len);

    return ngx_http_perstack_event_send(exec, &jw, type);
}


/* a module event whose JSON the scratch buffer holds, up to last */

static ngx_int_t
ngx_http_perstack_emit_module(ngx_http_perstack_exec_t *exec,
    const char *type, u_char *last)
{
    return ngx_http_perstack_emit(exec, (u_char *) type, ngx_strlen(type),
                                  exec->scratch, last - exec->scratch);
}


/*
 * One event to the client, after the stderr lines held, if any, as an
 * event of their own: both leave in one buffer.  type NULL: only those.
 * While the runtime's event streams, the stderr lines wait for its end,
 * and any other event first ends it where it stands (see prefix()).
 */

ngx_int_t
ngx_http_perstack_emit(ngx_http_perstack_exec_t *exec, u_char *type,
    size_t type_len, const u_char *data, size_t len)
{
    u_char      *p, *last;
    size_t       size;
    ngx_uint_t   events, cut;

    cut = exec->raw_open && (type != NULL || exec->cut_reason != NULL);

    if (exec->raw_open && !cut) {
        return NGX_OK;
    }

    size = ngx_http_perstack_prefix_size(exec, cut, &events);

    if (type) {
        size += ngx_http_perstack_frame_size(exec, exec->sequence + events + 1,
                                             type_len, data, len);
    }

    if (size == 0) {
        return NGX_OK;
    }

    p = ngx_http_perstack_out_reserve(exec, size);
    if (p == NULL) {
        ngx_http_perstack_finalize(exec, NGX_ERROR);
        return NGX_ERROR;
    }

    last = ngx_http_perstack_prefix(exec, p);

    if (type) {
        exec->sequence++;
        last = ngx_http_perstack_frame(exec, last, exec->sequence, type,
                                       type_len, data, len);
    }

    return ngx_http_perstack_send(exec, last - p);
}


/*
 * What goes before an event, in this order: when cut, the end of the
 * runtime's event that streams, cut short, and a perstack.invalid that
 * says so; then the stderr lines held, as an event of their own.  The
 * size first, with the number of events in *events; then prefix() writes
 * them, with the ids that follow exec->sequence.
 */

size_t
ngx_http_perstack_prefix_size(ngx_http_perstack_exec_t *exec, ngx_uint_t cut,
    ngx_uint_t *events)
{
    size_t                   size;
    const char              *reason;
    ngx_http_perstack_jw_t   jw;

    size = 0;
    *events = 0;
    exec->invalid_len = 0;

    if (cut) {
        reason = exec->cut_reason ? exec->cut_reason
                                  : "the execution ended inside it";

        ngx_http_perstack_jw_buffer(&jw, exec->invalid, 0,
                                    sizeof(exec->invalid));
        ngx_http_perstack_jw_raw(&jw, "{\"type\":\"perstack.invalid\","
                                      "\"stream\":\"stdout\",\"passed\":");
        ngx_http_perstack_jw_int(&jw, exec->raw_passed);
        ngx_http_perstack_jw_raw(&jw, ",\"reason\":");
        ngx_http_perstack_jw_str(&jw, (u_char *) reason, ngx_strlen(reason));
        ngx_http_perstack_jw_raw(&jw, "}");

        /* the reasons are the module's own, well within the buffer */
        exec->invalid_len = ngx_http_perstack_jw_len(&jw);

        size += (exec->format == NGX_HTTP_PERSTACK_FORMAT_NDJSON)
                ? 1 : ngx_http_perstack_sse_close_size(0);

        (*events)++;
        size += ngx_http_perstack_frame_size(exec, exec->sequence + *events,
                                             sizeof("perstack.invalid") - 1,
                                             exec->invalid,
                                             exec->invalid_len);
    }

    if (exec->stderr_group_len) {
        /* close the event's JSON: the buffer has room for it */
        ngx_http_perstack_jw_buffer(&jw, exec->stderr_group,
                                    exec->stderr_group_len,
                                    NGX_HTTP_PERSTACK_STDERR_GROUP_MAX);
        ngx_http_perstack_jw_raw(&jw, "\"}");
        exec->stderr_group_len = ngx_http_perstack_jw_len(&jw);

        (*events)++;
        size += ngx_http_perstack_frame_size(exec, exec->sequence + *events,
                                             sizeof("perstack.stderr") - 1,
                                             exec->stderr_group,
                                             exec->stderr_group_len);
    }

    return size;
}


u_char *
ngx_http_perstack_prefix(ngx_http_perstack_exec_t *exec, u_char *dst)
{
    if (exec->invalid_len) {
        if (exec->format == NGX_HTTP_PERSTACK_FORMAT_NDJSON) {
            *dst++ = '\n';

        } else {
            dst = ngx_http_perstack_sse_close(dst, NULL, 0);
        }

        /* the runtime's event, cut short, ends here */
        ngx_http_perstack_mark(exec, dst);

        exec->raw_open = 0;
        exec->cut_reason = NULL;

        exec->sequence++;
        dst = ngx_http_perstack_frame(exec, dst, exec->sequence,
                                      (u_char *) "perstack.invalid",
                                      sizeof("perstack.invalid") - 1,
                                      exec->invalid, exec->invalid_len);
        exec->invalid_len = 0;
    }

    if (exec->stderr_group_len) {
        exec->sequence++;
        dst = ngx_http_perstack_frame(exec, dst, exec->sequence,
                                      (u_char *) "perstack.stderr",
                                      sizeof("perstack.stderr") - 1,
                                      exec->stderr_group,
                                      exec->stderr_group_len);
        exec->stderr_group_len = 0;
    }

    return dst;
}


static size_t
ngx_http_perstack_frame_size(ngx_http_perstack_exec_t *exec, uint64_t id,
    size_t type_len, const u_char *data, size_t len)
{
    if (exec->format == NGX_HTTP_PERSTACK_FORMAT_NDJSON) {
        return ngx_http_perstack_ndjson_size(id, data, len) + 1;
    }

    return ngx_http_perstack_sse_size(exec->id, NGX_HTTP_PERSTACK_ID_LEN, id,
                                      type_len, data, len);
}


/* one whole event, whose id is its position in the execution */

static u_char *
ngx_http_perstack_frame(ngx_http_perstack_exec_t *exec, u_char *dst,
    uint64_t id, u_char *type, size_t type_len, const u_char *data,
    size_t len)
{
    if (exec->format == NGX_HTTP_PERSTACK_FORMAT_NDJSON) {
        dst = ngx_http_perstack_ndjson_write(dst, id, data, len);
        *dst++ = '\n';

    } else {
        dst = ngx_http_perstack_sse_write(dst, exec->id,
                                          NGX_HTTP_PERSTACK_ID_LEN, id, type,
                                          type_len, data, len);
    }

    ngx_http_perstack_mark(exec, dst);

    return dst;
}


/*
 * The event exec->sequence ends at dst, in the batch: the record's index
 * learns where, once the batch is recorded.  The events of a batch follow
 * one another, and send() sends a batch before its marks can run out.
 */

void
ngx_http_perstack_mark(ngx_http_perstack_exec_t *exec, u_char *dst)
{
    if (exec->mark_end == NULL
        || exec->marks == NGX_HTTP_PERSTACK_MARKS
        || (exec->marks && exec->sequence != exec->mark_first + exec->marks)
        || (size_t) (dst - exec->out) > NGX_MAX_UINT32_VALUE)
    {
        /* cannot happen */
        ngx_log_error(NGX_LOG_ALERT, exec->log, 0,
                      "perstack: event %uL not marked in the record",
                      exec->sequence);
        return;
    }

    if (exec->marks == 0) {
        exec->mark_first = exec->sequence;
    }

    exec->mark_end[exec->marks++] = (uint32_t) (dst - exec->out);
}


/*
 * A line of stderr.  Consecutive lines that arrive together become one
 * perstack.stderr event, their texts joined by "\n": a runtime that dumps
 * an error object writes its many lines at once.  The group is sent before
 * any other event and whenever the input has no whole line left, so it
 * never waits for more output; it holds at most
 * NGX_HTTP_PERSTACK_STDERR_GROUP_MAX bytes of JSON, and a line too long
 * for a group of its own is an event of its own.
 */

ngx_int_t
ngx_http_perstack_stderr(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_line_t *line)
{
    size_t                  len, head;
    ngx_http_perstack_jw_t  jw;

    head = sizeof("{\"type\":\"perstack.stderr\",\"text\":\"") - 1;
    len = ngx_http_perstack_json_escape_size(line->data, line->len);

    if (exec->raw_open
        && (exec->stderr_group_len ? exec->stderr_group_len + 2 : head)
           + len + 2 > NGX_HTTP_PERSTACK_STDERR_GROUP_MAX)
    {
        /* the group waits for the runtime's event, and it is full */
        return ngx_http_perstack_held_drop(exec, line->len);
    }

    if (head + len + 2 > NGX_HTTP_PERSTACK_STDERR_GROUP_MAX) {
        return ngx_http_perstack_emit_text(exec, "perstack.stderr", line);
    }

    if (exec->stderr_group_len
        && exec->stderr_group_len + 2 + len + 2
           > NGX_HTTP_PERSTACK_STDERR_GROUP_MAX)
    {
        if (ngx_http_perstack_emit(exec, NULL, 0, NULL, 0) == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    if (exec->stderr_group == NULL) {
        /* with room to close the event's JSON */
        exec->stderr_group = ngx_alloc(NGX_HTTP_PERSTACK_STDERR_GROUP_MAX,
                                       exec->log);
        if (exec->stderr_group == NULL) {
            ngx_http_perstack_finalize(exec, NGX_ERROR);
            return NGX_ERROR;
        }
    }

    /* the sizes above leave room for this line, and for the close */

    ngx_http_perstack_jw_buffer(&jw, exec->stderr_group,
                                exec->stderr_group_len,
                                NGX_HTTP_PERSTACK_STDERR_GROUP_MAX);

    if (exec->stderr_group_len == 0) {
        ngx_http_perstack_jw_raw(&jw, "{\"type\":\"perstack.stderr\","
                                      "\"text\":\"");

    } else {
        ngx_http_perstack_jw_raw(&jw, "\\n");
    }

    ngx_http_perstack_jw_text(&jw, line->data, line->len);

    exec->stderr_group_len = ngx_http_perstack_jw_len(&jw);

    return NGX_OK;
}


/*
 * The len bytes just written at the end of the batch.  While a pass over
 * the container's output gathers events (exec->batching), the batch is
 * sent when it is full, and by the pass at its end: the record and the
 * client then take many events in one write each.  Otherwise it is sent
 * at once.
 */

ngx_int_t
ngx_http_perstack_send(ngx_http_perstack_exec_t *exec, size_t len)
{
    exec->out_len += len;

    if (exec->batching && exec->out_len < NGX_HTTP_PERSTACK_BATCH
        && exec->marks <= NGX_HTTP_PERSTACK_MARKS - 4)
    {
        /* an event adds at most four marks: see emit() */
        return NGX_OK;
    }

    return ngx_http_perstack_flush(exec);
}


/*
 * The batch: into the record, with where its events end, then to the
 * client, if one is attached.  A record that cannot take it (full, or a
 * write that failed) no longer grows, and the execution is stopped by the
 * caller, which finds exec->record so marked; the client still gets the
 * batch, and the closing event.
 */

ngx_int_t
ngx_http_perstack_flush(ngx_http_perstack_exec_t *exec)
{
    size_t  len;

    len = exec->out_len;

    if (len == 0) {
        return NGX_OK;
    }

    exec->out_len = 0;

    if (exec->record) {
        (void) ngx_http_perstack_record_write(exec, exec->out, len,
                                              exec->mark_first,
                                              exec->mark_end, exec->marks);
    }

    exec->marks = 0;

    ngx_http_perstack_metrics_relayed(exec->sequence - exec->relayed, len);
    exec->relayed = exec->sequence;

    if (exec->request == NULL) {
        return NGX_OK;
    }

    return ngx_http_perstack_deliver(exec, len);
}


static ngx_int_t
ngx_http_perstack_deliver(ngx_http_perstack_exec_t *exec, size_t len)
{
    ngx_int_t                  rc;
    ngx_buf_t                 *b;
    ngx_http_request_t        *r;
    ngx_http_core_loc_conf_t  *clcf;

    r = exec->request;
    b = exec->out_buf;

    b->pos = exec->out;
    b->last = exec->out + len;
    b->start = b->pos;
    b->end = b->last;
    b->memory = 1;
    b->flush = 1;

    exec->out_chain.buf = b;
    exec->out_chain.next = NULL;

    exec->last_output = ngx_current_msec;

    rc = ngx_http_output_filter(r, &exec->out_chain);

    if (rc == NGX_ERROR) {
        ngx_http_perstack_finalize(exec, NGX_ERROR);
        return NGX_ERROR;
    }

    if (ngx_http_perstack_busy(exec)) {
        r->write_event_handler = ngx_http_perstack_write_handler;

        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (!r->connection->write->delayed) {
            ngx_add_timer(r->connection->write, clcf->send_timeout);
        }

        if (ngx_handle_write_event(r->connection->write, clcf->send_lowat)
            != NGX_OK)
        {
            ngx_http_perstack_finalize(exec, NGX_ERROR);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The last event is still on its way: its buffer cannot be reused yet.
 */

ngx_int_t
ngx_http_perstack_busy(ngx_http_perstack_exec_t *exec)
{
    ngx_buf_t  *b;

    b = exec->out_buf;

    if (exec->request == NULL) {
        /* detached: nothing holds the output back */
        return 0;
    }

    return (exec->request->connection->buffered
            || (b->pos && b->pos < b->last));
}


static void
ngx_http_perstack_write_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_event_t               *wev;
    ngx_http_perstack_ctx_t   *ctx;
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_perstack_exec_t  *exec;

    wev = r->connection->write;

    ctx = ngx_http_get_module_ctx(r, ngx_http_perstack_module);

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, NGX_ETIMEDOUT,
                      "perstack: client timed out");
        r->connection->timedout = 1;

        if (ctx && ctx->exec) {
            ngx_http_perstack_finalize(ctx->exec, NGX_HTTP_REQUEST_TIME_OUT);

        } else {
            ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        }

        return;
    }

    if (ctx == NULL || ctx->exec == NULL) {
        return;
    }

    exec = ctx->exec;

    rc = ngx_http_output_filter(r, NULL);

    if (rc == NGX_ERROR) {
        ngx_http_perstack_finalize(exec, NGX_ERROR);
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (ngx_http_perstack_busy(exec)) {
        if (!wev->delayed) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_perstack_finalize(exec, NGX_ERROR);
        }

        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    if (!exec->process_ev.posted) {
        ngx_post_event(&exec->process_ev, &ngx_posted_events);
    }
}


void
ngx_http_perstack_keepalive(ngx_event_t *ev)
{
    u_char                    *p;
    size_t                     len;
    ngx_msec_t                 idle, interval;
    ngx_http_perstack_exec_t  *exec;

    exec = ev->data;
    interval = exec->conf->ping_interval;

    if (exec->state != NGX_HTTP_PERSTACK_RUNNING || exec->request == NULL) {
        return;
    }

    idle = ngx_current_msec - exec->last_output;

    if (exec->raw_open) {
        /* not inside the runtime's event that streams: it would split it */
        ngx_add_timer(ev, interval);
        return;
    }

    if (idle < interval || ngx_http_perstack_busy(exec)) {
        ngx_add_timer(ev, interval - ngx_min(idle, interval - 1));
        return;
    }

    /* a comment for SSE; an empty line, which NDJSON readers skip */

    if (exec->format == NGX_HTTP_PERSTACK_FORMAT_NDJSON) {
        len = 1;

    } else {
        len = sizeof(NGX_HTTP_PERSTACK_SSE_PING) - 1;
    }

    p = ngx_http_perstack_out_reserve(exec, len);
    if (p == NULL) {
        return;
    }

    ngx_memcpy(p, len == 1 ? "\n" : NGX_HTTP_PERSTACK_SSE_PING, len);

    /* a keep-alive is not part of the stream: it is not recorded */

    if (ngx_http_perstack_deliver(exec, len) != NGX_OK) {
        return;
    }

    ngx_add_timer(ev, interval);
}


/*
 * A buffer of at least len bytes, whose first keep bytes are kept, reused
 * from one event to the next; it grows to the largest event seen (or
 * batch), which perstack_max_line bounds.
 */

u_char *
ngx_http_perstack_reserve(ngx_http_perstack_exec_t *exec, u_char **buf,
    size_t *size, size_t keep, size_t len)
{
    u_char  *p;
    size_t   n;

    if (*size >= len) {
        return *buf;
    }

    n = ngx_max(len, 1024);

    if (n < *size * 2) {
        n = *size * 2;
    }

    p = ngx_alloc(n, exec->log);
    if (p == NULL) {
        return NULL;
    }

    if (*buf) {
        ngx_memcpy(p, *buf, keep);
        ngx_free(*buf);
    }

    *buf = p;
    *size = n;

    return p;
}


/*
 * Room for size more bytes at the end of the batch, and for its marks;
 * never while the last batch is on its way (see busy()).
 */

u_char *
ngx_http_perstack_out_reserve(ngx_http_perstack_exec_t *exec, size_t size)
{
    u_char  *p;

    if (exec->mark_end == NULL) {
        exec->mark_end = ngx_alloc(NGX_HTTP_PERSTACK_MARKS * sizeof(uint32_t),
                                   exec->log);
        if (exec->mark_end == NULL) {
            return NULL;
        }
    }

    p = ngx_http_perstack_reserve(exec, &exec->out, &exec->out_size,
                                  exec->out_len, exec->out_len + size);

    return p ? p + exec->out_len : NULL;
}


/*
 * Once the batch was written, its buffer and its marks go back: a stream
 * that waits for its container holds neither.
 */

void
ngx_http_perstack_out_free(ngx_http_perstack_exec_t *exec)
{
    if (exec->out == NULL || exec->out_len || ngx_http_perstack_busy(exec)) {
        return;
    }

    ngx_free(exec->out);
    exec->out = NULL;
    exec->out_size = 0;

    exec->out_buf->pos = NULL;
    exec->out_buf->last = NULL;

    /* no marks without bytes: the batch was sent whole */
    if (exec->mark_end) {
        ngx_free(exec->mark_end);
        exec->mark_end = NULL;
    }
}


/*
 * The one way the module ends an execution's request, whatever ended it:
 * the client's error, no memory, the closing event sent, or an HTTP error
 * before the response started.
 */

void
ngx_http_perstack_finalize(ngx_http_perstack_exec_t *exec, ngx_int_t rc)
{
    ngx_http_request_t  *r;

    r = exec->request;

    if (r == NULL) {
        return;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, exec->log, 0,
                   "perstack finalize: rc %i, state \"%s\", outcome \"%s\"",
                   rc, ngx_http_perstack_state_name(exec->state),
                   ngx_http_perstack_outcome_name(exec->outcome));

    ngx_http_finalize_request(r, rc);
}


/* a step's name, for the debug log */

const char *
ngx_http_perstack_state_name(ngx_http_perstack_state_e state)
{
    static const char  *names[] = {
        "new",
        "ping",
        "create",
        "attach",
        "start",
        "running",
        "wait",
        "remove",
        "done"
    };

    return names[state];
}


/*
 * A module event: its JSON is written into the execution's scratch
 * buffer, which grows with it and is kept for the next one.
 */

static u_char *
ngx_http_perstack_scratch_grow(void *data, u_char *old, size_t used,
    size_t size)
{
    ngx_http_perstack_exec_t *exec = data;

    u_char  *p;

    p = ngx_alloc(size, exec->log);
    if (p == NULL) {
        return NULL;
    }

    if (used) {
        ngx_memcpy(p, old, used);
    }

    if (exec->scratch) {
        ngx_free(exec->scratch);
    }

    exec->scratch = p;
    exec->scratch_size = size;

    return p;
}


void
ngx_http_perstack_event_open(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_jw_t *jw, const char *type)
{
    ngx_http_perstack_jw_init(jw, ngx_http_perstack_scratch_grow, exec, 0);

    jw->start = exec->scratch;
    jw->pos = exec->scratch;
    jw->end = exec->scratch ? exec->scratch + exec->scratch_size : NULL;

    ngx_http_perstack_jw_raw(jw, "{\"type\":");
    ngx_http_perstack_jw_str(jw, (u_char *) type, ngx_strlen(type));
}


/* the event's JSON closed and sent; on no memory, the request ends */

ngx_int_t
ngx_http_perstack_event_send(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_jw_t *jw, const char *type)
{
    ngx_http_perstack_jw_raw(jw, "}");

    if (ngx_http_perstack_jw_failed(jw)) {
        ngx_http_perstack_finalize(exec, NGX_ERROR);
        return NGX_ERROR;
    }

    return ngx_http_perstack_emit_module(exec, type, jw->pos);
}
