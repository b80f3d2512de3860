# learn_set, learn_counter, learn_feedback: the benchmark (bench/README.md)
# and the abuse-scoring example (conf/abuse.conf, examples/abuse_traffic.py)

.PHONY: bench-vars run-abuse abuse-demo

bench-vars: all
	bench/vars_bench.sh $(BENCH_SECONDS)

ABUSE_PREFIX := $(BUILD)/run-abuse

# conf/abuse.conf on 127.0.0.1:8082, in the foreground (Ctrl-C stops)
run-abuse: deps all
	mkdir -p $(ABUSE_PREFIX)/logs $(ABUSE_PREFIX)/tmp $(ABUSE_PREFIX)/state
	chmod 0777 $(ABUSE_PREFIX)/state
	@user=$$($(WORKER_USER) $(ABUSE_PREFIX)/state \
	             $(BUILD)/ngx_http_learn_module.so) || exit 1; \
	echo "serving conf/abuse.conf on http://127.0.0.1:8082 (Ctrl-C stops)"; \
	set -x; OPENBLAS_NUM_THREADS=1 $(NGINX) -p $(ABUSE_PREFIX)/ \
	    -c $(ROOT)/conf/abuse.conf -g "$(LOAD_MODULE) daemon off; $$user"

# the same server in the background, a fresh model, the traffic script
# against it (precision and recall before and after feedback), then stop
abuse-demo: deps all
	rm -rf $(ABUSE_PREFIX)
	mkdir -p $(ABUSE_PREFIX)/logs $(ABUSE_PREFIX)/tmp $(ABUSE_PREFIX)/state
	chmod 0777 $(ABUSE_PREFIX)/state
	@user=$$($(WORKER_USER) $(ABUSE_PREFIX)/state \
	             $(BUILD)/ngx_http_learn_module.so) || exit 1; \
	OPENBLAS_NUM_THREADS=1 $(NGINX) -p $(ABUSE_PREFIX)/ \
	    -c $(ROOT)/conf/abuse.conf -g "$(LOAD_MODULE) $$user" || exit 1; \
	$(PY) examples/abuse_traffic.py http://127.0.0.1:8082; rc=$$?; \
	kill -QUIT $$(cat $(ABUSE_PREFIX)/logs/nginx.pid); exit $$rc
