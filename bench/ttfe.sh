#!/usr/bin/env bash
# Time to first event, cold: from the request to the runtime's first event,
# for four subjects measured side by side in one run, interleaved:
#
#   module      GET /run?expert=demo&query=... on an nginx of the run's own
#               (bench_nginx_start, one worker, location = /run
#               { perstack_execute; }), until the first SSE event that is a
#               line of the runtime (not the module's perstack.execution);
#   floor       the same create -> attach (hijacked) -> start calls made
#               directly on the Docker socket (bench/engine-raw.pl), until
#               the first stdout line;
#   docker run  `docker run --rm` with the same options, until its first
#               stdout line;
#   peer        bench/peer (Node.js, dockerode), until its first event.
#
# Every subject runs the same container (the module's sandbox, the demo
# image, the demo expert, PERSTACK_DEMO_DELAY_MS=0 so that each run ends
# soon after its first event); each run is read to its end and its
# container is gone before the next starts.  Each iteration runs the four,
# in an order rotated by one each time.  One run of each comes first, not
# counted (the image's files, node's code are warm then).
#
# Usage: bench/ttfe.sh [--quick] [-n N] [--out DIR] [-h]
#   --quick      N = 3
#   -n N         iterations (default 30)
#   --out DIR    writes DIR/ttfe.md (and the samples, ttfe-SUBJECT.txt);
#                default: a temporary directory, removed at the end
#   -h, --help   this text
# Environment: BENCH_NGINX, BENCH_MODULE (bench/lib.sh), PERSTACK_DEMO_IMAGE,
# PERSTACK_DOCKER_SOCK.
# Exit status: 0 when every run completed, 1 otherwise or on a set-up error.
set -euo pipefail
PERSTACK_ME=ttfe
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
# shellcheck source=bench/lib.sh
. "$PERSTACK_ROOT/bench/lib.sh"
# shellcheck source=bench/peer/lib.sh
. "$PERSTACK_ROOT/bench/peer/lib.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

n=30
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) n=3; shift ;;
        -n) [ $# -ge 2 ] || die "-n needs a value"; n="$2"; shift 2 ;;
        --out) [ $# -ge 2 ] || die "--out needs a value"; BENCH_OUT="$(realpath -m "$2")"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "-n: not a positive whole number: $n"

bench_init ttfe
bench_need_engine
command -v docker >/dev/null || die "no docker CLI (package docker.io) for the docker run subject"
B="$PERSTACK_ROOT/bench"
DELAY=PERSTACK_DEMO_DELAY_MS=0
QUERY="hello there"

bench_nginx_start "$BENCH_TMP/nginx" "
        location = /run {
            perstack_execute;
            perstack_env PERSTACK_DEMO_DELAY_MS 0;
        }"
peer_start --env "$DELAY"
say "nginx worker $BENCH_WORKER on 127.0.0.1:$BENCH_PORT, peer pid $PEER_PID on 127.0.0.1:$PEER_PORT"

q="expert=demo&query=${QUERY// /+}"
subjects=(module floor docker-run peer)

# One run of SUBJECT; prints the milliseconds to its first event, then
# how many events it had.
measure() {
    case "$1" in
        module) perl "$B/sse-client.pl" first "http://127.0.0.1:$BENCH_PORT/run?$q" ;;
        peer) perl "$B/sse-client.pl" first "$PEER_URL?$q" ;;
        floor) perl "$B/engine-raw.pl" first --image "$BENCH_IMAGE" \
                   --label "$(bench_label)" --env "$DELAY" demo "$QUERY" ;;
        docker-run) perl "$B/engine-raw.pl" docker-run --image "$BENCH_IMAGE" \
                   --label "$(bench_label)" --env "$DELAY" demo "$QUERY" ;;
    esac
}

errors=0
for s in "${subjects[@]}"; do
    : >"$BENCH_TMP/$s.txt"
    measure "$s" >/dev/null || { warn "warm-up of $s failed"; errors=$((errors + 1)); }
done
say "$n iterations of ${subjects[*]}, rotated"
for ((i = 0; i < n; i++)); do
    for ((k = 0; k < ${#subjects[@]}; k++)); do
        s="${subjects[(i + k) % ${#subjects[@]}]}"
        if out="$(measure "$s")" && [ -n "$out" ]; then
            echo "${out%%$'\n'*}" >>"$BENCH_TMP/$s.txt"
        else
            warn "iteration $((i + 1)): $s failed"
            errors=$((errors + 1))
        fi
    done
done

declare -A med p90 cnt
for s in "${subjects[@]}"; do
    read -r "cnt[$s]" "med[$s]" "p90[$s]" _ <<<"$(bench_stats <"$BENCH_TMP/$s.txt")"
    [ "$BENCH_OUT" = "$BENCH_TMP" ] || cp "$BENCH_TMP/$s.txt" "$BENCH_OUT/ttfe-$s.txt"
done

{
    for s in module docker-run peer; do
        case "$s" in
            module) name="module" ;;
            docker-run) name="\`docker run\`" ;;
            peer) name="peer (Node.js, dockerode)" ;;
        esac
        bench_table_row "$name: median, ms" "$(fmt "${med[$s]}")" "$(fmt "${med[floor]}")" "${cnt[$s]}"
        bench_table_row "$name: p90, ms" "$(fmt "${p90[$s]}")" "$(fmt "${p90[floor]}")" "${cnt[$s]}"
    done
    bench_table_row "floor (Engine API calls): median, ms" "$(fmt "${med[floor]}")" - "${cnt[floor]}"
    bench_table_row "floor (Engine API calls): p90, ms" "$(fmt "${p90[floor]}")" - "${cnt[floor]}"
    cat <<EOF

Time from the request (connect()) to the runtime's first event, cold: a new
container each time, the demo image's \`demo\` expert, the module's sandbox
for all four. Baseline: the floor, the same create → attach (hijacked) →
start calls made directly on the Docker socket (\`bench/engine-raw.pl\`),
until its first stdout line. The module: one nginx worker,
\`perstack_execute\`, the first SSE event after its own
\`perstack.execution\`; \`docker run --rm\` (CLI $(docker version -f '{{.Client.Version}}' 2>/dev/null || echo ?)) until its first stdout line; the peer
(\`bench/peer\`, Node.js $(node --version), dockerode) until its first
\`data:\`. The four interleaved, their order rotated each iteration, one
uncounted run each first; every run read to its end (its container
removed) before the next. $(bench_machine).
EOF
} | bench_section "Time to first event, cold"

[ "$errors" -eq 0 ] || { warn "$errors run(s) failed"; exit 1; }
