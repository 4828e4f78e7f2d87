
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The Docker Engine API client: its endpoints, the versioned paths, the
 * negotiation of the version, the engine's error messages, and the one
 * blocking call, used only where nothing else is served.  Transfers go
 * through the transport (ngx_http_perstack_curl.c); their owners get
 * their answers through their own handlers.
 */


#include "ngx_http_perstack_docker.h"
#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_response.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>


/* an engine's message is cut to this for the log */
#define NGX_HTTP_PERSTACK_DOCKER_MESSAGE_MAX  512
/* a PEM file of an engine's TLS material, at most */
#define NGX_HTTP_PERSTACK_DOCKER_PEM_MAX      (1024 * 1024)
/* in op->value beside the API version: /_ping named a Libpod version */
#define NGX_HTTP_PERSTACK_DOCKER_LIBPOD       0x10000
#define NGX_HTTP_PERSTACK_DOCKER_MINOR_MASK   0xffff


static ngx_int_t ngx_http_perstack_docker_tls(ngx_conf_t *cf,
    ngx_http_perstack_docker_t *docker);
static ngx_int_t ngx_http_perstack_docker_pem(ngx_conf_t *cf,
    ngx_str_t *file, struct curl_blob *blob);
static u_char *ngx_http_perstack_docker_unreachable(
    ngx_http_perstack_docker_t *docker, ngx_http_perstack_op_t *op,
    u_char *buf, u_char *last);
static ngx_int_t ngx_http_perstack_docker_run(
    ngx_http_perstack_docker_t *docker, ngx_http_perstack_op_t *op,
    const char *method, ngx_str_t *path, ngx_msec_t timeout);
static ngx_int_t ngx_http_perstack_docker_ping_now(
    ngx_http_perstack_docker_t *docker, ngx_http_perstack_op_t *op,
    ngx_msec_t timeout);
static ngx_int_t ngx_http_perstack_docker_call_now(
    ngx_http_perstack_docker_t *docker, ngx_http_perstack_op_t *op,
    const char *method, ngx_str_t *path, ngx_msec_t timeout);
static void ngx_http_perstack_docker_header(ngx_http_perstack_op_t *op,
    u_char *line, size_t len);
static ngx_int_t ngx_http_perstack_docker_agree(
    ngx_http_perstack_docker_t *docker, ngx_http_perstack_op_t *op);
static ngx_int_t ngx_http_perstack_docker_path(
    ngx_http_perstack_docker_t *docker, ngx_pool_t *pool, const char *method,
    ngx_str_t *container, const char *action, ngx_str_t *path);


/*
 * Whether a call that failed may have reached the engine: not when the
 * connection, or its TLS handshake, never came to be.
 */

ngx_uint_t
ngx_http_perstack_docker_reached(ngx_http_perstack_op_t *op)
{
    switch (op->result) {

    case CURLE_OK:
        return 1;

    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
        return 0;

    default:
        return 1;
    }
}


/*
 * An engine: "unix:/path", "http://host[:port]", "tcp://host[:port]" or
 * "https://host[:port]" (2376 by default, as Docker's), in value[0]; for
 * https, the parameters ssl_trusted_certificate=file (required),
 * ssl_certificate=file and ssl_certificate_key=file (the client's, as a
 * daemon run with --tlsverify asks).  The same engine named twice, with
 * the same files, is one, with one negotiated version.
 */

