# learn_counter: requests per key in a sliding window, as a variable a
# learn_set feature, a map or a log line reads; counted once per request.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: each key counts its own requests, once per request
--- http_config
    learn_counter $hits $arg_who window=1m;
--- config
    location = /t { return 200 "$hits $hits\n"; }
--- request eval
[ "GET /t?who=a", "GET /t?who=a", "GET /t?who=b", "GET /t?who=a" ]
--- response_body eval
[ "1 1\n", "2 2\n", "1 1\n", "3 3\n" ]



=== TEST 2: an empty key is not counted and leaves the variable empty
--- http_config
    learn_counter $hits $arg_who window=10s;
--- config
    location = /t { return 200 "[$hits]\n"; }
--- request eval
[ "GET /t", "GET /t?who=", "GET /t?who=x" ]
--- response_body eval
[ "[]\n", "[]\n", "[1]\n" ]



=== TEST 3: the count is a learn_set feature (identity weights: y = count)
--- http_config
    learn_model ident html/ident.lua;
    learn_counter $rate $binary_remote_addr window=30s;
    learn_set $score ident $rate 0;
--- config
    location = /weights { learn_weights ident; }
    location = /t { return 200 "$score\n"; }
--- user_files
>>> ident.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- more_headers
Content-Type: application/json
--- request eval
[ "PUT /weights\n{\"0.weight\": [[1, 0]], \"0.bias\": [0]}",
  "GET /t", "GET /t", "GET /t" ]
--- response_body_like eval
[ qr/"imported": 2/, qr/^1\n$/, qr/^2\n$/, qr/^3\n$/ ]



=== TEST 4: a zone too small for every key drops the least recently used
("first" is gone after 80 keys of 250 bytes in 32k: it counts from 1)
--- http_config
    learn_counter $hits $arg_k window=1h zone=tiny:32k;
--- config
    location = /t { return 200 "$hits\n"; }
--- request eval
[ "GET /t?k=first", "GET /t?k=first",
  (map { "GET /t?k=" . ("k" x 240) . $_ } 1 .. 80), "GET /t?k=first" ]
--- response_body eval
[ "1\n", "2\n", ("1\n") x 80, "1\n" ]
--- no_error_log
[error]



=== TEST 5: window= is required
--- http_config
    learn_counter $hits $arg_who;
--- config
    location = /t { return 200 "$hits"; }
--- must_die
--- error_log
learn_counter $hits: window=TIME is missing



=== TEST 6: a bad window
--- http_config
    learn_counter $hits $arg_who window=ten;
--- config
    location = /t { return 200 "$hits"; }
--- must_die
--- error_log
invalid parameter "window=ten"



=== TEST 7: an unknown parameter
--- http_config
    learn_counter $hits $arg_who window=10s burst=5;
--- config
    location = /t { return 200 "$hits"; }
--- must_die
--- error_log
invalid parameter "burst=5"



=== TEST 8: one zone for two counters
--- http_config
    learn_counter $a $arg_who window=10s zone=z:1m;
    learn_counter $b $arg_who window=20s zone=z:1m;
--- config
    location = /t { return 200 "$a $b"; }
--- must_die
--- error_log
learn_counter $b: zone "z" is used by another directive



=== TEST 9: a zone smaller than the slab pool needs
--- http_config
    learn_counter $a $arg_who window=10s zone=z:4k;
--- config
    location = /t { return 200 "$a"; }
--- must_die
--- error_log
learn_counter: zone "zone=z:4k" is too small
