-- learn.layers: the layers beyond Linear and the first activations
-- (learn.nn puts them in nn: nn.Conv2d, nn.BatchNorm1d, ...).
--
-- Each constructor takes PyTorch's positional arguments in PyTorch's
-- order, then optionally one table of keyword arguments:
--     nn.Conv2d(1, 6, 5, {padding = 2})
-- An argument PyTorch has that the module does not support may only
-- hold PyTorch's default; an unknown keyword is an error.  Errors name
-- the line of the model file that called the constructor.  Shapes are
-- checked by the module, through the whole net, once the file has run.

local M = {}

-- Messages are raised without a position, and each constructor re-raises
-- them at its caller's line (see the end of the file).
local function fail(fmt, ...)
    error(fmt:format(...), 0)
end

local MAX_SIDE = 2 ^ 24

local function is_int(v)
    return type(v) == "number" and v == math.floor(v) and v >= -MAX_SIDE
           and v <= MAX_SIDE
end

-- the value checkers: each returns the value as the module reads it, or
-- raises naming the layer and argument
local check = {}

function check.int1(what, arg, v)
    if not is_int(v) or v < 1 then
        fail("%s: %s must be a positive integer, got %s", what, arg,
             tostring(v))
    end
    return v
end

function check.int0(what, arg, v)
    if not is_int(v) or v < 0 then
        fail("%s: %s must be an integer >= 0, got %s", what, arg,
             tostring(v))
    end
    return v
end

function check.bool(what, arg, v)
    if type(v) ~= "boolean" then
        fail("%s: %s must be a boolean, got %s", what, arg, tostring(v))
    end
    return v
end

function check.number(what, arg, v)
    if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge
    then
        fail("%s: %s must be a finite number, got %s", what, arg,
             tostring(v))
    end
    return v
end

function check.positive(what, arg, v)
    if type(v) ~= "number" or not (v > 0) or v == math.huge then
        fail("%s: %s must be a number > 0, got %s", what, arg, tostring(v))
    end
    return v
end

function check.prob(what, arg, v)
    if type(v) ~= "number" or not (v >= 0 and v <= 1) then
        fail("%s: %s must be a probability in [0, 1], got %s", what, arg,
             tostring(v))
    end
    return v
end

-- int or {a} (1-d) / int or {a, b} (2-d): returned as a list of n
local function tuple(n, min)
    return function(what, arg, v)
        local t = type(v) == "table" and v or { v }
        local out = {}
        if type(v) == "table" then
            for k in pairs(v) do
                if type(k) ~= "number" or k < 1 or k > n or k ~= math.floor(k)
                then
                    fail("%s: %s must be an integer or a list of %d", what,
                         arg, n)
                end
            end
        end
        for i = 1, n do
            local x = t[i]
            if x == nil and type(v) ~= "table" then
                x = v
            end
            if not is_int(x) or x < min then
                fail("%s: %s must be %s integer%s >= %d, got %s", what, arg,
                     n == 1 and "an" or "an integer or a list of " .. n,
                     n == 1 and "" or "s", min, tostring(x))
            end
            out[i] = x
        end
        return out
    end
end

-- a shape: a positive integer or a list of 1 to 3 of them
function check.shape(what, arg, v)
    local t = type(v) == "table" and v or { v }
    local n = 0
    for k in pairs(t) do
        n = n + 1
        if type(k) ~= "number" or not is_int(t[k]) or t[k] < 1 then
            fail("%s: %s must be a positive integer or a list of them",
                 what, arg)
        end
    end
    if n < 1 or n > 3 or #t ~= n then
        fail("%s: %s must have 1 to 3 dims, got %d", what, arg, n)
    end
    local out = {}
    for i = 1, n do
        out[i] = t[i]
    end
    return out
end

-- a table of keyword arguments, not a list of numbers (kernel_size = {3, 3})
local function is_options(v)
    return type(v) == "table" and v[1] == nil
end

