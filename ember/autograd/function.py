"""Function: the one dispatch point of every differentiable op, and the graph node it records.

An op is a subclass with two static methods::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):            # x is an array (numpy or cupy)
            y = ctx.xp.exp(x)
            ctx.save_for_backward(y)    # inputs and outputs come back as graph-linked Tensors
            return y

        @staticmethod
        def backward(ctx, gy):          # gy is a Tensor
            (y,) = ctx.saved_tensors
            return gy * y               # ember ops, so the gradient is differentiable too

``Exp.apply(t)`` unwraps Tensors to arrays, runs ``forward``, wraps the outputs, and only when
grad mode is on and some input requires grad links them to the node (the ctx object itself),
which keeps what ``backward`` needs. ``backward`` returns one gradient per positional argument
of ``forward`` (None where there is none); a gradient may have the broadcast shape, the engine
sums it back to the input's shape.

No-graph fast paths: the hottest ops (``x + y``, ``x - y``, ``x * y`` and their Python-number
forms, ``x @ y``, ``exp``, ``relu``, ``sum``, ``reshape``, ``x[i]``) compute on the arrays
directly, without ``apply``, when all of these hold: no tracer is installed
(``_Tracing.tracer is None``; checkpoint's collector counts as one), no input requires grad
or grad mode is off, and the inputs are NumPy arrays. That is exactly when ``apply`` would
record nothing and return ``Tensor._make(forward(...), False, None, 0)``, so the fast path
returns the same (0-d NumPy scalars made arrays, views marked as views); anything else (CuPy,
a tracer, recording) takes ``apply``. tests/autograd/test_no_graph_paths.py checks each one
bit for bit against ``apply``.
NOTE (measured): ``apply`` costs ~1-1.5 us per op over the array call; skipping it took the
forward rows of ``python bench/overhead.py --repeats 9 --threads 1 --clock cpu`` from
1.15-1.60x PyTorch to 0.71-0.94x, fwd+bwd rows unchanged (numbers at each op). The ops
call ``_make = Tensor._make`` bound once at import (0.21 vs 0.25 us per call). Tried and not
kept: writing ``_make``'s body inline in each fast path (x + y 0.79 vs 1.02 us in a prototype,
but six duplicated lines per op and Tensor's fields spelled out in every op file).
"""

import numpy

from ember import errors
from ember.autograd import grad_mode
from ember.backend import devices as _device

_State = grad_mode._State
_ndarray = numpy.ndarray
_generic = numpy.generic
_FREED = object()
_new = object.__new__
_NO_GRADS = (False,) * 64
_SAVED_NONE = ("c", None, None, None, None)  # save_for_backward(None)


class _Tracing:
    """Hook for graph/tracer.py: when set, every applied Function is reported to it."""

    tracer = None


class Node:
    """What the engine walks: a backward step with edges to the nodes of its inputs."""

    __slots__ = ()

    def name(self):
        return type(self).__name__


