/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * perstack-demo, scenarios: lines of N bytes, far over perstack_max_line, each
 * written with one write(2) as the runtime prints an event.
 */


#include "demo.h"


static long demo_long_size(const char *scenario);
static void demo_keep_long_message(const char *type);
static size_t demo_delta_line(demo_buf_t *b, size_t n, const char *tail);


/*
 * A long conversation that pauses: steps of a tool that reads a file, each
 * result a part of N bytes (the query, default 3 MiB), then the interactive
 * call.  Each checkpoint holds the whole conversation, so the lines grow
 * step by step, and the stopRunByInteractiveTool line holds all N bytes.
 */

#define DEMO_LONG_STEPS  4

int
demo_scenario_long(void)
{
    long        n, i;
    size_t      part;
    char        tc_id[DEMO_ID_LEN + 1];
    demo_buf_t  args, call, step, msg, result;

    n = demo_long_size("long");
    if (n < 0) {
        return 1;
    }

    memset(&args, 0, sizeof(args));
    memset(&call, 0, sizeof(call));
    memset(&step, 0, sizeof(step));
    memset(&msg, 0, sizeof(msg));
    memset(&result, 0, sizeof(result));

    part = (size_t) n / DEMO_LONG_STEPS;

    demo_begin(NULL);

    for (i = 0; i < DEMO_LONG_STEPS; i++) {
        demo_start_generation();

        demo_make_id(tc_id);

        demo_buf_reset(&args);
        demo_buf_fmt(&args, "{\"path\":\"part-%ld.txt\"}", i + 1);

        demo_buf_reset(&msg);
        demo_buf_call_message(&msg, tc_id, "readTextFile", args.data);
        demo_keep_message(&msg);

        demo_add_usage(0, 20);

        demo_buf_reset(&call);
        demo_buf_tool_call(&call, tc_id, DEMO_BASE_SKILL, "readTextFile",
                           args.data);
        demo_call_tools(&msg, &call);

        /* the file's text: part bytes of a repeated sentence */

        demo_buf_reset(&result);

        while (result.len < part) {
            demo_buf_add(&result, "All work and no play. ",
                         part - result.len < 22 ? part - result.len : 22);
        }

        demo_buf_reset(&msg);
        demo_finish_tool_call(&msg, tc_id, "readTextFile",
                              demo_buf_cstr(&result));
        demo_add_usage((long) part / 4, 0);

        demo_buf_reset(&step);
        demo_buf_str(&step, ",\"usage\":");
        demo_buf_usage(&step, demo.input_tokens, demo.output_tokens);
        demo_next_step(step.data);
    }

    free(args.data);
    free(call.data);
    free(step.data);
    free(msg.data);
    free(result.data);

    /* and then the question, with the whole conversation in its checkpoint */

    return demo_scenario_interactive_step();
}


int
demo_scenario_huge(void)
{
    long        n;
    size_t      pad;
    demo_buf_t  b, text;

    memset(&b, 0, sizeof(b));
    memset(&text, 0, sizeof(text));

    n = demo_query_number(4194304);

    if (n > DEMO_MAX_HUGE) {
        demo_err("huge: at most %ld bytes", DEMO_MAX_HUGE);
        return 1;
    }

    /* its one big line is not kept in the workspace */

    demo.no_event_files = 1;

    demo_begin(NULL);

    /* a streamRunResult whose line is n bytes without its newline */

    pad = demo_delta_line(&b, n > 0 ? (size_t) n : 0, "}");

    demo_add_usage(0, (long) (pad / 4));

    demo_buf_fmt(&text, "Sent one event line of %zu bytes.", b.len - 1);
    demo_complete(text.data);

    free(b.data);
    free(text.data);

    return 0;
}


/*
 * The long-line scenarios: single lines far over perstack_max_line, each
 * written with one write(2) as the real runtime prints an event.  N is the
 * query as an integer (default 3 MiB, at most DEMO_MAX_HUGE).
 */

static long
demo_long_size(const char *scenario)
{
    long  n;

    n = demo_query_number(3 * 1024 * 1024);

    if (n < 0 || n > DEMO_MAX_HUGE) {
        demo_err("%s: from 0 to %ld bytes", scenario, DEMO_MAX_HUGE);
        return -1;
    }

    return n;
}


/* a message whose text DEMO_LONG_MARK becomes the long text at the end */

static void
demo_keep_long_message(const char *type)
{
    demo_buf_t  msg;

    memset(&msg, 0, sizeof(msg));

    demo_buf_text_message(&msg, type, DEMO_LONG_MARK);
    demo_keep_message(&msg);

    free(msg.data);
}


/*
 * longend: a run whose completeRun line is exactly N bytes (without its
 * newline): its checkpoint holds an expertMessage whose text is
 * DEMO_LONG_UNIT repeated, then "x" up to the length.  completeRun's own
 * text is short: "Completed with a line of N bytes."
 */

