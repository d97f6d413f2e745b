"""Joining and splitting: cat/stack (and hstack/vstack/dstack/column_stack) and their
inverses split/chunk/tensor_split/unbind.

The four primitives pair up so that each one's backward is the other: cat <-> split and
stack <-> unbind. The pieces that split and unbind return are views of the input (they share
its version counter); cat and stack return new tensors, as in PyTorch. Every name here is also
importable from ``shape``.
"""

from ember import dtypes, errors
from ember.autograd.function import Function
from ember.ops import _common
from ember.ops import shape as shape_ops
from ember.tensor import Tensor

_shape_str = errors.shape_str


# ---- splitting ------------------------------------------------------------------------------


class _Split(Function):
    """Consecutive pieces of ``sizes`` along ``dim`` (views); the gradient is their cat."""

    @staticmethod
    def forward(ctx, x, dim, sizes):
        ctx.dim = dim
        lead = (slice(None),) * dim
        out = []
        start = 0
        for s in sizes:
            out.append(x[lead + (slice(start, start + s),)])
            start += s
        return tuple(out)

    @staticmethod
    def backward(ctx, *gys):
        return cat(gys, ctx.dim)


def _split_sizes(input, sizes, d, who):
    size = input.shape[d]
    if sum(sizes) != size or any(s < 0 for s in sizes):
        raise errors.ShapeError(
            f"{who}: split sizes {list(sizes)} must be non-negative and sum to {size}, the size "
            f"of dim {d} of a tensor of shape {_shape_str(input.shape)}"
        )
    outs = _Split.apply(input, d, tuple(sizes))
    return tuple(shape_ops._as_view(o, input) for o in outs)


