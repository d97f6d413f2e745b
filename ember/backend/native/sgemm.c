/* ember's own float32 matrix product for CPUs with AVX-512: one block of C on the calling
 * thread (gemm.c splits a product into blocks over the pool and calls this per block).
 *
 * Why: NumPy's OpenBLAS (its SkylakeX kernels) reaches 120-150 GFLOP/s a core on the
 * workloads' products on this project's VM, whose core peaks at ~172 (two 512-bit FMAs a
 * cycle); PyTorch's MKL reaches 150-175. The register kernel below runs at ~169 on packed
 * data, so what decides the product's speed is how cheaply the operands are packed.
 *
 * Layout (the usual blocking, sized for this VM's 48 KB L1 and 2 MB L2 a core): K is cut
 * into equal chunks of at most KC = 256, the rows of op(A) into blocks of at most MC = 768.
 * For each (K chunk, row block) the block of op(A) is packed in tiles of MR = 12 rows,
 * [k][12], into a buffer that stays in L2; then for each 32 columns of op(B) the panel is
 * packed [k][32] (zeros past the last column) into a 32 KB buffer that stays in L1, and the
 * kernel multiplies every tile of the block with it: 12 x 32 sums in 24 registers, per k two
 * loads of B, 12 broadcasts of A and 24 FMAs. Transposed operands are packed with 16 x 16
 * in-register transposes. Measured (one thread, best of 5 rounds of 40 calls, PyTorch's MKL
 * in the same process): reading B straight from the operand instead (NN, TN: 1-7% slower),
 * one packed B block in L2 with 12-row A tiles in L1 (NT 4-8% slower), prefetching the next
 * B panel during the last tile (no change).
 *
 * The bias (one float per column of C, or NULL) is added to every row after the product: a
 * linear layer's forward in one pass; with relu set, ReLU follows it (a linear layer and the
 * ReLU after it, nn.Sequential's fused pair). Returns 0 when done, 1 when a work buffer could not be
 * allocated, 2 when this build has no AVX-512 (the caller then uses BLAS). The buffers are
 * per thread and kept between calls.
 */

#include <stdint.h>
#include <stdlib.h>

#include "native.h"

#ifdef __AVX512F__
#include <immintrin.h>

#define MR 12
#define NR 32
#define KC 256
#define MC 768
#define NB 1024

/* MC x KC, KC x NR and KC x NB floats, 64-byte aligned */
static __thread float *block_a, *panel_b, *block_b;

/* floats, 64-byte aligned (posix_memalign: aligned_alloc is C11, these files are gnu99) */
static float *floats(size_t count)
{
    void *p = NULL;
    return posix_memalign(&p, 64, count * sizeof(float)) == 0 ? p : NULL;
}

static inline __mmask16 lanes(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* 16 x 16 transpose in registers: r[i] holds row i; afterwards r[j] holds column j. */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
        __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* r[4q + s], 128-bit lane L: rows 4q..4q+3 of column 4L + s */
    for (int q = 0; q < 2; q++)
        for (int s = 0; s < 4; s++) {
            __m512 a = r[8 * q + s], b = r[8 * q + 4 + s];
            t[8 * q + s] = _mm512_shuffle_f32x4(a, b, 0x88);
            t[8 * q + 4 + s] = _mm512_shuffle_f32x4(a, b, 0xdd);
        }
    for (int s = 0; s < 8; s++) {
        r[s] = _mm512_shuffle_f32x4(t[s], t[8 + s], 0x88);
        r[8 + s] = _mm512_shuffle_f32x4(t[s], t[8 + s], 0xdd);
    }
}

/* The first 16 columns (`cols` lanes of them read) of up to 16 rows of a row-major matrix,
 * transposed into r: r[kk] lane i = x[i][kk]; rows past `rows` read as zeros. */
static inline __attribute__((always_inline)) void load_transposed(
    __m512 r[16], const float *x, int64_t ld, int64_t rows, __mmask16 cols)
{
    for (int i = 0; i < 16; i++)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(cols, x + i * ld) : _mm512_setzero_ps();
    transpose16(r);
}

