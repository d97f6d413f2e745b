/* ember's native kernels: fused per-time-step loops that NumPy would run as a dozen calls.
 *
 * Compiled on first use by ember/backend/native/__init__.py (the C compiler of the machine,
 * -O3 for the machine's own vector unit) and called through ctypes on NumPy arrays' memory;
 * without a compiler ember keeps its NumPy code, which computes the same quantities (the
 * results agree to float32 rounding).
 *
 * Plain C99, no Python headers, no libm: every transcendental here is written out below so
 * that the loops vectorize (a call to libm's tanhf would not) and give the same bits on every
 * machine that compiles them with the same vector width.
 */

#include <stdint.h>
#include <string.h>

#include "native.h"

#define RESTRICT __restrict__

/* ---- float32 tanh, written to vectorize (exp: native.h) ------------------------------ */

/* 1 / d for d in [1, 2] without a division (a vector division costs ~16 cycles, the bottleneck
 * of these loops): the linear first guess 24/17 - 8/17 d (relative error <= 1/17), then three
 * Newton steps x += x (1 - d x), each squaring the error (to < 2e-10 before rounding). */
static inline float recip_1_2(float d)
{
    float x = 1.411764705882353f - 0.4705882352941176f * d;
    x = x + x * (1.0f - d * x);
    x = x + x * (1.0f - d * x);
    x = x + x * (1.0f - d * x);
    return x;
}

/* tanh(x) = -m / (2 + m) with m = e**(-2|x|) - 1, |x| capped at 9 (tanh(9) rounds to 1); the
 * sign is copied back, so -0 stays -0 and NaN stays NaN. */
static inline float tanh_f32(float x)
{
    float a = __builtin_fabsf(x);
    float e;
    float m = expm1_neg_f32(-2.0f * (a > 9.0f ? 9.0f : a), &e);
    return __builtin_copysignf(-m * recip_1_2(2.0f + m), x);
}

/* sigmoid(x) = 1 / (1 + e**-x), computed from t = e**-|x| <= 1 so nothing overflows:
 * 1 / (1 + t) for x >= 0, t / (1 + t) below, and 0 below -87 (where t is capped). */
static inline float sigmoid_f32(float x)
{
    float e;
    expm1_neg_f32(-__builtin_fabsf(x), &e);
    float d = recip_1_2(1.0f + e);
    float s = x >= 0.0f ? d : e * d;
    return x < -87.0f ? 0.0f : s;
}

/* The activations over whole arrays: what tests/test_native.py checks for accuracy. */
void ember_tanh_f32(int64_t n, const float *RESTRICT x, float *RESTRICT y)
{
    for (int64_t k = 0; k < n; k++)
        y[k] = tanh_f32(x[k]);
}

void ember_sigmoid_f32(int64_t n, const float *RESTRICT x, float *RESTRICT y)
{
    for (int64_t k = 0; k < n; k++)
        y[k] = sigmoid_f32(x[k]);
}

/* ---- LSTM, one time step (torch's gate order i, f, g, o) ----------------------------------
 *
 * Shapes: b rows (the sequences running at this step), H hidden units. ``pre`` is the step's
 * (b, 4H) scratch block: with ``accumulate`` set it holds h_prev @ W_hh.T and the input
 * projection ``xg`` (b, 4H) is added to it, else ``xg`` is copied in (a zero initial state);
 * then ``bias`` (4H, may be NULL) is added. The activated gates go to the gate-major work
 * array of the whole sequence: gate q of row j at ``gates[q * gate_stride + j * H]``. ``ig``
 * (i * g), ``tanh_c``, ``c_prev``, ``c_new`` and ``h_new`` (o * tanh(c)) are (b, H) blocks.
 * Every inner loop is free of branches, so the compiler vectorizes it. */
