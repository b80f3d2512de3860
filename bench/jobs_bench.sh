#!/bin/bash
# bench/jobs_bench.sh [ROUNDS]: a train job's samples/s against the core's
# own step rate, on the 784-256-10 MLP (lua/models/mlp_784_256.lua, the
# net bench/core_bench.c times) at batch 64, one OpenBLAS thread each.
#
#   make bench-jobs     builds the module and build/bench/core_bench
#
# The job reads 16384 random rows from an .npz under its data root and
# runs 6 epochs.  core_bench reports the best of 7 runs of 0.2 s; the
# job's figure that compares with it is its best epoch (rows / that
# epoch's seconds, from the status' history: 256 steps, about as long as
# one of core_bench's runs); its mean over all epochs (the status'
# samples_per_s, the file read excluded) is printed beside it.  Each is
# the median of ROUNDS (default 3) rounds, alternated with core_bench,
# so a busy machine slows both alike.  build/bench/jobs_step_bench
# times, outside nginx on the job's 16384 rows (in order, and gathered as
# a shuffled job gathers them), the zone's step as learn_train runs it
# (out of place, double buffer, finite check) and the in-place step that
# a job's run of steps takes between its first and last, to tell the
# step from the job around it.
#
# BEFORE=OLD.so bench/jobs_bench.sh [ROUNDS] also runs the jobs on
# another build of the module in every round (nginx restarted with it),
# and prints its rows beside this build's: a before/after in one run.
# Put OLD.so one directory below the checkout (e.g. before/...so): the
# module finds lua/ two levels above the .so it was loaded from.

set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=${1:-3}
PY=${PY:-/usr/bin/python3}
NGINX=${NGINX:-/usr/sbin/nginx}
ROOT=$(pwd)
PREFIX=$ROOT/build/bench-jobs
PORT=${PORT:-18431}

export OPENBLAS_NUM_THREADS=1
if [ -z "${OPENBLAS_CORETYPE+set}" ]; then
    core=$(PY=$PY mk/openblas-coretype.sh)
    if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
fi

rm -rf "$PREFIX"
mkdir -p "$PREFIX/logs" "$PREFIX/tmp" "$PREFIX/data"
chmod 0777 "$PREFIX/data"

"$PY" -c "
import numpy as np
r = np.random.default_rng(1)
np.savez('$PREFIX/data/train.npz', x=r.random((16384, 784), dtype=np.float32),
         y=r.integers(0, 10, 16384))"

user=$(mk/worker-user.sh "$PREFIX/data" "$ROOT/build/ngx_http_learn_module.so" \
       2>/dev/null | head -1 || true)

# start_nginx MODULE: the bench's nginx with that build of the module
start_nginx() {
    cat > "$PREFIX/nginx.conf" <<_EOC_
load_module $1;
$user
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log notice;
events {}
http {
    access_log off;
    client_body_temp_path tmp;
    learn_model mlp models/mlp_784_256.lua seed=1;
    learn_data_root data;
    server {
        listen 127.0.0.1:$PORT;
        location = /train  { learn_job_train mlp; }
        location = /status { learn_job_status; }
    }
}
_EOC_
    "$NGINX" -p "$PREFIX/" -c nginx.conf
    wait_listening "$PORT"
}

stop_nginx() {
    local pid
    pid=$(cat "$PREFIX/logs/nginx.pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

trap stop_nginx EXIT

job() {
    local id st
    id=$(curl -s -XPOST -H 'Content-Type: application/json' \
         -d "{\"files\": [\"train.npz\"], \"epochs\": 6, \"batch_size\": 64, \"shuffle\": $1}" \
         "http://127.0.0.1:$PORT/train" | sed 's/.*"jobId": "\([0-9a-f]*\)".*/\1/')
    while :; do
        st=$(curl -s "http://127.0.0.1:$PORT/status?jobId=$id")
        case $st in
        *'"status": "done"'*) break ;;
        *'"status": "running"'*|*'"status": "queued"'*) sleep 0.1 ;;
        *) echo "job failed: $st" >&2; return 1 ;;
        esac
    done
    # "best mean": the best epoch's rate, and the whole job's
    echo "$st" | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
