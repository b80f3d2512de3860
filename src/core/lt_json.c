/*
 * lt_json.c: the JSON reader: RFC 8259 checked in one scan of the whole
 * body (no tree, no allocation), then values read in place (lt_rd_ops).
 *
 * Strict where cJSON, the parser this replaces, was lax: no leading
 * zeros, no "1." or "1e", no byte order mark, only space, tab, CR and LF
 * between tokens, no raw control byte in a string, escapes as RFC 8259
 * spells them (cJSON took "\uZZZZ" for a NUL and cut the string there),
 * surrogates in pairs.  "\u0000" is refused with a message of its own: a
 * name or id holding a NUL would be cut short by whoever reads it as a C
 * string.  Strings are bytes: UTF-8 is not checked, as cJSON did not.
 */
#include "lt_codec_int.h"


#define LT_JSON_BAD     "body is not valid JSON"
#define LT_JSON_NUMBER  "body is not valid JSON: a malformed number " \
                        "(leading zeros, or no digits after a point or " \
                        "an exponent)"


static size_t
lt_json_ws(const lt_rd *r, size_t p)
{
    while (p < r->len && (r->buf[p] == ' ' || r->buf[p] == '\n'
                          || r->buf[p] == '\r' || r->buf[p] == '\t'))
    {
        p++;
    }

    return p;
}


static size_t
lt_json_digits(const uint8_t *b, size_t len, size_t p)
{
    while (p < len && b[p] >= '0' && b[p] <= '9') {
        p++;
    }

    return p;
}


/* RFC 8259's number at p: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?,
 * not followed by another number character ("1.5.5", "1-2").  Returns
 * the position after it, or 0. */
static size_t
lt_json_number_end(const uint8_t *b, size_t len, size_t p)
{
    size_t  q;

    if (b[p] == '-') {
        p++;
    }

    if (p < len && b[p] == '0') {
        p++;

    } else {
        q = lt_json_digits(b, len, p);
        if (q == p) {
            return 0;
        }
        p = q;
    }

    if (p < len && b[p] == '.') {
        q = lt_json_digits(b, len, p + 1);
        if (q == p + 1) {
            return 0;
        }
        p = q;
    }

    if (p < len && (b[p] == 'e' || b[p] == 'E')) {
        p++;
        if (p < len && (b[p] == '+' || b[p] == '-')) {
            p++;
        }
        q = lt_json_digits(b, len, p);
        if (q == p) {
            return 0;
        }
        p = q;
    }

    if (p < len && ((b[p] >= '0' && b[p] <= '9') || b[p] == '.'
                    || b[p] == 'e' || b[p] == 'E' || b[p] == '+'
                    || b[p] == '-'))
    {
        return 0;
    }

    return p;
}


static int
lt_json_hex4(const uint8_t *b, size_t len, size_t p, unsigned *code)
{
    unsigned  c, i, h;

    if (len - p < 4) {
        return -1;
    }

    c = 0;
    for (i = 0; i < 4; i++) {
        h = b[p + i];
        if (h >= '0' && h <= '9') {
            h -= '0';
        } else if ((h | 0x20) >= 'a' && (h | 0x20) <= 'f') {
            h = (h | 0x20) - 'a' + 10;
        } else {
            return -1;
        }
        c = (c << 4) | h;
    }

    *code = c;
    return 0;
}


/* The escape after the backslash at p: its code point (*code) and the
 * position after it; 0 when invalid. */
