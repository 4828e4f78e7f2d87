# Every nginx configuration in conf-examples/ (*.conf: runtime-image/ is a
# Dockerfile, not built here), started as shipped, with the real
# module, the real Docker Engine and the demo image, and driven through the
# flows its comments describe.
#
# A file is changed only where it must be, by the rewrites listed with its
# flows below, each of which must apply exactly as often as it says (so
# that a rewrite cannot silently stop applying): paths into a prefix of the
# test's own, ports the test picked, stand-ins for what a test cannot have
# (a real TLS certificate, a provider key, the application, the provider,
# a registry's image).  Each runs as a nginx of its own (-p prefix), as
# root with the file's own "user", and is stopped gracefully at the end;
# its error log must show no [alert], [crit] or [emerg], and no container
# of it may be left.
#
# The stand-ins (production.conf): the application's approval endpoint and
# pages, and the model provider (TLS, a certificate the gateway is told to
# trust), served by a second, plain nginx on loopback; self-signed
# certificates made with openssl; the provider key in a file included as
# the comment says.  The gateway's network is this test's own
# (perstack-test-conf-llm, 172.31.246.0/24), made with its firewall chains
# by bin/perstack-gateway-setup before nginx starts, as the file's comment
# says: it is removed before the run, should a run have left it, and at
# the end (with --remove).
#
# A *.conf file in conf-examples/ without flows here fails the test.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use PerstackFlow;
use PerstackGateway;
use Test::Nginx::Socket;
use Perstack;
use File::Basename ();
use Time::HiRes ();

my $Nginx = $ENV{TEST_NGINX_BINARY};
my $Module = $ENV{TEST_NGINX_PERSTACK_MODULE};
my $Examples = "$FindBin::Bin/../conf-examples";

my %Flows = (
    'demo.conf' => \&demo_flows,
    'production.conf' => \&production_flows,
);


# ---- nginx, from a whole configuration file ----------------------------------

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!\n";
    local $/;
    return scalar <$fh>;
}

# Each rewrite [FROM, TO, COUNT] replaces the string FROM, which must occur
# exactly COUNT times.
sub rewrite {
    my ($name, $text, @rewrites) = @_;

    for my $rw (@rewrites) {
        my ($from, $to, $count) = @$rw;
        my $n = () = $text =~ /\Q$from\E/g;
        is($n, $count, "$name - rewritten: \"$from\" (${count}x)");
        $text =~ s/\Q$from\E/$to/g;
    }

    return $text;
}

# The prefix's directories, and the module where "load_module modules/..."
# finds it.
sub make_prefix {
    my ($what) = @_;
    my $p = make_dir($what);
    mkdir "$p/$_" or die "mkdir $p/$_: $!\n" for qw(conf logs modules);
    symlink $Module, "$p/modules/ngx_http_perstack_module.so"
        or die "symlink: $!\n";
    return $p;
}

# The masters started and not stopped yet: stopped at the end, whatever
# happened; then the gateway's network goes.
our %Masters;

END {
    our ($Net, $NetworkUsed);
    stop_nginx($_) for keys %Masters;
    if ($NetworkUsed) {
        gateway_remove($Net);
        remove_network($Net);
    }
}

# Starts nginx on $prefix/conf/nginx.conf; returns the master's pid.
sub start_nginx {
    my ($name, $prefix, $conf) = @_;

    spew("$prefix/conf/nginx.conf", $conf);

    # a file without "pid" would take the binary's default (/run/nginx.pid)
    my @g = $conf =~ /^\s*pid\s/m ? () : ('-g', "pid $prefix/logs/nginx.pid;");

    my $rc = system($Nginx, '-p', "$prefix/", '-c', "$prefix/conf/nginx.conf",
                    '-e', "$prefix/logs/startup.log", @g);

    ok($rc == 0, "$name - nginx starts")
        or diag(slurp("$prefix/logs/startup.log"));

    # the daemon writes its pid file after the starting process exits
    my $deadline = Time::HiRes::time() + 10;
    while ($rc == 0) {
        my $pid = eval { slurp("$prefix/logs/nginx.pid") } // '';
        if ($pid =~ /^(\d+)/) {
            $Masters{$1} = 1;
            return $1;
        }
        last if Time::HiRes::time() > $deadline;
        Time::HiRes::sleep(0.05);
    }

    return undef;
}

