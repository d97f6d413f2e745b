"""Elementwise math, comparisons, casts, matmul/Gemm and reductions."""

import math

import numpy

from ember import creation
from ember.nn import functional as F
from ember.ops import compare as CMP
from ember.ops import elementwise as E
from ember.ops import linalg, reduce as R
from ember.ops import shape as S
from ember.onnx import table
from ember.onnx.rows import _common as C


# ---- binary arithmetic ------------------------------------------------------------------------


def _binary(onnx_op, ember_ops, fn, since=7):
    def export(ctx, node):
        return ctx.add(onnx_op, C.elementwise_inputs(ctx, node)[:2])

    def load(ctx, node, a, b):
        return fn(a, b)

    return table.Row(onnx_op, since=since, ember_ops=ember_ops, export=export, load=load)


def _div(a, b):
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return E.div(a, b, rounding_mode="trunc")  # ONNX integer Div truncates, like C
    return E.div(a, b)


def _variadic(fn):
    def load(ctx, node, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return out

    return load


def _export_extremum(onnx_op):
    def export(ctx, node):
        return ctx.add(onnx_op, C.elementwise_inputs(ctx, node)[:2])

    return export


def _export_pow(ctx, node):
    return ctx.add("Pow", C.elementwise_inputs(ctx, node)[:2])


def _export_fmod(ctx, node):
    return ctx.add("Mod", C.elementwise_inputs(ctx, node)[:2], fmod=1)


def _export_remainder(ctx, node):
    # Python-style remainder: a - floor(a / b) * b (ONNX Mod with fmod=0 is integer-only).
    a, b = C.elementwise_inputs(ctx, node)[:2]
    if node.outputs[0].dtype.kind in "iu":
        return ctx.add("Mod", [a, b], fmod=0)
    q = ctx.add("Floor", [ctx.add("Div", [a, b])])
    return ctx.add("Sub", [a, ctx.add("Mul", [q, b])])


def _load_mod(ctx, node, a, b, fmod=0):
    return E.fmod(a, b) if fmod else E.remainder(a, b)


def _export_is(onnx_op):
    # The input goes in as it is (a cast to the bool output type would fail the checker).
    def export(ctx, node):
        x = node.args[0]
        if x.dtype.kind != "f":  # no NaN or inf in integers and bools
            return ctx.add("Expand", [ctx.const(numpy.asarray(False)),
                                      ctx.add("Shape", [ctx.name(x)])])
        return ctx.add(onnx_op, [ctx.name(x)])

    return export


def _load_isinf(ctx, node, x, detect_negative=1, detect_positive=1):
    inf = E.isinf(x)
    if detect_negative and detect_positive:
        return inf
    if detect_positive:
        return E.logical_and(inf, x > 0)
    if detect_negative:
        return E.logical_and(inf, x < 0)
    return E.logical_and(inf, E.isnan(x))  # neither side: all False


_IS_ROWS = [
    table.Row("IsNaN", since=9, ember_ops=(CMP._IsNan,), export=_export_is("IsNaN"),
              load=lambda ctx, node, x: E.isnan(x)),
    table.Row("IsInf", since=10, ember_ops=(CMP._IsInf,), export=_export_is("IsInf"),
              load=_load_isinf, note="detect_negative / detect_positive honoured on import"),
]


table.register(
    _binary("Add", (E.Add,), E.add),
    _binary("Sub", (E.Sub,), E.sub),
    _binary("Mul", (E.Mul,), E.mul),
    _binary("Div", (E.Div,), _div),
    table.Row("Pow", since=7, ember_ops=(E.Pow,), export=_export_pow,
              load=lambda ctx, node, a, b: E.pow(a, b)),
    table.Row("Max", since=8, ember_ops=(E.Maximum,), export=_export_extremum("Max"),
              load=_variadic(E.maximum)),
    table.Row("Min", since=8, ember_ops=(E.Minimum,), export=_export_extremum("Min"),
              load=_variadic(E.minimum)),
    table.Row("Sum", since=8, load=_variadic(E.add)),
    table.Row("Mod", since=10, ember_ops=(E.Fmod, E.Remainder), load=_load_mod,
              export=lambda ctx, node: (_export_fmod if node.op is E.Fmod
                                        else _export_remainder)(ctx, node)),
)

# ---- unary math --------------------------------------------------------------------------------

_UNARY = [
    ("Neg", E.Neg, E.neg, 6), ("Exp", E.Exp, E.exp, 6), ("Log", E.Log, E.log, 6),
    ("Sqrt", E.Sqrt, E.sqrt, 6), ("Reciprocal", E.Reciprocal, E.reciprocal, 6),
    ("Sin", E.Sin, E.sin, 7), ("Cos", E.Cos, E.cos, 7), ("Tan", E.Tan, E.tan, 7),
    ("Tanh", E.Tanh, E.tanh, 6), ("Sinh", E.Sinh, E.sinh, 9), ("Cosh", E.Cosh, E.cosh, 9),
    ("Asin", E.Asin, E.asin, 7), ("Acos", E.Acos, E.acos, 7), ("Atan", E.Atan, E.atan, 7),
    ("Asinh", E.Asinh, E.asinh, 9), ("Acosh", E.Acosh, E.acosh, 9),
    ("Atanh", E.Atanh, E.atanh, 9), ("Erf", E.Erf, E.erf, 9), ("Abs", E.Abs, E.abs, 6),
    ("Sign", E.Sign, E.sign, 9),
]
table.register(*(C.unary_row(op, (cls,), fn, since=since) for op, cls, fn, since in _UNARY))
table.register(
    C.unary_row("Floor", (), E.floor, since=6), C.unary_row("Ceil", (), E.ceil, since=6),
    C.unary_row("Round", (), E.round, since=11),
)


def _export_composite(build):
    """A row export for an op written as a few ONNX nodes: ``build(ctx, x_name, node)``."""

    def export(ctx, node):
        return build(ctx, C.cast_to(ctx, node.args[0], node.outputs[0].dtype), node)

    return export


def _log_base(base):
    def build(ctx, x, node):
        return ctx.add("Div", [ctx.add("Log", [x]), ctx.scalar(math.log(base), node.outputs[0])])

    return build


def _rounding(ctx, x, node):
    how, decimals = node.args[1], node.args[2]
    op = {"floor": "Floor", "ceil": "Ceil", "round": "Round"}.get(how)
    if how == "trunc":  # sign(x) * floor(|x|)
        return ctx.add("Mul", [ctx.add("Sign", [x]), ctx.add("Floor", [ctx.add("Abs", [x])])])
    if decimals:
        k = ctx.scalar(10.0 ** decimals, node.outputs[0])
        return ctx.add("Div", [ctx.add(op, [ctx.add("Mul", [x, k])]), k])
    return ctx.add(op, [x])


def _one(node):
    return lambda ctx, v: ctx.scalar(v, node.outputs[0])


table.register(
    table.Row("Exp", since=6, ember_ops=(E.Exp2,), note="exp2 as Exp(x * ln 2)",
              export=_export_composite(lambda ctx, x, n: ctx.add(
                  "Exp", [ctx.add("Mul", [x, ctx.scalar(math.log(2.0), n.outputs[0])])]))),
    table.Row("Exp", since=6, ember_ops=(E.Expm1,), note="expm1 as Exp(x) - 1",
              export=_export_composite(lambda ctx, x, n: ctx.add(
                  "Sub", [ctx.add("Exp", [x]), ctx.scalar(1.0, n.outputs[0])]))),
    table.Row("Log", since=6, ember_ops=(E.Log2,), export=_export_composite(_log_base(2.0))),
    table.Row("Log", since=6, ember_ops=(E.Log10,), export=_export_composite(_log_base(10.0))),
    table.Row("Log", since=6, ember_ops=(E.Log1p,), note="log1p as Log(1 + x)",
              export=_export_composite(lambda ctx, x, n: ctx.add(
                  "Log", [ctx.add("Add", [x, ctx.scalar(1.0, n.outputs[0])])]))),
    table.Row("Sqrt", since=6, ember_ops=(E.Rsqrt,), note="rsqrt as Reciprocal(Sqrt(x))",
              export=_export_composite(lambda ctx, x, n: ctx.add(
                  "Reciprocal", [ctx.add("Sqrt", [x])]))),
    table.Row("Floor", since=6, ember_ops=(E.Rounding,), export=_export_composite(_rounding),
              note="floor/ceil/round/trunc"),
    table.Row("Identity", since=1, ember_ops=(E.Clone, S._Contiguous, S.ToDevice),
              export=lambda ctx, node: ctx.add("Identity", [ctx.name(node.args[0])]),
              load=lambda ctx, node, x: x),
)

# ---- clip, where, comparisons, logic, cast -----------------------------------------------------


def _export_clamp(ctx, node):
    x, lo, hi = node.args[0], node.args[1], node.args[2]
    bound = [C.operand(ctx, b, x) if b is not None else "" for b in (lo, hi)]
    if isinstance(lo, type(x)) or isinstance(hi, type(x)):
        bound = [C.cast_to(ctx, b, x.dtype) if b is not None else "" for b in (lo, hi)]
    while bound and bound[-1] == "":
        bound.pop()
    return ctx.add("Clip", [ctx.name(x)] + bound)


def _load_clip(ctx, node, x, lo=None, hi=None, min=None, max=None):
    lo = lo if lo is not None else min
    hi = hi if hi is not None else max
    return E.clamp(x, lo, hi)


def _export_where(ctx, node):
    cond, a, b = node.args
    dtype = node.outputs[0].dtype
    return ctx.add("Where", [ctx.name(cond), C.cast_to(ctx, a, dtype), C.cast_to(ctx, b, dtype)])


def _compare(onnx_op, cls, fn, since=7, negate=False):
    def export(ctx, node):
        a, b = node.args[:2]
        dtype = numpy.result_type(*[v.dtype for v in (a, b) if hasattr(v, "dtype")])
        out = ctx.add(onnx_op, [C.cast_to(ctx, a, dtype), C.cast_to(ctx, b, dtype)])
        return ctx.add("Not", [out]) if negate else out

    load = (lambda ctx, node, a, b: fn(a, b)) if fn is not None else None
    return table.Row(onnx_op, since=since, ember_ops=(cls,), export=export, load=load)


table.register(
    table.Row("Clip", since=11, ember_ops=(E.Clamp,), export=_export_clamp, load=_load_clip),
    table.Row("Where", since=9, ember_ops=(E.Where,), export=_export_where,
              load=lambda ctx, node, c, a, b: E.where(c, a, b)),
    _compare("Equal", E.Eq, E.eq),
    _compare("Less", E.Lt, E.lt),
    _compare("Greater", E.Gt, E.gt),
    _compare("LessOrEqual", E.Le, E.le, since=12),
    _compare("GreaterOrEqual", E.Ge, E.ge, since=12),
    _compare("Equal", E.Ne, None, negate=True),
    _compare("And", CMP._LogicalAnd, E.logical_and),
    _compare("Or", CMP._LogicalOr, E.logical_or),
    _compare("Xor", CMP._LogicalXor, E.logical_xor),
    C.unary_row("Not", (CMP._LogicalNot,), E.logical_not),
    *_IS_ROWS,
)


def _export_cast(ctx, node):
    return ctx.add("Cast", [ctx.name(node.args[0])], to=ctx.elem_type(node.args[1]))


def _load_cast(ctx, node, x, to=1, saturate=1, round_mode=None):
    import onnx  # noqa: PLC0415

    return E.cast(x, onnx.helper.tensor_dtype_to_np_dtype(to))


def _load_cast_like(ctx, node, x, like, saturate=1, round_mode=None):
    return E.cast(x, like.dtype)


table.register(
    table.Row("Cast", since=6, ember_ops=(E.Cast,), export=_export_cast, load=_load_cast),
    table.Row("CastLike", since=15, load=_load_cast_like),
)

# ---- matmul and Gemm -------------------------------------------------------------------------


def _export_linear(ctx, node):
    x, w, b = node.args
    if len(x.shape) == 2:
        return ctx.add("Gemm", [ctx.name(x), ctx.name(w)] + ([ctx.name(b)] if b else []),
                       transB=1)
    y = ctx.add("MatMul", [ctx.name(x), ctx.add("Transpose", [ctx.name(w)], perm=[1, 0])])
    return ctx.add("Add", [y, ctx.name(b)]) if b is not None else y


def _load_gemm(ctx, node, a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0):
    if transB and not transA and alpha == 1.0 and beta == 1.0 and (c is None or c.ndim == 1):
        return F.linear(a, b, c)  # the native layer's op, so gradients match it exactly
    a = a.mT if transA else a
    b = b.mT if transB else b
    y = linalg.matmul(a, b)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y


table.register(
    table.Row("MatMul", since=9, ember_ops=(linalg.MatMul,),
              export=lambda ctx, node: ctx.add("MatMul", C.elementwise_inputs(ctx, node)[:2]),
              load=lambda ctx, node, a, b: linalg.matmul(a, b)),
    table.Row("Gemm", since=11, ember_ops=(F._Linear,), export=_export_linear,
              load=_load_gemm, note="nn.Linear: Gemm for 2-D input, else MatMul + Add"),
)

# ---- reductions -------------------------------------------------------------------------------


def _dims(node, pos):
    d = node.args[pos]
    if d is None:
        return None
    return [d] if isinstance(d, int) else list(d)


def _export_sum(ctx, node):
    x = C.cast_to(ctx, node.args[0], node.outputs[0].dtype)
    return C.reduce(ctx, "ReduceSum", x, _dims(node, 1), node.args[2])


def _export_mean(ctx, node):
    x, dims, keep = node.args[0], _dims(node, 1), node.args[2]
    n = len(x.shape)
    if keep and n >= 3 and sorted(d % n for d in dims) == list(range(2, n)):
        return ctx.add("GlobalAveragePool", [ctx.name(x)])  # adaptive_avg_pool to size 1
    return C.reduce(ctx, "ReduceMean", ctx.name(x), dims, keep)


def _export_amax(ctx, node):
    op = "ReduceMax" if node.args[3] else "ReduceMin"
    return C.reduce(ctx, op, ctx.name(node.args[0]), _dims(node, 1), node.args[2])


def _export_maxdim(ctx, node):
    x, dim, keep, largest = node.args[:4]
    val = C.reduce(ctx, "ReduceMax" if largest else "ReduceMin", ctx.name(x), [dim], keep)
    idx = ctx.add("ArgMax" if largest else "ArgMin", [ctx.name(x)], axis=int(dim),
                  keepdims=int(bool(keep)), select_last_index=0)
    return [val, idx]


def _export_arg(ctx, node):
    x, dim, keep, largest = node.args[:4]
    op = "ArgMax" if largest else "ArgMin"
    name = ctx.name(x)
    if dim is None:
        name, dim = ctx.add("Reshape", [name, ctx.ints([-1])]), 0
    return ctx.add(op, [name], axis=int(dim), keepdims=int(bool(keep)))


def _export_var(ctx, node):
    x, dims, correction, keep, root = node.args[:5]
    n = len(x.shape)
    dims = list(range(n)) if dims is None else [d % n for d in _dims(node, 1)]
    count = int(numpy.prod([x.shape[d] for d in dims]))
    like = node.outputs[0]
    mu = C.reduce(ctx, "ReduceMean", ctx.name(x), dims, True)
    xc = ctx.add("Sub", [ctx.name(x), mu])
    ss = C.reduce(ctx, "ReduceSum", ctx.add("Mul", [xc, xc]), dims, keep)
    var = ctx.add("Div", [ss, ctx.scalar(max(count - correction, 0), like)])
    return ctx.add("Sqrt", [var]) if root else var


def _export_simple_reduce(op):
    def export(ctx, node):
        return C.reduce(ctx, op, ctx.name(node.args[0]), _dims(node, 1), node.args[2])

    return export


def _reduce_load(fn):
    def load(ctx, node, x, axes=None, keepdims=1, noop_with_empty_axes=0):
        axes = C.int_list(axes) if axes is not None and not isinstance(axes, list) else axes
        if not axes:
            if noop_with_empty_axes:
                return x
            axes = list(range(x.ndim))
        return fn(x, tuple(axes), bool(keepdims))

    return load


def _l2(x, axes, keep):
    return E.sqrt(R.sum(x * x, axes, keep))


def _load_arg(largest):
    def load(ctx, node, x, axis=0, keepdims=1, select_last_index=0):
        if select_last_index:
            n = x.shape[axis]
            flipped = S.flip(x, (axis,))
            i = (R.argmax if largest else R.argmin)(flipped, axis, bool(keepdims))
            return (n - 1) - i
        return (R.argmax if largest else R.argmin)(x, axis, bool(keepdims))

    return load


def _load_cumsum(ctx, node, x, axis, exclusive=0, reverse=0):
    a = C.int_list(axis)[0]
    if reverse:
        x = S.flip(x, (a,))
    y = R.cumsum(x, a)
    if exclusive:
        y = y - x
    return S.flip(y, (a,)) if reverse else y


_R18 = dict(since=18)
table.register(
    table.Row("ReduceSum", since=13, ember_ops=(R.Sum,), export=_export_sum,
              load=_reduce_load(lambda x, a, k: R.sum(x, a, k))),
    table.Row("ReduceSum", since=1, until=12,
              load=_reduce_load(lambda x, a, k: R.sum(x, a, k))),
    table.Row("ReduceMean", ember_ops=(R.Mean,), export=_export_mean,
              load=_reduce_load(lambda x, a, k: R.mean(x, a, k))),
    table.Row("ReduceMax", ember_ops=(R.Amax,), export=_export_amax,
              load=_reduce_load(lambda x, a, k: R.amax(x, a, k))),
    table.Row("ReduceMin", load=_reduce_load(lambda x, a, k: R.amin(x, a, k))),
    table.Row("ReduceProd", load=_reduce_load(lambda x, a, k: R.prod(x, a[0], k) if len(a) == 1
                                              else R.prod(S.flatten(x), 0, False))),
    table.Row("ReduceL2", load=_reduce_load(_l2)),
    table.Row("ReduceLogSumExp", ember_ops=(R.LogSumExp,),
              export=_export_simple_reduce("ReduceLogSumExp"),
              load=_reduce_load(lambda x, a, k: R.logsumexp(x, a, k))),
    table.Row("ArgMax", since=1, ember_ops=(R.MaxDim, R._ArgExtreme),
              export=lambda ctx, node: (_export_maxdim if node.op is R.MaxDim
                                        else _export_arg)(ctx, node),
              load=_load_arg(True), note="max(dim) as ReduceMax + ArgMax"),
    table.Row("ArgMin", since=1, load=_load_arg(False)),
    table.Row("ReduceMean", ember_ops=(R.Var,), export=_export_var,
              note="var/std composed from ReduceMean and ReduceSum"),
    table.Row("CumSum", since=11, load=_load_cumsum),
)

# ---- constants that models carry as nodes ------------------------------------------------------


def _load_constant(ctx, node, value=None, value_float=None, value_floats=None, value_int=None,
                   value_ints=None, sparse_value=None, value_string=None, value_strings=None):
    if value is not None:
        arr = value
    elif value_float is not None:
        arr = numpy.asarray(value_float, dtype=numpy.float32)
    elif value_floats is not None:
        arr = numpy.asarray(value_floats, dtype=numpy.float32)
    elif value_int is not None:
        arr = numpy.asarray(value_int, dtype=numpy.int64)
    elif value_ints is not None:
        arr = numpy.asarray(value_ints, dtype=numpy.int64)
    else:
        raise ctx.error("Constant: only numeric tensor values are supported")
    return creation.tensor(numpy.array(arr))


def _load_constant_of_shape(ctx, node, shape, value=None):
    fill = numpy.zeros(1, numpy.float32) if value is None else numpy.asarray(value)
    return creation.tensor(numpy.full(C.int_list(shape), fill.reshape(-1)[0], fill.dtype))


def _load_range(ctx, node, start, limit, delta):
    s, l, d = (C.as_numpy(t).reshape(()) for t in (start, limit, delta))
    return creation.tensor(numpy.arange(s, l, d).astype(s.dtype))


table.register(
    table.Row("Constant", since=1, load=_load_constant),
    table.Row("ConstantOfShape", since=9, load=_load_constant_of_shape),
    table.Row("Range", since=11, load=_load_range),
)
