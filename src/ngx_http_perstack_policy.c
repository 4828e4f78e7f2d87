
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The sandbox: what every container may and may not do, as the operator
 * sets it, and the container configuration sent to the Engine API.
 * Defaults are the locked-down ones; a directive only ever says otherwise.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_policy.h"
#include "ngx_http_perstack_docker.h"
#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_response.h"
#include "ngx_http_perstack_writer.h"
#include "ngx_http_perstack_process.h"


static void ngx_http_perstack_podman_tmpfs(ngx_http_perstack_jw_t *jw,
    ngx_array_t *tmpfs);
static void ngx_http_perstack_jw_kv(ngx_http_perstack_jw_t *jw,
    const char *key, ngx_str_t *value);
static void ngx_http_perstack_jw_arg(ngx_http_perstack_jw_t *jw,
    const char *arg);
static void ngx_http_perstack_jw_bool(ngx_http_perstack_jw_t *jw,
    ngx_uint_t value);
static void ngx_http_perstack_jw_mount(ngx_http_perstack_jw_t *jw,
    ngx_str_t *source, ngx_str_t *target, ngx_uint_t read_only);
static ngx_int_t ngx_http_perstack_valid_name(ngx_str_t *name,
    const char *first, const char *rest);
static ngx_int_t ngx_http_perstack_clean_path(ngx_str_t *path);


/*
 * The container's configuration.  Everything the request says reaches the
 * container as an element of an argument vector, never through a shell,
 * and nothing of nginx's own environment reaches it unless named.
 */

