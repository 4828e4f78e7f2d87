# A real browser's EventSource and a durable execution (issue #12): a proxy
# in front of nginx cuts a silent stream, the browser reconnects with
# Last-Event-ID, and it gets every event of the one execution once and in
# order, then a 204 that stops it.
#
# One nginx, two servers on loopback:
#   - the backend (Test::Nginx's own server): /run, the module's location,
#     with perstack_detach_timeout 60s (the execution outlives its
#     connection) and keep-alives every 30 s, so that nothing crosses a
#     silence of the run; its access log (logs/backend.log) has each
#     request's Last-Event-ID, status and X-Perstack-Execution;
#   - the front ($TEST_NGINX_FRONT_PORT): proxies /run to the backend with
#     proxy_read_timeout 5s (proxy_buffering off, HTTP/1.1), as a load
#     balancer does, and serves the page t/browser/eventsource.html.
#
# Headless Chromium (t/browser/eventsource.mjs: playwright-core, Debian's
# /usr/bin/chromium) loads the page from the front and opens a plain
# EventSource('/run?expert=quiet&query=3:6'): the demo's quiet run prints
# three events, each after 6 s of silence, so the front times the stream
# out while the container runs on.
#
#   TEST 1: the browser and the page against a fixed stream served by the
#           front itself, no execution: the browser reconnects when a
#           stream ends, with the Last-Event-ID it last got, and stops for
#           good on a 204.  What TEST 2 relies on, shown without the module.
#   TEST 2: the execution through the front: every event arrives once, in
#           order (ids <execution>-1 .. <execution>-N, one execution),
#           ending with perstack.end (completed); the front cut the stream
#           and the browser reconnected; one container was created; each
#           reconnection resumed from the last event the browser had; the
#           last one got 204 and the EventSource is CLOSED.
#   TEST 3: many EventSources in one page over TLS and HTTP/2 (a server of
#           this nginx with a certificate made for the run): every stream
#           its whole execution, once, then a 204; the page and every
#           request over h2, and all of them on one connection (the
#           server's access log: one $connection).
#
# Skipped (with the reason) only when /usr/bin/chromium is missing outside
# CI; in CI (CI set) it runs, and fails if the browser is missing.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;

our ($Chromium, $InCI);

