"""The per-channel normalizations' native row passes (ember/ops/_norm_native.py,
native/norm.c): the same values and gradients as ember's NumPy passes and PyTorch's, for
batch_norm (train and eval), instance_norm and group_norm, float32 and float64, with the
passes split into 1-5 parts."""

import os
import shutil

import numpy
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.ops import _norm_native
from tests.native_check import assert_three_way

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None,
                                reason="no C compiler: ember uses its NumPy passes")


@pytest.fixture
def calls(monkeypatch):
    """Count the native passes taken (and make sure the library is there)."""
    lib = _norm_native.library(numpy.zeros((1, 1, 1)))
    assert lib is not None
    seen = []

    class Spy:
        def __getattr__(self, name):
            def call(*args):
                seen.append(name)
                return getattr(lib, name)(*args)
            return call

    monkeypatch.setattr(_norm_native, "_LIB", [Spy()])
    return seen


@pytest.fixture
def numpy_only(monkeypatch):
    def off():
        monkeypatch.setattr(_norm_native, "_LIB", [None])
    return off


def _inputs(shape, dtype, seed=0, offset=3.0):
    rng = numpy.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    c = shape[1]
    w = (rng.standard_normal(c) * 0.5 + 1).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    return x, g, w, b


def _run(fn, x, g, w, b):
    tx = ember.tensor(x, requires_grad=True)
    tw = ember.tensor(w, requires_grad=True)
    tb = ember.tensor(b, requires_grad=True)
    y = fn(tx, tw, tb)
    y.backward(ember.tensor(g))
    return [a.numpy() for a in (y.detach(), tx.grad, tw.grad, tb.grad)]


CASES = {
    "batch_norm": lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
    "instance_norm": lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
    "group_norm": lambda x, w, b: F.group_norm(x, 2, w, b),
}
TORCH = {
    "batch_norm": lambda x, w, b: torch.nn.functional.batch_norm(x, None, None, w, b,
                                                                 training=True),
    "instance_norm": lambda x, w, b: torch.nn.functional.instance_norm(x, weight=w, bias=b),
    "group_norm": lambda x, w, b: torch.nn.functional.group_norm(x, 2, w, b),
}


SHAPES = [(name, shape) for name in CASES for shape in [(7, 4, 9, 11), (3, 6, 33)]]
SHAPES.append(("batch_norm", (16, 4)))  # (N, C): one value per row


@pytest.mark.parametrize("parts", [1, 2, 3, 5])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("name, shape", SHAPES)
def test_native_matches_numpy_and_torch(calls, numpy_only, monkeypatch, name, shape, dtype,
                                        parts):
    monkeypatch.setattr(_norm_native, "_parts", lambda x: parts)
    x, g, w, b = _inputs(shape, dtype)
    native = _run(CASES[name], x, g, w, b)
    assert {"ember_norm_stats", "ember_norm_affine", "ember_norm_dots",
            "ember_norm_grad"} <= set(calls)
    numpy_only()
    reference = _run(CASES[name], x, g, w, b)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    ty = TORCH[name](tx, tw, tb)
    ty.backward(torch.tensor(g))
    oracle = [a.detach().numpy() for a in (ty, tx.grad, tw.grad, tb.grad)]
    assert_three_way(native, reference, oracle, dtype, 2e-4, 1e-10)


def test_float32_statistics_with_a_large_mean(calls):
    """Sums in float64, centred before squaring: a mean 1e4 times the spread loses nothing
    of the variance in float32 (E[x^2] - mean^2 would lose it all)."""
    rng = numpy.random.default_rng(1)
    x = (rng.standard_normal((8, 3, 64, 64)) * 0.01 + 100.0).astype(numpy.float32)
    y = F.batch_norm(ember.tensor(x), None, None, training=True).numpy()
    ref = torch.nn.functional.batch_norm(torch.tensor(x, dtype=torch.float64), None, None,
                                         training=True).numpy()
    numpy.testing.assert_allclose(y, ref, rtol=0, atol=2e-3)
    assert calls


