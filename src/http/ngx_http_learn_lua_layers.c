
/*
 * The layers of an nn.Sequential -> lt_layer_spec, nested Sequentials
 * flattened with PyTorch's state-dict names ("1.0").  Each kind lists
 * the fields learn.nn writes; any other field is an error, and every
 * field is type-checked (the table may have been made by hand).  Reads
 * are raw.  Errors are raised (this runs under the loader's
 * lua_cpcall()); lt_model_build() checks ranges and shapes afterwards.
 */


#include "ngx_http_learn_lua.h"

#include <float.h>
#include <limits.h>
#include <math.h>


#define NGX_HTTP_LEARN_LUA_MAX_DEPTH  8


typedef enum {
    NGX_HTTP_LEARN_F_INT = 0,       /* int */
    NGX_HTTP_LEARN_F_PAIR,          /* a list of 1 (into [1]) or 2 ints */
    NGX_HTTP_LEARN_F_FLOAT,
    NGX_HTTP_LEARN_F_NOT,           /* boolean, stored negated */
    NGX_HTTP_LEARN_F_BOOL,          /* boolean */
    NGX_HTTP_LEARN_F_INDEX,         /* int or nil, stored + 1 */
    NGX_HTTP_LEARN_F_SHAPE          /* a list of 1 to 3 sizes */
} ngx_http_learn_lua_ftype_e;


typedef struct {
    const char                    *key;
    ngx_http_learn_lua_ftype_e     type;
    size_t                         off;
} ngx_http_learn_lua_field_t;


typedef struct {
    const char                    *name;
    lt_layer_kind                  kind;
    const ngx_http_learn_lua_field_t  *fields;
} ngx_http_learn_lua_kind_t;


