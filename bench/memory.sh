#!/usr/bin/env bash
# Memory per live stream: N executions of the demo image's `slow` expert
# (one small event a second) held open at once, and what the process that
# relays them grew by, divided by N:
#
#   module   the one nginx worker of an nginx of the run's own
#            (bench_nginx_start; location = /run { perstack_execute;
#            perstack_detach_timeout 0; } so that a client that goes ends
#            its execution at once);
#   peer     the node process of bench/peer (Node.js, dockerode).
#
# For each, in turn (the module first): a warm-up execution (`demo`, read
# to its end), then the baseline (for the peer, after a full garbage
# collection: node runs with --expose-gc, and SIGUSR2 makes the peer
# collect): the median of ten samples, 0.1 s apart,
# of VmRSS and Private_Dirty (/proc/PID/status, /proc/PID/smaps_rollup);
# then bench/sse-client.pl opens N streams, at most 8 starting at once,
# reads each until its first runtime event and then does not read it at
# all (the few hundred bytes a second each gets wait in the kernel's
# socket buffers); when all N are live, the same ten samples; the
# difference over N is the figure.  Then the clients close, and the next
# subject starts once every container of the run is gone.
#
# Usage: bench/memory.sh [--quick] [--streams N] [--out DIR] [-h]
#   --quick        N = 10
#   --streams N    live streams (default 200; starting 200 containers
#                  takes a minute or two)
#   --out DIR      writes DIR/memory.md; default: a temporary directory
#   -h, --help     this text
# Environment: BENCH_NGINX, BENCH_MODULE (bench/lib.sh), PERSTACK_DEMO_IMAGE,
# PERSTACK_DOCKER_SOCK.
# Exit status: 0 when all N streams of both subjects were live, 1 otherwise
# or on a set-up error.
set -euo pipefail
PERSTACK_ME=memory
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
# shellcheck source=bench/lib.sh
. "$PERSTACK_ROOT/bench/lib.sh"
# shellcheck source=bench/peer/lib.sh
. "$PERSTACK_ROOT/bench/peer/lib.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

