#!/bin/bash
# bench/core_bench.sh [CORE_BENCH]: the C core's train steps and forward
# passes against the same ones written in numpy (the MLP) and in PyTorch
# (every case), all on one thread, in one run.
#
#   make bench-core     builds build/bench/core_bench and runs this
#
# Prints the XOR step time and one table: the 784-256-10 MLP step, the
# LeNet-5 step and a Conv2d-heavy forward pass, with core_ms, numpy_ms,
# torch_ms and the ratios numpy/core and torch/core (above 1: the core is
# faster).  PyTorch runs with TORCH_PY (default /opt/torchenv/bin/python)
# under torch.set_num_threads(1); its column says "skipped (no torch)"
# when that python cannot import torch.

set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${1:-build/bench/core_bench}
PY=${PY:-/usr/bin/python3}
TORCH_PY=${TORCH_PY:-/opt/torchenv/bin/python}

# one BLAS thread for all, and OpenBLAS reads this when it loads
export OPENBLAS_NUM_THREADS=1
# and one OpenMP thread for torch (it also calls torch.set_num_threads(1))
export OMP_NUM_THREADS=1
# the same kernels for all (mk/openblas-coretype.sh), unless set
if [ -z "${OPENBLAS_CORETYPE+set}" ]; then
    core=$(PY=$PY mk/openblas-coretype.sh)
    if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
fi

core=$("$BIN")
numpy=$("$PY" bench/core_bench_numpy.py)
if "$TORCH_PY" -c 'import torch' >/dev/null 2>&1; then
    torch=$("$TORCH_PY" bench/core_bench_torch.py)
    torch_version=$("$TORCH_PY" -c 'import torch; print(torch.__version__)')
else
    torch=
    torch_version="skipped (no torch at $TORCH_PY)"
fi

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')," \
     "$(env -u OMP_NUM_THREADS nproc) cores; OpenBLAS threads: 1, kernels:" \
     "${OPENBLAS_CORETYPE:-as detected}; torch: $torch_version"
echo
echo "$core" | awk '$1 ~ /^xor/ {
    printf "XOR 2-20-1 Tanh, MSE, SGD lr 0.01, batch 1: %s %s per train step\n",
           $3, $4 }'
echo
echo "ms per train step (mlp, lenet5: cross-entropy, SGD lr 0.01) or per"
echo "forward pass (conv: Conv2d 3->32->32, 3x3, padding 1, ReLU, 32x32;"
echo "mlp_784_1024_1024: the ReLU net learn_batch serves in bench-batch):"
# the core's lines in its order; numpy's and torch's looked up by name
{
    echo "$core" | awk '$1 !~ /^xor/ { print "core", $1, $2, $3 }'
    echo "$numpy" | awk 'NF >= 3 { print "numpy", $1, $2, $3 }'
    echo "$torch" | awk 'NF >= 3 { print "torch", $1, $2, $3 }'
} | awk -v have_torch="${torch:+1}" '
    $1 == "core"  { key = $2 " " $3; order[n++] = key; core[key] = $4 }
    $1 == "numpy" { numpy[$2 " " $3] = $4 }
    $1 == "torch" { torch[$2 " " $3] = $4 }
    END {
        printf "%-26s %6s %10s %10s %10s %11s %11s\n", "case", "batch",
               "core_ms", "numpy_ms", "torch_ms", "numpy/core", "torch/core"
        for (i = 0; i < n; i++) {
            split(order[i], k, " ")
            c = core[order[i]]
            np_ms = (order[i] in numpy) ? sprintf("%.4f", numpy[order[i]]) : "-"
            np_r = (order[i] in numpy) ? sprintf("%.2fx", numpy[order[i]] / c) : "-"
            if (!have_torch) {
                t_ms = "skipped"; t_r = "(no torch)"
            } else if (order[i] in torch) {
                t_ms = sprintf("%.4f", torch[order[i]])
                t_r = sprintf("%.2fx", torch[order[i]] / c)
            } else {
                t_ms = "-"; t_r = "-"
            }
            printf "%-26s %6d %10.4f %10s %10s %11s %11s\n", k[1], k[2], c,
                   np_ms, t_ms, np_r, t_r
        }
    }'
