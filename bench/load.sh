#!/usr/bin/env bash
# A worker under load: does a worker that streams hundreds of executions
# still serve everything else at once?
#
# One nginx (bench/lib.sh: the 1.26 build, worker_processes 1) serves a
# static file (1 KiB, from disk) and runs executions of the demo image's
# `slow` expert (one event a second) on the real Docker Engine.  For each
# number of live streams S (default 0, 100, 200, then 0 again), it:
#   - opens S streams (bench/streams.pl) and waits until every one has had
#     its first runtime event: S containers are running and streaming;
#   - measures the static file with wrk (1 thread, 8 connections, 10 s,
#     --latency): requests per second, p50 and p99;
#   - closes the streams (perstack_detach_timeout 0: the executions end,
#     client_gone) and waits until their containers are gone.
# The idle baseline is the median of the two runs with S=0, one before the
# load and one after.  Figures only: the issue's goal is p99 with 200
# streams <= 2 x p99 idle; nothing is asserted.  Exit status 1 when a
# stream failed.
#
# Usage: bench/load.sh [--quick] [--out DIR] [--streams "0 100 200"]
#                      [--duration S]
#   --quick      streams "0 5 10", 2 s of wrk each
#   --out DIR    where load.md goes (default: a temporary directory)
#   -h, --help   this text
set -euo pipefail
PERSTACK_ME=load
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
. "$PERSTACK_ROOT/bench/lib.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

streams_arg="0 100 200" duration=10 quick=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 streams_arg="0 5 10" duration=2; shift ;;
        --out) [ $# -ge 2 ] || die "--out needs a value"; BENCH_OUT="$2"; shift 2 ;;
        --streams) [ $# -ge 2 ] || die "--streams needs a value"; streams_arg="$2"; shift 2 ;;
        --duration) [ $# -ge 2 ] || die "--duration needs a value"; duration="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
read -r -a levels <<<"$streams_arg"
command -v wrk >/dev/null 2>&1 || die "wrk not found (scripts/setup.sh installs it)"

bench_init load

www="$BENCH_TMP/www"
mkdir -p "$www"
head -c 1024 /dev/zero | tr '\0' 'x' >"$www/static.html"
chmod -R a+rX "$www"

bench_nginx_start "$BENCH_TMP/nginx" "
        location = /run {
            perstack_execute;
            perstack_timeout 0;
            perstack_detach_timeout 0;
        }

        location = /static.html {
            root $www;
        }"

# The control: a plain nginx of the same build, no module, serving the same
# file, measured right after the module's worker at each level: what the
# machine's load (the containers, the engine, wrk) does to any nginx.
control="$BENCH_TMP/control"
mkdir -p "$control/conf" "$control/logs"
control_port="$(free_port)" || die "no free port"
cat >"$control/conf/nginx.conf" <<EOF
worker_processes 1;
error_log logs/error.log notice;
pid logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    server {
        listen 127.0.0.1:$control_port;
        location = /static.html { root $www; }
    }
}
EOF
"$BENCH_NGINX" -p "$control/" -c "$control/conf/nginx.conf" \
    || die "the control nginx did not start"
control_master="$(cat "$control/logs/nginx.pid")"
bench_on_exit "kill -QUIT $control_master 2>/dev/null"

# a warm-up execution: what a worker allocates once is not the load's
curl -sS --max-time 60 "http://127.0.0.1:$BENCH_PORT/run?expert=demo&query=warm+up" >/dev/null

url="http://127.0.0.1:$BENCH_PORT/static.html"
results="$BENCH_TMP/results"
: >"$results"
failed=0

# wrk's --latency lines: "50%  123.00us"; in ms
wrk_ms() {  # FILE PERCENTILE
    awk -v p="$2%" '$1 == p {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
        if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000;
        printf "%.3f\n", v }' "$1"
}

