/*
 * lt_mp.c: the MessagePack reader: a validating scan of the whole body,
 * then values read in place from the validated bytes (lt_rd_ops; no
 * msgpack-c unpacker, see lt_codec_int.h).
 */
#include "lt_codec_int.h"


static uint64_t
lt_be(const uint8_t *p, int n)
{
    uint64_t  v;
    int       i;

    v = 0;
    for (i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }

    return v;
}


/* Two's complement of a big- or little-endian field of 1..8 bytes, by
 * arithmetic: converting an out-of-range unsigned value to a signed type
 * is implementation-defined in C99. */
int64_t
lt_sext(uint64_t n, int bytes)
{
    uint64_t  sign;

    sign = (uint64_t) 1 << (bytes * 8 - 1);
    if ((n & sign) == 0) {
        return (int64_t) n;
    }

    /* n - 2^(8 * bytes) == -((2^(8 * bytes) - 1 - n) + 1), and the inner
     * term is below 2^63 */
    return -(int64_t) (~n & (sign | (sign - 1))) - 1;
}


/*
 * Reads one value's header (and scalar payload, or the position of str,
 * bin and ext bytes).  Arrays and maps: only the header; their entries
 * follow.  Every length is checked against the bytes left, so a declared
 * array of 2^32 entries in a 5-byte body fails here, before anything is
 * built for it: an array entry takes at least 1 byte, a map entry 2.
 */
int
lt_mp_read(lt_rd *mp, lt_mpv *v)
{
    const uint8_t  *p;
    uint64_t        n, need;
    size_t          left, hdr;
    uint32_t        f32;
    uint8_t         b;
    float           fv;
    double          dv;
    int             lsz;

    left = mp->len - mp->pos;
    if (left == 0) {
        return -1;
    }

    p = mp->buf + mp->pos;
    b = p[0];
    v->ptr = NULL;
    v->n = 0;

    if (b <= 0x7f) {
        v->type = LT_MP_UINT;
        v->u = b;
        mp->pos++;
        return 0;
    }

    if (b >= 0xe0) {
        v->type = LT_MP_INT;
        v->i = (int64_t) b - 256;
        mp->pos++;
        return 0;
    }

    /* containers and byte strings: a length field of lsz bytes after a
     * header byte, or the length inside the header byte (lsz 0) */
    lsz = -1;
    n = 0;

    if ((b & 0xf0) == 0x80) {
        v->type = LT_MP_MAP;
        n = b & 0x0f;
        lsz = 0;

    } else if ((b & 0xf0) == 0x90) {
        v->type = LT_MP_ARRAY;
        n = b & 0x0f;
        lsz = 0;

    } else if ((b & 0xe0) == 0xa0) {
        v->type = LT_MP_STR;
        n = b & 0x1f;
        lsz = 0;

    } else {
        switch (b) {
        case 0xc4: v->type = LT_MP_BIN; lsz = 1; break;
        case 0xc5: v->type = LT_MP_BIN; lsz = 2; break;
        case 0xc6: v->type = LT_MP_BIN; lsz = 4; break;
        case 0xd9: v->type = LT_MP_STR; lsz = 1; break;
        case 0xda: v->type = LT_MP_STR; lsz = 2; break;
        case 0xdb: v->type = LT_MP_STR; lsz = 4; break;
        case 0xdc: v->type = LT_MP_ARRAY; lsz = 2; break;
        case 0xdd: v->type = LT_MP_ARRAY; lsz = 4; break;
        case 0xde: v->type = LT_MP_MAP; lsz = 2; break;
        case 0xdf: v->type = LT_MP_MAP; lsz = 4; break;
        default: break;
        }
    }

    if (lsz >= 0) {
        hdr = 1 + (size_t) lsz;
        if (left < hdr) {
            return -1;
        }

        if (lsz > 0) {
            n = lt_be(p + 1, lsz);
        }

        switch (v->type) {
        case LT_MP_ARRAY:
            need = n;
            break;
        case LT_MP_MAP:
            need = 2 * n;
            break;
        default:
            need = n;
            v->ptr = p + hdr;
            break;
        }

        if (need > left - hdr) {
            return -1;
        }

        v->n = (uint32_t) n;
        mp->pos += hdr;
        if (v->ptr != NULL) {
            mp->pos += (size_t) n;
        }

        return 0;
    }

    /* fixed-size scalars and ext */
    switch (b) {
    case 0xc0:
        v->type = LT_MP_NIL;
        hdr = 1;
        break;

    case 0xc2:
    case 0xc3:
        v->type = LT_MP_BOOL;
        v->boolean = (b == 0xc3);
        hdr = 1;
        break;

    case 0xca:
    case 0xcb:
        hdr = (b == 0xca) ? 5 : 9;
        if (left < hdr) {
            return -1;
        }
        v->type = LT_MP_FLOAT;
        if (b == 0xca) {
            f32 = (uint32_t) lt_be(p + 1, 4);
            memcpy(&fv, &f32, 4);
            v->f = fv;
        } else {
            n = lt_be(p + 1, 8);
            memcpy(&dv, &n, 8);
            v->f = dv;
        }
        break;

    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        hdr = 1 + ((size_t) 1 << (b - 0xcc));
        if (left < hdr) {
            return -1;
        }
        v->type = LT_MP_UINT;
        v->u = lt_be(p + 1, (int) hdr - 1);
        break;

    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        hdr = 1 + ((size_t) 1 << (b - 0xd0));
        if (left < hdr) {
            return -1;
        }
        v->type = LT_MP_INT;
        v->i = lt_sext(lt_be(p + 1, (int) hdr - 1), (int) hdr - 1);
        break;

    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        /* fixext: one type byte and 1..16 data bytes */
        hdr = 2 + ((size_t) 1 << (b - 0xd4));
        if (left < hdr) {
            return -1;
        }
        v->type = LT_MP_EXT;
        v->ptr = p + 2;
        v->n = (uint32_t) (hdr - 2);
        break;

    case 0xc7:
    case 0xc8:
    case 0xc9:
        lsz = (b == 0xc7) ? 1 : (b == 0xc8) ? 2 : 4;
        hdr = 2 + (size_t) lsz;
        if (left < hdr) {
            return -1;
        }
        n = lt_be(p + 1, lsz);
        if (n > left - hdr) {
            return -1;
        }
        v->type = LT_MP_EXT;
        v->ptr = p + hdr;
        v->n = (uint32_t) n;
        hdr += (size_t) n;
        break;

    default:
        /* 0xc1 is reserved: never valid */
        return -1;
    }

    mp->pos += hdr;
    return 0;
}


