# A broken model file fails "nginx -t" (and start) with the file, the
# line and the reason; a model file cannot reach io, os or other modules.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a Lua syntax error names the file and the line
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 2) nn.Tanh()),
}
--- must_die
--- error_log eval
qr/bad\.lua:3: .*'\)' expected/



=== TEST 2: an unknown layer names the file, the line and the layer
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 2),
                        nn.Conv2d(2, 2)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/bad\.lua:4: learn\.nn has no "Conv2d"/



=== TEST 3: Linear shapes that do not chain name both layers
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(),
                        nn.Linear(20, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/bad\.lua:3: layer 2 \(Linear\) expects 20 inputs but layer 0 \(Linear\) gives 16/



=== TEST 4: a model file may not require os
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local os = require "os"
os.execute("touch /tmp/learn-pwned")
--- must_die
--- error_log eval
qr/bad\.lua:1: require "os" is not allowed in a model file/



=== TEST 5: io is not there either
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
io.open("/etc/passwd")
--- must_die
--- error_log eval
qr/bad\.lua:1: attempt to index global 'io' \(a nil value\)/



=== TEST 6: a file that returns no model
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
return 42
--- must_die
--- error_log eval
qr/bad\.lua: the file must return nn\.model\{\.\.\.\}/



=== TEST 7: a missing model file
--- http_config
    learn_model bad html/nowhere.lua;
--- config
    location = /t { learn_predict bad; }
--- must_die
--- error_log eval
qr/model file "html\/nowhere\.lua" not found/



=== TEST 8: learn_train naming an undeclared model
--- config
    location = /t { learn_train ghost; }
--- must_die
--- error_log eval
qr/unknown model "ghost"/



=== TEST 9: the same model name twice
--- http_config
    learn_model m models/xor.lua;
    learn_model m models/xor.lua;
--- config
    location = /t { learn_predict m; }
--- must_die
--- error_log eval
qr/learn_model "m" is already declared/



=== TEST 10: an unknown learn_model parameter
--- http_config
    learn_model m models/xor.lua colour=blue;
--- config
    location = /t { learn_predict m; }
--- must_die
--- error_log eval
qr/invalid parameter "colour=blue"/



=== TEST 11: a model file under the prefix; a 1-D x gives a 1-D y
--- http_config
    learn_model tiny html/tiny.lua seed=3;
--- config
    location = /t { learn_predict tiny; }
--- user_files
>>> tiny.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(3, 2), nn.Softmax()),
    loss = nn.MSELoss(),
    optim = nn.Adam {},
}
--- more_headers
Content-Type: application/json
--- request
POST /t
{"x": [1, 2, 3]}
--- error_code: 200
--- response_body_like: ^\{"y": ?\[0?\.\d+(e-?\d+)?, ?0?\.\d+(e-?\d+)?\]\}$
