
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#ifndef _NGX_HTTP_PERSTACK_COMMON_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_COMMON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#define PCRE2_CODE_UNIT_WIDTH  8
#include <pcre2.h>

#include "ngx_http_perstack_stream.h"
#include "ngx_http_perstack_scan.h"


#define NGX_HTTP_PERSTACK_FORMAT_AUTO    0
#define NGX_HTTP_PERSTACK_FORMAT_SSE     1
#define NGX_HTTP_PERSTACK_FORMAT_NDJSON  2

/* an execution's id: 128 bits from the kernel, in hex */
#define NGX_HTTP_PERSTACK_ID_LEN         32
#define NGX_HTTP_PERSTACK_JOB_ID_LEN     24
#define NGX_HTTP_PERSTACK_JOB_ID_MAX     64
/* a job's record keeps pending tool calls up to this size */
#define NGX_HTTP_PERSTACK_RECORD_PENDING_MAX  (512 * 1024)
/* how long an execution may outlive its time limit before a worker that
 * shuts down gracefully stops waiting for it */
#define NGX_HTTP_PERSTACK_HOLD_EXTRA     120000
/* stderr lines joined into one perstack.stderr event, as escaped JSON */
#define NGX_HTTP_PERSTACK_STDERR_GROUP_MAX  (64 * 1024)
/* the most of a long line's first part sent at once */
#define NGX_HTTP_PERSTACK_SLICE             (16 * 1024)
/* a batch of events is sent once it holds this many bytes, or events */
#define NGX_HTTP_PERSTACK_BATCH             (16 * 1024)
#define NGX_HTTP_PERSTACK_MARKS             32

/* how a line longer than perstack_max_line goes */
#define NGX_HTTP_PERSTACK_PART_NONE  0
#define NGX_HTTP_PERSTACK_PART_RAW   1
#define NGX_HTTP_PERSTACK_PART_TEXT  2
#define NGX_HTTP_PERSTACK_PART_SKIP  3
/* the most of a stopRunByError's error name and message kept */
#define NGX_HTTP_PERSTACK_ERROR_NAME_MAX     256
#define NGX_HTTP_PERSTACK_ERROR_MESSAGE_MAX  4096
/* how often an execution looks for a cancel and for its readers */
#define NGX_HTTP_PERSTACK_WATCH          1000
/* how long a container may run on once its output ended */
#define NGX_HTTP_PERSTACK_EXIT_GRACE     10000


typedef struct ngx_http_perstack_exec_s  ngx_http_perstack_exec_t;
typedef struct ngx_http_perstack_slot_s  ngx_http_perstack_slot_t;
typedef struct ngx_http_perstack_waiter_s  ngx_http_perstack_waiter_t;
typedef struct ngx_http_perstack_gateway_s  ngx_http_perstack_gateway_t;

/* defined by ngx_http_perstack_docker.h and ngx_http_perstack_curl.h */
struct ngx_http_perstack_docker_s;
struct ngx_http_perstack_op_s;
/* defined by ngx_http_perstack_record.h */
struct ngx_http_perstack_record_s;
/* defined by ngx_http_perstack_engines.h */
typedef struct ngx_http_perstack_engines_s  ngx_http_perstack_engines_t;
typedef struct ngx_http_perstack_engine_s  ngx_http_perstack_engine_t;


typedef struct {
    /* ngx_http_perstack_docker_t * */
    ngx_array_t                      dockers;
    /* ngx_http_perstack_engines_t *: perstack_engines */
    ngx_array_t                      engine_groups;
    /* ngx_http_perstack_gateway_t * */
    ngx_array_t                      gateways;
    /* ngx_http_perstack_record_dir_t: every record path, for the sweep */
    ngx_array_t                      record_dirs;
    /* the counters' zone (ngx_http_perstack_metrics.c), or NULL */
    ngx_shm_zone_t                  *metrics;
    ngx_flag_t                       used;
} ngx_http_perstack_main_conf_t;


/* A gateway zone: its network and its shared credentials. */
struct ngx_http_perstack_gateway_s {
    ngx_str_t                        name;
    ngx_str_t                        network;
    ngx_str_t                        subnet;     /* "a.b.c.d/n", normalised */
    ngx_str_t                        address;    /* the host's: "a.b.c.d" */
    in_addr_t                        in_addr;    /* the same, for listen */
    ngx_str_t                        bridge;     /* the host's interface */
    ngx_flag_t                       firewall;
    struct ngx_http_perstack_docker_s  *docker;

