# make test-valgrind: the nginx suites with every nginx process under
# memcheck (t/lib/LearnValgrind.pm; suppressions in t/valgrind.suppress);
# a report with an error or a definite leak fails the block that wrote it.
# Slow: each suite takes several times as long as under make test.

.PHONY: test-valgrind

test-valgrind: deps all
	TEST_NGINX_USE_VALGRIND=1 TEST_NGINX_BINARY=$(NGINX) \
	TEST_NGINX_LOAD_MODULES=$(BUILD)/ngx_http_learn_module.so \
	OPENBLAS_NUM_THREADS=1 prove -r $(or $(SUITES),t)
