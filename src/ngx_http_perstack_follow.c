
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * A client that follows an execution (again), in any worker, from its
 * record: the record's bytes from where it asked, then the rest as the
 * execution appends them (inotify tells), with bounded memory whatever its
 * pace: the next part is read from the file only once the last one left.
 * If the execution's worker dies, the follower ends the stream itself.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_follow.h"
#include "ngx_http_perstack_metrics.h"
#include "ngx_http_perstack_record.h"
#include "ngx_http_perstack_process.h"
#include "ngx_http_perstack_response.h"
#include "ngx_http_perstack_sse.h"
#include "ngx_http_perstack_writer.h"

#include <sys/file.h>
#include <sys/inotify.h>


/* the most of the record sent at once */
#define NGX_HTTP_PERSTACK_FOLLOW_CHUNK  65536
/* how often a follower looks at the execution's worker and pings */
#define NGX_HTTP_PERSTACK_FOLLOW_TICK   1000


typedef struct {
    ngx_http_request_t              *request;
    ngx_str_t                        id;
    ngx_file_t                       events;
    ngx_fd_t                         index;
    off_t                            sent;
    ngx_uint_t                       format;
    ngx_pid_t                        pid;
    uint64_t                         start;
    ngx_connection_t                *notify;
    ngx_event_t                      tick;
    ngx_msec_t                       last_output;
    ngx_buf_t                       *buf;
    ngx_chain_t                      out;
    unsigned                         locked:1;
    unsigned                         done:1;
} ngx_http_perstack_follow_t;


static ngx_int_t ngx_http_perstack_follow_notify_init(
    ngx_http_perstack_follow_t *f);
static void ngx_http_perstack_follow_notified(ngx_event_t *ev);
static void ngx_http_perstack_follow_tick(ngx_event_t *ev);
static void ngx_http_perstack_follow_write_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_perstack_follow_pump(ngx_http_perstack_follow_t *f);
static ngx_int_t ngx_http_perstack_follow_busy(ngx_http_perstack_follow_t *f);
static ngx_int_t ngx_http_perstack_follow_last(ngx_http_perstack_follow_t *f,
    uint64_t *count, off_t *end);
static ngx_int_t ngx_http_perstack_follow_memory(ngx_http_perstack_follow_t *f,
    u_char *data, size_t len, ngx_uint_t last);
static void ngx_http_perstack_follow_lost(ngx_http_perstack_follow_t *f);
static void ngx_http_perstack_follow_finalize(ngx_http_perstack_follow_t *f,
    ngx_int_t rc);
static void ngx_http_perstack_follow_cleanup(void *data);
static void ngx_http_perstack_follow_outcome(ngx_http_request_t *r,
    ngx_str_t *id);


/*
 * A follower: the record from the end of event ctx->after, then what the
 * execution appends, until its end.  NGX_DONE: it streams; anything else
 * is the status to finalize the request with.
 */