BEGIN {
    $Chromium = '/usr/bin/chromium';
    $InCI = ($ENV{CI} // '') !~ /\A(?:|0|false|no)\z/i;

    if (!-x $Chromium && !$InCI) {
        Test::More::plan(skip_all => "$Chromium is not installed (Debian's "
                         . "chromium: scripts/setup.sh installs it)");
    }
}

use Perstack;
use IO::Select ();
use Time::HiRes ();

our $BrowserDir = "$FindBin::Bin/browser";
our $Driver = "$BrowserDir/eventsource.mjs";

our $RunId = unique_name('browser');
our $RunLabel = "test.perstack.browser-run=$RunId";

our $FrontPort = Perstack::free_port();
$FrontPort = Perstack::free_port()
    while $FrontPort == $Test::Nginx::Util::ServerPort;

$ENV{TEST_NGINX_FRONT_PORT} = $FrontPort;

# TEST 3's server: TLS and HTTP/2 ("http2 on" from nginx 1.25.1, the
# listen parameter before), a certificate for 127.0.0.1 made for the run
our $H2Port = Perstack::free_port();
$H2Port = Perstack::free_port()
    while $H2Port == $Test::Nginx::Util::ServerPort || $H2Port == $FrontPort;

our $H2Dir = make_dir('browser-tls');
{
    open my $stderr, '>&', \*STDERR or die "dup: $!\n";
    open STDERR, '>', '/dev/null' or die "/dev/null: $!\n";
    my $rc = system('openssl', 'req', '-x509', '-newkey', 'ec',
                    '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
                    '-keyout', "$H2Dir/server.key",
                    '-out', "$H2Dir/server.crt", '-days', '2',
                    '-subj', '/CN=localhost',
                    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
    open STDERR, '>&', $stderr or die "dup: $!\n";
    die "openssl cannot make a certificate in $H2Dir\n" if $rc != 0;
}

{
    my $v = `$ENV{TEST_NGINX_BINARY} -v 2>&1` =~ m{nginx/(\d+)\.(\d+)\.(\d+)}
            ? sprintf('%03d%03d%03d', $1, $2, $3) : '000000000';
    $ENV{TEST_NGINX_H2_LISTEN} = $v ge '001025001'
        ? "listen 127.0.0.1:$H2Port ssl; http2 on;"
        : "listen 127.0.0.1:$H2Port ssl http2;";
}

$ENV{TEST_NGINX_H2_DIR} = $H2Dir;

# the demo run's event types (TEST 3)
our @DemoTypes = qw(
    perstack.execution perstack.end perstack.stdout perstack.stderr
    initializeRuntime skillConnected startRun startGeneration callTools
    attemptCompletion startStreamingRunResult streamRunResult
    completeStreamingRunResult completeRun skillDisconnected message
);
our $H2Streams = 8;
$ENV{TEST_NGINX_BROWSER_DIR} = $BrowserDir;
$ENV{TEST_NGINX_BROWSER_RUN} = $RunId;

# the demo's quiet run: N events, each after S seconds of silence; S is
# longer than the front's read timeout (5 s)
our ($QuietN, $QuietS) = (3, 6);

# Every type the run can send (the module's and those of the demo's quiet
# run, demo/README.md), and "message" for an event without "event:": an
# EventSource hands an event only to the listeners of its type, so a type
# left out here would show as a missing position.
our @Types = qw(
    perstack.execution perstack.end perstack.stdout perstack.stderr
    perstack.daemon perstack.invalid perstack.truncated
    initializeRuntime skillConnected startRun startStreamingReasoning
    streamReasoning completeStreamingReasoning completeRun skillDisconnected
    message
);

my $http_config = <<'_EOC_';
    log_format backend escape=json
        '{"method":"$request_method","uri":"$request_uri","status":"$status",'
        '"last_event_id":"$http_last_event_id",'
        '"execution":"$sent_http_x_perstack_execution",'
        '"msec":"$msec","request_time":"$request_time"}';
    log_format h2 escape=json
        '{"method":"$request_method","uri":"$request_uri","status":"$status",'
        '"connection":"$connection","protocol":"$server_protocol",'
        '"last_event_id":"$http_last_event_id",'
        '"msec":"$msec","request_time":"$request_time"}';

    # TEST 3: the page and its streams over TLS and HTTP/2
    server {
        $TEST_NGINX_H2_LISTEN
        server_name h2;
        ssl_certificate $TEST_NGINX_H2_DIR/server.crt;
        ssl_certificate_key $TEST_NGINX_H2_DIR/server.key;
        access_log logs/h2.log h2;

        location = /eventsource.html {
            root $TEST_NGINX_BROWSER_DIR;
        }

        location = /run {
            perstack_execute;
            perstack_image $TEST_NGINX_PERSTACK_IMAGE;
            perstack_label test.perstack.browser-run $TEST_NGINX_BROWSER_RUN;
            perstack_record_path logs/perstack_records;
        }
    }

    log_format front escape=json
        '{"method":"$request_method","uri":"$request_uri","status":"$status",'
        '"last_event_id":"$http_last_event_id",'
        '"upstream_status":"$upstream_status",'
        '"msec":"$msec","request_time":"$request_time"}';

    # the front: what a load balancer with a 5 s read timeout does to a
    # stream that stays silent for longer
    server {
        listen 127.0.0.1:$TEST_NGINX_FRONT_PORT;
        server_name front;
        access_log logs/front.log front;

        location = /run {
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT;
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_read_timeout 5s;
            proxy_set_header Host $http_host;
        }

        # the page the browser opens its streams from: same origin
        location = /eventsource.html {
            root $TEST_NGINX_BROWSER_DIR;
        }

        # a fixed stream in two parts, then 204 (TEST 1)
        location = /fixed {
            default_type text/event-stream;

            if ($http_last_event_id = "fixed-3") {
                return 204;
            }

            if ($http_last_event_id = "fixed-2") {
                return 200 "id: fixed-3\nevent: two\ndata: {\"n\":3}\n\n";
            }

            return 200 "retry: 500\nid: fixed-1\nevent: one\ndata: {\"n\":1}\n\n: a comment\n\nid: fixed-2\nevent: two\ndata: {\"n\":2}\n\n";
        }
    }
_EOC_

my $config = <<'_EOC_';
    location = /static {
        return 200 "static\n";
    }
_EOC_

# "--- run_location": the backend has the module's /run
my $run_location = <<'_EOC_';
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_label test.perstack.browser-run $TEST_NGINX_BROWSER_RUN;
        perstack_detach_timeout 60s;
        # no keep-alive within a silence: the front's read timeout (5 s)
        # cuts the stream
        perstack_ping_interval 30s;
        # (under logs/, which Test::Nginx empties between blocks)
        perstack_record_path logs/perstack_records;
        access_log logs/backend.log backend;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('http_config', $http_config)
        unless defined $block->http_config;

    if (!defined $block->config) {
        $block->set_value('config', $config
                          . (defined $block->run_location ? $run_location
                                                          : ''));
    }

    if (!defined $block->request) {
        $block->set_value('request', "GET /static\n");
        $block->set_value('response_body', "static\n");
    }
});


