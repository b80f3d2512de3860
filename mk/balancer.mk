# mk/balancer.mk: learn_balancer / learn_sticky targets (the Makefile
# includes it).
#
#   make bench-balancer   bench/balancer_bench.sh: round robin, least_conn,
#                         random two, hash and learn_balancer, 3 backends
#                         (one 10x slower), wrk -t2 -c64 --latency
#                         (BENCH_SECONDS per method, ROUNDS=N to repeat)
#   make bench-pick       bench/pick_bench.c: the pick alone (get_peer, and
#                         get_peer + free_peer), ns per pick, 3 to 32 peers
#                         (PICKS=N per case); t/085 runs its --test checks
#   make run-front        conf/front.conf on 127.0.0.1:8088 in front of three
#                         learn instances (conf/instance1..3.conf, ports
#                         8091..8093, each holding its own models),
#                         requests pinned by X-Model-Id; Ctrl-C stops all

.PHONY: bench-balancer bench-pick pick-bench-build run-front

FRONT_PREFIX := $(BUILD)/run-front

# two regimes: keepalive to the backends (1, 1, 10 ms), then a new
# connection per request to slower ones (2, 2, 20 ms), where the front's
# two workers saturate both cores
bench-balancer: all
	bench/balancer_bench.sh $(BENCH_SECONDS)
	FAST=0.002 SLOW=0.020 KEEPALIVE=0 bench/balancer_bench.sh $(BENCH_SECONDS)

# the module's balancer code with nginx's headers, as configured for the
# module (the configure step of `make` writes $(NGX_OBJS))
PICK_INCS   := $(addprefix -I $(NGX_TREE)/src/,core event event/modules \
                 os/unix http http/modules http/v2) -I $(NGX_OBJS) \
               -I src/http -I src/core

$(BUILD)/bench/pick_bench: bench/pick_bench.c $(wildcard src/http/ngx_http_learn_upstream_*.c) \
                           src/http/ngx_http_learn_param.c \
                           src/http/ngx_http_learn_upstream.h \
                           src/http/ngx_http_learn_metrics.h $(NGX_OBJS)/Makefile
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -W -Wall -Wpointer-arith -Wno-unused-parameter -Werror \
	    $(PICK_INCS) $< -o $@ -lm

pick-bench-build: $(BUILD)/bench/pick_bench

bench-pick: $(BUILD)/bench/pick_bench
	$< $(PICKS)

run-front: deps all
	@for i in 1 2 3; do \
	    mkdir -p $(FRONT_PREFIX)/i$$i/logs $(FRONT_PREFIX)/i$$i/tmp; \
	done; \
	mkdir -p $(FRONT_PREFIX)/front/logs $(FRONT_PREFIX)/front/tmp; \
	user=$$($(WORKER_USER) $(FRONT_PREFIX)/i1/tmp $(FRONT_PREFIX)/i2/tmp \
	            $(FRONT_PREFIX)/i3/tmp $(FRONT_PREFIX)/front/tmp \
	            $(BUILD)/ngx_http_learn_module.so) || exit 1; \
	for i in 1 2 3; do \
	    OPENBLAS_NUM_THREADS=1 $(NGINX) -p $(FRONT_PREFIX)/i$$i/ \
	        -c $(ROOT)/conf/instance$$i.conf -g "$(LOAD_MODULE) $$user" \
	      || exit 1; \
	done; \
	echo "front on http://127.0.0.1:8088, instances on 8091..8093" \
	     "(logs in $(FRONT_PREFIX)); Ctrl-C stops all"; \
	trap 'for i in 1 2 3; do \
	          kill -QUIT $$(cat $(FRONT_PREFIX)/i$$i/logs/nginx.pid) \
	              2>/dev/null; done' EXIT; \
	$(NGINX) -p $(FRONT_PREFIX)/front/ -c $(ROOT)/conf/front.conf \
	    -g "$(LOAD_MODULE) daemon off; $$user"
