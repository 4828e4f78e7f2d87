
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * One execution: create, attach, start, stream, wait, remove; and the
 * events it sends to the client.
 *
 * The container is attached before it starts, so no output is lost.  The
 * response starts once the container runs, so that every failure up to
 * then is an HTTP status with a JSON body.  Output moves one event at a
 * time: while the client has not taken the last one, no more input is
 * parsed, and once the input buffer is full the transfer from Docker is
 * paused, which in turn blocks the container's writes.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_execution.h"
#include "ngx_http_perstack_docker.h"
#include "ngx_http_perstack_curl.h"
#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_sse.h"
#include "ngx_http_perstack_random.h"
#include "ngx_http_perstack_runtime.h"
#include "ngx_http_perstack_policy.h"
#include "ngx_http_perstack_workspace.h"
#include "ngx_http_perstack_gateway.h"
#include "ngx_http_perstack_limit.h"
#include "ngx_http_perstack_reaper.h"
#include "ngx_http_perstack_response.h"


#include <yajl/yajl_tree.h>


static void ngx_http_perstack_event_handler(ngx_event_t *ev);
static void ngx_http_perstack_stream_attached(void *data);
static ngx_int_t ngx_http_perstack_stream_write(void *data, u_char *p,
    size_t len);
static void ngx_http_perstack_request_cleanup(void *data);
static ngx_uint_t ngx_http_perstack_choose_format(ngx_http_request_t *r,
    ngx_uint_t format);
static void ngx_http_perstack_random_id(u_char *id);
static u_char *ngx_http_perstack_log_error(ngx_log_t *log, u_char *buf,
    size_t len);

static ngx_int_t ngx_http_perstack_ping(ngx_http_perstack_exec_t *exec);
static void ngx_http_perstack_ping_done(ngx_http_perstack_op_t *op);
static ngx_int_t ngx_http_perstack_create(ngx_http_perstack_exec_t *exec);
static void ngx_http_perstack_create_done(ngx_http_perstack_op_t *op);
static void ngx_http_perstack_attach_done(ngx_http_perstack_op_t *op);
static void ngx_http_perstack_start(ngx_event_t *ev);
static void ngx_http_perstack_start_done(ngx_http_perstack_op_t *op);
static void ngx_http_perstack_timeout(ngx_event_t *ev);
static void ngx_http_perstack_hold(ngx_event_t *ev);
static void ngx_http_perstack_exit_watch_handler(ngx_event_t *ev);
static void ngx_http_perstack_idle(ngx_event_t *ev);
static void ngx_http_perstack_stop(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_outcome_e outcome);
static ngx_int_t ngx_http_perstack_over_limits(
    ngx_http_perstack_exec_t *exec, size_t len, ngx_uint_t new_line);
static void ngx_http_perstack_stop_done(ngx_http_perstack_op_t *op);
static void ngx_http_perstack_wait(ngx_http_perstack_exec_t *exec);
static void ngx_http_perstack_wait_done(ngx_http_perstack_op_t *op);
static void ngx_http_perstack_remove(ngx_http_perstack_exec_t *exec);
static void ngx_http_perstack_remove_done(ngx_http_perstack_op_t *op);
static void ngx_http_perstack_fail(ngx_http_perstack_exec_t *exec,
    ngx_uint_t status, const char *code, ngx_str_t *message);
static void ngx_http_perstack_fail_logged(ngx_http_perstack_exec_t *exec,
    ngx_uint_t status, const char *code, ngx_str_t *message);
static ngx_http_perstack_op_t *ngx_http_perstack_call(
    ngx_http_perstack_exec_t *exec, const char *name,
    ngx_http_perstack_op_handler_pt handler);
static void ngx_http_perstack_call_done(ngx_http_perstack_op_t *op);
static void ngx_http_perstack_fail_op(ngx_http_perstack_op_t *op,
    const char *what);
static void ngx_http_perstack_end(ngx_http_perstack_exec_t *exec);
static void ngx_http_perstack_free_if_idle(ngx_http_perstack_exec_t *exec);
static void ngx_http_perstack_free_handler(ngx_event_t *ev);
static void ngx_http_perstack_free(ngx_http_perstack_exec_t *exec);
static ngx_int_t ngx_http_perstack_record(ngx_http_perstack_exec_t *exec);
static void ngx_http_perstack_recorded(ngx_event_t *ev);

static void ngx_http_perstack_process(ngx_event_t *ev);
static ngx_int_t ngx_http_perstack_next(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_demux_rc_e rc, ngx_http_perstack_line_t *line);
static ngx_int_t ngx_http_perstack_line(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_line_t *line);
static ngx_int_t ngx_http_perstack_part(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_line_t *line);
static ngx_int_t ngx_http_perstack_part_held(ngx_http_perstack_exec_t *exec);
static ngx_int_t ngx_http_perstack_raw_send(ngx_http_perstack_exec_t *exec,
    const u_char *data, size_t len, ngx_uint_t first, ngx_uint_t last);
static ngx_int_t ngx_http_perstack_text_send(ngx_http_perstack_exec_t *exec,
    unsigned stream, const u_char *data, size_t len, ngx_uint_t last);
static ngx_int_t ngx_http_perstack_cut(ngx_http_perstack_exec_t *exec,
    const char *reason);
static ngx_int_t ngx_http_perstack_scan_line(ngx_http_perstack_exec_t *exec);
static ngx_int_t ngx_http_perstack_held_drop(ngx_http_perstack_exec_t *exec,
    size_t len);
static size_t ngx_http_perstack_prefix_size(ngx_http_perstack_exec_t *exec,
    ngx_uint_t cut, ngx_uint_t *events);
static u_char *ngx_http_perstack_prefix(ngx_http_perstack_exec_t *exec,
    u_char *dst);
static ngx_int_t ngx_http_perstack_send_headers(
    ngx_http_perstack_exec_t *exec);
static ngx_int_t ngx_http_perstack_emit_text(ngx_http_perstack_exec_t *exec,
    const char *type, ngx_http_perstack_line_t *line);
static ngx_int_t ngx_http_perstack_emit_module(
    ngx_http_perstack_exec_t *exec, const char *type, u_char *last);
static size_t ngx_http_perstack_frame_size(ngx_http_perstack_exec_t *exec,
    uint64_t id, size_t type_len, const u_char *data, size_t len);
static u_char *ngx_http_perstack_frame(ngx_http_perstack_exec_t *exec,
    u_char *dst, uint64_t id, u_char *type, size_t type_len,
    const u_char *data, size_t len);
static ngx_int_t ngx_http_perstack_stderr(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_line_t *line);
static ngx_int_t ngx_http_perstack_emit(ngx_http_perstack_exec_t *exec,
    u_char *type, size_t type_len, const u_char *data, size_t len);
static ngx_int_t ngx_http_perstack_send(ngx_http_perstack_exec_t *exec,
    size_t len);
static ngx_int_t ngx_http_perstack_busy(ngx_http_perstack_exec_t *exec);
static void ngx_http_perstack_write_handler(ngx_http_request_t *r);
static void ngx_http_perstack_keepalive(ngx_event_t *ev);
static u_char *ngx_http_perstack_reserve(ngx_http_perstack_exec_t *exec,
    u_char **buf, size_t *size, size_t len);
static ngx_int_t ngx_http_perstack_escape(ngx_pool_t *pool, ngx_str_t *src,
    ngx_str_t *dst);


static ngx_queue_t  ngx_http_perstack_executions;
static ngx_uint_t   ngx_http_perstack_executions_ready;

/* while executions run: is the worker shutting down gracefully? */
static ngx_event_t       ngx_http_perstack_exit_watch;
static ngx_connection_t  ngx_http_perstack_exit_watch_conn;
static ngx_msec_t        ngx_http_perstack_shutdown_at;


static const char  *ngx_http_perstack_outcomes[] = {
    "none",
    "completed",
    "failed",
    "timeout",
    "error",
    "client_gone",
    "paused",
    "idle_timeout",
    "output_limit",
    "shutdown",
    "max_steps"
};


