/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * perstack-demo: what its files share.  The system headers (all of them
 * here, as nginx keeps them in one place), the limits, the growing buffer,
 * the one state of the program ("demo": the command line and the run), and
 * the functions each file gives the others.  The scenarios are declared by
 * scenarios.h.
 */


#ifndef DEMO_H
#define DEMO_H


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

/*
 * longend and longerror: one message of the conversation has the text
 * DEMO_LONG_MARK, which the line of the run's end replaces, in the event
 * and in its checkpoint, by DEMO_LONG_UNIT repeated and "x" padding, so that
 * the line is demo.long_line bytes long without its newline (or as short
 * as it can be).  The text is plain JSON string content: nothing in it
 * needs escaping.
 */

#define DEMO_LONG_MARK        "@@demo-long-text@@"
#define DEMO_LONG_UNIT        "All work and no play, caf\xc3\xa9 \xe3\x81\x82. "

/* probe's paths and net's targets: at most this many from the query */
#define DEMO_PROBE_MAX_PATHS  32



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


extern demo_t  demo;


/* util.c */

int demo_write_all(int fd, const char *p, size_t n);
void demo_err(const char *fmt, ...);
void demo_out(const char *p, size_t n);
void demo_oom(void);
void demo_buf_reserve(demo_buf_t *b, size_t n);
void demo_buf_add(demo_buf_t *b, const char *p, size_t n);
void demo_buf_str(demo_buf_t *b, const char *s);
void demo_buf_fmt(demo_buf_t *b, const char *fmt, ...);
void demo_buf_reset(demo_buf_t *b);
const char *demo_buf_cstr(demo_buf_t *b);
void demo_buf_json_n(demo_buf_t *b, const char *s, size_t len);
void demo_buf_json(demo_buf_t *b, const char *s);
void demo_buf_repeat(demo_buf_t *b, size_t n, const char *unit, char pad);
int demo_read_file(const char *path, demo_buf_t *b);
long long demo_now_ms(void);
void demo_sleep_ms(long ms);
void demo_make_id(char *out);
int demo_valid_id(const char *s);
int demo_parse_long(const char *s, long *out);
long demo_query_number(long dflt);
const char *demo_errno_name(int err);

/* events.c */

void demo_buf_usage(demo_buf_t *b, long in, long out);
void demo_add_usage(long in, long out);
void demo_buf_text_message(demo_buf_t *b, const char *type, const char *text);
void demo_keep_message(demo_buf_t *msg);
void demo_buf_tool_call(demo_buf_t *b, const char *id, const char *skill,
    const char *tool, const char *args);
void demo_buf_call_message(demo_buf_t *msg, const char *tc_id,
    const char *tool, const char *args);
void demo_call_tools(demo_buf_t *msg, demo_buf_t *call);
void demo_event(demo_buf_t *b, const char *type, int run_event);
void demo_emit(demo_buf_t *b);
void demo_disconnect_skill(void);
void demo_begin_runtime(void);
void demo_begin(demo_buf_t *input);
void demo_start_generation(void);
void demo_simple(const char *type, const char *member, const char *value);
void demo_stream_words(const char *text);
void demo_finish(const char *type, const char *status, const char *pending,
    const char *extra);
void demo_complete(const char *text);
void demo_stop_by_error(const char *name, const char *message,
    int status_code, int retryable);
void demo_finish_tool_call(demo_buf_t *msg, const char *tc_id,
    const char *tool, const char *text);
void demo_next_step(const char *members);
void demo_call_fails(void);

/* jobs.c */

void demo_save_event(demo_buf_t *b);
const char *demo_checkpoint_id(void);
void demo_save_checkpoint(const char *id, demo_buf_t *cp);
int demo_continue(void);

/* json.c */

int demo_json_strings(const char *text, size_t len, const char **keys,
    demo_buf_t *values);
void demo_json_array_items(demo_buf_t *array, demo_buf_t *out);
void demo_json_first_item(demo_buf_t *items, demo_buf_t *out);

/* config.c */

int demo_load_config(void);
void demo_load_env(void);

/* scenario-runs.c */

int demo_scenario_interactive_step(void);

/* scenario-probe.c */

int demo_query_paths(char **paths, int max);


/* the scenarios, int demo_scenario_<name>(void): see scenarios.h */

#define DEMO_SCENARIO(name, handler, text)  int demo_scenario_##handler(void);
#include "scenarios.h"
#undef DEMO_SCENARIO


#endif /* DEMO_H */