static void lstm_step(int64_t b, int64_t H, int64_t gate_stride, float *RESTRICT pre,
                      const float *RESTRICT xg, int64_t accumulate, const float *RESTRICT bias,
                      const float *RESTRICT c_prev, float *RESTRICT gates, float *RESTRICT ig,
                      float *RESTRICT c_new, float *RESTRICT tanh_c, float *RESTRICT h_new)
{
    const int64_t G = 4 * H;
    for (int64_t j = 0; j < b; j++) {
        float *RESTRICT p = pre + j * G;
        const float *RESTRICT x = xg + j * G;
        if (accumulate)
            for (int64_t u = 0; u < G; u++)
                p[u] += x[u];
        else
            for (int64_t u = 0; u < G; u++)
                p[u] = x[u];
        if (bias)
            for (int64_t u = 0; u < G; u++)
                p[u] += bias[u];
        const int64_t o = j * H;
        const float *RESTRICT cp = c_prev + o;
        float *RESTRICT gi = gates + o;
        float *RESTRICT gf = gates + gate_stride + o;
        float *RESTRICT gg = gates + 2 * gate_stride + o;
        float *RESTRICT go = gates + 3 * gate_stride + o;
        float *RESTRICT igo = ig + o;
        float *RESTRICT cn = c_new + o;
        float *RESTRICT tco = tanh_c + o;
        float *RESTRICT hn = h_new + o;
        for (int64_t u = 0; u < H; u++) {
            float i = sigmoid_f32(p[u]), f = sigmoid_f32(p[H + u]);
            float g = tanh_f32(p[2 * H + u]), og = sigmoid_f32(p[3 * H + u]);
            float ixg = i * g;
            float c = f * cp[u] + ixg;
            float tc = tanh_f32(c);
            gi[u] = i; gf[u] = f; gg[u] = g; go[u] = og;
            igo[u] = ixg;
            cn[u] = c;
            tco[u] = tc;
            hn[u] = og * tc;
        }
    }
}

/* The backward of one step. In: ``dh`` (b, H), the gradient reaching h_t from later steps,
 * to which ``g_out`` (the output's gradient at this step, may be NULL) is added in place;
 * ``dc`` (b, H), the gradient reaching c_t. Saved by the forward: the gate-major ``gates``
 * (as above), ``ig``, ``tanh_c``, ``c_prev`` (b, H) and ``h`` (b, H, this step's output).
 * Out: ``d_gates`` (b, 4H), the gradient of the step's pre-activations, and ``dc`` becomes
 * the gradient reaching c_{t-1} (times f) when ``carry_c`` is set, else the gradient at c_t.
 * The factors are the NumPy path's: i g (1-i) = ig - ig i, i (1-g^2) = i - ig g,
 * tanh(c) o (1-o) = h - h o, o (1 - tanh(c)^2) = o - h tanh(c). */
static void lstm_step_back(int64_t b, int64_t H, int64_t gate_stride,
                           const float *RESTRICT g_out, float *RESTRICT dh, float *RESTRICT dc,
                           const float *RESTRICT gates, const float *RESTRICT ig,
                           const float *RESTRICT tanh_c, const float *RESTRICT c_prev,
                           const float *RESTRICT h, float *RESTRICT d_gates, int64_t carry_c)
{
    const int64_t n = b * H;
    const float f_weight = carry_c ? 1.0f : 0.0f, other_weight = 1.0f - f_weight;
    if (g_out)
        for (int64_t k = 0; k < n; k++)
            dh[k] += g_out[k];
    for (int64_t j = 0; j < b; j++) {
        const int64_t o = j * H;
        const float *RESTRICT gi = gates + o;
        const float *RESTRICT gf = gates + gate_stride + o;
        const float *RESTRICT gg = gates + 2 * gate_stride + o;
        const float *RESTRICT go = gates + 3 * gate_stride + o;
        const float *RESTRICT igo = ig + o;
        const float *RESTRICT tco = tanh_c + o;
        const float *RESTRICT cp = c_prev + o;
        const float *RESTRICT ho = h + o;
        const float *RESTRICT dho = dh + o;
        float *RESTRICT dco = dc + o;
        float *RESTRICT di = d_gates + j * 4 * H;
        float *RESTRICT df = di + H;
        float *RESTRICT dg = di + 2 * H;
        float *RESTRICT dout = di + 3 * H;
        for (int64_t u = 0; u < H; u++) {
            float dht = dho[u], hk = ho[u], og = go[u], igk = igo[u], f = gf[u];
            float dct = dco[u] + dht * (og - hk * tco[u]);
            di[u] = dct * (igk - igk * gi[u]);
            df[u] = dct * (cp[u] * ((1.0f - f) * f));
            dg[u] = dct * (gi[u] - igk * gg[u]);
            dout[u] = dht * (hk - hk * og);
            dco[u] = dct * (f * f_weight + other_weight);  /* dct * f, or dct */
        }
    }
}

