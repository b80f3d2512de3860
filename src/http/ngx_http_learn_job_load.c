
/*
 * A job's data, read on its pool thread: the files named in the request
 * (beneath the data root: .npy, .npz or a MessagePack train body) into
 * the job's x and y as floats, then checked against the model's input
 * and target shapes.  Sizes come from the files, so the memory is
 * malloc'd, not from a pool: the thread frees it before it returns
 * (ngx_http_learn_job_mem_free()), and a file that is missing, too
 * large, corrupt or the wrong shape ends the job with its name and the
 * problem in job->err.
 */


#include "ngx_http_learn_job.h"
#include "lt_npy.h"


struct ngx_http_learn_job_mem_s {
    ngx_http_learn_job_mem_t      *next;
};


/* the codec's allocator for a MessagePack file: freed with the job */

static void *
ngx_http_learn_job_alloc(void *ctx, size_t size)
{
    ngx_http_learn_job_mem_t  **head = ctx;

    ngx_http_learn_job_mem_t   *m;

    m = malloc(sizeof(ngx_http_learn_job_mem_t) + 16 + size);
    if (m == NULL) {
        return NULL;
    }

    m->next = *head;
    *head = m;

    return (u_char *) m + sizeof(ngx_http_learn_job_mem_t) + 16
           - ((uintptr_t) m + sizeof(ngx_http_learn_job_mem_t)) % 16;
}


void
ngx_http_learn_job_mem_free(ngx_http_learn_job_mem_t *m)
{
    ngx_http_learn_job_mem_t  *next;

    for ( ; m; m = next) {
        next = m->next;
        free(m);
    }
}


/* the message names the file: "x.npy: ..." */

int
ngx_http_learn_job_fail(ngx_http_learn_job_t *job, const char *file,
    lt_err *why)
{
    char  msg[LT_ERR_LEN];

    ngx_cpystrn((u_char *) msg, (u_char *) why->msg, sizeof(msg));

    return lt_error(&job->err, "%s: %s", file, msg);
}


/* an .npy in buf into t (malloc'd floats) */

static int
ngx_http_learn_job_npy(ngx_http_learn_job_t *job, const char *file,
    const uint8_t *buf, size_t len, lt_tensor *t)
{
    float        *f;
    lt_err        err;
    lt_npy_info   info;

    if (lt_npy_parse(buf, len, &info, &err) != 0) {
        return ngx_http_learn_job_fail(job, file, &err);
    }

    if (info.ndim == 0) {
        return lt_error(&job->err, "%s: a 0-d array holds no rows", file);
    }

    if ((size_t) info.numel > job->max_elements) {
        return lt_error(&job->err, "%s: %lld elements, above "
                        "learn_job_max_file_size / 4 (%zu)", file,
                        (long long) info.numel, job->max_elements);
    }

    f = malloc(info.numel ? (size_t) info.numel * sizeof(float) : 1);
    if (f == NULL) {
        return lt_error(&job->err, "%s: out of memory", file);
    }

    if (lt_npy_to_float(&info, buf, f, &err) != 0) {
        free(f);
        return ngx_http_learn_job_fail(job, file, &err);
    }

    lt_tensor_view(t, f, info.ndim, info.shape);
    t->owned = 1;

    return 0;
}


/* member "x" or "y" of an .npz; 1: not there */

static int
ngx_http_learn_job_npz(ngx_http_learn_job_t *job, const char *file,
    const uint8_t *buf, size_t len, const char *name, lt_tensor *t)
{
    int             rc;
    char            where[LT_JOB_NAME_MAX + 16];
    uint8_t        *m;
    lt_err          err;
    lt_npz_member   mem;

    rc = lt_npz_find(buf, len, name, &mem, &err);
    if (rc != 0) {
        ngx_http_learn_job_fail(job, file, &err);
        return rc;
    }

    if (mem.usize > job->max_file_size || mem.usize > 0xffffffffULL) {
        return lt_error(&job->err, "%s: array %s is %llu bytes unpacked, "
                        "above learn_job_max_file_size (%zu)", file, name,
                        (unsigned long long) mem.usize, job->max_file_size);
    }

    m = malloc(mem.usize ? (size_t) mem.usize : 1);
    if (m == NULL) {
        return lt_error(&job->err, "%s: out of memory", file);
    }

    snprintf(where, sizeof(where), "%s[%s]", file, name);

    if (lt_npz_extract(buf, len, &mem, m, &err) != 0) {
        free(m);
        return ngx_http_learn_job_fail(job, where, &err);
    }

    rc = ngx_http_learn_job_npy(job, where, m, (size_t) mem.usize, t);
    free(m);

    return rc;
}


/*
 * One file: an .npz (x, and y when wanted), a MessagePack map like a
 * train body, or a single .npy (x, or y when is_y); told apart by their
 * first bytes, not their names.
 */

