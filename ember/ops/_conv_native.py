"""conv.py's row-shift convolution (1-D and 2-D, stride 1, 'same' size, one group) as one
call to ember's native kernels (``ember/backend/native/conv.c``): per sample the row copies
and the products in C, the samples split over ember's pool with Python's lock released.

conv.py keeps the plan (``_row_plan``), the weight layouts (``_rows_layout``) and what
follows the products (the weight gradient's reordering); this module only replaces the
loops over chunks of the batch that its Python threads ran.

NOTE: filled in with measurements below.
"""

import numpy

from ember.backend import gemm, threads

__all__ = ["kernels", "rows"]


def kernels(xp, *arrays):
    """``(library, gemm address, ilp64)`` when the native convolution applies to these arrays
    (NumPy, all float32 or all float64), else None."""
    if xp is not numpy:
        return None
    char = arrays[0].dtype.char
    if char not in "fd" or any(a.dtype.char != char for a in arrays):
        return None
    found = gemm.native_kernels()
    if found is None:
        return None
    return found[0], found[2] if char == "d" else found[1], found[3]


def _address(a):
    return 0 if a is None else a.ctypes.data


def parts(n):
    """Samples are split into this many parts (one per thread)."""
    return max(1, min(threads.get_num_threads(), n))


def plan_arrays(plan, width):
    """The C form of a ``_row_plan`` (conv.py caches it per geometry): (margin, length,
    per copy (d0, d1, s0, s1, w0, w1), the leading shifts), w0:w1 the columns zeroed in every
    row of a copy (none when w1 <= w0)."""
    margin, length, _, _, copies, lead = plan
    table = []
    for d0, d1, s0, s1, wrapped in copies:
        w0, w1 = (0, 0) if wrapped is None else wrapped.indices(width)[:2]
        table.append((d0, d1, s0, s1, w0, w1))
    return (margin, length, numpy.array(table, dtype=numpy.int64),
            numpy.array(lead, dtype=numpy.int64))


def rows(found, src, plan, width, kl, ones, wm, cout, stacked, out=None, x=None, xones=0,
         xlead=None, gw=None):
    """One native call: ``out`` (N, cout, S) = the row-shift product of ``src`` (N, C, S)
    with ``wm`` (k0, cout, K) over ``plan`` (``plan_arrays``); and/or ``gw`` (parts, C * kl,
    K_x) += per part, the sum over its samples of T @ X^T, X from ``x`` (N, C_x, S) shifted
    by ``xlead`` (an int64 array). Every array C-contiguous; ``gw`` zeroed, with
    ``parts(N)`` blocks."""
    lib, fn, ilp64 = found
    n, cs, sp = src.shape
    margin, length, copies, lead = plan
    xl = xlead
    threads._blas_single()  # each part's products run on its own thread (backend/gemm.py)
    failed = lib.ember_conv_rows(fn, ilp64, src.dtype.char == "d", n, parts(n), src.ctypes.data, cs, sp,
                        length, margin, width, kl, ones, copies.ctypes.data, len(lead),
                        lead.ctypes.data, _address(wm), cout, stacked, _address(out), None,
                        _address(x), 0 if x is None else x.shape[1], xones, _address(xl),
                        _address(gw))
    if failed:
        raise MemoryError(
            f"conv: no memory for the native convolution's work space ({cs} channels of "
            f"{length} values per sample and thread); use smaller inputs or fewer threads "
            "(ember.set_num_threads)")