streams=200
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) streams=10; shift ;;
        --streams) [ $# -ge 2 ] || die "--streams needs a value"; streams="$2"; shift 2 ;;
        --out) [ $# -ge 2 ] || die "--out needs a value"; BENCH_OUT="$(realpath -m "$2")"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
[[ "$streams" =~ ^[1-9][0-9]*$ ]] || die "--streams: not a positive whole number: $streams"

bench_init memory
bench_need_engine
B="$PERSTACK_ROOT/bench"

bench_nginx_start "$BENCH_TMP/nginx" "
        location = /run {
            perstack_execute;
            perstack_detach_timeout 0;
        }"
PEER_NODE_FLAGS=--expose-gc
# shellcheck disable=SC2119
peer_start
say "nginx worker $BENCH_WORKER, peer pid $PEER_PID; $streams live streams each"

pd_kb() { awk '/^Private_Dirty:/ { print $2 }' "/proc/$1/smaps_rollup"; }

# "VmRSS Private_Dirty" of PID in kB: medians of ten samples, 0.1 s apart.
sample() {
    local i rss="" pd=""
    for i in 1 2 3 4 5 6 7 8 9 10; do
        rss+="$(bench_rss_kb "$1")"$'\n'
        pd+="$(pd_kb "$1")"$'\n'
        [ "$i" -eq 10 ] || sleep 0.1
    done
    printf '%s %s\n' "$(bench_stats <<<"$rss" | awk '{ print $2 }')" \
                     "$(bench_stats <<<"$pd" | awk '{ print $2 }')"
}

# How many containers of the run there are.
run_containers() {
    curl -fsS --max-time 20 --unix-socket "$PERSTACK_DOCKER_SOCK" -G --data-urlencode 'all=1' \
        --data-urlencode "filters={\"label\":[\"$(bench_label)\"]}" http://localhost/containers/json \
    | perl -MJSON::PP -e 'local $/; print scalar @{ decode_json(<STDIN>) }'
}

errors=0
declare -A base_rss base_pd live_rss live_pd live_n start_s
base_js="" live_js=""  # the peer's V8 heapUsed + external, kB

measure() {  # SUBJECT PID URL
    local s="$1" pid="$2" url="$3" word n errs secs deadline hold_pid to_hold
    perl "$B/sse-client.pl" drain "$url?expert=demo&query=warm+up" >/dev/null \
        || { warn "$s: the warm-up execution failed"; errors=$((errors + 1)); }
    [ "$s" != peer ] || base_js="$(peer_gc | awk '{ print $1 + $2 }')"
    read -r "base_rss[$s]" "base_pd[$s]" <<<"$(sample "$pid")"
    coproc HOLD { exec perl "$B/sse-client.pl" hold "$url?expert=slow&query=3600" "$streams" --ramp 8; }
    # shellcheck disable=SC2153  # (the coproc sets HOLD_PID)
    hold_pid="$HOLD_PID" to_hold="${HOLD[1]}"
    if read -r word n errs secs <&"${HOLD[0]}" && [ "$word" = live ]; then
        [ "$s" != peer ] || live_js="$(peer_gc | awk '{ print $1 + $2 }')"
        read -r "live_rss[$s]" "live_pd[$s]" <<<"$(sample "$pid")"
        live_n[$s]="$n" start_s[$s]="$secs"
        say "$s: $n streams live after ${secs}s ($errs failed); VmRSS ${base_rss[$s]} -> ${live_rss[$s]} kB"
        [ "$n" -eq "$streams" ] || errors=$((errors + 1))
    else
        warn "$s: the streams did not start"
        errors=$((errors + 1))
    fi
    exec {to_hold}>&-
    wait "$hold_pid" || true
    # every container gone before the next subject
    deadline=$(( $(date +%s) + 180 ))
    while [ "$(run_containers)" -gt 0 ]; do
        [ "$(date +%s)" -lt "$deadline" ] || { warn "$s: containers left after 180s"; errors=$((errors + 1)); break; }
        sleep 0.5
    done
}

measure module "$BENCH_WORKER" "http://127.0.0.1:$BENCH_PORT/run"
measure peer "$PEER_PID" "$PEER_URL"

per() {  # LIVE BASE N
    if [ -z "$1" ] || [ -z "$3" ]; then echo -; return; fi
    awk -v l="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", (l - b) / n }'
}
{
    m="$(per "${live_rss[module]:-}" "${base_rss[module]}" "${live_n[module]:-}")"
    p="$(per "${live_rss[peer]:-}" "${base_rss[peer]}" "${live_n[peer]:-}")"
    bench_table_row "module (nginx worker): VmRSS per live stream, kB" "$m" "$p" "${live_n[module]:-0}"
    bench_table_row "peer (node): VmRSS per live stream, kB" "$p" - "${live_n[peer]:-0}"
    m="$(per "${live_pd[module]:-}" "${base_pd[module]}" "${live_n[module]:-}")"
    p="$(per "${live_pd[peer]:-}" "${base_pd[peer]}" "${live_n[peer]:-}")"
    bench_table_row "module (nginx worker): Private_Dirty per live stream, kB" "$m" "$p" "${live_n[module]:-0}"
    bench_table_row "peer (node): Private_Dirty per live stream, kB" "$p" - "${live_n[peer]:-0}"
    bench_table_row "peer (node): V8 heap used + external per live stream, kB" \
        "$(per "$live_js" "$base_js" "${live_n[peer]:-}")" - "${live_n[peer]:-0}"
    cat <<EOF

What the process that relays the streams grew by with N live executions
(\`slow 3600\`, one event a second), divided by N; kB as /proc shows them
(KiB). Baseline of each: after a warm-up execution, median of ten samples;
live: the same once all N streams had their first runtime event (they
took ${start_s[module]:-?} s to start for the module, ${start_s[peer]:-?} s for the peer, at most
8 starting at once). The clients read nothing after that first event.
Module: the one nginx worker, VmRSS ${base_rss[module]} → ${live_rss[module]:-?} kB,
Private_Dirty ${base_pd[module]} → ${live_pd[module]:-?} kB; the issue's goal is at most
32 KiB per stream. Peer: its node process (\`--expose-gc\`, a full garbage
collection before each set of samples), VmRSS ${base_rss[peer]} → ${live_rss[peer]:-?} kB, Private_Dirty
${base_pd[peer]} → ${live_pd[peer]:-?} kB, V8's heapUsed + external (\`process.memoryUsage()\`
after the collection) ${base_js:-?} → ${live_js:-?} kB. The ratio is the module's to the peer's.
One subject after the other, not interleaved. $(bench_machine).
EOF
} | bench_section "Memory per live stream"

[ "$errors" -eq 0 ] || { warn "$errors failure(s)"; exit 1; }
