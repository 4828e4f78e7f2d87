
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Admission control across workers: a shared memory zone counts the
 * executions that hold a slot, in all and per key.  A slot is taken before
 * the container is created and given back when the execution is freed,
 * which every way an execution ends goes through.  Each slot names the
 * worker that holds it, so the slots of a worker that died are found and
 * given back by the others (and by the worker started in its place).
 *
 * The queue is first come, first served, and nobody polls.  A request
 * that is not let in at once joins the zone's list of waiters (at its
 * tail, even when a slot looks free: those ahead come first).  Whoever
 * frees a slot, in whichever worker, hands it to the waiters in order
 * under the zone's lock, takes the slot in the waiter's name, and wakes
 * the waiter's worker: a posted event in its own worker, a one-byte
 * datagram to the other worker's socket, bound in the abstract namespace
 * under the worker's pid and start time.  A wake-up says nothing but
 * "look": the worker then takes every slot handed to any of its waiters,
 * so a datagram lost because the socket's buffer is full loses nothing
 * (the datagrams in that buffer wake the worker all the same), and one
 * from anybody else costs only a look.  A waiter that is never woken
 * still finds its slot when its queue_timeout passes.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_limit.h"
#include "ngx_http_perstack_conf.h"
#include "ngx_http_perstack_process.h"
#include "ngx_http_perstack_response.h"
#include "ngx_http_perstack_wake.h"


#define NGX_HTTP_PERSTACK_LIMIT_KEY_MAX    256

#define NGX_HTTP_PERSTACK_WAITER_WAITING   0
#define NGX_HTTP_PERSTACK_WAITER_GRANTED   1


typedef struct {
    ngx_queue_t                      slots;      /* ngx_http_perstack_slot_t */
    /* ngx_http_perstack_waiter_t, first come first */
    ngx_queue_t                      waiters;
    ngx_uint_t                       used;
    /* the waiters not yet granted a slot */
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
    /* the holder's own: set by the worker that holds it, used by it only */
    ngx_http_perstack_limit_zone_t  *zone;
    /* the worker that holds it: a pid alone may be another's later */
    ngx_pid_t                        pid;
    uint64_t                         start;
    uint32_t                         hash;
    u_short                          len;
    u_char                           key[1];
};


/* One queued request, in shared memory. */
struct ngx_http_perstack_waiter_s {
    ngx_queue_t                      queue;
    /* granted: the slot taken in its name */
    ngx_http_perstack_slot_t        *slot;
    /* meaningful in its own worker only */
    ngx_http_perstack_ctx_t         *ctx;
    /* unique in its worker, for the debug log */
    ngx_uint_t                       id;
    ngx_pid_t                        pid;
    uint64_t                         start;
    /* its location's limits: a zone may serve several */
    ngx_uint_t                       max;
    ngx_uint_t                       per_key;
    uint32_t                         hash;
    u_short                          len;
    u_char                           state;
    u_char                           key[1];
};


static ngx_int_t ngx_http_perstack_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_perstack_limit_enqueue(
    ngx_http_perstack_limit_zone_t *zone, ngx_http_perstack_limit_t *limit,
    ngx_str_t *key, ngx_http_perstack_ctx_t *ctx,
    ngx_http_perstack_wake_t *wake);
static void ngx_http_perstack_limit_dispatch(
    ngx_http_perstack_limit_zone_t *zone, ngx_http_perstack_waiter_t *self,
    ngx_http_perstack_wake_t *wake);
static ngx_uint_t ngx_http_perstack_limit_same_key(
    ngx_http_perstack_limit_zone_t *zone, uint32_t hash, u_char *key,
    size_t len);
static ngx_http_perstack_slot_t *ngx_http_perstack_limit_slot_alloc(
    ngx_http_perstack_limit_zone_t *zone, ngx_pid_t pid, uint64_t start,
    uint32_t hash, u_char *key, size_t len);
static void ngx_http_perstack_limit_slot_free(
    ngx_http_perstack_limit_zone_t *zone, ngx_http_perstack_slot_t *slot);
static void ngx_http_perstack_limit_take_granted(
    ngx_http_perstack_limit_zone_t *zone, ngx_http_perstack_waiter_t *w);
static void ngx_http_perstack_limit_leave(
    ngx_http_perstack_limit_zone_t *zone, ngx_http_perstack_waiter_t *w);
static ngx_uint_t ngx_http_perstack_limit_reclaim(
    ngx_http_perstack_limit_zone_t *zone);
