"""ember.backend.threads: the thread count, OpenBLAS's count, and the split-job pool."""

import threading

import numpy
import pytest

import ember
from ember.backend import gemm, threads


def test_split_covers_the_range_in_contiguous_parts():
    for n, grain, k in [(10, 1, 2), (10, 6, 2), (7, 2, 3), (0, 1, 2), (5, 1, 8)]:
        bounds = threads.split(n, grain, k)
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert len(bounds) <= max(1, k)
        if len(bounds) > 1:
            assert min(stop - start for start, stop in bounds) >= grain


def test_parallel_runs_every_part_once_on_several_threads(monkeypatch):
    monkeypatch.setattr(threads, "_COUNT", [3])
    out = numpy.zeros(30)
    names = set()
    together = threading.Barrier(3, timeout=10)  # fails unless the three parts run at once

    def job(start, stop):
        together.wait()
        names.add(threading.get_ident())
        out[start:stop] += numpy.arange(start, stop)

    threads.parallel(job, 30, grain=5)
    numpy.testing.assert_array_equal(out, numpy.arange(30))
    assert len(names) == 3


def test_parallel_reraises_a_worker_error(monkeypatch):
    monkeypatch.setattr(threads, "_COUNT", [2])

    def job(start, stop):
        if start > 0:
            raise ValueError("part two failed")

    with pytest.raises(ValueError, match="part two failed"):
        threads.parallel(job, 10)


def test_one_thread_runs_on_the_caller(monkeypatch):
    monkeypatch.setattr(threads, "_COUNT", [1])
    seen = []
    threads.parallel(lambda a, b: seen.append((threading.current_thread().name, a, b)), 10)
    assert seen == [(threading.current_thread().name, 0, 10)]


def test_set_num_threads_sets_ember_and_openblas():
    before = ember.get_num_threads()
    fns = threads.openblas_threads()
    blas_before = fns[0]() if fns else None
    try:
        ember.set_num_threads(1)
        assert ember.get_num_threads() == 1
        if fns:
            assert fns[0]() == 1
    finally:
        ember.set_num_threads(before)
        if fns:
            fns[1](blas_before)
    with pytest.raises(ValueError, match="positive int"):
        ember.set_num_threads(0)


def test_default_count_reads_the_environment(monkeypatch):
    monkeypatch.setenv("EMBER_NUM_THREADS", "3")
    assert threads._default_count() == 3
    monkeypatch.delenv("EMBER_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads._default_count() == 1


def test_nested_parallel_runs_inline_instead_of_deadlocking(monkeypatch):
    monkeypatch.setattr(threads, "_COUNT", [2])
    out = numpy.zeros(40)

    def inner(start, stop):
        out[start:stop] += 1

    def outer(start, stop):
        threads.parallel(lambda a, b: inner(start + a, start + b), stop - start)

    done = threading.Event()
    runner = threading.Thread(target=lambda: (threads.parallel(outer, 40), done.set()),
                              daemon=True)
    runner.start()
    assert done.wait(10), "nested parallel() deadlocked"
    numpy.testing.assert_array_equal(out, numpy.ones(40))


def test_the_caller_runs_parts_no_worker_has_claimed(monkeypatch):
    pool = threads._Pool()
    monkeypatch.setattr(pool, "ensure", lambda n: None)  # no worker will ever wake
    seen = []
    pool.run(lambda a, b: seen.append((threading.get_ident(), a, b)), [(0, 5), (5, 9), (9, 12)])
    assert sorted(s[1:] for s in seen) == [(0, 5), (5, 9), (9, 12)]
    assert {s[0] for s in seen} == {threading.get_ident()}


def test_parts_stop_starting_after_the_callers_part_fails(monkeypatch):
    pool = threads._Pool()
    monkeypatch.setattr(pool, "ensure", lambda n: None)
    ran = []

    def job(start, stop):
        ran.append(start)
        if start == 0:
            raise KeyError("first part")

    with pytest.raises(KeyError, match="first part"):
        pool.run(job, [(0, 1), (1, 2), (2, 3)])
    assert ran == [0]


def test_the_caller_waits_for_a_part_a_worker_is_running(monkeypatch):
    monkeypatch.setattr(threads, "_COUNT", [2])
    release = threading.Event()
    out = numpy.zeros(2)

    def job(start, stop):
        if start == 1:  # the worker's part finishes only after the caller is done with its own
            assert release.wait(10)
        out[start:stop] = 1
        if start == 0:
            release.set()

    threads.parallel(job, 2)
    numpy.testing.assert_array_equal(out, [1, 1])


def test_pool_leaves_openblas_on_one_thread_until_a_big_product(monkeypatch):
    """Without the native pool (no compiler, EMBER_NATIVE=0): the Python pool's split work
    sets OpenBLAS to one thread and leaves it there; small products keep it, a product of at
    least _ALL_THREADS_FLOPS (Linear or matmul) takes ember's count back, so OpenBLAS's idle
    workers and the pool's do not share the second core."""
    fns = threads.openblas_threads()
    if fns is None:
        pytest.skip("NumPy's BLAS is not the bundled OpenBLAS: nothing to switch")
    monkeypatch.setattr(gemm, "_STATE", [None])
    before = ember.get_num_threads()
    try:
        ember.set_num_threads(2)
        threads.parallel(lambda a, b: None, 10)
        assert fns[0]() == 1 and threads._single
        small = ember.randn(8, 8)
        (small @ small).sum()
        ember.nn.functional.linear(small, small)
        assert fns[0]() == 1
        big = ember.randn(256, 512, requires_grad=True)  # 2 * 256 * 512 * 512 = 134 MFLOP
        w = ember.randn(512, 512)
        ember.nn.functional.linear(big, w)
        assert fns[0]() == 2 and not threads._single
        threads.parallel(lambda a, b: None, 10)
        assert fns[0]() == 1
        (big @ w).sum().backward()  # the forward product takes the count back
        assert fns[0]() == 2
        threads.parallel(lambda a, b: None, 10)
        ember.set_num_threads(2)
        assert fns[0]() == 2 and not threads._single
    finally:
        ember.set_num_threads(before)


def test_native_products_keep_openblas_on_one_thread():
    """With the native pool, ember splits its products itself (backend/gemm.py): OpenBLAS
    stays on one thread, big products included, so its workers never spin on a core."""
    fns = threads.openblas_threads()
    if fns is None or gemm.native_kernels() is None:
        pytest.skip("no bundled OpenBLAS or no native kernels: the test above covers it")
    before = ember.get_num_threads()
    try:
        ember.set_num_threads(2)
        assert fns[0]() == 2
        big = ember.randn(256, 512, requires_grad=True)
        w = ember.randn(512, 512, requires_grad=True)
        ember.nn.functional.linear(big, w).sum().backward()
        assert fns[0]() == 1 and threads._single
        (big @ w).sum().backward()
        assert fns[0]() == 1
    finally:
        ember.set_num_threads(before)
