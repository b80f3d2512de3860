# learn_balancer: the upstream balancer that learns each peer's response
# time.  The backends are server blocks of the same nginx on 127.0.0.1
# (echo_sleep for delays); a server pointing at a closed port is a
# stopped backend.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

no_shuffle();

# N proxied requests, then learn_status
sub reqs { my ($n, $uri) = @_; [ (map { "GET " . ($uri // '/t') } 1 .. $n),
                                 "GET /status" ] }
sub codes { my ($n, $code) = @_; [ ($code // 200) x $n, 200 ] }

run_tests();

__DATA__

=== TEST 1: the slow peer gets almost none of the traffic
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=0;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
        server 127.0.0.1:1987;
    }
    server { listen 127.0.0.1:1985; location / { echo_sleep 0.002; echo fast1; } }
    server { listen 127.0.0.1:1986; location / { echo_sleep 0.002; echo fast2; } }
    server { listen 127.0.0.1:1987; location / { echo_sleep 0.05; echo slow; } }
--- config
    location /t { proxy_pass http://back; }
    location = /status { learn_status; }
--- request eval
main::reqs(40)
--- error_code eval
main::codes(40)
--- response_body_like eval
[ (map { qr/^(fast1|fast2|slow)$/ } 1 .. 40),
  qr/"back": \{"balancer": "learn", .*"127\.0\.0\.1:1987": \{"picks": 1, / ]
--- no_error_log
[error]
[alert]



=== TEST 2: with exploration the slow peer still gets a small share
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=0.05;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
        server 127.0.0.1:1987;
    }
    server { listen 127.0.0.1:1985; location / { echo_sleep 0.002; echo fast1; } }
    server { listen 127.0.0.1:1986; location / { echo_sleep 0.002; echo fast2; } }
    server { listen 127.0.0.1:1987; location / { echo_sleep 0.03; echo slow; } }
--- config
    location /t { proxy_pass http://back; }
    location = /status { learn_status; }
--- request eval
main::reqs(60)
--- error_code eval
main::codes(60)
--- response_body_like eval
[ (map { qr/^(fast1|fast2|slow)$/ } 1 .. 60),
  qr/"127\.0\.0\.1:1987": \{"picks": [1-7], "in_flight": 0, "explored": \d/ ]



=== TEST 3: a peer failing fast (retried 500) does not look fast
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=0;
        server 127.0.0.1:1985 max_fails=0;
        server 127.0.0.1:1986;
        server 127.0.0.1:1987;
    }
    server { listen 127.0.0.1:1985; location / { return 500; } }
    server { listen 127.0.0.1:1986; location / { echo_sleep 0.01; echo ok1; } }
    server { listen 127.0.0.1:1987; location / { echo_sleep 0.01; echo ok2; } }
--- config
    location /t {
        proxy_pass http://back;
        proxy_next_upstream error timeout http_500;
    }
    location = /status { learn_status; }
--- request eval
main::reqs(30)
--- error_code eval
main::codes(30)
--- response_body_like eval
[ (map { qr/^ok[12]$/ } 1 .. 30),
  qr/"127\.0\.0\.1:1985": \{"picks": 1, "in_flight": 0, "explored": 0, "failures": 1, / ]



=== TEST 4: a 500 passed to the client counts as a failure too
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=0;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
        server 127.0.0.1:1987;
    }
    server { listen 127.0.0.1:1985; location / { return 500; } }
    server { listen 127.0.0.1:1986; location / { echo_sleep 0.01; echo ok1; } }
    server { listen 127.0.0.1:1987; location / { echo_sleep 0.01; echo ok2; } }
--- config
    location /t {
        proxy_pass http://back;
        proxy_intercept_errors on;
        error_page 500 = /fallback;
    }
    location = /fallback { return 200 "fallback\n"; }
    location = /status { learn_status; }
--- request eval
main::reqs(30)
--- error_code eval
main::codes(30)
--- response_body_like eval
[ (map { qr/^(ok[12]|fallback)$/ } 1 .. 30),
  qr/"127\.0\.0\.1:1985": \{"picks": 1, "in_flight": 0, "explored": 0, "failures": 1, / ]



=== TEST 5: a stopped backend: clients see no error, it stops getting picked
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer;
        server 127.0.0.1:1989;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
    }
    server { listen 127.0.0.1:1985; location / { echo ok1; } }
    server { listen 127.0.0.1:1986; location / { echo ok2; } }
--- config
    location /t { proxy_pass http://back; }
    location = /status { learn_status; }
--- request eval
main::reqs(30)
--- error_code eval
main::codes(30)
--- response_body_like eval
[ (map { qr/^ok[12]$/ } 1 .. 30),
  qr/"127\.0\.0\.1:1989": \{"picks": 1, "in_flight": 0, "explored": 0, "failures": 1, / ]



=== TEST 6: down is never picked, backup takes over when the primaries fail
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=1;
        server 127.0.0.1:1989 max_fails=1 fail_timeout=30s;
        server 127.0.0.1:1985 down;
        server 127.0.0.1:1986 backup;
    }
    server { listen 127.0.0.1:1985; location / { echo down; } }
    server { listen 127.0.0.1:1986; location / { echo backup; } }
--- config
    location /t { proxy_pass http://back; }
    location = /status { learn_status; }
--- request eval
main::reqs(10)
--- error_code eval
main::codes(10)
--- response_body_like eval
[ (map { qr/^backup$/ } 1 .. 10),
  qr/"127\.0\.0\.1:1985": \{"picks": 0, .*"backup": false, "down": true, .*"127\.0\.0\.1:1986": \{"picks": 10, .*"backup": true/ ]



=== TEST 7: weight: a heavier peer of equal speed is preferred
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=0;
        server 127.0.0.1:1985 weight=100;
        server 127.0.0.1:1986;
    }
    server { listen 127.0.0.1:1985; location / { echo_sleep 0.005; echo heavy; } }
    server { listen 127.0.0.1:1986; location / { echo_sleep 0.005; echo light; } }
--- config
    location /t { proxy_pass http://back; }
    location = /status { learn_status; }
--- request eval
main::reqs(20)
--- error_code eval
main::codes(20)
--- response_body_like eval
[ (map { qr/^(heavy|light)$/ } 1 .. 20),
  qr/"127\.0\.0\.1:1986": \{"picks": 1, / ]



=== TEST 8: with zone and keepalive, all workers' view is shared and learned
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        zone back 64k;
        learn_balancer explore=0;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
        server 127.0.0.1:1987;
        keepalive 8;
    }
    server { listen 127.0.0.1:1985; location / { echo_sleep 0.002; echo fast1; } }
    server { listen 127.0.0.1:1986; location / { echo_sleep 0.002; echo fast2; } }
    server { listen 127.0.0.1:1987; location / { echo_sleep 0.05; echo slow; } }
--- config
    location /t {
        proxy_pass http://back;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
    location = /status { learn_status; }
--- request eval
main::reqs(30)
--- error_code eval
main::codes(30)
--- response_body_like eval
[ (map { qr/^(fast1|fast2|slow)$/ } 1 .. 30),
  qr/"updates": 30, .*"127\.0\.0\.1:1987": \{"picks": 1, / ]
--- no_error_log
[error]



=== TEST 9: $learn_upstream_predicted_ms for access logs and headers
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
    }
    server { listen 127.0.0.1:1985; location / { echo_sleep 0.01; echo a; } }
    server { listen 127.0.0.1:1986; location / { echo_sleep 0.01; echo b; } }
--- config
    location /t {
        proxy_pass http://back;
        add_header X-Predicted $learn_upstream_predicted_ms;
        add_header X-Pin $learn_upstream_pin;
    }
--- request eval
[ "GET /t", "GET /t", "GET /t" ]
--- error_code eval
[200, 200, 200]
--- response_headers_like eval
[ "X-Predicted: 0\\.000\nX-Pin: none",
  "X-Predicted: 0\\.000\nX-Pin: none",
  "X-Predicted: (9|1\\d)\\.\\d{3}\nX-Pin: none" ]



=== TEST 10: an unknown learn_balancer parameter stops nginx -t
--- http_config
    upstream back {
        learn_balancer speed=11;
        server 127.0.0.1:1985;
    }
--- config
    location /t { proxy_pass http://back; }
--- must_die
--- error_log
invalid parameter "speed=11"



=== TEST 11: learn_status lists the upstream, its model and each peer
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
    }
    server { listen 127.0.0.1:1985; location / { echo a; } }
    server { listen 127.0.0.1:1986; location / { echo b; } }
--- config
    location /t { proxy_pass http://back; }
    location = /status { learn_status; }
--- request eval
main::reqs(2)
--- error_code eval
main::codes(2)
--- response_body_like eval
[ qr/^[ab]$/, qr/^[ab]$/,
  qr/^\{"models": \{\}, "upstreams": \{"back": \{"balancer": "learn", "explore": 0\.005, "picks": 2, "pick_ns": \d+, "updates": 2, "moves": 0, "latency_ms": [\d.e-]+, "error_ms": [\d.e-]+, "weights": \[[-\d.e, ]+\], "peers": \{"127\.0\.0\.1:1985": \{"picks": 1, "in_flight": 0, "explored": 0, "failures": 0, "pins": 0, "backup": false, "down": false, "predicted_ms": [\d.e-]+, "observed_ms": [\d.e-]+, "latency_ms": [\d.e-]+, "fail_rate": 0\}, "127\.0\.0\.1:1986": \{"picks": 1, .*\}\}\}\}\}\n$/ ]
