#!/usr/bin/env bash
# Stop the Podman API service that scripts/start-podman.sh started, and only
# that one: the pid in build/podman.pid, if it is still a podman process.
# A service started by anyone else is left alone.  Containers are not
# Podman's service's own processes: a stopped service leaves none running
# that it started.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

WAIT_SECONDS="${PERSTACK_PODMAN_STOP_WAIT:-20}"
PIDFILE="$PERSTACK_BUILD/podman.pid"

if [ ! -f "$PIDFILE" ]; then
    say "no Podman API service started by us (no $PIDFILE): nothing to stop"
    exit 0
fi
pid="$(cat "$PIDFILE" 2>/dev/null || true)"
if ! pid_is "$pid" podman; then
    say "Podman API service from $PIDFILE (pid ${pid:-?}) is not running: removing the stale pid file"
    rm -f "$PIDFILE"
    exit 0
fi

say "stopping the Podman API service (pid $pid)"
kill -TERM "$pid"
deadline=$(( $(date +%s) + WAIT_SECONDS ))
while pid_is "$pid" podman; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        warn "Podman API service (pid $pid) still running after ${WAIT_SECONDS}s: sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
        break
    fi
    sleep 0.1
done
rm -f "$PIDFILE"
say "Podman API service stopped"
