/*
 * lt_job.h: the body of a dataset job request (learn_job_train,
 * learn_job_predict), in MessagePack or JSON:
 *
 *   {"files": ["d.npz"], "epochs": 5, "batch_size": 64, "shuffle": true,
 *    "validation": 0.1, "seed": 7}
 *
 * "files" (or the seed API's "Files") names one .npz or MessagePack file
 * holding x and y, or two .npy files, x then y; "x" and "y" may instead
 * each be a file name (a string) or an inline tensor (as in a train
 * body).  A predict job takes only the inputs, "batch_size" and
 * "output" (the .npy it writes).  Any other key is refused ("kind" is
 * ignored, as in every body: msgpack-numpy clients send it).
 */
#ifndef LT_JOB_H
#define LT_JOB_H

#include "lt_codec.h"

#define LT_JOB_FILES_MAX   2
#define LT_JOB_NAME_MAX    255

typedef struct {
    char        *files[LT_JOB_FILES_MAX];   /* NUL-terminated */
    int          nfiles;
    char        *x_file;                    /* "x": "a.npy" */
    char        *y_file;
    lt_tensor    x;                         /* "x": a tensor */
    lt_tensor    y;
    int          has_x;
    int          has_y;
    int          y_integer;
    lt_encoding  enc;                       /* of an inline x */
    int64_t      epochs;                    /* 0: not given */
    int64_t      batch_size;                /* 0: not given */
    int          shuffle;                   /* -1: not given */
    double       validation;                /* -1: not given */
    uint64_t     seed;
    int          has_seed;
    char        *output;                    /* predict: the file */
} lt_job_req;

/* Decode a job body (json: JSON, else MessagePack).  predict: the keys
 * of a predict job only.  Names are 1 to LT_JOB_NAME_MAX bytes without
 * a NUL byte; numbers are whole and positive where they count
 * something, validation is in [0, 1). */
int lt_codec_decode_job(const lt_codec_ctx *c, const uint8_t *buf,
    size_t len, int json, int predict, lt_job_req *out, lt_err *err);

#endif /* LT_JOB_H */
