"""Indexing: x[...] read and write, gather/scatter, index_select/index_add, masks, sort/topk."""

import numpy

from ember import errors
from ember.autograd.function import Function
from ember.ops import _common
from ember.tensor import Tensor


def _unwrap_index(index):
    """Tensors inside an index become arrays; lists become integer/bool arrays."""
    if isinstance(index, tuple):
        return tuple(_unwrap_one(i) for i in index)
    return _unwrap_one(index)


def _unwrap_one(i):
    if isinstance(i, Tensor):
        return i._data
    if isinstance(i, list):
        return numpy.asarray(i)
    return i


def _is_basic(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice, numpy.integer)) for i in items)


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.in_shape = x.shape
        ctx.index = index
        return x[index]

    @staticmethod
    def backward(ctx, gy):
        return IndexAddInto.apply(gy, ctx.in_shape, ctx.index)


class IndexAddInto(Function):
    """zeros(shape) with ``g`` added at ``index`` (repeated indices accumulate): the gradient of
    ``x[index]``. Its own gradient is indexing again."""

    @staticmethod
    def forward(ctx, g, shape, index):
        ctx.index = index
        xp = ctx.xp
        out = xp.zeros(shape, dtype=g.dtype)
        if _is_basic(index):
            out[index] = g
        else:
            xp.add.at(out, index, g) if xp is numpy else xp.add.at(out, index, g)
        return out

    @staticmethod
    def backward(ctx, gy):
        return getitem(gy, ctx.index)


def getitem(input, index):
    """``input[index]`` with ints, slices, None, Ellipsis, bool masks and integer arrays."""
    raw = _unwrap_index(index)
    try:
        out = GetItem.apply(input, raw)
    except IndexError as exc:
        raise errors.ShapeError(
            f"index {index!r} is out of range for a tensor of shape "
            f"{errors.shape_str(input.shape)}: {exc}"
        ) from None
    if _is_basic(raw):
        from ember.ops import shape as shape_ops  # noqa: PLC0415

        shape_ops._as_view(out, input)
    return out


TENSOR_METHODS = {}
_ = _common
