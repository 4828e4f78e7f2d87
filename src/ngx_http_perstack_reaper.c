
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The reaper: containers whose worker died without removing them (killed
 * by a signal, or with its master) are found by their labels and removed
 * by the workers that run now, when they start and every few minutes.
 *
 * A container is ours to remove only if its labels name this host, a
 * worker that no longer exists, and either our own master or a master that
 * no longer exists: the containers of another live nginx are its own.
 *
 * A worker's own containers are its executions'; one labelled with this
 * worker but with no running execution of it is stranded: its removal
 * failed (the engine was down or restarting), or the engine created it
 * but its answer was lost.  After such a failure the reaper comes back
 * within seconds, until it could list the containers again.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_reaper.h"
#include "ngx_http_perstack_metrics.h"
#include "ngx_http_perstack_docker.h"
#include "ngx_http_perstack_process.h"
#include "ngx_http_perstack_json.h"

#include <yajl/yajl_tree.h>


#define NGX_HTTP_PERSTACK_REAP_FIRST      500
#define NGX_HTTP_PERSTACK_REAP_INTERVAL   300000
#define NGX_HTTP_PERSTACK_REAP_LIST_MAX   (4 * 1024 * 1024)
/* after a failed removal: the first retry, and the longest wait between */
#define NGX_HTTP_PERSTACK_REAP_RETRY      1000
#define NGX_HTTP_PERSTACK_REAP_RETRY_MAX  30000

/* why a container is the reaper's */
#define NGX_HTTP_PERSTACK_REAP_ORPHAN     1
#define NGX_HTTP_PERSTACK_REAP_STRANDED   2


/* one round's calls to one engine */
typedef struct {
    ngx_pool_t                      *pool;
    ngx_http_perstack_docker_t      *docker;
    ngx_uint_t                       ops;
} ngx_http_perstack_reaper_round_t;


static void ngx_http_perstack_reaper_handler(ngx_event_t *ev);
static void ngx_http_perstack_reaper_start(ngx_http_perstack_docker_t *docker);
static void ngx_http_perstack_reaper_list_done(ngx_http_perstack_op_t *op);
static ngx_uint_t ngx_http_perstack_reaper_orphan(yajl_val labels);
static ngx_uint_t ngx_http_perstack_reaper_stranded(const char *execution);
static void ngx_http_perstack_reaper_remove(
    ngx_http_perstack_reaper_round_t *round, const char *id, ngx_uint_t why);
static void ngx_http_perstack_reaper_remove_done(ngx_http_perstack_op_t *op);


static ngx_event_t       ngx_http_perstack_reaper_event;

/* whether an execution of this worker runs on: the layer above's answer */
static ngx_http_perstack_reaper_running_pt  ngx_http_perstack_reaper_running;

/* something may be stranded: the time until the next round, else 0 */
static ngx_msec_t        ngx_http_perstack_reaper_retry;

/* a debug build logs a timer's ident from a connection: fd -1 */
static ngx_connection_t  ngx_http_perstack_reaper_conn;


void
ngx_http_perstack_reaper_init_process(ngx_cycle_t *cycle,
    ngx_http_perstack_reaper_running_pt running)
{
    ngx_event_t  *ev;

    ngx_http_perstack_reaper_running = running;

    ngx_http_perstack_reaper_conn.fd = (ngx_socket_t) -1;

    ev = &ngx_http_perstack_reaper_event;

    ev->handler = ngx_http_perstack_reaper_handler;
    ev->data = &ngx_http_perstack_reaper_conn;
    ev->log = cycle->log;

    /* never a reason to hold up a graceful shutdown */
    ev->cancelable = 1;

    ngx_add_timer(ev, NGX_HTTP_PERSTACK_REAP_FIRST);
}


