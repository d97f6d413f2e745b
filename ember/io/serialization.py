"""ember.save / ember.load: tensors in a safetensors file, structure and metadata as JSON.

A file holds any nesting of dicts, lists and tuples of Tensors (or NumPy arrays) and plain
values (numbers, strings, bools, None). Tensors are stored under their path in the structure
(a flat state dict keeps its own names, so PyTorch's ``safetensors.torch.load_file`` reads it);
the structure, a format version and a SHA-256 of the tensor bytes go in the safetensors
header's ``__metadata__``. Loading parses and checks the header itself before any data is
used: no duplicated names, offsets inside the file and matching the declared shapes, and the
checksum, so a truncated or corrupted file is an error naming the file, never wrong tensors.
Nothing here unpickles or imports: a file can only ever produce data.
"""

import hashlib
import json
import os
import struct

import numpy

from ember import errors
from ember.io import atomic
from ember.tensor import Tensor

FORMAT = "ember/1"
_DTYPES = {
    "BOOL": numpy.bool_, "U8": numpy.uint8, "I8": numpy.int8, "I16": numpy.int16,
    "I32": numpy.int32, "I64": numpy.int64, "F16": numpy.float16, "F32": numpy.float32,
    "F64": numpy.float64,
}
_CODES = {numpy.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


class CheckpointError(errors.EmberError, ValueError):
    """A file that is not a valid ember/safetensors file, or does not fit what reads it."""


# ---- writing ---------------------------------------------------------------------------------


def save(obj, path):
    """Write ``obj`` (a Tensor, or nested dicts/lists/tuples of Tensors and plain values) to
    ``path`` atomically: a crash during the save leaves any previous file intact."""
    tensors = {}
    structure = _flatten(obj, "", tensors)
    header, blobs = _layout(tensors)
    digest = hashlib.sha256()
    for blob in blobs:
        digest.update(blob)
    header["__metadata__"] = {
        "format": FORMAT,
        "structure": json.dumps(structure, allow_nan=True),
        "sha256": digest.hexdigest(),
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with atomic.atomic_write(path) as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for blob in blobs:
            f.write(blob)


def _flatten(obj, path, tensors):
    if isinstance(obj, (Tensor, numpy.ndarray)):
        arr = obj.numpy(force=True) if isinstance(obj, Tensor) else obj
        name = path or "tensor"
        if name in tensors:
            name = f"{name}#{len(tensors)}"
        tensors[name] = arr
        return {"$tensor": name, "$kind": "tensor" if isinstance(obj, Tensor) else "array"}
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, numpy.integer)):
        return int(obj)
    if isinstance(obj, (float, numpy.floating)):
        return float(obj)
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: _flatten(v, _join(path, k), tensors) for k, v in obj.items()}
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int, bool)) and k is not None:
                raise errors.DTypeError(
                    f"ember.save: dict keys must be str or int, got {type(k).__name__} {k!r}"
                )
            items.append([k, _flatten(v, _join(path, str(k)), tensors)])
        return {"$items": items}
    if isinstance(obj, (list, tuple)):
        values = [_flatten(v, _join(path, str(i)), tensors) for i, v in enumerate(obj)]
        return {"$tuple": values} if isinstance(obj, tuple) else values
    raise errors.DTypeError(
        f"ember.save: cannot store a {type(obj).__name__} at '{path or '<root>'}'; ember files "
        "hold tensors, arrays, numbers, strings, bools, None, and dicts/lists/tuples of them "
        "(no pickle, so loading can never run code)"
    )


def _join(path, key):
    return f"{path}.{key}" if path else key


def _layout(tensors):
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        code = _CODES.get(arr.dtype)
        if code is None:
            raise errors.DTypeError(f"ember.save: tensor '{name}' has unsupported dtype {arr.dtype}")
        data = numpy.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    return header, blobs


# ---- reading ---------------------------------------------------------------------------------


