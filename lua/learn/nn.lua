-- learn.nn: describe a model the way Torch's nn does.
--
-- Constructors only build plain tables; the module turns them into C
-- layer structs once, at configuration time, and never calls Lua while
-- training or predicting.  Arguments follow PyTorch's names and order.
-- An option PyTorch has is honoured when the module supports it, and
-- refused with "not supported" otherwise (unless it keeps PyTorch's
-- default); an option PyTorch does not have is an error.  Nothing is
-- silently ignored.

local nn = {}

-- The C side's limits (lt_model_build): checked here too, so that the
-- message names the line of the model file.
local MAX_WIDTH = 2 ^ 24
local MAX_PARAMS = 2 ^ 28

-- error() levels: 2 is the caller of a constructor (the model file)
local CALLER = 2

local function fail(level, fmt, ...)
    error(fmt:format(...), level + 1)
end

local function positive_integer(v, what, level)
    if type(v) ~= "number" or v < 1 or v ~= math.floor(v) then
        fail(level + 1, "%s must be a positive integer, got %s", what,
             tostring(v))
    end
    if v > MAX_WIDTH then
        fail(level + 1, "%s must be at most %d, got %.0f", what, MAX_WIDTH, v)
    end
end

local function number_in(what, v, default, lo, hi, level)
    if v == nil then
        v = default
    end
    if type(v) ~= "number" or v ~= v or v < lo or v > hi then
        fail(level + 1, "%s must be a number in [%s, %s], got %s", what,
             tostring(lo), tostring(hi), tostring(v))
    end
    return v
end

--
-- opts: a table of keyword options; known maps each option to true (the
-- module honours it) or to default_only(v): an option PyTorch has that
-- the module does not support, which a file may only set to PyTorch's
-- default v.  Returns opts (an empty table when nil).
--
local function default_only(v)
    return { default = v }
end

local function options(what, opts, known, level)
    if opts == nil then
        return {}
    end
    if type(opts) ~= "table" then
        fail(level + 1, "%s: options must be a table, got a %s", what,
             type(opts))
    end
    for k, v in pairs(opts) do
        local spec = type(k) == "string" and known[k] or nil
        if spec == nil then
            fail(level + 1, "%s has no option %s", what,
                 type(k) == "string" and ('"' .. k .. '"') or tostring(k))
        end
        if spec ~= true and v ~= spec.default then
            fail(level + 1, "%s: %s = %s is not supported%s", what, k,
                 tostring(v), spec.default == nil and ""
                 or " (only " .. tostring(spec.default) .. ")")
        end
    end
    return opts
end

local function linear_params(l)
    return l.inputs * l.outputs + (l.bias == false and 0 or l.outputs)
end

-- nn.Linear(in_features, out_features [, bias | {bias=}])
function nn.Linear(inputs, outputs, ...)
    local n = select("#", ...)
    local bias, opts = true, nil

    if n > 1 then
        fail(CALLER, "nn.Linear takes (in_features, out_features "
                     .. "[, bias | {options}]), got %d arguments", n + 2)
    end
    if n == 1 then
        local a = ...
        if type(a) == "table" then
            opts = a
        elseif type(a) == "boolean" then
            bias = a
        else
            fail(CALLER, "nn.Linear: the third argument is bias (a "
                         .. "boolean) or a table of options, got a %s",
                 type(a))
        end
    end

    opts = options("nn.Linear", opts, {
        bias = true, device = default_only(nil), dtype = default_only(nil),
    }, CALLER)
    if opts.bias ~= nil then
        bias = opts.bias
    end

    positive_integer(inputs, "Linear inputs", CALLER)
    positive_integer(outputs, "Linear outputs", CALLER)

    if type(bias) ~= "boolean" then
        fail(CALLER, "nn.Linear: bias must be a boolean, got %s",
             tostring(bias))
    end
    local l = { layer = "Linear", inputs = inputs, outputs = outputs,
                bias = bias }
    if linear_params(l) > MAX_PARAMS then
        fail(CALLER, "Linear(%d, %d) has %.0f parameters, at most %d are "
                     .. "supported", inputs, outputs, linear_params(l),
             MAX_PARAMS)
    end
    return l
end

