#!/usr/bin/env bash
# Memory of an nginx worker while ONE fast execution streams to R slow
# readers (durable executions: readers that attach to a running execution
# by its id and replay it from the start), for several R side by side.
#
# For each R (default "0 10 50") it starts an nginx of its own (prefix in a
# temporary directory, 127.0.0.1 and a free port, worker_processes 1, the
# module loaded with load_module as the tests load it, containers labelled
# bench.run=<run id>), and bench/readers-memory.pl:
#   - runs a small warm-up execution and takes the worker's baseline;
#   - starts `flood N` (demo image: N streamRunResult events at full
#     speed), read at full speed by the starting client;
#   - attaches R readers to it (NDJSON: GET /run?execution=ID&after=0; SSE:
#     Last-Event-ID: ID-0), each on a socket with a small receive buffer
#     reading 4 KiB every 100 ms, so that the kernel's buffers fill and
#     nginx must hold back; after the execution has ended (and a few
#     seconds more) the readers read at full speed to the end, and each
#     must have got every event;
#   - samples the worker's VmRSS and Private_Dirty (/proc/PID/smaps_rollup)
#     all along.
# Then nginx is stopped (by the pid it wrote), and the containers with the
# run's label, if any, are removed.  Last, a table: per R, the baseline,
# the peak, (peak - baseline) / R and the ratio to R=0.  Figures only:
# nothing is asserted about speed or memory.  Exit status 1 when a client
# did not get its whole stream (or R>0 was skipped), 2 on a set-up error.
#
# Before durable executions are in the module, a resume request is refused
# (400: no expert, no query): the run with R=0 works, and the runs with
# R>0 are skipped after a probe says so.  --reader-mode new tests the slow
# readers on such a module: each reader starts a plain execution of its own
# (flood --reader-events) instead of attaching.
#
# Prerequisites (nothing is built or installed here): the module built for
# Debian's nginx, `scripts/build-nginx.sh debian` (or --build, which runs
# it), /usr/sbin/nginx (package nginx), the Docker Engine
# (scripts/start-docker.sh) and the demo image (scripts/build-demo-image.sh).
#
# Usage: bench/readers-memory.sh [options]
#   --readers LIST       reader counts, space or comma separated (default "0 10 50")
#   --events N           events of the measured execution (default 200000)
#   --format F           ndjson (default) or sse
#   --reader-mode M      resume (default) or new (see above)
#   --reader-events N    events of a reader's own execution, --reader-mode
#                        new (default 20000)
#   --rcvbuf BYTES       a reader's SO_RCVBUF (default 4096)
#   --read-bytes BYTES   what a slow reader reads at a time (default 4096)
#   --read-interval S    how often (default 0.1)
#   --hold S             slow reading goes on this long after the
#                        execution ended (default 5)
#   --min-slow S         and at least this long in all (default 10)
#   --max-slow S         and at most this long (default 60)
#   --drain-timeout S    the readers' fast read to the end: at most (default 120)
#   --selftest           --reader-mode new --readers "0 2" --events 20000
#   --nginx PATH         the nginx binary (default /usr/sbin/nginx)
#   --module PATH        the module (default build/nginx-debian/objs/
#                        ngx_http_perstack_module.so of this checkout)
#   --build              run scripts/build-nginx.sh debian first
#   --port N             port on 127.0.0.1 (default: a free one)
#   --out DIR            keep each run's prefix (conf, logs, records),
#                        samples (CSV) and figures (JSON) in DIR; by default
#                        they are in a temporary directory, removed at the end
#   -h, --help           this text
# Environment: PERSTACK_DEMO_IMAGE (default perstack-demo:latest),
# PERSTACK_DOCKER_SOCK (default /var/run/docker.sock), TMPDIR.
set -euo pipefail
PERSTACK_ME="readers-memory"
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

B="$PERSTACK_ROOT/bench"
S="$PERSTACK_ROOT/scripts"
MODULE_NAME=ngx_http_perstack_module
IMAGE="${PERSTACK_DEMO_IMAGE:-perstack-demo:latest}"
orig_pwd="$PWD"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
# (set-up errors exit 2; 1 is for a run whose clients did not get everything)
die() { printf '%s: error: %s\n' "$PERSTACK_ME" "$*" >&2; exit 2; }

