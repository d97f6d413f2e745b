/* Matrix products split over ember's pool: each part is one single-threaded product on a
 * block of the output: ember's own kernel for float32 on CPUs with AVX-512 (sgemm.c), else
 * the cblas_sgemm / cblas_dgemm of NumPy's OpenBLAS.
 *
 * Why: on the workloads' shapes, OpenBLAS's own two threads run a product only 1.1-1.4x
 * faster than one (W1's (128, 784) @ (784, 512): 1.24 -> 0.93 ms), PyTorch's 2.0-2.3x
 * (0.41 ms); the two halves as two single-threaded calls side by side take 0.56 ms.
 *
 * A stack of products (a batch of matrices) is split by whole matrices; one product is split
 * by rows of the output when it has at least half as many rows as columns, else by columns
 * (each part reads all of one operand and its share of the other, so the parts pack part of
 * the memory twice). Measured (two threads, min of 400 interleaved calls): W1's first weight
 * gradient (512 x 784, K = 128) 0.369 ms by rows against 0.455 by columns, while (128 x 512,
 * K = 1024) and (128 x 512, K = 784) stay faster by columns (0.541 against 0.569, 0.463
 * against 0.526), hence 2 m >= n rather than m >= n: W1's step 4.24 -> 4.01 ms (6
 * interleaved rounds), W4's and W5's unchanged. Column blocks are multiples of 16, the vector
 * width of the kernels.
 */

#include <stddef.h>
#include <stdint.h>

#include "native.h"

struct gemm {
    const void *fn;          /* cblas_?gemm */
    int64_t ilp64, f64;      /* 64-bit integers; double instead of float */
    int64_t ta, tb;          /* A, B stored transposed (CblasTrans) */
    int64_t m, n, k, batch, inner;       /* batch = outer * inner matrices */
    const char *a, *b;
    char *c;
    int64_t lda, ldb, ldc;               /* leading dims, in elements */
    int64_t sa[2], sb[2], sc[2];         /* outer and inner batch strides, in bytes */
    double alpha, beta;
    const char *bias;                    /* n values added to every row of C, or NULL */
    int64_t relu;                        /* then C = max(C, 0) (NaN kept) */
    int64_t parts, by;                   /* by: 0 whole matrices, 1 rows, 2 columns */
};

/* One single-threaded cblas_?gemm call (native.h). */
void ember_blas(const struct ember_blas *f, int64_t ta, int64_t tb, int64_t m, int64_t n,
                int64_t k, double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                double beta, void *c, int64_t ldc)
{
    int t_a = ta ? 112 : 111, t_b = tb ? 112 : 111;  /* CblasTrans : CblasNoTrans */
    if (f->f64) {
        if (f->ilp64)
            ((dgemm_ilp64_fn)f->fn)(101, t_a, t_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
                                    ldc);
        else
            ((dgemm_lp64_fn)f->fn)(101, t_a, t_b, (int)m, (int)n, (int)k, alpha, a, (int)lda,
                                   b, (int)ldb, beta, c, (int)ldc);
    } else {
        if (f->ilp64)
            ((sgemm_ilp64_fn)f->fn)(101, t_a, t_b, m, n, k, (float)alpha, a, lda, b, ldb,
                                    (float)beta, c, ldc);
        else
            ((sgemm_lp64_fn)f->fn)(101, t_a, t_b, (int)m, (int)n, (int)k, (float)alpha, a,
                                   (int)lda, b, (int)ldb, (float)beta, c, (int)ldc);
    }
}

/* Products of at most this many multiply-adds with n a multiple of 32 (float32, b not
 * transposed, alpha 1, beta 0) take ember_small_sgemm: a BLAS call costs a few microseconds
 * before it computes (checks, packing), more than such a product itself. */
#define SMALL_PRODUCT (1 << 19)

/* c[i][j] += bias[j] for the m x n block at c, after a product that did not add it. */
static void add_bias(const struct gemm *g, int64_t m, int64_t n, char *c, const char *bias)
{
    for (int64_t i = 0; i < m; i++)
        if (g->f64) {
            double *row = (double *)c + i * g->ldc;
            for (int64_t j = 0; j < n; j++)
                row[j] += ((const double *)bias)[j];
        } else {
            float *row = (float *)c + i * g->ldc;
            for (int64_t j = 0; j < n; j++)
                row[j] += ((const float *)bias)[j];
        }
}

