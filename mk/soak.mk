# make soak: 1M mixed requests on 2 workers, resident memory flat within
# 5% after warm-up, no worker lost, no 5xx (bench/soak.sh, bench/README.md)

.PHONY: soak

SOAK_REQUESTS ?= 1000000

soak: deps all
	bench/soak.sh $(SOAK_REQUESTS)
