
/*
 * Kept versions: with checkpoint_keep=N every checkpoint write also
 * leaves PATH.vSTEP, never overwritten, the oldest removed beyond N.
 * A predict may ask for one (?version=STEP), and learn_candidate sends a
 * share of a location's predicts to one (A/B); learn_status counts the
 * predicts and their latency per version.
 *
 * A version that a learn_candidate of the running configuration names is
 * protected: never removed, and not counted in N.  The table has
 * NGX_HTTP_LEARN_MAX_VERSIONS slots, so N shrinks when N plus the
 * protected versions would not fit.
 */


#include <math.h>

#include "ngx_http_learn.h"


static void ngx_http_learn_versions_insert(ngx_http_learn_version_t *table,
    ngx_uint_t keep, int64_t *protect, ngx_uint_t nprotect, int64_t step,
    float loss, time_t time);
static void ngx_http_learn_versions_trim(ngx_http_learn_model_t *lm,
    ngx_http_learn_version_t *table);


int
ngx_http_learn_versions_path(char *buf, size_t size, ngx_str_t *path,
    int64_t step)
{
    return snprintf(buf, size, "%.*s.v%lld", (int) path->len,
                    (char *) path->data, (long long) step);
}


/*
 * Configuration time: the versions already on disk, each read and
 * validated (a torn one is skipped with a warning).  All of them, up to
 * the table's size, not only the newest N: a learn_candidate (its
 * location is parsed later) may name an older, protected one.
 * init_module trims the list to N and the candidates.
 */

ngx_int_t
ngx_http_learn_versions_scan(ngx_conf_t *cf, ngx_http_learn_model_t *lm)
{
    u_char              *name, *slash;
    size_t               blen, len;
    int64_t              step;
    ngx_dir_t            dir;
    ngx_str_t            dpath, base;
    ngx_uint_t           i;
    lt_checkpoint_meta   meta;

    slash = (u_char *) strrchr((char *) lm->ckpt_path.data, '/');

    dpath.len = slash - lm->ckpt_path.data;
    dpath.data = ngx_pnalloc(cf->pool, dpath.len + 2);
    if (dpath.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dpath.data, lm->ckpt_path.data, dpath.len);
    if (dpath.len == 0) {
        dpath.data[dpath.len++] = '/';
    }
    dpath.data[dpath.len] = '\0';

    base.data = slash + 1;
    base.len = lm->ckpt_path.data + lm->ckpt_path.len - base.data;

    if (ngx_open_dir(&dpath, &dir) == NGX_ERROR) {
        return NGX_OK;
    }

    while (ngx_read_dir(&dir) == NGX_OK) {
        name = ngx_de_name(&dir);
        len = ngx_de_namelen(&dir);
        blen = base.len;

        if (len <= blen + 2 || ngx_strncmp(name, base.data, blen) != 0
            || name[blen] != '.' || name[blen + 1] != 'v')
        {
            continue;
        }

        step = 0;

        for (i = blen + 2; i < len; i++) {
            if (name[i] < '0' || name[i] > '9' || step > (1LL << 50)) {
                break;
            }

            step = step * 10 + (name[i] - '0');
        }

        if (i != len || step == 0) {
            continue;
        }

        meta.loss = NAN;
        ngx_http_learn_versions_insert(lm->kept, NGX_HTTP_LEARN_MAX_VERSIONS,
                                       NULL, 0, step, (float) meta.loss, 0);
    }

    ngx_close_dir(&dir);

    /* read the survivors for their loss, and to skip broken ones */

    for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
        if (lm->kept[i].step == 0) {
            continue;
        }

        if (ngx_http_learn_versions_read(cf->log, lm, lm->kept[i].step,
                                         NULL, &meta)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "learn_model \"%V\": version %L is not "
                               "usable, not listed", &lm->name,
                               lm->kept[i].step);
            lm->kept[i].step = 0;
            continue;
        }

        lm->kept[i].loss = (float) meta.loss;
    }

    return NGX_OK;
}


/*
 * Read and validate PATH.vSTEP; params (P floats, may be NULL) gets its
 * parameters.  Blocks on the disk: used at configuration time and on a
 * worker's first predict of that version.
 */