ngx_int_t
ngx_http_perstack_container_config(ngx_http_perstack_exec_t *exec,
    ngx_str_t *body)
{
    u_char                        *p, buf[NGX_INT64_LEN * 2 + 2];
    ngx_str_t                      s, *caps, *env;
    ngx_uint_t                     i;
    ngx_http_perstack_kv_t        *kv;
    ngx_http_perstack_jw_t         jw;
    ngx_http_perstack_loc_conf_t  *plcf;

    plcf = exec->conf;

    ngx_http_perstack_jw_pool(&jw, exec->pool, 4096);

    ngx_http_perstack_jw_open(&jw, '{');
    ngx_http_perstack_jw_kv(&jw, "Image", &exec->image);

    /* perstack run --runtime local (--job-id J | --continue-job J [-i]) */

    ngx_http_perstack_jw_key_lit(&jw, "Cmd");
    ngx_http_perstack_jw_open(&jw, '[');
    ngx_http_perstack_jw_arg(&jw, "perstack");
    ngx_http_perstack_jw_arg(&jw, "run");
    ngx_http_perstack_jw_arg(&jw, "--runtime");
    ngx_http_perstack_jw_arg(&jw, "local");

    /*
     * --config and --env-path, always: without them the runtime reads
     * perstack.toml from /workspace upward and .env and .env.local from
     * /workspace, where an agent's earlier run may have written them.
     * The environment is perstack_env's alone.
     */

    ngx_http_perstack_jw_arg(&jw, "--config");
    ngx_http_perstack_jw_value_str(&jw, plcf->config.data, plcf->config.len);
    ngx_http_perstack_jw_arg(&jw, "--env-path");
    ngx_http_perstack_jw_arg(&jw, "/dev/null");
    ngx_http_perstack_jw_arg(&jw, exec->continuing ? "--continue-job"
                                                   : "--job-id");
    ngx_http_perstack_jw_value_str(&jw, exec->job.data, exec->job.len);

    if (exec->answer) {
        ngx_http_perstack_jw_arg(&jw, "-i");
    }

    /* "--": an expert or a query that starts with "-" is not an option */
    ngx_http_perstack_jw_arg(&jw, "--");
    ngx_http_perstack_jw_value_str(&jw, exec->expert.data, exec->expert.len);
    ngx_http_perstack_jw_value_str(&jw, exec->query.data, exec->query.len);
    ngx_http_perstack_jw_close(&jw);

    ngx_str_set(&s, "/workspace");
    ngx_http_perstack_jw_kv(&jw, "WorkingDir", &s);

    /* always "uid:gid": an image without /etc/passwd would make it gid 0 */
    p = ngx_sprintf(buf, "%ui:%ui", plcf->uid, plcf->gid);
    s.data = buf;
    s.len = p - buf;
    ngx_http_perstack_jw_kv(&jw, "User", &s);

    ngx_http_perstack_jw_key_lit(&jw, "Env");
    ngx_http_perstack_jw_open(&jw, '[');

    env = exec->env ? exec->env->elts : NULL;

    for (i = 0; env && i < exec->env->nelts; i++) {
        ngx_http_perstack_jw_value_str(&jw, env[i].data, env[i].len);
    }

    ngx_http_perstack_jw_close(&jw);

    ngx_http_perstack_jw_key_lit(&jw, "Labels");
    ngx_http_perstack_jw_open(&jw, '{');

    if (plcf->labels) {
        kv = plcf->labels->elts;

        for (i = 0; i < plcf->labels->nelts; i++) {
            ngx_http_perstack_jw_key(&jw, kv[i].key.data, kv[i].key.len);
            ngx_http_perstack_jw_value_str(&jw, kv[i].value.data,
                                           kv[i].value.len);
        }
    }

    /* ours come last, so that they win over any of the same name */

    ngx_str_set(&s, "1");
    ngx_http_perstack_jw_kv(&jw, "io.perstack.managed", &s);
    s.data = exec->id;
    s.len = NGX_HTTP_PERSTACK_ID_LEN;
    ngx_http_perstack_jw_kv(&jw, "io.perstack.execution", &s);
    p = ngx_sprintf(buf, "%P", ngx_pid);
    s.data = buf;
    s.len = p - buf;
    ngx_http_perstack_jw_kv(&jw, "io.perstack.pid", &s);

    /* for the reaper: which nginx, on which host, left it behind */
    p = ngx_sprintf(buf, "%P", ngx_http_perstack_process_master());
    s.data = buf;
    s.len = p - buf;
    ngx_http_perstack_jw_kv(&jw, "io.perstack.master", &s);
    s.data = ngx_cycle->hostname.data;
    s.len = ngx_cycle->hostname.len;
    ngx_http_perstack_jw_kv(&jw, "io.perstack.host", &s);
    ngx_http_perstack_jw_kv(&jw, "io.perstack.job", &exec->job);
    ngx_http_perstack_jw_kv(&jw, "io.perstack.expert", &exec->expert);
    ngx_http_perstack_jw_close(&jw);

    ngx_http_perstack_jw_key_lit(&jw, "Tty");
    ngx_http_perstack_jw_value_lit(&jw, "false");
    ngx_http_perstack_jw_key_lit(&jw, "OpenStdin");
    ngx_http_perstack_jw_value_lit(&jw, "false");
    ngx_http_perstack_jw_key_lit(&jw, "AttachStdin");
    ngx_http_perstack_jw_value_lit(&jw, "false");
    ngx_http_perstack_jw_key_lit(&jw, "AttachStdout");
    ngx_http_perstack_jw_value_lit(&jw, "true");
    ngx_http_perstack_jw_key_lit(&jw, "AttachStderr");
    ngx_http_perstack_jw_value_lit(&jw, "true");
    ngx_http_perstack_jw_key_lit(&jw, "StopTimeout");
    ngx_http_perstack_jw_value_int(&jw, (plcf->stop_timeout + 999) / 1000);

    /* HostConfig */

    ngx_http_perstack_jw_key_lit(&jw, "HostConfig");
    ngx_http_perstack_jw_open(&jw, '{');
    ngx_http_perstack_jw_kv(&jw, "NetworkMode", &plcf->network);

    if (exec->gateway) {
        /*
         * Names are not needed (the gateway's URL has its address), and
         * engines before the fix of CVE-2024-29018 forward the queries of
         * an internal network from the host: only the gateway's address
         * is asked, from inside the network.
         */
        ngx_http_perstack_jw_key_lit(&jw, "Dns");
        ngx_http_perstack_jw_open(&jw, '[');
        ngx_http_perstack_jw_value_str(&jw, exec->gateway->address.data,
                                       exec->gateway->address.len);
        ngx_http_perstack_jw_close(&jw);
    }

    ngx_http_perstack_jw_key_lit(&jw, "ReadonlyRootfs");
    ngx_http_perstack_jw_bool(&jw, plcf->read_only);

    ngx_http_perstack_jw_key_lit(&jw, "Tmpfs");
    ngx_http_perstack_jw_open(&jw, '{');

    kv = plcf->tmpfs->elts;

    for (i = 0; i < plcf->tmpfs->nelts; i++) {
        ngx_http_perstack_jw_key(&jw, kv[i].key.data, kv[i].key.len);
        ngx_http_perstack_jw_value_str(&jw, kv[i].value.data,
                                       kv[i].value.len);
    }

    if (exec->docker->podman && plcf->read_only) {
        ngx_http_perstack_podman_tmpfs(&jw, plcf->tmpfs);
    }

    if (exec->workspace.len == 0) {
        /* no workspace kept: a fresh one, gone with the container */

        s.len = sizeof("rw,nosuid,nodev,size=,uid=,gid=,mode=0700") - 1
                + plcf->workspace_size.len + 2 * NGX_INT_T_LEN;
        s.data = ngx_pnalloc(exec->pool, s.len);
        if (s.data == NULL) {
            return NGX_ERROR;
        }

        if (exec->docker->podman) {
            /*
             * Podman refuses "uid=" and "gid=", and makes a tmpfs
             * "noexec" only when asked; its "U" gives the tmpfs to the
             * container's user, as uid= and gid= do.
             */
            p = ngx_sprintf(s.data, "rw,nosuid,nodev,noexec,size=%V,U,"
                                    "mode=0700", &plcf->workspace_size);

        } else {
            p = ngx_sprintf(s.data, "rw,nosuid,nodev,size=%V,uid=%ui,"
                                    "gid=%ui,mode=0700",
                            &plcf->workspace_size, plcf->uid, plcf->gid);
        }

        s.len = p - s.data;

        ngx_http_perstack_jw_kv(&jw, "/workspace", &s);
    }

    ngx_http_perstack_jw_close(&jw);

    ngx_http_perstack_jw_key_lit(&jw, "Mounts");
    ngx_http_perstack_jw_open(&jw, '[');

    if (exec->workspace.len) {
        ngx_str_set(&s, "/workspace");
        ngx_http_perstack_jw_mount(&jw, &exec->workspace, &s, 0);
    }

    if (plcf->binds) {
        kv = plcf->binds->elts;

        for (i = 0; i < plcf->binds->nelts; i++) {
            ngx_http_perstack_jw_mount(&jw, &kv[i].key, &kv[i].value, 1);
        }
    }

    ngx_http_perstack_jw_close(&jw);

    ngx_http_perstack_jw_key_lit(&jw, "Memory");
    ngx_http_perstack_jw_value_int(&jw, plcf->memory);
    ngx_http_perstack_jw_key_lit(&jw, "MemorySwap");
    ngx_http_perstack_jw_value_int(&jw, plcf->memory + plcf->swap);
    ngx_http_perstack_jw_key_lit(&jw, "NanoCpus");
    ngx_http_perstack_jw_value_int(&jw, plcf->nano_cpus);
    ngx_http_perstack_jw_key_lit(&jw, "PidsLimit");
    ngx_http_perstack_jw_value_int(&jw, plcf->pids_limit);

    ngx_http_perstack_jw_key_lit(&jw, "CapDrop");
    ngx_http_perstack_jw_open(&jw, '[');
    ngx_http_perstack_jw_arg(&jw, "ALL");
    ngx_http_perstack_jw_close(&jw);

    ngx_http_perstack_jw_key_lit(&jw, "CapAdd");
    ngx_http_perstack_jw_open(&jw, '[');

    if (plcf->cap_add) {
        caps = plcf->cap_add->elts;

        for (i = 0; i < plcf->cap_add->nelts; i++) {
            ngx_http_perstack_jw_value_str(&jw, caps[i].data, caps[i].len);
        }
    }

    ngx_http_perstack_jw_close(&jw);

    ngx_http_perstack_jw_key_lit(&jw, "SecurityOpt");
    ngx_http_perstack_jw_open(&jw, '[');

    if (plcf->no_new_privileges) {
        ngx_http_perstack_jw_arg(&jw, "no-new-privileges");
    }

    ngx_http_perstack_jw_close(&jw);

    ngx_http_perstack_jw_key_lit(&jw, "Init");
    ngx_http_perstack_jw_bool(&jw, plcf->init);

    if (plcf->runtime.len) {
        ngx_http_perstack_jw_kv(&jw, "Runtime", &plcf->runtime);
    }

    /* the output goes to the client, not to the engine's disk */
    ngx_http_perstack_jw_key_lit(&jw, "LogConfig");
    ngx_http_perstack_jw_open(&jw, '{');
    ngx_str_set(&s, "none");
    ngx_http_perstack_jw_kv(&jw, "Type", &s);
    ngx_http_perstack_jw_key_lit(&jw, "Config");
    ngx_http_perstack_jw_open(&jw, '{');
    ngx_http_perstack_jw_close(&jw);
    ngx_http_perstack_jw_close(&jw);

    ngx_http_perstack_jw_close(&jw);
    ngx_http_perstack_jw_close(&jw);

    if (ngx_http_perstack_jw_failed(&jw) || jw.depth != 0) {
        return NGX_ERROR;
    }

    body->data = jw.start;
    body->len = ngx_http_perstack_jw_len(&jw);

    return NGX_OK;
}


