"""Activations: relu family, sigmoid/tanh family, gelu/silu/mish, softplus, softmax/log_softmax."""

from ember.autograd.function import Function
from ember.ops import _common


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        # Gradient 0 at x == 0, as PyTorch defines it.
        return gy * (y > 0)


def relu(input):
    return ReLU.apply(input)


TENSOR_METHODS = {"relu": relu}
_ = _common
