# mk/balancer.mk: learn_balancer / learn_sticky targets (the Makefile
# includes it).
#
#   make bench-balancer   bench/balancer_bench.sh: round robin, least_conn,
#                         random two, hash and learn_balancer, 3 backends
#                         (one 10x slower), wrk -t2 -c64 --latency
#                         (BENCH_SECONDS per method, ROUNDS=N to repeat)
#   make run-front        conf/front.conf on 127.0.0.1:8088 in front of three
#                         learn instances (conf/instance1..3.conf, ports
#                         8091..8093), requests pinned by X-Model-Id;
#                         Ctrl-C stops all four

.PHONY: bench-balancer run-front

FRONT_PREFIX := $(BUILD)/run-front

bench-balancer: all
	bench/balancer_bench.sh $(BENCH_SECONDS)

run-front: deps all
	@for i in 1 2 3; do \
	    mkdir -p $(FRONT_PREFIX)/i$$i/logs $(FRONT_PREFIX)/i$$i/tmp; \
	    OPENBLAS_NUM_THREADS=1 $(NGINX) -p $(FRONT_PREFIX)/i$$i \
	        -c $(ROOT)/conf/instance$$i.conf -g "$(LOAD_MODULE)" || exit 1; \
	done
	mkdir -p $(FRONT_PREFIX)/front/logs $(FRONT_PREFIX)/front/tmp
	@echo "front on http://127.0.0.1:8088, instances on 8091..8093" \
	      "(logs in $(FRONT_PREFIX)); Ctrl-C stops all"
	@trap 'for i in 1 2 3; do \
	          kill -QUIT $$(cat $(FRONT_PREFIX)/i$$i/logs/nginx.pid) \
	              2>/dev/null; done' EXIT; \
	$(NGINX) -p $(FRONT_PREFIX)/front -c $(ROOT)/conf/front.conf \
	    -g "$(LOAD_MODULE) daemon off;"
