"""ember dtypes, the default float dtype, and PyTorch's type-promotion rules.

ember dtypes are NumPy dtype objects (CuPy uses the same), so ``ember.float32`` can be passed
straight to an array library. Promotion follows PyTorch rather than NumPy: dtypes are ranked
by category (bool < integer < floating); a higher category wins outright (int64 + float16 ->
float16), within a category the wider type wins, and Python scalars and 0-d tensors only
choose the result when they are of a higher category than every dimensioned operand, so
``float32_tensor * 2.5`` stays float32.
"""

import builtins

import numpy

from ember import errors

_builtin_int = builtins.int
_builtin_float = builtins.float
_builtin_bool = builtins.bool

bool_ = numpy.dtype("bool")
uint8 = numpy.dtype("uint8")
int8 = numpy.dtype("int8")
int16 = numpy.dtype("int16")
int32 = numpy.dtype("int32")
int64 = numpy.dtype("int64")
float16 = numpy.dtype("float16")
float32 = numpy.dtype("float32")
float64 = numpy.dtype("float64")

half, float, double = float16, float32, float64
short, int, long = int16, int32, int64

ALL = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64)
FLOATING = (float16, float32, float64)

_NAMES = {
    "bool": bool_, "uint8": uint8, "int8": int8, "int16": int16, "int32": int32,
    "int64": int64, "float16": float16, "float32": float32, "float64": float64,
    "half": float16, "float": float32, "double": float64, "short": int16, "int": int32,
    "long": int64,
}


class _Defaults:
    float = float32


def get_default_dtype():
    """The dtype of new floating tensors (float32 unless changed)."""
    return _Defaults.float


def set_default_dtype(dtype):
    """Set the dtype used for new floating tensors and Python floats; must be floating."""
    dt = as_dtype(dtype)
    if dt not in FLOATING:
        raise errors.DTypeError(f"set_default_dtype expects a floating dtype, got {name(dt)}")
    _Defaults.float = dt


def as_dtype(dtype):
    """Turn an ember dtype, NumPy dtype, Python type or name into an ember dtype."""
    if dtype is None:
        return None
    if isinstance(dtype, numpy.dtype):
        dt = dtype
    elif isinstance(dtype, str) and dtype in _NAMES:
        dt = _NAMES[dtype]
    elif dtype is _builtin_bool:
        dt = bool_
    elif dtype is _builtin_int:
        dt = int64
    elif dtype is _builtin_float:
        dt = _Defaults.float
    else:
        try:
            dt = numpy.dtype(dtype)
        except TypeError:
            raise errors.DTypeError(f"{dtype!r} is not a dtype ember knows") from None
    if dt not in ALL:
        raise errors.DTypeError(
            f"dtype {dt} is not supported; use one of " + ", ".join(name(d) for d in ALL)
        )
    return dt


def name(dtype):
    """'ember.float32' style name, for reprs and error messages."""
    return "ember." + numpy.dtype(dtype).name


def is_floating(dtype):
    return dtype.kind == "f"


def category(dtype):
    """0 for bool, 1 for integers, 2 for floating point."""
    kind = dtype.kind
    return 2 if kind == "f" else (0 if kind == "b" else 1)


def _scalar_category(value):
    if isinstance(value, _builtin_bool) or isinstance(value, numpy.bool_):
        return 0
    if isinstance(value, (_builtin_int, numpy.integer)):
        return 1
    if isinstance(value, (_builtin_float, numpy.floating)):
        return 2
    raise errors.DTypeError(f"cannot use {type(value).__name__} value {value!r} in a tensor op")


_DEFAULT_OF_CATEGORY = (bool_, int64, None)


def result_type(*operands):
    """The dtype PyTorch would give an op on these operands (Tensors and Python scalars)."""
    dims, zero_dims, scalars = None, None, -1
    for op in operands:
        dt = getattr(op, "dtype", None)
        if dt is None:
            scalars = max(scalars, _scalar_category(op))
            continue
        if op.ndim:
            dims = dt if dims is None else _promote(dims, dt)
        else:
            zero_dims = dt if zero_dims is None else _promote(zero_dims, dt)
    result = dims
    if zero_dims is not None:
        if result is None or category(zero_dims) > category(result):
            result = zero_dims
    if scalars >= 0 and (result is None or scalars > category(result)):
        result = _Defaults.float if scalars == 2 else _DEFAULT_OF_CATEGORY[scalars]
    return result


def _promote(a, b):
    if a is b:
        return a
    ca, cb = category(a), category(b)
    if ca != cb:
        return a if ca > cb else b
    return numpy.promote_types(a, b)


promote_types = _promote
