/* The 2x2 max pool with stride 2 (nn.MaxPool2d(2)) in one pass per direction, split over
 * ember's pool (native.h) by ranges of output rows.
 *
 * Why: NumPy takes the maximum one axis at a time, four to five passes over strided slices
 * per direction (ember/ops/pool.py, _tile_max), and its H pass runs an inner loop of W/2
 * elements per row (14 floats on LeNet's second pool); here each pair of input rows is read
 * once and every result written once.
 *
 * The results are those of NumPy's path bit for bit, so either backward runs after either
 * forward: the winner codes are pool.py's (per input row, whether x[2j+1] beat x[2j]; per
 * output, whether the bottom row's maximum beat the top's), a winner is strictly greater as
 * (later - earlier) > 0 (ties, NaN and inf - inf keep the earlier offset), and the value is
 * numpy.maximum's on x86: the first operand when it is NaN or greater, else the second (of
 * equal zeros, the second). The gradient multiplies by the winner tests as NumPy does (gy * 0
 * is -0.0 or NaN, not 0).
 *
 * An output row i of a plane reads input rows 2i and 2i + 1, which are contiguous in every
 * array, so the N * C * H/2 output rows of the whole batch are one flat range. A row is done
 * in spans of 32 bytes of output (8 floats, 4 doubles; half that when the row is narrower),
 * the last one overlapping the one before when the width is not a multiple (a window done
 * twice writes the same results twice), with GCC/Clang vector types: GCC 12 vectorises the
 * plain loops only over long rows, not over LeNet's 14 or 7 windows, where they measured 3x
 * slower. Rows narrower than a half span, CPUs without AVX2 and compilers without
 * __builtin_shufflevector (GCC < 12) take the plain loops.
 */

#include <stdint.h>
#include <string.h>

#include "native.h"

struct maxpool_call {
    int64_t rows, half, parts;   /* output rows (N * C * H/2), W/2 */
    void *wide;                  /* (N, C, H, W): x (read), gx (written) or gz (read) */
    void *narrow;                /* (N, C, H/2, W/2): y (written), gy (read) or the gather */
    uint8_t *code_w, *code_h;    /* (N, C, H, W/2) and (N, C, H/2, W/2), 0 or 1 */
};

/* The arguments of a span: top and bottom are the windows' two input rows (of x, gx or gz),
 * cw and cwb their W codes, ch the output row's H codes and narrow its values (of y, gy or
 * the gathered values), all from the span's first window on. */
#define SPAN_ARGS(T, CONST)                                                               \
    CONST T *__restrict__ top, CONST T *__restrict__ bottom, uint8_t *__restrict__ cw,    \
        uint8_t *__restrict__ cwb, uint8_t *__restrict__ ch, T *__restrict__ narrow

/* ---- plain loops ------------------------------------------------------------------------ */

/* numpy.maximum(a, b) on x86: NaN in a wins, then the greater, then b. */
#define PICK_MAX(a, b)                                                                    \
    __extension__({                                                                       \
        __typeof__(a) greater_ = (a) > (b) ? (a) : (b); /* x86's maxss, no branch */      \
        (a) != (a) ? (a) : greater_;                                                      \
    })

#define FORWARD_WINDOW(T, j)                                                              \
    do {                                                                                  \
        T a = top[2 * (j)], b = top[2 * (j) + 1], d = bottom[2 * (j)], e = bottom[2 * (j) + 1]; \
        T upper = PICK_MAX(a, b), lower = PICK_MAX(d, e);                                 \
        cw[j] = (T)(b - a) > 0;                                                           \
        cwb[j] = (T)(e - d) > 0;                                                          \
        ch[j] = (T)(lower - upper) > 0;                                                   \
        narrow[j] = PICK_MAX(upper, lower);                                               \
    } while (0)

/* gy times the H test, then times the W test; products and indices, not selects: GCC makes
 * (T)!code a branch, mispredicted on random codes (6x slower). */
#define SCATTER_WINDOW(T, j)                                                              \
    do {                                                                                  \
        T down = (T)ch[j], right_top = (T)cw[j], right_bottom = (T)cwb[j];                \
        T upper = narrow[j] * (1 - down), lower = narrow[j] * down;                       \
        top[2 * (j)] = upper * (1 - right_top);                                           \
        top[2 * (j) + 1] = upper * right_top;                                             \
        bottom[2 * (j)] = lower * (1 - right_bottom);                                     \
        bottom[2 * (j) + 1] = lower * right_bottom;                                       \
    } while (0)

