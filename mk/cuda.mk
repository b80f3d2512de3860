# mk/cuda.mk: the CUDA backend (src/core/cuda/), built only where nvcc is.
#
#   make cuda         build/cuda/liblt_cuda.a (the kernels and cuBLAS glue)
#                     and build/ngx_http_learn_cuda.so, the backend that
#                     the module's workers dlopen for device=cuda (`make`
#                     builds it too)
#   make unit-cuda    t/unit/cuda/test_cuda_*.c under prove: every op and
#                     whole train steps against the CPU backend; they
#                     skip (1..0 # SKIP) on a machine without a GPU
#   make bench-cuda   bench/cuda_bench.c: TFLOP/s of a 784-1024-1024-10 MLP
#                     against raw cuBLAS SGEMM (FP32 and TF32)
#
# CUDA_HOME (default /usr/local/cuda) is where the toolkit is; without
# $(CUDA_HOME)/bin/nvcc every target here only says so.  HAVE_CUDA is 1
# when nvcc exists.  Whatever links liblt_cuda.a also needs $(CUDA_LIBS).
#
# There may be no GPU where this builds, so the architectures are named,
# never -arch=native: SASS for sm_80 (A100, and by binary compatibility
# sm_86 / sm_89) and sm_90 (H100 / H200), and PTX for compute_90 that the
# driver compiles for later GPUs.

CUDA_HOME   ?= /usr/local/cuda
NVCC        := $(CUDA_HOME)/bin/nvcc
HAVE_CUDA   := $(if $(wildcard $(NVCC)),1,)

.PHONY: cuda unit-cuda bench-cuda

# the CPU-comparison tests, one program per part of the backend; the
# helpers they share are header-only (tap.h's way)
CUDA_TESTS      := test_cuda_backend test_cuda_optim test_cuda_layers
CUDA_TEST_HDRS  := t/unit/cuda/cuda_test.h t/unit/tap.h
CUDA_TEST_BINS  := $(addprefix $(BUILD)/cuda/,$(CUDA_TESTS))

ifeq ($(HAVE_CUDA),1)

# lib64 is usually a link to targets/<arch>/lib; take whichever exists
CUDA_LIBDIR ?= $(patsubst %/,%,$(dir $(firstword $(wildcard \
                   $(CUDA_HOME)/lib64/libcudart.so \
                   $(CUDA_HOME)/targets/x86_64-linux/lib/libcudart.so \
                   $(CUDA_HOME)/lib/libcudart.so))))
CUDA_LIBS   := -L$(CUDA_LIBDIR) -lcublas -lcudart -lstdc++ -lm \
               -Wl,-rpath,$(CUDA_LIBDIR)

CUDA_ARCH   ?= -gencode arch=compute_80,code=sm_80 \
               -gencode arch=compute_90,code=sm_90 \
               -gencode arch=compute_90,code=compute_90
CUDA_HOST_WARN := -Wall,-Wextra,-Wno-unused-parameter,-Werror
CUDA_NVFLAGS := -O2 -std=c++17 -Xcompiler -fPIC -g \
                -Xcompiler $(CUDA_HOST_WARN) -Werror all-warnings \
                $(CUDA_ARCH) -Isrc/core -Isrc/core/cuda

