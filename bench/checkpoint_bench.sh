#!/bin/bash
# p99 latency of learn_predict on a 784-1024-1024-10 MLP (1.86M params,
# SGD with momentum: 22 MB of checkpoint) while checkpoints are written
# every second, beside the same load without checkpoints.  A trainer posts
# 10 steps/s in both runs so the model keeps changing.
#   bench/checkpoint_bench.sh [SECONDS]     (make bench-checkpoint)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUR=${1:-15}
PORT=${PORT:-18090}
NGINX=${NGINX:-/usr/sbin/nginx}
PREFIX=$ROOT/build/bench-ckpt
PY=/usr/bin/python3
# OpenBLAS's kernels for this CPU (mk/openblas-coretype.sh), unless set
if [ -z "${OPENBLAS_CORETYPE+set}" ]; then
    core=$(PY=$PY "$ROOT/mk/openblas-coretype.sh")
    if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
fi

rm -rf "$PREFIX" && mkdir -p "$PREFIX"/{logs,tmp,conf,state} && chmod 777 "$PREFIX/state"
. "$ROOT/bench/lib.sh"
USER_LINE=$("$ROOT/mk/worker-user.sh" "$PREFIX/state" "$PREFIX/tmp" "$ROOT/build/ngx_http_learn_module.so")

$PY - "$PREFIX" <<'PYEOF'
import sys, numpy as np, msgpack_numpy
p = sys.argv[1]
rng = np.random.default_rng(0)
x = rng.random((1, 784), dtype=np.float32)
open(p + "/predict.mp", "wb").write(msgpack_numpy.packb({"x": x}))
xb = rng.random((8, 784), dtype=np.float32)
yb = rng.integers(0, 10, 8).astype(np.int64)
open(p + "/train.mp", "wb").write(msgpack_numpy.packb({"x": xb, "y": yb}))
PYEOF

start() {   # extra learn_model parameters
    cat > "$PREFIX/conf/nginx.conf" <<CONF
load_module $ROOT/build/ngx_http_learn_module.so;
worker_processes 2;
$USER_LINE
pid logs/nginx.pid;
error_log logs/error.log notice;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    learn_model big models/mlp_big.lua seed=1 $1;
    server {
        listen 127.0.0.1:$PORT;
        location = /predict { learn_predict big; }
        location = /train { learn_train big; }
        location = /status { learn_status; }
    }
}
CONF
    OPENBLAS_NUM_THREADS=1 "$NGINX" -p "$PREFIX/" -c conf/nginx.conf
    wait_listening "$PORT"
}

stop() {
    kill -QUIT "$(cat "$PREFIX/logs/nginx.pid")"
    for _ in $(seq 100); do [ -e "$PREFIX/logs/nginx.pid" ] || break; sleep 0.1; done
}

trainer() {   # 10 train steps per second until killed
    while :; do
        curl -s -o /dev/null -H 'Content-Type: application/msgpack' \
             --data-binary @"$PREFIX/train.mp" "http://127.0.0.1:$PORT/train"
        sleep 0.1
    done
}

measure() {   # name -> prints "p50 p99 req/s"
    trainer & local tp=$!
    BODY=$PREFIX/predict.mp wrk -t2 -c16 -d"${DUR}s" --latency \
        -s "$ROOT/bench/post.lua" "http://127.0.0.1:$PORT/predict" \
        > "$PREFIX/$1.txt"
    kill $tp; wait $tp 2>/dev/null || true
    local writes
    writes=$(curl -s "http://127.0.0.1:$PORT/status" | $PY -c \
        'import json,sys; m=json.load(sys.stdin)["models"]["big"]; print(m.get("checkpoint", {}).get("writes", 0))')
    echo "$(awk '$1=="50%" {print $2} $1=="99%" {print $2} /Requests\/sec/ {print $2}' "$PREFIX/$1.txt" | tr '\n' ' ')$writes"
}

to_ms() { echo "$1" | awk '/us$/ {sub("us",""); print $1/1000; next} /ms$/ {sub("ms",""); print $1; next} /s$/ {sub("s",""); print $1*1000}'; }

echo "wrk -t2 -c16 -d${DUR}s predict (1 sample) + 10 train/s, nginx 2 workers, 784-1024-1024-10" >&2
printf '%-26s %9s %9s %9s %12s\n' run p50_ms p99_ms req/s ckpt_writes
declare -A P99
for run in without with without with; do
    if [ $run = with ]; then
        start "checkpoint=state/big.ckpt checkpoint_interval=1s"
    else
        start ""
    fi
    read -r p50 p99 rps writes < <(measure $run)
    stop
    printf '%-26s %9.2f %9.2f %9.0f %12s\n' "$run checkpoints" "$(to_ms $p50)" "$(to_ms $p99)" "$rps" "$writes"
    P99[$run]="${P99[$run]:-} $(to_ms $p99)"
done
best() { printf '%s\n' $1 | sort -g | head -1; }
W=$(best "${P99[with]}"); N=$(best "${P99[without]}")
printf 'p99 with / without (best of 2 each): %.2f / %.2f ms = %.2fx\n' "$W" "$N" "$(echo "$W / $N" | bc -l)"
