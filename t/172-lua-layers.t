# resty.learn with a net whose sample has more dims than one: it passes
# rows of in_dim floats, which the module reads as [rows, C, H, W]; the
# answers equal learn_predict's for the same images sent as [N, 1, 8, 8].

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

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('main_config', "load_module $ndk_so;\n"
        . "load_module $lua_so;\nthread_pool lua_pool threads=2;\n"
        . ($block->main_config // ''));

    $block->set_value('http_config', <<'_EOC_' . ($block->http_config // ''));
    lua_package_path "$TEST_NGINX_LEARN_LUA/?.lua;;";
    learn_model cnn models/digits_cnn.lua seed=1;
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
    }
_EOC_
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: rows of 64 floats through digits_cnn equal learn_predict's [N, 1, 8, 8]
--- config
    location = /predict { learn_predict cnn; }
    location = /t {
        content_by_lua_block {
            local rows, imgs = {}, {}
            for n = 1, 2 do
                local row, img = {}, {}
                for i = 1, 8 do
                    local line = {}
                    for j = 1, 8 do
                        local v = ((n * 7 + i * 3 + j) % 11) / 10
                        row[#row + 1] = v
                        line[j] = v
                    end
                    img[i] = line
                end
                rows[n] = row
                imgs[n] = { img }
            end
            local y, err = learn.predict("cnn", rows)
            ngx.say(dump({y = y}), " ", tostring(err))
            ngx.req.set_header("Content-Type", "application/json")
            local r = ngx.location.capture("/predict", { method = ngx.HTTP_POST,
                body = dump({x = imgs}) })
            ngx.say(r.body)
        }
    }
--- request
GET /t
--- response_body_like: ^(\{"y":\[\[[^\]]+\],\[[^\]]+\]\]\}) nil\n\1$



=== TEST 2: a train step through resty.learn on rows
--- config
    location = /t {
        content_by_lua_block {
            local rows = {}
            for n = 1, 4 do
                local row = {}
                for i = 1, 64 do row[i] = ((n + i) % 5) / 4 end
                rows[n] = row
            end
            local loss, step = learn.train("cnn", rows, {0, 1, 2, 3})
            ngx.say(type(loss), " ", tostring(step))
        }
    }
--- request
GET /t
--- response_body
number 1



=== TEST 3: learn.weights gives a CNN's 4-d weights and BatchNorm's int64 counter; load_weights takes them back
--- config
    location = /t {
        content_by_lua_block {
            local rows = {}
            for n = 1, 4 do
                local row = {}
                for i = 1, 64 do row[i] = ((n * 3 + i) % 7) / 6 end
                rows[n] = row
            end
            assert(learn.train("cnn", rows, {0, 1, 2, 3}))
            assert(learn.train("cnn", rows, {3, 2, 1, 0}))
            local w, step = learn.weights("cnn")
            local c = w["0.0.weight"]
            ngx.say("step ", step, ", 0.0.weight ", #c, "x", #c[1], "x",
                    #c[1][1], "x", #c[1][1][1], ", 1.0.weight ",
                    #w["1.0.weight"], "x", #w["1.0.weight"][1], "x",
                    #w["1.0.weight"][1][1], "x", #w["1.0.weight"][1][1][1],
                    ", 0.1.running_var ", #w["0.1.running_var"],
                    ", 0.1.num_batches_tracked ",
                    math.type and math.type(w["0.1.num_batches_tracked"])
                    or type(w["0.1.num_batches_tracked"]), " ",
                    w["0.1.num_batches_tracked"])
            local before = dump(learn.predict("cnn", rows))

            -- another net's weights, then these back: predicts as before
            local other = learn.weights("cnn")
            other["0.0.weight"][1][1][2][2] = other["0.0.weight"][1][1][2][2] + 1
            other["0.1.running_mean"][1] = 5
            other["0.1.num_batches_tracked"] = 7
            assert(learn.load_weights("cnn", other))
            local o = learn.weights("cnn")
            ngx.say("changed: ", o["0.1.num_batches_tracked"], " ",
                    o["0.1.running_mean"][1], " ",
                    dump(learn.predict("cnn", rows)) ~= before)
            assert(learn.load_weights("cnn", w))
            ngx.say("round trip: ", dump(learn.weights("cnn")) == dump(w),
                    " ", dump(learn.predict("cnn", rows)) == before)

            -- wrong shapes and counters are refused, naming the entry
            local bad = learn.weights("cnn")
            bad["0.0.weight"][1][1][3] = { 1, 2 }
            ngx.say(select(2, learn.load_weights("cnn", bad)))
            bad = learn.weights("cnn")
            bad["0.0.weight"] = { 1, 2, 3 }
            ngx.say(select(2, learn.load_weights("cnn", bad)))
            bad = learn.weights("cnn")
            bad["1.1.num_batches_tracked"] = -1
            ngx.say(select(2, learn.load_weights("cnn", bad)))
            ngx.say("unchanged: ", dump(learn.weights("cnn")) == dump(w))
        }
    }
--- request
GET /t
--- response_body
step 2, 0.0.weight 8x1x3x3, 1.0.weight 16x8x3x3, 0.1.running_var 8, 0.1.num_batches_tracked number 2
changed: 7 5 true
round trip: true true
"0.0.weight"[1][1][3] is not a row of 3 numbers
"0.0.weight" has shape [3], the model's is [8, 1, 3, 3]
"1.1.num_batches_tracked" must be a whole number in [0, 2^48), not -1
unchanged: true
