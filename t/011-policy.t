# The sandbox: the settings every container gets (perstack_user,
# perstack_network, perstack_read_only, perstack_tmpfs,
# perstack_workspace_size, perstack_memory, perstack_swap, perstack_cpus,
# perstack_pids_limit, perstack_cap_add, perstack_no_new_privileges,
# perstack_init, perstack_runtime, perstack_bind, perstack_label,
# perstack_env), proven on real containers from both sides:
#
#   - the Engine API: a "slow 2" run is inspected while it runs (found by
#     its io.perstack.execution label), and its configuration reduced to
#     the sandbox's settings;
#   - the inside: the demo's "probe" expert reports its ids, capabilities,
#     no_new_privs, where it can write, its interfaces, environment,
#     mounts and cgroup limits.
#
# Each location sets one directive (or two, for root); both views must be
# the locked-down defaults with exactly that setting changed.  Then the
# limits at work (memhog under perstack_memory, forkbomb under
# perstack_pids_limit), an unknown perstack_runtime, and the directives'
# refusals at configuration time.
#
# nginx starts with PERSTACK_TEST_SECRET in its environment (and "env
# PERSTACK_TEST_SECRET;" keeps it there), which no container may see.  The
# test creates its own internal Docker network and removes it at the end.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;
use Perstack;
use File::Temp ();
use JSON::PP ();
use POSIX ();
use Time::HiRes ();


# ---- fixtures ----------------------------------------------------------------

# The demo image must know the probe, memhog and forkbomb experts (another
# run on the same engine may have built perstack-demo:latest from an older
# tree).
if (`command -v docker 2>/dev/null`) {
    open my $fh, '-|', 'docker', 'run', '--rm', '--network', 'none',
         '-e', 'PERSTACK_DEMO_DELAY_MS=0', $Image,
         'perstack', 'run', '--runtime', 'local', '--', 'probe', '/'
        or die "docker run: $!\n";
    my $out = do { local $/; <$fh> } // '';
    close $fh;

    if ($out !~ /^\{"type":"probe",/m) {
        fail("the demo image $Image has the probe expert: rebuild it "
             . "(scripts/build-demo-image.sh)");
        exit 1;
    }
}

our $Secret = sprintf 'perstack-secret-%x-%08x', $$, int rand 0xffffffff;
$ENV{PERSTACK_TEST_SECRET} = $Secret;

# a directory to bind: writable by anyone, so that only a read-only mount
# keeps the container from writing to it
our $BindDir = make_dir('bind');
chmod 0777, $BindDir or die "chmod $BindDir: $!\n";
{
    open my $fh, '>', "$BindDir/hello.txt" or die "$BindDir/hello.txt: $!\n";
    print $fh "hello from the host\n";
    close $fh;
    chmod 0644, "$BindDir/hello.txt";
}
$ENV{TEST_NGINX_PERSTACK_BIND} = $BindDir;

# an internal network of our own
our $Net = unique_name('perstack-test-net');
our $NetCreated;
{
    my $tmp = File::Temp->new(SUFFIX => '.json');
    print $tmp json_encode({ Name => $Net, Internal => JSON::PP::true,
                             CheckDuplicate => JSON::PP::true,
                             Labels => { 'io.perstack.test' => '1' } });
    close $tmp;

    my ($st, $body) = Perstack::docker_api('POST', '/networks/create',
        body_file => $tmp->filename, content_type => 'application/json');
    die "cannot create the Docker network $Net: $st $body\n"
        unless $st == 201;
    $NetCreated = 1;
}
$ENV{TEST_NGINX_PERSTACK_NET} = $Net;

END {
    if ($NetCreated) {
        # containers are gone after every block; give removals a moment
        for (1 .. 50) {
            my ($st) = Perstack::docker_api('DELETE', "/networks/$Net");
            last if $st == 204 || $st == 404;
            Time::HiRes::sleep(0.2);
        }
    }
}

# the engine's default OCI runtime and the image's own labels
our ($DefaultRuntime, %ImageLabels);
{
    my ($st, $body) = Perstack::docker_api('GET', '/info');
    die "GET /info: $st\n" unless $st == 200;
    $DefaultRuntime = json_decode($body)->{DefaultRuntime} // 'runc';

    ($st, $body) = Perstack::docker_api('GET', "/images/$Image/json");
    die "GET /images/$Image/json: $st\n" unless $st == 200;
    %ImageLabels = %{ json_decode($body)->{Config}{Labels} || {} };
}

# what every probe run asks about
our @ProbePaths = qw(/scratch /secrets /secrets/hello.txt);
our $ProbeQuery = join '+', @ProbePaths;


my $config = <<'_EOC_';
    perstack_image $TEST_NGINX_PERSTACK_IMAGE;

    location = /run      { perstack_execute; }

    location = /user     { perstack_execute; perstack_user 1234:5678; }
    location = /uid      { perstack_execute; perstack_user 4321; }
    location = /rw       { perstack_execute; perstack_read_only off; }
    location = /tmpfs    { perstack_execute;
                           perstack_tmpfs /scratch rw,size=8m; }
    location = /wsize    { perstack_execute; perstack_workspace_size 32m; }
    location = /mem      { perstack_execute; perstack_memory 64m; }
    location = /swap     { perstack_execute; perstack_swap 32m; }
    location = /cpus     { perstack_execute; perstack_cpus 0.5; }
    location = /pids     { perstack_execute; perstack_pids_limit 16; }
    location = /cap      { perstack_execute;
                           perstack_cap_add NET_BIND_SERVICE; }
    location = /nnp      { perstack_execute;
                           perstack_no_new_privileges off; }
    location = /noinit   { perstack_execute; perstack_init off; }
    location = /net      { perstack_execute;
                           perstack_network $TEST_NGINX_PERSTACK_NET; }
    location = /bind     { perstack_execute;
                           perstack_bind $TEST_NGINX_PERSTACK_BIND /secrets; }
    location = /label    { perstack_execute; perstack_label team agents; }
    location = /env      { perstack_execute;
                           perstack_env FOO bar;
                           perstack_env FROM_ARG $arg_x; }
    location = /runtime  { perstack_execute;
                           perstack_runtime perstack-no-such-runtime; }

    location = /noop {
        return 204;
    }
_EOC_

# root only where a block asks for it: nginx warns about it at every start
my $root_config = <<'_EOC_';
    location = /rw-root  { perstack_execute; perstack_read_only off;
                           perstack_user 0:0; }
    location = /cap-root { perstack_execute;
                           perstack_cap_add NET_BIND_SERVICE;
                           perstack_user 0:0; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->config) {
        my $variant = $block->variant // '';
        $block->set_value('config', $config . ($variant =~ /-root\s*$/
                                               ? $root_config : ''));
    }

    # Perstack's preprocessor (added before this one) has put load_module
    # there already
    $block->set_value('main_config', ($block->main_config // '')
                                     . "env PERSTACK_TEST_SECRET;\n");

    $block->set_value('request', "GET /noop\n")
        unless defined $block->request;
    $block->set_value('error_code', 204)
        unless defined $block->error_code || defined $block->must_die;
});