ngx_int_t
ngx_http_perstack_exec_start(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_str_t                  message;
    ngx_pool_t                *pool;
    ngx_log_t                 *log;
    ngx_http_cleanup_t        *cln;
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_perstack_exec_t  *exec;
    ngx_http_perstack_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    if (!ngx_http_perstack_executions_ready) {
        ngx_queue_init(&ngx_http_perstack_executions);
        ngx_http_perstack_executions_ready = 1;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    pool = ngx_create_pool(4096, clcf->error_log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    exec = ngx_pcalloc(pool, sizeof(ngx_http_perstack_exec_t));
    log = ngx_palloc(pool, sizeof(ngx_log_t));

    if (exec == NULL || log == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    exec->pool = pool;
    exec->ident = -1;
    exec->request = r;
    exec->conf = plcf;
    exec->docker = plcf->docker;
    exec->exit_code = -1;
    exec->started = ngx_current_msec;

    ngx_http_perstack_random_id(exec->id);

    /* the location's error log, told which execution is speaking */
    *log = *clcf->error_log;
    log->handler = ngx_http_perstack_log_error;
    log->data = exec;
    log->action = NULL;
    exec->log = log;
    pool->log = log;

    exec->format = ngx_http_perstack_choose_format(r, plcf->format);

    /* the request's pool goes with the client; the execution may not */
    exec->image.data = ngx_pstrdup(pool, &ctx->image);
    exec->image.len = ctx->image.len;
    exec->expert.data = ngx_pstrdup(pool, &ctx->expert);
    exec->expert.len = ctx->expert.len;
    exec->query.data = ngx_pstrdup(pool, &ctx->query);
    exec->query.len = ctx->query.len;
    exec->job.data = ngx_pstrdup(pool, &ctx->job);
    exec->job.len = ctx->job.len;
    exec->workspace.data = ngx_pstrdup(pool, &ctx->workspace);
    exec->workspace.len = ctx->workspace.len;
    /* a file name for the record's thread: NUL-terminated */
    exec->workspace_name.data = ngx_pnalloc(pool,
                                            ctx->workspace_name.len + 1);
    if (exec->workspace_name.data) {
        ngx_cpystrn(exec->workspace_name.data, ctx->workspace_name.data,
                    ctx->workspace_name.len + 1);
        exec->workspace_name.len = ctx->workspace_name.len;
    }
    exec->answer = ctx->answer;
    exec->continuing = ctx->continuing;

    exec->in_size = plcf->buffer_size;
    exec->in = ngx_palloc(pool, exec->in_size);

    exec->out_buf = ngx_calloc_buf(pool);

    if (exec->image.data == NULL || exec->expert.data == NULL
        || exec->query.data == NULL || exec->job.data == NULL
        || (ctx->workspace.len && exec->workspace.data == NULL)
        || exec->workspace_name.data == NULL
        || exec->in == NULL
        || exec->out_buf == NULL)
    {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    /* the credential first: perstack_env may name it */

    if (plcf->gateway_issue) {
        rc = ngx_http_perstack_gateway_issue(r, exec);

        if (rc != NGX_OK) {
            ngx_http_perstack_gateway_revoke(exec);
            ngx_destroy_pool(pool);

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            ngx_str_set(&message, "the gateway has no room for another "
                                  "execution's credential");

            rc = ngx_http_perstack_send_error(r,
                                              NGX_HTTP_SERVICE_UNAVAILABLE,
                                              "gateway_full", &message,
                                              NULL, NULL);
            ngx_http_finalize_request(r, rc);

            return NGX_OK;
        }
    }

    if (ngx_http_perstack_env_evaluate(r, exec) != NGX_OK) {
        ngx_http_perstack_gateway_revoke(exec);
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    ngx_http_perstack_demux_init(&exec->demux, plcf->max_line);

    exec->process_ev.handler = ngx_http_perstack_event_handler;
    exec->process_ev.data = exec;
    exec->process_ev.log = log;

    exec->start_ev.handler = ngx_http_perstack_event_handler;
    exec->start_ev.data = exec;
    exec->start_ev.log = log;

    exec->timeout_ev.handler = ngx_http_perstack_event_handler;
    exec->timeout_ev.data = exec;
    exec->timeout_ev.log = log;

    exec->idle_ev.handler = ngx_http_perstack_event_handler;
    exec->idle_ev.data = exec;
    exec->idle_ev.log = log;

    exec->ping_ev.handler = ngx_http_perstack_event_handler;
    exec->ping_ev.data = exec;
    exec->ping_ev.log = log;
    exec->ping_ev.cancelable = 1;

    /*
     * nginx lets a worker that shuts down gracefully (a reload, "nginx -s
     * quit") exit once no timer that cannot be cancelled is left.  This
     * one lasts as long as the execution may, so the worker stays until
     * the container is removed and the closing event is sent;
     * worker_shutdown_timeout still bounds the wait.
     */
    exec->hold_ev.handler = ngx_http_perstack_hold;
    exec->hold_ev.data = exec;
    exec->hold_ev.log = log;

    exec->free_ev.handler = ngx_http_perstack_free_handler;
    exec->free_ev.data = exec;
    exec->free_ev.log = log;

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        ngx_http_perstack_gateway_revoke(exec);
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_perstack_request_cleanup;
    cln->data = exec;

    ngx_queue_insert_tail(&ngx_http_perstack_executions, &exec->queue);

    if (ngx_http_perstack_exit_watch.handler == NULL) {
        ngx_http_perstack_exit_watch_conn.fd = (ngx_socket_t) -1;
        ngx_http_perstack_exit_watch.handler =
                                        ngx_http_perstack_exit_watch_handler;
        ngx_http_perstack_exit_watch.data = &ngx_http_perstack_exit_watch_conn;
        ngx_http_perstack_exit_watch.log = ngx_cycle->log;
        ngx_http_perstack_exit_watch.cancelable = 1;
    }

    if (!ngx_http_perstack_exit_watch.timer_set) {
        ngx_add_timer(&ngx_http_perstack_exit_watch, 1000);
    }

    ngx_add_timer(&exec->hold_ev, (plcf->timeout ? plcf->timeout
                                                 : NGX_HTTP_PERSTACK_HOLD_EXTRA)
                                  + plcf->stop_timeout
                                  + NGX_HTTP_PERSTACK_HOLD_EXTRA);

    /* a client that goes away is noticed while the container is prepared */
    r->read_event_handler = ngx_http_test_reading;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                   "perstack execution of \"%V\" in \"%V\"",
                   &exec->expert, &exec->image);

    ctx->exec = exec;

    /* the execution holds the slot from now on, however it ends */
    exec->slot = ctx->slot;
    ctx->slot = NULL;

    if (exec->docker->api_minor == 0) {
        rc = ngx_http_perstack_ping(exec);

    } else {
        rc = ngx_http_perstack_create(exec);
    }

    if (rc != NGX_OK) {
        ngx_str_set(&message, "internal error");
        ngx_http_perstack_fail(exec, NGX_HTTP_INTERNAL_SERVER_ERROR,
                               "internal_error", &message);
    }

    return NGX_OK;
}


/*
 * Our events finalize requests outside nginx's HTTP handlers, so, as
 * ngx_http_upstream does, they run what finalizing posted.
 */

static void
ngx_http_perstack_event_handler(ngx_event_t *ev)
{
    ngx_connection_t          *c;
    ngx_http_perstack_exec_t  *exec;

    exec = ev->data;
    c = exec->request ? exec->request->connection : NULL;

    if (ev == &exec->process_ev) {
        ngx_http_perstack_process(ev);

    } else if (ev == &exec->start_ev) {
        ngx_http_perstack_start(ev);

    } else if (ev == &exec->timeout_ev) {
        ngx_http_perstack_timeout(ev);

    } else if (ev == &exec->idle_ev) {
        ngx_http_perstack_idle(ev);

    } else {
        ngx_http_perstack_keepalive(ev);
    }

    if (c) {
        ngx_http_run_posted_requests(c);
    }
}


static void
ngx_http_perstack_hold(ngx_event_t *ev)
{
    ngx_http_perstack_exec_t  *exec;

    exec = ev->data;

    if (exec->conf->timeout == 0) {
        /* no time limit: it may run as long as it likes */
        ngx_add_timer(ev, NGX_HTTP_PERSTACK_HOLD_EXTRA);
        return;
    }

    /*
     * Its own timers would have ended it by now: it is stuck on the
     * engine.  A worker that shuts down stops waiting for it (and removes
     * its container as it exits).
     */
    ngx_log_error(NGX_LOG_WARN, exec->log, 0,
                  "perstack: execution still not over, in state %d",
                  (int) exec->state);
}


/*
 * A worker that shuts down gracefully lets its executions run to their
 * end.  With worker_shutdown_timeout, nginx closes every connection when
 * it passes; the executions are stopped before that, early enough for
 * their containers' grace period, so that each client still gets its
 * closing event, with the outcome "shutdown".
 */

static void
ngx_http_perstack_exit_watch_handler(ngx_event_t *ev)
{
    ngx_msec_t                 wait, stop;
    ngx_queue_t               *q, *next;
    ngx_core_conf_t           *ccf;
    ngx_http_perstack_exec_t  *exec;

    if (ngx_queue_empty(&ngx_http_perstack_executions)) {
        return;
    }

    if (!ngx_exiting) {
        ngx_add_timer(ev, 1000);
        return;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);

    if (ccf->shutdown_timeout == 0) {
        /* no limit: the executions end as they would have */
        return;
    }

    if (ngx_http_perstack_shutdown_at == 0) {
        /* the longest grace period any execution here has */
        stop = 0;

        for (q = ngx_queue_head(&ngx_http_perstack_executions);
             q != ngx_queue_sentinel(&ngx_http_perstack_executions);
             q = ngx_queue_next(q))
        {
            exec = ngx_queue_data(q, ngx_http_perstack_exec_t, queue);
            stop = ngx_max(stop, exec->conf->stop_timeout);
        }

        wait = (ccf->shutdown_timeout > stop + 2000)
               ? ccf->shutdown_timeout - stop - 2000 : 0;

        /* +1: zero means "not known yet" */
        ngx_http_perstack_shutdown_at = ngx_current_msec + wait + 1;

        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "perstack: shutting down, running executions are "
                      "stopped in %M ms", wait);
    }

    if (ngx_current_msec >= ngx_http_perstack_shutdown_at) {

        /* a stop that fails at once may free its execution */
        for (q = ngx_queue_head(&ngx_http_perstack_executions);
             q != ngx_queue_sentinel(&ngx_http_perstack_executions);
             q = next)
        {
            next = ngx_queue_next(q);
            exec = ngx_queue_data(q, ngx_http_perstack_exec_t, queue);

            if (exec->state == NGX_HTTP_PERSTACK_RUNNING && !exec->stopping) {
                ngx_log_error(NGX_LOG_NOTICE, exec->log, 0,
                              "perstack: worker shutting down, stopping "
                              "the execution");

                ngx_http_perstack_stop(exec,
                                       NGX_HTTP_PERSTACK_OUTCOME_SHUTDOWN);
            }
        }
    }

    /* executions that were still starting are stopped once they run */
    ngx_add_timer(ev, 200);
}


static void
ngx_http_perstack_request_cleanup(void *data)
{
    ngx_http_perstack_exec_t  *exec = data;

    exec->request = NULL;

    if (exec->state == NGX_HTTP_PERSTACK_DONE) {
        ngx_http_perstack_free_if_idle(exec);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, exec->log, 0,
                  "perstack: client gone, removing the container");

    if (exec->outcome == NGX_HTTP_PERSTACK_OUTCOME_NONE) {
        exec->outcome = NGX_HTTP_PERSTACK_OUTCOME_CLIENT_GONE;
    }

    exec->aborted = 1;

    if (exec->process_ev.posted) {
        ngx_delete_posted_event(&exec->process_ev);
    }

    switch (exec->state) {

    case NGX_HTTP_PERSTACK_PING:
    case NGX_HTTP_PERSTACK_CREATE:
        /* their handlers see "aborted" and remove what was made */
        break;

    default:
        ngx_http_perstack_remove(exec);
        break;
    }
}


static ngx_uint_t
ngx_http_perstack_choose_format(ngx_http_request_t *r, ngx_uint_t format)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    if (format != NGX_HTTP_PERSTACK_FORMAT_AUTO) {
        return format;
    }

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

        if (h[i].key.len != sizeof("Accept") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Accept",
                               sizeof("Accept") - 1) != 0)
        {
            continue;
        }

        if (ngx_strlcasestrn(h[i].value.data,
                             h[i].value.data + h[i].value.len,
                             (u_char *) "ndjson", sizeof("ndjson") - 2)
            != NULL)
        {
            return NGX_HTTP_PERSTACK_FORMAT_NDJSON;
        }
    }

    return NGX_HTTP_PERSTACK_FORMAT_SSE;
}


static void
ngx_http_perstack_random_id(u_char *id)
{
    ngx_http_perstack_random_string(id, NGX_HTTP_PERSTACK_ID_LEN,
                                    "0123456789abcdef");
}


static u_char *
ngx_http_perstack_log_error(ngx_log_t *log, u_char *buf, size_t len)
{
    u_char                    *p;
    ngx_http_perstack_exec_t  *exec;

    exec = log->data;

    p = ngx_snprintf(buf, len, ", execution: %*s",
                     (size_t) NGX_HTTP_PERSTACK_ID_LEN, exec->id);

    if (exec->container.len >= 12) {
        p = ngx_snprintf(p, len - (p - buf), ", container: %*s",
                         (size_t) 12, exec->container.data);
    }

    if (exec->request) {
        p = ngx_snprintf(p, len - (p - buf), ", client: %V",
                         &exec->request->connection->addr_text);
    }

    return p;
}


/*
 * An Engine API call of the execution's: counted in its calls in flight,
 * and handled through ngx_http_perstack_call_done(), which runs the
 * requests posted meanwhile (a handler may finalize the request, as in
 * ngx_http_upstream).
 */

