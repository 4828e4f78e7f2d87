package Perstack;

# Shared code for the Test::Nginx suite of ngx_http_perstack_module.
#
# A .t file starts with
#
#     use FindBin;
#     use lib "$FindBin::Bin/lib";
#     use Test::Nginx::Socket;
#     use Perstack;
#
# Loading this module:
#   - skips the file when TEST_NGINX_BINARY or TEST_NGINX_PERSTACK_MODULE is
#     missing, bails out when the Docker Engine or the demo image is missing,
#     and otherwise plans "no_plan";
#   - sets TEST_NGINX_PERSTACK_IMAGE (the demo image) for the configurations;
#   - adds "load_module $TEST_NGINX_PERSTACK_MODULE;" to every block's
#     main_config, a log level of "info", and (unless the block says
#     otherwise) "--- no_error_log" of [alert], [crit] and [emerg];
#   - sends a block's "--- request" POST with "Content-Type:
#     application/json", as the module requires (415 otherwise), unless
#     its "--- more_headers" give a Content-Type (raw requests and
#     Perstack::Client requests say their own);
#   - adds these block sections:
#       --- json_error        a pre-stream JSON error, "key: value" lines
#                             ("~regex" matches instead of comparing)
#       --- stream: sse|ndjson  the response is an execution stream: checks
#                             every invariant of the stream (check_stream)
#       --- expert: NAME      the expert the perstack.execution event names
#       --- image: NAME       the image it names (default: the demo image)
#       --- types             the event types between perstack.execution and
#                             perstack.end, perstack.stderr left out;
#                             "name*N" repeats a name
#       --- end               "key: value" lines the perstack.end event has
#       --- containers_created: N
#                             N containers labelled io.perstack.managed were
#                             created while the block ran (Docker events)
#       --- check: NAME       calls main::NAME($block, $stream_or_response)
#   - default_request($block, URI) gives a block whose work is its
#     "--- check" code a request that the module refuses (405).
#   - after every block, asserts that no container labelled
#     io.perstack.managed is left (waiting up to 10 s for removals that are
#     under way), and removes the ones that are.  Only the containers of
#     this file's nginx count (label io.perstack.pid), so that another run
#     on the same Docker Engine neither disturbs nor is disturbed.

use strict;
use warnings;

use Exporter ();
use JSON::PP ();
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF IPPROTO_TCP
              inet_aton pack_sockaddr_in);
use IO::Handle ();
use IO::Select ();
use Time::HiRes ();
use File::Temp ();
use Archive::Tar ();
use Test::More ();

our @EXPORT = qw(
    json_decode json_encode printable
    parse_sse parse_ndjson check_stream runtime_events stdout_types
    expand_types normalize_event_line
    docker_api docker_ping managed_containers container_info kill_signals proc_start_time
    engine_is_podman engine_events image_name
    wait_container_gone wait_no_managed remove_container
    container_creates_since image_exists ensure_test_images
    nginx_pids worker_pid vmrss_kb
    open_stream http_request
    default_request static_ok by_type
    $Image $DockerSock
);

our $DockerSock = $ENV{TEST_NGINX_DOCKER_SOCK} || $ENV{PERSTACK_DOCKER_SOCK}
                  || '/var/run/docker.sock';
our $Image = $ENV{TEST_NGINX_PERSTACK_IMAGE} || $ENV{PERSTACK_DEMO_IMAGE}
             || 'perstack-demo:latest';

# the response Test::Nginx is checking (see the wrapper in setup())
our $LastResponse;
# set by the files about executions that outlive their clients: the
# default perstack_detach_timeout, not 0
our $Detach;

my $JsonIn = JSON::PP->new->utf8;
my $JsonOut = JSON::PP->new->utf8->canonical;

my $SetupDone;

sub import {
    setup() unless $SetupDone++;
    goto &Exporter::import;
}


# ---- setup -----------------------------------------------------------------