ngx_http_perstack_docker_t *
ngx_http_perstack_docker_add(ngx_conf_t *cf, ngx_array_t *dockers,
    ngx_str_t *value, ngx_uint_t n)
{
    u_char                       *p;
    size_t                        skip;
    ngx_str_t                    *name, files[3];
    ngx_url_t                     u;
    ngx_uint_t                    i, k, https;
    ngx_http_perstack_docker_t   *docker, **dockerp;

    static ngx_str_t  params[] = {
        ngx_string("ssl_certificate="),
        ngx_string("ssl_certificate_key="),
        ngx_string("ssl_trusted_certificate=")
    };

    name = &value[0];
    ngx_memzero(files, sizeof(files));

    for (i = 1; i < n; i++) {
        for (k = 0; k < 3; k++) {
            if (value[i].len > params[k].len
                && ngx_strncmp(value[i].data, params[k].data, params[k].len)
                   == 0)
            {
                files[k].data = value[i].data + params[k].len;
                files[k].len = value[i].len - params[k].len;
                break;
            }
        }

        if (k == 3) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NULL;
        }
    }

    dockerp = dockers->elts;

    for (i = 0; i < dockers->nelts; i++) {
        if (dockerp[i]->name.len != name->len
            || ngx_strncmp(dockerp[i]->name.data, name->data, name->len) != 0)
        {
            continue;
        }

        for (k = 0; k < 3; k++) {
            if (dockerp[i]->files[k].len != files[k].len
                || ngx_strncmp(dockerp[i]->files[k].data, files[k].data,
                               files[k].len)
                   != 0)
            {
                break;
            }
        }

        if (k == 3) {
            return dockerp[i];
        }
    }

    docker = ngx_pcalloc(cf->pool, sizeof(ngx_http_perstack_docker_t));
    if (docker == NULL) {
        return NULL;
    }

    docker->name = *name;
    ngx_memcpy(docker->files, files, sizeof(files));

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.no_resolve = 1;

    https = 0;

    if (name->len > 5 && ngx_strncmp(name->data, "unix:", 5) == 0) {
        u.url = *name;

        if (name->data[5] != '/'
            || ngx_parse_url(cf->pool, &u) != NGX_OK
            || u.family != AF_UNIX)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid unix socket path in \"%V\"%s%s", name,
                               u.err ? ": " : "", u.err ? u.err : "");
            return NULL;
        }

        p = ngx_pnalloc(cf->pool, name->len - 5 + 1);
        if (p == NULL) {
            return NULL;
        }

        docker->peer.socket_path = p;

        p = ngx_cpymem(p, name->data + 5, name->len - 5);
        *p = '\0';

        /* the host is not looked up: the path decides where to connect */
        ngx_str_set(&docker->base_url, "http://docker");

        goto done;
    }

    if (name->len > 7 && ngx_strncmp(name->data, "http://", 7) == 0) {
        skip = 7;

    } else if (name->len > 6 && ngx_strncmp(name->data, "tcp://", 6) == 0) {
        skip = 6;

    } else if (name->len > 8 && ngx_strncmp(name->data, "https://", 8) == 0) {
        skip = 8;
        https = 1;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid Docker endpoint \"%V\": expected "
                           "\"unix:/path\", \"http://host:port\", "
                           "\"tcp://host:port\" or \"https://host:port\"",
                           name);
        return NULL;
    }

    u.url.data = name->data + skip;
    u.url.len = name->len - skip;
    u.uri_part = 1;
    u.default_port = https ? 2376 : 80;

    if (ngx_strlchr(u.url.data, u.url.data + u.url.len, '@') != NULL) {
        /* not echoed: what is before the "@" may be a password */
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid Docker endpoint: credentials in the URL "
                           "are not supported (an engine over https takes a "
                           "client certificate)");
        return NULL;
    }

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.host.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid Docker endpoint \"%V\": %s", name,
                           u.err ? u.err : "no host");
        return NULL;
    }

    for (i = 0; i < u.uri.len; i++) {
        if (u.uri.data[i] != '/') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid Docker endpoint \"%V\": a path is "
                               "not supported", name);
            return NULL;
        }
    }

    docker->base_url.data = ngx_pnalloc(cf->pool, name->len + 16);
    if (docker->base_url.data == NULL) {
        return NULL;
    }

    p = ngx_sprintf(docker->base_url.data, "%s://%V:%d",
                    https ? "https" : "http", &u.host, (int) u.port);

    docker->base_url.len = p - docker->base_url.data;
    *p = '\0';

    if (https && ngx_http_perstack_docker_tls(cf, docker) != NGX_OK) {
        return NULL;
    }

