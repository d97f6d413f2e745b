"""Conformance rows: indexing, scattering and data movement.

Fallback rows (see conformance_common.py): a row in shape.py for the same op wins. These compute
on the arrays: the index arithmetic has no gradient, and the data paths are plain copies.
"""

import numpy

from ember.onnx import table
from ember.onnx.rows import conformance_common as K

_REDUCERS = {"none": None, "add": numpy.add, "mul": numpy.multiply, "max": numpy.maximum,
             "min": numpy.minimum}


def _reducer(node, reduction):
    name = K.text(reduction)
    if name not in _REDUCERS:
        K.fail(node, f"reduction={name!r} is not one of {sorted(_REDUCERS)}")
    return _REDUCERS[name]


def _scatter_elements(node, data, indices, updates, axis=0, reduction="none"):
    op = _reducer(node, reduction)
    out = data.copy()
    ax = axis % data.ndim
    idx = numpy.where(indices < 0, indices + data.shape[ax], indices)
    grid = list(numpy.indices(indices.shape, sparse=True))
    grid[ax] = idx
    if op is None:
        out[tuple(grid)] = updates
    else:
        op.at(out, tuple(grid), updates)
    return out


def _scatter_nd(node, data, indices, updates, reduction="none"):
    op = _reducer(node, reduction)
    out = data.copy()
    k = indices.shape[-1]
    flat_idx = indices.reshape(-1, k)
    flat_upd = updates.reshape((flat_idx.shape[0],) + data.shape[k:])
    for i, index in enumerate(flat_idx):
        key = tuple(int(v) for v in index)
        out[key] = flat_upd[i] if op is None else op(out[key], flat_upd[i])
    return out


def _gather_nd(node, data, indices, batch_dims=0):
    k = indices.shape[-1]
    batch = data.shape[:batch_dims]
    nb = int(numpy.prod(batch)) if batch_dims else 1
    d = data.reshape((nb,) + data.shape[batch_dims:])
    idx = indices.reshape((nb, -1, k))
    rows = [d[b][tuple(idx[b].T)] for b in range(nb)]
    out = numpy.stack(rows)
    return out.reshape(indices.shape[:-1] + data.shape[batch_dims + k:])


def _onehot(node, indices, depth, values, axis=-1):
    n = int(K.arr(depth).reshape(-1)[0])
    idx = numpy.where(indices < 0, indices + n, indices).astype(numpy.int64)
    ax = axis % (indices.ndim + 1)
    hot = numpy.expand_dims(idx, ax) == numpy.arange(n).reshape(
        [n if i == ax else 1 for i in range(indices.ndim + 1)])
    return numpy.where(hot, values[1], values[0]).astype(values.dtype)


def _compress(node, x, condition, axis=None):
    cond = condition.astype(bool)
    if axis is None:
        return numpy.compress(cond, x.reshape(-1))
    return numpy.compress(cond, x, axis=axis)


def _space_to_depth(node, x, blocksize):
    n, c, h, w = x.shape
    b = blocksize
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


def _depth_to_space(node, x, blocksize, mode="DCR"):
    n, c, h, w = x.shape
    b = blocksize
    if K.text(mode) == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


def _eyelike(node, x, dtype=None, k=0):
    from onnx import helper  # noqa: PLC0415

    dt = x.dtype if dtype is None else helper.tensor_dtype_to_np_dtype(dtype)
    return numpy.eye(x.shape[0], x.shape[1], k=k, dtype=dt)


def _unique(node, x, axis=None, sorted=1):  # noqa: A002
    flat = x.reshape(-1) if axis is None else numpy.moveaxis(x, axis, 0)
    keys = flat if axis is None else flat.reshape(flat.shape[0], -1)
    uniq, first, inverse, counts = numpy.unique(keys, return_index=True, return_inverse=True,
                                                return_counts=True, axis=None if axis is None
                                                else 0)
    inverse = inverse.reshape(-1)
    if not sorted:
        order = numpy.argsort(first, kind="stable")
        rank = numpy.empty_like(order)
        rank[order] = numpy.arange(len(order))
        uniq, first, counts, inverse = uniq[order], first[order], counts[order], rank[inverse]
    if axis is not None:
        uniq = numpy.moveaxis(uniq.reshape((-1,) + flat.shape[1:]), 0, axis)
    i64 = numpy.int64
    return uniq, first.astype(i64), inverse.astype(i64), counts.astype(i64)


def _reverse_sequence(node, x, lengths, batch_axis=1, time_axis=0):
    out = x.copy()
    for b, n in enumerate(lengths):
        src = [slice(None)] * x.ndim
        src[batch_axis] = b
        src[time_axis] = slice(0, int(n))
        out[tuple(src)] = numpy.flip(x[tuple(src)], axis=time_axis - (time_axis > batch_axis))
    return out


def _center_crop_pad(node, x, shape, axes=None):
    target = [int(s) for s in shape.reshape(-1)]
    axes = list(range(x.ndim)) if axes is None else [int(a) % x.ndim for a in axes]
    out_shape = list(x.shape)
    for a, s in zip(axes, target):
        out_shape[a] = s
    out = numpy.zeros(out_shape, x.dtype)
    src, dst = [slice(None)] * x.ndim, [slice(None)] * x.ndim
    for a, s in zip(axes, target):
        n = x.shape[a]
        if s <= n:  # crop: the window starts at floor((n - s) / 2)
            start = (n - s) // 2
            src[a] = slice(start, start + s)
        else:  # pad: the input starts at floor((s - n) / 2)
            start = (s - n) // 2
            dst[a] = slice(start, start + n)
    out[tuple(dst)] = x[tuple(src)]
    return out


def _scatter_v9(node, data, indices, updates, axis=0):
    return _scatter_elements(node, data, indices, updates, axis=axis)


K.register_array_ops({
    "ScatterElements": _scatter_elements,
    "Scatter": _scatter_v9,
    "ScatterND": _scatter_nd,
    "GatherND": _gather_nd,
    "OneHot": _onehot,
    "Compress": _compress,
    "SpaceToDepth": _space_to_depth,
    "DepthToSpace": _depth_to_space,
    "EyeLike": _eyelike,
    "Unique": _unique,
    "ReverseSequence": _reverse_sequence,
    "CenterCropPad": _center_crop_pad,
})


def _load_tensor_scatter(ctx, node, past, update, write_indices=None, axis=-2, mode="linear"):
    cache = K.arr(past).copy()
    upd = K.arr(update)
    ax = axis % cache.ndim
    n = upd.shape[ax]
    starts = (numpy.zeros(cache.shape[0], numpy.int64) if write_indices is None
              else K.arr(write_indices).reshape(-1))
    for b in range(cache.shape[0]):
        pos = (int(starts[b]) + numpy.arange(n))
        if K.text(mode) == "circular":
            pos = pos % cache.shape[ax]
        dst = [b] + [slice(None)] * (cache.ndim - 1)
        dst[ax] = pos
        src = [b] + [slice(None)] * (cache.ndim - 1)
        cache[tuple(dst)] = upd[tuple(src)]
    return K.wrap(cache)


table.register(K.row("TensorScatter", _load_tensor_scatter))
