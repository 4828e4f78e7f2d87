
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


/*
 * The module's counters.  One shared memory zone, made when the
 * configuration has perstack_execute or perstack_metrics, holds them for
 * all workers; a reload keeps it (same name, same size), so that the
 * counters go on across it as Prometheus expects of a counter.  Every
 * update is one atomic addition, but for a refusal's first sighting of a
 * (status, code) pair, which takes the zone's lock.  Running executions
 * are counted per worker, so that a worker that died stops counting.
 *
 * Labels are bounded: outcomes, status codes and error codes are the
 * module's own constants, Engine API operations a fixed list; never an
 * execution, a user or an expert.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_metrics.h"
#include "ngx_http_perstack_process.h"


#define NGX_HTTP_PERSTACK_METRICS_ZONE  "ngx_http_perstack_metrics"
#define NGX_HTTP_PERSTACK_METRICS_SIZE  (128 * 1024)

#define NGX_HTTP_PERSTACK_OUTCOMES      (NGX_HTTP_PERSTACK_OUTCOME_ABANDONED + 1)

/* distinct (status, error code) pairs of refusals; more go to "other" */
#define NGX_HTTP_PERSTACK_REFUSALS      64
#define NGX_HTTP_PERSTACK_CODE_MAX      32

#define NGX_HTTP_PERSTACK_OPS           9
/* 1xx .. 5xx, then timeout, error, cancelled */
#define NGX_HTTP_PERSTACK_RESULTS       8

#define NGX_HTTP_PERSTACK_BUCKETS_MAX   16


typedef struct {
    /* the last one counts what is above every bound: +Inf */
    ngx_atomic_t                     bucket[NGX_HTTP_PERSTACK_BUCKETS_MAX];
    ngx_atomic_t                     sum;        /* microseconds */
} ngx_http_perstack_histogram_t;


typedef struct {
    ngx_atomic_t                     count;
    ngx_uint_t                       status;
    u_char                           code[NGX_HTTP_PERSTACK_CODE_MAX];
} ngx_http_perstack_refusal_t;


typedef struct {
    ngx_pid_t                        pid;
    uint64_t                         start;
    ngx_atomic_t                     running;
} ngx_http_perstack_worker_count_t;


typedef struct {
    ngx_atomic_t                     started;
    ngx_atomic_t                     ended[NGX_HTTP_PERSTACK_OUTCOMES];
    ngx_atomic_t                     events;
    ngx_atomic_t                     bytes;

    ngx_http_perstack_histogram_t    ttfe;
    ngx_http_perstack_histogram_t    duration;

    ngx_atomic_t                     calls[NGX_HTTP_PERSTACK_OPS]
                                          [NGX_HTTP_PERSTACK_RESULTS];
    ngx_http_perstack_histogram_t    latency[NGX_HTTP_PERSTACK_OPS];

    ngx_atomic_t                     reaped;
    ngx_atomic_t                     reattached;

    /* as the last sweep found them, and grown since */
    ngx_atomic_t                     records;
    ngx_atomic_t                     record_bytes;

    ngx_uint_t                       nrefusals;
    /* refusals of pairs beyond the table */
    ngx_atomic_t                     refused_other;
    ngx_http_perstack_refusal_t      refusals[NGX_HTTP_PERSTACK_REFUSALS];

    ngx_http_perstack_worker_count_t  workers[NGX_MAX_PROCESSES];
} ngx_http_perstack_metrics_sh_t;


typedef struct {
    ngx_http_perstack_metrics_sh_t  *sh;
    ngx_slab_pool_t                 *shpool;
} ngx_http_perstack_metrics_zone_t;


typedef struct {
    const char                      *name;
    const char                      *help;
    /* upper bounds, in microseconds, ascending; +Inf is implied */
    const uint64_t                  *bounds;
    ngx_uint_t                       nbounds;
} ngx_http_perstack_histogram_def_t;


