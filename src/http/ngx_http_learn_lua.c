
/*
 * Model files at configuration time: run FILE.lua in a throw-away LuaJIT
 * state with a restricted environment and turn the description it
 * returns into an lt_model_spec.
 */


#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* dladdr() */
#endif

#include <dlfcn.h>
#include <float.h>
#include <limits.h>

#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

#include "ngx_http_learn.h"


/*
 * Everything that touches the Lua state runs inside one lua_cpcall():
 * LuaJIT panics (and exits the nginx master, taking a running server down
 * on reload) on any error raised outside protected mode, and reading the
 * table a model file returns can raise: a field may be of any type, or a
 * metatable's __index may call error().
 */
typedef struct {
    ngx_http_learn_main_conf_t  *lmcf;
    u_char                      *path;      /* NUL-terminated */
    lt_model_spec               *spec;
    ngx_uint_t                   named;     /* the error names the file */
    ngx_uint_t                   running;   /* the file's chunk is running */
    ngx_int_t                    line;      /* last line run in the file */
    char                         src[LUA_IDSIZE]; /* Lua's name for it */
} ngx_http_learn_lua_load_t;


#define NGX_HTTP_LEARN_LUA_LOAD  "ngx_http_learn_lua_load"


static ngx_int_t ngx_http_learn_lua_resolve(ngx_conf_t *cf,
    ngx_http_learn_main_conf_t *lmcf, ngx_str_t *file, ngx_str_t *path);
static int ngx_http_learn_lua_run(lua_State *L);
static void ngx_http_learn_lua_hook(lua_State *L, lua_Debug *ar);
static void ngx_http_learn_lua_set_path(lua_State *L,
    ngx_http_learn_main_conf_t *lmcf);
static void ngx_http_learn_lua_spec(lua_State *L, int model,
    lt_model_spec *spec);
static void ngx_http_learn_lua_layers(lua_State *L, int net,
    lt_model_spec *spec);
static int ngx_http_learn_lua_width(lua_State *L, int layer, int i,
    const char *key);
static void ngx_http_learn_lua_optim(lua_State *L, int optim,
    lt_optim_spec *spec);
static float ngx_http_learn_lua_number(lua_State *L, int t, const char *key,
    float def);


typedef struct {
    const char     *name;
    lt_layer_kind   kind;
} ngx_http_learn_layer_name_t;


static ngx_http_learn_layer_name_t  ngx_http_learn_layer_names[] = {
    { "Linear", LT_LAYER_LINEAR },
    { "ReLU", LT_LAYER_RELU },
    { "Tanh", LT_LAYER_TANH },
    { "Sigmoid", LT_LAYER_SIGMOID },
    { "Softmax", LT_LAYER_SOFTMAX },
    { "LogSoftmax", LT_LAYER_LOGSOFTMAX },
    { NULL, 0 }
};


