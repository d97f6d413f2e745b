"""The backward engine: accumulation, retain_graph, freeing, grad(), hooks, retain_grad."""

import numpy
import pytest
import torch

import ember
from ember import errors


def test_leaf_grad_accumulates_across_backward_calls():
    x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0, 9.0])


def test_diamond_graph_sums_gradients_like_torch():
    def f(lib, x):
        a = x.exp()
        b = a * x
        c = a + b
        return (c * b).sum()

    xs = numpy.array([0.1, -0.4, 0.7])
    e = ember.tensor(xs, requires_grad=True)
    t = torch.tensor(xs, requires_grad=True)
    f(ember, e).backward()
    f(torch, t).backward()
    numpy.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_non_leaf_has_no_grad_unless_retained():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    z = y * y
    y.retain_grad()
    z.sum().backward()
    assert y.retains_grad
    numpy.testing.assert_allclose(y.grad.numpy(), [4.0, 8.0])
    assert (x * 1.0).grad is None
    assert x.is_leaf and not y.is_leaf


def test_backward_twice_through_freed_graph_raises_clear_error():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(errors.AutogradError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_saved_arrays_are_freed_after_backward():
    x = ember.tensor(numpy.ones(4), requires_grad=True)
    y = x * x
    node = y.grad_fn
    assert node._saved is not None and len(node._saved) == 2
    y.sum().backward()
    assert node._saved is not None and not isinstance(node._saved, list)


def test_non_scalar_backward_needs_gradient():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    with pytest.raises(errors.AutogradError, match="only for scalar outputs"):
        y.backward()
    y.backward(ember.tensor([1.0, 0.5]))
    numpy.testing.assert_allclose(x.grad.numpy(), [2.0, 1.0])


def test_backward_gradient_shape_mismatch_is_shape_error():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(errors.ShapeError, match=r"\(3,\).*\(2,\)"):
        (x * 2.0).backward(ember.ones(3))


def test_backward_on_tensor_without_grad_says_why():
    with pytest.raises(errors.AutogradError, match="does not require grad"):
        ember.ones(3).sum().backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(errors.DTypeError, match="floating-point"):
        ember.tensor([1, 2, 3], requires_grad=True)


def test_grad_returns_gradients_without_touching_dot_grad():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    w = ember.tensor([3.0, 4.0], requires_grad=True)
    y = (x * w).sum()
    gx, gw = ember.autograd.grad(y, [x, w])
    numpy.testing.assert_allclose(gx.numpy(), [3.0, 4.0])
    numpy.testing.assert_allclose(gw.numpy(), [1.0, 2.0])
    assert x.grad is None and w.grad is None


def test_grad_of_intermediate_tensor():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    y = (h * h).sum()
    (gh,) = ember.autograd.grad(y, h)
    numpy.testing.assert_allclose(gh.numpy(), [6.0, 12.0])


def test_grad_allow_unused():
    x = ember.tensor([1.0], requires_grad=True)
    unused = ember.tensor([1.0], requires_grad=True)
    y = (x * 2.0).sum()
    with pytest.raises(errors.AutogradError, match="allow_unused=True"):
        ember.autograd.grad(y, [x, unused], retain_graph=True)
    gx, gu = ember.autograd.grad(y, [x, unused], allow_unused=True)
    assert gu is None and gx.item() == 2.0


def test_grad_with_grad_outputs_and_multiple_outputs():
    xs = numpy.array([0.3, -1.2, 2.0])
    e = ember.tensor(xs, requires_grad=True)
    t = torch.tensor(xs, requires_grad=True)
    go = [numpy.array([1.0, 2.0, 3.0]), numpy.array([0.5, 0.5, -1.0])]
    ge = ember.autograd.grad([e * e, e.exp()], e, [ember.tensor(g) for g in go])
    gt = torch.autograd.grad([t * t, t.exp()], t, [torch.tensor(g) for g in go])
    numpy.testing.assert_allclose(ge[0].numpy(), gt[0].numpy(), rtol=1e-12)


def test_tensor_hook_modifies_gradient_of_leaf_and_non_leaf():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10.0)
    handle = x.register_hook(lambda g: g + 1.0)
    h.sum().backward()
    numpy.testing.assert_allclose(seen[0], [1.0, 1.0])
    numpy.testing.assert_allclose(x.grad.numpy(), [21.0, 21.0])
    handle.remove()
    x.grad = None
    (x * 1.0).sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])


def test_shared_gradients_are_not_aliased_between_leaves():
    a = ember.tensor([1.0, 2.0], requires_grad=True)
    b = ember.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad.mul_(5.0) if hasattr(a.grad, "mul_") else a.grad._data.__imul__(5.0)
    numpy.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0])


def test_broadcast_gradient_is_reduced_to_input_shape():
    a = ember.tensor(numpy.ones((3, 1)), requires_grad=True)
    b = ember.tensor(numpy.arange(4.0), requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    numpy.testing.assert_allclose(a.grad.numpy(), numpy.full((3, 1), 6.0))
    numpy.testing.assert_allclose(b.grad.numpy(), numpy.full(4, 3.0))


def test_backward_with_inputs_accumulates_only_there():
    x = ember.tensor([1.0], requires_grad=True)
    w = ember.tensor([2.0], requires_grad=True)
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None
    assert w.grad.item() == 1.0


def test_deep_chain_does_not_recurse():
    x = ember.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad.item() == 1.0


def test_detach_shares_storage_and_leaves_graph():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2.0).detach()
    assert not d.requires_grad and d.grad_fn is None
    x2 = x.detach()
    x2._data[0] = 9.0
    assert x.numpy(force=True)[0] == 9.0


def test_leaf_grads_never_share_memory_through_views():
    x = ember.zeros((2, 2), requires_grad=True)
    d = ember.zeros(4, requires_grad=True)
    (x.reshape(4) + d).backward(ember.ones(4))
    assert not numpy.shares_memory(x.grad.numpy(), d.grad.numpy())


def test_saved_output_of_a_0d_op_stays_in_the_graph():
    from ember.autograd import Function

    class Square0d(Function):
        @staticmethod
        def forward(ctx, x):
            y = ctx.xp.multiply(x, x)  # a NumPy scalar for a 0-d x
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, gy):
            (y,) = ctx.saved_tensors
            return gy * 2.0 * y ** 0.5

    x = ember.tensor(3.0, dtype=ember.float64, requires_grad=True)
    (g,) = ember.autograd.grad(Square0d.apply(x), x, create_graph=True)
    (h,) = ember.autograd.grad(g, x)
    assert g.item() == 6.0 and h.item() == 2.0
