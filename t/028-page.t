# The browser page (conf-examples/page/, README "The browser page") in a
# real browser: headless Chromium (t/browser/page.mjs: playwright-core,
# Debian's /usr/bin/chromium) does what a user does, and the test checks
# what the page showed, what the browser asked, what nginx logged and
# which containers the Docker Engine made.
#
# The nginx under test serves the page's real files with demo.conf's own
# two locations, "location /page/" and "location = /page/agent", cut out
# of conf-examples/demo.conf and changed only by the rewrites that
# scripts/demo.sh makes (the repository's directory, the workspace root)
# and the image the suite runs; an access log adds which execution each
# request ran or followed, and how it ended for that request.
#
#   TEST 1: a run of "demo": the streamed text, the tool call, the result
#           and the end (completed) appear; one request, one container.
#   TEST 2: "interactive": the run pauses, the page shows the pending
#           askUser call and its question; the test answers it, the job
#           continues (jobId and answer) and completes with the answer in
#           its text.  The screenshot docs/page.png is taken here, at the
#           end (the README shows it): commit it when the page changes.
#   TEST 3: "slow" for 300 s, cancelled with the page's button: DELETE,
#           the end says cancelled, and the container is gone.
#   TEST 4: "slow" for 6 s, the page reloaded after two of its events: the
#           reloaded page opens the same execution from its record
#           (?execution=ID&after=0), shows each of its events once, in
#           order, and its end (completed); one container was created,
#           the browser made no second run, and the access log has the
#           run (detached by the reload) and the resume (completed).
#
# Every wait is for something on the page, never a sleep.  Skipped (with
# the reason) only when /usr/bin/chromium is missing outside CI; in CI
# (CI set) it runs, and fails if the browser is missing.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;

our ($Chromium, $InCI);

BEGIN {
    $Chromium = '/usr/bin/chromium';
    $InCI = ($ENV{CI} // '') !~ /\A(?:|0|false|no)\z/i;

    if (!-x $Chromium && !$InCI) {
        Test::More::plan(skip_all => "$Chromium is not installed (Debian's "
                         . "chromium: scripts/setup.sh installs it)");
    }
}

use Perstack;
use IO::Select ();
use Time::HiRes ();

# the page's executions outlive a reload: the locations' own
# perstack_detach_timeout, not the suite's 0
$Perstack::Detach = 1;

our $Root = "$FindBin::Bin/..";
our $BrowserDir = "$FindBin::Bin/browser";
our $Driver = "$BrowserDir/page.mjs";
our $Screenshot = $ENV{TEST_PAGE_SCREENSHOT} // "$Root/docs/page.png";


# ---- the page's locations, from demo.conf --------------------------------

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!\n";
    local $/;
    return scalar <$fh>;
}

# A location block of demo.conf, whole: from its comment lines to its
# closing brace (at the indentation of "location").
sub demo_location {
    my ($text, $head) = @_;
    $text =~ /^((?:[ ]*\#[^\n]*\n)*([ ]*)\Q$head\E \{\n.*?\n\2\}\n)/ms
        or die "conf-examples/demo.conf has no \"$head\" block\n";
    return $1;
}

our $WorkspaceRoot = make_dir('page-workspaces');
mkdir "$WorkspaceRoot/workspaces" or die "mkdir: $!\n";
chown 65534, 65534, "$WorkspaceRoot/workspaces" or die "chown: $!\n";
chmod 0700, "$WorkspaceRoot/workspaces";

our $PageConfig;
{
    my $demo = slurp("$Root/conf-examples/demo.conf");
    my $text = demo_location($demo, 'location /page/')
               . demo_location($demo, 'location = /page/agent');

    # as scripts/demo.sh writes them, each exactly as often as said
    # (@PERSTACK_ROOT@: the alias, and the comment that says so)
    for my $rw (['@PERSTACK_ROOT@', $Root, 2],
                ['@PERSTACK_PREFIX@', $WorkspaceRoot, 1],
                ['perstack-demo:latest', '$TEST_NGINX_PERSTACK_IMAGE', 1])
    {
        my ($from, $to, $count) = @$rw;
        my $n = () = $text =~ /\Q$from\E/g;
        die "demo.conf's page locations have \"$from\" ${n}x, "
            . "not ${count}x\n" unless $n == $count;
        $text =~ s/\Q$from\E/$to/g;
    }

    $PageConfig = $text;
}

my $http_config = <<'_EOC_';
    log_format page escape=json
        '{"method":"$request_method","uri":"$request_uri","status":"$status",'
        '"execution":"$perstack_execution","outcome":"$perstack_outcome",'
        '"last_event_id":"$http_last_event_id",'
        '"msec":"$msec","request_time":"$request_time"}';
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('http_config', $http_config)
        unless defined $block->http_config;
    $block->set_value('config', "    access_log logs/page.log page;\n"
                                . $PageConfig)
        unless defined $block->config;

    # what every block asks first: the page itself
    if (!defined $block->request) {
        $block->set_value('request', "GET /page/\n");
        $block->set_value('response_body_like',
                          qr{<script src="app\.js" defer></script>});
    }
});


