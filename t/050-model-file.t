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
                        nn.Conv3d(2, 2)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/bad\.lua:4: learn\.nn has no "Conv3d"/



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



=== TEST 12: a returned table whose net is a number fails cleanly, naming the file
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
local m = nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
m.net = 5
return m
--- must_die
--- error_log eval
qr/\[emerg\] .*html\/bad\.lua: net must be an nn\.Sequential/



=== TEST 13: layers that are not a table
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
local m = nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
m.net.layers = 5
return m
--- must_die
--- error_log eval
qr/\[emerg\] .*html\/bad\.lua: net must be an nn\.Sequential/



=== TEST 14: a layer that is a number
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
local m = nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
m.net.layers[2] = 5
return m
--- must_die
--- error_log eval
qr/\[emerg\] .*html\/bad\.lua: layer 1 of the Sequential is not an nn layer/



=== TEST 15: an optim that is not a table
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
local m = nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
m.optim = 7
return m
--- must_die
--- error_log eval
qr/\[emerg\] .*html\/bad\.lua: optim must be nn\.SGD\{\.\.\.\}, nn\.Adam\{\.\.\.\}, nn\.AdamW\{\.\.\.\}, nn\.RMSprop\{\.\.\.\} or nn\.Adagrad\{\.\.\.\}/



=== TEST 16: a metatable whose __index raises is never run (reads are raw)
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
return setmetatable({}, {
    __index = function(t, k) error("no field " .. k) end,
})
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua: the file must return nn\.model\{\.\.\.\}/
--- no_error_log
no field



=== TEST 17: a Linear width that is not an integer, in a hand-made table
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
return {
    learn_model = true,
    net = { container = "Sequential",
            layers = { { layer = "Linear", inputs = 1e12, outputs = {} } } },
    loss = { loss = "MSELoss" },
    optim = { optim = "SGD", lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*html\/bad\.lua: layer 0 \(Linear\): inputs must be an integer in \[1, \d+\], got 1000000000000/



=== TEST 18: an nn.model error in the tail-call form names the file and the line the return ends on
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"

return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.MSELoss(),
}
--- must_die
--- error_log eval
qr/\[emerg\] .*html\/bad\.lua:7: nn\.model: optim must be nn\.SGD/



=== TEST 19: nn.model without a table names the file and the line
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model(42)
--- must_die
--- error_log eval
qr/\[emerg\] .*html\/bad\.lua:2: nn\.model needs a table/



=== TEST 20: an absurdly large Linear is refused naming the layer, not an mmap failure
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 8),
                        nn.Linear(8, 1e6), nn.ReLU(),
                        nn.Linear(1e6, 1e6)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*html\/bad\.lua:5: Linear\(1000000, 1000000\) has 1000001000000 parameters, at most 268435456 are supported/
--- no_error_log
[alert]



=== TEST 21: a net whose layers together are too large names the Sequential's line
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
local layers = {}
for i = 1, 16 do layers[i] = nn.Linear(4096, 4096) end
return nn.model {
    net = nn.Sequential(unpack(layers)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*html\/bad\.lua:5: Sequential has 268500992 parameters, at most 268435456 are supported/
--- no_error_log
[alert]



=== TEST 22: a width above the limit is refused by nn.Linear with the line
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 2 ^ 25)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*html\/bad\.lua:3: Linear outputs must be at most 16777216, got 33554432/



=== TEST 23: the C limits hold for a hand-made table too, naming the file and the layer
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local big = { layer = "Linear", inputs = 16384, outputs = 16384 }
return {
    learn_model = true,
    net = { container = "Sequential",
            layers = { { layer = "Linear", inputs = 2, outputs = 16384 },
                       big } },
    loss = { loss = "MSELoss" },
    optim = { optim = "SGD", lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*html\/bad\.lua: layer "1" \(Linear\) has 268451840 parameters; a model may have at most 268435456/
--- no_error_log
[alert]
