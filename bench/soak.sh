#!/bin/bash
# Soak: REQUESTS mixed requests (bench/soak.lua: predicts and trains in
# JSON and MessagePack, refused bodies and poisoning labels, kept-version
# lookups, learn_batch, the thread pool, learn_set and learn_counter
# variables, feedback for unknown ids, weights, status, Prometheus, and a
# learn_balancer upstream) on one nginx with 2 workers, in rounds of
# ROUND requests.  After WARMUP requests the workers' resident memory
# (VmRSS, summed) is the baseline; at the end it must be within 5% of it,
# the workers must be the same processes (none crashed and was
# replaced), and no request may have had a 5xx or error.log an alert.
# A round is ROUND_S seconds of wrk -t2 -c32; rounds go on until
# REQUESTS have been answered.
#   bench/soak.sh [REQUESTS]   (make soak; 1000000 by default)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOTAL=${1:-1000000}
WARMUP=${WARMUP:-200000}
ROUND_S=${ROUND_S:-2}
PORT=${PORT:-18090}
NGINX=${NGINX:-/usr/sbin/nginx}
PREFIX=$ROOT/build/soak
if [ -z "${OPENBLAS_CORETYPE+set}" ]; then
    core=$(PY=/usr/bin/python3 "$ROOT/mk/openblas-coretype.sh")
    if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
fi

rm -rf "$PREFIX" && mkdir -p "$PREFIX/logs" "$PREFIX/tmp" "$PREFIX/conf" \
                             "$PREFIX/state" "$PREFIX/bodies"
chmod 0777 "$PREFIX/state"
. "$ROOT/bench/lib.sh"
USER_LINE=$("$ROOT/mk/worker-user.sh" "$PREFIX/state" "$ROOT/build/ngx_http_learn_module.so")

/usr/bin/python3 - "$PREFIX/bodies" <<'PY'
import sys, msgpack, numpy as np, msgpack_numpy
d = sys.argv[1]
pack = lambda o: msgpack.packb(o, default=msgpack_numpy.encode)
open(d + "/predict.msgpack", "wb").write(
    pack({"x": np.array([[0, 1], [1, 0], [1, 1], [0, 0]], dtype=np.float32)}))
open(d + "/train.msgpack", "wb").write(
    pack({"x": np.array([[0, 0], [1, 1]], dtype=np.float32),
          "y": np.array([[0], [0]], dtype=np.float32)}))
open(d + "/garbage.bin", "wb").write(b"\x85\xa1x\xdd\xff\xff\xff\xff" + bytes(range(64)))
PY

