#!/usr/bin/env bash
# End to end on the real engine: executions completed per second at a given
# concurrency, for the module and for the peer, side by side in one run,
# interleaved:
#
#   module   GET /run?expert=demo&query=... on an nginx of the run's own
#            (bench_nginx_start, one worker, location = /run
#            { perstack_execute; perstack_env PERSTACK_DEMO_DELAY_MS 0; });
#   peer     bench/peer (Node.js, dockerode), with the same variable.
#
# bench/sse-client.pl load keeps C executions running (a new one as soon
# as one ends) until M have ended, and checks each: an error is anything
# but a completed run: status 200, the whole chunked body, the runtime's
# completeRun, and for the module a last event perstack.end with outcome
# "completed" (the peer has no such event: its full stream and clean end
# are the check).  Each round runs both subjects, their order alternating.
#
# Usage: bench/e2e.sh [--quick] [--concurrency "C..."] [--rounds R] [--out DIR] [-h]
#   --quick              concurrency 2 and 4, 2 x C executions, 1 round
#   --concurrency "C..." the levels (default "8 32")
#   --rounds R           rounds (default 3); each round runs 4 x C
#                        executions of each subject
#   --out DIR            writes DIR/e2e.md; default: a temporary directory
#   -h, --help           this text
# Environment: BENCH_NGINX, BENCH_MODULE (bench/lib.sh), PERSTACK_DEMO_IMAGE,
# PERSTACK_DOCKER_SOCK.
# Exit status: 0 when every execution completed (0 errors), 1 otherwise or on
# a set-up error.
set -euo pipefail
PERSTACK_ME=e2e
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
# shellcheck source=bench/lib.sh
. "$PERSTACK_ROOT/bench/lib.sh"
# shellcheck source=bench/peer/lib.sh
. "$PERSTACK_ROOT/bench/peer/lib.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

levels="8 32" rounds=3 per=4
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) levels="2 4" rounds=1 per=2; shift ;;
        --concurrency) [ $# -ge 2 ] || die "--concurrency needs a value"; levels="${2//,/ }"; shift 2 ;;
        --rounds) [ $# -ge 2 ] || die "--rounds needs a value"; rounds="$2"; shift 2 ;;
        --out) [ $# -ge 2 ] || die "--out needs a value"; BENCH_OUT="$(realpath -m "$2")"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
read -r -a levels <<<"$levels"
for c in "${levels[@]}"; do
    [[ "$c" =~ ^[1-9][0-9]*$ ]] || die "--concurrency: not a positive whole number: $c"
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds: not a positive whole number: $rounds"

bench_init e2e
bench_need_engine
B="$PERSTACK_ROOT/bench"

bench_nginx_start "$BENCH_TMP/nginx" "
        location = /run {
            perstack_execute;
            perstack_env PERSTACK_DEMO_DELAY_MS 0;
        }"
peer_start --env PERSTACK_DEMO_DELAY_MS=0
say "nginx worker $BENCH_WORKER, peer pid $PEER_PID; concurrency ${levels[*]}, $rounds round(s)"

q="expert=demo&query=hello+end+to+end"
runs="$BENCH_TMP/runs.txt"
: >"$runs"

jget() { perl -MJSON::PP -e 'local $/; my $v = decode_json(<STDIN>)->{$ARGV[0]}; print $v // "-"' "$1"; }

# One round of SUBJECT at concurrency C: "subject C per_second completed errors"
run_one() {
    local s="$1" c="$2" url j
    case "$s" in
        module) url="http://127.0.0.1:$BENCH_PORT/run?$q" ;;
        peer) url="$PEER_URL?$q" ;;
    esac
    j="$(perl "$B/sse-client.pl" load "$url" --concurrency "$c" --count $((per * c)))" || true
    [ -n "$j" ] || { echo "$s $c - 0 $((per * c))"; return; }
    [ "$(jget errors <<<"$j")" = 0 ] || warn "$s at $c: $(jget errors <<<"$j") error(s): $(jget why <<<"$j")"
    echo "$s $c $(jget per_second <<<"$j") $(jget completed <<<"$j") $(jget errors <<<"$j")"
}

subjects=(module peer)
for c in "${levels[@]}"; do
    for ((i = 0; i < rounds; i++)); do
        for ((k = 0; k < 2; k++)); do
            run_one "${subjects[(i + k) % 2]}" "$c" >>"$runs"
        done
    done
done
[ "$BENCH_OUT" = "$BENCH_TMP" ] || cp "$runs" "$BENCH_OUT/e2e-runs.txt"

errors="$(awk '{ n += $5 } END { print n + 0 }' "$runs")"
{
    for c in "${levels[@]}"; do
        declare -A rate done_
        for s in "${subjects[@]}"; do
            rate[$s]="$(awk -v s="$s" -v c="$c" '$1 == s && $2 == c && $3 != "-" { print $3 }' "$runs" \
                        | bench_stats | awk '{ print $2 }')"
            done_[$s]="$(awk -v s="$s" -v c="$c" '$1 == s && $2 == c { n += $4 } END { print n + 0 }' "$runs")"
        done
        bench_table_row "module: executions/s at concurrency $c" "$(fmt "${rate[module]}" 2)" \
            "$(fmt "${rate[peer]}" 2)" "${done_[module]}"
        bench_table_row "peer: executions/s at concurrency $c" "$(fmt "${rate[peer]}" 2)" - "${done_[peer]}"
    done
    for s in "${subjects[@]}"; do
        bench_table_row "$s: errors" "$(awk -v s="$s" '$1 == s { n += $5 } END { print n + 0 }' "$runs")" - \
            "$(awk -v s="$s" '$1 == s { n += $4 + $5 } END { print n + 0 }' "$runs")"
    done
    cat <<EOF

Executions completed per second on the real engine, the demo image's
\`demo\` expert with PERSTACK_DEMO_DELAY_MS=0 (some 15 events; the
container's start and removal are most of its time), C at a time, closed
loop (bench/sse-client.pl load: a new execution as soon as one ends); for
each level $rounds round(s) of $per × C executions per subject, the two
alternating; the figure is the median of the rounds' rates, N the
executions completed. Baseline: the peer (bench/peer, Node.js
$(node --version), dockerode). An error is any execution that did not
complete: not 200, a body cut short, no completeRun, or for the module a
last event other than perstack.end with outcome "completed". The module:
one nginx worker. $(bench_machine).
EOF
} | bench_section "End to end on the real engine"

[ "$errors" -eq 0 ] || { warn "$errors error(s)"; exit 1; }
