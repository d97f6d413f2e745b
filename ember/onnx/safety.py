"""Validation of ONNX files that ember did not write (untrusted input).

An ONNX file is a protobuf: parsing it runs no code (ember never uses pickle or eval on the load
path), but its fields can still lie. ``check`` refuses, with an ``UnsafeModelError`` that names
the tensor and what to do:

- external data whose ``location`` is absolute, climbs out with ``..``, or resolves (through
  symlinks) outside the model's folder;
- tensors whose declared shape does not match the bytes they carry (inline or external), and
  negative dimensions;
- external data with a bad offset/length, or a file shorter than declared.

``load_model(path)`` is the safe way to read a file: bounded read, parse, ``check``, then external
data read by ember itself (never by following paths onnx would follow).
"""

import os

import numpy

from ember import errors


class UnsafeModelError(errors.EmberError, ValueError):
    """An ONNX file that is malformed or points outside its folder."""


_SUB_BYTE_BITS = {"INT4": 4, "UINT4": 4, "FLOAT4E2M1": 4, "INT2": 2, "UINT2": 2}
_TYPED_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data",
                 "uint64_data")


def load_model(path, max_bytes=1 << 34):
    """Read, parse and check the ONNX file ``path``; external data is read into the tensors.

    Raises ``UnsafeModelError`` naming the file and the problem for anything malformed.
    """
    import onnx  # noqa: PLC0415
    from google.protobuf import message  # noqa: PLC0415

    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise UnsafeModelError(f"ONNX file {path!r} cannot be read: {e.strerror}") from None
    if size > max_bytes:
        raise UnsafeModelError(f"ONNX file {path!r} is {size} bytes, over the limit of "
                               f"{max_bytes}; store large weights as external data")
    with open(path, "rb") as f:
        data = f.read()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (message.DecodeError, RecursionError, ValueError) as e:
        raise UnsafeModelError(f"ONNX file {path!r} is not a valid ONNX protobuf (truncated or "
                               f"corrupted?): {e}") from None
    if not model.HasField("graph"):
        raise UnsafeModelError(f"ONNX file {path!r} holds no graph (is it an ONNX model?)")
    base_dir = os.path.dirname(os.path.abspath(path))
    check(model, base_dir, source=path)
    for tensor, where in _tensors(model):
        if _is_external(tensor):
            _inline_external(tensor, base_dir, where)
    return model


def check(model, base_dir=None, source=None):
    """Raise ``UnsafeModelError`` if ``model`` (an ``onnx.ModelProto``) is malformed or reads
    data from outside ``base_dir`` (the model's folder). Returns None when it is fine."""
    label = f"ONNX file {source!r}" if source else "ONNX model"
    for tensor, where in _tensors(model):
        _check_tensor(tensor, where, base_dir, label)


def _tensors(model):
    """Every TensorProto of the model with a description of where it sits."""
    stack = [(model.graph, "graph")]
    for fn in model.functions:
        for node in fn.node:
            stack.extend(_node_graphs(node, f"function {fn.name!r}"))
            yield from _node_tensors(node, f"function {fn.name!r}")
    while stack:
        graph, where = stack.pop()
        for t in graph.initializer:
            yield t, f"initializer {t.name!r} in {where}"
        for s in graph.sparse_initializer:
            yield s.values, f"sparse initializer {s.values.name!r} in {where}"
            yield s.indices, f"indices of sparse initializer {s.values.name!r} in {where}"
        for node in graph.node:
            yield from _node_tensors(node, where)
            stack.extend(_node_graphs(node, where))


def _node_tensors(node, where):
    for a in node.attribute:
        label = f"attribute {a.name!r} of node {node.name or node.op_type!r} in {where}"
        if a.HasField("t"):
            yield a.t, label
        for t in a.tensors:
            yield t, label
        if a.HasField("sparse_tensor"):
            yield a.sparse_tensor.values, label
            yield a.sparse_tensor.indices, label


def _node_graphs(node, where):
    out = []
    for a in node.attribute:
        label = f"subgraph {a.name!r} of node {node.name or node.op_type!r} in {where}"
        if a.HasField("g"):
            out.append((a.g, label))
        out.extend((g, label) for g in a.graphs)
    return out


def _is_external(t):
    import onnx  # noqa: PLC0415

    return t.data_location == onnx.TensorProto.EXTERNAL


def _element_count(t, where, label):
    n = 1
    for d in t.dims:
        if d < 0:
            raise UnsafeModelError(f"{label}: {where} declares a negative dimension "
                                   f"{list(t.dims)}")
        n *= d
    return n


