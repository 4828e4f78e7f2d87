package PerstackH2;

# A small HTTP/2 client over TLS for the tests (RFC 9113, its header
# compression RFC 7541): one connection, several streams on it at once,
# and each stream's flow-control window in the test's hands.
#
# curl multiplexes streams too (t/025 uses it), but the curl of Debian 12
# (7.88) stops reading the whole connection while one of its transfers
# does not take its data (its HTTP/2 code pauses nghttp2 for that stream),
# and gives every stream a 32 MB window: it cannot show that one slow
# stream holds back only its own execution.  Here a stream's window is
# credited only when the test says so (manual => 1), or as soon as its
# data arrives; the connection's window is always given back at once, so
# that a stalled stream never stalls the connection.
#
#     my $h2 = PerstackH2->new(port => $port, ca_file => $crt);
#     my $a = $h2->request(path => '/run?expert=slow&query=3');
#     my $b = $h2->request(path => '/flood?...', manual => 1);
#     $h2->wait_for(sub { $h2->stream($a)->{done} }, 20);
#     $h2->credit($b, 512);     # the test "reads" 512 bytes of $b
#     $h2->reset($b);           # RST_STREAM (CANCEL): the connection stays
#
# A stream: { id, status, headers => { name => value }, data (the DATA
# bytes), received (DATA payload, padding included, as flow control counts
# it), credited (the window granted so far), done, end_stream, reset (the
# error code of the server's RST_STREAM), cancelled (the client's), cut
# (the connection ended first) }.  The connection: alpn, eof, goaway
# ([last stream, error code]), error.

use strict;
use warnings;

use Socket qw(PF_INET SOCK_STREAM inet_aton pack_sockaddr_in);
use IO::Select ();
use IO::Socket::SSL ();
use Time::HiRes ();

use constant {
    DATA => 0, HEADERS => 1, PRIORITY => 2, RST_STREAM => 3, SETTINGS => 4,
    PUSH_PROMISE => 5, PING => 6, GOAWAY => 7, WINDOW_UPDATE => 8,
    CONTINUATION => 9,
    END_STREAM => 0x1, ACK => 0x1, END_HEADERS => 0x4, PADDED => 0x8,
    PRIORITY_FLAG => 0x20,
};

my $Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

# the connection's window, as large as it may be: it never holds data back
my $ConnWindow = 0x7fffffff;

# RFC 7541, Appendix A
my @Static = map { [ split /=/, $_, 2 ] } (
    ':authority=', ':method=GET', ':method=POST', ':path=/',
    ':path=/index.html', ':scheme=http', ':scheme=https', ':status=200',
    ':status=204', ':status=206', ':status=304', ':status=400',
    ':status=404', ':status=500', 'accept-charset=',
    'accept-encoding=gzip, deflate', 'accept-language=', 'accept-ranges=',
    'accept=', 'access-control-allow-origin=', 'age=', 'allow=',
    'authorization=', 'cache-control=', 'content-disposition=',
    'content-encoding=', 'content-language=', 'content-length=',
    'content-location=', 'content-range=', 'content-type=', 'cookie=',
    'date=', 'etag=', 'expect=', 'expires=', 'from=', 'host=', 'if-match=',
    'if-modified-since=', 'if-none-match=', 'if-range=',
    'if-unmodified-since=', 'last-modified=', 'link=', 'location=',
    'max-forwards=', 'proxy-authenticate=', 'proxy-authorization=',
    'range=', 'referer=', 'refresh=', 'retry-after=', 'server=',
    'set-cookie=', 'strict-transport-security=', 'transfer-encoding=',
    'user-agent=', 'vary=', 'via=', 'www-authenticate=',
);

