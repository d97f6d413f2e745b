"""Linear algebra: matmul in all its broadcasting forms, mm, bmm, dot, outer, einsum, tensordot."""

from ember import errors
from ember.autograd.function import Function
from ember.ops import _common
from ember.tensor import Tensor


class MatMul(Function):
    """matmul for inputs of at least 2 dims (1-D cases are reshaped around it)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.xp.matmul(a, b)

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[:2]
        ga = matmul(gy, b.mT) if need_a else None
        gb = matmul(a.mT, gy) if need_b else None
        return ga, gb


def _matmul_error(a, b):
    return errors.ShapeError(
        f"matmul: shapes {errors.shape_str(a.shape)} and {errors.shape_str(b.shape)} cannot be "
        f"multiplied ({a.shape[-1] if a.ndim else '?'} columns vs "
        f"{b.shape[-2] if b.ndim > 1 else (b.shape[0] if b.ndim else '?')} rows); the last dim "
        "of the first must equal the second-to-last dim of the second"
    )


def matmul(input, other):
    """Matrix product with NumPy/PyTorch broadcasting; 1-D operands are vectors."""
    from ember.ops import shape as shape_ops  # noqa: PLC0415

    if input.ndim == 0 or other.ndim == 0:
        raise errors.ShapeError(
            f"matmul: both arguments need at least 1 dimension, got shapes "
            f"{errors.shape_str(input.shape)} and {errors.shape_str(other.shape)}"
        )
    if input._data.dtype != other._data.dtype:
        (input, other), _ = _common.promote("matmul", input, other)
    a, b = input, other
    if a.ndim == 1:
        a = shape_ops.reshape(a, (1, a.shape[0]))
    if b.ndim == 1:
        b = shape_ops.reshape(b, (b.shape[0], 1))
    if a.shape[-1] != b.shape[-2]:
        raise _matmul_error(input, other)
    try:
        out = MatMul.apply(a, b)
    except ValueError:
        raise _matmul_error(input, other) from None
    if input.ndim == 1 and other.ndim == 1:
        return shape_ops.reshape(out, ())
    if input.ndim == 1:
        return shape_ops.reshape(out, out.shape[:-2] + (out.shape[-1],))
    if other.ndim == 1:
        return shape_ops.reshape(out, out.shape[:-1])
    return out


TENSOR_METHODS = {"matmul": matmul}
_ = Tensor
