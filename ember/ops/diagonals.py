"""Triangles and diagonals of matrices: tril/triu, diagonal, diag_embed and diag.

They address the last two dims (or the dims given) of a batch of matrices by their diagonals:
tril/triu keep one side of a diagonal, diagonal reads one (a strided view), diag_embed writes
one into zeros. diagonal and diag_embed are each other's backward. Every name here is also
importable from ``shape``.
"""

from ember import errors
from ember.autograd.function import Function
from ember.ops import shape as shape_ops

_shape_str = errors.shape_str


# ---- triangles and diagonals ---------------------------------------------------------------


class _Tri(Function):
    @staticmethod
    def forward(ctx, x, k, lower):
        ctx.k = k
        ctx.lower = lower
        return ctx.xp.tril(x, k) if lower else ctx.xp.triu(x, k)

    @staticmethod
    def backward(ctx, gy):
        return _Tri.apply(gy, ctx.k, ctx.lower)


def _tri(input, diagonal, lower):
    who = "tril" if lower else "triu"
    if input.ndim < 2:
        raise errors.ShapeError(
            f"{who}: input must have at least 2 dimensions, got shape {_shape_str(input.shape)}"
        )
    return _Tri.apply(input, int(diagonal), lower)


def tril(input, diagonal=0):
    """The lower triangle of the last two dims (elements above ``diagonal`` set to 0)."""
    return _tri(input, diagonal, True)


def triu(input, diagonal=0):
    """The upper triangle of the last two dims (elements below ``diagonal`` set to 0)."""
    return _tri(input, diagonal, False)


def _diag_view(xp, x, offset, dim1, dim2):
    """A writable strided view of the diagonal of ``x`` over (dim1, dim2), put last."""
    m = xp.moveaxis(x, (dim1, dim2), (-2, -1))
    m = m[..., :, offset:] if offset >= 0 else m[..., -offset:, :]
    n = max(0, min(m.shape[-2], m.shape[-1]))
    strides = m.strides[:-2] + (m.strides[-2] + m.strides[-1],)
    return xp.lib.stride_tricks.as_strided(m, m.shape[:-2] + (n,), strides)


class _Diagonal(Function):
    @staticmethod
    def forward(ctx, x, offset, dim1, dim2):
        ctx.args = (x.shape, offset, dim1, dim2)
        return _diag_view(ctx.xp, x, offset, dim1, dim2)

    @staticmethod
    def backward(ctx, gy):
        return _DiagEmbed.apply(gy, *ctx.args)


class _DiagEmbed(Function):
    """Zeros of ``shape`` with ``g`` on the diagonal over (dim1, dim2)."""

    @staticmethod
    def forward(ctx, g, shape, offset, dim1, dim2):
        ctx.args = (offset, dim1, dim2)
        out = ctx.xp.zeros(shape, g.dtype)
        _diag_view(ctx.xp, out, offset, dim1, dim2)[...] = g
        return out

    @staticmethod
    def backward(ctx, gy):
        return _Diagonal.apply(gy, *ctx.args)


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal over dims (dim1, dim2), appended as the last dim (a view)."""
    n = input.ndim
    d1 = shape_ops._dim(dim1, n, "diagonal")
    d2 = shape_ops._dim(dim2, n, "diagonal")
    if d1 == d2:
        raise ValueError(f"diagonal: dim1 and dim2 must differ, got {dim1} and {dim2}")
    return shape_ops._as_view(_Diagonal.apply(input, int(offset), d1, d2), input)


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices (over dims dim1, dim2 of the result) with the last dim of ``input`` on their
    ``offset`` diagonal."""
    n = input.ndim + 1
    d1 = shape_ops._dim(dim1, n, "diag_embed")
    d2 = shape_ops._dim(dim2, n, "diag_embed")
    if d1 == d2:
        raise ValueError(f"diag_embed: dim1 and dim2 must differ, got {dim1} and {dim2}")
    size = (input.shape[-1] if input.ndim else 1) + abs(int(offset))
    rest = iter(input.shape[:-1])
    shape = tuple(size if i in (d1, d2) else next(rest) for i in range(n))
    return _DiagEmbed.apply(input, shape, int(offset), d1, d2)


def diag(input, diagonal=0):
    """1-D input: a square matrix with it on the ``diagonal``; 2-D input: that diagonal (a
    copy)."""
    if input.ndim == 1:
        size = input.shape[0] + abs(int(diagonal))
        return _DiagEmbed.apply(input, (size, size), int(diagonal), 0, 1)
    if input.ndim == 2:
        return shape_ops._Contiguous.apply(_Diagonal.apply(input, int(diagonal), 0, 1))
    raise errors.ShapeError(
        f"diag: expects a 1-D or 2-D tensor, got shape {_shape_str(input.shape)}; use "
        "diagonal() or diag_embed() for batches"
    )


TENSOR_METHODS = {
    "tril": tril, "triu": triu, "diagonal": diagonal, "diag": diag, "diag_embed": diag_embed,
}
