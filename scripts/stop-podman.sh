#!/usr/bin/env bash
# Stop the Podman API service that scripts/start-podman.sh started, and only
# that one: the pid in build/podman.pid, if it is still a podman process.
# A service started by anyone else is left alone.  Containers are not
# Podman's service's own processes: a stopped service leaves none running
# that it started.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stop_pidfile "$PERSTACK_BUILD/podman.pid" podman "${PERSTACK_PODMAN_STOP_WAIT:-20}" "Podman API service"
