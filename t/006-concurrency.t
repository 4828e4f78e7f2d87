# One worker process, several executions at once: none of them blocks the
# worker, and each gets its own complete stream.

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

    location = /static {
        return 200 "static\n";
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $config) unless defined $block->config;
    default_request($block, '/run');
});

sub check_parallel_slow {
    my ($block) = @_;
    my $name = $block->name;
    my $n = 4;
    my $secs = 5;

    my ($master, @workers) = nginx_pids();
    is(scalar @workers, 1, "$name - one worker process");

    my @c = map {
        open_stream(method => 'GET',
                    path => "/run?expert=slow&query=$secs",
                    headers => ($_ % 2 ? [Accept => 'application/x-ndjson']
                                       : []))
    } 1 .. $n;

    for my $i (0 .. $#c) {
        ok($c[$i]->wait_event('initializeRuntime', 20),
           "$name - run $i: the first runtime event arrives");
    }

    my @ids = map { $_->header('X-Perstack-Execution') // '' } @c;
    my %uniq = map { $_ => 1 } @ids;
    is(scalar keys %uniq, $n, "$name - $n distinct executions");

    # the worker still serves other requests while every run goes on,
    # several times: each answer comes before any run's end
    for my $k (1 .. 5) {
        my $s = http_request(method => 'GET', path => '/static', timeout => 5);

        ok($s->{eof} && ($s->{status} // 0) == 200 && $s->{body} eq "static\n",
           "$name - static request $k: complete response");

        $_->read_available(1 << 20) for @c;
        my @over = grep { $c[$_]->has_event('perstack.end') || $c[$_]->{eof} }
                   0 .. $#c;
        is("@over", '', "$name - static request $k: answered while every "
                        . "run still goes on");
    }

    # none of the runs is over yet
    for my $i (0 .. $#c) {
        $c[$i]->read_available;
        ok(!$c[$i]->has_event('perstack.end'),
           "$name - run $i: no perstack.end yet");
        ok(!$c[$i]->{eof}, "$name - run $i: the connection is open");
        my $info = container_info("perstack-$ids[$i]");
        is($info ? $info->{State}{Status} : 'gone', 'running',
           "$name - run $i: its container is running");
    }

    # now let them all finish
    for my $i (0 .. $#c) {
        ok($c[$i]->drain(30), "$name - run $i: the stream ends");
        $c[$i]->close;

        my $s = $c[$i]->stream;
        check_stream("$name - run $i", $c[$i]->view, $s,
                     format => ($i + 1) % 2 ? 'ndjson' : 'sse',
                     expert => 'slow', image => $Image);
        is_deeply(stdout_types($s),
                  expand_types("initializeRuntime skillConnected startRun "
                               . "startStreamingReasoning streamReasoning*$secs "
                               . "completeStreamingReasoning completeRun "
                               . "skillDisconnected"),
                  "$name - run $i: the event types");
        my $end = $s->{events}[-1]{json} || {};
        is($end->{outcome}, 'completed', "$name - run $i: completed");
        is($end->{exit_code}, 0, "$name - run $i: exit code 0");
    }
}

# Several short runs at once, each with its own query: no event goes to the
# wrong client.
sub check_parallel_demo {
    my ($block) = @_;
    my $name = $block->name;

    my @q = map { "client$_ says hello" } 1 .. 6;
    my @c = map {
        open_stream(method => 'POST', path => '/run',
                    headers => ['Content-Type' => 'application/json'],
                    body => json_encode({ expert => 'demo', query => $_ }))
    } @q;

    # read them all together, round robin, until every one has ended
    my $deadline = Time::HiRes::time() + 30;
    while (Time::HiRes::time() < $deadline) {
        my $open = 0;
        for my $c (@c) {
            next if $c->{eof};
            $open++;
            $c->pump(0.05);
        }
        last unless $open;
    }

    for my $i (0 .. $#c) {
        ok($c[$i]{eof}, "$name - client $i: the stream ended");
        $c[$i]->close;

        my $s = $c[$i]->stream;
        check_stream("$name - client $i", $c[$i]->view, $s,
                     format => 'sse', expert => 'demo', image => $Image);

        my ($init) = grep { $_->{type} eq 'initializeRuntime' }
                     @{ $s->{events} };
        is($init ? $init->{json}{query} : undef, $q[$i],
           "$name - client $i: its own query");

        my $deltas = join '', map { $_->{json}{delta} }
                     grep { $_->{type} eq 'streamRunResult' } @{ $s->{events} };
        is($deltas, "$q[$i] ", "$name - client $i: its own deltas");
    }
}

run_tests();

__DATA__

=== TEST 1: four slow runs on one worker: a static request is answered meanwhile
--- check: check_parallel_slow
--- timeout: 60



=== TEST 2: six demo runs at once: each client gets its own events
--- check: check_parallel_demo
--- timeout: 60