static ngx_http_perstack_op_t *
ngx_http_perstack_call(ngx_http_perstack_exec_t *exec, const char *name,
    ngx_http_perstack_op_handler_pt handler)
{
    ngx_http_perstack_op_t  *op;

    op = ngx_http_perstack_docker_op(exec->pool, exec->log, &exec->ops, name,
                                     ngx_http_perstack_call_done, exec);
    if (op == NULL) {
        return NULL;
    }

    op->done = handler;

    return op;
}


static void
ngx_http_perstack_call_done(ngx_http_perstack_op_t *op)
{
    ngx_connection_t          *c;
    ngx_http_perstack_exec_t  *exec;

    exec = op->data;

    c = exec->request ? exec->request->connection : NULL;

    op->done(op);

    if (c) {
        ngx_http_run_posted_requests(c);
    }
}


static ngx_int_t
ngx_http_perstack_ping(ngx_http_perstack_exec_t *exec)
{
    ngx_str_t                path;
    ngx_http_perstack_op_t  *op;

    exec->state = NGX_HTTP_PERSTACK_PING;

    op = ngx_http_perstack_call(exec, "ping",
                                     ngx_http_perstack_ping_done);
    if (op == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&path, "/_ping");

    return ngx_http_perstack_docker_run(exec->docker, op, "GET", &path,
                                    ngx_min(exec->conf->docker_timeout,
                                            10000));
}


static void
ngx_http_perstack_ping_done(ngx_http_perstack_op_t *op)
{
    ngx_str_t                  message;
    ngx_http_perstack_exec_t  *exec;

    exec = op->data;

    if (exec->aborted) {
        ngx_http_perstack_end(exec);
        return;
    }

    if (op->result != CURLE_OK || op->status != 200) {
        ngx_http_perstack_fail_op(op, "ping");
        return;
    }

    if (ngx_http_perstack_docker_pinged(exec->docker, op, exec->log)
        != NGX_OK)
    {
        ngx_str_set(&message, "the Docker engine's API is older than 1.41");
        ngx_http_perstack_fail(exec, NGX_HTTP_BAD_GATEWAY, "docker_error",
                               &message);
        return;
    }

    if (ngx_http_perstack_create(exec) != NGX_OK) {
        ngx_str_set(&message, "internal error");
        ngx_http_perstack_fail(exec, NGX_HTTP_INTERNAL_SERVER_ERROR,
                               "internal_error", &message);
    }
}


static ngx_int_t
ngx_http_perstack_create(ngx_http_perstack_exec_t *exec)
{
    u_char                  *p;
    ngx_str_t                path;
    ngx_http_perstack_op_t  *op;

    exec->state = NGX_HTTP_PERSTACK_CREATE;

    op = ngx_http_perstack_call(exec, "create",
                                     ngx_http_perstack_create_done);
    if (op == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_perstack_container_config(exec, &op->body) != NGX_OK) {
        return NGX_ERROR;
    }

    path.len = sizeof("/containers/create?name=perstack-") - 1
               + NGX_HTTP_PERSTACK_ID_LEN;
    path.data = ngx_pnalloc(exec->pool, path.len);
    if (path.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(path.data, "/containers/create?name=perstack-%*s",
                    (size_t) NGX_HTTP_PERSTACK_ID_LEN, exec->id);
    path.len = p - path.data;

    return ngx_http_perstack_docker_run(exec->docker, op, "POST", &path,
                                    exec->conf->docker_timeout);
}


static void
ngx_http_perstack_create_done(ngx_http_perstack_op_t *op)
{
    size_t                     len;
    yajl_val                   tree, id;
    ngx_str_t                  path, message;
    ngx_http_perstack_op_t    *attach;
    ngx_http_perstack_exec_t  *exec;

    static const char  *id_path[] = { "Id", NULL };

    exec = op->data;

    if (op->result == CURLE_OK && op->status == 201
        && op->response_len == 0)
    {
        ngx_str_set(&message, "the Docker engine answered container "
                              "create with an empty body");
        ngx_http_perstack_fail(exec, NGX_HTTP_BAD_GATEWAY, "docker_error",
                               &message);
        return;
    }

    if (op->result == CURLE_OK && op->status == 201) {
        tree = ngx_http_perstack_json_tree(op->response, op->response_len, 0,
                                           NULL);
        id = tree ? yajl_tree_get(tree, id_path, yajl_t_string) : NULL;

        /* yajl_tree_get() checked the type: u.string is set */
        len = id ? ngx_strlen(id->u.string) : 0;

        if (len < 12 || len > 128) {
            if (tree) {
                yajl_tree_free(tree);
            }

            ngx_str_set(&message, "the Docker engine answered container "
                                  "create without an id");
            ngx_http_perstack_fail(exec, NGX_HTTP_BAD_GATEWAY,
                                   "docker_error", &message);
            return;
        }

        exec->container.len = len;
        exec->container.data = ngx_pnalloc(exec->pool, len);

        if (exec->container.data) {
            ngx_memcpy(exec->container.data, id->u.string, len);
        }

        yajl_tree_free(tree);

        if (exec->container.data == NULL) {
            exec->container.len = 0;
            ngx_str_set(&message, "internal error");
            ngx_http_perstack_fail(exec, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   "internal_error", &message);
            return;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, exec->log, 0,
                       "perstack container created: %V", &exec->container);
    }

    if (exec->aborted) {
        ngx_http_perstack_remove(exec);
        return;
    }

    if (op->result != CURLE_OK || op->status != 201) {

        if (op->result == CURLE_OK && op->status == 404) {
            ngx_log_error(NGX_LOG_ERR, exec->log, 0,
                          "perstack: image \"%V\" not found",
                          ngx_http_perstack_log_escape(exec->pool,
                                                       &exec->image));

            ngx_str_set(&message, "the image of this location is not on "
                                  "the Docker engine");
            exec->error_image = 1;
            ngx_http_perstack_fail(exec, NGX_HTTP_BAD_GATEWAY,
                                   "image_not_found", &message);
            return;
        }

        ngx_http_perstack_fail_op(op, "container create");
        return;
    }

    exec->state = NGX_HTTP_PERSTACK_ATTACH;

    attach = ngx_http_perstack_call(exec, "attach",
                                         ngx_http_perstack_attach_done);
    if (attach == NULL) {
        goto failed;
    }

    attach->stream = 1;
    attach->attached = ngx_http_perstack_stream_attached;
    attach->write = ngx_http_perstack_stream_write;
    attach->data = exec;

    path.len = sizeof("/containers//attach?stream=1&stdout=1&stderr=1") - 1
               + exec->container.len;
    path.data = ngx_pnalloc(exec->pool, path.len);
    if (path.data == NULL) {
        goto failed;
    }

    ngx_sprintf(path.data, "/containers/%V/attach?stream=1&stdout=1&stderr=1",
                &exec->container);

    /*
     * The stream itself has no time limit (the execution's timers bound
     * it), but the engine must answer the attach: start_ev waits for that.
     */
    ngx_add_timer(&exec->start_ev, exec->conf->docker_timeout);

    if (ngx_http_perstack_docker_run(exec->docker, attach, "POST", &path, 0) != NGX_OK) {
        goto failed;
    }

    exec->attach = attach;

    return;

failed:

    ngx_str_set(&message, "internal error");
    ngx_http_perstack_fail(exec, NGX_HTTP_INTERNAL_SERVER_ERROR,
                           "internal_error", &message);
}


static void
ngx_http_perstack_stream_attached(void *data)
{
    ngx_http_perstack_exec_t  *exec = data;

    /* called inside a libcurl callback: start from outside it */

    if (exec->start_ev.timer_set) {
        ngx_del_timer(&exec->start_ev);
    }

    if (exec->state == NGX_HTTP_PERSTACK_ATTACH && !exec->start_ev.posted) {
        ngx_post_event(&exec->start_ev, &ngx_posted_events);
    }
}


static void
ngx_http_perstack_start(ngx_event_t *ev)
{
    ngx_str_t                  path, message;
    ngx_http_perstack_op_t    *op;
    ngx_http_perstack_exec_t  *exec;

    exec = ev->data;

    if (exec->state != NGX_HTTP_PERSTACK_ATTACH || exec->aborted) {
        return;
    }

    if (ev->timedout) {
        ev->timedout = 0;

        ngx_str_set(&message, "container attach: the Docker engine did not "
                              "answer in time");
        ngx_http_perstack_fail(exec, NGX_HTTP_BAD_GATEWAY, "docker_error",
                               &message);
        return;
    }

    exec->state = NGX_HTTP_PERSTACK_START;

    op = ngx_http_perstack_call(exec, "start",
                                     ngx_http_perstack_start_done);
    if (op == NULL) {
        goto failed;
    }

    path.len = sizeof("/containers//start") - 1 + exec->container.len;
    path.data = ngx_pnalloc(exec->pool, path.len);
    if (path.data == NULL) {
        goto failed;
    }

    ngx_sprintf(path.data, "/containers/%V/start", &exec->container);

    if (ngx_http_perstack_docker_run(exec->docker, op, "POST", &path,
                                 exec->conf->docker_timeout)
        != NGX_OK)
    {
        goto failed;
    }

    return;

failed:

    ngx_str_set(&message, "internal error");
    ngx_http_perstack_fail(exec, NGX_HTTP_INTERNAL_SERVER_ERROR,
                           "internal_error", &message);
}


static void
ngx_http_perstack_start_done(ngx_http_perstack_op_t *op)
{
    ngx_http_perstack_exec_t  *exec;

    exec = op->data;

    if (exec->state == NGX_HTTP_PERSTACK_DONE) {
        ngx_http_perstack_free_if_idle(exec);
        return;
    }

    if (exec->aborted) {
        return;
    }

    if (op->result != CURLE_OK || (op->status != 204 && op->status != 304)) {
        ngx_http_perstack_fail_op(op, "container start");
        return;
    }

    exec->state = NGX_HTTP_PERSTACK_RUNNING;

    if (exec->conf->timeout) {
        ngx_add_timer(&exec->timeout_ev, exec->conf->timeout);
    }

    if (exec->conf->idle_timeout) {
        exec->last_input = ngx_current_msec;
        ngx_add_timer(&exec->idle_ev, exec->conf->idle_timeout);
    }

    if (exec->conf->ping_interval) {
        ngx_add_timer(&exec->ping_ev, exec->conf->ping_interval);
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, exec->log, 0,
                   "perstack container started");

    if (exec->request == NULL
        || ngx_http_perstack_send_headers(exec) != NGX_OK)
    {
        return;
    }

    if (!exec->process_ev.posted) {
        ngx_post_event(&exec->process_ev, &ngx_posted_events);
    }
}


static void
ngx_http_perstack_attach_done(ngx_http_perstack_op_t *op)
{
    ngx_str_t                  error;
    ngx_http_perstack_exec_t  *exec;

    exec = op->data;
    exec->attach = NULL;

    if (exec->state == NGX_HTTP_PERSTACK_DONE) {
        ngx_http_perstack_free_if_idle(exec);
        return;
    }

    if (exec->aborted) {
        return;
    }

    if (op->status != 200) {
        ngx_http_perstack_fail_op(op, "container attach");
        return;
    }

    if (op->result != CURLE_OK) {
        /* the wait that follows tells whether the engine is still there */
        error.data = (u_char *) op->error;
        error.len = ngx_strlen(op->error);

        ngx_log_error(NGX_LOG_WARN, exec->log, 0,
                      "perstack: the output stream broke: %V",
                      ngx_http_perstack_log_escape(exec->pool, &error));
    }

    exec->stream_done = 1;

    if (exec->state == NGX_HTTP_PERSTACK_RUNNING
        && !exec->process_ev.posted)
    {
        ngx_post_event(&exec->process_ev, &ngx_posted_events);
    }
}


static void
ngx_http_perstack_timeout(ngx_event_t *ev)
{
    ngx_http_perstack_exec_t  *exec;

    exec = ev->data;

    if (exec->state != NGX_HTTP_PERSTACK_RUNNING || exec->stopping) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, exec->log, 0,
                  "perstack: execution timed out after %M ms, stopping it",
                  exec->conf->timeout);

    ngx_http_perstack_stop(exec, NGX_HTTP_PERSTACK_OUTCOME_TIMEOUT);
}


