# Nothing a model file writes is silently ignored: an option PyTorch has
# and the module supports is honoured, one it does not support is refused
# with "not supported" (unless it repeats PyTorch's default), and one
# PyTorch does not have is an error; each names the file and the line.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: Linear's positional bias = false: a weight and no bias
--- http_config
    learn_model m html/m.lua;
--- config
    location = /w { learn_weights m; }
--- user_files
>>> m.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(3, 2, false)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- request
GET /w
--- more_headers
Accept: application/json
--- response_body_like: ^\{"0\.weight": ?\[\[[^\]]*\], ?\[[^\]]*\]\]\}$



=== TEST 2: and so does {bias = false}, in a nested Sequential named as PyTorch names it
--- http_config
    learn_model m html/m.lua;
--- config
    location = /w { learn_weights m; }
--- user_files
>>> m.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 3),
                        nn.Sequential(nn.ReLU(),
                                      nn.Linear(3, 1, { bias = false }))),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- request
GET /w
--- more_headers
Accept: application/json
--- response_body_like: ^\{"0\.weight": ?\[\[.*\]\], ?"0\.bias": ?\[[^\]]*\], ?"1\.1\.weight": ?\[\[[^\]]*\]\]\}$



=== TEST 3: a misspelt Linear option
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1, { bais = true })),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:3: nn\.Linear has no option "bais"/



=== TEST 4: SGD nesterov needs momentum, as PyTorch says
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
    optim = nn.SGD { lr = 0.1, momentum = 0.9, nesterov = true, dampening = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:5: nn\.SGD: Nesterov momentum requires a momentum and zero dampening/



=== TEST 5: Adam maximize is not supported
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
    optim = nn.Adam { amsgrad = true, maximize = true },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:5: nn\.Adam: maximize = true is not supported/



=== TEST 6: CrossEntropyLoss class weights are not supported
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 3)),
    loss = nn.CrossEntropyLoss { label_smoothing = 0.1, weight = { 1, 2, 3 } },
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:4: nn\.CrossEntropyLoss: weight = table: 0x[0-9a-f]+ is not supported/



=== TEST 7: an unknown nn.model field (scheduler, where the module says schedule) is an error
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
    optim = nn.SGD { lr = 0.1 },
    scheduler = { step_size = 10 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:\d: nn\.model has no field "scheduler"/



=== TEST 8: an option that is not PyTorch's
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
    optim = nn.SGD { lr = 0.1, learning_rate = 0.5 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:5: nn\.SGD has no option "learning_rate"/



=== TEST 9: arguments a layer does not take
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1), nn.Tanh(0.5)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:3: nn\.Tanh takes no arguments/



=== TEST 10: Softmax over another dimension than the rows' is refused
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 3), nn.Softmax(0)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:3: nn\.Softmax: dim = 0 is not supported/



=== TEST 11: a reduction other than mean is refused
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss { reduction = "sum" },
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:4: nn\.MSELoss: reduction = sum is not supported \(only mean\)/



=== TEST 12: PyTorch's defaults, written out, are accepted and serve
--- http_config
    learn_model m html/m.lua;
--- config
    location = /t { learn_predict m; }
--- user_files
>>> m.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 3, true), nn.ReLU(true),
                        nn.Linear(3, 3, { bias = true }), nn.Softmax(1)),
    loss = nn.CrossEntropyLoss { reduction = "mean", ignore_index = -100,
                                 label_smoothing = 0 },
    optim = nn.SGD { lr = 0.1, momentum = 0.5, dampening = 0,
                     nesterov = false, maximize = false },
}
--- more_headers
Content-Type: application/json
--- request
POST /t
{"x": [[1, 2]]}
--- error_code: 200
--- response_body_like: ^\{"y": ?\[\[



=== TEST 13: a hand-made layer table with an unknown field is refused by the reader too
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
return {
    learn_model = true,
    net = { container = "Sequential",
            layers = { { layer = "Linear", inputs = 2, outputs = 1,
                         bais = false } } },
    loss = { loss = "MSELoss" },
    optim = { optim = "SGD", lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua: layer 0 \(Linear\) has no field "bais"/



=== TEST 14: a hand-made optimizer table with nesterov is refused by the reader
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
m.optim.nesterov = true
m.scheduler = "cosine"
return m
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua: nn\.model has no field "scheduler"/



=== TEST 15: Adam betas must be exactly two numbers
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
    optim = nn.Adam { betas = { 0.9, 0.99, 0.5 } },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:5: betas must be a table of two numbers/
