#!/usr/bin/env bash
# The module alone, at scale: one nginx worker against bench/fake-engine (a
# scripted Engine API on a unix socket that answers every call at once and
# streams runtime-like events), so that what is measured is the module's
# own cost.  The real engine stays in every test; this is only a bench.
#
# It builds bench/fake-engine/fake-engine.c and stream-client.c with cc
# into its temporary directory, then, with worker_processes 1:
#   1. Live streams: for each N (default "100 1000 10000"; --quick "200
#      500"), a fresh fake engine in --hold mode (each container sends 3
#      events and 2 deltas, then holds its stream open) and a fresh nginx.
#      A warm-up (10 streams, held, then released) puts what a worker
#      allocates once into the baseline.  The static file's p50/p99 idle
#      (wrk, 1 thread, 10 connections, on `location = /ok`), then N streams
#      by h2load over HTTP/2, as a browser's EventSources share one
#      connection (100 streams to a connection, 500 new streams a second);
#      once the worker relayed all their events so far (perstack_metrics'
#      perstack_events_total), the worker's RSS and descriptors, and the
#      static file's p50/p99 meanwhile; then SIGUSR1 to the engine ends
#      every stream with completeRun, and each must end 200 with outcome
#      "completed" in the access log (errors: those that did not).
#      kB/stream = (RSS held - RSS baseline) / N; CPU/stream = the
#      worker's CPU from the baseline to the last stream's end / N.
#   2. Executions per second: a fake engine with short executions (3
#      events and completeRun at once), --total executions (default 20000;
#      --quick 2000) by --concurrency clients (default 256; --quick 64):
#      executions per second of the one worker, and its CPU per execution.
# The figures are in $BENCH_OUT/scale.md.  Exit 1 when a stream got an
# error (the goal is 0), 2 (die) on a set-up error.
#
# The descriptors: each live stream holds one of the worker's, its attach
# connection, and a hundredth of a client's connection; its record is
# opened only to be written.  When the hard limit (ulimit -Hn) cannot hold
# N streams, N is cut to what it holds, and the table says so.
#
# Usage: bench/scale.sh [--quick] [--out DIR] [--streams LIST] [--total M]
#                       [--concurrency C] [--wrk-seconds S] [-h]
set -euo pipefail
# shellcheck disable=SC2034  # (common.sh reads it)
PERSTACK_ME=scale
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
. "$PERSTACK_ROOT/bench/lib.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

quick=0 streams_list="" total="" concurrency="" wrk_seconds=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --out) [ $# -ge 2 ] || die "--out needs a value"; BENCH_OUT="$2"; shift ;;
        --streams) [ $# -ge 2 ] || die "--streams needs a value"; streams_list="${2//,/ }"; shift ;;
        --total) [ $# -ge 2 ] || die "--total needs a value"; total="$2"; shift ;;
        --concurrency) [ $# -ge 2 ] || die "--concurrency needs a value"; concurrency="$2"; shift ;;
        --wrk-seconds) [ $# -ge 2 ] || die "--wrk-seconds needs a value"; wrk_seconds="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option: $1 (see --help)" ;;
    esac
    shift
done

if [ "$quick" -eq 1 ]; then
    : "${streams_list:=200 500}" "${total:=2000}" "${concurrency:=64}" "${wrk_seconds:=2}"
else
    : "${streams_list:=100 1000 10000}" "${total:=20000}" "${concurrency:=256}" "${wrk_seconds:=5}"
fi

command -v cc >/dev/null || die "no C compiler (cc)"
command -v wrk >/dev/null || die "no wrk (apt-get install wrk)"
command -v h2load >/dev/null || die "no h2load (apt-get install nghttp2-client)"

bench_init scale

# --- the engine and the client ----------------------------------------

F="$PERSTACK_ROOT/bench/fake-engine"
for prog in fake-engine stream-client; do
    run_logged "$BENCH_TMP/cc-$prog.log" cc -O2 -Wall -o "$BENCH_TMP/$prog" "$F/$prog.c" \
        || die "could not build $F/$prog.c"
done

# descriptors: as many as this process may have
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile="$(ulimit -n)"
export BENCH_NOFILE="$nofile" BENCH_CONNECTIONS="$nofile"

# a stream holds about one descriptor of the worker's, its attach
# connection (the clients' streams share a connection a hundred at a time,
# and the record holds none between writes): measured at each N for the
# next, with room for the rest
fd_per=1.2

FE_PID=""
fe_start() {  # fake-engine options...
    local sock="$BENCH_TMP/engine.sock" ready="$BENCH_TMP/engine.ready"
    rm -f "$ready"
    "$BENCH_TMP/fake-engine" --socket "$sock" --ready "$ready" "$@" \
        2>>"$BENCH_TMP/engine.log" &
    FE_PID=$!
    until [ -s "$ready" ]; do
        kill -0 "$FE_PID" 2>/dev/null || die "the fake engine did not start: $(tail -n 2 "$BENCH_TMP/engine.log")"
        sleep 0.05
    done
    FE_SOCK="$sock"
}
fe_stop() {
    if [ -n "$FE_PID" ]; then
        kill "$FE_PID" 2>/dev/null || true
        wait "$FE_PID" 2>/dev/null || true
        FE_PID=""
    fi
}
bench_on_exit fe_stop

run_location='location = /run { perstack_execute; }'

# p50 and p99 of /ok in ms, by wrk: "P50 P99"
static_latency() {
    wrk -t 1 -c 10 -d "${wrk_seconds}s" --latency "http://127.0.0.1:$BENCH_PORT/ok" \
        | awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                                if (v ~ /s$/) return v * 1000; return v }
               $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
               END { printf "%.3f %.3f\n", p50, p99 }'
}

fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

hz="$(getconf CLK_TCK)"
errors=0
rows=()
notes=()

# --- 1. live streams ---------------------------------------------------

held_events=6   # perstack.execution, initializeRuntime, startRun,
                # startStreamingRunResult and 2 streamRunResult

# the module's own count of the events it relayed, from perstack_metrics
events_total() {
    curl -sS --max-time 10 "http://127.0.0.1:$BENCH_PORT/metrics" \
        | awk '$1 == "perstack_events_total" { print $2; found = 1 } END { if (!found) print -1 }'
}

# h2load: N streams over HTTP/2, 100 to a connection, at most 500 new ones
# a second; its report in FILE.  Sets H2_PID.
h2_start() {  # N FILE
    local n="$1" c r
    c=$(( (n + 99) / 100 ))
    r=$(( c < 5 ? c : 5 ))
    h2load -n "$n" -c "$c" -m 100 --rate "$r" \
        "http://127.0.0.1:$BENCH_PORT/run?expert=fake&query=bench" >"$2" 2>&1 &
    H2_PID=$!
}

# until the worker relayed TARGET events (every stream holds), or S seconds
held_wait() {  # TARGET S
    local deadline=$(( $(date +%s) + $2 )) got
    while :; do
        got="$(events_total)"
        [ "$got" -ge "$1" ] && return 0
        kill -0 "$H2_PID" 2>/dev/null || { warn "h2load ended with $got of $1 events relayed"; return 1; }
        [ "$(date +%s)" -lt "$deadline" ] || { warn "$got of $1 events relayed after $2 s"; return 1; }
        sleep 0.2
    done
}

# H2_OK and H2_ERRORS: of the N requests h2load made, those that ended 200
# with a completed execution, by the access log, and those that did not
h2_result() {  # N FILE LOG
    local n="$1"
    wait "$H2_PID" || true
    H2_PID=""
    grep -q "^requests: $n total, $n started, $n done, $n succeeded" "$2" \
        || warn "h2load: $(grep '^requests:' "$2")"
    H2_OK="$(awk '$1 == 200 && $2 == "completed"' "$3" | wc -l)"
    H2_ERRORS=$(( n - H2_OK ))
}
h2_stop() { [ -z "${H2_PID:-}" ] || kill "$H2_PID" 2>/dev/null || true; }
bench_on_exit h2_stop

stream_locations="http2 on;
        $run_location
        location = /metrics { perstack_metrics; }"
stream_http="log_format outcome '\$status \$perstack_outcome \$perstack_events';"

