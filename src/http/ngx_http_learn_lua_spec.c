
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
static double ngx_http_learn_lua_double(lua_State *L, int t,
    const char *what, const char *key, double def);
static int ngx_http_learn_lua_bool(lua_State *L, int t, const char *what,
    const char *key);
static void ngx_http_learn_lua_pos_weight(lua_State *L, int loss,
    lt_loss_spec *spec);
static void ngx_http_learn_lua_schedule(lua_State *L, int sched,
    lt_schedule_spec *spec);
static void ngx_http_learn_lua_phase(lua_State *L, int t,
    lt_sched_phase *ph);
static int ngx_http_learn_lua_steps(lua_State *L, int t, const char *what,
    const char *key, int64_t *out, int max);


void
ngx_http_learn_lua_spec(lua_State *L, int model, lt_model_spec *spec)
{
    static const char  *fields[] = { "learn_model", "net", "loss", "optim",
                                     "schedule", "clip_grad_norm", "input",
                                     NULL };

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

    ngx_http_learn_lua_get(L, model, "schedule");
    if (!lua_isnil(L, -1)) {
        ngx_http_learn_lua_schedule(L, lua_gettop(L), &spec->schedule);
    }
    lua_pop(L, 1);

    /* lt_model_build() checks the range */
    spec->clip_grad_norm = (float) ngx_http_learn_lua_double(L, model,
                                                             "nn.model",
                                                             "clip_grad_norm",
                                                             0);

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
    ngx_uint_t     i;
    const char    *name;
    lt_loss_spec  *l;

    static const char  *plain[] = { "loss", NULL };
    static const char  *smooth_l1[] = { "loss", "beta", NULL };
    static const char  *huber[] = { "loss", "delta", NULL };
    static const char  *ce[] = { "loss", "label_smoothing", NULL };
    static const char  *bce_logits[] = { "loss", "pos_weight", NULL };

    static const struct {
        const char    *name;
        lt_loss_kind   kind;
        const char   **fields;
    } losses[] = {
        { "MSELoss", LT_LOSS_MSE, plain },
        { "BCELoss", LT_LOSS_BCE, plain },
        { "CrossEntropyLoss", LT_LOSS_CE, ce },
        { "NLLLoss", LT_LOSS_NLL, plain },
        { "L1Loss", LT_LOSS_L1, plain },
        { "SmoothL1Loss", LT_LOSS_SMOOTH_L1, smooth_l1 },
        { "HuberLoss", LT_LOSS_HUBER, huber },
        { "BCEWithLogitsLoss", LT_LOSS_BCE_LOGITS, bce_logits },
        { NULL, 0, NULL }
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

    ngx_http_learn_lua_fields(L, loss, losses[i].name, losses[i].fields);

    spec->loss = losses[i].kind;
    l = &spec->loss_opt;
    name = losses[i].name;

    switch (spec->loss) {
    case LT_LOSS_SMOOTH_L1:
        l->beta = (float) ngx_http_learn_lua_double(L, loss, name, "beta", 1);
        break;
    case LT_LOSS_HUBER:
        l->beta = (float) ngx_http_learn_lua_double(L, loss, name, "delta",
                                                    1);
        break;
    case LT_LOSS_CE:
        l->label_smoothing = (float) ngx_http_learn_lua_double(L, loss, name,
                                                  "label_smoothing", 0);
        break;
    case LT_LOSS_BCE_LOGITS:
        ngx_http_learn_lua_pos_weight(L, loss, l);
        break;
    default:
        break;
    }
}


/* nil, or a list of 1 to LT_MAX_POS_WEIGHT numbers */

static void
ngx_http_learn_lua_pos_weight(lua_State *L, int loss, lt_loss_spec *spec)
{
    int  i, n, t;

    ngx_http_learn_lua_get(L, loss, "pos_weight");

    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }

    t = lua_gettop(L);
    n = lua_istable(L, t) ? (int) lua_objlen(L, t) : 0;

    if (n < 1 || n > LT_MAX_POS_WEIGHT) {
        luaL_error(L, "BCEWithLogitsLoss: pos_weight must be a list of 1 to "
                   "%d numbers", LT_MAX_POS_WEIGHT);
        return;
    }

    for (i = 0; i < n; i++) {
        lua_rawgeti(L, t, i + 1);

        if (lua_type(L, -1) != LUA_TNUMBER) {
            luaL_error(L, "BCEWithLogitsLoss: pos_weight[%d] is not a "
                       "number", i + 1);
            return;
        }

        spec->pos_weight[i] = (float) lua_tonumber(L, -1);
        lua_pop(L, 1);
    }

    spec->npos_weight = n;
    lua_pop(L, 1);
}


