"""Recording a forward run into a Graph.

``trace(model, *example_inputs)`` runs the model once with a Tracer installed in
``Function.apply``; every op reports its Function class, arguments and outputs. Tensors the
tracer has not seen come from outside the run: the model's parameters and buffers (named by
their state_dict keys) or constants. Module.__call__ reports entering and leaving each layer so
nodes carry the layer's path ("encoder.0.fc1").
"""

import contextlib

from ember.autograd import grad_mode
from ember.autograd.function import _Tracing
from ember.graph.ir import Graph, Node, Value
from ember.tensor import Tensor


class Tracer:
    """Receives every op while installed; builds a Graph."""

    def __init__(self, named_tensors=None, module_names=None):
        self.graph = Graph()
        self._module_names = module_names or {}  # id(module) -> path in the traced model
        self._values = {}  # id(tensor) -> Value
        self._keep = []  # keep traced tensors alive so their ids are not reused
        self._named = {id(t): (name, kind) for name, (t, kind) in (named_tensors or {}).items()}
        self._scope = []
        self._counter = 0

    # ---- called by Function.apply and Module.__call__ ---------------------------------------

    def record(self, cls, ctx, args, kwargs, results):
        vargs = tuple(self.value_of(a) if isinstance(a, Tensor) else _freeze(a) for a in args)
        outs = []
        for r in results:
            v = Value(self._fresh(), r.shape, r.dtype, "node")
            self._bind(r, v)
            outs.append(v)
        scope = self._scope[-1] if self._scope else ""
        node = Node(cls, vargs, dict(kwargs), outs, scope, len(self.graph.nodes))
        for v in outs:
            v.producer = node
        self.graph.nodes.append(node)

    def enter_module(self, module):
        """Module.__call__ reports each layer it enters; nodes get the innermost layer's path."""
        name = self._module_names.get(id(module))
        if name is None:
            name = (self._scope[-1] + "." if self._scope else "") + type(module).__name__
        self._scope.append(name)

    def exit_module(self):
        self._scope.pop()

    def alias(self, target, source):
        """An in-place op made ``target`` hold ``source``'s value."""
        if id(source) in self._values:
            self._bind(target, self._values[id(source)])

    # ---- values -----------------------------------------------------------------------------

    def add_input(self, tensor, name):
        v = Value(name, tensor.shape, tensor.dtype, "input")
        self._bind(tensor, v)
        self.graph.inputs.append(v)
        return v

    def value_of(self, tensor):
        v = self._values.get(id(tensor))
        if v is not None:
            return v
        named = self._named.get(id(tensor))
        if named is not None:
            name, kind = named
            v = Value(name, tensor.shape, tensor.dtype, kind, data=tensor._data)
            self.graph.params.append(v)
        else:
            v = Value(f"const{len(self.graph.constants)}", tensor.shape, tensor.dtype, "const",
                      data=tensor._data)
            self.graph.constants.append(v)
        self._bind(tensor, v)
        return v

    def _bind(self, tensor, value):
        self._values[id(tensor)] = value
        self._keep.append(tensor)

    def _fresh(self):
        self._counter += 1
        return f"v{self._counter}"


def _freeze(a):
    if isinstance(a, list):
        return tuple(_freeze(x) for x in a)
    return a


def current():
    """The active Tracer, or None (read by Module.__call__ to report layer scopes)."""
    return _Tracing.tracer


@contextlib.contextmanager
def tracing(tracer):
    prev = _Tracing.tracer
    _Tracing.tracer = tracer
    try:
        yield tracer
    finally:
        _Tracing.tracer = prev


def trace(fn, *example_inputs, input_names=None, prune=True, train=False):
    """Run ``fn`` (a Module or function) on ``example_inputs`` and return its Graph.

    Parameters and buffers of a Module become named graph Values; the run happens under
    ``no_grad`` and, for a Module, in eval mode unless ``train=True``."""
    named = {}
    module = fn if hasattr(fn, "named_parameters") else None
    if module is not None:
        for name, p in module.named_parameters():
            named[name] = (p, "param")
        for name, b in module.named_buffers():
            named[name] = (b, "buffer")
    modules = {}
    if module is not None:
        modules = {id(m): (name or "") for name, m in module.named_modules()}
    tracer = Tracer(named, modules)
    names = input_names or [f"input{i}" if len(example_inputs) > 1 else "input"
                            for i in range(len(example_inputs))]
    inputs = list(example_inputs)
    for t, name in zip(inputs, names):
        tracer.add_input(t, name)
    was_training = getattr(module, "training", None)
    if module is not None and not train:
        module.eval()
    try:
        with grad_mode.no_grad(), tracing(tracer):
            out = fn(*inputs)
    finally:
        if module is not None and was_training is not None:
            module.train(was_training)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"trace: outputs must be Tensors, got {type(o).__name__}")
        tracer.graph.outputs.append(tracer.value_of(o))
    if prune:
        tracer.graph.prune()
    return tracer.graph