    struct ngx_http_perstack_gateway_sh_s  *sh;
    ngx_slab_pool_t                 *shpool;
};


/* perstack_gateway_credentials and perstack_gateway */
typedef struct {
    ngx_http_perstack_gateway_t     *zone;
    /* tag=, or credential= */
    ngx_http_complex_value_t        *value;
} ngx_http_perstack_gateway_conf_t;


/* Which execution called the gateway, for its variables. */
typedef struct {
    ngx_str_t                        execution;
    ngx_str_t                        expert;
    ngx_str_t                        job;
    ngx_str_t                        tag;
} ngx_http_perstack_caller_t;


typedef struct {
    ngx_str_t                        key;
    ngx_str_t                        value;
} ngx_http_perstack_kv_t;


typedef struct {
    ngx_str_t                        name;
    ngx_http_complex_value_t         value;
} ngx_http_perstack_env_t;


typedef struct {
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_complex_value_t        *key;
    ngx_uint_t                       max;
    ngx_uint_t                       per_key;
    ngx_uint_t                       queue;
    ngx_msec_t                       queue_timeout;
} ngx_http_perstack_limit_t;


typedef struct {
    ngx_flag_t                       execute;

    /* one engine, or a group of them */
    struct ngx_http_perstack_docker_s  *docker;
    ngx_http_perstack_engines_t     *engines;

    ngx_http_complex_value_t        *image;
    ngx_http_complex_value_t        *expert;
    ngx_http_complex_value_t        *query;

    pcre2_code                      *expert_allow;

    /* ngx_http_complex_value_t: all must be non-empty and not "0" */
    ngx_array_t                     *approve;

    /* ngx_str_t: "scheme://host[:port]", lowercase, no default port */
    ngx_array_t                     *allow_origin;

    ngx_str_t                        approval_uri;
    /* ngx_http_perstack_approval_set_t */
    ngx_array_t                     *approval_set;

    ngx_http_perstack_limit_t       *limit;

    /* the executions get credentials; the location checks them */
    ngx_http_perstack_gateway_conf_t  *gateway_issue;
    ngx_http_perstack_gateway_conf_t  *gateway_check;

    ngx_http_complex_value_t        *workspace;
    ngx_str_t                        workspace_root;
    /* the workspace is named by what the approval callback said */
    ngx_flag_t                       workspace_after_approval;
#if (NGX_THREADS)
    ngx_thread_pool_t               *thread_pool;
#endif

    /* the executions' records (ngx_http_perstack_record.c) */
    ngx_path_t                      *record_path;
    ngx_msec_t                       record_keep;
    off_t                            record_max_size;
    ngx_msec_t                       detach_timeout;
    ngx_http_complex_value_t        *owner;

    ngx_msec_t                       timeout;
    ngx_msec_t                       idle_timeout;
    ngx_msec_t                       stop_timeout;
    ngx_msec_t                       ping_interval;
    /* an Engine API call that is not a stream */
    ngx_msec_t                       docker_timeout;

    ngx_uint_t                       format;

    size_t                           buffer_size;
    size_t                           max_line;
    size_t                           max_query;
    size_t                           max_output;
    ngx_int_t                        max_events;

    /* the sandbox (ngx_http_perstack_policy.c) */
    ngx_str_t                        user;
    ngx_uint_t                       uid;
    ngx_uint_t                       gid;
    ngx_str_t                        network;
    ngx_flag_t                       read_only;
    ngx_flag_t                       no_new_privileges;
    ngx_flag_t                       init;
    ngx_str_t                        runtime;
    /* the experts' perstack.toml, in the image or a read-only bind */
    ngx_str_t                        config;
    ngx_str_t                        workspace_size;
    off_t                            memory;
    off_t                            swap;
    ngx_uint_t                       nano_cpus;
    ngx_int_t                        pids_limit;
    ngx_array_t                     *cap_add;   /* ngx_str_t */
    ngx_array_t                     *tmpfs;     /* ngx_http_perstack_kv_t */
    ngx_array_t                     *binds;     /* ngx_http_perstack_kv_t */
    ngx_array_t                     *labels;    /* ngx_http_perstack_kv_t */
    ngx_array_t                     *env;       /* ngx_http_perstack_env_t */
} ngx_http_perstack_loc_conf_t;