done:

    if (!https && (files[0].len || files[1].len || files[2].len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the ssl_* parameters of \"%V\" need an "
                           "\"https://\" engine", name);
        return NULL;
    }

    dockerp = ngx_array_push(dockers);
    if (dockerp == NULL) {
        return NULL;
    }

    *dockerp = docker;

    return docker;
}


/*
 * The engine's TLS material, read and checked now: the certificates
 * trusted, and the client's certificate with its key (both or neither; a
 * key with a passphrase is not supported).  A worker reads no file to
 * connect, and a wrong file stops the configuration, not a request.
 */

static ngx_int_t
ngx_http_perstack_docker_tls(ngx_conf_t *cf, ngx_http_perstack_docker_t *docker)
{
    BIO                            *bio;
    X509                           *cert;
    EVP_PKEY                       *key;
    ngx_int_t                       rc;
    ngx_http_perstack_curl_peer_t  *peer;

    peer = &docker->peer;
    peer->tls = 1;

    if (docker->files[2].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs ssl_trusted_certificate=: the "
                           "certificates that the engine's is checked "
                           "against", &docker->name);
        return NGX_ERROR;
    }

    if ((docker->files[0].len == 0) != (docker->files[1].len == 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs ssl_certificate= and "
                           "ssl_certificate_key= together", &docker->name);
        return NGX_ERROR;
    }

    if (ngx_http_perstack_docker_pem(cf, &docker->files[2], &peer->trusted)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* at least one certificate */

    bio = BIO_new_mem_buf(peer->trusted.data, (int) peer->trusted.len);
    cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);

    if (cert == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no PEM certificate in \"%V\"",
                           &docker->files[2]);
        ERR_clear_error();
        return NGX_ERROR;
    }

    X509_free(cert);

    if (docker->files[0].len == 0) {
        return NGX_OK;
    }

    if (ngx_http_perstack_docker_pem(cf, &docker->files[0],
                                     &peer->certificate)
        != NGX_OK
        || ngx_http_perstack_docker_pem(cf, &docker->files[1],
                                        &peer->certificate_key)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    bio = BIO_new_mem_buf(peer->certificate.data,
                          (int) peer->certificate.len);
    cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);

    bio = BIO_new_mem_buf(peer->certificate_key.data,
                          (int) peer->certificate_key.len);
    key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *) "")
              : NULL;
    BIO_free(bio);

    rc = NGX_OK;

    if (cert == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no PEM certificate in \"%V\"",
                           &docker->files[0]);
        rc = NGX_ERROR;

    } else if (key == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no PEM private key in \"%V\" (a key with a "
                           "passphrase is not supported)", &docker->files[1]);
        rc = NGX_ERROR;

    } else if (X509_check_private_key(cert, key) != 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the key \"%V\" is not the certificate \"%V\"'s",
                           &docker->files[1], &docker->files[0]);
        rc = NGX_ERROR;
    }

    X509_free(cert);
    EVP_PKEY_free(key);
    ERR_clear_error();

    return rc;
}


/* a PEM file, whole, relative to nginx's configuration prefix */

static ngx_int_t
ngx_http_perstack_docker_pem(ngx_conf_t *cf, ngx_str_t *file,
    struct curl_blob *blob)
{
    u_char           *buf;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t         name;
    ngx_file_info_t   fi;

    name = *file;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &name);
        return NGX_ERROR;
    }

    buf = NULL;
    n = -1;

    if (ngx_fd_info(fd, &fi) != NGX_FILE_ERROR
        && ngx_file_size(&fi) > 0
        && ngx_file_size(&fi) <= NGX_HTTP_PERSTACK_DOCKER_PEM_MAX)
    {
        buf = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);

        if (buf) {
            n = ngx_read_fd(fd, buf, (size_t) ngx_file_size(&fi));
        }
    }

    (void) ngx_close_file(fd);

    if (buf == NULL || n != (ssize_t) ngx_file_size(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" could not be read whole (at most %d "
                           "bytes)", &name, NGX_HTTP_PERSTACK_DOCKER_PEM_MAX);
        return NGX_ERROR;
    }

    buf[n] = '\0';

    blob->data = buf;
    blob->len = (size_t) n;
    blob->flags = CURL_BLOB_NOCOPY;

    return NGX_OK;
}


