/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * perstack-demo: a stand-in for the Perstack runtime's command line,
 * "perstack run [options] <expert> <query>", for the demo image and the
 * module's tests.  It prints the runtime's stdout protocol (one JSON event
 * per line) and picks a scenario by the expert's name: normal runs,
 * interactive stops, errors, slow and huge output, garbage lines, crashes,
 * a process that ignores SIGTERM.  See demo/README.md.
 *
 * Every line goes out with one write(2), so a reader never sees half an
 * event because of buffering.  No model is called: the texts are made from
 * the query.
 *
 * Build: gcc -std=c99 -static -O2 -Wall -Wextra -Werror \
 *            -o perstack perstack-demo.c
 */


#define _POSIX_C_SOURCE  200809L

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define DEMO_VERSION          "0.0.76-demo.1"
#define DEMO_DEFAULT_DELAY    100            /* ms between events */
#define DEMO_DEFAULT_STEPS    100
#define DEMO_DEFAULT_TIMEOUT  300000         /* ms */
#define DEMO_MAX_RETRIES      5
#define DEMO_ID_LEN           24
#define DEMO_MAX_ID           128            /* job and checkpoint ids */
#define DEMO_MAX_HUGE         (1L << 30)
#define DEMO_JOBS_DIR         "perstack/jobs"
#define DEMO_MAX_ENV_PATHS    8
#define DEMO_MAX_MODEL        128
#define DEMO_BASE_SKILL       "@perstack/base"
#define DEMO_BASE_SKILL_VERSION  "0.0.40"

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
    "  stderr exit crash stubborn nonl stdin probe memhog forkbomb llm net\n"                                     \
    "  deep echo maxsteps noend delegate swapped long longend longerror\n"     \
    "  longstderr longtext longbad longforge\n"


typedef struct {
    char      *data;
    size_t     len;
    size_t     cap;
} demo_buf_t;


typedef struct {
    /* command line */
    const char  *expert;
    const char  *query;
    const char  *model;
    const char  *provider;
    const char  *runtime;
    const char  *config;
    const char  *env_paths[DEMO_MAX_ENV_PATHS];
    int          nenv_paths;
    int          model_set;
    const char  *resume_from;
    const char  *continue_job;
    long         max_steps;
    long         timeout;
    int          interactive;
    int          cont;

    /* the run */
    char         job_id[DEMO_MAX_ID + 1];
    char         run_id[DEMO_ID_LEN + 1];
    long         step;
    long         delay_ms;
    unsigned     nevents;
    int          no_final_newline;
    long long    job_started_at;
    long long    step_started_at;
    long         input_tokens;
    long         output_tokens;
    demo_buf_t   messages;             /* message objects, comma separated */
    const char  *initial_status;
    char         checkpoint_id[DEMO_ID_LEN + 1];   /* of this step */
    long         checkpoint_step;

    /* the event being built, for its file in runs/<runId>/ */
    const char  *event_type;
    long long    event_time;
    int          event_is_run;
    int          no_event_files;

    /*
     * longend, longerror: the line of the run's end is this long (without
     * its newline), filled by the text that stands for DEMO_LONG_MARK
     */
    size_t       long_line;

    int          connected;            /* skillConnected was printed */
    int          swapped;              /* print some stream events swapped */

    /* checkpoints: 0 not tried yet, 1 writable, -1 not */
    int          fs_state;
} demo_t;


typedef struct {
    const char  *name;
    int        (*handler)(void);
} demo_scenario_t;


typedef struct {
    const char  *p;
    const char  *end;
} demo_json_t;


static int demo_scenario_demo(void);
static int demo_scenario_interactive(void);
static int demo_scenario_error(void);
static int demo_scenario_maxsteps(void);
static int demo_scenario_noend(void);
static int demo_scenario_delegate(void);
static int demo_scenario_slow(void);
static int demo_scenario_flood(void);
static int demo_scenario_huge(void);
static int demo_scenario_garbage(void);
static int demo_scenario_stderr(void);
static int demo_scenario_exit(void);
static int demo_scenario_crash(void);
static int demo_scenario_stubborn(void);
static int demo_scenario_nonl(void);
static int demo_scenario_probe(void);
static int demo_scenario_memhog(void);
static int demo_scenario_forkbomb(void);
static int demo_scenario_llm(void);
static int demo_scenario_net(void);
static int demo_scenario_deep(void);
static int demo_scenario_echo(void);
static int demo_scenario_swapped(void);
static int demo_scenario_long(void);
static void demo_call_fails(void);
static int demo_scenario_interactive_step(void);
static int demo_scenario_longend(void);
static int demo_scenario_longerror(void);
static int demo_scenario_longstderr(void);
static int demo_scenario_longtext(void);
static int demo_scenario_longbad(void);
static int demo_scenario_longforge(void);
static int demo_unknown_expert(void);
static int demo_continue(void);
static int demo_read_file(const char *path, demo_buf_t *b);
static void demo_save_event(demo_buf_t *b);
static int demo_load_config(void);
static void demo_load_env(void);


static demo_t  demo;


static const demo_scenario_t  demo_scenarios[] = {
    { "demo",        demo_scenario_demo },
    { "interactive", demo_scenario_interactive },
    { "error",       demo_scenario_error },
    { "maxsteps",    demo_scenario_maxsteps },
    { "noend",       demo_scenario_noend },
    { "delegate",    demo_scenario_delegate },
    { "slow",        demo_scenario_slow },
    { "flood",       demo_scenario_flood },
    { "huge",        demo_scenario_huge },
    { "garbage",     demo_scenario_garbage },
    { "stderr",      demo_scenario_stderr },
    { "exit",        demo_scenario_exit },
    { "crash",       demo_scenario_crash },
    { "stubborn",    demo_scenario_stubborn },
    { "nonl",        demo_scenario_nonl },
    { "stdin",       demo_scenario_demo },
    { "probe",       demo_scenario_probe },
    { "memhog",      demo_scenario_memhog },
    { "forkbomb",    demo_scenario_forkbomb },
    { "llm",         demo_scenario_llm },
    { "net",         demo_scenario_net },
    { "deep",        demo_scenario_deep },
    { "echo",        demo_scenario_echo },
    { "swapped",     demo_scenario_swapped },
    { "long",        demo_scenario_long },
    { "longend",     demo_scenario_longend },
    { "longerror",   demo_scenario_longerror },
    { "longstderr",  demo_scenario_longstderr },
    { "longtext",    demo_scenario_longtext },
    { "longbad",     demo_scenario_longbad },
    { "longforge",   demo_scenario_longforge },
    { NULL,          NULL }
};


/* low level output */

static int
demo_write_all(int fd, const char *p, size_t n)
{
    ssize_t  k;

    while (n > 0) {
        k = write(fd, p, n);

        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }

            return -1;
        }

        p += k;
        n -= (size_t) k;
    }

    return 0;
}


static void
demo_err(const char *fmt, ...)
{
    int      n;
    char     line[4096];
    va_list  args;

    n = snprintf(line, sizeof(line), "perstack: ");

    va_start(args, fmt);
    n += vsnprintf(line + n, sizeof(line) - n - 1, fmt, args);
    va_end(args);

    if (n > (int) sizeof(line) - 2) {
        n = sizeof(line) - 2;
    }

    line[n++] = '\n';

    (void) demo_write_all(STDERR_FILENO, line, (size_t) n);
}


static void
demo_out(const char *p, size_t n)
{
    if (demo_write_all(STDOUT_FILENO, p, n) != 0) {
        demo_err("cannot write to stdout: %s", strerror(errno));
        exit(1);
    }
}


static void
demo_oom(void)
{
    demo_err("out of memory");
    exit(1);
}


/* growing buffers */

static void
demo_buf_reserve(demo_buf_t *b, size_t n)
{
    char    *p;
    size_t   cap;

    if (b->len + n + 1 <= b->cap) {
        return;
    }

    cap = b->cap ? b->cap : 256;

    while (cap < b->len + n + 1) {
        if (cap > SIZE_MAX / 2) {
            demo_oom();
        }

        cap *= 2;
    }

    p = realloc(b->data, cap);
    if (p == NULL) {
        demo_oom();
    }

    b->data = p;
    b->cap = cap;
}


static void
demo_buf_add(demo_buf_t *b, const char *p, size_t n)
{
    demo_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}


static void
demo_buf_str(demo_buf_t *b, const char *s)
{
    demo_buf_add(b, s, strlen(s));
}


static void
demo_buf_fmt(demo_buf_t *b, const char *fmt, ...)
{
    int      n;
    va_list  args;

    va_start(args, fmt);
    n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);

    if (n < 0) {
        demo_oom();
    }

    demo_buf_reserve(b, (size_t) n);

    va_start(args, fmt);
    (void) vsnprintf(b->data + b->len, (size_t) n + 1, fmt, args);
    va_end(args);

    b->len += (size_t) n;
}


static void
demo_buf_reset(demo_buf_t *b)
{
    b->len = 0;

    if (b->data) {
        b->data[0] = '\0';
    }
}


static const char *
demo_buf_cstr(demo_buf_t *b)
{
    return b->data ? b->data : "";
}


/*
 * The length of the valid UTF-8 sequence at p (no overlong forms, no
 * surrogates, at most U+10FFFF), or 0.
 */

