
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The module's tables: its directives, the configuration's create and
 * merge, and the process hooks.  The request's handler is
 * ngx_http_perstack_handler.c.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_module.h"
#include "ngx_http_perstack_handler.h"
#include "ngx_http_perstack_approval.h"
#include "ngx_http_perstack_docker.h"
#include "ngx_http_perstack_engines.h"
#include "ngx_http_perstack_curl.h"
#include "ngx_http_perstack_exec.h"
#include "ngx_http_perstack_gateway.h"
#include "ngx_http_perstack_gateway_host.h"
#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_limit.h"
#include "ngx_http_perstack_metrics.h"
#include "ngx_http_perstack_metrics_handler.h"
#include "ngx_http_perstack_origin.h"
#include "ngx_http_perstack_policy.h"
#include "ngx_http_perstack_process.h"
#include "ngx_http_perstack_random.h"
#include "ngx_http_perstack_reaper.h"
#include "ngx_http_perstack_record.h"
#include "ngx_http_perstack_response.h"
#include "ngx_http_perstack_workspace.h"
#include "ngx_http_perstack_vars.h"
#include "ngx_http_perstack_conf.h"


/* expert keys as the runtime names them: "name", "@scope/name", "a.b-c" */
#define NGX_HTTP_PERSTACK_DEFAULT_ALLOW   "@?[A-Za-z0-9][A-Za-z0-9._/@-]{0,127}"


