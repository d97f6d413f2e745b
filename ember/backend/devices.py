"""Device objects: 'cpu' (NumPy) and 'cuda[:N]' (CuPy)."""

import numpy

from ember import errors
from ember.backend import cupy_backend


class Device:
    """Where a tensor's array lives. Compares equal to its string form ('cpu', 'cuda:0')."""

    __slots__ = ("type", "index", "_xp")

    def __init__(self, type, index=None):
        self.type = type
        self.index = index
        self._xp = numpy if type == "cpu" else None

    @property
    def xp(self):
        """The array module (numpy or cupy) for this device."""
        if self._xp is None:
            self._xp = cupy_backend.load()
        return self._xp

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        if not isinstance(other, Device):
            return NotImplemented
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self):
        return hash((self.type, self.index or 0))


cpu = Device("cpu")


def device(spec="cpu"):
    """Parse 'cpu', 'cuda', 'cuda:1' or a Device into a Device."""
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise errors.DeviceError(f"expected a device like 'cpu' or 'cuda:0', got {spec!r}")
    name, _, idx = spec.partition(":")
    if name == "cpu" and not idx:
        return cpu
    if name in ("cuda", "gpu"):
        return Device("cuda", int(idx) if idx else 0)
    raise errors.DeviceError(f"unknown device {spec!r}; ember knows 'cpu' and 'cuda[:N]'")


def device_of(array):
    """The Device an array lives on."""
    if isinstance(array, numpy.ndarray):
        return cpu
    dev = getattr(array, "device", None)
    if dev is not None and hasattr(dev, "id"):
        return Device("cuda", dev.id)
    return cpu


def get_array_module(*arrays):
    """numpy or cupy, by the type of the first array that is not NumPy (NumPy otherwise)."""
    for a in arrays:
        if a is not None and not isinstance(a, (numpy.ndarray, numpy.generic, int, float, bool)):
            mod = type(a).__module__
            if mod.startswith("cupy"):
                return cupy_backend.load()
    return numpy
