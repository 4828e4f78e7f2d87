# Shared by the benchmarks (bench/*.sh): sourced after scripts/common.sh.
#
#   bench_init NAME            a run id, a work directory ($BENCH_TMP, removed
#                              at exit), $BENCH_OUT (--out, or $BENCH_TMP),
#                              cleanup on exit of what this run started
#   bench_nginx_start PREFIX LOCATIONS [HTTP] [DOCKER_SOCK]
#                              an nginx of its own on 127.0.0.1:<free port>,
#                              worker_processes 1, the module loaded, the
#                              given server-level directives/locations and
#                              http-level directives; sets BENCH_PORT,
#                              BENCH_MASTER, BENCH_WORKER
#   bench_nginx_stop           stops it (SIGQUIT, then TERM, KILL: only
#                              its own pids)
#   bench_on_exit CMD          runs CMD at exit (after nginx is stopped)
#   bench_rss_kb PID           VmRSS in kB
#   bench_cpu_ticks PID        utime + stime, in clock ticks
#   bench_stats                numbers on stdin -> "n median p90 p99 min max"
#   bench_machine              one line: CPUs, memory, kernel, Docker, nginx
#   bench_label                the label every container of the run gets
#
# Environment: BENCH_NGINX (default: the 1.26 build of this checkout,
# build/nginx-1.26/objs/nginx), BENCH_MODULE (its module),
# PERSTACK_DOCKER_SOCK, PERSTACK_DEMO_IMAGE.

BENCH_NGINX="${BENCH_NGINX:-$PERSTACK_BUILD/nginx-1.26/objs/nginx}"
BENCH_MODULE="${BENCH_MODULE:-$PERSTACK_BUILD/nginx-1.26/objs/ngx_http_perstack_module.so}"
BENCH_IMAGE="${PERSTACK_DEMO_IMAGE:-perstack-demo:latest}"
BENCH_MASTER=""
BENCH_WORKER=""
BENCH_PORT=""
BENCH_EXIT=()

bench_init() {  # NAME
    BENCH_NAME="$1"
    BENCH_RUN="bench-$1-$(date +%Y%m%d-%H%M%S)-$$"
    BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/perstack-$1.XXXXXX")"
    # the workers may run as nobody: they must reach the prefix
    chmod 755 "$BENCH_TMP"
    BENCH_OUT="${BENCH_OUT:-$BENCH_TMP}"
    mkdir -p "$BENCH_OUT"
    trap bench_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    [ -x "$BENCH_NGINX" ] || die "no nginx at $BENCH_NGINX (scripts/build-nginx.sh 1.26)"
    [ -f "$BENCH_MODULE" ] || die "no module at $BENCH_MODULE (scripts/build-nginx.sh 1.26)"
}

bench_on_exit() { BENCH_EXIT+=("$*"); }

bench_label() { printf 'bench.run=%s\n' "$BENCH_RUN"; }

# shellcheck disable=SC2317  # (the EXIT trap)
bench_exit() {
    local rc=$? cmd n
    trap - EXIT INT TERM
    bench_nginx_stop || true
    for cmd in "${BENCH_EXIT[@]+"${BENCH_EXIT[@]}"}"; do
        eval "$cmd" || true
    done
    if docker_alive; then
        n="$(bench_remove_containers)"
        [ "$n" -eq 0 ] || warn "removed $n container(s) labelled $(bench_label)"
    fi
    rm -rf "$BENCH_TMP"
    exit "$rc"
}

