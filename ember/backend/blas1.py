"""BLAS level-1 updates through the OpenBLAS that NumPy bundles: ``y = a*x + b*y`` (axpby),
``y += a*x`` (axpy), on whole contiguous float32/float64 arrays, in place.

Why: an optimizer's update of a big parameter is a chain of NumPy passes over memory, all on
the calling thread (ember's own threads do not pay there: the GIL changes hands at every
NumPy call, see backend/threads.py). OpenBLAS's axpby does ``buf = m*buf + g`` in one pass
and spreads it over OpenBLAS's own threads, which need no GIL and are still awake after the
step's matrix products. NOTE (measured, 2-core VM, W1's six parameters, SGD with momentum,
300 interleaved rounds after a GEMM each): 0.51 against 0.73 ms median on two threads, 0.61
against 0.79 ms on one (two passes instead of four).

``kernels(*arrays)`` gives the kernels for arrays that qualify (NumPy, one float dtype, all
C-contiguous and writeable, at least ``MIN_SIZE`` elements), else None, so callers keep their
NumPy path for small, strided, read-only or CuPy arrays and for any other BLAS (or
``EMBER_NO_BLAS_TUNING=1``). Every array a kernel reads or writes must qualify (an optimizer's
scratch buffers are contiguous by construction, optimizer._scratch_for).
The results may differ from the NumPy formula in the last bit (a fused multiply-add).

Used by SGD (whole arrays) and Adam/AdamW (on their cache-sized blocks, optim/adam.py).
"""

import ctypes

from ember.backend import threads

__all__ = ["kernels", "adam", "MIN_SIZE"]

# Below this many elements the ctypes call (~2 us) and OpenBLAS's own threshold (one thread
# under 10000 elements) leave nothing to gain over NumPy's blocked passes.
MIN_SIZE = 32768

_KERNELS = {}  # dtype char -> _Kernels, or None when the library lacks them


class _Kernels:
    """axpby / axpy of one precision, called on the arrays' data pointers."""

    __slots__ = ("_axpby", "_axpy")

    def __init__(self, axpby, axpy):
        self._axpby, self._axpy = axpby, axpy

    def axpby(self, a, x, b, y):
        """y = a * x + b * y, in place."""
        self._axpby(y.size, a, x.ctypes.data, 1, b, y.ctypes.data, 1)

    def axpy(self, a, x, y):
        """y += a * x, in place."""
        self._axpy(y.size, a, x.ctypes.data, 1, y.ctypes.data, 1)


def _load(char):
    letter = "s" if char == "f" else "d"
    found_axpby = threads.openblas_function(f"cblas_{letter}axpby")
    found_axpy = threads.openblas_function(f"cblas_{letter}axpy")
    if found_axpby is None or found_axpy is None:
        return None
    (axpby, ilp64), (axpy, _) = found_axpby, found_axpy
    real = ctypes.c_float if char == "f" else ctypes.c_double
    index = ctypes.c_int64 if ilp64 else ctypes.c_int
    ptr = ctypes.c_void_p
    axpby.argtypes = [index, real, ptr, index, real, ptr, index]
    axpy.argtypes = [index, real, ptr, index, ptr, index]
    axpby.restype = axpy.restype = None
    return _Kernels(axpby, axpy)


class _PoolKernels:
    """axpby / axpy of one precision on ember's native pool (``native/vector.c``): used when
    ember runs its products there and OpenBLAS stays on one thread (backend/gemm.py)."""

    __slots__ = ("_fn", "_f64")

    def __init__(self, fn, f64):
        self._fn, self._f64 = fn, f64

    def axpby(self, a, x, b, y):
        """y = a * x + b * y, in place."""
        self._fn(y.size, self._f64, 0, a, x.ctypes.data, b, y.ctypes.data,
                 threads.get_num_threads())

    def axpy(self, a, x, y):
        """y += a * x, in place."""
        self._fn(y.size, self._f64, 1, a, x.ctypes.data, 0.0, y.ctypes.data,
                 threads.get_num_threads())


def _pool_kernels(char):
    from ember.backend import gemm  # noqa: PLC0415

    found = gemm.native_kernels()
    return None if found is None else _PoolKernels(found[0].ember_axpby, char == "d")


def _dtype_char(arrays):
    """'f' or 'd' when the arrays can be handed to C by address (NumPy, one float dtype, all
    C-contiguous and writeable), else None."""
    first = arrays[0]
    if type(first).__module__ != "numpy":
        return None
    char = first.dtype.char
    if char not in "fd":
        return None
    for a in arrays:
        # read-only arrays (a memory-mapped checkpoint) keep NumPy's error, not a crash
        if a.dtype.char != char or not a.flags.c_contiguous or type(a) is not type(first) \
                or not a.flags.writeable or a.size != first.size:
            return None
    return char


def adam(param, grad, exp_avg, exp_avg_sq):
    """The native fused Adam step (``native/vector.c``, one pass, split over ember's pool)
    for these arrays as ``step(sign, beta1, beta2, step_size, bc2, eps, shrink)`` (the
    formula of optim/adam.py's ``_adam_blas_block``), or None.

    NOTE (measured, see optim/adam.py's NOTE at Adam._update): one pass instead of 7; no
    size threshold, since one ctypes call (~3 us) is cheaper than NumPy's passes at any size."""
    arrays = (param, grad, exp_avg, exp_avg_sq)
    char = _dtype_char(arrays)
    if char is None or not param.size:
        return None
    from ember.backend import gemm  # noqa: PLC0415

    found = gemm.native_kernels()
    if found is None:
        return None
    fn, n = found[0].ember_adam, param.size
    parts = max(1, min(threads.get_num_threads(), n // MIN_SIZE))
    addresses = [a.ctypes.data for a in arrays]

    def step(sign, beta1, beta2, step_size, bc2, eps, shrink):
        fn(n, char == "d", addresses[0], addresses[1], addresses[2], addresses[3], sign, beta1,
           beta2, step_size, bc2, eps, shrink, parts)

    return step


def kernels(*arrays):
    """The level-1 kernels for ``arrays`` (same shape), or None when they do not qualify."""
    first = arrays[0]
    if first.size < MIN_SIZE:
        return None
    char = _dtype_char(arrays)
    if char is None:
        return None
    if threads.get_num_threads() > 1:
        key = "pool " + char
        if key not in _KERNELS:
            _KERNELS[key] = _pool_kernels(char)
        if _KERNELS[key] is not None:
            return _KERNELS[key]
    if char not in _KERNELS:
        _KERNELS[char] = _load(char)
    return _KERNELS[char]
