
/*
 * learn_feedback MODEL [keep=N] [ttl=TIME] [relabel=on]: labels for what
 * the model's learn_set variables evaluated.
 *
 * Each evaluation leaves its features in the model's feedback zone under
 * the request's $request_id: a ring of "keep" slots (the oldest is
 * overwritten) indexed by a red-black tree of the ids, shared by all
 * workers and kept across reloads that change neither keep nor the
 * model's layout.  A POST {"id", "y"} claims the evaluation, trains one
 * step on its features through learn_train's path (same lock, same
 * thread pool, same refusal of a step that is not finite), and marks it
 * labelled only when the step was applied: a refused step leaves it
 * free to be labelled again.
 */


#include "ngx_http_learn.h"


typedef enum {
    NGX_HTTP_LEARN_FB_FREE = 0,
    NGX_HTTP_LEARN_FB_KEPT,
    NGX_HTTP_LEARN_FB_CLAIMED,     /* a feedback request trains on it */
    NGX_HTTP_LEARN_FB_LABELLED
} ngx_http_learn_fb_state_e;


typedef struct {
    ngx_str_node_t                 sn;        /* crc32 of the id; the id */
    uint32_t                       gen;       /* bumped on every reuse */
    u_char                         state;
    u_char                         set;       /* the learn_set's index */
    time_t                         time;
    u_char                         id[LT_FEEDBACK_ID_MAX];
    float                          x[1];      /* in_dim features */
} ngx_http_learn_fb_entry_t;


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    uint64_t                       hash;      /* the layout x fits */
    ngx_uint_t                     keep;
    ngx_uint_t                     in_dim;
    size_t                         entry_size;
    ngx_uint_t                     next;      /* the slot taken next */
    ngx_atomic_t                   kept;      /* slots in use */
    u_char                        *entries;
} ngx_http_learn_fb_sh_t;


struct ngx_http_learn_feedback_s {
    ngx_http_learn_model_t        *model;
    ngx_shm_zone_t                *shm_zone;
    ngx_slab_pool_t               *shpool;
    ngx_http_learn_fb_sh_t        *sh;
    ngx_uint_t                     keep;
    time_t                         ttl;       /* 0: only keep bounds it */
};


/* what one feedback request labels, until its step is settled */
typedef struct {
    ngx_http_learn_feedback_t     *fb;
    ngx_uint_t                     n;
    ngx_uint_t                    *slot;
    uint32_t                      *gen;
    u_char                        *was;       /* state before the claim */
    ngx_uint_t                     settled;
} ngx_http_learn_fb_claim_t;


static ngx_int_t ngx_http_learn_feedback_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_learn_fb_entry_t *ngx_http_learn_feedback_entry(
    ngx_http_learn_fb_sh_t *sh, ngx_uint_t slot);
static ngx_http_learn_fb_entry_t *ngx_http_learn_feedback_find(
    ngx_http_learn_fb_sh_t *sh, ngx_str_t *id);
static ngx_int_t ngx_http_learn_feedback_claim(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, lt_feedback *body, float *x, int *failed);
static void ngx_http_learn_feedback_settle(ngx_http_learn_fb_claim_t *claim,
    ngx_uint_t applied);
static void ngx_http_learn_feedback_cleanup(void *data);
static ngx_int_t ngx_http_learn_feedback_reply(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, ngx_int_t rc);


/* at configuration: the model's zone, one per model whatever the number
 * of learn_feedback locations (which must then agree on keep and ttl) */

ngx_int_t
ngx_http_learn_feedback_add(ngx_conf_t *cf, ngx_http_learn_model_t *lm,
    ngx_uint_t keep, time_t ttl)
{
    size_t                      size, entry, pages;
    ngx_str_t                   name;
    ngx_http_learn_feedback_t  *fb;

    if (lm->feedback) {
        if (lm->feedback->keep != keep || lm->feedback->ttl != ttl) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "learn_feedback \"%V\": keep= and ttl= "
                               "differ from an earlier learn_feedback of "
                               "the model (they share one store)",
                               &lm->name);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    fb = ngx_pcalloc(cf->pool, sizeof(ngx_http_learn_feedback_t));
    if (fb == NULL) {
        return NGX_ERROR;
    }

    fb->model = lm;
    fb->keep = keep;
    fb->ttl = ttl;

    entry = ngx_align(offsetof(ngx_http_learn_fb_entry_t, x)
                      + lm->model.in_dim * sizeof(float), NGX_ALIGNMENT);

    /* one allocation of whole pages, plus the slab pool's header and
     * its 64 bytes or less of bookkeeping per page (as for the model) */
    pages = (sizeof(ngx_http_learn_fb_sh_t) + NGX_ALIGNMENT + keep * entry
             + ngx_pagesize - 1) / ngx_pagesize;
    size = (pages + 16) * ngx_pagesize + pages * 64;

    name.len = sizeof("learn_feedback_") - 1 + lm->name.len;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name.data, "learn_feedback_%V", &lm->name);

    fb->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                         &ngx_http_learn_module);
    if (fb->shm_zone == NULL) {
        return NGX_ERROR;
    }

    fb->shm_zone->init = ngx_http_learn_feedback_init_zone;
    fb->shm_zone->data = fb;

    lm->feedback = fb;

    return NGX_OK;
}