-- the same layer table whatever inplace says: it changes no result
function nn.ReLU(...)
    local n = select("#", ...)
    local inplace = ...
    if n > 1 then
        fail(CALLER, "nn.ReLU takes ([inplace | {options}]), got %d "
                     .. "arguments", n)
    end
    if type(inplace) == "table" then
        inplace = options("nn.ReLU", inplace, { inplace = true },
                          CALLER).inplace
    end
    if inplace ~= nil and type(inplace) ~= "boolean" then
        fail(CALLER, "nn.ReLU: inplace must be a boolean, got %s",
             tostring(inplace))
    end
    return { layer = "ReLU" }
end

for _, name in ipairs { "Tanh", "Sigmoid" } do
    nn[name] = function(...)
        if select("#", ...) > 0 then
            fail(CALLER, "nn.%s takes no arguments", name)
        end
        return { layer = name }
    end
end

-- over the last dimension of [N, C] (dim 1 or -1), as PyTorch's implicit
-- choice for 2-D input is
for _, name in ipairs { "Softmax", "LogSoftmax" } do
    nn[name] = function(...)
        local n = select("#", ...)
        local dim = ...
        if n > 1 then
            fail(CALLER, "nn.%s takes ([dim | {options}]), got %d "
                         .. "arguments", name, n)
        end
        if type(dim) == "table" then
            dim = options("nn." .. name, dim, { dim = true }, CALLER).dim
        end
        if dim ~= nil and dim ~= 1 and dim ~= -1 then
            fail(CALLER, "nn.%s: dim = %s is not supported (the module "
                         .. "normalises each row: dim = 1 or -1)", name,
                 tostring(dim))
        end
        return { layer = name }
    end
end

-- layers that keep the shape: a Linear after them takes what the last
-- Linear gave (checked here, where the line is known; the module checks
-- every other shape once the file has run)
local KEEPS_SHAPE = {
    ReLU = true, Tanh = true, Sigmoid = true, Softmax = true,
    LogSoftmax = true, GELU = true, LeakyReLU = true, ELU = true,
    SiLU = true, Softplus = true, Identity = true, Dropout = true,
}

local function linear_total(l)
    if l.container == "Sequential" then
        local n = 0
        for _, x in ipairs(l.layers) do
            n = n + linear_total(x)
        end
        return n
    end
    return l.layer == "Linear" and linear_params(l) or 0
end

-- nn.Sequential(layer, ...): a layer may be a Sequential itself, named
-- as in PyTorch ("1.0.weight")
function nn.Sequential(...)
    local layers = { ... }
    local width, from
    local params = 0

    if #layers == 0 or select("#", ...) ~= #layers then
        fail(CALLER, "Sequential needs one or more layers and no nil "
                     .. "among them")
    end

    for i, l in ipairs(layers) do
        if type(l) ~= "table" or (l.layer == nil
                                  and l.container ~= "Sequential")
        then
            fail(CALLER, "Sequential argument %d is not a layer", i)
        end
        if l.layer == "Linear" then
            if width and width ~= l.inputs then
                fail(CALLER, "layer %d (Linear) expects %d inputs but "
                             .. "layer %d (Linear) gives %d", i - 1,
                     l.inputs, from - 1, width)
            end
            width, from = l.outputs, i
        elseif not KEEPS_SHAPE[l.layer] then
            width = nil
        end
        params = params + linear_total(l)
    end

    if params > MAX_PARAMS then
        fail(CALLER, "Sequential has %.0f parameters, at most %d are "
                     .. "supported", params, MAX_PARAMS)
    end

    return { container = "Sequential", layers = layers }
end

for name, f in pairs(require "learn.layers") do
    nn[name] = f
end

local REDUCTION = {
    reduction = default_only("mean"),
    size_average = default_only(nil),
    reduce = default_only(nil),
}

local function loss(name, known)
    for k, v in pairs(REDUCTION) do
        known[k] = v
    end
    nn[name] = function(...)
        local n = select("#", ...)
        if n > 1 then
            fail(CALLER, "nn.%s takes ([{options}]), got %d arguments",
                 name, n)
        end
        local opts = ...
        options("nn." .. name, opts, known, CALLER)
        return { loss = name }
    end
end

loss("MSELoss", {})
loss("BCELoss", { weight = default_only(nil) })
loss("CrossEntropyLoss", {
    weight = default_only(nil),
    ignore_index = default_only(-100),
    label_smoothing = default_only(0),
})

local OPTIM_COMMON = {
    lr = true, weight_decay = true,
    maximize = default_only(false), foreach = default_only(nil),
    differentiable = default_only(false), fused = default_only(nil),
}

