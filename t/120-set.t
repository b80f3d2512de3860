# learn_set: a model's output as an nginx variable, read by return,
# map, if, add_header and log_format; empty (never an error) when a
# feature is not a number.  Models whose weights a test PUTs first give
# outputs known by construction (y = a for "ident").

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: $VAR is learn_predict's answer for the same features, as text
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    learn_model xor models/xor.lua seed=3;
    learn_set $score xor $arg_a $arg_b;
--- config
    location = /predict { learn_predict xor; }
    location = /t {
        echo "$score";
        echo_subrequest POST /predict -b '{"x": [[1, 0.25]]}';
    }
--- more_headers
Content-Type: application/json
--- request
GET /t?a=1&b=0.25
--- response_body_like: ^(-?0\.\d+(?:e-?\d+)?)\n\{"y":\[\[\1\]\]\}$



=== TEST 2: output=N is that component of a three-output model
--- main_config
    load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
--- http_config
    learn_model three html/three.lua seed=5;
    learn_set $c0 three $arg_a $arg_b output=0;
    learn_set $c2 three $arg_a $arg_b output=2;
--- config
    location = /predict { learn_predict three; }
    location = /t {
        echo "$c0 $c2";
        echo_subrequest POST /predict -b '{"x": [[0.3, -0.6]]}';
    }
--- user_files
>>> three.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 3)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- more_headers
Content-Type: application/json
--- request
GET /t?a=0.3&b=-0.6
--- response_body_like: ^(\S+) (\S+)\n\{"y":\[\[\1,[^,]+,\2\]\]\}$



=== TEST 3: identity weights: $VAR is the first feature, through return
--- http_config
    learn_model ident html/ident.lua;
    learn_set $score ident $arg_a $arg_b;
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
  "GET /t?a=0.75&b=9",
  "GET /t?a=-2.5e-3&b=1",
  "GET /t?b=1&a=12" ]
--- error_code eval
[200, 200, 200, 200]
--- response_body_like eval
[ qr/"imported": 2/, qr/^0\.75\n$/, qr/^-0\.00249999994\n$/, qr/^12\n$/ ]



=== TEST 4: map and if act on the score: 429 above a threshold
--- http_config
    learn_model ident html/ident.lua;
    learn_set $score ident $arg_a 0;
    map $score $verdict {
        ""           unknown;
        "~^0\.[89]"  bot;
        default      human;
    }
--- config
    location = /weights { learn_weights ident; }
    location = /t {
        if ($verdict = bot) {
            return 429 "blocked $score\n";
        }
        return 200 "$verdict $score\n";
    }
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
  "GET /t?a=0.9",
  "GET /t?a=0.25",
  "GET /t?a=oops" ]
--- error_code eval
[200, 429, 200, 200]
--- response_body_like eval
[ qr/"imported": 2/, qr/^blocked 0\.899999976\n$/, qr/^human 0\.25\n$/,
  qr/^unknown \n$/ ]



=== TEST 5: add_header and log_format read the same single evaluation
--- http_config
    learn_model ident html/ident.lua;
    learn_set $score ident $arg_a $arg_b;
    log_format scores "scored a=$arg_a score=$score";
--- config
    location = /weights { learn_weights ident; }
    location = /t {
        access_log logs/error.log scores;
        add_header X-Score $score;
        return 200 "$score\n";
    }
    location = /status { learn_status; }
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
[ "PUT /weights\n{\"0.weight\": [[1, 0]], \"0.bias\": [0.5]}",
  "GET /t?a=2&b=0",
  "GET /status" ]
--- response_headers_like eval
[ "", "X-Score: 2.5", "" ]
--- response_body_like eval
[ qr/"imported": 2/, qr/^2\.5\n$/, qr/"set_evals": 1, "set_empty": 0/ ]



=== TEST 5b: the log line, the header and the body carry the same value
--- http_config
    learn_model xor models/xor.lua seed=2;
    learn_set $score xor $arg_a $arg_b;
    log_format scores "scored a=$arg_a score=$score header=$sent_http_x_score";
--- config
    location = /t {
        access_log logs/error.log scores;
        add_header X-Score $score;
        return 200 "$score\n";
    }
--- request
GET /t?a=1&b=0
--- response_body_like: ^-?0\.\d+\n$
--- error_log eval
qr/scored a=1 score=(-?0\.\d+) header=\1$/



=== TEST 6: several outputs: the argmax index; output=max: the largest value
--- http_config
    learn_model three html/three.lua;
    learn_set $class three $arg_a $arg_b;
    learn_set $best three $arg_a $arg_b output=max;
    learn_set $last three $arg_a $arg_b output=2;
--- config
    location = /weights { learn_weights three; }
    location = /t { return 200 "$class $best $last\n"; }
--- user_files
>>> three.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 3)),
    loss = nn.CrossEntropyLoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- more_headers
Content-Type: application/json
--- request eval
[ "PUT /weights\n{\"0.weight\": [[1, 0], [0, 1], [-1, -1]], \"0.bias\": [0, 0, 0]}",
  "GET /t?a=0.25&b=0.75",
  "GET /t?a=0.5&b=-0.25",
  "GET /t?a=-1&b=-2" ]
