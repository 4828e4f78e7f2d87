#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian 12 (bookworm):
# build tools and libraries, Debian's nginx with nginx-dev, Docker Engine,
# Test::Nginx (libtest-nginx-perl, taken from Debian sid through a private
# apt configuration: the system's own sources stay bookworm-only), and for
# the browser test (t/024) Debian's Chromium and, with npm, playwright-core
# in t/browser/node_modules (exactly as t/browser/package-lock.json says),
# and for the metrics test (t/029) Debian's Prometheus (prometheus and
# promtool; the test runs a server of its own on a free loopback port),
# and for the benchmarks (scripts/bench.sh) wrk and h2load (nghttp2-client),
# and for the test variant "podman" (scripts/start-podman.sh) podman and
# catatonit (about 10 s more on a fresh machine, nothing started).
# Idempotent: when everything is there it only checks and returns.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PACKAGES=(
    build-essential libcurl4-openssl-dev libyajl-dev libpcre2-dev zlib1g-dev
    libssl-dev pkg-config dpkg-dev xz-utils docker.io nginx nginx-dev curl jq
    iptables
    ca-certificates openssl perl debian-archive-keyring
    chromium prometheus wrk nghttp2-client podman catatonit
)
# The browser test's driver runs on Node.js and is installed with npm.
# Debian's packages only where the machine has no npm: a Node.js of its own
# (NodeSource's nodejs) brings npm, and Debian's npm would conflict with it.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
# Test::Nginx is not in bookworm; sid's package is pure Perl.
SID_PACKAGE=libtest-nginx-perl
SID_APT_DIR="${PERSTACK_SID_APT_DIR:-/var/cache/perstack/apt-sid}"

start=$(now)
logdir="$PERSTACK_BUILD/logs"

# t/browser/node_modules, by "npm ci" from the lock file, when it is missing
# or was installed from another lock (its hash is kept beside the modules).
BROWSER_DIR="$PERSTACK_ROOT/t/browser"
browser_modules() {
    local lock="$BROWSER_DIR/package-lock.json"
    local stamp="$BROWSER_DIR/node_modules/.perstack-lock.sha256"
    local want
    [ -f "$lock" ] || return 0
    want="$(sha256sum <"$lock" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        say "t/browser/node_modules matches its lock file"
        return 0
    fi
    command -v npm >/dev/null 2>&1 || die "npm not found (package npm)"
    say "installing t/browser/node_modules (npm ci)"
    # (no install scripts: playwright-core has none, and nothing may fetch a
    # browser of its own; the test uses Debian's /usr/bin/chromium)
    (cd "$BROWSER_DIR" && run_logged "$logdir/npm-ci.log" \
        npm ci --no-audit --no-fund --ignore-scripts) \
        || die "npm ci in t/browser failed (see $logdir/npm-ci.log)"
    printf '%s\n' "$want" >"$stamp"
}

missing=()
need_sid=0
while read -r p; do
    [ -n "$p" ] || continue
    if [ "$p" = "$SID_PACKAGE" ]; then need_sid=1; else missing+=("$p"); fi
done < <(pkgs_missing "${PACKAGES[@]}" "$SID_PACKAGE")

if [ "${#missing[@]}" -eq 0 ] && [ "$need_sid" -eq 0 ]; then
    say "all packages already installed ($(elapsed "$start"))"
    browser_modules
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script needs Debian 12"

# Keep package maintainer scripts from starting services (a system nginx on
# port 80, dockerd) while we install: a policy-rc.d that forbids it.  Only
# one we created ourselves is removed afterwards.
POLICY=/usr/sbin/policy-rc.d
created_policy=0
tmpdirs=()
cleanup() {
    if [ "$created_policy" -eq 1 ]; then
        as_root rm -f "$POLICY"
    fi
    local d
    for d in "${tmpdirs[@]}"; do
        as_root rm -rf "$d"
    done
}
trap cleanup EXIT
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# temporary, from perstack scripts/setup.sh\nexit 101\n' \
        | as_root tee "$POLICY" >/dev/null
    as_root chmod 755 "$POLICY"
    created_policy=1
fi

mkdir -p "$logdir"

if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    run_logged "$logdir/apt-update.log" as_root apt-get -q update \
        || die "apt-get update failed (see $logdir/apt-update.log)"
    run_logged "$logdir/apt-install.log" \
        as_root apt-get -q install -y --no-install-recommends "${missing[@]}" \
        || die "apt-get install failed (see $logdir/apt-install.log)"
fi

if [ "$need_sid" -eq 1 ]; then
    mirror="$(debian_mirror)"
    say "installing $SID_PACKAGE from sid ($mirror, private apt config in $SID_APT_DIR)"
    as_root mkdir -p "$SID_APT_DIR"
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s sid main\n' \
        "$mirror" | as_root tee "$SID_APT_DIR/sources.list" >/dev/null
    run_logged "$logdir/apt-sid-update.log" private_apt "$SID_APT_DIR" update \
        || die "apt-get update of the private sid list failed (see $logdir/apt-sid-update.log)"
    dl="$(apt_download_dir)"
    tmpdirs+=("$dl")
    (cd "$dl" && run_logged "$logdir/apt-sid-download.log" \
        private_apt "$SID_APT_DIR" download "$SID_PACKAGE") \
        || die "could not download $SID_PACKAGE from sid (see $logdir/apt-sid-download.log)"
    deb="$(ls "$dl"/"$SID_PACKAGE"_*.deb 2>/dev/null | head -n 1)"
    [ -n "$deb" ] || die "no $SID_PACKAGE .deb downloaded"
    # Its Perl dependencies come from bookworm through the system's sources;
    # refresh those lists if the step above did not.
    if [ "${#missing[@]}" -eq 0 ]; then
        run_logged "$logdir/apt-update.log" as_root apt-get -q update \
            || die "apt-get update failed (see $logdir/apt-update.log)"
    fi
    run_logged "$logdir/apt-sid-install.log" \
        as_root apt-get -q install -y --no-install-recommends "$deb" \
        || die "installing $deb failed (see $logdir/apt-sid-install.log)"
fi

still="$(pkgs_missing "${PACKAGES[@]}" "$SID_PACKAGE" | tr '\n' ' ')"
[ -z "$still" ] || die "packages still not installed: $still"
say "done: nginx $(dpkg-query -W -f='${Version}' nginx)," \
    "docker.io $(dpkg-query -W -f='${Version}' docker.io)," \
    "chromium $(dpkg-query -W -f='${Version}' chromium)," \
    "prometheus $(dpkg-query -W -f='${Version}' prometheus)," \
    "podman $(dpkg-query -W -f='${Version}' podman)," \
    "$SID_PACKAGE $(dpkg-query -W -f='${Version}' "$SID_PACKAGE") ($(elapsed "$start"))"
browser_modules
