
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Waking another worker, with no polling: each worker binds, after the
 * fork, a datagram socket in the abstract namespace named after its pid
 * and start time, so that a reload or a new worker needs nothing
 * inherited.  A wake-up is one byte that says nothing but "look": the
 * worker then runs its owner's handler, which looks in shared memory for
 * what is its.  A datagram lost because the socket's buffer is full loses
 * nothing (those in the buffer wake the worker all the same), and one
 * from anybody else costs only a look.  The same worker is woken through
 * a posted event.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_perstack_wake.h"
#include "ngx_http_perstack_process.h"


/* datagrams read in one go: the event is level-triggered */
#define NGX_HTTP_PERSTACK_WAKE_READ_MAX   64


#if (NGX_LINUX)
static socklen_t ngx_http_perstack_wake_addr(struct sockaddr_un *sun,
    ngx_pid_t pid, uint64_t start);
#endif
static void ngx_http_perstack_wake_open(ngx_cycle_t *cycle);
static void ngx_http_perstack_wake(ngx_pid_t pid, uint64_t start);
static void ngx_http_perstack_wake_read(ngx_event_t *ev);
static void ngx_http_perstack_wake_local(ngx_event_t *ev);


/* this worker's socket; NULL: none, its owner's timers must do */
static ngx_connection_t  *ngx_http_perstack_wake_conn;

/* posted when this worker wakes itself */
static ngx_event_t        ngx_http_perstack_wake_ev;

static void             (*ngx_http_perstack_wake_handler)(void);


/* once per worker: the socket, and what a wake-up runs */

void
ngx_http_perstack_wake_init(ngx_cycle_t *cycle, void (*handler)(void))
{
    if (ngx_http_perstack_wake_handler) {
        return;
    }

    ngx_http_perstack_wake_handler = handler;

    ngx_http_perstack_wake_ev.handler = ngx_http_perstack_wake_local;
    ngx_http_perstack_wake_ev.data = &ngx_http_perstack_wake_ev;
    ngx_http_perstack_wake_ev.log = cycle->log;

    ngx_http_perstack_wake_open(cycle);
}


void
ngx_http_perstack_wake_exit(void)
{
    if (ngx_http_perstack_wake_ev.posted) {
        ngx_delete_posted_event(&ngx_http_perstack_wake_ev);
    }

    if (ngx_http_perstack_wake_conn) {
        ngx_close_connection(ngx_http_perstack_wake_conn);
        ngx_http_perstack_wake_conn = NULL;
    }
}


static void
ngx_http_perstack_wake_woken(void)
{
    if (ngx_http_perstack_wake_handler) {
        ngx_http_perstack_wake_handler();
    }
}


#if (NGX_LINUX)

/* "\0ngx_http_perstack_limit/PID/START": no file, gone with the socket */

static socklen_t
ngx_http_perstack_wake_addr(struct sockaddr_un *sun, ngx_pid_t pid,
    uint64_t start)
{
    u_char  *p;

    ngx_memzero(sun, sizeof(struct sockaddr_un));

    sun->sun_family = AF_UNIX;

    p = ngx_snprintf((u_char *) sun->sun_path + 1,
                     sizeof(sun->sun_path) - 1,
                     "ngx_http_perstack_limit/%P/%uL", pid, start);

    return offsetof(struct sockaddr_un, sun_path)
           + (p - (u_char *) sun->sun_path);
}

#endif


/*
 * This worker's wake-up socket, made after the fork: a reload or a new
 * worker needs nothing inherited.  Without one, this worker's waiters
 * still get the slots freed in this worker at once, and those freed in
 * others when their queue_timeout passes.
 */

static void
ngx_http_perstack_wake_open(ngx_cycle_t *cycle)
{
#if (NGX_LINUX)
    int                  fd;
    socklen_t            len;
    ngx_event_t         *rev;
    ngx_connection_t    *c;
    struct sockaddr_un   sun;

    fd = socket(AF_UNIX, SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "perstack: socket(AF_UNIX) for the limit queue failed");
        return;
    }

    len = ngx_http_perstack_wake_addr(&sun, ngx_pid,
                                           ngx_http_perstack_process_self());

    if (bind(fd, (struct sockaddr *) &sun, len) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "perstack: bind() of the limit queue's socket "
                      "\"@%*s\" failed",
                      (size_t) (len - offsetof(struct sockaddr_un, sun_path)
                                - 1),
                      sun.sun_path + 1);
        close(fd);
        return;
    }

    c = ngx_get_connection(fd, cycle->log);
    if (c == NULL) {
        close(fd);
        return;
    }

    c->log = cycle->log;

    rev = c->read;
    rev->handler = ngx_http_perstack_wake_read;
    rev->log = cycle->log;
    c->write->log = cycle->log;

    if (ngx_add_event(rev, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        ngx_close_connection(c);
        return;
    }

    ngx_http_perstack_wake_conn = c;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                   "perstack limit: wake-up socket %d", fd);
