#!/usr/bin/env perl
# The client side of bench/readers-memory.sh: one measured run against an
# nginx that the shell script started (and alone stops), and the table of
# all runs at the end.  Not meant to be run by hand; readers-memory.sh
# passes every option.  Core Perl only; traffic goes to 127.0.0.1 only.
#
#   readers-memory.pl run --port P --worker-pid PID --readers R
#                         --result FILE [options below]
#   readers-memory.pl table RESULT.json...
#
# A run:
#   1. warm-up: one small execution (flood --warmup-events), read at full
#      speed to its end, so that what a first execution allocates once
#      (libcurl's handles, pools) is in the baseline;
#   2. baseline: the worker's memory, sampled for --settle seconds, median;
#   3. the starting client: GET LOCATION?expert=flood&query=N, read at full
#      speed;
#   4. as soon as its response headers name the execution (header
#      X-Perstack-Execution), R readers attach to it:
#        ndjson: GET LOCATION?execution=ID&after=0
#        sse:    GET LOCATION with Last-Event-ID: ID-0
#      (--reader-mode new instead has each reader start an execution of
#      its own, --reader-events events, a plain stream: a test of the
#      reader itself on a module without resume), each on a socket whose
#      receive buffer is --rcvbuf bytes, reading at most --read-bytes
#      every --read-interval seconds;
#   5. the slow phase lasts until the execution has ended (the starting
#      client got perstack.end) and --hold seconds more, at least --min-slow
#      seconds, at most --max-slow;
#   6. the drain: the readers read at full speed until their streams end,
#      at most --drain-timeout seconds; then the execution's status
#      (GET LOCATION?execution=ID, Accept: application/json).
# The worker's memory is sampled every --sample-interval seconds from
# before the warm-up to the end: VmRSS (/proc/PID/status) and Rss,
# Private_Dirty, Anonymous (/proc/PID/smaps_rollup); also the kernel's TCP
# buffers (/proc/net/sockstat, "TCP: ... mem", pages; all sockets of the
# machine).  Samples go to --samples (CSV); the figures to --result (JSON).
#
# What every client checks: status 200, the stream's Content-Type, every
# event counted (SSE: a block with data; NDJSON: a non-empty line), and
# when the events carry positions (SSE "id: EXEC-POS" or a plain number,
# NDJSON "position" as the first member) that they run 1, 2, 3, ... with
# no gap; the last event must be perstack.end.  A reader is complete when
# it got as many events as the starting client's perstack.end says there
# were ("events"), and, when positions are there, the last one is that
# number.
#
# Exit status: 0 when every client was complete, 1 when one was not (the
# figures are still written), 2 on a usage or set-up error.

use strict;
use warnings;

use Getopt::Long qw(GetOptionsFromArray);
use IO::Select ();
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF IPPROTO_TCP
              TCP_NODELAY inet_aton pack_sockaddr_in);
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);
use Errno qw(EINPROGRESS EAGAIN EWOULDBLOCK EINTR);
use Time::HiRes qw(time sleep);
use JSON::PP ();
use POSIX ();

$| = 1;

my $Json = JSON::PP->new->utf8->canonical;
my $Page = POSIX::sysconf(POSIX::_SC_PAGESIZE()) || 4096;

sub msg { print "bench: ", @_, "\n" }
sub fail_setup { print STDERR "readers-memory.pl: ", @_, "\n"; exit 2 }

my $cmd = shift @ARGV // '';
if ($cmd eq 'table') {
    exit table(@ARGV);
}
$cmd eq 'run' or fail_setup("usage: readers-memory.pl run|table ...");

my %o = (
    location => '/run', format => 'ndjson', events => 200000,
    'warmup-events' => 2000, rcvbuf => 4096, 'read-bytes' => 4096,
    'read-interval' => 0.1, hold => 5, 'min-slow' => 10, 'max-slow' => 60,
    'drain-timeout' => 120, 'sample-interval' => 0.05, settle => 1,
    'reader-mode' => 'resume', 'reader-events' => 20000,
    'start-timeout' => 30, 'run-timeout' => 180,
);
GetOptionsFromArray(\@ARGV, \%o, 'port=i', 'worker-pid=i', 'readers=i',
    'result=s', 'samples=s', 'location=s', 'format=s', 'events=i',
    'warmup-events=i', 'rcvbuf=i', 'read-bytes=i', 'read-interval=f',
    'hold=f', 'min-slow=f', 'max-slow=f', 'drain-timeout=f',
    'sample-interval=f', 'settle=f', 'reader-mode=s', 'reader-events=i',
    'start-timeout=f', 'run-timeout=f', 'label=s')
    or exit 2;
