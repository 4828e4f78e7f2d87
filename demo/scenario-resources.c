/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * perstack-demo, scenarios: pace and volume, and the sandbox's limits (memory,
 * processes).
 */


#include "demo.h"


int
demo_scenario_slow(void)
{
    long        i, n;
    demo_buf_t  text, all;

    memset(&text, 0, sizeof(text));
    memset(&all, 0, sizeof(all));

    n = demo_query_number(30);
    demo.delay_ms = 0;

    demo_begin(NULL);
    demo_simple("startStreamingReasoning", NULL, NULL);

    for (i = 1; i <= n; i++) {
        demo_sleep_ms(1000);

        demo_buf_reset(&text);
        demo_buf_fmt(&text, "thinking, second %ld of %ld... ", i, n);
        demo_buf_add(&all, text.data, text.len);

        demo_simple("streamReasoning", "delta", text.data);
    }

    demo_simple("completeStreamingReasoning", "text", demo_buf_cstr(&all));

    demo_buf_reset(&text);
    demo_buf_fmt(&text, "Done after thinking for %ld seconds.", n < 0 ? 0 : n);
    demo_complete(text.data);

    free(text.data);
    free(all.data);

    return 0;
}


/*
 * quiet: "N:S" (default "3:6"): N streamReasoning events, each after S
 * seconds in which nothing at all is printed, on stdout or stderr; then
 * the end of slow.  A stream that a proxy cuts after a silence (proxy_read
 * timeout shorter than S) while the run goes on.  "N" alone keeps S at 6;
 * a query that is neither gives 3 and 6.  S is at most a day.
 */

#define DEMO_QUIET_N      3
#define DEMO_QUIET_S      6
#define DEMO_QUIET_MAX_S  86400


static void
demo_quiet_query(long *n, long *s)
{
    char        first[32];
    const char  *colon;
    size_t      len;

    *n = DEMO_QUIET_N;
    *s = DEMO_QUIET_S;

    colon = strchr(demo.query, ':');

    if (colon == NULL) {
        if (demo_parse_long(demo.query, n) != 0) {
            *n = DEMO_QUIET_N;
        }
        return;
    }

    len = (size_t) (colon - demo.query);

    if (len >= sizeof(first)) {
        return;
    }

    memcpy(first, demo.query, len);
    first[len] = '\0';

    if (demo_parse_long(first, n) != 0 || demo_parse_long(colon + 1, s) != 0
        || *s > DEMO_QUIET_MAX_S)
    {
        *n = DEMO_QUIET_N;
        *s = DEMO_QUIET_S;
    }
}


int
demo_scenario_quiet(void)
{
    long        i, n, s;
    demo_buf_t  text, all;

    memset(&text, 0, sizeof(text));
    memset(&all, 0, sizeof(all));

    demo_quiet_query(&n, &s);
    demo.delay_ms = 0;

    demo_begin(NULL);
    demo_simple("startStreamingReasoning", NULL, NULL);

    for (i = 1; i <= n; i++) {
        demo_sleep_ms(s * 1000);

        demo_buf_reset(&text);
        demo_buf_fmt(&text, "after %ld s of silence, %ld of %ld... ",
                     s < 0 ? 0 : s, i, n);
        demo_buf_add(&all, text.data, text.len);

        demo_simple("streamReasoning", "delta", text.data);
    }

    demo_simple("completeStreamingReasoning", "text", demo_buf_cstr(&all));

    demo_buf_reset(&text);
    demo_buf_fmt(&text, "Done after %ld silences of %ld s.", n < 0 ? 0 : n,
                 s < 0 ? 0 : s);
    demo_complete(text.data);

    free(text.data);
    free(all.data);

    return 0;
}


