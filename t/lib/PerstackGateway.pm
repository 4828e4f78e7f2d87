package PerstackGateway;

# The Docker networks of the LLM gateway's tests (t/014, t/019), and the
# firewall chains bin/perstack-gateway-setup writes for them.
#
#   gateway_setup(ZONE, NET, SUBNET, PORT...)
#                                    runs bin/perstack-gateway-setup, as
#                                    the README says; returns its exit
#                                    status and its output (stdout and
#                                    stderr)
#   gateway_remove(NET)              the same, with --remove
#   setup_command(ZONE, NET, SUBNET, PORT...)
#                                    the command line nginx must name
#                                    when the network or a chain is not as
#                                    required
#   network_info(NAME)               the Engine's description, or undef
#   create_network(NAME, SUBNET, GW) an ordinary (not internal) network,
#                                    labelled io.perstack.test
#   remove_network(NAME)             the network, and the gateway's
#                                    chains for its bridge (iptables and
#                                    ip6tables), whoever made it: for
#                                    what an earlier run left; true when
#                                    it is gone
#   firewall_rules(PROG, CHAIN)      "PROG -S CHAIN", one rule a line; ()
#                                    when the chain does not exist
#   bridge_of(INFO)                  the host's interface of a network
#
#   gateway_call(ADDR, PORT, HEADERS...)
#                                    a model call, as the runtime makes
#                                    it, to a gateway, from the host
#   key_header(HOW, CRED)            the credential as an SDK sends it:
#                                    'bearer' or 'x-api-key'
#   random_credential()              of the right form, and no execution's
#   $CredentialRe                    the form of a credential
#   env_of(INSPECT)                  a container's environment, as a hash
#
# A 401 of the gateway is checked by PerstackFlow's check_refused.  The
# helpers call Perstack's functions at run time, by their full names.
# Only networks the tests name, in 172.31.240.0/20, are ever touched.

use strict;
use warnings;

use Cwd ();
use Exporter 'import';
use File::Basename ();
use File::Temp ();
use JSON::PP ();
use MIME::Base64 ();
use POSIX ();
use Test::More ();
use Time::HiRes ();

our @EXPORT = qw(network_info create_network remove_network firewall_rules
                 bridge_of gateway_setup gateway_remove setup_command
                 $SetupCommand gateway_call key_header
                 random_credential env_of $CredentialRe);

my $JsonOut = JSON::PP->new->utf8->canonical;

# the command, from this repository
our $SetupCommand = do {
    my $dir = File::Basename::dirname(Cwd::abs_path(__FILE__));
    "$dir/../../bin/perstack-gateway-setup";
};

sub setup_command {
    my ($zone, $net, $subnet, @ports) = @_;
    return join ' ', 'perstack-gateway-setup', '--zone', $zone,
                     '--network', $net, '--subnet', $subnet,
                     map { ('--port', $_) } @ports;
}

# the engine the tests use, when it is not the default one
sub docker_args {
    return $Perstack::DockerSock eq '/var/run/docker.sock'
           ? () : ('--docker', "unix:$Perstack::DockerSock");
}

sub run_setup {
    my (@args) = @_;

    my $pid = open my $fh, '-|';
    die "fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec'; exec $SetupCommand, @args; }
        POSIX::_exit(127);
    }

    my $out = do { local $/; <$fh> } // '';
    close $fh;

    return ($? >> 8, $out);
}

sub gateway_setup {
    my ($zone, $net, $subnet, @ports) = @_;
    return run_setup('--zone', $zone, '--network', $net, '--subnet', $subnet,
                     (map { ('--port', $_) } @ports), docker_args());
}

sub gateway_remove {
    my ($net) = @_;
    return run_setup('--network', $net, docker_args(), '--remove');
}

sub network_info {
    my ($net) = @_;
    my ($st, $body) = Perstack::docker_api('GET', "/networks/$net");
    return $st == 200 ? Perstack::json_decode($body) : undef;
}

sub bridge_of {
    my ($info) = @_;
    return ($info->{Options} || {})->{'com.docker.network.bridge.name'}
           // 'br-' . substr($info->{Id}, 0, 12);
}

sub create_network {
    my ($net, $subnet, $gateway) = @_;

    my $tmp = File::Temp->new(SUFFIX => '.json');
    print $tmp $JsonOut->encode({
        Name => $net, Driver => 'bridge', CheckDuplicate => JSON::PP::true,
        Internal => JSON::PP::false,
        IPAM => { Config => [ { Subnet => $subnet, Gateway => $gateway } ] },
        Labels => { 'io.perstack.test' => '1' } });
    close $tmp;

    my ($st, $body) = Perstack::docker_api('POST', '/networks/create',
        body_file => $tmp->filename, content_type => 'application/json');
    die "cannot create the Docker network $net: $st $body\n"
        unless $st == 201;
}

sub remove_network {
    my ($net) = @_;

    # the module's firewall chains for the network's bridge go with it
    my $info = network_info($net);

    if ($info && $info->{Id}) {
        my $bridge = bridge_of($info);
        my $chain = "PERSTACK-$bridge";

        for my $prog (qw(iptables ip6tables)) {
            next unless firewall_rules($prog, $chain);
            system($prog, '-w', '-D', 'INPUT', '-i', $bridge, '-j', $chain);
            system($prog, '-w', '-F', $chain);
            system($prog, '-w', '-X', $chain);
        }
    }

    # the containers may still be on their way out
    for (1 .. 50) {
        my ($st) = Perstack::docker_api('DELETE', "/networks/$net");
        return 1 if $st == 204 || $st == 404;
        Time::HiRes::sleep(0.2);
    }
    return 0;
}

sub firewall_rules {
    my ($prog, $chain) = @_;

    # (a chain that does not exist is no news: stderr is dropped)
    my $pid = open my $fh, '-|';
    return () unless defined $pid;

    if ($pid == 0) {
        open STDERR, '>', '/dev/null';
        { no warnings 'exec'; exec $prog, '-w', '-S', $chain; }
        POSIX::_exit(127);
    }

    my @rules = <$fh>;
    close $fh;
    chomp @rules;

    return @rules;
}


# ---- calls to a gateway ------------------------------------------------------

sub gateway_call {
    my ($addr, $port, @headers) = @_;

    local $Test::Nginx::Util::ServerAddr = $addr;
    local $Test::Nginx::Util::ServerPortForClient = $port;
    local $Perstack::Tls;    # a gateway is plain HTTP

    return Perstack::http_request(
        method => 'POST', path => '/v1/messages',
        headers => [ 'Content-Type' => 'application/json', @headers ],
        body => '{"model":"demo","max_tokens":8,"messages":[]}',
        timeout => 10);
}

sub key_header {
    my ($how, $cred) = @_;
    return $how eq 'bearer' ? ('Authorization' => "Bearer $cred")
                            : ('x-api-key' => $cred);
}

sub random_credential {
    my $raw = join '', map { chr int rand 256 } 1 .. 32;
    my $b64 = MIME::Base64::encode_base64($raw, '');
    $b64 =~ tr{+/}{-_};
    $b64 =~ s/=+\z//;
    return "pgw_$b64";
}

our $CredentialRe = qr/\Apgw_[A-Za-z0-9_-]{43}\z/;

sub env_of {
    my ($info) = @_;
    return map { /^([^=]*)=(.*)\z/s ? ($1 => $2) : () }
           @{ ($info || {})->{Config}{Env} || [] };
}

1;
