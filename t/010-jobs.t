# Jobs: every execution gets a job id (perstack.execution and perstack.end
# say which); a run that stops for the user ends "paused" with its pending
# tool calls; the job is continued, with an answer or a new query, from the
# same workspace only; the continuation passes the approval rules and the
# callback again, which learns what is being answered.  Requests that are
# refused never get a container.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;
use Perstack;
use Digest::SHA qw(sha256_hex);
use Time::HiRes ();

# every block has a root of its own
our $JobsRoot;

my $http_config = <<'_EOC_';
    map $http_x_user $user_ws {
        alice    users/alice;
        bob      users/bob;
        carol    users/carol;
        default  "";
    }
_EOC_

my $config = <<'_EOC_';
    location = /job {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace $user_ws;
        perstack_workspace_root $TEST_NGINX_JOBS_ROOT;
    }

    # the query is pinned: no text from the client reaches the agent
    location = /pinned {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace $user_ws;
        perstack_workspace_root $TEST_NGINX_JOBS_ROOT;
        perstack_query "the operator's query";
    }

    location = /nows {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    }

    location = /approved {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace $user_ws;
        perstack_workspace_root $TEST_NGINX_JOBS_ROOT;
        perstack_approve $http_x_ok;
        perstack_approval_request /approve;

        perstack_approval_set $saw_expert $upstream_http_x_saw_expert;
        perstack_approval_set $saw_qlen $upstream_http_x_saw_query_length;
        perstack_approval_set $saw_qsha $upstream_http_x_saw_query_sha256;
        perstack_approval_set $saw_job $upstream_http_x_saw_job;
        perstack_approval_set $saw_job_id $upstream_http_x_saw_job_id;
        perstack_approval_set $saw_tool $upstream_http_x_saw_tool_call;

        add_header X-Saw-Expert $saw_expert always;
        add_header X-Saw-Query-Length $saw_qlen always;
        add_header X-Saw-Query-SHA256 $saw_qsha always;
        add_header X-Saw-Job $saw_job always;
        add_header X-Saw-Job-Id $saw_job_id always;
        add_header X-Saw-Tool-Call $saw_tool always;
    }

    location = /approve {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/approve-backend;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
    }

    location = /approve-backend {
        if ($http_x_decide = deny) {
            return 403;
        }

        add_header X-Saw-Expert $http_x_perstack_expert;
        add_header X-Saw-Query-Length $http_x_perstack_query_length;
        add_header X-Saw-Query-SHA256 $http_x_perstack_query_sha256;
        add_header X-Saw-Job $http_x_perstack_job;
        add_header X-Saw-Job-Id $http_x_perstack_job_id;
        add_header X-Saw-Tool-Call "[$http_x_perstack_tool_call]";
        return 204;
    }

    location = /noop {
        return 204;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $http_config)
        unless defined $block->http_config;
    $block->set_value('config', $config) unless defined $block->config;

    $JobsRoot = make_dir('jobs-root');
    $ENV{TEST_NGINX_JOBS_ROOT} = $JobsRoot;
});

refused_expert_checks();


# ---- steps -------------------------------------------------------------------

