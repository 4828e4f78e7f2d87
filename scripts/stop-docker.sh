#!/usr/bin/env bash
# Stop the dockerd that scripts/start-docker.sh started, and only that one:
# the pid in build/dockerd.pid, if it is still a dockerd.  A daemon started by
# anyone else is left alone.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# dockerd gives running containers up to 15 s to stop on shutdown.
stop_pidfile "$PERSTACK_BUILD/dockerd.pid" dockerd "${PERSTACK_DOCKER_STOP_WAIT:-40}" "dockerd"
