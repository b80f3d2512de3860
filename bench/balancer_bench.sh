#!/bin/bash
# Balancers compared in one run: three backends on 127.0.0.1, one of them
# 10x slower (echo_sleep 1 ms, 1 ms, 10 ms), behind a front nginx with one
# upstream per method: round robin, least_conn, random two, hash
# $request_id, learn_balancer.  wrk -t2 -c64 --latency against each.
# Prints req/s, p50, p99, the slow backend's share of the requests, and
# learn_balancer's mean pick time from learn_status.  A last row,
# fast_only, is round robin over the two fast backends alone: what a
# balancer that knew the slow one from the start would get on this
# machine, the bound for learn_balancer's row.
#   bench/balancer_bench.sh [SECONDS]   (make bench-balancer)
#   ROUNDS=N runs the five methods N times, interleaved (default 1)
#   MODULE=PATH benchmarks another build of the module (an A/B)
#   KEEPALIVE=0: a new connection to the backend per request (the front's
#   CPU then saturates: a second regime)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUR=${1:-10}
ROUNDS=${ROUNDS:-1}
PORT=${PORT:-28580}          # front: PORT..PORT+5, backends PORT+11..13
NGINX=${NGINX:-/usr/sbin/nginx}
ECHO_SO=${ECHO_SO:-/usr/lib/nginx/modules/ngx_http_echo_module.so}
PREFIX=$ROOT/build/bench-balancer
FAST=${FAST:-0.001}
SLOW=${SLOW:-0.010}
LEARN_OPTS=${LEARN_OPTS:-}     # e.g. "explore=0.01"
FRONT_WORKERS=${FRONT_WORKERS:-2}
KEEPALIVE=${KEEPALIVE:-64}
MODULE=${MODULE:-$ROOT/build/ngx_http_learn_module.so}

B1=$((PORT + 11)); B2=$((PORT + 12)); B3=$((PORT + 13))

rm -rf "$PREFIX"
mkdir -p "$PREFIX/back/logs" "$PREFIX/front/logs" "$PREFIX/front/tmp" \
         "$PREFIX/back/tmp"

# a private copy: a rebuild that rewrites build/*.so in place must not
# change the code under a running nginx
cp "$MODULE" "$PREFIX/learn.so"
. "$ROOT/bench/lib.sh"
USER_LINE=$("$ROOT/mk/worker-user.sh" "$PREFIX/back/tmp" "$PREFIX/front/tmp" "$PREFIX/learn.so")

# the backends count their requests in their access logs
cat > "$PREFIX/back/nginx.conf" <<CONF
load_module $ECHO_SO;
worker_processes 1;
$USER_LINE
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
    log_format port '\$server_port';
    access_log logs/access.log port buffer=64k;
    client_body_temp_path tmp;
    keepalive_requests 100000;
    server { listen 127.0.0.1:$B1 backlog=4096;
             location / { echo_sleep $FAST; echo fast1; } }
    server { listen 127.0.0.1:$B2 backlog=4096;
             location / { echo_sleep $FAST; echo fast2; } }
    server { listen 127.0.0.1:$B3 backlog=4096;
             location / { echo_sleep $SLOW; echo slow; } }
}
CONF

upstream() {   # name method
    cat <<UP
    upstream $1 {
        $2
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
        $([ "$1" = fast_only ] || echo "server 127.0.0.1:$B3;")
        $([ "$KEEPALIVE" -gt 0 ] && echo "keepalive $KEEPALIVE;")
    }
UP
}

front() {      # port upstream
    cat <<SRV
    server {
        listen 127.0.0.1:$1 backlog=4096;
        location / {
            proxy_pass http://$2;
            $([ "$KEEPALIVE" -gt 0 ] && echo 'proxy_http_version 1.1;
            proxy_set_header Connection "";')
        }
        location = /status { learn_status; }
    }
SRV
}

cat > "$PREFIX/front/nginx.conf" <<CONF
load_module $PREFIX/learn.so;
worker_processes $FRONT_WORKERS;
$USER_LINE
${CORE_DIR:+worker_rlimit_core 1g; working_directory $CORE_DIR;}
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path tmp;
    keepalive_requests 100000;
$(upstream rr "")
$(upstream least_conn "least_conn;")
$(upstream random_two "random two;")
$(upstream hash 'hash $request_id;')
$(upstream learn "learn_balancer $LEARN_OPTS;")
$(upstream fast_only "")
$(front $PORT rr)
$(front $((PORT + 1)) least_conn)
$(front $((PORT + 2)) random_two)
$(front $((PORT + 3)) hash)
$(front $((PORT + 4)) learn)
$(front $((PORT + 5)) fast_only)
}
CONF

