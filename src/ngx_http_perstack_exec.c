
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * One execution: its start, its timers, its client, and a worker's
 * shutdown.  The request's steps end here: the execution is created with
 * its own pool (it outlives its request when the client goes away), then
 * lives through ngx_http_perstack_container.c, its lines through
 * ngx_http_perstack_lines.c, its events through ngx_http_perstack_output.c.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_exec.h"
#include "ngx_http_perstack_metrics.h"
#include "ngx_http_perstack_lines.h"
#include "ngx_http_perstack_container.h"
#include "ngx_http_perstack_output.h"
#include "ngx_http_perstack_docker.h"
#include "ngx_http_perstack_end.h"
#include "ngx_http_perstack_engines.h"
#include "ngx_http_perstack_gateway.h"
#include "ngx_http_perstack_limit.h"
#include "ngx_http_perstack_policy.h"
#include "ngx_http_perstack_random.h"
#include "ngx_http_perstack_record.h"
#include "ngx_http_perstack_response.h"
#include "ngx_http_perstack_runtime.h"

#include <yajl/yajl_tree.h>


static void ngx_http_perstack_event_handler(ngx_event_t *ev);
static void ngx_http_perstack_hold(ngx_event_t *ev);
static void ngx_http_perstack_exit_watch_handler(ngx_event_t *ev);
static void ngx_http_perstack_request_cleanup(void *data);
static ngx_uint_t ngx_http_perstack_choose_format(ngx_http_request_t *r,
    ngx_uint_t format);
static ngx_int_t ngx_http_perstack_random_id(u_char *id);
static u_char *ngx_http_perstack_log_error(ngx_log_t *log, u_char *buf,
    size_t len);
static void ngx_http_perstack_timeout(ngx_event_t *ev);
static void ngx_http_perstack_idle(ngx_event_t *ev);
static void ngx_http_perstack_watch(ngx_event_t *ev);
static void ngx_http_perstack_log_summary(ngx_http_request_t *r,
    ngx_http_perstack_exec_t *exec, const char *outcome);


static ngx_queue_t  ngx_http_perstack_executions;
static ngx_uint_t   ngx_http_perstack_executions_ready;

/* while executions run: is the worker shutting down gracefully? */
static ngx_event_t       ngx_http_perstack_exit_watch;
static ngx_connection_t  ngx_http_perstack_exit_watch_conn;
static ngx_msec_t        ngx_http_perstack_shutdown_at;


