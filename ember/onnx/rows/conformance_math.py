"""Conformance rows: integer/bitwise math, extra reductions and elementwise ops.

Fallback rows (see conformance_common.py): a row in math.py/activation.py for the same op wins.
"""

import numpy

import ember
from ember.onnx import table
from ember.onnx.rows import conformance_common as K

# ---- integer and bitwise ops: no gradient, computed on the arrays ---------------------------


def _bitshift(node, x, y, direction="LEFT"):
    shift = numpy.left_shift if K.text(direction) == "LEFT" else numpy.right_shift
    return shift(x, y.astype(x.dtype)).astype(x.dtype)


def _shrink(node, x, bias=0.0, lambd=0.5):
    out = numpy.where(x < -lambd, x + bias, numpy.where(x > lambd, x - bias, 0))
    return out.astype(x.dtype)


def _det(node, x):
    return numpy.linalg.det(x).astype(x.dtype)


def _nonzero(node, x):
    return numpy.array(numpy.nonzero(x), dtype=numpy.int64).reshape(x.ndim, -1)


def _isinf(node, x, detect_negative=1, detect_positive=1):
    out = numpy.zeros(x.shape, bool)
    if detect_positive:
        out |= numpy.isposinf(x)
    if detect_negative:
        out |= numpy.isneginf(x)
    return out


def _hardmax(node, x, axis=-1):
    # opset < 13 flattens to 2-D at ``axis``; 13+ works along ``axis`` alone.
    if node_opset(node) < 13:
        flat = x.reshape(int(numpy.prod(x.shape[:axis % max(x.ndim, 1)])), -1)
        return _hardmax_axis(flat, 1).reshape(x.shape)
    return _hardmax_axis(x, axis)


def _hardmax_axis(x, axis):
    idx = numpy.expand_dims(numpy.argmax(x, axis=axis), axis)
    out = numpy.zeros_like(x)
    numpy.put_along_axis(out, idx, 1, axis=axis)
    return out


def node_opset(node):
    return getattr(node, "_ember_opset", 99)


def _cumprod(node, x, axis, exclusive=0, reverse=0):
    ax = int(K.arr(axis).reshape(()))
    y = numpy.flip(x, ax) if reverse else x
    out = numpy.cumprod(y, axis=ax, dtype=x.dtype)
    if exclusive:
        out = numpy.roll(out, 1, axis=ax)
        index = [slice(None)] * x.ndim
        index[ax] = 0
        out[tuple(index)] = 1
    return numpy.flip(out, ax) if reverse else out


def _topk(node, x, k, axis=-1, largest=1, sorted=1):  # noqa: A002
    n = int(K.arr(k).reshape(-1)[0])
    ax = axis % x.ndim
    # A stable sort on (-x) keeps the lower index first among equal values, as ONNX asks.
    order = numpy.argsort(-x if largest else x, axis=ax, kind="stable")
    idx = numpy.take(order, numpy.arange(n), axis=ax)
    return numpy.take_along_axis(x, idx, axis=ax), idx.astype(numpy.int64)


def _einsum(node, *xs, equation):
    return numpy.einsum(K.text(equation), *xs)


def _mod_int(a, b):
    return numpy.mod(a, b)


K.register_array_ops({
    "BitShift": _bitshift,
    "BitwiseAnd": lambda node, a, b: numpy.bitwise_and(a, b),
    "BitwiseOr": lambda node, a, b: numpy.bitwise_or(a, b),
    "BitwiseXor": lambda node, a, b: numpy.bitwise_xor(a, b),
    "BitwiseNot": lambda node, a: numpy.invert(a),
    "Shrink": _shrink,
    "Det": _det,
    "NonZero": _nonzero,
    "IsInf": _isinf,
    "IsNaN": lambda node, x: numpy.isnan(x),
    "CumProd": _cumprod,
    "TopK": _topk,
    "And": lambda node, a, b: numpy.logical_and(a, b),
    "Or": lambda node, a, b: numpy.logical_or(a, b),
    "Xor": lambda node, a, b: numpy.logical_xor(a, b),
    "Not": lambda node, a: numpy.logical_not(a),
    "Equal": lambda node, a, b: numpy.equal(a, b),
    "Greater": lambda node, a, b: numpy.greater(a, b),
    "Less": lambda node, a, b: numpy.less(a, b),
    "GreaterOrEqual": lambda node, a, b: numpy.greater_equal(a, b),
    "LessOrEqual": lambda node, a, b: numpy.less_equal(a, b),
    "Sign": lambda node, x: numpy.sign(x),
})


def _load_topk_v1(ctx, node, x, k=1, axis=-1):
    return K.array_op(_topk)(ctx, node, x, K.wrap(numpy.array([k])), axis=axis)


def _load_hardmax(ctx, node, x, axis=None):
    if axis is None:
        axis = -1 if ctx.opset >= 13 else 1
    node_like = _OpsetNode(node, ctx.opset)
    return K.array_op(_hardmax)(ctx, node_like, x, axis=axis)


class _OpsetNode:
    """A node with the opset it runs at, for adapters whose meaning changed between opsets."""

    def __init__(self, node, opset):
        self.name, self.op_type, self._ember_opset = node.name, node.op_type, opset


def _load_einsum(ctx, node, *xs, equation):
    eq = K.text(equation)
    if all(x.dtype.kind == "f" for x in xs):
        return ember.einsum(eq, *xs)
    return K.array_op(_einsum)(ctx, node, *xs, equation=eq)


table.register(
    K.row("TopK", _load_topk_v1, until=9),
    K.row("TopK", K.array_op(_topk), since=10),
    K.row("Hardmax", _load_hardmax),
    K.row("Einsum", _load_einsum),
)

