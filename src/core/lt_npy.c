/*
 * lt_npy.c: the .npy format (numpy/lib/format.py describes it): a magic
 * string, a version, a header length, a Python dict literal padded with
 * spaces to a multiple of 64 bytes, then the array's bytes.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lt_npy.h"


typedef struct {
    const char    *descr;
    lt_npy_dtype   dtype;
    int            itemsize;
    int            integer;
} lt_npy_type;

static const lt_npy_type  lt_npy_types[] = {
    { "<f4", LT_NPY_F4, 4, 0 },
    { "<f8", LT_NPY_F8, 8, 0 },
    { "<i4", LT_NPY_I4, 4, 1 },
    { "<i8", LT_NPY_I8, 8, 1 },
    { "<i2", LT_NPY_I2, 2, 1 },
    { "<u2", LT_NPY_U2, 2, 1 },
    { "|u1", LT_NPY_U1, 1, 1 },
    { "|i1", LT_NPY_I1, 1, 1 },
    { "|b1", LT_NPY_B1, 1, 1 },
};

#define LT_NPY_NTYPES  (sizeof(lt_npy_types) / sizeof(lt_npy_types[0]))


/* a cursor over the header dict */
typedef struct {
    const char  *p;
    const char  *end;
} lt_npy_cur;


static void
lt_npy_space(lt_npy_cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'
                             || *c->p == '\n' || *c->p == '\r'))
    {
        c->p++;
    }
}


static int
lt_npy_char(lt_npy_cur *c, char ch)
{
    lt_npy_space(c);

    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }

    return 0;
}


/* a quoted Python string without escapes, into buf (NUL-terminated) */
static int
lt_npy_string(lt_npy_cur *c, char *buf, size_t cap)
{
    char    q;
    size_t  n;

    lt_npy_space(c);

    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) {
        return -1;
    }

    q = *c->p++;

    for (n = 0; c->p < c->end && *c->p != q; n++) {
        if (*c->p == '\\' || (unsigned char) *c->p < 0x20
            || (unsigned char) *c->p >= 0x7f || n + 1 >= cap)
        {
            return -1;
        }
        buf[n] = *c->p++;
    }

    if (c->p >= c->end) {
        return -1;
    }

    c->p++;
    buf[n] = '\0';

    return 0;
}


static int
lt_npy_word(lt_npy_cur *c, const char *w)
{
    size_t  n;

    lt_npy_space(c);
    n = strlen(w);

    if ((size_t) (c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 1;
    }

    return 0;
}


/* (3, 4) or (3,) or (): at most LT_MAX_DIMS non-negative integers */
static int
lt_npy_shape(lt_npy_cur *c, lt_npy_info *info, lt_err *err)
{
    int64_t  v;
    int      digits;

    if (!lt_npy_char(c, '(')) {
        return lt_error(err, "the header's 'shape' is not a tuple");
    }

    info->ndim = 0;

    for ( ;; ) {
        if (lt_npy_char(c, ')')) {
            return 0;
        }

        lt_npy_space(c);

        v = 0;
        digits = 0;

        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) {
                return lt_error(err, "a dimension of the shape is too "
                                "large");
            }
            v = v * 10 + (*c->p++ - '0');
            digits++;
        }

        /* Python 2 era files may write 3L */
        if (digits && c->p < c->end && *c->p == 'L') {
            c->p++;
        }

        if (digits == 0) {
            return lt_error(err, "the header's 'shape' holds something "
                            "other than whole numbers");
        }

        if (info->ndim == LT_MAX_DIMS) {
            return lt_error(err, "the array has more than %d dimensions",
                            LT_MAX_DIMS);
        }

        info->shape[info->ndim++] = v;

        if (lt_npy_char(c, ',')) {
            continue;
        }

        if (lt_npy_char(c, ')')) {
            return 0;
        }

        return lt_error(err, "the header's 'shape' is not a tuple");
    }
}