measure() {  # S
    local s="$1" fifo holder line took rps p50 p99 cp99 w
    fifo="$BENCH_TMP/streams-$s.fifo"
    rm -f "$fifo"; mkfifo "$fifo"
    # the holder reads stdin: closing it (fd 9) ends the streams
    exec 9> >(perl "$PERSTACK_ROOT/bench/streams.pl" "$BENCH_PORT" "$s" \
                  "/run?expert=slow&query=3600" >"$fifo")
    holder=$!
    bench_on_exit "kill $holder 2>/dev/null"
    exec 8<"$fifo"
    read -r line <&8 || die "the stream holder ended before its streams started"
    took="$(awk '{ print $3 }' <<<"$line")"
    say "$s live streams (started in ${took}s); wrk ${duration}s on /static.html"

    w="$BENCH_TMP/wrk-$s-$RANDOM.txt"
    wrk -t1 -c8 -d"${duration}s" --latency "$url" >"$w"
    rps="$(awk '/^Requests\/sec:/ { print $2 }' "$w")"
    p50="$(wrk_ms "$w" 50)"
    p99="$(wrk_ms "$w" 99)"
    grep -q 'Non-2xx\|Socket errors' "$w" && { warn "wrk saw errors: $(grep 'Non-2xx\|Socket errors' "$w")"; failed=1; }
    # the control, under the same load
    wrk -t1 -c8 -d"${duration}s" --latency \
        "http://127.0.0.1:$control_port/static.html" >"$w.control"
    cp99="$(wrk_ms "$w.control" 99)"

    exec 9>&-
    read -r line <&8 || true
    exec 8<&-
    wait "$holder" 2>/dev/null || true
    case "$line" in
        *" errors 0") ;;
        *) warn "streams: $line"; failed=1 ;;
    esac
    # the containers are gone before the next level starts
    local deadline=$(( $(date +%s) + 120 ))
    while [ "$(curl -fsS --unix-socket "$PERSTACK_DOCKER_SOCK" -G \
                 --data-urlencode "filters={\"label\":[\"$(bench_label)\"]}" \
                 http://localhost/containers/json | perl -MJSON::PP -e 'local $/; print scalar @{ decode_json(<STDIN>) }')" != 0 ]; do
        [ "$(date +%s)" -lt "$deadline" ] || die "containers still running 120 s after their streams closed"
        sleep 0.5
    done
    printf '%s %s %s %s %s %s\n' "$s" "$rps" "$p50" "$p99" "$took" "$cp99" >>"$results"
}

for s in "${levels[@]}"; do
    measure "$s"
done
# the idle run again, after the load
[ "${levels[0]}" != 0 ] || measure 0

# ---- the table --------------------------------------------------------------
perl - "$results" "$BENCH_OUT/load.md" "$duration" "$quick" <<'EOF'
use strict; use warnings;
my ($in, $out, $duration, $quick) = @ARGV;
open my $fh, '<', $in or die "$in: $!\n";
my (%by, @idle);
while (<$fh>) {
    my ($s, $rps, $p50, $p99, $took, $cp99) = split;
    if ($s == 0) { push @idle, [$rps, $p50, $p99]; next }
    $by{$s} = [$rps, $p50, $p99, $took, $cp99];
}
my $med = sub { my @v = sort { $a <=> $b } @_; $v[int($#v / 2)] };
my @base = map { my $i = $_; $med->(map { $_->[$i] } @idle) } 0 .. 2;
my $t = "### A worker under load\n\n"
      . "| figure | value | baseline | ratio | N |\n|---|---|---|---|---|\n";
for my $s (sort { $a <=> $b } keys %by) {
    my ($rps, $p50, $p99, $took, $cp99) = @{ $by{$s} };
    $t .= sprintf "| static file p50, %d live streams (ms) | %.3f | %.3f idle | %.2f | %d s of wrk |\n",
        $s, $p50, $base[1], $base[1] ? $p50 / $base[1] : 0, $duration;
    $t .= sprintf "| static file p99, %d live streams (ms) | %.3f | %.3f idle | %.2f | %d s of wrk |\n",
        $s, $p99, $base[2], $base[2] ? $p99 / $base[2] : 0, $duration;
    $t .= sprintf "| static file p99, %d live streams (ms) | %.3f | %.3f: a plain nginx, same load | %.2f | %d s of wrk |\n",
        $s, $p99, $cp99, $cp99 ? $p99 / $cp99 : 0, $duration;
    $t .= sprintf "| static file requests/s, %d live streams | %.0f | %.0f idle | %.2f | %d s of wrk |\n",
        $s, $rps, $base[0], $base[0] ? $rps / $base[0] : 0, $duration;
    $t .= sprintf "| time for %d streams to start (s) | %s | - | - | %d |\n", $s, $took, $s;
}
$t .= "\nOne worker (`worker_processes 1`) streams S executions of the demo's "
    . "`slow` expert (one event a second, real containers) while `wrk -t1 -c8 "
    . "--latency` fetches a 1 KiB static file from the same worker.  The idle "
    . "baseline is the median of a run before the load and one after it; the "
    . "control is a plain nginx of the same build (no module, its own worker) "
    . "serving the same file, measured right after, under the same load: what "
    . "the containers, the engine and wrk do to any nginx on this machine.  The "
    . "time to start is the engine's: S containers created and started.\n";
$t .= "(`--quick`: a handful of streams, 2 s of wrk; not figures to quote.)\n"
    if $quick;
open my $o, '>', $out or die "$out: $!\n";
print $o $t;
print $t;
EOF

exit "$failed"
