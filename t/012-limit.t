# Admission control: perstack_limit_zone and perstack_limit.
#
#   - the directives' refusals at configuration time;
#   - max: of three runs at once two stream, the third gets 429 (with
#     Retry-After and a JSON body) and no container; the slots come back;
#   - key/per_key across two workers: the same key is refused on whichever
#     worker the request lands (listen ... reuseport spreads the
#     connections, and the error log names the worker that refused);
#   - the slot comes back however an execution ends: the client goes away
#     (mid-stream and before the response), a timeout, a failing run, an
#     image that is not there (the slot was taken, creating failed);
#   - queue: a queued request runs once the slot is free, one over the
#     queue is refused at once, queue_timeout refuses, a queued client that
#     goes away gives its place back;
#   - the queue is first come, first served across two workers: requests
#     queued one after the other (each seen in the queue, by its worker's
#     log line, before the next is sent) are let in in that order as the
#     slot is freed, also when the slot was freed in the other worker;
#     a request that comes when the slot was just freed does not take it
#     from the one that waits;
#   - a worker killed with SIGKILL: the worker started in its place gives
#     its slot back.  The killed worker's container is nobody's any more:
#     the test removes it.
#
# Every container gets the label test.perstack.limit-run=<unique to this
# run>, which the Docker events are read by: another run on the same Docker
# Engine neither counts nor is counted.

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
# over the workers by their addresses, so requests reach both
$Test::Nginx::Util::ReusePort = 1;

our $RunId = unique_name('limit');
our $RunLabel = "test.perstack.limit-run=$RunId";
$ENV{TEST_NGINX_LIMIT_RUN} = $RunId;

our $MissingImage = "perstack-test-missing:$RunId";

my $http_config = <<'_EOC_';
    perstack_limit_zone zone=two:64k;
    perstack_limit_zone zone=users:64k;
    perstack_limit_zone zone=one:64k;
    perstack_limit_zone zone=queue:64k;
    perstack_limit_zone zone=queue_short:64k;
    perstack_limit_zone zone=fifo:64k;
_EOC_

my $config = <<'_EOC_';
    perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    perstack_label test.perstack.limit-run $TEST_NGINX_LIMIT_RUN;

    location = /two {
        perstack_execute;
        perstack_limit zone=two max=2;
    }

    location = /user {
        perstack_execute;
        perstack_limit zone=users max=3 key=$http_x_user per_key=1;
    }

    location = /one {
        perstack_execute;
        perstack_limit zone=one max=1;
    }

    location = /one-timeout {
        perstack_execute;
        perstack_timeout 2s;
        perstack_stop_timeout 1s;
        perstack_limit zone=one max=1;
    }

    location = /one-missing {
        perstack_execute;
        perstack_image perstack-test-missing:$TEST_NGINX_LIMIT_RUN;
        perstack_limit zone=one max=1;
    }

    location = /queue {
        perstack_execute;
        perstack_limit zone=queue max=1 queue=1 queue_timeout=10s;
    }

    location = /queue-short {
        perstack_execute;
        perstack_limit zone=queue_short max=1 queue=1 queue_timeout=1s;
    }

    location = /fifo {
        perstack_execute;
        perstack_limit zone=fifo max=1 queue=16 queue_timeout=120s;
    }

    # the same zone, no queue: in at once or refused
    location = /fifo-now {
        perstack_execute;
        perstack_limit zone=fifo max=1;
    }

    location = /static {
        return 200 "static\n";
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

    # "--- nginx_workers: N" for one block; 2 otherwise
    my $n = $block->nginx_workers // 2;
    $n =~ s/\s+//g;
    workers($n);

    return if defined $block->must_die;

    $block->set_value('http_config', $http_config)
        unless defined $block->http_config;
    $block->set_value('config', $config) unless defined $block->config;
    default_request($block, '/one');
});


# ---- helpers -------------------------------------------------------------------

# A request that is either refused at once or starts an execution: read
# until its first runtime event or the end of its (non-stream) response.
sub start_req {
    my ($path, @headers) = @_;

    my $c = open_stream(method => 'GET', path => $path,
                        headers => \@headers);
    settle($c, 20);
    return $c;
}

sub settle {
    my ($c, $timeout) = @_;

    return $c->read_until(sub {
        my $c = shift;
        return 0 unless defined $c->{status};
        return $c->has_event('initializeRuntime') if $c->{status} == 200;
        return $c->{complete};
    }, $timeout);
}