static int
lt_npy_dict(lt_npy_cur *c, lt_npy_info *info, lt_err *err)
{
    char        key[32], descr[32];
    size_t      i;
    int         has_descr, has_order, has_shape, fortran;

    if (!lt_npy_char(c, '{')) {
        return lt_error(err, "the header is not a dict");
    }

    has_descr = has_order = has_shape = 0;
    fortran = 0;
    descr[0] = '\0';

    while (!lt_npy_char(c, '}')) {
        if (lt_npy_string(c, key, sizeof(key)) != 0 || !lt_npy_char(c, ':'))
        {
            return lt_error(err, "the header is not a dict of "
                            "'descr', 'fortran_order' and 'shape'");
        }

        if (strcmp(key, "descr") == 0 && !has_descr) {
            if (lt_npy_string(c, descr, sizeof(descr)) != 0) {
                return lt_error(err, "the header's 'descr' is not a "
                                "simple dtype (structured arrays are not "
                                "read)");
            }
            has_descr = 1;

        } else if (strcmp(key, "fortran_order") == 0 && !has_order) {
            if (lt_npy_word(c, "True")) {
                fortran = 1;
            } else if (!lt_npy_word(c, "False")) {
                return lt_error(err, "the header's 'fortran_order' is "
                                "neither True nor False");
            }
            has_order = 1;

        } else if (strcmp(key, "shape") == 0 && !has_shape) {
            if (lt_npy_shape(c, info, err) != 0) {
                return -1;
            }
            has_shape = 1;

        } else {
            return lt_error(err, "the header has an unknown or repeated "
                            "key '%s'", key);
        }

        if (!lt_npy_char(c, ',')) {
            if (!lt_npy_char(c, '}')) {
                return lt_error(err, "the header is not a dict");
            }
            break;
        }
    }

    lt_npy_space(c);
    if (c->p != c->end) {
        return lt_error(err, "the header has bytes after its dict");
    }

    if (!has_descr || !has_order || !has_shape) {
        return lt_error(err, "the header lacks '%s'",
                        !has_descr ? "descr"
                        : !has_order ? "fortran_order" : "shape");
    }

    if (fortran) {
        return lt_error(err, "the array is in Fortran order "
                        "(fortran_order: True); save it in C order "
                        "(np.ascontiguousarray)");
    }

    /* numpy writes "<u1" for some byte types on some versions */
    if (strcmp(descr, "<u1") == 0 || strcmp(descr, "=u1") == 0) {
        strcpy(descr, "|u1");
    } else if (strcmp(descr, "<i1") == 0 || strcmp(descr, "=i1") == 0) {
        strcpy(descr, "|i1");
    } else if (strcmp(descr, "<b1") == 0 || strcmp(descr, "=b1") == 0) {
        strcpy(descr, "|b1");
    }

    for (i = 0; i < LT_NPY_NTYPES; i++) {
        if (strcmp(descr, lt_npy_types[i].descr) == 0) {
            info->dtype = lt_npy_types[i].dtype;
            info->itemsize = lt_npy_types[i].itemsize;
            info->integer = lt_npy_types[i].integer;
            return 0;
        }
    }

    if (descr[0] == '>') {
        return lt_error(err, "dtype '%s' is big-endian; save it "
                        "little-endian (astype('<%s'))", descr, descr + 1);
    }

    return lt_error(err, "dtype '%s' is not read (float32, float64, int8 "
                    "to int64, uint8, uint16, bool are)", descr);
}


int
lt_npy_parse(const uint8_t *buf, size_t len, lt_npy_info *info,
    lt_err *err)
{
    int         i;
    size_t      hlen, start;
    uint64_t    numel, bytes;
    lt_npy_cur  c;

    memset(info, 0, sizeof(*info));

    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
        return lt_error(err, "not an .npy file (no \\x93NUMPY magic)");
    }

    if (buf[6] == 1 && buf[7] == 0) {
        hlen = (size_t) buf[8] | ((size_t) buf[9] << 8);
        start = 10;

    } else if ((buf[6] == 2 || buf[6] == 3) && buf[7] == 0) {
        if (len < 12) {
            return lt_error(err, "the .npy header is cut short");
        }
        hlen = (size_t) buf[8] | ((size_t) buf[9] << 8)
               | ((size_t) buf[10] << 16) | ((size_t) buf[11] << 24);
        start = 12;

    } else {
        return lt_error(err, ".npy format version %d.%d is not read",
                        buf[6], buf[7]);
    }

    if (hlen > len - start) {
        return lt_error(err, "the .npy header (%zu bytes) is longer than "
                        "the file", hlen);
    }

    c.p = (const char *) buf + start;
    c.end = c.p + hlen;

    if (lt_npy_dict(&c, info, err) != 0) {
        return -1;
    }

    numel = 1;
    for (i = 0; i < info->ndim; i++) {
        if (info->shape[i] < 0
            || (info->shape[i] != 0
                && numel > (uint64_t) INT64_MAX / 16
                           / (uint64_t) info->shape[i]))
        {
            return lt_error(err, "the shape's element count is too "
                            "large");
        }
        numel *= (uint64_t) info->shape[i];
    }

    bytes = numel * (uint64_t) info->itemsize;
    info->numel = (int64_t) numel;
    info->data_off = start + hlen;

    if (bytes != (uint64_t) (len - info->data_off)) {
        return lt_error(err, "the header's shape needs %llu bytes of data, "
                        "the file has %zu",
                        (unsigned long long) bytes, len - info->data_off);
    }

    info->data_len = (size_t) bytes;

    return 0;
}


static uint64_t
lt_npy_le(const uint8_t *p, int n)
{
    int       i;
    uint64_t  v;

    v = 0;
    for (i = n - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }

    return v;
}


