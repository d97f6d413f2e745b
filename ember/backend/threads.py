"""Threads for array work: how many ember uses, OpenBLAS's count, and a small pool that splits
one array job into contiguous parts run side by side.

Why: NumPy runs every ufunc, copy and reduction on the calling thread, while PyTorch spreads
its kernels over all cores. NumPy releases the GIL inside those loops and inside BLAS calls,
so plain Python threads that each take a slice of the arrays do run in parallel. It pays for
compute-heavy work (tanh, exp, GEMMs over split batches: ~1.4-2x on two cores) and little for
memory-bound passes (a ReLU over 800k floats gains nothing on this project's machine, see
docs/benchmarks.md), and each dispatch costs ~25-30 us (measured with two threads), so
callers split only large jobs.

``get_num_threads`` defaults to ``EMBER_NUM_THREADS``, else ``OMP_NUM_THREADS`` (the variable
PyTorch and the benchmarks use), else the CPUs this process may run on.
``set_num_threads(n)`` sets ember's count and OpenBLAS's together, as
``torch.set_num_threads`` does for PyTorch.

    parallel(job, n, grain)   # job(start, stop) over range(n), in parts of >= grain items

Inside ``parallel`` each part's BLAS calls run on one OpenBLAS thread (the parts are the
threads), and the caller's count is restored afterwards.
"""

import os
import queue
import threading

__all__ = ["get_num_threads", "set_num_threads", "parallel", "blas_threads"]

_COUNT = []  # [n] once known


def _default_count():
    for var in ("EMBER_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def get_num_threads():
    """How many threads ember's array kernels use (1 = everything on the calling thread)."""
    if not _COUNT:
        _COUNT.append(_default_count())
    return _COUNT[0]


def set_num_threads(n):
    """Use ``n`` threads for ember's split kernels and for OpenBLAS."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    get_num_threads()
    _COUNT[0] = n
    fns = openblas_threads()
    if fns is not None:
        fns[1](n)


# ---- OpenBLAS's own thread count ------------------------------------------------------------
#
# NOTE: ``openblas_set_num_threads`` of the OpenBLAS that NumPy's wheel bundles (0.5 us a call),
# found once through ctypes; with any other BLAS, or EMBER_NO_BLAS_TUNING=1 set, the switches
# below do nothing. The count is process-wide: a GEMM another Python thread runs meanwhile gets
# the same count.

_BLAS = []  # [(get, set)] once looked up; [None] when unavailable


def openblas_threads():
    """``(get, set)`` ctypes functions of NumPy's OpenBLAS thread count, or None."""
    if _BLAS:
        return _BLAS[0]
    _BLAS.append(None)
    if os.environ.get("EMBER_NO_BLAS_TUNING"):
        return None
    try:
        import ctypes  # noqa: PLC0415
        import glob  # noqa: PLC0415

        import numpy  # noqa: PLC0415  (locating NumPy's own BLAS, not array math)

        libs = os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs")
        for path in sorted(glob.glob(os.path.join(libs, "lib*openblas*.so*"))):
            lib = ctypes.CDLL(path)
            for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""),
                                   ("openblas", "64_"), ("openblas", "")):
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype, get.argtypes = ctypes.c_int, []
                    put.restype, put.argtypes = None, [ctypes.c_int]
                    _BLAS[0] = (get, put)
                    return _BLAS[0]
    except (OSError, AttributeError, ImportError):  # no bundled OpenBLAS: leave BLAS alone
        pass
    return None


class blas_threads:
    """``with blas_threads(1, xp):`` OpenBLAS on that many threads inside, the caller's count
    after (a no-op for CuPy arrays or an unknown BLAS)."""

    __slots__ = ("fns", "n", "before")

    def __init__(self, n, xp=None):
        self.fns = openblas_threads() if xp is None or xp.__name__ == "numpy" else None
        self.n = n
        self.before = n

    def __enter__(self):
        if self.fns is not None:
            self.before = self.fns[0]()
            if self.before != self.n:
                self.fns[1](self.n)
        return self

    def __exit__(self, *exc):
        if self.fns is not None and self.before != self.n:
            self.fns[1](self.before)
        return False


# ---- the pool ---------------------------------------------------------------------------------


class _Pool:
    """Daemon workers fed through one queue; ``run`` hands out all parts but the first, does
    the first itself, then waits for the rest and re-raises the first error."""

    def __init__(self):
        self.tasks = queue.SimpleQueue()
        self.workers = []
        self.lock = threading.Lock()

    def ensure(self, n):
        with self.lock:
            while len(self.workers) < n:
                worker = threading.Thread(target=self._work, name="ember-array", daemon=True)
                worker.start()
                self.workers.append(worker)

    def _work(self):
        while True:
            job, start, stop, done, errors = self.tasks.get()
            try:
                job(start, stop)
            except BaseException as error:  # noqa: BLE001  (handed to the caller)
                errors.append(error)
            finally:
                done.release()

    def run(self, job, bounds):
        self.ensure(len(bounds) - 1)
        done = threading.Semaphore(0)
        errors = []
        for start, stop in bounds[1:]:
            self.tasks.put((job, start, stop, done, errors))
        try:
            job(*bounds[0])
        finally:
            for _ in bounds[1:]:
                done.acquire()
        if errors:
            raise errors[0]


_POOL = []


def _pool():
    if not _POOL:
        _POOL.append(_Pool())
    return _POOL[0]


def _forget_pool():
    """A forked child (DataLoader workers) has none of the parent's threads."""
    _POOL.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def split(n, grain, threads=None):
    """Contiguous ``(start, stop)`` parts of ``range(n)``: at most ``threads`` of them and none
    smaller than ``grain`` items (one part when ``n < 2 * grain``)."""
    threads = get_num_threads() if threads is None else threads
    parts = max(1, min(threads, n // max(1, grain)))
    step, extra = divmod(n, parts)
    bounds, start = [], 0
    for i in range(parts):
        stop = start + step + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def parallel(job, n, grain=1, xp=None):
    """Run ``job(start, stop)`` over contiguous parts of ``range(n)`` on ember's threads.

    The parts must write disjoint memory. With one part (small ``n``, one thread, or a
    non-NumPy ``xp``) the job runs once, on the caller, with BLAS untouched.
    """
    if (xp is not None and xp.__name__ != "numpy") or getattr(_INSIDE, "active", False):
        job(0, n)  # a job that itself calls parallel() runs its inner work inline
        return
    bounds = split(n, grain)
    if len(bounds) == 1:
        job(0, n)
        return
    _INSIDE.active = True
    try:
        with blas_threads(1):
            _pool().run(_marked(job), bounds)
    finally:
        _INSIDE.active = False


# Set on every thread while it runs a part: a nested parallel() must not queue work for the
# pool and wait on it, since the workers that would take it may be the ones waiting.
_INSIDE = threading.local()


def _marked(job):
    def run(start, stop):
        was = getattr(_INSIDE, "active", False)
        _INSIDE.active = True
        try:
            job(start, stop)
        finally:
            _INSIDE.active = was

    return run
