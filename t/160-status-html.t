# learn_status as a page: content negotiation (Accept: text/html,
# ?format=html; JSON stays the default, Prometheus is untouched), the
# page's charts and escaping, and the loss history in the JSON.  The
# history's bound, its downsampling and reloads: t/161-status-history.t;
# the page in a real browser: t/162-status-browser.t.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: JSON is the default, with the loss history of every step
--- http_config
    learn_model xor models/xor.lua seed=1;
--- config
    location = /train { learn_train xor; }
    location = /status { learn_status; }
--- more_headers
Content-Type: application/json
--- request eval
[ "GET /status",
  "POST /train\n{\"x\": [[0, 1]], \"y\": [[1]]}",
  "POST /train\n{\"x\": [[0, 1]], \"y\": [[1]]}",
  "POST /train\n{\"x\": [[1, 1]], \"y\": [[0]]}",
  "GET /status" ]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_headers eval
[ "Content-Type: application/json", "", "", "",
  "Content-Type: application/json" ]
--- response_body_like eval
[ qr/"loss_history": \[\], "loss_history_stride": 1[,}]/,
  qr/"step": ?1/, qr/"step": ?2/, qr/"step": ?3/,
  qr/"step": 3, .*"loss_history": \[\[1, \d\.\d+\], \[2, \d\.\d+\], \[3, \d\.\d+\]\], "loss_history_stride": 1[,}]/ ]



=== TEST 2: Accept: text/html gets the page: a chart with one point per step, the CSP
--- http_config
    learn_model xor models/xor.lua seed=1;
--- config
    location = /train { learn_train xor; }
    location = /status { learn_status; }
--- more_headers
Content-Type: application/json
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8
--- request eval
[ "POST /train\n{\"x\": [[0, 1]], \"y\": [[1]]}",
  "POST /train\n{\"x\": [[0, 1]], \"y\": [[1]]}",
  "GET /status" ]
--- error_code eval
[200, 200, 200]
--- response_headers eval
[ "", "",
  "Content-Type: text/html; charset=utf-8\nContent-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\nCache-Control: no-store" ]
--- response_body_like eval
[ qr/"step": ?1/, qr/"step": ?2/,
  qr{^<!DOCTYPE html>.*<section class="model" data-model="xor">.*<svg [^>]*data-chart="lines"[^>]*data-x-min="1" data-x-max="2"[^>]*>.*<g class="series" data-series="0" data-points="2" data-name="xor"[^>]*><polyline [^>]*points="[\d.]+,[\d.]+ [\d.]+,[\d.]+ "/><circle class="pt" data-x="1" data-y="\d\.\d+"[^>]*/><circle class="pt" data-x="2" data-y="\d\.\d+"[^>]*/></g></svg>.*Steps 1 to 2: 2 points, one per 1 step .*<td data-key="step">2</td>.*<td data-key="trains">2</td>.*</html>\n\z}s ]



=== TEST 3: ?format=html without an Accept header
--- http_config
    learn_model xor models/xor.lua;
--- config
    location = /status { learn_status; }
--- request
GET /status?format=html
--- response_headers
Content-Type: text/html; charset=utf-8
--- response_body_like chomp
^<!DOCTYPE html>.*<svg [^>]*data-chart="lines".*no data yet.*No train step since this zone started



=== TEST 4: ?format=json wins over Accept: text/html
--- http_config
    learn_model xor models/xor.lua;
--- config
    location = /status { learn_status; }
