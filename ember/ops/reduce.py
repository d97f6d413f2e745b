"""Reductions: sum, mean, prod, max/min, var/std, norm, logsumexp, cumulative ops, all/any.

Every reduction takes ``dim`` as None (all dims), an int or a tuple, and ``keepdim``, like
PyTorch. Backward rules broadcast the output gradient back over the reduced dims with
``shape.reshape``/``shape.broadcast_to`` and weight it with elementwise ops, so gradients are
differentiable again (``create_graph=True``). Masks that pick elements (which element was the
max, which were zero) are piecewise constant, so they enter backward as constant Tensors.

This module defines functions named ``sum``, ``max``, ``min``, ``all`` and ``any``; the
builtins are reached through ``builtins.`` here.
"""

import builtins
import collections
import math

import numpy

from ember import dtypes, errors
from ember.autograd import grad_mode
from ember.autograd.function import Function, _as_array, _Tracing
from ember.backend import devices as _device
from ember.ops import _common, elementwise, shape
from ember.tensor import Tensor

_INF = math.inf
_State = grad_mode._State
_ndarray = numpy.ndarray
_add_reduce = numpy.add.reduce
_empty = numpy.empty
_make = Tensor._make


# ---- helpers -------------------------------------------------------------------------------


def _keep_shape(shape, dims):
    """The shape of a reduction over ``dims`` with keepdim=True."""
    return tuple([1 if i in dims else s for i, s in enumerate(shape)])


def _dims(dim, ndim, op_name):
    """``dim`` as a sorted tuple of non-negative dims; None and () mean every dim (PyTorch).

    A 0-d tensor accepts dim 0 or -1 and has nothing to reduce over, hence ().
    """
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(ndim))
    dims = _common.normalize_dims(dim, ndim, op_name)
    return dims if ndim else ()


_ALL_DIMS = [tuple(range(n)) for n in range(33)]


def _all_dims(ndim):
    """``tuple(range(ndim))``, from a table for the usual ranks (a reduction over everything)."""
    return _ALL_DIMS[ndim] if ndim < 33 else tuple(range(ndim))


