# Losses, optimizers, learning rate schedules and clip_grad_norm after
# PyTorch's names: each is accepted by nginx -t and serves; an option
# PyTorch does not have, or a value PyTorch would reject, fails naming
# the file and the line; learn_status reports the learning rate the next
# step uses.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: every loss is accepted and serves
--- http_config
    learn_model mse html/mse.lua;
    learn_model nll html/nll.lua;
    learn_model l1 html/l1.lua;
    learn_model sl1 html/sl1.lua;
    learn_model huber html/huber.lua;
    learn_model bcel html/bcel.lua;
    learn_model bcelpw html/bcelpw.lua;
    learn_model ce html/ce.lua;
--- config
    location = /t { learn_status; }
--- user_files
>>> mse.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 3)),
                  loss = nn.MSELoss(), optim = nn.SGD { lr = 0.1 } }
>>> nll.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 3), nn.LogSoftmax(1)),
                  loss = nn.NLLLoss { ignore_index = -100 },
                  optim = nn.SGD { lr = 0.1 } }
>>> l1.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 3)),
                  loss = nn.L1Loss { reduction = "mean" },
                  optim = nn.SGD { lr = 0.1 } }
>>> sl1.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 3)),
                  loss = nn.SmoothL1Loss { beta = 0.5 },
                  optim = nn.SGD { lr = 0.1 } }
>>> huber.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 3)),
                  loss = nn.HuberLoss { delta = 2 },
                  optim = nn.SGD { lr = 0.1 } }
>>> bcel.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 3)),
                  loss = nn.BCEWithLogitsLoss(),
                  optim = nn.SGD { lr = 0.1 } }
>>> bcelpw.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 3)),
                  loss = nn.BCEWithLogitsLoss { pos_weight = { 1, 2, 3 } },
                  optim = nn.SGD { lr = 0.1 } }
>>> ce.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 3)),
                  loss = nn.CrossEntropyLoss { label_smoothing = 0.1 },
                  optim = nn.SGD { lr = 0.1 } }
--- request
GET /t
--- error_code: 200
--- response_body_like: "mse".*"nll".*"l1".*"sl1".*"huber".*"bcel".*"bcelpw".*"ce"



=== TEST 2: every optimizer is accepted; status reports its lr (PyTorch's defaults)
--- http_config
    learn_model sgd html/sgd.lua;
    learn_model adam html/adam.lua;
    learn_model adamw html/adamw.lua;
    learn_model rms html/rms.lua;
    learn_model ada html/ada.lua;
--- config
    location = /t { learn_status; }
--- user_files
>>> sgd.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 1)), loss = nn.MSELoss(),
                  optim = nn.SGD { lr = 0.25, momentum = 0.9, nesterov = true,
                                   weight_decay = 1e-4 } }
>>> adam.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 1)), loss = nn.MSELoss(),
                  optim = nn.Adam { amsgrad = true } }
>>> adamw.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 1)), loss = nn.MSELoss(),
                  optim = nn.AdamW { lr = 0.002, weight_decay = 0.01 } }
>>> rms.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 1)), loss = nn.MSELoss(),
                  optim = nn.RMSprop { momentum = 0.9, centered = true } }
>>> ada.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 1)), loss = nn.MSELoss(),
                  optim = nn.Adagrad { lr_decay = 0.01,
                                       initial_accumulator_value = 0.1 } }
--- request
GET /t
--- error_code: 200
--- response_body_like: "sgd": \{[^}]*"lr": 0\.25,.*"adam": \{[^}]*"lr": 0\.001\d*,.*"adamw": \{[^}]*"lr": 0\.002\d*,.*"rms": \{[^}]*"lr": 0\.01\d*,.*"ada": \{[^}]*"lr": 0\.01\d*,



=== TEST 3: every schedule is accepted, positional or by keyword; lr at step 0
--- http_config
    learn_model step html/step.lua;
    learn_model multi html/multi.lua;
    learn_model exp html/exp.lua;
    learn_model lin html/lin.lua;
    learn_model cos html/cos.lua;
    learn_model warm html/warm.lua;
--- config
    location = /t { learn_status; }
--- user_files
>>> step.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 1)), loss = nn.MSELoss(),
                  optim = nn.SGD { lr = 0.5 },
                  schedule = nn.StepLR(100, { gamma = 0.5 }) }
