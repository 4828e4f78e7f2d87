
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_perstack_process.h"


#if (NGX_LINUX)
static ngx_int_t ngx_http_perstack_process_start(ngx_pid_t pid,
    uint64_t *start);
#endif


static uint64_t   ngx_http_perstack_process_self_start;
static ngx_pid_t  ngx_http_perstack_process_master_pid;


void
ngx_http_perstack_process_init(void)
{
    ngx_http_perstack_process_master_pid = (ngx_process == NGX_PROCESS_WORKER)
                                           ? getppid() : ngx_pid;

    ngx_http_perstack_process_self_start = 0;

#if (NGX_LINUX)
    if (ngx_http_perstack_process_start(ngx_pid,
                                        &ngx_http_perstack_process_self_start)
        != NGX_OK)
    {
        ngx_http_perstack_process_self_start = 0;
    }
#endif
}


ngx_pid_t
ngx_http_perstack_process_master(void)
{
    return ngx_http_perstack_process_master_pid;
}


uint64_t
ngx_http_perstack_process_self(void)
{
    return ngx_http_perstack_process_self_start;
}


/*
 * Whether the process that was pid, started at start (0: not known), is
 * gone: its pid is free, a zombie (dead, only not yet waited for), or
 * another process's now, which started at another time.  This worker's
 * own pid with another start time was a worker that died before it.
 * procfs is not a disk: the read does not wait.  Where procfs cannot
 * tell, only a free pid is gone.
 */

ngx_uint_t
ngx_http_perstack_process_gone(ngx_pid_t pid, uint64_t start)
{
#if (NGX_LINUX)
    uint64_t  t;
#endif

    if (pid <= 0) {
        return 0;
    }

    if (pid == ngx_pid) {
        return start != ngx_http_perstack_process_self_start;
    }

#if (NGX_LINUX)

    switch (ngx_http_perstack_process_start(pid, &t)) {

    case NGX_OK:
        return start != 0 && t != start;

    case NGX_DECLINED:
        return 1;

    default: /* NGX_ERROR */
        break;
    }

#endif

    /* EPERM: it exists, as someone else's */
    return kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH;
}


#if (NGX_LINUX)

/*
 * A process's start time, in clock ticks since boot: field 22 of
 * /proc/PID/stat.  NGX_OK with *start; NGX_DECLINED when the process is
 * gone, or a zombie (dead, only not yet waited for); NGX_ERROR when procfs
 * cannot tell.
 */

static ngx_int_t
ngx_http_perstack_process_start(ngx_pid_t pid, uint64_t *start)
{
    int         fd;
    u_char      path[64], stat[512], *p, *last;
    ssize_t     n;
    uint64_t    t;
    ngx_err_t   err;
    ngx_uint_t  field;

    ngx_sprintf(path, "/proc/%P/stat%Z", pid);

    fd = open((char *) path, O_RDONLY|O_CLOEXEC);
    if (fd == -1) {
        err = ngx_errno;
        return (err == NGX_ENOENT || err == NGX_ESRCH) ? NGX_DECLINED
                                                       : NGX_ERROR;
    }

    n = read(fd, stat, sizeof(stat));
    err = ngx_errno;
    close(fd);

    if (n <= 0) {
        /* it exited between the open and the read */
        return (n == -1 && err == NGX_ESRCH) ? NGX_DECLINED : NGX_ERROR;
    }

    /* "pid (comm) S ...": the fields follow the last ')' of the name */

    last = stat + n;

    for (p = last; p > stat && p[-1] != ')'; p--) { /* void */ }

    if (p == stat || last - p < 3 || p[0] != ' ') {
        return NGX_ERROR;
    }

    p++;

    if (*p == 'Z' || *p == 'X' || *p == 'x') {
        return NGX_DECLINED;
    }

    /* from the state, field 3, to the start time, field 22 */

    for (field = 3; field < 22; p++) {
        if (p == last) {
            return NGX_ERROR;
        }

        if (*p == ' ') {
            field++;
        }
    }

    t = 0;

    for (n = 0; p < last && *p >= '0' && *p <= '9'; p++, n++) {
        t = t * 10 + (*p - '0');
    }

    if (n == 0 || p == last || *p != ' ') {
        return NGX_ERROR;
    }

    *start = t;

    return NGX_OK;
}

#endif