static void
ngx_http_perstack_idle(ngx_event_t *ev)
{
    ngx_str_t                  message;
    ngx_msec_t                 idle, limit;
    ngx_http_perstack_exec_t  *exec;

    exec = ev->data;
    limit = exec->conf->idle_timeout;

    if (exec->state == NGX_HTTP_PERSTACK_WAIT) {
        /*
         * Either the stream was cut while the container runs on, or the
         * engine does not report an exit: the container is removed.
         */
        ngx_str_set(&message, "the container's output ended, but its exit "
                              "was not reported within 10 s: the engine cut "
                              "the stream (output may have been lost) or "
                              "does not answer");
        ngx_http_perstack_fail(exec, NGX_HTTP_BAD_GATEWAY, "docker_error",
                               &message);
        return;
    }

    if (exec->state != NGX_HTTP_PERSTACK_RUNNING || exec->stopping) {
        return;
    }

    idle = ngx_current_msec - exec->last_input;

    if (idle < limit) {
        ngx_add_timer(ev, limit - idle);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, exec->log, 0,
                  "perstack: no output for %M ms, stopping the execution",
                  idle);

    ngx_http_perstack_stop(exec, NGX_HTTP_PERSTACK_OUTCOME_IDLE_TIMEOUT);
}


/*
 * SIGTERM, then SIGKILL once the grace period (the container's
 * StopTimeout) passes; the stream ends as the container exits, and the
 * closing event gives the outcome.
 */

static void
ngx_http_perstack_stop(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_outcome_e outcome)
{
    ngx_str_t                  path;
    ngx_http_perstack_op_t    *op;

    if (exec->stopping || exec->state != NGX_HTTP_PERSTACK_RUNNING) {
        return;
    }

    if (exec->outcome == NGX_HTTP_PERSTACK_OUTCOME_NONE) {
        exec->outcome = outcome;
    }

    exec->stopping = 1;

    op = ngx_http_perstack_call(exec, "stop",
                                     ngx_http_perstack_stop_done);
    if (op == NULL) {
        goto failed;
    }

    path.len = sizeof("/containers//stop") - 1 + exec->container.len;
    path.data = ngx_pnalloc(exec->pool, path.len);
    if (path.data == NULL) {
        goto failed;
    }

    ngx_sprintf(path.data, "/containers/%V/stop", &exec->container);

    if (ngx_http_perstack_docker_run(exec->docker, op, "POST", &path,
                                 exec->conf->stop_timeout
                                 + exec->conf->docker_timeout)
        == NGX_OK)
    {
        return;
    }

failed:

    ngx_http_perstack_remove(exec);
}


static void
ngx_http_perstack_stop_done(ngx_http_perstack_op_t *op)
{
    ngx_http_perstack_exec_t  *exec;

    exec = op->data;

    if (exec->state == NGX_HTTP_PERSTACK_DONE) {
        ngx_http_perstack_free_if_idle(exec);
        return;
    }

    if (op->result != CURLE_OK
        || (op->status != 204 && op->status != 304 && op->status != 404))
    {
        ngx_log_error(NGX_LOG_ERR, exec->log, 0,
                      "perstack: container stop failed: curl %d, status %l",
                      op->result, op->status);

        ngx_http_perstack_remove(exec);
    }
}


static void
ngx_http_perstack_wait(ngx_http_perstack_exec_t *exec)
{
    ngx_str_t                path, message;
    ngx_http_perstack_op_t  *op;

    exec->state = NGX_HTTP_PERSTACK_WAIT;

    if (exec->ping_ev.timer_set) {
        ngx_del_timer(&exec->ping_ev);
    }

    /*
     * The output ends when the container exits.  If the container runs on
     * long after, its output no longer reaches us: the engine (or
     * something in between) cut the stream.
     */

    if (exec->idle_ev.timer_set) {
        ngx_del_timer(&exec->idle_ev);
    }

    ngx_add_timer(&exec->idle_ev, NGX_HTTP_PERSTACK_EXIT_GRACE);

    op = ngx_http_perstack_call(exec, "wait",
                                     ngx_http_perstack_wait_done);
    if (op == NULL) {
        goto failed;
    }

    path.len = sizeof("/containers//wait?condition=not-running") - 1
               + exec->container.len;
    path.data = ngx_pnalloc(exec->pool, path.len);
    if (path.data == NULL) {
        goto failed;
    }

    ngx_sprintf(path.data, "/containers/%V/wait?condition=not-running",
                &exec->container);

    /* the execution's own timeout still bounds a process left running */
    if (ngx_http_perstack_docker_run(exec->docker, op, "POST", &path, 0) == NGX_OK) {
        return;
    }

failed:

    ngx_str_set(&message, "internal error");
    ngx_http_perstack_fail(exec, NGX_HTTP_INTERNAL_SERVER_ERROR,
                           "internal_error", &message);
}


static void
ngx_http_perstack_wait_done(ngx_http_perstack_op_t *op)
{
    yajl_val                   tree, code;
    ngx_http_perstack_exec_t  *exec;

    static const char  *code_path[] = { "StatusCode", NULL };

    exec = op->data;

    if (exec->state == NGX_HTTP_PERSTACK_DONE) {
        ngx_http_perstack_free_if_idle(exec);
        return;
    }

    if (exec->aborted) {
        return;
    }

    if (op->result != CURLE_OK || op->status != 200) {
        ngx_http_perstack_fail_op(op, "container wait");
        return;
    }

    tree = ngx_http_perstack_json_tree(op->response, op->response_len, 0,
                                       NULL);
    code = tree ? yajl_tree_get(tree, code_path, yajl_t_number) : NULL;

    if (code && YAJL_IS_INTEGER(code)) {
        exec->exit_code = (ngx_int_t) YAJL_GET_INTEGER(code);
    }

    if (tree) {
        yajl_tree_free(tree);
    }

    if (exec->outcome == NGX_HTTP_PERSTACK_OUTCOME_NONE) {
        ngx_http_perstack_runtime_outcome(exec);
    }

    ngx_http_perstack_remove(exec);
}


static void
ngx_http_perstack_remove(ngx_http_perstack_exec_t *exec)
{
    ngx_str_t                path;
    ngx_http_perstack_op_t  *op;

    if (exec->state == NGX_HTTP_PERSTACK_REMOVE
        || exec->state == NGX_HTTP_PERSTACK_DONE)
    {
        return;
    }

    exec->state = NGX_HTTP_PERSTACK_REMOVE;

    /* the execution is over: its credential is no more */
    ngx_http_perstack_gateway_revoke(exec);

    if (exec->timeout_ev.timer_set) {
        ngx_del_timer(&exec->timeout_ev);
    }

    if (exec->idle_ev.timer_set) {
        ngx_del_timer(&exec->idle_ev);
    }

    if (exec->ping_ev.timer_set) {
        ngx_del_timer(&exec->ping_ev);
    }

    /* a paused stream would never end: nothing more is read from it */
    if (exec->attach) {
        ngx_http_perstack_curl_cancel(exec->attach);
        exec->attach = NULL;
    }

    if (exec->container.len == 0) {
        ngx_http_perstack_end(exec);
        return;
    }

    op = ngx_http_perstack_call(exec, "remove",
                                     ngx_http_perstack_remove_done);
    if (op == NULL) {
        goto failed;
    }

    path.len = sizeof("/containers/?force=1&v=1") - 1 + exec->container.len;
    path.data = ngx_pnalloc(exec->pool, path.len);
    if (path.data == NULL) {
        goto failed;
    }

    ngx_sprintf(path.data, "/containers/%V?force=1&v=1", &exec->container);

    if (ngx_http_perstack_docker_run(exec->docker, op, "DELETE", &path,
                                 exec->conf->docker_timeout)
        == NGX_OK)
    {
        return;
    }

failed:

    ngx_log_error(NGX_LOG_ALERT, exec->log, 0,
                  "perstack: could not ask for the removal of container "
                  "\"%V\"", &exec->container);

    ngx_http_perstack_reaper_soon();

    ngx_http_perstack_end(exec);
}


static void
ngx_http_perstack_remove_done(ngx_http_perstack_op_t *op)
{
    ngx_str_t                  message, error;
    ngx_http_perstack_exec_t  *exec;

    exec = op->data;

    if (op->result == CURLE_OK && (op->status == 204 || op->status == 404)) {
        exec->removed = 1;

    } else {
        ngx_http_perstack_docker_message(op, &message);

        error.data = (u_char *) op->error;
        error.len = ngx_strlen(op->error);

        ngx_log_error(NGX_LOG_ERR, exec->log, 0,
                      "perstack: removing container \"%V\" failed: "
                      "curl %d \"%V\", status %l: %V; the reaper tries "
                      "again", &exec->container, op->result,
                      ngx_http_perstack_log_escape(exec->pool, &error),
                      op->status,
                      ngx_http_perstack_log_escape(exec->pool, &message));

        ngx_http_perstack_reaper_soon();
    }

    ngx_http_perstack_end(exec);
}


static void
ngx_http_perstack_fail(ngx_http_perstack_exec_t *exec, ngx_uint_t status,
    const char *code, ngx_str_t *message)
{
    ngx_log_error(NGX_LOG_ERR, exec->log, 0, "perstack: %V", message);

    ngx_http_perstack_fail_logged(exec, status, code, message);
}


/* The failure is in the log already; message is what the client is told. */

static void
ngx_http_perstack_fail_logged(ngx_http_perstack_exec_t *exec,
    ngx_uint_t status, const char *code, ngx_str_t *message)
{
    if (exec->outcome == NGX_HTTP_PERSTACK_OUTCOME_NONE) {
        exec->outcome = NGX_HTTP_PERSTACK_OUTCOME_ERROR;
    }

    if (exec->message.len == 0) {
        exec->message.data = ngx_pstrdup(exec->pool, message);
        exec->message.len = exec->message.data ? message->len : 0;
        exec->error_status = status;
        exec->error_code = code;
    }

    ngx_http_perstack_remove(exec);
}


