/* The row-shift convolution of ember/ops/conv.py (stride 1, output as large as the input, one
 * group; see the comment above conv.py's _row_plan) with each sample's copies and products
 * in one C call, samples split over ember's pool.
 *
 * Why: conv.py runs the same algorithm as ~20 NumPy calls per chunk of samples, its parts on
 * Python threads that hand the GIL to each other around every call. Here a pool thread takes
 * a range of samples and, per sample, builds T (the k[-1] row-shifted copies of the source's
 * planes, with margins) in its own buffer, which stays in its cache for the products:
 *
 *   out[b] = sum over the leading kernel offsets o of W_o @ T shifted by o's whole rows
 *            (stacked: one product with the k[0] weight blocks as rows, then the shifted
 *            sums; else one product per offset, accumulated by BLAS);
 *   gw[p] += T[:, margin : margin + S] @ X^T, X the k[0] copies of a second source shifted by
 *            whole rows (the weight gradient; each part sums its own samples).
 *
 * The forward is out = conv(x) (source x); the backward runs once with source gy and the
 * adjoint's weight and plan for the input gradient, and with X from x for the weight
 * gradient. The plan (ranges of the copies, the shifts) comes from conv.py's _row_plan.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "native.h"

struct conv {
    struct ember_blas blas;
    int64_t esize, n, parts;
    const char *src;             /* (n, cs, sp): T's source */
    int64_t cs, sp, length, margin, width, kl, ones;
    const int64_t *copies;       /* kl x 6: d0, d1, s0, s1, w0, w1 (columns zeroed per row) */
    int64_t k0;
    const int64_t *lead;         /* k0 shifts of the flattened plane for the product */
    const char *w;               /* (k0, co, K), K = cs * kl + ones */
    int64_t co, stacked;
    char *out;                   /* (n, co, sp) or NULL */
    const char *bias;            /* co values added to out, or NULL */
    const char *x;               /* (n, cx, sp): X's source, or NULL */
    int64_t cx, xones;
    const int64_t *xlead;        /* k0 shifts of X's copies */
    char *gw;                    /* parts x (cs * kl, cx * k0 + xones), zeroed by the caller */
    int failed;                  /* set by a part that could not get its work space */
};

static __thread char *buffer;
static __thread size_t capacity;

/* This thread's work space of at least `size` bytes, kept for its later calls. */
static char *scratch(size_t size)
{
    if (size > capacity) {
        free(buffer);
        buffer = NULL;
        capacity = 0;
        if (posix_memalign((void **)&buffer, 64, size) != 0)
            return NULL;
        capacity = size;
    }
    return buffer;
}

static void fill_ones(char *row, int64_t count, int64_t esize)
{
    if (esize == 8)
        for (int64_t i = 0; i < count; i++)
            ((double *)row)[i] = 1.0;
    else
        for (int64_t i = 0; i < count; i++)
            ((float *)row)[i] = 1.0f;
}

/* T (cs * kl + ones rows of `length`) from one sample's planes. */
static void build_t(const struct conv *c, const char *src, char *t)
{
    int64_t es = c->esize, height = c->sp / c->width;
    for (int64_t ci = 0; ci < c->cs; ci++) {
        const char *plane = src + ci * c->sp * es;
        for (int64_t j = 0; j < c->kl; j++) {
            const int64_t *cp = c->copies + 6 * j;
            char *row = t + (ci * c->kl + j) * c->length * es;
            int64_t d0 = cp[0], d1 = cp[1] > cp[0] ? cp[1] : cp[0];
            memset(row, 0, d0 * es);
            memcpy(row + d0 * es, plane + cp[2] * es, (d1 - d0) * es);
            memset(row + d1 * es, 0, (c->length - d1) * es);
            if (cp[5] > cp[4])
                for (int64_t r = 0; r < height; r++)
                    memset(row + (c->margin + r * c->width + cp[4]) * es, 0,
                           (cp[5] - cp[4]) * es);
        }
    }
    if (c->ones)
        fill_ones(t + c->cs * c->kl * c->length * es, c->length, es);
}

/* X (cx * k0 + xones rows of sp) from one sample's planes: copy o is the plane shifted by
 * xlead[o] (zero where the shift leaves it). */
static void build_x(const struct conv *c, const char *x, char *xm)
{
    int64_t es = c->esize, sp = c->sp;
    for (int64_t ci = 0; ci < c->cx; ci++)
        for (int64_t o = 0; o < c->k0; o++) {
            char *row = xm + (ci * c->k0 + o) * sp * es;
            const char *plane = x + ci * sp * es;
            int64_t s = c->xlead[o];
            s = s > sp ? sp : (s < -sp ? -sp : s);
            if (s >= 0) {
                memcpy(row, plane + s * es, (sp - s) * es);
                memset(row + (sp - s) * es, 0, s * es);
            } else {
                memcpy(row - s * es, plane, (sp + s) * es);
                memset(row, 0, -s * es);
            }
        }
    if (c->xones)
        fill_ones(xm + c->cx * c->k0 * sp * es, sp, es);
}