static ngx_int_t ngx_http_perstack_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_perstack_metrics_observe(
    ngx_http_perstack_histogram_t *h, const uint64_t *bounds,
    ngx_uint_t nbounds, uint64_t usec);
static ngx_uint_t ngx_http_perstack_metrics_op(const char *name);
static void ngx_http_perstack_metrics_histogram(
    ngx_http_perstack_metrics_text_t *text,
    const ngx_http_perstack_histogram_def_t *def,
    ngx_http_perstack_histogram_t *h, const char *label, ngx_uint_t first);
static u_char *ngx_http_perstack_metrics_seconds(u_char *p, uint64_t usec);


static const uint64_t  ngx_http_perstack_ttfe_bounds[] = {
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
    30000000, 60000000
};

static const uint64_t  ngx_http_perstack_duration_bounds[] = {
    1000000, 5000000, 10000000, 30000000, 60000000, 120000000,
    300000000, 600000000, 1800000000, 3600000000
};

static const uint64_t  ngx_http_perstack_latency_bounds[] = {
    1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
    2500000, 5000000, 10000000
};

static const ngx_http_perstack_histogram_def_t  ngx_http_perstack_ttfe_def = {
    "perstack_time_to_first_event_seconds",
    "Time from the request to the runtime's first line.",
    ngx_http_perstack_ttfe_bounds,
    sizeof(ngx_http_perstack_ttfe_bounds) / sizeof(uint64_t)
};

static const ngx_http_perstack_histogram_def_t
    ngx_http_perstack_duration_def =
{
    "perstack_execution_duration_seconds",
    "Time from an execution's start until it ended and its container was "
    "removed.",
    ngx_http_perstack_duration_bounds,
    sizeof(ngx_http_perstack_duration_bounds) / sizeof(uint64_t)
};

static const ngx_http_perstack_histogram_def_t
    ngx_http_perstack_latency_def =
{
    "perstack_engine_request_duration_seconds",
    "Engine API calls' time until the answer (a stream's: until its "
    "headers).",
    ngx_http_perstack_latency_bounds,
    sizeof(ngx_http_perstack_latency_bounds) / sizeof(uint64_t)
};

/* the names an Engine API call is made with, by operation */
static const char  *ngx_http_perstack_ops[NGX_HTTP_PERSTACK_OPS] = {
    "ping", "create", "attach", "start", "stop", "wait", "remove", "list",
    "other"
};

static const char  *ngx_http_perstack_results[NGX_HTTP_PERSTACK_RESULTS] = {
    "1xx", "2xx", "3xx", "4xx", "5xx", "timeout", "error", "cancelled"
};


/* this worker's view: NULL where no configuration made the zone */
static ngx_http_perstack_metrics_sh_t    *ngx_http_perstack_metrics;
static ngx_http_perstack_worker_count_t  *ngx_http_perstack_metrics_self;
static ngx_slab_pool_t                   *ngx_http_perstack_metrics_shpool;


ngx_shm_zone_t *
ngx_http_perstack_metrics_zone(ngx_conf_t *cf)
{
    ngx_str_t                          name;
    ngx_shm_zone_t                    *shm_zone;
    ngx_http_perstack_metrics_zone_t  *zone;

    ngx_str_set(&name, NGX_HTTP_PERSTACK_METRICS_ZONE);

    shm_zone = ngx_shared_memory_add(cf, &name, NGX_HTTP_PERSTACK_METRICS_SIZE,
                                     &ngx_http_perstack_module);
    if (shm_zone == NULL) {
        return NULL;
    }

    if (shm_zone->data) {
        /* the same configuration asked for it before */
        return shm_zone;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_perstack_metrics_zone_t));
    if (zone == NULL) {
        return NULL;
    }

    shm_zone->init = ngx_http_perstack_metrics_init_zone;
    shm_zone->data = zone;

    return shm_zone;
}


