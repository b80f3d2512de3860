-- wrk: POST the file named by $BODY with $CTYPE (default msgpack)
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("CTYPE") or "application/msgpack"

local non200 = 0
function response(status)
    if status ~= 200 then
        non200 = non200 + 1
    end
end
