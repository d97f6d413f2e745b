"""The normalizations of ``ember/ops/norm.py`` as native row passes
(``ember/backend/native/norm.c``) on ember's pool: batch_norm, instance_norm and group_norm
(a weight per C of the (A, C, L) view), and layer_norm and rms_norm (a weight per L, with
``l_affine``/``l_backward``: the forward no longer keeps xhat; the backward recomputes it
per row while the row is in the cache).

Each of the NumPy path's ~6 forward and ~7 backward passes over the activations is a trip
through memory on large maps (docs/benchmarks.md, fact 4), all on the calling thread. The
native path makes two trips each way, split by rows over ember's threads:

    forward:  row statistics (mean, squared deviations), then y = x * scale + shift;
    backward: row sums of g and g * (x - mean), then gx = alpha g + beta (x - mean) + gamma.

The per-row results are merged into per-channel statistics here (A x C values, in float64:
the rows' means and squared deviations combine exactly as in one two-pass computation). The
same formulas as the NumPy path, so the results agree to rounding; the statistics and the
per-channel backward's sums run in float64, layer_norm's backward row sums in lanes of the
array's dtype (as NumPy's einsum) added up in float64.

NOTE (measured, ember issue 7, 2-core VM, W3's (32, 32, 32, 32) float32): the passes alone,
caches flushed before each call, min/median of 15, one part -> two: statistics 0.92/1.16 ->
0.55/0.61 ms, affine 0.90/1.27 -> 0.48/0.59, dots 1.00/1.16 -> 0.60/0.68, grad 1.14/1.35 ->
0.69/0.85. Inside W3's training step on two threads (5 batch norms, per-Function
timing of 15 steps): forward 15.7 -> 5.3-6.5 ms, backward 14.5 -> 5.7-7.8 ms; the step
148 -> 135 ms median in 3 interleaved runs of 8 steps (with the native ReLU: 141 -> 129).
W5's layer_norm ((1024, 128) rows, 4 calls a step, two threads): forward 1.83 -> 0.6-1.0 ms,
backward 2.2 -> 0.7-1.5 ms a step; the backward kernel alone 320 us with its loops inlined,
179 us as functions of their own, 93-128 us with the row sums in vector types (norm.c;
PyTorch's whole fwd+bwd 260 us).
"""

import numpy

from ember.ops import _native_passes

__all__ = ["library", "statistics", "affine", "backward", "l_affine", "l_backward"]

# NOTE: a part of a split pass gets at least this many bytes of input (see the module NOTE).
_PART_BYTES = 256 << 10
_LIB = []


def library(x):
    """The native library when the (A, C, L) array ``x`` qualifies (a C-contiguous NumPy
    float32/float64 array with elements), else None."""
    return _native_passes.library(_LIB, x)


def _parts(x):
    return _native_passes.parts(x, _PART_BYTES)


def _rows(v, shape, dtype):
    """A per-channel (1, C, 1) or per-row (A, C, 1) value as one contiguous value per row
    (None: zeros)."""
    a, c, _ = shape
    if v is None:
        return numpy.zeros(a * c, dtype=dtype)
    return numpy.ascontiguousarray(numpy.broadcast_to(v.reshape(-1, c), (a, c)), dtype=dtype)


def _merge(v, per_channel):
    """(A, C) per-row sums -> (1, C, 1) per channel, or (A, C, 1) per row."""
    return (v.sum(0, keepdims=True) if per_channel else v)[..., None]


def statistics(lib, x, per_channel, center=True):
    """(mean, biased variance) of x (A, C, L) over L, or over A and L when ``per_channel``;
    shaped (1, C, 1) or (A, C, 1), float64. Without ``center`` (rms_norm, per row only):
    (None, mean of the squares)."""
    a, c, n = x.shape
    mean = numpy.empty((a, c))
    m2 = numpy.empty((a, c))
    lib.ember_norm_stats(x.dtype.char == "d", a * c, n, x.ctypes.data, mean.ctypes.data,
                         m2.ctypes.data, _parts(x))
    if not center:
        return None, (m2 / n + mean * mean)[..., None]
    if not per_channel:
        return mean[..., None], m2[..., None] / n
    mu = mean.mean(0, keepdims=True)
    # Chan et al.: the squared deviations of a union of equal-sized rows
    m2 = m2.sum(0, keepdims=True) + n * ((mean - mu) ** 2).sum(0, keepdims=True)
    return mu[..., None], m2[..., None] / (a * n)


