
/*
 * Model files at configuration time: run FILE.lua in a throw-away LuaJIT
 * state with a restricted environment and turn the description it
 * returns into an lt_model_spec.
 */


#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* dladdr() */
#endif

#include <dlfcn.h>

#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

#include "ngx_http_learn.h"


static ngx_int_t ngx_http_learn_lua_resolve(ngx_conf_t *cf,
    ngx_http_learn_main_conf_t *lmcf, ngx_str_t *file, ngx_str_t *path);
static ngx_int_t ngx_http_learn_lua_set_path(ngx_conf_t *cf, lua_State *L,
    ngx_http_learn_main_conf_t *lmcf);
static const char *ngx_http_learn_lua_spec(lua_State *L,
    lt_model_spec *spec);
static const char *ngx_http_learn_lua_layers(lua_State *L,
    lt_model_spec *spec);
static const char *ngx_http_learn_lua_optim(lua_State *L,
    lt_optim_spec *optim);
static float ngx_http_learn_lua_number(lua_State *L, const char *key,
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
    int          rc;
    ngx_str_t    path;
    lua_State   *L;
    const char  *msg;

    if (ngx_http_learn_lua_resolve(cf, lmcf, file, &path) != NGX_OK) {
        return NGX_ERROR;
    }

    L = luaL_newstate();
    if (L == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "luaL_newstate() failed");
        return NGX_ERROR;
    }

    luaL_openlibs(L);

    if (ngx_http_learn_lua_set_path(cf, L, lmcf) != NGX_OK) {
        lua_close(L);
        return NGX_ERROR;
    }

    /* the model file's environment: learn.sandbox returns its factory */

    lua_getglobal(L, "require");
    lua_pushliteral(L, "learn.sandbox");

    if (lua_pcall(L, 1, 1, 0) != 0) {
        msg = lua_tostring(L, -1);
        goto failed;
    }

    if (lua_pcall(L, 0, 1, 0) != 0) {
        msg = lua_tostring(L, -1);
        goto failed;
    }

    rc = luaL_loadfile(L, (char *) path.data);
    if (rc != 0) {
        msg = lua_tostring(L, -1);
        goto failed;
    }

    lua_pushvalue(L, -2);
    lua_setfenv(L, -2);

    if (lua_pcall(L, 0, 1, 0) != 0) {
        msg = lua_tostring(L, -1);
        goto failed;
    }

    msg = ngx_http_learn_lua_spec(L, spec);
    if (msg != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s: %s", path.data, msg);
        lua_close(L);
        return NGX_ERROR;
    }

    lua_close(L);

    *file = path;

    return NGX_OK;

failed:

    /* Lua's messages already read "FILE.lua:LINE: reason" */
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "learn_model: %s",
                       msg ? msg : "unknown Lua error");
    lua_close(L);

    return NGX_ERROR;
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
    u_char           *p, *last;
    size_t            len;
    Dl_info           info;
    ngx_file_info_t   fi;

    if (dir->len) {
        return NGX_OK;
    }

    if (dladdr((void *) &ngx_http_learn_module, &info) != 0
        && info.dli_fname != NULL && info.dli_fname[0] == '/')
    {
        len = ngx_strlen(info.dli_fname);

        p = ngx_pnalloc(cf->pool, len + sizeof("/../lua"));
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, info.dli_fname, len + 1);

        /* strip the file name and its directory */
        last = (u_char *) strrchr((char *) p, '/');
        *last = '\0';
        last = (u_char *) strrchr((char *) p, '/');

        if (last != NULL) {
            last = ngx_cpymem(last, "/lua", sizeof("/lua") - 1);
            *last = '\0';

            if (ngx_file_info(p, &fi) != NGX_FILE_ERROR && ngx_is_dir(&fi)) {
                dir->data = p;
                dir->len = last - p;
                return NGX_OK;
            }
        }
    }

    /* installed elsewhere: learn_lua_path must name the lua/ directory */
    return NGX_OK;
}


static ngx_int_t
ngx_http_learn_lua_set_path(ngx_conf_t *cf, lua_State *L,
    ngx_http_learn_main_conf_t *lmcf)
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

    return NGX_OK;
}


/* The description returned by nn.model{...} -> spec; NULL or a message. */