# RFC 7541, Appendix B: [code, bits] of the symbols 0 - 255
my @Huffman = (
    [0x1ff8, 13], [0x7fffd8, 23], [0xfffffe2, 28], [0xfffffe3, 28],
    [0xfffffe4, 28], [0xfffffe5, 28], [0xfffffe6, 28], [0xfffffe7, 28],
    [0xfffffe8, 28], [0xffffea, 24], [0x3ffffffc, 30], [0xfffffe9, 28],
    [0xfffffea, 28], [0x3ffffffd, 30], [0xfffffeb, 28], [0xfffffec, 28],
    [0xfffffed, 28], [0xfffffee, 28], [0xfffffef, 28], [0xffffff0, 28],
    [0xffffff1, 28], [0xffffff2, 28], [0x3ffffffe, 30], [0xffffff3, 28],
    [0xffffff4, 28], [0xffffff5, 28], [0xffffff6, 28], [0xffffff7, 28],
    [0xffffff8, 28], [0xffffff9, 28], [0xffffffa, 28], [0xffffffb, 28],
    [0x14, 6], [0x3f8, 10], [0x3f9, 10], [0xffa, 12],
    [0x1ff9, 13], [0x15, 6], [0xf8, 8], [0x7fa, 11],
    [0x3fa, 10], [0x3fb, 10], [0xf9, 8], [0x7fb, 11],
    [0xfa, 8], [0x16, 6], [0x17, 6], [0x18, 6],
    [0x0, 5], [0x1, 5], [0x2, 5], [0x19, 6],
    [0x1a, 6], [0x1b, 6], [0x1c, 6], [0x1d, 6],
    [0x1e, 6], [0x1f, 6], [0x5c, 7], [0xfb, 8],
    [0x7ffc, 15], [0x20, 6], [0xffb, 12], [0x3fc, 10],
    [0x1ffa, 13], [0x21, 6], [0x5d, 7], [0x5e, 7],
    [0x5f, 7], [0x60, 7], [0x61, 7], [0x62, 7],
    [0x63, 7], [0x64, 7], [0x65, 7], [0x66, 7],
    [0x67, 7], [0x68, 7], [0x69, 7], [0x6a, 7],
    [0x6b, 7], [0x6c, 7], [0x6d, 7], [0x6e, 7],
    [0x6f, 7], [0x70, 7], [0x71, 7], [0x72, 7],
    [0xfc, 8], [0x73, 7], [0xfd, 8], [0x1ffb, 13],
    [0x7fff0, 19], [0x1ffc, 13], [0x3ffc, 14], [0x22, 6],
    [0x7ffd, 15], [0x3, 5], [0x23, 6], [0x4, 5],
    [0x24, 6], [0x5, 5], [0x25, 6], [0x26, 6],
    [0x27, 6], [0x6, 5], [0x74, 7], [0x75, 7],
    [0x28, 6], [0x29, 6], [0x2a, 6], [0x7, 5],
    [0x2b, 6], [0x76, 7], [0x2c, 6], [0x8, 5],
    [0x9, 5], [0x2d, 6], [0x77, 7], [0x78, 7],
    [0x79, 7], [0x7a, 7], [0x7b, 7], [0x7ffe, 15],
    [0x7fc, 11], [0x3ffd, 14], [0x1ffd, 13], [0xffffffc, 28],
    [0xfffe6, 20], [0x3fffd2, 22], [0xfffe7, 20], [0xfffe8, 20],
    [0x3fffd3, 22], [0x3fffd4, 22], [0x3fffd5, 22], [0x7fffd9, 23],
    [0x3fffd6, 22], [0x7fffda, 23], [0x7fffdb, 23], [0x7fffdc, 23],
    [0x7fffdd, 23], [0x7fffde, 23], [0xffffeb, 24], [0x7fffdf, 23],
    [0xffffec, 24], [0xffffed, 24], [0x3fffd7, 22], [0x7fffe0, 23],
    [0xffffee, 24], [0x7fffe1, 23], [0x7fffe2, 23], [0x7fffe3, 23],
    [0x7fffe4, 23], [0x1fffdc, 21], [0x3fffd8, 22], [0x7fffe5, 23],
    [0x3fffd9, 22], [0x7fffe6, 23], [0x7fffe7, 23], [0xffffef, 24],
    [0x3fffda, 22], [0x1fffdd, 21], [0xfffe9, 20], [0x3fffdb, 22],
    [0x3fffdc, 22], [0x7fffe8, 23], [0x7fffe9, 23], [0x1fffde, 21],
    [0x7fffea, 23], [0x3fffdd, 22], [0x3fffde, 22], [0xfffff0, 24],
    [0x1fffdf, 21], [0x3fffdf, 22], [0x7fffeb, 23], [0x7fffec, 23],
    [0x1fffe0, 21], [0x1fffe1, 21], [0x3fffe0, 22], [0x1fffe2, 21],
    [0x7fffed, 23], [0x3fffe1, 22], [0x7fffee, 23], [0x7fffef, 23],
    [0xfffea, 20], [0x3fffe2, 22], [0x3fffe3, 22], [0x3fffe4, 22],
    [0x7ffff0, 23], [0x3fffe5, 22], [0x3fffe6, 22], [0x7ffff1, 23],
    [0x3ffffe0, 26], [0x3ffffe1, 26], [0xfffeb, 20], [0x7fff1, 19],
    [0x3fffe7, 22], [0x7ffff2, 23], [0x3fffe8, 22], [0x1ffffec, 25],
    [0x3ffffe2, 26], [0x3ffffe3, 26], [0x3ffffe4, 26], [0x7ffffde, 27],
    [0x7ffffdf, 27], [0x3ffffe5, 26], [0xfffff1, 24], [0x1ffffed, 25],
    [0x7fff2, 19], [0x1fffe3, 21], [0x3ffffe6, 26], [0x7ffffe0, 27],
    [0x7ffffe1, 27], [0x3ffffe7, 26], [0x7ffffe2, 27], [0xfffff2, 24],
    [0x1fffe4, 21], [0x1fffe5, 21], [0x3ffffe8, 26], [0x3ffffe9, 26],
    [0xffffffd, 28], [0x7ffffe3, 27], [0x7ffffe4, 27], [0x7ffffe5, 27],
    [0xfffec, 20], [0xfffff3, 24], [0xfffed, 20], [0x1fffe6, 21],
    [0x3fffe9, 22], [0x1fffe7, 21], [0x1fffe8, 21], [0x7ffff3, 23],
    [0x3fffea, 22], [0x3fffeb, 22], [0x1ffffee, 25], [0x1ffffef, 25],
    [0xfffff4, 24], [0xfffff5, 24], [0x3ffffea, 26], [0x7ffff4, 23],
    [0x3ffffeb, 26], [0x7ffffe6, 27], [0x3ffffec, 26], [0x3ffffed, 26],
    [0x7ffffe7, 27], [0x7ffffe8, 27], [0x7ffffe9, 27], [0x7ffffea, 27],
    [0x7ffffeb, 27], [0xffffffe, 28], [0x7ffffec, 27], [0x7ffffed, 27],
    [0x7ffffee, 27], [0x7ffffef, 27], [0x7fffff0, 27], [0x3ffffee, 26],
);

