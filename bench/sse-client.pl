#!/usr/bin/env perl
# The HTTP client of the benchmarks, for the module (perstack_execute) and
# for the peer (bench/peer): GET URL, an SSE stream, on 127.0.0.1 only.
# Core Perl only.
#
#   sse-client.pl first URL
#       prints the milliseconds from connect() to the first runtime event
#       (the first "data:" that is not the module's own "perstack.*"), then
#       reads the stream to its end and prints how many events it had
#   sse-client.pl drain URL
#       reads as fast as it can (1 MiB reads); prints JSON: body bytes,
#       events, seconds from the first runtime event to the one with
#       "completeRun", seconds from connect() to the end, complete or not
#   sse-client.pl hold URL N [--ramp K]
#       N streams, at most K (default 8) starting at once; each is read
#       until its first runtime event and then not read at all.  Prints
#       "live N ERRORS SECONDS" when all have started, holds them until its
#       stdin ends (or a line), closes them and exits
#   sse-client.pl load URL --concurrency C --count M
#       M executions, C at a time (closed loop: a new one as soon as one
#       ends); prints JSON: completed, errors, seconds, executions/s
#
# A stream is complete when its status is 200, its chunked body ends
# properly (the last chunk), it had the runtime's "completeRun" and, when it
# is the module's (it had perstack.execution), its last event is perstack.end
# with outcome "completed".  Exit status: 0 when every stream was complete,
# 1 otherwise, 2 on a usage error.

use strict;
use warnings;

use Getopt::Long qw(GetOptionsFromArray);
use IO::Select ();
use IO::Socket::INET ();
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);

my $mode = shift @ARGV // '';
my ($ramp, $concurrency, $count) = (8, 1, 1);
GetOptionsFromArray(\@ARGV, 'ramp=i' => \$ramp, 'concurrency=i' => \$concurrency,
                    'count=i' => \$count) or exit 2;
my $url = shift @ARGV // '';
my ($port, $path) = $url =~ m{^http://127\.0\.0\.1:(\d+)(/\S*)$}
    or die "usage: sse-client.pl first|drain|hold|load http://127.0.0.1:PORT/PATH ...\n";
$| = 1;

# ---- one stream ----------------------------------------------------------------

sub open_stream {
    my $s = { t0 => time, raw => '', body => 0, text => '', events => 0, status => 0 };
    $s->{sock} = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                       Proto => 'tcp')
        or die "sse-client: connect 127.0.0.1:$port: $!\n";
    setsockopt $s->{sock}, IPPROTO_TCP, TCP_NODELAY, 1;
    syswrite $s->{sock}, "GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       . "Accept: text/event-stream\r\nConnection: close\r\n\r\n";
    return $s;
}

