-- learn.sandbox: the environment a model file runs in.
--
-- Model files are run by the nginx master, often as root, so they see
-- no io, os, debug, load* or package, and may require only learn.*.

local real_require = require

local function safe_require(name)
    if type(name) ~= "string" or not name:match("^learn%.[%w_]+$") then
        error("require \"" .. tostring(name) .. "\" is not allowed in a "
              .. "model file (only learn.* modules)", 2)
    end
    return real_require(name)
end

local safe = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "select",
    "tonumber", "tostring", "type", "unpack", "xpcall", "rawget",
    "rawequal", "setmetatable", "getmetatable",
}

return function()
    local env = { require = safe_require, math = {}, string = {},
                  table = {} }
    for _, name in ipairs(safe) do
        env[name] = _G[name]
    end
    for _, lib in ipairs { "math", "string", "table" } do
        for k, v in pairs(_G[lib]) do
            env[lib][k] = v
        end
    end
    env._G = env
    return env
end
