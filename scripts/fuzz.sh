#!/usr/bin/env bash
# Fuzzes the module's pure parsers with libFuzzer, under AddressSanitizer and
# UndefinedBehaviorSanitizer: the targets of fuzz/ (see fuzz/README.md), one
# after another.  Installs clang and libFuzzer's runtime when missing.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS     how long each target runs (default 60)
#   TARGET      demux, classify, body, tree, sse or scan ("fuzz_demux"
#               works too);
#               default: all of them
#   -h, --help  this text
# Environment:
#   FUZZ_JOBS=N      run N libFuzzer jobs of each target at once (-jobs=N
#                    -workers=N), each for SECONDS; their logs are in
#                    fuzz/build/logs/TARGET.jobs/
#   FUZZ_MAX_LEN     the longest input tried (default 65536)
#   FUZZ_CFLAGS      more compiler flags, e.g. -DFUZZ_TOLERATE_YAJL
#   FUZZ_ARGS        more libFuzzer flags, e.g. -use_value_profile=1
#   FUZZ_CC          the compiler (default clang)
# Everything goes under fuzz/build/: the binaries, a working corpus a target
# (corpus/TARGET: the seeds of fuzz/corpus/TARGET, then whatever each run
# adds), crashes (artifacts/TARGET-crash-*, -leak-*, -timeout-*, -oom-*) and
# logs (logs/TARGET.log).  Prints one line a target, with its number of
# executions, and exits non-zero when a target crashed or did not build.
set -euo pipefail
# shellcheck source=scripts/common.sh source-path=SCRIPTDIR/..
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

all_targets=(demux classify body tree sse scan writer)

# the module's sources each target fuzzes: src/ngx_http_perstack_<this>.c
# (the first one the target's, the others what it calls)
declare -A target_src=([demux]=stream [classify]=json [body]="body json" [tree]=json
                       [sse]=sse [scan]="scan json writer"
                       [writer]="writer json")
declare -A target_dict=([demux]=demux [classify]=json [body]=json [tree]=json
                        [sse]=sse [scan]=json [writer]=json)

seconds=60
targets=()
if [ $# -gt 0 ]; then
    case "$1" in
        -h|--help) usage; exit 0 ;;
    esac
    if [[ "$1" =~ ^[0-9]+$ ]]; then
        seconds="$1"
        shift
    fi
fi
[ "$seconds" -ge 1 ] || die "SECONDS must be at least 1"
for t in "$@"; do
    t="${t#fuzz_}"
    [ -n "${target_src[$t]:-}" ] || die "unknown target '$t' (${all_targets[*]})"
    targets+=("$t")
done
[ "${#targets[@]}" -gt 0 ] || targets=("${all_targets[@]}")