--
-- def: { name, { {arg, checker, default}, ... } } where a checker that is
-- a string means "PyTorch has it; only this default is supported" (the
-- string is the printed default) and default nil with a checker means
-- "required".  Returns the arguments by name.
--
local function args(name, def, ...)
    local n = select("#", ...)
    local given = { ... }
    local opts
    local what = "nn." .. name
    local out = {}
    local byname = {}

    if n > 0 and is_options(given[n]) then
        opts = given[n]
        given[n] = nil
        n = n - 1
    end

    if n > #def then
        fail("%s takes at most %d positional arguments, got %d", what,
             #def, n)
    end

    for i, d in ipairs(def) do
        byname[d[1]] = d
        if i <= n then
            out[d[1]] = given[i]
            if given[i] == nil then
                fail("%s: argument %d (%s) is nil", what, i, d[1])
            end
        end
    end

    for k, v in pairs(opts or {}) do
        local d = type(k) == "string" and byname[k] or nil
        if d == nil then
            fail("%s has no argument %s", what,
                 type(k) == "string" and ('"' .. k .. '"') or tostring(k))
        end
        if out[k] ~= nil then
            fail("%s: %s given twice", what, k)
        end
        out[k] = v
    end

    for _, d in ipairs(def) do
        local arg, c, default = d[1], d[2], d[3]
        local v = out[arg]
        if type(c) == "string" then
            if v ~= nil and v ~= default then
                fail("%s: %s = %s is not supported (only %s)", what, arg,
                     tostring(v), c)
            end
            out[arg] = nil
        elseif v == nil then
            if default == nil and d[4] ~= "optional" then
                fail("%s needs %s", what, arg)
            end
            out[arg] = default
        else
            out[arg] = c(what, arg, v)
        end
    end

    return out
end

local function nothing(what, arg, v)
    return v
end

local DEVICE = { "device", "None" }
local DTYPE = { "dtype", "None" }

local function act(name, def, build)
    M[name] = function(...)
        local a = args(name, def, ...)
        local l = build and build(a) or {}
        l.layer = name
        return l
    end
end

act("GELU", { { "approximate", function(what, arg, v)
    if v ~= "none" and v ~= "tanh" then
        fail("%s: approximate must be 'none' or 'tanh', got %s", what,
             tostring(v))
    end
    return v
end, "none" } }, function(a)
    return { approximate = a.approximate == "tanh" }
end)

act("LeakyReLU", { { "negative_slope", check.number, 0.01 },
                   { "inplace", check.bool, false } },
    function(a) return { negative_slope = a.negative_slope } end)

act("ELU", { { "alpha", check.number, 1.0 },
             { "inplace", check.bool, false } },
    function(a) return { alpha = a.alpha } end)

act("SiLU", { { "inplace", check.bool, false } })

act("Softplus", { { "beta", check.positive, 1.0 },
                  { "threshold", check.number, 20.0 } },
    function(a) return { beta = a.beta, threshold = a.threshold } end)

-- Identity(*args, **kwargs) ignores its arguments in PyTorch; here it
-- takes none, so that a typo is not silently accepted
act("Identity", {})

act("Flatten", { { "start_dim", check.number, 1 },
                 { "end_dim", check.number, -1 } },
    function(a)
        if not is_int(a.start_dim) or not is_int(a.end_dim) then
            fail("nn.Flatten: start_dim and end_dim must be integers")
        end
        return { start_dim = a.start_dim, end_dim = a.end_dim }
    end)

act("Dropout", { { "p", check.prob, 0.5 },
                 { "inplace", check.bool, false } },
    function(a) return { p = a.p } end)

local function conv(name, n)
    local t1, t0 = tuple(n, 1), tuple(n, 0)
    act(name, {
        { "in_channels", check.int1 }, { "out_channels", check.int1 },
        { "kernel_size", t1 }, { "stride", t1, 1 },
        { "padding", function(what, arg, v)
            if type(v) == "string" then
                fail("%s: padding = '%s' is not supported (give numbers)",
                     what, v)
            end
            return t0(what, arg, v)
        end, 0 },
        { "dilation", t1, 1 }, { "groups", check.int1, 1 },
        { "bias", check.bool, true }, { "padding_mode", "'zeros'", "zeros" },
        DEVICE, DTYPE,
    }, function(a)
        return {
            in_channels = a.in_channels, out_channels = a.out_channels,
            kernel_size = a.kernel_size, stride = a.stride,
            padding = a.padding, dilation = a.dilation,
            groups = a.groups, bias = a.bias,
        }
    end)
    -- defaults given as numbers go through the tuple checks too
    local f = M[name]
    M[name] = function(...)
        local l = f(...)
        for _, k in ipairs { "kernel_size", "stride", "padding", "dilation" }
        do
            l[k] = (k == "padding" and t0 or t1)("nn." .. name, k, l[k])
        end
        if l.in_channels % l.groups ~= 0 or l.out_channels % l.groups ~= 0
        then
            fail("nn.%s: groups = %d must divide in_channels (%d) and "
                 .. "out_channels (%d)", name, l.groups, l.in_channels,
                 l.out_channels)
        end
        return l
    end
end

conv("Conv1d", 1)
conv("Conv2d", 2)

local function pool(name, n, max)
    local t1, t0 = tuple(n, 1), tuple(n, 0)
    local def = { { "kernel_size", t1 }, { "stride", nothing, nil,
                                            "optional" },
                  { "padding", t0, 0 } }
    if max then
        def[#def + 1] = { "dilation", t1, 1 }
        def[#def + 1] = { "return_indices", "False", false }
        def[#def + 1] = { "ceil_mode", "False", false }
    else
        def[#def + 1] = { "ceil_mode", "False", false }
        def[#def + 1] = { "count_include_pad", check.bool, true }
        if n == 2 then
            def[#def + 1] = { "divisor_override", "None", nil }
        end
    end
    act(name, def, function(a)
        local l = {
            kernel_size = a.kernel_size,
            -- stride=None means the kernel size, as in PyTorch
            stride = a.stride == nil and a.kernel_size
                     or t1("nn." .. name, "stride", a.stride),
            padding = type(a.padding) == "table" and a.padding
                      or t0("nn." .. name, "padding", a.padding),
        }
        if max then
            l.dilation = type(a.dilation) == "table" and a.dilation
                         or t1("nn." .. name, "dilation", a.dilation)
        else
            l.count_include_pad = a.count_include_pad
        end
        for i = 1, n do
            if l.padding[i] > l.kernel_size[i] / 2 then
                fail("nn.%s: padding must be at most half the kernel size"
                     .. ", got %d for a kernel of %d", name, l.padding[i],
                     l.kernel_size[i])
            end
        end
        return l
    end)
end

pool("MaxPool1d", 1, true)
pool("MaxPool2d", 2, true)
pool("AvgPool1d", 1, false)
pool("AvgPool2d", 2, false)

-- output_size: H or {H, W}; a 0 (PyTorch's None) keeps that side
act("AdaptiveAvgPool2d", { { "output_size", function(what, arg, v)
    return tuple(2, 0)(what, arg, v)
end } }, function(a) return { output_size = a.output_size } end)

local function batchnorm(name)
    act(name, {
        { "num_features", check.int1 }, { "eps", check.positive, 1e-5 },
        { "momentum", function(what, arg, v)
            if v == nil or type(v) ~= "number" or not (v >= 0 and v <= 1)
            then
                fail("%s: momentum must be a number in [0, 1] (None, the "
                     .. "cumulative average, is not supported)", what)
            end
            return v
        end, 0.1 },
        { "affine", check.bool, true },
        { "track_running_stats", check.bool, true }, DEVICE, DTYPE,
    }, function(a)
        return { num_features = a.num_features, eps = a.eps,
                 momentum = a.momentum, affine = a.affine,
                 track_running_stats = a.track_running_stats }
    end)
end

batchnorm("BatchNorm1d")
batchnorm("BatchNorm2d")

act("LayerNorm", {
    { "normalized_shape", check.shape }, { "eps", check.positive, 1e-5 },
    { "elementwise_affine", check.bool, true }, { "bias", "True", true },
    DEVICE, DTYPE,
}, function(a)
    return { normalized_shape = a.normalized_shape, eps = a.eps,
             elementwise_affine = a.elementwise_affine }
end)

act("Embedding", {
    { "num_embeddings", check.int1 }, { "embedding_dim", check.int1 },
    { "padding_idx", function(what, arg, v)
        if not is_int(v) then
            fail("%s: padding_idx must be an integer, got %s", what,
                 tostring(v))
        end
        return v
    end, nil, "optional" },
    { "max_norm", "None", nil }, { "norm_type", "2.0", 2.0 },
    { "scale_grad_by_freq", "False", false }, { "sparse", "False", false },
    { "_weight", "None", nil }, { "_freeze", "False", false }, DEVICE, DTYPE,
}, function(a)
    local p = a.padding_idx
    if p ~= nil then
        -- negative counts from the end, as in PyTorch
        if p < 0 then
            p = p + a.num_embeddings
        end
        if p < 0 or p >= a.num_embeddings then
            fail("nn.Embedding: padding_idx must be within num_embeddings")
        end
    end
    return { num_embeddings = a.num_embeddings,
             embedding_dim = a.embedding_dim, padding_idx = p }
end)

-- every constructor: errors at the line of the model file that called it
local public = {}
for name, f in pairs(M) do
    public[name] = function(...)
        local ok, l = pcall(f, ...)
        if not ok then
            error(l, 2)
        end
        return l
    end
end

return public