# ---- the expected settings ---------------------------------------------------

use constant DELETE => \'delete';

sub deep_copy {
    my ($v) = @_;
    return ref $v eq 'HASH' ? { map { $_ => deep_copy($v->{$_}) } keys %$v }
         : ref $v eq 'ARRAY' ? [ map { deep_copy($_) } @$v ]
         : $v;
}

# $base with $over laid on it: hashes merge, DELETE removes, the rest
# replaces
sub overlay {
    my ($base, $over) = @_;
    my $r = deep_copy($base);

    for my $k (keys %$over) {
        my $v = $over->{$k};

        if (ref $v && $v == DELETE) {
            delete $r->{$k};

        } elsif (ref $v eq 'HASH' && ref $r->{$k} eq 'HASH') {
            $r->{$k} = overlay($r->{$k}, $v);

        } else {
            $r->{$k} = deep_copy($v);
        }
    }

    return $r;
}

sub ws_tmpfs {
    my ($size, $uid, $gid) = @_;
    return "rw,nosuid,nodev,size=$size,uid=$uid,gid=$gid,mode=0700";
}

# The container's sandbox as the Engine API has it, by default.
our %HostDefault = (
    User => '65534:65534',
    NetworkMode => 'none',
    ReadonlyRootfs => 1,
    Tmpfs => { '/tmp' => 'rw,nosuid,nodev,noexec,size=64m',
               '/workspace' => ws_tmpfs('256m', 65534, 65534) },
    Mounts => [],
    Binds => [],
    Memory => 512 * 1024 * 1024,
    MemorySwap => 512 * 1024 * 1024,
    NanoCpus => 1_000_000_000,
    PidsLimit => 128,
    CapAdd => [],
    CapDrop => ['ALL'],
    SecurityOpt => ['no-new-privileges'],
    Privileged => 0,
    Init => 1,
    Runtime => $DefaultRuntime,
    LogType => 'none',
    Env => ['PATH=/usr/local/bin'],
    Labels => { 'io.perstack.managed' => '1', 'io.perstack.expert' => 'slow' },
);

