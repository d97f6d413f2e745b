"""In-place arithmetic outside autograd writes straight into storage (the fast path of
ops/inplace.py) with the same results, version bumps and errors as the general path."""

import numpy
import pytest

import ember
from ember import errors


@pytest.mark.parametrize("name,ufunc", [("add_", numpy.add), ("sub_", numpy.subtract),
                                        ("mul_", numpy.multiply), ("div_", numpy.divide)])
@pytest.mark.parametrize("other", ["tensor", "broadcast", "float", "int"])
def test_fast_path_matches_numpy_and_bumps_version(name, ufunc, other):
    rng = numpy.random.default_rng(0)
    base = rng.uniform(1, 2, (3, 4)).astype(numpy.float32)
    operand = {"tensor": rng.uniform(1, 2, (3, 4)).astype(numpy.float32),
               "broadcast": rng.uniform(1, 2, (4,)).astype(numpy.float32),
               "float": 0.5, "int": 3}[other]
    x = ember.tensor(base)
    view = x.reshape(12)
    storage = x._data
    arg = ember.tensor(operand) if isinstance(operand, numpy.ndarray) else operand
    with ember.no_grad():
        out = getattr(x, name)(arg)
    assert out is x and x._data is storage and x._version_count == 1
    expected = ufunc(base, operand).astype(numpy.float32)
    numpy.testing.assert_allclose(x.numpy(), expected, rtol=1e-6)
    numpy.testing.assert_allclose(view.numpy(), expected.reshape(12), rtol=1e-6)


def test_fast_path_refusals_still_give_clear_errors():
    with pytest.raises(errors.ShapeError):
        ember.zeros(3).add_(ember.ones(4))
    with pytest.raises(errors.DTypeError):
        ember.arange(3).div_(2)
    with pytest.raises(errors.DTypeError):
        ember.arange(3).add_(0.5)


def test_recording_and_leaf_rules_unchanged():
    w = ember.ones(2, requires_grad=True)
    with pytest.raises(errors.AutogradError, match="leaf"):
        w.sub_(1.0)
    with ember.no_grad():
        w.sub_(ember.tensor([0.5, 0.25]))
    numpy.testing.assert_allclose(w.detach().numpy(), [0.5, 0.75])
    h = w * 2.0
    h.mul_(3.0)
    h.sum().backward()
    numpy.testing.assert_allclose(w.grad.numpy(), [6.0, 6.0])


def test_alpha_and_operators():
    x = ember.ones(3)
    x.add_(ember.ones(3), alpha=2)
    x -= 1.0
    x *= 4
    x /= 2.0
    numpy.testing.assert_allclose(x.numpy(), [4.0, 4.0, 4.0])
