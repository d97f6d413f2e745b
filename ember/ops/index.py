"""Indexing: x[...] read and write, gather/scatter, index_select/index_add, masks, take.

Three Functions carry every gradient in this file:

- ``GetItem``: ``x[index]`` for an array-library index; backward is ``IndexAddInto``.
- ``IndexAddInto``: zeros with ``g`` added at ``index`` (repeats accumulate); backward is
  ``GetItem`` again, so the pair gives derivatives of any order.
- ``IndexPut``: a copy of ``x`` with ``value`` written at ``index`` (``x[index] = value``);
  backward zeroes the written positions of the gradient for ``x`` and reads them for ``value``.

gather/scatter address one dim with an index tensor; they become the same three Functions
through an index of broadcast coordinates (``_dim_coords``). index_select, index_add, take,
masked_select, and in ``sort.py`` the values of sort/topk, are composed from them, so their
gradients (double backward included) are right by construction.
"""

import numpy

from ember import dtypes, errors
from ember.autograd import grad_mode
from ember.autograd.function import Function, _Tracing
from ember.ops import _common
from ember.ops import shape as shape_ops
from ember.ops import sort as sort_ops
from ember.tensor import Tensor

_State = grad_mode._State
_ndarray = numpy.ndarray
_make = Tensor._make


class _IndexOutOfRange(errors.ShapeError, IndexError):
    """An index past the end of a dim. It is an IndexError too, so Python's sequence protocol
    (``for row in x``, which calls x[0], x[1], ... until IndexError) stops at the end."""


# ---- index normalization -------------------------------------------------------------------

_BASIC, _MASK, _INT = "basic", "mask", "int"


def _xp_of(t):
    return t.device.xp


def _index_array(obj, xp, op):
    """An integer/bool array from a Tensor, NumPy array or list used as an index."""
    if isinstance(obj, Tensor):
        data = obj._data
        if xp is numpy and not isinstance(data, numpy.ndarray):
            raise errors.DeviceError(
                f"{op}: the indexed tensor is on cpu but an index tensor is on {obj.device}; "
                "move the index with .cpu()"
            )
    else:
        data = numpy.asarray(obj)
        if data.size == 0 and data.dtype.kind == "f":
            data = data.astype(numpy.int64)  # [] parses as float64; an empty index is integer
    if data.dtype.kind not in "iub":
        raise errors.DTypeError(
            f"{op}: tensors used as indices must be integer (int64, int32) or bool, got "
            f"{_dtype_name(data.dtype)}; convert with index.long()"
        )
    if xp is not numpy and isinstance(data, numpy.ndarray):
        data = xp.asarray(data)
    return data


def _dtype_name(dt):
    try:
        return dtypes.name(dt)
    except (KeyError, TypeError, ValueError):
        return str(dt)


def _check_bounds(arr, size, op, dim, allow_negative=True):
    """Raise _IndexOutOfRange naming the first bad value if ``arr`` leaves [-size, size)."""
    if arr.size == 0:
        return
    lo_ok = -size if allow_negative else 0
    lo, hi = int(arr.min()), int(arr.max())
    if hi >= size or lo < lo_ok:
        bad = hi if hi >= size else lo
        valid = f"[{lo_ok}, {size})" if size else "none (the dim is empty)"
        raise _IndexOutOfRange(
            f"{op}: index {bad} is out of bounds for dim {dim} with size {size}; valid indices "
            f"are {valid}"
        )


def _plain_basic(x, index):
    """The index itself (Ellipsis appended) when it holds only Python ints in range, slices
    with int bounds and a positive step, None and one Ellipsis: the common case, kept cheap.
    None for anything else, which then takes the general path of ``_normalize``."""
    items = index if type(index) is tuple else (index,)
    shape = x._data.shape
    used = 0
    ellipses = 0
    for it in items:
        t = type(it)
        if t is int:
            used += 1
        elif t is slice:
            if not (_int_or_none(it.start) and _int_or_none(it.stop) and _int_or_none(it.step)):
                return None
            if it.step is not None and it.step <= 0:
                return None
            used += 1
        elif it is Ellipsis:
            ellipses += 1
        elif it is not None:
            return None
    if ellipses > 1 or used > len(shape):
        return None
    dim = 0
    for it in items:
        if type(it) is int:
            if not -shape[dim] <= it < shape[dim]:
                return None
            dim += 1
        elif type(it) is slice:
            dim += 1
        elif it is Ellipsis:
            dim += len(shape) - used
    return items if ellipses else items + (Ellipsis,)


def _int_or_none(v):
    return v is None or type(v) is int


