#!/usr/bin/env perl
# The floor of the benchmarks: one execution made with the Engine API's
# calls alone, on the Docker socket, as the module makes them and with the
# module's sandbox (src/ngx_http_perstack_policy.c with its defaults):
#
#   POST /containers/create        the container's configuration
#   POST /containers/ID/attach?stream=1&stdout=1&stderr=1
#                                  Upgrade: tcp (the hijacked stream)
#   POST /containers/ID/start
#   ... the multiplexed stream read to its end ...
#   POST /containers/ID/wait?condition=not-running
#   DELETE /containers/ID?force=1&v=1
#
# Each call but the attach on a connection of its own.  Core Perl only.
#
#   engine-raw.pl first [options] EXPERT QUERY
#       prints the milliseconds from the create call to the first stdout
#       line (the runtime's first event), and the number of stdout lines
#   engine-raw.pl drain [options] EXPERT QUERY
#       prints JSON: stdout bytes and lines, seconds from the first stdout
#       line to the one with "completeRun", and from the create call to
#       the end of the stream
#   engine-raw.pl docker-run [options] EXPERT QUERY
#       the same container through `docker run --rm` (the CLI's flags for
#       the same configuration); prints the milliseconds from fork to its
#       first stdout line, and the number of stdout lines
#
# Options: --socket PATH (default $PERSTACK_DOCKER_SOCK or
# /var/run/docker.sock), --image IMAGE (default perstack-demo:latest),
# --label K=V and --env K=V (repeatable).
# Exit status: 0 when the container ran and exited 0, 1 otherwise.

use strict;
use warnings;

use Getopt::Long qw(GetOptionsFromArray);
use IO::Socket::UNIX ();
use JSON::PP ();
use Time::HiRes qw(time);

my $sock_path = $ENV{PERSTACK_DOCKER_SOCK} || '/var/run/docker.sock';
my $image = 'perstack-demo:latest';
my (@labels, @env);
my $mode = shift @ARGV // '';
GetOptionsFromArray(\@ARGV, 'socket=s' => \$sock_path, 'image=s' => \$image,
                    'label=s' => \@labels, 'env=s' => \@env)
    && @ARGV == 2 && $mode =~ /^(first|drain|docker-run)$/
    or die "usage: engine-raw.pl first|drain|docker-run [--socket P] [--image I]"
         . " [--label K=V]... [--env K=V]... EXPERT QUERY\n";
my ($expert, $query) = @ARGV;
my $json = JSON::PP->new->canonical;

my $job = join '', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 24;
my @cmd = ('perstack', 'run', '--runtime', 'local',
           '--config', '/etc/perstack/perstack.toml', '--env-path', '/dev/null',
           '--job-id', $job, '--', $expert, $query);
my %tmpfs = ('/tmp' => 'rw,nosuid,nodev,noexec,size=64m',
             '/workspace' => 'rw,nosuid,nodev,size=256m,uid=65534,gid=65534,mode=0700');
my %labels = map { /^([^=]+)=(.*)$/s ? ($1, $2) : ($_, '') } @labels;
my $false = JSON::PP::false;
my $true = JSON::PP::true;
my $config = {
    Image => $image, Cmd => \@cmd, WorkingDir => '/workspace', User => '65534:65534',
    Env => \@env, Labels => \%labels,
    Tty => $false, OpenStdin => $false, AttachStdin => $false,
    AttachStdout => $true, AttachStderr => $true, StopTimeout => 5,
    HostConfig => {
        NetworkMode => 'none', ReadonlyRootfs => $true, Tmpfs => \%tmpfs, Mounts => [],
        Memory => 536870912, MemorySwap => 536870912, NanoCpus => 1000000000,
        PidsLimit => 128, CapDrop => ['ALL'], CapAdd => [],
        SecurityOpt => ['no-new-privileges'], Init => $true,
        LogConfig => { Type => 'none', Config => {} },
    },
};

exit docker_run() if $mode eq 'docker-run';

# ---- the Engine API ------------------------------------------------------------

sub connect_engine {
    IO::Socket::UNIX->new(Peer => $sock_path) or die "engine-raw: $sock_path: $!\n";
}