# ---- helpers ---------------------------------------------------------------

# the page browse() opens, if not the front's
our $Page;

# Runs the driver: the page from the front, the streams, a listener for
# each of the event types.  Returns its JSON document, or undef (after a
# failed test) when it failed.
sub browse {
    my ($name, $limit, $types, @streams) = @_;

    Test::More::ok(-x $Chromium, "$name - $Chromium is installed "
                   . "(scripts/setup.sh)")
        or return undef;
    Test::More::ok(-d "$BrowserDir/node_modules/playwright-core",
                   "$name - playwright-core is installed in t/browser "
                   . "(scripts/setup.sh)")
        or return undef;

    # (timeout(1) only in case the driver's own time limit fails)
    my @cmd = ('timeout', '-k', '5', $limit + 30, 'node', $Driver,
               '--page', $Page // "http://127.0.0.1:$FrontPort/eventsource.html",
               (map { ('--stream', $_) } @streams),
               '--event', join(',', @$types),
               '--time-limit', $limit);

    open my $fh, '-|', @cmd or die "cannot run node: $!\n";
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    my $status = $?;

    Test::More::is($status, 0, "$name - the driver ran (exit 0)")
        or Test::More::diag("driver: @cmd");

    my $r = eval { json_decode($out) };

    Test::More::ok(ref $r eq 'HASH' && ref $r->{streams} eq 'ARRAY'
                   && @{ $r->{streams} } == @streams,
                   "$name - the driver printed its JSON document")
        or do {
            Test::More::diag("output: " . printable($out) . " $@");
            return undef;
        };

    Test::More::is($r->{page}{status}, 200, "$name - the page loaded");
    Test::More::ok(!$r->{timedOut}, "$name - every stream was done before "
                   . "the time limit ($limit s)");
    Test::More::is_deeply($r->{pageErrors}, [], "$name - no error in the page");

    return $r;
}

