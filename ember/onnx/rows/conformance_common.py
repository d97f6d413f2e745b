"""Helpers for the conformance rows (``conformance_*.py``).

The conformance rows load ONNX ops that the main rows (math.py, nn.py, shape.py, rnn.py) do not
cover, so that ember can run the node tests shipped with onnx. They are registered as
*fallbacks* (``Row.fallback``): a main row for the same op and opset always wins.

Ops with a gradient are written over ember ops, so an imported model stays trainable. Ops
without one (comparisons, indexing arithmetic, casts, integer math) compute on the arrays and
wrap the result as a constant Tensor; ``array_op`` does that wrapping. Attribute values arrive
as Python values (``text`` accepts bytes or str, since strings may come either way).
"""

import numpy

from ember import errors
from ember.onnx import table
from ember.tensor import Tensor


class OnnxOpError(errors.EmberError, ValueError):
    """An ONNX node whose inputs or attributes the op cannot take."""


def arr(t):
    """The array under a Tensor (None stays None; lists are sequences of Tensors)."""
    if t is None:
        return None
    if isinstance(t, Tensor):
        return t._data
    if isinstance(t, list):
        return [arr(x) for x in t]
    return numpy.asarray(t)


def wrap(a):
    """A constant Tensor over array ``a`` (NumPy scalars become 0-d arrays)."""
    if a is None or isinstance(a, Tensor):
        return a
    if isinstance(a, list):
        return [wrap(x) for x in a]
    return Tensor._make(numpy.asarray(a), False, None, 0)


def text(v):
    return v.decode() if isinstance(v, bytes) else v


def ints(t):
    """A 1-d int tensor input (shapes, axes, pads) as a tuple of Python ints."""
    return tuple(int(i) for i in numpy.asarray(arr(t)).reshape(-1))


def fail(node, message):
    name = getattr(node, "name", "") or "?"
    op = getattr(node, "op_type", "?")
    raise OnnxOpError(f"ONNX node {name!r} ({op}): {message}")


def array_op(fn):
    """Turn ``fn(node, *arrays, **attrs) -> array or tuple`` into a load adapter."""

    def load(ctx, node, *inputs, **attrs):
        out = fn(node, *[arr(t) for t in inputs], **attrs)
        if isinstance(out, tuple):
            return tuple(wrap(o) for o in out)
        return wrap(out)

    load.__name__ = fn.__name__
    load.__doc__ = fn.__doc__
    return load


def row(onnx_op, load, since=1, until=None, domain="", **defaults):
    """A fallback import row (see the module docstring)."""
    return table.Row(onnx_op, since=since, until=until, load=load, defaults=defaults,
                     domain=domain, fallback=True, note="conformance")


def register_array_ops(ops, **defaults_by_op):
    """Register ``{onnx_op: array function}`` as fallback rows valid at every opset."""
    table.register(*[row(op, array_op(fn), **defaults_by_op.get(op, {}))
                     for op, fn in ops.items()])


def axis_tuple(axes, ndim):
    return tuple(sorted(int(a) % ndim for a in axes)) if ndim else ()


def is_float(a):
    return a.dtype.kind == "f"
