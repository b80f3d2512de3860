/*
 * lt_cpu_gemm.c: the CPU backend's matrix product, C = alpha op(A) op(B)
 * + beta C, row-major, routed by shape: plain loops for tiny products,
 * sgemv for a single row or column, OpenBLAS's sgemm in column panels
 * for a few rows against a wide transposed B (the Linear forward of a
 * small batch), and one sgemm call for the rest.
 */
/* The loops of the tiny products vectorize only with these (as in
 * lt_backend_cpu.c: nginx builds the module at -O2). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("tree-vectorize", "vect-cost-model=dynamic", \
                      "no-math-errno", \
                      "no-trapping-math")
#endif

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <cblas.h>

#include "lt_backend_cpu.h"

/*
 * Below this many multiply-adds (m * n * k) a plain loop beats the BLAS
 * call, whose dispatch and argument handling cost 20-100 ns whatever the
 * size; above it OpenBLAS's kernels win quickly (bench/gemm_threshold.c
 * measures both: at 40 MACs the loop takes ~17 ns against ~22 ns, at 256
 * MACs BLAS is ahead).  On the XOR net (2-20-1) the loops make the whole
 * train step 2.4x faster than BLAS calls do (180 ns against 430 ns).
 */
#define LT_CPU_SMALL_GEMM  128

/* Below this length a dot product costs more in loop overhead than the
 * strided alternative (see lt_cpu_gemm_small_bt). */
#define LT_CPU_SHORT_DOT   8

/* C = beta * C, reading nothing when beta is 0 (BLAS semantics: C may
 * hold garbage, even NaN, then). */
static void
lt_cpu_scale_rows(float *c, int ldc, int m, int n, float beta)
{
    float  *row;
    int     i, j;

    if (beta == 1.0f) {
        return;
    }

    for (i = 0; i < m; i++) {
        row = c + (size_t) i * ldc;

        for (j = 0; j < n; j++) {
            row[j] = beta == 0.0f ? 0.0f : beta * row[j];
        }
    }
}


/*
 * The small products, C += alpha * op(A) op(B) after C was scaled.  Row i
 * of op(A) is read at a + i * ai with stride as: the transpose only
 * changes those two numbers, so no branch sits inside the loops.
 */

/* op(B) = B: rows of B are contiguous, so accumulate scaled rows of B
 * into row i of C (the inner loop vectorizes). */
static void
lt_cpu_gemm_small_bn(int m, int n, int k, float alpha, const float *a,
    size_t ai, size_t as, const float *b, int ldb, float *c, int ldc)
{
    const float  *brow;
    float        *crow, aip;
    int           i, j, p;

    for (i = 0; i < m; i++) {
        crow = c + (size_t) i * ldc;

        for (p = 0; p < k; p++) {
            aip = alpha * a[i * ai + p * as];
            brow = b + (size_t) p * ldb;

            for (j = 0; j < n; j++) {
                crow[j] += aip * brow[j];
            }
        }
    }
}


/* A dot product in four independent sums: the adds overlap in the
 * pipeline where one running sum would wait on itself. */
static float
lt_cpu_dot(const float *x, size_t xs, const float *y, int k)
{
    float  s0, s1, s2, s3;
    int    p;

    s0 = s1 = s2 = s3 = 0.0f;

    for (p = 0; p + 4 <= k; p += 4) {
        s0 += x[p * xs] * y[p];
        s1 += x[(p + 1) * xs] * y[p + 1];
        s2 += x[(p + 2) * xs] * y[p + 2];
        s3 += x[(p + 3) * xs] * y[p + 3];
    }

    for ( ; p < k; p++) {
        s0 += x[p * xs] * y[p];
    }

    return (s0 + s1) + (s2 + s3);
}


/*
 * op(B) = B^T: column j of op(B) is row j of B.  For a long k each
 * element of C is a dot product over a contiguous row of B; for a short
 * one (a Linear with 2 inputs) the dot products are too short to pay for
 * their loop, and walking p outside with a strided j inside is faster.
 */
