/*
 * lt_codec_json.c: JSON tensors and train/predict bodies: an RFC 8259
 * pre-scan, then cJSON under a per-thread allocation budget.
 */
#include <pthread.h>

#include "lt_codec_int.h"


/* ---- JSON --------------------------------------------------------------- */

/*
 * cJSON allocates through hooks installed once per process; they count
 * the bytes of the decode running on this thread against its cap (a
 * thread-local budget: decodes may run on pool threads).  Outside a
 * decode they are plain malloc and free, so any other cJSON user in the
 * process (checkpoint headers, freed with free()) is unaffected.  The
 * count is cumulative, not the peak: parsing frees nothing it keeps.
 */
typedef struct {
    size_t  used;
    size_t  cap;
    int     active;
    int     over;
} lt_json_budget;

static LT_THREAD_LOCAL lt_json_budget  lt_json_bud;
static pthread_once_t                  lt_json_once = PTHREAD_ONCE_INIT;


static void *
lt_json_malloc(size_t size)
{
    lt_json_budget  *b;

    b = &lt_json_bud;

    if (b->active) {
        if (size > b->cap - b->used) {
            b->over = 1;
            return NULL;
        }
        b->used += size;
    }

    return malloc(size);
}


static void
lt_json_free(void *p)
{
    free(p);
}


static void
lt_json_hooks(void)
{
    cJSON_Hooks  h;

    h.malloc_fn = lt_json_malloc;
    h.free_fn = lt_json_free;
    cJSON_InitHooks(&h);
}


/*
 * A tree costs at most 64 bytes (one cJSON) per 2 bytes of body ("0,"),
 * plus the strings, shorter than their text: 64 * len is never reached
 * by a valid body.  And a request that learn_max_elements allows has at
 * most 4 values per element: x [N, 1] and y [N, 1], nested, are 2N each.
 */
size_t
lt_codec_json_cap(size_t len, size_t max_elements)
{
    size_t  cap, room;

    room = SIZE_MAX - LT_JSON_SLACK;

    cap = (len > room / LT_JSON_PER_BYTE) ? room : len * LT_JSON_PER_BYTE;

    if (max_elements != 0 && max_elements <= room / LT_JSON_PER_ELEM
        && max_elements * LT_JSON_PER_ELEM < cap)
    {
        cap = max_elements * LT_JSON_PER_ELEM;
    }

    return cap + LT_JSON_SLACK;
}


/* cJSON recurses once per level (up to 1000); bound the depth before it
 * parses anything.  Brackets inside strings do not count.  Also the
 * checks cJSON does not make. */
static int
lt_json_digits(const uint8_t *buf, size_t len, size_t *pos)
{
    size_t  p;

    for (p = *pos; p < len && buf[p] >= '0' && buf[p] <= '9'; p++) {
        /* void */
    }

    if (p == *pos) {
        return -1;
    }

    *pos = p;
    return 0;
}


/* RFC 8259's number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, and
 * then no more number characters.  cJSON hands anything made of them to
 * strtod(), so it takes "01", "1." and "-01" as well. */
static int
lt_json_number(const uint8_t *buf, size_t len, size_t *pos)
{
    size_t  p;

    p = *pos;

    if (buf[p] == '-') {
        p++;
    }

    if (p < len && buf[p] == '0') {
        p++;

    } else if (lt_json_digits(buf, len, &p) != 0) {
        return -1;
    }

    if (p < len && buf[p] == '.') {
        p++;
        if (lt_json_digits(buf, len, &p) != 0) {
            return -1;
        }
    }

    if (p < len && (buf[p] == 'e' || buf[p] == 'E')) {
        p++;
        if (p < len && (buf[p] == '+' || buf[p] == '-')) {
            p++;
        }
        if (lt_json_digits(buf, len, &p) != 0) {
            return -1;
        }
    }

    if (p < len && ((buf[p] >= '0' && buf[p] <= '9') || buf[p] == '.'
                    || buf[p] == 'e' || buf[p] == 'E' || buf[p] == '+'
                    || buf[p] == '-'))
    {
        return -1;
    }

    *pos = p;
    return 0;
}


