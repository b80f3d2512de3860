
/*
 * learn_set $VAR MODEL FEATURE...: a model's output as an nginx variable.
 *
 * The variable is cacheable, so nginx runs this handler once per request,
 * the first time anything reads $VAR (map, if, return, add_header, a log
 * line), and hands every later reader the same value.  The forward pass
 * is one row on the CPU, inline, with the live parameters, read as a
 * predict reads them: never a half-applied step.  Whatever goes wrong
 * (a feature that is not a number, a model not ready, an output that is
 * not finite) makes $VAR empty, counted in learn_status as set_empty,
 * and never fails the request by itself.
 */


#include "ngx_http_learn.h"

#include <math.h>


/* longest feature text read as a number ("-0.000123456789e-10" fits) */
#define NGX_HTTP_LEARN_SET_NUMBER_LEN  64


static ngx_int_t ngx_http_learn_set_features(ngx_http_request_t *r,
    ngx_http_learn_set_t *set, float *x);
static ngx_int_t ngx_http_learn_set_number(ngx_str_t *s, float *f);
static ngx_int_t ngx_http_learn_set_decimal(ngx_str_t *s, double *d);
static ngx_int_t ngx_http_learn_set_empty(ngx_http_request_t *r,
    ngx_http_learn_set_t *set, ngx_http_variable_value_t *v,
    const char *why);


ngx_int_t
ngx_http_learn_set_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_learn_set_t *set = (ngx_http_learn_set_t *) data;

    int                      i, best;
    char                     buf[32];
    float                   *x, out;
    u_char                  *p;
    int64_t                  shape[LT_MAX_DIMS], step;
    lt_err                   err;
    lt_tensor                xt, yt;
    ngx_http_learn_model_t  *lm;

    lm = set->model;

    if (lm->shm == NULL || lm->set_ws == NULL
        || ngx_http_learn_store_waiting(lm))
    {
        return ngx_http_learn_set_empty(r, set, v, "the model is not ready");
    }

    x = ngx_palloc(r->pool, lm->model.in_dim * sizeof(float));
    if (x == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_learn_set_features(r, set, x) != NGX_OK) {
        return ngx_http_learn_set_empty(r, set, v, NULL);
    }

    lt_tensor_view(&xt, x, lt_model_input_shape(&lm->model, 1, shape),
                   shape);

    if (ngx_http_learn_predict_live(lm, lm->set_ws, &xt, &yt, &step, &err)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "learn_set $%V: %s", &set->name, err.msg);
        return ngx_http_learn_set_empty(r, set, v, "the forward pass failed");
    }

    if (lt_floats_nonfinite_at(yt.data, lm->model.out_dim) >= 0) {
        return ngx_http_learn_set_empty(r, set, v, "an output is not finite");
    }

    (void) ngx_atomic_fetch_add(&lm->shm->set_evals, 1);

    if (lm->feedback) {
        ngx_http_learn_feedback_keep(r, set, x);
    }

    best = 0;

    for (i = 1; i < lm->model.out_dim; i++) {
        if (yt.data[i] > yt.data[best]) {
            best = i;
        }
    }

    switch (set->output) {

    case NGX_HTTP_LEARN_SET_DEFAULT:
        if (lm->model.out_dim > 1) {
            goto argmax;
        }

        out = yt.data[0];
        break;

    case NGX_HTTP_LEARN_SET_ARGMAX:
        goto argmax;

    case NGX_HTTP_LEARN_SET_MAX:
        out = yt.data[best];
        break;

    default:
        out = yt.data[set->output];
    }

    /* as learn_predict's JSON writes it: the two compare equal as text */
    i = lt_json_float(buf, sizeof(buf), out);

    p = ngx_pnalloc(r->pool, i);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_cpymem(p, buf, i) - p;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;

argmax:

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%d", best) - p;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_learn_set_features(ngx_http_request_t *r, ngx_http_learn_set_t *set,
    float *x)
{
    ngx_str_t                  value;
    ngx_uint_t                 i;
    ngx_http_complex_value_t  *cv;

    cv = set->features.elts;

    for (i = 0; i < set->features.nelts; i++) {
        if (ngx_http_complex_value(r, &cv[i], &value) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_http_learn_set_number(&value, &x[i]) != NGX_OK) {
            ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "learn_set $%V: feature %ui (\"%V\") is \"%V\", "
                           "not a number", &set->name, i + 1,
                           &cv[i].value, &value);
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* a finite decimal number, as strtod reads it, and nothing else */

static ngx_int_t
ngx_http_learn_set_number(ngx_str_t *s, float *f)
{
    char        buf[NGX_HTTP_LEARN_SET_NUMBER_LEN], *end;
    u_char      c;
    double      d;
    ngx_uint_t  i;

    if (s->len == 0 || s->len >= sizeof(buf)) {
        return NGX_DECLINED;
    }

    /* strtod also reads "inf", "nan", hex and leading blanks: not we */
    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.'
              || c == 'e' || c == 'E'))
        {
            return NGX_DECLINED;
        }

        buf[i] = (char) c;
    }

    buf[s->len] = '\0';

    if (ngx_http_learn_set_decimal(s, &d) != NGX_OK) {
        d = strtod(buf, &end);

        if (end != buf + s->len) {
            return NGX_DECLINED;
        }
    }

    if (!isfinite(d) || !isfinite((float) d)) {
        return NGX_DECLINED;
    }

    *f = (float) d;

    return NGX_OK;
}


/*
 * "-12.375" and the like, without strtod: at most 15 digits make an
 * exact integer, and dividing it by an exact power of ten is one
 * correctly rounded operation, so the result is strtod's to the bit.
 */

static ngx_int_t
ngx_http_learn_set_decimal(ngx_str_t *s, double *d)
{
    u_char      *p, *last;
    uint64_t     m;
    ngx_uint_t   digits, frac, dot;

    static const double  pow10[] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
        1e13, 1e14, 1e15
    };

    p = s->data;
    last = p + s->len;

    if (*p == '-' || *p == '+') {
        p++;
    }

    m = 0;
    digits = 0;
    frac = 0;
    dot = 0;

    for ( /* void */ ; p < last; p++) {
        if (*p == '.' && !dot) {
            dot = 1;
            continue;
        }

        if (*p < '0' || *p > '9' || ++digits > 15) {
            return NGX_DECLINED;
        }

        m = m * 10 + (*p - '0');
        frac += dot;
    }

    if (digits == 0) {
        return NGX_DECLINED;
    }

    *d = (double) m / pow10[frac];

    if (s->data[0] == '-') {
        *d = -*d;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_learn_set_empty(ngx_http_request_t *r, ngx_http_learn_set_t *set,
    ngx_http_variable_value_t *v, const char *why)
{
    if (why) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "learn_set $%V is empty: %s", &set->name, why);
    }

    if (set->model->shm) {
        (void) ngx_atomic_fetch_add(&set->model->shm->set_evals, 1);
        (void) ngx_atomic_fetch_add(&set->model->shm->set_empty, 1);
    }

    v->len = 0;
    v->data = (u_char *) "";
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* a one-row workspace per worker, for the models that have variables */

ngx_int_t
ngx_http_learn_set_init_process(ngx_cycle_t *cycle,
    ngx_http_learn_model_t *lm)
{
    lt_err  err;

    if (lm->nsets == 0) {
        return NGX_OK;
    }

    lm->set_ws = lt_workspace_new(&lm->model, lt_backend_cpu(), 1, &err);
    if (lm->set_ws == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "learn_set on \"%V\": %s", &lm->name, err.msg);
        return NGX_ERROR;
    }

    return NGX_OK;
}
