#!/usr/bin/env bash
# The demo: Debian's own nginx (/usr/sbin/nginx) with the module, running the
# demo agent image, and two live streams shown with curl.
#   1. installs what is missing (setup.sh), makes sure Docker runs,
#      builds the demo image and the module for Debian's nginx;
#   2. starts nginx on 127.0.0.1:8080 from conf-examples/demo.conf (runtime
#      files in build/demo-nginx/);
#   3. GET /agent?expert=demo&query=...           -> Server-Sent Events
#      POST /agent {"expert":..,"query":..} with Accept: application/x-ndjson
#      and the browser page, http://127.0.0.1:8080/page/ (conf-examples/page/);
#   4. stops that nginx again (and a dockerd it started), unless --keep.
#      With --keep, open the page in a browser on this machine.
#
# Usage: scripts/demo.sh [options]
#   --keep        leave nginx (and dockerd) running; stop later with --stop
#   --stop        stop a demo left running by --keep, then exit
#   --port N      listen on 127.0.0.1:N instead of 8080
#   --query TEXT  the query to send (default: a short sentence)
#   --no-setup    skip scripts/setup.sh
#   -h, --help    this text
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

S="$PERSTACK_ROOT/scripts"
NGINX=/usr/sbin/nginx
PREFIX="$PERSTACK_BUILD/demo-nginx"
CONF="$PREFIX/conf/nginx.conf"
PIDFILE="$PREFIX/logs/nginx.pid"
TEMPLATE="$PERSTACK_ROOT/conf-examples/demo.conf"
# Written when a --keep demo leaves running a dockerd that it started, so that
# --stop stops that dockerd and no other.
DOCKER_MARK="$PREFIX/started-dockerd"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

keep=0 stop_only=0 do_setup=1 port=8080
query="What can nginx do with a stream of agent events?"
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) keep=1; shift ;;
        --stop) stop_only=1; shift ;;
        --port) [ $# -ge 2 ] || die "--port needs a value"; port="$2"; shift 2 ;;
        --port=*) port="${1#*=}"; shift ;;
        --query) [ $# -ge 2 ] || die "--query needs a value"; query="$2"; shift 2 ;;
        --query=*) query="${1#*=}"; shift ;;
        --no-setup) do_setup=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] \
    || die "--port: not a port number: $port"

# The master pid from our pid file, if that process is still an nginx.
demo_pid() {
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    if pid_is "$pid" nginx; then printf '%s\n' "$pid"; fi
}

stop_nginx() {
    local pid deadline
    pid="$(demo_pid)"
    if [ -z "$pid" ]; then
        return 0
    fi
    say "stopping nginx (master pid $pid)"
    kill -QUIT "$pid" 2>/dev/null || true         # graceful
    deadline=$(( $(date +%s) + 15 ))
    while pid_is "$pid" nginx; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            warn "nginx (pid $pid) still running after 15s: sending SIGTERM"
            kill -TERM "$pid" 2>/dev/null || true
            sleep 2
            break
        fi
        sleep 0.1
    done
    rm -f "$PIDFILE"
}

if [ "$stop_only" -eq 1 ]; then
    stop_nginx
    if [ -f "$DOCKER_MARK" ]; then
        bash "$S/stop-docker.sh"
        rm -f "$DOCKER_MARK"
    fi
    exit 0
fi

