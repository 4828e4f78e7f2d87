
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The HTTP transport: libcurl's multi socket interface driven by nginx's
 * event loop.  One multi handle per worker; its sockets become nginx
 * connections registered level-triggered, so that a read libcurl leaves
 * unfinished is reported again instead of being lost with an edge.  It
 * knows nothing of what it carries: a transfer (ngx_http_perstack_op_t)
 * has an owner's pool, log and callbacks.
 */


#include "ngx_http_perstack_curl.h"
#include "ngx_http_perstack_metrics.h"


typedef struct {
    /* as in ngx_connection_t, for debug logs of the timer's ident */
    void                            *data;
    void                            *unused[2];
    ngx_int_t                        ident;

    CURLM                           *multi;
    /* the live streams' connections, apart: see curl_easy() */
    CURLSH                          *streams;
    ngx_event_t                      timer;
} ngx_http_perstack_curl_multi_t;


static int ngx_http_perstack_curl_socket(CURL *easy, curl_socket_t s,
    int what, void *userp, void *socketp);
static int ngx_http_perstack_curl_multi_timer(CURLM *multi, long timeout_ms,
    void *userp);
static void ngx_http_perstack_curl_multi_timer_handler(ngx_event_t *ev);
static void ngx_http_perstack_curl_event_handler(ngx_event_t *ev);
static void ngx_http_perstack_curl_close(ngx_connection_t *c);
static void ngx_http_perstack_curl_check_done(void);
static size_t ngx_http_perstack_curl_header(char *buffer, size_t size,
    size_t nitems, void *userdata);
static size_t ngx_http_perstack_curl_write(char *ptr, size_t size,
    size_t nmemb, void *userdata);
static size_t ngx_http_perstack_curl_read(char *buffer, size_t size,
    size_t nitems, void *userdata);
static ngx_int_t ngx_http_perstack_curl_grow(ngx_http_perstack_op_t *op,
    size_t len);
static void ngx_http_perstack_curl_release(ngx_http_perstack_op_t *op);
static void ngx_http_perstack_curl_count(ngx_http_perstack_op_t *op,
    ngx_uint_t result, CURLINFO info);
static ngx_int_t ngx_http_perstack_curl_easy(ngx_http_perstack_op_t *op,
    const char *method, u_char *url, ngx_http_perstack_curl_peer_t *peer,
    ngx_msec_t timeout);


static ngx_http_perstack_curl_multi_t  ngx_http_perstack_curl;

/* the response of a call until a body comes: most calls get none */
static u_char  ngx_http_perstack_curl_no_body[1];


ngx_int_t
ngx_http_perstack_curl_init_process(ngx_cycle_t *cycle)
{
    ngx_http_perstack_curl_multi_t  *pc;

    pc = &ngx_http_perstack_curl;

    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "perstack: curl_global_init() failed");
        return NGX_ERROR;
    }

    pc->multi = curl_multi_init();
    if (pc->multi == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "perstack: curl_multi_init() failed");
        return NGX_ERROR;
    }

    pc->ident = -1;

    pc->timer.handler = ngx_http_perstack_curl_multi_timer_handler;
    pc->timer.data = pc;
    pc->timer.log = cycle->log;

    /* the curl timer alone must not hold up a graceful shutdown */
    pc->timer.cancelable = 1;

    curl_multi_setopt(pc->multi, CURLMOPT_SOCKETFUNCTION,
                      ngx_http_perstack_curl_socket);
    curl_multi_setopt(pc->multi, CURLMOPT_SOCKETDATA, pc);
    curl_multi_setopt(pc->multi, CURLMOPT_TIMERFUNCTION,
                      ngx_http_perstack_curl_multi_timer);
    curl_multi_setopt(pc->multi, CURLMOPT_TIMERDATA, pc);

    /*
     * Idle connections kept for the next calls: libcurl's default is 4
     * per transfer added, so that each live stream left some 1.3 idle
     * connections of about 8 kB and a descriptor each.
     */
    curl_multi_setopt(pc->multi, CURLMOPT_MAXCONNECTS,
                      NGX_HTTP_PERSTACK_CURL_MAXCONNECTS);

    pc->streams = curl_share_init();
    if (pc->streams == NULL
        || curl_share_setopt(pc->streams, CURLSHOPT_SHARE,
                             CURL_LOCK_DATA_CONNECT)
           != CURLSHE_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "perstack: curl_share_init() failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_perstack_curl_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_perstack_curl_multi_t  *pc;

    pc = &ngx_http_perstack_curl;

    if (pc->multi == NULL) {
        return;
    }

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    /* libcurl may call the socket callback for cached connections here */
    curl_multi_cleanup(pc->multi);
    pc->multi = NULL;

    if (pc->streams) {
        (void) curl_share_cleanup(pc->streams);
        pc->streams = NULL;
    }

    curl_global_cleanup();
}