static const char *
ngx_http_learn_lua_spec(lua_State *L, lt_model_spec *spec)
{
    const char  *name, *msg;

    if (!lua_istable(L, -1)) {
        return "the file must return nn.model{...}";
    }

    lua_getfield(L, -1, "learn_model");
    if (!lua_toboolean(L, -1)) {
        return "the file must return nn.model{...}";
    }
    lua_pop(L, 1);

    ngx_memzero(spec, sizeof(lt_model_spec));

    lua_getfield(L, -1, "net");
    msg = ngx_http_learn_lua_layers(L, spec);
    if (msg != NULL) {
        return msg;
    }
    lua_pop(L, 1);

    lua_getfield(L, -1, "loss");
    lua_getfield(L, -1, "loss");
    name = lua_tostring(L, -1);

    if (name == NULL) {
        return "the loss is not an nn loss";

    } else if (ngx_strcmp(name, "MSELoss") == 0) {
        spec->loss = LT_LOSS_MSE;

    } else if (ngx_strcmp(name, "BCELoss") == 0) {
        spec->loss = LT_LOSS_BCE;

    } else if (ngx_strcmp(name, "CrossEntropyLoss") == 0) {
        spec->loss = LT_LOSS_CE;

    } else {
        return "unknown loss";
    }

    lua_pop(L, 2);

    lua_getfield(L, -1, "optim");
    msg = ngx_http_learn_lua_optim(L, &spec->optim);
    lua_pop(L, 1);

    return msg;
}


static const char *
ngx_http_learn_lua_layers(lua_State *L, lt_model_spec *spec)
{
    int                           i, n;
    const char                   *name;
    lt_layer_spec                *layer;
    ngx_http_learn_layer_name_t  *ln;

    lua_getfield(L, -1, "layers");
    if (!lua_istable(L, -1)) {
        return "net must be an nn.Sequential";
    }

    n = (int) lua_objlen(L, -1);
    if (n > LT_MAX_LAYERS) {
        return "too many layers (at most 32)";
    }

    for (i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        lua_getfield(L, -1, "layer");
        name = lua_tostring(L, -1);

        layer = &spec->layers[i];

        for (ln = ngx_http_learn_layer_names; ln->name; ln++) {
            if (name && ngx_strcmp(name, ln->name) == 0) {
                break;
            }
        }

        lua_pop(L, 1);

        if (ln->name == NULL) {
            return "unknown layer in Sequential";
        }

        layer->kind = ln->kind;

        if (layer->kind == LT_LAYER_LINEAR) {
            layer->in = (int) ngx_http_learn_lua_number(L, "inputs", 0);
            layer->out = (int) ngx_http_learn_lua_number(L, "outputs", 0);
        }

        lua_pop(L, 1);
    }

    spec->nlayers = n;

    lua_pop(L, 1);

    return NULL;
}


static const char *
ngx_http_learn_lua_optim(lua_State *L, lt_optim_spec *optim)
{
    const char  *name;

    lua_getfield(L, -1, "optim");
    name = lua_tostring(L, -1);
    lua_pop(L, 1);

    if (name == NULL) {
        return "optim must be nn.SGD{...} or nn.Adam{...}";
    }

    if (ngx_strcmp(name, "SGD") == 0) {
        optim->kind = LT_OPTIM_SGD;

    } else if (ngx_strcmp(name, "Adam") == 0) {
        optim->kind = LT_OPTIM_ADAM;

    } else {
        return "optim must be nn.SGD{...} or nn.Adam{...}";
    }

    optim->lr = ngx_http_learn_lua_number(L, "lr", 0.001f);
    optim->momentum = ngx_http_learn_lua_number(L, "momentum", 0);
    optim->weight_decay = ngx_http_learn_lua_number(L, "weight_decay", 0);
    optim->beta1 = ngx_http_learn_lua_number(L, "beta1", 0.9f);
    optim->beta2 = ngx_http_learn_lua_number(L, "beta2", 0.999f);
    optim->eps = ngx_http_learn_lua_number(L, "eps", 1e-8f);

    return NULL;
}


/* t[key] of the table on the top of the stack, or def */

static float
ngx_http_learn_lua_number(lua_State *L, const char *key, float def)
{
    float  v;

    lua_getfield(L, -1, key);
    v = lua_isnumber(L, -1) ? (float) lua_tonumber(L, -1) : def;
    lua_pop(L, 1);

    return v;
}