started_nginx=0 started_docker=0
on_exit() {
    local rc=$?
    if [ "$keep" -eq 0 ]; then
        [ "$started_nginx" -eq 0 ] || stop_nginx || true
        [ "$started_docker" -eq 0 ] || bash "$S/stop-docker.sh" || true
    elif [ "$started_docker" -eq 1 ]; then
        mkdir -p "$PREFIX" && : >"$DOCKER_MARK"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. prerequisites -------------------------------------------------------
[ "$do_setup" -eq 0 ] || bash "$S/setup.sh"

had_pidfile=0
[ ! -f "$PERSTACK_BUILD/dockerd.pid" ] || had_pidfile=1
bash "$S/start-docker.sh"
if [ "$had_pidfile" -eq 0 ] && [ -f "$PERSTACK_BUILD/dockerd.pid" ]; then
    started_docker=1
fi

[ -f "$S/build-demo-image.sh" ] || die "scripts/build-demo-image.sh is missing"
bash "$S/build-demo-image.sh"

so="$(bash "$S/build-nginx.sh" debian | tail -n 1)"
[ -f "$so" ] || die "build-nginx.sh debian did not produce the module"

# ---- 2. nginx -----------------------------------------------------------------
[ -x "$NGINX" ] || die "$NGINX not found: run scripts/setup.sh (package nginx)"
[ -f "$TEMPLATE" ] || die "$TEMPLATE is missing"

# A demo left running by an earlier --keep is ours to replace.
if [ -n "$(demo_pid)" ]; then
    say "an earlier demo nginx is still running: replacing it"
    stop_nginx
fi

mkdir -p "$PREFIX/conf" "$PREFIX/logs" "$PREFIX/workspaces"
# The workspaces belong to the containers' user (nobody), and to no one else.
chown 65534:65534 "$PREFIX/workspaces"
chmod 0700 "$PREFIX/workspaces"
rm -f "$PREFIX/approval.sock"
conf="$(cat "$TEMPLATE")"
conf="${conf//@PERSTACK_MODULE@/$so}"
conf="${conf//@PERSTACK_PREFIX@/$PREFIX}"
conf="${conf//@PERSTACK_ROOT@/$PERSTACK_ROOT}"
conf="${conf//127.0.0.1:8080/127.0.0.1:$port}"
printf '%s\n' "$conf" >"$CONF"

run_logged "$PERSTACK_BUILD/logs/demo-nginx-t.log" "$NGINX" -t -q -p "$PREFIX/" -c "$CONF" \
    || die "nginx -t rejected $CONF"
say "starting $NGINX -p $PREFIX/ -c $CONF"
: >"$PREFIX/logs/error.log"
if ! "$NGINX" -p "$PREFIX/" -c "$CONF" 2>"$PERSTACK_BUILD/logs/demo-nginx-start.log"; then
    cat "$PERSTACK_BUILD/logs/demo-nginx-start.log" >&2
    tail -n 5 "$PREFIX/logs/error.log" >&2 || true
    die "nginx did not start (is 127.0.0.1:$port in use? try --port)"
fi
started_nginx=1

base="http://127.0.0.1:$port"
deadline=$(( $(date +%s) + 10 ))
until [ -n "$(demo_pid)" ] && [ "$(curl -s --max-time 2 "$base/" 2>/dev/null)" = ok ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { tail -n 5 "$PREFIX/logs/error.log" >&2; die "nginx does not answer on $base/"; }
    sleep 0.1
done
say "nginx is up (master pid $(demo_pid)) on $base"

# ---- 3. the streams -----------------------------------------------------------
urlencode() {
    perl -e 'my $s = shift; $s =~ s/([^A-Za-z0-9\-._~])/sprintf("%%%02X", ord($1))/ge; print $s' "$1"
}
json_string() {
    perl -MJSON::PP -e 'print JSON::PP->new->allow_nonref->encode(shift)' "$1"
}

show_failure() {
    say "the request failed; last lines of $PREFIX/logs/error.log:"
    tail -n 20 "$PREFIX/logs/error.log" >&2 || true
}

sse_url="$base/agent?expert=demo&query=$(urlencode "$query")"
echo
say "1) Server-Sent Events:"
say "   curl -sN '$sse_url'"
echo
curl -sSN --fail-with-body --max-time 120 "$sse_url" || { show_failure; die "the SSE request failed"; }

body="{\"expert\": \"demo\", \"query\": $(json_string "$query")}"
echo
say "2) NDJSON from a POST with a JSON body:"
say "   curl -sN -H 'Accept: application/x-ndjson' -H 'Content-Type: application/json' --data '$body' $base/agent"
echo
curl -sSN --fail-with-body --max-time 120 -H 'Accept: application/x-ndjson' \
    -H 'Content-Type: application/json' --data "$body" "$base/agent" \
    || { show_failure; die "the NDJSON request failed"; }
echo

# The page's files are served by the workers, which run as nobody: they
# must be able to read them where the repository is (when this runs as
# root; otherwise the workers run as this user).
page_ok=1
if [ "$(id -u)" -eq 0 ] && ! setpriv --reuid=65534 --regid=65534 --clear-groups \
        test -r "$PERSTACK_ROOT/conf-examples/page/index.html" 2>/dev/null; then
    page_ok=0
    warn "the workers' user (nobody) cannot read $PERSTACK_ROOT/conf-examples/page/:"
    warn "the page at $base/page/ answers 403 (a directory above is not world-readable)"
elif [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$base/page/")" != 200 ]; then
    page_ok=0
    warn "the page at $base/page/ does not answer 200; see $PREFIX/logs/error.log"
fi

# ---- 4. done --------------------------------------------------------------------
if [ "$keep" -eq 1 ]; then
    say "nginx keeps running (master pid $(demo_pid)) on $base/agent"
    [ "$page_ok" -eq 0 ] || say "open $base/page/ in a browser: the page runs agents as you watch"
    say "logs: $PREFIX/logs/; stop it with: scripts/demo.sh --stop"
    [ "$started_docker" -eq 0 ] || say "(--stop also stops the dockerd this demo started)"
else
    say "demo finished (with --keep, the page at $base/page/ runs agents in a browser)"
fi
