# The container's life: its name and labels while it runs, removed before
# perstack.end is sent, killed and removed when the client goes away, when
# the run times out, and when nginx stops.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx::Socket;
use Perstack;
use Time::HiRes ();

master_on();
workers(1);

my $config = <<'_EOC_';
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    }

    location = /timeout {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_timeout 2s;
        perstack_stop_timeout 1s;
    }

    location = /static {
        return 200 "static\n";
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $config) unless defined $block->config;
    default_request($block, '/run');
});

# Start a run and read until its first runtime event.  Returns the client,
# the execution id and the perstack.execution event's JSON.
sub start_run {
    my ($name, %a) = @_;

    my $c = open_stream(method => 'GET', %a);
    ok($c->wait_event('initializeRuntime', 20),
       "$name - the first runtime event arrives");

    my $id = $c->header('X-Perstack-Execution') // '';
    like($id, qr/\A[0-9a-f]{32}\z/, "$name - X-Perstack-Execution");

    my $x = $c->first_event('perstack.execution');
    return ($c, $id, $x ? $x->{json} : {});
}

sub check_container_while_running {
    my ($block) = @_;
    my $name = $block->name;

    my ($c, $id, $x) = start_run($name,
        path => '/run?expert=slow&query=3');

    my $info = container_info("perstack-$id");
    ok($info, "$name - the container perstack-$id exists while it runs")
        or return;

    is($info->{Name}, "/perstack-$id", "$name - its name");
    is($info->{Id}, $x->{container},
       "$name - perstack.execution.container is its id");
    is($info->{State}{Status}, 'running', "$name - it is running");

    my $labels = $info->{Config}{Labels} || {};
    is($labels->{'io.perstack.managed'}, '1',
       "$name - label io.perstack.managed=1");
    is($labels->{'io.perstack.execution'}, $id,
       "$name - label io.perstack.execution=<id>");

    # the suite tells its containers from others' by this label
    is($labels->{'io.perstack.pid'}, worker_pid(),
       "$name - label io.perstack.pid=<worker pid>");

    is($labels->{'io.perstack.job'}, $x->{job},
       "$name - label io.perstack.job=<job>");
    is($labels->{'io.perstack.expert'}, 'slow',
       "$name - label io.perstack.expert=<expert>");

    # perstack run [options] -- slow 3, the options including
    # --runtime local, --config, --env-path and --job-id <job>
    my @cmd = @{ $info->{Config}{Cmd} || [] };
    my $opts = join ' ', @cmd[2 .. $#cmd - 3];
    is_deeply([@cmd[0, 1], @cmd[-3 .. -1]],
              ['perstack', 'run', '--', 'slow', '3'],
              "$name - the command line: perstack run ... -- slow 3")
        or diag("@cmd");
    like(" $opts ", qr/ --runtime local /, "$name - --runtime local");
    like(" $opts ", qr/ --job-id \Q$x->{job}\E /, "$name - --job-id <job>");
    # (the workspace's perstack.toml and .env never count: t/022)
    like(" $opts ", qr{ --config /etc/perstack/perstack\.toml },
         "$name - --config, perstack_config's default");
    like(" $opts ", qr{ --env-path /dev/null }, "$name - --env-path /dev/null");
    is($info->{Config}{Image}, image_name($Image), "$name - the image");

    # the run ends by itself; the container is gone by perstack.end
    ok($c->wait_event('perstack.end', 20), "$name - perstack.end arrives");
    ok(!container_info("perstack-$id"),
       "$name - the container is already removed when perstack.end "
       . "arrives");

    $c->drain(5);
    $c->close;
    check_stream($name, $c->view, $c->stream, format => 'sse',
                 expert => 'slow', image => $Image);
}

# The client goes away: the container is killed at once, not asked to stop
# (a SIGTERM would leave stubborn running until perstack_stop_timeout), and
# removed.  The engine's event log says which signals it got, in order.
sub disconnect_and_wait {
    my ($name, $c, $id) = @_;

    my $t0 = Time::HiRes::time();
    $c->close;

    my $took = wait_container_gone("perstack-$id", 10);
    ok(defined $took, "$name - the container is removed after the client "
                      . "went away");

    my $signals = kill_signals("perstack-$id", $t0);
    is(join(' ', @{ $signals // ['(the engine did not answer)'] }), '9',
       "$name - killed at once: one SIGKILL, no SIGTERM first");
}

sub check_disconnect {
    my ($block) = @_;
    my $name = $block->name;

    # stubborn ignores SIGTERM: only a kill removes it quickly
    my ($c, $id) = start_run($name, path => '/run?expert=stubborn&query=x');

    ok(container_info("perstack-$id"), "$name - the container is there");
    ok(!$c->has_event('perstack.end'), "$name - the run is not over");

    disconnect_and_wait($name, $c, $id);
}

sub check_disconnect_ndjson {
    my ($block) = @_;
    my $name = $block->name;

    my ($c, $id) = start_run($name, path => '/run?expert=slow&query=30',
                             headers => [Accept => 'application/x-ndjson']);
    is($c->header('Content-Type'), 'application/x-ndjson',
       "$name - an NDJSON stream");
    ok($c->wait_event('streamReasoning', 5), "$name - streamReasoning");

    disconnect_and_wait($name, $c, $id);
}

sub check_disconnect_early {
    my ($block) = @_;
    my $name = $block->name;

    # go away as soon as the response starts, before any runtime event
    my $c = open_stream(method => 'POST', path => '/run',
                        headers => ['Content-Type' => 'application/json'],
                        body => '{"expert":"stubborn","query":"x"}');
    ok($c->read_until(sub { defined $_[0]{status} }, 20),
       "$name - the response header arrives");
    my $id = $c->header('X-Perstack-Execution') // '';

    disconnect_and_wait($name, $c, $id);
}

sub check_disconnect_before_response {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    # go away right after sending the request
    my $c = open_stream(method => 'GET', path => '/run?expert=stubborn&query=x');
    $c->close;

    my $left = wait_no_managed(10);
    is(scalar @$left, 0, "$name - no container is left");

    my @created = container_creates_since($t0);
    cmp_ok(scalar @created, '<=', 1, "$name - at most one was created");
}

sub check_timeout_removes {
    my ($block) = @_;
    my $name = $block->name;

    my ($c, $id) = start_run($name, path => '/timeout?expert=slow&query=30');
    ok(container_info("perstack-$id"), "$name - the container is there");

    ok($c->wait_event('perstack.end', 20), "$name - perstack.end arrives");
    ok(!container_info("perstack-$id"),
       "$name - the container is already removed when perstack.end "
       . "arrives");

    my $end = $c->first_event('perstack.end');
    is($end ? $end->{json}{outcome} : undef, 'timeout', "$name - outcome");
    is($end ? $end->{json}{exit_code} : undef, 143, "$name - exit_code");

    $c->drain(5);
    $c->close;
    check_stream($name, $c->view, $c->stream, format => 'sse',
                 expert => 'slow', image => $Image);
}

sub check_several_disconnects {
    my ($block) = @_;
    my $name = $block->name;

    my @runs = map { [ start_run("$name (run $_)",
                                 path => "/run?expert=slow&query=30") ] }
               1 .. 3;

    my %ids = map { $_->[1] => 1 } @runs;
    is(scalar keys %ids, 3, "$name - three executions");

    # close them all, then wait for each
    $_->[0]->close for @runs;

    for my $r (@runs) {
        my $took = wait_container_gone("perstack-$r->[1]", 10);
        ok(defined $took, "$name - perstack-$r->[1] is removed");
    }
}

sub check_nginx_stop {
    my ($block) = @_;
    my $name = $block->name;

    my ($c, $id) = start_run($name, path => '/run?expert=stubborn&query=x');
    ok(container_info("perstack-$id"), "$name - the container is there");

    my ($master) = nginx_pids();
    ok($master && kill('TERM', $master), "$name - nginx is told to stop");

    my $took = wait_container_gone("perstack-$id", 10);
    ok(defined $took, "$name - the container is removed when nginx stops");
    $c->close;
}

run_tests();

__DATA__

=== TEST 1: while it runs: its name, labels, id and command line; removed by perstack.end
--- check: check_container_while_running
--- timeout: 30



=== TEST 2: the client goes away mid-stream: the container is killed and removed
--- check: check_disconnect
--- timeout: 30



=== TEST 3: the client of an NDJSON stream goes away
--- check: check_disconnect_ndjson
--- timeout: 30



=== TEST 4: the client goes away before any runtime event
--- check: check_disconnect_early
--- timeout: 30



=== TEST 5: the client goes away before the response
--- check: check_disconnect_before_response
--- timeout: 30



=== TEST 6: a timeout removes the container before perstack.end
--- check: check_timeout_removes
--- timeout: 30



=== TEST 7: three clients go away at once
--- check: check_several_disconnects
--- timeout: 30



=== TEST 8: nginx stops (SIGTERM) mid-stream: the container is removed
--- check: check_nginx_stop
--- timeout: 30
