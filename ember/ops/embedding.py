"""Embedding lookups: ``embedding`` picks rows of a weight matrix by integer index;
``embedding_bag`` sums, averages or takes the maximum of bags of them.

Two Functions close under differentiation: ``_Embedding`` (rows of ``weight`` at ``index``)
and ``_EmbeddingGrad`` (the output gradient scatter-added back into a zero matrix of the
weight's shape). Each is the other's backward, so double backward works. The padding row
gets no gradient; ``scale_grad_by_freq`` divides each row's gradient by how often its index
occurs in the batch, as in PyTorch. ``embedding_bag`` is composed from ``embedding`` and
index.py's ``index_add`` / ``scatter_reduce``, so it needs no backward of its own.
(``one_hot`` lives in index.py.)
"""

from ember import errors
from ember.autograd.function import Function
from ember.tensor import Tensor

# No top-level exports: torch.embedding(weight, input) takes its arguments in the opposite
# order of F.embedding(input, weight), so these live under ember.nn.functional only.
__all__ = []


class _Embedding(Function):
    """weight[index] (gathering rows); ``scale`` is None or a per-position factor array."""

    @staticmethod
    def forward(ctx, weight, index, padding_idx, scale):
        ctx.args = (index, weight.shape[0], padding_idx, scale)
        out = weight[index]
        if scale is not None:  # only on the double-backward path
            out *= scale[..., None]
        # NOTE: weight[index] with an integer array is a fresh copy, never a view.
        return out

    @staticmethod
    def backward(ctx, gy):
        index, rows, padding_idx, scale = ctx.args
        return _EmbeddingGrad.apply(gy, index, rows, padding_idx, scale), None, None, None


class _EmbeddingGrad(Function):
    """zeros((rows, D)) with ``g[..., :] * scale`` added at rows ``index``; padding row zero."""

    @staticmethod
    def forward(ctx, g, index, rows, padding_idx, scale):
        ctx.args = (index, padding_idx, scale)
        xp = ctx.xp
        dim = g.shape[-1]
        flat = index.reshape(-1)
        g2 = g.reshape(-1, dim)
        if scale is not None:
            g2 = g2 * scale.reshape(-1, 1)
        out = _scatter_add_rows(xp, rows, flat, g2)
        if padding_idx is not None:
            out[padding_idx] = 0
        return out

    @staticmethod
    def backward(ctx, ggw):
        index, padding_idx, scale = ctx.args
        if padding_idx is not None:
            # Positions that looked up the padding row passed no gradient: zero them here too.
            keep = (index != padding_idx).astype(ggw._data.dtype)
            scale = keep if scale is None else keep * scale
        return _Embedding.apply(ggw, index, padding_idx, scale), None, None, None, None


# NOTE (measured, 1 thread, 2-core machine at load ~2.5): ``xp.add.at(out, index, g)`` on a
# 2-D ``out`` takes NumPy's slow general path: 2.5-4 ms for 2,048 rows of 128 into a (5000, 128)
# table (workload W4), against ~0.4 ms for PyTorch's embedding backward. Writing the first
# occurrence of every index with one row assignment and adding only the repeats through a 1-D
# ``add.at`` (NumPy's fast path for 1-D operands) takes ~0.45 ms there, and gives the same bits
# (each row is still summed in input order, starting from its first occurrence). Below
# ``_SCATTER_MIN`` gradient elements the plain ``add.at`` is quicker (2-9 us against ~15 us).
#
# NOTE (measured, 1 thread, CPU time, W4's 2,048 random ids of 5,000 with ~350 repeats, old
# and new interleaved, 11 rounds of 100 calls): the repeats are added level by level (the 2nd
# occurrence of every id in one row-wise ``out[ids] += g`` over distinct ids, then the 3rd,
# ...), which keeps the input order of each row's sum (same bits as ``add.at``): 0.50 / 0.58 ms
# (min / median) against 0.58 / 0.66 ms with the 1-D ``add.at`` over the repeats' cells. Of
# what is left, ~0.1 ms is the zero table and ~0.14 ms the first-occurrence gather and write.
# Past _SCATTER_LEVELS levels (an id repeated that often) the rest goes through ``add.at``.
_SCATTER_MIN = 2048
_SCATTER_LEVELS = 8


def _firsts(xp, rows, index, n):
    """Mask of the positions that hold the first occurrence of their index."""
    position = xp.arange(n)
    first_at = xp.full((rows,), n, dtype=position.dtype)
    xp.minimum.at(first_at, index, position)  # 1-D: the fast path
    return first_at[index] == position