static size_t
lt_json_escape(const uint8_t *b, size_t len, size_t p, unsigned *code)
{
    unsigned  lo;

    if (p + 1 >= len) {
        return 0;
    }

    switch (b[p + 1]) {
    case '"': *code = '"'; return p + 2;
    case '\\': *code = '\\'; return p + 2;
    case '/': *code = '/'; return p + 2;
    case 'b': *code = '\b'; return p + 2;
    case 'f': *code = '\f'; return p + 2;
    case 'n': *code = '\n'; return p + 2;
    case 'r': *code = '\r'; return p + 2;
    case 't': *code = '\t'; return p + 2;
    case 'u': break;
    default: return 0;
    }

    if (lt_json_hex4(b, len, p + 2, code) != 0
        || (*code >= 0xdc00 && *code <= 0xdfff))
    {
        return 0;
    }

    if (*code < 0xd800 || *code > 0xdbff) {
        return p + 6;
    }

    /* a high surrogate: a low one must follow */
    if (len - p < 12 || b[p + 6] != '\\' || b[p + 7] != 'u'
        || lt_json_hex4(b, len, p + 8, &lo) != 0
        || lo < 0xdc00 || lo > 0xdfff)
    {
        return 0;
    }

    *code = 0x10000 + (((*code & 0x3ff) << 10) | (lo & 0x3ff));
    return p + 12;
}


/* The string whose opening quote is at p: the position after its closing
 * quote, or 0 (err set) when invalid. */
static size_t
lt_json_string_end(const lt_rd *r, size_t p, lt_err *err)
{
    const uint8_t  *b;
    unsigned        code;

    b = r->buf;

    for (p++; p < r->len; ) {
        if (b[p] == '"') {
            return p + 1;
        }

        if (b[p] < 0x20) {
            break;
        }

        if (b[p] != '\\') {
            p++;
            continue;
        }

        p = lt_json_escape(b, r->len, p, &code);
        if (p == 0) {
            break;
        }

        if (code == 0) {
            lt_error(err, "JSON strings must not contain \\u0000");
            return 0;
        }
    }

    lt_error(err, LT_JSON_BAD);
    return 0;
}


/*
 * Checks one value at r->pos and moves past it.  Recursion is bounded by
 * LT_JSON_MAX_DEPTH, the same 32 levels as MessagePack's.
 */
static int
lt_json_scan(lt_rd *r, int depth, lt_err *err)
{
    const uint8_t  *b;
    size_t          p, q;
    uint8_t         close;

    b = r->buf;
    p = lt_json_ws(r, r->pos);
    if (p == r->len) {
        return lt_error(err, LT_JSON_BAD);
    }

    switch (b[p]) {
    case '{':
    case '[':
        if (depth >= LT_JSON_MAX_DEPTH) {
            return lt_error(err, "JSON nesting is deeper than %d levels",
                            LT_JSON_MAX_DEPTH);
        }

        close = (b[p] == '{') ? '}' : ']';
        p = lt_json_ws(r, p + 1);

        if (p < r->len && b[p] == close) {
            r->pos = p + 1;
            return 0;
        }

        for ( ;; ) {
            if (close == '}') {
                if (p == r->len || b[p] != '"') {
                    return lt_error(err, LT_JSON_BAD);
                }
                p = lt_json_string_end(r, p, err);
                if (p == 0) {
                    return -1;
                }
                p = lt_json_ws(r, p);
                if (p == r->len || b[p] != ':') {
                    return lt_error(err, LT_JSON_BAD);
                }
                p++;
            }

            r->pos = p;
            if (lt_json_scan(r, depth + 1, err) != 0) {
                return -1;
            }

            p = lt_json_ws(r, r->pos);
            if (p == r->len) {
                return lt_error(err, LT_JSON_BAD);
            }
            if (b[p] == close) {
                r->pos = p + 1;
                return 0;
            }
            if (b[p] != ',') {
                return lt_error(err, LT_JSON_BAD);
            }
            p = lt_json_ws(r, p + 1);
        }

    case '"':
        q = lt_json_string_end(r, p, err);
        if (q == 0) {
            return -1;
        }
        r->pos = q;
        return 0;

    case 't':
    case 'n':
        q = p + 4;
        if (r->len - p < 4
            || memcmp(b + p, b[p] == 't' ? "true" : "null", 4) != 0)
        {
            return lt_error(err, LT_JSON_BAD);
        }
        r->pos = q;
        return 0;

    case 'f':
        if (r->len - p < 5 || memcmp(b + p, "false", 5) != 0) {
            return lt_error(err, LT_JSON_BAD);
        }
        r->pos = p + 5;
        return 0;

    default:
        if (b[p] != '-' && (b[p] < '0' || b[p] > '9')) {
            return lt_error(err, LT_JSON_BAD);
        }
        q = lt_json_number_end(b, r->len, p);
        if (q == 0) {
            return lt_error(err, LT_JSON_NUMBER);
        }
        r->pos = q;
        return 0;
    }
}


