/*
 * test_codec.c: the request/response codec (src/core/lt_codec.c).
 *
 * Every decode runs under a counting allocator and must stay within
 * 8 * len + 4096 bytes (named decodes: plus 72 per entry, for the name
 * and lt_tensor arrays the API returns).  Bodies made by real Python
 * clients come from fixtures/codec_vectors.h (fixtures/gen_codec.py);
 * replies are checked by Python's msgpack_numpy too, through
 * fixtures/check_reply.py, when /usr/bin/python3 has it.
 */
#include <math.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "lt_codec.h"
#include "tap.h"
#include "fixtures/codec_vectors.h"


/* ---- counting allocator -------------------------------------------------- */

typedef struct {
    void    **ptrs;
    size_t    n, cap;
    size_t    total;
    long      fail_at;          /* this allocation (0-based) fails; -1 never */
} t_alloc;

static t_alloc  A = { NULL, 0, 0, 0, -1 };
static int      bound_violations;


static void *
t_alloc_fn(void *ctx, size_t size)
{
    t_alloc  *a;
    void     *p;

    a = ctx;
    if (a->fail_at >= 0 && (long) a->n == a->fail_at) {
        a->fail_at = -2;            /* fail once, then count nothing more */
        return NULL;
    }

    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->ptrs = realloc(a->ptrs, a->cap * sizeof(void *));
        if (a->ptrs == NULL) {
            abort();
        }
    }

    p = malloc(size ? size : 1);
    if (p == NULL) {
        abort();
    }

    a->ptrs[a->n++] = p;
    a->total += size;
    return p;
}


static void
t_reset(void)
{
    size_t  i;

    for (i = 0; i < A.n; i++) {
        free(A.ptrs[i]);
    }

    A.n = 0;
    A.total = 0;
    A.fail_at = -1;
}


static lt_codec_ctx  C = { t_alloc_fn, &A, 0, 0 };


static void
check_bound(const char *what, size_t len, size_t extra)
{
    if (A.total > 8 * len + 4096 + extra) {
        bound_violations++;
        diag("%s: allocated %zu bytes for a %zu-byte body", what, A.total,
             len);
    }
}


/* Decodes a msgpack (json = 0) or JSON body, freeing the last one. */
static int
dec(const void *buf, size_t len, int json, lt_body *b, lt_err *err)
{
    int  rc;

    t_reset();
    err->msg[0] = '\0';
    if (json) {
        rc = lt_codec_decode_json(&C, buf, len, b, err);
    } else {
        rc = lt_codec_decode_msgpack(&C, buf, len, b, err);
    }

    check_bound(json ? "json" : "msgpack", len, 0);
    if (rc != 0 && err->msg[0] == '\0') {
        diag("failure without a message");
        bound_violations++;
    }

    return rc;
}


static int
dec_named(const void *buf, size_t len, int json, int *n, char ***names,
    lt_tensor **ts, lt_err *err)
{
    int  rc;

    t_reset();
    err->msg[0] = '\0';
    rc = lt_codec_decode_named(&C, buf, len, json, n, names, ts, err);
    /* entries: at most len / 2 (msgpack) — count what came back */
    check_bound("named", len, 72 * (size_t) (rc == 0 ? *n : 0));
    return rc;
}


/* ---- building msgpack bodies --------------------------------------------- */

typedef struct {
    msgpack_sbuffer  sb;
    msgpack_packer   pk;
} t_mp;


static void
mp_begin(t_mp *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}


static void
mp_end(t_mp *m)
{
    msgpack_sbuffer_destroy(&m->sb);
}


static void
mp_str(t_mp *m, const char *s)
{
    msgpack_pack_str(&m->pk, strlen(s));
    msgpack_pack_str_body(&m->pk, s, strlen(s));
}


static void
mp_bin(t_mp *m, const void *s, size_t n)
{
    msgpack_pack_bin(&m->pk, n);
    msgpack_pack_bin_body(&m->pk, s, n);
}


/* a key as str or bin */
static void
mp_key(t_mp *m, const char *s, int bin)
{
    if (bin) {
        mp_bin(m, s, strlen(s));
    } else {
        mp_str(m, s);
    }
}


static void
mp_shape(t_mp *m, int ndim, const int64_t *shape)
{
    int  i;

    msgpack_pack_array(&m->pk, (size_t) ndim);
    for (i = 0; i < ndim; i++) {
        msgpack_pack_int64(&m->pk, shape[i]);
    }
}


/* little-endian bytes of values in the given dtype ("<f4" ... "<i8") */
static size_t
le_bytes(uint8_t *out, const double *v, size_t n, int size, int integer)
{
    uint64_t  u;
    uint32_t  w;
    int64_t   i64;
    size_t    i;
    float     f;
    int       k;

    for (i = 0; i < n; i++) {
        if (integer) {
            i64 = (int64_t) v[i];
            memcpy(&u, &i64, 8);
        } else if (size == 4) {
            f = (float) v[i];
            memcpy(&w, &f, 4);
            u = w;
        } else {
            memcpy(&u, &v[i], 8);
        }
        for (k = 0; k < size; k++) {
            out[i * size + k] = (uint8_t) (u >> (8 * k));
        }
    }

    return n * (size_t) size;
}


/* {"x": numpy map} with str or bin keys */
static void
mp_numpy(t_mp *m, const char *type, int ndim, const int64_t *shape,
    const void *data, size_t len, int bin_keys)
{
    msgpack_pack_map(&m->pk, 5);
    mp_key(m, "nd", bin_keys);
    msgpack_pack_true(&m->pk);
    mp_key(m, "type", bin_keys);
    mp_str(m, type);
    mp_key(m, "kind", bin_keys);
    mp_bin(m, "", 0);
    mp_key(m, "shape", bin_keys);
    mp_shape(m, ndim, shape);
    mp_key(m, "data", bin_keys);
    mp_bin(m, data, len);
}


static int
same_floats(const float *a, const float *b, size_t n)
{
    return n == 0 || memcmp(a, b, n * sizeof(float)) == 0;
}


static int
same_shape(const lt_tensor *t, int ndim, const int64_t *shape)
{
    int  i;

    if (t->ndim != ndim) {
        return 0;
    }

    for (i = 0; i < ndim; i++) {
        if (t->shape[i] != shape[i]) {
            return 0;
        }
    }

    return 1;
}


/* ---- non-finite values --------------------------------------------------- */

/* {"x": {"shape": [n], "dtype": dt, "data": bin}} from doubles */
static void
mp_raw_x(t_mp *m, const char *dtype, const double *v, size_t n, int size)
{
    static uint8_t  bytes[8 * 256];
    int64_t         shape[1];

    shape[0] = (int64_t) n;
    msgpack_pack_map(&m->pk, 1);
    mp_str(m, "x");
    msgpack_pack_map(&m->pk, 3);
    mp_str(m, "shape");
    mp_shape(m, 1, shape);
    mp_str(m, "dtype");
    mp_str(m, dtype);
    mp_str(m, "data");
    mp_bin(m, bytes, le_bytes(bytes, v, n, size, 0));
}


static void
test_nonfinite(void)
{
    static double  v[200];
    int64_t        shape[1];
    lt_body        b;
    lt_err         err;
    const char    *s;
    size_t         i;
    t_mp           m;

    s = "{\"x\": [[0, 1e999]], \"y\": [[1]]}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1, "json: 1e999 in x refused");
    is_str(err.msg, "x has a non-finite value (NaN or Inf) at element 1",
           "json: the message names x and the element");

    s = "{\"x\": [[0, 1], [1, 1]], \"y\": [[1], [-1e999]]}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1, "json: -1e999 in y refused");
    is_str(err.msg, "y has a non-finite value (NaN or Inf) at element 1",
           "json: the message names y");

    s = "{\"x\": [[0, 1e39]]}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1,
       "json: 1e39, finite as a double, is Inf as a float32: refused");

    s = "{\"x\": [[0, 3e38]], \"y\": [[-3.4e38]]}";
    ok(dec(s, strlen(s), 1, &b, &err) == 0, "json: large finite floats pass");

    s = "{\"x\": {\"shape\": [3], \"data\": [0, 0, 1e999]}}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1 && strstr(err.msg, "element 2"),
       "json: shape/data form refused too");

    /* msgpack floats */
    mp_begin(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "x");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_double(&m.pk, 0.5);
    msgpack_pack_double(&m.pk, NAN);
    mp_str(&m, "y");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_float(&m.pk, 1.0f);
    ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == -1,
       "msgpack: float64 NaN in nested x refused");
    is_str(err.msg, "x has a non-finite value (NaN or Inf) at element 1",
           "msgpack: the message names the element");
    mp_end(&m);

    mp_begin(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "x");
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_float(&m.pk, 0.5f);
    msgpack_pack_float(&m.pk, 1.0f);
    mp_str(&m, "y");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_float(&m.pk, -INFINITY);
    ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == -1
       && strncmp(err.msg, "y has a non-finite", 18) == 0,
       "msgpack: float32 -Inf in y refused");
    mp_end(&m);

    mp_begin(&m);
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_double(&m.pk, 1e300);
    msgpack_pack_double(&m.pk, 0);
    ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == -1
       && strstr(err.msg, "element 0"),
       "msgpack: a bare tensor's float64 1e300 is Inf as float32: refused");
    mp_end(&m);

    /* bin data: float64 and float32, the Inf / NaN in every position of
     * the blocks the scan works in */
    for (i = 0; i < 130; i++) {
        v[i] = (double) i;
    }
    v[3] = INFINITY;

    mp_begin(&m);
    mp_raw_x(&m, "float64", v, 8, 8);
    ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == -1, "float64 bin Inf");
    is_str(err.msg, "x has a non-finite value (NaN or Inf) at element 3",
           "float64 bin: element 3");
    mp_end(&m);

    v[3] = 3.0;
    v[129] = NAN;
    mp_begin(&m);
    mp_raw_x(&m, "float32", v, 130, 4);
    ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == -1
       && strstr(err.msg, "element 129"), "float32 bin NaN at the end");
    mp_end(&m);

    v[129] = 129.0;
    v[64] = -INFINITY;
    mp_begin(&m);
    mp_raw_x(&m, "<f8", v, 130, 8);
    ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == -1
       && strstr(err.msg, "element 64"), "float64 -Inf first of a block");
    mp_end(&m);

    v[64] = 64.0;
    mp_begin(&m);
    mp_raw_x(&m, "float32", v, 130, 4);
    ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == 0 && b.x.shape[0] == 130,
       "all finite: accepted");
    mp_end(&m);

    /* msgpack-numpy with a NaN */
    v[0] = NAN;
    shape[0] = 2;
    {
        uint8_t  bytes[16];
        size_t   n;

        n = le_bytes(bytes, v, 2, 4, 0);
        mp_begin(&m);
        msgpack_pack_map(&m.pk, 1);
        mp_key(&m, "x", 1);
        mp_numpy(&m, "<f4", 1, shape, bytes, n, 1);
        ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == -1
           && strstr(err.msg, "element 0"), "msgpack-numpy <f4 NaN refused");
        mp_end(&m);
    }
}


/* ---- strict JSON --------------------------------------------------------- */

