#!/usr/bin/env perl
# The client side of scripts/soak.sh: drives an nginx that soak.sh started
# (and alone knows how to stop), then writes the report.  Not meant to be run
# by hand; soak.sh passes every option.
#
#   soak.pl --port P --master-pid PID --error-log FILE --label-key K
#           --label-value V --report FILE [--executions N] [--concurrency C]
#           [--reload-every K] [--abort-rate P] [--warmup W] [--workers N]
#           [--quiet-period S] [--client-timeout S] [--seed S]
#           [--docker-sock PATH] [--leftover-wait S] [--settle-timeout S]
#           [--limit-max M] [--nginx-desc TEXT] [--module TEXT]
#           [--command TEXT]
#
# Only core Perl modules: the clients are non-blocking sockets in one
# select() loop; the Docker Engine API is asked with curl over its socket,
# as t/lib/Perstack.pm does, and a curl child streams the Docker events of
# the run's containers into docker-events.ndjson next to the error log (it
# is stopped by its pid at the end).  Traffic goes to 127.0.0.1 only; the
# only signal sent to nginx is SIGHUP, to --master-pid, after checking that
# it still is an nginx.
#
# Phases: warm-up (W executions), drain, figures ("warm-up, loaded"),
# reload, wait for the old workers to exit, quiet period, figures
# ("warm-up, fresh"); the main phase with a reload every K executions
# (counted as they finish); drain; the limit probe (once the run's
# containers are gone, --limit-max executions at once must all be admitted:
# a 429 there means a slot leaked); figures ("end, loaded"), reload, wait,
# quiet period, figures ("end, fresh"); containers left with the run's
# label after --leftover-wait; the error log; the report.
# Exit status: 0 when nothing unexpected happened, 1 when something did,
# anything else on a usage or set-up error (or when nginx went away).

use strict;
use warnings;

use Getopt::Long qw(GetOptions);
use IO::Select ();
use IO::Socket::INET ();
use Socket qw(SOL_SOCKET SO_LINGER);
use POSIX ();
use Time::HiRes qw(time sleep);
use JSON::PP ();

$| = 1;

my %o = (
    executions => 2000, concurrency => 8, 'reload-every' => 200,
    'abort-rate' => 0.1, warmup => 100, workers => 2, 'quiet-period' => 3,
    'client-timeout' => 120, 'docker-sock' => '/var/run/docker.sock',
    'leftover-wait' => 30, 'settle-timeout' => 60, 'limit-max' => 0,
    seed => undef,
);
GetOptions(\%o, 'port=i', 'master-pid=i', 'error-log=s', 'label-key=s',
           'label-value=s', 'report=s', 'executions=i', 'concurrency=i',
           'reload-every=i', 'abort-rate=f', 'warmup=i', 'workers=i',
           'quiet-period=f', 'client-timeout=f', 'seed=i', 'docker-sock=s',
           'leftover-wait=f', 'settle-timeout=f', 'limit-max=i',
           'nginx-desc=s', 'module=s', 'command=s')
    or exit 2;
for my $req (qw(port master-pid error-log label-key label-value report)) {
    defined $o{$req} or do { print STDERR "soak.pl: --$req is required\n"; exit 2 };
}

my $N = $o{executions};
my $C = $o{concurrency};
my $K = $o{'reload-every'};
my $P = $o{'abort-rate'};
my $W = $o{warmup};
$W = int($N / 4) if $W >= $N;        # a warm-up that leaves a main phase
my $Master = $o{'master-pid'};
my $Label = "$o{'label-key'}=$o{'label-value'}";
my $Seed = $o{seed} // (time() * 1000 ^ $$) % 2_000_000_000;
srand($Seed);

my $Json = JSON::PP->new->utf8;

sub msg { printf "soak: %s\n", join '', @_ }

# ---- scenarios -------------------------------------------------------------
# weight, location, expert, query (a sub for random ones), the outcomes
# expected, and a size hint in bytes for where an abort may cut.
my @Words = ((qw(nginx agent stream event docker container soak reload
                 worker slot limit query 42 -dash --opt)),
             '"quoted"', 'back\\slash', "caf\x{e9}", "smile\x{263a}",
             "tab\there", 'a+b&c=d%20e');
sub words {
    my $n = 1 + int rand 12;
    return join ' ', map { $Words[rand @Words] } 1 .. $n;
}
my @Scenarios = (
    { name => 'demo',        w => 55, loc => '/agent', expert => 'demo',
      query => \&words, expect => ['completed'], size => 2500 },
    { name => 'slow 3',      w => 8,  loc => '/agent', expert => 'slow',
      query => '3', expect => ['completed'], size => 2000 },
    { name => 'flood 2000',  w => 7,  loc => '/agent', expert => 'flood',
      query => '2000', expect => ['completed'], size => 400000 },
    { name => 'error',       w => 5,  loc => '/agent', expert => 'error',
      query => \&words, expect => ['failed'], size => 2500 },
    { name => 'crash',       w => 5,  loc => '/agent', expert => 'crash',
      query => \&words, expect => ['failed'], size => 1500 },
    { name => 'exit 3',      w => 5,  loc => '/agent', expert => 'exit',
      query => '3', expect => ['failed'], size => 1500 },
    { name => 'garbage',     w => 5,  loc => '/agent', expert => 'garbage',
      query => \&words, expect => ['completed'], size => 2500 },
    { name => 'stubborn',    w => 4,  loc => '/short', expert => 'stubborn',
      query => \&words, expect => ['timeout'], size => 5000 },
    { name => 'interactive', w => 3,  loc => '/agent', expert => 'interactive',
      query => \&words, expect => ['paused'], size => 2500 },
    { name => 'stderr',      w => 2,  loc => '/agent', expert => 'stderr',
      query => \&words, expect => ['completed'], size => 3000 },
    { name => 'nonl',        w => 1,  loc => '/agent', expert => 'nonl',
      query => \&words, expect => ['completed'], size => 2500 },
);
my $WeightSum = 0;
$WeightSum += $_->{w} for @Scenarios;

