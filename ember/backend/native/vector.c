/* Level-1 updates, y = a x + b y and y += a x, split over ember's pool (native.h).
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
    int64_t blocks = (c->n + 15) / 16;
    int64_t lo = blocks * p / c->parts * 16, hi = blocks * (p + 1) / c->parts * 16;
    if (hi > c->n)
        hi = c->n;
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