static size_t
demo_utf8_len(const unsigned char *p, size_t avail)
{
    size_t    n, i;
    uint32_t  c, min;

    if (p[0] < 0x80) {
        return 1;
    }

    if ((p[0] & 0xe0) == 0xc0) {
        n = 2; c = p[0] & 0x1f; min = 0x80;

    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3; c = p[0] & 0x0f; min = 0x800;

    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4; c = p[0] & 0x07; min = 0x10000;

    } else {
        return 0;
    }

    if (avail < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = (c << 6) | (p[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    return n;
}


/*
 * A JSON string literal: quotes, backslashes and control characters are
 * escaped, bytes that are not valid UTF-8 become U+FFFD.
 */

static void
demo_buf_json_n(demo_buf_t *b, const char *s, size_t len)
{
    size_t                k;
    const unsigned char  *p, *end, *run;

    p = (const unsigned char *) s;
    end = p + len;

    demo_buf_reserve(b, len + 2);
    demo_buf_add(b, "\"", 1);

    while (p < end) {

        /* copy the longest plain stretch at once */

        run = p;

        while (p < end && *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') {
            p++;
        }

        if (p > run) {
            demo_buf_add(b, (const char *) run, (size_t) (p - run));
        }

        if (p == end) {
            break;
        }

        switch (*p) {

        case '"':
            demo_buf_add(b, "\\\"", 2);
            break;

        case '\\':
            demo_buf_add(b, "\\\\", 2);
            break;

        case '\n':
            demo_buf_add(b, "\\n", 2);
            break;

        case '\r':
            demo_buf_add(b, "\\r", 2);
            break;

        case '\t':
            demo_buf_add(b, "\\t", 2);
            break;

        case '\b':
            demo_buf_add(b, "\\b", 2);
            break;

        case '\f':
            demo_buf_add(b, "\\f", 2);
            break;

        default:
            if (*p < 0x20 || *p == 0x7f) {
                demo_buf_fmt(b, "\\u%04x", *p);
                break;
            }

            k = demo_utf8_len(p, (size_t) (end - p));

            if (k == 0) {
                demo_buf_add(b, "\\ufffd", 6);
                break;
            }

            demo_buf_add(b, (const char *) p, k);
            p += k;
            continue;
        }

        p++;
    }

    demo_buf_add(b, "\"", 1);
}


static void
demo_buf_json(demo_buf_t *b, const char *s)
{
    demo_buf_json_n(b, s, strlen(s));
}


/* time, ids, numbers */

static long long
demo_now_ms(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_REALTIME, &ts);

    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
demo_sleep_ms(long ms)
{
    struct timespec  ts, rem;

    if (ms <= 0) {
        return;
    }

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;

    while (nanosleep(&ts, &rem) != 0 && errno == EINTR) {
        ts = rem;
    }
}


static uint64_t
demo_mix(uint64_t x)
{
    /* splitmix64's finalizer */

    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;

    return x;
}


/* a random looking id of DEMO_ID_LEN lowercase letters and digits */

static void
demo_make_id(char *out)
{
    int               i;
    uint64_t          x;
    struct timespec   ts;
    static uint64_t   seed, counter;
    static const char  alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";

    if (seed == 0) {
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        seed = demo_mix((uint64_t) ts.tv_sec * 1000000007ULL
                        ^ (uint64_t) ts.tv_nsec
                        ^ ((uint64_t) getpid() << 40)) | 1;
    }

    counter++;
    x = 0;

    for (i = 0; i < DEMO_ID_LEN; i++) {
        if (i % 12 == 0) {
            x = demo_mix(seed + counter * 0x9e3779b97f4a7c15ULL + (uint64_t) i);
        }

        /* a letter first, as cuid2 does */
        if (i == 0) {
            out[i] = alphabet[10 + x % 26];
            x /= 26;

        } else {
            out[i] = alphabet[x % 36];
            x /= 36;
        }
    }

    out[DEMO_ID_LEN] = '\0';
}


/* a job or checkpoint id: safe as a file name */

static int
demo_valid_id(const char *s)
{
    size_t  n;

    n = strlen(s);

    if (n == 0 || n > DEMO_MAX_ID) {
        return 0;
    }

    for ( /* void */ ; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
              || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
        {
            return 0;
        }
    }

    return 1;
}


/* a whole decimal integer, optional sign; 0 on success */

static int
demo_parse_long(const char *s, long *out)
{
    long   v;
    char  *end;

    if (*s == '\0') {
        return -1;
    }

    errno = 0;
    v = strtol(s, &end, 10);

    if (errno != 0 || *end != '\0' || end == s) {
        return -1;
    }

    *out = v;

    return 0;
}


static long
demo_query_number(long dflt)
{
    long  v;

    if (demo_parse_long(demo.query, &v) != 0) {
        return dflt;
    }

    return v;
}


/* the fragments of events */

static void
demo_buf_usage(demo_buf_t *b, long in, long out)
{
    demo_buf_fmt(b, "{\"inputTokens\":%ld,\"outputTokens\":%ld,"
                 "\"reasoningTokens\":0,\"totalTokens\":%ld,"
                 "\"cachedInputTokens\":0}", in, out, in + out);
}


static void
demo_add_usage(long in, long out)
{
    demo.input_tokens += in;
    demo.output_tokens += out;
}


static void
demo_buf_text_message(demo_buf_t *b, const char *type, const char *text)
{
    char  id[DEMO_ID_LEN + 1], part[DEMO_ID_LEN + 1];

    demo_make_id(id);
    demo_make_id(part);

    demo_buf_fmt(b, "{\"id\":\"%s\",\"type\":\"%s\",\"contents\":"
                 "[{\"id\":\"%s\",\"type\":\"textPart\",\"text\":",
                 id, type, part);
    demo_buf_json(b, text);
    demo_buf_str(b, "}]}");
}


/* remember a message for the checkpoints */

static void
demo_keep_message(demo_buf_t *msg)
{
    if (demo.messages.len) {
        demo_buf_add(&demo.messages, ",", 1);
    }

    demo_buf_add(&demo.messages, msg->data, msg->len);
}


static void
demo_buf_tool_call(demo_buf_t *b, const char *id, const char *skill,
    const char *tool, const char *question)
{
    demo_buf_str(b, "{\"id\":");
    demo_buf_json(b, id);
    demo_buf_str(b, ",\"skillName\":");
    demo_buf_json(b, skill);
    demo_buf_str(b, ",\"toolName\":");
    demo_buf_json(b, tool);
    demo_buf_str(b, ",\"args\":{\"question\":");
    demo_buf_json(b, question);
    demo_buf_str(b, "}}");
}


static void
demo_buf_checkpoint(demo_buf_t *b, const char *id, const char *status,
    const char *pending)
{
    demo_buf_fmt(b, "{\"id\":\"%s\",\"jobId\":\"%s\",\"runId\":\"%s\","
                 "\"status\":\"%s\",\"stepNumber\":%ld,\"messages\":[",
                 id, demo.job_id, demo.run_id, status, demo.step);
    demo_buf_add(b, demo_buf_cstr(&demo.messages), demo.messages.len);
    demo_buf_str(b, "],\"expert\":{\"key\":");
    demo_buf_json(b, demo.expert);
    demo_buf_str(b, ",\"name\":");
    demo_buf_json(b, demo.expert);
    demo_buf_str(b, ",\"version\":\"1.0.0\"},\"usage\":");
    demo_buf_usage(b, demo.input_tokens, demo.output_tokens);

    if (pending) {
        demo_buf_str(b, ",\"pendingToolCalls\":[");
        demo_buf_str(b, pending);
        demo_buf_str(b, "]");
    }

    demo_buf_str(b, "}");
}


/*
 * Start an event in b: the common fields.  Run events carry expertKey and
 * stepNumber, runtime events do not.  The pause between events is taken
 * here, before the timestamp.
 */

static void
demo_event(demo_buf_t *b, const char *type, int run_event)
{
    char  id[DEMO_ID_LEN + 1];

    if (demo.nevents++ > 0) {
        demo_sleep_ms(demo.delay_ms);
    }

    demo_buf_reset(b);
    demo_make_id(id);

    demo.event_type = type;
    demo.event_time = demo_now_ms();
    demo.event_is_run = run_event;

    demo_buf_fmt(b, "{\"type\":\"%s\",\"id\":\"%s\"", type, id);

    if (run_event) {
        demo_buf_str(b, ",\"expertKey\":");
        demo_buf_json(b, demo.expert);
    }

    demo_buf_fmt(b, ",\"timestamp\":%lld,\"jobId\":\"%s\",\"runId\":\"%s\"",
                 demo.event_time, demo.job_id, demo.run_id);

    if (run_event) {
        demo_buf_fmt(b, ",\"stepNumber\":%ld", demo.step);
    }
}


/* close the event in b and store it: it is a line ready to print */

static void
demo_close(demo_buf_t *b)
{
    demo_buf_add(b, "}\n", 2);
    demo_save_event(b);
}


/* close the event in b, store it and print it as one line */

static void
demo_emit(demo_buf_t *b)
{
    demo_close(b);
    demo_out(b->data, b->len);
}


/*
 * The job's files in the working directory, as the real runtime keeps them:
 * perstack/jobs/<jobId>/checkpoints/<checkpointId>.json and
 * perstack/jobs/<jobId>/runs/<runId>/event-<time>-<step>-<type>.json.
 */

static int
demo_fs_ok(void)
{
    if (demo.fs_state == 0) {
        if (access(".", W_OK) == 0) {
            demo.fs_state = 1;

        } else {
            demo.fs_state = -1;
            demo_err("warning: the working directory is not writable (%s), "
                     "the job's checkpoints are not saved", strerror(errno));
        }
    }

    return demo.fs_state > 0;
}


static int
demo_mkdir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        demo_err("warning: cannot create \"%s\": %s", path, strerror(errno));
        return -1;
    }

    return 0;
}


/* perstack/jobs/<jobId>/<sub>, and <sub>/<name> if name is not NULL */

static int
demo_job_dir(const char *sub, const char *name)
{
    char  path[PATH_MAX];

    if (!demo_fs_ok()) {
        return -1;
    }

    if (demo_mkdir("perstack") != 0 || demo_mkdir(DEMO_JOBS_DIR) != 0) {
        return -1;
    }

    (void) snprintf(path, sizeof(path), DEMO_JOBS_DIR "/%s", demo.job_id);

    if (demo_mkdir(path) != 0) {
        return -1;
    }

    (void) snprintf(path, sizeof(path), DEMO_JOBS_DIR "/%s/%s",
                    demo.job_id, sub);

    if (demo_mkdir(path) != 0) {
        return -1;
    }

    if (name == NULL) {
        return 0;
    }

    (void) snprintf(path, sizeof(path), DEMO_JOBS_DIR "/%s/%s/%s",
                    demo.job_id, sub, name);

    return demo_mkdir(path);
}


/* write a file whole: a temporary file renamed over the old one */

static void
demo_write_file(const char *path, const char *data, size_t len)
{
    int   fd;
    char  tmp[PATH_MAX];

    (void) snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long) getpid());

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd == -1) {
        demo_err("warning: cannot create \"%s\": %s", tmp, strerror(errno));
        return;
    }

    if (demo_write_all(fd, data, len) != 0) {
        demo_err("warning: cannot write \"%s\": %s", tmp, strerror(errno));
        (void) close(fd);
        (void) unlink(tmp);
        return;
    }

    if (close(fd) != 0) {
        demo_err("warning: cannot close \"%s\": %s", tmp, strerror(errno));
        (void) unlink(tmp);
        return;
    }

    if (rename(tmp, path) != 0) {
        demo_err("warning: cannot rename \"%s\": %s", tmp, strerror(errno));
        (void) unlink(tmp);
    }
}


/* each run event is written to its own file before it is printed */

static void
demo_save_event(demo_buf_t *b)
{
    char  path[PATH_MAX];

    if (!demo.event_is_run || demo.no_event_files) {
        return;
    }

    if (demo_job_dir("runs", demo.run_id) != 0) {
        return;
    }

    (void) snprintf(path, sizeof(path),
                    DEMO_JOBS_DIR "/%s/runs/%s/event-%lld-%ld-%s.json",
                    demo.job_id, demo.run_id, demo.event_time, demo.step,
                    demo.event_type);

    demo_write_file(path, b->data, b->len);
}


/* the id of this step's checkpoint: one id per step, as the runtime has */

static const char *
demo_checkpoint_id(void)
{
    if (demo.checkpoint_id[0] == '\0' || demo.checkpoint_step != demo.step) {
        demo_make_id(demo.checkpoint_id);
        demo.checkpoint_step = demo.step;
    }

    return demo.checkpoint_id;
}


static void
demo_save_checkpoint(const char *id, demo_buf_t *cp)
{
    char  path[PATH_MAX];

    if (demo_job_dir("checkpoints", NULL) != 0) {
        return;
    }

    (void) snprintf(path, sizeof(path), DEMO_JOBS_DIR "/%s/checkpoints/%s.json",
                    demo.job_id, id);

    demo_buf_add(cp, "\n", 1);
    demo_write_file(path, cp->data, cp->len);
    cp->data[--cp->len] = '\0';
}


/* the parts of a run */

/*
 * The runtime's base skill: connected after initializeRuntime, and
 * disconnected as the last line of a run that ended.
 */

static void
demo_connect_skill(void)
{
    demo_buf_t  b;

    memset(&b, 0, sizeof(b));

    demo_event(&b, "skillConnected", 0);
    demo_buf_fmt(&b, ",\"skillName\":\"%s\",\"serverInfo\":{\"name\":\"%s\","
                 "\"version\":\"%s\"},\"spawnDurationMs\":0,"
                 "\"handshakeDurationMs\":10,\"toolDiscoveryDurationMs\":9,"
                 "\"connectDurationMs\":10,\"totalDurationMs\":30",
                 DEMO_BASE_SKILL, DEMO_BASE_SKILL, DEMO_BASE_SKILL_VERSION);
    demo_emit(&b);

    demo.connected = 1;

    free(b.data);
}


static void
demo_disconnect_skill(void)
{
    demo_buf_t  b;

    if (!demo.connected) {
        return;
    }

    memset(&b, 0, sizeof(b));

    demo_event(&b, "skillDisconnected", 0);
    demo_buf_fmt(&b, ",\"skillName\":\"%s\"", DEMO_BASE_SKILL);
    demo_emit(&b);

    demo.connected = 0;

    free(b.data);
}


/* each generation: the SDK's warning on stderr, as the runtime has it */

static void
demo_sdk_warning(void)
{
    static const char  warning[] =
        "AI SDK Warning: System messages in the prompt or messages fields "
        "can be a security risk because they may enable prompt injection "
        "attacks. Use the system option instead when possible. Set "
        "allowSystemInMessages to true to suppress this warning, or false to "
        "throw an error.\n";

    (void) demo_write_all(STDERR_FILENO, warning, sizeof(warning) - 1);
}


/* initializeRuntime, and the base skill connected */

static void
demo_begin_runtime(void)
{
    demo_buf_t  b;

    memset(&b, 0, sizeof(b));

    demo_event(&b, "initializeRuntime", 0);
    demo_buf_fmt(&b, ",\"runtimeVersion\":\"%s\",\"runtime\":", DEMO_VERSION);
    demo_buf_json(&b, demo.runtime);
    demo_buf_str(&b, ",\"expertName\":");
    demo_buf_json(&b, demo.expert);
    demo_buf_str(&b, ",\"experts\":[");
    demo_buf_json(&b, demo.expert);
    demo_buf_str(&b, "],\"model\":");
    demo_buf_json(&b, demo.model);
    demo_buf_str(&b, ",\"provider\":");
    demo_buf_json(&b, demo.provider);
    demo_buf_fmt(&b, ",\"maxSteps\":%ld,\"maxRetries\":%d,\"timeout\":%ld,"
                 "\"query\":", demo.max_steps, DEMO_MAX_RETRIES, demo.timeout);
    demo_buf_json(&b, demo.query);
    demo_emit(&b);

    free(b.data);

    demo_connect_skill();
}


/* the start of a run: the runtime, then startRun */

