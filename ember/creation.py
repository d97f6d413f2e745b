"""Making tensors: from data (tensor, from_numpy, as_tensor) and by shape (zeros, arange, ...)."""

import builtins

import numpy

from ember import dtypes, errors
from ember.backend import devices as _device
from ember.tensor import Tensor


def _finish(array, dtype, device, requires_grad):
    if device is not None:
        dev = _device.device(device)
        if dev.type != "cpu":
            array = dev.xp.asarray(array)
    t = Tensor._make(array, False, None, 0)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_dtype(data):
    """Python data -> dtype the way torch.tensor infers it (floats -> default float)."""
    kinds = set()

    def walk(x):
        if isinstance(x, Tensor):
            kinds.add(x._data.dtype.kind)
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y)
        elif isinstance(x, (builtins.bool, numpy.bool_)):
            kinds.add("b")
        elif isinstance(x, (builtins.int, numpy.integer)):
            kinds.add("i")
        elif isinstance(x, (builtins.float, numpy.floating)):
            kinds.add("f")
        else:
            raise errors.DTypeError(
                f"ember.tensor: cannot make a tensor from {type(x).__name__} value {x!r}"
            )

    walk(data)
    if "f" in kinds:
        return dtypes.get_default_dtype()
    if "i" in kinds or "u" in kinds:
        return dtypes.int64
    if "b" in kinds:
        return dtypes.bool_
    return dtypes.get_default_dtype()


def _unwrap_nested(data):
    if isinstance(data, Tensor):
        return data.numpy(force=True)
    if isinstance(data, (list, tuple)):
        return [_unwrap_nested(x) for x in data]
    return data


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (list, scalar, NumPy array or Tensor).

    Python floats become the default dtype (float32), ints int64, bools bool; NumPy arrays keep
    their dtype.

    >>> ember.tensor([[1, 2], [3, 4]], dtype=ember.float32)
    tensor([[1., 2.],
            [3., 4.]])
    """
    dtype = dtypes.as_dtype(dtype)
    if isinstance(data, Tensor):
        arr = data.numpy(force=True)
        if device is None:
            device = data.device
        arr = arr.astype(dtype or arr.dtype, copy=True)
    elif isinstance(data, (numpy.ndarray, numpy.generic)):
        arr = numpy.array(data, dtype=dtype, copy=True)
        if dtype is None and arr.dtype not in dtypes.ALL:
            arr = _coerce_foreign(arr)
    elif hasattr(data, "__cuda_array_interface__"):
        arr = data.astype(dtype or data.dtype, copy=True)
        return _finish(arr, None, None, requires_grad)
    else:
        inferred = _infer_dtype(data)
        arr = numpy.array(_unwrap_nested(data), dtype=dtype or inferred)
    return _finish(arr, dtype, device, requires_grad)


def _coerce_foreign(arr):
    if arr.dtype.kind == "f":
        return arr.astype(dtypes.float64 if arr.dtype.itemsize > 8 else dtypes.float32)
    if arr.dtype.kind in "iu":
        return arr.astype(dtypes.int64)
    raise errors.DTypeError(f"ember.tensor: NumPy dtype {arr.dtype} is not supported")


def as_tensor(data, dtype=None, device=None):
    """Like tensor(), but shares memory with a Tensor or NumPy array when no conversion is needed."""
    dtype = dtypes.as_dtype(dtype)
    if isinstance(data, Tensor):
        return data.to(dtype=dtype, device=device) if dtype or device else data
    if isinstance(data, numpy.ndarray) and (dtype is None or data.dtype == dtype) and device is None:
        if data.dtype in dtypes.ALL:
            return Tensor._make(data, False, None, 0)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array):
    """A tensor sharing memory with a NumPy array (no copy): writes show through both ways."""
    if not isinstance(array, numpy.ndarray):
        raise errors.DTypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    if array.dtype not in dtypes.ALL:
        raise errors.DTypeError(
            f"from_numpy: NumPy dtype {array.dtype} is not supported; supported: "
            + ", ".join(d.name for d in dtypes.ALL)
        )
    return Tensor._make(array, False, None, 0)


def _size(size, who):
    if len(size) == 1 and isinstance(size[0], (list, tuple)):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = s.item()
        if not isinstance(s, (builtins.int, numpy.integer)) or isinstance(s, builtins.bool):
            raise errors.ShapeError(f"{who}: sizes must be integers, got {size!r}")
        if s < 0:
            raise errors.ShapeError(f"{who}: negative dimension {s} in size {tuple(size)}")
        out.append(builtins.int(s))
    return tuple(out)


def _xp(device):
    return numpy if device is None else _device.device(device).xp


def _make_filled(fill, size, dtype, device, requires_grad, who):
    shape = _size(size, who)
    dtype = dtypes.as_dtype(dtype) or dtypes.get_default_dtype()
    xp = _xp(device)
    if fill is None:
        arr = xp.empty(shape, dtype=dtype)
    elif fill == 0:
        arr = xp.zeros(shape, dtype=dtype)
    elif fill == 1:
        arr = xp.ones(shape, dtype=dtype)
    else:
        arr = xp.full(shape, fill, dtype=dtype)
    return _finish(arr, dtype, None, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _make_filled(0, size, dtype, device, requires_grad, "zeros")


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _make_filled(1, size, dtype, device, requires_grad, "ones")


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _make_filled(None, size, dtype, device, requires_grad, "empty")


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor of ``size`` filled with ``fill_value``; dtype follows the value like PyTorch."""
    if isinstance(size, (builtins.int, numpy.integer)):
        size = (size,)
    if dtype is None:
        dtype = _infer_dtype(fill_value)
    return _make_filled(fill_value, (tuple(size),), dtype, device, requires_grad, "full")


def _like(t, dtype, device):
    return (dtypes.as_dtype(dtype) or t.dtype), (device or t.device)


def zeros_like(input, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(input, dtype, device)
    return zeros(tuple(input.shape), dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(input, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(input, dtype, device)
    return ones(tuple(input.shape), dtype=dtype, device=device, requires_grad=requires_grad)


def empty_like(input, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(input, dtype, device)
    return empty(tuple(input.shape), dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(input, dtype, device)
    return full(tuple(input.shape), fill_value, dtype=dtype, device=device,
                requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """Values from ``start`` up to (not including) ``end`` by ``step``; ints give int64."""
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        dtype = _infer_dtype(vals)
    dtype = dtypes.as_dtype(dtype)
    arr = numpy.arange(vals[0], vals[1], vals[2], dtype=numpy.float64 if dtype.kind == "f" else None)
    return _finish(arr.astype(dtype, copy=False), dtype, device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    dtype = dtypes.as_dtype(dtype) or dtypes.get_default_dtype()
    arr = numpy.linspace(float(start), float(end), int(steps)).astype(dtype)
    return _finish(arr, dtype, device, requires_grad)


def logspace(start, end, steps, base=10.0, dtype=None, device=None, requires_grad=False):
    dtype = dtypes.as_dtype(dtype) or dtypes.get_default_dtype()
    arr = numpy.logspace(float(start), float(end), int(steps), base=base).astype(dtype)
    return _finish(arr, dtype, device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """An n x m matrix with ones on the diagonal."""
    dtype = dtypes.as_dtype(dtype) or dtypes.get_default_dtype()
    arr = _xp(device).eye(int(n), None if m is None else int(m), dtype=dtype)
    return _finish(arr, dtype, None, requires_grad)
