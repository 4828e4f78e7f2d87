# Cross-site requests: a page of another site must not start an execution
# with the user's cookies.  A request whose Origin is neither its own
# (scheme and Host) nor listed by perstack_allow_origin gets 403
# cross_site, and so does one without Origin that a browser marks
# Sec-Fetch-Site: cross-site or same-site (a link, an <img>); "Origin:
# null" is another site.  A POST that is not application/json gets 415
# unsupported_media_type: a text/plain form can write a JSON body, not
# that type.  A listed origin gets CORS headers, on the stream and on
# errors, and its preflight 204.  None of the refused requests gets a
# container.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx::Socket;
use Perstack;

our $Config = <<'_EOC_';
    perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    perstack_env PERSTACK_DEMO_DELAY_MS 0;

    # inherited by the locations without a list of their own
    perstack_allow_origin http://server.example;

    location = /run {
        perstack_execute;
    }

    location = /app {
        perstack_execute;
        perstack_allow_origin http://127.0.0.2:$TEST_NGINX_SERVER_PORT;
        perstack_allow_origin https://app.example:443 http://[::1]:8080;
    }

    location = /rules {
        perstack_execute;
        perstack_approve $http_x_a;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $main::Config) unless defined $block->config;
});

run_tests();

__DATA__

=== TEST 1: an <img> of another site (Sec-Fetch-Site: cross-site, no Origin): 403, no container
--- request
GET /run?expert=demo&query=x
--- more_headers
Sec-Fetch-Site: cross-site
Sec-Fetch-Mode: no-cors
Sec-Fetch-Dest: image
--- error_code: 403
--- json_error
error: cross_site
--- containers_created: 0
--- error_log
perstack: cross-site request refused: Origin "", Sec-Fetch-Site "cross-site"



=== TEST 2: a link from another host of the same site (Sec-Fetch-Site: same-site, no Origin): 403
--- request
GET /run?expert=demo&query=x
--- more_headers
Sec-Fetch-Site: same-site
Sec-Fetch-Mode: navigate
--- error_code: 403
--- json_error
error: cross_site
--- containers_created: 0



=== TEST 3: a text/plain form whose field name writes JSON: 415, no container
--- request eval
"POST /run\n" . '{"expert":"demo","query":"x=y"}'
--- more_headers
Content-Type: text/plain
--- error_code: 415
--- json_error
error: unsupported_media_type
--- containers_created: 0



=== TEST 4: a urlencoded form: 415
--- request eval
"POST /run\n" . 'expert=demo&query=x'
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 415
--- json_error
error: unsupported_media_type
--- containers_created: 0



=== TEST 5: a POST without Content-Type: 415
--- raw_request eval
my $body = '{"expert":"demo","query":"x"}';
"POST /run HTTP/1.1\r
Host: localhost\r
Connection: close\r
Content-Length: " . length($body) . "\r
\r
$body"
--- error_code: 415
--- json_error
error: unsupported_media_type
--- containers_created: 0



=== TEST 6: application/jsonp is not JSON: 415
--- request eval
"POST /run\n" . '{"expert":"demo","query":"x"}'
--- more_headers
Content-Type: application/jsonp
--- error_code: 415
--- json_error
error: unsupported_media_type
--- containers_created: 0



=== TEST 7: Application/JSON with a charset is JSON (the body is parsed: 403 for the expert)
--- request eval
"POST /run\n" . '{"expert":"not allowed","query":"x"}'
--- more_headers
Content-Type: Application/JSON ; charset=UTF-8
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: not allowed
--- containers_created: 0



=== TEST 8: a form POST of another site (Origin of another site): 403, before the body
--- request eval
"POST /run\n" . '{"expert":"demo","query":"x=y"}'
--- more_headers
Content-Type: text/plain
Origin: http://127.0.0.2:1984
Sec-Fetch-Site: cross-site
--- error_code: 403
--- json_error
error: cross_site
--- containers_created: 0
--- error_log
perstack: cross-site request refused: Origin "http://127.0.0.2:1984", Sec-Fetch-Site "cross-site"



=== TEST 9: a fetch() of another site, even as JSON: 403
--- request eval
"POST /run\n" . '{"expert":"demo","query":"x"}'
--- more_headers
Origin: https://evil.example
--- error_code: 403
--- json_error
error: cross_site
--- containers_created: 0



=== TEST 10: Origin: null (a sandboxed frame, a redirect across sites): 403
--- request
GET /run?expert=demo&query=x
--- more_headers
Origin: null
--- error_code: 403
--- json_error
error: cross_site
--- containers_created: 0



=== TEST 11: the same host on another port is another origin: 403
--- request
GET /run?expert=demo&query=x
--- more_headers
Origin: http://localhost:1
--- error_code: 403
--- json_error
error: cross_site
--- containers_created: 0



=== TEST 12: https for an http request is another origin: 403
--- request
GET /run?expert=demo&query=x
--- more_headers
Origin: https://localhost
--- error_code: 403
--- json_error
error: cross_site
--- containers_created: 0



