# shellcheck shell=bash disable=SC2034
# Shared helpers for the scripts in this folder.  Source it, do not run it:
#   . "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# It sets PERSTACK_ROOT (the repository root, found from this file's own
# path), PERSTACK_BUILD (PERSTACK_ROOT/build) and defines small helpers.

PERSTACK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PERSTACK_BUILD="$PERSTACK_ROOT/build"
PERSTACK_DOCKER_SOCK="${PERSTACK_DOCKER_SOCK:-/var/run/docker.sock}"
# The Podman API service of scripts/start-podman.sh: a socket of its own.
PERSTACK_PODMAN_SOCK="${PERSTACK_PODMAN_SOCK:-$PERSTACK_BUILD/podman/podman.sock}"

# Name shown in front of every message: the calling script's name.
PERSTACK_ME="${PERSTACK_ME:-$(basename "$0" .sh)}"

# Every apt/dpkg call is non-interactive and must not offer to restart
# services (needrestart is installed on these machines).
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1

say() { printf '%s: %s\n' "$PERSTACK_ME" "$*"; }
warn() { printf '%s: warning: %s\n' "$PERSTACK_ME" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PERSTACK_ME" "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -E "$@"
    else
        die "need root (or sudo) for: $*"
    fi
}

# Run "$@" with its output in LOG; on failure show the log's tail and fail.
run_logged() {
    local log="$1"; shift
    mkdir -p "$(dirname "$log")"
    if ! "$@" >"$log" 2>&1; then
        printf '%s: error: command failed: %s\n' "$PERSTACK_ME" "$*" >&2
        printf '%s: ---- last lines of %s ----\n' "$PERSTACK_ME" "$log" >&2
        tail -n 40 "$log" >&2
        printf '%s: ---- end of %s ----\n' "$PERSTACK_ME" "$log" >&2
        return 1
    fi
}

# Seconds since the epoch with a fraction, for timings.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# True when package $1 is installed (configured).
pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# Print, one a line, those of the packages "$@" that are not installed
# (one dpkg-query call for all of them).
pkgs_missing() {
    local installed
    installed="$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "$@" \
                 2>/dev/null | awk '$1 == "ii" { print $2 }')" || true
    local p
    for p in "$@"; do
        printf '%s\n' "$installed" | grep -qxF "$p" || printf '%s\n' "$p"
    done
}

# This system's Debian codename (bookworm on Debian 12).
debian_codename() {
    local c=""
    if [ -r /etc/os-release ]; then
        c="$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")"
    fi
    printf '%s\n' "${c:-bookworm}"
}

# The URI of the Debian mirror the system's own apt sources use for the main
# suite (not the security one).  Override with PERSTACK_DEBIAN_MIRROR.
debian_mirror() {
    if [ -n "${PERSTACK_DEBIAN_MIRROR:-}" ]; then
        printf '%s\n' "${PERSTACK_DEBIAN_MIRROR%/}"
        return
    fi
    local codename uri=""
    codename="$(debian_codename)"
    local f
    # deb822 files: a stanza whose Suites holds the codename itself.
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        uri="$(awk -v want="$codename" '
            function flush() {
                if (enabled && uris != "" && suites ~ ("(^| )" want "( |$)"))
                    { split(uris, u, " "); print u[1]; found = 1; exit }
                uris = ""; suites = ""; enabled = 1
            }
            BEGIN { enabled = 1 }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            tolower($1) == "uris:"    { $1 = ""; uris = $0; sub(/^ +/, "", uris) }
            tolower($1) == "suites:"  { $1 = ""; suites = $0; sub(/^ +/, "", suites) }
            tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
            END { if (!found) flush() }
        ' "$f")"
        [ -n "$uri" ] && break
    done
    # One-line format: deb [options] URI SUITE COMPONENTS...
    if [ -z "$uri" ]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -r "$f" ] || continue
            uri="$(awk -v want="$codename" '
                $1 == "deb" {
                    i = 2
                    if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                    if ($(i + 1) == want) { print $i; exit }
                }' "$f")"
            [ -n "$uri" ] && break
        done
    fi
    printf '%s\n' "${uri:-http://deb.debian.org/debian}" | sed 's:/*$::'
}

