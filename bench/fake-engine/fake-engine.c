/*
 * A scripted Docker Engine on a unix socket, for measuring the module's
 * own cost (bench/scale.sh): every call is answered at once, and each
 * container's attach stream carries runtime-like events at a set rate.
 * It is no engine: nothing runs, and the real engine stays in every test.
 *
 * What it answers (as the module calls it, with or without "/v1.NN"):
 *   GET  /_ping                       200 "OK", Api-Version: 1.41
 *   GET  /version                     200 {"Version":"fake",...}
 *   GET  /containers/json             200 []
 *   POST /containers/create           201 {"Id":"<64 hex>","Warnings":[]}
 *   POST /containers/ID/attach        200 application/vnd.docker.raw-stream,
 *                                     then 8-byte-header frames (stdout),
 *                                     closed after the last event
 *   POST /containers/ID/start         204 (the events start)
 *   POST /containers/ID/wait          200 {"StatusCode":0} once the stream
 *                                     ended
 *   POST /containers/ID/stop, /kill   204 (the stream ends at once)
 *   DELETE /containers/ID             204
 *   anything else                     404 {"message":"..."}
 *
 * A container's stream: initializeRuntime, startRun, then --events
 * streamRunResult events, one every --interval-ms, then completeRun.
 * With --hold, the stream stops before completeRun until SIGUSR1, which
 * releases every container there is (not those created after it): each
 * sends the rest of its events and completeRun, and ends.
 *
 * Usage: fake-engine --socket PATH [--events N] [--interval-ms M] [--hold]
 *                    [--ready FILE]
 * --ready: "ready\n" is written to FILE once the socket listens.  SIGUSR2
 * writes the counts to stderr.  One process, epoll, non-blocking; the
 * descriptor limit is raised to its hard limit.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>


#define IN_MAX     65536
#define ID_LEN     64
#define TICK_MS    5


typedef struct container_s  container_t;

typedef struct {
    int            fd;
    char          *in;          /* the request being read */
    size_t         in_len;
    char          *out;         /* what is still to be written */
    size_t         out_len;
    size_t         out_sent;
    size_t         body_left;   /* of the request */
    int            close_after;
    int            hijacked;    /* an attach stream: no more requests */
    container_t   *stream;      /* the container whose output this is */
    container_t   *waiter;      /* a wait not answered yet */
} conn_t;

struct container_s {
    char           id[ID_LEN + 1];
    conn_t        *attach;
    conn_t        *wait;
    int            started;
    int            ended;
    int            released;    /* by SIGUSR1 */
    int            sent;        /* events sent */
    int64_t        due;         /* the next event, ms */
    size_t         index;       /* in the table */
    container_t   *next;        /* all containers */
    container_t  **prev;
};


static const char  *sock_path;
static int          events = 10;
static int          interval_ms = 100;
static int          hold;
static int          ep;
static container_t *containers;
static container_t **table;
static size_t       n_table, table_size;
static uint64_t     seq;
static uint64_t     n_created, n_attached, n_started, n_ended, n_waited,
                    n_deleted, n_events, n_conns, n_live;


