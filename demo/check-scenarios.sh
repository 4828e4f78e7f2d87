#!/usr/bin/env bash
# Compare the demo agent of a git revision with the one of the work tree:
# every scenario of the table (demo/scenarios.h) and a few command lines
# (options, errors, continued jobs) run under both, and their stdout,
# stderr, exit code and the files they write in a scratch workspace must be
# the same, byte for byte.
#
# Usage: demo/check-scenarios.sh [REV]     (default REV: HEAD)
# Environment: CC (default gcc); PERSTACK_CHECK_KEEP=1 keeps the scratch
# directory (both builds' outputs) for a look.
#
# Both builds are compiled as scripts/build-demo-image.sh compiles them, but
# linked dynamically, so that a small preloaded library can fix the clock
# (one millisecond a call) and the pid: ids and timestamps then come out the
# same in both runs, and the outputs are compared unmasked (but for
# probe's list of the host's network interfaces).  Events have no
# pause between them (PERSTACK_DEMO_DELAY_MS=0).  It runs locally, without
# Docker; the only network use is a one-shot HTTP answerer on 127.0.0.1 for
# "llm", stopped by its pid.  Exit 0 when everything is the same.

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

CC="${CC:-gcc}"
REV="${1:-HEAD}"
CFLAGS=(-std=c99 -O2 -Wall -Wextra -Werror)

tmp="$(mktemp -d /tmp/perstack-demo-check.XXXXXX)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ -n "${PERSTACK_CHECK_KEEP:-}" ]; then
        say "kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

# the fixed clock and pid
cat >"$tmp/fixed.c" <<'EOF'
#include <time.h>
#include <sys/types.h>

static long long  fixed_ms = 1700000000000LL;

int
clock_gettime(clockid_t clock, struct timespec *ts)
{
    (void) clock;
    fixed_ms++;
    ts->tv_sec = fixed_ms / 1000;
    ts->tv_nsec = (fixed_ms % 1000) * 1000000L;
    return 0;
}

pid_t
getpid(void)
{
    return 4242;
}
EOF
"$CC" -shared -fPIC -O2 -o "$tmp/fixed.so" "$tmp/fixed.c"

