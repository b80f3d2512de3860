-- resty.learn.tensor: learn.tensor, a float buffer with a shape that
-- resty.learn passes to C as it is, and the conversions between Lua
-- tables and floats.

local ffi = require "ffi"

local ffi_new = ffi.new
local type = type
local floor = math.floor
local setmetatable = setmetatable
local tostring = tostring

local ok, new_tab = pcall(require, "table.new")
if not ok then
    new_tab = function() return {} end
end

local float_arr = ffi.typeof("float[?]")
local float_ptr = ffi.typeof("float *")

-- the largest learn.tensor (1 GiB of floats)
local MAX_TENSOR = 2^28

local _M = {}


local function not_number(what, v)
    return what .. " is a " .. type(v) .. ", not a number"
end


-- a flat list, or a list of equal rows, into buf: the count, or nil, err
function _M.flatten(tbl, buf, cap, what)
    local first = tbl[1]

    if type(first) ~= "table" then
        local n = #tbl
        if n > cap then
            return nil, what .. " has more than " .. cap .. " numbers"
        end
        for i = 1, n do
            local v = tbl[i]
            if type(v) ~= "number" then
                return nil, not_number(what .. "[" .. i .. "]", v)
            end
            buf[i - 1] = v
        end
        return n, 1
    end

    local rows = #tbl
    local cols = #first
    if rows * cols > cap then
        return nil, what .. " has more than " .. cap .. " numbers"
    end

    local k = 0
    for i = 1, rows do
        local row = tbl[i]
        if type(row) ~= "table" then
            return nil, what .. "[" .. i .. "] is a " .. type(row)
                        .. ", " .. what .. "[1] is a row"
        end
        if #row ~= cols then
            return nil, what .. "[" .. i .. "] has " .. #row
                        .. " numbers, " .. what .. "[1] has " .. cols
        end
        for j = 1, cols do
            local v = row[j]
            if type(v) ~= "number" then
                return nil, not_number(what .. "[" .. i .. "][" .. j .. "]",
                                       v)
            end
            buf[k] = v
            k = k + 1
        end
    end

    return k, 2, rows, cols
end


local tensor_mt = {}
tensor_mt.__index = tensor_mt