static int
ngx_http_learn_job_file(ngx_http_learn_job_t *job, const char *file,
    int is_y, int want_y, ngx_http_learn_job_mem_t **mem)
{
    int           rc;
    size_t        len;
    uint8_t      *buf;
    lt_err        err;
    lt_body       body;
    lt_codec_ctx  codec;

    buf = ngx_http_learn_data_root_read(job->root, file, job->max_file_size,
                                        &len, &err);
    if (buf == NULL) {
        return ngx_http_learn_job_fail(job, file, &err);
    }

    if (len >= 6 && ngx_memcmp(buf, "\x93NUMPY", 6) == 0) {
        rc = ngx_http_learn_job_npy(job, file, buf, len,
                                    is_y ? &job->y : &job->x);
        if (rc == 0) {
            if (is_y) {
                job->has_y = 1;
            } else {
                job->has_x = 1;
            }
        }

    } else if (len >= 4 && ngx_memcmp(buf, "PK\x03\x04", 4) == 0) {
        rc = ngx_http_learn_job_npz(job, file, buf, len, "x", &job->x);
        if (rc == 0) {
            job->has_x = 1;

            if (want_y) {
                rc = ngx_http_learn_job_npz(job, file, buf, len, "y",
                                            &job->y);
                job->has_y = (rc == 0);
            }
        }

    } else {
        codec.alloc = ngx_http_learn_job_alloc;
        codec.ctx = mem;
        codec.max_elements = job->max_elements;
        codec.max_named = 0;

        rc = lt_codec_decode_msgpack(&codec, buf, len, &body, &err);

        if (rc != 0) {
            lt_error(&job->err, "%s: neither .npy, .npz nor a MessagePack "
                     "map of x and y: %s", file, err.msg);

        } else if (!body.has_x || (want_y && !body.has_y)) {
            rc = lt_error(&job->err, "%s: the MessagePack map has no "
                          "\"%s\"", file, body.has_x ? "y" : "x");

        } else {
            job->x = body.x;
            job->has_x = 1;

            if (want_y) {
                job->y = body.y;
                job->has_y = 1;
            }
        }
    }

    free(buf);

    return rc != 0 ? -1 : 0;
}


int
ngx_http_learn_job_load(ngx_http_learn_job_t *job,
    ngx_http_learn_job_mem_t **mem)
{
    int           want_y;
    int64_t       n, k, shape[2];
    lt_err        err;
    const char   *names;
    char          both[2 * LT_JOB_NAME_MAX + 8];
    const lt_model *m;

    m = &job->lm->model;
    want_y = (job->kind == NGX_HTTP_LEARN_JOB_KIND_TRAIN);

    if (job->nfiles == 1) {
        if (ngx_http_learn_job_file(job, job->files[0], 0, want_y, mem)
            != 0)
        {
            return -1;
        }

        if (want_y && !job->has_y) {
            return lt_error(&job->err, "%s: an .npy holds x only; name "
                            "x.npy and y.npy, or give an .npz",
                            job->files[0]);
        }

        names = job->files[0];

    } else if (job->nfiles == 2) {
        if (ngx_http_learn_job_file(job, job->files[0], 0, 0, mem) != 0
            || ngx_http_learn_job_file(job, job->files[1], 1, 0, mem) != 0)
        {
            return -1;
        }

        snprintf(both, sizeof(both), "%s, %s", job->files[0],
                 job->files[1]);
        names = both;

    } else {
        if (job->x_file[0]
            && ngx_http_learn_job_file(job, job->x_file, 0, 0, mem) != 0)
        {
            return -1;
        }

        if (job->y_file[0]
            && ngx_http_learn_job_file(job, job->y_file, 1, 0, mem) != 0)
        {
            return -1;
        }

        names = job->x_file[0] ? job->x_file
                               : (job->y_file[0] ? job->y_file : "the body");
    }

    /* images [N, 28, 28] are rows of 784 features */
    if (job->x.ndim > 2 || (job->x.ndim == 1 && m->in_dim == 1)) {
        n = job->x.shape[0];
        k = n ? lt_tensor_numel(&job->x) / n : 0;
        shape[0] = n;
        shape[1] = k;
        job->x.ndim = 2;
        job->x.shape[0] = shape[0];
        job->x.shape[1] = shape[1];
    }

    if (job->x.ndim != 2) {
        return lt_error(&job->err, "%s: x has %d dimension%s, expected "
                        "rows of %d features [N, %d]", names, job->x.ndim,
                        job->x.ndim == 1 ? "" : "s", m->in_dim, m->in_dim);
    }

    if (want_y) {
        if (lt_model_check_target(m, &job->x, &job->y, &err) != 0) {
            return ngx_http_learn_job_fail(job, names, &err);
        }

    } else if (lt_model_check_input(m, &job->x, &err) != 0) {
        return ngx_http_learn_job_fail(job, names, &err);
    }

    if (job->x.shape[0] == 0) {
        return lt_error(&job->err, "%s: no rows", names);
    }

    return 0;
}
