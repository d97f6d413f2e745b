"""Flatten parameters into one vector and back (for second-order optimizers, evolution
strategies, or checksums)."""

from ember import errors
from ember.autograd.function import Function
from ember.ops import shape as shape_ops
from ember.tensor import Tensor


class _FlatConcat(Function):
    """Concatenate the flattened inputs into one vector; backward slices the gradient back."""

    @staticmethod
    def forward(ctx, *arrays):
        ctx.shapes = [a.shape for a in arrays]
        return ctx.xp.concatenate([a.reshape(-1) for a in arrays])

    @staticmethod
    def backward(ctx, gy):
        grads = []
        start = 0
        for shape in ctx.shapes:
            n = 1
            for s in shape:
                n *= s
            grads.append(shape_ops.reshape(gy[start:start + n], shape))
            start += n
        return tuple(grads)


def _check_device(parameters):
    device = None
    for p in parameters:
        if device is None:
            device = p.device
        elif p.device != device:
            raise errors.DeviceError(
                f"expected all parameters on one device, found {device} and {p.device}; move "
                "the model with model.to(device) first"
            )


def parameters_to_vector(parameters):
    """All parameters flattened and joined into one 1-D tensor (differentiable).

    Example::

        >>> nn.utils.parameters_to_vector(nn.Linear(3, 2).parameters()).shape
        ember.Size([8])
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    _check_device(params)
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    return _FlatConcat.apply(*params)


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-D tensor ``vec`` into ``parameters`` (their storage
    is replaced by views of ``vec``, as in PyTorch; no gradient is recorded).

    Example::

        >>> v = nn.utils.parameters_to_vector(model.parameters())
        >>> nn.utils.vector_to_parameters(v * 0.5, model.parameters())
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected vec to be a Tensor, got {type(vec).__name__}")
    if vec.ndim != 1:
        raise errors.ShapeError(
            f"vector_to_parameters: vec must be 1-D, got shape {errors.shape_str(vec.shape)}"
        )
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    _check_device(params)
    total = sum(p.numel() for p in params)
    if total != vec.shape[0]:
        raise errors.ShapeError(
            f"vector_to_parameters: vec has {vec.shape[0]} elements but the parameters need "
            f"{total}"
        )
    start = 0
    data = vec._data
    for p in params:
        n = p.numel()
        p._data = data[start:start + n].reshape(p._data.shape)
        p._bump_version()
        start += n
