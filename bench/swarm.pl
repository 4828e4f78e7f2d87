#!/usr/bin/env perl
# What running an execution as a Docker Swarm service would give, measured
# on a single-node swarm of the engine (docs/scaling.md):
#
#   1. time to first event: from the create call to the runtime's first
#      stdout line, for a plain container (bench/engine-raw.pl first: the
#      module's create, attach, start) and for a one-shot service
#      (ReplicatedJob, restart none) whose logs are followed at once;
#      interleaved, N each, medians and p90;
#   2. the sandbox inside a task: the demo's "probe" expert run as a plain
#      container with the module's defaults and as a service with what the
#      service API of this engine can say of them, side by side: user,
#      capabilities, no-new-privileges, network interfaces, read-only root,
#      a writable /workspace, memory, CPU and pids limits;
#   3. whether the service's log stream starts at the first byte (its
#      first line is the runtime's first event, and every line comes), and
#      the exit code, from the task's status.
#
# The engine must not be in a swarm: this script makes one
# (POST /swarm/init, advertise 127.0.0.1) and leaves it (force) whatever
# happens, and removes its services.  Do not run it beside the test suite
# on the same engine.
#
# Usage: bench/swarm.pl [--quick] [-n N] [--out FILE]
#   --quick   N = 3;  -n N: iterations (default 10)
#   --out     the Markdown tables (default: stdout only)
# Environment: PERSTACK_DOCKER_SOCK (default /var/run/docker.sock),
# PERSTACK_DEMO_IMAGE (default perstack-demo:latest).

use strict;
use warnings;

use FindBin;
use Getopt::Long;
use JSON::PP ();
use Time::HiRes ();

my $sock = $ENV{PERSTACK_DOCKER_SOCK} || '/var/run/docker.sock';
my $image = $ENV{PERSTACK_DEMO_IMAGE} || 'perstack-demo:latest';
my ($quick, $n, $out) = (0, undef, undef);
GetOptions('quick' => \$quick, 'n=i' => \$n, 'out=s' => \$out)
    or die "usage: bench/swarm.pl [--quick] [-n N] [--out FILE]\n";
$n //= $quick ? 3 : 10;

my $json = JSON::PP->new->canonical;
my $run = sprintf 'swarm-%d-%d', time, $$;
my $api = '/v1.41';

# ---- the Engine API, through curl --------------------------------------------

sub api {
    my ($method, $path, $body, $timeout) = @_;
    my @cmd = ('curl', '-sS', '--max-time', $timeout // 60, '--unix-socket',
               $sock, '-X', $method, '-w', '\n%{http_code}');
    push @cmd, '-H', 'Content-Type: application/json',
               '--data-binary', $json->encode($body) if $body;
    push @cmd, "http://docker$api$path";
    open my $fh, '-|', @cmd or die "curl: $!\n";
    local $/;
    my $o = <$fh> // '';
    close $fh;
    $o =~ s/\n?(\d{3})\z// or return (0, $o);
    my $st = $1;
    my $obj = eval { $json->decode($o) };
    return ($st, $obj, $o);
}

sub uri { my $s = shift; $s =~ s/([^A-Za-z0-9\-._~])/sprintf '%%%02X', ord $1/ge; $s }

# ---- the swarm, made and left ---------------------------------------------------