def _normalize(x, index, op):
    """Turn a user index into array-library indexing stages: a list of (index_tuple, kind).

    PyTorch applies integer indices before advanced ones, so ``x[0, :, [1, 2]]`` has shape
    (3, 2, ...) where NumPy would give (2, 3, ...). When ints and index arrays mix, we run two
    stages: a basic stage with the ints (a view), then the advanced stage on that view.
    """
    plain = _plain_basic(x, index)
    if plain is not None:
        return [(plain, _BASIC)]
    xp = _xp_of(x)
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for it in items:
        if isinstance(it, Tensor) and it._data.ndim == 0 and it._data.dtype.kind in "iu":
            it = int(it._data)
        if it is None or it is Ellipsis or isinstance(it, (bool, numpy.bool_)):
            out.append(it)
        elif isinstance(it, (int, numpy.integer)):
            out.append(int(it))
        elif isinstance(it, slice):
            out.append(_check_slice(it, op))
        elif isinstance(it, (Tensor, numpy.ndarray, list, tuple)):
            out.append(_index_array(it, xp, op))
        else:
            raise errors.DTypeError(
                f"{op}: only integers, slices, None, Ellipsis, and integer or bool tensors are "
                f"valid indices, got {type(it).__name__} ({it!r})"
            )
    _check_dims(x, out, op)
    has_int = any(type(it) is int for it in out)
    arrays = [it for it in out if hasattr(it, "dtype") and not isinstance(it, numpy.bool_)]
    if not arrays:
        return [(_view_index(out), _BASIC)]
    kind = _INT if any(a.dtype.kind != "b" for a in arrays) else _MASK
    if not has_int:
        return [(tuple(out), kind)]
    first, second = [], []
    for it in out:
        if type(it) is int:
            first.append(it)
        elif hasattr(it, "dtype") and not isinstance(it, numpy.bool_):
            n = it.ndim if it.dtype.kind == "b" else 1
            first.extend([slice(None)] * n)
            second.append(it)
        else:
            first.append(it)
            second.append(it if it is Ellipsis else slice(None))
    return [(_view_index(first), _BASIC), (tuple(second), kind)]


def _view_index(items):
    """A basic index that NumPy answers with a view even when every dim is an int."""
    items = tuple(items)
    return items if any(i is Ellipsis for i in items) else items + (Ellipsis,)


def _check_slice(s, op):
    step = s.step
    if step is not None and int(step) <= 0:
        raise errors.ShapeError(
            f"{op}: slice step must be greater than zero, got {int(step)} (negative steps are "
            "not supported, as in PyTorch); reverse with .flip(dim) or an index tensor"
        )
    return slice(*(None if v is None else int(v) for v in (s.start, s.stop, s.step)))


def _check_dims(x, items, op):
    """Too many indices, several Ellipses, mask shapes, and out-of-range ints/arrays."""
    shape = x._data.shape
    used = 0
    for it in items:
        if it is None or it is Ellipsis or isinstance(it, (bool, numpy.bool_)):
            continue
        used += it.ndim if hasattr(it, "dtype") and it.dtype.kind == "b" else 1
    if sum(1 for it in items if it is Ellipsis) > 1:
        raise errors.ShapeError(f"{op}: an index can only have a single ellipsis ('...')")
    if used > len(shape):
        raise _IndexOutOfRange(
            f"{op}: too many indices for a tensor of shape {errors.shape_str(shape)}: "
            f"{used} dims indexed, the tensor has {len(shape)}"
        )
    dim = 0
    for it in items:
        if it is Ellipsis:
            dim += len(shape) - used
        elif it is None or isinstance(it, (bool, numpy.bool_)):
            continue
        elif type(it) is int:
            if not -shape[dim] <= it < shape[dim]:
                raise _IndexOutOfRange(
                    f"{op}: index {it} is out of bounds for dim {dim} with size {shape[dim]} "
                    f"(tensor of shape {errors.shape_str(shape)})"
                )
            dim += 1
        elif isinstance(it, slice):
            dim += 1
        elif it.dtype.kind == "b":
            want = shape[dim:dim + it.ndim]
            if tuple(it.shape) != tuple(want):
                raise _IndexOutOfRange(
                    f"{op}: the mask of shape {errors.shape_str(it.shape)} does not match the "
                    f"indexed tensor's shape {errors.shape_str(want)} at dim {dim} (tensor of "
                    f"shape {errors.shape_str(shape)})"
                )
            dim += it.ndim
        else:
            _check_bounds(it, shape[dim], op, dim)
            dim += 1


def _for_add_at(index):
    """Bool masks replaced by their nonzero() coordinates (ufunc.at wants integer indices)."""
    out = []
    for it in index:
        if hasattr(it, "dtype") and it.dtype.kind == "b" and it.ndim > 0:
            out.extend(it.nonzero())
        else:
            out.append(it)
    return tuple(out)