def _scatter_add_rows(xp, rows, index, g):
    """``out = zeros((rows, D)); out[index[k]] += g[k]`` for every k, repeats summed in order."""
    n, dim = g.shape
    out = xp.zeros((rows, dim), dtype=g.dtype)
    if xp.__name__ != "numpy" or g.size < _SCATTER_MIN:
        xp.add.at(out, index, g)
        return out
    first = _firsts(xp, rows, index, n)
    if bool(first.all()):
        out[index] = g
        return out
    out[index[first]] = g[first]
    rest = xp.flatnonzero(~first)  # positions of the repeats, in input order
    for _ in range(_SCATTER_LEVELS):
        if not rest.size:
            return out
        ids = index[rest]
        first = _firsts(xp, rows, ids, ids.size)
        take = rest[first]
        out[ids[first]] += g[take]  # distinct ids: a plain row-wise read-add-write
        rest = rest[~first]
    if rest.size:
        cells = index[rest][:, None] * dim + xp.arange(dim)
        xp.add.at(out.reshape(-1), cells.reshape(-1), g[rest].reshape(-1))
    return out


def _check(input, weight, padding_idx):
    if not isinstance(weight, Tensor) or not isinstance(input, Tensor):
        raise errors.DTypeError(
            f"embedding: input and weight must be Tensors, got {type(input).__name__} and "
            f"{type(weight).__name__}"
        )
    if input._data.dtype.kind not in "iu":
        raise errors.DTypeError(
            f"embedding: expected an integer index tensor (int64 or int32), got "
            f"{input.dtype}; convert it with .long()"
        )
    if weight.ndim != 2:
        raise errors.ShapeError(
            f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
            f"{errors.shape_str(weight.shape)}"
        )
    rows = weight.shape[0]
    if padding_idx is not None:
        if not -rows <= padding_idx < rows:
            raise ValueError(
                f"embedding: padding_idx must be within num_embeddings ({rows}), got "
                f"{padding_idx}"
            )
        padding_idx %= rows
    data = input._data
    if data.size:
        lo, hi = int(data.min()), int(data.max())
        if lo < 0 or hi >= rows:
            bad = lo if lo < 0 else hi
            raise errors.ShapeError(
                f"embedding: index {bad} is out of range for a table of {rows} rows (weight "
                f"{errors.shape_str(weight.shape)}); indices must be in [0, {rows - 1}]"
            )
    return padding_idx


def _renorm_(weight, index, max_norm, norm_type):
    """Rescale, in place, the looked-up rows whose norm exceeds ``max_norm`` (PyTorch's
    embedding_renorm_: factor max_norm / (norm + 1e-7))."""
    xp = weight.device.xp
    rows = xp.unique(index.reshape(-1))
    w = weight._data
    picked = w[rows]
    norms = (xp.abs(picked) ** norm_type).sum(-1) ** (1.0 / norm_type)
    over = norms > max_norm
    if bool(over.any()):
        factor = (max_norm / (norms[over] + 1e-7)).astype(w.dtype)
        w[rows[over]] = picked[over] * factor[:, None]
        weight._bump_version()


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Look up rows of ``weight`` by the integer indices in ``input``.

    Args:
        input (Tensor): integer indices, any shape.
        weight (Tensor): (num_embeddings, embedding_dim).
        padding_idx (int, optional): this row gets no gradient (a negative value counts from
            the end).
        max_norm (float, optional): rows looked up whose ``norm_type``-norm is larger are
            rescaled to norm ``max_norm``, in place in ``weight``.
        norm_type (float): the p of the norm for ``max_norm``. Default: 2.
        scale_grad_by_freq (bool): divide each row's gradient by the number of times its index
            occurs in ``input``. Default: False.
        sparse (bool): sparse gradients are not supported; must be False.

    Shape:
        Output: ``input.shape + (embedding_dim,)``.

    Example::

        >>> w = ember.arange(6.0).reshape(3, 2)
        >>> F.embedding(ember.tensor([[2, 0]]), w)
        tensor([[[4., 5.],
                 [0., 1.]]])
    """
    if sparse:
        raise NotImplementedError(
            "embedding: sparse=True (sparse gradients) is not supported by ember; use "
            "sparse=False (the gradient is a dense (num_embeddings, embedding_dim) tensor)"
        )
    padding_idx = _check(input, weight, padding_idx)
    index = input._data
    if max_norm is not None:
        _renorm_(weight, index, float(max_norm), float(norm_type))
    scale = None
    if scale_grad_by_freq and index.size:
        xp = weight.device.xp
        flat = index.reshape(-1)
        counts = xp.bincount(flat, minlength=weight.shape[0])
        scale = (1.0 / counts[flat]).astype(weight._data.dtype).reshape(index.shape)
    if scale is None:
        return _Embedding.apply(weight, index, padding_idx, None)
    return _ScaledEmbedding.apply(weight, index, padding_idx, scale)


class _ScaledEmbedding(Function):
    """weight[index] whose backward scales each position's gradient (scale_grad_by_freq)."""

    @staticmethod
    def forward(ctx, weight, index, padding_idx, scale):
        ctx.args = (index, weight.shape[0], padding_idx, scale)
        return weight[index]

    @staticmethod
    def backward(ctx, gy):
        index, rows, padding_idx, scale = ctx.args
        return _EmbeddingGrad.apply(gy, index, rows, padding_idx, scale), None, None, None