/* A failed Engine API call: the engine's words go to the log only. */

static void
ngx_http_perstack_fail_op(ngx_http_perstack_op_t *op, const char *what)
{
    ngx_str_t                  message;
    const char                *code;
    ngx_http_perstack_exec_t  *exec;

    exec = op->data;

    code = ngx_http_perstack_docker_failed(exec->docker, op, what, &message);

    ngx_http_perstack_fail_logged(exec, NGX_HTTP_BAD_GATEWAY, code, &message);
}


/*
 * The container is gone (or never was): tell the client how it ended.
 */

static void
ngx_http_perstack_end(ngx_http_perstack_exec_t *exec)
{
    u_char              *p, *last;
    size_t               len;
    ngx_int_t            rc;
    ngx_str_t            message;
    ngx_http_request_t  *r;

    exec->state = NGX_HTTP_PERSTACK_DONE;

    if (exec->timeout_ev.timer_set) {
        ngx_del_timer(&exec->timeout_ev);
    }

    if (exec->idle_ev.timer_set) {
        ngx_del_timer(&exec->idle_ev);
    }

    if (exec->ping_ev.timer_set) {
        ngx_del_timer(&exec->ping_ev);
    }

    /*
     * The container is gone: its slot is free before the client hears of
     * the end, so that the client's next request finds it free, in any
     * worker.  A container whose removal failed keeps its slot until the
     * execution is freed.
     */

    if (exec->slot && (exec->removed || exec->container.len == 0)) {
        ngx_http_perstack_limit_release(exec->slot);
        exec->slot = NULL;
    }

    /*
     * A job that ran in a workspace is recorded before the client hears
     * of its end, so that the client's next request finds the record.
     */

    if (exec->recording) {
        return;
    }

    if (exec->workspace_name.len && exec->headers_sent && !exec->recorded) {
        if (ngx_http_perstack_record(exec) == NGX_OK) {
            return;
        }

        exec->recorded = 1;
    }

    r = exec->request;

    ngx_log_error(NGX_LOG_INFO, exec->log, 0,
                  "perstack: execution ended: %s, exit code %i, %M ms, "
                  "%uL events", ngx_http_perstack_outcomes[exec->outcome],
                  exec->exit_code, ngx_current_msec - exec->started,
                  exec->sequence);

    if (r == NULL) {
        ngx_http_perstack_free_if_idle(exec);
        return;
    }

    if (!exec->headers_sent) {
        if (exec->error_code == NULL) {
            exec->error_status = NGX_HTTP_BAD_GATEWAY;
            exec->error_code = "docker_error";
            ngx_str_set(&exec->message, "the execution ended before it "
                                        "started");
        }

        message = exec->message;

        ngx_http_finalize_request(r,
                ngx_http_perstack_send_error(r, exec->error_status,
                                             exec->error_code, &message,
                                             exec->error_image ? "image"
                                                               : NULL,
                                             &exec->image));
        return;
    }

    if (exec->stderr_group_len && !ngx_http_perstack_busy(exec)) {
        /* stderr lines still held go first: the end counts them */
        if (ngx_http_perstack_emit(exec, NULL, 0, NULL, 0) == NGX_ERROR) {
            return;
        }
    }

    if (ngx_http_perstack_busy(exec)) {
        /* the write handler comes back here once the client took it all */
        exec->end_pending = 1;
        return;
    }

    exec->end_pending = 0;

    len = sizeof("{\"type\":\"perstack.end\",\"execution\":\"\","
                 "\"outcome\":\"client_gone\",\"exit_code\":,"
                 "\"duration_ms\":,\"events\":,\"container_removed\":false,"
                 "\"message\":\"\"}") - 1
          + NGX_HTTP_PERSTACK_ID_LEN + 3 * NGX_INT64_LEN
          + sizeof(",\"job\":\"\",\"pending_tool_calls\":") - 1
          + exec->job.len + exec->pending.len
          + sizeof(",\"error\":") - 1 + exec->run_error.len
          + ngx_http_perstack_json_escape_size(exec->message.data,
                                               exec->message.len);

    p = ngx_http_perstack_reserve(exec, &exec->scratch, &exec->scratch_size,
                                  len);
    if (p == NULL) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    last = ngx_sprintf(p, "{\"type\":\"perstack.end\",\"execution\":\"%*s\","
                          "\"outcome\":\"%s\",\"exit_code\":",
                       (size_t) NGX_HTTP_PERSTACK_ID_LEN, exec->id,
                       ngx_http_perstack_outcomes[exec->outcome]);

    if (exec->exit_code >= 0) {
        last = ngx_sprintf(last, "%i", exec->exit_code);

    } else {
        last = ngx_cpymem(last, "null", 4);
    }

    last = ngx_sprintf(last, ",\"duration_ms\":%M,\"events\":%uL,"
                             "\"container_removed\":%s",
                       ngx_current_msec - exec->started, exec->sequence + 1,
                       exec->removed ? "true" : "false");

    last = ngx_sprintf(last, ",\"job\":\"%V\"", &exec->job);

    if (exec->outcome == NGX_HTTP_PERSTACK_OUTCOME_PAUSED
        && exec->pending.len)
    {
        /* the review point: what to approve, and which job to continue */
        last = ngx_sprintf(last, ",\"pending_tool_calls\":%V",
                           &exec->pending);
    }

    if (exec->outcome == NGX_HTTP_PERSTACK_OUTCOME_FAILED
        && exec->run_outcome == NGX_HTTP_PERSTACK_OUTCOME_FAILED
        && exec->run_error.len)
    {
        /* the runtime's own error: stopRunByError's */
        last = ngx_sprintf(last, ",\"error\":%V", &exec->run_error);
    }

    if (exec->message.len) {
        last = ngx_cpymem(last, ",\"message\":\"", 12);
        last = ngx_http_perstack_json_escape(last, exec->message.data,
                                             exec->message.len);
        *last++ = '"';
    }

    *last++ = '}';

    rc = ngx_http_perstack_emit_module(exec, "perstack.end", last);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    rc = ngx_http_send_special(r, NGX_HTTP_LAST);

    ngx_http_finalize_request(r, rc == NGX_ERROR ? NGX_ERROR : NGX_OK);
}


/*
 * The job's record: {"job","expert","execution","outcome","exit_code",
 * "pendingToolCalls"}, the last only when the run paused and its calls
 * are not over NGX_HTTP_PERSTACK_RECORD_PENDING_MAX.
 */

static ngx_int_t
ngx_http_perstack_record(ngx_http_perstack_exec_t *exec)
{
    u_char     *p;
    size_t      len;
    ngx_str_t   record;
    ngx_uint_t  pending;

    pending = (exec->outcome == NGX_HTTP_PERSTACK_OUTCOME_PAUSED
               && exec->pending.len
               && exec->pending.len <= NGX_HTTP_PERSTACK_RECORD_PENDING_MAX);

    len = sizeof("{\"job\":\"\",\"expert\":\"\",\"execution\":\"\","
                 "\"outcome\":\"client_gone\",\"exit_code\":,"
                 "\"pendingToolCalls\":}\n") - 1
          + exec->job.len + NGX_HTTP_PERSTACK_ID_LEN + NGX_INT64_LEN
          + ngx_http_perstack_json_escape_size(exec->expert.data,
                                               exec->expert.len)
          + (pending ? exec->pending.len : 0);

    record.data = ngx_pnalloc(exec->pool, len);
    if (record.data == NULL) {
        goto failed;
    }

    p = ngx_sprintf(record.data, "{\"job\":\"%V\",\"expert\":\"", &exec->job);
    p = ngx_http_perstack_json_escape(p, exec->expert.data, exec->expert.len);
    p = ngx_sprintf(p, "\",\"execution\":\"%*s\",\"outcome\":\"%s\","
                       "\"exit_code\":",
                    (size_t) NGX_HTTP_PERSTACK_ID_LEN, exec->id,
                    ngx_http_perstack_outcomes[exec->outcome]);

    if (exec->exit_code >= 0) {
        p = ngx_sprintf(p, "%i", exec->exit_code);

    } else {
        p = ngx_cpymem(p, "null", 4);
    }

    if (pending) {
        p = ngx_sprintf(p, ",\"pendingToolCalls\":%V", &exec->pending);
    }

    *p++ = '}';
    *p++ = LF;

    record.len = p - record.data;

    if (ngx_http_perstack_workspace_record(exec, &record,
                                           ngx_http_perstack_recorded)
        != NGX_OK)
    {
        goto failed;
    }

    exec->recording = 1;
    exec->ops++;

    return NGX_OK;

failed:

    ngx_log_error(NGX_LOG_CRIT, exec->log, 0,
                  "perstack: the record of job \"%V\" could not be written",
                  &exec->job);

    return NGX_ERROR;
}


static void
ngx_http_perstack_recorded(ngx_event_t *ev)
{
    ngx_err_t                  err;
    ngx_connection_t          *c;
    const char                *what;
    ngx_http_perstack_exec_t  *exec;

    exec = ev->data;
    c = exec->request ? exec->request->connection : NULL;

    exec->ops--;
    exec->recording = 0;
    exec->recorded = 1;

    what = ngx_http_perstack_workspace_record_error(exec, &err);

    if (what) {
        ngx_log_error(NGX_LOG_CRIT, exec->log, err,
                      "perstack: the record of job \"%V\" could not be "
                      "written: %s", &exec->job, what);

        if (exec->message.len == 0) {
            ngx_str_set(&exec->message, "the job could not be recorded: it "
                                        "cannot be continued");
        }
    }

    ngx_http_perstack_end(exec);

    if (c) {
        ngx_http_run_posted_requests(c);
    }
}


/*
 * Finalizing the request from deep inside our own handlers (a stop that
 * fails, then a removal that fails, then the end) runs its cleanup, which
 * comes here: the execution is freed later, from an event of its own,
 * once every caller has returned.
 */

static void
ngx_http_perstack_free_if_idle(ngx_http_perstack_exec_t *exec)
{
    if (exec->state == NGX_HTTP_PERSTACK_DONE && exec->ops == 0
        && exec->request == NULL && !exec->free_ev.posted)
    {
        ngx_post_event(&exec->free_ev, &ngx_posted_events);
    }
}


static void
ngx_http_perstack_free_handler(ngx_event_t *ev)
{
    ngx_http_perstack_exec_t  *exec;

    exec = ev->data;

    if (exec->state == NGX_HTTP_PERSTACK_DONE && exec->ops == 0
        && exec->request == NULL)
    {
        ngx_http_perstack_free(exec);
    }
}


