"""ReLU's native passes (ember/ops/_relu_native.py, native/relu.c): bit for bit NumPy's
values, masks and gradients (NaN, +-inf, -0.0 included), split into 1-5 parts."""

import os
import shutil

import numpy
import pytest
import torch

import ember
from ember.ops import _relu_native, activation

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None,
                                reason="no C compiler: ember uses its NumPy passes")


def _specials(shape, dtype, seed=0):
    x = numpy.random.default_rng(seed).standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[:8] = [numpy.nan, -0.0, 0.0, numpy.inf, -numpy.inf, 1e-45, -1e-45, -numpy.nan]
    flat[-3:] = [-0.0, numpy.nan, 5.0]
    return x


@pytest.mark.parametrize("parts", [1, 2, 3, 5])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape", [(64, 16, 28, 28), (1 << 15,), (3, 11, 1001)])
def test_forward_and_backward_bit_for_bit(monkeypatch, shape, dtype, parts):
    monkeypatch.setattr(_relu_native, "_parts", lambda x: parts)
    x = _specials(shape, dtype)
    lib = _relu_native.library(x)
    assert lib is not None
    y, mask = _relu_native.forward(lib, x)
    ref_y, ref_mask = numpy.empty_like(x), numpy.empty(x.shape, bool)
    activation._relu_fill(x.reshape(-1), ref_y.reshape(-1), ref_mask.reshape(-1))
    int_view = numpy.int32 if dtype == numpy.float32 else numpy.int64
    numpy.testing.assert_array_equal(y.view(int_view), ref_y.view(int_view))  # -0.0, NaN bits
    numpy.testing.assert_array_equal(mask, ref_mask)
    g = _specials(shape, dtype, seed=1)
    gx = _relu_native.backward(lib, g, mask)
    with numpy.errstate(invalid="ignore"):  # inf * 0
        ref_gx = g * ref_mask
    numpy.testing.assert_array_equal(gx.view(int_view), ref_gx.view(int_view))


def test_relu_through_autograd_takes_the_native_path_and_matches_torch(monkeypatch):
    seen = []
    lib = _relu_native.library(numpy.zeros(1 << 16))

    class Spy:
        def ember_relu(self, *args):
            seen.append(args[2])  # 0 forward, 1 backward
            return lib.ember_relu(*args)

    monkeypatch.setattr(_relu_native, "_LIB", [Spy()])
    x = _specials((32, 8, 16, 16), numpy.float32)
    g = numpy.random.default_rng(2).standard_normal(x.shape).astype(numpy.float32)
    tx = ember.tensor(x, requires_grad=True)
    ember.relu(tx).backward(ember.tensor(g))
    assert seen == [0, 1]
    t = torch.tensor(x, requires_grad=True)
    torch.relu(t).backward(torch.tensor(g))
    numpy.testing.assert_array_equal(ember.relu(ember.tensor(x)).numpy(), torch.relu(t).detach())
    finite = numpy.isfinite(x)  # NaN inputs: ember passes g * 1, torch too; compare the rest
    numpy.testing.assert_array_equal(tx.grad.numpy()[finite], t.grad.numpy()[finite])


def test_what_stays_with_numpy():
    small = numpy.zeros(100, numpy.float32)
    assert _relu_native.library(small) is None
    assert _relu_native.library(numpy.zeros((1 << 16,), numpy.float16)) is None
    assert _relu_native.library(numpy.zeros((512, 256), numpy.float32).T) is None
    assert _relu_native.library(numpy.zeros((1 << 16,), numpy.int32)) is None
