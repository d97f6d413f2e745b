"""The public custom-Function API: ctx.save_for_backward, needs_input_grad,
mark_non_differentiable, and gradcheck on a user-defined op."""

import numpy
import pytest

import ember
from ember.autograd import Function, gradcheck, gradgradcheck


class Cube(Function):
    """x ** 3 with a hand-written backward built from ember ops (so it is twice differentiable)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * 3.0 * x * x


class ScaleAndArgmax(Function):
    """Two outputs, one of them integer-valued and declared non-differentiable."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        idx = ctx.xp.argmax(x, axis=-1).astype(x.dtype)
        ctx.mark_non_differentiable(idx)
        return x * scale, idx

    @staticmethod
    def backward(ctx, gy, gidx):
        return gy * ctx.scale, None


def test_custom_function_gradient_and_double_backward():
    x = ember.tensor(numpy.linspace(-1, 1, 5), requires_grad=True)
    assert gradcheck(Cube.apply, [x])
    assert gradgradcheck(Cube.apply, [x])
    y = Cube.apply(x)
    assert y.grad_fn is not None and "Cube" in repr(y)


def test_needs_input_grad_reflects_inputs():
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, gy):
            seen["needs"] = ctx.needs_input_grad
            return gy, gy

    a = ember.ones(2, requires_grad=True)
    b = ember.ones(2)
    Probe.apply(a, b).sum().backward()
    assert seen["needs"] == (True, False)


def test_mark_non_differentiable_and_non_tensor_args():
    x = ember.tensor([[1.0, 5.0, 2.0]], requires_grad=True)
    y, idx = ScaleAndArgmax.apply(x, 2.0)
    assert y.requires_grad and not idx.requires_grad
    assert idx.item() == 1.0
    y.sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [[2.0, 2.0, 2.0]])


def test_function_without_backward_says_so():
    class NoBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x + 1

    y = NoBackward.apply(ember.ones(1, requires_grad=True))
    with pytest.raises(NotImplementedError, match="no backward"):
        y.sum().backward()


def test_gradcheck_detects_a_wrong_gradient():
    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, gy):
            return gy  # should be 2 x gy

    x = ember.tensor([0.5, 1.5], dtype=ember.float64, requires_grad=True)
    with pytest.raises(ember.errors.AutogradError, match="finite differences"):
        gradcheck(Wrong.apply, [x])
    assert gradcheck(Wrong.apply, [x], raise_exception=False) is False


def test_backward_returning_wrong_shape_names_the_function():
    class BadShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, gy):
            return ember.ones(7)

    y = BadShape.apply(ember.ones((2, 3), requires_grad=True))
    with pytest.raises(ember.errors.ShapeError, match="BadShape"):
        y.sum().backward()
