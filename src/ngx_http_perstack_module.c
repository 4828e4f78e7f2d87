
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Directives, configuration, and the request handler that turns a request
 * into an execution.
 */


#include "ngx_http_perstack_module.h"
#include "ngx_http_perstack_random.h"
#include "ngx_http_perstack_process.h"
#include "ngx_http_perstack_json.h"



/* expert keys as the runtime names them: "name", "@scope/name", "a.b-c" */
#define NGX_HTTP_PERSTACK_DEFAULT_ALLOW   "@?[A-Za-z0-9][A-Za-z0-9._/@-]{0,127}"


static void ngx_http_perstack_continue(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx);
static ngx_int_t ngx_http_perstack_handler(ngx_http_request_t *r);
static void ngx_http_perstack_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_perstack_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_perstack_job_id_valid(ngx_str_t *job);
static ngx_int_t ngx_http_perstack_field_copy(ngx_http_request_t *r,
    ngx_http_perstack_field_t *field, ngx_str_t *value);
static ngx_int_t ngx_http_perstack_arg(ngx_http_request_t *r, char *name,
    ngx_str_t *value);
static ngx_int_t ngx_http_perstack_expert_allowed(
    ngx_http_perstack_loc_conf_t *plcf, ngx_str_t *expert);

static void *ngx_http_perstack_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_perstack_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_perstack_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_perstack_execute(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_perstack_docker(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_perstack_approve_rule(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_perstack_expert_allow(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static pcre2_code *ngx_http_perstack_regex_compile(ngx_conf_t *cf,
    ngx_str_t *pattern);
static void ngx_http_perstack_regex_cleanup(void *data);
static char *ngx_http_perstack_check_buffer_size(ngx_conf_t *cf, void *post,
    void *data);
static ngx_int_t ngx_http_perstack_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_perstack_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_perstack_init_process(ngx_cycle_t *cycle);
static void ngx_http_perstack_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_perstack_formats[] = {
    { ngx_string("auto"), NGX_HTTP_PERSTACK_FORMAT_AUTO },
    { ngx_string("sse"), NGX_HTTP_PERSTACK_FORMAT_SSE },
    { ngx_string("ndjson"), NGX_HTTP_PERSTACK_FORMAT_NDJSON },
    { ngx_null_string, 0 }
};


static ngx_conf_post_handler_pt  ngx_http_perstack_buffer_size_post =
    ngx_http_perstack_check_buffer_size;


static ngx_command_t  ngx_http_perstack_commands[] = {

    { ngx_string("perstack_execute"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_perstack_execute,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("perstack_docker"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_perstack_docker,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("perstack_image"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, image),
      NULL },

    { ngx_string("perstack_expert"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, expert),
      NULL },

    { ngx_string("perstack_query"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, query),
      NULL },

    { ngx_string("perstack_expert_allow"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_perstack_expert_allow,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("perstack_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, timeout),
      NULL },

    { ngx_string("perstack_idle_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, idle_timeout),
      NULL },

    { ngx_string("perstack_max_output"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, max_output),
      NULL },

    { ngx_string("perstack_max_events"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, max_events),
      NULL },

    { ngx_string("perstack_stop_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, stop_timeout),
      NULL },

    { ngx_string("perstack_docker_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, docker_timeout),
      NULL },

    { ngx_string("perstack_ping_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, ping_interval),
      NULL },

    { ngx_string("perstack_format"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, format),
      &ngx_http_perstack_formats },

    { ngx_string("perstack_buffer_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, buffer_size),
      &ngx_http_perstack_buffer_size_post },

    { ngx_string("perstack_max_line"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, max_line),
      NULL },

    { ngx_string("perstack_approve"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_perstack_approve_rule,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("perstack_allow_origin"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_perstack_allow_origin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("perstack_approval_request"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, approval_uri),
      NULL },

    { ngx_string("perstack_approval_set"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_perstack_approval_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("perstack_workspace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, workspace),
      NULL },

    { ngx_string("perstack_workspace_root"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, workspace_root),
      NULL },

    { ngx_string("perstack_limit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_perstack_limit_zone,
      0,
      0,
      NULL },

    { ngx_string("perstack_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_perstack_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("perstack_gateway_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_perstack_gateway_zone,
      0,
      0,
      NULL },

    { ngx_string("perstack_gateway_credentials"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_perstack_gateway_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, gateway_issue),
      NULL },

    { ngx_string("perstack_gateway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_perstack_gateway_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, gateway_check),
      NULL },

    { ngx_string("perstack_user"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_perstack_set_user,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("perstack_network"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, network),
      NULL },

    { ngx_string("perstack_read_only"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, read_only),
      NULL },

    { ngx_string("perstack_no_new_privileges"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, no_new_privileges),
      NULL },

    { ngx_string("perstack_init"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, init),
      NULL },

    { ngx_string("perstack_runtime"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, runtime),
      NULL },

    { ngx_string("perstack_memory"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, memory),
      NULL },

    { ngx_string("perstack_swap"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, swap),
      NULL },

    { ngx_string("perstack_cpus"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_perstack_set_cpus,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("perstack_pids_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, pids_limit),
      NULL },

    { ngx_string("perstack_cap_add"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_perstack_set_caps,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("perstack_tmpfs"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_perstack_set_pair,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, tmpfs),
      NULL },

    { ngx_string("perstack_workspace_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, workspace_size),
      NULL },

    { ngx_string("perstack_bind"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_perstack_set_pair,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, binds),
      NULL },

    { ngx_string("perstack_config"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_perstack_set_config,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, config),
      NULL },

    { ngx_string("perstack_label"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_perstack_set_pair,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, labels),
      NULL },

    { ngx_string("perstack_env"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_perstack_set_env,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_perstack_module_ctx = {
    ngx_http_perstack_preconfiguration,    /* preconfiguration */
    ngx_http_perstack_postconfiguration,   /* postconfiguration */

    ngx_http_perstack_create_main_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_perstack_create_loc_conf,     /* create location configuration */
    ngx_http_perstack_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_perstack_module = {
    NGX_MODULE_V1,
    &ngx_http_perstack_module_ctx,         /* module context */
    ngx_http_perstack_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_perstack_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_perstack_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_perstack_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_str_t                      message;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_perstack_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    /*
     * Requests from pages of other sites first, and POSTs that are not
     * JSON: before anything is read or run for them.
     */

    if (ngx_http_perstack_origin_check(r, plcf, &rc) != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_POST))) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ngx_http_perstack_add_header(r, "Allow", "GET, POST") == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&message, "an execution is started by GET or POST");

        return ngx_http_perstack_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                            "method_not_allowed", &message,
                                            NULL, NULL);
    }

    /* header rules first: a request they refuse is not even read */

    if (ngx_http_perstack_approve(r, plcf, &rc) != NGX_OK) {
        return rc;
    }

    /*
     * The body is parsed from memory: a larger one is refused, not spooled;
     * when its length is announced, before it is read.
     */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (r->headers_in.content_length_n > (off_t) clcf->client_body_buffer_size)
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        ngx_str_set(&message, "the request body is larger than "
                              "client_body_buffer_size");

        return ngx_http_perstack_send_error(r,
                                            NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                            "body_too_large", &message,
                                            NULL, NULL);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_perstack_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


#define NGX_HTTP_PERSTACK_FIELDS  4

static void
ngx_http_perstack_body_handler(ngx_http_request_t *r)
{
    char                           err[128];
    ngx_int_t                      rc;
    ngx_str_t                      body, message, answer;
    ngx_uint_t                     status, i;
    const char                    *code;
    ngx_http_perstack_ctx_t       *ctx;
    ngx_http_perstack_field_t      fields[NGX_HTTP_PERSTACK_FIELDS];
    ngx_http_perstack_loc_conf_t  *plcf;

    static char  *names[NGX_HTTP_PERSTACK_FIELDS] = {
        "expert", "query", "jobId", "answer"
    };

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_perstack_ctx_t));
    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_perstack_module);

    ctx->resume = ngx_http_perstack_continue;

    ngx_memzero(fields, sizeof(fields));

    for (i = 0; i < NGX_HTTP_PERSTACK_FIELDS; i++) {
        fields[i].name = names[i];
    }

    ngx_str_null(&answer);

    status = NGX_HTTP_BAD_REQUEST;
    code = "bad_request";
    ngx_str_null(&message);

    if (r->method == NGX_HTTP_POST) {
        rc = ngx_http_perstack_read_body(r, &body);

        if (rc == NGX_DECLINED) {
            status = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
            code = "body_too_large";
            ngx_str_set(&message, "the request body is larger than "
                                  "client_body_buffer_size");
            goto failed;
        }

        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        if (body.len == 0) {
            ngx_str_set(&message, "the request body is empty: send a JSON "
                                  "object with \"expert\" and \"query\"");
            goto failed;
        }

        if (ngx_http_perstack_body_parse(body.data, body.len, fields,
                                         NGX_HTTP_PERSTACK_FIELDS,
                                         err, sizeof(err))
            != 0)
        {
            message.data = (u_char *) err;
            message.len = ngx_strlen(err);
            goto failed;
        }

        /* the values must outlive the parser's malloc()ed copies */

        if (ngx_http_perstack_field_copy(r, &fields[0], &ctx->expert)
               != NGX_OK
            || ngx_http_perstack_field_copy(r, &fields[1], &ctx->query)
               != NGX_OK
            || ngx_http_perstack_field_copy(r, &fields[2], &ctx->job)
               != NGX_OK
            || ngx_http_perstack_field_copy(r, &fields[3], &answer)
               != NGX_OK)
        {
            ngx_http_perstack_body_free(fields, NGX_HTTP_PERSTACK_FIELDS);
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_perstack_body_free(fields, NGX_HTTP_PERSTACK_FIELDS);

    } else {
        rc = ngx_http_perstack_arg(r, "expert", &ctx->expert);

        if (rc == NGX_OK) {
            rc = ngx_http_perstack_arg(r, "query", &ctx->query);
        }

        if (rc == NGX_OK) {
            rc = ngx_http_perstack_arg(r, "jobId", &ctx->job);
        }

        if (rc == NGX_OK) {
            rc = ngx_http_perstack_arg(r, "answer", &answer);
        }

        if (rc == NGX_DECLINED) {
            ngx_str_set(&message, "an argument contains a NUL byte");
            goto failed;
        }

        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    /* what the configuration pins wins over what the request says */

    if (plcf->expert) {
        if (ngx_http_complex_value(r, plcf->expert, &ctx->expert) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    if (plcf->query) {
        if (ngx_http_complex_value(r, plcf->query, &ctx->query) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    if (ngx_http_complex_value(r, plcf->image, &ctx->image) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->expert.len == 0) {
        ngx_str_set(&message, "no expert given: send \"expert\" in the JSON "
                              "body or as an argument");
        goto failed;
    }

    if ((ctx->job.data && ctx->job.len == 0)
        || (answer.data && answer.len == 0))
    {
        ngx_str_set(&message, "\"jobId\" and \"answer\" must not be empty");
        goto failed;
    }

    /* an answer to a pending interactive tool call takes the query's place */

    if (answer.len) {
        if (plcf->query) {
            /* a pinned query pins every text the agent is given */
            status = NGX_HTTP_FORBIDDEN;
            code = "answer_not_allowed";
            ngx_str_set(&message, "this location pins the query: it takes "
                                  "no answer");
            goto failed;
        }

        if (ctx->job.len == 0) {
            ngx_str_set(&message, "an answer needs the \"jobId\" of the job "
                                  "that asked");
            goto failed;
        }

        if (ctx->query.len) {
            ngx_str_set(&message, "send either \"query\" or \"answer\", "
                                  "not both");
            goto failed;
        }

        ctx->query = answer;
        ctx->answer = 1;
    }

    if (ctx->query.len == 0) {
        ngx_str_set(&message, "no query given: send \"query\" in the JSON "
                              "body or as an argument");
        goto failed;
    }

    if (ngx_strlchr(ctx->expert.data, ctx->expert.data + ctx->expert.len,
                    '\0')
        || ngx_strlchr(ctx->query.data, ctx->query.data + ctx->query.len,
                       '\0'))
    {
        ngx_str_set(&message, "the expert or the query contains a NUL byte");
        goto failed;
    }

    if (ctx->query.len > plcf->max_query) {
        ngx_str_set(&message, "the query is too long");
        goto failed;
    }

    if (ctx->job.len) {
        if (plcf->workspace == NULL) {
            ngx_str_set(&message, "jobs cannot be continued here: this "
                                  "location keeps no workspace");
            goto failed;
        }

        if (ngx_http_perstack_job_id_valid(&ctx->job) != NGX_OK) {
            ngx_str_set(&message, "\"jobId\" must be 1 to 64 letters, "
                                  "digits, '-' or '_'");
            goto failed;
        }

        ctx->continuing = 1;

    } else {
        /* a new job: its id is the module's, so the client can continue */
        ctx->job.data = ngx_pnalloc(r->pool, NGX_HTTP_PERSTACK_JOB_ID_LEN);
        if (ctx->job.data == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_perstack_random_string(ctx->job.data,
                                        NGX_HTTP_PERSTACK_JOB_ID_LEN,
                                        "0123456789abcdefghijklmnopqrstuvwxyz");
        ctx->job.len = NGX_HTTP_PERSTACK_JOB_ID_LEN;
    }

    if (ngx_http_perstack_expert_allowed(plcf, &ctx->expert) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "perstack: expert \"%V\" is not allowed",
                      ngx_http_perstack_log_escape(r->pool, &ctx->expert));

        status = NGX_HTTP_FORBIDDEN;
        code = "expert_not_allowed";
        ngx_str_set(&message, "this expert may not run here");
        ngx_http_finalize_request(r,
                ngx_http_perstack_send_error(r, status, code, &message,
                                             "expert", &ctx->expert));
        return;
    }

    if (ctx->image.len == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "perstack: perstack_image evaluated to an empty string");
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_perstack_continue(r, ctx);

    return;

failed:

    ngx_http_perstack_body_free(fields, NGX_HTTP_PERSTACK_FIELDS);

    /* the module's words: a member's name is quoted only when printable */
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "perstack: request refused: %V", &message);

    ngx_http_finalize_request(r,
                      ngx_http_perstack_send_error(r, status, code, &message,
                                                   NULL, NULL));
}


/*
 * The steps between a valid request and its execution, each of which may
 * wait: the approval callback, the workspace and admission.  Each step
 * calls this again when it is done.
 */

static void
ngx_http_perstack_continue(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_http_perstack_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    /*
     * Nothing is written, and no answer depends on a job or a workspace,
     * before the approval allowed the request.  The callback is told which
     * tool call a continuation answers, from the module's record of the
     * job, when the workspace can be named before the callback answers.
     */

    if (plcf->workspace && plcf->approval_uri.len && ctx->continuing
        && !plcf->workspace_after_approval && !ctx->workspace_peeked)
    {
        rc = ngx_http_perstack_workspace_peek(r, ctx);

        if (rc != NGX_OK) {
            if (rc == NGX_ERROR) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            }

            return;
        }
    }

    if (plcf->approval_uri.len && !ctx->approval_done) {
        rc = ngx_http_perstack_approval_request(r, ctx);

        if (rc != NGX_OK) {
            if (rc == NGX_ERROR) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            }

            return;
        }
    }

    if (plcf->workspace && !ctx->workspace_done) {
        rc = ngx_http_perstack_workspace_prepare(r, ctx);

        if (rc != NGX_OK) {
            /* waiting (NGX_AGAIN), or answered already (NGX_DONE) */
            if (rc == NGX_ERROR) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            }

            return;
        }
    }

    if (plcf->limit && ctx->slot == NULL) {
        rc = ngx_http_perstack_limit_acquire(r, ctx);

        if (rc != NGX_OK) {
            /* queued (NGX_AGAIN), or refused with 429 (NGX_DONE) */
            if (rc == NGX_ERROR) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            }

            return;
        }
    }

    if (ngx_http_perstack_exec_start(r, ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static ngx_int_t
ngx_http_perstack_job_id_valid(ngx_str_t *job)
{
    u_char  *p, c;

    if (job->len == 0 || job->len > NGX_HTTP_PERSTACK_JOB_ID_MAX) {
        return NGX_DECLINED;
    }

    for (p = job->data; p < job->data + job->len; p++) {
        c = *p;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_perstack_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    size_t                     len;
    u_char                    *p;
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    ngx_http_core_loc_conf_t  *clcf;

    ngx_str_null(body);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file || r->request_body->temp_file) {
            return NGX_DECLINED;
        }

        len += b->last - b->pos;
    }

    /*
     * A body that came with the headers sits in the header buffer and never
     * reaches a file: its size is what decides.
     */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (len > (size_t) clcf->client_body_buffer_size) {
        return NGX_DECLINED;
    }

    if (len == 0) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL) {
        body->data = cl->buf->pos;
        body->len = len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for ( /* void */ ; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_perstack_field_copy(ngx_http_request_t *r,
    ngx_http_perstack_field_t *field, ngx_str_t *value)
{
    if (field->data == NULL) {
        ngx_str_null(value);
        return NGX_OK;
    }

    if (field->len == 0) {
        /* present but empty: not the same as absent */
        ngx_str_set(value, "");
        return NGX_OK;
    }

    value->data = ngx_pnalloc(r->pool, field->len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(value->data, field->data, field->len);
    value->len = field->len;

    return NGX_OK;
}


/*
 * An argument, decoded as a browser's form encoding writes it: "+" is a
 * space.  NGX_DECLINED when it decodes to something with a NUL byte.
 */

static ngx_int_t
ngx_http_perstack_arg(ngx_http_request_t *r, char *name, ngx_str_t *value)
{
    u_char     *src, *dst, *p;
    ngx_str_t   raw;

    ngx_str_null(value);

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, raw.len);
    if (p == NULL && raw.len) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, raw.data, raw.len);

    for (dst = p; dst < p + raw.len; dst++) {
        if (*dst == '+') {
            *dst = ' ';
        }
    }

    src = p;
    dst = p;
    ngx_unescape_uri(&dst, &src, raw.len, 0);

    value->data = p;
    value->len = dst - p;

    if (ngx_strlchr(value->data, value->data + value->len, '\0')) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_perstack_expert_allowed(ngx_http_perstack_loc_conf_t *plcf,
    ngx_str_t *expert)
{
    int                rc;
    pcre2_match_data  *md;

    md = pcre2_match_data_create_from_pattern(plcf->expert_allow, NULL);
    if (md == NULL) {
        return NGX_ERROR;
    }

    rc = pcre2_match(plcf->expert_allow, expert->data, expert->len, 0,
                     PCRE2_ANCHORED|PCRE2_ENDANCHORED, md, NULL);

    pcre2_match_data_free(md);

    return rc >= 0 ? NGX_OK : NGX_DECLINED;
}


static void *
ngx_http_perstack_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_perstack_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_perstack_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&pmcf->dockers, cf->pool, 2,
                       sizeof(ngx_http_perstack_docker_t *))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&pmcf->gateways, cf->pool, 1,
                       sizeof(ngx_http_perstack_gateway_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return pmcf;
}


static void *
ngx_http_perstack_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_perstack_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_perstack_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->docker = NULL;
     *     conf->image = NULL;
     *     conf->expert = NULL;
     *     conf->query = NULL;
     *     conf->expert_allow = NULL;
     *     conf->user = { 0, NULL };
     *     conf->uid = 0;
     *     conf->gid = 0;
     *     conf->network = { 0, NULL };
     *     conf->runtime = { 0, NULL };
     *     conf->config = { 0, NULL };
     *     conf->workspace_size = { 0, NULL };
     *     conf->approval_uri = { 0, NULL };
     *     conf->workspace = NULL;
     *     conf->workspace_root = { 0, NULL };
     */

    conf->approve = NGX_CONF_UNSET_PTR;
    conf->allow_origin = NGX_CONF_UNSET_PTR;
    conf->limit = NGX_CONF_UNSET_PTR;
    conf->approval_set = NGX_CONF_UNSET_PTR;
    conf->gateway_issue = NGX_CONF_UNSET_PTR;
    conf->gateway_check = NGX_CONF_UNSET_PTR;

    conf->execute = NGX_CONF_UNSET;
    conf->timeout = NGX_CONF_UNSET_MSEC;
    conf->idle_timeout = NGX_CONF_UNSET_MSEC;
    conf->max_output = NGX_CONF_UNSET_SIZE;
    conf->max_events = NGX_CONF_UNSET;
    conf->stop_timeout = NGX_CONF_UNSET_MSEC;
    conf->ping_interval = NGX_CONF_UNSET_MSEC;
    conf->docker_timeout = NGX_CONF_UNSET_MSEC;
    conf->format = NGX_CONF_UNSET_UINT;
    conf->buffer_size = NGX_CONF_UNSET_SIZE;
    conf->max_line = NGX_CONF_UNSET_SIZE;
    conf->max_query = NGX_CONF_UNSET_SIZE;
    conf->read_only = NGX_CONF_UNSET;
    conf->no_new_privileges = NGX_CONF_UNSET;
    conf->init = NGX_CONF_UNSET;
    conf->memory = NGX_CONF_UNSET;
    conf->swap = NGX_CONF_UNSET;
    conf->nano_cpus = NGX_CONF_UNSET_UINT;
    conf->pids_limit = NGX_CONF_UNSET;
    conf->cap_add = NGX_CONF_UNSET_PTR;
    conf->tmpfs = NGX_CONF_UNSET_PTR;
    conf->binds = NGX_CONF_UNSET_PTR;
    conf->labels = NGX_CONF_UNSET_PTR;
    conf->env = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_perstack_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_perstack_loc_conf_t *prev = parent;
    ngx_http_perstack_loc_conf_t *conf = child;

    ngx_str_t  name;

    ngx_conf_merge_value(conf->execute, prev->execute, 0);

    if (conf->docker == NULL) {
        conf->docker = prev->docker;
    }

    if (conf->docker == NULL) {
        ngx_str_set(&name, NGX_HTTP_PERSTACK_DEFAULT_DOCKER);

        conf->docker = ngx_http_perstack_docker_add(cf, &name);
        if (conf->docker == NULL) {
            return NGX_CONF_ERROR;
        }

        prev->docker = conf->docker;
    }

    if (conf->image == NULL) {
        conf->image = prev->image;
    }

    if (conf->expert == NULL) {
        conf->expert = prev->expert;
    }

    if (conf->query == NULL) {
        conf->query = prev->query;
    }

    if (conf->expert_allow == NULL) {
        conf->expert_allow = prev->expert_allow;
    }

    if (conf->expert_allow == NULL && conf->execute) {
        ngx_str_set(&name, NGX_HTTP_PERSTACK_DEFAULT_ALLOW);

        conf->expert_allow = ngx_http_perstack_regex_compile(cf, &name);
        if (conf->expert_allow == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 600000);
    ngx_conf_merge_msec_value(conf->stop_timeout, prev->stop_timeout, 5000);
    ngx_conf_merge_msec_value(conf->idle_timeout, prev->idle_timeout, 0);
    ngx_conf_merge_size_value(conf->max_output, prev->max_output, 0);
    ngx_conf_merge_value(conf->max_events, prev->max_events, 0);
    ngx_conf_merge_msec_value(conf->ping_interval, prev->ping_interval,
                              15000);
    ngx_conf_merge_msec_value(conf->docker_timeout, prev->docker_timeout,
                              60000);

    if (conf->docker_timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"perstack_docker_timeout\" must not be 0");
        return NGX_CONF_ERROR;
    }
    ngx_conf_merge_uint_value(conf->format, prev->format,
                              NGX_HTTP_PERSTACK_FORMAT_AUTO);
    ngx_conf_merge_size_value(conf->buffer_size, prev->buffer_size,
                              64 * 1024);
    ngx_conf_merge_size_value(conf->max_line, prev->max_line, 1024 * 1024);
    ngx_conf_merge_size_value(conf->max_query, prev->max_query, 64 * 1024);

    /* before the sandbox's: the gateway decides the network */
    if (ngx_http_perstack_gateway_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_perstack_policy_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_ptr_value(conf->approve, prev->approve, NULL);
    ngx_conf_merge_ptr_value(conf->allow_origin, prev->allow_origin, NULL);
    ngx_conf_merge_ptr_value(conf->limit, prev->limit, NULL);
    ngx_conf_merge_str_value(conf->approval_uri, prev->approval_uri, "");
    ngx_conf_merge_ptr_value(conf->approval_set, prev->approval_set, NULL);

    if (conf->approval_uri.len == 3
        && ngx_strncmp(conf->approval_uri.data, "off", 3) == 0)
    {
        conf->approval_uri.len = 0;
    }

    if (ngx_http_perstack_workspace_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->execute && conf->image == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"perstack_execute\" needs \"perstack_image\"");
        return NGX_CONF_ERROR;
    }

    if (conf->max_line < 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"perstack_max_line\" must be at least 2 bytes");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_perstack_execute(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_perstack_loc_conf_t *plcf = conf;

    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_perstack_main_conf_t  *pmcf;

    if (plcf->execute != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    plcf->execute = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_perstack_handler;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_perstack_module);
    pmcf->used = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_perstack_docker(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_perstack_loc_conf_t *plcf = conf;

    ngx_str_t  *value;

    if (plcf->docker) {
        return "is duplicate";
    }

    value = cf->args->elts;

    plcf->docker = ngx_http_perstack_docker_add(cf, &value[1]);
    if (plcf->docker == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_http_perstack_docker_t *
ngx_http_perstack_docker_add(ngx_conf_t *cf, ngx_str_t *name)
{
    u_char                          *p;
    ngx_uint_t                       i;
    ngx_http_perstack_docker_t      *docker, **dockerp;
    ngx_http_perstack_main_conf_t   *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_perstack_module);

    dockerp = pmcf->dockers.elts;

    for (i = 0; i < pmcf->dockers.nelts; i++) {
        if (dockerp[i]->name.len == name->len
            && ngx_strncmp(dockerp[i]->name.data, name->data, name->len) == 0)
        {
            return dockerp[i];
        }
    }

    docker = ngx_pcalloc(cf->pool, sizeof(ngx_http_perstack_docker_t));
    if (docker == NULL) {
        return NULL;
    }

    docker->name = *name;

    if (name->len > 5 && ngx_strncmp(name->data, "unix:", 5) == 0) {
        if (name->len - 5 >= 108 || name->data[5] != '/') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid unix socket path in \"%V\"", name);
            return NULL;
        }

        docker->socket_path.len = name->len - 5;
        docker->socket_path.data = ngx_pnalloc(cf->pool,
                                               docker->socket_path.len + 1);
        if (docker->socket_path.data == NULL) {
            return NULL;
        }

        p = ngx_cpymem(docker->socket_path.data, name->data + 5,
                       docker->socket_path.len);
        *p = '\0';

        /* the host is not looked up: the path decides where to connect */
        ngx_str_set(&docker->base_url, "http://docker");

    } else if ((name->len > 7 && ngx_strncmp(name->data, "http://", 7) == 0)
               || (name->len > 6 && ngx_strncmp(name->data, "tcp://", 6) == 0))
    {
        docker->base_url.len = name->len + 1;
        docker->base_url.data = ngx_pnalloc(cf->pool, name->len + 2);
        if (docker->base_url.data == NULL) {
            return NULL;
        }

        if (name->data[0] == 't') {
            p = ngx_sprintf(docker->base_url.data, "http://%*s",
                            name->len - 6, name->data + 6);

        } else {
            p = ngx_cpymem(docker->base_url.data, name->data, name->len);
        }

        while (p > docker->base_url.data && p[-1] == '/') {
            p--;
        }

        docker->base_url.len = p - docker->base_url.data;
        *p = '\0';

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid Docker endpoint \"%V\": expected "
                           "\"unix:/path\", \"http://host:port\" or "
                           "\"tcp://host:port\"", name);
        return NULL;
    }

    dockerp = ngx_array_push(&pmcf->dockers);
    if (dockerp == NULL) {
        return NULL;
    }

    *dockerp = docker;

    return docker;
}


static char *
ngx_http_perstack_approve_rule(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_perstack_loc_conf_t *plcf = conf;

    ngx_str_t                         *value;
    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    if (plcf->approve == NGX_CONF_UNSET_PTR) {
        plcf->approve = ngx_array_create(cf->pool, 2,
                                         sizeof(ngx_http_complex_value_t));
        if (plcf->approve == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    cv = ngx_array_push(plcf->approve);
    if (cv == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = cv;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_perstack_expert_allow(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_perstack_loc_conf_t *plcf = conf;

    ngx_str_t  *value;

    if (plcf->expert_allow) {
        return "is duplicate";
    }

    value = cf->args->elts;

    plcf->expert_allow = ngx_http_perstack_regex_compile(cf, &value[1]);
    if (plcf->expert_allow == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static pcre2_code *
ngx_http_perstack_regex_compile(ngx_conf_t *cf, ngx_str_t *pattern)
{
    int                  errcode;
    u_char               errstr[128];
    PCRE2_SIZE           erroffset;
    pcre2_code          *re;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    /* the whole name must match: a pattern is anchored at both ends */
    re = pcre2_compile(pattern->data, pattern->len,
                       PCRE2_ANCHORED|PCRE2_ENDANCHORED|PCRE2_NO_UTF_CHECK,
                       &errcode, &erroffset, NULL);

    if (re == NULL) {
        pcre2_get_error_message(errcode, errstr, sizeof(errstr));
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "pcre2_compile() failed: %s in \"%V\" at %uz",
                           errstr, pattern, (size_t) erroffset);
        return NULL;
    }

    cln->handler = ngx_http_perstack_regex_cleanup;
    cln->data = re;

    return re;
}


static void
ngx_http_perstack_regex_cleanup(void *data)
{
    pcre2_code_free(data);
}


static char *
ngx_http_perstack_check_buffer_size(ngx_conf_t *cf, void *post, void *data)
{
    size_t *sp = data;

    /* libcurl hands over up to CURL_MAX_WRITE_SIZE bytes at once */
    if (*sp < CURL_MAX_WRITE_SIZE) {
        return "must be at least 16k";
    }

    return NGX_CONF_OK;
}


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


static ngx_int_t
ngx_http_perstack_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_perstack_gateway_add_variables(cf);
}


static ngx_int_t
ngx_http_perstack_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt            *h;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_perstack_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_perstack_module);

    if (pmcf->gateways.nelts == 0) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_perstack_gateway_handler;

    return ngx_http_perstack_gateway_init(cf);
}


static ngx_int_t
ngx_http_perstack_init_process(ngx_cycle_t *cycle)
{
    ngx_http_perstack_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_perstack_module);

    if (pmcf == NULL) {
        return NGX_OK;
    }

    ngx_http_perstack_process_init();

    ngx_http_perstack_gateway_init_process(cycle);

    if (!pmcf->used) {
        return NGX_OK;
    }

    ngx_http_perstack_limit_init_process(cycle);

    if (ngx_http_perstack_docker_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_perstack_reaper_init_process(cycle);

    return NGX_OK;
}


static void
ngx_http_perstack_exit_process(ngx_cycle_t *cycle)
{
    /* the executions first: their containers are removed over libcurl */
    ngx_http_perstack_exec_abort_all(cycle);
    ngx_http_perstack_limit_exit_process(cycle);
    ngx_http_perstack_docker_exit_process(cycle);
}