static void
test_json_strict(void)
{
    static const char *const  bad_numbers[] = {
        "01", "-01", "00", "1.", "1.e5", "-", "1e", "1e+", "0x10", "1.5.5",
        "--1", "1e5e5", "1-2", "0.5.", "1E"
    };
    static const char *const  good_numbers[] = {
        "0", "-0", "0.5", "10", "1e5", "1E-05", "-0.0e+0", "123.456e-7"
    };
    lt_body                   b;
    lt_err                    err;
    char                      body[128], name[64];
    const char               *s;
    size_t                    i;

    s = "{\"x\\u0000y\": [[0, 1]]}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1,
       "json: a key with \\u0000 is refused, not read as \"x\"");
    is_str(err.msg, "JSON strings must not contain \\u0000", "its message");

    s = "{\"x\": [[0, 1]], \"kind\": \"p\\u0000\"}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1, "json: \\u0000 in a value too");

    s = "{\"x\": [[0, 1]], \"kind\": \"\\\\u0000\"}";
    ok(dec(s, strlen(s), 1, &b, &err) == 0,
       "json: an escaped backslash before u0000 is just text");

    s = "{\"x\": [[0, 1]], \"kind\": \"\\u00e9 01 1.\"}";
    ok(dec(s, strlen(s), 1, &b, &err) == 0,
       "json: numbers inside strings are not numbers");

    s = "\xef\xbb\xbf{\"x\": [[0, 1]]}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1, "json: a BOM is refused");
    like(err.msg, "byte order mark", "its message");

    for (i = 0; i < sizeof(bad_numbers) / sizeof(bad_numbers[0]); i++) {
        snprintf(body, sizeof(body), "{\"x\": [%s, 1]}", bad_numbers[i]);
        snprintf(name, sizeof(name), "json: number %s refused",
                 bad_numbers[i]);
        ok(dec(body, strlen(body), 1, &b, &err) == -1
           && strstr(err.msg, "JSON"), name);
    }

    for (i = 0; i < sizeof(good_numbers) / sizeof(good_numbers[0]); i++) {
        snprintf(body, sizeof(body), "{\"x\": [%s,1]}", good_numbers[i]);
        snprintf(name, sizeof(name), "json: number %s accepted",
                 good_numbers[i]);
        ok(dec(body, strlen(body), 1, &b, &err) == 0, name);
    }

    s = "[01]";
    ok(dec(s, strlen(s), 1, &b, &err) == -1, "json: a bare 01 refused");
    s = "{\"x\": [1], \"y\": [007]}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1, "json: 007 in y refused");
}


/* ---- the JSON reader: numbers, escapes ---------------------------------- */

/* what cJSON gave: strtod()'s double, as float */
static float
t_strtod_float(const char *num)
{
    return (float) strtod(num, NULL);
}


static void
test_json_reader(void)
{
    static const char *const  nums[] = {
        "0", "-0", "1", "0.5", "0.1", "0.30000000000000004", "123.456e-7",
        "0.5019607843137255", "9007199254740993", "18446744073709551617",
        "1e22", "1e23", "1.17549435e-38", "4.9e-324", "1e-400",
        "123456789012345678901234567890", "0.000000000000000000000001",
        "3.4028234663852886e38", "-2.5e-3", "1E+2", "7e-1"
    };
    lt_body      b;
    lt_err       err;
    char         body[2600], name[160], *big;
    uint64_t     seed;
    size_t       i, k;
    int          j, n, bad;
    char       **names;
    lt_tensor   *ts;
    const char  *s;
    float        want;

    /* each number as cJSON + strtod read it, fast path or not */
    for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        snprintf(body, sizeof(body), "[%s]", nums[i]);
        snprintf(name, sizeof(name), "json reader: %s as strtod reads it",
                 nums[i]);
        want = t_strtod_float(nums[i]);
        ok(dec(body, strlen(body), 1, &b, &err) == 0
           && memcmp(&b.x.data[0], &want, 4) == 0, name);
    }

    /* 20000 random %.17g doubles of every magnitude against strtod */
    seed = 12345;
    bad = 0;
    for (i = 0; i < 20000; i++) {
        double  v;

        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        v = (double) (seed >> 11) / 9007199254740992.0;
        v = ldexp(v, (int) ((seed >> 3) % 200) - 100);
        snprintf(body, sizeof(body), "[%.*g]", (int) (i % 17) + 1, v);
        want = t_strtod_float(body + 1);
        if (dec(body, strlen(body), 1, &b, &err) != 0
            || memcmp(&b.x.data[0], &want, 4) != 0)
        {
            if (bad++ < 3) {
                diag("%s", body);
            }
        }
    }
    ok(bad == 0, "json reader: 20000 random numbers read as strtod does");

    /* a number of 2000 digits, and one with a 1000-digit tail of zeros */
    k = (size_t) snprintf(body, sizeof(body), "[0.");
    for (j = 0; j < 2000; j++) {
        body[k++] = (char) ('0' + (j * 7 + 3) % 10);
    }
    snprintf(body + k, sizeof(body) - k, "e1]");
    want = t_strtod_float(body + 1);
    ok(dec(body, strlen(body), 1, &b, &err) == 0
       && memcmp(&b.x.data[0], &want, 4) == 0,
       "json reader: a 2000-digit number as strtod reads it");

    big = malloc(1100);
    k = (size_t) snprintf(big, 1100, "[1");
    for (j = 0; j < 1000; j++) {
        big[k++] = '0';
    }
    snprintf(big + k, 1100 - k, "e-1000]");
    ok(dec(big, strlen(big), 1, &b, &err) == 0 && b.x.data[0] == 1.0f,
       "json reader: 1 and 1000 zeros, e-1000, is 1");
    free(big);

    /* escapes are undone before keys are compared, as cJSON did */
    s = "{\"\\u0078\": [[0, 1]], \"\\u0079\": [[1]]}";
    ok(dec(s, strlen(s), 1, &b, &err) == 0 && b.has_x && b.has_y,
       "json reader: \\u0078 is the key x, \\u0079 is y");

    s = "{\"x\": {\"sh\\u0061pe\": [2], \"data\": [1, 2], "
        "\"dtype\": \"float\\u00332\"}}";
    ok(dec(s, strlen(s), 1, &b, &err) == 0 && b.x.shape[0] == 2,
       "json reader: escaped shape key and dtype value");

    s = "{\"a\\nb\": [1], \"\\ud83d\\ude00\": [2], \"\\u00e9\": [3]}";
    ok(dec_named(s, strlen(s), 1, &n, &names, &ts, &err) == 0 && n == 3
       && strcmp(names[0], "a\nb") == 0
       && strcmp(names[1], "\xf0\x9f\x98\x80") == 0
       && strcmp(names[2], "\xc3\xa9") == 0,
       "json reader: weight names unescaped to UTF-8, surrogate pairs too");

    s = "{\"x\": [[0, 1]], \"kind\": \"\\uZZZZ\"}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1
       && strcmp(err.msg, "body is not valid JSON") == 0,
       "json reader: \\uZZZZ refused (cJSON read it as a NUL)");

    s = "{\"x\": [[0, 1]], \"kind\": \"\\ude00\"}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1,
       "json reader: a lone low surrogate refused");
    s = "{\"x\": [[0, 1]], \"kind\": \"\\ud83d x\"}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1,
       "json reader: a high surrogate without its low one refused");
    s = "{\"x\": [[0, 1]], \"kind\": \"\\q\"}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1, "json reader: \\q refused");
    s = "{\"x\":\f[[0, 1]]}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1,
       "json reader: a form feed is no space");
    s = " {\"x\" : [ [ 0 , 1 ] ] , \"y\" : [ [ 1 ] ] } \r\n\t";
    ok(dec(s, strlen(s), 1, &b, &err) == 0 && b.has_y,
       "json reader: space wherever JSON allows it");
    s = "{\"x\": [[0, 1]],}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1, "json reader: a trailing comma");
    s = "{\"x\": [[0, 1] [1, 0]]}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1, "json reader: a missing comma");
    s = "{\"x\": [[true, 1]]}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1
       && strstr(err.msg, "is a boolean, not a number") != NULL,
       "json reader: true is a boolean");

    /* a row longer than the first, found at its extra element; a shape
     * the body's bytes cannot hold is ragged, found without allocating */
    s = "{\"x\": [[0, 1], [1, 0, 1]]}";
    ok(dec(s, strlen(s), 1, &b, &err) == -1
       && strcmp(err.msg, "tensor \"x\": ragged array at depth 1") == 0,
       "json reader: a longer row is ragged");
    k = (size_t) snprintf(body, sizeof(body), "{\"x\": [[0");
    for (j = 0; j < 1000; j++) {
        k += (size_t) snprintf(body + k, sizeof(body) - k, ",0");
    }
    snprintf(body + k, sizeof(body) - k, "], [0], [0], [0]]}");
    ok(dec(body, strlen(body), 1, &b, &err) == -1 && A.total == 0
       && strcmp(err.msg, "tensor \"x\": ragged array at depth 1") == 0,
       "json reader: [4, 1001] in 2 KB is ragged, nothing allocated");
}


/* ---- JSON without a tree: big bodies, limits, threads ------------------- */

/* "[0,0,...]" of n zeros, or with rows ("[[0],[0],...]") */
static char *
zeros_json(size_t n, int rows, const char *prefix, const char *suffix)
{
    size_t  i, len, k;
    char   *s;

    len = strlen(prefix) + strlen(suffix) + 4 * n + 8;
    s = malloc(len);
    if (s == NULL) {
        abort();
    }

    k = (size_t) snprintf(s, len, "%s[", prefix);
    for (i = 0; i < n; i++) {
        if (i > 0) {
            s[k++] = ',';
        }
        if (rows) {
            memcpy(s + k, "[0]", 3);
            k += 3;
        } else {
            s[k++] = '0';
        }
    }
    snprintf(s + k, len - k, "]%s", suffix);

    return s;
}


typedef struct {
    const char  *body;
    size_t       max_elements;
    int          want;          /* 0 or -1 */
    int          wrong;
} t_thread;


static void *
t_decode_loop(void *arg)
{
    t_thread      *t;
    t_alloc        a;
    lt_codec_ctx   c;
    lt_body        b;
    lt_err         err;
    int            i, rc;

    t = arg;
    memset(&a, 0, sizeof(a));
    a.fail_at = -1;
    c.alloc = t_alloc_fn;
    c.max_named = 0;
    c.ctx = &a;
    c.max_elements = t->max_elements;

    for (i = 0; i < 12; i++) {
        rc = lt_codec_decode_json(&c, (const uint8_t *) t->body,
                                  strlen(t->body), &b, &err);
        if (rc != t->want
            || (rc != 0 && strcmp(err.msg, "tensor has 200000 elements, "
                                  "learn_max_elements is 1000")))
        {
            t->wrong++;
        }

        while (a.n > 0) {
            free(a.ptrs[--a.n]);
        }
        a.total = 0;
    }

    free(a.ptrs);
    return NULL;
}


static void
test_json_cap(void)
{
    lt_codec_ctx  c;
    pthread_t     th[2];
    t_thread      tt[2];
    lt_body       b;
    lt_err        err;
    char         *s, *big;

    c = C;

    /* 200000 zeros: a 400 KB body (cJSON built a 12.8 MB tree of it, and
     * a cap on that tree refused it; the reader builds none, so the
     * element limit refuses it before anything is allocated) */
    big = zeros_json(200000, 0, "{\"x\": ", "}");
    c.max_elements = 1000;
    t_reset();
    ok(lt_codec_decode_json(&c, (const uint8_t *) big, strlen(big), &b, &err)
       == -1 && A.total == 0, "above learn_max_elements: fails, "
       "nothing allocated");
    is_str(err.msg, "tensor has 200000 elements, learn_max_elements is 1000",
           "with the element limit's message");

    c.max_elements = 0;
    t_reset();
    ok(lt_codec_decode_json(&c, (const uint8_t *) big, strlen(big), &b, &err)
       == 0 && b.x.shape[0] == 200000,
       "the same body without an element limit decodes");

    s = "{\"x\": [[0, 1]]}";
    c.max_elements = 1000;
    t_reset();
    ok(lt_codec_decode_json(&c, (const uint8_t *) s, strlen(s), &b, &err)
       == 0, "the next decode on the thread starts a fresh count");

    /* the worst legitimate body at the limit: x [N, 1] and y [N, 1] */
    {
        char    *x, *body;
        size_t   n, lx;

        n = 50000;
        x = zeros_json(n, 1, "", "");
        lx = strlen(x);
        body = malloc(2 * lx + 32);
        if (body == NULL) {
            abort();
        }
        snprintf(body, 2 * lx + 32, "{\"x\": %s, \"y\": %s}", x, x);

        c.max_elements = n;
        t_reset();
        ok(lt_codec_decode_json(&c, (const uint8_t *) body, strlen(body),
                                &b, &err) == 0
           && b.x.shape[0] == (int64_t) n && b.y.shape[0] == (int64_t) n,
           "x [N, 1] and y [N, 1] with N = learn_max_elements decode");

        c.max_elements = n / 2;
        t_reset();
        ok(lt_codec_decode_json(&c, (const uint8_t *) body, strlen(body),
                                &b, &err) == -1,
           "and with half the limit they do not");

        free(body);
        free(x);
    }

    /* decodes share no state: one refused on one thread and a big
     * legitimate one on another never disturb each other */
    tt[0].body = big;
    tt[0].max_elements = 1000;
    tt[0].want = -1;
    tt[0].wrong = 0;
    tt[1].body = big;
    tt[1].max_elements = 0;
    tt[1].want = 0;
    tt[1].wrong = 0;

    if (pthread_create(&th[0], NULL, t_decode_loop, &tt[0]) == 0) {
        if (pthread_create(&th[1], NULL, t_decode_loop, &tt[1]) == 0) {
            pthread_join(th[1], NULL);
        } else {
            tt[1].wrong = -1;
        }
        pthread_join(th[0], NULL);
    } else {
        tt[0].wrong = -1;
    }

    if (!ok(tt[0].wrong == 0 && tt[1].wrong == 0,
            "two threads, each decode on its own"))
    {
        diag("wrong results: %d and %d", tt[0].wrong, tt[1].wrong);
    }

    free(big);
    t_reset();
}


