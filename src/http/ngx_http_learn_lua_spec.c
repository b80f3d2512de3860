
/*
 * The table nn.model{...} returns -> lt_model_spec.  The table may have
 * been changed after nn.model{} checked it, or made by hand, so every
 * field is type-checked here.  Reads are raw: no metamethod of the file
 * runs while the master reads its answer.  A field that this reader does
 * not know is an error, as in learn.nn: nothing is silently ignored.
 * Errors are raised (this runs under the loader's lua_cpcall()).
 */


#include "ngx_http_learn_lua.h"

#include <float.h>
#include <limits.h>


static void ngx_http_learn_lua_get(lua_State *L, int t, const char *key);
static void ngx_http_learn_lua_fields(lua_State *L, int t, const char *what,
    const char **known);
static void ngx_http_learn_lua_net(lua_State *L, int net,
    lt_model_spec *spec);
static void ngx_http_learn_lua_input(lua_State *L, int input,
    lt_model_spec *spec);
static void ngx_http_learn_lua_loss(lua_State *L, int loss,
    lt_model_spec *spec);
static void ngx_http_learn_lua_optim(lua_State *L, int optim,
    lt_optim_spec *spec);
static float ngx_http_learn_lua_number(lua_State *L, int t, const char *key,
    float def);


void
ngx_http_learn_lua_spec(lua_State *L, int model, lt_model_spec *spec)
{
    static const char  *fields[] = { "learn_model", "net", "loss", "optim",
                                     "input", NULL };

    if (!lua_istable(L, model)) {
        luaL_error(L, "the file must return nn.model{...}");
        return;
    }

    ngx_http_learn_lua_get(L, model, "learn_model");
    if (lua_type(L, -1) != LUA_TBOOLEAN || !lua_toboolean(L, -1)) {
        luaL_error(L, "the file must return nn.model{...}");
        return;
    }
    lua_pop(L, 1);

    ngx_http_learn_lua_fields(L, model, "nn.model", fields);

    ngx_memzero(spec, sizeof(lt_model_spec));

    ngx_http_learn_lua_get(L, model, "net");
    ngx_http_learn_lua_net(L, lua_gettop(L), spec);
    lua_pop(L, 1);

    ngx_http_learn_lua_get(L, model, "loss");
    ngx_http_learn_lua_loss(L, lua_gettop(L), spec);
    lua_pop(L, 1);

    ngx_http_learn_lua_get(L, model, "optim");
    ngx_http_learn_lua_optim(L, lua_gettop(L), &spec->optim);
    lua_pop(L, 1);

    ngx_http_learn_lua_get(L, model, "input");
    ngx_http_learn_lua_input(L, lua_gettop(L), spec);
    lua_pop(L, 1);
}


/* input: nil, or one sample's shape (1 to 3 sizes) */

static void
ngx_http_learn_lua_input(lua_State *L, int input, lt_model_spec *spec)
{
    int         i, n;
    lua_Number  v;

    if (lua_isnil(L, input)) {
        return;
    }

    n = lua_istable(L, input) ? (int) lua_objlen(L, input) : 0;

    if (n < 1 || n > LT_MAX_SHAPE) {
        luaL_error(L, "nn.model: input must be a list of 1 to %d sizes",
                   LT_MAX_SHAPE);
        return;
    }

    for (i = 0; i < n; i++) {
        lua_rawgeti(L, input, i + 1);
        v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
        lua_pop(L, 1);

        if (!(v >= 1 && v <= INT_MAX) || v != (lua_Number) (int) v) {
            luaL_error(L, "nn.model: input sizes must be positive integers");
            return;
        }

        spec->input.d[i] = (int64_t) v;
    }

    spec->input.ndim = n;
}


/* pushes t[key], raw */

static void
ngx_http_learn_lua_get(lua_State *L, int t, const char *key)
{
    lua_pushstring(L, key);
    lua_rawget(L, t);
}


/* every key of t is a string in known */

