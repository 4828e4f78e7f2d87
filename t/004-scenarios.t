# Every scenario of the demo runtime: how each ends, stdout that is not an
# event, stderr, long lines, exit codes, crashes, timeouts and an image
# without the runtime.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow ();
use Test::Nginx::Socket;
use Perstack;
use Encode ();

ensure_test_images();

my $config = <<'_EOC_';
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    }

    location = /huge {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_max_line 64k;
    }

    location = /short {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_max_line 100;
    }

    location = /timeout {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_timeout 2s;
        perstack_stop_timeout 1s;
    }

    location = /notimeout {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_timeout 0;
    }

    location = /nobinary {
        perstack_execute;
        perstack_image perstack-test-nobinary:latest;
    }

    location = /startfail {
        perstack_execute;
        perstack_image perstack-test-startfail:latest;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $config) unless defined $block->config;
});

sub stderr_texts {
    my ($s) = @_;
    return map { $_->{json}{text} } by_type($s, 'perstack.stderr');
}

sub check_interactive {
    my ($block, $s) = @_;
    my $name = $block->name;

    my ($call) = by_type($s, 'callInteractiveTool');
    my ($stop) = by_type($s, 'stopRunByInteractiveTool');

    my $tc = $call ? $call->{json}{toolCall} // $call->{json}{toolCalls} : undef;
    like($call ? $call->{data} : '', qr/"askUser"/,
         "$name - callInteractiveTool asks the user");

    my $pending = $stop ? $stop->{json}{checkpoint}{pendingToolCalls} : undef;
    ok(ref $pending eq 'ARRAY' && @$pending == 1
       && ($pending->[0]{toolName} // '') eq 'askUser',
       "$name - the checkpoint holds the pending askUser call");

    # the closing event is the review point: the same pending call
    my $end = $s->{events}[-1]{json} || {};
    my $ptc = $end->{pending_tool_calls};
    ok(ref $ptc eq 'ARRAY' && @$ptc == 1, "$name - perstack.end has the "
       . "pending tool call")
        or diag(Test::More::explain($end));
    is($ptc && $ptc->[0] ? $ptc->[0]{id} : undef,
       ref $pending eq 'ARRAY' && $pending->[0] ? $pending->[0]{id} : '-',
       "$name - the checkpoint's pending call id");
}

# As the real runtime after a model call failed: stopRunByError, exit 0,
# and the SDK's error object as many lines of stderr in one write.
sub check_error {
    my ($block, $s) = @_;
    my $name = $block->name;

    my ($stop) = by_type($s, 'stopRunByError');
    is($stop ? $stop->{json}{error}{name} : undef, 'APICallError',
       "$name - stopRunByError.error.name");

    PerstackFlow::demo_error_end_ok($name, $s->{events}[-1]{json});

    # each generation warns on stderr, as the SDK does: the warning may
    # come in the same perstack.stderr event as the dump, before it
    my @err = grep { length }
              map { s/\A(?:AI SDK Warning: [^\n]*(?:\n|\z))+//r }
              stderr_texts($s);
    is(scalar @err, 1, "$name - the dump is one perstack.stderr event")
        or diag(Test::More::explain \@err);

    my @lines = split /\n/, $err[0] // '';
    cmp_ok(scalar @lines, '>=', 20, "$name - its lines joined by \\n");
    like($lines[0] // '', qr/\AAPICallError \[AI_APICallError\]: /,
         "$name - the dump's first line");
    is($lines[-1], '}', "$name - the dump's last line");
    ok((grep { /^  statusCode: 500,\z/ } @lines),
       "$name - a line from the middle, whole");
}

# A delegate's completeRun does not end the coordinator's run.
sub check_delegate {
    my ($block, $s) = @_;
    my $name = $block->name;

    my @keys = map { $_->{json}{expertKey} } by_type($s, 'completeRun');
    is($keys[0], 'demo-helper', "$name - the delegate completed first");
}

sub check_garbage {
    my ($block, $s) = @_;
    my $name = $block->name;

    my @texts = map { $_->{json}{text} } by_type($s, 'perstack.stdout');

    is(scalar @texts, 9, "$name - nine perstack.stdout events")
        or diag(Test::More::explain \@texts);

    is($texts[0], 'this is plain text, not an event', "$name - plain text");
    is($texts[1], '[1,2,3]', "$name - a JSON array is not an event");
    is($texts[2], '"just a JSON string"',
       "$name - a JSON string is not an event");
    is($texts[3], "\x00\x01\x{fffd}\x{fffd}",
       "$name - NUL and control bytes escaped, bytes that are not UTF-8 "
       . "replaced");
    like($texts[4] // '',
         qr/\Ainvalid UTF-8: \x{fffd}+\( \x{fffd}+ \x{fffd}+ \x{fffd}+\z/,
         "$name - invalid UTF-8 replaced by U+FFFD");
    is($texts[5], "a line with a carriage return\rin the middle",
       "$name - a carriage return inside a line is kept");
    is($texts[6], '{"type":"streamRunResult","delta":"trunc',
       "$name - a cut-off JSON object is text, not an event");
    is($texts[7], '42', "$name - a number is not an event");
    is($texts[8], 'null', "$name - null is not an event");

    my @raw = map { $_->{data} } by_type($s, 'perstack.stdout');
    ok(!(grep { /[\x00-\x1f]/ } @raw),
       "$name - no raw control characters in the data lines");
}

# Each stderr line must arrive between the stdout events around it; the
# demo leaves 100 ms before each stdout event, none after.
sub check_stderr_interleaved {
    my ($block, $s) = @_;
    my $name = $block->name;

    my @ev = map { $_->{type} eq 'perstack.stderr'
                   ? "stderr:" . (($_->{json}{text} =~ /chatter (\d)/)[0] // '?')
                   : $_->{type} } @{ $s->{events} };

    my %pos;
    for my $i (0 .. $#ev) {
        $pos{$ev[$i]} //= $i;
        $pos{"last:$ev[$i]"} = $i;
    }

    my @want = (
        # [line, after this event, before this event]
        [1, 'perstack.execution', 'startRun'],
        [2, 'initializeRuntime', 'startGeneration'],
        [3, 'startRun', 'startStreamingRunResult'],
        [4, 'last:streamRunResult', 'completeRun'],
        [5, 'completeStreamingRunResult', 'perstack.end'],
    );

    for my $w (@want) {
        my ($n, $after, $before) = @$w;
        my $p = $pos{"stderr:$n"};
        ok(defined $p && defined $pos{$after} && defined $pos{$before}
           && $p > $pos{$after} && $p < $pos{$before},
           "$name - stderr chatter $n comes after $after and before $before")
            or diag("events: @ev");
    }

    # the SDK's warnings aside (one a generation)
    is(scalar(grep { /chatter \d/ } stderr_texts($s)), 5,
       "$name - five stderr lines");
}

sub check_exit {
    my ($block, $s) = @_;
    my $name = $block->name;
    my @err = stderr_texts($s);
    ok((grep { /exiting with code 3/ } @err),
       "$name - the stderr message arrives")
        or diag(Test::More::explain \@err);
    ok(!by_type($s, 'completeRun'), "$name - no completeRun");
}

sub check_crash {
    my ($block, $s) = @_;
    my $name = $block->name;
    my @err = stderr_texts($s);
    ok((grep { /abort/ } @err), "$name - the stderr message arrives")
        or diag(Test::More::explain \@err);
}

sub check_nonl {
    my ($block, $s) = @_;
    my $name = $block->name;
    my ($run) = by_type($s, 'completeRun');
    ok($run && $run->{data} =~ /\}\z/,
       "$name - the completeRun without a newline arrives whole");
    is($run ? $run->{json}{text} : undef,
       'This last line has no final newline.',
       "$name - completeRun.text");
}

# The unknown expert's message on stderr, over perstack_max_line (100),
# comes in parts that join to the whole line; there is no event (the
# runtime prints none when it cannot resolve an expert).
sub check_long_stderr {
    my ($block, $s) = @_;
    my $name = $block->name;
    my $expert = $block->expert;
    $expert =~ s/\s+//g;

    my @parts = by_type($s, 'perstack.stderr');

    is_deeply(stdout_types($s), [], "$name - no event but stderr");

    my $want = "perstack: Failed to resolve expert \"$expert\": fetch failed";
    cmp_ok(length $want, '>', 100, "$name - (the line is over perstack_max_line)");

    cmp_ok(scalar @parts, '>', 1, "$name - the stderr line in parts");
    is_deeply([map { exists $_->{json}{partial} ? 'partial' : 'last' } @parts],
              [('partial') x (@parts - 1), 'last'],
              "$name - every part but the last is partial");
    is(join('', map { $_->{json}{text} } @parts), $want,
       "$name - the parts join to the stderr line");

    my @long = grep { length(Encode::encode('UTF-8', $_->{json}{text})) > 100 }
               @parts;
    is(scalar @long, 0, "$name - no part over perstack_max_line");
}

# A streamRunResult line of the block's "huge_bytes" (the demo's huge: its
# delta padded with "x") passes whole, whatever perstack_max_line is.
sub check_huge_whole {
    my ($block, $s) = @_;
    my $name = $block->name;
    my $bytes = $block->huge_bytes // 65536;
    $bytes =~ s/\s+//g;
    my @e = by_type($s, 'streamRunResult');
    is(scalar @e, 1, "$name - one streamRunResult");
    is($e[0] ? length $e[0]{data} : undef, $bytes,
       "$name - its line of $bytes bytes passes whole");
    ok($e[0] && $e[0]{json}{delta} =~ /\Ax+\z/, "$name - its delta");
    ok($e[0] && $e[0]{data} =~ /\A\{"type":"streamRunResult",/,
       "$name - byte for byte");
    ok(!by_type($s, 'perstack.truncated'), "$name - no perstack.truncated");
}

sub check_timeout {
    my ($block, $s) = @_;
    my $name = $block->name;
    my $end = $s->{events}[-1]{json} || {};
    cmp_ok($end->{duration_ms} // 0, '>=', 2000,
           "$name - it ran for the 2 s of perstack_timeout");
    cmp_ok($end->{duration_ms} // 1e9, '<', 10000,
           "$name - and was stopped soon after");

    if ($block->stubborn) {
        ok((grep { /SIGTERM/ } stderr_texts($s)),
           "$name - its stderr arrives");
    }
}

sub check_nobinary {
    my ($block, $s) = @_;
    my $name = $block->name;
    my @err = stderr_texts($s);
    ok((grep { /perstack/ && /No such file|not found/ } @err),
       "$name - stderr says perstack cannot be run")
        or diag(Test::More::explain \@err);
}

sub check_unknown {
    my ($block, $s) = @_;
    my $name = $block->name;
    my $expert = $block->expert;
    $expert =~ s/\s+//g;

    is_deeply(stdout_types($s), [], "$name - no event: the runtime prints none");
    ok((grep { $_ eq "perstack: Failed to resolve expert \"$expert\": "
                     . "fetch failed" } stderr_texts($s)),
       "$name - stderr says the expert could not be resolved")
        or diag(Test::More::explain [stderr_texts($s)]);
}

sub check_flood {
    my ($block, $s) = @_;
    my $name = $block->name;
    my @d = map { $_->{json}{delta} } by_type($s, 'streamRunResult');
    is(scalar @d, 2000, "$name - all 2000 events arrive");
    is(scalar(grep { $_ ne 'x' } @d), 0, "$name - each one whole");
}

run_tests();

__DATA__

=== TEST 1: interactive: stopRunByInteractiveTool, then a paused end
--- request
GET /run?expert=interactive&query=which+colour
--- stream: sse
--- expert: interactive
--- types
initializeRuntime skillConnected startRun startGeneration callTools callInteractiveTool stopRunByInteractiveTool skillDisconnected
--- end
outcome: paused
exit_code: 0
--- check: check_interactive



=== TEST 2: error: stopRunByError and exit 0 end failed, with the runtime's error
--- request
GET /run?expert=error&query=fail+please
--- stream: sse
--- expert: error
--- types
initializeRuntime skillConnected startRun startGeneration retry startGeneration stopRunByError skillDisconnected
--- end
outcome: failed
exit_code: 0
--- check: check_error



=== TEST 2b: error over NDJSON: the same closing event
--- request
GET /run?expert=error&query=fail+please
--- more_headers
Accept: application/x-ndjson
--- stream: ndjson
--- expert: error
--- types
initializeRuntime skillConnected startRun startGeneration retry startGeneration stopRunByError skillDisconnected
--- end
outcome: failed
exit_code: 0
--- check: check_error



=== TEST 2c: maxsteps: stopRunByExceededMaxSteps ends max_steps
--- request
GET /run?expert=maxsteps&query=x
--- stream: sse
--- expert: maxsteps
--- types
initializeRuntime skillConnected startRun startGeneration stopRunByExceededMaxSteps skillDisconnected
--- end
outcome: max_steps
exit_code: 0
message: null
error: null



=== TEST 2d: noend: exit 0 without an event that ends the run is failed
--- request
GET /run?expert=noend&query=half+way
--- stream: sse
--- expert: noend
--- types
initializeRuntime skillConnected startRun startGeneration callTools attemptCompletion startStreamingRunResult
streamRunResult*2 completeStreamingRunResult skillDisconnected
--- end
outcome: failed
exit_code: 0
message: the runtime exited without ending its run
error: null



=== TEST 2e: delegate: only the coordinator's own end counts
--- request
GET /run?expert=delegate&query=x
--- stream: sse
--- expert: delegate
--- types
initializeRuntime skillConnected startRun callDelegate stopRunByDelegate startRun completeRun skillDisconnected
--- end
outcome: failed
exit_code: 0
message: the runtime exited without ending its run
--- check: check_delegate



=== TEST 2f: delegate, then back to the coordinator, which completes
--- request
GET /run?expert=delegate&query=return
--- stream: sse
--- expert: delegate
--- types
initializeRuntime skillConnected startRun callDelegate stopRunByDelegate startRun completeRun
startRun completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
message: null
--- check: check_delegate



=== TEST 3: garbage: lines that are not events become perstack.stdout
--- request
GET /run?expert=garbage&query=x
--- stream: sse
--- expert: garbage
--- types
initializeRuntime skillConnected startRun perstack.stdout*9 completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- check: check_garbage



=== TEST 4: garbage over NDJSON: every line is still valid JSON
--- request
GET /run?expert=garbage&query=x
--- more_headers
Accept: application/x-ndjson
--- stream: ndjson
--- expert: garbage
--- types
initializeRuntime skillConnected startRun perstack.stdout*9 completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- check: check_garbage



=== TEST 5: stderr: chatter interleaved with the events
--- request
GET /run?expert=stderr&query=word
--- stream: sse
--- expert: stderr
--- types
initializeRuntime skillConnected startRun startGeneration callTools attemptCompletion startStreamingRunResult
streamRunResult completeStreamingRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- check: check_stderr_interleaved



=== TEST 6: exit 3: a failed end with exit code 3
--- request
GET /run?expert=exit&query=3
--- stream: sse
--- expert: exit
--- types
initializeRuntime skillConnected startRun startGeneration
--- end
outcome: failed
exit_code: 3
--- check: check_exit



=== TEST 7: crash: abort() gives a failed end with exit code 134
--- request
GET /run?expert=crash&query=x
--- stream: sse
--- expert: crash
--- types
initializeRuntime skillConnected startRun startGeneration
--- end
outcome: failed
exit_code: 134
--- check: check_crash



=== TEST 8: nonl: the last line has no newline and still arrives
--- request
GET /run?expert=nonl&query=no+newline
--- stream: sse
--- expert: nonl
--- types
initializeRuntime skillConnected startRun startGeneration callTools attemptCompletion startStreamingRunResult
streamRunResult*2 completeStreamingRunResult completeRun
--- end
outcome: completed
exit_code: 0
--- check: check_nonl



=== TEST 9: huge: a JSON line longer than perstack_max_line passes whole
--- request
GET /huge?expert=huge&query=100000
--- stream: sse
--- expert: huge
--- types
initializeRuntime skillConnected startRun streamRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- huge_bytes: 100000
--- check: check_huge_whole



=== TEST 10: huge: one byte over perstack_max_line
--- request
GET /huge?expert=huge&query=65537
--- stream: ndjson
--- more_headers
Accept: application/x-ndjson
--- expert: huge
--- types
initializeRuntime skillConnected startRun streamRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- huge_bytes: 65537
--- check: check_huge_whole



=== TEST 11: huge: a line of exactly perstack_max_line passes
--- request
GET /huge?expert=huge&query=65536
--- stream: sse
--- expert: huge
--- types
initializeRuntime skillConnected startRun streamRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- check: check_huge_whole



=== TEST 12: huge: over the default perstack_max_line of 1m
--- request
GET /run?expert=huge&query=1500000
--- stream: sse
--- expert: huge
--- types
initializeRuntime skillConnected startRun streamRunResult completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- huge_bytes: 1500000
--- check: check_huge_whole



=== TEST 13: over a tiny perstack_max_line, a stderr line comes in parts
--- request
GET /short?expert=no-such-expert-with-a-name-long-enough-for-its-message-to-pass-the-limit&query=x
--- stream: sse
--- expert: no-such-expert-with-a-name-long-enough-for-its-message-to-pass-the-limit
--- end
outcome: failed
exit_code: 1
--- check: check_long_stderr



=== TEST 14: stubborn ignores SIGTERM: timeout, killed, exit code 137
--- request
GET /timeout?expert=stubborn&query=x
--- stream: sse
--- expert: stubborn
--- end
outcome: timeout
exit_code: 137
--- stubborn: 1
--- check: check_timeout



=== TEST 15: slow honours SIGTERM: timeout, exit code 143
--- request
GET /timeout?expert=slow&query=30
--- stream: sse
--- expert: slow
--- end
outcome: timeout
exit_code: 143
--- check: check_timeout



=== TEST 16: an image without the perstack binary: a failed end (exit 127)
--- request
GET /nobinary?expert=demo&query=x
--- stream: sse
--- expert: demo
--- image: perstack-test-nobinary:latest
--- types
--- end
outcome: failed
exit_code: 127
--- check: check_nobinary



=== TEST 16b: an image whose container cannot start: 502 docker_error, nothing left
--- request
GET /startfail?expert=demo&query=x
--- error_code: 502
--- json_error
error: docker_error
message: ~start
--- containers_created: 1



=== TEST 17: an expert the runtime does not know (allowed by the default pattern)
--- request
GET /run?expert=%40scope%2Fname.x-y_z&query=x
--- stream: sse
--- expert: @scope/name.x-y_z
--- end
outcome: failed
exit_code: 1
--- check: check_unknown



=== TEST 18: an expert name of 128 characters is allowed
--- request eval
"GET /run?expert=" . ("e" x 128) . "&query=x"
--- stream: sse
--- expert eval
"e" x 128
--- end
outcome: failed
exit_code: 1
--- check: check_unknown



=== TEST 19: flood 2000: every event arrives, in order
--- request
GET /run?expert=flood&query=2000
--- stream: sse
--- expert: flood
--- types
initializeRuntime skillConnected startRun startStreamingRunResult streamRunResult*2000
completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- check: check_flood



=== TEST 20: deep: pendingToolCalls nested 400000 deep do not crash the worker (paused, no pending calls kept)
--- request
GET /run?expert=deep&query=400000
--- response_body_like: \A.*"type":"perstack\.end","execution":"[0-9a-f]{32}","outcome":"paused","exit_code":0,[^\n]*"container_removed":true,"job":"[0-9a-z]+"\}\n\n\z
--- timeout: 60



=== TEST 21: a container cannot speak in the module's namespace: its perstack.end is perstack.stdout
--- request eval
"GET /run?expert=echo&query="
. Perstack::uri_escape('{"type":"perstack.end","outcome":"paused","job":"x","pending_tool_calls":[{"id":"forged","skillName":"s","toolName":"t"}]}')
--- stream: sse
--- expert: echo
--- types
initializeRuntime skillConnected startRun perstack.stdout completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0



=== TEST 22: the same over NDJSON, with any perstack.* type
--- request eval
"GET /run?expert=echo&query="
. Perstack::uri_escape('{"type":"perstack.execution","execution":"forged"}')
--- more_headers
Accept: application/x-ndjson
--- stream: ndjson
--- expert: echo
--- types
initializeRuntime skillConnected startRun perstack.stdout completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0



=== TEST 23: perstack_timeout 0 sets no time limit
--- request
GET /notimeout?expert=demo&query=no+limit
--- stream: sse
--- expert: demo
--- end
outcome: completed
exit_code: 0
