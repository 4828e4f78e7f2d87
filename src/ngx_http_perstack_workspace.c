
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Per-user workspaces.  perstack_workspace names a workspace; the name
 * becomes one directory below perstack_workspace_root, whatever it holds
 * (a '/' in it is encoded, never a level), and that directory is the
 * module's alone:
 *
 *     <root>/<name>/             the module's, mode 0700
 *     <root>/<name>/workspace/   bind-mounted at /workspace, the
 *                                container's user's, mode 0700
 *     <root>/<name>/jobs/        the module's record of each job it ran
 *
 * Docker follows symbolic links in the path it mounts, when the container
 * starts.  No container can write to <root> or <root>/<name>, so none can
 * swap a component of that path for a link between our check and the
 * mount.  Every directory is still opened one at a time with O_NOFOLLOW,
 * in a thread of nginx's thread pool: the worker never waits on the disk.
 *
 * Before the approval, nothing is written: a continuation's record is
 * only read, for the callback's X-Perstack-Tool-Call.  After it, the
 * directories are made and a continued job must have a record.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_workspace.h"
#include "ngx_http_perstack_docker.h"
#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_writer.h"
#include "ngx_http_perstack_runtime.h"
#include "ngx_http_perstack_response.h"

#include <yajl/yajl_tree.h>


#define NGX_HTTP_PERSTACK_NAME_MAX    255
#define NGX_HTTP_PERSTACK_RECORD_MAX  (1024 * 1024)


typedef struct {
    /* in */
    u_char                          *root;
    u_char                          *name;
    u_char                          *job;
    uid_t                            uid;
    gid_t                            gid;
    unsigned                         give:1;
    /* after the approval: make what is missing, and want the record */
    unsigned                         create:1;

    /* set in the worker once the thread is done */
    unsigned                         done:1;

    /* out */
    ngx_int_t                        rc;
    ngx_err_t                        err;
    const char                      *what;
    u_char                          *pending;
    size_t                           pending_len;
    /* the record's "expert", "outcome", "engine", NUL-terminated, or NULL */
    u_char                          *expert;
    u_char                          *outcome;
    u_char                          *engine;
} ngx_http_perstack_ws_task_t;


typedef struct {
    u_char                          *root;
    u_char                          *name;
    /* "<job>.json" and the file it is written to first */
    u_char                          *file;
    u_char                          *temp;
    ngx_str_t                        record;

    ngx_err_t                        err;
    const char                      *what;
} ngx_http_perstack_record_task_t;


#if (NGX_THREADS)

static ngx_uint_t ngx_http_perstack_workspace_uses_approval(
    ngx_http_perstack_loc_conf_t *conf);
static ngx_int_t ngx_http_perstack_workspace_name(ngx_str_t *value,
    ngx_str_t *name, const char **why, ngx_pool_t *pool);
static ngx_int_t ngx_http_perstack_workspace_post(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx, ngx_uint_t create);
static void ngx_http_perstack_workspace_thread(void *data, ngx_log_t *log);
static int ngx_http_perstack_workspace_dir(ngx_http_perstack_ws_task_t *t,
    int dir, char *name, ngx_uint_t give);
static void ngx_http_perstack_workspace_read(ngx_http_perstack_ws_task_t *t,
    int jobs);
static void ngx_http_perstack_workspace_event(ngx_event_t *ev);
static void ngx_http_perstack_workspace_resume(ngx_http_request_t *r);
static ngx_int_t ngx_http_perstack_workspace_check(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx, ngx_http_perstack_ws_task_t *t);
static void ngx_http_perstack_workspace_cleanup(void *data);
static void ngx_http_perstack_record_thread(void *data, ngx_log_t *log);

#endif


/*
 * Whether perstack_workspace names a variable that perstack_approval_set
 * sets: then the workspace can only be known after the approval.
 */