for n in $streams_list; do
    want="$n"
    max_streams="$(awk -v f="$nofile" -v p="$fd_per" 'BEGIN { printf "%d", (f - 300) / p }')"
    if [ "$n" -gt "$max_streams" ]; then
        n="$max_streams"
        notes+=("- $want streams asked, $n run: the descriptor limit here is $nofile (ulimit -Hn, which this user cannot raise), and a stream holds $fd_per of the worker's.")
        warn "$want streams asked, $n run: the descriptor limit is $nofile"
    fi

    fe_start --hold --events 2 --interval-ms 10
    bench_nginx_start "$BENCH_TMP/nginx-$n" "${stream_locations/perstack_execute;/perstack_execute; access_log logs/run.log outcome;}" \
        "$stream_http" "$FE_SOCK"
    runlog="$BENCH_TMP/nginx-$n/logs/run.log"

    # the warm-up: 10 streams held, then released
    h2_start 10 "$BENCH_TMP/warm-$n.h2"
    held_wait $(( 10 * held_events )) 60 || die "warm-up failed: $(tail -n 5 "$BENCH_TMP/warm-$n.h2")"
    kill -USR1 "$FE_PID"
    h2_result 10 "$BENCH_TMP/warm-$n.h2" "$runlog"
    [ "$H2_ERRORS" -eq 0 ] || die "warm-up failed: $(tail -n 5 "$BENCH_TMP/warm-$n.h2")"
    : >"$runlog"

    read -r idle50 idle99 < <(static_latency)
    rss0="$(bench_rss_kb "$BENCH_WORKER")"
    cpu0="$(bench_cpu_ticks "$BENCH_WORKER")"
    fd0="$(fds "$BENCH_WORKER")"
    ev0="$(events_total)"

    t0="$(date +%s.%N)"
    h2_start "$n" "$BENCH_TMP/streams-$n.h2"
    held_wait $(( ev0 + n * held_events )) 600 \
        || die "$n streams were not all held: $(tail -n 8 "$BENCH_TMP/streams-$n.h2")"
    held_s="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
    rss1="$(bench_rss_kb "$BENCH_WORKER")"
    cpu1="$(bench_cpu_ticks "$BENCH_WORKER")"
    fd1="$(fds "$BENCH_WORKER")"
    read -r load50 load99 < <(static_latency)
    cpu1w="$(bench_cpu_ticks "$BENCH_WORKER")"

    kill -USR1 "$FE_PID"
    h2_result "$n" "$BENCH_TMP/streams-$n.h2" "$runlog"
    ok="$H2_OK" errs="$H2_ERRORS"
    cpu2="$(bench_cpu_ticks "$BENCH_WORKER")"
    errors=$((errors + errs))
    [ "$errs" -eq 0 ] || warn "$n streams: $errs errors ($(grep -v ' completed ' "$runlog" | head -n 3))"
    conns=$(( (n + 99) / 100 ))

    kb=$(( rss1 - rss0 ))
    fd_per="$(awk -v a="$fd1" -v b="$fd0" -v n="$n" 'BEGIN { p = (a - b) / n; printf "%.3f", p < 1 ? 1 : p }')"
    rows+=("| $n streams: worker RSS held (kB) | $rss1 | $rss0 (baseline) | $(awk -v a="$rss1" -v b="$rss0" 'BEGIN { printf "%.2f", a / b }') | $n |")
    rows+=("| $n streams: RSS per stream (kB) | $(awk -v k="$kb" -v n="$n" 'BEGIN { printf "%.1f", k / n }') | 32 KiB (goal) | $(awk -v k="$kb" -v n="$n" 'BEGIN { printf "%.2f", k / n / 32.768 }') | $n |")
    if [ -n "${prev_n:-}" ] && [ "$n" -gt "$prev_n" ]; then
        # the slope: linear growth has the same kB/stream at every N
        rows+=("| $prev_n -> $n streams: RSS per added stream (kB) | $(awk -v a="$kb" -v b="$prev_kb" -v n="$n" -v m="$prev_n" 'BEGIN { printf "%.1f", (a - b) / (n - m) }') | 32 KiB (goal) | $(awk -v a="$kb" -v b="$prev_kb" -v n="$n" -v m="$prev_n" 'BEGIN { printf "%.2f", (a - b) / (n - m) / 32.768 }') | $n |")
    fi
    prev_n="$n" prev_kb="$kb"
    rows+=("| $n streams: worker descriptors per stream | $(awk -v a="$fd1" -v b="$fd0" -v n="$n" 'BEGIN { printf "%.2f", (a - b) / n }') | - | - | $n |")
    # (without wrk's requests)
    rows+=("| $n streams: worker CPU per stream (ms) | $(awk -v c="$((cpu1 - cpu0 + cpu2 - cpu1w))" -v n="$n" -v hz="$hz" 'BEGIN { printf "%.3f", c * 1000 / hz / n }') | - | - | $n |")
    rows+=("| $n streams: all held after (s) | $held_s | - | - | $n |")
    rows+=("| $n streams: /ok p99 meanwhile (ms) | $load99 | $idle99 (idle) | $(awk -v a="$load99" -v b="$idle99" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }') | $n |")
    rows+=("| $n streams: /ok p50 meanwhile (ms) | $load50 | $idle50 (idle) | $(awk -v a="$load50" -v b="$idle50" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }') | $n |")
    rows+=("| $n streams: errors | $errs | 0 (goal) | - | $n |")
    say "$n streams over $conns HTTP/2 connections: RSS $rss0 -> $rss1 kB, $(( kb / n )) kB/stream, descriptors $fd0 -> $fd1, CPU $((cpu1 - cpu0 + cpu2 - cpu1w)) ticks, /ok p99 $idle99 -> $load99 ms, ok $ok errors $errs"

    bench_nginx_stop
    fe_stop
