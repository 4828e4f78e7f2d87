# Lines of any length: a stdout line longer than perstack_max_line that is
# a JSON object passes whole, as one event, byte for byte, and its type
# decides the run's end as a short line's would; a long line that turns
# out not to be one JSON object is cut where that shows, and said so by
# perstack.invalid; long text lines (stdout that is not JSON, stderr) come
# in parts that join to the line.  The worker's memory stays flat while a
# 50 MB line passes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;
use Perstack;
use Encode ();
use IO::Select ();
use Time::HiRes ();

master_on();
workers(1);

our $JobsRoot;

my $http_config = <<'_EOC_';
    map $http_x_user $user_ws {
        alice    users/alice;
        default  "";
    }
_EOC_

my $config = <<'_EOC_';
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    }

    location = /job {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace $user_ws;
        perstack_workspace_root $TEST_NGINX_JOBS_ROOT;
    }

    location = /k64 {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_max_line 64k;
    }

    location = /maxout {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_max_output 1m;
    }

    location = /static {
        return 200 "static\n";
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $http_config)
        unless defined $block->http_config;
    $block->set_value('config', $config) unless defined $block->config;
    # a block that makes its own requests in its check
    default_request($block, '/run');

    $JobsRoot = make_dir('jobs-root');
    $ENV{TEST_NGINX_JOBS_ROOT} = $JobsRoot;
});


# ---- what the demo's scenarios print (demo/README.md) ------------------------

my $MAX_LINE = 1024 * 1024;         # perstack_max_line's default
my $K64 = 64 * 1024;

# longend, longerror: the long message's text is this, repeated, then "x"
my $LONG_UNIT = "All work and no play, caf\xc3\xa9 \xe3\x81\x82. ";

# longstderr, longtext: N bytes of a unit repeated, then a pad byte
sub repeated {
    my ($n, $unit, $pad) = @_;
    my $k = int($n / length $unit);
    return ($unit x $k) . ($pad x ($n - $k * length $unit));
}

sub stderr_line { repeated($_[0], "a\xc3\xa9\xe3\x81\x82", 'a') }
sub text_line { repeated($_[0], "\xe3\x81\x82\xe3\x81\x84\xe3\x81\x86", '.') }

# where each one's cut must come at the latest: the "}" that breaks the
# syntax, the end of the forged type's value
my %BAD_LIMIT = (
    longbad   => '","x":',
    longforge => '","type":"perstack.end"',
);


# ---- helpers ---------------------------------------------------------------

sub accept_for {
    my ($format) = @_;
    return (Accept => $format eq 'ndjson' ? 'application/x-ndjson'
                                          : 'text/event-stream');
}