def _one_dim(dim, ndim, op_name):
    """A single dim for ops that take exactly one (cumsum, max(dim), median(dim), ...)."""
    if not isinstance(dim, (int, numpy.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op_name}: dim must be an int, got {dim!r}")
    return _common.normalize_dim(int(dim), ndim, op_name)


def _count(in_shape, dims):
    n = 1
    for d in dims:
        n *= in_shape[d]
    return n


def _const(data):
    """A constant Tensor (no graph) around an array: masks, counts, indices."""
    if isinstance(data, numpy.generic):
        data = numpy.asarray(data)
    return Tensor._make(data, False, None, 0)


def _keep(g, in_shape, dims, keepdim):
    """Gradient ``g`` of a reduced output reshaped to broadcast against the input."""
    if keepdim:
        return g
    return shape.reshape(g, _keep_shape(in_shape, dims))


def _expand(g, in_shape, dims, keepdim):
    """Gradient ``g`` of a reduced output spread back over the input's shape."""
    keep_shape = _keep_shape(in_shape, dims)
    if not grad_mode._State.enabled:  # no graph to record: the array copy alone (~1.5 us less)
        return _common.constant(_expand_array(g._data, keep_shape, in_shape))
    return _ExpandReduced.apply(g, keep_shape, in_shape)


def _expand_array(g, keep_shape, in_shape):
    """A new writeable array of ``in_shape`` holding ``g`` (reshaped to ``keep_shape``)
    broadcast over it."""
    out = g.reshape(keep_shape)
    xp = numpy if type(g) is numpy.ndarray else _device.get_array_module(g)
    full = xp.empty(in_shape, dtype=g.dtype)
    full[...] = out
    return full


class _ExpandReduced(Function):
    """``g`` (a reduction's output gradient) reshaped to keepdim form and copied out to the
    input's shape: the backward of every reduction.

    NOTE: one Function writing into a fresh array instead of reshape + broadcast_to: on the
    tiny-op benchmark this is two fewer applies and avoids NumPy's Python-level broadcast_to
    (~5 us), and the result is writeable, so leaf accumulation needs no copy."""

    @staticmethod
    def forward(ctx, g, keep_shape, in_shape):
        ctx.keep_shape = keep_shape
        ctx.in_shape = in_shape
        ctx.g_shape = g.shape
        return _expand_array(g, keep_shape, in_shape)

    @staticmethod
    def backward(ctx, gy):
        # The summed dims are worked out here, not in forward: only double backward needs them.
        dims = tuple(i for i, (k, s) in enumerate(zip(ctx.keep_shape, ctx.in_shape)) if k != s)
        total = Sum.apply(gy, dims, True, None)
        return shape.reshape(total, ctx.g_shape), None, None


def _quiet():
    """Silence NumPy's divide/invalid warnings where inf/nan is the intended answer."""
    return numpy.errstate(divide="ignore", invalid="ignore")


def _require_float(input, op_name,
                   hint="pass a floating tensor (call .float() or .double() first)"):
    if input._data.dtype.kind != "f":
        raise errors.DTypeError(
            f"{op_name}: input dtype {dtypes.name(input.dtype)} is not floating; {hint}"
        )


def _check_nonempty(input, dims, op_name):
    """max/min-like reductions have no identity: an empty reduced dim is an error (PyTorch)."""
    for d in dims:
        if input._data.shape[d] == 0:
            raise errors.ShapeError(
                f"{op_name}: cannot reduce over dim {d} of size 0 (input shape "
                f"{errors.shape_str(input.shape)}): the operation has no identity; reduce over a "
                "non-empty dim or check the input"
            )


def _empty_full_error(input, op_name):
    return errors.ShapeError(
        f"{op_name}: input of shape {errors.shape_str(input.shape)} is empty; specify the "
        "reduction dim with dim= (the operation has no identity over zero elements)"
    )


def _onehot(xp, idx_keep, n, dim, ndim):
    """Bool mask that is True at ``idx_keep`` (indices with keepdim) along ``dim``."""
    ar = xp.arange(n).reshape(tuple(-1 if i == dim else 1 for i in range(ndim)))
    return ar == idx_keep


def _return_type(name):
    """A (values, indices) pair that unpacks like a tuple, as torch.return_types.<name>."""
    return collections.namedtuple(name, ["values", "indices"])


_max_result = _return_type("max")
_min_result = _return_type("min")
_median_result = _return_type("median")


def _flip(x, dim):
    """Reverse along one dim (reverse cumulative ops are built from it)."""
    return shape.flip(x, (dim,))


class _Shift(Function):
    """``y[k] = x[k - by]`` along ``dim`` (by = +1 or -1), ``fill`` where that falls outside."""

    @staticmethod
    def forward(ctx, x, dim, by, fill):
        ctx.dim, ctx.by = dim, by
        y = ctx.xp.full(x.shape, fill, dtype=x.dtype)
        lead = (slice(None),) * dim
        if by > 0:
            y[lead + (slice(by, None),)] = x[lead + (slice(None, -by),)]
        else:
            y[lead + (slice(None, by),)] = x[lead + (slice(-by, None),)]
        return y

    @staticmethod
    def backward(ctx, gy):
        return _Shift.apply(gy, ctx.dim, -ctx.by, 0)


# ---- sum and mean --------------------------------------------------------------------------


class Sum(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype):
        ctx.in_shape = x.shape
        ctx.dims = dims
        ctx.keepdim = keepdim
        return _sum_array(ctx.xp, x, dims, keepdim, dtype)

    @staticmethod
    def backward(ctx, gy):
        return _expand(gy, ctx.in_shape, ctx.dims, ctx.keepdim)


def _sum_array(xp, x, dims, keepdim, dtype):
    """Sum's forward on arrays (``dims`` None: all of them)."""
    if not keepdim and (dims is None or len(dims) == x.ndim):
        if type(x) is _ndarray and (dtype is not None or x.dtype.isnative):
            # NOTE (measured, NumPy fast path): the whole-array sum reduced straight into a
            # new 0-d array, the same ufunc reduction x.sum() runs: 0.88 vs 1.30 us (min of
            # 40 interleaved rounds, 4x4 float32) for x.sum(keepdims=True).reshape(()), which
            # itself was ~0.5 us less than wrapping the NumPy scalar that x.sum() returns.
            # (A byte-swapped x keeps that path: its sum comes back in native order.)
            return _add_reduce(x, None, dtype, _empty((), x.dtype if dtype is None else dtype))
        return x.sum(dtype=dtype, keepdims=True).reshape(())
    return xp.sum(x, axis=dims, keepdims=keepdim, dtype=dtype)


def sum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum over ``dim`` (all dims by default). Integer and bool inputs sum to int64.

    An empty reduction gives 0. ``dtype`` casts before summing (e.g. to avoid overflow).
    """
    data = input._data
    dims = None if dim is None else _dims(dim, data.ndim, "sum")
    if dtype is not None:
        dtype = dtypes.as_dtype(dtype)
    elif data.dtype.kind in "biu":
        dtype = dtypes.int64
    # NOTE (measured, `python bench/overhead.py --repeats 9 --threads 1 --clock cpu`, HEAD vs this):
    # the no-graph fast path and the reduction into a 0-d array took sum fwd from 4.2-6.0 us
    # (1.43-1.54x PyTorch) to 3.3-3.7 us (0.93-0.94x); the whole-array sum with a graph (sum
    # fwd+bwd) ~10% faster too. Tried: inlining _sum_array here, ~0.08 us (5%): not kept.
    if type(data) is _ndarray and _Tracing.tracer is None \
            and not (input._rg and _State.enabled):  # no-graph fast path (function.py)
        y = _sum_array(numpy, data, dims, keepdim, dtype)
        return _make(y if type(y) is _ndarray else _as_array(y), False, None, 0)
    return Sum.apply(input, _all_dims(data.ndim) if dims is None else dims, keepdim, dtype)


class SumTo(Function):
    """Sum a broadcast gradient back to ``shape`` (what the engine calls for broadcasting)."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        lead = x.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1
        )
        y = x.sum(axis=axes, keepdims=True) if axes else x
        if lead:
            y = y.reshape(shape)
        return y

    @staticmethod
    def backward(ctx, gy):
        return shape.broadcast_to(gy, ctx.in_shape)