# ---- the three primitives ------------------------------------------------------------------


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index, kind=_INT):
        ctx.in_shape = x.shape
        ctx.index = index
        ctx.kind = kind
        return x[index]

    @staticmethod
    def backward(ctx, gy):
        if not _State.enabled:  # no graph to record: the scatter on arrays alone (~1.5 us less)
            g = _index_add_into(ctx.xp, gy._data, ctx.in_shape, ctx.index, ctx.kind)
            return _common.constant(g)
        return IndexAddInto.apply(gy, ctx.in_shape, ctx.index, ctx.kind)


class IndexAddInto(Function):
    """zeros(shape) with ``g`` added at ``index`` (repeated indices accumulate): the gradient of
    ``x[index]``. Its own gradient is indexing again."""

    # NOTE: np.add.at is no longer the slow path it was before NumPy 1.25. Measured on NumPy
    # 2.4 (float32): 100k scattered scalars 1.5 ms vs 1.2 ms for a bincount over linear
    # indices, 50k rows of 64: 37 ms vs 32 ms, and 10 scalars into 1M: 0.19 ms vs 1.0 ms. The
    # ~20% gain on dense cases does not pay for bincount's float64 detour and the loss on
    # sparse ones, so add.at it is.

    @staticmethod
    def forward(ctx, g, shape, index, kind=_INT):
        ctx.index = index
        ctx.kind = kind
        return _index_add_into(ctx.xp, g, shape, index, ctx.kind)

    @staticmethod
    def backward(ctx, gy):
        return GetItem.apply(gy, ctx.index, ctx.kind)


def _index_add_into(xp, g, shape, index, kind):
    out = xp.zeros(shape, dtype=g.dtype)
    if kind == _INT:
        xp.add.at(out, _for_add_at(index), g)
    else:  # slices and masks name each position at most once: a plain write suffices
        out[index] = g
    return out


class IndexPut(Function):
    """A copy of ``x`` with ``value`` (array or number, broadcast) written at ``stages``.

    ``scratch=True`` says ``x`` is a private copy (made by ``_common.inplace``) that may be
    written directly, saving a second copy on the ``x[i] = v`` path.
    """

    @staticmethod
    def forward(ctx, x, value, stages, scratch=False):
        ctx.stages = stages
        ctx.value_shape = getattr(value, "shape", None)
        out = x if scratch else x.copy()
        _write(out, stages, value, "setitem")
        return out

    @staticmethod
    def backward(ctx, gy):
        need_x, need_v = ctx.needs_input_grad[:2]
        gx = IndexPut.apply(gy, 0, ctx.stages) if need_x else None
        gv = None
        if need_v:
            gv = _get_stages(gy, ctx.stages)
            vshape = ctx.value_shape
            if len(vshape) > gv.ndim:  # value had extra leading 1-dims that broadcast away
                from ember.ops import reduce  # noqa: PLC0415

                gv = reduce.sum_to(gv, vshape[len(vshape) - gv.ndim:])
                gv = shape_ops.reshape(gv, vshape)
        return gx, gv, None, None


def _write(arr, stages, value, op):
    target = arr
    for idx, _ in stages[:-1]:
        target = target[idx]  # basic stages give views, so the write lands in ``arr``
    try:
        target[stages[-1][0]] = value
    except ValueError:
        got = errors.shape_str(getattr(value, "shape", ()))
        want = errors.shape_str(target[stages[-1][0]].shape)
        raise errors.ShapeError(
            f"{op}: shape mismatch: a value of shape {got} cannot be broadcast to the indexing "
            f"result of shape {want}"
        ) from None


def _get_stages(x, stages):
    for idx, kind in stages:
        y = GetItem.apply(x, idx, kind)
        if kind == _BASIC:
            shape_ops._as_view(y, x)
        x = y
    return x


# ---- x[index] and x[index] = value ---------------------------------------------------------


