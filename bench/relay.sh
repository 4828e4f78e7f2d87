#!/usr/bin/env bash
# Relay throughput: a flood of small events (the demo image's `flood N`:
# streamRunResult lines of some 200 bytes, as fast as the agent can write
# them), read by a client as fast as it can, for three subjects side by
# side in one run, interleaved:
#
#   module   GET /run?expert=flood&query=N on an nginx of the run's own
#            (one worker; perstack_record_max_size 0 so that the record may
#            hold the whole flood; perstack_max_output is 0, no limit, by
#            default), SSE, read by bench/sse-client.pl (1 MiB reads);
#   peer     bench/peer (Node.js, dockerode), read the same way;
#   direct   the attach stream itself (bench/engine-raw.pl: create, attach,
#            start on the Docker socket, the multiplexed stream read as it
#            comes): the baseline.
#
# Each repetition runs the three, in an order rotated by one each time.
# The time is from the runtime's first event to its completeRun (the last
# line of the flood) as the client sees them; MB/s are of the runtime's
# output (the same bytes for all three; the module's SSE adds an id and an
# event line to each).  CPU: the nginx worker's and the peer's node
# process's user + system time (/proc/PID/stat) over the whole execution,
# per million events.  The module writes every execution's record to disk
# (perstack_record_path, in the run's temporary directory): that is in its
# figures.
#
# Usage: bench/relay.sh [--quick] [--events N] [--reps R] [--out DIR] [-h]
#   --quick       N = 25000 (some 5 MB), R = 2
#   --events N    events of the flood (default 520000: 105 MB)
#   --reps R      repetitions (default 5)
#   --out DIR     writes DIR/relay.md (and each run's figures,
#                 relay-runs.txt); default: a temporary directory
#   -h, --help    this text
# Environment: BENCH_NGINX, BENCH_MODULE (bench/lib.sh), PERSTACK_DEMO_IMAGE,
# PERSTACK_DOCKER_SOCK.
# Exit status: 0 when every stream was complete, 1 otherwise or on a set-up
# error.
set -euo pipefail
PERSTACK_ME=relay
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
# shellcheck source=bench/lib.sh
. "$PERSTACK_ROOT/bench/lib.sh"
# shellcheck source=bench/peer/lib.sh
. "$PERSTACK_ROOT/bench/peer/lib.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

events=520000 reps=5
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) events=25000 reps=2; shift ;;
        --events) [ $# -ge 2 ] || die "--events needs a value"; events="$2"; shift 2 ;;
        --reps) [ $# -ge 2 ] || die "--reps needs a value"; reps="$2"; shift 2 ;;
        --out) [ $# -ge 2 ] || die "--out needs a value"; BENCH_OUT="$(realpath -m "$2")"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
[[ "$events" =~ ^[1-9][0-9]*$ ]] || die "--events: not a positive whole number: $events"
[[ "$reps" =~ ^[1-9][0-9]*$ ]] || die "--reps: not a positive whole number: $reps"

bench_init relay
bench_need_engine
B="$PERSTACK_ROOT/bench"
HZ="$(getconf CLK_TCK)"

bench_nginx_start "$BENCH_TMP/nginx" "
        location = /run {
            perstack_execute;
            perstack_record_max_size 0;
        }"
peer_start --env PERSTACK_DEMO_DELAY_MS=0  # (flood keeps its own pace)
say "nginx worker $BENCH_WORKER, peer pid $PEER_PID; flood $events, $reps repetitions"

q="expert=flood&query=$events"
subjects=(module peer direct)
runs="$BENCH_TMP/runs.txt"
: >"$runs"
errors=0

# A value of the JSON on stdin.
jget() { perl -MJSON::PP -e 'local $/; my $v = decode_json(<STDIN>)->{$ARGV[0]}; print $v // "-"' "$1"; }

# One run of SUBJECT: "subject seconds events payload_bytes wire_bytes cpu_ticks"
run_one() {
    local s="$1" pid="" t0=0 t1=0 j rc=0
    case "$s" in
        module) pid="$BENCH_WORKER" ;;
        peer) pid="$PEER_PID" ;;
    esac
    [ -z "$pid" ] || t0="$(bench_cpu_ticks "$pid")"
    case "$s" in
        module) j="$(perl "$B/sse-client.pl" drain "http://127.0.0.1:$BENCH_PORT/run?$q")" || rc=$? ;;
        peer) j="$(perl "$B/sse-client.pl" drain "$PEER_URL?$q")" || rc=$? ;;
        direct) j="$(perl "$B/engine-raw.pl" drain --image "$BENCH_IMAGE" \
                         --label "$(bench_label)" flood "$events")" || rc=$? ;;
    esac
    [ -z "$pid" ] || t1="$(bench_cpu_ticks "$pid")"
    if [ "$rc" -ne 0 ] || [ -z "$j" ]; then
        warn "$s: the stream was not complete: ${j:-no answer}"
        return 1
    fi
    if [ "$s" = direct ]; then
        printf '%s %s %s %s %s -\n' "$s" "$(jget seconds <<<"$j")" "$(jget lines <<<"$j")" \
            "$(jget bytes <<<"$j")" "$(jget bytes <<<"$j")"
    else
        printf '%s %s %s - %s %s\n' "$s" "$(jget seconds <<<"$j")" "$(jget events <<<"$j")" \
            "$(jget body_bytes <<<"$j")" "$((t1 - t0))"
    fi
}