ngx_int_t
ngx_http_perstack_follow_start(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx, ngx_http_perstack_record_meta_t *meta)
{
    u_char                        *name;
    off_t                          offset;
    uint64_t                       count;
    ngx_int_t                      rc;
    ngx_str_t                      message;
    ngx_uint_t                     ended;
    ngx_http_cleanup_t            *cln;
    ngx_http_perstack_follow_t    *f;
    ngx_http_perstack_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    f = ngx_pcalloc(r->pool, sizeof(ngx_http_perstack_follow_t));
    if (f == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    f->request = r;
    f->id = ctx->execution;
    f->format = meta->format;
    f->pid = meta->pid;
    f->start = meta->start;
    f->index = NGX_INVALID_FILE;
    f->events.fd = NGX_INVALID_FILE;
    f->events.log = r->connection->log;

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_perstack_follow_cleanup;
    cln->data = f;

    name = ngx_http_perstack_record_name(r->pool, &plcf->record_path->name,
                                         &ctx->execution, ".index");
    if (name == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    f->index = ngx_open_file(name, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (f->index == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", name);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    f->events.name.data = ngx_http_perstack_record_name(r->pool,
                                                &plcf->record_path->name,
                                                &ctx->execution, ".events");
    if (f->events.name.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    f->events.name.len = ngx_strlen(f->events.name.data);

    f->events.fd = ngx_open_file(f->events.name.data, NGX_FILE_RDONLY,
                                 NGX_FILE_OPEN, 0);
    if (f->events.fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                      ngx_open_file_n " \"%V\" failed", &f->events.name);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the execution sees that someone follows it; released on close */
    f->locked = (flock(f->events.fd, LOCK_SH|LOCK_NB) == 0);

    rc = ngx_http_perstack_record_position(f->index, ctx->after, &offset,
                                           &count, &ended);

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                      "perstack: the index of \"%V\" is not readable",
                      &ctx->execution);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ended && ctx->after >= count) {
        /* the client had the closing event: "stop reconnecting" */
        ngx_http_perstack_follow_outcome(r, &ctx->execution);
        return NGX_HTTP_NO_CONTENT;
    }

    if (rc == NGX_DECLINED) {
        ngx_str_set(&message, "the execution has no event at that position");
        return ngx_http_perstack_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            "bad_execution", &message,
                                            NULL, NULL);
    }

    f->sent = offset;

    f->buf = ngx_calloc_buf(r->pool);
    if (f->buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_perstack_stream_headers(r, f->format, &ctx->execution);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "perstack: following execution \"%V\" after event %uL",
                  &ctx->execution, ctx->after);

    ngx_http_perstack_metrics_reattached();

    if (ngx_http_perstack_follow_notify_init(f) != NGX_OK) {
        /* the tick still finds what was appended, once a second */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, ngx_errno,
                      "perstack: inotify for \"%V\" failed",
                      &ctx->execution);
    }

    /*
     * Not cancelable: a worker that shuts down gracefully waits for it,
     * and it ends the response there (see the tick).
     */
    f->tick.handler = ngx_http_perstack_follow_tick;
    f->tick.data = f;
    f->tick.log = r->connection->log;
    ngx_add_timer(&f->tick, NGX_HTTP_PERSTACK_FOLLOW_TICK);

    f->last_output = ngx_current_msec;

    ctx->follow = f;

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_perstack_follow_write_handler;

    (void) ngx_http_perstack_follow_pump(f);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_perstack_follow_notify_init(ngx_http_perstack_follow_t *f)
{
    int                 fd;
    u_char             *index;
    ngx_connection_t   *c;

    fd = inotify_init1(IN_NONBLOCK|IN_CLOEXEC);
    if (fd == -1) {
        return NGX_ERROR;
    }

    index = ngx_pnalloc(f->request->pool, f->events.name.len);
    if (index == NULL) {
        close(fd);
        return NGX_ERROR;
    }

    /* "<id>.events" to "<id>.index" */
    ngx_memcpy(index, f->events.name.data,
               f->events.name.len - sizeof("events") + 1);
    ngx_memcpy(index + f->events.name.len - sizeof("events") + 1, "index",
               sizeof("index"));

    if (inotify_add_watch(fd, (char *) f->events.name.data, IN_MODIFY) == -1
        || inotify_add_watch(fd, (char *) index, IN_MODIFY) == -1)
    {
        close(fd);
        return NGX_ERROR;
    }

    c = ngx_get_connection(fd, f->request->connection->log);
    if (c == NULL) {
        close(fd);
        return NGX_ERROR;
    }

    c->data = f;
    c->read->handler = ngx_http_perstack_follow_notified;
    c->read->log = c->log;
    c->write->log = c->log;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        ngx_close_connection(c);
        return NGX_ERROR;
    }

    f->notify = c;

    return NGX_OK;
}


static void
ngx_http_perstack_follow_notified(ngx_event_t *ev)
{
    u_char                       buf[4096];
    ssize_t                      n;
    ngx_connection_t            *c;
    ngx_http_perstack_follow_t  *f;

    c = ev->data;
    f = c->data;

    /* what changed does not matter: the pump looks at the files */

    for ( ;; ) {
        n = read(c->fd, buf, sizeof(buf));

        if (n <= 0) {
            break;
        }
    }

    c = f->request->connection;

    (void) ngx_http_perstack_follow_pump(f);

    ngx_http_run_posted_requests(c);
}


/*
 * Once a second: the bytes of an execution whose inotify failed, a
 * keep-alive for a client that got nothing for perstack_ping_interval,
 * and whether the execution's worker is still there.
 */

