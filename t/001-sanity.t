# Configuration: what nginx -t (and startup) refuses, and what it accepts.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx::Socket;
use Perstack;

run_tests();

__DATA__

=== TEST 1: perstack_execute without perstack_image
--- config
    location = /run {
        perstack_execute;
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_execute" needs "perstack_image"



=== TEST 2: perstack_image inherited from the server level is enough
--- config
    perstack_image $TEST_NGINX_PERSTACK_IMAGE;

    location = /run {
        perstack_execute;
    }

    location = /t {
        return 200 "started\n";
    }
--- request
GET /t
--- response_body
started



=== TEST 3: perstack_docker with an unknown scheme
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_docker docker.sock;
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
[emerg]
invalid Docker endpoint "docker.sock"



=== TEST 4: perstack_docker with a relative unix socket path
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_docker unix:run/docker.sock;
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
[emerg]
invalid unix socket path in "unix:run/docker.sock"



=== TEST 5: perstack_docker with a unix socket path longer than sun_path
--- config eval
"    location = /run {
        perstack_execute;
        perstack_image \$TEST_NGINX_PERSTACK_IMAGE;
        perstack_docker unix:/" . ("d" x 120) . ".sock;
    }"
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
[emerg]
invalid unix socket path



=== TEST 6: perstack_docker given twice in one location
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_docker unix:/var/run/docker.sock;
        perstack_docker unix:/var/run/docker.sock;
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_docker" directive is duplicate



=== TEST 7: perstack_expert_allow that does not compile
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_expert_allow "demo(";
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log eval
["[emerg]", qr/pcre2_compile\(\) failed: .* in "demo\(" at \d+/]



=== TEST 8: perstack_buffer_size below 16k
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_buffer_size 8k;
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
[emerg]
must be at least 16k



=== TEST 9: perstack_buffer_size of exactly 16k is accepted
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_buffer_size 16k;
    }

    location = /t {
        return 200 "started\n";
    }
--- request
GET /t
--- response_body
started



=== TEST 10: perstack_max_line below 2 bytes
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_max_line 1;
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_max_line" must be at least 2 bytes



=== TEST 11: perstack_format with an unknown value
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_format xml;
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
[emerg]
invalid value "xml"



=== TEST 12: perstack_execute twice
--- config
    location = /run {
        perstack_execute;
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_execute" directive is duplicate



=== TEST 13: perstack_execute takes no arguments
--- config
    location = /run {
        perstack_execute on;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
[emerg]
invalid number of arguments in "perstack_execute" directive



=== TEST 14: perstack_timeout with a bad time
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_timeout soon;
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_timeout" directive invalid value



=== TEST 15: perstack_execute is not allowed at the server level
--- config
    perstack_execute;
    perstack_image $TEST_NGINX_PERSTACK_IMAGE;
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
[emerg]
"perstack_execute" directive is not allowed here



=== TEST 16: every directive, at every level it is allowed at
--- http_config
    perstack_docker unix:/var/run/docker.sock;
    perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    perstack_timeout 10m;
    perstack_stop_timeout 5s;
    perstack_docker_timeout 60s;
    perstack_ping_interval 15s;
    perstack_format auto;
    perstack_buffer_size 64k;
    perstack_max_line 1m;
    perstack_expert_allow "[a-z]+";
--- config
    perstack_expert demo;
    perstack_query "$arg_q";
    perstack_format sse;

    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_docker http://127.0.0.1:2375;
        perstack_timeout 1s;
        perstack_stop_timeout 0;
        perstack_docker_timeout 1ms;
        perstack_ping_interval 0;
        perstack_format ndjson;
        perstack_buffer_size 1m;
        perstack_max_line 2;
        perstack_expert_allow ".*";
        perstack_expert $arg_e;
        perstack_query $arg_q;
    }

    location = /run2 {
        perstack_execute;
        perstack_docker tcp://127.0.0.1:2375/;
    }

    location = /t {
        return 200 "started\n";
    }
--- request
GET /t
--- response_body
started
