
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * How an execution ends, once its container is gone or never was: the
 * closing event, the job's record, the admission slot and the engine
 * given back, and the execution freed.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_end.h"
#include "ngx_http_perstack_engines.h"
#include "ngx_http_perstack_metrics.h"
#include "ngx_http_perstack_output.h"
#include "ngx_http_perstack_record.h"
#include "ngx_http_perstack_curl.h"
#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_runtime.h"
#include "ngx_http_perstack_workspace.h"
#include "ngx_http_perstack_gateway.h"
#include "ngx_http_perstack_limit.h"
#include "ngx_http_perstack_response.h"
#include "ngx_http_perstack_scan.h"
#include "ngx_http_perstack_stream.h"


static ngx_int_t ngx_http_perstack_record(ngx_http_perstack_exec_t *exec);
static void ngx_http_perstack_recorded(ngx_event_t *ev);
static void ngx_http_perstack_free(ngx_http_perstack_exec_t *exec);


/*
 * Each step of the execution's life, for "debug_http": ping, create,
 * attach, start, running, wait, remove, done.
 */

void
ngx_http_perstack_set_state(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_state_e state)
{
    /* (a debug line gets no log handler's context: the id is here) */
    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, exec->log, 0,
                   "perstack execution: %s -> %s, execution: %*s",
                   ngx_http_perstack_state_name(exec->state),
                   ngx_http_perstack_state_name(state),
                   (size_t) NGX_HTTP_PERSTACK_ID_LEN, exec->id);

    exec->state = state;
}


/* the timers of a running execution: its limits and its keep-alives */

void
ngx_http_perstack_stop_timers(ngx_http_perstack_exec_t *exec)
{
    if (exec->timeout_ev.timer_set) {
        ngx_del_timer(&exec->timeout_ev);
    }

    if (exec->idle_ev.timer_set) {
        ngx_del_timer(&exec->idle_ev);
    }

    if (exec->ping_ev.timer_set) {
        ngx_del_timer(&exec->ping_ev);
    }
}


/*
 * The container is gone (or never was): tell the client how it ended.
 */

