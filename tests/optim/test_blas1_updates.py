"""The level-1 BLAS paths of SGD and Adam/AdamW (ember/backend/blas1.py, sgd._sgd_blas,
adam._adam_blas_block): taken for big contiguous float parameters (SGD after its first step,
Adam without L2 decay or amsgrad), equal to torch.optim for every option, within rounding of
ember's NumPy path, and left alone for arrays and options they do not fit."""

import os
import shutil

import numpy
import pytest
import torch

import ember
from ember import optim
from ember.backend import blas1
from ember.optim import adam, optimizer, sgd
from tests.optim import _model
from tests.optim.test_optimizers import CASES, _compare, _ids

SGD_CASES = [c for c in CASES if c[0] == "SGD"] + [
    ("SGD", dict(lr=0.001, momentum=0.5, nesterov=True, weight_decay=0.01, maximize=True)),
    ("SGD", dict(lr=0.002, weight_decay=0.02, maximize=True)),
]

if blas1.kernels(numpy.zeros(blas1.MIN_SIZE, numpy.float32)) is None:
    pytest.skip("NumPy's BLAS is not the bundled OpenBLAS: no level-1 path to test",
                allow_module_level=True)


def _spy(monkeypatch, module, name):
    """Count the calls of ``module.name`` (still running it); returns the list of calls."""
    calls = []
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *args: calls.append(1) or real(*args))
    return calls


@pytest.fixture
def blas_calls(monkeypatch):
    """Every parameter qualifies (MIN_SIZE 1); returns the list of _sgd_blas calls."""
    monkeypatch.setattr(blas1, "MIN_SIZE", 1)
    return _spy(monkeypatch, sgd, "_sgd_blas")


@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", SGD_CASES, ids=[_ids(c) for c in SGD_CASES])
def test_blas_path_matches_torch(case, dtype, blas_calls):
    name, options = case
    make_ours = lambda p: optim.SGD(p, **options)  # noqa: E731
    make_theirs = lambda p: torch.optim.SGD(p, **options)  # noqa: E731
    if dtype == numpy.float64:
        e = _model.train(make_ours, "ember", dtype)
        t = _model.train(make_theirs, "torch", dtype)
    else:
        e, t = _model.train_lockstep(make_ours, make_theirs, dtype)
    # four parameters; with momentum the first step builds the buffers on the NumPy path
    steps_on_blas = 49 if options.get("momentum") else 50
    assert len(blas_calls) >= 4 * steps_on_blas
    start, _, _ = _model.make_arrays(dtype)
    assert all(numpy.isfinite(a).all() for a in e), "training diverged; pick a smaller lr"
    assert all(not numpy.allclose(a, b) for a, b in zip(e, start)), "a parameter did not move"
    _compare(e, t, dtype)


