/* Declarations shared by ember's native sources. */
#ifndef EMBER_NATIVE_H
#define EMBER_NATIVE_H

#include <stdint.h>
#include <string.h>

/* One part of a split job: parts write disjoint memory and never wait for each other. */
typedef void (*ember_task)(void *ctx, int64_t part);

/* Run task(ctx, 0 .. parts-1) on the calling thread and up to parts-1 pool workers; returns
 * when every part is done. A part no worker has started when the caller finishes its own is
 * run by the caller, so a late worker never delays the call. Another call in flight (another
 * thread, or a task that splits again) makes this one run all its parts on the caller. */
void ember_parallel(ember_task task, void *ctx, int64_t parts);

/* cblas_sgemm / cblas_dgemm of the BLAS NumPy uses, by address (ilp64: 64-bit integers). */
typedef void (*sgemm_ilp64_fn)(int, int, int, int64_t, int64_t, int64_t, float, const float *,
                               int64_t, const float *, int64_t, float, float *, int64_t);
typedef void (*sgemm_lp64_fn)(int, int, int, int, int, int, float, const float *, int,
                              const float *, int, float, float *, int);
typedef void (*dgemm_ilp64_fn)(int, int, int, int64_t, int64_t, int64_t, double, const double *,
                               int64_t, const double *, int64_t, double, double *, int64_t);
typedef void (*dgemm_lp64_fn)(int, int, int, int, int, int, double, const double *, int,
                              const double *, int, double, double *, int);

/* [lo, hi) of `total` items for part p of `parts`: equal shares in whole multiples of `unit`
 * (a cache line of elements, say, so no two parts write one line), the last one cut at
 * `total`. */
static inline void ember_share(int64_t total, int64_t unit, int64_t parts, int64_t p,
                               int64_t *lo, int64_t *hi)
{
    int64_t units = (total + unit - 1) / unit;
    int64_t a = units * p / parts * unit, b = units * (p + 1) / parts * unit;
    *lo = a < total ? a : total;
    *hi = b < total ? b : total;
}

/* NumPy's cblas_sgemm (f64 = 0) or cblas_dgemm (f64 = 1), by address. */
struct ember_blas {
    const void *fn;
    int64_t ilp64, f64;
};

/* C = alpha op(A) op(B) + beta C, row-major, one single-threaded BLAS call (gemm.c). */
void ember_blas(const struct ember_blas *f, int64_t ta, int64_t tb, int64_t m, int64_t n,
                int64_t k, double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                double beta, void *c, int64_t ldc);

/* c (m, n) = op(a) (m, k) @ b (k, n) in float32, row-major, for n a multiple of 32, without
 * packing (kernels.c): op(a) = a, or a's transpose when ta (a stored (k, m), lda). For
 * products too small for BLAS's per-call work to pay (gemm.c). */
void ember_small_sgemm(int64_t ta, int64_t m, int64_t n, int64_t k, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc);

/* C = alpha op(A) op(B) + beta C (+ bias on every row unless NULL; then ReLU if relu) in
 * float32, row-major, on the calling thread with ember's AVX-512 kernel (sgemm.c): 0 done,
 * 1 out of memory, 2 not built for this CPU (use BLAS). */
int ember_sgemm(int64_t ta, int64_t tb, int64_t m, int64_t n, int64_t k, float alpha,
                const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                int64_t ldc, const float *bias, int64_t relu);

/* ---- float32 exp, written to vectorize (kernels.c's tanh and sigmoid, xent.c's softmax) - */

/* e**y - 1 and e**y for y in [-87, 0] (what tanh_f32 and sigmoid_f32 ask for): y = n ln2 + r
 * with |r| <= ln2/2, e**r - 1 by its Taylor series to r**7 (truncation < 2e-8 relative), 2**n
 * put into the exponent bits, e**y - 1 = 2**n (e**r - 1) + (2**n - 1) (no cancellation at
 * n = 0, where it matters). n is rounded by adding and subtracting 1.5 * 2**23 (exact for
 * |n| < 2**22), which the compiler keeps as written (no -ffast-math). */
static inline float expm1_neg_f32(float y, float *e)
{
    const float round_magic = 12582912.0f;
    y = y < -87.0f ? -87.0f : y;
    float n = (y * 1.44269504088896341f + round_magic) - round_magic;
    float r = y - n * 0.693145751953125f;       /* ln2, high part (exact product) */
    r = r - n * 1.428606820309417232e-6f;       /* ln2, low part */
    float q = 1.0f / 5040.0f;
    q = q * r + 1.0f / 720.0f;
    q = q * r + 1.0f / 120.0f;
    q = q * r + 1.0f / 24.0f;
    q = q * r + 1.0f / 6.0f;
    q = q * r + 0.5f;
    q = q * r + 1.0f;
    q = q * r;                                  /* e**r - 1 */
    int32_t bits = ((int32_t)n + 127) << 23;    /* n >= -126 here: a normal float */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    *e = scale * q + scale;
    return scale * q + (scale - 1.0f);
}

#endif
