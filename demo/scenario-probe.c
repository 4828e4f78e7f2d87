/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * perstack-demo, scenario probe: the sandbox, seen from inside.
 */


#include "demo.h"


static int demo_probe_file(const char *path, demo_buf_t *out);
static void demo_buf_number_or_string(demo_buf_t *b, const char *s, size_t len);
static void demo_probe_limit(demo_buf_t *b, const char *key, const char *v1,
    const char *v2);
static int demo_probe_writable(const char *dir, int *err);
static void demo_mount_field(demo_buf_t *out, const char *p, size_t len);
static void demo_probe_mount(demo_buf_t *b, demo_buf_t *mounts,
    const char *path);
static int demo_probe_usual(const char *path);
static int demo_is_dir(const char *path);


extern char  **environ;


/* the text of a small file, its trailing white space cut; -1 if unreadable */

static int
demo_probe_file(const char *path, demo_buf_t *out)
{
    demo_buf_reset(out);

    if (demo_read_file(path, out) != 0) {
        return -1;
    }

    while (out->len > 0
           && (out->data[out->len - 1] == '\n'
               || out->data[out->len - 1] == ' '
               || out->data[out->len - 1] == '\t'))
    {
        out->data[--out->len] = '\0';
    }

    return 0;
}


/* an integer as a JSON number, anything else as a string */

static void
demo_buf_number_or_string(demo_buf_t *b, const char *s, size_t len)
{
    size_t  i;

    for (i = (len > 1 && s[0] == '-') ? 1 : 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            break;
        }
    }

    if (len > 0 && len <= 20 && i == len && !(len == 1 && s[0] == '-')) {
        demo_buf_add(b, s, len);
        return;
    }

    demo_buf_json_n(b, s, len);
}


/* "key":value of the first file that can be read, or "key":null */

static void
demo_probe_limit(demo_buf_t *b, const char *key, const char *v1,
    const char *v2)
{
    demo_buf_t  text;

    memset(&text, 0, sizeof(text));

    demo_buf_fmt(b, ",\"%s\":", key);

    if (demo_probe_file(v1, &text) == 0
        || (v2 && demo_probe_file(v2, &text) == 0))
    {
        demo_buf_number_or_string(b, demo_buf_cstr(&text), text.len);

    } else {
        demo_buf_str(b, "null");
    }

    free(text.data);
}


/* can a file be created in dir?  On failure *err is errno. */

static int
demo_probe_writable(const char *dir, int *err)
{
    int   fd;
    char  path[PATH_MAX];

    (void) snprintf(path, sizeof(path), "%s%s.perstack-probe-%ld", dir,
                    (dir[0] && dir[strlen(dir) - 1] == '/') ? "" : "/",
                    (long) getpid());

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

    if (fd == -1) {
        *err = errno;
        return 0;
    }

    (void) close(fd);
    (void) unlink(path);

    return 1;
}


/* a field of /proc/self/mounts, its octal escapes (\040) decoded */

static void
demo_mount_field(demo_buf_t *out, const char *p, size_t len)
{
    size_t  i;
    char    c;

    demo_buf_reset(out);

    for (i = 0; i < len; i++) {
        c = p[i];

        if (c == '\\' && i + 3 < len
            && p[i + 1] >= '0' && p[i + 1] <= '3'
            && p[i + 2] >= '0' && p[i + 2] <= '7'
            && p[i + 3] >= '0' && p[i + 3] <= '7')
        {
            c = (char) (((p[i + 1] - '0') << 6) | ((p[i + 2] - '0') << 3)
                        | (p[i + 3] - '0'));
            i += 3;
        }

        demo_buf_add(out, &c, 1);
    }
}


/*
 * "path":{"fstype":…,"options":…} for the last mount on path in
 * /proc/self/mounts (the one that is visible), or "path":null.
 */

static void
demo_probe_mount(demo_buf_t *b, demo_buf_t *mounts, const char *path)
{
    size_t       n;
    demo_buf_t   field, fstype, options;
    const char  *p, *end, *line, *f[4];
    size_t       flen[4];
    int          k, found;

    memset(&field, 0, sizeof(field));
    memset(&fstype, 0, sizeof(fstype));
    memset(&options, 0, sizeof(options));

    found = 0;
    p = demo_buf_cstr(mounts);
    end = p + mounts->len;

    while (p < end) {
        line = p;

        while (p < end && *p != '\n') {
            p++;
        }

        n = (size_t) (p - line);

        if (p < end) {
            p++;
        }

        /* device mountpoint fstype options ... */

        for (k = 0; k < 4; k++) {
            while (n > 0 && *line == ' ') {
                line++;
                n--;
            }

            f[k] = line;

            while (n > 0 && *line != ' ') {
                line++;
                n--;
            }

            flen[k] = (size_t) (line - f[k]);
        }

        if (flen[3] == 0) {
            continue;
        }

        demo_mount_field(&field, f[1], flen[1]);

        if (strcmp(demo_buf_cstr(&field), path) != 0) {
            continue;
        }

        found = 1;
        demo_mount_field(&fstype, f[2], flen[2]);
        demo_mount_field(&options, f[3], flen[3]);
    }

    demo_buf_json(b, path);

    if (found) {
        demo_buf_str(b, ":{\"fstype\":");
        demo_buf_json(b, demo_buf_cstr(&fstype));
        demo_buf_str(b, ",\"options\":");
        demo_buf_json(b, demo_buf_cstr(&options));
        demo_buf_str(b, "}");

    } else {
        demo_buf_str(b, ":null");
    }

    free(field.data);
    free(fstype.data);
    free(options.data);
}


