/*
 * The load client of bench/scale.sh: many executions at once over HTTP/1.0
 * (one connection each, the NDJSON read to its close), one process, epoll.
 *
 * Usage: stream-client --port P [--path PATH] [--streams N] [--total M]
 *                      [--concurrency C] [--ramp R] [--held-after K]
 *                      [--timeout S]
 *
 * --streams N: N executions at once (at most R of them still waiting for
 * their first event); once every one has K events (--held-after, default
 * 1), "held N <seconds>" is printed.  --total M --concurrency C: M
 * executions, C at a time, each new one as soon as one ends.  Either way
 * it ends when every execution has ended (or --timeout, default 600 s),
 * with a line:
 *   done ok O errors E events V seconds S first_ms_p50 P first_ms_p99 Q
 * An execution is ok when its response was 200 and its stream ended with a
 * perstack.end whose outcome is "completed"; every other end is an error
 * (the first few are described on stderr).  Exit 0 when E is 0, 1 if not.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>


#define LINE_MAX_LEN  16384


typedef struct {
    int       fd;
    int       connected;
    int       headers;      /* the response head was read */
    int       status;
    int       ended;        /* a perstack.end completed was read */
    int       events;
    int       counted_held;
    double    started;
    size_t    len;
    char      line[LINE_MAX_LEN];
} stream_t;


static int       ep, port = 0, ramp = 500, held_after = 1;
static long      streams, total, concurrency, timeout_s = 600;
static long      launched, finished, ok, errors, waiting, held, reported;
static long long n_events;
static const char *path = "/run?expert=fake&query=bench";
static double   *firsts;
static long      n_firsts;


static double
now_s(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static void
fail(stream_t *s, const char *why)
{
    errors++;

    if (reported++ < 5) {
        fprintf(stderr, "stream-client: an execution failed: %s "
                "(status %d, %d events)\n", why, s->status, s->events);
    }
}


static void
finish(stream_t *s)
{
    if (s->ended) {
        ok++;

    } else if (s->status != 200) {
        fail(s, "not 200");

    } else {
        fail(s, "no perstack.end completed");
    }

    if (s->events == 0) {
        waiting--;
    }

    if (!s->counted_held && streams) {
        /* it ended before the others were held: it counts as held */
        held++;
    }

    close(s->fd);
    free(s);
    finished++;
}


static int
launch(void)
{
    int                  fd, one;
    stream_t            *s;
    struct sockaddr_in   sa;
    struct epoll_event   e;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        fprintf(stderr, "stream-client: socket: %s\n", strerror(errno));
        return -1;
    }

    one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == -1
        && errno != EINPROGRESS)
    {
        fprintf(stderr, "stream-client: connect: %s\n", strerror(errno));
        close(fd);
        return -1;
    }

    s = calloc(1, sizeof(stream_t));
    if (s == NULL) {
        close(fd);
        return -1;
    }

    s->fd = fd;
    s->started = now_s();

    e.events = EPOLLOUT;
    e.data.ptr = s;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);

    launched++;
    waiting++;

    return 0;
}


static void
on_line(stream_t *s, char *p, size_t n)
{
    if (!s->headers) {
        if (n == 0 || (n == 1 && p[0] == '\r')) {
            s->headers = 1;

        } else if (s->status == 0 && n > 12 && strncmp(p, "HTTP/1.", 7) == 0) {
            s->status = atoi(p + 9);
        }

        return;
    }

    if (n == 0) {
        return;
    }

    if (s->events++ == 0) {
        waiting--;
        firsts[n_firsts++] = (now_s() - s->started) * 1000;
    }

    n_events++;

    if (s->events >= held_after && !s->counted_held) {
        s->counted_held = 1;
        held++;
    }

    p[n] = '\0';

    if (strstr(p, "\"perstack.end\"")
        && strstr(p, "\"outcome\":\"completed\""))
    {
        s->ended = 1;
    }
}


/* 0: more to come; -1: the stream is finished */

