"""PyTorch-style tensor repr: values, then dtype (when not the default), device, grad state."""

import numpy

from ember import dtypes

_DEFAULT_SHOWN = ("int64", "bool")


def tensor_repr(t):
    data = t._data if isinstance(t._data, numpy.ndarray) else t._data.get()
    prefix = "tensor("
    if data.size == 0:
        body = "[]" if data.ndim == 1 else f"[], size={tuple(data.shape)}"
    else:
        body = numpy.array2string(
            data, separator=", ", prefix=prefix, precision=4, suppress_small=False,
            threshold=1000, edgeitems=3, max_line_width=80,
            formatter=None if data.dtype.kind != "f" else {"float_kind": _float_formatter(data)},
        )
    extras = []
    if t.device.type != "cpu":
        extras.append(f"device='{t.device}'")
    name = data.dtype.name
    if name not in _DEFAULT_SHOWN and data.dtype != dtypes.get_default_dtype():
        extras.append(f"dtype={dtypes.name(data.dtype)}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}Backward>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return prefix + body + "".join(", " + e for e in extras) + ")"


def _float_formatter(data):
    finite = data[numpy.isfinite(data)] if data.size else data
    use_sci = False
    if finite.size:
        amax = float(numpy.abs(finite).max())
        amin = float(numpy.abs(finite[finite != 0]).min()) if numpy.any(finite != 0) else 0.0
        use_sci = amax >= 1e8 or (amin and amin < 1e-4) or (amin and amax / amin > 1e7)
    ints = finite.size and numpy.all(finite == numpy.round(finite))

    def fmt(x):
        if not numpy.isfinite(x):
            return "nan" if numpy.isnan(x) else ("inf" if x > 0 else "-inf")
        if use_sci:
            return f"{x:.4e}"
        if ints:
            return f"{x:.0f}."
        return f"{x:.4f}"

    return fmt