def load(path, map_location=None):
    """Read what ``save`` wrote (or any safetensors file: then a dict of name -> Tensor).

    ``map_location`` ('cpu', 'cuda') moves the tensors after loading."""
    header, metadata, data = _read_checked(path)
    arrays = {name: _array(name, info, data) for name, info in header.items()}
    if metadata.get("format") == FORMAT:
        structure = _json(path, metadata.get("structure", "null"))
        obj = _rebuild(structure, arrays, path)
    else:
        obj = {name: Tensor._make(a, False, None, 0) for name, a in arrays.items()}
    if map_location is not None:
        obj = _move(obj, map_location)
    return obj


def _fail(path, problem):
    raise CheckpointError(f"{os.fspath(path)}: {problem}")


def _json(path, text):
    def no_duplicates(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                _fail(path, f"the header names '{k}' twice; the file is corrupt or was "
                            "written to confuse readers")
            seen[k] = v
        return seen

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        _fail(path, f"the header is not valid JSON ({exc}); the file is not a safetensors "
                    "file or is corrupt")


def _read_checked(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise CheckpointError(f"{os.fspath(path)}: no such file") from None
    if len(raw) < 8:
        _fail(path, f"the file is {len(raw)} bytes long, too short to be a safetensors file "
                    "(truncated?)")
    (n,) = struct.unpack_from("<Q", raw, 0)
    if n > _MAX_HEADER or 8 + n > len(raw):
        _fail(path, f"the header claims {n} bytes but the file has {len(raw)}: truncated, or "
                    "not a safetensors file")
    try:
        text = raw[8:8 + n].decode("utf-8")
    except UnicodeDecodeError:
        _fail(path, "the header is not UTF-8 text; not a safetensors file")
    header = _json(path, text)
    if not isinstance(header, dict):
        _fail(path, "the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        _fail(path, "__metadata__ is not a JSON object")
    data = memoryview(raw)[8 + n:]
    _check_offsets(path, header, len(data))
    expected = metadata.get("sha256")
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        _fail(path, "the tensor data does not match its checksum: the file is corrupt (a "
                    "partial copy, or bytes changed on disk)")
    return header, metadata, data


def _check_offsets(path, header, size):
    spans = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            _fail(path, f"tensor '{name}' has a malformed header entry {info!r}")
        dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _DTYPES:
            _fail(path, f"tensor '{name}' has unsupported dtype {dtype!r}")
        if (not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape)
                or not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) for o in offs)):
            _fail(path, f"tensor '{name}' has a malformed shape or offsets")
        begin, end = offs
        count = 1
        for s in shape:
            count *= s
        nbytes = count * numpy.dtype(_DTYPES[dtype]).itemsize
        if begin < 0 or end < begin or end > size:
            _fail(path, f"tensor '{name}' points at bytes {begin}..{end} but the data section "
                        f"has {size} bytes (truncated file?)")
        if end - begin != nbytes:
            _fail(path, f"tensor '{name}' declares shape {tuple(shape)} of {dtype} "
                        f"({nbytes} bytes) but its data holds {end - begin} bytes")
        spans.append((begin, end, name))
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            _fail(path, f"tensors '{n0}' and '{n1}' overlap in the data section")


def _array(name, info, data):
    begin, end = info["data_offsets"]
    dt = numpy.dtype(_DTYPES[info["dtype"]])
    arr = numpy.frombuffer(data[begin:end], dtype=dt).reshape(info["shape"]).copy()
    return arr


def _rebuild(node, arrays, path):
    if isinstance(node, list):
        return [_rebuild(v, arrays, path) for v in node]
    if not isinstance(node, dict):
        return node
    if "$tensor" in node:
        name = node["$tensor"]
        if name not in arrays:
            _fail(path, f"the structure refers to tensor '{name}' which the file lacks")
        arr = arrays[name]
        return Tensor._make(arr, False, None, 0) if node.get("$kind") != "array" else arr
    if "$tuple" in node:
        return tuple(_rebuild(v, arrays, path) for v in node["$tuple"])
    if "$items" in node:
        return {k: _rebuild(v, arrays, path) for k, v in node["$items"]}
    return {k: _rebuild(v, arrays, path) for k, v in node.items()}


def _move(obj, device):
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _move(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_move(v, device) for v in obj)
    return obj