static int
ngx_http_perstack_curl_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp)
{
    ngx_http_perstack_curl_multi_t  *pc = userp;

    ngx_event_t       *rev, *wev;
    ngx_connection_t  *c;

    c = socketp;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "perstack curl socket %d what:%d conn:%p", s, what, c);

    if (what == CURL_POLL_REMOVE) {
        if (c) {
            ngx_http_perstack_curl_close(c);
            curl_multi_assign(pc->multi, s, NULL);
        }

        return 0;
    }

    if (c == NULL) {
        c = ngx_get_connection(s, ngx_cycle->log);
        if (c == NULL) {
            return -1;
        }

        c->data = pc;
        c->log = ngx_cycle->log;

        c->read->handler = ngx_http_perstack_curl_event_handler;
        c->read->log = c->log;
        c->write->handler = ngx_http_perstack_curl_event_handler;
        c->write->log = c->log;

        curl_multi_assign(pc->multi, s, c);
    }

    rev = c->read;
    wev = c->write;

    if ((what & CURL_POLL_IN) && !rev->active) {
        if (ngx_add_event(rev, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            return -1;
        }

    } else if (!(what & CURL_POLL_IN) && rev->active) {
        if (ngx_del_event(rev, NGX_READ_EVENT, 0) != NGX_OK) {
            return -1;
        }
    }

    if ((what & CURL_POLL_OUT) && !wev->active) {
        if (ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            return -1;
        }

    } else if (!(what & CURL_POLL_OUT) && wev->active) {
        if (ngx_del_event(wev, NGX_WRITE_EVENT, 0) != NGX_OK) {
            return -1;
        }
    }

    return 0;
}


static void
ngx_http_perstack_curl_close(ngx_connection_t *c)
{
    /*
     * The socket is libcurl's: it closes it, or keeps it for reuse.  Only
     * the events and the connection structure are ours to release, and
     * the events must leave epoll now, since the descriptor may live on.
     */

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}


static int
ngx_http_perstack_curl_multi_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ngx_http_perstack_curl_multi_t  *pc = userp;

    if (timeout_ms < 0) {
        if (pc->timer.timer_set) {
            ngx_del_timer(&pc->timer);
        }

        return 0;
    }

    /*
     * Not ngx_add_timer()'s lazy update, which keeps a timer set less
     * than 300 ms from the new one: libcurl asks for 0 ("now") while its
     * 200 ms timer of a new connection is set, and was called 200 ms late.
     */

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    ngx_add_timer(&pc->timer, (ngx_msec_t) timeout_ms);

    return 0;
}


static void
ngx_http_perstack_curl_multi_timer_handler(ngx_event_t *ev)
{
    int                        running;
    ngx_http_perstack_curl_multi_t  *pc = ev->data;

    curl_multi_socket_action(pc->multi, CURL_SOCKET_TIMEOUT, 0, &running);

    ngx_http_perstack_curl_check_done();
}


static void
ngx_http_perstack_curl_event_handler(ngx_event_t *ev)
{
    int                        running, action;
    ngx_socket_t               fd;
    ngx_connection_t          *c;
    ngx_http_perstack_curl_multi_t  *pc;

    c = ev->data;
    pc = c->data;
    fd = c->fd;

    action = ev->write ? CURL_CSELECT_OUT : CURL_CSELECT_IN;

    /* c may be released by the socket callback inside this call */
    curl_multi_socket_action(pc->multi, fd, action, &running);

    ngx_http_perstack_curl_check_done();
}


