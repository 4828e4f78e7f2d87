#!/usr/bin/env bash
# Soak test: many executions through one nginx with the module, with
# concurrent clients, clients that go away mid-stream, admission control
# and reloads, then a check that nothing leaked.
#   - uses a built nginx and module (builds them with build-nginx.sh when
#     missing or with --build; warns when the build is older than src/),
#     the demo image (build-demo-image.sh when missing) and the
#     Docker Engine (start-docker.sh when none answers; a dockerd started
#     here is stopped at the end, any other is left alone);
#   - starts its own nginx: prefix build/soak/nginx/, a free port on
#     127.0.0.1, 2 workers, a perstack_limit zone, short timeouts, and the
#     label soak.run=<unique id> on every container, so only its own
#     containers are counted (other runs may share the engine);
#   - runs the executions with scripts/soak.pl: mostly "demo", some
#     "slow 3", "flood 2000", "error", "crash", "exit 3", "garbage",
#     "stubborn" (under a 2s perstack_timeout), "interactive", "stderr",
#     "nonl"; SSE and NDJSON, GET and POST; a fraction of the clients close
#     their connection at a random point (after some bytes, or after some
#     time: also while the container is being created), with a FIN or a
#     RST; a client told 429 waits as Retry-After says; a SIGHUP to its
#     master every K executions, and after the warm-up and at the end;
#   - once all have finished and their containers are gone, as many
#     executions at once as the limit's max: each must be admitted (a 429
#     there means a slot leaked);
#   - reports outcomes, unexpected errors (a stream without perstack.end that
#     the client did not abort, a 5xx or other unexpected status, a broken
#     stream, an unexpected outcome, a worker crash, [alert]/[crit]/[emerg]
#     in the error log, an old worker that does not exit after a reload),
#     containers left with its label after a bounded wait (and the Docker
#     events of its containers: create/start/die/destroy), and the fds and
#     RSS of the master and workers after the warm-up and at the end (each
#     time idle before a reload, and fresh after it); on stdout and in
#     build/soak/report.txt (nginx's logs and the events:
#     build/soak/nginx/logs/);
#   - stops its nginx (by the pid it started), and exits non-zero when
#     anything unexpected happened or a container was left.
#
# Usage: scripts/soak.sh [options]
#   --executions N     executions in all (default 2000)
#   --concurrency C    concurrent clients (default 8)
#   --reload-every K   SIGHUP to the master every K executions (default 200;
#                      0: only the warm-up's and the last one)
#   --abort-rate P     fraction of clients that go away early (default 0.1)
#   --nginx WHAT       debian (default: /usr/sbin/nginx with
#                      build/nginx-debian's module), 1.26, 1.22 (the source
#                      builds under build/), or a path: an nginx binary, or a
#                      build tree with objs/nginx and objs/*.so
#   --warmup W         executions before the first figures (default 100)
#   --workers N        worker_processes (default 2)
#   --limit M          perstack_limit max (default: concurrency - 1, with
#                      queue=1 queue_timeout=3s; 0: no perstack_limit)
#   --port N           port on 127.0.0.1 (default: a free one)
#   --seed S           random seed (default: from the clock; in the report)
#   --build            run build-nginx.sh for the variant even if built
#   -h, --help         this text
# Environment: PERSTACK_NGINX_BINARY and PERSTACK_MODULE (the .so) override
# what --nginx chooses (and then nothing is built);
# PERSTACK_DEMO_IMAGE (default perstack-demo:latest); PERSTACK_DOCKER_SOCK.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

S="$PERSTACK_ROOT/scripts"
MODULE_NAME=ngx_http_perstack_module
IMAGE="${PERSTACK_DEMO_IMAGE:-perstack-demo:latest}"
SOAK="$PERSTACK_BUILD/soak"
PREFIX="$SOAK/nginx"
CONF="$PREFIX/conf/nginx.conf"
PIDFILE="$PREFIX/logs/nginx.pid"
ERRLOG="$PREFIX/logs/error.log"
REPORT="$SOAK/report.txt"

orig_pwd="$PWD"
command_line="scripts/soak.sh$(printf ' %q' "$@")"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