static ngx_http_perstack_limit_zone_t *ngx_http_perstack_limit_next_zone(
    ngx_cycle_t *cycle, ngx_list_part_t **part, ngx_uint_t *i);
static void ngx_http_perstack_limit_wake_own(void);
static void ngx_http_perstack_limit_wait_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_perstack_limit_timeout(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx);
static void ngx_http_perstack_limit_wait_cleanup(void *data);
static ngx_int_t ngx_http_perstack_limit_refuse(ngx_http_request_t *r,
    ngx_http_perstack_limit_t *limit);


static ngx_uint_t         ngx_http_perstack_limit_waiter_id;


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


/*
 * For perstack_metrics: a zone's slots taken and requests queued, or
 * NGX_DECLINED for a zone that is not a perstack_limit_zone.
 */

ngx_int_t
ngx_http_perstack_limit_stats(ngx_shm_zone_t *shm_zone, ngx_str_t *name,
    ngx_uint_t *used, ngx_uint_t *waiting)
{
    ngx_http_perstack_limit_zone_t  *zone;

    if (shm_zone->init != ngx_http_perstack_limit_init_zone
        || shm_zone->data == NULL)
    {
        return NGX_DECLINED;
    }

    zone = shm_zone->data;
    *name = zone->name;

    ngx_shmtx_lock(&zone->shpool->mutex);
    *used = zone->sh->used;
    *waiting = zone->sh->waiting;
    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_OK;
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
    ngx_queue_init(&zone->sh->waiters);
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
 * NGX_OK: ctx->slot is taken.  NGX_AGAIN: queued; ctx->resume is called
 * with the slot taken, or a 429 is sent when queue_timeout passes.
 * NGX_DONE: refused with 429, the request is finalized.
 */

ngx_int_t
ngx_http_perstack_limit_acquire(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    ngx_int_t                        rc;
    ngx_str_t                        key;
    ngx_uint_t                       waiting;
    ngx_pool_cleanup_t              *cln;
    ngx_http_perstack_limit_t       *limit;
    ngx_http_perstack_loc_conf_t    *plcf;
    ngx_http_perstack_limit_zone_t  *zone;
    ngx_http_perstack_wake_t   wake;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);
    limit = plcf->limit;
    zone = limit->shm_zone->data;

    if (zone == NULL || zone->sh == NULL) {
        ngx_log_error(NGX_LOG_EMERG, r->connection->log, 0,
                      "perstack: unknown perstack_limit_zone \"%V\"",
                      &limit->shm_zone->shm.name);
        return NGX_ERROR;
    }

    if (ctx->waiter) {
        /* in the queue already: woken by a slot or by the timeout */
        return NGX_AGAIN;
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

    wake.n = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    rc = ngx_http_perstack_limit_enqueue(zone, limit, &key, ctx, &wake);
    waiting = zone->sh->waiting;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_perstack_wake_send(&wake);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_AGAIN) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "perstack: execution queued in zone \"%V\" "
                      "(%ui waiting)", &limit->shm_zone->shm.name, waiting);

        ngx_add_timer(&ctx->wait_ev, limit->queue_timeout);

        /* a client that leaves the queue is noticed, and gives back */
        r->read_event_handler = ngx_http_test_reading;

        return NGX_AGAIN;
    }

    return ngx_http_perstack_limit_refuse(r, limit);
}


/*
 * Under the zone's lock: the request joins the queue at its tail, and the
 * slots free go to the queue in order.  NGX_OK: it got one at once (no
 * one ahead wanted it); NGX_AGAIN: it waits; NGX_BUSY: no slot and no
 * room in the queue.
 */

