# Executions that outlive their connection (README, "Reconnecting"):
#
#   - ids name the execution and the position; NDJSON lines carry it;
#   - a client killed mid-stream resumes with Last-Event-ID through the
#     other worker (the X-Worker header says which served each part) and
#     gets the rest exactly once; the run had one container;
#   - the same across "nginx -s reload";
#   - two readers of one execution both get the whole stream;
#   - a client that had the end gets 204; lastEventId and
#     ?execution=&after= do what Last-Event-ID does;
#   - refusals: an unknown id, an expired one and another owner's get the
#     same 404; a malformed id 400; none of them starts a container;
#   - status and cancel (DELETE: outcome "cancelled");
#   - perstack_detach_timeout stops an abandoned execution (outcome
#     "abandoned"), and a reader that follows keeps it alive;
#   - a record that cannot be made ends the request cleanly (500 JSON, no
#     container left); a disk that fills up (a small tmpfs) and a record
#     over perstack_record_max_size end the execution with a closing event.
#
# Every container gets the label test.perstack.durable-run=<unique>.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;
use Perstack;
use Time::HiRes ();

master_on();
workers(2);

# every worker its own listening socket: the kernel spreads connections
$Test::Nginx::Util::ReusePort = 1;

# the default perstack_detach_timeout, not the suite's 0
$Perstack::Detach = 1;

our $RunId = unique_name('durable');
our $RunLabel = "test.perstack.durable-run=$RunId";
$ENV{TEST_NGINX_DURABLE_RUN} = $RunId;

my $config = <<'_EOC_';
    add_header X-Worker $pid always;

    perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    perstack_label test.perstack.durable-run $TEST_NGINX_DURABLE_RUN;

    location = /run {
        perstack_execute;
        perstack_owner $http_x_user;
    }

    location = /ndjson {
        perstack_execute;
        perstack_format ndjson;
    }

    location = /detach {
        perstack_execute;
        perstack_detach_timeout 3s;
    }

    location = /keep {
        perstack_execute;
        perstack_record_keep 1s;
    }

    location = /small {
        perstack_execute;
        perstack_record_max_size 3k;
    }

    location = /broken {
        perstack_execute;
        perstack_record_path $TEST_NGINX_SERVER_ROOT/logs/broken_records;
    }

    location = /nospace {
        perstack_execute;
        perstack_record_path $TEST_NGINX_SERVER_ROOT/logs/nospace_records;
    }

    location = /static {
        return 200 "static\n";
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $config) unless defined $block->config;
    default_request($block, '/run');
});

$ENV{TEST_NGINX_SERVER_ROOT} = $Test::Nginx::Util::ServRoot;


# ---- helpers -----------------------------------------------------------------