int
lt_json_open(lt_rd *r, const uint8_t *buf, size_t len, lt_err *err)
{
    if (len == 0) {
        return lt_error(err, "body is empty");
    }

    /* JSON text has none (RFC 8259, 8.1); Python's json.loads() refuses
     * it too */
    if (len >= 3 && buf[0] == 0xef && buf[1] == 0xbb && buf[2] == 0xbf) {
        return lt_error(err, "body is not valid JSON: it starts with a byte "
                        "order mark");
    }

    r->ops = &lt_json_ops;
    r->buf = buf;
    r->len = len;
    r->pos = 0;

    if (lt_json_scan(r, 0, err) != 0) {
        return -1;
    }

    if (lt_json_ws(r, r->pos) != len) {
        return lt_error(err, "trailing bytes after the JSON body");
    }

    r->pos = 0;

    return 0;
}


/* ---- numbers -------------------------------------------------------------- */

/*
 * A long number for strtod(): "[-]0.DIGITSeE", its first 800 significant
 * digits and a 1 for any non-zero digit after them.  A double's rounding
 * is decided by at most 767 significant digits, so this is the same
 * double, read from a bounded copy (strtod() needs a NUL, and glibc's may
 * malloc for very long input).
 */
static double
lt_json_long(const uint8_t *s, size_t n)
{
    char      buf[840];
    size_t    i, k;
    int64_t   e, x;
    int       seen, sticky, frac, xneg;

    k = 0;
    if (s[0] == '-') {
        buf[k++] = '-';
    }
    buf[k++] = '0';
    buf[k++] = '.';

    e = 0;
    seen = 0;
    sticky = 0;
    frac = 0;

    for (i = (s[0] == '-'); i < n && s[i] != 'e' && s[i] != 'E'; i++) {
        if (s[i] == '.') {
            frac = 1;
            continue;
        }
        if (!seen && s[i] == '0') {
            e -= frac;          /* 0.00D: each zero shifts D right */
            continue;
        }
        if (!seen) {
            seen = 1;
        }
        if (!frac) {
            e++;
        }
        if (k < 2 + 800 + (s[0] == '-')) {
            buf[k++] = (char) s[i];
        } else if (s[i] != '0') {
            sticky = 1;
        }
    }

    if (!seen) {
        return s[0] == '-' ? -0.0 : 0.0;
    }

    if (sticky) {
        buf[k++] = '1';
    }

    x = 0;
    xneg = 0;
    if (i < n) {
        i++;
        if (s[i] == '+' || s[i] == '-') {
            xneg = (s[i] == '-');
            i++;
        }
        for ( ; i < n; i++) {
            if (x < 1000000000) {
                x = x * 10 + (s[i] - '0');
            }
        }
    }

    e += xneg ? -x : x;
    if (e > 99999) {
        e = 99999;              /* Inf either way */
    } else if (e < -99999) {
        e = -99999;             /* 0 either way */
    }

    snprintf(buf + k, sizeof(buf) - k, "e%lld", (long long) e);

    return strtod(buf, NULL);
}


/*
 * The number s[0..n) (valid).  With its digits m at most 2^53 and a
 * decimal exponent within 22, m * 10^e is one correctly rounded operation
 * on exact doubles (Clinger's fast path), the same double strtod() gives:
 * that covers %.9g floats and most of Python's shortest reprs (16-17
 * digits).  Anything else goes to strtod() on a copy.
 */
