#!/bin/bash
# What a learn_set variable costs a request: one nginx, 2 workers, wrk
# -t2 -c64 on GET locations that answer `return 200 "x"` and
# `return 200 "$score"` (learn_set of the WebTorch XOR net, 2-20-1 tanh,
# on $arg_a $arg_b), plus a learn_counter and both together.  Rounds are
# interleaved; medians, and the ratios to `return 200 "x"`.  "cpu us/req"
# is the CPU time (user + system, from /proc) the workers spent per
# answered request: what a variable adds to a request, independent of
# how much of the cores wrk and other processes took.
#   bench/vars_bench.sh [SECONDS]  (make bench-vars; ROUNDS=3 by default)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUR=${1:-5}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18081}
NGINX=${NGINX:-/usr/sbin/nginx}
PREFIX=$ROOT/build/bench-vars
if [ -z "${OPENBLAS_CORETYPE+set}" ]; then
    core=$(PY=/usr/bin/python3 "$ROOT/mk/openblas-coretype.sh")
    if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
fi

rm -rf "$PREFIX" && mkdir -p "$PREFIX/logs" "$PREFIX/tmp" "$PREFIX/conf"
. "$ROOT/bench/lib.sh"
USER_LINE=$("$ROOT/mk/worker-user.sh" "$PREFIX/tmp" "$ROOT/build/ngx_http_learn_module.so")

cat > "$PREFIX/conf/nginx.conf" <<CONF
load_module $ROOT/build/ngx_http_learn_module.so;
worker_processes 2;
$USER_LINE
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    learn_model xor models/xor.lua seed=1;
    learn_counter \$hits \$arg_who window=10s;
    learn_set \$score xor \$arg_a \$arg_b;
    learn_set \$rated xor \$hits \$arg_b;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location = /x { return 200 "x"; }
        location = /score { return 200 "\$score"; }
        location = /counter { return 200 "\$hits"; }
        location = /rated { return 200 "\$rated"; }
        location = /status { learn_status; }
    }
}
CONF

OPENBLAS_NUM_THREADS=1 "$NGINX" -p "$PREFIX/" -c conf/nginx.conf
trap 'kill -QUIT $(cat "$PREFIX/logs/nginx.pid") 2>/dev/null || true' EXIT
wait_listening "$PORT"

run() {   # name uri -> req/s; the workers' CPU us per request in $1.cpu
    local t0 t1 n
    t0=$(worker_ticks)
    wrk -t2 -c64 -d"${DUR}s" "http://127.0.0.1:$PORT$2" > "$PREFIX/$1.txt"
    t1=$(worker_ticks)
    if grep -q "Non-2xx" "$PREFIX/$1.txt"; then
        echo "$1: non-2xx answers:" >&2; cat "$PREFIX/$1.txt" >&2; exit 1
    fi
    n=$(awk '/requests in/ {print $1}' "$PREFIX/$1.txt")
    echo "($t1 - $t0) * 1000000 / $(getconf CLK_TCK) / $n" | bc -l \
        >> "$PREFIX/$1.cpu"
    awk '/Requests\/sec/ {print $2}' "$PREFIX/$1.txt"
}

# the answers are what the benchmark claims to measure
test "$(curl -s "http://127.0.0.1:$PORT/score?a=0&b=1")" != "" \
    || { echo "\$score is empty" >&2; exit 1; }
test "$(curl -s "http://127.0.0.1:$PORT/rated?who=me&b=1")" != "" \
    || { echo "\$rated is empty" >&2; exit 1; }

echo "wrk -t2 -c64, ${ROUNDS} rounds of ${DUR}s each, interleaved; nginx 2" \
     "workers; XOR 2-20-1 tanh; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); median of rounds" >&2
run warmup "/score?a=0&b=1" > /dev/null
X=(); S=(); C=(); B=()
for i in $(seq "$ROUNDS"); do
    X+=("$(run x /x)")
    S+=("$(run score '/score?a=0.5&b=0.25')")
    C+=("$(run counter '/counter?who=client1')")
    B+=("$(run rated '/rated?who=client1&b=0.25')")
    echo "  round $i: x ${X[-1]}  score ${S[-1]}  counter ${C[-1]}" \
         " counter+score ${B[-1]}" >&2
done
X=$(median "${X[@]}"); S=$(median "${S[@]}"); C=$(median "${C[@]}")
B=$(median "${B[@]}")
EVALS=$(curl -s "http://127.0.0.1:$PORT/status" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["models"]["xor"]["set_evals"])')

CX=$(median $(cat "$PREFIX/x.cpu"))
row() {   # label req/s cpu-file
    local cpu
    cpu=$(median $(cat "$PREFIX/$3.cpu"))
    printf '%-34s %10.0f %7.2f %9.2f %9.2f\n' "$1" "$2" \
        "$(echo "$2 / $X" | bc -l)" "$cpu" "$(echo "$cpu - $CX" | bc -l)"
}
printf '%-34s %10s %7s %9s %9s\n' location req/s ratio "cpu us/req" "+us/req"
row 'return 200 "x"' "$X" x
row 'return 200 "$score" (learn_set)' "$S" score
row 'return 200 "$hits" (learn_counter)' "$C" counter
row 'return 200 "$rated" (both)' "$B" rated
echo "learn_set evaluations counted by learn_status: $EVALS"