my $Probe;         # the limit probe's scenario, while it runs
sub pick_scenario {
    return $Probe if $Probe;
    my $r = rand $WeightSum;
    for my $s (@Scenarios) {
        return $s if ($r -= $s->{w}) < 0;
    }
    return $Scenarios[0];
}

sub uri_escape {
    my ($s) = @_;
    utf8::upgrade($s);
    utf8::encode($s);
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# ---- bookkeeping -----------------------------------------------------------
my $issued = 0;        # requests started
my $finished = 0;      # requests classified
my %kind;              # kind => count
my %by_scen;           # scenario => kind => count
my @unexpected;        # [exec no, scenario, what, detail]
my %unexpected_kind;
my @durations;         # [scenario, seconds] of streams that ran to their end
my $reloads = 0;
my @reload_at;         # finished counts at which SIGHUP was sent
my %workers_seen;
my %max = (worker_fds => 0, worker_rss => 0, shutting_down => 0,
           containers => 0, master_fds => 0, master_rss => 0);
my %abort_where;       # before_response / mid_stream / after_end
my $bytes_total = 0;
my $events_total = 0;
my $streams = 0;      # 200 responses
my @wait429;         # seconds until each 429
my @spans429;        # [start, end] of each 429
my @starts200;       # start of each 200 response

sub unexpected {
    my ($c, $what, $detail) = @_;
    $unexpected_kind{$what}++;
    push @unexpected, [$c ? $c->{no} : '-', $c ? $c->{scen}{name} : '-',
                       $what, $detail // ''];
}

# ---- processes -------------------------------------------------------------
sub read_file {
    my ($f) = @_;
    open my $fh, '<', $f or return undef;
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s;
}

sub is_nginx {
    my ($pid) = @_;
    my $comm = read_file("/proc/$pid/comm") // return 0;
    chomp $comm;
    return 0 unless $comm eq 'nginx';
    my $st = read_file("/proc/$pid/status") // return 0;
    return $st !~ /^State:\s*Z/m;
}

# The master's children: [pid, shutting_down]
sub workers {
    my @w;
    opendir my $d, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $d) {
        my $stat = read_file("/proc/$pid/stat") // next;
        my ($comm, $state, $ppid) = $stat =~ /^\d+ \((.*)\) (\S) (\d+)/s
            or next;
        next unless $ppid == $Master && $comm eq 'nginx' && $state ne 'Z';
        my $cmd = read_file("/proc/$pid/cmdline") // '';
        $cmd =~ tr/\0/ /;
        next if $cmd =~ /cache (?:manager|loader)/;
        push @w, [$pid, $cmd =~ /shutting down/ ? 1 : 0];
    }
    closedir $d;
    return sort { $a->[0] <=> $b->[0] } @w;
}

sub fds {
    my ($pid) = @_;
    opendir my $d, "/proc/$pid/fd" or return undef;
    my $n = grep { /^\d+$/ } readdir $d;
    closedir $d;
    return $n;
}

sub rss_kb {
    my ($pid) = @_;
    my $st = read_file("/proc/$pid/status") // return undef;
    return $st =~ /^VmRSS:\s+(\d+)\s+kB/m ? $1 : undef;
}

sub master_alive {
    return is_nginx($Master);
}

# A snapshot: { label, t, finished, master => {pid fds rss}, workers => [...] }
my @snapshots;
sub snapshot {
    my ($label) = @_;
    my @w = workers();
    my $s = {
        label => $label, finished => $finished, t => time(),
        master => { pid => $Master, fds => fds($Master), rss => rss_kb($Master) },
        workers => [ map { { pid => $_->[0], shutting => $_->[1],
                             fds => fds($_->[0]), rss => rss_kb($_->[0]) } } @w ],
    };
    push @snapshots, $s;
    return $s;
}

sub sample {
    my @w = workers();
    $workers_seen{$_->[0]} = 1 for @w;
    my $sd = grep { $_->[1] } @w;
    $max{shutting_down} = $sd if $sd > $max{shutting_down};
    for (@w) {
        my ($f, $r) = (fds($_->[0]), rss_kb($_->[0]));
        $max{worker_fds} = $f if defined $f && $f > $max{worker_fds};
        $max{worker_rss} = $r if defined $r && $r > $max{worker_rss};
    }
    my ($f, $r) = (fds($Master), rss_kb($Master));
    $max{master_fds} = $f if defined $f && $f > $max{master_fds};
    $max{master_rss} = $r if defined $r && $r > $max{master_rss};
}

sub reload {
    my ($why) = @_;
    master_alive() or die "soak: the nginx master (pid $Master) is gone\n";
    kill 'HUP', $Master or die "soak: cannot signal pid $Master: $!\n";
    $reloads++;
    push @reload_at, $finished;
    msg("reload $reloads (SIGHUP to $Master) after $finished executions"
        . ($why ? " ($why)" : ''));
}

# After a reload: wait until the workers are $o{workers} new ones and no
# old one is left; returns the old workers still there (none: settled).
sub wait_settled {
    my ($old) = @_;
    my %old = map { $_->[0] => 1 } @$old;
    my $deadline = time() + $o{'settle-timeout'};
    my @w;
    while (1) {
        @w = workers();
        $workers_seen{$_->[0]} = 1 for @w;
        my @left = grep { $old{$_->[0]} || $_->[1] } @w;
        my @new = grep { !$old{$_->[0]} && !$_->[1] } @w;
        return () if !@left && @new == $o{workers};
        return @left ? @left : (['?', 0]) if time() > $deadline;
        sleep 0.1;
    }
}

# ---- the Docker Engine API (curl over the socket) --------------------------
sub docker_get {
    my ($path, %q) = @_;
    my $url = "http://localhost$path";
    $url .= '?' . join '&', map { uri_escape($_) . '=' . uri_escape($q{$_}) }
                            sort keys %q if %q;
    open my $fh, '-|', 'curl', '-sS', '--max-time', '20', '--unix-socket',
        $o{'docker-sock'}, '-w', '\n%{http_code}', $url
        or return (0, "curl: $!");
    binmode $fh;
    local $/;
    my $out = <$fh> // '';
    close $fh;
    $out =~ s/\n?(\d{3})\z// or return (0, $out);
    return ($1, $out);
}

sub our_containers {
    my ($st, $body) = docker_get('/containers/json', all => 1,
        filters => $Json->encode({ label => [$Label] }));
    return undef unless $st == 200;
    my $l = eval { $Json->decode($body) };
    return ref $l eq 'ARRAY' ? $l : undef;
}

my $T0 = time();

# The Docker events of the run's containers, as they happen: a curl child
# (stopped at the end, by its pid) streams them into a file.  (The engine
# keeps only the last 256 events for a later "since"/"until" query, which
# other users of the engine overrun.)
my $EvFile = "$o{'error-log'}";
$EvFile =~ s{[^/]*\z}{docker-events.ndjson};
my $EvPid;
sub start_events {
    my $fmt = sprintf '%d', $T0 - 1;
    my $url = 'http://localhost/events?since=' . $fmt . '&filters='
        . uri_escape($Json->encode({ type => ['container'],
                                     event => ['create', 'start', 'die', 'destroy'],
                                     label => [$Label] }));
    $EvPid = fork;
    die "soak: fork: $!\n" unless defined $EvPid;
    if ($EvPid == 0) {
        open STDOUT, '>', $EvFile or POSIX::_exit(127);
        { no warnings 'exec'; exec 'curl', '-sSN', '--unix-socket', $o{'docker-sock'}, $url; }
        POSIX::_exit(127);
    }
}
sub stop_events {
    return unless $EvPid;
    kill 'TERM', $EvPid;
    waitpid $EvPid, 0;
    undef $EvPid;
}
END { local $?; stop_events() }
$SIG{INT} = sub { die "soak: interrupted\n" };
$SIG{TERM} = sub { die "soak: terminated\n" };

sub container_events {
    my %n;
    sleep 1;            # the last removals' events
    stop_events();
    open my $fh, '<', $EvFile or return undef;
    while (my $l = <$fh>) {
        next unless $l =~ /\S/;
        my $e = eval { $Json->decode($l) } or next;
        $n{ $e->{Action} // $e->{status} // '?' }++;
    }
    close $fh;
    return \%n;
}

# ---- the clients -----------------------------------------------------------
my $Sel = IO::Select->new;
my %active;            # fileno => client
my @slot_free_at = (0) x $C;
my $Cnow = $C;      # clients at once (the limit probe: its own number)
my %slot_busy;

sub start_client {
    my ($slot) = @_;
    my $scen = pick_scenario();
    my $no = ++$issued;
    my $q = ref $scen->{query} ? $scen->{query}->() : $scen->{query};
    my $ndjson = rand() < 0.5;
    my $post = rand() < 0.5;
    my $c = { no => $no, scen => $scen, slot => $slot, t0 => time(),
              format => $ndjson ? 'ndjson' : 'sse', bytes => 0,
              raw => '', state => 'headers', events => 0 };
    if (!$Probe && rand() < $P) {
        # half cut after some bytes, (a few during the response headers), half
        # after a time (some while the container is being created)
        if (rand() < 0.5) {
            $c->{abort_bytes} = 1 + int(rand() ** 1.5 * $scen->{size});
        } else {
            $c->{abort_time} = $c->{t0} + rand() ** 1.5 * 3;
        }
        $c->{abort_rst} = rand() < 0.5;
    }

    my $req;
    my $accept = $ndjson ? "Accept: application/x-ndjson\r\n"
                         : "Accept: text/event-stream\r\n";
    if ($post) {
        my $body = $Json->encode({ expert => $scen->{expert}, query => $q });
        $req = "POST $scen->{loc} HTTP/1.1\r\nHost: 127.0.0.1\r\n$accept"
             . "Content-Type: application/json\r\n"
             . "Content-Length: " . length($body) . "\r\n"
             . "Connection: close\r\n\r\n$body";
    } else {
        $req = "GET $scen->{loc}?expert=" . uri_escape($scen->{expert})
             . "&query=" . uri_escape($q) . " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             . "${accept}Connection: close\r\n\r\n";
    }
    $c->{method} = $post ? 'POST' : 'GET';

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $o{port}, Proto => 'tcp',
                                      Timeout => 5);
    $slot_busy{$slot} = 1;
    if (!$sock) {
        finish($c, 'transport', "connect: $!");
        return;
    }
    binmode $sock;
    $c->{sock} = $sock;
    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite($sock, $req, length($req) - $off, $off);
        if (!defined $n) {
            next if $!{EINTR};
            finish($c, 'transport', "write: $!");
            return;
        }
        $off += $n;
    }
    $sock->blocking(0);
    $active{ fileno $sock } = $c;
    $Sel->add($sock);
}