>>> multi.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 1)), loss = nn.MSELoss(),
                  optim = nn.SGD { lr = 0.5 },
                  schedule = nn.MultiStepLR { milestones = { 10, 20 } } }
>>> exp.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 1)), loss = nn.MSELoss(),
                  optim = nn.SGD { lr = 0.5 }, schedule = nn.ExponentialLR(0.9) }
>>> lin.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 1)), loss = nn.MSELoss(),
                  optim = nn.SGD { lr = 0.5 },
                  schedule = nn.LinearLR { start_factor = 0.5, total_iters = 4 } }
>>> cos.lua
local nn = require "learn.nn"
return nn.model { net = nn.Sequential(nn.Linear(2, 1)), loss = nn.MSELoss(),
                  optim = nn.SGD { lr = 0.5 },
                  schedule = nn.CosineAnnealingLR { T_max = 100, eta_min = 0.01 } }
>>> warm.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)), loss = nn.MSELoss(),
    optim = nn.AdamW { lr = 0.5 },
    schedule = nn.SequentialLR {
        schedulers = { nn.LinearLR { start_factor = 0.1, total_iters = 10 },
                       nn.CosineAnnealingLR(90) },
        milestones = { 10 } },
    clip_grad_norm = { max_norm = 1.0, norm_type = 2 },
}
--- request
GET /t
--- error_code: 200
--- response_body_like: "step": \{[^}]*"lr": 0\.5,.*"multi": \{[^}]*"lr": 0\.5,.*"exp": \{[^}]*"lr": 0\.5,.*"lin": \{[^}]*"lr": 0\.25,.*"cos": \{[^}]*"lr": 0\.5,.*"warm": \{[^}]*"lr": 0\.05\d*,



=== TEST 4: an option AdamW does not have names the file and the line
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_status; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.AdamW { lr = 0.01, weight_decya = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:5: nn\.AdamW has no option "weight_decya"/



=== TEST 5: an option StepLR does not have names the file and the line
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_status; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
    schedule = nn.StepLR { step_size = 10, gama = 0.5 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:6: nn\.StepLR has no option "gama"/



=== TEST 6: Nesterov without momentum is refused as PyTorch refuses it
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_status; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1, nesterov = true },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:5: nn\.SGD: Nesterov momentum requires a momentum and zero dampening/



=== TEST 7: HuberLoss delta must be positive
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_status; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.HuberLoss { delta = 0 },
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:4: HuberLoss delta must be a finite number > 0, got 0/



=== TEST 8: label_smoothing outside [0, 1]
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_status; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 3)),
    loss = nn.CrossEntropyLoss { label_smoothing = 1.5 },
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:4: label_smoothing must be a number in \[0, 1\], got 1\.5/



=== TEST 9: SequentialLR needs one milestone fewer than schedulers
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_status; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
    schedule = nn.SequentialLR({ nn.StepLR(5), nn.ExponentialLR(0.9) },
                               { 5, 10 }),
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:6: SequentialLR expects number of schedulers provided to be one more than the number of milestone points/



=== TEST 10: clip_grad_norm must be positive
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_status; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
    clip_grad_norm = -1,
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:7: clip_grad_norm max_norm must be a finite number > 0, got -1/



=== TEST 11: clip_grad_norm supports the L2 norm only
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_status; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
local m = nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
    clip_grad_norm = { max_norm = 1, norm_type = 1 },
}
return m
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:2: clip_grad_norm: norm_type = 1 is not supported \(only 2\)/



=== TEST 12: an optimizer option of the wrong type
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_status; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.RMSprop { centered = 1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:5: centered must be a boolean, got 1/



=== TEST 13: pos_weight must match the net's outputs (the module's check)
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_status; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 3)),
    loss = nn.BCEWithLogitsLoss { pos_weight = { 1, 2 } },
    optim = nn.SGD { lr = 0.1 },
}
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua.*BCEWithLogitsLoss: pos_weight has 2 values; the net gives 3 outputs/



=== TEST 14: a hand-made schedule table with an unknown field is refused by the reader
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_status; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
local m = nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
    schedule = nn.StepLR(10),
}
m.schedule.warmup = 5
return m
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua: StepLR has no field "warmup"/
