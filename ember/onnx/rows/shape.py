"""Movement and indexing: reshape, transpose, slicing, concat/split, gather, pad, expand."""

import numpy

from ember import creation
from ember.ops import index as I
from ember.ops import shape as S
from ember.onnx import table
from ember.onnx.rows import _common as C

_BIG = numpy.iinfo(numpy.int64).max
_SMALL = numpy.iinfo(numpy.int64).min


def _axes_input_or_attr(ctx, op, x, axes):
    """Squeeze/Unsqueeze take axes as an input from opset 13, as an attribute before."""
    if ctx.opset >= 13:
        return ctx.add(op, [x, ctx.ints(axes)])
    return ctx.add(op, [x], axes=list(axes))


# ---- export ---------------------------------------------------------------------------------


def _export_reshape(ctx, node):
    return ctx.add("Reshape", [ctx.name(node.args[0]), ctx.shape_input(node, 1)])


def _export_expand(ctx, node):
    return ctx.add("Expand", [ctx.name(node.args[0]), ctx.shape_input(node, 1, False)])


def _export_cat(ctx, node):
    return ctx.add("Concat", [ctx.name(v) for v in node.args], axis=int(node.kwargs["dim"]))


def _export_stack(ctx, node):
    dim = int(node.kwargs["dim"])
    n = len(node.args[0].shape) + 1
    parts = [_axes_input_or_attr(ctx, "Unsqueeze", ctx.name(v), [dim % n]) for v in node.args]
    return parts[0] if len(parts) == 1 else ctx.add("Concat", parts, axis=dim)


def _split(ctx, x, dim, sizes):
    if len(sizes) == 1:
        return [ctx.add("Identity", [x])]
    if ctx.opset >= 13:
        return ctx.add("Split", [x, ctx.ints(sizes)], n_out=len(sizes), axis=int(dim))
    return ctx.add("Split", [x], n_out=len(sizes), axis=int(dim), split=list(sizes))


def _export_split(ctx, node):
    x, dim, sizes = node.args
    return _split(ctx, ctx.name(x), dim, list(sizes))


def _export_unbind(ctx, node):
    x, dim = node.args
    parts = _split(ctx, ctx.name(x), dim, [1] * x.shape[dim])
    return [_axes_input_or_attr(ctx, "Squeeze", p, [dim]) for p in parts]


def _basic_index(ctx, node, x, index):
    """x[index] for a tuple of ints, slices, None and Ellipsis: Slice, Squeeze, Unsqueeze."""
    index = index if isinstance(index, tuple) else (index,)
    n = len(x.shape)
    used = sum(1 for i in index if i is not None and i is not Ellipsis)
    if Ellipsis in index:
        k = index.index(Ellipsis)
        index = index[:k] + (slice(None),) * (n - used) + index[k + 1:]
    else:
        index = index + (slice(None),) * (n - used)
    starts, ends, axes, steps, drop, new = [], [], [], [], [], []
    dim = out = 0
    for i in index:
        if i is None:
            new.append(out)
            out += 1
            continue
        if isinstance(i, slice):
            if i != slice(None):
                step = 1 if i.step is None else int(i.step)
                lo = _BIG if step < 0 else 0
                hi = _SMALL if step < 0 else _BIG
                starts.append(lo if i.start is None else int(i.start))
                ends.append(hi if i.stop is None else int(i.stop))
                axes.append(dim)
                steps.append(step)
            out += 1
        elif isinstance(i, (int, numpy.integer)):
            i = int(i)
            starts.append(i)
            ends.append(_BIG if i == -1 else i + 1)
            axes.append(dim)
            steps.append(1)
            drop.append(dim)
        else:
            raise TypeError(f"onnx export: index {i!r} is not basic indexing")
        dim += 1
    y = ctx.name(x)
    if axes:
        y = ctx.add("Slice", [y, ctx.ints(starts), ctx.ints(ends), ctx.ints(axes),
                              ctx.ints(steps)])
    if drop:
        y = _axes_input_or_attr(ctx, "Squeeze", y, drop)
    if new:
        y = _axes_input_or_attr(ctx, "Unsqueeze", y, new)
    if not (axes or drop or new):
        y = ctx.add("Identity", [y])
    return y


def _export_getitem(ctx, node):
    x, index = node.args[0], node.args[1]
    kind = node.args[2] if len(node.args) > 2 else "int"
    if kind == "basic" or node.op is S._Slice:
        return _basic_index(ctx, node, x, index)
    idx = index if isinstance(index, tuple) else (index,)
    arrays = [k for k, i in enumerate(idx) if isinstance(i, numpy.ndarray)]
    if len(arrays) == 1 and all(i == slice(None) for k, i in enumerate(idx) if k != arrays[0]):
        k = arrays[0]
        return ctx.add("Gather", [ctx.name(x), ctx.const(idx[k].astype(numpy.int64), "idx")],
                       axis=k)
    raise _unsupported(ctx, node, "advanced indexing with several index arrays")


