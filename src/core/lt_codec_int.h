/*
 * lt_codec_int.h: what the codec's files share, and nobody else uses.
 *
 * The codec turns request bodies into tensors and tensors into replies
 * (lt_codec.h is its interface).  One job per file:
 *
 *   lt_mp.c              the MessagePack reader
 *   lt_codec_dec.c       names, shapes, dtypes, allocation: both decoders
 *   lt_codec_mp.c        MessagePack tensors and train/predict bodies
 *   lt_codec_json.c      JSON tensors and bodies
 *   lt_codec_named.c     named tensors (learn_weights)
 *   lt_codec_feedback.c  feedback bodies (learn_feedback)
 *   lt_codec_enc.c       replies: JSON, MessagePack, msgpack-numpy
 *
 * Decoding MessagePack does not use msgpack-c's unpacker.  Even with
 * every length checked beforehand, msgpack_unpack_next() builds a tree
 * of msgpack_object in a zone it mallocs itself: 24 bytes per array
 * element and 48 per map entry, so a body of one-byte integers costs 24
 * times its size outside the caller's pool before the first float is
 * converted (a 4 MB nested-array body: about 100 MB of malloc in a
 * worker).  Instead a validating pre-scan walks the bytes once (every
 * declared length against the bytes left, depth at most 32, exactly one
 * object), and the decoder then reads the validated bytes in place.  The
 * only memory a decode takes is the output, from the caller's allocator,
 * at most 4 bytes per float and never before the shape, the element
 * limit and the data length have been checked.  Encoding uses msgpack-c's
 * packer with a write callback into one buffer whose size a first,
 * counting pass computed exactly.
 *
 * JSON goes through cJSON (its tree is malloc'ed and always deleted
 * before returning), after a pre-scan that bounds nesting depth and
 * rejects what cJSON would accept but JSON does not.  cJSON's tree takes
 * about 32 times the body (64 bytes per value), so its allocations are
 * counted per decode, per thread, and a parse fails once they pass
 * lt_codec_json_cap().
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

#include <cjson/cJSON.h>

#include "lt_codec.h"


#define LT_MP_MAX_DEPTH    32
#define LT_JSON_MAX_DEPTH  32
#define LT_NAME_MAX        64

/* Shapes from a request are multiplied in uint64_t; without a configured
 * limit this keeps element counts (and counts * 8 bytes) far from
 * overflow in code that later does arithmetic on them. */
#define LT_NUMEL_LIMIT     ((uint64_t) INT64_MAX / 16)

/* lt_codec_json_cap(): what cJSON may allocate for one body */
#define LT_JSON_PER_BYTE   64
#define LT_JSON_PER_ELEM   (4 * sizeof(cJSON))
#define LT_JSON_SLACK      ((size_t) 1 << 20)

#if defined(__GNUC__)
#define LT_THREAD_LOCAL    __thread
#else
#define LT_THREAD_LOCAL    _Thread_local
#endif


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

typedef struct {
    const uint8_t  *buf;
    size_t          len;
    size_t          pos;
} lt_mp;

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
} lt_dec;

typedef struct {
    const char  *name;
    int          size;
    int          integer;
} lt_dtype;


/* numpy's type strings and plain names, in lt_codec_dec.c */
extern const lt_dtype  lt_dtypes[8];


/* lt_mp.c: MessagePack reader: validates, then reads values in place */
float lt_mp_float(const lt_mpv *v);
int lt_mp_is(const lt_mpv *k, const char *s);
int lt_mp_is_number(const lt_mpv *v);
int lt_mp_open(lt_mp *mp, const uint8_t *buf, size_t len, lt_mpv *v,
    lt_err *err);
void lt_mp_key(lt_mp *mp, lt_mpv *k);
int lt_mp_read(lt_mp *mp, lt_mpv *v);
int lt_mp_skip(lt_mp *mp, int depth, lt_err *err);
const char *lt_mp_type_name(int type);
int64_t lt_sext(uint64_t n, int bytes);

/* lt_codec_dec.c: names, shapes, dtypes, allocation for both decoders */
int lt_body_finite(const lt_body *b, lt_err *err);
void lt_convert(float *out, const uint8_t *p, uint64_t numel,
    const lt_dtype *dt);
float *lt_dec_alloc(lt_dec *d, uint64_t numel);
int lt_dec_dims_error(lt_dec *d, int ndim);
void lt_dec_name(lt_dec *d, const uint8_t *s, size_t n);
int lt_dec_scalar_error(lt_dec *d);
void lt_dec_set(lt_tensor *t, float *data, int ndim,
    const uint64_t *dims);
int lt_dec_shape(lt_dec *d, int ndim, const uint64_t *dims,
    uint64_t *numel);
int lt_dtype_error(lt_dec *d, int numpy, const uint8_t *s, size_t n);
const lt_dtype *lt_dtype_find(const uint8_t *s, size_t n);
void lt_fmt_shape(char *buf, size_t size, int ndim, const uint64_t *dims);
uint64_t lt_mul_sat(uint64_t a, uint64_t b);

/* lt_codec_mp.c: MessagePack tensors and bodies */
int lt_mp_tensor(lt_dec *d, lt_mp *mp, lt_tensor *t, int *integer,
    lt_encoding *enc);

/* lt_codec_json.c: JSON: pre-scan, bounded cJSON parse, tensors */
cJSON *lt_json_parse(const uint8_t *buf, size_t len, size_t max_elements,
    lt_err *err);
int lt_json_tensor(lt_dec *d, const cJSON *j, lt_tensor *t, int *integer);
const char *lt_json_type_name(const cJSON *j);
int lt_json_validate(const uint8_t *buf, size_t len, lt_err *err);

#endif /* LT_CODEC_INT_H */
