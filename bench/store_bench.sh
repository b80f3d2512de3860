#!/bin/bash
# Replication through Redis: how long from a checkpoint version on the
# trainer to every follower serving it.  A redis-server of its own, one
# trainer (store=, checkpoint_interval=100ms) and two followers
# (follow=), 2 workers each; per round one train step, then wait until
# both followers answer at that step.  Printed per model (XOR, and
# lua/models/mlp_big.lua: 784-1024-1024-10 with SGD momentum, 15 MB per
# version): the followers' lag_ms (learn_status: from the trainer's
# publication, right after its checkpoint file is on disk, to the
# follower serving it), and the time from the train answer to both
# followers serving (that includes the wait for the next checkpoint
# interval, 0-100 ms).
#   bench/store_bench.sh [ROUNDS]      (make bench-store)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${1:-20}
NGINX=${NGINX:-/usr/sbin/nginx}
PREFIX=$ROOT/build/bench-store
PY=/usr/bin/python3
RPORT=${RPORT:-18190}
PORTS=(18191 18192 18193)
if [ -z "${OPENBLAS_CORETYPE+set}" ]; then
    core=$(PY=$PY "$ROOT/mk/openblas-coretype.sh")
    if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
fi
command -v redis-server > /dev/null || { echo "redis-server is missing (Debian: redis-server)" >&2; exit 1; }

. "$ROOT/bench/lib.sh"
rm -rf "$PREFIX" && mkdir -p "$PREFIX/redis"

redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$PREFIX/redis" --save '' \
    --appendonly no --daemonize no > "$PREFIX/redis/redis.log" 2>&1 &
RPID=$!
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -QUIT "$p" 2>/dev/null || true; done
    kill "$RPID" 2>/dev/null || true
    wait "$RPID" 2>/dev/null || true
}
trap cleanup EXIT
wait_listening "$RPORT"

start() {   # i model extra-params
    local dir=$PREFIX/n$1 user
    rm -rf "$dir" && mkdir -p "$dir"/{logs,tmp,conf,state} && chmod 777 "$dir/state"
    user=$("$ROOT/mk/worker-user.sh" "$dir/state" "$dir/tmp" "$ROOT/build/ngx_http_learn_module.so")
    cat > "$dir/conf/nginx.conf" <<CONF
load_module $ROOT/build/ngx_http_learn_module.so;
worker_processes 2;
$user
pid logs/nginx.pid;
error_log logs/error.log notice;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    learn_model m $2 seed=1 $3;
    server {
        listen 127.0.0.1:${PORTS[$1]};
        location = /predict { learn_predict m; }
        location = /train { learn_train m; }
        location = /status { learn_status; }
    }
}
CONF
    OPENBLAS_NUM_THREADS=1 "$NGINX" -p "$dir/" -c conf/nginx.conf
    wait_listening "${PORTS[$1]}"
    PIDS+=("$(cat "$dir/logs/nginx.pid")")
}

stop_all() {
    for p in "${PIDS[@]}"; do kill -QUIT "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    done
    PIDS=()
}

run() {   # label model body-kind
    local url=redis://127.0.0.1:$RPORT/$1
    start 0 "$2" "checkpoint=state/m.ckpt checkpoint_interval=100ms store=$url"
    start 1 "$2" "follow=$url"
    start 2 "$2" "follow=$url"
    $PY - "$1" "$3" "$ROUNDS" "${PORTS[@]}" <<'PYEOF'
import json, sys, time, urllib.request
import numpy as np, msgpack_numpy
label, kind, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
ports = sys.argv[4:]
if kind == "xor":
    body = json.dumps({"x": [[0, 1], [1, 1]], "y": [[1], [0]]}).encode()
    ctype = "application/json"
else:
    rng = np.random.default_rng(0)
    body = msgpack_numpy.packb({"x": rng.random((8, 784), dtype=np.float32),
                                "y": rng.integers(0, 10, 8).astype(np.int64)})
    ctype = "application/msgpack"
def get(port, path):
    return urllib.request.urlopen("http://127.0.0.1:%s%s" % (port, path), timeout=10).read()
def model(port):
    return json.loads(get(port, "/status"))["models"]["m"]
lags, totals = [], []
for i in range(rounds):
    req = urllib.request.Request("http://127.0.0.1:%s/train" % ports[0], data=body,
                                 headers={"Content-Type": ctype,
                                          "Accept": "application/json"})
    step = json.loads(urllib.request.urlopen(req, timeout=30).read())["step"]
    t0 = time.time()
    pending = set(ports[1:])
    while pending:
        for p in list(pending):
            m = model(p)
            if m["step"] == step:
                pending.discard(p)
                lags.append(m["store"]["lag_ms"])
        if time.time() - t0 > 20:
            sys.exit("followers did not reach step %d" % step)
        time.sleep(0.002)
    totals.append((time.time() - t0) * 1000)
    time.sleep(0.15)
lags.sort(); totals.sort()
med = lambda v: v[len(v) // 2]
print("%-8s rounds %3d  publication->served ms: median %5.0f max %5.0f   "
      "train answered->both followers ms: median %5.0f max %5.0f"
      % (label, rounds, med(lags), lags[-1], med(totals), totals[-1]))
PYEOF
    stop_all
}

echo "1 trainer + 2 followers (2 workers each), one redis-server, 127.0.0.1" >&2
run xor models/xor.lua xor
run mlp_big models/mlp_big.lua mlp
