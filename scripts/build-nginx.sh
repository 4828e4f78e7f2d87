#!/usr/bin/env bash
# Build the module against one or more nginx trees:
#   scripts/build-nginx.sh [VARIANT...]     (default: 1.26 1.22 debian)
# VARIANT
#   1.26    nginx 1.26.3 with Debian 13's patches (source package from Debian's
#           pool), full build: build/nginx-1.26/objs/{nginx,*.so}
#   1.22    nginx 1.22.1 with Debian 12's patches (apt-get source through a
#           private apt configuration), full build: build/nginx-1.22/objs/...
#   debian  the module alone, for Debian's own /usr/sbin/nginx, from nginx-dev's
#           tree and configure flags: build/nginx-debian/objs/*.so
#   asan    nginx 1.26.3 and the module with AddressSanitizer and
#           UndefinedBehaviorSanitizer (scripts/asan.sh runs the suite on
#           it): build/nginx-asan/objs/...  Not among the defaults.
# Sources are fetched and unpacked once into build/src/ and reused.  A build
# tree is configured once; later runs only run make, so after a change to the
# module's sources only the module is rebuilt.  Its configuration is redone
# when the configure arguments, the module's `config` file or the source tree
# change.  Logs: build/logs/nginx-VARIANT-{configure,make}.log.
#
# Environment:
#   PERSTACK_MODULE_DIR  module to build (default: this repository)
#   PERSTACK_CC_OPT      extra compiler options (e.g. "-fsanitize=address")
#   PERSTACK_LD_OPT      extra linker options
#   PERSTACK_JOBS        make -j (default: nproc)
# Standard output: the absolute path of each built .so, one a line.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Progress goes to stderr; stdout carries only the resulting paths.
exec 3>&1 1>&2
say() { printf '%s: %s\n' "$PERSTACK_ME" "$*" >&2; }

MODULE_NAME=ngx_http_perstack_module
MODULE_DIR="${PERSTACK_MODULE_DIR:-$PERSTACK_ROOT}"
[ -d "$MODULE_DIR" ] || die "module directory $MODULE_DIR does not exist"
MODULE_DIR="$(cd "$MODULE_DIR" && pwd -P)"
[ -f "$MODULE_DIR/config" ] || die "$MODULE_DIR/config not found (not an nginx module)"
JOBS="${PERSTACK_JOBS:-$(nproc 2>/dev/null || echo 2)}"
SRC="$PERSTACK_BUILD/src"
LOGS="$PERSTACK_BUILD/logs"

# nginx 1.26.3 as Debian 13 (trixie) ships it, fetched from the pool by file
# name (the only trixie nginx files this mirror serves; the orig tarball's
# checksum matches trixie's signed Sources index); checksums pinned here.
NGX126_UPSTREAM=1.26.3
NGX126_DSC=nginx_1.26.3-3+deb13u1.dsc
NGX126_FILES=(
    "nginx_1.26.3-3+deb13u1.dsc 3d2b08a2d04f0ebc59be4d03969f643b0c7990b5b580db050da4abd57b059266"
    "nginx_1.26.3.orig.tar.gz 69ee2b237744036e61d24b836668aad3040dda461fe6f570f1787eab570c75aa"
    "nginx_1.26.3.orig.tar.gz.asc faa36c1c57af475445b2a50d203fea314ed1db6a3399ed95c79ae7e99478a9f3"
    "nginx_1.26.3-3+deb13u1.debian.tar.xz ea14c101a68b5d67548627021cca37fe920d291b423ccf444c062ec42cf0c8b5"
)

FULL_CONFIGURE_ARGS=(
    --with-compat --with-debug --with-http_ssl_module --with-http_v2_module --with-threads
)

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

variants=()
for a in "$@"; do
    case "$a" in
        -h|--help) usage; exit 0 ;;
        1.26|1.22|debian|asan) variants+=("$a") ;;
        *) die "unknown variant '$a' (expected 1.26, 1.22, debian or asan)" ;;
    esac
done
[ "${#variants[@]}" -gt 0 ] || variants=(1.26 1.22 debian)

mkdir -p "$SRC" "$LOGS"

sha256_of() { sha256sum "$1" | awk '{ print $1 }'; }

# Unpack the source package $1 (.dsc) into directory $2 (atomically).
unpack_dsc() {
    local dsc="$1" dest="$2" tmp="$2.tmp.$$" log="$3"
    rm -rf "$tmp"
    run_logged "$log" dpkg-source --no-copy -x "$dsc" "$tmp" \
        || { rm -rf "$tmp"; die "dpkg-source -x $dsc failed (see $log)"; }
    printf '%s\n' "$(basename "$dsc")" >"$tmp/.perstack-source"
    rm -rf "$dest"
    mv "$tmp" "$dest"
}