static void
ngx_http_learn_lua_optim(lua_State *L, int optim, lt_optim_spec *spec)
{
    ngx_uint_t   i;
    const char  *name;

    static const char  *sgd[] = { "optim", "lr", "momentum", "weight_decay",
                                  "dampening", "nesterov", NULL };
    static const char  *adam[] = { "optim", "lr", "beta1", "beta2", "eps",
                                   "weight_decay", "amsgrad", NULL };
    static const char  *rmsprop[] = { "optim", "lr", "alpha", "eps",
                                      "weight_decay", "momentum", "centered",
                                      NULL };
    static const char  *adagrad[] = { "optim", "lr", "lr_decay",
                                      "weight_decay",
                                      "initial_accumulator_value", "eps",
                                      NULL };

    static const struct {
        const char     *name;
        lt_optim_kind   kind;
        const char    **fields;
        float           lr, eps, weight_decay;
    } optims[] = {
        { "SGD", LT_OPTIM_SGD, sgd, 0.001f, 0, 0 },
        { "Adam", LT_OPTIM_ADAM, adam, 0.001f, 1e-8f, 0 },
        { "AdamW", LT_OPTIM_ADAMW, adam, 0.001f, 1e-8f, 0.01f },
        { "RMSprop", LT_OPTIM_RMSPROP, rmsprop, 0.01f, 1e-8f, 0 },
        { "Adagrad", LT_OPTIM_ADAGRAD, adagrad, 0.01f, 1e-10f, 0 },
        { NULL, 0, NULL, 0, 0, 0 }
    };

    name = NULL;

    if (lua_istable(L, optim)) {
        ngx_http_learn_lua_get(L, optim, "optim");
        name = (lua_type(L, -1) == LUA_TSTRING) ? lua_tostring(L, -1) : NULL;
        lua_pop(L, 1);
    }

    for (i = 0; name != NULL && optims[i].name; i++) {
        if (ngx_strcmp(name, optims[i].name) == 0) {
            break;
        }
    }

    if (name == NULL || optims[i].name == NULL) {
        luaL_error(L, "optim must be nn.SGD{...}, nn.Adam{...}, "
                   "nn.AdamW{...}, nn.RMSprop{...} or nn.Adagrad{...}");
        return;
    }

    spec->kind = optims[i].kind;
    ngx_http_learn_lua_fields(L, optim, optims[i].name, optims[i].fields);

    spec->lr = ngx_http_learn_lua_number(L, optim, "lr", optims[i].lr);
    spec->momentum = ngx_http_learn_lua_number(L, optim, "momentum", 0);
    spec->weight_decay = ngx_http_learn_lua_number(L, optim, "weight_decay",
                                                   optims[i].weight_decay);
    spec->beta1 = ngx_http_learn_lua_number(L, optim, "beta1", 0.9f);
    spec->beta2 = ngx_http_learn_lua_number(L, optim, "beta2", 0.999f);
    spec->eps = ngx_http_learn_lua_number(L, optim, "eps", optims[i].eps);
    spec->dampening = ngx_http_learn_lua_number(L, optim, "dampening", 0);
    spec->alpha = ngx_http_learn_lua_number(L, optim, "alpha", 0.99f);
    spec->lr_decay = ngx_http_learn_lua_number(L, optim, "lr_decay", 0);
    spec->initial_accumulator_value =
        ngx_http_learn_lua_number(L, optim, "initial_accumulator_value", 0);
    spec->nesterov = ngx_http_learn_lua_bool(L, optim, "optim", "nesterov");
    spec->amsgrad = ngx_http_learn_lua_bool(L, optim, "optim", "amsgrad");
    spec->centered = ngx_http_learn_lua_bool(L, optim, "optim", "centered");
}


