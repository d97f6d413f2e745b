/* Level-1 updates, y = a x + b y and y += a x, and the fused Adam step, split over ember's pool
 * (native.h).
 *
 * Why: an optimizer's update is a few passes over each parameter; NumPy runs them on the
 * calling thread, and OpenBLAS's axpby spreads them over its own threads, which must then stay
 * off once ember's pool runs the products (backend/gemm.py). Here each pool thread updates one
 * contiguous block; blocks are multiples of 16 elements (64 bytes for float32) so no two
 * threads write the same cache line of y.
 */

#include <stdint.h>

#include "native.h"

struct axpby_call {
    int64_t n, parts, f64, add;   /* add: y += a x (b unused) */
    double a, b;
    const void *x;
    void *y;
};

/* The loops of one part, for element type T. */
#define AXPBY_LOOPS(T)                                                                    \
    do {                                                                                  \
        const T *__restrict__ x = c->x;                                                   \
        T *__restrict__ y = c->y;                                                         \
        const T a = (T)c->a, b = (T)c->b;                                                 \
        if (c->add)                                                                       \
            for (int64_t i = lo; i < hi; i++)                                             \
                y[i] += a * x[i];                                                         \
        else                                                                              \
            for (int64_t i = lo; i < hi; i++)                                             \
                y[i] = a * x[i] + b * y[i];                                               \
    } while (0)

static void axpby_part(void *arg, int64_t p)
{
    const struct axpby_call *c = arg;
    int64_t lo, hi;
    ember_share(c->n, 16, c->parts, p, &lo, &hi);
    if (c->f64)
        AXPBY_LOOPS(double);
    else
        AXPBY_LOOPS(float);
}

/* y = a x + b y (add = 0) or y += a x (add = 1) over n contiguous elements, in `parts`. */
void ember_axpby(int64_t n, int64_t f64, int64_t add, double a, const void *x, double b, void *y,
                 int64_t parts)
{
    struct axpby_call c = {n, parts, f64, add, a, b, x, y};
    ember_parallel(axpby_part, &c, parts);
}

/* ---- Adam / AdamW: one pass per parameter ------------------------------------------------ */

struct adam_call {
    int64_t n, parts, f64;
    void *p, *m, *v;
    const void *g;
    double sign, beta1, beta2, step_size, bc2, eps, shrink;
};

/* m = beta1 m + (1 - beta1) sign g; v = beta2 v + (1 - beta2) g g;
 * p = shrink p - step_size bc2 m / (sqrt(v) + eps bc2): optim/adam.py's formula. */
#define ADAM_LOOP(T, SQRT)                                                                \
    do {                                                                                  \
        T *__restrict__ p = c->p, *__restrict__ m = c->m, *__restrict__ v = c->v;         \
        const T *__restrict__ g = c->g;                                                   \
        const T b1 = (T)c->beta1, b2 = (T)c->beta2, a1 = (T)(c->sign * (1.0 - c->beta1)); \
        const T a2 = (T)(1.0 - c->beta2), lr = (T)(-c->step_size * c->bc2);               \
        const T add = (T)(c->eps * c->bc2), shrink = (T)c->shrink;                        \
        for (int64_t i = lo; i < hi; i++) {                                               \
            T gi = g[i];                                                                  \
            T mi = b1 * m[i] + a1 * gi;                                                   \
            T vi = b2 * v[i] + a2 * (gi * gi);                                            \
            m[i] = mi;                                                                    \
            v[i] = vi;                                                                    \
            p[i] = shrink * p[i] + lr * (mi / (SQRT(vi) + add));                          \
        }                                                                                 \
    } while (0)

static void adam_part(void *arg, int64_t part)
{
    const struct adam_call *c = arg;
    int64_t lo, hi;
    ember_share(c->n, 16, c->parts, part, &lo, &hi);
    if (c->f64)
        ADAM_LOOP(double, __builtin_sqrt);
    else
        ADAM_LOOP(float, __builtin_sqrtf);
}

/* One Adam step over n contiguous elements of p, g, m, v (see ADAM_LOOP), in `parts`. */
void ember_adam(int64_t n, int64_t f64, void *p, const void *g, void *m, void *v, double sign,
                double beta1, double beta2, double step_size, double bc2, double eps,
                double shrink, int64_t parts)
{
    struct adam_call c = {n, parts, f64, p, m, v, g, sign, beta1, beta2, step_size, bc2, eps,
                          shrink};
    ember_parallel(adam_part, &c, parts);
}
