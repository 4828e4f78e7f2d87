
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Admission control across workers: a shared memory zone counts the
 * executions that hold a slot, in all and per key.  A slot is taken before
 * the container is created and given back when the execution is freed,
 * which every way an execution ends goes through.  Each slot names the
 * worker that holds it, so the slots of a worker that died are found and
 * given back by the others (and by the worker started in its place).
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_limit.h"
#include "ngx_http_perstack_conf.h"
#include "ngx_http_perstack_process.h"
#include "ngx_http_perstack_response.h"


#define NGX_HTTP_PERSTACK_LIMIT_KEY_MAX    256
#define NGX_HTTP_PERSTACK_QUEUE_INTERVAL   100


typedef struct {
    ngx_queue_t                      slots;      /* ngx_http_perstack_slot_t */
    ngx_uint_t                       used;
    ngx_uint_t                       waiting;
} ngx_http_perstack_limit_sh_t;


typedef struct {
    ngx_http_perstack_limit_sh_t    *sh;
    ngx_slab_pool_t                 *shpool;
    ngx_str_t                        name;
} ngx_http_perstack_limit_zone_t;


/* One execution's slot, in shared memory. */
struct ngx_http_perstack_slot_s {
    ngx_queue_t                      queue;
    ngx_http_perstack_limit_zone_t  *zone;       /* same in every worker */
    /* the worker that holds it: a pid alone may be another's later */
    ngx_pid_t                        pid;
    uint64_t                         start;
    uint32_t                         hash;
    u_short                          len;
    u_char                           key[1];
};


static ngx_int_t ngx_http_perstack_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_perstack_limit_take(
    ngx_http_perstack_limit_zone_t *zone, ngx_http_perstack_limit_t *limit,
    ngx_str_t *key, ngx_http_perstack_slot_t **slot);
static ngx_uint_t ngx_http_perstack_limit_reclaim(
    ngx_http_perstack_limit_zone_t *zone);
static void ngx_http_perstack_limit_wait_handler(ngx_event_t *ev);
static void ngx_http_perstack_limit_wait_cleanup(void *data);
static ngx_int_t ngx_http_perstack_limit_refuse(ngx_http_request_t *r,
    ngx_http_perstack_limit_t *limit);


char *
ngx_http_perstack_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ssize_t                          size;
    ngx_str_t                       *value, name;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_perstack_limit_zone_t  *zone;

    value = cf->args->elts;

    if (ngx_http_perstack_zone_parse(cf, &value[1], &name, &size)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_perstack_limit_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_perstack_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    zone->name = name;

    shm_zone->init = ngx_http_perstack_limit_init_zone;
    shm_zone->data = zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_perstack_limit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_perstack_limit_zone_t  *ozone = data;

    size_t                           len;
    ngx_http_perstack_limit_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        /* a reload: the counts live on, with the executions they count */
        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;
        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;
        return NGX_OK;
    }

    zone->sh = ngx_slab_alloc(zone->shpool,
                              sizeof(ngx_http_perstack_limit_sh_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    zone->shpool->data = zone->sh;

    ngx_queue_init(&zone->sh->slots);
    zone->sh->used = 0;
    zone->sh->waiting = 0;

    len = sizeof(" in perstack_limit_zone \"\"") + shm_zone->shm.name.len;

    zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
    if (zone->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zone->shpool->log_ctx, " in perstack_limit_zone \"%V\"%Z",
                &shm_zone->shm.name);

    return NGX_OK;
}


char *
ngx_http_perstack_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_perstack_loc_conf_t *plcf = conf;

    ngx_str_t                         *value, s;
    ngx_int_t                          n;
    ngx_uint_t                         i;
    ngx_shm_zone_t                    *shm_zone;
    ngx_http_perstack_limit_t         *limit;
    ngx_http_compile_complex_value_t   ccv;

    if (plcf->limit != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    limit = ngx_pcalloc(cf->pool, sizeof(ngx_http_perstack_limit_t));
    if (limit == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;
    shm_zone = NULL;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            shm_zone = ngx_shared_memory_add(cf, &s, 0,
                                             &ngx_http_perstack_module);
            if (shm_zone == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max=", 4) == 0) {
            n = ngx_atoi(value[i].data + 4, value[i].len - 4);
            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            limit->max = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "per_key=", 8) == 0) {
            n = ngx_atoi(value[i].data + 8, value[i].len - 8);
            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            limit->per_key = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "queue=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n == NGX_ERROR) {
                goto invalid;
            }

            limit->queue = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "queue_timeout=", 14) == 0) {
            s.data = value[i].data + 14;
            s.len = value[i].len - 14;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR) {
                goto invalid;
            }

            limit->queue_timeout = (ngx_msec_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "key=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            limit->key = ngx_palloc(cf->pool,
                                    sizeof(ngx_http_complex_value_t));
            if (limit->key == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = &s;
            ccv.complex_value = limit->key;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        goto invalid;
    }

    if (shm_zone == NULL || limit->max == 0) {
        return "needs \"zone=\" and \"max=\"";
    }

    if (limit->per_key && limit->key == NULL) {
        return "needs \"key=\" with \"per_key=\"";
    }

    if (limit->queue && limit->queue_timeout == 0) {
        limit->queue_timeout = 10000;
    }

    limit->shm_zone = shm_zone;
    plcf->limit = limit;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * NGX_OK: ctx->slot is taken.  NGX_AGAIN: queued, this is called again.
 * NGX_DONE: refused with 429, the request is finalized.
 */

