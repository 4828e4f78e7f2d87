# Engine groups (README, "More than one host"): two dockerd of this file's
# own (t/lib/PerstackEngines.pm), A on a unix socket and B over TLS on
# loopback (a CA and certificates made here), in perstack_engines blocks:
#
#   - executions spread over both (idle, they take turns), none on the
#     suite's engine, and while one runs on an engine the next ones go to
#     the other (the fewest
#     running), by weight; an engine at its max= takes no more (503
#     engines_busy);
#     $perstack_engine names the engine in the access log;
#   - a continued job goes to the engine that ran it, named in the job's
#     record;
#   - an engine killed mid-run: its execution ends with a perstack.end
#     that says so, the next executions go to the other engine (the first
#     one's create did not reach the dead engine and went on), the metrics
#     say the engine is down, a job of the dead engine is refused with 503
#     where workspaces are not shared and runs elsewhere where they are,
#     and nothing is left on the living engine;
#   - the reaper sweeps every engine of every group: orphans on A and B
#     (their worker and master gone) are removed by the first pass;
#   - nginx -t refuses a group that is not defined, an empty one, one
#     defined twice, and a gateway zone with a group.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;
use Perstack;
use PerstackEngines;
use File::Temp ();
use POSIX ();
use Sys::Hostname ();

# A on its unix socket, B over TLS with a client certificate: a group
# takes both kinds
our $Pki = make_pki();
our $A = start_engine(name => 'ga');
our $B = start_engine(name => 'gb', tls => $Pki, port => Perstack::free_port());
$A->{engine} = "unix:$A->{sock}";
$B->{engine} = $B->{url};
our %Engine = ($A->{engine} => $A, $B->{engine} => $B);

our $RunId = unique_name('groups');
our $RunLabel = "test.perstack.groups-run=$RunId";
our $JobsRoot = make_dir('groups-jobs');

$ENV{TEST_NGINX_ENGINE_A} = $A->{engine};
$ENV{TEST_NGINX_ENGINE_B} = "$B->{engine} ssl_certificate=$Pki->{dir}/client.pem "
    . "ssl_certificate_key=$Pki->{dir}/client-key.pem "
    . "ssl_trusted_certificate=$Pki->{dir}/ca.pem";
$ENV{TEST_NGINX_GROUPS_RUN} = $RunId;
$ENV{TEST_NGINX_GROUPS_JOBS} = $JobsRoot;

my $http_config = <<'_EOC_';
    perstack_engines pair {
        engine $TEST_NGINX_ENGINE_A;
        engine $TEST_NGINX_ENGINE_B;
        fail_timeout 600s;
    }

    perstack_engines shared {
        engine $TEST_NGINX_ENGINE_A;
        engine $TEST_NGINX_ENGINE_B;
        shared_workspaces on;
    }

    perstack_engines weighted {
        engine $TEST_NGINX_ENGINE_A;
        engine $TEST_NGINX_ENGINE_B weight=3;
    }

    perstack_engines capped {
        engine $TEST_NGINX_ENGINE_B max=1;
    }

    log_format engines '$perstack_execution $perstack_engine';
_EOC_

my $config = <<'_EOC_';
    perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    perstack_label test.perstack.groups-run $TEST_NGINX_GROUPS_RUN;
    perstack_detach_timeout 0;

    location = /run {
        perstack_execute;
        perstack_docker pair;
        access_log logs/engines.log engines;
    }

    location = /job {
        perstack_execute;
        perstack_docker pair;
        perstack_workspace $http_x_user;
        perstack_workspace_root $TEST_NGINX_GROUPS_JOBS;
    }

    location = /job-shared {
        perstack_execute;
        perstack_docker shared;
        perstack_workspace $http_x_user;
        perstack_workspace_root $TEST_NGINX_GROUPS_JOBS;
    }

    location = /weighted {
        perstack_execute;
        perstack_docker weighted;
    }

    location = /capped {
        perstack_execute;
        perstack_docker capped;
    }

    location = /metrics {
        perstack_metrics;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $http_config)
        unless defined $block->http_config;
    $block->set_value('config', $config) unless defined $block->config;
    default_request($block, '/run');

    # before nginx starts: its worker's first reaper pass finds them
    make_orphans() if defined $block->orphans;
});

# A pid no process has: a child that exited and was waited for.
sub dead_pid {
    my $pid = fork // die "fork: $!\n";
    POSIX::_exit(0) if $pid == 0;
    waitpid($pid, 0);
    return $pid;
}

# on A and B, a running container of a worker and a master that are gone,
# on this host: an orphan of an nginx that died
our %Orphan;

