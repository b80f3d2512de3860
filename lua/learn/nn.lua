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

-- a number > lo (or >= lo when closed), finite
local function number_above(what, v, default, lo, closed, level)
    if v == nil then
        v = default
    end
    if type(v) ~= "number" or v ~= v or v == math.huge
       or (closed and v < lo) or (not closed and v <= lo)
    then
        fail(level + 1, "%s must be a finite number %s %s, got %s", what,
             closed and ">=" or ">", tostring(lo), tostring(v))
    end
    return v
end

local function boolean(what, v, default, level)
    if v == nil then
        return default
    end
    if type(v) ~= "boolean" then
        fail(level + 1, "%s must be a boolean, got %s", what, tostring(v))
    end
    return v
end

-- BCEWithLogitsLoss's pos_weight: a number or a list of numbers (one per
-- output; the net's width is checked by the module)
local MAX_POS_WEIGHT = 64

local function pos_weight(v, level)
    if v == nil then
        return nil
    end
    if type(v) == "number" then
        v = { v }
    end
    if type(v) ~= "table" or #v < 1 or #v > MAX_POS_WEIGHT then
        fail(level + 1, "pos_weight must be a number or a list of 1 to %d "
                        .. "numbers", MAX_POS_WEIGHT)
    end
    local out = {}
    for k, w in pairs(v) do
        if type(k) ~= "number" or k < 1 or k > #v or k ~= math.floor(k) then
            fail(level + 1, "pos_weight must be a list of numbers")
        end
        out[k] = number_above("pos_weight[" .. k .. "]", w, nil, -math.huge,
                              false, level + 1)
    end
    return out
end

-- build(l, opts) adds the loss's own fields to its table l
local function loss(name, known, build)
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
        opts = options("nn." .. name, opts, known, CALLER)
        local l = { loss = name }
        if build then
            build(l, opts)
        end
        return l
    end
end

local CLASS_LOSS = { weight = default_only(nil),
                     ignore_index = default_only(-100) }

loss("MSELoss", {})
loss("L1Loss", {})
loss("BCELoss", { weight = default_only(nil) })
loss("NLLLoss", CLASS_LOSS)
loss("SmoothL1Loss", { beta = true }, function(l, o)
    l.beta = number_above("SmoothL1Loss beta", o.beta, 1.0, 0, true,
                          CALLER + 1)
end)
loss("HuberLoss", { delta = true }, function(l, o)
    l.delta = number_above("HuberLoss delta", o.delta, 1.0, 0, false,
                           CALLER + 1)
end)
loss("BCEWithLogitsLoss", { weight = default_only(nil), pos_weight = true },
     function(l, o)
    l.pos_weight = pos_weight(o.pos_weight, CALLER + 1)
end)
loss("CrossEntropyLoss", {
    weight = default_only(nil),
    ignore_index = default_only(-100),
    label_smoothing = true,
}, function(l, o)
    l.label_smoothing = number_in("label_smoothing", o.label_smoothing, 0,
                                  0, 1, CALLER + 1)
end)

