-- resty.learn: the models of ngx_http_learn_module, from Lua handlers of
-- lua-nginx-module (OpenResty), in any phase and in timers.
--
--     local learn = require "resty.learn"
--     local y, err = learn.predict("xor", {{0, 1}, {1, 1}})
--     local loss, step = learn.train("xor", {{0, 1}}, {{1}})
--
-- The calls go through the LuaJIT FFI to functions the module exports
-- (ngx_http_learn_ffi_*), on the same shared zone as learn_train and
-- learn_predict: the same steps, versions and learn_status counters.
-- Errors are returned as nil and a message, never raised.

local ffi = require "ffi"

local C = ffi.C
local ffi_new = ffi.new
local ffi_string = ffi.string
local ffi_gc = ffi.gc
local ffi_istype = ffi.istype
local type = type
local pairs = pairs
local tostring = tostring
local floor = math.floor
local huge = math.huge
local setmetatable = setmetatable
local getmetatable = getmetatable
local ngx = ngx

local ok, new_tab = pcall(require, "table.new")
if not ok then
    new_tab = function() return {} end
end

-- OpenResty's LuaJIT has it (compiled); elsewhere, count with pairs()
local nkeys
ok, nkeys = pcall(require, "table.nkeys")
if not ok then
    nkeys = function(t)
        local n = 0
        for _ in pairs(t) do n = n + 1 end
        return n
    end
end

require "resty.learn.cdef"

local tensor = require "resty.learn.tensor"
local tensor_mt = tensor.mt
local tensor_args = tensor.args
local tensor_ptr = tensor.ptr
local tensor_cap = tensor.cap
local flatten_into = tensor.flatten


-- nginx's return codes
local NGX_OK = 0
local NGX_AGAIN = -2
local NGX_DECLINED = -5

-- between retries of a mutex that another worker's step holds, and
-- between looks at a task on a thread pool (seconds)
local RETRY_SLEEP = 0.001

-- learn_thread_pool's default threshold, in multiply-adds
local THREAD_THRESHOLD = 1e6


local _M = { _VERSION = "0.1.0" }

-- learn.tensor(shape [, data]): data nil (zeros), a Lua table (copied,
-- flat or nested) or a float array (used in place, not copied)
_M.tensor = tensor.new
_M.is_tensor = tensor.is

local errbuf = ffi_new("unsigned char[256]")
local errlen = ffi_new("size_t[1]")
local step_out = ffi_new("int64_t[1]")
local loss_out = ffi_new("float[1]")
local rc_out = ffi_new("intptr_t[1]")
local start_out = ffi_new("uint64_t[1]")
local xshape = ffi_new("int64_t[2]")
local yshape = ffi_new("int64_t[2]")
local info = ffi_new("ngx_http_learn_ffi_info_t")
local float_arr = ffi.typeof("float[?]")
local tshape = ffi_new("int64_t[2]")

-- name -> what a model's handle and layout are, per worker (a worker's
-- models never change: a reload starts new workers with a new Lua VM)
local models = {}

-- phases whose handler may yield (ngx.sleep): elsewhere calls run inline
local yieldable = {
    server_rewrite = true, rewrite = true, access = true, content = true,
    timer = true,
    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}


local function c_error()
    return ffi_string(errbuf, errlen[0])
end


