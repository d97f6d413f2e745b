"""Sorting and counting: sort, argsort, topk, kthvalue, unique, bincount.

Each one orders or counts elements. The values that sort, topk and kthvalue return are a
gather of the input through ``index.GetItem`` at the sorted positions, so they are
differentiable (double backward included) without a backward of their own; the indices,
unique and bincount are integer results with no gradient. Every name here is also importable
from ``index``.
"""

import collections

import numpy

from ember import errors
from ember.ops import _common, index


# ---- sort / topk ---------------------------------------------------------------------------

_SortResult = collections.namedtuple("sort", ["values", "indices"])
_TopkResult = collections.namedtuple("topk", ["values", "indices"])
_KthResult = collections.namedtuple("kthvalue", ["values", "indices"])


def _argsort(xp, a, axis, descending):
    """Stable argsort; descending keeps equal elements in their original order (and puts NaN
    first, as PyTorch does, since it treats NaN as the largest value)."""
    if not descending:
        return xp.argsort(a, axis=axis, kind="stable")
    # Sort the reversed array ascending, reverse the result, and map positions back: ties then
    # come out in increasing original position.
    rev = xp.argsort(xp.flip(a, axis), axis=axis, kind="stable")
    return (a.shape[axis] - 1) - xp.flip(rev, axis)


def _sorted_indices(input, dim, descending, op):
    dim = _common.normalize_dim(dim, input.ndim, op)
    x = index._flat(input)
    idx = _argsort(index._xp_of(input), x._data, dim, descending).astype(numpy.int64)
    return x, dim, idx


def _take_sorted(x, dim, idx):
    return index.GetItem.apply(x, index._dim_coords(index._xp_of(x), idx, dim), index._INT)


def sort(input, dim=-1, descending=False, *, stable=False):
    """Sorted values along ``dim`` and their indices, as ``(values, indices)``. ember's sort
    is always stable; values are differentiable (a gather of the input)."""
    x, dim, idx = _sorted_indices(input, dim, descending, "sort")
    values = _take_sorted(x, dim, idx)
    if input.ndim == 0:
        return _SortResult(values.reshape(()), index._const(idx.reshape(())))
    return _SortResult(values, index._const(idx))


def argsort(input, dim=-1, descending=False, stable=False):
    """The indices that sort ``input`` along ``dim`` (int64)."""
    _, _, idx = _sorted_indices(input, dim, descending, "argsort")
    return index._const(idx.reshape(input.shape))


def topk(input, k, dim=None, largest=True, sorted=True):
    """The ``k`` largest (or smallest) values along ``dim`` (default last) and their indices.
    The result is always in sorted order, which ``sorted=False`` permits."""
    op = "topk"
    dim = -1 if dim is None else dim
    x, dim, idx = _sorted_indices(input, dim, largest, op)
    size = x.shape[dim]
    if not 0 <= k <= size:
        raise index._IndexOutOfRange(
            f"{op}: k={k} is out of range for dim {dim} of size {size} (tensor of shape "
            f"{errors.shape_str(input.shape)}); k must be in [0, {size}]"
        )
    # NOTE: a full sort; argpartition first would be faster for k << n if topk gets hot.
    idx = idx[(slice(None),) * dim + (slice(0, k),)]
    values = _take_sorted(x, dim, idx)
    if input.ndim == 0:
        return _TopkResult(values.reshape(()), index._const(idx.reshape(())))
    return _TopkResult(values, index._const(idx))


def kthvalue(input, k, dim=-1, keepdim=False):
    """The ``k``-th smallest value (1-based) along ``dim`` and its index."""
    op = "kthvalue"
    x, dim, idx = _sorted_indices(input, dim, False, op)
    size = x.shape[dim]
    if not 1 <= k <= size:
        raise index._IndexOutOfRange(
            f"{op}: k={k} is out of range for dim {dim} of size {size}; k must be in [1, {size}]"
        )
    idx = idx[(slice(None),) * dim + (slice(k - 1, k),)]
    values = _take_sorted(x, dim, idx)
    if input.ndim == 0:
        return _KthResult(values.reshape(()), index._const(idx.reshape(())))
    if not keepdim:
        values = values.reshape(values.shape[:dim] + values.shape[dim + 1:])
        idx = idx.reshape(idx.shape[:dim] + idx.shape[dim + 1:])
    return _KthResult(values, index._const(idx))


# ---- integer utilities (no gradient) -------------------------------------------------------


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct values of ``input`` (sorted), optionally with the inverse indices (input's
    shape, or length of ``dim``) and the counts. Not differentiable."""
    xp = index._xp_of(input)
    data = input._data
    axis = None if dim is None else _common.normalize_dim(dim, data.ndim, "unique")
    vals, inv, counts = xp.unique(data, return_inverse=True, return_counts=True, axis=axis)
    inv = inv.reshape(data.shape if axis is None else (-1,)).astype(numpy.int64)
    out = [index._const(vals)]
    if return_inverse:
        out.append(index._const(inv))
    if return_counts:
        out.append(index._const(counts.astype(numpy.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def bincount(input, weights=None, minlength=0):
    """Count of each value in a 1-d non-negative integer tensor (or sum of ``weights``)."""
    op = "bincount"
    data = index._dim_index(input, op)
    if data.ndim != 1:
        raise errors.ShapeError(
            f"{op}: input must be 1-d, got shape {errors.shape_str(data.shape)}"
        )
    if data.size and int(data.min()) < 0:
        raise ValueError(f"{op}: input must be non-negative, got the value {int(data.min())}")
    xp = index._xp_of(input)
    if weights is None:
        return index._const(xp.bincount(data, minlength=minlength).astype(numpy.int64))
    w = weights._data
    out = xp.bincount(data, weights=w, minlength=minlength)
    return index._const(out.astype(w.dtype if w.dtype.kind == "f" else numpy.float64))


TENSOR_METHODS = {
    "sort": sort, "argsort": argsort, "topk": topk, "kthvalue": kthvalue, "unique": unique,
    "bincount": bincount,
}