# A new interactive run that stops for the user.  Returns its check_run
# result and the pending tool call.
sub pause_job {
    my ($name, $path, $query, @headers) = @_;

    my $c = run_post($path, { expert => 'interactive', query => $query },
                     @headers);
    my $r = check_run($name, $c, expert => 'interactive', continued => 0,
                      outcome => 'paused', exit_code => 0);

    is_deeply($r->{types}, [qw(initializeRuntime skillConnected startRun
                               startGeneration callTools callInteractiveTool
                               stopRunByInteractiveTool skillDisconnected)],
              "$name - the interactive run's events");

    my $stop = ($r->{by_type}{stopRunByInteractiveTool} || [])->[0] || {};
    my $call = ($r->{by_type}{callInteractiveTool} || [])->[0] || {};
    my $pending = $r->{end}{pending_tool_calls} || [];

    is_deeply($pending, $stop->{checkpoint}{pendingToolCalls},
              "$name - perstack.end.pending_tool_calls is the checkpoint's");
    is(scalar @$pending, 1, "$name - one pending tool call");

    my $p = $pending->[0] || {};
    like($p->{id} // '', qr/\A[0-9a-z]{24}\z/, "$name - its id");
    is($p->{id}, $call->{toolCall}{id},
       "$name - it is the call callInteractiveTool made");
    is($p->{skillName}, 'user-input', "$name - skillName");
    is($p->{toolName}, 'askUser', "$name - toolName");

    return ($r, $p, $c);
}

# The answer to a paused job: resumes from its checkpoint and completes.
sub answered {
    my ($name, $c, $job, $pending, $answer) = @_;

    my $r = check_run($name, $c, expert => 'interactive', job => $job,
                      continued => 1, outcome => 'completed', exit_code => 0);

    # as the real runtime resumes: the answer finishes the tool call, and
    # the next step starts
    my @t = @{ $r->{types} };
    is_deeply([@t[0 .. 5]], [qw(initializeRuntime skillConnected startRun
                                finishAllToolCalls continueToNextStep
                                startGeneration)],
              "$name - resumed: the answer finishes the tool call first");
    is_deeply([@t[-2, -1]], [qw(completeRun skillDisconnected)],
              "$name - and the run completes");

    my $fin = ($r->{by_type}{finishAllToolCalls} || [])->[0] || {};
    my $part = ((($fin->{newMessages} || [])->[0] || {})->{contents}
                || [])->[0] || {};
    is($part->{toolCallId}, $pending->{id},
       "$name - finishAllToolCalls answers the pending call's id");
    is($part->{toolName}, 'askUser', "$name - its toolName");

    my $done = ($r->{by_type}{completeRun} || [])->[0] || {};
    is($done->{text}, "Thanks, you answered: \"$answer\". The demo job is "
       . "done.", "$name - completeRun carries the answer");

    return $r;
}

sub job_dir {
    my ($user, $job) = @_;
    return "$JobsRoot/users%2F$user/workspace/perstack/jobs/$job";
}


# ---- flows -------------------------------------------------------------------

sub check_new_jobs {
    my ($block) = @_;
    my $name = $block->name;

    my $a = check_run("$name (1)", run_get('/nows?expert=demo&query=one'),
                      expert => 'demo', continued => 0,
                      outcome => 'completed', exit_code => 0);
    my $b = check_run("$name (2)",
                      run_post('/nows', { expert => 'demo', query => 'two' }),
                      expert => 'demo', continued => 0,
                      outcome => 'completed', exit_code => 0);
    my $w = check_run("$name (workspace)",
                      run_get('/job?expert=demo&query=three',
                              'X-User' => 'carol'),
                      expert => 'demo', continued => 0,
                      outcome => 'completed', exit_code => 0);

    my %seen = map { $_->{job} => 1 } $a, $b, $w;
    is(scalar keys %seen, 3, "$name - every run has a job of its own");

    ok(-d job_dir('carol', $w->{job}) . '/checkpoints',
       "$name - the runtime kept the job under that id in the workspace");
}

sub check_pause_answer {
    my ($block) = @_;
    my $name = $block->name;

    my ($r, $p) = pause_job("$name (ask)", '/job', 'deploy the thing',
                            'X-User' => 'alice');
    my $job = $r->{job};

    my @paused = glob job_dir('alice', $job) . '/checkpoints/*.json';
    is(scalar @paused, 1, "$name - the paused job is kept in alice's workspace");

    my $c = run_post('/job', { expert => 'interactive', jobId => $job,
                               answer => 'yes, go' },
                     'X-User' => 'alice');
    answered("$name (answer)", $c, $job, $p, 'yes, go');

    my @cp = glob job_dir('alice', $job) . '/checkpoints/*.json';
    is(scalar @cp, 3, "$name - three checkpoints: the pause, the answered "
       . "step and the end");

    # nothing is pending any more: answering again is refused
    my $t0 = Time::HiRes::time();
    $c = run_post('/job', { expert => 'interactive', jobId => $job,
                            answer => 'again' },
                  'X-User' => 'alice');
    check_error("$name (again)", $c, 409, 'job_not_paused', jobId => $job,
                outcome => 'completed');
    no_container_for("$name (again)", $t0, "io.perstack.job=$job");
}

sub check_answer_get {
    my ($block) = @_;
    my $name = $block->name;

    my ($r, $p) = pause_job("$name (ask)", '/job', 'by GET',
                            'X-User' => 'bob');

    my $c = run_get("/job?expert=interactive&jobId=$r->{job}"
                    . "&answer=ok%2C+fine", 'X-User' => 'bob');
    answered("$name (answer)", $c, $r->{job}, $p, 'ok, fine');
}

sub check_continue_query {
    my ($block) = @_;
    my $name = $block->name;

    my $first = check_run("$name (first)",
                          run_post('/job', { expert => 'demo',
                                             query => 'first part' },
                                   'X-User' => 'carol'),
                          expert => 'demo', continued => 0,
                          outcome => 'completed', exit_code => 0);
    my $job = $first->{job};

    my $c = run_post('/job', { expert => 'demo', jobId => $job,
                               query => 'second part' },
                     'X-User' => 'carol');
    my $r = check_run("$name (continue)", $c, expert => 'demo', job => $job,
                      continued => 1, outcome => 'completed', exit_code => 0);

    my $done = ($r->{by_type}{completeRun} || [])->[0] || {};
    is($done->{text}, "Continued job $job with: \"second part\".",
       "$name - the runtime continued that job");
    ok(!$r->{by_type}{finishAllToolCalls}, "$name - nothing was answered");
}

sub check_other_user {
    my ($block) = @_;
    my $name = $block->name;

    my ($r, $p) = pause_job("$name (alice asks)", '/job', 'mine',
                            'X-User' => 'alice');
    my $job = $r->{job};
    my $t0 = Time::HiRes::time();

    my $c = run_post('/job', { expert => 'interactive', jobId => $job,
                               answer => 'hijacked' },
                     'X-User' => 'bob');
    check_error("$name (bob answers)", $c, 404, 'job_not_found',
                jobId => $job);

    $c = run_get("/job?expert=interactive&jobId=$job&query=mine+now",
                 'X-User' => 'bob');
    check_error("$name (bob continues)", $c, 404, 'job_not_found',
                jobId => $job);

    $c = run_post('/job', { expert => 'interactive', jobId => $job,
                            answer => 'hijacked' });
    check_error("$name (no user)", $c, 400, 'bad_workspace');

    no_container_for($name, $t0, "io.perstack.job=$job");
    ok(!-e "$JobsRoot/users%2Fbob/workspace/perstack",
       "$name - nothing was made in bob's workspace");
    ok(-d "$JobsRoot/users%2Fbob/workspace", "$name - (which exists)");
    ok(!-e "$JobsRoot/users%2Fbob/jobs/$job.json",
       "$name - and bob's jobs have no record of it");

    # the job still waits for alice
    $c = run_post('/job', { expert => 'interactive', jobId => $job,
                            answer => 'it is mine' },
                  'X-User' => 'alice');
    answered("$name (alice answers)", $c, $job, $p, 'it is mine');
}

# A job is continued only from the workspace whose record has it: a job
# directory, or the jobs' directory, that is a symbolic link into another
# workspace is not a job there.
sub check_job_links {
    my ($block) = @_;
    my $name = $block->name;

    my ($r) = pause_job("$name (alice asks)", '/job', 'linked',
                        'X-User' => 'alice');
    my $job = $r->{job};

    # bob's workspace, with links to alice's job and jobs
    my $bob = "$JobsRoot/users%2Fbob/workspace";
    check_error("$name (bob's workspace is made)",
                run_post('/job', { expert => 'demo', jobId => 'none',
                                   query => 'q' }, 'X-User' => 'bob'),
                404, 'job_not_found', jobId => 'none');

    mkdir "$bob/perstack";
    mkdir "$bob/perstack/jobs";
    symlink job_dir('alice', $job), "$bob/perstack/jobs/stolen"
        or die "symlink: $!\n";
    open my $fh, '>', "$bob/perstack/jobs/plainfile" or die "$!\n";
    close $fh;

    # carol's "perstack" is alice's
    my $carol = "$JobsRoot/users%2Fcarol";
    mkdir $carol;
    mkdir "$carol/workspace";
    chown 65534, 65534, "$carol/workspace";
    chmod 0700, "$carol/workspace";
    symlink "$JobsRoot/users%2Falice/workspace/perstack",
            "$carol/workspace/perstack"
        or die "symlink: $!\n";

    my $t0 = Time::HiRes::time();

    for my $try (['bob', 'stolen'], ['bob', 'plainfile'], ['carol', $job]) {
        my ($user, $id) = @$try;
        my $c = run_post('/job', { expert => 'interactive', jobId => $id,
                                   answer => 'hijacked' },
                         'X-User' => $user);
        my $n = "$name ($user, $id)";

        if (($c->{status} // 0) == 404) {
            check_error($n, $c, 404, 'job_not_found', jobId => $id);
        } else {
            check_error($n, $c, 400, 'bad_workspace');
        }
    }

    no_container_for($name, $t0, "io.perstack.job=$job");
    no_container_for($name, $t0, "io.perstack.job=stolen");
    no_container_for($name, $t0, "io.perstack.job=plainfile");

    my @cp = glob job_dir('alice', $job) . '/checkpoints/*.json';
    is(scalar @cp, 1, "$name - alice's job was not touched");
}

# The continuation goes through the rules and the callback again, and the
# callback learns which job and which tool call it approves.
sub check_approved_continuation {
    my ($block) = @_;
    my $name = $block->name;

    my ($r, $p, $c) = pause_job("$name (ask)", '/approved', 'approve me',
                                'X-User' => 'alice', 'X-OK' => '1');
    my $job = $r->{job};

    is($c->header('X-Saw-Job'), 'new', "$name (ask) - X-Perstack-Job: new");
    is($c->header('X-Saw-Job-Id'), $job, "$name (ask) - X-Perstack-Job-Id");
    is($c->header('X-Saw-Tool-Call'), '[]',
       "$name (ask) - no X-Perstack-Tool-Call");

    my $t0 = Time::HiRes::time();
    my $answer = "approved \x{2714}";
    my $bytes = $answer;
    utf8::encode($bytes);

    my $body = { expert => 'interactive', jobId => $job, answer => $answer };

    # the rule
    $c = run_post('/approved', $body, 'X-User' => 'alice');
    check_error("$name (no rule)", $c, 403, 'not_approved', rule => 1);

    # the callback
    $c = run_post('/approved', $body, 'X-User' => 'alice', 'X-OK' => '1',
                  'X-Decide' => 'deny');
    check_error("$name (denied)", $c, 403, 'not_approved');
    is($c->header('X-Saw-Job'), undef,
       "$name (denied) - perstack_approval_set takes nothing from a 403");

    no_container_for($name, $t0, "io.perstack.job=$job");

    # approved
    $c = run_post('/approved', $body, 'X-User' => 'alice', 'X-OK' => '1');
    answered("$name (answer)", $c, $job, $p, $answer);

    is($c->header('X-Saw-Job'), 'answer', "$name - X-Perstack-Job: answer");
    is($c->header('X-Saw-Job-Id'), $job, "$name - X-Perstack-Job-Id");
    is($c->header('X-Saw-Expert'), 'interactive', "$name - X-Perstack-Expert");
    is($c->header('X-Saw-Query-Length'), length $bytes,
       "$name - X-Perstack-Query-Length: the answer's");
    is($c->header('X-Saw-Query-SHA256'), sha256_hex($bytes),
       "$name - X-Perstack-Query-SHA256: the answer's");

    my $tc = $c->header('X-Saw-Tool-Call') // '';
    ok($tc =~ s/\A\[(.*)\]\z/$1/s, "$name - X-Perstack-Tool-Call is there");
    my $call = eval { json_decode($tc) };
    is_deeply($call, { id => $p->{id}, skillName => 'user-input',
                       toolName => 'askUser' },
              "$name - X-Perstack-Tool-Call: the pending call, as JSON")
        or diag("X-Perstack-Tool-Call: $tc");

    # a continuation with a query: nothing pending any more
    $c = run_post('/approved', { expert => 'interactive', jobId => $job,
                                 query => 'and then' },
                  'X-User' => 'alice', 'X-OK' => '1');
    check_run("$name (continue)", $c, expert => 'interactive', job => $job,
              continued => 1, outcome => 'completed', exit_code => 0);
    is($c->header('X-Saw-Job'), 'continue',
       "$name (continue) - X-Perstack-Job: continue");
    is($c->header('X-Saw-Job-Id'), $job,
       "$name (continue) - X-Perstack-Job-Id");
    is($c->header('X-Saw-Tool-Call'), '[]',
       "$name (continue) - no X-Perstack-Tool-Call: nothing is pending");
}

# The pending tool call the callback is told of is the one the module saw
# when the job paused, from its own record: checkpoints the container
# wrote since (newer, crafted, or a FIFO that would block a reader) change
# nothing.
sub check_crafted_checkpoint {
    my ($block) = @_;
    my $name = $block->name;

    my ($r, $p) = pause_job("$name (ask)", '/approved', 'crafted',
                            'X-User' => 'alice', 'X-OK' => '1');
    my $job = $r->{job};
    my $dir = job_dir('alice', $job) . '/checkpoints';

    my $crafted = { id => "x\"y\r\nInjected: 1 \x{e9}",
                    skillName => "s\\k\t", toolName => '<t>' };

    open my $fh, '>', "$dir/crafted.json" or die "$dir/crafted.json: $!\n";
    print $fh json_encode({ id => 'crafted', pendingToolCalls => [$crafted,
                            { id => 'second', skillName => 'a',
                              toolName => 'b' }] });
    close $fh;

    require POSIX;
    POSIX::mkfifo("$dir/fifo.json", 0600) or die "mkfifo: $!\n";

    my $now = time;
    utime $now + 10, $now + 10, "$dir/crafted.json";
    utime $now + 20, $now + 20, "$dir/fifo.json";

    my $c = run_post('/approved', { expert => 'interactive', jobId => $job,
                                    answer => 'fine' },
                     'X-User' => 'alice', 'X-OK' => '1');

    # the runtime answers the call its last checkpoint names
    answered("$name (answer)", $c, $job, $p, 'fine');

    my $tc = $c->header('X-Saw-Tool-Call') // '';
    ok($tc =~ s/\A\[(.*)\]\z/$1/s, "$name - X-Perstack-Tool-Call is there");
    is_deeply(eval { json_decode($tc) },
              { map { $_ => $p->{$_} } qw(id skillName toolName) },
              "$name - the call perstack.end reported, not the newest "
              . "checkpoint's")
        or diag("X-Perstack-Tool-Call: $tc");
}

# Where perstack_query pins the query, an answer is refused: it would be
# text of the client's reaching the agent.  The job stays paused for a
# location that takes answers.
sub check_pinned_answer {
    my ($block) = @_;
    my $name = $block->name;

    my ($r, $p) = pause_job("$name (ask)", '/job', 'pinned',
                            'X-User' => 'alice');
    my $job = $r->{job};
    my $t0 = Time::HiRes::time();

    for my $c (run_post('/pinned', { expert => 'interactive', jobId => $job,
                                     answer => 'anything' },
                        'X-User' => 'alice'),
               run_get("/pinned?expert=interactive&jobId=$job&answer=x",
                       'X-User' => 'alice')) {
        check_error("$name (answer)", $c, 403, 'answer_not_allowed');
    }

    no_container_for($name, $t0, "io.perstack.job=$job");

    my $c = run_post('/job', { expert => 'interactive', jobId => $job,
                               answer => 'here' },
                     'X-User' => 'alice');
    answered("$name (answered where answers are taken)", $c, $job, $p,
             'here');
}

# Before the approval allowed a request, nothing is made and no answer
# depends on a job: a denied continuation of an unknown job, and a denied
# new job, leave the root empty and get the callback's 403.
sub check_nothing_before_approval {
    my ($block) = @_;
    my $name = $block->name;

    my $t0 = Time::HiRes::time();
    my $expert = unique_name('denied');

    for my $body ({ expert => $expert, jobId => 'nope', answer => 'yes' },
                  { expert => $expert, query => 'new' }) {
        my $c = run_post('/approved', $body, 'X-User' => 'alice',
                         'X-OK' => '1', 'X-Decide' => 'deny');
        my $n = "$name (" . ($body->{jobId} ? 'continue' : 'new') . ')';

        check_error($n, $c, 403, 'not_approved');

        opendir my $dh, $JobsRoot or die "$JobsRoot: $!\n";
        my @made = grep { !/\A\.\.?\z/ } readdir $dh;
        closedir $dh;
        is_deeply(\@made, [], "$n - nothing was made in the root");
    }

    no_container_for($name, $t0, $expert);
}

# The record of a job, as the module wrote it.
sub record_of {
    my ($user, $job) = @_;
    my $file = "$JobsRoot/users%2F$user/jobs/$job.json";
    open my $fh, '<', $file or return undef;
    local $/;
    my $rec = eval { json_decode(<$fh>) };
    close $fh;
    return $rec;
}

# A query to a job that waits for an answer is refused before a container
# starts (the runtime would fail: "Interactive tool call result is
# undefined"), with the call to answer; the job still takes its answer.
sub check_query_to_paused {
    my ($block) = @_;
    my $name = $block->name;

    my ($r, $p) = pause_job("$name (ask)", '/job', 'wait for me',
                            'X-User' => 'alice');
    my $job = $r->{job};
    my $t0 = Time::HiRes::time();

    for my $c (run_post('/job', { expert => 'interactive', jobId => $job,
                                  query => 'something else' },
                        'X-User' => 'alice'),
               run_get("/job?expert=interactive&jobId=$job&query=x",
                       'X-User' => 'alice')) {
        check_error("$name (query)", $c, 409, 'job_awaits_answer',
                    jobId => $job,
                    pending_tool_call => { map { $_ => $p->{$_} }
                                           qw(id skillName toolName) });
    }

    no_container_for($name, $t0, "io.perstack.job=$job");

    my $c = run_post('/job', { expert => 'interactive', jobId => $job,
                               answer => 'still here' },
                     'X-User' => 'alice');
    answered("$name (answered)", $c, $job, $p, 'still here');
}

# Another expert than the job's is refused before a container starts (the
# runtime would fail: "Checkpoint expert key ... does not match"), by the
# module's record: the checkpoints the container wrote change nothing.
sub check_other_expert {
    my ($block) = @_;
    my $name = $block->name;

    my ($r, $p) = pause_job("$name (ask)", '/job', 'mine',
                            'X-User' => 'alice');
    my $job = $r->{job};

    for my $file (glob job_dir('alice', $job) . '/checkpoints/*.json') {
        open my $fh, '<', $file or die "$file: $!\n";
        my $text = do { local $/; <$fh> };
        close $fh;
        $text =~ s/"interactive"/"demo"/g;
        open $fh, '>', $file or die "$file: $!\n";
        print $fh $text;
        close $fh;
    }

    my $t0 = Time::HiRes::time();

    for my $body ({ expert => 'demo', jobId => $job, answer => 'yes' },
                  { expert => 'demo', jobId => $job, query => 'q' }) {
        my $c = run_post('/job', $body, 'X-User' => 'alice');
        check_error("$name (" . join(',', sort keys %$body) . ')', $c, 409,
                    'expert_mismatch', jobId => $job,
                    expert => 'interactive');
    }

    no_container_for($name, $t0, "io.perstack.job=$job");
}

# The record says how each run ended, with the runtime's own outcome; an
# answer is refused only where the runtime ended the job's last run
# without a pause, a query where it paused.
sub check_recorded_outcomes {
    my ($block) = @_;
    my $name = $block->name;

    my %job;

    for my $t (['error', 'failed'], ['maxsteps', 'max_steps'],
               ['noend', 'failed']) {
        my ($expert, $outcome) = @$t;
        my $r = check_run("$name ($expert)",
                          run_post('/job', { expert => $expert,
                                             query => 'x y' },
                                   'X-User' => 'carol'),
                          expert => $expert, continued => 0,
                          outcome => $outcome, exit_code => 0);
        $job{$expert} = $r->{job};

        my $rec = record_of('carol', $r->{job}) || {};
        is($rec->{outcome}, $outcome, "$name ($expert) - recorded $outcome");
        is($rec->{expert}, $expert, "$name ($expert) - and its expert");
        is($rec->{exit_code}, 0, "$name ($expert) - and its exit code");
    }

    my $t0 = Time::HiRes::time();
    my $c = run_post('/job', { expert => 'maxsteps', jobId => $job{maxsteps},
                               answer => 'an answer' },
                     'X-User' => 'carol');
    check_error("$name (answer to max_steps)", $c, 409, 'job_not_paused',
                jobId => $job{maxsteps}, outcome => 'max_steps');
    no_container_for($name, $t0, "io.perstack.job=$job{maxsteps}");

    # a failure may be an exception that left the job as it was, paused
    # even: the module does not refuse, the runtime decides
    $c = run_post('/job', { expert => 'error', jobId => $job{error},
                            answer => 'an answer' },
                  'X-User' => 'carol');
    is($c->{status}, 200, "$name (answer to failed) - not refused: the "
                          . "runtime decides");

    # a run stopped at its step limit goes on with a query
    $c = run_post('/job', { expert => 'maxsteps', jobId => $job{maxsteps},
                            query => 'go on' },
                  'X-User' => 'carol');
    my $r = check_run("$name (continue max_steps)", $c, expert => 'maxsteps',
                      job => $job{maxsteps}, continued => 1,
                      outcome => 'completed', exit_code => 0);
    my $done = ($r->{by_type}{completeRun} || [])->[0] || {};
    is($done->{text}, "Continued job $job{maxsteps} with: \"go on\".",
       "$name - the runtime continued that job");
}

run_tests();

__DATA__

=== TEST 1: new jobs: an id each, in perstack.execution and perstack.end
--- request
GET /noop
--- error_code: 204
--- check: check_new_jobs
--- timeout: 40



=== TEST 2: a paused job, answered (POST), resumes from its checkpoint
--- request
GET /noop
--- error_code: 204
--- check: check_pause_answer
--- timeout: 40



=== TEST 3: an answer by GET
--- request
GET /noop
--- error_code: 204
--- check: check_answer_get
--- timeout: 40



=== TEST 4: continuing a job with a new query
--- request
GET /noop
--- error_code: 204
--- check: check_continue_query
--- timeout: 40



=== TEST 5: another user's job is not found, and stays pending
--- request
GET /noop
--- error_code: 204
--- check: check_other_user
--- timeout: 40



=== TEST 6: a job reached through a symbolic link is refused
--- request
GET /noop
--- error_code: 204
--- check: check_job_links
--- timeout: 40



=== TEST 7: the continuation is approved again, and the callback sees the pending call
--- request
GET /noop
--- error_code: 204
--- check: check_approved_continuation
--- timeout: 40



=== TEST 8: the pending call is the module's, not a checkpoint the container crafted
--- request
GET /noop
--- error_code: 204
--- check: check_crafted_checkpoint
--- timeout: 40



=== TEST 9: jobId where no workspace is kept (POST)
--- request eval
"POST /nows\n" . '{"expert":"@REFUSED@","jobId":"abc","query":"q"}'
--- error_code: 400
--- json_error
error: bad_request
--- containers_created: 0
--- error_log
jobs cannot be continued here



=== TEST 10: jobId where no workspace is kept (GET)
--- request
GET /nows?expert=@REFUSED@&jobId=abc&answer=yes
--- error_code: 400
--- json_error
error: bad_request
--- containers_created: 0
--- error_log
jobs cannot be continued here



=== TEST 11: an answer without a jobId
--- request eval
"POST /job\n" . '{"expert":"@REFUSED@","answer":"yes"}'
--- more_headers
X-User: alice
--- error_code: 400
--- json_error
error: bad_request
--- containers_created: 0
--- error_log
an answer needs the "jobId"



=== TEST 12: both a query and an answer
--- request eval
"POST /job\n" . '{"expert":"@REFUSED@","jobId":"abc","query":"q","answer":"yes"}'
--- more_headers
X-User: alice
--- error_code: 400
--- json_error
error: bad_request
--- containers_created: 0
--- error_log
send either "query" or "answer"



=== TEST 13: both a query and an answer (GET)
--- request
GET /job?expert=@REFUSED@&jobId=abc&query=q&answer=yes
--- more_headers
X-User: alice
--- error_code: 400
--- json_error
error: bad_request
--- containers_created: 0



=== TEST 14: a jobId with a slash and dots
--- request eval
"POST /job\n" . '{"expert":"@REFUSED@","jobId":"../bob","query":"q"}'
--- more_headers
X-User: alice
--- error_code: 400
--- json_error
error: bad_request
--- containers_created: 0
--- error_log
"jobId" must be 1 to 64 letters, digits, '-' or '_'



=== TEST 15: a jobId with a space (GET)
--- request
GET /job?expert=@REFUSED@&jobId=a+b&answer=yes
--- more_headers
X-User: alice
--- error_code: 400
--- json_error
error: bad_request
--- containers_created: 0
--- error_log
"jobId" must be 1 to 64 letters



=== TEST 16: a jobId with a dot
--- request
GET /job?expert=@REFUSED@&jobId=a.b&query=q
--- more_headers
X-User: alice
--- error_code: 400
--- json_error
error: bad_request
--- error_log
"jobId" must be 1 to 64 letters



=== TEST 17: a jobId of 65 characters
--- request eval
"POST /job\n" . '{"expert":"@REFUSED@","jobId":"' . ('a' x 65) . '","query":"q"}'
--- more_headers
X-User: alice
--- error_code: 400
--- json_error
error: bad_request
--- containers_created: 0
--- error_log
"jobId" must be 1 to 64 letters



=== TEST 18: a jobId that is a number
--- request eval
"POST /job\n" . '{"expert":"@REFUSED@","jobId":5,"query":"q"}'
--- more_headers
X-User: alice
--- error_code: 400
--- json_error
error: bad_request
--- containers_created: 0



=== TEST 19: an answer that is not a string
--- request eval
"POST /job\n" . '{"expert":"@REFUSED@","jobId":"abc","answer":true}'
--- more_headers
X-User: alice
--- error_code: 400
--- json_error
error: bad_request
--- containers_created: 0



=== TEST 20: a well-formed jobId of 64 characters that is not there
--- request eval
"POST /job\n" . '{"expert":"@REFUSED@","jobId":"' . ('Az09_-' x 10) . 'zzzz","answer":"yes"}'
--- more_headers
X-User: alice
--- error_code: 404
--- json_error eval
"error: job_not_found\njobId: " . ('Az09_-' x 10) . "zzzz"
--- containers_created: 0



=== TEST 21: an unknown job (GET)
--- request
GET /job?expert=@REFUSED@&jobId=-&query=q
--- more_headers
X-User: alice
--- error_code: 404
--- json_error
error: job_not_found
jobId: -
--- containers_created: 0



=== TEST 22: an unknown job in a workspace that is new
--- request
GET /job?expert=@REFUSED@&jobId=nope&answer=yes
--- more_headers
X-User: carol
--- error_code: 404
--- json_error
error: job_not_found
jobId: nope
--- containers_created: 0



=== TEST 23: a continuation is checked by the approval rules before the job is looked up
--- request eval
"POST /approved\n" . '{"expert":"@REFUSED@","jobId":"nope","answer":"yes"}'
--- more_headers
X-User: alice
--- error_code: 403
--- json_error
error: not_approved
rule: 1
message: approval rule 1 of 1 is not met
--- containers_created: 0



=== TEST 24: nothing is made or looked up before the callback allows it
--- request
GET /noop
--- error_code: 204
--- check: check_nothing_before_approval
--- timeout: 40



=== TEST 25: an answer is refused where the query is pinned
--- request
GET /noop
--- error_code: 204
--- check: check_pinned_answer
--- timeout: 40



=== TEST 26: a query to a job that waits for an answer is refused, with the call
--- request
GET /noop
--- error_code: 204
--- check: check_query_to_paused
--- timeout: 40



=== TEST 27: another expert than the job's is refused, by the module's record
--- request
GET /noop
--- error_code: 204
--- check: check_other_expert
--- timeout: 40



=== TEST 28: the record keeps the runtime's outcome; answers only to a paused job
--- request
GET /noop
--- error_code: 204
--- check: check_recorded_outcomes
--- timeout: 60
