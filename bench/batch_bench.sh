#!/bin/bash
# learn_predict requests/s of a 784-1024-1024-10 MLP (1.86M parameters),
# one-sample msgpack-numpy bodies, wrk -t2 -c64, nginx 2 workers: without
# and with learn_batch, interleaved, median of rounds.  Beside req/s it
# prints the workers' CPU time per answered request (user + system, all
# their threads, from /proc), and, in the same run, what batching gains
# the hardware itself: numpy's forward pass of the same net on one
# OpenBLAS thread, rows/s at batch 1 against batch N, N the mean batch
# learn_batch formed (best of 5 half-second runs each).  wrk shares the
# machine's cores with nginx, so req/s also carries the client's cost,
# which batching does not shrink; the CPU per request is the figure that
# compares with numpy's rows per CPU second.
#   bench/batch_bench.sh [SECONDS]     (make bench-batch; ROUNDS=3)
#   CONNS=8 bench/batch_bench.sh       a light load: wrk -t2 -c8, small batches
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
CONNS=${CONNS:-64}

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
trap 'kill -QUIT $(cat "$PREFIX/logs/nginx.pid" 2>/dev/null) 2>/dev/null || true' EXIT
wait_listening "$PORT"

run() {   # uri -> "req/s p50 p99 cpu_us_per_request"
    local t0 t1
    t0=$(worker_ticks)
    BODY=$PREFIX/predict.mp wrk -t2 -c"$CONNS" -d"${DUR}s" --latency \
        -s "$ROOT/bench/post.lua" "http://127.0.0.1:$PORT$1" > "$PREFIX/out.txt"
    t1=$(worker_ticks)
    if grep -q "Non-2xx" "$PREFIX/out.txt"; then cat "$PREFIX/out.txt" >&2; exit 1; fi
    awk -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v dur="$DUR" '
        /Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
        END {printf "%s %s %s %.1f\n", r, p50, p99, ticks * 1e6 / hz / (r * dur)}' "$PREFIX/out.txt"
}
echo "wrk -t2 -c$CONNS -d${DUR}s, ${ROUNDS} rounds; nginx 2 workers; 784-1024-1024-10; learn_batch $BATCH" >&2
U=(); B=(); UC=(); BC=()
for i in $(seq "$ROUNDS"); do
    read -r u up50 up99 uc < <(run /predict)
    read -r b bp50 bp99 bc < <(run /batched)
    U+=("$u"); B+=("$b"); UC+=("$uc"); BC+=("$bc")
    echo "  round $i: unbatched $u req/s (p50 $up50, p99 $up99, cpu $uc us/req)" \
         " batched $b req/s (p50 $bp50, p99 $bp99, cpu $bc us/req)" >&2
done
U=$(median "${U[@]}"); B=$(median "${B[@]}")
UC=$(median "${UC[@]}"); BC=$(median "${BC[@]}")
N=$(curl -s "http://127.0.0.1:$PORT/status" | $PY -c 'import json,sys; m=json.load(sys.stdin)["models"]["big"]; print("%.1f" % (m["batched_predicts"] / max(m["batches"], 1)))')
kill -QUIT "$(cat "$PREFIX/logs/nginx.pid")"
# numpy runs on a quiet machine: wait (10 s at most) for nginx to exit
for _ in $(seq 100); do [ -e "$PREFIX/logs/nginx.pid" ] || break; sleep 0.1; done
read -r N1 NN NB NBEST < <(OPENBLAS_NUM_THREADS=1 $PY - "$N" <<'PYEOF'
import sys, time, numpy as np
r = np.random.default_rng(0)
w = [(r.standard_normal((o, i), dtype=np.float32) * 0.03,
      np.zeros(o, dtype=np.float32)) for i, o in ((784, 1024), (1024, 1024), (1024, 10))]
def rows_per_s(n):
    x = r.random((n, 784), dtype=np.float32)
    best = 0
    for _ in range(5):
        k, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.5:
            h = x
            for j, (W, b) in enumerate(w):
                h = h @ W.T + b
                if j < 2:
                    np.maximum(h, 0, out=h)
            k += n
        best = max(best, k / (time.perf_counter() - t0))
    return best
one = rows_per_s(1)
at_n = rows_per_s(max(1, round(float(sys.argv[1]))))
best = max((rows_per_s(n), n) for n in (8, 16, 24, 28, 32, 48, 64))
print("%.0f %.0f %d %.0f" % (one, at_n, best[1], best[0]))
PYEOF
)
echo "batched predicts per forward pass: $N"
printf 'unbatched %.0f req/s, batched %.0f req/s: %.2fx\n' "$U" "$B" "$(echo "$B / $U" | bc -l)"
printf 'workers'"'"' CPU per request: unbatched %.1f us, batched %.1f us: %.2fx\n' \
    "$UC" "$BC" "$(echo "$UC / $BC" | bc -l)"
printf 'numpy, one OpenBLAS thread: %.0f rows/s at batch 1, %.0f at batch %.0f: %.2fx\n' \
    "$N1" "$NN" "$N" "$(echo "$NN / $N1" | bc -l)"
printf 'numpy'"'"'s best batch up to 64: %.0f rows/s at batch %d: %.2fx\n' \
    "$NBEST" "$NB" "$(echo "$NBEST / $N1" | bc -l)"
printf 'learn_batch over numpy'"'"'s gain at batch %.0f: %.2f by req/s, %.2f by CPU per request\n' \
    "$N" "$(echo "($B / $U) / ($NN / $N1)" | bc -l)" "$(echo "($UC / $BC) / ($NN / $N1)" | bc -l)"
printf 'learn_batch over numpy'"'"'s best gain: %.2f by req/s, %.2f by CPU per request\n' \
    "$(echo "($B / $U) / ($NBEST / $N1)" | bc -l)" "$(echo "($UC / $BC) / ($NBEST / $N1)" | bc -l)"
