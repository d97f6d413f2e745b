"""Reordering copies: flip (fliplr, flipud), roll and rot90.

Each moves every element to a new position and returns a new tensor (PyTorch's flip is a copy,
not a view). flip and roll are primitives whose backward is the same op undone (flip again,
roll back); rot90 is a flip and a transpose. Every name here is also importable from
``shape``.
"""

from ember import errors
from ember.autograd.function import Function
from ember.ops import shape as shape_ops

_shape_str = errors.shape_str


# ---- reordering copies: flip, roll, rot90 --------------------------------------------------


class _Flip(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return ctx.xp.flip(x, dims).copy()  # PyTorch's flip is a copy, not a view

    @staticmethod
    def backward(ctx, gy):
        return _Flip.apply(gy, ctx.dims)


def flip(input, dims):
    """Reverse the order of elements along ``dims`` (a copy)."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    norm = tuple(shape_ops._dim(d, input.ndim, "flip") for d in dims)
    if len(set(norm)) != len(norm):
        raise ValueError(f"flip: dim appears more than once in dims {dims}")
    if input.ndim == 0:
        return _Flip.apply(input, ())
    return _Flip.apply(input, norm)


def fliplr(input):
    if input.ndim < 2:
        raise errors.ShapeError(
            f"fliplr: input must be >= 2-D, got shape {_shape_str(input.shape)}"
        )
    return flip(input, (1,))


def flipud(input):
    if input.ndim < 1:
        raise errors.ShapeError("flipud: input must be >= 1-D, got a 0-d tensor")
    return flip(input, (0,))


class _Roll(Function):
    @staticmethod
    def forward(ctx, x, shifts, dims):
        ctx.shifts = shifts
        ctx.dims = dims
        return ctx.xp.roll(x, shifts, axis=dims)

    @staticmethod
    def backward(ctx, gy):
        return _Roll.apply(gy, tuple(-s for s in ctx.shifts), ctx.dims)


def roll(input, shifts, dims=None):
    """Shift elements cyclically along ``dims`` (of the flattened tensor when dims is None)."""
    shifts = (int(shifts),) if isinstance(shifts, int) else tuple(int(s) for s in shifts)
    if dims is None:
        if len(shifts) != 1:
            raise ValueError(f"roll: with dims=None give one shift, got shifts {shifts}")
        flat = _Roll.apply(shape_ops.reshape(input, (-1,)), shifts, (0,))
        return shape_ops.reshape(flat, tuple(input.shape))
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    dims = tuple(shape_ops._dim(d, input.ndim, "roll") for d in dims)
    return _Roll.apply(input, shifts, dims)


def rot90(input, k=1, dims=(0, 1)):
    """Rotate by 90 degrees ``k`` times in the plane of ``dims`` (from the first toward the
    second)."""
    if len(dims) != 2:
        raise ValueError(f"rot90: dims must hold two dims, got {dims}")
    d0, d1 = (shape_ops._dim(d, input.ndim, "rot90") for d in dims)
    if d0 == d1:
        raise ValueError(f"rot90: dims must differ, got {dims}")
    k %= 4
    if k == 0:
        return flip(input, ())
    if k == 2:
        return flip(input, (d0, d1))
    if k == 1:
        return shape_ops.transpose(flip(input, (d1,)), d0, d1)
    return flip(shape_ops.transpose(input, d0, d1), (d1,))


TENSOR_METHODS = {"flip": flip, "fliplr": fliplr, "flipud": flipud, "roll": roll, "rot90": rot90}