#define F(key, type, member)                                                 \
    { key, NGX_HTTP_LEARN_F_##type, offsetof(lt_layer_spec, member) }
#define F_END  { NULL, 0, 0 }


static const ngx_http_learn_lua_field_t  ngx_http_learn_f_none[] = {
    F_END
};

static const ngx_http_learn_lua_field_t  ngx_http_learn_f_linear[] = {
    F("inputs", INT, in), F("outputs", INT, out), F("bias", NOT, no_bias),
    F_END
};

static const ngx_http_learn_lua_field_t  ngx_http_learn_f_gelu[] = {
    F("approximate", BOOL, approximate), F_END
};

static const ngx_http_learn_lua_field_t  ngx_http_learn_f_leaky[] = {
    F("negative_slope", FLOAT, a), F_END
};

static const ngx_http_learn_lua_field_t  ngx_http_learn_f_elu[] = {
    F("alpha", FLOAT, a), F_END
};

static const ngx_http_learn_lua_field_t  ngx_http_learn_f_softplus[] = {
    F("beta", FLOAT, a), F("threshold", FLOAT, b), F_END
};

static const ngx_http_learn_lua_field_t  ngx_http_learn_f_flatten[] = {
    F("start_dim", INT, dim[0]), F("end_dim", INT, dim[1]), F_END
};

static const ngx_http_learn_lua_field_t  ngx_http_learn_f_dropout[] = {
    F("p", FLOAT, a), F_END
};

static const ngx_http_learn_lua_field_t  ngx_http_learn_f_conv[] = {
    F("in_channels", INT, in), F("out_channels", INT, out),
    F("kernel_size", PAIR, kernel), F("stride", PAIR, stride),
    F("padding", PAIR, padding), F("dilation", PAIR, dilation),
    F("groups", INT, groups), F("bias", NOT, no_bias), F_END
};

static const ngx_http_learn_lua_field_t  ngx_http_learn_f_maxpool[] = {
    F("kernel_size", PAIR, kernel), F("stride", PAIR, stride),
    F("padding", PAIR, padding), F("dilation", PAIR, dilation), F_END
};

static const ngx_http_learn_lua_field_t  ngx_http_learn_f_avgpool[] = {
    F("kernel_size", PAIR, kernel), F("stride", PAIR, stride),
    F("padding", PAIR, padding), F("count_include_pad", NOT, exclude_pad),
    F_END
};

static const ngx_http_learn_lua_field_t  ngx_http_learn_f_adaptive[] = {
    F("output_size", PAIR, dim), F_END
};

static const ngx_http_learn_lua_field_t  ngx_http_learn_f_batchnorm[] = {
    F("num_features", INT, in), F("eps", FLOAT, a), F("momentum", FLOAT, b),
    F("affine", NOT, no_bias), F("track_running_stats", NOT, no_stats),
    F_END
};

static const ngx_http_learn_lua_field_t  ngx_http_learn_f_layernorm[] = {
    F("normalized_shape", SHAPE, norm), F("eps", FLOAT, a),
    F("elementwise_affine", NOT, no_bias), F_END
};

static const ngx_http_learn_lua_field_t  ngx_http_learn_f_embedding[] = {
    F("num_embeddings", INT, in), F("embedding_dim", INT, out),
    F("padding_idx", INDEX, padding_idx), F_END
};


static const ngx_http_learn_lua_kind_t  ngx_http_learn_lua_kinds[] = {
    { "Linear", LT_LAYER_LINEAR, ngx_http_learn_f_linear },
    { "ReLU", LT_LAYER_RELU, ngx_http_learn_f_none },
    { "Tanh", LT_LAYER_TANH, ngx_http_learn_f_none },
    { "Sigmoid", LT_LAYER_SIGMOID, ngx_http_learn_f_none },
    { "Softmax", LT_LAYER_SOFTMAX, ngx_http_learn_f_none },
    { "LogSoftmax", LT_LAYER_LOGSOFTMAX, ngx_http_learn_f_none },
    { "GELU", LT_LAYER_GELU, ngx_http_learn_f_gelu },
    { "LeakyReLU", LT_LAYER_LEAKY_RELU, ngx_http_learn_f_leaky },
    { "ELU", LT_LAYER_ELU, ngx_http_learn_f_elu },
    { "SiLU", LT_LAYER_SILU, ngx_http_learn_f_none },
    { "Softplus", LT_LAYER_SOFTPLUS, ngx_http_learn_f_softplus },
    { "Identity", LT_LAYER_IDENTITY, ngx_http_learn_f_none },
    { "Flatten", LT_LAYER_FLATTEN, ngx_http_learn_f_flatten },
    { "Dropout", LT_LAYER_DROPOUT, ngx_http_learn_f_dropout },
    { "Conv1d", LT_LAYER_CONV1D, ngx_http_learn_f_conv },
    { "Conv2d", LT_LAYER_CONV2D, ngx_http_learn_f_conv },
    { "MaxPool1d", LT_LAYER_MAXPOOL1D, ngx_http_learn_f_maxpool },
    { "MaxPool2d", LT_LAYER_MAXPOOL2D, ngx_http_learn_f_maxpool },
    { "AvgPool1d", LT_LAYER_AVGPOOL1D, ngx_http_learn_f_avgpool },
    { "AvgPool2d", LT_LAYER_AVGPOOL2D, ngx_http_learn_f_avgpool },
    { "AdaptiveAvgPool2d", LT_LAYER_ADAPTIVE_AVGPOOL2D,
      ngx_http_learn_f_adaptive },
    { "BatchNorm1d", LT_LAYER_BATCHNORM1D, ngx_http_learn_f_batchnorm },
    { "BatchNorm2d", LT_LAYER_BATCHNORM2D, ngx_http_learn_f_batchnorm },
    { "LayerNorm", LT_LAYER_LAYERNORM, ngx_http_learn_f_layernorm },
    { "Embedding", LT_LAYER_EMBEDDING, ngx_http_learn_f_embedding },
    { NULL, 0, NULL }
};


static void ngx_http_learn_lua_layer(lua_State *L, int layer,
    const char *name, lt_model_spec *spec);
static void ngx_http_learn_lua_field(lua_State *L, const char *name,
    const char *kind, const ngx_http_learn_lua_field_t *f,
    lt_layer_spec *ls);
static int ngx_http_learn_lua_int(lua_State *L, int idx, const char *name,
    const char *kind, const char *key, int lo);


/* pushes t[key], raw */

static void
ngx_http_learn_lua_rawfield(lua_State *L, int t, const char *key)
{
    lua_pushstring(L, key);
    lua_rawget(L, t);
}


/*
 * The layers list at index layers; prefix is the state-dict name of the
 * Sequential holding them ("" at the top).
 */

void
ngx_http_learn_lua_layers(lua_State *L, int layers, const char *prefix,
    int depth, lt_model_spec *spec)
{
    int          i, n, layer;
    char         name[LT_NAME_LEN];
    const char  *container;

    if (depth > NGX_HTTP_LEARN_LUA_MAX_DEPTH) {
        luaL_error(L, "Sequentials nested more than %d deep",
                   NGX_HTTP_LEARN_LUA_MAX_DEPTH);
        return;
    }

    n = (int) lua_objlen(L, layers);

    for (i = 0; i < n; i++) {
        lua_rawgeti(L, layers, i + 1);
        layer = lua_gettop(L);

        if (ngx_snprintf((u_char *) name, sizeof(name) - 1, "%s%s%d%Z",
                         prefix, prefix[0] ? "." : "", i)
            == (u_char *) name + sizeof(name) - 1)
        {
            luaL_error(L, "layer name %s.%d is too long", prefix, i);
            return;
        }
        name[sizeof(name) - 1] = '\0';

        if (!lua_istable(L, layer)) {
            luaL_error(L, "layer %s of the Sequential is not an nn layer",
                       name);
            return;
        }

        ngx_http_learn_lua_rawfield(L, layer, "container");
        container = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                   : NULL;
        lua_pop(L, 1);

        if (container != NULL && ngx_strcmp(container, "Sequential") == 0) {
            ngx_http_learn_lua_rawfield(L, layer, "layers");
            if (!lua_istable(L, -1)) {
                luaL_error(L, "layer %s: a Sequential without layers", name);
                return;
            }
            ngx_http_learn_lua_layers(L, lua_gettop(L), name, depth + 1,
                                      spec);
            lua_pop(L, 1);

        } else {
            ngx_http_learn_lua_layer(L, layer, name, spec);
        }

        lua_pop(L, 1);
    }
}


static void
ngx_http_learn_lua_layer(lua_State *L, int layer, const char *name,
    lt_model_spec *spec)
{
    const char                        *kind, *key;
    lt_layer_spec                     *ls;
    const ngx_http_learn_lua_kind_t   *k;
    const ngx_http_learn_lua_field_t  *f;

    ngx_http_learn_lua_rawfield(L, layer, "layer");
    kind = (lua_type(L, -1) == LUA_TSTRING) ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);

    for (k = ngx_http_learn_lua_kinds; k->name; k++) {
        if (kind && ngx_strcmp(kind, k->name) == 0) {
            break;
        }
    }

    if (k->name == NULL) {
        luaL_error(L, "layer %s of the Sequential is not an nn layer", name);
        return;
    }

    if (spec->nlayers >= LT_MAX_LAYERS) {
        luaL_error(L, "too many layers (at most %d)", LT_MAX_LAYERS);
        return;
    }

    ls = &spec->layers[spec->nlayers++];
    ngx_memzero(ls, sizeof(lt_layer_spec));
    ls->kind = k->kind;
    ngx_cpystrn((u_char *) ls->name, (u_char *) name, LT_NAME_LEN);

    /* PyTorch's defaults where a hand-made table leaves a field out */
    switch (k->kind) {
    case LT_LAYER_LEAKY_RELU:
        ls->a = 0.01f;
        break;
    case LT_LAYER_ELU:
    case LT_LAYER_SOFTPLUS:
        ls->a = 1.0f;
        ls->b = 20.0f;
        break;
    case LT_LAYER_DROPOUT:
        ls->a = 0.5f;
        break;
    case LT_LAYER_BATCHNORM1D:
    case LT_LAYER_BATCHNORM2D:
        ls->a = 1e-5f;
        ls->b = 0.1f;
        break;
    case LT_LAYER_LAYERNORM:
        ls->a = 1e-5f;
        break;
    default:
        break;
    }

    /* every key is "layer" or one of the kind's fields */
    lua_pushnil(L);

    while (lua_next(L, layer)) {
        lua_pop(L, 1);

        if (lua_type(L, -1) != LUA_TSTRING) {
            luaL_error(L, "layer %s (%s) has a field whose key is a %s",
                       name, k->name, luaL_typename(L, -1));
            return;
        }

        key = lua_tostring(L, -1);

        for (f = k->fields; f->key; f++) {
            if (ngx_strcmp(key, f->key) == 0) {
                break;
            }
        }

        if (f->key == NULL && ngx_strcmp(key, "layer") != 0) {
            luaL_error(L, "layer %s (%s) has no field \"%s\"", name, k->name,
                       key);
            return;
        }
    }

    for (f = k->fields; f->key; f++) {
        ngx_http_learn_lua_rawfield(L, layer, f->key);

        if (!lua_isnil(L, -1)) {
            ngx_http_learn_lua_field(L, name, k->name, f, ls);
        }

        lua_pop(L, 1);
    }
}


