#!/usr/bin/env bash
# Make sure a Podman API service (Podman's Docker-compatible Engine API)
# answers on a socket of its own, $PERSTACK_PODMAN_SOCK (default
# build/podman/podman.sock), and that it has the demo image.  A service
# that already answers there is left alone (and no pid file is written);
# otherwise "podman system service --time=0" is started in the background,
# its log in build/podman/podman.log and its pid in build/podman.pid
# (scripts/stop-podman.sh stops exactly that one), with the configuration
# build/podman/containers.conf (CONTAINERS_CONF):
#   default_ulimits = []   Podman's default nofile limit is above what
#                          these machines allow: no container would start
#   init_path              Debian's catatonit, for "Init": true
#   cgroup_manager         cgroupfs: no systemd needed
#   events_logger          a file of its own (no journald needed), for the
#                          /events the tests read
# The demo image comes from the Docker Engine (docker save, then Podman's
# POST /images/load) when Podman has no image of that name or another one;
# run scripts/build-demo-image.sh first.  Needs root and the packages
# podman and catatonit (scripts/setup.sh).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

WAIT_SECONDS="${PERSTACK_PODMAN_WAIT:-30}"
IMAGE="${PERSTACK_DEMO_IMAGE:-perstack-demo:latest}"
DIR="$PERSTACK_BUILD/podman"
PIDFILE="$PERSTACK_BUILD/podman.pid"
LOG="$DIR/podman.log"
CONF="$DIR/containers.conf"

start=$(now)

# The demo image, as the Docker Engine has it (the same image id).
load_image() {
    local want have
    docker_alive || die "the Docker Engine does not answer on" \
        "$PERSTACK_DOCKER_SOCK: it holds the demo image (start-docker.sh)"
    want="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null)" \
        || die "no image $IMAGE on the Docker Engine (build-demo-image.sh)"
    have="$(curl -s --max-time 10 --unix-socket "$PERSTACK_PODMAN_SOCK" \
                "http://localhost/images/$IMAGE/json" \
            | jq -r '.Id // empty' 2>/dev/null || true)"
    if [ "$have" = "$want" ] || [ "sha256:$have" = "$want" ]; then
        say "Podman has $IMAGE (${want:7:12})"
        return 0
    fi
    say "loading $IMAGE into Podman (${want:7:12})"
    docker save "$IMAGE" \
        | curl -fsS --max-time 120 --unix-socket "$PERSTACK_PODMAN_SOCK" \
               -X POST -H 'Content-Type: application/x-tar' \
               --data-binary @- http://localhost/images/load >/dev/null \
        || die "could not load $IMAGE into Podman"
    have="$(curl -s --max-time 10 --unix-socket "$PERSTACK_PODMAN_SOCK" \
                "http://localhost/images/$IMAGE/json" \
            | jq -r '.Id // empty' 2>/dev/null || true)"
    [ "$have" = "$want" ] || [ "sha256:$have" = "$want" ] \
        || die "Podman's $IMAGE is ${have:-missing}, not $want"
}

if podman_alive; then
    say "Podman API service already answers on $PERSTACK_PODMAN_SOCK"
    load_image
    exit 0
fi

command -v podman >/dev/null 2>&1 \
    || die "podman not found: run scripts/setup.sh first (packages podman, catatonit)"
[ -x /usr/bin/catatonit ] \
    || die "/usr/bin/catatonit not found: run scripts/setup.sh first (package catatonit)"
[ "$(id -u)" -eq 0 ] || die "the Podman API service is not running and only root starts it here"

mkdir -p "$DIR"

# A pid file from an earlier start: if that service is still alive it may
# be starting up or shutting down; wait for it below instead of starting
# another.
pid=""
if [ -f "$PIDFILE" ]; then
    old="$(cat "$PIDFILE" 2>/dev/null || true)"
    if pid_is "$old" podman; then
        pid="$old"
        say "waiting for the Podman API service (pid $pid) started earlier"
    else
        rm -f "$PIDFILE"
    fi
fi

if [ -z "$pid" ]; then
    cat >"$CONF" <<CONF
# Written by scripts/start-podman.sh: the Podman API service of the tests.
[containers]
default_ulimits = []
init_path = "/usr/bin/catatonit"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$DIR/events.log"
CONF
    # (a socket left by a service that is gone)
    rm -f "$PERSTACK_PODMAN_SOCK"
    say "starting the Podman API service on $PERSTACK_PODMAN_SOCK (log: $LOG)"
    # Its own session, so a Ctrl-C in this terminal does not hit it;
    # stop-podman.sh stops it.
    CONTAINERS_CONF="$CONF" setsid podman system service --time=0 \
        "unix://$PERSTACK_PODMAN_SOCK" </dev/null >"$LOG" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$PIDFILE"
fi

deadline=$(( $(date +%s) + WAIT_SECONDS ))
while ! podman_alive; do
    if ! pid_is "$pid" podman; then
        rm -f "$PIDFILE"
        echo "---- last lines of $LOG ----" >&2
        tail -n 20 "$LOG" >&2 || true
        die "the Podman API service (pid $pid) exited before answering"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        tail -n 20 "$LOG" >&2 || true
        die "the Podman API service (pid $pid) did not answer on" \
            "$PERSTACK_PODMAN_SOCK within ${WAIT_SECONDS}s"
    fi
    sleep 0.1
done
say "Podman API service ready (pid $pid, $(elapsed "$start"))"
load_image