static ngx_int_t
ngx_http_perstack_limit_enqueue(ngx_http_perstack_limit_zone_t *zone,
    ngx_http_perstack_limit_t *limit, ngx_str_t *key,
    ngx_http_perstack_ctx_t *ctx, ngx_http_perstack_wake_t *wake)
{
    ngx_http_perstack_waiter_t  *w;

    w = ngx_slab_alloc_locked(zone->shpool,
                              sizeof(ngx_http_perstack_waiter_t) + key->len);
    if (w == NULL) {
        return NGX_ERROR;
    }

    w->slot = NULL;
    w->ctx = ctx;
    w->id = ++ngx_http_perstack_limit_waiter_id;
    w->pid = ngx_pid;
    w->start = ngx_http_perstack_process_self();
    w->max = limit->max;
    w->per_key = limit->per_key;
    w->hash = ngx_crc32_short(key->data, key->len);
    w->len = (u_short) key->len;
    w->state = NGX_HTTP_PERSTACK_WAITER_WAITING;
    ngx_memcpy(w->key, key->data, key->len);

    ngx_queue_insert_tail(&zone->sh->waiters, &w->queue);
    zone->sh->waiting++;

    ngx_http_perstack_limit_dispatch(zone, w, wake);

    if (w->state != NGX_HTTP_PERSTACK_WAITER_GRANTED
        && ngx_http_perstack_limit_reclaim(zone))
    {
        ngx_http_perstack_limit_dispatch(zone, w, wake);
    }

    if (w->state == NGX_HTTP_PERSTACK_WAITER_GRANTED) {
        ctx->waiter = w;
        ngx_http_perstack_limit_take_granted(zone, w);
        return NGX_OK;
    }

    if (limit->queue && zone->sh->waiting <= limit->queue) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "perstack limit: waiter %P:%ui queued, %ui waiting",
                       w->pid, w->id, zone->sh->waiting);

        ctx->waiter = w;
        return NGX_AGAIN;
    }

    /* the last in the queue: its leaving frees nothing for the others */

    ngx_queue_remove(&w->queue);
    zone->sh->waiting--;
    ngx_slab_free_locked(zone->shpool, w);

    return NGX_BUSY;
}


/*
 * Under the zone's lock: the free slots go to the waiters in the order
 * they came.  A waiter that the total holds back holds back everyone
 * behind it; one whose key is full lets those of other keys pass, never
 * those of its own key (they find the key full as well).  The slot is
 * taken in the waiter's name (its worker's pid and start time), so that
 * it comes back if that worker dies before it picks the slot up.  self:
 * the request that is queueing now, which needs no wake-up.
 */

static void
ngx_http_perstack_limit_dispatch(ngx_http_perstack_limit_zone_t *zone,
    ngx_http_perstack_waiter_t *self, ngx_http_perstack_wake_t *wake)
{
    ngx_queue_t                 *q, *next;
    ngx_http_perstack_slot_t    *slot;
    ngx_http_perstack_waiter_t  *w;

    for (q = ngx_queue_head(&zone->sh->waiters);
         q != ngx_queue_sentinel(&zone->sh->waiters);
         q = next)
    {
        next = ngx_queue_next(q);
        w = ngx_queue_data(q, ngx_http_perstack_waiter_t, queue);

        if (w->state != NGX_HTTP_PERSTACK_WAITER_WAITING) {
            continue;
        }

        if (zone->sh->used >= w->max) {
            break;
        }

        if (w->per_key
            && ngx_http_perstack_limit_same_key(zone, w->hash, w->key, w->len)
               >= w->per_key)
        {
            continue;
        }

        if (ngx_http_perstack_process_gone(w->pid, w->start)) {
            /* its worker died: nobody would pick the slot up */
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                           "perstack limit: waiter %P:%ui of a worker that "
                           "exited dropped", w->pid, w->id);

            ngx_queue_remove(q);
            zone->sh->waiting--;
            ngx_slab_free_locked(zone->shpool, w);
            continue;
        }

        slot = ngx_http_perstack_limit_slot_alloc(zone, w->pid, w->start,
                                                  w->hash, w->key, w->len);
        if (slot == NULL) {
            /* no memory: the waiter ends with its timeout */
            break;
        }

        w->slot = slot;
        w->state = NGX_HTTP_PERSTACK_WAITER_GRANTED;
        zone->sh->waiting--;

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "perstack limit: slot granted to waiter %P:%ui, "
                       "%ui used", w->pid, w->id, zone->sh->used);

        if (w != self) {
            ngx_http_perstack_wake_add(wake, w->pid, w->start);
        }
    }
}


/* under the zone's lock: the slots taken with this key */

static ngx_uint_t
ngx_http_perstack_limit_same_key(ngx_http_perstack_limit_zone_t *zone,
    uint32_t hash, u_char *key, size_t len)
{
    ngx_uint_t                 same;
    ngx_queue_t               *q;
    ngx_http_perstack_slot_t  *slot;

    same = 0;

    for (q = ngx_queue_head(&zone->sh->slots);
         q != ngx_queue_sentinel(&zone->sh->slots);
         q = ngx_queue_next(q))
    {
        slot = ngx_queue_data(q, ngx_http_perstack_slot_t, queue);

        if (slot->hash == hash && slot->len == len
            && ngx_memcmp(slot->key, key, len) == 0)
        {
            same++;
        }
    }

    return same;
}


