
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_RECORD_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_RECORD_H_INCLUDED_


#include "ngx_http_perstack_common.h"


typedef struct ngx_http_perstack_record_s  ngx_http_perstack_record_t;


/* the index's entry after the last event's: the stream is over */
#define NGX_HTTP_PERSTACK_RECORD_END  ((uint64_t) -1)


/* An execution's record, as the worker that runs it writes it. */
struct ngx_http_perstack_record_s {
    off_t                            size;
    off_t                            max_size;
    /* "<path>/<id>", with room for the longest suffix */
    u_char                          *name;
    size_t                           name_len;
    /* its files were made */
    unsigned                         created:1;
    unsigned                         failed:1;
    unsigned                         full:1;
    /* the closing event goes in, also into a full record */
    unsigned                         closing:1;
    unsigned                         ended:1;
};


/* What a record's .json says, as a reader finds it. */
typedef struct {
    ngx_str_t                        owner;
    ngx_str_t                        job;
    ngx_str_t                        expert;
    ngx_str_t                        outcome;
    ngx_uint_t                       format;
    ngx_uint_t                       ended;
    uint64_t                         started;   /* ms since the epoch */
    ngx_msec_t                       keep;      /* perstack_record_keep */
    uint64_t                         finished;  /* the same; 0: running */
    uint64_t                         events;    /* when it ended */
    ngx_pid_t                        pid;
    uint64_t                         start;
} ngx_http_perstack_record_meta_t;


/*
 * the record's paths, for the sweep, gathered from every location, with
 * the shortest keep of those that share one: how often it is swept
 */
typedef struct {
    ngx_path_t                      *path;
    ngx_msec_t                       keep;
} ngx_http_perstack_record_dir_t;


ngx_int_t ngx_http_perstack_record_open(ngx_http_perstack_exec_t *exec);
ngx_int_t ngx_http_perstack_record_write(ngx_http_perstack_exec_t *exec,
    const u_char *data, size_t len, uint64_t first, const uint32_t *ends,
    ngx_uint_t n);
void ngx_http_perstack_record_end(ngx_http_perstack_exec_t *exec);
ngx_uint_t ngx_http_perstack_record_followed(ngx_http_perstack_exec_t *exec);
ngx_uint_t ngx_http_perstack_record_cancelled(
    ngx_http_perstack_exec_t *exec);

ngx_int_t ngx_http_perstack_record_owner(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_pool_t *pool, ngx_str_t *owner);
u_char *ngx_http_perstack_record_name(ngx_pool_t *pool, ngx_str_t *path,
    ngx_str_t *id, const char *suffix);
ngx_int_t ngx_http_perstack_record_read_meta(ngx_pool_t *pool,
    ngx_str_t *path, ngx_str_t *id, ngx_http_perstack_record_meta_t *meta,
    ngx_log_t *log);
ngx_int_t ngx_http_perstack_record_position(ngx_fd_t index,
    uint64_t position, off_t *offset, uint64_t *events, ngx_uint_t *ended);
ngx_int_t ngx_http_perstack_record_cancel(ngx_pool_t *pool, ngx_str_t *path,
    ngx_str_t *id, ngx_log_t *log);
ngx_uint_t ngx_http_perstack_record_expired(
    ngx_http_perstack_record_meta_t *meta);
uint64_t ngx_http_perstack_record_now(void);

void ngx_http_perstack_record_init_process(ngx_cycle_t *cycle,
    ngx_array_t *dirs);


#endif /* _NGX_HTTP_PERSTACK_RECORD_H_INCLUDED_ */
