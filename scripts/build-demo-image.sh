#!/usr/bin/env bash
# Build the demo image perstack-demo:latest: compile the demo agent (every
# .c file of demo/) into a static binary build/demo/perstack, then "docker
# build" with build/demo as the context (the binary and demo/perstack.toml)
# and the repository's Dockerfile.
#
# Usage: scripts/build-demo-image.sh
# Environment: CC (default gcc), PERSTACK_DEMO_IMAGE (default
# perstack-demo:latest), PERSTACK_DOCKER_SOCK (default /var/run/docker.sock).
#
# Idempotent: the binary is replaced only when the compiler's output
# differs, so an unchanged tree rebuilds the same image from the cache.

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CC="${CC:-gcc}"
IMAGE="${PERSTACK_DEMO_IMAGE:-perstack-demo:latest}"
SRC=("$PERSTACK_ROOT"/demo/*.c)
OUT="$PERSTACK_BUILD/demo"
BIN="$OUT/perstack"

command -v "$CC" >/dev/null 2>&1 \
    || die "no C compiler \"$CC\" (apt-get install build-essential)"
command -v docker >/dev/null 2>&1 \
    || die "no docker command (apt-get install docker.io)"

mkdir -p "$OUT"

# The context holds only what the Dockerfile copies.
find "$OUT" -mindepth 1 -maxdepth 1 ! -name perstack ! -name perstack.toml \
    -exec rm -rf {} +
cp -p "$PERSTACK_ROOT/demo/perstack.toml" "$OUT/perstack.toml"

tmp="$(mktemp "$OUT/.perstack.XXXXXX")"
trap 'rm -f "$tmp"' EXIT

"$CC" -std=c99 -static -O2 -Wall -Wextra -Werror -o "$tmp" "${SRC[@]}" \
    || die "cannot compile demo/*.c (static linking needs libc6-dev)"

if [ -f "$BIN" ] && cmp -s "$tmp" "$BIN"; then
    say "build/demo/perstack is up to date"
else
    chmod 0755 "$tmp"
    mv -f "$tmp" "$BIN"
    say "compiled build/demo/perstack"
fi

docker_alive \
    || die "the Docker Engine does not answer on $PERSTACK_DOCKER_SOCK" \
           "(start it: nohup dockerd >/tmp/dockerd.log 2>&1 &)"

log="$PERSTACK_BUILD/logs/build-demo-image.log"
start="$(now)"

# The classic builder: no buildx plugin on these machines.
DOCKER_BUILDKIT=0 run_logged "$log" \
    docker build --quiet -t "$IMAGE" -f "$PERSTACK_ROOT/Dockerfile" "$OUT"

say "built $IMAGE ($(docker image inspect -f '{{.Id}}' "$IMAGE" | cut -c1-19)," \
    "$(elapsed "$start"))"