--- more_headers
Accept: text/html
--- request eval
[ "GET /status?format=json", "GET /status?format=html" ]
--- response_headers eval
[ "Content-Type: application/json", "Content-Type: text/html; charset=utf-8" ]
--- response_body_like eval
[ qr/^\{"models": \{"xor": \{"step": 0, /, qr/^<!DOCTYPE html>/ ]



=== TEST 5: curl's Accept: */* stays JSON
--- http_config
    learn_model xor models/xor.lua;
--- config
    location = /status { learn_status; }
--- more_headers
Accept: */*
--- request
GET /status
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"models": \{"xor": \{"step": 0, .*"loss_history": \[\]



=== TEST 6: an Accept that names application/json before text/html is JSON
--- http_config
    learn_model xor models/xor.lua;
--- config
    location = /status { learn_status; }
--- more_headers
Accept: application/json, text/html;q=0.5
--- request
GET /status
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"models": \{"xor": \{"step": 0, 



=== TEST 7: Prometheus is untouched by Accept: text/html and has no history
--- http_config
    learn_model xor models/xor.lua seed=1;
--- config
    location = /train { learn_train xor; }
    location = /status { learn_status; }
--- more_headers
Content-Type: application/json
Accept: text/html
--- request eval
[ "POST /train\n{\"x\": [[0, 1]], \"y\": [[1]]}",
  "GET /status?format=prometheus" ]
--- response_headers eval
[ "", "Content-Type: text/plain; version=0.0.4; charset=utf-8" ]
--- response_body_like eval
[ qr/"step": ?1/,
  qr/^# HELP learn_model_step [^\n]+\n# TYPE learn_model_step gauge\nlearn_model_step\{model="xor"\} 1\n(?:(?!history|<)[\s\S])*\z/ ]



=== TEST 8: names from the configuration are escaped in the page, and in the JSON
--- http_config
    learn_model xor models/xor.lua;
    upstream 'b<i>x</i>&"q' {
        learn_balancer;
        server 127.0.0.1:$TEST_NGINX_SERVER_PORT;
    }
    upstream "tab\there\\" {
        learn_balancer;
        server 127.0.0.1:$TEST_NGINX_SERVER_PORT;
    }
--- config
    location = /status { learn_status; }
--- request eval
[ "GET /status?format=html", "GET /status" ]
--- response_body_like eval
[ qr{<section class="upstream" data-upstream="b&lt;i&gt;x&lt;/i&gt;&amp;&quot;q">\n<h2>upstream b&lt;i&gt;x&lt;/i&gt;&amp;&quot;q</h2>.*<tr class="peer" data-peer="127\.0\.0\.1:\d+">.*<svg [^>]*data-chart="bars"}s,
  qr{"upstreams": \{"b<i>x</i>&\\"q": \{"balancer": "learn".*\}, "tab\\u0009here\\\\": \{"balancer": "learn"}s ]
--- response_body_unlike eval
[ qr{<i>|&"q}, qr{&"q} ]



=== TEST 9: the balancer's predicted and observed latency per peer, as bars
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    learn_model xor models/xor.lua;
    upstream back {
        learn_balancer explore=0;
        server 127.0.0.1:$TEST_NGINX_SERVER_PORT;
    }
--- config
    location = /p { proxy_pass http://back/b; }
    location = /b { echo_sleep 0.02; echo ok; }
    location = /status { learn_status; }
--- request eval
[ "GET /p", "GET /p", "GET /p", "GET /status?format=html" ]
--- response_body_like eval
[ qr/ok/, qr/ok/, qr/ok/,
  qr{<section class="upstream" data-upstream="back">.*<td class="name">127\.0\.0\.1:\d+</td><td>3</td><td>0</td><td>0</td><td>[^<]+</td><td>(?:2\d|[3-9]\d|\d{3,})(?:\.\d+)?</td>.*<svg [^>]*data-chart="bars"[^>]*>.*<g class="series" data-series="0" data-name="predicted"[^>]*><rect class="bar" data-label="127\.0\.0\.1:\d+" data-y="[\d.e+-]+"[^>]*/></g><g class="series" data-series="1" data-name="observed"[^>]*><rect class="bar" data-label="127\.0\.0\.1:\d+" data-y="(?:2\d|[3-9]\d|\d{3,})[\d.]*"}s ]



=== TEST 10: ?refresh=N reloads the page by itself; a bad one is a 400
--- http_config
    learn_model xor models/xor.lua;
--- config
    location = /status { learn_status; }
--- request eval
[ "GET /status?format=html&refresh=5", "GET /status?format=html&refresh=x",
  "GET /status?format=html" ]
--- error_code eval
[200, 400, 200]
--- response_body_like eval
[ qr{<meta http-equiv="refresh" content="5">}, qr/^\{"error": "refresh must be 0 to 3600 seconds"\}/,
  qr{^(?:(?!http-equiv)[\s\S])*\z} ]



=== TEST 11: the first look has no rate (it needs a sample 1 to 60 s old)
--- http_config
    learn_model xor models/xor.lua seed=1;
--- config
    location = /status { learn_status; }
--- request
GET /status?format=html
--- response_body_like chomp
<p class="rates note" data-window-ms="0">Rates need an earlier look