sub make_orphans {
    my ($worker, $master) = (dead_pid(), dead_pid());

    for my $n (qw(A B)) {
        my $e = $n eq 'A' ? $A : $B;
        my $tmp = File::Temp->new(SUFFIX => '.json');
        print $tmp json_encode({
            Image => $Image,
            Cmd => ['perstack', 'run', '--', 'slow', '60'],
            Labels => { 'io.perstack.managed' => '1',
                        'io.perstack.pid' => "$worker",
                        'io.perstack.master' => "$master",
                        'io.perstack.host' => lc Sys::Hostname::hostname(),
                        'test.perstack.groups-run' => $RunId },
            HostConfig => { NetworkMode => 'none',
                            Init => JSON::PP::true() },
        });
        close $tmp;

        my ($st, $obj, $raw) = with_engine($e, sub {
            Perstack::docker_json('POST', '/containers/create',
                                  body_file => $tmp->filename,
                                  content_type => 'application/json') });
        die "cannot create an orphan on $n: $st $raw\n"
            unless $st == 201 && ref $obj eq 'HASH' && $obj->{Id};
        ($st, $raw) = with_engine($e, sub {
            docker_api('POST', "/containers/$obj->{Id}/start") });
        die "cannot start the orphan on $n: $st $raw\n" unless $st == 204;
        $Orphan{$n} = $obj->{Id};
    }
}


# the containers of this file made on engine $e since $t0
sub creates_on {
    my ($e, $t0) = @_;
    return engine_creates($e, $t0, $RunLabel);
}