typedef struct {
    ngx_int_t                        index;
    ngx_str_t                        name;
    ngx_http_complex_value_t         value;
} ngx_http_perstack_approval_set_t;


/* What the access log's variables tell of a request's execution. */
typedef struct {
    ngx_str_t                        execution;
    ngx_str_t                        container;
    /* the engine, as configured */
    ngx_str_t                        engine;
    /* the outcome's name, "detached", or the refusal's error code */
    const char                      *outcome;
    ngx_int_t                        exit_code;   /* -1: unknown */
    uint64_t                         events;
    ngx_msec_int_t                   duration;
    ngx_msec_int_t                   ttfe;        /* -1: no line yet */
    unsigned                         ran:1;
} ngx_http_perstack_log_t;


/* What a request asks for, from its arrival until its execution starts. */
typedef struct ngx_http_perstack_ctx_s {
    ngx_str_t                        image;
    ngx_str_t                        expert;
    ngx_str_t                        query;
    ngx_str_t                        job;
    /* the directory bind-mounted at /workspace; empty: a tmpfs */
    ngx_str_t                        workspace;
    /* its parent below perstack_workspace_root, which is the module's */
    ngx_str_t                        workspace_name;

    /* the pending tool call a continuation answers, for the approval */
    ngx_str_t                        pending_tool;
    /* the engine that ran the continued job, by its record */
    ngx_str_t                        engine;

    ngx_http_perstack_exec_t        *exec;
    void                            *workspace_task;

    /* admission: the slot taken, or the place in the queue */
    ngx_http_perstack_slot_t        *slot;
    ngx_http_perstack_waiter_t      *waiter;
    void                            *zone;
    /* queue_timeout, or posted when the slot was handed over */
    ngx_event_t                      wait_ev;

    ngx_uint_t                       approval_status;
    ngx_table_elt_t                 *approval_challenge;

    /* the execution's gateway credential, for $perstack_gateway_credential */
    ngx_str_t                        credential;
    /* a gateway request: who called */
    ngx_http_perstack_caller_t      *caller;

    /*
     * A request about an execution that exists: to follow it from the
     * event after "after", its status, or its cancel.
     */
    ngx_str_t                        execution;
    uint64_t                         after;
    ngx_uint_t                       verb;
    /* for the access log (ngx_http_perstack_vars.c) */
    ngx_http_perstack_log_t          log;

    /* following it: ngx_http_perstack_attach.c's */
    void                            *follow;
    /* it named the execution with Last-Event-ID: SSE */
    unsigned                         last_event_id:1;

    /* the query answers the job's pending interactive tool call */
    unsigned                         answer:1;
    unsigned                         continuing:1;
    unsigned                         approval_done:1;
    unsigned                         workspace_done:1;
    /* the job's record was looked at for the approval */
    unsigned                         workspace_peeked:1;
    unsigned                         limit_cleanup:1;

    /*
     * The chain of steps, set by the handler: a step that waited (the
     * approval callback, the workspace's thread, the admission queue)
     * calls it to move on, rather than calling the handler by name.
     */
    void                           (*resume)(ngx_http_request_t *r,
                                             struct ngx_http_perstack_ctx_s
                                             *ctx);
} ngx_http_perstack_ctx_t;


typedef enum {
    NGX_HTTP_PERSTACK_NEW = 0,
    NGX_HTTP_PERSTACK_PING,
    NGX_HTTP_PERSTACK_CREATE,
    NGX_HTTP_PERSTACK_ATTACH,
    NGX_HTTP_PERSTACK_START,
    NGX_HTTP_PERSTACK_RUNNING,
    NGX_HTTP_PERSTACK_WAIT,
    NGX_HTTP_PERSTACK_REMOVE,
    NGX_HTTP_PERSTACK_DONE
} ngx_http_perstack_state_e;