--- response_body_like eval
[ qr/"imported": 2/, qr/^1 0\.75 -1\n$/, qr/^0 0\.5 -0\.25\n$/,
  qr/^2 3 3\n$/ ]



=== TEST 7: a feature that is not a number makes $VAR empty, never an error
--- http_config
    learn_model ident html/ident.lua;
    learn_set $score ident $arg_a 1;
--- config
    location = /t { return 200 "[$score]\n"; }
    location = /status { learn_status; }
--- user_files
>>> ident.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- log_level: debug
--- request eval
[ "GET /t?a=abc", "GET /t", "GET /t?a=1e999", "GET /t?a=nan",
  "GET /t?a=inf", "GET /t?a=0x10", "GET /t?a=%201", "GET /t?a=1,2",
  "GET /t?a=1e", "GET /status" ]
--- error_code eval
[200, 200, 200, 200, 200, 200, 200, 200, 200, 200]
--- response_body_like eval
[ qr/^\[\]$/, qr/^\[\]$/, qr/^\[\]$/, qr/^\[\]$/, qr/^\[\]$/,
  qr/^\[\]$/, qr/^\[\]$/, qr/^\[\]$/, qr/^\[\]$/,
  qr/"set_evals": 9, "set_empty": 9/ ]



=== TEST 7b: the debug log says which feature was not a number
--- http_config
    learn_model xor models/xor.lua;
    learn_set $score xor 0.5 $arg_b;
--- config
    location = /t { return 200 "[$score]\n"; }
--- log_level: debug
--- request
GET /t?b=12abc
--- response_body
[]
--- error_log
learn_set $score: feature 2 ("$arg_b") is "12abc", not a number
--- no_error_log
[error]



=== TEST 8: a literal feature and an output that overflows to Inf
--- http_config
    learn_model ident html/ident.lua;
    learn_set $score ident $arg_a 3e38;
--- config
    location = /weights { learn_weights ident; }
    location = /t { return 200 "[$score]\n"; }
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
[ "PUT /weights\n{\"0.weight\": [[0, 1]], \"0.bias\": [0]}",
  "GET /t?a=1",
  "PUT /weights\n{\"0.weight\": [[0, 10]], \"0.bias\": [0]}",
  "GET /t?a=1" ]
--- response_body_like eval
[ qr/"imported": 2/, qr/^\[3\.0*\d*e\+38\]$/, qr/"imported": 2/,
  qr/^\[\]$/ ]



=== TEST 9: the number of features must be the model's inputs
--- http_config
    learn_model xor models/xor.lua;
    learn_set $score xor $arg_a;
--- config
    location = /t { return 200 "$score"; }
--- must_die
--- error_log
learn_set $score: model "xor" takes 2 features, 1 given



=== TEST 10: an unknown model
--- http_config
    learn_set $score nope $arg_a $arg_b;
--- config
    location = /t { return 200 "$score"; }
--- must_die
--- error_log
learn_set $score: unknown model "nope" (declare it with learn_model first)



=== TEST 11: output= beyond the model's outputs
--- http_config
    learn_model xor models/xor.lua;
    learn_set $score xor $arg_a $arg_b output=1;
--- config
    location = /t { return 200 "$score"; }
--- must_die
--- error_log
learn_set $score: "output=1": output is a component 0 to 0 of model "xor", "max" or "argmax"



=== TEST 12: not a variable name
--- http_config
    learn_model xor models/xor.lua;
    learn_set score xor $arg_a $arg_b;
--- config
    location = /t { return 200 "x"; }
--- must_die
--- error_log
learn_set: "score" is not a variable name (such as $score)



=== TEST 13: the same variable twice
--- http_config
    learn_model xor models/xor.lua;
    learn_set $score xor $arg_a $arg_b;
    learn_set $score xor $arg_b $arg_a;
--- config
    location = /t { return 200 "$score"; }
--- must_die
--- error_log
the duplicate "score" variable



=== TEST 14: learn_set outside the http block
--- http_config
    learn_model xor models/xor.lua;
--- config
    location = /t {
        learn_set $score xor $arg_a $arg_b;
        return 200 "$score";
    }
--- must_die
--- error_log
"learn_set" directive is not allowed here



=== TEST 15: proxy_set_header sends the score upstream; limit_req throttles on it
--- http_config
    learn_model ident html/ident.lua;
    learn_set $score ident $arg_a 0;
    map $score $bot_key {
        "~^0\.9"  $binary_remote_addr;
        default   "";
    }
    limit_req_zone $bot_key zone=bots:1m rate=1r/m;
--- config
    location = /up { return 200 "upstream saw $http_x_score\n"; }
    location = /weights { learn_weights ident; }
    location = /t {
        limit_req zone=bots;
        proxy_set_header X-Score $score;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/up;
    }
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
  "GET /t?a=0.25", "GET /t?a=0.25", "GET /t?a=0.95", "GET /t?a=0.95" ]
--- error_code eval
[200, 200, 200, 200, 503]
--- response_body_like eval
[ qr/"imported": 2/, qr/^upstream saw 0\.25\n$/, qr/^upstream saw 0\.25\n$/,
  qr/^upstream saw 0\.949999988\n$/, qr/503/ ]
