"""ember Module -> ONNX file.

``export`` traces the model once (eval mode, ``ember.graph``), hands every traced node to the
export adapter of its row in ``ember/onnx/table.py`` (one node may become several ONNX nodes),
and writes the ModelProto atomically. Parameters, buffers and constants become initializers
named by their state_dict keys.

Dynamic axes. A trace sees concrete shapes, so an op such as ``Reshape(x, (2, 192))`` has the
batch size baked into its attribute. To keep the exported model batch-independent, ``export``
traces a second time per symbolic axis with that axis grown by one, and compares the nodes'
attributes: an entry that changed is a multiple of the symbolic sizes, and adapters that take
shapes (``ctx.shape_input``) compute such entries from ``Shape`` of the graph input at run time.
A constant whose shape changes between the traces (zeros or a causal mask built for the
input's size) is rebuilt at run time when it is a uniform fill or a triangle of one; any other
such constant, and an input no traced op reads, was computed outside ember ops from the input
(its example values would be baked in), so export raises instead of writing a wrong file.
"""

import numpy

from ember import errors
from ember.autograd import grad_mode
from ember.graph import ir, tracer as tracer_mod
from ember.onnx import table
from ember.tensor import Tensor


class ExportError(errors.EmberError, NotImplementedError):
    """An ember op that has no ONNX form at the requested opset."""


def export(model, example_inputs, path, opset_version=18, input_names=None, output_names=None,
           dynamic_axes=None):
    """Export ``model`` run on ``example_inputs`` to the ONNX file ``path``.

    Args:
        model (Module or callable): traced in eval mode, under ``no_grad``.
        example_inputs (Tensor or tuple of Tensors): one run's inputs.
        path (str or path-like): where the ``.onnx`` file goes (written atomically; nothing is
            written when export fails).
        opset_version (int): the default-domain opset of the file. Default: 18.
        input_names, output_names (list of str, optional): graph boundary names; default
            ``input``/``input0..`` and ``output``/``output0..``.
        dynamic_axes (dict, optional): ``{name: {axis: symbol}}`` (or ``{name: [axes]}``) for
            every input and output; default: axis 0 of every input is ``batch``, and so is
            every output axis whose size follows it (found by tracing the model a second time
            with a larger batch). ``{}`` makes every dimension fixed.

    Returns:
        the ``onnx.ModelProto`` that was written.

    Example::

        >>> ember.onnx.export(model, ember.randn(1, 3, 32, 32), "model.onnx")
    """
    from ember.io import atomic  # noqa: PLC0415

    proto = to_model_proto(model, example_inputs, opset_version, input_names, output_names,
                           dynamic_axes)
    data = proto.SerializeToString()
    with atomic.atomic_write(path, "wb") as f:
        f.write(data)
    return proto


def to_model_proto(model, example_inputs, opset_version=18, input_names=None,
                   output_names=None, dynamic_axes=None):
    """Like ``export``, without writing: returns the checked ``onnx.ModelProto``."""
    import onnx  # noqa: PLC0415

    inputs = _as_tuple(example_inputs)
    graph = trace_flat(model, inputs, input_names)
    out_names = list(output_names or ([f"output{i}" for i in range(len(graph.outputs))]
                                      if len(graph.outputs) > 1 else ["output"]))
    if len(out_names) != len(graph.outputs):
        raise ValueError(f"onnx.export: {len(out_names)} output_names for "
                         f"{len(graph.outputs)} outputs; give one name per output")
    in_names = [v.name for v in graph.inputs]
    _check_inputs_used(graph)
    axes = _dynamic_axes(dynamic_axes, in_names, out_names, graph)
    variants = _variants(model, inputs, input_names, graph, axes)
    if dynamic_axes is None:
        axes.update(_output_axes(graph, out_names, variants[1]))
    ctx = ExportContext(graph, opset_version, axes, variants, in_names)
    for node in graph.nodes:
        ctx.export_node(node)
    onnx_graph = ctx.finish(out_names)
    model_proto = onnx.helper.make_model(
        onnx_graph, producer_name="ember", opset_imports=[
            onnx.helper.make_opsetid("", opset_version)])
    model_proto.ir_version = min(model_proto.ir_version, _max_ir(opset_version))
    onnx.checker.check_model(model_proto, full_check=True)
    return model_proto


