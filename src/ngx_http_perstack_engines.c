
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Engine groups (perstack_engines), in the manner of nginx's upstream
 * blocks: routing, not scheduling.  A new execution goes to the engine of
 * the group with the fewest executions of this nginx running on it, by
 * weight; ties go round.  An engine that fails /_ping, or a create that
 * did not reach it, is down for fail_timeout, and the execution tries the
 * next one.  A continued job goes to the engine that ran it, named in
 * the job's record, unless the workspaces are shared.
 *
 * The counts live in a shared memory zone of the group's own, which a
 * reload keeps: each engine has a slot found by its name, each worker a
 * row of running counts of its own that only it writes, so that nobody
 * locks.  A worker that died leaves its row behind; the next worker that
 * starts, the one started in its place first, takes the row and clears it.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_engines.h"
#include "ngx_http_perstack_docker.h"
#include "ngx_http_perstack_process.h"


#define NGX_HTTP_PERSTACK_ENGINES_ZONE  (64 * 1024)


struct ngx_http_perstack_engines_worker_s {
    ngx_atomic_t                     pid;        /* 0: free */
    uint64_t                         start;
    uint32_t                         running[NGX_HTTP_PERSTACK_ENGINES_MAX];
};


typedef struct {
    uint32_t                         key;        /* its name's crc32 */
    ngx_uint_t                       used;
    ngx_atomic_t                     down_until; /* ngx_time() */
    ngx_atomic_t                     executions;
    ngx_atomic_t                     failures;
} ngx_http_perstack_engine_sh_t;


struct ngx_http_perstack_engines_sh_s {
    ngx_atomic_t                     next;       /* where ties begin */
    ngx_http_perstack_engine_sh_t    engine[NGX_HTTP_PERSTACK_ENGINES_MAX];
    ngx_http_perstack_engines_worker_t
                                 worker[NGX_HTTP_PERSTACK_ENGINES_WORKERS];
};


static char *ngx_http_perstack_engines_line(ngx_conf_t *cf,
    ngx_command_t *dummy, void *conf);
static char *ngx_http_perstack_engines_engine(ngx_conf_t *cf,
    ngx_http_perstack_engines_t *group, ngx_str_t *value, ngx_uint_t n);
static ngx_int_t ngx_http_perstack_engines_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static ngx_uint_t ngx_http_perstack_engines_running(
    ngx_http_perstack_engines_sh_t *sh, ngx_uint_t slot);


/*
 * perstack_engines name { engine URL [weight=N] [max=N] [ssl_*=...];
 * fail_timeout time; shared_workspaces on|off; }
 */

