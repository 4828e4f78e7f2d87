# Per-request workspaces: perstack_workspace names a workspace, and the
# name is one directory below perstack_workspace_root, whatever it holds:
# a '/', a leading '.', and any byte but a letter, a digit, '-', '_' or
# '.' become "%XX".  The module makes <root>/<name> (0700, its own),
# <root>/<name>/workspace (0700, the container user's), bind-mounted at
# /workspace, and <root>/<name>/jobs (0700, its own: the jobs' records).
# No container can write to <root> or <root>/<name>, so none can swap a
# directory of what Docker mounts for a link.  Only an empty name, or one
# over 255 bytes once encoded, is refused with 400 bad_workspace; a link
# or a file where the module's directories should be is a 500, never
# followed.
#
# Every block gets a root of its own, with these fixtures in it:
#     real/                   a directory
#     file                    a regular file
#     link-out -> OUTSIDE     a symbolic link to a directory outside
#     link-in -> real         a symbolic link inside the root
#     dangling -> OUTSIDE/not-yet
#     nest/deep/link -> OUTSIDE
# where OUTSIDE is an empty directory next to the root.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;
use Perstack;
use File::Find ();
use IO::Select;
use IO::Socket::INET;

our ($Root, $Outside, $Hold);

my $config = <<'_EOC_';
    # the name from a header
    location = /ws {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace $http_x_ws;
        perstack_workspace_root $TEST_NGINX_WS_ROOT;
    }

    # the same with an image that does not exist: the workspace is made,
    # and no container runs
    location = /made {
        perstack_execute;
        perstack_image perstack-no-such-image:latest;
        perstack_workspace $http_x_ws;
        perstack_workspace_root $TEST_NGINX_WS_ROOT/;
    }

    # the approval always refuses: nothing is made
    location = /dry {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace $http_x_ws;
        perstack_workspace_root $TEST_NGINX_WS_ROOT;
        perstack_approval_request /never;
    }

    # 127.0.0.1 as four bytes: two of them are NUL
    location = /binary {
        perstack_execute;
        perstack_image perstack-no-such-image:latest;
        perstack_workspace "u/$binary_remote_addr";
        perstack_workspace_root $TEST_NGINX_WS_ROOT;
    }

    location = /user {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace users/$http_x_user;
        perstack_workspace_root $TEST_NGINX_WS_ROOT;
    }

    # the approval waits for the test, which changes the root meanwhile
    location = /held {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace $http_x_ws;
        perstack_workspace_root $TEST_NGINX_WS_ROOT;
        perstack_approval_request /hold;
    }

    location = /hold {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_HOLD_PORT;
        proxy_read_timeout 30s;
    }

    location = /never {
        internal;
        return 403;
    }

    location = /noop {
        return 204;
    }
_EOC_

my @Fixtures = sort qw(d:real f:file l:link-out l:link-in l:dangling d:nest
                       d:nest/deep l:nest/deep/link);

refused_expert_checks();

# added after refused_expert_checks(), so that it runs before it
add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('config', $config) unless defined $block->config;

    $Root = make_dir('ws-root');
    $Outside = make_dir('ws-outside');

    mkdir "$Root/real" or die "mkdir: $!\n";
    mkdir "$Root/nest" or die "mkdir: $!\n";
    mkdir "$Root/nest/deep" or die "mkdir: $!\n";
    open my $fh, '>', "$Root/file" or die "$Root/file: $!\n";
    print $fh "a file\n";
    close $fh;
    symlink $Outside, "$Root/link-out" or die "symlink: $!\n";
    symlink "$Root/real", "$Root/link-in" or die "symlink: $!\n";
    symlink "$Outside/not-yet", "$Root/dangling" or die "symlink: $!\n";
    symlink $Outside, "$Root/nest/deep/link" or die "symlink: $!\n";

    $ENV{TEST_NGINX_WS_ROOT} = $Root;

    # the approval backend of /held: this test, when it wants
    $Hold = IO::Socket::INET->new(Listen => 4, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp',
                                  ReuseAddr => 1)
        or die "listen: $!\n";
    $ENV{TEST_NGINX_HOLD_PORT} = $Hold->sockport;

    # the blocks' "eval"s run before any of this: paths go as placeholders
    my $more = $block->more_headers;
    if (defined $more && $more =~ /\@(?:ROOT|OUTSIDE)\@/) {
        $more =~ s/\@ROOT\@/$Root/g;
        $more =~ s/\@OUTSIDE\@/$Outside/g;
        $block->set_value('more_headers', $more);
    }
});