# Prints the path of the unpacked 1.26.3 tree.
fetch_1_26() {
    local dest="$SRC/nginx-$NGX126_UPSTREAM" dl="$SRC/dl-1.26"
    if [ -f "$dest/.perstack-source" ]; then
        printf '%s\n' "$dest"; return
    fi
    local mirror entry f sum url
    mirror="$(debian_mirror)"
    mkdir -p "$dl"
    for entry in "${NGX126_FILES[@]}"; do
        f="${entry%% *}"; sum="${entry##* }"
        if [ -f "$dl/$f" ] && [ "$(sha256_of "$dl/$f")" = "$sum" ]; then
            continue
        fi
        url="$mirror/pool/main/n/nginx/$f"
        say "1.26: downloading $url"
        curl -fsS --retry 3 --connect-timeout 20 --max-time 600 \
            -o "$dl/$f.part" "$url" || die "download of $url failed"
        [ "$(sha256_of "$dl/$f.part")" = "$sum" ] \
            || die "checksum mismatch for $url (expected $sum)"
        mv "$dl/$f.part" "$dl/$f"
    done
    say "1.26: unpacking $NGX126_DSC"
    unpack_dsc "$dl/$NGX126_DSC" "$dest" "$LOGS/nginx-1.26-unpack.log"
    printf '%s\n' "$dest"
}