# What the probe reports, by default (see normalize_probe()).
our %InsideDefault = (
    uid => 65534, gid => 65534, groups => [65534],
    pid1 => 0,
    CapEff => '0000000000000000',
    CapPrm => '0000000000000000',
    CapBnd => '0000000000000000',
    NoNewPrivs => 1,
    writable => { '/' => 0, '/tmp' => 1, '/workspace' => 1 },
    write_errors => { '/' => POSIX::strerror(POSIX::EROFS()) },
    interfaces => ['lo'],
    env => { PATH => '/usr/local/bin', HOME => '/' },
    mounts => {
        '/' => { fstype => 'overlay', options => 'ro' },
        '/tmp' => { fstype => 'tmpfs',
                    options => 'rw,nosuid,nodev,noexec,size=65536k' },
        '/workspace' => { fstype => 'tmpfs',
                          options => 'rw,nosuid,nodev,noexec,size=262144k,'
                                     . 'mode=700,uid=65534,gid=65534' },
        '/scratch' => undef,
        '/secrets' => undef,
        '/secrets/hello.txt' => undef,
    },
    memory_limit => 512 * 1024 * 1024,
    memory_swap_limit => 512 * 1024 * 1024,
    pids_max => 128,
    cpu => { quota => 100000, period => 100000 },
    read => { '/scratch' => 0, '/secrets' => 0, '/secrets/hello.txt' => 0 },
);

my $EACCES = POSIX::strerror(POSIX::EACCES());
my $ENOENT = POSIX::strerror(POSIX::ENOENT());
my $EROFS = POSIX::strerror(POSIX::EROFS());