local function model_of(name)
    local m = models[name]
    if m then
        return m
    end

    if type(name) ~= "string" then
        return nil, "model name must be a string, not " .. type(name)
    end

    local h = C.ngx_http_learn_ffi_model(name, #name, info)
    if h == nil then
        if info.ready == 0 then
            return nil, "resty.learn works in a worker (not in init_by_lua"
                        .. " or before ngx_http_learn_module's"
                        .. " init_process)"
        end
        return nil, 'model "' .. name .. '" not found'
    end

    m = {
        name = name,
        handle = h,
        in_dim = info.in_dim,
        out_dim = info.out_dim,
        nparams = info.nparams,
        param_count = tonumber(info.param_count),
        classes = info.classes ~= 0,
        max_width = tonumber(info.max_width),
        max_elements = tonumber(info.max_elements),
        xbuf = nil, xcap = 0,       -- table inputs, flattened
        ybuf = nil, ycap = 0,       -- table targets and outputs
    }
    models[name] = m

    return m
end


-- Lua tables into floats

-- what a model's scratch buffers keep between calls (floats): one call
-- of many rows must not hold its memory for the worker's life
local SCRATCH_KEEP = 65536

local function fit_scratch(m)
    if m.xcap > SCRATCH_KEEP then
        m.xbuf, m.xcap = nil, 0
    end
    if m.ycap > SCRATCH_KEEP then
        m.ybuf, m.ycap = nil, 0
    end
end


local function grow(m, field, capfield, n)
    if m[capfield] < n then
        local cap = m[capfield] * 2
        if cap < n then
            cap = n
        end
        m[field] = float_arr(cap)
        m[capfield] = cap
    end
    return m[field]
end


-- what C would answer for this x, said before anything is allocated
-- for it (the same messages as lt_check.c's and the bound's)
local function x_refused(m, nd, d1, d2)
    if nd == 1 then
        if d1 ~= m.in_dim then
            return "x has shape [" .. d1 .. "], expected [N, " .. m.in_dim
                   .. "]"
        end
        return nil
    end

    if d2 ~= m.in_dim then
        return "x has shape [" .. d1 .. ", " .. d2 .. "], expected [N, "
               .. m.in_dim .. "]"
    end

    if d1 * m.max_width > m.max_elements then
        return d1 .. " rows make activations of " .. d1 * m.max_width
               .. " elements (" .. d1 .. " x " .. m.max_width
               .. "), above " .. m.max_elements
    end

    return nil
end


-- x as a table: into the model's scratch buffer; the dims, or nil, err
local function table_x(m, x)
    local first = x[1]
    if first == nil then
        return nil, "x is empty"
    end

    local rows, cols, nd
    if type(first) == "table" then
        rows, cols, nd = #x, #first, 2
        if cols == 0 then
            return nil, "x[1] is empty"
        end
    else
        rows, cols, nd = 1, #x, 1
    end

    local err = x_refused(m, nd, nd == 1 and cols or rows, cols)
    if err then
        return nil, err
    end

    local buf = grow(m, "xbuf", "xcap", rows * cols)
    local n, fnd, r, c = flatten_into(x, buf, rows * cols, "x")
    if not n then
        return nil, fnd
    end

    if fnd == 1 then
        xshape[0] = n
    else
        xshape[0], xshape[1] = r, c
    end

    return fnd, buf, rows
end


-- y (a train target for rows samples) as a table or a number; into the
-- model's y buffer.  Every target shape holds at most rows x out_dim
-- numbers: a bigger table is refused, as C would, before the buffer grows.
local function table_y(m, y, rows)
    if type(y) == "number" then
        local buf = grow(m, "ybuf", "ycap", 1)
        buf[0] = y
        return 0, buf
    end

    local first = y[1]
    if first == nil then
        return nil, "y is empty"
    end

    local two = type(first) == "table"
    local cap = two and #y * #first or #y
    if cap > rows * m.out_dim then
        local shape = two and "[" .. #y .. ", " .. #first .. "]"
                      or "[" .. #y .. "]"
        if m.classes then
            return nil, "y has shape " .. shape .. ", expected [" .. rows
                        .. "] class indices or [" .. rows .. ", "
                        .. m.out_dim .. "] one-hot rows"
        end
        return nil, "y has shape " .. shape .. ", expected [" .. rows
                    .. ", " .. m.out_dim .. "]"
    end

    local buf = grow(m, "ybuf", "ycap", cap)
    local n, nd, r, c = flatten_into(y, buf, cap, "y")
    if not n then
        return nil, nd
    end

    if nd == 1 then
        yshape[0] = n
    else
        yshape[0], yshape[1] = r, c
    end

    return nd, buf
end


local function output_table(buf, ndim, rows, out_dim)
    if ndim == 1 then
        local out = new_tab(out_dim, 0)
        for j = 1, out_dim do
            out[j] = buf[j - 1]
        end
        return out
    end

    local out = new_tab(rows, 0)
    local k = 0
    for i = 1, rows do
        local row = new_tab(out_dim, 0)
        for j = 1, out_dim do
            row[j] = buf[k]
            k = k + 1
        end
        out[i] = row
    end
    return out
end


local function option_set(...)
    local set = { ... }
    for i = 1, #set do
        set[set[i]] = true
    end
    return set
end

local predict_opts = option_set("version", "out", "thread_pool", "threshold")
local train_opts = option_set("thread_pool", "threshold")

local function check_opts(opts, known)
    if opts == nil then
        return true
    end

    if type(opts) ~= "table" then
        return nil, "opts must be a table, not " .. type(opts)
    end

    -- counted without pairs(), which no trace compiles: only a table
    -- with a key of its own is walked, to name it
    local n = 0
    for i = 1, #known do
        if opts[known[i]] ~= nil then
            n = n + 1
        end
    end
    if n ~= nkeys(opts) then
        for k in pairs(opts) do
            if known[k] ~= true then
                return nil, 'unknown option "' .. tostring(k) .. '"'
            end
        end
    end

    if opts.thread_pool ~= nil and type(opts.thread_pool) ~= "string" then
        return nil, "opts.thread_pool must be a thread_pool's name"
    end

    if opts.threshold ~= nil and (type(opts.threshold) ~= "number"
                                  or opts.threshold < 0)
    then
        return nil, "opts.threshold must be a number of multiply-adds"
    end

    return true
end


local function version_of(opts)
    local v = opts and opts.version
    if v == nil or v == "live" then
        return 0
    end

    if type(v) ~= "number" or v < 1 or v ~= floor(v) or v == huge then
        return nil, 'version must be a checkpoint\'s step or "live"'
    end

    return v
end


-- a refusal of resty.learn's own: learn_status counts it with the rest
local function refuse(m, err)
    C.ngx_http_learn_ffi_reject(m.handle)
    return nil, err
end


local function can_yield()
    return yieldable[ngx.get_phase()]
end


-- Before a call sleeps (and another coroutine may use the model's
-- scratch buffers and the shapes above), its arguments get copies of
-- their own.
local function own(buf, n)
    local copy = float_arr(n)
    ffi.copy(copy, buf, n * 4)
    return copy
end


local function own_shape(shape)
    return ffi_new("int64_t[2]", shape[0], shape[1])
end


local function numel_c(nd, shape)
    if nd == 0 then
        return 1
    end
    if nd == 1 then
        return tonumber(shape[0])
    end
    return tonumber(shape[0] * shape[1])
end


-- a task on a thread pool: nil when it should run inline instead (a
-- phase that cannot yield runs it inline, but the pool must exist)
local function offload(m, opts, x, xnd, y, ynd, yout)
    local pool = opts and opts.thread_pool
    if not pool then
        return nil
    end

    if not can_yield() then
        local rc = tonumber(C.ngx_http_learn_ffi_pool(pool, #pool, errbuf,
                                                      errlen))
        if rc ~= NGX_OK then
            return rc
        end
        return nil
    end

    local t = C.ngx_http_learn_ffi_task_post(m.handle, pool, #pool,
                                             opts.threshold
                                             or THREAD_THRESHOLD,
                                             y and 1 or 0,
                                             x, xnd, xshape, y, ynd or 0,
                                             yshape, rc_out, errbuf, errlen)
    if t == nil then
        local rc = tonumber(rc_out[0])
        if rc == NGX_DECLINED then
            return nil
        end
        return rc
    end

    -- if this coroutine dies while it waits, the task frees itself
    t = ffi_gc(t, C.ngx_http_learn_ffi_task_abandon)

    while C.ngx_http_learn_ffi_task_poll(t) ~= NGX_OK do
        ngx.sleep(RETRY_SLEEP)
    end

    ffi_gc(t, nil)

    return tonumber(C.ngx_http_learn_ffi_task_finish(t, yout, loss_out,
                                                     step_out, errbuf,
                                                     errlen))
end


-- learn.predict(model, x [, opts]) -> y, or nil, err
function _M.predict(name, x, opts)
    local m, err = model_of(name)
    if not m then
        return nil, err
    end

    if opts ~= nil then
        local okay, oerr = check_opts(opts, predict_opts)
        if not okay then
            return refuse(m, oerr)
        end
    end

    local version
    version, err = version_of(opts)
    if not version then
        return refuse(m, err)
    end

    local xdata, xnd, rows, tensor_in

    if getmetatable(x) == tensor_mt then
        tensor_in = true
        xnd, xdata = tensor_args(x, xshape, "x")
        if not xnd then
            return refuse(m, xdata)
        end
        rows = xnd == 1 and 1 or x.shape[1]
        -- the output is sized from rows: a shape C refuses allocates none
        err = x_refused(m, xnd, x.shape[1], x.shape[2])
        if err then
            return refuse(m, err)
        end

    elseif type(x) == "table" then
        xnd, xdata, rows = table_x(m, x)
        if not xnd then
            return refuse(m, xdata)
        end

    else
        return refuse(m, "x must be a table or a learn.tensor, not "
                         .. type(x))
    end

    local out_dim = m.out_dim
    local yt, ydata

    if tensor_in then
        yt = opts and opts.out
        if yt ~= nil then
            local cap = getmetatable(yt) == tensor_mt and tensor_cap(yt)
            if not cap then
                return refuse(m, "opts.out must be a learn.tensor")
            end
            if cap < rows * out_dim then
                return refuse(m, "opts.out holds " .. cap
                                 .. " numbers, y has " .. rows * out_dim)
            end
            local s = yt.shape
            if type(s) ~= "table" then
                s = {}
                yt.shape = s
            end
            if xnd == 1 then
                s[1], s[2], s[3] = out_dim, nil, nil
            else
                s[1], s[2], s[3] = rows, out_dim, nil
            end
            ydata = tensor_ptr(yt)
        else
            -- rows x out_dim is within the activation bound (x_refused)
            yt = tensor.output(xnd == 2 and rows or nil, out_dim)
            ydata = tensor_ptr(yt)
        end
    else
        ydata = grow(m, "ybuf", "ycap", rows * out_dim)
    end

    local rc
    if version == 0 and opts and opts.thread_pool then
        local own_y = ydata
        if not tensor_in then
            -- the scratch buffer is another coroutine's while this sleeps
            own_y = float_arr(rows * out_dim)
        end
        rc = offload(m, opts, xdata, xnd, nil, nil, own_y)
        if rc then
            ydata = own_y
        end
    end

    if rc == nil then
        rc = tonumber(C.ngx_http_learn_ffi_predict(m.handle, version, xdata,
                                                   xnd, xshape, ydata,
                                                   step_out, errbuf, errlen))

        -- (a loop entered only when needed: see resty.learn.tensor's
        -- numel_of)
        if rc == NGX_AGAIN and can_yield() then
            -- a kept version being read by a thread for an HTTP predict:
            -- the shape (and a table's floats) are this call's alone now
            local xs = own_shape(xshape)
            if not tensor_in then
                xdata = own(xdata, numel_c(xnd, xshape))
                ydata = float_arr(rows * out_dim)
            end

            repeat
                ngx.sleep(RETRY_SLEEP)
                rc = tonumber(C.ngx_http_learn_ffi_predict(m.handle, version,
                                                           xdata, xnd, xs,
                                                           ydata, step_out,
                                                           errbuf, errlen))
            until rc ~= NGX_AGAIN
        end
    end

    if rc ~= NGX_OK then
        fit_scratch(m)
        return nil, c_error()
    end

    if tensor_in then
        return yt
    end

    local y = output_table(ydata, xnd, rows, out_dim)
    fit_scratch(m)
    return y
end


local function train_args(m, x, y)
    local xdata, xnd, rows, err

    if getmetatable(x) == tensor_mt then
        xnd, xdata = tensor_args(x, xshape, "x")
        if not xnd then
            return nil, xdata
        end
        rows = xnd == 1 and 1 or x.shape[1]
        err = x_refused(m, xnd, x.shape[1], x.shape[2])
        if err then
            return nil, err
        end

    elseif type(x) == "table" then
        xnd, xdata, rows = table_x(m, x)
        if not xnd then
            return nil, xdata
        end

    else
        return nil, "x must be a table or a learn.tensor, not " .. type(x)
    end

    local ydata, ynd

    if getmetatable(y) == tensor_mt then
        ynd, ydata = tensor_args(y, yshape, "y")
        if not ynd then
            return nil, ydata
        end

    elseif type(y) == "table" or type(y) == "number" then
        ynd, ydata = table_y(m, y, rows)
        if not ynd then
            return nil, ydata
        end

    else
        return nil, "y must be a table, a number or a learn.tensor, not "
                    .. type(y)
    end

    return xdata, xnd, ydata, ynd
end


-- learn.train(model, x, y [, opts]) -> loss, step, or nil, err
function _M.train(name, x, y, opts)
    local m, err = model_of(name)
    if not m then
        return nil, err
    end

    if opts ~= nil then
        local okay, oerr = check_opts(opts, train_opts)
        if not okay then
            return refuse(m, oerr)
        end
    end

    local xdata, xnd, ydata, ynd = train_args(m, x, y)
    if not xdata then
        return refuse(m, xnd)
    end

    local rc
    if opts and opts.thread_pool then
        rc = offload(m, opts, xdata, xnd, ydata, ynd, nil)
    end

    if rc == nil then
        local yield = can_yield()

        start_out[0] = 0
        rc = tonumber(C.ngx_http_learn_ffi_train(m.handle, xdata, xnd, xshape,
                                                 ydata, ynd, yshape,
                                                 yield and 0 or 1, start_out,
                                                 loss_out, step_out, errbuf,
                                                 errlen))

        if rc == NGX_AGAIN then
            -- another worker's step holds the mutex: what this call
            -- passes is its own while it sleeps
            local xs, ys = own_shape(xshape), own_shape(yshape)
            local start = ffi_new("uint64_t[1]", start_out[0])
            xdata = own(xdata, numel_c(xnd, xshape))
            ydata = own(ydata, numel_c(ynd, yshape))

            repeat
                ngx.sleep(RETRY_SLEEP)
                rc = tonumber(C.ngx_http_learn_ffi_train(m.handle, xdata, xnd,
                                                         xs, ydata, ynd, ys,
                                                         0, start, loss_out,
                                                         step_out, errbuf,
                                                         errlen))
            until rc ~= NGX_AGAIN
        end
    end

    fit_scratch(m)

    if rc ~= NGX_OK then
        return nil, c_error()
    end

    return tonumber(loss_out[0]), tonumber(step_out[0])
end


local function params_of(m)
    if m.params then
        return m.params
    end

    local name = ffi_new("const char *[1]")
    local ndim = ffi_new("int[1]")
    local shape = ffi_new("int64_t[4]")
    local offset = ffi_new("size_t[1]")
    local dtype = ffi_new("int[1]")
    local params = {}

    for i = 0, m.nparams - 1 do
        C.ngx_http_learn_ffi_param(m.handle, i, name, ndim, shape, offset,
                                   dtype)
        local s = {}
        for d = 1, ndim[0] do
            s[d] = tonumber(shape[d - 1])
        end
        params[i + 1] = {
            name = ffi_string(name[0]),
            ndim = ndim[0],
            shape = s,
            offset = tonumber(offset[0]),
            int64 = dtype[0] == 1,
        }
    end

    m.params = params

    return params
end


-- an int64 buffer (num_batches_tracked) is two floats in the block: its
-- low and high 24 bits
local I64_SPLIT = 16777216
local I64_MAX = 2 ^ 48


-- nested tables of shape s[dim..] from the floats at d
local function nest_of(d, s, dim)
    if dim == #s then
        local out = new_tab(s[dim], 0)
        for i = 1, s[dim] do
            out[i] = d[i - 1]
        end
        return out
    end

    local step = 1
    for k = dim + 1, #s do
        step = step * s[k]
    end

    local out = new_tab(s[dim], 0)
    for i = 1, s[dim] do
        out[i] = nest_of(d + (i - 1) * step, s, dim + 1)
    end
    return out
end


local function value_of(d, p)
    if p.int64 then
        return tonumber(d[0]) + tonumber(d[1]) * I64_SPLIT
    end

    if #p.shape == 0 then
        return tonumber(d[0])
    end

    return nest_of(d, p.shape, 1)
end


-- learn.weights(model) -> { ["0.weight"] = rows, ["0.bias"] = list }, step
function _M.weights(name)
    local m, err = model_of(name)
    if not m then
        return nil, err
    end

    local buf = float_arr(m.param_count)

    if C.ngx_http_learn_ffi_weights(m.handle, buf, step_out, errbuf, errlen)
       ~= NGX_OK
    then
        return nil, c_error()
    end

    local out = {}
    for _, p in pairs(params_of(m)) do
        out[p.name] = value_of(buf + p.offset, p)
    end

    return out, tonumber(step_out[0])
end


local function shape_str(s)
    return "[" .. table.concat(s, ", ") .. "]"
end


-- the shape of a nested table (or a tensor; {} for a number), for the
-- checks below; each level's first element sets the next dimension
local function value_shape(v)
    if getmetatable(v) == tensor_mt then
        return type(v.shape) == "table" and v.shape or nil
    end

    if type(v) == "number" then
        return {}
    end

    if type(v) ~= "table" then
        return nil
    end

    local s = {}
    while type(v) == "table" do
        s[#s + 1] = #v
        v = v[1]
    end

    return s
end


-- the numbers of nested tables of shape s[dim..] into d; nil, err when a
-- level is ragged or holds something else than numbers
local function flatten_nd(v, d, s, dim, what)
    if dim == #s then
        if type(v) ~= "table" or #v ~= s[dim] then
            return nil, what .. " is not a row of " .. s[dim] .. " numbers"
        end
        for i = 1, s[dim] do
            local x = v[i]
            if type(x) ~= "number" then
                return nil, what .. "[" .. i .. "] is a " .. type(x)
                            .. ", not a number"
            end
            d[i - 1] = x
        end
        return true
    end

    if type(v) ~= "table" or #v ~= s[dim] then
        return nil, what .. " does not hold " .. s[dim] .. " entries"
    end

    local step = 1
    for k = dim + 1, #s do
        step = step * s[k]
    end

    for i = 1, s[dim] do
        local ok, err = flatten_nd(v[i], d + (i - 1) * step, s, dim + 1,
                                   what .. "[" .. i .. "]")
        if not ok then
            return nil, err
        end
    end

    return true
end


-- learn.load_weights(model, tbl) -> true, or nil, err: every parameter,
-- all or nothing, as a learn_weights PUT
function _M.load_weights(name, tbl)
    local m, err = model_of(name)
    if not m then
        return nil, err
    end

    if type(tbl) ~= "table" then
        return refuse(m, "weights must be a table of name = values")
    end

    local params = params_of(m)
    local byname = {}
    for _, p in pairs(params) do
        byname[p.name] = p
    end

    for k in pairs(tbl) do
        if not byname[k] then
            return refuse(m, 'model "' .. m.name .. '" has no parameter "'
                             .. tostring(k) .. '"')
        end
    end

    local buf = float_arr(m.param_count)

    for _, p in pairs(params) do
        local v = tbl[p.name]
        if v == nil then
            return refuse(m, 'missing "' .. p.name .. '": an import sets '
                             .. "every parameter (" .. m.nparams .. ")")
        end

        local s = value_shape(v)
        local fits = s and #s == #p.shape
        if fits then
            for i = 1, #s do
                fits = fits and s[i] == p.shape[i]
            end
        end
        if not fits then
            return refuse(m, '"' .. p.name .. '" has shape '
                             .. ((s and type(v) ~= "number")
                                 and shape_str(s) or type(v))
                             .. ", the model's is " .. shape_str(p.shape))
        end

        local n = 1
        for d = 1, #p.shape do
            n = n * p.shape[d]
        end
        if p.int64 or #p.shape == 0 then
            if p.int64 and (v < 0 or v >= I64_MAX or v ~= floor(v)) then
                return refuse(m, '"' .. p.name .. '" must be a whole number '
                                 .. "in [0, 2^48), not " .. tostring(v))
            end
            if p.int64 then
                buf[p.offset] = v % I64_SPLIT
                buf[p.offset + 1] = floor(v / I64_SPLIT)
            else
                buf[p.offset] = v
            end
        elseif #p.shape > 2 then
            local ok, ferr = flatten_nd(v, buf + p.offset, p.shape, 1,
                                        '"' .. p.name .. '"')
            if not ok then
                return refuse(m, ferr)
            end
        elseif getmetatable(v) == tensor_mt then
            local nd, ptr = tensor_args(v, tshape, '"' .. p.name .. '"')
            if not nd then
                return refuse(m, ptr)
            end
            ffi.copy(buf + p.offset, ptr, n * 4)
        else
            local got, ferr = flatten_into(v, buf + p.offset, n, p.name)
            if not got then
                return refuse(m, ferr)
            end
            if got ~= n then
                return refuse(m, '"' .. p.name .. '" has ' .. got
                                 .. " numbers, the model's has " .. n)
            end
        end
    end

    local yield = can_yield()
    local rc
    while true do
        rc = tonumber(C.ngx_http_learn_ffi_load_weights(m.handle, buf,
                                                        yield and 0 or 1,
                                                        errbuf, errlen))
        if rc ~= NGX_AGAIN then
            break
        end
        ngx.sleep(RETRY_SLEEP)
    end

    if rc ~= NGX_OK then
        return nil, c_error()
    end

    return true
end


local status = ffi_new("ngx_http_learn_ffi_status_t")

local status_fields = {
    "trains", "predicts", "rejected", "rejected_steps", "predict_rereads",
    "predict_latency_us", "batches", "batched_predicts", "device_steps",
    "device_predicts", "set_evals", "set_empty",
}

-- learn.status(model) -> the counters of learn_status's JSON, by its
-- names (the latency histograms and feedback counters stay there)
function _M.status(name)
    local m, err = model_of(name)
    if not m then
        return nil, err
    end

    C.ngx_http_learn_ffi_status(m.handle, status)

    if status.ready == 0 then
        return nil, 'model "' .. m.name .. '" is not ready'
    end

    local st = {
        step = tonumber(status.step),
        loss = status.loss,
        loss_avg = status.loss_avg,
        device = ffi_string(status.device),
        params = m.param_count,
        inputs = m.in_dim,
        outputs = m.out_dim,
    }

    for _, f in pairs(status_fields) do
        st[f] = tonumber(status[f])
    end

    if status.checkpoint ~= 0 then
        st.checkpoint = {
            step = tonumber(status.checkpoint_step),
            writes = tonumber(status.checkpoint_writes),
            failures = tonumber(status.checkpoint_failures),
            time = tonumber(status.checkpoint_time),
        }
    end

    if status.keep ~= 0 then
        local versions = {}
        for i = 0, status.nversions - 1 do
            local v = status.versions[i]
            versions[i + 1] = {
                step = tonumber(v.step),
                loss = v.loss,
                time = tonumber(v.time),
                predicts = tonumber(v.predicts),
                predict_latency_us = tonumber(v.predict_latency_us),
            }
        end
        st.versions = versions
    end

    return st
end


return _M
