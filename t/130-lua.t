# resty.learn under Debian's lua-nginx-module: each function, each phase
# it is meant for, every refusal (and that a refused call changes
# nothing), and answers equal to learn_predict's for the same input.
#
# Every block loads ndk and lua beside the module; $TEST_NGINX_LEARN_LUA
# is the repo's lua/ (resty/learn.lua).  dump() (init_by_lua) writes a
# value as the module's JSON does (numbers "%.9g", no spaces), so a Lua
# answer and a learn_predict answer compare as text.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

my $lua_so = '/usr/lib/nginx/modules/ngx_http_lua_module.so';
my $ndk_so = '/usr/lib/nginx/modules/ndk_http_module.so';

if (!-f $lua_so || !-f $ndk_so || !-f '/usr/share/lua/5.1/resty/core.lua') {
    plan skip_all => 'lua-nginx-module is not installed (Debian: '
                   . 'libnginx-mod-http-lua libnginx-mod-http-ndk '
                   . 'lua-resty-core; make test installs them)';
}

$ENV{TEST_NGINX_LEARN_LUA} = "$TestLearn::RepoRoot/lua";

my $models = <<'_EOC_';
>>> lin.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
>>> cls.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 3)),
    loss = nn.CrossEntropyLoss(),
    optim = nn.SGD { lr = 0.1 },
}
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('main_config', "load_module $ndk_so;\n"
        . "load_module $lua_so;\nthread_pool lua_pool threads=2;\n"
        . ($block->main_config // ''));

    $block->set_value('http_config', <<'_EOC_' . ($block->http_config // ''));
    lua_package_path "$TEST_NGINX_LEARN_LUA/?.lua;;";
    learn_model xor models/xor.lua seed=1;
    learn_model lin html/lin.lua seed=2;
    learn_model cls html/cls.lua seed=3;
    init_by_lua_block {
        local function enc(v)
            if type(v) == "number" then
                return string.format("%.9g", v)
            end
            if type(v) ~= "table" then
                return '"' .. tostring(v) .. '"'
            end
            local out = {}
            if v[1] ~= nil or next(v) == nil then
                for i = 1, #v do out[i] = enc(v[i]) end
                return "[" .. table.concat(out, ",") .. "]"
            end
            local keys = {}
            for k in pairs(v) do keys[#keys + 1] = k end
            table.sort(keys)
            for i, k in ipairs(keys) do
                out[i] = '"' .. k .. '":' .. enc(v[k])
            end
            return "{" .. table.concat(out, ",") .. "}"
        end
        dump = enc
        learn = require "resty.learn"
        -- what a call gives where there is no worker yet
        init_says = { learn.predict("xor", {0, 1}) }
    }
_EOC_

    $block->set_value('user_files', $models . ($block->user_files // ''));
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: predict with rows equals learn_predict's answer
--- config
    location = /predict { learn_predict xor; }
    location = /t {
        content_by_lua_block {
            local y, err = learn.predict("xor", {{0, 1}, {1, 1}, {0.25, -3}})
            ngx.say(dump({y = y}), " ", tostring(err))
            ngx.req.set_header("Content-Type", "application/json")
            local r = ngx.location.capture("/predict", { method = ngx.HTTP_POST,
                body = '{"x": [[0, 1], [1, 1], [0.25, -3]]}' })
            ngx.say(r.body)
        }
    }
--- request
GET /t
--- response_body_like: ^(\{"y":\[\[[^\]]+\],\[[^\]]+\],\[[^\]]+\]\]\}) nil\n\1$



=== TEST 2: one sample as a flat list answers a flat list, as learn_predict does
--- config
    location = /predict { learn_predict xor; }
    location = /t {
        content_by_lua_block {
            local y = learn.predict("xor", {1, 0})
            ngx.say(dump({y = y}))
            ngx.req.set_header("Content-Type", "application/json")
            ngx.print(ngx.location.capture("/predict", { method = ngx.HTTP_POST,
                body = '{"x": [1, 0]}' }).body)
        }
    }
--- request
GET /t
--- response_body_like: ^(\{"y":\[[^\[\],]+\]\})\n\1$



=== TEST 3: a learn.tensor in, a learn.tensor out, with the table's numbers
--- config
    location = /t {
        content_by_lua_block {
            local x = learn.tensor({2, 2}, {{0, 1}, {1, 1}})
            local y = learn.predict("xor", x)
            ngx.say(learn.is_tensor(y), " ", dump(y.shape), " ",
                    dump(y:totable()))
            ngx.say(dump(learn.predict("xor", {{0, 1}, {1, 1}})))
        }
    }
--- request
GET /t
--- response_body_like: ^true \[2,1\] (\[\[\S+\],\[\S+\]\])\n\1$



=== TEST 4: opts.out is written in place, reused across calls and row counts
--- config
    location = /t {
        content_by_lua_block {
            local out = learn.tensor({4, 1})
            local x = learn.tensor({4, 2}, {0, 1, 1, 1, 1, 0, 0, 0})
            local y = learn.predict("xor", x, { out = out })
            ngx.say(rawequal(y, out), " ", dump(out.shape))
            local four = dump(out:totable())
            x.shape[1] = 1              -- the first row only, same buffer
            y = learn.predict("xor", x, { out = out })
            ngx.say(rawequal(y, out), " ", dump(out.shape), " ",
                    dump(out:totable()[1]) == dump(learn.predict("xor", {0, 1})))
            ngx.say(four == dump(learn.predict("xor",
                                 {{0, 1}, {1, 1}, {1, 0}, {0, 0}})))
        }
    }
--- request
GET /t
--- response_body
true [4,1]
true [1,1] true
true



=== TEST 5: a tensor over the caller's own float array is read in place (no copy)
--- config
    location = /t {
        content_by_lua_block {
            local ffi = require "ffi"
            local buf = ffi.new("float[2]", 0, 1)
            local x = learn.tensor({2}, buf)
            local a = learn.predict("xor", x):totable()[1]
            buf[0], buf[1] = 1, 1
            local b = learn.predict("xor", x):totable()[1]
            ngx.say(a == learn.predict("xor", {0, 1})[1], " ",
                    b == learn.predict("xor", {1, 1})[1], " ", a ~= b)
            -- a buffer smaller than the shape, or not of floats: refused
            ngx.say(learn.tensor({2, 2}, buf))
            ngx.say(learn.tensor({2}, ffi.new("double[2]")))
            ngx.say(learn.tensor({2}, ffi.cast("float *", buf)))
            ngx.say(learn.tensor({2^20, 2^10}))
        }
    }
--- request
GET /t
--- response_body
true true true
nildata must be a float array (ffi.new("float[?]", n)) of at least 4 numbers
nildata must be a float array (ffi.new("float[?]", n)) of at least 2 numbers
nildata must be a float array (ffi.new("float[?]", n)) of at least 2 numbers
nila tensor holds at most 268435456 numbers



=== TEST 6: train is one step per call, on the zone learn_predict and learn_status read
--- config
    location = /predict { learn_predict xor; }
    location = /status { learn_status; }
    location = /t {
        content_by_lua_block {
            local before = learn.predict("xor", {{0, 1}})
            for i = 1, 3 do
                local loss, step = learn.train("xor", {{0, 1}, {1, 1}}, {{1}, {0}})
                ngx.say(type(loss), " ", loss > 0, " ", step)
            end
            local after = learn.predict("xor", {{0, 1}})
            ngx.say(after[1][1] ~= before[1][1])
            ngx.req.set_header("Content-Type", "application/json")
            local r = ngx.location.capture("/predict", { method = ngx.HTTP_POST,
                body = '{"x": [[0, 1]]}' })
            ngx.say(r.body == dump({y = after}))
            local st = ngx.location.capture("/status").body
            ngx.say(st:match('"xor": {"step": (%d+)'), " ",
                    st:match('"xor": {[^}]*"trains": (%d+)'))
            local s = learn.status("xor")
            ngx.say(s.step, " ", s.trains, " ", s.predicts)
        }
    }
--- request
GET /t
--- response_body
number true 1
number true 2
number true 3
true
true
3 3
3 3 3



=== TEST 7: targets in every form learn_train takes: rows, a flat list, a number, tensors
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(select(2, learn.train("xor", {{0, 1}, {1, 1}}, {{1}, {0}})))
            ngx.say(select(2, learn.train("xor", {{0, 1}, {1, 1}}, {1, 0})))
            ngx.say(select(2, learn.train("xor", {0, 1}, 1)))
            ngx.say(select(2, learn.train("xor", learn.tensor({2, 2}, {0, 1, 1, 1}),
                                          learn.tensor({2, 1}, {1, 0}))))
            ngx.say(select(2, learn.train("cls", {{0, 1}, {1, 1}}, {2, 0})))
            ngx.say(select(2, learn.train("cls", {{0, 1}}, {{0, 0, 1}})))
        }
    }
--- request
GET /t
--- response_body
1
2
3
4
1
2



=== TEST 8: load_weights sets every parameter; weights reads them back, as learn_weights does
--- config
    location = /weights { learn_weights lin; }
    location = /t {
        content_by_lua_block {
            ngx.say(learn.load_weights("lin", { ["0.weight"] = {{2, 3}},
                                                ["0.bias"] = {1} }))
            ngx.say(dump(learn.predict("lin", {{1, 1}, {0, 1}, {-1, 0.5}})))
            local w, step = learn.weights("lin")
            ngx.say(dump(w), " ", step)
            local r = ngx.location.capture("/weights",
                { args = "", method = ngx.HTTP_GET,
                  ctx = {}, always_forward_body = false })
            ngx.say(r.status)
        }
    }
--- more_headers
Accept: application/json
--- request
GET /t
--- response_body
true
[[6],[4],[0.5]]
{"0.bias":[1],"0.weight":[[2,3]]} 0
200



=== TEST 9: learn_weights PUT and learn.weights agree; load_weights takes tensors too
--- config
    location = /weights { learn_weights lin; }
    location = /t {
        content_by_lua_block {
            ngx.req.set_header("Content-Type", "application/json")
            local r = ngx.location.capture("/weights", { method = ngx.HTTP_PUT,
                body = '{"0.weight": [[0.5, -2]], "0.bias": [0.25]}' })
            ngx.say(r.status, " ", dump(learn.weights("lin")))
            ngx.say(learn.load_weights("lin", {
                ["0.weight"] = learn.tensor({1, 2}, {1, 1}),
                ["0.bias"] = learn.tensor({1}, {0}) }))
            ngx.say(dump(learn.predict("lin", {3, 4})))
        }
    }
--- request
GET /t
--- response_body
200 {"0.bias":[0.25],"0.weight":[[0.5,-2]]}
true
[7]



=== TEST 10: a refused load_weights changes nothing
--- config
    location = /t {
        content_by_lua_block {
            learn.load_weights("lin", { ["0.weight"] = {{2, 3}}, ["0.bias"] = {1} })
            local cases = {
                { ["0.weight"] = {{2, 3}} },
                { ["0.weight"] = {{2, 3}}, ["0.bias"] = {1}, ["1.bias"] = {0} },
                { ["0.weight"] = {{2, 3, 4}}, ["0.bias"] = {1} },
                { ["0.weight"] = {{2}, {3}}, ["0.bias"] = {1} },
                { ["0.weight"] = {{2, 0/0}}, ["0.bias"] = {1} },
                { ["0.weight"] = {{2, 1/0}}, ["0.bias"] = {1} },
                { ["0.weight"] = {{2, "3"}}, ["0.bias"] = {1} },
                { ["0.weight"] = 7, ["0.bias"] = {1} },
            }
            for _, c in ipairs(cases) do
                ngx.say(learn.load_weights("lin", c))
            end
            ngx.say(learn.load_weights("lin", "w"))
            ngx.say(dump(learn.weights("lin")))
        }
    }
--- request
GET /t
--- response_body
nilmissing "0.bias": an import sets every parameter (2)
nilmodel "lin" has no parameter "1.bias"
nil"0.weight" has shape [1, 3], the model's is [1, 2]
nil"0.weight" has shape [2, 1], the model's is [1, 2]
nil"0.weight" has a non-finite value (NaN or Inf) at element 1
nil"0.weight" has a non-finite value (NaN or Inf) at element 1
nil0.weight[1][2] is a string, not a number
nil"0.weight" has shape number, the model's is [1, 2]
nilweights must be a table of name = values
{"0.bias":[1],"0.weight":[[2,3]]}



=== TEST 11: refused predicts: nil and a message, counted in learn_status
--- config
    location = /t {
        content_by_lua_block {
            local cases = {
                { "nope", {0, 1} },
                { 42, {0, 1} },
                { "xor", "0,1" },
                { "xor", {} },
                { "xor", {{}} },
                { "xor", {0, 1, 2} },
                { "xor", {{0, 1, 2}} },
                { "xor", {{0, 1}, {1}} },
                { "xor", {{0, 1}, 7} },
                { "xor", {0, "1"} },
                { "xor", {{0, true}} },
                { "xor", {0, 0/0} },
                { "xor", {{0, 1}, {1/0, 1}} },
                { "xor", {0, 1}, { foo = 1 } },
                { "xor", {0, 1}, { 5 } },
                { "xor", {0, 1}, { version = "live", [true] = 1 } },
                { "xor", {0, 1}, "live" },
                { "xor", {0, 1}, { version = -1 } },
                { "xor", {0, 1}, { version = 1.5 } },
                { "xor", {0, 1}, { version = 7 } },
                { "xor", {0, 1}, { thread_pool = 3 } },
                { "xor", learn.tensor({3}) },
                { "xor", learn.tensor({2}), { out = {} } },
                { "xor", learn.tensor({2, 2}), { out = learn.tensor({1}) } },
            }
            for _, c in ipairs(cases) do
                ngx.say(learn.predict(c[1], c[2], c[3]))
            end
            local s = learn.status("xor")
            ngx.say(s.predicts, " ", s.rejected)
        }
    }
--- request
GET /t
--- response_body
nilmodel "nope" not found
nilmodel name must be a string, not number
nilx must be a table or a learn.tensor, not string
nilx is empty
nilx[1] is empty
nilx has shape [3], expected [N, 2]
nilx has shape [1, 3], expected [N, 2]
nilx[2] has 1 numbers, x[1] has 2
nilx[2] is a number, x[1] is a row
nilx[2] is a string, not a number
nilx[1][2] is a boolean, not a number
nilx has a non-finite value (NaN or Inf) at element 1
nilx has a non-finite value (NaN or Inf) at element 2
nilunknown option "foo"
nilunknown option "1"
nilunknown option "true"
nilopts must be a table, not string
nilversion must be a checkpoint's step or "live"
nilversion must be a checkpoint's step or "live"
nilmodel "xor" keeps no version 7
nilopts.thread_pool must be a thread_pool's name
nilx has shape [3], expected [N, 2]
nilopts.out must be a learn.tensor
nilopts.out holds 1 numbers, y has 2
0 22



=== TEST 12: refused trains change nothing: shapes, class indices, values
--- config
    location = /t {
        content_by_lua_block {
            local w = dump(learn.weights("xor"))
            local cases = {
                { "xor", {{0, 1}}, nil },
                { "xor", {{0, 1}}, "1" },
                { "xor", {{0, 1}, {1, 1}}, {{1, 0}, {0, 1}} },
                { "xor", {{0, 1}, {1, 1}}, {1, 0, 1} },
                { "xor", {{0, 1}}, {0/0} },
                { "xor", {{0, 1}}, {{1}}, { version = 1 } },
                { "cls", {{0, 1}, {1, 1}}, {3, 0} },
                { "cls", {{0, 1}, {1, 1}}, {0.5, 0} },
                { "cls", {{0, 1}}, {{1, 0}} },
                { "xor", {{0, 1}}, {{3e38}} },
            }
            for _, c in ipairs(cases) do
                ngx.say(learn.train(c[1], c[2], c[3], c[4]))
            end
            local s = learn.status("xor")
            ngx.say(s.step, " ", s.trains, " ", s.rejected_steps, " ",
                    w == dump(learn.weights("xor")))
        }
    }
--- request
GET /t
--- response_body
nily must be a table, a number or a learn.tensor, not nil
nily must be a table, a number or a learn.tensor, not string
nily has shape [2, 2], expected [2, 1]
nily has shape [3], expected [2, 1]
nily has a non-finite value (NaN or Inf) at element 0
nilunknown option "version"
nily[0] = 3 is not a class index in [0, 3)
nily[0] = 0.5 is not a class index in [0, 3)
nily has shape [1, 2], expected [1] class indices or [1, 3] one-hot rows
nilthe loss of this batch is infinite: the step was not applied, the model is unchanged
0 0 1 true



=== TEST 13: access_by_lua scores a request and refuses it (429) with the model
--- config
    location = /t {
        access_by_lua_block {
            learn.load_weights("lin", { ["0.weight"] = {{2, 3}}, ["0.bias"] = {1} })
            local y = learn.predict("lin", { tonumber(ngx.var.arg_a),
                                             tonumber(ngx.var.arg_b) })
            if y[1] > 5 then
                return ngx.exit(429)
            end
        }
        content_by_lua_block { ngx.say("allowed") }
    }
--- request eval
["GET /t?a=1&b=1", "GET /t?a=1&b=0"]
--- error_code eval
[429, 200]
--- response_body_like eval
[".*", "^allowed\n\$"]



=== TEST 14: set_by_lua, rewrite_by_lua, header_filter_by_lua and body_filter_by_lua predict
--- config
    location = /t {
        # set_by_lua runs first (ngx_http_rewrite_module), and cannot yield
        set_by_lua_block $set_score {
            assert(learn.load_weights("lin", { ["0.weight"] = {{2, 3}},
                                               ["0.bias"] = {1} }))
            return learn.predict("lin", {0, 1})[1]
        }
        rewrite_by_lua_block {
            ngx.ctx.score = learn.predict("lin", {1, 1})[1]
        }
        header_filter_by_lua_block {
            ngx.header["X-Score"] = learn.predict("lin", {{0, 0}})[1][1]
        }
        body_filter_by_lua_block {
            if ngx.arg[1] ~= "" then
                ngx.arg[1] = ngx.arg[1] .. learn.predict("lin", {1, 0})[1] .. "\n"
            end
        }
        content_by_lua_block {
            ngx.say(ngx.ctx.score, " ", ngx.var.set_score)
        }
    }
--- request
GET /t
--- response_headers
X-Score: 1
--- response_body
6 4
3



=== TEST 15: log_by_lua trains on what happened; the next request sees the step
--- config
    location = /t {
        content_by_lua_block { ngx.say("served") }
        log_by_lua_block {
            local loss, step = learn.train("xor", {{0, 1}}, {{1}})
            if not loss then ngx.log(ngx.ERR, "train: ", step) end
        }
    }
    location = /step {
        content_by_lua_block {
            local s = learn.status("xor")
            ngx.say(s.step, " ", s.trains)
        }
    }
--- request eval
["GET /t", "GET /t", "GET /step"]
--- response_body eval
["served\n", "served\n", "2 2\n"]
--- no_error_log
train:



=== TEST 16: balancer_by_lua picks the peer a model chooses
--- http_config
    upstream scored {
        server 127.0.0.1:1;
        balancer_by_lua_block {
            local balancer = require "ngx.balancer"
            local a, b = tonumber(ngx.var.arg_a), tonumber(ngx.var.arg_b)
            local y = learn.predict("lin", {a, b})
            local port = y[1] > 5 and ngx.var.server_port or ngx.var.other_port
            assert(balancer.set_current_peer("127.0.0.1", tonumber(port)))
        }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { return 200 "other\n"; }
    }
--- config
    set $other_port $TEST_NGINX_RAND_PORT_1;
    location = /w {
        content_by_lua_block {
            ngx.say(learn.load_weights("lin", { ["0.weight"] = {{2, 3}},
                                                ["0.bias"] = {1} }))
        }
    }
    location = /t { proxy_pass http://scored/back; }
    location = /back { return 200 "this\n"; }
--- request eval
["GET /w", "GET /t?a=1&b=1", "GET /t?a=1&b=0"]
--- response_body eval
["true\n", "this\n", "other\n"]



=== TEST 17: ngx.timer.at callbacks train and predict
--- config
    location = /t {
        content_by_lua_block {
            local done = {}
            ngx.timer.at(0, function(premature)
                done.loss, done.step = learn.train("xor", {{0, 1}}, {{1}})
                done.y = learn.predict("xor", {0, 1})
            end)
            for _ = 1, 200 do
                if done.y then break end
                ngx.sleep(0.005)
            end
            ngx.say(type(done.loss), " ", done.step, " ", #done.y,
                    " ", learn.status("xor").step)
        }
    }
--- request
GET /t
--- response_body
number 1 1 1



=== TEST 18: init_by_lua runs in the master: refused with a message, no handle kept
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(init_says[1], " ", init_says[2])
            ngx.say(#learn.predict("xor", {0, 1}))
        }
    }
--- request
GET /t
--- response_body
nil resty.learn works in a worker (not in init_by_lua or before ngx_http_learn_module's init_process)
1



=== TEST 19: a thread pool takes a step or a forward pass above the threshold
--- config
    location = /t {
        content_by_lua_block {
            local pool = { thread_pool = "lua_pool", threshold = 0 }
            local a = learn.predict("xor", {{0, 1}, {1, 1}})
            local b = learn.predict("xor", {{0, 1}, {1, 1}}, pool)
            ngx.say(dump(a) == dump(b))
            local t = learn.predict("xor", learn.tensor({2}, {0, 1}), pool)
            ngx.say(t:totable()[1] == a[1][1])
            ngx.say(select(2, learn.train("xor", {{0, 1}}, {{1}}, pool)))
            ngx.say(select(2, learn.train("xor", {{0, 1}}, {{1}},
                                          { thread_pool = "lua_pool" })))
            ngx.say(learn.train("xor", {{0, 1}}, {{1}}, { thread_pool = "none",
                                                          threshold = 0 }))
            ngx.say(learn.train("xor", {{0, 1}}, {{3e38}}, pool))
            local s = learn.status("xor")
            ngx.say(s.step, " ", s.trains, " ", s.rejected_steps)
        }
    }
--- request
GET /t
--- response_body
true
true
1
2
nilno thread_pool "none"
nilthe loss of this batch is infinite: the step was not applied, the model is unchanged
2 2 1



=== TEST 20: a non-yielding phase runs a thread_pool call inline
--- config
    location = /t {
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_block {
            local loss, err = learn.train("xor", {{0, 1}}, {{1}},
                                          { thread_pool = "lua_pool", threshold = 0 })
            ngx.log(ngx.WARN, "log-phase train: ", tostring(loss), " ", tostring(err))
        }
    }
--- request
GET /t
--- response_body
ok
--- error_log eval
qr/log-phase train: \d\S* 1 /



=== TEST 21: a light thread killed while its step is on the pool: no step half-done, counts agree
--- config
    location = /t {
        content_by_lua_block {
            local pool = { thread_pool = "lua_pool", threshold = 0 }
            local th = ngx.thread.spawn(function()
                return learn.train("xor", {{0, 1}}, {{1}}, pool)
            end)
            ngx.thread.kill(th)
            th = nil
            collectgarbage()
            collectgarbage()
            -- the killed step is applied (its task had the mutex when the
            -- finalizer marked it) or not (it had not): this one comes
            -- after it or before it
            local _, step = learn.train("xor", {{0, 1}}, {{1}})
            local s
            for _ = 1, 1000 do
                s = learn.status("xor")
                if s.trains == s.step then break end
                ngx.sleep(0.005)
            end
            ngx.say(step == 1 or step == 2, " ", s.trains == s.step, " ",
                    s.step == 1 or s.step == 2)
            ngx.say(select(2, learn.train("xor", {{0, 1}}, {{1}}, pool))
                    == learn.status("xor").step)
        }
    }
--- request
GET /t
--- response_body
true true true
true



=== TEST 22: a tensor whose fields the caller changed: C keeps to its own buffer
--- config
    location = /t {
        content_by_lua_block {
            local y = learn.tensor({1, 1}, {{1}})
            y.data = nil                  -- C has its own pointer
            ngx.say(select(2, learn.train("xor", {{0, 1}}, y)))
            ngx.say(select(2, learn.train("xor", {{0, 1}}, y,
                                          { thread_pool = "lua_pool", threshold = 0 })))
            local x = learn.tensor({2}, {0, 1})
            local out = learn.tensor({1})
            out.data = "nothing"
            ngx.say(#learn.predict("xor", x, { out = out }):totable())
            local t = learn.tensor({2})
            t.shape[1] = 5e7
            ngx.say(t:totable())
            ngx.say(learn.predict("xor", t))
            x.shape = 5
            ngx.say(learn.predict("xor", x))
            x.shape = {2, 1}
            ngx.say(learn.predict("xor", x))
            ngx.say(learn.predict("xor", setmetatable({ shape = {2} },
                                                      getmetatable(x))))
            local w = learn.tensor({1, 2}, {1, 1})
            w.data = nil
            ngx.say(learn.load_weights("lin", { ["0.weight"] = w,
                                                ["0.bias"] = {0} }))
            ngx.say(learn.predict("lin", {3, 4})[1])
        }
    }
--- request
GET /t
--- response_body
1
2
1
nilthe tensor has shape {50000000}, more than the 2 numbers its buffer holds
nilx has shape {50000000}, more than the 2 numbers its buffer holds
nilx.shape must be {N} or {N, D}
nilx has shape [2, 1], expected [N, 2]
nilx is not a learn.tensor
true
7



=== TEST 23: a table bigger than any target or input is refused before a buffer grows for it
--- config
    location = /t {
        content_by_lua_block {
            local wide = {}
            for i = 1, 100000 do wide[i] = 0 end
            ngx.say(learn.predict("xor", { wide, {1} }))
            ngx.say(learn.predict("xor", wide))
            ngx.say(learn.train("xor", {{0, 1}}, { wide, {1} }))
            ngx.say(learn.train("cls", {{0, 1}}, wide))
            local rows = {}
            for i = 1, 60000 do rows[i] = {0, 1} end
            ngx.say(learn.predict("xor", rows))
            local s = learn.status("xor")
            ngx.say(s.step, " ", s.rejected)
        }
    }
--- request
GET /t
--- response_body
nilx has shape [2, 100000], expected [N, 2]
nilx has shape [100000], expected [N, 2]
nily has shape [2, 100000], expected [1, 1]
nily has shape [100000], expected [1] class indices or [1, 3] one-hot rows
nil60000 rows make activations of 1200000 elements (60000 x 20), above 1048576
0 4



=== TEST 24: status has learn_status's names and the model's shape
--- config
    location = /t {
        content_by_lua_block {
            learn.train("cls", {{0, 1}}, {2})
            local s = learn.status("cls")
            ngx.say(s.inputs, " ", s.outputs, " ", s.params, " ", s.device,
                    " ", s.step, " ", s.trains, " ", s.loss == s.loss,
                    " ", s.predict_latency_us >= 0)
            -- no checkpoint= and no checkpoint_keep: no such keys, as
            -- in learn_status's JSON
            ngx.say(tostring(s.versions), " ", tostring(s.checkpoint))
            ngx.say(learn.status("none"))
        }
    }
--- request
GET /t
--- response_body
2 3 9 cpu 1 1 true true
nil nil
nilmodel "none" not found
