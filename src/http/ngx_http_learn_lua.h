
/*
 * Model files at configuration time: the loader (ngx_http_learn_lua.c),
 * the sandbox it runs them in (ngx_http_learn_sandbox.c) and the reader
 * of the table they return (ngx_http_learn_lua_spec.c).
 */


#ifndef _NGX_HTTP_LEARN_LUA_H_INCLUDED_
#define _NGX_HTTP_LEARN_LUA_H_INCLUDED_


#include "ngx_http_learn.h"

#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>


/* what one model file may cost the master */
#define NGX_HTTP_LEARN_LUA_MAX_MEMORY   (128 * 1024 * 1024)
#define NGX_HTTP_LEARN_LUA_MAX_INSNS    100000000       /* 1e8 */
#define NGX_HTTP_LEARN_LUA_MAX_MSEC     2000


/*
 * One state per model file; the allocator's ud, so the hook, the
 * allocator and the sandbox's C functions find it with lua_getallocf().
 */
typedef struct {
    size_t                         used;      /* bytes the state holds */
    uint64_t                       insns;     /* instructions run, about */
    uint64_t                       deadline;  /* ms, monotonic */

    /* require(): "DIR/?.lua" templates, NUL-terminated */
    u_char                       **paths;
    ngx_uint_t                     npaths;

    /* the model file, to name its last line in errors */
    u_char                        *path;
    ngx_int_t                      line;
    unsigned                       running:1;

    /* a limit was hit: every hook and pcall raises again */
    unsigned                       exhausted:1;
    const char                    *limit;     /* what was exceeded */
} ngx_http_learn_sandbox_t;


lua_State *ngx_http_learn_sandbox_new(ngx_http_learn_sandbox_t *sb);
void ngx_http_learn_sandbox_open(lua_State *L);
void ngx_http_learn_sandbox_env(lua_State *L);
void ngx_http_learn_sandbox_limits(lua_State *L, ngx_uint_t on);
int ngx_http_learn_sandbox_load(lua_State *L, u_char *path);

void ngx_http_learn_lua_spec(lua_State *L, int model, lt_model_spec *spec);
void ngx_http_learn_lua_layers(lua_State *L, int layers, const char *prefix,
    int depth, lt_model_spec *spec);


#endif /* _NGX_HTTP_LEARN_LUA_H_INCLUDED_ */