# True when the Docker Engine answers on its socket.
docker_alive() {
    [ "$(curl -s --max-time 2 --unix-socket "$PERSTACK_DOCKER_SOCK" \
            http://localhost/_ping 2>/dev/null)" = "OK" ]
}

# True when the Podman API service answers on its socket.
podman_alive() {
    [ "$(curl -s --max-time 2 --unix-socket "$PERSTACK_PODMAN_SOCK" \
            http://localhost/_ping 2>/dev/null)" = "OK" ]
}

# True when pid $1 is a live (not zombie) process named $2.
pid_is() {
    [[ "$1" =~ ^[0-9]+$ ]] || return 1
    [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
    ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# Run apt-get with a private configuration rooted at directory $1 (its own
# source list $1/sources.list, package lists and cache), so the system's own
# sources and lists stay as they are.  The rest of the arguments go to apt-get.
# The mirror these machines reach serves a frozen copy of the archive, whose
# sid Release file is past its Valid-Until date: signatures are still checked,
# the date is not (the machine image's own apt.conf.d says the same).
private_apt() {
    local dir="$1"; shift
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/parts.d"
    as_root apt-get -q \
        -o Dir::Etc::SourceList="$dir/sources.list" \
        -o Dir::Etc::SourceParts="$dir/parts.d" \
        -o Dir::State::Lists="$dir/lists" \
        -o Dir::Cache="$dir/cache" \
        -o Acquire::Check-Valid-Until=false \
        -o Acquire::Check-Date=false \
        "$@"
}

# A directory the _apt sandbox user may write into (apt-get download/source
# warn, and download unsandboxed, otherwise).  Printed on stdout.
apt_download_dir() {
    local d
    d="$(mktemp -d "${TMPDIR:-/tmp}/perstack-apt.XXXXXX")"
    if id _apt >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        chown _apt "$d"
    fi
    printf '%s\n' "$d"
}

# A free TCP port on 127.0.0.1, for an nginx of a script's own.
free_port() {
    perl -MSocket -e '
        for (1 .. 50) {
            my $p = 20000 + int rand 30000;
            socket(my $s, PF_INET, SOCK_STREAM, 0) or die;
            setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1);
            if (bind($s, pack_sockaddr_in($p, inet_aton("127.0.0.1")))) { print $p; exit 0 }
        }
        exit 1'
}

# The "user" line of such an nginx: its workers must reach the Docker
# socket $1: as nobody in the socket's group when that is a group of its
# own (as in conf-examples/demo.conf), else as root.
worker_user_line() {
    local sock="$1" group

    if [ "$(id -u)" -ne 0 ]; then
        echo "# (not root: the workers run as $(id -un))"
        return
    fi

    group="$(stat -Lc %G "$sock" 2>/dev/null || true)"

    if [ -n "$group" ] && [ "$group" != root ] && [ "$group" != UNKNOWN ] \
            && [ "$(stat -Lc %a "$sock")" -ge 660 ]; then
        echo "user nobody $group;"
    else
        echo "user root;"
    fi
}

# Stops the process whose pid PIDFILE holds, if it is still NAME: SIGTERM,
# then SIGKILL after WAIT seconds; the pid file goes either way.
#   stop_pidfile PIDFILE NAME WAIT WHAT
stop_pidfile() {
    local pidfile="$1" name="$2" wait="$3" what="$4" pid deadline
    if [ ! -f "$pidfile" ]; then
        say "no $what started by us (no $pidfile): nothing to stop"
        return 0
    fi
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    if ! pid_is "$pid" "$name"; then
        say "$what from $pidfile (pid ${pid:-?}) is not running: removing the stale pid file"
        rm -f "$pidfile"
        return 0
    fi
    say "stopping $what (pid $pid)"
    kill -TERM "$pid"
    deadline=$(( $(date +%s) + wait ))
    while pid_is "$pid" "$name"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            warn "$what (pid $pid) still running after ${wait}s: sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.1
    done
    rm -f "$pidfile"
    say "$what stopped"
}