static void
fatal(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    fprintf(stderr, "fake-engine: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}


static int64_t
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
conn_watch(conn_t *c, uint32_t ev, int op)
{
    struct epoll_event  e;

    e.events = ev;
    e.data.ptr = c;

    if (epoll_ctl(ep, op, c->fd, &e) == -1 && errno != ENOENT) {
        fatal("epoll_ctl: %s", strerror(errno));
    }
}


static void
conn_close(conn_t *c)
{
    if (c->stream) {
        c->stream->attach = NULL;
    }

    if (c->waiter) {
        c->waiter->wait = NULL;
    }

    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
    n_live--;
}


/* output to send, appended; written at once as far as the socket takes */

static void
conn_append(conn_t *c, const char *p, size_t n)
{
    c->out = realloc(c->out, c->out_len + n);
    if (c->out == NULL) {
        fatal("out of memory");
    }

    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}


/* 0: all sent (or some pending, EPOLLOUT armed); -1: closed */

static int
conn_flush(conn_t *c)
{
    ssize_t  n;

    while (c->out_sent < c->out_len) {
        n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent,
                 MSG_NOSIGNAL);

        if (n == -1) {
            if (errno == EAGAIN) {
                conn_watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
                return 0;
            }

            if (errno == EINTR) {
                continue;
            }

            conn_close(c);
            return -1;
        }

        c->out_sent += n;
    }

    free(c->out);
    c->out = NULL;
    c->out_len = c->out_sent = 0;

    if (c->close_after) {
        conn_close(c);
        return -1;
    }

    conn_watch(c, EPOLLIN, EPOLL_CTL_MOD);

    return 0;
}


static void
reply(conn_t *c, int status, const char *reason, const char *type,
    const char *body)
{
    char    head[512];
    size_t  blen;
    int     n;

    blen = body ? strlen(body) : 0;

    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\n"
                 "Api-Version: 1.41\r\n"
                 "Docker-Experimental: false\r\n"
                 "Ostype: linux\r\n"
                 "Server: fake-engine\r\n"
                 "%s%s%s"
                 "Content-Length: %zu\r\n"
                 "\r\n",
                 status, reason,
                 type ? "Content-Type: " : "", type ? type : "",
                 type ? "\r\n" : "", blen);

    conn_append(c, head, n);

    if (blen) {
        conn_append(c, body, blen);
    }
}


/* a stdout frame: the 8-byte header, then the line */

static void
frame(conn_t *c, const char *line, size_t n)
{
    unsigned char  h[8];

    h[0] = 1;
    h[1] = h[2] = h[3] = 0;
    h[4] = (n >> 24) & 0xff;
    h[5] = (n >> 16) & 0xff;
    h[6] = (n >> 8) & 0xff;
    h[7] = n & 0xff;

    conn_append(c, (char *) h, 8);
    conn_append(c, line, n);
}


static void
event(container_t *k, conn_t *c, const char *type, const char *extra)
{
    char  line[1024];
    int   n;

    /* ids of 24 characters, as the runtime's */
    n = snprintf(line, sizeof(line),
                 "{\"type\":\"%s\",\"id\":\"ev%022llu\",\"expertKey\":\"fake\","
                 "\"timestamp\":%lld,\"jobId\":\"job%.21s\","
                 "\"runId\":\"run%.21s\",\"stepNumber\":1%s}\n",
                 type, (unsigned long long) ++seq,
                 (long long) time(NULL) * 1000, k->id, k->id + 21,
                 extra ? extra : "");

    frame(c, line, n);
    n_events++;
}


/* an id starts with its index in the table, in hex */

static container_t *
container_find(const char *id, size_t len)
{
    char           hex[17], *end;
    container_t   *k;
    unsigned long  i;

    if (len != ID_LEN) {
        return NULL;
    }

    memcpy(hex, id, 16);
    hex[16] = '\0';
    i = strtoul(hex, &end, 16);

    if (end != hex + 16 || i >= n_table) {
        return NULL;
    }

    k = table[i];

    return (k && memcmp(k->id, id, ID_LEN) == 0) ? k : NULL;
}


static void container_end(container_t *k);


/* the stream's next events, as many as are due */

static void
container_step(container_t *k, int64_t now)
{
    conn_t  *c;
    char     extra[128];

    c = k->attach;

    if (!k->started || k->ended || c == NULL) {
        return;
    }

    if (k->sent == 0) {
        event(k, c, "initializeRuntime",
              ",\"runtimeVersion\":\"0.0.76-fake\",\"expertName\":\"fake\"");
        event(k, c, "startRun", NULL);
        event(k, c, "startStreamingRunResult", NULL);
        k->sent = 1;
        k->due = now + interval_ms;
    }

    while (k->sent <= events && k->due <= now) {
        snprintf(extra, sizeof(extra), ",\"delta\":\"word%d \"", k->sent);
        event(k, c, "streamRunResult", extra);
        k->sent++;
        k->due += interval_ms;
    }

    if (k->sent > events && (!hold || k->released)) {
        event(k, c, "completeRun",
              ",\"checkpoint\":{\"status\":\"completed\",\"stepNumber\":1}");
        container_end(k);
        return;
    }

    conn_flush(c);
}