local function optim_options(name, opts, extra)
    local known = {}
    for k, v in pairs(OPTIM_COMMON) do
        known[k] = v
    end
    for k, v in pairs(extra) do
        known[k] = v
    end
    if opts ~= nil and type(opts) ~= "table" then
        fail(CALLER + 1, "nn.%s takes a table of options, got a %s", name,
             type(opts))
    end
    return options("nn." .. name, opts, known, CALLER + 1)
end

function nn.SGD(opts, ...)
    if select("#", ...) > 0 then
        fail(CALLER, "nn.SGD takes one table of options")
    end
    opts = optim_options("SGD", opts, {
        momentum = true, dampening = default_only(0),
        nesterov = default_only(false),
    })
    if opts.lr == nil then
        fail(CALLER, "SGD needs lr")
    end
    return {
        optim = "SGD",
        lr = number_in("lr", opts.lr, nil, 0, 1e3, CALLER),
        momentum = number_in("momentum", opts.momentum, 0, 0, 1, CALLER),
        weight_decay = number_in("weight_decay", opts.weight_decay, 0, 0,
                                 1e3, CALLER),
    }
end

function nn.Adam(opts, ...)
    if select("#", ...) > 0 then
        fail(CALLER, "nn.Adam takes one table of options")
    end
    opts = optim_options("Adam", opts, {
        betas = true, eps = true, amsgrad = default_only(false),
        capturable = default_only(false),
    })
    local betas = opts.betas or { 0.9, 0.999 }
    if type(betas) ~= "table" or #betas ~= 2 or betas[3] ~= nil then
        fail(CALLER, "betas must be a table of two numbers")
    end
    for k in pairs(betas) do
        if k ~= 1 and k ~= 2 then
            fail(CALLER, "betas must be a table of two numbers")
        end
    end
    return {
        optim = "Adam",
        lr = number_in("lr", opts.lr, 0.001, 0, 1e3, CALLER),
        beta1 = number_in("beta1", betas[1], nil, 0, 0.999999, CALLER),
        beta2 = number_in("beta2", betas[2], nil, 0, 0.999999999, CALLER),
        eps = number_in("eps", opts.eps, 1e-8, 0, 1, CALLER),
        weight_decay = number_in("weight_decay", opts.weight_decay, 0, 0,
                                 1e3, CALLER),
    }
end

local MODEL_FIELDS = { net = true, loss = true, optim = true,
                       input = true }

function nn.model(def, ...)
    if type(def) ~= "table" or select("#", ...) > 0 then
        fail(CALLER, "nn.model needs a table {net=, loss=, optim=}")
    end
    for k in pairs(def) do
        if not MODEL_FIELDS[k] then
            fail(CALLER, "nn.model has no field %s (it takes net, loss "
                         .. "and optim)",
                 type(k) == "string" and ('"' .. k .. '"') or tostring(k))
        end
    end
    if type(def.net) ~= "table" or def.net.container ~= "Sequential" then
        fail(CALLER, "nn.model: net must be an nn.Sequential")
    end
    if type(def.loss) ~= "table" or def.loss.loss == nil then
        fail(CALLER, "nn.model: loss must be an nn loss such as "
                     .. "nn.MSELoss()")
    end
    if type(def.optim) ~= "table" or def.optim.optim == nil then
        fail(CALLER, "nn.model: optim must be nn.SGD{...} or nn.Adam{...}")
    end
    -- input: one sample's shape, without N ({1, 28, 28} for a Conv2d
    -- first, {L} for an Embedding); a Linear first implies it
    local input = def.input
    if input ~= nil then
        if type(input) == "number" then
            input = { input }
        end
        if type(input) ~= "table" or #input < 1 or #input > 3 then
            fail(CALLER, "nn.model: input must be one sample's shape, a "
                         .. "list of 1 to 3 sizes without N, such as "
                         .. "{1, 28, 28}")
        end
        local n = 0
        for k, v in pairs(input) do
            n = n + 1
            if type(k) ~= "number" or type(v) ~= "number" or v < 1
               or v ~= math.floor(v) or v > MAX_WIDTH
            then
                fail(CALLER, "nn.model: input sizes must be positive "
                             .. "integers, got %s", tostring(v))
            end
        end
        if n ~= #input then
            fail(CALLER, "nn.model: input must be a list of sizes")
        end
    end
    return { learn_model = true, net = def.net, loss = def.loss,
             optim = def.optim, input = input }
end

return setmetatable(nn, {
    __index = function(_, name)
        error("learn.nn has no \"" .. tostring(name) .. "\"", 2)
    end
})
