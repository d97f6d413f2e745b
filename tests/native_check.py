"""What the tests of ember's native kernels share: the three-way comparison of a native path
with ember's NumPy path and with PyTorch, and a child process with capped memory."""

import os
import subprocess
import sys

import numpy
import pytest


def assert_three_way(native, numpy_path, oracle, dtype, tol32, tol64):
    """Each array of ``native`` has ``dtype`` and equals the NumPy path's and PyTorch's
    (``oracle``) to the tolerance of its precision (rtol = atol)."""
    tol = tol32 if dtype == numpy.float32 else tol64
    assert len(native) == len(numpy_path) == len(oracle)
    for mine, ref, expected in zip(native, numpy_path, oracle):
        assert mine.dtype == dtype
        numpy.testing.assert_allclose(mine, ref, rtol=tol, atol=tol)
        numpy.testing.assert_allclose(mine, expected, rtol=tol, atol=tol)


def run_with_capped_memory(setup, then, room_mb):
    """Run ``setup``, then cap the child's address space ``room_mb`` MB above what it uses
    and run ``then`` (Python source, in a fresh process); returns its stdout. How the native
    kernels' out-of-memory paths are reached for real."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs Linux's /proc to size the address-space cap")
    code = (
        "import resource\n" + setup
        + "with open('/proc/self/status') as f:\n"
        "    vm = next(int(l.split()[1]) for l in f if l.startswith('VmSize')) * 1024\n"
        "hard = resource.getrlimit(resource.RLIMIT_AS)[1]\n"
        f"resource.setrlimit(resource.RLIMIT_AS, (vm + ({room_mb} << 20), hard))\n" + then
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout
