
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_DOCKER_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_DOCKER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_perstack_curl.h"


/* the newest Engine API version the module speaks */
#define NGX_HTTP_PERSTACK_API_MINOR      47
/* the oldest it accepts: Debian 12's docker.io (Engine 20.10) */
#define NGX_HTTP_PERSTACK_API_MINOR_MIN  41

#define NGX_HTTP_PERSTACK_DEFAULT_DOCKER  "unix:/var/run/docker.sock"

/* a DELETE that removed the container: Docker's 204, Podman's own 200 */
#define ngx_http_perstack_docker_removed(op)                                  \
    ((op)->result == CURLE_OK && ((op)->status == 204 || (op)->status == 200))


/* An Engine API endpoint, shared by the locations that name it. */
typedef struct ngx_http_perstack_docker_s {
    ngx_str_t                        name;        /* as configured */
    /* ssl_certificate=, ssl_certificate_key=, ssl_trusted_certificate= */
    ngx_str_t                        files[3];
    ngx_str_t                        base_url;    /* no trailing '/' */
    ngx_http_perstack_curl_peer_t    peer;

    /*
     * The API version agreed with the engine, 0 until /_ping answered.
     * Each worker keeps its own copy after fork.
     */
    ngx_uint_t                       api_minor;

    /*
     * The engine is Podman: its /_ping names a Libpod API version.  Set
     * with api_minor; the container's configuration differs a little
     * (ngx_http_perstack_policy.c).
     */
    unsigned                         podman:1;
} ngx_http_perstack_docker_t;


ngx_http_perstack_docker_t *ngx_http_perstack_docker_add(ngx_conf_t *cf,
    ngx_array_t *dockers, ngx_str_t *value, ngx_uint_t n);

ngx_http_perstack_op_t *ngx_http_perstack_docker_op(ngx_pool_t *pool,
    ngx_log_t *log, ngx_uint_t *inflight, const char *name,
    ngx_http_perstack_op_handler_pt handler, void *data);
ngx_int_t ngx_http_perstack_docker_ping(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, ngx_msec_t timeout);
ngx_int_t ngx_http_perstack_docker_create(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, ngx_str_t *name, ngx_msec_t timeout);
ngx_int_t ngx_http_perstack_docker_list(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, ngx_msec_t timeout);
ngx_int_t ngx_http_perstack_docker_container(
    ngx_http_perstack_docker_t *docker, ngx_http_perstack_op_t *op,
    const char *method, ngx_str_t *container, const char *action,
    ngx_msec_t timeout);
ngx_int_t ngx_http_perstack_docker_pinged(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, ngx_log_t *log);
const char *ngx_http_perstack_docker_failed(
    ngx_http_perstack_docker_t *docker, ngx_http_perstack_op_t *op,
    const char *what, ngx_str_t *message);
ngx_uint_t ngx_http_perstack_docker_reached(ngx_http_perstack_op_t *op);
void ngx_http_perstack_docker_message(ngx_http_perstack_op_t *op,
    ngx_str_t *message);

ngx_int_t ngx_http_perstack_docker_network_now(
    ngx_http_perstack_docker_t *docker, ngx_http_perstack_op_t *op,
    ngx_str_t *name, ngx_msec_t timeout);
void ngx_http_perstack_docker_remove_now(ngx_http_perstack_docker_t *docker,
    ngx_str_t *container, ngx_log_t *log);


#endif /* _NGX_HTTP_PERSTACK_DOCKER_H_INCLUDED_ */
