"""What the native passes over NumPy arrays share (``_norm_native``, ``_relu_native``): which
arrays they take, the library looked up once per module, and how many parts of ember's native
pool a pass is split into."""

import numpy

from ember.backend import threads


def library(cache, x, min_size=1):
    """The native library (looked up once into ``cache``, a module's list) when ``x`` is a
    C-contiguous NumPy float32/float64 array of at least ``min_size`` elements, else None."""
    if type(x) is not numpy.ndarray or x.size < max(min_size, 1) or x.dtype.char not in "fd" \
            or not x.flags.c_contiguous:
        return None
    if not cache:
        from ember.backend import native  # noqa: PLC0415  (imports the compiler tooling)

        cache.append(native.library())
    return cache[0]


def parts(x, part_bytes):
    """One part per thread, each of at least ``part_bytes`` of ``x`` (one part at least)."""
    return max(1, min(threads.get_num_threads(), x.nbytes // part_bytes))