sub setup {
    my $bin = $ENV{TEST_NGINX_BINARY};
    my $mod = $ENV{TEST_NGINX_PERSTACK_MODULE};

    if (!defined $bin || $bin eq '') {
        Test::More::plan(skip_all => 'TEST_NGINX_BINARY is not set: give '
                         . 'the nginx binary to test (scripts/test.sh does)');
    }

    if (!defined $mod || $mod eq '') {
        Test::More::plan(skip_all => 'TEST_NGINX_PERSTACK_MODULE is not set: '
                         . 'give the absolute path of '
                         . 'ngx_http_perstack_module.so (scripts/test.sh does)');
    }

    if (!-x $bin) {
        Test::More::plan(skip_all => "TEST_NGINX_BINARY $bin is not an "
                         . "executable file");
    }

    if ($mod !~ m{^/} || !-f $mod) {
        Test::More::plan(skip_all => "TEST_NGINX_PERSTACK_MODULE $mod is not "
                         . "the absolute path of a file");
    }

    defined &Test::Nginx::Socket::run_tests
        or die "use Test::Nginx::Socket before Perstack\n";

    if (!docker_ping()) {
        Test::More::BAIL_OUT("the Docker Engine does not answer on "
                             . "$DockerSock (scripts/start-docker.sh)");
    }

    if (!image_exists($Image)) {
        Test::More::BAIL_OUT("the demo image $Image is not on the Docker "
                             . "Engine (scripts/build-demo-image.sh)");
    }

    Test::More::plan('no_plan');

    # Port 1984 may be taken by another Test::Nginx run on this machine:
    # unless a port is given, take a free one.
    if (!$ENV{TEST_NGINX_SERVER_PORT} && !$ENV{TEST_NGINX_PORT}) {
        my $port = free_port();
        Test::Nginx::Util::server_port($port);
        Test::Nginx::Util::server_port_for_client($port)
            unless $ENV{TEST_NGINX_CLIENT_PORT};
    }

    $ENV{TEST_NGINX_PERSTACK_IMAGE} = $Image;

    Test::Nginx::Util::no_shuffle();
    Test::Nginx::Util::log_level('info');
    Test::Nginx::Util::timeout(20);

    Test::Nginx::Util::add_block_preprocessor(sub {
        my $block = shift;

        $block->set_value('perstack_t0', Time::HiRes::time());

        my $main = $block->main_config // '';
        $block->set_value('main_config', "load_module $mod;\n$main");

        # (not where the block names an engine of its own for http{}:
        # the directive may be given once a level)
        if ($DockerSock ne '/var/run/docker.sock'
            && ($block->http_config // '') !~ /^\s*perstack_docker\s/m)
        {
            my $http = $block->http_config // '';
            $block->set_value('http_config',
                              "perstack_docker unix:$DockerSock;\n$http");
        }

        # Records where Test::Nginx clears them between blocks: under
        # logs/ (the default, under the prefix, would keep it from
        # removing the server root)
        {
            my $http = $block->http_config // '';
            $block->set_value('http_config',
                "perstack_record_path $Test::Nginx::Util::ServRoot/logs/"
                . "perstack_records;\n$http");
        }

        # The files written before executions outlived their clients test
        # a client that goes away as the end of its execution:
        # perstack_detach_timeout 0.  Those about detaching set $Detach.
        if (!$Detach) {
            my $http = $block->http_config // '';
            $block->set_value('http_config',
                              "perstack_detach_timeout 0;\n$http");
        }

        my $req = $block->request;
        my $more = $block->more_headers // '';

        if (defined $req && !ref $req && $req =~ /\A\s*POST /
            && $more !~ /^\s*Content-Type\s*:/mi)
        {
            $block->set_value('more_headers',
                              "Content-Type: application/json\n$more");
        }

        if (!defined $block->must_die && !defined $block->no_error_log) {
            $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]\n");
        }
    });

    {
        no warnings qw(redefine prototype);
        my $orig = \&Test::Nginx::Socket::check_response_body;
        *Test::Nginx::Socket::check_response_body = sub ($$$$$$) {
            local $LastResponse = $_[1];
            $orig->(@_);
        };
    }

    Test::Nginx::Socket::add_response_body_check(\&body_check);
    Test::Nginx::Util::add_test_cleanup_handler(\&cleanup_check);
}


sub free_port {
    for (1 .. 20) {
        my $port = 20000 + int rand 20000;
        socket(my $fh, PF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
        if (bind($fh, pack_sockaddr_in($port, inet_aton('0.0.0.0')))) {
            close $fh;
            return $port;
        }
        close $fh;
    }
    die "no free port found\n";
}


# ---- the block sections ----------------------------------------------------

sub kv_lines {
    my ($text) = @_;
    my @kv;

    for my $line (split /\n/, $text // '') {
        next if $line =~ /^\s*$/;
        $line =~ /^\s*([\w.]+):\s?(.*?)\s*$/
            or die "bad \"key: value\" line: $line\n";
        push @kv, [$1, $2];
    }

    return @kv;
}

sub cmp_value {
    my ($got, $want, $what) = @_;

    if ($want =~ /^~(.*)$/s) {
        my $re = $1;
        return Test::More::like($got, qr/$re/s, $what);
    }

    if ($want eq 'null') {
        my $ok = Test::More::ok(!defined $got, $what);
        Test::More::diag("got: " . printable($got)) unless $ok;
        return $ok;
    }

    if ($want eq 'true' || $want eq 'false') {
        my $ok = JSON::PP::is_bool($got) && ($got ? 'true' : 'false') eq $want;
        $ok = Test::More::ok($ok, $what);
        Test::More::diag("got: " . printable($got)) unless $ok;
        return $ok;
    }

    return Test::More::is($got, $want, $what);
}

sub body_check {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;

    return if $dry_run;

    note_pids();

    my $name = $block->name;
    my $res = $LastResponse;
    my $arg = $res;

    if (defined $block->json_error) {
        check_json_error($name, $res, $block->json_error);
    }

    if (defined $block->stream) {
        my $format = $block->stream;
        $format =~ s/\s+//g;

        my $s = $format eq 'sse' ? parse_sse($res->content)
                                 : parse_ndjson($res->content);

        my $expert = $block->expert;
        $expert =~ s/^\s+|\s+$//g if defined $expert;
        my $image = $block->image // $Image;
        $image =~ s/^\s+|\s+$//g;

        check_stream($name, response_view($res), $s, format => $format,
                     expert => $expert, image => $image);

        if (defined $block->types) {
            Test::More::is_deeply(stdout_types($s),
                                  expand_types($block->types),
                                  "$name - the event types")
                or Test::More::diag("got: @{ stdout_types($s) }");
        }

        if (defined $block->end) {
            my $end = $s->{events}[-1] ? $s->{events}[-1]{json} : undef;
            $end = {} unless ref $end eq 'HASH';

            for my $kv (kv_lines($block->end)) {
                cmp_value($end->{$kv->[0]}, $kv->[1],
                          "$name - perstack.end $kv->[0]");
            }
        }

        $arg = $s;
    }

    if (defined $block->containers_created) {
        my $want = $block->containers_created;
        $want =~ s/\s+//g;
        my @c = container_creates_since($block->perstack_t0);
        Test::More::is(scalar @c, $want, "$name - $want container(s) "
                       . "labelled io.perstack.managed created");
    }

    if (defined $block->check) {
        my $fn = $block->check;
        $fn =~ s/\s+//g;
        my $code = main->can($fn) or die "$name: no sub main::$fn\n";
        $code->($block, $arg, $res);
    }
}

sub cleanup_check {
    my ($block) = @_;

    return if defined $block->must_die;

    my $name = $block->name;
    my $left = wait_no_managed(10);

    Test::More::is(scalar @$left, 0,
                   "$name - no container labelled io.perstack.managed "
                   . "(of this nginx) left")
        or Test::More::diag("left: " . join ', ',
                            map { "$_->{Names}[0] ($_->{State})" } @$left);

    remove_container($_->{Id}) for @$left;
}

sub check_json_error {
    my ($name, $res, $spec) = @_;

    my @kv = kv_lines($spec);
    my $ct = $res->header('Content-Type') // '';

    Test::More::is($ct, 'application/json', "$name - JSON error: "
                   . "Content-Type application/json");

    my $body = $res->content // '';
    my $len = $res->header('Content-Length');

    Test::More::ok(defined $len && $len == length $body,
                   "$name - JSON error: Content-Length matches the body")
        or Test::More::diag("Content-Length: " . printable($len)
                            . ", body: " . length $body);

    my $obj = eval { $JsonIn->decode($body) };

    if (!Test::More::ok(ref $obj eq 'HASH', "$name - JSON error: the body "
                        . "is a JSON object"))
    {
        Test::More::diag("body: " . printable($body) . " $@");
        return;
    }

    my %want = map { $_->[0] => 1 } @kv;
    $want{error} = $want{message} = 1;

    Test::More::is_deeply([sort keys %$obj], [sort keys %want],
                          "$name - JSON error: the fields");

    Test::More::ok(defined $obj->{message} && !ref $obj->{message}
                   && length $obj->{message},
                   "$name - JSON error: a message");

    for my $kv (@kv) {
        cmp_value($obj->{$kv->[0]}, $kv->[1],
                  "$name - JSON error: $kv->[0]");
    }
}



# ---- blocks whose work is their own code -----------------------------------

# A block whose work is its "--- check" code still makes one request (Test::
# Nginx sends it before the check runs).  Unless the block has a request of
# its own, it is "PUT $uri" to a location of the module's, which the module
# refuses before it reads the body, asks for approval or calls the Docker
# Engine: 405 method_not_allowed with "Allow: GET, POST, DELETE" and a JSON
# error
# (README, "Errors before the stream starts").  The block so checks that its
# nginx loaded the module, that $uri is the module's location and that the
# worker answers, with nothing to clean up.
sub default_request {
    my ($block, $uri) = @_;

    return if defined $block->request || defined $block->must_die;

    $block->set_value('request', "PUT $uri\n");
    $block->set_value('error_code', 405) unless defined $block->error_code;
    $block->set_value('response_headers', "Allow: GET, POST, DELETE\n")
        unless defined $block->response_headers;
    $block->set_value('json_error', "error: method_not_allowed\n")
        unless defined $block->json_error;
}

# nginx still answers an ordinary request ("location = /static { return
# 200 "static\n"; }"), at once: the worker is not blocked by what the
# module is doing.
sub static_ok {
    my ($name, $when) = @_;
    my $r = http_request(method => 'GET', path => '/static', timeout => 5);
    Test::More::ok($r->{eof} && ($r->{status} // 0) == 200
                   && $r->{body} eq "static\n",
                   "$name - /static answers" . ($when ? " $when" : ''))
        or Test::More::diag("status " . ($r->{status} // 'none')
                            . ", body " . printable($r->{body}));
}

# The events of a parsed stream that have this type.
sub by_type {
    my ($s, $type) = @_;
    return grep { ($_->{type} // '') eq $type } @{ $s->{events} };
}


# ---- JSON and text ---------------------------------------------------------

sub json_decode { $JsonIn->decode($_[0]) }
sub json_encode { $JsonOut->encode($_[0]) }

sub printable {
    my ($s) = @_;
    return 'undef' unless defined $s;
    $s = substr($s, 0, 300) . "...(" . length($s) . " bytes)"
        if length $s > 300;
    $s =~ s/([^\x20-\x7e])/sprintf('\x{%02x}', ord $1)/ge;
    return "\"$s\"";
}


# ---- stream parsing --------------------------------------------------------

# One event: { id, event (SSE), data (the raw JSON text), json, type }

# ($cut: a line that starts with "{" and is not JSON is taken for a cut
# event: returns undef, with no error, and sets $$cut)
sub decode_event_data {
    my ($data, $errors, $where, $cut) = @_;

    my $json = eval { $JsonIn->decode($data) };

    if (!defined $json && $cut && $data =~ /\A\s*\{/) {
        $$cut = 1;
        return undef;
    }

    if (!defined $json) {
        push @$errors, "$where: data is not valid JSON: " . printable($data)
                       . " ($@)";
        return undef;
    }

    if (ref $json ne 'HASH') {
        push @$errors, "$where: data is not a JSON object: "
                       . printable($data);
        return undef;
    }

    if (!defined $json->{type} || ref $json->{type}) {
        push @$errors, "$where: no \"type\" string: " . printable($data);
    }

    return $json;
}

# Parse SSE from $$buf at $$pos; complete blocks only.  Adds to $s.
sub sse_feed {
    my ($s, $buf, $pos) = @_;

    while ((my $i = index($$buf, "\n\n", $$pos)) >= 0) {
        my $blk = substr($$buf, $$pos, $i - $$pos);
        $$pos = $i + 2;

        my (%e, @comments);
        my $where = "SSE block " . (@{ $s->{events} } + 1);

        # as an EventSource reads a block: its fields in any order, and
        # several "data" lines joined by "\n"
        for my $line (split /\n/, $blk, -1) {
            if ($line =~ /^:(.*)$/s) {
                push @comments, $1;

            } elsif ($line =~ /^data: (.*)$/s) {
                $e{data} = defined $e{data} ? "$e{data}\n$1" : $1;

            } elsif ($line =~ /^(id|event): (.*)$/s) {
                push @{ $s->{errors} }, "$where: two \"$1\" lines"
                    if exists $e{$1};
                $e{$1} = $2;

            } else {
                push @{ $s->{errors} }, "$where: unexpected line "
                                        . printable($line);
            }
        }

        if (!%e) {
            if (@comments == 1 && $comments[0] eq ' ping') {
                $s->{pings}++;
                push @{ $s->{order} }, 'ping';
            } else {
                push @{ $s->{errors} }, "$where: unexpected block "
                                        . printable($blk);
            }
            next;
        }

        push @{ $s->{errors} }, "$where: a comment inside an event"
            if @comments;

        # a long line cut where it stopped being one JSON object: no
        # "event" line, and data that is not JSON (see cut_event)
        if (!defined $e{event} && defined $e{id} && defined $e{data}
            && !defined eval { $JsonIn->decode($e{data}) })
        {
            light_event($s, undef, $e{id}, undef);
            cut_event($s, { id => $e{id}, data => $e{data} }, $where);
            next;
        }

        for my $f (qw(id event data)) {
            push @{ $s->{errors} }, "$where: no \"$f\" line in "
                                    . printable($blk)
                unless defined $e{$f};
        }

        next if light_event($s, $e{data}, $e{id}, $e{event});

        my $json = defined $e{data}
                   ? decode_event_data($e{data}, $s->{errors}, $where)
                   : undef;

        add_event($s, {
            id => $e{id}, event => $e{event}, data => $e{data},
            json => $json, type => ($json ? $json->{type} : undef),
        }, $where);
    }
}

# The module's own outcomes: it ends a run with these whatever the runtime
# printed, also in the middle of a line.
my %ModuleOutcomes = map { $_ => 1 } qw(timeout idle_timeout output_limit
                                        shutdown error);

# A line longer than perstack_max_line that starts with "{" is streamed as
# one event; where it turns out not to be one JSON object, the module ends
# the event there (SSE: no "event" line; NDJSON: the line ends), so its
# data is not JSON, and says so in the next event:
#     {"type":"perstack.invalid","stream":"stdout","passed":N,"reason":...}
# where N is the number of bytes passed, the cut event's.  A cut event is
# { id, data, cut => 1 }, type undef; it must be followed by that
# perstack.invalid, or by the closing event of an outcome the module
# decided (a limit or a timeout stops a line in the middle too).
sub cut_event {
    my ($s, $e, $where) = @_;

    push @{ $s->{errors} }, "$where: a cut event follows another cut event"
        if $s->{cut_pending};

    $e->{cut} = 1;
    $s->{cut_pending} = { where => $where, len => length $e->{data} };
    push @{ $s->{events} }, $e;
    push @{ $s->{order} }, 'event';
}

sub add_event {
    my ($s, $e, $where) = @_;

    my $t = $e->{type} // '';
    my $cut = delete $s->{cut_pending};

    if ($t eq 'perstack.invalid') {
        my $passed = $e->{json}{passed};

        if ($cut) {
            push @{ $s->{errors} }, "$where: perstack.invalid says "
                                    . printable($passed) . " bytes passed, "
                                    . "the cut event before it had $cut->{len}"
                unless defined $passed && !ref $passed
                       && $passed eq $cut->{len};

        } elsif (($passed // 0) ne '0') {
            push @{ $s->{errors} }, "$where: perstack.invalid (passed "
                                    . printable($passed) . ") without a cut "
                                    . "event before it";
        }

    } elsif ($cut
             && !($t eq 'perstack.end'
                  && $ModuleOutcomes{ $e->{json}{outcome} // '' }))
    {
        push @{ $s->{errors} }, "$cut->{where}: data that is not JSON, "
                                . "followed by " . printable($t)
                                . ", not by perstack.invalid";
    }

    push @{ $s->{events} }, $e;
    push @{ $s->{order} }, 'event';
}

# In light mode ($s->{light} is a type name), events of that type are only
# counted (and their framing checked), not decoded or kept: for streams of
# hundreds of thousands of events.  Every event counts in $s->{total}; SSE
# ids must follow each other.
sub light_event {
    my ($s, $data, $id, $event) = @_;

    $s->{total}++;

    # "<execution>-<position>": one execution, positions that follow
    if (defined $id && $id =~ /\A([0-9a-f]{32})-([0-9]+)\z/) {
        $s->{execution} //= $1;
        push @{ $s->{errors} }, "SSE id $id of another execution"
            if $1 ne $s->{execution};
        $id = $2;
    }

    if (defined $id && $id ne $s->{total}) {
        push @{ $s->{errors} }, "SSE id $id where $s->{total} was due"
            if $s->{id_errors}++ < 5;
    }

    return 0 unless defined $data;

    my ($type) = $data =~ /\A\{"type":"([^"]+)"/;
    $s->{counts}{$type // '(none)'}++;

    return 0 unless $s->{light};
    return 0 unless defined $type && $type eq $s->{light};

    if (defined $event && $event ne $type) {
        push @{ $s->{errors} }, "event name $event for type $type";
    }

    if ($data !~ /\}\z/) {
        push @{ $s->{errors} }, "light event is not an object: "
                                . printable($data);
    }

    return 1;
}

sub ndjson_feed {
    my ($s, $buf, $pos) = @_;

    while ((my $i = index($$buf, "\n", $$pos)) >= 0) {
        my $line = substr($$buf, $$pos, $i - $$pos);
        $$pos = $i + 1;

        if ($line eq '') {
            $s->{pings}++;
            push @{ $s->{order} }, 'ping';
            next;
        }

        # the event's position, its first member: checked, then taken
        # out, so that the rest is the event as the container wrote it
        my $position;
        if ($line =~ s/\A(\s*\{)"position":([0-9]+)(,|(?=\s*\}))/$1/) {
            $position = $2;
        }

        my $due = ($s->{total} // 0) + 1;
        push @{ $s->{errors} }, "NDJSON position "
                                . ($position // 'none') . " where $due was due"
            if ($position // -1) != $due && $s->{position_errors}++ < 5;

        next if light_event($s, $line);

        my $where = "NDJSON line " . (@{ $s->{events} } + 1);

        # a long line cut where it stopped being one JSON object
        my $cut;
        my $json = decode_event_data($line, $s->{errors}, $where, \$cut);

        if ($cut) {
            cut_event($s, { data => $line }, $where);
            next;
        }

        add_event($s, {
            data => $line, json => $json,
            type => ($json ? $json->{type} : undef),
        }, $where);
    }
}

sub new_stream {
    my ($format) = @_;
    return { format => $format, events => [], errors => [], pings => 0,
             order => [] };
}

sub finish_stream {
    my ($s, $buf, $pos) = @_;

    if (my $cut = delete $s->{cut_pending}) {
        push @{ $s->{errors} }, "$cut->{where}: data that is not JSON, and "
                                . "no event after it";
    }

    if ($pos < length $buf) {
        push @{ $s->{errors} }, "bytes after the last complete "
             . ($s->{format} eq 'sse' ? "event" : "line") . ": "
             . printable(substr $buf, $pos);
    }

    return $s;
}

sub parse_sse {
    my ($body) = @_;
    $body //= '';
    my $s = new_stream('sse');
    my $pos = 0;
    sse_feed($s, \$body, \$pos);
    return finish_stream($s, $body, $pos);
}

sub parse_ndjson {
    my ($body) = @_;
    $body //= '';
    my $s = new_stream('ndjson');
    my $pos = 0;
    ndjson_feed($s, \$body, \$pos);
    return finish_stream($s, $body, $pos);
}

# The events between perstack.execution and perstack.end.
sub runtime_events {
    my ($s) = @_;
    my @ev = @{ $s->{events} };
    shift @ev if @ev && ($ev[0]{type} // '') eq 'perstack.execution';
    pop @ev if @ev && ($ev[-1]{type} // '') eq 'perstack.end';
    return @ev;
}

sub stdout_types {
    my ($s) = @_;
    return [ map { $_->{cut} ? '(cut)' : $_->{type} // '(none)' }
             grep { ($_->{type} // '') ne 'perstack.stderr' }
             runtime_events($s) ];
}

sub expand_types {
    my ($text) = @_;
    my @t;
    for my $tok (split ' ', $text) {
        if ($tok =~ /^(.+)\*(\d+)$/) {
            push @t, ($1) x $2;
        } else {
            push @t, $tok;
        }
    }
    return \@t;
}

# A stdout line with its random ids and times replaced, to compare runs.
sub normalize_event_line {
    my ($line) = @_;
    $line =~ s/"[a-z0-9]{24}"/"<ID>"/g;
    $line =~ s/\b1[0-9]{12}\b/<TIME>/g;
    return $line;
}

sub response_view {
    my ($res) = @_;
    return {
        code => $res->code,
        header => sub { scalar $res->header($_[0]) },
    };
}

my %EndKeys = map { $_ => 1 } qw(type execution outcome exit_code duration_ms
                                  events container_removed job
                                  pending_tool_calls error message);

# Every invariant of an execution stream.  $view: { code, header => sub }.
sub check_stream {
    my ($name, $view, $s, %o) = @_;

    my $format = $o{format} // $s->{format};
    my $hdr = $view->{header};

    Test::More::is($view->{code}, 200, "$name - stream: status 200");
    Test::More::is($hdr->('Content-Type'),
                   $format eq 'sse' ? 'text/event-stream'
                                    : 'application/x-ndjson',
                   "$name - stream: Content-Type");
    Test::More::is($hdr->('Cache-Control'), 'no-cache',
                   "$name - stream: Cache-Control");
    Test::More::is($hdr->('X-Accel-Buffering'), 'no',
                   "$name - stream: X-Accel-Buffering");

    my $xid = $hdr->('X-Perstack-Execution') // '';
    Test::More::like($xid, qr/\A[0-9a-f]{32}\z/,
                     "$name - stream: X-Perstack-Execution");

    Test::More::is($s->{format}, $format, "$name - stream: parsed as $format");
    Test::More::is_deeply($s->{errors}, [],
                          "$name - stream: well formed $format");

    my @ev = @{ $s->{events} };
    my @p;

    if ($format eq 'sse') {
        my @ids = map { $_->{id} // '' } @ev;
        Test::More::is_deeply(\@ids, [ map { "$xid-$_" } 1 .. @ev ],
                              "$name - stream: ids <execution>-1..N")
            or Test::More::diag("ids: @ids");

        for my $e (@ev) {
            push @p, "event $e->{id}: name " . printable($e->{event})
                     . " but type " . printable($e->{type})
                if ($e->{event} // '') ne ($e->{type} // '');
        }
    }

    my ($first, $last) = ($ev[0], $ev[-1]);

    if (!Test::More::ok(@ev >= 2, "$name - stream: at least two events")) {
        return;
    }

    # perstack.execution

    my $x = $first->{json} || {};
    if (($first->{type} // '') ne 'perstack.execution') {
        push @p, "the first event is " . printable($first->{type});
    } else {
        my @keys = sort keys %$x;
        push @p, "perstack.execution has fields @keys"
            unless "@keys" eq "container continued execution expert image "
                              . "job type";
        push @p, "perstack.execution.job " . printable($x->{job})
            unless ($x->{job} // '') =~ /\A[A-Za-z0-9_-]{1,64}\z/;
        push @p, "perstack.execution.job " . printable($x->{job})
                 . " is not $o{job}"
            if defined $o{job} && ($x->{job} // '') ne $o{job};
        push @p, "perstack.execution.continued is not a boolean: "
                 . $first->{data}
            unless $first->{data} =~ /"continued":(?:true|false)[,}]/;
        my $cont = $o{continued} ? 'true' : 'false';
        push @p, "perstack.execution.continued is not $cont"
            unless $first->{data} =~ /"continued":$cont[,}]/;
        push @p, "perstack.execution.execution " . printable($x->{execution})
                 . " is not the header's $xid"
            unless ($x->{execution} // '') eq $xid;
        push @p, "perstack.execution.container " . printable($x->{container})
            unless ($x->{container} // '') =~ /\A[0-9a-f]{64}\z/;
        push @p, "perstack.execution.image " . printable($x->{image})
                 . " is not $o{image}"
            if defined $o{image} && ($x->{image} // '') ne $o{image};
        push @p, "perstack.execution.expert " . printable($x->{expert})
                 . " is not $o{expert}"
            if defined $o{expert} && ($x->{expert} // '') ne $o{expert};
    }

    # perstack.end

    my $end = $last->{json} || {};
    if (($last->{type} // '') ne 'perstack.end') {
        push @p, "the last event is " . printable($last->{type});
    } else {
        my $d = $last->{data};
        for my $k (qw(type execution outcome exit_code duration_ms events
                      container_removed))
        {
            push @p, "perstack.end has no $k" unless exists $end->{$k};
        }
        for my $k (keys %$end) {
            push @p, "perstack.end has an unknown field $k"
                unless $EndKeys{$k};
        }
        push @p, "perstack.end.execution is not the header's $xid"
            unless ($end->{execution} // '') eq $xid;
        push @p, "perstack.end.outcome " . printable($end->{outcome})
            unless ($end->{outcome} // '')
                   =~ /\A(?:completed|paused|failed|max_steps|timeout
                          |idle_timeout|output_limit|shutdown|error)\z/x;
        push @p, "perstack.end.job " . printable($end->{job})
                 . " is not perstack.execution's " . printable($x->{job})
            unless ($end->{job} // '') eq ($x->{job} // '-');
        push @p, "perstack.end.pending_tool_calls is not an array: $d"
            if exists $end->{pending_tool_calls}
               && ref $end->{pending_tool_calls} ne 'ARRAY';
        push @p, "perstack.end.pending_tool_calls without outcome paused"
            if exists $end->{pending_tool_calls}
               && ($end->{outcome} // '') ne 'paused';
        push @p, "perstack.end.exit_code is not an integer or null: $d"
            unless $d =~ /"exit_code":(?:-?[0-9]+|null)[,}]/;
        push @p, "perstack.end.duration_ms is not an integer: $d"
            unless $d =~ /"duration_ms":[0-9]+[,}]/;
        push @p, "perstack.end.events is not an integer: $d"
            unless $d =~ /"events":[0-9]+[,}]/;
        push @p, "perstack.end.events is " . printable($end->{events})
                 . " but there were " . scalar(@ev) . " events"
            unless ($end->{events} // -1) == @ev;
        push @p, "perstack.end.container_removed is not true: $d"
            unless $d =~ /"container_removed":true[,}]/;
        push @p, "perstack.end.message is not a string: $d"
            if exists $end->{message} && $d !~ /"message":"/;
        push @p, "perstack.end.error without outcome failed"
            if exists $end->{error} && ($end->{outcome} // '') ne 'failed';
        push @p, "perstack.end.error is not {name, message}: $d"
            if exists $end->{error}
               && (ref $end->{error} ne 'HASH'
                   || grep { !defined $end->{error}{$_}
                             || ref $end->{error}{$_} } qw(name message));
    }

    # the module's own events in between

    my %partial;

    for my $i (1 .. $#ev - 1) {
        my $e = $ev[$i];
        my $t = $e->{type} // '';
        my $j = $e->{json} || {};
        my $keys = join ' ', sort keys %$j;

        if ($t eq 'perstack.execution' || $t eq 'perstack.end') {
            push @p, "event " . ($i + 1) . " is another $t";

        } elsif ($e->{cut}) {
            # (the parser checked what follows it)
            push @p, "event " . ($i + 1) . " is cut, but a stdout line is "
                     . "being passed in parts"
                if $partial{'perstack.stdout'};

        } elsif ($t eq 'perstack.daemon') {
            push @p, "$t with fields $keys" unless $keys eq 'text type';
            push @p, "$t.text is not a string: $e->{data}"
                unless $e->{data} =~ /"text":"/;

        } elsif ($t eq 'perstack.stdout' || $t eq 'perstack.stderr') {
            # a line longer than perstack_max_line comes in parts: every
            # one but the last says "partial":true
            push @p, "$t with fields $keys"
                unless $keys eq 'text type' || $keys eq 'partial text type';
            push @p, "$t.text is not a string: $e->{data}"
                unless $e->{data} =~ /"text":"/;
            push @p, "$t.partial is not true: $e->{data}"
                if exists $j->{partial}
                   && $e->{data} !~ /"partial":true[,}]/;
            $partial{$t} = exists $j->{partial};

        } elsif ($t eq 'perstack.invalid') {
            push @p, "$t with fields $keys"
                unless $keys eq 'passed reason stream type';
            push @p, "$t.stream " . printable($j->{stream})
                unless ($j->{stream} // '') eq 'stdout';
            push @p, "$t.passed is not an integer: $e->{data}"
                unless $e->{data} =~ /"passed":[0-9]+[,}]/;
            push @p, "$t.reason is not a string: $e->{data}"
                unless $e->{data} =~ /"reason":"/;
            push @p, "event " . ($i + 1) . " is $t, but a stdout line is "
                     . "being passed in parts"
                if $partial{'perstack.stdout'};

        } elsif ($t eq 'perstack.truncated') {
            push @p, "$t with fields $keys"
                unless $keys eq 'bytes limit stream type';
            push @p, "$t.stream " . printable($j->{stream})
                unless ($j->{stream} // '') =~ /\A(?:stdout|stderr)\z/;
            push @p, "$t: bytes/limit are not integers: $e->{data}"
                unless $e->{data} =~ /"bytes":[0-9]+[,}]/
                       && $e->{data} =~ /"limit":[0-9]+[,}]/;

        } elsif ($t =~ /^perstack\./) {
            push @p, "unknown module event $t";

        } else {
            # the runtime's event: a stdout line of its own
            push @p, "event " . ($i + 1) . " ($t) comes while a stdout "
                     . "line is being passed in parts"
                if $partial{'perstack.stdout'};

            # the module hands its job id to the runtime (--job-id)
            push @p, "event " . ($i + 1) . " ($t) has jobId $j->{jobId}, "
                     . "not the execution's job $x->{job}"
                if defined $j->{jobId} && defined $x->{job}
                   && $j->{jobId} ne $x->{job};
        }
    }

    for my $t (sort grep { $partial{$_} } keys %partial) {
        push @p, "the last $t is partial: the line's last part never came"
            unless $ModuleOutcomes{ $end->{outcome} // '' };
    }

    Test::More::is_deeply(\@p, [], "$name - stream: event invariants")
        or Test::More::diag(join "\n", @p);

    return;
}


# ---- a raw HTTP client for streams -----------------------------------------

# open_stream(method => 'GET', path => '/run?...', headers => [k => v, ...],
#             body => '...', rcvbuf => bytes, tls => {IO::Socket::SSL options})
#
# With tls (or, when it is not given, $Perstack::Tls), the connection is
# TLS, without ALPN: HTTP/1.1 also where the server offers HTTP/2.
our $Tls;

sub open_stream {
    return Perstack::Client->new(@_);
}

# A whole request: returns the client after the response ended (or the
# timeout passed).
sub http_request {
    my (%a) = @_;
    my $timeout = delete $a{timeout} // 20;
    my $c = Perstack::Client->new(%a);
    $c->drain($timeout);
    $c->close;
    return $c;
}

package Perstack::Client;

use strict;
use warnings;

use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF inet_aton
              pack_sockaddr_in);
use Time::HiRes ();

sub new {
    my ($class, %a) = @_;

    my $method = $a{method} // 'GET';
    my $path = $a{path} // '/';
    my @headers = @{ $a{headers} // [] };
    my $body = $a{body};

    my $port = $Test::Nginx::Util::ServerPortForClient
               || $Test::Nginx::Util::ServerPort;
    my $addr = $Test::Nginx::Util::ServerAddr || '127.0.0.1';

    socket(my $fh, PF_INET, SOCK_STREAM, 0) or die "socket: $!\n";

    if ($a{rcvbuf}) {
        setsockopt($fh, SOL_SOCKET, SO_RCVBUF, pack('i', $a{rcvbuf}))
            or die "setsockopt SO_RCVBUF: $!\n";
    }

    connect($fh, pack_sockaddr_in($port, inet_aton($addr)))
        or die "connect $addr:$port: $!\n";

    my $tls = $a{tls} // $Perstack::Tls;

    if ($tls) {
        require IO::Socket::SSL;
        IO::Socket::SSL->start_SSL($fh, %$tls)
            or die "TLS with $addr:$port: $IO::Socket::SSL::SSL_ERROR\n";
    }

    binmode $fh;

    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
              . "Connection: close\r\n";

    while (my ($k, $v) = splice @headers, 0, 2) {
        $req .= "$k: $v\r\n";
    }

    if (defined $body) {
        $req .= "Content-Length: " . length($body) . "\r\n";
    }

    $req .= "\r\n" . ($body // '');

    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite($fh, $req, length($req) - $off, $off);
        die "write: $!\n" unless defined $n;
        $off += $n;
    }

    # (a record of TLS may hold what is not data: with a blocking socket,
    # a read could wait past its time)
    $fh->blocking(0) if $tls;

    my $self = bless {
        fh => $fh, raw => '', head_done => 0, status => undef,
        headers => {}, chunked => 0, clen => undef, cpos => 0,
        body => '', bpos => 0, eof => 0, complete => 0, bytes => 0,
        stream => undef, started => Time::HiRes::time(),
        light => $a{light},
    }, $class;

    return $self;
}

sub header {
    my ($self, $name) = @_;
    return $self->{headers}{lc $name};
}

sub view {
    my ($self) = @_;
    return { code => $self->{status}, header => sub { $self->header($_[0]) } };
}

# The stream parsed so far (SSE or NDJSON by the Content-Type).
sub stream {
    my ($self) = @_;
    return $self->{stream} // Perstack::new_stream('unknown');
}

sub events { @{ $_[0]->stream->{events} } }

sub has_event {
    my ($self, $type) = @_;
    return scalar grep { ($_->{type} // '') eq $type } $self->events;
}

sub first_event {
    my ($self, $type) = @_;
    for my $e ($self->events) {
        return $e if ($e->{type} // '') eq $type;
    }
    return undef;
}

# One read: up to $max bytes, waiting at most $timeout seconds.  Returns the
# number of bytes read, 0 at the end of the stream, undef when nothing came.
sub pump {
    my ($self, $timeout, $max) = @_;

    return 0 if $self->{eof};

    my $sel = IO::Select->new($self->{fh});
    return undef unless $sel->can_read($timeout);

    my $n = sysread($self->{fh}, my $buf, $max // 65536);

    if (!defined $n) {
        return undef if $!{EAGAIN} || $!{EINTR};
        $self->{error} = "$!";
        $n = 0;
    }

    if ($n == 0) {
        $self->{eof} = 1;
        $self->finish;
        return 0;
    }

    $self->{bytes} += $n;
    $self->{raw} .= $buf;
    $self->parse;

    return $n;
}

sub parse {
    my ($self) = @_;

    if (!$self->{head_done}) {
        my $i = index($self->{raw}, "\r\n\r\n");
        return if $i < 0;

        my $head = substr($self->{raw}, 0, $i);
        $self->{raw} = substr($self->{raw}, $i + 4);
        $self->{head_done} = 1;
        $self->{head} = $head;

        my ($line, @lines) = split /\r\n/, $head;
        ($self->{status}) = $line =~ m{^HTTP/1\.[01] (\d{3})};

        for (@lines) {
            my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
            $self->{headers}{lc $k} = $v;
        }

        $self->{chunked} = ($self->header('Transfer-Encoding') // '')
                           =~ /chunked/i;
        $self->{clen} = $self->header('Content-Length');

        my $ct = $self->header('Content-Type') // '';
        $self->{stream} = Perstack::new_stream(
              $ct eq 'text/event-stream' ? 'sse'
            : $ct eq 'application/x-ndjson' ? 'ndjson' : 'none');
        $self->{stream}{light} = $self->{light};
    }

    if ($self->{chunked}) {
        while (!$self->{complete}) {
            my $raw = \$self->{raw};
            my $i = index($$raw, "\r\n", $self->{cpos});
            last if $i < 0;

            my $size_line = substr($$raw, $self->{cpos}, $i - $self->{cpos});
            my ($hex) = $size_line =~ /^([0-9a-fA-F]+)/;

            if (!defined $hex) {
                push @{ $self->{stream}{errors} },
                     "bad chunk size line " . Perstack::printable($size_line);
                $self->{complete} = 1;
                last;
            }

            my $size = hex $hex;

            if ($size == 0) {
                $self->{complete} = 1 if length($$raw) >= $i + 4;
                last;
            }

            last if length($$raw) < $i + 2 + $size + 2;

            $self->{body} .= substr($$raw, $i + 2, $size);
            $self->{cpos} = $i + 2 + $size + 2;
        }

        # drop what was consumed now and then
        if ($self->{cpos} > 1 << 20) {
            substr($self->{raw}, 0, $self->{cpos}, '');
            $self->{cpos} = 0;
        }

    } else {
        $self->{body} .= $self->{raw};
        $self->{raw} = '';
        $self->{complete} = 1
            if defined $self->{clen} && length $self->{body} >= $self->{clen};
    }

    my $s = $self->{stream};

    if ($s->{format} eq 'sse') {
        Perstack::sse_feed($s, \$self->{body}, \$self->{bpos});
    } elsif ($s->{format} eq 'ndjson') {
        Perstack::ndjson_feed($s, \$self->{body}, \$self->{bpos});
    }

    if ($self->{keep_body}) {
        return;
    }

    # keep memory flat on long streams
    if ($s->{format} ne 'none' && $self->{bpos} > 1 << 20) {
        $self->{consumed} += $self->{bpos};
        substr($self->{body}, 0, $self->{bpos}, '');
        $self->{bpos} = 0;
    }
}

sub finish {
    my ($self) = @_;
    return if $self->{finished}++;
    my $s = $self->{stream} or return;
    return if $s->{format} eq 'none';
    Perstack::finish_stream($s, $self->{body}, $self->{bpos});
    push @{ $s->{errors} }, "the chunked body has no last chunk"
        if $self->{chunked} && !$self->{complete};
}

# Read until $cond->($self) is true, the stream ends or $timeout passes.
sub read_until {
    my ($self, $cond, $timeout) = @_;
    my $deadline = Time::HiRes::time() + $timeout;

    while (1) {
        return 1 if $cond->($self);
        return 0 if $self->{eof};
        my $left = $deadline - Time::HiRes::time();
        return 0 if $left <= 0;
        $self->pump($left);
    }
}

sub wait_event {
    my ($self, $type, $timeout) = @_;
    return $self->read_until(sub { $_[0]->has_event($type) }, $timeout);
}

# Read until the connection closes.
sub drain {
    my ($self, $timeout) = @_;
    return $self->read_until(sub { 0 }, $timeout // 20) || $self->{eof};
}

# Read whatever has arrived, without waiting.  A stream that keeps
# flowing is read to its end unless $max_bytes stops the read earlier:
# give it when "arrived so far" must not become "everything".
sub read_available {
    my ($self, $max_bytes) = @_;
    my $total = 0;
    while (!defined $max_bytes || $total < $max_bytes) {
        my $n = $self->pump(0);
        last unless $n;
        $total += $n;
    }
    return $total;
}

sub close {
    my ($self) = @_;
    if ($self->{fh}) {
        close $self->{fh};
        $self->{fh} = undef;
        $self->{eof} = 1;
    }
}

package Perstack;


# ---- the Docker Engine API -------------------------------------------------

sub uri_escape {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# docker_api(METHOD, PATH, query => {k => v}, body_file => F,
#            content_type => T, timeout => S) -> (status, body)
sub docker_api {
    my ($method, $path, %o) = @_;

    my $url = "http://localhost$path";
    if ($o{query}) {
        $url .= '?' . join '&', map { uri_escape($_) . '='
                                      . uri_escape($o{query}{$_}) }
                                sort keys %{ $o{query} };
    }

    my @cmd = ('curl', '-sS', '--max-time', $o{timeout} // 30,
               '--unix-socket', $DockerSock, '-X', $method,
               '-w', '\n%{http_code}');

    if ($o{body_file}) {
        push @cmd, '-H', "Content-Type: " . ($o{content_type}
                                              // 'application/octet-stream'),
                   '--data-binary', "\@$o{body_file}";
    }

    push @cmd, $url;

    open my $fh, '-|', @cmd or die "curl: $!\n";
    binmode $fh;
    local $/;
    my $out = <$fh> // '';
    close $fh;

    $out =~ s/\n?(\d{3})\z// or return (0, $out);
    return ($1, $out);
}

# The start time of a process (field 22 of /proc/PID/stat), or undef: with
# its pid, what tells one process from a later one on the same pid.
sub proc_start_time {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return undef;
    my $line = <$fh> // '';
    close $fh;
    $line =~ s/^.*\) //s or return undef;
    return (split / /, $line)[19];
}

# Whether the engine is Podman (its Docker-compatible API), not Docker.
my $EngineIsPodman;

sub engine_is_podman {
    return $EngineIsPodman if defined $EngineIsPodman;
    my ($st, $body) = docker_api('GET', '/version', timeout => 5);
    my $v = $st == 200 ? eval { $JsonIn->decode($body) } : undef;
    return 0 unless ref $v eq 'HASH';
    $EngineIsPodman = (grep { ($_->{Name} // '') eq 'Podman Engine' }
                       @{ $v->{Components} || [] }) ? 1 : 0;
    return $EngineIsPodman;
}

# An image's name as the engine reports it in a container's Config.Image:
# Podman names the images it has without a registry "localhost/...".
sub image_name {
    my ($ref) = @_;
    return $ref if !engine_is_podman() || $ref =~ m{^[^/]+[.:][^/]*/}
                   || $ref =~ m{^localhost/};
    return "localhost/$ref";
}

# The engine's events from $since to $until (epoch seconds, fractions
# allowed) that pass $filters (a hash of lists, as the Engine API's
# "filters"): (status, [events, decoded]).  Podman 4.3 ends the answer
# when "until" passes, also before it has read its event log, so there
# the answer is asked for without "until" and not as a stream, and cut at
# $until here.
sub engine_events {
    my ($since, $until, $filters, %o) = @_;
    my $fmt = sub { my $t = shift; sprintf '%d.%09d', int $t,
                    ($t - int $t) * 1e9 };
    my %q = (since => $fmt->($since),
             filters => JSON::PP->new->canonical->encode($filters));

    if (engine_is_podman()) {
        $q{stream} = 'false';
    } else {
        $q{until} = $fmt->($until);
    }

    my ($st, $body) = docker_api('GET', '/events', query => \%q, %o);
    return ($st, $body) unless $st == 200;

    my @ev = grep { ref $_ eq 'HASH' }
             map { eval { $JsonIn->decode($_) } }
             grep { /\S/ } split /\n/, $body;
    @ev = grep { ($_->{timeNano} // 0) <= $until * 1e9 } @ev
        if engine_is_podman();

    return ($st, \@ev);
}

# The signals the engine sent to a container since $since (epoch seconds),
# in the order of its event log's "kill" events; undef if the engine did
# not answer.  Podman logs no "kill" event for the kill of a removal: there
# its "die" event's exit code says which signal ended the container (137:
# SIGKILL, 143: SIGTERM), and what came before it is not seen.
sub kill_signals {
    my ($name, $since) = @_;
    my $podman = engine_is_podman();
    my ($st, $ev) = engine_events($since - 1, Time::HiRes::time(),
                                  { container => [$name],
                                    # (Podman's own name of "die")
                                    event => [$podman ? 'died' : 'kill'] });
    return undef unless $st == 200;
    return [ map { my $c = $_->{Actor}{Attributes}{containerExitCode};
                   defined $c && $c > 128 ? $c - 128 : "exit $c" } @$ev ]
        if $podman;
    return [ map { $_->{Actor}{Attributes}{signal} // '?' } @$ev ];
}

sub docker_ping {
    my ($st, $body) = docker_api('GET', '/_ping', timeout => 5);
    return $st == 200 && $body eq 'OK';
}

sub docker_json {
    my ($method, $path, %o) = @_;
    my ($st, $body) = docker_api($method, $path, %o);
    my $obj = eval { $JsonIn->decode($body) };
    return ($st, $obj, $body);
}

# The nginx processes of this test file, as far as seen: the module labels
# each container io.perstack.pid=<worker pid>, which tells the containers of
# this run from those of any other run on the same Docker Engine.
our %OurPids;

sub note_pids {
    $OurPids{$_} = 1 for nginx_pids();
}

sub ours {
    my ($labels) = @_;
    note_pids();
    return $OurPids{ ($labels || {})->{'io.perstack.pid'} // '' };
}

# Containers labelled io.perstack.managed (also stopped ones) that belong to
# this run's nginx; all of them with $all.
sub managed_containers {
    my ($all) = @_;
    my ($st, $list, $body) = docker_json('GET', '/containers/json',
        query => { all => 1,
                   filters => '{"label":["io.perstack.managed"]}' });
    die "cannot list containers: $st $body\n"
        unless $st == 200 && ref $list eq 'ARRAY';
    return $list if $all;
    return [ grep { ours($_->{Labels}) } @$list ];
}

# The container's inspect object, or undef when there is no such container
# (Podman answers 500 "no such container" for one it is removing).
sub container_info {
    my ($name) = @_;
    my ($st, $obj, $body) = docker_json('GET', "/containers/$name/json");
    return undef if $st == 404
                    || ($st == 500 && ref $obj eq 'HASH'
                        && ($obj->{cause} // '') eq 'no such container');
    die "cannot inspect container $name: $st $body\n" unless $st == 200;
    return $obj;
}

# Wait (polling) until the container is gone.  Returns the seconds it took,
# or undef when it is still there after $timeout seconds.
sub wait_container_gone {
    my ($name, $timeout) = @_;
    my $t0 = Time::HiRes::time();
    while (1) {
        return Time::HiRes::time() - $t0 unless container_info($name);
        return undef if Time::HiRes::time() - $t0 > ($timeout // 10);
        Time::HiRes::sleep(0.05);
    }
}

# Wait until no managed container is left; returns those left.
sub wait_no_managed {
    my ($timeout) = @_;
    my $t0 = Time::HiRes::time();
    while (1) {
        my $list = managed_containers();
        return $list if !@$list || Time::HiRes::time() - $t0 > $timeout;
        Time::HiRes::sleep(0.1);
    }
}

sub remove_container {
    my ($id) = @_;
    docker_api('DELETE', "/containers/$id", query => { force => 1, v => 1 });
}

# "create" events of containers labelled io.perstack.managed since $t0 (of
# this run's nginx).
sub container_creates_since {
    my ($t0) = @_;

    # (Podman's label filter wants the value too)
    my ($st, $ev) = engine_events($t0, Time::HiRes::time() + 0.001,
                                  { type => ['container'],
                                    event => ['create'],
                                    label => ['io.perstack.managed=1'] },
                                  timeout => 10);
    die "cannot read Docker events: $st $ev\n" unless $st == 200;

    return grep { ours($_->{Actor}{Attributes}) } @$ev;
}

sub image_exists {
    my ($ref) = @_;
    my ($st) = docker_api('GET', "/images/$ref/json");
    return $st == 200;
}

# Tiny images made for the tests, from a tar of regular files; none holds a
# perstack binary.
my %TestImages = (
    # no binary at all: docker-init cannot exec "perstack", exit 127
    'perstack-test-nobinary' => { x => "not perstack\n" },
    # /tmp is a file: the tmpfs mount fails when the container starts
    'perstack-test-startfail' => { tmp => "a file, not a directory\n" },
    # /workspace is a file: creating the container fails (WorkingDir)
    'perstack-test-createfail' => { workspace => "a file, not a dir\n" },
);

sub ensure_test_images {
    my $version = 'v1';

    for my $name (sort keys %TestImages) {
        my $ref = "$name:latest";
        my ($st, $obj) = docker_json('GET', "/images/$ref/json");

        next if $st == 200
                && (($obj->{Config}{Labels} || {})->{'io.perstack.test'}
                    // '') eq $version;

        my $tar = Archive::Tar->new;
        my $files = $TestImages{$name};
        $tar->add_data($_, $files->{$_}, { mode => 0644 }) for keys %$files;

        my $tmp = File::Temp->new(SUFFIX => '.tar');
        $tar->write($tmp->filename) or die "tar: " . $tar->error . "\n";

        my ($cst, $body) = docker_api('POST', '/images/create',
            body_file => $tmp->filename, content_type => 'application/x-tar',
            query => { fromSrc => '-', repo => $name, tag => 'latest',
                       changes => "LABEL io.perstack.test=$version" });

        die "cannot import $ref: $cst $body\n"
            unless $cst == 200 && image_exists($ref);
    }
}


# ---- nginx processes -------------------------------------------------------

# (master, workers...): with master_process off, just the one process.
sub nginx_pids {
    my $pidfile = $Test::Nginx::Util::PidFile;
    open my $fh, '<', $pidfile or return ();
    my $master = <$fh>;
    close $fh;
    return () unless defined $master && $master =~ /^(\d+)/;
    $master = $1;

    my @workers;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $sf, '<', $stat or next;
        my $line = <$sf>;
        close $sf;
        next unless defined $line;
        my ($pid, $comm, $ppid) = $line =~ /^(\d+) \((.*)\) \S+ (\d+)/s
            or next;
        # (under valgrind, Test::Nginx's TEST_NGINX_USE_VALGRIND, the
        # processes are valgrind's: "memcheck-amd64-")
        push @workers, $pid
            if $ppid == $master && $comm =~ /nginx|memcheck/;
    }

    return ($master, sort { $a <=> $b } @workers);
}

# The process that serves requests.
sub worker_pid {
    my ($master, @workers) = nginx_pids();
    return @workers ? $workers[0] : $master;
}

sub vmrss_kb {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (<$fh>) {
        return $1 if /^VmRSS:\s+(\d+)\s+kB/;
    }
    return undef;
}

1;