/*
 * Podman gives a container with a read-only root a writable tmpfs on
 * /tmp, /run and /var/tmp, unless one is mounted there already: those
 * the configuration does not name get a read-only one, with the image's
 * files in it, so that the root stays read-only as on Docker.
 */

static void
ngx_http_perstack_podman_tmpfs(ngx_http_perstack_jw_t *jw,
    ngx_array_t *tmpfs)
{
    ngx_str_t                options;
    ngx_uint_t               i, k;
    ngx_http_perstack_kv_t  *kv;

    static ngx_str_t  paths[] = {
        ngx_string("/tmp"),
        ngx_string("/run"),
        ngx_string("/var/tmp")
    };

    ngx_str_set(&options, "ro,nosuid,nodev,noexec");

    kv = tmpfs->elts;

    for (k = 0; k < sizeof(paths) / sizeof(ngx_str_t); k++) {

        for (i = 0; i < tmpfs->nelts; i++) {
            if (kv[i].key.len == paths[k].len
                && ngx_strncmp(kv[i].key.data, paths[k].data,
                               paths[k].len)
                   == 0)
            {
                break;
            }
        }

        if (i == tmpfs->nelts) {
            ngx_http_perstack_jw_key(jw, paths[k].data, paths[k].len);
            ngx_http_perstack_jw_value_str(jw, options.data, options.len);
        }
    }
}


