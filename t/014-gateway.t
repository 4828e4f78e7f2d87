# The LLM gateway: perstack_gateway_zone, perstack_gateway_credentials and
# perstack_gateway, on real containers and a real (internal) Docker network.
#
# The test nginx plays every part of the README's deployment:
#
#   - the gateway, on the host's address in the gateway network
#     ($GwAddr:$GwPort), which admits the credentials of running executions
#     and proxies to
#   - a stand-in model provider on loopback (/provider/ is its root), which
#     serves only /v1/messages, the path the runtime's SDK asks for with
#     ANTHROPIC_BASE_URL ending in /v1, answers 401 unless it gets the real
#     key, and echoes the caller variables the gateway sends it; its access
#     log counts the requests it saw, with their paths;
#   - the executions (/agent), on loopback, whose containers get a
#     credential as ANTHROPIC_API_KEY and the gateway as ANTHROPIC_BASE_URL;
#   - a listener on the host's address in a second, ordinary (not internal)
#     network the test creates, which the containers must not reach.
#
# The test nginx listens on loopback and on those two addresses only (the
# default server too), so that whatever a container reaches besides the
# gateway is a hole in the sandbox, not an artefact of the test.
#
# Two workers (reuseport on the gateway's listen spreads the connections):
# a credential issued by one worker is checked by the other.  A worker
# killed with SIGKILL takes its credentials with it, also when the worker
# started in its place gets its pid (the test makes the kernel hand that
# pid out next, through /proc/sys/kernel/ns_last_pid).
#
# The host's side is bin/perstack-gateway-setup's, run before each block's
# nginx starts, as the README says: the network's settings, the exact
# rules of the iptables and ip6tables chains and their jumps; the same
# rules after running it again (one jump each); nginx refuses to start,
# naming the command with the arguments to run, when the network, a chain,
# a rule or a jump is missing or a rule was added, and a reload with a
# spoilt chain does not take effect until the command has run again;
# firewall=off does not look at the chains; --remove leaves no chain, no
# jump and no network, and touches no network it did not make.
#
# Only loopback and the Docker networks the test makes are ever connected
# to.  The networks (the gateway network, which the command creates, the
# second network and a not-internal network for a configuration error) are
# removed before the run, should a run have left them, and at the end (the
# gateway network with --remove).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use PerstackGateway;
use Test::Nginx::Socket;
use Perstack;
use JSON::PP ();
use Time::HiRes ();

master_on();
workers(2);


# ---- fixtures --------------------------------------------------------------

our $GwNet = 'perstack-test-gateway';
our $GwSubnet = '172.31.241.0/24';
our $GwAddr = '172.31.241.1';

our $OtherNet = 'perstack-test-gw-other';
our $OtherSubnet = '172.31.242.0/24';
our $OtherAddr = '172.31.242.1';

# exists, not internal: the gateway must refuse it
our $OpenNet = 'perstack-test-gw-open';
our $OpenSubnet = '172.31.243.0/24';

# a subnet the gateway network does not have
our $WrongSubnet = '172.31.244.0/24';

our @Networks = ($GwNet, $OtherNet, $OpenNet);

our $Zone = 'gw';

# the provider's key: only nginx has it
our $RealKey = sprintf 'sk-real-%x-%08x%08x', $$, int rand 0xffffffff,
                       int rand 0xffffffff;

# what the provider answers, and the tag's fixed part
our $Answer = sprintf 'the answer is %d', 1000 + int rand 9000;
our $User = sprintf 'user%04x', int rand 0x10000;
our $Tag = "team-$User";

# the ports: the test server's (loopback only), the gateway's, the second
# network's listener
our $LoopPort = $Test::Nginx::Util::ServerPortForClient;
our $GwPort = Perstack::free_port();
our $GwPort2 = Perstack::free_port();
our $OtherPort = Perstack::free_port();

