
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The container's output, line by line, into events: the demultiplexed
 * lines and the parts of long ones, the runtime's events as they stream
 * (read by the scanner), text and stderr, and the output limits.  Output
 * moves one event at a time: while the client has not taken the last one,
 * no more input is parsed, and once the input buffer is full the transfer
 * from Docker is paused, which in turn blocks the container's writes.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_lines.h"
#include "ngx_http_perstack_metrics.h"
#include "ngx_http_perstack_record.h"
#include "ngx_http_perstack_container.h"
#include "ngx_http_perstack_end.h"
#include "ngx_http_perstack_output.h"
#include "ngx_http_perstack_curl.h"
#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_sse.h"
#include "ngx_http_perstack_runtime.h"
#include "ngx_http_perstack_scan.h"
#include "ngx_http_perstack_stream.h"

#include <yajl/yajl_tree.h>


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
static ngx_int_t ngx_http_perstack_over_limits(ngx_http_perstack_exec_t *exec,
    size_t len, ngx_uint_t new_line);
static void ngx_http_perstack_record_stop(ngx_http_perstack_exec_t *exec);


void
ngx_http_perstack_process(ngx_event_t *ev)
{
    const u_char                  *pos, *last;
    ngx_str_t                      message;
    ngx_uint_t                     failed;
    ngx_time_t                    *tp;
    ngx_http_perstack_exec_t      *exec;
    ngx_http_perstack_line_t       line;
    ngx_http_perstack_demux_rc_e   rc;

    exec = ev->data;

    if (exec->state == NGX_HTTP_PERSTACK_DONE) {
        if (exec->end_pending && !ngx_http_perstack_busy(exec)) {
            ngx_http_perstack_end(exec);
        }

        return;
    }

    if (exec->state != NGX_HTTP_PERSTACK_RUNNING
        || (exec->request == NULL && !exec->detached))
    {
        return;
    }

    pos = exec->in;
    last = exec->in + exec->in_len;

    /* the pass's events leave in batches: see send() */
    exec->batching = 1;
    failed = 0;

    for ( ;; ) {

        ngx_http_perstack_record_stop(exec);

        if (ngx_http_perstack_busy(exec)) {
            break;
        }

        if (exec->held_len || (exec->held_dropped && !exec->raw_open)) {
            if (ngx_http_perstack_next(exec, NGX_HTTP_PERSTACK_DEMUX_AGAIN,
                                       NULL)
                == NGX_ERROR)
            {
                failed = 1;
                break;
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
                failed = 1;
                break;
            }

            break;
        }

        if (rc == NGX_HTTP_PERSTACK_DEMUX_LINE
            || rc == NGX_HTTP_PERSTACK_DEMUX_PIECE)
        {
            if (exec->first_line == 0) {
                /* for $perstack_ttfe */
                tp = ngx_timeofday();
                exec->first_line = (uint64_t) tp->sec * 1000 + tp->msec;

                if (exec->first_line >= exec->request_start) {
                    ngx_http_perstack_metrics_first_event(
                           (ngx_msec_t) (exec->first_line
                                         - exec->request_start));
                }
            }

            if (ngx_http_perstack_next(exec, rc, &line) == NGX_ERROR) {
                failed = 1;
                break;
            }

            continue;
        }

        /* a corrupt frame or no memory: the stream cannot go on */

        pos = last;

        if (rc == NGX_HTTP_PERSTACK_DEMUX_ERROR) {
            ngx_str_set(&message, "the container's output stream from "
                                  "Docker is corrupt");

        } else {
            ngx_str_set(&message, "out of memory");
        }

        ngx_http_perstack_fail(exec, NGX_HTTP_BAD_GATEWAY, "docker_error",
                               &message);
        failed = 1;
        break;
    }

    exec->batching = 0;

    /*
     * Keep what is left, at the start of the buffer; also when the pass
     * failed (the client's connection broke, say): the execution may run
     * on detached, and what was read is not read again.
     */

    if (pos != exec->in) {
        exec->in_len = last - pos;
        ngx_memmove(exec->in, pos, exec->in_len);
    }

    /* what the pass gathered goes, into the record too when it failed */

    if (ngx_http_perstack_flush(exec) == NGX_ERROR || failed) {
        return;
    }

    ngx_http_perstack_record_stop(exec);

    /*
     * An emptied input buffer goes back until more output comes: a
     * stream that waits for its container holds no perstack_buffer_size.
     */

    if (exec->in_len == 0 && exec->in && !exec->curl_paused
        && exec->held_len == 0)
    {
        ngx_free(exec->in);
        exec->in = NULL;
    }

    ngx_http_perstack_out_free(exec);

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
    size_t                  dropped;
    ngx_http_perstack_jw_t  jw;

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

    ngx_http_perstack_event_open(exec, &jw, "perstack.truncated");
    ngx_http_perstack_jw_raw(&jw, ",\"stream\":\"stderr\",\"bytes\":");
    ngx_http_perstack_jw_uint(&jw, dropped);
    ngx_http_perstack_jw_raw(&jw, ",\"limit\":");
    ngx_http_perstack_jw_uint(&jw, NGX_HTTP_PERSTACK_STDERR_GROUP_MAX);

    return ngx_http_perstack_event_send(exec, &jw, "perstack.truncated");
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
                ngx_http_perstack_finalize(exec, NGX_ERROR);
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
        ngx_http_perstack_finalize(exec, NGX_ERROR);
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
                ngx_http_perstack_finalize(exec, NGX_ERROR);
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
            ngx_http_perstack_finalize(exec, NGX_ERROR);
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

        size += sse ? ngx_http_perstack_sse_open_size(exec->id,
                                                 NGX_HTTP_PERSTACK_ID_LEN,
                                                 exec->sequence + events + 1)
                      + ngx_http_perstack_sse_data_size(data, len)
                    : ngx_http_perstack_ndjson_size(exec->sequence + events
                                                    + 1, data, len);

    } else {
        size += sse ? ngx_http_perstack_sse_data_size(data, len) : len;
    }

    if (last) {
        size += sse ? ngx_http_perstack_sse_close_size(scan->type_len) : 1;
    }

    p = ngx_http_perstack_out_reserve(exec, size);
    if (p == NULL) {
        ngx_http_perstack_finalize(exec, NGX_ERROR);
        return NGX_ERROR;
    }

    q = p;

    if (first) {
        q = ngx_http_perstack_prefix(exec, q);

        exec->sequence++;
        exec->raw_open = 1;
        exec->raw_passed = 0;

        if (sse) {
            q = ngx_http_perstack_sse_open(q, exec->id,
                                           NGX_HTTP_PERSTACK_ID_LEN,
                                           exec->sequence);
            q = ngx_http_perstack_sse_data(q, data, len);

        } else {
            q = ngx_http_perstack_ndjson_write(q, exec->sequence, data, len);
        }

    } else {
        q = sse ? ngx_http_perstack_sse_data(q, data, len)
                : ngx_cpymem(q, data, len);
    }

    exec->raw_passed += len;

    if (last) {
        if (sse) {
            q = ngx_http_perstack_sse_close(q, scan->type, scan->type_len);

        } else {
            *q++ = '\n';
        }

        ngx_http_perstack_mark(exec, q);

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
    u_char                  *buf;
    size_t                   n, cut, i, need;
    const char              *type;
    ngx_http_perstack_jw_t   jw;

    if (exec->raw_open) {
        exec->carry_len[stream] = 0;
        return ngx_http_perstack_held_drop(exec, len);
    }

    n = exec->carry_len[stream] + len;

    buf = ngx_http_perstack_reserve(exec, &exec->text, &exec->text_size, 0, n);
    if (buf == NULL) {
        ngx_http_perstack_finalize(exec, NGX_ERROR);
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

    ngx_http_perstack_event_open(exec, &jw, type);
    ngx_http_perstack_jw_raw(&jw, ",\"text\":");
    ngx_http_perstack_jw_str(&jw, buf, cut);

    if (!last) {
        ngx_http_perstack_jw_raw(&jw, ",\"partial\":true");
    }

    return ngx_http_perstack_event_send(exec, &jw, type);
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


static ngx_int_t
ngx_http_perstack_scan_line(ngx_http_perstack_exec_t *exec)
{
    if (exec->scan == NULL) {
        exec->scan = ngx_pcalloc(exec->pool,
                                 sizeof(ngx_http_perstack_scan_t));
        if (exec->scan == NULL) {
            ngx_http_perstack_finalize(exec, NGX_ERROR);
            return NGX_ERROR;
        }
    }

    if (ngx_http_perstack_scan_start(exec->scan) != 0) {
        ngx_http_perstack_finalize(exec, NGX_ERROR);
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


/*
 * When the record takes no more, the execution ends, as it would on an
 * output limit, and the client (if one is attached) gets the rest and the
 * end.
 */

static void
ngx_http_perstack_record_stop(ngx_http_perstack_exec_t *exec)
{
    if (exec->record == NULL || exec->stopping
        || !(exec->record->failed || exec->record->full))
    {
        return;
    }

    if (exec->message.len == 0) {
        if (exec->record->full) {
            ngx_str_set(&exec->message, "the execution's record reached "
                                        "perstack_record_max_size");

        } else {
            ngx_str_set(&exec->message, "the execution's record could not "
                                        "be written");
        }
    }

    ngx_http_perstack_stop(exec, exec->record->full
                                 ? NGX_HTTP_PERSTACK_OUTCOME_OUTPUT_LIMIT
                                 : NGX_HTTP_PERSTACK_OUTCOME_ERROR);
}