static ngx_int_t
ngx_http_learn_feedback_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_learn_feedback_t  *ofb = data;

    size_t                      entry;
    ngx_http_learn_fb_sh_t     *sh;
    ngx_http_learn_model_t     *lm;
    ngx_http_learn_feedback_t  *fb;

    fb = shm_zone->data;
    lm = fb->model;
    fb->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    entry = ngx_align(offsetof(ngx_http_learn_fb_entry_t, x)
                      + lm->model.in_dim * sizeof(float), NGX_ALIGNMENT);

    if (ofb) {
        sh = ofb->sh;

        if (sh->hash == lm->model.hash && sh->keep == fb->keep
            && sh->entry_size == entry)
        {
            /* a reload: the evaluations waiting for labels stay */
            fb->sh = sh;
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                      "learn_feedback \"%V\": the model or keep= changed, "
                      "the kept evaluations are dropped", &lm->name);

        ngx_slab_free(fb->shpool, sh);
    }

    sh = ngx_slab_calloc(fb->shpool, sizeof(ngx_http_learn_fb_sh_t)
                                     + fb->keep * entry);
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_rbtree_init(&sh->rbtree, &sh->sentinel, ngx_str_rbtree_insert_value);

    sh->hash = lm->model.hash;
    sh->keep = fb->keep;
    sh->in_dim = lm->model.in_dim;
    sh->entry_size = entry;
    sh->entries = (u_char *) ngx_align_ptr(sh + 1, NGX_ALIGNMENT);

    fb->sh = sh;
    fb->shpool->data = sh;

    return NGX_OK;
}


static ngx_http_learn_fb_entry_t *
ngx_http_learn_feedback_entry(ngx_http_learn_fb_sh_t *sh, ngx_uint_t slot)
{
    return (ngx_http_learn_fb_entry_t *) (sh->entries
                                          + slot * sh->entry_size);
}


static ngx_http_learn_fb_entry_t *
ngx_http_learn_feedback_find(ngx_http_learn_fb_sh_t *sh, ngx_str_t *id)
{
    return (ngx_http_learn_fb_entry_t *)
           ngx_str_rbtree_lookup(&sh->rbtree, id,
                                 ngx_crc32_short(id->data, id->len));
}


/*
 * A learn_set evaluation of the model: its features under $request_id,
 * once per request (the first variable of the model read keeps them)
 */

void
ngx_http_learn_feedback_keep(ngx_http_request_t *r,
    ngx_http_learn_set_t *set, const float *x)
{
    ngx_str_t                    id;
    ngx_http_variable_value_t   *vv;
    ngx_http_learn_fb_sh_t      *sh;
    ngx_http_learn_fb_entry_t   *e;
    ngx_http_learn_feedback_t   *fb;
    ngx_http_learn_main_conf_t  *lmcf;

    fb = set->model->feedback;
    sh = fb->sh;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_learn_module);

    vv = ngx_http_get_indexed_variable(r, lmcf->request_id);
    if (vv == NULL || vv->not_found || vv->len == 0
        || vv->len > LT_FEEDBACK_ID_MAX)
    {
        return;
    }

    id.data = vv->data;
    id.len = vv->len;

    ngx_shmtx_lock(&fb->shpool->mutex);

    if (ngx_http_learn_feedback_find(sh, &id) != NULL) {
        ngx_shmtx_unlock(&fb->shpool->mutex);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "learn_set $%V: request %V keeps its first "
                       "evaluation for learn_feedback", &set->name, &id);
        return;
    }

    e = ngx_http_learn_feedback_entry(sh, sh->next);
    sh->next = (sh->next + 1) % sh->keep;

    if (e->state != NGX_HTTP_LEARN_FB_FREE) {
        /* the oldest evaluation: its label comes too late now */
        ngx_rbtree_delete(&sh->rbtree, &e->sn.node);

    } else {
        sh->kept++;
    }

    e->gen++;
    e->state = NGX_HTTP_LEARN_FB_KEPT;
    e->set = (u_char) set->index;
    e->time = ngx_time();

    ngx_memcpy(e->id, id.data, id.len);
    e->sn.str.data = e->id;
    e->sn.str.len = id.len;
    e->sn.node.key = ngx_crc32_short(id.data, id.len);

    ngx_memcpy(e->x, x, sh->in_dim * sizeof(float));

    ngx_rbtree_insert(&sh->rbtree, &e->sn.node);

    ngx_shmtx_unlock(&fb->shpool->mutex);
}