my %HuffmanCode;
$HuffmanCode{"$Huffman[$_][1]:$Huffman[$_][0]"} = chr $_ for 0 .. 255;


# ---- the connection --------------------------------------------------------

# new(port => P, addr => '127.0.0.1', ca_file => F, verify_name => N,
#     window => SETTINGS_INITIAL_WINDOW_SIZE (65535))
sub new {
    my ($class, %a) = @_;

    my $addr = $a{addr} // '127.0.0.1';
    my $port = $a{port} or die "PerstackH2: no port\n";

    socket(my $fh, PF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
    connect($fh, pack_sockaddr_in($port, inet_aton($addr)))
        or die "connect $addr:$port: $!\n";

    IO::Socket::SSL->start_SSL($fh,
        SSL_alpn_protocols => ['h2'],
        SSL_ca_file => $a{ca_file},
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_PEER(),
        SSL_verifycn_name => $a{verify_name} // $addr,
        SSL_verifycn_scheme => 'http')
        or die "TLS with $addr:$port: $IO::Socket::SSL::SSL_ERROR\n";

    my $self = bless {
        fh => $fh, in => '', streams => {}, next_id => 1, eof => 0,
        window => $a{window} // 65535, dyn => [], dyn_size => 0,
        dyn_max => 4096, conn_credit => 0, alpn => $fh->alpn_selected,
    }, $class;

    die "PerstackH2: the server chose " . ($self->{alpn} // 'no protocol')
        . " by ALPN, not h2\n"
        unless ($self->{alpn} // '') eq 'h2';

    $fh->blocking(0);

    # no server push; each stream's window; the connection's window
    $self->send_raw($Preface
        . frame(SETTINGS, 0, 0, pack('nN nN', 0x2, 0, 0x4, $self->{window}))
        . frame(WINDOW_UPDATE, 0, 0, pack('N', $ConnWindow - 65535)));

    return $self;
}

sub frame {
    my ($type, $flags, $id, $payload) = @_;
    return substr(pack('N', length $payload), 1)
           . pack('CCN', $type, $flags, $id) . $payload;
}

sub send_raw {
    my ($self, $bytes) = @_;
    my $fh = $self->{fh} or die "PerstackH2: the connection is closed\n";
    my $off = 0;
    my $deadline = Time::HiRes::time() + 10;

    while ($off < length $bytes) {
        my $n = syswrite($fh, $bytes, length($bytes) - $off, $off);

        if (defined $n) {
            $off += $n;
            next;
        }

        die "PerstackH2: write: $!\n"
            unless $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR};
        die "PerstackH2: cannot write for 10 s\n"
            if Time::HiRes::time() > $deadline;
        IO::Select->new($fh)->can_write(0.1);
    }
}

sub close {
    my ($self) = @_;
    if ($self->{fh}) {
        CORE::close($self->{fh});
        $self->{fh} = undef;
    }
    $self->{eof} = 1;
}


# ---- requests --------------------------------------------------------------

sub hpack_int {
    my ($v, $bits, $first) = @_;
    my $max = (1 << $bits) - 1;
    return chr($first | $v) if $v < $max;
    my $s = chr($first | $max);
    $v -= $max;
    while ($v >= 128) {
        $s .= chr(($v & 127) | 128);
        $v >>= 7;
    }
    return $s . chr $v;
}

sub hpack_str { hpack_int(length $_[0], 7, 0) . $_[0] }

# request(method => 'GET', path => P, headers => [name => value, ...],
#         manual => 1): the stream's id.  A request has no body.
sub request {
    my ($self, %a) = @_;

    my $id = $self->{next_id};
    $self->{next_id} += 2;

    my $method = $a{method} // 'GET';
    my @h = @{ $a{headers} // [] };

    # (literal fields without indexing, none Huffman-coded)
    my $block = $method eq 'GET' ? "\x82"
              : $method eq 'POST' ? "\x83"
              : hpack_int(2, 4, 0) . hpack_str($method);
    $block .= "\x87"
              . hpack_int(4, 4, 0) . hpack_str($a{path} // '/')
              . hpack_int(1, 4, 0) . hpack_str($a{authority} // 'localhost');

    while (my ($k, $v) = splice @h, 0, 2) {
        $block .= "\x00" . hpack_str(lc $k) . hpack_str($v);
    }

    die "PerstackH2: a header block over 16384 bytes\n"
        if length $block > 16384;

    $self->{streams}{$id} = {
        id => $id, method => $method, path => $a{path}, status => undef,
        headers => {}, data => '', received => 0,
        credited => $self->{window}, manual => $a{manual} ? 1 : 0,
        done => 0, end_stream => 0, reset => undef,
    };

    $self->send_raw(frame(HEADERS, END_STREAM | END_HEADERS, $id, $block));

    return $id;
}

sub stream { $_[0]{streams}{$_[1]} }

# RST_STREAM: the client gives up the stream (CANCEL unless $code says).
sub reset {
    my ($self, $id, $code) = @_;
    my $st = $self->{streams}{$id};
    $self->send_raw(frame(RST_STREAM, 0, $id, pack('N', $code // 0x8)));
    $st->{done} = $st->{cancelled} = 1 if $st && !$st->{done};
}

# The test has read $n more bytes of a manual stream: its window grows.
sub credit {
    my ($self, $id, $n) = @_;
    my $st = $self->{streams}{$id} or die "PerstackH2: no stream $id\n";
    return if $st->{done} || $n <= 0;
    $st->{credited} += $n;
    $self->send_raw(frame(WINDOW_UPDATE, 0, $id, pack('N', $n)));
}

# The window a manual stream has left: 0 when the server may send it
# nothing more until the test credits it.
sub window_left {
    my ($self, $id) = @_;
    my $st = $self->{streams}{$id};
    return $st->{credited} - $st->{received};
}


# ---- reading ---------------------------------------------------------------

# One read: waits at most $timeout s.  The bytes read, 0 at the end of the
# connection, undef when nothing came.
sub pump {
    my ($self, $timeout) = @_;

    return 0 if $self->{eof};

    my $fh = $self->{fh};

    if (!$fh->pending) {
        return undef unless IO::Select->new($fh)->can_read($timeout);
    }

    my $n = sysread($fh, my $buf, 1 << 16);

    if (!defined $n) {
        return undef if $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR};
        $self->{error} = "read: $!";
        $n = 0;
    }

    if ($n == 0) {
        $self->{eof} = 1;
        for my $st (values %{ $self->{streams} }) {
            $st->{cut} = 1 unless $st->{done};
            $st->{done} = 1;
        }
        return 0;
    }

    $self->{in} .= $buf;
    $self->frames;
    $self->give_back;

    return $n;
}

# Reads until $cond->($self) is true (its value), the connection ends or
# $timeout s pass (0).
sub wait_for {
    my ($self, $cond, $timeout) = @_;
    my $deadline = Time::HiRes::time() + $timeout;

    while (1) {
        my $v = $cond->($self);
        return $v if $v;
        return 0 if $self->{eof};
        my $left = $deadline - Time::HiRes::time();
        return 0 if $left <= 0;
        $self->pump($left < 0.2 ? $left : 0.2);
    }
}

# Reads what has arrived, without waiting.
sub read_available {
    my ($self) = @_;
    while (1) {
        my $n = $self->pump(0);
        last unless $n;
    }
}

sub frames {
    my ($self) = @_;

    while (length $self->{in} >= 9) {
        my $len = unpack 'N', "\0" . substr($self->{in}, 0, 3);
        last if length $self->{in} < 9 + $len;

        my ($type, $flags, $id) = unpack 'CCN', substr($self->{in}, 3, 6);
        $id &= 0x7fffffff;
        my $payload = substr($self->{in}, 9, $len);
        substr($self->{in}, 0, 9 + $len, '');

        $self->frame_in($type, $flags, $id, $payload);
    }
}

sub frame_in {
    my ($self, $type, $flags, $id, $payload) = @_;
    my $st = $self->{streams}{$id};

    if ($type == SETTINGS) {
        $self->send_raw(frame(SETTINGS, ACK, 0, '')) unless $flags & ACK;

    } elsif ($type == PING) {
        $self->send_raw(frame(PING, ACK, 0, $payload)) unless $flags & ACK;

    } elsif ($type == GOAWAY) {
        $self->{goaway} = [ unpack 'NN', $payload ];
        $self->{goaway}[0] &= 0x7fffffff;

    } elsif ($type == DATA) {
        my $len = length $payload;
        $self->{conn_credit} += $len;

        $payload = unpad($payload, $flags);

        return unless $st;

        $st->{received} += $len;
        $st->{data} .= $payload;
        $st->{auto_credit} += $len unless $st->{manual};

        $self->stream_end($st) if $flags & END_STREAM;

    } elsif ($type == HEADERS || $type == CONTINUATION) {
        if ($type == HEADERS) {
            $payload = unpad($payload, $flags);
            substr($payload, 0, 5, '') if $flags & PRIORITY_FLAG;
            $self->{hblock} = '';
            $self->{hstream} = $id;
            $self->{hend} = $flags & END_STREAM;
        }

        $self->{hblock} .= $payload;
        return unless $flags & END_HEADERS;

        my @h = $self->hpack_decode($self->{hblock});
        $st = $self->{streams}{ $self->{hstream} } or return;

        my $into = defined $st->{status} ? ($st->{trailers} = {})
                                         : $st->{headers};
        for my $h (@h) {
            if ($h->[0] eq ':status' && !defined $st->{status}) {
                $st->{status} = $h->[1];
            } else {
                $into->{ $h->[0] } = exists $into->{ $h->[0] }
                                     ? "$into->{ $h->[0] }, $h->[1]"
                                     : $h->[1];
            }
        }

        $self->stream_end($st) if $self->{hend};

    } elsif ($type == RST_STREAM) {
        return unless $st;
        $st->{reset} = unpack 'N', $payload;
        $st->{done} = 1;
    }

    # PRIORITY, WINDOW_UPDATE (nothing is sent that needs them), and
    # PUSH_PROMISE (refused by the settings) are left alone
}

sub unpad {
    my ($payload, $flags) = @_;
    return $payload unless $flags & PADDED;
    my $pad = ord substr($payload, 0, 1);
    return substr($payload, 1, length($payload) - 1 - $pad);
}

sub stream_end {
    my ($self, $st) = @_;
    $st->{end_stream} = 1;
    $st->{done} = 1;
}

# The windows taken by what arrived, given back: always the connection's,
# and the streams' that are not in the test's hands.
sub give_back {
    my ($self) = @_;
    my $out = '';

    if ($self->{conn_credit}) {
        $out .= frame(WINDOW_UPDATE, 0, 0, pack('N', $self->{conn_credit}));
        $self->{conn_credit} = 0;
    }

    for my $st (values %{ $self->{streams} }) {
        my $n = $st->{auto_credit} or next;
        $st->{auto_credit} = 0;
        next if $st->{done};
        $st->{credited} += $n;
        $out .= frame(WINDOW_UPDATE, 0, $st->{id}, pack('N', $n));
    }

    $self->send_raw($out) if length $out && $self->{fh};
}


# ---- header blocks (RFC 7541) ----------------------------------------------

sub hpack_decode {
    my ($self, $block) = @_;
    my $p = 0;
    my @h;

    while ($p < length $block) {
        my $b = ord substr($block, $p, 1);

        if ($b & 0x80) {
            push @h, [ @{ $self->entry(dec_int(\$block, \$p, 7)) } ];

        } elsif (($b & 0xc0) == 0x40) {
            my $i = dec_int(\$block, \$p, 6);
            my $name = $i ? $self->entry($i)->[0] : dec_str(\$block, \$p);
            my $value = dec_str(\$block, \$p);
            push @h, [ $name, $value ];
            $self->dyn_add($name, $value);

        } elsif (($b & 0xe0) == 0x20) {
            $self->{dyn_max} = dec_int(\$block, \$p, 5);
            $self->dyn_add();

        } else {
            my $i = dec_int(\$block, \$p, 4);
            my $name = $i ? $self->entry($i)->[0] : dec_str(\$block, \$p);
            push @h, [ $name, dec_str(\$block, \$p) ];
        }
    }

    return @h;
}

sub entry {
    my ($self, $i) = @_;
    return $Static[$i - 1] if $i >= 1 && $i <= @Static;
    my $e = $self->{dyn}[$i - @Static - 1];
    die "PerstackH2: HPACK index $i is in no table\n" unless $e;
    return $e;
}

# Adds an entry (none: only evicts) to the dynamic table.
sub dyn_add {
    my ($self, $name, $value) = @_;

    if (defined $name) {
        unshift @{ $self->{dyn} }, [ $name, $value ];
        $self->{dyn_size} += length($name) + length($value) + 32;
    }

    while ($self->{dyn_size} > $self->{dyn_max} && @{ $self->{dyn} }) {
        my $e = pop @{ $self->{dyn} };
        $self->{dyn_size} -= length($e->[0]) + length($e->[1]) + 32;
    }
}

sub dec_int {
    my ($s, $p, $bits) = @_;
    my $max = (1 << $bits) - 1;
    die "PerstackH2: a header block ends in an integer\n"
        if $$p >= length $$s;
    my $v = ord(substr $$s, $$p++, 1) & $max;
    return $v if $v < $max;

    my $m = 0;
    while (1) {
        die "PerstackH2: a header block ends in an integer\n"
            if $$p >= length $$s;
        my $b = ord substr $$s, $$p++, 1;
        $v += ($b & 127) << $m;
        $m += 7;
        last unless $b & 128;
    }
    return $v;
}

sub dec_str {
    my ($s, $p) = @_;
    die "PerstackH2: a header block ends in a string\n"
        if $$p >= length $$s;
    my $huff = ord(substr $$s, $$p, 1) & 0x80;
    my $len = dec_int($s, $p, 7);
    die "PerstackH2: a string runs past its header block\n"
        if $$p + $len > length $$s;
    my $raw = substr $$s, $$p, $len;
    $$p += $len;
    return $huff ? huffman_decode($raw) : $raw;
}

sub huffman_decode {
    my ($raw) = @_;
    my ($out, $code, $bits) = ('', 0, 0);

    for my $bit (split //, unpack 'B*', $raw) {
        $code = ($code << 1) | $bit;
        $bits++;
        if (defined(my $c = $HuffmanCode{"$bits:$code"})) {
            $out .= $c;
            ($code, $bits) = (0, 0);
        } elsif ($bits > 30) {
            die "PerstackH2: not a Huffman code\n";
        }
    }

    # the padding: fewer than 8 bits of EOS's prefix (all ones)
    die "PerstackH2: bad Huffman padding\n"
        if $bits > 7 || $code != (1 << $bits) - 1;

    return $out;
}

1;