static ngx_int_t
ngx_http_perstack_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_perstack_metrics_zone_t  *ozone = data;

    size_t                             len;
    ngx_http_perstack_metrics_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        /* a reload: the counts go on */
        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;
        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;
        return NGX_OK;
    }

    zone->sh = ngx_slab_calloc(zone->shpool,
                               sizeof(ngx_http_perstack_metrics_sh_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    zone->shpool->data = zone->sh;

    len = sizeof(" in perstack metrics zone") - 1;

    zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len + 1);
    if (zone->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(zone->shpool->log_ctx, " in perstack metrics zone", len + 1);

    return NGX_OK;
}


/*
 * A worker takes the counter of running executions of its process slot,
 * which the master gives to no other process while this one lives.
 */

void
ngx_http_perstack_metrics_init_process(ngx_shm_zone_t *shm_zone)
{
    ngx_http_perstack_metrics_zone_t  *zone;
    ngx_http_perstack_worker_count_t  *w;

    ngx_http_perstack_metrics = NULL;
    ngx_http_perstack_metrics_self = NULL;
    ngx_http_perstack_metrics_shpool = NULL;

    if (shm_zone == NULL || shm_zone->data == NULL) {
        return;
    }

    zone = shm_zone->data;

    if (zone->sh == NULL
        || ngx_process_slot < 0 || ngx_process_slot >= NGX_MAX_PROCESSES)
    {
        return;
    }

    ngx_http_perstack_metrics = zone->sh;
    ngx_http_perstack_metrics_shpool = zone->shpool;

    w = &zone->sh->workers[ngx_process_slot];

    ngx_shmtx_lock(&zone->shpool->mutex);

    w->pid = ngx_pid;
    w->start = ngx_http_perstack_process_self();
    w->running = 0;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_perstack_metrics_self = w;
}


void
ngx_http_perstack_metrics_started(void)
{
    if (ngx_http_perstack_metrics == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(&ngx_http_perstack_metrics->started, 1);

    if (ngx_http_perstack_metrics_self) {
        (void) ngx_atomic_fetch_add(&ngx_http_perstack_metrics_self->running,
                                    1);
    }
}


void
ngx_http_perstack_metrics_ended(ngx_uint_t outcome, ngx_msec_t duration)
{
    ngx_http_perstack_metrics_sh_t  *m;

    m = ngx_http_perstack_metrics;

    if (m == NULL) {
        return;
    }

    if (outcome == NGX_HTTP_PERSTACK_OUTCOME_NONE
        || outcome >= NGX_HTTP_PERSTACK_OUTCOMES)
    {
        /* an execution that ended with no word of how: the module's error */
        outcome = NGX_HTTP_PERSTACK_OUTCOME_ERROR;
    }

    (void) ngx_atomic_fetch_add(&m->ended[outcome], 1);

    if (ngx_http_perstack_metrics_self
        && ngx_http_perstack_metrics_self->running > 0)
    {
        (void) ngx_atomic_fetch_add(&ngx_http_perstack_metrics_self->running,
                                    (ngx_atomic_int_t) -1);
    }

    ngx_http_perstack_metrics_observe(&m->duration,
                                      ngx_http_perstack_duration_bounds,
                                      ngx_http_perstack_duration_def.nbounds,
                                      (uint64_t) duration * 1000);
}


void
ngx_http_perstack_metrics_first_event(ngx_msec_t ttfe)
{
    if (ngx_http_perstack_metrics == NULL) {
        return;
    }

    ngx_http_perstack_metrics_observe(&ngx_http_perstack_metrics->ttfe,
                                      ngx_http_perstack_ttfe_bounds,
                                      ngx_http_perstack_ttfe_def.nbounds,
                                      (uint64_t) ttfe * 1000);
}


void
ngx_http_perstack_metrics_relayed(uint64_t events, size_t bytes)
{
    if (ngx_http_perstack_metrics == NULL) {
        return;
    }

    if (events) {
        (void) ngx_atomic_fetch_add(&ngx_http_perstack_metrics->events,
                                    (ngx_atomic_int_t) events);
    }

    (void) ngx_atomic_fetch_add(&ngx_http_perstack_metrics->bytes,
                                (ngx_atomic_int_t) bytes);
}


/*
 * A request answered with an error before any stream: by status and the
 * body's "error".  The pairs are the module's own constants, so there are
 * few; a pair first seen takes a place in the table under the lock.
 */

void
ngx_http_perstack_metrics_refused(ngx_uint_t status, const char *code)
{
    size_t                            len;
    ngx_uint_t                        i, n;
    ngx_slab_pool_t                  *shpool;
    ngx_http_perstack_refusal_t      *rf;
    ngx_http_perstack_metrics_sh_t   *m;

    m = ngx_http_perstack_metrics;

    if (m == NULL) {
        return;
    }

    len = ngx_strlen(code);

    if (len >= NGX_HTTP_PERSTACK_CODE_MAX) {
        code = "other";
        len = sizeof("other") - 1;
    }

    /* the places taken are never given back or changed: no lock to look */

    n = m->nrefusals;
    ngx_memory_barrier();

    for (i = 0; i < n; i++) {
        rf = &m->refusals[i];

        if (rf->status == status
            && ngx_strcmp(rf->code, (u_char *) code) == 0)
        {
            (void) ngx_atomic_fetch_add(&rf->count, 1);
            return;
        }
    }

    shpool = ngx_http_perstack_metrics_shpool;

    ngx_shmtx_lock(&shpool->mutex);

    rf = NULL;

    for (i = 0; i < m->nrefusals; i++) {
        if (m->refusals[i].status == status
            && ngx_strcmp(m->refusals[i].code, (u_char *) code) == 0)
        {
            rf = &m->refusals[i];
            break;
        }
    }

    if (rf == NULL) {
        if (m->nrefusals < NGX_HTTP_PERSTACK_REFUSALS) {
            rf = &m->refusals[m->nrefusals];
            rf->status = status;
            ngx_memcpy(rf->code, code, len + 1);

            ngx_memory_barrier();
            m->nrefusals++;

        } else {
            (void) ngx_atomic_fetch_add(&m->refused_other, 1);
        }
    }

    if (rf) {
        (void) ngx_atomic_fetch_add(&rf->count, 1);
    }

    ngx_shmtx_unlock(&shpool->mutex);
}


/*
 * An Engine API call, once: its operation is the last word of the name it
 * was made with ("create", "reaper remove"), its result the answer's
 * status class or why there was none.
 */

void
ngx_http_perstack_metrics_engine(const char *name, ngx_uint_t result,
    long status, uint64_t usec)
{
    ngx_uint_t                       op, r;
    ngx_http_perstack_metrics_sh_t  *m;

    m = ngx_http_perstack_metrics;

    if (m == NULL) {
        return;
    }

    op = ngx_http_perstack_metrics_op(name);

    switch (result) {

    case NGX_HTTP_PERSTACK_CALL_OK:
        if (status >= 100 && status < 600) {
            r = status / 100 - 1;

        } else {
            r = 6;
        }

        break;

    case NGX_HTTP_PERSTACK_CALL_TIMEOUT:
        r = 5;
        break;

    case NGX_HTTP_PERSTACK_CALL_CANCELLED:
        r = 7;
        break;

    default:
        r = 6;
    }

    (void) ngx_atomic_fetch_add(&m->calls[op][r], 1);

    if (result != NGX_HTTP_PERSTACK_CALL_CANCELLED) {
        ngx_http_perstack_metrics_observe(&m->latency[op],
                                          ngx_http_perstack_latency_bounds,
                                          ngx_http_perstack_latency_def.nbounds,
                                          usec);
    }
}


static ngx_uint_t
ngx_http_perstack_metrics_op(const char *name)
{
    const char  *p;
    ngx_uint_t   i;

    p = strrchr(name, ' ');
    p = p ? p + 1 : name;

    for (i = 0; i < NGX_HTTP_PERSTACK_OPS - 1; i++) {
        if (ngx_strcmp(p, ngx_http_perstack_ops[i]) == 0) {
            return i;
        }
    }

    return NGX_HTTP_PERSTACK_OPS - 1;
}


void
ngx_http_perstack_metrics_reaped(void)
{
    if (ngx_http_perstack_metrics) {
        (void) ngx_atomic_fetch_add(&ngx_http_perstack_metrics->reaped, 1);
    }
}


void
ngx_http_perstack_metrics_reattached(void)
{
    if (ngx_http_perstack_metrics) {
        (void) ngx_atomic_fetch_add(&ngx_http_perstack_metrics->reattached, 1);
    }
}


/*
 * The records: each sweep says how many there are and how much their
 * streams hold; between sweeps, what is written adds to it.
 */

void
ngx_http_perstack_metrics_record_added(void)
{
    if (ngx_http_perstack_metrics) {
        (void) ngx_atomic_fetch_add(&ngx_http_perstack_metrics->records, 1);
    }
}


void
ngx_http_perstack_metrics_record_grew(size_t bytes)
{
    if (ngx_http_perstack_metrics) {
        (void) ngx_atomic_fetch_add(&ngx_http_perstack_metrics->record_bytes,
                                    (ngx_atomic_int_t) bytes);
    }
}


void
ngx_http_perstack_metrics_records(uint64_t count, uint64_t bytes)
{
    if (ngx_http_perstack_metrics) {
        ngx_http_perstack_metrics->records = (ngx_atomic_uint_t) count;
        ngx_http_perstack_metrics->record_bytes = (ngx_atomic_uint_t) bytes;
    }
}


static void
ngx_http_perstack_metrics_observe(ngx_http_perstack_histogram_t *h,
    const uint64_t *bounds, ngx_uint_t nbounds, uint64_t usec)
{
    ngx_uint_t  i;

    for (i = 0; i < nbounds; i++) {
        if (usec <= bounds[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&h->bucket[i], 1);
    (void) ngx_atomic_fetch_add(&h->sum, (ngx_atomic_int_t) usec);
}


/*
 * The exposition of the counters, in Prometheus' text format.  Every
 * outcome and every operation's series is there from the start, at 0, so
 * that rate() sees the first one.
 */

ngx_int_t
ngx_http_perstack_metrics_write(ngx_http_perstack_metrics_text_t *text,
    ngx_http_perstack_metrics_name_pt outcome_name)
{
    ngx_uint_t                        i, j, running;
    ngx_atomic_uint_t                 ended;
    ngx_http_perstack_refusal_t      *rf;
    ngx_http_perstack_metrics_sh_t   *m;
    ngx_http_perstack_worker_count_t *w;
    u_char                            label[64];

    m = ngx_http_perstack_metrics;

    if (m == NULL) {
        return NGX_DECLINED;
    }

    ngx_http_perstack_metrics_printf(text,
        "# HELP perstack_executions_started_total Executions started "
        "(a container asked for).\n"
        "# TYPE perstack_executions_started_total counter\n"
        "perstack_executions_started_total %uA\n",
        m->started);

    ngx_http_perstack_metrics_printf(text,
        "# HELP perstack_executions_ended_total Executions ended, by how "
        "they ended (perstack.end's outcome).\n"
        "# TYPE perstack_executions_ended_total counter\n");

    for (i = 1; i < NGX_HTTP_PERSTACK_OUTCOMES; i++) {
        ended = m->ended[i];
        ngx_http_perstack_metrics_printf(text,
            "perstack_executions_ended_total{outcome=\"%s\"} %uA\n",
            outcome_name(i), ended);
    }

    /* the workers alive: a worker that died takes its count with it */

    running = 0;

    for (i = 0; i < NGX_MAX_PROCESSES; i++) {
        w = &m->workers[i];

        if (w->pid == 0 || w->running == 0) {
            continue;
        }

        if (ngx_http_perstack_process_gone(w->pid, w->start)) {
            continue;
        }

        running += w->running;
    }

    ngx_http_perstack_metrics_printf(text,
        "# HELP perstack_executions_running Executions running now, in the "
        "workers alive.\n"
        "# TYPE perstack_executions_running gauge\n"
        "perstack_executions_running %ui\n", running);

    ngx_http_perstack_metrics_printf(text,
        "# HELP perstack_requests_refused_total Requests answered with an "
        "error before a stream, by status and error code.\n"
        "# TYPE perstack_requests_refused_total counter\n");

    j = m->nrefusals;
    ngx_memory_barrier();

    for (i = 0; i < j; i++) {
        rf = &m->refusals[i];
        ngx_http_perstack_metrics_printf(text,
            "perstack_requests_refused_total{status=\"%ui\",error=\"%s\"} "
            "%uA\n", rf->status, rf->code, rf->count);
    }

    if (m->refused_other) {
        ngx_http_perstack_metrics_printf(text,
            "perstack_requests_refused_total{status=\"other\","
            "error=\"other\"} %uA\n", m->refused_other);
    }

    ngx_http_perstack_metrics_histogram(text, &ngx_http_perstack_ttfe_def,
                                        &m->ttfe, NULL, 1);
    ngx_http_perstack_metrics_histogram(text, &ngx_http_perstack_duration_def,
                                        &m->duration, NULL, 1);

    ngx_http_perstack_metrics_printf(text,
        "# HELP perstack_events_total Events sent to clients (and records), "
        "the module's own included.\n"
        "# TYPE perstack_events_total counter\n"
        "perstack_events_total %uA\n"
        "# HELP perstack_event_bytes_total Bytes of those events, as framed "
        "on the stream.\n"
        "# TYPE perstack_event_bytes_total counter\n"
        "perstack_event_bytes_total %uA\n",
        m->events, m->bytes);

    ngx_http_perstack_metrics_printf(text,
        "# HELP perstack_engine_requests_total Engine API calls, by "
        "operation and result.\n"
        "# TYPE perstack_engine_requests_total counter\n");

    for (i = 0; i < NGX_HTTP_PERSTACK_OPS; i++) {
        for (j = 0; j < NGX_HTTP_PERSTACK_RESULTS; j++) {
            if (m->calls[i][j] == 0 && j != 1) {
                /* 2xx always, the others once they happened */
                continue;
            }

            ngx_http_perstack_metrics_printf(text,
                "perstack_engine_requests_total{operation=\"%s\","
                "result=\"%s\"} %uA\n", ngx_http_perstack_ops[i],
                ngx_http_perstack_results[j], m->calls[i][j]);
        }
    }

    for (i = 0; i < NGX_HTTP_PERSTACK_OPS; i++) {
        ngx_snprintf(label, sizeof(label), "operation=\"%s\"%Z",
                     ngx_http_perstack_ops[i]);

        ngx_http_perstack_metrics_histogram(text,
                                            &ngx_http_perstack_latency_def,
                                            &m->latency[i],
                                            (const char *) label, i == 0);
    }

    ngx_http_perstack_metrics_printf(text,
        "# HELP perstack_reaper_removed_total Containers the reaper removed "
        "(left by a worker that died, or a removal that failed).\n"
        "# TYPE perstack_reaper_removed_total counter\n"
        "perstack_reaper_removed_total %uA\n"
        "# HELP perstack_records Executions' records kept on disk.\n"
        "# TYPE perstack_records gauge\n"
        "perstack_records %uA\n"
        "# HELP perstack_record_bytes Bytes of the records' streams.\n"
        "# TYPE perstack_record_bytes gauge\n"
        "perstack_record_bytes %uA\n"
        "# HELP perstack_reattachments_total Requests that followed an "
        "execution from its record (resumed).\n"
        "# TYPE perstack_reattachments_total counter\n"
        "perstack_reattachments_total %uA\n",
        m->reaped, m->records, m->record_bytes, m->reattached);

    return text->failed ? NGX_ERROR : NGX_OK;
}


/* A histogram's series; the first of its family has its HELP and TYPE. */

static void
ngx_http_perstack_metrics_histogram(ngx_http_perstack_metrics_text_t *text,
    const ngx_http_perstack_histogram_def_t *def,
    ngx_http_perstack_histogram_t *h, const char *label, ngx_uint_t first)
{
    u_char             *p;
    ngx_uint_t          i;
    ngx_atomic_uint_t   count, sum;
    u_char              le[NGX_INT64_LEN + 8];
    u_char              s[NGX_INT64_LEN + 8];

    if (first) {
        ngx_http_perstack_metrics_printf(text,
                                         "# HELP %s %s\n# TYPE %s histogram\n",
                                         def->name, def->help, def->name);
    }

    count = 0;

    for (i = 0; i < def->nbounds; i++) {
        count += h->bucket[i];

        p = ngx_http_perstack_metrics_seconds(le, def->bounds[i]);
        *p = '\0';

        ngx_http_perstack_metrics_printf(text, "%s_bucket{%s%sle=\"%s\"} %uA\n",
                                         def->name, label ? label : "",
                                         label ? "," : "", le, count);
    }

    count += h->bucket[def->nbounds];
    sum = h->sum;

    p = ngx_http_perstack_metrics_seconds(s, sum);
    *p = '\0';

    ngx_http_perstack_metrics_printf(text,
                                     "%s_bucket{%s%sle=\"+Inf\"} %uA\n"
                                     "%s_sum%s%s%s %s\n"
                                     "%s_count%s%s%s %uA\n",
                                     def->name, label ? label : "",
                                     label ? "," : "", count,
                                     def->name, label ? "{" : "",
                                     label ? label : "", label ? "}" : "", s,
                                     def->name, label ? "{" : "",
                                     label ? label : "", label ? "}" : "",
                                     count);
}


/* microseconds as seconds: "0.005", "2.5", "60" */

static u_char *
ngx_http_perstack_metrics_seconds(u_char *p, uint64_t usec)
{
    uint64_t  frac;
    u_char    digits[6];
    size_t    n;

    p = ngx_sprintf(p, "%uL", usec / 1000000);

    frac = usec % 1000000;

    if (frac == 0) {
        return p;
    }

    for (n = 6; n > 0; n--) {
        digits[n - 1] = (u_char) ('0' + frac % 10);
        frac /= 10;
    }

    for (n = 6; n > 0 && digits[n - 1] == '0'; n--) {
        /* void */
    }

    *p++ = '.';

    return ngx_cpymem(p, digits, n);
}


/* One more piece of the text; a line never crosses two buffers. */

void
ngx_http_perstack_metrics_printf(ngx_http_perstack_metrics_text_t *text,
    const char *fmt, ...)
{
    u_char       *p;
    size_t        size;
    va_list       args;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (text->failed) {
        return;
    }

    for ( ;; ) {
        b = text->buf;

        if (b && b->end - b->last > 1) {
            va_start(args, fmt);
            p = ngx_vslprintf(b->last, b->end, fmt, args);
            va_end(args);

            if (p < b->end) {
                b->last = p;
                return;
            }

            if (b->last != b->start) {
                /* did not fit: again, in a buffer of its own */
                goto next;
            }

            /* longer than a whole buffer: no text of ours is */
            text->failed = 1;
            return;
        }

    next:

        size = 4096;

        b = ngx_create_temp_buf(text->pool, size);
        cl = ngx_alloc_chain_link(text->pool);

        if (b == NULL || cl == NULL) {
            text->failed = 1;
            return;
        }

        cl->buf = b;
        cl->next = NULL;

        *text->last = cl;
        text->last = &cl->next;
        text->buf = b;
    }
}