"$NGINX" -p "$PREFIX/back/" -c nginx.conf
"$NGINX" -p "$PREFIX/front/" -c nginx.conf
stop() {
    kill -QUIT "$(cat "$PREFIX/front/logs/nginx.pid")" 2>/dev/null || true
    kill -QUIT "$(cat "$PREFIX/back/logs/nginx.pid")" 2>/dev/null || true
}
trap stop EXIT
wait_listening "$B1" "$B2" "$B3" "$PORT" $((PORT + 1)) $((PORT + 2)) $((PORT + 3)) \
    $((PORT + 4)) $((PORT + 5))

# wrk prints latencies as 1.23ms, 456.00us or 1.20s: in ms
ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; \
        else if (v ~ /s$/) n *= 1000
        printf "%.2f", n }'
}

methods="rr least_conn random_two hash learn fast_only"

echo "backends ${FAST}s ${FAST}s ${SLOW}s; upstream keepalive: $KEEPALIVE;" \
     "front workers: $FRONT_WORKERS; wrk -t2 -c64 -d${DUR}s;" \
     "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf "%-12s %10s %9s %9s %7s\n" method "req/s" "p50 ms" "p99 ms" "slow %"

for round in $(seq 1 "$ROUNDS"); do
    i=0
    for m in $methods; do
        p=$((PORT + i)); i=$((i + 1))

        # warm up (learn_balancer learns here too), then measure
        wrk -t2 -c64 -d2s "http://127.0.0.1:$p/" > /dev/null

        kill -USR1 "$(cat "$PREFIX/back/logs/nginx.pid")"   # reopen log
        sleep 0.2
        : > "$PREFIX/back/logs/access.log"

        wrk -t2 -c64 -d"${DUR}s" --latency "http://127.0.0.1:$p/" \
            > "$PREFIX/$m.$round.txt"

        kill -USR1 "$(cat "$PREFIX/back/logs/nginx.pid")"   # flush
        sleep 0.3

        if grep -q "Non-2xx\|Socket errors" "$PREFIX/$m.$round.txt"; then
            echo "$m: errors:" >&2
            cat "$PREFIX/$m.$round.txt" >&2
        fi

        rps=$(awk '/Requests\/sec/ {print $2}' "$PREFIX/$m.$round.txt")
        p50=$(ms "$(awk '$1 == "50%" {print $2}' "$PREFIX/$m.$round.txt")")
        p99=$(ms "$(awk '$1 == "99%" {print $2}' "$PREFIX/$m.$round.txt")")
        slow=$(awk -v s="$B3" '{ n++; if ($1 == s) k++ }
                   END { printf "%.1f", n ? 100 * k / n : 0 }' \
                   "$PREFIX/back/logs/access.log")

        printf "%-12s %10.0f %9s %9s %7s\n" "$m" "$rps" "$p50" "$p99" "$slow"
    done
done

curl -s "http://127.0.0.1:$((PORT + 4))/status" > "$PREFIX/status.json"
/usr/bin/python3 - "$PREFIX/status.json" <<'PY'
import json, sys
u = json.load(open(sys.argv[1]))["upstreams"]["learn"]
print("learn_balancer: %d picks, mean pick %d ns (two clock reads "
      "included), model error %.2f ms" % (u["picks"], u["pick_ns"],
                                          u["error_ms"]))
for name, p in u["peers"].items():
    print("  %-18s picks %-8d predicted %.2f ms  observed %.2f ms"
          % (name, p["picks"], p["predicted_ms"], p["observed_ms"]))
PY
