#!/usr/bin/env bash
# Stop the dockerd that scripts/start-docker.sh started, and only that one:
# the pid in build/dockerd.pid, if it is still a dockerd.  A daemon started by
# anyone else is left alone.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

WAIT_SECONDS="${PERSTACK_DOCKER_STOP_WAIT:-40}"
PIDFILE="$PERSTACK_BUILD/dockerd.pid"

if [ ! -f "$PIDFILE" ]; then
    say "no dockerd started by us (no $PIDFILE): nothing to stop"
    exit 0
fi
pid="$(cat "$PIDFILE" 2>/dev/null || true)"
if ! pid_is "$pid" dockerd; then
    say "dockerd from $PIDFILE (pid ${pid:-?}) is not running: removing the stale pid file"
    rm -f "$PIDFILE"
    exit 0
fi

say "stopping dockerd (pid $pid)"
kill -TERM "$pid"
# dockerd gives running containers up to 15 s to stop on shutdown.
deadline=$(( $(date +%s) + WAIT_SECONDS ))
while pid_is "$pid" dockerd; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        warn "dockerd (pid $pid) still running after ${WAIT_SECONDS}s: sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
        break
    fi
    sleep 0.1
done
rm -f "$PIDFILE"
say "dockerd stopped"