/*
 * Validates (err != NULL) or skips one whole value.  Recursion is bounded
 * by LT_MP_MAX_DEPTH; msgpack-c itself gives up at 32 levels as well.
 */
int
lt_mp_skip(lt_rd *mp, int depth, lt_err *err)
{
    lt_mpv    v;
    uint64_t  i, n;

    if (lt_mp_read(mp, &v) != 0) {
        return lt_error(err, "body is not valid MessagePack");
    }

    if (v.type != LT_MP_ARRAY && v.type != LT_MP_MAP) {
        return 0;
    }

    if (depth >= LT_MP_MAX_DEPTH) {
        return lt_error(err, "MessagePack nesting is deeper than %d levels",
                        LT_MP_MAX_DEPTH);
    }

    n = (v.type == LT_MP_MAP) ? 2 * (uint64_t) v.n : v.n;
    for (i = 0; i < n; i++) {
        if (lt_mp_skip(mp, depth + 1, err) != 0) {
            return -1;
        }
    }

    return 0;
}


/*
 * A body to decode: it must be exactly one valid value (checked whole,
 * before anything is read for real); then r reads it from the start.
 */
int
lt_mp_open(lt_rd *r, const uint8_t *buf, size_t len, lt_err *err)
{
    if (len == 0) {
        return lt_error(err, "body is empty");
    }

    r->ops = &lt_mp_ops;
    r->buf = buf;
    r->len = len;
    r->pos = 0;

    if (lt_mp_skip(r, 0, err) != 0) {
        return -1;
    }

    if (r->pos != len) {
        return lt_error(err, "trailing bytes after the MessagePack body");
    }

    r->pos = 0;

    return 0;
}


/* ---- lt_rd_ops over the validated bytes -------------------------------- */

static float
lt_mp_float(const lt_mpv *m)
{
    switch (m->type) {
    case LT_MP_UINT:
        return (float) m->u;
    case LT_MP_INT:
        return (float) m->i;
    default:
        return (float) m->f;
    }
}


static void
lt_mp_next(lt_rd *r, lt_rv *v)
{
    static const int  kinds[] = {
        LT_RD_NIL, LT_RD_BOOL, LT_RD_NUMBER, LT_RD_NUMBER, LT_RD_NUMBER,
        LT_RD_STR, LT_RD_BIN, LT_RD_ARRAY, LT_RD_MAP, LT_RD_EXT
    };
    lt_mpv  m;

    m.type = LT_MP_NIL;
    (void) lt_mp_read(r, &m);

    v->kind = kinds[m.type];
    v->type = m.type;
    v->ptr = m.ptr;
    v->n = m.n;
    v->counted = 1;
    v->escaped = 0;

    switch (m.type) {
    case LT_MP_BOOL:
        v->boolean = m.boolean;
        break;

    case LT_MP_UINT:
    case LT_MP_INT:
    case LT_MP_FLOAT:
        v->f = lt_mp_float(&m);
        v->integer = (m.type != LT_MP_FLOAT);
        v->is_dim = (m.type == LT_MP_UINT
                     || (m.type == LT_MP_INT && m.i >= 0));
        v->dim = (m.type == LT_MP_UINT) ? m.u : (uint64_t) m.i;
        break;

    default:
        break;
    }
}


static int
lt_mp_more(lt_rd *r, lt_rv *c)
{
    if (c->n == 0) {
        return 0;
    }

    c->n--;
    return 1;
}


static void
lt_mp_skip_value(lt_rd *r)
{
    (void) lt_mp_skip(r, 0, NULL);
}


static uint64_t
lt_mp_count(const lt_rd *r, const lt_rv *c)
{
    return c->n;
}


static size_t
lt_mp_str(const lt_rv *v, uint8_t *buf, size_t cap)
{
    if (cap > 0) {
        memcpy(buf, v->ptr, v->n < cap ? (size_t) v->n : cap);
    }

    return (size_t) v->n;
}


static const char *
lt_mp_type_name(const lt_rv *v)
{
    static const char *const  names[] = {
        "nil", "boolean", "integer", "integer", "float", "str", "bin",
        "array", "map", "ext"
    };

    return names[v->type];
}


const lt_rd_ops  lt_mp_ops = {
    "MessagePack", "a map", 1,
    lt_mp_next, lt_mp_more, lt_mp_skip_value, lt_mp_count, lt_mp_str,
    lt_mp_type_name
};
