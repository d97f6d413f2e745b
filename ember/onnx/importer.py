"""ONNX file -> ember Module.

``load`` validates the file (``onnx.checker``), checks that every node has a row in
``ember/onnx/table.py`` at the model's opset, and returns an ``OnnxModule``: float initializers
become ``nn.Parameter``s (so the model can be fine-tuned), the rest buffers, and ``forward``
runs the ONNX nodes in order through the rows' load adapters on ember Tensors, which records
the autograd graph like any other ember code.

Untrusted files. Before anything is read beyond the protobuf itself (external data files
included), ``load`` calls ``ember.onnx.safety.check(model_proto, base_dir)`` when that module
exists. It should raise for a file that must not be loaded (for example external-data paths
that leave ``base_dir``); it is the hook for the hostile-file checks (see docs/onnx.md).
"""

import importlib
import os
import re

import numpy

from ember import creation, errors
from ember.nn import module as module_mod
from ember.nn import parameter
from ember.onnx import table
from ember.tensor import Tensor

# Initializers read only at these input positions are statistics, not trainable weights.
_STATISTICS = {("BatchNormalization", 3), ("BatchNormalization", 4)}


class OnnxImportError(errors.EmberError, ValueError):
    """An ONNX file ember cannot load (an unsupported op or attribute, a bad file)."""


def load(f, check=True):
    """Load an ONNX model as an ember ``nn.Module``.

    Args:
        f (str, path-like or onnx.ModelProto): the ``.onnx`` file, or a model in memory.
        check (bool): run ``onnx.checker.check_model`` first. Default: True.

    Returns:
        OnnxModule: call it with the graph inputs (Tensors or arrays, in the file's order);
        it returns one Tensor, or a tuple for several graph outputs.

    Example::

        >>> model = ember.onnx.load("model.onnx")
        >>> y = model(ember.randn(1, 3, 32, 32))
    """
    import onnx  # noqa: PLC0415

    if isinstance(f, onnx.ModelProto):
        proto, base_dir = f, None
    else:
        path = os.fspath(f)
        proto = onnx.load(path, load_external_data=False)
        base_dir = os.path.dirname(os.path.abspath(path))
    _safety_check(proto, base_dir)
    if base_dir is not None and _uses_external_data(proto):
        from onnx import external_data_helper  # noqa: PLC0415

        external_data_helper.load_external_data_for_model(proto, base_dir)
    if check:
        try:
            onnx.checker.check_model(proto)
        except onnx.checker.ValidationError as exc:
            raise OnnxImportError(f"onnx.load: the model is not valid ONNX: {exc}") from None
    return OnnxModule(proto)


def _safety_check(proto, base_dir):
    """Run ember/onnx/safety.py's ``check`` when that module is present (part of the
    untrusted-file defences); a missing module means no extra checks."""
    try:
        safety = importlib.import_module("ember.onnx.safety")
    except ModuleNotFoundError as exc:
        if exc.name != "ember.onnx.safety":
            raise
        return
    safety.check(proto, base_dir)


def _uses_external_data(proto):
    from onnx import TensorProto  # noqa: PLC0415

    return any(t.data_location == TensorProto.EXTERNAL for t in proto.graph.initializer)


def _sanitize(name, taken):
    """A valid, unique Module attribute name for an ONNX initializer name."""
    base = re.sub(r"\W", "_", name) or "param"
    if base[0].isdigit():
        base = "p_" + base
    out, i = base, 1
    while out in taken:
        out = f"{base}_{i}"
        i += 1
    taken.add(out)
    return out


class _Node:
    __slots__ = ("op_type", "domain", "input", "output", "attrs", "name", "row")

    def __init__(self, op_type, domain, inputs, outputs, attrs, name, row):
        self.op_type = op_type
        self.domain = domain
        self.input = inputs
        self.output = outputs
        self.attrs = attrs
        self.name = name
        self.row = row


