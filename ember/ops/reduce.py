"""Reductions: sum, mean, prod, max/min, var/std, norm, logsumexp, cumulative ops, all/any."""

from ember import dtypes
from ember.autograd.function import Function
from ember.ops import _common
from ember.tensor import Tensor


def _keep_shape(shape, dims):
    """The shape of a reduction over ``dims`` with keepdim=True."""
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


class Sum(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype):
        ctx.in_shape = x.shape
        ctx.dims = dims
        ctx.keepdim = keepdim
        return ctx.xp.sum(x, axis=dims, keepdims=keepdim, dtype=dtype)

    @staticmethod
    def backward(ctx, gy):
        from ember.ops import shape as shape_ops  # noqa: PLC0415

        if not ctx.keepdim:
            gy = shape_ops.reshape(gy, _keep_shape(ctx.in_shape, ctx.dims))
        return shape_ops.broadcast_to(gy, ctx.in_shape)


def sum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum over ``dim`` (all dims by default). Integer and bool inputs sum to int64."""
    dims = _common.normalize_dims(dim, input.ndim, "sum")
    dtype = dtypes.as_dtype(dtype)
    if dtype is None and input._data.dtype.kind in "biu":
        dtype = dtypes.int64
    return Sum.apply(input, dims, keepdim, dtype)


class SumTo(Function):
    """Sum a broadcast gradient back to ``shape`` (what the engine calls for broadcasting)."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        lead = x.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1
        )
        y = x.sum(axis=axes, keepdims=True) if axes else x
        if lead:
            y = y.reshape(shape)
        return y

    @staticmethod
    def backward(ctx, gy):
        from ember.ops import shape as shape_ops  # noqa: PLC0415

        return shape_ops.broadcast_to(gy, ctx.in_shape)


def sum_to(x, shape):
    """``x`` summed over the dimensions that broadcasting added or stretched to reach its shape."""
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    return SumTo.apply(x, shape)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Arithmetic mean over ``dim`` (all dims by default); needs a floating dtype."""
    if dtype is not None:
        input = input.to(dtype)
    if input._data.dtype.kind != "f":
        from ember import errors  # noqa: PLC0415

        raise errors.DTypeError(
            f"mean: input dtype {dtypes.name(input.dtype)} is not floating; pass dtype= or call "
            ".float() first"
        )
    dims = _common.normalize_dims(dim, input.ndim, "mean")
    count = 1
    for d in dims:
        count *= input._data.shape[d]
    total = Sum.apply(input, dims, keepdim, None)
    return total / count if count else total * float("nan")


TENSOR_METHODS = {"sum": sum, "mean": mean}
_ = Tensor
