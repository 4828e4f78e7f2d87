#!/usr/bin/env bash
# Make sure a Docker Engine answers on /var/run/docker.sock.  A daemon that
# already answers is left alone (and no pid file is written); otherwise
# dockerd is started in the background, its log in build/dockerd.log and its
# pid in build/dockerd.pid (scripts/stop-docker.sh stops exactly that one).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

WAIT_SECONDS="${PERSTACK_DOCKER_WAIT:-30}"
# Extra dockerd arguments, split on spaces (for a second daemon in tests:
# PERSTACK_DOCKER_SOCK=/tmp/d.sock PERSTACK_DOCKERD_ARGS="-H unix:///tmp/d.sock ...").
read -r -a DOCKERD_ARGS <<<"${PERSTACK_DOCKERD_ARGS:-}"
PIDFILE="$PERSTACK_BUILD/dockerd.pid"
LOG="$PERSTACK_BUILD/dockerd.log"

if docker_alive; then
    say "Docker Engine already running"
    exit 0
fi

command -v dockerd >/dev/null 2>&1 \
    || die "dockerd not found: run scripts/setup.sh first (package docker.io)"
[ "$(id -u)" -eq 0 ] || die "dockerd is not running and only root can start it"

mkdir -p "$PERSTACK_BUILD"

# A pid file from an earlier start: if that dockerd is still alive it may be
# starting up or shutting down; wait for it below instead of starting another.
pid=""
if [ -f "$PIDFILE" ]; then
    old="$(cat "$PIDFILE" 2>/dev/null || true)"
    if pid_is "$old" dockerd; then
        pid="$old"
        say "waiting for dockerd (pid $pid) started earlier"
    else
        rm -f "$PIDFILE"
    fi
fi

if [ -z "$pid" ]; then
    say "starting dockerd (log: $LOG)"
    # Its own session, so a Ctrl-C in this terminal does not hit it;
    # stop-docker.sh stops it.
    setsid dockerd ${DOCKERD_ARGS[@]+"${DOCKERD_ARGS[@]}"} </dev/null >"$LOG" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$PIDFILE"
fi

start=$(now)
deadline=$(( $(date +%s) + WAIT_SECONDS ))
while ! docker_alive; do
    if ! pid_is "$pid" dockerd; then
        rm -f "$PIDFILE"
        echo "---- last lines of $LOG ----" >&2
        tail -n 20 "$LOG" >&2 || true
        die "dockerd (pid $pid) exited before answering"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        tail -n 20 "$LOG" >&2 || true
        die "dockerd (pid $pid) did not answer on $PERSTACK_DOCKER_SOCK within ${WAIT_SECONDS}s"
    fi
    sleep 0.1
done
say "Docker Engine ready (dockerd pid $pid, $(elapsed "$start"))"
