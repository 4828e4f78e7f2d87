package PerstackEngines;

# Docker engines of a test file's own, beside the suite's: each a dockerd
# with its own socket, data root, exec root, pid file and containerd
# namespaces, no bridge and no iptables rules (the module's containers have
# no network), optionally listening on TLS on loopback with certificates
# made by make_pki().  Each gets the demo image, loaded from the suite's
# engine (there is no registry).  Every engine started is stopped, by its
# pid, and its directories removed, also when the test dies.
#
#   my $pki = make_pki();                 # $pki->{dir}/ca.pem, ...
#   my $e = start_engine(name => 'b', tls => $pki, port => free_port());
#   $e->{sock}, $e->{url} (https://127.0.0.1:PORT), $e->{pid}
#   with_engine($e, sub { docker_api(...) })   # the suite's helpers, on it
#   engine_creates($e, $t0, $label)   # creates since $t0 ($e undef: the
#                                     # suite's engine)
#   my ($ok, $out) = nginx_conf_test($http)   # nginx -t of an http block
#   stop_engine($e);
#   kill_engine($e);      # SIGKILL to dockerd alone: containerd and the
#                         # containers run on, the API is gone
#   restart_engine($e);   # dockerd again on the same roots: it stops the
#                         # containers it finds (no live restore)

use strict;
use warnings;

use Exporter 'import';
use File::Path ();
use File::Temp ();
use POSIX ();
use Time::HiRes ();

use Perstack;
use PerstackFlow ();

our @EXPORT = qw(make_pki start_engine stop_engine with_engine kill_engine
                 restart_engine engine_creates nginx_conf_test);

my @Started;

sub run_quiet {
    my ($log, @cmd) = @_;
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        exec @cmd or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    return $? == 0;
}

# A CA, the engine's certificate (for 127.0.0.1 only), a client's, and
# another CA that signed nothing of the engine's.  EC keys, one day.
sub make_pki {
    my $dir = File::Temp::tempdir('perstack-pki-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
    my $log = "$dir/openssl.log";
    my @key = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
               '-nodes');

    for my $ca (qw(ca other-ca)) {
        run_quiet($log, 'openssl', 'req', '-x509', @key,
                  '-keyout', "$dir/$ca-key.pem", '-out', "$dir/$ca.pem",
                  '-days', '1', '-subj', "/CN=perstack test $ca")
            or die "openssl: cannot make $ca (see $log)\n";
    }

    my %ext = (
        server => "subjectAltName=IP:127.0.0.1\n"
                  . "extendedKeyUsage=serverAuth\n",
        client => "extendedKeyUsage=clientAuth\n",
    );

    for my $who (qw(server client)) {
        open my $fh, '>', "$dir/$who.ext" or die "$!\n";
        print $fh $ext{$who};
        close $fh;

        run_quiet($log, 'openssl', 'req', '-new', @key,
                  '-keyout', "$dir/$who-key.pem", '-out', "$dir/$who.csr",
                  '-subj', "/CN=perstack test $who")
            && run_quiet($log, 'openssl', 'x509', '-req',
                         '-in', "$dir/$who.csr", '-CA', "$dir/ca.pem",
                         '-CAkey', "$dir/ca-key.pem", '-CAcreateserial',
                         '-days', '1', '-extfile', "$dir/$who.ext",
                         '-out', "$dir/$who.pem")
            or die "openssl: cannot make the $who certificate (see $log)\n";
    }

    chmod 0644, glob "$dir/*.pem";
    chmod 0755, $dir;

    return { dir => $dir };
}

sub with_engine {
    my ($e, $code) = @_;
    local $Perstack::DockerSock = $e->{sock};
    return $code->();
}