# which running engine made the container $id since $t0: 'A', 'B' or ''
sub where {
    my ($id, $t0) = @_;
    for my $n (qw(A B)) {
        my $e = $n eq 'A' ? $A : $B;
        next unless $e->{pid};
        return $n if grep { ($_->{id} // $_->{Actor}{ID} // '') eq $id }
                          creates_on($e, $t0);
    }
    return '';
}

# a run's checks (check_run's), asked of the engine it ran on: that
# engine's name
sub run_checked {
    my ($name, $c, $t0, %o) = @_;
    my $n = where(container_of($c), $t0);
    my $e = $n eq 'A' ? $A : $n eq 'B' ? $B : undef;
    my $r;

    if ($e) {
        $r = with_engine($e, sub { check_run($name, $c, %o) });
    } else {
        fail("$name - the run's container was made on A or B");
        diag(describe_client($c));
    }

    return wantarray ? ($n, $r) : $n;
}

sub demo_run {
    my ($name, $path, @headers) = @_;
    my $t0 = Time::HiRes::time();
    return run_checked($name, run_get($path, @headers), $t0,
                       expert => 'demo', outcome => 'completed',
                       exit_code => 0);
}

sub container_of {
    my ($c) = @_;
    my $x = ($c->first_event('perstack.execution') || {})->{json} || {};
    return $x->{container} // '';
}

# a run of the demo's "slow" expert, read until it streams
sub slow {
    my ($name, $path) = @_;
    my $c = open_stream(method => 'GET', path => $path);
    ok($c->wait_event('streamReasoning', 30), "$name - the slow run streams")
        or diag(describe_client($c));
    return $c;
}

sub check_spread {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();
    my %on;

    for my $i (1 .. 2) {
        $on{ demo_run("$name ($i)", "/run?expert=demo&query=spread+$i") }++;
    }

    # idle engines take turns
    is_deeply(\%on, { A => 1, B => 1 }, "$name - one on A, one on B")
        or diag(Test::More::explain(\%on));
    is(scalar(creates_on(undef, $t0)), 0,
       "$name - none on the suite's engine");

    # while one runs on an engine, the next ones go to the other

    my $s = slow($name, '/run?expert=slow&query=60');
    my $busy = where(container_of($s), $t0);
    like($busy, qr/\A[AB]\z/, "$name - the slow run is on A or B");

    my %next;
    for my $i (1 .. 2) {
        $next{ demo_run("$name (beside $i)", "/run?expert=demo&query=beside") }++;
    }

    my $free = $busy eq 'A' ? 'B' : 'A';
    is($next{$free} // 0, 2, "$name - both went to the idle engine")
        or diag(Test::More::explain(\%next));

    $s->close;
    my $e = $busy eq 'A' ? $A : $B;
    ok(poll(30, sub { with_engine($e, sub {
                          !label_containers($RunLabel) }) }),
       "$name - the slow run's container is gone once its client is");

    # by weight: of four held at once, B (weight=3) runs three

    my $t2 = Time::HiRes::time();
    my @held = map { slow("$name (weighted $_)", '/weighted?expert=slow&query=60') }
               1 .. 4;
    my %w;
    $w{ where(container_of($_), $t2) }++ for @held;
    is_deeply(\%w, { A => 1, B => 3 }, "$name - weight=3 runs three of four");
    $_->close for @held;
    ok(poll(30, sub { !with_engine($A, sub { label_containers($RunLabel) })
                      && !with_engine($B, sub { label_containers($RunLabel) }) }),
       "$name - the weighted runs' containers are gone");

    # an engine at its max= takes no more

    my $t1 = Time::HiRes::time();
    my $one = slow("$name (capped)", '/capped?expert=slow&query=60');
    my $c = run_get('/capped?expert=demo&query=one+more');
    check_error("$name (capped, full)", $c, 503, 'engines_busy');
    is(scalar(creates_on($B, $t1)), 1, "$name - no second container");
    $one->close;
    ok(poll(30, sub { with_engine($B, sub {
                          !label_containers($RunLabel) }) }),
       "$name - the capped run's container is gone");
    is(demo_run("$name (capped, free again)",
                '/capped?expert=demo&query=again'),
       'B', "$name - once it ended, the engine takes one again");

    # $perstack_engine in the access log, as the engines were told

    my $log = '';
    poll(10, sub { $log = slurp("$ENV{TEST_NGINX_SERVROOT}/logs/engines.log");
                   (() = $log =~ /^[0-9a-f]{32} /mg) >= 5 });
    my %logged;
    $logged{$_}++ for $log =~ /^[0-9a-f]{32} (\S+)$/mg;
    is_deeply([sort keys %logged], [sort keys %Engine],
              "$name - \$perstack_engine names both engines")
        or diag($log);
}

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return <$fh> // '';
}

# a job of $user's that ran on engine $want ('A' or 'B'): its id
sub job_on {
    my ($name, $user, $want) = @_;

    for my $try (1 .. 6) {
        my $t0 = Time::HiRes::time();
        my $c = run_get('/job?expert=demo&query=first', 'X-User' => $user);
        my ($n, $r) = run_checked("$name (job $try)", $c, $t0,
                                  expert => 'demo', continued => 0,
                                  outcome => 'completed', exit_code => 0);
        return $r->{job} if $n eq $want;
    }

    Test::More::fail("$name - no job of $user ran on $want");
    return '';
}

sub check_affinity {
    my ($block) = @_;
    my $name = $block->name;

    for my $n (qw(A B)) {
        my $job = job_on("$name $n", "aff-$n", $n) or next;

        my $rec = slurp("$JobsRoot/aff-$n/jobs/$job.json");
        my $engine = ($n eq 'A' ? $A : $B)->{engine};
        like($rec, qr/"engine":"\Q$engine\E"/,
             "$name $n - the job's record names its engine");

        my %on;
        for my $i (1 .. 2) {
            my $t0 = Time::HiRes::time();
            my $c = run_get("/job?expert=demo&jobId=$job&query=again+$i",
                            'X-User' => "aff-$n");
            $on{ run_checked("$name $n (continue $i)", $c, $t0,
                             expert => 'demo', job => $job, continued => 1,
                             outcome => 'completed', exit_code => 0) }++;
        }

        is_deeply(\%on, { $n => 2 },
                  "$name $n - each continuation ran on the job's engine");
    }
}

sub check_killed {
    my ($block) = @_;
    my $name = $block->name;

    # a job of A's, for later
    my $job = job_on($name, 'killed', 'A');

    # one slow run on each engine

    my $t0 = Time::HiRes::time();
    my $s1 = slow("$name (1)", '/run?expert=slow&query=120');
    my $s2 = slow("$name (2)", '/run?expert=slow&query=120');
    my %run = (where(container_of($s1), $t0) => $s1,
               where(container_of($s2), $t0) => $s2);
    ok($run{A} && $run{B}, "$name - one slow run on each engine")
        or return;

    kill_engine($A);

    ok($run{A}->wait_event('perstack.end', 60),
       "$name - the run on the killed engine ends");
    my $end = end_event($run{A}) || {};
    is($end->{outcome}, 'error', "$name - its outcome is error");
    like($end->{message} // '', qr/Docker engine/,
         "$name - its message names the engine")
        or diag(Test::More::explain($end));
    ok(!$run{B}->first_event('perstack.end'),
       "$name - the run on the other engine goes on");

    # new executions: the first create finds A gone and goes to B

    my %on;
    for my $i (1 .. 2) {
        $on{ demo_run("$name (after $i)", "/run?expert=demo&query=after") }++;
    }
    is($on{B} // 0, 2, "$name - the next executions ran on B")
        or diag(Test::More::explain(\%on));

    my $m = metrics('/metrics');
    is($m->{"perstack_engine_up{group=\"pair\",engine=\"$A->{engine}\"}"},
       0, "$name - metrics: A is down");
    is($m->{"perstack_engine_up{group=\"pair\",engine=\"$B->{engine}\"}"},
       1, "$name - metrics: B is up");
    ok(($m->{"perstack_engine_failures_total{group=\"pair\",engine=\"$A->{engine}\"}"} // 0) >= 1,
       "$name - metrics: A failed");
    is($m->{"perstack_engine_running{group=\"pair\",engine=\"$B->{engine}\"}"},
       1, "$name - metrics: one execution runs on B");

    # the job of the dead engine

    if ($job) {
        my $t2 = Time::HiRes::time();
        my $c = run_get("/job?expert=demo&jobId=$job&query=where",
                        'X-User' => 'killed');
        check_error("$name (job, not shared)", $c, 503,
                    'engine_unavailable');
        is(scalar(creates_on($B, $t2)), 0,
           "$name - the job did not run elsewhere");

        $c = run_get("/job-shared?expert=demo&jobId=$job&query=where",
                     'X-User' => 'killed');
        is(run_checked("$name (job, shared)", $c, $t2, expert => 'demo',
                       job => $job, continued => 1, outcome => 'completed',
                       exit_code => 0),
           'B', "$name - with shared workspaces it ran on B");
    }

    $run{B}->close;

    ok(poll(30, sub { with_engine($B, sub {
                          !label_containers($RunLabel) }) }),
       "$name - nothing of this file's is left on B")
        or diag(Test::More::explain([ with_engine($B, sub {
                              label_containers($RunLabel) }) ]));

    # back: dockerd on A's roots stops what it finds
    restart_engine($A);
}


sub check_reaped {
    my ($block) = @_;
    my $name = $block->name;

    for my $n (qw(A B)) {
        my $e = $n eq 'A' ? $A : $B;
        my $id = $Orphan{$n} or next;
        ok(poll(30, sub { with_engine($e, sub { !container_info($id) }) }),
           "$name - the orphan on $n is removed");
        my $short = substr $id, 0, 12;
        ok(poll(10, sub { error_log_text() =~ /removing container \Q$short\E, left behind by a worker that is gone/ }),
           "$name - the log says so for $n");
    }
}

sub check_conf {
    my ($block) = @_;
    my $name = $block->name;
    my $loc = 'server { listen 127.0.0.1:1; location = /x { perstack_execute; '
              . 'perstack_image x; perstack_docker g; } }';

    my %bad = (
        'a group not defined' => [ $loc, qr/no perstack_engines "g" is defined/ ],
        'an empty group' => [ "perstack_engines g { } $loc",
                              qr/no engine in perstack_engines "g"/ ],
        'a group twice' => [ "perstack_engines g { engine unix:/a; } "
                             . "perstack_engines g { engine unix:/b; } $loc",
                             qr/duplicate perstack_engines "g"/ ],
        'an engine twice' => [ "perstack_engines g { engine unix:/a; "
                               . "engine unix:/a; } $loc",
                               qr/duplicate engine "unix:\/a"/ ],
        'a bad weight' => [ "perstack_engines g { engine unix:/a weight=0; } "
                            . $loc, qr/invalid parameter "weight=0"/ ],
        'an unknown line' => [ "perstack_engines g { engine unix:/a; "
                               . "server x; } $loc",
                               qr/unknown or invalid "server"/ ],
    );

    for my $what (sort keys %bad) {
        my ($http, $like) = @{ $bad{$what} };
        my ($ok, $out) = nginx_conf_test($http);
        ok(!$ok, "$name - $what: refused");
        like($out, $like, "$name - $what: says why");
    }

    my ($ok, $out) = nginx_conf_test("$loc perstack_engines g { engine unix:/a "
                             . "weight=3 max=10; engine unix:/b; "
                             . "fail_timeout 30s; shared_workspaces on; }");
    ok($ok, "$name - a group named before its block is taken") or diag($out);
}


run_tests();

__DATA__

=== TEST 1: executions spread over the engines, to the fewest running
--- check: check_spread
--- timeout: 240
--- no_error_log
[alert]
[emerg]



=== TEST 2: a continued job goes to the engine that ran it
--- check: check_affinity
--- timeout: 240
--- no_error_log
[alert]
[emerg]



=== TEST 3: an engine killed mid-run
--- check: check_killed
--- timeout: 300
--- no_error_log
[alert]
[emerg]



=== TEST 4: the reaper sweeps every engine of every group
--- orphans
--- check: check_reaped
--- timeout: 90
--- no_error_log
[alert]
[emerg]



=== TEST 5: nginx -t refuses what cannot work
--- config
    location = /static { return 200; }
--- request
GET /static
--- check: check_conf
--- timeout: 60