def _byte_size(t, n, where, label):
    """Bytes that ``n`` elements of ``t``'s type take, or None for strings."""
    import onnx  # noqa: PLC0415

    try:
        name = onnx.TensorProto.DataType.Name(t.data_type)
    except ValueError:
        raise UnsafeModelError(f"{label}: {where} has unknown data type {t.data_type}") from None
    if name in ("STRING", "UNDEFINED"):
        return None
    if name in _SUB_BYTE_BITS:
        return (n * _SUB_BYTE_BITS[name] + 7) // 8
    itemsize = numpy.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
    return n * itemsize


def _check_tensor(t, where, base_dir, label):
    n = _element_count(t, where, label)
    nbytes = _byte_size(t, n, where, label)
    if _is_external(t):
        _check_external(t, where, base_dir, label, nbytes)
        return
    if t.HasField("raw_data") or (nbytes == 0 and not _typed_count(t)):
        if nbytes is not None and len(t.raw_data) != nbytes:
            raise UnsafeModelError(
                f"{label}: {where} declares shape {list(t.dims)} ({nbytes} bytes) but carries "
                f"{len(t.raw_data)} bytes; the file is truncated or corrupted")
        return
    count = _typed_count(t)
    if count == 0 and n == 0:
        return
    expect = _typed_expected(t, n)
    if expect is None:
        if count > n or (n and not count):
            raise UnsafeModelError(f"{label}: {where} declares shape {list(t.dims)} but "
                                   f"carries {count} values")
        return
    if count != expect:
        raise UnsafeModelError(
            f"{label}: {where} declares shape {list(t.dims)} ({expect} values) but carries "
            f"{count}; the file is truncated or corrupted")


def _typed_count(t):
    return sum(len(getattr(t, f)) for f in _TYPED_FIELDS)


def _typed_expected(t, n):
    import onnx  # noqa: PLC0415

    name = onnx.TensorProto.DataType.Name(t.data_type)
    if name.startswith("COMPLEX"):
        return 2 * n
    if name in _SUB_BYTE_BITS:
        return None  # packing into int32_data varies by writer: only bound the count
    return n


def _external_info(t):
    info = {e.key: e.value for e in t.external_data}
    return info.get("location", ""), info.get("offset", "0"), info.get("length")


def _resolve(t, where, base_dir, label):
    location, _, _ = _external_info(t)
    if not location:
        raise UnsafeModelError(f"{label}: {where} is external data with no 'location'")
    if base_dir is None:
        raise UnsafeModelError(
            f"{label}: {where} stores its data in the external file {location!r}, but the "
            "model was given without its folder; load it from a path (ember.onnx.load(path))")
    parts = location.replace("\\", "/").split("/")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in parts[0] \
            or ".." in parts:
        raise UnsafeModelError(
            f"{label}: {where} points at external data {location!r} outside the model's "
            "folder; external data must be a relative path inside the folder of the .onnx file")
    root = os.path.realpath(base_dir)
    full = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, full]) != root:
        raise UnsafeModelError(
            f"{label}: {where} points at external data {location!r}, which resolves (through "
            f"a symlink) to {full!r}, outside the model's folder {root!r}; refusing to read it")
    return location, full


def _check_external(t, where, base_dir, label, nbytes):
    location, full = _resolve(t, where, base_dir, label)
    _, offset, length = _external_info(t)
    try:
        offset = int(offset)
        length = None if length is None else int(length)
    except ValueError:
        raise UnsafeModelError(f"{label}: {where} has a non-integer external offset/length "
                               f"({offset!r}, {length!r})") from None
    if offset < 0 or (length is not None and length < 0):
        raise UnsafeModelError(f"{label}: {where} has a negative external offset/length")
    if not os.path.isfile(full):
        raise UnsafeModelError(f"{label}: {where}: external data file {location!r} is missing "
                               f"next to the model (looked for {full!r})")
    available = os.path.getsize(full) - offset
    length = available if length is None else length
    if length > available:
        raise UnsafeModelError(
            f"{label}: {where} reads {length} bytes at offset {offset} of {location!r}, which "
            f"has only {max(available, 0)} bytes there; the data file is truncated")
    if nbytes is not None and length != nbytes:
        raise UnsafeModelError(
            f"{label}: {where} declares shape {list(t.dims)} ({nbytes} bytes) but its external "
            f"data {location!r} holds {length} bytes")


def _inline_external(t, base_dir, where):
    """Read a checked external tensor's bytes into ``raw_data`` (ember's reader, bounded)."""
    import onnx  # noqa: PLC0415

    _, full = _resolve(t, where, base_dir, "ONNX model")
    _, offset, length = _external_info(t)
    with open(full, "rb") as f:
        f.seek(int(offset))
        data = f.read(-1 if length is None else int(length))
    t.raw_data = data
    del t.external_data[:]
    t.data_location = onnx.TensorProto.DEFAULT
