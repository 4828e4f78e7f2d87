/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * perstack-demo: a stand-in for the Perstack runtime's command line,
 * "perstack run [options] <expert> <query>", for the demo image and the
 * module's tests.  It prints the runtime's stdout protocol (one JSON event
 * per line) and picks a scenario by the expert's name (scenarios.h): normal
 * runs, interactive stops, errors, slow and huge output, garbage lines,
 * crashes, a process that ignores SIGTERM.  See demo/README.md.
 *
 * Every line goes out with one write(2), so a reader never sees half an
 * event because of buffering.  No model is called: the texts are made from
 * the query.
 *
 * This file: the command line, and the choice of the scenario.
 *
 * Build (scripts/build-demo-image.sh compiles all the .c files of demo/):
 *     gcc -std=c99 -static -O2 -Wall -Wextra -Werror -o perstack *.c
 */


#include "demo.h"


#define DEMO_USAGE                                                            \
    "usage: perstack run [options] <expert> <query>\n"                        \
    "\n"                                                                      \
    "options:\n"                                                              \
    "  --job-id <id>              id of the new job\n"                        \
    "  --continue                 continue the latest job\n"                  \
    "  --continue-job <id>        continue the given job\n"                   \
    "  --resume-from <id>         resume from this checkpoint"                \
    " (with --continue-job)\n"                                                \
    "  -i, --interactive-tool-call-result\n"                                  \
    "                             the query answers the pending"              \
    " interactive tool call\n"                                                \
    "  --max-steps <n>            maximum number of steps\n"                  \
    "  --timeout <ms>             timeout of a generation\n"                  \
    "  --model <model>            model name\n"                               \
    "  --provider <provider>      provider name\n"                            \
    "  --runtime <runtime>        runtime (local, docker)\n"                  \
    "  --config <path>            perstack.toml to read (default: the first"  \
    " perstack.toml\n"                                                        \
    "                             from the working directory upward)\n"       \
    "  --env-path <path>          environment file, may be repeated"          \
    " (default: .env\n"                                                       \
    "                             and .env.local in the working"              \
    " directory)\n"                                                           \
    "  --                         end of options\n"                           \
    "\n"                                                                      \
    "experts (demo scenarios): demo interactive error slow flood huge"        \
    " garbage\n"                                                              \
    "  stderr exit crash stubborn nonl stdin probe memhog forkbomb llm"       \
    " net\n"                                                                  \
    "  deep echo maxsteps noend delegate swapped long longend longerror\n"    \
    "  longstderr longtext longbad longforge quiet\n"


typedef struct {
    const char  *name;
    int        (*handler)(void);
} demo_scenario_t;


static int demo_unknown_expert(void);
static void demo_usage_error(const char *fmt, const char *arg);
static int demo_is_option(const char *a, const char *name, const char **value);
static void demo_parse(int argc, char **argv);


demo_t  demo;