sub close_client {
    my ($c, $rst) = @_;
    my $s = delete $c->{sock} or return;
    delete $active{ fileno $s };
    $Sel->remove($s);
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)) if $rst;
    close $s;
}

# Classify and forget the client.  $how: 'eof', 'abort', 'transport',
# 'timeout'.
sub finish {
    my ($c, $how, $detail) = @_;
    return if $c->{finished}++;
    close_client($c, $how eq 'abort' && $c->{abort_rst});
    $finished++;
    $bytes_total += $c->{bytes};
    $events_total += $c->{events};
    my $scen = $c->{scen}{name};
    my $k;
    if (($c->{status} // 0) == 200) {
        $streams++;
        push @starts200, $c->{t0};
    }

    if ($how eq 'transport') {
        $k = 'transport error';
        unexpected($c, 'transport error', $detail);
    } elsif ($how eq 'timeout') {
        $k = 'client timeout';
        unexpected($c, 'client timeout', "no end after $o{'client-timeout'}s"
                   . " ($c->{bytes} bytes, $c->{events} events, state $c->{state})");
    } elsif ($how eq 'abort' && !$c->{end}) {
        $k = 'aborted by client';
        $abort_where{ $c->{state} eq 'headers' ? 'before response'
                      : 'mid-stream' }++;
    } elsif ($c->{state} eq 'headers') {
        $k = 'transport error';
        unexpected($c, 'transport error', 'connection closed before a response'
                   . " ($c->{bytes} bytes)");
    } elsif ($c->{status} != 200) {
        $k = "http $c->{status}";
        if ($c->{status} == 429 && $c->{scen}{probe}) {
            unexpected($c, 'http 429 in the limit probe (a slot leaked?)',
                       substr($c->{body} // '', 0, 300));
        } elsif ($c->{status} == 429) {
            push @wait429, time() - $c->{t0};
            push @spans429, [$c->{t0}, time()];
            # the client waits as Retry-After says (1s), and a little more
            my $ra = $c->{hdr}{'retry-after'} // 1;
            $ra = 1 unless $ra =~ /\A\d+\z/ && $ra <= 10;
            $slot_free_at[$c->{slot}] = time() + $ra + rand 0.5;
        } else {
            # a 5xx, or any other refusal of a valid request
            unexpected($c, "http $c->{status}", substr($c->{body} // '', 0, 300));
        }
        if (defined $c->{clen} && length($c->{body} // '') != $c->{clen}) {
            unexpected($c, 'short error body',
                       length($c->{body} // '') . " of $c->{clen} bytes");
        }
    } elsif (!$c->{end}) {
        $k = 'no perstack.end';
        unexpected($c, 'no perstack.end', "$c->{format} $c->{method}: "
                   . "$c->{bytes} bytes, $c->{events} events, last event "
                   . ($c->{last_type} // '-') . ", chunked state "
                   . ($c->{cstate} // '-'));
    } else {
        my $end = $c->{end};
        my $out = $end->{outcome} // '?';
        $k = $out;
        $abort_where{'after perstack.end'}++ if $how eq 'abort';
        my %exp = map { $_ => 1 } @{ $c->{scen}{expect} }, 'shutdown';
        unexpected($c, 'unexpected outcome', "outcome $out (expected "
                   . join('|', @{ $c->{scen}{expect} }) . ") "
                   . ($c->{end_data} // ''))
            unless $exp{$out};
        if ($how ne 'abort' && ($c->{cstate} // 'done') ne 'done') {
            unexpected($c, 'bad chunked framing',
                       "stream ended in chunk state $c->{cstate}");
        }
        push @durations, [$scen, time() - $c->{t0}] if $how ne 'abort';
    }

    if (my @p = @{ $c->{problems} || [] }) {
        $#p = 4 if @p > 5;
        unexpected($c, 'stream invariant', join '; ', @p);
    }

    $kind{$k}++;
    $by_scen{$scen}{$k}++;
    delete $slot_busy{ $c->{slot} };
}

sub problem {
    my ($c, $p) = @_;
    push @{ $c->{problems} }, $p if @{ $c->{problems} || [] } < 20;
}

# One event of the stream: $data is the JSON text; $sse_id/$sse_event for SSE.
sub on_event {
    my ($c, $data, $sse_id, $sse_event) = @_;
    my $n = ++$c->{events};
    if ($c->{end}) {
        problem($c, "event $n after perstack.end");
    }
    if ($c->{format} eq 'sse') {
        problem($c, "event $n has id " . ($sse_id // 'none'))
            unless defined $sse_id && $sse_id eq $n;
    }
    my $type;
    if ($data =~ /\A\{"type":"(perstack\.[a-z]+)"/) {
        $type = $1;
    } elsif ($data =~ /"type":"([^"\\]*)"/) {
        $type = $1;
    }
    if ($c->{format} eq 'sse' && defined $type && ($sse_event // '') ne $type) {
        problem($c, "event $n: name " . ($sse_event // 'none') . ", type $type");
    }
    $c->{last_type} = $type // '?';
    if ($n == 1) {
        if (($type // '') ne 'perstack.execution') {
            problem($c, "first event is " . ($type // '?'));
        } else {
            my $x = eval { $Json->decode($data) } || {};
            problem($c, "perstack.execution.execution is not the header's")
                unless ($x->{execution} // '') eq ($c->{xid} // '-');
            $c->{job} = $x->{job};
        }
    }
    if (defined $type && $type eq 'perstack.end') {
        my $e = eval { $Json->decode($data) };
        if (!$e) {
            problem($c, "perstack.end is not JSON: " . substr($data, 0, 200));
            $e = { outcome => 'unparsable' };
        }
        $c->{end} = $e;
        $c->{end_data} = $data;
        problem($c, "perstack.end.container_removed is not true")
            unless $data =~ /"container_removed":true[,}]/;
        problem($c, "perstack.end.events is " . ($e->{events} // 'none')
                . " but there were $n events")
            unless ($e->{events} // -1) == $n;
        problem($c, "perstack.end.execution is not the header's")
            unless ($e->{execution} // '') eq ($c->{xid} // '-');
        problem($c, "perstack.end.job is not perstack.execution's")
            unless ($e->{job} // '') eq ($c->{job} // '-');
    }
}

# Decoded body bytes of a 200 stream.
sub on_body {
    my ($c, $buf) = @_;
    $c->{lbuf} .= $buf;
    while ((my $i = index($c->{lbuf}, "\n")) >= 0) {
        my $line = substr($c->{lbuf}, 0, $i);
        substr($c->{lbuf}, 0, $i + 1) = '';
        if ($c->{format} eq 'ndjson') {
            next if $line eq '';                 # keep-alive
            on_event($c, $line);
            next;
        }
        # SSE
        if ($line eq '') {
            if (defined $c->{sse}{data}) {
                on_event($c, $c->{sse}{data}, $c->{sse}{id}, $c->{sse}{event});
            }
            $c->{sse} = {};
        } elsif ($line =~ /\A:/) {
            # comment (: ping)
        } elsif ($line =~ /\A(id|event|data): ?(.*)\z/s) {
            if ($1 eq 'data' && defined $c->{sse}{data}) {
                $c->{sse}{data} .= "\n$2";
            } else {
                $c->{sse}{$1} = $2;
            }
        } else {
            problem($c, "bad SSE line: " . substr($line, 0, 80));
        }
    }
}

# Chunked transfer coding.
sub on_chunked {
    my ($c, $buf) = @_;
    $c->{cbuf} .= $buf;
    while (length $c->{cbuf}) {
        my $st = $c->{cstate};
        if ($st eq 'size' || $st eq 'trailer') {
            my $i = index($c->{cbuf}, "\r\n");
            return if $i < 0;
            my $line = substr($c->{cbuf}, 0, $i);
            substr($c->{cbuf}, 0, $i + 2) = '';
            if ($st eq 'trailer') {
                $c->{cstate} = 'done' if $line eq '';
                next;
            }
            if ($line !~ /\A([0-9a-fA-F]+)(?:;.*)?\z/) {
                problem($c, "bad chunk size line: " . substr($line, 0, 40));
                $c->{cstate} = 'broken';
                return;
            }
            my $n = hex $1;
            if ($n == 0) {
                $c->{cstate} = 'trailer';
            } else {
                $c->{cleft} = $n;
                $c->{cstate} = 'data';
            }
        } elsif ($st eq 'data') {
            my $take = $c->{cleft} < length $c->{cbuf} ? $c->{cleft}
                                                       : length $c->{cbuf};
            my $part = substr($c->{cbuf}, 0, $take);
            substr($c->{cbuf}, 0, $take) = '';
            $c->{cleft} -= $take;
            $c->{cstate} = 'crlf' if $c->{cleft} == 0;
            on_body($c, $part);
        } elsif ($st eq 'crlf') {
            return if length $c->{cbuf} < 2;
            if (substr($c->{cbuf}, 0, 2) ne "\r\n") {
                problem($c, 'no CRLF after a chunk');
                $c->{cstate} = 'broken';
                return;
            }
            substr($c->{cbuf}, 0, 2) = '';
            $c->{cstate} = 'size';
        } elsif ($st eq 'done') {
            problem($c, 'bytes after the last chunk');
            $c->{cbuf} = '';
            return;
        } else {
            return;
        }
    }
}

sub on_data {
    my ($c, $buf) = @_;
    if ($c->{state} eq 'headers') {
        $c->{raw} .= $buf;
        my $i = index($c->{raw}, "\r\n\r\n");
        return if $i < 0;
        my $head = substr($c->{raw}, 0, $i);
        my $rest = substr($c->{raw}, $i + 4);
        $c->{raw} = '';
        my ($status_line, @lines) = split /\r\n/, $head;
        if ($status_line !~ m{\AHTTP/1\.[01] (\d{3})}) {
            problem($c, "bad status line: " . substr($status_line, 0, 80));
            $c->{status} = 0;
        } else {
            $c->{status} = $1;
        }
        my %h;
        for (@lines) {
            $h{lc $1} = $2 if /\A([^:]+):\s*(.*?)\s*\z/;
        }
        $c->{hdr} = \%h;
        $c->{xid} = $h{'x-perstack-execution'};
        if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
            $c->{cstate} = 'size';
        } elsif (defined $h{'content-length'}) {
            $c->{clen} = $h{'content-length'};
        }
        if ($c->{status} == 200) {
            $c->{state} = 'stream';
            my $ct = $h{'content-type'} // '';
            my $want = $c->{format} eq 'sse' ? 'text/event-stream'
                                             : 'application/x-ndjson';
            problem($c, "Content-Type $ct, expected $want")
                unless $ct eq $want;
            problem($c, "no X-Perstack-Execution header")
                unless ($c->{xid} // '') =~ /\A[0-9a-f]{16}\z/;
        } else {
            $c->{state} = 'error';
            $c->{body} = '';
        }
        $buf = $rest;
        return unless length $buf;
    }
    if ($c->{state} eq 'error') {
        $c->{body} .= $buf if length($c->{body}) < 65536;
        return;
    }
    if (defined $c->{cstate}) {
        on_chunked($c, $buf);
    } else {
        on_body($c, $buf);
    }
}

sub on_readable {
    my ($c) = @_;
    my $n = sysread($c->{sock}, my $buf, 65536);
    if (!defined $n) {
        return if $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR};
        my $err = "$!";
        if ($c->{state} ne 'headers' && $c->{end}) {
            # a reset after the closing event: the stream is whole
            finish($c, 'eof');
        } else {
            finish($c, 'transport', "read: $err ($c->{bytes} bytes, state $c->{state})");
        }
        return;
    }
    if ($n == 0) {
        if ($c->{state} eq 'stream' && !$c->{end} && length($c->{lbuf} // '')) {
            # a last line without a newline is not an event on the wire
            problem($c, 'stream ends with a partial line');
        }
        finish($c, 'eof');
        return;
    }
    $c->{bytes} += $n;
    on_data($c, $buf);
    if (defined $c->{abort_bytes} && $c->{bytes} >= $c->{abort_bytes}) {
        finish($c, 'abort');
    }
}

# Run until $upto requests were issued and all of them finished.
my $last_sample = 0;
my $last_containers = 0;
my $last_progress = 0;
my $target_for_reloads = 0;
sub run_until {
    my ($upto, $no_reload_at) = @_;
    while ($issued < $upto || %active) {
        my $now = time();
        for my $slot (0 .. $Cnow - 1) {
            last if $issued >= $upto;
            next if $slot_busy{$slot} || ($slot_free_at[$slot] // 0) > $now;
            start_client($slot);
        }
        my @ready = $Sel->can_read(0.05);
        for my $s (@ready) {
            my $c = $active{ fileno $s } or next;
            on_readable($c);
        }
        $now = time();
        for my $c (values %active) {
            if (defined $c->{abort_time} && $now >= $c->{abort_time}) {
                finish($c, 'abort');
            } elsif ($now - $c->{t0} > $o{'client-timeout'}) {
                finish($c, 'timeout');
            }
        }
        # a reload every K executions (not at the warm-up's or the end's,
        # which have their own)
        while ($K > 0 && $target_for_reloads + $K <= $finished) {
            $target_for_reloads += $K;
            next if $target_for_reloads == $no_reload_at
                    || $target_for_reloads >= $N;
            reload();
        }
        if ($now - $last_sample >= 1) {
            $last_sample = $now;
            master_alive() or die "soak: the nginx master (pid $Master) is gone\n";
            sample();
        }
        if ($now - $last_containers >= 10) {
            $last_containers = $now;
            my $l = our_containers();
            $max{containers} = @$l if $l && @$l > $max{containers};
        }
        if ($now - $last_progress >= 15) {
            $last_progress = $now;
            msg(sprintf "%d/%d finished, %d running, %d unexpected, %.0fs",
                $finished, $N, scalar keys %active, scalar @unexpected,
                $now - $T0);
        }
    }
}

sub settle_and_snapshot {
    my ($phase, $why) = @_;
    snapshot("$phase, loaded");
    my @old = workers();
    reload($why);
    my @left = wait_settled(\@old);
    if (@left) {
        unexpected(undef, 'worker did not exit after a reload',
                   join(', ', map { "pid $_->[0]" . ($_->[1] ? ' (shutting down)' : '') } @left)
                   . " still there $o{'settle-timeout'}s after the reload");
    }
    sleep $o{'quiet-period'};
    sample();
    snapshot("$phase, fresh");
}

# ---- the run ---------------------------------------------------------------
master_alive() or die "soak: pid $Master is not an nginx\n";
sample();
snapshot('start');
start_events();
msg("run $o{'label-value'}: $N executions, $C clients, reload every $K, "
    . "abort rate $P, warm-up $W, seed $Seed");

run_until($W, $W);
msg("warm-up done ($finished executions): reload, then figures");
settle_and_snapshot('warm-up', 'after the warm-up');
my $t_main = time();
run_until($N, $W);
my $t_main_end = time();
msg("all $N executions done");

# No slot of the limit zone may be held now: once the run's containers are
# gone, as many executions as the limit's max must all be admitted at once.
sub wait_no_containers {
    my ($timeout) = @_;
    my $deadline = time() + $timeout;
    my $l;
    while (1) {
        $l = our_containers();
        return $l if ($l && !@$l) || time() > $deadline;
        sleep 0.5;
    }
}
my $probe_n = 0;
if ($o{'limit-max'} > 0) {
    wait_no_containers($o{'leftover-wait'});
    $probe_n = $o{'limit-max'};
    msg("limit probe: $probe_n executions at once (max=$probe_n)");
    $Probe = { name => 'limit probe', probe => 1, loc => '/agent',
               expert => 'demo', query => 'limit probe', expect => ['completed'],
               size => 2500 };
    $Cnow = $probe_n;
    run_until($N + $probe_n, $W);
    undef $Probe;
    $Cnow = $C;
}
msg("last reload, then figures");
settle_and_snapshot('end', 'the last');

# containers with the run's label, after a bounded wait
my $left = our_containers();
my $deadline = time() + $o{'leftover-wait'};
while ((!$left || @$left) && time() < $deadline) {
    sleep 0.5;
    $left = our_containers();
}
my @left_desc;
if (!$left) {
    unexpected(undef, 'cannot list containers', 'Docker Engine API');
} else {
    @left_desc = map { sprintf '%s %s %s (%s)', substr($_->{Id}, 0, 12),
                       join(',', @{ $_->{Names} || [] }), $_->{State} // '?',
                       ($_->{Labels} || {})->{'io.perstack.expert'} // '?' } @$left;
}
my $events = container_events();

# the error log
my %lvl;
my @bad_lines;
my %warn_kinds;
my $log_size = 0;
if (open my $lf, '<', $o{'error-log'}) {
    while (my $l = <$lf>) {
        chomp $l;
        my ($lv) = $l =~ /\[(debug|info|notice|warn|error|crit|alert|emerg)\]/;
        $lv //= '?';
        $lvl{$lv}++;
        if ($lv =~ /\A(?:crit|alert|emerg)\z/ || $l =~ /exited on signal|exited with code [1-9]/) {
            push @bad_lines, $l;
        } elsif ($lv eq 'warn' || $lv eq 'error') {
            (my $k = $l) =~ s/^\S+ \S+ \[\w+\] \d+#\d+: (?:\*\d+ )?//;
            $k =~ s/, client: .*//;
            $k =~ s/\b[0-9a-f]{12,64}\b/<id>/g;
            $k =~ s/\b\d+(?:\.\d+)?\b/N/g;
            $warn_kinds{"[$lv] $k"}++;
        }
    }
    $log_size = tell $lf;
    close $lf;
} else {
    unexpected(undef, 'cannot read the error log', "$o{'error-log'}: $!");
}
for (@bad_lines) {
    unexpected(undef, /exited (?:on signal|with code)/ ? 'worker crash' : 'error log [alert]/[crit]/[emerg]', $_);
}
# soak.sh checks the lines nginx writes after this point (its stop)
if (open my $of, '>', "$o{'error-log'}.scanned") {
    print $of "$log_size\n";
    close $of;
}

# ---- the report ------------------------------------------------------------
my $dur = time() - $T0;
my @r;
push @r, "perstack soak test: run $o{'label-value'} (seed $Seed)";
push @r, "command: $o{command}" if $o{command};
push @r, "nginx: $o{'nginx-desc'}" if $o{'nginx-desc'};
push @r, "module: $o{module}" if $o{module};
push @r, sprintf "settings: %d executions, concurrency %d, reload every %d, "
    . "abort rate %.2f, warm-up %d, %d workers, limit max %s",
    $N, $C, $K, $P, $W, $o{workers}, $o{'limit-max'} || 'none';
push @r, sprintf "duration: %.1fs (main phase %.1fs, %.1f executions/s)",
    $dur, $t_main_end - $t_main,
    ($N - $W) / (($t_main_end - $t_main) || 1);
push @r, sprintf "executions: %d issued, %d finished (%d of them the limit probe's); "
    . "%d events, %.1f MB received", $issued, $finished, $probe_n,
    $events_total, $bytes_total / 1e6;
push @r, sprintf "reloads: %d (SIGHUP), worker processes seen: %d (%d generations "
    . "of %d), most workers shutting down at once: %d", $reloads,
    scalar keys %workers_seen, $reloads + 1, $o{workers}, $max{shutting_down};
push @r, '';
push @r, 'outcomes:';
for my $k (sort { $kind{$b} <=> $kind{$a} || $a cmp $b } keys %kind) {
    push @r, sprintf '  %-22s %6d', $k, $kind{$k};
}
push @r, sprintf '  (aborted: %s)', join ', ',
    map { "$_ $abort_where{$_}" } sort keys %abort_where if %abort_where;
if (@wait429) {
    my $quick = grep { $_ < 0.5 } @wait429;
    push @r, sprintf '  (http 429: %d at once, %d after waiting in the queue;'
        . ' longest wait %.1fs)', $quick, @wait429 - $quick,
        (sort { $b <=> $a } @wait429)[0];
    # A request that waited in the queue until its queue_timeout, while
    # requests that came after it were admitted: they took the slots it
    # was waiting for.  (Not counted as unexpected: see the report.)
    my ($waited, $passed, $overtaken) = (0, 0, 0);
    for my $sp (grep { $_->[1] - $_->[0] >= 0.5 } @spans429) {
        $waited++;
        my $n = grep { $_ > $sp->[0] + 0.01 && $_ < $sp->[1] - 0.2 } @starts200;
        $passed++ if $n;
        $overtaken += $n;
    }
    push @r, sprintf '  (of the %d refused after waiting in the queue, %d saw requests that'
        . ' came later admitted before them: %d such requests)', $waited, $passed,
        $overtaken if $waited;
}
push @r, '';
push @r, 'by scenario:';
my @kinds = sort { $kind{$b} <=> $kind{$a} || $a cmp $b } keys %kind;
for my $s ((map { $_->{name} } @Scenarios), 'limit probe') {
    next unless $by_scen{$s};
    my $tot = 0;
    $tot += $_ for values %{ $by_scen{$s} };
    my @d = sort { $a <=> $b } map { $_->[1] } grep { $_->[0] eq $s } @durations;
    my $lat = @d ? sprintf(' [time p50 %.2fs, p95 %.2fs, max %.2fs]',
                           $d[int($#d * 0.5)], $d[int($#d * 0.95)], $d[-1])
                 : '';
    push @r, sprintf '  %-12s %5d: %s%s', $s, $tot, join(', ',
        map { "$_ $by_scen{$s}{$_}" } grep { $by_scen{$s}{$_} } @kinds), $lat;
}
push @r, '';
if ($events) {
    push @r, sprintf 'containers (Docker events, label %s): %s', $Label,
        join(', ', map { "$_ " . ($events->{$_} // 0) } qw(create start die destroy))
        . "; 200 responses: $streams";
} else {
    push @r, 'containers (Docker events): could not read the events';
}
push @r, sprintf 'containers running at once (sampled every 10s): at most %d',
    $max{containers};
push @r, sprintf 'containers left with label %s after %ds: %s', $Label,
    $o{'leftover-wait'}, $left ? scalar(@$left) : 'unknown';
push @r, "  $_" for @left_desc;
push @r, '';
push @r, 'processes (fds: entries in /proc/PID/fd, RSS: VmRSS kB):';
for my $s (@snapshots) {
    push @r, sprintf '  %-18s after %5d executions: master %d fds %6s kB;'
        . ' workers %s', $s->{label}, $s->{finished},
        $s->{master}{fds} // -1, $s->{master}{rss} // '?',
        join(', ', map { sprintf '%d%s %d fds %s kB', $_->{pid},
                         $_->{shutting} ? ' (shutting down)' : '',
                         $_->{fds} // -1, $_->{rss} // '?' } @{ $s->{workers} })
        || 'none';
}
my %snap = map { $_->{label} => $_ } @snapshots;
for my $pair (['warm-up, fresh', 'end, fresh'], ['warm-up, loaded', 'end, loaded']) {
    # (the master's figures only compare after reloads: the loaded warm-up
    # figures are of the first configuration)
    my ($a, $b) = map { $snap{$_} } @$pair;
    next unless $a && $b;
    my $sum = sub {
        my ($s, $f) = @_;
        my @w = grep { !$_->{shutting} } @{ $s->{workers} };
        my $t = 0;
        $t += ($_->{$f} // 0) for @w;
        return (@w ? $t / @w : 0);
    };
    my $m = $pair->[0] =~ /fresh/
        ? sprintf('master fds %+d, RSS %+d kB; ',
                  ($b->{master}{fds} // 0) - ($a->{master}{fds} // 0),
                  ($b->{master}{rss} // 0) - ($a->{master}{rss} // 0))
        : '';
    push @r, sprintf '  %s -> %s: %sper worker (mean) fds %+.1f, RSS %+.0f kB',
        @$pair, $m, $sum->($b, 'fds') - $sum->($a, 'fds'),
        $sum->($b, 'rss') - $sum->($a, 'rss');
}
push @r, sprintf '  peaks during the run: worker fds %d, worker RSS %d kB, '
    . 'master fds %d, master RSS %d kB', $max{worker_fds}, $max{worker_rss},
    $max{master_fds}, $max{master_rss};
push @r, '';
push @r, sprintf 'error log (%s): %s', $o{'error-log'},
    join(', ', map { "[$_] $lvl{$_}" } grep { $lvl{$_} }
         qw(emerg alert crit error warn notice info debug ?)) || 'empty';
my @wk = sort { $warn_kinds{$b} <=> $warn_kinds{$a} || $a cmp $b } keys %warn_kinds;
for my $k (@wk[0 .. ($#wk < 14 ? $#wk : 14)]) {
    push @r, sprintf '  %5d  %s', $warn_kinds{$k}, substr($k, 0, 200);
}
push @r, '';
push @r, sprintf 'unexpected: %d', scalar @unexpected;
for my $k (sort keys %unexpected_kind) {
    push @r, sprintf '  %-40s %d', $k, $unexpected_kind{$k};
}
my $shown = 0;
for my $u (@unexpected) {
    last if ++$shown > 40;
    push @r, sprintf '  #%s %s: %s: %s', @$u[0 .. 2], substr($u->[3], 0, 400);
}
push @r, sprintf '  ... and %d more', @unexpected - 40 if @unexpected > 40;

my $ok = !@unexpected && $left && !@$left;
push @r, '';
push @r, 'RESULT: ' . ($ok ? 'PASS' : 'FAIL');

my $text = join("\n", @r) . "\n";
print "\n$text";
if (open my $rf, '>', $o{report}) {
    print $rf $text;
    close $rf;
} else {
    print STDERR "soak: cannot write $o{report}: $!\n";
}
exit($ok ? 0 : 1);