static void
lt_cpu_gemm_small_bt(int m, int n, int k, float alpha, const float *a,
    size_t ai, size_t as, const float *b, int ldb, float *c, int ldc)
{
    const float  *arow;
    float        *crow, aip;
    int           i, j, p;

    for (i = 0; i < m; i++) {
        arow = a + i * ai;
        crow = c + (size_t) i * ldc;

        if (k >= LT_CPU_SHORT_DOT) {
            for (j = 0; j < n; j++) {
                crow[j] += alpha * lt_cpu_dot(arow, as,
                                              b + (size_t) j * ldb, k);
            }
            continue;
        }

        for (p = 0; p < k; p++) {
            aip = alpha * arow[p * as];

            for (j = 0; j < n; j++) {
                crow[j] += aip * b[(size_t) j * ldb + p];
            }
        }
    }
}


static void
lt_cpu_gemm_small(int trans_a, int trans_b, int m, int n, int k,
    float alpha, const float *a, int lda, const float *b, int ldb,
    float beta, float *c, int ldc)
{
    size_t  ai, as;

    ai = trans_a ? 1 : (size_t) lda;
    as = trans_a ? (size_t) lda : 1;

    lt_cpu_scale_rows(c, ldc, m, n, beta);

    if (trans_b) {
        lt_cpu_gemm_small_bt(m, n, k, alpha, a, ai, as, b, ldb, c, ldc);

    } else {
        lt_cpu_gemm_small_bn(m, n, k, alpha, a, ai, as, b, ldb, c, ldc);
    }
}


/*
 * A product with one row or one column of output is a matrix-vector
 * product, and cblas_sgemv does it several times faster than
 * cblas_sgemm, which packs its operands for a blocked kernel first
 * (784x256 at batch 1: 9 us against 63 us).
 */
static int
lt_cpu_gemv(int trans_a, int trans_b, int m, int n, int k, float alpha,
    const float *a, int lda, const float *b, int ldb, float beta, float *c,
    int ldc)
{
    if (m == 1) {
        /* c[1, n] = a[1, k] op(B): op(B)^T times the vector a */
        cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans,
                    trans_b ? n : k, trans_b ? k : n, alpha, b, ldb,
                    a, trans_a ? lda : 1, beta, c, 1);
        return 1;
    }

    if (n == 1) {
        /* c[m, 1] = op(A) b[k, 1]: column c with stride ldc */
        cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_a ? k : m, trans_a ? m : k, alpha, a, lda,
                    b, trans_b ? 1 : ldb, beta, c, ldc);
        return 1;
    }

    return 0;
}



/*
 * The panel path.  OpenBLAS's AVX-512 builds (SkylakeX, Cooperlake,
 * SapphireRapids kernels) have a "small matrix" sgemm that reads both
 * operands in place; its normal sgemm first packs them, and for a few
 * rows of A against a large B the packing of B is most of the work.
 * 0.3.21 takes the small path for our layout (its column-major TN) only
 * when the product has at most 1,200 elements and 1e6 multiply-adds, so
 * a product of a few rows is cut into column panels that fit.  On the
 * AMD EPYC (Zen 5) VM, one thread, per product against one sgemm call
 * (make bench-gemm; bench/README.md, "Small batches on AVX-512"):
 *   m = 2 and 4:  5-8x faster;  m = 8:  3.2-4.1x;  m = 16:  1.7-2.3x;
 *   m = 24 to 32:  1.5-1.7x;  m = 40 to 48:  1.25-1.45x;  m = 64:
 *   1.0-1.2x.
 * An earlier timing found no gain from 40 rows, so the panels stop at
 * 32, the most a worker of the benchmarks batches anyway.  Builds
 * without that path (the AVX2 kernels, other BLAS) only lose by the
 * cut, up to 20%: a calibration at the first product tells them apart.
 */
#define LT_CPU_PANEL_CELLS     1200
#define LT_CPU_PANEL_MACS      1e6
#define LT_CPU_PANEL_MAX_ROWS  32
/* ... and it takes no product with a shorter inner dimension. */
#define LT_CPU_PANEL_MIN_K     32
/* The kernels store 16 floats at a time (one AVX-512 register). */
#define LT_CPU_PANEL_ALIGN     16

/* The calibration's product, its best of LT_CPU_PANEL_TRIES, and the
 * speedup that turns panels on: the small path measured 2.8x at this
 * shape, the AVX2 kernels 0.8x. */
#define LT_CPU_PANEL_TEST_M    8
#define LT_CPU_PANEL_TEST_N    256
#define LT_CPU_PANEL_TEST_K    512
#define LT_CPU_PANEL_TRIES     5
#define LT_CPU_PANEL_GAIN      1.5

