# The access log's variables ($perstack_execution, $perstack_job,
# $perstack_expert, $perstack_container, $perstack_outcome,
# $perstack_exit_code, $perstack_events, $perstack_duration,
# $perstack_ttfe): one log line of each way a request ends, its values
# compared with what the stream itself said.  And the debug log: one line
# for each of an execution's state transitions, with its id.

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

$Perstack::Detach = 1;

our $RunId = unique_name('logvars');
$ENV{TEST_NGINX_LOGVARS_RUN} = $RunId;

my $http_config = <<'_EOC_';
    log_format perstack escape=json
        '{"uri":"$request_uri","status":"$status",'
        '"execution":"$perstack_execution","job":"$perstack_job",'
        '"expert":"$perstack_expert","container":"$perstack_container",'
        '"outcome":"$perstack_outcome","exit_code":"$perstack_exit_code",'
        '"events":"$perstack_events","duration":"$perstack_duration",'
        '"ttfe":"$perstack_ttfe"}';
_EOC_

my $config = <<'_EOC_';
    access_log logs/perstack.log perstack;

    perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    perstack_label test.perstack.logvars-run $TEST_NGINX_LOGVARS_RUN;
    perstack_detach_timeout 0;

    location = /run {
        perstack_execute;
    }

    location = /short {
        perstack_execute;
        perstack_timeout 2s;
        perstack_stop_timeout 1s;
    }

    location = /detach {
        perstack_execute;
        perstack_detach_timeout 30s;
    }

    location = /missing {
        perstack_execute;
        perstack_image perstack-test-missing:$TEST_NGINX_LOGVARS_RUN;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $http_config)
        unless defined $block->http_config;
    $block->set_value('config', $config) unless defined $block->config;
    default_request($block, '/run');
});


# The log line of the request whose URI has $marker (waiting, bounded,
# for it: a request is logged once it let go of its execution).
sub log_line {
    my ($marker) = @_;
    my $found;

    poll(15, sub {
        open my $fh, '<', "$Test::Nginx::Util::ServRoot/logs/perstack.log"
            or return 0;
        while (my $l = <$fh>) {
            my $e = eval { json_decode($l) } or next;
            $found = $e if index($e->{uri}, $marker) >= 0;
        }
        close $fh;
        return $found;
    });

    return $found || {};
}

# A whole run, and its log line checked against its stream.
sub check_ran {
    my ($name, $path, $outcome) = @_;

    my $c = http_request(method => 'GET', path => $path, timeout => 60);
    my $x = ($c->first_event('perstack.execution') || {})->{json} || {};
    my $end = ($c->first_event('perstack.end') || {})->{json} || {};
    my $l = log_line($path);

    is($l->{outcome}, $outcome, "$name - \$perstack_outcome $outcome");
    is($end->{outcome}, $outcome, "$name - as perstack.end says");
    like($l->{execution}, qr/\A[0-9a-f]{32}\z/, "$name - \$perstack_execution");
    is($l->{execution}, $c->header('X-Perstack-Execution'),
       "$name - the execution of X-Perstack-Execution");
    is($l->{container}, $x->{container},
       "$name - \$perstack_container: perstack.execution's");
    is($l->{job}, $x->{job}, "$name - \$perstack_job: perstack.execution's");
    is($l->{expert}, $x->{expert}, "$name - \$perstack_expert");
    is($l->{exit_code}, $end->{exit_code} // '',
       "$name - \$perstack_exit_code: perstack.end's");
    is($l->{events}, $end->{events}, "$name - \$perstack_events: "
                                     . "perstack.end's");
    like($l->{duration}, qr/\A[0-9]+\.[0-9]{3}\z/,
         "$name - \$perstack_duration in seconds");
    like($l->{ttfe}, qr/\A[0-9]+\.[0-9]{3}\z/,
         "$name - \$perstack_ttfe in seconds");
    cmp_ok($l->{ttfe}, '<=', $l->{duration} + 1,
           "$name - the first event came within the run");
    cmp_ok(abs($l->{duration} * 1000 - $end->{duration_ms}), '<', 1000,
           "$name - \$perstack_duration is perstack.end's duration_ms");

    return $l;
}


sub check_outcomes {
    my ($block) = @_;
    my $name = $block->name;

    check_ran("$name (completed)", '/run?expert=demo&query=log+completed',
              'completed');
    check_ran("$name (failed)", '/run?expert=error&query=log+failed',
              'failed');
    check_ran("$name (paused)", '/run?expert=interactive&query=log+paused',
              'paused');
    check_ran("$name (max_steps)", '/run?expert=maxsteps&query=log+steps',
              'max_steps');
    check_ran("$name (timeout)", '/short?expert=slow&query=30', 'timeout');
}


