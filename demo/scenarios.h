/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The scenarios: the expert's name picks one.  Each line is
 * DEMO_SCENARIO(name, handler, "what it does"): the expert "name" runs
 * int demo_scenario_<handler>(void), which returns the exit code (0: a run
 * that ended, so the base skill's disconnection is printed last).
 *
 * To add a scenario: write its function in the scenario-<group>.c file
 * of its kind (or a new one: the build compiles every .c file of demo/),
 * add its line here, describe it in demo/README.md, and give it its cases
 * in demo/check-scenarios.sh.  Names are C identifiers.
 *
 * This file has no include guard: demo.h reads it for the declarations,
 * main.c for the table.
 */


/* scenario-runs.c: runs as the runtime makes them, and how they end */
DEMO_SCENARIO(demo,        demo,        "the query streamed back, completed")
DEMO_SCENARIO(stdin,       demo,        "the same as demo, a name for tests")
DEMO_SCENARIO(swapped,     swapped,     "demo, with lines out of order")
DEMO_SCENARIO(stderr,      stderr,      "demo, with chatter on stderr")
DEMO_SCENARIO(nonl,        nonl,        "demo, no newline after its last line")
DEMO_SCENARIO(interactive, interactive, "stops at an askUser call")
DEMO_SCENARIO(error,       error,       "a model call fails: stopRunByError")
DEMO_SCENARIO(maxsteps,    maxsteps,    "stopRunByExceededMaxSteps")
DEMO_SCENARIO(noend,       noend,       "exits 0 with no event that ends it")
DEMO_SCENARIO(delegate,    delegate,    "a delegate's run, maybe returning")

/* scenario-long.c: lines of N bytes (the query) */
DEMO_SCENARIO(long,        long,        "checkpoints grow to N, then askUser")
DEMO_SCENARIO(huge,        huge,        "one streamRunResult line of N bytes")
DEMO_SCENARIO(longend,     longend,     "a completeRun line of N bytes")
DEMO_SCENARIO(longerror,   longerror,   "error, its stopRunByError N bytes")
DEMO_SCENARIO(longstderr,  longstderr,  "one stderr line of N bytes")
DEMO_SCENARIO(longtext,    longtext,    "one stdout line of N bytes, no JSON")
DEMO_SCENARIO(longbad,     longbad,     "a line of N bytes, no JSON at its end")
DEMO_SCENARIO(longforge,   longforge,   "a line of N bytes, a forged end event")

/* scenario-hostile.c: output and processes a module must survive */
DEMO_SCENARIO(garbage,     garbage,     "lines that are not events")
DEMO_SCENARIO(echo,        echo,        "the query as one line of stdout")
DEMO_SCENARIO(deep,        deep,        "arrays nested N deep in one event")
DEMO_SCENARIO(exit,        exit,        "exits with the query as its code")
DEMO_SCENARIO(crash,       crash,       "dies from SIGABRT")
DEMO_SCENARIO(stubborn,    stubborn,    "ignores SIGTERM, streams forever")

/* scenario-resources.c: pace, volume and the sandbox's limits */
DEMO_SCENARIO(slow,        slow,        "one streamReasoning a second, N s")
DEMO_SCENARIO(quiet,       quiet,       "N:S, N events after S s of silence")
DEMO_SCENARIO(flood,       flood,       "N streamRunResult events, full speed")
DEMO_SCENARIO(memhog,      memhog,      "memory until the OOM killer or N MiB")
DEMO_SCENARIO(forkbomb,    forkbomb,    "forks until fork fails (or N times)")

/* scenario-probe.c: the sandbox, seen from inside */
DEMO_SCENARIO(probe,       probe,       "one event of facts about the sandbox")

/* scenario-gateway.c: the network and the LLM gateway */
DEMO_SCENARIO(llm,         llm,         "one model call to ANTHROPIC_BASE_URL")
DEMO_SCENARIO(net,         net,         "TCP connections to the query's list")
