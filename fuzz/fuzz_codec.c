/*
 * fuzz_codec.c: libFuzzer target for the codec (src/core/lt_codec*.c and
 * its two readers, lt_mp.c and lt_json.c).
 *
 * Each input goes through both readers (lt_rd_ops): where one opens it,
 * the whole value is walked with next/more/str and must end where skip
 * ends, with as many entries as count says.  Then it is decoded by every
 * decoder in both syntaxes: a train/predict body, a weight map and a
 * learn_feedback body ({"id"/"ids", "y"}), through an allocator that
 * aborts when a single allocation or the total exceeds the codec's
 * promise (8 * len + 4096; weight maps: plus 72 bytes per entry for the
 * name and lt_tensor arrays the API returns).  Whatever a decode mallocs
 * besides is counted by ASan's malloc hook, and must be nothing, in
 * either syntax.  Whatever decodes is encoded again in every encoding and
 * decoded back, and must come back the same; what decodes as a request is
 * finite.  All memory is freed per input, so LeakSanitizer sees any leak.
 *
 *   make fuzz-quick          10 s
 *   make fuzz FUZZ_TIME=N    N s (default 300)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/allocator_interface.h>

#include "lt_codec_int.h"
#include "lt_job.h"


/*
 * Bytes malloc'ed by anyone but fz_alloc_fn between fz_heap_begin() and
 * fz_heap_end(): the codec's own heap use, which must be none.  The
 * fuzzer runs one input at a time on one thread.
 */
static volatile int     fz_heap_on;
static volatile int     fz_in_alloc;
static volatile size_t  fz_heap_bytes;


static void
fz_malloc_hook(const volatile void *p, size_t size)
{
    (void) p;

    if (fz_heap_on && !fz_in_alloc) {
        fz_heap_bytes += size;
    }
}


static void
fz_free_hook(const volatile void *p)
{
    (void) p;
}


int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    if (__sanitizer_install_malloc_and_free_hooks(fz_malloc_hook,
                                                  fz_free_hook) == 0)
    {
        fprintf(stderr, "fuzz_codec: cannot install the malloc hooks\n");
        abort();
    }

    return 0;
}


static void
fz_heap_begin(void)
{
    fz_heap_bytes = 0;
    fz_heap_on = 1;
}


/* Ends the count; aborts when the decode malloc'ed more than limit. */
static void
fz_heap_end(const char *what, size_t len, size_t limit)
{
    size_t  used;

    fz_heap_on = 0;
    used = fz_heap_bytes;

    if (used > limit) {
        fprintf(stderr, "fuzz_codec: %s of %zu bytes malloc'ed %zu bytes "
                "outside the allocator, limit %zu\n", what, len, used,
                limit);
        abort();
    }
}


typedef struct {
    void    **ptrs;
    size_t    n, cap;
    size_t    total;
    size_t    limit;
    const char *what;
} fz_alloc;


static void *
fz_alloc_fn(void *ctx, size_t size)
{
    fz_alloc  *a;
    void      *p;

    a = ctx;
    if (size > a->limit || a->total + size > a->limit) {
        fprintf(stderr, "fuzz_codec: %s allocates %zu bytes after %zu, "
                "limit %zu\n", a->what, size, a->total, a->limit);
        abort();
    }

    fz_in_alloc = 1;

    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->ptrs = realloc(a->ptrs, a->cap * sizeof(void *));
        if (a->ptrs == NULL) {
            abort();
        }
    }

    p = malloc(size ? size : 1);
    if (p == NULL) {
        abort();
    }

    fz_in_alloc = 0;

    a->ptrs[a->n++] = p;
    a->total += size;
    return p;
}


static void
fz_init(fz_alloc *a, const char *what, size_t limit)
{
    memset(a, 0, sizeof(*a));
    a->what = what;
    a->limit = limit;
}


static void
fz_free(fz_alloc *a)
{
    size_t  i;

    for (i = 0; i < a->n; i++) {
        free(a->ptrs[i]);
    }
    free(a->ptrs);
    memset(a, 0, sizeof(*a));
}


static uint64_t
fz_mul(uint64_t a, uint64_t b)
{
    return (a != 0 && b > UINT64_MAX / a) ? UINT64_MAX : a * b;
}


/* A generous bound on any encoding of t: floats as JSON text, plus the
 * brackets of nested arrays (an empty [N, 0] tensor is N "[]"). */
