# resty.learn (lua/resty/learn.lua), for lua-nginx-module users:
#
#   make run-lua      conf/lua.conf on 127.0.0.1:8083 (Ctrl-C stops): an
#                     access-phase scorer and a log-phase trainer
#   make bench-lua    the cost of one learn.predict call from Lua, and
#                     req/s of a content_by_lua predict against the
#                     learn_predict location (bench/lua_bench.sh)
#   make install      resty/learn.lua and resty/learn/ where Debian's
#                     lua-resty-* live
#                     (LUA_LIBDIR), so `require "resty.learn"` needs no
#                     lua_package_path; DESTDIR is honoured
#   make uninstall

.PHONY: run-lua bench-lua install uninstall

LUA_LIBDIR   ?= /usr/share/lua/5.1
LUA_MODULES  := ndk_http_module ngx_http_lua_module
LOAD_LUA     := $(foreach m,$(LUA_MODULES),load_module /usr/lib/nginx/modules/$(m).so;)
LUA_PREFIX   := $(BUILD)/run-lua

run-lua: deps all
	mkdir -p $(LUA_PREFIX)/logs $(LUA_PREFIX)/tmp $(LUA_PREFIX)/state
	chmod 0777 $(LUA_PREFIX)/state
	@user=$$($(WORKER_USER) $(LUA_PREFIX)/state \
	             $(BUILD)/ngx_http_learn_module.so) || exit 1; \
	echo "serving conf/lua.conf on http://127.0.0.1:8083 (Ctrl-C stops)"; \
	set -x; OPENBLAS_NUM_THREADS=1 $(NGINX) -p $(LUA_PREFIX)/ \
	    -c $(ROOT)/conf/lua.conf \
	    -g "$(LOAD_LUA) $(LOAD_MODULE) daemon off; $$user"

bench-lua: deps all
	bench/lua_bench.sh $(BENCH_SECONDS)

install:
	install -d $(DESTDIR)$(LUA_LIBDIR)/resty/learn
	install -m 0644 lua/resty/learn.lua $(DESTDIR)$(LUA_LIBDIR)/resty/learn.lua
	install -m 0644 lua/resty/learn/*.lua $(DESTDIR)$(LUA_LIBDIR)/resty/learn/

uninstall:
	rm -f $(DESTDIR)$(LUA_LIBDIR)/resty/learn.lua
	rm -rf $(DESTDIR)$(LUA_LIBDIR)/resty/learn
