"""Threads for array work: how many ember uses, OpenBLAS's count, and a small pool that splits
one array job into contiguous parts run side by side.

Why: NumPy runs every ufunc, copy and reduction on the calling thread, while PyTorch spreads
its kernels over all cores. NumPy releases the GIL inside those loops and inside BLAS calls,
so plain Python threads that each take a slice of the arrays do run in parallel. It pays for
compute-heavy work (tanh, exp, GEMMs over split batches: ~1.4-2x on two cores) and little for
memory-bound passes (a ReLU over 800k floats gains nothing on this project's machine, see
docs/benchmarks.md), and waking a worker costs 20-300 us there (see _Pool), so callers split
only large jobs, and the caller takes back any part a worker has not started.

``get_num_threads`` defaults to ``EMBER_NUM_THREADS``, else ``OMP_NUM_THREADS`` (the variable
PyTorch and the benchmarks use), else the CPUs this process may run on.
``set_num_threads(n)`` sets ember's count and OpenBLAS's together, as
``torch.set_num_threads`` does for PyTorch.

    parallel(job, n, grain)   # job(start, stop) over range(n), in parts of >= grain items

Native work (ember's matrix products, the LSTM loops, the optimizers' level-1 updates) runs on
a second pool written in C (``native/pool.c``, ``backend/gemm.py``), which needs no GIL; once it
has run a product, OpenBLAS stays on one thread. This pool serves the NumPy code that splits in
Python (convolutions, pooling). Inside ``parallel`` each part's BLAS calls run on one OpenBLAS
thread (the parts are the threads). OpenBLAS then stays on one thread until a product big enough to gain from all of
them (``before_product``): OpenBLAS's idle workers and the pool would otherwise fight over the
second core (NOTE at ``_ALL_THREADS_FLOPS``).
"""

import os
import queue
import threading

__all__ = ["get_num_threads", "set_num_threads", "parallel", "blas_threads", "before_product"]

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
    global _single
    get_num_threads()
    _COUNT[0] = n
    fns = openblas_threads()
    if fns is not None:
        fns[1](n)
    _single = False


# ---- OpenBLAS's own thread count ------------------------------------------------------------
#
# NOTE: ``openblas_set_num_threads`` of the OpenBLAS that NumPy's wheel bundles (0.5 us a call),
# found once through ctypes; with any other BLAS, or EMBER_NO_BLAS_TUNING=1 set, the switches
# below do nothing. The count is process-wide: a GEMM another Python thread runs meanwhile gets
# the same count.

_LIB = []  # [(library, prefix, suffix)] once looked up; [None] when unavailable
_BLAS = []  # [(get, set)] once looked up; [None] when unavailable


def openblas():
    """``(library, prefix, suffix)`` of the OpenBLAS that NumPy's wheel bundles, or None: its
    symbols are ``prefix + name + suffix`` (``scipy_`` and ``64_`` for the 64-bit-integer
    build NumPy ships: ``scipy_openblas_set_num_threads64_``, ``scipy_cblas_saxpy64_``)."""
    if _LIB:
        return _LIB[0]
    _LIB.append(None)
    if os.environ.get("EMBER_NO_BLAS_TUNING"):
        return None
    try:
        import ctypes  # noqa: PLC0415
        import glob  # noqa: PLC0415

        import numpy  # noqa: PLC0415  (locating NumPy's own BLAS, not array math)

        libs = os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs")
        for path in sorted(glob.glob(os.path.join(libs, "lib*openblas*.so*"))):
            lib = ctypes.CDLL(path)
            for prefix, suffix in (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", "")):
                if hasattr(lib, f"{prefix}openblas_set_num_threads{suffix}"):
                    _LIB[0] = (lib, prefix, suffix)
                    return _LIB[0]
    except (OSError, AttributeError, ImportError):  # no bundled OpenBLAS: leave BLAS alone
        pass
    return None


def openblas_function(name):
    """``(function, ilp64)`` for a CBLAS/OpenBLAS symbol of NumPy's OpenBLAS, e.g.
    ``"cblas_sgemm"`` (a ctypes function without argtypes; ``ilp64``: its integers are 64-bit),
    or None when the library or the symbol is not there."""
    found = openblas()
    if found is None:
        return None
    lib, prefix, suffix = found
    fn = getattr(lib, f"{prefix}{name}{suffix}", None)
    return None if fn is None else (fn, suffix.startswith("64"))


def openblas_threads():
    """``(get, set)`` ctypes functions of NumPy's OpenBLAS thread count, or None."""
    if _BLAS:
        return _BLAS[0]
    found = openblas()
    if found is None:
        _BLAS.append(None)
        return None
    import ctypes  # noqa: PLC0415

    lib, prefix, suffix = found
    get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}")
    put = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}")
    get.restype, get.argtypes = ctypes.c_int, []
    put.restype, put.argtypes = None, [ctypes.c_int]
    _BLAS.append((get, put))
    return _BLAS[0]


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


