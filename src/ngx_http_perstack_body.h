
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * A request's body, the members the module knows: a pure part, without
 * nginx, unit-tested and fuzzed.
 */


#ifndef _NGX_HTTP_PERSTACK_BODY_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_BODY_H_INCLUDED_


#include "ngx_http_perstack_json.h"


/* A member of a request body that the module knows. */
typedef struct {
    const char                  *name;
    /* set by the parser: a NUL-terminated malloc()ed copy, or NULL */
    u_char                      *data;
    size_t                       len;
} ngx_http_perstack_field_t;


/*
 * Parses a request body: one JSON object whose members are all among
 * fields[0 .. nfields - 1], each a string without NUL bytes, none twice.
 * Returns 0, or -1 with a short message for the client in err (never
 * echoing the input).  On either return, the caller frees the values with
 * ngx_http_perstack_body_free().
 */
int ngx_http_perstack_body_parse(const u_char *data, size_t len,
    ngx_http_perstack_field_t *fields, size_t nfields, char *err,
    size_t err_size);

void ngx_http_perstack_body_free(ngx_http_perstack_field_t *fields,
    size_t nfields);


#endif /* _NGX_HTTP_PERSTACK_BODY_H_INCLUDED_ */
