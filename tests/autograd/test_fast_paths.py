"""The eager fast paths (array-level backward formulas when no graph is recorded, the
single-root backward, cheap argument checks) give what the general paths give."""

import numpy
import pytest
import torch

import ember
from ember import errors


def _pair(values, dtype=numpy.float32):
    a = numpy.asarray(values, dtype=dtype)
    return ember.tensor(a).requires_grad_(), torch.tensor(a).requires_grad_()


@pytest.mark.parametrize("op", [
    lambda x: x.exp(), lambda x: x.relu(), lambda x: x * x, lambda x: x * 2, lambda x: 3.0 * x,
    lambda x: x - 1.5, lambda x: 2 - x, lambda x: x.sum(), lambda x: x.reshape(-1),
    lambda x: x[1:3], lambda x: x[-1], lambda x: x[0, 1:], lambda x: (x * x).sum(0),
])
@pytest.mark.parametrize("values", [[[0.5, -1.0, 2.0], [1.5, 0.0, -2.5], [3.0, 1.0, -0.5]], 1.25])
def test_first_order_gradients_match_torch(op, values):
    x, tx = _pair(values)
    try:
        expected = op(tx)
    except (IndexError, RuntimeError):  # 0-d inputs cannot be sliced
        return
    y = op(x)
    assert isinstance(y._data, numpy.ndarray) and y.dtype == ember.float32
    numpy.testing.assert_allclose(y.detach().numpy(), expected.detach().numpy(), rtol=1e-6)
    y.sum().backward()
    expected.sum().backward()
    assert isinstance(x.grad._data, numpy.ndarray) and x.grad.dtype == ember.float32
    numpy.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("op", [
    lambda x: x.exp(), lambda x: x * x, lambda x: x.relu() * x, lambda x: x.sum() * x,
    lambda x: x.reshape(-1) * x.reshape(-1), lambda x: x[1:] * x[1:],
])
def test_double_backward_still_records(op):
    x, tx = _pair([[0.5, -1.0], [1.5, 2.0]], numpy.float64)
    (g,) = ember.autograd.grad(op(x).sum(), x, create_graph=True)
    (tg,) = torch.autograd.grad(op(tx).sum(), tx, create_graph=True)
    g.sum().backward()
    tg.sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_scalar_operand_keeps_the_tensor_dtype():
    for dt in (ember.float16, ember.float32, ember.float64):
        x = ember.ones(3, dtype=dt)
        assert (x * 2).dtype == dt and (x + 2.5).dtype == dt and (x - True).dtype == dt
    assert (ember.ones(3, dtype=ember.int64) * 2.5).dtype == ember.float32
    assert (ember.ones(3, dtype=ember.int32) + 2).dtype == ember.int32


def test_relu_keeps_integer_and_half_dtypes():
    for dt in (ember.int8, ember.int64, ember.float16):
        y = ember.tensor([-2, 0, 3], dtype=dt).relu()
        assert y.dtype == dt and y.tolist() == [0, 0, 3]


def test_in_place_change_of_a_saved_input_is_caught_without_create_graph():
    x = ember.tensor([1.0, 2.0]).requires_grad_()
    y = ember.tensor([3.0, 4.0])
    out = x * y
    y.add_(1)
    with pytest.raises(errors.AutogradError, match="modified by an in-place operation"):
        out.sum().backward()


def test_backward_twice_without_retain_graph_says_so():
    x = ember.tensor([1.0, 2.0]).requires_grad_()
    out = (x * x).sum()
    out.backward()
    with pytest.raises(errors.AutogradError, match="second time"):
        out.backward()


def test_loss_backward_errors_are_unchanged():
    x = ember.tensor([1.0, 2.0]).requires_grad_()
    with pytest.raises(errors.AutogradError, match="only for scalar outputs"):
        (x * 2).backward()
    with pytest.raises(errors.AutogradError, match="does not require grad"):
        ember.tensor(1.0).backward()


def test_leaf_gradients_accumulate_into_fresh_arrays():
    x = ember.tensor([1.0, 2.0]).requires_grad_()
    y = ember.tensor([1.0, 2.0]).requires_grad_()
    (x + y).sum().backward()
    assert not numpy.shares_memory(x.grad.numpy(), y.grad.numpy())
    first = x.grad
    (x + y).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0] and first.tolist() == [1.0, 1.0]
    assert not numpy.shares_memory(x.grad.numpy(), y.grad.numpy())