jobs="${FUZZ_JOBS:-}"
[ -z "$jobs" ] || [[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "FUZZ_JOBS must be a number"
max_len="${FUZZ_MAX_LEN:-65536}"
[[ "$max_len" =~ ^[1-9][0-9]*$ ]] || die "FUZZ_MAX_LEN must be a number"
cc="${FUZZ_CC:-clang}"
read -r -a extra_cflags <<<"${FUZZ_CFLAGS:-}"
read -r -a extra_args <<<"${FUZZ_ARGS:-}"

F="$PERSTACK_ROOT/fuzz"
B="$F/build"
mkdir -p "$B/logs" "$B/artifacts" "$B/corpus"

trap 'exit 130' INT
trap 'exit 143' TERM

# ---- packages --------------------------------------------------------------
apt_updated=0
# Installs those of the packages "$@" that are missing; runs apt-get update
# first only when apt knows none of them, or when installing fails.
ensure_packages() {
    local -a missing=()
    local p
    mapfile -t missing < <(pkgs_missing "$@")
    [ "${#missing[@]}" -gt 0 ] || return 0
    say "installing ${missing[*]}"
    for p in "${missing[@]}"; do
        if [ "$apt_updated" -eq 0 ] && ! apt-cache show "$p" >/dev/null 2>&1; then
            run_logged "$B/logs/apt.log" as_root apt-get update -q
            apt_updated=1
        fi
    done
    if ! run_logged "$B/logs/apt.log" as_root apt-get install -y -q \
            --no-install-recommends "${missing[@]}"; then
        [ "$apt_updated" -eq 0 ] || die "could not install ${missing[*]}"
        run_logged "$B/logs/apt.log" as_root apt-get update -q
        apt_updated=1
        run_logged "$B/logs/apt.log" as_root apt-get install -y -q \
            --no-install-recommends "${missing[@]}" \
            || die "could not install ${missing[*]}"
    fi
}

if [ -z "${FUZZ_CC:-}" ]; then
    ensure_packages clang libyajl-dev
    # libFuzzer and the sanitizers' runtimes, for this clang's version
    clang_major="$("$cc" -dumpversion | cut -d. -f1)"
    ensure_packages "libclang-rt-$clang_major-dev"
fi
command -v "$cc" >/dev/null 2>&1 || die "no compiler '$cc'"

# ---- build -----------------------------------------------------------------
cflags=(-std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Wno-unused-parameter
        -g -O1 -fno-omit-frame-pointer
        "-fsanitize=fuzzer,address,undefined" -fno-sanitize-recover=all
        -I"$PERSTACK_ROOT/src" -I"$F")

build_target() {  # TARGET
    local t="$1" s
    local -a srcs=()
    for s in ${target_src[$t]}; do
        srcs+=("$PERSTACK_ROOT/src/ngx_http_perstack_$s.c")
    done
    run_logged "$B/logs/build-$t.log" "$cc" "${cflags[@]}" \
        ${extra_cflags[@]+"${extra_cflags[@]}"} \
        -o "$B/fuzz_$t" "$F/fuzz_$t.c" "$F/fuzz_util.c" "${srcs[@]}" -lyajl
}

# ---- run -------------------------------------------------------------------
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

rel() { printf '%s\n' "${1#"$PERSTACK_ROOT"/}"; }

# Sets run_execs and run_found (the artifacts written) from the logs "$@".
read_logs() {
    run_execs="$(awk -F: '/^stat::number_of_executed_units:/ { n += $NF }
                          END { print n + 0 }' "$@")"
    run_found="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$@" \
                 | grep -v '/[^/]*slow-unit-[^/]*$' | sort -u || true)"
}

run_target() {  # TARGET
    local t="$1" corpus="$B/corpus/$1" log="$B/logs/$1.log" seed rc=0
    local -a args
    mkdir -p "$corpus"
    # the seeds, without overwriting what earlier runs kept
    for seed in "$F/corpus/$t"/*; do
        [ -f "$seed" ] || continue
        [ -e "$corpus/${seed##*/}" ] || cp "$seed" "$corpus/"
    done
    args=(-max_total_time="$seconds" -max_len="$max_len" -timeout=10
          -print_final_stats=1 -artifact_prefix="$B/artifacts/$t-")
    if [ -f "$F/dict/${target_dict[$t]}.dict" ]; then
        args+=(-dict="$F/dict/${target_dict[$t]}.dict")
    fi
    if [ -n "$jobs" ]; then
        local dir="$B/logs/$t.jobs"
        rm -rf "$dir"
        mkdir -p "$dir"
        # each job writes fuzz-N.log in the current directory
        (cd "$dir" && "$B/fuzz_$t" "${args[@]}" -jobs="$jobs" -workers="$jobs" \
            ${extra_args[@]+"${extra_args[@]}"} "$corpus") >"$log" 2>&1 || rc=$?
        # (libFuzzer also copies each job's log into its own output)
        read_logs "$dir"/fuzz-*.log
    else
        "$B/fuzz_$t" "${args[@]}" ${extra_args[@]+"${extra_args[@]}"} \
            "$corpus" >"$log" 2>&1 || rc=$?
        read_logs "$log"
    fi
    return "$rc"
}

results=()
failed=0
for t in "${targets[@]}"; do
    say "==> $t: building"
    if ! build_target "$t"; then
        results+=("$(printf '%-9s FAIL   build failed: %s' "$t" \
                     "$(rel "$B/logs/build-$t.log")")")
        failed=$((failed + 1))
        continue
    fi
    say "==> $t: fuzzing for ${seconds}s${jobs:+ with $jobs jobs}"
    t0=$(now)
    rc=0
    run_target "$t" || rc=$?
    secs="$(elapsed "$t0")"
    files="$(find "$B/corpus/$t" -type f | wc -l)"
    if [ "$rc" -eq 0 ] && [ -z "$run_found" ]; then
        results+=("$(printf '%-9s ok     %12s executions %7s  corpus %s files' \
                     "$t" "$run_execs" "$secs" "$files")")
        continue
    fi
    failed=$((failed + 1))
    results+=("$(printf '%-9s CRASH  %12s executions %7s  log %s' \
                 "$t" "$run_execs" "$secs" "$(rel "$B/logs/$t.log")")")
    if [ -n "$run_found" ]; then
        while read -r a; do
            results+=("$(printf '%-9s        found %s' "" "$(rel "$a")")")
            results+=("$(printf '%-9s        reproduce: %s %s' "" \
                         "$(rel "$B/fuzz_$t")" "$(rel "$a")")")
        done <<<"$run_found"
    else
        results+=("$(printf '%-9s        libFuzzer exited with status %s' "" "$rc")")
    fi
done

echo
say "---- summary (${seconds}s a target) ----"
for line in "${results[@]}"; do
    say "$line"
done
if [ "$failed" -eq 0 ]; then
    say "no crash in ${#targets[@]} target(s)"
else
    say "$failed of ${#targets[@]} target(s) FAILED"
fi
[ "$failed" -eq 0 ]