static void
demo_begin(demo_buf_t *input)
{
    const char  *cp_id;
    demo_buf_t   b, cp, msg;

    memset(&b, 0, sizeof(b));
    memset(&cp, 0, sizeof(cp));
    memset(&msg, 0, sizeof(msg));

    demo_begin_runtime();

    /*
     * The input: the query as a user message unless the caller has one;
     * an empty one is no input message at all.
     */

    if (input == NULL) {
        demo_buf_text_message(&msg, "userMessage", demo.query);
        input = &msg;
    }

    demo.step_started_at = demo_now_ms();

    cp_id = demo_checkpoint_id();
    demo_buf_checkpoint(&cp, cp_id, demo.initial_status, NULL);

    demo_event(&b, "startRun", 1);
    demo_buf_str(&b, ",\"initialCheckpoint\":");
    demo_buf_add(&b, cp.data, cp.len);
    demo_buf_str(&b, ",\"inputMessages\":[");

    if (input->len) {
        demo_buf_add(&b, input->data, input->len);
    }

    demo_buf_str(&b, "]");
    demo_save_checkpoint(cp_id, &cp);
    demo_emit(&b);

    if (input->len) {
        demo_keep_message(input);
    }

    free(msg.data);
    free(cp.data);
    free(b.data);
}


static void
demo_start_generation(void)
{
    demo_buf_t  b;

    memset(&b, 0, sizeof(b));

    demo_event(&b, "startGeneration", 1);
    demo_buf_str(&b, ",\"messages\":[");
    demo_buf_add(&b, demo_buf_cstr(&demo.messages), demo.messages.len);
    demo_buf_str(&b, "]");
    demo_emit(&b);

    demo_sdk_warning();

    demo_add_usage(120 + (long) strlen(demo.query) / 4, 0);

    free(b.data);
}


/* simple runtime events with one string member, e.g. streamRunResult */

static void
demo_simple(const char *type, const char *member, const char *value)
{
    demo_buf_t  b;

    memset(&b, 0, sizeof(b));

    demo_event(&b, type, 1);

    if (member) {
        demo_buf_fmt(&b, ",\"%s\":", member);
        demo_buf_json(&b, value);
    }

    demo_emit(&b);

    free(b.data);
}


/*
 * The model calls attemptCompletion: callTools, then attemptCompletion with
 * the tool's result.
 */

static void
demo_attempt_completion(void)
{
    char        tc_id[DEMO_ID_LEN + 1], id[DEMO_ID_LEN + 1],
                part[DEMO_ID_LEN + 1];
    demo_buf_t  b, msg;

    memset(&b, 0, sizeof(b));
    memset(&msg, 0, sizeof(msg));

    demo_make_id(tc_id);
    demo_make_id(id);
    demo_make_id(part);

    demo_buf_fmt(&msg, "{\"id\":\"%s\",\"type\":\"expertMessage\","
                 "\"contents\":[{\"id\":\"%s\",\"type\":\"toolCallPart\","
                 "\"toolCallId\":\"%s\",\"toolName\":\"attemptCompletion\","
                 "\"args\":{}}]}", id, part, tc_id);

    demo_add_usage(0, 12);

    demo_event(&b, "callTools", 1);
    demo_buf_str(&b, ",\"newMessage\":");
    demo_buf_add(&b, msg.data, msg.len);
    demo_buf_fmt(&b, ",\"toolCalls\":[{\"id\":\"%s\",\"skillName\":\"%s\","
                 "\"toolName\":\"attemptCompletion\",\"args\":{}}],"
                 "\"usage\":", tc_id, DEMO_BASE_SKILL);
    demo_buf_usage(&b, demo.input_tokens, demo.output_tokens);
    demo_emit(&b);

    demo_keep_message(&msg);

    demo_make_id(part);

    demo_event(&b, "attemptCompletion", 1);
    demo_buf_fmt(&b, ",\"toolResult\":{\"id\":\"%s\",\"skillName\":\"%s\","
                 "\"toolName\":\"attemptCompletion\",\"result\":[{\"type\":"
                 "\"textPart\",\"text\":\"{}\",\"id\":\"%s\"}]}",
                 tc_id, DEMO_BASE_SKILL, part);
    demo_emit(&b);

    free(b.data);
    free(msg.data);
}


/*
 * The answer: the model calls attemptCompletion, and a last generation
 * streams the text word by word (each delta is a word and a space).
 *
 * With demo.swapped, some lines are printed out of order, as the runtime's
 * concurrent writes sometimes print them: the first streamRunResult before
 * startStreamingRunResult, and the third delta before the second.
 */

static void
demo_stream_words(const char *text)
{
    long         n;
    const char  *p, *w;
    demo_buf_t   start, ev, held, word, all;

    memset(&start, 0, sizeof(start));
    memset(&ev, 0, sizeof(ev));
    memset(&held, 0, sizeof(held));
    memset(&word, 0, sizeof(word));
    memset(&all, 0, sizeof(all));

    demo_attempt_completion();
    demo_sdk_warning();

    demo_event(&start, "startStreamingRunResult", 1);
    demo_close(&start);

    if (!demo.swapped) {
        demo_out(start.data, start.len);
    }

    for (n = 0, p = text; *p; n++) {

        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'
               || *p == '\v' || *p == '\f')
        {
            p++;
        }

        if (*p == '\0') {
            break;
        }

        w = p;

        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r'
               && *p != '\v' && *p != '\f')
        {
            p++;
        }

        demo_buf_reset(&word);
        demo_buf_add(&word, w, (size_t) (p - w));
        demo_buf_add(&word, " ", 1);
        demo_buf_add(&all, word.data, word.len);

        demo_event(&ev, "streamRunResult", 1);
        demo_buf_str(&ev, ",\"delta\":");
        demo_buf_json(&ev, word.data);
        demo_close(&ev);

        demo_add_usage(0, 1);

        if (demo.swapped && n == 1) {
            demo_buf_add(&held, ev.data, ev.len);
            continue;
        }

        demo_out(ev.data, ev.len);

        if (demo.swapped && n == 0) {
            demo_out(start.data, start.len);
        }

        if (held.len) {
            demo_out(held.data, held.len);
            demo_buf_reset(&held);
        }
    }

    if (demo.swapped && n == 0) {
        demo_out(start.data, start.len);
    }

    if (held.len) {
        demo_out(held.data, held.len);
    }

    demo_simple("completeStreamingRunResult", "text", demo_buf_cstr(&all));

    free(start.data);
    free(ev.data);
    free(held.data);
    free(word.data);
    free(all.data);
}


/*
 * longend and longerror: one message of the conversation has the text
 * DEMO_LONG_MARK, which the line of the run's end replaces, in the event
 * and in its checkpoint, by DEMO_LONG_UNIT repeated and "x" padding, so that
 * the line is demo.long_line bytes long without its newline (or as short
 * as it can be).  The text is plain JSON string content: nothing in it
 * needs escaping.
 */

#define DEMO_LONG_MARK  "@@demo-long-text@@"
#define DEMO_LONG_UNIT  "All work and no play, caf\xc3\xa9 \xe3\x81\x82. "

static void
demo_buf_replace(demo_buf_t *b, const char *mark, const char *text,
    size_t len)
{
    size_t      i, mlen;
    demo_buf_t  out;

    mlen = strlen(mark);

    for (i = 0; i + mlen <= b->len; i++) {
        if (memcmp(b->data + i, mark, mlen) == 0) {
            break;
        }
    }

    if (i + mlen > b->len) {
        return;
    }

    memset(&out, 0, sizeof(out));
    demo_buf_reserve(&out, b->len - mlen + len);
    demo_buf_add(&out, b->data, i);
    demo_buf_add(&out, text, len);
    demo_buf_add(&out, b->data + i + mlen, b->len - i - mlen);

    free(b->data);
    *b = out;
}


static void
demo_long_fill(demo_buf_t *b, demo_buf_t *cp)
{
    size_t      fill, base, ulen;
    demo_buf_t  text;

    memset(&text, 0, sizeof(text));

    /* the line once closed: b, its "}", and the text instead of the mark */

    base = b->len + 1 - (sizeof(DEMO_LONG_MARK) - 1);
    fill = demo.long_line > base ? demo.long_line - base : 0;
    ulen = sizeof(DEMO_LONG_UNIT) - 1;

    demo_buf_reserve(&text, fill);

    while (text.len + ulen <= fill) {
        demo_buf_add(&text, DEMO_LONG_UNIT, ulen);
    }

    memset(text.data + text.len, 'x', fill - text.len);
    text.len = fill;
    text.data[text.len] = '\0';

    demo_buf_replace(b, DEMO_LONG_MARK, demo_buf_cstr(&text), text.len);
    demo_buf_replace(cp, DEMO_LONG_MARK, demo_buf_cstr(&text), text.len);

    free(text.data);
}


/*
 * The end of a run: one of completeRun, stopRunByInteractiveTool,
 * stopRunByError, stopRunByExceededMaxSteps.  extra holds the members after
 * checkpoint and step (with a leading comma) or is NULL.  The checkpoint is
 * saved before the event is printed.
 */

static void
demo_finish(const char *type, const char *status, const char *pending,
    const char *extra)
{
    const char  *cp_id;
    demo_buf_t   b, cp;

    memset(&b, 0, sizeof(b));
    memset(&cp, 0, sizeof(cp));

    cp_id = demo_checkpoint_id();
    demo_buf_checkpoint(&cp, cp_id, status, pending);

    demo_event(&b, type, 1);
    demo_buf_str(&b, ",\"checkpoint\":");
    demo_buf_add(&b, cp.data, cp.len);
    demo_buf_fmt(&b, ",\"step\":{\"stepNumber\":%ld,\"usage\":", demo.step);
    demo_buf_usage(&b, demo.input_tokens, demo.output_tokens);
    demo_buf_fmt(&b, ",\"startedAt\":%lld,\"finishedAt\":%lld}",
                 demo.step_started_at, demo_now_ms());

    if (extra) {
        demo_buf_str(&b, extra);
    }

    if (demo.long_line) {
        demo_long_fill(&b, &cp);
    }

    demo_save_checkpoint(cp_id, &cp);

    if (demo.no_final_newline) {
        demo_buf_add(&b, "}", 1);
        demo_save_event(&b);
        demo_out(b.data, b.len);

    } else {
        demo_emit(&b);
    }

    free(b.data);
    free(cp.data);
}


static void
demo_complete(const char *text)
{
    demo_buf_t  msg, extra;

    memset(&msg, 0, sizeof(msg));
    memset(&extra, 0, sizeof(extra));

    demo_buf_text_message(&msg, "expertMessage", text);
    demo_keep_message(&msg);

    demo_buf_str(&extra, ",\"text\":");
    demo_buf_json(&extra, text);
    demo_buf_str(&extra, ",\"usage\":");
    demo_buf_usage(&extra, demo.input_tokens, demo.output_tokens);

    demo_finish("completeRun", "completed", NULL, extra.data);

    free(msg.data);
    free(extra.data);
}


static void
demo_stop_by_error(const char *name, const char *message, int status_code,
    int retryable)
{
    demo_buf_t  extra;

    memset(&extra, 0, sizeof(extra));

    demo_buf_str(&extra, ",\"error\":{\"name\":");
    demo_buf_json(&extra, name);
    demo_buf_str(&extra, ",\"message\":");
    demo_buf_json(&extra, message);

    if (status_code) {
        demo_buf_fmt(&extra, ",\"statusCode\":%d", status_code);
    }

    demo_buf_fmt(&extra, ",\"isRetryable\":%s}", retryable ? "true" : "false");

    demo_finish("stopRunByError", "stoppedByError", NULL, extra.data);

    free(extra.data);
}


/*
 * finishAllToolCalls: the result of one tool call as a tool message, which
 * goes to msg and to the conversation.
 */

static void
demo_finish_tool_call(demo_buf_t *msg, const char *tc_id, const char *tool,
    const char *text)
{
    char        id[DEMO_ID_LEN + 1], part[DEMO_ID_LEN + 1],
                text_part[DEMO_ID_LEN + 1];
    demo_buf_t  b;

    memset(&b, 0, sizeof(b));

    demo_make_id(id);
    demo_make_id(part);
    demo_make_id(text_part);

    demo_buf_fmt(msg, "{\"id\":\"%s\",\"type\":\"toolMessage\","
                 "\"contents\":[{\"id\":\"%s\",\"type\":\"toolResultPart\","
                 "\"toolCallId\":", id, part);
    demo_buf_json(msg, tc_id);
    demo_buf_str(msg, ",\"toolName\":");
    demo_buf_json(msg, tool);
    demo_buf_fmt(msg, ",\"contents\":[{\"id\":\"%s\",\"type\":\"textPart\","
                 "\"text\":", text_part);
    demo_buf_json(msg, text);
    demo_buf_str(msg, "}]}]}");

    demo_event(&b, "finishAllToolCalls", 1);
    demo_buf_str(&b, ",\"newMessages\":[");
    demo_buf_add(&b, msg->data, msg->len);
    demo_buf_str(&b, "]");
    demo_emit(&b);

    demo_keep_message(msg);

    free(b.data);
}


