"""ember as an ONNX backend (``onnx.backend.base.Backend``), for the conformance suite.

``prepare(model)`` checks the model (``ember.onnx.safety``), then returns a ``BackendRep``
whose ``run(inputs)`` executes the graph node by node through the load adapters of the shared
table (``ember/onnx/table.py``) and returns NumPy arrays.

Why an interpreter of its own rather than ``ember.onnx.load``'s Module: the conformance suite
runs graphs that no ember model would export (sequences, optionals, control-flow subgraphs
that read outer-scope values, ops from preview domains), and it needs the inputs bound by
position for each data set. The interpreter is a short loop over the same rows the importer
uses, so a row tested here is the row a loaded model runs.

Example::

    >>> rep = ember.onnx.backend.prepare(onnx.load("model.onnx"))
    >>> (y,) = rep.run([x_numpy])
"""

import numpy

from ember import errors
from ember.autograd import grad_mode
from ember.onnx import table
from ember.tensor import Tensor


class UnsupportedOpError(errors.EmberError, NotImplementedError):
    """An ONNX node whose op (at the model's opset) has no row in ember's table."""


class ModelRunError(errors.EmberError, RuntimeError):
    """A graph that cannot run: a missing input, a value no node produces."""


_TENSOR_ATTRS = ("TENSOR", "SPARSE_TENSOR")


def attribute_value(attr):
    """An AttributeProto as a Python value: numbers, str, lists, arrays, or a GraphProto."""
    import onnx  # noqa: PLC0415

    kind = onnx.AttributeProto.AttributeType.Name(attr.type)
    value = onnx.helper.get_attribute_value(attr)
    if kind == "STRING":
        return value.decode("utf-8", "replace")
    if kind == "STRINGS":
        return [v.decode("utf-8", "replace") for v in value]
    if kind == "TENSOR":
        return onnx.numpy_helper.to_array(value)
    if kind == "TENSORS":
        return [onnx.numpy_helper.to_array(v) for v in value]
    if kind == "SPARSE_TENSOR":
        return _dense(value)
    if kind in ("INTS", "FLOATS", "GRAPHS"):
        return list(value)
    return value


def _dense(sparse):
    import onnx  # noqa: PLC0415

    values = onnx.numpy_helper.to_array(sparse.values)
    index = onnx.numpy_helper.to_array(sparse.indices)
    dims = tuple(sparse.dims)
    out = numpy.zeros(dims, values.dtype)
    if index.ndim == 1:
        out.reshape(-1)[index] = values
    else:
        out[tuple(index.T)] = values
    return out


def _as_value(x):
    """A run input (array, list of arrays for a sequence, None for an empty optional)."""
    if x is None or isinstance(x, Tensor):
        return x
    if isinstance(x, list):
        return [_as_value(v) for v in x]
    return Tensor._make(numpy.asarray(x), False, None, 0)


def _as_output(v):
    if isinstance(v, Tensor):
        return numpy.asarray(v._data) if isinstance(v._data, numpy.ndarray) else v.numpy()
    if isinstance(v, (list, tuple)):
        return [_as_output(x) for x in v]
    return v


class Context:
    """What a load adapter may ask of the runtime: the opsets, and running a subgraph (If, Loop,
    Scan) that sees this graph's values as its outer scope."""

    def __init__(self, opsets, scope):
        self.opsets = opsets
        self.opset = opsets.get("", 1)
        self.scope = scope
        self.node = None

    def error(self, message):
        """An exception naming the running node, for adapters to raise."""
        node = self.node
        where = f"ONNX node {node.name or '?'!r} ({node.op_type})" if node is not None else "ONNX"
        return UnsupportedOpError(f"{where}: {message}")

    def run_graph(self, graph, inputs):
        """Run GraphProto ``graph`` with ``inputs`` (bound to its inputs by position); returns
        the list of its outputs."""
        return run_graph(graph, inputs, self.opsets, outer=self.scope)


def run_graph(graph, inputs, opsets, outer=None):
    import onnx  # noqa: PLC0415

    scope = dict(outer or {})
    for init in graph.initializer:
        scope[init.name] = Tensor._make(onnx.numpy_helper.to_array(init), False, None, 0)
    for init in graph.sparse_initializer:
        scope[init.values.name] = Tensor._make(_dense(init), False, None, 0)
    names = [i.name for i in graph.input]
    if len(inputs) > len(names):
        raise ModelRunError(f"graph {graph.name!r} takes {len(names)} inputs, got {len(inputs)}")
    for name, value in zip(names, inputs):
        scope[name] = _as_value(value)
    ctx = Context(opsets, scope)
    for node in graph.node:
        run_node_in(ctx, node, scope)
    missing = [o.name for o in graph.output if o.name not in scope]
    if missing:
        raise ModelRunError(f"graph {graph.name!r}: no node produces output(s) {missing}")
    return [scope[o.name] for o in graph.output]


def run_node_in(ctx, node, scope):
    """Run one NodeProto, reading its inputs from and writing its outputs into ``scope``."""
    domain = "" if node.domain in ("", "ai.onnx") else node.domain
    opset = ctx.opsets.get(domain, ctx.opsets.get("", 1))
    row = table.import_row(node.op_type, opset, domain)
    if row is None:
        where = f"domain {domain!r}, " if domain else ""
        raise UnsupportedOpError(
            f"ONNX node {node.name or '?'!r}: op {node.op_type} ({where}opset {opset}) is not "
            "supported by ember; see the supported-op table in docs/onnx.md")
    args = []
    for name in node.input:
        if name == "":
            args.append(None)
        elif name not in scope:
            raise ModelRunError(f"ONNX node {node.name or '?'!r} ({node.op_type}): input "
                                f"{name!r} is not produced by any earlier node or graph input")
        else:
            args.append(scope[name])
    attrs = dict(row.defaults)
    for a in node.attribute:
        attrs[a.name] = attribute_value(a)
    ctx.node = node
    out = row.load(ctx, node, *args, **attrs)
    outs = out if isinstance(out, tuple) else (out,)
    for name, value in zip(node.output, outs):
        if name:
            scope[name] = value


