
/*
 * The sandbox model files run in.  They run in the nginx master, often
 * as root, at "nginx -t", start and every reload, so:
 *
 * - the state never opens io, os, package, debug, jit or ffi: there is
 *   nothing to escape to, whatever a file replaces or redefines;
 * - every file (the model file and each learn.* module it requires) gets
 *   an environment table of its own, made from copies of the safe base,
 *   math, string and table functions taken before any of them ran;
 * - the string metatable, which all strings share, is hidden
 *   (__metatable), so no file can change what ("x"):match() means for
 *   another, and string.dump is gone;
 * - require() is C: it accepts only learn.* names, finds the file in the
 *   module's lua/ directory and learn_lua_path, loads source only (never
 *   bytecode, which LuaJIT does not verify) and runs it in the sandbox;
 * - memory, instructions and time are limited, with the JIT off so that
 *   the instruction hook fires in every loop; once a limit is hit, every
 *   later hook and every pcall() raises again, so no pcall() can catch
 *   the limit and go on.
 */


#include "ngx_http_learn_lua.h"

#include <luajit.h>


#define NGX_HTTP_LEARN_LUA_HOOK_INSNS   1000
#define NGX_HTTP_LEARN_LUA_MAX_NAME     128

/* registry keys */
#define NGX_HTTP_LEARN_LUA_SAFE         "ngx_http_learn_safe"
#define NGX_HTTP_LEARN_LUA_LOADED       "ngx_http_learn_loaded"


static void *ngx_http_learn_sandbox_alloc(void *ud, void *ptr, size_t osize,
    size_t nsize);
static void ngx_http_learn_sandbox_hook(lua_State *L, lua_Debug *ar);
static int ngx_http_learn_sandbox_pcall(lua_State *L);
static int ngx_http_learn_sandbox_xpcall(lua_State *L);
static int ngx_http_learn_sandbox_handler(lua_State *L);
static int ngx_http_learn_sandbox_require(lua_State *L);
static ngx_int_t ngx_http_learn_sandbox_find(ngx_http_learn_sandbox_t *sb,
    const char *name, size_t len, u_char *buf, size_t size);
static uint64_t ngx_http_learn_sandbox_msec(void);


/* base functions a model file may call; pcall and xpcall are wrapped */
static const char  *ngx_http_learn_sandbox_base[] = {
    "assert", "error", "ipairs", "next", "pairs", "select", "tonumber",
    "tostring", "type", "unpack", "rawget", "rawequal", "setmetatable",
    "getmetatable", NULL
};

static const char  *ngx_http_learn_sandbox_libs[] = {
    "math", "string", "table", NULL
};

/* the marker of a module being loaded: require loops are errors */
static char  ngx_http_learn_sandbox_loading;


lua_State *
ngx_http_learn_sandbox_new(ngx_http_learn_sandbox_t *sb)
{
    lua_State  *L;

    sb->used = 0;
    sb->insns = 0;
    sb->exhausted = 0;
    sb->limit = NULL;

    L = lua_newstate(ngx_http_learn_sandbox_alloc, sb);
    if (L == NULL) {
        return NULL;
    }

    /* interpreted only: hooks do not fire in compiled traces */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);

    return L;
}


static void *
ngx_http_learn_sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    ngx_http_learn_sandbox_t  *sb = ud;

    void  *p;

    if (nsize == 0) {
        free(ptr);
        sb->used -= osize;
        return NULL;
    }

    if (nsize > osize
        && sb->used - osize + nsize > NGX_HTTP_LEARN_LUA_MAX_MEMORY)
    {
        sb->exhausted = 1;
        sb->limit = "used more than 128 MB of memory";
        return NULL;
    }

    p = realloc(ptr, nsize);
    if (p == NULL) {
        return NULL;
    }

    sb->used = sb->used - osize + nsize;

    return p;
}


/*
 * Under lua_cpcall(): opens the safe libraries and keeps pristine copies
 * of what files may use in the registry, before any file runs.
 */

