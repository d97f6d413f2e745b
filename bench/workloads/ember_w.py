"""The five workloads in ember: bench/workloads/eager.py run with ``import ember``."""

import ember
from bench.workloads import eager

make_step = eager.workloads(ember)
to_float = eager.to_float


def setup(threads):
    """ember's arithmetic runs in NumPy; BLAS threads come from OPENBLAS_NUM_THREADS, which
    the worker sets in the environment before the import."""
