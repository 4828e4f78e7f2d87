# Executions over HTTP/2 over TLS (durable executions: the spec of issue
# #12).  A server of its own listens on loopback with TLS and HTTP/2, with
# a self-signed certificate that openssl makes for this run; the clients
# check it.
#
#   - the server speaks h2 (ALPN) on every nginx this suite runs: 1.22
#     takes "listen ... ssl http2", 1.25.1 and later "http2 on" (where the
#     listen parameter is deprecated, with a [warn]); a whole stream comes
#     through curl and through the test's own HTTP/2 client, with the
#     spec's ids (SSE) and positions (NDJSON);
#   - eight executions on ONE connection (curl --parallel): each gets its
#     whole stream; the access log shows one $connection, HTTP/2.0 and
#     "h2" for all eight, and that they were all in flight at once;
#   - resume: a slow run's client is killed mid-stream; the execution goes
#     on without it; "Last-Event-ID: <execution>-<n>" gets the events after
#     n exactly once, then perstack.end; once the client had the closing
#     event, 204; without a position, the whole record again;
#   - the client goes away with perstack_detach_timeout 0: killing curl
#     (the connection closes), and RST_STREAM on one stream of a connection
#     that goes on with another: the container is removed, the outcome is
#     client_gone, the other stream is whole;
#   - backpressure per stream: a flood to a stream whose window the client
#     does not give back (HTTP/2 flow control, as a slow reader) is held
#     back, the worker's memory stays flat, while a second stream on the
#     same connection gets its own flood whole.
#
# Where several streams share a connection and one of them must not take
# its data, the client is PerstackH2 (t/lib): Debian 12's curl stops the
# whole connection for a stream that does not read (see PerstackH2.pm).
#
# /run and /flood end an execution when its client goes
# (perstack_detach_timeout 0); /durable keeps the default, to resume.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;
use Perstack;
use PerstackH2;
use IO::Select ();
use POSIX ();
use Time::HiRes ();

master_on();
workers(1);


my $Nginx = $ENV{TEST_NGINX_BINARY};

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return undef;
    binmode $fh;
    local $/;
    return scalar <$fh>;
}

# nginx 1.25.1 made HTTP/2 a directive of its own ("http2 on"); the listen
# parameter it replaces is deprecated there.  (Test::Nginx's own HTTP/2
# switch decides by another version and would give 1.22 "http2 on".)
my $Version = `$Nginx -v 2>&1` =~ m{nginx/(\d+\.\d+\.\d+)} ? $1 : '0.0.0';
my $HttpOn = sprintf('%03d%03d%03d', split /\./, $Version) ge '001025001';

# /durable keeps the default perstack_detach_timeout; the other
# locations set 0 themselves
$Perstack::Detach = 1;

# the certificate, for 127.0.0.1, in a directory of this run's own
my $Tls = make_dir('h2-tls');
my $Crt = "$Tls/server.crt";
{
    open my $stderr, '>&', \*STDERR or die "dup: $!\n";
    open STDERR, '>', '/dev/null' or die "/dev/null: $!\n";
    my $rc = system('openssl', 'req', '-x509', '-newkey', 'ec',
                    '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
                    '-keyout', "$Tls/server.key", '-out', $Crt,
                    '-days', '2', '-subj', '/CN=localhost',
                    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
    open STDERR, '>&', $stderr or die "dup: $!\n";
    die "openssl cannot make $Crt\n" if $rc != 0;
}

my $Port = Perstack::free_port();
my $Listen = $HttpOn ? "listen 127.0.0.1:$Port ssl;\n        http2 on;"
                     : "listen 127.0.0.1:$Port ssl http2;";

my $Detach0 = 'perstack_detach_timeout 0;';

my $Locations = <<"_EOC_";
        # the client goes: the execution ends (client_gone)
        location = /run {
            perstack_execute;
            perstack_image \$TEST_NGINX_PERSTACK_IMAGE;
            $Detach0
        }

        # the client goes: the execution waits for it (60 s by default)
        location = /durable {
            perstack_execute;
            perstack_image \$TEST_NGINX_PERSTACK_IMAGE;
        }

        location = /flood {
            perstack_execute;
            perstack_image \$TEST_NGINX_PERSTACK_IMAGE;
            perstack_buffer_size 16k;
            $Detach0
        }

        location = /static {
            return 200 "static\\n";
        }
_EOC_

my $HttpConfig = <<"_EOC_";
    log_format h2 '\$connection \$connection_requests \$server_protocol '
                  '"\$http2" \$status \$msec \$request_time "\$request_uri"';

    server {
        $Listen
        server_name localhost;
        ssl_certificate $Tls/server.crt;
        ssl_certificate_key $Tls/server.key;
        access_log logs/h2.log h2;

$Locations
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $HttpConfig)
        unless defined $block->http_config;
    $block->set_value('config', $Locations) unless defined $block->config;
    default_request($block, '/run');
});