ngx_int_t
ngx_http_learn_versions_read(ngx_log_t *log, ngx_http_learn_model_t *lm,
    int64_t step, float *params, lt_checkpoint_meta *meta)
{
    u_char           *buf;
    char              path[NGX_MAX_PATH];
    lt_err            err;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_file_t        file;
    ngx_int_t         rc;
    const uint8_t    *p, *state;
    ngx_file_info_t   fi;

    if ((size_t) ngx_http_learn_versions_path(path, sizeof(path),
                                              &lm->ckpt_path, step)
        >= sizeof(path))
    {
        return NGX_ERROR;
    }

    fd = ngx_open_file(path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        return NGX_DECLINED;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    buf = ngx_alloc((size_t) ngx_file_size(&fi) + 1, log);
    if (buf == NULL) {
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.fd = fd;
    file.log = log;
    file.name.data = (u_char *) path;
    file.name.len = ngx_strlen(path);

    n = ngx_read_file(&file, buf, (size_t) ngx_file_size(&fi), 0);
    ngx_close_file(fd);

    rc = NGX_ERROR;

    if (n == (ssize_t) ngx_file_size(&fi)
        && lt_checkpoint_decode(&lm->model, buf, (size_t) n, meta, &p,
                                &state, &err) == 0)
    {
        if (params) {
            ngx_memcpy(params, p, lm->model.param_count * sizeof(float));
        }

        rc = NGX_OK;

    } else if (n == (ssize_t) ngx_file_size(&fi)) {
        ngx_log_error(NGX_LOG_WARN, log, 0, "learn_model \"%V\": \"%s\": %s",
                      &lm->name, path, err.msg);
    }

    ngx_free(buf);

    return rc;
}


/*
 * Master, init_module: the steps that this configuration's
 * learn_candidate directives name become protected, and a fresh zone's
 * list (all versions on disk) is trimmed to N and those.
 */

ngx_int_t
ngx_http_learn_versions_init_module(ngx_cycle_t *cycle,
    ngx_http_learn_main_conf_t *lmcf)
{
    ngx_uint_t                   i;
    ngx_http_learn_model_t      *lm, **lmp;
    ngx_http_learn_loc_conf_t  **lcfp;

    if (lmcf->candidates) {
        lcfp = lmcf->candidates->elts;

        for (i = 0; i < lmcf->candidates->nelts; i++) {
            lm = lcfp[i]->model;

            /* merge_loc_conf checked that the model keeps that version */
            if (lm == NULL || lm->ckpt_keep == 0
                || ngx_http_learn_versions_protected(lm->protect,
                                                     lm->nprotect,
                                                     lcfp[i]->candidate)
                || lm->nprotect == NGX_HTTP_LEARN_MAX_VERSIONS)
            {
                continue;
            }

            lm->protect[lm->nprotect++] = lcfp[i]->candidate;
        }
    }

    lmp = lmcf->models.elts;

    for (i = 0; i < lmcf->models.nelts; i++) {
        lm = lmp[i];

        if (lm->ckpt_keep && lm->fresh && lm->shm) {
            ngx_http_learn_versions_trim(lm, lm->shm->versions);
        }
    }

    return NGX_OK;
}


/* N, less what the protected versions need of the table */

ngx_uint_t
ngx_http_learn_versions_keep(ngx_http_learn_model_t *lm)
{
    return ngx_min(lm->ckpt_keep, NGX_HTTP_LEARN_MAX_VERSIONS - lm->nprotect);
}


ngx_uint_t
ngx_http_learn_versions_protected(int64_t *protect, ngx_uint_t n,
    int64_t step)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (protect[i] == step) {
            return 1;
        }
    }

    return 0;
}


/* the newest N unprotected versions stay, and the protected ones */

static void
ngx_http_learn_versions_trim(ngx_http_learn_model_t *lm,
    ngx_http_learn_version_t *table)
{
    ngx_uint_t  i, used, oldest, keep;

    keep = ngx_http_learn_versions_keep(lm);

    for ( ;; ) {
        used = 0;
        oldest = NGX_HTTP_LEARN_MAX_VERSIONS;

        for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
            if (table[i].step == 0
                || ngx_http_learn_versions_protected(lm->protect,
                                                     lm->nprotect,
                                                     table[i].step))
            {
                continue;
            }

            used++;

            if (oldest == NGX_HTTP_LEARN_MAX_VERSIONS
                || table[i].step < table[oldest].step)
            {
                oldest = i;
            }
        }

        if (used <= keep) {
            return;
        }

        ngx_memzero(&table[oldest], sizeof(ngx_http_learn_version_t));
    }
}


/* the writer made PATH.vSTEP (the thread already removed older files) */

void
ngx_http_learn_versions_added(ngx_http_learn_model_t *lm, int64_t step,
    float loss)
{
    ngx_http_learn_versions_insert(lm->shm->versions,
                                   ngx_http_learn_versions_keep(lm),
                                   lm->protect, lm->nprotect, step, loss,
                                   ngx_time());
}


/*
 * Into a table of kept versions: beyond "keep" unprotected ones the
 * oldest unprotected entry makes room; protected entries are never
 * replaced.
 */

