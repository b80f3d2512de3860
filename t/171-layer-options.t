# The layers' Lua form: PyTorch's positional arguments then a keyword
# table; an unknown keyword, an unsupported option or a value out of range
# fails nginx -t naming the file and the line; shapes that do not chain
# fail it naming the layer by its state-dict name and both shapes; and a
# request's x is checked against the net's input shape and, for an
# Embedding, its indices.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: an unknown keyword names the file and the line
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    input = { 1, 8, 8 },
    net = nn.Sequential(nn.Conv2d(1, 4, 3, { paddin = 1 }), nn.Flatten(),
                        nn.Linear(144, 2)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:4: nn\.Conv2d has no argument "paddin"/



=== TEST 2: an option PyTorch has that the module lacks is refused unless at its default
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    input = { 1, 8, 8 },
    net = nn.Sequential(nn.Conv2d(1, 4, 3, { padding_mode = "zeros" }),
                        nn.MaxPool2d(2, { ceil_mode = true }),
                        nn.Flatten(), nn.Linear(36, 2)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:5: nn\.MaxPool2d: ceil_mode = true is not supported \(only False\)/



=== TEST 3: positional arguments in PyTorch's order, and too many of them
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU(0.2, false, 3)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:3: nn\.LeakyReLU takes at most 2 positional arguments, got 3/



=== TEST 4: a value out of range
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(4, 4),
                        nn.Dropout(1.5)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:4: nn\.Dropout: p must be a probability in \[0, 1\], got 1\.5/



=== TEST 5: shapes that do not chain name the layer (nested: its state-dict name) and both shapes
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    input = { 3, 16, 16 },
    net = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()),
        nn.Sequential(nn.Conv2d(6, 8, 3), nn.ReLU()),
        nn.Flatten(), nn.Linear(1152, 2)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua: layer "1\.0" \(Conv2d\) expects input \[6, H, W\] but gets \[8, 14, 14\]/



=== TEST 6: a Conv2d first needs the model's input shape
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(36, 2)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua: the first layer \(Conv2d\) does not say the shape of a sample: give the model its input shape \(nn\.model\{input = \{\.\.\.\}\}, without N\)/



=== TEST 7: x of the wrong shape is a 400 naming the expected one
--- http_config
    learn_model m html/m.lua;
--- config
    location = /t { learn_predict m; }
--- user_files
>>> m.lua
local nn = require "learn.nn"
return nn.model {
    input = { 2, 3 },
    net = nn.Sequential(nn.Conv1d(2, 4, 2), nn.GELU(), nn.Flatten(),
                        nn.Linear(8, 1)),
    loss = nn.MSELoss(),
    optim = nn.Adam {},
}
--- request
POST /t
{"x": [[1, 2, 3, 4, 5, 6]]}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error": "x has shape \[1, 6\], expected \[N, 2, 3\]"\}



=== TEST 8: and the right shape predicts, with or without N
--- http_config
    learn_model m html/m.lua;
--- config
    location = /t { learn_predict m; }
--- user_files
>>> m.lua
local nn = require "learn.nn"
return nn.model {
    input = { 2, 3 },
    net = nn.Sequential(nn.Conv1d(2, 4, 2), nn.GELU(), nn.Flatten(),
                        nn.Linear(8, 1)),
    loss = nn.MSELoss(),
    optim = nn.Adam {},
}
--- request
POST /t
{"x": [[1, 2, 3], [4, 5, 6]]}
--- more_headers
Content-Type: application/json
Accept: application/json
--- error_code: 200
--- response_body_like: ^\{"y": ?\[-?[0-9.e-]+\]



=== TEST 9: an Embedding index out of range is a 400 naming it and its place
--- http_config
    learn_model m html/m.lua;
--- config
    location = /t { learn_train m; }
--- user_files
>>> m.lua
local nn = require "learn.nn"
return nn.model {
    input = { 4 },
    net = nn.Sequential(nn.Embedding(10, 3, { padding_idx = 0 }),
                        nn.LayerNorm(3), nn.Flatten(), nn.Linear(12, 2)),
    loss = nn.CrossEntropyLoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- request
POST /t
{"x": [[1, 2, 3, 4], [5, 6, 10, 0]], "y": [0, 1]}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error": "x\[1, 2\] = 10 is not an index in \[0, 10\) of layer \\"0\\" \(Embedding\)"\}



=== TEST 10: indices in range train
--- http_config
    learn_model m html/m.lua;
--- config
    location = /t { learn_train m; }
--- user_files
>>> m.lua
local nn = require "learn.nn"
return nn.model {
    input = { 4 },
    net = nn.Sequential(nn.Embedding(10, 3, { padding_idx = 0 }),
                        nn.LayerNorm(3), nn.Flatten(), nn.Linear(12, 2)),
    loss = nn.CrossEntropyLoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- request
POST /t
{"x": [[1, 2, 3, 4], [5, 6, 9, 0]], "y": [0, 1]}
--- more_headers
Content-Type: application/json
Accept: application/json
--- error_code: 200
--- response_body_like: ^\{"loss": ?[0-9.e-]+, ?"step": ?1\}



=== TEST 11: a BatchNorm1d cannot train on one sample, as in PyTorch
--- http_config
    learn_model m html/m.lua;
--- config
    location = /t { learn_train m; }
--- user_files
>>> m.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(),
                        nn.Linear(4, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- request
POST /t
{"x": [[1, 2]], "y": [[1]]}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: needs more than one value per channel to train
