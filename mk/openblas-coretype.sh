#!/bin/bash
# Prints the OPENBLAS_CORETYPE to start nginx (and the benchmarks) with,
# or nothing when OpenBLAS picks fitting kernels itself.
#
# Debian 12's OpenBLAS 0.3.21 does not know recent CPUs: on a Xeon it
# cannot name (family 6, model 207 here) it falls back to its SSE3
# "Prescott" kernels, about 3x slower than the AVX-512 ones on the same
# core (bench/README.md).  Then name the best set the CPU supports.
set -u
PY=${PY:-/usr/bin/python3}
core=$(env -u OPENBLAS_CORETYPE "$PY" - 2>/dev/null <<'PYEOF'
import ctypes
lib = ctypes.CDLL("libopenblas.so.0")
lib.openblas_get_corename.restype = ctypes.c_char_p
print(lib.openblas_get_corename().decode())
PYEOF
) || exit 0

case "$core" in
    Prescott|Core2|Penryn|Dunnington|Nehalem|Atom|Katmai|Coppermine|Northwood|Banias)
        if grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo; then
            echo SkylakeX
        elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
            echo Haswell
        elif grep -qw avx /proc/cpuinfo; then
            echo Sandybridge
        fi
        ;;
esac
