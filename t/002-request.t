# Requests refused before any stream: the status, a JSON error body checked
# field by field, and no container created for any of them.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx::Socket;
use Perstack;

ensure_test_images();

my $config = <<'_EOC_';
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        client_body_buffer_size 1k;
        client_max_body_size 1m;
    }

    location = /big {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        client_body_buffer_size 256k;
        client_max_body_size 1m;
    }

    location = /allow {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_expert_allow "demo|interactive";
    }

    location = /pinned {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_expert $http_x_expert;
    }

    location = /pinned-query {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_query $http_x_query;
    }

    location = /noimage {
        perstack_execute;
        perstack_image perstack-demo:no-such-tag;
    }

    location = /noimage-var {
        perstack_execute;
        perstack_image "perstack-test-missing:$arg_tag";
    }

    location = /nodocker {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_docker unix:/nonexistent.sock;
    }

    location = /nodocker-tcp {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_docker http://127.0.0.1:1;
    }

    location = /startfail {
        perstack_execute;
        perstack_image perstack-test-startfail:latest;
    }

    location = /createfail {
        perstack_execute;
        perstack_image perstack-test-createfail:latest;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $config) unless defined $block->config;
    $block->set_value('containers_created', 0)
        unless defined $block->containers_created;
});

run_tests();

__DATA__

=== TEST 1: POST: invalid JSON
--- request eval
"POST /run\n" . '{"expert":"demo","query":"hi"'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 2: POST: not JSON at all
--- request eval
"POST /run\n" . 'expert=demo&query=hi'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 3: POST: a JSON array
--- request eval
"POST /run\n" . '["demo","hi"]'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 4: POST: a JSON string
--- request eval
"POST /run\n" . '"demo"'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 5: POST: JSON null
--- request eval
"POST /run\n" . 'null'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 6: POST: an unknown field
--- request eval
"POST /run\n" . '{"expert":"demo","query":"hi","model":"gpt"}'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 7: POST: an unknown field whose name needs escaping
--- request eval
"POST /run\n" . '{"expert":"demo","query":"hi","a\"b\\\\c\n":1}'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 8: POST: query is a number
--- request eval
"POST /run\n" . '{"expert":"demo","query":5}'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 9: POST: expert is an array
--- request eval
"POST /run\n" . '{"expert":["demo"],"query":"hi"}'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 10: POST: expert is null
--- request eval
"POST /run\n" . '{"expert":null,"query":"hi"}'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 11: POST: query is an object
--- request eval
"POST /run\n" . '{"expert":"demo","query":{"text":"hi"}}'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 12: POST: a duplicate field
--- request eval
"POST /run\n" . '{"expert":"demo","expert":"interactive","query":"hi"}'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 13: POST: a duplicate query
--- request eval
"POST /run\n" . '{"expert":"demo","query":"a","query":"b"}'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 14: POST: bytes after the object
--- request eval
"POST /run\n" . '{"expert":"demo","query":"hi"} {}'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 15: POST: an empty body
--- raw_request eval
"POST /run HTTP/1.1\r
Host: localhost\r
Content-Type: application/json\r
Connection: close\r
Content-Length: 0\r
\r
"
--- error_code: 400
--- json_error
error: bad_request
message: ~empty



=== TEST 16: POST: no body at all
--- raw_request eval
"POST /run HTTP/1.1\r
Host: localhost\r
Content-Type: application/json\r
Connection: close\r
\r
"
--- error_code: 400
--- json_error
error: bad_request



=== TEST 17: POST: no query
--- request eval
"POST /run\n" . '{"expert":"demo"}'
--- error_code: 400
--- json_error
error: bad_request
message: ~query



=== TEST 18: POST: no expert
--- request eval
"POST /run\n" . '{"query":"hi"}'
--- error_code: 400
--- json_error
error: bad_request
message: ~expert



=== TEST 19: POST: an empty object
--- request eval
"POST /run\n" . '{}'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 20: POST: an empty expert
--- request eval
"POST /run\n" . '{"expert":"","query":"hi"}'
--- error_code: 400
--- json_error
error: bad_request
message: ~expert



=== TEST 21: POST: an empty query
--- request eval
"POST /run\n" . '{"expert":"demo","query":""}'
--- error_code: 400
--- json_error
error: bad_request
message: ~query



=== TEST 22: POST: a NUL in the query (\u0000)
--- request eval
"POST /run\n" . '{"expert":"demo","query":"a\u0000b"}'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 23: POST: a NUL in the expert (\u0000)
--- request eval
"POST /run\n" . '{"expert":"demo\u0000","query":"hi"}'
--- error_code: 400
--- json_error
error: bad_request