/* mr rows of op(A) over kc: ap[k * mr + i] = op(A)[i][k]. op(A) = a (m x k, lda) or, when
 * ta, the transpose of a (k x m, lda). */
static void pack_a(int64_t ta, int64_t mr, int64_t kc, const float *a, int64_t lda, float *ap)
{
    __mmask16 rows = lanes(mr);
    if (ta) {
        for (int64_t k = 0; k < kc; k++)
            _mm512_mask_storeu_ps(ap + k * mr, rows, _mm512_maskz_loadu_ps(rows, a + k * lda));
        return;
    }
    for (int64_t k0 = 0; k0 < kc; k0 += 16) {
        int64_t kr = kc - k0 < 16 ? kc - k0 : 16;
        __m512 r[16];
        load_transposed(r, a + k0, lda, mr, lanes(kr));
        for (int64_t kk = 0; kk < kr; kk++)
            _mm512_mask_storeu_ps(ap + (k0 + kk) * mr, rows, r[kk]);
    }
}

/* One panel of nr <= 32 columns of op(B) over kc: bp[k * 32 + j], zeros for j >= nr. op(B)
 * = b (k x n, ldb) or, when tb, the transpose of b (n x k, ldb). */
static void pack_b(int64_t tb, int64_t nr, int64_t kc, const float *b, int64_t ldb, float *bp)
{
    if (!tb) {
        __mmask16 lo = lanes(nr), hi = lanes(nr - 16);
        for (int64_t k = 0; k < kc; k++) {
            _mm512_store_ps(bp + k * NR, _mm512_maskz_loadu_ps(lo, b + k * ldb));
            _mm512_store_ps(bp + k * NR + 16, _mm512_maskz_loadu_ps(hi, b + k * ldb + 16));
        }
        return;
    }
    for (int64_t k0 = 0; k0 < kc; k0 += 16) {
        int64_t kr = kc - k0 < 16 ? kc - k0 : 16;
        for (int h = 0; h < 2; h++) {
            __m512 r[16];
            load_transposed(r, b + 16 * h * ldb + k0, ldb, nr - 16 * h, lanes(kr));
            for (int64_t kk = 0; kk < kr; kk++)
                _mm512_store_ps(bp + (k0 + kk) * NR + 16 * h, r[kk]);
        }
    }
}

/* c[0..mr)[0..32) (columns masked by lo, hi) = alpha A B + (first ? beta c : c), plus
 * bias[0..32) on every row when bias is given (the last K chunk: the same rounding as adding
 * it to the finished product), then ReLU when relu is set (the last K chunk too: values <= 0
 * become 0, NaN stays, as relu.c's forward). A[i][k] is ap[i * a_row + k * a_k] (packed: 1, mr; in place:
 * lda, 1); the B panel is packed, [k][32]. */
static inline __attribute__((always_inline)) void kernel(
    int mr, int64_t kc, const float *ap, int64_t a_row, int64_t a_k, const float *bp, float *c,
    int64_t ldc, float alpha, float beta, int first, const float *bias, int relu, __mmask16 lo,
    __mmask16 hi)
{
    __m512 acc[MR][2];
    for (int i = 0; i < mr; i++)
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
        for (int i = 0; i < mr; i++) {
            __m512 a = _mm512_set1_ps(ap[i * a_row]);
            acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
        }
        ap += a_k;
        bp += NR;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta), bias0, bias1;
    if (bias) {
        bias0 = _mm512_maskz_loadu_ps(lo, bias);
        bias1 = _mm512_maskz_loadu_ps(hi, bias + 16);
    }
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        __m512 r0 = _mm512_mul_ps(acc[i][0], va), r1 = _mm512_mul_ps(acc[i][1], va);
        if (!first) {
            r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(lo, ci));
            r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(hi, ci + 16));
        } else if (beta != 0.0f) {               /* beta 0 never reads C (it may hold NaN) */
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(lo, ci), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(hi, ci + 16), r1);
        }
        if (bias) {
            r0 = _mm512_add_ps(r0, bias0);
            r1 = _mm512_add_ps(r1, bias1);
        }
        if (relu) {
            __m512 zero = _mm512_setzero_ps();
            r0 = _mm512_mask_mov_ps(r0, _mm512_cmp_ps_mask(r0, zero, _CMP_LE_OQ), zero);
            r1 = _mm512_mask_mov_ps(r1, _mm512_cmp_ps_mask(r1, zero, _CMP_LE_OQ), zero);
        }
        _mm512_mask_storeu_ps(ci, lo, r0);
        _mm512_mask_storeu_ps(ci + 16, hi, r1);
    }
}

