"""Movement and indexing: reshape, transpose, slicing, concat/split, gather, pad, expand."""

import importlib

import numpy

from ember import creation
from ember.graph import ir
from ember.ops import diagonals, join, reorder
from ember.ops import index as I
from ember.ops import pad as pad_ops
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
    if kind == "int":
        coords = _dim_coords(len(x.shape), idx)
        if coords is not None:  # gather(x, dim, index)
            dim, where = coords
            return ctx.add("GatherElements", [ctx.name(x), _index_input(ctx, where)], axis=dim)
    arrays = [k for k, i in enumerate(idx) if _is_index(i)]
    if any(_dtype(idx[k]).kind == "b" for k in arrays):
        raise _unsupported(ctx, node, "a bool mask index (its result size depends on the "
                           "data)", "use where(mask, x, 0) or masked_fill instead")
    if len(arrays) == 1 and all(isinstance(i, slice) and i == slice(None)
                                for k, i in enumerate(idx) if k != arrays[0]):
        k = arrays[0]
        return ctx.add("Gather", [ctx.name(x), _index_input(ctx, idx[k])], axis=k)
    raise _unsupported(ctx, node, "advanced indexing with several index arrays",
                       "use index_select or basic slicing")


def _is_index(i):
    return isinstance(i, (numpy.ndarray, ir.Value))


def _dtype(i):
    return numpy.dtype(i.dtype)


def _index_input(ctx, index):
    """An index (a graph Value, or a constant array) as an int64 ONNX tensor."""
    if isinstance(index, ir.Value):
        return C.cast_to(ctx, index, numpy.int64)
    return ctx.const(numpy.asarray(index).astype(numpy.int64), "idx")


def _dim_coords(n, coords):
    """``(dim, index)`` when ``coords`` (for a rank-``n`` tensor) is the coordinate tuple
    gather/scatter build: the index at ``dim`` and, at every other axis ``a``,
    ``arange(size).reshape`` along ``a``; else None."""
    if not isinstance(coords, tuple) or n != len(coords) or \
            not all(_is_index(c) for c in coords):
        return None
    shape = numpy.broadcast_shapes(*(tuple(c.shape) for c in coords))
    dims = []
    for a, c in enumerate(coords):
        if isinstance(c, numpy.ndarray) and c.ndim == n and c.dtype.kind in "iu":
            along = [1] * n
            along[a] = shape[a]
            if tuple(c.shape) == tuple(along) and \
                    (c.reshape(-1) == numpy.arange(shape[a])).all():
                continue  # the identity coordinate of axis a
        dims.append(a)
    if len(dims) > 1 or tuple(coords[dims[0] if dims else 0].shape) != shape:
        return None
    return (dims[0] if dims else 0), coords[dims[0] if dims else 0]


def _scatter_updates(ctx, value, index, like):
    """scatter's ``src`` (a Value of the index's shape), or a value broadcast to it."""
    name = C.cast_to(ctx, value, like.dtype) if isinstance(value, ir.Value) else \
        ctx.scalar(value, like)
    if isinstance(value, ir.Value) and tuple(value.shape) == tuple(index.shape):
        return name
    return ctx.add("Expand", [name, ctx.add("Shape", [_index_input(ctx, index)])])


def _export_index_put(ctx, node):
    """scatter(x, dim, index, src / value): ScatterElements."""
    x, value, stages = node.args[:3]
    coords = _dim_coords(len(x.shape), stages[0][0]) \
        if len(stages) == 1 and stages[0][1] == "int" else None
    if coords is None:
        raise _unsupported(ctx, node, "an indexed write other than scatter",
                           "write the model with scatter or where")
    dim, index = coords
    return ctx.add("ScatterElements", [ctx.name(x), _index_input(ctx, index),
                                       _scatter_updates(ctx, value, index, x)], axis=dim)