static void
ngx_http_learn_versions_insert(ngx_http_learn_version_t *table,
    ngx_uint_t keep, int64_t *protect, ngx_uint_t nprotect, int64_t step,
    float loss, time_t time)
{
    ngx_uint_t  i, used, oldest, free, prot;

    used = 0;
    oldest = NGX_HTTP_LEARN_MAX_VERSIONS;
    free = NGX_HTTP_LEARN_MAX_VERSIONS;
    prot = ngx_http_learn_versions_protected(protect, nprotect, step);

    for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
        if (table[i].step == step) {
            table[i].loss = loss;
            table[i].time = time;
            return;
        }

        if (table[i].step == 0) {
            free = i;
            continue;
        }

        if (ngx_http_learn_versions_protected(protect, nprotect,
                                              table[i].step))
        {
            continue;
        }

        used++;

        if (oldest == NGX_HTTP_LEARN_MAX_VERSIONS
            || table[i].step < table[oldest].step)
        {
            oldest = i;
        }
    }

    if (!prot && used >= keep) {
        if (oldest == NGX_HTTP_LEARN_MAX_VERSIONS
            || table[oldest].step > step)
        {
            return;
        }

        free = oldest;
    }

    if (free == NGX_HTTP_LEARN_MAX_VERSIONS) {
        return;
    }

    ngx_memzero(&table[free], sizeof(ngx_http_learn_version_t));
    table[free].step = step;
    table[free].loss = loss;
    table[free].time = time;
}


ngx_http_learn_version_t *
ngx_http_learn_versions_find(ngx_http_learn_shm_t *shm, int64_t step)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_LEARN_MAX_VERSIONS; i++) {
        if (shm->versions[i].step == step) {
            return &shm->versions[i];
        }
    }

    return NULL;
}


/*
 * The parameters of a kept version, from this worker's cache or read
 * once from disk; NULL if the model keeps no such version.
 */

const float *
ngx_http_learn_versions_params(ngx_http_learn_model_t *lm, int64_t step,
    ngx_log_t *log)
{
    float               *params;
    ngx_uint_t           i, lru;
    lt_checkpoint_meta   meta;

    if (lm->ckpt_keep == 0
        || ngx_http_learn_versions_find(lm->shm, step) == NULL)
    {
        return NULL;
    }

    lru = 0;

    for (i = 0; i < NGX_HTTP_LEARN_VERSION_CACHE; i++) {
        if (lm->vcache[i].params && lm->vcache[i].step == step) {
            lm->vcache[i].used = ++lm->vclock;
            return lm->vcache[i].params;
        }

        if (lm->vcache[i].used < lm->vcache[lru].used) {
            lru = i;
        }
    }

    params = lm->vcache[lru].params;

    if (params == NULL) {
        params = ngx_alloc(lm->model.param_count * sizeof(float), log);
        if (params == NULL) {
            return NULL;
        }

        lm->vcache[lru].params = params;
    }

    lm->vcache[lru].step = 0;

    if (ngx_http_learn_versions_read(log, lm, step, params, &meta)
        != NGX_OK)
    {
        return NULL;
    }

    lm->vcache[lru].step = step;
    lm->vcache[lru].used = ++lm->vclock;

    return params;
}


/* learn_candidate STEP PERCENT%; in a learn_predict location */

char *
ngx_http_learn_candidate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_learn_loc_conf_t *lcf = conf;

    double                       share;
    ngx_str_t                   *value;
    ngx_int_t                    step;
    ngx_http_learn_loc_conf_t  **lcfp;
    ngx_http_learn_main_conf_t  *lmcf;

    if (lcf->candidate) {
        return "is duplicate";
    }

    value = cf->args->elts;

    step = ngx_atoi(value[1].data, value[1].len);
    if (step <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "learn_candidate: \"%V\" is not a version (a "
                           "checkpoint's step)", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (value[2].len < 2 || value[2].data[value[2].len - 1] != '%') {
        goto invalid;
    }

    share = strtod((char *) value[2].data, NULL);
    if (!(share > 0 && share <= 100)) {
        goto invalid;
    }

    lcf->candidate = step;
    lcf->candidate_share = (ngx_uint_t) (share * 100 + 0.5);

    /* init_module protects the version from pruning */

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_learn_module);

    if (lmcf->candidates == NULL) {
        lmcf->candidates = ngx_array_create(cf->pool, 4,
                                          sizeof(ngx_http_learn_loc_conf_t *));
        if (lmcf->candidates == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    lcfp = ngx_array_push(lmcf->candidates);
    if (lcfp == NULL) {
        return NGX_CONF_ERROR;
    }

    *lcfp = lcf;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "learn_candidate: share \"%V\" must be a percentage "
                       "such as \"10%%\"", &value[2]);
    return NGX_CONF_ERROR;
}