static void
ngx_http_perstack_follow_tick(ngx_event_t *ev)
{
    off_t                          end;
    uint64_t                       count;
    ngx_int_t                      rc;
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_perstack_follow_t    *f;
    ngx_http_perstack_loc_conf_t  *plcf;

    f = ev->data;
    r = f->request;
    c = r->connection;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    if (!f->locked) {
        f->locked = (flock(f->events.fd, LOCK_SH|LOCK_NB) == 0);
    }

    /* after NGX_DONE the request, and f with it, may be gone */

    if (ngx_http_perstack_follow_pump(f) == NGX_DONE) {
        goto done;
    }

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        /*
         * A reload, or a graceful stop: the response ends here, without
         * the closing event, and the client follows on from the last
         * event it had, in a worker that stays.  The execution runs on.
         */
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "perstack: worker shutting down, the follower of "
                      "\"%V\" is let go", &f->id);

        rc = ngx_http_send_special(r, NGX_HTTP_LAST);
        ngx_http_perstack_follow_finalize(f, rc == NGX_ERROR ? NGX_ERROR
                                                             : NGX_OK);
        goto done;
    }

    if (ngx_http_perstack_process_gone(f->pid, f->start)) {
        /* its last bytes may have come with its end: look once more */
        if (ngx_http_perstack_follow_pump(f) != NGX_DONE) {
            ngx_http_perstack_follow_lost(f);
        }

        goto done;
    }

    /* a keep-alive only between two events, and only when idle */

    if (plcf->ping_interval
        && ngx_current_msec - f->last_output >= plcf->ping_interval
        && !ngx_http_perstack_follow_busy(f)
        && ngx_http_perstack_follow_last(f, &count, &end) == NGX_OK
        && end == f->sent)
    {
        if (ngx_http_perstack_follow_memory(f,
                     (u_char *) (f->format == NGX_HTTP_PERSTACK_FORMAT_NDJSON
                                 ? "\n" : NGX_HTTP_PERSTACK_SSE_PING),
                     f->format == NGX_HTTP_PERSTACK_FORMAT_NDJSON
                     ? 1 : sizeof(NGX_HTTP_PERSTACK_SSE_PING) - 1, 0)
            == NGX_ERROR)
        {
            goto done;
        }
    }

    ngx_add_timer(ev, NGX_HTTP_PERSTACK_FOLLOW_TICK);

done:

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_perstack_follow_write_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_event_t                 *wev;
    ngx_http_perstack_ctx_t     *ctx;
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_perstack_follow_t  *f;

    wev = r->connection->write;
    ctx = ngx_http_get_module_ctx(r, ngx_http_perstack_module);

    if (ctx == NULL || ctx->follow == NULL) {
        return;
    }

    f = ctx->follow;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, NGX_ETIMEDOUT,
                      "perstack: client timed out");
        r->connection->timedout = 1;
        ngx_http_perstack_follow_finalize(f, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    rc = ngx_http_output_filter(r, NULL);

    if (rc == NGX_ERROR) {
        ngx_http_perstack_follow_finalize(f, NGX_ERROR);
        return;
    }

    if (ngx_http_perstack_follow_busy(f)) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (!wev->delayed) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_perstack_follow_finalize(f, NGX_ERROR);
        }

        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    (void) ngx_http_perstack_follow_pump(f);
}


/*
 * The record's next bytes, one part at a time: the next is read only once
 * the client took the last, so a slow client holds at most one part (and
 * nginx's output buffers), however far behind it is.  NGX_DONE: the
 * request was finalized, and f may be gone with it.
 */