def getitem(input, index):
    """``input[index]`` with ints, slices (positive steps), None, Ellipsis, bool masks and
    integer tensors/arrays/lists, placed as PyTorch places them. Basic indexing (no index
    tensors) returns a view sharing storage and version counter with ``input``."""
    # NOTE: x[i] and x[a:b], the most common indices, are recognised without _plain_basic's
    # two passes (x[1:3] on 4x4: ~0.6 us less); the index given to GetItem is the same.
    t = type(index)
    shape = input._data.shape
    step = index.step if t is slice else None
    if t is slice and shape and (step is None or (type(step) is int and step > 0)) \
            and _int_or_none(index.start) and _int_or_none(index.stop):
        plain = (index, Ellipsis)
    elif t is int and shape and -shape[0] <= index < shape[0]:
        plain = (index, Ellipsis)
    else:
        plain = _plain_basic(input, index)
    if plain is not None:
        # NOTE (measured, `python bench/overhead.py --repeats 9 --threads 1 --clock cpu`, HEAD vs
        # this): the no-graph fast path took getitem fwd (x[1:3]) from 2.7-4.3 us (1.33-1.38x
        # PyTorch) to 1.8-2.1 us (0.77-0.91x).
        data = input._data
        if type(data) is _ndarray and _Tracing.tracer is None \
                and not (input._rg and _State.enabled):  # no-graph fast path (function.py)
            out = data[plain]  # a view: plain always holds Ellipsis, so never a NumPy scalar
            return shape_ops._as_view(_make(out, False, None, 0), input)
        return shape_ops._as_view(GetItem.apply(input, plain, _BASIC), input)
    return _get_stages(input, _normalize(input, index, "getitem"))


def setitem(input, index, value):
    """``input[index] = value`` (a number or a tensor broadcast to the indexed shape).

    Under autograd this is the functional IndexPut written back into ``input``'s storage: the
    gradient of ``input`` is zero at the written positions, the gradient of ``value`` is the
    incoming gradient there. Without autograd it is one array write plus a version bump.
    """
    stages = _normalize(input, index, "setitem")
    value = _value_operand(input, value, "setitem")
    value_rg = isinstance(value, Tensor) and value._rg
    if _State.enabled and (input._rg or value_rg):
        _common.inplace(input, lambda src: IndexPut.apply(src, value, stages, True), "setitem")
        return
    data = value._data if isinstance(value, Tensor) else value
    _write(input._data, stages, data, "setitem")
    input._version[0] += 1


def _value_operand(input, value, op):
    """A value to write into ``input``: numbers stay numbers, arrays become Tensors of
    ``input``'s dtype and device (PyTorch casts the value on assignment)."""
    if isinstance(value, _common._SCALARS):
        return value
    if not isinstance(value, Tensor):
        from ember import creation  # noqa: PLC0415

        value = creation.as_tensor(value, device=input.device)
    if value.device != input.device:
        raise errors.DeviceError(
            f"{op}: the value is on {value.device} but the tensor is on {input.device}; move it "
            "with .to(device)"
        )
    if value._data.dtype != input._data.dtype:
        value = value.to(input._data.dtype)
    return value


# ---- gather / scatter ----------------------------------------------------------------------


def _dim_index(index, op):
    """The raw integer array of an index Tensor, with a DTypeError for anything else."""
    if not isinstance(index, Tensor):
        raise errors.DTypeError(
            f"{op}: index must be an integer Tensor, got {type(index).__name__}"
        )
    if index._data.dtype.kind not in "iu":
        raise errors.DTypeError(
            f"{op}: index must be an integer tensor (int64 or int32), got "
            f"{_dtype_name(index._data.dtype)}; convert with index.long()"
        )
    return index._data


def _dim_coords(xp, index, dim):
    """A tuple of broadcastable coordinate arrays addressing element ``i`` of ``index`` at
    position ``i`` with coordinate ``dim`` replaced by ``index[i]`` (gather's addressing)."""
    n = index.ndim
    coords = []
    for a in range(n):
        if a == dim:
            coords.append(index)
        else:
            shape = [1] * n
            shape[a] = index.shape[a]
            coords.append(xp.arange(index.shape[a]).reshape(shape))
    return tuple(coords)


def _gather_setup(input, dim, index, op, others=()):
    """Check gather/scatter arguments; return (dim, index array, coords)."""
    idx = _dim_index(index, op)
    nd = input.ndim
    dim = _common.normalize_dim(dim, nd, op)
    if idx.ndim != max(nd, 1) and not (nd == 0 and idx.ndim == 0):
        raise errors.ShapeError(
            f"{op}: index must have as many dims as the input: index has shape "
            f"{errors.shape_str(idx.shape)}, input {errors.shape_str(input.shape)}"
        )
    ishape = tuple(input.shape) or (1,)
    idx1 = idx.reshape(-1) if idx.ndim == 0 else idx
    for d in range(idx1.ndim):
        if d != dim and idx1.shape[d] > ishape[d]:
            raise errors.ShapeError(
                f"{op}: index of shape {errors.shape_str(idx.shape)} is larger than the input "
                f"of shape {errors.shape_str(input.shape)} at dim {d}; index.size(d) must be "
                "<= input.size(d) for every d != dim"
            )
        for name, other in others:
            oshape = tuple(other.shape) or (1,)
            if len(oshape) != idx1.ndim:
                raise errors.ShapeError(
                    f"{op}: {name} must have as many dims as index: {name} has shape "
                    f"{errors.shape_str(other.shape)}, index {errors.shape_str(idx.shape)}"
                )
            if idx1.shape[d] > oshape[d]:
                raise errors.ShapeError(
                    f"{op}: index of shape {errors.shape_str(idx.shape)} is larger than {name} "
                    f"of shape {errors.shape_str(other.shape)} at dim {d}"
                )
    if not isinstance(idx, type(input._data)):
        idx = _xp_of(input).asarray(idx)
        idx1 = idx.reshape(-1) if idx.ndim == 0 else idx
    _check_bounds(idx1, ishape[dim], op, dim, allow_negative=False)
    coords = _dim_coords(_xp_of(input), idx1, dim)
    if nd == 0:
        coords = (coords[0].reshape(idx.shape),)
    return dim, idx, coords


