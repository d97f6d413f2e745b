"""A small message format for DataLoader workers: nested containers of arrays, Tensors and
plain values, as a JSON header plus raw array bytes.

Worker results cross a process boundary; pickle would let a message run code when it is
read, and ember Tensors refuse it anyway. This format can only ever produce data.
"""

import json
import struct
import sys

import numpy

from ember.tensor import Tensor

_LEN = struct.Struct("<Q")


def encode(obj):
    """bytes for ``obj`` (None, bool, int, float, str, lists, tuples, dicts with str/int keys,
    namedtuples of imported classes, NumPy arrays of numeric dtype, Tensors)."""
    buffers = []
    header = _encode(obj, buffers)
    head = json.dumps(header).encode()
    return b"".join([_LEN.pack(len(head)), head] + buffers)


def _encode(obj, buffers):
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, numpy.integer)) and not isinstance(obj, numpy.bool_):
        return {"i": int(obj)}
    if isinstance(obj, (float, numpy.floating)):
        return {"f": repr(float(obj))}
    if isinstance(obj, numpy.bool_):
        return bool(obj)
    if isinstance(obj, Tensor):
        return _encode_array(obj.numpy(force=True), buffers, tensor=True)
    if isinstance(obj, numpy.ndarray):
        return _encode_array(obj, buffers, tensor=False)
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)):
                raise TypeError(f"DataLoader worker: dict keys must be str or int, got {k!r}")
        return {"d": [[_encode(k, buffers), _encode(v, buffers)] for k, v in obj.items()]}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        cls = type(obj)
        return {"n": [cls.__module__, cls.__qualname__], "v": [_encode(v, buffers) for v in obj]}
    if isinstance(obj, tuple):
        return {"t": [_encode(v, buffers) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, buffers) for v in obj]
    raise TypeError(
        f"DataLoader worker: cannot send a {type(obj).__name__} back to the main process; "
        "samples and batches may hold arrays, Tensors, numbers, strings, lists, tuples and dicts"
    )


def _encode_array(arr, buffers, tensor):
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"DataLoader worker: arrays of dtype {arr.dtype} cannot be sent")
    arr = numpy.ascontiguousarray(arr)
    buffers.append(arr.tobytes())
    return {"a": [arr.dtype.str, list(arr.shape), tensor]}


def decode(data):
    """The object ``encode`` was given (arrays are fresh and writeable)."""
    view = memoryview(data)
    (n,) = _LEN.unpack_from(view, 0)
    header = json.loads(bytes(view[_LEN.size:_LEN.size + n]))
    offset = [_LEN.size + n]
    return _decode(header, view, offset)


def _decode(h, view, offset):
    if h is None or isinstance(h, (bool, str)):
        return h
    if isinstance(h, list):
        return [_decode(v, view, offset) for v in h]
    if "i" in h:
        return h["i"]
    if "f" in h:
        return float(h["f"])
    if "a" in h:
        dtype, shape, tensor = h["a"]
        dt = numpy.dtype(dtype)
        count = int(numpy.prod(shape, dtype=numpy.int64))
        arr = numpy.frombuffer(view, dtype=dt, count=count, offset=offset[0]).reshape(shape).copy()
        offset[0] += count * dt.itemsize
        return Tensor._make(arr, False, None, 0) if tensor else arr
    if "d" in h:
        return {_decode(k, view, offset): _decode(v, view, offset) for k, v in h["d"]}
    if "t" in h:
        return tuple(_decode(v, view, offset) for v in h["t"])
    if "n" in h:
        values = [_decode(v, view, offset) for v in h["v"]]
        cls = _namedtuple_class(*h["n"])
        return cls(*values) if cls is not None else tuple(values)
    raise ValueError(f"DataLoader: malformed worker message {h!r}")


def _namedtuple_class(module, qualname):
    """The namedtuple class, looked up among modules already imported (never importing)."""
    obj = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if isinstance(obj, type) and issubclass(obj, tuple) and hasattr(obj, "_fields"):
        return obj
    return None