def _check_inputs_used(graph):
    """An input that no traced op reads was either ignored or turned into something by code
    outside ember ops (raw array code, ``.item()``): the trace holds its example's values as
    constants, so the file would be wrong for every other input."""
    read = {v.name for n in graph.nodes for v in _reads(n)} | {v.name for v in graph.outputs}
    unused = [v.name for v in graph.inputs if v.name not in read]
    if unused:
        raise ExportError(
            f"onnx export: input(s) {unused} are not read by any traced ember op: the model "
            f"ignores them or converts them outside ember ops (a bool attention mask is turned "
            f"into a constant that way), so the file would hold the example's values; pass "
            f"attention masks as float tensors (0 / -inf), or drop the unused input")


def _max_ir(opset):
    """onnxruntime reads IR <= 10; keep the IR the one that came with the opset."""
    return 8 if opset <= 18 else (9 if opset <= 20 else 10)


def _as_tuple(x):
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _flatten(out):
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    if out is None:
        return []
    raise TypeError(f"onnx.export: model outputs must be Tensors (or tuples of them), got "
                    f"{type(out).__name__}")


def trace_flat(model, inputs, input_names=None):
    """``ember.graph.trace`` for models whose output is a nested tuple (an LSTM's
    ``(out, (h, c))``): the outputs are flattened in order. Array arguments that are the
    storage of a traced tensor (an embedding's indices) are turned back into graph Values."""
    named = {}
    module = model if hasattr(model, "named_parameters") else None
    modules = {}
    if module is not None:
        for name, p in module.named_parameters():
            named[name] = (p, "param")
        for name, b in module.named_buffers():
            named[name] = (b, "buffer")
        modules = {id(m): (name or "") for name, m in module.named_modules()}
    tr = tracer_mod.Tracer(named, modules)
    names = input_names or (["input"] if len(inputs) == 1 else
                            [f"input{i}" for i in range(len(inputs))])
    if len(names) != len(inputs):
        raise ValueError(f"onnx.export: {len(names)} input_names for {len(inputs)} inputs")
    for t, name in zip(inputs, names):
        if not isinstance(t, Tensor):
            raise TypeError(f"onnx.export: example inputs must be Tensors, got "
                            f"{type(t).__name__} for input {name!r}")
        tr.add_input(t, name)
    was_training = getattr(module, "training", None)
    if module is not None:
        module.eval()
    try:
        with grad_mode.no_grad(), tracer_mod.tracing(tr):
            out = model(*inputs)
    finally:
        if was_training is not None:
            module.train(was_training)
    for o in _flatten(out):
        tr.graph.outputs.append(tr.value_of(o))
    by_array = {}
    for t in tr._keep:
        by_array.setdefault(id(t._data), tr._values[id(t)])
    for node in tr.graph.nodes:
        node.args = tuple(_relink(a, by_array) for a in node.args)
    return _prune(tr.graph)


def _reads(node):
    """Every Value a node reads, including those inside tuple arguments (index coordinates),
    which ``Node.inputs`` does not list."""
    out = []
    stack = list(node.args)
    while stack:
        a = stack.pop()
        if isinstance(a, ir.Value):
            out.append(a)
        elif isinstance(a, tuple):
            stack.extend(a)
    return out


def _prune(graph):
    """``Graph.prune`` that also keeps the producers of Values read inside tuples."""
    live = {v.name for v in graph.outputs}
    kept = []
    for n in reversed(graph.nodes):
        if any(o.name in live for o in n.outputs):
            kept.append(n)
            live.update(v.name for v in _reads(n))
    graph.nodes = list(reversed(kept))
    graph.params = [p for p in graph.params if p.name in live]
    graph.constants = [c for c in graph.constants if c.name in live]
    return graph