static ngx_int_t
ngx_http_perstack_follow_pump(ngx_http_perstack_follow_t *f)
{
    off_t                      size, end;
    uint64_t                   count;
    ngx_int_t                  rc;
    ngx_buf_t                 *b;
    ngx_uint_t                 ended;
    ngx_file_info_t            fi;
    ngx_http_request_t        *r;
    ngx_http_core_loc_conf_t  *clcf;

    r = f->request;

    if (f->done) {
        return NGX_OK;
    }

    for ( ;; ) {

        if (ngx_http_perstack_follow_busy(f)) {
            clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

            r->write_event_handler = ngx_http_perstack_follow_write_handler;

            if (!r->connection->write->delayed) {
                ngx_add_timer(r->connection->write, clcf->send_timeout);
            }

            if (ngx_handle_write_event(r->connection->write, clcf->send_lowat)
                != NGX_OK)
            {
                ngx_http_perstack_follow_finalize(f, NGX_ERROR);
                return NGX_DONE;
            }

            return NGX_OK;
        }

        /* the end first: the bytes before it are all in by then */

        if (ngx_http_perstack_record_position(f->index, 0, &end, &count,
                                              &ended)
            != NGX_OK
            || ngx_fd_info(f->events.fd, &fi) == NGX_FILE_ERROR)
        {
            ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                          "perstack: the record of \"%V\" is not readable",
                          &f->id);
            ngx_http_perstack_follow_finalize(f, NGX_ERROR);
            return NGX_DONE;
        }

        size = ngx_file_size(&fi);

        if (size <= f->sent) {
            if (!ended) {
                return NGX_OK;
            }

            ngx_http_perstack_follow_outcome(r, &f->id);

            rc = ngx_http_send_special(r, NGX_HTTP_LAST);
            ngx_http_perstack_follow_finalize(f, rc == NGX_ERROR
                                                 ? NGX_ERROR : NGX_OK);
            return NGX_DONE;
        }

        b = f->buf;
        ngx_memzero(b, sizeof(ngx_buf_t));

        b->in_file = 1;
        b->file = &f->events;
        b->file_pos = f->sent;
        b->file_last = ngx_min(size, f->sent + NGX_HTTP_PERSTACK_FOLLOW_CHUNK);
        b->flush = 1;

        f->sent = b->file_last;
        f->last_output = ngx_current_msec;

        f->out.buf = b;
        f->out.next = NULL;

        rc = ngx_http_output_filter(r, &f->out);

        if (rc == NGX_ERROR) {
            ngx_http_perstack_follow_finalize(f, NGX_ERROR);
            return NGX_DONE;
        }
    }
}


static ngx_int_t
ngx_http_perstack_follow_busy(ngx_http_perstack_follow_t *f)
{
    ngx_buf_t  *b;

    b = f->buf;

    return (f->request->connection->buffered || f->request->buffered
            || (b->in_file && b->file_pos < b->file_last)
            || (b->memory && b->pos < b->last));
}


/*
 * How many events the record has, and where the last one ends (0: none):
 * a follower whose client has all of it is between two events.
 */