#define GATHER_WINDOW(T, j)                                                               \
    do {                                                                                  \
        const T *winner[2] = {top + 2 * (j) + cw[j], bottom + 2 * (j) + cwb[j]};          \
        narrow[j] = *winner[ch[j]];                                                       \
    } while (0)

#define PLAIN_LOOP(name, T, CONST, WINDOW)                                                \
    static void name##_plain_##T(int64_t n, SPAN_ARGS(T, CONST))                          \
    {                                                                                     \
        for (int64_t j = 0; j < n; j++)                                                   \
            WINDOW(T, j);                                                                 \
    }

PLAIN_LOOP(forward, float, const, FORWARD_WINDOW)
PLAIN_LOOP(forward, double, const, FORWARD_WINDOW)
PLAIN_LOOP(scatter, float, , SCATTER_WINDOW)
PLAIN_LOOP(scatter, double, , SCATTER_WINDOW)
PLAIN_LOOP(gather, float, const, GATHER_WINDOW)
PLAIN_LOOP(gather, double, const, GATHER_WINDOW)

/* ---- spans of windows in vector registers --------------------------------------------- */

/* Measured on x86 with AVX2 and AVX-512 only; without AVX the 32-byte vectors were slower
 * than the plain loops (forward of LeNet's first pool 5.1 ms against 0.55). */
#if defined(__has_builtin) && defined(__AVX2__)
#if __has_builtin(__builtin_shufflevector) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define EMBER_SPANS 1
#endif
#endif

#ifdef EMBER_SPANS

/* Lanes of two vectors (a, b) of N: the even and the odd elements of a..b; a and b
 * interleaved (first and second half). */
#define EVEN8 0, 2, 4, 6, 8, 10, 12, 14
#define ODD8 1, 3, 5, 7, 9, 11, 13, 15
#define ZIP_LOW8 0, 8, 1, 9, 2, 10, 3, 11
#define ZIP_HIGH8 4, 12, 5, 13, 6, 14, 7, 15
#define EVEN4 0, 2, 4, 6
#define ODD4 1, 3, 5, 7
#define ZIP_LOW4 0, 4, 1, 5
#define ZIP_HIGH4 2, 6, 3, 7
#define EVEN2 0, 2
#define ODD2 1, 3
#define ZIP_LOW2 0, 2
#define ZIP_HIGH2 1, 3
/* Codes to lanes: lane k takes byte k of the codes, read as 32-bit words (little-endian). */
#define SPREAD8(c) c[0], c[0], c[0], c[0], c[1], c[1], c[1], c[1]
#define SPREAD4(c) c[0], c[0], c[0], c[0]
#define SPREAD2(c) c[0], c[0]
#define BYTE_SHIFTS8 0, 8, 16, 24, 0, 8, 16, 24
#define BYTE_SHIFTS4 0, 8, 16, 24
#define BYTE_SHIFTS2 0, 8
/* Lanes to codes: the low byte of each lane of N, lanes of 4 or 8 bytes. */
#define LOW_BYTES8_4 0, 4, 8, 12, 16, 20, 24, 28
#define LOW_BYTES4_4 0, 4, 8, 12
#define LOW_BYTES4_8 0, 8, 16, 24
#define LOW_BYTES2_8 0, 8

/* Vectors of N elements of T (16 or 32 bytes), their masks (lanes of -1 or 0, integers I of
 * SIZE bytes, as wide as T), loads and stores, and the plain loops' rules lane by lane. Codes
 * go through shuffles and shifts: GCC 12 converts byte vectors (__builtin_convertvector)
 * element by element. */
