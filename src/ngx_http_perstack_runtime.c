
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The Perstack runtime's protocol: which of its events end a run, what
 * they say of it, and how a run ended.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_runtime.h"
#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_response.h"


static ngx_uint_t ngx_http_perstack_run_outcome_of(const u_char *type,
    size_t type_len);
static void ngx_http_perstack_run_error(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_scan_t *scan);


/* whether an event of this type ends a run, or may */

ngx_uint_t
ngx_http_perstack_runtime_ends(const u_char *type, size_t type_len)
{
    return ngx_http_perstack_run_outcome_of(type, type_len) != (ngx_uint_t) -1;
}


static ngx_uint_t
ngx_http_perstack_run_outcome_of(const u_char *type, size_t type_len)
{
#define ngx_http_perstack_type_is(t)                                          \
    (type_len == sizeof(t) - 1 && ngx_strncmp(type, t, sizeof(t) - 1) == 0)

    if (ngx_http_perstack_type_is("completeRun")) {
        return NGX_HTTP_PERSTACK_OUTCOME_COMPLETED;
    }

    if (ngx_http_perstack_type_is("stopRunByInteractiveTool")) {
        return NGX_HTTP_PERSTACK_OUTCOME_PAUSED;
    }

    if (ngx_http_perstack_type_is("stopRunByError")) {
        return NGX_HTTP_PERSTACK_OUTCOME_FAILED;
    }

    if (ngx_http_perstack_type_is("stopRunByExceededMaxSteps")) {
        return NGX_HTTP_PERSTACK_OUTCOME_MAX_STEPS;
    }

    if (ngx_http_perstack_type_is("stopRunByDelegate")) {
        return NGX_HTTP_PERSTACK_OUTCOME_NONE;
    }

#undef ngx_http_perstack_type_is

    return (ngx_uint_t) -1;
}


/*
 * How the run ended: the last of the coordinator's events that end a run
 * says so, whatever the exit code (the runtime exits 0 after stopRunByError
 * as after completeRun).  The coordinator is the expert the module named:
 * the runtime keeps the key it is given, while a delegate's events carry
 * the delegate's key.  runId is not compared: the coordinator gets a new
 * one when a delegation returns to it.  stopRunByDelegate ends nothing:
 * the run goes on in the delegates, then in the coordinator again.  An
 * event the scanner could not read (scan NULL) is taken as the
 * coordinator's, with nothing more.
 *
 * For stopRunByInteractiveTool, its checkpoint's pending tool calls are
 * kept for the closing event; for stopRunByError, its error.
 */

void
ngx_http_perstack_runtime_event(ngx_http_perstack_exec_t *exec,
    const u_char *type, size_t type_len, ngx_http_perstack_scan_t *scan)
{
    ngx_uint_t  outcome;

    outcome = ngx_http_perstack_run_outcome_of(type, type_len);

    if (outcome == (ngx_uint_t) -1) {
        return;
    }

    if (scan && scan->has_expert
        && (scan->expert_len != exec->expert.len
            || ngx_strncmp(scan->expert, exec->expert.data,
                           exec->expert.len) != 0))
    {
        /* a delegate's run ended: the coordinator's goes on */
        return;
    }

    exec->run_outcome = outcome;
    ngx_str_null(&exec->pending);
    ngx_str_null(&exec->run_error);
    ngx_str_null(&exec->run_message);

    if (scan == NULL) {
        return;
    }

    if (outcome == NGX_HTTP_PERSTACK_OUTCOME_FAILED) {
        ngx_http_perstack_run_error(exec, scan);
        return;
    }

    if (outcome == NGX_HTTP_PERSTACK_OUTCOME_PAUSED && scan->pending) {
        exec->pending.data = ngx_pnalloc(exec->pool, scan->pending_len);

        if (exec->pending.data) {
            ngx_memcpy(exec->pending.data, scan->pending, scan->pending_len);
            exec->pending.len = scan->pending_len;
        }
    }
}


