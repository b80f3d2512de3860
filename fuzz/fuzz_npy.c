/*
 * fuzz_npy.c: libFuzzer target for the dataset readers (lt_npy.c,
 * lt_npz.c).  Each input is read as an .npy and as an .npz whose x and y
 * members are extracted (at most 1 MB each) and read as .npy; ASan and
 * UBSan catch any read outside the input.  mk/jobs.mk builds and runs it
 * (make fuzz-npy, and make fuzz-quick).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lt_npy.h"


static void
read_npy(const uint8_t *buf, size_t len)
{
    float        *f;
    lt_err        err;
    lt_npy_info   info;

    if (lt_npy_parse(buf, len, &info, &err) != 0) {
        return;
    }

    if (info.numel > (1 << 18)) {
        return;
    }

    f = malloc((size_t) (info.numel ? info.numel : 1) * sizeof(float));
    if (f != NULL) {
        (void) lt_npy_to_float(&info, buf, f, &err);
        free(f);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t        *m;
    lt_err          err;
    lt_npz_member   mem;
    const char     *names[2] = { "x", "y" };
    int             i;

    read_npy(data, size);

    for (i = 0; i < 2; i++) {
        if (lt_npz_find(data, size, names[i], &mem, &err) != 0
            || mem.usize > (1 << 20))
        {
            continue;
        }

        m = malloc(mem.usize ? mem.usize : 1);
        if (m == NULL) {
            continue;
        }

        if (lt_npz_extract(data, size, &mem, m, &err) == 0) {
            read_npy(m, mem.usize);
        }

        free(m);
    }

    return 0;
}