static ngx_int_t
ngx_http_perstack_follow_last(ngx_http_perstack_follow_t *f,
    uint64_t *count, off_t *end)
{
    ngx_uint_t  ended;

    if (ngx_http_perstack_record_position(f->index, 0, end, count, &ended)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (*count == 0) {
        return NGX_OK;
    }

    return ngx_http_perstack_record_position(f->index, *count, end, count,
                                             &ended);
}


/* bytes of the module's own: a keep-alive, or the end of a lost one */

static ngx_int_t
ngx_http_perstack_follow_memory(ngx_http_perstack_follow_t *f, u_char *data,
    size_t len, ngx_uint_t last)
{
    ngx_int_t   rc;
    ngx_buf_t  *b;

    b = f->buf;
    ngx_memzero(b, sizeof(ngx_buf_t));

    b->pos = data;
    b->last = data + len;
    b->memory = 1;
    b->flush = 1;
    b->last_buf = last;

    f->out.buf = b;
    f->out.next = NULL;

    f->last_output = ngx_current_msec;

    rc = ngx_http_output_filter(f->request, &f->out);

    if (rc == NGX_ERROR) {
        ngx_http_perstack_follow_finalize(f, NGX_ERROR);
    }

    return rc;
}


/*
 * The worker that ran the execution died before its end (its container is
 * the reaper's): the client gets a closing event that says so, after the
 * end of an event the worker left half-written.
 */

static void
ngx_http_perstack_follow_lost(ngx_http_perstack_follow_t *f)
{
    off_t                     end;
    uint64_t                  count;
    ngx_str_t                 data;
    ngx_http_perstack_jw_t    jw;
    ngx_http_perstack_ctx_t  *ctx;

    if (ngx_http_perstack_follow_last(f, &count, &end) != NGX_OK) {
        count = 0;
        end = f->sent;
    }

    ngx_log_error(NGX_LOG_WARN, f->request->connection->log, 0,
                  "perstack: the worker that ran execution \"%V\" exited "
                  "before its end", &f->id);

    ctx = ngx_http_get_module_ctx(f->request, ngx_http_perstack_module);

    if (ctx && ctx->log.outcome == NULL) {
        /* as the closing event below says */
        ctx->log.outcome = "error";
    }

    ngx_http_perstack_jw_pool(&jw, f->request->pool, 512);

    if (end != f->sent) {
        ngx_http_perstack_jw_raw(&jw, f->format
                                      == NGX_HTTP_PERSTACK_FORMAT_NDJSON
                                      ? "\n" : "\n\n");
    }

    if (f->format == NGX_HTTP_PERSTACK_FORMAT_NDJSON) {
        ngx_http_perstack_jw_raw(&jw, "{\"position\":");
        ngx_http_perstack_jw_uint(&jw, count + 1);
        ngx_http_perstack_jw_raw(&jw, ",");

    } else {
        ngx_http_perstack_jw_raw(&jw, "id: ");
        ngx_http_perstack_jw_rawn(&jw, f->id.data, f->id.len);
        ngx_http_perstack_jw_raw(&jw, "-");
        ngx_http_perstack_jw_uint(&jw, count + 1);
        ngx_http_perstack_jw_raw(&jw, "\nevent: perstack.end\ndata: {");
    }

    ngx_http_perstack_jw_raw(&jw, "\"type\":\"perstack.end\",\"execution\":");
    ngx_http_perstack_jw_str(&jw, f->id.data, f->id.len);
    ngx_http_perstack_jw_raw(&jw, ",\"outcome\":\"error\",\"exit_code\":null,"
                                  "\"message\":\"the worker that ran the "
                                  "execution exited before its end\"}");
    ngx_http_perstack_jw_raw(&jw, f->format == NGX_HTTP_PERSTACK_FORMAT_NDJSON
                                  ? "\n" : "\n\n");

    if (ngx_http_perstack_jw_failed(&jw)) {
        ngx_http_perstack_follow_finalize(f, NGX_ERROR);
        return;
    }

    data.data = jw.start;
    data.len = ngx_http_perstack_jw_len(&jw);

    if (ngx_http_perstack_follow_memory(f, data.data, data.len, 1)
        != NGX_ERROR)
    {
        ngx_http_perstack_follow_finalize(f, NGX_OK);
    }
}


static void
ngx_http_perstack_follow_finalize(ngx_http_perstack_follow_t *f,
    ngx_int_t rc)
{
    ngx_http_request_t  *r;

    r = f->request;

    if (r == NULL) {
        return;
    }

    f->done = 1;

    if (f->tick.timer_set) {
        ngx_del_timer(&f->tick);
    }

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_perstack_follow_cleanup(void *data)
{
    ngx_http_perstack_follow_t  *f = data;

    f->done = 1;

    if (f->tick.timer_set) {
        ngx_del_timer(&f->tick);
    }

    if (f->tick.posted) {
        ngx_delete_posted_event(&f->tick);
    }

    if (f->notify) {
        ngx_close_connection(f->notify);
        f->notify = NULL;
    }

    /* closing the descriptor releases the lock */

    if (f->events.fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(f->events.fd);
        f->events.fd = NGX_INVALID_FILE;
    }

    if (f->index != NGX_INVALID_FILE) {
        (void) ngx_close_file(f->index);
        f->index = NGX_INVALID_FILE;
    }

    f->request = NULL;
}


/* $perstack_outcome of a follower that had the end: the record's */

static void
ngx_http_perstack_follow_outcome(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_http_perstack_ctx_t          *ctx;
    ngx_http_perstack_loc_conf_t     *plcf;
    ngx_http_perstack_record_meta_t   meta;

    ctx = ngx_http_get_module_ctx(r, ngx_http_perstack_module);
    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    if (ctx == NULL || ctx->log.outcome != NULL) {
        return;
    }

    if (ngx_http_perstack_record_read_meta(r->pool, &plcf->record_path->name,
                                           id, &meta, r->connection->log)
        == NGX_OK
        && meta.ended && meta.outcome.len)
    {
        ctx->log.outcome = (char *) meta.outcome.data;
    }
}
