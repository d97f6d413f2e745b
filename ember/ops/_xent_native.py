"""cross_entropy's common case as native passes (``ember/backend/native/xent.c``): class-index
targets, no class weights, no label smoothing, logits a C-contiguous NumPy float32/float64
(M, C) array. One call forward (softmax, losses and the reduction) and one backward
(``(p - onehot(t)) * g``), on the calling thread.

NOTE (measured, 2-core VM under other load, x (128, 10) float32 requiring grad, int64
targets, ``F.cross_entropy(x, t)`` and ``.backward()``, min of 7 timeit repeats of 2000, five
runs): forward 39-43 -> 16-19 us, forward + backward 68-74 -> 34-39 us; PyTorch 2.13 (one
thread, same script) 23-25 and 55-58 us. Of the native forward, the C pass is 2.9 us
(xent.c) and its ctypes call ~1.5 us; the rest is Python: _class_args ~3 us (2 of them the
targets' min and max, which xent.c checks again), Function.apply ~5 us with a graph.
"""

import ctypes

import numpy

from ember.ops import _native_passes

__all__ = ["library", "targets", "forward", "backward"]

_LIB = []
_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}
_INT64 = numpy.dtype(numpy.int64)
_view = ctypes.c_char.from_buffer
_addressof = ctypes.addressof


def _address(a):
    """The address of a C-contiguous array's data. NOTE: through a ctypes view of its buffer,
    0.27 us, where ``a.ctypes.data`` takes 1.06 us (4 addresses a forward, 4 a backward); a
    read-only array has no writable buffer and takes the slow way."""
    try:
        return _addressof(_view(a))
    except (TypeError, ValueError):  # read-only, or a buffer ctypes will not view
        return a.ctypes.data


def library(x):
    """The native library when the logits ``x`` qualify (a C-contiguous NumPy float32/float64
    array with elements), else None."""
    return _native_passes.library(_LIB, x)


def targets(t):
    """The class indices as the passes read them: a C-contiguous int64 array."""
    if t.dtype != _INT64 or not t.flags.c_contiguous:
        t = numpy.ascontiguousarray(t, dtype=_INT64)
    return t


def forward(lib, x, t, ignore_index, reduction):
    """(p, out, bad): the softmax of x's rows, the losses reduced as ``reduction`` says (0-d
    for 'mean' and 'sum'), and -1, or the first row whose target is out of range (then p and
    out are garbage). ``t`` from ``targets``."""
    m, c = x.shape
    p = numpy.empty_like(x)
    out = numpy.empty(m if reduction == "none" else (), x.dtype)
    bad = lib.ember_xent_forward(x.dtype.char == "d", m, c, _REDUCTIONS[reduction], ignore_index,
                                 _address(x), _address(t), _address(p), _address(out))
    return p, out, bad


def backward(lib, p, t, g, ignore_index, reduction):
    """(gx, bad): the gradient of x from the forward's ``p`` and the output's gradient ``g``
    (per row for 'none'), and -1, or the first row whose target is out of range (then gx is
    garbage: the target changed after the forward)."""
    m, c = p.shape
    g = numpy.ascontiguousarray(g, dtype=p.dtype)  # 'none': may be a broadcast view
    gx = numpy.empty_like(p)
    bad = lib.ember_xent_backward(p.dtype.char == "d", m, c, _REDUCTIONS[reduction],
                                  ignore_index, _address(t), _address(p), _address(g),
                                  _address(gx))
    return gx, bad
