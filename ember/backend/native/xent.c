/* cross_entropy's common case (class-index targets, no class weights, no label smoothing) as
 * one pass per direction over the rows of the logits x (M, C) (ops/loss.py, CrossEntropy).
 *
 * Why: the NumPy path is ~15 small calls forward and ~5 backward on a classifier's (128, 10)
 * logits, and its cost is the calls; here each direction is one call, on the calling thread
 * (a classifier's logits are a few KB: a split over the pool would cost more than it saves).
 * NOTE (measured, 2-core VM, (128, 10) float32, called from C, best of 9 x 10000 calls): the
 * forward 2.7-2.9 us (6.8 us with libm's expf in place of exp_nonpositive_f32), the backward
 * 0.5 us.
 *
 * Per row: m = max(x), p = exp(x - m) / s with s = sum(exp(x - m)), and the loss
 * log(s) - (x[t] - m); the sums and the loss run in double. A row whose target is ignore_index
 * adds 0 * (log(s) - (x[0] - m)) and is left out of the mean's count, as the NumPy path does
 * (so such a row gives NaN where s or x[0] is not finite; PyTorch gives 0). The backward is
 * gx = (p - onehot(t)) * g[r], g[r] being the output's gradient (divided by the count for
 * 'mean', per row for 'none'), times 0 on ignored rows.
 *
 * Both directions check every target before they use it, so a class index outside [0, C)
 * (other than ignore_index) is never read or written: they return the first such row, else -1.
 */

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "native.h"

enum { XENT_NONE = 0, XENT_MEAN = 1, XENT_SUM = 2 };

/* The first row whose target is neither ignore_index nor a class in [0, c), else -1. */
static int64_t first_bad_target(int64_t m, int64_t c, int64_t ignore, const int64_t *t)
{
    for (int64_t r = 0; r < m; r++)
        if (t[r] != ignore && (t[r] < 0 || t[r] >= c))
            return r;
    return -1;
}

static int64_t count_valid(int64_t m, int64_t ignore, const int64_t *t)
{
    int64_t n = 0;
    for (int64_t r = 0; r < m; r++)
        n += t[r] != ignore;
    return n;
}

/* e**y for y <= 0, -inf and NaN (the shifted logits x - max(x)), in float32, written to
 * vectorize: libm's expf is a call per element (3.4 ns each here: 4.3 of the 6.8 us the pass
 * took with it on (128, 10)). native.h's expm1_neg_f32 on [-87, 0]; below -87 the result is
 * 0 (e**-87 = 1.6e-38: the subnormals expf would give are dropped), NaN stays NaN. */
static inline float exp_nonpositive_f32(float y)
{
    float e;
    expm1_neg_f32(y >= -87.0f ? y : -87.0f, &e); /* NaN too: a finite argument */
    float below = y != y ? y : 0.0f;
    return y >= -87.0f ? e : below;
}

/* Rows are done in blocks of at most BLOCK rows and about BLOCK_ELEMENTS logits (so a block
 * stays in L1): shift each row by its maximum, one flat exp over the whole block (vectorized
 * across rows, which a row of 10 classes alone would not be), then each row's sum, scaling and
 * loss. */
#define BLOCK 64
#define BLOCK_ELEMENTS 4096

