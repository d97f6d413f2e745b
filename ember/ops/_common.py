"""Helpers every op family shares: turning operands into Tensors of the promoted dtype, and
running an op in place under autograd."""

import numpy

from ember import dtypes, errors
from ember.autograd import grad_mode
from ember.autograd.function import _as_array, _Tracing
from ember.tensor import Tensor

_State = grad_mode._State
_SCALARS = (int, float, bool, numpy.integer, numpy.floating, numpy.bool_)


def constant(array):
    """A Tensor outside the graph around an array result (0-d NumPy scalars become 0-d
    arrays): what backward formulas computed directly on arrays return."""
    if type(array) is not numpy.ndarray:
        array = _as_array(array)
    return Tensor._make(array, False, None, 0)


def as_operand(x, like=None):
    """A Tensor for ``x``: Tensors pass through, NumPy arrays are wrapped, Python scalars stay."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, _SCALARS):
        return x
    if isinstance(x, (numpy.ndarray, list, tuple)):
        from ember import creation  # noqa: PLC0415

        return creation.as_tensor(x if not isinstance(x, (list, tuple)) else creation.tensor(x))
    if hasattr(x, "__cuda_array_interface__"):
        return Tensor._make(x, False, None, 0)
    raise errors.DTypeError(f"expected a Tensor or a number, got {type(x).__name__}")


def promote(op_name, *operands):
    """Bring Tensor operands to PyTorch's result dtype; Python scalars are left to the array
    library, which keeps the tensor's dtype for them (NumPy 2 weak scalars).

    Returns (operands, result_dtype).
    """
    ops = [as_operand(x) for x in operands]
    rt = dtypes.result_type(*ops)
    out = []
    for x in ops:
        if isinstance(x, Tensor):
            if x._data.dtype != rt:
                from ember.ops import elementwise  # noqa: PLC0415

                x = elementwise.cast(x, rt)
        elif not isinstance(x, (bool, numpy.bool_)) and rt.kind == "b":
            pass
        else:
            x = _scalar_as(x, rt)
        out.append(x)
    return out, rt


def _scalar_as(x, rt):
    if rt.kind == "f":
        return float(x)
    if rt.kind in "iu":
        return int(x)
    return bool(x)


def float_operand(op_name, x):
    """Tensors of integer/bool dtype become the default float dtype (sqrt(int) -> float)."""
    if x._data.dtype.kind != "f":
        from ember.ops import elementwise  # noqa: PLC0415

        return elementwise.cast(x, dtypes.get_default_dtype())
    return x


def inplace(target, compute, op_name):
    """Run ``compute(source)`` and write its result into ``target``'s storage (PyTorch's
    in-place semantics): views of ``target`` see the change, its version counter moves so
    stale saved tensors are detected, and under autograd ``target`` becomes the result's node.

    Under recording, ``compute`` gets a snapshot of ``target`` linked to the same graph edge,
    so the op's own saved copy is not the storage about to be overwritten.
    """
    recording = _State.enabled
    if recording and target._rg:
        if target._grad_fn is None:
            raise errors.AutogradError(
                f"{op_name}: a leaf tensor that requires grad is used in an in-place operation. "
                "Wrap the update in `with ember.no_grad():` (as optimizers do) or use the "
                "out-of-place form."
            )
    if recording:
        source = Tensor._make(target._data.copy(), target._rg, target._grad_fn, target._output_nr)
    else:
        source = target
    result = compute(source)
    if recording and result._rg and target._base is not None:
        raise errors.AutogradError(
            f"{op_name}: in-place change of a view (a slice, reshape or transpose of another "
            "tensor) under autograd is not supported; use the out-of-place form, or .clone() "
            "the view first"
        )
    data = result._data
    if data.shape != target._data.shape:
        raise errors.ShapeError(
            f"{op_name}: the result of shape {errors.shape_str(data.shape)} cannot be written in "
            f"place into a tensor of shape {errors.shape_str(target._data.shape)}"
        )
    tdt = target._data.dtype
    if data.dtype != tdt and dtypes.category(data.dtype) > dtypes.category(tdt):
        raise errors.DTypeError(
            f"{op_name}: result type {dtypes.name(data.dtype)} can't be cast to the in-place "
            f"tensor's dtype {dtypes.name(tdt)}; use the out-of-place form"
        )
    if target._data is not data:
        target._data[...] = data
    target._version[0] += 1
    if _Tracing.tracer is not None and hasattr(_Tracing.tracer, "alias"):
        _Tracing.tracer.alias(target, result)
    if recording and result._rg:
        if data.dtype != tdt:
            from ember.ops import elementwise  # noqa: PLC0415

            result = elementwise.cast(result, tdt)
        target._grad_fn = result._grad_fn
        target._output_nr = result._output_nr
        target._rg = True
    return target


def normalize_dim(dim, ndim, op_name):
    """A dim in [-ndim, ndim) turned non-negative, or an IndexError naming the op."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"{op_name}: dimension {dim} is out of range for a tensor with {ndim} dimensions "
            f"(expected a dim in [{-n}, {n - 1}])"
        )
    return dim % n


def normalize_dims(dim, ndim, op_name):
    """None (all dims), an int or a sequence of ints -> a sorted tuple of non-negative dims."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (int, numpy.integer)):
        return (normalize_dim(int(dim), ndim, op_name),)
    dims = tuple(normalize_dim(int(d), ndim, op_name) for d in dim)
    if len(set(dims)) != len(dims):
        raise ValueError(f"{op_name}: dim {tuple(dim)} repeats a dimension")
    return tuple(sorted(dims))


def reflected(fn):
    """The reflected operator method for ``fn``: ``x.__rmod__(y)`` is ``fn(y, x)``."""

    def method(self, other):
        return fn(other, self)

    method.__name__ = f"__r{fn.__name__}__"
    return method


def reexport(namespace, *modules):
    """Bind into ``namespace`` (a module's globals) every public function and class that
    ``modules`` define, aliases included: a family split into several files keeps all its
    names importable from the original module. Names ``namespace`` already has are kept."""
    for module in modules:
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if callable(obj):
                namespace.setdefault(name, obj)