def _same_view(a, b):
    """Whether arrays ``a`` and ``b`` read the same memory the same way (equal values)."""
    return (a.shape == b.shape and a.dtype == b.dtype and a.strides == b.strides and
            a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _relink(arg, by_array):
    """``arg`` with every array that holds a traced tensor's data (the tensor itself, or a
    same-shape view of it, as index ops make) replaced by that tensor's graph Value; looks
    inside the tuples that index ops pass (gather/scatter coordinates, setitem stages)."""
    if isinstance(arg, numpy.ndarray):
        found = by_array.get(id(arg))
        base = arg.base
        if found is None and isinstance(base, numpy.ndarray) and _same_view(arg, base):
            found = by_array.get(id(base))
        return arg if found is None else found
    if isinstance(arg, tuple):
        return tuple(_relink(a, by_array) for a in arg)
    return arg


# ---- dynamic axes -------------------------------------------------------------------------


def _dynamic_axes(spec, in_names, out_names, graph):
    """{boundary name: {axis: symbol}}; default: axis 0 of everything is 'batch'."""
    if spec is None:  # outputs are filled in by _output_axes once the variants are traced
        return {name: {0: "batch"} for name, v in zip(in_names, graph.inputs) if len(v.shape)}
    axes = {}
    for name, a in spec.items():
        if name not in in_names and name not in out_names:
            raise ValueError(f"onnx.export: dynamic_axes names {name!r}, which is neither an "
                             f"input ({in_names}) nor an output ({out_names})")
        if isinstance(a, dict):
            axes[name] = {int(k): str(s) for k, s in a.items()}
        else:
            axes[name] = {int(k): f"{name}_dim{k}" for k in a}
    return axes


def _output_axes(graph, out_names, variants):
    """Default output axes: those whose size followed a symbol in its second trace (an LSTM's
    h_n has the batch on axis 1); axis 0 when the model could not be traced again."""
    axes = {}
    for i, (name, v) in enumerate(zip(out_names, graph.outputs)):
        found = {}
        for sym, (_, g2) in variants.items():
            for axis, (a, b) in enumerate(zip(v.shape, g2.outputs[i].shape)):
                if a != b:
                    found[axis] = sym
        if found or variants:
            axes[name] = found
        elif len(v.shape):
            axes[name] = {0: "batch"}
    return axes


def _grow(t, axis):
    """``t`` one longer along ``axis``, by repeating its first slice (keeps indices valid)."""
    from ember.ops import shape as shape_ops  # noqa: PLC0415

    first = shape_ops.narrow(t, axis, 0, 1)
    return shape_ops.cat([t, first], axis)


def _variants(model, inputs, input_names, graph, axes):
    """{symbol: (symbol sizes, graph traced with that symbol grown by one)}; a symbol whose
    second trace does not line up node by node with the first is left out (baked in)."""
    symbols = {}
    for name, v in zip([v.name for v in graph.inputs], graph.inputs):
        for axis, sym in axes.get(name, {}).items():
            symbols.setdefault(sym, []).append((name, axis))
    base_sizes = {}
    for sym, places in symbols.items():
        name, axis = places[0]
        base_sizes[sym] = graph.inputs[[v.name for v in graph.inputs].index(name)].shape[axis]
    out = {}
    for sym, places in symbols.items():
        grown = list(inputs)
        for name, axis in places:
            i = [v.name for v in graph.inputs].index(name)
            with grad_mode.no_grad():
                grown[i] = _grow(grown[i], axis)
        try:
            g2 = trace_flat(model, grown, [v.name for v in graph.inputs])
        except Exception:  # noqa: BLE001 - a model that rejects other sizes keeps them fixed
            continue
        if [n.op for n in g2.nodes] != [n.op for n in graph.nodes]:
            continue
        sizes = dict(base_sizes)
        sizes[sym] += 1
        out[sym] = (sizes, g2)
    return base_sizes, out


# ---- the context the export adapters see ---------------------------------------------------


class ExportContext:
    """What an export adapter works with: ONNX node construction, constants, names."""

    def __init__(self, graph, opset, axes, variants, in_names):
        import onnx  # noqa: PLC0415

        self.onnx = onnx
        self.graph = graph
        self.opset = opset
        self.axes = axes
        self.base_sizes, self.variants = variants
        self.nodes = []
        self.initializers = []
        self._names = {}  # Value name -> ONNX name
        self._taken = set()
        self._consts = {}
        self._dims = {}
        self.node = None
        for v in graph.inputs:
            self._names[v.name] = v.name
            self._taken.add(v.name)
        self._position = {id(n): i for i, n in enumerate(graph.nodes)}
        self._sized = _sized_constants(graph, self.variants)
        for v in graph.params + graph.constants:
            self._taken.add(v.name)
            if v.name in self._sized:
                continue  # built at run time, on first use (see _sized_constant)
            self._names[v.name] = v.name
            self.initializers.append(onnx.numpy_helper.from_array(
                numpy.asarray(_host(v.data)), v.name))

    # ---- names and values
    def name(self, value):
        """The ONNX name of a graph Value (or '' for None: an omitted optional input)."""
        if value is None:
            return ""
        if not isinstance(value, ir.Value):
            raise TypeError(f"onnx export: expected a graph Value, got {value!r}")
        name = self._names.get(value.name)
        if name is None and value.name in self._sized:
            name = self._names[value.name] = self._sized_constant(value)
        if name is None:
            node = self.node
            raise ExportError(f"onnx export: {value!r} (made by {value.producer!r}) has no "
                              f"ONNX form but is used by "
                              f"{node.op_name if node else 'the graph output'}")
        return name

    def is_read(self, value):
        """Whether a later node or the graph output reads Value ``value``."""
        return value in self.graph.outputs or any(value in _reads(n) for n in self.graph.nodes)

    def fresh(self, hint="t"):
        i = len(self._taken)
        while f"{hint}_{i}" in self._taken:
            i += 1
        name = f"{hint}_{i}"
        self._taken.add(name)
        return name

    def add(self, op_type, inputs, n_out=1, domain="", **attrs):
        """Append one ONNX node; returns its output name (n_out == 1) or list of names."""
        outs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        scope = self.node.scope if self.node is not None else ""
        self.nodes.append(self.onnx.helper.make_node(
            op_type, list(inputs), outs, name=self.fresh(scope or op_type), domain=domain,
            **{k: v for k, v in attrs.items() if v is not None}))
        return outs[0] if n_out == 1 else outs

    def const(self, array, hint="c"):
        """An initializer holding ``array`` (deduplicated); returns its name."""
        arr = numpy.asarray(array)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            name = self.fresh(hint)
            self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
            self._consts[key] = name
        return self._consts[key]

    def ints(self, values):
        return self.const(numpy.asarray(list(values), dtype=numpy.int64), "ints")

    def scalar(self, value, like):
        """A 0-d constant of the dtype of Value ``like``."""
        return self.const(numpy.asarray(value, dtype=like.dtype), "k")

    def elem_type(self, dtype):
        return self.onnx.helper.np_dtype_to_tensor_dtype(numpy.dtype(dtype))

    # ---- dynamic shapes
    def _dim(self, sym):
        """A 1-element int64 tensor holding the run-time size of symbol ``sym``."""
        if sym not in self._dims:
            for v in self.graph.inputs:
                for axis, s in self.axes.get(v.name, {}).items():
                    if s == sym:
                        shape = self.add("Shape", [v.name])
                        self._dims[sym] = self.add("Gather", [shape, self.ints([axis])],
                                                   axis=0)
                        return self._dims[sym]
        return self._dims[sym]

    def dynamic_entries(self, node, pos):
        """For the tuple-of-ints argument ``node.args[pos]``: ``[(index, symbols, ratio,
        offset)]`` of the entries that change with a symbolic axis (entry = ratio * product of
        sizes + offset; the offset, for keys grown by a fixed count, only with one symbol)."""
        # Pruning leaves node.index (the trace position) behind; the graphs were checked to
        # hold the same ops in the same order, so a node's place in the list matches.
        at = self._position[id(node)]
        others = {sym: list(g2.nodes[at].args[pos]) for sym, (sizes, g2) in self.variants.items()}
        return self._entries(list(node.args[pos]), others)

    def _entries(self, base, others):
        """``dynamic_entries`` for a shape ``base`` and its ``{symbol: shape}`` in the other
        traces."""
        changed = {}
        for sym, other in others.items():
            if len(other) != len(base):
                continue
            for i, (a, b) in enumerate(zip(base, other)):
                if a != b:
                    changed.setdefault(i, []).append((sym, b))
        out = []
        for i, grown in changed.items():
            syms = [sym for sym, _ in grown]
            prod = numpy.prod([self.base_sizes[s] for s in syms])
            ratio = base[i] / prod
            if len(grown) == 1 and ratio * (prod + 1) != grown[0][1]:
                # Not proportional: affine in the one size, which grew by one.
                slope = grown[0][1] - base[i]
                out.append((i, syms, slope, base[i] - slope * prod))
            else:
                out.append((i, syms, ratio, 0))
        return out

    def shape_input(self, node, pos, neg_one_ok=True):
        """An int64 ONNX tensor for the shape in ``node.args[pos]``, with the entries that
        depend on symbolic axes computed at run time (a lone one becomes -1 when allowed)."""
        return self._shape_tensor(node, [int(d) for d in node.args[pos]],
                                  self.dynamic_entries(node, pos), neg_one_ok)

    def _shape_tensor(self, node, base, dyn, neg_one_ok):
        if not dyn:
            return self.ints(base)
        if neg_one_ok and len(dyn) == 1 and -1 not in base:
            base[dyn[0][0]] = -1
            return self.ints(base)
        parts = []
        start = 0
        for i, syms, ratio, offset in sorted(dyn):
            if i > start:
                parts.append(self.ints(base[start:i]))
            size = self._dim(syms[0])
            for s in syms[1:]:
                size = self.add("Mul", [size, self._dim(s)])
            if ratio != 1:
                if ratio == int(ratio):
                    size = self.add("Mul", [size, self.ints([int(ratio)])])
                else:
                    inv = 1 / ratio
                    if inv != int(inv):
                        raise ExportError(f"onnx export: {node.op_name} at "
                                          f"{node.scope or '<top>'}: shape entry {base[i]} is "
                                          f"not a whole multiple of the dynamic sizes; export "
                                          f"with dynamic_axes={{}} for fixed shapes")
                    size = self.add("Div", [size, self.ints([int(inv)])])
            if offset:
                size = self.add("Add", [size, self.ints([int(offset)])])
            parts.append(size)
            start = i + 1
        if start < len(base):
            parts.append(self.ints(base[start:]))
        return parts[0] if len(parts) == 1 else self.add("Concat", parts, axis=0)

    def _sized_constant(self, value):
        """A constant whose shape follows a dynamic axis, rebuilt for the run-time shape: a
        uniform fill as Expand, a triangle of one value (a causal mask) as Expand + Trilu."""
        node = self.node
        data = numpy.asarray(_host(value.data))
        where = (f"{node.op_name} (in layer {node.scope or '<top level>'!r})" if node is not None
                 else "the graph output")
        shape = self._shape_tensor(node, list(value.shape),
                                   self._entries(list(value.shape), self._sized[value.name]),
                                   False)
        pattern = _fill_pattern(data)
        if pattern is None or (pattern[1] is not None and self.opset < 14):
            raise ExportError(
                f"onnx export: a constant {list(value.shape)} read by {where} changes shape "
                f"with a dynamic axis but is not a uniform fill (or, at opset 14+, a causal "
                f"triangle): it was computed from an input outside ember ops (a bool attention "
                f"mask is converted that way), and the file would hold the example's values; "
                f"pass masks as float tensors (0 / -inf), or export with dynamic_axes={{}}")
        fill, tri = pattern
        y = self.add("Expand", [self.const(numpy.asarray(fill, dtype=data.dtype), "fill"), shape])
        if tri is not None:
            upper, k = tri
            y = self.add("Trilu", [y, self.const(numpy.asarray(k, numpy.int64), "k")],
                         upper=int(upper))
        return y

    # ---- graph walk
    def export_node(self, node):
        self.node = node
        row = table.export_row(node.op, self.opset)
        if row is None:
            raise ExportError(
                f"onnx export: ember op {node.op_name} (in layer "
                f"{node.scope or '<top level>'!r}) has no ONNX export at opset {self.opset}; "
                f"try another opset_version, or write the model with ops that have a row in "
                f"ember/onnx/rows (see docs/onnx.md for the supported table)")
        outs = row.export(self, node)
        if isinstance(outs, str):
            outs = [outs]
        if len(outs) < len(node.outputs):
            raise ExportError(f"onnx export: the {row.onnx_op} adapter gave {len(outs)} outputs "
                              f"for {node.op_name} with {len(node.outputs)}")
        for v, name in zip(node.outputs, outs):
            if name is not None:  # None: an output with no ONNX form (fails only if used)
                self._names[v.name] = name
        self.node = None

    def finish(self, out_names):
        helper = self.onnx.helper
        outputs = []
        for v, name in zip(self.graph.outputs, out_names):
            self.nodes.append(helper.make_node("Identity", [self.name(v)], [name],
                                               name=self.fresh("output")))
            outputs.append(self._value_info(name, v))
        self._prune(out_names)
        inputs = [self._value_info(v.name, v) for v in self.graph.inputs]
        return helper.make_graph(self.nodes, "ember", inputs, outputs, self.initializers)

    def _value_info(self, name, v):
        dims = list(v.shape)
        for axis, sym in self.axes.get(name, {}).items():
            if axis < len(dims):
                dims[axis] = sym
        return self.onnx.helper.make_tensor_value_info(name, self.elem_type(v.dtype), dims)

    def _prune(self, out_names):
        """Drop ONNX nodes and initializers nothing reads (e.g. a projection folded into an
        LSTM node)."""
        live = set(out_names)
        kept = []
        for n in reversed(self.nodes):
            if any(o in live for o in n.output):
                kept.append(n)
                live.update(i for i in n.input if i)
        self.nodes = list(reversed(kept))
        self.initializers = [t for t in self.initializers if t.name in live]


def _sized_constants(graph, variants):
    """{constant name: {symbol: its shape in that symbol's trace}} for the constants whose
    shape differs there (matched by where the nodes read them)."""
    out = {}
    for sym, (_, g2) in variants.items():
        for node, other in zip(graph.nodes, g2.nodes):
            for a, b in zip(node.args, other.args):
                if isinstance(a, ir.Value) and a.kind == "const" and isinstance(b, ir.Value) \
                        and tuple(a.shape) != tuple(b.shape):
                    out.setdefault(a.name, {})[sym] = list(b.shape)
    return out


def _fill_pattern(data):
    """(fill, None) for an array of one value; (fill, (upper, k)) for ``triu``/``tril`` of a
    filled array (the other side zero); None for anything else."""
    flat = data.reshape(-1)
    if flat.size == 0:
        return (0, None)
    if (flat == flat[0]).all() or (numpy.isnan(flat).all()):
        return (flat[0], None)
    if data.ndim < 2:
        return None
    values = [v for v in numpy.unique(flat) if v != 0]
    if len(values) != 1:
        return None
    fill = values[0]
    full = numpy.full(data.shape, fill, dtype=data.dtype)
    for k in (1, 0, -1):  # the diagonals that causal masks use
        for upper, make in ((True, numpy.triu), (False, numpy.tril)):
            if numpy.array_equal(make(full, k), data):
                return (fill, (upper, k))
    return None


def _host(data):
    """A NumPy array from a NumPy or CuPy array."""
    get = getattr(data, "get", None)
    return get() if callable(get) and not isinstance(data, numpy.ndarray) else data
