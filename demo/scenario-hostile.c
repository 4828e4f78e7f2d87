/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * perstack-demo, scenarios: output and processes a module must survive (lines
 * that are not events, deep nesting, exit codes, crashes, SIGTERM ignored).
 */


#include "demo.h"


int
demo_scenario_garbage(void)
{
    static const char  garbage[] =
        "this is plain text, not an event\n"
        "[1,2,3]\n"
        "\"just a JSON string\"\n"
        "\x00\x01\xff\xfe\n"
        "invalid UTF-8: \xc3\x28 \xe2\x82 \xed\xa0\x80 \xc0\xaf\n"
        "a line with a carriage return\rin the middle\n"
        "\n"
        "{\"type\":\"streamRunResult\",\"delta\":\"trunc\n"
        "42\n"
        "null\n";

    demo_begin(NULL);

    if (demo.delay_ms > 0) {
        demo_sleep_ms(demo.delay_ms);
    }

    demo_out(garbage, sizeof(garbage) - 1);

    demo_complete("Done, after some garbage.");

    return 0;
}


/*
 * The query, as it is, as one line of stdout: whatever a runtime could
 * print, for the tests of what the module makes of it.
 */

int
demo_scenario_echo(void)
{
    demo_begin(NULL);

    demo_out(demo.query, strlen(demo.query));
    demo_out("\n", 1);

    demo_complete("Done, after an echo.");

    return 0;
}


/*
 * deep: a stopRunByInteractiveTool event whose pendingToolCalls nest N
 * arrays deep (the query, default 400000: a line of about 800 KB), then
 * exit 0.  A reader that recurses once a level runs out of stack on it.
 * With a query "cN", the arrays are between two comments that each hold
 * a double quote: the depth hides from a scan that knows strings but not
 * comments.
 */

int
demo_scenario_deep(void)
{
    int          comments;
    long         i, n;
    char        *end;
    const char  *q;
    demo_buf_t   b;

    memset(&b, 0, sizeof(b));

    q = demo.query;
    comments = (q[0] == 'c');

    if (comments) {
        q++;
    }

    errno = 0;
    n = strtol(q, &end, 10);

    if (errno || end == q || n < 1 || n > 10000000) {
        n = 400000;
    }

    demo_begin(NULL);

    demo_event(&b, "stopRunByInteractiveTool", 1);
    demo_buf_str(&b, ",\"checkpoint\":{\"status\":\"stoppedByInteractiveTool\","
                 "\"pendingToolCalls\":");

    if (comments) {
        demo_buf_str(&b, "/*\"*/");
    }

    demo_buf_reserve(&b, (size_t) (2 * n));

    for (i = 0; i < n; i++) {
        b.data[b.len++] = '[';
    }

    for (i = 0; i < n; i++) {
        b.data[b.len++] = ']';
    }

    b.data[b.len] = '\0';

    if (comments) {
        demo_buf_str(&b, "/*\"*/");
    }

    demo_buf_str(&b, "}");
    demo_emit(&b);

    free(b.data);

    return 0;
}


int
demo_scenario_exit(void)
{
    long  code;

    code = demo_query_number(3);

    demo_begin(NULL);
    demo_start_generation();

    demo_err("exiting with code %ld, without completing the run", code & 0xff);

    return (int) (code & 0xff);
}


int
demo_scenario_crash(void)
{
    struct rlimit  rl;

    demo_begin(NULL);
    demo_start_generation();

    demo_err("about to crash (abort)");

    /* no core file in the workspace */

    rl.rlim_cur = 0;
    rl.rlim_max = 0;
    (void) setrlimit(RLIMIT_CORE, &rl);

    abort();

    return 1;
}


int
demo_scenario_stubborn(void)
{
    long              i;
    demo_buf_t        text;
    struct sigaction  sa;

    memset(&text, 0, sizeof(text));
    memset(&sa, 0, sizeof(sa));

    sa.sa_handler = SIG_IGN;
    (void) sigemptyset(&sa.sa_mask);

    if (sigaction(SIGTERM, &sa, NULL) != 0) {
        demo_err("sigaction: %s", strerror(errno));
        return 1;
    }

    demo_err("stubborn: ignoring SIGTERM, only SIGKILL stops me");

    demo.delay_ms = 200;

    demo_begin(NULL);
    demo_simple("startStreamingReasoning", NULL, NULL);

    for (i = 1; /* void */ ; i++) {
        demo_buf_reset(&text);
        demo_buf_fmt(&text, "still here (%ld) ", i);
        demo_simple("streamReasoning", "delta", text.data);
    }

    /* unreachable */

    return 0;
}