CUDA_DIR    := $(BUILD)/cuda
CUDA_SRCS   := $(sort $(wildcard src/core/cuda/*.cu))
CUDA_OBJS   := $(patsubst src/core/cuda/%.cu,$(CUDA_DIR)/%.o,$(CUDA_SRCS))
CUDA_HDRS   := $(wildcard src/core/cuda/*.h) src/core/lt_backend.h \
               src/core/lt_tensor.h
CUDA_LIB    := $(CUDA_DIR)/liblt_cuda.a

# C programs that call the backend (plain C header, no CUDA include);
# the benchmark also calls cuBLAS itself
CUDA_CFLAGS := $(CORE_CFLAGS) -Isrc/core -Isrc/core/cuda

$(CUDA_DIR)/%.o: src/core/cuda/%.cu $(CUDA_HDRS)
	@mkdir -p $(dir $@)
	$(NVCC) $(CUDA_NVFLAGS) -c $< -o $@

$(CUDA_LIB): $(CUDA_OBJS)
	rm -f $@
	ar rcs $@ $^

# the module links no CUDA library: its workers dlopen this one, so one
# module file runs on machines with and without a GPU
CUDA_PLUGIN := $(BUILD)/ngx_http_learn_cuda.so

$(CUDA_PLUGIN): $(CUDA_LIB)
	$(CC) -shared -o $@ -Wl,--whole-archive $(CUDA_LIB) \
	    -Wl,--no-whole-archive $(CUDA_LIBS) -Wl,-z,defs

cuda: $(CUDA_LIB) $(CUDA_PLUGIN)

all: $(CUDA_PLUGIN)

$(CUDA_TEST_BINS): $(CUDA_DIR)/%: t/unit/cuda/%.c $(CUDA_TEST_HDRS) \
    $(CUDA_LIB) $(BUILD)/core/liblt.a
	@mkdir -p $(dir $@)
	$(CC) $(CUDA_CFLAGS) -It/unit $< $(CUDA_LIB) $(BUILD)/core/liblt.a \
	    $(CORE_LIBS) $(CUDA_LIBS) -o $@

unit-cuda: $(CUDA_TEST_BINS)
	OPENBLAS_NUM_THREADS=1 prove -e '' $^

$(CUDA_DIR)/cuda_bench: bench/cuda_bench.c $(CUDA_LIB) $(BUILD)/core/liblt.a
	@mkdir -p $(dir $@)
	$(CC) $(CUDA_CFLAGS) -I$(CUDA_HOME)/include $< $(CUDA_LIB) \
	    $(BUILD)/core/liblt.a $(CORE_LIBS) $(CUDA_LIBS) -o $@

bench-cuda: $(CUDA_DIR)/cuda_bench
	OPENBLAS_NUM_THREADS=1 $<

else

cuda unit-cuda bench-cuda:
	@echo "CUDA not found ($(NVCC)), skipping $@"

endif

# The CUDA test's own logic, checked where there is no GPU: built with
# -DLT_CUDA_TEST_FAKE its "GPU" is the CPU backend behind host copies (no
# CUDA needed to build or run it).
.PHONY: unit-cuda-harness

HARNESS_BINS := $(addprefix $(BUILD)/cuda-harness/,$(CUDA_TESTS))

$(HARNESS_BINS): $(BUILD)/cuda-harness/%: t/unit/cuda/%.c $(CUDA_TEST_HDRS) \
    $(BUILD)/core/liblt.a
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -DLT_CUDA_TEST_FAKE -Isrc/core -Isrc/core/cuda \
	    -It/unit $< $(BUILD)/core/liblt.a $(CORE_LIBS) -o $@

unit-cuda-harness: $(HARNESS_BINS)
	OPENBLAS_NUM_THREADS=1 prove -e '' $^


# A stand-in for ngx_http_learn_cuda.so on machines without a GPU (the CPU
# backend behind "device" buffers): t/110-device.t drives the module's
# device path with it.
FAKE_CUDA   := $(BUILD)/fake-cuda/ngx_http_learn_cuda.so

FAKE_CUDA_CPU := src/core/lt_backend_cpu.c src/core/lt_loss_cpu.c \
                 src/core/lt_optim_cpu.c src/core/lt_backend_cpu_layers.c \
                 src/core/lt_backend_cpu_norm.c src/core/lt_cpu_gemm.c

$(FAKE_CUDA): t/device/fake_cuda.c $(FAKE_CUDA_CPU) $(wildcard src/core/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -shared -Isrc/core -Isrc/core/cuda -o $@ \
	    t/device/fake_cuda.c $(FAKE_CUDA_CPU) -Wl,-Bsymbolic \
	    -lopenblas -lm

all: $(FAKE_CUDA)