void
ngx_http_perstack_end(ngx_http_perstack_exec_t *exec)
{
    ngx_int_t                rc;
    ngx_str_t                message;
    ngx_http_request_t      *r;
    ngx_http_perstack_jw_t   jw;

    ngx_http_perstack_set_state(exec, NGX_HTTP_PERSTACK_DONE);

    ngx_http_perstack_stop_timers(exec);

    /*
     * The container is gone: its slot is free before the client hears of
     * the end, so that the client's next request finds it free, in any
     * worker.  A container whose removal failed keeps its slot until the
     * execution is freed.
     */

    if (exec->removed || exec->container.len == 0) {
        ngx_http_perstack_engines_release(exec);

        if (exec->slot) {
            ngx_http_perstack_limit_release(exec->slot);
            exec->slot = NULL;
        }
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
                  "%uL events", ngx_http_perstack_outcome_name(exec->outcome),
                  exec->exit_code, ngx_current_msec - exec->started,
                  exec->sequence);

    if (r == NULL && !(exec->headers_sent && exec->record)) {
        ngx_http_perstack_free_if_idle(exec);
        return;
    }

    /* with no client, the closing event still goes into the record */

    if (!exec->headers_sent) {
        if (exec->error_code == NULL) {
            exec->error_status = NGX_HTTP_BAD_GATEWAY;
            exec->error_code = "docker_error";
            ngx_str_set(&exec->message, "the execution ended before it "
                                        "started");
        }

        message = exec->message;

        ngx_http_perstack_finalize(exec,
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

    if (exec->record) {
        exec->record->closing = 1;
    }

    ngx_http_perstack_event_open(exec, &jw, "perstack.end");
    ngx_http_perstack_jw_raw(&jw, ",\"execution\":");
    ngx_http_perstack_jw_str(&jw, exec->id, NGX_HTTP_PERSTACK_ID_LEN);
    ngx_http_perstack_jw_outcome(&jw, exec);

    ngx_http_perstack_jw_raw(&jw, ",\"duration_ms\":");
    ngx_http_perstack_jw_uint(&jw, ngx_current_msec - exec->started);
    ngx_http_perstack_jw_raw(&jw, ",\"events\":");
    ngx_http_perstack_jw_uint(&jw, exec->sequence + 1);
    ngx_http_perstack_jw_raw(&jw, exec->removed
                                  ? ",\"container_removed\":true"
                                  : ",\"container_removed\":false");
    ngx_http_perstack_jw_raw(&jw, ",\"job\":");
    ngx_http_perstack_jw_str(&jw, exec->job.data, exec->job.len);

    if (exec->outcome == NGX_HTTP_PERSTACK_OUTCOME_PAUSED
        && exec->pending.len)
    {
        /* the review point: what to approve, and which job to continue */
        ngx_http_perstack_jw_raw(&jw, ",\"pending_tool_calls\":");
        ngx_http_perstack_jw_rawn(&jw, exec->pending.data, exec->pending.len);
    }

    if (exec->outcome == NGX_HTTP_PERSTACK_OUTCOME_FAILED
        && exec->run_outcome == NGX_HTTP_PERSTACK_OUTCOME_FAILED
        && exec->run_error.len)
    {
        /* the runtime's own error: stopRunByError's */
        ngx_http_perstack_jw_raw(&jw, ",\"error\":");
        ngx_http_perstack_jw_rawn(&jw, exec->run_error.data,
                                  exec->run_error.len);
    }

    if (exec->message.len) {
        ngx_http_perstack_jw_raw(&jw, ",\"message\":");
        ngx_http_perstack_jw_str(&jw, exec->message.data, exec->message.len);
    }

    rc = ngx_http_perstack_event_send(exec, &jw, "perstack.end");

    ngx_http_perstack_record_end(exec);

    if (r == NULL) {
        ngx_http_perstack_free_if_idle(exec);
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_perstack_finalize(exec, NGX_ERROR);
        return;
    }

    rc = ngx_http_send_special(r, NGX_HTTP_LAST);

    ngx_http_perstack_finalize(exec, rc == NGX_ERROR ? NGX_ERROR : NGX_OK);
}


/* the job's record, written by a thread once the container is gone */

static ngx_int_t
ngx_http_perstack_record(ngx_http_perstack_exec_t *exec)
{
    if (ngx_http_perstack_workspace_record(exec, ngx_http_perstack_recorded)
        == NGX_OK)
    {
        exec->recording = 1;
        exec->ops++;

        return NGX_OK;
    }

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

void
ngx_http_perstack_free_if_idle(ngx_http_perstack_exec_t *exec)
{
    if (exec->state == NGX_HTTP_PERSTACK_DONE && exec->ops == 0
        && exec->request == NULL && !exec->free_ev.posted)
    {
        ngx_post_event(&exec->free_ev, &ngx_posted_events);
    }
}


void
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
    ngx_event_t  *events[8];
    ngx_uint_t    i;

    events[0] = &exec->process_ev;
    events[1] = &exec->start_ev;
    events[2] = &exec->timeout_ev;
    events[3] = &exec->ping_ev;
    events[4] = &exec->idle_ev;
    events[5] = &exec->hold_ev;
    events[6] = &exec->free_ev;
    events[7] = &exec->watch_ev;

    for (i = 0; i < 8; i++) {
        if (events[i]->timer_set) {
            ngx_del_timer(events[i]);
        }

        if (events[i]->posted) {
            ngx_delete_posted_event(events[i]);
        }
    }

    ngx_queue_remove(&exec->queue);

    ngx_http_perstack_metrics_ended(exec->outcome,
                                    ngx_current_msec - exec->started);

    ngx_http_perstack_gateway_revoke(exec);
    ngx_http_perstack_engines_release(exec);

    if (exec->slot) {
        ngx_http_perstack_limit_release(exec->slot);
        exec->slot = NULL;
    }

    ngx_http_perstack_demux_free(&exec->demux);

    if (exec->in) {
        ngx_free(exec->in);
    }

    if (exec->out) {
        ngx_free(exec->out);
    }

    if (exec->mark_end) {
        ngx_free(exec->mark_end);
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
