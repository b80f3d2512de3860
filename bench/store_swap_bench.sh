#!/bin/bash
# Replication through Redis: predict throughput on a follower while it
# swaps versions in, against the same follower when nothing is
# published.  A redis-server of its own, a trainer (store=, mlp_big:
# 784-1024-1024-10, 15 MB per version, checkpoint_interval=250ms) and a
# follower (follow=), 2 workers each; wrk -t2 -c16 on the follower's
# /predict (one sample), DUR seconds "steady" (the trainer idle) and
# DUR seconds "swapping" (the trainer trains 10 steps/s, so a new
# version is published and swapped in about every 250 ms), twice each.
# Everything runs on the same machine: the trainer's steps, Redis and
# the follower's transfers take CPU from the follower's predicts too.
# A second part isolates the follower's own cost of a swap: the trainer
# is stopped, and the store's pointer is moved (SET latest, PUBLISH, as
# the trainer's script does) through the versions it keeps, one per
# second, so only Redis's send and the follower's fetch, check and
# publish run beside the predicts.
#   bench/store_swap_bench.sh [DUR]      (make bench-store-swap)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUR=${1:-5}
NGINX=${NGINX:-/usr/sbin/nginx}
PREFIX=$ROOT/build/bench-store-swap
PY=/usr/bin/python3
RPORT=${RPORT:-18194}
PORTS=(18195 18196)
if [ -z "${OPENBLAS_CORETYPE+set}" ]; then
    core=$(PY=$PY "$ROOT/mk/openblas-coretype.sh")
    if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
fi
command -v redis-server > /dev/null || { echo "redis-server is missing (Debian: redis-server)" >&2; exit 1; }
command -v wrk > /dev/null || { echo "wrk is missing (Debian: wrk)" >&2; exit 1; }

. "$ROOT/bench/lib.sh"
rm -rf "$PREFIX" && mkdir -p "$PREFIX/redis"

$PY - "$PREFIX" <<'PYEOF'
import sys, numpy as np, msgpack_numpy
p = sys.argv[1]
rng = np.random.default_rng(0)
open(p + "/predict.mp", "wb").write(msgpack_numpy.packb(
    {"x": rng.random((1, 784), dtype=np.float32)}))
open(p + "/train.mp", "wb").write(msgpack_numpy.packb(
    {"x": rng.random((8, 784), dtype=np.float32),
     "y": rng.integers(0, 10, 8).astype(np.int64)}))
PYEOF

redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$PREFIX/redis" --save '' \
    --appendonly no --daemonize no > "$PREFIX/redis/redis.log" 2>&1 &
RPID=$!
PIDS=()
TP=
cleanup() {
    if [ -n "$TP" ]; then kill "$TP" 2>/dev/null || true; fi
    for p in "${PIDS[@]}"; do kill -QUIT "$p" 2>/dev/null || true; done
    kill "$RPID" 2>/dev/null || true
    wait "$RPID" 2>/dev/null || true
}
trap cleanup EXIT
wait_listening "$RPORT"