=== TEST 13: the request's own origin runs (no CORS headers)
--- request eval
"POST /run\n" . '{"expert":"demo","query":"own origin"}'
--- more_headers
Origin: http://localhost
Sec-Fetch-Site: same-origin
--- stream: sse
--- expert: demo
--- containers_created: 1
--- response_headers
!Access-Control-Allow-Origin
!Access-Control-Allow-Credentials



=== TEST 14: the own origin with the Host's port and an explicit default port
--- request
GET /run?expert=demo&query=own+port
--- more_headers
Host: LocalHost:80
Origin: http://localhost
--- stream: sse
--- expert: demo
--- containers_created: 1



=== TEST 15: the own origin with a port that is not the default
--- request
GET /run?expert=demo&query=own+port
--- more_headers
Host: 127.0.0.1:8443
Origin: http://127.0.0.1:8443
--- stream: sse
--- expert: demo
--- containers_created: 1



=== TEST 16: no Origin, no Sec-Fetch-Site (curl, a server): runs
--- request
GET /run?expert=demo&query=no+browser
--- stream: sse
--- expert: demo
--- containers_created: 1



=== TEST 17: Sec-Fetch-Site: none (the user typed the address): runs
--- request
GET /run?expert=demo&query=typed
--- more_headers
Sec-Fetch-Site: none
--- stream: sse
--- expert: demo
--- containers_created: 1



=== TEST 18: a listed origin (an EventSource withCredentials): runs, with CORS headers
--- request
GET /app?expert=demo&query=listed
--- more_headers eval
"Origin: http://127.0.0.2:$Test::Nginx::Util::ServerPort
Sec-Fetch-Site: cross-site
Sec-Fetch-Mode: cors"
--- stream: sse
--- expert: demo
--- containers_created: 1
--- response_headers eval
"Access-Control-Allow-Origin: http://127.0.0.2:$Test::Nginx::Util::ServerPort
Access-Control-Allow-Credentials: true
Vary: Origin"



=== TEST 19: a listed origin written with its default port matches the browser's Origin
--- request
GET /app?expert=demo&query=listed
--- more_headers
Origin: https://app.example
--- stream: sse
--- expert: demo
--- containers_created: 1
--- response_headers
Access-Control-Allow-Origin: https://app.example
Access-Control-Allow-Credentials: true



=== TEST 20: a location's own list replaces the inherited one
--- request
GET /app?expert=demo&query=x
--- more_headers
Origin: http://server.example
--- error_code: 403
--- json_error
error: cross_site
--- containers_created: 0
--- response_headers
Vary: Origin
!Access-Control-Allow-Origin



=== TEST 21: the inherited list applies where a location has none
--- request
GET /run?expert=demo&query=inherited
--- more_headers
Origin: http://server.example
--- stream: sse
--- expert: demo
--- containers_created: 1
--- response_headers
Access-Control-Allow-Origin: http://server.example



=== TEST 22: an error for a listed origin carries the CORS headers (the page can read it)
--- request eval
"POST /app\n" . '{"expert":"demo"}'
--- more_headers
Origin: https://app.example
--- error_code: 400
--- json_error
error: bad_request
message: ~no query
--- containers_created: 0
--- response_headers
Access-Control-Allow-Origin: https://app.example
Access-Control-Allow-Credentials: true
Vary: Origin



=== TEST 23: a header rule still refuses a listed origin's request, with CORS headers
--- request
GET /rules?expert=demo&query=x
--- more_headers
Origin: http://server.example
--- error_code: 403
--- json_error
error: not_approved
rule: 1
--- containers_created: 0
--- response_headers
Access-Control-Allow-Origin: http://server.example



=== TEST 24: a listed origin's preflight: 204 with the methods and headers
--- request
OPTIONS /app
--- more_headers
Origin: https://app.example
Access-Control-Request-Method: POST
Access-Control-Request-Headers: content-type
--- error_code: 204
--- response_body
--- response_headers
Access-Control-Allow-Origin: https://app.example
Access-Control-Allow-Credentials: true
Access-Control-Allow-Methods: GET, POST, DELETE
Access-Control-Allow-Headers: Content-Type, Last-Event-ID
Access-Control-Max-Age: 600
Vary: Origin
--- containers_created: 0



=== TEST 25: a preflight from an origin that is not listed: 403
--- request
OPTIONS /app
--- more_headers
Origin: https://evil.example
Access-Control-Request-Method: POST
--- error_code: 403
--- json_error
error: cross_site
--- response_headers
!Access-Control-Allow-Origin
--- containers_created: 0



=== TEST 26: OPTIONS that is no preflight is still 405
--- request
OPTIONS /app
--- error_code: 405
--- json_error
error: method_not_allowed
--- response_headers
Allow: GET, POST, DELETE
!Access-Control-Allow-Methods



=== TEST 27: perstack_allow_origin "*" is refused
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_allow_origin *;
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
"*" is not allowed



=== TEST 28: perstack_allow_origin with a path is refused
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_allow_origin https://app.example/;
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
invalid origin "https://app.example/"



=== TEST 29: perstack_allow_origin null is refused
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_allow_origin null;
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
invalid origin "null"



=== TEST 30: perstack_allow_origin with a port out of range is refused
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_allow_origin http://app.example:65536;
    }
--- request
GET /run
--- must_die
--- suppress_stderr
--- error_log
invalid origin "http://app.example:65536"