/* ---- Python's own bodies -------------------------------------------------- */

static void
test_python_vectors(void)
{
    const lt_codec_vector  *v;
    lt_body                 b;
    lt_err                  err;
    size_t                  i;
    char                    name[160];
    int                     rc;

    for (i = 0; i < sizeof(lt_codec_vectors) / sizeof(lt_codec_vectors[0]);
         i++)
    {
        v = &lt_codec_vectors[i];
        rc = dec(v->body, v->len, 0, &b, &err);

        if (v->error != NULL) {
            snprintf(name, sizeof(name), "python %s: fails", v->name);
            ok(rc == -1, name);
            snprintf(name, sizeof(name), "python %s: message", v->name);
            like(err.msg, v->error, name);
            continue;
        }

        snprintf(name, sizeof(name), "python %s: decodes", v->name);
        if (!ok(rc == 0, name)) {
            diag("%s", err.msg);
            continue;
        }

        snprintf(name, sizeof(name), "python %s: encoding", v->name);
        is_int(b.enc, v->enc, name);
        snprintf(name, sizeof(name), "python %s: x shape and values",
                 v->name);
        ok(b.has_x && same_shape(&b.x, v->x_ndim, v->x_shape)
           && lt_tensor_numel(&b.x) == (int64_t) v->x_numel
           && same_floats(b.x.data, v->x, v->x_numel), name);
        snprintf(name, sizeof(name), "python %s: has_y", v->name);
        is_int(b.has_y, v->has_y, name);

        if (v->has_y) {
            snprintf(name, sizeof(name), "python %s: y shape and values",
                     v->name);
            ok(same_shape(&b.y, v->y_ndim, v->y_shape)
               && same_floats(b.y.data, v->y, v->y_numel), name);
            snprintf(name, sizeof(name), "python %s: y_integer", v->name);
            is_int(b.y_integer, v->y_integer, name);
        }
    }
}


static void
test_python_weights(void)
{
    lt_tensor  *ts;
    lt_err      err;
    size_t      off;
    char      **names;
    int         n, i, good;

    ok(dec_named(vec_weights, sizeof(vec_weights), 0, &n, &names, &ts, &err)
       == 0, "python weights: decode");
    if (!is_int(n, 3, "python weights: 3 entries")) {
        return;
    }

    good = 1;
    off = 0;
    for (i = 0; i < n; i++) {
        good = good && strcmp(names[i], vec_weights_names[i]) == 0
               && same_shape(&ts[i], vec_weights_ndim[i],
                             vec_weights_shape[i])
               && same_floats(ts[i].data, vec_weights_values + off,
                              (size_t) lt_tensor_numel(&ts[i]));
        off += (size_t) lt_tensor_numel(&ts[i]);
    }
    ok(good, "python weights: names, shapes and values");
}


/* ---- msgpack forms built here ---------------------------------------------- */

static void
test_numpy_dtypes(void)
{
    static const struct {
        const char  *type;
        int          size, integer;
    } types[] = {
        { "<f4", 4, 0 }, { "<f8", 8, 0 }, { "<i4", 4, 1 }, { "<i8", 8, 1 }
    };
    static const double   vals[6] = { 0, 1, -2, 3, 40000, -5 };
    static const float    want[6] = { 0, 1, -2, 3, 40000, -5 };
    static const int64_t  shape[2] = { 2, 3 };
    uint8_t               data[48];
    lt_body               b;
    lt_err                err;
    size_t                i, len;
    char                  name[128];
    t_mp                  m;
    int                   bin_keys, as_y;

    for (i = 0; i < 4; i++) {
        for (bin_keys = 0; bin_keys < 2; bin_keys++) {
            for (as_y = 0; as_y < 2; as_y++) {
                len = le_bytes(data, vals, 6, types[i].size,
                               types[i].integer);
                mp_begin(&m);
                msgpack_pack_map(&m.pk, 1 + as_y);
                mp_key(&m, "x", bin_keys);
                mp_numpy(&m, types[i].type, 2, shape, data, len, bin_keys);
                if (as_y) {
                    mp_key(&m, "y", bin_keys);
                    mp_numpy(&m, types[i].type, 2, shape, data, len,
                             bin_keys);
                }

                snprintf(name, sizeof(name), "numpy %s, %s keys%s",
                         types[i].type, bin_keys ? "bin" : "str",
                         as_y ? ", with y" : "");
                if (!ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == 0
                        && b.enc == LT_ENC_NUMPY && b.has_x
                        && same_shape(&b.x, 2, shape)
                        && same_floats(b.x.data, want, 6)
                        && b.has_y == as_y
                        && (!as_y || (same_floats(b.y.data, want, 6)
                                      && b.y_integer == types[i].integer)),
                        name))
                {
                    diag("%s", err.msg);
                }
                mp_end(&m);
            }
        }
    }

    /* "type" as bin, and data as str (old msgpack without bin type) */
    len = le_bytes(data, vals, 6, 4, 0);
    mp_begin(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_str(&m, "nd");
    msgpack_pack_true(&m.pk);
    mp_str(&m, "type");
    mp_bin(&m, "<f4", 3);
    mp_str(&m, "shape");
    mp_shape(&m, 2, shape);
    mp_str(&m, "data");
    msgpack_pack_str(&m.pk, len);
    msgpack_pack_str_body(&m.pk, data, len);
    ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == 0
       && same_floats(b.x.data, want, 6) && b.enc == LT_ENC_NUMPY,
       "numpy: bare tensor, type as bin, data as str");
    mp_end(&m);

    /* extreme values of each integer type */
    {
        static const double  ext[4] = { 2147483647.0, -2147483648.0, 0, -1 };
        static const float   fext[4] = { 2147483648.0f, -2147483648.0f,
                                         0, -1 };
        static const int64_t s4[1] = { 4 };

        len = le_bytes(data, ext, 4, 4, 1);
        mp_begin(&m);
        mp_numpy(&m, "<i4", 1, s4, data, len, 1);
        ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == 0
           && same_floats(b.x.data, fext, 4), "numpy <i4 extremes");
        mp_end(&m);
    }
}


static void
test_raw_dtypes(void)
{
    static const char *const  dtypes[] = {
        "float32", "float64", "int32", "int64"
    };
    static const int          sizes[] = { 4, 8, 4, 8 };
    static const double       vals[4] = { 1, -2, 3, 4 };
    static const float        want[4] = { 1, -2, 3, 4 };
    static const int64_t      shape[2] = { 2, 2 };
    uint8_t                   data[32];
    lt_body                   b;
    lt_err                    err;
    size_t                    len;
    char                      name[128];
    t_mp                      m;
    int                       i, bin_keys;

    for (i = 0; i < 4; i++) {
        for (bin_keys = 0; bin_keys < 2; bin_keys++) {
            len = le_bytes(data, vals, 4, sizes[i], i >= 2);
            mp_begin(&m);
            msgpack_pack_map(&m.pk, 2);
            mp_key(&m, "x", bin_keys);
            msgpack_pack_map(&m.pk, 3);
            mp_key(&m, "shape", bin_keys);
            mp_shape(&m, 2, shape);
            mp_key(&m, "dtype", bin_keys);
            mp_str(&m, dtypes[i]);
            mp_key(&m, "data", bin_keys);
            mp_bin(&m, data, len);
            mp_key(&m, "y", bin_keys);
            msgpack_pack_map(&m.pk, 3);
            mp_key(&m, "data", bin_keys);
            mp_bin(&m, data, len);
            mp_key(&m, "dtype", bin_keys);
            mp_str(&m, dtypes[i]);
            mp_key(&m, "shape", bin_keys);
            mp_shape(&m, 2, shape);

            snprintf(name, sizeof(name), "raw %s, %s keys", dtypes[i],
                     bin_keys ? "bin" : "str");
            if (!ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == 0
                    && b.enc == LT_ENC_RAW && same_shape(&b.x, 2, shape)
                    && same_floats(b.x.data, want, 4) && b.has_y
                    && same_floats(b.y.data, want, 4)
                    && b.y_integer == (i >= 2), name))
            {
                diag("%s", err.msg);
            }
            mp_end(&m);
        }
    }

    /* no dtype: float32; data as an array of numbers (flat or nested) */
    len = le_bytes(data, vals, 4, 4, 0);
    mp_begin(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "shape");
    mp_shape(&m, 2, shape);
    mp_str(&m, "data");
    mp_bin(&m, data, len);
    ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == 0
       && b.enc == LT_ENC_RAW && same_floats(b.x.data, want, 4),
       "raw: dtype defaults to float32, bare tensor map");
    mp_end(&m);

    mp_begin(&m);
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "y");
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "shape");
    mp_shape(&m, 2, shape);
    mp_str(&m, "data");
    msgpack_pack_array(&m.pk, 4);
    for (i = 0; i < 4; i++) {
        msgpack_pack_int(&m.pk, (int) vals[i]);
    }
    ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == -1,
       "raw: y without x fails");
    like(err.msg, "missing \"x\"", "raw: ... with missing \"x\"");
    mp_end(&m);

    mp_begin(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "x");
    mp_shape(&m, 2, shape);
    mp_str(&m, "y");
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "shape");
    mp_shape(&m, 2, shape);
    mp_str(&m, "data");
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_int(&m.pk, 1);
    msgpack_pack_int(&m.pk, -2);
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_int(&m.pk, 3);
    msgpack_pack_int(&m.pk, 4);
    ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == 0
       && same_shape(&b.y, 2, shape) && same_floats(b.y.data, want, 4)
       && b.y_integer, "raw: data as nested integers sets y_integer");
    mp_end(&m);
}


