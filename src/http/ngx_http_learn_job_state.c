
/*
 * The job table's records on disk, so that they outlive a restart: one
 * file per model with checkpoint=PATH, "PATH.jobs", next to the
 * checkpoint (a model whose state survives a restart keeps its jobs'
 * records; one without starts afresh, its jobs with it).
 *
 * The file is rewritten whole on every state change of one of the
 * model's jobs (accepted, started, ended, cancelled, found dead), never
 * per mini-batch or epoch: written to "PATH.jobs.tmp.PID" and renamed
 * over the old one, under the table's lock, so writers from several
 * workers are serialised and a reader sees one whole version (no fsync:
 * it survives nginx stopping or crashing, not the machine losing power,
 * and a torn file is refused by its CRC and ignored).  A record holds
 * what the table holds: id, model, status, figures, the history, the
 * error.
 *
 * When the master makes a new table (a start, not a reload), each
 * model's file is read back: finished jobs keep their records, and a job
 * that was queued or running is an error, "interrupted: nginx restarted".
 */


#include "ngx_http_learn_job_state.h"

#include <math.h>


#define NGX_HTTP_LEARN_JOB_STATE_MAGIC   0x53424f4a4e52414cULL  /* LARNJOBS */
#define NGX_HTTP_LEARN_JOB_STATE_FORMAT  1


typedef struct {
    uint64_t                       magic;
    uint32_t                       format;
    uint32_t                       entry_size;  /* the layout of a record */
    uint32_t                       count;
    uint32_t                       crc;         /* of the records */
} ngx_http_learn_job_state_hdr_t;


/*
 * A running job's thread writes its figures without the table's lock: a
 * save copies each record once and takes its CRC and bytes from the
 * copy.  The lock, held by every save, guards this buffer in every
 * thread and process.
 */
static ngx_http_learn_job_entry_t  ngx_http_learn_job_state_copy;


static ngx_int_t ngx_http_learn_job_state_path(ngx_http_learn_model_t *lm,
    u_char *path, size_t size);
static ngx_http_learn_model_t *ngx_http_learn_job_state_model(
    ngx_http_learn_main_conf_t *lmcf, const u_char *name);
static ngx_int_t ngx_http_learn_job_state_write(int fd, const void *buf,
    size_t len);
static ngx_uint_t ngx_http_learn_job_state_valid(
    ngx_http_learn_job_entry_t *e, ngx_http_learn_model_t *lm);


/* "PATH.jobs" of a model with a checkpoint; NGX_DECLINED: none */

static ngx_int_t
ngx_http_learn_job_state_path(ngx_http_learn_model_t *lm, u_char *path,
    size_t size)
{
    if (lm == NULL || lm->ckpt_path.len == 0
        || lm->ckpt_path.len + sizeof(".jobs.tmp.") + NGX_INT64_LEN >= size)
    {
        return NGX_DECLINED;
    }

    (void) ngx_sprintf(path, "%V.jobs%Z", &lm->ckpt_path);

    return NGX_OK;
}


static ngx_http_learn_model_t *
ngx_http_learn_job_state_model(ngx_http_learn_main_conf_t *lmcf,
    const u_char *name)
{
    size_t                    len;
    ngx_uint_t                i;
    ngx_http_learn_model_t  **lmp;

    if (lmcf == NULL) {
        return NULL;
    }

    len = ngx_strlen(name);
    lmp = lmcf->models.elts;

    for (i = 0; i < lmcf->models.nelts; i++) {
        if (lmp[i]->name.len == len
            && ngx_strncmp(lmp[i]->name.data, name, len) == 0)
        {
            return lmp[i];
        }
    }

    return NULL;
}


/*
 * Under the table's lock, after a state change of a job of "model":
 * that model's records, rewritten.  In a worker (the event loop, or a
 * job's thread as nginx stops).
 */