/* under the zone's lock */

static ngx_http_perstack_slot_t *
ngx_http_perstack_limit_slot_alloc(ngx_http_perstack_limit_zone_t *zone,
    ngx_pid_t pid, uint64_t start, uint32_t hash, u_char *key, size_t len)
{
    ngx_http_perstack_slot_t  *slot;

    slot = ngx_slab_alloc_locked(zone->shpool,
                                 sizeof(ngx_http_perstack_slot_t) + len);
    if (slot == NULL) {
        return NULL;
    }

    slot->zone = NULL;
    slot->pid = pid;
    slot->start = start;
    slot->hash = hash;
    slot->len = (u_short) len;
    ngx_memcpy(slot->key, key, len);

    ngx_queue_insert_tail(&zone->sh->slots, &slot->queue);
    zone->sh->used++;

    return slot;
}


/* under the zone's lock */

static void
ngx_http_perstack_limit_slot_free(ngx_http_perstack_limit_zone_t *zone,
    ngx_http_perstack_slot_t *slot)
{
    ngx_queue_remove(&slot->queue);
    zone->sh->used--;
    ngx_slab_free_locked(zone->shpool, slot);
}


/* Under the zone's lock: a waiter of this worker takes its slot. */

static void
ngx_http_perstack_limit_take_granted(ngx_http_perstack_limit_zone_t *zone,
    ngx_http_perstack_waiter_t *w)
{
    ngx_http_perstack_ctx_t  *ctx;

    ctx = w->ctx;

    ctx->slot = w->slot;
    ctx->slot->zone = zone;
    ctx->waiter = NULL;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "perstack limit: waiter %P:%ui took its slot",
                   w->pid, w->id);

    ngx_queue_remove(&w->queue);
    ngx_slab_free_locked(zone->shpool, w);
}


/*
 * Under the zone's lock: a waiter leaves the queue (its client went, its
 * timeout passed, its worker exits); a slot taken in its name goes back.
 */

static void
ngx_http_perstack_limit_leave(ngx_http_perstack_limit_zone_t *zone,
    ngx_http_perstack_waiter_t *w)
{
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "perstack limit: waiter %P:%ui leaves the queue%s",
                   w->pid, w->id,
                   w->state == NGX_HTTP_PERSTACK_WAITER_GRANTED
                   ? " and its slot" : "");

    if (w->state == NGX_HTTP_PERSTACK_WAITER_GRANTED) {
        ngx_http_perstack_limit_slot_free(zone, w->slot);

    } else {
        zone->sh->waiting--;
    }

    ngx_queue_remove(&w->queue);
    ngx_slab_free_locked(zone->shpool, w);
}


/*
 * Under the zone's lock: the slots and the queue places of workers that
 * are gone.  A worker killed by a signal cannot give them back itself.
 * A slot granted to a dead worker's waiter is in its name: it goes with
 * the slots.
 */

static ngx_uint_t
ngx_http_perstack_limit_reclaim(ngx_http_perstack_limit_zone_t *zone)
{
    ngx_uint_t                   n, dropped;
    ngx_queue_t                 *q, *next;
    ngx_http_perstack_slot_t    *slot;
    ngx_http_perstack_waiter_t  *w;

    dropped = 0;

    for (q = ngx_queue_head(&zone->sh->waiters);
         q != ngx_queue_sentinel(&zone->sh->waiters);
         q = next)
    {
        next = ngx_queue_next(q);
        w = ngx_queue_data(q, ngx_http_perstack_waiter_t, queue);

        if (!ngx_http_perstack_process_gone(w->pid, w->start)) {
            continue;
        }

        if (w->state == NGX_HTTP_PERSTACK_WAITER_WAITING) {
            zone->sh->waiting--;
        }

        ngx_queue_remove(q);
        ngx_slab_free_locked(zone->shpool, w);
        dropped++;
    }

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

        ngx_http_perstack_limit_slot_free(zone, slot);
        n++;
    }

    if (n) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "perstack: gave back %ui execution slot(s) of a worker "
                      "that exited", n);
    }

    if (dropped) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "perstack: dropped %ui queued request(s) of a worker "
                      "that exited", dropped);
    }

    return n;
}


void
ngx_http_perstack_limit_release(ngx_http_perstack_slot_t *slot)
{
    ngx_http_perstack_limit_zone_t  *zone;
    ngx_http_perstack_wake_t   wake;

    zone = slot->zone;
    wake.n = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_http_perstack_limit_slot_free(zone, slot);
    ngx_http_perstack_limit_dispatch(zone, NULL, &wake);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_perstack_wake_send(&wake);
}


