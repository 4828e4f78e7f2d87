# The reaper: containers left behind by a worker that is gone.
#
#   - the labels the reaper reads: io.perstack.pid (the worker),
#     io.perstack.master (its master) and io.perstack.host ($hostname);
#   - a worker killed with SIGKILL mid-run: the worker started in its place
#     removes the container, and logs it at notice;
#   - nginx killed (master and worker, SIGKILL) mid-run: the container stays,
#     nobody is left to remove it; the next nginx, started from the same
#     configuration, removes it;
#   - what is not ours is never touched: containers labelled with a worker
#     that is alive, with a master that is alive and not ours, with another
#     host, or without the labels at all, stay through a reaper pass that
#     is proven to have run (it removed a real orphan);
#   - master_process off: io.perstack.master is the process itself.
#
# Every container of this file, nginx's and the decoys, has the label
# test.reaper.run=<unique to this run>: another run on the same Docker
# Engine neither counts nor is counted, and the END block removes whatever
# of ours is left.  nginx runs with a host name unique to this run (see
# $Host below): the orphan of TEST 2, whose master is gone, would
# otherwise be any nginx's on this machine, and another run's reaper could
# take it before ours (seen when two runs of this file overlap).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;
use Perstack;
use File::Temp ();
use POSIX ();
use Sys::Hostname ();
use Time::HiRes ();

master_on();
workers(1);

our $RunId = unique_name('reaper');
our $RunLabel = "test.reaper.run=$RunId";
$ENV{TEST_NGINX_REAPER_RUN} = $RunId;

# nginx runs with a host name of its own, in a UTS namespace of its own
# (unshare --uts): its containers are labelled io.perstack.host=<that
# name>, so that no other nginx on this machine (host name the machine's)
# takes this file's orphans, nor this file's nginx theirs.  Without unshare
# (not root), nginx has the machine's host name, and the orphan of TEST 2
# may be taken by a concurrent run's nginx.
our $Host = lc Sys::Hostname::hostname();
our $PrivateHost = 0;

