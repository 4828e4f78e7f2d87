# Approval before anything runs: perstack_approve rules (checked before the
# body is read), and the perstack_approval_request callback (a subrequest,
# headers only): 2xx runs, 401/403 pass to the client, anything else is a
# 500; the headers the callback sees; perstack_approval_set.  A refused
# request never gets a container: checked on the Docker Engine by a label
# unique to the request.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;
use Perstack;
use Digest::SHA qw(sha256_hex);
use IO::Select ();
use IO::Socket::INET ();
use Time::HiRes ();

# A callback server the test plays itself: it sees the callback's request
# byte for byte and answers when it likes.
my $Callback = IO::Socket::INET->new(Listen => 8, LocalAddr => '127.0.0.1',
                                     LocalPort => 0, Proto => 'tcp',
                                     ReuseAddr => 1)
    or die "cannot listen: $!\n";
$ENV{TEST_NGINX_CALLBACK_PORT} = $Callback->sockport;

# A port that accepts connections (the kernel's backlog) and never answers.
my $Hole = IO::Socket::INET->new(Listen => 8, LocalAddr => '127.0.0.1',
                                 LocalPort => 0, Proto => 'tcp',
                                 ReuseAddr => 1)
    or die "cannot listen: $!\n";
$ENV{TEST_NGINX_HOLE_PORT} = $Hole->sockport;

our $config = <<'_EOC_';
    location = /rules {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_approve $http_x_a;
        perstack_approve "$http_x_b";
    }

    location = /cb {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_approval_request /approve;

        perstack_approval_set $saw_expert $upstream_http_x_saw_expert;
        perstack_approval_set $saw_qlen $upstream_http_x_saw_query_length;
        perstack_approval_set $saw_qsha $upstream_http_x_saw_query_sha256;
        perstack_approval_set $saw_job $upstream_http_x_saw_job;
        perstack_approval_set $saw_job_id $upstream_http_x_saw_job_id;
        perstack_approval_set $saw_tool $upstream_http_x_saw_tool_call;
        perstack_approval_set $saw_forged $upstream_http_x_saw_forged;
        perstack_approval_set $saw_other $upstream_http_x_saw_other;
        perstack_approval_set $approved_user "user=$upstream_http_x_user_id";

        add_header X-Saw-Expert $saw_expert always;
        add_header X-Saw-Query-Length $saw_qlen always;
        add_header X-Saw-Query-SHA256 $saw_qsha always;
        add_header X-Saw-Job $saw_job always;
        add_header X-Saw-Job-Id $saw_job_id always;
        add_header X-Saw-Tool-Call $saw_tool always;
        add_header X-Saw-Forged $saw_forged always;
        add_header X-Saw-Other $saw_other always;
        add_header X-Approved-User $approved_user always;
    }

    location = /both {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_approve $http_x_a;
        perstack_approval_request /approve;
    }

    location = /cb-closed {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_approval_request /approve-closed;
    }

    location = /cb-hole {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_approval_request /approve-hole;
    }

    location = /cb-raw {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_approval_request /approve-raw;
        perstack_approval_set $approved_user $upstream_http_x_user_id;
        add_header X-Approved-User $approved_user always;
    }

    location = /cb-local {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_approval_request /approve-local;
    }

    location = /approve {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/approve-backend;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
    }

    location = /approve-closed {
        internal;
        proxy_pass http://127.0.0.1:1/;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
    }

    location = /approve-hole {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_HOLE_PORT/;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_read_timeout 500ms;
    }

    location = /approve-raw {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_CALLBACK_PORT/check;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
    }

    location = /approve-local {
        internal;
        if ($http_x_decide = deny) {
            return 403;
        }
        return 204;
    }

    # the approval service: decides by X-Decide, echoes what it saw
    location = /approve-backend {
        if ($http_x_decide = deny) {
            return 403;
        }
        if ($http_x_decide = auth) {
            add_header WWW-Authenticate 'Bearer realm="perstack"' always;
            return 401;
        }
        if ($http_x_decide = fail) {
            return 500;
        }
        if ($http_x_decide = missing) {
            return 404;
        }
        if ($http_x_decide = redirect) {
            return 302 /elsewhere;
        }
        if ($http_x_decide = ok200) {
            return 200 "fine\n";
        }

        add_header X-Saw-Expert $http_x_perstack_expert;
        add_header X-Saw-Query-Length $http_x_perstack_query_length;
        add_header X-Saw-Query-SHA256 $http_x_perstack_query_sha256;
        add_header X-Saw-Job $http_x_perstack_job;
        add_header X-Saw-Job-Id $http_x_perstack_job_id;
        add_header X-Saw-Tool-Call "[$http_x_perstack_tool_call]";
        add_header X-Saw-Forged "[$http_x_perstack_forged]";
        add_header X-Saw-Other "[$http_x_other]";
        add_header X-User-Id $http_x_user;
        return 204;
    }

    location = /noop {
        return 204;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $config) unless defined $block->config;
});