/*
 * A new worker makes its wake-up socket and gives back what a worker that
 * died held; the slots go to the queue.
 */

void
ngx_http_perstack_limit_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i;
    ngx_list_part_t                 *part;
    ngx_http_perstack_limit_zone_t  *zone;
    ngx_http_perstack_wake_t   wake;

    part = NULL;
    i = 0;

    while ((zone = ngx_http_perstack_limit_next_zone(cycle, &part, &i))) {

        /* once, if the module has a limit zone */
        ngx_http_perstack_wake_init(cycle, ngx_http_perstack_limit_wake_own);

        wake.n = 0;

        ngx_shmtx_lock(&zone->shpool->mutex);

        if (ngx_http_perstack_limit_reclaim(zone)) {
            ngx_http_perstack_limit_dispatch(zone, NULL, &wake);
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_http_perstack_wake_send(&wake);
    }
}


/*
 * A worker that exits gives back the queue places it still has (a fast
 * stop does not finalize its requests), and closes its socket.
 */

void
ngx_http_perstack_limit_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i, n;
    ngx_queue_t                     *q, *next;
    ngx_list_part_t                 *part;
    ngx_http_perstack_waiter_t      *w;
    ngx_http_perstack_limit_zone_t  *zone;
    ngx_http_perstack_wake_t   wake;

    part = NULL;
    i = 0;

    while ((zone = ngx_http_perstack_limit_next_zone(cycle, &part, &i))) {

        wake.n = 0;
        n = 0;

        ngx_shmtx_lock(&zone->shpool->mutex);

        for (q = ngx_queue_head(&zone->sh->waiters);
             q != ngx_queue_sentinel(&zone->sh->waiters);
             q = next)
        {
            next = ngx_queue_next(q);
            w = ngx_queue_data(q, ngx_http_perstack_waiter_t, queue);

            if (w->pid == ngx_pid
                && w->start == ngx_http_perstack_process_self())
            {
                w->ctx->waiter = NULL;
                ngx_http_perstack_limit_leave(zone, w);
                n++;
            }
        }

        if (n) {
            ngx_http_perstack_limit_dispatch(zone, NULL, &wake);
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_http_perstack_wake_send(&wake);
    }

    ngx_http_perstack_wake_exit();
}


/* The module's limit zones, one after the other; *part NULL at first. */

static ngx_http_perstack_limit_zone_t *
ngx_http_perstack_limit_next_zone(ngx_cycle_t *cycle, ngx_list_part_t **part,
    ngx_uint_t *i)
{
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_perstack_limit_zone_t  *zone;

    if (*part == NULL) {
        *part = &cycle->shared_memory.part;
        *i = 0;

    } else {
        (*i)++;
    }

    for ( ;; ) {

        if (*i >= (*part)->nelts) {
            if ((*part)->next == NULL) {
                return NULL;
            }

            *part = (*part)->next;
            *i = 0;
            continue;
        }

        shm_zone = (ngx_shm_zone_t *) (*part)->elts + *i;
        zone = shm_zone->data;

        /* the module's other zones (metrics, gateways) are not limits */
        if (shm_zone->init == ngx_http_perstack_limit_init_zone
            && zone != NULL && zone->sh != NULL)
        {
            return zone;
        }

        (*i)++;
    }
}


/*
 * Every slot handed to a waiter of this worker, in every zone: the
 * waiter takes it, and its request moves on from a posted event.
 */