# The run's containers, removed; prints how many there were.
bench_remove_containers() {
    local id n=0
    for id in $(curl -fsS --max-time 20 --unix-socket "$PERSTACK_DOCKER_SOCK" -G \
                    --data-urlencode 'all=1' \
                    --data-urlencode "filters={\"label\":[\"$(bench_label)\"]}" \
                    http://localhost/containers/json 2>/dev/null \
                | perl -MJSON::PP -e 'local $/; my $t = <STDIN> // "[]";
                      print "$_->{Id}\n" for @{ decode_json($t) }' 2>/dev/null); do
        n=$((n + 1))
        curl -fsS --max-time 60 --unix-socket "$PERSTACK_DOCKER_SOCK" \
            -X DELETE "http://localhost/containers/$id?force=1&v=1" >/dev/null || true
    done
    echo "$n"
}

bench_nginx_start() {  # PREFIX LOCATIONS [HTTP] [DOCKER_SOCK]
    local prefix="$1" locations="$2" http="${3:-}" sock="${4:-$PERSTACK_DOCKER_SOCK}"
    local attempt p deadline user_line
    user_line="$(worker_user_line "$sock")"
    mkdir -p "$prefix/conf" "$prefix/logs"
    chmod 755 "$prefix"
    for attempt in 1 2 3; do
        p="$(free_port)" || die "no free port"
        cat >"$prefix/conf/nginx.conf" <<EOF
# bench/$BENCH_NAME.sh, run $BENCH_RUN
load_module $BENCH_MODULE;
$user_line
worker_processes 1;
worker_rlimit_nofile ${BENCH_NOFILE:-65536};
error_log logs/error.log notice;
pid logs/nginx.pid;

events {
    worker_connections ${BENCH_CONNECTIONS:-32768};
}

http {
    default_type text/plain;
    access_log off;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    perstack_record_path records;
$http

    server {
        listen 127.0.0.1:$p backlog=4096;

        perstack_docker unix:$sock;
        perstack_image $BENCH_IMAGE;
        perstack_label bench.run $BENCH_RUN;

$locations

        location = /ok {
            return 200 "ok\n";
        }
    }
}
EOF
        run_logged "$prefix/logs/nginx-t.log" "$BENCH_NGINX" -t -p "$prefix/" \
                   -c "$prefix/conf/nginx.conf" \
            || die "nginx -t rejected $prefix/conf/nginx.conf (see $prefix/logs/nginx-t.log)"
        if "$BENCH_NGINX" -p "$prefix/" -c "$prefix/conf/nginx.conf" 2>"$prefix/logs/start.log"; then
            BENCH_PORT="$p"
            break
        fi
        warn "nginx did not start on 127.0.0.1:$p: $(tail -n 1 "$prefix/logs/start.log")"
        [ "$attempt" -lt 3 ] || die "nginx did not start (see $prefix/logs/error.log)"
    done
    BENCH_PREFIX="$prefix"
    deadline=$(( $(date +%s) + 10 ))
    until BENCH_MASTER="$(cat "$prefix/logs/nginx.pid" 2>/dev/null)" \
          && pid_is "$BENCH_MASTER" nginx; do
        [ "$(date +%s)" -lt "$deadline" ] || { BENCH_MASTER=""; die "no nginx master after 10s"; }
        sleep 0.1
    done
    until [ "$(curl -s --max-time 2 "http://127.0.0.1:$BENCH_PORT/ok" 2>/dev/null)" = ok ]; do
        [ "$(date +%s)" -lt "$deadline" ] || die "nginx does not answer on 127.0.0.1:$BENCH_PORT"
        sleep 0.1
    done
    BENCH_WORKER=""
    until [ -n "$BENCH_WORKER" ]; do
        for p in $(ps -o pid= --ppid "$BENCH_MASTER" 2>/dev/null); do
            pid_is "$p" nginx && { BENCH_WORKER="$p"; break; }
        done
        [ -n "$BENCH_WORKER" ] || [ "$(date +%s)" -lt "$deadline" ] || die "no worker process"
        [ -n "$BENCH_WORKER" ] || sleep 0.1
    done
}

bench_nginx_stop() {
    local deadline workers p
    if [ -z "$BENCH_MASTER" ] || ! pid_is "$BENCH_MASTER" nginx; then
        BENCH_MASTER=""
        return 0
    fi
    workers="$(ps -o pid= --ppid "$BENCH_MASTER" 2>/dev/null || true)"
    kill -QUIT "$BENCH_MASTER" 2>/dev/null || true
    deadline=$(( $(date +%s) + 30 ))
    while pid_is "$BENCH_MASTER" nginx; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            warn "nginx (pid $BENCH_MASTER) still running after 30s: SIGTERM"
            kill -TERM "$BENCH_MASTER" 2>/dev/null || true
            sleep 3
            pid_is "$BENCH_MASTER" nginx && kill -KILL "$BENCH_MASTER" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    for p in $workers; do
        pid_is "$p" nginx && kill -KILL "$p" 2>/dev/null || true
    done
    BENCH_MASTER="" BENCH_WORKER=""
}

bench_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

bench_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

bench_stats() {
    perl -e '
        my @v = sort { $a <=> $b } grep { /\S/ } map { chomp; $_ } <STDIN>;
        my $n = @v;
        if (!$n) { print "0 - - - - -\n"; exit }
        my $q = sub { my $i = int($_[0] * ($n - 1) + 0.5); $v[$i] };
        printf "%d %s %s %s %s %s\n", $n, $q->(0.5), $q->(0.9), $q->(0.99),
               $v[0], $v[-1];'
}

bench_machine() {
    local cpu mem
    cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    mem="$(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    printf '%s CPUs (%s), %s, Linux %s, Docker %s, nginx %s\n' \
        "$(nproc)" "${cpu:-unknown}" "$mem" "$(uname -r)" \
        "$(curl -s --max-time 5 --unix-socket "$PERSTACK_DOCKER_SOCK" http://localhost/version \
           | perl -MJSON::PP -e 'local $/; print eval { decode_json(<STDIN>)->{Version} } // "?"')" \
        "$("$BENCH_NGINX" -v 2>&1 | sed 's|.*nginx/||')"
}