static void
test_nested(void)
{
    static const float  w1[3] = { 1, -2.5f, 3 };
    lt_body             b;
    lt_err              err;
    int64_t             shape[4];
    float               want[16];
    char                name[64];
    t_mp                m;
    int                 d, i, k, n;

    /* 1 to 4 dimensions of 2, with integers */
    for (d = 1; d <= 4; d++) {
        mp_begin(&m);
        msgpack_pack_map(&m.pk, 2);
        mp_str(&m, "x");
        n = 1 << d;
        /* element k of a [2]*d array, written depth first */
        for (k = 0; k < n; k++) {
            for (i = d - 1; i >= 0; i--) {
                if (k % (1 << (i + 1)) == 0) {
                    msgpack_pack_array(&m.pk, 2);
                }
            }
            msgpack_pack_int(&m.pk, k - 3);
            want[k] = (float) (k - 3);
        }
        mp_str(&m, "y");
        msgpack_pack_array(&m.pk, 1);
        msgpack_pack_int(&m.pk, 1);

        for (i = 0; i < d; i++) {
            shape[i] = 2;
        }
        snprintf(name, sizeof(name), "nested %d dims", d);
        if (!ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == 0
                && b.enc == LT_ENC_NESTED && same_shape(&b.x, d, shape)
                && same_floats(b.x.data, want, (size_t) n)
                && b.has_y && b.y_integer, name))
        {
            diag("%s", err.msg);
        }
        mp_end(&m);
    }

    /* float32, float64, uint64 and int64 elements; y with a float */
    mp_begin(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "y");
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_int(&m.pk, 1);
    msgpack_pack_float(&m.pk, 0.5f);
    mp_str(&m, "x");
    msgpack_pack_array(&m.pk, 5);
    msgpack_pack_float(&m.pk, 1.5f);
    msgpack_pack_double(&m.pk, -0.25);
    msgpack_pack_uint64(&m.pk, UINT64_MAX);
    msgpack_pack_int64(&m.pk, INT64_MIN);
    msgpack_pack_int8(&m.pk, -7);
    {
        static const float  wx[5] = {
            1.5f, -0.25f, 18446744073709551616.0f, -9223372036854775808.0f,
            -7.0f
        };

        ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == 0
           && b.x.ndim == 1 && b.x.shape[0] == 5
           && same_floats(b.x.data, wx, 5) && !b.y_integer,
           "nested: all number types, y with a float is not integer");
    }
    mp_end(&m);

    /* bare 1-d */
    mp_begin(&m);
    msgpack_pack_array(&m.pk, 3);
    msgpack_pack_int(&m.pk, 1);
    msgpack_pack_float(&m.pk, -2.5f);
    msgpack_pack_int(&m.pk, 3);
    ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == 0 && b.has_x && !b.has_y
       && b.x.ndim == 1 && same_floats(b.x.data, w1, 3),
       "nested: bare array is x");
    mp_end(&m);

    /* empty arrays */
    {
        static const uint8_t  e1[] = { 0x90 };
        static const uint8_t  e2[] = { 0x92, 0x90, 0x90 };

        ok(dec(e1, sizeof(e1), 0, &b, &err) == 0 && b.x.ndim == 1
           && b.x.shape[0] == 0 && b.x.data != NULL, "nested: [] is [0]");
        ok(dec(e2, sizeof(e2), 0, &b, &err) == 0 && b.x.ndim == 2
           && b.x.shape[0] == 2 && b.x.shape[1] == 0, "nested: [[],[]]");
    }

    /* unknown keys are skipped, whatever they hold */
    mp_begin(&m);
    msgpack_pack_map(&m.pk, 5);
    mp_str(&m, "kind");
    mp_str(&m, "predict");
    msgpack_pack_array(&m.pk, 2);           /* a container as a key */
    msgpack_pack_int(&m.pk, 1);
    msgpack_pack_map(&m.pk, 0);
    msgpack_pack_ext(&m.pk, 3, 7);          /* an ext as value */
    msgpack_pack_ext_body(&m.pk, "abc", 3);
    msgpack_pack_int(&m.pk, 5);
    msgpack_pack_nil(&m.pk);
    mp_str(&m, "x");
    msgpack_pack_array(&m.pk, 3);
    msgpack_pack_int(&m.pk, 1);
    msgpack_pack_float(&m.pk, -2.5f);
    msgpack_pack_int(&m.pk, 3);
    mp_str(&m, "shape");                    /* "shape" next to "x": ignored */
    msgpack_pack_nil(&m.pk);
    ok(dec(m.sb.data, m.sb.size, 0, &b, &err) == 0
       && same_floats(b.x.data, w1, 3), "unknown keys and values ignored");
    mp_end(&m);
}


/* ---- errors ------------------------------------------------------------------- */

/* The decode must fail with exactly this message. */
static void
expect_exact(const char *what, const void *body, size_t len, int json,
    const char *want)
{
    lt_body  b;
    lt_err   err;
    char     name[200];
    int      rc;

    rc = dec(body, len, json, &b, &err);
    snprintf(name, sizeof(name), "%s: %s", what, want);
    if (!ok(rc == -1 && strcmp(err.msg, want) == 0, name)) {
        diag("rc %d, message '%s'", rc, err.msg);
    }
}


