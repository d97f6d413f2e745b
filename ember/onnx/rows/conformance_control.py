"""Conformance rows: sequences, optionals, strings, control flow, old-opset arithmetic, Gradient.

Fallback rows (see conformance_common.py). A sequence is a Python list of Tensors; an empty
optional is None. Control-flow ops run their subgraphs through ``ctx.run_graph`` (the runtime
in ember/onnx/backend.py provides it; the subgraph sees the outer graph's values).
"""

import numpy

import ember
from ember.onnx import table
from ember.onnx.rows import conformance_common as K

# ---- sequences ----


def _pos(seq, p):
    i = int(K.arr(p).reshape(()))
    return i + len(seq) if i < 0 else i


def _seq_insert(ctx, node, seq, x, position=None):
    out = list(seq)
    out.insert(len(out) if position is None else _pos(seq, position), x)
    return out


def _seq_erase(ctx, node, seq, position=None):
    out = list(seq)
    del out[-1 if position is None else _pos(seq, position)]
    return out


def _split_to_sequence(ctx, node, x, split=None, axis=0, keepdims=1):
    n = x.shape[axis]
    if split is None:
        parts = ember.split(x, 1, dim=axis)
        return [p.squeeze(axis) for p in parts] if not keepdims else list(parts)
    sizes = K.arr(split).reshape(-1)
    if K.arr(split).ndim == 0:
        return list(ember.split(x, int(sizes[0]), dim=axis))
    del n
    return list(ember.split(x, [int(s) for s in sizes], dim=axis))


def _concat_from_sequence(ctx, node, seq, axis=0, new_axis=0):
    return ember.stack(seq, dim=axis) if new_axis else ember.cat(seq, dim=axis)


def _seq_empty(ctx, node, dtype=None):
    return []


table.register(
    K.row("SequenceEmpty", _seq_empty),
    K.row("SequenceConstruct", lambda ctx, node, *xs: list(xs)),
    K.row("SequenceInsert", _seq_insert),
    K.row("SequenceErase", _seq_erase),
    K.row("SequenceAt", lambda ctx, node, seq, p: seq[_pos(seq, p)]),
    K.row("SequenceLength", lambda ctx, node, seq: K.wrap(numpy.array(len(seq), numpy.int64))),
    K.row("SplitToSequence", _split_to_sequence),
    K.row("ConcatFromSequence", _concat_from_sequence),
    K.row("Optional", lambda ctx, node, x=None, type=None: x),
    K.row("OptionalHasElement",
          lambda ctx, node, x=None: K.wrap(numpy.array(x is not None))),
    K.row("OptionalGetElement", lambda ctx, node, x: x),
)

# ---- control flow ----


def _if(ctx, node, cond, then_branch, else_branch):
    branch = then_branch if bool(K.arr(cond).reshape(-1)[0]) else else_branch
    return tuple(ctx.run_graph(branch, []))


def _loop(ctx, node, max_trip=None, cond=None, *state, body):
    trips = None if max_trip is None else int(K.arr(max_trip).reshape(()))
    keep = True if cond is None else bool(K.arr(cond).reshape(()))
    state = list(state)
    scans = []
    i = 0
    while keep and (trips is None or i < trips):
        outs = ctx.run_graph(body, [K.wrap(numpy.array(i, numpy.int64)),
                                    K.wrap(numpy.array(keep))] + state)
        keep = bool(K.arr(outs[0]).reshape(()))
        state = list(outs[1:1 + len(state)])
        scans.append(outs[1 + len(state):])
        i += 1
    n_scan = len(body.output) - 1 - len(state)
    stacked = [ember.stack([s[j] for s in scans]) if scans else K.wrap(numpy.zeros((0,)))
               for j in range(n_scan)]
    return tuple(state + stacked)


def _scan(ctx, node, *inputs, body, num_scan_inputs, scan_input_axes=None,
          scan_input_directions=None, scan_output_axes=None, scan_output_directions=None):
    n_state = len(inputs) - num_scan_inputs
    state, xs = list(inputs[:n_state]), list(inputs[n_state:])
    in_axes = scan_input_axes or [0] * len(xs)
    in_dirs = scan_input_directions or [0] * len(xs)
    xs = [x.movedim(a % x.ndim, 0) for x, a in zip(xs, in_axes)]
    xs = [x.flip(0) if d else x for x, d in zip(xs, in_dirs)]
    steps = xs[0].shape[0]
    per_step = []
    for t in range(steps):
        outs = ctx.run_graph(body, state + [x[t] for x in xs])
        state = list(outs[:n_state])
        per_step.append(outs[n_state:])
    n_out = len(body.output) - n_state
    out_axes = scan_output_axes or [0] * n_out
    out_dirs = scan_output_directions or [0] * n_out
    results = []
    for j in range(n_out):
        y = ember.stack([s[j] for s in per_step])
        y = y.flip(0) if out_dirs[j] else y
        results.append(y.movedim(0, out_axes[j] % y.ndim))
    return tuple(state + results)