-- (no loops over the one or two dimensions, here and below: a loop
-- that a call enters and leaves every time splits the caller's trace)
function _M.numel_of(shape)
    return shape[1] * (shape[2] or 1)
end


local function positive(d)
    return type(d) == "number" and d >= 1 and d == floor(d) and d <= 2^31
end


local function check_shape(shape)
    if type(shape) == "number" then
        shape = { shape }
    end

    if type(shape) ~= "table" or shape[1] == nil or shape[3] ~= nil then
        return nil, "shape must be {N} or {N, D}"
    end

    if not positive(shape[1]) then
        return nil, "shape[1] must be a positive integer"
    end

    if shape[2] ~= nil and not positive(shape[2]) then
        return nil, "shape[2] must be a positive integer"
    end

    return shape
end



-- What C reads and writes, kept out of the user's reach: a tensor's
-- t.data is for the caller's own reads and writes, but a t.data or a
-- t.shape set to something else must not make C read past a buffer.
-- The pointer, the floats it holds and the array that keeps it alive
-- are under keys only this file has.
local PTR, CAP, BUF = {}, {}, {}


-- learn.tensor(shape [, data]): data nil (zeros), a Lua table (copied,
-- flat or nested) or a float array (used in place, not copied)
function _M.new(shape, data)
    local s, err = check_shape(shape)
    if not s then
        return nil, err
    end

    local shp = { s[1], s[2] }
    local n = _M.numel_of(shp)
    if n > MAX_TENSOR then
        return nil, "a tensor holds at most " .. MAX_TENSOR .. " numbers"
    end

    local buf, ptr, cap

    if data == nil or type(data) == "table" then
        if n < 65536 then
            buf = float_arr(n)
        else
            -- only a big one may fail, and that is an answer, not an error
            local okay
            okay, buf = pcall(float_arr, n)
            if not okay then
                return nil, "no memory for " .. n .. " numbers"
            end
        end
        ptr, cap = ffi.cast(float_ptr, buf), n

        if data ~= nil then
            local got, ferr = _M.flatten(data, ptr, n, "data")
            if not got then
                return nil, ferr
            end
            if got ~= n then
                return nil, "data has " .. got .. " numbers, shape {"
                            .. table.concat(shp, ", ") .. "} holds " .. n
            end
        end

    elseif type(data) == "cdata" then
        -- an array of floats whose size LuaJIT knows: a bare pointer
        -- could hold fewer numbers than the shape says
        local size = ffi.sizeof(data)
        if not tostring(ffi.typeof(data)):find("^ctype<float %[")
           or not size or size < n * 4
        then
            return nil, "data must be a float array (ffi.new(\"float[?]\","
                        .. " n)) of at least " .. n .. " numbers"
        end
        buf, ptr, cap = data, ffi.cast(float_ptr, data), floor(size / 4)

    else
        return nil, "data must be a table or a float array, not "
                    .. type(data)
    end

    local t = setmetatable({ shape = shp, data = ptr, [PTR] = ptr,
                             [CAP] = cap, [BUF] = buf }, tensor_mt)

    return t
end


function _M.is(t)
    return getmetatable(t) == tensor_mt
end


local function dim_ok(d)
    return type(d) == "number" and d >= 1 and d == floor(d)
end


-- The tensor's shape into a C int64_t[2], checked against what its
-- buffer holds: the dimensions and the buffer, or nil, err.
-- (Straight-line for 1 or 2 dimensions: a loop here would split the
-- caller's trace in two.)
function _M.args(t, shape_out, what)
    local shp = t.shape
    local ptr, cap = t[PTR], t[CAP]

    if ptr == nil then
        return nil, what .. " is not a learn.tensor"
    end

    if type(shp) ~= "table" then
        return nil, what .. ".shape must be {N} or {N, D}"
    end

    local d1, d2 = shp[1], shp[2]

    if d1 == nil or shp[3] ~= nil then
        return nil, what .. " must have 1 or 2 dimensions"
    end

    if not dim_ok(d1) or (d2 ~= nil and not dim_ok(d2)) then
        return nil, what .. ".shape must hold positive integers"
    end

    shape_out[0] = d1
    local n, nd = d1, 1
    if d2 ~= nil then
        shape_out[1] = d2
        n, nd = d1 * d2, 2
    end

    if n > cap then
        return nil, what .. " has shape {" .. table.concat(shp, ", ")
                    .. "}, more than the " .. cap
                    .. " numbers its buffer holds"
    end

    return nd, ptr
end


local tshape = ffi_new("int64_t[2]")


-- floats at d as a list ({N}) or rows ({N, D})
function _M.rows_of(d, shp)
    if shp[2] == nil then
        local out = new_tab(shp[1], 0)
        for i = 1, shp[1] do
            out[i] = d[i - 1]
        end
        return out
    end

    local rows, cols = shp[1], shp[2]
    local out = new_tab(rows, 0)
    for i = 1, rows do
        local row = new_tab(cols, 0)
        local base = (i - 1) * cols
        for j = 1, cols do
            row[j] = d[base + j - 1]
        end
        out[i] = row
    end
    return out
end


-- the shape as nested tables (rows of numbers), as predict returns them;
-- nil, err when the shape is more than the buffer holds
function tensor_mt.totable(t)
    local nd, d = _M.args(t, tshape, "the tensor")
    if not nd then
        return nil, d
    end

    return _M.rows_of(d, t.shape)
end


_M.mt = tensor_mt


-- a new tensor of rows x cols floats (rows nil: {cols}) whose dims are
-- known to be good: predict's output, made without new()'s checks
function _M.output(rows, cols)
    local n = (rows or 1) * cols
    local buf = float_arr(n)
    return setmetatable({ shape = rows and { rows, cols } or { cols },
                          data = buf, [PTR] = buf, [CAP] = n, [BUF] = buf },
                        tensor_mt)
end

-- the buffer C reads and writes, and the floats it holds (nil when t is
-- not a tensor of this module's making)
function _M.ptr(t)
    return t[PTR]
end

function _M.cap(t)
    return t[CAP]
end


return _M