static void
test_msgpack_errors(void)
{
    static const uint8_t  bomb1[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
    static const uint8_t  bomb2[] = { 0xdd, 0x01, 0x00, 0x00, 0x00 };
    static const uint8_t  bomb3[] = { 0x81, 0xa1, 'x', 0xc6, 0xff, 0xff,
                                      0xff, 0xff };
    static const uint8_t  bomb4[] = { 0xdf, 0xff, 0xff, 0xff, 0xff };
    static const uint8_t  bomb5[] = { 0xdb, 0x7f, 0xff, 0xff, 0xff };
    static const uint8_t  bomb6[] = { 0x81, 0xa1, 'x', 0xc9, 0xff, 0xff,
                                      0xff, 0xff, 0x01 };
    static const uint8_t  bomb7[] = { 0x81, 0xa1, 'x', 0xdc, 0xff, 0xff };
    static const uint8_t  bomb8[] = { 0xde, 0x00, 0x03, 0xa1, 'x', 0x90,
                                      0xa1, 'y' };
    static const uint8_t  reserved[] = { 0xc1 };
    static const uint8_t  trunc[] = { 0x92, 0x01 };
    static const uint8_t  trunc_f[] = { 0x91, 0xcb, 0x00, 0x00 };
    static const uint8_t  trailing[] = { 0x91, 0x01, 0x00 };
    static const uint8_t  scalar[] = { 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t  x_scalar[] = { 0x81, 0xa1, 'x', 0xca, 0x3f, 0x80,
                                         0, 0 };
    static const uint8_t  x_nil[] = { 0x81, 0xa1, 'x', 0xc0 };
    static const uint8_t  empty_map[] = { 0x80 };
    static const uint8_t  no_x[] = { 0x81, 0xa1, 'z', 0x91, 0x01 };
    static const uint8_t  dup_x[] = { 0x82, 0xa1, 'x', 0x91, 0x01, 0xc4,
                                      0x01, 'x', 0x91, 0x02 };
    static const uint8_t  ragged1[] = { 0x81, 0xa1, 'x', 0x92, 0x92, 0x01,
                                        0x02, 0x91, 0x03 };
    static const uint8_t  ragged2[] = { 0x81, 0xa1, 'x', 0x92, 0x92, 0x01,
                                        0x02, 0x03 };
    static const uint8_t  ragged3[] = { 0x92, 0x01, 0x91, 0x02 };
    static const uint8_t  ragged4[] = { 0x92, 0x91, 0x91, 0x01, 0x91, 0x92,
                                        0x01, 0x02 };
    static const uint8_t  not_num[] = { 0x91, 0x92, 0x01, 0xa1, 'a' };
    static const uint8_t  nil_el[] = { 0x81, 0xa1, 'x', 0x91, 0xc0 };
    static const uint8_t  five[] = { 0x91, 0x91, 0x91, 0x91, 0x91, 0x01 };
    static const uint8_t  five_e[] = { 0x91, 0x91, 0x91, 0x91, 0x90 };
    uint8_t               deep[64];
    t_mp                  m;
    size_t                i;
    uint8_t               data[16];

    expect_exact("empty body", "", 0, 0, "body is empty");
    expect_exact("dd ff ff ff ff", bomb1, sizeof(bomb1), 0,
                 "body is not valid MessagePack");
    ok(A.total == 0, "dd ff ff ff ff: nothing allocated");
    expect_exact("dd 01 00 00 00", bomb2, sizeof(bomb2), 0,
                 "body is not valid MessagePack");
    ok(A.total == 0, "dd 01 00 00 00: nothing allocated");
    expect_exact("bin32 of 4 GB in x", bomb3, sizeof(bomb3), 0,
                 "body is not valid MessagePack");
    expect_exact("map32 of 4G entries", bomb4, sizeof(bomb4), 0,
                 "body is not valid MessagePack");
    expect_exact("str32 of 2 GB", bomb5, sizeof(bomb5), 0,
                 "body is not valid MessagePack");
    expect_exact("ext32 of 4 GB", bomb6, sizeof(bomb6), 0,
                 "body is not valid MessagePack");
    expect_exact("array16 past the end", bomb7, sizeof(bomb7), 0,
                 "body is not valid MessagePack");
    expect_exact("map16 with too few entries", bomb8, sizeof(bomb8), 0,
                 "body is not valid MessagePack");
    expect_exact("reserved byte c1", reserved, sizeof(reserved), 0,
                 "body is not valid MessagePack");
    expect_exact("truncated array", trunc, sizeof(trunc), 0,
                 "body is not valid MessagePack");
    expect_exact("truncated float64", trunc_f, sizeof(trunc_f), 0,
                 "body is not valid MessagePack");
    expect_exact("trailing bytes", trailing, sizeof(trailing), 0,
                 "trailing bytes after the MessagePack body");

    /* 40 levels of 0x91, then 0: msgpack-c says NOMEM, we say depth */
    memset(deep, 0x91, 40);
    deep[40] = 0x00;
    expect_exact("40 levels of 0x91", deep, 41, 0,
                 "MessagePack nesting is deeper than 32 levels");
    memset(deep, 0x91, 33);
    deep[33] = 0x00;
    expect_exact("33 levels", deep, 34, 0,
                 "MessagePack nesting is deeper than 32 levels");
    memset(deep, 0x91, 32);
    deep[32] = 0x00;
    expect_exact("32 levels: valid, but too many dimensions", deep, 33, 0,
                 "tensor has 32 dimensions, at most 4 are supported");

    expect_exact("bare float", scalar, sizeof(scalar), 0,
                 "body must be a map with \"x\" or a tensor, not a float");
    expect_exact("x is a float", x_scalar, sizeof(x_scalar), 0,
                 "tensor \"x\" must be an array or a map, not a float");
    expect_exact("x is nil", x_nil, sizeof(x_nil), 0,
                 "tensor \"x\" must be an array or a map, not a nil");
    expect_exact("empty map", empty_map, sizeof(empty_map), 0,
                 "missing \"x\"");
    expect_exact("unknown keys only", no_x, sizeof(no_x), 0,
                 "missing \"x\"");
    expect_exact("duplicate x (str and bin)", dup_x, sizeof(dup_x), 0,
                 "duplicate key \"x\"");
    expect_exact("ragged at depth 1", ragged1, sizeof(ragged1), 0,
                 "tensor \"x\": ragged array at depth 1");
    expect_exact("array then number", ragged2, sizeof(ragged2), 0,
                 "tensor \"x\": ragged array at depth 1");
    expect_exact("number then array", ragged3, sizeof(ragged3), 0,
                 "tensor \"x\": ragged array at depth 1");
    expect_exact("ragged at depth 2", ragged4, sizeof(ragged4), 0,
                 "tensor \"x\": ragged array at depth 2");
    expect_exact("str element", not_num, sizeof(not_num), 0,
                 "tensor \"x\": element at depth 2 is a str, not a number");
    expect_exact("nil element", nil_el, sizeof(nil_el), 0,
                 "tensor \"x\": element at depth 1 is a nil, not a number");
    expect_exact("5 nested dims", five, sizeof(five), 0,
                 "tensor has 5 dimensions, at most 4 are supported");
    expect_exact("5 nested dims, empty", five_e, sizeof(five_e), 0,
                 "tensor has 5 dimensions, at most 4 are supported");

    /* numpy map errors */
    {
        static const int64_t  s22[2] = { 2, 2 };
        static const int64_t  s5[5] = { 1, 1, 1, 1, 1 };
        static const int64_t  big[1] = { 2000000 };
        static const int64_t  huge[3] = { 4294967296LL, 4294967296LL,
                                          4294967296LL };
        static const int64_t  zhuge[3] = { 0, 4294967296LL, 4294967296LL };
        static const int64_t  neg[2] = { 2, -1 };

        memset(data, 0, sizeof(data));

        mp_begin(&m);
        msgpack_pack_map(&m.pk, 1);
        mp_str(&m, "x");
        mp_numpy(&m, "<f4", 2, s22, data, 12, 1);
        expect_exact("short data", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": data has 12 bytes, shape [2, 2] of <f4 "
                     "needs 16");
        mp_end(&m);

        mp_begin(&m);
        msgpack_pack_map(&m.pk, 2);
        mp_str(&m, "x");
        mp_numpy(&m, "<f4", 2, s22, data, 16, 0);
        mp_str(&m, "y");
        mp_numpy(&m, "<f8", 2, s22, data, 16, 0);
        expect_exact("short data in y", m.sb.data, m.sb.size, 0,
                     "tensor \"y\": data has 16 bytes, shape [2, 2] of <f8 "
                     "needs 32");
        mp_end(&m);

        mp_begin(&m);
        mp_numpy(&m, "<f4", 2, s22, data, 16 + 0, 1);
        m.sb.size--;            /* drop one data byte, and fix the header */
        m.sb.data[m.sb.size - 16] = 15;
        expect_exact("bare: one byte short", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": data has 15 bytes, shape [2, 2] of <f4 "
                     "needs 16");
        mp_end(&m);

        mp_begin(&m);
        mp_numpy(&m, "<f4", 0, s5, data, 4, 1);
        expect_exact("numpy 0-d array", m.sb.data, m.sb.size, 0,
                     "tensor \"x\" has 0 dimensions, at least 1 is needed");
        mp_end(&m);

        mp_begin(&m);
        mp_numpy(&m, "<f4", 5, s5, data, 4, 1);
        expect_exact("numpy 5 dims", m.sb.data, m.sb.size, 0,
                     "tensor has 5 dimensions, at most 4 are supported");
        mp_end(&m);

        C.max_elements = 1000000;
        mp_begin(&m);
        mp_numpy(&m, "<f4", 1, big, data, 16, 1);
        expect_exact("2000000 elements", m.sb.data, m.sb.size, 0,
                     "tensor has 2000000 elements, learn_max_elements is "
                     "1000000");
        ok(A.total == 0, "2000000 elements: nothing allocated");
        mp_end(&m);

        mp_begin(&m);
        mp_numpy(&m, "<f4", 3, huge, data, 16, 1);
        expect_exact("2^96 elements", m.sb.data, m.sb.size, 0,
                     "tensor has more than 18446744073709551614 elements, "
                     "learn_max_elements is 1000000");
        mp_end(&m);

        mp_begin(&m);
        mp_numpy(&m, "<f4", 3, zhuge, data, 0, 1);
        expect_exact("[0, 2^32, 2^32]", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": shape [0, 4294967296, 4294967296] is too "
                     "large");
        mp_end(&m);

        C.max_elements = 3;
        {
            static const uint8_t  four[] = { 0x94, 1, 2, 3, 4 };
            static const uint8_t  three[] = { 0x93, 1, 2, 3 };
            lt_body               b;
            lt_err                err;

            expect_exact("nested over the limit", four, sizeof(four), 0,
                         "tensor has 4 elements, learn_max_elements is 3");
            ok(dec(three, sizeof(three), 0, &b, &err) == 0,
               "nested at the limit");
        }
        C.max_elements = 0;

        mp_begin(&m);
        mp_numpy(&m, "<f4", 3, huge, data, 16, 1);
        expect_exact("2^96 elements without a limit", m.sb.data, m.sb.size,
                     0, "tensor \"x\": shape [4294967296, 4294967296, "
                     "4294967296] is too large");
        mp_end(&m);

        mp_begin(&m);
        mp_numpy(&m, "<f4", 2, neg, data, 16, 1);
        expect_exact("negative dimension", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": \"shape\" must hold non-negative "
                     "integers");
        mp_end(&m);

        mp_begin(&m);
        mp_numpy(&m, "<f2", 2, s22, data, 8, 1);
        expect_exact("<f2", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": type \"<f2\" is not supported, use <f4, "
                     "<f8, <i4 or <i8");
        mp_end(&m);

        mp_begin(&m);
        mp_numpy(&m, "\"\\\x01", 2, s22, data, 8, 1);
        expect_exact("odd type string is sanitized", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": type \"???\" is not supported, use <f4, "
                     "<f8, <i4 or <i8");
        mp_end(&m);

        mp_begin(&m);
        msgpack_pack_map(&m.pk, 3);
        mp_str(&m, "dtype");
        mp_str(&m, "float16");
        mp_str(&m, "shape");
        mp_shape(&m, 2, s22);
        mp_str(&m, "data");
        mp_bin(&m, data, 8);
        expect_exact("dtype float16", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": dtype \"float16\" is not supported, use "
                     "float32, float64, int32 or int64");
        mp_end(&m);

        /* numpy scalar: nd false */
        mp_begin(&m);
        msgpack_pack_map(&m.pk, 3);
        mp_bin(&m, "nd", 2);
        msgpack_pack_false(&m.pk);
        mp_bin(&m, "type", 4);
        mp_str(&m, "<f4");
        mp_bin(&m, "data", 4);
        mp_bin(&m, data, 4);
        expect_exact("numpy scalar", m.sb.data, m.sb.size, 0,
                     "tensor \"x\" is a numpy scalar, not an array");
        mp_end(&m);

        mp_begin(&m);
        msgpack_pack_map(&m.pk, 3);
        mp_bin(&m, "nd", 2);
        msgpack_pack_true(&m.pk);
        mp_bin(&m, "type", 4);
        mp_str(&m, "<f4");
        mp_bin(&m, "data", 4);
        mp_bin(&m, data, 4);
        expect_exact("numpy without shape", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": missing \"shape\"");
        mp_end(&m);

        mp_begin(&m);
        msgpack_pack_map(&m.pk, 3);
        mp_bin(&m, "nd", 2);
        msgpack_pack_true(&m.pk);
        mp_bin(&m, "shape", 5);
        mp_shape(&m, 2, s22);
        mp_bin(&m, "data", 4);
        mp_bin(&m, data, 16);
        expect_exact("numpy without type", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": missing \"type\"");
        mp_end(&m);

        mp_begin(&m);
        msgpack_pack_map(&m.pk, 1);
        mp_str(&m, "shape");
        mp_shape(&m, 2, s22);
        expect_exact("raw without data", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": missing \"data\"");
        mp_end(&m);

        mp_begin(&m);
        msgpack_pack_map(&m.pk, 1);
        mp_str(&m, "x");
        msgpack_pack_map(&m.pk, 1);
        mp_str(&m, "kind");
        mp_str(&m, "");
        expect_exact("tensor map without shape or data", m.sb.data,
                     m.sb.size, 0,
                     "tensor \"x\" is a map without \"shape\" and \"data\"");
        mp_end(&m);

        mp_begin(&m);
        msgpack_pack_map(&m.pk, 2);
        mp_str(&m, "shape");
        mp_str(&m, "2x2");
        mp_str(&m, "data");
        mp_bin(&m, data, 16);
        expect_exact("shape is a str", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": \"shape\" must be an array, not a str");
        mp_end(&m);

        mp_begin(&m);
        msgpack_pack_map(&m.pk, 2);
        mp_str(&m, "shape");
        mp_shape(&m, 2, s22);
        mp_str(&m, "data");
        msgpack_pack_double(&m.pk, 1.0);
        expect_exact("data is a float", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": \"data\" must be bin or an array, not a "
                     "float");
        mp_end(&m);

        mp_begin(&m);
        msgpack_pack_map(&m.pk, 2);
        mp_str(&m, "shape");
        mp_shape(&m, 2, s22);
        mp_str(&m, "data");
        msgpack_pack_array(&m.pk, 3);
        for (i = 0; i < 3; i++) {
            msgpack_pack_int(&m.pk, 1);
        }
        expect_exact("data array of the wrong size", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": data has 3 numbers, shape [2, 2] needs 4");
        mp_end(&m);

        mp_begin(&m);
        msgpack_pack_map(&m.pk, 3);
        mp_str(&m, "shape");
        mp_shape(&m, 2, s22);
        mp_str(&m, "data");
        mp_bin(&m, data, 16);
        mp_bin(&m, "shape", 5);
        mp_shape(&m, 2, s22);
        expect_exact("duplicate shape", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": duplicate key \"shape\"");
        mp_end(&m);

        mp_begin(&m);
        msgpack_pack_map(&m.pk, 3);
        mp_bin(&m, "nd", 2);
        msgpack_pack_int(&m.pk, 1);
        mp_bin(&m, "shape", 5);
        mp_shape(&m, 2, s22);
        mp_bin(&m, "data", 4);
        mp_bin(&m, data, 16);
        expect_exact("nd is not a boolean", m.sb.data, m.sb.size, 0,
                     "tensor \"x\": \"nd\" must be true");
        mp_end(&m);

        mp_begin(&m);
        msgpack_pack_map(&m.pk, 4);
        mp_bin(&m, "nd", 2);
        msgpack_pack_true(&m.pk);
        mp_bin(&m, "type", 4);
        msgpack_pack_array(&m.pk, 0);
        mp_bin(&m, "shape", 5);
        mp_shape(&m, 2, s22);
        mp_bin(&m, "data", 4);
        mp_bin(&m, data, 16);
        expect_exact("type is an array (structured dtype)", m.sb.data,
                     m.sb.size, 0,
                     "tensor \"x\": \"type\" must be a string, not a array");
        mp_end(&m);
    }
}


/* ---- JSON ------------------------------------------------------------------------- */

static void
test_json(void)
{
    static const float  w4[4] = { 0, 1, 1, 0 };
    static const float  wf[4] = { 0.5f, -1, 1e-3f, 2 };
    lt_body             b;
    lt_err              err;
    const char         *s;
    char                deep[128];
    int                 i;

    s = "{\"x\": [[0, 1], [1, 0]], \"y\": [1, 0]}\n";
    ok(dec(s, strlen(s), 1, &b, &err) == 0 && b.enc == LT_ENC_JSON
       && b.x.ndim == 2 && b.x.shape[0] == 2 && b.x.shape[1] == 2
       && same_floats(b.x.data, w4, 4) && b.has_y && b.y.ndim == 1
       && b.y_integer, "json: x and integer y");

    s = "{\"x\": [[0.5, -1], [0.001, 2]], \"y\": [0.5, 1]}";
    ok(dec(s, strlen(s), 1, &b, &err) == 0 && same_floats(b.x.data, wf, 4)
       && !b.y_integer, "json: float y is not integer");

    s = "{\"kind\": \"predict\", \"x\": {\"shape\": [2, 2], "
        "\"data\": [0, 1, 1, 0]}}";
    ok(dec(s, strlen(s), 1, &b, &err) == 0 && b.x.ndim == 2
       && same_floats(b.x.data, w4, 4), "json: shape and flat data");

    s = "{\"shape\": [4], \"data\": [[0, 1], [1, 0]]}";
    ok(dec(s, strlen(s), 1, &b, &err) == 0 && b.x.ndim == 1
       && b.x.shape[0] == 4 && same_floats(b.x.data, w4, 4),
       "json: bare tensor object, nested data reshaped");

    s = "{\"x\": [1], \"y\": {\"shape\": [2], \"data\": [1, 0], "
        "\"dtype\": \"float32\"}}";
    ok(dec(s, strlen(s), 1, &b, &err) == 0 && !b.y_integer,
       "json: dtype float32 overrides integral values");

    s = "{\"x\": [1], \"y\": {\"shape\": [2], \"data\": [1, 0], "
        "\"dtype\": \"int64\"}}";
    ok(dec(s, strlen(s), 1, &b, &err) == 0 && b.y_integer,
       "json: dtype int64 sets y_integer");

    s = "  [[[[1]], [[2]]]]  ";
    ok(dec(s, strlen(s), 1, &b, &err) == 0 && b.x.ndim == 4
       && b.x.shape[0] == 1 && b.x.shape[1] == 2 && b.x.shape[2] == 1
       && b.x.shape[3] == 1, "json: bare 4-d array, whitespace around");

    s = "[]";
    ok(dec(s, strlen(s), 1, &b, &err) == 0 && b.x.ndim == 1
       && b.x.shape[0] == 0, "json: []");

    expect_exact("json: empty", "", 0, 1, "body is empty");
    s = "{\"x\": [1, 2]";
    expect_exact("json: truncated", s, strlen(s), 1,
                 "body is not valid JSON");
    s = "{\"x\": [1, 2]} x";
    expect_exact("json: trailing", s, strlen(s), 1,
                 "trailing bytes after the JSON body");
    s = "[1] [2]";
    expect_exact("json: two values", s, strlen(s), 1,
                 "trailing bytes after the JSON body");
    /* the length bounds the parse: no reading past it */
    s = "[1, 2]";
    expect_exact("json: cut by length", s, 4, 1, "body is not valid JSON");

    for (i = 0; i < 40; i++) {
        deep[i] = '[';
    }
    deep[40] = '1';
    for (i = 0; i < 40; i++) {
        deep[41 + i] = ']';
    }
    expect_exact("json: 40 levels", deep, 81, 1,
                 "JSON nesting is deeper than 32 levels");
    s = "{\"x\": \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[\"}";
    expect_exact("json: brackets in strings do not count", s, strlen(s), 1,
                 "tensor \"x\" must be an array or an object, not a string");

    s = "{\"x\": [[1, 2], [3]]}";
    expect_exact("json: ragged", s, strlen(s), 1,
                 "tensor \"x\": ragged array at depth 1");
    s = "{\"x\": [[1, 2], [3, 4, 5]]}";
    expect_exact("json: ragged, longer", s, strlen(s), 1,
                 "tensor \"x\": ragged array at depth 1");
    s = "{\"x\": [1, [2]]}";
    expect_exact("json: number then array", s, strlen(s), 1,
                 "tensor \"x\": ragged array at depth 1");
    s = "{\"x\": [[[[[1]]]]]}";
    expect_exact("json: 5 dims", s, strlen(s), 1,
                 "tensor has 5 dimensions, at most 4 are supported");
    s = "{\"x\": {\"shape\": [1, 1, 1, 1, 1], \"data\": [1]}}";
    expect_exact("json: shape with 5 dims", s, strlen(s), 1,
                 "tensor has 5 dimensions, at most 4 are supported");
    s = "{\"x\": [1, null]}";
    expect_exact("json: null element", s, strlen(s), 1,
                 "tensor \"x\": element at depth 1 is a null, not a number");
    s = "{\"x\": [1], \"y\": [\"a\"]}";
    expect_exact("json: string element in y", s, strlen(s), 1,
                 "tensor \"y\": element at depth 1 is a string, not a "
                 "number");
    s = "{\"y\": [1]}";
    expect_exact("json: missing x", s, strlen(s), 1, "missing \"x\"");
    s = "{\"x\": [1], \"x\": [2]}";
    expect_exact("json: duplicate x", s, strlen(s), 1,
                 "duplicate key \"x\"");
    s = "{\"x\": 1}";
    expect_exact("json: x is a number", s, strlen(s), 1,
                 "tensor \"x\" must be an array or an object, not a number");
    s = "1";
    expect_exact("json: bare number", s, strlen(s), 1,
                 "body must be an object with \"x\" or a tensor, not a "
                 "number");
    s = "{\"x\": {\"shape\": [2, 2], \"data\": [1, 2, 3]}}";
    expect_exact("json: data of the wrong size", s, strlen(s), 1,
                 "tensor \"x\": data has 3 numbers, shape [2, 2] needs 4");
    s = "{\"x\": {\"shape\": [2, -2], \"data\": []}}";
    expect_exact("json: negative shape", s, strlen(s), 1,
                 "tensor \"x\": \"shape\" must hold non-negative integers");
    s = "{\"x\": {\"shape\": [1.5], \"data\": [1]}}";
    expect_exact("json: fractional shape", s, strlen(s), 1,
                 "tensor \"x\": \"shape\" must hold non-negative integers");
    s = "{\"x\": {\"shape\": [1e300], \"data\": [1]}}";
    expect_exact("json: huge shape", s, strlen(s), 1,
                 "tensor \"x\": \"shape\" must hold non-negative integers");
    s = "{\"x\": {\"shape\": [0, 9007199254740992, 9007199254740992], "
        "\"data\": []}}";
    expect_exact("json: zero-size shape too large", s, strlen(s), 1,
                 "tensor \"x\": shape [0, 9007199254740992, "
                 "9007199254740992] is too large");
    s = "{\"x\": {\"shape\": [], \"data\": [1]}}";
    expect_exact("json: 0-d shape", s, strlen(s), 1,
                 "tensor \"x\" has 0 dimensions, at least 1 is needed");
    s = "{\"x\": {\"shape\": [\x10], \"data\": [1]}}";
    expect_exact("json: control byte as whitespace", s, strlen(s), 1,
                 "body is not valid JSON");
    expect_exact("json: raw NUL in a key", "{\"a\0b\": [1]}", 12, 1,
                 "body is not valid JSON");
    s = "\t[1]\r\n";
    ok(dec(s, strlen(s), 1, &b, &err) == 0, "json: tab, CR, LF are "
       "whitespace");
    s = "{\"x\": {\"shape\": [2]}}";
    expect_exact("json: missing data", s, strlen(s), 1,
                 "tensor \"x\": missing \"data\"");
    s = "{\"x\": {\"data\": [2]}}";
    expect_exact("json: missing shape", s, strlen(s), 1,
                 "tensor \"x\": missing \"shape\"");
    s = "{\"x\": {\"shape\": [1], \"data\": [2], \"dtype\": \"bfloat16\"}}";
    expect_exact("json: bad dtype", s, strlen(s), 1,
                 "tensor \"x\": dtype \"bfloat16\" is not supported, use "
                 "float32, float64, int32 or int64");
    s = "{\"x\": {\"shape\": [1], \"data\": 2}}";
    expect_exact("json: data not an array", s, strlen(s), 1,
                 "tensor \"x\": \"data\" must be an array, not a number");

    C.max_elements = 1000000;
    {
        /* 2000000 declared elements with 1 number: the limit comes first */
        s = "{\"x\": {\"shape\": [2000000], \"data\": [1]}}";
        expect_exact("json: over max_elements", s, strlen(s), 1,
                     "tensor has 2000000 elements, learn_max_elements is "
                     "1000000");
    }
    C.max_elements = 2;
    s = "[1, 2, 3]";
    expect_exact("json: nested over max_elements", s, strlen(s), 1,
                 "tensor has 3 elements, learn_max_elements is 2");
    C.max_elements = 0;
}


/* ---- named tensors ------------------------------------------------------------- */

static void
test_named_errors(void)
{
    static const uint8_t  not_map[] = { 0x91, 0x01 };
    static const uint8_t  int_key[] = { 0x81, 0x01, 0x91, 0x01 };
    static const uint8_t  nul_key[] = { 0x81, 0xa2, 'a', 0x00, 0x91, 0x01 };
    static const uint8_t  bad_val[] = { 0x81, 0xa2, 'w', '"', 0xc0 };
    static const uint8_t  empty[] = { 0x80 };
    static const uint8_t  trailing[] = { 0x80, 0x80 };
    static const uint8_t  three[] = { 0x83, 0xa1, 'a', 0x91, 0x01,
                                       0xa1, 'b', 0x91, 0x02,
                                       0xa1, 'c', 0x91, 0x03 };
    lt_tensor            *ts;
    lt_err                err;
    char                **names;
    const char           *s;
    int                   n;

    ok(dec_named(not_map, sizeof(not_map), 0, &n, &names, &ts, &err) == -1,
       "named: array fails");
    is_str(err.msg, "weights must be a map of name to tensor, not a array",
           "named: array message");
    ok(dec_named(int_key, sizeof(int_key), 0, &n, &names, &ts, &err) == -1
       && n == 0 && names == NULL && ts == NULL,
       "named: integer key fails, outputs cleared");
    is_str(err.msg, "weight names must be strings, not a integer",
           "named: integer key message");
    ok(dec_named(nul_key, sizeof(nul_key), 0, &n, &names, &ts, &err) == -1,
       "named: NUL in a name fails");
    is_str(err.msg, "weight name \"a?\" contains a NUL byte",
           "named: NUL message");
    ok(dec_named(bad_val, sizeof(bad_val), 0, &n, &names, &ts, &err) == -1,
       "named: nil tensor fails");
    is_str(err.msg, "tensor \"w?\" must be an array or a map, not a nil",
           "named: message names the weight");
    ok(dec_named(empty, sizeof(empty), 0, &n, &names, &ts, &err) == 0
       && n == 0, "named: empty map");
    ok(dec_named(trailing, sizeof(trailing), 0, &n, &names, &ts, &err) == -1,
       "named: trailing bytes fail");
    is_str(err.msg, "trailing bytes after the MessagePack body",
           "named: trailing message");
    ok(dec_named("", 0, 0, &n, &names, &ts, &err) == -1,
       "named: empty body fails");

    s = "[1]";
    ok(dec_named(s, strlen(s), 1, &n, &names, &ts, &err) == -1,
       "named json: array fails");
    is_str(err.msg, "weights must be an object of name to tensor, not a "
           "array", "named json: message");
    s = "{\"0.weight\": [[1, 2], [3]]}";
    ok(dec_named(s, strlen(s), 1, &n, &names, &ts, &err) == -1,
       "named json: ragged fails");
    is_str(err.msg, "tensor \"0.weight\": ragged array at depth 1",
           "named json: message names the weight");
    s = "{\"a\": [1], \"b\": {\"shape\": [2], \"data\": [1, 2]}} ";
    ok(dec_named(s, strlen(s), 1, &n, &names, &ts, &err) == 0 && n == 2
       && strcmp(names[0], "a") == 0 && strcmp(names[1], "b") == 0
       && ts[1].shape[0] == 2 && ts[1].data[1] == 2.0f,
       "named json: both forms");
    s = "{\"a\": [1]";
    ok(dec_named(s, strlen(s), 1, &n, &names, &ts, &err) == -1,
       "named json: invalid fails");

    /* with the cap set to the model's parameter count, a map with more
     * entries fails before the name and tensor arrays are allocated */
    C.max_named = 2;
    ok(dec_named(three, sizeof(three), 0, &n, &names, &ts, &err) == -1
       && A.total == 0, "named: more entries than max_named fails unallocated");
    is_str(err.msg, "the body names 3 tensors, the model has 2 parameters",
           "named: max_named message");
    s = "{\"a\": [1], \"b\": [2], \"c\": [3]}";
    ok(dec_named(s, strlen(s), 1, &n, &names, &ts, &err) == -1,
       "named json: more entries than max_named fails");
    s = "{\"a\": [1], \"b\": [2]}";
    ok(dec_named(s, strlen(s), 1, &n, &names, &ts, &err) == 0 && n == 2,
       "named json: max_named entries pass");
    C.max_named = 0;
}


/* ---- encoding -------------------------------------------------------------------- */

static void
make_tensor(lt_tensor *t, float *data, int ndim, const int64_t *shape)
{
    int64_t  i, n;

    lt_tensor_view(t, data, ndim, shape);
    n = lt_tensor_numel(t);
    for (i = 0; i < n; i++) {
        data[i] = (float) (i % 7) * 0.37f - 1.1f + (float) i * 1e-3f;
    }
}


static int
same_tensor(const lt_tensor *a, const lt_tensor *b)
{
    return same_shape(a, b->ndim, b->shape)
           && same_floats(a->data, b->data, (size_t) lt_tensor_numel(b));
}


static void
test_round_trips(void)
{
    static const int64_t  shapes[][4] = {
        { 3 }, { 2, 3 }, { 2, 1, 3 }, { 1, 2, 2, 2 }, { 5, 0 }, { 1 }
    };
    static const int      ndims[] = { 1, 2, 3, 4, 2, 1 };
    static const char    *encs[] = { "numpy", "raw", "nested", "json" };
    lt_tensor             t, ts[3];
    lt_body               b;
    uint8_t              *out;
    lt_err                err;
    size_t                len, i;
    float                 data[64], d2[3][16];
    char                  name[128];
    const char           *names[3] = { "0.weight", "0.bias",
                                       "we\"ird\\name\n" };
    char                **rnames;
    lt_tensor            *rts;
    int                   e, ok_all, n, k;

    for (i = 0; i < sizeof(ndims) / sizeof(ndims[0]); i++) {
        make_tensor(&t, data, ndims[i], shapes[i]);

        for (e = LT_ENC_NUMPY; e <= LT_ENC_JSON; e++) {
            t_reset();
            snprintf(name, sizeof(name), "round trip %s, %d dims, shape[0] "
                     "%lld", encs[e], ndims[i], (long long) shapes[i][0]);

            if (lt_codec_encode_tensor(&C, "x", &t, (lt_encoding) e, &out,
                                       &len, &err) != 0)
            {
                fail(name);
                diag("encode: %s", err.msg);
                continue;
            }

            /* decode from a private copy: dec() frees the encoder's buffer */
            {
                uint8_t  *copy = malloc(len);
                int       rc;

                memcpy(copy, out, len);
                rc = dec(copy, len, e == LT_ENC_JSON, &b, &err);
                ok_all = rc == 0 && b.has_x && !b.has_y
                         && (int) b.enc == e;
                /* nested forms cannot carry the shape of an empty tensor */
                if (lt_tensor_numel(&t) > 0 || e < LT_ENC_NESTED) {
                    ok_all = ok_all && same_tensor(&b.x, &t);
                }
                if (!ok(ok_all, name)) {
                    diag("%s", err.msg);
                }
                free(copy);
            }
        }
    }

    /* named: three tensors, every encoding */
    {
        static const int64_t  s0[2] = { 3, 2 }, s1[1] = { 3 }, s2[2] = { 1, 1 };

        make_tensor(&ts[0], d2[0], 2, s0);
        make_tensor(&ts[1], d2[1], 1, s1);
        make_tensor(&ts[2], d2[2], 2, s2);
    }

    for (e = LT_ENC_NUMPY; e <= LT_ENC_JSON; e++) {
        uint8_t  *copy;

        t_reset();
        snprintf(name, sizeof(name), "named round trip %s", encs[e]);
        if (lt_codec_encode_named(&C, 3, names, ts, (lt_encoding) e, &out,
                                  &len, &err) != 0)
        {
            fail(name);
            diag("%s", err.msg);
            continue;
        }

        copy = malloc(len);
        memcpy(copy, out, len);
        ok_all = dec_named(copy, len, e == LT_ENC_JSON, &n, &rnames, &rts,
                           &err) == 0 && n == 3;
        for (k = 0; ok_all && k < 3; k++) {
            ok_all = strcmp(rnames[k], names[k]) == 0
                     && same_tensor(&rts[k], &ts[k]);
        }
        if (!ok(ok_all, name)) {
            diag("%s", err.msg);
        }
        free(copy);
    }

    t_reset();
    ok(lt_codec_encode_named(&C, 0, NULL, NULL, LT_ENC_NUMPY, &out, &len,
                             &err) == 0 && len == 1 && out[0] == 0x80,
       "named: no weights is an empty map");
}



/*
 * lt_json_float writes most floats without printf: it must write what
 * "%.9g" writes, to the byte, for every float.  Every 1024th bit pattern
 * (both signs, all exponents) and the neighbours of the places where the
 * form or the rounding changes.
 */
static void
test_json_float_vs_printf(void)
{
    static const double  edges[] = {
        1e-4, 1e-3, 0.1, 1, 10, 1e8, 999999999.5, 1e9, 0.5, 0.25,
        0.000099999999, 99999999.5, 9.9999999e8, 0.1234567895, 123456789
    };

    char      got[40], want[40];
    float     f;
    uint32_t  bits, bad, n;
    size_t    i;
    int       j, glen, wlen;

    bad = 0;
    n = 0;

    for (bits = 0; bits < 0xffffffffu - 1024; bits += 1024 + (bits & 7)) {
        memcpy(&f, &bits, sizeof(f));
        glen = lt_json_float(got, sizeof(got), f);
        if (isnan(f) || isinf(f)) {
            continue;
        }
        wlen = snprintf(want, sizeof(want), "%.9g", (double) f);
        n++;
        if (glen != wlen || strcmp(got, want) != 0) {
            if (bad++ < 5) {
                diag("lt_json_float(%a) = \"%s\", printf: \"%s\"",
                     (double) f, got, want);
            }
        }
    }

    for (i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        f = (float) edges[i];
        for (j = -64; j <= 64; j++) {
            float  g = f, h;

            memcpy(&bits, &g, sizeof(bits));
            bits += (uint32_t) j;
            memcpy(&h, &bits, sizeof(h));
            for (int s = 0; s < 2; s++) {
                double  v = s ? -(double) h : (double) h;

                glen = lt_json_float(got, sizeof(got), v);
                wlen = snprintf(want, sizeof(want), "%.9g", v);
                n++;
                if (glen != wlen || strcmp(got, want) != 0) {
                    if (bad++ < 5) {
                        diag("lt_json_float(%a) = \"%s\", printf: \"%s\"",
                             v, got, want);
                    }
                }
            }
        }
    }

    /* a double that is no float still goes through printf */
    lt_json_float(got, sizeof(got), 0.1);
    is_str(got, "0.1", "lt_json_float of the double 0.1");
    lt_json_float(got, sizeof(got), 1.0 / 3);
    is_str(got, "0.333333333", "lt_json_float of the double 1/3");

    diag("lt_json_float: %u floats compared with printf, %u differ", n, bad);
    ok(bad == 0 && n > 4000000, "lt_json_float writes what %.9g writes");
}


static void
test_encode_exact(void)
{
    static const int64_t  s23[2] = { 2, 3 };
    lt_tensor             t;
    uint8_t              *out;
    lt_err                err;
    size_t                len;
    float                 d[6];
    char                  buf[64];

    memcpy(d, vec_reply_numpy_y, sizeof(d));
    lt_tensor_view(&t, d, 2, s23);

    t_reset();
    ok(lt_codec_encode_tensor(&C, "y", &t, LT_ENC_NUMPY, &out, &len, &err)
       == 0 && len == sizeof(vec_reply_numpy)
       && memcmp(out, vec_reply_numpy, len) == 0,
       "numpy reply is byte for byte msgpack_numpy.packb({'y': a})");
    ok(A.total == len, "numpy reply: one allocation of the exact size");

    t_reset();
    ok(lt_codec_encode_tensor(&C, "y", &t, LT_ENC_JSON, &out, &len, &err)
       == 0 && len == strlen("{\"y\":[[0.5,-1,2.25],[3,4.5,-6]]}")
       && memcmp(out, "{\"y\":[[0.5,-1,2.25],[3,4.5,-6]]}", len) == 0,
       "json reply text");

    d[1] = NAN;
    d[2] = INFINITY;
    d[3] = 0.1f;
    t_reset();
    ok(lt_codec_encode_tensor(&C, "y", &t, LT_ENC_JSON, &out, &len, &err)
       == 0 && len == strlen("{\"y\":[[0.5,null,null],[0.100000001,4.5,-6]]}")
       && memcmp(out, "{\"y\":[[0.5,null,null],[0.100000001,4.5,-6]]}",
                 len) == 0, "json reply: NaN and Inf as null, %.9g");

    t_reset();
    ok(lt_codec_encode_tensor(&C, NULL, &t, LT_ENC_NESTED, &out, &len, &err)
       == 0 && out[0] == 0x92 && out[1] == 0x93 && out[2] == 0xca,
       "nested reply without a key: bare arrays of float32");

    lt_json_float(buf, sizeof(buf), 1e10);
    is_str(buf, "1e+10", "lt_json_float 1e10");
    lt_json_float(buf, sizeof(buf), -NAN);
    is_str(buf, "null", "lt_json_float NaN");
    lt_json_float(buf, sizeof(buf), -INFINITY);
    is_str(buf, "null", "lt_json_float -Inf");
    is_int(lt_json_float(buf, sizeof(buf), 0.25), 4, "lt_json_float length");
    test_json_float_vs_printf();

    /* train replies */
    t_reset();
    ok(lt_codec_encode_train(&C, 0.25, 7, 1, &out, &len, &err) == 0
       && len == strlen("{\"loss\":0.25,\"step\":7}")
       && memcmp(out, "{\"loss\":0.25,\"step\":7}", len) == 0,
       "train reply json");
    t_reset();
    ok(lt_codec_encode_train(&C, NAN, 1, 1, &out, &len, &err) == 0
       && len == strlen("{\"loss\":null,\"step\":1}")
       && memcmp(out, "{\"loss\":null,\"step\":1}", len) == 0,
       "train reply json, NaN loss");

    t_reset();
    if (lt_codec_encode_train(&C, 0.125, 123456789012LL, 0, &out, &len, &err)
        == 0)
    {
        msgpack_unpacked  u;
        size_t            off = 0;
        msgpack_object   *o;

        msgpack_unpacked_init(&u);
        ok(msgpack_unpack_next(&u, (const char *) out, len, &off)
           == MSGPACK_UNPACK_SUCCESS && off == len
           && u.data.type == MSGPACK_OBJECT_MAP && u.data.via.map.size == 2,
           "train reply msgpack: a map of 2");
        o = &u.data;
        ok(o->type == MSGPACK_OBJECT_MAP
           && o->via.map.ptr[0].key.type == MSGPACK_OBJECT_STR
           && o->via.map.ptr[0].key.via.str.size == 4
           && memcmp(o->via.map.ptr[0].key.via.str.ptr, "loss", 4) == 0
           && o->via.map.ptr[0].val.type == MSGPACK_OBJECT_FLOAT64
           && o->via.map.ptr[0].val.via.f64 == 0.125
           && o->via.map.ptr[1].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER
           && o->via.map.ptr[1].val.via.u64 == 123456789012ULL,
           "train reply msgpack: loss float64, step int");
        msgpack_unpacked_destroy(&u);
    } else {
        fail("train reply msgpack");
    }

    /* tensors that cannot be encoded */
    {
        static const int64_t  s5[5] = { 1, 1, 1, 1, 1 };
        static const int64_t  sn[2] = { 2, -1 };
        lt_tensor             bad;

        memset(&bad, 0, sizeof(bad));
        bad.ndim = 5;
        memcpy(bad.shape, s5, sizeof(bad.shape));
        bad.data = d;
        ok(lt_codec_encode_tensor(&C, "y", &bad, LT_ENC_NUMPY, &out, &len,
                                  &err) == -1 && out == NULL,
           "encode: 5 dims refused");
        lt_tensor_view(&bad, d, 2, sn);
        ok(lt_codec_encode_tensor(&C, "y", &bad, LT_ENC_JSON, &out, &len,
                                  &err) == -1, "encode: negative dim refused");
        lt_tensor_view(&bad, NULL, 2, s23);
        ok(lt_codec_encode_tensor(&C, "y", &bad, LT_ENC_RAW, &out, &len,
                                  &err) == -1, "encode: no data refused");
        lt_tensor_view(&bad, d, 2, s23);
        ok(lt_codec_encode_tensor(&C, "y", &bad, (lt_encoding) 9, &out, &len,
                                  &err) == -1, "encode: unknown encoding");
    }
}


/* ---- allocation failures --------------------------------------------------------- */

static void
test_alloc_failures(void)
{
    static const int64_t  s23[2] = { 2, 3 };
    const char           *js;
    lt_tensor             t, *ts;
    lt_body               b;
    uint8_t              *out;
    lt_err                err;
    size_t                len;
    float                 d[6];
    char                **names;
    long                  k;
    int                   n, fails;

    make_tensor(&t, d, 2, s23);
    fails = 0;

    /* each allocation of each call fails once in turn: a clean error */
    for (k = 0; k < 4; k++) {
        t_reset();
        A.fail_at = k;
        if (lt_codec_decode_msgpack(&C, vec_numpy_train_xor,
                                    sizeof(vec_numpy_train_xor), &b, &err)
            == 0)
        {
            if (k < 2) {
                fails++;
            }
        } else if (strstr(err.msg, "out of memory") == NULL) {
            fails++;
        }

        t_reset();
        A.fail_at = k;
        if (lt_codec_decode_named(&C, vec_weights, sizeof(vec_weights), 0,
                                  &n, &names, &ts, &err) == 0)
        {
            fails++;
        } else if (strstr(err.msg, "out of memory") == NULL
                   || n != 0 || names != NULL)
        {
            fails++;
        }

        js = "{\"x\": [[1, 2]], \"y\": [1]}";
        t_reset();
        A.fail_at = k;
        if (lt_codec_decode_json(&C, (const uint8_t *) js, strlen(js), &b,
                                 &err) == 0)
        {
            if (k < 2) {
                fails++;
            }
        } else if (strstr(err.msg, "out of memory") == NULL) {
            fails++;
        }
    }

    t_reset();
    A.fail_at = 0;
    if (lt_codec_encode_tensor(&C, "y", &t, LT_ENC_NUMPY, &out, &len, &err)
        != -1 || out != NULL || strstr(err.msg, "out of memory") == NULL)
    {
        fails++;
    }

    t_reset();
    A.fail_at = 0;
    if (lt_codec_encode_train(&C, 1.0, 1, 0, &out, &len, &err) != -1) {
        fails++;
    }

    t_reset();
    is_int(fails, 0, "allocation failures give \"out of memory\" errors");
}


/* ---- Python reads our replies ---------------------------------------------------- */

static int  py_ok = -1;


static void
python_check(const char *what, const uint8_t *body, size_t len, int json,
    const char *want)
{
    char    path[] = "/tmp/lt_codec_XXXXXX";
    char    cmd[256], line[4096], name[160];
    FILE   *f;
    int     fd, rc;
    size_t  n;

    snprintf(name, sizeof(name), "python reads %s", what);

    if (py_ok == 0) {
        snprintf(name, sizeof(name), "python reads %s # SKIP no "
                 "/usr/bin/python3 with msgpack_numpy", what);
        pass(name);
        return;
    }

    fd = mkstemp(path);
    if (fd < 0 || write(fd, body, len) != (ssize_t) len) {
        fail(name);
        return;
    }
    close(fd);

    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 "
             "t/unit/fixtures/check_reply.py %s%s 2>&1", path,
             json ? " json" : "");
    line[0] = '\0';
    f = (access("/usr/bin/python3", X_OK) == 0
         && access("t/unit/fixtures/check_reply.py", R_OK) == 0)
        ? popen(cmd, "r") : NULL;
    if (f != NULL) {
        n = fread(line, 1, sizeof(line) - 1, f);
        line[n] = '\0';
        rc = pclose(f);
    } else {
        rc = 2 << 8;
    }
    unlink(path);

    n = strlen(line);
    if (n > 0 && line[n - 1] == '\n') {
        line[n - 1] = '\0';
    }

    if (f == NULL || (rc >> 8) == 2) {
        py_ok = 0;
        snprintf(name, sizeof(name), "python reads %s # SKIP no "
                 "/usr/bin/python3 with msgpack_numpy", what);
        pass(name);
        return;
    }

    py_ok = 1;
    is_str(line, want, name);
}


static void
test_python_reads(void)
{
    static const int64_t  s23[2] = { 2, 3 }, s2[1] = { 2 };
    static const float    v[6] = { 0.5f, -1, 2.25f, 3, 4.5f, -6 };
    const char           *names[2] = { "0.weight", "0.bias" };
    lt_tensor             t, ts[2];
    uint8_t              *out;
    lt_err                err;
    size_t                len;
    float                 d[6];

    memcpy(d, v, sizeof(d));
    lt_tensor_view(&t, d, 2, s23);
    lt_tensor_view(&ts[0], d, 2, s23);
    lt_tensor_view(&ts[1], d, 1, s2);

    t_reset();
    lt_codec_encode_tensor(&C, "y", &t, LT_ENC_NUMPY, &out, &len, &err);
    python_check("a numpy reply", out, len, 0,
                 "{y=ndarray<float32>(2, 3)[0.5,-1.0,2.25,3.0,4.5,-6.0]}");

    t_reset();
    lt_codec_encode_tensor(&C, "y", &t, LT_ENC_RAW, &out, &len, &err);
    python_check("a raw reply", out, len, 0,
                 "{y={data=bytes(24),dtype=str('float32'),shape=[int(2),"
                 "int(3)]}}");

    t_reset();
    lt_codec_encode_tensor(&C, "y", &t, LT_ENC_NESTED, &out, &len, &err);
    python_check("a nested reply", out, len, 0,
                 "{y=[[float(0.5),float(-1.0),float(2.25)],[float(3.0),"
                 "float(4.5),float(-6.0)]]}");

    t_reset();
    lt_codec_encode_tensor(&C, "y", &t, LT_ENC_JSON, &out, &len, &err);
    python_check("a json reply", out, len, 1,
                 "{y=[[float(0.5),int(-1),float(2.25)],[int(3),float(4.5),"
                 "int(-6)]]}");

    t_reset();
    lt_codec_encode_train(&C, 0.25, 42, 0, &out, &len, &err);
    python_check("a train reply", out, len, 0,
                 "{loss=float(0.25),step=int(42)}");

    t_reset();
    lt_codec_encode_named(&C, 2, names, ts, LT_ENC_NUMPY, &out, &len, &err);
    python_check("a weight export", out, len, 0,
                 "{0.bias=ndarray<float32>(2,)[0.5,-1.0],"
                 "0.weight=ndarray<float32>(2, 3)[0.5,-1.0,2.25,3.0,4.5,"
                 "-6.0]}");
    t_reset();
}


/* learn_feedback bodies: ids, labels, and what is refused */
static void
fb_try(const char *body, int json, int max, lt_feedback *fb, lt_err *err,
    int *rc)
{
    lt_codec_ctx  c = C;

    c.max_named = (size_t) max;
    memset(err, 0, sizeof(*err));
    *rc = lt_codec_decode_feedback(&c, (const uint8_t *) body, strlen(body),
                                   json, fb, err);
}


static void
test_feedback(void)
{
    lt_feedback     fb;
    lt_err          err;
    int             rc;
    msgpack_sbuffer sb;
    msgpack_packer  pk;

    t_reset();

    fb_try("{\"id\": \"abc\", \"y\": 1}", 1, 0, &fb, &err, &rc);
    is_int(rc, 0, "feedback: one id and a number");
    is_int(fb.nids, 1, "feedback: one id");
    is_str(fb.ids[0], "abc", "feedback: the id");
    is_int(fb.y.ndim, 1, "feedback: a number label is a tensor [1]");
    is_float(fb.y.data[0], 1.0, 0, "feedback: its value");
    is_int(fb.batched, 0, "feedback: not batched");

    fb_try("{\"ids\": [\"a\", \"b\"], \"y\": [[1], [0]], \"kind\": 3}", 1, 0,
           &fb, &err, &rc);
    is_int(rc, 0, "feedback: ids and rows (kind ignored)");
    is_int(fb.nids, 2, "feedback: two ids");
    is_str(fb.ids[1], "b", "feedback: the second id");
    is_int(fb.batched, 1, "feedback: batched");
    is_int((int) fb.y.shape[0], 2, "feedback: two label rows");

    fb_try("{\"id\": \"a\", \"ids\": [\"b\"], \"y\": 1}", 1, 0, &fb, &err,
           &rc);
    is_int(rc, -1, "feedback: id and ids together are refused");

    fb_try("{\"id\": \"a\", \"y\": 1, \"why\": 2}", 1, 0, &fb, &err, &rc);
    is_str(err.msg, "unknown key \"why\": feedback has \"id\" (or \"ids\") "
           "and \"y\"", "feedback: an unknown key is named");

    fb_try("{\"id\": \"a\"}", 1, 0, &fb, &err, &rc);
    is_str(err.msg, "missing \"y\"", "feedback: a missing label");

    fb_try("{\"y\": 1}", 1, 0, &fb, &err, &rc);
    is_str(err.msg, "missing \"id\" (or \"ids\")", "feedback: a missing id");

    fb_try("{\"id\": \"a b\", \"y\": 1}", 1, 0, &fb, &err, &rc);
    is_int(rc, -1, "feedback: an id with a space is refused");

    fb_try("{\"id\": \"\", \"y\": 1}", 1, 0, &fb, &err, &rc);
    is_int(rc, -1, "feedback: an empty id is refused");

    fb_try("{\"id\": \"01234567890123456789012345678901234567890123456789"
           "012345678901234\", \"y\": 1}", 1, 0, &fb, &err, &rc);
    is_str(err.msg, "an id must be 1 to 64 bytes, not 65",
           "feedback: a 65-byte id is refused");

    fb_try("{\"id\": 5, \"y\": 1}", 1, 0, &fb, &err, &rc);
    is_int(rc, -1, "feedback: a number id is refused");

    fb_try("{\"ids\": [\"a\", \"b\", \"c\"], \"y\": [1, 0, 1]}", 1, 2, &fb,
           &err, &rc);
    is_str(err.msg, "3 ids, at most 2 are kept",
           "feedback: more ids than the store keeps");

    fb_try("{\"ids\": [], \"y\": []}", 1, 0, &fb, &err, &rc);
    is_str(err.msg, "\"ids\" is empty", "feedback: no ids");

    fb_try("{\"id\": \"a\", \"y\": 1e999}", 1, 0, &fb, &err, &rc);
    is_int(rc, -1, "feedback: an infinite label is refused");

    fb_try("[1, 2]", 1, 0, &fb, &err, &rc);
    is_int(rc, -1, "feedback: an array is not a feedback body");

    /* MessagePack: str and bin ids, a float label */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "ids", 3);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "i1", 2);
    msgpack_pack_bin(&pk, 2);
    msgpack_pack_bin_body(&pk, "i2", 2);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "y", 1);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_float(&pk, 0.5f);
    msgpack_pack_int(&pk, 1);

    {
        lt_codec_ctx  c = C;

        rc = lt_codec_decode_feedback(&c, (const uint8_t *) sb.data, sb.size,
                                      0, &fb, &err);
    }
    is_int(rc, 0, "feedback: MessagePack with str and bin ids");
    is_str(fb.ids[1], "i2", "feedback: the bin id");
    is_float(fb.y.data[0], 0.5, 0, "feedback: the float label");
    msgpack_sbuffer_destroy(&sb);

    t_reset();
}


int
main(void)
{
    test_python_vectors();
    test_python_weights();
    test_numpy_dtypes();
    test_raw_dtypes();
    test_nested();
    test_msgpack_errors();
    test_json();
    test_named_errors();
    test_round_trips();
    test_encode_exact();
    test_alloc_failures();
    test_python_reads();
    test_nonfinite();
    test_json_strict();
    test_json_reader();
    test_json_cap();
    test_feedback();

    is_int(bound_violations, 0,
           "every decode allocated at most 8 * len + 4096 bytes");

    t_reset();
    free(A.ptrs);

    return done_testing();
}
