#!/bin/bash
# learn_predict requests/s of a 784-1024-1024-10 MLP (1.86M parameters),
# one-sample msgpack-numpy bodies, wrk -t2 -c64, nginx 2 workers: without
# and with learn_batch, interleaved, median of rounds.
#   bench/batch_bench.sh [SECONDS]     (make bench-batch; ROUNDS=3)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUR=${1:-5}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18095}
NGINX=${NGINX:-/usr/sbin/nginx}
PREFIX=$ROOT/build/bench-batch
PY=/usr/bin/python3
# OpenBLAS's kernels for this CPU (mk/openblas-coretype.sh), unless set
if [ -z "${OPENBLAS_CORETYPE+set}" ]; then
    core=$(PY=$PY "$ROOT/mk/openblas-coretype.sh")
    if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
fi
BATCH=${BATCH:-max=64}

rm -rf "$PREFIX" && mkdir -p "$PREFIX"/{logs,tmp,conf}
. "$ROOT/bench/lib.sh"
USER_LINE=$("$ROOT/mk/worker-user.sh" "$PREFIX/tmp" "$ROOT/build/ngx_http_learn_module.so")

$PY - "$PREFIX" <<'PYEOF'
import sys, numpy as np, msgpack_numpy
x = np.random.default_rng(0).random((1, 784), dtype=np.float32)
open(sys.argv[1] + "/predict.mp", "wb").write(msgpack_numpy.packb({"x": x}))
PYEOF

cat > "$PREFIX/conf/nginx.conf" <<CONF
load_module $ROOT/build/ngx_http_learn_module.so;
worker_processes 2;
$USER_LINE
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    learn_model big models/mlp_big.lua seed=1;
    server {
        listen 127.0.0.1:$PORT;
        location = /predict { learn_predict big; }
        location = /batched { learn_predict big; learn_batch $BATCH; }
        location = /status { learn_status; }
    }
}
CONF
OPENBLAS_NUM_THREADS=1 "$NGINX" -p "$PREFIX/" -c conf/nginx.conf
trap 'kill -QUIT $(cat "$PREFIX/logs/nginx.pid") 2>/dev/null || true' EXIT
wait_listening "$PORT"

run() {   # uri -> "req/s p50 p99"
    BODY=$PREFIX/predict.mp wrk -t2 -c64 -d"${DUR}s" --latency \
        -s "$ROOT/bench/post.lua" "http://127.0.0.1:$PORT$1" > "$PREFIX/out.txt"
    if grep -q "Non-2xx" "$PREFIX/out.txt"; then cat "$PREFIX/out.txt" >&2; exit 1; fi
    awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {print r, p50, p99}' "$PREFIX/out.txt"
}
echo "wrk -t2 -c64 -d${DUR}s, ${ROUNDS} rounds; nginx 2 workers; 784-1024-1024-10; learn_batch $BATCH" >&2
U=(); B=()
for i in $(seq "$ROUNDS"); do
    read -r u up50 up99 < <(run /predict)
    read -r b bp50 bp99 < <(run /batched)
    U+=("$u"); B+=("$b")
    echo "  round $i: unbatched $u req/s (p50 $up50, p99 $up99)  batched $b req/s (p50 $bp50, p99 $bp99)" >&2
done
U=$(median "${U[@]}"); B=$(median "${B[@]}")
curl -s "http://127.0.0.1:$PORT/status" | $PY -c 'import json,sys; m=json.load(sys.stdin)["models"]["big"]; print("batched predicts per forward pass: %.1f" % (m["batched_predicts"] / max(m["batches"], 1)))'
printf 'unbatched %.0f req/s, batched %.0f req/s: %.2fx\n' "$U" "$B" "$(echo "$B / $U" | bc -l)"