static void *ngx_http_perstack_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_perstack_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_perstack_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_perstack_execute(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_perstack_metrics_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
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
static ngx_int_t ngx_http_perstack_record_dir_add(ngx_conf_t *cf,
    ngx_http_perstack_loc_conf_t *conf);
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


static ngx_path_init_t  ngx_http_perstack_record_path = {
    ngx_string("perstack_records"), { 0, 0, 0 }
};


static ngx_command_t  ngx_http_perstack_commands[] = {

    { ngx_string("perstack_execute"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_perstack_execute,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("perstack_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_perstack_metrics_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("perstack_docker"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_perstack_docker,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("perstack_engines"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_BLOCK|NGX_CONF_TAKE1,
      ngx_http_perstack_engines_block,
      0,
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

    { ngx_string("perstack_record_path"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_path_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, record_path),
      NULL },

    { ngx_string("perstack_record_keep"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, record_keep),
      NULL },

    { ngx_string("perstack_record_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, record_max_size),
      NULL },

    { ngx_string("perstack_detach_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, detach_timeout),
      NULL },

    { ngx_string("perstack_owner"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_perstack_loc_conf_t, owner),
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

    if (ngx_array_init(&pmcf->engine_groups, cf->pool, 1,
                       sizeof(ngx_http_perstack_engines_t *))
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

    if (ngx_array_init(&pmcf->record_dirs, cf->pool, 1,
                       sizeof(ngx_http_perstack_record_dir_t))
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
     *     conf->owner = NULL;
     *     conf->record_path = NULL;
     */

    conf->approve = NGX_CONF_UNSET_PTR;
    conf->allow_origin = NGX_CONF_UNSET_PTR;
    conf->limit = NGX_CONF_UNSET_PTR;
    conf->approval_set = NGX_CONF_UNSET_PTR;
    conf->gateway_issue = NGX_CONF_UNSET_PTR;
    conf->gateway_check = NGX_CONF_UNSET_PTR;

    conf->execute = NGX_CONF_UNSET;
    conf->record_keep = NGX_CONF_UNSET_MSEC;
    conf->record_max_size = NGX_CONF_UNSET;
    conf->detach_timeout = NGX_CONF_UNSET_MSEC;
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

    ngx_str_t                       name;
    ngx_http_perstack_main_conf_t  *pmcf;

    ngx_conf_merge_value(conf->execute, prev->execute, 0);

    if (conf->docker == NULL && conf->engines == NULL) {
        conf->docker = prev->docker;
        conf->engines = prev->engines;
    }

    if (conf->docker == NULL && conf->engines == NULL) {
        ngx_str_set(&name, NGX_HTTP_PERSTACK_DEFAULT_DOCKER);

        pmcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_perstack_module);

        conf->docker = ngx_http_perstack_docker_add(cf, &pmcf->dockers, &name,
                                                    1);
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

    if (ngx_conf_merge_path_value(cf, &conf->record_path, prev->record_path,
                                  &ngx_http_perstack_record_path)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_msec_value(conf->record_keep, prev->record_keep, 600000);
    ngx_conf_merge_off_value(conf->record_max_size, prev->record_max_size,
                             64 * 1024 * 1024);
    ngx_conf_merge_msec_value(conf->detach_timeout, prev->detach_timeout,
                              60000);

    if (conf->owner == NULL) {
        conf->owner = prev->owner;
    }

    if (conf->execute
        && ngx_http_perstack_record_dir_add(cf, conf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }
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

    if (clcf->handler == ngx_http_perstack_metrics_handler) {
        return "is not allowed with \"perstack_metrics\"";
    }

    clcf->handler = ngx_http_perstack_handler;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_perstack_module);
    pmcf->used = 1;

    /* executions are counted even where no location shows the counts */
    pmcf->metrics = ngx_http_perstack_metrics_zone(cf);

    return pmcf->metrics ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/* perstack_metrics: the location shows the counters, as stub_status */

static char *
ngx_http_perstack_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_perstack_main_conf_t  *pmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_perstack_metrics_handler) {
        return "is duplicate";
    }

    if (clcf->handler == ngx_http_perstack_handler) {
        return "is not allowed with \"perstack_execute\"";
    }

    clcf->handler = ngx_http_perstack_metrics_handler;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_perstack_module);
    pmcf->metrics = ngx_http_perstack_metrics_zone(cf);

    return pmcf->metrics ? NGX_CONF_OK : NGX_CONF_ERROR;
}


static char *
ngx_http_perstack_docker(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_perstack_loc_conf_t *plcf = conf;

    ngx_str_t                      *value;
    ngx_http_perstack_main_conf_t  *pmcf;

    if (plcf->docker || plcf->engines) {
        return "is duplicate";
    }

    value = cf->args->elts;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_perstack_module);

    if (cf->args->nelts == 2 && ngx_http_perstack_engines_name(&value[1])) {
        /* no scheme: the name of a perstack_engines group */

        plcf->engines = ngx_http_perstack_engines_ref(cf,
                                                      &pmcf->engine_groups,
                                                      &value[1]);
        return plcf->engines ? NGX_CONF_OK : NGX_CONF_ERROR;
    }

    plcf->docker = ngx_http_perstack_docker_add(cf, &pmcf->dockers, &value[1],
                                                cf->args->nelts - 1);
    if (plcf->docker == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
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


static ngx_int_t
ngx_http_perstack_preconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_perstack_vars_add(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_perstack_gateway_add_variables(cf);
}


static ngx_int_t
ngx_http_perstack_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt            *h;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_perstack_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_perstack_module);

    if (ngx_http_perstack_engines_check(cf, &pmcf->engine_groups) != NGX_OK) {
        return NGX_ERROR;
    }

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


/* a record path and its keep, once each, for the sweep */

static ngx_int_t
ngx_http_perstack_record_dir_add(ngx_conf_t *cf,
    ngx_http_perstack_loc_conf_t *conf)
{
    ngx_uint_t                       i;
    ngx_http_perstack_main_conf_t   *pmcf;
    ngx_http_perstack_record_dir_t  *dir;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_perstack_module);

    dir = pmcf->record_dirs.elts;

    for (i = 0; i < pmcf->record_dirs.nelts; i++) {
        if (dir[i].path->name.len == conf->record_path->name.len
            && ngx_strncmp(dir[i].path->name.data,
                           conf->record_path->name.data,
                           conf->record_path->name.len)
               == 0)
        {
            /* swept as often as its shortest keep asks */
            dir[i].keep = ngx_min(dir[i].keep, conf->record_keep);
            return NGX_OK;
        }
    }

    dir = ngx_array_push(&pmcf->record_dirs);
    if (dir == NULL) {
        return NGX_ERROR;
    }

    dir->path = conf->record_path;
    dir->keep = conf->record_keep;

    return NGX_OK;
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

    ngx_http_perstack_engines_init_process(&pmcf->engine_groups);

    ngx_http_perstack_metrics_init_process(pmcf->metrics);

    ngx_http_perstack_gateway_init_process(cycle);

    if (!pmcf->used) {
        return NGX_OK;
    }

    ngx_http_perstack_limit_init_process(cycle);

    if (ngx_http_perstack_curl_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_perstack_reaper_init_process(cycle,
                                         ngx_http_perstack_exec_running);

    ngx_http_perstack_record_init_process(cycle, &pmcf->record_dirs);

    return NGX_OK;
}


static void
ngx_http_perstack_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_perstack_main_conf_t  *pmcf;

    /* the executions first: their containers are removed over libcurl */
    ngx_http_perstack_exec_abort_all(cycle);
    ngx_http_perstack_limit_exit_process(cycle);

    pmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_perstack_module);
    if (pmcf) {
        ngx_http_perstack_engines_exit_process(&pmcf->engine_groups);
    }

    ngx_http_perstack_curl_exit_process(cycle);
}