# Graceful quit; true once the master is gone.
sub stop_nginx {
    my ($master) = @_;
    return 1 unless $master;

    delete $Masters{$master};
    kill 'QUIT', $master;
    my $deadline = Time::HiRes::time() + 30;

    while (kill 0, $master) {
        if (Time::HiRes::time() > $deadline) {
            kill 'TERM', $master;
            return 0;
        }
        Time::HiRes::sleep(0.05);
    }

    return 1;
}

sub check_log_clean {
    my ($name, $log) = @_;
    my @bad = grep { /\[(?:alert|crit|emerg)\]/ }
              split /\n/, eval { slurp($log) } // '';
    is(scalar @bad, 0, "$name - no [alert], [crit] or [emerg] in its log")
        or diag(join "\n", @bad);
}

# After the master is gone, no container of it is left (its containers
# carry its pid as io.perstack.master).
sub check_no_containers {
    my ($name, $master) = @_;
    my $label = "io.perstack.master=$master";
    my $deadline = Time::HiRes::time() + 10;
    my @left;

    while (1) {
        @left = label_containers($label);
        last if !@left || Time::HiRes::time() > $deadline;
        Time::HiRes::sleep(0.1);
    }

    is(scalar @left, 0, "$name - no container of it is left");
    Perstack::remove_container($_->{Id}) for @left;
}

# A directory the containers' user owns, as README.md asks of a
# workspace root.
sub workspace_root {
    my ($dir) = @_;
    mkdir $dir or die "mkdir $dir: $!\n";
    chown 65534, 65534, $dir or die "chown $dir: $!\n";
    chmod 0700, $dir;
}

# A self-signed certificate for @names (DNS names, "IP:" addresses).
sub certificate {
    my ($base, $cn, @names) = @_;
    my $san = join ',', map { /^IP:/ ? $_ : "DNS:$_" } @names;

    # (openssl shows its progress on stderr)
    open my $stderr, '>&', \*STDERR or die "dup: $!\n";
    open STDERR, '>', '/dev/null' or die "/dev/null: $!\n";
    my $rc = system('openssl', 'req', '-x509', '-newkey', 'ec',
                    '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
                    '-keyout', "$base.key", '-out', "$base.crt", '-days', '2',
                    '-subj', "/CN=$cn", '-addext', "subjectAltName=$san");
    open STDERR, '>&', $stderr or die "dup: $!\n";
    die "openssl cannot make $base.crt\n" if $rc != 0;
}

# nginx's temporary directories, in $dir
sub temp_paths {
    my ($dir) = @_;
    return join '', map { "    ${_}_temp_path $dir/$_;\n" }
                    qw(client_body proxy fastcgi uwsgi scgi);
}

sub events_of {
    my ($r, $type) = @_;
    return @{ $r->{by_type}{$type} || [] };
}

sub first_of {
    my ($r, $type) = @_;
    return (events_of($r, $type))[0] || {};
}

sub log_lines {
    my ($file) = @_;
    return grep { length } split /\n/, eval { slurp($file) } // '';
}


# ---- demo.conf ---------------------------------------------------------------

