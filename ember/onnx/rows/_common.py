"""Helpers shared by the row modules (export and load sides)."""

import numpy

from ember.graph import ir
from ember.onnx import table


def operand(ctx, arg, like):
    """The ONNX name of a Value argument, or a constant for a Python scalar (cast to the dtype
    of ``like``, since ember's Python scalars never upcast a tensor)."""
    if isinstance(arg, ir.Value):
        return ctx.name(arg)
    return ctx.const(numpy.asarray(arg, dtype=like.dtype), "k")


def cast_to(ctx, arg, dtype, like=None):
    """``arg`` (Value or scalar) as an ONNX tensor of ``dtype`` (a Cast only when needed)."""
    dtype = numpy.dtype(dtype)
    if not isinstance(arg, ir.Value):
        return ctx.const(numpy.asarray(arg, dtype=dtype), "k")
    if arg.dtype == dtype:
        return ctx.name(arg)
    return ctx.add("Cast", [ctx.name(arg)], to=ctx.elem_type(dtype))


def elementwise_inputs(ctx, node, dtype=None):
    """Every argument of an elementwise node in the output's dtype (ONNX wants equal types)."""
    dtype = dtype or node.outputs[0].dtype
    return [cast_to(ctx, a, dtype) for a in node.args]


def reduce(ctx, op_type, x, axes, keepdims):
    """ReduceX over ``axes`` (None: all), with ``axes`` as an input (opset 18; ReduceSum 13) or
    an attribute (earlier)."""
    as_input = ctx.opset >= (13 if op_type == "ReduceSum" else 18)
    keep = int(bool(keepdims))
    if axes is None:
        return ctx.add(op_type, [x], keepdims=keep)
    axes = [int(a) for a in axes]
    if as_input:
        return ctx.add(op_type, [x, ctx.ints(axes)], keepdims=keep)
    return ctx.add(op_type, [x], keepdims=keep, axes=axes)


def unary_row(onnx_op, ember_ops, fn, since=1, **kw):
    """A row for a one-input op that ONNX and ember both have, attribute-free."""

    def export(ctx, node):
        return ctx.add(onnx_op, [cast_to(ctx, node.args[0], node.outputs[0].dtype)])

    def load(ctx, node, x, **attrs):
        return fn(x)

    return table.Row(onnx_op, since=since, ember_ops=tuple(ember_ops), export=export,
                     load=load, **kw)


def int_list(t):
    """A 1-D int tensor input (shape, axes, pads) as a Python list."""
    if t is None:
        return None
    return [int(v) for v in numpy.asarray(t.detach().numpy()).reshape(-1)]


def as_numpy(t):
    return numpy.asarray(t.detach().numpy())
