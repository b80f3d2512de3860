# learn_sticky: the requests of one key keep reaching one peer, even when
# the balancer alone would spread them (explore=1 makes every unpinned
# choice random); a key whose peer fails moves, and clients see no error.
# A real backend stopped under load across two workers: t/082.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

no_shuffle();

# Blocks whose name says "same peer per key" check that every answer for
# a key (?model=KEY, or the whole block when there is no such argument)
# equals the first one, and that the keys were spread over two peers at
# least (so that stickiness, not chance, kept them together).
my (%first, %peers);
add_response_body_check(sub {
    my ($block, $body, $idx, $rep, $dry_run) = @_;
    return if $dry_run || $block->name !~ /same peer per key/;
    my $reqs = $block->request;
    my @reqs = ref $reqs ? @$reqs : ($reqs);
    my $req = $reqs[$idx];
    return if $req =~ m{^GET /status};
    my $key = $req =~ /[?&]model=(\w+)/ ? $1 : '-';
    my $id = $block->name . "\0$key";
    if (!defined $first{$id}) {
        $first{$id} = $body;
        $peers{$block->name}{$body} = 1;
    } else {
        is($body, $first{$id}, $block->name . " - key $key stays on its peer");
    }
    if ($idx == $#reqs - 1 && $key ne '-') {
        cmp_ok(scalar keys %{ $peers{$block->name} }, '>=', 2,
               $block->name . " - keys were placed on several peers");
    }
});

sub keyed { my ($keys, $rounds, $uri) = @_;
    [ (map { my $r = $_; map { "GET /t?model=k$_" } 1 .. $keys } 1 .. $rounds),
      "GET /status" ] }

run_tests();

__DATA__

=== TEST 1: same peer per key: 12 keys by argument, 5 rounds, random balancer
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=1;
        learn_sticky arg=model;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
        server 127.0.0.1:1987;
    }
    server { listen 127.0.0.1:1985; location / { echo b1; } }
    server { listen 127.0.0.1:1986; location / { echo b2; } }
    server { listen 127.0.0.1:1987; location / { echo b3; } }
--- config
    location /t {
        proxy_pass http://back;
        add_header X-Pin $learn_upstream_pin;
    }
    location = /status { learn_status; }
--- request eval
main::keyed(12, 5)
--- error_code eval
[ (200) x 61 ]
--- response_headers_like eval
[ (map { "X-Pin: new" } 1 .. 12), (map { "X-Pin: hit" } 1 .. 48), "" ]
--- response_body_like eval
[ (map { qr/^b[123]$/ } 1 .. 60),
  qr/"sticky": \{"keys": 12, "hits": 48, "evicted": 0, .*"pins": \d+, .*"pins": \d+, .*"pins": \d+, / ]
--- no_error_log
[error]



=== TEST 2: same peer per key: by header
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=1;
        learn_sticky header=X-Model-Id;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
        server 127.0.0.1:1987;
    }
    server { listen 127.0.0.1:1985; location / { echo b1; } }
    server { listen 127.0.0.1:1986; location / { echo b2; } }
    server { listen 127.0.0.1:1987; location / { echo b3; } }
--- config
    location /t { proxy_pass http://back; }
--- more_headers
X-Model-Id: digits-v2
--- request eval
[ map { "GET /t" } 1 .. 12 ]
--- error_code eval
[ (200) x 12 ]
--- response_body_like eval
[ map { qr/^b[123]$/ } 1 .. 12 ]



=== TEST 3: same peer per key: by cookie
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=1;
        learn_sticky cookie=model timeout=1h zone=pins:64k;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
        server 127.0.0.1:1987;
    }
    server { listen 127.0.0.1:1985; location / { echo b1; } }
    server { listen 127.0.0.1:1986; location / { echo b2; } }
    server { listen 127.0.0.1:1987; location / { echo b3; } }
--- config
    location /t { proxy_pass http://back; }
--- more_headers
Cookie: session=1; model=xor
--- request eval
[ map { "GET /t" } 1 .. 12 ]
--- error_code eval
[ (200) x 12 ]
--- response_body_like eval
[ map { qr/^b[123]$/ } 1 .. 12 ]



=== TEST 4: without a key the random balancer spreads the requests
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=1;
        learn_sticky arg=model;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
        server 127.0.0.1:1987;
    }
    server { listen 127.0.0.1:1985; location / { echo b1; } }
    server { listen 127.0.0.1:1986; location / { echo b2; } }
    server { listen 127.0.0.1:1987; location / { echo b3; } }
