"""The in-place forms of the elementwise ops: ``x.add_(y)``, ``x.clamp_(0)``, ``x += y``, and
``fill_``/``zero_``/``copy_``.

Each one computes the out-of-place op and writes the result into ``x``'s storage through
``_common.inplace``, which bumps the version counter and rebases the autograd graph, so no op
needs a second, in-place implementation. The list of ops with an in-place form lives here,
next to the operators (``__iadd__``, ...) that use them.
"""

from ember import errors
from ember.autograd.function import _Tracing
from ember.autograd.grad_mode import _State
from ember.ops import _common, elementwise
from ember.tensor import Tensor


def _inplace_method(fn, name):
    """``x.name(...)``: ``fn(x, ...)`` written into x's storage (see _common.inplace)."""

    def method(self, *args, **kwargs):
        def compute(source):
            # x.mul_(x): the other operand is the target too; read it from the snapshot, or the
            # op would save the very storage this call is about to overwrite.
            others = [source if a is self else a for a in args]
            return fn(source, *others, **kwargs)

        return _common.inplace(self, compute, name)

    method.__name__ = name
    method.__qualname__ = f"Tensor.{name}"
    method.__doc__ = f"In-place {fn.__name__}: writes the result into this tensor and returns it."
    return method


def _fill_(self, value):
    """Set every element to ``value`` (a number or a 0-d tensor); returns self."""
    if isinstance(value, Tensor) and value.ndim:
        raise errors.ShapeError(
            f"fill_: the value must be a number or a 0-d tensor, got a tensor of shape "
            f"{errors.shape_str(value.shape)}; use copy_ to copy a tensor in"
        )
    return _common.inplace(self, lambda source: elementwise.Overwrite.apply(source, value), "fill_")


def _zero_(self):
    """Set every element to zero; returns self."""
    return _common.inplace(self, lambda source: elementwise.Overwrite.apply(source, 0), "zero_")


def _copy_(self, src, non_blocking=False):
    """Copy ``src`` into this tensor, broadcasting it and converting its dtype and device;
    gradients flow to ``src``. Returns self."""
    if not isinstance(src, Tensor):
        src = _common.as_operand(src)
        if not isinstance(src, Tensor):
            raise errors.DTypeError(
                f"copy_: the source must be a tensor, got {type(src).__name__}; use fill_ for "
                "a number"
            )
    if src.device != self.device:
        src = src.to(self.device)
    try:
        return _common.inplace(
            self, lambda source: elementwise.Overwrite.apply(source, src), "copy_"
        )
    except ValueError as exc:
        if isinstance(exc, errors.EmberError):
            raise
        raise errors.ShapeError(
            f"copy_: a source of shape {errors.shape_str(src.shape)} cannot be broadcast to the "
            f"destination's shape {errors.shape_str(self.shape)}"
        ) from None


_INPLACE_OF = (
    "add", "sub", "mul", "div", "pow", "remainder", "fmod", "floor_divide", "neg", "negative",
    "abs", "absolute", "sign", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt",
    "rsqrt", "square", "reciprocal", "sin", "cos", "tan", "tanh", "sinh", "cosh", "asin", "acos",
    "atan", "asinh", "acosh", "atanh", "atan2", "erf", "erfc", "clamp", "clip", "lerp", "floor",
    "ceil", "trunc", "round", "frac", "nan_to_num", "addcmul", "addcdiv", "eq", "ne", "lt", "le",
    "gt", "ge", "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and",
    "bitwise_or", "bitwise_xor", "bitwise_not", "subtract", "multiply", "divide",
)
_INPLACE = {
    name + "_": _inplace_method(getattr(elementwise, name), name + "_") for name in _INPLACE_OF
}
_INPLACE.update(fill_=_fill_, zero_=_zero_, copy_=_copy_)


_UFUNC_OF = {"add_": "add", "sub_": "subtract", "mul_": "multiply", "div_": "true_divide"}


def _with_fast_path(name, general):
    """``general`` with a shortcut for plain arithmetic when nothing records it.

    NOTE: optimizer-style updates (``p.sub_(lr * g)``, ``buf.mul_(0.9)``) under no_grad do not
    need the general path's out-of-place result and copy back: the ufunc writes into the
    tensor's own storage (``out=``), saving one pass over memory and a temporary per call.
    Anything unusual (autograd recording, tracing, a dtype or shape the ufunc refuses, extra
    keywords) takes the general path, which also gives the clear errors.
    """
    ufunc_name = _UFUNC_OF[name]

    def method(self, other, **kwargs):
        if (kwargs and kwargs != {"alpha": 1}) or _Tracing.tracer is not None:
            return general(self, other, **kwargs)
        data = self._data
        if isinstance(other, Tensor):
            if _State.enabled and (self._rg or other._rg) or other._data.dtype != data.dtype:
                return general(self, other, **kwargs)
            operand = other._data
        elif isinstance(other, (int, float)) and not isinstance(other, bool):
            if _State.enabled and self._rg:
                return general(self, other, **kwargs)
            operand = other
        else:
            return general(self, other, **kwargs)
        if not data.flags.writeable or (isinstance(operand, float) and data.dtype.kind != "f"):
            return general(self, other, **kwargs)
        try:
            getattr(self.device.xp, ufunc_name)(data, operand, out=data)
        except (TypeError, ValueError):  # casting or broadcasting: let the general path explain
            return general(self, other, **kwargs)
        self._version[0] += 1
        return self

    method.__name__ = general.__name__
    method.__qualname__ = general.__qualname__
    method.__doc__ = general.__doc__
    return method


for _name in _UFUNC_OF:
    _INPLACE[_name] = _with_fast_path(_name, _INPLACE[_name])

TENSOR_METHODS = dict(_INPLACE)
TENSOR_METHODS.update({
    "__iadd__": _INPLACE["add_"], "__isub__": _INPLACE["sub_"], "__imul__": _INPLACE["mul_"],
    "__itruediv__": _INPLACE["div_"], "__ifloordiv__": _INPLACE["floor_divide_"],
    "__imod__": _INPLACE["remainder_"], "__ipow__": _INPLACE["pow_"],
    "__iand__": _INPLACE["bitwise_and_"], "__ior__": _INPLACE["bitwise_or_"],
    "__ixor__": _INPLACE["bitwise_xor_"],
})
