# An engine over TLS (README, "More than one host"): a dockerd of this
# file's own (t/lib/PerstackEngines.pm) listens on loopback with
# --tlsverify, with a CA, a server and a client certificate made here:
#
#   - an execution on "https://127.0.0.1:PORT" with the client's
#     certificate runs on that engine (its own event log has the create,
#     the suite's has none) and ends completed, the container removed;
#   - a CA that did not sign the engine's certificate, a host name the
#     certificate does not hold, and no client certificate: each a 502
#     JSON before the stream whose message says which, no container made,
#     and no secret in the error log;
#   - nginx -t refuses an https engine without ssl_trusted_certificate=, a
#     certificate without its key, a key that is not the certificate's, a
#     file without PEM, ssl_* on a plain engine, and credentials in the URL.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use Test::Nginx::Socket;
use Perstack;
use PerstackEngines;

our $Pki = make_pki();
our $Port = Perstack::free_port();
our $Engine = start_engine(name => 'tls', tls => $Pki, port => $Port);

our $RunId = unique_name('tls');
our $RunLabel = "test.perstack.tls-run=$RunId";

$ENV{TEST_NGINX_PKI} = $Pki->{dir};
$ENV{TEST_NGINX_TLS_PORT} = $Port;
$ENV{TEST_NGINX_TLS_RUN} = $RunId;

my $config = <<'_EOC_';
    perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    perstack_label test.perstack.tls-run $TEST_NGINX_TLS_RUN;

    location = /tls {
        perstack_execute;
        perstack_docker https://127.0.0.1:$TEST_NGINX_TLS_PORT
                        ssl_certificate=$TEST_NGINX_PKI/client.pem
                        ssl_certificate_key=$TEST_NGINX_PKI/client-key.pem
                        ssl_trusted_certificate=$TEST_NGINX_PKI/ca.pem;
    }

    location = /wrong-ca {
        perstack_execute;
        perstack_docker https://127.0.0.1:$TEST_NGINX_TLS_PORT
                        ssl_certificate=$TEST_NGINX_PKI/client.pem
                        ssl_certificate_key=$TEST_NGINX_PKI/client-key.pem
                        ssl_trusted_certificate=$TEST_NGINX_PKI/other-ca.pem;
    }

    location = /wrong-name {
        perstack_execute;
        perstack_docker https://localhost:$TEST_NGINX_TLS_PORT
                        ssl_certificate=$TEST_NGINX_PKI/client.pem
                        ssl_certificate_key=$TEST_NGINX_PKI/client-key.pem
                        ssl_trusted_certificate=$TEST_NGINX_PKI/ca.pem;
    }

    location = /no-client {
        perstack_execute;
        perstack_docker https://127.0.0.1:$TEST_NGINX_TLS_PORT
                        ssl_trusted_certificate=$TEST_NGINX_PKI/ca.pem;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $config) unless defined $block->config;
    default_request($block, '/tls');
});


# the "create" events of this file's containers on an engine since $t0
sub creates_on {
    my ($e, $t0) = @_;
    return engine_creates($e, $t0, $RunLabel);
}

sub check_tls_run {
    my ($block) = @_;
    my $name = $block->name;
    my $t0 = Time::HiRes::time();

    # run_ok's checks of the container ask the engine it ran on
    my $c = with_engine($Engine,
                        sub { run_ok($name, '/tls?expert=demo&query=over+tls') });
    my $x = ($c->first_event('perstack.execution') || {})->{json} || {};
    my $id = $x->{container} // '';

    my @there = creates_on($Engine, $t0);
    is(scalar @there, 1, "$name - one container made on the TLS engine");
    is($there[0]{id} // $there[0]{Actor}{ID} // '', $id,
       "$name - the execution's container")
        if @there;
    is(scalar(creates_on(undef, $t0)), 0,
       "$name - none on the suite's engine");
    ok(with_engine($Engine, sub { !container_info($id) }),
       "$name - the container is gone") if $id;
}

