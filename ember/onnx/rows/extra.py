"""Export rows for losses, einsum, cumsum, special elementwise ops and bitwise logic.

- ``cross_entropy`` (ember's fused ``CrossEntropy``) is one SoftmaxCrossEntropyLoss node
  (opset 13+) with class weights, ignore_index and the reduction; label smoothing adds the
  uniform term from the node's log-probabilities; class-probability targets have no form in
  that op and are refused.
- ``binary_cross_entropy`` is composed: ``-(y max(log x, -100) + (1 - y) max(log(1 - x),
  -100))``, the clamp at -100 as ember (and PyTorch) do it.
- ``einsum`` is one Einsum node (opset 12+), ``cumsum`` one CumSum node (11+).
- ``atan2`` is Atan of the quotient with the quadrant fixed by Where, ``erfc`` is ``1 - Erf``,
  ``isfinite`` and ``nan_to_num`` are built from IsNaN / IsInf / Where (10+).
- bitwise and/or/xor/not are the Bitwise* ops (18+) on integers, And/Or/Xor/Not on bools.

The other losses in ember.nn (mse, l1, smooth_l1, huber, bce_with_logits, kl_div) trace into
elementwise ops and reductions that have rows of their own. ``nll_loss`` does not export with
its target as a graph input: it turns the target into weights with array code, outside ember
ops (see docs/onnx.md).

Import of the ONNX ops emitted here goes through the rows that load them (the conformance rows
for SoftmaxCrossEntropyLoss, Einsum and the Bitwise ops).
"""

import math

import numpy

from ember.onnx import table
from ember.onnx.rows import _common as C
from ember.onnx.rows import math as math_rows
from ember.onnx.rows import shape as shape_rows
from ember.ops import compare as CMP
from ember.ops import diagonals
from ember.ops import elementwise as E
from ember.ops import linalg, loss, piecewise, unary
from ember.ops import reduce as R

# ---- losses ------------------------------------------------------------------------------------


def _export_cross_entropy(ctx, node):
    x, t, w, ignore_index, eps, reduction, probs = node.args[:7]
    if probs:
        raise shape_rows._unsupported(
            ctx, node, "class-probability targets",
            "SoftmaxCrossEntropyLoss takes class indices only; pass int64 class indices")
    labels = C.cast_to(ctx, t, numpy.int64)
    inputs = [ctx.name(x), labels]
    weight = None
    if w is not None:
        weight = ctx.const(numpy.asarray(w, dtype=x.dtype), "class_weight")
        inputs.append(weight)
    if not eps:
        return ctx.add("SoftmaxCrossEntropyLoss", inputs, reduction=str(reduction),
                       ignore_index=int(ignore_index))
    return _smoothed_cross_entropy(ctx, node, inputs, labels, weight)


def _smoothed_cross_entropy(ctx, node, inputs, labels, weight):
    """Label smoothing ``eps``: ``(1 - eps) * nll + eps / C * sum_c w_c (-log p_c)`` per row
    (0 on ignored rows), the mean divided by the summed ``w[t]`` of the rows kept, as ember."""
    x, _, _, ignore_index, eps, reduction = node.args[:6]
    like = node.outputs[0]
    n_classes = x.shape[1]
    nll, logp = ctx.add("SoftmaxCrossEntropyLoss", inputs, n_out=2, reduction="none",
                        ignore_index=int(ignore_index))
    keep = ctx.add("Not", [ctx.add("Equal", [labels, ctx.const(
        numpy.asarray(ignore_index, numpy.int64), "ignore_index")])])
    keep_f = ctx.add("Cast", [keep], to=ctx.elem_type(like.dtype))
    spread = logp if weight is None else ctx.add("Mul", [logp, weight])
    smooth = ctx.add("Neg", [C.reduce(ctx, "ReduceSum", spread, [1], False)])
    loss = ctx.add("Add", [ctx.add("Mul", [nll, ctx.scalar(1.0 - eps, like)]),
                           ctx.add("Mul", [ctx.add("Mul", [smooth, keep_f]),
                                           ctx.scalar(eps / n_classes, like)])])
    if reduction == "none":
        return loss
    total = C.reduce(ctx, "ReduceSum", loss, None, False)
    if reduction == "sum":
        return total
    if weight is None:
        count = keep_f
    else:  # w[t] on the rows kept (an ignored label is read at class 0, then zeroed)
        safe = ctx.add("Where", [keep, labels, ctx.const(numpy.asarray(0, numpy.int64), "zero")])
        count = ctx.add("Mul", [ctx.add("Gather", [weight, safe], axis=0), keep_f])
    return ctx.add("Div", [total, C.reduce(ctx, "ReduceSum", count, None, False)])


