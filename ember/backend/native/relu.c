/* ReLU's forward (value and slope mask in one pass) and backward, split over ember's pool.
 *
 * Why: NumPy takes ReLU's forward as two passes (the maximum, then the mask, ops/activation.py
 * takes them chunk by chunk) on the calling thread; here one pass writes both, each pool
 * thread one block (multiples of 64 elements, so no two threads write one cache line).
 * Same values as NumPy's: y = maximum(x, 0) keeps -0.0 and NaN as they are, the mask is
 * not (y <= 0) (1 at NaN), and the backward multiplies by the mask (NaN * 0 stays NaN).
 */

#include <stddef.h>
#include <stdint.h>

#include "native.h"

struct relu_call {
    int64_t n, parts, f64;
    const void *x;      /* forward: x; backward: the gradient of y */
    void *y;            /* forward: y; backward: the gradient of x */
    uint8_t *mask;
    int64_t backward;   /* 0 forward, 1 backward by the mask, 2 backward by ReLU's output */
    const void *out;    /* backward 2: ReLU's output */
};

#define RELU_LOOPS(T)                                                                     \
    do {                                                                                  \
        const T *__restrict__ x = c->x;                                                   \
        T *__restrict__ y = c->y;                                                         \
        uint8_t *__restrict__ m = c->mask;                                                \
        const T *__restrict__ out = c->out;                                               \
        if (c->backward == 2)                                                             \
            for (int64_t i = lo; i < hi; i++)                                             \
                y[i] = x[i] * (T)!(out[i] <= 0);                                          \
        else if (c->backward)                                                             \
            for (int64_t i = lo; i < hi; i++)                                             \
                y[i] = x[i] * (T)m[i];                                                    \
        else                                                                              \
            for (int64_t i = lo; i < hi; i++) {                                           \
                T v = x[i];                                                               \
                uint8_t keep = !(v <= 0);                                                 \
                y[i] = keep ? v : (T)0;                                                   \
                m[i] = keep;                                                              \
            }                                                                             \
    } while (0)

static void relu_part(void *arg, int64_t p)
{
    const struct relu_call *c = arg;
    int64_t lo, hi;
    ember_share(c->n, 64, c->parts, p, &lo, &hi);
    if (c->f64)
        RELU_LOOPS(double);
    else
        RELU_LOOPS(float);
}

/* Forward (backward = 0): y = max(x, 0), mask = not (y <= 0). Backward (backward = 1):
 * y = x * mask, x being the gradient of the output. n contiguous elements, in `parts`. */
void ember_relu(int64_t n, int64_t f64, int64_t backward, const void *x, void *y, uint8_t *mask,
                int64_t parts)
{
    struct relu_call c = {n, parts, f64, x, y, mask, backward, NULL};
    ember_parallel(relu_part, &c, parts);
}

/* The backward from ReLU's output instead of a mask: gx = gy * not (out <= 0), the mask the
 * forward would have written (a product with ReLU in its last pass writes no mask). */
void ember_relu_backward_output(int64_t n, int64_t f64, const void *gy, const void *out,
                                void *gx, int64_t parts)
{
    struct relu_call c = {n, parts, f64, gy, gx, NULL, 2, out};
    ember_parallel(relu_part, &c, parts);
}