sub check_gone {
    my ($block) = @_;
    my $name = $block->name;

    # the client goes: client_gone (perstack_detach_timeout 0)
    my ($c, $cid) = start_slow("$name (client_gone)", 30) or return;
    my $id = $c->header('X-Perstack-Execution');
    $c->close;
    my $l = log_line('/run?expert=slow&query=30');
    is($l->{outcome}, 'client_gone', "$name - \$perstack_outcome client_gone");
    is($l->{execution}, $id, "$name - \$perstack_execution");
    is($l->{container}, $cid, "$name - \$perstack_container");
    like($l->{events}, qr/\A[0-9]+\z/, "$name - \$perstack_events");
    ok(defined wait_container_gone($cid, 20), "$name - the container is gone");

    # the client goes, the execution runs on: detached
    my $d = open_stream(method => 'GET', path => '/detach?expert=slow&query=30');
    ok($d->wait_event('streamReasoning', 20), "$name - a detachable run");
    my $did = $d->header('X-Perstack-Execution');
    $d->close;
    my $dl = log_line('/detach?expert=slow&query=30');
    is($dl->{outcome}, 'detached', "$name - \$perstack_outcome detached");
    is($dl->{execution}, $did, "$name - the detached execution");

    # its cancel is logged with the execution it named
    my $x = http_request(method => 'DELETE', path => "/detach?execution=$did",
                         timeout => 10);
    is($x->{status}, 202, "$name - cancelled");
    my $xl = log_line("/detach?execution=$did");
    is($xl->{execution}, $did, "$name - DELETE: \$perstack_execution");
    is($xl->{expert}, 'slow', "$name - DELETE: \$perstack_expert, the "
                              . "record's");
    ok(poll(20, sub { !label_containers("test.perstack.logvars-run=$RunId") }),
       "$name - the cancelled execution's container is removed");

    # a follower that had its end: the execution's outcome
    my $f = http_request(method => 'GET', path => "/detach?lastEventId=$did-1",
                         timeout => 20);
    my $fend = end_event($f) // {};
    is($fend->{outcome}, 'cancelled', "$name - the follower had the end");
    my $fl = log_line("/detach?lastEventId=$did-1");
    is($fl->{outcome}, $fend->{outcome},
       "$name - a follower: \$perstack_outcome, as the end it had");
    is($fl->{execution}, $did, "$name - a follower: \$perstack_execution");

    # and one that had it already: 204, the same outcome
    my $n = $fend->{events} // 0;
    my $g = http_request(method => 'GET', path => "/detach?lastEventId=$did-$n",
                         timeout => 10);
    is($g->{status}, 204, "$name - after the end: 204");
    is(log_line("/detach?lastEventId=$did-$n")->{outcome}, 'cancelled',
       "$name - 204: \$perstack_outcome cancelled");
}


sub check_refused {
    my ($block) = @_;
    my $name = $block->name;

    my $r = http_request(method => 'GET', path => '/run?query=log+noexpert',
                         timeout => 10);
    is($r->{status}, 400, "$name - no expert: 400");
    my $l = log_line('/run?query=log+noexpert');
    is($l->{outcome}, 'bad_request', "$name - \$perstack_outcome bad_request");
    is($l->{execution}, '', "$name - no \$perstack_execution");
    is($l->{events}, '', "$name - no \$perstack_events");

    my $m = http_request(method => 'GET',
                         path => '/missing?expert=demo&query=log+missing',
                         timeout => 30);
    is($m->{status}, 502, "$name - a missing image: 502");
    my $ml = log_line('/missing?expert=demo&query=log+missing');
    is($ml->{outcome}, 'image_not_found',
       "$name - \$perstack_outcome image_not_found");
    like($ml->{execution}, qr/\A[0-9a-f]{32}\z/,
         "$name - the execution that could not start");
    is($ml->{container}, '', "$name - no container");

    my $u = http_request(method => 'GET', path => '/run?execution=' . ('a' x 32),
                         timeout => 10);
    is($u->{status}, 404, "$name - an unknown execution: 404");
    my $ul = log_line('/run?execution=' . ('a' x 32));
    is($ul->{outcome}, 'not_found', "$name - \$perstack_outcome not_found");
    is($ul->{execution}, 'a' x 32, "$name - the id it named");
}


sub check_debug_log {
    my ($block) = @_;
    my $name = $block->name;

    my $c = http_request(method => 'GET', path => '/run?expert=demo&query=dbg',
                         timeout => 30);
    my $id = $c->header('X-Perstack-Execution') // '';
    like($id, qr/\A[0-9a-f]{32}\z/, "$name - the run ran");

    # the line of the last transition is written before the request ends
    my @steps;
    poll(10, sub {
        @steps = map { /perstack execution: (\w+) -> (\w+)/ ? "$1>$2" : () }
                 error_lines(qr/perstack execution: \w+ -> \w+, execution: $id\b/);
        return grep { $_ eq 'remove>done' } @steps;
    });

    is_deeply(\@steps,
              [qw(new>ping ping>create create>attach attach>start
                  start>running running>wait wait>remove remove>done)],
              "$name - each transition, once, in order, with the id")
        or diag("@steps");
}


run_tests();

__DATA__

=== TEST 1: the runtime's outcomes, and a timeout
--- check: check_outcomes
--- timeout: 120



=== TEST 2: a client that goes: client_gone, detached; a DELETE
--- check: check_gone
--- timeout: 90



=== TEST 3: refusals: their error code
--- check: check_refused
--- timeout: 60



=== TEST 4: the debug log: every state transition, with the execution's id
--- check: check_debug_log
--- log_level: debug
--- timeout: 60
