"""Array-library seam: the only place that chooses between NumPy and CuPy.

Ops never import numpy or cupy to dispatch; they ask ``get_array_module(array)`` (or read
``tensor.device.xp``) and call that module, so the same code runs on CPU and GPU.
"""

from ember.backend import numpy_backend
from ember.backend.devices import Device, device, get_array_module, cpu  # noqa: F401