char *
ngx_http_perstack_engines_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char                           *rv;
    ngx_str_t                      *value, name;
    ngx_conf_t                      save;
    ngx_http_perstack_engines_t    *group;
    ngx_http_perstack_main_conf_t  *pmcf;

    value = cf->args->elts;

    if (!ngx_http_perstack_engines_name(&value[1])) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid perstack_engines name \"%V\": letters, "
                           "digits, \"_\" and \"-\" only", &value[1]);
        return NGX_CONF_ERROR;
    }

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_perstack_module);

    group = ngx_http_perstack_engines_ref(cf, &pmcf->engine_groups,
                                          &value[1]);
    if (group == NULL) {
        return NGX_CONF_ERROR;
    }

    if (group->defined) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate perstack_engines \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    group->defined = 1;
    group->fail_timeout = 10;

    if (ngx_array_init(&group->engines, cf->pool, 4,
                       sizeof(ngx_http_perstack_engine_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    save = *cf;
    cf->handler = ngx_http_perstack_engines_line;
    cf->handler_conf = (char *) group;

    rv = ngx_conf_parse(cf, NULL);

    *cf = save;

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (group->engines.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no engine in perstack_engines \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.len = sizeof("perstack_engines:") - 1 + group->name.len;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(name.data, "perstack_engines:%V", &group->name);

    group->shm_zone = ngx_shared_memory_add(cf, &name,
                                            NGX_HTTP_PERSTACK_ENGINES_ZONE,
                                            &ngx_http_perstack_module);
    if (group->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (group->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "shared memory \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    group->shm_zone->init = ngx_http_perstack_engines_init_zone;
    group->shm_zone->data = group;

    return NGX_CONF_OK;
}


static char *
ngx_http_perstack_engines_line(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf)
{
    ngx_http_perstack_engines_t *group = (ngx_http_perstack_engines_t *) conf;

    ngx_str_t   *value;
    ngx_int_t    n;
    ngx_uint_t   nargs;

    value = cf->args->elts;
    nargs = cf->args->nelts;

    if (nargs >= 2 && ngx_strcmp(value[0].data, "engine") == 0) {
        return ngx_http_perstack_engines_engine(cf, group, &value[1],
                                                nargs - 1);
    }

    if (nargs == 2 && ngx_strcmp(value[0].data, "fail_timeout") == 0) {
        n = ngx_parse_time(&value[1], 1);
        if (n == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid fail_timeout \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        group->fail_timeout = (time_t) n;
        return NGX_CONF_OK;
    }

    if (nargs == 2 && ngx_strcmp(value[0].data, "shared_workspaces") == 0) {
        if (ngx_strcmp(value[1].data, "on") == 0) {
            group->shared_workspaces = 1;

        } else if (ngx_strcmp(value[1].data, "off") == 0) {
            group->shared_workspaces = 0;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"shared_workspaces\""
                               ", it must be \"on\" or \"off\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown or invalid \"%V\" in perstack_engines: "
                       "expected \"engine URL [parameters]\", "
                       "\"fail_timeout time\" or \"shared_workspaces on|off\"",
                       &value[0]);

    return NGX_CONF_ERROR;
}


/* engine URL [weight=N] [max=N] [ssl_certificate=F ...] */

static char *
ngx_http_perstack_engines_engine(ngx_conf_t *cf,
    ngx_http_perstack_engines_t *group, ngx_str_t *value, ngx_uint_t n)
{
    ngx_int_t                       v;
    ngx_str_t                      *args, s;
    ngx_uint_t                      i, k, weight, max;
    ngx_array_t                    *params;
    ngx_http_perstack_engine_t     *e, *engines;
    ngx_http_perstack_main_conf_t  *pmcf;

    if (group->engines.nelts == NGX_HTTP_PERSTACK_ENGINES_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many engines in perstack_engines \"%V\": "
                           "at most %d", &group->name,
                           NGX_HTTP_PERSTACK_ENGINES_MAX);
        return NGX_CONF_ERROR;
    }

    params = ngx_array_create(cf->temp_pool, n, sizeof(ngx_str_t));
    if (params == NULL) {
        return NGX_CONF_ERROR;
    }

    weight = 1;
    max = 0;

    for (i = 0; i < n; i++) {
        if (i > 0
            && (ngx_strncmp(value[i].data, "weight=", 7) == 0
                || ngx_strncmp(value[i].data, "max=", 4) == 0))
        {
            k = (value[i].data[0] == 'w') ? 7 : 4;

            v = ngx_atoi(value[i].data + k, value[i].len - k);

            if (v == NGX_ERROR || v == 0 || (k == 7 && v > 1000)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid parameter \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            if (k == 7) {
                weight = v;

            } else {
                max = v;
            }

            continue;
        }

        args = ngx_array_push(params);
        if (args == NULL) {
            return NGX_CONF_ERROR;
        }

        *args = value[i];
    }

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_perstack_module);

    e = ngx_array_push(&group->engines);
    if (e == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(e, sizeof(ngx_http_perstack_engine_t));

    e->docker = ngx_http_perstack_docker_add(cf, &pmcf->dockers,
                                             params->elts, params->nelts);
    if (e->docker == NULL) {
        return NGX_CONF_ERROR;
    }

    e->group = group;
    e->weight = weight;
    e->max = max;

    engines = group->engines.elts;

    for (i = 0; i + 1 < group->engines.nelts; i++) {
        if (engines[i].docker == e->docker) {
            s = e->docker->name;
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate engine \"%V\" in perstack_engines "
                               "\"%V\"", &s, &group->name);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* a group's name: letters, digits, '_' and '-' (an engine has a ':') */

ngx_uint_t
ngx_http_perstack_engines_name(ngx_str_t *name)
{
    u_char      c;
    ngx_uint_t  i;

    if (name->len == 0) {
        return 0;
    }

    for (i = 0; i < name->len; i++) {
        c = name->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * A group by name, made when first named: by its block, or by a
 * "perstack_docker name" that may come before it, as proxy_pass may
 * come before its upstream.
 */

ngx_http_perstack_engines_t *
ngx_http_perstack_engines_ref(ngx_conf_t *cf, ngx_array_t *groups,
    ngx_str_t *name)
{
    ngx_uint_t                     i;
    ngx_http_perstack_engines_t  **gp, *group;

    gp = groups->elts;

    for (i = 0; i < groups->nelts; i++) {
        if (gp[i]->name.len == name->len
            && ngx_strncmp(gp[i]->name.data, name->data, name->len) == 0)
        {
            return gp[i];
        }
    }

    group = ngx_pcalloc(cf->pool, sizeof(ngx_http_perstack_engines_t));
    if (group == NULL) {
        return NULL;
    }

    gp = ngx_array_push(groups);
    if (gp == NULL) {
        return NULL;
    }

    *gp = group;

    group->name = *name;
    group->file = cf->conf_file->file.name.data;
    group->line = cf->conf_file->line;

    return group;
}


/* every group a location named is defined */

ngx_int_t
ngx_http_perstack_engines_check(ngx_conf_t *cf, ngx_array_t *groups)
{
    ngx_uint_t                     i;
    ngx_http_perstack_engines_t  **gp;

    gp = groups->elts;

    for (i = 0; i < groups->nelts; i++) {
        if (!gp[i]->defined) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "no perstack_engines \"%V\" is defined for "
                          "\"perstack_docker\" in %s:%ui", &gp[i]->name,
                          gp[i]->file, gp[i]->line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Each engine keeps its slot across reloads: found by its name, or a
 * slot that no engine of the new configuration names and nobody runs on.
 */

static ngx_int_t
ngx_http_perstack_engines_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_perstack_engines_t *ogroup = data;

    uint32_t                         key;
    ngx_uint_t                       i, j, k;
    ngx_slab_pool_t                 *shpool;
    ngx_http_perstack_engine_t      *engines;
    ngx_http_perstack_engines_t     *group;
    ngx_http_perstack_engines_sh_t  *sh;

    group = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (ogroup) {
        sh = ogroup->sh;

    } else if (shm_zone->shm.exists) {
        sh = shpool->data;

    } else {
        sh = ngx_slab_alloc(shpool, sizeof(ngx_http_perstack_engines_sh_t));
        if (sh == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(sh, sizeof(ngx_http_perstack_engines_sh_t));
        shpool->data = sh;
    }

    group->sh = sh;

    engines = group->engines.elts;

    for (k = 0; k < NGX_HTTP_PERSTACK_ENGINES_MAX; k++) {
        sh->engine[k].used = 0;
    }

    /* the engines that had a slot keep it */

    for (i = 0; i < group->engines.nelts; i++) {
        key = ngx_crc32_short(engines[i].docker->name.data,
                              engines[i].docker->name.len);
        engines[i].slot = NGX_HTTP_PERSTACK_ENGINES_MAX;

        for (k = 0; k < NGX_HTTP_PERSTACK_ENGINES_MAX; k++) {
            if (sh->engine[k].key == key && !sh->engine[k].used) {
                sh->engine[k].used = 1;
                engines[i].slot = k;
                break;
            }
        }
    }

    /* the others get one nobody names and nobody runs on */

    for (i = 0; i < group->engines.nelts; i++) {
        if (engines[i].slot != NGX_HTTP_PERSTACK_ENGINES_MAX) {
            continue;
        }

        for (k = 0; k < NGX_HTTP_PERSTACK_ENGINES_MAX; k++) {
            if (!sh->engine[k].used
                && ngx_http_perstack_engines_running(sh, k) == 0)
            {
                break;
            }
        }

        if (k == NGX_HTTP_PERSTACK_ENGINES_MAX) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "perstack_engines \"%V\": no free slot for "
                          "\"%V\" while executions still run on the "
                          "engines it replaces", &group->name,
                          &engines[i].docker->name);
            return NGX_ERROR;
        }

        ngx_memzero(&sh->engine[k], sizeof(ngx_http_perstack_engine_sh_t));
        sh->engine[k].key = ngx_crc32_short(engines[i].docker->name.data,
                                            engines[i].docker->name.len);
        sh->engine[k].used = 1;
        engines[i].slot = k;

        for (j = 0; j < NGX_HTTP_PERSTACK_ENGINES_WORKERS; j++) {
            sh->worker[j].running[k] = 0;
        }
    }

    return NGX_OK;
}


/*
 * This worker's row in each group's zone.  The rows of workers that died
 * are cleared first: the worker started in place of one that died gives
 * back what it ran.
 */

void
ngx_http_perstack_engines_init_process(ngx_array_t *groups)
{
    uint64_t                             self;
    ngx_pid_t                            pid;
    ngx_uint_t                           i, j;
    ngx_http_perstack_engines_t        **gp;
    ngx_http_perstack_engines_worker_t  *w;

    self = ngx_http_perstack_process_self();
    gp = groups->elts;

    for (i = 0; i < groups->nelts; i++) {
        gp[i]->worker = NULL;

        for (j = 0; j < NGX_HTTP_PERSTACK_ENGINES_WORKERS; j++) {
            w = &gp[i]->sh->worker[j];
            pid = (ngx_pid_t) w->pid;

            if (pid != 0 && ngx_http_perstack_process_gone(pid, w->start)) {
                ngx_memzero(w->running, sizeof(w->running));
                (void) ngx_atomic_cmp_set(&w->pid, (ngx_atomic_uint_t) pid,
                                          0);
            }
        }

        for (j = 0; j < NGX_HTTP_PERSTACK_ENGINES_WORKERS; j++) {
            w = &gp[i]->sh->worker[j];

            if (w->pid == 0
                && ngx_atomic_cmp_set(&w->pid, 0,
                                      (ngx_atomic_uint_t) ngx_pid))
            {
                w->start = self;
                ngx_memzero(w->running, sizeof(w->running));
                gp[i]->worker = w;
                break;
            }
        }

        if (gp[i]->worker == NULL) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "perstack_engines \"%V\": more than %d workers, "
                          "this one's executions are not counted",
                          &gp[i]->name, NGX_HTTP_PERSTACK_ENGINES_WORKERS);
        }
    }
}


/* a worker that exits gives its row back */

void
ngx_http_perstack_engines_exit_process(ngx_array_t *groups)
{
    ngx_uint_t                     i;
    ngx_http_perstack_engines_t  **gp;

    gp = groups->elts;

    for (i = 0; i < groups->nelts; i++) {
        if (gp[i]->worker) {
            ngx_memzero(gp[i]->worker->running,
                        sizeof(gp[i]->worker->running));
            gp[i]->worker->pid = 0;
            gp[i]->worker = NULL;
        }
    }
}


static ngx_uint_t
ngx_http_perstack_engines_running(ngx_http_perstack_engines_sh_t *sh,
    ngx_uint_t slot)
{
    ngx_uint_t  j, n;

    n = 0;

    for (j = 0; j < NGX_HTTP_PERSTACK_ENGINES_WORKERS; j++) {
        if (sh->worker[j].pid) {
            n += sh->worker[j].running[slot];
        }
    }

    return n;
}


/*
 * The engine for an execution: the one named by affinity (the engine that
 * ran the job), or the one with the fewest running by weight, of those
 * not down, not tried and not full.  NGX_DECLINED: none, and why.
 */

ngx_int_t
ngx_http_perstack_engines_pick(ngx_http_perstack_exec_t *exec,
    ngx_http_perstack_engines_t *group, ngx_str_t *affinity,
    ngx_uint_t *status, const char **code, ngx_str_t *message)
{
    time_t                           now;
    ngx_uint_t                       i, k, n, start, running, best_running;
    ngx_uint_t                       down, full, only, tries;
    ngx_http_perstack_engine_t      *engines, *e, *best;
    ngx_http_perstack_engines_sh_t  *sh;

    sh = group->sh;
    engines = group->engines.elts;
    n = group->engines.nelts;
    now = ngx_time();

    only = n;

    if (affinity && affinity->len) {
        for (i = 0; i < n; i++) {
            if (engines[i].docker->name.len == affinity->len
                && ngx_strncmp(engines[i].docker->name.data, affinity->data,
                               affinity->len)
                   == 0)
            {
                only = i;
                break;
            }
        }

        if (only == n && !group->shared_workspaces) {
            *status = NGX_HTTP_SERVICE_UNAVAILABLE;
            *code = "engine_unavailable";
            ngx_str_set(message, "the engine that ran this job is not in "
                                 "this location's engines, and the "
                                 "workspaces are not shared");
            return NGX_DECLINED;
        }
    }

    start = ngx_atomic_fetch_add(&sh->next, 1);

    best = NULL;
    best_running = 0;
    down = 0;
    full = 0;

    /* the job's engine alone, or each from where this turn begins */
    tries = (only < n) ? 1 : n;

    for (k = 0; k < tries; k++) {
        i = (only < n) ? only : (start + k) % n;
        e = &engines[i];

        if (exec->engines_tried & (1u << i)) {
            continue;
        }

        if ((time_t) sh->engine[e->slot].down_until > now) {
            down++;
            continue;
        }

        running = ngx_http_perstack_engines_running(sh, e->slot);

        if (e->max && running >= e->max) {
            full++;
            continue;
        }

        /* running / weight, smallest first */

        if (best == NULL || running * best->weight < best_running * e->weight)
        {
            best = e;
            best_running = running;
        }
    }

    if (best == NULL && only < n && group->shared_workspaces) {
        /* the job's engine is down; the workspace is everywhere */
        exec->engines_tried |= 1u << only;
        return ngx_http_perstack_engines_pick(exec, group, NULL, status, code,
                                              message);
    }

    if (best == NULL) {
        if (only < n) {
            *status = NGX_HTTP_SERVICE_UNAVAILABLE;
            *code = "engine_unavailable";
            ngx_str_set(message, "the engine that ran this job is "
                                 "unavailable, and its workspace is there");

        } else if (full && full + down >= n) {
            *status = NGX_HTTP_SERVICE_UNAVAILABLE;
            *code = "engines_busy";
            ngx_str_set(message, "every engine runs as many executions as "
                                 "it may");

        } else {
            *status = NGX_HTTP_BAD_GATEWAY;
            *code = "docker_unavailable";
            ngx_str_set(message, "no engine of this location is reachable");
        }

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, exec->log, 0,
                       "perstack no engine of \"%V\": %ui down, %ui full",
                       &group->name, down, full);

        return NGX_DECLINED;
    }

    i = best - engines;
    exec->engines_tried |= 1u << i;
    exec->engine = best;
    exec->docker = best->docker;

    if (group->worker) {
        group->worker->running[best->slot]++;
        exec->engine_held = 1;
    }

    (void) ngx_atomic_fetch_add(&sh->engine[best->slot].executions, 1);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, exec->log, 0,
                   "perstack engine \"%V\" of \"%V\", %ui running",
                   &best->docker->name, &group->name, best_running);

    return NGX_OK;
}


/*
 * The execution's engine failed: /_ping, or a call that did not reach it.
 * It is down for fail_timeout, and pinged again when it is next chosen.
 * With retry, the next engine is chosen: NGX_OK if there is one.
 */

ngx_int_t
ngx_http_perstack_engines_failed(ngx_http_perstack_exec_t *exec,
    ngx_uint_t retry)
{
    ngx_str_t                    message;
    ngx_uint_t                   status;
    const char                  *code;
    ngx_http_perstack_engine_t  *e;

    e = exec->engine;

    if (e == NULL) {
        return NGX_DECLINED;
    }

    e->docker->api_minor = 0;

    if (e->group->fail_timeout) {
        e->group->sh->engine[e->slot].down_until = ngx_time()
                                                   + e->group->fail_timeout;
        (void) ngx_atomic_fetch_add(&e->group->sh->engine[e->slot].failures,
                                    1);

        ngx_log_error(NGX_LOG_WARN, exec->log, 0,
                      "perstack: engine \"%V\" of \"%V\" is down for %T s",
                      &e->docker->name, &e->group->name,
                      e->group->fail_timeout);
    }

    if (!retry) {
        return NGX_DECLINED;
    }

    ngx_http_perstack_engines_release(exec);

    if (ngx_http_perstack_engines_pick(exec, e->group,
                                       exec->continuing ? &exec->affinity
                                                        : NULL,
                                       &status, &code, &message)
        != NGX_OK)
    {
        exec->engine = e;
        exec->docker = e->docker;
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_WARN, exec->log, 0,
                  "perstack: the execution goes to engine \"%V\" instead",
                  &exec->docker->name);

    return NGX_OK;
}


/* the execution's container is gone: its engine runs one fewer */

void
ngx_http_perstack_engines_release(ngx_http_perstack_exec_t *exec)
{
    ngx_http_perstack_engine_t  *e;

    e = exec->engine;

    if (e == NULL || !exec->engine_held) {
        return;
    }

    exec->engine_held = 0;

    if (e->group->worker && e->group->worker->running[e->slot]) {
        e->group->worker->running[e->slot]--;
    }
}


void
ngx_http_perstack_engines_stats(ngx_http_perstack_engine_t *engine,
    ngx_http_perstack_engine_stats_t *st)
{
    ngx_http_perstack_engines_sh_t  *sh;

    sh = engine->group->sh;

    st->running = ngx_http_perstack_engines_running(sh, engine->slot);
    st->up = ((time_t) sh->engine[engine->slot].down_until <= ngx_time());
    st->executions = sh->engine[engine->slot].executions;
    st->failures = sh->engine[engine->slot].failures;
}
