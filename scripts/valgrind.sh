#!/usr/bin/env bash
# Test::Nginx files with nginx under valgrind's memcheck, as Test::Nginx
# runs it (TEST_NGINX_USE_VALGRIND): Debian's nginx with the module-only
# build.  Each process writes its report to build/valgrind/vg.PID; any
# error in any of them fails the run.  Leaks are not looked for (nginx
# frees by pools, and at exit not at all).  Slow: valgrind runs nginx about
# twenty times slower, so by default only the core files run.
#
# Usage: scripts/valgrind.sh [t/FILE.t ...]
#        (default: t/001-sanity.t t/003-stream.t t/005-lifecycle.t)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

command -v valgrind >/dev/null 2>&1 \
    || die "valgrind not found (apt-get install valgrind)"

files=("$@")
[ "${#files[@]}" -gt 0 ] \
    || files=(t/001-sanity.t t/003-stream.t t/005-lifecycle.t)

bash "$PERSTACK_ROOT/scripts/start-docker.sh" >&2
bash "$PERSTACK_ROOT/scripts/build-demo-image.sh" >&2
so="$(bash "$PERSTACK_ROOT/scripts/build-nginx.sh" debian)"

out="$PERSTACK_BUILD/valgrind"
rm -rf "$out"
mkdir -p "$out"
log="$PERSTACK_BUILD/logs/valgrind-prove.log"

start=$(now)
rc=0
(
    cd "$PERSTACK_ROOT"
    TEST_NGINX_USE_VALGRIND="--tool=memcheck --leak-check=no --num-callers=40 --error-exitcode=0 --log-file=$out/vg.%p" \
    TEST_NGINX_BINARY=/usr/sbin/nginx \
    TEST_NGINX_PERSTACK_MODULE="$so" \
    TEST_NGINX_PERSTACK_VARIANT=valgrind \
    TEST_NGINX_SERVROOT="$PERSTACK_BUILD/servroot-valgrind" \
        prove "${files[@]}" </dev/null
) 2>&1 | tee "$log" || rc=$?

# a report with an error has a line "== ERROR SUMMARY: N errors" with N > 0
errors=0
for f in "$out"/vg.*; do
    [ -e "$f" ] || continue
    n="$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$f" | tail -n 1)"
    if [ -n "$n" ] && [ "$n" -gt 0 ]; then
        errors=$((errors + n))
        echo "---- $f ----" >&2
        head -n 80 "$f" >&2
    fi
done

reports=$(find "$out" -name 'vg.*' | wc -l)
say "valgrind: ${#files[@]} files, $reports processes, $errors errors, $(elapsed "$start")"
say "$(grep -E '^Files=' "$log" | tail -n 1)"

[ "$errors" -eq 0 ] || exit 1
exit "$rc"