/* The kernel with mr a constant, so that its loops unroll and its sums stay in registers:
 * on a packed tile of A (kernel_packed) or on A's rows where they are (kernel_in_place). */
#define ROWS_SWITCH(CASE)                                                              \
    switch (mr) {                                                                      \
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6)                                    \
    CASE(7) CASE(8) CASE(9) CASE(10) CASE(11) CASE(12)                                 \
    }
#define PACKED(R)                                                                      \
    case R:                                                                            \
        kernel(R, kc, ap, 1, R, bp, c, ldc, alpha, beta, first, bias, relu, lo, hi);   \
        break;
#define IN_PLACE(R)                                                                    \
    case R:                                                                            \
        kernel(R, kc, ap, lda, 1, bp, c, ldc, alpha, beta, first, bias, relu, lo, hi); \
        break;

static void kernel_packed(int mr, int64_t kc, const float *ap, const float *bp, float *c,
                          int64_t ldc, float alpha, float beta, int first, const float *bias,
                          int relu, __mmask16 lo, __mmask16 hi)
{
    ROWS_SWITCH(PACKED)
}

static void kernel_in_place(int mr, int64_t kc, const float *ap, int64_t lda, const float *bp,
                            float *c, int64_t ldc, float alpha, float beta, int first,
                            const float *bias, int relu, __mmask16 lo, __mmask16 hi)
{
    ROWS_SWITCH(IN_PLACE)
}
#undef PACKED
#undef IN_PLACE
#undef ROWS_SWITCH

/* For few columns (2 n <= m): each K chunk of op(B) packed whole (up to NB columns at a
 * time, in L2), then per tile of 12 rows of op(A) every panel. A's rows are read where they
 * are (packing op(A) costs a 16 x 16 transpose per 256 elements, against only 2 n
 * multiply-adds per element here); a transposed A is copied into a tile first (its 12 values
 * per k lie a row apart, and rows a power of two apart share L1's sets). Measured (one
 * thread, against packing A as above): (1024, 512) @ (512, 128) 1.17 -> 1.09x MKL's time,
 * (1024, 512) @ (128, 512)^T 1.11 -> 1.04x. */
static int b_resident(int64_t ta, int64_t tb, int64_t m, int64_t n, int64_t k, int64_t kc_max,
                      float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                      float beta, float *c, int64_t ldc, const float *bias, int relu)
{
    if (!block_b && !(block_b = floats((size_t)KC * NB)))
        return 1;
    for (int64_t j0 = 0; j0 < n; j0 += NB) {
        int64_t nc = n - j0 < NB ? n - j0 : NB;
        for (int64_t p0 = 0; p0 < k; p0 += kc_max) {
            int64_t kc = k - p0 < kc_max ? k - p0 : kc_max;
            for (int64_t jr = 0; jr < nc; jr += NR) {
                int64_t col = j0 + jr;
                pack_b(tb, nc - jr < NR ? nc - jr : NR, kc,
                       tb ? b + col * ldb + p0 : b + p0 * ldb + col, ldb, block_b + jr * kc);
            }
            for (int64_t i0 = 0; i0 < m; i0 += MR) {
                int mr = m - i0 < MR ? (int)(m - i0) : MR;
                const float *ap = ta ? a + p0 * lda + i0 : a + i0 * lda + p0;
                if (ta)
                    pack_a(1, mr, kc, ap, lda, block_a);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    int64_t nr = nc - jr, col = j0 + jr;
                    float *cj = c + i0 * ldc + col;
                    int last = p0 + kc == k;
                    const float *bj = block_b + jr * kc, *bias_j = bias && last ? bias + col :
                                                                                  NULL;
                    if (ta)
                        kernel_packed(mr, kc, block_a, bj, cj, ldc, alpha, beta, p0 == 0,
                                      bias_j, relu && last, lanes(nr), lanes(nr - 16));
                    else
                        kernel_in_place(mr, kc, ap, lda, bj, cj, ldc, alpha, beta, p0 == 0,
                                        bias_j, relu && last, lanes(nr), lanes(nr - 16));
                }
            }
        }
    }
    return 0;
}

