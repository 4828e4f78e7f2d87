# perstack_metrics (README, "Metrics"), read by a real Prometheus server
# (Debian's prometheus package) that scrapes the module's endpoint once a
# second while executions of every outcome run, in two workers.
#
#   TEST 1: executions that end in each way (completed, failed, paused,
#           max_steps, timeout, output_limit, client_gone, cancelled,
#           abandoned, error), a resume, and refusals (400, 404, 405, 429,
#           502); then a reload and one more run.  What each client saw
#           (the closing events' outcomes, the statuses) is tallied by the
#           test; Prometheus' query API must give back the same counts,
#           summed over the workers and across the reload.  The Engine
#           API's creates are compared with Docker's own events; the
#           events and bytes relayed, and the records' gauges, with the
#           records on disk.  While runs are live, the endpoint shows them
#           running and the limit zone's slot taken.  promtool check metrics
#           passes on the endpoint's text.
#   TEST 2: GET and HEAD only.
#   TEST 3: not in a location with perstack_execute.
#
# Skipped (with the reason) only when prometheus is missing outside CI; in
# CI (CI set) it runs, and fails if it is missing.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;
use Perstack;
use HTTP::Tiny;
use POSIX ();
use Time::HiRes ();

our ($Prometheus, $Promtool, $InCI);

BEGIN {
    $Prometheus = '/usr/bin/prometheus';
    $Promtool = '/usr/bin/promtool';
    $InCI = ($ENV{CI} // '') !~ /\A(?:|0|false|no)\z/i;

    if ((!-x $Prometheus || !-x $Promtool) && !$InCI) {
        Test::More::plan(skip_all => "$Prometheus is not installed (Debian's "
                         . "prometheus: scripts/setup.sh installs it)");
    }
}

master_on();
workers(2);

# every worker its own listening socket: the kernel spreads connections
$Test::Nginx::Util::ReusePort = 1;

# perstack_detach_timeout as each location says
$Perstack::Detach = 1;

our $RunId = unique_name('metrics');
our $RunLabel = "test.perstack.metrics-run=$RunId";
$ENV{TEST_NGINX_METRICS_RUN} = $RunId;

my $http_config = <<'_EOC_';
    perstack_limit_zone zone=metrics_lz:1m;
_EOC_

my $config = <<'_EOC_';
    perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    perstack_label test.perstack.metrics-run $TEST_NGINX_METRICS_RUN;
    perstack_detach_timeout 0;

    location = /run {
        perstack_execute;
    }

    location = /short {
        perstack_execute;
        perstack_timeout 2s;
        perstack_stop_timeout 1s;
    }

    location = /small {
        perstack_execute;
        perstack_max_events 4;
    }

    location = /durable {
        perstack_execute;
        perstack_detach_timeout 30s;
    }

    location = /abandon {
        perstack_execute;
        perstack_detach_timeout 1s;
    }

    location = /limited {
        perstack_execute;
        perstack_limit zone=metrics_lz max=1;
    }

    location = /missing {
        perstack_execute;
        perstack_image perstack-test-missing:$TEST_NGINX_METRICS_RUN;
    }

    location = /metrics {
        perstack_metrics;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $http_config)
        unless defined $block->http_config;
    $block->set_value('config', $config) unless defined $block->config;
    # the block's own request only reads the endpoint: it counts nothing
    $block->set_value('request', "GET /metrics\n")
        unless defined $block->request || defined $block->must_die;
});


# ---- Prometheus --------------------------------------------------------------

my ($PromPid, $PromPort, $PromDir);

sub start_prometheus {
    my ($name) = @_;

    $PromDir = make_dir('prometheus');
    $PromPort = Perstack::free_port();
    my $target = '127.0.0.1:' . $Test::Nginx::Util::ServerPort;

    spew("$PromDir/prometheus.yml", <<"_EOY_");
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: perstack
    metrics_path: /metrics
    static_configs:
      - targets: ['$target']
_EOY_

    my $pid = fork();
    die "fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        open STDOUT, '>', "$PromDir/prometheus.log" or POSIX::_exit(1);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(1);
        no warnings 'exec';
        exec { $Prometheus } $Prometheus, "--config.file=$PromDir/prometheus.yml",
             "--storage.tsdb.path=$PromDir/data",
             "--web.listen-address=127.0.0.1:$PromPort",
             '--log.level=warn';
        POSIX::_exit(127);
    }

    $PromPid = $pid;

    my $ready = poll(60, sub {
        my $r = HTTP::Tiny->new(timeout => 2)
                    ->get("http://127.0.0.1:$PromPort/-/ready");
        return $r->{status} == 200;
    });

    ok($ready, "$name - Prometheus is ready on 127.0.0.1:$PromPort")
        or diag(Perstack::printable(`tail -n 20 $PromDir/prometheus.log`));

    return $ready;
}

