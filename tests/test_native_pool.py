"""ember's native thread pool (ember/backend/native/pool.c) and what runs on it: matrix
products split over threads (ember/backend/gemm.py, native/gemm.c) and the optimizers'
level-1 updates (ember/backend/blas1.py, native/vector.c). The LSTM's row ranges on the pool:
tests/nn/test_rnn_native.py."""

import os
import shutil
import subprocess
import sys
import threading

import numpy
import pytest

import ember
from ember.backend import blas1, gemm, native, threads

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None,
                                reason="no C compiler: ember uses NumPy's and OpenBLAS's own")


@pytest.fixture
def two_threads():
    before = threads.get_num_threads()
    ember.set_num_threads(2)
    yield
    ember.set_num_threads(before)


@pytest.fixture
def native_calls(monkeypatch):
    """Count the products that take the native path."""
    found = gemm.native_kernels()
    assert found is not None, native.reason()
    seen = []

    class Spy:
        def ember_gemm(self, *args):
            seen.append(args[5:10])  # m, n, k, outer, inner
            return found[0].ember_gemm(*args)

    monkeypatch.setattr(gemm, "_STATE", [(Spy(),) + found[1:]])
    monkeypatch.setattr(gemm, "SPLIT_FLOPS", 1e4)  # small shapes take the native path too
    return seen


def _probe(parts, work=0):
    out = numpy.zeros(2 * parts, dtype=numpy.int64)
    native.library().ember_pool_probe(parts, work, out.ctypes.data)
    return out[0::2], out[1::2]


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_every_part_runs_once(parts):
    for _ in range(50):
        done, _ = _probe(parts, 2000)
        assert list(done) == list(range(1, parts + 1))


def test_a_worker_takes_parts():
    # the worker polls for the next call, so a stream of calls finds it awake
    others = 0
    for _ in range(400):
        _, who = _probe(2, 200000)
        others += int(who[1]) != int(who[0])
    assert native.library().ember_pool_workers() >= 1
    assert others > 0, "no part ran on a pool worker"


def test_calls_from_several_threads_all_complete():
    errors = []

    def run():
        try:
            for _ in range(200):
                done, _ = _probe(3, 500)
                assert list(done) == [1, 2, 3]
        except AssertionError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not errors and not any(w.is_alive() for w in workers)