/* A schedule table of learn.nn: one scheduler, or a SequentialLR of
 * them; lt_model_build() checks the values. */

static void
ngx_http_learn_lua_schedule(lua_State *L, int sched, lt_schedule_spec *spec)
{
    int          i, n, list;
    const char  *name;

    static const char  *seq[] = { "schedule", "schedulers", "milestones",
                                  NULL };

    if (!lua_istable(L, sched)) {
        luaL_error(L, "schedule must be a schedule such as nn.StepLR{...}");
        return;
    }

    ngx_http_learn_lua_get(L, sched, "schedule");
    name = (lua_type(L, -1) == LUA_TSTRING) ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);

    if (name == NULL || ngx_strcmp(name, "SequentialLR") != 0) {
        spec->nphases = 1;
        ngx_http_learn_lua_phase(L, sched, &spec->phases[0]);
        return;
    }

    ngx_http_learn_lua_fields(L, sched, "SequentialLR", seq);

    ngx_http_learn_lua_get(L, sched, "schedulers");
    list = lua_gettop(L);
    n = lua_istable(L, list) ? (int) lua_objlen(L, list) : 0;

    if (n < 1 || n > LT_MAX_SCHED) {
        luaL_error(L, "SequentialLR: schedulers must be a list of 1 to %d "
                   "schedules", LT_MAX_SCHED);
        return;
    }

    for (i = 0; i < n; i++) {
        lua_rawgeti(L, list, i + 1);
        if (!lua_istable(L, -1)) {
            luaL_error(L, "SequentialLR: scheduler %d is not a schedule",
                       i + 1);
            return;
        }
        ngx_http_learn_lua_phase(L, lua_gettop(L), &spec->phases[i]);
        lua_pop(L, 1);
    }

    lua_pop(L, 1);

    spec->nphases = n;

    if (ngx_http_learn_lua_steps(L, sched, "SequentialLR", "milestones",
                                 spec->milestones, LT_MAX_SCHED - 1)
        != n - 1)
    {
        luaL_error(L, "SequentialLR expects number of schedulers provided "
                   "to be one more than the number of milestone points");
    }
}


