# learn_balancer: the upstream balancer that learns each peer's response
# time.  The backends are server blocks of the same nginx on 127.0.0.1
# (echo_sleep for delays); a server pointing at a closed port is a
# stopped backend.  Two workers, reloads, fail_timeout and concurrent
# clients: t/083-balancer-workers.t.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

no_shuffle();

# Blocks whose name starts with "P2C" or "keepalive" count the
# answers of their backends (the body's first word) and check the
# spread, or the $connection_requests the backends saw (second word).
my (%seen);
add_response_body_check(sub {
    my ($block, $body, $idx, $rep, $dry_run) = @_;
    my $name = $block->name;
    return if $dry_run || $name !~ /TEST \d+: (P2C|keepalive)/;
    my @reqs = @{ $block->request };
    return if $reqs[$idx] =~ m{^GET /status};
    my ($peer, $n) = split ' ', $body;
    $seen{$name}{peer}{$peer}++;
    push @{ $seen{$name}{conn} }, $n // 0;
    return if $idx != $#reqs - 1;
    my $s = $seen{$name};
    if ($name =~ /: P2C/) {
        my $fast = $s->{peer}{fast} // 0;
        cmp_ok($fast, '>=', 10, "$name - the fast peer wins when drawn");
        cmp_ok($fast, '<=', 36,
               "$name - ... and only when drawn (two candidates, not all)");
        cmp_ok(scalar(grep { /^s\d$/ } keys %{ $s->{peer} }), '>=', 4,
               "$name - the other peers are drawn too");
    } elsif ($name =~ /not reused/) {
        is(scalar(grep { $_ > 1 } @{ $s->{conn} }), 0,
           "$name - every request had its own connection");
    } else {
        cmp_ok((sort { $b <=> $a } @{ $s->{conn} })[0], '>', 1,
               "$name - a backend saw several requests on one connection");
        cmp_ok(scalar(grep { $_ == 1 } @{ $s->{conn} }), '<=', 2,
               "$name - one new connection per peer at most");
    }
});

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



=== TEST 7: weight: a heavier peer of equal speed is preferred, its real prediction reported
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
    location /t {
        proxy_pass http://back;
        add_header X-Predicted $learn_upstream_predicted_ms;
    }
    location = /status { learn_status; }
--- request eval
main::reqs(20)
--- error_code eval
main::codes(20)
--- response_headers_like eval
[ (map { "" } 1 .. 19), "X-Predicted: [4-9]\\.\\d{3}", "" ]
--- response_body_like eval
[ (map { qr/^(heavy|light)$/ } 1 .. 20),
  qr/"127\.0\.0\.1:1985": \{"picks": 19, .*"predicted_ms": [4-9]\.\d+, "observed_ms": [4-9]\.\d+, .*"weight": 100\}, "127\.0\.0\.1:1986": \{"picks": 1, / ]



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
[ "X-Predicted: 1\\.000\nX-Pin: none",
  "X-Predicted: (9|1\\d)\\.\\d{3}\nX-Pin: none",
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
  qr/^\{"models": \{\}, "upstreams": \{"back": \{"balancer": "learn", "explore": 0\.005, "picks": 2, "pick_ns": \d+, "updates": 2, "moves": 0, "latency_ms": [\d.e-]+, "error_ms": [\d.e-]+, "weights": \[[-\d.e, ]+\], "peers": \{"127\.0\.0\.1:1985": \{"picks": 1, "in_flight": 0, "explored": 0, "failures": 0, "pins": 0, "backup": false, "down": false, "predicted_ms": [\d.e-]+, "observed_ms": [\d.e-]+, "latency_ms": [\d.e-]+, "fail_rate": 0, "weight": 1\}, "127\.0\.0\.1:1986": \{"picks": 1, .*\}\}\}\}\}\n$/ ]



=== TEST 12: P2C over six peers: the fast one wins only when it is one of the two drawn
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=0;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
        server 127.0.0.1:1987;
        server 127.0.0.1:1988;
        server 127.0.0.1:1989;
        server 127.0.0.1:1990;
    }
    server { listen 127.0.0.1:1985; location / { echo fast; } }
    server { listen 127.0.0.1:1986; location / { echo_sleep 0.02; echo s1; } }
    server { listen 127.0.0.1:1987; location / { echo_sleep 0.02; echo s2; } }
    server { listen 127.0.0.1:1988; location / { echo_sleep 0.02; echo s3; } }
    server { listen 127.0.0.1:1989; location / { echo_sleep 0.02; echo s4; } }
    server { listen 127.0.0.1:1990; location / { echo_sleep 0.02; echo s5; } }
