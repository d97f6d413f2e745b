"""In-place ops under autograd: version counters, leaf errors, rebased graphs (like PyTorch)."""

import numpy
import pytest
import torch

import ember
from ember import errors


def test_modifying_a_saved_tensor_raises_at_backward():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    y = h * h  # saves h
    h.add_(1.0)
    with pytest.raises(errors.AutogradError, match="modified by an in-place operation"):
        y.sum().backward()


def test_inplace_on_leaf_requiring_grad_raises_but_works_under_no_grad():
    w = ember.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(errors.AutogradError, match="leaf tensor that requires grad"):
        w.mul_(2.0)
    with ember.no_grad():
        w.mul_(2.0)
    numpy.testing.assert_allclose(w.numpy(force=True), [2.0, 4.0])


def test_inplace_on_non_leaf_gives_torch_gradients():
    xs = numpy.array([0.5, -1.0, 2.0])

    def run(t):
        h = t * 3.0
        h.mul_(2.0)
        h.add_(t)
        h.div_(t.exp())
        h.exp_()
        return (h * h).sum()

    e = ember.tensor(xs, requires_grad=True)
    t = torch.tensor(xs, requires_grad=True)
    run(e).backward()
    run(t).backward()
    numpy.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-10)


def test_version_counter_shared_with_views():
    x = ember.zeros(4)
    v = x.reshape(2, 2)
    x.add_(1.0)
    assert v._version_count == x._version_count == 1
    numpy.testing.assert_allclose(v.numpy(), numpy.ones((2, 2)))


def test_augmented_assignment_is_in_place():
    x = ember.ones(3)
    ref = x
    x += 2.0
    assert x is ref
    numpy.testing.assert_allclose(ref.numpy(), [3.0, 3.0, 3.0])