static void
ngx_http_learn_lua_phase(lua_State *L, int t, lt_sched_phase *ph)
{
    ngx_uint_t   i;
    const char  *name;
    double       v;

    static const char  *step[] = { "schedule", "step_size", "gamma", NULL };
    static const char  *multistep[] = { "schedule", "milestones", "gamma",
                                        NULL };
    static const char  *exponential[] = { "schedule", "gamma", NULL };
    static const char  *linear[] = { "schedule", "start_factor",
                                     "end_factor", "total_iters", NULL };
    static const char  *cosine[] = { "schedule", "T_max", "eta_min", NULL };

    static const struct {
        const char      *name;
        lt_sched_kind    kind;
        const char     **fields;
        const char      *steps;     /* the field held in step_size */
    } kinds[] = {
        { "StepLR", LT_SCHED_STEP, step, "step_size" },
        { "MultiStepLR", LT_SCHED_MULTISTEP, multistep, NULL },
        { "ExponentialLR", LT_SCHED_EXPONENTIAL, exponential, NULL },
        { "LinearLR", LT_SCHED_LINEAR, linear, "total_iters" },
        { "CosineAnnealingLR", LT_SCHED_COSINE, cosine, "T_max" },
        { NULL, 0, NULL, NULL }
    };

    ngx_http_learn_lua_get(L, t, "schedule");
    name = (lua_type(L, -1) == LUA_TSTRING) ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);

    for (i = 0; name != NULL && kinds[i].name; i++) {
        if (ngx_strcmp(name, kinds[i].name) == 0) {
            break;
        }
    }

    if (name == NULL || kinds[i].name == NULL) {
        luaL_error(L, "schedule must be nn.StepLR, nn.MultiStepLR, "
                   "nn.ExponentialLR, nn.LinearLR, nn.CosineAnnealingLR or "
                   "nn.SequentialLR");
        return;
    }

    ngx_http_learn_lua_fields(L, t, kinds[i].name, kinds[i].fields);

    ph->kind = kinds[i].kind;
    name = kinds[i].name;

    if (kinds[i].steps) {
        /* 0 when missing: lt_model_build() refuses it */
        v = ngx_http_learn_lua_double(L, t, name, kinds[i].steps, 0);
        if (v != (double) (int64_t) v || v < 0 || v > 9007199254740992.0) {
            luaL_error(L, "%s: %s must be a whole number", name,
                       kinds[i].steps);
            return;
        }
        ph->step_size = (int64_t) v;
    }

    ph->gamma = ngx_http_learn_lua_double(L, t, name, "gamma", 0.1);
    ph->start_factor = ngx_http_learn_lua_double(L, t, name, "start_factor",
                                                 1.0 / 3);
    ph->end_factor = ngx_http_learn_lua_double(L, t, name, "end_factor", 1.0);
    ph->eta_min = ngx_http_learn_lua_double(L, t, name, "eta_min", 0);

    if (ph->kind == LT_SCHED_MULTISTEP) {
        ph->nmilestones = ngx_http_learn_lua_steps(L, t, name, "milestones",
                                                   ph->milestones,
                                                   LT_MAX_MILESTONES);
    }
}


/* t[key]: a list of at most max whole numbers into out; returns how
 * many (0 when nil). */

static int
ngx_http_learn_lua_steps(lua_State *L, int t, const char *what,
    const char *key, int64_t *out, int max)
{
    int         i, n;
    lua_Number  v;

    ngx_http_learn_lua_get(L, t, key);

    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }

    n = lua_istable(L, -1) ? (int) lua_objlen(L, -1) : -1;

    if (n < 0 || n > max) {
        return luaL_error(L, "%s: %s must be a list of at most %d step "
                          "numbers", what, key, max);
    }

    for (i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        v = lua_tonumber(L, -1);

        if (lua_type(L, -1) != LUA_TNUMBER || !(v >= 0)
            || v > 9007199254740992.0 || v != (lua_Number) (int64_t) v)
        {
            return luaL_error(L, "%s: %s must be a list of step numbers",
                              what, key);
        }

        out[i] = (int64_t) v;
        lua_pop(L, 1);
    }

    lua_pop(L, 1);

    return n;
}


/* t[key]: a double (def when nil); finite, lt_model_build() checks the
 * range. */

static double
ngx_http_learn_lua_double(lua_State *L, int t, const char *what,
    const char *key, double def)
{
    lua_Number  v;

    ngx_http_learn_lua_get(L, t, key);

    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }

    if (lua_type(L, -1) != LUA_TNUMBER) {
        luaL_error(L, "%s %s must be a number, not a %s", what, key,
                   luaL_typename(L, -1));
        return def;
    }

    v = lua_tonumber(L, -1);
    lua_pop(L, 1);

    if (v != v || v > FLT_MAX || v < -FLT_MAX) {
        luaL_error(L, "%s %s is out of range", what, key);
        return def;
    }

    return v;
}


/* t[key]: a boolean, false when nil */

static int
ngx_http_learn_lua_bool(lua_State *L, int t, const char *what,
    const char *key)
{
    int  b;

    ngx_http_learn_lua_get(L, t, key);

    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }

    if (lua_type(L, -1) != LUA_TBOOLEAN) {
        luaL_error(L, "%s %s must be a boolean, not a %s", what, key,
                   luaL_typename(L, -1));
        return 0;
    }

    b = lua_toboolean(L, -1);
    lua_pop(L, 1);

    return b;
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