static void
ngx_http_perstack_limit_wake_own(void)
{
    uint64_t                         self;
    ngx_uint_t                       i;
    ngx_queue_t                     *q, *next;
    ngx_list_part_t                 *part;
    ngx_http_perstack_ctx_t         *ctx;
    ngx_http_perstack_waiter_t      *w;
    ngx_http_perstack_limit_zone_t  *zone;

    self = ngx_http_perstack_process_self();
    part = NULL;
    i = 0;

    while ((zone = ngx_http_perstack_limit_next_zone((ngx_cycle_t *) ngx_cycle,
                                                     &part, &i)))
    {
        ngx_shmtx_lock(&zone->shpool->mutex);

        for (q = ngx_queue_head(&zone->sh->waiters);
             q != ngx_queue_sentinel(&zone->sh->waiters);
             q = next)
        {
            next = ngx_queue_next(q);
            w = ngx_queue_data(q, ngx_http_perstack_waiter_t, queue);

            if (w->pid != ngx_pid || w->start != self
                || w->state != NGX_HTTP_PERSTACK_WAITER_GRANTED)
            {
                continue;
            }

            ctx = w->ctx;

            if (ctx->waiter != w) {
                ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                              "perstack: limit queue entry %ui of this "
                              "worker has no request", w->id);
                ngx_http_perstack_limit_leave(zone, w);
                continue;
            }

            ngx_http_perstack_limit_take_granted(zone, w);

            if (ctx->wait_ev.timer_set) {
                ngx_del_timer(&ctx->wait_ev);
            }

            ngx_post_event(&ctx->wait_ev, &ngx_posted_events);
        }

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

    if (ev->timedout) {
        ev->timedout = 0;

        if (ngx_http_perstack_limit_timeout(r, ctx) != NGX_OK) {
            ngx_http_run_posted_requests(c);
            return;
        }
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "perstack limit: admitted from the queue");

    /* the slot is the request's */
    ctx->resume(r, ctx);

    ngx_http_run_posted_requests(c);
}


/*
 * queue_timeout passed: a slot handed over meanwhile, whose wake-up has
 * not come, is taken still (NGX_OK); otherwise the request leaves the
 * queue and gets 429 (NGX_DONE).
 */

static ngx_int_t
ngx_http_perstack_limit_timeout(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    ngx_http_perstack_waiter_t      *w;
    ngx_http_perstack_loc_conf_t    *plcf;
    ngx_http_perstack_limit_zone_t  *zone;
    ngx_http_perstack_wake_t   wake;

    zone = ctx->zone;
    w = ctx->waiter;
    wake.n = 0;

    if (w) {
        ngx_shmtx_lock(&zone->shpool->mutex);

        if (w->state == NGX_HTTP_PERSTACK_WAITER_GRANTED) {
            ngx_http_perstack_limit_take_granted(zone, w);

        } else {
            ngx_http_perstack_limit_leave(zone, w);
            ctx->waiter = NULL;

            /* the others may have waited behind it for a smaller max */
            ngx_http_perstack_limit_dispatch(zone, NULL, &wake);
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_http_perstack_wake_send(&wake);
    }

    if (ctx->slot) {
        return NGX_OK;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    return ngx_http_perstack_limit_refuse(r, plcf->limit);
}


static void
ngx_http_perstack_limit_wait_cleanup(void *data)
{
    ngx_http_perstack_ctx_t  *ctx = data;

    ngx_http_perstack_limit_zone_t  *zone;
    ngx_http_perstack_wake_t   wake;

    zone = ctx->zone;

    if (ctx->wait_ev.timer_set) {
        ngx_del_timer(&ctx->wait_ev);
    }

    if (ctx->wait_ev.posted) {
        ngx_delete_posted_event(&ctx->wait_ev);
    }

    if (ctx->waiter) {
        wake.n = 0;

        ngx_shmtx_lock(&zone->shpool->mutex);

        ngx_http_perstack_limit_leave(zone, ctx->waiter);
        ngx_http_perstack_limit_dispatch(zone, NULL, &wake);

        ngx_shmtx_unlock(&zone->shpool->mutex);

        ctx->waiter = NULL;

        ngx_http_perstack_wake_send(&wake);
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
    ngx_str_t               message, extra;
    ngx_http_perstack_jw_t  jw;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "perstack: execution refused: limit of zone \"%V\" reached",
                  &limit->shm_zone->shm.name);

    if (ngx_http_perstack_add_header(r, "Retry-After", "1") == NULL) {
        return NGX_ERROR;
    }

    ngx_http_perstack_jw_pool(&jw, r->pool, 64);
    ngx_http_perstack_jw_raw(&jw, ",\"max\":");
    ngx_http_perstack_jw_uint(&jw, limit->max);

    if (limit->per_key) {
        ngx_http_perstack_jw_raw(&jw, ",\"per_key\":");
        ngx_http_perstack_jw_uint(&jw, limit->per_key);
    }

    if (ngx_http_perstack_jw_failed(&jw)) {
        return NGX_ERROR;
    }

    extra.data = jw.start;
    extra.len = ngx_http_perstack_jw_len(&jw);

    ngx_str_set(&message, "too many executions are running: try again");

    ngx_http_finalize_request(r,
            ngx_http_perstack_send_error_json(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                              "too_many_executions",
                                              &message, &extra));
    return NGX_DONE;
}