def affine(lib, x, scale, shift):
    """A fresh y = x * scale + shift, the per-C or per-row values broadcast along L."""
    y = numpy.empty_like(x)
    dtype = x.dtype
    scale, shift = _rows(scale, x.shape, dtype), _rows(shift, x.shape, dtype)  # kept alive
    lib.ember_norm_affine(dtype.char == "d", x.shape[0] * x.shape[1], x.shape[2],
                          x.ctypes.data, scale.ctypes.data, shift.ctypes.data, y.ctypes.data,
                          _parts(x))
    return y


def backward(lib, g, x, k, mu, rstd, batch, per_channel, need_x, need_sums):
    """(gx, sum(g * xhat), sum(g)) over L (and A when ``per_channel``), float64 sums shaped as
    the statistics, with k = rstd * w the per-C or per-row factor of y; ``batch``: the
    statistics came from x (so gx depends on the sums). gx None unless ``need_x``; the sums
    None unless ``need_sums`` or needed for gx."""
    g = numpy.ascontiguousarray(g)
    a, c, n = x.shape
    dtype = x.dtype
    if not batch:  # fixed statistics: gx = k * g, an affine map of g
        gx = affine(lib, g, k, numpy.zeros_like(k)) if need_x else None
        if not need_sums:
            return gx, None, None
    sg, sgx = numpy.empty((a, c)), numpy.empty((a, c))
    f64, parts = dtype.char == "d", _parts(x)
    mu = _rows(mu, x.shape, dtype)  # every array passed by address is held by a name
    lib.ember_norm_dots(f64, a * c, n, g.ctypes.data, x.ctypes.data, mu.ctypes.data,
                        sg.ctypes.data, sgx.ctypes.data, parts)
    sg, sgx = _merge(sg, per_channel), _merge(sgx, per_channel)
    rstd64 = rstd.astype(numpy.float64)
    sgxhat = sgx * rstd64
    if not (batch and need_x):
        return (gx if not batch else None), sgxhat, sg
    # gx = k * (g - mean(g) - xhat * mean(g * xhat)), xhat = (x - mu) * rstd
    count = n * a if per_channel else n
    k64 = numpy.broadcast_to(k, sg.shape).astype(numpy.float64)
    alpha = _rows(k64, x.shape, dtype)
    beta = _rows(-k64 * rstd64 * sgxhat / count, x.shape, dtype)
    gamma = _rows(-k64 * sg / count, x.shape, dtype)
    gx = numpy.empty_like(x)
    lib.ember_norm_grad(f64, a * c, n, g.ctypes.data, x.ctypes.data, alpha.ctypes.data,
                        beta.ctypes.data, mu.ctypes.data, gamma.ctypes.data, gx.ctypes.data,
                        parts)
    return gx, sgxhat, sg


def _param(p, dtype):
    return None if p is None else numpy.ascontiguousarray(p.reshape(-1), dtype=dtype)


def l_affine(lib, x, w, b, mu, rstd):
    """layer_norm / rms_norm's output y = (x - mu) * rstd * w + b for x (A, R, L), the
    statistics per row (``mu`` None: no centring), ``w``/``b`` per L or None."""
    rows, n = x.shape[0] * x.shape[1], x.shape[2]
    dtype = x.dtype
    mu, rstd = _rows(mu, x.shape, dtype), _rows(rstd, x.shape, dtype)  # held for the call
    w, b = _param(w, dtype), _param(b, dtype)
    y = numpy.empty_like(x)
    lib.ember_norm_l_affine(dtype.char == "d", rows, n, x.ctypes.data, mu.ctypes.data,
                            rstd.ctypes.data, _address(w), _address(b), y.ctypes.data,
                            _parts(x))
    return y


def l_backward(lib, g, x, w, mu, rstd, center, need_x, need_w, need_b):
    """(gx, gw, gb) of l_affine's output, each None unless asked for; gw and gb flat."""
    g = numpy.ascontiguousarray(g)
    rows, n = x.shape[0] * x.shape[1], x.shape[2]
    dtype = x.dtype
    parts = _parts(x)
    mu, rstd = _rows(mu, x.shape, dtype), _rows(rstd, x.shape, dtype)
    wv = numpy.ones(n, dtype) if w is None else _param(w, dtype)
    gx = numpy.empty_like(x)  # the kernel writes all three (branch-free loops)
    gw = numpy.zeros((parts, n), dtype)
    gb = numpy.zeros((parts, n), dtype)
    lib.ember_norm_l_grad(dtype.char == "d", rows, n, g.ctypes.data, x.ctypes.data,
                          mu.ctypes.data, rstd.ctypes.data, wv.ctypes.data, int(center),
                          gx.ctypes.data, gw.ctypes.data, gb.ctypes.data, parts)
    return (gx if need_x else None, gw.sum(0) if need_w else None,
            gb.sum(0) if need_b else None)


def _address(a):
    return None if a is None else a.ctypes.data
