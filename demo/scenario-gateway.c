/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * perstack-demo, scenarios llm and net: the network, and a model called through
 * the LLM gateway.
 */


#include "demo.h"


static int demo_parse_target(const char *s, size_t len,
    struct sockaddr_in *sin);
static int demo_connect(struct sockaddr_in *sin, int ms);


/*
 * Networking for llm and net: IPv4 literals only (the image has no resolver
 * configuration to speak of, and the gateway's URL holds its address).
 */

#define DEMO_CONNECT_TIMEOUT  2000           /* ms */
#define DEMO_HTTP_TIMEOUT     10000          /* ms */


/* "a.b.c.d:port" into sin; 0 on success */

static int
demo_parse_target(const char *s, size_t len, struct sockaddr_in *sin)
{
    char    host[INET_ADDRSTRLEN];
    char   *end;
    long    port;
    size_t  n;
    const char  *colon;

    colon = memchr(s, ':', len);
    if (colon == NULL) {
        return -1;
    }

    n = (size_t) (colon - s);
    if (n == 0 || n >= sizeof(host)) {
        return -1;
    }

    memcpy(host, s, n);
    host[n] = '\0';

    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;

    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
        return -1;
    }

    errno = 0;
    port = strtol(colon + 1, &end, 10);

    if (errno || end != s + len || port < 1 || port > 65535) {
        return -1;
    }

    sin->sin_port = htons((unsigned short) port);

    return 0;
}


/* a connected socket, or -1 with errno set; never waits longer than ms */

static int
demo_connect(struct sockaddr_in *sin, int ms)
{
    int            fd, err, flags;
    socklen_t      len;
    struct pollfd  pfd;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd == -1) {
        return -1;
    }

    flags = fcntl(fd, F_GETFL);
    (void) fcntl(fd, F_SETFL, flags | O_NONBLOCK);

    if (connect(fd, (struct sockaddr *) sin, sizeof(*sin)) == -1) {
        if (errno != EINPROGRESS) {
            err = errno;
            (void) close(fd);
            errno = err;
            return -1;
        }

        pfd.fd = fd;
        pfd.events = POLLOUT;

        if (poll(&pfd, 1, ms) != 1) {
            (void) close(fd);
            errno = ETIMEDOUT;
            return -1;
        }

        err = 0;
        len = sizeof(err);

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err) {
            (void) close(fd);
            errno = err ? err : EIO;
            return -1;
        }
    }

    (void) fcntl(fd, F_SETFL, flags);

    return fd;
}


/*
 * llm: one call of a model through the provider's API, the way the
 * runtime makes it: ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY from the
 * environment, POST ${ANTHROPIC_BASE_URL}/messages with the key in
 * x-api-key.  The base replaces the SDK's whole default,
 * https://api.anthropic.com/v1, so a gateway's base must end in /v1; a
 * trailing "/" is dropped, as the SDK drops it.  The
 * answer comes out as {"type":"llmCall","status":N,"body":"..."}.  With
 * the word "hold" in the query the run then waits (up to a minute) before
 * it completes, so that tests can look at it while it runs.
 */