sub stop_prometheus {
    return unless $PromPid;
    kill 'TERM', $PromPid;
    waitpid $PromPid, 0;
    $PromPid = undef;
}

END { stop_prometheus() }

# The value of an instant query that gives one number, or undef.
sub prom {
    my ($expr) = @_;

    my $r = HTTP::Tiny->new(timeout => 5)->get(
        "http://127.0.0.1:$PromPort/api/v1/query?query="
        . Perstack::uri_escape($expr));
    return undef unless $r->{success};

    my $j = eval { json_decode($r->{content}) } or return undef;
    my $res = $j->{data}{result} // [];
    return undef unless @$res == 1;

    return $res->[0]{value}[1] + 0;
}


# ---- the endpoint ---------------------------------------------------------------

sub sum_of {
    my ($m, $re) = @_;
    my $sum = 0;
    $sum += $m->{$_} for grep { /$re/ } keys %$m;
    return $sum;
}


# ---- the records on disk ---------------------------------------------------------

# Records, bytes of their streams, and their events (the index holds each
# event's end, and a sentinel once ended).
sub records_on_disk {
    my $dir = "$Test::Nginx::Util::ServRoot/logs/perstack_records";
    my ($n, $bytes, $events) = (0, 0, 0);

    opendir my $dh, $dir or return (0, 0, 0);

    for my $f (readdir $dh) {
        next unless $f =~ /\A([0-9a-f]{32})\.json\z/;
        $n++;
        $bytes += -s "$dir/$1.events" // 0;

        open my $ih, '<:raw', "$dir/$1.index" or next;
        local $/;
        my $index = <$ih> // '';
        close $ih;

        my @ends = unpack 'Q<*', $index;
        pop @ends if @ends && $ends[-1] == ~0;
        $events += @ends;
    }

    closedir $dh;

    return ($n, $bytes, $events);
}


# ---- runs -------------------------------------------------------------------------

my (%Outcomes, %Refusals, $Started);

