# Hostile JSON (issue #9, finding 1): the module builds trees of text that
# others wrote: the engine's answers, the container's events.  yajl's tree
# parser takes comments, and the depth scan run before it did not know
# them: {"a":/*"*/[[[...]]]/*"*/} looked one level deep, and yajl built,
# and freed, a tree two million levels deep, recursively, and the worker
# crashed.  Every such text now goes through one tree builder, bounded as
# it builds, with no comments.  Here each case must get its normal answer,
# and no worker may die ("exited on signal").
#
# The engine is t/lib/FaultProxy.pm in front of the real one, answering
# the reaper's container list (read 500 ms after a worker starts, up to
# 4 MiB) with what the block says.
#
#    1  a container list whose labels nest 2 million arrays between
#       comments holding quotes
#    2  a malformed container list of nearly 4 MiB, a million and more
#       empty arrays
#    3  an event line with the depth between comments (the demo's
#       "deep c400000")

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;
use Perstack;
use FaultProxy;
use Time::HiRes ();

# a master that outlives a crashed worker, and says so in the log
master_on();
workers(1);

# not in the server root: Test::Nginx empties and removes it between blocks
our $ProxyDir = make_dir('proxy');
our $ProxySock = "$ProxyDir/docker.sock";
$ENV{TEST_NGINX_JSON_SOCK} = $ProxySock;

our $Proxy = FaultProxy->start(listen => $ProxySock,
                               upstream => $Perstack::DockerSock);

END {
    local $?;
    $Proxy->stop if $Proxy;
}

my $config = <<'_EOC_';
    perstack_docker unix:$TEST_NGINX_JSON_SOCK;
    perstack_image $TEST_NGINX_PERSTACK_IMAGE;

    location = /run {
        perstack_execute;
    }

    location = /static {
        return 200 "static\n";
    }
_EOC_

my $deep = 2_000_000;

# the container lists, by name: valid JSON but for the comments, or not
my %lists = (
    deep => '[{"Id":"0123456789ab","Labels":/*"*/' . ('[' x $deep)
            . (']' x $deep) . '/*"*/}]',
    wide => '[' . join(',', ('[]') x 1_300_000) . ']',
);

# the answer is set before the block's nginx starts
add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $config) unless defined $block->config;
    default_request($block, '/run');

    my $list = $block->container_list;
    $Proxy->rules($list ? ['answer', '^GET /containers/json',
                           "200 $lists{$list}"]
                        : ());
});


sub no_crash {
    my ($name) = @_;
    my @crashes = error_lines(qr/exited on signal/);
    is(scalar @crashes, 0, "$name - no worker died")
        or diag(join "\n", @crashes);
}

# ---- flows -------------------------------------------------------------------

# The reaper asked for the list, was answered $list, and said it could not
# read it; the worker lives on.
sub check_list {
    my ($block) = @_;
    my $name = $block->name;

    ok($Proxy->wait_log(qr{^GET /containers/json\S* -> answer$}, 10),
       "$name - the reaper asked for the container list")
        or diag(join ' | ', $Proxy->log_lines);

    ok(wait_error_line(qr/the reaper could not read the container list/, 10),
       "$name - the reaper could not read it");

    static_ok($name);
    no_crash($name);
}

sub check_deep_event {
    my ($block) = @_;
    my $name = $block->name;

    # not JSON: the line is the container's text, and no event ended the
    # run, which the closing event says
    my $c = run_get('/run?expert=deep&query=c400000');
    my $r = check_run($name, $c, expert => 'deep', continued => 0,
                      outcome => 'failed', exit_code => 0);
    is($r->{end}{message}, 'the runtime exited without ending its run',
       "$name - perstack.end.message");

    my @text = map { $_->{json}{text} // '' }
               grep { ($_->{type} // '') eq 'perstack.stdout' } $c->events;
    ok((grep { /"pendingToolCalls":\/\*"\*\/\[\[\[/ } @text),
       "$name - the line came as the container's text")
        or diag("events: " . join ' ', map { $_->{type} // '?' } $c->events);
    ok(!grep({ $_ eq 'stopRunByInteractiveTool' } @{ $r->{types} }),
       "$name - not as an event");

    no_crash($name);
}

run_tests();

__DATA__

=== TEST 1: a container list nesting 2 million arrays between comments: refused, no crash
--- container_list: deep
--- check: check_list
--- timeout: 30



=== TEST 2: a malformed container list of a million empty arrays: refused, no crash
--- container_list: wide
--- check: check_list
--- timeout: 30



=== TEST 3: an event line nesting 400000 arrays between comments: the container's text, no crash
--- check: check_deep_event
--- timeout: 60