typedef enum {
    NGX_HTTP_PERSTACK_OUTCOME_NONE = 0,
    NGX_HTTP_PERSTACK_OUTCOME_COMPLETED,
    NGX_HTTP_PERSTACK_OUTCOME_FAILED,
    NGX_HTTP_PERSTACK_OUTCOME_TIMEOUT,
    NGX_HTTP_PERSTACK_OUTCOME_ERROR,
    NGX_HTTP_PERSTACK_OUTCOME_CLIENT_GONE,
    NGX_HTTP_PERSTACK_OUTCOME_PAUSED,
    NGX_HTTP_PERSTACK_OUTCOME_IDLE_TIMEOUT,
    NGX_HTTP_PERSTACK_OUTCOME_OUTPUT_LIMIT,
    NGX_HTTP_PERSTACK_OUTCOME_SHUTDOWN,
    NGX_HTTP_PERSTACK_OUTCOME_MAX_STEPS,
    NGX_HTTP_PERSTACK_OUTCOME_CANCELLED,
    NGX_HTTP_PERSTACK_OUTCOME_ABANDONED
} ngx_http_perstack_outcome_e;


#define NGX_HTTP_PERSTACK_VERB_NONE    0
#define NGX_HTTP_PERSTACK_VERB_FOLLOW  1
#define NGX_HTTP_PERSTACK_VERB_STATUS  2
#define NGX_HTTP_PERSTACK_VERB_CANCEL  3


/*
 * One execution.  It lives in a pool of its own because it outlives its
 * request when the client goes away: the container must still be removed.
 * The worker's list of executions owns it; ngx_http_perstack_exec_free()
 * releases it once no Engine API call is in flight.
 */
struct ngx_http_perstack_exec_s {
    /* as in ngx_connection_t, for debug logs of our events' ident */
    void                            *data;
    void                            *unused[2];
    ngx_int_t                        ident;

    ngx_pool_t                      *pool;
    ngx_log_t                       *log;
    ngx_queue_t                      queue;

    ngx_http_request_t              *request;
    ngx_http_perstack_loc_conf_t    *conf;
    struct ngx_http_perstack_docker_s  *docker;

    /* of a group: the engine, and those tried (bit i: the i-th) */
    ngx_http_perstack_engine_t      *engine;
    uint32_t                         engines_tried;
    /* the engine that ran the continued job */
    ngx_str_t                        affinity;

    u_char                           id[NGX_HTTP_PERSTACK_ID_LEN];
    ngx_str_t                        container;
    ngx_str_t                        image;
    ngx_str_t                        expert;
    ngx_str_t                        query;
    ngx_str_t                        job;
    ngx_str_t                        workspace;
    ngx_str_t                        workspace_name;

    /* the job's record, written once the container is gone */
    void                            *record_task;

    /* the stream's record, for clients that reconnect */
    struct ngx_http_perstack_record_s  *record;
    /* perstack_owner's value, hashed */
    ngx_str_t                        owner;
    uint64_t                         record_started;
    /*
     * The events that end in the batch not yet sent: the first one's
     * position (the others follow it), and where each ends in the batch.
     */
    uint64_t                         mark_first;
    /* NGX_HTTP_PERSTACK_MARKS of them, allocated with the batch's buffer */
    uint32_t                        *mark_end;
    ngx_uint_t                       marks;
    /* since when no client follows it, for perstack_detach_timeout */
    ngx_msec_t                       detached_at;

    /* perstack_env, evaluated: "NAME=value" ngx_str_t */
    ngx_array_t                     *env;

    /* checkpoint.pendingToolCalls of a run stopped for the user, as JSON */
    ngx_str_t                        pending;

    /*
     * How the run ended, by the last of the coordinator's events that end
     * a run (NONE: none yet), and for stopRunByError the error's members
     * {"name","message","statusCode"} as JSON, for the closing event.
     */
    ngx_http_perstack_outcome_e      run_outcome;
    ngx_str_t                        run_error;
    ngx_str_t                        run_message;

    /*
     * Consecutive stderr lines that arrived together, as the JSON of one
     * perstack.stderr event still open after its text: at most
     * NGX_HTTP_PERSTACK_STDERR_GROUP_MAX bytes, sent before any other
     * event and whenever the input runs dry.
     */
    u_char                          *stderr_group;
    size_t                           stderr_group_len;

    ngx_http_perstack_state_e        state;
    ngx_http_perstack_outcome_e      outcome;
    ngx_int_t                        exit_code;   /* -1: unknown */

    /* what went wrong: an HTTP error, or the closing event's message */
    ngx_str_t                        message;
    ngx_uint_t                       error_status;
    const char                      *error_code;

