"""Comparisons, logic and bitwise ops, and the nan/inf tests: eq/lt/..., logical_and/...,
bitwise_and/..., isnan/isinf/isfinite, isclose/allclose/equal.

Their results are bool or integer tensors, which never require grad, so the Functions here
are forward-only wrappers of one array-module function each (``_Ufunc``), with no backward.
Every name here is also importable from ``elementwise``.
"""

from ember import dtypes, errors
from ember.autograd.function import Function
from ember.ops import _common, elementwise
from ember.tensor import Tensor


class _Ufunc(Function):
    """An array-module function with a bool or integer result, so no backward."""

    ufunc = None

    @classmethod
    def forward(cls, ctx, *arrays):
        return getattr(ctx.xp, cls.ufunc)(*arrays)


def _ufunc_class(name, ufunc):
    return type(name, (_Ufunc,), {"ufunc": ufunc, "__doc__": f"``xp.{ufunc}``, no gradient."})


Eq = _ufunc_class("Eq", "equal")
Ne = _ufunc_class("Ne", "not_equal")
Lt = _ufunc_class("Lt", "less")
Le = _ufunc_class("Le", "less_equal")
Gt = _ufunc_class("Gt", "greater")
Ge = _ufunc_class("Ge", "greater_equal")
_LogicalAnd = _ufunc_class("LogicalAnd", "logical_and")
_LogicalOr = _ufunc_class("LogicalOr", "logical_or")
_LogicalXor = _ufunc_class("LogicalXor", "logical_xor")
_LogicalNot = _ufunc_class("LogicalNot", "logical_not")
_BitwiseAnd = _ufunc_class("BitwiseAnd", "bitwise_and")
_BitwiseOr = _ufunc_class("BitwiseOr", "bitwise_or")
_BitwiseXor = _ufunc_class("BitwiseXor", "bitwise_xor")
_BitwiseNot = _ufunc_class("BitwiseNot", "invert")
_IsNan = _ufunc_class("IsNan", "isnan")
_IsInf = _ufunc_class("IsInf", "isinf")
_IsFinite = _ufunc_class("IsFinite", "isfinite")
_IsClose = _ufunc_class("IsClose", "isclose")
_All = _ufunc_class("All", "all")


def eq(input, other):
    """``input == other`` elementwise (bool), broadcasting."""
    return elementwise._binary(Eq, "eq", input, other)


def ne(input, other):
    """``input != other`` elementwise (bool)."""
    return elementwise._binary(Ne, "ne", input, other)


def lt(input, other):
    """``input < other`` elementwise (bool)."""
    return elementwise._binary(Lt, "lt", input, other)


def le(input, other):
    """``input <= other`` elementwise (bool)."""
    return elementwise._binary(Le, "le", input, other)


def gt(input, other):
    """``input > other`` elementwise (bool)."""
    return elementwise._binary(Gt, "gt", input, other)


def ge(input, other):
    """``input >= other`` elementwise (bool)."""
    return elementwise._binary(Ge, "ge", input, other)


greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def logical_and(input, other):
    """Elementwise AND of the truth values (nonzero is true); bool result."""
    input = elementwise._tensor_arg("logical_and", input)
    return elementwise._apply_broadcasting(
        _LogicalAnd, "logical_and", input, _common.as_operand(other)
    )


def logical_or(input, other):
    """Elementwise OR of the truth values; bool result."""
    input = elementwise._tensor_arg("logical_or", input)
    return elementwise._apply_broadcasting(
        _LogicalOr, "logical_or", input, _common.as_operand(other)
    )


def logical_xor(input, other):
    """Elementwise XOR of the truth values; bool result."""
    input = elementwise._tensor_arg("logical_xor", input)
    return elementwise._apply_broadcasting(
        _LogicalXor, "logical_xor", input, _common.as_operand(other)
    )


def logical_not(input):
    """Elementwise NOT of the truth values; bool result."""
    return _LogicalNot.apply(elementwise._tensor_arg("logical_not", input))


def _integer_only(op_name, *operands):
    for x in operands:
        if elementwise._kind(x) == "f":
            what = dtypes.name(x.dtype) if hasattr(x, "dtype") else f"the number {x!r}"
            raise errors.DTypeError(
                f"{op_name}: only integer and bool tensors are supported, got {what}; for masks "
                "use bool tensors, or logical_and/logical_or/logical_not on any dtype"
            )


def bitwise_and(input, other):
    """Bitwise AND of integer or bool tensors (``&``)."""
    _integer_only("bitwise_and", input, other)
    return elementwise._binary(_BitwiseAnd, "bitwise_and", input, other)


def bitwise_or(input, other):
    """Bitwise OR of integer or bool tensors (``|``)."""
    _integer_only("bitwise_or", input, other)
    return elementwise._binary(_BitwiseOr, "bitwise_or", input, other)


def bitwise_xor(input, other):
    """Bitwise XOR of integer or bool tensors (``^``)."""
    _integer_only("bitwise_xor", input, other)
    return elementwise._binary(_BitwiseXor, "bitwise_xor", input, other)


def bitwise_not(input):
    """Bitwise NOT of an integer or bool tensor (``~``; logical NOT for bool)."""
    _integer_only("bitwise_not", elementwise._tensor_arg("bitwise_not", input))
    return _BitwiseNot.apply(input)


def isnan(input):
    """True where the element is nan."""
    return _IsNan.apply(elementwise._tensor_arg("isnan", input))


def isinf(input):
    """True where the element is +inf or -inf."""
    return _IsInf.apply(elementwise._tensor_arg("isinf", input))


def isfinite(input):
    """True where the element is neither nan nor infinite."""
    return _IsFinite.apply(elementwise._tensor_arg("isfinite", input))


def isposinf(input):
    """True where the element is +inf."""
    return logical_and(isinf(input), gt(input, 0))


def isneginf(input):
    """True where the element is -inf."""
    return logical_and(isinf(input), lt(input, 0))


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``|input - other| <= atol + rtol * |other|`` elementwise (bool); equal infinities are
    close. Both tensors must have the same dtype."""
    input, other = elementwise._tensor_arg("isclose", input), _common.as_operand(other)
    if isinstance(other, Tensor) and other._data.dtype != input._data.dtype:
        raise errors.DTypeError(
            f"isclose: input is {dtypes.name(input.dtype)} but other is "
            f"{dtypes.name(other.dtype)}; convert one first, e.g. other.to(input.dtype)"
        )
    return elementwise._apply_broadcasting(_IsClose, "isclose", input, other, rtol, atol, equal_nan)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True if every element of ``input`` is close to ``other`` (see isclose)."""
    return bool(_All.apply(isclose(input, other, rtol, atol, equal_nan)))


def equal(input, other):
    """True if both tensors have the same shape and the same elements."""
    if tuple(input.shape) != tuple(other.shape):
        return False
    return bool(_All.apply(eq(input, other)))


_METHODS_OF = (
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
    "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "isnan", "isinf",
    "isfinite", "isposinf", "isneginf", "isclose", "allclose", "equal", "greater",
    "greater_equal", "less", "less_equal", "not_equal",
)

TENSOR_METHODS = {name: globals()[name] for name in _METHODS_OF}
TENSOR_METHODS.update({
    "__and__": bitwise_and, "__rand__": _common.reflected(bitwise_and),
    "__or__": bitwise_or, "__ror__": _common.reflected(bitwise_or),
    "__xor__": bitwise_xor, "__rxor__": _common.reflected(bitwise_xor),
    "__invert__": bitwise_not,
    "__ne__": ne, "__lt__": lt, "__le__": le, "__gt__": gt, "__ge__": ge,
})