# A stream's log in short: "open", "error:<readyState>", "event:<id>".
sub log_words {
    my ($s) = @_;
    return [ map {
          $_->{what} eq 'event' ? "event:" . ($_->{lastEventId} // '')
        : $_->{what} eq 'error' ? "error:$_->{readyState}"
        : $_->{what}
    } @{ $s->{log} } ];
}

# The requests the browser made for $path, as Chromium's network stack saw
# them, in order: { lastEventId, status, failed, ... }.
sub browser_requests {
    my ($r, $path) = @_;
    return grep { ($_->{url} // '') =~ m{\Ahttps?://[^/]+\Q$path\E(?:\?|\z)} }
           @{ $r->{requests} };
}

# The GET lines of an access log (logs/$file) for $path that started at
# $t0 or later, in the order the requests started: { last_event_id,
# status, execution, start, ... }.
sub log_requests {
    my ($file, $path, $t0) = @_;

    open my $fh, '<', "$Test::Nginx::Util::ServRoot/logs/$file" or return ();
    my @l;

    while (my $line = <$fh>) {
        next unless $line =~ /\S/;
        my $e = json_decode($line);
        next unless $e->{method} eq 'GET'
                    && $e->{uri} =~ m{\A\Q$path\E(?:\?|\z)};
        $e->{start} = $e->{msec} - $e->{request_time};
        push @l, $e if $e->{start} >= $t0 - 0.001;
    }

    close $fh;

    return sort { $a->{start} <=> $b->{start} } @l;
}

# Docker's events, as they come, of the containers created with this
# run's label from $since on: a watch (curl on the Engine API's /events,
# which streams) started before the browser opens its stream.  The
# engine keeps only its last 256 events for a later look, which other
# tests on the same engine may overwrite while the browser runs.
sub watch_creates {
    my ($since) = @_;

    my $filters = json_encode({ type => ['container'], event => ['create'],
                                label => [$RunLabel] });
    my $pid = open my $fh, '-|', 'curl', '-sSN', '--unix-socket',
                   $Perstack::DockerSock, '-G',
                   '--data-urlencode', "filters=$filters",
                   '--data-urlencode',
                   'since=' . PerstackFlow::docker_time($since),
                   'http://localhost/events'
        or die "cannot run curl: $!\n";

    return { pid => $pid, fh => $fh };
}

# The events the watch got by now (what it was sent long ago is there to
# read), then the watch is stopped.
sub watched_creates {
    my ($w) = @_;
    my $sel = IO::Select->new($w->{fh});
    my $buf = '';

    while ($sel->can_read(0)) {
        my $n = sysread $w->{fh}, my $b, 65536;
        last unless $n;
        $buf .= $b;
    }

    kill 'TERM', $w->{pid};
    close $w->{fh};

    return map { json_decode($_) } grep { /\S/ } split /\n/, $buf;
}

# Waits (bounded) until logs/$file has $n such requests; returns them.
sub wait_log_requests {
    my ($file, $path, $t0, $n) = @_;
    my @l;
    poll(10, sub { @l = log_requests($file, $path, $t0); @l >= $n });
    return @l;
}


# ---- TEST 1: a fixed stream ------------------------------------------------

sub fixed_stream {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    my $r = browse($name, 30, [qw(one two)], '/fixed') or return;
    my $s = $r->{streams}[0];

    Test::More::ok($s->{done} && !$s->{stopped} && $s->{readyState} == 2,
                   "$name - the EventSource stopped by itself: CLOSED")
        or Test::More::diag(json_encode($s));

    # as the front's configuration serves it: two events, the end of the
    # stream (the browser reconnects: "error" with CONNECTING), the third
    # event, the end again, then the 204 (CLOSED)
    Test::More::is_deeply(log_words($s),
        [qw(open event:fixed-1 event:fixed-2 error:0
            open event:fixed-3 error:0 error:2)],
        "$name - opens, events and errors in order")
        or Test::More::diag(json_encode($s->{log}));

    Test::More::is_deeply(
        [ map { [ $_->{type}, $_->{lastEventId}, $_->{data} ] }
          @{ $s->{events} } ],
        [ [ 'one', 'fixed-1', '{"n":1}' ], [ 'two', 'fixed-2', '{"n":2}' ],
          [ 'two', 'fixed-3', '{"n":3}' ] ],
        "$name - each event with its type, id and data");

    my @b = browser_requests($r, '/fixed');
    Test::More::is_deeply(
        [ map { [ $_->{lastEventId}, $_->{status} ] } @b ],
        [ [ undef, 200 ], [ 'fixed-2', 200 ], [ 'fixed-3', 204 ] ],
        "$name - the browser's requests: Last-Event-ID and status")
        or Test::More::diag(json_encode(\@b));

    my @f = wait_log_requests('front.log', '/fixed', $t0, 3);
    Test::More::is_deeply(
        [ map { [ $_->{last_event_id}, $_->{status} ] } @f ],
        [ [ '', 200 ], [ 'fixed-2', 200 ], [ 'fixed-3', 204 ] ],
        "$name - the front's access log: the same three requests")
        or Test::More::diag(json_encode(\@f));

    Test::More::is($r->{page}{protocol}, 'http/1.1',
                   "$name - the page came over HTTP/1.1");
}


# ---- TEST 2: an execution through the front -------------------------------

sub browser_run {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    my $watch = watch_creates($t0);
    my $r = browse($name, 90, \@Types,
                   "/run?expert=quiet&query=$QuietN:$QuietS");
    my @created = watched_creates($watch);

    return unless $r;

    my $s = $r->{streams}[0];
    my @ev = @{ $s->{events} };

    Test::More::ok(@ev, "$name - events arrived")
        or Test::More::diag("the browser saw: " . json_encode($s->{log})
                            . "\nrequests: " . json_encode($r->{requests}));

    # -- every event once, in order, of one execution

    my (@p, %execs, @pos, %seen);

    for my $e (@ev) {
        my $id = $e->{lastEventId} // '';
        my ($x, $n) = $id =~ /\A([0-9a-f]{32})-([0-9]+)\z/;

        if (!defined $x) {
            push @p, "a $e->{type} event has the id " . printable($id);
            next;
        }

        $execs{$x}++;
        push @pos, $n;
        push @p, "position $n came again (a $e->{type})" if $seen{$n}++;

        my $j = eval { json_decode($e->{data}) };
        push @p, "event $id: its data is not a JSON object: "
                 . printable($e->{data})
            unless ref $j eq 'HASH';
        push @p, "event $id: event name $e->{type}, data type "
                 . printable(ref $j eq 'HASH' ? $j->{type} : undef)
            unless ref $j eq 'HASH' && ($j->{type} // '') eq $e->{type};
    }

    Test::More::is_deeply(\@p, [], "$name - every event: an id "
                          . "<execution>-<position>, its type and its data")
        or Test::More::diag(join "\n", @p);

    Test::More::is(scalar keys %execs, 1, "$name - one execution id")
        or Test::More::diag("ids: " . join ' ', map { $_->{lastEventId} }
                                                @ev);

    my ($xid) = keys %execs;
    $xid //= '';

    Test::More::is_deeply(\@pos, [ 1 .. scalar @pos ],
                          "$name - positions 1..N in order, each once")
        or Test::More::diag("positions: @pos");

    my $first = @ev ? eval { json_decode($ev[0]{data}) } || {} : {};
    my $last = @ev ? eval { json_decode($ev[-1]{data}) } || {} : {};

    Test::More::is($ev[0]{type}, 'perstack.execution',
                   "$name - the first event is perstack.execution");
    Test::More::is($first->{execution}, $xid,
                   "$name - perstack.execution names the execution of the ids");
    Test::More::is($ev[-1]{type}, 'perstack.end',
                   "$name - the last event is perstack.end");
    Test::More::is($last->{outcome}, 'completed',
                   "$name - perstack.end: outcome completed");
    Test::More::is($last->{execution}, $xid,
                   "$name - perstack.end names the execution");
    Test::More::is($last->{events}, scalar @pos,
                   "$name - perstack.end counts the events the browser got");

    my @reasoning = grep { $_->{type} eq 'streamReasoning' } @ev;
    Test::More::is(scalar @reasoning, $QuietN,
                   "$name - the run's $QuietN streamReasoning events");

    # -- the front cut the stream, the browser reconnected

    Test::More::cmp_ok($s->{opens}, '>', 1,
                       "$name - the browser reconnected (more than one open)")
        or Test::More::diag(json_encode(log_words($s)));

    # a connection lost before perstack.end came: the browser's "error"
    # with CONNECTING before the last event
    my @words = @{ log_words($s) };
    my $end_at = (grep { $words[$_] eq "event:$xid-" . scalar @pos }
                  0 .. $#words)[0] // scalar @words;
    Test::More::ok((grep { $_ eq 'error:0' } @words[0 .. $end_at - 1]),
                   "$name - the stream was lost while the run went on")
        or Test::More::diag("@words");

    my @timeouts = error_lines(
        qr/upstream timed out .* while reading upstream/);
    Test::More::ok(scalar @timeouts,
                   "$name - the front timed the stream out (its error log)")
        or Test::More::diag(error_log_text());

    # -- one container

    Test::More::is(scalar @created, 1, "$name - one container was created")
        or Test::More::diag(json_encode([ map { $_->{Actor} } @created ]));
    Test::More::is($created[0] && $created[0]{Actor}{ID}, $first->{container},
                   "$name - it is the container perstack.execution names");

    # -- what the backend was asked: one request without Last-Event-ID
    # (the one that started the execution), each reconnection with the
    # last id the browser had, all of them 200 with the same execution,
    # and last a 204 to the id of perstack.end

    my @want;    # [ Last-Event-ID, status ] of each request, by the browser
    my $lei = '';
    for my $w (@words) {
        if ($w eq 'open') {
            push @want, [ $lei, 200 ];
        } elsif ($w =~ /\Aevent:(.*)\z/s) {
            $lei = $1;
        }
    }
    push @want, [ $lei, 204 ];

    my @b = wait_log_requests('backend.log', '/run', $t0, scalar @want);

    Test::More::is_deeply([ map { [ $_->{last_event_id}, $_->{status} ] } @b ],
                          \@want,
                          "$name - the backend's requests: one without "
                          . "Last-Event-ID, then each with the last id the "
                          . "browser had; last a 204")
        or Test::More::diag("backend: " . json_encode(\@b) . "\nbrowser: "
                            . json_encode(\@words));

    my @new = grep { $_->{last_event_id} eq '' } @b;
    Test::More::is(scalar @new, 1, "$name - one request started an execution");

    my @other = grep { $_->{status} eq '200' && $_->{execution} ne $xid } @b;
    Test::More::is(scalar @other, 0, "$name - every stream was of the one "
                   . "execution (X-Perstack-Execution)")
        or Test::More::diag(json_encode(\@other));

    # -- the browser stopped after the end

    Test::More::ok($s->{done} && !$s->{stopped} && $s->{readyState} == 2,
                   "$name - the EventSource stopped by itself: CLOSED")
        or Test::More::diag(json_encode($s));

    my @br = browser_requests($r, '/run');
    Test::More::is($br[-1] && $br[-1]{status}, 204,
                   "$name - the browser's last request got 204")
        or Test::More::diag(json_encode(\@br));
    Test::More::is($br[-1] && $br[-1]{lastEventId}, "$xid-" . scalar @pos,
                   "$name - with the id of perstack.end");
}


# ---- TEST 3: many EventSources over HTTP/2 ----------------------------------

sub h2_page {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    local $Page = "https://127.0.0.1:$H2Port/eventsource.html";

    my @paths = map { "/run?expert=demo&query=stream+$_" } 1 .. $H2Streams;
    my $r = browse($name, 90, \@DemoTypes, @paths) or return;

    Test::More::is($r->{page}{protocol}, 'h2',
                   "$name - the page came over HTTP/2");

    my (%execs, @p);

    for my $i (0 .. $#paths) {
        my $s = $r->{streams}[$i];
        my @ev = @{ $s->{events} };
        my @ids = map { $_->{lastEventId} // '' } @ev;
        my %x = map { /\A([0-9a-f]{32})-[0-9]+\z/ ? ($1 => 1) : ('bad' => 1) }
                @ids;
        my ($xid) = keys %x;
        my @pos = map { /-([0-9]+)\z/ ? $1 : 0 } @ids;
        my $last = @ev ? eval { json_decode($ev[-1]{data}) } || {} : {};

        push @p, "stream $i: ids of " . join(',', keys %x) if keys %x != 1;
        push @p, "stream $i: positions @pos"
            unless "@pos" eq join ' ', 1 .. scalar @pos;
        push @p, "stream $i: the last event is " . ($ev[-1]{type} // 'none')
                 . ", outcome " . ($last->{outcome} // 'none')
            unless @ev && $ev[-1]{type} eq 'perstack.end'
                   && ($last->{outcome} // '') eq 'completed';
        push @p, "stream $i: not CLOSED by itself"
            unless $s->{done} && !$s->{stopped} && $s->{readyState} == 2;

        my @b = browser_requests($r, $paths[$i]);
        push @p, "stream $i: requests "
                 . json_encode([ map { [ $_->{status}, $_->{protocol} ] }
                                 @b ])
            unless @b == 2 && ($b[0]{status} // 0) == 200
                   && ($b[1]{status} // 0) == 204
                   && !grep { ($_->{protocol} // '') ne 'h2' } @b;

        $execs{$xid // ''}++;
    }

    Test::More::is_deeply(\@p, [], "$name - each of the $H2Streams "
                          . "EventSources: its whole execution once, then "
                          . "204 and CLOSED, over h2")
        or Test::More::diag(join "\n", @p);

    Test::More::is(scalar keys %execs, $H2Streams,
                   "$name - $H2Streams executions");

    # the server's view: every request on one connection, over HTTP/2
    my @l = wait_log_requests('h2.log', '/run', $t0, 2 * $H2Streams);
    Test::More::is(scalar @l, 2 * $H2Streams,
                   "$name - the server logged each stream's two requests");
    my %conns = map { $_->{connection} => 1 } @l;
    Test::More::is(scalar keys %conns, 1, "$name - all on one connection")
        or Test::More::diag(json_encode(\@l));
    Test::More::is_deeply([ grep { $_->{protocol} ne 'HTTP/2.0' } @l ], [],
                          "$name - all over HTTP/2.0");
}


run_tests();

__DATA__

=== TEST 1: the browser against a fixed stream: reconnects with Last-Event-ID, stops at 204
--- check: fixed_stream



=== TEST 2: a quiet run through a front that cuts silences: every event once, in order, one container, a 204 at the end
--- run_location: on
--- check: browser_run



=== TEST 3: many EventSources in one page over TLS and HTTP/2, one connection
--- check: h2_page
--- timeout: 150
