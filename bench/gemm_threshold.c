/*
 * gemm_threshold.c: where the CPU backend's plain-loop product stops
 * beating cblas_sgemm/sgemv (LT_CPU_SMALL_GEMM in lt_cpu_gemm.c), and
 * what the column panels gain over one sgemm call for a few rows
 * against a wide transposed B (LT_CPU_PANEL_MAX_ROWS).
 *
 * It includes the product's source to time its static loop directly.
 * For shapes a small net's forward and backward pass produce, it prints
 * m*n*k, ns per product for the loop and for the BLAS call the backend
 * would make instead, and which is faster.  Then, for the Linear
 * forward of a small batch on a 1024-wide layer, us per product in
 * panels and in one call.  Single-threaded OpenBLAS.
 */
#include <stdio.h>
#include <time.h>

#include "../src/core/lt_cpu_gemm.c"


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}


/* the backend's large path: gemv for one row or column, else sgemm */
static void
blas_gemm(int ta, int tb, int m, int n, int k, const float *a, int lda,
    const float *b, int ldb, float *c, int ldc)
{
    if (!lt_cpu_gemv(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc)) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                    tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda,
                    b, ldb, 0.0f, c, ldc);
    }
}


/* ns per call, best of 5 runs */
static double
time_one(int blas, int ta, int tb, int m, int n, int k, float *a, float *b,
    float *c)
{
    double  t, best;
    long    i, iters;
    int     r, lda, ldb;

    lda = ta ? m : k;
    ldb = tb ? k : n;
    iters = 2000000 / (m * n * k + 50) + 10;
    best = 1e30;

    for (r = 0; r < 5; r++) {
        t = now();
        for (i = 0; i < iters; i++) {
            if (blas) {
                blas_gemm(ta, tb, m, n, k, a, lda, b, ldb, c, n);
            } else {
                lt_cpu_gemm_small(ta, tb, m, n, k, 1.0f, a, lda, b, ldb,
                                  0.0f, c, n);
            }
        }
        t = (now() - t) / (double) iters;
        best = t < best ? t : best;
    }

    return best * 1e9;
}


/* us per m x n x k product (A row-major, B transposed), best of 5 runs
 * of ~20 ms each, in panels or in one sgemm call */
static double
time_panels(int panels, int m, int n, int k, const float *a,
    const float *b, float *c)
{
    double  t, best;
    long    i, iters;
    int     r;

    iters = (long) (2e8 / ((double) m * n * k)) + 1;
    best = 1e30;

    for (r = 0; r < 5; r++) {
        t = now();
        for (i = 0; i < iters; i++) {
            if (panels) {
                lt_cpu_gemm_panels(m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k,
                            1.0f, a, k, b, k, 0.0f, c, n);
            }
        }
        t = (now() - t) / (double) iters;
        best = t < best ? t : best;
    }

    return best * 1e6;
}


static void
print_panels(const float *a, float *b, float *c)
{
    static const int  rows[] = { 2, 4, 8, 16, 24, 32, 40, 48, 64 };
    static const int  inner[] = { 784, 1024 };
    double            one, cut;
    size_t            r, q;

    printf("\ncolumn panels, m x 1024 x k, A row-major, B transposed "
           "(panels %s in lt_cpu_gemm here)\n",
           lt_cpu_gemm_panels_on() ? "on" : "off");
    printf("%4s %5s %10s %10s %8s %8s\n", "m", "k", "sgemm_us", "panels_us",
           "speedup", "GFLOP/s");

    for (q = 0; q < sizeof(inner) / sizeof(inner[0]); q++) {
        for (r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
            one = time_panels(0, rows[r], 1024, inner[q], a, b, c);
            cut = time_panels(1, rows[r], 1024, inner[q], a, b, c);
            printf("%4d %5d %10.1f %10.1f %7.2fx %8.1f\n", rows[r],
                   inner[q], one, cut, one / cut,
                   2e-3 * rows[r] * 1024 * inner[q] / (one < cut ? one : cut));
        }
    }
}


int
main(void)
{
    /* m, n, k, trans_a, trans_b: forward (NT), dX (NN), dW (TN) */
    static const int  shapes[][5] = {
        { 1, 20, 2, 0, 1 }, { 1, 1, 20, 0, 1 }, { 20, 2, 1, 1, 0 },
        { 4, 16, 2, 0, 1 }, { 16, 4, 2, 1, 0 }, { 1, 16, 16, 0, 1 },
        { 1, 16, 16, 0, 0 }, { 16, 16, 1, 1, 0 }, { 4, 16, 8, 0, 1 },
        { 16, 8, 4, 1, 0 }, { 4, 8, 16, 0, 0 }, { 2, 32, 16, 0, 1 },
        { 8, 16, 8, 0, 1 }, { 1, 64, 64, 0, 1 }, { 16, 16, 16, 0, 1 },
        { 8, 32, 16, 0, 0 }, { 32, 16, 8, 1, 0 }, { 1, 10, 256, 0, 1 },
        { 10, 256, 1, 1, 0 }, { 16, 32, 32, 0, 1 }, { 32, 32, 16, 1, 0 },
        { 32, 64, 64, 0, 1 }, { 64, 64, 32, 1, 0 }, { 64, 64, 64, 0, 0 }
    };
    /* b holds the 1024 x 1024 weights of the panel table */
    static float  a[65536], b[1048576], c[65536];
    double        loop, blas;
    size_t        s, i;

    openblas_set_num_threads(1);
    for (i = 0; i < 1048576; i++) {
        b[i] = (float) (i % 7) * 0.1f;
        if (i < 65536) {
            a[i] = b[i];
        }
    }

    printf("%6s %4s %4s %4s %2s %9s %9s  %s\n", "m*n*k", "m", "n", "k", "op",
           "loop_ns", "blas_ns", "faster");

    for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        const int  *p = shapes[s];

        loop = time_one(0, p[3], p[4], p[0], p[1], p[2], a, b, c);
        blas = time_one(1, p[3], p[4], p[0], p[1], p[2], a, b, c);
        printf("%6d %4d %4d %4d %c%c %9.1f %9.1f  %s\n", p[0] * p[1] * p[2],
               p[0], p[1], p[2], p[3] ? 'T' : 'N', p[4] ? 'T' : 'N', loop,
               blas, loop < blas ? "loop" : "blas");
    }

    print_panels(a, b, c);

    return 0;
}