# ---- helpers ---------------------------------------------------------------

# Runs the driver; returns its JSON document, or undef (after a failed
# test) when it failed.
sub drive {
    my ($name, @args) = @_;

    Test::More::ok(-x $Chromium, "$name - $Chromium is installed "
                   . "(scripts/setup.sh)")
        or return undef;
    Test::More::ok(-d "$BrowserDir/node_modules/playwright-core",
                   "$name - playwright-core is installed in t/browser "
                   . "(scripts/setup.sh)")
        or return undef;

    my $limit = 45;
    my $port = $Test::Nginx::Util::ServerPortForClient
               || $Test::Nginx::Util::ServerPort;
    my @cmd = ('timeout', '-k', '5', $limit + 20, 'node', $Driver,
               '--page', "http://127.0.0.1:$port/page/",
               '--time-limit', $limit, @args);

    open my $fh, '-|', @cmd or die "cannot run node: $!\n";
    my $out = do { local $/; <$fh> } // '';
    close $fh;

    Test::More::is($?, 0, "$name - the driver ran (exit 0)")
        or Test::More::diag("driver: @cmd");

    my $r = eval { json_decode($out) };

    Test::More::ok(ref $r eq 'HASH' && ref $r->{after} eq 'HASH',
                   "$name - the driver printed its JSON document")
        or do {
            Test::More::diag("output: " . printable($out) . " $@");
            return undef;
        };

    Test::More::is($r->{page}{status}, 200, "$name - the page loaded");
    Test::More::is_deeply($r->{pageErrors}, [], "$name - no error in the page");

    return $r;
}

# The master's pid: the module labels each container with it.
sub master_pid {
    my ($m) = Perstack::nginx_pids();
    return $m;
}

# Docker's create events, as they come, of this nginx's containers: a
# watch (curl on the Engine API's /events, which streams) started before
# the browser runs.
sub watch_creates {
    my $filters = json_encode({ type => ['container'], event => ['create'],
                                label => ['io.perstack.master='
                                          . master_pid()] });
    my $pid = open my $fh, '-|', 'curl', '-sSN', '--unix-socket',
                   $Perstack::DockerSock, '-G',
                   '--data-urlencode', "filters=$filters",
                   '--data-urlencode',
                   'since=' . PerstackFlow::docker_time(Time::HiRes::time()),
                   'http://localhost/events'
        or die "cannot run curl: $!\n";

    return { pid => $pid, fh => $fh };
}

# The events the watch got by now; then the watch is stopped.
sub watched_creates {
    my ($w) = @_;
    my $sel = IO::Select->new($w->{fh});
    my $buf = '';

    while ($sel->can_read(0.2)) {
        my $n = sysread $w->{fh}, my $b, 65536;
        last unless $n;
        $buf .= $b;
    }

    kill 'TERM', $w->{pid};
    close $w->{fh};

    return map { json_decode($_) } grep { /\S/ } split /\n/, $buf;
}

# The access log's lines for the agent, in the order the requests started.
sub agent_log {
    open my $fh, '<', "$Test::Nginx::Util::ServRoot/logs/page.log"
        or return ();
    my @l;

    while (my $line = <$fh>) {
        next unless $line =~ /\S/;
        my $e = json_decode($line);
        next unless $e->{uri} =~ m{\A/page/agent(?:\?|\z)};
        $e->{start} = $e->{msec} - $e->{request_time};
        push @l, $e;
    }

    return sort { $a->{start} <=> $b->{start} } @l;
}