/*
 * continueToNextStep: this step's checkpoint (saved), the step (members
 * holds its members after stepNumber, with a leading comma) and the next
 * step's checkpoint; the run goes on to that step.
 */

static void
demo_next_step(const char *members)
{
    const char  *cp_id;
    demo_buf_t   b, cp;

    memset(&b, 0, sizeof(b));
    memset(&cp, 0, sizeof(cp));

    cp_id = demo_checkpoint_id();
    demo_buf_checkpoint(&cp, cp_id, "proceeding", NULL);
    demo_save_checkpoint(cp_id, &cp);

    demo_event(&b, "continueToNextStep", 1);
    demo_buf_str(&b, ",\"checkpoint\":");
    demo_buf_add(&b, cp.data, cp.len);
    demo_buf_fmt(&b, ",\"step\":{\"stepNumber\":%ld", demo.step);
    demo_buf_str(&b, members);
    demo_buf_fmt(&b, ",\"startedAt\":%lld}", demo.step_started_at);

    demo.step++;
    demo.step_started_at = demo_now_ms();

    demo_buf_reset(&cp);
    demo_buf_checkpoint(&cp, demo_checkpoint_id(), "proceeding", NULL);
    demo_buf_str(&b, ",\"nextCheckpoint\":");
    demo_buf_add(&b, cp.data, cp.len);
    demo_emit(&b);

    free(b.data);
    free(cp.data);
}


/* the scenarios */

static int
demo_scenario_demo(void)
{
    demo_buf_t  text;

    memset(&text, 0, sizeof(text));

    demo_begin(NULL);
    demo_start_generation();
    demo_stream_words(demo.query);

    demo_buf_str(&text, "The demo expert received your query: \"");
    demo_buf_str(&text, demo.query);
    demo_buf_str(&text, "\".");
    demo_complete(text.data);

    free(text.data);

    return 0;
}


/* demo, with some lines printed out of order as the runtime sometimes does */

static int
demo_scenario_swapped(void)
{
    demo.swapped = 1;

    return demo_scenario_demo();
}


/*
 * A long conversation that pauses: steps of a tool that reads a file, each
 * result a part of N bytes (the query, default 3 MiB), then the interactive
 * call.  Each checkpoint holds the whole conversation, so the lines grow
 * step by step, and the stopRunByInteractiveTool line holds all N bytes.
 */

#define DEMO_LONG_STEPS  4

static int
demo_scenario_long(void)
{
    long        n, i;
    size_t      part;
    char        tc_id[DEMO_ID_LEN + 1], id[DEMO_ID_LEN + 1],
                pid[DEMO_ID_LEN + 1];
    demo_buf_t  b, step, msg, result;

    n = demo_query_number(3 * 1024 * 1024);

    if (n < 0 || n > DEMO_MAX_HUGE) {
        demo_err("long: from 0 to %ld bytes", DEMO_MAX_HUGE);
        return 1;
    }

    memset(&b, 0, sizeof(b));
    memset(&step, 0, sizeof(step));
    memset(&msg, 0, sizeof(msg));
    memset(&result, 0, sizeof(result));

    part = (size_t) n / DEMO_LONG_STEPS;

    demo_begin(NULL);

    for (i = 0; i < DEMO_LONG_STEPS; i++) {
        demo_start_generation();

        demo_make_id(tc_id);
        demo_make_id(id);
        demo_make_id(pid);

        demo_buf_reset(&msg);
        demo_buf_fmt(&msg, "{\"id\":\"%s\",\"type\":\"expertMessage\","
                     "\"contents\":[{\"id\":\"%s\",\"type\":\"toolCallPart\","
                     "\"toolCallId\":\"%s\",\"toolName\":\"readTextFile\","
                     "\"args\":{\"path\":\"part-%ld.txt\"}}]}",
                     id, pid, tc_id, i + 1);
        demo_keep_message(&msg);

        demo_add_usage(0, 20);

        demo_event(&b, "callTools", 1);
        demo_buf_str(&b, ",\"newMessage\":");
        demo_buf_add(&b, msg.data, msg.len);
        demo_buf_fmt(&b, ",\"toolCalls\":[{\"id\":\"%s\",\"skillName\":"
                     "\"%s\",\"toolName\":\"readTextFile\",\"args\":"
                     "{\"path\":\"part-%ld.txt\"}}],\"usage\":",
                     tc_id, DEMO_BASE_SKILL, i + 1);
        demo_buf_usage(&b, demo.input_tokens, demo.output_tokens);
        demo_emit(&b);

        /* the file's text: part bytes of a repeated sentence */

        demo_buf_reset(&result);

        while (result.len < part) {
            demo_buf_add(&result, "All work and no play. ",
                         part - result.len < 22 ? part - result.len : 22);
        }

        demo_buf_reset(&msg);
        demo_finish_tool_call(&msg, tc_id, "readTextFile",
                              demo_buf_cstr(&result));
        demo_add_usage((long) part / 4, 0);

        demo_buf_reset(&step);
        demo_buf_str(&step, ",\"usage\":");
        demo_buf_usage(&step, demo.input_tokens, demo.output_tokens);
        demo_next_step(step.data);
    }

    free(b.data);
    free(step.data);
    free(msg.data);
    free(result.data);

    /* and then the question, with the whole conversation in its checkpoint */

    return demo_scenario_interactive_step();
}


static int
demo_scenario_interactive(void)
{
    demo_begin(NULL);

    return demo_scenario_interactive_step();
}


/* a generation that calls askUser, and the run stops there */

static int
demo_scenario_interactive_step(void)
{
    char        tc_id[DEMO_ID_LEN + 1], id[DEMO_ID_LEN + 1],
                part[DEMO_ID_LEN + 1];
    demo_buf_t  b, question, call, msg;

    memset(&b, 0, sizeof(b));
    memset(&question, 0, sizeof(question));
    memset(&call, 0, sizeof(call));
    memset(&msg, 0, sizeof(msg));

    demo_start_generation();

    demo_buf_str(&question, "Before I go ahead with \"");
    demo_buf_str(&question, demo.query);
    demo_buf_str(&question, "\": do you confirm?");

    demo_make_id(tc_id);
    demo_buf_tool_call(&call, tc_id, "user-input", "askUser", question.data);

    demo_make_id(id);
    demo_make_id(part);
    demo_buf_fmt(&msg, "{\"id\":\"%s\",\"type\":\"expertMessage\","
                 "\"contents\":[{\"id\":\"%s\",\"type\":\"toolCallPart\","
                 "\"toolCallId\":\"%s\",\"toolName\":\"askUser\","
                 "\"args\":{\"question\":", id, part, tc_id);
    demo_buf_json(&msg, question.data);
    demo_buf_str(&msg, "}}]}");

    demo_add_usage(180 + (long) strlen(demo.query) / 4, 24);

    demo_event(&b, "callTools", 1);
    demo_buf_str(&b, ",\"newMessage\":");
    demo_buf_add(&b, msg.data, msg.len);
    demo_buf_str(&b, ",\"toolCalls\":[");
    demo_buf_add(&b, call.data, call.len);
    demo_buf_str(&b, "],\"usage\":");
    demo_buf_usage(&b, demo.input_tokens, demo.output_tokens);
    demo_emit(&b);

    demo_event(&b, "callInteractiveTool", 1);
    demo_buf_str(&b, ",\"newMessage\":");
    demo_buf_add(&b, msg.data, msg.len);
    demo_buf_str(&b, ",\"toolCall\":");
    demo_buf_add(&b, call.data, call.len);
    demo_buf_str(&b, ",\"usage\":");
    demo_buf_usage(&b, demo.input_tokens, demo.output_tokens);
    demo_emit(&b);

    demo_keep_message(&msg);

    demo_finish("stopRunByInteractiveTool", "stoppedByInteractiveTool",
                call.data, NULL);

    free(b.data);
    free(question.data);
    free(call.data);
    free(msg.data);

    return 0;
}


/*
 * As the real runtime does when a model call fails: the SDK's error object
 * dumped on stderr as many lines in one write, stopRunByError, and exit 0.
 */

static const char  demo_sdk_error_dump[] =
    "APICallError [AI_APICallError]: demo: the provider answered 500 "
    "Internal Server Error\n"
    "    at file:///opt/perstack/node_modules/@ai-sdk/provider-utils/dist/"
    "index.mjs:1481:14\n"
    "    at process.processTicksAndRejections "
    "(node:internal/process/task_queues:95:5)\n"
    "    at async postToApi (file:///opt/perstack/node_modules/@ai-sdk/"
    "provider-utils/dist/index.mjs:1258:28)\n"
    "    at async AnthropicMessagesLanguageModel.doStream "
    "(file:///opt/perstack/node_modules/@ai-sdk/anthropic/dist/"
    "index.mjs:3741:50) {\n"
    "  cause: undefined,\n"
    "  url: 'http://127.0.0.1/v1/messages',\n"
    "  requestBodyValues: {\n"
    "    model: 'claude-sonnet-4-5',\n"
    "    max_tokens: 64000,\n"
    "    stream: true\n"
    "  },\n"
    "  statusCode: 500,\n"
    "  responseHeaders: { 'content-type': 'application/json' },\n"
    "  responseBody: '{\"type\":\"error\",\"error\":{\"type\":"
    "\"api_error\",\"message\":\"demo\"}}',\n"
    "  isRetryable: false,\n"
    "  data: undefined,\n"
    "  [Symbol(vercel.ai.error)]: true,\n"
    "  [Symbol(vercel.ai.error.AI_APICallError)]: true\n"
    "}\n";


static int
demo_scenario_error(void)
{
    demo_call_fails();

    demo_stop_by_error("APICallError", "demo: the provider answered "
                       "500 Internal Server Error", 500, 0);

    return 0;
}


/*
 * A model call that fails as the real SDK's does: a retry, a second
 * generation, then the SDK's error object dumped on stderr.
 */

static void
demo_call_fails(void)
{
    demo_buf_t  b;

    memset(&b, 0, sizeof(b));

    demo_begin(NULL);
    demo_start_generation();

    demo_event(&b, "retry", 1);
    demo_buf_str(&b, ",\"reason\":\"demo: the provider answered 503 Service "
                 "Unavailable, retrying\",\"newMessages\":[],\"usage\":");
    demo_buf_usage(&b, demo.input_tokens, demo.output_tokens);
    demo_emit(&b);

    demo_start_generation();

    (void) demo_write_all(STDERR_FILENO, demo_sdk_error_dump,
                          sizeof(demo_sdk_error_dump) - 1);

    free(b.data);
}


/* steps until the limit: stopRunByExceededMaxSteps, and exit 0 */

static int
demo_scenario_maxsteps(void)
{
    demo_begin(NULL);
    demo_start_generation();

    demo_finish("stopRunByExceededMaxSteps", "stoppedByExceededMaxSteps",
                NULL, NULL);

    return 0;
}


/* a run that goes, then an exit 0 with no event that ends it */

static int
demo_scenario_noend(void)
{
    demo_begin(NULL);
    demo_start_generation();
    demo_stream_words(demo.query);

    return 0;
}


/*
 * The coordinator delegates: stopRunByDelegate, then the delegate's run
 * under its own expertKey and runId, which completes.  With the query
 * "return", the coordinator goes on under a new runId and completes;
 * otherwise the program exits 0 there, its own run never ended.
 */

static int
demo_scenario_delegate(void)
{
    char         tc_id[DEMO_ID_LEN + 1];
    demo_buf_t   b, call;
    const char  *coordinator;

    memset(&b, 0, sizeof(b));
    memset(&call, 0, sizeof(call));

    demo_begin(NULL);

    demo_make_id(tc_id);
    demo_buf_tool_call(&call, tc_id, "demo-helper", "demo-helper",
                       demo.query);

    demo_event(&b, "callDelegate", 1);
    demo_buf_str(&b, ",\"newMessage\":{},\"toolCalls\":[");
    demo_buf_add(&b, call.data, call.len);
    demo_buf_str(&b, "],\"usage\":");
    demo_buf_usage(&b, demo.input_tokens, demo.output_tokens);
    demo_emit(&b);

    demo_finish("stopRunByDelegate", "stoppedByDelegate", NULL, NULL);

    coordinator = demo.expert;
    demo.expert = "demo-helper";
    demo_make_id(demo.run_id);

    demo_event(&b, "startRun", 1);
    demo_buf_str(&b, ",\"initialCheckpoint\":{},\"inputMessages\":[]");
    demo_emit(&b);
    demo_complete("The delegate is done.");

    demo.expert = coordinator;
    demo_make_id(demo.run_id);

    if (strcmp(demo.query, "return") == 0) {
        demo_event(&b, "startRun", 1);
        demo_buf_str(&b, ",\"initialCheckpoint\":{},\"inputMessages\":[]");
        demo_emit(&b);
        demo_complete("The delegate returned to the coordinator.");
    }

    free(b.data);
    free(call.data);

    return 0;
}


