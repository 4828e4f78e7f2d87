# The demo run as a stream: SSE and NDJSON framing, ids, the order of the
# runtime's events, the query reaching the container intact, GET and POST
# alike, keep-alive pings, and events arriving as they happen.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx::Socket;
use Perstack;
use Time::HiRes ();

my $config = <<'_EOC_';
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    }

    location = /ndjson {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_format ndjson;
    }

    location = /sse {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_format sse;
    }

    location = /pinned {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_expert demo;
        perstack_query "pinned $arg_word";
    }

    location = /ping {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_ping_interval 300ms;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $config) unless defined $block->config;
});

sub words_of {
    my ($q) = @_;
    return join '', map { "$_ " } grep { length } split /[ \t\n\r\x0b\f]+/, $q;
}

# The demo run: what the events say about the query.
sub demo_checks {
    my ($name, $s, $query, $expert) = @_;

    $expert //= 'demo';
    my @rt = grep { ($_->{type} // '') ne 'perstack.stderr' }
             runtime_events($s);
    my %by;
    push @{ $by{$_->{type} // ''} }, $_->{json} for @rt;

    my $init = $by{initializeRuntime}[0] || {};
    is($init->{query}, $query, "$name - initializeRuntime.query is the query");
    is($init->{expertName}, $expert, "$name - initializeRuntime.expertName");
    is($init->{runtime}, 'local', "$name - initializeRuntime.runtime");

    my $deltas = join '', map { $_->{delta} // '(none)' }
                          @{ $by{streamRunResult} || [] };
    is($deltas, words_of($query),
       "$name - the deltas are the query's words, each and a space");

    my $complete = $by{completeStreamingRunResult}[0] || {};
    is($complete->{text}, words_of($query),
       "$name - completeStreamingRunResult.text");

    my $run = $by{completeRun}[0] || {};
    is($run->{text}, "The demo expert received your query: \"$query\".",
       "$name - completeRun.text");

    my %jobs = map { ($_->{json}{jobId} // '') => 1 } @rt;
    is(scalar keys %jobs, 1, "$name - one jobId in every event");
}

sub check_demo {
    my ($block, $s) = @_;
    my $query = $block->query_sent;
    chomp $query unless defined $block->query_exact;
    demo_checks($block->name, $s, $query);
}

# Compare, line by line, with the same run through "docker run": every stdout
# line passes byte for byte (ids and times aside, which are random).
sub check_demo_bytes {
    my ($block, $s) = @_;
    my $name = $block->name;

    check_demo($block, $s);

  SKIP: {
        my $docker = `command -v docker 2>/dev/null`;
        skip "$name - no docker command to compare with", 1 unless $docker;

        # the module's options (perstack_config's default, no .env)
        # its stderr (the SDK's warnings) is not compared
        open my $saved, '>&', \*STDERR or die "dup: $!";
        open STDERR, '>', '/dev/null' or die "/dev/null: $!";
        open my $fh, '-|', 'docker', 'run', '--rm', '--network', 'none',
             $Image, 'perstack', 'run', '--runtime', 'local',
             '--config', '/etc/perstack/perstack.toml',
             '--env-path', '/dev/null', '--', 'demo', 'hello brave new world'
            or die "docker run: $!";
        open STDERR, '>&', $saved or die "dup: $!";
        binmode $fh;
        my @direct = map { chomp; normalize_event_line($_) } <$fh>;
        close $fh;

        my @streamed = map { normalize_event_line($_->{data}) }
                       grep { ($_->{type} // '') ne 'perstack.stderr' }
                       runtime_events($s);

        is_deeply(\@streamed, \@direct,
                  "$name - the events are the container's stdout lines, "
                  . "byte for byte");
    }
}

# GET with arguments and POST with JSON: the same run.
sub check_get_post {
    my ($block) = @_;
    my $name = $block->name;
    my $query = "same run, both ways";

    my $get = http_request(method => 'GET',
                           path => '/run?expert=demo&query=same+run%2C+both+ways');
    my $post = http_request(method => 'POST', path => '/run',
                            headers => ['Content-Type' => 'application/json'],
                            body => json_encode({ expert => 'demo',
                                                  query => $query }));

    for my $c ([GET => $get], [POST => $post]) {
        check_stream("$name ($c->[0])", $c->[1]->view, $c->[1]->stream,
                     format => 'sse', expert => 'demo', image => $Image);
        demo_checks("$name ($c->[0])", $c->[1]->stream, $query);
    }

    # stdout's lines (stderr's may be grouped differently)
    my $lines = sub {
        [ map { normalize_event_line($_->{data}) }
          grep { ($_->{type} // '') ne 'perstack.stderr' }
          runtime_events($_[0]) ]
    };
    is_deeply($lines->($get->stream), $lines->($post->stream),
              "$name - GET and POST give the same events");

    isnt($get->header('X-Perstack-Execution'),
         $post->header('X-Perstack-Execution'),
         "$name - each request is its own execution");
}

# Events arrive as the container prints them, not all at the end.
sub check_incremental {
    my ($block) = @_;
    my $name = $block->name;

    my $c = open_stream(method => 'GET',
        path => '/run?expert=demo&query=one+two+three+four+five+six+seven');

    ok($c->wait_event('initializeRuntime', 20),
       "$name - initializeRuntime arrives");
    my $n_first = () = $c->events;
    ok(!$c->has_event('perstack.end'),
       "$name - perstack.end is not there yet when initializeRuntime is");

    ok($c->wait_event('streamRunResult', 10),
       "$name - the first streamRunResult arrives");
    my @results = grep { ($_->{type} // '') eq 'streamRunResult' }
                  $c->events;
    ok(!$c->has_event('completeRun'),
       "$name - before completeRun");

    ok($c->wait_event('perstack.end', 20), "$name - perstack.end arrives");
    $c->drain(5);
    $c->close;

    # the order the client read them in: the rest came after
    my $n_end = () = $c->events;
    my $results_end = grep { ($_->{type} // '') eq 'streamRunResult' }
                      $c->events;
    cmp_ok($n_first, '<', $n_end,
           "$name - events came after initializeRuntime had been read");
    cmp_ok(scalar @results, '<', $results_end,
           "$name - streamRunResult events came after the first was read");

    check_stream($name, $c->view, $c->stream, format => 'sse',
                 expert => 'demo', image => $Image);
}

sub check_pings {
    my ($block, $s) = @_;
    my $name = $block->name;

    cmp_ok($s->{pings}, '>=', 2, "$name - keep-alive pings were sent");

    # pings come between events, never before the first one
    my @order = @{ $s->{order} };
    is($order[0], 'event', "$name - the stream starts with an event");
    is($order[-1], 'event', "$name - the stream ends with an event");
}

run_tests();

__DATA__

=== TEST 1: demo over SSE (GET)
--- request
GET /run?expert=demo&query=hello+brave+new+world
--- stream: sse
--- expert: demo
--- types
initializeRuntime skillConnected startRun startGeneration callTools attemptCompletion startStreamingRunResult
streamRunResult*4 completeStreamingRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
container_removed: true
--- query_sent
hello brave new world
--- check: check_demo_bytes
--- response_headers_like
X-Perstack-Execution: ^[0-9a-f]{32}$



=== TEST 2: demo over SSE (POST JSON)
--- request eval
"POST /run\n" . '{"expert":"demo","query":"hello brave new world"}'
--- more_headers
Content-Type: application/json
--- stream: sse
--- expert: demo
--- types
initializeRuntime skillConnected startRun startGeneration callTools attemptCompletion startStreamingRunResult
streamRunResult*4 completeStreamingRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- query_sent
hello brave new world
--- check: check_demo



=== TEST 3: NDJSON when Accept asks for it
--- request
GET /run?expert=demo&query=hello+brave+new+world
--- more_headers
Accept: application/x-ndjson
--- stream: ndjson
--- expert: demo
--- types
initializeRuntime skillConnected startRun startGeneration callTools attemptCompletion startStreamingRunResult
streamRunResult*4 completeStreamingRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- query_sent
hello brave new world
--- check: check_demo



=== TEST 4: NDJSON when Accept lists it among others (POST)
--- request eval
"POST /run\n" . '{"query":"two words","expert":"demo"}'
--- more_headers
Accept: text/html, application/x-ndjson;q=0.9, */*;q=0.1
--- stream: ndjson
--- expert: demo
--- types
initializeRuntime skillConnected startRun startGeneration callTools attemptCompletion startStreamingRunResult
streamRunResult*2 completeStreamingRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- query_sent
two words
--- check: check_demo



=== TEST 5: SSE when Accept asks for it
--- request
GET /run?expert=demo&query=sse
--- more_headers
Accept: text/event-stream
--- stream: sse
--- expert: demo
--- types
initializeRuntime skillConnected startRun startGeneration callTools attemptCompletion startStreamingRunResult
streamRunResult completeStreamingRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0



=== TEST 6: SSE when Accept is */*
--- request
GET /run?expert=demo&query=sse
--- more_headers
Accept: */*
--- stream: sse
--- expert: demo
--- end
outcome: completed
exit_code: 0



=== TEST 7: perstack_format ndjson without Accept
--- request
GET /ndjson?expert=demo&query=hello+brave+new+world
--- stream: ndjson
--- expert: demo
--- types
initializeRuntime skillConnected startRun startGeneration callTools attemptCompletion startStreamingRunResult
streamRunResult*4 completeStreamingRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- query_sent
hello brave new world
--- check: check_demo



=== TEST 8: perstack_format sse wins over Accept
--- request
GET /sse?expert=demo&query=forced
--- more_headers
Accept: application/x-ndjson
--- stream: sse
--- expert: demo
--- types
initializeRuntime skillConnected startRun startGeneration callTools attemptCompletion startStreamingRunResult
streamRunResult completeStreamingRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0



=== TEST 9: GET arguments and a POST JSON body give the same run
--- request
GET /sse?expert=demo&query=warm+up
--- stream: sse
--- check: check_get_post
--- timeout: 30



=== TEST 10: unicode in the query (GET, percent-encoded UTF-8)
--- request
GET /run?expert=demo&query=h%C3%A9llo+%E4%B8%96%E7%95%8C+%F0%9F%9A%80
--- stream: sse
--- expert: demo
--- types
initializeRuntime skillConnected startRun startGeneration callTools attemptCompletion startStreamingRunResult
streamRunResult*3 completeStreamingRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- query_sent eval
"h\x{e9}llo \x{4e16}\x{754c} \x{1f680}"
--- query_exact
--- check: check_demo



=== TEST 11: unicode in the query (POST, raw UTF-8 and \u escapes)
--- request eval
"POST /run\n" . '{"expert":"demo","query":"h' . "\xc3\xa9" . 'llo \u4e16\u754c \ud83d\ude80"}'
--- stream: sse
--- expert: demo
--- end
outcome: completed
exit_code: 0
--- query_sent eval
"h\x{e9}llo \x{4e16}\x{754c} \x{1f680}"
--- query_exact
--- check: check_demo



=== TEST 12: quotes, backslashes, newlines and tabs reach the container intact (POST)
--- request eval
"POST /run\n" . '{"expert":"demo","query":"say \"hi\" \\\\ back\\\\slash\nnext\tline \\\\n \u0001"}'
--- stream: sse
--- expert: demo
--- end
outcome: completed
exit_code: 0
--- query_sent eval
"say \"hi\" \\ back\\slash\nnext\tline \\n \x01"
--- query_exact
--- check: check_demo



=== TEST 13: quotes, backslashes and newlines reach the container intact (GET)
--- request
GET /run?expert=demo&query=%22quoted%22+back%5Cslash%0Anew+line+%27single%27+%24HOME+%60id%60
--- stream: sse
--- expert: demo
--- end
outcome: completed
exit_code: 0
--- query_sent eval
"\"quoted\" back\\slash\nnew line 'single' \$HOME `id`"
--- query_exact
--- check: check_demo



=== TEST 14: "+" is a space, "%2B" is a plus
--- request
GET /run?expert=demo&query=1+%2B+1
--- stream: sse
--- expert: demo
--- end
outcome: completed
exit_code: 0
--- query_sent
1 + 1
--- check: check_demo



=== TEST 15: a query that looks like an option is still the query
--- request
GET /run?expert=demo&query=--help
--- stream: sse
--- expert: demo
--- types
initializeRuntime skillConnected startRun startGeneration callTools attemptCompletion startStreamingRunResult
streamRunResult completeStreamingRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- query_sent
--help
--- check: check_demo



=== TEST 16: perstack_expert and perstack_query (with a variable) override the request
--- request eval
"POST /pinned?word=config\n" . '{"expert":"error","query":"ignored"}'
--- stream: sse
--- expert: demo
--- types
initializeRuntime skillConnected startRun startGeneration callTools attemptCompletion startStreamingRunResult
streamRunResult*2 completeStreamingRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- query_sent
pinned config
--- check: check_demo



=== TEST 17: SSE keep-alive pings while the run is silent
--- request
GET /ping?expert=slow&query=2
--- stream: sse
--- expert: slow
--- types
initializeRuntime skillConnected startRun startStreamingReasoning streamReasoning*2
completeStreamingReasoning completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- check: check_pings



=== TEST 18: NDJSON keep-alive: empty lines while the run is silent
--- request
GET /ping?expert=slow&query=2
--- more_headers
Accept: application/x-ndjson
--- stream: ndjson
--- expert: slow
--- types
initializeRuntime skillConnected startRun startStreamingReasoning streamReasoning*2
completeStreamingReasoning completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- check: check_pings



=== TEST 19: no pings with the default interval on a short run
--- request
GET /run?expert=slow&query=1
--- stream: sse
--- expert: slow
--- end
outcome: completed
exit_code: 0
--- response_body_unlike
^: ping



=== TEST 20: events are sent as they happen
--- request
GET /sse?expert=demo&query=warm+up
--- stream: sse
--- check: check_incremental
--- timeout: 30



=== TEST 21: an HTTP/1.0 client: the stream ends when the connection closes
--- raw_request eval
"GET /run?expert=demo&query=old+client HTTP/1.0\r
Host: localhost\r
\r
"
--- stream: sse
--- expert: demo
--- types
initializeRuntime skillConnected startRun startGeneration callTools attemptCompletion startStreamingRunResult
streamRunResult*2 completeStreamingRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- query_sent
old client
--- check: check_demo
--- response_headers
!Transfer-Encoding
!Content-Length