def _export_bce(ctx, node):
    like = node.outputs[0]
    x, y = (C.cast_to(ctx, a, like.dtype) for a in node.args[:2])
    one, floor = ctx.scalar(1.0, like), ctx.scalar(-100.0, like)
    log_x = ctx.add("Max", [ctx.add("Log", [x]), floor])
    log_1mx = ctx.add("Max", [ctx.add("Log", [ctx.add("Sub", [one, x])]), floor])
    pos = ctx.add("Mul", [y, log_x])
    neg = ctx.add("Mul", [ctx.add("Sub", [one, y]), log_1mx])
    return ctx.add("Neg", [ctx.add("Add", [pos, neg])])


table.register(
    table.Row("SoftmaxCrossEntropyLoss", since=13, ember_ops=(loss.CrossEntropy,),
              export=_export_cross_entropy,
              note="cross_entropy / nn.CrossEntropyLoss with class indices, weight, "
              "ignore_index, reduction, label_smoothing (not probability targets)"),
    table.Row("Log", since=8, ember_ops=(loss.BinaryCrossEntropy,), export=_export_bce,
              note="binary_cross_entropy as Log, Max (clamp at -100), Mul, Sub"),
)

# ---- einsum and cumsum -------------------------------------------------------------------------


def _export_einsum(ctx, node):
    labels, out = node.kwargs["labels"], node.kwargs["out"]
    dtype = node.outputs[0].dtype
    inputs = [C.cast_to(ctx, a, dtype) for a in node.args]
    return ctx.add("Einsum", inputs, equation=",".join(labels) + "->" + out)


def _export_cumsum(ctx, node):
    x, dim = node.args[0], node.args[1]
    name = C.cast_to(ctx, x, node.outputs[0].dtype)
    return ctx.add("CumSum", [name, ctx.const(numpy.asarray(int(dim), numpy.int64), "axis")])


table.register(
    table.Row("Einsum", since=12, ember_ops=(linalg._Einsum,), export=_export_einsum,
              note="einsum (explicit output; ember resolves '...' and implicit outputs first)"),
    # Same (op, opset) as the import-only CumSum row in math.py: this one carries its loader
    # too, so the generated docs table shows both directions.
    table.Row("CumSum", since=11, ember_ops=(R.Cumsum,), export=_export_cumsum,
              load=math_rows._load_cumsum),
)

# ---- diagonal ----------------------------------------------------------------------------------


def _export_diagonal(ctx, node):
    """The (dim1, dim2) planes moved last and flattened, then one Gather of the diagonal's
    flat positions; the other dims may be dynamic, the two diagonal dims may not."""
    x, offset, dim1, dim2 = node.args[:4]
    rank = len(x.shape)
    d1, d2 = dim1 % rank, dim2 % rank
    at = ctx._position[id(node)]
    for _, g2 in ctx.variants.values():
        other = g2.nodes[at].args[0].shape
        if (other[d1], other[d2]) != (x.shape[d1], x.shape[d2]):
            raise shape_rows._unsupported(
                ctx, node, "a diagonal over a dynamic axis",
                "export with dynamic_axes that leave the two diagonal dims fixed "
                "(dynamic_axes={} fixes every dim)")
    n, m = x.shape[d1], x.shape[d2]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    length = max(0, min(n - r0, m - c0))
    others = [i for i in range(rank) if i not in (d1, d2)]
    perm = others + [d1, d2]
    name = ctx.name(x)
    if perm != list(range(rank)):
        name = ctx.add("Transpose", [name], perm=perm)
    flat = ctx.add("Reshape", [name, ctx.ints([0] * len(others) + [-1])])
    where = numpy.arange(length, dtype=numpy.int64)
    index = ctx.const((r0 + where) * m + (c0 + where), "diagonal")
    return ctx.add("Gather", [flat, index], axis=len(others))