executions=2000 concurrency=8 reload_every=200 abort_rate=0.1
nginx_what=debian warmup=100 workers=2 limit="" port="" seed="" force_build=0
need() { [ "$2" -ge 2 ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --executions) need "$1" $#; executions="$2"; shift 2 ;;
        --concurrency) need "$1" $#; concurrency="$2"; shift 2 ;;
        --reload-every) need "$1" $#; reload_every="$2"; shift 2 ;;
        --abort-rate) need "$1" $#; abort_rate="$2"; shift 2 ;;
        --nginx) need "$1" $#; nginx_what="$2"; shift 2 ;;
        --warmup) need "$1" $#; warmup="$2"; shift 2 ;;
        --workers) need "$1" $#; workers="$2"; shift 2 ;;
        --limit) need "$1" $#; limit="$2"; shift 2 ;;
        --port) need "$1" $#; port="$2"; shift 2 ;;
        --seed) need "$1" $#; seed="$2"; shift 2 ;;
        --executions=*|--concurrency=*|--reload-every=*|--abort-rate=*|--nginx=*|--warmup=*|--workers=*|--limit=*|--port=*|--seed=*)
            set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        --build) force_build=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
isnum() { [[ "$2" =~ ^[0-9]+$ ]] || die "$1: not a number: $2"; }
isnum --executions "$executions"; isnum --concurrency "$concurrency"
isnum --reload-every "$reload_every"; isnum --warmup "$warmup"
isnum --workers "$workers"
[ "$executions" -ge 10 ] || die "--executions: at least 10"
[ "$concurrency" -ge 1 ] || die "--concurrency: at least 1"
[ "$workers" -ge 1 ] || die "--workers: at least 1"
[[ "$abort_rate" =~ ^(0(\.[0-9]+)?|1(\.0*)?|\.[0-9]+)$ ]] || die "--abort-rate: a number from 0 to 1: $abort_rate"
[ -z "$limit" ] || isnum --limit "$limit"
[ -n "$limit" ] || limit=$(( concurrency > 1 ? concurrency - 1 : 1 ))
if [ -n "$port" ]; then
    isnum --port "$port"
    if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die "--port: not a port: $port"; fi
fi
[ -z "$seed" ] || isnum --seed "$seed"

