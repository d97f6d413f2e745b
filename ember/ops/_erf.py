"""The Gauss error function on arrays: ``erf_array(xp, x, complement)`` computes erf or erfc.

NumPy has no erf, so ember evaluates it with polynomials (the method is in the comment
below). This is array code with no autograd; the differentiable ``erf``/``erfc`` (in
``unary.py``) and the exact GELU (in ``activation.py``) call it. It has its own file because
the approximation is a self-contained piece of numerics that no other op needs to read.
"""

import math

import numpy

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