int
lt_json_validate(const uint8_t *buf, size_t len, lt_err *err)
{
    size_t  i;
    int     depth, in_str;

    if (len == 0) {
        return lt_error(err, "body is empty");
    }

    /* cJSON skips a UTF-8 byte order mark; JSON text has none (RFC 8259,
     * 8.1), and Python's json.loads() refuses it too */
    if (len >= 3 && buf[0] == 0xef && buf[1] == 0xbb && buf[2] == 0xbf) {
        return lt_error(err, "body is not valid JSON: it starts with a byte "
                        "order mark");
    }

    depth = 0;
    in_str = 0;

    for (i = 0; i < len; i++) {
        /* cJSON takes any control byte for whitespace, and a raw NUL
         * inside a string would silently cut a name short: JSON allows
         * neither */
        if (buf[i] < 0x20 && (in_str || (buf[i] != '\t' && buf[i] != '\n'
                                         && buf[i] != '\r')))
        {
            return lt_error(err, "body is not valid JSON");
        }

        if (in_str) {
            if (buf[i] == '\\') {
                /* cJSON cuts a string at \u0000: {"x\u0000y": ...}
                 * would be read as "x" */
                if (len - i >= 6 && memcmp(buf + i + 1, "u0000", 5) == 0) {
                    return lt_error(err, "JSON strings must not contain "
                                    "\\u0000");
                }
                i++;
            } else if (buf[i] == '"') {
                in_str = 0;
            }
            continue;
        }

        if (buf[i] == '-' || (buf[i] >= '0' && buf[i] <= '9')) {
            if (lt_json_number(buf, len, &i) != 0) {
                return lt_error(err, "body is not valid JSON: a malformed "
                                "number (leading zeros, or no digits after "
                                "a point or an exponent)");
            }
            i--;
            continue;
        }

        switch (buf[i]) {
        case '"':
            in_str = 1;
            break;
        case '[':
        case '{':
            if (++depth > LT_JSON_MAX_DEPTH) {
                return lt_error(err, "JSON nesting is deeper than %d levels",
                                LT_JSON_MAX_DEPTH);
            }
            break;
        case ']':
        case '}':
            depth--;
            break;
        default:
            break;
        }
    }

    return 0;
}


cJSON *
lt_json_parse(const uint8_t *buf, size_t len, size_t max_elements,
    lt_err *err)
{
    lt_json_budget  *b;
    const char      *end;
    cJSON           *root;
    size_t           pos;

    if (lt_json_validate(buf, len, err) != 0) {
        return NULL;
    }

    if (pthread_once(&lt_json_once, lt_json_hooks) != 0) {
        lt_error(err, "cannot set up the JSON parser");
        return NULL;
    }

    b = &lt_json_bud;
    b->used = 0;
    b->cap = lt_codec_json_cap(len, max_elements);
    b->over = 0;
    b->active = 1;

    end = NULL;
    root = cJSON_ParseWithLengthOpts((const char *) buf, len, &end, 0);

    b->active = 0;

    if (root == NULL) {
        lt_error(err, b->over ? "JSON body too large to parse"
                              : "body is not valid JSON");
        return NULL;
    }

    /* cJSON stops after the first value: only whitespace may follow */
    pos = (size_t) (end - (const char *) buf);
    while (pos < len && (buf[pos] == ' ' || buf[pos] == '\t'
                         || buf[pos] == '\n' || buf[pos] == '\r'))
    {
        pos++;
    }

    if (pos != len) {
        cJSON_Delete(root);
        lt_error(err, "trailing bytes after the JSON body");
        return NULL;
    }

    return root;
}


const char *
lt_json_type_name(const cJSON *j)
{
    if (cJSON_IsNull(j)) {
        return "null";
    }
    if (cJSON_IsBool(j)) {
        return "boolean";
    }
    if (cJSON_IsNumber(j)) {
        return "number";
    }
    if (cJSON_IsString(j)) {
        return "string";
    }
    if (cJSON_IsArray(j)) {
        return "array";
    }
    if (cJSON_IsObject(j)) {
        return "object";
    }
    return "invalid value";
}


static int
lt_json_nested_check(lt_dec *d, const cJSON *j, int depth, int ndim,
    const uint64_t *dims, int *integer)
{
    const cJSON  *e;
    uint64_t      n;
    double        v;

    if (depth < ndim) {
        if (!cJSON_IsArray(j)) {
            return lt_error(d->err, "tensor \"%s\": ragged array at depth %d",
                            d->name, depth);
        }

        n = 0;
        for (e = j->child; e != NULL; e = e->next) {
            if (++n > dims[depth]) {
                break;
            }
            if (lt_json_nested_check(d, e, depth + 1, ndim, dims, integer)
                != 0)
            {
                return -1;
            }
        }

        if (n != dims[depth]) {
            return lt_error(d->err, "tensor \"%s\": ragged array at depth %d",
                            d->name, depth);
        }

        return 0;
    }

    if (cJSON_IsArray(j)) {
        return lt_error(d->err, "tensor \"%s\": ragged array at depth %d",
                        d->name, depth);
    }

    if (!cJSON_IsNumber(j)) {
        return lt_error(d->err, "tensor \"%s\": element at depth %d is a %s, "
                        "not a number", d->name, depth, lt_json_type_name(j));
    }

    /* JSON has one number type: integral values count as integers */
    v = j->valuedouble;
    if (!isfinite(v) || floor(v) != v) {
        *integer = 0;
    }

    return 0;
}