def _big_run(options, dtype, steps=3, order="C"):
    rng = numpy.random.default_rng(3)
    shape = (blas1.MIN_SIZE // 64 + 5, 64)  # just over the threshold
    start = rng.standard_normal(shape).astype(dtype)
    p = ember.tensor(numpy.asarray(start, order=order), requires_grad=True)
    opt = optim.SGD([p], **options)
    for _ in range(steps):
        p.grad = ember.tensor(rng.standard_normal(shape).astype(dtype))
        opt.step()
    return p.detach().numpy()


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("options", [dict(lr=0.1, momentum=0.9),
                                     dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
                                     dict(lr=0.1, weight_decay=0.1, maximize=True)])
def test_big_parameters_take_it_and_agree_with_the_numpy_path(options, dtype, monkeypatch):
    calls = _spy(monkeypatch, sgd, "_sgd_blas")
    fast = _big_run(options, dtype)
    assert len(calls) == (2 if options.get("momentum") else 3)
    monkeypatch.setattr(blas1, "kernels", lambda *arrays: None)
    slow = _big_run(options, dtype)
    tol = 1e-6 if dtype == numpy.float32 else 1e-14
    numpy.testing.assert_allclose(fast, slow, rtol=tol, atol=tol)
    assert not numpy.array_equal(fast, _big_run(options, dtype, steps=0))


def test_arrays_it_does_not_fit_keep_the_numpy_path(monkeypatch):
    monkeypatch.setattr(sgd, "_sgd_blas", lambda *a: pytest.fail("took the BLAS path"))
    _big_run(dict(lr=0.1, momentum=0.9), numpy.float32, order="F")  # not C-contiguous
    small = numpy.zeros(blas1.MIN_SIZE - 1, numpy.float32)
    big = numpy.zeros(blas1.MIN_SIZE, numpy.float32)
    assert blas1.kernels(small, small) is None
    assert blas1.kernels(big, big.astype(numpy.float64)) is None
    assert blas1.kernels(big, big[::-1]) is None
    assert blas1.kernels(big.astype(numpy.int32)) is None
    frozen = big.copy()
    frozen.flags.writeable = False
    assert blas1.kernels(frozen, big) is None
    assert blas1.kernels(big, big) is not None


def test_kernels_compute_axpby_and_axpy():
    rng = numpy.random.default_rng(0)
    for dtype in (numpy.float32, numpy.float64):
        x = rng.standard_normal(blas1.MIN_SIZE).astype(dtype)
        y = rng.standard_normal(blas1.MIN_SIZE).astype(dtype)
        k = blas1.kernels(x, y)
        expected = 0.5 * x.astype(numpy.float64) - 2.0 * y
        k.axpby(0.5, x, -2.0, y)
        numpy.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
        before = y.astype(numpy.float64)
        k.axpy(3.0, x, y)
        numpy.testing.assert_allclose(y, before + 3.0 * x, rtol=1e-6, atol=1e-5)


ADAM_CASES = [c for c in CASES if c[0] in ("Adam", "AdamW")] + [
    ("AdamW", dict(lr=0.01, weight_decay=0.1, maximize=True)),
]


def _takes_blas(name, options):
    """Adam's BLAS path: no amsgrad, and weight decay (if any) decoupled."""
    if options.get("amsgrad"):
        return False
    return bool(name == "AdamW" or options.get("decoupled_weight_decay")
                or not options.get("weight_decay"))


def _fast_path(monkeypatch, path):
    """Count the steps that take Adam's fast ``path``: 'fused' (the native one-pass step,
    blas1.adam) or 'blocks' (_adam_blas_block, the native step turned off)."""
    if path == "blocks":
        monkeypatch.setattr(blas1, "adam", lambda *arrays: None)
        return _spy(monkeypatch, adam, "_adam_blas_block")
    if shutil.which(os.environ.get("CC") or "cc") is None:
        pytest.skip("no C compiler: no native Adam step (the blocks path is tested)")
    calls = []
    real = blas1.adam

    def spy(*arrays):
        step = real(*arrays)
        if step is not None:
            calls.append(1)
        return step

    monkeypatch.setattr(blas1, "adam", spy)
    return calls


@pytest.mark.parametrize("path", ["fused", "blocks"])
@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", ADAM_CASES, ids=[_ids(c) for c in ADAM_CASES])
def test_adam_blas_path_matches_torch(case, dtype, path, monkeypatch):
    name, options = case
    monkeypatch.setattr(blas1, "MIN_SIZE", 1)
    calls = _fast_path(monkeypatch, path)
    make_ours = lambda p: getattr(optim, name)(p, **options)  # noqa: E731
    make_theirs = lambda p: getattr(torch.optim, name)(p, **options)  # noqa: E731
    if dtype == numpy.float64:
        e = _model.train(make_ours, "ember", dtype)
        t = _model.train(make_theirs, "torch", dtype)
    else:
        e, t = _model.train_lockstep(make_ours, make_theirs, dtype)
    assert (len(calls) >= 4 * 50) == _takes_blas(name, options), (len(calls), options)
    start, _, _ = _model.make_arrays(dtype)
    assert all(numpy.isfinite(a).all() for a in e), "training diverged; pick a smaller lr"
    assert all(not numpy.allclose(a, b) for a, b in zip(e, start)), "a parameter did not move"
    _compare(e, t, dtype)


@pytest.mark.parametrize("path", ["fused", "blocks"])
@pytest.mark.parametrize("name, options", [("Adam", dict(lr=0.01)),
                                           ("AdamW", dict(lr=0.01, weight_decay=0.1)),
                                           ("Adam", dict(lr=0.01, maximize=True))])
def test_big_adam_parameters_agree_with_the_numpy_path(name, options, path, monkeypatch):
    rng = numpy.random.default_rng(5)
    shape = (max(blas1.MIN_SIZE, optimizer.BLOCK) // 64 + 5, 64)  # two blocks
    start = rng.standard_normal(shape).astype(numpy.float32)
    grads = [rng.standard_normal(shape).astype(numpy.float32) for _ in range(3)]

    def run():
        p = ember.tensor(start.copy(), requires_grad=True)
        opt = getattr(optim, name)([p], **options)
        for g in grads:
            p.grad = ember.tensor(g)
            opt.step()
        return p.detach().numpy()

    calls = _fast_path(monkeypatch, path)
    fast = run()
    assert calls, "the big parameter did not take the fast path"
    monkeypatch.setattr(blas1, "kernels", lambda *arrays: None)
    monkeypatch.setattr(blas1, "adam", lambda *arrays: None)
    slow = run()
    numpy.testing.assert_allclose(fast, slow, rtol=1e-6, atol=1e-6)
    assert not numpy.allclose(fast, start)
