# Model files run in the nginx master (as root) at nginx -t, start and
# reload: nothing a model file or a learn.* module does may reach io, os,
# package, debug, jit, ffi or bytecode, change what another file sees, or
# hold the master (endless loops, memory).  Each escape that was tried is
# a block here; "ESCAPED" in error.log means the file got out.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the string metatable is hidden, so require's name check cannot be replaced
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local mt = getmetatable("")
mt.__index.match = function() return true end
local io = require "io"
error("ESCAPED " .. tostring(io))
--- must_die
--- error_log eval
qr/bad\.lua:2: attempt to index local 'mt' \(a boolean value\)/
--- no_error_log
ESCAPED



=== TEST 2: replacing the file's own string.match does not open require either
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
string.match = function() return true end
string.find = function() return 1 end
local os = require "os"
error("ESCAPED " .. tostring(os))
--- must_die
--- error_log eval
qr/bad\.lua:3: require "os" is not allowed in a model file \(only learn\.\* modules\)/
--- no_error_log
ESCAPED



=== TEST 3: a model file sees exactly these globals
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local names = {}
for k in pairs(_G) do names[#names + 1] = k end
table.sort(names)
error("GLOBALS " .. table.concat(names, " "))
--- must_die
--- error_log eval
qr/GLOBALS _G assert error getmetatable ipairs math next pairs pcall rawequal rawget require select setmetatable string table tonumber tostring type unpack xpcall in /



=== TEST 4: _G is the file's own table: rawset, setfenv and getfenv are not there
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
_G.require = nil
local f = getfenv or setfenv or rawset or (debug and debug.getfenv)
error("FENV " .. tostring(f) .. " " .. tostring(rawget(_G, "require")))
--- must_die
--- error_log eval
qr/bad\.lua:3: FENV nil nil/



=== TEST 5: debug is unreachable by every path tried
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local paths = { tostring(debug), tostring(string.dump),
                tostring(rawget(_G, "debug")) }
local ok, err = pcall(require, "debug")
paths[#paths + 1] = tostring(ok)
error("DEBUG " .. table.concat(paths, " ") .. " " .. err)
--- must_die
--- error_log eval
qr/bad\.lua:5: DEBUG nil nil nil false require "debug" is not allowed/



=== TEST 6: package, package.loaded and load* are not there
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local seen = {}
for _, n in ipairs { "package", "load", "loadstring", "loadfile",
                     "dofile", "module", "collectgarbage", "newproxy",
                     "gcinfo", "jit", "ffi", "io", "os", "coroutine" } do
    if rawget(_G, n) ~= nil then seen[#seen + 1] = n end
end
error("SEEN [" .. table.concat(seen, " ") .. "]")
--- must_die
--- error_log eval
qr/bad\.lua:7: SEEN \[\]/



=== TEST 7: a learn.* module from learn_lua_path runs in the same sandbox
--- http_config
    learn_lua_path $TEST_NGINX_HTML_DIR/lib/?.lua;
    learn_model m html/m.lua;
--- config
    location = /t { learn_predict m; }
--- user_files
>>> lib/learn/probe.lua
local seen = {}
for _, n in ipairs { "io", "os", "package", "debug", "jit", "ffi", "load",
                     "loadstring", "dofile", "loadfile", "setfenv",
                     "getfenv", "coroutine", "collectgarbage" } do
    if _G[n] ~= nil then seen[#seen + 1] = n end
end
if #seen > 0 then error("ESCAPED " .. table.concat(seen, " ")) end
return { width = 3 }
>>> m.lua
local nn = require "learn.nn"
local probe = require "learn.probe"
return nn.model {
    net = nn.Sequential(nn.Linear(probe.width, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
--- more_headers
Content-Type: application/json
--- request
POST /t
{"x": [[1, 2, 3]]}
--- error_code: 200
--- no_error_log
ESCAPED



=== TEST 8: LuaJIT bytecode is never loaded as a model file
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files eval
[["bad.lua", pack("H*", "1b4c4a0208156572726f72282242595445434f44452052414e222932020003000200040500013600000027020100420002014b0001001142595445434f44452052414e0a6572726f72010101010000")]]
--- must_die
--- error_log eval
qr/bad\.lua: is LuaJIT bytecode, which is never loaded \(only Lua source\)/
--- no_error_log
BYTECODE RAN



=== TEST 9: nor as a learn.* module
--- http_config
    learn_lua_path $TEST_NGINX_HTML_DIR/lib/?.lua;
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files eval
[["lib/learn/bc.lua", pack("H*", "1b4c4a0208156572726f72282242595445434f44452052414e222932020003000200040500013600000027020100420002014b0001001142595445434f44452052414e0a6572726f72010101010000")],
 ["bad.lua", "return require 'learn.bc'\n"]]
--- must_die
--- error_log eval
qr/bad\.lua:1: .*lib\/learn\/bc\.lua: is LuaJIT bytecode, which is never loaded/
--- no_error_log
BYTECODE RAN



=== TEST 10: require names that leave learn.* are refused before any file is looked up
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local out = {}
for _, n in ipairs { "learn.x/../../../etc/passwd", "learn..nn", "learn.",
                     "learn.nn.", "learnx", "ffi", "jit", "learn.nn\0x" } do
    local ok, err = pcall(require, n)
    out[#out + 1] = ok and ("LOADED " .. n) or "refused"
end
error("NAMES " .. table.concat(out, " "))
--- must_die
--- error_log eval
qr/bad\.lua:7: NAMES refused refused refused refused refused refused refused refused in/
--- no_error_log
LOADED



=== TEST 11: a require loop is an error, not a hang
--- http_config
    learn_lua_path $TEST_NGINX_HTML_DIR/lib/?.lua;
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> lib/learn/a.lua
return require "learn.b"
>>> lib/learn/b.lua
return require "learn.a"
>>> bad.lua
return require "learn.a"
--- must_die
--- error_log eval
qr/require "learn\.a": a loop/



=== TEST 12: an endless loop fails nginx -t with a clear message
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local nn = require "learn.nn"
while true do end
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:2: the model file ran (more than 100 million Lua instructions|for more than 2 seconds) \(an endless loop\?\)/



=== TEST 13: pcall cannot catch the instruction limit
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
while true do
    pcall(function() while true do end end)
end
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:\d+: the model file ran (more than 100 million Lua instructions|for more than 2 seconds)/



=== TEST 14: nor can xpcall, whose handler loops too
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
while true do
    xpcall(function() while true do end end,
           function() while true do end end)
end
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:\d+: the model file ran (more than 100 million Lua instructions|for more than 2 seconds)/



=== TEST 15: an endless loop in a learn.* module is stopped too
--- http_config
    learn_lua_path $TEST_NGINX_HTML_DIR/lib/?.lua;
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> lib/learn/spin.lua
local n = 0
while true do n = n + 1 end
>>> bad.lua
return require "learn.spin"
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:1: the model file ran (more than 100 million Lua instructions|for more than 2 seconds)/



=== TEST 16: memory is limited, also for many small strings
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
local t = {}
for i = 1, 1e9 do t[i] = ("x"):rep(1024 * 1024) .. i end
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:2: the model file used more than 128 MB of memory/



=== TEST 17: one huge string is refused, and pcall cannot go on after it
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
while true do
    pcall(string.rep, "x", 2 ^ 30)
end
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:2: the model file used more than 128 MB of memory/



=== TEST 18: the returned table is read raw: its metamethods never run in the master
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
return setmetatable({}, {
    __index = function(t, k) while true do end end,
})
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua: the file must return nn\.model\{\.\.\.\}/



=== TEST 19: an error object whose __tostring loops is not run either
--- http_config
    learn_model bad html/bad.lua;
--- config
    location = /t { learn_predict bad; }
--- user_files
>>> bad.lua
error(setmetatable({}, { __tostring = function() while true do end end }))
--- must_die
--- error_log eval
qr/\[emerg\] .*bad\.lua:1: \(error object is a table value\)/



=== TEST 20: changes one model file makes to learn.nn do not reach another
--- http_config
    learn_model a html/a.lua;
    learn_model b html/b.lua;
--- config
    location = /t { learn_predict b; }
--- user_files
>>> a.lua
local nn = require "learn.nn"
nn.Linear = function() error("POISONED") end
string.format = function() error("POISONED") end
return nn.model {
    net = nn.Sequential({ layer = "Linear", inputs = 2, outputs = 1 }),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.1 },
}
>>> b.lua
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = ("%g"):format(0.1) + 0 },
}
--- more_headers
Content-Type: application/json
--- request
POST /t
{"x": [[1, 2]]}
--- error_code: 200
--- no_error_log
POISONED
