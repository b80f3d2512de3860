# make run-replicas: training on one instance, served by all (README,
# "Replication through Redis"): a redis-server of its own on
# 127.0.0.1:8109, the trainer (conf/replicas/trainer.conf, 8101), two
# followers (follower1.conf and follower2.conf, 8102 and 8103), and in
# the foreground the front (front.conf, 8100: train requests to the
# trainer, predicts to the followers through learn_balancer).  Ctrl-C
# stops the front; the others are then stopped by their pids.

.PHONY: run-replicas

REPLICAS_PREFIX := $(BUILD)/run-replicas
REPLICAS_CONF   := $(ROOT)/conf/replicas
REPLICAS_REDIS  := 8109
REPLICAS        := trainer follower1 follower2

run-replicas: deps all
	@command -v redis-server > /dev/null \
	    || { echo "redis-server is missing (Debian: redis-server; make deps)"; exit 1; }
	@for n in $(REPLICAS) front; do \
	    mkdir -p $(REPLICAS_PREFIX)/$$n/logs $(REPLICAS_PREFIX)/$$n/tmp \
	             $(REPLICAS_PREFIX)/$$n/state; \
	    chmod 0777 $(REPLICAS_PREFIX)/$$n/state; \
	done; \
	mkdir -p $(REPLICAS_PREFIX)/redis; \
	user=$$($(WORKER_USER) $(REPLICAS_PREFIX)/trainer/state \
	            $(REPLICAS_PREFIX)/front/tmp \
	            $(BUILD)/ngx_http_learn_module.so) || exit 1; \
	redis-server --port $(REPLICAS_REDIS) --bind 127.0.0.1 \
	    --dir $(REPLICAS_PREFIX)/redis --save '' --appendonly no \
	    --daemonize no > $(REPLICAS_PREFIX)/redis/redis.log 2>&1 & \
	redis=$$!; \
	trap 'for n in $(REPLICAS); do \
	          kill -QUIT $$(cat $(REPLICAS_PREFIX)/$$n/logs/nginx.pid) \
	              2>/dev/null; done; kill $$redis 2>/dev/null' EXIT; \
	for n in $(REPLICAS); do \
	    OPENBLAS_NUM_THREADS=1 $(NGINX) -p $(REPLICAS_PREFIX)/$$n/ \
	        -c $(REPLICAS_CONF)/$$n.conf -g "$(LOAD_MODULE) $$user" \
	      || exit 1; \
	done; \
	echo "front on http://127.0.0.1:8100 (train: the trainer on 8101;" \
	     "predict: the followers on 8102, 8103); redis on $(REPLICAS_REDIS);" \
	     "logs in $(REPLICAS_PREFIX); Ctrl-C stops all"; \
	$(NGINX) -p $(REPLICAS_PREFIX)/front/ -c $(REPLICAS_CONF)/front.conf \
	    -g "$(LOAD_MODULE) daemon off; $$user"
