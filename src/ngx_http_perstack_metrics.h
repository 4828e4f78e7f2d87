
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The module's counters, in one shared memory zone that all workers add to
 * and that outlives a reload; perstack_metrics shows them.
 */


#ifndef _NGX_HTTP_PERSTACK_METRICS_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* an Engine API call's result, besides its status class */
#define NGX_HTTP_PERSTACK_CALL_OK         0
#define NGX_HTTP_PERSTACK_CALL_TIMEOUT    1
#define NGX_HTTP_PERSTACK_CALL_ERROR      2
#define NGX_HTTP_PERSTACK_CALL_CANCELLED  3


/* The text of the exposition, as it is written. */
typedef struct {
    ngx_pool_t                      *pool;
    ngx_chain_t                     *first;
    ngx_chain_t                    **last;
    ngx_buf_t                       *buf;
    ngx_uint_t                       failed;   /* out of memory */
} ngx_http_perstack_metrics_text_t;


/* the outcomes' names, which the layers above know */
typedef const char *(*ngx_http_perstack_metrics_name_pt)(ngx_uint_t outcome);


ngx_shm_zone_t *ngx_http_perstack_metrics_zone(ngx_conf_t *cf);
void ngx_http_perstack_metrics_init_process(ngx_shm_zone_t *zone);

void ngx_http_perstack_metrics_started(void);
void ngx_http_perstack_metrics_ended(ngx_uint_t outcome, ngx_msec_t duration);
void ngx_http_perstack_metrics_first_event(ngx_msec_t ttfe);
void ngx_http_perstack_metrics_relayed(uint64_t events, size_t bytes);
void ngx_http_perstack_metrics_refused(ngx_uint_t status, const char *code);
void ngx_http_perstack_metrics_engine(const char *name, ngx_uint_t result,
    long status, uint64_t usec);
void ngx_http_perstack_metrics_reaped(void);
void ngx_http_perstack_metrics_reattached(void);
void ngx_http_perstack_metrics_record_added(void);
void ngx_http_perstack_metrics_record_grew(size_t bytes);
void ngx_http_perstack_metrics_records(uint64_t count, uint64_t bytes);

ngx_int_t ngx_http_perstack_metrics_write(
    ngx_http_perstack_metrics_text_t *text,
    ngx_http_perstack_metrics_name_pt outcome_name);
void ngx_http_perstack_metrics_printf(ngx_http_perstack_metrics_text_t *text,
    const char *fmt, ...);


#endif /* _NGX_HTTP_PERSTACK_METRICS_H_INCLUDED_ */
