"""Elementwise math: arithmetic, exponentials, comparisons, rounding, casting.

Binary ops broadcast like PyTorch; their backward returns gradients in the broadcast shape
and the engine sums them back to each input's shape. Python scalars are passed to the array
library as they are (NumPy 2 keeps the tensor's dtype for them), so ``x * 2.5`` stays float32.
"""

from ember import dtypes, errors
from ember.autograd.function import Function
from ember.ops import _common
from ember.tensor import Tensor


def _broadcast_error(op_name, a, b):
    sa = errors.shape_str(getattr(a, "shape", ()))
    sb = errors.shape_str(getattr(b, "shape", ()))
    return errors.ShapeError(
        f"{op_name}: shapes {sa} and {sb} cannot be broadcast together (sizes must match or be "
        "1, aligned from the right); reshape or unsqueeze one of them"
    )


def _binary(cls, op_name, a, b):
    """Apply a binary Function after PyTorch's dtype promotion, with a clear broadcast error."""
    if (
        type(a) is Tensor
        and type(b) is Tensor
        and a._data.dtype == b._data.dtype
    ):
        pass
    else:
        (a, b), _ = _common.promote(op_name, a, b)
    try:
        return cls.apply(a, b)
    except ValueError as exc:
        if "broadcast" in str(exc) and not isinstance(exc, errors.EmberError):
            raise _broadcast_error(op_name, a, b) from None
        raise


# ---- casting -------------------------------------------------------------------------------


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
        y = a**b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        a, b, y = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[:2]
        ga = gb = None
        if need_a:
            # d/da a**b = b * a**(b-1); written without dividing by a so a == 0 is finite.
            ga = gy * b * a ** (b - 1)
        if need_b:
            # d/db a**b = a**b * log(a); PyTorch defines it as 0 where a == 0 (and b >= 0).
            safe_log = where(a == 0, _zeros_like(a), log(where(a == 0, _ones_like(a), a)))
            gb = gy * y * safe_log
        return ga, gb


def _zeros_like(x):
    return Tensor._make(x.device.xp.zeros_like(x._data), False, None, 0)


def _ones_like(x):
    return Tensor._make(x.device.xp.ones_like(x._data), False, None, 0)


def add(input, other, *, alpha=1):
    """input + alpha * other, broadcasting."""
    if alpha != 1:
        other = mul(other, alpha)
    return _binary(Add, "add", input, other)


def sub(input, other, *, alpha=1):
    """input - alpha * other, broadcasting."""
    if alpha != 1:
        other = mul(other, alpha)
    return _binary(Sub, "sub", input, other)


def mul(input, other):
    """Elementwise product, broadcasting."""
    return _binary(Mul, "mul", input, other)


def div(input, other, *, rounding_mode=None):
    """True division (integers give the default float dtype); rounding_mode 'trunc' or 'floor'."""
    if rounding_mode is None:
        (a, b), rt = _common.promote("div", input, other)
        if rt.kind != "f":
            fdt = dtypes.get_default_dtype()
            a = cast(a, fdt) if isinstance(a, Tensor) else float(a)
            b = cast(b, fdt) if isinstance(b, Tensor) else float(b)
        return _binary(Div, "div", a, b)
    if rounding_mode == "trunc":
        return trunc(div(input, other)) if _is_float(input, other) else _int_div(input, other, "trunc")
    if rounding_mode == "floor":
        return floor_divide(input, other)
    raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")


def _is_float(*xs):
    return any(isinstance(x, float) or getattr(getattr(x, "dtype", None), "kind", "") == "f" for x in xs)


def neg(input):
    return Neg.apply(input)


def pow(input, exponent):
    """input ** exponent, broadcasting; either may be a Python number."""
    return _binary(Pow, "pow", input, exponent)


def rsub(input, other, *, alpha=1):
    return sub(other, input, alpha=alpha)


# ---- exponentials --------------------------------------------------------------------------


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy * y


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.log(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy / x


def exp(input):
    return Exp.apply(_common.float_operand("exp", input))


def log(input):
    return Log.apply(_common.float_operand("log", input))


# ---- placeholders filled in by the rest of this family --------------------------------------


def where(condition, input, other):
    """Elements of ``input`` where ``condition`` holds, else of ``other``."""
    return Where.apply(_as_bool(condition), *_common.promote("where", input, other)[0])


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return ctx.xp.where(cond, a, b)

    @staticmethod
    def backward(ctx, gy):
        (cond,) = ctx.saved_tensors
        zero = _zeros_like(gy)
        need = ctx.needs_input_grad
        ga = where(cond, gy, zero) if need[1] else None
        gb = where(cond, zero, gy) if need[2] else None
        return None, ga, gb


def _as_bool(c):
    if isinstance(c, Tensor):
        return c if c._data.dtype.kind == "b" else Tensor._make(c._data.astype(bool), False, None, 0)
    from ember import creation  # noqa: PLC0415

    return creation.as_tensor(c).bool()


class _Compare(Function):
    """Comparisons: bool results, no gradient."""

    ufunc = None

    @classmethod
    def forward(cls, ctx, a, b):
        return getattr(ctx.xp, cls.ufunc)(a, b)


class Eq(_Compare):
    ufunc = "equal"


def eq(input, other):
    return _binary(Eq, "eq", input, other)


class Floor(Function):
    @staticmethod
    def forward(ctx, x):
        return ctx.xp.floor(x)

    @staticmethod
    def backward(ctx, gy):
        return _zeros_like(gy)


class Trunc(Function):
    @staticmethod
    def forward(ctx, x):
        return ctx.xp.trunc(x)

    @staticmethod
    def backward(ctx, gy):
        return _zeros_like(gy)


def floor(input):
    return Floor.apply(input) if input.dtype.kind == "f" else input


def trunc(input):
    return Trunc.apply(input) if input.dtype.kind == "f" else input


def floor_divide(input, other):
    """Division rounded toward minus infinity (PyTorch's ``//``)."""
    if _is_float(input, other):
        return floor(div(input, other))
    return _int_div(input, other, "floor")


class _IntDiv(Function):
    @staticmethod
    def forward(ctx, a, b, mode):
        xp = ctx.xp
        if mode == "floor":
            return xp.floor_divide(a, b)
        q = xp.floor_divide(a, b)
        # Round toward zero: floor overshoots by one where the signs differ with a remainder.
        fix = (xp.remainder(a, b) != 0) & ((a < 0) != (b < 0))
        return q + fix


def _int_div(input, other, mode):
    (a, b), _ = _common.promote("div", input, other)
    return _IntDiv.apply(a, b, mode)


TENSOR_METHODS = {
    "add": add, "sub": sub, "mul": mul, "div": div, "neg": neg, "pow": pow, "exp": exp,
    "log": log, "floor_divide": floor_divide, "eq": eq, "floor": floor, "trunc": trunc,
    "where": lambda self, condition, other: where(condition, self, other),
}