class Function:
    """Base of every differentiable op; the instance is both ``ctx`` and the graph node."""

    # Per-call state whose usual value lives here on the class, so ``apply`` stores into the
    # new ctx only what differs (NOTE: one dict store less per default: ~0.25 us per op off the
    # no-grad path, bench/overhead.py). Instance values shadow these.
    _next = None  # edges to the inputs' nodes (None: not recording)
    _in_meta = None  # (shape, dtype) per input, for the engine
    _record = False
    _to_save = None  # what forward gave save_for_backward, until resolved into _saved
    _saved = None
    _non_diff = None  # outputs marked non-differentiable
    _n_out = 1
    _out_meta = None  # (shape, dtype) per output when there are several
    _hooks = None
    # The forward as a function of arrays alone, for ops whose no-graph fast path is generic
    # (elementwise._binary): see "No-graph fast paths" in the module docstring.
    _array_forward = None

    @classmethod
    def apply(cls, *args, **kwargs):
        # NOTE: this runs for every op; it is written as one flat pass on purpose (no helper
        # calls, no generator expressions): each saves ~0.2-1 us per op (bench/overhead.py).
        Tensor = _TENSOR[0] if _TENSOR else _tensor_class()
        ctx = _new(cls)
        arrays = []
        first = None
        record = False
        for a in args:
            if isinstance(a, Tensor):
                data = a._data
                if first is None:
                    first = data
                elif type(data) is not type(first):
                    _raise_device_mismatch(cls, args)
                arrays.append(data)
                if a._rg:
                    record = True
            else:
                arrays.append(a)
        if record and _State.enabled:
            edges = []
            metas = []
            for a in args:
                if isinstance(a, Tensor) and a._rg:
                    fn = a._grad_fn
                    edges.append((fn, a._output_nr) if fn is not None else a._edge())
                    metas.append((a._data.shape, a._data.dtype))
                else:
                    edges.append(None)
                    metas.append(None)
            ctx._next = edges
            ctx._in_meta = metas
            ctx._record = True
        else:
            record = False
        ctx._first = first
        outputs = cls.forward(ctx, *arrays, **kwargs)

        if type(outputs) is not tuple:
            if type(outputs) is not _ndarray:
                outputs = _as_saved_array(ctx, outputs)
            if record and outputs.dtype.kind == "f" and ctx._non_diff is None:
                result = Tensor._make(outputs, True, ctx, 0)
                if ctx._to_save is not None:
                    ctx._resolve_saved(args, arrays, (result,))
            else:
                result = Tensor._make(outputs, False, None, 0)
                if record and ctx._to_save is not None:
                    ctx._to_save = None
            if _Tracing.tracer is not None:
                _Tracing.tracer.record(cls, ctx, args, kwargs, (result,))
            return result

        results = []
        if record:
            non_diff = ctx._non_diff
            for i, out in enumerate(outputs):
                if type(out) is not _ndarray:
                    out = _as_saved_array(ctx, out)
                diff = out.dtype.kind == "f" and not (non_diff and _contains(non_diff, out))
                results.append(Tensor._make(out, diff, ctx if diff else None, i))
            ctx._n_out = len(outputs)
            ctx._out_meta = [(r._data.shape, r._data.dtype) for r in results]
            if ctx._to_save is not None:
                ctx._resolve_saved(args, arrays, results)
        else:
            for out in outputs:
                if type(out) is not _ndarray:
                    out = _as_array(out)
                results.append(Tensor._make(out, False, None, 0))
        if _Tracing.tracer is not None:
            _Tracing.tracer.record(cls, ctx, args, kwargs, results)
        return tuple(results)

    # ---- what forward may use -------------------------------------------------------------

    @property
    def xp(self):
        """The array module (numpy/cupy) of this call's tensor inputs."""
        first = self._first
        if first is None or isinstance(first, _ndarray):
            return numpy
        return _device.get_array_module(first)

    def save_for_backward(self, *values):
        """Keep arrays for backward. Input and output arrays come back as graph-linked Tensors
        (so double backward flows through them); any other array comes back as a constant."""
        if self._record:
            self._to_save = values

    def mark_non_differentiable(self, *outputs):
        """Declare outputs (arrays returned by forward) that have no gradient, like indices."""
        self._non_diff = outputs

    @property
    def needs_input_grad(self):
        """One bool per positional argument of forward: does it need a gradient?"""
        edges = self._next
        if edges is None:  # not recording: no argument needs a gradient
            return _NO_GRADS
        return tuple([e is not None for e in edges])

    @property
    def saved_tensors(self):
        """The values given to save_for_backward, as Tensors, checked for in-place changes."""
        saved = self._saved
        if saved is _FREED:
            self._raise_freed()
        if saved is None:
            return ()
        Tensor = _TENSOR[0] if _TENSOR else _tensor_class()
        linked = _State.enabled
        out = []
        for kind, data, a, box, version in saved:
            if box is not None and box[0] != version:
                self._raise_modified(data, box, version)
            if kind == "c" or not linked:
                out.append(Tensor._make(data, False, None, 0) if hasattr(data, "shape") else data)
            elif kind == "i":
                node, nr = a
                out.append(Tensor._make(data, True, node, nr))
            else:
                out.append(Tensor._make(data, True, self, a))
        return tuple(out)

    @property
    def saved_arrays(self):
        """The values given to save_for_backward as they were (arrays, not Tensors), checked
        for in-place changes: for backward formulas that compute on arrays directly when no
        graph is being recorded (``create_graph=False``)."""
        saved = self._saved
        if saved is _FREED:
            self._raise_freed()
        if saved is None:
            return ()
        out = []
        for _, data, _, box, version in saved:
            if box is not None and box[0] != version:
                self._raise_modified(data, box, version)
            out.append(data)
        return out

    def _raise_freed(self):
        raise errors.AutogradError(
            f"{type(self).__name__}: trying to backward through the graph a second time "
            "(or to read saved tensors after they were freed). Pass retain_graph=True to the "
            "first backward() or autograd.grad() call if you need to backward twice."
        )

    def _raise_modified(self, data, box, version):
        raise errors.AutogradError(
            f"{type(self).__name__}: a tensor saved for backward (shape "
            f"{errors.shape_str(data.shape)}) was modified by an in-place operation: its "
            f"version is {box[0]}, it was {version} when saved. Use an out-of-place op "
            "(x = x + y instead of x += y) or .clone() the tensor before changing it."
        )

    # ---- engine side -------------------------------------------------------------------------

    def _resolve_saved(self, args, arrays, results):
        # NOTE: an input's edge is the one apply just stored in ``_next`` (no second
        # ``_edge()`` call), and entries are 5-tuples built once: mul fwd with grad on 4x4
        # 3.8 -> 3.3 us (bench/overhead.py's fwd+bwd row pays it).
        edges = self._next
        saved = []
        for value in self._to_save:
            if value is None:
                saved.append(_SAVED_NONE)
                continue
            entry = None
            i = 0
            for arr in arrays:
                if arr is value:
                    box = getattr(args[i], "_version", None)
                    if box is not None:
                        edge = edges[i]
                        entry = ("i" if edge is not None else "c", arr, edge, box, box[0])
                        break
                i += 1
            if entry is None:
                for r in results:
                    if r._data is value:
                        box = r._version
                        entry = ("o" if r._rg else "c", value, r._output_nr, box, box[0])
                        break
                else:
                    entry = ("c", value, None, None, None)
            saved.append(entry)
        self._saved = saved
        self._to_save = None

    def _release(self):
        self._saved = _FREED

    def name(self):
        return type(self).__name__

    def register_prehook(self, nr, fn):
        if self._hooks is None:
            self._hooks = {}
        self._hooks.setdefault(nr, []).append(fn)
        return _HookHandle(self._hooks[nr], fn)

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError(
            "this Function defines no backward; it cannot be differentiated"
        )

    def __repr__(self):
        return f"<{type(self).__name__}Backward>"


