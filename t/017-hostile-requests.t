# Hostile requests (issue #5, item 5): truncated and malformed JSON, wrong
# types, unknown and repeated members, deep nesting, invalid UTF-8, very
# long headers and arguments, slow (slowloris-style) clients and
# request-smuggling-style framing.  Each gets a clear 4xx (the module's JSON
# error, or nginx's own page where nginx refuses first) and no container is
# created; the worker survives and serves the next request.
#
# What t/002-request.t already covers is not repeated here (the missing
# brace, null, arrays and strings as the body, one unknown field, repeated
# expert and query, "\u0000", bodies over client_body_buffer_size, chunked
# bodies, a 70000-byte query, 128/129-character experts).
#
# Many cases run in one block ("--- check" subs), on one worker: the worker
# must survive all of them; the container count is taken at the end.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx::Socket;
use Perstack;
use IO::Select ();
use IO::Socket::INET ();
use Socket qw(SHUT_WR);
use Time::HiRes ();

master_on();
workers(1);

# a slow client's writes may hit a connection nginx closed
$SIG{PIPE} = 'IGNORE';

my $locations = <<'_EOC_';
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    }

    location = /big {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        client_body_buffer_size 1m;
        client_max_body_size 2m;
    }

    # the callback refuses (403) when it sees only the module's own
    # X-Perstack-* headers, and answers 401 when a client's got through
    location = /strip {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_approval_request /approve-strip;
    }

    location = /approve-strip {
        internal;
        if ($http_x_perstack_forged) {
            return 401;
        }
        if ($http_x_perstack_forged_199) {
            return 401;
        }
        if ($http_x_perstack_expert != "demo") {
            return 401;
        }
        if ($http_x_perstack_query_length != "2") {
            return 401;
        }
        return 403;
    }

    location = /ok {
        return 200 "ok\n";
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

    my $extra = $block->server_config // '';
    $block->set_value('config', $extra . $locations)
        unless defined $block->config;

    # the table blocks count the containers themselves, at their end
    $block->set_value('containers_created', 0)
        unless defined $block->containers_created || defined $block->check;

    if (defined $block->check && !defined $block->request
        && !defined $block->raw_request)
    {
        $block->set_value('request', "GET /ok\n");
        $block->set_value('response_body', "ok\n");
    }

    # with a master process, a crashed worker is reported ([alert])
    my $nel = $block->no_error_log // '';
    $block->set_value('no_error_log', $nel . "exited on signal\n");
});


# ---- helpers ---------------------------------------------------------------

sub port {
    return $Test::Nginx::Util::ServerPortForClient
           || $Test::Nginx::Util::ServerPort;
}

sub raw_connect {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => port(),
                                  Proto => 'tcp', Timeout => 5)
        or die "connect 127.0.0.1:" . port() . ": $!\n";
    binmode $s;
    return $s;
}

# Writes all of $data; false when the connection refused it (closed).
sub write_all {
    my ($s, $data) = @_;
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite($s, $data, length($data) - $off, $off);
        return 0 unless defined $n;
        $off += $n;
    }
    return 1;
}

# Reads until the server closes (EOF or a reset) or $timeout passes:
# (bytes, closed).
sub read_to_eof {
    my ($s, $timeout) = @_;
    my $deadline = Time::HiRes::time() + $timeout;
    my $sel = IO::Select->new($s);
    my $buf = '';

    while ((my $left = $deadline - Time::HiRes::time()) > 0) {
        next unless $sel->can_read($left);
        my $n = sysread($s, my $chunk, 65536);
        if (!defined $n) {
            next if $!{EINTR} || $!{EAGAIN};
            return ($buf, 1);           # reset: closed too
        }
        return ($buf, 1) if $n == 0;
        $buf .= $chunk;
    }

    return ($buf, 0);
}

# Reads one response (nginx's pages have a Content-Length): until the body
# is complete or the server closes, at most $timeout seconds.  nginx may keep
# the connection open after the response, to discard a body it refused
# (lingering), so EOF is not waited for.  Returns (bytes, complete).
sub read_response {
    my ($s, $timeout) = @_;
    my $deadline = Time::HiRes::time() + $timeout;
    my $sel = IO::Select->new($s);
    my $buf = '';

    while (1) {
        my $i = index($buf, "\r\n\r\n");
        if ($i >= 0) {
            my ($len) = substr($buf, 0, $i) =~ /\r\nContent-Length: *(\d+)/i;
            return ($buf, 1)
                if defined $len && length($buf) >= $i + 4 + $len;
        }

        my $left = $deadline - Time::HiRes::time();
        return ($buf, 0) if $left <= 0;
        next unless $sel->can_read($left);

        my $n = sysread($s, my $chunk, 65536);
        if (!defined $n) {
            next if $!{EINTR} || $!{EAGAIN};
            return ($buf, 0);
        }
        return ($buf, 0) if $n == 0;
        $buf .= $chunk;
    }
}