# ---- OpenBLAS and the pool take turns ----------------------------------------------------------
#
# NOTE (measured, this project's 2-core VM, 2 threads, interleaved A/B of whole training steps):
# after a product on two OpenBLAS threads, OpenBLAS's idle worker spins for ~0.1 s on the second
# core, so the pool's worker, when a split convolution or max pool wakes it, waits for a time
# slice there. Restoring OpenBLAS's count after each split job (the earlier rule) kept that
# going on W2 (LeNet: its Linear layers, 26 MFLOP, woke OpenBLAS's worker every step): 23.5 ms
# a step on two threads against 18.7 ms on one. With the rule below: 17.8 ms, CPU 23 ms per
# step instead of 47 (old and new code interleaved, 3 rounds of 30 steps). Keeping OpenBLAS on
# one thread and raising it only for each big product, back to one after, costs the products
# that do gain from two OpenBLAS threads (W1's 67-103 MFLOP layers, 1.3-1.7x faster on two) a
# wake-up of the sleeping worker each: W1 5.05 -> 5.98 ms a step. So the count is sticky:
# the pool sets it to one, and only a product of at least _ALL_THREADS_FLOPS sets it back
# (``before_product``, called by matmul and Linear), so models without split work keep
# OpenBLAS's threads throughout.
_ALL_THREADS_FLOPS = 5e7
_single = False  # the pool left OpenBLAS on one thread


def _blas_single():
    global _single
    if not _single:
        fns = openblas_threads()
        if fns is not None:
            fns[1](1)
            _single = True


def before_product(flops):
    """Before a BLAS product of ``flops``: a big one takes all of ember's threads back in
    OpenBLAS if the pool left it on one (a no-op inside a pool job)."""
    global _single
    if _single and flops >= _ALL_THREADS_FLOPS and not getattr(_INSIDE, "active", False):
        _single = False
        fns = openblas_threads()
        if fns is not None:
            fns[1](get_num_threads())


# ---- the pool ---------------------------------------------------------------------------------


class _Pool:
    """Daemon workers woken through one queue. ``run`` puts the parts of a job on a shared
    list, wakes as many workers as there are parts past the first, runs the first itself,
    then takes any part no worker has claimed yet, waits only for parts a worker is running,
    and re-raises the first error.

    NOTE (measured, this project's 2-core VM): waking a sleeping worker takes 20-300 us and
    varies from call to call (an idle virtual CPU must be woken by the host; a busy machine
    adds a wait for a time slice), against 25-30 us assumed earlier. When the wake-up is late
    the caller runs the parts itself, so a split job never takes much longer than running it
    whole on the caller: a worker that wakes to an empty list goes back to sleep.
    """

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
            self.tasks.get()._drain(False)

    def run(self, job, bounds, helpers=None):
        """``helpers``: how many workers to wake (default one per part past the first)."""
        helpers = len(bounds) - 1 if helpers is None else min(helpers, len(bounds) - 1)
        self.ensure(helpers)
        shared = _Shared(job, bounds[:0:-1])  # popped from the end: part 1 first
        for _ in range(helpers):
            self.tasks.put(shared)
        try:
            job(*bounds[0])
        except BaseException:
            with shared.lock:
                shared.parts.clear()  # nobody starts another part; running ones finish
            raise
        finally:
            shared._drain(True)
        if shared.errors:
            raise shared.errors[0]


class _Shared:
    """One split job's unclaimed parts, the count of parts workers are running, and the lock
    the caller waits on until the last of those finishes."""

    __slots__ = ("job", "parts", "running", "lock", "done", "waiting", "errors")

    def __init__(self, job, parts):
        self.job, self.parts = job, parts
        self.running = 0
        self.lock = threading.Lock()
        self.done = threading.Lock()
        self.done.acquire()
        self.waiting = False
        self.errors = []

    def _drain(self, caller):
        """Run unclaimed parts until none is left; the caller then waits for the workers'."""
        lock = self.lock
        while True:
            with lock:
                if not self.parts:
                    if caller and self.running:
                        self.waiting = True
                    break
                start, stop = self.parts.pop()
                self.running += not caller
            try:
                self.job(start, stop)
            except BaseException as error:  # noqa: BLE001  (handed to the caller)
                self.errors.append(error)
            finally:
                if not caller:
                    with lock:
                        self.running -= 1
                        if not self.running and self.waiting:
                            self.done.release()
        if caller and self.waiting:
            self.done.acquire()


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
    _blas_single()
    _INSIDE.active = True
    try:
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
