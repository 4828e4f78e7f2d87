package FaultProxy;

# A fault-injecting proxy in front of the real Docker Engine socket, for
# the faults a real engine cannot be made to show on demand: it listens on
# a unix socket of its own and passes each request on to the engine's
# socket, or misbehaves, as its rules say.
#
#     my $proxy = FaultProxy->start(listen => "/tmp/x/docker.sock",
#                                   upstream => "/var/run/docker.sock");
#     $proxy->rules(['delay', '^POST /containers/create', 2000]);
#     ...
#     $proxy->stop;       # the engine "goes down": every connection is cut
#     $proxy->restart;    # and comes back
#
# A rule is [action, pattern, argument]; the first whose pattern (a Perl
# regex) matches "METHOD PATH" decides, else the request passes:
#     ['delay', $re, $ms]     wait $ms before passing the request on
#     ['error', $re, $status] answer $status with a JSON message, do not
#                             pass the request on; "$status TEXT" makes
#                             TEXT the message ("\n" in it: a line break)
#     ['garbage', $re, $st]   answer $st (200 if not given) with a body
#                             that is not JSON
#     ['answer', $re, "$st $body"]
#                             answer $st with $body (one line of JSON, or
#                             nothing at all: "Content-Length: 0")
#     ['close', $re]          close the connection without an answer
#     ['cut', $re, $bytes]    pass it on, then cut the connection after
#                             $bytes bytes of the engine's response body
#     ['cutframes', $re, $n]  pass an attach stream on, then cut it right
#                             after its $n-th frame (at a frame boundary);
#                             logs "cut after $n frames, B bytes of output"
#     ['hang', $re]           read the request and never answer
#
# Each connection is served by a child process of its own; the engine
# sees one request per connection ("Connection: close").  The proxy keeps
# a log of "METHOD PATH -> action" lines, for tests to wait on.

use strict;
use warnings;

use IO::Socket::UNIX ();
use JSON::PP ();
use IO::Select ();
use POSIX ();
use Socket qw(SOCK_STREAM);
use Time::HiRes ();

sub start {
    my ($class, %args) = @_;

    my $self = bless {
        listen   => $args{listen},
        upstream => $args{upstream} || '/var/run/docker.sock',
        log      => "$args{listen}.log",
        rules    => "$args{listen}.rules",
        pid      => undef,
    }, $class;

    open my $fh, '>', $self->{log} or die "cannot create $self->{log}: $!";
    close $fh;

    $self->rules(@{ $args{rules} || [] });
    $self->_spawn;

    return $self;
}

# The rules, for the requests from now on (a file each request reads, so
# that connections in service are not disturbed).
sub rules {
    my ($self, @rules) = @_;

    my $tmp = "$self->{rules}.tmp";

    open my $fh, '>', $tmp or die "cannot create $tmp: $!";
    for my $rule (@rules) {
        my ($what, $re, $value) = @$rule;
        print $fh join("\t", $what, $re, defined $value ? $value : ''), "\n";
    }
    close $fh;

    rename $tmp, $self->{rules} or die "cannot rename $tmp: $!";
}

sub _read_rules {
    my ($self) = @_;

    open my $fh, '<', $self->{rules} or return ();
    my @rules = map { chomp; [split /\t/, $_, 3] } <$fh>;
    close $fh;

    return @rules;
}

sub restart {
    my ($self) = @_;

    $self->_spawn unless $self->{pid};
}

sub pid { $_[0]->{pid} }

sub log_lines {
    my ($self) = @_;

    open my $fh, '<', $self->{log} or return ();
    my @lines = <$fh>;
    close $fh;
    chomp @lines;

    return @lines;
}

# Wait (at most $timeout seconds) for a log line matching $re.
sub wait_log {
    my ($self, $re, $timeout) = @_;

    my $deadline = Time::HiRes::time() + ($timeout || 10);

    while (Time::HiRes::time() < $deadline) {
        return 1 if grep { /$re/ } $self->log_lines;
        Time::HiRes::sleep(0.05);
    }

    return 0;
}

# The engine goes away: the listener and every connection in service.
sub stop {
    my ($self) = @_;

    my $pid = $self->{pid} or return;

    # the serving children are in the listener's process group
    kill 'KILL', -$pid;
    kill 'KILL', $pid;
    waitpid $pid, 0;

    $self->{pid} = undef;
    unlink $self->{listen};
}

sub DESTROY {
    my ($self) = @_;

    # only in the process that started it, not in a forked child
    $self->stop if $self->{pid} && $self->{owner} && $self->{owner} == $$;
}

sub _spawn {
    my ($self) = @_;

    unlink $self->{listen};

    my $listener = IO::Socket::UNIX->new(
        Type   => SOCK_STREAM,
        Local  => $self->{listen},
        Listen => 128,
    ) or die "cannot listen on $self->{listen}: $!";

    chmod 0666, $self->{listen};

    my $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid) {
        close $listener;
        $self->{pid} = $pid;
        $self->{owner} = $$;
        return;
    }

    # the serving processes must not stop the proxy when they exit
    $self->{pid} = undef;

    # nor hold the test's output (prove reads it until its end)
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', '/dev/null';
    open STDERR, '>>', "$self->{listen}.stderr";

    # the child: a process group of its own, so stop() cuts everything
    POSIX::setpgid(0, 0);
    $SIG{CHLD} = 'IGNORE';
    $SIG{PIPE} = 'IGNORE';

    while (1) {
        my $client = $listener->accept or next;

        my $child = fork;

        if (!defined $child) {
            close $client;
            next;
        }

        if ($child == 0) {
            close $listener;
            $self->_serve($client);
            POSIX::_exit(0);
        }

        close $client;
    }
}

