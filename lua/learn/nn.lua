-- learn.nn: describe a model the way Torch's nn does.
--
-- Constructors only build plain tables; the module turns them into C
-- layer structs once, at configuration time, and never calls Lua while
-- training or predicting.

local nn = {}

-- The C side's limits (lt_model_build): checked here too, so that the
-- message names the line of the model file.
local MAX_WIDTH = 2 ^ 24
local MAX_PARAMS = 2 ^ 28

local function positive_integer(v, what, level)
    if type(v) ~= "number" or v < 1 or v ~= math.floor(v) then
        error(what .. " must be a positive integer, got " .. tostring(v),
              level + 1)
    end
    if v > MAX_WIDTH then
        error(("%s must be at most %d, got %.0f"):format(what, MAX_WIDTH, v),
              level + 1)
    end
end

local function linear_params(l)
    return l.inputs * l.outputs + l.outputs
end

local function number_in(t, key, default, lo, hi)
    local v = t[key]
    if v == nil then
        v = default
    end
    if type(v) ~= "number" or v < lo or v > hi then
        error(key .. " must be a number in [" .. lo .. ", " .. hi
              .. "], got " .. tostring(v), 3)
    end
    return v
end

function nn.Linear(inputs, outputs)
    positive_integer(inputs, "Linear inputs", 2)
    positive_integer(outputs, "Linear outputs", 2)
    local l = { layer = "Linear", inputs = inputs, outputs = outputs }
    if linear_params(l) > MAX_PARAMS then
        error(("Linear(%d, %d) has %.0f parameters, at most %d are "
               .. "supported"):format(inputs, outputs, linear_params(l),
                                      MAX_PARAMS), 2)
    end
    return l
end

for _, name in ipairs { "ReLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax" } do
    nn[name] = function()
        return { layer = name }
    end
end

function nn.Sequential(...)
    local layers = { ... }
    local width, from
    local params = 0

    if #layers == 0 or select("#", ...) ~= #layers then
        error("Sequential needs one or more layers and no nil among them", 2)
    end

    for i, l in ipairs(layers) do
        if type(l) ~= "table" or l.layer == nil then
            error("Sequential argument " .. i .. " is not a layer", 2)
        end
        if l.layer == "Linear" then
            if width and width ~= l.inputs then
                error(("layer %d (Linear) expects %d inputs but layer %d "
                       .. "(Linear) gives %d"):format(i - 1, l.inputs,
                                                      from - 1, width), 2)
            end
            width, from = l.outputs, i
            params = params + linear_params(l)
        end
    end

    if params > MAX_PARAMS then
        error(("Sequential has %.0f parameters, at most %d are supported")
              :format(params, MAX_PARAMS), 2)
    end

    if width == nil then
        error("Sequential needs at least one Linear layer", 2)
    end

    return { container = "Sequential", layers = layers }
end

for _, name in ipairs { "MSELoss", "BCELoss", "CrossEntropyLoss" } do
    nn[name] = function()
        return { loss = name }
    end
end

function nn.SGD(opts)
    opts = opts or {}
    if opts.lr == nil then
        error("SGD needs lr", 2)
    end
    return {
        optim = "SGD",
        lr = number_in(opts, "lr", nil, 0, 1e3),
        momentum = number_in(opts, "momentum", 0, 0, 1),
        weight_decay = number_in(opts, "weight_decay", 0, 0, 1e3),
    }
end

function nn.Adam(opts)
    opts = opts or {}
    local betas = opts.betas or { 0.9, 0.999 }
    if type(betas) ~= "table" then
        error("betas must be a table of two numbers", 2)
    end
    local b = { beta1 = betas[1], beta2 = betas[2] }
    return {
        optim = "Adam",
        lr = number_in(opts, "lr", 0.001, 0, 1e3),
        beta1 = number_in(b, "beta1", nil, 0, 0.999999),
        beta2 = number_in(b, "beta2", nil, 0, 0.999999999),
        eps = number_in(opts, "eps", 1e-8, 0, 1),
        weight_decay = number_in(opts, "weight_decay", 0, 0, 1e3),
    }
end

function nn.model(def)
    if type(def) ~= "table" then
        error("nn.model needs a table {net=, loss=, optim=}", 2)
    end
    if type(def.net) ~= "table" or def.net.container ~= "Sequential" then
        error("nn.model: net must be an nn.Sequential", 2)
    end
    if type(def.loss) ~= "table" or def.loss.loss == nil then
        error("nn.model: loss must be an nn loss such as nn.MSELoss()", 2)
    end
    if type(def.optim) ~= "table" or def.optim.optim == nil then
        error("nn.model: optim must be nn.SGD{...} or nn.Adam{...}", 2)
    end
    return { learn_model = true, net = def.net, loss = def.loss,
             optim = def.optim }
end

return setmetatable(nn, {
    __index = function(_, name)
        error("learn.nn has no \"" .. tostring(name) .. "\"", 2)
    end
})