done

# --- 2. executions per second -------------------------------------------

fe_start --events 0
bench_nginx_start "$BENCH_TMP/nginx-rate" "$run_location" "" "$FE_SOCK"
"$BENCH_TMP/stream-client" --port "$BENCH_PORT" --total 500 --concurrency "$concurrency" \
    --timeout 60 >/dev/null 2>"$BENCH_TMP/rate-warm.err" \
    || die "warm-up failed: $(cat "$BENCH_TMP/rate-warm.err")"
cpu0="$(bench_cpu_ticks "$BENCH_WORKER")"
rc=0
line="$("$BENCH_TMP/stream-client" --port "$BENCH_PORT" --total "$total" \
        --concurrency "$concurrency" --timeout 600 2>"$BENCH_TMP/rate.err")" || rc=$?
cpu1="$(bench_cpu_ticks "$BENCH_WORKER")"
[ "$rc" -le 1 ] || die "the client failed: $(cat "$BENCH_TMP/rate.err")"
read -r _ _ ok _ errs _ evs _ secs _ _ _ _ <<<"$line"
errors=$((errors + errs))
rate="$(awk -v n="$total" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')"
cpu_exec="$(awk -v c="$((cpu1 - cpu0))" -v n="$total" -v hz="$hz" 'BEGIN { printf "%.3f", c * 1000 / hz / n }')"
rows+=("| executions started and ended per second, one worker | $rate | - | - | $total |")
rows+=("| worker CPU per execution (ms) | $cpu_exec | - | - | $total |")
rows+=("| executions: errors | $errs | 0 (goal) | - | $total |")
say "executions: $total in $secs s at concurrency $concurrency: $rate/s, $cpu_exec ms CPU each, ok $ok errors $errs"
bench_nginx_stop
fe_stop

# --- the table -----------------------------------------------------------

{
    echo "### The module alone, at scale (fake engine, one worker)"
    echo
    echo "| figure | value | baseline | ratio | N |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "One nginx worker (worker_processes 1) against bench/fake-engine, a scripted"
    echo "Engine API on a unix socket that answers at once: the module's own cost, not"
    echo "the engine's.  Streams: each execution sends 5 events and holds its stream"
    echo "open; the clients are h2load's, over HTTP/2, 100 streams to a connection."
    echo "RSS and descriptors are read once all N hold (baseline: after a warm-up"
    echo "of 10; RSS per stream at a small N also holds what the worker grows once,"
    echo "the slope between two N does not), CPU from the baseline until the last stream ended (after its"
    echo "completeRun and perstack.end), without the time wrk ran.  /ok: wrk -t1 -c10 -d${wrk_seconds}s --latency,"
    echo "idle and then with the N streams held.  Executions: $total short executions"
    echo "(3 events and completeRun at once) by $concurrency clients at a time."
    echo "An error is a stream that did not end 200 with outcome completed (access log)."
    echo "Command: bench/scale.sh$([ "$quick" -eq 1 ] && echo ' --quick') (streams: $streams_list)."
    echo "Machine: $(bench_machine)."
    [ "${#notes[@]}" -eq 0 ] || printf '%s\n' "${notes[@]}"
} >"$BENCH_OUT/scale.md"

cat "$BENCH_OUT/scale.md"

[ "$errors" -eq 0 ] || exit 1
