/*
 * lt_codec_int.h: what the codec's files share, and nobody else uses.
 *
 * The codec turns request bodies into tensors and tensors into replies
 * (lt_codec.h is its interface).  One job per file, calls going down:
 *
 *   lt_codec_named.c     named tensors (learn_weights)          \
 *   lt_codec_feedback.c  feedback bodies (learn_feedback)        > decoders
 *   lt_codec_body.c      train/predict bodies, the reader's open /
 *   lt_codec_tensor.c    the tensor builder: nested arrays and tensor maps
 *   lt_codec_dec.c       names, shapes, dtypes, allocation
 *   lt_mp.c, lt_json.c   the two readers (below)
 *   lt_codec_enc.c       replies: JSON, MessagePack, msgpack-numpy
 *
 * Every decoder is written once, against one pull reader (lt_rd): the
 * next value's kind (map, array, number, string, bool, nil, bin, ext),
 * its entries, a number, a key, a skip.  Two implementations: lt_mp.c
 * reads MessagePack, lt_json.c reads JSON.  Both open a body by scanning
 * it whole (the same code that skips a value), so a syntax error anywhere
 * wins over a semantic one and the decoders then walk valid bytes in
 * place.  Neither allocates: the only memory a decode takes is its
 * output, from the caller's allocator, and never before the shape, the
 * element limit and the bytes left have been checked.
 *
 * Why not the libraries.  msgpack-c's unpacker builds a tree of
 * msgpack_object in a zone it mallocs itself, 24 bytes per array element
 * and 48 per map entry (a 4 MB body of small integers: about 100 MB of
 * malloc in a worker).  cJSON builds a tree of 64 bytes per value with
 * malloc, through allocation hooks that are process-global, after which
 * every tree is walked again; and it accepts what JSON does not (leading
 * zeros, "1.", a byte order mark, any control byte as space, "\uZZZZ"
 * as a NUL), which needed a second, validating parser in front of it.
 * bench/README.md has the figures.
 *
 * A request's tensors are finite: NaN or Inf in x or y would poison the
 * model for good (one step, and every later prediction is NaN), so the
 * request decoders reject them, in one pass over the decoded floats.
 */
#ifndef LT_CODEC_INT_H
#define LT_CODEC_INT_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_codec.h"


#define LT_MP_MAX_DEPTH    32
#define LT_JSON_MAX_DEPTH  32
#define LT_NAME_MAX        64

/* Shapes from a request are multiplied in uint64_t; without a configured
 * limit this keeps element counts (and counts * 8 bytes) far from
 * overflow in code that later does arithmetic on them. */
#define LT_NUMEL_LIMIT     ((uint64_t) INT64_MAX / 16)



enum {
    LT_MP_NIL = 0,
    LT_MP_BOOL,
    LT_MP_UINT,
    LT_MP_INT,
    LT_MP_FLOAT,
    LT_MP_STR,
    LT_MP_BIN,
    LT_MP_ARRAY,
    LT_MP_MAP,
    LT_MP_EXT
};

/* ---- the reader interface -------------------------------------------- */

/* what the next value is, in either syntax */
enum {
    LT_RD_NIL = 0,
    LT_RD_BOOL,
    LT_RD_NUMBER,
    LT_RD_STR,
    LT_RD_BIN,                  /* MessagePack only */
    LT_RD_ARRAY,
    LT_RD_MAP,                  /* a JSON object */
    LT_RD_EXT                   /* MessagePack only */
};

typedef struct {
    int             kind;
    int             type;       /* MessagePack: its LT_MP_ type (names) */
    int             boolean;
    int             integer;    /* a number without a fraction: MessagePack
                                   int, or a JSON number with an integral
                                   value */
    float           f;          /* a number, as float */
    uint64_t        dim;        /* a number a shape may hold, if is_dim */
    int             is_dim;
    int             escaped;    /* a JSON string with a backslash in it */
    const uint8_t  *ptr;        /* str, bin, ext: the bytes in the body
                                   (JSON: the text between the quotes) */
    uint64_t        n;          /* their length; containers: entries, if
                                   counted */
    int             counted;    /* n of a container is known (MessagePack;
                                   JSON counts with ops->count) */
} lt_rv;

typedef struct lt_rd_s  lt_rd;

typedef struct {
    const char  *name;          /* "MessagePack", "JSON" */
    const char  *a_map;         /* "a map", "an object": for messages */
    int          binary;        /* bin data and msgpack-numpy maps */

    /* reads the next value: a scalar whole, a container's opening */
    void         (*next)(lt_rd *r, lt_rv *v);
    /* another entry in the container c that next() opened? (a map's
     * entry is a key, then a value); 0 consumes its end */
    int          (*more)(lt_rd *r, lt_rv *c);
    /* skips one whole value */
    void         (*skip)(lt_rd *r);
    /* the entries of the container c just opened, without moving */
    uint64_t     (*count)(const lt_rd *r, const lt_rv *c);
    /* a str's bytes, escapes undone: writes at most cap, returns all */
    size_t       (*str)(const lt_rv *v, uint8_t *buf, size_t cap);
    const char  *(*type_name)(const lt_rv *v);
} lt_rd_ops;

