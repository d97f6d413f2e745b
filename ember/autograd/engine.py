"""The backward engine: walks the recorded graph from the outputs back to the leaves.

Plan: find every node reachable from the roots (and, for ``grad()``, only those that lead to
a requested input), count how many consumers each node has, then run nodes when all their
consumers have delivered (Kahn's order). Each node's gradients are summed in a buffer per
output; broadcast gradients are summed back to the input's shape; leaves receive theirs
through their AccumulateGrad node. Saved arrays are freed right after a node has run unless
``retain_graph``. With ``create_graph`` the backward ops are themselves recorded.
"""

import numpy

from ember import errors
from ember.autograd import grad_mode
from ember.autograd.function import AccumulateGrad

_State = grad_mode._State
_TENSOR = []  # [Tensor] once ember.tensor is loaded (it imports this module)


def _tensor_class():
    if not _TENSOR:
        from ember.tensor import Tensor  # noqa: PLC0415

        _TENSOR.append(Tensor)
    return _TENSOR[0]


def _dependencies(roots, useful=None):
    """Number of in-graph consumers of every node reachable from ``roots`` (iterative DFS, so
    deep graphs do not hit the recursion limit). Nodes are hashed by identity."""
    deps = {}
    if len(roots) == 1 and useful is None:
        # NOTE: one root (loss.backward()) needs no ``seen`` set: the graph is acyclic, so a
        # node is new exactly when it is not yet in ``deps`` (~1 us off every backward call).
        stack = [roots[0]]
        while stack:
            node = stack.pop()
            for edge in node._next:
                if edge is None:
                    continue
                child = edge[0]
                n = deps.get(child)
                if n is None:
                    deps[child] = 1
                    stack.append(child)
                else:
                    deps[child] = n + 1
        return deps
    seen = set(roots)
    stack = list(seen)
    while stack:
        node = stack.pop()
        for edge in node._next:
            if edge is None:
                continue
            child = edge[0]
            if useful is not None and child not in useful:
                continue
            deps[child] = deps.get(child, 0) + 1
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return deps


def _leading_to(roots, targets):
    """The nodes from which some target can be reached (what autograd.grad must run)."""
    parents = {}
    seen = set(roots)
    stack = list(seen)
    while stack:
        node = stack.pop()
        for edge in node._next:
            if edge is None:
                continue
            child = edge[0]
            parents.setdefault(child, []).append(node)
            if child not in seen:
                seen.add(child)
                stack.append(child)
    useful = set()
    stack = list(targets)
    while stack:
        node = stack.pop()
        if node in useful:
            continue
        useful.add(node)
        stack.extend(parents.get(node, ()))
    return useful


def run_backward(roots, root_grads, retain_graph, create_graph, capture=None):
    """Propagate ``root_grads`` from the root edges.

    ``capture`` maps (node, nr) edges to the position of a requested input: the total
    gradient arriving there is returned and leaves are not touched (autograd.grad); without
    it, leaves accumulate into ``.grad`` (Tensor.backward).
    """
    Tensor = _TENSOR[0] if _TENSOR else _tensor_class()
    root_nodes = [edge[0] for edge in roots]
    useful = None
    if capture is not None:
        useful = _leading_to(root_nodes, [node for node, _ in capture])
    deps = _dependencies(root_nodes, useful)
    buffers = {}
    for (node, nr), g in zip(roots, root_grads):
        if useful is None or node in useful:
            _accumulate(buffers, node, nr, g)
    captured = {}
    handed_out = set()
    if len(root_nodes) == 1:
        ready = [] if root_nodes[0] in deps else root_nodes
    else:
        ready = [n for n in dict.fromkeys(root_nodes) if n not in deps]
    if useful is not None:
        ready = [n for n in ready if n in useful]
    prev = (_State.enabled, _State.inference)
    _State.enabled = bool(create_graph)
    try:
        while ready:
            node = ready.pop()
            grads = buffers.pop(node, None)
            if grads is None:
                grads = [None] * node._n_out
            if node._hooks:
                grads = _run_prehooks(node, grads)
            if capture is not None:
                for nr, g in enumerate(grads):
                    if (node, nr) in capture:
                        captured[(node, nr)] = g
            if type(node) is AccumulateGrad:
                if capture is None and grads[0] is not None:
                    _accumulate_leaf(node.leaf, grads[0], create_graph, handed_out)
                continue
            for g in grads:
                if g is not None:
                    if useful is None or _needs_run(node, useful):
                        _run_node(node, grads, buffers, useful, Tensor)
                    break
            if not retain_graph:
                node._release()
            for edge in node._next:
                if edge is None:
                    continue
                child = edge[0]
                left = deps.get(child)
                if left is None:
                    continue
                if left == 1:
                    del deps[child]
                    ready.append(child)
                else:
                    deps[child] = left - 1
    finally:
        _State.enabled, _State.inference = prev
    return captured