void
ngx_http_learn_sandbox_open(lua_State *L)
{
    int          safe;
    ngx_uint_t   i;

    static const lua_CFunction  open[] = {
        luaopen_base, luaopen_math, luaopen_string, luaopen_table, NULL
    };

    for (i = 0; open[i]; i++) {
        lua_pushcfunction(L, open[i]);
        lua_call(L, 0, 0);
    }

    /* luaopen_base() opened coroutine too: not for model files */

    lua_newtable(L);
    safe = lua_gettop(L);

    for (i = 0; ngx_http_learn_sandbox_base[i]; i++) {
        lua_getfield(L, LUA_GLOBALSINDEX, ngx_http_learn_sandbox_base[i]);
        lua_setfield(L, safe, ngx_http_learn_sandbox_base[i]);
    }

    lua_pushcfunction(L, ngx_http_learn_sandbox_pcall);
    lua_setfield(L, safe, "pcall");
    lua_pushcfunction(L, ngx_http_learn_sandbox_xpcall);
    lua_setfield(L, safe, "xpcall");
    lua_pushcfunction(L, ngx_http_learn_sandbox_require);
    lua_setfield(L, safe, "require");

    for (i = 0; ngx_http_learn_sandbox_libs[i]; i++) {
        lua_getfield(L, LUA_GLOBALSINDEX, ngx_http_learn_sandbox_libs[i]);
        lua_setfield(L, safe, ngx_http_learn_sandbox_libs[i]);
    }

    lua_getfield(L, LUA_GLOBALSINDEX, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);

    lua_setfield(L, LUA_REGISTRYINDEX, NGX_HTTP_LEARN_LUA_SAFE);

    /* getmetatable("") answers false, and the shared table stays hidden */
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);

    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, NGX_HTTP_LEARN_LUA_LOADED);
}


/* Pushes a fresh environment: the safe functions, copies of the libraries. */

void
ngx_http_learn_sandbox_env(lua_State *L)
{
    int  env, safe;

    lua_newtable(L);
    env = lua_gettop(L);

    lua_getfield(L, LUA_REGISTRYINDEX, NGX_HTTP_LEARN_LUA_SAFE);
    safe = lua_gettop(L);

    lua_pushnil(L);

    while (lua_next(L, safe)) {
        if (lua_type(L, -1) == LUA_TTABLE) {
            /* a library: a table of its own for each file */
            lua_newtable(L);
            lua_pushnil(L);

            while (lua_next(L, -3)) {
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, -4);
            }

            lua_remove(L, -2);
        }

        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, env);
    }

    lua_pop(L, 1);

    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");
}


void
ngx_http_learn_sandbox_limits(lua_State *L, ngx_uint_t on)
{
    ngx_http_learn_sandbox_t  *sb;

    if (!on) {
        lua_sethook(L, NULL, 0, 0);
        return;
    }

    (void) lua_getallocf(L, (void **) &sb);

    sb->deadline = ngx_http_learn_sandbox_msec()
                   + NGX_HTTP_LEARN_LUA_MAX_MSEC;

    lua_sethook(L, ngx_http_learn_sandbox_hook, LUA_MASKLINE | LUA_MASKCOUNT,
                NGX_HTTP_LEARN_LUA_HOOK_INSNS);
}


/*
 * Counts instructions and time; remembers the last line of the model
 * file that ran (an error in "return nn.model{...}", a tail call, has no
 * line of the file otherwise).
 */

static void
ngx_http_learn_sandbox_hook(lua_State *L, lua_Debug *ar)
{
    ngx_http_learn_sandbox_t  *sb;

    (void) lua_getallocf(L, (void **) &sb);

    if (ar->event == LUA_HOOKCOUNT) {
        sb->insns += NGX_HTTP_LEARN_LUA_HOOK_INSNS;

        if (!sb->exhausted) {
            if (sb->insns > NGX_HTTP_LEARN_LUA_MAX_INSNS) {
                sb->exhausted = 1;
                sb->limit = "ran more than 100 million Lua instructions "
                            "(an endless loop?)";

            } else if (ngx_http_learn_sandbox_msec() > sb->deadline) {
                sb->exhausted = 1;
                sb->limit = "ran for more than 2 seconds (an endless loop?)";
            }
        }

        if (sb->exhausted) {
            luaL_error(L, "%s", sb->limit);
        }

        return;
    }

    if (!sb->running || lua_getinfo(L, "Sl", ar) == 0) {
        return;
    }

    if (ar->source[0] == '@' && ar->currentline > 0
        && ngx_strcmp(ar->source + 1, sb->path) == 0)
    {
        sb->line = ar->currentline;
    }
}


/* pcall(f, ...) that cannot catch an exceeded limit */

static int
ngx_http_learn_sandbox_pcall(lua_State *L)
{
    int                        rc;
    ngx_http_learn_sandbox_t  *sb;

    luaL_checkany(L, 1);

    rc = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);

    (void) lua_getallocf(L, (void **) &sb);

    if (sb->exhausted) {
        return lua_error(L);
    }

    lua_pushboolean(L, rc == 0);
    lua_insert(L, 1);

    return lua_gettop(L);
}


/*
 * xpcall(f, handler) likewise.  An error raised by the limit hook runs
 * the handler inside the hook, where LuaJIT fires no hooks: the file's
 * handler is called only for the file's own errors.
 */

static int
ngx_http_learn_sandbox_xpcall(lua_State *L)
{
    int                        rc;
    ngx_http_learn_sandbox_t  *sb;

    luaL_checkany(L, 2);
    lua_settop(L, 2);
    lua_pushcclosure(L, ngx_http_learn_sandbox_handler, 1);
    lua_insert(L, 1);               /* handler, f */

    rc = lua_pcall(L, 0, LUA_MULTRET, 1);

    (void) lua_getallocf(L, (void **) &sb);

    if (sb->exhausted) {
        return lua_error(L);
    }

    lua_pushboolean(L, rc == 0);
    lua_replace(L, 1);

    return lua_gettop(L);
}