int64_t ember_sgemm_built(void)
{
    return 1;
}

int ember_sgemm(int64_t ta, int64_t tb, int64_t m, int64_t n, int64_t k, float alpha,
                const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                int64_t ldc, const float *bias, int64_t relu)
{
    if (m <= 0 || n <= 0 || k <= 0)
        return 2;
    if (!block_a) {
        block_a = floats((size_t)MC * KC);
        panel_b = floats((size_t)KC * NR);
        if (!block_a || !panel_b) {
            free(block_a);
            free(panel_b);
            block_a = panel_b = NULL;
            return 1;
        }
    }
    /* equal chunks: 784 = 4 x 196 rather than 3 x 256 + 16 */
    int64_t chunks = (k + KC - 1) / KC, kc_max = (k + chunks - 1) / chunks;
    if (2 * n <= m)
        return b_resident(ta, tb, m, n, k, kc_max, alpha, a, lda, b, ldb, beta, c, ldc, bias,
                          relu != 0);
    int64_t blocks = (m + MC - 1) / MC, mc_max = ((m + blocks - 1) / blocks + MR - 1) / MR * MR;
    for (int64_t p0 = 0; p0 < k; p0 += kc_max) {
        int64_t kc = k - p0 < kc_max ? k - p0 : kc_max;
        for (int64_t i0 = 0; i0 < m; i0 += mc_max) {
            int64_t mc = m - i0 < mc_max ? m - i0 : mc_max;
            for (int64_t ir = 0; ir < mc; ir += MR) {
                int64_t mr = mc - ir < MR ? mc - ir : MR, row = i0 + ir;
                pack_a(ta, mr, kc, ta ? a + p0 * lda + row : a + row * lda + p0, lda,
                       block_a + ir * kc);
            }
            for (int64_t jr = 0; jr < n; jr += NR) {
                int64_t nr = n - jr < NR ? n - jr : NR;
                pack_b(tb, nr, kc, tb ? b + jr * ldb + p0 : b + p0 * ldb + jr, ldb, panel_b);
                for (int64_t ir = 0; ir < mc; ir += MR) {
                    int mr = mc - ir < MR ? (int)(mc - ir) : MR;
                    kernel_packed(mr, kc, block_a + ir * kc, panel_b, c + (i0 + ir) * ldc + jr,
                                  ldc, alpha, beta, p0 == 0,
                                  bias && p0 + kc == k ? bias + jr : NULL,
                                  relu && p0 + kc == k, lanes(nr), lanes(nr - 16));
                }
            }
        }
    }
    return 0;
}

#else

int64_t ember_sgemm_built(void)
{
    return 0;
}

int ember_sgemm(int64_t ta, int64_t tb, int64_t m, int64_t n, int64_t k, float alpha,
                const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                int64_t ldc, const float *bias, int64_t relu)
{
    (void)ta; (void)tb; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b;
    (void)ldb; (void)beta; (void)c; (void)ldc; (void)bias; (void)relu;
    return 2;
}

#endif
