package PerstackFlow;

# Shared code for the tests that check executions by their own code (a
# block's "--- check"): the approval, workspace and job tests (t/008 -
# t/010) first, and the limit, reaper, lifecycle and fault tests.
#
# A .t file starts with
#
#     use FindBin;
#     use lib "$FindBin::Bin/lib";
#     use PerstackFlow;          # before Test::Nginx::Socket
#     use Test::Nginx::Socket;
#     use Perstack;
#
# Loading this module before Test::Nginx gives the file a server root of
# its own in a temporary directory (unless TEST_NGINX_SERVROOT is set), so
# that another Test::Nginx run on this machine does not share t/servroot;
# Perstack.pm picks a free port.
#
# The helpers call Perstack's functions at run time, by their full names.

use strict;
use warnings;

use Exporter 'import';
use File::Temp ();
use Time::HiRes ();
use JSON::PP ();
use Test::More ();

BEGIN {
    die "use PerstackFlow before Test::Nginx::Socket\n"
        if $INC{'Test/Nginx/Util.pm'};

    $ENV{TEST_NGINX_SERVROOT} ||= File::Temp::tempdir('perstack-t-XXXXXXXX',
                                                      TMPDIR => 1,
                                                      CLEANUP => 1);
}

our @EXPORT = qw(
    unique_name make_dir label_creates label_containers no_container_for
    check_run check_error check_refused run_get run_post run_ok start_slow
    end_event demo_error_end_ok describe_client container_names
    error_log_text error_lines wait_log wait_error_line check_alerts
    poll gone wait_gone wait_new_worker spew metrics
    refused_expert_checks
    %ExecKeys %EndKeys
);

my $JsonIn = JSON::PP->new->utf8;
my $JsonOut = JSON::PP->new->utf8->canonical;

# the fields of perstack.execution, and those perstack.end may have
our %ExecKeys = map { $_ => 1 } qw(type execution container image expert job
                                   continued);
our %EndKeys = map { $_ => 1 } qw(type execution outcome exit_code duration_ms
                                  events container_removed message job
                                  pending_tool_calls error);


# A name no other request of any run uses: an expert name (matches the
# default perstack_expert_allow pattern) or a workspace component.
my $Seq = 0;

sub unique_name {
    my ($prefix) = @_;
    return sprintf '%s-%x%04x%x', $prefix, $$, int rand 0x10000, ++$Seq;
}

# A fresh directory (removed at exit) that uid 65534 may enter.
sub make_dir {
    my ($what) = @_;
    my $dir = File::Temp::tempdir("perstack-$what-XXXXXXXX", TMPDIR => 1,
                                  CLEANUP => 1);
    chmod 0755, $dir or die "chmod $dir: $!\n";
    return $dir;
}


# ---- containers, by label, of every nginx on the Docker Engine -------------

sub docker_time {
    my ($t) = @_;
    return sprintf '%d.%09d', int $t, ($t - int $t) * 1e9;
}

# The "create" events since $t0 of containers with the label "key=value"
# (any nginx's: the value is unique to this run).
sub label_creates {
    my ($t0, $label) = @_;
    my ($st, $ev) = Perstack::engine_events($t0,
        Time::HiRes::time() + 0.001,
        { type => ['container'], event => ['create'], label => [$label] },
        timeout => 10);
    die "cannot read Docker events: $st $ev\n" unless $st == 200;

    return @$ev;
}

# The containers (also stopped ones) with the label "key=value".
sub label_containers {
    my ($label) = @_;
    my ($st, $body) = Perstack::docker_api('GET', '/containers/json',
        query => { all => 1,
                   filters => $JsonOut->encode({ label => [$label] }) });
    die "cannot list containers: $st $body\n" unless $st == 200;
    return @{ $JsonIn->decode($body) };
}

# No container labelled with the expert (or "key=value") was created since
# $t0, and none exists.
sub no_container_for {
    my ($name, $t0, $label) = @_;

    $label = "io.perstack.expert=$label" unless $label =~ /=/;

    my @created = label_creates($t0, $label);
    my @exist = label_containers($label);

    Test::More::is(scalar @created + scalar @exist, 0,
                   "$name - no container labelled $label was created")
        or Test::More::diag("created: " . scalar(@created)
                            . ", existing: " . scalar(@exist));
}


# ---- requests --------------------------------------------------------------

sub run_get {
    my ($path, @headers) = @_;
    return Perstack::http_request(method => 'GET', path => $path,
                                  headers => \@headers, timeout => 30);
}

