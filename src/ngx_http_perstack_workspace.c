
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Per-user workspaces: a directory under perstack_workspace_root,
 * bind-mounted at /workspace, where the runtime keeps its jobs.
 *
 * The path is checked as a string first (no "..", no NUL, no absolute path
 * elsewhere, no over-long name), then walked from the root one component at
 * a time with O_NOFOLLOW in a thread of nginx's thread pool, so that no
 * symbolic link is ever followed and the worker never waits on the disk.
 */


#include "ngx_http_perstack_module.h"
#include "ngx_http_perstack_json.h"

#include <dirent.h>
#include <yajl/yajl_tree.h>


#define NGX_HTTP_PERSTACK_PATH_MAX        1024
#define NGX_HTTP_PERSTACK_NAME_MAX        255
#define NGX_HTTP_PERSTACK_CHECKPOINT_MAX  (4 * 1024 * 1024)


typedef struct {
    /* in */
    u_char                          *root;
    u_char                          *path;
    u_char                          *job;
    uid_t                            uid;
    gid_t                            gid;
    unsigned                         give:1;

    /* out */
    ngx_int_t                        rc;
    ngx_err_t                        err;
    const char                      *what;
    u_char                          *pending;
    size_t                           pending_len;
} ngx_http_perstack_ws_task_t;


#if (NGX_THREADS)

static ngx_uint_t ngx_http_perstack_workspace_uses_approval(
    ngx_http_perstack_loc_conf_t *conf);
static ngx_int_t ngx_http_perstack_workspace_path(ngx_str_t *root,
    ngx_str_t *value, ngx_str_t *rel, const char **why, ngx_pool_t *pool);
static void ngx_http_perstack_workspace_thread(void *data, ngx_log_t *log);
static int ngx_http_perstack_workspace_walk(ngx_http_perstack_ws_task_t *t,
    int dir, u_char *path, ngx_uint_t create);
static void ngx_http_perstack_workspace_pending(
    ngx_http_perstack_ws_task_t *t, int jobdir);
static void ngx_http_perstack_workspace_event(ngx_event_t *ev);
static void ngx_http_perstack_workspace_resume(ngx_http_request_t *r);
static void ngx_http_perstack_workspace_cleanup(void *data);

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