static ngx_uint_t
ngx_http_perstack_workspace_uses_approval(ngx_http_perstack_loc_conf_t *conf)
{
    u_char                            *p, *last;
    size_t                             len;
    ngx_uint_t                         i;
    ngx_str_t                         *text;
    ngx_http_perstack_approval_set_t  *set;

    if (conf->approval_set == NULL
        || conf->approval_set == NGX_CONF_UNSET_PTR)
    {
        return 0;
    }

    text = &conf->workspace->value;
    set = conf->approval_set->elts;

    for (i = 0; i < conf->approval_set->nelts; i++) {
        len = set[i].name.len;

        for (p = text->data, last = text->data + text->len; p < last; p++) {
            if (*p != '$') {
                continue;
            }

            if (p + 1 < last && p[1] == '{') {
                p++;
            }

            if ((size_t) (last - p - 1) >= len
                && ngx_strncasecmp(p + 1, set[i].name.data, len) == 0
                && (p + 1 + len == last
                    || !(isalnum(p[1 + len]) || p[1 + len] == '_')))
            {
                return 1;
            }
        }
    }

    return 0;
}


char *
ngx_http_perstack_workspace_merge(ngx_conf_t *cf,
    ngx_http_perstack_loc_conf_t *prev, ngx_http_perstack_loc_conf_t *conf)
{
    if (conf->workspace == NULL) {
        conf->workspace = prev->workspace;
    }

    ngx_conf_merge_str_value(conf->workspace_root, prev->workspace_root, "");

    if (conf->workspace == NULL || !conf->execute) {
        return NGX_CONF_OK;
    }

    conf->workspace_after_approval =
                        ngx_http_perstack_workspace_uses_approval(conf);

    if (conf->workspace_root.len < 2 || conf->workspace_root.data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"perstack_workspace\" needs an absolute "
                           "\"perstack_workspace_root\" other than \"/\"");
        return NGX_CONF_ERROR;
    }

    while (conf->workspace_root.len > 1
           && conf->workspace_root.data[conf->workspace_root.len - 1] == '/')
    {
        conf->workspace_root.len--;
    }

#if (NGX_THREADS)

    conf->thread_pool = ngx_thread_pool_add(cf, NULL);
    if (conf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

#else

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"perstack_workspace\" needs nginx built with "
                       "thread pools (--with-threads)");
    return NGX_CONF_ERROR;

#endif
}


#if (NGX_THREADS)

/*
 * Before the approval: the tool call a continued job waits for, from the
 * module's own record, for the callback.  Nothing is made, and whatever
 * is found or not changes no answer to the client.
 */

ngx_int_t
ngx_http_perstack_workspace_peek(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    ctx->workspace_peeked = 1;

    return ngx_http_perstack_workspace_post(r, ctx, 0);
}


ngx_int_t
ngx_http_perstack_workspace_prepare(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    return ngx_http_perstack_workspace_post(r, ctx, 1);
}


