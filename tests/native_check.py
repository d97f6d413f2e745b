"""What the tests of ember's native kernels share: the three-way comparison of a native path
with ember's NumPy path and with PyTorch."""

import numpy


def assert_three_way(native, numpy_path, oracle, dtype, tol32, tol64):
    """Each array of ``native`` has ``dtype`` and equals the NumPy path's and PyTorch's
    (``oracle``) to the tolerance of its precision (rtol = atol)."""
    tol = tol32 if dtype == numpy.float32 else tol64
    assert len(native) == len(numpy_path) == len(oracle)
    for mine, ref, expected in zip(native, numpy_path, oracle):
        assert mine.dtype == dtype
        numpy.testing.assert_allclose(mine, ref, rtol=tol, atol=tol)
        numpy.testing.assert_allclose(mine, expected, rtol=tol, atol=tol)