/*
 * stopRunByError's error, for the closing event: {"name","message"} and
 * "statusCode" when it is an integer; name and message as the scanner cut
 * them, at NGX_HTTP_PERSTACK_SCAN_NAME_MAX and
 * NGX_HTTP_PERSTACK_SCAN_MESSAGE_MAX bytes, on a character's boundary.
 * The message is also the closing event's "message".
 */

static void
ngx_http_perstack_run_error(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_scan_t *scan)
{
    u_char                  *p;
    ngx_http_perstack_jw_t   jw;

    if (!scan->has_error_name && !scan->has_error_message) {
        return;
    }

    ngx_http_perstack_jw_pool(&jw, exec->pool, 256);
    ngx_http_perstack_jw_raw(&jw, "{\"name\":");
    ngx_http_perstack_jw_str(&jw, scan->error_name, scan->error_name_len);
    ngx_http_perstack_jw_raw(&jw, ",\"message\":");
    ngx_http_perstack_jw_str(&jw, scan->error_message,
                             scan->error_message_len);

    if (scan->has_status_code) {
        ngx_http_perstack_jw_raw(&jw, ",\"statusCode\":");
        ngx_http_perstack_jw_int(&jw, scan->status_code);
    }

    ngx_http_perstack_jw_raw(&jw, "}");

    p = ngx_pnalloc(exec->pool, scan->error_message_len);

    if (p == NULL || ngx_http_perstack_jw_failed(&jw)) {
        return;
    }

    exec->run_error.data = jw.start;
    exec->run_error.len = ngx_http_perstack_jw_len(&jw);

    exec->run_message.data = p;
    exec->run_message.len = scan->error_message_len;
    ngx_memcpy(p, scan->error_message, scan->error_message_len);
}


/*
 * The outcome of a run whose container exited by itself: the runtime's
 * own terminal event decides, and the exit code only adds a message.
 */

void
ngx_http_perstack_runtime_outcome(ngx_http_perstack_exec_t *exec)
{
    u_char  *p;

    if (exec->run_outcome == NGX_HTTP_PERSTACK_OUTCOME_NONE) {
        exec->outcome = NGX_HTTP_PERSTACK_OUTCOME_FAILED;

        if (exec->exit_code == 0) {
            ngx_str_set(&exec->message, "the runtime exited without ending "
                                        "its run");
        }

        return;
    }

    exec->outcome = exec->run_outcome;

    if (exec->outcome == NGX_HTTP_PERSTACK_OUTCOME_FAILED) {
        exec->message = exec->run_message;
    }

    if (exec->exit_code <= 0 || exec->message.len) {
        return;
    }

    p = ngx_pnalloc(exec->pool, sizeof("the runtime exited with code  after "
                                       "its run ended") + NGX_INT_T_LEN);
    if (p == NULL) {
        return;
    }

    exec->message.data = p;
    exec->message.len = ngx_sprintf(p, "the runtime exited with code %i "
                                       "after its run ended",
                                    exec->exit_code)
                        - p;
}


/* an outcome's name, in the closing event and the job's record */

const char *
ngx_http_perstack_outcome_name(ngx_http_perstack_outcome_e outcome)
{
    static const char  *names[] = {
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
        "max_steps",
        "cancelled",
        "abandoned"
    };

    return names[outcome];
}


/* "outcome":"...","exit_code":N|null: the closing event's, the record's */

void
ngx_http_perstack_jw_outcome(ngx_http_perstack_jw_t *jw,
    ngx_http_perstack_exec_t *exec)
{
    ngx_http_perstack_jw_raw(jw, ",\"outcome\":\"");
    ngx_http_perstack_jw_raw(jw, ngx_http_perstack_outcome_name(exec->outcome));
    ngx_http_perstack_jw_raw(jw, "\",\"exit_code\":");

    if (exec->exit_code >= 0) {
        ngx_http_perstack_jw_int(jw, exec->exit_code);

    } else {
        ngx_http_perstack_jw_raw(jw, "null");
    }
}