static int
demo_scenario_slow(void)
{
    long        i, n;
    demo_buf_t  text, all;

    memset(&text, 0, sizeof(text));
    memset(&all, 0, sizeof(all));

    n = demo_query_number(30);
    demo.delay_ms = 0;

    demo_begin(NULL);
    demo_simple("startStreamingReasoning", NULL, NULL);

    for (i = 1; i <= n; i++) {
        demo_sleep_ms(1000);

        demo_buf_reset(&text);
        demo_buf_fmt(&text, "thinking, second %ld of %ld... ", i, n);
        demo_buf_add(&all, text.data, text.len);

        demo_simple("streamReasoning", "delta", text.data);
    }

    demo_simple("completeStreamingReasoning", "text", demo_buf_cstr(&all));

    demo_buf_reset(&text);
    demo_buf_fmt(&text, "Done after thinking for %ld seconds.", n < 0 ? 0 : n);
    demo_complete(text.data);

    free(text.data);
    free(all.data);

    return 0;
}


static int
demo_scenario_flood(void)
{
    long        i, n;
    demo_buf_t  b, batch, text;

    memset(&b, 0, sizeof(b));
    memset(&batch, 0, sizeof(batch));
    memset(&text, 0, sizeof(text));

    n = demo_query_number(100000);
    demo.delay_ms = 0;

    demo_begin(NULL);
    demo_simple("startStreamingRunResult", NULL, NULL);

    /* whole lines, up to 64K at a time: one write(2) per line is slow */

    for (i = 0; i < n; i++) {
        demo_event(&b, "streamRunResult", 1);
        demo_buf_str(&b, ",\"delta\":\"x\"}\n");
        demo_buf_add(&batch, b.data, b.len);

        if (batch.len >= 65536 - 512) {
            demo_out(batch.data, batch.len);
            demo_buf_reset(&batch);
        }
    }

    if (batch.len) {
        demo_out(batch.data, batch.len);
    }

    free(b.data);
    free(batch.data);

    demo_add_usage(0, n < 0 ? 0 : n);

    demo_buf_fmt(&text, "Flooded %ld events.", n < 0 ? 0 : n);
    demo_complete(text.data);

    free(text.data);

    return 0;
}


static int
demo_scenario_huge(void)
{
    long        n;
    size_t      pad;
    demo_buf_t  b, text;

    memset(&b, 0, sizeof(b));
    memset(&text, 0, sizeof(text));

    n = demo_query_number(4194304);

    if (n > DEMO_MAX_HUGE) {
        demo_err("huge: at most %ld bytes", DEMO_MAX_HUGE);
        return 1;
    }

    /* its one big line is not kept in the workspace */

    demo.no_event_files = 1;

    demo_begin(NULL);

    /*
     * A streamRunResult whose line is n bytes without its newline: the
     * delta is padded with "x" (no shorter than the event with an empty
     * delta).
     */

    demo_event(&b, "streamRunResult", 1);
    demo_buf_str(&b, ",\"delta\":\"");

    pad = 0;
    if (n > 0 && (size_t) n > b.len + 2) {
        pad = (size_t) n - b.len - 2;
    }

    demo_buf_reserve(&b, pad + 3);
    memset(b.data + b.len, 'x', pad);
    b.len += pad;
    demo_buf_add(&b, "\"", 1);
    demo_emit(&b);

    demo_add_usage(0, (long) (pad / 4));

    demo_buf_fmt(&text, "Sent one event line of %zu bytes.", b.len - 1);
    demo_complete(text.data);

    free(b.data);
    free(text.data);

    return 0;
}


/*
 * The long-line scenarios: single lines far over perstack_max_line, each
 * written with one write(2) as the real runtime prints an event.  N is the
 * query as an integer (default 3 MiB, at most DEMO_MAX_HUGE).
 */

static long
demo_long_size(const char *scenario)
{
    long  n;

    n = demo_query_number(3 * 1024 * 1024);

    if (n < 0 || n > DEMO_MAX_HUGE) {
        demo_err("%s: from 0 to %ld bytes", scenario, DEMO_MAX_HUGE);
        return -1;
    }

    return n;
}


/* a message whose text DEMO_LONG_MARK becomes the long text at the end */

static void
demo_keep_long_message(const char *type)
{
    demo_buf_t  msg;

    memset(&msg, 0, sizeof(msg));

    demo_buf_text_message(&msg, type, DEMO_LONG_MARK);
    demo_keep_message(&msg);

    free(msg.data);
}


/*
 * longend: a run whose completeRun line is exactly N bytes (without its
 * newline): its checkpoint holds an expertMessage whose text is
 * DEMO_LONG_UNIT repeated, then "x" up to the length.  completeRun's own
 * text is short: "Completed with a line of N bytes."
 */

static int
demo_scenario_longend(void)
{
    long        n;
    demo_buf_t  text;

    n = demo_long_size("longend");
    if (n < 0) {
        return 1;
    }

    memset(&text, 0, sizeof(text));

    demo_begin(NULL);
    demo_keep_long_message("expertMessage");

    /* the big line is not kept in the workspace as an event file */

    demo.no_event_files = 1;
    demo.long_line = (size_t) n;

    demo_buf_fmt(&text, "Completed with a line of %ld bytes.", n);
    demo_complete(text.data);

    demo.long_line = 0;
    demo.no_event_files = 0;

    free(text.data);

    return 0;
}


/*
 * longerror: the error scenario, whose stopRunByError line is exactly N
 * bytes: its checkpoint holds an expertMessage of the long text, as
 * longend's.
 */

static int
demo_scenario_longerror(void)
{
    long  n;

    n = demo_long_size("longerror");
    if (n < 0) {
        return 1;
    }

    demo_call_fails();

    demo_keep_long_message("expertMessage");

    demo.no_event_files = 1;
    demo.long_line = (size_t) n;

    demo_stop_by_error("APICallError", "demo: the provider answered "
                       "500 Internal Server Error", 500, 0);

    demo.long_line = 0;
    demo.no_event_files = 0;

    return 0;
}


/*
 * N bytes of unit repeated, then pad up to N (pad is one ASCII byte), and
 * a newline: valid UTF-8 whose characters straddle many cut points.
 */

static void
demo_buf_repeat(demo_buf_t *b, size_t n, const char *unit, char pad)
{
    size_t  ulen;

    ulen = strlen(unit);

    demo_buf_reserve(b, n + 1);

    while (b->len + ulen <= n) {
        memcpy(b->data + b->len, unit, ulen);
        b->len += ulen;
    }

    memset(b->data + b->len, pad, n - b->len);
    b->len = n;
    demo_buf_add(b, "\n", 1);
}


/*
 * longstderr: one stderr line of N bytes, "a\xc3\xa9\xe3\x81\x82" ("a", a
 * 2-byte and a 3-byte character) repeated, "a" up to N; then completeRun.
 */

static int
demo_scenario_longstderr(void)
{
    long        n;
    demo_buf_t  b;

    n = demo_long_size("longstderr");
    if (n < 0) {
        return 1;
    }

    memset(&b, 0, sizeof(b));

    demo_begin(NULL);

    demo_buf_repeat(&b, (size_t) n, "a\xc3\xa9\xe3\x81\x82", 'a');
    (void) demo_write_all(STDERR_FILENO, b.data, b.len);

    demo_complete("Done, after a long line on stderr.");

    free(b.data);

    return 0;
}


/*
 * longtext: one stdout line of N bytes that is not JSON,
 * "\xe3\x81\x82\xe3\x81\x84\xe3\x81\x86" (3-byte characters) repeated, "."
 * up to N; then completeRun.
 */

static int
demo_scenario_longtext(void)
{
    long        n;
    demo_buf_t  b;

    n = demo_long_size("longtext");
    if (n < 0) {
        return 1;
    }

    memset(&b, 0, sizeof(b));

    demo_begin(NULL);

    if (demo.delay_ms > 0) {
        demo_sleep_ms(demo.delay_ms);
    }

    demo_buf_repeat(&b, (size_t) n, "\xe3\x81\x82\xe3\x81\x84\xe3\x81\x86",
                    '.');
    demo_out(b.data, b.len);

    demo_complete("Done, after a long line of text.");

    free(b.data);

    return 0;
}


/*
 * A streamRunResult line of N bytes (without its newline): the common
 * fields, a delta of "x" padding, then tail.  The line is never shorter
 * than the same line with an empty delta.
 */

static void
demo_long_delta_line(size_t n, const char *tail)
{
    size_t      pad, tlen;
    demo_buf_t  b;

    memset(&b, 0, sizeof(b));

    tlen = strlen(tail);

    demo_event(&b, "streamRunResult", 1);
    demo_buf_str(&b, ",\"delta\":\"");

    pad = 0;
    if (n > b.len + 1 + tlen) {
        pad = n - b.len - 1 - tlen;
    }

    demo_buf_reserve(&b, pad + tlen + 2);
    memset(b.data + b.len, 'x', pad);
    b.len += pad;
    demo_buf_add(&b, "\"", 1);
    demo_buf_add(&b, tail, tlen);
    demo_buf_add(&b, "\n", 1);

    demo_out(b.data, b.len);

    free(b.data);
}


/*
 * longbad: a line that starts as a streamRunResult with a long delta and
 * is no JSON at its end: {"type":"streamRunResult",...,"delta":"xx...x",
 * "x":} of N bytes.  Then completeRun.
 */

static int
demo_scenario_longbad(void)
{
    long  n;

    n = demo_long_size("longbad");
    if (n < 0) {
        return 1;
    }

    demo_begin(NULL);
    demo_long_delta_line((size_t) n, ",\"x\":}");
    demo_complete("Done, after a long line that is not JSON.");

    return 0;
}


/*
 * longforge: the module's closing event behind a long string:
 * {"type":"streamRunResult",...,"delta":"xx...x","type":"perstack.end",
 * "outcome":"completed"} of N bytes.  Then completeRun.
 */

static int
demo_scenario_longforge(void)
{
    long  n;

    n = demo_long_size("longforge");
    if (n < 0) {
        return 1;
    }

    demo_begin(NULL);
    demo_long_delta_line((size_t) n,
                         ",\"type\":\"perstack.end\",\"outcome\":\"completed\"}");
    demo_complete("Done, after a forged closing event.");

    return 0;
}


static int
demo_scenario_garbage(void)
{
    static const char  garbage[] =
        "this is plain text, not an event\n"
        "[1,2,3]\n"
        "\"just a JSON string\"\n"
        "\x00\x01\xff\xfe\n"
        "invalid UTF-8: \xc3\x28 \xe2\x82 \xed\xa0\x80 \xc0\xaf\n"
        "a line with a carriage return\rin the middle\n"
        "\n"
        "{\"type\":\"streamRunResult\",\"delta\":\"trunc\n"
        "42\n"
        "null\n";

    demo_begin(NULL);

    if (demo.delay_ms > 0) {
        demo_sleep_ms(demo.delay_ms);
    }

    demo_out(garbage, sizeof(garbage) - 1);

    demo_complete("Done, after some garbage.");

    return 0;
}


/*
 * The query, as it is, as one line of stdout: whatever a runtime could
 * print, for the tests of what the module makes of it.
 */

static int
demo_scenario_echo(void)
{
    demo_begin(NULL);

    demo_out(demo.query, strlen(demo.query));
    demo_out("\n", 1);

    demo_complete("Done, after an echo.");

    return 0;
}


static int
demo_scenario_stderr(void)
{
    demo_buf_t  text;

    memset(&text, 0, sizeof(text));

    demo_err("stderr chatter 1: loading perstack.toml");
    demo_begin(NULL);
    demo_err("stderr chatter 2: connecting skills");
    demo_start_generation();
    demo_err("stderr chatter 3: generating");
    demo_stream_words(demo.query);
    demo_err("stderr chatter 4: about to complete");

    demo_buf_str(&text, "Done with some chatter on stderr: \"");
    demo_buf_str(&text, demo.query);
    demo_buf_str(&text, "\".");
    demo_complete(text.data);

    demo_err("stderr chatter 5: bye");

    free(text.data);

    return 0;
}


static int
demo_scenario_exit(void)
{
    long  code;

    code = demo_query_number(3);

    demo_begin(NULL);
    demo_start_generation();

    demo_err("exiting with code %ld, without completing the run", code & 0xff);

    return (int) (code & 0xff);
}


