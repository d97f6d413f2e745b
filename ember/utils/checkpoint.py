"""Activation checkpointing: trade compute for memory by recomputing a segment in backward.

``checkpoint(fn, *args)`` runs ``fn`` without recording a graph, keeps only its inputs, and in
backward runs ``fn`` again with recording on to get the gradients. The gradients are those of
the plain run.

How it finds what to differentiate: while ``fn`` runs under ``no_grad`` nothing it makes
requires grad, so every tensor that reaches an op and *does* require grad comes from outside:
the inputs, the parameters of the layers it calls, tensors captured by a closure. A temporary
hook on ``Function.apply`` collects them, and all of them become inputs of one graph node, so
the engine sends their gradients the normal way (``.grad`` of parameters, ``autograd.grad``,
tensor hooks).

Random ops inside ``fn`` (dropout) draw the same numbers in the recomputation: ember.random's
default generator state is saved before the forward and restored around the recomputation
(``preserve_rng_state=True``), and the stream after backward is as if no recomputation ran.
"""

from ember import errors
from ember import random as _random
from ember.autograd import engine, grad_mode
from ember.autograd.function import Function, _Tracing
from ember.tensor import Tensor


class _Collector:
    """Stands in for the graph tracer while a checkpointed function runs under no_grad: notes
    every tensor argument that requires grad (so comes from outside the function)."""

    def __init__(self):
        self.found = {}

    def record(self, cls, ctx, args, kwargs, results):
        for a in args:
            if isinstance(a, Tensor) and a._rg and id(a) not in self.found:
                self.found[id(a)] = a


class _Box:
    """Plain data the checkpoint node carries: passed through Function.apply untouched."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


class _Checkpoint(Function):
    @staticmethod
    def forward(ctx, box, *arrays):
        ctx.box = box
        outputs = box.outputs
        box.outputs = None
        return outputs if len(outputs) != 1 else outputs[0]

    @staticmethod
    def backward(ctx, *grad_outputs):
        box = ctx.box
        create_graph = grad_mode.is_grad_enabled()
        n_inputs = len(box.input_slots)
        # Fresh leaves for the inputs; outside tensors that are not leaves are cut off from
        # their graph for the recomputation (made leaves for a moment), so the nested grad()
        # below stops at them instead of running the outer graph.
        inputs = list(box.args)
        leaves = []
        for slot, tensor in zip(box.input_slots, box.inputs):
            leaf = Tensor._make(tensor._data, tensor._rg, None, 0)
            inputs[slot] = leaf
            leaves.append(leaf)
        cut = [(t, t._grad_fn, t._output_nr, t._acc) for t in box.externals
               if t._grad_fn is not None]
        rng_now = _random.get_rng_state() if box.rng_state is not None else None
        try:
            for t, *_ in cut:
                t._grad_fn, t._output_nr, t._acc = None, 0, None
            if box.rng_state is not None:
                _random.set_rng_state(box.rng_state)
            with grad_mode.enable_grad():
                outputs = box.function(*inputs, **box.kwargs)
            outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
            pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o._rg]
            wrt = [t for t in leaves + list(box.externals) if t._rg]
            grads = (
                engine.grad([o for o, _ in pairs], wrt, [g for _, g in pairs],
                            create_graph=create_graph, allow_unused=True)
                if pairs and wrt else [None] * len(wrt)
            )
        finally:
            for t, fn, nr, acc in cut:
                t._grad_fn, t._output_nr, t._acc = fn, nr, acc
            if rng_now is not None:
                _random.set_rng_state(rng_now)
        by_tensor = dict(zip(map(id, wrt), grads))
        result = [None]  # for the box argument
        result += [by_tensor.get(id(leaf)) for leaf in leaves]
        result += [by_tensor.get(id(t)) for t in box.externals]
        assert len(result) == 1 + n_inputs + len(box.externals)
        return tuple(result)


def checkpoint(function, *args, use_reentrant=None, preserve_rng_state=True, **kwargs):
    """Run ``function(*args, **kwargs)`` without keeping its intermediate activations; they are
    recomputed during backward. Gradients equal those of ``function(*args, **kwargs)``.

    Args:
        function: a callable (often a Module or a block of layers) returning a Tensor or a
            tuple of Tensors.
        *args: its positional inputs (Tensors and other values).
        use_reentrant (bool, optional): accepted for PyTorch compatibility; ember has one
            implementation, which behaves like PyTorch's non-reentrant one (works with
            ``autograd.grad`` and inputs that do not require grad).
        preserve_rng_state (bool): replay the same random numbers in the recomputation.
            Default: True.
        **kwargs: keyword arguments for ``function``.

    Returns:
        What ``function`` returns.

    Example::

        >>> block = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64))
        >>> x = ember.randn(8, 64, requires_grad=True)
        >>> y = checkpoint(block, x, use_reentrant=False)
        >>> y.sum().backward()
    """
    if not grad_mode.is_grad_enabled() or _Tracing.tracer is not None:
        # Nothing to save without recording; a graph tracer needs the ops themselves.
        return function(*args, **kwargs)
    rng_state = _random.get_rng_state() if preserve_rng_state else None
    collector = _Collector()
    _Tracing.tracer = collector
    try:
        with grad_mode.no_grad():
            outputs = function(*args, **kwargs)
    finally:
        _Tracing.tracer = None
    single = not isinstance(outputs, (tuple, list))
    out_list = (outputs,) if single else tuple(outputs)
    if not all(isinstance(o, Tensor) for o in out_list):
        kinds = ", ".join(type(o).__name__ for o in out_list)
        raise errors.AutogradError(
            f"checkpoint: the function must return a Tensor or a tuple of Tensors, got ({kinds})"
        )
    input_slots = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    inputs = [args[i] for i in input_slots]
    input_ids = {id(t) for t in inputs}
    externals = [t for key, t in collector.found.items() if key not in input_ids]
    if not any(t._rg for t in inputs) and not externals:
        return outputs
    box = _Box(
        function=function, args=args, kwargs=kwargs, input_slots=input_slots, inputs=inputs,
        externals=externals, rng_state=rng_state, outputs=tuple(o._data for o in out_list),
    )
    results = _Checkpoint.apply(box, *inputs, *externals)
    results = results if isinstance(results, tuple) else (results,)
    if single:
        return results[0]
    return type(outputs)(results) if isinstance(outputs, tuple) else list(results)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Run a Sequential (or list of modules) in ``segments`` checkpointed chunks; the last
    chunk runs normally.

    Example::

        >>> y = checkpoint_sequential(model, 2, x, use_reentrant=False)
    """
    from ember.nn.layers.container import Sequential, run_chain  # noqa: PLC0415

    functions = list(functions.children()) if isinstance(functions, Sequential) else \
        list(functions)
    if segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be >= 1, got {segments}")
    size = max(len(functions) // segments, 1)

    def run(start, end):
        def forward(x):
            return run_chain(functions[start:end + 1], x)  # as the Sequential would

        return forward

    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant, **kwargs)
    return run(end + 1, len(functions) - 1)(input)