start() {   # i extra-params
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
    learn_model m models/mlp_big.lua seed=1 $2;
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

url=redis://127.0.0.1:$RPORT/swap
start 0 "checkpoint=state/m.ckpt checkpoint_interval=250ms checkpoint_keep=15 store=$url"
start 1 "follow=$url"

transfers() {
    curl -s "http://127.0.0.1:${PORTS[1]}/status" | $PY -c \
        'import json,sys; print(json.load(sys.stdin)["models"]["m"]["store"]["transfers"])'
}

trainer() {   # 10 train steps per second until killed
    while :; do
        curl -s -o /dev/null -H 'Content-Type: application/msgpack' \
             --data-binary @"$PREFIX/train.mp" "http://127.0.0.1:${PORTS[0]}/train"
        sleep 0.1
    done
}

# a first version, so the follower serves
curl -s -o /dev/null -H 'Content-Type: application/msgpack' \
     --data-binary @"$PREFIX/train.mp" "http://127.0.0.1:${PORTS[0]}/train"
for _ in $(seq 100); do [ "$(transfers)" -ge 1 ] && break; sleep 0.1; done

echo "wrk -t2 -c16 -d${DUR}s predict (1 sample) on a follower, mlp_big, 2 workers each" >&2
printf '%-10s %9s %9s %9s %10s\n' run req/s p50_ms p99_ms swaps
declare -A RPS
for run in steady swapping steady swapping; do
    before=$(transfers)
    if [ $run = swapping ]; then trainer & TP=$!; sleep 0.3; fi
    BODY=$PREFIX/predict.mp wrk -t2 -c16 -d"${DUR}s" --latency \
        -s "$ROOT/bench/post.lua" "http://127.0.0.1:${PORTS[1]}/predict" > "$PREFIX/$run.txt"
    if [ -n "$TP" ]; then kill "$TP"; wait "$TP" 2>/dev/null || true; TP=; sleep 0.5; fi
    read -r p50 p99 rps < <(awk '$1=="50%" {print $2} $1=="99%" {print $2} /Requests\/sec/ {print $2}' \
                            "$PREFIX/$run.txt" | tr '\n' ' '; echo)
    ms() { echo "$1" | awk '/us$/ {sub("us",""); print $1/1000; next} /ms$/ {sub("ms",""); print $1; next} /s$/ {sub("s",""); print $1*1000}'; }
    printf '%-10s %9.0f %9.2f %9.2f %10s\n' $run "$rps" "$(ms $p50)" "$(ms $p99)" $(( $(transfers) - before ))
    RPS[$run]="${RPS[$run]:-} $rps"
done
best() { printf '%s\n' $1 | sort -g | tail -1; }
S=$(best "${RPS[steady]}"); W=$(best "${RPS[swapping]}")
printf 'req/s swapping / steady (best of 2 each): %.0f / %.0f = %.2f\n' "$W" "$S" "$(echo "$W / $S" | bc -l)"

# 2. the trainer stopped; the pointer moved through the kept versions
kill -QUIT "${PIDS[0]}"
while kill -0 "${PIDS[0]}" 2>/dev/null; do sleep 0.1; done
R="redis-cli -p $RPORT"
mapfile -t STEPS < <($R ZRANGE 'swap:{m}:versions' 0 -1)
[ "${#STEPS[@]}" -ge 6 ] || { echo "only ${#STEPS[@]} versions kept" >&2; exit 1; }
point() {   # step: the pointer and its notice, as the trainer's script
    local v
    v="$1:$(date +%s%3N)"
    $R SET 'swap:{m}:latest' "$v" > /dev/null
    $R PUBLISH 'swap:{m}:published' "$v" > /dev/null
}
served() {
    curl -s "http://127.0.0.1:${PORTS[1]}/status" | $PY -c \
        'import json,sys; print(json.load(sys.stdin)["models"]["m"]["step"])'
}
point "${STEPS[0]}"
for _ in $(seq 100); do [ "$(served)" = "${STEPS[0]}" ] && break; sleep 0.1; done
[ "$(served)" = "${STEPS[0]}" ] || { echo "the follower did not take version ${STEPS[0]}" >&2; exit 1; }

echo "the trainer stopped; ${#STEPS[@]} kept versions (${STEPS[0]}..${STEPS[-1]}); one swap per second" >&2
printf '%-10s %9s %9s %9s %10s\n' run req/s p50_ms p99_ms swaps
declare -A RRPS
NEXT=1
mover() {   # one version further every second until killed
    while [ "$NEXT" -lt "${#STEPS[@]}" ]; do
        sleep 1
        point "${STEPS[$NEXT]}"
        NEXT=$((NEXT + 1))
    done
}
for run in steady swapping steady swapping; do
    before=$(transfers)
    if [ $run = swapping ]; then
        if [ "$NEXT" -ge "${#STEPS[@]}" ]; then NEXT=1; point "${STEPS[0]}"; sleep 1; before=$(transfers); fi
        mover & TP=$!
    fi
    BODY=$PREFIX/predict.mp wrk -t2 -c16 -d"${DUR}s" --latency \
        -s "$ROOT/bench/post.lua" "http://127.0.0.1:${PORTS[1]}/predict" > "$PREFIX/r-$run.txt"
    if [ -n "$TP" ]; then kill "$TP"; wait "$TP" 2>/dev/null || true; TP=; NEXT=$((NEXT + DUR)); fi
    sleep 0.5
    read -r p50 p99 rps < <(awk '$1=="50%" {print $2} $1=="99%" {print $2} /Requests\/sec/ {print $2}' \
                            "$PREFIX/r-$run.txt" | tr '\n' ' '; echo)
    printf '%-10s %9.0f %9.2f %9.2f %10s\n' $run "$rps" "$(ms $p50)" "$(ms $p99)" $(( $(transfers) - before ))
    RRPS[$run]="${RRPS[$run]:-} $rps"
done
S=$(best "${RRPS[steady]}"); W=$(best "${RRPS[swapping]}")
printf 'replayed: req/s swapping / steady (best of 2 each): %.0f / %.0f = %.2f\n' "$W" "$S" "$(echo "$W / $S" | bc -l)"