# "type:path" of everything under $dir, never following a link
sub listing {
    my ($dir) = @_;
    my @l;
    File::Find::find({ no_chdir => 1, wanted => sub {
        return if $_ eq $dir;
        my $rel = substr $_, length($dir) + 1;
        my $t = -l $_ ? 'l' : -d _ ? 'd' : -f _ ? 'f' : '?';
        push @l, "$t:$rel";
    } }, $dir);
    return sort @l;
}

# The mode and owner a directory of the module has: the workspace is the
# container user's, the rest the workers' (this test's nginx runs them as
# its own user).
sub want_mode {
    my ($d) = @_;
    return $d =~ m{/workspace\z} ? '0700 65534:65534' : "0700 $>:" . (0 + $));
}

# After every block: nothing appeared outside the root; with
# "--- ws_refused", nothing appeared in it either; with "--- ws_created
# NAME...", exactly these workspaces appeared, each with its three
# directories, of the right modes and owners.
add_response_body_check(sub {
    my ($block, $body, $req_idx, $rep_idx, $dry_run) = @_;
    return if $dry_run;

    my $name = $block->name;

    is_deeply([listing($Outside)], [],
              "$name - nothing was made outside the root");
    ok(!-e "$Outside/not-yet" && !-l "$Outside/not-yet",
       "$name - the dangling link's target was not made");

    if (defined $block->ws_refused) {
        is_deeply([listing($Root)], \@Fixtures,
                  "$name - nothing was made in the root");
    }

    if (defined $block->ws_created) {
        my @want = map { ("d:$_", "d:$_/jobs", "d:$_/workspace") }
                   split ' ', $block->ws_created;
        my %fix = map { $_ => 1 } @Fixtures;
        is_deeply([grep { !$fix{$_} } listing($Root)], [sort @want],
                  "$name - the directories made in the root");

        for my $d (map { substr $_, 2 } @want) {
            my @st = lstat "$Root/$d";
            is(sprintf('%04o %d:%d', $st[2] & 07777, $st[4], $st[5]),
               want_mode($d), "$name - $d: its mode and owner");
        }
    }
});

sub check_mounted {
    my ($block) = @_;
    my $name = $block->name;

    my $c = run_get('/user?expert=demo&query=mounted', 'X-User' => 'alice');
    my $r = check_run($name, $c, expert => 'demo', continued => 0,
                      outcome => 'completed', exit_code => 0);
    my $job = $r->{job};
    my $ws = "$Root/users%2Falice/workspace";

    my @st = stat $ws;
    is(sprintf('%04o %d:%d', $st[2] & 07777, $st[4], $st[5]),
       '0700 65534:65534', "$name - the workspace: 0700, owner 65534");

    # the runtime wrote its job into /workspace, as the real one lays it
    # out: checkpoints, and a file for each event of the run, no job.json
    my @cp = glob "$ws/perstack/jobs/$job/checkpoints/*.json";
    is(scalar @cp, 1, "$name - one checkpoint (one step)");
    my $cpfile = $cp[0] // "$ws/perstack/jobs/$job/checkpoints/none";
    ok(-f $cpfile && !-l $cpfile,
       "$name - the run's checkpoint is in the workspace");
    @st = stat $cpfile;
    is("$st[4]:$st[5]", '65534:65534',
       "$name - written by the container's user");

    my $json = eval { open my $fh, '<', $cpfile or die; local $/;
                      json_decode(scalar <$fh>) } || {};
    is_deeply([@{$json}{qw(jobId status)}], [$job, 'completed'],
              "$name - the checkpoint is the job's completed one");

    my $run = ($r->{by_type}{completeRun} || [ {} ])->[0]{runId} // 'none';
    ok(-f "$ws/perstack/jobs/$job/runs/$run/event-"
          . "$r->{by_type}{completeRun}[0]{timestamp}-1-completeRun.json",
       "$name - completeRun's event file is in the run's directory");
    ok(!-e "$ws/perstack/jobs/$job/job.json", "$name - and no job.json");

    # the module's record of the job, beside the workspace
    my $record = eval { open my $fh, '<', "$Root/users%2Falice/jobs/$job.json"
                            or die; local $/; json_decode(scalar <$fh>) }
                 || {};
    is_deeply([@{$record}{qw(job expert execution outcome exit_code)}],
              [$job, 'demo', $r->{exec}{execution}, 'completed', 0],
              "$name - the module recorded the job");

    # another user: another directory; alice's is untouched
    my $c2 = run_get('/user?expert=demo&query=again', 'X-User' => 'bob');
    my $r2 = check_run("$name (bob)", $c2, expert => 'demo',
                       outcome => 'completed', exit_code => 0);

    ok(-d "$Root/users%2Fbob/workspace/perstack/jobs/$r2->{job}/checkpoints",
       "$name - bob's job is in bob's workspace");
    ok(!-e "$ws/perstack/jobs/$r2->{job}",
       "$name - and not in alice's");
    is_deeply([map { s{.*/}{}r } glob "$ws/perstack/jobs/*"], [$job],
              "$name - alice's workspace has her one job");
}