def _scan_v8(ctx, node, seq_lens, *inputs, body, num_scan_inputs, directions=None, **kw):
    # opset 8 has a batch axis in front of everything; run the opset-9 form per batch entry.
    n_state = len(inputs) - num_scan_inputs
    outs = []
    for b in range(inputs[0].shape[0] if inputs else 0):
        outs.append(_scan(ctx, node, *[x[b] for x in inputs], body=body,
                          num_scan_inputs=num_scan_inputs, scan_input_directions=directions))
    del n_state
    return tuple(ember.stack([o[j] for o in outs]) for j in range(len(outs[0])))


table.register(
    K.row("If", _if),
    K.row("Loop", _loop),
    K.row("Scan", _scan_v8, until=8),
    K.row("Scan", _scan, since=9),
)

# ---- strings (object arrays of str) ----


def _string_normalizer(node, x, case_change_action="NONE", is_case_sensitive=0, locale="",
                       stopwords=()):
    words = [K.text(w) for w in stopwords or ()]
    if not is_case_sensitive:
        words = [w.lower() for w in words]
    rows = x.reshape(-1, x.shape[-1]) if x.ndim == 2 else x.reshape(1, -1)
    kept = []
    for r in rows:
        kept.append([s for s in r if (s if is_case_sensitive else s.lower()) not in words])
    action = K.text(case_change_action)
    change = {"LOWER": str.lower, "UPPER": str.upper}.get(action, lambda s: s)
    kept = [[change(s) for s in r] for r in kept]
    width = max((len(r) for r in kept), default=0)
    if width == 0:
        return numpy.array([""] if x.ndim == 1 else [[""]], dtype=object)
    out = numpy.array(kept, dtype=object)
    return out.reshape(-1) if x.ndim == 1 else out


K.register_array_ops({"StringNormalizer": _string_normalizer})

# ---- old opsets of common arithmetic (broadcast attribute, opset < 7) ----


def _legacy_broadcast(b, a, broadcast=0, axis=None):
    """Opset < 7: with broadcast=1, ``b`` lines up with ``a`` starting at ``axis``."""
    if not broadcast or axis is None or b.ndim == a.ndim:
        return b
    ax = axis % a.ndim
    return b.reshape(tuple(b.shape) + (1,) * (a.ndim - ax - b.ndim))


def _legacy_binary(fn):
    def load(ctx, node, a, b, broadcast=0, axis=None, consumed_inputs=None):
        return fn(a, _legacy_broadcast(b, a, broadcast, axis))

    return load


def _legacy_variadic(fn):
    def load(ctx, node, *xs, consumed_inputs=None):
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return out

    return load


def _legacy_gemm(ctx, node, a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0,  # noqa: N803
                 broadcast=0):
    a = a.transpose(0, 1) if transA else a
    b = b.transpose(0, 1) if transB else b
    out = ember.matmul(a, b) * alpha
    return out if c is None else out + c * beta


def _legacy_clip(ctx, node, x, min=None, max=None, consumed_inputs=None):  # noqa: A002
    return ember.clamp(x, min=min, max=max)


def _legacy_prelu(ctx, node, x, slope, consumed_inputs=None):
    if slope.ndim == 1 and x.ndim > 1 and slope.shape[0] == x.shape[1]:
        slope = slope.reshape((1, -1) + (1,) * (x.ndim - 2))
    return ember.where(x >= 0, x, x * slope)


table.register(
    K.row("Add", _legacy_binary(ember.add), until=6),
    K.row("Sub", _legacy_binary(ember.sub), until=6),
    K.row("Mul", _legacy_binary(ember.mul), until=6),
    K.row("Div", _legacy_binary(ember.div), until=6),
    K.row("Pow", _legacy_binary(ember.pow), until=6),
    K.row("Max", _legacy_variadic(ember.maximum), until=7),
    K.row("Min", _legacy_variadic(ember.minimum), until=7),
    K.row("Sum", _legacy_variadic(ember.add), until=7),
    K.row("Gemm", _legacy_gemm, until=6),
    K.row("MatMul", lambda ctx, node, a, b: ember.matmul(a, b)),
    K.row("Clip", _legacy_clip, until=10),
    K.row("PRelu", _legacy_prelu),
)

# ---- Gradient (preview training domain): ember's autograd answers it ----


def _gradient(ctx, node, *inputs, xs, y, zs=None):
    """d y / d xs for values computed earlier in this graph. The runtime marks ``xs`` as
    requiring grad before the graph runs (see backend.GRAD_TARGETS)."""
    scope = ctx.scope
    targets = [scope[K.text(n)] for n in xs]
    out = scope[K.text(y)]
    grads = ember.autograd.grad(out, targets, grad_outputs=ember.ones_like(out),
                                allow_unused=True)
    return tuple(ember.zeros_like(t) if g is None else g for t, g in zip(targets, grads))


table.register(K.row("Gradient", _gradient, domain="ai.onnx.preview.training"))
