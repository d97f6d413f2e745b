"""The graph IR: what a traced forward run did, op by op.

A ``Graph`` has input Values, output Values, parameter/constant Values, and ``Node``s in
execution order. Each Node is one ``Function.apply``: the Function class, its Value inputs,
its non-tensor arguments (the op's attributes), its output Values, and the module path of
the layer that ran it. ONNX export, the TensorBoard graph view and ``summary()`` all read it.
"""

import numpy


class Value:
    """One tensor flowing through the graph (shape and dtype as traced)."""

    __slots__ = ("name", "shape", "dtype", "kind", "producer", "data")

    def __init__(self, name, shape, dtype, kind, producer=None, data=None):
        self.name = name
        self.shape = tuple(shape)
        self.dtype = numpy.dtype(dtype)
        self.kind = kind  # "input", "param", "buffer", "const" or "node"
        self.producer = producer
        self.data = data  # the array for params, buffers and constants

    def __repr__(self):
        return f"%{self.name}: {self.dtype.name}{list(self.shape)}"


class Node:
    """One op application: ``outputs = op(*args, **kwargs)`` where tensor args are Values."""

    __slots__ = ("op", "args", "kwargs", "outputs", "scope", "index")

    def __init__(self, op, args, kwargs, outputs, scope, index):
        self.op = op
        self.args = args
        self.kwargs = kwargs
        self.outputs = outputs
        self.scope = scope
        self.index = index

    @property
    def op_name(self):
        return self.op.__name__

    @property
    def inputs(self):
        """The Value arguments, in order."""
        return [a for a in self.args if isinstance(a, Value)]

    @property
    def attributes(self):
        """The non-tensor positional arguments and keyword arguments."""
        return [a for a in self.args if not isinstance(a, Value)], dict(self.kwargs)

    def __repr__(self):
        args = ", ".join(repr(a) if not isinstance(a, Value) else f"%{a.name}" for a in self.args)
        outs = ", ".join(f"%{o.name}" for o in self.outputs)
        scope = f"  # {self.scope}" if self.scope else ""
        return f"{outs} = {self.op_name}({args}){scope}"


class Graph:
    """Nodes in execution order plus the Values at its boundary."""

    def __init__(self):
        self.inputs = []
        self.outputs = []
        self.params = []  # parameters and buffers (named by their state_dict key)
        self.constants = []
        self.nodes = []

    def __repr__(self):
        lines = ["graph(" + ", ".join(repr(v) for v in self.inputs) + "):"]
        for p in self.params:
            lines.append(f"  param {p!r}")
        for n in self.nodes:
            lines.append("  " + repr(n))
        lines.append("  return " + ", ".join(f"%{v.name}" for v in self.outputs))
        return "\n".join(lines)

    def consumers(self):
        """Map from Value name to the nodes that read it."""
        out = {}
        for n in self.nodes:
            for v in n.inputs:
                out.setdefault(v.name, []).append(n)
        return out

    def prune(self):
        """Drop nodes whose outputs nothing uses (dead code), keeping the graph outputs."""
        live = {v.name for v in self.outputs}
        kept = []
        for n in reversed(self.nodes):
            if any(o.name in live for o in n.outputs):
                kept.append(n)
                live.update(v.name for v in n.inputs)
        self.nodes = list(reversed(kept))
        self.params = [p for p in self.params if p.name in live]
        self.constants = [c for c in self.constants if c.name in live]
        return self