# One workspace inside another used to be a directory the outer one's
# container could swap for a link between the check and the mount.  Here
# the test swaps it while the approval waits: the inner workspace is a
# directory of its own all the same, and nothing lands outside the root.
sub check_swap {
    my ($block) = @_;
    my $name = $block->name;

    # a target the container could write to, were it mounted
    chown 65534, 65534, $Outside;

    # what the outer workspace's container could have made in /workspace
    for my $d ("$Root/team", "$Root/team/x", "$Root/team/workspace",
               "$Root/team/workspace/x") {
        mkdir $d or die "mkdir $d: $!\n";
        chown 65534, 65534, $d;
    }

    my $c = open_stream(method => 'GET', path => '/held?expert=demo&query=s',
                        headers => ['X-WS' => 'team/x']);

    my $sel = IO::Select->new($Hold);
    ok($sel->can_read(20), "$name - the approval callback was asked")
        or return;

    my $cb = $Hold->accept;
    my $req = '';
    while ($req !~ /\r\n\r\n/ && IO::Select->new($cb)->can_read(10)) {
        last unless sysread $cb, $req, 4096, length $req;
    }

    # the swap, in both layouts a container could reach
    for my $d ("$Root/team/x", "$Root/team/workspace/x") {
        rename $d, "$d.old" or die "rename $d: $!\n";
        symlink $Outside, $d or die "symlink $d: $!\n";
    }

    print $cb "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
    close $cb;

    $c->drain(30);
    $c->close;

    my $r = check_run($name, $c, expert => 'demo', continued => 0,
                      outcome => 'completed', exit_code => 0);

    ok(-d "$Root/team%2Fx/workspace/perstack/jobs/$r->{job}/checkpoints",
       "$name - the job is in the workspace of its own");
}

run_tests();

__DATA__

=== TEST 1: perstack_workspace needs perstack_workspace_root
--- config
    location = /ws {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace $http_x_ws;
    }
--- must_die
--- error_log
"perstack_workspace" needs an absolute "perstack_workspace_root" other than "/"



=== TEST 2: perstack_workspace_root "/" is refused
--- config
    location = /ws {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace $http_x_ws;
        perstack_workspace_root /;
    }
--- must_die
--- error_log
"perstack_workspace" needs an absolute "perstack_workspace_root" other than "/"



=== TEST 3: a relative perstack_workspace_root is refused
--- config
    location = /ws {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace $http_x_ws;
        perstack_workspace_root workspaces;
    }
--- must_die
--- error_log
"perstack_workspace" needs an absolute "perstack_workspace_root" other than "/"



=== TEST 4: a workspace is made: its three directories
--- request
GET /made?expert=@REFUSED@&query=hi
--- more_headers
X-WS: alice
--- error_code: 502
--- json_error
error: image_not_found
image: perstack-no-such-image:latest
--- ws_created: alice
--- containers_created: 0



=== TEST 5: a name with slashes is one directory
--- request
GET /made?expert=@REFUSED@&query=hi
--- more_headers
X-WS: team/alice/deep
--- error_code: 502
--- json_error
error: image_not_found
image: perstack-no-such-image:latest
--- ws_created: team%2Falice%2Fdeep



=== TEST 6: ".." is a name like any other
--- request
GET /made?expert=@REFUSED@&query=hi
--- more_headers
X-WS: ../../escape
--- error_code: 502
--- json_error
error: image_not_found
image: perstack-no-such-image:latest
--- ws_created: %2E.%2F..%2Fescape