def _flat(t):
    """0-d tensors as 1-element 1-d ones (gather/scatter treat them so)."""
    return t.reshape(1) if t.ndim == 0 else t


def gather(input, dim, index, *, sparse_grad=False):
    """Values along ``dim`` at ``index``: ``out[i][j] = input[index[i][j]][j]`` for dim=0.

    ``index`` has the same number of dims as ``input`` and is no larger in any other dim.
    """
    dim, idx, coords = _gather_setup(input, dim, index, "gather")
    if input.ndim == 0:
        return _get_stages(_flat(input), [(coords, _INT)])
    return GetItem.apply(input, coords, _INT)


def _src_part(src, shape):
    """The leading ``shape`` block of ``src`` (scatter reads only that much of it)."""
    if tuple(src.shape) == tuple(shape):
        return src
    return getitem(src, tuple(slice(0, s) for s in shape))


def _same_dtype(input, other, op, name):
    if other._data.dtype != input._data.dtype:
        raise errors.DTypeError(
            f"{op}: {name} has dtype {_dtype_name(other._data.dtype)} but the input has "
            f"{_dtype_name(input._data.dtype)}; they must match (convert with .to(input.dtype))"
        )


def scatter_add(input, dim, index, src):
    """``input`` with ``src[i][j]`` added at ``[index[i][j]][j]`` (dim=0); repeats add up."""
    dim, idx, coords = _gather_setup(input, dim, index, "scatter_add", [("src", src)])
    _same_dtype(input, src, "scatter_add", "src")
    part = _src_part(_flat(src) if input.ndim == 0 else src, idx.shape or (1,))
    if input.ndim == 0:
        part = part.reshape(idx.shape)
    added = IndexAddInto.apply(part, tuple(_flat(input).shape), coords, _INT)
    return input + added.reshape(input.shape)


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    """``input`` with ``src`` (or the number ``value``) written at ``index`` along ``dim``.

    ``reduce='add'`` / ``'multiply'`` combine instead of overwrite (PyTorch's older form; use
    scatter_reduce). Where ``index`` repeats a position, which write wins is unspecified.
    """
    if (src is None) == (value is None):
        raise TypeError("scatter: pass exactly one of src (a tensor) or value (a number)")
    if not isinstance(src, Tensor) and src is not None:
        value, src = src, None
    if reduce is not None:
        modes = {"add": "sum", "multiply": "prod"}
        if reduce not in modes:
            raise ValueError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
        if src is None:
            from ember import creation  # noqa: PLC0415

            src = creation.full(index.shape, value, dtype=input.dtype, device=input.device)
        return scatter_reduce(input, dim, index, src, modes[reduce])
    others = [("src", src)] if src is not None else []
    dim, idx, coords = _gather_setup(input, dim, index, "scatter", others)
    if src is not None:
        _same_dtype(input, src, "scatter", "src")
        val = _src_part(_flat(src) if input.ndim == 0 else src, idx.shape or (1,))
        if input.ndim == 0:
            val = val.reshape(idx.shape)
    else:
        val = _value_operand(input, value, "scatter")
    out = IndexPut.apply(_flat(input), val, [(coords, _INT)])
    return out.reshape(input.shape)


_REDUCE_INIT = {"sum": 0.0, "prod": 1.0, "amax": -numpy.inf, "amin": numpy.inf, "mean": 0.0}