static ngx_int_t
ngx_http_perstack_workspace_post(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx, ngx_uint_t create)
{
    u_char                        *p;
    uid_t                          uid;
    ngx_str_t                      value, name, message;
    const char                    *why;
    ngx_thread_task_t             *task;
    ngx_pool_cleanup_t            *cln;
    ngx_http_perstack_ws_task_t   *t;
    ngx_http_perstack_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    if (ngx_http_complex_value(r, plcf->workspace, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_perstack_workspace_name(&value, &name, &why, r->pool)
        != NGX_OK)
    {
        if (why == NULL) {
            return NGX_ERROR;
        }

        if (!create) {
            /* refused after the approval, if it gets that far */
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "perstack: workspace refused: %s", why);

        ngx_str_set(&message, "this request's workspace name is not "
                              "acceptable");

        ngx_http_finalize_request(r,
                ngx_http_perstack_send_error(r, NGX_HTTP_BAD_REQUEST,
                                             "bad_workspace", &message,
                                             NULL, NULL));
        return NGX_DONE;
    }

    uid = (uid_t) plcf->uid;

    if (create && geteuid() != 0 && geteuid() != uid) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "perstack: a workspace must belong to the container's "
                      "user \"%V\": the workers must run as root or as that "
                      "user", &plcf->user);

        ngx_str_set(&message, "workspaces are not available");

        ngx_http_finalize_request(r,
                ngx_http_perstack_send_error(r,
                                             NGX_HTTP_INTERNAL_SERVER_ERROR,
                                             "workspace_unavailable",
                                             &message, NULL, NULL));
        return NGX_DONE;
    }

    ctx->workspace_name = name;

    /* what Docker mounts */
    ctx->workspace.len = plcf->workspace_root.len + name.len
                         + sizeof("//workspace") - 1;
    ctx->workspace.data = ngx_pnalloc(r->pool, ctx->workspace.len + 1);
    if (ctx->workspace.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(ctx->workspace.data, "%V/%V/workspace",
                    &plcf->workspace_root, &name);
    *p = '\0';

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_perstack_ws_task_t));
    if (task == NULL) {
        return NGX_ERROR;
    }

    t = task->ctx;

    t->root = plcf->workspace_root.data;
    t->name = name.data;
    t->uid = uid;
    t->gid = (gid_t) plcf->gid;
    t->give = (geteuid() == 0);
    t->create = create;

    if (ctx->continuing) {
        t->job = ngx_pnalloc(r->pool, ctx->job.len + sizeof(".json"));
        if (t->job == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(t->job, "%V.json%Z", &ctx->job);
    }

    /* what the thread allocated is freed with the request, however it ends */
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_perstack_workspace_cleanup;
    cln->data = t;

    task->handler = ngx_http_perstack_workspace_thread;
    task->event.handler = ngx_http_perstack_workspace_event;
    task->event.data = r;

    if (ngx_thread_task_post(plcf->thread_pool, task) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->workspace_task = t;

    r->main->blocked++;
    r->aio = 1;
    r->write_event_handler = ngx_http_perstack_workspace_resume;

    return NGX_AGAIN;
}


/*
 * The workspace's directory below the root: the value as it is, but for
 * a leading '.' and any byte other than a letter, a digit, '-', '_' or
 * '.', which become "%XX".  Two values never share a directory, and none
 * is more than one level deep.
 */

static ngx_int_t
ngx_http_perstack_workspace_name(ngx_str_t *value, ngx_str_t *name,
    const char **why, ngx_pool_t *pool)
{
    u_char      *p, c;
    size_t       len;
    ngx_uint_t   i;

    static u_char  hex[] = "0123456789ABCDEF";

    *why = NULL;

    if (value->len == 0) {
        *why = "it is empty";
        return NGX_DECLINED;
    }

    len = 0;

    for (i = 0; i < value->len; i++) {
        c = value->data[i];
        len += (isalnum(c) || c == '-' || c == '_' || (c == '.' && i > 0))
               ? 1 : 3;
    }

    if (len > NGX_HTTP_PERSTACK_NAME_MAX) {
        *why = "it is longer than 255 bytes once encoded";
        return NGX_DECLINED;
    }

    name->data = ngx_pnalloc(pool, len + 1);
    if (name->data == NULL) {
        return NGX_ERROR;
    }

    p = name->data;

    for (i = 0; i < value->len; i++) {
        c = value->data[i];

        if (isalnum(c) || c == '-' || c == '_' || (c == '.' && i > 0)) {
            *p++ = c;
            continue;
        }

        *p++ = '%';
        *p++ = hex[c >> 4];
        *p++ = hex[c & 0xf];
    }

    *p = '\0';
    name->len = len;

    return NGX_OK;
}


/* In a thread of the pool: may block, must not touch nginx's structures. */

static void
ngx_http_perstack_workspace_thread(void *data, ngx_log_t *log)
{
    ngx_http_perstack_ws_task_t  *t = data;

    int  root, home, dir;

    t->rc = NGX_ERROR;

    root = open((char *) t->root, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
    if (root == -1) {
        t->err = ngx_errno;
        t->what = "open() of perstack_workspace_root";
        return;
    }

    home = ngx_http_perstack_workspace_dir(t, root, (char *) t->name, 0);
    close(root);

    if (home == -1) {
        return;
    }

    if (t->create) {
        dir = ngx_http_perstack_workspace_dir(t, home, "workspace", t->give);
        if (dir == -1) {
            close(home);
            return;
        }

        close(dir);
    }

    dir = ngx_http_perstack_workspace_dir(t, home, "jobs", 0);
    close(home);

    if (dir == -1) {
        return;
    }

    if (t->job) {
        ngx_http_perstack_workspace_read(t, dir);

    } else {
        t->rc = NGX_OK;
    }

    close(dir);
}


/*
 * Opens the directory name in dir, never following a symbolic link;
 * after the approval, makes it first if it is missing, for the
 * container's user with give.  Returns it, or -1 with t->rc set:
 * NGX_DECLINED when it is missing before the approval.
 */

static int
ngx_http_perstack_workspace_dir(ngx_http_perstack_ws_task_t *t, int dir,
    char *name, ngx_uint_t give)
{
    int  fd;

    fd = openat(dir, name, O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC);

    if (fd == -1 && ngx_errno == NGX_ENOENT) {
        if (!t->create) {
            t->rc = NGX_DECLINED;
            return -1;
        }

        if (mkdirat(dir, name, 0700) == -1 && ngx_errno != NGX_EEXIST) {
            t->err = ngx_errno;
            t->what = "mkdirat()";
            return -1;
        }

        if (give
            && fchownat(dir, name, t->uid, t->gid, AT_SYMLINK_NOFOLLOW) == -1)
        {
            t->err = ngx_errno;
            t->what = "fchownat()";
            return -1;
        }

        fd = openat(dir, name, O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC);
    }

    if (fd == -1) {
        t->err = ngx_errno;
        t->what = (t->err == ELOOP || t->err == NGX_ENOTDIR)
                  ? "a directory of the workspace is a symbolic link or "
                    "not a directory"
                  : "openat()";
    }

    return fd;
}


/*
 * The module's record of the continued job: without one, the job is not
 * this workspace's (NGX_ABORT).  The first tool call it waits for, if
 * any, goes to the approval callback.
 */

static void
ngx_http_perstack_workspace_read(ngx_http_perstack_ws_task_t *t, int jobs)
{
    int                     fd;
    u_char                 *buf;
    size_t                  len;
    ssize_t                 got;
    yajl_val                tree, calls, call, v;
    ngx_uint_t              i;
    struct stat             st;
    ngx_http_perstack_jw_t  jw;

    static const char  *calls_path[] = { "pendingToolCalls", NULL };
    static const char  *expert_path[] = { "expert", NULL };
    static const char  *outcome_path[] = { "outcome", NULL };
    static const char  *engine_path[] = { "engine", NULL };
    static const char  *keys[] = { "id", "skillName", "toolName" };

    fd = openat(jobs, (char *) t->job,
                O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC);

    if (fd == -1) {
        t->err = ngx_errno;

        if (t->err == NGX_ENOENT) {
            t->rc = NGX_ABORT;
            t->what = "no such job";

        } else {
            t->what = "openat() of the job's record";
        }

        return;
    }

    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)
        || st.st_size > NGX_HTTP_PERSTACK_RECORD_MAX)
    {
        close(fd);
        t->what = "the job's record is not a regular file of at most 1m";
        return;
    }

    buf = malloc(st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        t->what = "malloc()";
        return;
    }

    len = 0;

    while (len < (size_t) st.st_size) {
        got = read(fd, buf + len, st.st_size - len);
        if (got <= 0) {
            break;
        }

        len += got;
    }

    close(fd);
    buf[len] = '\0';

    t->rc = NGX_OK;

    /* the module wrote it, from a tree of at most as many values */
    tree = ngx_http_perstack_json_tree(buf, len, 0, NULL);
    free(buf);

    if (tree == NULL) {
        return;
    }

    v = yajl_tree_get(tree, expert_path, yajl_t_string);
    t->expert = v ? (u_char *) strdup(v->u.string) : NULL;

    v = yajl_tree_get(tree, outcome_path, yajl_t_string);
    t->outcome = v ? (u_char *) strdup(v->u.string) : NULL;

    v = yajl_tree_get(tree, engine_path, yajl_t_string);
    t->engine = v ? (u_char *) strdup(v->u.string) : NULL;

    calls = yajl_tree_get(tree, calls_path, yajl_t_array);

    if (calls == NULL || calls->u.array.len == 0
        || !YAJL_IS_OBJECT(calls->u.array.values[0]))
    {
        yajl_tree_free(tree);
        return;
    }

    call = calls->u.array.values[0];

    /* {"id":"...","skillName":"...","toolName":"..."}, in the thread */

    ngx_http_perstack_jw_init(&jw, ngx_http_perstack_jw_malloc, NULL, 0);
    ngx_http_perstack_jw_open(&jw, '{');

    for (i = 0; i < 3; i++) {
        v = yajl_tree_get(call, (const char *[]) { keys[i], NULL },
                          yajl_t_string);
        if (v) {
            ngx_http_perstack_jw_key(&jw, (u_char *) keys[i],
                                     ngx_strlen(keys[i]));
            ngx_http_perstack_jw_value_str(&jw, (u_char *) v->u.string,
                                           ngx_strlen(v->u.string));
        }
    }

    ngx_http_perstack_jw_close(&jw);

    if (ngx_http_perstack_jw_failed(&jw)) {
        free(jw.start);

    } else {
        t->pending = jw.start;
        t->pending_len = ngx_http_perstack_jw_len(&jw);
    }

    yajl_tree_free(tree);
}