# As scripts/demo.sh writes it: the module's path, the prefix, the port;
# and the demo image the suite runs (PERSTACK_DEMO_IMAGE).
sub demo_flows {
    my ($name, $text) = @_;

    my $p = make_prefix('demo');
    my $port = Perstack::free_port();
    workspace_root("$p/workspaces");

    my $conf = rewrite($name, $text,
        ['@PERSTACK_MODULE@', $Module, 2],
        ['@PERSTACK_PREFIX@', $p, 4],
        ['@PERSTACK_ROOT@', "$FindBin::Bin/..", 2],
        ['127.0.0.1:8080', "127.0.0.1:$port", 1],
        ['perstack-demo:latest', $Image, 3]);

    my $master = start_nginx($name, $p, $conf) or return;

    {
        local $Test::Nginx::Util::ServerAddr = '127.0.0.1';
        local $Test::Nginx::Util::ServerPortForClient = $port;

        demo_agent("$name /agent");
        demo_flow("$name /flow");
        demo_page("$name /page/");
    }

    ok(stop_nginx($master), "$name - nginx quits");
    check_log_clean($name, "$p/logs/error.log");
    check_no_containers($name, $master);
}

sub demo_agent {
    my ($name) = @_;

    my $c = run_get('/');
    is($c->{body}, "ok\n", "$name - GET / answers ok");

    # GET, Server-Sent Events
    $c = run_get('/agent?expert=demo&query=hello+from+nginx');
    my $r = check_run("$name (GET, SSE)", $c, expert => 'demo',
                      outcome => 'completed', exit_code => 0);
    is_deeply([ map { $_->{delta} } events_of($r, 'streamRunResult') ],
              [ 'hello ', 'from ', 'nginx ' ],
              "$name (GET, SSE) - one streamRunResult a word");

    # POST, NDJSON
    $c = run_post('/agent', { expert => 'demo', query => 'hello again' },
                  'Accept' => 'application/x-ndjson');
    check_run("$name (POST, NDJSON)", $c, format => 'ndjson',
              expert => 'demo', outcome => 'completed', exit_code => 0);

    # perstack_expert_allow: the whole name must match
    my $t0 = Time::HiRes::time();
    my $bad = unique_name('Demo');
    $c = run_get("/agent?expert=$bad&query=x");
    check_error("$name (an expert the pattern refuses)", $c, 403,
                'expert_not_allowed', expert => $bad);
    no_container_for("$name (an expert the pattern refuses)", $t0, $bad);
}

# The walk-through of README.md: pause, approve, continue; the stand-in
# approval endpoint knows two tokens and lets nobody run "error".
sub demo_flow {
    my ($name) = @_;
    my @alice = ('Authorization' => 'Bearer alice-token');
    my @bob = ('Authorization' => 'Bearer bob-token');

    my $c = run_get('/flow?expert=interactive&query=deploy+v2', @alice);
    my $r = check_run("$name (alice starts)", $c, expert => 'interactive',
                      outcome => 'paused', exit_code => 0);
    is($c->header('X-Perstack-User'), 'alice',
       "$name (alice starts) - the callback named the user");
    my $job = $r->{job};
    my $call = ($r->{end}{pending_tool_calls} || [])->[0] || {};
    is($call->{toolName}, 'askUser', "$name (alice starts) - the question");

    my $answer = { expert => 'interactive', jobId => $job,
                   answer => 'yes, deploy v2' };

    $c = run_post('/flow', $answer, @bob);
    check_error("$name (bob answers alice's job)", $c, 404, 'job_not_found',
                jobId => $job);

    $c = run_post('/flow', $answer);
    check_error("$name (no token)", $c, 401, 'not_approved');
    is($c->header('WWW-Authenticate'), 'Bearer realm="agents"',
       "$name (no token) - the callback's challenge");

    my $t0 = Time::HiRes::time();
    $c = run_get('/flow?expert=error&query=x', @alice);
    check_error("$name (the expert nobody may run)", $c, 403,
                'not_approved');
    no_container_for("$name (the expert nobody may run)", $t0, 'error');

    $c = run_post('/flow', $answer, @alice, 'Accept' => 'application/x-ndjson');
    $r = check_run("$name (alice answers)", $c, format => 'ndjson',
                   expert => 'interactive', job => $job, continued => 1,
                   outcome => 'completed', exit_code => 0);
    is(((first_of($r, 'finishAllToolCalls')->{newMessages}
           || [ {} ])->[0]{contents} || [ {} ])->[0]{toolCallId}, $call->{id},
       "$name (alice answers) - the answer resolves the pending call");
}