sub start_engine {
    my (%o) = @_;
    my $name = $o{name} // 'x';

    # under /tmp: the socket's path must stay short
    my $dir = File::Temp::tempdir("perstack-engine-$name-XXXXXX",
                                  TMPDIR => 1);
    my $e = { name => $name, dir => $dir, sock => "$dir/docker.sock",
              log => "$dir/dockerd.log" };

    my @args = ('dockerd',
                '--data-root', "$dir/data", '--exec-root', "$dir/exec",
                '--pidfile', "$dir/docker.pid", '-H', "unix://$e->{sock}",
                '--bridge', 'none', '--iptables=false', '--ip-masq=false',
                '--containerd-namespace', "perstack-test-$name",
                '--containerd-plugins-namespace',
                "perstack-test-$name-plugins");

    if ($o{tls}) {
        my $p = $o{tls}{dir};
        $e->{port} = $o{port} // die "start_engine: tls needs a port\n";
        $e->{url} = "https://127.0.0.1:$e->{port}";
        push @args, '-H', "tcp://127.0.0.1:$e->{port}", '--tlsverify',
                    '--tlscacert', "$p/ca.pem", '--tlscert', "$p/server.pem",
                    '--tlskey', "$p/server-key.pem";
    }

    $e->{args} = \@args;
    push @Started, $e;
    run_dockerd($e);

    # the demo image, from the suite's engine
    my $tar = "$dir/image.tar";
    my ($st, $body) = docker_api('GET', '/images/' . $Image . '/get',
                                 timeout => 60);
    die "cannot export $Image: $st\n" unless $st == 200;
    open my $fh, '>', $tar or die "$tar: $!\n";
    binmode $fh;
    print $fh $body;
    close $fh;

    ($st, $body) = with_engine($e, sub {
        docker_api('POST', '/images/load', body_file => $tar,
                   content_type => 'application/x-tar', timeout => 60) });
    die "cannot load $Image into dockerd $name: $st $body\n"
        unless $st == 200;
    unlink $tar;

    return $e;
}

# dockerd on the engine's roots, until it answers /_ping
sub run_dockerd {
    my ($e) = @_;
    my $name = $e->{name};

    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        POSIX::setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $e->{log};
        open STDERR, '>&', \*STDOUT;
        exec @{ $e->{args} } or POSIX::_exit(127);
    }

    $e->{pid} = $pid;

    my $deadline = Time::HiRes::time() + 60;
    until (-S $e->{sock} && with_engine($e, \&docker_ping)) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            delete $e->{pid};
            die "dockerd $name exited: " . tail_log($e) . "\n";
        }
        die "dockerd $name did not answer: " . tail_log($e) . "\n"
            if Time::HiRes::time() > $deadline;
        Time::HiRes::sleep(0.1);
    }
}

sub kill_engine {
    my ($e) = @_;
    my $pid = delete $e->{pid} or return;
    kill 'KILL', $pid;
    waitpid $pid, 0;
}

sub restart_engine {
    my ($e) = @_;
    kill_engine($e);
    run_dockerd($e);
}

# the "create" events of containers labelled $label on $e since $t0
sub engine_creates {
    my ($e, $t0, $label) = @_;
    return $e ? with_engine($e, sub { PerstackFlow::label_creates($t0, $label) })
              : PerstackFlow::label_creates($t0, $label);
}

# nginx -t of a configuration whose http block is $http
sub nginx_conf_test {
    my ($http) = @_;
    my $dir = File::Temp::tempdir('perstack-conf-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
    mkdir "$dir/logs";
    open my $fh, '>', "$dir/nginx.conf" or die "$!\n";
    print $fh "load_module $ENV{TEST_NGINX_PERSTACK_MODULE};\n"
              . "error_log $dir/logs/error.log;\npid $dir/logs/nginx.pid;\n"
              . "events {}\nhttp { $http }\n";
    close $fh;
    my $out = `$Test::Nginx::Util::NginxBinary -t -p $dir/ -c $dir/nginx.conf 2>&1`;
    return ($? == 0, $out);
}

sub tail_log {
    my ($e) = @_;
    open my $fh, '<', $e->{log} or return '(no log)';
    my @l = <$fh>;
    close $fh;
    return join '', @l[ ($#l > 5 ? $#l - 5 : 0) .. $#l ];
}

# SIGTERM, then SIGKILL after 30 s; the directories go once it is gone.
sub stop_engine {
    my ($e) = @_;

    if (my $pid = delete $e->{pid}) {
        kill 'TERM', $pid;
        my $deadline = Time::HiRes::time() + 30;
        while (waitpid($pid, POSIX::WNOHANG()) != $pid) {
            if (Time::HiRes::time() > $deadline) {
                kill 'KILL', $pid;
                waitpid $pid, 0;
                last;
            }
            Time::HiRes::sleep(0.1);
        }
    }

    if ($e->{dir} && -d $e->{dir}) {
        # what dockerd left mounted under its roots, then the roots
        if (open my $m, '<', '/proc/mounts') {
            my @mnt = reverse grep { index($_, $e->{dir}) == 0 }
                      map { (split / /)[1] } <$m>;
            close $m;
            system('umount', '-l', $_) for @mnt;
        }
        File::Path::remove_tree($e->{dir});
    }

    @Started = grep { $_ != $e } @Started;
}

END {
    my $status = $?;
    # (a copy: stop_engine() takes each out of @Started)
    my @all = @Started;
    stop_engine($_) for @all;
    $? = $status;
}

1;