static void
ngx_http_learn_lua_fields(lua_State *L, int t, const char *what,
    const char **known)
{
    ngx_uint_t  i;

    lua_pushnil(L);

    while (lua_next(L, t)) {
        lua_pop(L, 1);

        if (lua_type(L, -1) != LUA_TSTRING) {
            luaL_error(L, "%s has a field whose key is a %s", what,
                       luaL_typename(L, -1));
            return;
        }

        for (i = 0; known[i]; i++) {
            if (ngx_strcmp(lua_tostring(L, -1), known[i]) == 0) {
                break;
            }
        }

        if (known[i] == NULL) {
            luaL_error(L, "%s has no field \"%s\"", what,
                       lua_tostring(L, -1));
            return;
        }
    }
}


static void
ngx_http_learn_lua_net(lua_State *L, int net, lt_model_spec *spec)
{
    int                          layers;
    const char                  *name;

    static const char  *net_fields[] = { "container", "layers", NULL };

    if (!lua_istable(L, net)) {
        luaL_error(L, "net must be an nn.Sequential");
        return;
    }

    ngx_http_learn_lua_get(L, net, "container");
    name = (lua_type(L, -1) == LUA_TSTRING) ? lua_tostring(L, -1) : NULL;
    if (name == NULL || ngx_strcmp(name, "Sequential") != 0) {
        luaL_error(L, "net must be an nn.Sequential");
        return;
    }
    lua_pop(L, 1);

    ngx_http_learn_lua_get(L, net, "layers");
    if (!lua_istable(L, -1)) {
        luaL_error(L, "net must be an nn.Sequential");
        return;
    }

    ngx_http_learn_lua_fields(L, net, "the Sequential", net_fields);

    layers = lua_gettop(L);

    ngx_http_learn_lua_layers(L, layers, "", 0, spec);

    lua_pop(L, 1);
}


static void
ngx_http_learn_lua_loss(lua_State *L, int loss, lt_model_spec *spec)
{
    ngx_uint_t   i;
    const char  *name;

    static const char  *fields[] = { "loss", NULL };

    static const struct {
        const char    *name;
        lt_loss_kind   kind;
    } losses[] = {
        { "MSELoss", LT_LOSS_MSE },
        { "BCELoss", LT_LOSS_BCE },
        { "CrossEntropyLoss", LT_LOSS_CE },
        { NULL, 0 }
    };

    name = NULL;

    if (lua_istable(L, loss)) {
        ngx_http_learn_lua_get(L, loss, "loss");
        name = (lua_type(L, -1) == LUA_TSTRING) ? lua_tostring(L, -1) : NULL;
        lua_pop(L, 1);
    }

    if (name == NULL) {
        luaL_error(L, "loss must be an nn loss such as nn.MSELoss()");
        return;
    }

    for (i = 0; losses[i].name; i++) {
        if (ngx_strcmp(name, losses[i].name) == 0) {
            break;
        }
    }

    if (losses[i].name == NULL) {
        luaL_error(L, "unknown loss \"%s\"", name);
        return;
    }

    ngx_http_learn_lua_fields(L, loss, losses[i].name, fields);

    spec->loss = losses[i].kind;
}


static void
ngx_http_learn_lua_optim(lua_State *L, int optim, lt_optim_spec *spec)
{
    const char  *name;

    static const char  *sgd[] = { "optim", "lr", "momentum", "weight_decay",
                                  NULL };
    static const char  *adam[] = { "optim", "lr", "beta1", "beta2", "eps",
                                   "weight_decay", NULL };

    name = NULL;

    if (lua_istable(L, optim)) {
        ngx_http_learn_lua_get(L, optim, "optim");
        name = (lua_type(L, -1) == LUA_TSTRING) ? lua_tostring(L, -1) : NULL;
        lua_pop(L, 1);
    }

    if (name != NULL && ngx_strcmp(name, "SGD") == 0) {
        spec->kind = LT_OPTIM_SGD;
        ngx_http_learn_lua_fields(L, optim, "SGD", sgd);

    } else if (name != NULL && ngx_strcmp(name, "Adam") == 0) {
        spec->kind = LT_OPTIM_ADAM;
        ngx_http_learn_lua_fields(L, optim, "Adam", adam);

    } else {
        luaL_error(L, "optim must be nn.SGD{...} or nn.Adam{...}");
        return;
    }

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

    ngx_http_learn_lua_get(L, t, key);

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
    if (v != v || v > FLT_MAX || v < -FLT_MAX) {
        luaL_error(L, "optim %s is out of range", key);
        return def;
    }

    return (float) v;
}