ngx_int_t
ngx_http_perstack_limit_acquire(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    ngx_int_t                        rc;
    ngx_str_t                        key;
    ngx_pool_cleanup_t              *cln;

    ngx_http_perstack_limit_t       *limit;
    ngx_http_perstack_loc_conf_t    *plcf;
    ngx_http_perstack_limit_zone_t  *zone;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);
    limit = plcf->limit;
    zone = limit->shm_zone->data;

    if (zone == NULL || zone->sh == NULL) {
        ngx_log_error(NGX_LOG_EMERG, r->connection->log, 0,
                      "perstack: unknown perstack_limit_zone \"%V\"",
                      &limit->shm_zone->shm.name);
        return NGX_ERROR;
    }

    if (!ctx->limit_cleanup) {
        /* a slot or a queue place the request still holds when it ends */
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_http_perstack_limit_wait_cleanup;
        cln->data = ctx;

        ctx->limit_cleanup = 1;
        ctx->zone = zone;

        ctx->wait_ev.handler = ngx_http_perstack_limit_wait_handler;
        ctx->wait_ev.data = r;
        ctx->wait_ev.log = r->connection->log;
    }

    ngx_str_null(&key);

    if (limit->key) {
        if (ngx_http_complex_value(r, limit->key, &key) != NGX_OK) {
            return NGX_ERROR;
        }

        if (key.len > NGX_HTTP_PERSTACK_LIMIT_KEY_MAX) {
            key.len = NGX_HTTP_PERSTACK_LIMIT_KEY_MAX;
        }
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    rc = ngx_http_perstack_limit_take(zone, limit, &key, &ctx->slot);

    if (rc == NGX_BUSY && ngx_http_perstack_limit_reclaim(zone)) {
        rc = ngx_http_perstack_limit_take(zone, limit, &key, &ctx->slot);
    }

    if (rc == NGX_BUSY && !ctx->queued && limit->queue
        && zone->sh->waiting < limit->queue)
    {
        /* a place in the queue: tried again until queue_timeout */
        zone->sh->waiting++;
        ctx->queued = 1;
        rc = NGX_AGAIN;

    } else if (rc == NGX_BUSY && ctx->queued
               && ngx_current_msec - ctx->queued_at < limit->queue_timeout)
    {
        rc = NGX_AGAIN;
    }

    if (ctx->queued && rc != NGX_AGAIN) {
        zone->sh->waiting--;
        ctx->queued = 0;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_AGAIN) {
        if (ctx->queued_at == 0) {
            ctx->queued_at = ngx_current_msec;

            /* a client that leaves the queue is noticed, and gives back */
            r->read_event_handler = ngx_http_test_reading;
        }

        ngx_add_timer(&ctx->wait_ev, NGX_HTTP_PERSTACK_QUEUE_INTERVAL);

        return NGX_AGAIN;
    }

    return ngx_http_perstack_limit_refuse(r, limit);
}


/* under the zone's lock */

static ngx_int_t
ngx_http_perstack_limit_take(ngx_http_perstack_limit_zone_t *zone,
    ngx_http_perstack_limit_t *limit, ngx_str_t *key,
    ngx_http_perstack_slot_t **slotp)
{
    uint32_t                   hash;
    ngx_uint_t                 same;
    ngx_queue_t               *q;
    ngx_http_perstack_slot_t  *slot;

    if (zone->sh->used >= limit->max) {
        return NGX_BUSY;
    }

    hash = ngx_crc32_short(key->data, key->len);

    if (limit->per_key) {
        same = 0;

        for (q = ngx_queue_head(&zone->sh->slots);
             q != ngx_queue_sentinel(&zone->sh->slots);
             q = ngx_queue_next(q))
        {
            slot = ngx_queue_data(q, ngx_http_perstack_slot_t, queue);

            if (slot->hash == hash && slot->len == key->len
                && ngx_memcmp(slot->key, key->data, key->len) == 0)
            {
                same++;
            }
        }

        if (same >= limit->per_key) {
            return NGX_BUSY;
        }
    }

    slot = ngx_slab_alloc_locked(zone->shpool,
                                 sizeof(ngx_http_perstack_slot_t) + key->len);
    if (slot == NULL) {
        return NGX_ERROR;
    }

    slot->zone = zone;
    slot->pid = ngx_pid;
    slot->start = ngx_http_perstack_process_self();
    slot->hash = hash;
    slot->len = (u_short) key->len;
    ngx_memcpy(slot->key, key->data, key->len);

    ngx_queue_insert_tail(&zone->sh->slots, &slot->queue);
    zone->sh->used++;

    *slotp = slot;

    return NGX_OK;
}