sub ids_of {
    my ($c) = @_;
    return map { $_->{id} // '' } $c->events;
}

sub positions_of {
    my ($id, @ids) = @_;
    return map { /\A\Q$id\E-([0-9]+)\z/ ? $1 : "bad:$_" } @ids;
}

# A stream started, read until $n streamReasoning events came: the client,
# its execution id and the worker that serves it.
sub start_reading {
    my ($name, $path, $n, @headers) = @_;

    my $c = open_stream(method => 'GET', path => $path,
                        headers => \@headers);
    my $ok = $c->read_until(sub {
        scalar(grep { ($_->{type} // '') eq 'streamReasoning' } $_[0]->events)
            >= $n
    }, 30);
    ok($ok, "$name - $n streamReasoning events arrived")
        or diag(describe_client($c)), return;

    my $id = $c->header('X-Perstack-Execution') // '';
    like($id, qr/\A[0-9a-f]{32}\z/, "$name - a 128-bit execution id");

    return ($c, $id, $c->header('X-Worker') // '');
}

# Resumes after $last until a worker other than $not serves it (the kernel
# spreads connections; each try that lands on $not is closed at once).
sub resume_elsewhere {
    my ($name, $path, $id, $last, $not, @headers) = @_;

    for my $try (1 .. 40) {
        my $c = open_stream(method => 'GET', path => $path,
                            headers => [ 'Last-Event-ID' => "$id-$last",
                                         @headers ]);
        $c->read_until(sub { defined $_[0]->{status} }, 10);
        my $w = $c->header('X-Worker') // '';
        return ($c, $w) if $w ne '' && $w ne $not;
        $c->close;
    }

    fail("$name - no other worker than $not served a resume");
    return;
}

# The whole of one execution, from two parts: ids 1..N of the one
# execution, exactly once, ending with perstack.end.
sub check_parts {
    my ($name, $id, $outcome, @parts) = @_;

    my @ids = map { ids_of($_) } @parts;
    my @pos = positions_of($id, @ids);
    is_deeply(\@pos, [ 1 .. scalar @pos ],
              "$name - every event once, in order (" . scalar(@pos)
              . " events)")
        or diag("positions: @pos");

    my ($end) = grep { ($_->{type} // '') eq 'perstack.end' }
                map { $_->events } @parts;
    ok($end, "$name - the closing event arrived") or return;
    is($end->{json}{outcome}, $outcome, "$name - outcome $outcome");
    is($end->{json}{events}, scalar @pos,
       "$name - perstack.end counts every event");
    is(scalar(grep { ($_->{type} // '') eq 'perstack.execution' }
              map { $_->events } @parts), 1,
       "$name - one perstack.execution event");
}

# how many files of records the process has open
sub record_fds {
    my ($pid) = @_;
    opendir(my $d, "/proc/$pid/fd") or return -1;
    my $n = grep {
        (readlink("/proc/$pid/fd/$_") // '')
            =~ m{/perstack_records/[0-9a-f]{32}\.(?:events|index)\z}
    } readdir $d;
    closedir $d;
    return $n;
}

sub creates_for {
    my ($t0, $id) = @_;
    return scalar label_creates($t0, "io.perstack.execution=$id");
}

sub status_of {
    my ($path, $id, @headers) = @_;
    my $r = http_request(method => 'GET', path => "$path?execution=$id",
                         headers => [ Accept => 'application/json',
                                      @headers ], timeout => 10);
    return ($r->{status} // 0,
            ($r->{status} // 0) == 200 || ($r->{status} // 0) == 202
            ? json_decode($r->{body}) : $r->{body});
}

sub wait_ended {
    my ($path, $id, $timeout, @headers) = @_;
    return poll($timeout, sub {
        my ($st, $s) = status_of($path, $id, @headers);
        return ($st == 200 && ref $s && $s->{state} eq 'ended') ? $s : 0;
    });
}


# ---- a client killed mid-stream, resumed through the other worker ------------

sub check_kill_resume {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    my ($c, $id, $w1) = start_reading($name, '/run?expert=slow&query=6', 2)
        or return;
    ok($w1, "$name - worker $w1 served the first part");

    # Between its writes the execution holds none of its record's files:
    # a worker that streams thousands would run out of descriptors.  (A
    # sample can fall inside a write, hence the least of a few.)
    my @open = map { record_fds($w1) } 1 .. 5;
    is((sort { $a <=> $b } @open)[0], 0,
       "$name - no descriptor of the record held between writes")
        or diag("record files open in worker $w1: @open");
    my @first = ids_of($c);
    $c->close;

    my ($r, $w2) = resume_elsewhere($name, '/run?expert=slow&query=6', $id,
                                    scalar @first, $w1) or return;
    isnt($w2, $w1, "$name - worker $w2 served the rest");
    is($r->{status}, 200, "$name - the resume streams");
    ok($r->drain(30), "$name - the resumed stream ends");

    check_parts($name, $id, 'completed', $c, $r);
    ok(!$r->has_event('perstack.execution'),
       "$name - the resume has no second perstack.execution");
    is(creates_for($t0, $id), 1, "$name - one container for the execution");

    # the client had the end: "stop reconnecting"
    my @all = (ids_of($c), ids_of($r));
    my $again = http_request(method => 'GET', path => '/run?expert=slow',
                             headers => [ 'Last-Event-ID' => $all[-1] ],
                             timeout => 10);
    is($again->{status}, 204, "$name - after the end: 204");
    is(creates_for($t0, $id), 1, "$name - still one container");
}


# ---- the same across a reload ------------------------------------------------

sub check_reload_resume {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    my ($c, $id, $w1) = start_reading($name, '/run?expert=slow&query=6', 2)
        or return;
    my @first = ids_of($c);
    $c->close;

    my ($master, @old) = nginx_pids();
    ok(kill('HUP', $master), "$name - nginx is told to reload");
    my $new = wait_new_worker($master, 10, @old);
    ok($new, "$name - a new worker ($new)") or return;

    # the new workers serve it; the old one still runs the execution
    my $r;
    for my $try (1 .. 40) {
        $r = open_stream(method => 'GET', path => '/run',
                         headers => [ 'Last-Event-ID' => "$id-"
                                                         . scalar @first ]);
        $r->read_until(sub { defined $_[0]->{status} }, 10);
        last if !grep { $_ eq ($r->header('X-Worker') // '') } @old;
        $r->close;
        $r = undef;
    }
    ok($r, "$name - a worker started by the reload serves the resume")
        or return;
    ok($r->drain(30), "$name - the resumed stream ends");

    check_parts($name, $id, 'completed', $c, $r);
    is(creates_for($t0, $id), 1, "$name - one container for the execution");
}


# ---- two readers ---------------------------------------------------------------

sub check_two_readers {
    my ($block) = @_;
    my $name = $block->name;

    my ($c, $id) = start_reading($name, '/run?expert=slow&query=4', 1)
        or return;

    my $r = open_stream(method => 'GET', path => "/run?execution=$id&after=0");
    ok($r->drain(30), "$name - the second reader's stream ends");
    ok($c->drain(30), "$name - the first reader's stream ends");

    check_parts("$name (first)", $id, 'completed', $c);
    check_parts("$name (second)", $id, 'completed', $r);
    is_deeply([ ids_of($r) ], [ ids_of($c) ],
              "$name - both got the same events");

    # lastEventId in the query, as a client that cannot set headers does
    my @ids = ids_of($c);
    my $q = http_request(method => 'GET',
                         path => "/run?lastEventId=$ids[-3]", timeout => 10);
    is_deeply([ ids_of($q) ], [ @ids[-2, -1] ],
              "$name - lastEventId: the last two events");
}


# ---- NDJSON -------------------------------------------------------------------

sub check_ndjson {
    my ($block) = @_;
    my $name = $block->name;

    my $c = http_request(method => 'GET', path => '/ndjson?expert=demo&query=a',
                         timeout => 30);
    my $id = $c->header('X-Perstack-Execution') // '';
    my @lines = grep { /\S/ } split /\n/, $c->{body};
    my @pos = map { /\A\{"position":([0-9]+),/ ? $1 : 'none' } @lines;
    is_deeply(\@pos, [ 1 .. scalar @lines ],
              "$name - every line starts with its position");

    my $r = http_request(method => 'GET', path => "/ndjson?execution=$id&after=3",
                         timeout => 10);
    is($r->{status}, 200, "$name - after=3 streams");
    is_deeply([ grep { /\S/ } split /\n/, $r->{body} ],
              [ @lines[3 .. $#lines] ], "$name - the lines after the third");

    my $e = http_request(method => 'GET', path => '/ndjson',
                         headers => [ 'Last-Event-ID' => "$id-1" ],
                         timeout => 10);
    is($e->{status}, 406, "$name - Last-Event-ID of an NDJSON execution: 406");

    my $end = http_request(method => 'GET',
                           path => "/ndjson?execution=$id&after="
                                   . scalar @lines, timeout => 10);
    is($end->{status}, 204, "$name - after the last line: 204");
}


# ---- refusals -------------------------------------------------------------------

sub check_refusals {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    # a finished execution of alice's
    my $a = http_request(method => 'GET', path => '/run?expert=demo&query=a',
                         headers => [ 'X-User' => 'alice' ], timeout => 30);
    my $id = $a->header('X-Perstack-Execution') // '';
    like($id, qr/\A[0-9a-f]{32}\z/, "$name - alice's execution ran");

    my %bodies;

    for my $case (['unknown', "0123456789abcdef0123456789abcdef-1", 'alice'],
                  ['another owner', "$id-1", 'bob'],
                  ['no owner', "$id-1", undef])
    {
        my ($what, $leid, $user) = @$case;
        my $r = http_request(method => 'GET', path => '/run?expert=demo&query=x',
                             headers => [ 'Last-Event-ID' => $leid,
                                          defined $user ? ('X-User' => $user)
                                                        : () ],
                             timeout => 10);
        is($r->{status}, 404, "$name - $what: 404");
        $bodies{$what} = $r->{body};
    }

    is(scalar(keys %{{ map { $_ => 1 } values %bodies }}), 1,
       "$name - the same answer for all three");
    like($bodies{unknown}, qr/"error":"not_found"/, "$name - error not_found");

    # alice herself may
    my $ok = http_request(method => 'GET', path => '/run',
                          headers => [ 'Last-Event-ID' => "$id-1",
                                       'X-User' => 'alice' ], timeout => 10);
    is($ok->{status}, 200, "$name - the owner resumes");

    for my $bad ('zzz', "$id-", "$id-x", "$id-1-2", uc($id) . "-1",
                 substr($id, 1) . "-1")
    {
        my $r = http_request(method => 'GET', path => '/run?expert=demo&query=x',
                             headers => [ 'Last-Event-ID' => $bad ],
                             timeout => 10);
        is($r->{status}, 400, "$name - Last-Event-ID \"$bad\": 400");
        like($r->{body}, qr/"error":"bad_execution"/,
             "$name - \"$bad\": error bad_execution");
    }

    # expired: perstack_record_keep 1s
    my $k = http_request(method => 'GET', path => '/keep?expert=demo&query=a',
                         timeout => 30);
    my $kid = $k->header('X-Perstack-Execution') // '';
    my $gone = poll(10, sub { (status_of('/keep', $kid))[0] == 404 });
    ok($gone, "$name - an expired execution: 404");

    # and the sweep removes its files
    my $dir = "$Test::Nginx::Util::ServRoot/logs/perstack_records";
    ok(-e "$dir/$id.json", "$name - a record is kept while it may be asked "
                           . "for");
    ok(poll(10, sub { !glob("$dir/$kid.*") }),
       "$name - the sweep removed the expired record's files");

    my @created = label_creates($t0, $RunLabel);
    is(scalar @created, 2, "$name - only the two runs made containers");
}


# ---- status and cancel ------------------------------------------------------------

sub check_cancel {
    my ($block) = @_;
    my $name = $block->name;

    my ($c, $id) = start_reading($name, '/run?expert=slow&query=60', 1)
        or return;

    my ($st, $s) = status_of('/run', $id);
    is($st, 200, "$name - status: 200");
    is($s->{state}, 'running', "$name - status: running");
    is($s->{outcome}, undef, "$name - status: no outcome yet");
    cmp_ok($s->{events}, '>=', 2, "$name - status: events so far");
    like($s->{started}, qr/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\z/,
         "$name - status: started");
    is($s->{expert}, 'slow', "$name - status: the expert");

    my $d = http_request(method => 'DELETE', path => "/run?execution=$id",
                         timeout => 10);
    is($d->{status}, 202, "$name - DELETE: 202");

    ok($c->wait_event('perstack.end', 20), "$name - the stream ends");
    my $end = $c->first_event('perstack.end');
    is($end->{json}{outcome}, 'cancelled', "$name - outcome cancelled");
    is($end->{json}{container_removed}, JSON::PP::true(),
       "$name - the container was removed");

    my $s2 = wait_ended('/run', $id, 10);
    is($s2 && $s2->{outcome}, 'cancelled', "$name - status: cancelled");
    ok($s2 && $s2->{ended}, "$name - status: ended at");

    my $again = http_request(method => 'DELETE', path => "/run?execution=$id",
                             timeout => 10);
    is($again->{status}, 200, "$name - DELETE once it ended: 200");

    my $unknown = http_request(method => 'DELETE',
                               path => '/run?execution=' . ('0' x 32),
                               timeout => 10);
    is($unknown->{status}, 404, "$name - DELETE of an unknown id: 404");
}


# ---- detach ----------------------------------------------------------------------

sub check_detach {
    my ($block) = @_;
    my $name = $block->name;

    # nobody follows: stopped after perstack_detach_timeout
    my ($c, $id) = start_reading($name, '/detach?expert=slow&query=60', 1)
        or return;
    my $cid = $c->first_event('perstack.execution')->{json}{container};
    $c->close;

    my $s = wait_ended('/detach', $id, 30);
    ok($s, "$name - the abandoned execution ended") or return;
    is($s->{outcome}, 'abandoned', "$name - outcome abandoned");
    ok(defined wait_container_gone($cid, 10),
       "$name - its container is gone");

    # a follower keeps it alive past the timeout, to its end
    my ($c2, $id2) = start_reading($name, '/detach?expert=slow&query=8', 1)
        or return;
    $c2->close;
    my $f = open_stream(method => 'GET', path => "/detach?execution=$id2");
    ok($f->drain(30), "$name - the follower's stream ends");
    my $end = $f->first_event('perstack.end');
    is($end && $end->{json}{outcome}, 'completed',
       "$name - followed, it ran to its end");
}


# ---- records that fail ---------------------------------------------------------------

# file systems this file mounted, unmounted whatever happens
our @Mounts;
END { system('umount', $_) for @Mounts }

sub check_record_fails {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    # the record's directory is a file now: no record can be made
    my $dir = "$Test::Nginx::Util::ServRoot/logs/broken_records";
    ok(-d $dir, "$name - nginx made perstack_record_path");
    system('rm', '-rf', $dir) == 0 or die "rm $dir\n";
    open my $fh, '>', $dir or die "$dir: $!\n";
    close $fh;

    my $r = http_request(method => 'GET', path => '/broken?expert=demo&query=a',
                         timeout => 30);
    is($r->{status}, 500, "$name - no record: 500");
    like($r->{body}, qr/"error":"record_failed"/, "$name - error record_failed");
    ok(wait_error_line(qr/\[crit\].*the execution's record .* could not be created/, 5),
       "$name - a log line says why");
    is(scalar(label_containers($RunLabel)), 0,
       "$name - no container is left");

    # a disk that fills up mid-way (a tmpfs of 64 KiB mounted on the
    # directory nginx made): the execution ends with a closing event
    my $ns = "$Test::Nginx::Util::ServRoot/logs/nospace_records";
    is(system('mount', '-t', 'tmpfs', '-o', 'size=64k,mode=0777', 'tmpfs',
              $ns), 0, "$name - a tmpfs of 64 KiB on the record's directory");
    push @Mounts, $ns;

    my $t1 = Time::HiRes::time();
    my $n = http_request(method => 'GET', path => '/nospace?expert=flood&query=20000',
                         timeout => 60);
    my $nend = $n->first_event('perstack.end');
    ok($nend, "$name - a full disk: the client gets the end");
    is($nend && $nend->{json}{outcome}, 'error',
       "$name - a full disk: outcome error");
    like($nend && $nend->{json}{message}, qr/record could not be written/,
         "$name - a full disk: the message says why");
    ok(wait_error_line(qr/\[crit\].*the execution's record .* could not be written \(28: No space left/, 5),
       "$name - a full disk: a log line says why");
    cmp_ok(scalar(grep { ($_->{type} // '') eq 'streamRunResult' } $n->events),
           '<', 20000, "$name - a full disk: the run was stopped");
    is(scalar(label_containers($RunLabel)), 0,
       "$name - a full disk: no container is left");
    is(system('umount', $ns), 0, "$name - the tmpfs is unmounted");
    @Mounts = grep { $_ ne $ns } @Mounts;

    # a record that fills up ends the execution, with a closing event
    my $s = http_request(method => 'GET', path => '/small?expert=slow&query=30',
                         timeout => 30);
    my $end = $s->first_event('perstack.end');
    ok($end, "$name - a full record: the client gets the end");
    is($end && $end->{json}{outcome}, 'output_limit',
       "$name - a full record: outcome output_limit");
    like($end && $end->{json}{message}, qr/perstack_record_max_size/,
         "$name - a full record: the message says why");

    # a follower of the full record gets its end too, not a stream that
    # stops short (which a browser would reconnect to for ever)
    my $sid = $s->header('X-Perstack-Execution') // '';
    my $f = http_request(method => 'GET', path => "/small?execution=$sid",
                         timeout => 10);
    my $fend = $f->first_event('perstack.end');
    is($fend && $fend->{json}{outcome}, 'output_limit',
       "$name - a follower of the full record gets the end");
    my ($last) = reverse ids_of($f);
    my $again = http_request(method => 'GET', path => '/small',
                             headers => [ 'Last-Event-ID' => $last // '' ],
                             timeout => 10);
    is($again->{status}, 204, "$name - and then 204");
}


run_tests();

__DATA__

=== TEST 1: a client killed mid-stream resumes through the other worker
--- check: check_kill_resume
--- timeout: 90



=== TEST 2: resume across nginx -s reload
--- check: check_reload_resume
--- timeout: 90



=== TEST 3: two readers of one execution
--- check: check_two_readers
--- timeout: 60



=== TEST 4: NDJSON positions, ?execution=&after=
--- check: check_ndjson
--- timeout: 60



=== TEST 5: refusals: unknown, other owner, expired, malformed
--- check: check_refusals
--- timeout: 90



=== TEST 6: status and DELETE
--- check: check_cancel
--- timeout: 60



=== TEST 7: perstack_detach_timeout
--- check: check_detach
--- timeout: 90



=== TEST 8: a record that cannot be written
--- check: check_record_fails
--- timeout: 60
--- no_error_log
[alert]
[emerg]
