
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Cross-site requests.  A page of another site must not start an execution
 * with the user's cookies: a request whose Origin is neither the request's
 * own nor listed by perstack_allow_origin is refused, and so is one that a
 * browser marks as coming from another site (Sec-Fetch-Site) without an
 * Origin: a link, an <img>.  A POST must be application/json, which no
 * form can send.  A listed origin gets CORS headers, and its preflight an
 * answer.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_origin.h"
#include "ngx_http_perstack_response.h"


static ngx_int_t ngx_http_perstack_origin_parse(ngx_str_t *origin);
static ngx_uint_t ngx_http_perstack_origin_listed(
    ngx_http_perstack_loc_conf_t *plcf, ngx_str_t *origin);
static ngx_uint_t ngx_http_perstack_origin_own(ngx_http_request_t *r,
    ngx_str_t *origin);
static void ngx_http_perstack_origin_strip_port(ngx_str_t *hostport,
    ngx_uint_t https);
static ngx_int_t ngx_http_perstack_origin_preflight(ngx_http_request_t *r);
static ngx_uint_t ngx_http_perstack_origin_json(ngx_http_request_t *r);


/*
 * NGX_OK: the request may go on.  NGX_DECLINED: it was answered (a refusal
 * or a preflight), *rc is what the handler returns.
 */

ngx_int_t
ngx_http_perstack_origin_check(ngx_http_request_t *r,
    ngx_http_perstack_loc_conf_t *plcf, ngx_int_t *rc)
{
    ngx_str_t         message, none;
    ngx_uint_t        listed;
    ngx_table_elt_t  *origin, *site, *h;

    /* what is answered depends on Origin wherever origins are listed */

    if (plcf->allow_origin
        && ngx_http_perstack_add_header(r, "Vary", "Origin") == NULL)
    {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    origin = ngx_http_perstack_header_in(r, "Origin");
    site = ngx_http_perstack_header_in(r, "Sec-Fetch-Site");
    listed = 0;

    if (origin) {
        /* the browser's word on who asks: it decides */

        listed = ngx_http_perstack_origin_listed(plcf, &origin->value);

        if (!listed && !ngx_http_perstack_origin_own(r, &origin->value)) {
            goto cross_site;
        }

    } else if (site
               && ((site->value.len == sizeof("cross-site") - 1
                    && ngx_strncasecmp(site->value.data,
                                       (u_char *) "cross-site",
                                       sizeof("cross-site") - 1) == 0)
                   || (site->value.len == sizeof("same-site") - 1
                       && ngx_strncasecmp(site->value.data,
                                          (u_char *) "same-site",
                                          sizeof("same-site") - 1) == 0)))
    {
        /*
         * A link, an <img> or a form of another site, or of another host
         * of this site, which may serve what the operator does not write.
         */
        goto cross_site;
    }

    if (listed) {
        h = ngx_http_perstack_add_header(r, "Access-Control-Allow-Origin",
                                         "");
        if (h == NULL
            || ngx_http_perstack_add_header(r,
                                            "Access-Control-Allow-Credentials",
                                            "true")
               == NULL)
        {
            *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DECLINED;
        }

        h->value = origin->value;

        if (r->method == NGX_HTTP_OPTIONS
            && ngx_http_perstack_header_in(r,
                                           "Access-Control-Request-Method"))
        {
            *rc = ngx_http_perstack_origin_preflight(r);
            return NGX_DECLINED;
        }
    }

    if (r->method == NGX_HTTP_POST && !ngx_http_perstack_origin_json(r)) {
        *rc = ngx_http_discard_request_body(r);
        if (*rc != NGX_OK) {
            return NGX_DECLINED;
        }

        ngx_str_set(&message, "the request body must be JSON, sent with "
                              "\"Content-Type: application/json\"");

        *rc = ngx_http_perstack_send_error(r,
                                           NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                           "unsupported_media_type",
                                           &message, NULL, NULL);
        return NGX_DECLINED;
    }

    return NGX_OK;

cross_site:

    ngx_str_set(&none, "");

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "perstack: cross-site request refused: Origin \"%V\", "
                  "Sec-Fetch-Site \"%V\"",
                  ngx_http_perstack_log_escape(r->pool,
                                               origin ? &origin->value
                                                      : &none),
                  ngx_http_perstack_log_escape(r->pool,
                                               site ? &site->value : &none));

    *rc = ngx_http_discard_request_body(r);
    if (*rc != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_str_set(&message, "a request from another site may not start an "
                          "execution here");

    *rc = ngx_http_perstack_send_error(r, NGX_HTTP_FORBIDDEN, "cross_site",
                                       &message, NULL, NULL);
    return NGX_DECLINED;
}


static ngx_uint_t
ngx_http_perstack_origin_listed(ngx_http_perstack_loc_conf_t *plcf,
    ngx_str_t *origin)
{
    ngx_str_t   *allowed;
    ngx_uint_t   i;

    if (plcf->allow_origin == NULL) {
        return 0;
    }

    allowed = plcf->allow_origin->elts;

    for (i = 0; i < plcf->allow_origin->nelts; i++) {
        if (allowed[i].len == origin->len
            && ngx_strncasecmp(allowed[i].data, origin->data, origin->len)
               == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The request's own origin: its scheme (https on a TLS connection to this
 * nginx) and its Host header, a default port left out as browsers do.
 * X-Forwarded-* are not believed: behind a proxy that ends TLS or changes
 * the host, the public origin is listed with perstack_allow_origin.
 */

static ngx_uint_t
ngx_http_perstack_origin_own(ngx_http_request_t *r, ngx_str_t *origin)
{
    ngx_str_t    scheme, host, rest;
    ngx_uint_t   https;

    if (r->headers_in.host == NULL) {
        return 0;
    }

    https = 0;

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        https = 1;
    }
#endif

    if (https) {
        ngx_str_set(&scheme, "https://");

    } else {
        ngx_str_set(&scheme, "http://");
    }

    if (origin->len <= scheme.len
        || ngx_strncasecmp(origin->data, scheme.data, scheme.len) != 0)
    {
        return 0;
    }

    rest.data = origin->data + scheme.len;
    rest.len = origin->len - scheme.len;

    host = r->headers_in.host->value;

    ngx_http_perstack_origin_strip_port(&rest, https);
    ngx_http_perstack_origin_strip_port(&host, https);

    return rest.len == host.len
           && ngx_strncasecmp(rest.data, host.data, host.len) == 0;
}


/* "host:80" of http and "host:443" of https are "host" */

static void
ngx_http_perstack_origin_strip_port(ngx_str_t *hostport, ngx_uint_t https)
{
    ngx_str_t  port;

    if (https) {
        ngx_str_set(&port, ":443");

    } else {
        ngx_str_set(&port, ":80");
    }

    if (hostport->len > port.len
        && ngx_strncmp(hostport->data + hostport->len - port.len, port.data,
                       port.len)
           == 0)
    {
        hostport->len -= port.len;
    }
}


static ngx_int_t
ngx_http_perstack_origin_preflight(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_perstack_add_header(r, "Access-Control-Allow-Methods",
                                     "GET, POST, DELETE")
           == NULL
        || ngx_http_perstack_add_header(r, "Access-Control-Allow-Headers",
                                        "Content-Type, Last-Event-ID")
           == NULL
        || ngx_http_perstack_add_header(r, "Access-Control-Max-Age", "600")
           == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    return ngx_http_send_header(r);
}


/* "application/json", any case, with parameters or none */

static ngx_uint_t
ngx_http_perstack_origin_json(ngx_http_request_t *r)
{
    u_char     *p, *last;
    ngx_str_t  *type;

    if (r->headers_in.content_type == NULL) {
        return 0;
    }

    type = &r->headers_in.content_type->value;

    if (type->len < sizeof("application/json") - 1
        || ngx_strncasecmp(type->data, (u_char *) "application/json",
                           sizeof("application/json") - 1) != 0)
    {
        return 0;
    }

    p = type->data + sizeof("application/json") - 1;
    last = type->data + type->len;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    return p == last || *p == ';';
}


/* perstack_allow_origin origin ...; */

char *
ngx_http_perstack_allow_origin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_perstack_loc_conf_t *plcf = conf;

    ngx_str_t   *value, *origin;
    ngx_uint_t   i;

    if (plcf->allow_origin == NGX_CONF_UNSET_PTR) {
        plcf->allow_origin = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (plcf->allow_origin == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 1 && value[i].data[0] == '*') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"*\" is not allowed: requests that start "
                               "executions carry the user's credentials, "
                               "list each origin");
            return NGX_CONF_ERROR;
        }

        if (ngx_http_perstack_origin_parse(&value[i]) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid origin \"%V\": expected "
                               "\"http://host[:port]\" or "
                               "\"https://host[:port]\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        origin = ngx_array_push(plcf->allow_origin);
        if (origin == NULL) {
            return NGX_CONF_ERROR;
        }

        *origin = value[i];
    }

    return NGX_CONF_OK;
}


