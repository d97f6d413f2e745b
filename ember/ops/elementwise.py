"""Elementwise math: arithmetic, exponentials, trigonometry, erf, clamping, rounding,
comparisons, logic, and the in-place forms.

Binary ops broadcast like PyTorch; their backward returns gradients in the broadcast shape
and the engine sums them back to each input's shape. Dtypes follow PyTorch's promotion
(``_common.promote``): Python scalars are handed to the array library as Python numbers, which
NumPy 2 treats as weak, so ``float32_tensor * 2.5`` stays float32 and ``int_tensor + 2.5`` is
float32. Float-only math on integer tensors (``sqrt``, ``exp``) runs in the default float dtype.

Gradients are written with ember ops, so every backward here is itself differentiable.
Comparisons, logic and bitwise ops return bool/integer tensors and have no gradient.
"""

import builtins
import math

import numpy

from ember import dtypes, errors
from ember.autograd.function import Function
from ember.ops import _common
from ember.tensor import Tensor

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


class _IntegerDivisionByZero(errors.EmberError, ZeroDivisionError):
    """Integer division or remainder by zero (PyTorch raises too; NumPy would return 0)."""


# ---- shared plumbing ---------------------------------------------------------------------


def _quiet():
    """Silence NumPy's divide/invalid/overflow warnings: like PyTorch, ``1 / 0`` is inf and
    ``log(-1)`` is nan without a warning. Used only by ops that can produce them."""
    return numpy.errstate(divide="ignore", invalid="ignore", over="ignore")


def _broadcast_error(op_name, a, b):
    sa = errors.shape_str(getattr(a, "shape", ()))
    sb = errors.shape_str(getattr(b, "shape", ()))
    return errors.ShapeError(
        f"{op_name}: shapes {sa} and {sb} cannot be broadcast together (sizes must match or be "
        "1, aligned from the right); reshape or unsqueeze one of them"
    )


def _apply_broadcasting(cls, op_name, *args):
    """``cls.apply(*args)`` with NumPy's broadcast failure turned into an ember ShapeError."""
    try:
        return cls.apply(*args)
    except ValueError as exc:
        if "broadcast" in str(exc) and not isinstance(exc, errors.EmberError):
            tensors = [a for a in args if isinstance(a, Tensor)]
            raise _broadcast_error(op_name, *(tensors + [(), ()])[:2]) from None
        raise


def _binary(cls, op_name, a, b):
    """Apply a binary Function after PyTorch's dtype promotion, with a clear broadcast error."""
    if not (type(a) is Tensor and type(b) is Tensor and a._data.dtype == b._data.dtype):
        (a, b), _ = _common.promote(op_name, a, b)
    return _apply_broadcasting(cls, op_name, a, b)


def _tensor_arg(op_name, x):
    """The Tensor argument of a unary op, or a DTypeError saying how to make one."""
    if isinstance(x, Tensor):
        return x
    raise errors.DTypeError(
        f"{op_name}: expected a Tensor, got {type(x).__name__}; wrap the value with "
        "ember.tensor(...)"
    )


def _float_arg(op_name, x):
    """A floating Tensor for float-only math (integers and bools -> the default float dtype)."""
    return _common.float_operand(op_name, _tensor_arg(op_name, x))


def _zeros_like(x):
    return Tensor._make(x.device.xp.zeros_like(x._data), False, None, 0)


def _ones_like(x):
    return Tensor._make(x.device.xp.ones_like(x._data), False, None, 0)


def _kind(x):
    """'f', 'i', 'u' or 'b' for a Tensor or a Python number."""
    dt = getattr(x, "dtype", None)
    if dt is not None:
        return dt.kind
    if isinstance(x, (bool, numpy.bool_)):
        return "b"
    return "i" if isinstance(x, (int, numpy.integer)) else "f"


def _check_int_divisor(op_name, xp, a, b):
    """Raise for an integer division by zero instead of returning NumPy's silent 0."""
    if _kind(a) == "f" or _kind(b) == "f":
        return
    if hasattr(b, "dtype"):
        has_zero = b.size > 0 and bool(xp.any(b == 0))
    else:
        has_zero = b == 0
    if has_zero:
        raise _IntegerDivisionByZero(
            f"{op_name}: integer division by zero (the divisor has zeros); convert to float "
            "first (x.float()) to get inf/nan, or mask the zeros out"
        )


# ---- casting and copying -----------------------------------------------------------------


class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        ctx.src = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, gy):
        return cast(gy, ctx.src) if gy.dtype.kind == "f" and ctx.src.kind == "f" else gy


def cast(x, dtype):
    """``x`` converted to ``dtype`` (differentiable between float dtypes)."""
    dtype = dtypes.as_dtype(dtype)
    if x._data.dtype == dtype:
        return x
    return Cast.apply(x, dtype)


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, gy):
        return gy


def clone(input, *, memory_format=None):
    """A copy of ``input`` with its own storage; gradients flow back to ``input``."""
    return Clone.apply(_tensor_arg("clone", input))