static void
ngx_http_perstack_curl_check_done(void)
{
    int                      pending;
    CURL                    *easy;
    CURLMsg                 *msg;
    CURLcode                 result;
    ngx_http_perstack_op_t  *op;

    /*
     * Handlers run here, outside any libcurl callback, so they may start
     * and cancel transfers.
     */

    for ( ;; ) {
        msg = curl_multi_info_read(ngx_http_perstack_curl.multi, &pending);
        if (msg == NULL) {
            break;
        }

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        easy = msg->easy_handle;
        result = msg->data.result;

        op = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &op);

        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &op->status);
        curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &op->os_errno);
        curl_easy_getinfo(easy, CURLINFO_SSL_VERIFYRESULT,
                          &op->verify_result);
        op->result = result;

        ngx_http_perstack_curl_count(op,
                                     result == CURLE_OK
                                     ? NGX_HTTP_PERSTACK_CALL_OK
                                     : result == CURLE_OPERATION_TIMEDOUT
                                       ? NGX_HTTP_PERSTACK_CALL_TIMEOUT
                                       : NGX_HTTP_PERSTACK_CALL_ERROR,
                                     CURLINFO_TOTAL_TIME_T);

        curl_multi_remove_handle(ngx_http_perstack_curl.multi, easy);
        ngx_http_perstack_curl_release(op);

        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, op->log, 0,
                       "perstack curl %s done: curl %d status %l \"%s\"",
                       op->name, result, op->status, op->error);

        if (op->inflight) {
            (*op->inflight)--;
        }

        op->handler(op);
    }
}


ngx_http_perstack_op_t *
ngx_http_perstack_curl_op(ngx_pool_t *pool, ngx_log_t *log,
    ngx_uint_t *inflight, const char *name,
    ngx_http_perstack_op_handler_pt handler, void *data)
{
    ngx_http_perstack_op_t  *op;

    op = ngx_pcalloc(pool, sizeof(ngx_http_perstack_op_t));
    if (op == NULL) {
        return NULL;
    }

    op->pool = pool;
    op->log = log;
    op->inflight = inflight;
    op->name = name;
    op->handler = handler;
    op->data = data;

    return op;
}


/* the easy handle of a transfer, for the multi handle or performed */

static ngx_int_t
ngx_http_perstack_curl_easy(ngx_http_perstack_op_t *op, const char *method,
    u_char *url, ngx_http_perstack_curl_peer_t *peer, ngx_msec_t timeout)
{
    CURL               *easy;
    struct curl_slist  *list;

    if (!op->stream) {
        if (op->response_max == 0) {
            op->response_max = NGX_HTTP_PERSTACK_CURL_RESPONSE_MAX;
        }

        /*
         * An answer without a body never reaches the write callback, and
         * most have none (start, stop, remove): the buffer is allocated
         * there, as large as the body needs.
         */
        op->response = ngx_http_perstack_curl_no_body;
        op->response_len = 0;
        op->response_size = 1;
    }

    easy = curl_easy_init();
    if (easy == NULL) {
        return NGX_ERROR;
    }

    op->easy = easy;
    op->status = 0;
    op->error[0] = '\0';

    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, op);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, op->error);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
