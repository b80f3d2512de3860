#!/bin/bash
# resty.learn's cost, on the WebTorch XOR net (2-20-1 tanh, MSE, SGD):
#  1. one call from Lua, timed inside one request: a loop of N calls of
#     learn.predict (one sample as a table, as rows, as a learn.tensor
#     with opts.out reused, as a tensor with a new output each call) and
#     of learn.train (one sample, rows), against the same loop around an
#     empty Lua function; microseconds per call, the best and the median
#     of ROUNDS (the best is the cost without the machine's noise);
#  2. req/s with wrk -t2 -c64 on 2 workers: a content_by_lua location
#     that predicts (or trains) on x from the query string, against
#     learn_predict (learn_train) with a one-sample msgpack-numpy body,
#     a content_by_lua location that only answers "ok", and one that
#     does all the predict location does but the predict (reads the
#     args, makes the table, prints a number of as many digits): the
#     difference in the workers' CPU time per request between those two
#     is learn.predict's own (and learn.train's, which prints the loss).
#   bench/lua_bench.sh [SECONDS]  (make bench-lua; ROUNDS=3, N=200000)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUR=${1:-5}
ROUNDS=${ROUNDS:-3}
N=${N:-200000}
PORT=${PORT:-18084}
NGINX=${NGINX:-/usr/sbin/nginx}
PREFIX=$ROOT/build/bench-lua
PY=/usr/bin/python3
if [ -z "${OPENBLAS_CORETYPE+set}" ]; then
    core=$(PY=$PY "$ROOT/mk/openblas-coretype.sh")
    if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
fi

rm -rf "$PREFIX" && mkdir -p "$PREFIX/logs" "$PREFIX/tmp" "$PREFIX/conf"
. "$ROOT/bench/lib.sh"
USER_LINE=$("$ROOT/mk/worker-user.sh" "$PREFIX/tmp" "$ROOT/build/ngx_http_learn_module.so")

$PY - "$PREFIX" <<'PYEOF'
import sys, numpy as np, msgpack_numpy
p = sys.argv[1]
x = np.array([[0, 1]], dtype=np.float32)
y = np.array([[1]], dtype=np.float32)
open(p + "/predict.mp", "wb").write(msgpack_numpy.packb({"x": x}))
open(p + "/train.mp", "wb").write(msgpack_numpy.packb({"x": x, "y": y}))
PYEOF

cat > "$PREFIX/conf/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
load_module $ROOT/build/ngx_http_learn_module.so;
worker_processes 2;
$USER_LINE
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    lua_package_path "$ROOT/lua/?.lua;;";
    learn_model xor models/xor.lua seed=1;
    init_by_lua_block { learn = require "resty.learn" }
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location = /return200 { return 200 "ok"; }
        location = /lua-ok { content_by_lua_block { ngx.print("ok") } }
        location = /lua-args {
            content_by_lua_block {
                local a = ngx.var.arg_a
                local x = { tonumber(a) or 0, tonumber(ngx.var.arg_b) or 0 }
                -- a number with as many digits as a model's output
                ngx.print((x[1] + x[2] + 0.1) / 3)
            }
        }
        location = /lua-predict {
            content_by_lua_block {
                local a = ngx.var.arg_a
                local y = learn.predict("xor", { tonumber(a) or 0,
                                                 tonumber(ngx.var.arg_b) or 0 })
                ngx.print(y[1])
            }
        }
        location = /lua-train {
            content_by_lua_block {
                local loss, step = learn.train("xor",
                    { tonumber(ngx.var.arg_a) or 0, tonumber(ngx.var.arg_b) or 0 },
                    tonumber(ngx.var.arg_y) or 0)
                ngx.print(loss)
            }
        }
        location = /predict { learn_predict xor; }
        location = /train { learn_train xor; }
        location = /status { learn_status; }
        location = /loop {
            content_by_lua_block {
                local n = tonumber(ngx.var.arg_n)
                local form = ngx.var.arg_form
                local f
                if form == "empty" then
                    local function nop(m, x) return x end
                    local x = {0, 1}
                    f = function() return nop("xor", x) end
                elseif form == "table" then
                    local x = {0, 1}
                    f = function() return learn.predict("xor", x) end
                elseif form == "rows" then
                    local x = {{0, 1}}
                    f = function() return learn.predict("xor", x) end
                elseif form == "tensor" then
                    local x = learn.tensor({1, 2}, {0, 1})
                    local o = { out = learn.tensor({1, 1}) }
                    f = function() return learn.predict("xor", x, o) end
                elseif form == "tensor-new" then
                    local x = learn.tensor({1, 2}, {0, 1})
                    f = function() return learn.predict("xor", x) end
                elseif form == "train" then
                    local x, y = {0, 1}, 1
                    f = function() return learn.train("xor", x, y) end
                elseif form == "train-tensor" then
                    local x, y = learn.tensor({1, 2}, {0, 1}), learn.tensor({1}, {1})
                    f = function() return learn.train("xor", x, y) end
                end
                assert(f(), "the call failed")
                collectgarbage()
                local t0 = os.clock()
                for _ = 1, n do f() end
                local t1 = os.clock()
                ngx.print(string.format("%.4f", (t1 - t0) * 1e6 / n))
            }
        }
    }
}
CONF

OPENBLAS_NUM_THREADS=1 "$NGINX" -p "$PREFIX/" -c conf/nginx.conf
trap 'kill -QUIT $(cat "$PREFIX/logs/nginx.pid") 2>/dev/null || true' EXIT
wait_listening "$PORT"

loop() {   # form -> us per call
    curl -sf "http://127.0.0.1:$PORT/loop?form=$1&n=$N"
}