cat > "$PREFIX/conf/nginx.conf" <<CONF
load_module $ROOT/build/ngx_http_learn_module.so;
worker_processes 2;
$USER_LINE
pid logs/nginx.pid;
error_log logs/error.log warn;
thread_pool soak threads=2;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    learn_model xor $ROOT/lua/models/xor.lua seed=1
                checkpoint=state/xor.ckpt checkpoint_interval=100ms
                checkpoint_keep=3;
    learn_counter \$hits \$arg_who window=10s zone=soak_hits:1m;
    learn_set \$score xor \$arg_a \$arg_b;
    upstream back {
        learn_balancer zone=soak_pins:1m;
        server 127.0.0.1:$((PORT + 1));
        server 127.0.0.1:$((PORT + 2));
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$((PORT + 1));
        listen 127.0.0.1:$((PORT + 2));
        location / { return 200 "up\n"; }
    }
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location = /predict { learn_predict xor; }
        location = /batched { learn_predict xor; learn_batch max=16; }
        location = /train { learn_train xor; }
        location = /pooled { learn_train xor; learn_thread_pool soak threshold=0; }
        location = /weights { learn_weights xor; }
        location = /feedback { learn_feedback xor keep=1024; }
        location = /score { return 200 "\$score"; }
        location = /counter { return 200 "\$hits"; }
        location = /status { learn_status; }
        location = /up {
            proxy_pass http://back/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF

OPENBLAS_NUM_THREADS=1 "$NGINX" -p "$PREFIX/" -c conf/nginx.conf
trap 'kill -QUIT $(cat "$PREFIX/logs/nginx.pid") 2>/dev/null || true' EXIT
wait_listening "$PORT"
MASTER=$(cat "$PREFIX/logs/nginx.pid")

workers() { pgrep -P "$MASTER" -f 'worker process' | sort | tr '\n' ' '; }
# FIELD summed over the workers, in kB: VmRSS (all resident memory),
# RssAnon (the heap and other private memory), RssShmem (the shared zones
# and the model's pages as far as this worker touched them)
sum_kb() {
    local t=0 p
    for p in $(workers); do
        t=$((t + $(awk -v f="$1:" '$1 == f { print $2 }' "/proc/$p/status")))
    done
    echo "$t"
}

for _ in $(seq 100); do
    [ "$(workers | wc -w)" -ge 2 ] && break
    sleep 0.1
done
PIDS=$(workers)
echo "soak: $TOTAL requests in rounds of ${ROUND_S}s, baseline after $WARMUP;" \
     "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
printf '%10s %10s %12s %9s %10s %10s\n' requests req/s "rss kB" "vs base" \
       "anon kB" "shmem kB"

done_n=0 base=0 fails=0
while [ "$done_n" -lt "$TOTAL" ]; do
    out=$(SOAK_DIR="$PREFIX/bodies" \
          wrk -t2 -c32 -d"${ROUND_S}s" -s "$ROOT/bench/soak.lua" \
          "http://127.0.0.1:$PORT" 2>"$PREFIX/wrk.err")
    n=$(awk '/requests in/ { print $1 }' <<<"$out")
    rps=$(awk '/Requests\/sec/ { printf "%d", $2 }' <<<"$out")
    errs=$(grep -c 'soak: status' "$PREFIX/wrk.err" || true)
    fails=$((fails + errs))
    done_n=$((done_n + n))
    rss=$(sum_kb VmRSS)
    if [ "$base" -eq 0 ] && [ "$done_n" -ge "$WARMUP" ]; then base=$rss; fi
    if [ "$base" -gt 0 ]; then
        vs=$(awk -v a="$rss" -v b="$base" 'BEGIN { printf "%+.2f%%", (a - b) * 100 / b }')
    else
        vs=warm-up
    fi
    printf '%10d %10d %12d %9s %10d %10d\n' "$done_n" "$rps" "$rss" "$vs" \
           "$(sum_kb RssAnon)" "$(sum_kb RssShmem)"
done

growth=$(awk -v a="$rss" -v b="$base" 'BEGIN { printf "%.2f", (a - b) * 100 / b }')
alerts=$(grep -cE '\[(alert|crit|emerg)\]|signal [0-9]+' "$PREFIX/logs/error.log" || true)
ok=1
echo "rss after warm-up $base kB, at the end $rss kB: ${growth}%"
if awk -v g="$growth" 'BEGIN { exit !(g > 5 || g < -5) }'; then
    echo "FAIL: resident memory moved more than 5%"; ok=0
fi
if [ "$(workers)" != "$PIDS" ]; then
    echo "FAIL: the workers changed ($PIDS -> $(workers)): one crashed"; ok=0
fi
if [ "$fails" -gt 0 ]; then
    echo "FAIL: $fails answers were 5xx"; ok=0
fi
if [ "$alerts" -gt 0 ]; then
    echo "FAIL: $alerts alert/crit lines in error.log:"
    grep -E '\[(alert|crit|emerg)\]|signal [0-9]+' "$PREFIX/logs/error.log" | head -5; ok=0
fi
curl -s "http://127.0.0.1:$PORT/status" | /usr/bin/python3 -c '
import json, sys
m = json.load(sys.stdin)["models"]["xor"]
print("model: step", m["step"], "trains", m["trains"], "predicts", m["predicts"],
      "rejected_steps", m.get("rejected_steps"), "errors", m.get("errors"))'
[ "$ok" = 1 ] && echo "PASS" || exit 1
