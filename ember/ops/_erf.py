"""The Gauss error function on arrays: ``erf_array(xp, x, complement)`` computes erf or erfc.

NumPy has no erf, so ember evaluates it with polynomials (the method is in the comment
below). This is array code with no autograd; the differentiable ``erf``/``erfc`` (in
``unary.py``) and the exact GELU (in ``activation.py``) call it. It has its own file because
the approximation is a self-contained piece of numerics that no other op needs to read.
"""

import math

import numpy

from ember.backend import threads

TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

# We evaluate erf with polynomials interpolated once (on first use, at Chebyshev nodes)
# through reference values on a few intervals of |x|:
#   |x| < 1      erf(x) = x * P(x^2)               P smooth in x^2, so tiny x keep full
#                                                  relative accuracy
#   |x| >= 1     erfc(|x|) = exp(-x^2) * Q(|x|) / |x|
#                with Q(x) = x * exp(x^2) * erfc(x) slowly varying: on [1, 2.5] and [2.5, 5] as
#                a series in x, beyond 5 as a series in 1/x (Q -> 1/sqrt(pi) as x -> inf).
# The reference values come from math.erf/erfc for small x and from Laplace's continued
# fraction for Q where erfc itself would lose digits. Accuracy is ~1e-15 relative for erf and
# ~1e-13 for erfc in float64 (the tests compare with PyTorch).

_ERF_PIECES = None


def _chebyshev_fit(f, lo, hi, n):
    """Power-series coefficients, in t = (x - mid) / half_width, of the degree n-1 Chebyshev
    interpolant of ``f`` on [lo, hi]. Fitting in the Chebyshev basis is well conditioned; the
    coefficients of these smooth functions stay below 1 in the power basis, so Horner's rule
    (two passes per degree instead of Clenshaw's three) loses nothing."""
    k = numpy.arange(n)
    theta = numpy.pi * (k + 0.5) / n
    nodes = (lo + hi) / 2 + (hi - lo) / 2 * numpy.cos(theta)
    values = numpy.array([f(float(v)) for v in nodes])
    cheb = numpy.array([2.0 / n * numpy.dot(values, numpy.cos(j * theta)) for j in range(n)])
    cheb[0] /= 2
    return tuple(float(c) for c in numpy.polynomial.chebyshev.cheb2poly(cheb))


def _horner(xp, coef, t):
    """Sum of coef[k] * t**k, evaluated in place."""
    acc = xp.full_like(t, coef[-1])
    for c in coef[-2::-1]:
        acc *= t
        acc += c
    return acc


def _erfc_scaled_reference(x):
    """x * exp(x^2) * erfc(x) for x >= 1, to double precision."""
    if x < 2.5:
        return x * math.exp(x * x) * math.erfc(x)
    # Laplace's continued fraction x / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...)))),
    # divided by sqrt(pi); 60 levels are ample for x >= 2.5.
    d = x
    for k in range(60, 0, -1):
        d = x + (k / 2) / d
    return x / d / math.sqrt(math.pi)


def _erf_pieces():
    global _ERF_PIECES
    if _ERF_PIECES is None:
        small = _chebyshev_fit(
            lambda u: math.erf(math.sqrt(u)) / math.sqrt(u) if u > 0 else TWO_OVER_SQRT_PI,
            0.0, 1.0, 14,
        )
        mid = _chebyshev_fit(_erfc_scaled_reference, 1.0, 2.5, 19)
        high = _chebyshev_fit(_erfc_scaled_reference, 2.5, 5.0, 19)
        tail = _chebyshev_fit(
            lambda s: _erfc_scaled_reference(1 / s) if s > 0 else 1 / math.sqrt(math.pi),
            0.0, 0.2, 15,
        )
        _ERF_PIECES = (small, mid, high, tail)
    return _ERF_PIECES


def _erfc_of_abs(xp, a, mid, high, tail):
    """erfc(a) for an array a >= 1 (nan stays nan, inf gives 0)."""
    a = xp.minimum(a, 40.0)  # erfc(27) already underflows; avoids overflow in a * a
    out = xp.empty_like(a)
    in_mid = a < 2.5
    in_high = (a >= 2.5) & (a < 5.0)
    in_tail = ~(in_mid | in_high)  # includes nan
    pieces = (
        (in_mid, mid, lambda v: (v - 1.75) / 0.75),  # [1, 2.5] onto [-1, 1]
        (in_high, high, lambda v: (v - 3.75) / 1.25),  # [2.5, 5] onto [-1, 1]
        (in_tail, tail, lambda v: 10.0 / v - 1.0),  # 1/v in (0, 0.2] onto (-1, 1]
    )
    for mask, coef, to_unit in pieces:
        v = a[mask]
        if v.size:
            out[mask] = xp.exp(-(v * v)) * _horner(xp, coef, to_unit(v)) / v
    return out