/*
 * Under the zone's lock: the slots of workers that are gone.  A worker
 * killed by a signal cannot give its slots back itself.
 */

static ngx_uint_t
ngx_http_perstack_limit_reclaim(ngx_http_perstack_limit_zone_t *zone)
{
    ngx_uint_t                 n;
    ngx_queue_t               *q, *next;
    ngx_http_perstack_slot_t  *slot;

    n = 0;

    for (q = ngx_queue_head(&zone->sh->slots);
         q != ngx_queue_sentinel(&zone->sh->slots);
         q = next)
    {
        next = ngx_queue_next(q);
        slot = ngx_queue_data(q, ngx_http_perstack_slot_t, queue);

        if (!ngx_http_perstack_process_gone(slot->pid, slot->start)) {
            continue;
        }

        ngx_queue_remove(q);
        zone->sh->used--;
        ngx_slab_free_locked(zone->shpool, slot);
        n++;
    }

    if (n) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "perstack: gave back %ui execution slot(s) of a worker "
                      "that exited", n);
    }

    return n;
}


void
ngx_http_perstack_limit_release(ngx_http_perstack_slot_t *slot)
{
    ngx_http_perstack_limit_zone_t  *zone;

    zone = slot->zone;

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_queue_remove(&slot->queue);
    zone->sh->used--;
    ngx_slab_free_locked(zone->shpool, slot);

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/* A new worker gives back what a worker that died held. */

void
ngx_http_perstack_limit_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i;
    ngx_list_part_t                 *part;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_perstack_limit_zone_t  *zone;

    part = &cycle->shared_memory.part;
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

        if (shm_zone[i].tag != &ngx_http_perstack_module) {
            continue;
        }

        zone = shm_zone[i].data;

        if (zone == NULL || zone->sh == NULL) {
            continue;
        }

        ngx_shmtx_lock(&zone->shpool->mutex);
        (void) ngx_http_perstack_limit_reclaim(zone);
        ngx_shmtx_unlock(&zone->shpool->mutex);
    }
}


static void
ngx_http_perstack_limit_wait_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_perstack_ctx_t  *ctx;

    r = ev->data;
    c = r->connection;

    ctx = ngx_http_get_module_ctx(r, ngx_http_perstack_module);

    ctx->resume(r, ctx);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_perstack_limit_wait_cleanup(void *data)
{
    ngx_http_perstack_ctx_t  *ctx = data;

    ngx_http_perstack_limit_zone_t  *zone;

    zone = ctx->zone;

    if (ctx->wait_ev.timer_set) {
        ngx_del_timer(&ctx->wait_ev);
    }

    if (ctx->queued) {
        ngx_shmtx_lock(&zone->shpool->mutex);
        zone->sh->waiting--;
        ngx_shmtx_unlock(&zone->shpool->mutex);

        ctx->queued = 0;
    }

    /* a slot taken but never handed to an execution */
    if (ctx->slot) {
        ngx_http_perstack_limit_release(ctx->slot);
        ctx->slot = NULL;
    }
}


static ngx_int_t
ngx_http_perstack_limit_refuse(ngx_http_request_t *r,
    ngx_http_perstack_limit_t *limit)
{
    u_char     *p;
    ngx_str_t   message, extra;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "perstack: execution refused: limit of zone \"%V\" reached",
                  &limit->shm_zone->shm.name);

    if (ngx_http_perstack_add_header(r, "Retry-After", "1") == NULL) {
        return NGX_ERROR;
    }

    extra.data = ngx_pnalloc(r->pool, 2 * NGX_INT_T_LEN + 32);
    if (extra.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(extra.data, ",\"max\":%ui", limit->max);

    if (limit->per_key) {
        p = ngx_sprintf(p, ",\"per_key\":%ui", limit->per_key);
    }

    extra.len = p - extra.data;

    ngx_str_set(&message, "too many executions are running: try again");

    ngx_http_finalize_request(r,
            ngx_http_perstack_send_error_json(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                              "too_many_executions",
                                              &message, &extra));
    return NGX_DONE;
}