static void
lt_json_nested_fill(const cJSON *j, int depth, int ndim, float **out)
{
    const cJSON  *e;

    if (depth < ndim) {
        for (e = j->child; e != NULL; e = e->next) {
            lt_json_nested_fill(e, depth + 1, ndim, out);
        }
        return;
    }

    *(*out)++ = (float) j->valuedouble;
}


static int
lt_json_nested(lt_dec *d, const cJSON *j, lt_tensor *t, int *integer)
{
    const cJSON  *a, *e;
    uint64_t      dims[LT_MAX_DIMS], numel, n;
    float        *data, *p;
    int           ndim;

    ndim = 0;
    for (a = j; cJSON_IsArray(a); a = a->child) {
        n = 0;
        for (e = a->child; e != NULL; e = e->next) {
            n++;
        }
        if (ndim < LT_MAX_DIMS) {
            dims[ndim] = n;
        }
        ndim++;
        if (n == 0) {
            break;
        }
    }

    if (ndim > LT_MAX_DIMS) {
        return lt_dec_dims_error(d, ndim);
    }

    if (lt_dec_shape(d, ndim, dims, &numel) != 0) {
        return -1;
    }

    *integer = 1;
    if (lt_json_nested_check(d, j, 0, ndim, dims, integer) != 0) {
        return -1;
    }

    data = lt_dec_alloc(d, numel);
    if (data == NULL) {
        return -1;
    }

    p = data;
    lt_json_nested_fill(j, 0, ndim, &p);
    lt_dec_set(t, data, ndim, dims);

    return 0;
}


/* {"shape": [...], "data": [numbers, flat or nested], "dtype": ...} */
static int
lt_json_tensor_obj(lt_dec *d, const cJSON *j, lt_tensor *t, int *integer)
{
    const lt_dtype  *dt;
    const cJSON     *shape, *data, *dtype, *e;
    lt_tensor        flat;
    uint64_t         dims[LT_MAX_DIMS], numel;
    char             buf[128];
    double           v;
    int              ndim, flat_int;

    shape = NULL;
    data = NULL;
    dtype = NULL;

    for (e = j->child; e != NULL; e = e->next) {
        if (e->string == NULL) {
            continue;
        }
        if (strcmp(e->string, "shape") == 0) {
            if (shape != NULL) {
                return lt_error(d->err, "tensor \"%s\": duplicate key "
                                "\"shape\"", d->name);
            }
            shape = e;
        } else if (strcmp(e->string, "data") == 0) {
            if (data != NULL) {
                return lt_error(d->err, "tensor \"%s\": duplicate key "
                                "\"data\"", d->name);
            }
            data = e;
        } else if (strcmp(e->string, "dtype") == 0) {
            dtype = e;
        }
    }

    if (shape == NULL && data == NULL) {
        return lt_error(d->err, "tensor \"%s\" is an object without "
                        "\"shape\" and \"data\"", d->name);
    }

    dt = NULL;
    if (dtype != NULL) {
        if (!cJSON_IsString(dtype)) {
            return lt_error(d->err, "tensor \"%s\": \"dtype\" must be a "
                            "string, not a %s", d->name,
                            lt_json_type_name(dtype));
        }
        dt = lt_dtype_find((const uint8_t *) dtype->valuestring,
                           strlen(dtype->valuestring));
        if (dt == NULL) {
            return lt_dtype_error(d, 0, (const uint8_t *) dtype->valuestring,
                                  strlen(dtype->valuestring));
        }
    }

    if (shape == NULL) {
        return lt_error(d->err, "tensor \"%s\": missing \"shape\"", d->name);
    }

    if (data == NULL) {
        return lt_error(d->err, "tensor \"%s\": missing \"data\"", d->name);
    }

    if (!cJSON_IsArray(shape)) {
        return lt_error(d->err, "tensor \"%s\": \"shape\" must be an array, "
                        "not a %s", d->name, lt_json_type_name(shape));
    }

    ndim = 0;
    for (e = shape->child; e != NULL; e = e->next) {
        ndim++;
    }

    if (ndim > LT_MAX_DIMS) {
        return lt_dec_dims_error(d, ndim);
    }

    ndim = 0;
    for (e = shape->child; e != NULL; e = e->next) {
        v = cJSON_IsNumber(e) ? e->valuedouble : -1.0;
        /* 2^53: every integer below is exact in a double */
        if (!(v >= 0.0 && v <= 9007199254740992.0) || floor(v) != v) {
            return lt_error(d->err, "tensor \"%s\": \"shape\" must hold "
                            "non-negative integers", d->name);
        }
        dims[ndim++] = (uint64_t) v;
    }

    if (ndim == 0) {
        return lt_dec_scalar_error(d);
    }

    if (lt_dec_shape(d, ndim, dims, &numel) != 0) {
        return -1;
    }

    if (!cJSON_IsArray(data)) {
        return lt_error(d->err, "tensor \"%s\": \"data\" must be an array, "
                        "not a %s", d->name, lt_json_type_name(data));
    }

    if (lt_json_nested(d, data, &flat, &flat_int) != 0) {
        return -1;
    }

    if ((uint64_t) lt_tensor_numel(&flat) != numel) {
        lt_fmt_shape(buf, sizeof(buf), ndim, dims);
        return lt_error(d->err, "tensor \"%s\": data has %lld numbers, "
                        "shape %s needs %llu", d->name,
                        (long long) lt_tensor_numel(&flat), buf,
                        (unsigned long long) numel);
    }

    lt_dec_set(t, flat.data, ndim, dims);
    *integer = (dt != NULL) ? dt->integer : flat_int;

    return 0;
}