/* c[i][j] = 0 where c[i][j] <= 0 (relu.c's forward: NaN stays) for the m x n block at c. */
static void relu_block(const struct gemm *g, int64_t m, int64_t n, char *c)
{
    for (int64_t i = 0; i < m; i++)
        if (g->f64) {
            double *row = (double *)c + i * g->ldc;
            for (int64_t j = 0; j < n; j++)
                row[j] = row[j] <= 0 ? 0.0 : row[j];
        } else {
            float *row = (float *)c + i * g->ldc;
            for (int64_t j = 0; j < n; j++)
                row[j] = row[j] <= 0 ? 0.0f : row[j];
        }
}

/* One block: m x n of C from a, b (bias: its n values, or NULL; then ReLU if g->relu). */
static void call(const struct gemm *g, int64_t m, int64_t n, const char *a, const char *b,
                 char *c, const char *bias)
{
    if (!g->f64 && !g->tb && n % 32 == 0 && m * n * g->k <= SMALL_PRODUCT && g->alpha == 1.0
        && g->beta == 0.0) {
        ember_small_sgemm(g->ta, m, n, g->k, (const float *)a, g->lda, (const float *)b,
                          g->ldb, (float *)c, g->ldc);
    } else if (g->f64 || ember_sgemm(g->ta, g->tb, m, n, g->k, (float)g->alpha,
                                     (const float *)a, g->lda, (const float *)b, g->ldb,
                                     (float)g->beta, (float *)c, g->ldc,
                                     (const float *)bias, g->relu) != 0) {
        struct ember_blas f = {g->fn, g->ilp64, g->f64};
        ember_blas(&f, g->ta, g->tb, m, n, g->k, g->alpha, a, g->lda, b, g->ldb, g->beta, c,
                   g->ldc);
    } else {
        return;                                  /* ember_sgemm added the bias, ReLU */
    }
    if (bias)
        add_bias(g, m, n, c, bias);
    if (g->relu)
        relu_block(g, m, n, c);
}

static void gemm_part(void *arg, int64_t p)
{
    const struct gemm *g = arg;
    int64_t lo, hi, size = g->f64 ? 8 : 4;
    if (g->by == 0) {
        ember_share(g->batch, 1, g->parts, p, &lo, &hi);
        for (int64_t i = lo; i < hi; i++) {
            int64_t o = i / g->inner, j = i % g->inner;
            call(g, g->m, g->n, g->a + o * g->sa[0] + j * g->sa[1],
                 g->b + o * g->sb[0] + j * g->sb[1], g->c + o * g->sc[0] + j * g->sc[1],
                 g->bias);
        }
    } else if (g->by == 1) {                     /* rows lo..hi of C: rows of op(A) */
        ember_share(g->m, 1, g->parts, p, &lo, &hi);
        if (hi > lo)
            call(g, hi - lo, g->n, g->a + lo * size * (g->ta ? 1 : g->lda), g->b,
                 g->c + lo * size * g->ldc, g->bias);
    } else {                                     /* columns lo..hi of C: columns of op(B) */
        ember_share(g->n, 16, g->parts, p, &lo, &hi);
        if (hi > lo)
            call(g, g->m, hi - lo, g->a, g->b + lo * size * (g->tb ? g->ldb : 1),
                 g->c + lo * size, g->bias ? g->bias + lo * size : NULL);
    }
}

/* C[o, i] = alpha op(A[o, i]) op(B[o, i]) + beta C[o, i] (+ bias, n values, on every row
 * unless NULL; then ReLU if relu) for o < outer, i < inner, row-major matrices at the given byte strides (s*0
 * outer, s*1 inner), split `parts` ways (`by`: 1 or 2 forces rows or columns for one matrix,
 * else chosen as above). */
void ember_gemm(const void *fn, int64_t ilp64, int64_t f64, int64_t ta, int64_t tb, int64_t m,
                int64_t n, int64_t k, int64_t outer, int64_t inner,
                const void *a, int64_t lda, int64_t sa0, int64_t sa1,
                const void *b, int64_t ldb, int64_t sb0, int64_t sb1,
                void *c, int64_t ldc, int64_t sc0, int64_t sc1,
                double alpha, double beta, const void *bias, int64_t relu, int64_t parts,
                int64_t by)
{
    int64_t batch = outer * inner;
    struct gemm g = {fn, ilp64, f64, ta, tb, m, n, k, batch, inner, a, b, c, lda, ldb, ldc,
                     {sa0, sa1}, {sb0, sb1}, {sc0, sc1}, alpha, beta, bias, relu, parts, 0};
    if (batch >= parts)
        g.by = 0;
    else if (batch > 1)
        g.parts = batch;                         /* a few matrices: one part each */
    else
        g.by = by == 1 || by == 2 ? by : (2 * m >= n ? 1 : 2);
    ember_parallel(gemm_part, &g, g.parts);
}
