# Backpressure: a run that prints far more than a slow client reads.  The
# worker's memory stays flat and the container is held back (still running)
# instead of the output piling up in nginx.

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
    location = /flood {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_buffer_size 16k;
        # 300000 events are about 70 MB of stream: over the record's
        # default bound, which ends an execution (t/026)
        perstack_record_max_size 256m;
    }

    location = /static {
        return 200 "static\n";
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $config) unless defined $block->config;
    default_request($block, '/flood');
});

my $EVENTS = 300000;     # about 230 bytes each: some 70 MB of output
my $LIMIT_KB = 32 * 1024;

# Read a little at a time for $secs seconds; sample the worker's RSS.
sub read_slowly {
    my ($c, $pid, $secs) = @_;

    my @rss;
    my $deadline = Time::HiRes::time() + $secs;
    my $next_sample = 0;

    while (Time::HiRes::time() < $deadline) {
        if (Time::HiRes::time() >= $next_sample) {
            push @rss, vmrss_kb($pid) // 0;
            $next_sample = Time::HiRes::time() + 0.5;
        }
        $c->pump(0, 512);
        Time::HiRes::sleep(0.1);   # the client's own pace: it is slow
    }

    push @rss, vmrss_kb($pid) // 0;
    return @rss;
}

sub start_flood {
    my ($name, %a) = @_;

    my $pid = worker_pid();
    ok($pid, "$name - the worker process ($pid)");
    my $base = vmrss_kb($pid) // 0;

    my $c = open_stream(method => 'GET', path => "/flood?expert=flood&query=$EVENTS",
                        rcvbuf => 4096, %a);

    ok($c->wait_event('startStreamingRunResult', 20),
       "$name - the run starts");
    my $id = $c->header('X-Perstack-Execution') // '';

    return ($c, $id, $pid, $base);
}

sub check_stalled_client {
    my ($block) = @_;
    my $name = $block->name;

    my ($c, $id, $pid, $base) = start_flood($name, light => 'streamRunResult');

    my @rss = read_slowly($c, $pid, 6);
    my ($max) = sort { $b <=> $a } @rss;

    diag(sprintf "%s: RSS %d kB before, samples %s kB; read %d bytes",
                 $name, $base, join(' ', @rss), $c->{bytes})
        if $ENV{TEST_VERBOSE};

    cmp_ok(scalar @rss, '>=', 10, "$name - RSS sampled while stalled");
    SKIP: {
        # AddressSanitizer keeps freed memory in quarantine (256 MB) and
        # shadows all of it: RSS says nothing about the module there
        skip "$name - RSS under AddressSanitizer", 1
            if ($ENV{TEST_NGINX_PERSTACK_VARIANT} // '') eq 'asan';

        cmp_ok($max - $base, '<', $LIMIT_KB,
               "$name - the worker's RSS grew by less than 32 MB ("
               . ($max - $base) . " kB)");
    }
    cmp_ok($c->{bytes}, '<', 2 * 1024 * 1024,
           "$name - the client really read slowly ($c->{bytes} bytes)");

    my $info = container_info("perstack-$id");
    ok($info && $info->{State}{Running},
       "$name - the container is still running: held back, not done");

    static_ok($name, 'while the client is stalled');

    # What was queued for the client while it stalled: at most the
    # socket's send buffer (tcp_wmem's maximum is 4 MB) and the module's
    # own buffers.  Once the client reads, the run flows again and would
    # reach its end, so stop well before the 70 MB it prints.
    $c->read_available(8 * 1024 * 1024);
    ok(!$c->has_event('perstack.end'), "$name - no perstack.end yet")
        or diag(JSON::PP->new->canonical->encode(
                    $c->first_event('perstack.end')));

    my $t0 = Time::HiRes::time();
    $c->close;
    my $took = wait_container_gone("perstack-$id", 10);
    ok(defined $took, "$name - the container is removed after the client "
                      . "went away");

    ok(vmrss_kb($pid), "$name - the worker is alive");
    static_ok($name, 'after the client went away');
}

sub check_stall_then_drain {
    my ($block) = @_;
    my $name = $block->name;
    my $format = $block->format;
    $format =~ s/\s+//g;

    my ($c, $id, $pid, $base) = start_flood($name, light => 'streamRunResult',
        headers => [Accept => $format eq 'ndjson' ? 'application/x-ndjson'
                                                  : 'text/event-stream']);

    my @rss = read_slowly($c, $pid, 3);
    my $info = container_info("perstack-$id");
    ok($info && $info->{State}{Running},
       "$name - the container is held back while the client is slow");
    static_ok($name, 'while the client is slow');

    # now read at full speed: nothing was lost
    ok($c->drain(60), "$name - the stream ends");
    $c->close;

    my $s = $c->stream;
    is_deeply($s->{errors}, [], "$name - well formed $format");
    is($s->{counts}{streamRunResult}, $EVENTS,
       "$name - all $EVENTS streamRunResult events arrived");

    my @types = map { $_->{type} } @{ $s->{events} };
    is_deeply(\@types, ['perstack.execution', 'initializeRuntime',
                        'skillConnected', 'startRun',
                        'startStreamingRunResult', 'completeRun',
                        'skillDisconnected', 'perstack.end'],
              "$name - the other events");

    my $end = @{ $s->{events} } ? $s->{events}[-1]{json} : {};
    is($end->{outcome}, 'completed', "$name - completed");
    is($end->{exit_code}, 0, "$name - exit code 0");
    is($end->{events}, $s->{total}, "$name - perstack.end counts every event");
    is($end->{execution}, $id, "$name - the execution");
    ok(!container_info("perstack-$id"), "$name - the container is removed");
    static_ok($name, 'afterwards');
}

run_tests();

__DATA__

=== TEST 1: a stalled client: bounded memory, the container held back, removed on close
--- check: check_stalled_client
--- timeout: 60



=== TEST 2: a slow client, then a fast one: nothing lost (SSE)
--- check: check_stall_then_drain
--- format: sse
--- timeout: 90



=== TEST 3: a slow client, then a fast one: nothing lost (NDJSON)
--- check: check_stall_then_drain
--- format: ndjson
--- timeout: 90