static int
demo_scenario_crash(void)
{
    struct rlimit  rl;

    demo_begin(NULL);
    demo_start_generation();

    demo_err("about to crash (abort)");

    /* no core file in the workspace */

    rl.rlim_cur = 0;
    rl.rlim_max = 0;
    (void) setrlimit(RLIMIT_CORE, &rl);

    abort();

    return 1;
}


static int
demo_scenario_stubborn(void)
{
    long              i;
    demo_buf_t        text;
    struct sigaction  sa;

    memset(&text, 0, sizeof(text));
    memset(&sa, 0, sizeof(sa));

    sa.sa_handler = SIG_IGN;
    (void) sigemptyset(&sa.sa_mask);

    if (sigaction(SIGTERM, &sa, NULL) != 0) {
        demo_err("sigaction: %s", strerror(errno));
        return 1;
    }

    demo_err("stubborn: ignoring SIGTERM, only SIGKILL stops me");

    demo.delay_ms = 200;

    demo_begin(NULL);
    demo_simple("startStreamingReasoning", NULL, NULL);

    for (i = 1; /* void */ ; i++) {
        demo_buf_reset(&text);
        demo_buf_fmt(&text, "still here (%ld) ", i);
        demo_simple("streamReasoning", "delta", text.data);
    }

    /* unreachable */

    return 0;
}


static int
demo_scenario_nonl(void)
{
    demo_begin(NULL);
    demo_start_generation();
    demo_stream_words(demo.query);

    demo.no_final_newline = 1;
    demo_complete("This last line has no final newline.");

    return 0;
}


/*
 * probe: facts about the sandbox, in one {"type":"probe"} event: the ids,
 * capabilities and no_new_privs, where files can be created, the network
 * interfaces, the environment, the mounts, the cgroup limits, whether the
 * runtime is PID 1, and which paths named in the query are readable.
 */

#define DEMO_PROBE_MAX_PATHS  32

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

static int
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


static int
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


/*
 * memhog: allocates and touches memory 16 MiB at a time, a streamReasoning
 * event after each step, until the kernel's OOM killer ends it.  A positive
 * query is a ceiling in MiB: there it stops and completes the run.
 */

#define DEMO_HOG_STEP  (16L * 1024 * 1024)

static void *volatile  demo_hog;


static int
demo_scenario_memhog(void)
{
    long         max, total;
    void       **block;
    demo_buf_t   text;

    memset(&text, 0, sizeof(text));

    max = demo_query_number(0);
    demo.delay_ms = 0;

    demo_begin(NULL);
    demo_simple("startStreamingReasoning", NULL, NULL);

    for (total = 0; max <= 0 || total + 16 <= max; /* void */ ) {
        block = malloc(DEMO_HOG_STEP);

        if (block == NULL) {
            demo_err("memhog: malloc: %s", strerror(errno));
            demo_stop_by_error("MemoryError", "demo: malloc failed", 0, 0);
            return 1;
        }

        /* every page written to, and kept */
        memset(block, 0x5a, DEMO_HOG_STEP);
        block[0] = demo_hog;
        demo_hog = block;

        total += 16;

        demo_buf_reset(&text);
        demo_buf_fmt(&text, "allocated %ld MiB ", total);
        demo_simple("streamReasoning", "delta", text.data);
    }

    demo_buf_reset(&text);
    demo_buf_fmt(&text, "Allocated %ld MiB and stopped there.", total);
    demo_complete(text.data);

    free(text.data);

    return 0;
}


/*
 * forkbomb: forks children that sleep until fork fails (a positive query
 * caps their number, default 4096), reports how many it got and the
 * errno in a {"type":"forkbomb"} event, then kills and reaps them.
 */

/* a short name of errno, for the tests to compare */

static const char *
demo_errno_name(int err)
{
    switch (err) {
    case 0:
        return "";
    case EAGAIN:
        return "EAGAIN";
    case ENOMEM:
        return "ENOMEM";
    case EPERM:
        return "EPERM";
    case ENOSYS:
        return "ENOSYS";
    case ENETUNREACH:
        return "ENETUNREACH";
    case EHOSTUNREACH:
        return "EHOSTUNREACH";
    case ECONNREFUSED:
        return "ECONNREFUSED";
    case ETIMEDOUT:
        return "ETIMEDOUT";
    case EACCES:
        return "EACCES";
    case EINVAL:
        return "EINVAL";
    default:
        return "other";
    }
}


static int
demo_scenario_forkbomb(void)
{
    int          err;
    long         i, n, max, reaped;
    pid_t        pid, *pids;
    demo_buf_t   b, text;

    memset(&b, 0, sizeof(b));
    memset(&text, 0, sizeof(text));

    max = demo_query_number(4096);

    if (max <= 0 || max > 65536) {
        max = 4096;
    }

    pids = malloc((size_t) max * sizeof(pid_t));
    if (pids == NULL) {
        demo_oom();
    }

    demo_begin(NULL);

    err = 0;

    for (n = 0; n < max; n++) {
        pid = fork();

        if (pid == -1) {
            err = errno;
            break;
        }

        if (pid == 0) {
            for ( ;; ) {
                (void) pause();
            }
        }

        pids[n] = pid;
    }

    demo_event(&b, "forkbomb", 1);
    demo_buf_fmt(&b, ",\"children\":%ld,\"processes\":%ld,\"errno\":%d,"
                 "\"error\":\"%s\",\"message\":", n, n + 1, err,
                 demo_errno_name(err));
    demo_buf_json(&b, err ? strerror(err) : "");
    demo_buf_fmt(&b, ",\"capped\":%s", err ? "false" : "true");
    demo_emit(&b);

    for (i = 0; i < n; i++) {
        (void) kill(pids[i], SIGKILL);
    }

    reaped = 0;

    for (i = 0; i < n; i++) {
        do {
            pid = waitpid(pids[i], NULL, 0);
        } while (pid == -1 && errno == EINTR);

        if (pid == pids[i]) {
            reaped++;
        }
    }

    demo_buf_fmt(&text, "Forked %ld children before %s; killed and reaped "
                 "%ld.", n, err ? demo_errno_name(err) : "the cap", reaped);
    demo_complete(text.data);

    free(pids);
    free(b.data);
    free(text.data);

    return 0;
}


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


/* a small JSON reader: the members of a flat object (checkpoints, answers) */

static void
demo_json_ws(demo_json_t *j)
{
    while (j->p < j->end
           && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    {
        j->p++;
    }
}


static int
demo_json_hex4(demo_json_t *j, uint32_t *out)
{
    int       i;
    char      c;
    uint32_t  v;

    if (j->end - j->p < 4) {
        return -1;
    }

    v = 0;

    for (i = 0; i < 4; i++) {
        c = *j->p++;
        v <<= 4;

        if (c >= '0' && c <= '9') {
            v |= (uint32_t) (c - '0');

        } else if (c >= 'a' && c <= 'f') {
            v |= (uint32_t) (c - 'a' + 10);

        } else if (c >= 'A' && c <= 'F') {
            v |= (uint32_t) (c - 'A' + 10);

        } else {
            return -1;
        }
    }

    *out = v;

    return 0;
}


static void
demo_buf_utf8(demo_buf_t *b, uint32_t c)
{
    char  s[4];

    if (c < 0x80) {
        s[0] = (char) c;
        demo_buf_add(b, s, 1);

    } else if (c < 0x800) {
        s[0] = (char) (0xc0 | (c >> 6));
        s[1] = (char) (0x80 | (c & 0x3f));
        demo_buf_add(b, s, 2);

    } else if (c < 0x10000) {
        s[0] = (char) (0xe0 | (c >> 12));
        s[1] = (char) (0x80 | ((c >> 6) & 0x3f));
        s[2] = (char) (0x80 | (c & 0x3f));
        demo_buf_add(b, s, 3);

    } else {
        s[0] = (char) (0xf0 | (c >> 18));
        s[1] = (char) (0x80 | ((c >> 12) & 0x3f));
        s[2] = (char) (0x80 | ((c >> 6) & 0x3f));
        s[3] = (char) (0x80 | (c & 0x3f));
        demo_buf_add(b, s, 4);
    }
}


/* a string at j->p, decoded into out (NULL to skip it) */

static int
demo_json_string(demo_json_t *j, demo_buf_t *out)
{
    char       c;
    uint32_t   u, lo;
    demo_buf_t  skip;

    memset(&skip, 0, sizeof(skip));

    if (out == NULL) {
        out = &skip;
    }

    if (j->p == j->end || *j->p != '"') {
        return -1;
    }

    j->p++;

    while (j->p < j->end) {
        c = *j->p++;

        if (c == '"') {
            free(skip.data);
            return 0;
        }

        if ((unsigned char) c < 0x20) {
            break;
        }

        if (c != '\\') {
            demo_buf_add(out, &c, 1);
            continue;
        }

        if (j->p == j->end) {
            break;
        }

        c = *j->p++;

        switch (c) {
        case '"': case '\\': case '/':
            demo_buf_add(out, &c, 1);
            continue;
        case 'b':
            demo_buf_add(out, "\b", 1);
            continue;
        case 'f':
            demo_buf_add(out, "\f", 1);
            continue;
        case 'n':
            demo_buf_add(out, "\n", 1);
            continue;
        case 'r':
            demo_buf_add(out, "\r", 1);
            continue;
        case 't':
            demo_buf_add(out, "\t", 1);
            continue;
        case 'u':
            break;
        default:
            goto invalid;
        }

        if (demo_json_hex4(j, &u) != 0) {
            break;
        }

        if (u >= 0xd800 && u <= 0xdbff) {
            if (j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
                j->p += 2;

                if (demo_json_hex4(j, &lo) != 0) {
                    break;
                }

                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);

                } else {
                    u = 0xfffd;
                    j->p -= 6;
                }

            } else {
                u = 0xfffd;
            }

        } else if (u >= 0xdc00 && u <= 0xdfff) {
            u = 0xfffd;
        }

        demo_buf_utf8(out, u);
    }

invalid:

    free(skip.data);

    return -1;
}


/* skip any value */

static int
demo_json_skip(demo_json_t *j, int depth)
{
    char  close;

    if (depth > 64) {
        return -1;
    }

    demo_json_ws(j);

    if (j->p == j->end) {
        return -1;
    }

    if (*j->p == '"') {
        return demo_json_string(j, NULL);
    }

    if (*j->p == '{' || *j->p == '[') {
        close = (*j->p == '{') ? '}' : ']';
        j->p++;
        demo_json_ws(j);

        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 0;
        }

        for ( ;; ) {
            if (close == '}') {
                demo_json_ws(j);

                if (demo_json_string(j, NULL) != 0) {
                    return -1;
                }

                demo_json_ws(j);

                if (j->p == j->end || *j->p++ != ':') {
                    return -1;
                }
            }

            if (demo_json_skip(j, depth + 1) != 0) {
                return -1;
            }

            demo_json_ws(j);

            if (j->p == j->end) {
                return -1;
            }

            if (*j->p == ',') {
                j->p++;
                continue;
            }

            if (*j->p++ == close) {
                return 0;
            }

            return -1;
        }
    }

    /* numbers, true, false, null */

    if (!strchr("-0123456789tfn", *j->p)) {
        return -1;
    }

    while (j->p < j->end && strchr("+-.0123456789eEtruefalsn", *j->p)) {
        j->p++;
    }

    return 0;
}


/*
 * The members of a JSON object text: for each key in keys the decoded
 * string, or the text of another value, goes to the matching buffer of
 * values.  Returns -1 when the text is not a JSON object.
 */

static int
demo_json_strings(const char *text, size_t len, const char **keys,
    demo_buf_t *values)
{
    int          i;
    const char  *start;
    demo_buf_t   key;
    demo_json_t  j;

    memset(&key, 0, sizeof(key));

    j.p = text;
    j.end = text + len;

    demo_json_ws(&j);

    if (j.p == j.end || *j.p++ != '{') {
        return -1;
    }

    demo_json_ws(&j);

    if (j.p < j.end && *j.p == '}') {
        j.p++;
        goto done;
    }

    for ( ;; ) {
        demo_json_ws(&j);
        demo_buf_reset(&key);

        if (demo_json_string(&j, &key) != 0) {
            goto invalid;
        }

        demo_json_ws(&j);

        if (j.p == j.end || *j.p++ != ':') {
            goto invalid;
        }

        demo_json_ws(&j);

        for (i = 0; keys[i]; i++) {
            if (strcmp(keys[i], demo_buf_cstr(&key)) == 0) {
                break;
            }
        }

        if (keys[i] && j.p < j.end && *j.p == '"') {
            demo_buf_reset(&values[i]);

            if (demo_json_string(&j, &values[i]) != 0) {
                goto invalid;
            }

        } else {
            start = j.p;

            if (demo_json_skip(&j, 0) != 0) {
                goto invalid;
            }

            /* other values of wanted keys: their text as it is */

            if (keys[i]) {
                demo_buf_reset(&values[i]);
                demo_buf_add(&values[i], start, (size_t) (j.p - start));
            }
        }

        demo_json_ws(&j);

        if (j.p == j.end) {
            goto invalid;
        }

        if (*j.p == ',') {
            j.p++;
            continue;
        }

        if (*j.p++ == '}') {
            break;
        }

        goto invalid;
    }

done:

    demo_json_ws(&j);

    if (j.p != j.end) {
        goto invalid;
    }

    free(key.data);
    return 0;

invalid:

    free(key.data);
    return -1;
}