def _bags(input, offsets, include_last_offset, op):
    """(flat indices, bag number of each position, number of bags) from PyTorch's two input
    layouts: a 2-D (B, L) tensor of fixed-size bags, or a 1-D tensor cut at ``offsets``."""
    xp = input.device.xp
    data = input._data
    if data.ndim == 2:
        if offsets is not None:
            raise ValueError(f"{op}: offsets must be None for a 2-D input (each row is a bag)")
        b, length = data.shape
        return data.reshape(-1), xp.repeat(xp.arange(b), length), b
    if data.ndim != 1:
        raise errors.ShapeError(
            f"{op}: expected a 1-D input with offsets or a 2-D input (B, L), got "
            f"{errors.shape_str(data.shape)}"
        )
    if offsets is None:
        raise ValueError(f"{op}: offsets is required for a 1-D input")
    starts = offsets._data if isinstance(offsets, Tensor) else xp.asarray(offsets)
    starts = starts.astype("int64").reshape(-1)
    total = data.shape[0]
    if include_last_offset:
        starts = starts[:-1]
    if starts.size == 0 or int(starts[0]) != 0 or bool((xp.diff(starts) < 0).any()) or \
            int(starts[-1]) > total:
        raise ValueError(
            f"{op}: offsets must start at 0, be non-decreasing and not exceed the input length "
            f"({total}), got {starts.tolist()}"
        )
    seg = xp.searchsorted(starts, xp.arange(total), side="right") - 1
    return data, seg, starts.shape[0]


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2,
                  scale_grad_by_freq=False, mode="mean", sparse=False, per_sample_weights=None,
                  include_last_offset=False, padding_idx=None):
    """Sums, means or maxima of bags of embeddings, without building the (B, L, D) lookup.

    Args:
        input (Tensor): (B, L) bags of fixed size, or 1-D indices cut into bags at ``offsets``.
        weight (Tensor): (num_embeddings, embedding_dim).
        offsets (Tensor, optional): start of each bag in a 1-D ``input``.
        mode (str): 'sum', 'mean' or 'max'. Default: 'mean'.
        per_sample_weights (Tensor, optional): weights of the input's entries (mode 'sum').
        include_last_offset (bool): ``offsets`` has one more entry, the end. Default: False.
        padding_idx (int, optional): entries equal to it are left out of their bag.
        max_norm, norm_type, scale_grad_by_freq, sparse: as in ``embedding``.

    Shape:
        Output: (B, embedding_dim); an empty bag gives zeros.

    Example::

        >>> w = ember.arange(6.0).reshape(3, 2)
        >>> F.embedding_bag(ember.tensor([0, 2, 1]), w, ember.tensor([0, 2]), mode="sum")
        tensor([[4., 6.],
                [2., 3.]])
    """
    op = "embedding_bag"
    if sparse:
        raise NotImplementedError(f"{op}: sparse=True (sparse gradients) is not supported; use "
                                  "sparse=False")
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"{op}: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if per_sample_weights is not None and mode != "sum":
        raise ValueError(f"{op}: per_sample_weights is only supported for mode='sum', got "
                         f"mode={mode!r}")
    padding_idx = _check(input, weight, padding_idx)
    flat, seg, bags = _bags(input, offsets, include_last_offset, op)
    from ember.ops import index as index_ops  # noqa: PLC0415

    xp = weight.device.xp
    dtype = weight._data.dtype
    keep = xp.ones(flat.shape, dtype=bool) if padding_idx is None else flat != padding_idx
    rows = embedding(Tensor._make(flat, False, None, 0), weight, padding_idx, max_norm,
                     norm_type, scale_grad_by_freq)
    zeros = Tensor._make(xp.zeros((bags, weight.shape[1]), dtype=dtype), False, None, 0)
    seg_t = Tensor._make(seg, False, None, 0)
    if mode == "max":
        pos = xp.nonzero(keep)[0]
        picked = index_ops.getitem(rows, Tensor._make(pos, False, None, 0))
        where = Tensor._make(xp.broadcast_to(seg[pos][:, None], picked.shape).copy(), False,
                             None, 0)
        return index_ops.scatter_reduce(zeros, 0, where, picked, "amax", include_self=False)
    scale = keep.astype(dtype)
    if mode == "mean":
        counts = xp.bincount(seg, weights=scale, minlength=bags)
        scale = scale / xp.maximum(counts, 1)[seg].astype(dtype)
    factor = Tensor._make(scale[:, None], False, None, 0)
    if per_sample_weights is not None:
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise errors.ShapeError(
                f"{op}: per_sample_weights must have the input's shape "
                f"{errors.shape_str(input.shape)}, got "
                f"{errors.shape_str(per_sample_weights.shape)}"
            )
        from ember.ops import shape as shape_ops  # noqa: PLC0415

        factor = factor * shape_ops.reshape(per_sample_weights, (-1, 1))
    return index_ops.index_add(zeros, 0, seg_t, rows * factor)


TENSOR_METHODS = {}