/* the value on top of the stack into ls, by f */

static void
ngx_http_learn_lua_field(lua_State *L, const char *name, const char *kind,
    const ngx_http_learn_lua_field_t *f, lt_layer_spec *ls)
{
    int          i, n, *ip, top, lo;
    lt_shape    *shape;
    lua_Number   v;

    top = lua_gettop(L);
    ip = (int *) ((u_char *) ls + f->off);

    /* Flatten's dims count from the end when negative; a padding, an
     * output size (0: keep) or an index may be 0 */
    lo = ls->kind == LT_LAYER_FLATTEN ? -LT_MAX_SHAPE - 1
         : (f->type == NGX_HTTP_LEARN_F_PAIR
            || f->type == NGX_HTTP_LEARN_F_INDEX) ? 0 : 1;

    switch (f->type) {

    case NGX_HTTP_LEARN_F_INT:
        *ip = ngx_http_learn_lua_int(L, top, name, kind, f->key, lo);
        return;

    case NGX_HTTP_LEARN_F_INDEX:
        *ip = ngx_http_learn_lua_int(L, top, name, kind, f->key, lo) + 1;
        return;

    case NGX_HTTP_LEARN_F_NOT:
    case NGX_HTTP_LEARN_F_BOOL:
        if (lua_type(L, top) != LUA_TBOOLEAN) {
            luaL_error(L, "layer %s (%s): %s must be a boolean, not a %s",
                       name, kind, f->key, luaL_typename(L, top));
            return;
        }
        *ip = lua_toboolean(L, top) ^ (f->type == NGX_HTTP_LEARN_F_NOT);
        return;

    case NGX_HTTP_LEARN_F_FLOAT:
        v = lua_type(L, top) == LUA_TNUMBER ? lua_tonumber(L, top) : NAN;
        if (v != v || v > FLT_MAX || v < -FLT_MAX) {
            luaL_error(L, "layer %s (%s): %s must be a finite number", name,
                       kind, f->key);
            return;
        }
        *(float *) ip = (float) v;
        return;

    case NGX_HTTP_LEARN_F_PAIR:
    case NGX_HTTP_LEARN_F_SHAPE:
        n = lua_istable(L, top) ? (int) lua_objlen(L, top) : 0;

        if (n < 1 || n > (f->type == NGX_HTTP_LEARN_F_PAIR ? 2 : 3)) {
            luaL_error(L, "layer %s (%s): %s must be a list of %s sizes",
                       name, kind, f->key,
                       f->type == NGX_HTTP_LEARN_F_PAIR ? "1 or 2"
                                                        : "1 to 3");
            return;
        }

        shape = (lt_shape *) ip;
        if (f->type == NGX_HTTP_LEARN_F_SHAPE) {
            shape->ndim = n;
        }

        for (i = 0; i < n; i++) {
            lua_rawgeti(L, top, i + 1);

            if (f->type == NGX_HTTP_LEARN_F_SHAPE) {
                shape->d[i] = ngx_http_learn_lua_int(L, top + 1, name,
                                                     kind, f->key, lo);
            } else {
                /* a 1-d layer's list goes into [1] */
                ip[i + 2 - n] = ngx_http_learn_lua_int(L, top + 1, name,
                                                       kind, f->key, lo);
            }

            lua_pop(L, 1);
        }
        return;
    }
}


/* An integer that fits an int (the C side checks the real ranges; a
 * float outside int would be undefined). */

static int
ngx_http_learn_lua_int(lua_State *L, int idx, const char *name,
    const char *kind, const char *key, int lo)
{
    lua_Number  v;

    if (lua_type(L, idx) != LUA_TNUMBER) {
        return luaL_error(L, "layer %s (%s): %s must be an integer in "
                          "[%d, %d], not a %s", name, kind, key, lo, INT_MAX,
                          luaL_typename(L, idx));
    }

    v = lua_tonumber(L, idx);

    if (!(v >= lo && v <= INT_MAX) || v != (lua_Number) (int) v) {
        return luaL_error(L, "layer %s (%s): %s must be an integer in "
                          "[%d, %d], got %f", name, kind, key, lo, INT_MAX,
                          v);
    }

    return (int) v;
}