def test_running_statistics_and_eval_mode(calls, numpy_only):
    """The running statistics updated from the native statistics, and the eval forward and
    backward (fixed statistics: gx = k * g) on the native affine pass."""
    x, g, w, b = _inputs((6, 5, 7, 7), numpy.float64, seed=2)
    results = []
    for native in (True, False):
        if not native:
            numpy_only()
        bn = ember.nn.BatchNorm2d(5).double()
        bn.weight.data = ember.tensor(w)
        bn.bias.data = ember.tensor(b)
        bn(ember.tensor(x))
        bn(ember.tensor(x * 0.5 + 1))
        bn.eval()
        out = _run(lambda t, tw, tb: F.batch_norm(t, bn.running_mean, bn.running_var, tw, tb),
                   x, g, w, b)
        results.append([bn.running_mean.numpy(), bn.running_var.numpy()] + out)
    assert "ember_norm_affine" in calls
    for mine, ref in zip(*results):
        numpy.testing.assert_allclose(mine, ref, rtol=1e-12, atol=1e-12)
    t = torch.nn.BatchNorm2d(5).double()
    t(torch.tensor(x))
    t(torch.tensor(x * 0.5 + 1))
    numpy.testing.assert_allclose(results[0][0], t.running_mean.numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(results[0][1], t.running_var.numpy(), rtol=1e-12)


def test_gradcheck_float64_through_the_native_passes(calls):
    rng = numpy.random.default_rng(3)
    x = ember.tensor(rng.standard_normal((4, 3, 5)), requires_grad=True)
    w = ember.tensor(rng.standard_normal(3), requires_grad=True)
    b = ember.tensor(rng.standard_normal(3), requires_grad=True)
    assert ember.autograd.gradcheck(
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (x, w, b))
    assert "ember_norm_grad" in calls


def test_what_stays_with_numpy(calls):
    """float16, non-contiguous (A, C, L) views and empty inputs take the NumPy passes."""
    x = numpy.random.default_rng(4).standard_normal((4, 3, 6)).astype(numpy.float16)
    y = F.batch_norm(ember.tensor(x), None, None, training=True)
    assert y.dtype == ember.float16
    assert _norm_native.library(numpy.zeros((4, 3, 6))[:, :, ::2]) is None
    assert _norm_native.library(numpy.zeros((0, 3, 6))) is None
    assert _norm_native.library(x) is None
    assert not calls


@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("name", ["layer_norm", "rms_norm", "layer_norm_plain"])
def test_weight_per_l_matches_numpy_and_torch(calls, numpy_only, monkeypatch, name, dtype,
                                              parts):
    """layer_norm (affine or not) and rms_norm over the last two dims of (6, 7, 5, 12)."""
    monkeypatch.setattr(_norm_native, "_parts", lambda x: parts)
    rng = numpy.random.default_rng(8)
    x = (rng.standard_normal((6, 7, 5, 12)) * 2 + 1).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    w = (rng.standard_normal((5, 12)) * 0.5 + 1).astype(dtype)
    b = rng.standard_normal((5, 12)).astype(dtype)
    affine = name != "layer_norm_plain"

    def run(lib, xv, wv, bv):
        if name == "rms_norm":
            return lib.nn.functional.rms_norm(xv, (5, 12), wv, eps=1e-6)
        return lib.nn.functional.layer_norm(xv, (5, 12), wv if affine else None,
                                            bv if affine else None)

    def grads(lib, make):
        tensors = [make(a) for a in (x, w, b)]
        y = run(lib, *tensors)
        y.backward(make(g, False))
        used = tensors[:2] if name == "rms_norm" else tensors if affine else tensors[:1]
        return [y.detach().numpy()] + [t.grad.numpy() for t in used]

    native = grads(ember, lambda a, rg=True: ember.tensor(a, requires_grad=rg))
    assert {"ember_norm_stats", "ember_norm_l_affine", "ember_norm_l_grad"} <= set(calls)
    numpy_only()
    reference = grads(ember, lambda a, rg=True: ember.tensor(a, requires_grad=rg))
    oracle = grads(torch, lambda a, rg=True: torch.tensor(a, requires_grad=rg))
    assert_three_way(native, reference, oracle, dtype, 2e-4, 1e-10)