class Overwrite(Function):
    """Every element of ``x`` replaced by ``src`` (broadcast and cast to x's dtype): the
    out-of-place heart of fill_/zero_/copy_. ``x`` gets no gradient; ``src`` gets all of it."""

    @staticmethod
    def forward(ctx, x, src):
        out = ctx.xp.empty_like(x)
        out[...] = src
        return out

    @staticmethod
    def backward(ctx, gy):
        return None, gy


# ---- arithmetic ----------------------------------------------------------------------------


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, gy):
        return gy, gy


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, gy):
        return gy, -gy


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[:2]
        return (gy * b if need_a else None), (gy * a if need_b else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        with _quiet():
            return a / b

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[:2]
        ga = gy / b if need_a else None
        gb = -gy * a / (b * b) if need_b else None
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, gy):
        return -gy


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        with _quiet():
            y = ctx.xp.asarray(a**b)  # a saved output must be an array, not a scalar
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        a, b, y = ctx.saved_tensors  # a or b may be a Python number
        need_a, need_b = ctx.needs_input_grad[:2]
        ga = gb = None
        if need_a:
            # b * a**(b-1), not b * y / a, so a == 0 stays finite; PyTorch defines the
            # gradient as exactly 0 where b == 0 (0 * inf would give nan at a == 0).
            if not isinstance(b, Tensor):
                ga = gy * b * a ** (b - 1) if b != 0 else _zeros_like(gy)
            else:
                zero_exp = b == 0
                ga = gy * b * a ** where(zero_exp, 1.0, b - 1)
                ga = where(zero_exp, 0.0, ga)
        if need_b:
            gb = gy * _pow_log_term(a, b, y)
        return ga, gb


def _pow_log_term(a, b, y):
    """y * log(a), the exponent's derivative, defined as 0 where a == 0 and b >= 0 (PyTorch)."""
    if not isinstance(a, Tensor):
        if a > 0:
            return y * math.log(a)
        if a == 0:
            return where(b >= 0, 0.0, -math.inf * _ones_like(y))
        return y * math.nan
    zero_base = (a == 0) & (b >= 0)
    # log of a masked base, so that the unused branch holds no inf that a second
    # differentiation would turn into nan.
    safe_log = log(where(zero_base, 1.0, a))
    return where(zero_base, 0.0, y * safe_log)


class Remainder(Function):
    """Python-style remainder (sign of the divisor), PyTorch's ``%``."""

    @staticmethod
    def forward(ctx, a, b):
        _check_int_divisor("remainder", ctx.xp, a, b)
        ctx.save_for_backward(a, b)
        with _quiet():
            return ctx.xp.remainder(a, b)

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[:2]
        gb = -gy * floor_divide(a, b) if need_b else None
        return (gy if need_a else None), gb


class Fmod(Function):
    """C-style remainder (sign of the dividend)."""

    @staticmethod
    def forward(ctx, a, b):
        _check_int_divisor("fmod", ctx.xp, a, b)
        ctx.save_for_backward(a, b)
        with _quiet():
            return ctx.xp.fmod(a, b)

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[:2]
        gb = -gy * div(a, b, rounding_mode="trunc") if need_b else None
        return (gy if need_a else None), gb


class RoundedDiv(Function):
    """Division rounded toward -inf ('floor') or 0 ('trunc'): piecewise constant, so the
    gradient is zero (as PyTorch defines it for div with a rounding_mode)."""

    @staticmethod
    def forward(ctx, a, b, mode):
        xp = ctx.xp
        _check_int_divisor(f"div(rounding_mode={mode!r})", xp, a, b)
        with _quiet():
            q = xp.floor_divide(a, b)
            if mode == "trunc":
                if getattr(q, "dtype", None) is not None and q.dtype.kind == "f":
                    return xp.trunc(a / b)
                # floor overshoots by one where the signs differ and there is a remainder
                return q + ((xp.remainder(a, b) != 0) & ((a < 0) != (b < 0)))
            return q

    @staticmethod
    def backward(ctx, gy):
        zero = _zeros_like(gy)
        return zero, zero, None


def add(input, other, *, alpha=1):
    """``input + alpha * other``, broadcasting."""
    if alpha != 1:
        other = mul(other, alpha)
    return _binary(Add, "add", input, other)


def sub(input, other, *, alpha=1):
    """``input - alpha * other``, broadcasting. Two bool tensors cannot be subtracted."""
    if _kind(input) == "b" and _kind(other) == "b":
        raise errors.DTypeError(
            "sub: subtraction of two bool tensors is not supported; use the ^ operator or "
            "logical_xor() instead"
        )
    if alpha != 1:
        other = mul(other, alpha)
    return _binary(Sub, "sub", input, other)


def mul(input, other):
    """Elementwise product, broadcasting."""
    return _binary(Mul, "mul", input, other)