static pthread_once_t  lt_cpu_panel_once = PTHREAD_ONCE_INIT;
static int             lt_cpu_panel_on;


/* Columns per panel for an m x n x k product, or 0 when no panel of a
 * useful width fits the small path. */
static int
lt_cpu_panel_width(int m, int n, int k)
{
    double  w, macs;

    w = LT_CPU_PANEL_CELLS / m;
    macs = LT_CPU_PANEL_MACS / ((double) m * k);

    if (macs < w) {
        w = macs;
    }

    w = (double) ((int) w & ~(LT_CPU_PANEL_ALIGN - 1));

    return w < LT_CPU_PANEL_ALIGN ? 0 : (w < n ? (int) w : n);
}


void
lt_cpu_gemm_panels(int m, int n, int k, float alpha, const float *a,
    int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    int  j, w, width;

    width = lt_cpu_panel_width(m, n, k);

    if (width == 0) {
        width = n;
    }

    for (j = 0; j < n; j += w) {
        w = n - j < width ? n - j : width;

        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, w, k, alpha,
                    a, lda, b + (size_t) j * ldb, ldb, beta, c + j, ldc);
    }
}


static double
lt_cpu_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec * 1e-9;
}


/*
 * Times one product both ways, interleaved, best of a few: about 1 ms,
 * once per process.  It allocates its operands and frees them (the only
 * allocation in the backend's ops); without memory panels stay off.
 */
static void
lt_cpu_panel_calibrate(void)
{
    float   *a, *b, *c;
    double   t, whole, panels;
    size_t   na, nb, nc, i;
    int      round;

    na = (size_t) LT_CPU_PANEL_TEST_M * LT_CPU_PANEL_TEST_K;
    nb = (size_t) LT_CPU_PANEL_TEST_N * LT_CPU_PANEL_TEST_K;
    nc = (size_t) LT_CPU_PANEL_TEST_M * LT_CPU_PANEL_TEST_N;

    a = malloc((na + nb + nc) * sizeof(float));
    if (a == NULL) {
        return;
    }

    b = a + na;
    c = b + nb;

    for (i = 0; i < na + nb; i++) {
        a[i] = (float) (i % 7) * 0.125f - 0.375f;
    }

    whole = panels = 1e9;

    for (round = 0; round < LT_CPU_PANEL_TRIES; round++) {
        t = lt_cpu_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                    LT_CPU_PANEL_TEST_M, LT_CPU_PANEL_TEST_N,
                    LT_CPU_PANEL_TEST_K, 1.0f, a, LT_CPU_PANEL_TEST_K,
                    b, LT_CPU_PANEL_TEST_K, 0.0f, c, LT_CPU_PANEL_TEST_N);
        t = lt_cpu_now() - t;
        whole = t < whole ? t : whole;

        t = lt_cpu_now();
        lt_cpu_gemm_panels(LT_CPU_PANEL_TEST_M, LT_CPU_PANEL_TEST_N,
                           LT_CPU_PANEL_TEST_K, 1.0f, a, LT_CPU_PANEL_TEST_K,
                           b, LT_CPU_PANEL_TEST_K, 0.0f, c,
                           LT_CPU_PANEL_TEST_N);
        t = lt_cpu_now() - t;
        panels = t < panels ? t : panels;
    }

    free(a);

    lt_cpu_panel_on = panels * LT_CPU_PANEL_GAIN <= whole;
}


int
lt_cpu_gemm_panels_on(void)
{
    pthread_once(&lt_cpu_panel_once, lt_cpu_panel_calibrate);

    return lt_cpu_panel_on;
}


void
lt_cpu_gemm(const lt_backend *be, int trans_a, int trans_b, int m, int n,
    int k, float alpha, const float *a, int lda, const float *b, int ldb,
    float beta, float *c, int ldc)
{
    if ((double) m * n * k < LT_CPU_SMALL_GEMM) {
        lt_cpu_gemm_small(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                          beta, c, ldc);
        return;
    }

    if (lt_cpu_gemv(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta,
                    c, ldc))
    {
        return;
    }

    if (!trans_a && trans_b && m <= LT_CPU_PANEL_MAX_ROWS
        && k >= LT_CPU_PANEL_MIN_K && lt_cpu_panel_width(m, n, k) < n
        && lt_cpu_gemm_panels_on())
    {
        lt_cpu_gemm_panels(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }

    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                a, lda, b, ldb, beta, c, ldc);
}