sub check_refusal {
    my ($name, $path, $like) = @_;
    my $t0 = Time::HiRes::time();

    my $c = run_get("$path?expert=demo&query=refused");
    my $obj = check_error($name, $c, 502, 'docker_unavailable') || {};
    like($obj->{message} // '', $like, "$name - the message says why");
    ok(!defined $c->header('X-Perstack-Execution'),
       "$name - no execution");
    is(scalar(creates_on($Engine, $t0)) + scalar(creates_on(undef, $t0)), 0,
       "$name - no container on either engine");
}

sub check_tls_refusals {
    my ($block) = @_;
    my $name = $block->name;

    check_refusal("$name (wrong CA)", '/wrong-ca',
                  qr/certificate is not trusted/);
    check_refusal("$name (wrong name)", '/wrong-name',
                  qr/does not name the host/);
    check_refusal("$name (no client certificate)", '/no-client',
                  qr/TLS handshake with the Docker engine failed \(was the client certificate refused/);

    my $log = error_log_text();
    unlike($log, qr/BEGIN|PRIVATE KEY/, "$name - no PEM in the error log");
    like($log, qr{cannot reach the Docker engine at "https://127\.0\.0\.1:\d+"},
         "$name - the log names the engine");
}

sub check_conf {
    my ($block) = @_;
    my $name = $block->name;
    my $p = $Pki->{dir};

    my %bad = (
        'no trusted certificate' => [
            "https://127.0.0.1:$Port ssl_certificate=$p/client.pem "
            . "ssl_certificate_key=$p/client-key.pem",
            qr/needs ssl_trusted_certificate=/ ],
        'a certificate without its key' => [
            "https://127.0.0.1:$Port ssl_certificate=$p/client.pem "
            . "ssl_trusted_certificate=$p/ca.pem",
            qr/needs ssl_certificate= and ssl_certificate_key= together/ ],
        'a key of another certificate' => [
            "https://127.0.0.1:$Port ssl_certificate=$p/client.pem "
            . "ssl_certificate_key=$p/server-key.pem "
            . "ssl_trusted_certificate=$p/ca.pem",
            qr/is not the certificate/ ],
        'a file without PEM' => [
            "https://127.0.0.1:$Port ssl_trusted_certificate=$p/server.csr",
            qr/no PEM certificate in/ ],
        'a missing file' => [
            "https://127.0.0.1:$Port ssl_trusted_certificate=$p/nothing.pem",
            qr/nothing\.pem" failed/ ],
        'ssl_* on a plain engine' => [
            "http://127.0.0.1:$Port ssl_trusted_certificate=$p/ca.pem",
            qr/need an "https:\/\/" engine/ ],
        'credentials in the URL' => [
            "https://user:secret\@127.0.0.1:$Port "
            . "ssl_trusted_certificate=$p/ca.pem",
            qr/credentials in the URL are not supported/ ],
    );

    for my $what (sort keys %bad) {
        my ($engine, $like) = @{ $bad{$what} };
        my ($ok, $out) = nginx_t("location = /x { perstack_execute; "
                                 . "perstack_image x; "
                                 . "perstack_docker $engine; }");
        ok(!$ok, "$name - $what: refused");
        like($out, $like, "$name - $what: says why");
        unlike($out, qr/secret/, "$name - $what: no password echoed")
            if $what =~ /credentials/;
    }

    my ($ok, $out) = nginx_t("location = /x { perstack_execute; "
                             . "perstack_image x; "
                             . "perstack_docker https://127.0.0.1:$Port "
                             . "ssl_trusted_certificate=$p/ca.pem; }");
    ok($ok, "$name - server authentication alone is taken")
        or diag($out);
}

# nginx -t of a configuration with one server of these locations
sub nginx_t {
    my ($locations) = @_;
    return nginx_conf_test("server { listen 127.0.0.1:1; $locations }");
}


run_tests();

__DATA__

=== TEST 1: an execution on an engine over TLS
--- check: check_tls_run
--- timeout: 60
--- no_error_log
[alert]
[emerg]



=== TEST 2: a wrong CA, a wrong name, no client certificate: 502 before the stream
--- check: check_tls_refusals
--- timeout: 60
--- no_error_log
[alert]
[emerg]



=== TEST 3: nginx -t refuses what cannot work
--- config
    location = /static { return 200; }
--- request
GET /static
--- check: check_conf
--- timeout: 60
