
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


/*
 * perstack_metrics: the module's counters, and the state of its limit and
 * gateway zones, in Prometheus' text format, as stub_status shows the
 * connections.  Everything is read from shared memory, so that any worker
 * answers for all of them.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_metrics_handler.h"
#include "ngx_http_perstack_metrics.h"
#include "ngx_http_perstack_limit.h"
#include "ngx_http_perstack_engines.h"
#include "ngx_http_perstack_gateway.h"
#include "ngx_http_perstack_runtime.h"


static const char *ngx_http_perstack_metrics_outcome(ngx_uint_t outcome);
static ngx_str_t *ngx_http_perstack_metrics_label(
    ngx_http_perstack_metrics_text_t *text, ngx_str_t *value);
static void ngx_http_perstack_metrics_limits(
    ngx_http_perstack_metrics_text_t *text);
static void ngx_http_perstack_metrics_engines(
    ngx_http_perstack_metrics_text_t *text, ngx_array_t *groups);
static void ngx_http_perstack_metrics_gateways(
    ngx_http_perstack_metrics_text_t *text, ngx_array_t *gateways);


ngx_int_t
ngx_http_perstack_metrics_handler(ngx_http_request_t *r)
{
    off_t                              len;
    ngx_int_t                          rc;
    ngx_chain_t                       *cl;
    ngx_http_perstack_main_conf_t     *pmcf;
    ngx_http_perstack_metrics_text_t   text;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_perstack_module);

    ngx_memzero(&text, sizeof(ngx_http_perstack_metrics_text_t));
    text.pool = r->pool;
    text.last = &text.first;

    rc = ngx_http_perstack_metrics_write(&text,
                                         ngx_http_perstack_metrics_outcome);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "perstack metrics: this process has no counters");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_perstack_metrics_limits(&text);
    ngx_http_perstack_metrics_engines(&text, &pmcf->engine_groups);
    ngx_http_perstack_metrics_gateways(&text, &pmcf->gateways);

    if (text.failed || text.first == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = 0;

    for (cl = text.first; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);

        if (cl->next == NULL) {
            cl->buf->last_buf = (r == r->main) ? 1 : 0;
            cl->buf->last_in_chain = 1;
        }
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = sizeof("text/plain") - 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, text.first);
}


static const char *
ngx_http_perstack_metrics_outcome(ngx_uint_t outcome)
{
    return ngx_http_perstack_outcome_name(outcome);
}


/* Every perstack_limit_zone: its slots taken and its queue's length. */

static void
ngx_http_perstack_metrics_limits(ngx_http_perstack_metrics_text_t *text)
{
    ngx_str_t         name;
    ngx_uint_t        i, n, used, waiting;
    ngx_list_part_t  *part;
    ngx_shm_zone_t   *shm_zone;

    for (n = 0; n < 2; n++) {

        if (n == 0) {
            ngx_http_perstack_metrics_printf(text,
                "# HELP perstack_limit_slots_used Executions holding a slot "
                "of a perstack_limit_zone.\n"
                "# TYPE perstack_limit_slots_used gauge\n");

        } else {
            ngx_http_perstack_metrics_printf(text,
                "# HELP perstack_limit_queue_length Requests waiting for a "
                "slot of a perstack_limit_zone.\n"
                "# TYPE perstack_limit_queue_length gauge\n");
        }

        part = (ngx_list_part_t *) &ngx_cycle->shared_memory.part;
        shm_zone = part->elts;

        for (i = 0; /* void */ ; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                shm_zone = part->elts;
                i = 0;
            }

            if (shm_zone[i].tag != &ngx_http_perstack_module
                || ngx_http_perstack_limit_stats(&shm_zone[i], &name, &used,
                                                 &waiting)
                   != NGX_OK)
            {
                continue;
            }

            ngx_http_perstack_metrics_printf(text,
                                             "%s{zone=\"%V\"} %ui\n",
                                             n == 0
                                             ? "perstack_limit_slots_used"
                                             : "perstack_limit_queue_length",
                                             ngx_http_perstack_metrics_label(
                                                 text, &name),
                                             n == 0 ? used : waiting);
        }
    }
}


/* Every engine of every perstack_engines group. */

