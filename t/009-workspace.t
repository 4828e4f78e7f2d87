# Per-request workspaces: perstack_workspace resolves a path under
# perstack_workspace_root, which is created (0700, for the container's
# user) and bind-mounted at /workspace.  Paths that could leave the root
# are refused with 400 bad_workspace: "." and "..", absolute paths
# elsewhere, NUL bytes, names over 255 bytes, paths over 1024 bytes, the
# root itself, and any component that is a symbolic link or not a
# directory.  Nothing is created for them, outside the root least of all,
# and no container runs.
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

our ($Root, $Outside);

my $config = <<'_EOC_';
    # the path from a header; a run when approved
    location = /ws {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace $http_x_ws;
        perstack_workspace_root $TEST_NGINX_WS_ROOT;
    }

    # the same, but the approval (after the workspace) always refuses:
    # the workspace is made, and no container runs
    location = /dry {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace $http_x_ws;
        perstack_workspace_root $TEST_NGINX_WS_ROOT/;
        perstack_approval_request /never;
    }

    # 127.0.0.1 as four bytes: two of them are NUL
    location = /binary {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace "u/$binary_remote_addr";
        perstack_workspace_root $TEST_NGINX_WS_ROOT;
    }

    location = /user {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace users/$http_x_user;
        perstack_workspace_root $TEST_NGINX_WS_ROOT;
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

# After every block: nothing appeared outside the root; with
# "--- ws_refused", nothing appeared in it either; with "--- ws_created",
# exactly these directories appeared, each 0700 and the container user's.
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
        my @want = map { "d:$_" } split ' ', $block->ws_created;
        my %fix = map { $_ => 1 } @Fixtures;
        is_deeply([grep { !$fix{$_} } listing($Root)], [sort @want],
                  "$name - the directories made in the root");

        for my $d (map { substr $_, 2 } @want) {
            my @st = lstat "$Root/$d";
            is(sprintf('%04o %d:%d', $st[2] & 07777, $st[4], $st[5]),
               '0700 65534:65534', "$name - $d: mode 0700, owner 65534");
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
    my $ws = "$Root/users/alice";

    my @st = stat $ws;
    is(sprintf('%04o %d:%d', $st[2] & 07777, $st[4], $st[5]),
       '0700 65534:65534', "$name - the workspace: 0700, owner 65534");

    # the runtime wrote its job into /workspace: it is in our directory
    my $jobfile = "$ws/perstack/jobs/$job/job.json";
    ok(-f $jobfile && !-l $jobfile,
       "$name - the run's job.json is in the workspace");
    @st = stat $jobfile;
    is("$st[4]:$st[5]", '65534:65534',
       "$name - written by the container's user");

    my $json = eval { open my $fh, '<', $jobfile or die; local $/;
                      json_decode(scalar <$fh>) } || {};
    is($json->{id}, $job, "$name - job.json names the job");

    my @cp = glob "$ws/perstack/jobs/$job/checkpoints/*.json";
    is(scalar @cp, 1, "$name - one checkpoint");

    # another user: another directory; alice's is untouched
    my $c2 = run_get('/user?expert=demo&query=again', 'X-User' => 'bob');
    my $r2 = check_run("$name (bob)", $c2, expert => 'demo',
                       outcome => 'completed', exit_code => 0);

    ok(-f "$Root/users/bob/perstack/jobs/$r2->{job}/job.json",
       "$name - bob's job is in bob's workspace");
    ok(!-e "$ws/perstack/jobs/$r2->{job}",
       "$name - and not in alice's");
    is_deeply([map { s{.*/}{}r } glob "$ws/perstack/jobs/*"], [$job],
              "$name - alice's workspace has her one job");
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



=== TEST 4: a workspace is made: 0700, the container user's
--- request
GET /dry?expert=@REFUSED@&query=hi
--- more_headers
X-WS: alice
--- error_code: 403
--- json_error
error: not_approved
--- ws_created: alice
--- containers_created: 0



=== TEST 5: every missing directory of the path is made
--- request
GET /dry?expert=@REFUSED@&query=hi
--- more_headers
X-WS: team/alice/deep
--- error_code: 403
--- json_error
error: not_approved
--- ws_created: team team/alice team/alice/deep
--- containers_created: 0



=== TEST 6: empty components are dropped
--- request
GET /dry?expert=@REFUSED@&query=hi
--- more_headers
X-WS: a//b/
--- error_code: 403
--- json_error
error: not_approved
--- ws_created: a a/b



=== TEST 7: an absolute path under the root
--- request
GET /dry?expert=@REFUSED@&query=hi
--- more_headers
X-WS: @ROOT@/abs/x
--- error_code: 403
--- json_error
error: not_approved
--- ws_created: abs abs/x



=== TEST 8: inside a directory that exists
--- request
GET /dry?expert=@REFUSED@&query=hi
--- more_headers
X-WS: real/sub
--- error_code: 403
--- json_error
error: not_approved
--- ws_created: real/sub



=== TEST 9: a 255-byte name, and 1024 bytes in all, are fine
--- request
GET /dry?expert=@REFUSED@&query=hi
--- more_headers eval
"X-WS: " . CORE::join '/', ('a' x 255) x 3, 'b' x 254, 'c'
--- error_code: 403
--- json_error
error: not_approved
--- ws_created eval
CORE::join ' ', map { my $n = $_; CORE::join '/', (('a' x 255) x 3, 'b' x 254, 'c')[0 .. $n] } 0 .. 4



=== TEST 10: no workspace (empty)
--- request
GET /ws?expert=@REFUSED@&query=hi
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
workspace "" refused: it is empty



=== TEST 11: ".."
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: ..
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
workspace ".." refused: it has a "." or ".." component



=== TEST 12: ".." inside
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: real/../../escape
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
it has a "." or ".." component



=== TEST 13: "." alone
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: .
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- error_log
it has a "." or ".." component



=== TEST 14: "." inside
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: a/./b
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- error_log
it has a "." or ".." component



=== TEST 15: ".." after an absolute path under the root
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: @ROOT@/../escape
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- error_log
it has a "." or ".." component



=== TEST 16: an absolute path elsewhere
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: @OUTSIDE@/x
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
refused: it is not under perstack_workspace_root



=== TEST 17: "/"
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: /
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- error_log
refused: it is not under perstack_workspace_root



=== TEST 18: a path that only starts like the root
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: @ROOT@x/a
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- error_log
refused: it is not under perstack_workspace_root



=== TEST 19: the root itself
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: @ROOT@
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
refused: it is not under perstack_workspace_root



=== TEST 20: the root itself, with slashes
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: @ROOT@//
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- error_log
refused: it names the root itself



=== TEST 21: the root itself, to a root configured with a trailing slash
--- request
GET /dry?expert=@REFUSED@&query=hi
--- more_headers
X-WS: @ROOT@///
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- error_log
refused: it names the root itself



=== TEST 22: NUL bytes (from $binary_remote_addr)
--- request
GET /binary?expert=@REFUSED@&query=hi
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
refused: it contains a NUL byte



=== TEST 23: a 256-byte name
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers eval
"X-WS: ok/" . 'n' x 256
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
refused: a component is longer than 255 bytes



=== TEST 24: 1025 bytes
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers eval
"X-WS: " . CORE::join '/', ('a' x 255) x 3, 'b' x 254, 'cc'
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
refused: it is too long



=== TEST 25: a symbolic link out of the root
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: link-out
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
refused: a component is a symbolic link or not a directory



=== TEST 26: a path through a symbolic link out of the root
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: link-out/sub/deeper
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
refused: a component is a symbolic link or not a directory



=== TEST 27: an absolute path through a symbolic link
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: @ROOT@/link-out/sub
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- error_log
refused: a component is a symbolic link or not a directory



=== TEST 28: a symbolic link deeper down
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: nest/deep/link/sub
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
refused: a component is a symbolic link or not a directory



=== TEST 29: a symbolic link that stays inside the root
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: link-in/sub
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- error_log
refused: a component is a symbolic link or not a directory



=== TEST 30: a dangling symbolic link (its target is not made)
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: dangling
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
refused: a component is a symbolic link or not a directory



=== TEST 31: a path through a dangling symbolic link
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: dangling/sub
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- error_log
refused: a component is a symbolic link or not a directory



=== TEST 32: a regular file
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: file
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- containers_created: 0
--- error_log
refused: a component is a symbolic link or not a directory



=== TEST 33: a path through a regular file
--- request
GET /ws?expert=@REFUSED@&query=hi
--- more_headers
X-WS: file/sub
--- error_code: 400
--- json_error
error: bad_workspace
--- ws_refused
--- error_log
refused: a component is a symbolic link or not a directory



=== TEST 34: the root is missing: 500, and nothing runs
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



=== TEST 35: the run's /workspace is the directory: the runtime's job lands in it
--- request
GET /noop
--- error_code: 204
--- check: check_mounted
--- timeout: 40