# One call on a connection of its own ("Connection: close"): status, body.
sub call {
    my ($method, $path, $body) = @_;
    my $s = connect_engine();
    my $req = "$method $path HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n";
    $req .= defined $body
          ? "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n\r\n$body"
          : "Content-Length: 0\r\n\r\n";
    print {$s} $req;
    local $/;
    my $answer = <$s> // '';
    my ($head, $rest) = split /\r\n\r\n/, $answer, 2;
    my ($status) = $head =~ m{^HTTP/1\.[01] (\d+)} or die "engine-raw: $method $path: no answer\n";
    $rest = dechunk($rest) if $head =~ /^Transfer-Encoding:\s*chunked/mi;
    return ($status, $rest // '');
}

sub dechunk {
    my ($in) = @_;
    my $out = '';
    while ($in =~ /\G([0-9a-fA-F]+)[^\r\n]*\r\n/gc) {
        my $n = hex $1;
        last if $n == 0;
        $out .= substr $in, pos($in), $n;
        pos($in) += $n + 2;
    }
    return $out;
}

my $t0 = time;
my ($st, $body) = call('POST', '/containers/create', $json->encode($config));
$st == 201 or die "engine-raw: create: $st $body\n";
my $id = $json->decode($body)->{Id};
my $exit = 1;

END { call('DELETE', "/containers/$id?force=1&v=1") if defined $id; }

my $attach = connect_engine();
print {$attach} "POST /containers/$id/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\n"
              . "Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n";
my $buf = '';
until ($buf =~ /\r\n\r\n/) {
    sysread($attach, $buf, 65536, length $buf) or die "engine-raw: attach: no answer\n";
}
$buf =~ s{^HTTP/1\.[01] (\d+)[^\r\n]*\r\n.*?\r\n\r\n}{}s or die "engine-raw: attach: bad answer\n";
$1 == 101 or $1 == 200 or die "engine-raw: attach: $1\n";

($st, $body) = call('POST', "/containers/$id/start");
$st == 204 or die "engine-raw: start: $st $body\n";

# The multiplexed stream: frames of an 8-byte header (stream, 0, 0, 0,
# length) and the payload; stream 1 is stdout.
my ($bytes, $lines, $t_first, $t_complete, $tail) = (0, 0, undef, undef, '');
my $pos = 0;
while (1) {
    while (length($buf) - $pos >= 8) {
        my ($type, $len) = unpack 'C x3 N', substr $buf, $pos, 8;
        last if length($buf) - $pos - 8 < $len;
        if ($type == 1) {
            my $n = (substr $buf, $pos + 8, $len) =~ tr/\n//;
            if ($n && !defined $t_first) {
                $t_first = time;
                if ($mode eq 'first') {
                    printf "%.3f\n", ($t_first - $t0) * 1000;
                }
            }
            if (!defined $t_complete && $mode eq 'drain') {
                my $chunk = $tail . substr $buf, $pos + 8, $len;
                $t_complete = time if index($chunk, '"type":"completeRun"') >= 0;
                $tail = substr $chunk, -32;
            }
            $bytes += $len;
            $lines += $n;
        }
        $pos += 8 + $len;
    }
    $buf = substr $buf, $pos;
    $pos = 0;
    sysread($attach, $buf, 1 << 20, length $buf) or last;
}
my $t_end = time;
close $attach;

($st, $body) = call('POST', "/containers/$id/wait?condition=not-running");
$exit = $st == 200 ? $json->decode($body)->{StatusCode} : -1;
if ($mode eq 'first') {
    print "$lines\n";
} else {
    print $json->encode({ bytes => $bytes, lines => $lines,
                          seconds => defined $t_first && defined $t_complete
                                     ? $t_complete - $t_first : undef,
                          total_seconds => $t_end - $t0, exit => $exit }), "\n";
}
exit($exit == 0 ? 0 : 1);

# ---- docker run ------------------------------------------------------------------

sub docker_run {
    my $h = $config->{HostConfig};
    my @args = ('docker', 'run', '--rm', '--network', $h->{NetworkMode}, '--read-only',
                (map { ('--tmpfs', "$_:$tmpfs{$_}") } sort keys %tmpfs),
                '--user', $config->{User}, '--workdir', $config->{WorkingDir},
                '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--init',
                '--memory', $h->{Memory}, '--memory-swap', $h->{MemorySwap},
                '--cpus', $h->{NanoCpus} / 1e9, '--pids-limit', $h->{PidsLimit},
                '--log-driver', 'none', '--stop-timeout', $config->{StopTimeout},
                (map { ('--label', $_) } @labels), (map { ('--env', $_) } @env),
                $image, @cmd);
    my $t = time;
    my $pid = open(my $out, '-|') // die "engine-raw: fork: $!\n";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        exec @args or die "engine-raw: docker: $!\n";
    }
    my $first = <$out>;
    printf "%.3f\n", (time - $t) * 1000 if defined $first;
    my $n = defined $first ? 1 : 0;
    $n++ while <$out>;
    close $out;
    print "$n\n";
    return $? == 0 && defined $first ? 0 : 1;
}