ngx_int_t
ngx_http_perstack_exec_start(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_str_t                  message;
    ngx_uint_t                 status;
    ngx_pool_t                *pool;
    ngx_log_t                 *log;
    const char                *code;
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

    pool = ngx_create_pool(6144, clcf->error_log);
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
    exec->request_start = (uint64_t) r->start_sec * 1000 + r->start_msec;

    if (ngx_http_perstack_random_id(exec->id) != NGX_OK) {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                      "perstack: no randomness for an execution's id");
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

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

    if (ctx->engine.len) {
        exec->affinity.data = ngx_pstrdup(pool, &ctx->engine);
        exec->affinity.len = exec->affinity.data ? ctx->engine.len : 0;
    }

    /* exec->in: allocated as output comes */
    exec->in_size = plcf->buffer_size;

    exec->out_buf = ngx_calloc_buf(pool);

    if (exec->image.data == NULL || exec->expert.data == NULL
        || exec->query.data == NULL || exec->job.data == NULL
        || (ctx->workspace.len && exec->workspace.data == NULL)
        || exec->workspace_name.data == NULL
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
            ngx_http_perstack_finalize(exec, rc);

            return NGX_OK;
        }
    }

    if (ngx_http_perstack_env_evaluate(r, exec) != NGX_OK
        || ngx_http_perstack_record_owner(r, plcf->owner, pool, &exec->owner)
           != NGX_OK)
    {
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

    exec->watch_ev.handler = ngx_http_perstack_event_handler;
    exec->watch_ev.data = exec;
    exec->watch_ev.log = log;
    exec->watch_ev.cancelable = 1;

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

    ngx_http_perstack_metrics_started();

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

    if (plcf->engines
        && ngx_http_perstack_engines_pick(exec, plcf->engines, &exec->affinity,
                                          &status, &code, &message)
           != NGX_OK)
    {
        ngx_http_perstack_fail(exec, status, code, &message);
        return NGX_OK;
    }

    if (ngx_http_perstack_begin(exec) != NGX_OK) {
        ngx_http_perstack_fail_internal(exec);
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

    } else if (ev == &exec->watch_ev) {
        ngx_http_perstack_watch(ev);

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

    ngx_http_request_t  *r;

    r = exec->request;
    exec->request = NULL;

    if (exec->state == NGX_HTTP_PERSTACK_DONE) {
        ngx_http_perstack_log_summary(r, exec, NULL);

        if (exec->end_pending) {
            /* the closing event waited for the client: it goes on record */
            ngx_post_event(&exec->process_ev, &ngx_posted_events);
            return;
        }

        ngx_http_perstack_free_if_idle(exec);
        return;
    }

    /*
     * A client that had the stream's first event may come back for the
     * rest: the execution runs on, recorded, for perstack_detach_timeout
     * after the last client went.
     */

    if (exec->conf->detach_timeout && exec->headers_sent && exec->record
        && !exec->record->failed && !exec->record->full
        && exec->state == NGX_HTTP_PERSTACK_RUNNING && !exec->stopping)
    {
        ngx_log_error(NGX_LOG_INFO, exec->log, 0,
                      "perstack: client gone, the execution runs on for "
                      "%M ms unless a client follows it",
                      exec->conf->detach_timeout);

        exec->detached = 1;
        exec->detached_at = ngx_current_msec;

        ngx_http_perstack_log_summary(r, exec, "detached");

        /* nothing holds the output back now */
        if (!exec->process_ev.posted) {
            ngx_post_event(&exec->process_ev, &ngx_posted_events);
        }

        return;
    }

    ngx_log_error(NGX_LOG_INFO, exec->log, 0,
                  "perstack: client gone, removing the container");

    if (exec->outcome == NGX_HTTP_PERSTACK_OUTCOME_NONE) {
        exec->outcome = NGX_HTTP_PERSTACK_OUTCOME_CLIENT_GONE;
    }

    ngx_http_perstack_log_summary(r, exec, NULL);

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


/*
 * What the access log tells of the execution, kept in the request's
 * context as the request lets go of it: the log is written after.
 * outcome NULL: the execution's own; an error before the stream: its code.
 */

static void
ngx_http_perstack_log_summary(ngx_http_request_t *r,
    ngx_http_perstack_exec_t *exec, const char *outcome)
{
    ngx_str_t                 s;
    ngx_http_perstack_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_perstack_module);

    if (ctx == NULL) {
        return;
    }

    s.data = exec->id;
    s.len = NGX_HTTP_PERSTACK_ID_LEN;

    ctx->log.execution.data = ngx_pstrdup(r->pool, &s);
    ctx->log.execution.len = ctx->log.execution.data ? s.len : 0;

    if (exec->container.len) {
        ctx->log.container.data = ngx_pstrdup(r->pool, &exec->container);
        ctx->log.container.len = ctx->log.container.data
                                 ? exec->container.len : 0;
    }

    /* (the configuration's, which outlives the request) */
    if (exec->docker) {
        ctx->log.engine = exec->docker->name;
    }

    if (outcome == NULL) {
        outcome = (!exec->headers_sent && exec->error_code)
                  ? exec->error_code
                  : ngx_http_perstack_outcome_name(exec->outcome);
    }

    ctx->log.outcome = outcome;
    ctx->log.exit_code = exec->exit_code;
    ctx->log.events = exec->sequence;
    ctx->log.duration = (ngx_msec_int_t) (ngx_current_msec - exec->started);
    ctx->log.ttfe = exec->first_line
                    ? (ngx_msec_int_t) (exec->first_line
                                        - exec->request_start)
                    : -1;
    ctx->log.ran = 1;
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


/* 128 bits from the kernel: an id nobody can guess */

static ngx_int_t
ngx_http_perstack_random_id(u_char *id)
{
    u_char  bytes[NGX_HTTP_PERSTACK_ID_LEN / 2];

    if (ngx_http_perstack_random_bytes(bytes, sizeof(bytes)) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_hex_dump(id, bytes, sizeof(bytes));

    return NGX_OK;
}


/*
 * Once a second while the container runs: a DELETE's cancel, and, once
 * the client went, whether anyone follows the execution; nobody for
 * perstack_detach_timeout stops it.
 */

static void
ngx_http_perstack_watch(ngx_event_t *ev)
{
    ngx_http_perstack_exec_t  *exec;

    exec = ev->data;

    if (exec->state != NGX_HTTP_PERSTACK_RUNNING || exec->stopping) {
        return;
    }

    if (ngx_http_perstack_record_cancelled(exec)) {
        ngx_log_error(NGX_LOG_INFO, exec->log, 0,
                      "perstack: execution cancelled");

        ngx_http_perstack_stop(exec, NGX_HTTP_PERSTACK_OUTCOME_CANCELLED);
        return;
    }

    if (exec->detached) {

        if (ngx_http_perstack_record_followed(exec)) {
            exec->detached_at = ngx_current_msec;

        } else if (ngx_current_msec - exec->detached_at
                   >= exec->conf->detach_timeout)
        {
            ngx_log_error(NGX_LOG_INFO, exec->log, 0,
                          "perstack: no client followed the execution for "
                          "%M ms, stopping it", exec->conf->detach_timeout);

            ngx_http_perstack_stop(exec, NGX_HTTP_PERSTACK_OUTCOME_ABANDONED);
            return;
        }
    }

    ngx_add_timer(ev, NGX_HTTP_PERSTACK_WATCH);
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
        ngx_http_perstack_engines_release(exec);

        if (exec->slot) {
            ngx_http_perstack_limit_release(exec->slot);
            exec->slot = NULL;
        }
    }
}