sub streaming {
    my ($c) = @_;
    return ($c->{status} // 0) == 200 && $c->has_event('initializeRuntime');
}

# Finish a started run and check its stream.
sub finish_ok {
    my ($name, $c, %o) = @_;

    ok($c->drain(40), "$name - the stream ends");
    $c->close;

    check_stream($name, $c->view, $c->stream, format => 'sse',
                 expert => $o{expert} // 'slow', image => $Image);

    my $end = $c->first_event('perstack.end');
    is($end ? $end->{json}{outcome} : undef, $o{outcome} // 'completed',
       "$name - outcome " . ($o{outcome} // 'completed'));

    return $end ? $end->{json} : {};
}

# The "create" events of this run's containers since $t0.
sub creates_since {
    my ($t0) = @_;
    return label_creates($t0, $RunLabel);
}

# The pids of the workers that logged a refusal, in order.
sub refusal_pids {
    return map { /\[warn\] (\d+)#/ ? $1 : () }
           error_lines(qr/perstack: execution refused: limit of zone/);
}

sub container_pid {
    my ($c) = @_;
    my $id = $c->header('X-Perstack-Execution') // '';
    my $info = $id ne '' ? container_info("perstack-$id") : undef;
    return $info ? ($info->{Config}{Labels} || {})->{'io.perstack.pid'}
                 : undef;
}


# ---- max -----------------------------------------------------------------------

sub check_max {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    my ($master, @workers) = nginx_pids();
    is(scalar @workers, 2, "$name - two workers");

    # three at once, then read each until it streams or is answered
    my @c = map { open_stream(method => 'GET',
                              path => '/two?expert=slow&query=4') } 1 .. 3;
    ok(settle($_, 20), "$name - each request streams or is answered")
        for @c;

    my @run = grep { streaming($_) } @c;
    my @refused = grep { ($_->{status} // 0) == 429 } @c;

    is(scalar @run, 2, "$name - exactly two stream");
    is(scalar @refused, 1, "$name - exactly one is refused")
        or diag("statuses: " . join ' ', map { $_->{status} // '-' } @c);

    check_refused("$name (refused)", $_, max => 2) for @refused;

    my @warn = error_lines(qr/\[warn\] .*perstack: execution refused: limit of zone "two" reached/);
    is(scalar @warn, 1, "$name - one warning: the limit of zone \"two\"");

    # the Docker Engine created the two containers, and no third one
    my @created = creates_since($t0);
    my %ids = map { ($_->header('X-Perstack-Execution') // '-') => 1 } @run;
    is(scalar @created, 2, "$name - two containers were created");
    is(scalar(grep { $ids{$_->{Actor}{Attributes}{'io.perstack.execution'}
                          // ''} } @created), 2,
       "$name - those of the two streams");

    my %pids = map { ($_->{Actor}{Attributes}{'io.perstack.pid'} // '-') => 1 }
               @created;
    Test::More::note("$name - the two runs were on worker(s) " . join ' ', sort keys %pids);
    Test::More::note("$name - refused by worker " . join ' ', refusal_pids());

    # the two finish; their slots come back
    finish_ok("$name (run $_)", $run[$_ - 1]) for 1 .. @run;

    # both slots came back: two at once again
    my @again = map { open_stream(method => 'GET',
                                  path => "/two?expert=demo&query=again+$_") }
                1 .. 2;
    ok(settle($_, 20), "$name - a new request streams or is answered")
        for @again;
    is(scalar(grep { streaming($_) } @again), 2,
       "$name - two new runs at once both stream")
        or diag("statuses: " . join ' ', map { $_->{status} // '-' } @again);
    finish_ok("$name (again $_)", $again[$_ - 1], expert => 'demo')
        for 1 .. 2;

    is(scalar creates_since($t0), 4, "$name - four containers in all");
}


# ---- per key, across workers ---------------------------------------------------

sub check_per_key {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    my ($master, @workers) = nginx_pids();
    is(scalar @workers, 2, "$name - two workers");

    my $alice = start_req('/user?expert=slow&query=3', 'X-User' => 'alice');
    ok(streaming($alice), "$name - alice's first run streams") or return;

    my $holder = container_pid($alice);
    ok($holder && grep({ $_ == $holder } @workers),
       "$name - it runs on worker " . ($holder // '?'));

    # alice again, on new connections, until one was refused by the other
    # worker as well (the connections are spread by reuseport)
    my ($n, $ok) = (0, 0);
    my @statuses;

    while ($n < 24) {
        $n++;
        my $c = http_request(method => 'GET', path => '/user?expert=demo&'
                             . "query=again$n", headers => ['X-User' => 'alice'],
                             timeout => 10);
        push @statuses, $c->{status} // '-';

        if ($n == 1) {
            check_refused("$name (alice again)", $c, max => 3, per_key => 1);
        }

        my @pids = refusal_pids();
        last if grep({ $_ != $holder } @pids) && grep({ $_ == $holder } @pids);
    }

    is_deeply(\@statuses, [ (429) x $n ],
              "$name - alice is refused each time ($n requests)");

    my @pids = refusal_pids();
    is(scalar @pids, $n, "$name - one refusal logged for each");
    ok(grep({ $_ == $holder } @pids),
       "$name - refused by the worker that runs alice's execution");
    ok(grep({ $_ != $holder } @pids),
       "$name - and by the other worker");

    $alice->read_available;
    ok(!$alice->has_event('perstack.end'),
       "$name - alice's first run was running all along");

    # another key gets in: max is not reached
    run_ok("$name (bob)", '/user?expert=demo&query=hi+bob', 'X-User' => 'bob');

    finish_ok("$name (alice's first run)", $alice);

    # alice's slot came back
    run_ok("$name (alice after)", '/user?expert=demo&query=back+again',
           'X-User' => 'alice');

    is(scalar creates_since($t0), 3,
       "$name - three containers in all: none for a refused request");
}


# ---- the slot comes back however the execution ends ----------------------------

# The slot of zone "one" is taken: another request gets 429.
sub one_is_taken {
    my ($name) = @_;
    my $c = http_request(method => 'GET', path => '/one?expert=demo&query=no',
                         timeout => 10);
    check_refused("$name (while taken)", $c, max => 1);
}

sub check_back_after_abort {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    my $c = start_req('/one?expert=slow&query=30');
    ok(streaming($c), "$name - the run streams") or return;
    my $id = $c->header('X-Perstack-Execution');

    one_is_taken($name);

    $c->close;

    ok(defined wait_container_gone("perstack-$id", 10),
       "$name - the container is removed after the client went away");
    ok(wait_log(qr/perstack: execution ended: client_gone/, 1, 5),
       "$name - the execution ended (client_gone)");

    run_ok("$name (after)", '/one?expert=demo&query=free+again');

    is(scalar creates_since($t0), 2, "$name - two containers in all");
}

sub check_back_after_early_abort {
    my ($block) = @_;
    my $name = $block->name;

    # go away right after the request: the slot may be taken before the
    # container exists
    my $c = open_stream(method => 'GET', path => '/one?expert=slow&query=30');
    $c->close;

    my $left = wait_no_managed(10);
    is(scalar @$left, 0, "$name - no container is left");
    ok(wait_log(qr/perstack: execution ended: client_gone/, 1, 10),
       "$name - the execution ended (client_gone)");

    run_ok("$name (after)", '/one?expert=demo&query=free+again');
}

sub check_back_after_timeout {
    my ($block) = @_;
    my $name = $block->name;

    my $c = start_req('/one-timeout?expert=slow&query=30');
    ok(streaming($c), "$name - the run streams") or return;

    one_is_taken($name);

    my $end = finish_ok("$name (timed out)", $c, outcome => 'timeout');
    is($end->{exit_code}, 143, "$name - exit code 143 (SIGTERM)");

    run_ok("$name (after)", '/one?expert=demo&query=free+again');
}

sub check_back_after_failure {
    my ($block) = @_;
    my $name = $block->name;

    my $c = http_request(method => 'GET', path => '/one?expert=exit&query=3',
                         timeout => 20);
    check_stream($name, $c->view, $c->stream, format => 'sse',
                 expert => 'exit', image => $Image);
    my $end = $c->first_event('perstack.end');
    $end = $end ? $end->{json} : {};
    is($end->{outcome}, 'failed', "$name - outcome failed");
    is($end->{exit_code}, 3, "$name - exit code 3");

    run_ok("$name (after)", '/one?expert=demo&query=free+again');
}

sub check_back_after_missing_image {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    ok(!image_exists($MissingImage), "$name - $MissingImage does not exist");

    for my $i (1 .. 2) {
        my $c = http_request(method => 'GET',
                             path => '/one-missing?expert=demo&query=x',
                             timeout => 20);
        check_error("$name ($i)", $c, 502, 'image_not_found',
                    image => $MissingImage);
    }

    run_ok("$name (after)", '/one?expert=demo&query=free+again');

    is(scalar creates_since($t0), 1, "$name - one container in all");
    is(scalar error_lines(qr/execution refused/), 0, "$name - no refusal");
}


# ---- the queue -----------------------------------------------------------------

# Read $holder to its perstack.end, looking at the others meanwhile.
# Returns, for each of @others, whether it had a status line by then.
sub read_holder_to_end {
    my ($holder, $timeout, @others) = @_;
    my $deadline = Time::HiRes::time() + $timeout;

    while (!$holder->has_event('perstack.end') && !$holder->{eof}
           && Time::HiRes::time() < $deadline)
    {
        $holder->pump(0.05);
        $_->read_available for @others;
    }

    return map { defined $_->{status} } @others;
}

sub check_queue {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    my $h = start_req('/queue?expert=slow&query=3');
    ok(streaming($h), "$name - the first run streams") or return;

    # the second waits for the slot
    my $q = open_stream(method => 'GET', path => '/queue?expert=demo&'
                                                 . 'query=waited+for+it');
    ok(!$q->read_until(sub { defined $_[0]{status} }, 0.5),
       "$name - the second request waits (no response)");

    # the queue (1) is full: the third is refused at once
    my $t = open_stream(method => 'GET', path => '/queue?expert=demo&'
                                                 . 'query=too+many');
    ok(settle($t, 5), "$name - the third request is answered");
    check_refused("$name (third)", $t, max => 1);
    $t->close;

    $h->read_available;
    $q->read_available;
    ok(!$h->has_event('perstack.end'),
       "$name - the first run was still running then");
    ok(!defined $q->{status}, "$name - the second was still waiting then");

    # the first ends; only then does the second start
    my ($q_started) = read_holder_to_end($h, 20, $q);
    ok($h->has_event('perstack.end'), "$name - the first run ends");
    ok(!$q_started, "$name - the second had no response before the "
                    . "first's perstack.end");

    finish_ok("$name (first)", $h);

    ok($q->drain(20), "$name - the second's stream ends");
    $q->close;
    is($q->{status}, 200, "$name - the second was not refused");
    check_stream("$name (second)", $q->view, $q->stream, format => 'sse',
                 expert => 'demo', image => $Image);
    my $end = $q->first_event('perstack.end');
    is($end ? $end->{json}{outcome} : undef, 'completed',
       "$name - the second completed");

    is(scalar error_lines(qr/execution refused/), 1,
       "$name - one refusal (the third)");
    is(scalar creates_since($t0), 2, "$name - two containers in all");
}

sub check_queue_timeout {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    my $h = start_req('/queue-short?expert=slow&query=5');
    ok(streaming($h), "$name - the first run streams") or return;

    for my $i (1 .. 2) {
        # waits (queue_timeout=1s) and is refused; the second shows that
        # the first gave its place in the queue back
        my $c = http_request(method => 'GET', path => '/queue-short?expert='
                             . "demo&query=waits$i", timeout => 10);

        check_refused("$name ($i)", $c, max => 1);

        # refused after it waited in the queue, not at once: the log says
        # it was queued before it was refused (order, not time)
        my @lines = error_lines(
                        qr/execution (queued in zone "queue_short"|refused)/);
        is(scalar(grep { /queued in zone/ } @lines), $i,
           "$name ($i) - it was queued first");
        like($lines[-1] // '', qr/execution refused/,
             "$name ($i) - then refused");
    }

    $h->read_available;
    ok(!$h->has_event('perstack.end'),
       "$name - the first run was running all along");

    finish_ok("$name (first)", $h);

    is(scalar error_lines(qr/execution refused/), 2, "$name - two refusals");
    is(scalar creates_since($t0), 1, "$name - one container in all");
}

sub check_queue_leave {
    my ($block) = @_;
    my $name = $block->name;

    my $h = start_req('/queue?expert=slow&query=3');
    ok(streaming($h), "$name - the first run streams") or return;

    # one waits, then goes away
    my $a = open_stream(method => 'GET', path => '/queue?expert=demo&query=a');
    ok(!$a->read_until(sub { defined $_[0]{status} }, 0.3),
       "$name - a second request waits");
    $a->close;

    ok(wait_log(qr/client prematurely closed connection/, 1, 5),
       "$name - nginx noticed it leave");

    # its place is free: the next one waits too, and runs
    my $b = open_stream(method => 'GET', path => '/queue?expert=demo&query=b');
    ok(!$b->read_until(sub { defined $_[0]{status} }, 0.3),
       "$name - the next request waits as well (not refused)");

    my ($b_started) = read_holder_to_end($h, 20, $b);
    ok(!$b_started, "$name - it had no response before the first ended");
    finish_ok("$name (first)", $h);

    ok($b->drain(20), "$name - its stream ends");
    $b->close;
    is($b->{status}, 200, "$name - it was not refused");
    check_stream("$name (next)", $b->view, $b->stream, format => 'sse',
                 expert => 'demo', image => $Image);

    is(scalar error_lines(qr/execution refused/), 0, "$name - no refusal");
}


# ---- first come, first served -------------------------------------------------

# The workers that logged "execution queued" in zone "fifo", in order.
sub queued_pids {
    return map { /\[info\] (\d+)#\d+: .*perstack: execution queued in zone "fifo"/
                 ? $1 : () }
           error_lines(qr/perstack: execution queued in zone "fifo"/);
}

# Wait (at most $timeout seconds) until one of @c has its status line;
# its index, or -1.  Waits on the sockets, reading what comes.
sub next_with_status {
    my ($timeout, @c) = @_;
    my $deadline = Time::HiRes::time() + $timeout;

    while (1) {
        for my $i (0 .. $#c) {
            return $i if defined $c[$i]{status};
        }

        my $left = $deadline - Time::HiRes::time();
        my @open = grep { $_->{fh} && !$_->{eof} } @c;
        return -1 if $left <= 0 || !@open;

        my %by_fh = map { (fileno($_->{fh}) => $_) } @open;
        my $sel = IO::Select->new(map { $_->{fh} } @open);

        $by_fh{fileno $_}->pump(0) for $sel->can_read($left);
    }
}

sub check_fifo_order {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    my ($master, @workers) = nginx_pids();
    is(scalar @workers, 2, "$name - two workers");

    my $h = start_req('/fifo?expert=slow&query=100');
    ok(streaming($h), "$name - the first run streams") or return;
    my $holder = container_pid($h);
    ok($holder && grep({ $_ == $holder } @workers),
       "$name - it runs on worker " . ($holder // '?'));

    # waiters one after the other, each in the queue before the next is
    # sent, until both workers have one (reuseport spreads them)
    my (@w, @seen);

    while (@w < 16) {
        my $n = @w + 1;
        push @w, open_stream(method => 'GET',
                             path => "/fifo?expert=slow&query=100&n=$n");
        push @seen, wait_log(qr/perstack: execution queued in zone "fifo"/,
                             $n, 5) ? 1 : 0;

        my %on = map { $_ => 1 } queued_pids();
        last if @w >= 4 && keys %on == 2;
        last if @w >= 4 && !$seen[-1];
    }

    my $n = @w;
    is_deeply(\@seen, [ (1) x $n ],
              "$name - each of the $n waiters was seen in the queue "
              . "before the next was sent");

    my @queued_on = queued_pids();
    is(scalar(keys %{ { map { $_ => 1 } @queued_on } }), 2,
       "$name - waiters on both workers (" . join(' ', @queued_on) . ")");

    ok(!grep({ defined $_->{status} } @w),
       "$name - none of them has a response while the slot is held");

    # the slot goes from one to the next: each time the holder goes away,
    # the one let in must be the first still waiting
    my (@order, @ran_on, @freed_on, @alone);
    my @left = (0 .. $n - 1);
    my $current = $h;
    my $current_on = $holder;

    while (@left) {
        $current->close;

        my $k = next_with_status(30, map { $w[$_] } @left);
        last if $k < 0;

        my $i = splice @left, $k, 1;
        push @order, $i + 1;
        push @freed_on, $current_on // 0;

        $_->read_available for map { $w[$_] } @left;
        push @alone, !grep({ defined $w[$_]{status} } @left) ? 1 : 0;

        settle($w[$i], 20);
        last unless streaming($w[$i]);

        $current = $w[$i];
        $current_on = container_pid($current);
        push @ran_on, $current_on // 0;
    }

    $current->close;

    is_deeply(\@order, [ 1 .. $n ],
              "$name - let in in the order they came");
    is_deeply(\@alone, [ (1) x $n ],
              "$name - each time, no one else was let in");
    is_deeply(\@ran_on, [ @queued_on[0 .. $n - 1] ],
              "$name - each ran on the worker that queued it");

    my @across = grep { $freed_on[$_] && $ran_on[$_]
                        && $freed_on[$_] != $ran_on[$_] } 0 .. $#ran_on;
    ok(scalar @across,
       "$name - some were let in after the slot was freed in the other "
       . "worker (" . scalar(@across) . " of " . scalar(@ran_on) . ")");

    ok(wait_log(qr/perstack: execution ended: client_gone/, $n + 1, 30),
       "$name - all " . ($n + 1) . " executions ended");

    # the slot is free and nobody waits: the zone's count is back to zero
    run_ok("$name (after)", '/fifo-now?expert=demo&query=free+again');

    is(scalar error_lines(qr/execution refused/), 0, "$name - no refusal");
    is(scalar creates_since($t0), $n + 2,
       "$name - one container each, and none more");
}

sub check_fifo_no_overtake {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    for my $round (1 .. 2) {
        my $r = "$name ($round)";

        my $h = start_req("/fifo?expert=slow&query=8&round=$round");
        ok(streaming($h), "$r - the first run streams") or return;

        my $w = open_stream(method => 'GET',
                            path => "/fifo?expert=demo&query=waited+$round");
        ok(wait_log(qr/perstack: execution queued in zone "fifo"/, $round,
                    5),
           "$r - the second request is in the queue");

        # its slot is given back before the closing event: at once, one
        # more request, that finds the slot free unless the one in the
        # queue has it already
        ok($h->wait_event('perstack.end', 30), "$r - the first run ends");

        my $x = open_stream(method => 'GET',
                            path => "/fifo-now?expert=demo&query=late+$round");
        ok(settle($x, 20), "$r - the late request is answered");
        check_refused("$r (late)", $x, max => 1);
        $x->drain(20) if streaming($x);
        $x->close;

        finish_ok("$r (first)", $h, expert => 'slow');

        ok($w->drain(30), "$r - the queued one's stream ends");
        $w->close;
        is($w->{status}, 200, "$r - the queued one ran");
        check_stream("$r (queued)", $w->view, $w->stream, format => 'sse',
                     expert => 'demo', image => $Image);
    }

    is(scalar creates_since($t0), 4,
       "$name - four containers: none for the late requests");
}


# ---- a worker killed -----------------------------------------------------------

sub check_killed_worker {
    my ($block) = @_;
    my $name = $block->name;

    my ($master, @workers) = nginx_pids();
    is(scalar @workers, 1, "$name - one worker");
    my $w = $workers[0];

    my $c = start_req('/one?expert=slow&query=30');
    ok(streaming($c), "$name - the run streams") or return;
    my $id = $c->header('X-Perstack-Execution');
    is(container_pid($c), $w, "$name - its container is the worker's");

    one_is_taken($name);

    ok(kill('KILL', $w), "$name - the worker $w is killed");

    # the master starts another
    my $deadline = Time::HiRes::time() + 10;
    my $new;
    while (Time::HiRes::time() < $deadline) {
        my ($m, @ws) = nginx_pids();
        ($new) = grep { $_ != $w } @ws;
        last if $new && !grep { $_ == $w } @ws;
        undef $new;
        Time::HiRes::sleep(0.05);
    }
    ok($new, "$name - a new worker started (" . ($new // 'none') . ")")
        or return;

    ok($c->drain(5), "$name - the killed worker's client is cut off");
    $c->close;

    # the dead worker's slot is free
    run_ok("$name (after)", '/one?expert=demo&query=free+again');

    my @gave = error_lines(qr/perstack: gave back/);
    is(scalar @gave, 1, "$name - one \"gave back\" line");
    like($gave[0] // '', qr/\[warn\] $new#\d+: perstack: gave back 1 execution slot\(s\) of a worker that exited/,
         "$name - the new worker gave back the dead worker's slot");

    my @alerts = error_lines(qr/\[alert\]/);
    is(scalar(grep { !/worker process $w exited on signal 9/ } @alerts), 0,
       "$name - no [alert] but the worker's death")
        or diag(join "\n", @alerts);

    # the new worker's reaper removes the dead worker's container
    # (t/013-reaper.t tests that in detail)
    my $gone = 0;
    my $until = Time::HiRes::time() + 15;
    while (Time::HiRes::time() < $until) {
        my @orphans = label_containers("io.perstack.pid=$w");
        if (!@orphans) { $gone = 1; last }
        Time::HiRes::sleep(0.1);
    }
    ok($gone, "$name - the killed worker's container is reaped");

    if (!$gone) {
        remove_container($_->{Id})
            for label_containers("io.perstack.pid=$w");
    }
}


# The pid of a killed worker, taken by the worker the master starts in its
# place: Linux hands out the pid after the one in ns_last_pid, so the test
# writes the worker's pid minus one there before it kills the worker.  The
# slot the dead worker held is still given back: a slot names its worker
# by pid and start time.  Another process of this host may fork first and
# take the pid: then the test tries again.
sub check_killed_pid_reused {
    my ($block) = @_;
    my $name = $block->name;
    my $last = '/proc/sys/kernel/ns_last_pid';

    for my $try (1 .. 5) {
        my ($master, @workers) = nginx_pids();
        my $w = $workers[0];
        my $t0 = proc_start_time($w) // '';

        my $c = start_req('/one?expert=slow&query=30');
        ok(streaming($c), "$name (try $try) - the run streams") or return;
        one_is_taken("$name (try $try)");

        open my $fh, '>', $last or do {
            diag("cannot write $last: $!");
            $c->close;
            return;
        };
        print $fh $w - 1;
        close $fh;

        ok(kill('KILL', $w), "$name (try $try) - the worker $w is killed");

        # the master starts another: a new pid, or the same pid started
        # at another time
        my $new = poll(10, sub {
            my ($m, @ws) = nginx_pids();
            return undef unless @ws == 1;
            return $ws[0] if $ws[0] != $w;
            return (proc_start_time($w) // $t0) ne $t0 ? $w : undef;
        });
        ok($new, "$name (try $try) - a new worker started") or return;

        $c->drain(5);
        $c->close;

        # the killed worker's container is the new worker's to reap
        poll(20, sub { !label_containers("io.perstack.pid=$w") });

        if ($new != $w) {
            note("$name - try $try: another process took pid $w first");
            next;
        }

        # the dead worker's slot is free
        run_ok("$name (after)", '/one?expert=demo&query=free+again');

        my @gave = grep { /\[warn\] $w#\d+: perstack: gave back 1 execution slot/ }
                   error_lines(qr/perstack: gave back/);
        is(scalar @gave, 1, "$name - the worker in its place, with the "
                            . "same pid, gave the dead worker's slot back");
        return;
    }

    fail("$name - another process took the pid five times");
}


# ---- a reload ------------------------------------------------------------------

sub check_reload {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    my ($master, @workers) = nginx_pids();
    is(scalar @workers, 1, "$name - one worker");
    my $old = $workers[0];

    my $c = start_req('/one?expert=slow&query=4');
    ok(streaming($c), "$name - the run streams") or return;
    is(container_pid($c), $old, "$name - its container is the old worker's");

    ok(kill('HUP', $master), "$name - the master is told to reload");

    # a new worker, while the old one still streams its run
    my $deadline = Time::HiRes::time() + 10;
    my $new;
    while (Time::HiRes::time() < $deadline) {
        my ($m, @ws) = nginx_pids();
        ($new) = grep { $_ != $old } @ws;
        last if $new;
        Time::HiRes::sleep(0.05);
    }
    ok($new, "$name - a new worker started (" . ($new // 'none') . ")")
        or return;

    # the zone kept its count: the new worker sees the old run's slot
    ok(!$c->has_event('perstack.end'), "$name - the old run still streams");
    one_is_taken("$name (new worker)");

    finish_ok("$name (old run)", $c);

    # and the slot the old worker gave back is free for the new one
    run_ok("$name (after)", '/one?expert=demo&query=free+again');

    my @gave = error_lines(qr/perstack: gave back/);
    is(scalar @gave, 0, "$name - no slot had to be reclaimed")
        or diag(join "\n", @gave);

    is(scalar creates_since($t0), 2,
       "$name - two containers in all: none for the refused request");
}


# ---- the slot is free when the client hears the end ----------------------------

sub check_free_at_end {
    my ($block) = @_;
    my $name = $block->name;

    # max=1: each run's closing event must find its slot given back, so
    # that the same client's next request, at once, in whichever worker,
    # gets in
    for my $i (1 .. 4) {
        run_ok("$name (run $i)", "/one?expert=demo&query=run+$i");
    }
}

run_tests();

__DATA__

=== TEST 1: perstack_limit without zone=
--- http_config
    perstack_limit_zone zone=a:64k;
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_limit max=2 queue=1;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_limit" directive needs "zone=" and "max="



=== TEST 2: perstack_limit without max=
--- http_config
    perstack_limit_zone zone=a:64k;
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_limit zone=a queue=1;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_limit" directive needs "zone=" and "max="



=== TEST 3: perstack_limit with per_key and no key
--- http_config
    perstack_limit_zone zone=a:64k;
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_limit zone=a max=2 per_key=1;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_limit" directive needs "key=" with "per_key="



=== TEST 4: perstack_limit with an unknown parameter
--- http_config
    perstack_limit_zone zone=a:64k;
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_limit zone=a max=2 burst=1;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
invalid parameter "burst=1"



=== TEST 5: perstack_limit with max=0
--- http_config
    perstack_limit_zone zone=a:64k;
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_limit zone=a max=0;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
invalid parameter "max=0"



=== TEST 6: perstack_limit_zone smaller than 8 pages
--- http_config
    perstack_limit_zone zone=a:8k;
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_limit zone=a max=2;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
zone "zone=a:8k" is too small



=== TEST 7: perstack_limit_zone without a size
--- http_config
    perstack_limit_zone zone=a;
--- config
    location = /static {
        return 200;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
invalid zone "zone=a": expected "zone=name:size"



=== TEST 8: perstack_limit naming a zone that is not declared
--- http_config
    perstack_limit_zone zone=a:64k;
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_limit zone=nosuch max=2;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
zero size shared memory zone "nosuch"



=== TEST 9: perstack_limit naming another module's zone
--- http_config
    limit_req_zone $binary_remote_addr zone=a:64k rate=1r/s;
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_limit zone=a max=2;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
the shared memory zone "a" is already declared for a different use



=== TEST 10: the same perstack_limit_zone twice
--- http_config
    perstack_limit_zone zone=a:64k;
    perstack_limit_zone zone=a:64k;
--- config
    location = /static {
        return 200;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
duplicate zone "a"



=== TEST 11: two perstack_limit in one location
--- http_config
    perstack_limit_zone zone=a:64k;
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_limit zone=a max=2;
        perstack_limit zone=a max=3;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_limit" directive is duplicate



=== TEST 12: max=2: of three runs at once two stream, one gets 429 and no container
--- check: check_max
--- timeout: 60



=== TEST 13: per_key=1 across two workers: the same user is refused on both, another gets in
--- check: check_per_key
--- timeout: 60



=== TEST 14: the slot comes back when the client goes away mid-stream
--- check: check_back_after_abort
--- timeout: 60



=== TEST 15: the slot comes back when the client goes away before the response
--- check: check_back_after_early_abort
--- timeout: 60



=== TEST 16: the slot comes back after a timeout
--- check: check_back_after_timeout
--- timeout: 60



=== TEST 17: the slot comes back after a failing run
--- check: check_back_after_failure
--- timeout: 60



=== TEST 18: the slot comes back when the image is missing (502 after the slot was taken)
--- check: check_back_after_missing_image
--- timeout: 60



=== TEST 19: queue: the queued request runs once the slot is free; one over the queue gets 429 at once
--- check: check_queue
--- timeout: 60



=== TEST 20: queue_timeout: a queued request gets 429 when it passes, and its place is free again
--- check: check_queue_timeout
--- timeout: 60



=== TEST 21: a queued client that goes away gives its place back
--- check: check_queue_leave
--- timeout: 60



=== TEST 22: a worker killed mid-run: the new worker gives its slot back
--- nginx_workers: 1
--- check: check_killed_worker
--- timeout: 60
--- no_error_log
[crit]
[emerg]



=== TEST 22b: a killed worker's pid given to the worker in its place: its slot comes back all the same
--- nginx_workers: 1
--- check: check_killed_pid_reused
--- timeout: 120
--- no_error_log
[crit]
[emerg]



=== TEST 23: a reload mid-run: the count lives on, and the slot comes back
--- nginx_workers: 1
--- check: check_reload
--- timeout: 60



=== TEST 24: the slot is given back before the closing event: back-to-back runs get in
--- check: check_free_at_end
--- timeout: 60



=== TEST 25: first come, first served across two workers: let in in the order queued
--- check: check_fifo_order
--- timeout: 180



=== TEST 26: a request that comes as the slot is freed does not take it from the one queued
--- check: check_fifo_no_overtake
--- timeout: 120