def div(input, other, *, rounding_mode=None):
    """``input / other``. Without ``rounding_mode`` this is true division (integers give the
    default float dtype); 'trunc' rounds toward zero, 'floor' toward minus infinity and both
    keep integer dtypes."""
    if rounding_mode is None:
        (a, b), rt = _common.promote("div", input, other)
        if rt.kind != "f":
            fdt = dtypes.get_default_dtype()
            a = cast(a, fdt) if isinstance(a, Tensor) else float(a)
            b = cast(b, fdt) if isinstance(b, Tensor) else float(b)
        return _apply_broadcasting(Div, "div", a, b)
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(
            f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}"
        )
    (a, b), _ = _common.promote("div", input, other)
    return _apply_broadcasting(RoundedDiv, "div", a, b, rounding_mode)


def floor_divide(input, other):
    """Division rounded toward minus infinity (PyTorch's ``//``); zero gradient."""
    return div(input, other, rounding_mode="floor")


def remainder(input, other):
    """``input - floor(input / other) * other``: the result has the sign of ``other`` (``%``)."""
    return _binary(Remainder, "remainder", input, other)


def fmod(input, other):
    """C-style remainder: the result has the sign of ``input``."""
    return _binary(Fmod, "fmod", input, other)


def neg(input):
    """``-input``. Bool tensors have no negation: use ``~`` or logical_not()."""
    input = _tensor_arg("neg", input)
    if input._data.dtype.kind == "b":
        raise errors.DTypeError(
            "neg: negation of a bool tensor is not supported; to invert a mask use the ~ "
            "operator or logical_not()"
        )
    return Neg.apply(input)


def positive(input):
    """``input`` itself (``+x``)."""
    return _tensor_arg("positive", input)


def pow(input, exponent):
    """``input ** exponent``, broadcasting; either may be a Python number."""
    (a, b), rt = _common.promote("pow", input, exponent)
    if rt.kind in "iu":
        negative = bool((b._data < 0).any()) if isinstance(b, Tensor) else b < 0
        if negative:
            raise errors.DTypeError(
                f"pow: integers to negative integer powers are not allowed ({dtypes.name(rt)} "
                "base); convert the base to float first, e.g. x.float() ** -1"
            )
    return _apply_broadcasting(Pow, "pow", a, b)


def rsub(input, other, *, alpha=1):
    """``other - alpha * input``."""
    return sub(other, mul(input, alpha) if alpha != 1 else input)


def square(input):
    """``input * input`` (bool squares to int64, like PyTorch)."""
    input = _tensor_arg("square", input)
    if input._data.dtype.kind == "b":
        input = cast(input, dtypes.int64)
    return pow(input, 2)