# Paths given by the caller are taken from the caller's directory.
abs_path() { case "$1" in /*) printf '%s\n' "$1" ;; *) realpath -m "$orig_pwd/$1" ;; esac; }

cd "$PERSTACK_ROOT"
mkdir -p "$SOAK" "$PERSTACK_BUILD/logs"

# One soak at a time in this checkout (they share build/soak/).
exec 8>"$SOAK/.lock"
flock -n 8 || die "another scripts/soak.sh runs in this checkout (build/soak/.lock)"

# ---- what nginx, what module -------------------------------------------------
variant=""
case "$nginx_what" in
    debian) variant=debian; nginx_bin=/usr/sbin/nginx
            module="$PERSTACK_BUILD/nginx-debian/objs/$MODULE_NAME.so" ;;
    1.26|1.22) variant="$nginx_what"; nginx_bin="$PERSTACK_BUILD/nginx-$nginx_what/objs/nginx"
            module="$PERSTACK_BUILD/nginx-$nginx_what/objs/$MODULE_NAME.so" ;;
    *)
        p="$(abs_path "$nginx_what")"
        if [ -d "$p" ]; then
            nginx_bin="$p/objs/nginx"; module="$p/objs/$MODULE_NAME.so"
        else
            nginx_bin="$p"; module="$(dirname "$p")/$MODULE_NAME.so"
        fi ;;
esac
[ -z "${PERSTACK_NGINX_BINARY:-}" ] || { nginx_bin="$(abs_path "$PERSTACK_NGINX_BINARY")"; variant=""; }
[ -z "${PERSTACK_MODULE:-}" ] || { module="$(abs_path "$PERSTACK_MODULE")"; variant=""; }
if [ -n "$variant" ] && { [ "$force_build" -eq 1 ] || [ ! -f "$module" ] \
        || { [ "$variant" != debian ] && [ ! -x "$nginx_bin" ]; }; }; then
    say "building the module for $variant (scripts/build-nginx.sh $variant)"
    bash "$S/build-nginx.sh" "$variant" >/dev/null
fi
[ -x "$nginx_bin" ] || die "no nginx binary at $nginx_bin"
[ -f "$module" ] || die "no module at $module (set PERSTACK_MODULE, or build: scripts/build-nginx.sh)"
# A build of this checkout that is older than its sources tests old code.
module_desc="$module"
if [ -n "$variant" ] && [ -n "$(find "$PERSTACK_ROOT/src" "$PERSTACK_ROOT/config" -newer "$module" -print -quit 2>/dev/null)" ]; then
    warn "$module is older than src/ or config: it may not be the code you mean to test (--build rebuilds it)"
    module_desc="$module (older than src/: built $(date -r "$module" '+%F %T'))"
fi

# ---- Docker and the image ------------------------------------------------------
started_docker=0 started_nginx=0 master=""
stop_nginx() {
    local deadline pids p
    pid_is "$master" nginx || return 0
    # the master's workers, to make sure they went with it
    pids="$(ps -o pid= --ppid "$master" 2>/dev/null || true)"
    say "stopping nginx (master pid $master, graceful)"
    kill -QUIT "$master" 2>/dev/null || true
    deadline=$(( $(date +%s) + 30 ))
    while pid_is "$master" nginx; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            warn "nginx (pid $master) still running after 30s: SIGTERM"
            kill -TERM "$master" 2>/dev/null || true
            sleep 5
            if pid_is "$master" nginx; then
                warn "nginx (pid $master) still running: SIGKILL"
                kill -KILL "$master" 2>/dev/null || true
            fi
            break
        fi
        sleep 0.1
    done
    for p in $pids; do
        if pid_is "$p" nginx; then
            warn "worker $p outlived its master: SIGKILL"
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
}
# Containers with this run's label (ids), and their removal.
label_containers() {
    curl -fsS --max-time 20 --unix-socket "$PERSTACK_DOCKER_SOCK" -G \
        --data-urlencode 'all=1' \
        --data-urlencode "filters={\"label\":[\"soak.run=$run_id\"]}" \
        http://localhost/containers/json \
    | perl -MJSON::PP -e 'local $/; print "$_->{Id}\n" for @{ decode_json(<STDIN>) }'
}
# shellcheck disable=SC2317  # (the EXIT trap)
on_exit() {
    local rc=$? id
    trap - EXIT INT TERM
    if [ "$started_nginx" -eq 1 ]; then
        stop_nginx || true
        if docker_alive; then
            for id in $(label_containers 2>/dev/null || true); do
                warn "removing container ${id:0:12} (label soak.run=$run_id)"
                curl -fsS --max-time 60 --unix-socket "$PERSTACK_DOCKER_SOCK" \
                    -X DELETE "http://localhost/containers/$id?force=1&v=1" >/dev/null || true
            done
        fi
    fi
    [ "$started_docker" -eq 0 ] || bash "$S/stop-docker.sh" || true
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

had_pidfile=0
[ ! -f "$PERSTACK_BUILD/dockerd.pid" ] || had_pidfile=1
if ! docker_alive; then
    bash "$S/start-docker.sh" || { [ "$had_pidfile" -eq 1 ] || [ ! -f "$PERSTACK_BUILD/dockerd.pid" ] || started_docker=1; exit 1; }
    [ "$had_pidfile" -eq 1 ] || [ ! -f "$PERSTACK_BUILD/dockerd.pid" ] || started_docker=1
fi
if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$PERSTACK_DOCKER_SOCK" \
        "http://localhost/images/$IMAGE/json")" != 200 ]; then
    say "the image $IMAGE is missing: scripts/build-demo-image.sh"
    PERSTACK_DEMO_IMAGE="$IMAGE" bash "$S/build-demo-image.sh"
fi

# ---- nginx ---------------------------------------------------------------------
run_id="soak-$(date +%Y%m%d-%H%M%S)-$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"

user_line="$(worker_user_line "$PERSTACK_DOCKER_SOCK")"

limit_zone="" limit_line=""
if [ "$limit" -gt 0 ]; then
    limit_zone="perstack_limit_zone zone=soak:1m;"
    limit_line="perstack_limit zone=soak max=$limit queue=1 queue_timeout=3s;"
fi

write_conf() {
    mkdir -p "$PREFIX/conf" "$PREFIX/logs"
    cat >"$CONF" <<EOF
# scripts/soak.sh, run $run_id
load_module $module;
$user_line
worker_processes $workers;
error_log logs/error.log notice;
pid logs/nginx.pid;

events {
    worker_connections 1024;
}

http {
    default_type text/plain;
    log_format soak '\$msec \$pid "\$request" \$status \$body_bytes_sent '
                    '\$request_time \$sent_http_x_perstack_execution';
    access_log logs/access.log soak;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;

    $limit_zone

    server {
        listen 127.0.0.1:$port;

        perstack_docker unix:$PERSTACK_DOCKER_SOCK;
        perstack_image $IMAGE;
        perstack_label soak.run $run_id;
        perstack_expert_allow "[a-z][a-z0-9-]{0,63}";
        perstack_stop_timeout 2s;
        perstack_ping_interval 2s;
        perstack_memory 64m;
        $limit_line

        location = /agent {
            perstack_execute;
            perstack_timeout 30s;
        }

        location = /short {
            perstack_execute;
            perstack_timeout 2s;
            perstack_stop_timeout 1s;
        }

        location / {
            return 200 "ok\n";
        }
    }
}
EOF
}

rm -rf "$PREFIX"
start_ok=0
for attempt in 1 2 3; do
    [ -n "$port" ] && [ "$attempt" -eq 1 ] || port="$(free_port)" || die "no free port"
    write_conf
    : >"$ERRLOG"
    if ! run_logged "$SOAK/nginx-t.log" "$nginx_bin" -t -p "$PREFIX/" -c "$CONF"; then
        die "nginx -t rejected $CONF"
    fi
    if "$nginx_bin" -p "$PREFIX/" -c "$CONF" 2>"$SOAK/nginx-start.log"; then
        start_ok=1; break
    fi
    warn "nginx did not start on 127.0.0.1:$port: $(tail -n 1 "$SOAK/nginx-start.log")"
done
[ "$start_ok" -eq 1 ] || die "nginx did not start (see $ERRLOG)"
deadline=$(( $(date +%s) + 10 ))
until master="$(cat "$PIDFILE" 2>/dev/null)" && pid_is "$master" nginx; do
    [ "$(date +%s)" -lt "$deadline" ] || die "no nginx master after 10s (see $ERRLOG)"
    sleep 0.1
done
started_nginx=1
until [ "$(curl -s --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null)" = ok ]; do
    [ "$(date +%s)" -lt "$deadline" ] || die "nginx does not answer on 127.0.0.1:$port"
    sleep 0.1
done
nginx_version="$("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')"
say "nginx $nginx_version (master pid $master) on 127.0.0.1:$port, prefix $PREFIX"
say "module $module; containers labelled soak.run=$run_id"

# ---- the run -------------------------------------------------------------------
rc=0
perl "$S/soak.pl" --port "$port" --master-pid "$master" --error-log "$ERRLOG" \
    --label-key soak.run --label-value "$run_id" --report "$REPORT" \
    --executions "$executions" --concurrency "$concurrency" \
    --reload-every "$reload_every" --abort-rate "$abort_rate" \
    --warmup "$warmup" --workers "$workers" --limit-max "$limit" \
    --docker-sock "$PERSTACK_DOCKER_SOCK" \
    --nginx-desc "$nginx_bin ($nginx_version)" --module "$module_desc" \
    --command "$command_line" \
    ${seed:+--seed "$seed"} || rc=$?
[ "$rc" -le 1 ] || die "soak.pl failed (exit $rc)"

# ---- stop, and what the stop wrote ----------------------------------------------
t_stop=$(now)
stop_nginx
started_nginx=0
stop_time="$(elapsed "$t_stop")"
if left_list="$(label_containers 2>/dev/null)"; then
    left_after="$(printf "%s" "$left_list" | grep -c . || true)"
else
    left_after="?"
fi
off="$(cat "$ERRLOG.scanned" 2>/dev/null || echo 0)"
bad="$(tail -c +"$((off + 1))" "$ERRLOG" | grep -E '\[(alert|crit|emerg)\]|exited on signal|exited with code [1-9]' || true)"
{
    echo
    echo "nginx stopped (SIGQUIT) in $stop_time; containers with the label after the stop: $left_after"
    if [ -n "$bad" ]; then
        echo "error log lines written during the stop (unexpected):"
        printf '%s\n' "$bad" | head -n 20 | sed 's/^/  /'
        echo "RESULT: FAIL (stop)"
    fi
} | tee -a "$REPORT"
[ -z "$bad" ] || rc=1
if [ "$left_after" != 0 ]; then
    for id in $(label_containers 2>/dev/null || true); do
        curl -fsS --max-time 60 --unix-socket "$PERSTACK_DOCKER_SOCK" \
            -X DELETE "http://localhost/containers/$id?force=1&v=1" >/dev/null || true
    done
    rc=1
fi
say "report: $REPORT"
exit "$rc"