# Each location: what it changes, on the Engine's side and inside.
our %Variants = (
    '/run' => [ {}, {} ],

    '/user' => [
        { User => '1234:5678',
          Tmpfs => { '/workspace' => ws_tmpfs('256m', 1234, 5678) } },
        { uid => 1234, gid => 5678, groups => [5678],
          mounts => { '/workspace' => { fstype => 'tmpfs',
              options => 'rw,nosuid,nodev,noexec,size=262144k,mode=700,'
                         . 'uid=1234,gid=5678' } } },
    ],

    # the gid is the uid when not given
    '/uid' => [
        { User => '4321:4321',
          Tmpfs => { '/workspace' => ws_tmpfs('256m', 4321, 4321) } },
        { uid => 4321, gid => 4321, groups => [4321],
          mounts => { '/workspace' => { fstype => 'tmpfs',
              options => 'rw,nosuid,nodev,noexec,size=262144k,mode=700,'
                         . 'uid=4321,gid=4321' } } },
    ],

    # a writable root, but the image's / belongs to root: nobody still
    # cannot write there (EACCES now, not EROFS)
    '/rw' => [
        { ReadonlyRootfs => 0 },
        { mounts => { '/' => { fstype => 'overlay', options => 'rw' } },
          write_errors => { '/' => $EACCES } },
    ],

    # ... and root can
    '/rw-root' => [
        { ReadonlyRootfs => 0, User => '0:0',
          Tmpfs => { '/workspace' => ws_tmpfs('256m', 0, 0) } },
        { uid => 0, gid => 0, groups => [0],
          writable => { '/' => 1 }, write_errors => { '/' => DELETE },
          mounts => { '/' => { fstype => 'overlay', options => 'rw' },
                      '/workspace' => { fstype => 'tmpfs',
                          options => 'rw,nosuid,nodev,noexec,size=262144k,'
                                     . 'mode=700' } } },
    ],

    # the list replaces the default: no /tmp at all (the image has none)
    '/tmpfs' => [
        { Tmpfs => { '/tmp' => DELETE, '/scratch' => 'rw,size=8m' } },
        { writable => { '/tmp' => 0, '/scratch' => 1 },
          write_errors => { '/tmp' => $ENOENT },
          mounts => { '/tmp' => undef,
                      '/scratch' => { fstype => 'tmpfs',
                          options => 'rw,nosuid,nodev,noexec,size=8192k' } },
          read => { '/scratch' => 1 } },
    ],

    '/wsize' => [
        { Tmpfs => { '/workspace' => ws_tmpfs('32m', 65534, 65534) } },
        { mounts => { '/workspace' => { fstype => 'tmpfs',
              options => 'rw,nosuid,nodev,noexec,size=32768k,mode=700,'
                         . 'uid=65534,gid=65534' } } },
    ],

    '/mem' => [
        { Memory => 64 * 1024 * 1024, MemorySwap => 64 * 1024 * 1024 },
        { memory_limit => 64 * 1024 * 1024,
          memory_swap_limit => 64 * 1024 * 1024 },
    ],

    '/swap' => [
        { MemorySwap => (512 + 32) * 1024 * 1024 },
        { memory_swap_limit => (512 + 32) * 1024 * 1024 },
    ],

    '/cpus' => [
        { NanoCpus => 500_000_000 },
        { cpu => { quota => 50000, period => 100000 } },
    ],

    '/pids' => [
        { PidsLimit => 16 },
        { pids_max => 16 },
    ],

    # Docker gives a user other than root no ambient capabilities: for
    # nobody the capability only reaches the bounding set
    '/cap' => [
        { CapAdd => ['NET_BIND_SERVICE'] },
        { CapBnd => '0000000000000400' },
    ],

    # root has it in effect
    '/cap-root' => [
        { CapAdd => ['NET_BIND_SERVICE'], User => '0:0',
          Tmpfs => { '/workspace' => ws_tmpfs('256m', 0, 0) } },
        { uid => 0, gid => 0, groups => [0],
          CapEff => '0000000000000400', CapPrm => '0000000000000400',
          CapBnd => '0000000000000400',
          mounts => { '/workspace' => { fstype => 'tmpfs',
              options => 'rw,nosuid,nodev,noexec,size=262144k,mode=700' } } },
    ],

    '/nnp' => [
        { SecurityOpt => [] },
        { NoNewPrivs => 0 },
    ],

    '/noinit' => [
        { Init => 0 },
        { pid1 => 1 },
    ],

    '/net' => [
        { NetworkMode => $Net },
        { interfaces => ['eth0', 'lo'] },
    ],

    '/bind' => [
        { Mounts => [ { Type => 'bind', Source => $BindDir,
                        Target => '/secrets', ReadOnly => 1 } ] },
        { writable => { '/secrets' => 0 },
          write_errors => { '/secrets' => $EROFS },
          mounts => { '/secrets' => { options => 'ro' } },
          read => { '/secrets' => 1, '/secrets/hello.txt' => 1 } },
    ],

    '/label' => [
        { Labels => { team => 'agents' } },
        {},
    ],

    # (FROM_ARG: the request's own value, set by the caller)
    '/env' => [
        { Env => ['FOO=bar', 'FROM_ARG=@X@', 'PATH=/usr/local/bin'] },
        { env => { FOO => 'bar', FROM_ARG => '@X@' } },
    ],
);


# ---- the Engine's view -------------------------------------------------------

sub bool01 {
    my ($v) = @_;
    return undef unless defined $v;
    return $v ? 1 : 0;
}

# The sandbox's settings of an inspected container.
sub host_settings {
    my ($info, $xid) = @_;
    my $hc = $info->{HostConfig} || {};
    my $cfg = $info->{Config} || {};

    my %labels = %{ $cfg->{Labels} || {} };

    # the image's own, and those that name this run
    for my $k (keys %ImageLabels) {
        delete $labels{$k}
            if defined $labels{$k} && $labels{$k} eq $ImageLabels{$k};
    }
    delete @labels{qw(io.perstack.execution io.perstack.pid io.perstack.job
                      io.perstack.master io.perstack.host)};

    return {
        User => $cfg->{User},
        NetworkMode => $hc->{NetworkMode},
        ReadonlyRootfs => bool01($hc->{ReadonlyRootfs}),
        Tmpfs => $hc->{Tmpfs} || {},
        Mounts => [ map { { Type => $_->{Type}, Source => $_->{Source},
                            Target => $_->{Target},
                            ReadOnly => bool01($_->{ReadOnly}) } }
                    @{ $hc->{Mounts} || [] } ],
        Binds => $hc->{Binds} || [],
        Memory => $hc->{Memory},
        MemorySwap => $hc->{MemorySwap},
        NanoCpus => $hc->{NanoCpus},
        PidsLimit => $hc->{PidsLimit},
        CapAdd => $hc->{CapAdd} || [],
        CapDrop => $hc->{CapDrop} || [],
        SecurityOpt => $hc->{SecurityOpt} || [],
        Privileged => bool01($hc->{Privileged}),
        Init => bool01($hc->{Init}),
        Runtime => $hc->{Runtime},
        LogType => ($hc->{LogConfig} || {})->{Type},
        Env => [ sort @{ $cfg->{Env} || [] } ],
        Labels => \%labels,
    };
}