static uint64_t
fz_encoded_bound(const lt_tensor *t)
{
    uint64_t  numel, arrays, prefix;
    int       i;

    numel = 1;
    arrays = 0;
    prefix = 1;
    for (i = 0; i < t->ndim; i++) {
        arrays += prefix;
        prefix = fz_mul(prefix, (uint64_t) t->shape[i]);
        numel = fz_mul(numel, (uint64_t) t->shape[i]);
    }

    return fz_mul(numel, 24) + fz_mul(arrays, 8) + 256;
}


static int
fz_same(const lt_tensor *a, const lt_tensor *b, int shape_only_if_nonempty)
{
    int64_t  i, n;
    uint32_t ua, ub;

    n = lt_tensor_numel(b);
    if (!(shape_only_if_nonempty && n == 0)) {
        if (a->ndim != b->ndim) {
            return 0;
        }
        for (i = 0; i < a->ndim; i++) {
            if (a->shape[i] != b->shape[i]) {
                return 0;
            }
        }
    }

    if (lt_tensor_numel(a) != n) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        memcpy(&ua, &a->data[i], 4);
        memcpy(&ub, &b->data[i], 4);
        /* float -> double -> float may quiet a signalling NaN */
        if (ua != ub && !(isnan(a->data[i]) && isnan(b->data[i]))) {
            return 0;
        }
    }

    return 1;
}


static int
fz_finite(const lt_tensor *t)
{
    int64_t  i, n;

    n = lt_tensor_numel(t);
    for (i = 0; i < n; i++) {
        if (!isfinite(t->data[i])) {
            return 0;
        }
    }

    return 1;
}


/* Encode t as {"x": t} in every encoding and decode it back. */
static void
fz_round_trip(const lt_tensor *t)
{
    lt_codec_ctx  c;
    fz_alloc      ea, da;
    lt_body       b;
    uint8_t      *out;
    lt_err        err;
    size_t        len;
    uint64_t      bound;
    int           e, rc;

    bound = fz_encoded_bound(t);
    if (bound > (64u << 20)) {
        return;                 /* [2^20, 0, ...]: legal, too big to print */
    }

    for (e = LT_ENC_NUMPY; e <= LT_ENC_JSON; e++) {
        fz_init(&ea, "encode", (size_t) bound);
        c.alloc = fz_alloc_fn;
        c.max_named = 0;
        c.ctx = &ea;
        c.max_elements = 0;

        if (lt_codec_encode_tensor(&c, "x", t, (lt_encoding) e, &out, &len,
                                   &err) != 0)
        {
            fprintf(stderr, "fuzz_codec: encode %d failed: %s\n", e, err.msg);
            abort();
        }

        fz_init(&da, "decode of encode", 8 * len + 4096);
        c.ctx = &da;
        if (e == LT_ENC_JSON) {
            fz_heap_begin();
            rc = lt_codec_decode_json(&c, out, len, &b, &err);
            fz_heap_end("json decode of encode", len, 0);

            if (rc != 0) {
                if (fz_finite(t)) {
                    fprintf(stderr, "fuzz_codec: json round trip: %s\n",
                            err.msg);
                    abort();
                }
            } else if (fz_finite(t) && !fz_same(&b.x, t, 1)) {
                fprintf(stderr, "fuzz_codec: json round trip differs\n");
                abort();
            }

        } else {
            fz_heap_begin();
            rc = lt_codec_decode_msgpack(&c, out, len, &b, &err);
            fz_heap_end("msgpack decode of encode", len, 0);

            if (rc != 0
                || (int) b.enc != e || !b.has_x || b.has_y
                || !fz_same(&b.x, t, e == LT_ENC_NESTED))
            {
                fprintf(stderr, "fuzz_codec: round trip %d: %s\n", e,
                        err.msg);
                abort();
            }
        }

        fz_free(&da);
        fz_free(&ea);
    }
}