static void
ngx_http_perstack_workspace_event(ngx_event_t *ev)
{
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_perstack_ctx_t      *ctx;
    ngx_http_perstack_ws_task_t  *t;

    r = ev->data;
    c = r->connection;

    r->main->blocked--;
    r->aio = 0;

    ctx = ngx_http_get_module_ctx(r, ngx_http_perstack_module);
    t = ctx->workspace_task;
    t->done = 1;

    /* our resume handler, or nginx's finalizer if the client went away */
    r->write_event_handler(r);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_perstack_workspace_resume(ngx_http_request_t *r)
{
    ngx_str_t                     message;
    ngx_http_perstack_ctx_t      *ctx;
    ngx_http_perstack_ws_task_t  *t;

    ctx = ngx_http_get_module_ctx(r, ngx_http_perstack_module);
    t = ctx->workspace_task;

    if (!t->done) {
        /* a write event on the connection while the thread still works */
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    if (!t->create) {
        /* before the approval: nothing found is no error */
        if (t->rc == NGX_OK && t->pending) {
            ctx->pending_tool.data = t->pending;
            ctx->pending_tool.len = t->pending_len;
        }

        ctx->resume(r, ctx);
        return;
    }

    ctx->workspace_done = 1;

    switch (t->rc) {

    case NGX_OK:
        if (t->engine) {
            ctx->engine.data = t->engine;
            ctx->engine.len = ngx_strlen(t->engine);
        }

        if (ngx_http_perstack_workspace_check(r, ctx, t) == NGX_OK) {
            ctx->resume(r, ctx);
        }

        return;

    case NGX_ABORT:
        ngx_str_set(&message, "no such job in this workspace");

        ngx_http_finalize_request(r,
                ngx_http_perstack_send_error(r, NGX_HTTP_NOT_FOUND,
                                             "job_not_found", &message,
                                             "jobId", &ctx->job));
        return;

    default:
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, t->err,
                      "perstack: preparing workspace \"%V\" failed: %s",
                      ngx_http_perstack_log_escape(r->pool, &ctx->workspace),
                      t->what);

        ngx_str_set(&message, "the workspace could not be prepared");

        ngx_http_finalize_request(r,
                ngx_http_perstack_send_error(r,
                                             NGX_HTTP_INTERNAL_SERVER_ERROR,
                                             "workspace_unavailable",
                                             &message, NULL, NULL));
        return;
    }
}


/*
 * After the approval, the continuation as the runtime takes it, by the
 * module's record of the job (never by what the container wrote): the
 * job's own expert; an answer only to a job that waits for one; and a
 * query only to a job that does not.  The runtime fails each of these
 * after a container started; here they are refused before.  NGX_DONE:
 * the request was answered.
 */

static ngx_int_t
ngx_http_perstack_workspace_check(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx, ngx_http_perstack_ws_task_t *t)
{
    ngx_str_t               message, extra, value;
    ngx_uint_t              paused, ended;
    const char             *code, *name;
    ngx_http_perstack_jw_t  jw;

    paused = (t->outcome && ngx_strcmp(t->outcome, "paused") == 0);

    /*
     * Only a run that the runtime itself ended says that the job waits for
     * no answer.  After a timeout, a client gone, an engine error or a
     * failure (which may be an exception that left the job as it was), the
     * job is where the runtime left it, and the runtime decides.
     */
    ended = (t->outcome
             && (ngx_strcmp(t->outcome, "completed") == 0
                 || ngx_strcmp(t->outcome, "max_steps") == 0));

    if (t->expert
        && (ngx_strlen(t->expert) != ctx->expert.len
            || ngx_strncmp(t->expert, ctx->expert.data, ctx->expert.len)
               != 0))
    {
        code = "expert_mismatch";
        ngx_str_set(&message, "this job belongs to another expert");
        name = "expert";
        value.data = t->expert;
        value.len = ngx_strlen(t->expert);

    } else if (ctx->answer && ended) {
        code = "job_not_paused";
        ngx_str_set(&message, "this job waits for no answer: continue it "
                              "with a query");
        name = "outcome";
        value.data = t->outcome ? t->outcome : (u_char *) "";
        value.len = ngx_strlen(value.data);

    } else if (!ctx->answer && paused) {
        code = "job_awaits_answer";
        ngx_str_set(&message, "this job waits for an answer to its pending "
                              "tool call");
        name = NULL;
        ngx_str_null(&value);

    } else {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "perstack: continuation of job \"%V\" refused: %s",
                  &ctx->job, code);

    ngx_http_perstack_jw_pool(&jw, r->pool, 256);
    ngx_http_perstack_jw_raw(&jw, ",\"jobId\":");
    ngx_http_perstack_jw_str(&jw, ctx->job.data, ctx->job.len);

    if (name) {
        ngx_http_perstack_jw_raw(&jw, ",");
        ngx_http_perstack_jw_str(&jw, (u_char *) name, ngx_strlen(name));
        ngx_http_perstack_jw_raw(&jw, ":");
        ngx_http_perstack_jw_str(&jw, value.data, value.len);

    } else if (t->pending) {
        /* the call to answer, as the approval callback is told of it */
        ngx_http_perstack_jw_raw(&jw, ",\"pending_tool_call\":");
        ngx_http_perstack_jw_rawn(&jw, t->pending, t->pending_len);
    }

    if (ngx_http_perstack_jw_failed(&jw)) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DONE;
    }

    extra.data = jw.start;
    extra.len = ngx_http_perstack_jw_len(&jw);

    ngx_http_finalize_request(r,
            ngx_http_perstack_send_error_json(r, NGX_HTTP_CONFLICT, code,
                                              &message, &extra));
    return NGX_DONE;
}


