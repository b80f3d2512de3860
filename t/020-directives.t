# learn_model's zone= and learn_lua_path, and step counting by the
# workers of one nginx (2 workers, master on).

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

workers(2);
master_on();
no_shuffle();
run_tests();

__DATA__

=== TEST 1: zone= larger than the model needs works
--- http_config
    learn_model xor models/xor.lua seed=1 zone=1m;
--- config
    location = /train { learn_train xor; }
    location = /predict { learn_predict xor; }
--- more_headers
Content-Type: application/json
--- request eval
[ "POST /train\n{\"x\": [[1, 1]], \"y\": [[0]]}",
  "POST /predict\n{\"x\": [[1, 1]]}" ]
--- error_code eval
[200, 200]
--- response_body_like eval
[ qr/^\{"loss":[0-9.e-]+,"step":1\}$/, qr/^\{"y":\[\[-?[0-9.e-]+\]\]\}$/ ]
--- no_error_log
[error]



=== TEST 2: zone= smaller than the model needs says how much it needs
--- http_config
    learn_model big models/mlp_big.lua zone=64k;
--- config
    location = /t { learn_predict big; }
--- must_die
--- error_log eval
qr/learn_model "big": zone=65536 is too small, the model needs \d+/



=== TEST 3: learn_lua_path lets a model file require the user's learn.* modules
--- http_config
    learn_lua_path $TEST_NGINX_HTML_DIR/lib/?.lua;
    learn_model m html/m.lua seed=1;
--- config
    location = /predict { learn_predict m; }
--- user_files
>>> lib/learn/blocks.lua
local nn = require "learn.nn"
local blocks = {}
function blocks.mlp(a, b, c)
    return nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, c))
end
return blocks
>>> m.lua
local nn = require "learn.nn"
local blocks = require "learn.blocks"
return nn.model {
    net = blocks.mlp(3, 8, 2),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- more_headers
Content-Type: application/json
--- request
POST /predict
{"x": [[1, 2, 3]]}
--- response_body_like: ^\{"y":\[\[-?[0-9.e-]+,-?[0-9.e-]+\]\]\}$
--- no_error_log
[error]



=== TEST 4: without learn_lua_path the same require fails with the file and line
--- http_config
    learn_model m html/m.lua seed=1;
--- config
    location = /predict { learn_predict m; }
--- user_files
>>> m.lua
local nn = require "learn.nn"
local blocks = require "learn.blocks"
return nn.model { net = blocks.mlp(3, 8, 2), loss = nn.MSELoss(),
                  optim = nn.SGD { lr = 0.1 } }
--- must_die
--- error_log eval
qr/m\.lua:2: .*learn\.blocks/



=== TEST 5: two workers: step counts every answered train, whichever worker answered
--- http_config
    learn_model xor models/xor.lua seed=1;
--- config
    location = /train { learn_train xor; add_header Connection close; }
    location = /status { learn_status; }
--- more_headers
Content-Type: application/json
--- request eval
[ (map { "POST /train\n{\"x\": [[0, 1]], \"y\": [[1]]}" } 1 .. 30),
  "GET /status" ]
--- error_code eval
[ (200) x 31 ]
--- response_body_like eval
[ (map { qr/"step":$_\}/ } 1 .. 30), qr/"xor": \{"step": 30, "loss": \d/ ]