def erf_array(xp, x, complement):
    """erf(x), or erfc(x) when ``complement``, for a floating array."""
    if xp is numpy and x.dtype in (numpy.float32, numpy.float16):
        return _erf_single(x, complement)
    work = x.astype(numpy.float32) if x.dtype == numpy.float16 else x
    small, mid, high, tail = _erf_pieces()
    a = xp.abs(work)
    out = xp.empty_like(work)
    near = a < 1.0
    xn = work[near]
    e = xn * _horner(xp, small, xn * xn * 2 - 1)
    out[near] = 1 - e if complement else e
    far = ~near
    xf = work[far]
    c = _erfc_of_abs(xp, a[far], mid, high, tail)
    out[far] = xp.where(xf < 0, 2 - c, c) if complement else xp.copysign(1 - c, xf)
    return out.astype(x.dtype, copy=False)


# ---- float32 / float16 -----------------------------------------------------------------------
#
# Single precision needs ~7 digits, so one smooth polynomial covers all of erfc's range and the
# work is arithmetic over the whole array: no masks, gathers or scatters (the float64 method
# above, run on float32, took 40-70x torch.erf's time). With a = |x| and K = 3:
#   erfc(a) = exp(-a^2) * H(v),   v = K / (a + K),
# where H(v) = exp(a^2) * erfc(a) is smooth in v on [K / (10.5 + K), 1], i.e. a in [0, 10.5]
# (it decays like 1 / (a sqrt(pi)), a multiple of v for large a): one degree-10 polynomial,
# ~4e-9 relative. Beyond 10.5 erfc is 0 in float32; there v runs on to 0 with H bounded (below
# 0.06) times exp(-a^2) = 0, so no clamp is needed: inf gives 0, nan stays nan. H is summed as
# E(v^2) + v * O(v^2), both halves in one (2, 6) @ (6, n) product with the rows 1, u, .., u^5
# (u = v^2): 5 multiplies and a BLAS call instead of Horner's 20 passes.
#   erfc(x) = erfc(|x|), or 2 - erfc(|x|) for x < 0: x's sign bit is OR-ed into the result and,
# shifted right by one, is the bit pattern of 2.0 to add (0.0 for x >= 0).
#   erf(x) = copysign(1 - erfc(|x|), x) for |x| >= 1/4, and for |x| < 1/4 (where 1 - erfc would
# lose a tiny x's relative accuracy) z + z * (G(z^2) - 1), G(u) = erf(sqrt u) / sqrt u of degree
# 3 (~5e-10), on z = x clamped to [-1/4, 1/4]. The two are merged by bits: |x|'s bits minus
# 1/4's, shifted right arithmetically by 31, is an all-ones mask where |x| < 1/4
# (numpy.where on a mixed mask is branchy, ~10x a multiply here; numpy.copysign and numpy.clip
# on float32 are ~3x an integer AND, so those are done on bits too).
#
# The erfc part runs in float64 on blocks of _BLOCK elements that stay in the core's cache
# between the passes (~2x faster than whole-array passes at 512k elements): float64 makes a^2
# exact and exp(-a^2) right to float32's last bit (in float32, a^2 rounds by up to a^2 / 2 ulps
# of exp's result, and NumPy's float32 exp errs by up to 2.4 ulps), and leaves one rounding,
# the cast. The near erf piece is float32 (its rounding reaches erf scaled by ~0.12).
# Measured max errors against math.erf/erfc on dense grids (tests/ops/test_erf_fast.py): erf
# 0.69 float32 ulps everywhere, erfc 0.76 ulps relative to itself down to its float32
# underflow (1e-38). Large arrays split over ember's threads, each part with its own buffers.
#
# NOTE: timings (time.process_time, 1 thread for ember and torch, 5 interleaved rounds,
# medians, ms, ranges over three runs; 2-core machine shared with another job, load 0.9-1.5;
# float32 standard normal x; bench script: erf_array before/after, torch.erf/erfc, F.gelu):
#                 (16, 64, 512): before   now       torch   | 1M: before  now    torch
#   erf                     20.4-22.4  9.1-10.5  0.37-0.53  |    50-52   18-20  1.0-1.05
#   erfc                    20.8-26.7  5.9-8.3   0.45-0.52  |    49-54   14-16  1.0-1.14
#   F.gelu (exact)          17.2-19.5  6.7-8.6   0.26-0.34  |    39-42   13-18  0.5-0.64
# Still ~15-25x torch: ~25 NumPy passes of 0.2-0.4 ns an element each, against torch's one
# fused SIMD loop.

_K = 3.0
_A_MAX = 10.5
_NEAR = 0.25
_BLOCK = 8192
_SINGLE = None


def _erfcx_reference(a):
    """exp(a^2) * erfc(a) for a >= 0, to double precision."""
    if a < 1.0:
        return math.exp(a * a) * math.erfc(a)
    return _erfc_scaled_reference(a) / a


def _power_basis(coef, lo, hi):
    """coef (a series in t = (v - mid) / half_width on [lo, hi]) as a series in v."""
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    series = numpy.polynomial.Polynomial(coef)(numpy.polynomial.Polynomial([-mid / half, 1 / half]))
    return tuple(float(c) for c in series.coef)