# Waits (bounded) for $n agent lines in the access log: a request's line
# is written when it ends, a moment after the browser saw its end.
sub wait_agent_log {
    my ($n) = @_;
    my @l;
    poll(10, sub { @l = agent_log(); @l >= $n });
    return @l;
}

# The turn's events: positions 1..N, each once and in order, the first
# perstack.execution, the last perstack.end; N is what the end counts.
sub check_events {
    my ($name, $turn) = @_;
    my @ev = @{ $turn->{events} || [] };
    my @pos = map { $_->{position} // 0 } @ev;

    Test::More::is_deeply(\@pos, [ 1 .. scalar @ev ],
                          "$name - the page shows positions 1..N, each once, "
                          . "in order")
        or Test::More::diag("positions: @pos");
    Test::More::is($ev[0] && $ev[0]{type}, 'perstack.execution',
                   "$name - first perstack.execution");
    Test::More::is($ev[-1] && $ev[-1]{type}, 'perstack.end',
                   "$name - last perstack.end");

    my ($n) = ($turn->{end} // '') =~ /(\d+) events/;
    Test::More::is($n, scalar @ev, "$name - the end counts the events the "
                   . "page shows");
}


# ---- TEST 1: a run ---------------------------------------------------------

sub page_run {
    my ($block) = @_;
    my $name = $block->name;

    my $w = watch_creates();
    my $r = drive($name, '--scenario', 'run', '--expert', 'demo',
                  '--query', 'hello from the browser page');
    my @created = watched_creates($w);
    return unless $r;

    my @turns = @{ $r->{after}{turns} };
    Test::More::is(scalar @turns, 1, "$name - one execution on the page");
    my $t = $turns[0] || {};

    Test::More::is($t->{outcome}, 'completed', "$name - outcome completed");
    Test::More::is($t->{badge}, 'completed', "$name - its badge");
    Test::More::like($t->{end} // '', qr/\Acompleted\s*exit code 0 \x{b7} /,
                     "$name - the end: completed, exit code 0");
    Test::More::is($t->{text}, 'hello from the browser page ',
                   "$name - the streamed text, delta by delta");
    Test::More::is($t->{result}, 'The demo expert received your query: '
                   . '"hello from the browser page".',
                   "$name - the final result (completeRun)");
    Test::More::is_deeply($t->{tools},
                          [ { name => 'attemptCompletion', state => 'done' } ],
                          "$name - the tool call, done");
    Test::More::like($t->{execution} // '', qr/\A[0-9a-f]{32}\z/,
                     "$name - the execution's id");
    Test::More::like($t->{job} // '', qr/\A[0-9a-z]{24}\z/,
                     "$name - the job's id");
    check_events($name, $t);

    Test::More::is($r->{after}{storage}, undef,
                   "$name - nothing kept for a reload after the end");
    Test::More::ok(!$r->{after}{runDisabled}, "$name - Run is enabled again");

    my @req = @{ $r->{requests} };
    Test::More::is_deeply(
        [ map { [ $_->{method}, $_->{url} =~ s{\A.*/page/}{}r, $_->{status} ] }
          @req ],
        [ [ 'GET', 'agent?expert=demo&query=hello+from+the+browser+page',
            200 ] ],
        "$name - the browser asked once, arguments form-encoded; 200")
        or Test::More::diag(json_encode(\@req));

    Test::More::is(scalar @created, 1, "$name - one container");
    Test::More::is($created[0] && $created[0]{Actor}{Attributes}
                                             {'io.perstack.execution'},
                   $t->{execution}, "$name - of the execution shown");
}


# ---- TEST 2: pause, answer, continue ---------------------------------------

sub page_answer {
    my ($block) = @_;
    my $name = $block->name;
    my $answer = 'yes, ship it';

    unlink $Screenshot;

    my $w = watch_creates();
    my $r = drive($name, '--scenario', 'answer', '--expert', 'interactive',
                  '--query', 'deploy v2 to production', '--answer', $answer,
                  '--screenshot', $Screenshot);
    my @created = watched_creates($w);
    return unless $r;

    # -- the pause, as the page showed it before the answer
    my $p = ($r->{before}{turns} || [])->[0] || {};

    Test::More::is($p->{outcome}, 'paused', "$name - the run paused");
    Test::More::like($p->{end} // '', qr/\Apaused\s*exit code 0 \x{b7} /,
                     "$name - its end: paused");
    Test::More::is($p->{question},
                   'Before I go ahead with "deploy v2 to production": '
                   . 'do you confirm?',
                   "$name - the pending call's question");
    Test::More::is_deeply($p->{tools},
                          [ { name => 'askUser', state => 'waiting' } ],
                          "$name - the tool call waits for the user");
    Test::More::is($r->{before}{storage} && $r->{before}{storage}{outcome},
                   'paused', "$name - the paused job is kept for a reload");

    # -- after the answer
    my @turns = @{ $r->{after}{turns} };
    Test::More::is(scalar @turns, 2, "$name - two executions on the page");
    my ($t1, $t2) = map { $_ || {} } @turns[0, 1];

    Test::More::ok($t1->{answered}, "$name - the question shows answered");
    Test::More::is($t2->{kind}, 'answer', "$name - the second continues");
    Test::More::is($t2->{prompt}, $answer, "$name - with the answer");
    Test::More::is($t2->{job}, $t1->{job}, "$name - the same job");
    Test::More::isnt($t2->{execution}, $t1->{execution},
                     "$name - a new execution");
    Test::More::is($t2->{outcome}, 'completed', "$name - it completed");
    Test::More::is($t2->{text}, "Thanks, you answered: \"$answer\". "
                   . 'The demo job is done. ',
                   "$name - its text has the answer");
    Test::More::is_deeply([ map { "$_->{name}:$_->{state}" }
                            @{ $t2->{tools} } ],
                          [ 'askUser:answered', 'attemptCompletion:done' ],
                          "$name - the answered call, then the completion");
    check_events("$name (the continuation)", $t2);
    Test::More::is($r->{after}{storage}, undef,
                   "$name - nothing kept after the end");

    my @req = map { [ $_->{method}, $_->{url} =~ s{\A.*/page/}{}r,
                      $_->{status} ] } @{ $r->{requests} };
    Test::More::is_deeply(\@req,
        [ [ 'GET', 'agent?expert=interactive&query=deploy+v2+to+production',
            200 ],
          [ 'GET', "agent?expert=interactive&jobId=$t1->{job}"
                   . '&answer=yes%2C+ship+it', 200 ] ],
        "$name - a run, then the answer to its job")
        or Test::More::diag(json_encode($r->{requests}));

    Test::More::is(scalar @created, 2, "$name - two containers");

    # -- the README's screenshot
    my $png = eval { slurp($Screenshot) } // '';
    Test::More::ok(length $png > 10000
                   && substr($png, 0, 8) eq "\x89PNG\r\n\x1a\n",
                   "$name - the screenshot $Screenshot")
        or Test::More::diag(length($png) . " bytes");
}


# ---- TEST 3: cancel ----------------------------------------------------------

sub page_cancel {
    my ($block) = @_;
    my $name = $block->name;

    my $w = watch_creates();
    my $r = drive($name, '--scenario', 'cancel', '--expert', 'slow',
                  '--query', '300', '--reload-after', '2');
    my @created = watched_creates($w);
    return unless $r;

    my $b = ($r->{before}{turns} || [])->[0] || {};
    Test::More::is($b->{state}, 'running', "$name - it ran");
    Test::More::ok($b->{cancel} && !$b->{cancel}{hidden}
                   && !$b->{cancel}{disabled},
                   "$name - with its Cancel button");

    my $t = $r->{after}{turns}[0] || {};
    Test::More::is($t->{outcome}, 'cancelled', "$name - outcome cancelled");
    Test::More::is($t->{badge}, 'cancelled', "$name - its badge");
    Test::More::like($t->{end} // '', qr/\Acancelled\s*exit code \d+ \x{b7} /,
                     "$name - the end");
    Test::More::ok($t->{cancel}{hidden}, "$name - no Cancel button after");
    check_events($name, $t);

    my @del = grep { $_->{method} eq 'DELETE' } @{ $r->{requests} };
    Test::More::is_deeply(
        [ map { [ $_->{url} =~ s{\A.*/page/}{}r, $_->{status} ] } @del ],
        [ [ "agent?execution=$t->{execution}", 202 ] ],
        "$name - one DELETE of the execution: 202")
        or Test::More::diag(json_encode($r->{requests}));

    my $ms = ($r->{timings}{ended} // 1e9) - ($r->{timings}{cancel} // 0);
    Test::More::cmp_ok($ms, '<', 10000, "$name - the end came within 10 s "
                       . "of the click ($ms ms)");

    Test::More::is(scalar @created, 1, "$name - one container");
    my $id = $created[0] ? $created[0]{Actor}{ID} : '';
    Test::More::is(substr($id, 0, 12), $t->{container},
                   "$name - the one the page named");
    Test::More::ok(defined wait_container_gone($id, 10),
                   "$name - the container is gone");
}


# ---- TEST 4: a reload mid-run ------------------------------------------------

sub page_reload {
    my ($block) = @_;
    my $name = $block->name;

    my $w = watch_creates();
    my $r = drive($name, '--scenario', 'reload', '--expert', 'slow',
                  '--query', '6', '--reload-after', '2');
    my @created = watched_creates($w);
    return unless $r;

    my $b = ($r->{before}{turns} || [])->[0] || {};
    my $xid = $b->{execution} // '';

    Test::More::is($b->{state}, 'running', "$name - it ran before the reload");
    Test::More::is($r->{before}{storage} && $r->{before}{storage}{execution},
                   $xid, "$name - the page kept its execution");

    my @turns = @{ $r->{after}{turns} };
    Test::More::is(scalar @turns, 1, "$name - one execution after the reload");
    my $t = $turns[0] || {};

    Test::More::ok($t->{resumed}, "$name - resumed from the record");
    Test::More::is($t->{execution}, $xid, "$name - the same execution");
    Test::More::is($t->{outcome}, 'completed', "$name - it completed");
    Test::More::is($t->{reasoning}, join('', map { "thinking, second $_ of "
                                                   . "6... " } 1 .. 6),
                   "$name - every line of its thinking, once");
    Test::More::is($t->{result}, 'Done after thinking for 6 seconds.',
                   "$name - its result");
    check_events($name, $t);
    Test::More::cmp_ok(scalar @{ $t->{events} }, '>',
                       scalar @{ $b->{events} },
                       "$name - more events than before the reload");
    Test::More::is($r->{after}{storage}, undef,
                   "$name - nothing kept after the end");

    # the browser: the run, then the resume, never a second run
    my @req = map { [ $_->{method}, $_->{url} =~ s{\A.*/page/}{}r,
                      $_->{status} ] } @{ $r->{requests} };
    Test::More::is_deeply(\@req,
        [ [ 'GET', 'agent?expert=slow&query=6', 200 ],
          [ 'GET', "agent?execution=$xid&after=0", 200 ] ],
        "$name - the browser: the run, then its resume")
        or Test::More::diag(json_encode($r->{requests}));

    # nginx: the same two requests, both of the one execution; the run's
    # client went with the reload (detached)
    my @l = wait_agent_log(2);
    Test::More::is_deeply(
        [ map { [ $_->{uri}, $_->{status}, $_->{execution},
                  $_->{uri} =~ /expert=/ ? $_->{outcome} : '' ] } @l ],
        [ [ '/page/agent?expert=slow&query=6', 200, $xid, 'detached' ],
          [ "/page/agent?execution=$xid&after=0", 200, $xid, '' ] ],
        "$name - the access log: the run (detached), then its resume")
        or Test::More::diag(json_encode(\@l));

    Test::More::is(scalar @created, 1, "$name - one container was created")
        or Test::More::diag(json_encode([ map { $_->{Actor} } @created ]));
    Test::More::is($created[0] && $created[0]{Actor}{Attributes}
                                             {'io.perstack.execution'},
                   $xid, "$name - for the execution");
}


run_tests();

__DATA__

=== TEST 1: a run: streamed text, tool call, result, end
--- check: page_run
--- timeout: 60



=== TEST 2: a paused job: its question, the answer, the job continues
--- check: page_answer
--- timeout: 60



=== TEST 3: cancel a running execution
--- check: page_cancel
--- timeout: 60



=== TEST 4: a reload mid-run resumes the one execution
--- check: page_reload
--- timeout: 60