/* continue a job */

static int
demo_read_file(const char *path, demo_buf_t *b)
{
    int      fd;
    char     chunk[8192];
    ssize_t  n;

    fd = open(path, O_RDONLY);
    if (fd == -1) {
        return -1;
    }

    for ( ;; ) {
        n = read(fd, chunk, sizeof(chunk));

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }

            (void) close(fd);
            return -1;
        }

        if (n == 0) {
            break;
        }

        demo_buf_add(b, chunk, (size_t) n);
    }

    (void) close(fd);

    return 0;
}


/* the job whose checkpoints changed last, for --continue */

static int
demo_latest_job(char *out)
{
    DIR             *dir;
    char             path[PATH_MAX];
    struct stat      st;
    struct dirent   *de;
    struct timespec  best;

    dir = opendir(DEMO_JOBS_DIR);
    if (dir == NULL) {
        return -1;
    }

    out[0] = '\0';
    best.tv_sec = 0;
    best.tv_nsec = 0;

    while ((de = readdir(dir)) != NULL) {
        if (!demo_valid_id(de->d_name)) {
            continue;
        }

        (void) snprintf(path, sizeof(path), DEMO_JOBS_DIR "/%s/checkpoints",
                        de->d_name);

        if (stat(path, &st) != 0) {
            continue;
        }

        if (out[0] == '\0'
            || st.st_mtim.tv_sec > best.tv_sec
            || (st.st_mtim.tv_sec == best.tv_sec
                && st.st_mtim.tv_nsec > best.tv_nsec))
        {
            /* demo_valid_id() has checked the length */
            best = st.st_mtim;
            memcpy(out, de->d_name, strlen(de->d_name) + 1);
        }
    }

    (void) closedir(dir);

    return out[0] ? 0 : -1;
}


static const char  *demo_checkpoint_keys[] = {
    "expert", "status", "stepNumber", "usage", "pendingToolCalls",
    "messages", NULL
};

enum {
    DEMO_CP_EXPERT = 0,
    DEMO_CP_STATUS,
    DEMO_CP_STEP,
    DEMO_CP_USAGE,
    DEMO_CP_PENDING,
    DEMO_CP_MESSAGES,
    DEMO_CP_NKEYS
};


/*
 * The job's last checkpoint, as the runtime resumes from it: the one of the
 * highest step, and of those the one written last.  Its members go to
 * values; -1 if the job has none.
 */

static int
demo_last_checkpoint(demo_buf_t *values)
{
    DIR              *dir;
    long              step, best_step;
    size_t            n;
    char              dpath[PATH_MAX], path[PATH_MAX + NAME_MAX + 2];
    struct stat       st;
    struct dirent    *de;
    struct timespec   best;
    demo_buf_t        text, v[DEMO_CP_NKEYS];
    int               i, found;

    (void) snprintf(dpath, sizeof(dpath), DEMO_JOBS_DIR "/%s/checkpoints",
                    demo.job_id);

    dir = opendir(dpath);
    if (dir == NULL) {
        return -1;
    }

    memset(&text, 0, sizeof(text));
    memset(v, 0, sizeof(v));

    found = 0;
    best_step = 0;
    best.tv_sec = 0;
    best.tv_nsec = 0;

    while ((de = readdir(dir)) != NULL) {
        n = strlen(de->d_name);

        if (n <= 5 || strcmp(de->d_name + n - 5, ".json") != 0) {
            continue;
        }

        (void) snprintf(path, sizeof(path), "%s/%s", dpath, de->d_name);

        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }

        demo_buf_reset(&text);

        for (i = 0; i < DEMO_CP_NKEYS; i++) {
            demo_buf_reset(&v[i]);
        }

        if (demo_read_file(path, &text) != 0
            || demo_json_strings(demo_buf_cstr(&text), text.len,
                                 demo_checkpoint_keys, v)
               != 0)
        {
            demo_err("warning: \"%s\" is not a checkpoint", path);
            continue;
        }

        step = strtol(demo_buf_cstr(&v[DEMO_CP_STEP]), NULL, 10);

        if (found
            && (step < best_step
                || (step == best_step
                    && (st.st_mtim.tv_sec < best.tv_sec
                        || (st.st_mtim.tv_sec == best.tv_sec
                            && st.st_mtim.tv_nsec <= best.tv_nsec)))))
        {
            continue;
        }

        found = 1;
        best_step = step;
        best = st.st_mtim;

        for (i = 0; i < DEMO_CP_NKEYS; i++) {
            demo_buf_reset(&values[i]);
            demo_buf_add(&values[i], demo_buf_cstr(&v[i]), v[i].len);
        }
    }

    (void) closedir(dir);

    free(text.data);

    for (i = 0; i < DEMO_CP_NKEYS; i++) {
        free(v[i].data);
    }

    return found ? 0 : -1;
}


/* the text of a JSON array without its brackets, white space trimmed */

static void
demo_json_array_items(demo_buf_t *array, demo_buf_t *out)
{
    const char  *p, *end;

    p = demo_buf_cstr(array);
    end = p + array->len;

    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }

    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n'
                       || end[-1] == '\r'))
    {
        end--;
    }

    demo_buf_reset(out);

    if (end - p < 2 || *p != '[' || end[-1] != ']') {
        return;
    }

    demo_buf_add(out, p + 1, (size_t) (end - p - 2));
}


/* the first item of a JSON array's items, as text */

static void
demo_json_first_item(demo_buf_t *items, demo_buf_t *out)
{
    const char   *start;
    demo_json_t   j;

    demo_buf_reset(out);

    j.p = demo_buf_cstr(items);
    j.end = j.p + items->len;

    demo_json_ws(&j);
    start = j.p;

    if (j.p < j.end && demo_json_skip(&j, 0) == 0) {
        demo_buf_add(out, start, (size_t) (j.p - start));
    }
}


/* a failure the runtime reports: its message alone on stderr, exit 1 */

static int
demo_fail(const char *fmt, ...)
{
    int      n;
    char     line[1024];
    va_list  args;

    va_start(args, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, args);
    va_end(args);

    if (n < 0) {
        return 1;
    }

    if (n > (int) sizeof(line) - 2) {
        n = sizeof(line) - 2;
    }

    line[n++] = '\n';

    (void) demo_write_all(STDERR_FILENO, line, (size_t) n);

    return 1;
}


/*
 * Continue a job from its last checkpoint, as the runtime does: under the
 * same expert only; with -i the query answers the call the job is paused
 * at, without -i the job must not be paused at one.
 */

static int
demo_continue(void)
{
    int           i, rc, paused;
    char          path[PATH_MAX], part[DEMO_ID_LEN + 1];
    struct stat   st;
    demo_buf_t    b, input, text, answer_text, tc_id, tool, skill, items,
                  item;
    demo_buf_t    values[DEMO_CP_NKEYS], expert_values[1], call_values[3],
                  usage_values[2], answer_values[4];

    static const char  *expert_keys[] = { "key", NULL };

    static const char  *call_keys[] = {
        "id", "toolName", "skillName", NULL
    };

    static const char  *usage_keys[] = {
        "inputTokens", "outputTokens", NULL
    };

    static const char  *answer_keys[] = {
        "toolCallId", "toolName", "skillName", "text", NULL
    };

    rc = 0;

    memset(&b, 0, sizeof(b));
    memset(&input, 0, sizeof(input));
    memset(&text, 0, sizeof(text));
    memset(&answer_text, 0, sizeof(answer_text));
    memset(&tc_id, 0, sizeof(tc_id));
    memset(&tool, 0, sizeof(tool));
    memset(&skill, 0, sizeof(skill));
    memset(&items, 0, sizeof(items));
    memset(&item, 0, sizeof(item));
    memset(values, 0, sizeof(values));
    memset(expert_values, 0, sizeof(expert_values));
    memset(call_values, 0, sizeof(call_values));
    memset(usage_values, 0, sizeof(usage_values));
    memset(answer_values, 0, sizeof(answer_values));

    /* the job: its directory must exist */

    if (demo.continue_job) {
        (void) snprintf(demo.job_id, sizeof(demo.job_id), "%s",
                        demo.continue_job);

    } else if (demo_latest_job(demo.job_id) != 0) {
        demo_err("error: --continue: no job to continue in %s", DEMO_JOBS_DIR);
        return 1;
    }

    (void) snprintf(path, sizeof(path), DEMO_JOBS_DIR "/%s", demo.job_id);

    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        demo_err("error: job \"%s\" not found in %s", demo.job_id,
                 DEMO_JOBS_DIR);
        return 1;
    }

    if (demo.resume_from) {
        (void) snprintf(path, sizeof(path),
                        DEMO_JOBS_DIR "/%s/checkpoints/%s.json",
                        demo.job_id, demo.resume_from);

        if (stat(path, &st) != 0) {
            demo_err("error: checkpoint \"%s\" not found in job \"%s\"",
                     demo.resume_from, demo.job_id);
            return 1;
        }
    }

    /* the job's last checkpoint: its expert, steps, usage and messages */

    if (demo_last_checkpoint(values) != 0) {
        demo_err("error: job \"%s\" has no checkpoint to continue from",
                 demo.job_id);
        rc = 1;
        goto done;
    }

    if (demo_json_strings(demo_buf_cstr(&values[DEMO_CP_EXPERT]),
                          values[DEMO_CP_EXPERT].len, expert_keys,
                          expert_values)
        != 0
        || strcmp(demo_buf_cstr(&expert_values[0]), demo.expert) != 0)
    {
        rc = demo_fail("Checkpoint expert key %s does not match input expert "
                       "key %s", demo_buf_cstr(&expert_values[0]),
                       demo.expert);
        goto done;
    }

    demo_json_array_items(&values[DEMO_CP_PENDING], &items);
    demo_json_first_item(&items, &item);

    if (item.len) {
        (void) demo_json_strings(item.data, item.len, call_keys, call_values);
    }

    paused = strcmp(demo_buf_cstr(&values[DEMO_CP_STATUS]),
                    "stoppedByInteractiveTool") == 0
             && call_values[0].len;

    if (demo.interactive && !paused) {
        rc = demo_fail("Last message content is not a tool call part");
        goto done;
    }

    demo.step = strtol(demo_buf_cstr(&values[DEMO_CP_STEP]), NULL, 10);
    demo.step = (demo.step > 0 ? demo.step : 0) + 1;

    if (demo_json_strings(demo_buf_cstr(&values[DEMO_CP_USAGE]),
                          values[DEMO_CP_USAGE].len, usage_keys, usage_values)
        == 0)
    {
        demo.input_tokens = strtol(demo_buf_cstr(&usage_values[0]), NULL, 10);
        demo.output_tokens = strtol(demo_buf_cstr(&usage_values[1]), NULL, 10);
    }

    demo_json_array_items(&values[DEMO_CP_MESSAGES], &demo.messages);

    demo.initial_status = demo_buf_cstr(&values[DEMO_CP_STATUS]);

    if (!demo.interactive && paused) {

        /* the runtime starts, finds no answer to the call, and throws */

        demo_begin_runtime();
        demo_disconnect_skill();
        rc = demo_fail("Interactive tool call result is undefined");
        goto done;
    }

    if (!demo.interactive) {
        demo_begin(NULL);
        demo_start_generation();
        demo_stream_words(demo.query);

        demo_buf_fmt(&text, "Continued job %s with: \"", demo.job_id);
        demo_buf_str(&text, demo.query);
        demo_buf_str(&text, "\".");
        demo_complete(text.data);

        goto done;
    }

    /*
     * -i: the query answers the pending interactive tool call, as plain
     * text or as {"toolCallId","toolName","skillName","text"}.
     */

    if (demo_json_strings(demo.query, strlen(demo.query), answer_keys,
                          answer_values)
        == 0 && answer_values[3].len)
    {
        demo_buf_str(&answer_text, demo_buf_cstr(&answer_values[3]));

    } else {
        for (i = 0; i < 4; i++) {
            demo_buf_reset(&answer_values[i]);
        }

        demo_buf_str(&answer_text, demo.query);
    }

    demo_buf_str(&tc_id, answer_values[0].len
                         ? demo_buf_cstr(&answer_values[0])
                         : demo_buf_cstr(&call_values[0]));
    demo_buf_str(&tool, answer_values[1].len
                        ? demo_buf_cstr(&answer_values[1])
                        : call_values[1].len ? demo_buf_cstr(&call_values[1])
                                             : "askUser");
    demo_buf_str(&skill, answer_values[2].len
                         ? demo_buf_cstr(&answer_values[2])
                         : call_values[2].len ? demo_buf_cstr(&call_values[2])
                                              : "user-input");

    /* startRun from the paused checkpoint, with no new input message */

    demo_begin(&input);

    /* the answer as a tool message: the call is finished */

    demo_finish_tool_call(&input, tc_id.data, tool.data, answer_text.data);

    /* continueToNextStep: this step's checkpoint and the next one's */

    demo_buf_reset(&b);
    demo_buf_str(&b, ",\"inputMessages\":[],\"newMessages\":[");
    demo_buf_add(&b, input.data, input.len);
    demo_buf_str(&b, "],\"toolResults\":[{\"id\":");
    demo_buf_json(&b, tc_id.data);
    demo_buf_str(&b, ",\"skillName\":");
    demo_buf_json(&b, skill.data);
    demo_buf_str(&b, ",\"toolName\":");
    demo_buf_json(&b, tool.data);
    demo_make_id(part);
    demo_buf_fmt(&b, ",\"result\":[{\"type\":\"textPart\",\"id\":\"%s\","
                 "\"text\":", part);
    demo_buf_json(&b, answer_text.data);
    demo_buf_str(&b, "}]}],\"usage\":");
    demo_buf_usage(&b, 0, 0);
    demo_next_step(b.data);

    demo_start_generation();

    demo_buf_str(&text, "Thanks, you answered: \"");
    demo_buf_add(&text, answer_text.data, answer_text.len);
    demo_buf_str(&text, "\". The demo job is done.");

    demo_stream_words(text.data);
    demo_complete(text.data);