/* "key":"value" */

static void
ngx_http_perstack_jw_kv(ngx_http_perstack_jw_t *jw, const char *key,
    ngx_str_t *value)
{
    ngx_http_perstack_jw_key(jw, (u_char *) key, ngx_strlen(key));
    ngx_http_perstack_jw_value_str(jw, value->data, value->len);
}


static void
ngx_http_perstack_jw_arg(ngx_http_perstack_jw_t *jw, const char *arg)
{
    ngx_http_perstack_jw_value_str(jw, (u_char *) arg, ngx_strlen(arg));
}


static void
ngx_http_perstack_jw_bool(ngx_http_perstack_jw_t *jw, ngx_uint_t value)
{
    if (value) {
        ngx_http_perstack_jw_value_lit(jw, "true");

    } else {
        ngx_http_perstack_jw_value_lit(jw, "false");
    }
}


/* {"Type":"bind","Source":...,"Target":...,"ReadOnly":...} */

static void
ngx_http_perstack_jw_mount(ngx_http_perstack_jw_t *jw, ngx_str_t *source,
    ngx_str_t *target, ngx_uint_t read_only)
{
    ngx_str_t  type;

    ngx_str_set(&type, "bind");

    ngx_http_perstack_jw_open(jw, '{');
    ngx_http_perstack_jw_kv(jw, "Type", &type);
    ngx_http_perstack_jw_kv(jw, "Source", source);
    ngx_http_perstack_jw_kv(jw, "Target", target);
    ngx_http_perstack_jw_key_lit(jw, "ReadOnly");
    ngx_http_perstack_jw_bool(jw, read_only);
    ngx_http_perstack_jw_close(jw);
}