void
ngx_http_learn_job_state_save(ngx_http_learn_job_shm_t *t,
    const u_char *model, ngx_log_t *log)
{
    int                              fd;
    u_char                           path[NGX_MAX_PATH], tmp[NGX_MAX_PATH];
    uint32_t                         crc;
    ngx_uint_t                       i, n;
    ngx_http_learn_model_t          *lm;
    ngx_http_learn_main_conf_t      *lmcf;
    ngx_http_learn_job_state_hdr_t   hdr;
    ngx_http_learn_job_entry_t      *copy;

    copy = &ngx_http_learn_job_state_copy;

    lmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_learn_module);
    lm = ngx_http_learn_job_state_model(lmcf, model);

    if (ngx_http_learn_job_state_path(lm, path, sizeof(path)) != NGX_OK) {
        return;
    }

    (void) ngx_sprintf(tmp, "%s.tmp.%P%Z", path, ngx_pid);

    fd = open((char *) tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "learn jobs: open(\"%s\") failed: the records of "
                      "model \"%s\" are not saved", tmp, model);
        return;
    }

    /* the header goes first, and again with the count and CRC at the end */
    ngx_memzero(&hdr, sizeof(hdr));

    if (ngx_http_learn_job_state_write(fd, &hdr, sizeof(hdr)) != NGX_OK) {
        goto failed;
    }

    n = 0;
    ngx_crc32_init(crc);

    for (i = 0; i < t->max; i++) {
        if (t->jobs[i].id == 0 || ngx_strcmp(t->jobs[i].model, model) != 0) {
            continue;
        }

        ngx_memcpy(copy, &t->jobs[i], sizeof(ngx_http_learn_job_entry_t));
        ngx_crc32_update(&crc, (u_char *) copy, sizeof(*copy));
        n++;

        if (ngx_http_learn_job_state_write(fd, copy, sizeof(*copy))
            != NGX_OK)
        {
            goto failed;
        }
    }

    ngx_crc32_final(crc);

    hdr.magic = NGX_HTTP_LEARN_JOB_STATE_MAGIC;
    hdr.format = NGX_HTTP_LEARN_JOB_STATE_FORMAT;
    hdr.entry_size = sizeof(ngx_http_learn_job_entry_t);
    hdr.count = (uint32_t) n;
    hdr.crc = crc;

    if (pwrite(fd, &hdr, sizeof(hdr), 0) != (ssize_t) sizeof(hdr)) {
        goto failed;
    }

    if (close(fd) != 0) {
        fd = -1;
        goto failed;
    }

    fd = -1;

    if (rename((char *) tmp, (char *) path) != 0) {
        goto failed;
    }

    return;

failed:

    ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                  "learn jobs: writing \"%s\" failed: the records of model "
                  "\"%s\" are not saved", tmp, model);

    if (fd != -1) {
        (void) close(fd);
    }

    (void) unlink((char *) tmp);
}


