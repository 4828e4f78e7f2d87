/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * perstack-demo, the runtime's events: the common fields, the fragments (usage,
 * messages, checkpoints, tool calls), and the parts of a run the scenarios
 * are made of (the start, generations, the streamed answer, tool results,
 * steps, the run's end).
 */


#include "demo.h"


static void demo_buf_checkpoint(demo_buf_t *b, const char *id,
    const char *status, const char *pending);
static void demo_close(demo_buf_t *b);
static void demo_connect_skill(void);
static void demo_sdk_warning(void);
static void demo_attempt_completion(void);
static void demo_buf_replace(demo_buf_t *b, const char *mark,
    const char *text, size_t len);
static void demo_long_fill(demo_buf_t *b, demo_buf_t *cp);


/* the fragments of events */

void
demo_buf_usage(demo_buf_t *b, long in, long out)
{
    demo_buf_fmt(b, "{\"inputTokens\":%ld,\"outputTokens\":%ld,"
                 "\"reasoningTokens\":0,\"totalTokens\":%ld,"
                 "\"cachedInputTokens\":0}", in, out, in + out);
}


void
demo_add_usage(long in, long out)
{
    demo.input_tokens += in;
    demo.output_tokens += out;
}


void
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

void
demo_keep_message(demo_buf_t *msg)
{
    if (demo.messages.len) {
        demo_buf_add(&demo.messages, ",", 1);
    }

    demo_buf_add(&demo.messages, msg->data, msg->len);
}


/* a tool call object; args is its arguments' JSON object */

void
demo_buf_tool_call(demo_buf_t *b, const char *id, const char *skill,
    const char *tool, const char *args)
{
    demo_buf_str(b, "{\"id\":");
    demo_buf_json(b, id);
    demo_buf_str(b, ",\"skillName\":");
    demo_buf_json(b, skill);
    demo_buf_str(b, ",\"toolName\":");
    demo_buf_json(b, tool);
    demo_buf_str(b, ",\"args\":");
    demo_buf_str(b, args);
    demo_buf_str(b, "}");
}


/* the model's message that calls tool tc_id (a toolCallPart) */

void
demo_buf_call_message(demo_buf_t *msg, const char *tc_id, const char *tool,
    const char *args)
{
    char  id[DEMO_ID_LEN + 1], part[DEMO_ID_LEN + 1];

    demo_make_id(id);
    demo_make_id(part);

    demo_buf_fmt(msg, "{\"id\":\"%s\",\"type\":\"expertMessage\","
                 "\"contents\":[{\"id\":\"%s\",\"type\":\"toolCallPart\","
                 "\"toolCallId\":\"%s\",\"toolName\":\"%s\",\"args\":",
                 id, part, tc_id, tool);
    demo_buf_str(msg, args);
    demo_buf_str(msg, "}]}");
}


/* callTools: the model's message msg, and its one tool call */

void
demo_call_tools(demo_buf_t *msg, demo_buf_t *call)
{
    demo_buf_t  b;

    memset(&b, 0, sizeof(b));

    demo_event(&b, "callTools", 1);
    demo_buf_str(&b, ",\"newMessage\":");
    demo_buf_add(&b, msg->data, msg->len);
    demo_buf_str(&b, ",\"toolCalls\":[");
    demo_buf_add(&b, call->data, call->len);
    demo_buf_str(&b, "],\"usage\":");
    demo_buf_usage(&b, demo.input_tokens, demo.output_tokens);
    demo_emit(&b);

    free(b.data);
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

void
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

void
demo_emit(demo_buf_t *b)
{
    demo_close(b);
    demo_out(b->data, b->len);
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


void
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

void
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

void
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


void
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

void
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
    char        tc_id[DEMO_ID_LEN + 1], part[DEMO_ID_LEN + 1];
    demo_buf_t  b, msg, call;

    memset(&b, 0, sizeof(b));
    memset(&msg, 0, sizeof(msg));
    memset(&call, 0, sizeof(call));

    demo_make_id(tc_id);
    demo_buf_call_message(&msg, tc_id, "attemptCompletion", "{}");
    demo_buf_tool_call(&call, tc_id, DEMO_BASE_SKILL, "attemptCompletion",
                       "{}");

    demo_add_usage(0, 12);
    demo_call_tools(&msg, &call);
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
    free(call.data);
}


/*
 * The answer: the model calls attemptCompletion, and a last generation
 * streams the text word by word (each delta is a word and a space).
 *
 * With demo.swapped, some lines are printed out of order, as the runtime's
 * concurrent writes sometimes print them: the first streamRunResult before
 * startStreamingRunResult, and the third delta before the second.
 */

void
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
    size_t      fill, base;
    demo_buf_t  text;

    memset(&text, 0, sizeof(text));

    /* the line once closed: b, its "}", and the text instead of the mark */

    base = b->len + 1 - (sizeof(DEMO_LONG_MARK) - 1);
    fill = demo.long_line > base ? demo.long_line - base : 0;

    demo_buf_repeat(&text, fill, DEMO_LONG_UNIT, 'x');

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

void
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


void
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


void
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

void
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

void
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


/*
 * A model call that fails as the real SDK's does: a retry, a second
 * generation, then the SDK's error object dumped on stderr.
 */

void
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