my ($st, $info) = api('GET', '/info');
die "the engine at $sock does not answer\n" unless $st == 200;
die "the engine is in a swarm already ($info->{Swarm}{LocalNodeState}): "
    . "this script leaves the swarm it made, and would not leave yours\n"
    unless ($info->{Swarm}{LocalNodeState} // '') eq 'inactive';
my $engine_version = $info->{ServerVersion} // '?';

my ($made, $net_id) = (0, undef);
sub leave {
    return unless $made;
    for my $s (@{ (api('GET', '/services?filters='
                       . uri($json->encode({ label => ["bench.run=$run"] }))))[1]
                  || [] })
    {
        api('DELETE', "/services/$s->{ID}");
    }
    api('DELETE', "/networks/$net_id") if $net_id;
    api('POST', '/swarm/leave?force=1', undef, 120);
    $made = 0;
}
$SIG{INT} = $SIG{TERM} = sub { leave(); exit 1 };
END { my $s = $?; leave(); $? = $s }

my $t = Time::HiRes::time();
($st, my $r, my $raw) = api('POST', '/swarm/init',
                             { ListenAddr => '127.0.0.1:2377',
                               AdvertiseAddr => '127.0.0.1' }, 120);
die "swarm init: $st $raw\n" unless $st == 200;
$made = 1;
my $init_s = Time::HiRes::time() - $t;

# A service cannot have network "none" ("network none not found"), and
# without a network its task goes on the default bridge.  The nearest: an
# internal overlay network of its own, which reaches nothing outside.
($st, my $net, $raw) = api('POST', '/networks/create',
                           { Name => "perstack-$run", Driver => 'overlay',
                             Internal => JSON::PP::true,
                             Labels => { 'bench.run' => $run } });
die "network create: $st $raw\n" unless $st == 201 && $net->{Id};
$net_id = $net->{Id};

# ---- a service and its log --------------------------------------------------------

my @tmpfs = (
    { Type => 'tmpfs', Target => '/tmp',
      TmpfsOptions => { SizeBytes => 64 << 20, Mode => 01777 } },
    # no uid= for a service's tmpfs: 0700 would be root's alone
    { Type => 'tmpfs', Target => '/workspace',
      TmpfsOptions => { SizeBytes => 256 << 20, Mode => 01777 } },
);

sub cmd {
    my ($expert, $query) = @_;
    my $job = join '', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 24;
    return ['perstack', 'run', '--runtime', 'local',
            '--config', '/etc/perstack/perstack.toml', '--env-path',
            '/dev/null', '--job-id', $job, '--', $expert, $query];
}

# create a one-shot service; returns its id
sub service_create {
    my ($expert, $query) = @_;
    my $spec = {
        Name => "perstack-$run-" . int(rand 1e9),
        Labels => { 'bench.run' => $run },
        TaskTemplate => {
            ContainerSpec => {
                Image => $image, Command => cmd($expert, $query),
                User => '65534:65534', Dir => '/workspace',
                ReadOnly => JSON::PP::true, Init => JSON::PP::true,
                CapabilityDrop => ['ALL'], Mounts => \@tmpfs,
                StopGracePeriod => 5_000_000_000,
            },
            Resources => { Limits => { NanoCPUs => 1_000_000_000,
                                       MemoryBytes => 512 << 20,
                                       Pids => 128 } },
            RestartPolicy => { Condition => 'none' },
            Networks => [ { Target => $net_id } ],
        },
        Mode => { ReplicatedJob => { MaxConcurrent => 1,
                                     TotalCompletions => 1 } },
    };
    my ($st, $obj, $raw) = api('POST', '/services/create', $spec);
    die "service create: $st $raw\n" unless $st == 201 && $obj->{ID};
    return $obj->{ID};
}

# follows the service's log from the create call; returns the seconds to
# the first stdout line, and the lines
sub service_log {
    my ($id, $t0, $timeout, %o) = @_;
    my @cmd = ('curl', '-sSN', '--max-time', $timeout, '--unix-socket',
               $sock, "http://docker$api/services/$id/logs?follow="
               . ($o{follow} ? 1 : 0) . '&stdout=1&stderr=1');
    my $pid = open my $fh, '-|', @cmd or die "curl: $!\n";
    binmode $fh;
    my ($buf, $first, @lines, $line) = ('', undef);
    $line = '';
    while (1) {
        # the multiplexed stream: 8-byte headers
        while (length $buf < 8) {
            my $got = sysread $fh, $buf, 65536, length $buf;
            last unless $got;
        }
        last if length $buf < 8;
        my ($kind, $len) = unpack 'C x3 N', $buf;
        while (length $buf < 8 + $len) {
            my $got = sysread $fh, $buf, 65536, length $buf;
            last unless $got;
        }
        last if length $buf < 8 + $len;
        my $payload = substr $buf, 8, $len;
        substr($buf, 0, 8 + $len) = '';
        next unless $kind == 1;
        $line .= $payload;
        while ($line =~ s/\A([^\n]*)\n//) {
            $first //= Time::HiRes::time() - $t0;
            push @lines, $1;
        }
        last if $o{first} && defined $first;
    }
    kill 'TERM', $pid if $o{first};
    close $fh;
    return ($first, @lines);
}

# the task of a one-shot service, once it is over: its state and exit code
sub task_end {
    my ($id, $timeout) = @_;
    my $deadline = Time::HiRes::time() + $timeout;
    while (Time::HiRes::time() < $deadline) {
        my ($st, $tasks) = api('GET', '/tasks?filters='
                               . uri($json->encode({ service => [$id] })));
        for my $task (@{ $tasks || [] }) {
            my $s = $task->{Status} || {};
            return ($s->{State}, $s->{ContainerStatus}{ExitCode})
                if ($s->{State} // '') =~ /^(complete|failed|rejected|shutdown)$/;
        }
        Time::HiRes::sleep(0.1);
    }
    return ('timeout', undef);
}

sub plain_first {
    my ($expert, $query) = @_;
    my $o = `perl $FindBin::Bin/engine-raw.pl first --socket $sock --image $image $expert $query`;
    my ($ms) = $o =~ /^([0-9.]+)/;
    return defined $ms ? $ms / 1000 : undef;
}

# the runtime's lines of a plain container (engine-raw's docker-run does
# not keep them: docker run itself, with the module's flags)
sub plain_lines {
    my ($expert, $query) = @_;
    my @c = @{ cmd($expert, $query) };
    my @args = ('docker', '-H', "unix://$sock", 'run', '--rm',
                '--network', 'none', '--read-only', '--user', '65534:65534',
                '--workdir', '/workspace', '--cap-drop', 'ALL',
                '--security-opt', 'no-new-privileges', '--init',
                '--memory', '536870912', '--memory-swap', '536870912',
                '--cpus', '1', '--pids-limit', '128',
                '--tmpfs', '/tmp:rw,nosuid,nodev,noexec,size=64m',
                '--tmpfs', '/workspace:rw,nosuid,nodev,size=256m,uid=65534,'
                           . 'gid=65534,mode=0700',
                $image, @c);
    open my $fh, '-|', @args or die "docker: $!\n";
    my @l = map { chomp; $_ } <$fh>;
    close $fh;
    return @l;
}

sub median { my @s = sort { $a <=> $b } grep { defined } @_; @s ? $s[$#s / 2] : undef }
sub p90 { my @s = sort { $a <=> $b } grep { defined } @_; @s ? $s[int(0.9 * $#s + 0.5)] : undef }

# ---- 1. time to first event -------------------------------------------------------

my (@plain, @svc, @svc_end, @exit, $first_ok, $all_ok, $follow_s);
$first_ok = $all_ok = 0;
my @want = plain_lines('demo', 'hi');
my ($want_first) = map { eval { $json->decode($_)->{type} } } $want[0] // '';

for my $i (0 .. $n) {
    for my $subject ($i % 2 ? qw(plain service) : qw(service plain)) {
        if ($subject eq 'plain') {
            my $s = plain_first('demo', 'hi');
            push @plain, $s if $i;
            next;
        }
        my $t0 = Time::HiRes::time();
        my $id = service_create('demo', 'hi');
        my ($first) = service_log($id, $t0, 60, follow => 1, first => 1);
        my ($state, $code) = task_end($id, 120);
        my $end = Time::HiRes::time() - $t0;
        my (undef, @lines) = service_log($id, $t0, 60);
        if ($i == $n) {
            # once over: does a follow of the log end with the task?
            my $t1 = Time::HiRes::time();
            service_log($id, $t1, 15, follow => 1);
            $follow_s = Time::HiRes::time() - $t1;
        }
        api('DELETE', "/services/$id");
        next unless $i;
        push @svc, $first;
        push @svc_end, $end;
        push @exit, ($state // '?') . ' ' . ($code // '?');
        my ($type) = map { eval { $json->decode($_)->{type} } } $lines[0] // '';
        $first_ok++ if defined $type && defined $want_first && $type eq $want_first;
        $all_ok++ if @lines == @want;
    }
}

# ---- 2. the sandbox in a task ---------------------------------------------------------

my ($probe_plain) = grep { ($_->{type} // '') eq 'probe' }
                    map { eval { $json->decode($_) } || () } plain_lines('probe', 'hi');
my $id = service_create('probe', 'hi');
my ($pstate, $pcode) = task_end($id, 120);
my ($pf, @plines) = service_log($id, Time::HiRes::time(), 60);
api('DELETE', "/services/$id");
my ($probe_svc) = grep { ($_->{type} // '') eq 'probe' }
                  map { eval { $json->decode($_) } || () } @plines;
$probe_plain ||= {};
$probe_svc ||= {};

my @props = (
    [ 'user', sub { "$_[0]{uid}:$_[0]{gid}" } ],
    [ 'effective capabilities', sub { $_[0]{CapEff} } ],
    [ 'bounding capabilities', sub { $_[0]{CapBnd} } ],
    [ 'no-new-privileges', sub { $_[0]{NoNewPrivs} } ],
    [ 'network interfaces', sub { join ' ', @{ $_[0]{interfaces} || [] } } ],
    [ 'root writable', sub { $_[0]{writable}{'/'} ? 'yes' : 'no' } ],
    [ '/workspace writable', sub { $_[0]{writable}{'/workspace'} ? 'yes' : 'no' } ],
    [ '/workspace mount', sub { $_[0]{mounts}{'/workspace'}{options} // '?' } ],
    [ 'memory limit', sub { $_[0]{memory_limit} } ],
    [ 'pids limit', sub { $_[0]{pids_max} } ],
    [ 'CPU quota/period', sub { ($_[0]{cpu}{quota} // '?') . '/' . ($_[0]{cpu}{period} // '?') } ],
    [ 'the runtime is PID 1 (no init)', sub { $_[0]{pid1} ? 'yes' : 'no' } ],
);

# ---- the tables ------------------------------------------------------------------------------

my $f = sub { defined $_[0] ? sprintf('%.0f', $_[0] * 1000) : '-' };
my $ratio = sub { defined $_[0] && $_[1] ? sprintf('%.2f', $_[0] / $_[1]) : '-' };
my @md;
push @md, '| figure | service | plain container | ratio | N |', '|---|---|---|---|---|';
push @md, sprintf('| create to first event, median (ms) | %s | %s | %s | %d |',
                  $f->(median(@svc)), $f->(median(@plain)),
                  $ratio->(median(@svc), median(@plain)), $n);
push @md, sprintf('| create to first event, p90 (ms) | %s | %s | %s | %d |',
                  $f->(p90(@svc)), $f->(p90(@plain)),
                  $ratio->(p90(@svc), p90(@plain)), $n);
push @md, sprintf('| create to the task\'s end, median (ms) | %s | - | - | %d |',
                  $f->(median(@svc_end)), $n);
push @md, sprintf('| log: first line is the runtime\'s first event | %d of %d | - | - | %d |',
                  $first_ok, $n, $n);
push @md, sprintf('| log: every line (%d) came | %d of %d | - | - | %d |',
                  scalar @want, $all_ok, $n, $n);
push @md, sprintf('| log followed after the task completed: ended after (s) | %s | - | - | 1 |',
                  defined $follow_s ? ($follow_s >= 14.5 ? 'did not end in 15'
                                       : sprintf '%.1f', $follow_s) : '-');
my %ex; $ex{$_}++ for @exit;
push @md, sprintf('| task state and exit code | %s | - | - | %d |',
                  join(', ', map { "$_ ($ex{$_})" } sort keys %ex), $n);
push @md, '';
push @md, '| inside the task | service | plain container (the module\'s defaults) | holds |', '|---|---|---|---|';
for my $p (@props) {
    my ($name, $get) = @$p;
    my $a = eval { $get->($probe_svc) } // '?';
    my $b = eval { $get->($probe_plain) } // '?';
    push @md, "| $name | $a | $b | " . ($a eq $b ? 'yes' : 'no') . ' |';
}
push @md, '', "Engine $engine_version, API $api; swarm init took "
    . sprintf('%.1f', $init_s) . " s; the probe's task ended $pstate, "
    . "exit code " . ($pcode // '?') . ".  Command: bench/swarm.pl"
    . ($quick ? ' --quick' : " -n $n") . '.';

my $md = join("\n", @md) . "\n";
print $md;
if ($out) {
    open my $fh, '>', $out or die "$out: $!\n";
    print $fh $md;
    close $fh;
}
