"""Piecewise elementwise ops: abs and sign, clamp, maximum/minimum, rounding
(floor/ceil/trunc/round/frac) and nan_to_num.

Each picks between branches element by element, so its gradient is a mask (abs, clamp,
maximum, nan_to_num) or zero (sign, rounding). Where the branches meet, the tie rules follow
PyTorch and are spelled out at each op (abs at 0, clamp on a bound, maximum of equal inputs).
Every name here is also importable from ``elementwise``.
"""

from ember import dtypes, errors
from ember.autograd.function import Function
from ember.ops import _common, compare, elementwise


# ---- sign and absolute value -----------------------------------------------------------------


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
        return elementwise._zeros_like(gy)


def abs(input):
    """Absolute value; the gradient at 0 is 0."""
    return Abs.apply(elementwise._tensor_arg("abs", input))


def sign(input):
    """-1, 0 or 1 by the sign of each element (zero gradient)."""
    input = elementwise._tensor_arg("sign", input)
    if input._data.dtype.kind == "b":
        return elementwise.clone(input)
    return Sign.apply(input)


# ---- clamping and extrema ---------------------------------------------------------------------


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
                keep = x <= hi if keep is None else compare.logical_and(keep, x <= hi)
            gx = elementwise.where(keep, gy, 0.0)
        if need_lo:
            # PyTorch's rule: when min > max the output is max, so only max gets the gradient.
            took_lo = x < lo if hi is None else compare.logical_and(x < lo, lo < hi)
            glo = elementwise.where(took_lo, gy, 0.0)
        if need_hi:
            took_hi = x > hi if lo is None else compare.logical_or(x > hi, hi < lo)
            ghi = elementwise.where(took_hi, gy, 0.0)
        return gx, glo, ghi


def clamp(input, min=None, max=None):
    """Limit each element to [min, max]; either bound may be a number, a tensor, or None.
    Where min > max the result is max. The dtype follows promotion with the bounds."""
    input = elementwise._tensor_arg("clamp", input)
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given (both are None)")
    given = [v for v in (min, max) if v is not None]
    promoted, _ = _common.promote("clamp", input, *given)
    x, bounds = promoted[0], iter(promoted[1:])
    lo = next(bounds) if min is not None else None
    hi = next(bounds) if max is not None else None
    return elementwise._apply_broadcasting(Clamp, "clamp", x, lo, hi)


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
        shared = elementwise.where(a == b, gy * 0.5, gy)
        ga = elementwise.where(a_lost, 0.0, shared) if need_a else None
        gb = elementwise.where(b_lost, 0.0, shared) if need_b else None
        return ga, gb


class Maximum(_Extremum):
    ufunc = "maximum"


class Minimum(_Extremum):
    ufunc = "minimum"


def maximum(input, other):
    """Elementwise maximum (nan if either is nan), broadcasting."""
    return elementwise._binary(Maximum, "maximum", elementwise._tensor_arg("maximum", input), other)


def minimum(input, other):
    """Elementwise minimum (nan if either is nan), broadcasting."""
    return elementwise._binary(Minimum, "minimum", elementwise._tensor_arg("minimum", input), other)


# ---- non-finite values ------------------------------------------------------------------------


class NanToNum(Function):
    @staticmethod
    def forward(ctx, x, nan, posinf, neginf):
        ctx.save_for_backward(x)
        return ctx.xp.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return elementwise.where(compare.isfinite(x), gy, 0.0), None, None, None


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """nan -> ``nan``, +inf -> ``posinf``, -inf -> ``neginf`` (default: the dtype's largest and
    lowest finite values). Gradient passes only through the finite elements."""
    input = elementwise._tensor_arg("nan_to_num", input)
    if input._data.dtype.kind != "f":
        return elementwise.clone(input)
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
        return elementwise._zeros_like(gy), None, None


def _rounded(input, how, decimals=0):
    input = elementwise._tensor_arg(how, input)
    if input._data.dtype.kind != "f":
        return elementwise.clone(input)  # integers are already whole
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
    input = elementwise._tensor_arg("frac", input)
    if input._data.dtype.kind != "f":
        raise errors.DTypeError(
            f"frac: needs a floating tensor, got {dtypes.name(input.dtype)}; integers have no "
            "fractional part"
        )
    return elementwise.sub(input, trunc(input))


# ---- aliases (PyTorch's alternative names) ---------------------------------------------------

absolute, fix, sgn = abs, trunc, sign


_METHODS_OF = (
    "abs", "sign", "clamp", "clip", "maximum", "minimum", "nan_to_num", "floor", "ceil",
    "trunc", "round", "frac", "absolute", "fix", "sgn",
)

TENSOR_METHODS = {name: globals()[name] for name in _METHODS_OF}
TENSOR_METHODS["__abs__"] = abs
