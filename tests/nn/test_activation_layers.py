"""Activation layers against torch.nn: values, gradients, inplace semantics, printouts."""

import numpy
import pytest
import torch

import ember
from ember import nn
from tests.nn.layer_check import compare_layer

LAYERS = [
    ("ReLU", (), {}), ("ReLU6", (), {}), ("LeakyReLU", (0.2,), {}), ("ELU", (0.7,), {}),
    ("SELU", (), {}), ("CELU", (1.3,), {}), ("GELU", (), {}), ("GELU", (), {"approximate": "tanh"}),
    ("SiLU", (), {}), ("Mish", (), {}), ("Softplus", (2.0, 3.0), {}), ("Softsign", (), {}),
    ("Hardtanh", (-0.5, 1.5), {}), ("Hardsigmoid", (), {}), ("Hardswish", (), {}),
    ("Sigmoid", (), {}), ("LogSigmoid", (), {}), ("Tanh", (), {}), ("Softmax", (1,), {}),
    ("LogSoftmax", (-1,), {}), ("Softmin", (0,), {}), ("Threshold", (0.1, -2.0), {}),
]


@pytest.mark.parametrize("name, args, kwargs", LAYERS, ids=lambda v: str(v))
def test_activation_matches_torch(name, args, kwargs):
    e = getattr(nn, name)(*args, **kwargs)
    t = getattr(torch.nn, name)(*args, **kwargs)
    compare_layer(e, t, [(4, 5, 3)])
    # 1e-7: torch's float64 CPU kernels of hardsigmoid and celu use float32 constants (1/6,
    # 1/alpha), which puts them 3e-8 (relative) off the exact values.
    compare_layer(e, t, [(6, 4)], dtype=numpy.float64, rtol=1e-7, atol=1e-12)
    assert repr(e) == repr(t)


INPLACE = [("ReLU", ()), ("ReLU6", ()), ("LeakyReLU", (0.1,)), ("ELU", (1.0,)), ("SELU", ()),
           ("CELU", (0.5,)), ("SiLU", ()), ("Mish", ()), ("Hardtanh", (-1.0, 1.0)),
           ("Hardsigmoid", ()), ("Hardswish", ()), ("Threshold", (0.0, 5.0))]


@pytest.mark.parametrize("name, args", INPLACE, ids=str)
def test_inplace_writes_into_the_input(name, args):
    e_layer = getattr(nn, name)(*args, inplace=True)
    t_layer = getattr(torch.nn, name)(*args, inplace=True)
    assert repr(e_layer) == repr(t_layer)
    x = numpy.random.default_rng(0).standard_normal((3, 4)) * 4
    ex, tx = ember.tensor(x), torch.tensor(x)
    ey = e_layer(ex)
    t_layer(tx)
    assert ey is ex
    numpy.testing.assert_allclose(ex.numpy(), tx.numpy(), 1e-7, 1e-12)
    # Under autograd, on a non-leaf, the gradient flows as through the out-of-place op.
    el = ember.tensor(x, requires_grad=True)
    tl = torch.tensor(x, requires_grad=True)
    e_out = e_layer(el * 2.0)
    t_out = t_layer(tl * 2.0)
    (e_out * e_out).sum().backward()
    (t_out * t_out).sum().backward()
    numpy.testing.assert_allclose(el.grad.numpy(), tl.grad.numpy(), 1e-7, 1e-12)


def test_inplace_on_a_leaf_that_requires_grad_raises():
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        nn.ReLU(inplace=True)(ember.ones(3, requires_grad=True))


def test_softmax_implicit_dim_warns_like_torch():
    x = numpy.random.default_rng(1).standard_normal((2, 3, 4)).astype(numpy.float32)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        e = nn.Softmax()(ember.tensor(x)).numpy()
    with pytest.warns(UserWarning):
        t = torch.nn.Softmax()(torch.tensor(x)).numpy()
    numpy.testing.assert_allclose(e, t, 1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="min_val \\(2\\) cannot be greater than max_val"):
        nn.Hardtanh(2, 1)


def test_errors_name_the_layer():
    from ember import errors

    model = nn.Sequential(nn.LeakyReLU(0.2))
    with pytest.raises(errors.DTypeError, match=r"LeakyReLU\(negative_slope=0.2\) '0': "
                                                r"leaky_relu: expected a floating-point input"):
        model(ember.tensor([1, 2]))
