
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_CURL_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_CURL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <curl/curl.h>


/* a response body is kept up to this size unless the owner says more */
#define NGX_HTTP_PERSTACK_CURL_RESPONSE_MAX  4096
/* and allocated at first this large: most bodies are short JSON */
#define NGX_HTTP_PERSTACK_CURL_RESPONSE_MIN  256
/*
 * libcurl's receive buffer: of a stream (held for the execution's life:
 * 2 KiB, not 4, is 2 KiB less a live stream), of another call
 */
#ifndef NGX_HTTP_PERSTACK_CURL_STREAM_BUFFER
#define NGX_HTTP_PERSTACK_CURL_STREAM_BUFFER 2048
#endif
#define NGX_HTTP_PERSTACK_CURL_BUFFER        4096
/* idle connections to the engine a worker keeps */
#define NGX_HTTP_PERSTACK_CURL_MAXCONNECTS   32


typedef struct ngx_http_perstack_op_s  ngx_http_perstack_op_t;


/*
 * Where transfers go besides their URLs: a unix socket, or for https the
 * PEM of a client certificate, its key and the certificates trusted, read
 * at configuration time (a worker reads no file to connect).  The peer
 * and the host name are always verified.
 */
typedef struct {
    u_char                          *socket_path;   /* NUL-terminated */
    struct curl_blob                 certificate;
    struct curl_blob                 certificate_key;
    struct curl_blob                 trusted;
    unsigned                         tls:1;
} ngx_http_perstack_curl_peer_t;

typedef void (*ngx_http_perstack_op_handler_pt)(ngx_http_perstack_op_t *op);


/*
 * One HTTP transfer: a libcurl easy handle, what it answered, and its
 * owner's callbacks.  The transport knows nothing of its owner: it
 * allocates from the owner's pool, logs to the owner's log, counts the
 * transfer in the owner's count of calls in flight, and calls handler()
 * when the transfer has ended, outside any libcurl callback.  The same
 * transfer can also be performed at once, blocking: only where nothing
 * else is served (configuration time, a worker's exit).
 */
struct ngx_http_perstack_op_s {
    CURL                            *easy;

    ngx_pool_t                      *pool;
    ngx_log_t                       *log;
    ngx_uint_t                      *inflight;
    const char                      *name;

    ngx_http_perstack_op_handler_pt  handler;
    void                            *data;

    struct curl_slist               *headers;
    ngx_str_t                        body;

    long                             status;
    CURLcode                         result;
    long                             os_errno;
    /* OpenSSL's verification result of the peer's certificate */
    long                             verify_result;

    /* the response body, cut at response_max */
    u_char                          *response;
    size_t                           response_len;
    size_t                           response_size;
    size_t                           response_max;

    char                             error[CURL_ERROR_SIZE];

    /*
     * header() sees each response header line; once the headers are in,
     * attached() is called when the status is 200.  A stream's body
     * goes to write(), which returns NGX_AGAIN to pause the transfer,
     * instead of the response buffer.
     */
    void                           (*header)(ngx_http_perstack_op_t *op,
                                             u_char *line, size_t len);
    void                           (*attached)(void *data);
    ngx_int_t                      (*write)(void *data, u_char *p,
                                            size_t len);

    /*
     * The owner's own: a handler that handler() passes the result on to,
     * and a number (the Engine API version a /_ping answered).
     */
    ngx_http_perstack_op_handler_pt  done;
    ngx_uint_t                       value;

    unsigned                         stream:1;
    unsigned                         headers_done:1;
    /* in perstack_metrics already: a stream once it had its headers */
    unsigned                         counted:1;
};


ngx_int_t ngx_http_perstack_curl_init_process(ngx_cycle_t *cycle);
void ngx_http_perstack_curl_exit_process(ngx_cycle_t *cycle);

ngx_http_perstack_op_t *ngx_http_perstack_curl_op(ngx_pool_t *pool,
    ngx_log_t *log, ngx_uint_t *inflight, const char *name,
    ngx_http_perstack_op_handler_pt handler, void *data);
ngx_int_t ngx_http_perstack_curl_start(ngx_http_perstack_op_t *op,
    const char *method, u_char *url, ngx_http_perstack_curl_peer_t *peer,
    ngx_msec_t timeout);
void ngx_http_perstack_curl_cancel(ngx_http_perstack_op_t *op);

ngx_int_t ngx_http_perstack_curl_perform(ngx_http_perstack_op_t *op,
    const char *method, u_char *url, ngx_http_perstack_curl_peer_t *peer,
    ngx_msec_t timeout);


#endif /* _NGX_HTTP_PERSTACK_CURL_H_INCLUDED_ */