def _single_pieces():
    global _SINGLE
    if _SINGLE is None:
        v_lo = _K / (_A_MAX + _K)
        far = _chebyshev_fit(lambda v: _erfcx_reference(_K / v - _K), v_lo, 1.0, 11)
        far = _power_basis(far, v_lo, 1.0) + (0.0,)  # 12 coefficients: odd ones padded
        near = _chebyshev_fit(
            lambda u: math.erf(math.sqrt(u)) / math.sqrt(u) if u > 0 else TWO_OVER_SQRT_PI,
            0.0, _NEAR * _NEAR, 4,
        )
        near = _power_basis(near, 0.0, _NEAR * _NEAR)
        _SINGLE = (
            numpy.array([far[0::2], far[1::2]]),  # H(v) = E(v^2) + v * O(v^2)
            tuple(numpy.float32(c) for c in (near[0] - 1,) + near[1:]),
        )
    return _SINGLE


def _erf_single_block(x, out, complement, far_coef, near_coef, bufs):
    """erf or erfc of the float32 block x into out (float32), with scratch bufs."""
    n = x.size
    a, v, rows, pair, s32, bits, mag = (b[..., :n] for b in bufs)
    xi, oi, sign = x.view(numpy.int32), out.view(numpy.int32), s32.view(numpy.int32)
    numpy.bitwise_and(xi, 0x7FFFFFFF, out=mag)  # |x|'s bits
    numpy.copyto(a, mag.view(numpy.float32))  # a = |x| in float64
    numpy.add(a, _K, out=v)
    numpy.divide(_K, v, out=v)  # v = K / (a + K); inf -> 0, nan stays nan
    numpy.multiply(v, v, out=rows[1])
    numpy.multiply(rows[1], rows[1], out=rows[2])
    numpy.multiply(rows[2], rows[1], out=rows[3])
    numpy.multiply(rows[2], rows[2], out=rows[4])
    numpy.multiply(rows[4], rows[1], out=rows[5])
    numpy.matmul(far_coef, rows, out=pair)
    p = pair[1]
    p *= v
    p += pair[0]  # exp(a^2) * erfc(a)
    numpy.multiply(a, a, out=a)  # exact: a has 24 bits
    numpy.negative(a, out=a)
    numpy.exp(a, out=a)
    p *= a  # erfc(|x|): 0 for |x| = inf, where H(0) is finite times exp(-inf) = 0
    numpy.bitwise_and(xi, -0x80000000, out=sign)  # x's sign bit
    if complement:
        numpy.copyto(out, p, casting="same_kind")
        oi |= sign  # -erfc(|x|) for x < 0
        numpy.right_shift(sign.view(numpy.uint32), 1, out=sign.view(numpy.uint32))
        out += s32  # + 2.0 (bits 0x40000000) for x < 0, + 0.0 otherwise
        return
    numpy.subtract(1.0, p, out=p)
    numpy.copyto(out, p, casting="same_kind")
    oi |= sign  # erf(x) = copysign(1 - erfc(|x|), x), used for |x| >= 1/4
    # erf(x) for |x| < 1/4: z + z * (G(z^2) - 1), z = x clamped to [-1/4, 1/4], in float32:
    # G - 1 falls from 0.128 to 0.118 with small alternating coefficients, so its Horner sum
    # is well conditioned, and its rounding reaches the result scaled by ~0.12
    z, u, g = bits.view(numpy.float32), a.view(numpy.float32)[:n], s32
    numpy.minimum(x, _NEAR, out=z)
    numpy.maximum(z, -_NEAR, out=z)
    numpy.multiply(z, z, out=u)
    numpy.multiply(u, near_coef[-1], out=g)
    for c in near_coef[-2:0:-1]:
        g += c
        g *= u
    g += near_coef[0]
    g *= z
    g += z
    # out = g where |x| < 1/4, by bits: the bits of |x| order like its value
    numpy.subtract(mag, _NEAR_BITS, out=mag)
    numpy.right_shift(mag, 31, out=mag)  # -1 where |x| < 1/4, else 0 (nan: 0)
    gi = g.view(numpy.int32)
    numpy.bitwise_xor(gi, oi, out=gi)
    gi &= mag
    oi ^= gi


_NEAR_BITS = int(numpy.array(_NEAR, numpy.float32).view(numpy.int32))


def _erf_single(x, complement):
    far_coef, near_coef = _single_pieces()
    src = numpy.ascontiguousarray(x, dtype=numpy.float32).reshape(-1)
    res = numpy.empty(src.shape, numpy.float32)
    n = src.size

    def job(start, stop):
        size = min(_BLOCK, stop - start)
        rows = numpy.empty((6, size))
        rows[0] = 1.0
        bufs = [numpy.empty(size), numpy.empty(size), rows, numpy.empty((2, size)),
                numpy.empty(size, numpy.float32), numpy.empty(size, numpy.int32),
                numpy.empty(size, numpy.int32)]
        with numpy.errstate(under="ignore"):  # exp(-a^2) and erfc's tail underflow by design
            for i in range(start, stop, _BLOCK):
                j = min(i + _BLOCK, stop)
                _erf_single_block(src[i:j], res[i:j], complement, far_coef, near_coef, bufs)

    threads.parallel(job, n, 1 << 17, numpy)
    return res.reshape(x.shape).astype(x.dtype, copy=False)