static void
fz_named_round_trip(int n, char **names, const lt_tensor *ts)
{
    lt_codec_ctx  c;
    lt_tensor    *rts;
    fz_alloc      ea, da;
    uint8_t      *out;
    uint64_t      bound;
    lt_err        err;
    size_t        len;
    char        **rnames;
    int           e, i, rn, rc, finite;

    bound = 256;
    finite = 1;
    for (i = 0; i < n; i++) {
        bound += fz_encoded_bound(&ts[i]) + 6 * strlen(names[i]) + 16;
        finite = finite && fz_finite(&ts[i]);
    }
    if (bound > (64u << 20)) {
        return;
    }

    for (e = LT_ENC_NUMPY; e <= LT_ENC_JSON; e++) {
        fz_init(&ea, "encode named", (size_t) bound);
        c.alloc = fz_alloc_fn;
        c.max_named = 0;
        c.ctx = &ea;
        c.max_elements = 0;

        if (lt_codec_encode_named(&c, n, (const char *const *) names, ts,
                                  (lt_encoding) e, &out, &len, &err) != 0)
        {
            fprintf(stderr, "fuzz_codec: encode named failed: %s\n",
                    err.msg);
            abort();
        }

        fz_init(&da, "decode of encode named",
                8 * len + 4096 + 72 * (size_t) n);
        c.ctx = &da;
        fz_heap_begin();
        rc = lt_codec_decode_named(&c, out, len, e == LT_ENC_JSON, &rn,
                                   &rnames, &rts, &err);
        fz_heap_end("named decode of encode", len, 0);

        if (rc != 0) {
            if (e != LT_ENC_JSON || finite) {
                fprintf(stderr, "fuzz_codec: named round trip %d: %s\n", e,
                        err.msg);
                abort();
            }

        } else if (e != LT_ENC_JSON || finite) {
            if (rn != n) {
                abort();
            }
            for (i = 0; i < n; i++) {
                if (strcmp(rnames[i], names[i]) != 0
                    || !fz_same(&rts[i], &ts[i], e >= LT_ENC_NESTED))
                {
                    fprintf(stderr, "fuzz_codec: named round trip %d "
                            "differs at %d\n", e, i);
                    abort();
                }
            }
        }

        fz_free(&da);
        fz_free(&ea);
    }
}


/* Entries a weight map declares: what the name and tensor arrays cost.
 * A JSON entry takes 5 bytes at least ("":0,). */
static size_t
fz_named_entries(const uint8_t *d, size_t len, int json)
{
    if (json) {
        return len / 5 + 1;
    }

    if (len >= 1 && (d[0] & 0xf0) == 0x80) {
        return d[0] & 0x0f;
    }
    if (len >= 3 && d[0] == 0xde) {
        return ((size_t) d[1] << 8) | d[2];
    }
    if (len >= 5 && d[0] == 0xdf) {
        return ((size_t) d[1] << 24) | ((size_t) d[2] << 16)
               | ((size_t) d[3] << 8) | d[4];
    }

    return 0;
}


/*
 * The reader interface on its own: walks one value with next/more/str,
 * keys included, and checks it against skip and count.
 */
static void
fz_walk(lt_rd *r, int depth)
{
    uint8_t   small[16];
    uint64_t  n, k;
    size_t    sn;
    lt_rd     end;
    lt_rv     v;

    if (depth > 40) {
        abort();                /* the readers allow 32 levels */
    }

    end = *r;
    end.ops->skip(&end);

    r->ops->next(r, &v);

    if (v.kind == LT_RD_ARRAY || v.kind == LT_RD_MAP) {
        n = r->ops->count(r, &v);
        if (v.counted && n != v.n) {
            abort();
        }

        for (k = 0; r->ops->more(r, &v); k++) {
            if (v.kind == LT_RD_MAP) {
                fz_walk(r, depth + 1);
            }
            fz_walk(r, depth + 1);
        }

        if (k != n) {
            fprintf(stderr, "fuzz_codec: %s count %llu, walked %llu\n",
                    r->ops->name, (unsigned long long) n,
                    (unsigned long long) k);
            abort();
        }

    } else if (v.kind == LT_RD_STR || v.kind == LT_RD_BIN) {
        /* escapes undone are never longer than their text */
        sn = r->ops->str(&v, small, sizeof(small));
        if (sn > v.n || (!v.escaped && sn != v.n)) {
            abort();
        }

    } else if (v.kind == LT_RD_NUMBER) {
        if (v.is_dim && (!v.integer || v.f < 0)) {
            abort();
        }
    }

    if (r->pos != end.pos) {
        fprintf(stderr, "fuzz_codec: %s walk ends at %zu, skip at %zu\n",
                r->ops->name, r->pos, end.pos);
        abort();
    }
}


/* a decoded feedback: 1 to max_named ids of 1-64 printable bytes, and a
 * finite label of at least one element */
