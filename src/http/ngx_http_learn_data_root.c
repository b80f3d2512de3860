
/*
 * learn_data_root PATH: the only directory a job reads or writes.
 *
 * A name from a request is checked twice.  On the event loop, by its
 * text (no NUL, not absolute, no ".." component: 400), and by resolving
 * it with openat2(RESOLVE_BENEATH) as O_PATH, which opens nothing for
 * reading: a symlink that leads out is a 400 too.  On the job's thread
 * every open resolves again beneath the root, so a symlink swapped in
 * between is refused there as well.  Kernels without openat2 (before
 * 5.6) get realpath() of the name (or of its directory, for a file to
 * be created) compared with realpath() of the root, then an open with
 * O_NOFOLLOW.
 */


#include "ngx_http_learn_job.h"

#include <sys/syscall.h>
#include <linux/openat2.h>


static void ngx_http_learn_data_root_why(lt_err *err, int e);
static int ngx_http_learn_data_root_fallback(const char *root,
    const char *name, int flags, lt_err *err);


/* the name's text: NGX_OK, or NGX_DECLINED with why */

ngx_int_t
ngx_http_learn_data_root_check(ngx_str_t *name, const char **why)
{
    u_char  *p, *start, *end;

    if (name->len == 0) {
        *why = "is empty";
        return NGX_DECLINED;
    }

    if (ngx_strlchr(name->data, name->data + name->len, '\0') != NULL) {
        *why = "has a NUL byte";
        return NGX_DECLINED;
    }

    if (name->data[0] == '/') {
        *why = "is an absolute path (names are relative to learn_data_root)";
        return NGX_DECLINED;
    }

    end = name->data + name->len;

    for (start = name->data; start < end; start = p + 1) {
        p = ngx_strlchr(start, end, '/');
        if (p == NULL) {
            p = end;
        }

        if (p - start == 2 && start[0] == '.' && start[1] == '.') {
            *why = "has a \"..\" component (names stay under "
                   "learn_data_root)";
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


static int
ngx_http_learn_data_root_openat2(const char *root, const char *name,
    int flags, lt_err *err)
{
    int              dfd, fd, e;
    struct open_how  how;

    dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd == -1) {
        lt_error(err, "learn_data_root \"%s\": %s", root, strerror(errno));
        return -1;
    }

    ngx_memzero(&how, sizeof(how));
    /* openat2() refuses O_NOCTTY beside O_PATH */
    how.flags = (uint64_t) (flags | O_CLOEXEC
                            | ((flags & O_PATH) ? 0 : O_NOCTTY));
    how.mode = (flags & O_CREAT) ? 0644 : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;

    fd = (int) syscall(SYS_openat2, dfd, name, &how, sizeof(how));
    e = errno;
    close(dfd);

    if (fd == -1) {
        errno = e;

        if (e == ENOSYS) {
            return -2;
        }

        ngx_http_learn_data_root_why(err, e);
    }

    return fd;
}


/* one message per errno, whichever way the name was resolved */

static void
ngx_http_learn_data_root_why(lt_err *err, int e)
{
    if (e == EXDEV || e == ELOOP) {
        lt_error(err, "leads out of learn_data_root (a symlink)");

    } else if (e == ENOENT) {
        lt_error(err, "no such file under learn_data_root");

    } else if (e == EEXIST) {
        lt_error(err, "exists already (an output is never overwritten)");

    } else {
        lt_error(err, "cannot be opened: %s", strerror(e));
    }

    errno = e;
}


/* a file descriptor beneath root, or -1 with err set (errno kept) */

int
ngx_http_learn_data_root_open(const char *root, const char *name, int flags,
    lt_err *err)
{
    int  fd;

    fd = ngx_http_learn_data_root_openat2(root, name, flags, err);

    if (fd == -2) {
        return ngx_http_learn_data_root_fallback(root, name, flags, err);
    }

    return fd;
}


/* 1: resolving the name leaves the root (a symlink out); else 0 */

int
ngx_http_learn_data_root_escapes(const char *root, const char *name)
{
    int     fd;
    lt_err  err;

    fd = ngx_http_learn_data_root_open(root, name, O_PATH, &err);

    if (fd >= 0) {
        close(fd);
        return 0;
    }

    return errno == EXDEV || errno == ELOOP;
}


static int
ngx_http_learn_data_root_fallback(const char *root, const char *name,
    int flags, lt_err *err)
{
    int     fd;
    char    path[NGX_MAX_PATH], real[PATH_MAX], top[PATH_MAX], *slash;
    size_t  n;

    if (realpath(root, top) == NULL) {
        lt_error(err, "learn_data_root \"%s\": %s", root, strerror(errno));
        return -1;
    }

    if ((size_t) snprintf(path, sizeof(path), "%s/%s", root, name)
        >= sizeof(path))
    {
        errno = ENAMETOOLONG;
        lt_error(err, "the path is too long");
        return -1;
    }

    if (flags & O_CREAT) {
        /* the file does not exist yet: its directory must be beneath */
        slash = strrchr(path, '/');
        *slash = '\0';
        if (realpath(path, real) == NULL) {
            ngx_http_learn_data_root_why(err, errno);
            return -1;
        }
        *slash = '/';

    } else if (realpath(path, real) == NULL) {
        ngx_http_learn_data_root_why(err, errno);
        return -1;
    }

    n = strlen(top);

    if (strncmp(real, top, n) != 0 || (real[n] != '/' && real[n] != '\0')) {
        errno = EXDEV;
        lt_error(err, "leads out of learn_data_root (a symlink)");
        return -1;
    }

    /* the resolved name (a symlink that stays inside is followed), or
     * for a new file the name itself, beneath a checked directory */
    fd = open((flags & O_CREAT) ? path : real,
              flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd == -1) {
        ngx_http_learn_data_root_why(err, errno);
    }

    return fd;
}


/*
 * The whole file into memory (malloc: on a pool thread, freed when the
 * job ends), at most max bytes; err says why not.
 */

uint8_t *
ngx_http_learn_data_root_read(const char *root, const char *name, size_t max,
    size_t *len, lt_err *err)
{
    int          fd;
    size_t       off;
    ssize_t      n;
    uint8_t     *buf;
    struct stat  st;

    fd = ngx_http_learn_data_root_open(root, name, O_RDONLY, err);
    if (fd == -1) {
        return NULL;
    }

    if (fstat(fd, &st) == -1) {
        lt_error(err, "fstat(): %s", strerror(errno));
        close(fd);
        return NULL;
    }

    if (!S_ISREG(st.st_mode)) {
        lt_error(err, "is not a regular file");
        close(fd);
        return NULL;
    }

    if ((uint64_t) st.st_size > (uint64_t) max) {
        lt_error(err, "is %lld bytes, above learn_job_max_file_size (%zu)",
                 (long long) st.st_size, max);
        close(fd);
        return NULL;
    }

    buf = malloc(st.st_size ? (size_t) st.st_size : 1);
    if (buf == NULL) {
        lt_error(err, "out of memory for its %lld bytes",
                 (long long) st.st_size);
        close(fd);
        return NULL;
    }

    for (off = 0; off < (size_t) st.st_size; off += (size_t) n) {
        n = pread(fd, buf + off, (size_t) st.st_size - off, (off_t) off);

        if (n <= 0) {
            lt_error(err, "cannot be read: %s",
                     n == 0 ? "it was cut short" : strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
    }

    close(fd);
    *len = (size_t) st.st_size;

    return buf;
}
