# Docker daemon faults (issue #5, part 3): the module talks to the engine
# through t/lib/FaultProxy.pm, a proxy in front of the real socket that
# goes down, comes back, answers errors or garbage, closes, cuts or hangs
# on demand.  Whatever the fault:
#
#   - the client learns how it ended: before the stream started, an HTTP
#     status with a JSON body (502 docker_unavailable or docker_error,
#     naming the call that failed and the engine's status, never the
#     engine's words or its socket: those are in the error log, escaped);
#     after, a closing perstack.end event (outcome "error" and a message);
#   - the worker does not hang: /static answers while the fault lasts;
#   - once the engine is back, executions work again, same nginx;
#   - no container of this run is left in the real engine: those the
#     module could not remove are removed by its reaper once the engine
#     answers again (a failed removal brings the reaper back after 1 s,
#     then 2, 4, ... 30 s: polled for at most 40 s).
#
# The cases:
#    1  engine down at request time (ping, then container create)
#    2  container create answers 500
#    3  container start answers 500: the created container is removed
#    4  container create answers garbage (201, then 200)
#    5  the connection closes without an answer (ping, create, attach)
#    6  a slow engine (create delayed 3 s): the run completes, /static
#       answers meanwhile
#    7  a hanging create, the client goes away; the engine then goes down
#    8  a hanging create, the client waits; the engine then goes down
#    9  a create that the engine carries out after the client went away
#   10  the engine goes down mid-stream
#   11  the engine restarts mid-stream (stop, then at once start)
#   12  the output stream cut inside a frame (the fragment of the cut
#       frame is not passed on)
#   13  the output stream cut at a frame boundary (10 s grace)
#   14  container removal answers 500: the reaper removes it later
#   15  the engine hangs after the create: on the attach (the client
#       should get a 502), on the wait of a run that completed (the 10 s
#       grace ends it) and of a run stopped by perstack_timeout (the
#       closing event should come)
#   16  container create answers 201 with an empty body (which was read
#       from a buffer nothing had written)
#
# The module waits at most perstack_docker_timeout (60 s) for a container
# create, attach or start (10 s for a ping): cases 7 and 8 end a hanging
# create by stopping the engine rather than waiting for that; case 15's
# hanging attach is in a location with perstack_docker_timeout 5s.
#
# Every container of this file has the label test.faults.run=<unique to
# this run>: only those count, and the END block removes any left.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;
use Perstack;
use FaultProxy;
use Time::HiRes ();

master_on();
workers(1);

our $RunId = unique_name('faults');
our $RunLabel = "test.faults.run=$RunId";

# once the engine is fine again, a run completes (run_ok)
our $OkRun = '/run?expert=demo&query=hello+again';
$ENV{TEST_NGINX_FAULTS_RUN} = $RunId;

# not in the server root: Test::Nginx empties and removes it between blocks
our $ProxyDir = make_dir('proxy');
our $ProxySock = "$ProxyDir/docker.sock";
$ENV{TEST_NGINX_FAULTS_SOCK} = $ProxySock;

our $Proxy = FaultProxy->start(listen => $ProxySock,
                               upstream => $Perstack::DockerSock);

END {
    local $?;
    $Proxy->stop if $Proxy;
    remove_container($_->{Id})
        for eval { label_containers($RunLabel) };
}