ngx_int_t
ngx_http_perstack_workspace_prepare(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    u_char                        *p;
    uid_t                          uid;
    gid_t                          gid;
    ngx_str_t                      value, rel, message;
    const char                    *why;
    ngx_thread_task_t             *task;
    ngx_pool_cleanup_t            *cln;
    ngx_http_perstack_ws_task_t   *t;
    ngx_http_perstack_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    if (ngx_http_complex_value(r, plcf->workspace, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_perstack_workspace_path(&plcf->workspace_root, &value, &rel,
                                         &why, r->pool)
        != NGX_OK)
    {
        if (why == NULL) {
            return NGX_ERROR;
        }

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "perstack: workspace \"%V\" refused: %s",
                      ngx_http_perstack_log_escape(r->pool, &value), why);

        ngx_str_set(&message, "this request's workspace path is not "
                              "acceptable");

        ngx_http_finalize_request(r,
                ngx_http_perstack_send_error(r, NGX_HTTP_BAD_REQUEST,
                                             "bad_workspace", &message,
                                             NULL, NULL));
        return NGX_DONE;
    }

    uid = (uid_t) plcf->uid;
    gid = (gid_t) plcf->gid;

    if (geteuid() != 0 && geteuid() != uid)
    {
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

    ctx->workspace.len = plcf->workspace_root.len + 1 + rel.len;
    ctx->workspace.data = ngx_pnalloc(r->pool, ctx->workspace.len + 1);
    if (ctx->workspace.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(ctx->workspace.data, "%V/%V", &plcf->workspace_root,
                    &rel);
    *p = '\0';

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_perstack_ws_task_t));
    if (task == NULL) {
        return NGX_ERROR;
    }

    t = task->ctx;

    t->root = plcf->workspace_root.data;
    t->path = rel.data;
    t->uid = uid;
    t->gid = gid;
    t->give = (geteuid() == 0);

    if (ctx->continuing) {
        t->job = ngx_pnalloc(r->pool, ctx->job.len + 1);
        if (t->job == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(t->job, ctx->job.data, ctx->job.len);
        t->job[ctx->job.len] = '\0';
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
 * rel receives the path below the root, its components joined by "/".
 * Returns NGX_DECLINED with why set for a path that is refused.
 */

static ngx_int_t
ngx_http_perstack_workspace_path(ngx_str_t *root, ngx_str_t *value,
    ngx_str_t *rel, const char **why, ngx_pool_t *pool)
{
    u_char  *p, *last, *name, *dst;
    size_t   len;

    *why = NULL;

    if (value->len == 0) {
        *why = "it is empty";
        return NGX_DECLINED;
    }

    if (value->len > NGX_HTTP_PERSTACK_PATH_MAX) {
        *why = "it is too long";
        return NGX_DECLINED;
    }

    if (ngx_strlchr(value->data, value->data + value->len, '\0')) {
        *why = "it contains a NUL byte";
        return NGX_DECLINED;
    }

    p = value->data;
    last = value->data + value->len;

    if (*p == '/') {
        /* an absolute path is accepted only inside the root */
        if (value->len <= root->len + 1
            || ngx_strncmp(p, root->data, root->len) != 0
            || p[root->len] != '/')
        {
            *why = "it is not under perstack_workspace_root";
            return NGX_DECLINED;
        }

        p += root->len + 1;
    }

    dst = ngx_pnalloc(pool, last - p + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    rel->data = dst;

    while (p < last) {
        name = p;

        while (p < last && *p != '/') {
            p++;
        }

        len = p - name;

        if (p < last) {
            p++;
        }

        if (len == 0) {
            continue;
        }

        if ((len == 1 && name[0] == '.')
            || (len == 2 && name[0] == '.' && name[1] == '.'))
        {
            *why = "it has a \".\" or \"..\" component";
            return NGX_DECLINED;
        }

        if (len > NGX_HTTP_PERSTACK_NAME_MAX) {
            *why = "a component is longer than 255 bytes";
            return NGX_DECLINED;
        }

        if (dst != rel->data) {
            *dst++ = '/';
        }

        dst = ngx_cpymem(dst, name, len);
    }

    if (dst == rel->data) {
        *why = "it names the root itself";
        return NGX_DECLINED;
    }

    rel->len = dst - rel->data;
    *dst = '\0';

    return NGX_OK;
}


/* In a thread of the pool: may block, must not touch nginx's structures. */

static void
ngx_http_perstack_workspace_thread(void *data, ngx_log_t *log)
{
    ngx_http_perstack_ws_task_t  *t = data;

    int      root, ws, jobdir;
    u_char   jobs[NGX_HTTP_PERSTACK_JOB_ID_MAX + sizeof("perstack/jobs/")];

    t->rc = NGX_ERROR;

    root = open((char *) t->root, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
    if (root == -1) {
        t->err = ngx_errno;
        t->what = "open() of perstack_workspace_root";
        return;
    }

    ws = ngx_http_perstack_workspace_walk(t, root, t->path, 1);
    close(root);

    if (ws == -1) {
        return;
    }

    if (t->job == NULL) {
        close(ws);
        t->rc = NGX_OK;
        return;
    }

    ngx_sprintf(jobs, "perstack/jobs/%s%Z", t->job);

    jobdir = ngx_http_perstack_workspace_walk(t, ws, jobs, 0);
    close(ws);

    if (jobdir == -1) {
        return;
    }

    ngx_http_perstack_workspace_pending(t, jobdir);
    close(jobdir);

    t->rc = NGX_OK;
}


/*
 * Opens path below dir one component at a time, never following a
 * symbolic link; with create, makes what is missing, for the container's
 * user.  Returns the last directory, or -1 with t->rc set.
 */

static int
ngx_http_perstack_workspace_walk(ngx_http_perstack_ws_task_t *t, int dir,
    u_char *path, ngx_uint_t create)
{
    int      fd, next;
    u_char  *p, *name, c;

    fd = dup(dir);
    if (fd == -1) {
        t->err = ngx_errno;
        t->what = "dup()";
        return -1;
    }

    p = path;
    c = '\0';

    while (*p) {
        name = p;

        while (*p && *p != '/') {
            p++;
        }

        c = *p;
        *p = '\0';

        next = openat(fd, (char *) name,
                      O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC);

        if (next == -1 && ngx_errno == NGX_ENOENT && create) {
            if (mkdirat(fd, (char *) name, 0700) == -1
                && ngx_errno != NGX_EEXIST)
            {
                t->err = ngx_errno;
                t->what = "mkdirat()";
                goto failed;
            }

            if (t->give
                && fchownat(fd, (char *) name, t->uid, t->gid,
                            AT_SYMLINK_NOFOLLOW)
                   == -1)
            {
                t->err = ngx_errno;
                t->what = "fchownat()";
                goto failed;
            }

            next = openat(fd, (char *) name,
                          O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC);
        }

        if (next == -1) {
            t->err = ngx_errno;

            if (t->err == NGX_ENOENT) {
                t->rc = NGX_ABORT;
                t->what = "no such job";

            } else if (t->err == ELOOP || t->err == NGX_ENOTDIR) {
                t->rc = NGX_DECLINED;
                t->what = "a component is a symbolic link or not a directory";

            } else {
                t->what = "openat()";
            }

            goto failed;
        }

        *p = c;

        if (c) {
            p++;
        }

        close(fd);
        fd = next;
    }

    return fd;

failed:

    *p = c;
    close(fd);

    return -1;
}


/*
 * The tool call the job waits for, from its newest checkpoint, so that the
 * approval callback sees what is being answered.  Best effort: a job with
 * no readable checkpoint just has none.
 */

static void
ngx_http_perstack_workspace_pending(ngx_http_perstack_ws_task_t *t,
    int jobdir)
{
    int             dir, fd;
    u_char         *buf, *p;
    DIR            *d;
    size_t          len, n;
    ssize_t         got;
    yajl_val        tree, calls, call, v;
    ngx_uint_t      i;
    struct stat     st;
    struct dirent  *de;
    struct timespec newest;
    char            name[NGX_HTTP_PERSTACK_NAME_MAX + 1];

    static const char  *calls_path[] = { "pendingToolCalls", NULL };
    static const char  *keys[] = { "id", "skillName", "toolName" };

    dir = openat(jobdir, "checkpoints",
                 O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC);
    if (dir == -1) {
        return;
    }

    d = fdopendir(dir);
    if (d == NULL) {
        close(dir);
        return;
    }

    name[0] = '\0';
    newest.tv_sec = 0;
    newest.tv_nsec = 0;

    while ((de = readdir(d)) != NULL) {
        len = ngx_strlen(de->d_name);

        if (len < sizeof(".json") || len > NGX_HTTP_PERSTACK_NAME_MAX
            || ngx_strcmp(de->d_name + len - 5, ".json") != 0)
        {
            continue;
        }

        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1
            || !S_ISREG(st.st_mode)
            || st.st_size > NGX_HTTP_PERSTACK_CHECKPOINT_MAX)
        {
            continue;
        }

        if (name[0] == '\0' || st.st_mtim.tv_sec > newest.tv_sec
            || (st.st_mtim.tv_sec == newest.tv_sec
                && st.st_mtim.tv_nsec > newest.tv_nsec))
        {
            newest = st.st_mtim;
            ngx_memcpy(name, de->d_name, len + 1);
        }
    }

    if (name[0] == '\0') {
        closedir(d);
        return;
    }

    /* the container may have swapped it for a FIFO since: never block */
    fd = openat(dirfd(d), name, O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC);
    closedir(d);

    if (fd == -1) {
        return;
    }

    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)
        || st.st_size > NGX_HTTP_PERSTACK_CHECKPOINT_MAX)
    {
        close(fd);
        return;
    }

    buf = malloc(NGX_HTTP_PERSTACK_CHECKPOINT_MAX + 1);
    if (buf == NULL) {
        close(fd);
        return;
    }

    len = 0;

    while (len < NGX_HTTP_PERSTACK_CHECKPOINT_MAX) {
        got = read(fd, buf + len, NGX_HTTP_PERSTACK_CHECKPOINT_MAX - len);
        if (got <= 0) {
            break;
        }

        len += got;
    }

    close(fd);
    buf[len] = '\0';

    /* the container wrote it: its depth is checked first */
    tree = ngx_http_perstack_json_depth_ok(buf, len,
                                           NGX_HTTP_PERSTACK_JSON_DEPTH_MAX)
           ? yajl_tree_parse((char *) buf, NULL, 0) : NULL;
    free(buf);

    if (tree == NULL) {
        return;
    }

    calls = yajl_tree_get(tree, calls_path, yajl_t_array);

    if (calls == NULL || calls->u.array.len == 0
        || !YAJL_IS_OBJECT(calls->u.array.values[0]))
    {
        yajl_tree_free(tree);
        return;
    }

    call = calls->u.array.values[0];

    /* {"id":"...","skillName":"...","toolName":"..."}, escaped */

    n = sizeof("{}");

    for (i = 0; i < 3; i++) {
        v = yajl_tree_get(call, (const char *[]) { keys[i], NULL },
                          yajl_t_string);
        if (v) {
            n += sizeof("\"\":\"\",") + ngx_strlen(keys[i])
                 + ngx_http_perstack_json_escape_size((u_char *) v->u.string,
                                                  ngx_strlen(v->u.string));
        }
    }

    t->pending = malloc(n);

    if (t->pending) {
        p = t->pending;
        *p++ = '{';

        for (i = 0; i < 3; i++) {
            v = yajl_tree_get(call, (const char *[]) { keys[i], NULL },
                              yajl_t_string);
            if (v == NULL) {
                continue;
            }

            if (p[-1] != '{') {
                *p++ = ',';
            }

            p = ngx_sprintf(p, "\"%s\":\"", keys[i]);
            p = ngx_http_perstack_json_escape(p, (u_char *) v->u.string,
                                              ngx_strlen(v->u.string));
            *p++ = '"';
        }

        *p++ = '}';
        t->pending_len = p - t->pending;
    }

    yajl_tree_free(tree);
}


static void
ngx_http_perstack_workspace_event(ngx_event_t *ev)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ev->data;
    c = r->connection;

    r->main->blocked--;
    r->aio = 0;

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

    r->write_event_handler = ngx_http_request_empty_handler;
    ctx->workspace_done = 1;

    switch (t->rc) {

    case NGX_OK:
        if (t->pending) {
            ctx->pending_tool.data = t->pending;
            ctx->pending_tool.len = t->pending_len;
        }

        ngx_http_perstack_continue(r, ctx);
        return;

    case NGX_ABORT:
        ngx_str_set(&message, "no such job in this workspace");

        ngx_http_finalize_request(r,
                ngx_http_perstack_send_error(r, NGX_HTTP_NOT_FOUND,
                                             "job_not_found", &message,
                                             "jobId", &ctx->job));
        return;

    case NGX_DECLINED:
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "perstack: workspace \"%V\" refused: %s",
                      ngx_http_perstack_log_escape(r->pool, &ctx->workspace),
                      t->what);

        ngx_str_set(&message, "this request's workspace path is not "
                              "acceptable");

        ngx_http_finalize_request(r,
                ngx_http_perstack_send_error(r, NGX_HTTP_BAD_REQUEST,
                                             "bad_workspace", &message,
                                             NULL, NULL));
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


static void
ngx_http_perstack_workspace_cleanup(void *data)
{
    ngx_http_perstack_ws_task_t  *t = data;

    if (t->pending) {
        free(t->pending);
        t->pending = NULL;
    }
}


#else /* !(NGX_THREADS) */


ngx_int_t
ngx_http_perstack_workspace_prepare(ngx_http_request_t *r,
    ngx_http_perstack_ctx_t *ctx)
{
    /* the configuration refuses perstack_workspace without threads */
    return NGX_ERROR;
}


#endif