ngx_http_perstack_op_t *
ngx_http_perstack_docker_op(ngx_pool_t *pool, ngx_log_t *log,
    ngx_uint_t *inflight, const char *name,
    ngx_http_perstack_op_handler_pt handler, void *data)
{
    ngx_http_perstack_op_t  *op;

    op = ngx_http_perstack_curl_op(pool, log, inflight, name, handler, data);
    if (op == NULL) {
        return NULL;
    }

    op->header = ngx_http_perstack_docker_header;

    return op;
}


/* the engine's URL of a path: versioned once the version is agreed */

static u_char *
ngx_http_perstack_docker_url(ngx_http_perstack_docker_t *docker,
    ngx_pool_t *pool, ngx_str_t *path)
{
    u_char  *url, *p;

    url = ngx_pnalloc(pool, docker->base_url.len + sizeof("/v1.") - 1
                            + NGX_INT_T_LEN + path->len + 1);
    if (url == NULL) {
        return NULL;
    }

    if (docker->api_minor) {
        p = ngx_sprintf(url, "%V/v1.%ui%V", &docker->base_url,
                        docker->api_minor, path);

    } else {
        p = ngx_sprintf(url, "%V%V", &docker->base_url, path);
    }

    *p = '\0';

    return url;
}


static ngx_int_t
ngx_http_perstack_docker_run(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, const char *method, ngx_str_t *path,
    ngx_msec_t timeout)
{
    u_char  *url;

    url = ngx_http_perstack_docker_url(docker, op->pool, path);
    if (url == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_perstack_curl_start(op, method, url, &docker->peer,
                                        timeout);
}


/* GET /_ping: whether the engine answers, and the version it speaks */

ngx_int_t
ngx_http_perstack_docker_ping(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, ngx_msec_t timeout)
{
    ngx_str_t  path;

    ngx_str_set(&path, "/_ping");

    return ngx_http_perstack_docker_run(docker, op, "GET", &path, timeout);
}


/* POST /containers/create?name=<name>, op->body the configuration */

ngx_int_t
ngx_http_perstack_docker_create(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, ngx_str_t *name, ngx_msec_t timeout)
{
    u_char     *p;
    ngx_str_t   path;

    path.data = ngx_pnalloc(op->pool, sizeof("/containers/create?name=") - 1
                                      + name->len);
    if (path.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(path.data, "/containers/create?name=%V", name);
    path.len = p - path.data;

    return ngx_http_perstack_docker_run(docker, op, "POST", &path, timeout);
}


/* the module's containers, running or not: labelled io.perstack.managed */

ngx_int_t
ngx_http_perstack_docker_list(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, ngx_msec_t timeout)
{
    ngx_str_t  path;

    /* filters={"label":["io.perstack.managed=1"]} */
    ngx_str_set(&path, "/containers/json?all=1&filters="
                       "%7B%22label%22%3A%5B%22io.perstack.managed%3D1"
                       "%22%5D%7D");

    return ngx_http_perstack_docker_run(docker, op, "GET", &path, timeout);
}


/* a container's call: "/containers/<id><action>" */

ngx_int_t
ngx_http_perstack_docker_container(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, const char *method, ngx_str_t *container,
    const char *action, ngx_msec_t timeout)
{
    ngx_str_t  path;

    if (ngx_http_perstack_docker_path(docker, op->pool, method, container,
                                      action, &path)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_perstack_docker_run(docker, op, method, &path, timeout);
}


/*
 * The path of a container's call.  Every DELETE is a forced removal, at
 * once: Docker kills the container with SIGKILL, but Podman's
 * Docker-compatible endpoint stops it as "stop" does, waiting its stop
 * timeout after SIGTERM, and only its own endpoint takes a timeout of 0.
 * That one answers 200 (ngx_http_perstack_docker_removed()).
 */

static ngx_int_t
ngx_http_perstack_docker_path(ngx_http_perstack_docker_t *docker,
    ngx_pool_t *pool, const char *method, ngx_str_t *container,
    const char *action, ngx_str_t *path)
{
    u_char  *p;

    if (docker->podman && ngx_strcmp(method, "DELETE") == 0) {
        action = "?force=true&v=true&timeout=0";
    }

    path->data = ngx_pnalloc(pool, sizeof("/libpod/containers/") - 1
                                   + container->len + ngx_strlen(action));
    if (path->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(path->data, "%s/containers/%V%s",
                    docker->podman && ngx_strcmp(method, "DELETE") == 0
                    ? "/libpod" : "", container, action);
    path->len = p - path->data;

    return NGX_OK;
}


/*
 * "Api-Version: 1.NN", of /_ping's answer, and whether the engine is
 * Podman: its answers carry "Libpod-Api-Version", Docker's never do.
 */

static void
ngx_http_perstack_docker_header(ngx_http_perstack_op_t *op, u_char *line,
    size_t len)
{
    u_char      *p, *last;
    ngx_uint_t   n;

    if (len >= sizeof("Libpod-Api-Version:") - 1
        && ngx_strncasecmp(line, (u_char *) "Libpod-Api-Version:",
                           sizeof("Libpod-Api-Version:") - 1) == 0)
    {
        op->value |= NGX_HTTP_PERSTACK_DOCKER_LIBPOD;
        return;
    }

    if (len <= sizeof("Api-Version: 1.") - 1
        || ngx_strncasecmp(line, (u_char *) "Api-Version: 1.",
                           sizeof("Api-Version: 1.") - 1) != 0)
    {
        return;
    }

    p = line + sizeof("Api-Version: 1.") - 1;
    last = line + len;
    n = 0;

    while (p < last && *p >= '0' && *p <= '9' && n < 1000) {
        n = n * 10 + (*p++ - '0');
    }

    op->value = (op->value & NGX_HTTP_PERSTACK_DOCKER_LIBPOD) | n;
}


/*
 * /_ping answered 200: the version both speak, and which engine it is.
 * NGX_DECLINED if the engine's version is older than the oldest the
 * module accepts.
 */

ngx_int_t
ngx_http_perstack_docker_pinged(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, ngx_log_t *log)
{
    if (ngx_http_perstack_docker_agree(docker, op) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "perstack: %s engine at \"%V\" speaks API 1.%ui, "
                  "using 1.%ui", docker->podman ? "Podman" : "Docker",
                  &docker->name,
                  op->value & NGX_HTTP_PERSTACK_DOCKER_MINOR_MASK,
                  docker->api_minor);

    return NGX_OK;
}


static ngx_int_t
ngx_http_perstack_docker_agree(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op)
{
    ngx_uint_t  minor;

    minor = op->value & NGX_HTTP_PERSTACK_DOCKER_MINOR_MASK;

    if (minor < NGX_HTTP_PERSTACK_API_MINOR_MIN) {
        return NGX_DECLINED;
    }

    docker->api_minor = ngx_min(minor, NGX_HTTP_PERSTACK_API_MINOR);
    docker->podman = (op->value & NGX_HTTP_PERSTACK_DOCKER_LIBPOD) ? 1 : 0;

    return NGX_OK;
}


/*
 * A failed call.  The log gets the engine's endpoint and its own words,
 * escaped; the caller's message only which call failed and the engine's
 * status: the engine's words may name host paths.  Returns the error's
 * code: "docker_unavailable" or "docker_error".
 */

const char *
ngx_http_perstack_docker_failed(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, const char *what, ngx_str_t *message)
{
    u_char     *p;
    ngx_str_t   daemon, error;

    message->len = ngx_strlen(what) + 160;
    message->data = ngx_pnalloc(op->pool, message->len);

    if (op->result != CURLE_OK && op->status == 0) {
        /* next time, ask the engine again which API it speaks */
        docker->api_minor = 0;

        error.data = (u_char *) (op->error[0] ? op->error
                                 : curl_easy_strerror(op->result));
        error.len = ngx_strlen(error.data);

        ngx_log_error(NGX_LOG_ERR, op->log, 0,
                      "perstack: %s: cannot reach the Docker engine at "
                      "\"%V\": %V%s", what, &docker->name,
                      ngx_http_perstack_log_escape(op->pool, &error),
                      op->os_errno == NGX_EACCES
                      ? " (permission denied: the worker's user or group "
                        "must be allowed to use the socket)"
                      : "");

        if (message->data) {
            p = ngx_snprintf(message->data, message->len, "%s: ", what);
            p = ngx_http_perstack_docker_unreachable(docker, op, p,
                                               message->data + message->len);
            message->len = p - message->data;

        } else {
            ngx_str_set(message, "internal error");
        }

        return "docker_unavailable";
    }

    ngx_http_perstack_docker_message(op, &daemon);

    ngx_log_error(NGX_LOG_ERR, op->log, 0,
                  "perstack: %s: the Docker engine at \"%V\" answered "
                  "%l: %V", what, &docker->name, op->status,
                  ngx_http_perstack_log_escape(op->pool, &daemon));

    if (message->data) {
        p = ngx_snprintf(message->data, message->len,
                         "%s: the Docker engine answered %l",
                         what, op->status);
        message->len = p - message->data;

    } else {
        ngx_str_set(message, "internal error");
    }

    return "docker_error";
}


/*
 * Why an engine could not be reached, for the client: over https, what
 * the TLS handshake found (OpenSSL's words for a certificate refused); the
 * log has libcurl's own.
 */

static u_char *
ngx_http_perstack_docker_unreachable(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, u_char *buf, u_char *last)
{
    if (!docker->peer.tls) {
        return ngx_slprintf(buf, last, "the Docker engine cannot be reached");
    }

    /*
     * libcurl checks the host name itself, after OpenSSL checked the
     * chain; TLS 1.3 tells of a client certificate refused only when the
     * connection is read, in an alert
     */

    if (op->result == CURLE_PEER_FAILED_VERIFICATION
        && (ngx_strstr(op->error, "subject name") != NULL
            || op->verify_result == X509_V_ERR_HOSTNAME_MISMATCH
            || op->verify_result == X509_V_ERR_IP_ADDRESS_MISMATCH))
    {
        return ngx_slprintf(buf, last, "the Docker engine's certificate does "
                            "not name the host it was reached at");
    }

    if (op->result == CURLE_PEER_FAILED_VERIFICATION) {
        return ngx_slprintf(buf, last, "the Docker engine's certificate is "
                            "not trusted: %s",
                            op->verify_result != X509_V_OK
                            ? X509_verify_cert_error_string(op->verify_result)
                            : "its chain was refused");
    }

    if (op->result == CURLE_SSL_CONNECT_ERROR
        || ((op->result == CURLE_RECV_ERROR || op->result == CURLE_SEND_ERROR)
            && ngx_strstr(op->error, "alert") != NULL))
    {
        return ngx_slprintf(buf, last, "the TLS handshake with the Docker "
                            "engine failed (was the client certificate "
                            "refused?)");
    }

    return ngx_slprintf(buf, last, "the Docker engine cannot be reached");
}


/* the engine's words of an error answer: its "message", or the body */

void
ngx_http_perstack_docker_message(ngx_http_perstack_op_t *op,
    ngx_str_t *message)
{
    size_t     len;
    yajl_val   tree, msg;
    ngx_str_t  s;

    static const char  *message_path[] = { "message", NULL };

    ngx_str_set(message, "");

    if (op->response == NULL || op->response_len == 0) {
        return;
    }

    tree = ngx_http_perstack_json_tree(op->response, op->response_len, 0,
                                       NULL);
    msg = tree ? yajl_tree_get(tree, message_path, yajl_t_string) : NULL;

    if (msg) {
        s.data = (u_char *) msg->u.string;
        len = ngx_strlen(s.data);

    } else {
        s.data = op->response;
        len = op->response_len;
    }

    /* one line of them */
    while (len && (s.data[len - 1] == '\n' || s.data[len - 1] == '\r')) {
        len--;
    }

    s.len = ngx_min(len, NGX_HTTP_PERSTACK_DOCKER_MESSAGE_MAX);

    message->data = ngx_pnalloc(op->pool, s.len);
    if (message->data) {
        ngx_memcpy(message->data, s.data, s.len);
        message->len = s.len;
    }

    if (tree) {
        yajl_tree_free(tree);
    }
}


/*
 * The one blocking call: at configuration time, in the master, and in a
 * worker that exits, where nothing else is served.  The version is agreed
 * first, as the asynchronous calls do.  NGX_OK if the engine answered
 * (op->status, op->response), NGX_ERROR if it could not be reached.
 */

static ngx_int_t
ngx_http_perstack_docker_call_now(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, const char *method, ngx_str_t *path,
    ngx_msec_t timeout)
{
    u_char  *url;

    if (ngx_http_perstack_docker_ping_now(docker, op, timeout) != NGX_OK) {
        return NGX_ERROR;
    }

    url = ngx_http_perstack_docker_url(docker, op->pool, path);
    if (url == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_perstack_curl_perform(op, method, url, &docker->peer,
                                          timeout);
}


/* the version and the engine, blocking, unless they are known */

static ngx_int_t
ngx_http_perstack_docker_ping_now(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, ngx_msec_t timeout)
{
    u_char     *url;
    ngx_str_t   ping;

    if (docker->api_minor) {
        return NGX_OK;
    }

    ngx_str_set(&ping, "/_ping");

    url = ngx_http_perstack_docker_url(docker, op->pool, &ping);
    if (url == NULL) {
        return NGX_ERROR;
    }

    op->header = ngx_http_perstack_docker_header;
    op->value = 0;

    if (ngx_http_perstack_curl_perform(op, "GET", url, &docker->peer,
                                       timeout)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (op->status == 200) {
        (void) ngx_http_perstack_docker_agree(docker, op);
    }

    return NGX_OK;
}


/* GET /networks/<name>, blocking: at configuration time */

ngx_int_t
ngx_http_perstack_docker_network_now(ngx_http_perstack_docker_t *docker,
    ngx_http_perstack_op_t *op, ngx_str_t *name, ngx_msec_t timeout)
{
    u_char     *p;
    ngx_str_t   path;

    path.data = ngx_pnalloc(op->pool, sizeof("/networks/") - 1 + name->len);
    if (path.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(path.data, "/networks/%V", name);
    path.len = p - path.data;

    return ngx_http_perstack_docker_call_now(docker, op, "GET", &path,
                                             timeout);
}


/*
 * Used only when a worker exits with executions still running: the
 * containers must not outlive it, and nothing else is served any more, so
 * a short blocking call is the lesser evil here.
 */

void
ngx_http_perstack_docker_remove_now(ngx_http_perstack_docker_t *docker,
    ngx_str_t *container, ngx_log_t *log)
{
    ngx_str_t                path;
    ngx_pool_t              *pool;
    ngx_http_perstack_op_t  *op;

    pool = ngx_create_pool(1024, log);
    if (pool == NULL) {
        return;
    }

    op = ngx_http_perstack_curl_op(pool, log, NULL, "remove at exit", NULL,
                                   NULL);

    if (op == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    /* the path depends on the engine: known once it answered /_ping */

    if (ngx_http_perstack_docker_ping_now(docker, op, 5000) == NGX_OK
        && ngx_http_perstack_docker_path(docker, pool, "DELETE", container,
                                         "?force=1&v=1", &path)
           == NGX_OK
        && ngx_http_perstack_docker_call_now(docker, op, "DELETE", &path,
                                             5000)
           == NGX_OK
        && (ngx_http_perstack_docker_removed(op) || op->status == 404))
    {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "perstack: worker exiting, removed container \"%V\"",
                      container);

    } else if (op->result == CURLE_OK && op->status == 409) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "perstack: worker exiting, container \"%V\" is being "
                      "removed already", container);

    } else {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "perstack: worker exiting, could not remove container "
                      "\"%V\" (curl %d, status %l): the reaper will",
                      container, op->result, op->status);
    }

    ngx_destroy_pool(pool);
}
