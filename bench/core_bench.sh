#!/bin/bash
# bench/core_bench.sh [CORE_BENCH]: the C core's train step against the
# same step written in numpy, both on one OpenBLAS thread.
#
#   make bench-core     builds build/bench/core_bench and runs this
#
# Prints the XOR step time and a table of 784-256-10 step times with the
# ratio numpy_time / core_time (above 1: the core is faster).

set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${1:-build/bench/core_bench}
PY=${PY:-/usr/bin/python3}

# one BLAS thread for both, and OpenBLAS reads this when it loads
export OPENBLAS_NUM_THREADS=1
# the same kernels for both (mk/openblas-coretype.sh), unless set
if [ -z "${OPENBLAS_CORETYPE+set}" ]; then
    core=$(PY=$PY mk/openblas-coretype.sh)
    if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
fi

core=$("$BIN")
numpy=$("$PY" bench/core_bench_numpy.py)

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')," \
     "$(nproc) cores; OpenBLAS threads: 1, kernels:" \
     "${OPENBLAS_CORETYPE:-as detected}"
echo
echo "$core" | awk '$1 ~ /^xor/ {
    printf "XOR 2-20-1 Tanh, MSE, SGD lr 0.01, batch 1: %s %s per train step\n",
           $3, $4 }'
echo
echo "784-256-10 ReLU, cross-entropy, SGD lr 0.01 (ms per train step):"
printf "%8s %12s %12s %12s\n" batch core_ms numpy_ms numpy/core
join <(echo "$core" | awk '$1 ~ /^mlp/ { print $2, $3 }' | sort) \
     <(echo "$numpy" | awk '$1 ~ /^mlp/ { print $2, $3 }' | sort) \
  | sort -n \
  | awk '{ printf "%8d %12.4f %12.4f %11.2fx\n", $1, $2, $3, $3 / $2 }'