/*
 * The body of a learn_feedback POST has arrived: the labelled
 * evaluations become a train request.  Returns the status to finalize
 * with, or NGX_AGAIN (parked, as a train request parks).
 */

ngx_int_t
ngx_http_learn_feedback(ngx_http_request_t *r, ngx_http_learn_ctx_t *ctx,
    u_char *data, size_t len)
{
    int                      i;
    float                   *x;
    int64_t                  shape[LT_MAX_DIMS];
    ngx_int_t                rc;
    lt_err                   err;
    lt_feedback              body;
    lt_codec_ctx             codec;
    ngx_http_learn_model_t  *lm;

    lm = ctx->lcf->model;

    codec.alloc = ngx_http_learn_pool_alloc;
    codec.ctx = r->pool;
    codec.max_elements = ctx->lcf->max_elements;
    codec.max_named = lm->feedback->keep;

    if (lt_codec_decode_feedback(&codec, data, len,
                                 ngx_http_learn_body_format(r)
                                 == NGX_HTTP_LEARN_FMT_JSON,
                                 &body, &err)
        != 0)
    {
        return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST, "%s", err.msg);
    }

    x = ngx_palloc(r->pool, (size_t) body.nids * lm->model.in_dim
                            * sizeof(float));
    if (x == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lt_tensor_view(&ctx->body.x, x,
                   lt_model_input_shape(&lm->model, body.nids, shape), shape);

    ctx->body.y = body.y;
    ctx->body.y_integer = body.y_integer;
    ctx->body.has_x = 1;
    ctx->body.has_y = 1;

    /* the label's shape first: a wrong one claims nothing */
    if (lt_model_check_target(&lm->model, &ctx->body.x, &ctx->body.y, &err)
        != 0)
    {
        return ngx_http_learn_reject(r, NGX_HTTP_BAD_REQUEST,
                                     "%s (one label per id)", err.msg);
    }

    rc = ngx_http_learn_feedback_claim(r, ctx, &body, x, &i);

    if (rc == NGX_HTTP_NOT_FOUND) {
        (void) ngx_atomic_fetch_add(&lm->shm->feedback_unknown, 1);

        return ngx_http_learn_reject(r, NGX_HTTP_NOT_FOUND,
                                     "id \"%s\" is unknown or expired "
                                     "(model \"%V\" keeps its last %ui "
                                     "evaluations)", body.ids[i],
                                     &lm->name, lm->feedback->keep);
    }

    if (rc == NGX_HTTP_CONFLICT) {
        (void) ngx_atomic_fetch_add(&lm->shm->feedback_repeated, 1);

        return ngx_http_learn_reject(r, NGX_HTTP_CONFLICT,
                                     "id \"%s\" is labelled already, or "
                                     "twice in this request (relabel=on "
                                     "allows a new label)", body.ids[i]);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    ctx->reply = ngx_http_learn_feedback_reply;

    return ngx_http_learn_train(r, ctx);
}


/*
 * NGX_OK: every id claimed, its features in x; else the status to answer
 * with (404, 409: ids[*failed] is why), and nothing claimed
 */

static ngx_int_t
ngx_http_learn_feedback_claim(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, lt_feedback *body, float *x, int *failed)
{
    int                         i;
    ngx_str_t                   id;
    ngx_uint_t                  status;
    ngx_pool_cleanup_t         *cln;
    ngx_http_learn_fb_sh_t     *sh;
    ngx_http_learn_fb_entry_t  *e;
    ngx_http_learn_fb_claim_t  *claim;
    ngx_http_learn_feedback_t  *fb;

    fb = ctx->lcf->model->feedback;
    sh = fb->sh;

    claim = ngx_pcalloc(r->pool, sizeof(ngx_http_learn_fb_claim_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (claim == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    claim->fb = fb;
    claim->slot = ngx_palloc(r->pool, body->nids * sizeof(ngx_uint_t));
    claim->gen = ngx_palloc(r->pool, body->nids * sizeof(uint32_t));
    claim->was = ngx_palloc(r->pool, body->nids);
    if (claim->slot == NULL || claim->gen == NULL || claim->was == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* whatever ends the request before its step settles releases it */
    claim->settled = 1;
    cln->handler = ngx_http_learn_feedback_cleanup;
    cln->data = claim;

    status = NGX_OK;
    id.len = 0;

    ngx_shmtx_lock(&fb->shpool->mutex);

    for (i = 0; i < body->nids; i++) {
        id.data = (u_char *) body->ids[i];
        id.len = ngx_strlen(body->ids[i]);

        e = ngx_http_learn_feedback_find(sh, &id);

        if (e == NULL
            || (fb->ttl && ngx_time() - e->time > fb->ttl))
        {
            status = NGX_HTTP_NOT_FOUND;
            break;
        }

        if (e->state == NGX_HTTP_LEARN_FB_CLAIMED
            || (e->state == NGX_HTTP_LEARN_FB_LABELLED && !ctx->lcf->relabel))
        {
            status = NGX_HTTP_CONFLICT;
            break;
        }

        claim->slot[i] = ((u_char *) e - sh->entries) / sh->entry_size;
        claim->gen[i] = e->gen;
        claim->was[i] = e->state;
        claim->n++;

        e->state = NGX_HTTP_LEARN_FB_CLAIMED;

        ngx_memcpy(x + (size_t) i * sh->in_dim, e->x,
                   sh->in_dim * sizeof(float));
    }

    claim->settled = 0;

    ngx_shmtx_unlock(&fb->shpool->mutex);

    if (status == NGX_OK) {
        ctx->claim = claim;
        return NGX_OK;
    }

    *failed = i;
    ngx_http_learn_feedback_settle(claim, 0);

    return status;
}


/* applied: the labels stand; otherwise the evaluations wait for others */

static void
ngx_http_learn_feedback_settle(ngx_http_learn_fb_claim_t *claim,
    ngx_uint_t applied)
{
    ngx_uint_t                  i;
    ngx_http_learn_fb_sh_t     *sh;
    ngx_http_learn_fb_entry_t  *e;

    if (claim->settled) {
        return;
    }

    claim->settled = 1;
    sh = claim->fb->sh;

    ngx_shmtx_lock(&claim->fb->shpool->mutex);

    for (i = 0; i < claim->n; i++) {
        e = ngx_http_learn_feedback_entry(sh, claim->slot[i]);

        /* a slot reused meanwhile holds another request's evaluation */
        if (e->gen == claim->gen[i]
            && e->state == NGX_HTTP_LEARN_FB_CLAIMED)
        {
            e->state = applied ? NGX_HTTP_LEARN_FB_LABELLED : claim->was[i];
        }
    }

    ngx_shmtx_unlock(&claim->fb->shpool->mutex);
}


static void
ngx_http_learn_feedback_cleanup(void *data)
{
    ngx_http_learn_feedback_settle(data, 0);
}


static ngx_int_t
ngx_http_learn_feedback_reply(ngx_http_request_t *r,
    ngx_http_learn_ctx_t *ctx, ngx_int_t rc)
{
    ngx_http_learn_shm_t       *shm;
    ngx_http_learn_fb_claim_t  *claim;

    claim = ctx->claim;
    shm = ctx->lcf->model->shm;

    ngx_http_learn_feedback_settle(claim, rc == NGX_OK);

    if (rc == NGX_OK) {
        (void) ngx_atomic_fetch_add(&shm->feedback_steps, 1);
        (void) ngx_atomic_fetch_add(&shm->feedback_labels, claim->n);
    }

    return ngx_http_learn_train_reply(r, ctx, rc);
}


/* learn_status: ', "feedback": {...}' for a model with a store */

u_char *
ngx_http_learn_feedback_status(u_char *p, ngx_http_learn_model_t *lm)
{
    ngx_http_learn_shm_t       *shm;
    ngx_http_learn_feedback_t  *fb;

    fb = lm->feedback;
    shm = lm->shm;

    if (fb == NULL || fb->sh == NULL) {
        return p;
    }

    return ngx_sprintf(p, ", \"feedback\": {\"keep\": %ui, \"ttl\": %T, "
                       "\"kept\": %uA, \"steps\": %uA, \"labels\": %uA, "
                       "\"unknown\": %uA, \"repeated\": %uA}",
                       fb->keep, fb->ttl, fb->sh->kept, shm->feedback_steps,
                       shm->feedback_labels, shm->feedback_unknown,
                       shm->feedback_repeated);
}