def sum_to(x, shape):
    """``x`` summed over the dimensions that broadcasting added or stretched to reach its shape."""
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    return SumTo.apply(x, shape)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.in_shape = x.shape
        ctx.dims = dims
        ctx.keepdim = keepdim
        ctx.count = _count(x.shape, dims)
        return ctx.xp.mean(x, axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, gy):
        return _expand(gy, ctx.in_shape, ctx.dims, ctx.keepdim) / ctx.count


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Arithmetic mean over ``dim`` (all dims by default); needs a floating dtype.

    Integer inputs raise: pass ``dtype=ember.float32`` or call ``.float()`` first, as in
    PyTorch. The mean of zero elements is nan.
    """
    if dtype is not None:
        input = input.to(dtype)
    _require_float(input, "mean", "pass dtype= or call .float() first")
    dims = _dims(dim, input.ndim, "mean")
    if _count(input._data.shape, dims) == 0:
        # NumPy warns on an empty mean; the answer is nan either way.
        return Sum.apply(input, dims, keepdim, None) * float("nan")
    return Mean.apply(input, dims, keepdim)


class _ZeroNan(Function):
    """nan replaced by 0. The gradient is multiplied by the not-nan mask (as PyTorch's
    nansum), so an inf gradient into a nan element gives nan there, not 0."""

    @staticmethod
    def forward(ctx, x):
        keep = ~ctx.xp.isnan(x)
        ctx.keep = keep
        return ctx.xp.where(keep, x, 0)

    @staticmethod
    def backward(ctx, gy):
        return gy * _const(ctx.keep.astype(gy.dtype))


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum treating nan as zero; nan elements get a zero gradient."""
    if input._data.dtype.kind == "f":
        input = _ZeroNan.apply(input)
    return sum(input, dim, keepdim, dtype=dtype)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean over the non-nan elements (nan where a slice has none)."""
    if dtype is not None:
        input = input.to(dtype)
    _require_float(input, "nanmean", "pass dtype= or call .float() first")
    dims = _dims(dim, input.ndim, "nanmean")
    xp = input.device.xp
    kept = xp.sum(~xp.isnan(input._data), axis=dims, keepdims=keepdim).astype(input.dtype)
    return nansum(input, dims, keepdim) / _const(xp.asarray(kept))


# ---- prod and the cumulative ops -----------------------------------------------------------


class Prod(Function):
    @staticmethod
    def forward(ctx, x, dim, keepdim, dtype):
        ctx.dim, ctx.keepdim = dim, keepdim
        y = ctx.xp.asarray(ctx.xp.prod(x, axis=dim, keepdims=keepdim, dtype=dtype))
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, y = ctx.saved_tensors
        dims = (ctx.dim,)
        gk = _keep(gy, x.shape, dims, ctx.keepdim)
        if not (x._data == 0).any():
            return gk * _keep(y, x.shape, dims, ctx.keepdim) / x
        # With zeros y / x is 0/0. The product of all-but-i is (product of the elements before
        # i) * (product of those after i): two exclusive cumulative products, no division.
        before = cumprod(_Shift.apply(x, ctx.dim, 1, 1), ctx.dim)
        after = _flip(cumprod(_flip(_Shift.apply(x, ctx.dim, -1, 1), ctx.dim), ctx.dim), ctx.dim)
        return gk * before * after


def prod(input, dim=None, keepdim=False, *, dtype=None):
    """Product over one ``dim`` (all elements by default). Integer and bool inputs give int64.

    The gradient is right with zeros in the input: one zero gets the product of the others,
    the rest get 0.
    """
    dtype = dtypes.as_dtype(dtype)
    if dtype is None and input._data.dtype.kind in "biu":
        dtype = dtypes.int64
    if dim is None:
        flat = shape.reshape(input, (input._data.size,))
        return Prod.apply(flat, 0, False, dtype)
    d = _one_dim(dim, input.ndim, "prod")
    if input.ndim == 0:
        return shape.reshape(Prod.apply(shape.reshape(input, (1,)), 0, False, dtype), ())
    return Prod.apply(input, d, keepdim, dtype)


class Cumsum(Function):
    @staticmethod
    def forward(ctx, x, dim, dtype):
        ctx.dim = dim
        return ctx.xp.cumsum(x, axis=dim, dtype=dtype)

    @staticmethod
    def backward(ctx, gy):
        return _reverse_cumsum(gy, ctx.dim)


def _reverse_cumsum(x, dim):
    """``out[i] = sum(x[i:])`` along dim."""
    return _flip(cumsum(_flip(x, dim), dim), dim)


def _cumulative(cls, op_name, input, dim, dtype):
    d = _one_dim(dim, input.ndim, op_name)
    dtype = dtypes.as_dtype(dtype)
    if dtype is None and input._data.dtype.kind in "biu":
        dtype = dtypes.int64
    if input.ndim == 0:
        out = cls.apply(shape.reshape(input, (1,)), 0, dtype)
        return shape.reshape(out, ())
    return cls.apply(input, d, dtype)


def cumsum(input, dim, *, dtype=None):
    """Running sum along ``dim``. Integer and bool inputs give int64."""
    return _cumulative(Cumsum, "cumsum", input, dim, dtype)


class Cumprod(Function):
    @staticmethod
    def forward(ctx, x, dim, dtype):
        ctx.dim = dim
        y = ctx.xp.cumprod(x, axis=dim, dtype=dtype)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, y = ctx.saved_tensors
        dim = ctx.dim
        zero = x._data == 0
        if not zero.any():
            # d y_j / d x_i = y_j / x_i for j >= i.
            return _reverse_cumsum(gy * y, dim) / x
        if grad_mode.is_grad_enabled():
            return _cumprod_grad_quadratic(x, gy, dim)
        return _cumprod_grad_zeros(ctx.xp, x, y, gy, zero, dim)


def _cumprod_grad_zeros(xp, x, y, gy, zero, dim):
    """First-order cumprod gradient with zeros in the input, in O(n) (PyTorch's approach).

    Let z be the first zero along dim. Before z, y_j / x_i is still valid (x_i != 0) and
    y_j = 0 for j >= z. At z, d y_j / d x_z = prod_{k <= j, k != z} x_k: the cumprod with x_z
    set to 1. After z every y_j keeps the factor x_z = 0 besides x_i, so the gradient is 0.
    """
    seen = xp.cumsum(zero, axis=dim)
    before = _const(seen == 0)
    at_first = _const(zero & (seen == 1))
    from_first = _const(seen >= 1)
    x_safe = elementwise.where(before, x, 1.0)
    g_before = elementwise.where(before, _reverse_cumsum(gy * y, dim) / x_safe, 0.0)
    skip_zero = cumprod(elementwise.where(at_first, 1.0, x), dim)
    g_at = sum(elementwise.where(from_first, gy * skip_zero, 0.0), dim, keepdim=True)
    return g_before + elementwise.where(at_first, g_at, 0.0)


def _cumprod_grad_quadratic(x, gy, dim):
    """Cumprod gradient as ember ops that stay right at zeros when differentiated again.

    For each i, the cumprod of x with x_i replaced by 1 gives prod_{k <= j, k != i} x_k for all
    j at once; weighting by gy_j for j >= i and summing gives the gradient. It needs an
    (n, n) block per slice, so it only runs under create_graph with zeros in the input (as
    PyTorch does).
    """
    xt = shape.transpose(x, dim, -1)
    gt = shape.transpose(gy, dim, -1)
    n = xt.shape[-1]
    xp = x.device.xp
    rows = xt.shape[:-1] + (n, n)
    grid = shape.broadcast_to(shape.reshape(xt, xt.shape[:-1] + (1, n)), rows)
    eye = _const(xp.eye(n, dtype=bool))
    upper = _const(xp.triu(xp.ones((n, n), dtype=bool)))
    partial = cumprod(elementwise.where(eye, 1.0, grid), -1)
    weighted = elementwise.where(upper, shape.reshape(gt, gt.shape[:-1] + (1, n)) * partial, 0.0)
    return shape.transpose(sum(weighted, -1), dim, -1)


def cumprod(input, dim, *, dtype=None):
    """Running product along ``dim``; the gradient is right with zeros in the input."""
    return _cumulative(Cumprod, "cumprod", input, dim, dtype)


# ---- max / min -----------------------------------------------------------------------------


class Amax(Function):
    """amax/amin: the gradient is split evenly among the elements that tie for the extreme."""

    @staticmethod
    def forward(ctx, x, dims, keepdim, largest):
        ctx.dims, ctx.keepdim = dims, keepdim
        reduce = ctx.xp.max if largest else ctx.xp.min
        y = ctx.xp.asarray(reduce(x, axis=dims, keepdims=keepdim))
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, y = ctx.saved_tensors
        xd = x._data
        yk = y._data if ctx.keepdim else y._data.reshape(_keep_shape(xd.shape, ctx.dims))
        # nan is the extreme of a slice that contains one; it matches itself only via x != x.
        hit = (xd == yk) | (xd != xd)
        ties = ctx.xp.sum(hit, axis=ctx.dims, keepdims=True).astype(xd.dtype)
        share = _keep(gy, xd.shape, ctx.dims, ctx.keepdim) / _const(ties)
        return elementwise.where(_const(hit), share, 0.0)


def _amax(input, dim, keepdim, largest, op_name):
    dims = _dims(dim, input.ndim, op_name)
    if input._data.size == 0 and (dim is None or (isinstance(dim, (tuple, list)) and not dim)):
        raise _empty_full_error(input, op_name)
    _check_nonempty(input, dims, op_name)
    return Amax.apply(input, dims, keepdim, largest)


def amax(input, dim=(), keepdim=False):
    """Maximum over ``dim`` (all dims by default); ties share the gradient evenly."""
    return _amax(input, dim, keepdim, True, "amax")


def amin(input, dim=(), keepdim=False):
    """Minimum over ``dim`` (all dims by default); ties share the gradient evenly."""
    return _amax(input, dim, keepdim, False, "amin")


class MaxDim(Function):
    """max/min along one dim with the index of the winner; the gradient goes to that index."""

    @staticmethod
    def forward(ctx, x, dim, keepdim, largest):
        xp = ctx.xp
        ctx.dim, ctx.keepdim = dim, keepdim
        idx = (xp.argmax if largest else xp.argmin)(x, axis=dim, keepdims=True)
        values = xp.take_along_axis(x, idx, axis=dim)
        ctx.save_for_backward(idx)
        ctx.in_shape = x.shape
        if not keepdim:
            values = values.squeeze(dim)
            idx = idx.squeeze(dim)
        return values, idx.astype(numpy.int64, copy=False)

    @staticmethod
    def backward(ctx, gy, _gi):
        (idx,) = ctx.saved_tensors
        n, ndim = ctx.in_shape[ctx.dim], len(ctx.in_shape)
        pick = _const(_onehot(ctx.xp, idx._data, n, ctx.dim, ndim))
        gk = _keep(gy, ctx.in_shape, (ctx.dim,), ctx.keepdim)
        return elementwise.where(pick, gk, 0.0)


def _select_along(cls_args, input, dim, keepdim, op_name, result_type):
    """Run a (values, indices) Function along one dim; 0-d inputs act as one element."""
    d = _one_dim(dim, input.ndim, op_name)
    if input.ndim == 0:
        values, indices = cls_args[0].apply(shape.reshape(input, (1,)), 0, False, *cls_args[1:])
        return result_type(shape.reshape(values, ()), shape.reshape(indices, ()))
    _check_nonempty(input, (d,), op_name)
    values, indices = cls_args[0].apply(input, d, keepdim, *cls_args[1:])
    return result_type(values, indices)


class _Maximum(Function):
    """Fallback for max(a, b) when elementwise has no maximum: ties split the gradient."""

    @staticmethod
    def forward(ctx, a, b, largest):
        xp = ctx.xp
        win = (a > b) if largest else (a < b)
        tie = a == b
        ctx.weights = (win + 0.5 * tie, (~win & ~tie) + 0.5 * tie)
        return xp.maximum(a, b) if largest else xp.minimum(a, b)

    @staticmethod
    def backward(ctx, gy):
        wa, wb = ctx.weights
        return gy * _const(wa.astype(gy.dtype)), gy * _const(wb.astype(gy.dtype)), None


def _binary_extreme(input, other, largest):
    name = "maximum" if largest else "minimum"
    fn = getattr(elementwise, name, None)
    if fn is not None:
        return fn(input, other)
    (a, b), _ = _common.promote(name, input, other)
    return _Maximum.apply(a, b, largest)


def _max_min(input, dim, keepdim, largest, other):
    op_name = "max" if largest else "min"
    if other is not None:
        return _binary_extreme(input, other, largest)
    if isinstance(dim, Tensor):
        return _binary_extreme(input, dim, largest)
    if dim is None:
        if input._data.size == 0:
            raise _empty_full_error(input, op_name)
        return Amax.apply(input, tuple(range(input.ndim)), False, largest)
    result = _max_result if largest else _min_result
    return _select_along((MaxDim, largest), input, dim, keepdim, op_name, result)


def max(input, dim=None, keepdim=False, *, other=None):
    """``max(x)``: the largest element; ``max(x, dim, keepdim=False)``: (values, indices)
    along ``dim``; ``max(x, y)``: elementwise maximum.

    Without dim, tied maxima share the gradient evenly; with dim, the gradient goes to the
    returned index (the first maximum). nan counts as the maximum.
    """
    return _max_min(input, dim, keepdim, True, other)


def min(input, dim=None, keepdim=False, *, other=None):
    """``min(x)``, ``min(x, dim, keepdim=False)`` -> (values, indices), or ``min(x, y)``."""
    return _max_min(input, dim, keepdim, False, other)


class _ArgExtreme(Function):
    """argmax/argmin: indices only, no gradient."""

    @staticmethod
    def forward(ctx, x, dim, keepdim, largest):
        find = ctx.xp.argmax if largest else ctx.xp.argmin
        if dim is None:
            idx = find(x.reshape(-1))
            idx = ctx.xp.asarray(idx).reshape((1,) * x.ndim if keepdim else ())
        else:
            idx = find(x, axis=dim, keepdims=keepdim)
        return idx.astype(numpy.int64, copy=False)


def _arg_extreme(input, dim, keepdim, largest, op_name):
    if dim is None:
        if input._data.size == 0:
            raise _empty_full_error(input, op_name)
        return _ArgExtreme.apply(input, None, keepdim, largest)
    d = _one_dim(dim, input.ndim, op_name)
    if input.ndim == 0:
        return _ArgExtreme.apply(input, None, False, largest)
    _check_nonempty(input, (d,), op_name)
    return _ArgExtreme.apply(input, d, keepdim, largest)


def argmax(input, dim=None, keepdim=False):
    """Index of the largest element (of the flattened input when dim is None), as int64."""
    return _arg_extreme(input, dim, keepdim, True, "argmax")


def argmin(input, dim=None, keepdim=False):
    """Index of the smallest element (of the flattened input when dim is None), as int64."""
    return _arg_extreme(input, dim, keepdim, False, "argmin")


class MedianDim(Function):
    """Lower median along one dim with its index; the gradient goes to that index."""

    @staticmethod
    def forward(ctx, x, dim, keepdim):
        xp = ctx.xp
        ctx.dim, ctx.keepdim = dim, keepdim
        n = x.shape[dim]
        lead = (slice(None),) * dim
        order = xp.argsort(x, axis=dim, kind="stable")
        k = (n - 1) // 2
        idx = order[lead + (slice(k, k + 1),)]
        nan = xp.isnan(x)
        if nan.any():
            # A slice with nan has median nan (PyTorch); point at its first nan.
            has_nan = nan.any(axis=dim, keepdims=True)
            idx = xp.where(has_nan, xp.argmax(nan, axis=dim, keepdims=True), idx)
        values = xp.take_along_axis(x, idx, axis=dim)
        ctx.save_for_backward(idx)
        ctx.in_shape = x.shape
        if not keepdim:
            values = values.squeeze(dim)
            idx = idx.squeeze(dim)
        return values, idx.astype(numpy.int64, copy=False)

    backward = staticmethod(MaxDim.backward)


class MedianAll(Function):
    """Lower median of all elements; like max(), tied elements share the gradient evenly."""

    @staticmethod
    def forward(ctx, x):
        xp = ctx.xp
        ctx.dims, ctx.keepdim = tuple(range(x.ndim)), False
        flat = x.reshape(-1)
        k = (flat.size - 1) // 2
        y = xp.partition(flat, k)[k]
        if xp.isnan(flat).any():
            y = xp.full((), float("nan"), dtype=x.dtype)
        y = xp.asarray(y)
        ctx.save_for_backward(x, y)
        return y

    backward = staticmethod(Amax.backward)


def median(input, dim=None, keepdim=False):
    """``median(x)``: the lower median of all elements (nan if there is a nan);
    ``median(x, dim, keepdim=False)``: (values, indices) along ``dim``.
    """
    if dim is None:
        if input._data.size == 0:
            return sum(input) * float("nan")
        return MedianAll.apply(input)
    return _select_along((MedianDim,), input, dim, keepdim, "median", _median_result)


# ---- var / std -----------------------------------------------------------------------------


def _var_args(op_name, input, dim, unbiased, correction):
    """PyTorch's two spellings: (dim, unbiased, keepdim) and (dim, *, correction, keepdim)."""
    _require_float(input, op_name)
    if isinstance(dim, bool):  # var(x, False): the legacy positional ``unbiased``
        dim, unbiased = None, dim
    if unbiased is not None:
        if correction is not None:
            raise ValueError(f"{op_name}: pass either unbiased= or correction=, not both")
        correction = 1 if unbiased else 0
    elif correction is None:
        correction = 1
    return _dims(dim, input.ndim, op_name), correction


class Var(Function):
    @staticmethod
    def forward(ctx, x, dims, correction, keepdim, root):
        xp = ctx.xp
        n = _count(x.shape, dims)
        ctx.dims, ctx.keepdim, ctx.root = dims, keepdim, root
        ctx.denom = builtins.max(n - correction, 0)
        with _quiet():
            centered = x - xp.sum(x, axis=dims, keepdims=True) / n
            y = xp.true_divide(
                xp.sum(centered * centered, axis=dims, keepdims=keepdim), ctx.denom
            )
            if root:
                y = xp.sqrt(y)
        y = xp.asarray(y)  # a full reduction gives a NumPy scalar; save what apply returns
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, y = ctx.saved_tensors
        dims = ctx.dims
        gk = _keep(gy, x.shape, dims, ctx.keepdim)
        if ctx.root:
            # d std = d var / (2 std); PyTorch defines it as 0 where std == 0.
            yk = _keep(y, x.shape, dims, ctx.keepdim)
            flat = _const(yk._data == 0)
            gk = elementwise.where(flat, 0.0, gk / (2.0 * elementwise.where(flat, 1.0, yk)))
        scale = 2.0 / ctx.denom if ctx.denom else _INF
        return gk * (x - mean(x, dims, keepdim=True)) * scale


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over ``dim`` with ``correction`` (default 1: Bessel's, the sample variance).

    ``unbiased=False`` is the legacy spelling of ``correction=0``. With no more elements than
    the correction the result is nan or inf, as in PyTorch.
    """
    dims, correction = _var_args("var", input, dim, unbiased, correction)
    return Var.apply(input, dims, correction, keepdim, False)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation: the square root of ``var`` (same arguments); gradient 0 where 0."""
    dims, correction = _var_args("std", input, dim, unbiased, correction)
    return Var.apply(input, dims, correction, keepdim, True)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(var, mean)`` over the same dims."""
    dims, correction = _var_args("var_mean", input, dim, unbiased, correction)
    return Var.apply(input, dims, correction, keepdim, False), mean(input, dims, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(std, mean)`` over the same dims."""
    dims, correction = _var_args("std_mean", input, dim, unbiased, correction)
    return Var.apply(input, dims, correction, keepdim, True), mean(input, dims, keepdim)


# ---- norm and logsumexp --------------------------------------------------------------------


class VectorNorm(Function):
    """(sum |x|^p)^(1/p) over dims, with p = inf/-inf (max/min |x|) and p = 0 (count)."""

    @staticmethod
    def forward(ctx, x, p, dims, keepdim):
        xp = ctx.xp
        ctx.p, ctx.dims, ctx.keepdim = p, dims, keepdim
        if p == 2:
            y = xp.sqrt(xp.sum(x * x, axis=dims, keepdims=keepdim))
        else:
            a = xp.abs(x)
            if p == _INF:
                y = xp.max(a, axis=dims, keepdims=keepdim)
            elif p == -_INF:
                y = xp.min(a, axis=dims, keepdims=keepdim)
            elif p == 0:
                y = xp.sum(a != 0, axis=dims, keepdims=keepdim).astype(x.dtype)
            elif p == 1:
                y = xp.sum(a, axis=dims, keepdims=keepdim)
            else:
                with _quiet():
                    y = xp.sum(a**p, axis=dims, keepdims=keepdim) ** (1.0 / p)
        y = xp.asarray(y)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, y = ctx.saved_tensors
        p, dims = ctx.p, ctx.dims
        xd = x._data
        xp = ctx.xp
        gk = _keep(gy, xd.shape, dims, ctx.keepdim)
        if p == 0:
            return gk * _const(xp.zeros_like(xd))
        sign = _const(xp.sign(xd))
        if p == 1:
            return gk * sign
        yk = _keep(y, xd.shape, dims, ctx.keepdim)
        if p in (_INF, -_INF):
            hit = xp.abs(xd) == yk._data
            ties = xp.sum(hit, axis=dims, keepdims=True).astype(xd.dtype)
            return sign * elementwise.where(_const(hit), gk / _const(ties), 0.0)
        # Where the norm is 0 every |x_i| is 0 and PyTorch defines the gradient as 0.
        flat = _const(yk._data == 0)
        y_safe = elementwise.where(flat, 1.0, yk)
        if p == 2:
            return x * elementwise.where(flat, 0.0, gk / y_safe)
        # d/dx_i = sign(x_i) |x_i|^(p-1) / y^(p-1); |x_i| is taken as 1 at x_i = 0, where the
        # sign is 0 anyway, so p < 1 does not turn 0 * inf into nan.
        zero = _const(xd == 0)
        abs_safe = elementwise.where(zero, 1.0, x * sign)
        scale = elementwise.where(flat, 0.0, gk / y_safe ** (p - 1))
        return sign * abs_safe ** (p - 1) * scale


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """The p-norm of ``input`` over ``dim`` (all dims by default), as ``torch.norm``.

    ``p`` is a number (2, 1, inf, -inf, 0 counts non-zeros, any other p), or ``'fro'``: the
    2-norm over ``dim`` (at most two dims). Numeric p over several dims is the vector norm of
    those dims together. The gradient of the 2-norm at a zero vector is 0, as in PyTorch.
    """
    if dtype is not None:
        input = input.to(dtype)
    _require_float(input, "norm")
    if isinstance(p, str):
        if p == "nuc":
            raise NotImplementedError(
                "norm: p='nuc' (nuclear norm) needs a singular value decomposition, which ember "
                "does not have yet; use p='fro' or a numeric p"
            )
        if p != "fro":
            raise ValueError(f"norm: p must be a number, 'fro' or 'nuc', got {p!r}")
        if isinstance(dim, (tuple, list)) and len(dim) > 2:
            raise errors.ShapeError(
                f"norm: p='fro' takes at most 2 dims, got dim={tuple(dim)}; use a numeric p "
                "(e.g. p=2) for the norm over more dims"
            )
        p = 2
    p = float(p)
    dims = _dims(dim, input.ndim, "norm")
    if p in (_INF, -_INF) and _count(input._data.shape, dims) == 0:
        raise errors.ShapeError(
            f"norm: the {'inf' if p > 0 else '-inf'} norm over zero elements (input shape "
            f"{errors.shape_str(input.shape)}, dim={dim}) has no identity; reduce over non-empty "
            "dims"
        )
    return VectorNorm.apply(input, p, dims, keepdim)


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        xp = ctx.xp
        ctx.dims, ctx.keepdim = dims, keepdim
        with _quiet():
            if _count(x.shape, dims) == 0 or x.size == 0:
                y = xp.log(xp.sum(xp.exp(x), axis=dims, keepdims=keepdim))
            else:
                # Shift by the max for stability; a slice whose max is +-inf is not shifted,
                # so all -inf gives log(0) = -inf and any +inf gives inf, not nan.
                m = xp.max(x, axis=dims, keepdims=True)
                m = xp.where(xp.isfinite(m), m, 0)
                s = xp.sum(xp.exp(x - m), axis=dims, keepdims=keepdim)
                y = xp.log(s) + (m if keepdim else m.reshape(s.shape))
        y = xp.asarray(y)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, y = ctx.saved_tensors
        gk = _keep(gy, x.shape, ctx.dims, ctx.keepdim)
        return gk * elementwise.exp(x - _keep(y, x.shape, ctx.dims, ctx.keepdim))


def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(input))) over ``dim``, computed without overflow; integers become float."""
    input = _common.float_operand("logsumexp", input)
    return LogSumExp.apply(input, _dims(dim, input.ndim, "logsumexp"), keepdim)


# ---- boolean and counting reductions -------------------------------------------------------


class _Logical(Function):
    """all/any: bool results (uint8 for uint8 input, like PyTorch), no gradient."""

    @staticmethod
    def forward(ctx, x, dims, keepdim, every):
        reduce = ctx.xp.all if every else ctx.xp.any
        y = ctx.xp.asarray(reduce(x, axis=dims, keepdims=keepdim))
        return y.astype(numpy.uint8) if x.dtype == numpy.uint8 else y


def all(input, dim=None, keepdim=False):
    """True where every element over ``dim`` is non-zero (True for zero elements)."""
    return _Logical.apply(input, _dims(dim, input.ndim, "all"), keepdim, True)


def any(input, dim=None, keepdim=False):
    """True where some element over ``dim`` is non-zero (False for zero elements)."""
    return _Logical.apply(input, _dims(dim, input.ndim, "any"), keepdim, False)


class _CountNonzero(Function):
    @staticmethod
    def forward(ctx, x, dims):
        return ctx.xp.asarray(ctx.xp.sum(x != 0, axis=dims, dtype=numpy.int64))


def count_nonzero(input, dim=None):
    """Number of non-zero elements over ``dim`` (all by default), as int64."""
    return _CountNonzero.apply(input, _dims(dim, input.ndim, "count_nonzero"))


TENSOR_METHODS = {
    "sum": sum, "mean": mean, "nansum": nansum, "nanmean": nanmean, "prod": prod,
    "cumsum": cumsum, "cumprod": cumprod, "max": max, "min": min, "amax": amax, "amin": amin,
    "argmax": argmax, "argmin": argmin, "median": median, "var": var, "std": std,
    "norm": norm, "logsumexp": logsumexp, "all": all, "any": any,
    "count_nonzero": count_nonzero,
}