/* The passes of one element type T (suffix S), EXP its exp of values <= 0. */
#define XENT_PASSES(T, S, EXP)                                                            \
    static void forward_##S(int64_t m, int64_t c, int64_t reduction, int64_t ignore,      \
                            const T *__restrict__ x, const int64_t *__restrict__ t,       \
                            T *__restrict__ p, T *__restrict__ out)                       \
    {                                                                                     \
        double total = 0;                                                                 \
        int64_t block = BLOCK_ELEMENTS / c;                                               \
        block = block < 1 ? 1 : block > BLOCK ? BLOCK : block;                            \
        for (int64_t r0 = 0; r0 < m; r0 += block) {                                       \
            int64_t rows = m - r0 < block ? m - r0 : block;                               \
            double picked[BLOCK]; /* x[t] - max(x) per row */                             \
            for (int64_t i = 0; i < rows; i++) {                                          \
                const T *xr = x + (r0 + i) * c;                                           \
                T *pr = p + (r0 + i) * c;                                                 \
                T top = xr[0];                                                            \
                for (int64_t j = 1; j < c; j++)                                           \
                    top = xr[j] > top ? xr[j] : top;                                      \
                for (int64_t j = 0; j < c; j++)                                           \
                    pr[j] = xr[j] - top;                                                  \
                picked[i] = pr[t[r0 + i] != ignore ? t[r0 + i] : 0];                      \
            }                                                                             \
            T *pb = p + r0 * c;                                                           \
            for (int64_t k = 0; k < rows * c; k++)                                        \
                pb[k] = EXP(pb[k]);                                                       \
            for (int64_t i = 0; i < rows; i++) {                                          \
                T *pr = p + (r0 + i) * c;                                                 \
                double s = 0;                                                             \
                for (int64_t j = 0; j < c; j++)                                           \
                    s += pr[j];                                                           \
                double inv = 1.0 / s;                                                     \
                for (int64_t j = 0; j < c; j++)                                           \
                    pr[j] = (T)(pr[j] * inv);                                             \
                /* ignored rows: 0, or NaN where the row's loss is not finite (NumPy's) */ \
                double loss = (log(s) - picked[i]) * (t[r0 + i] != ignore);               \
                if (reduction == XENT_NONE)                                               \
                    out[r0 + i] = (T)loss;                                                \
                else                                                                      \
                    total += loss;                                                        \
            }                                                                             \
        }                                                                                 \
        if (reduction == XENT_MEAN)                                                       \
            out[0] = (T)(total / (double)count_valid(m, ignore, t)); /* 0 rows: NaN */   \
        else if (reduction == XENT_SUM)                                                   \
            out[0] = (T)total;                                                            \
    }                                                                                     \
                                                                                          \
    static void backward_##S(int64_t m, int64_t c, int64_t reduction, int64_t ignore,     \
                             const int64_t *__restrict__ t, const T *__restrict__ p,      \
                             const T *__restrict__ g, T *__restrict__ gx)                 \
    {                                                                                     \
        T scale = g[0];                                                                   \
        if (reduction == XENT_MEAN) /* in T, as the NumPy path: 0 rows give inf or NaN */ \
            scale /= (T)count_valid(m, ignore, t);                                        \
        for (int64_t r = 0; r < m; r++) {                                                 \
            const T *pr = p + r * c;                                                      \
            T *gr = gx + r * c;                                                           \
            int valid = t[r] != ignore;                                                   \
            T gi = (T)valid * (reduction == XENT_NONE ? g[r] : scale);                    \
            for (int64_t j = 0; j < c; j++)                                               \
                gr[j] = pr[j] * gi;                                                       \
            if (valid)                                                                    \
                gr[t[r]] = (pr[t[r]] - (T)1) * gi;                                        \
        }                                                                                 \
    }

XENT_PASSES(float, f32, exp_nonpositive_f32)
XENT_PASSES(double, f64, exp)

/* Forward of x (m, c) with targets t (m): p (m, c) the softmax; out the m losses
 * (reduction 0, 'none'), or their mean over the non-ignored rows (1) or sum (2) in out[0].
 * Returns the first row with a bad target (nothing useful written then), else -1. */
int64_t ember_xent_forward(int64_t f64, int64_t m, int64_t c, int64_t reduction, int64_t ignore,
                           const void *x, const int64_t *t, void *p, void *out)
{
    int64_t bad = first_bad_target(m, c, ignore, t);
    if (bad >= 0)
        return bad;
    if (f64)
        forward_f64(m, c, reduction, ignore, x, t, p, out);
    else
        forward_f32(m, c, reduction, ignore, x, t, p, out);
    return -1;
}

/* gx (m, c) from the forward's p and the gradient g of its output (m values for reduction 0,
 * else one). Returns the first row with a bad target (gx not written then), else -1. */
int64_t ember_xent_backward(int64_t f64, int64_t m, int64_t c, int64_t reduction,
                            int64_t ignore, const int64_t *t, const void *p, const void *g,
                            void *gx)
{
    int64_t bad = first_bad_target(m, c, ignore, t);
    if (bad >= 0)
        return bad;
    if (f64)
        backward_f64(m, c, reduction, ignore, t, p, g, gx);
    else
        backward_f32(m, c, reduction, ignore, t, p, g, gx);
    return -1;
}
