"""ember's exception types.

Each subclasses the builtin error a Python user would catch (ValueError, TypeError,
RuntimeError), so ``except ValueError`` keeps working, while ember code can catch precisely.
Messages name the op or layer, echo the shapes/dtypes/devices involved, and suggest a fix.
"""


class EmberError(Exception):
    """Base class of every error ember raises on purpose."""


class ShapeError(EmberError, ValueError):
    """Shapes that cannot work together (broadcasting, matmul, reshape, layer inputs)."""


class DTypeError(EmberError, TypeError):
    """A dtype an op cannot take, or dtypes that cannot mix."""


class DeviceError(EmberError, RuntimeError):
    """Tensors on different devices, or a device that is not available."""


class AutogradError(EmberError, RuntimeError):
    """Misuse of autograd: backward twice through a freed graph, stale saved tensors, ..."""


class ModuleError(EmberError, RuntimeError):
    """Misuse of an nn.Module: a state_dict that does not fit the model, a lazy layer's
    parameters used before it was built."""


def shape_str(shape):
    """Format a shape the way users type it: (2, 3), (5,), ()."""
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"
