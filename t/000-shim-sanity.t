# Sanity checks of the test runner itself (t/lib/TestLearn.pm and the
# Test::Nginx::Socket shim in t/lib/shim).  Uses stock nginx features only;
# must pass with the shim and with the real Test::Nginx alike.

use lib 't/lib';
use TestLearn;                      # real Test::Nginx::Socket if installed, else t/lib/shim
use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: return a body, check headers and a clean error log
--- http_config
    server_tokens off;
--- config
    location = /t {
        return 200 "hello\n";
    }
--- request
GET /t
--- response_body
hello
--- response_headers
Content-Type: text/plain
Server: nginx
!X-Nothing-Here
--- error_code: 200
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 2: a missing static file gives 404 and an [error] line
--- config
--- request
GET /nope.txt
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log eval
qr{\[error\] .*open\(\) ".*/html/nope\.txt" failed}



=== TEST 3: return 500 is logged in the debug log
--- config
    location = /boom {
        return 500;
    }
--- request
GET /boom
--- error_code: 500
--- error_log
http request line: "GET /boom HTTP/1.1"
http finalize request: 500, "/boom?"
--- no_error_log
[error]



=== TEST 4: nginx must die on an unknown directive
--- config
    shim_sanity_no_such_directive on;
--- must_die
--- error_log
unknown directive "shim_sanity_no_such_directive"



=== TEST 5: user_files are served by the root location
--- config
--- user_files
>>> a.txt
file a
>>> sub/dir/b.txt
file b
--- request
GET /sub/dir/b.txt
--- response_body
file b



=== TEST 6: the default index page
--- config
--- request
GET /
--- response_body chomp
<html><head><title>It works!</title></head><body>It works!</body></html>



=== TEST 7: several requests from request eval, arrays of expectations
--- config
    location = /a { return 200 "A\n"; }
    location = /b { return 403; }
--- request eval
["GET /a", "GET /b", "GET /a"]
--- error_code eval
[200, 403, 200]
--- response_body_like eval
["^A\n\$", "403 Forbidden", "^A"]
--- no_error_log
[error]



=== TEST 8: request body: Content-Length set, surrounding white space trimmed
--- config
    location = /body {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/len;
        proxy_set_header X-Body $request_body;
    }
    location = /len {
        return 200 "len=$http_content_length body=[$http_x_body]\n";
    }
--- request
POST /body

  hello world  

--- response_body
len=11 body=[hello world]



=== TEST 9: binary request body from request eval
--- config
    location = /body {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/len;
    }
    location = /len {
        return 200 "len=$http_content_length\n";
    }
--- request eval
"POST /body\n" . pack('C*', 0 .. 255) . "xyz"
--- response_body
len=259



=== TEST 10: more_headers reach the server, Host and Connection defaults
--- config
    location = /h {
        return 200 "foo=$http_foo host=$host conn=$http_connection\n";
    }
--- more_headers
Foo: bar baz
--- request
GET /h
--- response_body
foo=bar baz host=localhost conn=close



=== TEST 11: chunked responses are decoded
--- config
    location = /c {
        sub_filter_types text/plain;
        sub_filter 'hello' 'HELLO';
        return 200 "hello chunked world\n";
    }
--- request
GET /c
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
HELLO chunked world



=== TEST 12: HEAD request, HTTP/1.0, response_body_unlike
--- config
    location = /t { return 200 "some body\n"; }
--- request
HEAD /t HTTP/1.0
--- response_headers
Content-Length: 10
--- response_body_unlike: body



=== TEST 13: raw_request is sent as is
--- config
    location = /raw { return 200 "raw $request_method $server_protocol\n"; }
--- raw_request eval
"PUT /raw HTTP/1.0\r\nContent-Length: 0\r\n\r\n"
--- response_body
raw PUT HTTP/1.0



=== TEST 14: pipelined requests
--- config
    location = /a { return 200 "A\n"; }
    location = /b { return 200 "BB\n"; }
--- pipelined_requests eval
["GET /a", "GET /b"]
--- response_body eval
["A\n", "BB\n"]



=== TEST 15: grep_error_log, main_config, $TEST_NGINX_* in the config
--- main_config
    worker_rlimit_nofile 1024;
--- config
    location = /t { return 200 "port $TEST_NGINX_SERVER_PORT\n"; }
--- request
GET /t
--- grep_error_log eval: qr/http request line: "[^"]+"/
--- grep_error_log_out
http request line: "GET /t HTTP/1.1"
--- response_body
port $TEST_NGINX_SERVER_PORT



=== TEST 16: init code runs before the request
--- config
--- init
open my $fh, '>', "$ENV{TEST_NGINX_HTML_DIR}/from-init.txt" or die $!;
print $fh "made by init\n";
close $fh;
--- request
GET /from-init.txt
--- response_body
made by init



=== TEST 17: skip_eval skips the block's tests
--- config
    location = /t { return 200 "x\n"; }
--- skip_eval: 3: 1
--- request
GET /t
--- response_body
never checked
--- no_error_log
[error]



=== TEST 18: wait and timeout sections, a response_body eval regex
--- config
    location = /t { return 200 "slowish\n"; }
--- request
GET /t
--- wait: 0.1
--- timeout: 5s
--- response_body eval
qr/^slow\w+$/