def test_a_forked_child_starts_its_own_workers(two_threads):
    code = (
        "import os, numpy, ember\n"
        "from ember.backend import gemm\n"
        "ember.set_num_threads(2)\n"
        "a = numpy.ones((256, 256), numpy.float32)\n"
        "gemm.matmul(a, a)\n"  # the parent's pool has a worker now
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    r = gemm.matmul(a, a)\n"
        "    os._exit(0 if (r == 256).all() else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


def _reference(a, b):
    return numpy.matmul(a.astype(numpy.float64), b.astype(numpy.float64))


def _layouts(rng, dtype, m, k, n):
    """(a, b) pairs of one product in the layouts BLAS takes: row- and column-major, strided
    windows of bigger arrays, transposed views."""
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    big = rng.standard_normal((m + 3, k + 5)).astype(dtype)
    return [
        (a, b),
        (numpy.asfortranarray(a), b),
        (a, numpy.asfortranarray(b)),
        (numpy.asfortranarray(a), numpy.asfortranarray(b)),
        (big[1:m + 1, 2:k + 2], b),
        (rng.standard_normal((k, m)).astype(dtype).T, b),
    ]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("m, k, n", [(128, 96, 160), (160, 96, 33), (33, 70, 129),
                                     (300, 17, 5)])
def test_split_products_match_numpy(two_threads, native_calls, dtype, m, k, n):
    rng = numpy.random.default_rng(0)
    tol = 1e-4 if dtype == numpy.float32 else 1e-11
    for a, b in _layouts(rng, dtype, m, k, n):
        got = gemm.matmul(a, b)
        assert got.dtype == dtype and got.shape == (m, n)
        numpy.testing.assert_allclose(got, _reference(a, b), rtol=tol, atol=tol * 10)
    assert len(native_calls) == 6


@pytest.mark.parametrize("by", [1, 2])
def test_rows_and_columns_splits_agree(by):
    # one product cut by output rows (1) or columns (2), more parts than threads
    found = gemm.native_kernels()
    lib, sgemm, _, ilp64 = found
    rng = numpy.random.default_rng(1)
    a = rng.standard_normal((70, 45)).astype(numpy.float32)
    b = rng.standard_normal((45, 150)).astype(numpy.float32)
    out = numpy.full((70, 150), numpy.nan, dtype=numpy.float32)
    lib.ember_gemm(sgemm, ilp64, 0, 0, 0, 70, 150, 45, 1, 1, a.ctypes.data, 45, 0, 0,
                   b.ctypes.data, 150, 0, 0, out.ctypes.data, 150, 0, 0, 1.0, 0.0, None, 0, 5,
                   by)
    numpy.testing.assert_allclose(out, _reference(a, b), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_stacks_of_products(two_threads, native_calls, dtype):
    rng = numpy.random.default_rng(2)
    tol = 1e-4 if dtype == numpy.float32 else 1e-11
    x = rng.standard_normal((6, 4, 40, 24)).astype(dtype)
    y = rng.standard_normal((6, 4, 24, 48)).astype(dtype)
    cases = [
        (x, y, None),
        (x, y[:1], None),                                  # broadcast batch dim
        (x, y[0, 0], None),                                # one matrix for all
        (x[0], rng.standard_normal((24, 48)).astype(dtype), None),
        (x.transpose(1, 0, 2, 3), y.transpose(1, 0, 2, 3), None),  # batch dims swapped
        (x, y.swapaxes(2, 3).copy().swapaxes(2, 3), None),
        # written into a permuted buffer, as multi-head attention merges its heads
        (x, y, numpy.empty((6, 40, 4, 48), dtype).transpose(0, 2, 1, 3)),
    ]
    for a, b, out in cases:
        got = gemm.matmul(a, b, out=out)
        if out is not None:
            assert got is out
        numpy.testing.assert_allclose(got, _reference(a, b), rtol=tol, atol=tol * 10)
    assert len(native_calls) == len(cases)
    assert native_calls[0][3:] == (1, 24) and native_calls[4][3:] == (4, 6)


@pytest.mark.parametrize("m", [7, 8, 13, 64])
@pytest.mark.parametrize("n", [32, 96])
def test_small_products_without_blas(two_threads, native_calls, m, n):
    """Stacks of float32 products small enough for native/kernels.c's own tiles (n a
    multiple of 32): plain and transposed left operands, a permuted output buffer."""
    rng = numpy.random.default_rng(3)
    k = 64  # with 512 matrices, enough work to split (gemm.SPLIT_FLOPS)
    a = rng.standard_normal((128, 4, m, k)).astype(numpy.float32)
    at = rng.standard_normal((128, 4, k, m)).astype(numpy.float32).swapaxes(2, 3)
    b = rng.standard_normal((128, 4, k, n)).astype(numpy.float32)
    out = numpy.full((128, m, 4, n), numpy.nan, numpy.float32).transpose(0, 2, 1, 3)
    for left, dest in ((a, None), (at, None), (a, out)):
        got = gemm.matmul(left, b, out=dest)
        numpy.testing.assert_allclose(got, _reference(left, b), rtol=1e-4, atol=1e-4)
    assert len(native_calls) == 3


def test_what_stays_with_numpy(monkeypatch, native_calls):
    ember.set_num_threads(2)
    try:
        rng = numpy.random.default_rng(3)
        a = rng.standard_normal((200, 200)).astype(numpy.float32)
        numpy.testing.assert_array_equal(gemm.matmul(a[:4, :4], a[:4, :4]),
                                         a[:4, :4] @ a[:4, :4])              # too small
        ints = (a * 10).astype(numpy.int64)
        numpy.testing.assert_array_equal(gemm.matmul(ints, ints), ints @ ints)  # not float
        gemm.matmul(a, a.astype(numpy.float64))                             # mixed dtypes
        gemm.matmul(a[::2, ::2], a[::2, ::2])                               # no unit stride
        out = numpy.empty((200, 200), numpy.float32)
        gemm.matmul(a, a, out=a)                                            # out overlaps
        numpy.testing.assert_allclose(gemm.matmul(a, a, out=out[::-1]), a @ a, rtol=1e-5)
        assert native_calls == []
        ember.set_num_threads(1)
        gemm.matmul(a.astype(numpy.float64), a.astype(numpy.float64))     # one thread
        assert native_calls == []
        gemm.matmul(a, a)    # float32 on one thread: ember's own kernel when built (sgemm.c)
        assert len(native_calls) == gemm._own(a.dtype)
    finally:
        ember.set_num_threads(threads._default_count())


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_level1_updates_on_the_pool(two_threads, dtype):
    rng = numpy.random.default_rng(4)
    n = blas1.MIN_SIZE * 3 + 17  # blocks of 16 and a ragged end
    x = rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    kernels = blas1.kernels(x, y)
    assert isinstance(kernels, blas1._PoolKernels)
    tol = 1e-6 if dtype == numpy.float32 else 1e-14
    expect = 0.3 * x + 0.9 * y
    kernels.axpby(0.3, x, 0.9, y)
    numpy.testing.assert_allclose(y, expect, rtol=tol, atol=tol)
    expect = y - 0.25 * x
    kernels.axpy(-0.25, x, y)
    numpy.testing.assert_allclose(y, expect, rtol=tol, atol=tol)