#if (LIBCURL_VERSION_NUM >= 0x075500)
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS,
                     (long) (CURLPROTO_HTTP|CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION,
                     ngx_http_perstack_curl_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, op);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION,
                     ngx_http_perstack_curl_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, op);

    if (timeout) {
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) timeout);
    }

    /*
     * libcurl's receive buffer, allocated for each transfer: 16 KiB by
     * default, which a live stream held all its life.
     */
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE,
                     (long) (op->stream ? NGX_HTTP_PERSTACK_CURL_STREAM_BUFFER
                                        : NGX_HTTP_PERSTACK_CURL_BUFFER));

    if (op->stream) {
        /*
         * A live stream's connection is the stream's alone, in a cache of
         * its own: libcurl looks for a connection to reuse, and prunes its
         * cache, by walking every connection to the host in it, and with
         * thousands of streams each Engine API call would walk them all.
         */
        curl_easy_setopt(easy, CURLOPT_SHARE, ngx_http_perstack_curl.streams);
        curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
    }

    if (peer->socket_path) {
        curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH, peer->socket_path);
    }

    if (peer->tls) {
        /* the configured certificates alone are trusted, not the system's */
        curl_easy_setopt(easy, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(easy, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &peer->trusted);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(easy, CURLOPT_SSLVERSION,
                         (long) CURL_SSLVERSION_TLSv1_2);

        if (peer->certificate.len) {
            curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &peer->certificate);
            curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
            curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB,
                             &peer->certificate_key);
            curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
        }
    }

    if (ngx_strcmp(method, "GET") != 0) {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    }

    if (op->body.len) {
        op->headers = curl_slist_append(NULL,
                                         "Content-Type: application/json");
        if (op->headers == NULL) {
            goto failed;
        }

        /* no "Expect: 100-continue" round trip for a large body */
        list = curl_slist_append(op->headers, "Expect:");
        if (list == NULL) {
            goto failed;
        }

        op->headers = list;

        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, op->headers);
        curl_easy_setopt(easy, CURLOPT_UPLOAD, 0L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, op->body.data);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long) op->body.len);

    } else if (ngx_strcmp(method, "POST") == 0) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, 0L);
    }

    /* the body of a POST is sent by POSTFIELDS; never read from stdin */
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, ngx_http_perstack_curl_read);

    return NGX_OK;

failed:

    ngx_http_perstack_curl_release(op);

    return NGX_ERROR;
}


ngx_int_t
ngx_http_perstack_curl_start(ngx_http_perstack_op_t *op, const char *method,
    u_char *url, ngx_http_perstack_curl_peer_t *peer, ngx_msec_t timeout)
{
    if (ngx_http_perstack_curl_easy(op, method, url, peer, timeout)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (curl_multi_add_handle(ngx_http_perstack_curl.multi, op->easy)
        != CURLM_OK)
    {
        ngx_http_perstack_curl_release(op);
        return NGX_ERROR;
    }

    if (op->inflight) {
        (*op->inflight)++;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, op->log, 0,
                   "perstack curl %s: %s %s", op->name, method, url);

    return NGX_OK;
}


void
ngx_http_perstack_curl_cancel(ngx_http_perstack_op_t *op)
{
    if (op->easy == NULL) {
        return;
    }

    ngx_http_perstack_curl_count(op, NGX_HTTP_PERSTACK_CALL_CANCELLED,
                                 CURLINFO_TOTAL_TIME_T);

    curl_multi_remove_handle(ngx_http_perstack_curl.multi, op->easy);
    ngx_http_perstack_curl_release(op);

    if (op->inflight) {
        (*op->inflight)--;
    }
}


/*
 * A call of the event loop's, counted once: at its end, or a stream once
 * its headers came (its time is the time until then).
 */

static void
ngx_http_perstack_curl_count(ngx_http_perstack_op_t *op, ngx_uint_t result,
    CURLINFO info)
{
    curl_off_t  usec;

    if (op->counted) {
        return;
    }

    op->counted = 1;

    usec = 0;

    if (result != NGX_HTTP_PERSTACK_CALL_CANCELLED
        && (curl_easy_getinfo(op->easy, info, &usec) != CURLE_OK || usec < 0))
    {
        usec = 0;
    }

    ngx_http_perstack_metrics_engine(op->name, result, op->status,
                                     (uint64_t) usec);
}


/*
 * The transfer at once, blocking: only where nothing else is served, at
 * configuration time in the master or in a worker that exits.  NGX_OK
 * when the server answered (op->status), NGX_ERROR when not (op->result,
 * op->error).
 */

ngx_int_t
ngx_http_perstack_curl_perform(ngx_http_perstack_op_t *op,
    const char *method, u_char *url, ngx_http_perstack_curl_peer_t *peer,
    ngx_msec_t timeout)
{
    if (ngx_http_perstack_curl_easy(op, method, url, peer, timeout)
        != NGX_OK)
    {
        op->result = CURLE_OUT_OF_MEMORY;
        return NGX_ERROR;
    }

    op->result = curl_easy_perform(op->easy);

    curl_easy_getinfo(op->easy, CURLINFO_RESPONSE_CODE, &op->status);
    curl_easy_getinfo(op->easy, CURLINFO_OS_ERRNO, &op->os_errno);
    curl_easy_getinfo(op->easy, CURLINFO_SSL_VERIFYRESULT,
                      &op->verify_result);

    ngx_http_perstack_curl_release(op);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, op->log, 0,
                   "perstack curl %s performed: curl %d status %l \"%s\"",
                   op->name, op->result, op->status, op->error);

    return op->result == CURLE_OK ? NGX_OK : NGX_ERROR;
}


