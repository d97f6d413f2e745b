"""Padding: ``pad`` with the constant, reflect, replicate and circular modes (negative sizes
crop).

Constant padding embeds the input into a filled array (``shape._Embed``, whose backward is the
slice back out); the other modes read the input at computed positions along each padded dim
(``_Gather``), whose backward sums the gradient into those positions (``_ScatterAdd``). It has
its own file because its argument checking (PyTorch's pad tuple, the per-mode size rules)
is longer than the ops themselves. ``pad`` is also importable from ``shape``.
"""

from ember import errors
from ember.autograd.function import Function
from ember.ops import shape as shape_ops

_shape_str = errors.shape_str


class _Gather(Function):
    """``x`` indexed by the integer array ``idx`` along ``dim`` (the non-constant paddings)."""

    @staticmethod
    def forward(ctx, x, dim, idx):
        ctx.args = (dim, idx, x.shape[dim])
        return ctx.xp.take(x, idx, axis=dim)

    @staticmethod
    def backward(ctx, gy):
        return _ScatterAdd.apply(gy, *ctx.args)


class _ScatterAdd(Function):
    """The gradient of _Gather: ``g`` summed into ``n`` slots along ``dim`` at ``idx``."""

    @staticmethod
    def forward(ctx, g, dim, idx, n):
        ctx.args = (dim, idx)
        xp = ctx.xp
        shape = g.shape[:dim] + (n,) + g.shape[dim + 1:]
        out = xp.zeros(shape, g.dtype)
        xp.add.at(xp.moveaxis(out, dim, 0), idx, xp.moveaxis(g, dim, 0))
        return out

    @staticmethod
    def backward(ctx, gy):
        return _Gather.apply(gy, *ctx.args)


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode="constant", value=None):
    """Pad (or, with negative sizes, crop) the last ``len(pad) // 2`` dims.

    ``pad`` lists (before, after) pairs starting from the last dim, as in PyTorch:
    ``(left, right, top, bottom)`` pads the last two dims. Modes: ``'constant'`` (``value``,
    default 0), ``'reflect'`` (mirror without repeating the edge), ``'replicate'`` (repeat the
    edge), ``'circular'`` (wrap around). Non-constant modes pad the last 1, 2 or 3 dims of a
    tensor with one or two more dims (batch and channels), as in PyTorch.
    """
    pad = tuple(int(p) for p in pad)
    shape = tuple(input.shape)
    ndim = len(shape)
    if len(pad) % 2:
        raise ValueError(f"pad: the pad tuple {pad} must have an even length (before/after pairs)")
    k = len(pad) // 2
    if k > ndim:
        raise errors.ShapeError(
            f"pad: {len(pad)} pad sizes pad {k} dims, but the input of shape "
            f"{_shape_str(shape)} has only {ndim}"
        )
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}")
    # pairs[i] is (before, after) for dim i, counting from the first dim.
    pairs = [(0, 0)] * (ndim - k) + [(pad[2 * j], pad[2 * j + 1]) for j in reversed(range(k))]
    out_shape = tuple(s + a + b for s, (a, b) in zip(shape, pairs))
    if any(s < 0 for s in out_shape):
        raise errors.ShapeError(
            f"pad: pad {pad} would give a negative size (resulting shape "
            f"{out_shape}) for an input of shape {_shape_str(shape)}"
        )
    if mode == "constant":
        return _pad_constant(input, pairs, out_shape, 0 if value is None else value)
    if value is not None and value != 0:
        raise ValueError(f"pad: value is only used with mode='constant', got mode={mode!r}")
    if not 1 <= k <= 3 or ndim not in (k + 1, k + 2):
        raise errors.ShapeError(
            f"pad: mode {mode!r} pads the last 1, 2 or 3 dims of a tensor with 1 or 2 more "
            f"leading dims (batch, channels); got {len(pad)} pad sizes for shape "
            f"{_shape_str(shape)}"
        )
    xp = input.device.xp
    out = input
    for d in range(ndim - k, ndim):
        before, after = pairs[d]
        if before == after == 0:
            continue
        n = shape[d]
        _check_pad_size(mode, n, before, after, d, shape)
        # Output position j reads input index j - before, mapped back into the input.
        idx = xp.arange(-before, n + after)
        if mode == "replicate":
            idx = xp.clip(idx, 0, n - 1)
        elif mode == "circular":
            # PyTorch crops negative pads first and wraps around what is left.
            lo, hi = max(-before, 0), max(-after, 0)
            idx = (idx - lo) % (n - lo - hi) + lo
        else:
            idx = xp.abs(idx)
            idx = xp.where(idx >= n, 2 * (n - 1) - idx, idx)
        out = _Gather.apply(out, d, idx)
    return out


def _check_pad_size(mode, n, before, after, d, shape):
    if n == 0:
        rule = "a non-empty padded dim"
    elif mode == "reflect" and (before >= n or after >= n):
        rule = "each pad size smaller than the padded dim"
    elif mode == "circular" and (max(before, after) > n - max(-before, 0) - max(-after, 0)):
        rule = "each pad size at most the padded dim (it wraps around once)"
    else:
        return
    raise errors.ShapeError(
        f"pad: mode {mode!r} needs {rule}, got pad ({before}, {after}) for dim {d} of size "
        f"{n} (input shape {_shape_str(shape)})"
    )


def _pad_constant(input, pairs, out_shape, value):
    shape = tuple(input.shape)
    x = input
    if any(a < 0 or b < 0 for a, b in pairs):
        crop = tuple(slice(max(-a, 0), s - max(-b, 0)) for s, (a, b) in zip(shape, pairs))
        x = shape_ops._Slice.apply(x, crop)
    if any(a > 0 or b > 0 for a, b in pairs):
        where = tuple(slice(max(a, 0), max(a, 0) + s) for s, (a, _) in zip(x.shape, pairs))
        return shape_ops._Embed.apply(x, out_shape, where, value)
    return shape_ops._Contiguous.apply(x)  # PyTorch's pad always returns a new tensor


TENSOR_METHODS = {}