/* ---- LSTM, whole sequences ----------------------------------------------------------------
 *
 * The time loops of ember/ops/rnn.py with the per-step product called here through a pointer
 * to cblas_sgemm of the BLAS NumPy uses (``ilp64``: its integers are 64-bit), so one call runs
 * a sequence with Python's lock released. A call covers the batch rows ``lo`` to ``hi`` only:
 * rows of an LSTM never mix, so the pool runs row ranges of one sequence at once (below).
 * ``sizes[k]`` and ``rows[k]`` are the batch size and first flat row of step k (processing
 * order); the state histories are (steps + 1, batch, H); the other buffers are those of the
 * step kernels above; ``scratch`` is (batch, 4H). */

/* c (m, n) = a (m, k) @ b (k, n) for n a multiple of 32, row-major, without packing: tiles of
 * ``MR`` rows by 32 columns keep their sums in 2 * MR vector registers while k runs (GCC/Clang
 * vector types: 16-float vectors, split by the compiler into what the CPU has). For the LSTM's
 * per-step shapes ((32, 128) @ (128, 512) and (32, 512) @ (512, 128)) this reaches about what
 * OpenBLAS does there without its per-call packing of b (see _lstm_native.py's NOTE). */
typedef float vec16 __attribute__((vector_size(64)));

static inline vec16 load16(const float *p)
{
    vec16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store16(float *p, vec16 v)
{
    memcpy(p, &v, sizeof v);
}

static inline __attribute__((always_inline)) void
tile_nn(const int MR, int64_t k, const float *RESTRICT a, int64_t a_row, int64_t a_col,
        const float *RESTRICT b, int64_t ldb, float *RESTRICT c, int64_t ldc)
{
    vec16 acc[8][2];
    for (int r = 0; r < MR; r++)
        acc[r][0] = acc[r][1] = (vec16){0};
    for (int64_t q = 0; q < k; q++) {
        vec16 b0 = load16(b + q * ldb), b1 = load16(b + q * ldb + 16);
        for (int r = 0; r < MR; r++) {
            float s = a[r * a_row + q * a_col];
            acc[r][0] += s * b0;
            acc[r][1] += s * b1;
        }
    }
    for (int r = 0; r < MR; r++) {
        store16(c + r * ldc, acc[r][0]);
        store16(c + r * ldc + 16, acc[r][1]);
    }
}

/* c = op(a) @ b (native.h); op(a) element (i, q) at a[i * a_row + q * a_col]. */
static void small_gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_row,
                       int64_t a_col, const float *b, int64_t ldb, float *c, int64_t ldc)
{
    for (int64_t j = 0; j < n; j += 32) {
        int64_t i = 0;
        for (; i + 8 <= m; i += 8)
            tile_nn(8, k, a + i * a_row, a_row, a_col, b + j, ldb, c + i * ldc + j, ldc);
        const float *ai = a + i * a_row;
        float *ci = c + i * ldc + j;
        switch (m - i) {  /* constant row counts, so each tile keeps its sums in registers */
        case 7: tile_nn(7, k, ai, a_row, a_col, b + j, ldb, ci, ldc); break;
        case 6: tile_nn(6, k, ai, a_row, a_col, b + j, ldb, ci, ldc); break;
        case 5: tile_nn(5, k, ai, a_row, a_col, b + j, ldb, ci, ldc); break;
        case 4: tile_nn(4, k, ai, a_row, a_col, b + j, ldb, ci, ldc); break;
        case 3: tile_nn(3, k, ai, a_row, a_col, b + j, ldb, ci, ldc); break;
        case 2: tile_nn(2, k, ai, a_row, a_col, b + j, ldb, ci, ldc); break;
        case 1: tile_nn(1, k, ai, a_row, a_col, b + j, ldb, ci, ldc); break;
        default: break;
        }
    }
}

void ember_small_sgemm(int64_t ta, int64_t m, int64_t n, int64_t k, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc)
{
    small_gemm(m, n, k, a, ta ? 1 : lda, ta ? lda : 1, b, ldb, c, ldc);
}

