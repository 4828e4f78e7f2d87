#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run):
#   setup.sh, start-docker.sh, build-demo-image.sh, build-nginx.sh for each
#   variant, the C unit tests (make -C tests), then the Test::Nginx suite
#   (prove -r t/) once per variant, the README's walk-through
#   (check-walkthrough.sh), and last a check that no container labelled
#   io.perstack.managed was left behind (on Podman too, when it ran).  A
#   dockerd or Podman API service started here is stopped at the end.  Exits non-zero when any stage failed; prints one summary line a
#   stage.
#
# Usage: scripts/test.sh [options]
#   --variants LIST   nginx variants, space or comma separated
#                     (default: $PERSTACK_TEST_VARIANTS or "debian
#                     podman"; "1.26": the 1.26.3 source build against
#                     Docker; "1.22": the 1.22.1 source build, the nginx
#                     version of "debian" built with --with-debug;
#                     "asan": nginx and the module with AddressSanitizer and
#                     UBSan, any sanitizer report fails the run; see
#                     scripts/asan.sh; "podman": the "debian" build, Debian's
#                     nginx, against Podman's Docker-compatible API, on the
#                     socket of scripts/start-podman.sh, which this run
#                     starts, and stops at the end if it started it)
#   --only FILE       run only this .t file or directory (repeatable)
#   --full            the whole t/ suite on every Docker variant (by default, the
#                     whole suite runs on "debian", the nginx a Debian user
#                     loads the module into, and the core files on the
#                     others: configuration, streams, lifecycle, approval,
#                     HTTP/2; "podman" always runs those only)
#   --no-setup        skip scripts/setup.sh (packages already installed)
#   --no-unit         skip the C unit tests
#   --no-t            skip the Test::Nginx suite
#   --no-image        skip scripts/build-demo-image.sh
#   -h, --help        this text
# Environment passed to t/: TEST_NGINX_BINARY, TEST_NGINX_PERSTACK_MODULE
# (absolute .so path), TEST_NGINX_SERVROOT (build/servroot-VARIANT),
# TEST_NGINX_PERSTACK_VARIANT, and for "podman" TEST_NGINX_DOCKER_SOCK (the
# Podman socket); any other TEST_NGINX_* you set is kept.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

S="$PERSTACK_ROOT/scripts"
MODULE_NAME=ngx_http_perstack_module
orig_pwd="$PWD"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# The defaults: the whole suite on Debian's nginx against Docker, and the
# core files on it against Podman, within 20 minutes on 2 cores.  "1.26"
# (the core files on nginx 1.26.3; CI's benchmarks run that build too) and
# "1.22" (Debian's version built with --with-debug) are there to be asked
# for.
variants_arg="${PERSTACK_TEST_VARIANTS:-debian podman}"
full_variants="${PERSTACK_TEST_FULL_VARIANTS:-debian}"
core_files=(t/001-sanity.t t/003-stream.t t/005-lifecycle.t t/008-approval.t
            t/025-http2.t)
only=()
do_setup=1 do_unit=1 do_t=1 do_image=1
while [ $# -gt 0 ]; do
    case "$1" in
        --variants) [ $# -ge 2 ] || die "--variants needs a value"; variants_arg="$2"; shift 2 ;;
        --variants=*) variants_arg="${1#*=}"; shift ;;
        --only) [ $# -ge 2 ] || die "--only needs a value"; only+=("$2"); shift 2 ;;
        --only=*) only+=("${1#*=}"); shift ;;
        --full) full_variants="1.26 1.22 debian"; shift ;;
        --no-setup) do_setup=0; shift ;;
        --no-unit) do_unit=0; shift ;;
        --no-t) do_t=0; shift ;;
        --no-image) do_image=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
read -r -a variants <<<"${variants_arg//,/ }"
[ "${#variants[@]}" -gt 0 ] || die "no variants given"
for v in "${variants[@]}"; do
    case "$v" in 1.26|1.22|debian|asan|podman) ;; *) die "unknown variant '$v' (1.26, 1.22, debian, asan, podman)" ;; esac
done