def addcmul(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 * tensor2``."""
    return add(input, mul(tensor1, tensor2), alpha=value)


def addcdiv(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 / tensor2``."""
    return add(input, div(tensor1, tensor2), alpha=value)


# ---- exponentials, logarithms, roots -------------------------------------------------------


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.asarray(ctx.xp.exp(x))  # asarray: 0-d inputs give NumPy scalars
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy * y


class Exp2(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.asarray(ctx.xp.exp2(x))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy * y * _LN2


class Expm1(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.asarray(ctx.xp.expm1(x))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy * (y + 1)


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with _quiet():
            return ctx.xp.log(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy / x


class Log2(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with _quiet():
            return ctx.xp.log2(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy / (x * _LN2)


class Log10(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with _quiet():
            return ctx.xp.log10(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy / (x * _LN10)


class Log1p(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with _quiet():
            return ctx.xp.log1p(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy / (x + 1)


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        with _quiet():
            y = ctx.xp.asarray(ctx.xp.sqrt(x))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy / (y * 2)  # inf at x == 0, as in PyTorch


class Rsqrt(Function):
    @staticmethod
    def forward(ctx, x):
        with _quiet():
            y = ctx.xp.asarray(1 / ctx.xp.sqrt(x))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy * y * y * y * -0.5


class Reciprocal(Function):
    @staticmethod
    def forward(ctx, x):
        with _quiet():
            y = ctx.xp.asarray(1 / x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return -(gy * y * y)


def exp(input):
    """e to the power of each element."""
    return Exp.apply(_float_arg("exp", input))


def exp2(input):
    """2 to the power of each element."""
    return Exp2.apply(_float_arg("exp2", input))


def expm1(input):
    """``exp(input) - 1``, accurate for small inputs."""
    return Expm1.apply(_float_arg("expm1", input))


def log(input):
    """Natural logarithm (nan below 0, -inf at 0)."""
    return Log.apply(_float_arg("log", input))


def log2(input):
    """Base-2 logarithm."""
    return Log2.apply(_float_arg("log2", input))


def log10(input):
    """Base-10 logarithm."""
    return Log10.apply(_float_arg("log10", input))


def log1p(input):
    """``log(1 + input)``, accurate for small inputs."""
    return Log1p.apply(_float_arg("log1p", input))


def sqrt(input):
    """Square root; its gradient at 0 is inf."""
    return Sqrt.apply(_float_arg("sqrt", input))


def rsqrt(input):
    """``1 / sqrt(input)``."""
    return Rsqrt.apply(_float_arg("rsqrt", input))


def reciprocal(input):
    """``1 / input`` (integers give the default float dtype)."""
    return Reciprocal.apply(_float_arg("reciprocal", input))


# ---- trigonometric and hyperbolic ----------------------------------------------------------


class Sin(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.sin(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * cos(x)


class Cos(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.cos(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return -(gy * sin(x))


class Tan(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.asarray(ctx.xp.tan(x))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy * (y * y + 1)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.asarray(ctx.xp.tanh(x))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy * (1 - y * y)


class Sinh(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with _quiet():
            return ctx.xp.sinh(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * cosh(x)


class Cosh(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with _quiet():
            return ctx.xp.cosh(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * sinh(x)


class Asin(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with _quiet():
            return ctx.xp.arcsin(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * rsqrt(1 - x * x)


class Acos(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with _quiet():
            return ctx.xp.arccos(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return -(gy * rsqrt(1 - x * x))


class Atan(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.arctan(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy / (x * x + 1)


class Asinh(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.arcsinh(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * rsqrt(x * x + 1)


class Acosh(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with _quiet():
            return ctx.xp.arccosh(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * rsqrt(x * x - 1)


class Atanh(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with _quiet():
            return ctx.xp.arctanh(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy / (1 - x * x)


class Atan2(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.xp.arctan2(a, b)

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[:2]
        scale = gy / (a * a + b * b)
        return (scale * b if need_a else None), (-(scale * a) if need_b else None)


def sin(input):
    """Sine, in radians."""
    return Sin.apply(_float_arg("sin", input))


def cos(input):
    """Cosine, in radians."""
    return Cos.apply(_float_arg("cos", input))


def tan(input):
    """Tangent, in radians."""
    return Tan.apply(_float_arg("tan", input))


def tanh(input):
    """Hyperbolic tangent (the backward uses the saved output)."""
    return Tanh.apply(_float_arg("tanh", input))


def sinh(input):
    """Hyperbolic sine."""
    return Sinh.apply(_float_arg("sinh", input))


def cosh(input):
    """Hyperbolic cosine."""
    return Cosh.apply(_float_arg("cosh", input))


def asin(input):
    """Inverse sine (nan outside [-1, 1])."""
    return Asin.apply(_float_arg("asin", input))


def acos(input):
    """Inverse cosine (nan outside [-1, 1])."""
    return Acos.apply(_float_arg("acos", input))


def atan(input):
    """Inverse tangent."""
    return Atan.apply(_float_arg("atan", input))


def asinh(input):
    """Inverse hyperbolic sine."""
    return Asinh.apply(_float_arg("asinh", input))


def acosh(input):
    """Inverse hyperbolic cosine (nan below 1)."""
    return Acosh.apply(_float_arg("acosh", input))


def atanh(input):
    """Inverse hyperbolic tangent (nan outside [-1, 1])."""
    return Atanh.apply(_float_arg("atanh", input))


def atan2(input, other):
    """The angle of the point (other, input): ``atan(input / other)`` in the right quadrant."""
    (a, b), rt = _common.promote("atan2", _tensor_arg("atan2", input), other)
    if rt.kind != "f":
        a = _common.float_operand("atan2", a)
        b = cast(b, a._data.dtype) if isinstance(b, Tensor) else float(b)
    return _apply_broadcasting(Atan2, "atan2", a, b)


# ---- the error function --------------------------------------------------------------------
#
# NumPy has no erf. We evaluate it with polynomials interpolated once (on first use, at
# Chebyshev nodes) through reference values on a few intervals of |x|:
#   |x| < 1      erf(x) = x * P(x^2)               P smooth in x^2, so tiny x keep full
#                                                  relative accuracy
#   |x| >= 1     erfc(|x|) = exp(-x^2) * Q(|x|) / |x|
#                with Q(x) = x * exp(x^2) * erfc(x) slowly varying: on [1, 2.5] and [2.5, 5] as
#                a series in x, beyond 5 as a series in 1/x (Q -> 1/sqrt(pi) as x -> inf).
# The reference values come from math.erf/erfc for small x and from Laplace's continued
# fraction for Q where erfc itself would lose digits. Accuracy is ~1e-15 relative for erf and
# ~1e-13 for erfc in float64 (the tests compare with PyTorch).

_ERF_PIECES = None


def _chebyshev_fit(f, lo, hi, n):
    """Power-series coefficients, in t = (x - mid) / half_width, of the degree n-1 Chebyshev
    interpolant of ``f`` on [lo, hi]. Fitting in the Chebyshev basis is well conditioned; the
    coefficients of these smooth functions stay below 1 in the power basis, so Horner's rule
    (two passes per degree instead of Clenshaw's three) loses nothing."""
    k = numpy.arange(n)
    theta = numpy.pi * (k + 0.5) / n
    nodes = (lo + hi) / 2 + (hi - lo) / 2 * numpy.cos(theta)
    values = numpy.array([f(float(v)) for v in nodes])
    cheb = numpy.array([2.0 / n * numpy.dot(values, numpy.cos(j * theta)) for j in range(n)])
    cheb[0] /= 2
    return tuple(float(c) for c in numpy.polynomial.chebyshev.cheb2poly(cheb))


def _horner(xp, coef, t):
    """Sum of coef[k] * t**k, evaluated in place."""
    acc = xp.full_like(t, coef[-1])
    for c in coef[-2::-1]:
        acc *= t
        acc += c
    return acc


def _erfc_scaled_reference(x):
    """x * exp(x^2) * erfc(x) for x >= 1, to double precision."""
    if x < 2.5:
        return x * math.exp(x * x) * math.erfc(x)
    # Laplace's continued fraction x / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...)))),
    # divided by sqrt(pi); 60 levels are ample for x >= 2.5.
    d = x
    for k in range(60, 0, -1):
        d = x + (k / 2) / d
    return x / d / math.sqrt(math.pi)


def _erf_pieces():
    global _ERF_PIECES
    if _ERF_PIECES is None:
        small = _chebyshev_fit(
            lambda u: math.erf(math.sqrt(u)) / math.sqrt(u) if u > 0 else _TWO_OVER_SQRT_PI,
            0.0, 1.0, 14,
        )
        mid = _chebyshev_fit(_erfc_scaled_reference, 1.0, 2.5, 19)
        high = _chebyshev_fit(_erfc_scaled_reference, 2.5, 5.0, 19)
        tail = _chebyshev_fit(
            lambda s: _erfc_scaled_reference(1 / s) if s > 0 else 1 / math.sqrt(math.pi),
            0.0, 0.2, 15,
        )
        _ERF_PIECES = (small, mid, high, tail)
    return _ERF_PIECES


def _erfc_of_abs(xp, a, mid, high, tail):
    """erfc(a) for an array a >= 1 (nan stays nan, inf gives 0)."""
    a = xp.minimum(a, 40.0)  # erfc(27) already underflows; avoids overflow in a * a
    out = xp.empty_like(a)
    in_mid = a < 2.5
    in_high = (a >= 2.5) & (a < 5.0)
    in_tail = ~(in_mid | in_high)  # includes nan
    pieces = (
        (in_mid, mid, lambda v: (v - 1.75) / 0.75),  # [1, 2.5] onto [-1, 1]
        (in_high, high, lambda v: (v - 3.75) / 1.25),  # [2.5, 5] onto [-1, 1]
        (in_tail, tail, lambda v: 10.0 / v - 1.0),  # 1/v in (0, 0.2] onto (-1, 1]
    )
    for mask, coef, to_unit in pieces:
        v = a[mask]
        if v.size:
            out[mask] = xp.exp(-(v * v)) * _horner(xp, coef, to_unit(v)) / v
    return out


def _erf_array(xp, x, complement):
    """erf(x), or erfc(x) when ``complement``, for a floating array."""
    work = x.astype(numpy.float32) if x.dtype == numpy.float16 else x
    small, mid, high, tail = _erf_pieces()
    a = xp.abs(work)
    out = xp.empty_like(work)
    near = a < 1.0
    xn = work[near]
    e = xn * _horner(xp, small, xn * xn * 2 - 1)
    out[near] = 1 - e if complement else e
    far = ~near
    xf = work[far]
    c = _erfc_of_abs(xp, a[far], mid, high, tail)
    out[far] = xp.where(xf < 0, 2 - c, c) if complement else xp.copysign(1 - c, xf)
    return out.astype(x.dtype, copy=False)


class Erf(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _erf_array(ctx.xp, x, complement=False)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * exp(-(x * x)) * _TWO_OVER_SQRT_PI


class Erfc(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _erf_array(ctx.xp, x, complement=True)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * exp(-(x * x)) * -_TWO_OVER_SQRT_PI


def erf(input):
    """The Gauss error function, ``2/sqrt(pi) * integral from 0 to x of exp(-t^2) dt``."""
    return Erf.apply(_float_arg("erf", input))


def erfc(input):
    """``1 - erf(input)``, accurate where erf is close to 1."""
    return Erfc.apply(_float_arg("erfc", input))


# ---- sign, clamping, selection -------------------------------------------------------------


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.abs(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * sign(x)  # 0 at x == 0, as in PyTorch


class Sign(Function):
    @staticmethod
    def forward(ctx, x):
        return ctx.xp.sign(x)

    @staticmethod
    def backward(ctx, gy):
        return _zeros_like(gy)


def abs(input):
    """Absolute value; the gradient at 0 is 0."""
    return Abs.apply(_tensor_arg("abs", input))


def sign(input):
    """-1, 0 or 1 by the sign of each element (zero gradient)."""
    input = _tensor_arg("sign", input)
    if input._data.dtype.kind == "b":
        return clone(input)
    return Sign.apply(input)


class Clamp(Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        y = x
        if lo is not None:
            y = ctx.xp.maximum(y, lo)
        if hi is not None:
            y = ctx.xp.minimum(y, hi)
        ctx.save_for_backward(x, lo, hi)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, lo, hi = ctx.saved_tensors
        need_x, need_lo, need_hi = ctx.needs_input_grad[:3]
        gx = glo = ghi = None
        if need_x:
            # The bounds are inclusive: x sitting exactly on a bound keeps its gradient.
            keep = None
            if lo is not None:
                keep = x >= lo
            if hi is not None:
                keep = x <= hi if keep is None else logical_and(keep, x <= hi)
            gx = where(keep, gy, 0.0)
        if need_lo:
            # PyTorch's rule: when min > max the output is max, so only max gets the gradient.
            took_lo = x < lo if hi is None else logical_and(x < lo, lo < hi)
            glo = where(took_lo, gy, 0.0)
        if need_hi:
            took_hi = x > hi if lo is None else logical_or(x > hi, hi < lo)
            ghi = where(took_hi, gy, 0.0)
        return gx, glo, ghi


def clamp(input, min=None, max=None):
    """Limit each element to [min, max]; either bound may be a number, a tensor, or None.
    Where min > max the result is max. The dtype follows promotion with the bounds."""
    input = _tensor_arg("clamp", input)
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given (both are None)")
    given = [v for v in (min, max) if v is not None]
    promoted, _ = _common.promote("clamp", input, *given)
    x, bounds = promoted[0], iter(promoted[1:])
    lo = next(bounds) if min is not None else None
    hi = next(bounds) if max is not None else None
    return _apply_broadcasting(Clamp, "clamp", x, lo, hi)


clip = clamp


class _Extremum(Function):
    """maximum/minimum. On ties each input gets half the gradient, as in PyTorch."""

    ufunc = None

    @classmethod
    def forward(cls, ctx, a, b):
        ctx.save_for_backward(a, b)
        return getattr(ctx.xp, cls.ufunc)(a, b)

    @classmethod
    def backward(cls, ctx, gy):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[:2]
        a_lost, b_lost = (a < b, a > b) if cls.ufunc == "maximum" else (a > b, a < b)
        shared = where(a == b, gy * 0.5, gy)
        ga = where(a_lost, 0.0, shared) if need_a else None
        gb = where(b_lost, 0.0, shared) if need_b else None
        return ga, gb


class Maximum(_Extremum):
    ufunc = "maximum"


class Minimum(_Extremum):
    ufunc = "minimum"


def maximum(input, other):
    """Elementwise maximum (nan if either is nan), broadcasting."""
    return _binary(Maximum, "maximum", _tensor_arg("maximum", input), other)


def minimum(input, other):
    """Elementwise minimum (nan if either is nan), broadcasting."""
    return _binary(Minimum, "minimum", _tensor_arg("minimum", input), other)


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return ctx.xp.where(cond, a, b)

    @staticmethod
    def backward(ctx, gy):
        (cond,) = ctx.saved_tensors
        need = ctx.needs_input_grad
        ga = where(cond, gy, 0.0) if need[1] else None
        gb = where(cond, 0.0, gy) if need[2] else None
        return None, ga, gb


class NonZero(Function):
    @staticmethod
    def forward(ctx, cond):
        return tuple(i.astype(numpy.int64, copy=False) for i in ctx.xp.nonzero(cond))


def where(condition, input=None, other=None):
    """Elements of ``input`` where ``condition`` holds, else of ``other`` (either may be a
    number). ``where(condition)`` alone gives the indices of the true elements, one int64
    tensor per dimension."""
    cond = _as_bool(condition)
    if input is None and other is None:
        return NonZero.apply(cond)
    if input is None or other is None:
        raise TypeError("where: give both input and other, or neither")
    (a, b), rt = _common.promote("where", input, other)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = Tensor._make(cond.device.xp.asarray(a, dtype=rt), False, None, 0)
    try:
        return Where.apply(cond, a, b)
    except ValueError as exc:
        if "broadcast" in str(exc) and not isinstance(exc, errors.EmberError):
            raise errors.ShapeError(
                f"where: condition {errors.shape_str(cond.shape)}, input "
                f"{errors.shape_str(getattr(a, 'shape', ()))} and other "
                f"{errors.shape_str(getattr(b, 'shape', ()))} cannot be broadcast together"
            ) from None
        raise


def _as_bool(c):
    if isinstance(c, Tensor):
        return c if c._data.dtype.kind == "b" else Tensor._make(c._data != 0, False, None, 0)
    from ember import creation  # noqa: PLC0415

    return creation.as_tensor(c).bool()


def lerp(input, end, weight):
    """``input + weight * (end - input)``, broadcasting; ``weight`` is a number or a tensor."""
    input = _tensor_arg("lerp", input)
    diff = sub(end, input)
    # Like PyTorch, interpolate from whichever end is nearer, which is exact at weight == 1.
    if isinstance(weight, Tensor):
        near_start = add(input, mul(weight, diff))
        near_end = sub(end, mul(diff, rsub(weight, 1)))
        return where(abs(weight) < 0.5, near_start, near_end)
    if builtins.abs(weight) < 0.5:
        return add(input, mul(diff, weight))
    return sub(end, mul(diff, 1 - weight))


class NanToNum(Function):
    @staticmethod
    def forward(ctx, x, nan, posinf, neginf):
        ctx.save_for_backward(x)
        return ctx.xp.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return where(isfinite(x), gy, 0.0), None, None, None


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """nan -> ``nan``, +inf -> ``posinf``, -inf -> ``neginf`` (default: the dtype's largest and
    lowest finite values). Gradient passes only through the finite elements."""
    input = _tensor_arg("nan_to_num", input)
    if input._data.dtype.kind != "f":
        return clone(input)
    return NanToNum.apply(input, nan, posinf, neginf)


# ---- rounding (zero gradient) ----------------------------------------------------------------


class Rounding(Function):
    """floor/ceil/trunc/round: piecewise constant, so the gradient is zero."""

    @staticmethod
    def forward(ctx, x, how, decimals):
        xp = ctx.xp
        if how != "round":
            return getattr(xp, how)(x)
        if decimals == 0:
            return xp.rint(x)  # halves go to even, like PyTorch
        if decimals > 0:
            scale = 10.0**decimals
            return xp.rint(x * scale) / scale
        # Dividing by 10**k (not multiplying by 10**-k) keeps the scale exact.
        scale = 10.0 ** (-decimals)
        return xp.rint(x / scale) * scale

    @staticmethod
    def backward(ctx, gy):
        return _zeros_like(gy), None, None


def _rounded(input, how, decimals=0):
    input = _tensor_arg(how, input)
    if input._data.dtype.kind != "f":
        return clone(input)  # integers are already whole
    return Rounding.apply(input, how, int(decimals))


def floor(input):
    """The largest integer <= each element (zero gradient)."""
    return _rounded(input, "floor")


def ceil(input):
    """The smallest integer >= each element (zero gradient)."""
    return _rounded(input, "ceil")


def trunc(input):
    """Round toward zero (zero gradient)."""
    return _rounded(input, "trunc")


def round(input, *, decimals=0):
    """Round half to even, to ``decimals`` decimal places (zero gradient)."""
    return _rounded(input, "round", decimals)


def frac(input):
    """The fractional part, ``input - trunc(input)`` (keeps the sign of input)."""
    input = _tensor_arg("frac", input)
    if input._data.dtype.kind != "f":
        raise errors.DTypeError(
            f"frac: needs a floating tensor, got {dtypes.name(input.dtype)}; integers have no "
            "fractional part"
        )
    return sub(input, trunc(input))


# ---- comparisons, logic, bitwise (no gradient) -----------------------------------------------


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
    return _binary(Eq, "eq", input, other)


def ne(input, other):
    """``input != other`` elementwise (bool)."""
    return _binary(Ne, "ne", input, other)


def lt(input, other):
    """``input < other`` elementwise (bool)."""
    return _binary(Lt, "lt", input, other)


def le(input, other):
    """``input <= other`` elementwise (bool)."""
    return _binary(Le, "le", input, other)


def gt(input, other):
    """``input > other`` elementwise (bool)."""
    return _binary(Gt, "gt", input, other)


def ge(input, other):
    """``input >= other`` elementwise (bool)."""
    return _binary(Ge, "ge", input, other)


greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def logical_and(input, other):
    """Elementwise AND of the truth values (nonzero is true); bool result."""
    return _apply_broadcasting(
        _LogicalAnd, "logical_and", _tensor_arg("logical_and", input), _common.as_operand(other)
    )


def logical_or(input, other):
    """Elementwise OR of the truth values; bool result."""
    return _apply_broadcasting(
        _LogicalOr, "logical_or", _tensor_arg("logical_or", input), _common.as_operand(other)
    )


def logical_xor(input, other):
    """Elementwise XOR of the truth values; bool result."""
    return _apply_broadcasting(
        _LogicalXor, "logical_xor", _tensor_arg("logical_xor", input), _common.as_operand(other)
    )


def logical_not(input):
    """Elementwise NOT of the truth values; bool result."""
    return _LogicalNot.apply(_tensor_arg("logical_not", input))


def _integer_only(op_name, *operands):
    for x in operands:
        if _kind(x) == "f":
            what = dtypes.name(x.dtype) if hasattr(x, "dtype") else f"the number {x!r}"
            raise errors.DTypeError(
                f"{op_name}: only integer and bool tensors are supported, got {what}; for masks "
                "use bool tensors, or logical_and/logical_or/logical_not on any dtype"
            )


def bitwise_and(input, other):
    """Bitwise AND of integer or bool tensors (``&``)."""
    _integer_only("bitwise_and", input, other)
    return _binary(_BitwiseAnd, "bitwise_and", input, other)


def bitwise_or(input, other):
    """Bitwise OR of integer or bool tensors (``|``)."""
    _integer_only("bitwise_or", input, other)
    return _binary(_BitwiseOr, "bitwise_or", input, other)


def bitwise_xor(input, other):
    """Bitwise XOR of integer or bool tensors (``^``)."""
    _integer_only("bitwise_xor", input, other)
    return _binary(_BitwiseXor, "bitwise_xor", input, other)


def bitwise_not(input):
    """Bitwise NOT of an integer or bool tensor (``~``; logical NOT for bool)."""
    _integer_only("bitwise_not", _tensor_arg("bitwise_not", input))
    return _BitwiseNot.apply(input)


def isnan(input):
    """True where the element is nan."""
    return _IsNan.apply(_tensor_arg("isnan", input))


def isinf(input):
    """True where the element is +inf or -inf."""
    return _IsInf.apply(_tensor_arg("isinf", input))


def isfinite(input):
    """True where the element is neither nan nor infinite."""
    return _IsFinite.apply(_tensor_arg("isfinite", input))


def isposinf(input):
    """True where the element is +inf."""
    return logical_and(isinf(input), gt(input, 0))


def isneginf(input):
    """True where the element is -inf."""
    return logical_and(isinf(input), lt(input, 0))


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``|input - other| <= atol + rtol * |other|`` elementwise (bool); equal infinities are
    close. Both tensors must have the same dtype."""
    input, other = _tensor_arg("isclose", input), _common.as_operand(other)
    if isinstance(other, Tensor) and other._data.dtype != input._data.dtype:
        raise errors.DTypeError(
            f"isclose: input is {dtypes.name(input.dtype)} but other is "
            f"{dtypes.name(other.dtype)}; convert one first, e.g. other.to(input.dtype)"
        )
    return _apply_broadcasting(_IsClose, "isclose", input, other, rtol, atol, equal_nan)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True if every element of ``input`` is close to ``other`` (see isclose)."""
    return bool(_All.apply(isclose(input, other, rtol, atol, equal_nan)))


def equal(input, other):
    """True if both tensors have the same shape and the same elements."""
    if tuple(input.shape) != tuple(other.shape):
        return False
    return bool(_All.apply(eq(input, other)))


# ---- aliases (PyTorch's alternative names) ---------------------------------------------------

absolute, negative, subtract, multiply, divide, true_divide = abs, neg, sub, mul, div, div
arcsin, arccos, arctan, arctan2 = asin, acos, atan, atan2
arcsinh, arccosh, arctanh = asinh, acosh, atanh
fix, sgn = trunc, sign


# ---- in-place forms --------------------------------------------------------------------------


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
    return _common.inplace(self, lambda source: Overwrite.apply(source, value), "fill_")


def _zero_(self):
    """Set every element to zero; returns self."""
    return _common.inplace(self, lambda source: Overwrite.apply(source, 0), "zero_")


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
        return _common.inplace(self, lambda source: Overwrite.apply(source, src), "copy_")
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
_INPLACE = {name + "_": _inplace_method(globals()[name], name + "_") for name in _INPLACE_OF}
_INPLACE.update(fill_=_fill_, zero_=_zero_, copy_=_copy_)


# ---- Tensor methods and operators ------------------------------------------------------------


def _reflected(fn):
    def method(self, other):
        return fn(other, self)

    method.__name__ = f"__r{fn.__name__}__"
    return method


_METHODS_OF = (
    "add", "sub", "mul", "div", "floor_divide", "remainder", "fmod", "neg", "positive", "pow",
    "square", "addcmul", "addcdiv", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p",
    "sqrt", "rsqrt", "reciprocal", "sin", "cos", "tan", "tanh", "sinh", "cosh", "asin", "acos",
    "atan", "asinh", "acosh", "atanh", "atan2", "erf", "erfc", "abs", "sign", "clamp", "clip",
    "maximum", "minimum", "lerp", "nan_to_num", "floor", "ceil", "trunc", "round", "frac", "eq",
    "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "logical_not",
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "isnan", "isinf", "isfinite",
    "isposinf", "isneginf", "isclose", "allclose", "equal", "clone", "absolute", "negative",
    "subtract", "multiply", "divide", "true_divide", "arcsin", "arccos", "arctan", "arctan2",
    "arcsinh", "arccosh", "arctanh", "fix", "sgn", "greater", "greater_equal", "less",
    "less_equal", "not_equal",
)

TENSOR_METHODS = {name: globals()[name] for name in _METHODS_OF}
TENSOR_METHODS.update(_INPLACE)
TENSOR_METHODS.update({
    "where": lambda self, condition, other: where(condition, self, other),
    "__mod__": remainder, "__rmod__": _reflected(remainder),
    "__and__": bitwise_and, "__rand__": _reflected(bitwise_and),
    "__or__": bitwise_or, "__ror__": _reflected(bitwise_or),
    "__xor__": bitwise_xor, "__rxor__": _reflected(bitwise_xor),
    "__invert__": bitwise_not, "__abs__": abs,
    "__ne__": ne, "__lt__": lt, "__le__": le, "__gt__": gt, "__ge__": ge,
    "__iadd__": _INPLACE["add_"], "__isub__": _INPLACE["sub_"], "__imul__": _INPLACE["mul_"],
    "__itruediv__": _INPLACE["div_"], "__ifloordiv__": _INPLACE["floor_divide_"],
    "__imod__": _INPLACE["remainder_"], "__ipow__": _INPLACE["pow_"],
    "__iand__": _INPLACE["bitwise_and_"], "__ior__": _INPLACE["bitwise_or_"],
    "__ixor__": _INPLACE["bitwise_xor_"],
})