static void
ngx_http_perstack_metrics_engines(ngx_http_perstack_metrics_text_t *text,
    ngx_array_t *groups)
{
    ngx_str_t                         *group, *engine;
    ngx_uint_t                         i, j, n, value;
    ngx_http_perstack_engine_t        *e;
    ngx_http_perstack_engines_t      **gp;
    ngx_http_perstack_engine_stats_t   st;

    static const char  *names[] = {
        "perstack_engine_running", "gauge",
        "Executions of this nginx running on the engine.",
        "perstack_engine_up", "gauge",
        "1 if the engine is not marked down.",
        "perstack_engine_executions_total", "counter",
        "Executions sent to the engine.",
        "perstack_engine_failures_total", "counter",
        "Times the engine was marked down."
    };

    if (groups->nelts == 0) {
        return;
    }

    gp = groups->elts;

    for (n = 0; n < 4; n++) {
        ngx_http_perstack_metrics_printf(text, "# HELP %s %s\n# TYPE %s %s\n",
                                         names[n * 3], names[n * 3 + 2],
                                         names[n * 3], names[n * 3 + 1]);

        for (i = 0; i < groups->nelts; i++) {
            e = gp[i]->engines.elts;

            for (j = 0; j < gp[i]->engines.nelts; j++) {
                ngx_http_perstack_engines_stats(&e[j], &st);

                value = (n == 0) ? st.running
                        : (n == 1) ? st.up
                        : (n == 2) ? st.executions : st.failures;

                group = ngx_http_perstack_metrics_label(text, &gp[i]->name);
                engine = ngx_http_perstack_metrics_label(text,
                                                         &e[j].docker->name);

                ngx_http_perstack_metrics_printf(text,
                                     "%s{group=\"%V\",engine=\"%V\"} %ui\n",
                                     names[n * 3], group, engine, value);
            }
        }
    }
}


/* Every perstack_gateway_zone: its credentials and its requests. */

static void
ngx_http_perstack_metrics_gateways(ngx_http_perstack_metrics_text_t *text,
    ngx_array_t *gateways)
{
    ngx_str_t                          *name;
    ngx_uint_t                          i;
    ngx_http_perstack_gateway_t       **gw;
    ngx_http_perstack_gateway_stats_t   st;

    if (gateways->nelts == 0) {
        return;
    }

    ngx_http_perstack_metrics_printf(text,
        "# HELP perstack_gateway_credentials Gateway credentials live (of "
        "executions running).\n"
        "# TYPE perstack_gateway_credentials gauge\n");

    gw = gateways->elts;

    for (i = 0; i < gateways->nelts; i++) {
        ngx_http_perstack_gateway_stats(gw[i], &st);

        ngx_http_perstack_metrics_printf(text,
            "perstack_gateway_credentials{zone=\"%V\"} %ui\n",
            ngx_http_perstack_metrics_label(text, &gw[i]->name), st.live);
    }

    ngx_http_perstack_metrics_printf(text,
        "# HELP perstack_gateway_credentials_issued_total Gateway "
        "credentials issued to executions.\n"
        "# TYPE perstack_gateway_credentials_issued_total counter\n");

    for (i = 0; i < gateways->nelts; i++) {
        ngx_http_perstack_gateway_stats(gw[i], &st);

        ngx_http_perstack_metrics_printf(text,
            "perstack_gateway_credentials_issued_total{zone=\"%V\"} %ui\n",
            ngx_http_perstack_metrics_label(text, &gw[i]->name), st.issued);
    }

    ngx_http_perstack_metrics_printf(text,
        "# HELP perstack_gateway_requests_total Requests to the gateway, by "
        "result of the credential's check.\n"
        "# TYPE perstack_gateway_requests_total counter\n");

    for (i = 0; i < gateways->nelts; i++) {
        ngx_http_perstack_gateway_stats(gw[i], &st);
        name = ngx_http_perstack_metrics_label(text, &gw[i]->name);

        ngx_http_perstack_metrics_printf(text,
            "perstack_gateway_requests_total{zone=\"%V\",result=\"accepted\"}"
            " %ui\n"
            "perstack_gateway_requests_total{zone=\"%V\","
            "result=\"credential_required\"} %ui\n"
            "perstack_gateway_requests_total{zone=\"%V\","
            "result=\"invalid_credential\"} %ui\n",
            name, st.accepted, name, st.required, name, st.invalid);
    }
}


/*
 * A zone's name as a label's value: the configuration may hold any byte,
 * the format takes \\, \" and \\n escaped.
 */

static ngx_str_t *
ngx_http_perstack_metrics_label(ngx_http_perstack_metrics_text_t *text,
    ngx_str_t *value)
{
    u_char     *p;
    size_t      i, n;
    ngx_str_t  *s;

    static ngx_str_t  none = ngx_null_string;

    n = 0;

    for (i = 0; i < value->len; i++) {
        if (value->data[i] == '\\' || value->data[i] == '"'
            || value->data[i] == '\n')
        {
            n++;
        }
    }

    if (n == 0) {
        return value;
    }

    s = ngx_palloc(text->pool, sizeof(ngx_str_t));
    p = ngx_pnalloc(text->pool, value->len + n);

    if (s == NULL || p == NULL) {
        text->failed = 1;
        return &none;
    }

    s->data = p;
    s->len = value->len + n;

    for (i = 0; i < value->len; i++) {
        switch (value->data[i]) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = value->data[i];
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = value->data[i];
        }
    }

    return s;
}