sub _log {
    my ($self, $line) = @_;

    open my $fh, '>>', $self->{log} or return;
    syswrite $fh, "$line\n";
    close $fh;
}

sub _read_request {
    my ($client) = @_;

    my $buf = '';

    while ($buf !~ /\r\n\r\n/) {
        my $n = sysread $client, $buf, 65536, length $buf;
        return undef unless $n;
    }

    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    my $len = $head =~ /^Content-Length:\s*(\d+)/mi ? $1 : 0;

    while (length $body < $len) {
        my $n = sysread $client, $body, 65536, length $body;
        return undef unless $n;
    }

    return ($head, $body);
}

sub _serve {
    my ($self, $client) = @_;

    # curl keeps connections: serve its requests one after the other
    while (1) {
        my ($head, $body) = _read_request($client);
        return unless defined $head;

        my ($method, $path) = $head =~ /^(\S+) (\S+)/;
        $path =~ s{^/v1\.\d+}{};
        my $request = "$method $path";

        my ($action, $arg) = ('pass', undef);

        for my $rule ($self->_read_rules) {
            my ($what, $re, $value) = @$rule;

            if ($request =~ /$re/) {
                ($action, $arg) = ($what, $value);
                last;
            }
        }

        $self->_log("$request -> $action");

        if ($action eq 'close') {
            return;
        }

        if ($action eq 'hang') {
            sleep 3600;
            return;
        }

        if ($action eq 'error' || $action eq 'garbage') {
            my ($code, $text) = ($arg // '') =~ /\A(\d*) ?(.*)\z/s;
            $text = length $text ? $text =~ s/\\n/\n/gr
                                 : "injected fault: $code for $method";
            my $json = $action eq 'error'
                ? JSON::PP->new->encode({ message => $text })
                : "<html>this is not JSON</html>";
            my $status = $action eq 'error' ? "$code Injected"
                       : length($arg // '') ? "$arg Garbage" : '200 OK';

            syswrite $client, "HTTP/1.1 $status\r\n"
                . "Content-Type: application/json\r\n"
                . "Content-Length: " . length($json) . "\r\n\r\n" . $json;
            next;
        }

        if ($action eq 'answer') {
            my ($status, $json) = split / /, $arg, 2;
            $json //= '';

            my $out = "HTTP/1.1 $status Answer\r\n"
                . "Content-Type: application/json\r\n"
                . "Content-Length: " . length($json) . "\r\n\r\n" . $json;

            # a long body may take more than one write
            while (length $out) {
                my $n = syswrite $client, $out;
                return unless $n;
                substr($out, 0, $n) = '';
            }

            next;
        }

        if ($action eq 'delay') {
            Time::HiRes::sleep($arg / 1000);
        }

        # passed on, on a connection of its own that ends with the answer
        my $engine = IO::Socket::UNIX->new(
            Type => SOCK_STREAM,
            Peer => $self->{upstream},
        ) or return;

        # (never the request line: the last header has no \r\n after it)
        $head =~ s/\r\nConnection:[^\r\n]*//gi;
        $head .= "\r\nConnection: close";

        syswrite $engine, "$head\r\n\r\n$body";

        $self->_relay($client, $engine, $action eq 'cut' ? $arg : undef,
                      $action eq 'cutframes' ? $arg : undef);

        # the engine closed: so does this connection
        return;
    }
}

# the length of the first $n frames of an attach stream in $body, or undef
sub _frames_length {
    my ($body, $n) = @_;

    my $at = 0;

    for (1 .. $n) {
        return undef if length($body) < $at + 8;
        my $len = unpack 'N', substr($body, $at + 4, 4);
        $at += 8 + $len;
        return undef if length($body) < $at;
    }

    return $at;
}

sub _relay {
    my ($self, $client, $engine, $cut, $frames) = @_;

    my $sel = IO::Select->new($client, $engine);
    my ($seen, $header_done, $body_bytes, $sent) = ('', 0, 0, 0);
    my $body = '';

    while (1) {
        for my $fh ($sel->can_read) {
            my $buf;
            my $n = sysread $fh, $buf, 65536;

            return unless $n;

            if ($fh == $client) {
                syswrite $engine, $buf;
                next;
            }

            if (defined $frames) {
                if (!$header_done) {
                    $seen .= $buf;
                    my $i = index $seen, "\r\n\r\n";
                    next if $i < 0;

                    # the headers at once: the start waits for them
                    $header_done = 1;
                    syswrite $client, substr($seen, 0, $i + 4);
                    $buf = substr $seen, $i + 4;
                }

                $body .= $buf;

                # what came is passed on at once, up to the cut
                my $len = _frames_length($body, $frames);

                if (!defined $len) {
                    syswrite $client, substr($body, $sent);
                    $sent = length $body;
                    next;
                }

                syswrite $client, substr($body, $sent, $len - $sent);
                $self->_log("cut after $frames frames, "
                            . ($len - 8 * $frames) . " bytes of output");
                return;
            }

            if (defined $cut) {
                if (!$header_done) {
                    $seen .= $buf;
                    my $i = index $seen, "\r\n\r\n";
                    next if $i < 0;

                    $header_done = 1;
                    $buf = substr $seen, $i + 4;
                    syswrite $client, substr($seen, 0, $i + 4);
                }

                if ($body_bytes + length $buf >= $cut) {
                    syswrite $client, substr($buf, 0, $cut - $body_bytes);
                    $self->_log("cut after $cut bytes");
                    return;
                }

                $body_bytes += length $buf;
            }

            syswrite $client, $buf;
        }
    }
}

1;