static double
lt_json_double(const uint8_t *s, size_t n)
{
    static const double  p10[] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
        1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
    };
    uint64_t  m;
    size_t    i;
    double    v;
    char      buf[64];
    int       digits, e, x, xneg, neg;

    neg = (s[0] == '-');
    i = (size_t) neg;
    m = 0;
    digits = 0;
    e = 0;

    for ( ; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        m = m * 10 + (uint64_t) (s[i] - '0');
        digits += (m != 0);
        if (digits > 19) {
            goto slow;
        }
    }

    if (i < n && s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            m = m * 10 + (uint64_t) (s[i] - '0');
            digits += (m != 0);
            if (digits > 19 || --e < -400) {
                goto slow;
            }
        }
    }

    if (i < n) {
        i++;
        xneg = 0;
        if (s[i] == '+' || s[i] == '-') {
            xneg = (s[i] == '-');
            i++;
        }
        for (x = 0; i < n; i++) {
            x = x * 10 + (s[i] - '0');
            if (x > 400) {
                goto slow;
            }
        }
        e += xneg ? -x : x;
    }

    if (m == 0) {
        return neg ? -0.0 : 0.0;
    }

    if (e < -22 || e > 22 || m > ((uint64_t) 1 << 53)) {
        goto slow;
    }

    v = (double) m;
    v = (e < 0) ? v / p10[-e] : v * p10[e];

    return neg ? -v : v;

slow:

    if (n >= sizeof(buf)) {
        return lt_json_long(s, n);
    }

    memcpy(buf, s, n);
    buf[n] = '\0';

    return strtod(buf, NULL);
}


/* ---- lt_rd_ops over the validated text ------------------------------------ */

/* after a value: space, and a key's colon */
static void
lt_json_after(lt_rd *r, size_t p)
{
    p = lt_json_ws(r, p);
    if (p < r->len && r->buf[p] == ':') {
        p = lt_json_ws(r, p + 1);
    }
    r->pos = p;
}


/* the end of the (valid) string at p, and whether it has escapes */
static size_t
lt_json_string_skip(const lt_rd *r, size_t p, int *escaped)
{
    const uint8_t  *b;

    b = r->buf;
    *escaped = 0;

    for (p++; b[p] != '"'; p++) {
        if (b[p] == '\\') {
            *escaped = 1;
            p++;
        }
    }

    return p + 1;
}


static void
lt_json_next(lt_rd *r, lt_rv *v)
{
    const uint8_t  *b;
    size_t          p, q;
    double          d;

    b = r->buf;
    p = lt_json_ws(r, r->pos);

    v->counted = 0;
    v->escaped = 0;
    v->ptr = NULL;
    v->n = 0;
    v->type = 0;

    switch (b[p]) {
    case '{':
    case '[':
        v->kind = (b[p] == '{') ? LT_RD_MAP : LT_RD_ARRAY;
        r->pos = lt_json_ws(r, p + 1);
        return;

    case '"':
        q = lt_json_string_skip(r, p, &v->escaped);
        v->kind = LT_RD_STR;
        v->ptr = b + p + 1;
        v->n = q - p - 2;
        lt_json_after(r, q);
        return;

    case 't':
    case 'f':
        v->kind = LT_RD_BOOL;
        v->boolean = (b[p] == 't');
        lt_json_after(r, p + (v->boolean ? 4 : 5));
        return;

    case 'n':
        v->kind = LT_RD_NIL;
        lt_json_after(r, p + 4);
        return;

    default:
        q = lt_json_number_end(b, r->len, p);
        d = lt_json_double(b + p, q - p);
        v->kind = LT_RD_NUMBER;
        v->f = (float) d;
        /* JSON has one number type: integral values count as integers */
        v->integer = isfinite(d) && floor(d) == d;
        /* 2^53: every integer below is exact in a double */
        v->is_dim = (d >= 0.0 && d <= 9007199254740992.0 && v->integer);
        v->dim = v->is_dim ? (uint64_t) d : 0;
        lt_json_after(r, q);
        return;
    }
}


static int
lt_json_more(lt_rd *r, lt_rv *c)
{
    size_t  p;

    p = lt_json_ws(r, r->pos);

    if (r->buf[p] == ',') {
        r->pos = lt_json_ws(r, p + 1);
        return 1;
    }

    if (r->buf[p] == ']' || r->buf[p] == '}') {
        lt_json_after(r, p + 1);
        return 0;
    }

    r->pos = p;
    return 1;
}