h = j["history"]
t = [0.0] + [e["seconds"] for e in h]
best = max(j["rows"] / (t[i + 1] - t[i]) for i in range(len(h)))
print("%.0f %.0f" % (best, j["samples_per_s"]))'
}

core_rate() {
    build/bench/core_bench | awk '$1 ~ /^mlp/ && $2 == 64 { printf "%.0f\n", 64000 / $3 }'
}

MODULE=${MODULE:-$ROOT/build/ngx_http_learn_module.so}

cores=() zone=() gath=() ind=() ing=() pb=() pm=() sb=() sm=() opb=() opm=() osb=() osm=()
for _ in $(seq "$ROUNDS"); do
    cores+=("$(core_rate)")
    read -r zd zg id ig <<< "$(build/bench/jobs_step_bench \
        | awk '$1 == "zone+data" { d = $2 } $1 == "zone+gather" { g = $2 }
               $1 == "inplace+data" { i = $2 } $1 == "inplace+gather" { j = $2 }
               END { print d, g, i, j }')"
    zone+=("$zd"); gath+=("$zg"); ind+=("$id"); ing+=("$ig")
    start_nginx "$MODULE"
    read -r b m <<< "$(job false)"; pb+=("$b"); pm+=("$m")
    read -r b m <<< "$(job true)"; sb+=("$b"); sm+=("$m")
    stop_nginx
    if [ -n "${BEFORE:-}" ]; then
        start_nginx "$BEFORE"
        read -r b m <<< "$(job false)"; opb+=("$b"); opm+=("$m")
        read -r b m <<< "$(job true)"; osb+=("$b"); osm+=("$m")
        stop_nginx
    fi
done

c=$(median "${cores[@]}")
z=$(median "${zone[@]}")
g=$(median "${gath[@]}")
ri=$(median "${ind[@]}")
rg=$(median "${ing[@]}")

ratio() { echo "$1 / $c" | bc -l; }

echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores;" \
     "OpenBLAS threads: 1, kernels: ${OPENBLAS_CORETYPE:-as detected}"
echo "784-256-10, SGD lr 0.01, batch 64, 16384 rows x 6 epochs;" \
     "medians of $ROUNDS rounds"
printf "%-44s %10s %8s\n" "" "samples/s" "vs core"
printf "%-44s %10.0f %8.3f\n" "core_bench (in place, best of 7 x 0.2 s)" "$c" 1
printf "%-44s %10.0f %8.3f\n" "zone step, rows in order (jobs_step_bench)" "$z" "$(ratio "$z")"
printf "%-44s %10.0f %8.3f\n" "zone step, rows gathered (jobs_step_bench)" "$g" "$(ratio "$g")"
printf "%-44s %10.0f %8.3f\n" "in place, rows in order (jobs_step_bench)" "$ri" "$(ratio "$ri")"
printf "%-44s %10.0f %8.3f\n" "in place, rows gathered (jobs_step_bench)" "$rg" "$(ratio "$rg")"
rows=("shuffle false:$(median "${pb[@]}"):$(median "${pm[@]}")"
      "shuffle true:$(median "${sb[@]}"):$(median "${sm[@]}")")
if [ -n "${BEFORE:-}" ]; then
    rows+=("BEFORE, shuffle false:$(median "${opb[@]}"):$(median "${opm[@]}")"
           "BEFORE, shuffle true:$(median "${osb[@]}"):$(median "${osm[@]}")")
fi
for v in "${rows[@]}"; do
    IFS=: read -r name best mean <<< "$v"
    printf "%-44s %10.0f %8.3f\n" "job, $name, best epoch" "$best" "$(ratio "$best")"
    printf "%-44s %10.0f %8.3f\n" "job, $name, all epochs" "$mean" "$(ratio "$mean")"
done