--- config
    location /t { proxy_pass http://back; }
    location = /status { learn_status; }
--- request eval
main::reqs(60)
--- error_code eval
main::codes(60)
--- response_body_like eval
[ (map { qr/^(fast|s[1-5])$/ } 1 .. 60), qr/"updates": 60, / ]



=== TEST 13: keepalive reuses upstream connections (the backends count requests per connection)
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=0;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
        keepalive 8;
    }
    server { listen 127.0.0.1:1985; location / { echo "a $connection_requests"; } }
    server { listen 127.0.0.1:1986; location / { echo "b $connection_requests"; } }
--- config
    location /t {
        proxy_pass http://back;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
    location = /status { learn_status; }
--- request eval
main::reqs(12)
--- error_code eval
main::codes(12)
--- response_body_like eval
[ (map { qr/^[ab] \d+$/ } 1 .. 12), qr/"updates": 12, / ]



=== TEST 14: keepalive off: the same requests are not reused (the control)
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=0;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
    }
    server { listen 127.0.0.1:1985; location / { echo "a $connection_requests"; } }
    server { listen 127.0.0.1:1986; location / { echo "b $connection_requests"; } }
--- config
    location /t {
        proxy_pass http://back;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
    location = /status { learn_status; }
--- request eval
main::reqs(12)
--- error_code eval
main::codes(12)
--- response_body_like eval
[ (map { qr/^[ab] 1$/ } 1 .. 12), qr/"updates": 12, / ]



=== TEST 15: learn_status?format=prometheus has the upstream series, each family with HELP and TYPE
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer;
        learn_sticky arg=model;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986 backup;
    }
    server { listen 127.0.0.1:1985; location / { echo_sleep 0.002; echo a; } }
    server { listen 127.0.0.1:1986; location / { echo b; } }
--- config
    location /t { proxy_pass http://back; }
    location = /status { learn_status; }
--- request eval
[ "GET /t?model=m1", "GET /t?model=m1", "GET /t?model=m2",
  "GET /status?format=prometheus" ]
--- error_code eval
[ 200, 200, 200, 200 ]
--- response_body_like eval
[ qr/^a$/, qr/^a$/, qr/^a$/,
  qr/^# HELP learn_upstream_picks_total [^\n]+
# TYPE learn_upstream_picks_total counter
learn_upstream_picks_total\{upstream="back",peer="127\.0\.0\.1:1985"\} 3
learn_upstream_picks_total\{upstream="back",peer="127\.0\.0\.1:1986"\} 0
# HELP learn_upstream_explored_total [^\n]+
# TYPE learn_upstream_explored_total counter
.*# HELP learn_upstream_in_flight [^\n]+
# TYPE learn_upstream_in_flight gauge
learn_upstream_in_flight\{upstream="back",peer="127\.0\.0\.1:1985"\} 0
.*# HELP learn_upstream_failures_total [^\n]+
# TYPE learn_upstream_failures_total counter
learn_upstream_failures_total\{upstream="back",peer="127\.0\.0\.1:1985"\} 0
.*# HELP learn_upstream_pins [^\n]+
# TYPE learn_upstream_pins gauge
learn_upstream_pins\{upstream="back",peer="127\.0\.0\.1:1985"\} 2
learn_upstream_pins\{upstream="back",peer="127\.0\.0\.1:1986"\} 0
# HELP learn_upstream_predicted_ms [^\n]+
# TYPE learn_upstream_predicted_ms gauge
learn_upstream_predicted_ms\{upstream="back",peer="127\.0\.0\.1:1985"\} [\d.]+(e[-+]\d+)?
.*# HELP learn_upstream_observed_ms [^\n]+
# TYPE learn_upstream_observed_ms gauge
learn_upstream_observed_ms\{upstream="back",peer="127\.0\.0\.1:1985"\} [2-9]\.\d+
.*# HELP learn_upstream_pick_ns [^\n]+
# TYPE learn_upstream_pick_ns gauge
learn_upstream_pick_ns\{upstream="back"\} \d+
# HELP learn_upstream_updates_total [^\n]+
# TYPE learn_upstream_updates_total counter
learn_upstream_updates_total\{upstream="back"\} 3
# HELP learn_upstream_moves_total [^\n]+
# TYPE learn_upstream_moves_total counter
learn_upstream_moves_total\{upstream="back"\} 0
# HELP learn_upstream_error_ms [^\n]+
# TYPE learn_upstream_error_ms gauge
learn_upstream_error_ms\{upstream="back"\} [\d.e+-]+
# HELP learn_sticky_keys [^\n]+
# TYPE learn_sticky_keys gauge
learn_sticky_keys\{upstream="back"\} 2
# HELP learn_sticky_hits_total [^\n]+
# TYPE learn_sticky_hits_total counter
learn_sticky_hits_total\{upstream="back"\} 1
# HELP learn_sticky_evicted_total [^\n]+
# TYPE learn_sticky_evicted_total counter
learn_sticky_evicted_total\{upstream="back"\} 0
$/s ]