int
lt_npy_to_float(const lt_npy_info *info, const uint8_t *buf, float *out,
    lt_err *err)
{
    int64_t         i, n;
    uint64_t        u;
    double          d;
    float           f;
    uint32_t        w;
    const uint8_t  *p;

    p = buf + info->data_off;
    n = info->numel;

    for (i = 0; i < n; i++, p += info->itemsize) {
        switch (info->dtype) {

        case LT_NPY_F4:
            w = (uint32_t) lt_npy_le(p, 4);
            memcpy(&f, &w, 4);
            out[i] = f;
            break;

        case LT_NPY_F8:
            u = lt_npy_le(p, 8);
            memcpy(&d, &u, 8);
            /* beyond float's range is Inf: refused below */
            out[i] = (float) d;
            break;

        case LT_NPY_I4:
            out[i] = (float) (int32_t) (uint32_t) lt_npy_le(p, 4);
            break;

        case LT_NPY_I8:
            out[i] = (float) (int64_t) lt_npy_le(p, 8);
            break;

        case LT_NPY_I2:
            out[i] = (float) (int16_t) (uint16_t) lt_npy_le(p, 2);
            break;

        case LT_NPY_U2:
            out[i] = (float) (uint16_t) lt_npy_le(p, 2);
            break;

        case LT_NPY_U1:
        case LT_NPY_B1:
            out[i] = (float) p[0];
            break;

        case LT_NPY_I1:
            out[i] = (float) (int8_t) p[0];
            break;
        }

        if (!isfinite(out[i])) {
            return lt_error(err, "element %lld is not finite (NaN or Inf%s)",
                            (long long) i,
                            info->dtype == LT_NPY_F8 ? ", or beyond float32"
                                                     : "");
        }
    }

    return 0;
}


size_t
lt_npy_header(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    int     i, n;
    char    dims[LT_MAX_DIMS * 24 + 8];
    size_t  len, total, off;

    off = 0;
    dims[0] = '\0';

    for (i = 0; i < ndim && i < LT_MAX_DIMS; i++) {
        n = snprintf(dims + off, sizeof(dims) - off, "%s%lld",
                     i ? ", " : "", (long long) shape[i]);
        off += (size_t) n;
    }

    /* a 1-tuple keeps its comma, as Python writes it: (n,) */
    if (ndim == 1) {
        dims[off++] = ',';
        dims[off] = '\0';
    }

    if (cap < 10) {
        return 0;
    }

    n = snprintf(buf + 10, cap - 10,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }",
                 dims);
    if (n < 0 || (size_t) n >= cap - 10) {
        return 0;
    }

    len = (size_t) n;
    total = (10 + len + 1 + 63) / 64 * 64;

    if (total > cap || total - 10 > 65535) {
        return 0;
    }

    memset(buf + 10 + len, ' ', total - 10 - len - 1);
    buf[total - 1] = '\n';

    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char) ((total - 10) & 0xff);
    buf[9] = (char) ((total - 10) >> 8);

    return total;
}


/* ---- evaluation ------------------------------------------------------- */

int
lt_eval_batch(const lt_model *m, const lt_tensor *out, const lt_tensor *y,
    double *loss_sum, int64_t *correct, lt_err *err)
{
    int64_t       n, r, best, target;
    int           k, c, j;
    double        sum, lse, mx, p, t;
    const float  *o, *yr;

    n = (out->ndim == 1) ? 1 : out->shape[0];
    k = m->out_dim;
    sum = 0.0;

    if (correct) {
        *correct = (m->spec.loss == LT_LOSS_CE) ? 0 : -1;
    }

    for (r = 0; r < n; r++) {
        o = out->data + r * k;

        if (m->spec.loss == LT_LOSS_CE) {
            mx = o[0];
            best = 0;
            for (c = 1; c < k; c++) {
                if (o[c] > mx) {
                    mx = o[c];
                    best = c;
                }
            }

            lse = 0.0;
            for (c = 0; c < k; c++) {
                lse += exp((double) o[c] - mx);
            }
            lse = mx + log(lse);

            if (y->ndim == 2) {
                /* one-hot or probability rows */
                yr = y->data + r * k;
                target = 0;
                for (c = 0; c < k; c++) {
                    sum -= (double) yr[c] * ((double) o[c] - lse);
                    if (yr[c] > yr[target]) {
                        target = c;
                    }
                }

            } else {
                target = (int64_t) y->data[r];
                if (target < 0 || target >= k) {
                    return lt_error(err, "y[%lld] = %lld is not a class "
                                    "index in [0, %d)", (long long) r,
                                    (long long) target, k);
                }
                sum += lse - (double) o[target];
            }

            if (correct && best == target) {
                (*correct)++;
            }

            continue;
        }

        for (j = 0; j < k; j++) {
            p = o[j];
            t = y->data[r * k + j];

            if (m->spec.loss == LT_LOSS_BCE) {
                sum -= (t * fmax(log(p), -100.0)
                        + (1.0 - t) * fmax(log(1.0 - p), -100.0)) / k;
            } else {
                sum += (p - t) * (p - t) / k;
            }
        }
    }

    *loss_sum += sum;

    return 0;
}
