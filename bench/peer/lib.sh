# shellcheck shell=bash disable=SC2034
# The peer (bench/peer/server.js) for the bench scripts that compare the
# module with it; sourced after bench/lib.sh.
#
#   peer_start [--env K=V]...   installs its node_modules if they are not
#                               there (npm ci), starts it with node on
#                               127.0.0.1:<free port>, with the run's label
#                               on its containers, and waits until it
#                               answers; sets PEER_PID, PEER_PORT, PEER_URL
#                               ($PEER_NODE_FLAGS: node's own options)
#   peer_gc                     a full garbage collection in the peer (it
#                               must run with --expose-gc), waited for;
#                               prints V8's "heapUsed external" after it, kB
#   peer_stop                   stops it (SIGTERM, by its pid)
#   bench_table_row FIGURE VALUE BASELINE N
#                               a row of the section's table: the ratio is
#                               VALUE / BASELINE, 2 decimals ("-" without
#                               a baseline)
#   bench_section TITLE         writes $BENCH_OUT/$BENCH_NAME.md: the
#                               heading, the table's head, then stdin (the
#                               rows, a blank line, the notes); prints it
#   fmt NUMBER [DECIMALS]       the number rounded (default 1 decimal)
#   bench_need_engine           dies unless the engine and the image are there

PEER_DIR="$PERSTACK_ROOT/bench/peer"
PEER_PID=""
PEER_PORT=""
PEER_URL=""

peer_start() {  # [--env K=V]...
    local log="$BENCH_TMP/peer.log" deadline p
    command -v node >/dev/null || die "no node (Node.js 20: apt-get install nodejs npm)"
    if [ ! -d "$PEER_DIR/node_modules/dockerode" ]; then
        say "installing the peer's dependencies: npm ci in bench/peer"
        run_logged "$BENCH_TMP/npm-ci.log" \
            npm ci --prefix "$PEER_DIR" --no-audit --no-fund --ignore-scripts \
            || die "npm ci in bench/peer failed"
    fi
    p="$(free_port)" || die "no free port"
    : >"$log"
    # shellcheck disable=SC2086  # (node's options, words)
    DOCKER_SOCKET="$PERSTACK_DOCKER_SOCK" node ${PEER_NODE_FLAGS:-} "$PEER_DIR/server.js" --port "$p" \
        --image "$BENCH_IMAGE" --label "$(bench_label)" "$@" >"$log" 2>&1 &
    PEER_PID=$!
    bench_on_exit peer_stop
    deadline=$(( $(date +%s) + 20 ))
    until grep -q '^listening on ' "$log"; do
        kill -0 "$PEER_PID" 2>/dev/null || die "the peer did not start: $(tail -n 3 "$log")"
        [ "$(date +%s)" -lt "$deadline" ] || die "the peer does not listen after 20s"
        sleep 0.1
    done
    PEER_PORT="$p"
    PEER_URL="http://127.0.0.1:$p/run"
    # it answers: a request without an expert gets 400
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$PEER_URL")" = 400 ] \
        || die "the peer does not answer on 127.0.0.1:$p"
}

peer_gc() {
    local n deadline
    n="$(grep -c '^gc ' "$BENCH_TMP/peer.log" || true)"
    kill -USR2 "$PEER_PID"
    deadline=$(( $(date +%s) + 10 ))
    until [ "$(grep -c '^gc ' "$BENCH_TMP/peer.log" || true)" -gt "$n" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || die "the peer did not collect its garbage (--expose-gc?)"
        sleep 0.05
    done
    grep '^gc ' "$BENCH_TMP/peer.log" | tail -n 1 | awk '{ printf "%.0f %.0f\n", $2 / 1024, $3 / 1024 }'
}

peer_stop() {
    [ -n "$PEER_PID" ] || return 0
    if pid_is "$PEER_PID" node; then
        kill -TERM "$PEER_PID" 2>/dev/null || true
        wait "$PEER_PID" 2>/dev/null || true
    fi
    if [ -s "$BENCH_TMP/peer.log" ] && grep -qvE '^(listening on |gc )' "$BENCH_TMP/peer.log"; then
        warn "the peer said: $(grep -vE '^(listening on |gc )' "$BENCH_TMP/peer.log" | head -n 5)"
    fi
    PEER_PID=""
}

bench_table_row() {  # FIGURE VALUE BASELINE N
    local ratio=-
    if [ "$3" != - ] && [ -n "$3" ]; then
        ratio="$(awk -v v="$2" -v b="$3" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", v / b }')"
    fi
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$ratio" "$4"
}

bench_section() {  # TITLE: the section from stdin (rows, then a blank line and notes)
    {
        printf '### %s\n\n' "$1"
        printf '| figure | value | baseline | ratio | N |\n'
        printf '|---|---|---|---|---|\n'
        cat
    } >"$BENCH_OUT/$BENCH_NAME.md"
    cat "$BENCH_OUT/$BENCH_NAME.md"
}

# A number with D decimals.
fmt() { awk -v v="$1" -v d="${2:-1}" 'BEGIN { if (v == "-" || v == "") print "-"; else printf "%.*f", d, v }'; }

# Docker and the demo image are there.
bench_need_engine() {
    docker_alive || die "the Docker Engine does not answer on $PERSTACK_DOCKER_SOCK (scripts/start-docker.sh)"
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$PERSTACK_DOCKER_SOCK" \
            "http://localhost/images/$BENCH_IMAGE/json")" = 200 ] \
        || die "the image $BENCH_IMAGE is not on the Docker Engine (scripts/build-demo-image.sh)"
}