def _unsupported(ctx, node, what):
    from ember.onnx import export as export_mod  # noqa: PLC0415

    return export_mod.ExportError(
        f"onnx export: {node.op_name} (in layer {node.scope or '<top level>'!r}) uses {what}, "
        f"which has no ONNX export at opset {ctx.opset}; use index_select or basic slicing")


def _export_gather(ctx, node):
    x, dim, idx = node.args
    return ctx.add("Gather", [ctx.name(x), ctx.const(numpy.asarray(idx, numpy.int64), "idx")],
                   axis=int(dim))


def _export_embed(ctx, node):
    """Constant padding (_Embed writes the input into a filled array at a slice)."""
    g, shape, index, value = node.args
    n = len(shape)
    index = tuple(index) + (slice(None),) * (n - len(index))
    lo = [0 if s.start is None else int(s.start) for s in index]
    hi = [shape[d] - (shape[d] if s.stop is None else int(s.stop)) for d, s in enumerate(index)]
    if any(s.step not in (None, 1) for s in index):
        raise _unsupported(ctx, node, "a strided embed")
    return ctx.add("Pad", [ctx.name(g), ctx.ints(lo + hi), ctx.scalar(value, g)],
                   mode="constant")


def _export_flip(ctx, node):
    x, dims = node.args
    dims = [dims] if isinstance(dims, int) else list(dims)
    k = len(dims)
    return ctx.add("Slice", [ctx.name(x), ctx.ints([-1] * k), ctx.ints([_SMALL] * k),
                             ctx.ints(dims), ctx.ints([-1] * k)])


def _export_tri(ctx, node):
    x, k, lower = node.args
    return ctx.add("Trilu", [ctx.name(x), ctx.const(numpy.asarray(k, numpy.int64), "k")],
                   upper=int(not lower))


table.register(
    table.Row("Reshape", since=5, ember_ops=(S.Reshape,), export=_export_reshape,
              load=lambda ctx, node, x, shape, allowzero=0: _load_reshape(x, shape, allowzero)),
    table.Row("Transpose", since=1, ember_ops=(S.Permute,),
              export=lambda ctx, node: ctx.add("Transpose", [ctx.name(node.args[0])],
                                               perm=[int(a) for a in node.args[1]]),
              load=lambda ctx, node, x, perm=None: S.permute(
                  x, tuple(perm) if perm is not None else tuple(range(x.ndim))[::-1])),
    table.Row("Expand", since=8, ember_ops=(S.BroadcastTo,), export=_export_expand,
              load=lambda ctx, node, x, shape: _load_expand(x, shape)),
    table.Row("Concat", since=4, ember_ops=(S._Cat,), export=_export_cat,
              load=lambda ctx, node, *xs, axis: S.cat(list(xs), axis)),
    table.Row("Concat", since=4, ember_ops=(S._Stack,), export=_export_stack,
              note="stack as Unsqueeze + Concat"),
    table.Row("Split", since=2, ember_ops=(S._Split, S._Unbind), note="split, chunk, unbind",
              export=lambda ctx, node: (_export_split if node.op is S._Split
                                        else _export_unbind)(ctx, node), load=None),
    table.Row("Slice", since=10, ember_ops=(S._Slice, I.GetItem), export=_export_getitem,
              note="basic indexing; one index array becomes Gather"),
    table.Row("Pad", since=11, ember_ops=(S._Embed,), export=_export_embed),
    table.Row("Slice", since=10, ember_ops=(S._Flip,), export=_export_flip, note="flip"),
    table.Row("Trilu", since=14, ember_ops=(S._Tri,), export=_export_tri,
              load=lambda ctx, node, x, k=None, upper=1: (S.triu if upper else S.tril)(
                  x, C.int_list(k)[0] if k is not None else 0)),
)

# ---- load -------------------------------------------------------------------------------------


def _load_reshape(x, shape, allowzero):
    target = C.int_list(shape)
    if not allowzero:
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return S.reshape(x, tuple(target))


def _load_expand(x, shape):
    target = C.int_list(shape)
    out = numpy.broadcast_shapes(tuple(x.shape), tuple(target))
    return S.broadcast_to(x, out)


def _load_flatten(ctx, node, x, axis=1):
    a = axis % x.ndim if x.ndim else 0
    lead = int(numpy.prod(x.shape[:a])) if a else 1
    return S.reshape(x, (lead, -1))


def _axes_of(ctx, axes, attr_axes):
    a = C.int_list(axes) if axes is not None else attr_axes
    return None if a is None else list(a)


def _load_squeeze(ctx, node, x, axes=None):
    axes = axes if isinstance(axes, list) or axes is None else C.int_list(axes)
    if axes is None:
        return S.reshape(x, tuple(d for d in x.shape if d != 1))
    axes = {a % x.ndim for a in axes}
    return S.reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def _load_unsqueeze(ctx, node, x, axes=None):
    axes = axes if isinstance(axes, list) else C.int_list(axes)
    n = x.ndim + len(axes)
    axes = sorted(a % n for a in axes)
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return S.reshape(x, tuple(shape))