# Bytes read: the headers, the chunks, the events in them.
sub feed {
    my ($s) = @_;
    if (!$s->{head}) {
        my $end = index $s->{raw}, "\r\n\r\n";
        return if $end < 0;
        $s->{head} = substr $s->{raw}, 0, $end + 4, '';
        ($s->{status}) = $s->{head} =~ m{^HTTP/1\.[01] (\d+)};
        $s->{chunked} = $s->{head} =~ /^Transfer-Encoding:\s*chunked/mi;
        $s->{left} = 0;
    }
    my $raw = \$s->{raw};
    my $pos = 0;
    my $data = '';
    if (!$s->{chunked}) {
        $data = $$raw;
        $pos = length $$raw;
    }
    while ($s->{chunked} && !$s->{last_chunk} && $pos < length $$raw) {
        if ($s->{left} > 0) {
            my $n = length($$raw) - $pos;
            $n = $s->{left} if $n > $s->{left};
            $data .= substr $$raw, $pos, $n;
            $pos += $n;
            $s->{left} -= $n;
            next;
        }
        # "\r\n" after a chunk's data, then the next size line
        my $eol = index $$raw, "\r\n", $pos + ($s->{after_chunk} ? 2 : 0);
        last if $eol < 0;
        my $line = substr $$raw, $pos + ($s->{after_chunk} ? 2 : 0),
                          $eol - $pos - ($s->{after_chunk} ? 2 : 0);
        $pos = $eol + 2;
        $s->{after_chunk} = 1;
        my ($hex) = $line =~ /^([0-9a-fA-F]+)/ or do { $s->{bad} = "bad chunk"; last };
        $s->{left} = hex $hex;
        $s->{last_chunk} = 1 if $s->{left} == 0;
    }
    substr $$raw, 0, $pos, '';
    $s->{body} += length $data;
    return if $data eq '';

    # whole lines only; the rest waits for the next read
    my $text = $s->{text} . $data;
    my $cut = rindex $text, "\n";
    if ($cut < 0) { $s->{text} = $text; return; }
    $s->{text} = substr $text, $cut + 1;
    substr $text, $cut + 1, length($text), '';

    my $n = () = $text =~ /^data:/mg;
    return unless $n;
    $s->{events} += $n;
    my $now = time;
    if (!defined $s->{t_first} && $text =~ /^data: (?!\{"type":"perstack\.)/m) {
        $s->{t_first} = $now;
    }
    $s->{module} = 1 if !$s->{module} && index($text, 'data: {"type":"perstack.execution"') >= 0;
    if (!defined $s->{t_complete}) {
        my $joined = ($s->{seam} // '') . $text;
        $s->{t_complete} = $now if index($joined, '"type":"completeRun"') >= 0;
        $s->{seam} = substr $joined, -32;
    }
    my $last = rindex $text, "\ndata:";
    $last = $text =~ /^data:/ ? 0 : -1 if $last < 0;
    if ($last >= 0) {
        $last++ if substr($text, $last, 1) eq "\n";
        my $nl = index $text, "\n", $last;
        $s->{last} = substr $text, $last, $nl - $last;
    }
}

# One read; false at the end of the stream (or an error).
sub read_some {
    my ($s) = @_;
    my $n = sysread $s->{sock}, $s->{raw}, 1 << 20, length $s->{raw};
    if (!$n) {
        $s->{t_end} = time;
        return 0;
    }
    feed($s);
    return 1;
}

sub complete {
    my ($s) = @_;
    return "HTTP $s->{status}" unless $s->{status} == 200;
    return $s->{bad} if $s->{bad};
    return 'no last chunk' if $s->{chunked} && !$s->{last_chunk};
    return 'no completeRun' unless defined $s->{t_complete};
    if ($s->{module}) {
        my $last = $s->{last} // '';
        return "last event: " . substr($last, 0, 200)
            unless $last =~ /"type":"perstack\.end"/ && $last =~ /"outcome":"completed"/;
    }
    return '';
}

sub json_out {
    my (%h) = @_;
    print '{', join(',', map {
        my $v = $h{$_};
        $v = defined $v ? ($v =~ /^-?\d+(\.\d+)?(e[-+]?\d+)?$/i ? $v : do {
            (my $e = $v) =~ s/(["\\])/\\$1/g; $e =~ s/[\x00-\x1f]/ /g; "\"$e\"" }) : 'null';
        "\"$_\":$v"
    } sort keys %h), "}\n";
}

# ---- the modes ------------------------------------------------------------------

if ($mode eq 'first') {
    my $s = open_stream();
    my $said = 0;
    while (read_some($s)) {
        if (!$said && defined $s->{t_first}) {
            printf "%.3f\n", ($s->{t_first} - $s->{t0}) * 1000;
            $said = 1;
        }
    }
    my $why = complete($s);
    print "$s->{events}\n";
    warn "sse-client: incomplete stream: $why\n" if $why ne '';
    exit($why eq '' && $said ? 0 : 1);
}

if ($mode eq 'drain') {
    my $s = open_stream();
    1 while read_some($s);
    my $why = complete($s);
    json_out(status => $s->{status}, body_bytes => $s->{body}, events => $s->{events},
             seconds => defined $s->{t_first} && defined $s->{t_complete}
                        ? $s->{t_complete} - $s->{t_first} : undef,
             total_seconds => $s->{t_end} - $s->{t0}, complete => $why eq '' ? 1 : 0,
             why => $why);
    exit($why eq '' ? 0 : 1);
}

if ($mode eq 'hold') {
    my $want = shift @ARGV // die "sse-client: hold: how many?\n";
    my $t0 = time;
    my (@live, %starting, $errors);
    my $sel = IO::Select->new;
    my $opened = 0;
    $errors = 0;
    while (@live + $errors < $want) {
        while ($opened < $want && keys(%starting) < $ramp) {
            my $s = open_stream();
            $starting{ fileno $s->{sock} } = $s;
            $sel->add($s->{sock});
            $opened++;
        }
        my @ready = $sel->can_read(300);
        die "sse-client: hold: nothing for 300 s\n" unless @ready;
        for my $fh (@ready) {
            my $s = $starting{ fileno $fh };
            my $more = read_some($s);
            if (defined $s->{t_first}) {
                $sel->remove($fh);
                delete $starting{ fileno $fh };
                push @live, $s;
            } elsif (!$more) {
                $sel->remove($fh);
                delete $starting{ fileno $fh };
                close $fh;
                warn "sse-client: a stream ended before its first event: "
                   . "HTTP $s->{status} " . substr($s->{raw} . $s->{text}, 0, 200) . "\n";
                $errors++;
            }
        }
    }
    printf "live %d %d %.3f\n", scalar @live, $errors, time - $t0;
    my $line = <STDIN>;
    close $_->{sock} for @live;
    exit($errors ? 1 : 0);
}

if ($mode eq 'load') {
    my ($started, $completed, $errors, %run, %why) = (0, 0, 0);
    my $sel = IO::Select->new;
    my $t0 = time;
    while ($completed + $errors < $count) {
        while ($started < $count && keys(%run) < $concurrency) {
            my $s = open_stream();
            $run{ fileno $s->{sock} } = $s;
            $sel->add($s->{sock});
            $started++;
        }
        my @ready = $sel->can_read(300);
        if (!@ready) {
            $errors += keys %run;
            $why{'nothing for 300 s'} += keys %run;
            last;
        }
        for my $fh (@ready) {
            my $s = $run{ fileno $fh };
            next if read_some($s);
            $sel->remove($fh);
            delete $run{ fileno $fh };
            close $fh;
            my $why = complete($s);
            if ($why eq '') { $completed++ } else { $errors++; $why{$why}++ }
        }
    }
    my $secs = time - $t0;
    json_out(completed => $completed, errors => $errors, seconds => $secs,
             per_second => $completed / $secs,
             why => join('; ', map { "$why{$_}x $_" } sort keys %why));
    exit($errors ? 1 : 0);
}

die "sse-client: unknown mode '$mode'\n";