# A whole run: its closing event's outcome is tallied.
sub run_whole {
    my ($name, $path, $want) = @_;

    my $c = http_request(method => 'GET', path => $path, timeout => 60);
    my $end = end_event($c) // {};
    is($end->{outcome}, $want, "$name - $path ends $want");
    $Outcomes{ $end->{outcome} // 'none' }++;
    $Started++;

    return $c;
}

sub refused {
    my ($name, $method, $path, $status, $code) = @_;

    my $r = http_request(method => $method, path => $path, timeout => 30);
    is($r->{status}, $status, "$name - $method $path: $status");
    $Refusals{"$r->{status} $code"}++;

    return $r;
}


sub check_counts {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    start_prometheus($name) or return;

    ok(poll(20, sub { (prom('up{job="perstack"}') // 0) == 1 }),
       "$name - Prometheus scrapes the endpoint");

    # ---- the runtime's own ends
    run_whole("$name (completed)", '/run?expert=demo&query=m+one', 'completed');
    run_whole("$name (completed)", '/run?expert=demo&query=m+two', 'completed');
    run_whole("$name (failed)", '/run?expert=error&query=m', 'failed');
    run_whole("$name (paused)", '/run?expert=interactive&query=m', 'paused');
    run_whole("$name (max_steps)", '/run?expert=maxsteps&query=m',
              'max_steps');
    run_whole("$name (timeout)", '/short?expert=slow&query=30', 'timeout');
    run_whole("$name (output_limit)", '/small?expert=demo&query=a+b+c+d+e+f',
              'output_limit');

    # ---- a live one: running, and its limit slot taken
    my ($c, $cid) = start_slow("$name (client_gone)", 30) or return;
    my ($l, $lcid);
    {
        $l = open_stream(method => 'GET',
                         path => '/limited?expert=slow&query=30');
        ok($l->wait_event('streamReasoning', 20), "$name - a limited run");
        $lcid = (($l->first_event('perstack.execution') || {})->{json}
                 || {})->{container};
    }

    my ($m) = metrics();
    is($m->{perstack_executions_running}, 2,
       "$name - two executions running, in whichever workers");
    is($m->{'perstack_limit_slots_used{zone="metrics_lz"}'}, 1,
       "$name - the limit zone's slot is taken");

    refused($name, 'GET', '/limited?expert=demo&query=m', 429,
            'too_many_executions');

    $c->close;
    $Outcomes{client_gone}++;
    $Started++;
    $l->close;
    $Outcomes{client_gone}++;
    $Started++;
    ok(defined wait_container_gone($cid, 20), "$name - its container is gone");
    ok(defined wait_container_gone($lcid, 20), "$name - and the other's");

    # ---- cancelled, with a second reader that resumed it
    my $d = open_stream(method => 'GET', path => '/durable?expert=slow&query=30');
    ok($d->wait_event('streamReasoning', 20), "$name - a durable run");
    my $id = $d->header('X-Perstack-Execution') // '';
    my $f = open_stream(method => 'GET', path => '/durable',
                        headers => [ 'Last-Event-ID' => "$id-1" ]);
    ok($f->wait_event('streamReasoning', 20), "$name - a second reader");
    my $x = http_request(method => 'DELETE', path => "/durable?execution=$id",
                         timeout => 10);
    is($x->{status}, 202, "$name - DELETE: 202");
    ok($d->drain(30), "$name - the first reader's stream ends");
    ok($f->drain(30), "$name - the second's too");
    my $dend = end_event($d) // {};
    is($dend->{outcome}, 'cancelled', "$name - cancelled");
    $Outcomes{ $dend->{outcome} // 'none' }++;
    $Started++;

    # ---- abandoned
    my $a = open_stream(method => 'GET', path => '/abandon?expert=slow&query=30');
    ok($a->wait_event('streamReasoning', 20), "$name - a run to abandon");
    my $aid = (($a->first_event('perstack.execution') || {})->{json}
               || {})->{container};
    $a->close;
    ok(defined wait_container_gone($aid, 20),
       "$name - the abandoned run's container is gone");
    $Outcomes{abandoned}++;
    $Started++;

    # ---- the engine fails it before the stream: an error, and a refusal
    refused($name, 'GET', '/missing?expert=demo&query=m', 502,
            'image_not_found');
    $Outcomes{error}++;
    $Started++;

    # ---- refusals before any execution
    refused($name, 'GET', '/run?query=no+expert', 400, 'bad_request');
    refused($name, 'GET', '/run?query=no+expert+again', 400, 'bad_request');
    refused($name, 'GET', '/run?execution=' . ('a' x 32), 404, 'not_found');
    refused($name, 'PUT', '/run?expert=demo&query=m', 405,
            'method_not_allowed');

    # ---- a reload: the counters go on
    ok(poll(30, sub { (metrics())[0]{perstack_executions_running} == 0 }),
       "$name - nothing runs before the reload");
    my ($before) = metrics();
    my ($master, @old) = Perstack::nginx_pids();
    ok(kill('HUP', $master), "$name - nginx is told to reload");
    ok(wait_new_worker($master, 10, @old), "$name - new workers run");
    ok(wait_gone(30, @old), "$name - the old workers are gone");
    my ($after) = metrics();
    is($after->{perstack_executions_started_total},
       $before->{perstack_executions_started_total},
       "$name - the reload kept the count");
    run_whole("$name (after the reload)", '/run?expert=demo&query=m+three',
              'completed');

    # ---- what everything added up to, once all of it ended
    my $ended = 0;
    $ended += $_ for values %Outcomes;

    ok(poll(30, sub {
        my ($n) = metrics();
        return sum_of($n, qr/\Aperstack_executions_ended_total\{/) == $ended
               && $n->{perstack_executions_running} == 0;
    }), "$name - the endpoint counted every end");

    my ($final, $resp) = metrics();
    my $tfinal = Time::HiRes::time();

    like($resp->header('Content-Type') // '', qr{\Atext/plain; version=0\.0\.4},
         "$name - Prometheus' text format");

    # promtool's own lint of the text
    my $file = "$PromDir/endpoint.txt";
    spew($file, $resp->{body});
    my $lint = `$Promtool check metrics < $file 2>&1`;
    is($?, 0, "$name - promtool check metrics passes");
    is($lint, '', "$name - and has nothing to say") or diag($lint);

    # Prometheus scraped it after the end
    ok(poll(30, sub {
        (prom('max(timestamp(perstack_executions_started_total))') // 0)
            > $tfinal
    }), "$name - Prometheus has a scrape from after the last end");

    is(prom('sum(perstack_executions_started_total)'), $Started,
       "$name - Prometheus: $Started executions started");

    for my $o (qw(completed failed paused max_steps timeout output_limit
                  client_gone cancelled abandoned error)) {
        is(prom("sum(perstack_executions_ended_total{outcome=\"$o\"})"),
           $Outcomes{$o} // 0, "$name - Prometheus: ended $o: "
                               . ($Outcomes{$o} // 0));
    }

    is(prom('sum(perstack_executions_ended_total)'), $ended,
       "$name - Prometheus: every end, and no other");
    is(prom('sum(perstack_executions_running)'), 0,
       "$name - Prometheus: nothing running");
    is(prom('sum(perstack_limit_queue_length{zone="metrics_lz"})'), 0,
       "$name - Prometheus: the limit zone's queue is empty");
    is(prom('sum(perstack_limit_slots_used{zone="metrics_lz"})'), 0,
       "$name - Prometheus: and its slots free");

    for my $k (sort keys %Refusals) {
        my ($status, $code) = split / /, $k;
        is(prom("sum(perstack_requests_refused_total{status=\"$status\","
                . "error=\"$code\"})"), $Refusals{$k},
           "$name - Prometheus: refused $status $code: $Refusals{$k}");
    }

    my $refused = 0;
    $refused += $_ for values %Refusals;
    is(prom('sum(perstack_requests_refused_total)'), $refused,
       "$name - Prometheus: every refusal, and no other");

    # the time to first event: one for each execution that printed a line
    is(prom('sum(perstack_time_to_first_event_seconds_count)'), $Started - 1,
       "$name - Prometheus: a first event for each run but the one with "
       . "no image");
    is(prom('sum(perstack_execution_duration_seconds_count)'), $ended,
       "$name - Prometheus: a duration for each end");

    # the engine's creates, as Docker itself saw them
    my @creates = label_creates($t0, $RunLabel);
    is(prom('sum(perstack_engine_requests_total{operation="create",'
            . 'result="2xx"})'), scalar @creates,
       "$name - Prometheus: " . scalar(@creates) . " creates, as Docker's "
       . "events say");
    is(prom('sum(perstack_engine_requests_total{operation="create",'
            . 'result="4xx"})'), 1,
       "$name - Prometheus: the create of a missing image failed with 4xx");
    is(prom('sum(perstack_engine_request_duration_seconds_count'
            . '{operation="create"})'), scalar(@creates) + 1,
       "$name - Prometheus: each create's latency");
    is(prom('sum(perstack_engine_requests_total{operation="remove",'
            . 'result="2xx"})'), scalar @creates,
       "$name - Prometheus: each container removed");

    # events and bytes relayed: every one went into a record
    my ($records, $bytes, $events) = records_on_disk();
    is(prom('sum(perstack_event_bytes_total)'), $bytes,
       "$name - Prometheus: $bytes bytes relayed, the records' streams");
    is(prom('sum(perstack_events_total)'), $events,
       "$name - Prometheus: $events events relayed, as the records index");
    is($final->{perstack_records}, $records,
       "$name - $records records, as on disk");
    is($final->{perstack_record_bytes}, $bytes,
       "$name - and their bytes");
    is(prom('sum(perstack_reattachments_total)'), 1,
       "$name - Prometheus: one execution was resumed");

    stop_prometheus();
}


sub check_directive {
    my ($block) = @_;
    my $name = $block->name;

    my $h = http_request(method => 'HEAD', path => '/metrics', timeout => 10);
    is($h->{status}, 200, "$name - HEAD: 200");

    my $p = http_request(method => 'POST', path => '/metrics', body => 'x',
                         headers => [ 'Content-Type' => 'text/plain' ],
                         timeout => 10);
    is($p->{status}, 405, "$name - POST: 405");
}


run_tests();

__DATA__

=== TEST 1: every outcome, refusals and a reload, through Prometheus
--- check: check_counts
--- timeout: 240



=== TEST 2: GET and HEAD only
--- check: check_directive
--- timeout: 30



=== TEST 3: not in a location with perstack_execute
--- config
    location = /both {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_metrics;
    }
--- must_die
--- error_log
"perstack_metrics" directive is not allowed with "perstack_execute"