/* the paths of the query, split at white space */

int
demo_query_paths(char **paths, int max)
{
    int          i, n;
    size_t       len;
    const char  *p, *w;

    n = 0;

    for (p = demo.query; *p && n < max; /* void */ ) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            p++;
        }

        if (*p == '\0') {
            break;
        }

        w = p;

        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            p++;
        }

        len = (size_t) (p - w);

        for (i = 0; i < n; i++) {
            if (strlen(paths[i]) == len && memcmp(paths[i], w, len) == 0) {
                break;
            }
        }

        if (i < n) {
            continue;
        }

        paths[n] = malloc(len + 1);
        if (paths[n] == NULL) {
            demo_oom();
        }

        memcpy(paths[n], w, len);
        paths[n][len] = '\0';
        n++;
    }

    return n;
}


/* one of the paths the probe always looks at */

static int
demo_probe_usual(const char *path)
{
    return strcmp(path, "/") == 0 || strcmp(path, "/tmp") == 0
           || strcmp(path, "/workspace") == 0;
}


static int
demo_is_dir(const char *path)
{
    struct stat  st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}


int
demo_scenario_probe(void)
{
    int           i, k, n, fd, err, npaths, first, ndirs;
    char          *paths[DEMO_PROBE_MAX_PATHS];
    char         **env;
    const char   *dirs[3 + DEMO_PROBE_MAX_PATHS], *p, *line, *end, *eq;
    gid_t         groups[256];
    demo_buf_t    b, status, mounts, dev, text;

    static const char  *status_keys[] = {
        "CapEff", "CapPrm", "CapBnd", "NoNewPrivs", NULL
    };

    memset(&b, 0, sizeof(b));
    memset(&status, 0, sizeof(status));
    memset(&mounts, 0, sizeof(mounts));
    memset(&dev, 0, sizeof(dev));
    memset(&text, 0, sizeof(text));

    npaths = demo_query_paths(paths, DEMO_PROBE_MAX_PATHS);

    demo_begin(NULL);

    demo_event(&b, "probe", 1);

    /* ids */

    demo_buf_fmt(&b, ",\"uid\":%ld,\"gid\":%ld,\"groups\":[",
                 (long) getuid(), (long) getgid());

    n = getgroups((int) (sizeof(groups) / sizeof(groups[0])), groups);

    for (i = 0; i < n; i++) {
        demo_buf_fmt(&b, "%s%ld", i ? "," : "", (long) groups[i]);
    }

    demo_buf_fmt(&b, "],\"pid\":%ld,\"pid1\":%s", (long) getpid(),
                 getpid() == 1 ? "true" : "false");

    /* capabilities and no_new_privs: the lines of /proc/self/status */

    (void) demo_read_file("/proc/self/status", &status);

    for (k = 0; status_keys[k]; k++) {
        demo_buf_fmt(&b, ",\"%s\":", status_keys[k]);

        p = demo_buf_cstr(&status);
        end = p + status.len;
        n = (int) strlen(status_keys[k]);
        line = NULL;

        while (p < end) {
            if (strncmp(p, status_keys[k], (size_t) n) == 0 && p[n] == ':') {
                line = p + n + 1;
                break;
            }

            p = memchr(p, '\n', (size_t) (end - p));
            if (p == NULL) {
                break;
            }

            p++;
        }

        if (line == NULL) {
            demo_buf_str(&b, "null");
            continue;
        }

        while (*line == ' ' || *line == '\t') {
            line++;
        }

        for (p = line; *p && *p != '\n'; p++) { /* void */ }

        if (k == 3) {
            demo_buf_number_or_string(&b, line, (size_t) (p - line));

        } else {
            demo_buf_json_n(&b, line, (size_t) (p - line));
        }
    }

    /* where a file can be created: the usual places, the query's dirs */

    ndirs = 0;
    dirs[ndirs++] = "/";
    dirs[ndirs++] = "/tmp";
    dirs[ndirs++] = "/workspace";

    for (i = 0; i < npaths; i++) {
        if (!demo_probe_usual(paths[i]) && demo_is_dir(paths[i])) {
            dirs[ndirs++] = paths[i];
        }
    }

    demo_buf_str(&b, ",\"writable\":{");
    demo_buf_reset(&text);
    first = 1;

    for (i = 0; i < ndirs; i++) {
        err = 0;
        k = demo_probe_writable(dirs[i], &err);

        demo_buf_str(&b, i ? "," : "");
        demo_buf_json(&b, dirs[i]);
        demo_buf_str(&b, k ? ":true" : ":false");

        if (!k) {
            demo_buf_str(&text, first ? "" : ",");
            demo_buf_json(&text, dirs[i]);
            demo_buf_str(&text, ":");
            demo_buf_json(&text, strerror(err));
            first = 0;
        }
    }

    demo_buf_str(&b, "},\"write_errors\":{");
    demo_buf_add(&b, demo_buf_cstr(&text), text.len);

    /* the network interfaces */

    demo_buf_str(&b, "},\"interfaces\":[");

    if (demo_read_file("/proc/net/dev", &dev) == 0) {
        p = demo_buf_cstr(&dev);
        end = p + dev.len;
        first = 1;

        /* two lines of headings, then "  name: counters" */

        for (k = 0; p < end; k++) {
            line = p;
            p = memchr(p, '\n', (size_t) (end - p));
            p = p ? p + 1 : end;

            if (k < 2) {
                continue;
            }

            while (line < p && *line == ' ') {
                line++;
            }

            eq = memchr(line, ':', (size_t) (p - line));
            if (eq == NULL || eq == line) {
                continue;
            }

            demo_buf_str(&b, first ? "" : ",");
            demo_buf_json_n(&b, line, (size_t) (eq - line));
            first = 0;
        }
    }

    /* the environment */

    demo_buf_str(&b, "],\"env\":{");

    for (env = environ, first = 1; env && *env; env++) {
        eq = strchr(*env, '=');

        demo_buf_str(&b, first ? "" : ",");

        if (eq == NULL) {
            demo_buf_json(&b, *env);
            demo_buf_str(&b, ":null");

        } else {
            demo_buf_json_n(&b, *env, (size_t) (eq - *env));
            demo_buf_str(&b, ":");
            demo_buf_json(&b, eq + 1);
        }

        first = 0;
    }

    /* the mounts on /, /tmp, /workspace and the query's paths */

    demo_buf_str(&b, "},\"mounts\":{");

    (void) demo_read_file("/proc/self/mounts", &mounts);

    for (i = 0; i < 3 + npaths; i++) {
        if (i >= 3 && demo_probe_usual(paths[i - 3])) {
            continue;
        }

        demo_buf_str(&b, i ? "," : "");
        demo_probe_mount(&b, &mounts, i < 3 ? dirs[i] : paths[i - 3]);
    }

    demo_buf_str(&b, "}");

    /* cgroup limits: v1 first, then v2 */

    demo_probe_limit(&b, "memory_limit",
                     "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                     "/sys/fs/cgroup/memory.max");
    demo_probe_limit(&b, "memory_swap_limit",
                     "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
                     "/sys/fs/cgroup/memory.swap.max");
    demo_probe_limit(&b, "pids_max", "/sys/fs/cgroup/pids/pids.max",
                     "/sys/fs/cgroup/pids.max");

    demo_buf_str(&b, ",\"cpu\":");

    if (demo_probe_file("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", &text) == 0) {
        demo_buf_str(&b, "{\"quota\":");
        demo_buf_number_or_string(&b, demo_buf_cstr(&text), text.len);
        demo_buf_str(&b, ",\"period\":");

        if (demo_probe_file("/sys/fs/cgroup/cpu/cpu.cfs_period_us", &text)
            == 0)
        {
            demo_buf_number_or_string(&b, demo_buf_cstr(&text), text.len);

        } else {
            demo_buf_str(&b, "null");
        }

        demo_buf_str(&b, "}");

    } else if (demo_probe_file("/sys/fs/cgroup/cpu.max", &text) == 0) {
        /* "quota period", the quota maybe "max" */
        p = demo_buf_cstr(&text);
        eq = strchr(p, ' ');

        demo_buf_str(&b, "{\"quota\":");
        demo_buf_number_or_string(&b, p, eq ? (size_t) (eq - p) : text.len);
        demo_buf_str(&b, ",\"period\":");

        if (eq) {
            demo_buf_number_or_string(&b, eq + 1, strlen(eq + 1));

        } else {
            demo_buf_str(&b, "null");
        }

        demo_buf_str(&b, "}");

    } else {
        demo_buf_str(&b, "null");
    }

    /* the paths of the query: readable? */

    demo_buf_str(&b, ",\"read\":{");

    for (i = 0; i < npaths; i++) {
        fd = open(paths[i], O_RDONLY);

        demo_buf_str(&b, i ? "," : "");
        demo_buf_json(&b, paths[i]);
        demo_buf_str(&b, fd == -1 ? ":false" : ":true");

        if (fd != -1) {
            (void) close(fd);
        }
    }

    demo_buf_str(&b, "}");
    demo_emit(&b);

    demo_complete("Probed the sandbox.");

    for (i = 0; i < npaths; i++) {
        free(paths[i]);
    }

    free(b.data);
    free(status.data);
    free(mounts.data);
    free(dev.data);
    free(text.data);

    return 0;
}