# the answers are what the benchmark claims to measure
test "$(curl -s "http://127.0.0.1:$PORT/lua-predict?a=0&b=1")" != "" \
    || { echo "/lua-predict answers nothing" >&2; exit 1; }

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
echo "1. one call inside one request: $N calls, ${ROUNDS} rounds;" \
     "XOR 2-20-1 tanh; $CPU" >&2
FORMS="empty table rows tensor tensor-new train train-tensor"
declare -A US
for f in $FORMS; do US[$f]=""; done
for i in $(seq "$ROUNDS"); do
    for f in $FORMS; do US[$f]="${US[$f]} $(loop "$f")"; done
done
best() { printf '%s\n' "$@" | sort -g | head -1; }
printf '%-44s %9s %9s %9s\n' call "best us" "median us" "-empty"
E=$(best ${US[empty]})
label() {
    case $1 in
        empty)        echo "an empty Lua function (the loop's own cost)" ;;
        table)        echo "learn.predict, x = {0, 1}" ;;
        rows)         echo "learn.predict, x = {{0, 1}}" ;;
        tensor)       echo "learn.predict, learn.tensor, opts.out" ;;
        tensor-new)   echo "learn.predict, learn.tensor, new y" ;;
        train)        echo "learn.train, x = {0, 1}, y = 1" ;;
        train-tensor) echo "learn.train, learn.tensor x and y" ;;
    esac
}
for f in $FORMS; do
    b=$(best ${US[$f]})
    printf '%-44s %9.3f %9.3f %9.3f\n' "$(label "$f")" "$b" \
        "$(median ${US[$f]})" "$(echo "$b - $E" | bc -l)"
done

run() {   # name uri [body] -> req/s; the workers' CPU us/request in $1.cpu
    local t0 t1 n
    t0=$(worker_ticks)
    if [ -n "${3:-}" ]; then
        BODY=$PREFIX/$3 wrk -t2 -c64 -d"${DUR}s" -s "$ROOT/bench/post.lua" \
            "http://127.0.0.1:$PORT$2" > "$PREFIX/$1.txt"
    else
        wrk -t2 -c64 -d"${DUR}s" "http://127.0.0.1:$PORT$2" > "$PREFIX/$1.txt"
    fi
    t1=$(worker_ticks)
    if grep -q "Non-2xx" "$PREFIX/$1.txt"; then
        echo "$1: non-2xx answers:" >&2; cat "$PREFIX/$1.txt" >&2; exit 1
    fi
    n=$(awk '/requests in/ {print $1}' "$PREFIX/$1.txt")
    echo "($t1 - $t0) * 1000000 / $(getconf CLK_TCK) / $n" | bc -l \
        >> "$PREFIX/$1.cpu"
    awk '/Requests\/sec/ {print $2}' "$PREFIX/$1.txt"
}

echo >&2
echo "2. wrk -t2 -c64, ${ROUNDS} rounds of ${DUR}s each, interleaved; nginx 2" \
     "workers; median of rounds" >&2
run warmup "/lua-predict?a=0&b=1" > /dev/null
R=(); O=(); A=(); LP=(); P=(); LT=(); T=()
for i in $(seq "$ROUNDS"); do
    R+=("$(run return200 /return200)")
    O+=("$(run lua-ok /lua-ok)")
    A+=("$(run lua-args '/lua-args?a=0&b=1')")
    LP+=("$(run lua-predict '/lua-predict?a=0&b=1')")
    P+=("$(run predict /predict predict.mp)")
    LT+=("$(run lua-train '/lua-train?a=0&b=1&y=1')")
    T+=("$(run train /train train.mp)")
    echo "  round $i: return200 ${R[-1]}  lua-ok ${O[-1]}  lua-args ${A[-1]}  lua-predict" \
         "${LP[-1]}  learn_predict ${P[-1]}  lua-train ${LT[-1]}" \
         " learn_train ${T[-1]}" >&2
done
R=$(median "${R[@]}"); O=$(median "${O[@]}"); A=$(median "${A[@]}")
LP=$(median "${LP[@]}")
P=$(median "${P[@]}"); LT=$(median "${LT[@]}"); T=$(median "${T[@]}")

cpu() { median $(cat "$PREFIX/$1.cpu"); }     # workers' CPU us/request
printf '%-38s %9s %9s %9s %11s\n' location req/s "/learn_*" "/lua-args" "cpu us/req"
row() {   # label req/s ratio-to-learn name
    printf '%-38s %9.0f %9s %9.2f %11.2f\n' "$1" "$2" "$3" \
        "$(echo "$2 / $A" | bc -l)" "$(cpu "$4")"
}
row 'return 200' "$R" - return200
row 'content_by_lua: ngx.print("ok")' "$O" - lua-ok
row 'content_by_lua: args, table, print' "$A" - lua-args
row 'content_by_lua: + learn.predict' "$LP" "$(printf %.2f "$(echo "$LP / $P" | bc -l)")" lua-predict
row 'learn_predict (POST msgpack)' "$P" 1 predict
row 'content_by_lua: + learn.train' "$LT" "$(printf %.2f "$(echo "$LT / $T" | bc -l)")" lua-train
row 'learn_train (POST msgpack)' "$T" 1 train
echo "in a request, learn.predict adds $(printf %.2f "$(echo "$(cpu lua-predict) - $(cpu lua-args)" | bc -l)")" \
     "and learn.train $(printf %.2f "$(echo "$(cpu lua-train) - $(cpu lua-args)" | bc -l)")" \
     "CPU us to the args location's (medians of the workers' CPU time per request)"
curl -s "http://127.0.0.1:$PORT/status" | $PY -c 'import json,sys; m=json.load(sys.stdin)["models"]["xor"]; print("learn_status: step %d, trains %d, predicts %d, rejected %d" % (m["step"], m["trains"], m["predicts"], m["rejected"]))'