# The containers labelled with this execution (any nginx's: the id is ours).
sub exec_containers {
    my ($xid) = @_;
    return label_containers("io.perstack.execution=$xid");
}

# A "slow 2" run at $path: inspected while it runs.  Returns the settings,
# the inspect object and the label values that name the run.
sub inspect_run {
    my ($name, $path, $args) = @_;

    my $c = open_stream(method => 'GET',
                        path => "$path?expert=slow&query=2"
                                . ($args // ''));

    ok($c->wait_event('initializeRuntime', 30),
       "$name - the slow run started")
        or diag("status " . ($c->{status} // 'none') . ", body: "
                . Perstack::printable($c->{body}));

    my $xid = $c->header('X-Perstack-Execution') // '';
    my @list = exec_containers($xid);

    is(scalar @list, 1, "$name - one container labelled "
       . "io.perstack.execution=$xid")
        or return;

    my $info = container_info($list[0]{Id});

    ok($info && ($info->{State}{Status} // '') eq 'running',
       "$name - inspected while it runs");
    is($info->{Name}, "/perstack-$xid", "$name - its name");

    $c->drain(30);
    $c->close;

    check_run("$name (slow)", $c, expert => 'slow', outcome => 'completed',
              exit_code => 0);

    is(scalar exec_containers($xid), 0,
       "$name - the slow run's container is gone");

    return ($info ? host_settings($info, $xid) : {}, $info, $xid);
}


# ---- the inside view ---------------------------------------------------------

# tmpfs and overlay options that say something about the sandbox
my %KeepOption = map { $_ => 1 } qw(ro rw nosuid nodev noexec);

sub normalize_options {
    my ($opts) = @_;
    return join ',', grep { $KeepOption{$_} || /^(size|mode|uid|gid)=/ }
                     split /,/, $opts // '';
}

sub normalize_probe {
    my ($p) = @_;

    my %env = %{ $p->{env} || {} };
    delete $env{HOSTNAME};

    my %mounts;
    for my $path (keys %{ $p->{mounts} || {} }) {
        my $m = $p->{mounts}{$path};
        if (!defined $m) {
            $mounts{$path} = undef;
            next;
        }

        $mounts{$path} = { fstype => $m->{fstype},
                           options => normalize_options($m->{options}) };

        # a bind mount shows the host's filesystem, whatever it is
        delete $mounts{$path}{fstype} if $path eq '/secrets';
    }

    return {
        (map { $_ => $p->{$_} } qw(uid gid groups CapEff CapPrm CapBnd
                                   NoNewPrivs memory_limit memory_swap_limit
                                   pids_max cpu)),
        pid1 => bool01($p->{pid1}),
        writable => { map { $_ => bool01($p->{writable}{$_}) }
                      keys %{ $p->{writable} || {} } },
        write_errors => $p->{write_errors} || {},
        interfaces => [ sort @{ $p->{interfaces} || [] } ],
        env => \%env,
        mounts => \%mounts,
        read => { map { $_ => bool01($p->{read}{$_}) }
                  keys %{ $p->{read} || {} } },
    };
}

# A probe run at $path.  Returns the normalized probe, the raw one, and the
# run (check_run's).
sub probe_run {
    my ($name, $path, $args) = @_;

    my $c = run_get("$path?expert=probe&query=$ProbeQuery" . ($args // ''));
    my $r = check_run("$name (probe)", $c, expert => 'probe',
                      outcome => 'completed', exit_code => 0);

    is_deeply($r->{types}, [qw(initializeRuntime skillConnected startRun probe
                               completeRun skillDisconnected)],
              "$name - the probe run's events")
        or diag("got: @{ $r->{types} }");

    my $probe = ($r->{by_type}{probe} || [])->[0] || {};
    my $xid = $c->header('X-Perstack-Execution') // '';

    is(scalar exec_containers($xid), 0,
       "$name - the probe run's container is gone");

    # HOSTNAME: the container's short id, nothing else of it
    my $container = $r->{exec}{container} // '';
    is($probe->{env}{HOSTNAME}, substr($container, 0, 12),
       "$name - HOSTNAME is the container's short id");

    is($probe->{pid1} ? $probe->{pid} : 1, 1,
       "$name - pid1 means PID 1");

    return (normalize_probe($probe), $probe, $r);
}


# ---- a location's sandbox, both ways ---------------------------------------

sub expand_x {
    my ($v, $x) = @_;
    return $v unless defined $x;
    my $r = deep_copy($v);
    my $walk;
    $walk = sub {
        my ($n) = @_;
        if (ref $n eq 'HASH') {
            for (values %$n) { ref $_ ? $walk->($_) : s/\@X\@/$x/g if
                                   defined $_ }
        } elsif (ref $n eq 'ARRAY') {
            for (@$n) { ref $_ ? $walk->($_) : s/\@X\@/$x/g if defined $_ }
        }
    };
    $walk->($r);
    return $r;
}

sub check_location {
    my ($name, $path, %o) = @_;

    my ($host_over, $inside_over) = @{ $Variants{$path} }
        or die "no variant $path\n";

    # the Engine's view

    my ($host, $info, $xid) = inspect_run($name, $path,
        defined $o{x1} ? "&x=$o{x1}" : '');
    my $want = overlay(\%HostDefault, $host_over);
    $want->{Env} = [ sort @{ $want->{Env} } ];
    $want = expand_x($want, $o{x1});

    is_deeply($host, $want, "$name - the container's sandbox (Engine API)")
        or diag("got: " . json_encode($host) . "\nwant: "
                . json_encode($want));

    my $env = join "\n", @{ ($info || {})->{Config}{Env} || [] };
    unlike($env, qr/\Q$Secret\E|PERSTACK_TEST_SECRET/,
           "$name - nothing of nginx's environment in Config.Env");

    # the inside view

    my ($inside, $probe) = probe_run($name, $path,
        defined $o{x2} ? "&x=$o{x2}" : '');
    my $iwant = expand_x(overlay(\%InsideDefault, $inside_over), $o{x2});

    is_deeply($inside, $iwant, "$name - the sandbox from inside (probe)")
        or diag("got: " . json_encode($inside) . "\nwant: "
                . json_encode($iwant));

    ok(!exists $probe->{env}{PERSTACK_TEST_SECRET}
       && !grep({ defined && index($_, $Secret) >= 0 }
                values %{ $probe->{env} || {} }),
       "$name - nginx's PERSTACK_TEST_SECRET is not in the container's "
       . "environment");

    return ($host, $inside, $probe);
}


# ---- the blocks' checks ------------------------------------------------------

# nginx has the secret (so that its absence inside means something)
sub nginx_has_secret {
    my ($name) = @_;

  SKIP: {
        my $pid = worker_pid();
        my $environ;

        if ($pid && open my $fh, '<', "/proc/$pid/environ") {
            local $/;
            $environ = <$fh>;
        }

        skip "$name - /proc/<nginx>/environ is not readable", 1
            unless defined $environ;

        ok(grep({ $_ eq "PERSTACK_TEST_SECRET=$Secret" }
                split /\0/, $environ),
           "$name - nginx's environment has PERSTACK_TEST_SECRET");
    }
}

sub check_defaults {
    my ($block) = @_;
    my $name = $block->name;

    nginx_has_secret($name);
    my (undef, $inside, $probe) = check_location($name, '/run');

    # spelled out, should the tables above ever drift
    is_deeply($probe->{interfaces}, ['lo'], "$name - only lo");
    ok(!$probe->{writable}{'/'} && $probe->{writable}{'/tmp'}
       && $probe->{writable}{'/workspace'},
       "$name - / is read-only; /tmp and /workspace are writable");
    is("$probe->{uid}:$probe->{gid}", '65534:65534', "$name - nobody");
    is($probe->{CapEff}, '0000000000000000', "$name - no capabilities");
    is($probe->{NoNewPrivs}, 1, "$name - no_new_privs");
    is($probe->{memory_limit}, 536870912, "$name - 512 MiB");
    is($probe->{memory_swap_limit}, $probe->{memory_limit},
       "$name - no swap");
    ok(!$probe->{pid1}, "$name - an init is PID 1");
}

sub check_variant {
    my ($block) = @_;
    my $path = $block->variant;
    $path =~ s/\s+//g;
    check_location($block->name, $path);
}

sub check_env {
    my ($block) = @_;
    my $name = $block->name;

    # per request: each run gets its own request's value ($arg_x is not
    # decoded)
    my ($host, $inside) = check_location($name, '/env',
                                         x1 => 'first-%C3%A9',
                                         x2 => 'second%20run');

    is($inside->{env}{FROM_ARG}, 'second%20run',
       "$name - FROM_ARG has the request's \$arg_x");
}

sub check_network {
    my ($block) = @_;
    my $name = $block->name;

    my ($host, $inside) = check_location($name, '/net');
    ok(scalar(grep { /^eth\d+$/ } @{ $inside->{interfaces} }),
       "$name - an eth interface besides lo");

    my ($st, $body) = Perstack::docker_api('GET', "/networks/$Net");
    my $n = $st == 200 ? json_decode($body) : {};
    ok($n->{Internal}, "$name - $Net is an internal network");
}

sub check_memhog {
    my ($block) = @_;
    my $name = $block->name;

    my $c = run_get('/mem?expert=memhog&query=forever');
    my $r = check_run($name, $c, expert => 'memhog', outcome => 'failed',
                      exit_code => 137);

    my @steps = grep { $_ eq 'streamReasoning' } @{ $r->{types} };
    ok(@steps >= 1 && @steps <= 4,
       "$name - killed within 64 MiB (" . scalar(@steps)
       . " steps of 16 MiB)");
    ok(!grep({ /^(completeRun|stopRunBy)/ } @{ $r->{types} }),
       "$name - the run did not finish by itself");

    my $xid = $c->header('X-Perstack-Execution') // '';
    is(scalar exec_containers($xid), 0, "$name - the container is gone");
}

sub forkbomb_run {
    my ($name, $path) = @_;

    my $c = run_get("$path?expert=forkbomb&query=fork");
    my $r = check_run($name, $c, expert => 'forkbomb',
                      outcome => 'completed', exit_code => 0);

    is_deeply($r->{types}, [qw(initializeRuntime skillConnected startRun
                               forkbomb completeRun skillDisconnected)],
              "$name - the events") or diag("got: @{ $r->{types} }");

    my $fb = ($r->{by_type}{forkbomb} || [])->[0] || {};
    is($fb->{error}, 'EAGAIN', "$name - fork failed with EAGAIN")
        or diag(json_encode($fb));
    ok(JSON::PP::is_bool($fb->{capped}) && !$fb->{capped},
       "$name - stopped by the limit, not by its own cap");

    my $done = ($r->{by_type}{completeRun} || [])->[0] || {};
    is($done->{text}, "Forked $fb->{children} children before EAGAIN; "
       . "killed and reaped $fb->{children}.",
       "$name - all children killed and reaped");

    my $xid = $c->header('X-Perstack-Execution') // '';
    is(scalar exec_containers($xid), 0, "$name - the container is gone");

    return $fb;
}

sub check_forkbomb {
    my ($block) = @_;
    my $name = $block->name;

    my $fb = forkbomb_run("$name (16)", '/pids');
    cmp_ok($fb->{processes}, '<', 16,
           "$name - fewer than 16 processes of its own");
    # docker-init, the runtime and its children: 16
    is($fb->{children} + 2, 16, "$name - init, runtime and children make "
       . "the limit");

    $fb = forkbomb_run("$name (default)", '/run');
    is($fb->{children} + 2, 128, "$name - the default limit: 128");
}

sub check_runtime {
    my ($block) = @_;
    my $name = $block->name;

    my $expert = unique_name('runtime');
    my $t0 = Time::HiRes::time();

    my $c = run_get("/runtime?expert=$expert&query=x");
    my $obj = check_error($name, $c, 502, 'docker_error');
    like($obj ? $obj->{message} : '',
         qr/\Acontainer create: the Docker engine answered \d{3}\z/,
         "$name - the message names the call and the engine's status");
    like(error_log_text(), qr/container create: the Docker engine at .* answered \d{3}: .*runtime/i,
         "$name - the log quotes the engine");

    no_container_for($name, $t0, $expert);
}

run_tests();

__DATA__

=== TEST 1: defaults: none, read-only, nobody, no capabilities, no_new_privs, 512m, 1 CPU, 128 pids, init, empty environment
--- check: check_defaults



=== TEST 2: perstack_user 1234:5678
--- variant: /user
--- check: check_variant



=== TEST 3: perstack_user 4321: the gid is the uid
--- variant: /uid
--- check: check_variant



=== TEST 4: perstack_read_only off: still nobody's, / is root's
--- variant: /rw
--- check: check_variant



=== TEST 5: perstack_read_only off with perstack_user 0:0: root writes to /, with a warning
--- variant: /rw-root
--- check: check_variant
--- error_log
containers will run as root (uid 0)



=== TEST 6: perstack_tmpfs /scratch: the list replaces /tmp
--- variant: /tmpfs
--- check: check_variant



=== TEST 7: perstack_workspace_size 32m
--- variant: /wsize
--- check: check_variant



=== TEST 8: perstack_memory 64m
--- variant: /mem
--- check: check_variant



=== TEST 9: perstack_memory 64m: memhog is killed (137), the container removed
--- check: check_memhog



=== TEST 10: perstack_swap 32m: MemorySwap is memory + swap
--- variant: /swap
--- check: check_variant



=== TEST 11: perstack_cpus 0.5
--- variant: /cpus
--- check: check_variant



=== TEST 12: perstack_pids_limit 16
--- variant: /pids
--- check: check_variant



=== TEST 13: perstack_pids_limit: a fork bomb stops at the limit (16, and the default 128)
--- check: check_forkbomb



=== TEST 14: perstack_cap_add NET_BIND_SERVICE: nobody gets it in the bounding set only
--- variant: /cap
--- check: check_variant



=== TEST 15: perstack_cap_add NET_BIND_SERVICE with perstack_user 0:0: in effect
--- variant: /cap-root
--- check: check_variant



=== TEST 16: perstack_no_new_privileges off
--- variant: /nnp
--- check: check_variant



=== TEST 17: perstack_init off: the runtime is PID 1
--- variant: /noinit
--- check: check_variant



=== TEST 18: perstack_network: an internal network of the test's
--- check: check_network



=== TEST 19: perstack_bind: read-only at /secrets
--- variant: /bind
--- check: check_variant



=== TEST 20: perstack_label team agents
--- variant: /label
--- check: check_variant



=== TEST 21: perstack_env: a fixed value and the request's $arg_x
--- check: check_env



=== TEST 22: perstack_runtime unknown: 502 docker_error, no container
--- check: check_runtime



=== TEST 23: perstack_user abc
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_user abc;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_user" directive must be "uid" or "uid:gid", in numbers



=== TEST 24: perstack_user 1000:
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_user 1000:;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_user" directive must be "uid" or "uid:gid", in numbers



=== TEST 25: perstack_cpus 0
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_cpus 0;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_cpus" directive must be a number of CPUs, such as "1" or "0.5"



=== TEST 26: perstack_cpus abc
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_cpus abc;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_cpus" directive must be a number of CPUs, such as "1" or "0.5"



=== TEST 27: perstack_memory 1m
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_memory 1m;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_memory" must be at least 4m



=== TEST 28: perstack_pids_limit 0
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_pids_limit 0;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_pids_limit" must be at least 1



=== TEST 29: perstack_tmpfs with a relative path
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_tmpfs scratch rw,size=8m;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_tmpfs" directive takes absolute paths



=== TEST 30: perstack_bind with a relative host path
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_bind secrets /secrets;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_bind" directive takes absolute paths



=== TEST 31: perstack_bind onto /workspace
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_bind /tmp /workspace;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_bind" directive cannot mount on /workspace



=== TEST 32: perstack_env with a name that starts with a digit
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_env "1BAD" x;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_env" directive needs a name of letters, digits and "_"



=== TEST 33: perstack_env with "=" in the name
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_env "A=B" x;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_env" directive needs a name of letters, digits and "_"



=== TEST 34: perstack_cap_add in lower case
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_cap_add net_bind_service;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
invalid capability "net_bind_service"



=== TEST 35: perstack_label in the io.perstack. namespace
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_label io.perstack.x y;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_label" directive cannot set a label in the io.perstack. namespace
