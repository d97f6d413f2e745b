"""The native row-shift convolution (ember/ops/_conv_native.py, native/conv.c): forward,
input, weight and bias gradients equal to conv.py's Python-thread path and to PyTorch's, for
1-D and 2-D 'same' convs (odd and even kernels, dilation, bias or not), float32 and float64,
the batch split into 1-5 parts."""

import os
import shutil

import numpy
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.ops import _conv_native
from tests.native_check import assert_three_way, run_with_capped_memory

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None,
                                reason="no C compiler: ember uses its NumPy paths")

# (input shape, weight shape, padding, dilation, bias)
CASES = [
    ((3, 16, 9, 11), (8, 16, 3, 3), 1, 1, True),
    ((4, 3, 16, 16), (32, 3, 3, 3), 1, 1, False),      # few input rows (a stem)
    ((5, 1, 12, 12), (16, 1, 3, 3), 1, 1, True),
    ((4, 32, 8, 8), (32, 32, 3, 3), 1, 1, False),     # stacked product (K >= 96)
    ((3, 32, 16, 16), (32, 32, 3, 3), 1, 1, True),    # stacked, rows of 288: unpacked tiles
    ((2, 24, 7, 10), (40, 24, 3, 5), (1, 2), 1, True),
    ((3, 16, 10, 9), (16, 16, 4, 4), "same", 1, True),  # even kernel: asymmetric padding
    ((2, 16, 12, 12), (16, 16, 3, 3), 2, 2, False),    # dilation
    ((5, 48, 20), (24, 48, 3), 1, 1, True),              # 1-D
    ((1, 20, 6, 6), (20, 20, 5, 5), 2, 1, True),
]


def _conv(x, w, b, padding, dilation):
    fn = F.conv2d if x.ndim == 4 else F.conv1d
    return fn(x, w, b, padding=padding, dilation=dilation)


def _torch_conv(x, w, b, padding, dilation):
    fn = torch.nn.functional.conv2d if x.ndim == 4 else torch.nn.functional.conv1d
    return fn(x, w, b, padding=padding, dilation=dilation)


def _grads(xs, ws, padding, dilation, bias, dtype, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = (rng.standard_normal(ws) * 0.2).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if bias else None
    tensors = [ember.tensor(a, requires_grad=True) if a is not None else None for a in (x, w, b)]
    y = _conv(*tensors, padding, dilation)
    g = rng.standard_normal(y.shape).astype(dtype)
    y.backward(ember.tensor(g))
    out = [y.detach().numpy()] + [t.grad.numpy() for t in tensors if t is not None]
    return out, (x, w, b, g)


@pytest.fixture
def calls(monkeypatch):
    """Count the native calls (and make sure the native convolution is there)."""
    found = _conv_native.kernels(numpy, numpy.zeros(1, numpy.float32))
    assert found is not None
    seen = []

    class Spy:
        def ember_conv_rows(self, *args):
            seen.append(args[3])  # the batch size
            return found[0].ember_conv_rows(*args)

    real = _conv_native.kernels

    def kernels(xp, *arrays):
        got = real(xp, *arrays)
        return None if got is None else (Spy(),) + got[1:]

    monkeypatch.setattr(_conv_native, "kernels", kernels)
    return seen


@pytest.mark.parametrize("parts", [1, 2, 3, 5])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_native_matches_python_path_and_torch(calls, monkeypatch, case, dtype, parts):
    xs, ws, padding, dilation, bias = CASES[case]
    monkeypatch.setattr(_conv_native, "parts", lambda n: max(1, min(parts, n)))
    native, (x, w, b, g) = _grads(xs, ws, padding, dilation, bias, dtype)
    assert len(calls) == 2, calls  # the forward, and one backward for all three gradients
    monkeypatch.setattr(_conv_native, "kernels", lambda xp, *arrays: None)
    python, _ = _grads(xs, ws, padding, dilation, bias, dtype)
    tensors = [torch.tensor(a, requires_grad=True) if a is not None else None for a in (x, w, b)]
    ty = _torch_conv(*tensors, padding, dilation)
    ty.backward(torch.tensor(g))
    oracle = [ty.detach().numpy()] + [t.grad.numpy() for t in tensors if t is not None]
    assert_three_way(native, python, oracle, dtype, 1e-4, 1e-11)


def test_weight_gradient_alone_and_input_gradient_alone(calls):
    """A frozen weight (input gradient only) and an input without gradient (weight and bias
    only, the first layer of a network)."""
    rng = numpy.random.default_rng(5)
    x = rng.standard_normal((6, 16, 10, 10)).astype(numpy.float32)
    w = (rng.standard_normal((32, 16, 3, 3)) * 0.2).astype(numpy.float32)
    b = rng.standard_normal(32).astype(numpy.float32)
    g = rng.standard_normal((6, 32, 10, 10)).astype(numpy.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    torch.nn.functional.conv2d(tx, tw, tb, padding=1).backward(torch.tensor(g))
    ex = ember.tensor(x, requires_grad=True)
    F.conv2d(ex, ember.tensor(w), ember.tensor(b), padding=1).backward(ember.tensor(g))
    numpy.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    ew, eb = ember.tensor(w, requires_grad=True), ember.tensor(b, requires_grad=True)
    F.conv2d(ember.tensor(x), ew, eb, padding=1).backward(ember.tensor(g))
    numpy.testing.assert_allclose(ew.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-4)
    numpy.testing.assert_allclose(eb.grad.numpy(), tb.grad.numpy(), rtol=1e-4, atol=1e-4)
    assert len(calls) == 4


def test_gradcheck_and_double_backward_float64(calls):
    rng = numpy.random.default_rng(6)
    x = ember.tensor(rng.standard_normal((2, 16, 5, 6)), requires_grad=True)
    w = ember.tensor(rng.standard_normal((16, 16, 3, 3)) * 0.2, requires_grad=True)
    b = ember.tensor(rng.standard_normal(16), requires_grad=True)
    assert ember.autograd.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1), (x, w, b))
    (gx,) = ember.autograd.grad(F.conv2d(x, w, b, padding=1).square().sum(), x,
                                create_graph=True)
    gx.square().sum().backward()
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    tw = torch.tensor(w.detach().numpy(), requires_grad=True)
    tb = torch.tensor(b.detach().numpy(), requires_grad=True)
    (tgx,) = torch.autograd.grad(torch.nn.functional.conv2d(tx, tw, tb, padding=1).square()
                                 .sum(), tx, create_graph=True)
    tgx.square().sum().backward()
    numpy.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-9, atol=1e-9)
    assert calls