static void
ngx_http_perstack_free(ngx_http_perstack_exec_t *exec)
{
    ngx_event_t  *events[7];
    ngx_uint_t    i;

    events[0] = &exec->process_ev;
    events[1] = &exec->start_ev;
    events[2] = &exec->timeout_ev;
    events[3] = &exec->ping_ev;
    events[4] = &exec->idle_ev;
    events[5] = &exec->hold_ev;
    events[6] = &exec->free_ev;

    for (i = 0; i < 7; i++) {
        if (events[i]->timer_set) {
            ngx_del_timer(events[i]);
        }

        if (events[i]->posted) {
            ngx_delete_posted_event(events[i]);
        }
    }

    ngx_queue_remove(&exec->queue);

    ngx_http_perstack_gateway_revoke(exec);

    if (exec->slot) {
        ngx_http_perstack_limit_release(exec->slot);
        exec->slot = NULL;
    }

    ngx_http_perstack_demux_free(&exec->demux);

    if (exec->out) {
        ngx_free(exec->out);
    }

    if (exec->scratch) {
        ngx_free(exec->scratch);
    }

    if (exec->stderr_group) {
        ngx_free(exec->stderr_group);
    }

    if (exec->text) {
        ngx_free(exec->text);
    }

    if (exec->scan) {
        ngx_http_perstack_scan_free(exec->scan);
    }

    ngx_destroy_pool(exec->pool);
}


/* whether this worker's execution with this id runs on (the reaper's) */