readers_arg="0 10 50" events=200000 format=ndjson reader_mode=resume
reader_events=20000 rcvbuf=4096 read_bytes=4096 read_interval=0.1
hold=5 min_slow=10 max_slow=60 drain_timeout=120
nginx_bin=/usr/sbin/nginx module="" build=0 port="" out=""
need() { [ "$2" -ge 2 ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --readers) need "$1" $#; readers_arg="$2"; shift 2 ;;
        --events) need "$1" $#; events="$2"; shift 2 ;;
        --format) need "$1" $#; format="$2"; shift 2 ;;
        --reader-mode) need "$1" $#; reader_mode="$2"; shift 2 ;;
        --reader-events) need "$1" $#; reader_events="$2"; shift 2 ;;
        --rcvbuf) need "$1" $#; rcvbuf="$2"; shift 2 ;;
        --read-bytes) need "$1" $#; read_bytes="$2"; shift 2 ;;
        --read-interval) need "$1" $#; read_interval="$2"; shift 2 ;;
        --hold) need "$1" $#; hold="$2"; shift 2 ;;
        --min-slow) need "$1" $#; min_slow="$2"; shift 2 ;;
        --max-slow) need "$1" $#; max_slow="$2"; shift 2 ;;
        --drain-timeout) need "$1" $#; drain_timeout="$2"; shift 2 ;;
        --selftest) reader_mode=new readers_arg="0 2" events=20000; shift ;;
        --nginx) need "$1" $#; nginx_bin="$2"; shift 2 ;;
        --module) need "$1" $#; module="$2"; shift 2 ;;
        --build) build=1; shift ;;
        --port) need "$1" $#; port="$2"; shift 2 ;;
        --out) need "$1" $#; out="$2"; shift 2 ;;
        --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
isnum() { [[ "$2" =~ ^[0-9]+$ ]] || die "$1: not a whole number: $2"; }
issecs() { [[ "$2" =~ ^([0-9]+(\.[0-9]*)?|\.[0-9]+)$ ]] || die "$1: not a number of seconds: $2"; }
read -r -a readers <<<"${readers_arg//,/ }"
[ "${#readers[@]}" -gt 0 ] || die "--readers: none given"
for r in "${readers[@]}"; do isnum --readers "$r"; done
isnum --events "$events"; isnum --reader-events "$reader_events"
isnum --rcvbuf "$rcvbuf"; isnum --read-bytes "$read_bytes"
[ "$read_bytes" -ge 1 ] || die "--read-bytes: at least 1"
issecs --read-interval "$read_interval"; issecs --hold "$hold"
issecs --min-slow "$min_slow"; issecs --max-slow "$max_slow"
issecs --drain-timeout "$drain_timeout"
case "$format" in ndjson|sse) ;; *) die "--format: ndjson or sse" ;; esac
case "$reader_mode" in resume|new) ;; *) die "--reader-mode: resume or new" ;; esac
[ -z "$port" ] || isnum --port "$port"