static void
ngx_http_perstack_workspace_cleanup(void *data)
{
    ngx_http_perstack_ws_task_t  *t = data;

    if (t->pending) {
        free(t->pending);
        t->pending = NULL;
    }

    if (t->expert) {
        free(t->expert);
        t->expert = NULL;
    }

    if (t->outcome) {
        free(t->outcome);
        t->outcome = NULL;
    }

    if (t->engine) {
        free(t->engine);
        t->engine = NULL;
    }
}


/*
 * At the end of an execution whose container ran: the job's record,
 * <root>/<name>/jobs/<job>.json, says which execution ran it last, how it
 * ended and, paused, which tool calls it waits for, as the module saw
 * them: {"job","expert","execution","outcome","exit_code","engine",
 * "pendingToolCalls"} ("engine": where it ran, as configured), the last only when the run paused and its calls are
 * not over NGX_HTTP_PERSTACK_RECORD_PENDING_MAX.  The record is written
 * whole to a file of its own, then renamed.  handler runs in the worker
 * once it is done, with ev->data the exec.
 */

ngx_int_t
ngx_http_perstack_workspace_record(ngx_http_perstack_exec_t *exec,
    ngx_event_handler_pt handler)
{
    ngx_str_t                         record;
    ngx_uint_t                        pending;
    ngx_thread_task_t                *task;
    ngx_http_perstack_jw_t            jw;
    ngx_http_perstack_record_task_t  *t;

    pending = (exec->outcome == NGX_HTTP_PERSTACK_OUTCOME_PAUSED
               && exec->pending.len
               && exec->pending.len <= NGX_HTTP_PERSTACK_RECORD_PENDING_MAX);

    ngx_http_perstack_jw_pool(&jw, exec->pool, 256);
    ngx_http_perstack_jw_raw(&jw, "{\"job\":");
    ngx_http_perstack_jw_str(&jw, exec->job.data, exec->job.len);
    ngx_http_perstack_jw_raw(&jw, ",\"expert\":");
    ngx_http_perstack_jw_str(&jw, exec->expert.data, exec->expert.len);
    ngx_http_perstack_jw_raw(&jw, ",\"execution\":");
    ngx_http_perstack_jw_str(&jw, exec->id, NGX_HTTP_PERSTACK_ID_LEN);
    ngx_http_perstack_jw_outcome(&jw, exec);
    ngx_http_perstack_jw_raw(&jw, ",\"engine\":");
    ngx_http_perstack_jw_str(&jw, exec->docker->name.data,
                             exec->docker->name.len);

    if (pending) {
        ngx_http_perstack_jw_raw(&jw, ",\"pendingToolCalls\":");
        ngx_http_perstack_jw_rawn(&jw, exec->pending.data, exec->pending.len);
    }

    ngx_http_perstack_jw_raw(&jw, "}\n");

    if (ngx_http_perstack_jw_failed(&jw)) {
        return NGX_ERROR;
    }

    record.data = jw.start;
    record.len = ngx_http_perstack_jw_len(&jw);

    task = ngx_thread_task_alloc(exec->pool,
                                 sizeof(ngx_http_perstack_record_task_t));
    if (task == NULL) {
        return NGX_ERROR;
    }

    t = task->ctx;

    t->root = exec->conf->workspace_root.data;
    t->name = exec->workspace_name.data;
    t->record = record;

    t->file = ngx_pnalloc(exec->pool, exec->job.len + sizeof(".json"));
    t->temp = ngx_pnalloc(exec->pool, exec->job.len
                                      + NGX_HTTP_PERSTACK_ID_LEN
                                      + sizeof("..tmp"));
    if (t->file == NULL || t->temp == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(t->file, "%V.json%Z", &exec->job);
    ngx_sprintf(t->temp, ".%V.%*s.tmp%Z", &exec->job,
                (size_t) NGX_HTTP_PERSTACK_ID_LEN, exec->id);

    task->handler = ngx_http_perstack_record_thread;
    task->event.handler = handler;
    task->event.data = exec;

    if (ngx_thread_task_post(exec->conf->thread_pool, task) != NGX_OK) {
        return NGX_ERROR;
    }

    exec->record_task = t;

    return NGX_OK;
}


/* what went wrong writing the record, or NULL */

const char *
ngx_http_perstack_workspace_record_error(ngx_http_perstack_exec_t *exec,
    ngx_err_t *err)
{
    ngx_http_perstack_record_task_t  *t = exec->record_task;

    *err = t->err;

    return t->what;
}


static void
ngx_http_perstack_record_thread(void *data, ngx_log_t *log)
{
    ngx_http_perstack_record_task_t  *t = data;

    int       root, home, jobs, fd;
    size_t    len;
    ssize_t   n;

    root = -1;
    home = -1;
    jobs = -1;
    fd = -1;

    t->what = "open() of perstack_workspace_root";

    root = open((char *) t->root, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
    if (root == -1) {
        goto failed;
    }

    t->what = "openat() of the workspace's jobs";

    home = openat(root, (char *) t->name,
                  O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC);
    if (home == -1) {
        goto failed;
    }

    jobs = openat(home, "jobs", O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC);
    if (jobs == -1) {
        goto failed;
    }

    t->what = "openat() of the job's record";

    fd = openat(jobs, (char *) t->temp,
                O_WRONLY|O_CREAT|O_TRUNC|O_NOFOLLOW|O_CLOEXEC, 0600);
    if (fd == -1) {
        goto failed;
    }

    t->what = "write() of the job's record";

    for (len = 0; len < t->record.len; len += n) {
        n = write(fd, t->record.data + len, t->record.len - len);

        if (n == -1) {
            goto failed;
        }
    }

    if (close(fd) == -1) {
        fd = -1;
        goto failed;
    }

    fd = -1;

    t->what = "renameat() of the job's record";

    if (renameat(jobs, (char *) t->temp, jobs, (char *) t->file) == -1) {
        goto failed;
    }

    t->what = NULL;

    goto done;

failed:

    t->err = ngx_errno;

    if (fd != -1) {
        close(fd);
    }

    if (jobs != -1) {
        (void) unlinkat(jobs, (char *) t->temp, 0);
    }

done:

    if (jobs != -1) {
        close(jobs);
    }

    if (home != -1) {
        close(home);
    }

    if (root != -1) {
        close(root);
    }
}


#else /* !(NGX_THREADS) */


ngx_int_t
ngx_http_perstack_workspace_peek(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    /* the configuration refuses perstack_workspace without threads */
    return NGX_ERROR;
}


ngx_int_t
ngx_http_perstack_workspace_prepare(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    return NGX_ERROR;
}


ngx_int_t
ngx_http_perstack_workspace_record(ngx_http_perstack_exec_t *exec,
    ngx_event_handler_pt handler)
{
    return NGX_ERROR;
}


const char *
ngx_http_perstack_workspace_record_error(ngx_http_perstack_exec_t *exec,
    ngx_err_t *err)
{
    *err = 0;
    return "no thread pools";
}


#endif