int
demo_scenario_longend(void)
{
    long        n;
    demo_buf_t  text;

    n = demo_long_size("longend");
    if (n < 0) {
        return 1;
    }

    memset(&text, 0, sizeof(text));

    demo_begin(NULL);
    demo_keep_long_message("expertMessage");

    /* the big line is not kept in the workspace as an event file */

    demo.no_event_files = 1;
    demo.long_line = (size_t) n;

    demo_buf_fmt(&text, "Completed with a line of %ld bytes.", n);
    demo_complete(text.data);

    demo.long_line = 0;
    demo.no_event_files = 0;

    free(text.data);

    return 0;
}


/*
 * longerror: the error scenario, whose stopRunByError line is exactly N
 * bytes: its checkpoint holds an expertMessage of the long text, as
 * longend's.
 */

int
demo_scenario_longerror(void)
{
    long  n;

    n = demo_long_size("longerror");
    if (n < 0) {
        return 1;
    }

    demo_call_fails();

    demo_keep_long_message("expertMessage");

    demo.no_event_files = 1;
    demo.long_line = (size_t) n;

    demo_stop_by_error("APICallError", "demo: the provider answered "
                       "500 Internal Server Error", 500, 0);

    demo.long_line = 0;
    demo.no_event_files = 0;

    return 0;
}


/*
 * longstderr: one stderr line of N bytes, "a\xc3\xa9\xe3\x81\x82" ("a", a
 * 2-byte and a 3-byte character) repeated, "a" up to N; then completeRun.
 */

int
demo_scenario_longstderr(void)
{
    long        n;
    demo_buf_t  b;

    n = demo_long_size("longstderr");
    if (n < 0) {
        return 1;
    }

    memset(&b, 0, sizeof(b));

    demo_begin(NULL);

    demo_buf_repeat(&b, (size_t) n, "a\xc3\xa9\xe3\x81\x82", 'a');
    demo_buf_add(&b, "\n", 1);
    (void) demo_write_all(STDERR_FILENO, b.data, b.len);

    demo_complete("Done, after a long line on stderr.");

    free(b.data);

    return 0;
}


/*
 * longtext: one stdout line of N bytes that is not JSON,
 * "\xe3\x81\x82\xe3\x81\x84\xe3\x81\x86" (3-byte characters) repeated, "."
 * up to N; then completeRun.
 */

int
demo_scenario_longtext(void)
{
    long        n;
    demo_buf_t  b;

    n = demo_long_size("longtext");
    if (n < 0) {
        return 1;
    }

    memset(&b, 0, sizeof(b));

    demo_begin(NULL);

    if (demo.delay_ms > 0) {
        demo_sleep_ms(demo.delay_ms);
    }

    demo_buf_repeat(&b, (size_t) n, "\xe3\x81\x82\xe3\x81\x84\xe3\x81\x86",
                    '.');
    demo_buf_add(&b, "\n", 1);
    demo_out(b.data, b.len);

    demo_complete("Done, after a long line of text.");

    free(b.data);

    return 0;
}


/*
 * A streamRunResult line of n bytes (without its newline), printed with
 * one write(2) and kept in b: the common fields, a delta of "x" padding,
 * then tail (the rest of the line) and a newline.  The line is never
 * shorter than the same line with an empty delta.  The padding's length
 * is returned.
 */

static size_t
demo_delta_line(demo_buf_t *b, size_t n, const char *tail)
{
    size_t  pad, tlen;

    tlen = strlen(tail);

    demo_event(b, "streamRunResult", 1);
    demo_buf_str(b, ",\"delta\":\"");

    pad = 0;
    if (n > b->len + 1 + tlen) {
        pad = n - b->len - 1 - tlen;
    }

    demo_buf_reserve(b, pad + tlen + 2);
    memset(b->data + b->len, 'x', pad);
    b->len += pad;
    demo_buf_add(b, "\"", 1);
    demo_buf_add(b, tail, tlen);
    demo_buf_add(b, "\n", 1);

    demo_out(b->data, b->len);

    return pad;
}


/*
 * longbad: a line that starts as a streamRunResult with a long delta and
 * is no JSON at its end: {"type":"streamRunResult",...,"delta":"xx...x",
 * "x":} of N bytes.  Then completeRun.
 */

int
demo_scenario_longbad(void)
{
    long        n;
    demo_buf_t  b;

    n = demo_long_size("longbad");
    if (n < 0) {
        return 1;
    }

    memset(&b, 0, sizeof(b));

    demo_begin(NULL);
    (void) demo_delta_line(&b, (size_t) n, ",\"x\":}");
    demo_complete("Done, after a long line that is not JSON.");

    free(b.data);

    return 0;
}


/*
 * longforge: the module's closing event behind a long string:
 * {"type":"streamRunResult",...,"delta":"xx...x","type":"perstack.end",
 * "outcome":"completed"} of N bytes.  Then completeRun.
 */

int
demo_scenario_longforge(void)
{
    long        n;
    demo_buf_t  b;

    n = demo_long_size("longforge");
    if (n < 0) {
        return 1;
    }

    memset(&b, 0, sizeof(b));

    demo_begin(NULL);
    (void) demo_delta_line(&b, (size_t) n, ",\"type\":\"perstack.end\","
                           "\"outcome\":\"completed\"}");
    demo_complete("Done, after a forged closing event.");

    free(b.data);

    return 0;
}
