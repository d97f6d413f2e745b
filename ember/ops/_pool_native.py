"""The 2x2 max pool with stride 2 (``nn.MaxPool2d(2)``, LeNet's pool) as one call to ember's
native kernels per direction (``ember/backend/native/maxpool.c``), split over the native pool
by ranges of output rows.

Why: NumPy's tiling path (``pool._tile_max``, ``_tile_scatter``) makes four to five passes per
direction over strided slices, split over Python threads; its H pass runs an inner loop of
only W/2 elements per row. The C loop reads each input row pair once and writes every result
once, with no Python thread to wake.

The forward writes the values and winner codes of ``pool._tile_max`` bit for bit (the codes'
layout too), and the scatter and gather equal ``_tile_scatter`` and ``_tile_gather`` bit for
bit, so either backward runs after either forward, and ``return_indices`` reads the native
codes as it reads NumPy's. Taken for NumPy float32/float64 arrays when the library is built
(``kernels``); anything else keeps pool.py's NumPy code.

NOTE (measured, 2-core AVX-512 VM shared with other jobs (load average 1.4-1.5), float32,
one process interleaving the NumPy path (the library lookup monkeypatched to None), this one
and PyTorch 2.13's F.max_pool2d, 15 rounds of 5 calls, min/median ms; forward is
max_pool2d(x, 2) on a tensor that requires grad, backward autograd.grad of its output):

    threads  shape             NumPy fwd / bwd          native fwd / bwd       PyTorch fwd / bwd
    1        (64, 16, 28, 28)  1.36/1.47  1.17/1.24     0.35/0.41  0.28/0.32   4.89/5.23  0.58/0.68
    1        (64, 32, 14, 14)  0.80/0.95  0.64/0.75     0.23/0.27  0.18/0.21   2.57/2.81  0.33/0.43
    2        (64, 16, 28, 28)  1.42/1.64  0.98/1.29     0.27/0.34  0.20/0.27   3.28/3.36  0.54/0.64
    2        (64, 32, 14, 14)  0.81/0.91  0.67/0.73     0.16/0.22  0.11/0.16   1.41/1.76  0.21/0.31

(two runs; each cell the better min and median). Back to back (no other path evicting its
data), one thread, (64, 16, 28, 28): the C forward alone 0.18-0.26 ms, the scatter 0.19-0.23
ms, the forward op 0.23 ms (Python's share ~0.04 ms; its fresh arrays cost nothing more).
Split in two with the second core idle: forward 0.18 -> 0.12 ms, scatter 0.19 -> 0.10 ms. A
split pays from about 128 KB of input ((4, 16, 28, 28): 29 -> 21 us forward, 25 -> 18 us
backward; at 98 KB 19-20 -> 15-18 us, at 49 KB nothing), hence one part per ``_PART_BYTES``
(64 KB) of input. The native call is faster than the NumPy path at every size (8 against
22 us on (2, 3, 6, 8)), so it runs at one thread too.
"""

import numpy

from ember.backend import threads

__all__ = ["kernels", "max_pool", "scatter", "gather"]

# Input bytes per part: below two of them a second part does not pay (NOTE above).
_PART_BYTES = 1 << 16

_STATE = []  # [library or None] once looked up

_FORWARD, _SCATTER, _GATHER = 0, 1, 2


def _library():
    if not _STATE:
        from ember.backend import native  # noqa: PLC0415  (imports the compiler tooling)

        _STATE.append(native.library())
    return _STATE[0]


def _is_2x2(g):
    return (g.k == (2, 2) and g.stride == (2, 2) and g.pad == (0, 0) and g.dilation == (1, 1)
            and all(o * 2 == s for o, s in zip(g.out_size, g.in_size)))


def kernels(xp, g, values, codes=()):
    """The native library when the pool of geometry ``g`` on ``values`` (float arrays) and
    ``codes`` (its winner codes) runs there, else None."""
    if xp is not numpy or not _is_2x2(g):
        return None
    dtype = values[0].dtype
    if dtype != numpy.float32 and dtype != numpy.float64:
        return None
    for a in values:
        if not isinstance(a, numpy.ndarray) or a.dtype != dtype or not a.flags.aligned \
                or not a.size:
            return None
    for a in codes:
        if not isinstance(a, numpy.ndarray) or a.dtype != numpy.bool_ \
                or not a.flags.c_contiguous:
            return None
    return _library()


def _parts(rows, nbytes):
    """Parts of the output rows to run side by side: one per thread, at most one per
    _PART_BYTES of input (and per row)."""
    return max(1, min(threads.get_num_threads(), rows, nbytes // _PART_BYTES))


def _call(lib, op, wide, narrow, code_w, code_h):
    n, c, h, w = wide.shape
    rows = n * c * (h // 2)
    lib.ember_maxpool2x2(op, int(wide.dtype == numpy.float64), rows, w // 2, wide.ctypes.data,
                         narrow.ctypes.data, code_w.ctypes.data, code_h.ctypes.data,
                         _parts(rows, wide.nbytes))


def max_pool(lib, x):
    """``pool._tile_max`` of (N, C, H, W) ``x``: y and the codes (W's, then H's)."""
    x = numpy.ascontiguousarray(x)
    n, c, h, w = x.shape
    y = numpy.empty((n, c, h // 2, w // 2), dtype=x.dtype)
    code_w = numpy.empty((n, c, h, w // 2), dtype=numpy.bool_)
    code_h = numpy.empty((n, c, h // 2, w // 2), dtype=numpy.bool_)
    _call(lib, _FORWARD, x, y, code_w, code_h)
    return y, (code_w, code_h)


def scatter(lib, gy, codes, in_shape):
    """``pool._tile_scatter``: gy at each window's winner, gy * 0 elsewhere."""
    gy = numpy.ascontiguousarray(gy)
    gx = numpy.empty(in_shape, dtype=gy.dtype)
    _call(lib, _SCATTER, gx, gy, *codes)
    return gx


def gather(lib, gz, codes):
    """``pool._tile_gather``: gz at each window's winner."""
    gz = numpy.ascontiguousarray(gz)
    n, c, h, w = gz.shape
    out = numpy.empty((n, c, h // 2, w // 2), dtype=gz.dtype)
    _call(lib, _GATHER, gz, out, *codes)
    return out