/* c (m, n) = a (m, k) @ b (k, n), all row-major: the kernel above where n allows, else the
 * BLAS's sgemm (CblasRowMajor 101, CblasNoTrans 111). */
static void gemm_nn(const void *sgemm, int64_t ilp64, int64_t m, int64_t n, int64_t k,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                    int64_t ldc)
{
    if (n % 32 == 0) {
        small_gemm(m, n, k, a, lda, 1, b, ldb, c, ldc);
        return;
    }
    if (ilp64)
        ((sgemm_ilp64_fn)sgemm)(101, 111, 111, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
    else
        ((sgemm_lp64_fn)sgemm)(101, 111, 111, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b,
                               (int)ldb, 0.0f, c, (int)ldc);
}

static void lstm_forward(const void *sgemm, int64_t ilp64, int64_t steps,
                         const int64_t *sizes, const int64_t *rows, int64_t lo, int64_t hi,
                         int64_t batch, int64_t H, int64_t N, const float *w_t,
                         const float *xg, int64_t h0_given, const float *bias,
                         float *hist_h, float *hist_c, float *gates, float *ig,
                         float *tanh_c, float *scratch)
{
    const int64_t G = 4 * H, slot = batch * H;
    for (int64_t k = 0; k < steps; k++) {
        int64_t b = sizes[k] < hi ? sizes[k] : hi;
        float *h_prev = hist_h + k * slot, *h_next = h_prev + slot;
        float *c_prev = hist_c + k * slot, *c_next = c_prev + slot;
        if (b > lo) {
            int64_t m = b - lo, r0 = rows[k] + lo;
            int64_t accumulate = k > 0 || h0_given;  /* a zero initial state adds nothing */
            if (accumulate)
                gemm_nn(sgemm, ilp64, m, G, H, h_prev + lo * H, H, w_t, G, scratch + lo * G, G);
            lstm_step(m, H, N * H, scratch + lo * G, xg + r0 * G, accumulate, bias,
                      c_prev + lo * H, gates + r0 * H, ig + r0 * H, c_next + lo * H,
                      tanh_c + r0 * H, h_next + lo * H);
        }
        int64_t keep = b > lo ? b : lo;  /* rows whose sequence has ended keep their state */
        if (keep < hi) {
            memcpy(h_next + keep * H, h_prev + keep * H, (size_t)((hi - keep) * H) * sizeof(float));
            memcpy(c_next + keep * H, c_prev + keep * H, (size_t)((hi - keep) * H) * sizeof(float));
        }
    }
}

/* The backward time loop, last step first: fills ``d_gates`` (N, 4H) and leaves the gradients
 * of the initial states in ``dh`` and ``dc`` (batch, H); ``g_out`` (N, H) may be NULL. Step 0
 * feeds only the initial states, so its products are skipped unless ``need_h0``/``need_c0``. */
static void lstm_backward(const void *sgemm, int64_t ilp64, int64_t steps,
                          const int64_t *sizes, const int64_t *rows, int64_t lo, int64_t hi,
                          int64_t batch, int64_t H, int64_t N, const float *w_hh,
                          const float *g_out, float *dh, float *dc, const float *gates,
                          const float *ig, const float *tanh_c, const float *hist_h,
                          const float *hist_c, float *d_gates, int64_t need_h0,
                          int64_t need_c0)
{
    const int64_t G = 4 * H, slot = batch * H;
    for (int64_t k = steps - 1; k >= 0; k--) {
        int64_t b = sizes[k] < hi ? sizes[k] : hi;
        if (b <= lo)
            continue;
        int64_t m = b - lo, r0 = rows[k] + lo;
        lstm_step_back(m, H, N * H, g_out ? g_out + r0 * H : NULL, dh + lo * H, dc + lo * H,
                       gates + r0 * H, ig + r0 * H, tanh_c + r0 * H,
                       hist_c + k * slot + lo * H, hist_h + (k + 1) * slot + lo * H,
                       d_gates + r0 * G, k > 0 || need_c0);
        if (k > 0 || need_h0)
            gemm_nn(sgemm, ilp64, m, H, G, d_gates + r0 * G, G, w_hh, H, dh + lo * H, H);
    }
}

/* ---- GRU ----------------------------------------------------------------------------------
 *
 * The loops of rnn.py's _gru_forward / _gru_backward on the same buffers. ``pre`` (N, 3H) holds
 * per row the r and z pre-activations halved (so sigmoid(2v) = 0.5 tanh(v) + 0.5) and the n
 * input part, and becomes the activated r, z, n; ``h_lin`` (N, H) keeps W_hn h + b_hn (the
 * part the reset gate scales). ``mm`` (b, 3H) is the step's h_prev @ W^T (r, z columns of W
 * halved), ``b_hn`` (H) the n part of b_hh (zeros when there is none). */
static void gru_step(int64_t b, int64_t H, float *RESTRICT pre, const float *RESTRICT mm,
                     const float *RESTRICT b_hn, const float *RESTRICT h_prev,
                     float *RESTRICT h_lin, float *RESTRICT h_new)
{
    const int64_t G = 3 * H;
    for (int64_t j = 0; j < b; j++) {
        float *RESTRICT p = pre + j * G;
        const float *RESTRICT q = mm + j * G;
        for (int64_t u = 0; u < 2 * H; u++)
            p[u] = tanh_f32(p[u] + q[u]) * 0.5f + 0.5f;
        const float *RESTRICT hp = h_prev + j * H;
        float *RESTRICT hl = h_lin + j * H;
        float *RESTRICT hn = h_new + j * H;
        for (int64_t u = 0; u < H; u++) {
            float lin = q[2 * H + u] + b_hn[u];
            float n = tanh_f32(p[2 * H + u] + p[u] * lin);
            hl[u] = lin;
            p[2 * H + u] = n;
            hn[u] = (hp[u] - n) * p[H + u] + n;
        }
    }
}

static void gru_forward(const void *sgemm, int64_t ilp64, int64_t steps, const int64_t *sizes,
                        const int64_t *rows, int64_t lo, int64_t hi, int64_t batch, int64_t H,
                        const float *w_t, float *pre, int64_t h0_given, const float *b_hn,
                        float *hist, float *h_lin, float *scratch)
{
    const int64_t G = 3 * H, slot = batch * H;
    for (int64_t k = 0; k < steps; k++) {
        int64_t b = sizes[k] < hi ? sizes[k] : hi;
        float *h_prev = hist + k * slot, *h_next = h_prev + slot;
        if (b > lo) {
            int64_t m = b - lo, r0 = rows[k] + lo;
            float *mm = scratch + lo * G;
            if (k > 0 || h0_given)
                gemm_nn(sgemm, ilp64, m, G, H, h_prev + lo * H, H, w_t, G, mm, G);
            else
                memset(mm, 0, (size_t)(m * G) * sizeof(float));
            gru_step(m, H, pre + r0 * G, mm, b_hn, h_prev + lo * H, h_lin + r0 * H,
                     h_next + lo * H);
        }
        int64_t keep = b > lo ? b : lo;  /* rows whose sequence has ended keep their state */
        if (keep < hi)
            memcpy(h_next + keep * H, h_prev + keep * H, (size_t)((hi - keep) * H) * sizeof(float));
    }
}

/* The backward time loop, last step first, with the NumPy path's factors (N, H) computed
 * beforehand: dn = (1 - z)(1 - n^2), dz = (h_prev - n) z (1 - z), dr = h_lin r (1 - r).
 * Per step: dh += g_out; d_x[n] = dh dn; d_hh[z] = dh dz; d_hh[r] = d_x[n] dr; d_hh[n] =
 * d_x[n] r; dh = dh z + d_hh @ w_hh (the product skipped at step 0 unless ``need_h0``). */
static void gru_backward(const void *sgemm, int64_t ilp64, int64_t steps, const int64_t *sizes,
                         const int64_t *rows, int64_t lo, int64_t hi, int64_t H,
                         const float *w_hh, const float *g_out, float *dh, const float *gates,
                         const float *dn_fac, const float *dz_fac, const float *dr_fac,
                         float *d_x, float *d_hh, float *scratch, int64_t need_h0)
{
    const int64_t G = 3 * H;
    for (int64_t k = steps - 1; k >= 0; k--) {
        int64_t b = sizes[k] < hi ? sizes[k] : hi;
        if (b <= lo)
            continue;
        int64_t m = b - lo, r0 = rows[k] + lo;
        for (int64_t j = 0; j < m; j++) {
            int64_t row = r0 + j;
            float *RESTRICT d = dh + (lo + j) * H;
            const float *RESTRICT go = g_out ? g_out + row * H : NULL;
            const float *RESTRICT g = gates + row * G;
            const float *RESTRICT fn = dn_fac + row * H, *RESTRICT fz = dz_fac + row * H;
            const float *RESTRICT fr = dr_fac + row * H;
            float *RESTRICT dx = d_x + row * G, *RESTRICT dhh = d_hh + row * G;
            if (go)
                for (int64_t u = 0; u < H; u++)
                    d[u] += go[u];
            for (int64_t u = 0; u < H; u++) {
                float dan = d[u] * fn[u];
                dx[2 * H + u] = dan;
                dhh[H + u] = d[u] * fz[u];
                dhh[u] = dan * fr[u];
                dhh[2 * H + u] = dan * g[u];
                d[u] *= g[H + u];
            }
        }
        if (k > 0 || need_h0) {
            float *mm = scratch + lo * H;
            gemm_nn(sgemm, ilp64, m, H, G, d_hh + r0 * G, G, w_hh, H, mm, H);
            float *RESTRICT d = dh + lo * H;
            for (int64_t i = 0; i < m * H; i++)
                d[i] += mm[i];
        }
    }
}

/* ---- the loops over row ranges on ember's pool ---------------------------------------------
 *
 * Rows of an LSTM never mix, so ``parts`` row ranges of the batch run side by side on ember's
 * pool (native.h), sharing only the weights; the exported functions take the arguments of the
 * loops above with ``parts`` in place of ``lo, hi``. */
struct lstm_call {
    const void *sgemm;
    int64_t ilp64, steps, parts, batch, H, N, flag0, flag1;
    const int64_t *sizes, *rows;
    const float *w, *in, *bias, *gates, *ig, *tanh_c, *hist_h, *hist_c;
    float *hist_h_out, *hist_c_out, *gates_out, *ig_out, *tanh_c_out, *scratch;
    float *dh, *dc, *d_gates;
};

static void rows_of(const struct lstm_call *c, int64_t part, int64_t *lo, int64_t *hi)
{
    *lo = c->batch * part / c->parts;
    *hi = c->batch * (part + 1) / c->parts;
}

static void lstm_forward_part(void *arg, int64_t part)
{
    const struct lstm_call *c = arg;
    int64_t lo, hi;
    rows_of(c, part, &lo, &hi);
    lstm_forward(c->sgemm, c->ilp64, c->steps, c->sizes, c->rows, lo, hi, c->batch, c->H, c->N,
                 c->w, c->in, c->flag0, c->bias, c->hist_h_out, c->hist_c_out, c->gates_out,
                 c->ig_out, c->tanh_c_out, c->scratch);
}

static void lstm_backward_part(void *arg, int64_t part)
{
    const struct lstm_call *c = arg;
    int64_t lo, hi;
    rows_of(c, part, &lo, &hi);
    lstm_backward(c->sgemm, c->ilp64, c->steps, c->sizes, c->rows, lo, hi, c->batch, c->H, c->N,
                  c->w, c->in, c->dh, c->dc, c->gates, c->ig, c->tanh_c, c->hist_h, c->hist_c,
                  c->d_gates, c->flag0, c->flag1);
}

void ember_lstm_forward_f32(const void *sgemm, int64_t ilp64, int64_t steps,
                            const int64_t *sizes, const int64_t *rows, int64_t parts,
                            int64_t batch, int64_t H, int64_t N, const float *w_t,
                            const float *xg, int64_t h0_given, const float *bias,
                            float *hist_h, float *hist_c, float *gates, float *ig,
                            float *tanh_c, float *scratch)
{
    struct lstm_call c = {sgemm, ilp64, steps, parts, batch, H, N, h0_given, 0, sizes, rows,
                          w_t, xg, bias};
    c.hist_h_out = hist_h, c.hist_c_out = hist_c, c.gates_out = gates, c.ig_out = ig;
    c.tanh_c_out = tanh_c, c.scratch = scratch;
    ember_parallel(lstm_forward_part, &c, parts);
}

void ember_lstm_backward_f32(const void *sgemm, int64_t ilp64, int64_t steps,
                             const int64_t *sizes, const int64_t *rows, int64_t parts,
                             int64_t batch, int64_t H, int64_t N, const float *w_hh,
                             const float *g_out, float *dh, float *dc, const float *gates,
                             const float *ig, const float *tanh_c, const float *hist_h,
                             const float *hist_c, float *d_gates, int64_t need_h0,
                             int64_t need_c0)
{
    struct lstm_call c = {sgemm, ilp64, steps, parts, batch, H, N, need_h0, need_c0, sizes, rows,
                          w_hh, g_out};
    c.gates = gates, c.ig = ig, c.tanh_c = tanh_c, c.hist_h = hist_h, c.hist_c = hist_c;
    c.dh = dh, c.dc = dc, c.d_gates = d_gates;
    ember_parallel(lstm_backward_part, &c, parts);
}

/* ---- GRU on the pool: the same row ranges as the LSTM's ---------------------------------- */
struct gru_call {
    const void *sgemm;
    int64_t ilp64, steps, parts, batch, H, flag;
    const int64_t *sizes, *rows;
    const float *w, *b_hn, *g_out, *gates, *dn, *dz, *dr;
    float *pre, *hist, *h_lin, *scratch, *dh, *d_x, *d_hh;
};

static void gru_forward_part(void *arg, int64_t part)
{
    const struct gru_call *c = arg;
    int64_t lo = c->batch * part / c->parts, hi = c->batch * (part + 1) / c->parts;
    gru_forward(c->sgemm, c->ilp64, c->steps, c->sizes, c->rows, lo, hi, c->batch, c->H, c->w,
                c->pre, c->flag, c->b_hn, c->hist, c->h_lin, c->scratch);
}

static void gru_backward_part(void *arg, int64_t part)
{
    const struct gru_call *c = arg;
    int64_t lo = c->batch * part / c->parts, hi = c->batch * (part + 1) / c->parts;
    gru_backward(c->sgemm, c->ilp64, c->steps, c->sizes, c->rows, lo, hi, c->H, c->w,
                 c->g_out, c->dh, c->gates, c->dn, c->dz, c->dr, c->d_x, c->d_hh, c->scratch,
                 c->flag);
}

/* rnn.py's GRU forward loop (see gru_step): ``pre`` (N, 3H) in place, ``hist`` (steps + 1,
 * batch, H) with slot 0 filled, ``h_lin`` (N, H), ``scratch`` (batch, 3H). */
void ember_gru_forward_f32(const void *sgemm, int64_t ilp64, int64_t steps,
                           const int64_t *sizes, const int64_t *rows, int64_t parts,
                           int64_t batch, int64_t H, const float *w_t, float *pre,
                           int64_t h0_given, const float *b_hn, float *hist, float *h_lin,
                           float *scratch)
{
    struct gru_call c = {sgemm, ilp64, steps, parts, batch, H, h0_given, sizes, rows, w_t, b_hn};
    c.pre = pre, c.hist = hist, c.h_lin = h_lin, c.scratch = scratch;
    ember_parallel(gru_forward_part, &c, parts);
}

/* rnn.py's GRU backward loop (see gru_backward): fills ``d_x`` (its n part) and ``d_hh`` (N,
 * 3H), leaves the initial state's gradient in ``dh`` (batch, H); ``scratch`` (batch, H). */
void ember_gru_backward_f32(const void *sgemm, int64_t ilp64, int64_t steps,
                            const int64_t *sizes, const int64_t *rows, int64_t parts,
                            int64_t batch, int64_t H, const float *w_hh, const float *g_out,
                            float *dh, const float *gates, const float *dn_fac,
                            const float *dz_fac, const float *dr_fac, float *d_x, float *d_hh,
                            float *scratch, int64_t need_h0)
{
    struct gru_call c = {sgemm, ilp64, steps, parts, batch, H, need_h0, sizes, rows, w_hh, NULL,
                         g_out, gates, dn_fac, dz_fac, dr_fac};
    c.dh = dh, c.d_x = d_x, c.d_hh = d_hh, c.scratch = scratch;
    ember_parallel(gru_backward_part, &c, parts);
}