    ngx_uint_t                       ops;         /* calls in flight */

    /* the gateway credential, revoked when the container is removed */
    ngx_str_t                        credential;
    ngx_http_perstack_gateway_t     *gateway;
    void                            *gateway_credential;

    /* the admission slot, given back when the execution is freed */
    ngx_http_perstack_slot_t        *slot;
    struct ngx_http_perstack_op_s   *attach;

    ngx_uint_t                       format;
    uint64_t                         sequence;
    ngx_msec_t                       started;
    /* the request's start and the container's first line, wall clock ms */
    uint64_t                         request_start;
    uint64_t                         first_line;
    /* the events counted by perstack_metrics */
    uint64_t                         relayed;
    ngx_msec_t                       last_output;
    ngx_msec_t                       last_input;

    off_t                            output_bytes;
    ngx_uint_t                       lines;

    /* bytes from Docker not yet turned into events */
    u_char                          *in;
    size_t                           in_len;
    size_t                           in_size;

    ngx_http_perstack_demux_t        demux;

    /*
     * The encoded events on their way to the client: out_len bytes of a
     * batch not yet sent, while a pass over the input gathers them, or
     * the batch sent and not yet all written (see busy()).
     */
    u_char                          *out;
    size_t                           out_size;
    size_t                           out_len;
    ngx_buf_t                       *out_buf;
    ngx_chain_t                      out_chain;

    /* a module event's JSON before framing */
    u_char                          *scratch;
    size_t                           scratch_size;

    /*
     * Lines longer than perstack_max_line, passed on in parts: an event
     * of the runtime as it streams (one at a time, on stdout, while
     * raw_open), or text in perstack.stdout, perstack.stderr and
     * perstack.daemon events of a part each.  How each stream's current
     * line goes, the end of a UTF-8 character that the next text part
     * begins with, and the first part's bytes not yet sent.
     */
    ngx_uint_t                       part_mode[4];
    u_char                           carry[4][4];
    size_t                           carry_len[4];
    const u_char                    *held;
    size_t                           held_len;
    unsigned                         held_stream;
    unsigned                         held_first:1;
    unsigned                         held_last:1;
    unsigned                         held_raw:1;
    unsigned                         raw_open:1;
    off_t                            raw_passed;
    /* why the event streaming is cut short, for perstack.invalid */
    const char                      *cut_reason;
    u_char                           invalid[192];
    size_t                           invalid_len;
    /* bytes of other streams dropped while it streamed: over the group */
    size_t                           held_dropped;
    /* carry and a text part */
    u_char                          *text;
    size_t                           text_size;
    /* reads an event's line as it passes, and the events that end a run */
    ngx_http_perstack_scan_t        *scan;

    ngx_event_t                      process_ev;
    ngx_event_t                      start_ev;
    ngx_event_t                      timeout_ev;
    ngx_event_t                      ping_ev;
    ngx_event_t                      idle_ev;
    /* keeps a worker that shuts down gracefully until the end is sent */
    ngx_event_t                      hold_ev;
    /* a DELETE's cancel, and whether any client still follows */
    ngx_event_t                      watch_ev;
    /*
     * The execution is freed from an event of its own, never inside a
     * call chain that may still use it.
     */
    ngx_event_t                      free_ev;

    unsigned                         curl_paused:1;
    unsigned                         stream_done:1;
    unsigned                         headers_sent:1;
    unsigned                         aborted:1;
    unsigned                         removed:1;
    unsigned                         stopping:1;
    unsigned                         end_pending:1;
    /* events gather in the batch until the pass ends (see send()) */
    unsigned                         batching:1;
    unsigned                         error_image:1;
    unsigned                         answer:1;
    unsigned                         continuing:1;
    unsigned                         over_limit:1;
    unsigned                         recording:1;
    unsigned                         recorded:1;
    /* the client went, and the execution runs on for the record */
    unsigned                         detached:1;
    /* counted in its engine's running executions */
    unsigned                         engine_held:1;
};


/*
 * The module's identity: its files find their configuration and their
 * request's context with it, as the files of every nginx module do.
 */
extern ngx_module_t  ngx_http_perstack_module;


#endif /* _NGX_HTTP_PERSTACK_COMMON_H_INCLUDED_ */
