/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * perstack-demo, perstack.toml (its top-level "model") and the environment
 * files (--env-path, .env, .env.local).
 */


#include "demo.h"


/*
 * The configuration, as the runtime finds it: the file of --config, or
 * else the first perstack.toml from the working directory upward.  Only
 * the top-level "model" is read (it shows in initializeRuntime), unless
 * --model was given.  Returns 0, or 1 when the file cannot be read.
 */

int
demo_load_config(void)
{
    char         dir[PATH_MAX], path[PATH_MAX + 16], *slash;
    size_t       n;
    const char  *file, *p, *end, *eol, *v;
    demo_buf_t   b;
    static char  model[DEMO_MAX_MODEL + 1];

    memset(&b, 0, sizeof(b));

    file = demo.config;

    if (file == NULL) {
        if (getcwd(dir, sizeof(dir)) == NULL) {
            return 0;
        }

        for ( ;; ) {
            (void) snprintf(path, sizeof(path), "%s/perstack.toml",
                            strcmp(dir, "/") == 0 ? "" : dir);

            if (access(path, F_OK) == 0) {
                file = path;
                break;
            }

            slash = strrchr(dir, '/');

            if (slash == NULL || strcmp(dir, "/") == 0) {
                return 0;
            }

            if (slash == dir) {
                slash++;
            }

            *slash = '\0';
        }
    }

    if (demo_read_file(file, &b) != 0) {
        demo_err("error: cannot read config \"%s\": %s", file,
                 strerror(errno));
        return 1;
    }

    p = demo_buf_cstr(&b);
    end = p + b.len;

    for ( /* void */ ; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }

        while (p < eol && (*p == ' ' || *p == '\t')) {
            p++;
        }

        /* the first table ends the top level */
        if (p < eol && *p == '[') {
            break;
        }

        if ((size_t) (eol - p) < 5 || strncmp(p, "model", 5) != 0) {
            continue;
        }

        for (p += 5; p < eol && (*p == ' ' || *p == '\t'); p++) { }

        if (p == eol || *p++ != '=') {
            continue;
        }

        for ( /* void */ ; p < eol && (*p == ' ' || *p == '\t'); p++) { }

        if (p == eol || (*p != '"' && *p != '\'')) {
            continue;
        }

        v = memchr(p + 1, *p, (size_t) (eol - p - 1));
        n = v ? (size_t) (v - p - 1) : 0;

        if (v && n > 0 && n <= DEMO_MAX_MODEL && !demo.model_set) {
            memcpy(model, p + 1, n);
            model[n] = '\0';
            demo.model = model;
        }
    }

    free(b.data);

    return 0;
}


/*
 * The environment files, as the runtime loads them: those of --env-path,
 * or else .env and .env.local in the working directory.  A missing file
 * is no error; a variable already set is not replaced.
 */

void
demo_load_env(void)
{
    int          i, n;
    char        *p, *end, *eol, *eq, *k, *v, *e;
    demo_buf_t   b;
    const char  *files[DEMO_MAX_ENV_PATHS];

    static const char  *defaults[] = { ".env", ".env.local" };

    if (demo.nenv_paths) {
        n = demo.nenv_paths;
        memcpy(files, demo.env_paths, sizeof(files));

    } else {
        n = 2;
        files[0] = defaults[0];
        files[1] = defaults[1];
    }

    for (i = 0; i < n; i++) {
        memset(&b, 0, sizeof(b));

        if (demo_read_file(files[i], &b) != 0) {
            continue;
        }

        p = b.data;
        end = p ? p + b.len : NULL;

        for ( /* void */ ; p && p < end; p = eol + 1) {
            eol = memchr(p, '\n', (size_t) (end - p));
            if (eol == NULL) {
                eol = end;
            }

            *eol = '\0';

            while (*p == ' ' || *p == '\t') {
                p++;
            }

            if (strncmp(p, "export ", 7) == 0) {
                p += 7;
            }

            eq = strchr(p, '=');

            if (*p == '#' || eq == NULL || eq == p) {
                continue;
            }

            for (k = eq; k > p && (k[-1] == ' ' || k[-1] == '\t'); k--) { }
            *k = '\0';

            for (v = eq + 1; *v == ' ' || *v == '\t'; v++) { }

            e = v + strlen(v);

            /* an unquoted value ends at a comment */
            if (*v != '"' && *v != '\'' && strstr(v, " #") != NULL) {
                e = strstr(v, " #");
            }

            while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
                e--;
            }

            if (e - v >= 2 && (*v == '"' || *v == '\'') && e[-1] == *v) {
                v++;
                e--;
            }

            *e = '\0';

            if (strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789_") == strlen(p))
            {
                (void) setenv(p, v, 0);
            }
        }

        free(b.data);
    }
}