# The default server on loopback only.  (Perstack.pm picked the port; the
# client keeps connecting to 127.0.0.1 on it.)  Test::Nginx derives
# TEST_NGINX_STREAM_PORT from the port by adding 1, which this file does not
# use: that one warning is dropped.
Test::Nginx::Util::server_port("127.0.0.1:$LoopPort");
{
    my $prev = $SIG{__WARN__};
    $SIG{__WARN__} = sub {
        return if $_[0] =~ m{^Argument "127\.0\.0\.1:\d+" isn't numeric }
                           && $_[0] =~ m{Test/Nginx/Util\.pm};
        $prev ? $prev->(@_) : warn @_;
    };
}

$ENV{TEST_NGINX_GW_NET} = $GwNet;
$ENV{TEST_NGINX_GW_SUBNET} = $GwSubnet;
$ENV{TEST_NGINX_GW_ADDR} = $GwAddr;
$ENV{TEST_NGINX_GW_PORT} = $GwPort;
$ENV{TEST_NGINX_GW_PORT2} = $GwPort2;
$ENV{TEST_NGINX_OTHER_ADDR} = $OtherAddr;
$ENV{TEST_NGINX_OTHER_PORT} = $OtherPort;
$ENV{TEST_NGINX_OPEN_NET} = $OpenNet;
$ENV{TEST_NGINX_OPEN_SUBNET} = $OpenSubnet;
$ENV{TEST_NGINX_WRONG_SUBNET} = $WrongSubnet;
$ENV{TEST_NGINX_LOOPBACK_PORT} = $LoopPort;
$ENV{TEST_NGINX_REAL_KEY} = $RealKey;
$ENV{TEST_NGINX_ANSWER} = $Answer;

# The demo image must know the llm and net experts (another run on the same
# engine may have built perstack-demo:latest from an older tree).
{
    open my $fh, '-|', 'docker', 'run', '--rm', '--network', 'none',
         '-e', 'PERSTACK_DEMO_DELAY_MS=0', $Image,
         'perstack', 'run', '--runtime', 'local', '--', 'net', '127.0.0.1:1'
        or die "docker run: $!\n";
    my $out = do { local $/; <$fh> } // '';
    close $fh;

    if ($out !~ /^\{"type":"net",/m) {
        fail("the demo image $Image has the llm and net experts: rebuild it "
             . "(scripts/build-demo-image.sh)");
        exit 1;
    }
}

# leftovers of an earlier run, by these exact names
for my $net (@Networks) {
    remove_network($net) or die "cannot remove the leftover network $net\n";
}

# the gateway network is the command's to create
die "the network $GwNet is still there\n" if network_info($GwNet);

our $NetworksMade = 1;
create_network($OtherNet, $OtherSubnet, $OtherAddr);
create_network($OpenNet, $OpenSubnet, '172.31.243.1');

END {
    if ($NetworksMade) {
        gateway_remove($GwNet);
        remove_network($_) for @Networks;
    }
}


# ---- the configuration -----------------------------------------------------

my $http_config = <<'_EOC_';
    perstack_gateway_zone zone=gw:1m network=$TEST_NGINX_GW_NET subnet=$TEST_NGINX_GW_SUBNET;

    log_format provider '$status $request_uri $http_x_caller';

    # the gateway, on the host's address in the gateway network
    server {
        listen $TEST_NGINX_GW_ADDR:$TEST_NGINX_GW_PORT reuseport;

        location / {
            perstack_gateway zone=gw;

            proxy_pass http://127.0.0.1:$TEST_NGINX_LOOPBACK_PORT/provider/;
            proxy_set_header x-api-key "$TEST_NGINX_REAL_KEY";
            proxy_set_header Authorization "";
            proxy_set_header X-Caller "$perstack_gateway_execution $perstack_gateway_expert $perstack_gateway_job $perstack_gateway_tag";

            add_header X-Gateway-Pid $pid always;
        }
    }

    # the host's address in the second, ordinary network
    server {
        listen $TEST_NGINX_OTHER_ADDR:$TEST_NGINX_OTHER_PORT;

        location / {
            return 200 "the host on the other network\n";
        }
    }
_EOC_

my $config = <<'_EOC_';
    perstack_image $TEST_NGINX_PERSTACK_IMAGE;

    # the stand-in model provider, whose root is /provider/: it serves
    # /v1/messages only
    location /provider/ {
        access_log logs/provider.log provider;
        default_type application/json;
        return 404 '{"error":"not found"}';
    }

    location = /provider/v1/messages {
        access_log logs/provider.log provider;
        default_type application/json;

        if ($http_x_api_key != "$TEST_NGINX_REAL_KEY") {
            return 401 '{"error":"bad key"}';
        }

        return 200 '{"content":[{"type":"text","text":"$TEST_NGINX_ANSWER"}],"caller":"$http_x_caller"}';
    }

    location = /agent {
        perstack_execute;
        perstack_stop_timeout 1s;
        perstack_gateway_credentials zone=gw tag=team-$arg_user;
        perstack_env ANTHROPIC_API_KEY $perstack_gateway_credential;
        perstack_env ANTHROPIC_BASE_URL http://$TEST_NGINX_GW_ADDR:$TEST_NGINX_GW_PORT/v1;
    }

    location = /agent-timeout {
        perstack_execute;
        perstack_timeout 3s;
        perstack_stop_timeout 1s;
        perstack_gateway_credentials zone=gw tag=team-$arg_user;
        perstack_env ANTHROPIC_API_KEY $perstack_gateway_credential;
        perstack_env ANTHROPIC_BASE_URL http://$TEST_NGINX_GW_ADDR:$TEST_NGINX_GW_PORT/v1;
    }

    location = /noop {
        return 204;
    }

    location = /metrics {
        perstack_metrics;
    }
_EOC_

# "--- gateway: two_ports": the gateway listens on a second port too;
# "--- gateway: firewall_off": the zone has firewall=off
my %gateway_variant = (
    two_ports => sub {
        $_[0] =~ s{(listen \$TEST_NGINX_GW_ADDR:\$TEST_NGINX_GW_PORT reuseport;)}
                  {$1\n        listen \$TEST_NGINX_GW_ADDR:\$TEST_NGINX_GW_PORT2 reuseport;}
    },
    firewall_off => sub {
        $_[0] =~ s{(subnet=\$TEST_NGINX_GW_SUBNET)}{$1 firewall=off}
    },
);

add_block_preprocessor(sub {
    my $block = shift;

    prepare_host($block);

    if (defined $block->must_die) {
        # a spoilt host under the test's own configuration
        if (defined $block->host) {
            $block->set_value('http_config', $http_config)
                unless defined $block->http_config;
            $block->set_value('config', $config)
                unless defined $block->config;
        }
        return;
    }

    if (defined $block->gateway) {
        (my $v = $block->gateway) =~ s/\s+//g;
        my $hc = $http_config;
        $gateway_variant{$v}->($hc) or die "no gateway variant $v\n";
        $block->set_value('http_config', $hc);
    }

    $block->set_value('http_config', $http_config)
        unless defined $block->http_config;
    $block->set_value('config', $config) unless defined $block->config;
    # "@USER@" in a request: the user this run's tag is made of
    my $req = $block->request;
    if (defined $req && $req =~ s/\@USER\@/$User/g) {
        $block->set_value('request', $req);
    }

    $block->set_value('request', "GET /noop\n")
        unless defined $block->request;
    $block->set_value('error_code', 204)
        unless defined $block->error_code;
});


# ---- the host, before each block's nginx starts -----------------------------

# The bridge and the chain of the gateway network.
sub gw_chain {
    my $bridge = bridge_of(network_info($GwNet) || { Id => '' });
    return ($bridge, "PERSTACK-$bridge");
}

# Run the command for the gateway network and its @ports, as an operator
# would before nginx starts.
sub setup_gateway {
    my ($name, @ports) = @_;
    my ($rc, $out) = gateway_setup($Zone, $GwNet, $GwSubnet, @ports);
    is($rc, 0, "$name - perstack-gateway-setup --port @ports: exit 0")
        or diag($out);
    return $rc == 0;
}

# What each "--- host: ..." does before nginx starts (default: "setup"),
# and the [emerg] nginx must then log, if any.  The spoilt states are made
# from what the command wrote, each by one iptables call.
my %host = (
    setup => sub { setup_gateway($_[0], $GwPort) },
    two_ports => sub { setup_gateway($_[0], $GwPort, $GwPort2) },
    # as the block before left it
    none => sub { 1 },
    no_network => sub {
        my ($rc, $out) = gateway_remove($GwNet);
        is($rc, 0, "$_[0] - perstack-gateway-setup --remove: exit 0")
            or diag($out);
        ok(!network_info($GwNet), "$_[0] - the network is gone");
        return "the Docker network \"$GwNet\" does not exist: run ";
    },
    no_chain => sub {
        setup_gateway($_[0], $GwPort) or return;
        my ($bridge, $chain) = gw_chain();
        ok(system('iptables', '-w', '-D', 'INPUT', '-i', $bridge, '-j',
                  $chain) == 0
           && system('iptables', '-w', '-F', $chain) == 0
           && system('iptables', '-w', '-X', $chain) == 0,
           "$_[0] - the test removed the iptables chain and its jump");
        return "the iptables chain \"$chain\" for the Docker network "
               . "\"$GwNet\" does not exist: run ";
    },
    rule_missing => sub {
        setup_gateway($_[0], $GwPort) or return;
        my (undef, $chain) = gw_chain();
        ok(system('iptables', '-w', '-D', $chain, '-d', "$GwAddr/32", '-p',
                  'tcp', '-m', 'tcp', '--dport', $GwPort, '-j',
                  'ACCEPT') == 0,
           "$_[0] - the test removed the ACCEPT of port $GwPort");
        return "the iptables chain \"$chain\" must accept TCP to $GwAddr "
               . "on the ports nginx listens on there, then reject the "
               . "rest, and only that: run ";
    },
    rule_added => sub {
        setup_gateway($_[0], $GwPort) or return;
        my (undef, $chain) = gw_chain();
        ok(system('iptables', '-w', '-I', $chain, '1', '-j', 'ACCEPT') == 0,
           "$_[0] - the test added an ACCEPT of everything first");
        return "the iptables chain \"$chain\" must accept TCP to $GwAddr "
               . "on the ports nginx listens on there, then reject the "
               . "rest, and only that: run ";
    },
    reject_last => sub {
        setup_gateway($_[0], $GwPort) or return;
        my (undef, $chain) = gw_chain();
        ok(system('iptables', '-w', '-A', $chain, '-j', 'ACCEPT') == 0,
           "$_[0] - the test added an ACCEPT after the REJECT");
        return "the iptables chain \"$chain\" must accept TCP to $GwAddr "
               . "on the ports nginx listens on there, then reject the "
               . "rest, and only that: run ";
    },
    no_jump => sub {
        setup_gateway($_[0], $GwPort) or return;
        my ($bridge, $chain) = gw_chain();
        ok(system('iptables', '-w', '-D', 'INPUT', '-i', $bridge, '-j',
                  $chain) == 0,
           "$_[0] - the test removed the jump to the iptables chain");
        return "the input from \"$bridge\" does not jump to the iptables "
               . "chain \"$chain\": run ";
    },
    ipv6_open => sub {
        setup_gateway($_[0], $GwPort) or return;
        my (undef, $chain) = gw_chain();
        ok(system('ip6tables', '-w', '-F', $chain) == 0,
           "$_[0] - the test emptied the ip6tables chain");
        return "the ip6tables chain \"$chain\" must reject all input, and "
               . "only that: run ";
    },
    no_ipv6_jump => sub {
        setup_gateway($_[0], $GwPort) or return;
        my ($bridge, $chain) = gw_chain();
        ok(system('ip6tables', '-w', '-D', 'INPUT', '-i', $bridge, '-j',
                  $chain) == 0,
           "$_[0] - the test removed the jump to the ip6tables chain");
        return "the input from \"$bridge\" does not jump to the ip6tables "
               . "chain \"$chain\": run ";
    },
);

# A spoilt state: nginx must die with an [emerg] that says what is wrong
# and names the command with the arguments that make it right (the
# gateway listens on $GwPort alone).
sub prepare_host {
    my ($block) = @_;

    (my $h = $block->host // 'setup') =~ s/\s+//g;
    my $prepare = $host{$h} or die "no host preparation $h\n";
    my $emerg = $prepare->($block->name);

    return if $h =~ /^(?:setup|two_ports|none)\z/;

    my $cmd = setup_command($Zone, $GwNet, $GwSubnet, $GwPort);
    $block->set_value('error_log',
                      [ '[emerg]', "perstack gateway \"$Zone\": $emerg"
                                   . "\"$cmd\" as root before nginx starts" ]);
}


# ---- helpers ---------------------------------------------------------------

# A request to the gateway, from the host.
sub gw_call {
    return gateway_call($GwAddr, $GwPort, @_);
}

# The provider's access log: one "status uri caller" line per request it
# saw (its uri below its root, /provider/).
sub provider_lines {
    my $file = "$Test::Nginx::Util::ServRoot/logs/provider.log";
    open my $fh, '<', $file or return ();
    my @l = <$fh>;
    close $fh;
    chomp @l;
    s{^(\S+) /provider/}{$1 /} for @l;
    return @l;
}

# Wait (bounded) until the provider has seen at least $n requests.
sub wait_provider_lines {
    my ($n, $timeout) = @_;
    my $deadline = Time::HiRes::time() + ($timeout // 10);
    while (1) {
        my @l = provider_lines();
        return @l if @l >= $n || Time::HiRes::time() > $deadline;
        Time::HiRes::sleep(0.05);
    }
}

# Start an "llm hold" run at $path; read until its llmCall.  Returns the
# client, the perstack.execution event's JSON, the llmCall event's JSON
# and the container's inspect object.
sub start_hold {
    my ($name, $path) = @_;

    my $c = open_stream(method => 'GET',
                        path => "$path?expert=llm&query=hold+on&user=$User");

    ok($c->wait_event('llmCall', 30), "$name - the llm run made its call")
        or diag("status " . ($c->{status} // 'none') . ", body: "
                . Perstack::printable($c->{body}));

    my $x = $c->first_event('perstack.execution');
    $x = $x ? $x->{json} : {};
    my $call = $c->first_event('llmCall');
    $call = $call ? $call->{json} : {};

    is($call->{status}, 200, "$name - the call went through the gateway")
        or diag(json_encode($call));

    my $info = container_info($x->{container} // 'none');
    ok($info && ($info->{State}{Status} // '') eq 'running',
       "$name - the container runs");

    return ($c, $x, $call, $info);
}

# Calls with $cred, alternating x-api-key and Bearer, until the worker that
# issued it ($issuer) and another one have both answered (at least $min
# calls, at most $max).  Returns the statuses, the "error" fields (of the
# JSON bodies: undef for the provider's answers) and the pids that
# answered.
sub calls_until_both_workers {
    my ($cred, $issuer, $min, $max) = @_;
    my (@status, @error, %pids);

    for my $i (1 .. $max) {
        my $c = gw_call(key_header($i % 2 ? 'x-api-key' : 'bearer', $cred));
        push @status, $c->{status} // 0;
        my $body = eval { json_decode($c->{body}) };
        push @error, ref $body eq 'HASH' ? $body->{error} : '(not JSON)';
        my $pid = $c->header('X-Gateway-Pid') // '';
        $pids{$pid}++;
        last if $i >= $min && $pids{$issuer}
                && grep({ $_ ne $issuer } keys %pids);
    }

    return (\@status, \@error, \%pids);
}

# After the end of $cred's execution: refused with x-api-key and with
# Bearer (each checked in full), and by both workers; the provider sees
# none of it.
sub check_revoked {
    my ($name, $cred, $issuer) = @_;

    my $before = () = provider_lines();

    for my $how (qw(x-api-key bearer)) {
        my $r = gw_call(key_header($how, $cred));
        check_refused("$name ($how)", $r, 'invalid_credential');
    }

    my ($statuses, $errors, $pids) = calls_until_both_workers($cred, $issuer,
                                                              10, 60);
    my $n = @$statuses;
    is_deeply([ map { "$statuses->[$_] " . ($errors->[$_] // 'undef') }
                0 .. $n - 1 ],
              [ ("401 invalid_credential") x $n ],
              "$name - $n more calls with it (x-api-key and Bearer): all "
              . "401 invalid_credential");
    ok($pids->{$issuer} && grep({ $_ ne $issuer && $_ ne '' } keys %$pids),
       "$name - refused by the issuing worker and by the other")
        or diag("issuer $issuer, answered by: " . join ' ', keys %$pids);

    is(scalar(() = provider_lines()), $before,
       "$name - the provider saw none of the refused calls");
}


# ---- the blocks' checks ----------------------------------------------------

sub check_network_created {
    my ($block) = @_;
    my $name = $block->name;

    my $n = network_info($GwNet);
    ok($n, "$name - the network $GwNet exists") or return;

    my $ipam = ($n->{IPAM}{Config} || [])->[0] || {};

    ok($n->{Internal} && JSON::PP::is_bool($n->{Internal}),
       "$name - it is internal");
    is($n->{Driver}, 'bridge', "$name - a bridge");
    is(scalar @{ $n->{IPAM}{Config} || [] }, 1, "$name - one IPAM config");
    is($ipam->{Subnet}, $GwSubnet, "$name - the configured subnet");
    is($ipam->{Gateway}, $GwAddr, "$name - the host is the first address");
    is(($n->{Options} || {})->{'com.docker.network.bridge.enable_icc'},
       'false', "$name - no traffic between containers (enable_icc false)");
    is(($n->{Labels} || {})->{'io.perstack.managed'}, '1',
       "$name - labelled io.perstack.managed");
    is(($n->{Labels} || {})->{'io.perstack.gateway'}, $Zone,
       "$name - labelled io.perstack.gateway=$Zone");
    ok(!exists(($n->{Labels} || {})->{'io.perstack.test'}),
       "$name - the command made it, not the test");

    # nginx listens on the host's address in it
    my $c = gw_call();
    is($c->{status}, 401, "$name - the gateway answers on $GwAddr:$GwPort");

    # the input from its bridge goes to the module's chain, which admits
    # the gateway's address and port only; over IPv6, nothing
    check_chains($name, bridge_of($n), $GwPort);
}

# The module's chains for $bridge: the IPv4 one admits TCP to the gateway's
# address on @ports and rejects the rest, the IPv6 one rejects everything,
# and all input from the bridge jumps to each, once.
sub check_chains {
    my ($name, $bridge, @ports) = @_;
    my $chain = "PERSTACK-$bridge";

    my @v4 = ("-N $chain",
              (map { "-A $chain -d $GwAddr/32 -p tcp -m tcp --dport $_ "
                     . "-j ACCEPT" } @ports),
              "-A $chain -j REJECT --reject-with icmp-port-unreachable");
    my @v6 = ("-N $chain",
              "-A $chain -j REJECT --reject-with icmp6-port-unreachable");

    for my $fw (['iptables', \@v4], ['ip6tables', \@v6]) {
        my ($prog, $rules) = @$fw;
        my @jumps = grep { / -i \Q$bridge\E / }
                    firewall_rules($prog, 'INPUT');
        is_deeply(\@jumps, ["-A INPUT -i $bridge -j $chain"],
                  "$name - $prog: input from $bridge jumps to $chain, once")
            or diag(join "\n", firewall_rules($prog, 'INPUT'));
        is_deeply([firewall_rules($prog, $chain)], $rules,
                  "$name - $prog: the rules of $chain")
            or diag(join "\n", firewall_rules($prog, $chain));
    }
}

sub check_llm {
    my ($block, $s, $res) = @_;
    my $name = $block->name;

    my ($x) = grep { ($_->{type} // '') eq 'perstack.execution' }
              @{ $s->{events} };
    $x = $x ? $x->{json} : {};
    my ($call) = grep { ($_->{type} // '') eq 'llmCall' } @{ $s->{events} };
    $call = $call ? $call->{json} : {};

    is($call->{status}, 200, "$name - llmCall status 200")
        or diag(json_encode($call));

    my $body = eval { json_decode($call->{body} // '') };
    ok(ref $body eq 'HASH', "$name - the provider's answer is JSON")
        or diag(Perstack::printable($call->{body}));
    $body = {} unless ref $body eq 'HASH';

    is((($body->{content} || [])->[0] || {})->{text}, $Answer,
       "$name - the provider's text");

    my $xid = $res->header('X-Perstack-Execution') // '';
    is($x->{execution}, $xid, "$name - (the stream's execution id)");
    is($body->{caller}, "$xid llm $x->{job} $Tag",
       "$name - the provider saw the caller: execution, expert, job, tag");

    # the provider saw the real key (else 401), and one request only
    my @l = wait_provider_lines(1);
    is_deeply(\@l, ["200 /v1/messages $xid llm $x->{job} $Tag"],
              "$name - the provider saw one request for /v1/messages, with "
              . "the real key");

    unlike($res->content, qr/\Q$RealKey\E/,
           "$name - the real key is nowhere in the stream");
}

sub check_probe {
    my ($block, $s, $res) = @_;
    my $name = $block->name;

    my ($probe) = grep { ($_->{type} // '') eq 'probe' } @{ $s->{events} };
    my $data = $probe ? $probe->{data} : '';
    $probe = $probe ? $probe->{json} : {};
    my $env = $probe->{env} || {};

    like($env->{ANTHROPIC_API_KEY} // '', $CredentialRe,
         "$name - ANTHROPIC_API_KEY is a gateway credential");
    is($env->{ANTHROPIC_BASE_URL}, "http://$GwAddr:$GwPort/v1",
       "$name - ANTHROPIC_BASE_URL is the gateway");
    ok(length $data && index($data, $RealKey) < 0,
       "$name - the real key is nowhere in the probe event");
    unlike($res->content, qr/\Q$RealKey\E/,
           "$name - ... nor in the stream");
    is_deeply([ sort @{ $probe->{interfaces} || [] } ], ['eth0', 'lo'],
              "$name - one interface besides lo");

    # the run is over: its credential is worth nothing now
    my $cred = $env->{ANTHROPIC_API_KEY} // '';
    my $c = gw_call(key_header('x-api-key', $cred));
    check_refused("$name (the ended run's credential)", $c,
                  'invalid_credential');

    # another run gets another credential
    my $c2 = http_request(method => 'GET',
                          path => "/agent?expert=probe&query=/&user=$User",
                          timeout => 30);
    my $r = check_run("$name (second probe)", $c2, expert => 'probe',
                      outcome => 'completed', exit_code => 0);
    my $cred2 = ((($r->{by_type}{probe} || [])->[0] || {})->{env} || {})
                ->{ANTHROPIC_API_KEY} // '';
    like($cred2, $CredentialRe, "$name - the second run's credential");
    isnt($cred2, $cred, "$name - each execution has its own credential");

    is(scalar provider_lines(), 0, "$name - the provider saw nothing");
}

sub check_hold_close {
    my ($block) = @_;
    my $name = $block->name;

    my ($c, $x, $call, $info) = start_hold($name, '/agent');
    my $id = $x->{container} // '';
    my %env = env_of($info);
    my $cred = $env{ANTHROPIC_API_KEY} // '';

    # the container, as the Engine API has it

    is(($info->{HostConfig} || {})->{NetworkMode}, $GwNet,
       "$name - HostConfig.NetworkMode is the gateway network");
    is_deeply(($info->{HostConfig} || {})->{Dns}, [$GwAddr],
              "$name - HostConfig.Dns is the gateway's address");
    is_deeply([ sort keys %{ ($info->{NetworkSettings} || {})->{Networks}
                             || {} } ], [$GwNet],
              "$name - on the gateway network and no other");

    like($cred, $CredentialRe,
         "$name - Config.Env's ANTHROPIC_API_KEY is a credential");
    my $all_env = join "\n", @{ ($info->{Config} || {})->{Env} || [] };
    ok(index($all_env, $RealKey) < 0,
       "$name - the real key is not in Config.Env");
    ok(index(json_encode($info), $RealKey) < 0,
       "$name - nor anywhere in the container's inspect object");

    # the container's filesystem: an export of it (a tar)

    my ($st, $tar) = Perstack::docker_api('GET', "/containers/$id/export",
                                          timeout => 60);
    is($st, 200, "$name - the container's filesystem exported");
    like($tar, qr{usr/local/bin/perstack\0},
         "$name - the export is the container's filesystem");
    ok(index($tar, $RealKey) < 0,
       "$name - the real key is not in the container's filesystem");

    # the stolen credential works while the run runs, on either worker

    my $issuer = ($info->{Config}{Labels} || {})->{'io.perstack.pid'} // '';
    my (undef, @workers) = nginx_pids();
    is(scalar @workers, 2, "$name - two workers");
    ok(grep({ $_ eq $issuer } @workers),
       "$name - a worker issued the credential");

    my $before = () = provider_lines();

    my ($statuses, undef, $pids) = calls_until_both_workers($cred, $issuer,
                                                             10, 60);
    my $n = @$statuses;
    is_deeply($statuses, [ (200) x $n ],
              "$name - $n calls with the credential (x-api-key and "
              . "Bearer): all 200");
    ok($pids->{$issuer} && grep({ $_ ne $issuer && $_ ne '' } keys %$pids),
       "$name - admitted by the issuing worker and by the other")
        or diag("issuer $issuer, answered by: " . join ' ', keys %$pids);

    my @l = wait_provider_lines($before + $n);
    is_deeply([ @l[$before .. $#l] ],
              [ ("200 /v1/messages $x->{execution} llm $x->{job} $Tag")
                x $n ],
              "$name - the provider saw each, with the real key and the "
              . "execution's caller variables");

    # the client goes away: the run ends, the credential with it

    $c->close;
    ok(defined wait_container_gone($id, 20),
       "$name - the container is gone after the client closed");

    check_revoked("$name (after the end)", $cred, $issuer);
}


sub check_hold_timeout {
    my ($block) = @_;
    my $name = $block->name;

    my ($c, $x, $call, $info) = start_hold($name, '/agent-timeout');
    my %env = env_of($info);
    my $cred = $env{ANTHROPIC_API_KEY} // '';
    like($cred, $CredentialRe, "$name - the credential, from Config.Env");

    for my $how (qw(x-api-key bearer)) {
        my $r = gw_call(key_header($how, $cred));
        is($r->{status}, 200, "$name - with $how while it runs: 200");
        my $body = eval { json_decode($r->{body}) } || {};
        is($body->{caller}, "$x->{execution} llm $x->{job} $Tag",
           "$name - with $how: the caller variables");
    }

    # perstack_timeout ends the run; read the stream to its end

    ok($c->drain(30), "$name - the stream ends");
    $c->close;
    check_run($name, $c, expert => 'llm', outcome => 'timeout');

    # revoked before perstack.end was sent: refused at once
    my $issuer = ($info->{Config}{Labels} || {})->{'io.perstack.pid'} // '';
    check_revoked("$name (after perstack.end)", $cred, $issuer);
}


sub check_refusals {
    my ($block) = @_;
    my $name = $block->name;

    my $m0 = metrics();
    my $req = 'perstack_gateway_requests_total{zone="gw",result=';

    my $c = gw_call();
    check_refused("$name (no credential)", $c, 'credential_required');

    $c = gw_call('Authorization' => 'Basic dXNlcjpwYXNz');
    check_refused("$name (Authorization: Basic)", $c, 'credential_required');

    $c = gw_call('x-api-key' => $RealKey);
    check_refused("$name (the real key itself)", $c, 'invalid_credential');

    for my $how (qw(x-api-key bearer)) {
        my $r = gw_call(key_header($how, random_credential()));
        check_refused("$name (a random pgw_ credential, $how)", $r,
                      'invalid_credential');
    }

    is(scalar provider_lines(), 0, "$name - the provider saw nothing");

    # (the provider's log counts: a request that does get through shows)
    my $h = open_stream(method => 'GET',
                        path => "/agent?expert=llm&query=hold+on"
                                . "&user=$User");
    ok($h->wait_event('llmCall', 30), "$name - an llm run made its call");
    my @l = wait_provider_lines(1);
    is(scalar @l, 1, "$name - the provider saw that one call");
    my $x = $h->first_event('perstack.execution');
    $h->close;
    ok(defined wait_container_gone($x ? $x->{json}{container} : 'none', 20),
       "$name - the llm run's container is gone");

    # perstack_metrics counted each of them, in whichever worker
    my $m = metrics();
    my %delta = ("${req}\"credential_required\"}" => 2,
                 "${req}\"invalid_credential\"}" => 3,
                 "${req}\"accepted\"}" => 1,
                 'perstack_gateway_credentials_issued_total{zone="gw"}' => 1);

    for my $k (sort keys %delta) {
        is(($m->{$k} // -1) - ($m0->{$k} // 0), $delta{$k},
           "$name - perstack_metrics: $k +$delta{$k}");
    }

    ok(poll(10, sub {
        (metrics()->{'perstack_gateway_credentials{zone="gw"}'}
         // -1) == 0
    }), "$name - perstack_metrics: no credential live once the run ended");
}

sub check_net {
    my ($block) = @_;
    my $name = $block->name;

    # from the host, both listeners answer
    my $c = gw_call();
    is($c->{status}, 401, "$name - from the host, the gateway answers");

    {
        local $Test::Nginx::Util::ServerAddr = $OtherAddr;
        local $Test::Nginx::Util::ServerPortForClient = $OtherPort;
        $c = http_request(method => 'GET', path => '/', timeout => 10);
    }
    is($c->{status}, 200, "$name - from the host, nginx answers on "
       . "$OtherAddr:$OtherPort");
    is($c->{body}, "the host on the other network\n",
       "$name - ... the second network's listener");

    # from the container

    my %want = (
        "$GwAddr:$GwPort" => 1,              # the gateway
        # the host's address in the other network, where nginx listens (as
        # just proven): the container gets there only if the host accepts
        # what the gateway network sends to its other addresses
        "$OtherAddr:$OtherPort" => 0,
        "127.0.0.1:$LoopPort" => 0,          # its own loopback
        # the test server's port, at the gateway's address: it listens on
        # loopback only
        "$GwAddr:$LoopPort" => 0,
    );
    my @targets = sort keys %want;

    my $run = http_request(method => 'GET',
                           path => "/agent?expert=net&user=$User&query="
                                   . join('+', @targets),
                           timeout => 60);
    my $r = check_run($name, $run, expert => 'net', outcome => 'completed',
                      exit_code => 0);
    is_deeply($r->{types}, [qw(initializeRuntime skillConnected startRun net
                               completeRun skillDisconnected)],
              "$name - the events") or diag("got: @{ $r->{types} }");

    my $net = (($r->{by_type}{net} || [])->[0] || {});
    my %got = map { $_->{target} => $_ } @{ $net->{results} || [] };

    is_deeply([ sort keys %got ], \@targets, "$name - every target tried");

    for my $t (@targets) {
        my $g = $got{$t} || {};
        my $ok = JSON::PP::is_bool($g->{connected})
                 && ($g->{connected} ? 1 : 0) == $want{$t};
        ok($ok, "$name - $t: " . ($want{$t} ? 'connected'
                                            : 'not connected'))
            or diag(json_encode($g));
    }

    is($got{"127.0.0.1:$LoopPort"}{error}, 'ECONNREFUSED',
       "$name - 127.0.0.1 is the container's own loopback");
}

# ---- workers that die ------------------------------------------------------

# The worker processes: { pid => start time }.
sub worker_processes {
    my (undef, @w) = nginx_pids();
    return { map { $_ => proc_start_time($_) // '' } @w };
}

# Wait (bounded) until the workers are two and none of the processes in
# %$old (from worker_processes: a pid may come back as another process,
# one that started at another time).  Returns the workers' pids.
sub wait_workers_replaced {
    my ($timeout, $old) = @_;
    my $deadline = Time::HiRes::time() + $timeout;

    while (1) {
        my $now = worker_processes();
        my @w = sort keys %$now;
        # (a process on its way out may have no stat to read any more)
        return @w if @w == 2
                     && !grep { $now->{$_} eq ''
                                || ($old->{$_} // '-') eq $now->{$_} } @w;
        return () if Time::HiRes::time() > $deadline;
        Time::HiRes::sleep(0.05);
    }
}

# Calls with $cred until both workers @workers answered (at most $max):
# each must be 401 invalid_credential; the provider sees none of them.
sub check_refused_by_both {
    my ($name, $cred, $max, @workers) = @_;
    my (@got, %pids);

    my $before = () = provider_lines();

    for my $i (1 .. $max) {
        my $c = gw_call(key_header($i % 2 ? 'x-api-key' : 'bearer', $cred));
        my $body = eval { json_decode($c->{body}) };
        push @got, ($c->{status} // 0) . ' '
                   . (ref $body eq 'HASH' ? $body->{error} // '' : '');
        $pids{ $c->header('X-Gateway-Pid') // '' }++;
        last if !grep { !$pids{$_} } @workers;
    }

    is_deeply(\@got, [ ('401 invalid_credential') x @got ],
              "$name - " . @got . " calls with it: all 401 "
              . "invalid_credential");
    ok(!grep({ !$pids{$_} } @workers),
       "$name - refused by each worker (@workers)")
        or diag("answered by: " . join ' ', keys %pids);
    is(scalar(() = provider_lines()), $before,
       "$name - the provider saw none of them");
}

# The error log's alerts are only the deaths of the workers @pids.
sub check_only_kills {
    my ($name, @pids) = @_;
    my $killed = join '|', @pids;
    my @alerts = grep { /\[alert\]/
                        && !/worker process (?:$killed) exited on signal 9/ }
                 split /\n/, error_log_text();
    is(scalar @alerts, 0, "$name - no [alert] but the killed workers'")
        or diag(join "\n", @alerts);
}

# A hold run's credential and its issuer, which must work at first.
sub held_credential {
    my ($name) = @_;

    my ($c, $x, $call, $info) = start_hold($name, '/agent');
    my %env = env_of($info);
    my $cred = $env{ANTHROPIC_API_KEY} // '';
    my $issuer = ($info->{Config}{Labels} || {})->{'io.perstack.pid'} // '';

    my $r = gw_call(key_header('x-api-key', $cred));
    is($r->{status}, 200, "$name - the credential works while it runs");

    return ($c, $cred, $issuer);
}

sub check_worker_killed {
    my ($block) = @_;
    my $name = $block->name;

    my ($c, $cred, $issuer) = held_credential($name);
    my $old = { $issuer => proc_start_time($issuer) // '' };

    kill 'KILL', $issuer;
    $c->close;

    my @now = wait_workers_replaced(10, $old);
    Perstack::note_pids();
    is(scalar @now, 2, "$name - the master started a worker in its place")
        or return;

    check_refused_by_both("$name (the killed worker's credential)", $cred,
                          60, @now);
    check_only_kills($name, $issuer);
}

# The pid of a killed worker, taken by the worker the master starts in its
# place: Linux hands out the pid after the one in ns_last_pid, so the test
# writes the issuer's pid minus one there before it kills the issuer.
# Another process of this host may fork first and take the pid: then the
# test tries again, with a new run.
sub check_pid_reused {
    my ($block) = @_;
    my $name = $block->name;
    my $last = '/proc/sys/kernel/ns_last_pid';

    my @killed;

    for my $try (1 .. 5) {
        my ($c, $cred, $issuer) = held_credential("$name (try $try)");
        push @killed, $issuer;
        my $t0 = proc_start_time($issuer) // '';

        open my $fh, '>', $last or do {
            diag("cannot write $last: $!");
            $c->close;
            return;
        };
        print $fh $issuer - 1;
        close $fh;

        kill 'KILL', $issuer;
        $c->close;

        my @now = wait_workers_replaced(10, { $issuer => $t0 });
        Perstack::note_pids();

        # the new worker has the issuer's pid, not the same process
        @now = () if @now == 2 && !grep { $_ == $issuer } @now;

        # the killed worker's container is the new worker's to reap
        ok(!@{ wait_no_managed(20) }, "$name (try $try) - no container "
           . "left");

        next unless @now;

        my $t1 = proc_start_time($issuer) // '';
        isnt($t1, $t0, "$name - pid $issuer is another worker now: started "
             . "at $t1, not $t0");

        check_refused_by_both("$name (the dead worker's credential)",
                              $cred, 60, @now);
        check_only_kills($name, @killed);
        return;
    }

    check_only_kills($name, @killed);
    diag("$name: no worker got a killed worker's pid in five tries");
}


# ---- the chains across reloads ---------------------------------------------

# The number of lines of the error log.
sub error_log_lines {
    return scalar(() = split /\n/, error_log_text());
}

# Wait (bounded) until the error log, past its first $skip lines, has a
# line that matches $re.
sub wait_error_log {
    my ($skip, $re, $timeout) = @_;

    return poll($timeout, sub {
        my @l = split /\n/, error_log_text();
        return scalar grep { /$re/ } @l[$skip .. $#l];
    }) ? 1 : 0;
}

# nginx only reads the chains: spoilt, a reload is refused and the old
# workers keep serving; the command makes them right again, and the
# reload then takes effect.
sub check_reload_rewrites {
    my ($block) = @_;
    my $name = $block->name;

    my ($bridge, $chain) = gw_chain();

    check_chains("$name (at start)", $bridge, $GwPort, $GwPort2);

    ok(system('iptables', '-w', '-F', $chain) == 0
       && system('iptables', '-w', '-A', $chain, '-j', 'ACCEPT') == 0
       && system('ip6tables', '-w', '-F', $chain) == 0
       && system('ip6tables', '-w', '-D', 'INPUT', '-i', $bridge, '-j',
                 $chain) == 0,
       "$name - the test spoilt both chains and the IPv6 jump") or return;

    my ($master) = nginx_pids();
    my $old = worker_processes();
    my $skip = error_log_lines();

    kill 'HUP', $master;

    my $cmd = setup_command($Zone, $GwNet, $GwSubnet, $GwPort, $GwPort2);
    ok(wait_error_log($skip, qr/\[emerg\].*\Q"$cmd" as root\E/, 20),
       "$name - the reload is refused with an [emerg] that names "
       . "\"$cmd\"");
    is_deeply(worker_processes(), $old,
              "$name - the old workers still run");
    is(gw_call()->{status}, 401, "$name - and the gateway still answers");

    # (nginx wrote nothing)
    is_deeply([firewall_rules('iptables', $chain)],
              ["-N $chain", "-A $chain -j ACCEPT"],
              "$name - the spoilt iptables chain is as the test left it");

    setup_gateway($name, $GwPort, $GwPort2) or return;
    check_chains("$name (after the command)", $bridge, $GwPort, $GwPort2);

    kill 'HUP', $master;
    is(scalar(wait_workers_replaced(20, $old)), 2,
       "$name - reloaded: new workers");

    check_chains("$name (after the reload)", $bridge, $GwPort, $GwPort2);
}

# Running the command again changes nothing: the same network, the same
# rules, one jump each.
sub check_idempotent {
    my ($block) = @_;
    my $name = $block->name;

    my ($bridge, $chain) = gw_chain();
    my $id = network_info($GwNet)->{Id};

    # the chain, and the rules of INPUT for the bridge
    my $rules = sub {
        my ($prog) = @_;
        return [ firewall_rules($prog, $chain),
                 grep { / -i \Q$bridge\E / } firewall_rules($prog, 'INPUT') ];
    };
    my %before = map { $_ => $rules->($_) } qw(iptables ip6tables);

    setup_gateway("$name (again)", $GwPort) or return;
    setup_gateway("$name (and again)", $GwPort) or return;

    is(network_info($GwNet)->{Id}, $id, "$name - the same network");

    for my $prog (qw(iptables ip6tables)) {
        is_deeply($rules->($prog), $before{$prog},
                  "$name - $prog: the chain and the jump as they were");
    }

    check_chains($name, $bridge, $GwPort);

    # nginx -t reads them as they are, and writes nothing; its [emerg]
    # below may also reach this block's error.log, which is why the
    # block expects no [alert] or [crit] only
    my $conf = "$Test::Nginx::Util::ServRoot/conf/nginx.conf";
    my $t = `$Test::Nginx::Util::NginxBinary -t -p $Test::Nginx::Util::ServRoot/ -c $conf 2>&1`;
    is($?, 0, "$name - nginx -t: ok") or diag($t);

    ok(system('iptables', '-w', '-A', $chain, '-j', 'ACCEPT') == 0,
       "$name - the test added an ACCEPT after the REJECT");
    $t = `$Test::Nginx::Util::NginxBinary -t -p $Test::Nginx::Util::ServRoot/ -c $conf 2>&1`;
    isnt($?, 0, "$name - nginx -t: fails with the added rule");
    my $cmd = setup_command($Zone, $GwNet, $GwSubnet, $GwPort);
    like($t, qr/\[emerg\].*\Q"$cmd" as root before nginx starts\E/,
         "$name - nginx -t: an [emerg] that names \"$cmd\"");
    is_deeply([firewall_rules('iptables', $chain)],
              ["-N $chain",
               "-A $chain -d $GwAddr/32 -p tcp -m tcp --dport $GwPort "
               . "-j ACCEPT",
               "-A $chain -j REJECT --reject-with icmp-port-unreachable",
               "-A $chain -j ACCEPT"],
              "$name - nginx -t left the chain as the test spoilt it");

    setup_gateway("$name (to mend it)", $GwPort) or return;
    check_chains("$name (mended)", $bridge, $GwPort);
}

# --remove: no jump, no chain, no network; again, nothing to do; a network
# the command did not make stays.
sub check_remove {
    my ($block) = @_;
    my $name = $block->name;

    my ($bridge, $chain) = gw_chain();
    ok(network_info($GwNet), "$name - the network is there first");

    my ($rc, $out) = gateway_remove($GwNet);
    is($rc, 0, "$name - --remove: exit 0") or diag($out);

    ok(!network_info($GwNet), "$name - no network $GwNet");

    for my $prog (qw(iptables ip6tables)) {
        is_deeply([firewall_rules($prog, $chain)], [],
                  "$name - $prog: no chain $chain");
        is_deeply([ grep { / -i \Q$bridge\E / }
                    firewall_rules($prog, 'INPUT') ], [],
                  "$name - $prog: no jump for $bridge");
    }

    ($rc, $out) = gateway_remove($GwNet);
    is($rc, 0, "$name - --remove again: exit 0, nothing to do") or diag($out);

    my $other = network_info($OtherNet);
    ($rc, $out) = gateway_remove($OtherNet);
    is($rc, 3, "$name - --remove of a network it did not make: exit 3")
        or diag($out);
    like($out, qr/not labelled io\.perstack\.managed=1/,
         "$name - ... and it says why");
    is((network_info($OtherNet) || {})->{Id}, $other->{Id},
       "$name - that network stays");
}

# Started with one gateway port, the chains keep the two of the block
# before: nginx did not even look at them.
sub check_firewall_off {
    my ($block) = @_;
    check_chains($block->name, bridge_of(network_info($GwNet)), $GwPort,
                 $GwPort2);
}

run_tests();

__DATA__

=== TEST 1: perstack-gateway-setup creates the gateway network: internal, the subnet, no ICC, labelled; and the chains
--- check: check_network_created



=== TEST 2: llm through the gateway: the provider's answer, the real key at the provider, the caller variables
--- request
GET /agent?expert=llm&query=what+is+the+answer&user=@USER@
--- error_code: 200
--- stream: sse
--- expert: llm
--- types: initializeRuntime skillConnected startRun startGeneration llmCall completeRun skillDisconnected
--- end
outcome: completed
exit_code: 0
--- check: check_llm



=== TEST 3: probe: the container's key is a credential, never the real key; one per execution
--- request
GET /agent?expert=probe&query=/&user=@USER@
--- error_code: 200
--- stream: sse
--- expert: probe
--- types: initializeRuntime skillConnected startRun probe completeRun skillDisconnected
--- end
outcome: completed
--- check: check_probe



=== TEST 4: llm hold: no real key in the container; a stolen credential works on both workers until the client closes
--- check: check_hold_close



=== TEST 5: llm hold, perstack_timeout 3s: the credential works until perstack.end
--- check: check_hold_timeout



=== TEST 6: no credential, a random one, the real key: 401 with WWW-Authenticate, the provider sees nothing
--- check: check_refusals



=== TEST 7: net: the container reaches the gateway and nothing else
--- check: check_net



=== TEST 8: a worker killed while its run holds a credential: refused at once, by the worker in its place and by the other
--- check: check_worker_killed
--- no_error_log
[crit]
[emerg]



=== TEST 9: a killed worker's pid given to the worker in its place: the dead worker's credential is refused
--- check: check_pid_reused
--- no_error_log
[crit]
[emerg]



=== TEST 10: two ports on the gateway's address: the chains admit both; spoilt, a reload is refused until the command has run again
--- gateway: two_ports
--- host: two_ports
--- check: check_reload_rewrites
--- no_error_log
[alert]
[crit]



=== TEST 11: firewall=off: the chains are left as they were, and a warning says so
--- gateway: firewall_off
--- host: none
--- check: check_firewall_off
--- error_log
with "firewall=off", the containers of the network "perstack-test-gateway" reach every address of this host: filter the IPv4 and IPv6 input



=== TEST 12: the network exists but is not internal
--- http_config
    perstack_gateway_zone zone=open:1m network=$TEST_NGINX_OPEN_NET subnet=$TEST_NGINX_OPEN_SUBNET;
--- config
    location = /noop { return 204; }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
the Docker network "perstack-test-gw-open" exists but is not internal



=== TEST 13: the network exists without the subnet
--- http_config
    perstack_gateway_zone zone=gw:1m network=$TEST_NGINX_GW_NET subnet=$TEST_NGINX_WRONG_SUBNET;
--- config
    location = /noop { return 204; }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
the Docker network "perstack-test-gateway" exists without the subnet 172.31.244.0/24



=== TEST 14: the Docker Engine cannot be reached
--- http_config
    perstack_gateway_zone zone=gw:1m network=$TEST_NGINX_GW_NET subnet=$TEST_NGINX_GW_SUBNET docker=unix:/nonexistent/docker.sock;
--- config
    location = /noop { return 204; }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
cannot reach the Docker Engine at "unix:/nonexistent/docker.sock"



=== TEST 15: perstack_network none with perstack_gateway_credentials
--- http_config
    perstack_gateway_zone zone=gw:1m network=$TEST_NGINX_GW_NET subnet=$TEST_NGINX_GW_SUBNET;
--- config
    location = /agent {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_network none;
        perstack_gateway_credentials zone=gw;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_network none" conflicts with "perstack_gateway_credentials"



=== TEST 16: perstack_gateway and perstack_execute in one location
--- http_config
    perstack_gateway_zone zone=gw:1m network=$TEST_NGINX_GW_NET subnet=$TEST_NGINX_GW_SUBNET;
--- config
    location = /agent {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_gateway zone=gw;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_gateway" and "perstack_execute" cannot share a location



=== TEST 17: perstack_gateway with an unknown zone
--- http_config
    perstack_gateway_zone zone=gw:1m network=$TEST_NGINX_GW_NET subnet=$TEST_NGINX_GW_SUBNET;
--- config
    location / {
        perstack_gateway zone=nosuch;
        return 204;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
unknown perstack gateway zone "nosuch"



=== TEST 18: perstack_gateway_credentials with an unknown zone
--- http_config
    perstack_gateway_zone zone=gw:1m network=$TEST_NGINX_GW_NET subnet=$TEST_NGINX_GW_SUBNET;
--- config
    location = /agent {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_gateway_credentials zone=nosuch;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
unknown perstack gateway zone "nosuch"



=== TEST 19: the command again, twice: the same network, the same rules, one jump each; nginx -t only reads
--- check: check_idempotent
--- no_error_log
[alert]
[crit]



=== TEST 20: no network: nginx refuses to start and names the command
--- host: no_network
--- must_die
--- suppress_stderr



=== TEST 21: no iptables chain: nginx refuses to start and names the command
--- host: no_chain
--- must_die
--- suppress_stderr



=== TEST 22: the ACCEPT of the gateway's port is missing: nginx refuses to start
--- host: rule_missing
--- must_die
--- suppress_stderr



=== TEST 23: an ACCEPT of everything added first: nginx refuses to start
--- host: rule_added
--- must_die
--- suppress_stderr



=== TEST 24: a rule added after the REJECT: nginx refuses to start
--- host: reject_last
--- must_die
--- suppress_stderr



=== TEST 25: no jump from INPUT to the iptables chain: nginx refuses to start
--- host: no_jump
--- must_die
--- suppress_stderr



=== TEST 26: the ip6tables chain emptied: nginx refuses to start
--- host: ipv6_open
--- must_die
--- suppress_stderr



=== TEST 27: no jump from INPUT to the ip6tables chain: nginx refuses to start
--- host: no_ipv6_jump
--- must_die
--- suppress_stderr



=== TEST 28: --remove: no chain, no jump, no network; a network it did not make stays
--- http_config
--- config
    location = /noop { return 204; }
--- host: none
--- check: check_remove