class AccumulateGrad:
    """The node at a leaf: adds the incoming gradient into ``leaf.grad`` (after leaf hooks)."""

    __slots__ = ("leaf", "_next", "_hooks", "_n_out", "_out_meta", "__weakref__")

    def __init__(self, leaf):
        self.leaf = leaf
        self._next = ()
        self._hooks = None
        self._n_out = 1
        self._out_meta = ((leaf._data.shape, leaf._data.dtype),)

    def name(self):
        return "AccumulateGrad"

    def register_prehook(self, nr, fn):
        if self._hooks is None:
            self._hooks = {}
        self._hooks.setdefault(nr, []).append(fn)
        return _HookHandle(self._hooks[nr], fn)

    def _release(self):
        pass

    def __repr__(self):
        return "<AccumulateGrad>"


class _HookHandle:
    """Returned by register_hook; ``remove()`` takes the hook out again."""

    def __init__(self, hooks, fn):
        self._hooks = hooks
        self._fn = fn

    def remove(self):
        hooks = self._hooks
        if self._fn in hooks:
            hooks.remove(self._fn)


_TENSOR = []


def _tensor_class():
    if _TENSOR:
        return _TENSOR[0]
    from ember.tensor import Tensor  # noqa: PLC0415 - tensor.py imports this module

    _TENSOR.append(Tensor)
    return Tensor


def _as_array(out):
    """Forwards may return NumPy scalars (from reductions) or Python numbers: make 0-d arrays."""
    if hasattr(out, "__cuda_array_interface__"):
        return out
    return numpy.asarray(out)


def _as_saved_array(ctx, out):
    """``_as_array``, also swapping the new array into what forward saved, so a saved 0-d
    output (NumPy ufuncs return scalars for 0-d inputs) stays linked to its graph node."""
    arr = _as_array(out)
    saved = ctx._to_save
    if saved is not None and arr is not out:
        ctx._to_save = tuple(arr if s is out else s for s in saved)
    return arr


def _contains(seq, arr):
    return any(x is arr for x in seq)


def _raise_device_mismatch(cls, args):
    devices = [str(a.device) for a in args if hasattr(a, "_data")]
    raise errors.DeviceError(
        f"{cls.__name__}: expected all tensors on one device, got {', '.join(devices)}. "
        "Move them with .to(device) first."
    )