# ---- differentiable ops composed from ember ops ---------------------------------------------


def _mean(ctx, node, *xs):
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out / len(xs)


def _swish(ctx, node, x, alpha=1.0):
    return x * ember.sigmoid(x * alpha)


def _mish(ctx, node, x):
    return x * ember.tanh(ember.nn.functional.softplus(x))


def _lp_normalization(ctx, node, x, axis=-1, p=2):
    if p == 1:
        norm = ember.abs(x).sum(dim=axis, keepdim=True)
    else:
        norm = ember.sqrt((x * x).sum(dim=axis, keepdim=True))
    safe = ember.where(norm == 0, ember.ones_like(norm), norm)
    return ember.where(norm == 0, ember.zeros_like(x), x / safe)


def _mvn(ctx, node, x, axes=(0, 2, 3)):
    dims = tuple(int(a) for a in axes)
    mean = x.mean(dim=dims, keepdim=True)
    centered = x - mean
    var = (centered * centered).mean(dim=dims, keepdim=True)
    return centered / ember.sqrt(var + 1e-9)


def _reduce(fn, empty_value):
    """A ReduceX adapter for every opset: axes from the attribute (old) or the input (18+)."""

    def load(ctx, node, x, axes=None, keepdims=1, noop_with_empty_axes=0):
        if axes is not None and not isinstance(axes, (list, tuple)):
            axes = K.ints(axes)
        if axes is not None and len(axes) == 0:
            axes = None
        if axes is None and noop_with_empty_axes:
            return x
        dims = tuple(range(x.ndim)) if axes is None else tuple(int(a) % x.ndim for a in axes)
        if x.numel() == 0 and empty_value is not None:
            shape = [1 if i in dims else s for i, s in enumerate(x.shape)]
            if not keepdims:
                shape = [s for i, s in enumerate(x.shape) if i not in dims]
            return K.wrap(numpy.full(shape, empty_value, K.arr(x).dtype))
        if x.dtype.kind != "f":
            return K.wrap(fn(x.float(), dims, bool(keepdims))._data.astype(x.dtype))
        return fn(x, dims, bool(keepdims))

    return load


def _sum_square(x, dims, keep):
    return (x * x).sum(dim=dims, keepdim=keep)


def _log_sum(x, dims, keep):
    return ember.log(x.sum(dim=dims, keepdim=keep))


def _l1(x, dims, keep):
    return ember.abs(x).sum(dim=dims, keepdim=keep)


def _l2(x, dims, keep):
    return ember.sqrt((x * x).sum(dim=dims, keepdim=keep))


def _log_sum_exp(x, dims, keep):
    return ember.logsumexp(x, dim=dims, keepdim=keep)


def _sum(x, dims, keep):
    return x.sum(dim=dims, keepdim=keep)


def _prod(x, dims, keep):
    out = x
    for d in sorted(dims, reverse=True):
        out = out.prod(dim=d, keepdim=keep)
    return out


def _amax(x, dims, keep):
    return ember.amax(x, dim=dims, keepdim=keep)


def _amin(x, dims, keep):
    return ember.amin(x, dim=dims, keepdim=keep)


def _mean_r(x, dims, keep):
    return x.mean(dim=dims, keepdim=keep)


_REDUCTIONS = {
    "ReduceSumSquare": (_sum_square, 0), "ReduceLogSum": (_log_sum, -numpy.inf),
    "ReduceL1": (_l1, 0), "ReduceL2": (_l2, 0), "ReduceLogSumExp": (_log_sum_exp, -numpy.inf),
    "ReduceSum": (_sum, 0), "ReduceProd": (_prod, 1), "ReduceMax": (_amax, None),
    "ReduceMin": (_amin, None), "ReduceMean": (_mean_r, None),
}


def _reduce_max_min(is_max):
    def fn(x, dims, keep):
        a = K.arr(x)
        if a.size == 0:
            info = numpy.finfo(a.dtype) if a.dtype.kind == "f" else numpy.iinfo(a.dtype)
            fill = -numpy.inf if a.dtype.kind == "f" else info.min
            fill = fill if is_max else -fill if a.dtype.kind == "f" else info.max
            return K.wrap(numpy.full(_reduced_shape(a.shape, dims, keep), fill, a.dtype))
        return (_amax if is_max else _amin)(x, dims, keep)

    return fn


def _reduced_shape(shape, dims, keep):
    if keep:
        return [1 if i in dims else s for i, s in enumerate(shape)]
    return [s for i, s in enumerate(shape) if i not in dims]


def _load_max_min(is_max):
    inner = _reduce(_reduce_max_min(is_max), None)

    def load(ctx, node, x, axes=None, keepdims=1, noop_with_empty_axes=0):
        a = K.arr(x)
        if a.dtype.kind in "iub":
            if axes is not None and not isinstance(axes, (list, tuple)):
                axes = K.ints(axes)
            if not axes:
                if noop_with_empty_axes:
                    return x
                axes = range(a.ndim)
            dims = tuple(int(d) % a.ndim for d in axes)
            fn = numpy.max if is_max else numpy.min
            return K.wrap(fn(a, axis=dims, keepdims=bool(keepdims)))
        return inner(ctx, node, x, axes, keepdims, noop_with_empty_axes)

    return load


table.register(
    *[K.row(op, _reduce(fn, empty)) for op, (fn, empty) in _REDUCTIONS.items()
      if op not in ("ReduceMax", "ReduceMin")],
    K.row("ReduceMax", _load_max_min(True)),
    K.row("ReduceMin", _load_max_min(False)),
    K.row("Mean", _mean),
    K.row("Swish", _swish),
    K.row("Mish", _mish),
    K.row("LpNormalization", _lp_normalization),
    K.row("MeanVarianceNormalization", _mvn),
)