class _ScatterExtreme(Function):
    """scatter_reduce with 'amax'/'amin'. The gradient is shared evenly among the elements
    (of input and src) that equal the result, as in PyTorch."""

    @staticmethod
    def forward(ctx, x, src, coords, mode, include_self):
        xp = ctx.xp
        ufunc = xp.maximum if mode == "amax" else xp.minimum
        out = x.copy()
        if not include_self:
            out[coords] = _identity(out.dtype, mode)
        ufunc.at(out, coords, src)
        ctx.coords = coords
        ctx.include_self = include_self
        ctx.save_for_backward(x, src, out)
        return out

    @staticmethod
    def backward(ctx, gy):
        x, src, out = ctx.saved_tensors
        coords = ctx.coords
        xp = _xp_of(gy)
        hit_self = (x._data == out._data).astype(gy.dtype)
        if not ctx.include_self:
            hit_self[coords] = 0
        hit_src = (src._data == out._data[coords]).astype(gy.dtype)
        count = hit_self.copy()
        xp.add.at(count, coords, hit_src)
        count = Tensor._make(xp.maximum(count, 1), False, None, 0)
        share = gy / count
        gx = share * Tensor._make(hit_self, False, None, 0)
        gsrc = GetItem.apply(share, coords, _INT) * Tensor._make(hit_src, False, None, 0)
        return gx, gsrc, None, None, None


def _identity(dt, mode):
    if dt.kind == "f" or mode in ("sum", "mean", "prod"):
        return _REDUCE_INIT[mode]
    info = numpy.iinfo(dt) if dt.kind in "iu" else None
    if info is None:
        return mode == "amin"
    return info.min if mode == "amax" else info.max


class _ScatterProd(Function):
    """scatter_reduce with 'prod' (forward only: no gradient, as PyTorch for zeros is subtle)."""

    @staticmethod
    def forward(ctx, x, src, coords, include_self):
        out = x.copy()
        if not include_self:
            out[coords] = 1
        ctx.xp.multiply.at(out, coords, src)
        return out


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """Combine ``src`` into ``input`` at ``index`` along ``dim`` with ``reduce`` in 'sum',
    'prod', 'mean', 'amax', 'amin'; ``include_self=False`` leaves the old values of the
    positions written to out of the reduction. 'prod' has no gradient yet."""
    op = "scatter_reduce"
    if reduce not in _REDUCE_INIT:
        raise ValueError(
            f"{op}: reduce must be one of 'sum', 'prod', 'mean', 'amax', 'amin', got {reduce!r}"
        )
    dim, idx, coords = _gather_setup(input, dim, index, op, [("src", src)])
    _same_dtype(input, src, op, "src")
    x = _flat(input)
    part = _src_part(_flat(src) if input.ndim == 0 else src, idx.shape or (1,))
    if input.ndim == 0:
        part = part.reshape(idx.shape)
    if reduce in ("amax", "amin"):
        out = _ScatterExtreme.apply(x, part, coords, reduce, include_self)
    elif reduce == "prod":
        if _State.enabled and (input._rg or src._rg):
            raise errors.AutogradError(
                f"{op}: reduce='prod' has no gradient in ember yet; use it under "
                "ember.no_grad() or compose the product from log/exp"
            )
        out = _ScatterProd.apply(x, part, coords, include_self)
    else:
        xp = _xp_of(input)
        base = x
        if not include_self:
            touched = xp.zeros(x.shape, dtype=bool)
            touched[coords] = True
            base = masked_fill(x, Tensor._make(touched, False, None, 0), 0)
        out = base + IndexAddInto.apply(part, tuple(x.shape), coords, _INT)
        if reduce == "mean":
            count = xp.full(x.shape, 1 if include_self else 0, dtype=numpy.int64)
            xp.add.at(count, coords, 1)
            count = xp.maximum(count, 1).astype(x.dtype)
            count = Tensor._make(count, False, None, 0)
            out = out / count if x.dtype.kind == "f" else _floor_div_const(out, count)
    return out.reshape(input.shape)


