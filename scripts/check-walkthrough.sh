#!/usr/bin/env bash
# Runs the README's walk-through exactly as written (the sh block under
# "## Walk-through"), against the demo nginx of scripts/demo.sh --keep, and
# checks what each step must show.  Part of scripts/test.sh.
#
# Usage: scripts/check-walkthrough.sh [--no-setup]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

S="$PERSTACK_ROOT/scripts"
setup_arg=()
[ "${1:-}" != "--no-setup" ] || setup_arg=(--no-setup)

block="$(awk '
    /^## Walk-through/ { inside = 1; next }
    inside && /^## /   { exit }
    inside && /^```sh/ { code = 1; next }
    inside && /^```/   { if (code) exit }
    code               { print }
' "$PERSTACK_ROOT/README.md")"

[ -n "$block" ] || die "no sh block under \"## Walk-through\" in README.md"

out="$(mktemp)"
trap 'rm -f "$out" /tmp/run1.sse; bash "$S/demo.sh" --stop >/dev/null 2>&1 || true' EXIT

# The demo's own streams also prove the main job works.
bash "$S/demo.sh" --keep "${setup_arg[@]}" >"$PERSTACK_BUILD/logs/walkthrough-demo.log" 2>&1 \
    || { tail -n 20 "$PERSTACK_BUILD/logs/walkthrough-demo.log" >&2; die "scripts/demo.sh --keep failed"; }

bash -c "$block" >"$out" 2>&1 || { cat "$out" >&2; die "the walk-through failed"; }

failed=0
expect() {
    if grep -q -- "$2" "$out"; then
        say "walk-through: ok: $1"
    else
        warn "walk-through: missing: $1 (pattern: $2)"
        failed=1
    fi
}

expect "the first run pauses"           '"type":"perstack.end".*"outcome":"paused".*"pending_tool_calls":\[{"id"'
expect "the job id is extracted"        '^job: [0-9a-z]\{24\}$'
expect "bob gets 404"                   '"error":"job_not_found"'
expect "no token gets 401"              '^HTTP/1.1 401'
expect "the challenge is passed on"     '^WWW-Authenticate: Bearer'
expect "the answer finishes the call"   '"type":"finishAllToolCalls"'
expect "the continued run is the job's" '"type":"perstack.execution".*"continued":true'
expect "the continued run completes"    '"type":"perstack.end".*"outcome":"completed"'

# The LLM gateway's set-up is not run here (it needs a network of its own:
# t/014 and t/019 run it), but the command README.md names is shipped, and
# takes each argument its example gives.
setup="$PERSTACK_ROOT/bin/perstack-gateway-setup"
if [ -x "$setup" ] && bash -n "$setup"; then
    say "walk-through: ok: bin/perstack-gateway-setup is shipped"
    for arg in $(awk '/^perstack-gateway-setup / { c = 1 } c { print } c && !/\\$/ { c = 0 }' \
                     "$PERSTACK_ROOT/README.md" | grep -o -- '--[a-z-]*' | sort -u); do
        grep -q -- "^ *$arg)\|^ *$arg|\|[|(]$arg)\||$arg|" "$setup" \
            || { warn "walk-through: bin/perstack-gateway-setup does not take $arg (README.md)"; failed=1; }
    done
else
    warn "walk-through: bin/perstack-gateway-setup is missing or not executable"
    failed=1
fi

[ "$failed" -eq 0 ] || { cat "$out" >&2; die "the walk-through does not show what README.md says"; }
say "walk-through: README.md's commands work as written"
