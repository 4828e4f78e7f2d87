#!/usr/bin/perl
# Holds N live streams open on an nginx: bench/streams.pl PORT N PATH
#
# Opens N connections to 127.0.0.1:PORT, sends "GET PATH" on each, and
# reads everything that comes, discarding it.  Prints "started N S" once
# every stream has had its first runtime event (an SSE "event:" that is
# not the module's own perstack.*), S being the seconds that took; then
# holds them until its stdin is closed (or it gets SIGTERM), and prints
# "held N ended E errors X": E streams ended before that (with their
# closing event), X failed (no 200, or closed without a closing event).
# Exit status 0 when X is 0.

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use Time::HiRes ();

my ($port, $n, $path) = @ARGV;
die "usage: $0 PORT N PATH\n" unless $port && defined $n && $path;

$| = 1;

my $sel = IO::Select->new();
my %s;        # fileno -> { sock, buf, started, status, ended }
my $t0 = Time::HiRes::time();
my ($started, $ended, $errors) = (0, 0, 0);

for my $i (1 .. $n) {
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp')
        or die "connect: $!\n";
    print $sock "GET $path HTTP/1.1\r\nHost: localhost\r\n"
                . "Accept: text/event-stream\r\n\r\n";
    $sock->blocking(0);
    $s{ fileno $sock } = { sock => $sock, buf => '' };
    $sel->add($sock);
}

my $stdin_open = 1;
my $announced = $n == 0;
print "started 0 0\n" if $announced;
$sel->add(\*STDIN) if $announced;

my $stop = 0;
$SIG{TERM} = sub { $stop = 1 };

while (!$stop && $sel->count) {
    for my $fh ($sel->can_read(1)) {
        if ($fh == \*STDIN) {
            my $r = sysread(STDIN, my $x, 4096);
            if (!$r) { $stop = 1; last }
            next;
        }

        my $c = $s{ fileno $fh };
        my $r = sysread($fh, my $chunk, 65536);

        if (!defined $r) {
            next if $!{EAGAIN} || $!{EWOULDBLOCK};
        }

        if (!$r) {
            $sel->remove($fh);
            close $fh;
            if ($c->{ended}) { $ended++ } else { $errors++ }
            $started++ unless $c->{started};
            next;
        }

        $c->{buf} .= $chunk;

        if (!defined $c->{status} && $c->{buf} =~ m{\AHTTP/1\.1 (\d+)}) {
            $c->{status} = $1;
        }

        if (!$c->{started} && $c->{buf} =~ /^event: (?!perstack\.)\S+/m) {
            $c->{started} = 1;
            $started++;
        }

        $c->{ended} = 1 if $c->{buf} =~ /^event: perstack\.end$/m;

        # keep only a tail to find the next marks in
        $c->{buf} = substr($c->{buf}, -256) if length $c->{buf} > 4096;
    }

    if (!$announced && $started >= $n) {
        printf "started %d %.1f\n", $n, Time::HiRes::time() - $t0;
        $announced = 1;
        $sel->add(\*STDIN);
    }
}

for my $c (values %s) {
    close $c->{sock} if $c->{sock}->opened;
}

printf "held %d ended %d errors %d\n", $n, $ended, $errors;
exit($errors ? 1 : 0);