for (qw(port worker-pid readers result)) {
    defined $o{$_} or fail_setup("--$_ is required");
}
$o{format} =~ /\A(?:ndjson|sse)\z/ or fail_setup("--format: ndjson or sse");
$o{'reader-mode'} =~ /\A(?:resume|new)\z/
    or fail_setup("--reader-mode: resume or new");

my $Pid = $o{'worker-pid'};
my $R = $o{readers};

# ---- memory ------------------------------------------------------------------

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return undef;
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s;
}

# { t, rss, smaps_rss, pd, anon, tcp_pages } in kB (tcp: pages), or undef
# when the worker is gone.
sub mem_sample {
    my $st = slurp("/proc/$Pid/status") // return undef;
    my ($rss) = $st =~ /^VmRSS:\s+(\d+)\s+kB/m;
    my $sm = slurp("/proc/$Pid/smaps_rollup") // '';
    my ($srss) = $sm =~ /^Rss:\s+(\d+)\s+kB/m;
    my ($pd) = $sm =~ /^Private_Dirty:\s+(\d+)\s+kB/m;
    my ($anon) = $sm =~ /^Anonymous:\s+(\d+)\s+kB/m;
    my $ss = slurp('/proc/net/sockstat') // '';
    my ($tcp) = $ss =~ /^TCP:.*\bmem (\d+)/m;
    return { t => time(), rss => $rss // 0, smaps_rss => $srss // 0,
             pd => $pd // 0, anon => $anon // 0, tcp => $tcp // 0 };
}

my @Samples;          # [phase, sample]
my $Phase = 'start';
my $NextSample = 0;
my $T0 = time();

sub sample_now {
    my $s = mem_sample()
        or die "bench: the worker (pid $Pid) is gone\n";
    $s->{phase} = $Phase;
    push @Samples, $s;
    $NextSample = time() + $o{'sample-interval'};
    return $s;
}

sub maybe_sample {
    sample_now() if time() >= $NextSample;
}

sub median {
    my @v = sort { $a <=> $b } @_;
    return 0 unless @v;
    return $v[int($#v / 2)];
}

# ---- clients ------------------------------------------------------------------

sub uri_escape {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

my $Sel = IO::Select->new;
my %ByFd;

# new_client(name, role, path, headers => [..], rcvbuf => N, slow => 0|1)
sub new_client {
    my ($name, $role, $path, %a) = @_;
    socket(my $fh, PF_INET, SOCK_STREAM, 0) or die "bench: socket: $!\n";
    if ($a{rcvbuf}) {
        # (before connect: the window the kernel offers follows from it)
        setsockopt($fh, SOL_SOCKET, SO_RCVBUF, pack('i', $a{rcvbuf}))
            or die "bench: setsockopt SO_RCVBUF: $!\n";
    }
    connect($fh, pack_sockaddr_in($o{port}, inet_aton('127.0.0.1')))
        or die "bench: connect 127.0.0.1:$o{port}: $!\n";
    setsockopt($fh, IPPROTO_TCP, TCP_NODELAY, 1);
    my $req = "GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    my @h = @{ $a{headers} || [] };
    while (my ($k, $v) = splice @h, 0, 2) {
        $req .= "$k: $v\r\n";
    }
    $req .= "Connection: close\r\n\r\n";
    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite($fh, $req, length($req) - $off, $off);
        die "bench: write: $!\n" unless defined $n;
        $off += $n;
    }
    my $fl = fcntl($fh, F_GETFL, 0) or die "bench: fcntl: $!\n";
    fcntl($fh, F_SETFL, $fl | O_NONBLOCK) or die "bench: fcntl: $!\n";
    my $got_rcvbuf = unpack('i', getsockopt($fh, SOL_SOCKET, SO_RCVBUF) // pack('i', 0));

    my $c = {
        name => $name, role => $role, fh => $fh, path => $path,
        slow => $a{slow} ? 1 : 0, t0 => time(), rcvbuf => $got_rcvbuf,
        state => 'head', raw => '', rpos => 0, body => '', bpos => 0,
        bytes => 0, events => 0, first_pos => undef, last_pos => undef,
        gaps => 0, gap_first => undef, last_type => '', last_event => '',
        pings => 0, eof => 0, status => undef, headers => {},
        chunked => 0, next_read => 0, error => undef, end => undef,
    };
    $ByFd{ fileno $fh } = $c;
    # (a slow reader is read on its own clock, never woken by select():
    # its socket always has bytes waiting)
    $Sel->add($fh) unless $c->{slow};
    return $c;
}

sub close_client {
    my ($c) = @_;
    return unless $c->{fh};
    $Sel->remove($c->{fh});
    delete $ByFd{ fileno $c->{fh} };
    close $c->{fh};
    $c->{fh} = undef;
    $c->{t_end} //= time();
}

# The decoded body so far: events out of it.
sub parse_events {
    my ($c) = @_;
    my $b = \$c->{body};
    if ($c->{format} eq 'ndjson') {
        # (the hot loop of the drain, some 10 million lines: only the start
        # of a line is looked at, and only perstack.end is kept whole)
        my $p = $c->{bpos};
        my ($n, $last, $gaps) = (0, $c->{last_pos}, 0);
        my ($type, $pos);
        while (1) {
            my $i = index($$b, "\n", $p);
            last if $i < 0;
            if ($i == $p) {
                $c->{pings}++;
                $p++;
                next;
            }
            if (substr($$b, $p, 80) =~ /\A\{(?:"position":(\d+),)?"type":"([^"]*)"/) {
                ($pos, $type) = ($1, $2);
            } else {
                my $head = substr($$b, $p, $i - $p < 1024 ? $i - $p : 1024);
                ($pos) = $head =~ /\A\{"position":(\d+)/;
                ($type) = $head =~ /"type":"([^"]*)"/;
                $type //= '';
            }
            $n++;
            if (defined $pos) {
                if (defined $last ? $pos != $last + 1 : $pos != 1) {
                    $gaps++;
                    $c->{gap_first} //= defined $last
                        ? "position $pos after $last" : "first position $pos, not 1";
                }
                $c->{first_pos} //= $pos;
                $last = $pos;
            }
            if ($type eq 'perstack.end') {
                $c->{last_event} = substr($$b, $p, $i - $p);
            }
            $c->{last_type} = $type;
            $p = $i + 1;
        }
        $c->{events} += $n;
        $c->{gaps} += $gaps;
        $c->{last_pos} = $last;
        $c->{bpos} = $p;
    } else {
        my $p = $c->{bpos};
        my ($n, $last, $gaps) = (0, $c->{last_pos}, 0);
        my ($type, $pos, $id);
        while (1) {
            my $i = index($$b, "\n\n", $p);
            last if $i < 0;
            my $len = $i - $p;
            if (substr($$b, $p, 160) =~ /\Aid: ?(?:[0-9a-f]+-)?(\d+)\nevent: ?([^\n]*)\ndata:/) {
                ($pos, $type) = ($1, $2);
            } else {
                # (the general case: fields in any order, comments)
                my $blk = substr($$b, $p, $len);
                if ($blk !~ /^data:/m) {
                    $c->{pings}++ if $blk =~ /\A:/;
                    $p = $i + 2;
                    next;
                }
                ($id) = $blk =~ /^id: ?(\S+)/m;
                ($type) = $blk =~ /^event: ?(\S+)/m;
                $type //= 'message';
                $pos = defined $id && $id =~ /\A(?:[0-9a-f]+-)?(\d+)\z/ ? $1 : undef;
            }
            $n++;
            if (defined $pos) {
                if (defined $last ? $pos != $last + 1 : $pos != 1) {
                    $gaps++;
                    $c->{gap_first} //= defined $last
                        ? "position $pos after $last" : "first position $pos, not 1";
                }
                $c->{first_pos} //= $pos;
                $last = $pos;
            }
            if ($type eq 'perstack.end') {
                $c->{last_event} = join "\n",
                    substr($$b, $p, $len) =~ /^data: ?(.*)$/mg;
            }
            $c->{last_type} = $type;
            $p = $i + 2;
        }
        $c->{events} += $n;
        $c->{gaps} += $gaps;
        $c->{last_pos} = $last;
        $c->{bpos} = $p;
    }
    if ($c->{bpos} > 1 << 20) {
        substr($$b, 0, $c->{bpos}, '');
        $c->{bpos} = 0;
    }
}

sub parse_head {
    my ($c) = @_;
    my $i = index($c->{raw}, "\r\n\r\n");
    return 0 if $i < 0;
    my ($line, @lines) = split /\r\n/, substr($c->{raw}, 0, $i);
    substr($c->{raw}, 0, $i + 4, '');
    ($c->{status}) = $line =~ m{\AHTTP/1\.[01] (\d{3})};
    $c->{status} //= 0;
    for (@lines) {
        $c->{headers}{lc $1} = $2 if /\A([^:]+):\s*(.*?)\s*\z/;
    }
    $c->{chunked} = ($c->{headers}{'transfer-encoding'} // '') =~ /chunked/i;
    my $ct = $c->{headers}{'content-type'} // '';
    $c->{format} = $ct eq 'application/x-ndjson' ? 'ndjson'
                 : $ct eq 'text/event-stream' ? 'sse' : 'other';
    $c->{xid} = $c->{headers}{'x-perstack-execution'};
    $c->{state} = 'body';
    if ($c->{status} == 200 && $c->{format} ne $o{format}) {
        $c->{error} //= "Content-Type '$ct', not the $o{format} stream";
    }
    return 1;
}

sub on_bytes {
    my ($c, $buf) = @_;
    $c->{raw} .= $buf;
    if ($c->{state} eq 'head') {
        parse_head($c) or return;
    }
    if ($c->{chunked}) {
        my $raw = \$c->{raw};
        while (1) {
            my $i = index($$raw, "\r\n", $c->{rpos});
            last if $i < 0;
            my $sl = substr($$raw, $c->{rpos}, $i - $c->{rpos});
            if ($sl !~ /\A([0-9a-fA-F]+)/) {
                $c->{error} //= "bad chunk size line";
                $c->{rpos} = length $$raw;
                last;
            }
            my $size = hex $1;
            if ($size == 0) {
                $c->{chunks_done} = 1;
                $c->{rpos} = length $$raw;
                last;
            }
            last if length($$raw) < $i + 2 + $size + 2;
            $c->{body} .= substr($$raw, $i + 2, $size);
            $c->{rpos} = $i + 2 + $size + 2;
        }
        if ($c->{rpos} > 1 << 16) {
            substr($$raw, 0, $c->{rpos}, '');
            $c->{rpos} = 0;
        }
    } else {
        $c->{body} .= $c->{raw};
        $c->{raw} = '';
    }
    if ($c->{status} == 200 && $c->{format} ne 'other') {
        parse_events($c);
    } elsif (length $c->{body} > 65536) {
        substr($c->{body}, 65536) = '';
    }
}

# One read from $c: up to $max bytes.  Returns bytes read, 0 at the end.
sub read_client {
    my ($c, $max) = @_;
    return 0 unless $c->{fh};
    my $n = sysread($c->{fh}, my $buf, $max);
    if (!defined $n) {
        return -1 if $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR};
        $c->{error} //= "read: $!";
        $n = 0;
    }
    if ($n == 0) {
        $c->{eof} = 1;
        close_client($c);
        finish_client($c);
        return 0;
    }
    $c->{bytes} += $n;
    $c->{t_first} //= time();
    on_bytes($c, $buf);
    return $n;
}

sub finish_client {
    my ($c) = @_;
    if ($c->{status} && $c->{status} == 200) {
        if ($c->{last_type} eq 'perstack.end') {
            $c->{end} = eval { $Json->decode($c->{last_event}) } // {};
        }
        if ($c->{format} eq 'ndjson' && $c->{bpos} < length $c->{body}) {
            $c->{error} //= 'the stream ends with a partial line';
        }
        if ($c->{chunked} && !$c->{chunks_done}) {
            $c->{error} //= 'the chunked body has no last chunk';
        }
    }
}

sub error_text {
    my ($c) = @_;
    my $body = $c->{body} // '';
    my $j = eval { $Json->decode($body) };
    return $j && ref $j eq 'HASH'
        ? "HTTP $c->{status} " . ($j->{error} // '?') . ": " . ($j->{message} // '')
        : "HTTP $c->{status} " . substr($body, 0, 200);
}

# ---- the run ------------------------------------------------------------------

my $Loc = $o{location};
my $Accept = $o{format} eq 'ndjson' ? 'application/x-ndjson' : 'text/event-stream';

sub start_path {
    my ($n) = @_;
    return "$Loc?expert=flood&query=$n";
}

# Read $c at full speed until it ends (sampling memory): for the warm-up.
sub read_to_end {
    my ($c, $timeout) = @_;
    my $deadline = time() + $timeout;
    while ($c->{fh} && time() < $deadline) {
        maybe_sample();
        my @r = $Sel->can_read(0.05);
        read_client($c, 262144) if @r;
    }
    close_client($c);
    return $c->{eof};
}

sub samples_of {
    my (@phases) = @_;
    my %p = map { $_ => 1 } @phases;
    return grep { $p{ $_->{phase} } } @Samples;
}

sub max_of {
    my ($f, @s) = @_;
    my $m = 0;
    for (@s) { $m = $_->{$f} if $_->{$f} > $m }
    return $m;
}

$SIG{INT} = sub { die "bench: interrupted\n" };
$SIG{TERM} = sub { die "bench: terminated\n" };

my $result = { readers => $R, format => $o{format},
               reader_mode => $o{'reader-mode'}, events_asked => $o{events},
               worker_pid => $Pid, label => $o{label},
               settings => { location => $o{location},
                   map { ($_ => 0 + $o{$_}) } qw(rcvbuf read-bytes
                   read-interval hold min-slow max-slow drain-timeout
                   sample-interval warmup-events reader-events) } };

sample_now();

# 1. warm-up
$Phase = 'warmup';
{
    my $w = new_client('warm-up', 'warmup', start_path($o{'warmup-events'}),
                       headers => [Accept => $Accept]);
    read_to_end($w, 60)
        or die "bench: the warm-up execution did not end within 60s\n";
    if (($w->{status} // 0) != 200 || !$w->{end}) {
        die "bench: the warm-up execution failed: "
            . ($w->{status} == 200 ? ($w->{error} // 'no perstack.end')
                                   : error_text($w)) . "\n";
    }
    $result->{warmup} = { events => $w->{events},
                          outcome => $w->{end}{outcome} };
    sample_now();
}

# 2. baseline: the container of the warm-up removed, the worker idle
$Phase = 'baseline';
{
    my $until = time() + $o{settle};
    while (time() < $until) {
        sample_now();
        sleep $o{'sample-interval'};
    }
}
my @base = samples_of('baseline');
my %base = map { my $f = $_; ($f => median(map { $_->{$f} } @base)) }
            qw(rss pd anon smaps_rss tcp);
$result->{baseline} = \%base;
msg(sprintf "R=%d: baseline VmRSS %d kB, Private_Dirty %d kB (worker %d)",
    $R, $base{rss}, $base{pd}, $Pid);

# 3. the starting client
$Phase = 'slow';
my $t_start = time();
my $starter = new_client('starter', 'starter', start_path($o{events}),
                         headers => [Accept => $Accept]);
{
    my $deadline = time() + $o{'start-timeout'};
    while ($starter->{fh} && $starter->{state} eq 'head' && time() < $deadline) {
        maybe_sample();
        read_client($starter, 262144) if $Sel->can_read(0.02);
    }
}
if (($starter->{status} // 0) != 200 || !$starter->{xid}) {
    my $why = $starter->{state} eq 'head' ? 'no response headers within '
        . "$o{'start-timeout'}s" : $starter->{status} != 200
        ? error_text($starter) : 'no X-Perstack-Execution header';
    die "bench: the execution did not start: $why\n";
}
my $Xid = $starter->{xid};
$result->{execution} = $Xid;
msg("R=$R: execution $Xid streams (flood $o{events})");

# 4. the readers
my @readers;
for my $i (1 .. $R) {
    my ($path, @h);
    if ($o{'reader-mode'} eq 'new') {
        $path = start_path($o{'reader-events'});
        @h = (Accept => $Accept);
    } elsif ($o{format} eq 'ndjson') {
        $path = "$Loc?execution=$Xid&after=0";
        @h = (Accept => $Accept);
    } else {
        $path = $Loc;
        @h = (Accept => $Accept, 'Last-Event-ID' => "$Xid-0");
    }
    my $c = new_client("reader $i", 'reader', $path, headers => \@h,
                       rcvbuf => $o{rcvbuf}, slow => 1);
    $c->{next_read} = time() + $o{'read-interval'} * ($i - 1) / ($R || 1);
    push @readers, $c;
}
my $t_readers = time();
$result->{rcvbuf_effective} = $readers[0]{rcvbuf} if @readers;

# 5. the slow phase, then 6. the drain
my ($t_ended, $t_drain, $drain_deadline);
my $run_deadline = $t_start + $o{'run-timeout'};
my $slow_until;
my $last_note = time();
while (1) {
    my $now = time();
    maybe_sample();

    if (!defined $t_ended && !$starter->{fh}) {
        $t_ended = $now;
        msg(sprintf "R=%d: the starting client got the end after %.1fs "
            . "(%d events, %.1f MB)", $R, $now - $t_start,
            $starter->{events}, $starter->{bytes} / 1e6);
    }
    if (!defined $t_drain) {
        my $done = defined $t_ended
                   && $now >= $t_ended + $o{hold}
                   && $now >= $t_readers + $o{'min-slow'};
        my $readers_left = grep { $_->{fh} } @readers;
        if ($done || $now >= $t_readers + $o{'max-slow'}
            || (defined $t_ended && !$readers_left && $now >= $t_ended + $o{hold}))
        {
            $t_drain = $now;
            $Phase = 'drain';
            $drain_deadline = $now + $o{'drain-timeout'};
            for my $c (@readers) {
                $c->{slow} = 0;
                $Sel->add($c->{fh}) if $c->{fh};
            }
            $_->{bytes_slow} = $_->{bytes} for @readers;
            msg(sprintf "R=%d: slow phase over after %.1fs (execution %s); "
                . "the readers drain", $R, $now - $t_readers,
                defined $t_ended ? 'ended' : 'still running');
        }
    }
    my @open = grep { $_->{fh} } $starter, @readers;
    last unless @open;
    if (defined $drain_deadline && $now >= $drain_deadline) {
        msg("R=$R: drain timeout: " . scalar(@open) . " streams still open, closed");
        $_->{cut} = 1 for @open;
        last;
    }
    if ($now >= $run_deadline) {
        msg("R=$R: run timeout ($o{'run-timeout'}s): "
            . scalar(@open) . " streams still open, closed");
        $_->{cut} = 1 for @open;
        last;
    }
    if ($now - $last_note >= 10) {
        $last_note = $now;
        my $rb = 0;
        $rb += $_->{bytes} for @readers;
        msg(sprintf "R=%d: %.0fs: starter %.1f MB, readers %.1f MB in all, "
            . "%d open; worker VmRSS %d kB, Private_Dirty %d kB", $R,
            $now - $t_start, $starter->{bytes} / 1e6, $rb / 1e6, scalar @open,
            $Samples[-1]{rss}, $Samples[-1]{pd});
    }

    # slow readers whose turn it is
    my $next_turn = $now + 0.05;
    for my $c (@readers) {
        next unless $c->{fh} && $c->{slow};
        if ($now >= $c->{next_read}) {
            read_client($c, $o{'read-bytes'});
            $c->{next_read} += $o{'read-interval'};
            $c->{next_read} = $now + $o{'read-interval'}
                if $c->{next_read} < $now;
        }
        $next_turn = $c->{next_read} if $c->{fh} && $c->{next_read} < $next_turn;
    }
    # the fast ones, as soon as they can read
    my $wait = $next_turn - time();
    $wait = 0 if $wait < 0;
    $wait = $o{'sample-interval'} if $wait > $o{'sample-interval'};
    # (IO::Select does not wait on an empty set)
    my @ready = $Sel->count ? $Sel->can_read($wait) : do { sleep $wait; () };
    for my $fh (@ready) {
        my $c = $ByFd{ fileno $fh } or next;
        next if $c->{slow};
        read_client($c, 262144);
    }
}
$Phase = 'after';
my $t_done = time();
sample_now();
close_client($_) for $starter, @readers;

# the execution's status (durable executions only)
sub status_json {
    my $c = new_client('status', 'status', "$Loc?execution=$Xid",
                       headers => [Accept => 'application/json']);
    my $deadline = time() + 10;
    while ($c->{fh} && time() < $deadline) {
        read_client($c, 65536) if $Sel->can_read(0.1);
    }
    close_client($c);
    my $st = $c->{status} // 0;
    return { http => $st, json => $st == 200
             ? eval { $Json->decode($c->{body}) } : undef,
             text => $st == 200 ? undef : error_text($c) };
}
$result->{status} = $o{'reader-mode'} eq 'resume' ? status_json() : undef;

# ---- figures -------------------------------------------------------------------

my $end = $starter->{end} // {};
my $expected = $end->{events};
my $st_events = $result->{status} && $result->{status}{json}
    ? $result->{status}{json}{events} : undef;

sub client_report {
    my ($c, $want) = @_;
    my $r = {
        status => $c->{status}, bytes => $c->{bytes}, events => $c->{events},
        first_pos => $c->{first_pos}, last_pos => $c->{last_pos},
        gaps => $c->{gaps}, gap_first => $c->{gap_first},
        last_type => $c->{last_type}, error => $c->{error},
        cut => $c->{cut} ? 1 : 0, pings => $c->{pings},
        bytes_slow => $c->{bytes_slow},
        outcome => $c->{end} ? $c->{end}{outcome} : undef,
        seconds => sprintf('%.2f', ($c->{t_end} // time()) - $c->{t0}),
    };
    my @why;
    if (($c->{status} // 0) != 200) {
        push @why, $c->{status} ? error_text($c) : 'no response';
    } else {
        push @why, $c->{error} if $c->{error};
        push @why, "cut after $c->{bytes} bytes" if $c->{cut};
        push @why, 'no perstack.end' if !$c->{cut} && $c->{last_type} ne 'perstack.end';
        push @why, "$c->{gaps} gaps ($c->{gap_first})" if $c->{gaps};
        if (defined $want) {
            push @why, "$c->{events} events, not $want" if $c->{events} != $want;
            push @why, "last position $c->{last_pos}, not $want"
                if defined $c->{last_pos} && $c->{last_pos} != $want;
        } else {
            push @why, 'no event count to compare with';
        }
    }
    $r->{complete} = @why ? 0 : 1;
    $r->{why} = join '; ', @why;
    return $r;
}

my $sr = client_report($starter, $expected);
$result->{starter} = $sr;
$result->{expected_events} = $expected;
$result->{status_events} = $st_events;
my @rr;
for my $c (@readers) {
    # (a reader of its own execution: its own perstack.end's count)
    my $want = $o{'reader-mode'} eq 'new'
        ? ($c->{end} ? $c->{end}{events} : undef) : $expected;
    push @rr, client_report($c, $want);
}
$result->{readers_detail} = \@rr;
$result->{readers_complete} = scalar grep { $_->{complete} } @rr;
my $rbytes = 0;
$rbytes += $_->{bytes} for @rr;
$result->{readers_bytes} = $rbytes;
my $rbytes_slow = 0;
$rbytes_slow += ($_->{bytes_slow} // $_->{bytes}) for @rr;
$result->{readers_bytes_slow} = $rbytes_slow;

my @run = samples_of('slow', 'drain', 'after');
my @slow = samples_of('slow');
my @warm = samples_of('warmup');
$result->{peak} = { map { ($_ => max_of($_, @run)) } qw(rss pd anon smaps_rss tcp) };
$result->{peak_slow} = { map { ($_ => max_of($_, @slow)) } qw(rss pd anon smaps_rss tcp) };
$result->{peak_warmup} = { map { ($_ => max_of($_, @warm)) } qw(rss pd) };
$result->{samples} = scalar @Samples;
$result->{times} = {
    execution => defined $t_ended ? sprintf('%.2f', $t_ended - $t_start) : undef,
    slow => sprintf('%.2f', ($t_drain // $t_done) - $t_readers),
    drain => defined $t_drain ? sprintf('%.2f', $t_done - $t_drain) : undef,
    total => sprintf('%.2f', $t_done - $T0),
};
$result->{status_events_match} = defined $st_events && defined $expected
    ? ($st_events == $expected ? 1 : 0) : undef;

msg(sprintf "R=%d: peak VmRSS %d kB (+%d), Private_Dirty %d kB (+%d); "
    . "starter %s; readers complete %d/%d", $R, $result->{peak}{rss},
    $result->{peak}{rss} - $base{rss}, $result->{peak}{pd},
    $result->{peak}{pd} - $base{pd},
    $sr->{complete} ? "complete ($sr->{events} events)" : "NOT complete: $sr->{why}",
    $result->{readers_complete}, $R);
my %why;
$why{ $_->{why} }++ for grep { !$_->{complete} } @rr;
msg(sprintf "R=%d:   %d reader(s): %s", $R, $why{$_}, $_) for sort keys %why;
if ($result->{status}) {
    my $s = $result->{status};
    msg($s->{http} == 200
        ? sprintf("R=%d: status: state %s, outcome %s, events %s%s", $R,
                  $s->{json}{state} // '?', $s->{json}{outcome} // 'null',
                  $s->{json}{events} // '?',
                  !defined $result->{status_events_match} ? ''
                  : $result->{status_events_match} ? ' (as perstack.end says)'
                  : ", NOT the $expected of perstack.end")
        : "R=$R: status: $s->{text}");
}

if ($o{samples}) {
    open my $fh, '>', $o{samples} or die "bench: $o{samples}: $!\n";
    print $fh "t,phase,vmrss_kb,rss_kb,private_dirty_kb,anonymous_kb,tcp_mem_pages\n";
    printf $fh "%.3f,%s,%d,%d,%d,%d,%d\n", $_->{t} - $T0, $_->{phase},
        $_->{rss}, $_->{smaps_rss}, $_->{pd}, $_->{anon}, $_->{tcp}
        for @Samples;
    close $fh;
}
open my $rf, '>', $o{result} or die "bench: $o{result}: $!\n";
print $rf $Json->pretty->encode($result);
close $rf;

# (a status that answers must count what the stream had)
exit(($sr->{complete} && $result->{readers_complete} == $R
      && ($result->{status_events_match} // 1)) ? 0 : 1);


# ---- the table ------------------------------------------------------------------

sub table {
    my @files = @_;
    my @res;
    for my $f (@files) {
        my $t = slurp($f) // next;
        my $r = eval { $Json->decode($t) } or next;
        push @res, $r;
    }
    return 0 unless @res;
    my ($r0) = grep { $_->{readers} == 0 } @res;
    my $g0 = $r0 ? $r0->{peak}{pd} - $r0->{baseline}{pd} : undef;

    my $kb = sub { my $v = shift; defined $v ? sprintf('%d', $v) : '-' };
    my @rows;
    push @rows, ['R', 'VmRSS base', 'peak', '+peak', '/reader',
                 'Private_Dirty base', 'peak', '+peak', '/reader', 'marginal',
                 'peak x R=0', 'TCP +peak', 'exec s', 'events',
                 'readers complete'];
    for my $r (sort { $a->{readers} <=> $b->{readers} } @res) {
        my $n = $r->{readers};
        my $g = $r->{peak}{pd} - $r->{baseline}{pd};
        my $gr = $r->{peak}{rss} - $r->{baseline}{rss};
        my $complete;
        if ($n == 0) {
            $complete = '-';
        } else {
            $complete = "$r->{readers_complete}/$n";
            $complete .= sprintf ' (read %.1f MB)', $r->{readers_bytes} / 1e6
                if $r->{readers_complete} < $n;
        }
        my $events = $r->{expected_events} // '?';
        $events .= $r->{starter}{complete} ? '' : ' (starter: NOT complete)';
        push @rows, [
            $n, $kb->($r->{baseline}{rss}), $kb->($r->{peak}{rss}), $kb->($gr),
            $n ? $kb->($gr / $n) : '-',
            $kb->($r->{baseline}{pd}), $kb->($r->{peak}{pd}), $kb->($g),
            $n ? $kb->($g / $n) : '-',
            $n && defined $g0 ? $kb->(($g - $g0) / $n) : '-',
            $r0 && $r0->{peak}{pd} > 0
                ? sprintf('%.2f', $r->{peak}{pd} / $r0->{peak}{pd}) : '-',
            $kb->(($r->{peak}{tcp} - $r->{baseline}{tcp}) * $Page / 1024),
            $r->{times}{execution} // '-', $events, $complete,
        ];
    }
    my @w;
    for my $row (@rows) {
        for my $i (0 .. $#$row) {
            my $l = length $row->[$i];
            $w[$i] = $l if !defined $w[$i] || $l > $w[$i];
        }
    }
    for my $row (@rows) {
        print join('  ', map {
            $_ == $#$row ? $row->[$_] : sprintf("%*s", $w[$_], $row->[$_])
        } 0 .. $#$row), "\n";
    }
    print "(kB.  +peak: peak - base; /reader: +peak / R; marginal: (+peak - "
        . "R=0's +peak) / R; peak x R=0: Private_Dirty peak / R=0's;\n"
        . " TCP +peak: the kernel's TCP buffers, all sockets of the machine "
        . "(/proc/net/sockstat);\n"
        . " exec s: until the starting client got perstack.end; events: its "
        . "count, which every reader must match)\n";
    return 0;
}
