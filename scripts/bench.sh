#!/usr/bin/env bash
# The benchmarks, side by side in one run, into docs/performance.md.
#
# Runs each bench/<item>.sh in this order, each with --out into one
# directory (build/bench/<time>/), and puts their tables together:
#   ttfe     time to first event, cold: the module, the Engine API floor,
#            docker run, and a Node.js service with dockerode (bench/peer)
#   load     a static file's p50/p99 while one worker streams 0/100/200
#   relay    relay throughput of a flood of small events: module, peer,
#            the attach stream read directly
#   memory   memory per live stream: module and peer
#   scale    the module alone against a scripted engine (bench/fake-engine):
#            10,000 streams on one worker, executions per second, growth
#   e2e      executions completed per second at concurrency 8 and 32
# A full run writes docs/performance.md (the command, the commit, the
# machine, every table); --quick runs each item at a small N (the whole in
# about two minutes, as CI does, so that the suite cannot rot) and writes
# only build/bench/<time>/performance.md.  Nothing asserts a speed: an
# item fails only when it could not run, or when what must be 0 (errors)
# was not.
#
# Usage: scripts/bench.sh [--quick] [--only ITEM]... [--no-setup]
#   --quick      small N everywhere; docs/performance.md is left alone
#   --only ITEM  run this item (may be repeated)
#   --no-setup   skip scripts/setup.sh, the demo image and the build
#   -h, --help   this text
set -euo pipefail
PERSTACK_ME=bench
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

ITEMS=(ttfe load relay memory scale e2e)
quick=0 do_setup=1
only=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --only) [ $# -ge 2 ] || die "--only needs an item"; only+=("$2"); shift 2 ;;
        --no-setup) do_setup=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
if [ "${#only[@]}" -gt 0 ]; then
    for i in "${only[@]}"; do
        [[ " ${ITEMS[*]} " == *" $i "* ]] || die "--only: no item '$i' (${ITEMS[*]})"
    done
    ITEMS=("${only[@]}")
fi

S="$PERSTACK_ROOT/scripts"
start=$(now)

# A dockerd started here is stopped at the end, as scripts/test.sh does.
started_docker=0
on_exit() {
    local rc=$?
    [ "$started_docker" -eq 0 ] || bash "$S/stop-docker.sh" || true
    exit "$rc"
}
trap on_exit EXIT

if [ "$do_setup" -eq 1 ]; then
    bash "$S/setup.sh"
    had_pidfile=0
    [ ! -f "$PERSTACK_BUILD/dockerd.pid" ] || had_pidfile=1
    bash "$S/start-docker.sh"
    [ ! -f "$PERSTACK_BUILD/dockerd.pid" ] || [ "$had_pidfile" -eq 1 ] || started_docker=1
    bash "$S/build-demo-image.sh"
    bash "$S/build-nginx.sh" 1.26 >/dev/null
fi
docker_alive || die "the Docker Engine does not answer (scripts/start-docker.sh)"

out="$PERSTACK_BUILD/bench/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
chmod 755 "$out"

. "$PERSTACK_ROOT/bench/lib.sh"
machine="$(bench_machine)"

failed=()
ran=()
for item in "${ITEMS[@]}"; do
    script="$PERSTACK_ROOT/bench/$item.sh"
    if [ ! -f "$script" ]; then
        warn "bench/$item.sh is not there: skipped"
        continue
    fi
    say "==> $item"
    args=(--out "$out")
    [ "$quick" -eq 0 ] || args+=(--quick)
    t=$(now)
    if bash "$script" "${args[@]}" </dev/null >"$out/$item.log" 2>&1; then
        say "$item: done ($(elapsed "$t"))"
        ran+=("$item")
    else
        warn "$item failed ($(elapsed "$t")); last lines of $out/$item.log:"
        tail -n 15 "$out/$item.log" >&2 || true
        failed+=("$item")
    fi
done

# ---- the report -------------------------------------------------------------
commit="$(git -C "$PERSTACK_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty=""
[ -z "$(git -C "$PERSTACK_ROOT" status --porcelain -- src config 2>/dev/null)" ] || dirty=" (with changes to src/)"
cmd="scripts/bench.sh"
[ "$quick" -eq 0 ] || cmd="$cmd --quick"
for i in "${only[@]+"${only[@]}"}"; do cmd="$cmd --only $i"; done
report="$out/performance.md"
{
    printf '# Performance\n\n'
    printf 'Measured by `%s` on %s, at commit %s%s.\n\n' "$cmd" "$(date -u +%Y-%m-%d)" "$commit" "$dirty"
    printf 'Machine: %s.  nginx runs with `worker_processes 1`.\n\n' "$machine"
    printf 'Each table compares subjects measured side by side in the same run;\n'
    printf 'a ratio is value / baseline.  The machine is shared and noisy: read\n'
    printf 'the ratios, not the absolute figures.  What each item does, exactly:\n'
    printf '[bench/README.md](../bench/README.md).\n\n'
    for item in "${ran[@]+"${ran[@]}"}"; do
        if [ -f "$out/$item.md" ]; then
            cat "$out/$item.md"
            printf '\n'
        fi
    done
    for item in "${failed[@]+"${failed[@]}"}"; do
        printf '### %s\n\nDid not complete in this run (see its log).\n\n' "$item"
    done
} >"$report"

if [ "$quick" -eq 0 ] && [ "${#only[@]}" -eq 0 ]; then
    cp "$report" "$PERSTACK_ROOT/docs/performance.md"
    say "docs/performance.md written ($(elapsed "$start"))"
else
    say "report: $report ($(elapsed "$start"))"
fi

if [ "${#failed[@]}" -gt 0 ]; then
    die "failed: ${failed[*]}"
fi
