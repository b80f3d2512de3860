# mk/jobs.mk: the dataset jobs (learn_job_*; included by the Makefile).
#
#   make fuzz-npy [FUZZ_TIME=N]  fuzz/fuzz_npy.c (the .npy/.npz readers)
#                                with libFuzzer, ASan and UBSan, N seconds
#                                (make fuzz-quick runs it 10 s)
#   make run-jobs                serve conf/jobs.conf on :8080: the seed's
#                                /train /input /output /status over the
#                                data root build/run-jobs/data
#   make bench-jobs              a job's samples/s against the core's own
#                                step rate (bench/jobs_bench.sh)
#
# t/unit/test_npy.c reads .npy/.npz files that numpy wrote
# (t/unit/fixtures/npy_vectors.h, from gen_npy.py: committed).

FUZZ_NPY_DIR   := $(BUILD)/fuzz-npy
FUZZ_NPY_BIN   := $(FUZZ_NPY_DIR)/fuzz_npy
FUZZ_NPY_SRCS  := fuzz/fuzz_npy.c src/core/lt_npy.c src/core/lt_npz.c \
                  src/core/lt_tensor.c

.PHONY: fuzz-npy fuzz-npy-run run-jobs bench-jobs

$(BUILD)/unit/test_npy $(BUILD)/asan/unit/test_npy: \
    t/unit/fixtures/npy_vectors.h

t/unit/fixtures/npy_vectors.h: t/unit/fixtures/gen_npy.py
	$(PY) $< > $@.tmp && mv $@.tmp $@

$(FUZZ_NPY_BIN): $(FUZZ_NPY_SRCS) src/core/lt_npy.h src/core/lt_tensor.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CODEC_FLAGS) $(FUZZ_NPY_SRCS) -lz -lm -o $@

fuzz-npy-run: $(FUZZ_NPY_BIN)
	@mkdir -p $(FUZZ_NPY_DIR)/corpus $(FUZZ_NPY_DIR)/artifacts
	cp fuzz/corpus_npy/* $(FUZZ_NPY_DIR)/corpus/
	$(FUZZ_CODEC_RUN) $(FUZZ_NPY_BIN) -max_total_time=$(FUZZ_TIME) \
	    -rss_limit_mb=512 -malloc_limit_mb=64 \
	    -artifact_prefix=$(FUZZ_NPY_DIR)/artifacts/ $(FUZZ_NPY_DIR)/corpus

fuzz-npy:
	@$(MAKE) --no-print-directory fuzz-npy-run FUZZ_TIME=$(FUZZ_TIME)

# make fuzz-quick runs this fuzzer too (10 s)
fuzz-quick: fuzz-npy-quick

.PHONY: fuzz-npy-quick
fuzz-npy-quick:
	@$(MAKE) --no-print-directory fuzz-npy-run FUZZ_TIME=10

RUN_JOBS_PREFIX := $(BUILD)/run-jobs

run-jobs: deps all
	mkdir -p $(RUN_JOBS_PREFIX)/logs $(RUN_JOBS_PREFIX)/data \
	    $(RUN_JOBS_PREFIX)/state
	chmod 0777 $(RUN_JOBS_PREFIX)/data $(RUN_JOBS_PREFIX)/state
	@user=$$($(WORKER_USER) $(RUN_JOBS_PREFIX)/state \
	             $(BUILD)/ngx_http_learn_module.so) || exit 1; \
	echo "serving conf/jobs.conf on http://127.0.0.1:8080, data root" \
	     "$(RUN_JOBS_PREFIX)/data (Ctrl-C stops);" \
	     "try: $(PY) examples/digits_jobs.py"; \
	set -x; OPENBLAS_NUM_THREADS=1 $(NGINX) -p $(RUN_JOBS_PREFIX)/ \
	    -c $(ROOT)/conf/jobs.conf -g "$(LOAD_MODULE) daemon off; $$user"

$(BUILD)/bench/jobs_step_bench: bench/jobs_step_bench.c $(BUILD)/core/liblt.a
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -Isrc/core $< $(BUILD)/core/liblt.a \
	    $(CORE_LIBS) -o $@

bench-jobs: all $(BUILD)/bench/core_bench $(BUILD)/bench/jobs_step_bench
	PY=$(PY) bench/jobs_bench.sh $(BENCH_ROUNDS)