static void
lt_json_skip(lt_rd *r)
{
    const uint8_t  *b;
    size_t          p;
    int             depth, esc;

    b = r->buf;
    p = lt_json_ws(r, r->pos);

    if (b[p] == '-' || (b[p] >= '0' && b[p] <= '9')) {
        lt_json_after(r, lt_json_number_end(b, r->len, p));
        return;
    }

    depth = 0;
    do {
        switch (b[p]) {
        case '"':
            p = lt_json_string_skip(r, p, &esc);
            continue;
        case '[':
        case '{':
            depth++;
            break;
        case ']':
        case '}':
            depth--;
            break;
        case 't':
        case 'n':
            p += (depth == 0) ? 4 : 1;
            continue;
        case 'f':
            p += (depth == 0) ? 5 : 1;
            continue;
        default:
            break;
        }
        p++;
    } while (depth > 0);

    lt_json_after(r, p);
}


static uint64_t
lt_json_count(const lt_rd *r, const lt_rv *c)
{
    uint64_t  n;
    lt_rd     m;
    lt_rv     cc;

    m = *r;
    cc = *c;

    for (n = 0; lt_json_more(&m, &cc); n++) {
        if (c->kind == LT_RD_MAP) {
            lt_json_skip(&m);
        }
        lt_json_skip(&m);
    }

    return n;
}


static size_t
lt_json_put(uint8_t *buf, size_t cap, size_t n, unsigned code)
{
    uint8_t  u[4];
    size_t   k, i;

    if (code < 0x80) {
        u[0] = (uint8_t) code;
        k = 1;
    } else if (code < 0x800) {
        u[0] = (uint8_t) (0xc0 | (code >> 6));
        u[1] = (uint8_t) (0x80 | (code & 0x3f));
        k = 2;
    } else if (code < 0x10000) {
        u[0] = (uint8_t) (0xe0 | (code >> 12));
        u[1] = (uint8_t) (0x80 | ((code >> 6) & 0x3f));
        u[2] = (uint8_t) (0x80 | (code & 0x3f));
        k = 3;
    } else {
        u[0] = (uint8_t) (0xf0 | (code >> 18));
        u[1] = (uint8_t) (0x80 | ((code >> 12) & 0x3f));
        u[2] = (uint8_t) (0x80 | ((code >> 6) & 0x3f));
        u[3] = (uint8_t) (0x80 | (code & 0x3f));
        k = 4;
    }

    for (i = 0; i < k; i++) {
        if (n + i < cap) {
            buf[n + i] = u[i];
        }
    }

    return n + k;
}


/* a string's bytes with its escapes undone (UTF-8 for \u) */
static size_t
lt_json_str(const lt_rv *v, uint8_t *buf, size_t cap)
{
    unsigned  code;
    size_t    i, n, q;

    if (!v->escaped) {
        if (cap > 0) {
            memcpy(buf, v->ptr, v->n < cap ? (size_t) v->n : cap);
        }
        return (size_t) v->n;
    }

    n = 0;
    for (i = 0; i < v->n; ) {
        if (v->ptr[i] != '\\') {
            if (n < cap) {
                buf[n] = v->ptr[i];
            }
            n++;
            i++;
            continue;
        }

        /* valid: lt_json_open() checked every escape */
        q = lt_json_escape(v->ptr, (size_t) v->n, i, &code);
        n = lt_json_put(buf, cap, n, code);
        i = q;
    }

    return n;
}


static const char *
lt_json_type_name(const lt_rv *v)
{
    static const char *const  names[] = {
        "null", "boolean", "number", "string", "string", "array", "object",
        "invalid value"
    };

    return names[v->kind];
}


const lt_rd_ops  lt_json_ops = {
    "JSON", "an object", 0,
    lt_json_next, lt_json_more, lt_json_skip, lt_json_count, lt_json_str,
    lt_json_type_name
};
