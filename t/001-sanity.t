# The module loads, a model declared in Lua answers predict and train,
# and learn_status sees it.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';
use LearnBody;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: predict one XOR sample in JSON
--- http_config
    learn_model xor models/xor.lua seed=1;
--- config
    location = /predict { learn_predict xor; }
--- more_headers
Content-Type: application/json
--- request
POST /predict
{"x": [[0, 1]]}
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"y": ?\[\[-?\d[\d.e+-]*\]\]\}$
--- no_error_log
[error]
[alert]



=== TEST 2: one train step answers loss and step 1
--- http_config
    learn_model xor models/xor.lua seed=1;
--- config
    location = /train { learn_train xor; }
--- more_headers
Content-Type: application/json
--- request
POST /train
{"x": [[0, 1], [1, 0]], "y": [[1], [1]]}
--- error_code: 200
--- response_body_like: ^\{"loss": ?\d[\d.e+-]*, ?"step": ?1\}$
--- no_error_log
[error]



=== TEST 3: status lists the model with the contract keys
--- http_config
    learn_model xor models/xor.lua seed=1;
--- config
    location = /status { learn_status; }
--- request
GET /status
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"models": \{"xor": \{"step": 0, "loss": null, .*"device": "cpu", "params": 81, .*\}\}, "upstreams": \{\}\}$



=== TEST 4: three trains then status: step counts answered trains
--- http_config
    learn_model xor models/xor.lua seed=1;
--- config
    location = /train { learn_train xor; }
    location = /status { learn_status; }
--- more_headers
Content-Type: application/json
--- request eval
[ (map { "POST /train\n{\"x\": [[1, 1]], \"y\": [[0]]}" } 1 .. 3),
  "GET /status" ]
--- error_code eval
[200, 200, 200, 200]
--- response_body_like eval
[ qr/"step": ?1\}/, qr/"step": ?2\}/, qr/"step": ?3\}/,
  qr/"xor": \{"step": 3, "loss": \d/ ]