=== TEST 24: GET: no arguments
--- request
GET /run
--- error_code: 400
--- json_error
error: bad_request



=== TEST 25: GET: no query
--- request
GET /run?expert=demo
--- error_code: 400
--- json_error
error: bad_request
message: ~query



=== TEST 26: GET: no expert
--- request
GET /run?query=hello+there
--- error_code: 400
--- json_error
error: bad_request
message: ~expert



=== TEST 27: GET: an empty expert
--- request
GET /run?expert=&query=hi
--- error_code: 400
--- json_error
error: bad_request



=== TEST 28: GET: %00 in the query
--- request
GET /run?expert=demo&query=a%00b
--- error_code: 400
--- json_error
error: bad_request
message: ~NUL



=== TEST 29: GET: %00 in the expert
--- request
GET /run?expert=demo%00&query=hi
--- error_code: 400
--- json_error
error: bad_request
message: ~NUL



=== TEST 30: PUT is not allowed
--- request eval
"PUT /run\n" . '{"expert":"demo","query":"hi"}'
--- error_code: 405
--- response_headers
Allow: GET, POST, DELETE
--- json_error
error: method_not_allowed



=== TEST 31: DELETE names an execution: without one it is 400
--- request
DELETE /run?expert=demo&query=hi
--- error_code: 400
--- json_error
error: bad_execution



=== TEST 32: OPTIONS is not allowed
--- request
OPTIONS /run
--- error_code: 405
--- response_headers
Allow: GET, POST, DELETE
--- json_error
error: method_not_allowed



=== TEST 33: HEAD is not allowed (no body)
--- request
HEAD /run?expert=demo&query=hi
--- error_code: 405
--- response_headers
Allow: GET, POST, DELETE
Content-Type: application/json
--- response_body



=== TEST 34: PUT with a body larger than client_body_buffer_size is 405, not 413
--- request eval
"PUT /run\n" . ("x" x 5000)
--- error_code: 405
--- response_headers
Allow: GET, POST, DELETE
--- json_error
error: method_not_allowed



=== TEST 35: a body larger than client_body_buffer_size
--- request eval
"POST /run\n" . '{"expert":"demo","query":"' . ("a" x 2000) . '"}'
--- error_code: 413
--- json_error
error: body_too_large