# A response read off a raw socket, with what Perstack::check_json_error
# needs (header, content).
{
    package RawResponse;

    sub new {
        my ($class, $raw) = @_;
        my ($head, $body) = split /\r\n\r\n/, $raw, 2;
        my ($status) = ($head // '') =~ m{\AHTTP/1\.[01] (\d{3})};
        my %h;
        for (split /\r\n/, $head // '') {
            $h{lc $1} = $2 if /^([^:]+):\s*(.*)$/;
        }
        return bless { status => $status, h => \%h, body => $body // '' },
                     $class;
    }

    sub header  { $_[0]{h}{lc $_[1]} }
    sub content { $_[0]{body} }
    sub code    { $_[0]{status} }
}

# The same view of a Perstack::Client.
{
    package ClientView;
    sub new     { bless { c => $_[1] }, $_[0] }
    sub header  { $_[0]{c}->header($_[1]) }
    sub content { $_[0]{c}{body} }
    sub code    { $_[0]{c}{status} }
}

# One request of a table: the status and the JSON error body.
sub expect_error {
    my ($name, %a) = @_;

    my $method = $a{method} // 'POST';
    my $c = http_request(method => $method,
                         path => $a{path} // '/run',
                         body => $a{body},
                         headers => $a{headers}
                                    // ($method eq 'POST'
                                        ? ['Content-Type' => 'application/json']
                                        : []),
                         timeout => 20);

    ok($c->{eof}, "$name - the response ends");

    if (!is($c->{status}, $a{status}, "$name - status $a{status}")) {
        diag("response: " . printable(($c->{head} // '') . "\n\n"
                                      . ($c->{body} // '')));
    }

    Perstack::check_json_error($name, ClientView->new($c), $a{json});

    return $c;
}

# The worker still serves, and it is the same process.
sub still_serving {
    my ($name, $pid) = @_;

    my $c = http_request(method => 'GET', path => '/ok', timeout => 10);
    ok(($c->{status} // 0) == 200 && $c->{body} eq "ok\n",
       "$name - the worker still serves a normal request");
    is(worker_pid(), $pid, "$name - the same worker process (no crash)");
}

sub containers_since {
    my ($block, $want) = @_;
    my $name = $block->name;
    my @c = container_creates_since($block->perstack_t0);
    is(scalar @c, $want, "$name - $want container(s) labelled "
                         . "io.perstack.managed created");
}

# Runs a table of [label, body, json-error spec, status (400), path (/run)].
sub run_table {
    my ($block, $cases) = @_;
    my $name = $block->name;
    my $pid = worker_pid();

    for my $case (@$cases) {
        my ($label, $body, $spec, $status, $path) = @$case;
        expect_error("$name: $label", body => $body, json => $spec,
                     status => $status // 400, path => $path // '/run');
    }

    still_serving($name, $pid);
    containers_since($block, 0);
}

# "field X is not a string" in the README's words: the message names the
# member and says what it must be
sub not_string { my $f = shift; "error: bad_request\nmessage: ~(?=.*\\b$f\\b)(?=.*string)\n" }

my $BAD_JSON = "error: bad_request\nmessage: ~(?i)json\n";
my $BAD = "error: bad_request\n";


# ---- 1. truncated and malformed JSON -----------------------------------------

sub check_truncated {
    my ($block) = @_;

    run_table($block, [
        [ 'cut inside a string',       '{"expert":"de',               $BAD_JSON ],
        [ 'cut after a colon',         '{"expert":',                  $BAD_JSON ],
        [ 'cut after a member name',   '{"expert"',                   $BAD_JSON ],
        [ 'an opening brace alone',    '{',                           $BAD_JSON ],
        [ 'cut after a comma',         '{"expert":"demo","query":"hi",', $BAD_JSON ],
        [ 'cut inside an escape',      '{"expert":"demo","query":"a\\', $BAD_JSON ],
        [ 'cut inside a \\u escape',   '{"expert":"demo","query":"a\\u00', $BAD_JSON ],
        [ 'cut inside a literal',      '{"expert":"demo","query":"hi","jobId":nu', $BAD_JSON ],
        [ 'white space only',          " \t\r\n  \r\n",                $BAD ],
        [ 'garbage after the object',  '{"expert":"demo","query":"hi"} x', $BAD_JSON ],
        [ 'two empty objects',         '{}{}',                        $BAD_JSON ],
        [ 'a bracket after the object', '{"expert":"demo","query":"hi"}]', $BAD_JSON ],
        [ 'a raw NUL after the object', qq({"expert":"demo","query":"hi"}\0), $BAD_JSON ],
        [ 'a raw NUL inside a string', qq({"expert":"demo","query":"a\0b"}), $BAD ],
        [ 'a raw control character inside a string',
                                       qq({"expert":"demo","query":"a\x01b"}), $BAD ],
        [ 'a raw line break inside a string',
                                       qq({"expert":"demo","query":"a\nb"}), $BAD ],
        [ 'a trailing comma',          '{"expert":"demo","query":"hi",}', $BAD_JSON ],
        [ 'a /* comment */',           '{"expert":"demo",/* c */"query":"hi"}', $BAD_JSON ],
        [ 'a // comment',              qq({"expert":"demo",// c\n"query":"hi"}), $BAD_JSON ],
        [ 'single quotes',             q({'expert':'demo','query':'hi'}), $BAD_JSON ],
        [ 'NaN as a value',            '{"expert":"demo","query":NaN}', $BAD_JSON ],
        [ 'a member name without quotes', '{expert:"demo","query":"hi"}', $BAD_JSON ],
    ]);
}

# A body whose Content-Length promises more than is sent, then the client
# closes: nginx sees the end of the connection while reading the body
# (c->error), answers nothing and closes; the module never parses it.
# The status line and headers of a response, read as they come (at most
# $timeout seconds); '' if none.
sub read_response_head {
    my ($s, $timeout) = @_;

    my $buf = '';
    my $sel = IO::Select->new($s);
    my $deadline = Time::HiRes::time() + $timeout;

    while ($buf !~ /\r\n\r\n/) {
        my $left = $deadline - Time::HiRes::time();
        last if $left <= 0 || !$sel->can_read($left);
        my $n = sysread $s, $buf, 65536, length $buf;
        last unless $n;
    }

    return $buf;
}

sub check_truncated_close {
    my ($block) = @_;
    my $name = $block->name;
    my $pid = worker_pid();

    my $json = '{"expert":"demo","query":"hello there"}';

    my @cases = (
        [ 'Content-Length 100, 20 bytes sent with the header',
          "POST /run HTTP/1.1\r\nHost: localhost\r\n"
          . "Content-Type: application/json\r\nContent-Length: 100\r\n"
          . "\r\n" . substr($json, 0, 20), undef ],
        [ 'Content-Length 100, the header, then 20 bytes apart',
          "POST /run HTTP/1.1\r\nHost: localhost\r\n"
          . "Content-Type: application/json\r\nContent-Length: 100\r\n"
          . "\r\n", substr($json, 0, 20) ],
        [ 'Content-Length 50000 (over client_body_buffer_size), 20000 bytes sent',
          "POST /run HTTP/1.1\r\nHost: localhost\r\n"
          . "Content-Type: application/json\r\nContent-Length: 50000\r\n"
          . "\r\n", '{"expert":"demo","query":"' . ('a' x 19974), 413 ],
        [ 'a chunked body cut inside a chunk',
          "POST /run HTTP/1.1\r\nHost: localhost\r\n"
          . "Content-Type: application/json\r\n"
          . "Transfer-Encoding: chunked\r\n\r\n",
          sprintf("%x\r\n", length $json) . substr($json, 0, 20) ],
    );

    for my $case (@cases) {
        my ($label, $head, $more, $early_status) = @$case;
        my $n = "$name: $label";

        my $s = raw_connect();
        write_all($s, $head);

        if (defined $more && defined $early_status) {
            # a length over client_body_buffer_size is refused at once,
            # before the body is read
            my $early = read_response_head($s, 10);
            like($early, qr{\AHTTP/1\.1 $early_status },
                 "$n - $early_status before the body");
            write_all($s, $more);

        } elsif (defined $more) {
            # the header first, the body on its own read
            my ($early, $closed) = read_to_eof($s, 0.2);
            is($early, '', "$n - nothing is answered before the body");
            write_all($s, $more);
        }

        shutdown($s, SHUT_WR);

        my ($got, $closed) = read_to_eof($s, 10);
        close $s;

        ok($closed, "$n - nginx closes the connection");
        is($got, '', "$n - and answers nothing (the client is gone)");
    }

    still_serving($name, $pid);
    containers_since($block, 0);
}


# ---- 2. wrong types --------------------------------------------------------

sub check_types {
    my ($block) = @_;

    run_table($block, [
        [ 'expert is a number',        '{"expert":42,"query":"hi"}', not_string('expert') ],
        [ 'expert is a huge number',   '{"expert":1e999999,"query":"hi"}', not_string('expert') ],
        [ 'expert is a long integer',  '{"expert":' . ('9' x 400) . ',"query":"hi"}', not_string('expert') ],
        [ 'expert is true',            '{"expert":true,"query":"hi"}', not_string('expert') ],
        [ 'expert is false',           '{"query":"hi","expert":false}', not_string('expert') ],
        [ 'expert is an object',       '{"expert":{"name":"demo"},"query":"hi"}', not_string('expert') ],
        [ 'query is false',            '{"expert":"demo","query":false}', not_string('query') ],
        [ 'query is null',             '{"expert":"demo","query":null}', not_string('query') ],
        [ 'query is an array',         '{"expert":"demo","query":["hi"]}', not_string('query') ],
        [ 'query is a negative float', '{"expert":"demo","query":-0.5e-3}', not_string('query') ],
        [ 'jobId is a number',         '{"expert":"demo","query":"hi","jobId":123}', not_string('jobId') ],
        [ 'jobId is true',             '{"expert":"demo","query":"hi","jobId":true}', not_string('jobId') ],
        [ 'jobId is null',             '{"expert":"demo","query":"hi","jobId":null}', not_string('jobId') ],
        [ 'jobId is an empty array',   '{"expert":"demo","query":"hi","jobId":[]}', not_string('jobId') ],
        [ 'jobId is an empty object',  '{"expert":"demo","query":"hi","jobId":{}}', not_string('jobId') ],
        [ 'answer is a number',        '{"expert":"demo","jobId":"j1","answer":1}', not_string('answer') ],
        [ 'answer is false',           '{"expert":"demo","jobId":"j1","answer":false}', not_string('answer') ],
        [ 'answer is null',            '{"expert":"demo","jobId":"j1","answer":null}', not_string('answer') ],
        [ 'answer is an array',        '{"expert":"demo","jobId":"j1","answer":["yes"]}', not_string('answer') ],
        [ 'answer is an object',       '{"expert":"demo","jobId":"j1","answer":{"a":1}}', not_string('answer') ],
        [ 'the body is a number',      '42',        "error: bad_request\nmessage: ~object\n" ],
        [ 'the body is true',          'true',      "error: bad_request\nmessage: ~object\n" ],
        [ 'the body is false',         'false',     "error: bad_request\nmessage: ~object\n" ],
        [ 'the body is a float',       '-0.5e10',   "error: bad_request\nmessage: ~object\n" ],
        [ 'the body is an empty string', '""',      "error: bad_request\nmessage: ~object\n" ],
        [ 'the body is an array of objects',
          '[{"expert":"demo","query":"hi"}]',       "error: bad_request\nmessage: ~object\n" ],
    ]);
}


# ---- 3. unknown, repeated and deeply nested members --------------------------

sub check_members {
    my ($block) = @_;

    my $long = 'n' x 10000;

    run_table($block, [
        [ 'an unknown member before the known ones',
          '{"zzz":1,"expert":"demo","query":"hi"}', "error: bad_request\nmessage: ~(?i)unknown\n" ],
        [ 'a member name in another case',
          '{"Expert":"demo","query":"hi"}', "error: bad_request\nmessage: ~(?i)unknown\n" ],
        [ 'a member name with a trailing space',
          '{"expert ":"demo","query":"hi"}', "error: bad_request\nmessage: ~(?i)unknown\n" ],
        [ 'a member name with an escaped NUL after a known name',
          '{"expert\\u0000":"demo","query":"hi"}', $BAD ],
        [ 'an empty member name',
          '{"":"x","expert":"demo","query":"hi"}', "error: bad_request\nmessage: ~(?i)unknown\n" ],
        [ 'an unknown member of 10000 bytes (not echoed in full)',
          qq({"expert":"demo","query":"hi","$long":1}),
          "error: bad_request\nmessage: ~\\A(?!.*n{64}).{1,200}\\z\n",
          400, '/big' ],
        [ 'an unknown member whose value is null',
          '{"expert":"demo","query":"hi","x":null}', "error: bad_request\nmessage: ~(?i)unknown\n" ],
        [ 'jobId twice',
          '{"expert":"demo","query":"hi","jobId":"a","jobId":"b"}', "error: bad_request\nmessage: ~\\bjobId\\b\n" ],
        [ 'answer twice',
          '{"expert":"demo","answer":"a","answer":"b"}', "error: bad_request\nmessage: ~\"answer\"\n" ],
        [ 'expert twice, the second name escaped',
          '{"expert":"demo","\\u0065xpert":"demo","query":"hi"}', "error: bad_request\nmessage: ~\\bexpert\\b\n" ],
        [ 'query twice, with the same value',
          '{"expert":"demo","query":"hi","query":"hi"}', "error: bad_request\nmessage: ~\\bquery\\b\n" ],
        # a positive control: an escaped member name is the same name
        [ 'an escaped member name is decoded (expert_not_allowed, not unknown)',
          '{"\\u0065xpert":"not allowed","query":"hi"}',
          "error: expert_not_allowed\nexpert: not allowed\n", 403 ],
    ]);
}

# 100000 nested arrays or objects, where a string is due, as an unknown
# member's value, as the whole body, and left open: refused at once, and the
# worker's stack is not exhausted.
sub check_nesting {
    my ($block) = @_;

    my $n = 100000;
    my $arrays = ('[' x $n) . (']' x $n);
    my $objects = ('{"a":' x $n) . '1' . ('}' x $n);

    run_table($block, [
        [ "$n nested arrays as the expert",
          qq({"expert":$arrays,"query":"hi"}), not_string('expert'), 400, '/big' ],
        [ "$n nested arrays as the answer",
          qq({"expert":"demo","jobId":"j","answer":$arrays}), not_string('answer'), 400, '/big' ],
        [ "$n nested objects as jobId",
          qq({"expert":"demo","query":"hi","jobId":$objects}), not_string('jobId'), 400, '/big' ],
        [ "$n nested arrays as an unknown member's value",
          qq({"expert":"demo","query":"hi","deep":$arrays}), "error: bad_request\nmessage: ~(?i)unknown\n", 400, '/big' ],
        [ "$n nested arrays as the whole body",
          $arrays, "error: bad_request\nmessage: ~object\n", 400, '/big' ],
        [ "$n nested objects as the whole body",
          $objects, "error: bad_request\nmessage: ~(?i)unknown\n", 400, '/big' ],
        [ "500000 opening brackets, never closed",
          '[' x 500000, $BAD, 400, '/big' ],
        [ "500000 opening brackets inside the object, never closed",
          '{"expert":' . ('[' x 500000), not_string('expert'), 400, '/big' ],
        # brackets inside a string are text: the request is parsed
        [ "60000 brackets inside the query string",
          '{"expert":"not allowed","query":"' . ('[' x 60000) . '"}',
          "error: expert_not_allowed\nexpert: not allowed\n", 403, '/big' ],
    ]);
}


# ---- 4. invalid UTF-8 and surrogates ------------------------------------------

sub check_utf8 {
    my ($block) = @_;

    my $q = sub { qq({"expert":"demo","query":"$_[0]"}) };
    my $e = sub { qq({"expert":"$_[0]","query":"hi"}) };

    run_table($block, [
        [ 'a 0xFF byte in the query',                 $q->("a\xFFb"), $BAD ],
        [ 'a UTF-8 sequence cut short in the query',  $q->("a\xC3"), $BAD ],
        [ 'a lone continuation byte in the query',    $q->("a\x80b"), $BAD ],
        [ 'an overlong "/" (C0 AF) in the query',     $q->("a\xC0\xAFb"), $BAD ],
        [ 'an overlong "/" (E0 80 AF) in the query',  $q->("a\xE0\x80\xAFb"), $BAD ],
        [ 'an overlong NUL (C0 80) in the query',     $q->("a\xC0\x80b"), $BAD ],
        [ 'a surrogate encoded in UTF-8 (ED A0 80)',  $q->("a\xED\xA0\x80b"), $BAD ],
        [ 'a code point above U+10FFFF (F4 90 80 80)', $q->("a\xF4\x90\x80\x80b"), $BAD ],
        [ 'a five-byte form (F8 88 80 80 80)',        $q->("a\xF8\x88\x80\x80\x80b"), $BAD ],
        [ 'an overlong "/" in the expert',            $e->("\xC0\xAF"), $BAD ],
        [ 'an escaped lone low surrogate (\\udc00) in the query', $q->('a\\udc00b'), $BAD ],
        [ 'an escaped lone low surrogate (\\udc00) in the expert', $e->('\\udc00'), $BAD ],
        [ 'invalid UTF-8 in an unknown member name',
          qq({"\xC0\xAF":1,"expert":"demo","query":"hi"}), $BAD ],
        [ 'invalid UTF-8 (0xFF) in an unknown member name',
          qq({"\xFF":1,"expert":"demo","query":"hi"}), $BAD ],
    ]);
}

# A lone high surrogate is as invalid as a lone low one (the module refuses
# "\udc00", above).  In the expert, so that a wrong acceptance shows as the
# expert_not_allowed answer (what the expert became) and starts nothing.
sub check_high_surrogates {
    my ($block) = @_;

    my $e = sub { qq({"expert":"$_[0]","query":"hi"}) };

    run_table($block, [
        [ 'an escaped lone high surrogate (\\ud800) as the expert',
          $e->('\\ud800'), $BAD ],
        [ 'an escaped lone high surrogate followed by text (\\ud800demo)',
          $e->('\\ud800demo'), $BAD ],
        [ 'a high surrogate followed by a non-surrogate escape (\\ud800\\u0041)',
          $e->('\\ud800\\u0041'), $BAD ],
        [ 'two high surrogates (\\ud800\\ud800)',
          $e->('\\ud800\\ud800'), $BAD ],
    ]);
}

# A valid surrogate pair is one character, echoed as valid JSON.
sub check_surrogate_pair {
    my ($block, undef, $res) = @_;
    my $name = $block->name;

    my $obj = eval { json_decode($res->content) } || {};
    is($obj->{expert}, "x\x{1F600}y",
       "$name - the pair is decoded into U+1F600");
}

# GET arguments are not JSON: bytes that are not UTF-8 may be refused (400)
# or run; a run must stream well-formed events all the same (the runtime
# echoes the query; what is not UTF-8 must not reach the stream raw).
sub check_get_invalid_utf8 {
    my ($block, undef, $res) = @_;
    my $name = $block->name;

    if ($res->code == 200) {
        my $s = parse_sse($res->content);
        check_stream($name, Perstack::response_view($res), $s,
                     format => 'sse', expert => 'demo', image => $Image);
        my $bad = grep { !utf8::decode(my $copy = $_->{data} // '') }
                  @{ $s->{events} };
        is($bad, 0, "$name - every event is valid UTF-8");
        containers_since($block, 1);

    } else {
        is($res->code, 400, "$name - refused with 400");
        Perstack::check_json_error($name, $res, "error: bad_request\n");
        containers_since($block, 0);
    }
}


# ---- 5. very long headers and arguments ----------------------------------------

# The query limit is 64 KiB (65536 bytes) of the decoded value, in bytes:
# at the limit the request goes on (to the expert check), one byte over it
# is refused.
sub check_query_limit_get {
    my ($block) = @_;

    my $pre = '/run?expert=not+allowed&query=';
    my $ok = "error: expert_not_allowed\nexpert: not allowed\n";
    my $over = "error: bad_request\nmessage: ~(?i)long\n";

    my @cases = (
        [ '65536 bytes',                      'a' x 65536, $ok, 403 ],
        [ '65537 bytes',                      'a' x 65537, $over, 400 ],
        [ '65536 bytes, percent-encoded',     '%61' x 65536, $ok, 403 ],
        [ '65537 bytes, percent-encoded',     '%61' x 65537, $over, 400 ],
        [ '32768 two-byte characters',        '%C3%A9' x 32768, $ok, 403 ],
        [ '32768 two-byte characters and one byte',
                                              ('%C3%A9' x 32768) . 'a', $over, 400 ],
    );

    my $pid = worker_pid();

    for my $case (@cases) {
        my ($label, $query, $spec, $status) = @$case;
        expect_error("$block->{name}: GET query of $label", method => 'GET',
                     path => $pre . $query, json => $spec, status => $status);
    }

    still_serving($block->name, $pid);
    containers_since($block, 0);
}

sub check_query_limit_post {
    my ($block) = @_;

    my $body = sub { '{"expert":"not allowed","query":"' . $_[0] . '"}' };
    my $ok = "error: expert_not_allowed\nexpert: not allowed\n";
    my $over = "error: bad_request\nmessage: ~(?i)long\n";

    run_table($block, [
        [ 'a query of 65536 bytes',  $body->('a' x 65536), $ok, 403, '/big' ],
        [ 'a query of 65537 bytes',  $body->('a' x 65537), $over, 400, '/big' ],
        [ 'a query of 32768 escaped two-byte characters (65536 bytes)',
          $body->('\\u00e9' x 32768), $ok, 403, '/big' ],
        [ 'a query of 32768 escaped two-byte characters and one byte',
          $body->(('\\u00e9' x 32768) . 'a'), $over, 400, '/big' ],
        [ 'a query of 16384 four-byte characters (65536 bytes, as pairs)',
          $body->('\\ud83d\\ude00' x 16384), $ok, 403, '/big' ],
        [ 'a query of 16384 four-byte characters and one byte',
          $body->(('\\ud83d\\ude00' x 16384) . 'a'), $over, 400, '/big' ],
    ]);
}

# Raw requests nginx refuses itself, before any handler: [label, request,
# status, body regex].  The answer is nginx's own page, not the module's
# JSON; what matters is the status and that nothing starts.
sub run_raw_table {
    my ($block, $cases) = @_;
    my $name = $block->name;
    my $pid = worker_pid();

    for my $case (@$cases) {
        my ($label, $req, $status, $like) = @$case;
        my $n = "$name: $label";

        my $s = raw_connect();
        write_all($s, $req);
        my ($got, $complete) = read_response($s, 10);
        close $s;

        my $res = RawResponse->new($got);
        ok($complete, "$n - a complete response");
        is($res->code, $status, "$n - status $status")
            or diag("got: " . printable($got));
        like($res->content, $like, "$n - the body");
    }

    still_serving($name, $pid);
    containers_since($block, 0);
}

sub req {
    my ($line, @headers) = @_;
    my $body = pop @headers;
    unshift @headers, 'Content-Type: application/json' if $line =~ /^POST /;
    return "$line\r\nHost: localhost\r\n"
           . join('', map { "$_\r\n" } @headers) . "\r\n" . $body;
}

my $TOO_LARGE = qr/Request Header Or Cookie Too Large/;
my $BAD_PAGE = qr/400 Bad Request/;

sub check_nginx_refuses {
    my ($block) = @_;

    run_raw_table($block, [
        [ 'a request line longer than large_client_header_buffers (8k)',
          req("GET /run?expert=demo&query=" . ('a' x 9000) . " HTTP/1.1",
              'Connection: close', ''),
          414, qr/414 Request-URI Too Large/ ],
        [ 'a single header of 64 KB',
          req('GET /run?expert=demo&query=hi HTTP/1.1', 'Connection: close',
              'X-Long: ' . ('h' x 65536), ''),
          400, $TOO_LARGE ],
        [ 'an X-Perstack-Expert header of 64 KB, to the approval location',
          req('GET /strip?expert=demo&query=hi HTTP/1.1', 'Connection: close',
              'X-Perstack-Expert: ' . ('d' x 65536), ''),
          400, $TOO_LARGE ],
        [ 'six headers of 7000 bytes (more than 4 x 8k buffers)',
          req('GET /run?expert=demo&query=hi HTTP/1.1', 'Connection: close',
              (map { "X-Big-$_: " . ('b' x 7000) } 1 .. 6), ''),
          400, $TOO_LARGE ],
        [ 'a raw NUL byte in the request line',
          req("GET /run?expert=demo&query=a\0b HTTP/1.1", 'Connection: close',
              ''),
          400, $BAD_PAGE ],
        [ 'a raw NUL byte in a header value',
          req('GET /run?expert=demo&query=hi HTTP/1.1', 'Connection: close',
              "X-Nul: a\0b", ''),
          400, $BAD_PAGE ],
        [ 'a raw NUL byte in a header name',
          req('GET /run?expert=demo&query=hi HTTP/1.1', 'Connection: close',
              "X-N\0ul: ab", ''),
          400, $BAD_PAGE ],
    ]);
}

sub check_framing {
    my ($block) = @_;

    my $json = '{"expert":"demo","query":"hi"}';
    my $chunked = sprintf("%x", length $json) . "\r\n$json\r\n0\r\n\r\n";
    my $post = 'POST /run HTTP/1.1';
    my $cl = 'Content-Length: ' . length $json;

    run_raw_table($block, [
        [ 'Content-Length and Transfer-Encoding: chunked together',
          req($post, 'Connection: close', $cl, 'Transfer-Encoding: chunked',
              $chunked),
          400, $BAD_PAGE ],
        [ 'Transfer-Encoding: chunked and Content-Length together',
          req($post, 'Connection: close', 'Transfer-Encoding: chunked', $cl,
              $chunked),
          400, $BAD_PAGE ],
        # RFC 9112 6.1: a transfer coding the server does not know is a 501
        [ 'Transfer-Encoding: gzip, chunked',
          req($post, 'Connection: close', 'Transfer-Encoding: gzip, chunked',
              $chunked),
          501, qr/501 Not Implemented/ ],
        [ 'Transfer-Encoding in an HTTP/1.0 request',
          req('POST /run HTTP/1.0', 'Transfer-Encoding: chunked', $chunked),
          400, $BAD_PAGE ],
        # nginx (since 1.21.1) refuses a space in a header name; were the
        # line ignored instead, the body would be empty (the module's 400):
        # either way the chunked body is never taken for the JSON
        [ 'a Transfer-Encoding header with a space before the colon',
          req($post, 'Connection: close', 'Transfer-Encoding : chunked',
              $chunked),
          400, qr/400 Bad Request|"bad_request"/ ],
        [ 'two Content-Length headers',
          req($post, 'Connection: close', $cl, $cl, $json),
          400, $BAD_PAGE ],
        [ 'an invalid Content-Length (3x)',
          req($post, 'Connection: close', 'Content-Length: 3x', $json),
          400, $BAD_PAGE ],
        [ 'a negative Content-Length',
          req($post, 'Connection: close', 'Content-Length: -1', $json),
          400, $BAD_PAGE ],
        [ 'a Content-Length with a plus sign',
          req($post, 'Connection: close', 'Content-Length: +' . length $json,
              $json),
          400, $BAD_PAGE ],
        [ 'a Content-Length beyond off_t',
          req($post, 'Connection: close',
              'Content-Length: 99999999999999999999999999', $json),
          400, $BAD_PAGE ],
        # the location's client_max_body_size is 2m: nginx refuses from the
        # header alone, without waiting for the body
        [ 'a Content-Length over client_max_body_size, no body sent',
          req('POST /big HTTP/1.1', 'Connection: close',
              'Content-Length: 1000000000000', ''),
          413, qr/413 Request Entity Too Large/ ],
        [ 'an invalid chunk size',
          req($post, 'Connection: close', 'Transfer-Encoding: chunked',
              "zz\r\n$json\r\n0\r\n\r\n"),
          400, $BAD_PAGE ],
        [ 'a chunk size beyond off_t',
          req($post, 'Connection: close', 'Transfer-Encoding: chunked',
              "ffffffffffffffffffffffff\r\n$json\r\n0\r\n\r\n"),
          400, $BAD_PAGE ],
    ]);
}


# ---- 6. slow clients ----------------------------------------------------------

# Sends $req one byte every $pace seconds (the pacing is the behaviour under
# test) and stops as soon as the server closes.  Returns (bytes sent, what
# came back, closed).
sub trickle {
    my ($s, $req, $pace, $from) = @_;
    my $sel = IO::Select->new($s);
    my ($sent, $got) = ($from // 0, '');

    while ($sent < length $req) {
        if ($sel->can_read($pace)) {
            my $n = sysread($s, my $buf, 65536);
            if (!defined $n || $n == 0) {
                return ($sent, $got, 1);
            }
            $got .= $buf;
            next;
        }

        last unless defined syswrite($s, substr($req, $sent, 1));
        $sent++;
    }

    # all sent (or the write failed): wait for the end, bounded
    my ($more, $closed) = read_to_eof($s, 10);
    return ($sent, $got . $more, $closed);
}

sub check_slow_header {
    my ($block) = @_;
    my $name = $block->name;
    my $pid = worker_pid();

    # a whole, valid execution request, if it ever arrived
    my $req = "GET /run?expert=demo&query=slowloris HTTP/1.1\r\n"
              . "Host: localhost\r\nX-Pad: " . ('p' x 40) . "\r\n\r\n";

    my $s = raw_connect();
    my ($sent, $got, $closed) = trickle($s, $req, 0.2);
    close $s;

    ok($closed, "$name - nginx closes the connection");
    cmp_ok($sent, '<', length $req,
           "$name - before the header was complete ($sent of "
           . length($req) . " bytes)");
    ok($got eq '' || $got =~ m{\AHTTP/1\.1 408 }, "$name - with no answer or "
       . "a 408") or diag("got: " . printable($got));

    still_serving($name, $pid);
    containers_since($block, 0);
}

sub check_slow_body {
    my ($block) = @_;
    my $name = $block->name;
    my $pid = worker_pid();

    my $json = '{"expert":"demo","query":"slow body"}';
    my $req = "POST /run HTTP/1.1\r\nHost: localhost\r\n"
              . "Content-Type: application/json\r\n"
              . "Content-Length: " . length($json) . "\r\n\r\n";

    my $s = raw_connect();
    write_all($s, $req . substr($json, 0, 5));

    # a byte of the body every 2 s: slower than client_body_timeout (1 s)
    my ($sent, $got, $closed) = trickle($s, $req . $json, 2,
                                        length($req) + 5);
    close $s;

    ok($closed, "$name - nginx closes the connection");
    cmp_ok($sent, '<', length($req . $json),
           "$name - before the body was complete");
    ok($got eq '' || $got =~ m{\AHTTP/1\.1 408 }, "$name - with no answer or "
       . "a 408") or diag("got: " . printable($got));

    # nginx logs the request it gave up on with 408
    my $log = '';
    if (open my $fh, '<', "$Test::Nginx::Util::ServRoot/logs/access.log") {
        local $/;
        $log = <$fh> // '';
    }
    like($log, qr{"POST /run HTTP/1\.1" 408 },
         "$name - the access log has the request with 408");

    still_serving($name, $pid);
    containers_since($block, 0);
}

# A body that trickles, each gap shorter than client_body_timeout, is read
# to its end and parsed like any other.
sub check_trickled_body {
    my ($block) = @_;
    my $name = $block->name;
    my $pid = worker_pid();

    my $json = '{"expert":"not allowed","query":"trickled"}';
    my $req = "POST /run HTTP/1.1\r\nHost: localhost\r\n"
              . "Content-Type: application/json\r\nConnection: close\r\n"
              . "Content-Length: " . length($json) . "\r\n\r\n";

    my $s = raw_connect();
    write_all($s, $req);
    my ($sent, $got, $closed) = trickle($s, $req . $json, 0.03, length $req);
    close $s;

    is($sent, length($req . $json), "$name - the whole body was sent");
    ok($closed, "$name - the response ends");

    my $res = RawResponse->new($got);
    is($res->code, 403, "$name - status 403");
    Perstack::check_json_error($name, $res,
                               "error: expert_not_allowed\nexpert: not allowed\n");

    still_serving($name, $pid);
    containers_since($block, 0);
}

# Twenty slow clients (half in the header, half in the body) hold their
# connections while a normal execution runs to its end.
sub check_many_slow {
    my ($block) = @_;
    my $name = $block->name;
    my $pid = worker_pid();

    my $hreq = "GET /run?expert=demo&query=slow HTTP/1.1\r\nHost: localhost\r\n"
               . "X-Pad: " . ('p' x 10000);
    # (within client_body_buffer_size: a larger length is refused at once)
    my $json = '{"expert":"demo","query":"' . ('s' x 4000) . '"}';
    my $breq = "POST /run HTTP/1.1\r\nHost: localhost\r\n"
               . "Content-Type: application/json\r\n"
               . "Content-Length: " . length($json) . "\r\n\r\n" . $json;

    my @slow;
    for my $i (1 .. 20) {
        my $req = $i % 2 ? $hreq : $breq;
        my $s = raw_connect();
        # a head start: the body ones are past their header
        my $first = $i % 2 ? 30 : index($breq, "\r\n\r\n") + 4 + 3;
        write_all($s, substr($req, 0, $first));
        push @slow, { s => $s, req => $req, sent => $first,
                      kind => $i % 2 ? 'header' : 'body' };
    }

    my $c = open_stream(method => 'GET',
                        path => '/run?expert=demo&query=while+slow+clients+wait');

    # one byte to each slow client every 0.2 s, while the run streams
    my $deadline = Time::HiRes::time() + 40;
    my $write_failed = 0;
    while (!$c->{eof} && Time::HiRes::time() < $deadline) {
        $c->pump(0.2);
        for my $w (@slow) {
            next if $w->{sent} >= length($w->{req}) - 1;
            if (defined syswrite($w->{s}, substr($w->{req}, $w->{sent}, 1))) {
                $w->{sent}++;
            } else {
                $write_failed++;
            }
        }
    }
    $c->close;

    check_stream($name, $c->view, $c->stream, format => 'sse',
                 expert => 'demo', image => $Image);
    my $end = $c->stream->{events}[-1];
    is($end ? $end->{json}{outcome} : undef, 'completed',
       "$name - the run completed");

    is($write_failed, 0, "$name - every slow client's byte was taken");

    my $open = 0;
    for my $w (@slow) {
        my $sel = IO::Select->new($w->{s});
        # nothing was answered and nothing closed: not readable
        $open++ unless $sel->can_read(0);
    }
    is($open, 20, "$name - the 20 slow connections are still open, "
                  . "unanswered");

    close $_->{s} for @slow;

    still_serving($name, $pid);
    containers_since($block, 1);
}


run_tests();

__DATA__

=== TEST 1: truncated and malformed JSON bodies: 400 each, nothing started
--- check: check_truncated
--- timeout: 60



=== TEST 2: a body shorter than its Content-Length, then the client closes: nothing answered, nothing started
--- check: check_truncated_close
--- error_log
client prematurely closed connection
--- timeout: 60



=== TEST 3: an unterminated string after the object is trailing garbage
--- raw_request eval
my $body = '{"expert":"demo","query":"hi"} "';
"POST /run HTTP/1.1\r
Host: localhost\r
Content-Type: application/json\r
Connection: close\r
Content-Length: " . length($body) . "\r
\r
$body"
--- error_code: 400
--- json_error
error: bad_request



=== TEST 4: an unterminated string with text after the object is trailing garbage
--- raw_request eval
my $body = '{"expert":"demo","query":"hi"} "x';
"POST /run HTTP/1.1\r
Host: localhost\r
Content-Type: application/json\r
Connection: close\r
Content-Length: " . length($body) . "\r
\r
$body"
--- error_code: 400
--- json_error
error: bad_request



=== TEST 5: a vertical tab after the object is not JSON white space
--- raw_request eval
my $body = qq({"expert":"demo","query":"hi"}\x0b);
"POST /run HTTP/1.1\r
Host: localhost\r
Content-Type: application/json\r
Connection: close\r
Content-Length: " . length($body) . "\r
\r
$body"
--- error_code: 400
--- json_error
error: bad_request



=== TEST 6: a form feed between members is not JSON white space
--- raw_request eval
my $body = qq({"expert":"demo",\x0c"query":"hi"});
"POST /run HTTP/1.1\r
Host: localhost\r
Content-Type: application/json\r
Connection: close\r
Content-Length: " . length($body) . "\r
\r
$body"
--- error_code: 400
--- json_error
error: bad_request



=== TEST 7: wrong types for every member and for the body: 400 naming the member
--- check: check_types
--- timeout: 60



=== TEST 8: unknown, repeated and escaped member names
--- check: check_members
--- timeout: 60



=== TEST 9: 100000-deep nesting where a string is due, as the body, and unclosed: 400, the worker survives
--- check: check_nesting
--- timeout: 60



=== TEST 10: invalid UTF-8, overlong forms and lone low surrogates: 400 with a valid JSON body
--- check: check_utf8
--- timeout: 60



=== TEST 11: lone high surrogates are refused like lone low ones
--- check: check_high_surrogates
--- timeout: 60



=== TEST 12: a valid surrogate pair is one character (positive control)
--- request eval
"POST /run\n" . '{"expert":"x\ud83d\ude00y","query":"hi"}'
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: ~\Ax.y\z
--- check: check_surrogate_pair



=== TEST 13: a GET query of bytes that are not UTF-8: a clear answer, no crash
--- request
GET /run?expert=demo&query=a%C0%AF%FF%ED%A0%80b
--- error_code_like: ^(?:200|400)$
--- check: check_get_invalid_utf8
--- timeout: 60



=== TEST 14: very long X-Perstack-* headers (7000 bytes each) do not reach the approval callback
--- request
GET /strip?expert=demo&query=hi
--- more_headers eval
"X-Perstack-Expert: " . ("d" x 7000) . "\n"
. "X-Perstack-Forged: " . ("f" x 7000) . "\n"
. "X-Perstack-Query-Length: 2" . ("0" x 7000)
--- error_code: 403
--- json_error
error: not_approved



=== TEST 15: 400 headers, half of them X-Perstack-*, none of which reaches the callback
--- request
GET /strip?expert=demo&query=hi
--- more_headers eval
CORE::join "\n", map { "X-Pad-$_: v$_\nX-Perstack-Forged-$_: forged" } 0 .. 199
--- error_code: 403
--- json_error
error: not_approved



=== TEST 16: a GET query at 64 KiB is taken, one byte more is refused (decoded bytes count)
--- server_config
    large_client_header_buffers 4 256k;
--- check: check_query_limit_get
--- timeout: 60



=== TEST 17: a POST query at 64 KiB is taken, one byte more is refused (decoded bytes count)
--- check: check_query_limit_post
--- timeout: 60



=== TEST 18: an expert of 100000 bytes is refused and echoed whole in valid JSON
--- request eval
"POST /big\n" . '{"expert":"' . ("e" x 100000) . '","query":"hi"}'
--- error_code: 403
--- json_error eval
"error: expert_not_allowed\nexpert: " . ("e" x 100000) . "\n"



=== TEST 19: requests nginx refuses before the module: request line, header sizes, NUL bytes
--- check: check_nginx_refuses
--- timeout: 60




=== TEST 20: headers sent slower than client_header_timeout: closed, nothing started
--- server_config
    client_header_timeout 1s;
--- check: check_slow_header
--- error_log
client timed out
--- timeout: 60



=== TEST 21: a body sent slower than client_body_timeout: closed (408), nothing started
--- server_config
    client_body_timeout 1s;
--- check: check_slow_body
--- timeout: 60



=== TEST 22: a body trickled faster than client_body_timeout is read and parsed
--- server_config
    client_body_timeout 1s;
--- check: check_trickled_body
--- timeout: 60



=== TEST 23: twenty slow clients hold their connections while an execution runs to its end
--- server_config
    client_header_timeout 60s;
    client_body_timeout 60s;
--- check: check_many_slow
--- timeout: 90



=== TEST 24: request-smuggling-style framing: nginx's 400, 413 or 501, nothing started
--- check: check_framing
--- timeout: 60