local OPTIM_COMMON = {
    lr = true, weight_decay = true,
    maximize = default_only(false), foreach = default_only(nil),
    differentiable = default_only(false),
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

local function weight_decay(opts, default)
    return number_in("weight_decay", opts.weight_decay, default, 0, 1e3,
                     CALLER + 1)
end

function nn.SGD(opts, ...)
    if select("#", ...) > 0 then
        fail(CALLER, "nn.SGD takes one table of options")
    end
    opts = optim_options("SGD", opts, {
        momentum = true, dampening = true, nesterov = true,
        fused = default_only(nil),
    })
    if opts.lr == nil then
        fail(CALLER, "SGD needs lr")
    end
    local o = {
        optim = "SGD",
        lr = number_in("lr", opts.lr, nil, 0, 1e3, CALLER),
        momentum = number_in("momentum", opts.momentum, 0, 0, 1, CALLER),
        dampening = number_in("dampening", opts.dampening, 0, -1e3, 1e3,
                              CALLER),
        weight_decay = weight_decay(opts, 0),
        nesterov = boolean("nesterov", opts.nesterov, false, CALLER),
    }
    if o.nesterov and (o.momentum <= 0 or o.dampening ~= 0) then
        fail(CALLER, "nn.SGD: Nesterov momentum requires a momentum and "
                     .. "zero dampening")
    end
    return o
end

local function betas(opts)
    local b = opts.betas or { 0.9, 0.999 }
    if type(b) ~= "table" or #b ~= 2 or b[3] ~= nil then
        fail(CALLER + 1, "betas must be a table of two numbers")
    end
    for k in pairs(b) do
        if k ~= 1 and k ~= 2 then
            fail(CALLER + 1, "betas must be a table of two numbers")
        end
    end
    return number_in("beta1", b[1], nil, 0, 0.999999, CALLER + 1),
           number_in("beta2", b[2], nil, 0, 0.999999999, CALLER + 1)
end

-- Adam and AdamW differ in the default weight_decay and in how it acts
for name, wd in pairs { Adam = 0, AdamW = 0.01 } do
    nn[name] = function(opts, ...)
        if select("#", ...) > 0 then
            fail(CALLER, "nn.%s takes one table of options", name)
        end
        opts = optim_options(name, opts, {
            betas = true, eps = true, amsgrad = true,
            capturable = default_only(false), fused = default_only(nil),
        })
        local b1, b2 = betas(opts)
        return {
            optim = name,
            lr = number_in("lr", opts.lr, 0.001, 0, 1e3, CALLER),
            beta1 = b1,
            beta2 = b2,
            eps = number_in("eps", opts.eps, 1e-8, 0, 1, CALLER),
            weight_decay = weight_decay(opts, wd),
            amsgrad = boolean("amsgrad", opts.amsgrad, false, CALLER),
        }
    end
end

function nn.RMSprop(opts, ...)
    if select("#", ...) > 0 then
        fail(CALLER, "nn.RMSprop takes one table of options")
    end
    opts = optim_options("RMSprop", opts, {
        alpha = true, eps = true, momentum = true, centered = true,
        capturable = default_only(false),
    })
    return {
        optim = "RMSprop",
        lr = number_in("lr", opts.lr, 0.01, 0, 1e3, CALLER),
        alpha = number_in("alpha", opts.alpha, 0.99, 0, 1, CALLER),
        eps = number_in("eps", opts.eps, 1e-8, 0, 1, CALLER),
        weight_decay = weight_decay(opts, 0),
        momentum = number_in("momentum", opts.momentum, 0, 0, 1, CALLER),
        centered = boolean("centered", opts.centered, false, CALLER),
    }
end

function nn.Adagrad(opts, ...)
    if select("#", ...) > 0 then
        fail(CALLER, "nn.Adagrad takes one table of options")
    end
    opts = optim_options("Adagrad", opts, {
        lr_decay = true, initial_accumulator_value = true, eps = true,
        fused = default_only(nil),
    })
    return {
        optim = "Adagrad",
        lr = number_in("lr", opts.lr, 0.01, 0, 1e3, CALLER),
        lr_decay = number_in("lr_decay", opts.lr_decay, 0, 0, 1e3, CALLER),
        weight_decay = weight_decay(opts, 0),
        initial_accumulator_value = number_in("initial_accumulator_value",
            opts.initial_accumulator_value, 0, 0, 1e6, CALLER),
        eps = number_in("eps", opts.eps, 1e-10, 0, 1, CALLER),
    }
end

--
-- Learning rate schedules (torch.optim.lr_scheduler), stepped once per
-- optimizer step.  PyTorch's arguments after the optimizer, positional
-- and then an optional table of keywords, or all as keywords:
-- nn.StepLR(100, 0.5) is nn.StepLR{step_size = 100, gamma = 0.5}.
--
local MAX_STEPS = 2 ^ 53
local MAX_SCHED = 4
local MAX_MILESTONES = 8

local function is_keywords(t)
    if type(t) ~= "table" then
        return false
    end
    for k in pairs(t) do
        if type(k) ~= "string" then
            return false
        end
    end
    return true
end

local function sched_args(name, positional, known, ...)
    local n = select("#", ...)
    local args = { ... }
    local opts = {}
    known.last_epoch = default_only(-1)
    known.verbose = default_only(false)

    -- a last argument whose keys are all strings holds the keywords
    local last = n
    if n > 0 and is_keywords(args[n]) then
        opts = options("nn." .. name, args[n], known, CALLER + 1)
        last = n - 1
    end
    if last > #positional then
        fail(CALLER + 1, "nn.%s takes at most %d positional arguments (%s), "
                         .. "got %d", name, #positional,
             table.concat(positional, ", "), last)
    end
    local merged = {}
    for k, v in pairs(opts) do
        merged[k] = v
    end
    for i = 1, last do
        if merged[positional[i]] ~= nil then
            fail(CALLER + 1, "nn.%s: %s given twice", name, positional[i])
        end
        merged[positional[i]] = args[i]
    end
    return merged
end

local function steps(what, v, level)
    if type(v) ~= "number" or v < 1 or v > MAX_STEPS or v ~= math.floor(v)
    then
        fail(level + 1, "%s must be a positive integer, got %s", what,
             tostring(v))
    end
    return v
end

local function step_list(what, v, max, strict, level)
    if type(v) ~= "table" or #v < 1 or #v > max then
        fail(level + 1, "%s must be a list of 1 to %d step numbers", what,
             max)
    end
    for k in pairs(v) do
        if type(k) ~= "number" or k < 1 or k > #v or k ~= math.floor(k) then
            fail(level + 1, "%s must be a list of step numbers", what)
        end
    end
    local out = {}
    for i = 1, #v do
        out[i] = steps(what, v[i], level + 1)
        if i > 1 and (out[i] < out[i - 1]
                      or (strict and out[i] == out[i - 1])) then
            fail(level + 1, "%s must be in increasing order", what)
        end
    end
    return out
end

local function gamma(v, default)
    return number_above("gamma", v, default, 0, true, CALLER + 1)
end

function nn.StepLR(...)
    local o = sched_args("StepLR", { "step_size", "gamma" },
                         { step_size = true, gamma = true }, ...)
    return { schedule = "StepLR",
             step_size = steps("StepLR step_size", o.step_size, CALLER),
             gamma = gamma(o.gamma, 0.1) }
end

function nn.MultiStepLR(...)
    local o = sched_args("MultiStepLR", { "milestones", "gamma" },
                         { milestones = true, gamma = true }, ...)
    return { schedule = "MultiStepLR",
             milestones = step_list("MultiStepLR milestones", o.milestones,
                                    MAX_MILESTONES, false, CALLER),
             gamma = gamma(o.gamma, 0.1) }
end

function nn.ExponentialLR(...)
    local o = sched_args("ExponentialLR", { "gamma" }, { gamma = true }, ...)
    if o.gamma == nil then
        fail(CALLER, "ExponentialLR needs gamma")
    end
    return { schedule = "ExponentialLR", gamma = gamma(o.gamma) }
end

function nn.LinearLR(...)
    local o = sched_args("LinearLR",
                         { "start_factor", "end_factor", "total_iters" },
                         { start_factor = true, end_factor = true,
                           total_iters = true }, ...)
    local start = o.start_factor == nil and 1 / 3 or o.start_factor
    if type(start) ~= "number" or not (start > 0 and start <= 1) then
        fail(CALLER, "LinearLR: start_factor must be greater than 0 and at "
                     .. "most 1, got %s", tostring(start))
    end
    return { schedule = "LinearLR", start_factor = start,
             end_factor = number_in("end_factor", o.end_factor, 1.0, 0, 1,
                                    CALLER),
             total_iters = steps("LinearLR total_iters",
                                 o.total_iters == nil and 5 or o.total_iters,
                                 CALLER) }
end

function nn.CosineAnnealingLR(...)
    local o = sched_args("CosineAnnealingLR", { "T_max", "eta_min" },
                         { T_max = true, eta_min = true }, ...)
    return { schedule = "CosineAnnealingLR",
             T_max = steps("CosineAnnealingLR T_max", o.T_max, CALLER),
             eta_min = number_above("eta_min", o.eta_min, 0, 0, true,
                                    CALLER) }
end

function nn.SequentialLR(...)
    local o = sched_args("SequentialLR", { "schedulers", "milestones" },
                         { schedulers = true, milestones = true }, ...)
    local s = o.schedulers
    if type(s) ~= "table" or #s < 1 or #s > MAX_SCHED then
        fail(CALLER, "SequentialLR: schedulers must be a list of 1 to %d "
                     .. "schedules", MAX_SCHED)
    end
    for k, v in pairs(s) do
        if type(k) ~= "number" or k < 1 or k > #s or type(v) ~= "table"
           or v.schedule == nil or v.schedule == "SequentialLR"
        then
            fail(CALLER, "SequentialLR: schedulers must be a list of "
                         .. "schedules such as nn.LinearLR{...} (not "
                         .. "SequentialLR)")
        end
    end
    local m = o.milestones or {}
    if type(m) ~= "table" or #m ~= #s - 1 then
        fail(CALLER, "SequentialLR expects number of schedulers provided "
                     .. "to be one more than the number of milestone points")
    end
    if #m > 0 then
        m = step_list("SequentialLR milestones", m, MAX_SCHED - 1, true,
                      CALLER)
    end
    return { schedule = "SequentialLR", schedulers = s, milestones = m }
end

-- clip_grad_norm = max_norm, or a table of clip_grad_norm_'s arguments
local function clip(v)
    if type(v) == "table" then
        v = options("clip_grad_norm", v, {
            max_norm = true, norm_type = default_only(2),
            error_if_nonfinite = default_only(false),
            foreach = default_only(nil),
        }, CALLER + 1).max_norm
    end
    return number_above("clip_grad_norm max_norm", v, nil, 0, false,
                        CALLER + 1)
end

local MODEL_FIELDS = { net = true, loss = true, optim = true,
                       schedule = true, clip_grad_norm = true,
                       input = true }

function nn.model(def, ...)
    if type(def) ~= "table" or select("#", ...) > 0 then
        fail(CALLER, "nn.model needs a table {net=, loss=, optim=}")
    end
    for k in pairs(def) do
        if not MODEL_FIELDS[k] then
            fail(CALLER, "nn.model has no field %s (it takes net, loss, "
                         .. "optim, schedule and clip_grad_norm)",
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
        fail(CALLER, "nn.model: optim must be nn.SGD{...}, nn.Adam{...}, "
                     .. "nn.AdamW{...}, nn.RMSprop{...} or nn.Adagrad{...}")
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
    if def.schedule ~= nil and (type(def.schedule) ~= "table"
                                or def.schedule.schedule == nil) then
        fail(CALLER, "nn.model: schedule must be a schedule such as "
                     .. "nn.StepLR{...}")
    end
    local model = { learn_model = true, net = def.net, loss = def.loss,
                    optim = def.optim, schedule = def.schedule,
                    input = input }
    if def.clip_grad_norm ~= nil then
        model.clip_grad_norm = clip(def.clip_grad_norm)
    end
    return model
end

return setmetatable(nn, {
    __index = function(_, name)
        error("learn.nn has no \"" .. tostring(name) .. "\"", 2)
    end
})