for ((i = 0; i < reps; i++)); do
    for ((k = 0; k < ${#subjects[@]}; k++)); do
        s="${subjects[(i + k) % ${#subjects[@]}]}"
        run_one "$s" >>"$runs" || errors=$((errors + 1))
    done
done
[ "$BENCH_OUT" = "$BENCH_TMP" ] || cp "$runs" "$BENCH_OUT/relay-runs.txt"

# The runtime's output: the direct reads' stdout bytes and lines (the same
# flood for all).
payload="$(awk '$1 == "direct" { print $4 }' "$runs" | bench_stats | awk '{ print $2 }')"
lines="$(awk '$1 == "direct" { print $3 }' "$runs" | bench_stats | awk '{ print $2 }')"
[ "$payload" != - ] || die "no direct read completed"

declare -A mbs eps cpu wire cnt
for s in "${subjects[@]}"; do
    read -r "cnt[$s]" secs _ <<<"$(awk -v s="$s" '$1 == s { print $2 }' "$runs" | bench_stats)"
    mbs[$s]="$(awk -v b="$payload" -v t="$secs" 'BEGIN { printf "%.1f", b / t / 1e6 }')"
    eps[$s]="$(awk -v n="$lines" -v t="$secs" 'BEGIN { printf "%.0f", n / t }')"
    wire[$s]="$(awk -v s="$s" '$1 == s { print $5 }' "$runs" | bench_stats | awk '{ printf "%.1f", $2 / 1e6 }')"
    cpu[$s]="$(awk -v s="$s" '$1 == s && $6 != "-" { print $6 }' "$runs" | bench_stats \
               | awk -v hz="$HZ" -v n="$lines" '$2 == "-" { print "-"; exit }
                                                 { printf "%.2f", $2 / hz / (n / 1e6) }')"
done

{
    bench_table_row "module: MB/s" "${mbs[module]}" "${mbs[direct]}" "${cnt[module]}"
    bench_table_row "module: events/s" "${eps[module]}" "${eps[direct]}" "${cnt[module]}"
    bench_table_row "peer: MB/s" "${mbs[peer]}" "${mbs[direct]}" "${cnt[peer]}"
    bench_table_row "peer: events/s" "${eps[peer]}" "${eps[direct]}" "${cnt[peer]}"
    bench_table_row "direct (attach stream): MB/s" "${mbs[direct]}" - "${cnt[direct]}"
    bench_table_row "direct (attach stream): events/s" "${eps[direct]}" - "${cnt[direct]}"
    bench_table_row "nginx worker: CPU s per 1M events" "${cpu[module]}" "${cpu[peer]}" "${cnt[module]}"
    bench_table_row "peer (node): CPU s per 1M events" "${cpu[peer]}" - "${cnt[peer]}"
    cat <<EOF

\`flood $events\`: $lines lines, $(fmt "$(awk -v b="$payload" 'BEGIN { print b / 1e6 }')") MB of the
runtime's NDJSON (MB = 10^6 bytes), read by a client as fast as it can, for
each subject the median of $reps repetitions, interleaved (order rotated).
MB/s and events/s are of the runtime's output, from its first event to its
completeRun as the client sees them; on the wire the module sent
${wire[module]} MB of SSE (an id and an event line for each event), the
peer ${wire[peer]} MB. Baseline: the attach stream read directly on the
Docker socket (\`bench/engine-raw.pl\`). CPU: user + system time of the one
nginx worker, and of the peer's node process, over the whole execution
(create to remove), per million events; the ratio is the worker's to the
peer's. The module records every execution to disk as it streams it
(\`perstack_record_path\`, here \`perstack_record_max_size 0\`): that work
is in its figures. $(bench_machine).
EOF
} | bench_section "Relay throughput"

[ "$errors" -eq 0 ] || { warn "$errors stream(s) incomplete"; exit 1; }
