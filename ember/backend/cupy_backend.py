"""CuPy: the NVIDIA GPU array library, imported only when a CUDA device is asked for."""

from ember import errors


def load():
    """Return the cupy module, or raise a DeviceError that says how to get it."""
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise errors.DeviceError(
            "device 'cuda' needs CuPy, which is not installed. Install the GPU extra: "
            "pip install 'ember[gpu]' (or a cupy-cudaXXx wheel matching your CUDA)."
        ) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # pragma: no cover - depends on the machine
        raise errors.DeviceError(f"CuPy is installed but no CUDA device is usable: {exc}") from exc
    if count == 0:  # pragma: no cover
        raise errors.DeviceError("CuPy is installed but found no CUDA device.")
    return cupy


def is_available():
    try:
        load()
    except errors.DeviceError:
        return False
    return True