static void
fz_feedback_check(const lt_feedback *fb)
{
    size_t  n, j;
    int     i;

    if (fb->nids < 1 || fb->nids > 16 || fb->ids == NULL
        || fb->y.data == NULL || fb->y.ndim < 1 || !fz_finite(&fb->y)
        || (!fb->batched && fb->nids != 1))
    {
        abort();
    }

    for (i = 0; i < fb->nids; i++) {
        n = strlen(fb->ids[i]);
        if (n < 1 || n > LT_FEEDBACK_ID_MAX) {
            abort();
        }
        for (j = 0; j < n; j++) {
            if (fb->ids[i][j] <= 0x20 || fb->ids[i][j] >= 0x7f) {
                abort();
            }
        }
    }
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t  limits[2] = { 0, 16 };
    lt_codec_ctx         c;
    lt_tensor           *ts;
    fz_alloc             a;
    lt_body              b;
    lt_feedback          fb;
    lt_rd                r;
    lt_err               err;
    size_t               bound;
    char               **names;
    int                  json, rc, n, k;
    uint8_t             *copy;

    /* an exact-size heap copy, so ASan sees any read past the end */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);
    bound = 8 * size + 4096;

    for (json = 0; json < 2; json++) {
        fz_heap_begin();
        if (lt_rd_open(&r, json, copy, size, &err) == 0) {
            fz_walk(&r, 0);
            if (r.pos != size) {
                abort();
            }
        }
        fz_heap_end(json ? "json reader" : "msgpack reader", size, 0);

        for (k = 0; k < 2; k++) {
            fz_init(&a, json ? "decode json" : "decode msgpack", bound);
            c.alloc = fz_alloc_fn;
            c.max_named = 0;
            c.ctx = &a;
            c.max_elements = limits[k];

            memset(&err, 0, sizeof(err));
            fz_heap_begin();
            rc = json ? lt_codec_decode_json(&c, copy, size, &b, &err)
                      : lt_codec_decode_msgpack(&c, copy, size, &b, &err);
            fz_heap_end(json ? "json decode" : "msgpack decode", size, 0);

            if (rc != 0) {
                if (err.msg[0] == '\0' || strlen(err.msg) >= LT_ERR_LEN) {
                    abort();
                }
            } else {
                if (!b.has_x || b.x.data == NULL
                    || b.x.ndim < 1 || b.x.ndim > LT_MAX_DIMS
                    || (b.has_y && b.y.data == NULL)
                    || !fz_finite(&b.x) || (b.has_y && !fz_finite(&b.y))
                    || (limits[k] && (size_t) lt_tensor_numel(&b.x)
                                     > limits[k]))
                {
                    abort();
                }
                if (k == 0) {
                    fz_round_trip(&b.x);
                    if (b.has_y) {
                        fz_round_trip(&b.y);
                    }
                }
            }
            fz_free(&a);
        }

        fz_init(&a, "decode named",
                bound + 72 * fz_named_entries(copy, size, json));
        c.alloc = fz_alloc_fn;
        c.max_named = 0;
        c.ctx = &a;
        c.max_elements = 0;

        fz_heap_begin();
        rc = lt_codec_decode_named(&c, copy, size, json, &n, &names, &ts,
                                   &err);
        fz_heap_end("named decode", size, 0);
        if (rc == 0) {
            fz_named_round_trip(n, names, ts);
        } else if (n != 0 || names != NULL || ts != NULL) {
            abort();
        }
        fz_free(&a);

        fz_init(&a, "decode feedback", bound + 8 * size);
        c.alloc = fz_alloc_fn;
        c.max_named = 16;
        c.ctx = &a;
        c.max_elements = 0;

        fz_heap_begin();
        rc = lt_codec_decode_feedback(&c, copy, size, json, &fb, &err);
        fz_heap_end("feedback decode", size, 0);
        if (rc == 0) {
            fz_feedback_check(&fb);
        } else if (fb.nids != 0 || fb.ids != NULL || err.msg[0] == '\0') {
            abort();
        }
        fz_free(&a);

        /* dataset job bodies (lt_codec_job.c): train and predict keys */
        for (k = 0; k < 2; k++) {
            lt_job_req  jr;

            fz_init(&a, "decode job", bound + 8 * size);
            c.alloc = fz_alloc_fn;
            c.max_named = 0;
            c.ctx = &a;
            c.max_elements = 0;

            fz_heap_begin();
            rc = lt_codec_decode_job(&c, copy, size, json, k, &jr, &err);
            fz_heap_end("job decode", size, 0);
            if (rc == 0) {
                if ((jr.nfiles == 0 && jr.x_file == NULL && !jr.has_x)
                    || jr.nfiles > LT_JOB_FILES_MAX
                    || (jr.has_x && !fz_finite(&jr.x))
                    || (jr.has_y && !fz_finite(&jr.y)))
                {
                    abort();
                }
            } else if (err.msg[0] == '\0') {
                abort();
            }
            fz_free(&a);
        }
    }

    free(copy);
    return 0;
}
