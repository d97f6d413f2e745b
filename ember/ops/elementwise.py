"""Elementwise arithmetic: the shared plumbing of every elementwise op, casting and copying,
add/sub/mul/div/pow and their relatives, ``where``, and ``lerp``.

Binary ops broadcast like PyTorch; their backward returns gradients in the broadcast shape
and the engine sums them back to each input's shape. Dtypes follow PyTorch's promotion
(``_common.promote``): Python scalars are handed to the array library as Python numbers, which
NumPy 2 treats as weak, so ``float32_tensor * 2.5`` stays float32 and ``int_tensor + 2.5`` is
float32. Float-only math on integer tensors (``sqrt``, ``exp``) runs in the default float dtype.

The rest of the elementwise family lives beside this file, one responsibility each:

- ``unary.py``: exp/log/roots, trigonometric and hyperbolic functions, erf (its polynomial
  approximation in ``_erf.py``);
- ``piecewise.py``: abs/sign, clamp, maximum/minimum, rounding, nan_to_num;
- ``compare.py``: comparisons, logic and bitwise ops (bool/integer results, no gradient);
- ``inplace.py``: the in-place methods (``add_``, ``fill_``, ``+=``, ...).

They use the plumbing below (``_binary``, ``_tensor_arg``, ...), and every name they define is
also bound here (end of file), so ``elementwise.exp`` and ``elementwise.Eq`` keep working.
Gradients are written with ember ops, so every backward is itself differentiable.
"""

import builtins
import math
import operator

import numpy

from ember import dtypes, errors
from ember.autograd import grad_mode
from ember.autograd.function import Function, _as_array, _Tracing
from ember.ops import _common, _erf, compare, piecewise, unary
from ember.tensor import Tensor


_State = grad_mode._State
_ndarray = numpy.ndarray
_make = Tensor._make
_constant = _common.constant


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
        _raise_broadcast_error(exc, op_name, args)


def _binary(cls, op_name, a, b):
    """Apply a binary Function after PyTorch's dtype promotion, with a clear broadcast error."""
    # NOTE: two tensors of one dtype, and a float tensor with a Python number (on either
    # side), need no promotion (the number stays a weak scalar, as _common.promote would leave
    # it); skipping promote and the _apply_broadcasting frame takes ~1 us off x + y and
    # ~2.5 us off x * 2.0 on 4x4 float32 (bench/overhead.py).
    fast = False
    if isinstance(a, Tensor):
        da = a._data
        tb = type(b)
        if tb is float or tb is int:
            if da.dtype.kind == "f":
                b = db = float(b)
                rg = a._rg
                fast = True
        elif isinstance(b, Tensor):
            db = b._data
            if da.dtype == db.dtype:
                rg = a._rg or b._rg
                fast = True
    elif isinstance(b, Tensor):
        ta = type(a)
        db = b._data
        if (ta is float or ta is int) and db.dtype.kind == "f":
            a = da = float(a)
            rg = b._rg
            fast = True
    if not fast:
        (a, b), _ = _common.promote(op_name, a, b)
    elif cls._array_forward is not None and _Tracing.tracer is None and \
            not (rg and _State.enabled) and (type(da) is _ndarray or da is a) and \
            (type(db) is _ndarray or db is b):
        # No graph to record, NumPy operands: the array operator itself, without
        # Function.apply (see "No-graph fast paths" in autograd/function.py).
        # NOTE (measured, `python bench/overhead.py --repeats 9 --threads 1 --clock cpu`, HEAD vs
        # this): add fwd 3.7-4.0 -> 2.6-2.7 us (1.15-1.22x -> 0.76-0.78x PyTorch), mul fwd 3.2-4.2
        # -> 1.9-2.7 us (1.29-1.31x -> 0.77-0.80x).
        try:
            out = cls._array_forward(da, db)
        except ValueError as exc:
            _raise_broadcast_error(exc, op_name, (a, b))
        return _make(out if type(out) is _ndarray else _as_array(out), False, None, 0)
    try:
        return cls.apply(a, b)
    except ValueError as exc:
        _raise_broadcast_error(exc, op_name, (a, b))


def _raise_broadcast_error(exc, op_name, args):
    """Turn NumPy's broadcast failure ``exc`` into an ember ShapeError; re-raise the rest."""
    if "broadcast" in str(exc) and not isinstance(exc, errors.EmberError):
        tensors = [a for a in args if isinstance(a, Tensor)]
        raise _broadcast_error(op_name, *(tensors + [(), ()])[:2]) from None
    raise exc


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
    if isinstance(x, Tensor) and x._data.dtype.kind == "f":  # the common case, kept cheap
        return x
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
    _array_forward = operator.add

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, gy):
        return gy, gy


class Sub(Function):
    _array_forward = operator.sub

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, gy):
        if not _State.enabled:  # no graph to record: negate the array (see Mul.backward)
            return gy, _constant(-gy._data)
        return gy, -gy


class Mul(Function):
    _array_forward = operator.mul

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, gy):
        edges = ctx._next  # a node that runs backward was recorded: one edge per input
        need_a, need_b = edges[0] is not None, edges[1] is not None
        if not _State.enabled:
            # NOTE: without create_graph the products are array products: no Function dispatch
            # and no Tensor wrapping of the saved inputs (mul fwd+bwd on 4x4 float32: ~5 us of
            # ~60, bench/overhead.py). The operands already share gy's dtype (promoted in
            # forward), so the result is what ember's mul gives. Double backward takes the
            # Tensor branch below.
            a, b = ctx.saved_arrays
            g = gy._data
            return (_constant(g * b) if need_a else None), (_constant(g * a) if need_b else None)
        a, b = ctx.saved_tensors
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
    safe_log = unary.log(where(zero_base, 1.0, a))
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


# ---- selection and interpolation -----------------------------------------------------------


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
        return where(piecewise.abs(weight) < 0.5, near_start, near_end)
    if builtins.abs(weight) < 0.5:
        return add(input, mul(diff, weight))
    return sub(end, mul(diff, 1 - weight))


# ---- aliases (PyTorch's alternative names) ---------------------------------------------------

negative, subtract, multiply, divide, true_divide = neg, sub, mul, div, div


# ---- Tensor methods and operators ------------------------------------------------------------

_METHODS_OF = (
    "add", "sub", "mul", "div", "floor_divide", "remainder", "fmod", "neg", "positive", "pow",
    "square", "addcmul", "addcdiv", "lerp", "clone", "negative", "subtract", "multiply",
    "divide", "true_divide",
)

TENSOR_METHODS = {name: globals()[name] for name in _METHODS_OF}
TENSOR_METHODS.update({
    "where": lambda self, condition, other: where(condition, self, other),
    "__mod__": remainder, "__rmod__": _common.reflected(remainder),
})


# ---- names defined in the sibling modules ----------------------------------------------------
# Every public name of unary.py, piecewise.py and compare.py is bound here too: they were
# defined in this file before it was split, and code across ember (and users' code) reads them
# as ``elementwise.NAME``. activation.gelu reads the erf kernel as ``elementwise._erf_array``.

_common.reexport(globals(), unary, piecewise, compare)
_erf_array = _erf.erf_array
