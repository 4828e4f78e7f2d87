
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The variables an access log writes of the execution a request ran,
 * followed or was refused: what the request's context keeps of it (its
 * summary, written as the request lets go of the execution, or the
 * refusal's code).
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_vars.h"
#include "ngx_http_perstack_conf.h"


#define NGX_HTTP_PERSTACK_VAR_EXECUTION  0
#define NGX_HTTP_PERSTACK_VAR_JOB        1
#define NGX_HTTP_PERSTACK_VAR_EXPERT     2
#define NGX_HTTP_PERSTACK_VAR_CONTAINER  3
#define NGX_HTTP_PERSTACK_VAR_OUTCOME    4
#define NGX_HTTP_PERSTACK_VAR_EXIT_CODE  5
#define NGX_HTTP_PERSTACK_VAR_EVENTS     6
#define NGX_HTTP_PERSTACK_VAR_DURATION   7
#define NGX_HTTP_PERSTACK_VAR_TTFE       8
#define NGX_HTTP_PERSTACK_VAR_ENGINE     9


static ngx_int_t ngx_http_perstack_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_perstack_var_msec(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_msec_int_t ms);


static ngx_http_variable_t  ngx_http_perstack_vars[] = {

    { ngx_string("perstack_execution"), NULL, ngx_http_perstack_var,
      NGX_HTTP_PERSTACK_VAR_EXECUTION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("perstack_job"), NULL, ngx_http_perstack_var,
      NGX_HTTP_PERSTACK_VAR_JOB, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("perstack_expert"), NULL, ngx_http_perstack_var,
      NGX_HTTP_PERSTACK_VAR_EXPERT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("perstack_container"), NULL, ngx_http_perstack_var,
      NGX_HTTP_PERSTACK_VAR_CONTAINER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("perstack_outcome"), NULL, ngx_http_perstack_var,
      NGX_HTTP_PERSTACK_VAR_OUTCOME, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("perstack_exit_code"), NULL, ngx_http_perstack_var,
      NGX_HTTP_PERSTACK_VAR_EXIT_CODE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("perstack_events"), NULL, ngx_http_perstack_var,
      NGX_HTTP_PERSTACK_VAR_EVENTS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("perstack_duration"), NULL, ngx_http_perstack_var,
      NGX_HTTP_PERSTACK_VAR_DURATION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("perstack_ttfe"), NULL, ngx_http_perstack_var,
      NGX_HTTP_PERSTACK_VAR_TTFE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("perstack_engine"), NULL, ngx_http_perstack_var,
      NGX_HTTP_PERSTACK_VAR_ENGINE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_perstack_vars_add(ngx_conf_t *cf)
{
    return ngx_http_perstack_add_variables(cf, ngx_http_perstack_vars);
}


static ngx_int_t
ngx_http_perstack_var(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char                   *p;
    ngx_str_t                 s;
    ngx_http_perstack_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_perstack_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_str_null(&s);

    switch (data) {

    case NGX_HTTP_PERSTACK_VAR_EXECUTION:
        s = ctx->log.execution.len ? ctx->log.execution : ctx->execution;
        break;

    case NGX_HTTP_PERSTACK_VAR_JOB:
        s = ctx->job;
        break;

    case NGX_HTTP_PERSTACK_VAR_EXPERT:
        s = ctx->expert;
        break;

    case NGX_HTTP_PERSTACK_VAR_CONTAINER:
        s = ctx->log.container;
        break;

    case NGX_HTTP_PERSTACK_VAR_ENGINE:
        s = ctx->log.engine;
        break;

    case NGX_HTTP_PERSTACK_VAR_OUTCOME:
        if (ctx->log.outcome) {
            s.data = (u_char *) ctx->log.outcome;
            s.len = ngx_strlen(ctx->log.outcome);
        }

        break;

    case NGX_HTTP_PERSTACK_VAR_EXIT_CODE:
    case NGX_HTTP_PERSTACK_VAR_EVENTS:
        if (!ctx->log.ran
            || (data == NGX_HTTP_PERSTACK_VAR_EXIT_CODE
                && ctx->log.exit_code < 0))
        {
            break;
        }

        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        s.data = p;
        s.len = (data == NGX_HTTP_PERSTACK_VAR_EVENTS)
                ? ngx_sprintf(p, "%uL", ctx->log.events) - p
                : ngx_sprintf(p, "%i", ctx->log.exit_code) - p;
        break;

    case NGX_HTTP_PERSTACK_VAR_DURATION:
        if (ctx->log.ran) {
            return ngx_http_perstack_var_msec(r, v, ctx->log.duration);
        }

        break;

    default: /* NGX_HTTP_PERSTACK_VAR_TTFE */
        if (ctx->log.ran && ctx->log.ttfe >= 0) {
            return ngx_http_perstack_var_msec(r, v, ctx->log.ttfe);
        }

        break;
    }

    if (s.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = s.data;
    v->len = s.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* seconds with milliseconds, as $request_time */

static ngx_int_t
ngx_http_perstack_var_msec(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_msec_int_t ms)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ms = ngx_max(ms, 0);

    v->len = ngx_sprintf(p, "%T.%03M", (time_t) ms / 1000, ms % 1000) - p;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
