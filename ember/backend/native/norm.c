/* Row passes of ember's per-channel normalizations (batch_norm, instance_norm; ops/norm.py),
 * split over ember's pool (native.h).
 *
 * Why: NumPy computes a batch norm as ~6 passes over the activations forward and ~7 backward
 * (reductions, a centred copy, in-place scalings), each a full trip through memory on large
 * maps, and all on the calling thread. Here the input is seen as rows (A * C rows of L
 * values, one row per sample and channel) and each function is one trip over them:
 *
 *   stats:  per row its mean and its sum of squared deviations (the second pass over a row
 *           reads it from the cache), merged per channel by the caller (Chan et al.);
 *   affine: y = x * scale[r] + shift[r];
 *   dots:   per row sum(g) and sum(g * (x - mu[r]));
 *   grad:   gx = alpha[r] * g + beta[r] * (x - mu[r]) + gamma[r].
 *
 * layer_norm and rms_norm (a weight per L) use the same statistics and two passes of their
 * own (norm_l_affine, norm_l_grad below): y = (x - mu[r]) * rstd[r] * w + b, and the backward
 * with xhat recomputed per row while the row is in the cache.
 *
 * Sums run in double (8 lanes, so they vectorize without reassociation flags), so float32
 * statistics are at least as accurate as NumPy's. Parts are ranges of whole rows.
 */

#include <stdint.h>
#include <string.h>

#include "native.h"

struct rows_call {
    int64_t rows, len, parts;
    const void *x, *g;          /* inputs (g: the gradient, dots and grad only) */
    void *out;                  /* y or gx */
    const void *k0, *k1, *k2, *k3;  /* per-row coefficients, the element type */
    double *s0, *s1;            /* per-row double results (stats, dots) */
};

#define LANES 8

