"""Process settings that must be made before NumPy is first imported.

NumPy's bundled OpenBLAS does not recognise some AVX-512 CPUs (AMD Zen 4/5) and falls back
to its AVX2 kernels, running GEMMs at about half speed (see PERF-NOTES.md: ~225 vs ~420
GFLOP/s on this project's machine). When the CPU reports AVX-512 and the user has not chosen
a core type, ember selects OpenBLAS's SkylakeX kernels, which are correct on any AVX-512F/BW/
VL/DQ CPU. It cannot act once NumPy is loaded: import ember first, or set
``OPENBLAS_CORETYPE=SkylakeX`` yourself. ``EMBER_NO_BLAS_TUNING=1`` turns this off.

glibc's malloc gives large freed blocks back to the kernel (munmap, heap trim) and
page-faults them in again on the next allocation; a training step allocates and frees the same
large temporaries every step, which made small forward+backward passes 3-4x slower
(PERF-NOTES.md) and LeNet's step ~20% slower; measured here on a (64, 1024) float32
exp/add/sum forward+backward: 398-451 us tuned vs 538-680 us untuned (CPU time, 3 runs each). ``tune_malloc`` keeps blocks of up to 32 MiB on
the heap and freed memory in the process (peak memory is unchanged: it is what the process
already reached). ``EMBER_NO_MALLOC_TUNING=1`` turns this off.
"""

import os
import sys

_NEEDED = {"avx512f", "avx512bw", "avx512vl", "avx512dq"}


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def tune_blas():
    """Set OPENBLAS_CORETYPE=SkylakeX when it is safe and still has an effect."""
    if "numpy" in sys.modules or os.environ.get("EMBER_NO_BLAS_TUNING"):
        return False
    if "OPENBLAS_CORETYPE" in os.environ or not sys.platform.startswith("linux"):
        return False
    if not _NEEDED <= _cpu_flags():
        return False
    os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    return True


_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def tune_malloc():
    """Raise glibc's trim and mmap thresholds (mallopt); no-op elsewhere."""
    if os.environ.get("EMBER_NO_MALLOC_TUNING") or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes  # noqa: PLC0415

        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...): leave malloc alone
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    ok &= mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    ok &= mallopt(_M_TOP_PAD, 64 << 20)
    return bool(ok)


BLAS_TUNED = tune_blas()
MALLOC_TUNED = tune_malloc()