ngx_int_t
ngx_http_learn_lua_load_model(ngx_conf_t *cf,
    ngx_http_learn_main_conf_t *lmcf, ngx_str_t *file, lt_model_spec *spec)
{
    size_t                      len;
    u_char                      buf[64];
    lt_err                      err;
    lt_model                   *m;
    ngx_str_t                   path;
    lua_State                  *L;
    const char                 *msg;
    ngx_http_learn_lua_load_t   ld;

    if (ngx_http_learn_lua_resolve(cf, lmcf, file, &path) != NGX_OK) {
        return NGX_ERROR;
    }

    L = luaL_newstate();
    if (L == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "luaL_newstate() failed");
        return NGX_ERROR;
    }

    ngx_memzero(&ld, sizeof(ngx_http_learn_lua_load_t));
    ld.lmcf = lmcf;
    ld.path = path.data;
    ld.spec = spec;

    if (lua_cpcall(L, ngx_http_learn_lua_run, &ld) != 0) {
        msg = lua_tostring(L, -1);
        if (msg == NULL) {
            ngx_snprintf(buf, sizeof(buf), "(error object is a %s value)%Z",
                         luaL_typename(L, -1));
            msg = (const char *) buf;
        }

        /*
         * Lua's own messages read "FILE:LINE: reason" when the error was
         * raised at a line of the file.  The others name the file too:
         * with the last line the file ran when the error came while it
         * ran (nn.model{} in "return nn.model{...}" is a tail call, so
         * error(msg, 2) there has no caller line to name), else alone.
         */

        len = ngx_strlen(ld.src);

        if (ld.named
            || (len && ngx_strncmp(msg, ld.src, len) == 0 && msg[len] == ':'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "learn_model: %s", msg);

        } else if (ld.running && ld.line > 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "learn_model: %s:%i: %s",
                               path.data, ld.line, msg);

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "learn_model: %s: %s",
                               path.data, msg);
        }

        lua_close(L);
        return NGX_ERROR;
    }

    lua_close(L);

    /* the C checks (sizes above all), reported with the file name here */

    m = ngx_palloc(cf->temp_pool, sizeof(lt_model));
    if (m == NULL) {
        return NGX_ERROR;
    }

    if (lt_model_build(m, spec, &err) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "learn_model: %s: %s",
                           path.data, err.msg);
        return NGX_ERROR;
    }

    *file = path;

    return NGX_OK;
}


/*
 * Under lua_cpcall(): every error raised here or in the model file ends
 * the call with the message on the stack.
 */

static int
ngx_http_learn_lua_run(lua_State *L)
{
    lua_Debug                   ar;
    ngx_http_learn_lua_load_t  *ld;

    ld = lua_touserdata(L, 1);
    lua_settop(L, 0);

    lua_pushlightuserdata(L, ld);
    lua_setfield(L, LUA_REGISTRYINDEX, NGX_HTTP_LEARN_LUA_LOAD);

    luaL_openlibs(L);
    ngx_http_learn_lua_set_path(L, ld->lmcf);

    /* the model file's environment: learn.sandbox returns its factory */

    lua_getglobal(L, "require");
    lua_pushliteral(L, "learn.sandbox");
    lua_call(L, 1, 1);
    lua_call(L, 0, 1);

    if (luaL_loadfile(L, (char *) ld->path) != 0) {
        /* "FILE:LINE: syntax error" or "cannot open FILE" */
        ld->named = 1;
        return lua_error(L);
    }

    lua_pushvalue(L, -1);
    if (lua_getinfo(L, ">S", &ar) != 0) {
        ngx_cpystrn((u_char *) ld->src, (u_char *) ar.short_src,
                    sizeof(ld->src));
    }

    lua_pushvalue(L, -2);
    lua_setfenv(L, -2);

    ld->running = 1;
    lua_sethook(L, ngx_http_learn_lua_hook, LUA_MASKLINE, 0);

    lua_call(L, 0, 1);

    lua_sethook(L, NULL, 0, 0);
    ld->running = 0;

    ngx_http_learn_lua_spec(L, lua_gettop(L), ld->spec);

    return 0;
}


/* Remembers the last line of the model file that ran. */

static void
ngx_http_learn_lua_hook(lua_State *L, lua_Debug *ar)
{
    ngx_http_learn_lua_load_t  *ld;

    lua_getfield(L, LUA_REGISTRYINDEX, NGX_HTTP_LEARN_LUA_LOAD);
    ld = lua_touserdata(L, -1);
    lua_pop(L, 1);

    if (ld == NULL || lua_getinfo(L, "Sl", ar) == 0) {
        return;
    }

    if (ar->source[0] == '@' && ar->currentline > 0
        && ngx_strcmp(ar->source + 1, ld->path) == 0)
    {
        ld->line = ar->currentline;
    }
}


/*
 * An absolute FILE is used as it is; a relative one is looked up next
 * to nginx.conf, then under the prefix, then in the module's lua/
 * directory, so "models/xor.lua" finds the examples shipped with it.
 */

static ngx_int_t
ngx_http_learn_lua_resolve(ngx_conf_t *cf, ngx_http_learn_main_conf_t *lmcf,
    ngx_str_t *file, ngx_str_t *path)
{
    u_char           *p;
    ngx_uint_t        i, n;
    ngx_str_t         cand[3];
    ngx_file_info_t   fi;

    for (i = 0; i < 2; i++) {
        cand[i] = *file;

        if (ngx_conf_full_name(cf->cycle, &cand[i], i == 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_learn_lua_find_dir(cf, &lmcf->lua_dir) != NGX_OK) {
        return NGX_ERROR;
    }

    n = 2;

    if (lmcf->lua_dir.len) {
        cand[2].len = lmcf->lua_dir.len + 1 + file->len;
        cand[2].data = ngx_pnalloc(cf->pool, cand[2].len);
        if (cand[2].data == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(cand[2].data, "%V/%V", &lmcf->lua_dir, file);
        n = 3;
    }

    for (i = 0; i < n; i++) {
        p = ngx_pnalloc(cf->pool, cand[i].len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, cand[i].data, cand[i].len);
        p[cand[i].len] = '\0';

        if (ngx_file_info(p, &fi) != NGX_FILE_ERROR && ngx_is_file(&fi)) {
            path->data = p;
            path->len = cand[i].len;
            return NGX_OK;
        }

        if (file->data[0] == '/') {
            break;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                       "model file \"%V\" not found (looked in the conf "
                       "directory, the prefix and \"%V\")",
                       file, &lmcf->lua_dir);

    return NGX_ERROR;
}


/*
 * The module's own lua/ directory: two levels up from the loaded .so
 * (build/ngx_http_learn_module.so in the repository).  Left empty when
 * there is none; learn_lua_path then has to provide learn.*.
 */

ngx_int_t
ngx_http_learn_lua_find_dir(ngx_conf_t *cf, ngx_str_t *dir)
{
    u_char           *last;
    ngx_int_t         rc;
    ngx_str_t         so;
    ngx_file_info_t   fi;

    if (dir->len) {
        return NGX_OK;
    }

    rc = ngx_http_learn_module_dir(cf, &so, sizeof("/lua"));
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* the .so is in build/: lua/ is next to that */
    last = (rc == NGX_OK) ? (u_char *) strrchr((char *) so.data, '/') : NULL;

    if (last != NULL) {
        last = ngx_cpymem(last, "/lua", sizeof("/lua") - 1);
        *last = '\0';

        if (ngx_file_info(so.data, &fi) != NGX_FILE_ERROR && ngx_is_dir(&fi)) {
            dir->data = so.data;
            dir->len = last - so.data;
            return NGX_OK;
        }
    }

    /* installed elsewhere: learn_lua_path must name the lua/ directory */
    return NGX_OK;
}


/*
 * The directory of the loaded module file (dladdr), NUL-terminated, with
 * room for reserve more bytes; NGX_DECLINED when it is not known.
 */

ngx_int_t
ngx_http_learn_module_dir(ngx_conf_t *cf, ngx_str_t *dir, size_t reserve)
{
    u_char   *p, *slash;
    size_t    len;
    Dl_info   info;

    if (dladdr((void *) &ngx_http_learn_module, &info) == 0
        || info.dli_fname == NULL || info.dli_fname[0] != '/')
    {
        return NGX_DECLINED;
    }

    len = ngx_strlen(info.dli_fname);

    p = ngx_pnalloc(cf->pool, len + 1 + reserve);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, info.dli_fname, len + 1);

    slash = (u_char *) strrchr((char *) p, '/');
    *slash = '\0';

    dir->data = p;
    dir->len = slash - p;

    return NGX_OK;
}


static void
ngx_http_learn_lua_set_path(lua_State *L, ngx_http_learn_main_conf_t *lmcf)
{
    ngx_uint_t   i;
    ngx_str_t   *extra;

    /* package.path = "<lua_dir>/?.lua;<lua_dir>/?/init.lua" .. extras */

    lua_getglobal(L, "package");

    if (lmcf->lua_dir.len) {
        lua_pushlstring(L, (char *) lmcf->lua_dir.data, lmcf->lua_dir.len);
        lua_pushliteral(L, "/?.lua;");
        lua_pushlstring(L, (char *) lmcf->lua_dir.data, lmcf->lua_dir.len);
        lua_pushliteral(L, "/?/init.lua");
        lua_concat(L, 4);

    } else {
        lua_pushliteral(L, "");
    }

    if (lmcf->lua_paths != NGX_CONF_UNSET_PTR && lmcf->lua_paths != NULL) {
        extra = lmcf->lua_paths->elts;

        for (i = 0; i < lmcf->lua_paths->nelts; i++) {
            lua_pushliteral(L, ";");
            lua_pushlstring(L, (char *) extra[i].data, extra[i].len);
            lua_concat(L, 3);
        }
    }

    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
}


/*
 * The description returned by nn.model{...} -> spec.  The table may have
 * been changed after nn.model{} checked it, or made by hand: every field
 * is type-checked before it is used, and any error is raised (under the
 * lua_cpcall() of ngx_http_learn_lua_run()).
 */

static void
ngx_http_learn_lua_spec(lua_State *L, int model, lt_model_spec *spec)
{
    int          i;
    const char  *name;

    static const struct {
        const char    *name;
        lt_loss_kind   kind;
    } losses[] = {
        { "MSELoss", LT_LOSS_MSE },
        { "BCELoss", LT_LOSS_BCE },
        { "CrossEntropyLoss", LT_LOSS_CE }
    };

    if (!lua_istable(L, model)) {
        luaL_error(L, "the file must return nn.model{...}");
        return;
    }

    lua_getfield(L, model, "learn_model");
    if (!lua_toboolean(L, -1)) {
        luaL_error(L, "the file must return nn.model{...}");
        return;
    }
    lua_pop(L, 1);

    ngx_memzero(spec, sizeof(lt_model_spec));

    lua_getfield(L, model, "net");
    ngx_http_learn_lua_layers(L, lua_gettop(L), spec);
    lua_pop(L, 1);

    lua_getfield(L, model, "loss");
    name = NULL;

    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "loss");
        name = (lua_type(L, -1) == LUA_TSTRING) ? lua_tostring(L, -1) : NULL;
    }

    if (name == NULL) {
        luaL_error(L, "loss must be an nn loss such as nn.MSELoss()");
        return;
    }

    for (i = 0; i < (int) (sizeof(losses) / sizeof(losses[0])); i++) {
        if (ngx_strcmp(name, losses[i].name) == 0) {
            break;
        }
    }

    if (i == (int) (sizeof(losses) / sizeof(losses[0]))) {
        luaL_error(L, "unknown loss \"%s\"", name);
        return;
    }

    spec->loss = losses[i].kind;
    lua_pop(L, 2);

    lua_getfield(L, model, "optim");
    ngx_http_learn_lua_optim(L, lua_gettop(L), &spec->optim);
    lua_pop(L, 1);
}


static void
ngx_http_learn_lua_layers(lua_State *L, int net, lt_model_spec *spec)
{
    int                           i, n, layers, layer;
    const char                   *name;
    lt_layer_spec                *ls;
    ngx_http_learn_layer_name_t  *ln;

    if (!lua_istable(L, net)) {
        luaL_error(L, "net must be an nn.Sequential");
        return;
    }

    lua_getfield(L, net, "layers");
    if (!lua_istable(L, -1)) {
        luaL_error(L, "net must be an nn.Sequential");
        return;
    }

    layers = lua_gettop(L);

    n = (int) lua_objlen(L, layers);
    if (n > LT_MAX_LAYERS) {
        luaL_error(L, "too many layers (at most %d)", LT_MAX_LAYERS);
        return;
    }

    for (i = 0; i < n; i++) {
        lua_rawgeti(L, layers, i + 1);
        layer = lua_gettop(L);

        if (!lua_istable(L, layer)) {
            luaL_error(L, "layer %d of the Sequential is not an nn layer", i);
            return;
        }

        lua_getfield(L, layer, "layer");
        name = (lua_type(L, -1) == LUA_TSTRING) ? lua_tostring(L, -1) : NULL;

        for (ln = ngx_http_learn_layer_names; ln->name; ln++) {
            if (name && ngx_strcmp(name, ln->name) == 0) {
                break;
            }
        }

        if (ln->name == NULL) {
            luaL_error(L, "layer %d of the Sequential is not an nn layer", i);
            return;
        }

        lua_pop(L, 1);

        ls = &spec->layers[i];
        ls->kind = ln->kind;

        if (ls->kind == LT_LAYER_LINEAR) {
            ls->in = ngx_http_learn_lua_width(L, layer, i, "inputs");
            ls->out = ngx_http_learn_lua_width(L, layer, i, "outputs");
        }

        lua_pop(L, 1);
    }

    spec->nlayers = n;

    lua_pop(L, 1);
}


/* A Linear's inputs or outputs: an integer that fits an int (the C side
 * checks the real limits; a float outside int would be undefined). */

static int
ngx_http_learn_lua_width(lua_State *L, int layer, int i, const char *key)
{
    lua_Number  v;

    lua_getfield(L, layer, key);

    if (lua_type(L, -1) != LUA_TNUMBER) {
        return luaL_error(L, "layer %d (Linear): %s must be an integer in "
                          "[1, %d], not a %s", i, key, INT_MAX,
                          luaL_typename(L, -1));
    }

    v = lua_tonumber(L, -1);

    if (!(v >= 1 && v <= INT_MAX) || v != (lua_Number) (int) v) {
        return luaL_error(L, "layer %d (Linear): %s must be an integer in "
                          "[1, %d], got %f", i, key, INT_MAX, v);
    }

    lua_pop(L, 1);

    return (int) v;
}


static void
ngx_http_learn_lua_optim(lua_State *L, int optim, lt_optim_spec *spec)
{
    const char  *name;

    name = NULL;

    if (lua_istable(L, optim)) {
        lua_getfield(L, optim, "optim");
        name = (lua_type(L, -1) == LUA_TSTRING) ? lua_tostring(L, -1) : NULL;
    }

    if (name != NULL && ngx_strcmp(name, "SGD") == 0) {
        spec->kind = LT_OPTIM_SGD;

    } else if (name != NULL && ngx_strcmp(name, "Adam") == 0) {
        spec->kind = LT_OPTIM_ADAM;

    } else {
        luaL_error(L, "optim must be nn.SGD{...} or nn.Adam{...}");
        return;
    }

    lua_pop(L, 1);

    spec->lr = ngx_http_learn_lua_number(L, optim, "lr", 0.001f);
    spec->momentum = ngx_http_learn_lua_number(L, optim, "momentum", 0);
    spec->weight_decay = ngx_http_learn_lua_number(L, optim, "weight_decay",
                                                   0);
    spec->beta1 = ngx_http_learn_lua_number(L, optim, "beta1", 0.9f);
    spec->beta2 = ngx_http_learn_lua_number(L, optim, "beta2", 0.999f);
    spec->eps = ngx_http_learn_lua_number(L, optim, "eps", 1e-8f);
}


/* t[key], or def when it is nil; lt_model_build() checks the range. */

static float
ngx_http_learn_lua_number(lua_State *L, int t, const char *key, float def)
{
    lua_Number  v;

    lua_getfield(L, t, key);

    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }

    if (lua_type(L, -1) != LUA_TNUMBER) {
        luaL_error(L, "optim %s must be a number, not a %s", key,
                   luaL_typename(L, -1));
        return def;
    }

    v = lua_tonumber(L, -1);
    lua_pop(L, 1);

    /* a double outside float's range has no float value (undefined) */
    if (v != v) {
        return (float) v;
    }

    if (v > FLT_MAX || v < -FLT_MAX) {
        luaL_error(L, "optim %s is out of range", key);
        return def;
    }

    return (float) v;
}