def _load_split(ctx, node, x, split=None, axis=0, num_outputs=None):
    n_out = len(node.output)
    if split is not None:
        sizes = split if isinstance(split, list) else C.int_list(split)
    else:
        size = x.shape[axis]
        chunk = -(-size // n_out)
        sizes = [chunk] * (size // chunk) + ([size % chunk] if size % chunk else [])
    return tuple(S.split(x, list(sizes), axis))


def _load_slice(ctx, node, x, starts=None, ends=None, axes=None, steps=None):
    starts = starts if isinstance(starts, list) else C.int_list(starts)
    ends = ends if isinstance(ends, list) else C.int_list(ends)
    axes = (axes if isinstance(axes, list) else C.int_list(axes)) if axes is not None else \
        list(range(len(starts)))
    steps = (steps if isinstance(steps, list) else C.int_list(steps)) if steps is not None \
        else [1] * len(starts)
    index = [slice(None)] * x.ndim
    backwards = []
    for s, e, a, st in zip(starts, ends, axes, steps):
        a %= x.ndim
        if st < 0:  # ember (like torch) slices forward only: pick the positions explicitly
            picked = numpy.arange(x.shape[a])[slice(s, e, st)]
            backwards.append((a, picked))
        else:
            index[a] = slice(s, e, st)
    y = x[tuple(index)]
    for a, picked in backwards:
        y = I.index_select(y, a, creation.tensor(picked.astype(numpy.int64)))
    return y


def _load_gather(ctx, node, x, indices, axis=0):
    a = axis % x.ndim
    n = x.shape[a]
    idx = indices
    if (C.as_numpy(idx) < 0).any():
        idx = idx % n
    if idx.ndim == 0:
        return S.reshape(I.index_select(x, a, S.reshape(idx, (1,))),
                         tuple(x.shape[:a]) + tuple(x.shape[a + 1:]))
    flat = I.index_select(x, a, S.reshape(idx, (-1,)))
    return S.reshape(flat, tuple(x.shape[:a]) + tuple(idx.shape) + tuple(x.shape[a + 1:]))


def _load_gather_elements(ctx, node, x, indices, axis=0):
    idx = indices
    if (C.as_numpy(idx) < 0).any():
        idx = idx % x.shape[axis]
    return I.gather(x, axis, idx)


def _load_shape(ctx, node, x, start=0, end=None):
    return creation.tensor(numpy.asarray(x.shape[start:end], dtype=numpy.int64))


def _load_size(ctx, node, x):
    return creation.tensor(numpy.asarray(int(numpy.prod(x.shape)), dtype=numpy.int64))


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
              "wrap": "circular"}


def _load_pad(ctx, node, x, pads, constant_value=None, axes=None, mode="constant"):
    value = float(C.as_numpy(constant_value).reshape(-1)[0]) if constant_value is not None \
        else 0.0
    return _pad(x, C.int_list(pads), C.int_list(axes) if axes is not None else None, mode,
                value)


def _load_pad_attrs(ctx, node, x, pads, mode="constant", value=0.0):
    return _pad(x, list(pads), None, mode, value)


def _pad(x, p, axes, mode, value):
    """ONNX pads (all begins, then all ends, over ``axes``) as one ember pad call."""
    n = x.ndim
    ax = [a % n for a in (axes if axes is not None else range(n))]
    k = len(ax)
    before = dict(zip(ax, p[:k]))
    after = dict(zip(ax, p[k:]))
    last = min(ax)
    if mode != "constant":
        # ember pads the last 1-3 dims after 1 or 2 leading (batch, channel) dims.
        padded = min((a for a in ax if before[a] or after[a]), default=n - 1)
        last = 2 if n >= 3 and padded >= 2 else 1
    torch_pad = []
    for d in range(n - 1, last - 1, -1):
        torch_pad += [before.get(d, 0), after.get(d, 0)]
    if mode == "constant":
        return S.pad(x, tuple(torch_pad), "constant", value)
    return S.pad(x, tuple(torch_pad), _PAD_MODES[mode])


def _load_tile(ctx, node, x, repeats):
    return S.tile(x, tuple(C.int_list(repeats)))


def _load_dropout(ctx, node, x, ratio=None, training_mode=None, seed=None, is_test=None):
    return x  # inference: identity (a mask output, if asked for, is not supported)


table.register(
    table.Row("Flatten", since=1, load=_load_flatten),
    table.Row("Squeeze", since=1, load=_load_squeeze),
    table.Row("Unsqueeze", since=1, load=_load_unsqueeze),
    table.Row("Split", since=2, load=_load_split),
    table.Row("Slice", since=10, load=_load_slice),
    table.Row("Slice", since=1, until=9, load=_load_slice),
    table.Row("Gather", since=1, load=_load_gather),
    table.Row("GatherElements", since=11, load=_load_gather_elements),
    table.Row("Shape", since=1, load=_load_shape),
    table.Row("Size", since=1, load=_load_size),
    table.Row("Pad", since=11, load=_load_pad),
    table.Row("Pad", since=2, until=10, load=_load_pad_attrs),
    table.Row("Tile", since=6, load=_load_tile),
    table.Row("Dropout", since=1, load=_load_dropout),
)