static int
ngx_http_learn_sandbox_handler(lua_State *L)
{
    ngx_http_learn_sandbox_t  *sb;

    (void) lua_getallocf(L, (void **) &sb);

    if (sb->exhausted) {
        return 1;
    }

    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);

    return 1;
}


/*
 * require "learn.NAME[.NAME...]": the file from the search templates,
 * source only, run in a fresh sandbox environment, once per state.
 */

static int
ngx_http_learn_sandbox_require(lua_State *L)
{
    int                        loaded;
    size_t                     len, i;
    u_char                     path[NGX_MAX_PATH];
    const char                *name;
    ngx_http_learn_sandbox_t  *sb;

    (void) lua_getallocf(L, (void **) &sb);

    if (lua_type(L, 1) != LUA_TSTRING) {
        return luaL_error(L, "require needs a module name, not a %s",
                          luaL_typename(L, 1));
    }

    name = lua_tolstring(L, 1, &len);

    for (i = sizeof("learn.") - 1; i < len; i++) {
        if (!(isalnum((u_char) name[i]) || name[i] == '_'
              || (name[i] == '.' && name[i - 1] != '.' && i + 1 < len)))
        {
            break;
        }
    }

    if (len <= sizeof("learn.") - 1 || len > NGX_HTTP_LEARN_LUA_MAX_NAME
        || ngx_strncmp(name, "learn.", sizeof("learn.") - 1) != 0
        || name[sizeof("learn.") - 1] == '.'
        || i != len)
    {
        return luaL_error(L, "require \"%s\" is not allowed in a model file "
                          "(only learn.* modules)",
                          len > 64 ? "(a long name)" : name);
    }

    lua_settop(L, 1);

    lua_getfield(L, LUA_REGISTRYINDEX, NGX_HTTP_LEARN_LUA_LOADED);
    loaded = lua_gettop(L);

    lua_pushvalue(L, 1);
    lua_rawget(L, loaded);

    if (lua_touserdata(L, -1) == &ngx_http_learn_sandbox_loading) {
        return luaL_error(L, "require \"%s\": a loop (it requires itself "
                          "through other modules)", name);
    }

    if (!lua_isnil(L, -1)) {
        return 1;
    }

    lua_pop(L, 1);

    if (ngx_http_learn_sandbox_find(sb, name, len, path, sizeof(path))
        != NGX_OK)
    {
        return luaL_error(L, "module \"%s\" not found in the module's lua/ "
                          "directory or learn_lua_path", name);
    }

    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, &ngx_http_learn_sandbox_loading);
    lua_rawset(L, loaded);

    if (ngx_http_learn_sandbox_load(L, path) != 0) {
        return lua_error(L);
    }

    ngx_http_learn_sandbox_env(L);
    lua_setfenv(L, -2);

    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);

    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }

    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, loaded);

    return 1;
}


/*
 * Loads a file, source only: LuaJIT does not verify bytecode, and
 * crafted bytecode can do anything in the master.
 */

int
ngx_http_learn_sandbox_load(lua_State *L, u_char *path)
{
    const char  *msg;

    if (luaL_loadfilex(L, (char *) path, "t") == 0) {
        return 0;
    }

    msg = lua_tostring(L, -1);

    if (msg && ngx_strstr(msg, "wrong mode")) {
        lua_pop(L, 1);
        lua_pushfstring(L, "%s: is LuaJIT bytecode, which is never "
                        "loaded (only Lua source)", path);
    }

    return 1;
}


/* The first template whose "?" (dots turned into "/") names a file. */

static ngx_int_t
ngx_http_learn_sandbox_find(ngx_http_learn_sandbox_t *sb, const char *name,
    size_t len, u_char *buf, size_t size)
{
    u_char           *t, *p, *last;
    size_t            i;
    ngx_uint_t        n;
    ngx_file_info_t   fi;

    for (n = 0; n < sb->npaths; n++) {
        p = buf;
        last = buf + size - 1;

        for (t = sb->paths[n]; *t && p < last; t++) {
            if (*t != '?') {
                *p++ = *t;
                continue;
            }

            for (i = 0; i < len && p < last; i++) {
                *p++ = (name[i] == '.') ? '/' : (u_char) name[i];
            }
        }

        if (*t || p >= last) {
            continue;               /* does not fit */
        }

        *p = '\0';

        if (ngx_file_info(buf, &fi) != NGX_FILE_ERROR && ngx_is_file(&fi)) {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static uint64_t
ngx_http_learn_sandbox_msec(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