static int
on_read(stream_t *s)
{
    ssize_t  n;
    char    *p, *nl, *last;

    for ( ;; ) {
        n = recv(s->fd, s->line + s->len, LINE_MAX_LEN - 1 - s->len, 0);

        if (n == 0) {
            finish(s);
            return -1;
        }

        if (n == -1) {
            if (errno == EAGAIN) {
                return 0;
            }

            if (errno == EINTR) {
                continue;
            }

            fail(s, strerror(errno));
            s->ended = 1;   /* counted */
            ok--;
            finish(s);
            return -1;
        }

        s->len += n;
        p = s->line;
        last = s->line + s->len;

        while ((nl = memchr(p, '\n', last - p)) != NULL) {
            on_line(s, p, nl - p);
            p = nl + 1;
        }

        s->len = last - p;

        if (s->len == LINE_MAX_LEN - 1) {
            /* a longer line: only its start matters here */
            on_line(s, s->line, 0);
            s->len = 0;

        } else {
            memmove(s->line, p, s->len);
        }
    }
}


static void
on_connected(stream_t *s)
{
    char                buf[512];
    int                 n, err;
    socklen_t           len;
    struct epoll_event  e;

    len = sizeof(err);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err) {
        fail(s, "connect failed");
        s->ended = 1;
        ok--;
        finish(s);
        return;
    }

    s->connected = 1;

    n = snprintf(buf, sizeof(buf),
                 "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                 "Accept: application/x-ndjson\r\n\r\n", path);

    if (send(s->fd, buf, n, MSG_NOSIGNAL) != n) {
        fail(s, "send failed");
        s->ended = 1;
        ok--;
        finish(s);
        return;
    }

    e.events = EPOLLIN;
    e.data.ptr = s;
    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &e);
}


static int
cmp(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


int
main(int argc, char **argv)
{
    int                 i, n, printed_held;
    long                want;
    double              start, deadline, p50, p99;
    stream_t           *s;
    struct rlimit       rl;
    struct epoll_event  evs[512];

    for (i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            goto usage;
        }
        if (strcmp(argv[i], "--port") == 0) {
            port = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--path") == 0) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--streams") == 0) {
            streams = atol(argv[++i]);
        } else if (strcmp(argv[i], "--total") == 0) {
            total = atol(argv[++i]);
        } else if (strcmp(argv[i], "--concurrency") == 0) {
            concurrency = atol(argv[++i]);
        } else if (strcmp(argv[i], "--ramp") == 0) {
            ramp = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--held-after") == 0) {
            held_after = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--timeout") == 0) {
            timeout_s = atol(argv[++i]);
        } else {
            goto usage;
        }
    }

    if (port <= 0 || (streams <= 0 && (total <= 0 || concurrency <= 0))) {
        goto usage;
    }

    if (streams) {
        total = streams;
        concurrency = streams;
    }

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    firsts = calloc(total, sizeof(double));
    ep = epoll_create1(EPOLL_CLOEXEC);

    if (firsts == NULL || ep == -1) {
        fprintf(stderr, "stream-client: set-up failed\n");
        return 2;
    }

    setvbuf(stdout, NULL, _IOLBF, 0);

    start = now_s();
    deadline = start + timeout_s;
    printed_held = 0;

    while (finished < total) {

        /* new executions: up to the concurrency, few waiting at a time */
        want = concurrency - (launched - finished);
        while (want-- > 0 && launched < total && waiting < ramp) {
            if (launch() != 0) {
                return 2;
            }
        }

        if (streams && !printed_held && held >= streams) {
            printf("held %ld %.3f\n", held, now_s() - start);
            printed_held = 1;
        }

        if (now_s() > deadline) {
            fprintf(stderr, "stream-client: timed out: %ld of %ld ended\n",
                    finished, total);
            errors += total - finished;
            break;
        }

        n = epoll_wait(ep, evs, 512, 1000);

        for (i = 0; i < n; i++) {
            s = evs[i].data.ptr;

            if (!s->connected) {
                on_connected(s);
                continue;
            }

            on_read(s);
        }
    }

    qsort(firsts, n_firsts, sizeof(double), cmp);
    p50 = n_firsts ? firsts[(long) (0.5 * (n_firsts - 1) + 0.5)] : 0;
    p99 = n_firsts ? firsts[(long) (0.99 * (n_firsts - 1) + 0.5)] : 0;

    printf("done ok %ld errors %ld events %lld seconds %.3f "
           "first_ms_p50 %.2f first_ms_p99 %.2f\n",
           ok, errors, n_events, now_s() - start, p50, p99);

    return errors ? 1 : 0;

usage:

    fprintf(stderr, "usage: stream-client --port P [--path PATH] "
            "[--streams N | --total M --concurrency C] [--ramp R] "
            "[--held-after K] [--timeout S]\n");
    return 2;
}