ngx_uint_t
ngx_http_perstack_exec_running(u_char *id)
{
    ngx_queue_t               *q;
    ngx_http_perstack_exec_t  *exec;

    if (!ngx_http_perstack_executions_ready) {
        return 0;
    }

    for (q = ngx_queue_head(&ngx_http_perstack_executions);
         q != ngx_queue_sentinel(&ngx_http_perstack_executions);
         q = ngx_queue_next(q))
    {
        exec = ngx_queue_data(q, ngx_http_perstack_exec_t, queue);

        if (exec->state != NGX_HTTP_PERSTACK_DONE
            && ngx_memcmp(exec->id, id, NGX_HTTP_PERSTACK_ID_LEN) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The worker exits: no container may outlive it.
 */

void
ngx_http_perstack_exec_abort_all(ngx_cycle_t *cycle)
{
    u_char                     buf[sizeof("perstack-")
                                   + NGX_HTTP_PERSTACK_ID_LEN];
    ngx_str_t                  name;
    ngx_queue_t               *q;
    ngx_http_perstack_exec_t  *exec;

    if (!ngx_http_perstack_executions_ready) {
        return;
    }

    for (q = ngx_queue_head(&ngx_http_perstack_executions);
         q != ngx_queue_sentinel(&ngx_http_perstack_executions);
         q = ngx_queue_next(q))
    {
        exec = ngx_queue_data(q, ngx_http_perstack_exec_t, queue);

        if (exec->container.len && !exec->removed) {
            ngx_http_perstack_docker_remove_now(exec->docker,
                                                &exec->container,
                                                cycle->log);

        } else if (exec->state == NGX_HTTP_PERSTACK_CREATE) {
            /* created perhaps, its id not known yet: by its name then */
            name.len = ngx_sprintf(buf, "perstack-%*s",
                                   (size_t) NGX_HTTP_PERSTACK_ID_LEN,
                                   exec->id)
                       - buf;
            name.data = buf;

            ngx_http_perstack_docker_remove_now(exec->docker, &name,
                                                cycle->log);
        }

        ngx_http_perstack_gateway_revoke(exec);

        if (exec->slot) {
            ngx_http_perstack_limit_release(exec->slot);
            exec->slot = NULL;
        }
    }
}


/*
 * Output.
 */

static ngx_int_t
ngx_http_perstack_stream_write(void *data, u_char *p, size_t len)
{
    ngx_http_perstack_exec_t  *exec = data;

    if (exec->state >= NGX_HTTP_PERSTACK_REMOVE || exec->request == NULL) {
        /* nobody listens any more */
        return NGX_OK;
    }

    if (exec->in_size - exec->in_len < len) {
        exec->curl_paused = 1;

        if (exec->state == NGX_HTTP_PERSTACK_RUNNING
            && !exec->process_ev.posted)
        {
            ngx_post_event(&exec->process_ev, &ngx_posted_events);
        }

        return NGX_AGAIN;
    }

    ngx_memcpy(exec->in + exec->in_len, p, len);
    exec->in_len += len;
    exec->last_input = ngx_current_msec;

    if (exec->state == NGX_HTTP_PERSTACK_RUNNING
        && !exec->process_ev.posted)
    {
        ngx_post_event(&exec->process_ev, &ngx_posted_events);
    }

    return NGX_OK;
}


static void
ngx_http_perstack_process(ngx_event_t *ev)
{
    const u_char                  *pos, *last;
    ngx_str_t                      message;
    ngx_http_perstack_exec_t      *exec;
    ngx_http_perstack_line_t       line;
    ngx_http_perstack_demux_rc_e   rc;

    exec = ev->data;

    if (exec->state == NGX_HTTP_PERSTACK_DONE) {
        if (exec->end_pending && exec->request
            && !ngx_http_perstack_busy(exec))
        {
            ngx_http_perstack_end(exec);
        }

        return;
    }

    if (exec->state != NGX_HTTP_PERSTACK_RUNNING || exec->request == NULL) {
        return;
    }

    pos = exec->in;
    last = exec->in + exec->in_len;

    for ( ;; ) {

        if (ngx_http_perstack_busy(exec)) {
            break;
        }

        if (exec->held_len || (exec->held_dropped && !exec->raw_open)) {
            if (ngx_http_perstack_next(exec, NGX_HTTP_PERSTACK_DEMUX_AGAIN,
                                       NULL)
                == NGX_ERROR)
            {
                return;
            }

            continue;
        }

        rc = ngx_http_perstack_demux_next(&exec->demux, &pos, last, &line);

        if (rc == NGX_HTTP_PERSTACK_DEMUX_AGAIN) {
            /* no whole line left: the stderr lines held go now */
            if (exec->stderr_group_len
                && ngx_http_perstack_emit(exec, NULL, 0, NULL, 0)
                   == NGX_ERROR)
            {
                return;
            }

            break;
        }

        if (rc == NGX_HTTP_PERSTACK_DEMUX_LINE
            || rc == NGX_HTTP_PERSTACK_DEMUX_PIECE)
        {
            if (ngx_http_perstack_next(exec, rc, &line) == NGX_ERROR) {
                return;
            }

            continue;
        }

        /* a corrupt frame or no memory: the stream cannot go on */

        exec->in_len = 0;

        if (rc == NGX_HTTP_PERSTACK_DEMUX_ERROR) {
            ngx_str_set(&message, "the container's output stream from "
                                  "Docker is corrupt");

        } else {
            ngx_str_set(&message, "out of memory");
        }

        ngx_http_perstack_fail(exec, NGX_HTTP_BAD_GATEWAY, "docker_error",
                               &message);
        return;
    }

    /* keep what is left, at the start of the buffer */

    if (pos != exec->in) {
        exec->in_len = last - pos;
        ngx_memmove(exec->in, pos, exec->in_len);
    }

    /*
     * Resume Docker's transfer only when the client keeps up: unpausing
     * while output is pending would hand data back only to pause again,
     * and this handler would be posted in a loop.
     */

    if (exec->curl_paused && exec->in_len < exec->in_size / 2
        && exec->attach && exec->attach->easy
        && !ngx_http_perstack_busy(exec))
    {
        exec->curl_paused = 0;

        /* may deliver data, through the write callback, before it returns */
        curl_easy_pause(exec->attach->easy, CURLPAUSE_CONT);
        return;
    }

    if (!exec->stream_done || exec->in_len || ngx_http_perstack_busy(exec)) {
        return;
    }

    if (ngx_http_perstack_demux_truncated(&exec->demux)) {
        /*
         * The container's writes are whole frames: the engine cut the
         * stream, and the line it cut is not passed on half.
         */
        ngx_str_set(&message, "the Docker engine cut the container's "
                              "output inside a frame: output was lost");
        ngx_http_perstack_fail(exec, NGX_HTTP_BAD_GATEWAY, "docker_error",
                               &message);
        return;
    }

    /* the stream ended: lines without a final newline still count */

    for ( ;; ) {

        if (ngx_http_perstack_busy(exec)) {
            return;
        }

        if (exec->held_len || (exec->held_dropped && !exec->raw_open)) {
            rc = NGX_HTTP_PERSTACK_DEMUX_AGAIN;

        } else {
            rc = ngx_http_perstack_demux_flush(&exec->demux, &line);

            if (rc == NGX_HTTP_PERSTACK_DEMUX_AGAIN) {
                break;
            }
        }

        if (ngx_http_perstack_next(exec, rc, &line) == NGX_ERROR) {
            return;
        }
    }

    ngx_http_perstack_wait(exec);
}


/*
 * What comes next: the rest of a long line's first part, the report of
 * what was dropped while a long line streamed (both with rc AGAIN), or
 * what the demultiplexer returned.
 */

static ngx_int_t
ngx_http_perstack_next(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_demux_rc_e rc, ngx_http_perstack_line_t *line)
{
    u_char  *p;
    size_t   dropped;

    if (rc == NGX_HTTP_PERSTACK_DEMUX_LINE) {
        return ngx_http_perstack_line(exec, line);
    }

    if (rc == NGX_HTTP_PERSTACK_DEMUX_PIECE) {
        return ngx_http_perstack_part(exec, line);
    }

    if (exec->held_len) {
        return ngx_http_perstack_part_held(exec);
    }

    dropped = exec->held_dropped;
    exec->held_dropped = 0;

    ngx_log_error(NGX_LOG_WARN, exec->log, 0,
                  "perstack: dropped %uz bytes of stderr that came while a "
                  "long line streamed", dropped);

    p = ngx_http_perstack_reserve(exec, &exec->scratch, &exec->scratch_size,
                                  128);
    if (p == NULL) {
        ngx_http_finalize_request(exec->request, NGX_ERROR);
        return NGX_ERROR;
    }

    p = ngx_sprintf(p, "{\"type\":\"perstack.truncated\",\"stream\":\"stderr\","
                       "\"bytes\":%uz,\"limit\":%uz}",
                    dropped, (size_t) NGX_HTTP_PERSTACK_STDERR_GROUP_MAX);

    return ngx_http_perstack_emit_module(exec, "perstack.truncated", p);
}


static ngx_int_t
ngx_http_perstack_line(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_line_t *line)
{
    u_char                       type[NGX_HTTP_PERSTACK_TYPE_MAX];
    size_t                       type_len;
    ngx_http_perstack_json_rc_e  rc;

    if (ngx_http_perstack_over_limits(exec, line->len, 1)) {
        return NGX_OK;
    }

    if (line->stream == NGX_HTTP_PERSTACK_STDERR) {
        return ngx_http_perstack_stderr(exec, line);
    }

    if (exec->raw_open) {
        /* a line of the engine's while the runtime's streams */
        return ngx_http_perstack_held_drop(exec, line->len);
    }

    if (line->stream == NGX_HTTP_PERSTACK_SYSERR) {
        return ngx_http_perstack_emit_text(exec, "perstack.daemon", line);
    }

    rc = ngx_http_perstack_json_classify(line->data, line->len, type,
                                         &type_len);

    if (rc == NGX_HTTP_PERSTACK_JSON_OBJECT
        && type_len >= sizeof("perstack.") - 1
        && ngx_strncmp(type, "perstack.", sizeof("perstack.") - 1) == 0)
    {
        /* the module's namespace: a container cannot speak in it */
        return ngx_http_perstack_emit_text(exec, "perstack.stdout", line);
    }

    if (rc == NGX_HTTP_PERSTACK_JSON_OBJECT) {

        if (ngx_http_perstack_runtime_ends(type, type_len)) {
            /* the event that ends a run: what else it says, from the scan */

            if (ngx_http_perstack_scan_line(exec) != NGX_OK) {
                return NGX_ERROR;
            }

            if (ngx_http_perstack_scan_feed(exec->scan, line->data, line->len)
                == NGX_HTTP_PERSTACK_SCAN_OK)
            {
                (void) ngx_http_perstack_scan_end(exec->scan);
            }

            if (exec->scan->rc == NGX_HTTP_PERSTACK_SCAN_NOMEM) {
                ngx_http_finalize_request(exec->request, NGX_ERROR);
                return NGX_ERROR;
            }

            ngx_http_perstack_runtime_event(exec, type, type_len,
                                        exec->scan->rc
                                        == NGX_HTTP_PERSTACK_SCAN_OK
                                        ? exec->scan : NULL);
        }

        /* the runtime's event, byte for byte */
        return ngx_http_perstack_emit(exec, type, type_len, line->data,
                                      line->len);
    }

    if (rc == NGX_HTTP_PERSTACK_JSON_NOMEM) {
        ngx_http_finalize_request(exec->request, NGX_ERROR);
        return NGX_ERROR;
    }

    return ngx_http_perstack_emit_text(exec, "perstack.stdout", line);
}


/*
 * A part of a line longer than perstack_max_line.  With its first part,
 * the line's way is chosen: a stdout line that starts as a JSON object,
 * and whose first part the scanner takes, streams as the runtime's event;
 * any other line becomes text parts.  Nothing of the line was sent then,
 * so that a first part that is not JSON is text, as a short line would be.
 */

static ngx_int_t
ngx_http_perstack_part(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_line_t *line)
{
    size_t                        i;
    ngx_uint_t                    mode;
    ngx_http_perstack_scan_rc_e   rc;

    if (line->first) {
        exec->part_mode[line->stream] = NGX_HTTP_PERSTACK_PART_NONE;
        exec->carry_len[line->stream] = 0;
    }

    mode = exec->part_mode[line->stream];

    if (line->last) {
        exec->part_mode[line->stream] = NGX_HTTP_PERSTACK_PART_NONE;
    }

    if (ngx_http_perstack_over_limits(exec, line->len, line->first)) {
        return NGX_OK;
    }

    if (line->first) {
        mode = NGX_HTTP_PERSTACK_PART_TEXT;

        for (i = 0; i < line->len; i++) {
            if (line->data[i] != ' ' && line->data[i] != '\t'
                && line->data[i] != '\r')
            {
                break;
            }
        }

        if (line->stream == NGX_HTTP_PERSTACK_STDOUT && i < line->len
            && line->data[i] == '{')
        {
            if (ngx_http_perstack_scan_line(exec) != NGX_OK) {
                return NGX_ERROR;
            }

            rc = ngx_http_perstack_scan_feed(exec->scan, line->data,
                                             line->len);

            if (rc == NGX_HTTP_PERSTACK_SCAN_OK && line->last) {
                rc = ngx_http_perstack_scan_end(exec->scan);
            }

            if (rc == NGX_HTTP_PERSTACK_SCAN_NOMEM) {
                ngx_http_finalize_request(exec->request, NGX_ERROR);
                return NGX_ERROR;
            }

            if (rc == NGX_HTTP_PERSTACK_SCAN_OK) {
                mode = NGX_HTTP_PERSTACK_PART_RAW;
            }
        }

        if (!line->last) {
            exec->part_mode[line->stream] = mode;
        }

        /* sent in slices, each once the client took the last */

        exec->held = line->data;
        exec->held_len = line->len;
        exec->held_stream = line->stream;
        exec->held_first = 1;
        exec->held_last = line->last;
        exec->held_raw = (mode == NGX_HTTP_PERSTACK_PART_RAW);

        return ngx_http_perstack_part_held(exec);
    }

    switch (mode) {

    case NGX_HTTP_PERSTACK_PART_RAW:

        rc = ngx_http_perstack_scan_feed(exec->scan, line->data, line->len);

        if (rc == NGX_HTTP_PERSTACK_SCAN_OK && line->last) {
            rc = ngx_http_perstack_scan_end(exec->scan);
        }

        if (rc == NGX_HTTP_PERSTACK_SCAN_NOMEM) {
            ngx_http_finalize_request(exec->request, NGX_ERROR);
            return NGX_ERROR;
        }

        if (rc != NGX_HTTP_PERSTACK_SCAN_OK) {
            /* what was sent stays; the rest of the line is not passed */

            if (!line->last) {
                exec->part_mode[line->stream] = NGX_HTTP_PERSTACK_PART_SKIP;
            }

            return ngx_http_perstack_cut(exec, exec->scan->error);
        }

        return ngx_http_perstack_raw_send(exec, line->data, line->len, 0,
                                          line->last);

    case NGX_HTTP_PERSTACK_PART_TEXT:
        return ngx_http_perstack_text_send(exec, line->stream, line->data,
                                           line->len, line->last);

    default:
        /* the rest of a line cut short, or of one over the limits */
        return NGX_OK;
    }
}


/* the next slice of a long line's first part */

static ngx_int_t
ngx_http_perstack_part_held(ngx_http_perstack_exec_t *exec)
{
    size_t         n;
    ngx_uint_t     first, last;
    const u_char  *data;

    /* a text part is never over perstack_max_line, which it was held for */
    n = ngx_min(exec->held_len,
                ngx_min(NGX_HTTP_PERSTACK_SLICE, exec->conf->max_line));

    data = exec->held;
    first = exec->held_first;
    last = (n == exec->held_len) && exec->held_last;

    exec->held += n;
    exec->held_len -= n;
    exec->held_first = 0;

    if (exec->held_raw) {
        return ngx_http_perstack_raw_send(exec, data, n, first, last);
    }

    return ngx_http_perstack_text_send(exec, exec->held_stream, data, n,
                                       last);
}


/*
 * A slice of the runtime's event as it streams: its first opens the event
 * (after the stderr lines held), its last closes it, with the type the
 * scanner read, and the event then counts as a short one would.
 */

static ngx_int_t
ngx_http_perstack_raw_send(ngx_http_perstack_exec_t *exec,
    const u_char *data, size_t len, ngx_uint_t first, ngx_uint_t last)
{
    u_char                    *p, *q;
    size_t                     size;
    ngx_uint_t                 events, sse;
    ngx_http_perstack_scan_t  *scan;

    scan = exec->scan;
    sse = (exec->format != NGX_HTTP_PERSTACK_FORMAT_NDJSON);
    events = 0;
    size = 0;

    if (first) {
        size = ngx_http_perstack_prefix_size(exec, 0, &events);

        if (sse) {
            size += ngx_http_perstack_sse_open_size(exec->sequence + events
                                                    + 1);
        }
    }

    size += sse ? ngx_http_perstack_sse_data_size(data, len) : len;

    if (last) {
        size += sse ? ngx_http_perstack_sse_close_size(scan->type_len) : 1;
    }

    p = ngx_http_perstack_reserve(exec, &exec->out, &exec->out_size, size);
    if (p == NULL) {
        ngx_http_finalize_request(exec->request, NGX_ERROR);
        return NGX_ERROR;
    }

    q = p;

    if (first) {
        q = ngx_http_perstack_prefix(exec, q);

        exec->sequence++;
        exec->raw_open = 1;
        exec->raw_passed = 0;

        if (sse) {
            q = ngx_http_perstack_sse_open(q, exec->sequence);
        }
    }

    q = sse ? ngx_http_perstack_sse_data(q, data, len)
            : ngx_cpymem(q, data, len);

    exec->raw_passed += len;

    if (last) {
        if (sse) {
            q = ngx_http_perstack_sse_close(q, scan->type, scan->type_len);

        } else {
            *q++ = '\n';
        }

        exec->raw_open = 0;

        if (scan->type_len) {
            ngx_http_perstack_runtime_event(exec, scan->type, scan->type_len,
                                        scan);
        }
    }

    return ngx_http_perstack_send(exec, q - p);
}


/*
 * A slice of a long line as text: an event of its own, "partial" but for
 * the last, that never ends inside a UTF-8 character (the character's
 * start waits in the carry for the next slice).  While the runtime's
 * event streams, another stream's text cannot go, and is dropped.
 */

static ngx_int_t
ngx_http_perstack_text_send(ngx_http_perstack_exec_t *exec, unsigned stream,
    const u_char *data, size_t len, ngx_uint_t last)
{
    u_char      *p, *buf;
    size_t       n, cut, i, need;
    const char  *type;

    if (exec->raw_open) {
        exec->carry_len[stream] = 0;
        return ngx_http_perstack_held_drop(exec, len);
    }

    n = exec->carry_len[stream] + len;

    buf = ngx_http_perstack_reserve(exec, &exec->text, &exec->text_size, n);
    if (buf == NULL) {
        ngx_http_finalize_request(exec->request, NGX_ERROR);
        return NGX_ERROR;
    }

    ngx_memcpy(buf, exec->carry[stream], exec->carry_len[stream]);
    ngx_memcpy(buf + exec->carry_len[stream], data, len);

    cut = n;

    if (!last) {
        /* a lead byte in the last three whose sequence is not complete */

        for (i = n; i > 0 && n - i < 3; i--) {
            if ((buf[i - 1] & 0xc0) == 0x80) {
                continue;
            }

            if (buf[i - 1] >= 0xc0) {
                need = (buf[i - 1] >= 0xf0) ? 4 : (buf[i - 1] >= 0xe0) ? 3 : 2;

                if (n - (i - 1) < need) {
                    cut = i - 1;
                }
            }

            break;
        }
    }

    exec->carry_len[stream] = n - cut;
    ngx_memcpy(exec->carry[stream], buf + cut, n - cut);

    if (cut == 0 && !last) {
        return NGX_OK;
    }

    type = (stream == NGX_HTTP_PERSTACK_STDERR) ? "perstack.stderr"
           : (stream == NGX_HTTP_PERSTACK_SYSERR) ? "perstack.daemon"
           : "perstack.stdout";

    p = ngx_http_perstack_reserve(exec, &exec->scratch, &exec->scratch_size,
            sizeof("{\"type\":\"perstack.stdout\",\"text\":\"\","
                   "\"partial\":true}") - 1
            + ngx_http_perstack_json_escape_size(buf, cut));
    if (p == NULL) {
        ngx_http_finalize_request(exec->request, NGX_ERROR);
        return NGX_ERROR;
    }

    p = ngx_sprintf(p, "{\"type\":\"%s\",\"text\":\"", type);
    p = ngx_http_perstack_json_escape(p, buf, cut);
    p = ngx_cpymem(p, "\"", 1);

    if (!last) {
        p = ngx_cpymem(p, ",\"partial\":true", sizeof(",\"partial\":true") - 1);
    }

    *p++ = '}';

    return ngx_http_perstack_emit_module(exec, type, p);
}


/* the runtime's event that streams is cut short where it stands */

static ngx_int_t
ngx_http_perstack_cut(ngx_http_perstack_exec_t *exec, const char *reason)
{
    ngx_log_error(NGX_LOG_WARN, exec->log, 0,
                  "perstack: a line of stdout was cut after %O bytes: %s",
                  exec->raw_passed, reason);

    exec->cut_reason = reason;

    return ngx_http_perstack_emit(exec, NULL, 0, NULL, 0);
}


/* output of another stream while the runtime's event streams */

static ngx_int_t
ngx_http_perstack_held_drop(ngx_http_perstack_exec_t *exec, size_t len)
{
    exec->held_dropped += len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_perstack_scan_line(ngx_http_perstack_exec_t *exec)
{
    if (exec->scan == NULL) {
        exec->scan = ngx_pcalloc(exec->pool,
                                 sizeof(ngx_http_perstack_scan_t));
        if (exec->scan == NULL) {
            ngx_http_finalize_request(exec->request, NGX_ERROR);
            return NGX_ERROR;
        }
    }

    if (ngx_http_perstack_scan_start(exec->scan) != 0) {
        ngx_http_finalize_request(exec->request, NGX_ERROR);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * perstack_max_output and perstack_max_events: past either, nothing more is
 * passed on and the container is stopped.
 */

static ngx_int_t
ngx_http_perstack_over_limits(ngx_http_perstack_exec_t *exec, size_t len,
    ngx_uint_t new_line)
{
    ngx_http_perstack_loc_conf_t  *plcf;

    if (exec->over_limit) {
        return 1;
    }

    plcf = exec->conf;

    exec->output_bytes += len;
    exec->lines += new_line ? 1 : 0;

    if ((plcf->max_output && exec->output_bytes > (off_t) plcf->max_output)
        || (plcf->max_events && exec->lines > (ngx_uint_t) plcf->max_events))
    {
        ngx_log_error(NGX_LOG_WARN, exec->log, 0,
                      "perstack: output over the limit after %O bytes and "
                      "%ui lines, stopping the execution",
                      exec->output_bytes, exec->lines);

        exec->over_limit = 1;
        ngx_http_perstack_stop(exec, NGX_HTTP_PERSTACK_OUTCOME_OUTPUT_LIMIT);

        return 1;
    }

    return 0;
}


static ngx_int_t
ngx_http_perstack_send_headers(ngx_http_perstack_exec_t *exec)
{
    u_char              *p;
    size_t               len;
    ngx_int_t            rc;
    ngx_str_t            image, expert, id;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r;

    r = exec->request;

    r->headers_out.status = NGX_HTTP_OK;

    if (exec->format == NGX_HTTP_PERSTACK_FORMAT_NDJSON) {
        ngx_str_set(&r->headers_out.content_type, "application/x-ndjson");

    } else {
        ngx_str_set(&r->headers_out.content_type, "text/event-stream");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);

    id.data = exec->id;
    id.len = NGX_HTTP_PERSTACK_ID_LEN;

    /* X-Accel-Buffering: a proxy in front must not hold events back */

    if (ngx_http_perstack_add_header(r, "Cache-Control", "no-cache") == NULL
        || ngx_http_perstack_add_header(r, "X-Accel-Buffering", "no") == NULL
        || (h = ngx_http_perstack_add_header(r, "X-Perstack-Execution", ""))
           == NULL)
    {
        goto failed;
    }

    h->value = id;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return NGX_ERROR;
    }

    exec->headers_sent = 1;

    if (ngx_http_perstack_escape(exec->pool, &exec->image, &image) != NGX_OK
        || ngx_http_perstack_escape(exec->pool, &exec->expert, &expert)
           != NGX_OK)
    {
        goto failed;
    }

    len = sizeof("{\"type\":\"perstack.execution\",\"execution\":\"\","
                 "\"container\":\"\",\"image\":\"\",\"expert\":\"\","
                 "\"job\":\"\",\"continued\":false}") - 1
          + NGX_HTTP_PERSTACK_ID_LEN + exec->container.len + image.len
          + expert.len + exec->job.len;

    p = ngx_http_perstack_reserve(exec, &exec->scratch, &exec->scratch_size,
                                  len);
    if (p == NULL) {
        goto failed;
    }

    p = ngx_sprintf(p, "{\"type\":\"perstack.execution\",\"execution\":\"%*s\","
                       "\"container\":\"%V\",\"image\":\"%V\","
                       "\"expert\":\"%V\",\"job\":\"%V\","
                       "\"continued\":%s}",
                    (size_t) NGX_HTTP_PERSTACK_ID_LEN, exec->id,
                    &exec->container, &image, &expert, &exec->job,
                    exec->continuing ? "true" : "false");

    if (ngx_http_perstack_emit_module(exec, "perstack.execution", p)
        == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    return NGX_OK;

failed:

    ngx_http_finalize_request(r, NGX_ERROR);
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_perstack_emit_text(ngx_http_perstack_exec_t *exec, const char *type,
    ngx_http_perstack_line_t *line)
{
    u_char  *p;
    size_t   len;

    len = sizeof("{\"type\":\"\",\"text\":\"\"}") - 1 + ngx_strlen(type)
          + ngx_http_perstack_json_escape_size(line->data, line->len);

    p = ngx_http_perstack_reserve(exec, &exec->scratch, &exec->scratch_size,
                                  len);
    if (p == NULL) {
        ngx_http_finalize_request(exec->request, NGX_ERROR);
        return NGX_ERROR;
    }

    p = ngx_sprintf(p, "{\"type\":\"%s\",\"text\":\"", type);
    p = ngx_http_perstack_json_escape(p, line->data, line->len);
    *p++ = '"';
    *p++ = '}';

    return ngx_http_perstack_emit_module(exec, type, p);
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

static ngx_int_t
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

    p = ngx_http_perstack_reserve(exec, &exec->out, &exec->out_size, size);
    if (p == NULL) {
        ngx_http_finalize_request(exec->request, NGX_ERROR);
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

static size_t
ngx_http_perstack_prefix_size(ngx_http_perstack_exec_t *exec, ngx_uint_t cut,
    ngx_uint_t *events)
{
    u_char  *p;
    size_t   size;

    size = 0;
    *events = 0;
    exec->invalid_len = 0;

    if (cut) {
        p = ngx_snprintf(exec->invalid, sizeof(exec->invalid),
                         "{\"type\":\"perstack.invalid\",\"stream\":\"stdout\","
                         "\"passed\":%O,\"reason\":\"%s\"}",
                         exec->raw_passed,
                         exec->cut_reason ? exec->cut_reason
                                          : "the execution ended inside it");
        exec->invalid_len = p - exec->invalid;

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
        exec->stderr_group[exec->stderr_group_len++] = '"';
        exec->stderr_group[exec->stderr_group_len++] = '}';

        (*events)++;
        size += ngx_http_perstack_frame_size(exec, exec->sequence + *events,
                                             sizeof("perstack.stderr") - 1,
                                             exec->stderr_group,
                                             exec->stderr_group_len);
    }

    return size;
}


static u_char *
ngx_http_perstack_prefix(ngx_http_perstack_exec_t *exec, u_char *dst)
{
    if (exec->invalid_len) {
        if (exec->format == NGX_HTTP_PERSTACK_FORMAT_NDJSON) {
            *dst++ = '\n';

        } else {
            dst = ngx_http_perstack_sse_close(dst, NULL, 0);
        }

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
        return len + 1;
    }

    return ngx_http_perstack_sse_size(id, type_len, data, len);
}


static u_char *
ngx_http_perstack_frame(ngx_http_perstack_exec_t *exec, u_char *dst,
    uint64_t id, u_char *type, size_t type_len, const u_char *data,
    size_t len)
{
    if (exec->format == NGX_HTTP_PERSTACK_FORMAT_NDJSON) {
        dst = ngx_cpymem(dst, data, len);
        *dst++ = '\n';
        return dst;
    }

    return ngx_http_perstack_sse_write(dst, id, type, type_len, data, len);
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

static ngx_int_t
ngx_http_perstack_stderr(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_line_t *line)
{
    u_char  *p;
    size_t   len, head;

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
            ngx_http_finalize_request(exec->request, NGX_ERROR);
            return NGX_ERROR;
        }
    }

    p = exec->stderr_group + exec->stderr_group_len;

    if (exec->stderr_group_len == 0) {
        p = ngx_cpymem(p, "{\"type\":\"perstack.stderr\",\"text\":\"", head);

    } else {
        *p++ = '\\';
        *p++ = 'n';
    }

    p = ngx_http_perstack_json_escape(p, line->data, line->len);

    exec->stderr_group_len = p - exec->stderr_group;

    return NGX_OK;
}


static ngx_int_t
ngx_http_perstack_send(ngx_http_perstack_exec_t *exec, size_t len)
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
        ngx_http_finalize_request(r, NGX_ERROR);
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
            ngx_http_finalize_request(r, NGX_ERROR);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The last event is still on its way: its buffer cannot be reused yet.
 */

static ngx_int_t
ngx_http_perstack_busy(ngx_http_perstack_exec_t *exec)
{
    ngx_buf_t  *b;

    b = exec->out_buf;

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

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, NGX_ETIMEDOUT,
                      "perstack: client timed out");
        r->connection->timedout = 1;
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_perstack_module);
    if (ctx == NULL || ctx->exec == NULL) {
        return;
    }

    exec = ctx->exec;

    rc = ngx_http_output_filter(r, NULL);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (ngx_http_perstack_busy(exec)) {
        if (!wev->delayed) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_ERROR);
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


static void
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

    p = ngx_http_perstack_reserve(exec, &exec->out, &exec->out_size, len);
    if (p == NULL) {
        return;
    }

    ngx_memcpy(p, len == 1 ? "\n" : NGX_HTTP_PERSTACK_SSE_PING, len);

    if (ngx_http_perstack_send(exec, len) != NGX_OK) {
        return;
    }

    ngx_add_timer(ev, interval);
}


/*
 * A buffer of at least len bytes, reused from one event to the next; it
 * grows to the largest event seen, which perstack_max_line bounds.
 */

static u_char *
ngx_http_perstack_reserve(ngx_http_perstack_exec_t *exec, u_char **buf,
    size_t *size, size_t len)
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
        ngx_free(*buf);
    }

    *buf = p;
    *size = n;

    return p;
}


static ngx_int_t
ngx_http_perstack_escape(ngx_pool_t *pool, ngx_str_t *src, ngx_str_t *dst)
{
    u_char  *p;

    dst->len = ngx_http_perstack_json_escape_size(src->data, src->len);

    dst->data = ngx_pnalloc(pool, dst->len + 1);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_http_perstack_json_escape(dst->data, src->data, src->len);
    dst->len = p - dst->data;

    return NGX_OK;
}
