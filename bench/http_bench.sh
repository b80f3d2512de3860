#!/bin/bash
# One nginx, 2 workers; wrk -t2 -c64 against `return 200`, a location
# that reads the POST body and answers (`echo_read_request_body; echo ok;`,
# Debian's libnginx-mod-http-echo: the baseline), learn_predict and
# learn_train on the WebTorch XOR net (2-20-1 tanh, MSE, SGD lr 0.01) with
# a one-sample msgpack-numpy body.  Prints req/s and the ratios to the
# body-reading baseline (of the medians, and the median of each round's
# ratio: neighbours in time share more of the machine's other load), and
# the workers' CPU time per request, which other load moves less.
#   bench/http_bench.sh [SECONDS]  (make bench-http; ROUNDS=3 by default)
# `return 200` gets the same POST body (nginx reads and discards it).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUR=${1:-5}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18080}
NGINX=${NGINX:-/usr/sbin/nginx}
PREFIX=$ROOT/build/bench-http
PY=/usr/bin/python3
# OpenBLAS's kernels for this CPU (mk/openblas-coretype.sh), unless set
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
load_module $ROOT/build/ngx_http_learn_module.so;
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
worker_processes 2;
$USER_LINE
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    learn_model xor models/xor.lua seed=1;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location = /return200 { return 200 "ok"; }
        location = /echo { echo_read_request_body; echo ok; }
        location = /predict { learn_predict xor; }
        location = /train { learn_train xor; }
        location = /status { learn_status; }
    }
}
CONF

OPENBLAS_NUM_THREADS=1 "$NGINX" -p "$PREFIX/" -c conf/nginx.conf
trap 'kill -QUIT $(cat "$PREFIX/logs/nginx.pid") 2>/dev/null || true' EXIT
wait_listening "$PORT"

run() {   # name uri body -> req/s; the workers' CPU us per request in $1.cpu
    local t0 t1 rps
    t0=$(worker_ticks)
    BODY=$PREFIX/$3 wrk -t2 -c64 -d"${DUR}s" -s "$ROOT/bench/post.lua" \
        "http://127.0.0.1:$PORT$2" > "$PREFIX/$1.txt"
    t1=$(worker_ticks)
    if grep -q "Non-2xx" "$PREFIX/$1.txt"; then
        echo "$1: non-2xx answers:" >&2; cat "$PREFIX/$1.txt" >&2; exit 1
    fi
    rps=$(awk '/Requests\/sec/ {print $2}' "$PREFIX/$1.txt")
    echo "($t1 - $t0) * 1000000 / $(getconf CLK_TCK) / ($rps * $DUR)" | bc -l \
        >> "$PREFIX/$1.cpu"
    echo "$rps"
}

echo "wrk -t2 -c64, ${ROUNDS} rounds of ${DUR}s each, interleaved; nginx 2 workers;" \
     "XOR 2-20-1 tanh; 1-sample msgpack-numpy body; median of rounds" >&2
run warmup /predict predict.mp > /dev/null
R=(); E=(); P=(); T=(); PE=(); TE=()
rm -f "$PREFIX"/*.cpu
for i in $(seq "$ROUNDS"); do
    R+=("$(run return200 /return200 predict.mp)")
    E+=("$(run echo /echo predict.mp)")
    P+=("$(run predict /predict predict.mp)")
    T+=("$(run train /train train.mp)")
    PE+=("$(echo "${P[-1]} / ${E[-1]}" | bc -l)")
    TE+=("$(echo "${T[-1]} / ${E[-1]}" | bc -l)")
    printf '  round %d: return200 %s  echo %s  predict %s  train %s  (predict/echo %.2f, train/echo %.2f)\n' \
        "$i" "${R[-1]}" "${E[-1]}" "${P[-1]}" "${T[-1]}" "${PE[-1]}" "${TE[-1]}" >&2
done
R=$(median "${R[@]}"); E=$(median "${E[@]}"); P=$(median "${P[@]}")
T=$(median "${T[@]}")
STEPS=$(curl -s "http://127.0.0.1:$PORT/status" | $PY -c 'import json,sys; print(json.load(sys.stdin)["models"]["xor"]["step"])')

cpu() { median $(cat "$PREFIX/$1.cpu"); }
CE=$(cpu echo)
printf '%-22s %10s %9s %9s %11s %9s\n' location req/s "/echo" "/return" "cpu us/req" "echo/cpu"
line() {  # label req/s cpu-file
    local c
    c=$(cpu "$3")
    printf '%-22s %10.0f %9.2f %9.2f %11.2f %9.2f\n' "$1" "$2" \
        "$(echo "$2 / $E" | bc -l)" "$(echo "$2 / $R" | bc -l)" "$c" \
        "$(echo "$CE / $c" | bc -l)"
}
line "return 200" "$R" return200
line "echo_read_request_body" "$E" echo
line learn_predict "$P" predict
line learn_train "$T" train
printf 'median of the per-round ratios: predict/echo %.2f, train/echo %.2f\n' \
    "$(median "${PE[@]}")" "$(median "${TE[@]}")"
echo "train steps applied (learn_status): $STEPS"
echo "cpu us/req: the workers' CPU time (user + system) per answered request;" \
     "echo/cpu: echo's CPU per request over this location's"