int
demo_scenario_flood(void)
{
    long        i, n;
    demo_buf_t  b, batch, text;

    memset(&b, 0, sizeof(b));
    memset(&batch, 0, sizeof(batch));
    memset(&text, 0, sizeof(text));

    n = demo_query_number(100000);
    demo.delay_ms = 0;

    demo_begin(NULL);
    demo_simple("startStreamingRunResult", NULL, NULL);

    /* whole lines, up to 64K at a time: one write(2) per line is slow */

    for (i = 0; i < n; i++) {
        demo_event(&b, "streamRunResult", 1);
        demo_buf_str(&b, ",\"delta\":\"x\"}\n");
        demo_buf_add(&batch, b.data, b.len);

        if (batch.len >= 65536 - 512) {
            demo_out(batch.data, batch.len);
            demo_buf_reset(&batch);
        }
    }

    if (batch.len) {
        demo_out(batch.data, batch.len);
    }

    free(b.data);
    free(batch.data);

    demo_add_usage(0, n < 0 ? 0 : n);

    demo_buf_fmt(&text, "Flooded %ld events.", n < 0 ? 0 : n);
    demo_complete(text.data);

    free(text.data);

    return 0;
}


/*
 * memhog: allocates and touches memory 16 MiB at a time, a streamReasoning
 * event after each step, until the kernel's OOM killer ends it.  A positive
 * query is a ceiling in MiB: there it stops and completes the run.
 */

#define DEMO_HOG_STEP  (16L * 1024 * 1024)

static void *volatile  demo_hog;


int
demo_scenario_memhog(void)
{
    long         max, total;
    void       **block;
    demo_buf_t   text;

    memset(&text, 0, sizeof(text));

    max = demo_query_number(0);
    demo.delay_ms = 0;

    demo_begin(NULL);
    demo_simple("startStreamingReasoning", NULL, NULL);

    for (total = 0; max <= 0 || total + 16 <= max; /* void */ ) {
        block = malloc(DEMO_HOG_STEP);

        if (block == NULL) {
            demo_err("memhog: malloc: %s", strerror(errno));
            demo_stop_by_error("MemoryError", "demo: malloc failed", 0, 0);
            return 1;
        }

        /* every page written to, and kept */
        memset(block, 0x5a, DEMO_HOG_STEP);
        block[0] = demo_hog;
        demo_hog = block;

        total += 16;

        demo_buf_reset(&text);
        demo_buf_fmt(&text, "allocated %ld MiB ", total);
        demo_simple("streamReasoning", "delta", text.data);
    }

    demo_buf_reset(&text);
    demo_buf_fmt(&text, "Allocated %ld MiB and stopped there.", total);
    demo_complete(text.data);

    free(text.data);

    return 0;
}


int
demo_scenario_forkbomb(void)
{
    int          err;
    long         i, n, max, reaped;
    pid_t        pid, *pids;
    demo_buf_t   b, text;

    memset(&b, 0, sizeof(b));
    memset(&text, 0, sizeof(text));

    max = demo_query_number(4096);

    if (max <= 0 || max > 65536) {
        max = 4096;
    }

    pids = malloc((size_t) max * sizeof(pid_t));
    if (pids == NULL) {
        demo_oom();
    }

    demo_begin(NULL);

    err = 0;

    for (n = 0; n < max; n++) {
        pid = fork();

        if (pid == -1) {
            err = errno;
            break;
        }

        if (pid == 0) {
            for ( ;; ) {
                (void) pause();
            }
        }

        pids[n] = pid;
    }

    demo_event(&b, "forkbomb", 1);
    demo_buf_fmt(&b, ",\"children\":%ld,\"processes\":%ld,\"errno\":%d,"
                 "\"error\":\"%s\",\"message\":", n, n + 1, err,
                 demo_errno_name(err));
    demo_buf_json(&b, err ? strerror(err) : "");
    demo_buf_fmt(&b, ",\"capped\":%s", err ? "false" : "true");
    demo_emit(&b);

    for (i = 0; i < n; i++) {
        (void) kill(pids[i], SIGKILL);
    }

    reaped = 0;

    for (i = 0; i < n; i++) {
        do {
            pid = waitpid(pids[i], NULL, 0);
        } while (pid == -1 && errno == EINTR);

        if (pid == pids[i]) {
            reaped++;
        }
    }

    demo_buf_fmt(&text, "Forked %ld children before %s; killed and reaped "
                 "%ld.", n, err ? demo_errno_name(err) : "the cap", reaped);
    demo_complete(text.data);

    free(pids);
    free(b.data);
    free(text.data);

    return 0;
}