refused_expert_checks();


# ---- allowed runs ------------------------------------------------------------

sub demo_completed {
    my ($name, $c, %o) = @_;
    my $r = check_run($name, $c, expert => 'demo', continued => 0,
                      outcome => 'completed', exit_code => 0, %o);
    is_deeply($r->{types},
              [qw(initializeRuntime skillConnected startRun startGeneration
                  callTools attemptCompletion startStreamingRunResult),
               ('streamRunResult') x $o{words},
               qw(completeStreamingRunResult completeRun skillDisconnected)],
              "$name - the demo run's events")
        if defined $o{words};
    return $r;
}

sub check_rules_pass {
    my ($block) = @_;
    my $name = $block->name;

    # "00" and "no" are neither empty nor "0"
    my $c = run_get('/rules?expert=demo&query=rules+met',
                    'X-A' => '00', 'X-B' => 'no');
    demo_completed($name, $c, words => 2);
}

# A refused POST with a body, then a second request on the same
# connection: the body was discarded, not taken for the next request.
sub check_rules_keepalive {
    my ($block) = @_;
    my $name = $block->name;
    my $expert = unique_name('refused');
    my $t0 = Time::HiRes::time();

    my $body = json_encode({ expert => $expert, query => 'x' x 3000 });
    my $port = $Test::Nginx::Util::ServerPortForClient
               || $Test::Nginx::Util::ServerPort;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp')
        or die "connect: $!\n";
    binmode $sock;

    print $sock "POST /rules HTTP/1.1\r\nHost: localhost\r\n"
              . "Content-Type: application/json\r\nX-A: 1\r\n"
              . "Content-Length: " . length($body) . "\r\n\r\n$body"
              . "GET /rules?expert=$expert&query=q HTTP/1.1\r\n"
              . "Host: localhost\r\nX-B: 1\r\nConnection: close\r\n\r\n";

    my $all = '';
    my $sel = IO::Select->new($sock);
    my $deadline = Time::HiRes::time() + 10;
    while (Time::HiRes::time() < $deadline) {
        last unless $sel->can_read($deadline - Time::HiRes::time());
        my $n = sysread($sock, my $buf, 65536);
        last unless $n;
        $all .= $buf;
    }
    close $sock;

    my @status = $all =~ m{^HTTP/1\.1 (\d{3})}mg;
    is("@status", "403 403", "$name - two responses, both 403");

    my @rules = $all =~ m{"rule":(\d+)}g;
    is("@rules", "2 1", "$name - the first misses rule 2, the second "
       . "rule 1");

    no_container_for($name, $t0, $expert);
}

# What the callback saw, through perstack_approval_set and add_header.
sub check_callback_headers {
    my ($block) = @_;
    my $name = $block->name;

    my $query = "h\x{e9}llo w\x{f6}rld \x{2603}";
    my $bytes = $query;
    utf8::encode($bytes);

    my $c = run_post('/cb', { expert => 'demo', query => $query },
                     'X-User' => 'alice',
                     'X-Other' => 'kept',
                     'X-Perstack-Expert' => 'forged',
                     'X-Perstack-Job' => 'forged',
                     'x-perstack-job-id' => 'forged',
                     'X-Perstack-Query-Length' => '1',
                     'X-Perstack-Forged' => 'forged',
                     'X-Perstack-Tool-Call' => '{"id":"forged"}');

    my $r = demo_completed($name, $c, words => 3);

    is($c->header('X-Saw-Expert'), 'demo', "$name - X-Perstack-Expert");
    is($c->header('X-Saw-Query-Length'), length $bytes,
       "$name - X-Perstack-Query-Length: the query's bytes");
    is($c->header('X-Saw-Query-SHA256'), sha256_hex($bytes),
       "$name - X-Perstack-Query-SHA256: the query's sha256 in hex");
    is($c->header('X-Saw-Job'), 'new', "$name - X-Perstack-Job: new");
    is($c->header('X-Saw-Job-Id'), $r->{job},
       "$name - X-Perstack-Job-Id: the job perstack.execution names");
    is($c->header('X-Saw-Tool-Call'), '[]',
       "$name - no X-Perstack-Tool-Call for a new job");
    is($c->header('X-Saw-Forged'), '[]',
       "$name - the client's own X-Perstack-* headers do not reach the "
       . "callback");
    is($c->header('X-Saw-Other'), '[kept]',
       "$name - the client's other headers do");
    is($c->header('X-Approved-User'), 'user=alice',
       "$name - perstack_approval_set takes the callback's response header");
}

