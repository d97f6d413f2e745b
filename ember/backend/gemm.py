"""Matrix products of NumPy arrays split over ember's threads by the native pool.

Why: NumPy's OpenBLAS gains only 1.1-1.4x from a second core on the workloads' products, and
its idle worker then busy-waits ~0.1 s on that core; the same product cut into one block of
the output per thread, each block one single-threaded ``cblas_sgemm`` call run side by side
on ember's native pool (``native/pool.c``, ``native/gemm.c``), gains 1.6-2.2x. Once the
pool has run a product, OpenBLAS stays on one thread (its own threads would only compete).
On CPUs with AVX-512 the float32 blocks run on ember's own kernel instead (``native/sgemm.c``;
single-threaded, 1.00-1.18x PyTorch's MKL time on the benchmark MLP's products where
OpenBLAS takes 1.08-1.23x, ``bench/gemm_micro.py --threads 1``), so float32 products take
it with one thread as well.

``matmul(a, b, out=None, bias=None)`` is ``numpy.matmul`` (plus a row vector) for
float32/float64 operands of at least two dims; it takes the native path when ember uses more
than one thread (for float32 with ember's own kernel, one is enough), the native library is
built, the product has at least ``SPLIT_FLOPS``, and every operand is a stack of row- or
column-major matrices with uniform batch strides (any transposed view of a contiguous
array). Anything else, and CuPy arrays, go to the array library's own matmul.
"""

import numpy

from ember.backend import threads

__all__ = ["matmul", "SPLIT_FLOPS"]

# NOTE (measured, this project's 2-core VM, float32 (m, k) @ (k, n), medians of 11 x 20 calls
# back to back, two runs): a split call costs ~7-15 us more than NumPy's (argument checks and
# ctypes conversion), so (64, 64) @ (64, 128), 1 MFLOP, took 20-31 us split against 9-13 us
# in NumPy; at 8 MFLOP the two were even (87-91 against 94-101 us), at 34 MFLOP the split won
# (245-249 against 324-379 us). Below SPLIT_FLOPS NumPy runs the product.
SPLIT_FLOPS = 8e6

_STATE = []  # [(library, sgemm, dgemm, ilp64)] once looked up; [None] when unavailable
_OWN_SGEMM = []  # [True] when native/sgemm.c's AVX-512 kernel is built (float32 products)


def native_kernels():
    """``(library, sgemm address, dgemm address, ilp64)``: the native library and NumPy's
    ``cblas_sgemm``/``cblas_dgemm``, looked up once, or None (no compiler, no OpenBLAS)."""
    if not _STATE:
        from ember.backend import native  # noqa: PLC0415  (imports the compiler tooling)

        lib = native.library()
        s = threads.openblas_function("cblas_sgemm")
        d = threads.openblas_function("cblas_dgemm")
        if lib is None or s is None or d is None:
            _STATE.append(None)
        else:
            import ctypes  # noqa: PLC0415

            address = ctypes.cast
            _STATE.append((lib, address(s[0], ctypes.c_void_p).value,
                           address(d[0], ctypes.c_void_p).value, int(s[1])))
            _OWN_SGEMM.append(bool(lib.ember_sgemm_built()))
    return _STATE[0]


def _layout(x, rows, cols):
    """``(transposed, leading dim)`` of the matrices of ``x`` for BLAS, or None."""
    size = x.itemsize
    rs, cs = x.strides[-2], x.strides[-1]
    if cs == size and rs % size == 0 and rs // size >= cols:
        return 0, rs // size
    if rs == size and cs % size == 0 and cs // size >= rows:
        return 1, cs // size
    return None


def _batch_strides(arrays, shape):
    """The batch of ``shape`` as ``(outer, inner)`` and each array's byte strides for them
    (0 where an array is broadcast), or None when the batch dims do not merge into two."""
    dims = []  # [(size, [stride per array])], innermost first, merged where all allow
    for axis in range(1, len(shape) + 1):
        size = shape[-axis]
        if size == 1:
            continue
        strides = []
        for x in arrays:
            lead = x.ndim - 2
            strides.append(x.strides[-2 - axis] if axis <= lead and x.shape[-2 - axis] != 1
                           else 0)
        if dims:
            inner_size, inner = dims[-1]
            if all(s == t * inner_size for s, t in zip(strides, inner)):
                dims[-1] = (inner_size * size, inner)
                continue
        dims.append((size, strides))
    if len(dims) > 2:
        return None
    while len(dims) < 2:
        dims.append((1, [0] * len(arrays)))
    (inner_size, inner), (outer_size, outer) = dims
    return (outer_size, inner_size), [(o, i) for o, i in zip(outer, inner)]