abs_path() { case "$1" in /*) printf '%s\n' "$1" ;; *) realpath -m "$orig_pwd/$1" ;; esac; }

# ---- what runs ------------------------------------------------------------------
if [ -z "$module" ]; then
    module="$PERSTACK_BUILD/nginx-debian/objs/$MODULE_NAME.so"
    if [ "$build" -eq 1 ]; then
        say "building the module: scripts/build-nginx.sh debian"
        bash "$S/build-nginx.sh" debian >/dev/null || die "scripts/build-nginx.sh debian failed"
    fi
    [ -f "$module" ] || die "no module at $module: run scripts/build-nginx.sh debian (or --build)"
    if [ -n "$(find "$PERSTACK_ROOT/src" "$PERSTACK_ROOT/config" -newer "$module" -print -quit 2>/dev/null)" ]; then
        warn "$module is older than src/ or config: it may not be the code you mean to measure (--build rebuilds it)"
    fi
else
    [ "$build" -eq 0 ] || die "--build builds this checkout's module: not with --module"
    module="$(abs_path "$module")"
    [ -f "$module" ] || die "no module at $module"
fi
nginx_bin="$(abs_path "$nginx_bin")"
[ -x "$nginx_bin" ] || die "no nginx binary at $nginx_bin (package nginx)"
docker_alive || die "the Docker Engine does not answer on $PERSTACK_DOCKER_SOCK (scripts/start-docker.sh)"
[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$PERSTACK_DOCKER_SOCK" \
        "http://localhost/images/$IMAGE/json")" = 200 ] \
    || die "the image $IMAGE is not on the Docker Engine (scripts/build-demo-image.sh)"

# ---- where ------------------------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/perstack-bench.XXXXXX")"
# (the workers may run as nobody: they must reach the prefix)
chmod 755 "$tmp"
if [ -n "$out" ]; then
    out="$(abs_path "$out")"
    mkdir -p "$out"
    chmod 755 "$out"
    work="$out"
else
    work="$tmp"
fi
run_id="bench-$(date +%Y%m%d-%H%M%S)-$$"

# ---- cleaning up: only what this script started ---------------------------------
master="" helper=""
stop_nginx() {
    local deadline workers p
    if [ -z "$master" ] || ! pid_is "$master" nginx; then
        master=""
        return 0
    fi
    workers="$(ps -o pid= --ppid "$master" 2>/dev/null || true)"
    kill -QUIT "$master" 2>/dev/null || true
    deadline=$(( $(date +%s) + 20 ))
    while pid_is "$master" nginx; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            warn "nginx (pid $master) still running after 20s: SIGTERM"
            kill -TERM "$master" 2>/dev/null || true
            sleep 3
            pid_is "$master" nginx && { warn "nginx (pid $master): SIGKILL"; kill -KILL "$master" 2>/dev/null || true; }
            break
        fi
        sleep 0.1
    done
    for p in $workers; do
        if pid_is "$p" nginx; then
            warn "worker $p outlived its master: SIGKILL"
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    master=""
}
# The ids of the containers with this run's label.
label_containers() {
    curl -fsS --max-time 20 --unix-socket "$PERSTACK_DOCKER_SOCK" -G \
        --data-urlencode 'all=1' \
        --data-urlencode "filters={\"label\":[\"bench.run=$run_id\"]}" \
        http://localhost/containers/json \
    | perl -MJSON::PP -e 'local $/; print "$_->{Id}\n" for @{ decode_json(<STDIN>) }'
}
# Remove them; prints how many there were.
remove_containers() {
    local id n=0
    for id in $(label_containers 2>/dev/null || true); do
        n=$((n + 1))
        curl -fsS --max-time 60 --unix-socket "$PERSTACK_DOCKER_SOCK" \
            -X DELETE "http://localhost/containers/$id?force=1&v=1" >/dev/null || true
    done
    echo "$n"
}
# shellcheck disable=SC2317  # (the EXIT trap)
on_exit() {
    local rc=$? n
    trap - EXIT INT TERM
    if [ -n "$helper" ] && kill -0 "$helper" 2>/dev/null; then
        kill -TERM "$helper" 2>/dev/null || true
        wait "$helper" 2>/dev/null || true
    fi
    stop_nginx || true
    if docker_alive; then
        n="$(remove_containers)"
        [ "$n" -eq 0 ] || warn "removed $n container(s) labelled bench.run=$run_id"
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- nginx ------------------------------------------------------------------------
user_line="$(worker_user_line "$PERSTACK_DOCKER_SOCK")"

# Directives of durable executions, used when the module knows them: a
# record may hold the whole flood (200000 events are some 56 MB of SSE,
# near the default perstack_record_max_size of 64m; more would pass it).
durable_lines="perstack_record_max_size 1g;"

write_conf() {  # PREFIX PORT EXTRA
    local prefix="$1"
    mkdir -p "$prefix/conf" "$prefix/logs"
    cat >"$prefix/conf/nginx.conf" <<EOF
# bench/readers-memory.sh, run $run_id
load_module $module;
$user_line
worker_processes 1;
error_log logs/error.log notice;
pid logs/nginx.pid;

events {
    worker_connections 1024;
}

http {
    default_type text/plain;
    access_log logs/access.log;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;

    server {
        listen 127.0.0.1:$2;

        perstack_docker unix:$PERSTACK_DOCKER_SOCK;
        perstack_image $IMAGE;
        perstack_label bench.run $run_id;

        location = /run {
            perstack_execute;
            $3
        }

        location = /ok {
            return 200 "ok\n";
        }
    }
}
EOF
}

# Does the module know the durable directives?  (nginx -t on a throw-away
# prefix: an "unknown directive" means it does not.)
probe="$tmp/probe"
write_conf "$probe" 1 "$durable_lines"
if "$nginx_bin" -t -q -p "$probe/" -c "$probe/conf/nginx.conf" >"$tmp/probe-t.log" 2>&1; then
    durable=1
else
    grep -q 'unknown directive' "$tmp/probe-t.log" \
        || die "nginx -t fails: $(tail -n 3 "$tmp/probe-t.log")"
    durable=0 durable_lines="# (no durable executions in this module)"
fi
rm -rf "$probe"

worker=""
start_nginx() {  # PREFIX
    local prefix="$1" attempt p deadline
    for attempt in 1 2 3; do
        p="$port"
        [ -n "$p" ] && [ "$attempt" -eq 1 ] || p="$(free_port)" || die "no free port"
        write_conf "$prefix" "$p" "$durable_lines"
        run_logged "$prefix/logs/nginx-t.log" "$nginx_bin" -t -p "$prefix/" -c "$prefix/conf/nginx.conf" \
            || die "nginx -t rejected $prefix/conf/nginx.conf"
        if "$nginx_bin" -p "$prefix/" -c "$prefix/conf/nginx.conf" 2>"$prefix/logs/start.log"; then
            nginx_port="$p"
            break
        fi
        warn "nginx did not start on 127.0.0.1:$p: $(tail -n 1 "$prefix/logs/start.log")"
        [ "$attempt" -lt 3 ] || die "nginx did not start (see $prefix/logs/error.log)"
    done
    deadline=$(( $(date +%s) + 10 ))
    until master="$(cat "$prefix/logs/nginx.pid" 2>/dev/null)" && pid_is "$master" nginx; do
        [ "$(date +%s)" -lt "$deadline" ] || { master=""; die "no nginx master after 10s (see $prefix/logs/error.log)"; }
        sleep 0.1
    done
    until [ "$(curl -s --max-time 2 "http://127.0.0.1:$nginx_port/ok" 2>/dev/null)" = ok ]; do
        [ "$(date +%s)" -lt "$deadline" ] || die "nginx does not answer on 127.0.0.1:$nginx_port"
        sleep 0.1
    done
    # the one worker: the master's child named nginx
    worker=""
    until [ -n "$worker" ]; do
        for p in $(ps -o pid= --ppid "$master" 2>/dev/null); do
            pid_is "$p" nginx && { worker="$p"; break; }
        done
        [ -n "$worker" ] || [ "$(date +%s)" -lt "$deadline" ] || die "no worker process"
        [ -n "$worker" ] || sleep 0.1
    done
}

# Would a reader be taken?  After the R=0 run: a resume of its (ended)
# execution.  Prints the answer; true when it is a stream.
resume_works() {  # EXECUTION
    local x="$1" code ctype body
    local -a h=(-H "Accept: $([ "$format" = ndjson ] && echo application/x-ndjson || echo text/event-stream)")
    local url="http://127.0.0.1:$nginx_port/run"
    if [ "$format" = ndjson ]; then url="$url?execution=$x&after=0"; else h+=(-H "Last-Event-ID: $x-0"); fi
    body="$(curl -s --max-time 20 -o "$tmp/resume-probe.out" -w '%{http_code} %{content_type}' "${h[@]}" "$url" || true)"
    code="${body%% *}" ctype="${body#* }"
    if [ "$code" = 200 ] && [ "$ctype" = "$([ "$format" = ndjson ] && echo application/x-ndjson || echo text/event-stream)" ]; then
        echo "HTTP 200 $ctype, $(wc -c <"$tmp/resume-probe.out") bytes"
        return 0
    fi
    echo "HTTP $code $ctype: $(head -c 300 "$tmp/resume-probe.out")"
    return 1
}

# ---- the runs ---------------------------------------------------------------------
nginx_version="$("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')"
say "nginx $nginx_version ($nginx_bin), module $module"
say "durable directives: $([ "$durable" -eq 1 ] && echo "known ($durable_lines)" || echo "unknown to this module")"
say "flood $events, $format, readers ${readers[*]} ($reader_mode), SO_RCVBUF $rcvbuf, $read_bytes bytes every ${read_interval}s; run $run_id"

results=() rc=0 skip_reason=""
# R=0 first: its execution is what the resume probe asks for.
mapfile -t readers < <(printf '%s\n' "${readers[@]}" | sort -n -u)
for r in "${readers[@]}"; do
    if [ "$r" -gt 0 ] && [ -n "$skip_reason" ]; then
        say "R=$r: skipped (no resume, see R=0)"
        rc=1
        continue
    fi
    prefix="$work/r$r"
    # (an --out of an earlier run: its figures must not stand for this one's)
    rm -rf "$prefix" "$work/r$r.json" "$work/r$r.csv"
    start_nginx "$prefix"
    say "R=$r: nginx master $master, worker $worker, 127.0.0.1:$nginx_port, prefix $prefix"
    # (in the background, waited for: a signal to this script is handled at
    # once, not when the run is over, and on_exit stops the helper)
    run_rc=0
    perl "$B/readers-memory.pl" run --port "$nginx_port" --worker-pid "$worker" \
        --readers "$r" --events "$events" --format "$format" \
        --reader-mode "$reader_mode" --reader-events "$reader_events" \
        --rcvbuf "$rcvbuf" --read-bytes "$read_bytes" --read-interval "$read_interval" \
        --hold "$hold" --min-slow "$min_slow" --max-slow "$max_slow" \
        --drain-timeout "$drain_timeout" --label "$run_id" \
        --result "$work/r$r.json" --samples "$work/r$r.csv" &
    helper=$!
    wait "$helper" || run_rc=$?
    helper=""
    [ "$run_rc" -le 1 ] || { warn "R=$r: the run failed (exit $run_rc)"; rc=1; }
    [ "$run_rc" -eq 0 ] || rc=1
    [ -f "$work/r$r.json" ] && results+=("$work/r$r.json")

    if [ "$r" -eq 0 ] && [ "$reader_mode" = resume ] && [ -f "$work/r$r.json" ]; then
        x="$(perl -MJSON::PP -e 'local $/; print decode_json(<STDIN>)->{execution} // ""' <"$work/r$r.json")"
        if answer="$(resume_works "$x")"; then
            say "R=0: a reader of execution $x is taken: $answer"
        else
            skip_reason="this module does not resume executions"
            say "R=0: $skip_reason: a reader of $x got $answer"
        fi
    fi

    stop_nginx
    n="$(remove_containers)"
    [ "$n" -eq 0 ] || { warn "R=$r: $n container(s) left with the label bench.run=$run_id (removed)"; rc=1; }
    if grep -qE '\[(alert|crit|emerg)\]|exited on signal' "$prefix/logs/error.log" 2>/dev/null; then
        warn "R=$r: the error log has [alert]/[crit]/[emerg] or a crash:"
        grep -E '\[(alert|crit|emerg)\]|exited on signal' "$prefix/logs/error.log" | head -n 5 >&2
        rc=1
    fi
    # (records of 50 MB and more: kept only with --out)
    [ -n "$out" ] || rm -rf "$prefix"
done

echo
say "worker memory, one execution (flood $events, $format) and R slow readers ($reader_mode):"
[ "${#results[@]}" -eq 0 ] || perl "$B/readers-memory.pl" table "${results[@]}"
[ -z "$skip_reason" ] || say "R>0 skipped: $skip_reason"
[ -z "$out" ] || say "figures, samples and nginx prefixes: $out"
exit "$rc"