/*
 * perstack_env values, evaluated for the request: "NAME=value" strings in
 * the execution's pool.
 */

ngx_int_t
ngx_http_perstack_env_evaluate(ngx_http_request_t *r,
    ngx_http_perstack_exec_t *exec)
{
    u_char                        *p;
    ngx_str_t                      value, *s;
    ngx_uint_t                     i;
    ngx_http_perstack_env_t       *env;
    ngx_http_perstack_loc_conf_t  *plcf;

    plcf = exec->conf;

    if (plcf->env == NULL) {
        return NGX_OK;
    }

    exec->env = ngx_array_create(exec->pool, plcf->env->nelts,
                                 sizeof(ngx_str_t));
    if (exec->env == NULL) {
        return NGX_ERROR;
    }

    env = plcf->env->elts;

    for (i = 0; i < plcf->env->nelts; i++) {
        if (ngx_http_complex_value(r, &env[i].value, &value) != NGX_OK) {
            return NGX_ERROR;
        }

        s = ngx_array_push(exec->env);
        if (s == NULL) {
            return NGX_ERROR;
        }

        s->len = env[i].name.len + 1 + value.len;
        s->data = ngx_pnalloc(exec->pool, s->len);
        if (s->data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(s->data, env[i].name.data, env[i].name.len);
        *p++ = '=';
        ngx_memcpy(p, value.data, value.len);
    }

    return NGX_OK;
}


/*
 * Directives.
 */

char *
ngx_http_perstack_set_user(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_perstack_loc_conf_t *plcf = conf;

    u_char     *colon;
    ngx_int_t   uid, gid;
    ngx_str_t  *value;

    if (plcf->user.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* numeric only: tmpfs options and workspace ownership need numbers */

    colon = ngx_strlchr(value[1].data, value[1].data + value[1].len, ':');

    uid = ngx_atoi(value[1].data,
                   (colon ? colon : value[1].data + value[1].len)
                   - value[1].data);
    gid = colon ? ngx_atoi(colon + 1,
                           value[1].data + value[1].len - colon - 1)
                : uid;

    if (uid == NGX_ERROR || gid == NGX_ERROR
        || uid > 2147483647 || gid > 2147483647)
    {
        return "must be \"uid\" or \"uid:gid\", in numbers";
    }

    if (uid == 0) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "containers will run as root (uid 0)");
    }

    plcf->user = value[1];
    plcf->uid = uid;
    plcf->gid = gid;

    return NGX_CONF_OK;
}