int
lt_json_tensor(lt_dec *d, const cJSON *j, lt_tensor *t, int *integer)
{
    if (cJSON_IsArray(j)) {
        return lt_json_nested(d, j, t, integer);
    }

    if (cJSON_IsObject(j)) {
        return lt_json_tensor_obj(d, j, t, integer);
    }

    return lt_error(d->err, "tensor \"%s\" must be an array or an object, "
                    "not a %s", d->name, lt_json_type_name(j));
}


static int
lt_json_body(lt_dec *d, const cJSON *root, lt_body *out)
{
    const cJSON  *x, *y, *e;
    int           tensorish, integer;

    if (cJSON_IsArray(root)) {
        if (lt_json_nested(d, root, &out->x, &integer) != 0) {
            return -1;
        }
        out->has_x = 1;
        return 0;
    }

    if (!cJSON_IsObject(root)) {
        return lt_error(d->err, "body must be an object with \"x\" or a "
                        "tensor, not a %s", lt_json_type_name(root));
    }

    x = NULL;
    y = NULL;
    tensorish = 0;

    for (e = root->child; e != NULL; e = e->next) {
        if (e->string == NULL) {
            continue;
        }
        if (strcmp(e->string, "x") == 0 || strcmp(e->string, "y") == 0) {
            if ((e->string[0] == 'x' ? x : y) != NULL) {
                return lt_error(d->err, "duplicate key \"%s\"", e->string);
            }
            if (e->string[0] == 'x') {
                x = e;
            } else {
                y = e;
            }
        } else if (strcmp(e->string, "shape") == 0
                   || strcmp(e->string, "data") == 0)
        {
            tensorish = 1;
        }
    }

    if (x == NULL && y == NULL && tensorish) {
        if (lt_json_tensor_obj(d, root, &out->x, &integer) != 0) {
            return -1;
        }
        out->has_x = 1;
        return 0;
    }

    if (x == NULL) {
        return lt_error(d->err, "missing \"x\"");
    }

    if (lt_json_tensor(d, x, &out->x, &integer) != 0) {
        return -1;
    }
    out->has_x = 1;

    if (y != NULL) {
        strcpy(d->name, "y");
        if (lt_json_tensor(d, y, &out->y, &out->y_integer) != 0) {
            return -1;
        }
        out->has_y = 1;
    }

    return 0;
}


int
lt_codec_decode_json(const lt_codec_ctx *c, const uint8_t *buf, size_t len,
    lt_body *out, lt_err *err)
{
    cJSON   *root;
    lt_dec   d;
    int      rc;

    memset(out, 0, sizeof(*out));
    out->enc = LT_ENC_JSON;
    d.c = c;
    d.err = err;
    strcpy(d.name, "x");

    root = lt_json_parse(buf, len, c->max_elements, err);
    if (root == NULL) {
        return -1;
    }

    rc = lt_json_body(&d, root, out);
    out->enc = LT_ENC_JSON;
    cJSON_Delete(root);

    if (rc == 0) {
        rc = lt_body_finite(out, err);
    }

    return rc;
}