/* The functions of one element type T (suffix S). */
#define ROW_PASSES(T, S)                                                                  \
    static double sum_##S(const T *x, int64_t n)                                          \
    {                                                                                     \
        double acc[LANES] = {0};                                                          \
        int64_t i = 0;                                                                    \
        for (; i + LANES <= n; i += LANES)                                                \
            for (int k = 0; k < LANES; k++)                                               \
                acc[k] += x[i + k];                                                       \
        double s = 0;                                                                     \
        for (; i < n; i++)                                                                \
            s += x[i];                                                                    \
        for (int k = 0; k < LANES; k++)                                                   \
            s += acc[k];                                                                  \
        return s;                                                                         \
    }                                                                                     \
                                                                                          \
    /* sum((x - m)**2) and, with g, sum(g * (x - m)); sum(g) into *sg when g is given. */ \
    static double centred_##S(const T *x, const T *g, double m, int64_t n, double *sg)    \
    {                                                                                     \
        double acc[LANES] = {0}, acc_g[LANES] = {0};                                      \
        int64_t i = 0;                                                                    \
        if (g == 0) {                                                                     \
            for (; i + LANES <= n; i += LANES)                                            \
                for (int k = 0; k < LANES; k++) {                                         \
                    double d = (double)x[i + k] - m;                                      \
                    acc[k] += d * d;                                                      \
                }                                                                         \
        } else {                                                                          \
            for (; i + LANES <= n; i += LANES)                                            \
                for (int k = 0; k < LANES; k++) {                                         \
                    acc[k] += (double)g[i + k] * ((double)x[i + k] - m);                  \
                    acc_g[k] += g[i + k];                                                 \
                }                                                                         \
        }                                                                                 \
        double s = 0, t = 0;                                                              \
        for (; i < n; i++) {                                                              \
            double d = (double)x[i] - m;                                                  \
            s += g == 0 ? d * d : (double)g[i] * d;                                       \
            t += g == 0 ? 0.0 : (double)g[i];                                             \
        }                                                                                 \
        for (int k = 0; k < LANES; k++) {                                                 \
            s += acc[k];                                                                  \
            t += acc_g[k];                                                                \
        }                                                                                 \
        if (sg)                                                                           \
            *sg = t;                                                                      \
        return s;                                                                         \
    }                                                                                     \
                                                                                          \
    static void stats_##S(const struct rows_call *c, int64_t lo, int64_t hi)              \
    {                                                                                     \
        for (int64_t r = lo; r < hi; r++) {                                               \
            const T *x = (const T *)c->x + r * c->len;                                    \
            double m = c->len ? sum_##S(x, c->len) / (double)c->len : 0.0;                \
            c->s0[r] = m;                                                                 \
            c->s1[r] = centred_##S(x, 0, m, c->len, 0);                                   \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    static void dots_##S(const struct rows_call *c, int64_t lo, int64_t hi)               \
    {                                                                                     \
        const T *mu = c->k0;                                                              \
        for (int64_t r = lo; r < hi; r++) {                                               \
            const T *x = (const T *)c->x + r * c->len, *g = (const T *)c->g + r * c->len; \
            c->s1[r] = centred_##S(x, g, (double)mu[r], c->len, &c->s0[r]);               \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    static void affine_##S(const struct rows_call *c, int64_t lo, int64_t hi)             \
    {                                                                                     \
        const T *scale = c->k0, *shift = c->k1;                                           \
        for (int64_t r = lo; r < hi; r++) {                                               \
            const T *x = (const T *)c->x + r * c->len;                                    \
            T *y = (T *)c->out + r * c->len;                                              \
            const T a = scale[r], b = shift[r];                                           \
            for (int64_t i = 0; i < c->len; i++)                                          \
                y[i] = x[i] * a + b;                                                      \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    static void grad_##S(const struct rows_call *c, int64_t lo, int64_t hi)               \
    {                                                                                     \
        const T *alpha = c->k0, *beta = c->k1, *mu = c->k2, *gamma = c->k3;               \
        for (int64_t r = lo; r < hi; r++) {                                               \
            const T *x = (const T *)c->x + r * c->len, *g = (const T *)c->g + r * c->len; \
            T *gx = (T *)c->out + r * c->len;                                             \
            const T a = alpha[r], b = beta[r], m = mu[r], e = gamma[r];                   \
            for (int64_t i = 0; i < c->len; i++)                                          \
                gx[i] = a * g[i] + b * (x[i] - m) + e;                                    \
        }                                                                                 \
    }

ROW_PASSES(float, f32)
ROW_PASSES(double, f64)

enum pass { STATS, DOTS, AFFINE, GRAD };

struct job {
    struct rows_call c;
    int64_t f64;
    enum pass pass;
};

static void rows_part(void *arg, int64_t p)
{
    const struct job *j = arg;
    const struct rows_call *c = &j->c;
    int64_t lo = c->rows * p / c->parts, hi = c->rows * (p + 1) / c->parts;
    switch (j->pass) {
    case STATS:
        (j->f64 ? stats_f64 : stats_f32)(c, lo, hi);
        break;
    case DOTS:
        (j->f64 ? dots_f64 : dots_f32)(c, lo, hi);
        break;
    case AFFINE:
        (j->f64 ? affine_f64 : affine_f32)(c, lo, hi);
        break;
    case GRAD:
        (j->f64 ? grad_f64 : grad_f32)(c, lo, hi);
        break;
    }
}

static void run(struct job *j)
{
    if (j->c.parts > j->c.rows)
        j->c.parts = j->c.rows;
    if (j->c.parts > 0)
        ember_parallel(rows_part, j, j->c.parts);
}

/* Per row of x (rows x len, contiguous): mean[r] and m2[r] = sum((x - mean)**2). */
void ember_norm_stats(int64_t f64, int64_t rows, int64_t len, const void *x, double *mean,
                      double *m2, int64_t parts)
{
    struct job j = {{rows, len, parts, x, 0, 0, 0, 0, 0, 0, mean, m2}, f64, STATS};
    run(&j);
}

/* Per row: sg[r] = sum(g), sgx[r] = sum(g * (x - mu[r])). */
void ember_norm_dots(int64_t f64, int64_t rows, int64_t len, const void *g, const void *x,
                     const void *mu, double *sg, double *sgx, int64_t parts)
{
    struct job j = {{rows, len, parts, x, g, 0, mu, 0, 0, 0, sg, sgx}, f64, DOTS};
    run(&j);
}

/* y = x * scale[r] + shift[r] (y may be x). */
void ember_norm_affine(int64_t f64, int64_t rows, int64_t len, const void *x, const void *scale,
                       const void *shift, void *y, int64_t parts)
{
    struct job j = {{rows, len, parts, x, 0, y, scale, shift, 0, 0, 0, 0}, f64, AFFINE};
    run(&j);
}

/* gx = alpha[r] * g + beta[r] * (x - mu[r]) + gamma[r] (gx may be g). */
void ember_norm_grad(int64_t f64, int64_t rows, int64_t len, const void *g, const void *x,
                     const void *alpha, const void *beta, const void *mu, const void *gamma,
                     void *gx, int64_t parts)
{
    struct job j = {{rows, len, parts, x, g, gx, alpha, beta, mu, gamma, 0, 0}, f64, GRAD};
    run(&j);
}

/* ---- weight per L (layer_norm, rms_norm) ------------------------------------------------ */

struct l_call {
    int64_t rows, len, parts, center;
    const void *x, *g, *mu, *rstd, *w, *b;
    void *out;             /* y or gx */
    void *gw, *gb;         /* backward: parts x len partial sums (or NULL) */
};

#define L_PASSES(T, S)                                                                    \
    static void l_affine_##S(const struct l_call *c, int64_t lo, int64_t hi)              \
    {                                                                                     \
        const T *mu = c->mu, *rstd = c->rstd, *w = c->w, *b = c->b;                       \
        for (int64_t r = lo; r < hi; r++) {                                               \
            const T *x = (const T *)c->x + r * c->len;                                    \
            T *y = (T *)c->out + r * c->len;                                              \
            const T m = mu[r], s = rstd[r];                                               \
            for (int64_t i = 0; i < c->len; i++) {                                        \
                T v = (x[i] - m) * s;                                                     \
                if (w)                                                                    \
                    v *= w[i];                                                            \
                y[i] = b ? v + b[i] : v;                                                  \
            }                                                                             \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    /* sum(g w) and sum(g w xhat) over a row, xhat = (x - m) s, in 64-byte vectors of T  \
     * (GCC/Clang vector types), so partial sums in T as NumPy's einsum keeps them, added \
     * up in double at the end. W5's (1024, 128) backward, one thread: 320 us with a plain \
     * float64-lane loop inlined here, 179 us as a function of its own, 93-128 us so. */  \
    typedef T vec_##S __attribute__((vector_size(64)));                                   \
    static void l_sums_##S(const T *__restrict__ x, const T *__restrict__ g,              \
                           const T *__restrict__ w, T m, T s, int64_t n, double *sg_out,  \
                           double *sgx_out)                                               \
    {                                                                                     \
        enum { VL = 64 / sizeof(T) };                                                     \
        vec_##S acc_g = {0}, acc_gx = {0};                                                \
        int64_t i = 0;                                                                    \
        for (; i + VL <= n; i += VL) {                                                    \
            vec_##S xv, gv, wv;                                                           \
            memcpy(&xv, x + i, sizeof xv);                                                \
            memcpy(&gv, g + i, sizeof gv);                                                \
            memcpy(&wv, w + i, sizeof wv);                                                \
            vec_##S G = gv * wv;                                                          \
            acc_g += G;                                                                   \
            acc_gx += G * ((xv - m) * s);                                                 \
        }                                                                                 \
        double sg = 0, sgx = 0;                                                           \
        for (; i < n; i++) {                                                              \
            T G = g[i] * w[i];                                                            \
            sg += G;                                                                      \
            sgx += G * ((x[i] - m) * s);                                                  \
        }                                                                                 \
        for (int k = 0; k < VL; k++) {                                                    \
            sg += acc_g[k];                                                               \
            sgx += acc_gx[k];                                                             \
        }                                                                                 \
        *sg_out = sg;                                                                     \
        *sgx_out = sgx;                                                                   \
    }                                                                                     \
                                                                                          \
    /* One row's gx, and its terms of gw and gb (a function of its own: it vectorizes). */ \
    static __attribute__((noinline)) void l_row_##S(                                      \
        const T *__restrict__ x, const T *__restrict__ g, const T *__restrict__ w, T m,   \
        T s, T mg, T mgx, int64_t n, T *__restrict__ gx, T *__restrict__ gw,              \
        T *__restrict__ gb)                                                               \
    {                                                                                     \
        for (int64_t i = 0; i < n; i++) {                                                 \
            T xh = (x[i] - m) * s;                                                        \
            gx[i] = s * (g[i] * w[i] - mg - xh * mgx);                                    \
            gw[i] += g[i] * xh;                                                           \
            gb[i] += g[i];                                                                \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    static void l_grad_##S(const struct l_call *c, int64_t lo, int64_t hi, int64_t part)  \
    {                                                                                     \
        const T *mu = c->mu, *rstd = c->rstd, *__restrict__ w = c->w;                    \
        T *__restrict__ gw = (T *)c->gw + part * c->len;                                  \
        T *__restrict__ gb = (T *)c->gb + part * c->len;                                  \
        const double n = (double)c->len;                                                  \
        for (int64_t r = lo; r < hi; r++) {                                               \
            const T *__restrict__ x = (const T *)c->x + r * c->len;                       \
            const T *__restrict__ g = (const T *)c->g + r * c->len;                       \
            T *__restrict__ gx = (T *)c->out + r * c->len;                                \
            const T m = mu[r], s = rstd[r];                                               \
            double sg, sgx;                                                               \
            l_sums_##S(x, g, w, m, s, c->len, &sg, &sgx);                                 \
            const T mg = c->center ? (T)(sg / n) : (T)0, mgx = (T)(sgx / n);              \
            l_row_##S(x, g, w, m, s, mg, mgx, c->len, gx, gw, gb);                        \
        }                                                                                 \
    }

L_PASSES(float, f32)
L_PASSES(double, f64)

struct l_job {
    struct l_call c;
    int64_t f64, grad;
};

static void l_part(void *arg, int64_t p)
{
    const struct l_job *j = arg;
    const struct l_call *c = &j->c;
    int64_t lo = c->rows * p / c->parts, hi = c->rows * (p + 1) / c->parts;
    if (j->grad)
        (j->f64 ? l_grad_f64 : l_grad_f32)(c, lo, hi, p);
    else
        (j->f64 ? l_affine_f64 : l_affine_f32)(c, lo, hi);
}

static void l_run(struct l_job *j)
{
    if (j->c.parts > j->c.rows)
        j->c.parts = j->c.rows;
    if (j->c.parts > 0)
        ember_parallel(l_part, j, j->c.parts);
}

/* y = (x - mu[r]) * rstd[r] * w + b over rows x len (w, b: len values or NULL). */
void ember_norm_l_affine(int64_t f64, int64_t rows, int64_t len, const void *x, const void *mu,
                         const void *rstd, const void *w, const void *b, void *y, int64_t parts)
{
    struct l_job j = {{rows, len, parts, 1, x, 0, mu, rstd, w, b, y, 0, 0}, f64, 0};
    l_run(&j);
}

/* gx = rstd (G - mean(G) - xhat mean(G xhat)) per row, G = g w, xhat = (x - mu) rstd (no
 * mean(G) term unless `center`); gw[p] += g xhat and gb[p] += g per part p (parts x len
 * arrays, zeroed by the caller). Every pointer given: branch-free loops vectorize. */
void ember_norm_l_grad(int64_t f64, int64_t rows, int64_t len, const void *g, const void *x,
                       const void *mu, const void *rstd, const void *w, int64_t center,
                       void *gx, void *gw, void *gb, int64_t parts)
{
    struct l_job j = {{rows, len, parts, center, x, g, mu, rstd, w, 0, gx, gw, gb}, f64, 1};
    l_run(&j);
}
