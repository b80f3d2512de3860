-- wrk: the soak's mixed traffic (bench/soak.sh).  Each thread cycles
-- through the requests below; bodies that are not JSON come from files
-- that soak.sh writes ($SOAK_DIR).  An answer of 5xx is written to
-- stderr, which soak.sh counts.
local dir = os.getenv("SOAK_DIR")

local function file(name)
    local f = assert(io.open(dir .. "/" .. name, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

local json = { ["Content-Type"] = "application/json" }
local mp = { ["Content-Type"] = "application/msgpack" }

local mix = {
    -- { weight, method, path, headers, body }
    { 30, "POST", "/predict", json, '{"x": [[0, 1], [1, 1]]}' },
    { 15, "POST", "/predict", mp, file("predict.msgpack") },
    { 10, "POST", "/train", json, '{"x": [[0, 1], [1, 0]], "y": [[1], [1]]}' },
    {  5, "POST", "/train", mp, file("train.msgpack") },
    {  4, "POST", "/train", json, '{"x": [[0, 1]], "y": [[3e38]]}' },    -- 422
    {  4, "POST", "/predict", json, '{"x": [[0, 1, 2]]}' },              -- 400
    {  4, "POST", "/predict", json, '{"x": [[0, 1]' },                  -- 400
    {  3, "POST", "/predict", mp, file("garbage.bin") },                -- 400
    {  2, "POST", "/predict?version=1", json, '{"x": [[1, 0]]}' },
    {  2, "POST", "/batched", json, '{"x": [[1, 1]]}' },
    {  2, "POST", "/pooled", json, '{"x": [[1, 0]], "y": [[1]]}' },
    { 10, "GET", "/score?a=1&b=0", nil, nil },
    {  5, "GET", "/counter", nil, nil },                -- a new key each time
    {  1, "POST", "/feedback", json, '{"id": "0123456789abcdef0123456789abcdef", "y": [1]}' },  -- 404
    {  1, "GET", "/weights", nil, nil },
    {  1, "GET", "/status", nil, nil },
    {  1, "GET", "/status?format=prometheus", nil, nil },
}

local reqs, n = {}, 0
local counter_at = {}

-- SOAK_ONLY=PATTERN keeps only the requests whose path matches it (a
-- Lua pattern): which kind of request a growth comes from
local only = os.getenv("SOAK_ONLY")

function init(args)
    for _, m in ipairs(mix) do
        for _ = 1, (only and not m[3]:find(only)) and 0 or m[1] do
            n = n + 1
            if m[3] == "/counter" then
                counter_at[n] = true
            else
                reqs[n] = wrk.format(m[2], m[3], m[4], m[5])
            end
        end
    end
end

local i, seq = 0, 0

function request()
    i = i % n + 1
    if counter_at[i] then
        -- learn_counter keyed by the client: a new address every time,
        -- so the zone fills and evicts
        seq = seq + 1
        return wrk.format("GET", "/counter?who=" .. id .. "-" .. seq)
    end
    return reqs[i]
end

function setup(thread)
    thread:set("id", tostring(math.random(1, 1e9)))
end

function response(status)
    if status >= 500 then
        io.stderr:write("soak: status " .. status .. "\n")
    end
end