/* out[co, s] = sum_o P[o, co, margin + lead[o] + s], then + bias[co]. */
#define SHIFTED_SUM(T)                                                                    \
    do {                                                                                  \
        for (int64_t i = 0; i < c->co; i++) {                                             \
            T *y = (T *)out + i * c->sp;                                                  \
            const T *p0 = (const T *)p + i * c->length + c->margin + c->lead[0];          \
            for (int64_t s = 0; s < c->sp; s++)                                           \
                y[s] = p0[s];                                                             \
            for (int64_t o = 1; o < c->k0; o++) {                                         \
                const T *po = (const T *)p + (o * c->co + i) * c->length + c->margin       \
                              + c->lead[o];                                               \
                for (int64_t s = 0; s < c->sp; s++)                                       \
                    y[s] += po[s];                                                        \
            }                                                                             \
        }                                                                                 \
    } while (0)

#define ADD_BIAS(T)                                                                       \
    do {                                                                                  \
        for (int64_t i = 0; i < c->co; i++) {                                             \
            T *y = (T *)out + i * c->sp;                                                  \
            const T v = ((const T *)c->bias)[i];                                          \
            for (int64_t s = 0; s < c->sp; s++)                                           \
                y[s] += v;                                                                \
        }                                                                                 \
    } while (0)

static void product(const struct conv *c, const char *t, char *p, char *out)
{
    int64_t es = c->esize, k = c->cs * c->kl + c->ones;
    if (c->stacked && c->k0 > 1) {
        /* T is new for every sample: the unpacked tiles skip BLAS's packing of it (W3's
         * 32->32 forward, min of 25 interleaved calls: 3.06 -> 2.73 ms on two threads,
         * 6.00 -> 5.33 on one). */
        if (es == 4 && c->length % 32 == 0)
            ember_small_sgemm(0, c->k0 * c->co, c->length, k, (const float *)c->w, k,
                              (const float *)t, c->length, (float *)p, c->length);
        else
            ember_blas(&c->blas, 0, 0, c->k0 * c->co, c->length, k, 1.0, c->w, k, t,
                       c->length, 0.0, p, c->length);
        if (es == 8)
            SHIFTED_SUM(double);
        else
            SHIFTED_SUM(float);
    } else {
        for (int64_t o = 0; o < c->k0; o++)
            ember_blas(&c->blas, 0, 0, c->co, c->sp, k, 1.0, c->w + o * c->co * k * es, k,
                       t + (c->margin + c->lead[o]) * es, c->length, o ? 1.0 : 0.0, out,
                       c->sp);
    }
    if (c->bias) {
        if (es == 8)
            ADD_BIAS(double);
        else
            ADD_BIAS(float);
    }
}

static void conv_part(void *arg, int64_t part)
{
    const struct conv *c = arg;
    int64_t es = c->esize;
    int64_t lo = c->n * part / c->parts, hi = c->n * (part + 1) / c->parts;
    int64_t t_rows = c->cs * c->kl + c->ones, x_rows = c->cx * c->k0 + c->xones;
    size_t t_size = t_rows * c->length * es;
    size_t p_size = c->out && c->stacked && c->k0 > 1 ? c->k0 * c->co * c->length * es : 0;
    size_t x_size = c->x ? x_rows * c->sp * es : 0;
    char *t = scratch(t_size + p_size + x_size);
    if (t == NULL) {  /* out of memory: the caller raises MemoryError */
        __atomic_store_n(&((struct conv *)arg)->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    char *p = t + t_size, *xm = p + p_size;
    char *gw = c->gw ? c->gw + part * c->cs * c->kl * x_rows * es : NULL;
    for (int64_t b = lo; b < hi; b++) {
        build_t(c, c->src + b * c->cs * c->sp * es, t);
        if (c->out)
            product(c, t, p, c->out + b * c->co * c->sp * es);
        if (gw) {
            build_x(c, c->x + b * c->cx * c->sp * es, xm);
            ember_blas(&c->blas, 0, 1, c->cs * c->kl, x_rows, c->sp, 1.0,
                       t + c->margin * es, c->length, xm, c->sp, 1.0, gw, x_rows);
        }
    }
}

/* See the comment at the top and struct conv for the arguments. Returns 0, or 1 when a
 * thread could not allocate its work space (the outputs are then incomplete). */
int64_t ember_conv_rows(const void *fn, int64_t ilp64, int64_t f64, int64_t n, int64_t parts,
                     const void *src, int64_t cs, int64_t sp, int64_t length, int64_t margin,
                     int64_t width, int64_t kl, int64_t ones, const int64_t *copies, int64_t k0,
                     const int64_t *lead, const void *w, int64_t co, int64_t stacked, void *out,
                     const void *bias, const void *x, int64_t cx, int64_t xones,
                     const int64_t *xlead, void *gw)
{
    struct conv c = {{fn, ilp64, f64}, f64 ? 8 : 4, n, parts, src, cs, sp, length, margin,
                     width, kl, ones, copies, k0, lead, w, co, stacked, out, bias, x, cx,
                     xones, xlead, gw, 0};
    if (c.parts > n)
        c.parts = n;
    if (c.parts > 0)
        ember_parallel(conv_part, &c, c.parts);
    return __atomic_load_n(&c.failed, __ATOMIC_RELAXED);
}