#endif
}


void
ngx_http_perstack_wake_add(ngx_http_perstack_wake_t *wake,
    ngx_pid_t pid, uint64_t start)
{
    ngx_uint_t  i;

    for (i = 0; i < wake->n; i++) {
        if (wake->pid[i] == pid && wake->start[i] == start) {
            return;
        }
    }

    if (wake->n == NGX_HTTP_PERSTACK_WAKE_MAX) {
        /* more workers than the list holds: this one at once */
        ngx_http_perstack_wake(pid, start);
        return;
    }

    wake->pid[wake->n] = pid;
    wake->start[wake->n] = start;
    wake->n++;
}


void
ngx_http_perstack_wake_send(ngx_http_perstack_wake_t *wake)
{
    ngx_uint_t  i;

    for (i = 0; i < wake->n; i++) {
        ngx_http_perstack_wake(wake->pid[i], wake->start[i]);
    }

    wake->n = 0;
}


static void
ngx_http_perstack_wake(ngx_pid_t pid, uint64_t start)
{
#if (NGX_LINUX)
    int                  fd;
    ssize_t              n;
    ngx_err_t            err;
    socklen_t            len;
    struct sockaddr_un   sun;
#endif

    if (pid == ngx_pid && start == ngx_http_perstack_process_self()) {
        /* this worker: after whatever gave the slot back */
        ngx_post_event(&ngx_http_perstack_wake_ev, &ngx_posted_events);
        return;
    }

#if (NGX_LINUX)

    len = ngx_http_perstack_wake_addr(&sun, pid, start);

    if (ngx_http_perstack_wake_conn) {
        fd = ngx_http_perstack_wake_conn->fd;

    } else {
        fd = socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC, 0);
        if (fd == -1) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                          "perstack: socket(AF_UNIX) failed");
            return;
        }
    }

    n = sendto(fd, "w", 1, MSG_DONTWAIT|MSG_NOSIGNAL,
               (struct sockaddr *) &sun, len);
    err = ngx_errno;

    if (ngx_http_perstack_wake_conn == NULL) {
        close(fd);
    }

    if (n == 1) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "perstack limit: woke worker %P", pid);
        return;
    }

    if (err == NGX_EAGAIN) {
        /* its buffer is full of wake-ups: it will look all the same */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "perstack limit: worker %P has wake-ups pending", pid);
        return;
    }

    if (err == NGX_ECONNREFUSED || err == NGX_ENOENT) {
        /*
         * No such socket: the worker died (its slots come back to whoever
         * next finds it gone), or has no socket (its waiter takes the slot
         * when its queue_timeout passes).
         */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "perstack limit: worker %P has no wake-up socket",
                       pid);
        return;
    }

    ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, err,
                  "perstack: sendto() to the limit queue of worker %P failed",
                  pid);
#endif
}


/* A datagram: whatever it says, look for slots handed to our waiters. */

static void
ngx_http_perstack_wake_read(ngx_event_t *ev)
{
    u_char             buf[16];
    ssize_t            n;
    ngx_err_t          err;
    ngx_uint_t         i;
    ngx_connection_t  *c;

    c = ev->data;

    for (i = 0; i < NGX_HTTP_PERSTACK_WAKE_READ_MAX; i++) {
        n = recv(c->fd, buf, sizeof(buf), 0);

        if (n >= 0) {
            continue;
        }

        err = ngx_errno;

        if (err == NGX_EINTR) {
            continue;
        }

        if (err != NGX_EAGAIN) {
            ngx_log_error(NGX_LOG_ALERT, ev->log, err,
                          "perstack: recv() on the limit queue's socket "
                          "failed");
        }

        break;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "perstack limit: woken (%ui datagrams)", i);

    ngx_http_perstack_wake_woken();
}


static void
ngx_http_perstack_wake_local(ngx_event_t *ev)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "perstack limit: woken by this worker");

    ngx_http_perstack_wake_woken();
}