/* the process exits: the stream closes and a wait is answered */

static void
container_end(container_t *k)
{
    conn_t  *c;

    if (k->ended) {
        return;
    }

    k->ended = 1;
    n_ended++;

    c = k->attach;
    if (c) {
        c->close_after = 1;
        conn_flush(c);
    }

    c = k->wait;
    if (c) {
        k->wait = NULL;
        c->waiter = NULL;
        reply(c, 200, "OK", "application/json",
              "{\"Error\":null,\"StatusCode\":0}\n");
        n_waited++;
        conn_flush(c);
    }
}


static void
container_delete(container_t *k)
{
    if (k->attach) {
        k->attach->stream = NULL;
        k->attach->close_after = 1;
        conn_flush(k->attach);
    }

    if (k->wait) {
        k->wait->waiter = NULL;
    }

    table[k->index] = NULL;

    *k->prev = k->next;
    if (k->next) {
        k->next->prev = k->prev;
    }

    free(k);
    n_deleted++;
}


static void
handle(conn_t *c, const char *method, const char *path)
{
    const char   *p, *q;
    char          body[160];
    container_t  *k;

    /* "/v1.41/containers/..." or "/containers/..." */
    if (strncmp(path, "/v1.", 4) == 0) {
        p = strchr(path + 1, '/');
        path = p ? p : path;
    }

    if (strncmp(path, "/_ping", 6) == 0) {
        reply(c, 200, "OK", "text/plain; charset=utf-8", "OK");
        return;
    }

    if (strncmp(path, "/version", 8) == 0) {
        reply(c, 200, "OK", "application/json",
              "{\"Version\":\"fake\",\"ApiVersion\":\"1.41\","
              "\"MinAPIVersion\":\"1.12\",\"Os\":\"linux\"}\n");
        return;
    }

    if (strncmp(path, "/containers/json", 16) == 0) {
        reply(c, 200, "OK", "application/json", "[]\n");
        return;
    }

    if (strcmp(method, "POST") == 0
        && strncmp(path, "/containers/create", 18) == 0)
    {
        k = calloc(1, sizeof(container_t));
        if (k == NULL) {
            fatal("out of memory");
        }

        if (n_table == table_size) {
            table_size = table_size ? table_size * 2 : 1024;
            table = realloc(table, table_size * sizeof(container_t *));
            if (table == NULL) {
                fatal("out of memory");
            }
        }

        k->index = n_table;
        table[n_table++] = k;

        snprintf(k->id, sizeof(k->id), "%016llx%016llx%016llx%016llx",
                 (unsigned long long) k->index,
                 (unsigned long long) n_created * 0x9e3779b97f4a7c15ULL,
                 (unsigned long long) getpid(),
                 (unsigned long long) n_created);

        k->next = containers;
        if (containers) {
            containers->prev = &k->next;
        }
        k->prev = &containers;
        containers = k;
        n_created++;

        snprintf(body, sizeof(body), "{\"Id\":\"%s\",\"Warnings\":[]}\n",
                 k->id);
        reply(c, 201, "Created", "application/json", body);
        return;
    }

    if (strncmp(path, "/containers/", 12) != 0) {
        goto not_found;
    }

    p = path + 12;
    q = p + strcspn(p, "/?");
    k = container_find(p, q - p);

    if (k == NULL) {
        reply(c, 404, "Not Found", "application/json",
              "{\"message\":\"No such container\"}\n");
        return;
    }

    if (strcmp(method, "DELETE") == 0) {
        container_delete(k);
        reply(c, 204, "No Content", NULL, NULL);
        return;
    }

    if (strcmp(method, "POST") != 0) {
        goto not_found;
    }

    if (strncmp(q, "/attach", 7) == 0) {
        conn_append(c, "HTTP/1.1 200 OK\r\n"
                       "Content-Type: application/vnd.docker.raw-stream\r\n"
                       "Api-Version: 1.41\r\n"
                       "\r\n",
                    sizeof("HTTP/1.1 200 OK\r\n"
                           "Content-Type: application/vnd.docker.raw-stream\r\n"
                           "Api-Version: 1.41\r\n"
                           "\r\n") - 1);
        c->hijacked = 1;
        c->stream = k;
        k->attach = c;
        n_attached++;

        if (k->ended) {
            c->close_after = 1;
        }

        return;
    }

    if (strncmp(q, "/start", 6) == 0) {
        if (k->started) {
            reply(c, 304, "Not Modified", NULL, NULL);
            return;
        }

        k->started = 1;
        n_started++;
        reply(c, 204, "No Content", NULL, NULL);
        conn_flush(c);

        /* the first events at once (with --events 0, the whole stream) */
        container_step(k, now_ms());
        return;
    }

    if (strncmp(q, "/wait", 5) == 0) {
        if (k->ended) {
            reply(c, 200, "OK", "application/json",
                  "{\"Error\":null,\"StatusCode\":0}\n");
            n_waited++;
            return;
        }

        k->wait = c;
        c->waiter = k;
        return;
    }

    if (strncmp(q, "/stop", 5) == 0 || strncmp(q, "/kill", 5) == 0) {
        reply(c, 204, "No Content", NULL, NULL);
        conn_flush(c);

        if (k->attach && !k->ended) {
            /* SIGTERM: the stream ends without more events */
            container_end(k);
        }

        return;
    }

not_found:

    reply(c, 404, "Not Found", "application/json",
          "{\"message\":\"page not found\"}\n");
}