# With underscores_in_headers, X_Perstack_Expert is X-Perstack-Expert to
# the callback's $http_x_perstack_expert (and to many an application): the
# client's, under any spelling, does not reach it.
sub check_callback_underscores {
    my ($block) = @_;
    my $name = $block->name;

    my $c = run_post('/cb', { expert => 'demo', query => 'underscores' },
                     'X_Perstack_Expert' => 'forged',
                     'x_perstack_job' => 'forged',
                     'X-Perstack_Forged' => 'forged',
                     'X_Other' => 'kept');

    demo_completed($name, $c);

    is($c->header('X-Saw-Expert'), 'demo',
       "$name - X-Perstack-Expert: the module's, not X_Perstack_Expert");
    is($c->header('X-Saw-Job'), 'new',
       "$name - X-Perstack-Job: the module's, not x_perstack_job");
    is($c->header('X-Saw-Forged'), '[]',
       "$name - X-Perstack_Forged does not reach the callback");
    is($c->header('X-Saw-Other'), '[kept]',
       "$name - the client's other headers with '_' do");
}

sub check_callback_get {
    my ($block) = @_;
    my $name = $block->name;

    my $c = run_get('/cb?expert=demo&query=1+%2B+1', 'X-User' => 'bob');
    demo_completed($name, $c, words => 3);

    is($c->header('X-Saw-Query-Length'), 5, "$name - the decoded query's "
       . "length");
    is($c->header('X-Saw-Query-SHA256'), sha256_hex('1 + 1'),
       "$name - the decoded query's sha256");
    is($c->header('X-Approved-User'), 'user=bob', "$name - the user");
}

sub check_callback_200 {
    my ($block) = @_;
    my $name = $block->name;

    my $c = run_get('/cb?expert=demo&query=two+hundred', 'X-Decide' => 'ok200');
    demo_completed($name, $c, words => 2);
}

sub check_local_callback {
    my ($block) = @_;
    my $name = $block->name;

    my $c = run_get('/cb-local?expert=demo&query=local');
    demo_completed($name, $c, words => 1);
}


# ---- the callback the test answers itself ------------------------------------

sub accept_callback {
    my ($timeout) = @_;
    my $sel = IO::Select->new($Callback);
    return undef unless $sel->can_read($timeout);
    my $peer = $Callback->accept or return undef;
    binmode $peer;
    return $peer;
}

# The request head: (request line, [[name, value], ...], bytes after it).
sub read_head {
    my ($peer, $timeout) = @_;
    my $buf = '';
    my $sel = IO::Select->new($peer);
    my $deadline = Time::HiRes::time() + $timeout;

    while (index($buf, "\r\n\r\n") < 0) {
        my $left = $deadline - Time::HiRes::time();
        return () if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($peer, $buf, 65536, length $buf);
        return () unless $n;
    }

    my ($head, $rest) = split /\r\n\r\n/, $buf, 2;
    my ($line, @lines) = split /\r\n/, $head;
    my @h = map { /^([^:]+):\s*(.*)$/ ? [$1, $2] : [$_, undef] } @lines;

    # whatever else arrives soon (there should be no body)
    if ($sel->can_read(0.2)) {
        sysread($peer, $rest, 65536, length $rest);
    }

    return ($line, \@h, $rest);
}