static void
ngx_http_perstack_reaper_handler(ngx_event_t *ev)
{
    ngx_uint_t                      i;
    ngx_http_perstack_docker_t    **dockers;
    ngx_http_perstack_main_conf_t  *pmcf;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_perstack_module);

    dockers = pmcf->dockers.elts;

    for (i = 0; i < pmcf->dockers.nelts; i++) {
        ngx_http_perstack_reaper_start(dockers[i]);
    }

    if (ngx_http_perstack_reaper_retry) {
        /* until a round could list the containers: back off, 1 s to 30 s */
        ngx_add_timer(ev, ngx_http_perstack_reaper_retry);

        ngx_http_perstack_reaper_retry = ngx_min(
                                     2 * ngx_http_perstack_reaper_retry,
                                     NGX_HTTP_PERSTACK_REAP_RETRY_MAX);
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_PERSTACK_REAP_INTERVAL);
}


/* A removal failed: come back soon, and again until a round succeeds. */

void
ngx_http_perstack_reaper_soon(void)
{
    ngx_event_t  *ev;

    ev = &ngx_http_perstack_reaper_event;

    if (ev->handler == NULL || ngx_exiting || ngx_terminate) {
        /* not started, or the worker removes what it can as it exits */
        return;
    }

    if (ngx_http_perstack_reaper_retry == 0) {
        ngx_http_perstack_reaper_retry = NGX_HTTP_PERSTACK_REAP_RETRY;
    }

    if (!ev->timer_set
        || ev->timer.key > ngx_current_msec + ngx_http_perstack_reaper_retry)
    {
        ngx_add_timer(ev, ngx_http_perstack_reaper_retry);
    }
}


/*
 * A round's calls share a pool, freed when the last of them is done.
 */

static void
ngx_http_perstack_reaper_start(ngx_http_perstack_docker_t *docker)
{
    ngx_pool_t                        *pool;
    ngx_http_perstack_op_t            *op;
    ngx_http_perstack_reaper_round_t  *round;

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    round = ngx_pcalloc(pool, sizeof(ngx_http_perstack_reaper_round_t));
    if (round == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    round->pool = pool;
    round->docker = docker;

    op = ngx_http_perstack_docker_op(pool, ngx_cycle->log, &round->ops,
                                     "reaper list",
                                     ngx_http_perstack_reaper_list_done,
                                     round);
    if (op == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    op->response_max = NGX_HTTP_PERSTACK_REAP_LIST_MAX;

    if (ngx_http_perstack_docker_list(docker, op, 30000) != NGX_OK)
    {
        ngx_destroy_pool(pool);
    }
}


static void
ngx_http_perstack_reaper_list_done(ngx_http_perstack_op_t *op)
{
    size_t                             i;
    yajl_val                           tree, c, id, labels;
    ngx_uint_t                         why;
    ngx_http_perstack_reaper_round_t  *round;

    static const char  *id_path[] = { "Id", NULL };
    static const char  *labels_path[] = { "Labels", NULL };

    round = op->data;

    if (op->result != CURLE_OK || op->status != 200) {
        /* the engine may be down: the next round tries again */
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "perstack reaper: list failed: curl %d, status %l",
                       op->result, op->status);
        goto done;
    }

    /* the engine answers: what this round removes, it removes for good */
    ngx_http_perstack_reaper_retry = 0;

    tree = ngx_http_perstack_json_tree(op->response, op->response_len,
                                       NGX_HTTP_PERSTACK_JSON_NODES_LARGE,
                                       NULL);

    if (tree == NULL || !YAJL_IS_ARRAY(tree)) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "perstack: the reaper could not read the container "
                      "list of \"%V\"", &round->docker->name);
        if (tree) {
            yajl_tree_free(tree);
        }

        goto done;
    }

    for (i = 0; i < tree->u.array.len; i++) {
        c = tree->u.array.values[i];

        id = yajl_tree_get(c, id_path, yajl_t_string);
        labels = yajl_tree_get(c, labels_path, yajl_t_object);

        if (id == NULL || labels == NULL) {
            continue;
        }

        why = ngx_http_perstack_reaper_orphan(labels);

        if (why) {
            ngx_http_perstack_reaper_remove(round, id->u.string, why);
        }
    }

    yajl_tree_free(tree);

done:

    if (round->ops == 0) {
        ngx_destroy_pool(round->pool);
    }
}


