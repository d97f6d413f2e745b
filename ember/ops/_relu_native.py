"""ReLU's forward (value and slope mask in one pass) and backward as native passes
(``ember/backend/native/relu.c``) split over ember's pool, for large float NumPy arrays.

NOTE (measured, ember issue 7, 2-core VM, (32, 32, 32, 32) float32, caches flushed before
each call, min/median of 15): forward (fresh y and mask) 1.25/1.42 ms in one part, 0.78/1.00
in two, against NumPy's chunked pair of passes 0.93/1.17; backward 1.10/1.42 -> 0.59/0.79
against 0.87/1.04. A first version that kept NaN with ``v != v`` did not vectorize (6 ms).
Inside W3's step on two threads (5 ReLUs, 15 steps): forward 6.7 -> 3.4 ms, backward 6.5 ->
2.5 ms. Parts of 128 KB rather than 256 KB split W1's (128, 512) ReLUs in two: its step
2.81 -> 2.67 ms (medians of 8 interleaved 200-step runs; PyTorch's 2.62), half of each
array being in the other core's cache after the product that wrote it.
"""

import numpy

from ember.ops import _native_passes

__all__ = ["library", "forward", "backward", "backward_from_output", "output_mask"]

# Arrays under this many elements stay with NumPy (a ctypes call costs ~1 us, a split more).
_MIN_SIZE = 1 << 15
_PART_BYTES = 128 << 10  # input bytes per part of a split pass, at least
_LIB = []


def library(x):
    """The native library when ``x`` qualifies (a large C-contiguous NumPy float32/float64
    array), else None."""
    return _native_passes.library(_LIB, x, _MIN_SIZE)


def _parts(x):
    return _native_passes.parts(x, _PART_BYTES)


def forward(lib, x):
    """(y, mask): y = maximum(x, 0), mask = not (y <= 0), as NumPy computes them."""
    y = numpy.empty_like(x)
    mask = numpy.empty(x.shape, dtype=bool)
    lib.ember_relu(x.size, x.dtype.char == "d", 0, x.ctypes.data, y.ctypes.data,
                   mask.ctypes.data, _parts(x))
    return y, mask


def backward(lib, gy, mask):
    """gy * mask into a fresh array (gy C-contiguous, of mask's shape)."""
    gx = numpy.empty_like(gy)
    lib.ember_relu(gy.size, gy.dtype.char == "d", 1, gy.ctypes.data, gx.ctypes.data,
                   mask.ctypes.data, _parts(gy))
    return gx


def output_mask(y):
    """ReLU's slope mask from its output: not (y <= 0), the mask ``forward`` writes."""
    return numpy.logical_not(y <= 0)


def backward_from_output(gy, y):
    """gy * output_mask(y) into a fresh array, gy and y NumPy arrays of one shape (the
    backward of a product that applied ReLU in its last pass and wrote no mask)."""
    lib = library(y) if y.size >= _MIN_SIZE else None
    if lib is None or not (gy.flags.c_contiguous and gy.dtype == y.dtype):
        return gy * output_mask(y)
    gx = numpy.empty_like(y)
    lib.ember_relu_backward_output(y.size, y.dtype.char == "d", gy.ctypes.data, y.ctypes.data,
                                   gx.ctypes.data, _parts(y))
    return gx