char *
ngx_http_perstack_set_cpus(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_perstack_loc_conf_t *plcf = conf;

    u_char      *p, *last;
    ngx_str_t   *value;
    ngx_uint_t   whole, frac, digits;

    if (plcf->nano_cpus != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = value[1].data;
    last = p + value[1].len;
    whole = 0;
    frac = 0;
    digits = 0;

    while (p < last && *p >= '0' && *p <= '9' && whole < 1024) {
        whole = whole * 10 + (*p++ - '0');
    }

    if (p < last && *p == '.') {
        for (p++; p < last && *p >= '0' && *p <= '9' && digits < 9; p++) {
            frac = frac * 10 + (*p - '0');
            digits++;
        }
    }

    while (digits < 9) {
        frac *= 10;
        digits++;
    }

    if (p != last || value[1].len == 0 || whole >= 1024
        || whole * 1000000000 + frac == 0)
    {
        return "must be a number of CPUs, such as \"1\" or \"0.5\"";
    }

    plcf->nano_cpus = whole * 1000000000 + frac;

    return NGX_CONF_OK;
}


/* perstack_tmpfs, perstack_bind, perstack_label: pairs */

char *
ngx_http_perstack_set_pair(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t                *value, *target;
    ngx_array_t             **a;
    ngx_http_perstack_kv_t   *kv;

    value = cf->args->elts;

    if (ngx_strcmp(cmd->name.data, "perstack_label") == 0) {
        if (value[1].len == 0
            || (value[1].len >= sizeof("io.perstack.") - 1
                && ngx_strncmp(value[1].data, "io.perstack.",
                               sizeof("io.perstack.") - 1) == 0))
        {
            return "cannot set a label in the io.perstack. namespace";
        }

    } else {
        /* paths in the container, and a bind's host path, are absolute */
        if (value[1].data[0] != '/'
            || (cmd->offset == offsetof(ngx_http_perstack_loc_conf_t, binds)
                && value[2].data[0] != '/'))
        {
            return "takes absolute paths";
        }

        target = (cmd->offset == offsetof(ngx_http_perstack_loc_conf_t, binds))
                 ? &value[2] : &value[1];

        /* a path that would be hidden, or would hide, is refused */
        if (ngx_http_perstack_clean_path(target) != NGX_OK) {
            return "takes a path without \".\", \"..\", \"//\" or a "
                   "trailing \"/\"";
        }

        if (ngx_strcmp(target->data, "/workspace") == 0
            || ngx_strncmp(target->data, "/workspace/", 11) == 0)
        {
            return "cannot mount on /workspace, which is the module's";
        }

        if (ngx_strchr(value[2].data, '"') != NULL
            && cmd->offset == offsetof(ngx_http_perstack_loc_conf_t, tmpfs))
        {
            return "takes tmpfs options without quotes";
        }
    }

    a = (ngx_array_t **) (p + cmd->offset);

    if (*a == NGX_CONF_UNSET_PTR) {
        *a = ngx_array_create(cf->pool, 2, sizeof(ngx_http_perstack_kv_t));
        if (*a == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    kv = ngx_array_push(*a);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }

    kv->key = value[1];
    kv->value = value[2];

    return NGX_CONF_OK;
}


/* perstack_config: a path the workspace cannot shadow */

char *
ngx_http_perstack_set_config(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_perstack_loc_conf_t *plcf = conf;

    ngx_str_t  *value;

    if (plcf->config.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* a relative path would be found from /workspace, the agent's */
    if (value[1].data[0] != '/') {
        return "takes an absolute path";
    }

    if (ngx_http_perstack_clean_path(&value[1]) != NGX_OK) {
        return "takes a path without \".\", \"..\", \"//\" or a "
               "trailing \"/\"";
    }

    if (ngx_strcmp(value[1].data, "/workspace") == 0
        || ngx_strncmp(value[1].data, "/workspace/", 11) == 0)
    {
        return "cannot name a file on or under /workspace, which an agent "
               "writes to";
    }

    plcf->config = value[1];

    return NGX_CONF_OK;
}


char *
ngx_http_perstack_set_env(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_perstack_loc_conf_t *plcf = conf;

    ngx_str_t                         *value;
    ngx_http_perstack_env_t           *env;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    if (ngx_http_perstack_valid_name(&value[1],
                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "abcdefghijklmnopqrstuvwxyz_",
                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "abcdefghijklmnopqrstuvwxyz_0123456789")
        != NGX_OK)
    {
        return "needs a name of letters, digits and \"_\"";
    }

    if (plcf->env == NGX_CONF_UNSET_PTR) {
        plcf->env = ngx_array_create(cf->pool, 2,
                                     sizeof(ngx_http_perstack_env_t));
        if (plcf->env == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    env = ngx_array_push(plcf->env);
    if (env == NULL) {
        return NGX_CONF_ERROR;
    }

    env->name = value[1];

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = &env->value;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_perstack_set_caps(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_perstack_loc_conf_t *plcf = conf;

    ngx_str_t   *value, *cap;
    ngx_uint_t   i;

    if (plcf->cap_add != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    plcf->cap_add = ngx_array_create(cf->pool, cf->args->nelts,
                                     sizeof(ngx_str_t));
    if (plcf->cap_add == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_http_perstack_valid_name(&value[i],
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ_")
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid capability \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        cap = ngx_array_push(plcf->cap_add);
        if (cap == NULL) {
            return NGX_CONF_ERROR;
        }

        *cap = value[i];
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_perstack_clean_path(ngx_str_t *path)
{
    u_char  *p, *last;

    p = path->data;
    last = p + path->len;

    if (path->len < 2 || last[-1] == '/') {
        return NGX_DECLINED;
    }

    for ( /* void */ ; p < last; p++) {
        if (*p != '/') {
            continue;
        }

        if (p + 1 < last && p[1] == '/') {
            return NGX_DECLINED;
        }

        if (p + 1 < last && p[1] == '.'
            && (p + 2 == last || p[2] == '/'
                || (p[2] == '.' && (p + 3 == last || p[3] == '/'))))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_perstack_valid_name(ngx_str_t *name, const char *first,
    const char *rest)
{
    size_t  i;

    if (name->len == 0 || name->len > 128
        || ngx_strchr(first, name->data[0]) == NULL)
    {
        return NGX_DECLINED;
    }

    for (i = 1; i < name->len; i++) {
        if (name->data[i] == '\0' || ngx_strchr(rest, name->data[i]) == NULL)
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


char *
ngx_http_perstack_policy_merge(ngx_conf_t *cf,
    ngx_http_perstack_loc_conf_t *prev, ngx_http_perstack_loc_conf_t *conf)
{
    ngx_http_perstack_kv_t  *kv;

    if (conf->user.data == NULL) {
        conf->user = prev->user;
        conf->uid = prev->uid;
        conf->gid = prev->gid;
    }

    if (conf->user.data == NULL) {
        ngx_str_set(&conf->user, "65534:65534");
        conf->uid = 65534;
        conf->gid = 65534;
    }

    ngx_conf_merge_str_value(conf->network, prev->network, "none");
    ngx_conf_merge_value(conf->read_only, prev->read_only, 1);
    ngx_conf_merge_value(conf->no_new_privileges, prev->no_new_privileges, 1);
    ngx_conf_merge_value(conf->init, prev->init, 1);
    ngx_conf_merge_str_value(conf->runtime, prev->runtime, "");
    ngx_conf_merge_str_value(conf->config, prev->config,
                             "/etc/perstack/perstack.toml");
    ngx_conf_merge_str_value(conf->workspace_size, prev->workspace_size,
                             "256m");
    ngx_conf_merge_off_value(conf->memory, prev->memory, 512 * 1024 * 1024);
    ngx_conf_merge_off_value(conf->swap, prev->swap, 0);
    ngx_conf_merge_uint_value(conf->nano_cpus, prev->nano_cpus, 1000000000);
    ngx_conf_merge_value(conf->pids_limit, prev->pids_limit, 128);

    ngx_conf_merge_ptr_value(conf->cap_add, prev->cap_add, NULL);
    ngx_conf_merge_ptr_value(conf->binds, prev->binds, NULL);
    ngx_conf_merge_ptr_value(conf->labels, prev->labels, NULL);
    ngx_conf_merge_ptr_value(conf->env, prev->env, NULL);
    ngx_conf_merge_ptr_value(conf->tmpfs, prev->tmpfs, NULL);

    if (conf->tmpfs == NULL) {
        conf->tmpfs = ngx_array_create(cf->pool, 1,
                                       sizeof(ngx_http_perstack_kv_t));
        if (conf->tmpfs == NULL) {
            return NGX_CONF_ERROR;
        }

        kv = ngx_array_push(conf->tmpfs);
        if (kv == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_str_set(&kv->key, "/tmp");
        ngx_str_set(&kv->value, "rw,nosuid,nodev,noexec,size=64m");
    }

    {
        ngx_str_t  size = conf->workspace_size;

        /* it becomes a tmpfs option: a size and nothing else */
        if (ngx_parse_offset(&size) == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"perstack_workspace_size\" \"%V\"",
                               &conf->workspace_size);
            return NGX_CONF_ERROR;
        }
    }

    if (conf->memory < 4 * 1024 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"perstack_memory\" must be at least 4m");
        return NGX_CONF_ERROR;
    }

    if (conf->pids_limit < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"perstack_pids_limit\" must be at least 1");
        return NGX_CONF_ERROR;
    }

    if (conf->network.len == 4
        && ngx_strncmp(conf->network.data, "host", 4) == 0
        && conf->execute)
    {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "containers will share the host's network");
    }

    return NGX_CONF_OK;
}