def check_supported(model):
    """Raise ``UnsupportedOpError`` for the first node (subgraphs included) that no row loads,
    before anything runs."""
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    stack = [model.graph]
    while stack:
        graph = stack.pop()
        for node in graph.node:
            domain = "" if node.domain in ("", "ai.onnx") else node.domain
            opset = opsets.get(domain, opsets.get("", 1))
            if table.import_row(node.op_type, opset, domain) is None:
                where = f"domain {domain!r}, " if domain else ""
                raise UnsupportedOpError(
                    f"ONNX node {node.name or '?'!r}: op {node.op_type} ({where}opset {opset}) "
                    "is not supported by ember; see the supported-op table in docs/onnx.md")
            for a in node.attribute:
                stack.extend([a.g] if a.HasField("g") else [])
                stack.extend(a.graphs)


class BackendRep:
    """A prepared model: ``run(inputs)`` returns its outputs as NumPy arrays."""

    def __init__(self, model):
        self.model = model
        self.opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version
                       for o in model.opset_import}
        init_names = {i.name for i in model.graph.initializer}
        self.input_names = [i.name for i in model.graph.input if i.name not in init_names]

    def run(self, inputs, **kwargs):
        if isinstance(inputs, dict):
            inputs = [inputs[n] for n in self.input_names]
        elif not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        if len(inputs) > len(self.input_names):
            raise ModelRunError(f"the model takes {len(self.input_names)} inputs "
                                f"({self.input_names}), got {len(inputs)}")
        graph = self.model.graph
        values = dict(zip(self.input_names, inputs))
        # Bind by name so that initializers listed as inputs keep their stored values.
        order = [values.get(i.name) for i in graph.input if i.name in values]
        sub = _without_initializer_inputs(graph, set(values))
        # A Gradient node (preview training domain) differentiates with ember's autograd, so the
        # values it differentiates by must require grad before the graph runs.
        targets = {v.decode() if isinstance(v, bytes) else v for n in graph.node
                   if n.op_type == "Gradient" for a in n.attribute if a.name == "xs"
                   for v in a.strings}
        names = [i.name for i in graph.input if i.name in values]
        order = [_as_value(x) for x in order]
        for i, name in enumerate(names):
            if name in targets and order[i] is not None and order[i].dtype.kind == "f":
                order[i] = order[i].detach().requires_grad_(True)
        with grad_mode.set_grad_enabled(bool(targets)):
            outs = run_graph(sub, order, self.opsets)
        return tuple(_as_output(o) for o in outs)


def _without_initializer_inputs(graph, bound):
    import onnx  # noqa: PLC0415

    if all(i.name in bound for i in graph.input):
        return graph
    g = onnx.GraphProto()
    g.CopyFrom(graph)
    del g.input[:]
    g.input.extend([i for i in graph.input if i.name in bound])
    return g


def _onnx_backend_base():
    import onnx.backend.base  # noqa: PLC0415

    return onnx.backend.base


def _make_backend():
    base = _onnx_backend_base()

    class EmberBackend(base.Backend):
        """``onnx.backend.base.Backend`` over ember (CPU)."""

        @classmethod
        def is_compatible(cls, model, device="CPU", **kwargs):
            return cls.supports_device(device)

        @classmethod
        def prepare(cls, model, device="CPU", **kwargs):
            from ember.onnx import safety  # noqa: PLC0415

            safety.check(model, kwargs.get("base_dir"))
            check_supported(model)
            return Rep(model)

        @classmethod
        def run_model(cls, model, inputs, device="CPU", **kwargs):
            return cls.prepare(model, device, **kwargs).run(inputs)

        @classmethod
        def run_node(cls, node, inputs, device="CPU", outputs_info=None, **kwargs):
            import onnx  # noqa: PLC0415

            opset = kwargs.get("opset_version", onnx.defs.onnx_opset_version())
            scope = {f"__in{i}": _as_value(x) for i, x in enumerate(inputs)}
            renamed = onnx.NodeProto()
            renamed.CopyFrom(node)
            names = list(node.input)
            del renamed.input[:]
            renamed.input.extend([f"__in{i}" if n else "" for i, n in enumerate(names)])
            with grad_mode.no_grad():
                run_node_in(Context({"": opset}, scope), renamed, scope)
            return tuple(_as_output(scope[o]) for o in node.output if o in scope)

        @classmethod
        def supports_device(cls, device):
            return str(device).upper().startswith("CPU")

    class Rep(BackendRep, base.BackendRep):
        pass

    return EmberBackend


_BACKEND = []


def __getattr__(name):
    # onnx is an optional dependency: build the Backend class on first use.
    if name == "EmberBackend":
        if not _BACKEND:
            _BACKEND.append(_make_backend())
        return _BACKEND[0]
    raise AttributeError(f"module 'ember.onnx.backend' has no attribute {name!r}")


def prepare(model, device="CPU", **kwargs):
    return __getattr__("EmberBackend").prepare(model, device, **kwargs)


def run_model(model, inputs, device="CPU", **kwargs):
    return __getattr__("EmberBackend").run_model(model, inputs, device, **kwargs)


def run_node(node, inputs, device="CPU", outputs_info=None, **kwargs):
    return __getattr__("EmberBackend").run_node(node, inputs, device, outputs_info, **kwargs)


def supports_device(device):
    return str(device).upper().startswith("CPU")