done:

    free(b.data);
    free(input.data);
    free(text.data);
    free(answer_text.data);
    free(tc_id.data);
    free(tool.data);
    free(skill.data);
    free(items.data);
    free(item.data);
    free(expert_values[0].data);

    for (i = 0; i < DEMO_CP_NKEYS; i++) {
        free(values[i].data);
    }

    for (i = 0; i < 3; i++) {
        free(call_values[i].data);
    }

    for (i = 0; i < 2; i++) {
        free(usage_values[i].data);
    }

    for (i = 0; i < 4; i++) {
        free(answer_values[i].data);
    }

    return rc;
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


/*
 * The configuration, as the runtime finds it: the file of --config, or
 * else the first perstack.toml from the working directory upward.  Only
 * the top-level "model" is read (it shows in initializeRuntime), unless
 * --model was given.  Returns 0, or 1 when the file cannot be read.
 */

static int
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

static void
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


/*
 * Networking for llm and net: IPv4 literals only (the image has no resolver
 * configuration to speak of, and the gateway's URL holds its address).
 */

#define DEMO_CONNECT_TIMEOUT  2000           /* ms */
#define DEMO_HTTP_TIMEOUT     10000          /* ms */


/* "a.b.c.d:port" into sin; 0 on success */

static int
demo_parse_target(const char *s, size_t len, struct sockaddr_in *sin)
{
    char    host[INET_ADDRSTRLEN];
    char   *end;
    long    port;
    size_t  n;
    const char  *colon;

    colon = memchr(s, ':', len);
    if (colon == NULL) {
        return -1;
    }

    n = (size_t) (colon - s);
    if (n == 0 || n >= sizeof(host)) {
        return -1;
    }

    memcpy(host, s, n);
    host[n] = '\0';

    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;

    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
        return -1;
    }

    errno = 0;
    port = strtol(colon + 1, &end, 10);

    if (errno || end != s + len || port < 1 || port > 65535) {
        return -1;
    }

    sin->sin_port = htons((unsigned short) port);

    return 0;
}


/* a connected socket, or -1 with errno set; never waits longer than ms */

static int
demo_connect(struct sockaddr_in *sin, int ms)
{
    int            fd, err, flags;
    socklen_t      len;
    struct pollfd  pfd;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd == -1) {
        return -1;
    }

    flags = fcntl(fd, F_GETFL);
    (void) fcntl(fd, F_SETFL, flags | O_NONBLOCK);

    if (connect(fd, (struct sockaddr *) sin, sizeof(*sin)) == -1) {
        if (errno != EINPROGRESS) {
            err = errno;
            (void) close(fd);
            errno = err;
            return -1;
        }

        pfd.fd = fd;
        pfd.events = POLLOUT;

        if (poll(&pfd, 1, ms) != 1) {
            (void) close(fd);
            errno = ETIMEDOUT;
            return -1;
        }

        err = 0;
        len = sizeof(err);

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err) {
            (void) close(fd);
            errno = err ? err : EIO;
            return -1;
        }
    }

    (void) fcntl(fd, F_SETFL, flags);

    return fd;
}


/*
 * llm: one call of a model through the provider's API, the way the
 * runtime makes it: ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY from the
 * environment, POST ${ANTHROPIC_BASE_URL}/messages with the key in
 * x-api-key.  The base replaces the SDK's whole default,
 * https://api.anthropic.com/v1, so a gateway's base must end in /v1; a
 * trailing "/" is dropped, as the SDK drops it.  The
 * answer comes out as {"type":"llmCall","status":N,"body":"..."}.  With
 * the word "hold" in the query the run then waits (up to a minute) before
 * it completes, so that tests can look at it while it runs.
 */

static int
demo_scenario_llm(void)
{
    int                  fd, n, hold;
    char                 chunk[4096];
    size_t               hlen, plen;
    ssize_t              k;
    demo_buf_t           req, body, resp, b;
    const char          *base, *key, *p, *prefix, *status_line, *text;
    struct pollfd        pfd;
    struct sockaddr_in   sin;

    memset(&req, 0, sizeof(req));
    memset(&body, 0, sizeof(body));
    memset(&resp, 0, sizeof(resp));
    memset(&b, 0, sizeof(b));

    hold = strstr(demo.query, "hold") != NULL;

    demo_begin(NULL);
    demo_start_generation();

    base = getenv("ANTHROPIC_BASE_URL");
    key = getenv("ANTHROPIC_API_KEY");

    demo_event(&b, "llmCall", 1);

    if (base == NULL || key == NULL || strncmp(base, "http://", 7) != 0) {
        demo_buf_str(&b, ",\"status\":0,\"error\":\"ANTHROPIC_BASE_URL "
                     "(http://address:port) and ANTHROPIC_API_KEY are "
                     "needed\"");
        goto done;
    }

    p = base + 7;
    prefix = strchr(p, '/');
    hlen = prefix ? (size_t) (prefix - p) : strlen(p);

    if (prefix == NULL) {
        prefix = "";
    }

    plen = strlen(prefix);

    if (plen && prefix[plen - 1] == '/') {
        plen--;
    }

    if (demo_parse_target(p, hlen, &sin) != 0) {
        demo_buf_str(&b, ",\"status\":0,\"error\":\"the base URL needs an "
                     "IPv4 address and a port\"");
        goto done;
    }

    demo_buf_str(&body, "{\"model\":\"demo\",\"max_tokens\":64,"
                 "\"messages\":[{\"role\":\"user\",\"content\":");
    demo_buf_json(&body, demo.query);
    demo_buf_str(&body, "}]}");

    demo_buf_fmt(&req, "POST %.*s/messages HTTP/1.0\r\n"
                 "Host: %.*s\r\n"
                 "x-api-key: %s\r\n"
                 "anthropic-version: 2023-06-01\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 (int) plen, prefix, (int) hlen, p, key,
                 body.len);
    demo_buf_add(&req, body.data, body.len);

    fd = demo_connect(&sin, DEMO_CONNECT_TIMEOUT);

    if (fd == -1) {
        demo_buf_fmt(&b, ",\"status\":0,\"error\":\"%s\"",
                     demo_errno_name(errno));
        goto done;
    }

    if (demo_write_all(fd, req.data, req.len) != 0) {
        demo_buf_fmt(&b, ",\"status\":0,\"error\":\"%s\"",
                     demo_errno_name(errno));
        (void) close(fd);
        goto done;
    }

    for ( ;; ) {
        pfd.fd = fd;
        pfd.events = POLLIN;

        if (poll(&pfd, 1, DEMO_HTTP_TIMEOUT) != 1) {
            break;
        }

        k = read(fd, chunk, sizeof(chunk));

        if (k <= 0) {
            break;
        }

        if (resp.len < 1024 * 1024) {
            demo_buf_add(&resp, chunk, (size_t) k);
        }
    }

    (void) close(fd);

    status_line = demo_buf_cstr(&resp);
    n = 0;

    if (strncmp(status_line, "HTTP/1.", 7) == 0 && resp.len > 12) {
        n = atoi(status_line + 9);
    }

    text = strstr(status_line, "\r\n\r\n");
    text = text ? text + 4 : "";

    demo_buf_fmt(&b, ",\"status\":%d,\"body\":", n);
    demo_buf_json(&b, text);

done:

    demo_emit(&b);

    if (hold) {
        for (n = 0; n < 600; n++) {
            (void) poll(NULL, 0, 100);
        }
    }

    demo_complete("The model was asked through the gateway.");

    free(req.data);
    free(body.data);
    free(resp.data);
    free(b.data);

    return 0;
}


/*
 * net: which of the "address:port" targets in the query a TCP connection
 * reaches, in one {"type":"net","results":[...]} event.
 */

static int
demo_scenario_net(void)
{
    int                  i, n, fd, first;
    char                *targets[DEMO_PROBE_MAX_PATHS];
    demo_buf_t           b;
    struct sockaddr_in   sin;

    memset(&b, 0, sizeof(b));

    n = demo_query_paths(targets, DEMO_PROBE_MAX_PATHS);

    demo_begin(NULL);

    demo_event(&b, "net", 1);
    demo_buf_str(&b, ",\"results\":[");

    first = 1;

    for (i = 0; i < n; i++) {
        demo_buf_str(&b, first ? "{\"target\":" : ",{\"target\":");
        first = 0;
        demo_buf_json(&b, targets[i]);

        if (demo_parse_target(targets[i], strlen(targets[i]), &sin) != 0) {
            demo_buf_str(&b, ",\"connected\":false,\"error\":\"EINVAL\"}");
            continue;
        }

        fd = demo_connect(&sin, DEMO_CONNECT_TIMEOUT);

        if (fd == -1) {
            demo_buf_fmt(&b, ",\"connected\":false,\"error\":\"%s\"}",
                         demo_errno_name(errno));
            continue;
        }

        (void) close(fd);
        demo_buf_str(&b, ",\"connected\":true}");
    }

    demo_buf_str(&b, "]");
    demo_emit(&b);

    demo_complete("The network was probed.");

    for (i = 0; i < n; i++) {
        free(targets[i]);
    }

    free(b.data);

    return 0;
}


/*
 * deep: a stopRunByInteractiveTool event whose pendingToolCalls nest N
 * arrays deep (the query, default 400000: a line of about 800 KB), then
 * exit 0.  A reader that recurses once a level runs out of stack on it.
 * With a query "cN", the arrays are between two comments that each hold
 * a double quote: the depth hides from a scan that knows strings but not
 * comments.
 */

static int
demo_scenario_deep(void)
{
    int          comments;
    long         i, n;
    char        *end;
    const char  *q;
    demo_buf_t   b;

    memset(&b, 0, sizeof(b));

    q = demo.query;
    comments = (q[0] == 'c');

    if (comments) {
        q++;
    }

    errno = 0;
    n = strtol(q, &end, 10);

    if (errno || end == q || n < 1 || n > 10000000) {
        n = 400000;
    }

    demo_begin(NULL);

    demo_event(&b, "stopRunByInteractiveTool", 1);
    demo_buf_str(&b, ",\"checkpoint\":{\"status\":\"stoppedByInteractiveTool\","
                 "\"pendingToolCalls\":");

    if (comments) {
        demo_buf_str(&b, "/*\"*/");
    }

    demo_buf_reserve(&b, (size_t) (2 * n));

    for (i = 0; i < n; i++) {
        b.data[b.len++] = '[';
    }

    for (i = 0; i < n; i++) {
        b.data[b.len++] = ']';
    }

    b.data[b.len] = '\0';

    if (comments) {
        demo_buf_str(&b, "/*\"*/");
    }

    demo_buf_str(&b, "}");
    demo_emit(&b);

    free(b.data);

    return 0;
}