/* the requests read so far, answered; -1: the connection is gone */

static int
conn_read(conn_t *c)
{
    ssize_t   n;
    char     *end, *p, *line, *eol, method[16], path[1024];
    size_t    head, cl;

    if (c->in == NULL) {
        c->in = malloc(IN_MAX);
        if (c->in == NULL) {
            fatal("out of memory");
        }
    }

    for ( ;; ) {
        n = recv(c->fd, c->in + c->in_len, IN_MAX - c->in_len, 0);

        if (n == 0) {
            conn_close(c);
            return -1;
        }

        if (n == -1) {
            if (errno == EAGAIN) {
                break;
            }

            if (errno == EINTR) {
                continue;
            }

            conn_close(c);
            return -1;
        }

        c->in_len += n;

        if (c->in_len == IN_MAX) {
            break;
        }
    }

    for ( ;; ) {
        if (c->body_left) {
            n = c->body_left < c->in_len ? c->body_left : c->in_len;
            memmove(c->in, c->in + n, c->in_len - n);
            c->in_len -= n;
            c->body_left -= n;

            if (c->body_left) {
                break;
            }
        }

        if (c->hijacked || c->waiter) {
            /* an attach or a wait holds the connection */
            c->in_len = 0;
            break;
        }

        end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (end == NULL) {
            if (c->in_len == IN_MAX) {
                conn_close(c);
                return -1;
            }
            break;
        }

        head = end + 4 - c->in;

        if (sscanf(c->in, "%15s %1023s", method, path) != 2) {
            conn_close(c);
            return -1;
        }

        cl = 0;
        for (line = strstr(c->in, "\r\n") + 2; line < end; line = eol + 2) {
            eol = memmem(line, end + 2 - line, "\r\n", 2);
            if (strncasecmp(line, "Content-Length:", 15) == 0) {
                cl = strtoul(line + 15, &p, 10);
            }
        }

        memmove(c->in, c->in + head, c->in_len - head);
        c->in_len -= head;
        c->body_left = cl;

        /* the body is read (and skipped) before the answer */
        if (c->body_left > c->in_len) {
            c->body_left -= c->in_len;
            c->in_len = 0;
            handle(c, method, path);

        } else {
            memmove(c->in, c->in + cl, c->in_len - cl);
            c->in_len -= cl;
            c->body_left = 0;
            handle(c, method, path);
        }

        if (c->hijacked || c->waiter) {
            break;
        }
    }

    if (c->in_len == 0) {
        free(c->in);
        c->in = NULL;
    }

    return conn_flush(c);
}


static void
tick(void)
{
    int64_t       now;
    container_t  *k, *next;

    now = now_ms();

    for (k = containers; k; k = next) {
        next = k->next;

        if (!k->started || k->ended || k->attach == NULL) {
            continue;
        }

        if (k->sent > events ? (!hold || k->released) : k->due <= now) {
            container_step(k, now);
        }
    }
}