def test_what_stays_on_the_python_path(calls):
    """Groups, float16 and strided convs do not call the native convolution; few input rows
    (W3's stem, 3 -> 8 here) do."""
    rng = numpy.random.default_rng(7)
    x = ember.tensor(rng.standard_normal((2, 32, 8, 8)).astype(numpy.float32))
    F.conv2d(x, ember.tensor(rng.standard_normal((32, 16, 3, 3)).astype(numpy.float32)),
             padding=1, groups=2)
    F.conv2d(x, ember.tensor(rng.standard_normal((8, 32, 3, 3)).astype(numpy.float32)),
             padding=1, stride=2)
    half = x.to(ember.float16)
    F.conv2d(half, ember.tensor(rng.standard_normal((8, 32, 3, 3)).astype(numpy.float16)),
             padding=1)
    assert calls == []
    F.conv2d(x[:, :3], ember.tensor(rng.standard_normal((8, 3, 3, 3)).astype(numpy.float32)),
             padding=1)
    assert calls == [2]


def test_out_of_memory_for_the_work_space_raises_memory_error():
    """A thread that cannot allocate its work space makes the call raise MemoryError (in a
    child process whose address space is capped just above what it uses)."""
    out = run_with_capped_memory(
        "import numpy as np, ember, ember.nn.functional as F\n"
        "w = ember.tensor(np.ones((64, 64, 3, 3), np.float32))\n"
        "F.conv2d(ember.tensor(np.ones((1, 64, 128, 128), np.float32)), w, padding=1)\n",
        "big = ember.tensor(np.ones((1, 64, 256, 256), np.float32))\n"  # T + P ~100 MB
        "try:\n"
        "    F.conv2d(big, w, padding=1)\n"
        "except MemoryError as e:\n"
        "    print(e)\n",
        room_mb=64)
    assert "native convolution's work space" in out


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_transposed_conv_takes_the_native_path(calls, dtype):
    """conv_transpose2d with stride 1 is the 'same' conv's input gradient plus a bias per
    output channel: the native call with T's row of ones; its gradients are native convs."""
    rng = numpy.random.default_rng(9)
    x = rng.standard_normal((3, 20, 9, 7)).astype(dtype)
    w = (rng.standard_normal((20, 24, 3, 3)) * 0.2).astype(dtype)
    b = rng.standard_normal(24).astype(dtype)
    tensors = [ember.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv_transpose2d(*tensors, padding=1)
    g = rng.standard_normal(y.shape).astype(dtype)
    y.backward(ember.tensor(g))
    assert len(calls) == 3
    oracle = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    ty = torch.nn.functional.conv_transpose2d(*oracle, padding=1)
    ty.backward(torch.tensor(g))
    tol = 1e-4 if dtype == numpy.float32 else 1e-10
    for mine, expected in zip([y.detach()] + [t.grad for t in tensors],
                              [ty.detach()] + [t.grad for t in oracle]):
        numpy.testing.assert_allclose(mine.numpy(), expected.numpy(), rtol=tol, atol=tol)