if (system('unshare --uts true >/dev/null 2>&1') == 0) {
    my $name = lc unique_name('reaper-host');
    my $dir = File::Temp::tempdir('perstack-reaper-XXXXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
    my $wrapper = "$dir/nginx";
    my $real = $Test::Nginx::Util::NginxBinary;

    open my $fh, '>', $wrapper or die "$wrapper: $!\n";
    print $fh "#!/bin/sh\n",
              "exec unshare --uts /bin/sh -c "
              . "'hostname \"\$1\" || exit 1; shift; exec \"\$@\"' "
              . "sh '$name' '$real' \"\$@\"\n";
    close $fh;
    chmod 0755, $wrapper or die "chmod $wrapper: $!\n";

    $Test::Nginx::Util::NginxBinary = $wrapper;
    $Host = $name;
    $PrivateHost = 1;
}

my $config = <<'_EOC_';
    perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    perstack_label test.reaper.run $TEST_NGINX_REAPER_RUN;

    location = /run {
        perstack_execute;
    }

    location = /static {
        return 200 "static\n";
    }

    location = /hostname {
        return 200 $hostname;
    }

    location = /metrics {
        perstack_metrics;
    }
_EOC_

# the decoys of the block that has "--- decoys", by their letter
our %Decoy;
our %DecoyPid;

add_block_preprocessor(sub {
    my $block = shift;

    # "--- master_off": master_process off for this block
    master_process_enabled(defined $block->master_off ? 0 : 1);

    $block->set_value('config', $config) unless defined $block->config;
    default_request($block, '/run');

    # before nginx starts: its worker's first reaper pass sees them as well
    create_decoys() if defined $block->decoys;
});

END {
    local $?;
    remove_container($_->{Id}) for eval { label_containers($RunLabel) };
}


# ---- helpers -------------------------------------------------------------------

# The reaper's warnings.  With the machine's host name, a 409 on removing
# is left out: another run's nginx was removing the same orphan then.
sub reaper_warnings {
    return grep { $PrivateHost
                  || !/could not remove a container: curl 0, status 409$/ }
           error_lines(qr/\[warn\] .*perstack: the reaper could not/);
}

sub removing_re {
    my ($id) = @_;
    my $short = substr $id, 0, 12;
    return qr/\[notice\] (\d+)#\d+: perstack: removing container \Q$short\E, left behind by a worker that is gone$/;
}

# A pid no process has: a child that exited and was waited for.
sub dead_pid {
    my $pid = fork;
    die "fork: $!\n" unless defined $pid;
    POSIX::_exit(0) if $pid == 0;
    waitpid($pid, 0);
    die "pid $pid is still there\n" unless gone($pid);
    return $pid;
}

# Poll (bounded) until nginx_pids() gives a master other than $old, with
# one worker.
sub wait_new_nginx {
    my ($old, $timeout) = @_;
    my $deadline = Time::HiRes::time() + $timeout;

    while (Time::HiRes::time() < $deadline) {
        my ($m, @ws) = nginx_pids();
        return ($m, @ws) if $m && $m != $old && !gone($m) && @ws == 1;
        Time::HiRes::sleep(0.05);
    }

    return ();
}

sub check_labels {
    my ($name, $labels, $pid, $master) = @_;

    is($labels->{'io.perstack.managed'}, '1',
       "$name - label io.perstack.managed=1");
    is($labels->{'io.perstack.pid'}, $pid,
       "$name - label io.perstack.pid=$pid");
    is($labels->{'io.perstack.master'}, $master,
       "$name - label io.perstack.master=$master");
    is($labels->{'io.perstack.host'}, $Host,
       "$name - label io.perstack.host=$Host (the hostname)");

    my $r = http_request(method => 'GET', path => '/hostname', timeout => 5);
    is($r->{body}, $labels->{'io.perstack.host'},
       "$name - io.perstack.host is nginx's \$hostname");
}

# Kill the one worker while a run streams; returns the new worker and the
# orphan's id once the new worker removed it.
sub orphan_removed_after_worker_kill {
    my ($name) = @_;

    my ($master, @workers) = nginx_pids();
    is(scalar @workers, 1, "$name - one worker") or return;
    my $w = $workers[0];

    my ($c, $cid, $labels) = start_slow($name, 30,
                                        'test.reaper.run' => $RunId)
        or return;
    check_labels($name, $labels, $w, $master);

    ok(kill('KILL', $w), "$name - the worker $w is killed (SIGKILL)");

    my $new = wait_new_worker($master, 10, $w);
    ok($new, "$name - the master started a new worker ("
             . ($new // 'none') . ")") or return;
    ok(gone($w), "$name - the old worker $w is gone");

    ok($c->drain(5), "$name - the killed worker's client is cut off");
    $c->close;
    ok(!$c->has_event('perstack.end'), "$name - the run had no perstack.end");

    my $took = wait_container_gone($cid, 10);
    ok(defined $took, "$name - the orphaned container is removed ("
                      . sprintf('%.2f', $took // -1) . " s after the new "
                      . "worker was seen)");

    my $re = removing_re($cid);
    ok(wait_log($re, 1, 5), "$name - the removal is logged");
    my @lines = error_lines($re);
    is(scalar @lines, 1, "$name - once");
    my ($by) = ($lines[0] // '') =~ $re;
    is($by, $new, "$name - by the new worker");

    my @alerts = error_lines(qr/\[alert\]/);
    is(scalar(grep { !/worker process $w exited on signal 9/ } @alerts), 0,
       "$name - no [alert] but the worker's death")
        or diag(join "\n", @alerts);

    my @warn = reaper_warnings();
    is(scalar @warn, 0, "$name - no reaper warning") or diag(join "\n", @warn);

    return ($new, $cid);
}


# ---- a worker killed -----------------------------------------------------------

sub check_killed_worker {
    my ($block) = @_;
    my $name = $block->name;

    my ($new) = orphan_removed_after_worker_kill($name) or return;

    # the new worker serves
    my $r = http_request(method => 'GET', path => '/static', timeout => 5);
    is($r->{status}, 200, "$name - the new worker serves requests");

    is(scalar label_containers($RunLabel), 0,
       "$name - no container of this run is left");

    # perstack_metrics: the reaper's removal; the dead worker's execution
    # runs no more, and never ended
    my %m = %{ scalar metrics() };
    is($m{perstack_reaper_removed_total}, 1,
       "$name - perstack_reaper_removed_total 1");
    is($m{perstack_executions_started_total}, 1,
       "$name - perstack_executions_started_total 1");
    is($m{perstack_executions_running}, 0,
       "$name - perstack_executions_running 0: its worker is gone");
}


# ---- nginx killed --------------------------------------------------------------

sub check_killed_nginx {
    my ($block) = @_;
    my $name = $block->name;

    my ($master, @workers) = nginx_pids();
    is(scalar @workers, 1, "$name - one worker") or return;
    my $w = $workers[0];

    my ($c, $cid, $labels) = start_slow($name, 30,
                                        'test.reaper.run' => $RunId)
        or return;
    check_labels($name, $labels, $w, $master);

    ok(kill('KILL', $master), "$name - the master $master is killed");
    ok(kill('KILL', $w), "$name - the worker $w is killed");

    ok($c->drain(5), "$name - the client is cut off");
    $c->close;

    my $info = container_info($cid);
    ok($info && $info->{State}{Status} eq 'running',
       "$name - the container is left running: nobody removes it");

    # Until the processes are reaped by init they are zombies, which
    # kill(pid, 0) finds: no reaper would take the container yet.
    ok(wait_gone(10, $master, $w),
       "$name - the old master and worker are gone (reaped)") or return;

    ok(container_info($cid), "$name - the container is still there");

    # the next nginx, from the same configuration (as Test::Nginx starts
    # it: it writes the same pid file, so Test::Nginx stops it later)
    my $root = $Test::Nginx::Util::ServRoot;
    my $cmd = "$Test::Nginx::Util::NginxBinary -e $root/logs/error.log "
              . "-p $root/ -c $Test::Nginx::Util::ConfFile > /dev/null";
    is(system($cmd), 0, "$name - nginx starts again");

    my ($m2, $w2) = wait_new_nginx($master, 10);
    ok($m2, "$name - a new master (" . ($m2 // 'none') . ") with a worker ("
            . ($w2 // 'none') . ")") or return;

    my $took = wait_container_gone($cid, 10);
    ok(defined $took, "$name - the new nginx removes the container ("
                      . sprintf('%.2f', $took // -1) . " s)");

    my $re = removing_re($cid);
    ok(wait_log($re, 1, 5), "$name - the removal is logged");
    my @lines = error_lines($re);
    is(scalar @lines, 1, "$name - once");
    my ($by) = ($lines[0] // '') =~ $re;
    is($by, $w2, "$name - by the new nginx's worker");

    my @warn = reaper_warnings();
    is(scalar @warn, 0, "$name - no reaper warning") or diag(join "\n", @warn);

    my $r = http_request(method => 'GET', path => '/static', timeout => 5);
    is($r->{status}, 200, "$name - the new nginx serves requests");

    is(scalar label_containers($RunLabel), 0,
       "$name - no container of this run is left");
}


# ---- what is not ours ----------------------------------------------------------

sub create_decoy {
    my ($letter, %labels) = @_;

    my $body = json_encode({
        Image => $Image,
        Cmd => ['perstack', 'run', '--', 'slow', '60'],
        # label values are strings (pids too)
        Labels => { 'io.perstack.managed' => '1',
                    'test.reaper.run' => $RunId,
                    'test.reaper.decoy' => $letter,
                    map { $_ => "$labels{$_}" } keys %labels },
        HostConfig => { NetworkMode => 'none', Init => JSON::PP::true() },
    });

    my $tmp = File::Temp->new(SUFFIX => '.json');
    print $tmp $body;
    close $tmp;

    my ($st, $obj, $raw) = Perstack::docker_json('POST', '/containers/create',
        body_file => $tmp->filename, content_type => 'application/json',
        query => { name => "perstack-reaper-decoy-$RunId-$letter" });
    die "cannot create decoy $letter: $st $raw\n"
        unless $st == 201 && ref $obj eq 'HASH' && $obj->{Id};

    my ($sst, $sbody) = docker_api('POST', "/containers/$obj->{Id}/start");
    die "cannot start decoy $letter: $sst $sbody\n" unless $sst == 204;

    return $obj->{Id};
}

sub create_decoys {
    my $dead_worker = dead_pid();
    my $dead_master = dead_pid();

    %DecoyPid = (live => $$, dead_worker => $dead_worker,
                 dead_master => $dead_master);

    %Decoy = (
        # a worker that is alive (this test), its master gone
        a => create_decoy('a', 'io.perstack.pid' => $$,
                          'io.perstack.master' => $dead_master,
                          'io.perstack.host' => $Host),
        # the worker gone, its master alive and not ours (this test)
        b => create_decoy('b', 'io.perstack.pid' => $dead_worker,
                          'io.perstack.master' => $$,
                          'io.perstack.host' => $Host),
        # both gone, but on another host
        c => create_decoy('c', 'io.perstack.pid' => $dead_worker,
                          'io.perstack.master' => $dead_master,
                          'io.perstack.host' => 'some-other-host'),
        # io.perstack.managed=1 and nothing else of ours
        d => create_decoy('d'),
    );
}

sub check_decoys {
    my ($block) = @_;
    my $name = $block->name;

    is(scalar keys %Decoy, 4, "$name - four decoys were created") or return;

    for my $l (sort keys %Decoy) {
        my $info = container_info($Decoy{$l});
        is($info ? $info->{State}{Status} : 'missing', 'running',
           "$name - decoy $l is running before the pass");
    }

    # a pass proven to have run after the decoys were there: the worker
    # started in place of a killed one removes that worker's container
    orphan_removed_after_worker_kill($name) or return;

    # the premises still hold
    ok(!gone($DecoyPid{live}), "$name - pid $DecoyPid{live} (this test) "
                               . "is alive");
    ok(gone($DecoyPid{dead_worker}) && gone($DecoyPid{dead_master}),
       "$name - pids $DecoyPid{dead_worker} and $DecoyPid{dead_master} "
       . "are still gone");

    my %what = (
        a => 'its worker is alive',
        b => 'its master is alive and not ours',
        c => 'another host',
        d => 'no pid, master or host label',
    );

    for my $l (sort keys %Decoy) {
        my $info = container_info($Decoy{$l});
        is($info ? $info->{State}{Status} : 'missing', 'running',
           "$name - decoy $l ($what{$l}) is still there, running");
        is(scalar error_lines(removing_re($Decoy{$l})), 0,
           "$name - no removal of decoy $l is logged");
    }

    for my $l (sort keys %Decoy) {
        remove_container($Decoy{$l});
        ok(defined wait_container_gone($Decoy{$l}, 10),
           "$name - decoy $l is removed by the test");
    }

    %Decoy = ();

    is(scalar label_containers($RunLabel), 0,
       "$name - no container of this run is left");
}


# ---- master_process off --------------------------------------------------------

sub check_single_process {
    my ($block) = @_;
    my $name = $block->name;

    my ($pid, @workers) = nginx_pids();
    ok($pid, "$name - nginx runs (" . ($pid // "none") . ")") or return;
    is(scalar @workers, 0, "$name - one process, no workers");

    my ($c, $cid, $labels) = start_slow($name, 30,
                                        'test.reaper.run' => $RunId)
        or return;
    check_labels($name, $labels, $pid, $pid);

    $c->close;
    ok(defined wait_container_gone($cid, 10),
       "$name - the container is removed when the client goes away");

    is(scalar error_lines(removing_re($cid)), 0,
       "$name - it was not the reaper that removed it");
}

run_tests();

__DATA__

=== TEST 1: a worker killed mid-run: its replacement removes the container
--- check: check_killed_worker
--- timeout: 40
--- no_error_log
[crit]
[emerg]



=== TEST 2: nginx killed mid-run (master and worker): the next nginx removes the container
--- check: check_killed_nginx
--- timeout: 40



=== TEST 3: a reaper pass leaves alone what is not ours
--- decoys
--- check: check_decoys
--- timeout: 40
--- no_error_log
[crit]
[emerg]



=== TEST 4: master_process off: io.perstack.master is the process itself
--- master_off
--- check: check_single_process
--- timeout: 30
