
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The execution's container through the Engine API: ping, create,
 * attach, start, wait, stop and remove, and the failures.  How the
 * execution then ends is ngx_http_perstack_end.c's.
 *
 * The container is attached before it starts, so no output is lost.  The
 * response starts once the container runs, so that every failure up to
 * then is an HTTP status with a JSON body.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_container.h"
#include "ngx_http_perstack_end.h"
#include "ngx_http_perstack_metrics.h"
#include "ngx_http_perstack_output.h"
#include "ngx_http_perstack_record.h"
#include "ngx_http_perstack_docker.h"
#include "ngx_http_perstack_engines.h"
#include "ngx_http_perstack_curl.h"
#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_runtime.h"
#include "ngx_http_perstack_policy.h"
#include "ngx_http_perstack_workspace.h"
#include "ngx_http_perstack_gateway.h"
#include "ngx_http_perstack_limit.h"
#include "ngx_http_perstack_reaper.h"
#include "ngx_http_perstack_response.h"
#include "ngx_http_perstack_scan.h"
#include "ngx_http_perstack_stream.h"

#include <yajl/yajl_tree.h>


static void ngx_http_perstack_call_done(ngx_http_perstack_op_t *op);
static ngx_int_t ngx_http_perstack_ping(ngx_http_perstack_exec_t *exec);
static void ngx_http_perstack_ping_done(ngx_http_perstack_op_t *op);
static ngx_int_t ngx_http_perstack_create(ngx_http_perstack_exec_t *exec);
static void ngx_http_perstack_create_done(ngx_http_perstack_op_t *op);
static void ngx_http_perstack_stream_attached(void *data);
static void ngx_http_perstack_start_done(ngx_http_perstack_op_t *op);
static void ngx_http_perstack_attach_done(ngx_http_perstack_op_t *op);
static void ngx_http_perstack_stop_done(ngx_http_perstack_op_t *op);
static void ngx_http_perstack_wait_done(ngx_http_perstack_op_t *op);
static void ngx_http_perstack_remove_done(ngx_http_perstack_op_t *op);
static void ngx_http_perstack_fail_logged(ngx_http_perstack_exec_t *exec,
    ngx_uint_t status, const char *code, ngx_str_t *message);
static ngx_int_t ngx_http_perstack_stream_write(void *data, u_char *p,
    size_t len);


/*
 * An Engine API call of the execution's: counted in its calls in flight,
 * and handled through ngx_http_perstack_call_done(), which runs the
 * requests posted meanwhile (a handler may finalize the request, as in
 * ngx_http_upstream).
 */

ngx_http_perstack_op_t *
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


/*
 * The engine's API version is agreed once per worker, with /_ping, before
 * its first create; an engine of a group that failed is pinged again.
 */

ngx_int_t
ngx_http_perstack_begin(ngx_http_perstack_exec_t *exec)
{
    if (exec->docker->api_minor == 0) {
        return ngx_http_perstack_ping(exec);
    }

    return ngx_http_perstack_create(exec);
}


static ngx_int_t
ngx_http_perstack_ping(ngx_http_perstack_exec_t *exec)
{
    ngx_http_perstack_op_t  *op;

    ngx_http_perstack_set_state(exec, NGX_HTTP_PERSTACK_PING);

    op = ngx_http_perstack_call(exec, "ping", ngx_http_perstack_ping_done);
    if (op == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_perstack_docker_ping(exec->docker, op,
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
        if (ngx_http_perstack_engines_failed(exec, 1) == NGX_OK) {
            /* another engine of the group */
            if (ngx_http_perstack_begin(exec) != NGX_OK) {
                ngx_http_perstack_fail_internal(exec);
            }

            return;
        }

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
        ngx_http_perstack_fail_internal(exec);
    }
}


static ngx_int_t
ngx_http_perstack_create(ngx_http_perstack_exec_t *exec)
{
    ngx_str_t                name;
    ngx_http_perstack_op_t  *op;

    ngx_http_perstack_set_state(exec, NGX_HTTP_PERSTACK_CREATE);

    op = ngx_http_perstack_call(exec, "create",
                                 ngx_http_perstack_create_done);
    if (op == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_perstack_container_config(exec, &op->body) != NGX_OK) {
        return NGX_ERROR;
    }

    /* "perstack-<execution>": a worker that exits mid-create finds it */

    name.len = sizeof("perstack-") - 1 + NGX_HTTP_PERSTACK_ID_LEN;
    name.data = ngx_pnalloc(exec->pool, name.len);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name.data, "perstack-%*s", (size_t) NGX_HTTP_PERSTACK_ID_LEN,
                exec->id);

    return ngx_http_perstack_docker_create(exec->docker, op, &name,
                                           exec->conf->docker_timeout);
}


