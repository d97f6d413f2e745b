"""Shape and movement ops: reshape/view, broadcast, transpose/permute, cat/stack/split, pad...

View ops return tensors that share storage (and the version counter) with their input, as
PyTorch's do, so writes through a view show in the base.
"""

from ember import errors
from ember.autograd.function import Function
from ember.ops import _common
from ember.tensor import Tensor


def _as_view(out, base):
    """Mark ``out`` as a view of ``base`` when it shares base's memory."""
    if out._data.base is not None or out._data is base._data:
        out._version = base._version
        out._base = base if base._base is None else base._base
    return out


def _shape_arg(shape, who):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, gy):
        return reshape(gy, ctx.in_shape)


def reshape(input, *shape):
    """The same values in a new shape; one dim may be -1. Shares memory when it can."""
    shape = _shape_arg(shape, "reshape")
    if tuple(input._data.shape) == shape:
        return input
    try:
        out = Reshape.apply(input, shape)
    except ValueError:
        raise errors.ShapeError(
            f"reshape: cannot reshape a tensor of shape {errors.shape_str(input.shape)} "
            f"({input.numel()} elements) into {errors.shape_str(shape)}"
        ) from None
    return _as_view(out, input)


def view(input, *shape):
    """Like reshape, but never copies (raises for a non-contiguous input, like PyTorch)."""
    shape = _shape_arg(shape, "view")
    if not input._data.flags.c_contiguous and input._data.size > 1 and input.ndim > 1:
        raise errors.ShapeError(
            f"view: the input of shape {errors.shape_str(input.shape)} is not contiguous (e.g. "
            "after transpose); use .reshape(...) or call .contiguous() first"
        )
    return reshape(input, *shape)


class BroadcastTo(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return ctx.xp.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, gy):
        from ember.ops import reduce  # noqa: PLC0415

        return reduce.sum_to(gy, ctx.in_shape)


def broadcast_to(input, *shape):
    """A read-only broadcast view of ``input`` with ``shape``."""
    shape = _shape_arg(shape, "broadcast_to")
    if tuple(input._data.shape) == shape:
        return input
    try:
        out = BroadcastTo.apply(input, shape)
    except ValueError:
        raise errors.ShapeError(
            f"broadcast_to: cannot broadcast shape {errors.shape_str(input.shape)} to "
            f"{errors.shape_str(shape)}"
        ) from None
    return _as_view(out, input)


def expand(input, *sizes):
    """Broadcast to ``sizes``; -1 keeps a dimension's size."""
    sizes = _shape_arg(sizes, "expand")
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise errors.ShapeError(
            f"expand: the number of sizes {len(sizes)} is less than the tensor's "
            f"{input.ndim} dimensions"
        )
    shape = tuple(
        input.shape[i - lead] if (s == -1 and i >= lead) else s for i, s in enumerate(sizes)
    )
    return broadcast_to(input, shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, gy):
        inverse = [0] * len(ctx.axes)
        for i, a in enumerate(ctx.axes):
            inverse[a] = i
        return permute(gy, tuple(inverse))


def permute(input, *dims):
    """Reorder dimensions: ``permute(x, (2, 0, 1))``."""
    dims = _shape_arg(dims, "permute")
    if len(dims) != input.ndim:
        raise errors.ShapeError(
            f"permute: got {len(dims)} dims {dims} for a tensor with {input.ndim} dimensions"
        )
    dims = tuple(_common.normalize_dim(d, input.ndim, "permute") for d in dims)
    if sorted(dims) != list(range(input.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of 0..{input.ndim - 1}")
    if dims == tuple(range(input.ndim)):
        return input
    return _as_view(Permute.apply(input, dims), input)


def transpose(input, dim0, dim1):
    """Swap two dimensions (a view)."""
    n = input.ndim
    if n < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return input
    d0 = _common.normalize_dim(dim0, n, "transpose")
    d1 = _common.normalize_dim(dim1, n, "transpose")
    axes = list(range(n))
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return permute(input, tuple(axes))


class ToDevice(Function):
    @staticmethod
    def forward(ctx, x, device):
        ctx.src = "cpu" if type(x).__module__ == "numpy" else "cuda"
        if device.type == "cpu":
            return x.get() if hasattr(x, "get") else x
        return device.xp.asarray(x)

    @staticmethod
    def backward(ctx, gy):
        return gy.to(ctx.src)


def to_device(input, device):
    return ToDevice.apply(input, device)


TENSOR_METHODS = {
    "reshape": reshape, "view": view, "broadcast_to": broadcast_to, "expand": expand,
    "permute": permute, "transpose": transpose,
}
_ = Tensor