def split(tensor, split_size_or_sections, dim=0):
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the listed sizes."""
    d = shape_ops._dim(dim, tensor.ndim, "split")
    size = tensor.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [int(s) for s in split_size_or_sections]
    else:
        step = int(split_size_or_sections)
        if step <= 0 and size:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [min(step, size - i) for i in range(0, size, step)] if size else [0]
    return _split_sizes(tensor, sizes, d, "split")


def chunk(input, chunks, dim=0):
    """At most ``chunks`` pieces of equal size ceil(n / chunks) along ``dim``."""
    if int(chunks) <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    d = shape_ops._dim(dim, input.ndim, "chunk")
    size = input.shape[d]
    if size == 0:
        return _split_sizes(input, [0] * int(chunks), d, "chunk")
    return split(input, -(-size // int(chunks)), d)


def tensor_split(input, indices_or_sections, dim=0):
    """``sections`` nearly equal pieces (the first n % sections one longer), or pieces cut at
    the listed indices (NumPy's array_split)."""
    d = shape_ops._dim(dim, input.ndim, "tensor_split")
    size = input.shape[d]
    if isinstance(indices_or_sections, (list, tuple)):
        cuts = [min(max(int(i) if i >= 0 else int(i) + size, 0), size)
                for i in indices_or_sections]
        bounds = [0] + cuts + [size]
        sizes = [max(b - a, 0) for a, b in zip(bounds[:-1], bounds[1:])]
        starts = bounds[:-1]
        if any(b < a for a, b in zip(bounds[:-1], bounds[1:])):
            # Decreasing indices give empty pieces that start where they say.
            return tuple(shape_ops.narrow(input, d, min(s, size), n) for s, n in zip(starts, sizes))
        return _split_sizes(input, sizes, d, "tensor_split")
    sections = int(indices_or_sections)
    if sections <= 0:
        raise ValueError(f"tensor_split: sections must be positive, got {sections}")
    base, extra = divmod(size, sections)
    sizes = [base + 1] * extra + [base] * (sections - extra)
    return _split_sizes(input, sizes, d, "tensor_split")


def hsplit(input, indices_or_sections):
    return tensor_split(input, indices_or_sections, 1 if input.ndim > 1 else 0)


def vsplit(input, indices_or_sections):
    return tensor_split(input, indices_or_sections, 0)


class _Unbind(Function):
    """Every index along ``dim`` as its own tensor (views); the gradient is their stack."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        lead = (slice(None),) * dim
        return tuple(x[lead + (i,)] for i in range(x.shape[dim]))

    @staticmethod
    def backward(ctx, *gys):
        return stack(gys, ctx.dim)


def unbind(input, dim=0):
    """A tuple of the slices along ``dim``, with that dim removed."""
    d = shape_ops._dim(dim, input.ndim, "unbind")
    if input.shape[d] == 0:
        return ()
    outs = _Unbind.apply(input, d)
    outs = outs if isinstance(outs, tuple) else (outs,)
    return tuple(shape_ops._as_view(o, input) for o in outs)


# ---- joining -------------------------------------------------------------------------------


class _Cat(Function):
    @staticmethod
    def forward(ctx, *xs, dim):
        ctx.dim = dim
        ctx.sizes = tuple(x.shape[dim] for x in xs)
        return ctx.xp.concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx, gy):
        outs = _Split.apply(gy, ctx.dim, ctx.sizes)
        return outs if isinstance(outs, tuple) else (outs,)


def _tensor_list(tensors, who):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{who}: expected a list or tuple of tensors, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{who}: expected a non-empty list of tensors")
    tensors = [_common.as_operand(x) for x in tensors]
    rt = dtypes.result_type(*tensors)
    if any(x._data.dtype != rt for x in tensors):
        from ember.ops import elementwise  # noqa: PLC0415

        tensors = [elementwise.cast(x, rt) for x in tensors]
    return tensors


def cat(tensors, dim=0):
    """Join tensors along an existing dim; all other dims must match. As in PyTorch, 1-D
    empty tensors (shape (0,)) are skipped."""
    tensors = _tensor_list(tensors, "cat")
    kept = [(i, x) for i, x in enumerate(tensors) if not (x.ndim == 1 and x.shape[0] == 0)]
    if not kept:
        return _Cat.apply(*tensors, dim=0)
    i0, first = kept[0]
    if first.ndim == 0:
        raise errors.ShapeError(
            f"cat: zero-dimensional tensor at index {i0} cannot be concatenated; use stack, "
            "or unsqueeze the tensors first"
        )
    d = shape_ops._dim(dim, first.ndim, "cat")
    for i, x in kept:
        if x.ndim != first.ndim or any(
            a != b for k, (a, b) in enumerate(zip(x.shape, first.shape)) if k != d
        ):
            raise errors.ShapeError(
                f"cat: tensors must have the same shape except in dim {dim}, got "
                f"{_shape_str(first.shape)} at index {i0} and {_shape_str(x.shape)} at index "
                f"{i}"
            )
    return _Cat.apply(*(x for _, x in kept), dim=d)


concat = cat
concatenate = cat


class _Stack(Function):
    @staticmethod
    def forward(ctx, *xs, dim):
        ctx.dim = dim
        return ctx.xp.stack(xs, axis=dim)

    @staticmethod
    def backward(ctx, gy):
        outs = _Unbind.apply(gy, ctx.dim)
        return outs if isinstance(outs, tuple) else (outs,)


def stack(tensors, dim=0):
    """Join equally shaped tensors along a new dim."""
    tensors = _tensor_list(tensors, "stack")
    first = tensors[0]
    for i, x in enumerate(tensors):
        if x.shape != first.shape:
            raise errors.ShapeError(
                f"stack: expects tensors of equal shape, got {_shape_str(first.shape)} at index "
                f"0 and {_shape_str(x.shape)} at index {i}"
            )
    d = _common.normalize_dim(int(dim), first.ndim + 1, "stack")
    return _Stack.apply(*tensors, dim=d)


def hstack(tensors):
    """Join column-wise: along dim 1, or dim 0 for 1-D tensors."""
    tensors = shape_ops.atleast_1d(*tensors)
    tensors = tensors if isinstance(tensors, tuple) else (tensors,)
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """Join row-wise (1-D tensors become rows)."""
    tensors = shape_ops.atleast_2d(*tensors)
    return cat(tensors if isinstance(tensors, tuple) else (tensors,), 0)


row_stack = vstack


def dstack(tensors):
    """Join along the third dim (after making every tensor at least 3-D)."""
    tensors = shape_ops.atleast_3d(*tensors)
    return cat(tensors if isinstance(tensors, tuple) else (tensors,), 2)


def column_stack(tensors):
    """1-D and 0-d tensors become columns, then everything joins along dim 1."""
    cols = [shape_ops.reshape(x, (x.numel(), 1)) if x.ndim <= 1 else x for x in tensors]
    return cat(cols, 1)


TENSOR_METHODS = {
    "split": split, "chunk": chunk, "tensor_split": tensor_split, "hsplit": hsplit,
    "vsplit": vsplit, "unbind": unbind,
}
