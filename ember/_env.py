"""Process settings that must be made before NumPy is first imported.

NumPy's bundled OpenBLAS does not recognise some AVX-512 CPUs (AMD Zen 4/5) and falls back
to its AVX2 kernels, running GEMMs at about half speed (see PERF-NOTES.md: ~225 vs ~420
GFLOP/s on this project's machine). When the CPU reports AVX-512 and the user has not chosen
a core type, ember selects OpenBLAS's SkylakeX kernels, which are correct on any AVX-512F/BW/
VL/DQ CPU. It cannot act once NumPy is loaded: import ember first, or set
``OPENBLAS_CORETYPE=SkylakeX`` yourself. ``EMBER_NO_BLAS_TUNING=1`` turns this off.
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


BLAS_TUNED = tune_blas()
