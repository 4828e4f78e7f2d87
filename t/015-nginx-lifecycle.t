# nginx's own life around executions: reload, graceful quit, fast stop.
#
#   - a reload (SIGHUP to the master) while a run streams: the old worker
#     keeps the stream to its end (perstack.end, outcome completed, the
#     container removed), then exits; a new worker serves new runs at once;
#   - a reload with worker_shutdown_timeout shorter than the run: before
#     the timeout passes (early enough for perstack_stop_timeout), the
#     module stops the run; the client gets perstack.end with the outcome
#     "shutdown", the container is removed, the old worker exits, nginx
#     goes on serving;
#   - a reload right after a request came in, before its first event (the
#     container being created, attached or started): the old worker still
#     serves the whole run, and no container is left;
#   - a graceful quit (SIGQUIT to the master) mid-run: the run ends
#     normally, then nginx exits, no container left;
#   - a fast stop (SIGTERM to the master) mid-run: the client's connection
#     ends (no perstack.end), nginx exits, and the exiting worker removes
#     the container.
#
# Every block also asserts no [alert] or [crit] in its log: a worker that
# exits with a request still open logs "open socket ... left in
# connection" and "aborting".
#
# A worker killed with SIGKILL mid-run (its containers are left to the
# reaper of the worker started in its place) is t/013-reaper.t, TEST 1;
# nginx stopped with SIGTERM while a stubborn run streams is
# t/005-lifecycle.t, TEST 8.
#
# Signals go to the master of this file's nginx only (the pid in
# Test::Nginx's pid file).  The blocks that stop nginx come last; nginx
# removes its pid file when it exits, and Test::Nginx starts a fresh one
# for a block that follows.  Every container of this file has the label
# test.lifecycle.run=<unique to this run>: leftovers are found whatever
# worker (alive or gone) made them, and the END block removes them.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;
use Perstack;
use Time::HiRes ();

master_on();
workers(1);

our $RunId = unique_name('lifecycle');
our $RunLabel = "test.lifecycle.run=$RunId";
$ENV{TEST_NGINX_LIFECYCLE_RUN} = $RunId;

my $config = <<'_EOC_';
    perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    perstack_label test.lifecycle.run $TEST_NGINX_LIFECYCLE_RUN;

    location = /run {
        perstack_execute;
    }

    location = /static {
        return 200 "static\n";
    }

    location = /pid {
        return 200 $pid;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $config) unless defined $block->config;
    default_request($block, '/run');
});

END {
    local $?;
    remove_container($_->{Id})
        for eval { label_containers($RunLabel) };
}


# ---- helpers ----------------------------------------------------------

# The process title ("nginx: worker process is shutting down").
sub proc_title {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/cmdline" or return '';
    local $/;
    my $t = <$fh> // '';
    $t =~ s/\0+/ /g;
    $t =~ s/\s+\z//;
    return $t;
}

# The old worker took the reload (or quit): it is shutting down, it
# accepts no more connections.
sub wait_shutting_down {
    my ($pid, $timeout) = @_;
    return poll($timeout, sub {
        proc_title($pid) =~ /worker process is shutting down/;
    });
}

sub run_containers {
    return [ label_containers($RunLabel) ];
}

sub wait_no_run_containers {
    my ($timeout) = @_;
    my $left;
    poll($timeout, sub { $left = run_containers(); !@$left });
    return $left;
}

sub reasoning_count {
    my ($c) = @_;
    return scalar grep { ($_->{type} // '') eq 'streamReasoning' } $c->events;
}

# A whole run served after a reload: it completes, by $worker.
sub check_new_run {
    my ($name, $worker) = @_;

    my $r = http_request(method => 'GET', path => '/pid', timeout => 10);
    is($r->{status}, 200, "$name - nginx serves after the reload");
    is($r->{body}, $worker, "$name - by the new worker $worker");

    my ($c, $cid, $labels) = start_slow("$name (new run)", 2) or return;
    is($labels->{'io.perstack.pid'}, $worker,
       "$name (new run) - its container is the new worker's");

    ok($c->drain(20), "$name (new run) - the response ends");
    $c->close;
    check_run("$name (new run)", $c, expert => 'slow',
              outcome => 'completed', exit_code => 0);
    ok(defined wait_container_gone($cid, 10),
       "$name (new run) - its container is gone");
}

# The exiting worker found no container of its own left to remove: every
# run had ended the usual way.
sub check_nothing_removed_on_exit {
    my ($name) = @_;
    my @l = error_lines(qr/perstack: worker exiting, removed container/);
    is(scalar @l, 0, "$name - the exiting worker had no container to "
                     . "remove") or diag(join "\n", @l);
}

# ---- a reload while a run streams --------------------------------------

sub check_reload_mid_stream {
    my ($block) = @_;
    my $name = $block->name;

    my ($master, @workers) = nginx_pids();
    is(scalar @workers, 1, "$name - one worker") or return;
    my $old = $workers[0];

    my ($c, $cid, $labels) = start_slow($name, 6) or return;
    is($labels->{'io.perstack.pid'}, $old,
       "$name - the container is the old worker's ($old)");
    my $before = reasoning_count($c);

    ok(kill('HUP', $master), "$name - the master $master is told to reload");

    my $new = wait_new_worker($master, 10, $old);
    ok($new, "$name - a new worker (" . ($new // 'none') . ")") or return;
    Perstack::note_pids();

    ok(wait_shutting_down($old, 10),
       "$name - the old worker $old is shutting down")
        or diag("title: " . proc_title($old));

    ok(!$c->has_event('perstack.end'),
       "$name - the old run has not ended yet");

    # a new run, by the new worker, while the old one streams
    check_new_run($name, $new);

    ok(!gone($old), "$name - the old worker is still there while its "
                    . "run streams");

    # the old run goes on to its end
    ok($c->wait_event('perstack.end', 20),
       "$name - the old run's perstack.end arrives")
        or diag(describe_client($c));
    ok($c->drain(10), "$name - the old run's response ends");
    $c->close;
    Test::More::note("$name - the old run's client got: "
                     . describe_client($c));

    cmp_ok(reasoning_count($c), '>', $before,
           "$name - events came after the reload");
    is(reasoning_count($c), 6, "$name - all six streamReasoning events");
    check_run("$name (old run)", $c, expert => 'slow',
              outcome => 'completed', exit_code => 0);

    ok(!container_info($cid), "$name - the old run's container is gone");

    ok(wait_gone(10, $old), "$name - the old worker $old exits");
    my ($m2, @ws) = nginx_pids();
    is_deeply([$m2, grep { !gone($_) } @ws], [$master, $new],
              "$name - the master and the new worker are left");

    my $left = wait_no_run_containers(10);
    is(scalar @$left, 0, "$name - no container of this run is left")
        or diag("left: " . container_names($left));

    check_alerts($name);
    check_nothing_removed_on_exit($name);
}


# ---- a reload with worker_shutdown_timeout -----------------------------

sub check_reload_shutdown_timeout {
    my ($block) = @_;
    my $name = $block->name;

    my ($master, @workers) = nginx_pids();
    is(scalar @workers, 1, "$name - one worker") or return;
    my $old = $workers[0];

    # 10 s of events, 2 s of worker_shutdown_timeout
    my ($c, $cid) = start_slow($name, 10) or return;

    ok(kill('HUP', $master), "$name - the master $master is told to reload");

    my $new = wait_new_worker($master, 10, $old);
    ok($new, "$name - a new worker (" . ($new // 'none') . ")") or return;
    Perstack::note_pids();

    ok(wait_shutting_down($old, 10),
       "$name - the old worker $old is shutting down");

    # before the shutdown timeout passes, the module stops the run and
    # ends the stream with its closing event
    ok($c->wait_event('perstack.end', 20),
       "$name - the old run's perstack.end arrives")
        or diag(describe_client($c));
    ok($c->drain(15), "$name - the old run's response ends");
    $c->close;
    my $seen = describe_client($c);
    Test::More::note("$name - the old run's client got: $seen");

    cmp_ok(reasoning_count($c), '<', 10,
           "$name - the run was cut short (not all ten events)");
    check_run("$name (old run)", $c, expert => 'slow',
              outcome => 'shutdown');

    my $took = wait_container_gone($cid, 15);
    ok(defined $took, "$name - the old run's container is removed");

    ok(wait_gone(15, $old), "$name - the old worker $old exits");

    check_new_run($name, $new);

    my $left = wait_no_run_containers(10);
    is(scalar @$left, 0, "$name - no container of this run is left")
        or diag("left: " . container_names($left));

    check_alerts($name);
}


# ---- a reload before the first event -----------------------------------

sub reload_early {
    my ($name, $when) = @_;

    my ($master, @workers) = nginx_pids();
    is(scalar @workers, 1, "$name - one worker") or return;
    my $old = $workers[0];
    Perstack::note_pids();

    my $t0 = Time::HiRes::time();
    my $c = open_stream(method => 'GET',
                        path => '/run?expert=slow&query=2');

    if ($when eq 'created') {
        # as soon as the Docker Engine has the container (created, not
        # necessarily started)
        ok(poll(20, sub { scalar @{ run_containers() } }),
           "$name - the container exists");
    }

    ok(kill('HUP', $master), "$name - the master $master is told to reload");

    my $new = wait_new_worker($master, 10, $old);
    ok($new, "$name - a new worker (" . ($new // 'none') . ")") or return;
    Perstack::note_pids();

    ok($c->drain(30), "$name - the response ends");
    $c->close;
    Test::More::note("$name - the client got: " . describe_client($c));

    my @created = label_creates($t0 - 0.01, $RunLabel);
    cmp_ok(scalar @created, '<=', 1,
           "$name - at most one container was created");

    my $left = wait_no_run_containers(15);
    is(scalar @$left, 0, "$name - no container is left")
        or diag("left: " . container_names($left) . "; the client got: "
                . describe_client($c));

    ok(wait_gone(15, $old), "$name - the old worker $old exits");

    # the request came in before the reload: the old worker serves it
    ok(end_event($c),
       "$name - the client gets the whole run (perstack.end)")
        or diag("the client got: " . describe_client($c));
    check_run($name, $c, expert => 'slow', outcome => 'completed',
              exit_code => 0) if end_event($c);

    my $r = http_request(method => 'GET', path => '/pid', timeout => 10);
    is($r->{body}, $new, "$name - the new worker serves");
}

sub check_reload_on_request {
    my ($block) = @_;
    reload_early($block->name, 'request');
    check_alerts($block->name);
    check_nothing_removed_on_exit($block->name);
}

sub check_reload_on_create {
    my ($block) = @_;
    reload_early($block->name, 'created');
    check_alerts($block->name);
    check_nothing_removed_on_exit($block->name);
}


# ---- a graceful quit ---------------------------------------------------

sub check_quit_mid_stream {
    my ($block) = @_;
    my $name = $block->name;

    my ($master, @workers) = nginx_pids();
    is(scalar @workers, 1, "$name - one worker") or return;
    my $w = $workers[0];

    my ($c, $cid) = start_slow($name, 3) or return;
    my $before = reasoning_count($c);

    ok(kill('QUIT', $master), "$name - the master $master is told to quit");

    ok(wait_shutting_down($w, 10), "$name - the worker $w is shutting down");

    ok($c->wait_event('perstack.end', 20), "$name - perstack.end arrives")
        or diag(describe_client($c));
    ok($c->drain(10), "$name - the response ends");
    $c->close;
    Test::More::note("$name - the client got: " . describe_client($c));

    cmp_ok(reasoning_count($c), '>', $before,
           "$name - events came after the quit");
    check_run($name, $c, expert => 'slow', outcome => 'completed',
              exit_code => 0);

    ok(wait_gone(15, $w, $master), "$name - the worker and the master exit");
    ok(!-e $Test::Nginx::Util::PidFile, "$name - the pid file is removed");

    ok(!container_info($cid), "$name - the container is gone");
    my $left = wait_no_run_containers(10);
    is(scalar @$left, 0, "$name - no container of this run is left")
        or diag("left: " . container_names($left));

    check_alerts($name);
    check_nothing_removed_on_exit($name);
}


# ---- a fast stop -------------------------------------------------------

sub check_stop_mid_stream {
    my ($block) = @_;
    my $name = $block->name;

    my ($master, @workers) = nginx_pids();
    is(scalar @workers, 1, "$name - one worker") or return;
    my $w = $workers[0];

    my ($c, $cid) = start_slow($name, 30) or return;

    ok(kill('TERM', $master), "$name - the master $master is told to stop");

    ok($c->drain(15), "$name - the client's connection ends");
    $c->close;
    Test::More::note("$name - the client got: " . describe_client($c));

    ok(wait_gone(15, $w, $master), "$name - the worker and the master exit");
    ok(!-e $Test::Nginx::Util::PidFile, "$name - the pid file is removed");

    my $took = wait_container_gone($cid, 15);
    ok(defined $took, "$name - the container is removed");

    my $left = wait_no_run_containers(10);
    is(scalar @$left, 0, "$name - no container of this run is left")
        or diag("left: " . container_names($left));

    my @killed = error_lines(qr/exited on signal/);
    is(scalar @killed, 0, "$name - no process was killed by a signal")
        or diag(join "\n", @killed);

    check_alerts($name);
}

run_tests();

__DATA__

=== TEST 1: a reload mid-stream: the old worker ends the run, then exits
--- check: check_reload_mid_stream
--- timeout: 60
--- no_error_log
[emerg]



=== TEST 2: a reload, worker_shutdown_timeout shorter than the run
--- main_config
worker_shutdown_timeout 4s;
--- check: check_reload_shutdown_timeout
--- timeout: 60
--- no_error_log
[emerg]



=== TEST 3: a reload right after the request: no container left
--- check: check_reload_on_request
--- timeout: 60
--- no_error_log
[emerg]



=== TEST 4: a reload as soon as the container exists: no container left
--- check: check_reload_on_create
--- timeout: 60
--- no_error_log
[emerg]



=== TEST 5: nginx -s quit (SIGQUIT) mid-run: the run ends, nginx exits
--- check: check_quit_mid_stream
--- timeout: 60
--- no_error_log
[emerg]



=== TEST 6: nginx -s stop (SIGTERM) mid-run: the container is removed
--- check: check_stop_mid_stream
--- timeout: 60
--- no_error_log
[emerg]
