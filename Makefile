# ngx_http_learn_module
#   make          build build/ngx_http_learn_module.so
#   make run      install packages, build, serve conf/learn.conf on :8080
#   make test     install packages, build, run every test
#   make bench    benchmarks (bench/README.md)

SHELL       := /bin/bash
ROOT        := $(abspath .)
BUILD       := $(ROOT)/build
NGX_SRC     ?= /usr/share/nginx/src
NGINX       ?= /usr/sbin/nginx
PY          ?= /usr/bin/python3
CC          ?= cc

# Debian's OpenBLAS does not know every CPU and may fall back to its
# slowest kernels (mk/openblas-coretype.sh): what make starts gets a
# fitting OPENBLAS_CORETYPE unless one is set
ifeq ($(origin OPENBLAS_CORETYPE),undefined)
OPENBLAS_CORETYPE := $(shell PY=$(PY) $(ROOT)/mk/openblas-coretype.sh)
endif
ifneq ($(OPENBLAS_CORETYPE),)
export OPENBLAS_CORETYPE
endif

CORE_SRCS   := $(sort $(wildcard src/core/*.c))
CORE_OBJS   := $(patsubst src/core/%.c,$(BUILD)/core/%.o,$(CORE_SRCS))
# OpenBLAS's headers: pkg-config's answer, else Debian's multiarch path
BLAS_CFLAGS ?= $(shell pkg-config --cflags openblas 2>/dev/null \
                 || echo -I/usr/include/$$($(CC) -print-multiarch)/openblas-pthread)
CORE_CFLAGS := -std=c99 -D_POSIX_C_SOURCE=200809L -O2 -g -fPIC -W -Wall \
               -Wextra -Wno-unused-parameter -Werror $(BLAS_CFLAGS)
CORE_LIBS   := -lopenblas -lmsgpackc -lcjson -lz -lm

UNIT_SRCS   := $(sort $(wildcard t/unit/*.c))
UNIT_BINS   := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))

.PHONY: all core unit deps run test test-nginx bench clean

all: $(BUILD)/ngx_http_learn_module.so

# Debian packages the build, the tests and the benchmarks need
DEB_PKGS    := nginx-core nginx-dev libluajit2-5.1-dev libmsgpack-dev \
               libopenblas-dev libcjson-dev wrk libtest-base-perl \
               libtext-diff-perl liblist-moreutils-perl liburi-perl \
               libhttp-message-perl libipc-run-perl libtest-longstring-perl \
               libwww-perl python3-msgpack python3-msgpack-numpy \
               python3-numpy python3-prometheus-client \
               libnginx-mod-http-echo libnginx-mod-http-lua \
               libnginx-mod-http-ndk lua-resty-core clang-14 \
               libclang-rt-14-dev valgrind libdata-messagepack-perl bc curl zlib1g-dev \
               libhiredis-dev redis-server chromium python3-sklearn

deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	      | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	        --no-install-recommends $$missing; \
	fi

# nginx's configure writes into the tree it runs in, so it runs in a copy
# of Debian's /usr/share/nginx/src, with the packaged binary's own flags.
NGX_TREE    := $(BUILD)/nginx-src
NGX_OBJS    := $(BUILD)/ngx
MODULE_SRCS := config ngx_http_learn_module.c $(wildcard src/http/*) \
               $(wildcard src/core/*)

# configure lists the sources: run it again when the set of files changes
SRC_LIST    := $(sort $(wildcard src/core/*.c src/http/*.c))
$(shell mkdir -p $(BUILD); echo '$(SRC_LIST)' | cmp -s - $(BUILD)/srcs.list \
    || echo '$(SRC_LIST)' > $(BUILD)/srcs.list)

$(NGX_OBJS)/Makefile: config $(BUILD)/srcs.list
	@test -d $(NGX_SRC) || { echo "$(NGX_SRC) missing: run 'make deps'"; exit 1; }
	rm -rf $(NGX_TREE) && mkdir -p $(BUILD) && cp -r $(NGX_SRC) $(NGX_TREE)
	cd $(NGX_TREE) && . ./conf_flags && ./configure \
	    --with-cc-opt="$$(dpkg-buildflags --get CFLAGS) -fPIC $$(dpkg-buildflags --get CPPFLAGS)" \
	    --with-ld-opt="$$(dpkg-buildflags --get LDFLAGS) -fPIC" \
	    "$${NGX_CONF_FLAGS[@]}" --add-dynamic-module=$(ROOT) \
	    --builddir=$(NGX_OBJS) > $(BUILD)/configure.log 2>&1 \
	  || { tail -20 $(BUILD)/configure.log; exit 1; }

$(BUILD)/ngx_http_learn_module.so: $(NGX_OBJS)/Makefile $(MODULE_SRCS)
	$(MAKE) -s -f $(NGX_OBJS)/Makefile -C $(NGX_TREE) modules
	cp $(NGX_OBJS)/ngx_http_learn_module.so $@

core: $(BUILD)/core/liblt.a

$(BUILD)/core/%.o: src/core/%.c $(wildcard src/core/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -c $< -o $@

$(BUILD)/core/liblt.a: $(CORE_OBJS) $(BUILD)/srcs.list
	rm -f $@ && ar rcs $@ $(CORE_OBJS)   # afresh: no member of a removed file

$(BUILD)/unit/%: t/unit/%.c t/unit/tap.h $(BUILD)/core/liblt.a
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -Isrc/core $< $(BUILD)/core/liblt.a $(CORE_LIBS) -o $@

unit: $(UNIT_BINS)
	prove -e '' $(UNIT_BINS)

clean:
	rm -rf $(BUILD) t/servroot*

RUN_PREFIX  := $(BUILD)/run
LOAD_MODULE := load_module $(BUILD)/ngx_http_learn_module.so;

# who the workers run as (mk/worker-user.sh prints the "user" directive
# and one line saying which): nobody under root where it can reach the
# prefix and the module's directory, else root (a checkout under a 0700
# directory), as Test::Nginx does
WORKER_USER  = $(ROOT)/mk/worker-user.sh

run: deps all
	mkdir -p $(RUN_PREFIX)/logs $(RUN_PREFIX)/tmp $(RUN_PREFIX)/state
	chmod 0777 $(RUN_PREFIX)/state    # for workers that run as nobody
	@user=$$($(WORKER_USER) $(RUN_PREFIX)/state \
	             $(BUILD)/ngx_http_learn_module.so) || exit 1; \
	echo "serving conf/learn.conf on http://127.0.0.1:8080 (Ctrl-C stops)"; \
	set -x; OPENBLAS_NUM_THREADS=1 $(NGINX) -p $(RUN_PREFIX)/ \
	    -c $(ROOT)/conf/learn.conf -g "$(LOAD_MODULE) daemon off; $$user"

# Test::Nginx suites: the real Test::Nginx when installed, t/lib/shim
# otherwise (t/lib/TestLearn.pm chooses)
test-nginx: all
	TEST_NGINX_BINARY=$(NGINX) \
	TEST_NGINX_LOAD_MODULES=$(BUILD)/ngx_http_learn_module.so \
	OPENBLAS_NUM_THREADS=1 prove -r t

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) unit-cuda
	$(MAKE) unit-cuda-harness
	$(MAKE) unit-asan
	$(MAKE) fuzz-quick
	$(MAKE) test-nginx

-include mk/*.mk

bench-http: all
	bench/http_bench.sh $(BENCH_SECONDS)

bench-checkpoint: all
	bench/checkpoint_bench.sh $(BENCH_SECONDS)

bench-store: all
	bench/store_bench.sh $(BENCH_ROUNDS)

bench-store-swap: all
	bench/store_swap_bench.sh $(BENCH_SECONDS)

bench: bench-core bench-http bench-checkpoint bench-batch bench-pick bench-balancer

bench-batch: all
	bench/batch_bench.sh $(BENCH_SECONDS)
