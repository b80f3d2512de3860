#!/bin/bash
# bench/codec_bench.sh [OLD_COMMIT]: bench/codec_bench.c against this
# tree's codec and against OLD_COMMIT's (default: the last commit with
# the cJSON codec), one after the other, on one core.
set -euo pipefail
cd "$(dirname "$0")/.."

OLD=${1:-2471ffc}
OUT=build/bench/codec
CFLAGS="-std=c99 -D_POSIX_C_SOURCE=200809L -O2 -g"
mkdir -p $OUT/old/src/core

# the old codec's files, as they were at OLD
for f in $(git ls-tree --name-only "$OLD" src/core/ | grep -E 'lt_(codec|mp|json|tensor)'); do
    git show "$OLD:$f" > $OUT/old/$f
done

cc $CFLAGS -Isrc/core bench/codec_bench.c \
    src/core/lt_codec_*.c src/core/lt_json.c src/core/lt_mp.c src/core/lt_tensor.c \
    -lmsgpackc -lm -o $OUT/codec_bench_new
cc $CFLAGS -I$OUT/old/src/core bench/codec_bench.c \
    $(ls $OUT/old/src/core/*.c) -lmsgpackc -lcjson -lm -lpthread \
    -o $OUT/codec_bench_old

echo "== old ($OLD: validator + cJSON, twin decoders)"
taskset -c 0 $OUT/codec_bench_old
echo "== new (this tree: lt_rd readers, one builder)"
taskset -c 0 $OUT/codec_bench_new
