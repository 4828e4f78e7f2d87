
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * What the directives of several files parse alike.
 */


#include "ngx_http_perstack_conf.h"


/* "zone=name:size", for perstack_limit_zone and perstack_gateway_zone */

ngx_int_t
ngx_http_perstack_zone_parse(ngx_conf_t *cf, ngx_str_t *value,
    ngx_str_t *name, ssize_t *size)
{
    u_char     *p;
    ngx_str_t   s;

    if (ngx_strncmp(value->data, "zone=", 5) != 0) {
        goto invalid;
    }

    name->data = value->data + 5;

    p = (u_char *) ngx_strlchr(name->data, value->data + value->len, ':');
    if (p == NULL) {
        goto invalid;
    }

    name->len = p - name->data;

    s.data = p + 1;
    s.len = value->data + value->len - s.data;

    *size = ngx_parse_size(&s);

    if (name->len == 0 || *size == NGX_ERROR) {
        goto invalid;
    }

    if (*size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", value);
        return NGX_ERROR;
    }

    return NGX_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid zone \"%V\": expected \"zone=name:size\"",
                       value);
    return NGX_ERROR;
}


/* a module's variables, from a table ending with ngx_http_null_variable */

ngx_int_t
ngx_http_perstack_add_variables(ngx_conf_t *cf, ngx_http_variable_t *vars)
{
    ngx_http_variable_t  *var, *v;

    for (v = vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}
