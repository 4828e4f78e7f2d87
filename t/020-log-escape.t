# What a client sends reaches the error log escaped: control bytes, '"',
# '\' and bytes past 0x7e as \xNN, as nginx's access log writes them.  A
# CR/LF in an expert's name or a workspace name cannot start a line of
# its own (the engine's words: t/016).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx::Socket;
use Perstack;

# every forged line would start with this
our $Forged = qr{^2026/01/01 00:00:00 \[warn\] 1#1: forged};

run_tests();

__DATA__

=== TEST 1: an expert's name with CR/LF is logged on one line, escaped
--- config
    location = /run {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
    }
--- request
GET /run?expert=x%0D%0A2026/01/01+00:00:00+%5Bwarn%5D+1%231:+forged+%22expert%22&query=hi
--- error_code: 403
--- json_error
error: expert_not_allowed
expert: ~\Ax\r\n2026/01/01 00:00:00 \[warn\] 1#1: forged "expert"\z
--- containers_created: 0
--- error_log
perstack: expert "x\x0D\x0A2026/01/01 00:00:00 [warn] 1#1: forged \x22expert\x22" is not allowed
--- no_error_log eval
[$main::Forged, '[alert]', '[crit]', '[emerg]']



=== TEST 2: a workspace name with CR/LF is encoded, in the log too
--- config
    # the URI is decoded: %0D%0A are CR and LF in $ws
    location ~ ^/ws(?<ws>/(?s:.*))$ {
        perstack_execute;
        perstack_image $TEST_NGINX_PERSTACK_IMAGE;
        perstack_workspace $ws;
        perstack_workspace_root /nonexistent/perstack-t020;
    }
--- request
GET /ws/outside%0D%0A2026/01/01%2000:00:00%20%5Bwarn%5D%201%231:%20forged%20workspace?expert=demo&query=hi
--- error_code: 500
--- json_error
error: workspace_unavailable
--- containers_created: 0
--- error_log
perstack: preparing workspace "/nonexistent/perstack-t020/%2Foutside%0D%0A2026%2F01%2F01%2000%3A00%3A00%20%5Bwarn%5D%201%231%3A%20forged%20workspace/workspace" failed: open() of perstack_workspace_root
--- no_error_log eval
[$main::Forged, '[alert]', '[emerg]']