table.register(
    table.Row("Gather", since=14, ember_ops=(diagonals._Diagonal,), export=_export_diagonal,
              note="diagonal as Transpose, Reshape and Gather of the flat positions"),
)

# ---- special elementwise ops -------------------------------------------------------------------


def _export_atan2(ctx, node):
    like = node.outputs[0]
    y, x = (C.cast_to(ctx, a, like.dtype) for a in node.args[:2])
    zero = ctx.scalar(0.0, like)
    base = ctx.add("Atan", [ctx.add("Div", [y, x])])  # x == 0: +-inf -> +-pi/2
    turn = ctx.add("Where", [ctx.add("Less", [y, zero]), ctx.scalar(-math.pi, like),
                             ctx.scalar(math.pi, like)])
    out = ctx.add("Where", [ctx.add("Less", [x, zero]), ctx.add("Add", [base, turn]), base])
    origin = ctx.add("And", [ctx.add("Equal", [x, zero]), ctx.add("Equal", [y, zero])])
    return ctx.add("Where", [origin, zero, out])  # atan2(0, 0) = 0, not 0/0


def _export_erfc(ctx, node):
    like = node.outputs[0]
    x = C.cast_to(ctx, node.args[0], like.dtype)
    return ctx.add("Sub", [ctx.scalar(1.0, like), ctx.add("Erf", [x])])


def _export_special(ctx, node):
    return (_export_atan2 if node.op is unary.Atan2 else _export_erfc)(ctx, node)


def _export_isfinite(ctx, node):
    x = ctx.name(node.args[0])
    if node.args[0].dtype.kind != "f":  # integers and bools are always finite
        return ctx.add("Expand", [ctx.const(numpy.asarray(True)), ctx.add("Shape", [x])])
    return ctx.add("Not", [ctx.add("Or", [ctx.add("IsNaN", [x]), ctx.add("IsInf", [x])])])


def _export_nan_to_num(ctx, node):
    x, nan, posinf, neginf = node.args[:4]
    like = node.outputs[0]
    info = numpy.finfo(like.dtype)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    name = ctx.name(x)
    y = ctx.add("Where", [ctx.add("IsNaN", [name]), ctx.scalar(nan, like), name])
    y = ctx.add("Where", [ctx.add("IsInf", [name], detect_negative=0), ctx.scalar(posinf, like),
                          y])
    return ctx.add("Where", [ctx.add("IsInf", [name], detect_positive=0),
                             ctx.scalar(neginf, like), y])


def _export_nonfinite(ctx, node):
    return (_export_isfinite if node.op is CMP._IsFinite else _export_nan_to_num)(ctx, node)


table.register(
    table.Row("Atan", since=9, ember_ops=(unary.Atan2, unary.Erfc), export=_export_special,
              note="atan2 as Atan(y / x) with the quadrant set by Where; erfc as 1 - Erf"),
    table.Row("Where", since=10, ember_ops=(CMP._IsFinite, piecewise.NanToNum),
              export=_export_nonfinite,
              note="isfinite as Not(IsNaN or IsInf); nan_to_num as IsNaN / IsInf + Where"),
)
# ---- bitwise logic -----------------------------------------------------------------------------

_BITWISE = {CMP._BitwiseAnd: ("BitwiseAnd", "And"), CMP._BitwiseOr: ("BitwiseOr", "Or"),
            CMP._BitwiseXor: ("BitwiseXor", "Xor"), CMP._BitwiseNot: ("BitwiseNot", "Not")}


def _export_bitwise(ctx, node):
    integer_op, bool_op = _BITWISE[node.op]
    dtype = node.outputs[0].dtype
    inputs = [C.cast_to(ctx, a, dtype) for a in node.args[:1 if node.op is CMP._BitwiseNot
                                                           else 2]]
    return ctx.add(bool_op if dtype == numpy.bool_ else integer_op, inputs)


table.register(*(
    table.Row(onnx_op, since=18, ember_ops=(cls,), export=_export_bitwise,
              note=f"integers; bool tensors use {bool_op}")
    for cls, (onnx_op, bool_op) in _BITWISE.items()))