# The browser page (t/028-page.t drives it in a browser): its files, with
# the types a browser takes; its agent, whose executions belong to the
# browser of the userid cookie.
sub demo_page {
    my ($name) = @_;

    for my $f (['', 'text/html'], ['app.js', 'application/javascript'],
               ['style.css', 'text/css'])
    {
        my $c = run_get("/page/$f->[0]");
        is($c->{status}, 200, "$name$f->[0] - 200");
        like($c->header('Content-Type') // '', qr{\A\Q$f->[1]\E\b},
             "$name$f->[0] - Content-Type $f->[1]");
    }

    my $c = run_get('/page/');
    my ($cookie) = ($c->header('Set-Cookie') // '')
                   =~ /\A(perstack_page=[^;]+)/;
    ok($cookie, "$name - the page sets the browser's cookie");
    like($c->{body}, qr{<script src="app\.js"}, "$name - the page's HTML");

    $c = run_get('/page/agent?expert=demo&query=from+the+page',
                 Cookie => $cookie // '');
    my $r = check_run("$name agent", $c, expert => 'demo',
                      outcome => 'completed', exit_code => 0);
    my $xid = $c->header('X-Perstack-Execution') // '';

    # its record: the same browser may read it, another may not
    $c = run_get("/page/agent?execution=$xid", Cookie => $cookie // '',
                 Accept => 'application/json');
    is($c->{status}, 200, "$name agent - the status, for its browser");
    $c = run_get("/page/agent?execution=$xid",
                 Accept => 'application/json');
    check_error("$name agent (another browser)", $c, 404, 'not_found');

    my $t0 = Time::HiRes::time();
    my $other = unique_name('probe');
    $c = run_get("/page/agent?expert=$other&query=x");
    check_error("$name agent (an expert the page does not offer)", $c, 403,
                'expert_not_allowed', expert => $other);
    no_container_for("$name agent (an expert the page does not offer)",
                     $t0, $other);
}


# ---- production.conf ---------------------------------------------------------

our $Net = 'perstack-test-conf-llm';
our $Subnet = '172.31.246.0/24';
our $GwAddr = '172.31.246.1';

sub production_flows {
    my ($name, $text) = @_;

    my $v = `$Nginx -V 2>&1`;
    if ($v !~ /--with-http_ssl_module/ || $v !~ /--with-http_v2_module/) {
        SKIP: { skip("$name: this nginx has no SSL or HTTP/2 module", 1) }
        return;
    }

    remove_network($Net) or die "cannot remove the leftover network $Net\n";
    our $NetworkUsed = 1;

    my $p = make_prefix('production');
    my $s = make_prefix('standins');
    mkdir "$_" or die "mkdir $_: $!\n" for "$p/tls", "$p/secrets", "$p/srv";
    chmod 0700, "$p/secrets";

    my %port = map { $_ => Perstack::free_port() } qw(https gw app provider);
    my $real_key = sprintf 'sk-ant-test-%08x%08x', int rand 0xffffffff,
                           int rand 0xffffffff;
    my $answer = sprintf 'the answer is %d', 1000 + int rand 9000;

    certificate("$p/tls/agents", 'agents.example.com', 'agents.example.com');
    certificate("$s/provider", 'api.anthropic.com', 'api.anthropic.com',
                '127.0.0.1', 'IP:127.0.0.1');

    # the key, as the file's comment says, in a file only root reads
    spew("$p/secrets/anthropic-key.conf",
         "map \"\" \$anthropic_key { default \"$real_key\"; }\n", 0600);

    workspace_root("$p/srv/workspaces");
    spew("$p/srv/perstack.toml", "# the experts (a stand-in)\n", 0644);

    my $conf = rewrite($name, $text,
        # the test's prefix, not the system's
        ['/var/log/nginx/', "$p/logs/", 4],
        ['/etc/nginx/tls/', "$p/tls/", 2],
        ['/etc/nginx/secrets/', "$p/secrets/", 1],
        ['/srv/perstack/', "$p/srv/", 2],
        # (nginx would make its temporary directories in /var/lib/nginx)
        ["http {\n", "http {\n" . temp_paths($p), 1],
        # loopback, on ports of the test's
        ['listen 443 ssl', "listen 127.0.0.1:$port{https} ssl", 1],
        ['server 127.0.0.1:3000;', "server 127.0.0.1:$port{app};", 1],
        # the test's own network, in 172.31.240.0/20
        ['network=perstack-llm', "network=$Net", 1],
        ['subnet=172.31.250.0/24', "subnet=$Subnet", 1],
        ['172.31.250.1:8080', "$GwAddr:$port{gw}", 2],
        # the demo image, and its experts among the allowed ones
        ['registry.example.com/perstack-runtime:1.4.2', $Image, 1],
        ['"(support|research|ops)',
         '"(support|research|ops|interactive|llm|probe)', 1],
        # the stand-in provider, and the certificate it has
        ['proxy_pass https://api.anthropic.com;',
         "proxy_pass https://127.0.0.1:$port{provider};", 1],
        ['/etc/ssl/certs/ca-certificates.crt', "$s/provider.crt", 1]);

    my $standins = start_nginx("$name (stand-ins)", $s,
                               standins_conf($s, \%port, $real_key, $answer))
        or return;

    # the gateway's network and chains, as the comment says, for the port
    # the gateway listens on
    my ($rc, $out) = gateway_setup('llm', $Net, $Subnet, $port{gw});
    is($rc, 0, "$name - perstack-gateway-setup: exit 0") or diag($out);

    my $master = start_nginx($name, $p, $conf);

    if ($master) {
        local $Test::Nginx::Util::ServerAddr = '127.0.0.1';
        local $Test::Nginx::Util::ServerPortForClient = $port{https};
        local $Perstack::Tls = {
            SSL_ca_file => "$p/tls/agents.crt",
            SSL_hostname => 'agents.example.com',
            SSL_verifycn_name => 'agents.example.com',
            SSL_verifycn_scheme => 'http',
        };

        my %x = (name => $name, p => $p, s => $s, port => \%port,
                 key => $real_key, answer => $answer);

        production_refusals(\%x);
        production_llm(\%x);
        production_probe(\%x);
        production_pause(\%x);
        production_limit(\%x);

        ok(stop_nginx($master), "$name - nginx quits");
        check_log_clean($name, "$p/logs/error.log");
        check_no_containers($name, $master);
    }

    ok(stop_nginx($standins), "$name - the stand-ins quit");
    check_log_clean("$name (stand-ins)", "$s/logs/error.log");
}

# The application (approval and pages) and the provider.  The application
# knows two tokens and lets nobody run an "ops" expert; it logs what each
# callback asked.  The provider answers 401 without the real key.
sub standins_conf {
    my ($s, $port, $key, $answer) = @_;

    my $temp = temp_paths($s);

    return <<"_EOC_";
worker_processes 1;
error_log $s/logs/error.log notice;
pid $s/logs/nginx.pid;

events {
    worker_connections 64;
}

http {
$temp
    access_log off;

    log_format approve '\$http_x_perstack_job \$http_x_perstack_expert '
                       '\$standin_user \$status';
    log_format provider '\$status \$host [\$http_authorization]';

    map \$http_authorization \$standin_user {
        default              "";
        "Bearer alice-token" alice;
        "Bearer bob-token"   bob;
    }

    server {
        listen 127.0.0.1:$port->{app};

        location = /internal/approve {
            access_log $s/logs/approve.log approve;

            if (\$standin_user = "") {
                add_header WWW-Authenticate 'Bearer realm="agents"' always;
                return 401;
            }

            if (\$http_x_perstack_expert ~ "^ops") {
                return 403;
            }

            add_header X-User \$standin_user;
            return 204;
        }

        location / {
            return 200 "the application\\n";
        }
    }

    server {
        listen 127.0.0.1:$port->{provider} ssl;

        ssl_certificate $s/provider.crt;
        ssl_certificate_key $s/provider.key;

        location = /v1/messages {
            access_log $s/logs/provider.log provider;
            default_type application/json;

            if (\$http_x_api_key != "$key") {
                return 401 '{"error":"bad key"}';
            }

            return 200 '{"content":[{"type":"text","text":"$answer"}]}';
        }
    }
}
_EOC_
}

sub gw {
    my ($x, @headers) = @_;
    return gateway_call($GwAddr, $x->{port}{gw}, @headers);
}

sub production_refusals {
    my ($x) = @_;
    my $name = $x->{name};

    my $c = run_get('/');
    is($c->{body}, "the application\n",
       "$name - GET / is the application's");

    # the application refuses: no token (its challenge is passed on), and
    # the experts it keeps from everyone; no container for either
    my $t0 = Time::HiRes::time();
    my $e1 = unique_name('support');
    $c = run_get("/agents/?expert=$e1&query=hi");
    check_error("$name (no token)", $c, 401, 'not_approved');
    is($c->header('WWW-Authenticate'), 'Bearer realm="agents"',
       "$name (no token) - the application's challenge");
    no_container_for("$name (no token)", $t0, $e1);

    my $e2 = unique_name('ops');
    $c = run_post('/agents/', { expert => $e2, query => 'restart it' },
                  'Authorization' => 'Bearer bob-token');
    check_error("$name (an expert the application refuses)", $c, 403,
                'not_approved');
    no_container_for("$name (an expert the application refuses)", $t0,
                     $e2);

    # nginx refuses: an expert outside the pattern, a query over 64k (by
    # client_max_body_size, before the module: nginx's own page)
    $c = run_get('/agents/?expert=demo&query=hi',
                 'Authorization' => 'Bearer alice-token');
    check_error("$name (an expert outside the pattern)", $c, 403,
                'expert_not_allowed', expert => 'demo');

    my $e3 = unique_name('research');
    $c = run_post('/agents/', { expert => $e3, query => 'x' x 70000 },
                  'Authorization' => 'Bearer alice-token');
    is($c->{status}, 413, "$name (a query over 64k) - 413");
    no_container_for("$name (a query over 64k)", $t0, $e3);

    # and the gateway, without a live execution's credential
    check_refused("$name (the gateway, no credential)", gw($x),
                  'credential_required');
    check_refused("$name (the gateway, the real key)",
                  gw($x, 'x-api-key' => $x->{key}), 'invalid_credential');
    check_refused("$name (the gateway, a random credential)",
                  gw($x, key_header('bearer', random_credential())),
                  'invalid_credential');
    is(scalar(log_lines("$x->{s}/logs/provider.log")), 0,
       "$name - the provider saw none of these");
}

# A run of alice's that completes: its name, client and check_run result.
sub alice_completes {
    my ($x, $expert, $query) = @_;
    my $name = "$x->{name} ($expert)";

    my $c = run_get("/agents/?expert=$expert&query=$query",
                    'Authorization' => 'Bearer alice-token');
    my $r = check_run($name, $c, expert => $expert, outcome => 'completed',
                      exit_code => 0);

    return ($name, $c, $r);
}

# The model through the gateway: the provider gets the real key, with its
# own Host, and not the credential; the gateway logs the user as the tag.
sub production_llm {
    my ($x) = @_;

    my ($name, $c, $r) = alice_completes($x, 'llm', 'what+is+the+answer');
    my $call = first_of($r, 'llmCall');
    is($call->{status}, 200, "$name - the call went through the gateway");
    my $body = eval { json_decode($call->{body} // '') } || {};
    is((($body->{content} || [])->[0] || {})->{text}, $x->{answer},
       "$name - the provider's answer");

    is_deeply([ log_lines("$x->{s}/logs/provider.log") ],
              [ '200 api.anthropic.com [-]' ],
              "$name - the provider saw one call: the real key, its Host, "
              . "no Authorization");

    my $xid = $r->{exec}{execution} // '';
    # (the calls refused before are there too, with no caller)
    my @llm = grep { / 200 / } log_lines("$x->{p}/logs/llm.log");
    is(scalar @llm, 1, "$name - the gateway logged one call it let through");
    like($llm[0] // '', qr{^\S+ alice \Q$xid\E llm /v1/messages 200 },
         "$name - ... with the user as the tag, the execution, the expert");

    unlike($c->{body}, qr/\Q$x->{key}\E/,
           "$name - the real key is nowhere in the stream");
}

# The sandbox the file writes out, seen from inside.
sub production_probe {
    my ($x) = @_;
    my $toml = '/etc/perstack/perstack.toml';

    my ($name, $c, $r) = alice_completes($x, 'probe', $toml);
    my $probe = first_of($r, 'probe');
    my $env = $probe->{env} || {};

    like($env->{ANTHROPIC_API_KEY} // '', $CredentialRe,
         "$name - ANTHROPIC_API_KEY is a credential of its own");
    is($env->{ANTHROPIC_BASE_URL}, "http://$GwAddr:$x->{port}{gw}/v1",
       "$name - ANTHROPIC_BASE_URL is the gateway");
    unlike($c->{body}, qr/\Q$x->{key}\E/,
           "$name - the real key is nowhere in the stream");
    is_deeply([ $probe->{uid}, $probe->{gid} ], [ 65534, 65534 ],
              "$name - perstack_user 65534:65534");
    ok(JSON::PP::is_bool($probe->{writable}{'/'}) && !$probe->{writable}{'/'},
       "$name - a read-only root");
    is($probe->{memory_limit}, 1 << 30, "$name - perstack_memory 1g");
    is($probe->{pids_max}, 128, "$name - perstack_pids_limit 128");
    ok($probe->{read}{$toml}, "$name - the experts' definitions are there");
    like(($probe->{mounts}{$toml} || {})->{options} // '', qr/^ro\b/,
         "$name - ... read-only");
    is_deeply([ sort @{ $probe->{interfaces} || [] } ], [ 'eth0', 'lo' ],
              "$name - one network: the gateway's");

    check_refused("$name (its credential, once it ended)",
                  gw($x, 'x-api-key' => $env->{ANTHROPIC_API_KEY} // ''),
                  'invalid_credential');
}

# Pause, approve, continue: each step asks the application, and a job is
# continued only from its user's workspace.
sub production_pause {
    my ($x) = @_;
    my $name = "$x->{name} (pause, approve, continue)";
    my @alice = ('Authorization' => 'Bearer alice-token');
    my $before = () = log_lines("$x->{s}/logs/approve.log");

    my $c = run_get('/agents/?expert=interactive&query=deploy+v2', @alice);
    my $r = check_run("$name: alice starts", $c, expert => 'interactive',
                      outcome => 'paused', exit_code => 0);
    my $job = $r->{job};

    ok(-d "$x->{p}/srv/workspaces/alice/workspace/perstack/jobs/$job"
           && -f "$x->{p}/srv/workspaces/alice/jobs/$job.json",
       "$name - the job is in alice's workspace");

    my $answer = { expert => 'interactive', jobId => $job, answer => 'yes' };

    $c = run_post('/agents/', $answer, 'Authorization' => 'Bearer bob-token');
    check_error("$name: bob answers", $c, 404, 'job_not_found',
                jobId => $job);

    $c = run_post('/agents/', $answer, @alice);
    check_run("$name: alice answers", $c, expert => 'interactive',
              job => $job, continued => 1, outcome => 'completed',
              exit_code => 0);

    my @l = log_lines("$x->{s}/logs/approve.log");
    is_deeply([ @l[$before .. $#l] ],
              [ 'new interactive alice 204', 'answer interactive bob 204',
                'answer interactive alice 204' ],
              "$name - the application approved each step, and named "
              . "the user");
}

# Two executions per user: a third waits in the queue, then gets 429;
# another user's runs meanwhile.  A held run's credential works from the
# host, and not after its run.
sub production_limit {
    my ($x) = @_;
    my $name = "$x->{name} (limit)";
    my @alice = ('Authorization' => 'Bearer alice-token');
    my (@held, $cred);

    for my $i (1, 2) {
        my $h = open_stream(method => 'GET',
                            path => '/agents/?expert=llm&query=hold+on',
                            headers => \@alice);
        ok($h->wait_event('llmCall', 30), "$name - alice's run $i holds");
        push @held, $h;
    }

    my $xe = $held[0]->first_event('perstack.execution');
    my $info = container_info($xe ? $xe->{json}{container} : 'none');
    my %env = env_of($info);
    $cred = $env{ANTHROPIC_API_KEY} // '';
    my $c = gw($x, key_header('bearer', $cred));
    is($c->{status}, 200, "$name - a held run's credential works");

    $c = run_get('/agents/?expert=llm&query=hi',
                 'Authorization' => 'Bearer bob-token');
    check_run("$name - bob runs meanwhile", $c, expert => 'llm',
              outcome => 'completed', exit_code => 0);

    # alice's third waits in the queue: the gateway answers a call made
    # after it while it has no answer; then queue_timeout refuses it
    my $t0 = Time::HiRes::time();
    my $e = unique_name('support');
    my $q = open_stream(method => 'GET', path => "/agents/?expert=$e&query=hi",
                        headers => \@alice);
    $c = gw($x, key_header('bearer', $cred));
    is($c->{status}, 200, "$name - the gateway answers meanwhile");
    $q->read_available;
    ok(!defined $q->{status},
       "$name - alice's third was not answered before that (queued)");
    ok($q->read_until(sub { $_[0]{complete} }, 20),
       "$name - alice's third is answered");
    check_refused("$name - alice's third", $q, max => 32, per_key => 2);
    $q->close;
    no_container_for("$name - alice's third", $t0, $e);

    # a client that goes leaves its execution running for
    # perstack_detach_timeout, to come back to: alice cancels them
    for my $h (@held) {
        my $hx = $h->first_event('perstack.execution');
        my $id = $hx ? $hx->{json}{execution} : '';
        $h->close;
        my $d = http_request(method => 'DELETE',
                             path => "/agents/?execution=$id",
                             headers => \@alice, timeout => 10);
        is($d->{status}, 202, "$name - alice cancels a held run");
        ok(defined wait_container_gone($hx ? $hx->{json}{container} : '',
                                       20),
           "$name - a held run's container is gone once it is cancelled");
    }

    check_refused("$name (a held run's credential, after it)",
                  gw($x, key_header('bearer', $cred)), 'invalid_credential');
}


# ---- every file ------------------------------------------------------------

my @files = sort glob "$Examples/*.conf";
ok(scalar @files, "conf-examples/ has configurations");

for my $file (@files) {
    my $base = File::Basename::basename($file);
    my $flows = $Flows{$base};

    ok($flows, "conf-examples/$base has its flows in this test") or next;
    $flows->("conf-examples/$base", slurp($file));
}