# Prints the path of the unpacked 1.22.1 tree (Debian 12's source package).
fetch_1_22() {
    local dest="$SRC/nginx-1.22.1" dl="$SRC/dl-1.22" aptdir="$SRC/apt-bookworm-src"
    if [ -f "$dest/.perstack-source" ]; then
        printf '%s\n' "$dest"; return
    fi
    local mirror codename tmp dsc
    mirror="$(debian_mirror)"
    codename="$(debian_codename)"
    # bookworm and bookworm-updates only: the security suite's sources are
    # not served on these machines.
    mkdir -p "$aptdir"
    printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
        "$mirror" "$codename" "$mirror" "$codename-updates" >"$aptdir/sources.list"
    say "1.22: apt-get source nginx ($codename, $codename-updates from $mirror)"
    run_logged "$LOGS/nginx-1.22-apt-update.log" private_apt "$aptdir" update \
        || die "apt-get update of the private deb-src list failed (see $LOGS/nginx-1.22-apt-update.log)"
    tmp="$(apt_download_dir)"
    if ! (cd "$tmp" && run_logged "$LOGS/nginx-1.22-apt-source.log" \
            private_apt "$aptdir" source --download-only nginx); then
        rm -rf "$tmp"
        die "apt-get source nginx failed (see $LOGS/nginx-1.22-apt-source.log)"
    fi
    rm -rf "$dl"; mkdir -p "$dl"
    cp "$tmp"/* "$dl"/
    rm -rf "$tmp" "$aptdir"
    dsc="$(ls "$dl"/nginx_1.22.1-*.dsc 2>/dev/null | head -n 1)"
    [ -n "$dsc" ] || die "apt-get source brought no nginx_1.22.1-*.dsc (got: $(ls "$dl"))"
    say "1.22: unpacking $(basename "$dsc")"
    unpack_dsc "$dsc" "$dest" "$LOGS/nginx-1.22-unpack.log"
    printf '%s\n' "$dest"
}

# Configure (when needed) and build one variant.
build_variant() {
    local v="$1" start srcdir srcid bdir stamp newstamp
    local -a args
    local cc_opt ld_opt
    start=$(now)
    bdir="$PERSTACK_BUILD/nginx-$v"
    case "$v" in
        1.26|asan) srcdir="$(fetch_1_26)" ;;
        1.22) srcdir="$(fetch_1_22)" ;;
        debian)
            srcdir=/usr/share/nginx/src
            [ -f "$srcdir/conf_flags" ] \
                || die "$srcdir/conf_flags not found: run scripts/setup.sh (package nginx-dev)"
            ;;
    esac
    if [ "$v" = debian ]; then
        srcid="nginx-dev $(dpkg-query -W -f='${Version}' nginx-dev 2>/dev/null)"
        local NGX_CONF_FLAGS=()
        # shellcheck disable=SC1091
        . "$srcdir/conf_flags"
        # As Debian's debian/rules builds nginx itself.
        # (dpkg-buildflags maps the current directory in -ffile-prefix-map:
        # ask from a fixed one so the flags do not depend on our caller.)
        cc_opt="$(cd "$PERSTACK_ROOT" && dpkg-buildflags --get CFLAGS) -fPIC"
        cc_opt="$cc_opt $(cd "$PERSTACK_ROOT" && dpkg-buildflags --get CPPFLAGS)"
        ld_opt="$(cd "$PERSTACK_ROOT" && dpkg-buildflags --get LDFLAGS) -fPIC"
        args=("${NGX_CONF_FLAGS[@]}")
        [ -z "${PERSTACK_CC_OPT:-}" ] || cc_opt="$cc_opt $PERSTACK_CC_OPT"
        [ -z "${PERSTACK_LD_OPT:-}" ] || ld_opt="$ld_opt $PERSTACK_LD_OPT"
        args+=("--with-cc-opt=$cc_opt" "--with-ld-opt=$ld_opt")
    else
        srcid="$(cat "$srcdir/.perstack-source")"
        args=("${FULL_CONFIGURE_ARGS[@]}")
        cc_opt="${PERSTACK_CC_OPT:-}"
        ld_opt="${PERSTACK_LD_OPT:-}"
        if [ "$v" = asan ]; then
            # -O1 and frame pointers for readable reports.  nginx's core
            # passes NULL with a length of 0 to memcpy() and reads unaligned
            # fields on purpose: those two checks would stop every start.
            cc_opt="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize=nonnull-attribute,alignment -fno-sanitize-recover=undefined $cc_opt"
            ld_opt="-fsanitize=address,undefined $ld_opt"
        fi
        [ -z "$cc_opt" ] || args+=("--with-cc-opt=$cc_opt")
        [ -z "$ld_opt" ] || args+=("--with-ld-opt=$ld_opt")
    fi
    args+=("--add-dynamic-module=$MODULE_DIR")

    newstamp="$(printf 'source: %s\nmodule: %s\nconfig: %s\ncc: %s\nargs:' \
        "$srcid" "$MODULE_DIR" "$(sha256_of "$MODULE_DIR/config")" \
        "$(cc --version 2>/dev/null | head -n 1)"; printf ' %q' "${args[@]}"; echo)"
    stamp="$bdir/.perstack-stamp"
    if [ ! -f "$bdir/objs/Makefile" ] || [ ! -f "$stamp" ] \
            || [ "$(cat "$stamp")" != "$newstamp" ]; then
        say "$v: configuring (log: $LOGS/nginx-$v-configure.log)"
        rm -rf "$bdir"
        cp -a "$srcdir" "$bdir"
        rm -f "$bdir/.perstack-source"
        # CFLAGS in the environment would make nginx's configure drop its own
        # warning flags and -Werror: keep them out.
        (cd "$bdir" && run_logged "$LOGS/nginx-$v-configure.log" \
            env -u CFLAGS -u CPPFLAGS -u LDFLAGS ./configure "${args[@]}") \
            || { rm -rf "$bdir"; die "$v: configure failed (see $LOGS/nginx-$v-configure.log)"; }
        grep -q -- '-Werror' "$bdir/objs/Makefile" \
            || die "$v: configure did not enable -Werror (see $bdir/objs/Makefile)"
        printf '%s\n' "$newstamp" >"$stamp"
    fi

    say "$v: compiling (log: $LOGS/nginx-$v-make.log)"
    if [ "$v" = debian ]; then
        (cd "$bdir" && run_logged "$LOGS/nginx-$v-make.log" \
            env -u CFLAGS -u CPPFLAGS -u LDFLAGS make -j"$JOBS" -f objs/Makefile modules) \
            || die "$v: make failed (see $LOGS/nginx-$v-make.log)"
    else
        (cd "$bdir" && run_logged "$LOGS/nginx-$v-make.log" \
            env -u CFLAGS -u CPPFLAGS -u LDFLAGS make -j"$JOBS") \
            || die "$v: make failed (see $LOGS/nginx-$v-make.log)"
        [ -x "$bdir/objs/nginx" ] || die "$v: $bdir/objs/nginx was not built"
    fi
    [ -f "$bdir/objs/$MODULE_NAME.so" ] || die "$v: $bdir/objs/$MODULE_NAME.so was not built"
    say "$v: ok ($(elapsed "$start"))"
}

for v in "${variants[@]}"; do
    # One build per variant at a time (test.sh and demo.sh may overlap).
    exec 9>"$PERSTACK_BUILD/.nginx-$v.lock"
    flock 9
    build_variant "$v"
    exec 9>&-
done

for v in "${variants[@]}"; do
    printf '%s\n' "$PERSTACK_BUILD/nginx-$v/objs/$MODULE_NAME.so" >&3
done