mkdir -p "$tmp/old-src" "$tmp/new-src"
git -C "$PERSTACK_ROOT" archive "$REV" demo | tar -x -C "$tmp/old-src"
cp -p "$PERSTACK_ROOT"/demo/*.[ch] "$tmp/new-src/"
"$CC" "${CFLAGS[@]}" -o "$tmp/old" "$tmp"/old-src/demo/*.c
"$CC" "${CFLAGS[@]}" -o "$tmp/new" "$tmp"/new-src/*.c

# an HTTP answerer for "llm": one fixed answer a connection
port=""
if command -v python3 >/dev/null 2>&1; then
    python3 - "$tmp/port" <<'EOF' &
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    c, _ = s.accept()
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
            while len(body) < n:
                chunk = c.recv(4096)
                if not chunk:
                    break
                body += chunk
    answer = b'{"echo":' + str(len(body)).encode() + b',"path":"' \
        + head.split(b" ")[1] + b'"}'
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n"
              + answer)
    c.close()
EOF
    server_pid=$!
    for _ in $(seq 1 100); do
        [ -f "$tmp/port" ] && break
        python3 -c 'import select; select.select([], [], [], 0.05)'
    done
    port="$(cat "$tmp/port" 2>/dev/null || true)"
fi

# run NAME [ENV=VALUE...] -- ARGS...: one command line of the agent in the
# case's workspace (kept across cases of the same name prefix "job-")
run() {
    local name="$1" ws rc
    shift
    local envs=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        envs+=("$1")
        shift
    done
    shift
    case "$name" in
        job-*) ws="$tmp/ws/${name%%.*}" ;;
        *) ws="$tmp/ws/$name" ;;
    esac
    mkdir -p "$ws" "$tmp/out/$name"
    rc=0
    # (the outer 2>: the shell's own word on a crash, "Aborted")
    { (cd "$ws" && env -i PATH=/usr/bin:/bin HOME=/nonexistent \
        PERSTACK_DEMO_DELAY_MS=0 LD_PRELOAD="$tmp/fixed.so" "${envs[@]}" \
        "$bin" "$@" >"$tmp/out/$name/stdout" 2>"$tmp/out/$name/stderr"); } \
        2>/dev/null || rc=$?
    echo "$rc" >"$tmp/out/$name/rc"
}

# the same, with only the first lines of stdout (for "stubborn")
run_head() {
    local name="$1" lines="$2" ws="$tmp/ws/$1" rc
    shift 2
    mkdir -p "$ws" "$tmp/out/$name"
    rc="$(cd "$ws" && { env -i PATH=/usr/bin:/bin HOME=/nonexistent \
        PERSTACK_DEMO_DELAY_MS=0 LD_PRELOAD="$tmp/fixed.so" \
        "$bin" "$@" 2>"$tmp/out/$name/stderr" \
        | head -n "$lines" >"$tmp/out/$name/stdout"; \
        echo "${PIPESTATUS[0]}"; })"
    echo "$rc" >"$tmp/out/$name/rc"
}

cases() {
    local s q
    # every scenario with a plain query, and with a query of its own
    for s in demo interactive error maxsteps noend delegate garbage stderr \
             nonl stdin echo swapped
    do
        run "$s" -- run "$s" "hello there, \"quoted\" and tab	and é"
    done
    run echo-bytes -- run echo $'\x01{"type":"x"}\xff\xfe'
    run delegate-return -- run delegate return
    run slow -- run slow 2
    run slow-zero -- run slow 0
    run quiet -- run quiet 2:0
    run quiet-one -- run quiet 1:1
    run quiet-count -- run quiet 0
    run quiet-neg -- run quiet -- -2:-1
    run flood -- run flood 300
    run flood-zero -- run flood 0
    for q in 10 1000 70000 -5; do
        run "huge-$q" -- run huge "$q"
    done
    run huge-over -- run huge 2000000000
    for s in long longend longerror longstderr longtext longbad longforge; do
        for q in 0 200 5000; do
            run "$s-$q" -- run "$s" "$q"
        done
        run "$s-bad" -- run "$s" -1
    done
    run long-default -- run long ""
    run longend-default -- run longend x
    run exit -- run exit ""
    run exit-7 -- run exit 7
    run exit-neg -- run exit -1
    run crash -- run crash now
    run_head stubborn 8 run stubborn now
    run probe -- run probe "/tmp /nonexistent /etc /"
    run memhog -- run memhog 48
    run forkbomb -- run forkbomb 3
    run llm-noenv -- run llm "hi"
    run llm-refused ANTHROPIC_BASE_URL=http://127.0.0.1:1/v1 \
        ANTHROPIC_API_KEY=k -- run llm "hi"
    run llm-badurl ANTHROPIC_BASE_URL=http://localhost:80/v1 \
        ANTHROPIC_API_KEY=k -- run llm "hi"
    if [ -n "$port" ]; then
        run llm-ok ANTHROPIC_BASE_URL="http://127.0.0.1:$port/v1/" \
            ANTHROPIC_API_KEY=k -- run llm "hello model"
    fi
    run net -- run net "127.0.0.1:1 bogus 1.2.3.4 127.0.0.1:99999"
    run deep -- run deep 10
    run deep-comments -- run deep c7
    run deep-default -- run deep x
    run unknown -- run nosuchexpert "q"

    # the command line
    run help -- --help
    run version -- --version
    run noargs --
    run run-noargs -- run
    run one-arg -- run demo
    run extra-arg -- run demo a b
    run bad-option -- run --bogus demo q
    run missing-value -- run demo q --model
    run options -- run --model m1 --provider p1 --runtime docker \
        --max-steps 7 --timeout 9 --job-id J_1-x demo q
    run options-eq -- run --model=m2 --max-steps=3 -- demo -dash
    run bad-steps -- run --max-steps 0 demo q
    run bad-timeout -- run --timeout x demo q
    run bad-id -- run --job-id "a/b" demo q
    run long-id -- run --job-id "$(printf 'a%.0s' $(seq 1 129))" demo q
    run config-missing -- run --config /nonexistent/perstack.toml demo q
    run config -- run --config "$tmp/cfg/perstack.toml" demo q
    run config-model -- run --config "$tmp/cfg/perstack.toml" --model m3 demo q
    run env-path -- run --env-path "$tmp/cfg/env1" --env-path /nonexistent \
        probe q
    run i-alone -- run -i demo q
    run resume-alone -- run --resume-from abc demo q
    run delay-bad PERSTACK_DEMO_DELAY_MS=x -- run demo q

    # continued jobs, each sequence in one workspace
    run job-a.1 -- run --job-id ja interactive "delete it"
    run job-a.2 -- run --continue-job ja -i interactive "yes"
    run job-a.3 -- run --continue-job ja interactive "again"
    run job-b.1 -- run --job-id jb interactive "q"
    run job-b.2 -- run --continue-job jb interactive "no -i"
    run job-b.3 -- run --continue-job jb -i demo "other expert"
    run job-b.4 -- run --continue -i interactive '{"toolCallId":"t",'\
'"toolName":"askUser","skillName":"user-input","text":"ok"}'
    run job-c.1 -- run --job-id jc demo "first"
    run job-c.2 -- run --continue-job jc -i demo "not paused"
    run job-c.3 -- run --continue demo "more"
    run job-c.4 -- run --continue-job jc --resume-from nosuch demo "r"
    run job-c.5 -- run --continue-job nosuch demo "r"
    run job-c.6 -- run --continue-job jc nosuchexpert "r"
    run job-d.1 -- run --job-id jd long 4000
    run job-d.2 -- run --continue-job jd -i long "fine"
    run job-e.1 -- run --continue demo "no job"
}

# Every name of the table must have its cases above: a scenario added
# without them fails here.
covered=" demo interactive error maxsteps noend delegate garbage stderr nonl
    stdin echo swapped slow flood huge long longend longerror longstderr
    longtext longbad longforge exit crash stubborn probe memhog forkbomb llm
    net deep quiet "
covered=" $(echo $covered) "
table="$(sed -n 's/^DEMO_SCENARIO(\([a-z0-9_]*\),.*/\1/p' \
    "$PERSTACK_ROOT/demo/scenarios.h")"