sub run_post {
    my ($path, $obj, @headers) = @_;
    my $body = ref $obj ? $JsonOut->encode($obj) : $obj;
    return Perstack::http_request(method => 'POST', path => $path,
                                  headers => ['Content-Type'
                                              => 'application/json',
                                              @headers],
                                  body => $body, timeout => 30);
}

# A JSON error from a Perstack::Client: status, the exact set of fields
# (error, message and those in %want), and their values.
sub check_error {
    my ($name, $c, $status, $error, %want) = @_;

    Test::More::is($c->{status}, $status, "$name - status $status");
    Test::More::is($c->header('Content-Type'), 'application/json',
                   "$name - JSON error: Content-Type");

    my $obj = eval { $JsonIn->decode($c->{body}) };

    if (!Test::More::ok(ref $obj eq 'HASH', "$name - JSON error: an object")) {
        Test::More::diag("body: " . Perstack::printable($c->{body}));
        return undef;
    }

    Test::More::is_deeply([sort keys %$obj],
                          [sort 'error', 'message', keys %want],
                          "$name - JSON error: the fields");
    Test::More::is($obj->{error}, $error, "$name - JSON error: error");
    Test::More::ok(defined $obj->{message} && !ref $obj->{message}
                   && length $obj->{message}, "$name - JSON error: message");

    for my $k (sort keys %want) {
        if (ref $want{$k}) {
            Test::More::is_deeply($obj->{$k}, $want{$k},
                                  "$name - JSON error: $k");
        } else {
            Test::More::is($obj->{$k}, $want{$k}, "$name - JSON error: $k");
        }
    }

    return $obj;
}


# A refusal with its status's own header, from a Perstack::Client: the JSON
# error (check_error), Content-Length, and no X-Perstack-Execution (nothing
# ran).  ERROR may be left out: too_many_executions (429, Retry-After: 1).
# The gateway's 401s (credential_required, invalid_credential) have
# WWW-Authenticate: Bearer.  %want: the error's other fields (max, per_key).
my %Refusal = (
    too_many_executions => [ 429, 'Retry-After', qr/\A1\z/, 'Retry-After: 1' ],
    credential_required => [ 401, 'WWW-Authenticate', qr/^Bearer\b/,
                             'WWW-Authenticate: Bearer' ],
    invalid_credential  => [ 401, 'WWW-Authenticate', qr/^Bearer\b/,
                             'WWW-Authenticate: Bearer' ],
);

