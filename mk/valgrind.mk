# make test-valgrind: the nginx suites with every nginx process under
# memcheck (t/lib/LearnValgrind.pm; suppressions in t/valgrind.suppress).
# A memcheck report (an invalid access, a jump on uninitialised memory, a
# definite leak, a crash) fails the block or server that wrote it, and
# the target.  Under memcheck nginx is 20-50 times slower, so assertions
# about time (a fail_timeout window, latencies, the order of racing
# requests) fail there without any memory error: they are listed, and
# do not fail the target.  SUITES="t/001-sanity.t ..." runs a few.

.PHONY: test-valgrind

VALGRIND_LOG := $(BUILD)/test-valgrind.log

test-valgrind: deps all
	@echo "memcheck reports go to t/servroot*/logs/valgrind.PID.log; prove's output to $(VALGRIND_LOG)"
	-TEST_NGINX_USE_VALGRIND=1 TEST_NGINX_BINARY=$(NGINX) \
	TEST_NGINX_LOAD_MODULES=$(BUILD)/ngx_http_learn_module.so \
	OPENBLAS_NUM_THREADS=1 prove -r $(or $(SUITES),t) > $(VALGRIND_LOG) 2>&1
	@grep -aE '^t/.*(ok|skipped|Failed|\.\.\. *$$)|^(Files|Result)' $(VALGRIND_LOG) || true
	@other=$$(grep -aE '^ *#   Failed test' $(VALGRIND_LOG) \
	          | grep -vc 'valgrind reported errors'); \
	echo "failures that are not memcheck reports (timing under memcheck): $$other"; \
	bad=$$(grep -ac 'valgrind reported errors' $(VALGRIND_LOG)); \
	if [ "$$bad" -gt 0 ]; then \
	    echo "memcheck reported errors in $$bad blocks:"; \
	    grep -a 'valgrind reported errors' $(VALGRIND_LOG); exit 1; \
	fi; \
	echo "memcheck: no errors, no definite leaks"