[ -n "$table" ] || die "no scenario table found in demo/"
for s in $table; do
    case "$covered" in
        *" $s "*) ;;
        *) die "scenario \"$s\" has no case in $0: add some" ;;
    esac
done

# files the command lines name, out of the workspaces' way upward
mkdir -p "$tmp/cfg"
printf 'model = "from-config"\n' >"$tmp/cfg/perstack.toml"
printf 'export A=1\nB="two words" # c\n#x=y\nPATH=/no\n' >"$tmp/cfg/env1"

for side in old new; do
    bin="$tmp/$side"
    rm -rf "$tmp/ws" "$tmp/out"
    cases
    # the files each case left in its workspace, names and contents
    (cd "$tmp/ws" && find . -type f | LC_ALL=C sort | while read -r f; do
        printf '== %s\n' "$f"
        cat "$f"
    done) >"$tmp/out/files"
    # the host's network interfaces come and go with other people's
    # containers: probe's list of them is left out
    grep -rlZ '"interfaces":\[' "$tmp/out" | xargs -0 -r \
        env LC_ALL=C sed -i 's/"interfaces":\[[^]]*\]/"interfaces":[]/g'
    mv "$tmp/out" "$tmp/$side-out"
done

n="$(find "$tmp/old-out" -name rc | wc -l)"
if diff -r "$tmp/old-out" "$tmp/new-out" >"$tmp/diff"; then
    say "the same: $n command lines (stdout, stderr, exit code, files)" \
        "of $REV and the work tree"
else
    head -n 60 "$tmp/diff" >&2
    die "the work tree's demo agent differs from $REV's (above)"
fi