class _LoadContext:
    """What a load adapter sees besides its inputs: the opset, and an error helper."""

    def __init__(self, opset):
        self.opset = opset
        self.node = None

    def error(self, message):
        n = self.node
        where = f" (node {n.name!r}, opset {self.opset})" if n is not None else ""
        return OnnxImportError(f"onnx import: {message}{where}")


def _attribute(attr):
    import onnx  # noqa: PLC0415

    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8") for v in value]
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    if isinstance(value, onnx.GraphProto) or (isinstance(value, list) and value and
                                              isinstance(value[0], onnx.GraphProto)):
        raise OnnxImportError(f"onnx import: attribute {attr.name!r} holds a subgraph "
                              f"(If/Loop/Scan), which ember does not run")
    return value


def _opset(proto):
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return 1


class OnnxModule(module_mod.Module):
    """An ONNX graph run by ember, op by op (differentiable; trainable weights are
    Parameters). ``onnx_names`` maps each ONNX initializer name to its attribute name."""

    def __init__(self, proto):
        import onnx  # noqa: PLC0415

        super().__init__()
        self.opset = _opset(proto)
        graph = proto.graph
        self.onnx_names = {}
        self._nodes = []
        missing = []
        for n in graph.node:
            domain = "" if n.domain == "ai.onnx" else n.domain
            row = table.import_row(n.op_type, self.opset, domain)
            if row is None:
                missing.append(f"{n.op_type} (node {n.name!r})")
                continue
            attrs = dict(row.defaults)
            attrs.update({a.name: _attribute(a) for a in n.attribute})
            self._nodes.append(_Node(n.op_type, domain, list(n.input), list(n.output), attrs,
                                     n.name, row))
        if missing:
            raise OnnxImportError(
                f"onnx import: no ember row for {', '.join(missing)} at opset {self.opset}; "
                f"see docs/onnx.md for the supported ops, or re-export the model with ops "
                f"from that table")
        statistics = {name for n in graph.node for i, name in enumerate(n.input)
                      if (n.op_type, i) in _STATISTICS}
        trainable = {name for n in graph.node for i, name in enumerate(n.input)
                     if (n.op_type, i) not in _STATISTICS}
        taken = set(dir(self))
        for init in graph.initializer:
            arr = numpy.array(onnx.numpy_helper.to_array(init))
            attr = _sanitize(init.name, taken)
            self.onnx_names[init.name] = attr
            t = creation.tensor(arr)
            if arr.dtype.kind == "f" and (init.name in trainable or
                                          init.name not in statistics):
                self.register_parameter(attr, parameter.Parameter(t))
            else:
                self.register_buffer(attr, t)
        inits = {t.name for t in graph.initializer}
        self.input_names = [i.name for i in graph.input if i.name not in inits]
        self.output_names = [o.name for o in graph.output]

    def forward(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise OnnxImportError(f"OnnxModule: expected {len(self.input_names)} inputs "
                                  f"({self.input_names}), got {len(inputs)}")
        env = {}
        for onnx_name, attr in self.onnx_names.items():
            env[onnx_name] = getattr(self, attr)
        for name, x in zip(self.input_names, inputs):
            env[name] = x if isinstance(x, Tensor) else creation.tensor(numpy.asarray(x))
        ctx = _LoadContext(self.opset)
        for node in self._nodes:
            ctx.node = node
            names = list(node.input)
            while names and not names[-1]:
                names.pop()
            args = [env[n] if n else None for n in names]
            try:
                out = node.row.load(ctx, node, *args, **node.attrs)
            except OnnxImportError:
                raise
            except TypeError as exc:
                raise ctx.error(f"{node.op_type}: {exc}") from exc
            outs = (out,) if isinstance(out, Tensor) else tuple(out)
            for name, value in zip(node.output, outs):
                if name:
                    env[name] = value
        results = tuple(env[n] for n in self.output_names)
        return results[0] if len(results) == 1 else results

    def extra_repr(self):
        return f"opset={self.opset}, nodes={len(self._nodes)}, inputs={self.input_names}"