=== TEST 7: "." is a name like any other
--- request
GET /made?expert=@REFUSED@&query=hi
--- more_headers
X-WS: .
--- error_code: 502
--- json_error
error: image_not_found
image: perstack-no-such-image:latest
--- ws_created: %2E



=== TEST 8: an absolute path is a name like any other
--- request
GET /made?expert=@REFUSED@&query=hi
--- more_headers
X-WS: /etc/x
--- error_code: 502
--- json_error
error: image_not_found
image: perstack-no-such-image:latest
--- ws_created: %2Fetc%2Fx



=== TEST 9: a name that is not ASCII, with "%" in it, and one with a space
--- request
GET /made?expert=@REFUSED@&query=hi
--- more_headers eval
"X-WS: %41 b\xC3\xA9"
--- error_code: 502
--- json_error
error: image_not_found
image: perstack-no-such-image:latest
--- ws_created: %2541%20b%C3%A9



=== TEST 10: NUL bytes (from $binary_remote_addr) are a name too
--- request
GET /binary?expert=@REFUSED@&query=hi
--- error_code: 502
--- json_error
error: image_not_found
image: perstack-no-such-image:latest
--- ws_created: u%2F%7F%00%00%01



=== TEST 11: 255 bytes once encoded are fine
--- request
GET /made?expert=@REFUSED@&query=hi
--- more_headers eval
"X-WS: " . ('a' x 252) . '/'
--- error_code: 502
--- json_error
error: image_not_found
image: perstack-no-such-image:latest
--- ws_created eval
('a' x 252) . '%2F'



=== TEST 12: 256 bytes once encoded are refused
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers eval
"X-WS: " . ('a' x 253) . '/'
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
workspace refused: it is longer than 255 bytes once encoded



=== TEST 13: no workspace (empty)
--- request
GET /ws?expert=@REFUSED@&query=hi
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
workspace refused: it is empty



=== TEST 14: nothing is made before the approval
--- request
GET /dry?expert=@REFUSED@&query=hi
--- more_headers
X-WS: alice
--- error_code: 403
--- json_error
error: not_approved
--- ws_refused
--- containers_created: 0



=== TEST 15: a symbolic link where the workspace should be: never followed
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: link-out
--- error_code: 500
--- json_error
error: workspace_unavailable
--- ws_refused
--- containers_created: 0
--- error_log
a directory of the workspace is a symbolic link or not a directory
--- no_error_log
[alert]
[emerg]



=== TEST 16: a dangling symbolic link (its target is not made)
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: dangling
--- error_code: 500
--- json_error
error: workspace_unavailable
--- ws_refused
--- containers_created: 0
--- error_log
a directory of the workspace is a symbolic link or not a directory
--- no_error_log
[alert]
[emerg]



=== TEST 17: a regular file where the workspace should be
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: file
--- error_code: 500
--- json_error
error: workspace_unavailable
--- ws_refused
--- containers_created: 0
--- error_log
a directory of the workspace is a symbolic link or not a directory
--- no_error_log
[alert]
[emerg]



=== TEST 18: a symbolic link where /workspace's directory should be
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: real
--- error_code: 500
--- json_error
error: workspace_unavailable
--- containers_created: 0
--- error_log
a directory of the workspace is a symbolic link or not a directory
--- no_error_log
[alert]
[emerg]
--- init
symlink $::Outside, "$::Root/real/workspace" or die "symlink: $!\n";



=== TEST 19: the root is missing: 500, and nothing runs
--- config
    location = /ws {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace $http_x_ws;
        perstack_workspace_root $TEST_NGINX_WS_ROOT/missing;
    }
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: alice
--- error_code: 500
--- json_error
error: workspace_unavailable
--- ws_refused
--- containers_created: 0
--- error_log
preparing workspace
failed: open() of perstack_workspace_root
--- no_error_log
[alert]
[emerg]



=== TEST 20: the run's /workspace is the directory: the runtime's job lands in it
--- request
GET /noop
--- error_code: 204
--- check: check_mounted
--- timeout: 40



=== TEST 21: a workspace inside another's is its own directory, whatever is swapped
--- request
GET /noop
--- error_code: 204
--- check: check_swap
--- timeout: 60