def _needs_run(node, useful):
    return any(e is not None and e[0] in useful for e in node._next)


def _run_prehooks(node, grads):
    grads = list(grads)
    for nr, hooks in node._hooks.items():
        if grads[nr] is None:
            continue
        for hook in list(hooks):
            result = hook(grads[nr])
            if result is not None:
                grads[nr] = result
    return grads


def _run_node(node, grads, buffers, useful, Tensor):
    """Call ``node.backward`` and route each input gradient to the node that made the input."""
    if len(grads) > 1 and any(g is None for g in grads):  # a single grad is never None here
        meta = node._out_meta
        grads = [
            Tensor._make(_zeros_like_meta(node, *meta[nr]), False, None, 0) if g is None else g
            for nr, g in enumerate(grads)
        ]
    results = type(node).backward(node, *grads)
    if type(results) is not tuple:
        results = (results,)
    edges = node._next
    in_meta = node._in_meta
    n = len(results)
    for i, edge in enumerate(edges):
        if edge is None or i >= n:
            continue
        g = results[i]
        if g is None:
            continue
        child = edge[0]
        if useful is not None and child not in useful:
            continue
        if not isinstance(g, Tensor):
            raise errors.AutogradError(
                f"{node.name()}.backward returned {type(g).__name__} for input {i}; "
                "it must return Tensors (or None)"
            )
        shape, dtype = in_meta[i]
        data = g._data
        if data.shape != shape:
            g = _reduce_to_shape(node, i, g, shape)
        if data.dtype != dtype:
            g = g.to(dtype)
        # Sum into the child's buffer (inlined _accumulate: this loop runs for every edge).
        slot = buffers.get(child)
        if slot is None:
            slot = buffers[child] = [None] * child._n_out
        nr = edge[1]
        slot[nr] = g if slot[nr] is None else slot[nr] + g


def _zeros_like_meta(node, shape, dtype):
    xp = getattr(node, "xp", numpy)
    return xp.zeros(shape, dtype=dtype)


def _reduce_to_shape(node, i, g, shape):
    from ember.ops import reduce  # noqa: PLC0415

    gshape = g._data.shape
    lead = len(gshape) - len(shape)
    ok = lead >= 0 and all(s == 1 or s == gs for s, gs in zip(shape, gshape[lead:]))
    if not ok:
        raise errors.ShapeError(
            f"{node.name()}.backward returned a gradient of shape {errors.shape_str(gshape)} for "
            f"input {i} of shape {errors.shape_str(shape)}; they do not broadcast"
        )
    return reduce.sum_to(g, shape)


def _accumulate(buffers, node, nr, g):
    slot = buffers.get(node)
    if slot is None:
        slot = buffers[node] = [None] * node._n_out
    slot[nr] = g if slot[nr] is None else slot[nr] + g


def _accumulate_leaf(leaf, g, create_graph, handed_out=None):
    """Add ``g`` into ``leaf.grad``. A gradient array is given to at most one leaf, and never a
    read-only (broadcast) one, so in-place changes to one ``.grad`` never leak into another."""
    hooks = leaf._hooks
    if hooks:
        for hook in list(hooks):
            result = hook(g)
            if result is not None:
                g = result
    if not create_graph:
        data = g._data
        if leaf._grad is not None:  # the sum is a new array: nobody else holds it
            leaf._grad = g.__class__._make(leaf._grad._data + data, False, None, 0)
            return
        owner = _memory_owner(data)
        if handed_out is None or not data.flags.writeable or id(owner) in handed_out:
            data = data.copy()
            owner = data
        if handed_out is not None:
            handed_out.add(id(owner))
        leaf._grad = g.__class__._make(data, False, None, 0)
    else:
        leaf._grad = g if leaf._grad is None else leaf._grad + g