static ngx_int_t
ngx_http_learn_job_state_write(int fd, const void *buf, size_t len)
{
    ssize_t        w;
    const u_char  *p;

    for (p = buf; len; p += w, len -= (size_t) w) {
        w = write(fd, p, len);

        if (w <= 0) {
            if (w == -1 && ngx_errno == NGX_EINTR) {
                w = 0;
                continue;
            }

            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* a record from a file: whole, of that model, its texts terminated */

static ngx_uint_t
ngx_http_learn_job_state_valid(ngx_http_learn_job_entry_t *e,
    ngx_http_learn_model_t *lm)
{
    e->model[sizeof(e->model) - 1] = '\0';
    e->input[sizeof(e->input) - 1] = '\0';
    e->output[sizeof(e->output) - 1] = '\0';
    e->error[sizeof(e->error) - 1] = '\0';

    if (e->id == 0
        || e->state > NGX_HTTP_LEARN_JOB_CANCELLED
        || (e->kind != NGX_HTTP_LEARN_JOB_KIND_TRAIN
            && e->kind != NGX_HTTP_LEARN_JOB_KIND_PREDICT)
        || e->cancel > 1
        || e->epoch < 0 || e->epochs < 0 || e->samples < 0
        || e->nhist > ((ngx_uint_t) 1 << 40)
        || ngx_strlen(e->model) != lm->name.len
        || ngx_strncmp(e->model, lm->name.data, lm->name.len) != 0)
    {
        return 0;
    }

    return 1;
}


/*
 * In the master, into a new (empty) table: every model's records.  A
 * file that is missing says nothing; one that is unreadable, torn or of
 * another layout is ignored with a notice (the table starts without it).
 */

void
ngx_http_learn_job_state_load(ngx_http_learn_job_shm_t *t,
    ngx_http_learn_main_conf_t *lmcf, ngx_log_t *log)
{
    int                              fd;
    u_char                           path[NGX_MAX_PATH];
    size_t                           bytes;
    ssize_t                          n;
    uint32_t                         crc;
    ngx_uint_t                       i, k, j, used, take, interrupted;
    ngx_file_info_t                  fi;
    ngx_http_learn_model_t         **lmp;
    ngx_http_learn_job_entry_t      *rec, *e, tmp;
    ngx_http_learn_job_state_hdr_t   hdr;

    if (lmcf == NULL) {
        return;
    }

    lmp = lmcf->models.elts;
    used = 0;

    for (i = 0; i < lmcf->models.nelts; i++) {

        if (ngx_http_learn_job_state_path(lmp[i], path, sizeof(path))
            != NGX_OK)
        {
            continue;
        }

        fd = open((char *) path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd == -1) {
            if (ngx_errno != NGX_ENOENT) {
                ngx_log_error(NGX_LOG_NOTICE, log, ngx_errno,
                              "learn jobs: \"%s\" is not read", path);
            }
            continue;
        }

        rec = NULL;

        if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR || !ngx_is_file(&fi)) {
            goto bad;
        }

        n = read(fd, &hdr, sizeof(hdr));

        /* the sizes agree with the file before anything is allocated */
        if (n != (ssize_t) sizeof(hdr)
            || hdr.magic != NGX_HTTP_LEARN_JOB_STATE_MAGIC
            || hdr.format != NGX_HTTP_LEARN_JOB_STATE_FORMAT
            || hdr.entry_size != sizeof(ngx_http_learn_job_entry_t)
            || hdr.count > 65536
            || ngx_file_size(&fi)
               != (off_t) (sizeof(hdr) + (size_t) hdr.count
                           * sizeof(ngx_http_learn_job_entry_t)))
        {
            goto bad;
        }

        bytes = (size_t) hdr.count * sizeof(ngx_http_learn_job_entry_t);

        rec = ngx_alloc(bytes ? bytes : 1, log);
        if (rec == NULL) {
            goto bad;
        }

        if (bytes && read(fd, rec, bytes) != (ssize_t) bytes) {
            goto bad;
        }

        crc = ngx_crc32_long((u_char *) rec, bytes);

        if (crc != hdr.crc) {
            goto bad;
        }

        for (k = 0; k < hdr.count; k++) {
            if (!ngx_http_learn_job_state_valid(&rec[k], lmp[i])) {
                goto bad;
            }
        }

        /* newest first, so a smaller table keeps the newest */
        for (k = 1; k < hdr.count; k++) {
            tmp = rec[k];
            for (j = k; j > 0 && rec[j - 1].seq < tmp.seq; j--) {
                rec[j] = rec[j - 1];
            }
            rec[j] = tmp;
        }

        take = ngx_min((ngx_uint_t) hdr.count, t->max - used);

        if (take < hdr.count) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "learn jobs: \"%s\" holds %uD records, the table "
                          "has room for %ui: the newest are kept", path,
                          hdr.count, take);
        }

        interrupted = 0;

        for (k = 0; k < take; k++) {
            e = &t->jobs[used + k];
            *e = rec[k];

            if (e->state == NGX_HTTP_LEARN_JOB_QUEUED) {
                ngx_snprintf(e->error, NGX_HTTP_LEARN_JOB_TEXT - 1,
                             "interrupted: nginx restarted while the job "
                             "was queued (it never ran)%Z");

            } else if (e->state == NGX_HTTP_LEARN_JOB_RUNNING) {
                ngx_snprintf(e->error, NGX_HTTP_LEARN_JOB_TEXT - 1,
                             "interrupted: nginx restarted while the job "
                             "was running (at epoch %L of %L when it was "
                             "last saved)%Z", e->epoch, e->epochs);
            }

            if (ngx_http_learn_job_live(e->state)) {
                e->state = NGX_HTTP_LEARN_JOB_ERROR;
                e->cancel = 0;
                e->finished = ngx_time();
                interrupted++;
            }

            t->seq = ngx_max(t->seq, e->seq);
        }

        used += take;

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "learn jobs: %ui record(s) of model \"%V\" read from "
                      "\"%s\", %ui of them interrupted by the restart",
                      take, &lmp[i]->name, path, interrupted);

        ngx_free(rec);
        (void) close(fd);
        continue;

    bad:

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "learn jobs: \"%s\" is not a whole job record file "
                      "of this build (torn, or written by another "
                      "version): ignored", path);

        if (rec) {
            ngx_free(rec);
        }

        (void) close(fd);
    }
}
