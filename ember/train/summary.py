"""``Module.summary()``: a table of layers with output shapes and parameter counts.

Output shapes are read by forward hooks during one forward pass (eval mode, no gradients), on
zeros of a given input shape, on an example input, or on the input shapes of the last
``fit``/``evaluate`` (which the trainer remembers). Each row counts the parameters and
persistent buffers of that module and everything inside it; nested modules are indented under
their parent. The totals count each tensor once: trainable = parameters with
``requires_grad``; non-trainable = frozen parameters and buffers (running statistics), as
Keras counts them.
"""

from ember import creation, errors
from ember.nn import parameter as _parameter
from ember.train import inputs, trainer

_COLUMNS = (("Layer (type)", 40), ("Output Shape", 28), ("Param #", 12))


def summary(model, input_shape=None, example=None, dtype=None, print_fn=print):
    shapes = {}
    batch_is_none = False
    if example is None and input_shape is None:
        spec = model.__dict__.get("_input_spec")
        if spec is not None:
            example = inputs.map_structure(_Spec.zeros, spec)
            batch_is_none = True
    if example is None and input_shape is not None:
        example, batch_is_none = _zeros_for(input_shape, dtype or trainer.model_float_dtype(
            model))
    if example is not None:
        shapes = _output_shapes(model, example)
    elif any(_parameter.is_lazy(t) for t in _tensors(model)):
        lazy = [name or model._get_name() for name, m in model.named_modules()
                if any(_parameter.is_lazy(t) for t in _own_tensors(m))]
        raise errors.ModuleError(
            f"summary: the model has layers whose sizes are not known yet ({', '.join(lazy)}); "
            "pass input_shape=(None, ...) (the shape of a batch) or example=..., or run the "
            "model once"
        )
    print_fn(_table(model, shapes, batch_is_none))


_BATCH = 2  # the batch size run in place of None; shown as None again


class _Spec:
    """The per-sample shape and dtype of one input, enough to rebuild zeros like it."""

    def __init__(self, tensor):
        self.shape = tuple(tensor.shape[1:])
        self.dtype = tensor.dtype

    def zeros(self):
        return creation.zeros((_BATCH, *self.shape), dtype=self.dtype)


def input_spec(x):
    """What summary needs to rebuild inputs like the batch ``x`` (a structure of Tensors)."""
    return inputs.map_structure(_Spec, x)


def _zeros_for(input_shape, dtype):
    """Zeros for a shape, a list of shapes (positional inputs) or a dict (keyword inputs)."""
    if isinstance(input_shape, dict):
        parts = {k: _zeros_for(v, dtype) for k, v in input_shape.items()}
        return {k: v[0] for k, v in parts.items()}, any(v[1] for v in parts.values())
    shape = tuple(input_shape)
    if all(d is None or isinstance(d, int) for d in shape):
        none = len(shape) > 0 and shape[0] is None
        if any(d is None for d in shape[1:]):
            raise ValueError(f"summary: only the batch size may be None, got {shape}")
        return creation.zeros(((_BATCH,) if none else ()) + tuple(shape[none:]), dtype=dtype), \
            none
    parts = [_zeros_for(s, dtype) for s in shape]
    return tuple(p[0] for p in parts), any(p[1] for p in parts)


def _output_shapes(model, example):
    shapes = {}
    handles = []

    def record(module, args, output):
        shapes.setdefault(id(module), output)

    for module in model.modules():
        handles.append(module.register_forward_hook(record))
    try:
        with trainer._EvalMode(model):
            trainer.call_model(model, example)
    finally:
        for handle in handles:
            handle.remove()
    return {k: _shape_of(v) for k, v in shapes.items()}


def _shape_of(output):
    if hasattr(output, "shape"):
        return tuple(output.shape)
    if isinstance(output, (tuple, list)):
        return [_shape_of(o) for o in output]
    if isinstance(output, dict):
        return {k: _shape_of(v) for k, v in output.items()}
    return type(output).__name__


def _format_shape(shape, batch_is_none):
    if isinstance(shape, tuple):
        if batch_is_none and shape and shape[0] == _BATCH:
            return "(" + ", ".join(["None", *(str(d) for d in shape[1:])]) + \
                ("," if len(shape) == 1 else "") + ")"
        return str(shape)
    if isinstance(shape, list):
        return "[" + ", ".join(_format_shape(s, batch_is_none) for s in shape) + "]"
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{k}: {_format_shape(s, batch_is_none)}"
                               for k, s in shape.items()) + "}"
    return str(shape)


def _own_tensors(module):
    params = [p for p in module._parameters.values() if p is not None]
    skip = module._non_persistent_buffers_set
    buffers = [b for k, b in module._buffers.items() if b is not None and k not in skip]
    return params + buffers


def _tensors(module):
    """Every parameter and persistent buffer under ``module``, each once."""
    seen = {}
    for m in module.modules():
        for t in _own_tensors(m):
            seen.setdefault(id(t), t)
    return list(seen.values())


def _count(tensors):
    return sum(0 if _parameter.is_lazy(t) else t.numel() for t in tensors)


def _table(model, shapes, batch_is_none):
    width = sum(w for _, w in _COLUMNS)
    lines = [f'Model: "{model._get_name()}"', "-" * width,
             "".join(title.ljust(w) for title, w in _COLUMNS), "=" * width]
    rows = [(name, m) for name, m in model.named_modules() if name] or [("", model)]
    for name, module in rows:
        depth = name.count(".")
        label = "  " * depth + (name.rsplit(".", 1)[-1] + " " if name else "") + \
            f"({module._get_name()})"
        shape = _format_shape(shapes[id(module)], batch_is_none) if id(module) in shapes \
            else "?"
        count = f"{_count(_tensors(module)):,}"
        lines.append(_row(label, shape, count))
    tensors = _tensors(model)
    params = {id(p) for p in model.parameters()}
    trainable = _count(t for t in tensors if id(t) in params and t.requires_grad)
    total = _count(tensors)
    lines += ["=" * width, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", "-" * width]
    return "\n".join(lines)


def _row(label, shape, count):
    (_, w1), (_, w2), _ = _COLUMNS
    cells = [label, shape]
    text = ""
    for cell, w in zip(cells, (w1, w2)):
        text += (cell + " ").ljust(w)
    return text + count