static const demo_scenario_t  demo_scenarios[] = {
#define DEMO_SCENARIO(name, handler, text)                                    \
    { #name, demo_scenario_##handler },
#include "scenarios.h"
#undef DEMO_SCENARIO
    { NULL, NULL }
};


static int
demo_unknown_expert(void)
{
    /*
     * As the real runtime, which asks Perstack's registry for an expert
     * it does not know: with no network, no event, a message, exit 1.
     */

    demo_err("Failed to resolve expert \"%s\": fetch failed", demo.expert);

    return 1;
}


/* the command line */

static void
demo_usage_error(const char *fmt, const char *arg)
{
    char  msg[1024];

    (void) snprintf(msg, sizeof(msg), fmt, arg);
    demo_err("error: %s", msg);
    (void) demo_write_all(STDERR_FILENO, DEMO_USAGE, sizeof(DEMO_USAGE) - 1);

    exit(2);
}


/* does argument a (maybe "--name=value") name option name? */

static int
demo_is_option(const char *a, const char *name, const char **value)
{
    size_t  n;

    n = strlen(name);

    if (strncmp(a, name, n) != 0) {
        return 0;
    }

    if (a[n] == '\0') {
        *value = NULL;
        return 1;
    }

    if (a[n] == '=' && name[1] == '-') {
        *value = a + n + 1;
        return 1;
    }

    return 0;
}


static void
demo_parse(int argc, char **argv)
{
    int          i, k, npos, dashdash;
    long         v;
    const char  *a, *value, *pos[2];

    static const struct {
        const char    *name;
        const char    *alias;
        int            has_value;
    } options[] = {
        { "--job-id", NULL, 1 },                                /* 0 */
        { "--continue-job", NULL, 1 },                          /* 1 */
        { "--resume-from", NULL, 1 },                           /* 2 */
        { "--max-steps", NULL, 1 },                             /* 3 */
        { "--timeout", NULL, 1 },                               /* 4 */
        { "--model", NULL, 1 },                                 /* 5 */
        { "--provider", NULL, 1 },                              /* 6 */
        { "--runtime", NULL, 1 },                               /* 7 */
        { "--config", NULL, 1 },                                /* 8 */
        { "--continue", NULL, 0 },                              /* 9 */
        { "--interactive-tool-call-result", "-i", 0 },          /* 10 */
        { "--help", "-h", 0 },                                  /* 11 */
        { "--env-path", NULL, 1 },                              /* 12 */
        { NULL, NULL, 0 }
    };

    if (argc < 2) {
        (void) demo_write_all(STDERR_FILENO, DEMO_USAGE,
                              sizeof(DEMO_USAGE) - 1);
        exit(2);
    }

    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        demo_out(DEMO_VERSION "\n", sizeof(DEMO_VERSION));
        exit(0);
    }

    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        demo_out(DEMO_USAGE, sizeof(DEMO_USAGE) - 1);
        exit(0);
    }

    if (strcmp(argv[1], "run") != 0) {
        demo_usage_error("unknown command \"%s\" (the demo knows \"run\")",
                         argv[1]);
    }

    npos = 0;
    dashdash = 0;
    pos[0] = NULL;
    pos[1] = NULL;

    for (i = 2; i < argc; i++) {
        a = argv[i];

        if (dashdash || a[0] != '-' || a[1] == '\0') {
            if (npos == 2) {
                demo_usage_error("too many arguments: \"%s\"", a);
            }

            pos[npos++] = a;
            continue;
        }

        if (strcmp(a, "--") == 0) {
            dashdash = 1;
            continue;
        }

        value = NULL;

        for (k = 0; options[k].name; k++) {
            if (demo_is_option(a, options[k].name, &value)
                || (options[k].alias && strcmp(a, options[k].alias) == 0))
            {
                break;
            }
        }

        if (options[k].name == NULL) {
            demo_usage_error("unknown option \"%s\"", a);
        }

        if (!options[k].has_value && value) {
            demo_usage_error("option \"%s\" takes no value", options[k].name);
        }

        if (options[k].has_value && value == NULL) {
            if (i + 1 >= argc) {
                demo_usage_error("option \"%s\" needs a value",
                                 options[k].name);
            }

            value = argv[++i];
        }

        switch (k) {

        case 0:
        case 1:
        case 2:
            if (!demo_valid_id(value)) {
                demo_usage_error("invalid id \"%s\" (letters, digits, "
                                 "\"-\" and \"_\", at most 128)", value);
            }

            if (k == 0) {
                (void) snprintf(demo.job_id, sizeof(demo.job_id), "%s", value);

            } else if (k == 1) {
                demo.continue_job = value;

            } else {
                demo.resume_from = value;
            }

            break;

        case 3:
        case 4:
            if (demo_parse_long(value, &v) != 0 || v <= 0) {
                demo_usage_error("invalid number \"%s\"", value);
            }

            if (k == 3) {
                demo.max_steps = v;

            } else {
                demo.timeout = v;
            }

            break;

        case 5:
            demo.model = value;
            demo.model_set = 1;
            break;

        case 6:
            demo.provider = value;
            break;

        case 7:
            demo.runtime = value;
            break;

        case 8:
            demo.config = value;
            break;

        case 9:
            demo.cont = 1;
            break;

        case 10:
            demo.interactive = 1;
            break;

        case 12:
            if (demo.nenv_paths == DEMO_MAX_ENV_PATHS) {
                demo_usage_error("too many \"%s\"", "--env-path");
            }

            demo.env_paths[demo.nenv_paths++] = value;
            break;

        default: /* 11 */
            demo_out(DEMO_USAGE, sizeof(DEMO_USAGE) - 1);
            exit(0);
        }
    }

    if (npos == 0) {
        demo_usage_error("missing required argument %s", "<expert>");
    }

    if (npos == 1) {
        demo_usage_error("missing required argument %s", "<query>");
    }

    demo.expert = pos[0];
    demo.query = pos[1];

    if (demo.continue_job) {
        if (demo.job_id[0] && strcmp(demo.job_id, demo.continue_job) != 0) {
            demo_usage_error("--job-id and --continue-job name different "
                             "jobs%s", "");
        }

        demo.cont = 1;
    }

    if (demo.resume_from && !demo.cont) {
        demo_usage_error("--resume-from needs --continue-job%s", "");
    }

    if (demo.interactive && !demo.cont) {
        demo_usage_error("-i needs --continue-job or --continue%s", "");
    }
}


int
main(int argc, char **argv)
{
    int          i, fd, rc;
    long         v;
    const char  *env;

    demo.model = "claude-sonnet-4-5";
    demo.provider = "anthropic";
    demo.runtime = "local";
    demo.max_steps = DEMO_DEFAULT_STEPS;
    demo.timeout = DEMO_DEFAULT_TIMEOUT;
    demo.delay_ms = DEMO_DEFAULT_DELAY;
    demo.initial_status = "init";
    demo.step = 1;

    demo_parse(argc, argv);

    env = getenv("PERSTACK_DEMO_DELAY_MS");

    if (env && *env) {
        if (demo_parse_long(env, &v) == 0 && v >= 0 && v <= 3600000) {
            demo.delay_ms = v;

        } else {
            demo_err("warning: ignoring PERSTACK_DEMO_DELAY_MS=\"%s\"", env);
        }
    }

    if (demo.config) {
        fd = open(demo.config, O_RDONLY);

        if (fd == -1) {
            demo_err("error: cannot read config \"%s\": %s", demo.config,
                     strerror(errno));
            return 1;
        }

        (void) close(fd);
    }

    if (demo_load_config() != 0) {
        return 1;
    }

    demo_load_env();

    demo.job_started_at = demo_now_ms();
    demo_make_id(demo.run_id);

    if (demo.job_id[0] == '\0' && !demo.cont) {
        demo_make_id(demo.job_id);
    }

    for (i = 0; demo_scenarios[i].name; i++) {
        if (strcmp(demo_scenarios[i].name, demo.expert) == 0) {
            break;
        }
    }

    if (demo.cont) {
        if (demo_scenarios[i].name == NULL) {
            demo_err("error: expert \"%s\" not found", demo.expert);
            return 1;
        }

        rc = demo_continue();

    } else if (demo_scenarios[i].name == NULL) {
        return demo_unknown_expert();

    } else {
        rc = demo_scenarios[i].handler();
    }

    /* a run that ended: the base skill's disconnection is the last line */

    if (rc == 0 && !demo.no_final_newline) {
        demo_disconnect_skill();
    }

    return rc;
}
