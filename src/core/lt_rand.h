/*
 * splitmix64: tiny, fast, and the same stream on every platform.  The
 * model's initialisation draws from it (lt_model.c), and so do the tests
 * and benchmarks that need reproducible data: one copy.
 */
#ifndef LT_RAND_H
#define LT_RAND_H

#include <stdint.h>

static inline uint64_t
lt_splitmix64(uint64_t *state)
{
    uint64_t  z;

    z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}

/* uniform in [0, 1): the 24 random bits a float holds */
static inline float
lt_rand_unit(uint64_t *state)
{
    return (float) (lt_splitmix64(state) >> 40) * (1.0f / 16777216.0f);
}

#endif
