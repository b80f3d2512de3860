/*
 * lt_codec.h: request and response bodies <-> tensors.
 *
 * Tensors arrive as MessagePack in one of three encodings (msgpack-numpy
 * map with str or bin keys, {"shape","dtype","data"} map, nested arrays
 * of numbers) or as JSON (nested arrays, or {"shape": [...], "data":
 * [...]}).  Every declared length is checked against the bytes left
 * before anything is allocated, and the tensors' memory comes from the
 * caller's allocator (an nginx pool, or malloc in tests and fuzzers):
 * at most 8 * len + 4096 bytes for a body of len bytes.  A decode
 * allocates nothing else, in either syntax: no tree, no malloc.
 */
#ifndef LT_CODEC_H
#define LT_CODEC_H

#include "lt_tensor.h"

typedef enum {
    LT_ENC_NUMPY = 0,           /* msgpack-numpy: nd/type/shape/data */
    LT_ENC_RAW,                 /* msgpack {"shape","dtype","data"} */
    LT_ENC_NESTED,              /* msgpack nested arrays */
    LT_ENC_JSON                 /* JSON */
} lt_encoding;

typedef struct {
    lt_tensor    x;
    lt_tensor    y;
    int          has_x;
    int          has_y;
    lt_encoding  enc;           /* encoding of x: the reply uses it */
    int          y_integer;     /* y arrived with an integer dtype */
} lt_body;

typedef struct {
    lt_alloc_fn  alloc;         /* all memory, never freed individually */
    void        *ctx;
    size_t       max_elements;  /* largest tensor accepted, 0: no limit */
    size_t       max_named;     /* most entries in a named map (weights),
                                   0: no limit; checked before allocating */
} lt_codec_ctx;

/* Decode a MessagePack body: a map with "x" (and "y"), or a bare tensor
 * (taken as x).  Keys may be str or bin.  Fails with a one-sentence
 * message on malformed input, trailing bytes, more than max_elements
 * elements in a tensor, more than 4 dimensions, nesting deeper than 32,
 * or a NaN or Inf in x or y ("x has a non-finite value (NaN or Inf) at
 * element 3": one such step would poison the model).  Tensor data is
 * always converted to float32 and copied once, aligned, into memory from
 * the allocator. */
int lt_codec_decode_msgpack(const lt_codec_ctx *c, const uint8_t *buf,
    size_t len, lt_body *out, lt_err *err);

/* The same for a JSON body (RFC 8259 strictly: no leading zeros, no byte
 * order mark, no \u0000 in strings; 1e999 is Inf and refused). */
int lt_codec_decode_json(const lt_codec_ctx *c, const uint8_t *buf,
    size_t len, lt_body *out, lt_err *err);

/* Encode {"y": tensor} in the given encoding (LT_ENC_JSON: JSON text;
 * NaN and Inf as null; floats with %.9g).  msgpack-numpy replies use bin
 * keys and "type": "<f4" so Python's msgpack_numpy returns an ndarray. */
int lt_codec_encode_tensor(const lt_codec_ctx *c, const char *key,
    const lt_tensor *t, lt_encoding enc, uint8_t **out, size_t *len,
    lt_err *err);

/* Encode {"loss": float, "step": int} (msgpack, or JSON when json). */
int lt_codec_encode_train(const lt_codec_ctx *c, double loss, int64_t step,
    int json, uint8_t **out, size_t *len, lt_err *err);

/* Encode a map name -> tensor (weight export), in enc. */
int lt_codec_encode_named(const lt_codec_ctx *c, int n,
    const char *const *names, const lt_tensor *tensors, lt_encoding enc,
    uint8_t **out, size_t *len, lt_err *err);

/* The same where ints[i], when ints and it are not NULL, holds tensor
 * i's values as int64 (tensors[i] gives only the shape): numpy "<i8",
 * "int64" in the raw form, integers in the nested and JSON forms. */
int lt_codec_encode_named_ints(const lt_codec_ctx *c, int n,
    const char *const *names, const lt_tensor *tensors,
    const int64_t *const *ints, lt_encoding enc, uint8_t **out, size_t *len,
    lt_err *err);

/* Decode a map name -> tensor (weight import).  *names and *tensors are
 * arrays of *n entries from the allocator; names are NUL-terminated.
 * JSON as in lt_codec_decode_json(); max_elements bounds each tensor;
 * values are not checked for NaN or Inf here. */
int lt_codec_decode_named(const lt_codec_ctx *c, const uint8_t *buf,
    size_t len, int json, int *n, char ***names, lt_tensor **tensors,
    lt_err *err);

/* A learn_feedback body: {"id": "<request id>", "y": label} or {"ids":
 * [...], "y": labels} (MessagePack or JSON; "kind" is ignored, any other
 * key refused).  A label may be a number (one id) or a tensor as in a
 * train body; it must be finite.  Ids are 1-64 printable ASCII bytes,
 * at most c->max_named of them (0: no limit), NUL-terminated copies from
 * the allocator. */
#define LT_FEEDBACK_ID_MAX  64

typedef struct {
    char       **ids;
    int          nids;
    int          batched;       /* "ids": y holds one row per id */
    lt_tensor    y;
    int          y_integer;
} lt_feedback;

int lt_codec_decode_feedback(const lt_codec_ctx *c, const uint8_t *buf,
    size_t len, int json, lt_feedback *out, lt_err *err);

/* Format a float for JSON: "%.9g", or "null" for NaN / Inf. */
int lt_json_float(char *buf, size_t size, double v);

/* One byte of a JSON string into out (room for 7): the byte, or its
 * escape; returns the length. */
size_t lt_json_char(char *out, unsigned char c);

#endif /* LT_CODEC_H */
