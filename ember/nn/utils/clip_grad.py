"""Gradient clipping: by the total norm of all gradients, or by value."""

import math

from ember import errors
from ember.tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _norm_of(array, xp, norm_type):
    if norm_type == math.inf:
        return xp.abs(array).max() if array.size else xp.zeros((), array.dtype)
    if norm_type == -math.inf:
        return xp.abs(array).min() if array.size else xp.zeros((), array.dtype)
    if norm_type == 2:
        flat = array.reshape(-1)
        return xp.sqrt(xp.dot(flat, flat))
    if norm_type == 0:
        return (array != 0).sum().astype(array.dtype)
    return (xp.abs(array) ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The ``norm_type`` norm of the norms of ``tensors`` (as if they were one vector),
    returned as a 0-d tensor."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = [t for t in tensors if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        from ember import creation  # noqa: PLC0415

        return creation.tensor(0.0)
    xp = tensors[0].device.xp
    norms = xp.stack([_norm_of(t._data, xp, norm_type).astype(t._data.dtype) for t in tensors])
    total = _norm_of(norms, xp, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise errors.AutogradError(
            f"the total norm of order {norm_type} of the gradients is non-finite ({float(total)}),"
            " so it cannot be clipped; look for NaN/inf in the loss or lower the learning rate, "
            "or pass error_if_nonfinite=False to scale by it anyway"
        )
    return Tensor._make(xp.asarray(total), False, None, 0)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients in place so that their total norm is at most ``max_norm``.

    Args:
        parameters (Tensor or iterable of Tensors): whose ``.grad`` to clip.
        max_norm (float): the largest allowed total norm.
        norm_type (float): the p of the p-norm; ``math.inf`` for the max norm. Default: 2.
        error_if_nonfinite (bool): raise if the total norm is NaN or inf. Default: False.

    Returns:
        The total norm of the gradients before clipping (a 0-d tensor).

    Example::

        >>> loss.backward()
        >>> nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    """
    grads = _grads(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    if not grads:
        return total
    coef = float(max_norm) / (float(total._data) + 1e-6)
    if coef < 1.0:
        for g in grads:
            g._data *= g._data.dtype.type(coef)
            g._bump_version()
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element in place to ``[-clip_value, clip_value]``.

    Example::

        >>> nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)
    """
    clip_value = float(clip_value)
    for g in _grads(parameters):
        xp = g.device.xp
        xp.clip(g._data, -clip_value, clip_value, out=g._data)
        g._bump_version()
