"""Linear, Bilinear, Identity, Flatten, Unflatten and F.linear / F.bilinear against PyTorch."""

import numpy
import pytest
import torch

import ember
from ember import errors, nn
from ember.nn import functional as F
from tests.oracle import check_double_backward, check_op


def _copy_weights(e_layer, t_layer):
    for name, p in t_layer.named_parameters():
        getattr(e_layer, name)._data[...] = p.detach().numpy()


def _compare_layer(e_layer, t_layer, input_shapes, dtype=numpy.float32, rtol=1e-5, atol=1e-5):
    """Same weights and inputs: outputs, input grads and parameter grads agree with torch."""
    _copy_weights(e_layer, t_layer)
    rng = numpy.random.default_rng(1)
    xs = [rng.standard_normal(s).astype(dtype) for s in input_shapes]
    e_in = [ember.tensor(x, requires_grad=True) for x in xs]
    t_in = [torch.tensor(x, requires_grad=True) for x in xs]
    e_out, t_out = e_layer(*e_in), t_layer(*t_in)
    numpy.testing.assert_allclose(e_out.detach().numpy(), t_out.detach().numpy(), rtol, atol)
    w = rng.standard_normal(tuple(t_out.shape)).astype(dtype)
    (e_out * ember.tensor(w)).sum().backward()
    (t_out * torch.tensor(w)).sum().backward()
    for e, t in zip(e_in, t_in):
        numpy.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol, atol)
    for name, p in t_layer.named_parameters():
        numpy.testing.assert_allclose(getattr(e_layer, name).grad.numpy(), p.grad.numpy(),
                                      rtol, atol, err_msg=name)


@pytest.mark.parametrize("shape", [(8, 5), (2, 3, 5), (5,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(shape, bias):
    _compare_layer(nn.Linear(5, 4, bias=bias), torch.nn.Linear(5, 4, bias=bias), [shape])


def test_linear_float64():
    _compare_layer(nn.Linear(5, 4).double(), torch.nn.Linear(5, 4).double(), [(3, 5)],
                   dtype=numpy.float64, rtol=1e-12, atol=1e-12)


def test_linear_attributes_and_repr():
    fc = nn.Linear(20, 30)
    assert fc.weight.shape == (30, 20) and fc.bias.shape == (30,)
    assert repr(fc) == repr(torch.nn.Linear(20, 30))
    assert repr(nn.Linear(2, 3, bias=False)) == "Linear(in_features=2, out_features=3, bias=False)"
    assert fc.weight.dtype == ember.float32
    assert nn.Linear(2, 3, dtype=ember.float64).weight.dtype == ember.float64


def test_linear_input_errors_name_the_layer():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 10)

        def forward(self, x):
            return self.fc1(x)

    with pytest.raises(errors.ShapeError) as info:
        Net()(ember.zeros(32, 28, 28))
    assert str(info.value) == ("Linear(in_features=784, out_features=10, bias=True) 'fc1' "
                               "expected input (..., 784), got (32, 28, 28); flatten first?")
    with pytest.raises(errors.ShapeError, match=r"expected input \(\.\.\., 784\), got \(32, 5\)"):
        Net()(ember.zeros(32, 5))
    with pytest.raises(errors.DTypeError, match="'fc1' got input of dtype float64"):
        Net()(ember.zeros(2, 784, dtype=ember.float64))
    with pytest.raises(TypeError, match="out_features is missing"):
        nn.Linear(10)
    with pytest.raises(ValueError, match="Received: out_features=-1"):
        nn.Linear(3, -1)


def test_linear_init_distribution_is_torch_default():
    fc = nn.Linear(400, 300)
    w = fc.weight.detach().numpy()
    bound = 1 / 400**0.5
    assert w.min() >= -bound and w.max() <= bound
    # U(-b, b) has std b / sqrt(3).
    assert abs(w.std() - bound / 3**0.5) < 0.02 * bound
    b = fc.bias.detach().numpy()
    assert b.min() >= -bound and b.max() <= bound


def test_functional_linear_and_double_backward():
    check_op(F.linear, [(4, 3), (5, 3), (5,)], torch_fn=torch.nn.functional.linear)
    check_op(F.linear, [(2, 4, 3), (5, 3)], torch_fn=torch.nn.functional.linear)
    check_op(lambda x, w: F.linear(x.mT, w), [(3, 4), (5, 3)],
             torch_fn=lambda x, w: torch.nn.functional.linear(x.mT, w))
    check_double_backward(F.linear, [(4, 3), (5, 3), (5,)])
    with pytest.raises(errors.ShapeError, match="linear: input \\(4, 3\\), weight \\(5, 2\\)"):
        F.linear(ember.zeros(4, 3), ember.zeros(5, 2))


def test_bilinear_matches_torch():
    _compare_layer(nn.Bilinear(3, 4, 5), torch.nn.Bilinear(3, 4, 5), [(6, 3), (6, 4)])
    _compare_layer(nn.Bilinear(3, 4, 2, bias=False), torch.nn.Bilinear(3, 4, 2, bias=False),
                   [(2, 6, 3), (2, 6, 4)])
    check_op(F.bilinear, [(6, 3), (6, 4), (5, 3, 4), (5,)],
             torch_fn=torch.nn.functional.bilinear)
    assert repr(nn.Bilinear(3, 4, 5)) == repr(torch.nn.Bilinear(3, 4, 5))
    with pytest.raises(errors.ShapeError, match="Bilinear.*expected inputs"):
        nn.Bilinear(3, 4, 5)(ember.zeros(2, 3), ember.zeros(2, 5))


@pytest.mark.parametrize("args", [(), (0,), (1, 2), (-3, -2), (2, 3)])
def test_flatten_matches_torch(args):
    x = numpy.arange(2 * 3 * 4 * 5, dtype=numpy.float32).reshape(2, 3, 4, 5)
    e = nn.Flatten(*args)(ember.tensor(x))
    t = torch.nn.Flatten(*args)(torch.tensor(x))
    numpy.testing.assert_array_equal(e.numpy(), t.numpy())
    assert repr(nn.Flatten(*args)) == repr(torch.nn.Flatten(*args))


def test_unflatten_and_identity():
    x = ember.randn(2, 50, requires_grad=True)
    y = nn.Unflatten(1, (2, 5, 5))(x)
    assert y.shape == (2, 2, 5, 5)
    assert nn.Unflatten(-1, (5, -1))(x).shape == (2, 5, 10)
    y.sum().backward()
    assert x.grad.shape == (2, 50)
    assert repr(nn.Unflatten(1, (2, 5, 5))) == repr(torch.nn.Unflatten(1, (2, 5, 5)))
    with pytest.raises(errors.ShapeError, match="cannot unflatten dim 1 of size 50"):
        nn.Unflatten(1, (3, 5))(x)
    ident = nn.Identity(54, unused=1)
    assert ident(x) is x
    assert repr(ident) == "Identity()"