int
main(int argc, char **argv)
{
    int                  ls, sfd, n, i, fd;
    char                *ready;
    conn_t              *c, lconn, sconn;
    container_t         *k;
    int64_t              next_tick, now;
    sigset_t             mask;
    struct rlimit        rl;
    struct sockaddr_un   sa;
    struct epoll_event   evs[256];
    struct signalfd_siginfo  si;
    FILE                *f;

    ready = NULL;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            sock_path = argv[++i];
        } else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc) {
            events = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc) {
            interval_ms = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--hold") == 0) {
            hold = 1;
        } else if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc) {
            ready = argv[++i];
        } else {
            fatal("usage: fake-engine --socket PATH [--events N] "
                  "[--interval-ms M] [--hold] [--ready FILE]");
        }
    }

    if (sock_path == NULL || events < 0 || interval_ms < 0) {
        fatal("--socket PATH is needed; --events, --interval-ms >= 0");
    }

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    ls = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ep = epoll_create1(EPOLL_CLOEXEC);

    if (sfd == -1 || ls == -1 || ep == -1) {
        fatal("set-up: %s", strerror(errno));
    }

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(sock_path) >= sizeof(sa.sun_path)) {
        fatal("socket path too long: %s", sock_path);
    }
    strcpy(sa.sun_path, sock_path);
    unlink(sock_path);

    if (bind(ls, (struct sockaddr *) &sa, sizeof(sa)) == -1
        || listen(ls, 4096) == -1)
    {
        fatal("%s: %s", sock_path, strerror(errno));
    }

    /* the workers may run as nobody */
    chmod(sock_path, 0666);

    lconn.fd = ls;
    conn_watch(&lconn, EPOLLIN, EPOLL_CTL_ADD);
    sconn.fd = sfd;
    conn_watch(&sconn, EPOLLIN, EPOLL_CTL_ADD);

    if (ready) {
        f = fopen(ready, "w");
        if (f == NULL || fprintf(f, "ready\n") < 0 || fclose(f) != 0) {
            fatal("%s: %s", ready, strerror(errno));
        }
    }

    next_tick = now_ms() + TICK_MS;

    for ( ;; ) {
        now = now_ms();
        n = epoll_wait(ep, evs, 256,
                       next_tick > now ? (int) (next_tick - now) : 0);

        if (n == -1 && errno != EINTR) {
            fatal("epoll_wait: %s", strerror(errno));
        }

        for (i = 0; i < n; i++) {
            c = evs[i].data.ptr;

            if (c == &lconn) {
                while ((fd = accept4(ls, NULL, NULL,
                                     SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1)
                {
                    c = calloc(1, sizeof(conn_t));
                    if (c == NULL) {
                        fatal("out of memory");
                    }
                    c->fd = fd;
                    n_conns++;
                    n_live++;
                    conn_watch(c, EPOLLIN, EPOLL_CTL_ADD);
                }
                continue;
            }

            if (c == &sconn) {
                while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                    if (si.ssi_signo == SIGUSR1) {
                        for (k = containers; k; k = k->next) {
                            k->released = 1;
                        }
                        next_tick = 0;

                    } else if (si.ssi_signo == SIGUSR2) {
                        fprintf(stderr, "fake-engine: created %llu attached "
                                "%llu started %llu ended %llu waited %llu "
                                "deleted %llu events %llu connections %llu "
                                "live %llu\n",
                                (unsigned long long) n_created,
                                (unsigned long long) n_attached,
                                (unsigned long long) n_started,
                                (unsigned long long) n_ended,
                                (unsigned long long) n_waited,
                                (unsigned long long) n_deleted,
                                (unsigned long long) n_events,
                                (unsigned long long) n_conns,
                                (unsigned long long) n_live);

                    } else {
                        unlink(sock_path);
                        return 0;
                    }
                }
                continue;
            }

            if (evs[i].events & EPOLLOUT) {
                if (conn_flush(c) == -1) {
                    continue;
                }
            }

            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                conn_read(c);
            }
        }

        if (now_ms() >= next_tick) {
            tick();
            next_tick = now_ms() + TICK_MS;
        }
    }
}