int
demo_scenario_llm(void)
{
    int                  fd, n, hold;
    char                 chunk[4096];
    size_t               hlen, plen;
    ssize_t              k;
    demo_buf_t           req, body, resp, b;
    const char          *base, *key, *p, *prefix, *status_line, *text;
    struct pollfd        pfd;
    struct sockaddr_in   sin;

    memset(&req, 0, sizeof(req));
    memset(&body, 0, sizeof(body));
    memset(&resp, 0, sizeof(resp));
    memset(&b, 0, sizeof(b));

    hold = strstr(demo.query, "hold") != NULL;

    demo_begin(NULL);
    demo_start_generation();

    base = getenv("ANTHROPIC_BASE_URL");
    key = getenv("ANTHROPIC_API_KEY");

    demo_event(&b, "llmCall", 1);

    if (base == NULL || key == NULL || strncmp(base, "http://", 7) != 0) {
        demo_buf_str(&b, ",\"status\":0,\"error\":\"ANTHROPIC_BASE_URL "
                     "(http://address:port) and ANTHROPIC_API_KEY are "
                     "needed\"");
        goto done;
    }

    p = base + 7;
    prefix = strchr(p, '/');
    hlen = prefix ? (size_t) (prefix - p) : strlen(p);

    if (prefix == NULL) {
        prefix = "";
    }

    plen = strlen(prefix);

    if (plen && prefix[plen - 1] == '/') {
        plen--;
    }

    if (demo_parse_target(p, hlen, &sin) != 0) {
        demo_buf_str(&b, ",\"status\":0,\"error\":\"the base URL needs an "
                     "IPv4 address and a port\"");
        goto done;
    }

    demo_buf_str(&body, "{\"model\":\"demo\",\"max_tokens\":64,"
                 "\"messages\":[{\"role\":\"user\",\"content\":");
    demo_buf_json(&body, demo.query);
    demo_buf_str(&body, "}]}");

    demo_buf_fmt(&req, "POST %.*s/messages HTTP/1.0\r\n"
                 "Host: %.*s\r\n"
                 "x-api-key: %s\r\n"
                 "anthropic-version: 2023-06-01\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 (int) plen, prefix, (int) hlen, p, key,
                 body.len);
    demo_buf_add(&req, body.data, body.len);

    fd = demo_connect(&sin, DEMO_CONNECT_TIMEOUT);

    if (fd == -1) {
        demo_buf_fmt(&b, ",\"status\":0,\"error\":\"%s\"",
                     demo_errno_name(errno));
        goto done;
    }

    if (demo_write_all(fd, req.data, req.len) != 0) {
        demo_buf_fmt(&b, ",\"status\":0,\"error\":\"%s\"",
                     demo_errno_name(errno));
        (void) close(fd);
        goto done;
    }

    for ( ;; ) {
        pfd.fd = fd;
        pfd.events = POLLIN;

        if (poll(&pfd, 1, DEMO_HTTP_TIMEOUT) != 1) {
            break;
        }

        k = read(fd, chunk, sizeof(chunk));

        if (k <= 0) {
            break;
        }

        if (resp.len < 1024 * 1024) {
            demo_buf_add(&resp, chunk, (size_t) k);
        }
    }

    (void) close(fd);

    status_line = demo_buf_cstr(&resp);
    n = 0;

    if (strncmp(status_line, "HTTP/1.", 7) == 0 && resp.len > 12) {
        n = atoi(status_line + 9);
    }

    text = strstr(status_line, "\r\n\r\n");
    text = text ? text + 4 : "";

    demo_buf_fmt(&b, ",\"status\":%d,\"body\":", n);
    demo_buf_json(&b, text);

done:

    demo_emit(&b);

    if (hold) {
        for (n = 0; n < 600; n++) {
            (void) poll(NULL, 0, 100);
        }
    }

    demo_complete("The model was asked through the gateway.");

    free(req.data);
    free(body.data);
    free(resp.data);
    free(b.data);

    return 0;
}


/*
 * net: which of the "address:port" targets in the query a TCP connection
 * reaches, in one {"type":"net","results":[...]} event.
 */

int
demo_scenario_net(void)
{
    int                  i, n, fd, first;
    char                *targets[DEMO_PROBE_MAX_PATHS];
    demo_buf_t           b;
    struct sockaddr_in   sin;

    memset(&b, 0, sizeof(b));

    n = demo_query_paths(targets, DEMO_PROBE_MAX_PATHS);

    demo_begin(NULL);

    demo_event(&b, "net", 1);
    demo_buf_str(&b, ",\"results\":[");

    first = 1;

    for (i = 0; i < n; i++) {
        demo_buf_str(&b, first ? "{\"target\":" : ",{\"target\":");
        first = 0;
        demo_buf_json(&b, targets[i]);

        if (demo_parse_target(targets[i], strlen(targets[i]), &sin) != 0) {
            demo_buf_str(&b, ",\"connected\":false,\"error\":\"EINVAL\"}");
            continue;
        }

        fd = demo_connect(&sin, DEMO_CONNECT_TIMEOUT);

        if (fd == -1) {
            demo_buf_fmt(&b, ",\"connected\":false,\"error\":\"%s\"}",
                         demo_errno_name(errno));
            continue;
        }

        (void) close(fd);
        demo_buf_str(&b, ",\"connected\":true}");
    }

    demo_buf_str(&b, "]");
    demo_emit(&b);

    demo_complete("The network was probed.");

    for (i = 0; i < n; i++) {
        free(targets[i]);
    }

    free(b.data);

    return 0;
}
