/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * perstack-demo, the job in the working directory, as the runtime keeps it
 * (checkpoints and one file per run event), and continuing a job from its
 * last checkpoint (--continue-job, --continue, -i, --resume-from).
 */


#include "demo.h"


static int demo_fs_ok(void);
static int demo_mkdir(const char *path);
static int demo_job_dir(const char *sub, const char *name);
static void demo_write_file(const char *path, const char *data, size_t len);
static int demo_latest_job(char *out);
static int demo_last_checkpoint(demo_buf_t *values);
static int demo_fail(const char *fmt, ...);


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

void
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

const char *
demo_checkpoint_id(void)
{
    if (demo.checkpoint_id[0] == '\0' || demo.checkpoint_step != demo.step) {
        demo_make_id(demo.checkpoint_id);
        demo.checkpoint_step = demo.step;
    }

    return demo.checkpoint_id;
}


void
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

int
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