def _floor_div_const(t, count):
    return Tensor._make(t._data // count._data, False, None, 0)


# ---- index_select / index_add / index_copy / index_fill ------------------------------------


def _along(input, dim, index, op, allow_negative=False):
    """Normalized dim and a basic+advanced index selecting ``index`` (1-d) along ``dim``."""
    idx = _dim_index(index, op)
    if idx.ndim > 1:
        raise errors.ShapeError(
            f"{op}: index must be 0-d or 1-d, got shape {errors.shape_str(idx.shape)}"
        )
    idx = idx.reshape(-1)
    if not isinstance(idx, type(input._data)):
        idx = _xp_of(input).asarray(idx)
    dim = _common.normalize_dim(dim, input.ndim, op)
    size = input.shape[dim] if input.ndim else 1
    _check_bounds(idx, size, op, dim, allow_negative)
    return dim, idx, (slice(None),) * dim + (idx,)


def index_select(input, dim, index):
    """The slices of ``input`` at positions ``index`` (1-d) along ``dim``."""
    dim, idx, sel = _along(input, dim, index, "index_select")
    if input.ndim == 0:
        return GetItem.apply(input.reshape(1), sel, _INT).reshape(())
    return GetItem.apply(input, sel, _INT)


def _source_shape_check(input, dim, idx, source, op):
    want = list(input.shape) or [1]
    want[dim] = idx.shape[0]
    got = tuple(source.shape) or (1,)
    if tuple(want) != got:
        raise errors.ShapeError(
            f"{op}: source of shape {errors.shape_str(source.shape)} does not fit: with index "
            f"of length {idx.shape[0]} along dim {dim} of an input of shape "
            f"{errors.shape_str(input.shape)} it must have shape {errors.shape_str(want)}"
        )


def index_add(input, dim, index, source, *, alpha=1):
    """``input`` with ``alpha * source`` added to the slices at ``index`` along ``dim``;
    repeated indices add up."""
    op = "index_add"
    dim, idx, sel = _along(input, dim, index, op)
    _source_shape_check(input, dim, idx, source, op)
    _same_dtype(input, source, op, "source")
    if alpha != 1:
        source = source * alpha
    x = _flat(input)
    added = IndexAddInto.apply(source.reshape(x.shape[:dim] + (idx.shape[0],) + x.shape[dim + 1:]),
                               tuple(x.shape), sel, _INT)
    return input + added.reshape(input.shape)


def index_copy(input, dim, index, source):
    """``input`` with the slices at ``index`` along ``dim`` replaced by ``source``'s."""
    op = "index_copy"
    dim, idx, sel = _along(input, dim, index, op)
    _source_shape_check(input, dim, idx, source, op)
    _same_dtype(input, source, op, "source")
    x = _flat(input)
    src = source.reshape(x.shape[:dim] + (idx.shape[0],) + x.shape[dim + 1:])
    return IndexPut.apply(x, src, [(sel, _INT)]).reshape(input.shape)


def index_fill(input, dim, index, value):
    """``input`` with the slices at ``index`` along ``dim`` set to ``value`` (a number or a
    0-d tensor)."""
    op = "index_fill"
    dim, idx, sel = _along(input, dim, index, op, allow_negative=True)
    value = _fill_value(input, value, op)
    x = _flat(input)
    return IndexPut.apply(x, value, [(sel, _INT)]).reshape(input.shape)


# ---- masks ---------------------------------------------------------------------------------


def _bool_mask(mask, op):
    if not isinstance(mask, Tensor) or mask._data.dtype.kind != "b":
        got = _dtype_name(mask._data.dtype) if isinstance(mask, Tensor) else type(mask).__name__
        raise errors.DTypeError(
            f"{op}: mask must be a bool tensor, got {got}; build one with a comparison "
            "(x > 0) or convert with mask.bool()"
        )
    return mask


def _fill_value(input, value, op):
    """A fill value of ``input``'s dtype: a Python number, or a 0-d tensor (differentiable)."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise errors.ShapeError(
                f"{op}: value must be a number or a 0-d tensor, got a tensor of shape "
                f"{errors.shape_str(value.shape)}"
            )
        return _value_operand(input, value, op)
    if not isinstance(value, _common._SCALARS):
        raise errors.DTypeError(f"{op}: value must be a number or a 0-d tensor, got {value!r}")
    return _common._scalar_as(value, input._data.dtype)


def _broadcast_shape(a, b, op):
    try:
        return tuple(numpy.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        raise errors.ShapeError(
            f"{op}: the mask of shape {errors.shape_str(b)} cannot be broadcast with the input "
            f"of shape {errors.shape_str(a)}"
        ) from None


def masked_fill(input, mask, value):
    """``input`` with ``value`` where ``mask`` (bool, broadcast) is True."""
    from ember.ops import elementwise  # noqa: PLC0415

    op = "masked_fill"
    _bool_mask(mask, op)
    _broadcast_shape(input.shape, mask.shape, op)
    value = _fill_value(input, value, op)
    return elementwise.where(mask, value, input)


def masked_select(input, mask):
    """A 1-d tensor of the elements of ``input`` where ``mask`` (bool, broadcast) is True."""
    op = "masked_select"
    _bool_mask(mask, op)
    shape = _broadcast_shape(input.shape, mask.shape, op)
    x = shape_ops.broadcast_to(input, shape)
    m = _xp_of(input).broadcast_to(mask._data, shape)
    if x.ndim == 0:
        x, m = x.reshape(1), m.reshape(1)
    return GetItem.apply(x, (m,), _MASK)


# ---- take / take_along_dim / nonzero -------------------------------------------------------


def take(input, index):
    """Elements of ``input`` read as if flattened, at ``index`` (any shape; negatives count
    from the end)."""
    idx = _dim_index(index, "take")
    if not isinstance(idx, type(input._data)):
        idx = _xp_of(input).asarray(idx)
    _check_bounds(idx, input.numel(), "take", 0)
    return GetItem.apply(input.reshape(-1), (idx,), _INT)


def take_along_dim(input, indices, dim=None):
    """gather with broadcasting: ``indices`` selects along ``dim`` (over the flattened input
    when dim is None), the other dims broadcast against each other."""
    op = "take_along_dim"
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    _dim_index(indices, op)
    if indices.ndim != input.ndim:
        raise errors.ShapeError(
            f"{op}: input and indices must have the same number of dims, got shapes "
            f"{errors.shape_str(input.shape)} and {errors.shape_str(indices.shape)}"
        )
    dim = _common.normalize_dim(dim, input.ndim, op)
    a, b = list(input.shape), list(indices.shape)
    a[dim] = b[dim] = 1
    try:
        common = list(numpy.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        raise errors.ShapeError(
            f"{op}: shapes {errors.shape_str(input.shape)} and "
            f"{errors.shape_str(indices.shape)} do not broadcast outside dim {dim}"
        ) from None
    xs, js = list(common), list(common)
    if input.ndim:
        xs[dim], js[dim] = input.shape[dim], indices.shape[dim]
    x = input.expand(*xs) if tuple(xs) != tuple(input.shape) else input
    j = indices.expand(*js) if tuple(js) != tuple(indices.shape) else indices
    return gather(x, dim, j)


def nonzero(input, *, as_tuple=False):
    """Indices of the non-zero elements: an (n, ndim) int64 tensor, or with ``as_tuple`` one
    1-d tensor per dim (a 0-d input counts as 1-d there)."""
    data = input._data
    xp = _xp_of(input)
    if as_tuple:
        parts = xp.nonzero(data.reshape(1) if data.ndim == 0 else data)
        return tuple(_const(p.astype(numpy.int64)) for p in parts)
    if data.ndim == 0:
        n = int(bool(data))
        return _const(xp.zeros((n, 0), dtype=numpy.int64))
    return _const(xp.stack(xp.nonzero(data), axis=1).astype(numpy.int64))


def argwhere(input):
    """Same as ``nonzero(input)``."""
    return nonzero(input)


def _const(arr):
    return Tensor._make(arr, False, None, 0)


# ---- one-hot encoding (no gradient) -------------------------------------------------------


def one_hot(tensor, num_classes=-1):
    """int64 one-hot encoding: shape ``tensor.shape + (num_classes,)``; ``-1`` infers
    ``max + 1``. Needs a non-negative integer tensor."""
    op = "one_hot"
    data = _dim_index(tensor, op)
    if num_classes == -1:
        if data.size == 0:
            raise errors.ShapeError(
                f"{op}: cannot infer num_classes from an empty tensor; pass num_classes"
            )
        num_classes = int(data.max()) + 1
    if data.size:
        lo, hi = int(data.min()), int(data.max())
        if lo < 0:
            raise ValueError(f"{op}: class values must be non-negative, got {lo}")
        if hi >= num_classes:
            raise _IndexOutOfRange(
                f"{op}: class value {hi} is not smaller than num_classes={num_classes}"
            )
    xp = _xp_of(tensor)
    out = (data[..., None] == xp.arange(num_classes)).astype(numpy.int64)
    return _const(out)


# ---- in-place forms ------------------------------------------------------------------------


def _inplace(fn, name):
    def method(self, *args, **kwargs):
        return _common.inplace(self, lambda src: fn(src, *args, **kwargs), name)

    method.__name__ = name
    method.__doc__ = f"In-place {fn.__name__}."
    return method


TENSOR_METHODS = {
    "__setitem__": setitem,
    "gather": gather, "scatter": scatter, "scatter_add": scatter_add,
    "scatter_reduce": scatter_reduce, "index_select": index_select, "index_add": index_add,
    "index_copy": index_copy, "index_fill": index_fill, "masked_fill": masked_fill,
    "masked_select": masked_select, "take": take, "take_along_dim": take_along_dim,
    "nonzero": nonzero, "argwhere": argwhere,
    "scatter_": _inplace(scatter, "scatter_"),
    "scatter_add_": _inplace(scatter_add, "scatter_add_"),
    "scatter_reduce_": _inplace(scatter_reduce, "scatter_reduce_"),
    "index_add_": _inplace(index_add, "index_add_"),
    "index_copy_": _inplace(index_copy, "index_copy_"),
    "index_fill_": _inplace(index_fill, "index_fill_"),
    "masked_fill_": _inplace(masked_fill, "masked_fill_"),
}


# sort/argsort/topk/kthvalue/unique/bincount were defined in this file before it was split;
# they stay importable from here.
_common.reexport(globals(), sort_ops)
