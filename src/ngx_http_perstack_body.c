
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * A request's body: one JSON object whose members are all known, each a
 * string without NUL bytes.  yajl reads it through callbacks, after the
 * checks of ngx_http_perstack_json_parse().
 */


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_perstack_body.h"


/* an unknown field's name is only shown to the client up to this length */
#define NGX_HTTP_PERSTACK_FIELD_NAME_MAX  32


typedef struct {
    ngx_http_perstack_field_t   *fields;
    size_t                       nfields;
    /* the field whose value comes next, or NULL */
    ngx_http_perstack_field_t   *field;
    unsigned                     in_object:1;
    char                        *err;
    size_t                       err_size;
} ngx_http_perstack_body_ctx_t;


static int ngx_http_perstack_body_not_string(void *data);
static int ngx_http_perstack_body_boolean(void *data, int value);
static int ngx_http_perstack_body_number(void *data, const char *value,
    size_t len);
static int ngx_http_perstack_body_string(void *data,
    const unsigned char *value, size_t len);
static int ngx_http_perstack_body_start_map(void *data);
static int ngx_http_perstack_body_map_key(void *data,
    const unsigned char *key, size_t len);
static int ngx_http_perstack_body_not_object(
    ngx_http_perstack_body_ctx_t *ctx);
static int ngx_http_perstack_name_printable(const u_char *name, size_t len);


static const yajl_callbacks  ngx_http_perstack_body_callbacks = {
    ngx_http_perstack_body_not_string,
    ngx_http_perstack_body_boolean,
    NULL,
    NULL,
    ngx_http_perstack_body_number,
    ngx_http_perstack_body_string,
    ngx_http_perstack_body_start_map,
    ngx_http_perstack_body_map_key,
    NULL,
    ngx_http_perstack_body_not_string,
    NULL
};


int
ngx_http_perstack_body_parse(const u_char *data, size_t len,
    ngx_http_perstack_field_t *fields, size_t nfields, char *err,
    size_t err_size)
{
    size_t                        i;
    ngx_http_perstack_parse_rc_e  rc;
    ngx_http_perstack_body_ctx_t  ctx;

    for (i = 0; i < nfields; i++) {
        fields[i].data = NULL;
        fields[i].len = 0;
    }

    if (err_size > 0) {
        err[0] = '\0';
    }

    memset(&ctx, 0, sizeof(ngx_http_perstack_body_ctx_t));
    ctx.fields = fields;
    ctx.nfields = nfields;
    ctx.err = err;
    ctx.err_size = err_size;

    /* UTF-8 is checked in the values the module takes, with their names */

    rc = ngx_http_perstack_json_parse(&ngx_http_perstack_body_callbacks,
                                      &ctx, data, len,
                                      NGX_HTTP_PERSTACK_JSON_PAIRS);

    switch (rc) {

    case NGX_HTTP_PERSTACK_PARSE_OK:
        return 0;

    case NGX_HTTP_PERSTACK_PARSE_CANCELED:
        /* the callback that stopped the parser has set its own message */
        break;

    case NGX_HTTP_PERSTACK_PARSE_SURROGATE:
        snprintf(err, err_size, "body escapes half a surrogate pair");
        break;

    case NGX_HTTP_PERSTACK_PARSE_NOMEM:
        snprintf(err, err_size, "out of memory");
        break;

    default:
        snprintf(err, err_size, "body is not valid JSON");
        break;
    }

    return -1;
}


void
ngx_http_perstack_body_free(ngx_http_perstack_field_t *fields,
    size_t nfields)
{
    size_t  i;

    for (i = 0; i < nfields; i++) {
        free(fields[i].data);
        fields[i].data = NULL;
        fields[i].len = 0;
    }
}


/* null, arrays, and, through the wrappers below, booleans and numbers */

static int
ngx_http_perstack_body_not_string(void *data)
{
    ngx_http_perstack_body_ctx_t  *ctx;

    ctx = data;

    if (!ctx->in_object) {
        return ngx_http_perstack_body_not_object(ctx);
    }

    snprintf(ctx->err, ctx->err_size, "field \"%s\" must be a string",
             ctx->field->name);

    return 0;
}


static int
ngx_http_perstack_body_boolean(void *data, int value)
{
    return ngx_http_perstack_body_not_string(data);
}


static int
ngx_http_perstack_body_number(void *data, const char *value, size_t len)
{
    return ngx_http_perstack_body_not_string(data);
}


static int
ngx_http_perstack_body_string(void *data, const unsigned char *value,
    size_t len)
{
    ngx_http_perstack_field_t     *field;
    ngx_http_perstack_body_ctx_t  *ctx;

    ctx = data;

    if (!ctx->in_object) {
        return ngx_http_perstack_body_not_object(ctx);
    }

    field = ctx->field;

    if (len > 0 && memchr(value, '\0', len) != NULL) {
        snprintf(ctx->err, ctx->err_size, "field \"%s\" contains a NUL byte",
                 field->name);
        return 0;
    }

    /*
     * yajl lets overlong forms and surrogates through, and decodes a "\u"
     * escape of a lone low surrogate into one
     */

    if (!ngx_http_perstack_utf8_valid(value, len)) {
        snprintf(ctx->err, ctx->err_size, "field \"%s\" is not valid UTF-8",
                 field->name);
        return 0;
    }

    field->data = malloc(len + 1);
    if (field->data == NULL) {
        snprintf(ctx->err, ctx->err_size, "out of memory");
        return 0;
    }

    if (len > 0) {
        memcpy(field->data, value, len);
    }

    field->data[len] = '\0';
    field->len = len;

    ctx->field = NULL;

    return 1;
}


static int
ngx_http_perstack_body_start_map(void *data)
{
    ngx_http_perstack_body_ctx_t  *ctx;

    ctx = data;

    if (ctx->in_object) {
        return ngx_http_perstack_body_not_string(ctx);
    }

    ctx->in_object = 1;

    return 1;
}


static int
ngx_http_perstack_body_map_key(void *data, const unsigned char *key,
    size_t len)
{
    size_t                         i;
    ngx_http_perstack_field_t     *field;
    ngx_http_perstack_body_ctx_t  *ctx;

    ctx = data;

    for (i = 0; i < ctx->nfields; i++) {
        field = &ctx->fields[i];

        if (strlen(field->name) != len || memcmp(field->name, key, len) != 0)
        {
            continue;
        }

        if (field->data != NULL) {
            snprintf(ctx->err, ctx->err_size, "field \"%s\" appears twice",
                     field->name);
            return 0;
        }

        ctx->field = field;

        return 1;
    }

    if (ngx_http_perstack_name_printable(key, len)) {
        snprintf(ctx->err, ctx->err_size, "unknown field \"%.*s\"", (int) len,
                 key);

    } else {
        snprintf(ctx->err, ctx->err_size, "unknown field");
    }

    return 0;
}


static int
ngx_http_perstack_body_not_object(ngx_http_perstack_body_ctx_t *ctx)
{
    snprintf(ctx->err, ctx->err_size, "body must be a JSON object");

    return 0;
}


/*
 * Whether a name the client sent may be put in a message as it is: short,
 * printable ASCII, and neither a quote nor a backslash, so that the message
 * needs no escaping in JSON or in a log.
 */

static int
ngx_http_perstack_name_printable(const u_char *name, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_PERSTACK_FIELD_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (name[i] < 0x20 || name[i] > 0x7e
            || name[i] == '"' || name[i] == '\\')
        {
            return 0;
        }
    }

    return 1;
}