/*
 * An origin as browsers write it in Origin: a scheme, a host (a name or an
 * address, IPv6 in brackets), a port unless it is the scheme's default,
 * and nothing else.  Lowercased in place; a default port is dropped.
 */

static ngx_int_t
ngx_http_perstack_origin_parse(ngx_str_t *origin)
{
    u_char      *p, *last, *host, *colon, c;
    ngx_uint_t   https, port, digits;

    ngx_strlow(origin->data, origin->data, origin->len);

    p = origin->data;
    last = p + origin->len;

    if (origin->len > 7 && ngx_strncmp(p, "http://", 7) == 0) {
        https = 0;
        p += 7;

    } else if (origin->len > 8 && ngx_strncmp(p, "https://", 8) == 0) {
        https = 1;
        p += 8;

    } else {
        return NGX_ERROR;
    }

    host = p;

    if (*p == '[') {
        for (p++; p < last && *p != ']'; p++) {
            c = *p;

            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
                  || c == ':' || c == '.'))
            {
                return NGX_ERROR;
            }
        }

        if (p == last || p - host < 3) {
            return NGX_ERROR;
        }

        p++;

    } else {
        for ( /* void */ ; p < last && *p != ':'; p++) {
            c = *p;

            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
                  || c == '.' || c == '-'))
            {
                return NGX_ERROR;
            }
        }

        if (p == host) {
            return NGX_ERROR;
        }
    }

    if (p == last) {
        return NGX_OK;
    }

    if (*p != ':') {
        return NGX_ERROR;
    }

    colon = p++;
    port = 0;

    for (digits = 0; p < last && *p >= '0' && *p <= '9'; p++, digits++) {
        port = port * 10 + (*p - '0');

        if (digits == 5) {
            return NGX_ERROR;
        }
    }

    /* as a browser writes it: no leading zero, nothing after */
    if (p != last || digits == 0 || colon[1] == '0' || port > 65535) {
        return NGX_ERROR;
    }

    if (port == (https ? 443 : 80)) {
        origin->len = colon - origin->data;
    }

    return NGX_OK;
}