#define VECTOR_HELPERS(T, I, N, SIZE)                                                     \
    typedef T vec##N##_##T __attribute__((vector_size(N * sizeof(T))));                   \
    typedef I mask##N##_##T __attribute__((vector_size(N * sizeof(T))));                  \
    typedef uint8_t bytes##N##_##T __attribute__((vector_size(N * sizeof(T))));           \
    typedef uint8_t codes##N##_##T __attribute__((vector_size(N)));                       \
                                                                                          \
    static inline vec##N##_##T load##N##_##T(const T *p)                                  \
    {                                                                                     \
        vec##N##_##T v;                                                                   \
        memcpy(&v, p, sizeof v);                                                          \
        return v;                                                                         \
    }                                                                                     \
    static inline void store##N##_##T(T *p, vec##N##_##T v)                               \
    {                                                                                     \
        memcpy(p, &v, sizeof v);                                                          \
    }                                                                                     \
    /* m ? a : b, lane by lane */                                                         \
    static inline vec##N##_##T select##N##_##T(mask##N##_##T m, vec##N##_##T a,           \
                                               vec##N##_##T b)                            \
    {                                                                                     \
        return (vec##N##_##T)(((mask##N##_##T)a & m) | ((mask##N##_##T)b & ~m));          \
    }                                                                                     \
    static inline vec##N##_##T pick_max##N##_##T(vec##N##_##T a, vec##N##_##T b)          \
    {                                                                                     \
        return select##N##_##T((a != a) | (a > b), a, b);                                 \
    }                                                                                     \
    /* 1 where mask m is set, else 0, as N codes */                                       \
    static inline void store_codes##N##_##T(uint8_t *p, mask##N##_##T m)                  \
    {                                                                                     \
        codes##N##_##T v = __builtin_shufflevector((bytes##N##_##T)(m & 1),               \
                                                   (bytes##N##_##T)(m & 1),               \
                                                   LOW_BYTES##N##_##SIZE);                \
        memcpy(p, &v, sizeof v);                                                          \
    }                                                                                     \
    /* N codes as a mask */                                                               \
    static inline mask##N##_##T as_mask##N##_##T(const uint8_t *p)                        \
    {                                                                                     \
        uint32_t c[2] = {0, 0};                                                           \
        memcpy(c, p, N);                                                                  \
        mask##N##_##T words = {SPREAD##N(c)};                                             \
        return -((words >> (mask##N##_##T){BYTE_SHIFTS##N}) & 1);                         \
    }                                                                                     \
    /* N codes as 1.0 or 0.0 */                                                           \
    static inline vec##N##_##T as_ones##N##_##T(const uint8_t *p)                         \
    {                                                                                     \
        vec##N##_##T one = (vec##N##_##T){0} + (T)1;                                      \
        return (vec##N##_##T)(as_mask##N##_##T(p) & (mask##N##_##T)one);                  \
    }

/* The three directions over a span of N windows, named name_SIZE_T. */
#define VECTOR_SPANS(T, N, SIZE)                                                          \
    static inline void forward_##SIZE##_##T(SPAN_ARGS(T, const))                          \
    {                                                                                     \
        vec##N##_##T t0 = load##N##_##T(top), t1 = load##N##_##T(top + N);                \
        vec##N##_##T b0 = load##N##_##T(bottom), b1 = load##N##_##T(bottom + N);          \
        vec##N##_##T a = __builtin_shufflevector(t0, t1, EVEN##N);                        \
        vec##N##_##T b = __builtin_shufflevector(t0, t1, ODD##N);                         \
        vec##N##_##T d = __builtin_shufflevector(b0, b1, EVEN##N);                        \
        vec##N##_##T e = __builtin_shufflevector(b0, b1, ODD##N);                         \
        vec##N##_##T upper = pick_max##N##_##T(a, b), lower = pick_max##N##_##T(d, e);    \
        store_codes##N##_##T(cw, (b - a) > 0);                                            \
        store_codes##N##_##T(cwb, (e - d) > 0);                                           \
        store_codes##N##_##T(ch, (lower - upper) > 0);                                    \
        store##N##_##T(narrow, pick_max##N##_##T(upper, lower));                          \
    }                                                                                     \
                                                                                          \
    static inline void scatter_##SIZE##_##T(SPAN_ARGS(T, ))                               \
    {                                                                                     \
        vec##N##_##T g = load##N##_##T(narrow);                                           \
        vec##N##_##T down = as_ones##N##_##T(ch), rt = as_ones##N##_##T(cw);              \
        vec##N##_##T rb = as_ones##N##_##T(cwb);                                          \
        vec##N##_##T upper = g * ((T)1 - down), lower = g * down;                         \
        vec##N##_##T te = upper * ((T)1 - rt), to = upper * rt;                           \
        vec##N##_##T be = lower * ((T)1 - rb), bo = lower * rb;                           \
        store##N##_##T(top, __builtin_shufflevector(te, to, ZIP_LOW##N));                 \
        store##N##_##T(top + N, __builtin_shufflevector(te, to, ZIP_HIGH##N));            \
        store##N##_##T(bottom, __builtin_shufflevector(be, bo, ZIP_LOW##N));              \
        store##N##_##T(bottom + N, __builtin_shufflevector(be, bo, ZIP_HIGH##N));         \
    }                                                                                     \
                                                                                          \
    static inline void gather_##SIZE##_##T(SPAN_ARGS(T, const))                           \
    {                                                                                     \
        vec##N##_##T t0 = load##N##_##T(top), t1 = load##N##_##T(top + N);                \
        vec##N##_##T b0 = load##N##_##T(bottom), b1 = load##N##_##T(bottom + N);          \
        vec##N##_##T upper = select##N##_##T(as_mask##N##_##T(cw),                        \
                                             __builtin_shufflevector(t0, t1, ODD##N),     \
                                             __builtin_shufflevector(t0, t1, EVEN##N));   \
        vec##N##_##T lower = select##N##_##T(as_mask##N##_##T(cwb),                       \
                                             __builtin_shufflevector(b0, b1, ODD##N),     \
                                             __builtin_shufflevector(b0, b1, EVEN##N));   \
        store##N##_##T(narrow, select##N##_##T(as_mask##N##_##T(ch), lower, upper));      \
    }

/* Spans of 32 bytes of output (wide) and 16 (narrow, for rows narrower than a wide span). */
VECTOR_HELPERS(float, int32_t, 8, 4)
VECTOR_HELPERS(float, int32_t, 4, 4)
VECTOR_HELPERS(double, int64_t, 4, 8)
VECTOR_HELPERS(double, int64_t, 2, 8)
VECTOR_SPANS(float, 8, wide)
VECTOR_SPANS(float, 4, narrow)
VECTOR_SPANS(double, 4, wide)
VECTOR_SPANS(double, 2, narrow)

/* Output row r as wide spans, the last one flush with the row's end, or two narrow ones. */
#define ROW(name, T)                                                                      \
    do {                                                                                  \
        const int64_t wide_span = 32 / sizeof(T), narrow_span = wide_span / 2;            \
        if (half < narrow_span) {                                                         \
            name##_plain_##T(half, AT(0));                                                \
        } else if (half < wide_span) {                                                    \
            name##_narrow_##T(AT(0));                                                     \
            name##_narrow_##T(AT(half - narrow_span));                                    \
        } else {                                                                          \
            for (int64_t j = 0; j + wide_span < half; j += wide_span)                     \
                name##_wide_##T(AT(j));                                                   \
            name##_wide_##T(AT(half - wide_span));                                        \
        }                                                                                 \
    } while (0)

#else
#define ROW(name, T) name##_plain_##T(half, AT(0))
#endif

#define AT(j)                                                                             \
    wide + r * 4 * half + 2 * (j), wide + r * 4 * half + 2 * half + 2 * (j),              \
        code_w + r * 2 * half + (j), code_w + r * 2 * half + half + (j),                  \
        code_h + r * half + (j), narrow + r * half + (j)

/* A part function: output rows [rows * p / parts, rows * (p + 1) / parts) of one direction. */
#define PART_FUNCTION(name, T)                                                            \
    static void name##_part_##T(void *arg, int64_t p)                                     \
    {                                                                                     \
        const struct maxpool_call *c = arg;                                               \
        const int64_t half = c->half, hi = c->rows * (p + 1) / c->parts;                  \
        T *wide = (T *)c->wide, *narrow = (T *)c->narrow;                                 \
        uint8_t *code_w = c->code_w, *code_h = c->code_h;                                 \
        for (int64_t r = c->rows * p / c->parts; r < hi; r++)                             \
            ROW(name, T);                                                                 \
    }

PART_FUNCTION(forward, float)
PART_FUNCTION(forward, double)
PART_FUNCTION(scatter, float)
PART_FUNCTION(scatter, double)
PART_FUNCTION(gather, float)
PART_FUNCTION(gather, double)

static const ember_task tasks[3][2] = {{forward_part_float, forward_part_double},
                                        {scatter_part_float, scatter_part_double},
                                        {gather_part_float, gather_part_double}};

/* One direction over `rows` output rows of width `half`, all arrays C-contiguous, float32
 * (f64 = 0) or float64, in `parts`: op 0 the forward (wide = x in, narrow = y and the codes
 * out), op 1 the scatter (narrow = gy in, wide = gx out), op 2 the gather (wide = gz in,
 * narrow out). */
void ember_maxpool2x2(int64_t op, int64_t f64, int64_t rows, int64_t half, void *wide,
                      void *narrow, void *code_w, void *code_h, int64_t parts)
{
    struct maxpool_call c = {rows, half, parts, wide, narrow, code_w, code_h};
    ember_parallel(tasks[op][f64 != 0], &c, parts);
}