static ngx_uint_t
ngx_http_perstack_reaper_orphan(yajl_val labels)
{
    size_t      i, len;
    ngx_int_t   pid, master;
    const char *key, *value, *host, *execution;

    pid = NGX_ERROR;
    master = NGX_ERROR;
    host = NULL;
    execution = NULL;

    for (i = 0; i < labels->u.object.len; i++) {
        key = labels->u.object.keys[i];

        if (!YAJL_IS_STRING(labels->u.object.values[i])) {
            continue;
        }

        value = labels->u.object.values[i]->u.string;
        len = ngx_strlen(value);

        if (ngx_strcmp(key, "io.perstack.pid") == 0) {
            pid = ngx_atoi((u_char *) value, len);

        } else if (ngx_strcmp(key, "io.perstack.master") == 0) {
            master = ngx_atoi((u_char *) value, len);

        } else if (ngx_strcmp(key, "io.perstack.host") == 0) {
            host = value;

        } else if (ngx_strcmp(key, "io.perstack.execution") == 0) {
            execution = value;
        }
    }

    if (pid == NGX_ERROR || master == NGX_ERROR || host == NULL
        || ngx_strlen(host) != ngx_cycle->hostname.len
        || ngx_strncmp(host, ngx_cycle->hostname.data,
                       ngx_cycle->hostname.len) != 0)
    {
        return 0;
    }

    if ((ngx_pid_t) pid == ngx_pid) {
        return (execution && ngx_http_perstack_reaper_stranded(execution))
               ? NGX_HTTP_PERSTACK_REAP_STRANDED : 0;
    }

    if (!ngx_http_perstack_process_gone((ngx_pid_t) pid, 0)) {
        return 0;
    }

    return ((ngx_pid_t) master == ngx_http_perstack_process_master()
            || ngx_http_perstack_process_gone((ngx_pid_t) master, 0))
           ? NGX_HTTP_PERSTACK_REAP_ORPHAN : 0;
}


/* a container of this worker whose execution is over */

static ngx_uint_t
ngx_http_perstack_reaper_stranded(const char *execution)
{
    if (ngx_strlen(execution) != NGX_HTTP_PERSTACK_ID_LEN) {
        return 0;
    }

    return ngx_http_perstack_reaper_running == NULL
           || !ngx_http_perstack_reaper_running((u_char *) execution);
}


static void
ngx_http_perstack_reaper_remove(ngx_http_perstack_reaper_round_t *round,
    const char *id, ngx_uint_t why)
{
    size_t                   len;
    ngx_str_t                cid;
    ngx_http_perstack_op_t  *op;

    len = ngx_strlen(id);

    if (len < 12 || len > 128) {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "perstack: removing container %*s, left behind by %s",
                  (size_t) 12, id,
                  why == NGX_HTTP_PERSTACK_REAP_ORPHAN
                  ? "a worker that is gone"
                  : "an execution that is over (its removal failed)");

    op = ngx_http_perstack_docker_op(round->pool, ngx_cycle->log,
                                     &round->ops, "reaper remove",
                                     ngx_http_perstack_reaper_remove_done,
                                     round);
    if (op == NULL) {
        return;
    }

    cid.data = (u_char *) id;
    cid.len = len;

    (void) ngx_http_perstack_docker_container(round->docker, op, "DELETE",
                                              &cid, "?force=1&v=1", 60000);
}


static void
ngx_http_perstack_reaper_remove_done(ngx_http_perstack_op_t *op)
{
    ngx_http_perstack_reaper_round_t  *round;

    round = op->data;

    /* 404 and 409: gone, or being removed, by another worker's reaper */
    if (!ngx_http_perstack_docker_removed(op)
        && (op->result != CURLE_OK
            || (op->status != 404 && op->status != 409)))
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "perstack: the reaper could not remove a container: "
                      "curl %d, status %l", op->result, op->status);

        ngx_http_perstack_reaper_soon();

    } else if (ngx_http_perstack_docker_removed(op)) {
        ngx_http_perstack_metrics_reaped();
    }

    if (round->ops == 0) {
        ngx_destroy_pool(round->pool);
    }
}