sub check_raw_callback {
    my ($block) = @_;
    my $name = $block->name;

    my $query = "raw \"callback\" query";
    my $c = open_stream(method => 'POST', path => '/cb-raw',
        headers => ['Content-Type' => 'application/json',
                    'X-Perstack-Job' => 'continue',
                    'X-PERSTACK-EXPERT' => 'forged',
                    'X-Perstack-Tool-Call' => '{"id":"forged"}',
                    'X-Keep' => 'kept'],
        body => json_encode({ expert => 'demo', query => $query }));

    my $peer = accept_callback(10);
    ok($peer, "$name - the callback is called") or return;

    my ($line, $h, $rest) = read_head($peer, 10);
    ok(defined $line, "$name - the callback's request head") or return;

    like($line, qr{\AGET /check HTTP/1\.[01]\z},
         "$name - the callback is a GET of its URI");

    my %seen;
    push @{ $seen{lc $_->[0]} }, $_->[1] for @$h;

    my @ours = sort grep { /^x-perstack-/ } keys %seen;
    is_deeply(\@ours, [qw(x-perstack-expert x-perstack-job x-perstack-job-id
                          x-perstack-query-length x-perstack-query-sha256)],
              "$name - exactly the module's X-Perstack-* headers");

    for my $k (@ours) {
        is(scalar @{ $seen{$k} }, 1, "$name - one $k header");
    }

    is($seen{'x-perstack-expert'}[0], 'demo', "$name - X-Perstack-Expert");
    is($seen{'x-perstack-job'}[0], 'new', "$name - X-Perstack-Job");
    like($seen{'x-perstack-job-id'}[0] // '', qr/\A[0-9a-z]{24}\z/,
         "$name - X-Perstack-Job-Id");
    is($seen{'x-perstack-query-length'}[0], length $query,
       "$name - X-Perstack-Query-Length");
    is($seen{'x-perstack-query-sha256'}[0], sha256_hex($query),
       "$name - X-Perstack-Query-SHA256");
    is_deeply($seen{'x-keep'}, ['kept'], "$name - the client's X-Keep");
    ok(!exists $seen{'content-length'} && !exists $seen{'transfer-encoding'},
       "$name - no request body announced");
    is($rest, '', "$name - no request body sent");

    ok(!$c->read_until(sub { defined $_[0]{status} }, 0.3),
       "$name - no response while the callback has not answered");

    print $peer "HTTP/1.1 204 No Content\r\nX-User-Id: raw-user\r\n"
              . "Connection: close\r\n\r\n";
    close $peer;

    $c->drain(30);
    $c->close;

    my $r = demo_completed($name, $c, words => 3);
    is($r->{job}, $seen{'x-perstack-job-id'}[0],
       "$name - the job is the one the callback was asked about");
    is($c->header('X-Approved-User'), 'raw-user',
       "$name - perstack_approval_set");
}

# The callback answers 403 after a while; the client waited for it.
sub check_raw_refusal {
    my ($block) = @_;
    my $name = $block->name;
    my $expert = unique_name('refused');
    my $t0 = Time::HiRes::time();

    my $c = open_stream(method => 'GET',
                        path => "/cb-raw?expert=$expert&query=q");

    my $peer = accept_callback(10);
    ok($peer, "$name - the callback is called") or return;
    my ($line, $h) = read_head($peer, 10);
    my ($exp) = map { $_->[1] } grep { lc $_->[0] eq 'x-perstack-expert' }
                @{ $h || [] };
    is($exp, $expert, "$name - X-Perstack-Expert");

    print $peer "HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n"
              . "Connection: close\r\n\r\nno\r\n";
    close $peer;

    $c->drain(10);
    $c->close;

    check_error($name, $c, 403, 'not_approved');
    no_container_for($name, $t0, $expert);
}

run_tests();

__DATA__

=== TEST 1: perstack_approve: no rule met
--- request
GET /rules?expert=@REFUSED@&query=hi
--- error_code: 403
--- json_error
error: not_approved
rule: 1
message: approval rule 1 of 2 is not met
--- containers_created: 0
--- error_log
approval rule 1 of 2 refused the request



=== TEST 2: perstack_approve: the second rule is not met
--- request
GET /rules?expert=@REFUSED@&query=hi
--- more_headers
X-A: yes
--- error_code: 403
--- json_error
error: not_approved
rule: 2
message: approval rule 2 of 2 is not met
--- containers_created: 0



=== TEST 3: perstack_approve: "0" is not met
--- request
GET /rules?expert=@REFUSED@&query=hi
--- more_headers
X-A: 0
X-B: 1
--- error_code: 403
--- json_error
error: not_approved
rule: 1
message: approval rule 1 of 2 is not met
--- containers_created: 0



=== TEST 4: perstack_approve: checked before the body is read (invalid JSON)
--- request eval
"POST /rules\n" . '{"expert":"@REFUSED@","query":'
--- more_headers
X-A: 1
--- error_code: 403
--- json_error
error: not_approved
rule: 2
message: approval rule 2 of 2 is not met
--- containers_created: 0



=== TEST 5: perstack_approve: a refused body is discarded, the connection goes on
--- request
GET /noop
--- error_code: 204
--- check: check_rules_keepalive



=== TEST 6: perstack_approve: values other than "" and "0" pass
--- request
GET /noop
--- error_code: 204
--- check: check_rules_pass