/* A position in a body that lt_mp_open() or lt_json_open() validated:
 * copying the struct saves it. */
struct lt_rd_s {
    const lt_rd_ops  *ops;
    const uint8_t    *buf;
    size_t            len;
    size_t            pos;
};

typedef struct {
    int             type;
    int             boolean;
    uint64_t        u;
    int64_t         i;
    double          f;
    const uint8_t  *ptr;        /* str, bin, ext bytes (unaligned) */
    uint32_t        n;          /* bytes of str/bin/ext, entries of a map
                                   or array */
} lt_mpv;

typedef struct {
    const lt_codec_ctx  *c;
    lt_err              *err;
    char                 name[LT_NAME_MAX + 4];   /* for messages */
    int                  scalars;   /* 1: a map-form 0-d tensor (a state
                                       dict's count) is one element */
} lt_dec;

typedef struct {
    const char  *name;
    int          size;
    int          integer;
} lt_dtype;


/* numpy's type strings and plain names, in lt_codec_dec.c */
extern const lt_dtype  lt_dtypes[8];


/* lt_mp.c: the MessagePack reader */
extern const lt_rd_ops  lt_mp_ops;

int lt_mp_open(lt_rd *r, const uint8_t *buf, size_t len, lt_err *err);
int lt_mp_read(lt_rd *r, lt_mpv *v);
int lt_mp_skip(lt_rd *r, int depth, lt_err *err);
int64_t lt_sext(uint64_t n, int bytes);

/* lt_json.c: the JSON reader */
extern const lt_rd_ops  lt_json_ops;

int lt_json_open(lt_rd *r, const uint8_t *buf, size_t len, lt_err *err);

/* lt_codec_dec.c: names, shapes, dtypes, allocation for every decoder */
int lt_body_finite(const lt_body *b, lt_err *err);
void lt_convert(float *out, const uint8_t *p, uint64_t numel,
    const lt_dtype *dt);
float *lt_dec_alloc(lt_dec *d, uint64_t numel);
int lt_dec_dims_error(lt_dec *d, int ndim);
void lt_dec_name(lt_dec *d, const uint8_t *s, size_t n);
int lt_dec_scalar_error(lt_dec *d);
char *lt_dec_strdup(lt_dec *d, const uint8_t *s, size_t n, const char *what);
void lt_dec_set(lt_tensor *t, float *data, int ndim,
    const uint64_t *dims);
int lt_dec_shape(lt_dec *d, int ndim, const uint64_t *dims,
    uint64_t *numel);
int lt_dtype_error(lt_dec *d, int numpy, const uint8_t *s, size_t n);
const lt_dtype *lt_dtype_find(const uint8_t *s, size_t n);
void lt_fmt_shape(char *buf, size_t size, int ndim, const uint64_t *dims);
uint64_t lt_mul_sat(uint64_t a, uint64_t b);

/* lt_codec_body.c: opening a body, train/predict bodies */
int lt_rd_open(lt_rd *r, int json, const uint8_t *buf, size_t len,
    lt_err *err);

/* lt_codec_tensor.c: the tensor builder, and keys */
void lt_rd_key(lt_rd *r, lt_rv *k);
int lt_rd_is_escaped(const lt_rd *r, const lt_rv *k, const char *s,
    size_t n);
int lt_rd_tensor(lt_dec *d, lt_rd *r, lt_tensor *t, int *integer,
    lt_encoding *enc);
int lt_rd_tensor_map(lt_dec *d, lt_rd *r, lt_tensor *t, int *integer,
    lt_encoding *enc);
int lt_rd_nested(lt_dec *d, lt_rd *r, lt_tensor *t, int *integer);
int lt_rd_tensor_key(const lt_rd *r, const lt_rv *k);


/* k is the string s (str or bin, escapes undone).  Inline, so that the
 * length of a literal s is a constant: every key of every body meets it. */
static inline int
lt_rd_is(const lt_rd *r, const lt_rv *k, const char *s)
{
    size_t  n;

    if (k->kind != LT_RD_STR && k->kind != LT_RD_BIN) {
        return 0;
    }

    n = strlen(s);

    if (!k->escaped) {
        return k->n == n && memcmp(k->ptr, s, n) == 0;
    }

    return lt_rd_is_escaped(r, k, s, n);
}

#endif /* LT_CODEC_INT_H */