# A whole execution through Perstack::Client, checked with every invariant
# of a stream; returns the client and its stream.
sub run_stream {
    my ($name, $path, $format, %o) = @_;

    my $c = Perstack::http_request(method => 'GET', path => $path,
                                   headers => [accept_for($format)],
                                   timeout => $o{timeout} // 60);
    my $s = $c->stream;

    ok($c->{eof}, "$name - the response ended");
    check_stream($name, $c->view, $s, format => $format,
                 expert => $o{expert});

    return ($c, $s);
}

# The worker that served the requests is the one there was before them, and
# it still answers.
sub worker_alive {
    my ($name, $pid) = @_;
    is(worker_pid(), $pid, "$name - the same worker process ($pid)");
    ok(vmrss_kb($pid), "$name - the worker is alive");
    my $s = Perstack::http_request(method => 'GET', path => '/static',
                                   timeout => 5);
    ok($s->{eof} && ($s->{status} // 0) == 200 && $s->{body} eq "static\n",
       "$name - a static request is answered");
}

# Events of $type in parts: every part but the last says "partial":true,
# each part's text is valid UTF-8 (no character was cut) of at most $max
# bytes, and the texts join to $want (bytes).
sub check_parts {
    my ($name, $s, $type, $want, $max) = @_;

    my @parts = by_type($s, $type);
    cmp_ok(scalar @parts, '>', 1, "$name - $type in parts ("
           . scalar(@parts) . ")");

    is_deeply([map { exists $_->{json}{partial} ? 'partial' : 'last' } @parts],
              [('partial') x (@parts - 1), 'last'],
              "$name - every part but the last says partial");
    ok(!(grep { exists $_->{json}{partial}
                && !(JSON::PP::is_bool($_->{json}{partial})
                     && $_->{json}{partial}) } @parts),
       "$name - partial is true");

    my @texts = map { Encode::encode('UTF-8', $_->{json}{text} // '') } @parts;
    is(scalar(grep { length > $max } @texts), 0,
       "$name - no part's text over $max bytes");
    ok(!(grep { ($_->{json}{text} // '') =~ /\x{fffd}/ } @parts),
       "$name - no character replaced: none was cut");

    my $joined = join '', @texts;
    is(length $joined, length $want, "$name - the parts' texts join to "
       . length($want) . " bytes");
    ok($joined eq $want, "$name - the parts' texts join to the line, exactly");
}


# ---- 1, 2: long, a pause whose lines are over perstack_max_line -------------

# long N: initializeRuntime, startRun, 4 steps of a tool, then the step of
# interactive; the stopRunByInteractiveTool line is a little over N bytes.
my @LONG_TYPES = (qw(initializeRuntime skillConnected startRun),
                  (qw(startGeneration callTools finishAllToolCalls
                      continueToNextStep)) x 4,
                  qw(startGeneration callTools callInteractiveTool
                     stopRunByInteractiveTool skillDisconnected));

sub check_long_paused {
    my ($name, $s, $n) = @_;

    is_deeply(Perstack::stdout_types($s), \@LONG_TYPES,
              "$name - the events of long, whole");

    my ($stop) = by_type($s, 'stopRunByInteractiveTool');
    my ($call) = by_type($s, 'callInteractiveTool');
    my $end = $s->{events}[-1]{json} || {};

    cmp_ok($stop ? length $stop->{data} : 0, '>', $n,
           "$name - the stopRunByInteractiveTool line is over $n bytes");
    is($end->{outcome}, 'paused', "$name - paused");

    my $pending = $stop ? $stop->{json}{checkpoint}{pendingToolCalls} : undef;
    my $tc = $call ? $call->{json}{toolCall} : undef;
    is_deeply($end->{pending_tool_calls}, $pending,
              "$name - perstack.end.pending_tool_calls is the checkpoint's");
    ok(ref $pending eq 'ARRAY' && @$pending == 1 && ref $tc eq 'HASH'
       && ($pending->[0]{id} // '') eq ($tc->{id} // '-')
       && ($pending->[0]{toolName} // '') eq 'askUser'
       && ($pending->[0]{skillName} // '') eq 'user-input',
       "$name - the pending call is callInteractiveTool's askUser");

    return $pending ? $pending->[0] : undef;
}

sub check_long_continued {
    my ($block) = @_;
    my $name = $block->name;
    my $n = 3 * 1024 * 1024;
    my $pid = worker_pid();

    my $c = Perstack::http_request(
        method => 'POST', path => '/job', timeout => 90,
        headers => ['Content-Type' => 'application/json', 'X-User' => 'alice'],
        body => json_encode({ expert => 'long', query => "$n" }));

    my $r = check_run("$name (ask)", $c, expert => 'long', continued => 0,
                      outcome => 'paused', exit_code => 0);
    check_stream("$name (ask)", $c->view, $c->stream, format => 'sse',
                 expert => 'long');
    my $p = check_long_paused("$name (ask)", $c->stream, $n);

    # the module's record of the job has the call: the answer is taken
    my $answer = 'yes, go on';
    $c = Perstack::http_request(
        method => 'POST', path => '/job', timeout => 90,
        headers => ['Content-Type' => 'application/json', 'X-User' => 'alice'],
        body => json_encode({ expert => 'long', jobId => $r->{job},
                              answer => $answer }));

    my $ans = check_run("$name (answer)", $c, expert => 'long', job => $r->{job},
                      continued => 1, outcome => 'completed', exit_code => 0);
    check_stream("$name (answer)", $c->view, $c->stream, format => 'sse',
                 expert => 'long', continued => 1, job => $r->{job});

    # as the real runtime resumes: the answer finishes the tool call, the
    # next step starts, and the run completes
    my @t = @{ $ans->{types} };
    is_deeply([@t[0 .. 5], @t[-2, -1]],
              [qw(initializeRuntime skillConnected startRun
                  finishAllToolCalls continueToNextStep startGeneration
                  completeRun skillDisconnected)],
              "$name (answer) - resumed and completed")
        or diag("@t");

    my $fin = ($ans->{by_type}{finishAllToolCalls} || [])->[0] || {};
    my $part = ((($fin->{newMessages} || [])->[0] || {})->{contents}
                || [])->[0] || {};
    is($part->{toolCallId}, $p ? $p->{id} : '-',
       "$name (answer) - the answer finishes the pending call");

    my $done = ($ans->{by_type}{completeRun} || [])->[0] || {};
    is($done->{text}, "Thanks, you answered: \"$answer\". The demo job is "
       . "done.", "$name (answer) - completeRun carries the answer");

    my ($start) = by_type($c->stream, 'startRun');
    cmp_ok($start ? length $start->{data} : 0, '>', $MAX_LINE,
           "$name (answer) - its startRun line (the paused checkpoint) is "
           . "over perstack_max_line too");

    worker_alive($name, $pid);
}

sub check_long_ndjson {
    my ($block, $s) = @_;
    check_long_paused($block->name, $s, 3 * 1024 * 1024);
}


# ---- 3: longend 50 MB, memory -------------------------------------------------

# Checks a line that is too long to keep, as it streams: its length, and
# its bytes against what longend prints: a head, $LONG_UNIT repeated, then
# a tail (the "x" padding and the rest of the event).  What is kept is the
# head and the tail; reduced() gives the line with the run of units
# replaced by "@@RUN:<count>@@".
package LongLine;

sub new {
    my ($class, $unit) = @_;
    return bless { unit => $unit, block => $unit x 4096, phase => 0,
                   head => '', buf => '', runs => 0, tail => '', len => 0,
                   big_tail => 0 }, $class;
}

sub feed {
    my ($self, $data) = @_;

    $self->{len} += length $data;

    if ($self->{phase} == 0) {
        $self->{head} .= $data;
        my $i = index($self->{head}, $self->{unit});

        if ($i < 0) {
            $self->{phase} = 2 if length $self->{head} > 4 << 20;
            return;
        }

        $data = substr($self->{head}, $i);
        $self->{head} = substr($self->{head}, 0, $i);
        $self->{phase} = 1;
    }

    if ($self->{phase} == 1) {
        my $b = $self->{buf} . $data;
        my ($u, $blk) = ($self->{unit}, $self->{block});
        my ($ul, $bl) = (length $u, length $blk);
        my $p = 0;

        while (length($b) - $p >= $bl && substr($b, $p, $bl) eq $blk) {
            $p += $bl;
            $self->{runs} += 4096;
        }

        while (length($b) - $p >= $ul && substr($b, $p, $ul) eq $u) {
            $p += $ul;
            $self->{runs}++;
        }

        if (length($b) - $p >= $ul) {
            # the run of units is over
            $self->{phase} = 2;
            $self->{buf} = '';
            $data = substr($b, $p);

        } else {
            $self->{buf} = substr($b, $p);
            return;
        }
    }

    if (length($self->{tail}) + length($data) > 4 << 20) {
        $self->{big_tail} = 1;
        return;
    }

    $self->{tail} .= $data;
}

sub reduced {
    my ($self) = @_;
    return $self->{head} if $self->{phase} == 0;
    return $self->{head} . "\@\@RUN:$self->{runs}\@\@"
           . ($self->{phase} == 1 ? $self->{buf} : $self->{tail});
}

package main;

# GET $path: reads the response as it comes, lines over 1 MiB through
# LongLine, and samples the worker's RSS while it does.  Returns
# { status, headers, body (long lines reduced), long => [LongLine], rss,
# eof }.
sub big_request {
    my ($path, $format, $pid, $timeout) = @_;

    my $c = open_stream(method => 'GET', path => $path,
                        headers => [accept_for($format)]);
    my $fh = $c->{fh};
    my $sel = IO::Select->new($fh);

    my %r = (headers => {}, body => '', long => [], rss => [], eof => 0);
    my ($raw, $cur, $long, $head_done, $chunked) = ('', '', undef, 0, 0);
    my ($state, $left) = ('size', 0);

    my $body = sub {
        my ($data) = @_;
        my $p = 0;

        while ((my $i = index($data, "\n", $p)) >= 0) {
            my $piece = substr($data, $p, $i - $p);
            $p = $i + 1;

            if ($long) {
                $long->feed($piece);
                $r{body} .= $long->reduced . "\n";
                push @{ $r{long} }, $long;
                undef $long;
            } else {
                $r{body} .= $cur . $piece . "\n";
                $cur = '';
            }
        }

        my $rest = substr($data, $p);

        if ($long) {
            $long->feed($rest);
        } else {
            $cur .= $rest;
            if (length $cur > 1 << 20) {
                $long = LongLine->new($LONG_UNIT);
                $long->feed($cur);
                $cur = '';
            }
        }
    };

    my $deadline = Time::HiRes::time() + $timeout;
    my $next_sample = 0;

    while (Time::HiRes::time() < $deadline) {
        if (Time::HiRes::time() >= $next_sample) {
            push @{ $r{rss} }, vmrss_kb($pid) // 0;
            $next_sample = Time::HiRes::time() + 0.05;
        }

        next unless $sel->can_read(0.05);

        my $n = sysread($fh, my $buf, 1 << 20);
        if (!$n) {
            $r{eof} = 1;
            last;
        }

        $raw .= $buf;

        if (!$head_done) {
            my $i = index($raw, "\r\n\r\n");
            next if $i < 0;
            my ($line, @lines) = split /\r\n/, substr($raw, 0, $i);
            ($r{status}) = $line =~ m{^HTTP/1\.[01] (\d{3})};
            for (@lines) {
                my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
                $r{headers}{lc $k} = $v;
            }
            $chunked = ($r{headers}{'transfer-encoding'} // '') =~ /chunked/i;
            substr($raw, 0, $i + 4, '');
            $head_done = 1;
        }

        if (!$chunked) {
            $body->($raw);
            $raw = '';
            next;
        }

        while (1) {
            if ($state eq 'size') {
                my $i = index($raw, "\r\n");
                last if $i < 0;
                $left = hex substr($raw, 0, $i);
                substr($raw, 0, $i + 2, '');
                $state = $left ? 'data' : 'done';

            } elsif ($state eq 'data') {
                last unless length $raw;
                my $n = $left < length $raw ? $left : length $raw;
                $body->(substr($raw, 0, $n));
                substr($raw, 0, $n, '');
                $left -= $n;
                $state = 'crlf' unless $left;

            } elsif ($state eq 'crlf') {
                last if length $raw < 2;
                substr($raw, 0, 2, '');
                $state = 'size';

            } else {
                last;
            }
        }
    }

    push @{ $r{rss} }, vmrss_kb($pid) // 0;
    $c->close;

    $r{body} .= $cur;
    $r{complete} = !$chunked || $state eq 'done';

    return \%r;
}

sub check_longend_big {
    my ($block) = @_;
    my $name = $block->name;
    my $format = $block->format;
    $format =~ s/\s+//g;

    my $n = 52428800;
    my $pid = worker_pid();
    ok($pid, "$name - the worker process ($pid)");

    # a first, small run of the same kind: what a worker allocates once
    # for its first execution is not the long line's
    my $w = big_request('/run?expert=longend&query=4096', $format, $pid, 30);
    ok($w->{eof} && $w->{complete}, "$name - a first small run");

    my $base = vmrss_kb($pid) // 0;
    my $r = big_request("/run?expert=longend&query=$n", $format, $pid, 120);

    my ($max) = sort { $b <=> $a } @{ $r->{rss} };
    diag(sprintf "%s: RSS %d kB before, at most %d kB, %d samples",
                 $name, $base, $max, scalar @{ $r->{rss} })
        if $ENV{TEST_VERBOSE};

    ok($r->{eof} && $r->{complete}, "$name - the response ended");

    check_longend($name, $r, $format, $n);

    SKIP: {
        # AddressSanitizer keeps freed memory in quarantine: RSS says
        # nothing about the module there
        skip "$name - RSS under AddressSanitizer", 1
            if ($ENV{TEST_NGINX_PERSTACK_VARIANT} // '') eq 'asan';

        cmp_ok($max - $base, '<', 2048,
               "$name - the worker's RSS grew by less than 2 MB ("
               . ($max - $base) . " kB) while the line passed");
    }
    cmp_ok(scalar @{ $r->{rss} }, '>=', 5, "$name - RSS sampled during the run");

    worker_alive($name, $pid);
}

# What big_request read of longend N: every invariant of the stream, the
# events, and the line, whole.
sub check_longend {
    my ($name, $r, $format, $n) = @_;

    my $view = { code => $r->{status},
                 header => sub { $r->{headers}{lc $_[0]} } };
    my $s = $format eq 'sse' ? parse_sse($r->{body}) : parse_ndjson($r->{body});
    check_stream($name, $view, $s, format => $format, expert => 'longend');

    is_deeply(Perstack::stdout_types($s),
              [qw(initializeRuntime skillConnected startRun completeRun
                  skillDisconnected)], "$name - the events, in order");

    my $end = $s->{events}[-1]{json} || {};
    is($end->{outcome}, 'completed', "$name - completed");
    is($end->{exit_code}, 0, "$name - exit code 0");

    # the line, whole
    is(scalar @{ $r->{long} }, 1, "$name - one line over 1 MiB");
    my $l = $r->{long}[0] || LongLine->new($LONG_UNIT);
    # before the line's bytes: "data: " in SSE, its position in NDJSON
    my ($at) = grep { ($s->{events}[$_]{type} // '') eq 'completeRun' }
               0 .. $#{ $s->{events} };
    my $prefix = $format eq 'sse' ? length 'data: '
                                  : length('"position":' . (($at // 0) + 1)
                                           . ',');

    is($l->{len} - $prefix, $n, "$name - the completeRun line is $n bytes");
    ok(!$l->{big_tail}, "$name - after the repeated text, only its end");

    my ($done) = by_type($s, 'completeRun');
    my $json = $done ? $done->{json} : {};
    is($json->{text}, "Completed with a line of $n bytes.",
       "$name - completeRun.text");

    my @texts = map { $_->{contents}[0]{text} // '' }
                @{ $json->{checkpoint}{messages} || [] };
    my ($long) = grep { /\A\@\@RUN:\d+\@\@/ } @texts;
    my ($runs, $pad) = ($long // '') =~ /\A\@\@RUN:(\d+)\@\@(x*)\z/;

    my $ulen = length $LONG_UNIT;
    ok(defined $runs, "$name - the long text: the unit repeated, then x")
        or diag(printable($long));
    $runs //= 0;
    $pad //= '';

    # longend: the text fills the line up to N bytes
    my $text_len = $runs * $ulen + length $pad;
    my $fill = $n - ($l->{len} - $prefix - $text_len);
    is($runs, int($fill / $ulen), "$name - the unit $runs times");
    is(length $pad, $fill % $ulen, "$name - then " . length($pad) . " x");

    is_deeply([@texts[0, -1]], ["$n", "Completed with a line of $n bytes."],
              "$name - the conversation around it");

    if ($format eq 'sse') {
        my ($blk) = grep { /^data: \{"type":"completeRun"/m }
                    split /\n\n/, $r->{body};
        like(defined $blk ? "$blk\n\n" : '',
             qr/\Aid: [0-9a-f]{32}-\d+\ndata: \{"type":"completeRun"[^\n]*\nevent: completeRun\n\n\z/,
             "$name - SSE: id, data, then event: completeRun after the data");
    }
}


# ---- 4: longerror ------------------------------------------------------------

sub check_longerror {
    my ($block, $s) = @_;
    my $name = $block->name;
    my $n = 4000000;

    my ($stop) = by_type($s, 'stopRunByError');
    is($stop ? length $stop->{data} : undef, $n,
       "$name - the stopRunByError line, $n bytes, whole");

    demo_error_end_ok($name, $s->{events}[-1]{json});
}


# ---- 5, 6: long text lines in parts ------------------------------------------

sub check_longstderr {
    my ($block, $s) = @_;
    my $n = $block->bytes;
    $n =~ s/\s+//g;
    check_parts($block->name, $s, 'perstack.stderr', stderr_line($n), $K64);
}

sub check_longtext {
    my ($block, $s) = @_;
    my $n = $block->bytes;
    $n =~ s/\s+//g;
    check_parts($block->name, $s, 'perstack.stdout', text_line($n), $K64);
}


# ---- 7: long lines that are not one JSON object --------------------------------

sub check_invalid {
    my ($block) = @_;
    my $name = $block->name;
    my ($scenario, $format) = split ' ', $block->scenario;
    my $n = 2000000;
    my $pid = worker_pid();

    my ($c, $s) = run_stream($name, "/run?expert=$scenario&query=$n", $format,
                             expert => $scenario);

    check_invalid_stream($name, $s, $scenario, $n);
    worker_alive($name, $pid);
}

sub check_invalid_stream {
    my ($name, $s, $scenario, $n) = @_;

    is_deeply(Perstack::stdout_types($s),
              [qw(initializeRuntime skillConnected startRun (cut)
                  perstack.invalid completeRun skillDisconnected)],
              "$name - the line cut, perstack.invalid, and the run goes on")
        or diag("@{ Perstack::stdout_types($s) }");

    my @inv = by_type($s, 'perstack.invalid');
    is(scalar @inv, 1, "$name - one perstack.invalid");
    my $j = @inv ? $inv[0]{json} : {};
    is($j->{stream}, 'stdout', "$name - perstack.invalid.stream");
    ok(defined $j->{passed} && $j->{passed} > 0 && $j->{passed} < $n,
       "$name - passed: part of the line (" . ($j->{passed} // 'undef')
       . " of $n bytes)");
    ok(defined $j->{reason} && length $j->{reason},
       "$name - a reason: " . ($j->{reason} // 'undef'));

    # the cut event: the line's first bytes, up to where it went wrong
    my ($cut) = grep { $_->{cut} } @{ $s->{events} };
    my $data = $cut ? $cut->{data} : '';
    is(length $data, $j->{passed} // -1, "$name - the cut event has the "
       . "bytes passed");
    like(substr($data, 0, 200),
         qr/\A\{"type":"streamRunResult","id":"[0-9a-z]{24}","expertKey":/,
         "$name - the line's start, byte for byte");

    my ($after) = $data =~ /"delta":"x*(.*)\z/s;
    ok(defined $after && index($BAD_LIMIT{$scenario}, $after) == 0,
       "$name - cut no later than where the line stopped being one object")
        or diag("after the padding: " . printable($after));

    # a container cannot end the stream: the only perstack.end is the
    # module's, the last event
    my @ends = grep { ($_->{type} // '') eq 'perstack.end' } @{ $s->{events} };
    is(scalar @ends, 1, "$name - one perstack.end");
    ok(@ends && $ends[0] == $s->{events}[-1], "$name - the last event");

    my $end = $s->{events}[-1]{json} || {};
    is($end->{outcome}, 'completed', "$name - completed by the later "
       . "completeRun");
    is($end->{exit_code}, 0, "$name - exit code 0");
    ok(!(grep { ($_->{type} // '') eq 'perstack.truncated' } @{ $s->{events} }),
       "$name - no perstack.truncated");
}


# ---- 8: perstack_max_output stops a run within its one long line --------------

sub check_max_output {
    my ($block) = @_;
    my $name = $block->name;
    my $n = 3000000;
    my $pid = worker_pid();

    my ($c, $s) = run_stream($name, "/maxout?expert=longend&query=$n", 'sse',
                             expert => 'longend');

    my $end = $s->{events}[-1]{json} || {};
    is($end->{outcome}, 'output_limit', "$name - outcome output_limit");
    ok(!by_type($s, 'completeRun'), "$name - no completeRun passed whole");
    ok(!by_type($s, 'skillDisconnected'), "$name - nothing after it");

    my $passed = 0;
    $passed += length $_->{data}
        for grep { $_->{cut} || ($_->{type} // '') !~ /^perstack\./ }
            @{ $s->{events} };
    cmp_ok($passed, '<=', 1024 * 1024,
           "$name - at most perstack_max_output bytes of lines passed "
           . "($passed)");

    worker_alive($name, $pid);
}

run_tests();

__DATA__

=== TEST 1: long (3 MiB) under the default perstack_max_line: paused, with the pending call; the answer completes the job
--- check: check_long_continued
--- timeout: 240



=== TEST 2: long over NDJSON with perstack_max_line 64k: every line whole, paused
--- request
GET /k64?expert=long&query=3145728
--- more_headers
Accept: application/x-ndjson
--- stream: ndjson
--- expert: long
--- end
outcome: paused
exit_code: 0
--- check: check_long_ndjson
--- timeout: 120



=== TEST 3: a 50 MB completeRun line passes whole (SSE); the worker's memory stays flat
--- check: check_longend_big
--- format: sse
--- timeout: 200



=== TEST 4: a 50 MB completeRun line passes whole (NDJSON); the worker's memory stays flat
--- check: check_longend_big
--- format: ndjson
--- timeout: 200



=== TEST 5: longerror: a stopRunByError line of 4000000 bytes ends the run failed, with its error
--- request
GET /run?expert=longerror&query=4000000
--- stream: sse
--- expert: longerror
--- types
initializeRuntime skillConnected startRun startGeneration retry startGeneration stopRunByError skillDisconnected
--- end
outcome: failed
exit_code: 0
--- check: check_longerror
--- timeout: 60



=== TEST 6: longstderr: a stderr line over perstack_max_line comes in parts that join to it
--- request
GET /k64?expert=longstderr&query=1000003
--- stream: sse
--- expert: longstderr
--- types
initializeRuntime skillConnected startRun completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- bytes: 1000003
--- check: check_longstderr
--- timeout: 60



=== TEST 7: longtext: a stdout line over perstack_max_line that is not JSON comes in parts (NDJSON)
--- request
GET /k64?expert=longtext&query=1000004
--- more_headers
Accept: application/x-ndjson
--- stream: ndjson
--- expert: longtext
--- end
outcome: completed
exit_code: 0
--- bytes: 1000004
--- check: check_longtext
--- timeout: 60



=== TEST 7b: longtext over SSE
--- request
GET /k64?expert=longtext&query=200001
--- stream: sse
--- expert: longtext
--- end
outcome: completed
exit_code: 0
--- bytes: 200001
--- check: check_longtext
--- timeout: 60



=== TEST 8: longbad (NDJSON): cut where the syntax breaks, perstack.invalid, the run goes on
--- check: check_invalid
--- scenario: longbad ndjson
--- timeout: 60



=== TEST 9: longbad (SSE)
--- check: check_invalid
--- scenario: longbad sse
--- timeout: 60



=== TEST 10: longforge (NDJSON): a perstack.end behind a long string is never an event
--- check: check_invalid
--- scenario: longforge ndjson
--- timeout: 60



=== TEST 11: longforge (SSE)
--- check: check_invalid
--- scenario: longforge sse
--- timeout: 60



=== TEST 12: perstack_max_output stops a run inside its one long line
--- check: check_max_output
--- timeout: 60
