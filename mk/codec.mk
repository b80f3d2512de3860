# mk/codec.mk: the codec's fuzzer (included by the top-level Makefile).
#
#   make fuzz-quick           build fuzz/fuzz_codec.c with libFuzzer, ASan and
#                             UBSan, run it 10 s on a copy of fuzz/corpus/
#   make fuzz [FUZZ_TIME=N]   the same for N seconds (default 300)
#
# Everything is built and run under build/fuzz; new inputs libFuzzer finds
# stay in build/fuzz/corpus between runs, crashes go to build/fuzz/artifacts
# (reproduce one with: build/fuzz/fuzz_codec build/fuzz/artifacts/crash-...).
# fuzz/corpus/ holds the seeds, written by fuzz/gen_corpus.py.
#
# t/unit/test_codec.c is built by the Makefile's unit rules (make unit, and
# mk/core.mk's unit-asan / unit-valgrind); its generated fixture is below.

FUZZ_CC          ?= clang-14
FUZZ_TIME        ?= 300
FUZZ_CODEC_DIR   := $(BUILD)/fuzz
FUZZ_CODEC_BIN   := $(FUZZ_CODEC_DIR)/fuzz_codec
FUZZ_CODEC_SRCS  := fuzz/fuzz_codec.c src/core/lt_codec_body.c \
                    src/core/lt_codec_dec.c src/core/lt_codec_enc.c \
                    src/core/lt_codec_feedback.c src/core/lt_codec_named.c \
                    src/core/lt_codec_job.c \
                    src/core/lt_codec_tensor.c src/core/lt_json.c \
                    src/core/lt_mp.c src/core/lt_tensor.c
FUZZ_CODEC_FLAGS := -std=c99 -D_POSIX_C_SOURCE=200809L -g -O1 -pthread \
                    -fsanitize=fuzzer,address,undefined \
                    -fno-sanitize-recover=undefined -Isrc/core
FUZZ_CODEC_RUN   := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
                    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

.PHONY: fuzz fuzz-quick fuzz-codec-run

# bodies made by Python's msgpack_numpy (generated, and committed)
$(BUILD)/unit/test_codec $(BUILD)/asan/unit/test_codec: \
    t/unit/fixtures/codec_vectors.h

t/unit/fixtures/codec_vectors.h: t/unit/fixtures/gen_codec.py
	$(PY) $< > $@.tmp && mv $@.tmp $@

$(FUZZ_CODEC_BIN): $(FUZZ_CODEC_SRCS) src/core/lt_codec.h src/core/lt_codec_int.h src/core/lt_job.h \
                   src/core/lt_tensor.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CODEC_FLAGS) $(FUZZ_CODEC_SRCS) -lmsgpackc -lm \
	    -o $@

fuzz-codec-run: $(FUZZ_CODEC_BIN)
	@mkdir -p $(FUZZ_CODEC_DIR)/corpus $(FUZZ_CODEC_DIR)/artifacts
	cp fuzz/corpus/* $(FUZZ_CODEC_DIR)/corpus/
	$(FUZZ_CODEC_RUN) $(FUZZ_CODEC_BIN) -max_total_time=$(FUZZ_TIME) \
	    -rss_limit_mb=512 -malloc_limit_mb=64 -dict=fuzz/codec.dict \
	    -artifact_prefix=$(FUZZ_CODEC_DIR)/artifacts/ \
	    $(FUZZ_CODEC_DIR)/corpus

fuzz-quick:
	@$(MAKE) --no-print-directory fuzz-codec-run FUZZ_TIME=10

fuzz:
	@$(MAKE) --no-print-directory fuzz-codec-run FUZZ_TIME=$(FUZZ_TIME)
