/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * perstack-demo, scenarios: runs as the runtime makes them, and the ways they
 * end (completed, interactive stop, error, max steps, delegation, none).
 */


#include "demo.h"


static void demo_buf_question(demo_buf_t *b, const char *question);
static void demo_run_after_delegation(demo_buf_t *b, const char *text);


int
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

int
demo_scenario_swapped(void)
{
    demo.swapped = 1;

    return demo_scenario_demo();
}


int
demo_scenario_interactive(void)
{
    demo_begin(NULL);

    return demo_scenario_interactive_step();
}


/* a generation that calls askUser, and the run stops there */

int
demo_scenario_interactive_step(void)
{
    char        tc_id[DEMO_ID_LEN + 1];
    demo_buf_t  b, question, args, call, msg;

    memset(&b, 0, sizeof(b));
    memset(&question, 0, sizeof(question));
    memset(&args, 0, sizeof(args));
    memset(&call, 0, sizeof(call));
    memset(&msg, 0, sizeof(msg));

    demo_start_generation();

    demo_buf_str(&question, "Before I go ahead with \"");
    demo_buf_str(&question, demo.query);
    demo_buf_str(&question, "\": do you confirm?");
    demo_buf_question(&args, question.data);

    demo_make_id(tc_id);
    demo_buf_tool_call(&call, tc_id, "user-input", "askUser", args.data);
    demo_buf_call_message(&msg, tc_id, "askUser", args.data);

    demo_add_usage(180 + (long) strlen(demo.query) / 4, 24);
    demo_call_tools(&msg, &call);

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
    free(args.data);
    free(call.data);
    free(msg.data);

    return 0;
}


/* the arguments of askUser and of a delegate: {"question":...} */

static void
demo_buf_question(demo_buf_t *b, const char *question)
{
    demo_buf_str(b, "{\"question\":");
    demo_buf_json(b, question);
    demo_buf_str(b, "}");
}


int
demo_scenario_error(void)
{
    demo_call_fails();

    demo_stop_by_error("APICallError", "demo: the provider answered "
                       "500 Internal Server Error", 500, 0);

    return 0;
}


/* steps until the limit: stopRunByExceededMaxSteps, and exit 0 */

int
demo_scenario_maxsteps(void)
{
    demo_begin(NULL);
    demo_start_generation();

    demo_finish("stopRunByExceededMaxSteps", "stoppedByExceededMaxSteps",
                NULL, NULL);

    return 0;
}


/* a run that goes, then an exit 0 with no event that ends it */

int
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

int
demo_scenario_delegate(void)
{
    char         tc_id[DEMO_ID_LEN + 1];
    demo_buf_t   b, args, call;
    const char  *coordinator;

    memset(&b, 0, sizeof(b));
    memset(&args, 0, sizeof(args));
    memset(&call, 0, sizeof(call));

    demo_begin(NULL);

    demo_make_id(tc_id);
    demo_buf_question(&args, demo.query);
    demo_buf_tool_call(&call, tc_id, "demo-helper", "demo-helper",
                       args.data);

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

    demo_run_after_delegation(&b, "The delegate is done.");

    demo.expert = coordinator;
    demo_make_id(demo.run_id);

    if (strcmp(demo.query, "return") == 0) {
        demo_run_after_delegation(&b,
                                  "The delegate returned to the coordinator.");
    }

    free(b.data);
    free(args.data);
    free(call.data);

    return 0;
}


/* a run of the delegation, the delegate's or the coordinator's again */

static void
demo_run_after_delegation(demo_buf_t *b, const char *text)
{
    demo_event(b, "startRun", 1);
    demo_buf_str(b, ",\"initialCheckpoint\":{},\"inputMessages\":[]");
    demo_emit(b);
    demo_complete(text);
}


int
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


int
demo_scenario_nonl(void)
{
    demo_begin(NULL);
    demo_start_generation();
    demo_stream_words(demo.query);

    demo.no_final_newline = 1;
    demo_complete("This last line has no final newline.");

    return 0;
}