sub check_refused {
    my ($name, $c, @rest) = @_;

    my $error = @rest % 2 ? shift @rest : 'too_many_executions';
    my $how = $Refusal{$error} or die "check_refused: unknown error $error\n";
    my ($status, $header, $re, $what) = @$how;

    my $obj = check_error($name, $c, $status, $error, @rest);

    Test::More::like($c->header($header) // '', $re, "$name - $what");
    Test::More::is($c->header('Content-Length'), length $c->{body},
                   "$name - Content-Length matches the body");
    Test::More::ok(!defined $c->header('X-Perstack-Execution'),
                   "$name - no X-Perstack-Execution");

    return $obj;
}

# ---- an execution stream, with its job ---------------------------------------

# Checks a finished stream from a Perstack::Client: framing, SSE ids, the
# perstack.execution event (with "job" and "continued"), perstack.end (with
# "job", and "pending_tool_calls" exactly when paused), and every runtime
# event naming the same job.  Options: format (sse), expert, job (else a new
# 24-character id), continued (0/1), outcome, exit_code.
#
# Returns { job, exec, end, events (runtime events' JSON), types, by_type }.
sub check_run {
    my ($name, $c, %o) = @_;

    my $format = $o{format} // 'sse';
    my $s = $c->stream;
    my @p;

    Test::More::is($c->{status}, 200, "$name - status 200")
        or Test::More::diag("body: " . Perstack::printable($c->{body}));
    Test::More::is($c->header('Content-Type'),
                   $format eq 'sse' ? 'text/event-stream'
                                    : 'application/x-ndjson',
                   "$name - Content-Type");
    Test::More::ok($c->{eof} && (!$c->{chunked} || $c->{complete}),
                   "$name - the response ended");
    Test::More::is_deeply($s->{errors}, [], "$name - well formed $format");

    my @ev = @{ $s->{events} };
    my $xid = $c->header('X-Perstack-Execution') // '';

    if ($format eq 'sse') {
        my @ids = map { $_->{id} // '' } @ev;
        push @p, "SSE ids @ids"
            unless "@ids" eq join ' ', map { "$xid-$_" } 1 .. @ev;
    }

    my $x = @ev ? $ev[0]{json} || {} : {};
    my $end = @ev ? $ev[-1]{json} || {} : {};
    my $end_data = @ev ? $ev[-1]{data} // '' : '';

    # perstack.execution

    push @p, "the first event is " . Perstack::printable($ev[0]{type})
        unless @ev && ($ev[0]{type} // '') eq 'perstack.execution';

    my @xkeys = sort keys %$x;
    push @p, "perstack.execution has the fields @xkeys"
        unless "@xkeys" eq join ' ', sort keys %ExecKeys;
    push @p, "perstack.execution.execution is not the header's $xid"
        unless ($x->{execution} // '') eq $xid && $xid ne '';
    push @p, "perstack.execution.container " . Perstack::printable(
             $x->{container})
        unless ($x->{container} // '') =~ /\A[0-9a-f]{64}\z/;
    push @p, "perstack.execution.image is not $Perstack::Image"
        unless ($x->{image} // '') eq $Perstack::Image;
    push @p, "perstack.execution.expert " . Perstack::printable($x->{expert})
        if defined $o{expert} && ($x->{expert} // '') ne $o{expert};

    my $job = $x->{job} // '';

    if (defined $o{job}) {
        push @p, "perstack.execution.job " . Perstack::printable($job)
                 . " is not $o{job}"
            unless $job eq $o{job};
    } else {
        push @p, "perstack.execution.job " . Perstack::printable($job)
                 . " is not a new job id"
            unless $job =~ /\A[0-9a-z]{24}\z/;
    }

    my $cont = $o{continued} ? 'true' : 'false';
    push @p, "perstack.execution.continued is not $cont: "
             . ($ev[0]{data} // '')
        unless JSON::PP::is_bool($x->{continued})
               && ($x->{continued} ? 'true' : 'false') eq $cont;

    # perstack.end

    push @p, "the last event is " . Perstack::printable($ev[-1]{type})
        unless @ev > 1 && ($ev[-1]{type} // '') eq 'perstack.end';

    for my $k (qw(type execution outcome exit_code duration_ms events
                  container_removed job))
    {
        push @p, "perstack.end has no $k" unless exists $end->{$k};
    }

    for my $k (sort keys %$end) {
        push @p, "perstack.end has an unknown field $k" unless $EndKeys{$k};
    }

    push @p, "perstack.end.execution is not the header's $xid"
        unless ($end->{execution} // '') eq $xid;
    push @p, "perstack.end.job " . Perstack::printable($end->{job})
             . " is not perstack.execution.job $job"
        unless ($end->{job} // '') eq $job;
    push @p, "perstack.end.events is not the number of events"
        unless ($end->{events} // -1) == @ev;
    push @p, "perstack.end.container_removed is not true"
        unless $end_data =~ /"container_removed":true[,}]/;

    if (defined $o{outcome}) {
        push @p, "perstack.end.outcome " . Perstack::printable(
                 $end->{outcome}) . " is not $o{outcome}"
            unless ($end->{outcome} // '') eq $o{outcome};
    }

    if (defined $o{exit_code}) {
        push @p, "perstack.end.exit_code " . Perstack::printable(
                 $end->{exit_code}) . " is not $o{exit_code}"
            unless ($end->{exit_code} // 'null') eq $o{exit_code};
    }

    if (($end->{outcome} // '') eq 'paused') {
        push @p, "a paused perstack.end has no pending_tool_calls array"
            unless ref $end->{pending_tool_calls} eq 'ARRAY'
                   && @{ $end->{pending_tool_calls} };
    } else {
        push @p, "perstack.end has pending_tool_calls but is not paused"
            if exists $end->{pending_tool_calls};
    }

    # the runtime's events: the job is the one the module named

    my @rt = map { $_->{json} || {} }
             grep { ($_->{type} // '') !~ /^perstack\./ } @ev;
    my %by;
    push @{ $by{$_->{type} // ''} }, $_ for @rt;

    for my $e (@rt) {
        push @p, "a $e->{type} event has the jobId "
                 . Perstack::printable($e->{jobId})
            unless ($e->{jobId} // '') eq $job;
    }

    Test::More::is_deeply(\@p, [], "$name - the stream and its job")
        or Test::More::diag(join "\n", @p);

    # the one container of this run, as the Docker Engine saw it created
    # (which also shows that label_creates() finds what there is)

    if ($job ne '' && defined $c->{started}) {
        my @created = label_creates($c->{started} - 0.01,
                                    "io.perstack.job=$job");
        my @mine = grep { ($_->{Actor}{Attributes}{'io.perstack.execution'}
                           // '') eq $xid } @created;

        Test::More::ok(@created == 1 && @mine == 1,
                       "$name - one container created, labelled with the "
                       . "job and the execution")
            or Test::More::diag("created for the job: " . scalar(@created)
                                . ", for this execution: " . scalar(@mine));
    }

    return { job => $job, exec => $x, end => $end, events => \@rt,
             types => [ map { $_->{type} } @rt ], by_type => \%by };
}


# A run that completes, GET $path: a whole, well formed stream
# (check_stream), its job and its container (check_run), exit code 0.
# Returns the client.
sub run_ok {
    my ($name, $path, @headers) = @_;

    my $c = run_get($path, @headers);
    my ($expert) = $path =~ /[?&]expert=([^&]+)/;

    Perstack::check_stream($name, $c->view, $c->stream, format => 'sse',
                           expert => $expert, image => $Perstack::Image);
    check_run($name, $c, expert => $expert, outcome => 'completed',
              exit_code => 0);

    return $c;
}

# Starts a run of the demo's "slow" expert ($n reasoning events) on /run
# and reads until its first streamReasoning event.  Returns the client,
# the container's id and its labels, or () when the run did not start.
# Each label in %labels must be on the container with that value.
sub start_slow {
    my ($name, $n, %labels) = @_;

    my $c = Perstack::open_stream(method => 'GET',
                                  path => "/run?expert=slow&query=$n");
    Test::More::ok($c->wait_event('streamReasoning', 20),
                   "$name - the run streams (a streamReasoning event "
                   . "arrived)")
        or return;

    my $x = $c->first_event('perstack.execution');
    my $cid = $x && $x->{json} ? $x->{json}{container} // '' : '';
    Test::More::like($cid, qr/\A[0-9a-f]{64}\z/,
                     "$name - perstack.execution names the container")
        or return;

    my $info = Perstack::container_info($cid);
    Test::More::ok($info, "$name - the container exists") or return;
    Test::More::is($info->{State}{Status}, 'running',
                   "$name - the container is running")
        or return;

    my $have = $info->{Config}{Labels} || {};

    for my $k (sort keys %labels) {
        Test::More::is($have->{$k}, $labels{$k},
                       "$name - the container has the label $k");
    }

    return ($c, $cid, $have);
}

# The perstack.end event's JSON, {} when it is not JSON; undef when none.
# The closing event of the demo's failed model call ("error" and
# "longerror"): the runtime's error, and its message.
sub demo_error_end_ok {
    my ($name, $end) = @_;
    $end ||= {};
    Test::More::is_deeply($end->{error},
        { name => 'APICallError',
          message => 'demo: the provider answered 500 Internal Server Error',
          statusCode => 500 },
        "$name - perstack.end.error is the runtime's error")
        or Test::More::diag(Test::More::explain($end));
    Test::More::is($end->{message},
        'demo: the provider answered 500 Internal Server Error',
        "$name - perstack.end.message is the error's message");
}

sub end_event {
    my ($c) = @_;
    my $e = $c->first_event('perstack.end');
    return $e ? $e->{json} || {} : undef;
}

# What a client got, for a diagnostic.
sub describe_client {
    my ($c) = @_;
    my @types = map { $_->{type} // '?' } $c->events;
    my $end = end_event($c);
    return sprintf "status %s, %d events (%s), perstack.end %s, "
                   . "eof %d, last chunk %s, parse errors: %s",
        $c->{status} // 'none', scalar @types,
        join(' ', @types[0 .. ($#types < 5 ? $#types : 5)])
            . (@types > 6 ? " ... $types[-1]" : ''),
        $end ? Perstack::json_encode($end) : 'none', $c->{eof} ? 1 : 0,
        $c->{chunked} ? ($c->{complete} ? 'yes' : 'no') : 'n/a',
        join('; ', @{ $c->stream->{errors} }) || 'none';
}

# Containers of a Docker list, for a diagnostic: "name (state), ...".
sub container_names {
    my ($list) = @_;
    return join ', ', map { ($_->{Names}[0] // $_->{Id}) . " ($_->{State})" }
                      @$list;
}

# ---- refused requests: not a single container ------------------------------

# In a block's request and more_headers, "@REFUSED@" becomes an expert name
# unique to the block; after the block's request, no container labelled
# with that expert may have been created, by any nginx, or exist.  Call once
# per file, before run_tests().
sub refused_expert_checks {
    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;
        my $req = $block->request;

        return unless defined $req && $req =~ /\@REFUSED\@/;

        my $name = unique_name('refused');
        $req =~ s/\@REFUSED\@/$name/g;
        $block->set_value('request', $req);

        my $more = $block->more_headers;
        if (defined $more && $more =~ s/\@REFUSED\@/$name/g) {
            $block->set_value('more_headers', $more);
        }

        $block->set_value('refused_expert', $name);
        $block->set_value('refused_t0', Time::HiRes::time());
    });

    Test::Nginx::Socket::add_response_body_check(sub {
        my ($block, $body, $req_idx, $rep_idx, $dry_run) = @_;
        return if $dry_run || !defined $block->refused_expert;
        no_container_for($block->name, $block->refused_t0,
                         $block->refused_expert);
    });
}


# ---- the error log -----------------------------------------------------------

sub error_log_text {
    open my $fh, '<', $Test::Nginx::Util::ErrLogFile or return '';
    local $/;
    return scalar <$fh>;
}

# The lines of the error log that match $re.
sub error_lines {
    my ($re) = @_;
    return grep { /$re/ } split /\n/, error_log_text();
}

# Waits (at most $timeout s) for $n lines matching $re: their number, or 0.
sub wait_log {
    my ($re, $n, $timeout) = @_;
    my $lines = poll($timeout, sub {
        my $l = () = error_lines($re);
        return $l >= $n ? $l : 0;
    });
    return $lines || 0;
}

# Waits (at most $timeout s) for a line matching $re: true once there.
sub wait_error_line {
    my ($re, $timeout) = @_;
    return wait_log($re, 1, $timeout) ? 1 : 0;
}

sub check_alerts {
    my ($name) = @_;
    my @bad = error_lines(qr/\[(?:alert|crit|emerg)\]/);
    Test::More::is(scalar @bad, 0,
                   "$name - no [alert], [crit] or [emerg] in the log")
        or Test::More::diag(join "\n", @bad);
}


# ---- bounded waits and processes ---------------------------------------------

# Calls $cond until it returns true, at most $timeout s: its last value.
sub poll {
    my ($timeout, $cond) = @_;
    my $deadline = Time::HiRes::time() + $timeout;

    while (1) {
        my $v = $cond->();
        return $v if $v;
        return $v if Time::HiRes::time() > $deadline;
        Time::HiRes::sleep(0.05);
    }
}

# The process has exited (a zombie counts: it runs no more).
sub gone {
    my ($pid) = @_;
    return 1 if !kill(0, $pid) && $!{ESRCH};
    open my $fh, '<', "/proc/$pid/stat" or return 1;
    my $line = <$fh> // '';
    return $line =~ /^\d+ \(.*\) Z /s ? 1 : 0;
}

# Waits (at most $timeout s) until every one of @pids is gone: true then.
sub wait_gone {
    my ($timeout, @pids) = @_;
    return poll($timeout, sub { !grep { !gone($_) } @pids }) ? 1 : 0;
}

# Waits (at most $timeout s) for a worker of $master that is none of @old
# and still runs: its pid, or undef.
sub wait_new_worker {
    my ($master, $timeout, @old) = @_;
    my %old = map { $_ => 1 } @old;

    return poll($timeout, sub {
        my ($m, @ws) = Perstack::nginx_pids();
        return undef unless ($m // 0) == $master;
        my @new = grep { !$old{$_} && !gone($_) } @ws;
        return $new[0];
    });
}


# ---- perstack_metrics ----------------------------------------------------------

# The samples of the endpoint at $path, "name{labels}" => value, and the
# response.
sub metrics {
    my ($path) = @_;
    my $r = Perstack::http_request(method => 'GET', path => $path // '/metrics',
                                   timeout => 10);
    my %m;

    for my $l (split /\n/, $r->{body} // '') {
        next if $l =~ /^#/;
        $m{$1} = $2 + 0 if $l =~ /\A(\S+) (\S+)\z/;
    }

    return wantarray ? (\%m, $r) : \%m;
}


# ---- files -------------------------------------------------------------------

sub spew {
    my ($file, $text, $mode) = @_;
    open my $fh, '>', $file or die "$file: $!\n";
    print $fh $text;
    close $fh or die "$file: $!\n";
    chmod $mode, $file if defined $mode;
}

1;