def _export_index_add(ctx, node):
    """scatter_add / index_add: ScatterElements with reduction='add' into zeros."""
    g, shape, index, kind = node.args[:4]
    coords = _dim_coords(len(shape), index) if kind == "int" else None
    if coords is None or ctx.opset < 16:
        raise _unsupported(ctx, node, "an indexed add other than scatter_add (or scatter_add "
                           "below opset 16)", "use opset 16+ and scatter_add")
    dim, where = coords
    zeros = ctx.add("Expand", [ctx.scalar(0, g), ctx.shape_input(node, 1, False)])
    return ctx.add("ScatterElements", [zeros, _index_input(ctx, where), ctx.name(g)], axis=dim,
                   reduction="add")


def _unsupported(ctx, node, what, hint="see docs/onnx.md for the forms that export"):
    """The ExportError for an op used in a way that has no ONNX form (names op and layer)."""
    # ``from ember.onnx import export`` would give the function of that name, not the module.
    export_mod = importlib.import_module("ember.onnx.export")
    return export_mod.ExportError(
        f"onnx export: {node.op_name} (in layer {node.scope or '<top level>'!r}) uses {what}, "
        f"which has no ONNX export at opset {ctx.opset}; {hint}")


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


def _export_roll(ctx, node):
    """Each rolled dim as two Slices and a Concat. A shift within (-n, n) is sliced from the
    end (positive) or the start (negative), so it stays right when that dim is dynamic."""
    x, shifts, dims = node.args
    y = ctx.name(x)
    for shift, dim in zip(shifts, dims):
        n = x.shape[dim]
        if n == 0 or shift % n == 0:
            continue
        # roll by s is x[-s:] then x[:-s]; a negative s splits at -s from the start.
        at = -(shift if -n < shift < n else shift % n)
        tail = ctx.add("Slice", [y, ctx.ints([at]), ctx.ints([_BIG]), ctx.ints([dim])])
        head = ctx.add("Slice", [y, ctx.ints([0]), ctx.ints([at]), ctx.ints([dim])])
        y = ctx.add("Concat", [tail, head], axis=int(dim))
    return y if y != ctx.name(x) else ctx.add("Identity", [y])


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
    table.Row("Concat", since=4, ember_ops=(join._Cat,), export=_export_cat,
              load=lambda ctx, node, *xs, axis: join.cat(list(xs), axis)),
    table.Row("Concat", since=4, ember_ops=(join._Stack,), export=_export_stack,
              note="stack as Unsqueeze + Concat"),
    table.Row("Split", since=2, ember_ops=(join._Split, join._Unbind), note="split, chunk, unbind",
              export=lambda ctx, node: (_export_split if node.op is join._Split
                                        else _export_unbind)(ctx, node), load=None),
    table.Row("Slice", since=10, ember_ops=(S._Slice, I.GetItem), export=_export_getitem,
              note="basic indexing; one index array becomes Gather"),
    table.Row("Pad", since=11, ember_ops=(S._Embed,), export=_export_embed),
    table.Row("ScatterElements", since=11, ember_ops=(I.IndexPut,), export=_export_index_put,
              note="scatter(dim, index, src or value)"),
    table.Row("ScatterElements", since=16, ember_ops=(I.IndexAddInto,),
              export=_export_index_add, note="scatter_add (reduction='add')"),
    table.Row("Slice", since=10, ember_ops=(reorder._Flip,), export=_export_flip, note="flip"),
    table.Row("Concat", since=10, ember_ops=(reorder._Roll,), export=_export_roll,
              note="roll as Slice + Concat per dim"),
    table.Row("Trilu", since=14, ember_ops=(diagonals._Tri,), export=_export_tri,
              load=lambda ctx, node, x, k=None, upper=1: (
                  diagonals.triu if upper else diagonals.tril)(
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
    return tuple(join.split(x, list(sizes), axis))


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
        return pad_ops.pad(x, tuple(torch_pad), "constant", value)
    return pad_ops.pad(x, tuple(torch_pad), _PAD_MODES[mode])


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