my $config = <<'_EOC_';
    perstack_docker unix:$TEST_NGINX_FAULTS_SOCK;
    perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    perstack_label test.faults.run $TEST_NGINX_FAULTS_RUN;
    perstack_env PERSTACK_DEMO_DELAY_MS 0;

    location = /run {
        perstack_execute;
    }

    location = /timeout {
        perstack_execute;
        perstack_timeout 2s;
        perstack_stop_timeout 1s;
    }

    location = /run-short {
        perstack_execute;
        perstack_docker_timeout 5s;
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


# ---- helpers ----------------------------------------------------------

# The module's own lines of this block's log, for the record.
sub note_log {
    my ($name) = @_;
    Test::More::note("$name - error.log: $_")
        for map { s/^\S+ \S+ //r } error_lines(qr/perstack: /);
}

# A case starts with the engine up and no rules; returns a mark in the
# proxy's log.
sub begin_case {
    $Proxy->restart;
    $Proxy->rules();
    return log_mark();
}

sub log_mark {
    return scalar(my @l = $Proxy->log_lines);
}

sub log_since {
    my ($mark) = @_;
    my @l = $Proxy->log_lines;
    return @l[$mark .. $#l];
}

# The proxy's log has (or gets, within $timeout s) $n lines matching $re
# since $mark.
sub proxy_saw {
    my ($name, $mark, $re, $what, $n, $timeout) = @_;
    $n //= 1;
    my $ok = poll($timeout // 10,
                  sub { (grep { /$re/ } log_since($mark)) >= $n });
    ok($ok, "$name - the engine's side: $what")
        or diag("proxy log: " . join ' | ', log_since($mark));
    return $ok;
}

sub run_containers {
    return [ label_containers($RunLabel) ];
}

sub no_run_container_left {
    my ($name, $timeout, $what) = @_;
    my $left;
    poll($timeout, sub { $left = run_containers(); !@$left });
    is(scalar @$left, 0, "$name - no container of this run is left"
                         . ($what ? " ($what)" : ''))
        or diag("left: " . container_names($left));
}

sub creates_since {
    my ($t0) = @_;
    return label_creates($t0 - 0.01, $RunLabel);
}

# A pre-stream error with the JSON body; returns the object.
sub check_json_502 {
    my ($name, $c, $error, $message_re) = @_;
    my $obj = check_error($name, $c, 502, $error) || {};
    like($obj->{message} // '', $message_re, "$name - the message")
        or diag("message: " . printable($obj->{message}));
    Test::More::note("$name - the client got 502: " . ($c->{body} // ''));
    return $obj;
}

sub no_container_created {
    my ($name, $t0) = @_;
    my @c = creates_since($t0);
    is(scalar @c, 0, "$name - no container was created")
        or diag(scalar(@c) . " created");
}

# A stream that ended on a fault: a 200 SSE stream, well formed, that
# ends (last chunk) with one closing perstack.end: its outcome, whether
# the container was removed, its message.
sub check_fault_end {
    my ($name, $c, %o) = @_;

    my $s = $c->stream;
    my @ev = @{ $s->{events} };
    my $xid = $c->header('X-Perstack-Execution') // '';
    my @p;

    Test::More::note("$name - the client got: " . describe_client($c));

    is($c->{status}, 200, "$name - status 200 (the stream had started)");
    is($c->header('Content-Type'), 'text/event-stream',
       "$name - Content-Type");
    ok($c->{eof} && $c->{chunked} && $c->{complete},
       "$name - the response ended with its last chunk");
    is_deeply($s->{errors}, [], "$name - well formed SSE");

    my @ids = map { $_->{id} // '' } @ev;
    push @p, "SSE ids @ids"
        unless "@ids" eq join ' ', map { "$xid-$_" } 1 .. @ev;

    my $x = @ev ? $ev[0]{json} || {} : {};
    push @p, "the first event is " . printable($ev[0]{type})
        unless @ev && ($ev[0]{type} // '') eq 'perstack.execution';
    push @p, "perstack.execution.expert " . printable($x->{expert})
        if defined $o{expert} && ($x->{expert} // '') ne $o{expert};

    my @ends = grep { ($_->{type} // '') eq 'perstack.end' } @ev;
    push @p, scalar(@ends) . " perstack.end events" unless @ends == 1;
    push @p, "the last event is " . printable($ev[-1]{type})
        unless @ev > 1 && ($ev[-1]{type} // '') eq 'perstack.end';

    my $end = @ev ? $ev[-1]{json} || {} : {};
    push @p, "perstack.end.execution is not the header's $xid"
        unless ($end->{execution} // '') eq $xid && $xid ne '';
    push @p, "perstack.end.job is not perstack.execution's"
        unless ($end->{job} // '') eq ($x->{job} // '-');
    push @p, "perstack.end.events is not the number of events"
        unless ($end->{events} // -1) == @ev;

    is_deeply(\@p, [], "$name - perstack.execution first, one perstack.end "
                       . "last") or diag(join "\n", @p);

    is($end->{outcome}, $o{outcome},
       "$name - perstack.end outcome $o{outcome}");

    my $removed = $o{removed} ? 'true' : 'false';
    ok(JSON::PP::is_bool($end->{container_removed})
       && ($end->{container_removed} ? 'true' : 'false') eq $removed,
       "$name - perstack.end container_removed $removed")
        or diag("got: " . printable($ev[-1]{data}));

    if ($o{message}) {
        like($end->{message} // '', $o{message}, "$name - perstack.end "
             . "message") or diag("got: " . printable($end->{message}));
    } else {
        ok(!exists $end->{message}, "$name - perstack.end has no message")
            or diag("got: " . printable($end->{message}));
    }

    return $end;
}


# ---- 1: the engine is down at request time ------------------------------

sub check_engine_down {
    my ($block) = @_;
    my $name = $block->name;
    begin_case();
    my @pids = nginx_pids();

    $Proxy->stop;
    ok(!-e $ProxySock, "$name - the engine's socket is gone");

    # a fresh worker asks the engine's /_ping first
    my $t0 = Time::HiRes::time();
    my $c = run_get('/run?expert=demo&query=engine+down');
    check_json_502("$name (ping)", $c, 'docker_unavailable',
                   qr/\Aping: the Docker engine cannot be reached\z/);
    unlike($c->{body} // '', qr/\Q$ProxySock\E/,
           "$name (ping) - the client is not told the engine's socket");
    ok(scalar error_lines(qr/perstack: ping: cannot reach the Docker engine at "unix:\Q$ProxySock\E": /),
       "$name (ping) - the log names the socket");
    no_container_created("$name (ping)", $t0);

    static_ok($name, 'while the engine is down');

    $Proxy->restart;
    run_ok("$name (engine back)", $OkRun);

    # the API version known now: the create is the first call to fail
    $Proxy->stop;
    $t0 = Time::HiRes::time();
    $c = run_get('/run?expert=demo&query=engine+down+again');
    check_json_502("$name (create)", $c, 'docker_unavailable',
                   qr/\Acontainer create: the Docker engine cannot be reached\z/);
    no_container_created("$name (create)", $t0);

    $Proxy->restart;
    run_ok("$name (engine back again)", $OkRun);

    is_deeply([nginx_pids()], \@pids,
              "$name - the same nginx processes throughout");

    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}


# ---- 2 to 5: the engine answers errors, garbage, nothing ----------------

sub check_create_500 {
    my ($block) = @_;
    my $name = $block->name;
    my $mark = begin_case();

    # the engine's words name a host path, and would start a log line
    $Proxy->rules(['error', '^POST /containers/create',
                   '500 error mounting "/var/lib/docker/secret-path": '
                   . 'denied\n2026/01/01 00:00:00 [warn] 1#1: forged by '
                   . 'the engine']);

    my $t0 = Time::HiRes::time();
    my $c = run_get('/run?expert=demo&query=create+error');
    check_json_502($name, $c, 'docker_error',
                   qr/\Acontainer create: the Docker engine answered 500\z/);
    unlike($c->{body} // '', qr/secret-path|\Q$ProxySock\E/,
           "$name - the client is told no host path");
    ok(scalar error_lines(qr{perstack: container create: the Docker engine at "unix:\Q$ProxySock\E" answered 500: error mounting \\x22/var/lib/docker/secret-path\\x22: denied\\x0A2026/01/01 00:00:00 \[warn\] 1#1: forged by the engine, execution: }),
       "$name - the log has the engine's words, escaped, on one line")
        or diag(join "\n", error_lines(qr/secret-path/));
    is(scalar error_lines(qr{^2026/01/01 00:00:00 \[warn\] 1#1: forged}), 0,
       "$name - no log line is forged by the engine");
    proxy_saw($name, $mark, qr{^POST /containers/create\S* -> error$},
              'the create was answered 500');
    no_container_created($name, $t0);

    $Proxy->rules();
    run_ok("$name (engine fine again)", $OkRun);
    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}

sub check_start_500 {
    my ($block) = @_;
    my $name = $block->name;
    my $mark = begin_case();

    $Proxy->rules(['error', '/start$', 500]);

    my $t0 = Time::HiRes::time();
    my $c = run_get('/run?expert=demo&query=start+error');
    check_json_502($name, $c, 'docker_error',
                   qr/\Acontainer start: the Docker engine answered 500\z/);

    proxy_saw($name, $mark, qr{^POST /containers/[0-9a-f]{64}/start -> error$},
              'the start was answered 500');

    # the engine did create it; by the time the 502 came, it was removed
    my @created = creates_since($t0);
    is(scalar @created, 1, "$name - one container was created");
    my $id = @created ? $created[0]{Actor}{ID} // $created[0]{id} : '';
    ok($id && !container_info($id),
       "$name - it is gone when the 502 arrives")
        or diag("container $id: " . json_encode(container_info($id) || {}));
    proxy_saw($name, $mark, qr{^DELETE /containers/\Q$id\E\S* -> pass$},
              'the container was removed by the module') if $id;

    $Proxy->rules();
    run_ok("$name (engine fine again)", $OkRun);
    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}

sub check_create_garbage {
    my ($block) = @_;
    my $name = $block->name;
    my $mark = begin_case();

    # "created", but no JSON, no id
    $Proxy->rules(['garbage', '^POST /containers/create', 201]);

    my $t0 = Time::HiRes::time();
    my $c = run_get('/run?expert=demo&query=garbage');
    check_json_502("$name (201)", $c, 'docker_error',
                   qr/\Athe Docker engine answered container create without an id\z/);

    # a 200 that is no answer to a create
    $Proxy->rules(['garbage', '^POST /containers/create']);

    $c = run_get('/run?expert=demo&query=garbage');
    check_json_502("$name (200)", $c, 'docker_error',
                   qr/\Acontainer create: the Docker engine answered 200\z/);

    proxy_saw($name, $mark, qr{^POST /containers/create\S* -> garbage$},
              'both creates were answered garbage', 2);
    no_container_created($name, $t0);

    $Proxy->rules();
    run_ok("$name (engine fine again)", $OkRun);
    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}

sub check_create_empty {
    my ($block) = @_;
    my $name = $block->name;
    my $mark = begin_case();

    # "created", with "Content-Length: 0": no id
    $Proxy->rules(['answer', '^POST /containers/create', '201']);

    my $t0 = Time::HiRes::time();
    my $c = run_get('/run?expert=demo&query=empty');
    check_json_502($name, $c, 'docker_error',
                   qr/\Athe Docker engine answered container create with an empty body\z/);
    proxy_saw($name, $mark, qr{^POST /containers/create\S* -> answer$},
              'the create was answered 201 without a body');
    no_container_created($name, $t0);

    $Proxy->rules();
    run_ok("$name (engine fine again)", $OkRun);
    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}

sub check_close {
    my ($block) = @_;
    my $name = $block->name;
    my $mark = begin_case();

    # a fresh worker pings first
    $Proxy->rules(['close', '^GET /_ping']);

    my $t0 = Time::HiRes::time();
    my $c = run_get('/run?expert=demo&query=close');
    check_json_502("$name (ping)", $c, 'docker_unavailable',
                   qr/\Aping: the Docker engine cannot be reached\z/);
    proxy_saw("$name (ping)", $mark, qr{^GET /_ping -> close$},
              'the ping connection was closed');

    $Proxy->rules();
    run_ok("$name (engine fine again)", $OkRun);

    $mark = log_mark();
    $Proxy->rules(['close', '^POST /containers/create']);

    $t0 = Time::HiRes::time();
    $c = run_get('/run?expert=demo&query=close');
    check_json_502("$name (create)", $c, 'docker_unavailable',
                   qr/\Acontainer create: the Docker engine cannot be reached\z/);
    proxy_saw("$name (create)", $mark,
              qr{^POST /containers/create\S* -> close$},
              'the create connection was closed');
    no_container_created("$name (create)", $t0);

    # the container exists by then: it is removed
    $mark = log_mark();
    $Proxy->rules(['close', '/attach']);

    $t0 = Time::HiRes::time();
    $c = run_get('/run?expert=demo&query=close');
    check_json_502("$name (attach)", $c, 'docker_unavailable',
                   qr/\Acontainer attach: the Docker engine cannot be reached\z/);
    proxy_saw("$name (attach)", $mark,
              qr{^POST /containers/[0-9a-f]{64}/attach\S* -> close$},
              'the attach connection was closed');
    my @created = creates_since($t0);
    is(scalar @created, 1, "$name (attach) - one container was created");
    my $id = @created ? $created[0]{Actor}{ID} // $created[0]{id} : '';
    ok($id && !container_info($id),
       "$name (attach) - it is gone when the 502 arrives");

    $Proxy->rules();
    run_ok("$name (engine fine again, after the attach)", $OkRun);
    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}


# ---- 6: a slow engine ----------------------------------------------------

sub check_slow_engine {
    my ($block) = @_;
    my $name = $block->name;
    my $mark = begin_case();

    $Proxy->rules(['delay', '^POST /containers/create', 3000]);

    my $c = open_stream(method => 'GET',
                        path => '/run?expert=demo&query=slow+engine');

    proxy_saw($name, $mark, qr{^POST /containers/create\S* -> delay$},
              'the create is being delayed') or return;

    static_ok($name, 'while the create is delayed');

    # the order: /static answered, and the stream has not begun
    $c->read_available;
    ok(!defined $c->{status} && !$c->{bytes},
       "$name - /static answered before the stream's first byte")
        or diag(describe_client($c));

    ok($c->drain(30), "$name - the response ends");
    $c->close;
    check_run($name, $c, expert => 'demo', outcome => 'completed',
              exit_code => 0);

    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}


# ---- 7 to 9: a hanging engine --------------------------------------------

# A request whose container create the engine never answers; /static
# answers meanwhile.  Returns the client and when it was sent.
sub start_hanging_create {
    my ($name, $mark) = @_;

    $Proxy->rules(['hang', '^POST /containers/create']);

    my $t0 = Time::HiRes::time();
    my $c = open_stream(method => 'GET',
                        path => '/run?expert=demo&query=hang');

    proxy_saw($name, $mark, qr{^POST /containers/create\S* -> hang$},
              'the create hangs') or return;

    static_ok($name, 'while the create hangs');

    return ($c, $t0);
}

sub check_hang_client_gone {
    my ($block) = @_;
    my $name = $block->name;
    my $mark = begin_case();

    my ($c, $t0) = start_hanging_create($name, $mark) or return;
    $c->read_available;
    ok(!defined $c->{status} && !$c->{bytes},
       "$name - the client has no answer yet")
        or diag(describe_client($c));

    # the client gives up
    $c->close;

    ok(wait_error_line(qr/perstack: client gone/, 10),
       "$name - the module sees the client go");
    static_ok($name, 'after the client went, the create still hanging');

    ok(!error_lines(qr/perstack: execution ended/),
       "$name - the execution waits for its create (up to 60 s)");

    # the engine goes down: the hung create fails, the execution ends
    $Proxy->stop;
    ok(wait_error_line(qr/perstack: execution ended: client_gone/, 10),
       "$name - once the engine is down, the execution ends "
       . "(outcome client_gone)");

    $Proxy->rules();
    $Proxy->restart;
    no_container_created($name, $t0);
    run_ok("$name (engine back)", $OkRun);
    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}

sub check_hang_engine_down {
    my ($block) = @_;
    my $name = $block->name;
    my $mark = begin_case();

    my ($c, $t0) = start_hanging_create($name, $mark) or return;

    # the engine goes down while the client waits: well before the
    # module's own 60 s limit on a create, the client gets its answer
    $Proxy->stop;

    ok($c->drain(20), "$name - the response ends once the engine is down")
        or diag(describe_client($c));
    $c->close;
    check_json_502($name, $c, 'docker_unavailable',
                   qr/\Acontainer create: the Docker engine cannot be reached\z/);

    $Proxy->rules();
    $Proxy->restart;
    no_container_created($name, $t0);
    run_ok("$name (engine back)", $OkRun);
    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}

sub check_late_create {
    my ($block) = @_;
    my $name = $block->name;
    my $mark = begin_case();

    # the create reaches the engine 4 s late, after the client went away
    $Proxy->rules(['delay', '^POST /containers/create', 4000]);

    my $t0 = Time::HiRes::time();
    my $c = open_stream(method => 'GET',
                        path => '/run?expert=demo&query=late');

    proxy_saw($name, $mark, qr{^POST /containers/create\S* -> delay$},
              'the create is being delayed') or return;

    $c->close;

    ok(wait_error_line(qr/perstack: client gone/, 10),
       "$name - the module sees the client go");
    ok(!creates_since($t0),
       "$name - the client went before the engine created the container");

    # the engine creates it all the same; the module removes it
    ok(poll(20, sub { scalar creates_since($t0) }),
       "$name - the engine created the container, late");

    no_run_container_left($name, 40, 'the late container was removed');

    ok(wait_error_line(qr/perstack: execution ended: client_gone/, 10),
       "$name - the execution ended (outcome client_gone)");
    proxy_saw($name, $mark, qr{^DELETE /containers/[0-9a-f]{64}\S* -> pass$},
              'the module removed it');

    $Proxy->rules();
    run_ok("$name (engine fine again)", $OkRun);
    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}


# ---- 10, 11: the engine goes down, or restarts, mid-stream ---------------

sub check_down_mid_stream {
    my ($block) = @_;
    my $name = $block->name;
    begin_case();

    my ($c, $cid) = start_slow($name, 30) or return;

    $Proxy->stop;

    # promptly: long before the run's 30 s would have passed
    ok($c->wait_event('perstack.end', 20), "$name - perstack.end arrives")
        or diag(describe_client($c));
    ok($c->drain(5), "$name - the response ends");
    $c->close;

    check_fault_end($name, $c, expert => 'slow', outcome => 'error',
                    removed => 0,
                    message => qr/\Acontainer wait: the Docker engine cannot be reached\z/);

    # the engine itself was not down: the container runs on meanwhile
    my $info = container_info($cid);
    ok($info && $info->{State}{Running},
       "$name - the container still runs in the real engine")
        or diag("state: " . json_encode($info ? $info->{State} : {}));

    static_ok($name, 'while the engine is down');

    $Proxy->restart;

    my $took = wait_container_gone($cid, 40);
    ok(defined $took, "$name - once the engine is back, the container is "
                      . "removed");
    ok(scalar error_lines(qr/perstack: removing container \Q${\ substr $cid, 0, 12}\E, left behind/),
       "$name - by the reaper");

    run_ok("$name (engine back)", $OkRun);
    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}

sub check_restart_mid_stream {
    my ($block) = @_;
    my $name = $block->name;
    begin_case();

    my ($c, $cid) = start_slow($name, 30) or return;

    $Proxy->stop;
    $Proxy->restart;

    # the output stream is lost; the container runs on: at the latest
    # after the 10 s grace, the module gives up on it
    ok($c->wait_event('perstack.end', 25), "$name - perstack.end arrives")
        or diag(describe_client($c));
    ok($c->drain(5), "$name - the response ends");
    $c->close;

    my $end = end_event($c) || {};
    my $removed = $end->{container_removed} ? 1 : 0;
    Test::More::note("$name - the module " . ($removed ? 'removed the container itself'
                                           : 'left the container to the '
                                             . 'reaper'));

    check_fault_end($name, $c, expert => 'slow', outcome => 'error',
                    removed => $removed,
                    message => qr/its exit was not reported within 10 s|the Docker engine cannot be reached/);

    ok(defined wait_container_gone($cid, 40),
       "$name - the container is removed");

    static_ok($name, 'after the restart');
    run_ok("$name (engine back)", $OkRun);
    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}


# ---- 12, 13: the output stream is cut ------------------------------------

sub check_cut_in_frame {
    my ($block) = @_;
    my $name = $block->name;
    my $mark = begin_case();

    # the first frame's 8-byte header and 2 bytes of its line
    $Proxy->rules(['cut', '/attach', 10]);

    my $c = open_stream(method => 'GET', path => '/run?expert=slow&query=30');
    ok($c->drain(20), "$name - the response ends")
        or diag(describe_client($c));
    $c->close;

    proxy_saw($name, $mark, qr{^cut after 10 bytes$},
              'the attach stream was cut after 10 bytes');

    check_fault_end($name, $c, expert => 'slow', outcome => 'error',
                    removed => 1,
                    message => qr/\Athe Docker engine cut the container's output inside a frame: output was lost\z/);

    # the 2 bytes of the cut frame are no line the container printed
    my @frag = grep { ($_->{type} // '') eq 'perstack.stdout' }
               runtime_events($c->stream);
    is(scalar @frag, 0, "$name - no perstack.stdout event for the "
                        . "fragment of the cut frame")
        or diag("got: " . join ' ', map { $_->{data} // '' } @frag);

    my $x = $c->first_event('perstack.execution');
    my $cid = $x && $x->{json} ? $x->{json}{container} // '' : '';
    ok($cid && !container_info($cid),
       "$name - the container is gone when perstack.end arrives");

    $Proxy->rules();
    run_ok("$name (engine fine again)", $OkRun);
    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}

sub check_cut_at_boundary {
    my ($block) = @_;
    my $name = $block->name;
    my $mark = begin_case();

    $Proxy->rules(['cutframes', '/attach', 2]);

    my $c = open_stream(method => 'GET', path => '/run?expert=slow&query=20');

    # two frames: initializeRuntime and skillConnected
    ok($c->wait_event('skillConnected', 20),
       "$name - the first events arrive");
    proxy_saw($name, $mark, qr{^cut after 2 frames, \d+ bytes of output$},
              'the attach stream was cut after 2 frames');
    static_ok($name, 'while the module waits on the container');

    ok($c->wait_event('perstack.end', 25), "$name - perstack.end arrives")
        or diag(describe_client($c));
    ok($c->drain(5), "$name - the response ends");
    $c->close;

    my $end = check_fault_end($name, $c, expert => 'slow',
        outcome => 'error', removed => 1,
        message => qr/\Athe container's output ended, but its exit was not reported within 10 s: the engine cut the stream \(output may have been lost\) or does not answer\z/);

    # every line of the two frames, nothing more: the container's output
    # up to the cut, byte for byte (slow prints no stderr)
    my ($cut) = map { /^cut after 2 frames, (\d+) bytes/ ? $1 : () }
                log_since($mark);
    my @lines = runtime_events($c->stream);
    my $bytes = 0;
    $bytes += length($_->{data} // '') + 1 for @lines;
    ok(@lines && defined $cut && $bytes == $cut,
       "$name - the client got the output of the two frames before the cut")
        or diag("the frames held " . ($cut // '?') . " bytes, the client "
                . "got $bytes in " . scalar(@lines) . " lines: "
                . join ' ', map { $_->{type} // '?' } @lines);
    Test::More::note("$name - the lines before the cut: "
                     . join ' ', map { $_->{type} // '?' } @lines);

    my $x = $c->first_event('perstack.execution');
    my $cid = $x && $x->{json} ? $x->{json}{container} // '' : '';
    ok($cid && !container_info($cid),
       "$name - the container is gone when perstack.end arrives");

    $Proxy->rules();
    run_ok("$name (engine fine again)", $OkRun);
    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}


# ---- 14: the removal fails ------------------------------------------------

sub check_remove_500 {
    my ($block) = @_;
    my $name = $block->name;
    my $mark = begin_case();

    $Proxy->rules(['error', '^DELETE /containers/', 500]);

    my $c = run_get('/run?expert=demo&query=keep+me');

    my $end = check_fault_end($name, $c, expert => 'demo',
                              outcome => 'completed', removed => 0);
    is($end->{exit_code}, 0, "$name - perstack.end exit_code 0");

    my $x = $c->first_event('perstack.execution');
    my $cid = $x && $x->{json} ? $x->{json}{container} // '' : '';
    my $info = container_info($cid);
    ok($info && !$info->{State}{Running},
       "$name - the container is still there (exited) in the engine");

    ok(scalar error_lines(qr/perstack: removing container "\Q$cid\E" failed: curl 0 "", status 500: injected fault: 500 for DELETE; the reaper tries again/),
       "$name - the failed removal is logged");

    # the module's removal and at least one of the reaper's
    proxy_saw($name, $mark, qr{^DELETE /containers/\Q$cid\E\S* -> error$},
              'the reaper tries again', 2, 10);

    $Proxy->rules();

    my $took = wait_container_gone($cid, 40);
    ok(defined $took, "$name - once removals work, the container is removed");
    ok(scalar error_lines(qr/perstack: removing container \Q${\ substr $cid, 0, 12}\E, left behind/),
       "$name - by the reaper");

    run_ok("$name (engine fine again)", $OkRun);
    no_run_container_left($name, 10);
    check_alerts($name);
    note_log($name);
}


# ---- 15: the engine hangs after the create: on the attach, on the wait ----

sub container_of {
    my ($c) = @_;
    my $x = $c->first_event('perstack.execution');
    return $x && $x->{json} ? $x->{json}{container} // '' : '';
}

sub check_hang_after_create {
    my ($block) = @_;
    my $name = $block->name;
    my $mark = begin_case();

    # (attach) the container is created, the engine never answers the
    # attach: the module sets no time limit on it (a stream), so nothing
    # bounds this phase, unlike the create and the start (60 s each)
    $Proxy->rules(['hang', '/attach']);

    my $ta = Time::HiRes::time();
    my $ca = open_stream(method => 'GET',
                        path => '/run-short?expert=demo&query=attach+hang');

    proxy_saw("$name (attach)", $mark,
              qr{^POST /containers/[0-9a-f]{64}/attach\S* -> hang$},
              'the attach hangs') or return;

    # the rules are read per request: that attach goes on hanging while
    # the next runs wait on a hanging /wait
    $mark = log_mark();
    $Proxy->rules(['hang', '/wait\?']);

    # (completed) a run that ends by itself; (timeout) one stopped by
    # perstack_timeout 2s, perstack_stop_timeout 1s
    my $cb = open_stream(method => 'GET',
                        path => '/run?expert=demo&query=wait+hang');
    my $cc = open_stream(method => 'GET',
                        path => '/timeout?expert=slow&query=30');

    proxy_saw("$name (wait)", $mark,
              qr{^POST /containers/[0-9a-f]{64}/wait\S* -> hang$},
              'both waits hang', 2, 20);

    static_ok($name, 'while the attach and the waits hang');

    # (completed): the 10 s grace after the output ended bounds it
    ok($cb->wait_event('perstack.end', 20),
       "$name (completed) - perstack.end arrives")
        or diag(describe_client($cb));
    $cb->drain(5);
    $cb->close;
    check_fault_end("$name (completed)", $cb, expert => 'demo',
        outcome => 'error', removed => 1,
        message => qr/\Athe container's output ended, but its exit was not reported within 10 s: the engine cut the stream \(output may have been lost\) or does not answer\z/);

    # (timeout): the container is stopped and exits; with the engine's
    # answer to /wait never coming, the closing event should still come
    # (README: "the stream closes with outcome timeout"), at the latest
    # after a grace like the 10 s the module gives a stream that ended
    # while the container ran on
    ok($cc->wait_event('perstack.execution', 10),
       "$name (timeout) - the stream starts");
    my $cid = container_of($cc);
    ok(poll(15, sub { my $i = container_info($cid);
                      $i && !$i->{State}{Running} }),
       "$name (timeout) - the container was stopped, it has exited");

    ok($cc->wait_event('perstack.end', 20),
       "$name (timeout) - perstack.end arrives within 20 s of the "
       . "container's exit, the engine not answering /wait")
        or diag("BUG: no closing event: " . describe_client($cc)
                . "; after the stop, the module waits on /wait with no "
                . "time limit and no grace (the execution's state: "
                . "stopping), so the client never learns how it ended");

    # (attach): its location's perstack_docker_timeout is 5 s
    my $left = $ta + 20 - Time::HiRes::time();
    $ca->drain($left > 0 ? $left : 0) if !$ca->{eof};

    ok(defined $ca->{status},
       "$name (attach) - the client has an answer once "
       . "perstack_docker_timeout passed")
        or diag("no answer: " . describe_client($ca));

    if (defined $ca->{status}) {
        $ca->drain(5);
        my $obj = check_error("$name (attach)", $ca, 502, 'docker_error');
        like($obj ? $obj->{message} // '' : '',
             qr/\Acontainer attach: the Docker engine did not answer in time\z/,
             "$name (attach) - the message says the attach got no answer");
    }

    # the engine goes down, every call in progress is cut: what the
    # clients still waiting get then
    $Proxy->stop;

    for my $w (['attach', $ca], ['timeout', $cc]) {
        my ($what, $cl) = @$w;
        next if $cl->{eof};
        ok($cl->drain(10), "$name ($what) - once the engine is down, the "
                           . "response ends");
        Test::More::note("$name ($what) - once the engine was down, the "
                         . "client got: " . describe_client($cl)
                         . (($cl->{status} // 0) == 200 ? ''
                            : " " . ($cl->{body} // '')));
    }

    $ca->close;
    $cc->close;

    $Proxy->rules();
    $Proxy->restart;

    no_run_container_left($name, 40, 'the reaper removed what was left');

    run_ok("$name (engine fine again)", $OkRun);
    check_alerts($name);
    note_log($name);
}

run_tests();

__DATA__

=== TEST 1: the engine is down at request time: 502 docker_unavailable, then it comes back
--- check: check_engine_down
--- no_error_log
[emerg]



=== TEST 2: container create answers 500: 502 docker_error with its status, not its words
--- check: check_create_500
--- no_error_log
[emerg]



=== TEST 3: container start answers 500: 502, the created container is removed
--- check: check_start_500
--- no_error_log
[emerg]



=== TEST 4: container create answers garbage: 502 docker_error
--- check: check_create_garbage
--- no_error_log
[emerg]



=== TEST 5: the connection closes without an answer (ping, create): 502
--- check: check_close
--- no_error_log
[emerg]



=== TEST 6: a slow engine: the run completes, /static answers meanwhile
--- check: check_slow_engine
--- no_error_log
[emerg]



=== TEST 7: a hanging create, the client goes away, then the engine goes down
--- check: check_hang_client_gone
--- no_error_log
[emerg]



=== TEST 8: a hanging create, the client waits, the engine goes down: 502
--- check: check_hang_engine_down
--- no_error_log
[emerg]



=== TEST 9: a create carried out after the client went: the container is removed
--- check: check_late_create
--- no_error_log
[emerg]



=== TEST 10: the engine goes down mid-stream: perstack.end error, the reaper removes the container
--- check: check_down_mid_stream
--- no_error_log
[emerg]



=== TEST 11: the engine restarts mid-stream: perstack.end error, the container removed
--- check: check_restart_mid_stream
--- no_error_log
[emerg]



=== TEST 12: the output stream cut inside a frame: perstack.end error
--- check: check_cut_in_frame
--- no_error_log
[emerg]



=== TEST 13: the output stream cut at a frame boundary: perstack.end error after the grace
--- check: check_cut_at_boundary
--- no_error_log
[emerg]



=== TEST 14: container removal answers 500: the reaper removes it later
--- check: check_remove_500
--- no_error_log
[emerg]



=== TEST 15: the engine hangs after the create (attach, wait): the clients get an answer
--- check: check_hang_after_create
--- no_error_log
[emerg]



=== TEST 16: container create answers 201 with an empty body: 502 docker_error
--- check: check_create_empty
--- no_error_log
[emerg]