def _memory_owner(array):
    """The array that owns ``array``'s memory (views share their owner)."""
    while getattr(array, "base", None) is not None:
        array = array.base
    return array


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Compute the gradient of ``tensors`` w.r.t. graph leaves and add it to their ``.grad``."""
    if retain_graph is None:
        retain_graph = create_graph
    if grad_tensors is None and inputs is None and type(tensors) is not list \
            and type(tensors) is not tuple:
        # NOTE: loss.backward(), the common call, skips the list plumbing of _roots (~1.5 us).
        data = tensors._data
        if tensors._rg and data.size == 1:
            fn = tensors._grad_fn
            edge = (fn, tensors._output_nr) if fn is not None else tensors._edge()
            run_backward((edge,), (_ones_like(data),), retain_graph, create_graph)
            return
    tensors, grad_tensors = _roots(tensors, grad_tensors, "backward")
    if inputs is not None:
        inputs = _as_list(inputs)
        grads = grad(tensors, inputs, grad_tensors, retain_graph, create_graph, allow_unused=True)
        for t, g in zip(inputs, grads):
            if g is not None:
                _accumulate_leaf(t, g, create_graph)
        return
    edges = [t._edge() for t in tensors]
    run_backward(edges, grad_tensors, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False, materialize_grads=False):
    """Return the gradients of ``outputs`` w.r.t. ``inputs`` without touching ``.grad``."""
    outputs, grad_outputs = _roots(outputs, grad_outputs, "grad")
    inputs = _as_list(inputs)
    if retain_graph is None:
        retain_graph = create_graph
    capture = {}
    for i, t in enumerate(inputs):
        if not t._rg:
            raise errors.AutogradError(
                f"autograd.grad: input {i} (shape {errors.shape_str(t.shape)}) does not require "
                "grad; call .requires_grad_() on it before computing the outputs"
            )
        capture[t._edge()] = i
    edges = [t._edge() for t in outputs]
    captured = run_backward(edges, grad_outputs, retain_graph, create_graph, capture)
    result = []
    for i, t in enumerate(inputs):
        g = captured.get(t._edge())
        if g is None:
            if materialize_grads:
                from ember import creation  # noqa: PLC0415

                g = creation.zeros_like(t)
            elif not allow_unused:
                raise errors.AutogradError(
                    f"autograd.grad: input {i} (shape {errors.shape_str(t.shape)}) was not used to "
                    "compute the outputs; pass allow_unused=True to get None for it"
                )
        elif not create_graph:
            g = g.detach()
        result.append(g)
    return tuple(result)


def _ones_like(data):
    """A constant Tensor of ones like ``data`` (the implicit gradient of a scalar output)."""
    ones = data.copy()
    ones[...] = 1
    Tensor = _TENSOR[0] if _TENSOR else _tensor_class()
    return Tensor._make(ones, False, None, 0)


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _roots(tensors, grads, who):
    Tensor = _TENSOR[0] if _TENSOR else _tensor_class()
    tensors = _as_list(tensors)
    if grads is None:
        grads = [None] * len(tensors)
    else:
        grads = _as_list(grads)
    if len(grads) != len(tensors):
        raise errors.AutogradError(
            f"{who}: got {len(tensors)} outputs but {len(grads)} gradients for them"
        )
    out = []
    for t, g in zip(tensors, grads):
        if not t._rg:
            raise errors.AutogradError(
                f"{who}: element 0 of tensors does not require grad and does not have a "
                "grad_fn. Did you compute it under no_grad(), from tensors without "
                "requires_grad=True, or call .detach() on it?"
            )
        if g is None:
            data = t._data
            if data.size != 1:
                raise errors.AutogradError(
                    f"{who}: grad can be implicitly created only for scalar outputs, got shape "
                    f"{errors.shape_str(t.shape)}; pass a gradient of that shape, or reduce "
                    "first (loss.sum(), loss.mean())"
                )
            g = _ones_like(data)
        elif not isinstance(g, Tensor):
            g = Tensor._make(t.device.xp.asarray(g, dtype=t._data.dtype), False, None, 0)
        elif g._data.shape != t._data.shape:
            raise errors.ShapeError(
                f"{who}: gradient of shape {errors.shape_str(g.shape)} does not match output "
                f"of shape {errors.shape_str(t.shape)}"
            )
        out.append(g)
    return tensors, out
