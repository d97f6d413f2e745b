"""Unary float math: exponentials, logarithms and roots, trigonometric and hyperbolic
functions (with ``atan2``, the two-argument arctangent), and the error function.

These are the smooth functions of one float: each is a Function whose backward is the
derivative written with ember ops (saving the output where the derivative is cheaper from it,
as for exp, sqrt and tanh). Integer and bool inputs are computed in the default float dtype.
The erf polynomial itself is array code in ``_erf.py``. Every name here is also importable
from ``elementwise``.
"""

import math

import numpy

from ember.autograd import grad_mode
from ember.autograd.function import Function, _as_array, _Tracing
from ember.ops import _common, _erf, elementwise
from ember.tensor import Tensor

_State = grad_mode._State
_ndarray = numpy.ndarray
_make = Tensor._make
_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


# ---- exponentials, logarithms, roots -------------------------------------------------------


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.exp(x)  # a NumPy scalar for 0-d x: apply makes it an array, also in ctx's saved
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        if not _State.enabled:  # no graph to record: one array product (see Mul.backward)
            (y,) = ctx.saved_arrays
            return _common.constant(gy._data * y)
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
        with elementwise._quiet():
            return ctx.xp.log(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy / x


class Log2(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with elementwise._quiet():
            return ctx.xp.log2(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy / (x * _LN2)


class Log10(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with elementwise._quiet():
            return ctx.xp.log10(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy / (x * _LN10)


class Log1p(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with elementwise._quiet():
            return ctx.xp.log1p(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy / (x + 1)


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        with elementwise._quiet():
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
        with elementwise._quiet():
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
        with elementwise._quiet():
            y = ctx.xp.asarray(1 / x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return -(gy * y * y)


def exp(input):
    """e to the power of each element."""
    # NOTE (measured, `python bench/overhead.py --repeats 9 --threads 1 --clock cpu`, HEAD vs this):
    # the no-graph fast path below took exp fwd from 3.7-4.0 us (1.33-1.43x PyTorch) to 1.8-2.1 us
    # (0.73-0.76x).
    if isinstance(input, Tensor):  # no-graph fast path (autograd/function.py)
        data = input._data
        if type(data) is _ndarray and data.dtype.kind == "f" and _Tracing.tracer is None \
                and not (input._rg and _State.enabled):
            y = numpy.exp(data)
            return _make(y if type(y) is _ndarray else _as_array(y), False, None, 0)
    return Exp.apply(elementwise._float_arg("exp", input))


def exp2(input):
    """2 to the power of each element."""
    return Exp2.apply(elementwise._float_arg("exp2", input))


def expm1(input):
    """``exp(input) - 1``, accurate for small inputs."""
    return Expm1.apply(elementwise._float_arg("expm1", input))


def log(input):
    """Natural logarithm (nan below 0, -inf at 0)."""
    return Log.apply(elementwise._float_arg("log", input))


def log2(input):
    """Base-2 logarithm."""
    return Log2.apply(elementwise._float_arg("log2", input))


def log10(input):
    """Base-10 logarithm."""
    return Log10.apply(elementwise._float_arg("log10", input))


def log1p(input):
    """``log(1 + input)``, accurate for small inputs."""
    return Log1p.apply(elementwise._float_arg("log1p", input))


def sqrt(input):
    """Square root; its gradient at 0 is inf."""
    return Sqrt.apply(elementwise._float_arg("sqrt", input))


def rsqrt(input):
    """``1 / sqrt(input)``."""
    return Rsqrt.apply(elementwise._float_arg("rsqrt", input))


def reciprocal(input):
    """``1 / input`` (integers give the default float dtype)."""
    return Reciprocal.apply(elementwise._float_arg("reciprocal", input))


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
        with elementwise._quiet():
            return ctx.xp.sinh(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * cosh(x)


class Cosh(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with elementwise._quiet():
            return ctx.xp.cosh(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * sinh(x)


class Asin(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with elementwise._quiet():
            return ctx.xp.arcsin(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * rsqrt(1 - x * x)


class Acos(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with elementwise._quiet():
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
        with elementwise._quiet():
            return ctx.xp.arccosh(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * rsqrt(x * x - 1)


class Atanh(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with elementwise._quiet():
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
    return Sin.apply(elementwise._float_arg("sin", input))


def cos(input):
    """Cosine, in radians."""
    return Cos.apply(elementwise._float_arg("cos", input))


def tan(input):
    """Tangent, in radians."""
    return Tan.apply(elementwise._float_arg("tan", input))


def tanh(input):
    """Hyperbolic tangent (the backward uses the saved output)."""
    return Tanh.apply(elementwise._float_arg("tanh", input))


def sinh(input):
    """Hyperbolic sine."""
    return Sinh.apply(elementwise._float_arg("sinh", input))


def cosh(input):
    """Hyperbolic cosine."""
    return Cosh.apply(elementwise._float_arg("cosh", input))


def asin(input):
    """Inverse sine (nan outside [-1, 1])."""
    return Asin.apply(elementwise._float_arg("asin", input))


def acos(input):
    """Inverse cosine (nan outside [-1, 1])."""
    return Acos.apply(elementwise._float_arg("acos", input))


def atan(input):
    """Inverse tangent."""
    return Atan.apply(elementwise._float_arg("atan", input))


def asinh(input):
    """Inverse hyperbolic sine."""
    return Asinh.apply(elementwise._float_arg("asinh", input))


def acosh(input):
    """Inverse hyperbolic cosine (nan below 1)."""
    return Acosh.apply(elementwise._float_arg("acosh", input))


def atanh(input):
    """Inverse hyperbolic tangent (nan outside [-1, 1])."""
    return Atanh.apply(elementwise._float_arg("atanh", input))


def atan2(input, other):
    """The angle of the point (other, input): ``atan(input / other)`` in the right quadrant."""
    (a, b), rt = _common.promote("atan2", elementwise._tensor_arg("atan2", input), other)
    if rt.kind != "f":
        a = _common.float_operand("atan2", a)
        b = elementwise.cast(b, a._data.dtype) if isinstance(b, Tensor) else float(b)
    return elementwise._apply_broadcasting(Atan2, "atan2", a, b)


# ---- the error function ----------------------------------------------------------------------


class Erf(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _erf.erf_array(ctx.xp, x, complement=False)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * exp(-(x * x)) * _erf.TWO_OVER_SQRT_PI


class Erfc(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _erf.erf_array(ctx.xp, x, complement=True)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * exp(-(x * x)) * -_erf.TWO_OVER_SQRT_PI


def erf(input):
    """The Gauss error function, ``2/sqrt(pi) * integral from 0 to x of exp(-t^2) dt``."""
    return Erf.apply(elementwise._float_arg("erf", input))


def erfc(input):
    """``1 - erf(input)``, accurate where erf is close to 1."""
    return Erfc.apply(elementwise._float_arg("erfc", input))


# ---- aliases (PyTorch's alternative names) ---------------------------------------------------

arcsin, arccos, arctan, arctan2 = asin, acos, atan, atan2
arcsinh, arccosh, arctanh = asinh, acosh, atanh


_METHODS_OF = (
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "reciprocal",
    "sin", "cos", "tan", "tanh", "sinh", "cosh", "asin", "acos", "atan", "asinh", "acosh",
    "atanh", "atan2", "erf", "erfc", "arcsin", "arccos", "arctan", "arctan2", "arcsinh",
    "arccosh", "arctanh",
)

TENSOR_METHODS = {name: globals()[name] for name in _METHODS_OF}