# --only paths: as given from the caller's directory, else from the root.
only_abs=()
for f in ${only[@]+"${only[@]}"}; do
    if [ -e "$orig_pwd/$f" ] || [ -e "$f" ]; then
        case "$f" in /*) only_abs+=("$f") ;; *) only_abs+=("$(cd "$orig_pwd" && realpath "$f")") ;; esac
    elif [ -e "$PERSTACK_ROOT/$f" ]; then
        only_abs+=("$PERSTACK_ROOT/$f")
    else
        die "--only $f: no such file"
    fi
done

cd "$PERSTACK_ROOT"
mkdir -p "$PERSTACK_BUILD/logs"

# ---- bookkeeping -----------------------------------------------------------
stage_names=() stage_results=() stage_times=() stage_notes=()
failed=0
record() {  # NAME RESULT SECONDS NOTE
    stage_names+=("$1"); stage_results+=("$2"); stage_times+=("$3"); stage_notes+=("${4:-}")
    [ "$2" != FAIL ] || failed=1
}
# Run one stage: stage NAME COMMAND...  (returns the command's status)
stage() {
    local name="$1"; shift
    local t0 rc=0
    t0=$(now)
    say "==> $name"
    "$@" || rc=$?
    local secs; secs="$(elapsed "$t0")"
    if [ "$rc" -eq 0 ]; then
        record "$name" PASS "$secs" "${stage_note:-}"
    else
        record "$name" FAIL "$secs" "${stage_note:-exit $rc}"
        say "<== $name FAILED (exit $rc)"
    fi
    stage_note=""
    return "$rc"
}
stage_note=""
summary() {
    local i n="${#stage_names[@]}" nfail=0
    echo
    say "---- summary ----"
    for ((i = 0; i < n; i++)); do
        printf '%s: %-4s %-16s %7s  %s\n' "$PERSTACK_ME" "${stage_results[$i]}" \
            "${stage_names[$i]}" "${stage_times[$i]}" "${stage_notes[$i]}"
        [ "${stage_results[$i]}" != FAIL ] || nfail=$((nfail + 1))
    done
    if [ "$nfail" -eq 0 ]; then
        say "all stages passed ($(elapsed "$run_start"))"
    else
        say "$nfail of $n stages FAILED ($(elapsed "$run_start"))"
    fi
}

# ---- Docker, Podman: stop at exit only a daemon this run started ------------
started_docker=0 started_podman=0
on_exit() {
    local rc=$?
    if [ "$started_podman" -eq 1 ]; then
        bash "$S/stop-podman.sh" || true
    fi
    if [ "$started_docker" -eq 1 ]; then
        bash "$S/stop-docker.sh" || true
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The engine the leftover checks below ask: Docker's socket, or Podman's.
engine_sock="$PERSTACK_DOCKER_SOCK"

# Containers labelled io.perstack.managed: prints "id owner-pid name state
# image" lines (owner-pid: the io.perstack.pid label, "-" when absent).
perstack_containers() {
    curl -fsS --max-time 10 --unix-socket "$engine_sock" -G \
        --data-urlencode 'all=1' \
        --data-urlencode 'filters={"label":["io.perstack.managed"]}' \
        http://localhost/containers/json \
    | perl -MJSON::PP -e '
        local $/; my $l = decode_json(<STDIN>);
        for my $c (@$l) {
            my $pid = ($c->{Labels} || {})->{"io.perstack.pid"};
            $pid = "-" unless defined $pid && $pid =~ /^[0-9]+$/;
            printf "%s %s %s %s %s\n", substr($c->{Id}, 0, 12), $pid,
                join(",", @{ $c->{Names} || [] }), $c->{State} // "?",
                $c->{Image} // "?";
        }'
}
# True when pid $1 is a live nginx that does not belong to this checkout
# (its command line, or its master's, names no directory under build/):
# a developer's own nginx on the same Docker Engine, whose containers are
# none of this run's business.  In CI nothing else runs, so nothing is
# foreign there.
foreign_nginx() {
    local pid="$1" ppid cmd
    pid_is "$pid" nginx || return 1
    ppid="$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)"
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    if [ -n "$ppid" ] && pid_is "$ppid" nginx; then
        cmd="$cmd $(tr '\0' ' ' <"/proc/$ppid/cmdline" 2>/dev/null || true)"
    fi
    case "$cmd" in *"$PERSTACK_BUILD/"*) return 1 ;; esac
    return 0
}
remove_container() {
    curl -fsS --max-time 60 --unix-socket "$engine_sock" \
        -X DELETE "http://localhost/containers/$1?force=1&v=1" >/dev/null
}
# Remove leftovers; with "fail" as $1, a leftover fails the stage.
# Containers of a live nginx outside this checkout are listed, not touched.
# shellcheck disable=SC2120  # (called through stage with "fail")
check_leftovers() {
    local list id owner rest n=0 foreign=0
    list="$(perstack_containers)" || { say "cannot list containers"; return 1; }
    while read -r id owner rest; do
        [ -n "$id" ] || continue
        if [ "$owner" != - ] && foreign_nginx "$owner"; then
            say "not ours, left alone: $id $rest (owner: nginx pid $owner)"
            foreign=$((foreign + 1))
            continue
        fi
        n=$((n + 1))
        say "left behind: $id $rest"
        remove_container "$id" || say "could not remove $id"
    done <<<"$list"
    if [ "$n" -eq 0 ]; then
        say "no io.perstack.managed containers left behind"
        [ "$foreign" -eq 0 ] || stage_note="$foreign container(s) of another nginx ignored"
        return 0
    fi
    stage_note="$n container(s) left behind (now removed)"
    [ "${1:-}" != fail ]
}

run_start=$(now)

# Test counts over all runners, for the closing line.
tests_passed=0 tests_failed=0

run_unit() {
    local log="$PERSTACK_BUILD/logs/unit.log" rc=0 line
    make -s -C tests </dev/null 2>&1 | tee "$log" || rc=$?
    line="$(grep -E '^([A-Za-z_-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 || true)"
    if [[ "$line" =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        tests_passed=$((tests_passed + BASH_REMATCH[1]))
        tests_failed=$((tests_failed + BASH_REMATCH[2]))
        stage_note="${BASH_REMATCH[0]}"
    fi
    return "$rc"
}

run_prove() {  # VARIANT
    local v="$1" bin log
    local asan_dir=""
    local build="$v"
    local -a engine_env=()
    if [ "$v" = podman ]; then
        # Debian's nginx and the module of the "debian" build, on Podman
        build=debian
        engine_env=("TEST_NGINX_DOCKER_SOCK=$PERSTACK_PODMAN_SOCK")
    fi
    if [ "$build" = debian ]; then bin=/usr/sbin/nginx; else bin="$PERSTACK_BUILD/nginx-$v/objs/nginx"; fi
    log="$PERSTACK_BUILD/logs/prove-$v.log"
    local -a targets=(t/)
    case " $full_variants " in
        *" $v "*) ;;
        *) targets=("${core_files[@]}") ;;
    esac
    [ "${#only_abs[@]}" -eq 0 ] || targets=("${only_abs[@]}")
    local rc=0
    local -a sanitizer_env=()
    if [ "$v" = asan ]; then
        # Reports go to files, one a process, read after the run.  Leaks
        # are not looked for: nginx frees by pools, and at exit not at all.
        # A dynamic module defines ngx_module_names as nginx does, by
        # nginx's design: not a "one definition rule" violation to report.
        asan_dir="$PERSTACK_BUILD/asan-reports"
        rm -rf "$asan_dir"; mkdir -p "$asan_dir"
        sanitizer_env=(
            "ASAN_OPTIONS=detect_leaks=0:detect_odr_violation=0:abort_on_error=1:disable_coredump=1:log_path=$asan_dir/asan"
            "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$asan_dir/ubsan"
        )
    fi
    env ${sanitizer_env[@]+"${sanitizer_env[@]}"} \
    ${engine_env[@]+"${engine_env[@]}"} \
    TEST_NGINX_BINARY="$bin" \
    TEST_NGINX_PERSTACK_MODULE="$PERSTACK_BUILD/nginx-$build/objs/$MODULE_NAME.so" \
    TEST_NGINX_SERVROOT="$PERSTACK_BUILD/servroot-$v" \
    TEST_NGINX_PERSTACK_VARIANT="$v" \
        prove --timer -r "${targets[@]}" </dev/null 2>&1 | tee "$log" || rc=$?
    # prove's totals: "Files=N, Tests=M, ..." and, per failed file,
    # "t/x.t (Wstat: 256 ... Tests: 10 Failed: 2)".
    local total failed_n
    total="$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' "$log" | tail -n 1)"
    # (a file that died with no failed test counts as one failure)
    failed_n="$(sed -n 's/.*(Wstat: .* Failed: \([0-9]*\)).*/\1/p' "$log" \
                | awk '{ n += ($1 > 0 ? $1 : 1) } END { print n + 0 }')"
    total="${total:-0}"
    [ "$rc" -eq 0 ] || [ "$failed_n" -gt 0 ] || failed_n=1
    [ "$total" -ge "$failed_n" ] || total="$failed_n"
    tests_passed=$((tests_passed + total - failed_n))
    tests_failed=$((tests_failed + failed_n))
    stage_note="$(grep -E '^Files=[0-9]+, Tests=[0-9]+' "$log" | tail -n 1 | cut -d, -f1,2)"
    stage_note="$stage_note $(grep -E '^Result: ' "$log" | tail -n 1)"
    if [ "$v" = asan ]; then
        local reports
        reports="$(find "$asan_dir" -type f | wc -l)"
        stage_note="$stage_note, sanitizer reports: $reports"
        if [ "$reports" -gt 0 ]; then
            echo "---- sanitizer reports ($asan_dir) ----" >&2
            head -n 60 "$asan_dir"/* >&2 || true
            tests_failed=$((tests_failed + reports))
            rc=1
        fi
    fi
    return "$rc"
}

# ---- stages ----------------------------------------------------------------
if [ "$do_setup" -eq 1 ]; then
    stage setup bash "$S/setup.sh" || { summary; exit 1; }
else
    record setup SKIP 0s "--no-setup"
fi

had_pidfile=0
[ ! -f "$PERSTACK_BUILD/dockerd.pid" ] || had_pidfile=1
if stage docker bash "$S/start-docker.sh"; then
    if [ "$had_pidfile" -eq 0 ] && [ -f "$PERSTACK_BUILD/dockerd.pid" ]; then
        started_docker=1
    fi
else
    [ ! -f "$PERSTACK_BUILD/dockerd.pid" ] || [ "$had_pidfile" -eq 1 ] || started_docker=1
    summary; exit 1
fi

# Leftovers of earlier runs would be blamed on this one: clear them first.
if docker_alive; then
    check_leftovers || true
    stage_note=""
fi

if [ "$do_image" -eq 0 ]; then
    record demo-image SKIP 0s "--no-image"
elif [ -f "$S/build-demo-image.sh" ]; then
    stage demo-image bash "$S/build-demo-image.sh" || true
else
    record demo-image SKIP 0s "scripts/build-demo-image.sh not present"
fi

build_one() { bash "$S/build-nginx.sh" "$1" >/dev/null; }  # (it prints the .so path)
declare -A built=()
for v in "${variants[@]}"; do
    b="$v"
    [ "$v" != podman ] || b=debian  # (the "podman" variant runs that build)
    if [ -n "${built[$b]:-}" ]; then
        built[$v]="${built[$b]}"
        continue
    fi
    if stage "build:$b" build_one "$b"; then
        built[$b]=1
    else
        built[$b]=""
    fi
    built[$v]="${built[$b]}"
done

# The Podman API service, for the "podman" variant: after the demo image,
# which it loads from the Docker Engine.
podman_ok=0
case " ${variants[*]} " in
    *" podman "*)
        had_podman_pidfile=0
        [ ! -f "$PERSTACK_BUILD/podman.pid" ] || had_podman_pidfile=1
        if stage podman bash "$S/start-podman.sh"; then
            podman_ok=1
        fi
        if [ "$had_podman_pidfile" -eq 0 ] && [ -f "$PERSTACK_BUILD/podman.pid" ]; then
            started_podman=1
        fi
        if [ "$podman_ok" -eq 1 ]; then
            # leftovers of earlier runs would be blamed on this one
            engine_sock="$PERSTACK_PODMAN_SOCK"
            check_leftovers || true
            stage_note=""
            engine_sock="$PERSTACK_DOCKER_SOCK"
        fi
        ;;
esac

if [ "$do_unit" -eq 0 ]; then
    record unit SKIP 0s "--no-unit"
elif [ -f tests/Makefile ] || [ -f tests/makefile ] || [ -f tests/GNUmakefile ]; then
    stage unit run_unit || true
else
    record unit SKIP 0s "no tests/Makefile"
fi

if [ "$do_t" -eq 0 ]; then
    record "t" SKIP 0s "--no-t"
elif [ "${#only_abs[@]}" -eq 0 ] && [ -z "$(find t -name '*.t' -print -quit 2>/dev/null)" ]; then
    record "t" SKIP 0s "no t/*.t files"
else
    for v in "${variants[@]}"; do
        if [ -z "${built[$v]:-}" ]; then
            record "t:$v" SKIP 0s "build failed"
            continue
        fi
        if [ "$v" = podman ] && [ "$podman_ok" -eq 0 ]; then
            record "t:$v" FAIL 0s "the Podman API service did not start"
            continue
        fi
        stage "t:$v" run_prove "$v" || true
    done
fi

# The README's walk-through, exactly as written, on the demo's nginx.
if [ "$do_t" -eq 0 ] || [ "${#only_abs[@]}" -gt 0 ]; then
    record walkthrough SKIP 0s "--no-t or --only"
else
    run_walkthrough() {
        local rc=0
        bash "$S/check-walkthrough.sh" --no-setup || rc=$?
        if [ "$rc" -eq 0 ]; then
            tests_passed=$((tests_passed + 1))
        else
            tests_failed=$((tests_failed + 1))
        fi
        return "$rc"
    }
    stage walkthrough run_walkthrough || true
fi

if docker_alive; then
    stage leftovers check_leftovers fail || true
else
    record leftovers FAIL 0s "Docker Engine not answering"
fi

if [ "$podman_ok" -eq 1 ]; then
    engine_sock="$PERSTACK_PODMAN_SOCK"
    if podman_alive; then
        stage leftovers:podman check_leftovers fail || true
    else
        record leftovers:podman FAIL 0s "Podman API service not answering"
    fi
    engine_sock="$PERSTACK_DOCKER_SOCK"
fi

summary
# The closing line: every test counted by the runners above.
echo "tests: $tests_passed passed, $tests_failed failed"
exit "$failed"