sub url { "https://127.0.0.1:$Port$_[0]" }

# What a command prints, stdout and stderr.
sub output_of {
    my @cmd = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!\n";
    if (!$pid) {
        open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    return $out;
}

sub h2_client {
    return PerstackH2->new(port => $Port, ca_file => $Crt, @_);
}


# ---- streams, as the spec frames them --------------------------------------

# The SSE events of $text: { events => [{ id, event, data, json, type,
# pos }], errors => [...], pings, rest } (rest: an unfinished block).  pos
# is the id's position: "<execution>-<pos>" by the spec, the trailing
# number of any id.
sub sse_parse {
    my ($text) = @_;
    my %s = (events => [], errors => [], pings => 0, rest => '');
    my $p = 0;

    while ((my $i = index($text, "\n\n", $p)) >= 0) {
        my $blk = substr($text, $p, $i - $p);
        $p = $i + 2;

        if ($blk eq ': ping') {
            $s{pings}++;
            next;
        }

        my %e;
        for my $line (split /\n/, $blk) {
            if ($line =~ /^(id|event|data): (.*)\z/s && !exists $e{$1}) {
                $e{$1} = $2;
            } else {
                push @{ $s{errors} }, "unexpected line "
                                      . printable($line);
            }
        }

        for my $f (qw(id event data)) {
            push @{ $s{errors} }, "no \"$f\" line in " . printable($blk)
                unless defined $e{$f};
        }

        $e{json} = eval { json_decode($e{data} // '') };
        push @{ $s{errors} }, "data that is not JSON: "
                              . printable($e{data})
            unless ref $e{json} eq 'HASH';
        $e{type} = ref $e{json} eq 'HASH' ? $e{json}{type} : undef;
        push @{ $s{errors} }, "event " . printable($e{event}) . " of type "
                              . printable($e{type})
            unless ($e{event} // '') eq ($e{type} // '');
        ($e{pos}) = ($e{id} // '') =~ /(\d+)\z/;
        push @{ $s{events} }, \%e;
    }

    $s{rest} = substr($text, $p);
    return \%s;
}

# NDJSON: the same, pos from each line's "position" member.
sub ndjson_parse {
    my ($text) = @_;
    my %s = (events => [], errors => [], pings => 0, rest => '');
    my $p = 0;

    while ((my $i = index($text, "\n", $p)) >= 0) {
        my $line = substr($text, $p, $i - $p);
        $p = $i + 1;

        if ($line eq '') {
            $s{pings}++;
            next;
        }

        my $json = eval { json_decode($line) };
        push @{ $s{errors} }, "a line that is not a JSON object: "
                              . printable($line)
            unless ref $json eq 'HASH';
        $json = {} unless ref $json eq 'HASH';
        push @{ $s{events} }, { data => $line, json => $json,
                                type => $json->{type},
                                pos => $json->{position} };
    }

    $s{rest} = substr($text, $p);
    return \%s;
}

# The events of one execution from position $from on: positions one after
# the other: SSE ids
# "<execution>-<position>", NDJSON lines that begin with "position".
sub positions_ok {
    my ($name, $events, $from, $exec, $format) = @_;
    $format //= 'sse';

    my @pos = map { $_->{pos} // '-' } @$events;

    {
        # (NDJSON has positions only by the spec)
        is("@pos", join(' ', $from .. $from + $#$events),
           "$name - positions $from.." . ($from + $#$events));
    }


    if ($format eq 'sse') {
        my @bad = grep { ($_->{id} // '') ne "$exec-" . ($_->{pos} // '') }
                  @$events;
        is(scalar @bad, 0, "$name - every SSE id is <execution>-<position>")
            or diag("execution $exec, ids: "
                    . join(' ', map { $_->{id} // '-' } @bad[0 .. 2]));
    } else {
        my @bad = grep { $_->{data} !~ /\A\{"position":[0-9]+,/ } @$events;
        is(scalar @bad, 0, "$name - every NDJSON line begins with "
                           . "\"position\"")
            or diag(printable($bad[0]{data}));
    }
}

sub exec_id_ok {
    my ($name, $id) = @_;
    like($id // '', qr/\A[0-9a-f]+\z/, "$name - an execution id");
    like($id // '', qr/\A[0-9a-f]{32}\z/,
         "$name - the execution id is 32 lowercase hex digits");
}

# A whole stream (all of its events, from position 1): the first event
# names the execution (as $header does), the last closes it with $outcome
# and counts every event.
sub whole_ok {
    my ($name, $s, $header, %o) = @_;
    my @ev = @{ $s->{events} };

    like($header // '', qr/\A[0-9a-f]+\z/, "$name - X-Perstack-Execution");
    is_deeply($s->{errors}, [], "$name - well formed");
    is($s->{rest}, '', "$name - nothing after the last event");

    my $x = @ev ? $ev[0]{json} || {} : {};
    my $end = @ev ? $ev[-1]{json} || {} : {};

    is($ev[0] && $ev[0]{type}, 'perstack.execution',
       "$name - perstack.execution first");
    is($x->{execution}, $header,
       "$name - it names the execution of X-Perstack-Execution");
    like($x->{container} // '', qr/\A[0-9a-f]{64}\z/,
         "$name - it names the container");
    is($ev[-1] && $ev[-1]{type}, 'perstack.end', "$name - perstack.end last");
    is($end->{outcome}, $o{outcome} // 'completed', "$name - outcome");
    is($end->{execution}, $header, "$name - perstack.end's execution");
    is($end->{events}, scalar @ev, "$name - perstack.end counts every event");
    like($ev[-1] ? $ev[-1]{data} : '', qr/"container_removed":true[,}]/,
         "$name - the container was removed");

    positions_ok($name, \@ev, 1, $header, $o{format});

    return ($x, $end);
}


# ---- curl ------------------------------------------------------------------

my %Curls;      # pid => 1, the curls still running

END { kill 'KILL', $_ for keys %Curls }

sub curl_cmd {
    return ('curl', '--http2', '-sS', '--no-progress-meter', '--cacert', $Crt,
            '--max-time', 60, '-i', @_);
}

# A curl that streams: its output read as it comes (-N), headers first
# (-i).  { pid, status, version, headers, body, eof, exit }.
package CurlStream {
    sub new {
        my ($class, $path, @headers) = @_;
        my @cmd = main::curl_cmd('-N', (map { ('-H', $_) } @headers),
                                 main::url($path));
        my $pid = open(my $fh, '-|', @cmd) or die "curl: $!\n";
        binmode $fh;
        $Curls{$pid} = 1;
        return bless { pid => $pid, fh => $fh, raw => '', headers => {},
                       body => undef, eof => 0 }, $class;
    }

    sub pump {
        my ($self, $timeout) = @_;
        return 0 if $self->{eof};
        return undef
            unless IO::Select->new($self->{fh})->can_read($timeout);
        my $n = sysread($self->{fh}, my $buf, 65536);
        if (!$n) {
            $self->reap;
            return 0;
        }
        if (defined $self->{body}) {
            $self->{body} .= $buf;
        } else {
            $self->{raw} .= $buf;
            $self->parse_head;
        }
        return $n;
    }

    sub parse_head {
        my ($self) = @_;
        my $i = index($self->{raw}, "\r\n\r\n");
        return if $i < 0;
        my ($line, @lines) = split /\r\n/, substr($self->{raw}, 0, $i);
        @$self{qw(version status)} = $line =~ m{^HTTP/(\S+) (\d{3})};
        for (@lines) {
            my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
            $self->{headers}{lc $k} = $v;
        }
        $self->{body} = substr($self->{raw}, $i + 4);
    }

    sub header { $_[0]{headers}{lc $_[1]} }

    sub stream {
        my ($self) = @_;
        return main::sse_parse($self->{body} // '');
    }

    sub events { @{ $_[0]->stream->{events} } }

    sub has_event {
        my ($self, $type) = @_;
        return scalar grep { ($_->{type} // '') eq $type } $self->events;
    }

    sub wait_for {
        my ($self, $cond, $timeout) = @_;
        my $deadline = Time::HiRes::time() + $timeout;
        while (1) {
            my $v = $cond->($self);
            return $v if $v;
            return 0 if $self->{eof};
            my $left = $deadline - Time::HiRes::time();
            return 0 if $left <= 0;
            $self->pump($left);
        }
    }

    sub finish {
        my ($self, $timeout) = @_;
        $self->wait_for(sub { 0 }, $timeout // 30);
        return $self->{eof};
    }

    sub reap {
        my ($self) = @_;
        $self->{eof} = 1;
        close $self->{fh};
        $self->{exit} = $? >> 8;
        delete $Curls{ $self->{pid} };
    }

    # the client goes away at once: SIGKILL, to this curl alone
    sub kill_client {
        my ($self) = @_;
        return if $self->{eof};
        kill 'KILL', $self->{pid};
        $self->reap;
    }
}

# One request through curl, to its end.
sub curl_get {
    my ($path, @headers) = @_;
    my $c = CurlStream->new($path, @headers);
    $c->finish(30);
    return $c;
}

# The execution's status (the spec's GET ...?execution=<id> with Accept:
# application/json): (HTTP status, the JSON object or undef).
sub status_of {
    my ($loc, $exec) = @_;
    my $c = curl_get("$loc?execution=$exec", 'Accept: application/json');
    return ($c->{status} // 0, eval { json_decode($c->{body} // '') });
}


# ---- nginx -----------------------------------------------------------------

# The lines of the h2 server's access log: { conn, conn_requests, protocol,
# http2, status, msec, request_time, uri }.
sub access_log {
    my $text = slurp("$Test::Nginx::Util::ServRoot/logs/h2.log") // '';
    my @l;
    for (split /\n/, $text) {
        my @f = /^(\d+) (\d+) (\S+) "([^"]*)" (\d+) ([\d.]+) ([\d.]+) "(.*)"$/
            or next;
        my %l;
        @l{qw(conn conn_requests protocol http2 status msec request_time
              uri)} = @f;
        push @l, \%l;
    }
    return @l;
}

sub wait_access_log {
    my ($n) = @_;
    return poll(10, sub { my @l = access_log(); @l >= $n ? \@l : undef })
           || [ access_log() ];
}


# ---- TEST 1: TLS and h2 ----------------------------------------------------

sub check_h2 {
    my ($block) = @_;
    my $name = $block->name;

    my $v = `$Nginx -V 2>&1`;
    like($v, qr/--with-http_ssl_module/, "$name - nginx $Version has SSL");
    like($v, qr/--with-http_v2_module/, "$name - nginx $Version has HTTP/2");

    # the configuration, as this nginx reads it: no [warn] for http2
    my $t = output_of($Nginx, '-p', "$Test::Nginx::Util::ServRoot/",
                      '-c', $Test::Nginx::Util::ConfFile, '-t');
    like($t, qr/test is successful/, "$name - nginx -t");
    unlike($t, qr/\[warn\].*http2/, "$name - no [warn] about http2 ("
           . ($HttpOn ? '"http2 on"' : '"listen ... http2"')
           . " on nginx $Version)");

    # curl: TLS checked against the certificate, h2 by ALPN
    my $c = curl_get('/run?expert=slow&query=1');
    is($c->{exit}, 0, "$name - curl exits 0");
    is($c->{version}, '2', "$name - curl: HTTP/2");
    is($c->{status}, 200, "$name - curl: 200");
    is($c->header('Content-Type'), 'text/event-stream',
       "$name - curl: text/event-stream");
    is($c->header('Cache-Control'), 'no-cache', "$name - curl: no-cache");
    my $exec = $c->header('X-Perstack-Execution');
    exec_id_ok("$name - curl", $exec);
    whole_ok("$name - curl", $c->stream, $exec);

    my ($l) = @{ wait_access_log(1) };
    $l //= {};
    is($l->{protocol}, 'HTTP/2.0', "$name - the log: HTTP/2.0");
    is($l->{http2}, 'h2', "$name - the log: \$http2 is h2 (over TLS)");
    is($l->{uri}, '/run?expert=slow&query=1', "$name - the log: the URI");

    # the test's own client, NDJSON
    my $h2 = h2_client();
    is($h2->{alpn}, 'h2', "$name - PerstackH2: h2 by ALPN");
    my $id = $h2->request(path => '/run?expert=slow&query=1',
                          headers => [Accept => 'application/x-ndjson']);
    ok($h2->wait_for(sub { $h2->stream($id)->{done} }, 30),
       "$name - PerstackH2: the stream ends");
    my $st = $h2->stream($id);
    ok($st->{end_stream}, "$name - PerstackH2: with END_STREAM");
    is($st->{status}, 200, "$name - PerstackH2: 200");
    is($st->{headers}{'content-type'}, 'application/x-ndjson',
       "$name - PerstackH2: application/x-ndjson");
    my $x2 = $st->{headers}{'x-perstack-execution'};
    exec_id_ok("$name - PerstackH2", $x2);
    isnt($x2, $exec, "$name - another execution");
    my $s = ndjson_parse($st->{data});
    whole_ok("$name - PerstackH2", $s, $x2, format => 'ndjson');

    {
        ndjson_resumed_ok($name, $h2, $x2, $s->{events});
    }

    $h2->close;
}

# The NDJSON execution $exec ended with @$events: from the record, on the
# same connection, the events after 3, then 204 after the last.
sub ndjson_resumed_ok {
    my ($name, $h2, $exec, $events) = @_;
    my $last = @$events;

    my $id = $h2->request(path => "/run?execution=$exec&after=3",
                          headers => [Accept => 'application/x-ndjson']);
    $h2->wait_for(sub { $h2->stream($id)->{done} }, 10);
    my $st = $h2->stream($id);
    is($st->{status}, 200, "$name - NDJSON resume: 200") or return;
    ok($st->{end_stream}, "$name - NDJSON resume: the stream ends");
    is($st->{headers}{'content-type'}, 'application/x-ndjson',
       "$name - NDJSON resume: application/x-ndjson");
    my $s = ndjson_parse($st->{data});
    positions_ok("$name - NDJSON resume", $s->{events}, 4, $exec, 'ndjson');
    is_deeply([ map { $_->{data} } @{ $s->{events} } ],
              [ map { $_->{data} } @$events[3 .. $last - 1] ],
              "$name - NDJSON resume: the events after 3, as they were");

    $id = $h2->request(path => "/run?execution=$exec&after=$last",
                       headers => [Accept => 'application/x-ndjson']);
    ok($h2->wait_for(sub { $h2->stream($id)->{done} }, 10),
       "$name - NDJSON resume after the end: the stream ends");
    is($h2->stream($id)->{status}, 204,
       "$name - NDJSON resume after the end: 204");
}


# ---- TEST 2: eight executions on one connection ----------------------------

sub check_multiplexed {
    my ($block) = @_;
    my $name = $block->name;
    my $n = 8;
    my $path = '/run?expert=slow&query=2';
    my $dir = make_dir('h2-out');

    # one curl, eight transfers: it waits for the first connection and
    # multiplexes the others on it (unless --parallel-immediate)
    my @cmd = curl_cmd('--parallel', '--parallel-max', $n,
                       '-w', '%{num_connects} %{http_version} '
                             . '%{response_code}\n',
                       map { ('-o', "$dir/$_", url($path)) } 1 .. $n);
    open my $fh, '-|', @cmd or die "curl: $!\n";
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    is($? >> 8, 0, "$name - curl exits 0");

    my @w = map { [ split ' ' ] } grep { /\S/ } split /\n/, $out;
    is(scalar @w, $n, "$name - $n transfers");
    my $connects = 0;
    $connects += $_->[0] for @w;
    is($connects, 1, "$name - curl connected once for the $n transfers");
    is(join(' ', map { "$_->[1]/$_->[2]" } @w), join(' ', ('2/200') x $n),
       "$name - each: HTTP/2, 200");

    my (%execs, %containers);

    for my $i (1 .. $n) {
        my $c = bless { raw => slurp("$dir/$i") // '', headers => {} },
                      'CurlStream';
        $c->parse_head;
        is($c->{status}, 200, "$name - stream $i: 200");
        my $exec = $c->header('X-Perstack-Execution') // '';
        my ($x) = whole_ok("$name - stream $i", $c->stream, $exec);
        my @sr = grep { ($_->{type} // '') eq 'streamReasoning' }
                 $c->events;
        is(scalar @sr, 2, "$name - stream $i: a streamReasoning a second, "
                          . "for 2 s");
        $execs{$exec}++;
        $containers{ $x->{container} // '' }++;
    }

    is(scalar keys %execs, $n, "$name - $n executions");
    is(scalar keys %containers, $n, "$name - $n containers");

    # nginx's view: one connection, eight requests on it, all at once
    my @l = @{ wait_access_log($n) };
    is(scalar @l, $n, "$name - $n lines in the access log");
    my %conn = map { $_->{conn} => 1 } @l;
    is(scalar keys %conn, 1, "$name - one \$connection for all")
        or diag(join ', ', keys %conn);
    my %req = map { $_->{conn_requests} => 1 } @l;
    is(scalar keys %req, $n, "$name - each its own \$connection_requests");
    is(scalar(grep { $_->{protocol} eq 'HTTP/2.0' && $_->{http2} eq 'h2'
                     && $_->{status} == 200 && $_->{uri} eq $path } @l),
       $n, "$name - all HTTP/2.0, h2, 200");

    my ($last_start) = sort { $b <=> $a }
                       map { $_->{msec} - $_->{request_time} } @l;
    my ($first_end) = sort { $a <=> $b } map { $_->{msec} } @l;
    cmp_ok($last_start, '<', $first_end,
           "$name - every request began before any ended: all in flight "
           . "at once");
}


# ---- TEST 3: resume --------------------------------------------------------

sub check_resume {
    my ($block) = @_;
    my $name = $block->name;
    my $secs = 4;

    my $c1 = CurlStream->new("/durable?expert=slow&query=$secs");
    ok($c1->wait_for(sub { $_[0]->has_event('streamReasoning') }, 20),
       "$name - the run streams") or return;

    my $exec = $c1->header('X-Perstack-Execution') // '';
    exec_id_ok($name, $exec);

    # what this client has: events 1..n (curl may have more, unread)
    my @first = $c1->events;
    my $n = scalar @first;
    my $cid = $first[0]{json}{container} // '';
    positions_ok("$name - before", \@first, 1, $exec);

    $c1->kill_client;
    like($cid, qr/\A[0-9a-f]{64}\z/, "$name - the container") or return;

    {
        resumed_ok($name, $exec, $cid, $secs, @first);
    }

    ok(defined wait_container_gone($cid, 10),
       "$name - the container is removed");
}

# The execution $exec goes on without its client, which had the events
# @first; it resumes from there.
sub resumed_ok {
    my ($name, $exec, $cid, $secs, @first) = @_;
    my $n = @first;

    # events are recorded while nobody reads them
    my $more = poll(15, sub {
        my ($st, $j) = status_of('/durable', $exec);
        return 'no status' if $st != 200 || ref $j ne 'HASH';
        return ($j->{events} // 0) > $n ? 'more' : undef;
    });
    is($more, 'more', "$name - the status: events after the client went");
    my $info = container_info($cid);
    ok($info && $info->{State}{Running},
       "$name - the container runs on without a client");

    # (a resume's other arguments do not start anything)
    my $t0 = Time::HiRes::time();
    my $c2 = curl_get('/durable?expert=slow&query=1',
                      "Last-Event-ID: $exec-$n");
    is($c2->header('X-Perstack-Execution'), $exec,
       "$name - resume: the same execution") or return;
    is($c2->{status}, 200, "$name - resume: 200") or return;
    is($c2->{exit}, 0, "$name - resume: the response ends (curl exits 0)");
    is($c2->header('Content-Type'), 'text/event-stream',
       "$name - resume: text/event-stream");
    my $s2 = $c2->stream;
    is_deeply($s2->{errors}, [], "$name - resume: well formed");
    is($s2->{rest}, '', "$name - resume: nothing after the last event");
    my @rest = @{ $s2->{events} };
    ok(@rest, "$name - resume: events") or return;
    positions_ok("$name - resume", \@rest, $n + 1, $exec);

    my $end = $rest[-1]{json} || {};
    is($rest[-1]{type}, 'perstack.end', "$name - resume: perstack.end last");
    is($end->{outcome}, 'completed', "$name - resume: completed");
    is($end->{execution}, $exec, "$name - resume: the execution");

    # both parts together: the run, each event once
    my @all = (@first, @rest);
    is($end->{events}, scalar @all,
       "$name - perstack.end counts the events of both parts");
    my @deltas = map { $_->{json}{delta} // '' }
                 grep { ($_->{type} // '') eq 'streamReasoning' } @all;
    is_deeply(\@deltas,
              [ map { "thinking, second $_ of $secs... " } 1 .. $secs ],
              "$name - every second's streamReasoning once, in order");
    is(scalar(grep { ($_->{type} // '') =~ /^perstack\.(?:execution|end)\z/ }
              @all), 2, "$name - one perstack.execution, one perstack.end");

    # the record is SSE: not to be read as NDJSON
    my $c5 = curl_get("/durable?execution=$exec&after=$n",
                      'Accept: application/x-ndjson');
    is($c5->{status}, 406, "$name - as NDJSON: 406");
    is($c5->header('Content-Type'), 'application/json',
       "$name - as NDJSON: a JSON body");

    # the client has the closing event: nothing more to send
    my $c3 = curl_get('/durable', "Last-Event-ID: $exec-" . scalar @all);
    is($c3->{status}, 204, "$name - after perstack.end: 204");
    is($c3->{body}, '', "$name - 204: no body");

    # no position: everything, as it was sent
    my $c4 = curl_get('/durable', "Last-Event-ID: $exec");
    is($c4->{status}, 200, "$name - from the start: 200");
    is_deeply([ map { $_->{data} } @{ $c4->stream->{events} } ],
              [ map { $_->{data} } @all ],
              "$name - from the start: the same events");

    is(scalar(container_creates_since($t0)), 0,
       "$name - no container was created for the resumes");
}


# ---- TEST 4: the client goes -----------------------------------------------

sub gone_ok {
    my ($name, $exec, $cid) = @_;

    like($cid, qr/\A[0-9a-f]{64}\z/, "$name - the container's id") or return;

    ok(defined wait_container_gone($cid, 10),
       "$name - the container is removed");
    my $line = qr/execution ended: client_gone\b.* execution: \Q$exec\E\b/;
    ok(wait_error_line($line, 10),
       "$name - the log: execution ended: client_gone");

    my ($st, $j) = status_of('/run', $exec);
    is($st, 200, "$name - its status");
    is(ref $j eq 'HASH' ? join(' ', map { $j->{$_} // 'null' }
                                     qw(state outcome)) : undef,
       'ended client_gone', "$name - its status: ended, client_gone");
}

sub check_client_gone {
    my ($block) = @_;
    my $name = $block->name;

    # curl is killed: the connection closes
    my $c = CurlStream->new('/run?expert=stubborn&query=x');
    ok($c->wait_for(sub { $_[0]->has_event('streamReasoning') }, 20),
       "$name - curl: the run streams");
    my $exec = $c->header('X-Perstack-Execution') // '';
    my ($x) = $c->events;
    my $cid = $x ? $x->{json}{container} // '' : '';
    like($cid, qr/\A[0-9a-f]{64}\z/, "$name - curl: the container");
    $c->kill_client;
    gone_ok("$name - curl killed", $exec, $cid);

    # RST_STREAM on one of two streams: the connection goes on
    my $h2 = h2_client();
    my $sa_id = $h2->request(path => '/run?expert=stubborn&query=x');
    my $sb_id = $h2->request(path => '/run?expert=slow&query=3');
    my $reasoning = sub { index($_[0]->stream($_[1])->{data},
                                '"type":"streamReasoning"') >= 0 };
    ok($h2->wait_for(sub { $reasoning->($h2, $sa_id)
                           && $reasoning->($h2, $sb_id) }, 20),
       "$name - both streams run");

    my $sa = sse_parse($h2->stream($sa_id)->{data});
    my $xa = $sa->{events}[0] ? $sa->{events}[0]{json} : {};
    $h2->reset($sa_id);
    gone_ok("$name - RST_STREAM", $xa->{execution} // '',
            $xa->{container} // '');

    ok($h2->wait_for(sub { $h2->stream($sb_id)->{done} }, 20),
       "$name - the other stream ends");
    my $sb = $h2->stream($sb_id);
    ok($sb->{end_stream} && !defined $sb->{reset},
       "$name - the other stream: END_STREAM, not reset");
    whole_ok("$name - the other stream", sse_parse($sb->{data}),
             $sb->{headers}{'x-perstack-execution'});
    ok(!$h2->{eof} && !$h2->{goaway}, "$name - the connection is open");

    my $s = $h2->request(path => '/static');
    ok($h2->wait_for(sub { $h2->stream($s)->{done} }, 5)
       && $h2->stream($s)->{data} eq "static\n",
       "$name - the same connection serves another request");
    $h2->close;
}


# ---- TEST 5: backpressure per stream ---------------------------------------

my $FloodEvents = 300000;     # about 70 MB: never all while held back
my $SideEvents = 3000;        # about 700 kB: ten windows and more
my $LimitKB = 32 * 1024;

sub check_backpressure {
    my ($block) = @_;
    my $name = $block->name;

    my $pid = worker_pid();
    my $base = vmrss_kb($pid) // 0;

    # the flood's window is not given back but by the test
    my $h2 = h2_client(window => 65535);
    my $slow = $h2->request(path => "/flood?expert=flood&query=$FloodEvents",
                         manual => 1);
    ok($h2->wait_for(sub { $h2->window_left($slow) == 0 }, 20),
       "$name - the flood fills its stream's window");
    my $sa = sse_parse($h2->stream($slow)->{data});
    my $xa = $sa->{events}[0] ? $sa->{events}[0]{json} : {};
    my $cid = $xa->{container} // '';
    like($cid, qr/\A[0-9a-f]{64}\z/, "$name - the flood's container")
        or return;

    # a second flood on the same connection, read as fast as it comes,
    # while the first is read slowly: 512 bytes every 0.1 s, for at least
    # 5 s (where the whole flood would long be through, were it not held)
    my $fast = $h2->request(path => "/flood?expert=flood&query=$SideEvents");
    my $t0 = Time::HiRes::time();
    my ($next_read, $next_sample) = (0, 0);
    my @rss;

    while (Time::HiRes::time() < $t0 + 40) {
        my $now = Time::HiRes::time();
        if ($now >= $next_sample) {
            push @rss, vmrss_kb($pid) // 0;
            $next_sample = $now + 0.5;
        }
        if ($now >= $next_read) {
            $h2->credit($slow, 512);
            $next_read = $now + 0.1;
        }
        $h2->pump(0.05);
        last if $h2->{eof}
                || ($h2->stream($fast)->{done} && $now > $t0 + 5);
    }
    push @rss, vmrss_kb($pid) // 0;

    my $sb = $h2->stream($fast);
    ok($sb->{done} && $sb->{end_stream}, "$name - the second flood ends");
    my $s = sse_parse($sb->{data});
    whole_ok("$name - the second flood", $s,
             $sb->{headers}{'x-perstack-execution'});
    is(scalar(grep { ($_->{type} // '') eq 'streamRunResult' }
              @{ $s->{events} }),
       $SideEvents, "$name - all $SideEvents streamRunResult events");

    my $st = $h2->stream($slow);
    ok(!$st->{done}, "$name - the first flood goes on");
    cmp_ok($st->{received}, '<=', $st->{credited},
           "$name - nginx kept to the stream's window");
    cmp_ok($st->{received}, '<', 2 * 1024 * 1024,
           "$name - the first flood was read slowly ($st->{received} "
           . "bytes)");
    is(index($st->{data}, '"type":"perstack.end"'), -1,
       "$name - no perstack.end for the first flood");
    my $info = container_info($cid);
    ok($info && $info->{State}{Running},
       "$name - its container is held back, still running");

    my ($max) = sort { $b <=> $a } @rss;
    diag(sprintf "%s: RSS %d kB before, samples %s kB; the slow stream "
                 . "got %d bytes", $name, $base, join(' ', @rss),
                 $st->{received})
        if $ENV{TEST_VERBOSE};
    cmp_ok(scalar @rss, '>=', 10, "$name - RSS sampled");
    SKIP: {
        # (AddressSanitizer's quarantine: see t/007)
        skip "$name - RSS under AddressSanitizer", 1
            if ($ENV{TEST_NGINX_PERSTACK_VARIANT} // '') eq 'asan';
        cmp_ok($max - $base, '<', $LimitKB,
               "$name - the worker's RSS grew by less than 32 MB ("
               . ($max - $base) . " kB)");
    }

    # the slow reader gives up its stream: the flood is stopped
    $h2->reset($slow);
    ok(defined wait_container_gone($cid, 10),
       "$name - the container is removed after RST_STREAM");
    my $r = $h2->request(path => '/static');
    ok($h2->wait_for(sub { $h2->stream($r)->{done} }, 5)
       && $h2->stream($r)->{data} eq "static\n",
       "$name - the connection serves another request");
    $h2->close;

    positions_ok("$name - the first flood's first window",
                 $sa->{events}, 1, $xa->{execution} // '');
}

run_tests();

__DATA__

=== TEST 1: TLS and HTTP/2 on this nginx: a whole stream through curl and PerstackH2
--- check: check_h2
--- timeout: 60



=== TEST 2: eight executions multiplexed on one connection
--- check: check_multiplexed
--- timeout: 90



=== TEST 3: resume over h2: the rest exactly once, then 204, then the whole record
--- check: check_resume
--- timeout: 90



=== TEST 4: the client goes (detach timeout 0): curl killed, RST_STREAM on one stream
--- check: check_client_gone
--- timeout: 90



=== TEST 5: backpressure per stream: a held-back flood beside a whole one
--- check: check_backpressure
--- timeout: 90