static void
ngx_http_perstack_curl_release(ngx_http_perstack_op_t *op)
{
    curl_easy_cleanup(op->easy);
    op->easy = NULL;

    if (op->headers) {
        curl_slist_free_all(op->headers);
        op->headers = NULL;
    }
}


static size_t
ngx_http_perstack_curl_header(char *buffer, size_t size, size_t nitems,
    void *userdata)
{
    ngx_http_perstack_op_t  *op = userdata;

    size_t  len;

    len = size * nitems;

    if (len == 2 && buffer[0] == '\r' && buffer[1] == '\n') {
        op->headers_done = 1;

        curl_easy_getinfo(op->easy, CURLINFO_RESPONSE_CODE, &op->status);

        if (op->stream) {
            ngx_http_perstack_curl_count(op, NGX_HTTP_PERSTACK_CALL_OK,
                                         CURLINFO_STARTTRANSFER_TIME_T);
        }

        if (op->attached && op->status == 200) {
            op->attached(op->data);
        }

        return len;
    }

    if (op->header) {
        op->header(op, (u_char *) buffer, len);
    }

    return len;
}


static size_t
ngx_http_perstack_curl_write(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    ngx_http_perstack_op_t  *op = userdata;

    size_t  len, n;

    len = size * nmemb;

    if (op->stream && op->status == 200) {
        switch (op->write(op->data, (u_char *) ptr, len)) {

        case NGX_AGAIN:
            return CURL_WRITEFUNC_PAUSE;

        case NGX_ERROR:
            /* the transfer fails with CURLE_WRITE_ERROR */
            return 0;

        default:
            return len;
        }
    }

    if (op->response == NULL) {
        return len;
    }

    if (op->response_len + len >= op->response_size
        && op->response_size < op->response_max
        && ngx_http_perstack_curl_grow(op, len) != NGX_OK)
    {
        /* the transfer fails with CURLE_WRITE_ERROR */
        return 0;
    }

    /* an error body is kept for the log; the rest of a long one is not */
    n = ngx_min(len, op->response_size - 1 - op->response_len);
    ngx_memcpy(op->response + op->response_len, ptr, n);
    op->response_len += n;
    op->response[op->response_len] = '\0';

    return len;
}


/*
 * The response buffer, made room for len more bytes, up to response_max:
 * an answer of 100 bytes (create, wait) no longer holds 4 KiB for the
 * execution's life.
 */

static ngx_int_t
ngx_http_perstack_curl_grow(ngx_http_perstack_op_t *op, size_t len)
{
    size_t   size;
    u_char  *p;

    size = ngx_max(op->response_len + len + 1, 2 * op->response_size);
    size = ngx_max(size, NGX_HTTP_PERSTACK_CURL_RESPONSE_MIN);
    size = ngx_min(size, op->response_max);

    p = ngx_pnalloc(op->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, op->response, op->response_len + 1);

    if (op->response != ngx_http_perstack_curl_no_body) {
        ngx_pfree(op->pool, op->response);
    }

    op->response = p;
    op->response_size = size;

    return NGX_OK;
}


static size_t
ngx_http_perstack_curl_read(char *buffer, size_t size, size_t nitems,
    void *userdata)
{
    return 0;
}