=== TEST 35b: a body larger than client_body_buffer_size, sent after the header
--- raw_request eval
my $body = '{"expert":"demo","query":"' . ("a" x 2000) . '"}';
["POST /run HTTP/1.1\r
Host: localhost\r
Content-Type: application/json\r
Connection: close\r
Content-Length: " . length($body) . "\r
\r
", $body]
--- raw_request_middle_delay: 0.2
--- error_code: 413
--- json_error
error: body_too_large



=== TEST 35c: a body much larger than client_body_buffer_size and the header buffers
--- request eval
"POST /run\n" . '{"expert":"demo","query":"' . ("a" x 20000) . '"}'
--- error_code: 413
--- json_error
error: body_too_large



=== TEST 36: a chunked body larger than client_body_buffer_size
--- raw_request eval
my $body = '{"expert":"demo","query":"' . ("a" x 3000) . '"}';
"POST /run HTTP/1.1\r
Host: localhost\r
Content-Type: application/json\r
Connection: close\r
Transfer-Encoding: chunked\r
\r
" . sprintf("%x", 1000) . "\r\n" . substr($body, 0, 1000) . "\r\n"
  . sprintf("%x", length($body) - 1000) . "\r\n" . substr($body, 1000) . "\r\n"
  . "0\r\n\r\n"
--- error_code: 413
--- json_error
error: body_too_large



=== TEST 37: a body of exactly client_body_buffer_size is parsed (403, not 413)
--- request eval
my $head = '{"expert":"not allowed","query":"';
my $tail = '"}';
"POST /run\n" . $head . ("q" x (1024 - length($head) - length($tail))) . $tail
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: not allowed



=== TEST 38: a chunked body is parsed
--- raw_request eval
my $body = '{"expert":"../x","query":"hi"}';
"POST /run HTTP/1.1\r
Host: localhost\r
Content-Type: application/json\r
Connection: close\r
Transfer-Encoding: chunked\r
\r
" . "5\r\n" . substr($body, 0, 5) . "\r\n"
  . sprintf("%x", length($body) - 5) . "\r\n" . substr($body, 5) . "\r\n"
  . "0\r\n\r\n"
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: ../x



=== TEST 39: a query longer than 64k
--- request eval
"POST /big\n" . '{"expert":"demo","query":"' . ("a" x 70000) . '"}'
--- error_code: 400
--- json_error
error: bad_request
message: ~too long



=== TEST 40: expert not allowed: a path
--- request
GET /run?expert=../../etc/passwd&query=hi
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: ../../etc/passwd



=== TEST 41: expert not allowed: a space ("+" decodes to a space)
--- request
GET /run?expert=demo+expert&query=hi
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: demo expert



=== TEST 42: expert not allowed: a leading dash (would be an option)
--- request
GET /run?expert=-demo&query=hi
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: -demo



=== TEST 43: expert not allowed: a trailing newline (anchored at the very end)
--- request
GET /run?expert=demo%0A&query=hi
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: ~\Ademo\n\z



=== TEST 44: expert not allowed: 129 characters
--- request eval
"GET /run?expert=" . ("a" x 129) . "&query=hi"
--- error_code: 403
--- json_error eval
"error: expert_not_allowed\nexpert: " . ("a" x 129) . "\n"



=== TEST 45: expert not allowed: "@" alone
--- request
GET /run?expert=%40&query=hi
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: @



=== TEST 46: expert not allowed: non-ASCII
--- request
GET /run?expert=d%C3%A9mo&query=hi
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: ~\Ad\x{e9}mo\z



=== TEST 47: expert not allowed: quotes, backslash and a control character are escaped in the JSON
--- request eval
"POST /run\n" . '{"expert":"a\"b\\\\c\u0001","query":"hi"}'
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: ~\Aa"b\\c\x01\z



=== TEST 48: expert not allowed: bytes that are not UTF-8 still give valid JSON
--- request
GET /run?expert=%FF%FEdemo&query=hi
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: ~demo\z



=== TEST 49: perstack_expert_allow: the whole name must match (suffix)
--- request
GET /allow?expert=demox&query=hi
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: demox



=== TEST 50: perstack_expert_allow: the whole name must match (prefix)
--- request
GET /allow?expert=xinteractive&query=hi
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: xinteractive



=== TEST 51: perstack_expert_allow: a name the default allows is refused
--- request
GET /allow?expert=error&query=hi
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: error



=== TEST 52: perstack_expert overrides the body, and is checked too
--- request eval
"POST /pinned\n" . '{"expert":"demo","query":"hi"}'
--- more_headers
X-Expert: not/allowed!
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: not/allowed!



=== TEST 53: perstack_expert overrides the arguments, even when it is empty
--- request
GET /pinned?expert=demo&query=hi
--- error_code: 400
--- json_error
error: bad_request
message: ~expert



=== TEST 54: perstack_query overrides the body, even when it is empty
--- request eval
"POST /pinned-query\n" . '{"expert":"demo","query":"hi"}'
--- error_code: 400
--- json_error
error: bad_request
message: ~query



=== TEST 55: the image does not exist
--- request
GET /noimage?expert=demo&query=hi
--- error_code: 502
--- json_error
error: image_not_found
image: perstack-demo:no-such-tag



=== TEST 56: the image (from a variable) does not exist
--- request
GET /noimage-var?expert=demo&query=hi&tag=v9
--- error_code: 502
--- json_error
error: image_not_found
image: perstack-test-missing:v9



=== TEST 57: no Docker Engine on the socket
--- request
GET /nodocker?expert=demo&query=hi
--- error_code: 502
--- json_error
error: docker_unavailable
message: ~\Aping: the Docker engine cannot be reached\z
--- error_log
ping: cannot reach the Docker engine at "unix:/nonexistent.sock"



=== TEST 58: no Docker Engine at the address
--- request eval
"POST /nodocker-tcp\n" . '{"expert":"demo","query":"hi"}'
--- error_code: 502
--- json_error
error: docker_unavailable
message: ~\Aping: the Docker engine cannot be reached\z
--- error_log
ping: cannot reach the Docker engine at "http://127.0.0.1:1"



=== TEST 59: the container cannot start (its /tmp is a file): docker_error, and it is removed
--- request
GET /startfail?expert=demo&query=hi
--- error_code: 502
--- json_error
error: docker_error
message: ~start
--- containers_created: 1



=== TEST 60: the container cannot be created (its /workspace is a file): docker_error
--- request
GET /createfail?expert=demo&query=hi
--- error_code: 502
--- json_error
error: docker_error
message: ~create