static void
ngx_http_perstack_create_done(ngx_http_perstack_op_t *op)
{
    size_t                     len;
    yajl_val                   tree, id;
    ngx_str_t                  message;
    ngx_http_perstack_op_t    *attach;
    ngx_http_perstack_exec_t  *exec;

    static const char  *id_path[] = { "Id", NULL };

    exec = op->data;

    /* the container's configuration, sent: 4 KiB the stream needs no more */
    ngx_pfree(exec->pool, op->body.data);
    ngx_str_null(&op->body);

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
            ngx_http_perstack_fail_internal(exec);
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

        if (op->result != CURLE_OK
            && ngx_http_perstack_engines_failed(exec,
                                       !ngx_http_perstack_docker_reached(op))
               == NGX_OK)
        {
            /* it never reached the engine: another engine of the group */
            if (ngx_http_perstack_begin(exec) != NGX_OK) {
                ngx_http_perstack_fail_internal(exec);
            }

            return;
        }

        ngx_http_perstack_fail_op(op, "container create");
        return;
    }

    ngx_http_perstack_set_state(exec, NGX_HTTP_PERSTACK_ATTACH);

    attach = ngx_http_perstack_call(exec, "attach",
                                     ngx_http_perstack_attach_done);
    if (attach == NULL) {
        goto failed;
    }

    attach->stream = 1;
    attach->attached = ngx_http_perstack_stream_attached;
    attach->write = ngx_http_perstack_stream_write;
    attach->data = exec;

    /*
     * The stream itself has no time limit (the execution's timers bound
     * it), but the engine must answer the attach: start_ev waits for that.
     */
    ngx_add_timer(&exec->start_ev, exec->conf->docker_timeout);

    if (ngx_http_perstack_docker_container(exec->docker, attach, "POST",
                                           &exec->container,
                                           "/attach?stream=1&stdout=1&stderr=1",
                                           0)
        != NGX_OK)
    {
        goto failed;
    }

    exec->attach = attach;

    return;

failed:

    ngx_http_perstack_fail_internal(exec);
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


void
ngx_http_perstack_start(ngx_event_t *ev)
{
    ngx_str_t                  message;
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

    ngx_http_perstack_set_state(exec, NGX_HTTP_PERSTACK_START);

    op = ngx_http_perstack_call(exec, "start",
                                 ngx_http_perstack_start_done);
    if (op == NULL) {
        goto failed;
    }

    if (ngx_http_perstack_docker_container(exec->docker, op, "POST",
                                           &exec->container, "/start",
                                           exec->conf->docker_timeout)
        != NGX_OK)
    {
        goto failed;
    }

    return;

failed:

    ngx_http_perstack_fail_internal(exec);
}


static void
ngx_http_perstack_start_done(ngx_http_perstack_op_t *op)
{
    ngx_str_t                  message;
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

    ngx_http_perstack_set_state(exec, NGX_HTTP_PERSTACK_RUNNING);

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

    if (exec->request == NULL) {
        return;
    }

    /* the record, before the first byte of the stream */

    if (ngx_http_perstack_record_open(exec) != NGX_OK) {
        ngx_str_set(&message, "the execution's record could not be made");
        ngx_http_perstack_fail_logged(exec, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "record_failed", &message);
        return;
    }

    ngx_add_timer(&exec->watch_ev, NGX_HTTP_PERSTACK_WATCH);

    if (ngx_http_perstack_send_headers(exec) != NGX_OK) {
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


/*
 * SIGTERM, then SIGKILL once the grace period (the container's
 * StopTimeout) passes; the stream ends as the container exits, and the
 * closing event gives the outcome.
 */

void
ngx_http_perstack_stop(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_outcome_e outcome)
{
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

    if (ngx_http_perstack_docker_container(exec->docker, op, "POST",
                                           &exec->container, "/stop",
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


void
ngx_http_perstack_wait(ngx_http_perstack_exec_t *exec)
{
    ngx_http_perstack_op_t  *op;

    ngx_http_perstack_set_state(exec, NGX_HTTP_PERSTACK_WAIT);

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

    /* the execution's own timeout still bounds a process left running */
    if (ngx_http_perstack_docker_container(exec->docker, op, "POST",
                                           &exec->container,
                                           "/wait?condition=not-running", 0)
        == NGX_OK)
    {
        return;
    }

failed:

    ngx_http_perstack_fail_internal(exec);
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


void
ngx_http_perstack_remove(ngx_http_perstack_exec_t *exec)
{
    ngx_http_perstack_op_t  *op;

    if (exec->state == NGX_HTTP_PERSTACK_REMOVE
        || exec->state == NGX_HTTP_PERSTACK_DONE)
    {
        return;
    }

    ngx_http_perstack_set_state(exec, NGX_HTTP_PERSTACK_REMOVE);

    /* the execution is over: its credential is no more */
    ngx_http_perstack_gateway_revoke(exec);

    ngx_http_perstack_stop_timers(exec);

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

    if (ngx_http_perstack_docker_container(exec->docker, op, "DELETE",
                                           &exec->container, "?force=1&v=1",
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

    if (ngx_http_perstack_docker_removed(op)
        || (op->result == CURLE_OK && op->status == 404))
    {
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


void
ngx_http_perstack_fail(ngx_http_perstack_exec_t *exec, ngx_uint_t status,
    const char *code, ngx_str_t *message)
{
    ngx_log_error(NGX_LOG_ERR, exec->log, 0, "perstack: %V", message);

    ngx_http_perstack_fail_logged(exec, status, code, message);
}


/* no memory, or a call that could not be made: "internal error" */

void
ngx_http_perstack_fail_internal(ngx_http_perstack_exec_t *exec)
{
    ngx_str_t  message;

    ngx_str_set(&message, "internal error");

    ngx_http_perstack_fail(exec, NGX_HTTP_INTERNAL_SERVER_ERROR,
                           "internal_error", &message);
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

void
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
 * Output.
 */

static ngx_int_t
ngx_http_perstack_stream_write(void *data, u_char *p, size_t len)
{
    ngx_http_perstack_exec_t  *exec = data;

    if (exec->state >= NGX_HTTP_PERSTACK_REMOVE
        || (exec->request == NULL && !exec->detached))
    {
        /* nobody listens any more */
        return NGX_OK;
    }

    if (exec->in == NULL) {
        /* (freed while empty: see ngx_http_perstack_process()) */
        exec->in = ngx_alloc(exec->in_size, exec->log);
        if (exec->in == NULL) {
            return NGX_ERROR;
        }
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