def matmul(a, b, out=None, bias=None, relu=False):
    """``a @ b`` (into ``out`` when given) ``+ bias`` (a vector of ``b``'s columns, added to
    every row in the same pass when the native path runs), then ReLU when ``relu`` (also in
    that pass: values <= 0 become 0, NaN stays), on ember's threads when it pays."""
    if a.ndim < 2 or b.ndim < 2 or 2.0 * max(a.size * b.shape[-1], b.size * a.shape[-2]) < \
            SPLIT_FLOPS:
        return _fallback(a, b, out, bias, relu)  # small: decided before any other check
    found = _STATE[0] if _STATE else native_kernels()
    if (found is None or type(a) is not numpy.ndarray or type(b) is not numpy.ndarray
            or a.dtype != b.dtype or a.dtype.char not in "fd"
            or (bias is not None and not (type(bias) is numpy.ndarray and bias.ndim == 1
                                          and bias.dtype == a.dtype and bias.flags.c_contiguous
                                          and bias.shape[0] == b.shape[-1]))):
        return _fallback(a, b, out, bias, relu)
    m, k = a.shape[-2:]
    n = b.shape[-1]
    parts = threads.get_num_threads()
    if b.shape[-2] != k or min(m, n, k) < 2 or (parts < 2 and not _own(a.dtype)) or \
            not (a.flags.aligned and b.flags.aligned) or getattr(threads._INSIDE, "active", False):
        return _fallback(a, b, out, bias, relu)
    batch_shape = a.shape[:-2] if a.ndim >= b.ndim else b.shape[:-2]
    if a.ndim > 2 and b.ndim > 2:
        try:
            batch_shape = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            return _fallback(a, b, out, bias, relu)
    batch = 1
    for size in batch_shape:
        batch *= size
    if 2.0 * m * n * k * batch < SPLIT_FLOPS:
        return _fallback(a, b, out, bias, relu)
    la, lb = _layout(a, m, k), _layout(b, k, n)
    if la is None or lb is None:
        return _fallback(a, b, out, bias, relu)
    if out is None:
        out = numpy.empty(batch_shape + (m, n), dtype=a.dtype)
    elif (out.shape != batch_shape + (m, n) or out.dtype != a.dtype
          or out.strides[-1] != a.itemsize or out.strides[-2] < n * a.itemsize
          or numpy.may_share_memory(out, a) or numpy.may_share_memory(out, b)):
        return _fallback(a, b, out, bias, relu)
    if batch_shape:
        merged = _batch_strides((a, b, out), batch_shape)
        if merged is None:
            return _fallback(a, b, out, bias, relu)
        (outer, inner), (sa, sb, sc) = merged
    else:
        outer = inner = 1
        sa = sb = sc = (0, 0)
    lib, sgemm, dgemm, ilp64 = found
    threads._blas_single()
    f64 = a.dtype.char == "d"
    lib.ember_gemm(dgemm if f64 else sgemm, ilp64, f64, la[0], lb[0], m, n, k, outer, inner,
                   a.ctypes.data, la[1], *sa, b.ctypes.data, lb[1], *sb,
                   out.ctypes.data, out.strides[-2] // a.itemsize, *sc, 1.0, 0.0,
                   None if bias is None else bias.ctypes.data, int(relu), parts, 0)
    return out


def _own(dtype):
    """Whether ember's own kernel runs products of this dtype (worth it on one thread too)."""
    return dtype.char == "f" and bool(_OWN_SGEMM and _OWN_SGEMM[0])


def _fallback(a, b, out, bias=None, relu=False):
    if threads._single and a.ndim >= 2 and b.ndim >= 2:
        flops = 2.0 * a.size * b.shape[-1]
        if flops >= threads._ALL_THREADS_FLOPS:  # the common small product skips the call
            threads.before_product(flops)
    y = a @ b if out is None else numpy.matmul(a, b, out=out)
    if bias is not None:
        y += bias
    if relu:
        numpy.maximum(y, 0, out=y)
    return y