=== TEST 7: callback: what it sees (POST, client's X-Perstack-* stripped), perstack_approval_set
--- request
GET /noop
--- error_code: 204
--- check: check_callback_headers



=== TEST 8: callback: GET arguments, the decoded query
--- request
GET /noop
--- error_code: 204
--- check: check_callback_get



=== TEST 9: callback: 200 allows too
--- request
GET /noop
--- error_code: 204
--- check: check_callback_200



=== TEST 10: callback: 403 passes to the client
--- request
GET /cb?expert=@REFUSED@&query=hi
--- more_headers
X-Decide: deny
--- error_code: 403
--- json_error
error: not_approved
--- containers_created: 0
--- error_log
the approval callback refused the request with 403



=== TEST 11: callback: 403 for a POST
--- request eval
"POST /cb\n" . '{"expert":"@REFUSED@","query":"hi"}'
--- more_headers
X-Decide: deny
--- error_code: 403
--- json_error
error: not_approved
--- containers_created: 0



=== TEST 12: callback: 401 passes with its WWW-Authenticate
--- request
GET /cb?expert=@REFUSED@&query=hi
--- more_headers
X-Decide: auth
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="perstack"
--- json_error
error: not_approved
--- containers_created: 0
--- error_log
the approval callback refused the request with 401



=== TEST 13: callback: 500 is a failure
--- request
GET /cb?expert=@REFUSED@&query=hi
--- more_headers
X-Decide: fail
--- error_code: 500
--- json_error
error: approval_failed
--- containers_created: 0
--- error_log
the approval callback "/approve" answered 500



=== TEST 14: callback: 404 is a failure
--- request
GET /cb?expert=@REFUSED@&query=hi
--- more_headers
X-Decide: missing
--- error_code: 500
--- json_error
error: approval_failed
--- containers_created: 0
--- error_log
the approval callback "/approve" answered 404



=== TEST 15: callback: a redirect is a failure
--- request
GET /cb?expert=@REFUSED@&query=hi
--- more_headers
X-Decide: redirect
--- error_code: 500
--- json_error
error: approval_failed
--- response_headers
!Location
--- containers_created: 0
--- error_log
the approval callback "/approve" answered 302



=== TEST 16: callback: nothing listens on its port (502)
--- request
GET /cb-closed?expert=@REFUSED@&query=hi
--- error_code: 500
--- json_error
error: approval_failed
--- containers_created: 0
--- error_log
the approval callback "/approve-closed" answered 502



=== TEST 17: callback: it never answers (504)
--- request
GET /cb-hole?expert=@REFUSED@&query=hi
--- error_code: 500
--- json_error
error: approval_failed
--- containers_created: 0
--- error_log
upstream timed out
the approval callback "/approve-hole" answered 504



=== TEST 18: callback: a bad body is refused before the callback is asked
--- request eval
"POST /cb\n" . '{"expert":"@REFUSED@","query":5}'
--- more_headers
X-Decide: fail
--- error_code: 400
--- json_error
error: bad_request
--- containers_created: 0
--- no_error_log
approval callback



=== TEST 19: rules come before the callback, which is then not asked
--- request
GET /both?expert=@REFUSED@&query=hi
--- more_headers
X-Decide: fail
--- error_code: 403
--- json_error
error: not_approved
rule: 1
message: approval rule 1 of 1 is not met
--- containers_created: 0
--- no_error_log
approval callback



=== TEST 20: rules met, then the callback refuses
--- request
GET /both?expert=@REFUSED@&query=hi
--- more_headers
X-A: 1
X-Decide: deny
--- error_code: 403
--- json_error
error: not_approved
--- containers_created: 0
--- error_log
the approval callback refused the request with 403



=== TEST 21: a callback location without proxy (return 204)
--- request
GET /noop
--- error_code: 204
--- check: check_local_callback



=== TEST 22: a callback location without proxy (return 403)
--- request
GET /cb-local?expert=@REFUSED@&query=hi
--- more_headers
X-Decide: deny
--- error_code: 403
--- json_error
error: not_approved
--- containers_created: 0



=== TEST 23: the callback on the wire: headers only, and the run waits for it
--- request
GET /noop
--- error_code: 204
--- check: check_raw_callback
--- timeout: 40



=== TEST 24: the callback on the wire: a late 403
--- request
GET /noop
--- error_code: 204
--- check: check_raw_refusal



=== TEST 25: callback: with underscores_in_headers, X_Perstack_* of the client are stripped too
--- config eval
$main::config . "    underscores_in_headers on;\n"
--- request
GET /noop
--- error_code: 204
--- check: check_callback_underscores