--- config
    location /t { proxy_pass http://back; }
    location = /status { learn_status; }
--- request eval
[ (map { "GET /t?other=k1" } 1 .. 30), "GET /status" ]
--- error_code eval
[ (200) x 31 ]
--- response_body_like eval
[ (map { qr/^b[123]$/ } 1 .. 30),
  qr/"sticky": \{"keys": 0, .*"127\.0\.0\.1:1985": \{"picks": ([3-9]|1\d|2[0-4]), .*"127\.0\.0\.1:1986": \{"picks": ([3-9]|1\d|2[0-4]), / ]



=== TEST 5: same peer per key: keys placed on a stopped backend move, no client error
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=1;
        learn_sticky arg=model;
        server 127.0.0.1:1989 max_fails=0;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
    }
    server { listen 127.0.0.1:1985; location / { echo b1; } }
    server { listen 127.0.0.1:1986; location / { echo b2; } }
--- config
    location /t { proxy_pass http://back; }
    location = /status { learn_status; }
--- request eval
main::keyed(20, 3)
--- error_code eval
[ (200) x 61 ]
--- response_body_like eval
[ (map { qr/^b[12]$/ } 1 .. 60),
  qr/"moves": [1-9]\d*, .*"127\.0\.0\.1:1989": \{"picks": [1-9]\d*, "in_flight": 0, "explored": \d+, "failures": [1-9]\d*, "pins": 0, / ]



=== TEST 6: a pinned peer that keeps answering 500 loses its keys
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=0;
        learn_sticky arg=model;
        server 127.0.0.1:1985 max_fails=0;
        server 127.0.0.1:1986;
    }
    server { listen 127.0.0.1:1985; location / { return 500; } }
    server { listen 127.0.0.1:1986; location / { echo_sleep 0.01; echo b2; } }
--- config
    location /t {
        proxy_pass http://back;
        proxy_next_upstream error timeout http_500;
    }
    location = /status { learn_status; }
--- request eval
[ (map { "GET /t?model=m1" } 1 .. 10), "GET /status" ]
--- error_code eval
[ (200) x 11 ]
--- response_body_like eval
[ (map { qr/^b2$/ } 1 .. 10),
  qr/"sticky": \{"keys": 1, .*"127\.0\.0\.1:1985": \{"picks": [01], "in_flight": 0, "explored": 0, "failures": [01], "pins": 0, .*"127\.0\.0\.1:1986": \{"picks": 10, "in_flight": 0, "explored": 0, "failures": 0, "pins": 1, / ]



=== TEST 7: learn_sticky needs a key source
--- http_config
    upstream back {
        learn_sticky timeout=10s;
        server 127.0.0.1:1985;
    }
--- config
    location /t { proxy_pass http://back; }
--- must_die
--- error_log
learn_sticky needs header=NAME, cookie=NAME, arg=NAME or key=EXPRESSION



=== TEST 8: same peer per key: key= takes any nginx expression (a map of the model name)
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    map $arg_model $learn_tenant { default "tenant-$arg_model"; }
    upstream back {
        learn_balancer explore=1;
        learn_sticky key=$learn_tenant;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
        server 127.0.0.1:1987;
    }
    server { listen 127.0.0.1:1985; location / { echo b1; } }
    server { listen 127.0.0.1:1986; location / { echo b2; } }
    server { listen 127.0.0.1:1987; location / { echo b3; } }
--- config
    location /t {
        proxy_pass http://back;
        add_header X-Pin $learn_upstream_pin;
    }
    location = /status { learn_status; }
--- request eval
main::keyed(12, 5)
--- error_code eval
[ (200) x 61 ]
--- response_headers_like eval
[ (map { "X-Pin: new" } 1 .. 12), (map { "X-Pin: hit" } 1 .. 48), "" ]
--- response_body_like eval
[ (map { qr/^b[123]$/ } 1 .. 60),
  qr/"sticky": \{"keys": 12, "hits": 48, "evicted": 0, / ]
--- no_error_log
[error]



=== TEST 9: learn_sticky takes one key source
--- http_config
    upstream back {
        learn_sticky arg=model cookie=model;
        server 127.0.0.1:1985;
    }
--- config
    location /t { proxy_pass http://back; }
--- must_die
--- error_log
learn_sticky takes one of header=, cookie=, arg= and key=



=== TEST 10: same peer per key: a header name is matched as nginx matches headers (any case)
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    upstream back {
        learn_balancer explore=1;
        learn_sticky header=X-Model-Id;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
        server 127.0.0.1:1987;
    }
    server { listen 127.0.0.1:1985; location / { echo b1; } }
    server { listen 127.0.0.1:1986; location / { echo b2; } }
    server { listen 127.0.0.1:1987; location / { echo b3; } }
--- config
    location /t {
        proxy_pass http://back;
        add_header X-Pin $learn_upstream_pin;
    }
--- more_headers
x-MODEL-id: digits-v2
--- request eval
[ map { "GET /t" } 1 .. 6 ]
--- error_code eval
[ (200) x 6 ]
--- response_headers_like eval
[ "X-Pin: new", (map { "X-Pin: hit" } 1 .. 5) ]
--- response_body_like eval
[ map { qr/^b[123]$/ } 1 .. 6 ]
