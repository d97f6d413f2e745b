"""Dropout: dropout, dropout1d/2d/3d (whole channels), alpha_dropout, feature_alpha_dropout.

Masks are drawn from ``ember.random``'s default generator, so ``ember.manual_seed(s)`` makes a
run repeat. Every variant is ``y = x * a + c`` with a constant array ``a`` (the scaled keep
mask, broadcast over the spatial dims for the channel variants) and a constant ``c`` (alpha
dropout only): one Function, ``_MaskAffine``, whose backward is ``gy * a``.

``inplace=True`` writes the result into the input's storage as PyTorch does (and raises, as
every in-place op does, on a leaf that requires grad).
"""

from ember import errors, random
from ember.autograd.function import Function
from ember.ops import _common
from ember.tensor import Tensor

# SELU's fixed point: alpha dropout sets dropped units to -scale * alpha, SELU's negative
# saturation value, and rescales so that mean 0 and variance 1 are kept.
_ALPHA_P = -1.7580993408473766

# Top-level exports (ember.NAME): torch has dropout, alpha_dropout and feature_alpha_dropout at
# its top level; the channel variants exist only in torch.nn.functional.
__all__ = ["dropout", "alpha_dropout", "feature_alpha_dropout"]


class _MaskAffine(Function):
    """y = x * a + c with constant arrays ``a`` and ``c`` (broadcast; ``c`` may be None)."""

    @staticmethod
    def forward(ctx, x, a, c):
        ctx.a = a
        y = x * a
        if c is not None:
            y += c
        return y

    @staticmethod
    def backward(ctx, gy):
        return _MaskAffine.apply(gy, ctx.a, None), None, None


def _check(op, input, p):
    if not isinstance(input, Tensor):
        raise errors.DTypeError(f"{op}: expected a Tensor, got {type(input).__name__}")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p!r}")
    if input._data.dtype.kind != "f":
        raise errors.DTypeError(
            f"{op}: expected a floating-point input, got {input.dtype}; convert it first, e.g. "
            "x.float()"
        )


def _keep_mask(input, mask_shape, p, scale):
    """``scale`` where a unit is kept (probability 1 - p), 0 where dropped, as an array of the
    input's dtype on its device, drawn from the default generator."""
    dtype = input._data.dtype
    rng = random.default_generator.numpy
    draw_dtype = dtype if dtype.name in ("float32", "float64") else "float64"
    u = rng.random(mask_shape, dtype=draw_dtype)
    mask = (u >= p).astype(dtype)
    if scale != 1.0:
        mask *= scale
    return input.device.xp.asarray(mask)


def _apply(op, input, a, c, inplace):
    if inplace:
        return _common.inplace(input, lambda src: _MaskAffine.apply(src, a, c), op + "_")
    return _MaskAffine.apply(input, a, c)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``, so the
    expected value is unchanged. With ``training=False`` the input is returned as it is.

    Args:
        input (Tensor): any shape.
        p (float): probability of an element to be zeroed. Default: 0.5.
        training (bool): apply dropout only if True. Default: True.
        inplace (bool): write the result into ``input``. Default: False.

    Example::

        >>> _ = ember.manual_seed(0)
        >>> y = F.dropout(ember.ones(1000), 0.2)
        >>> set(y.tolist()) == {0.0, 1.25}
        True
    """
    _check("dropout", input, p)
    if not training:
        return input
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    a = _keep_mask(input, tuple(input.shape), p, scale)
    return _apply("dropout", input, a, None, inplace)


def _channel_shape(op, input, spatial):
    """Mask shape for channel dropout: (N, C, 1, ...) for batched, (C, 1, ...) unbatched."""
    n = input.ndim
    if n not in (spatial + 1, spatial + 2):
        raise errors.ShapeError(
            f"{op}: expected a {spatial + 1}-D (unbatched) or {spatial + 2}-D (batched) input, "
            f"got input of shape {errors.shape_str(input.shape)}"
        )
    lead = 2 if n == spatial + 2 else 1
    return tuple(input.shape[:lead]) + (1,) * (n - lead)


def _feature_dropout(op, input, p, training, inplace, spatial, alpha):
    _check(op, input, p)
    if not training or p == 0.0:
        return input
    mask_shape = _channel_shape(op, input, spatial)
    if alpha:
        return _alpha(op, input, p, mask_shape, inplace)
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return _apply(op, input, _keep_mask(input, mask_shape, p, scale), None, inplace)


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, L) or (C, L) with probability ``p`` and scale the rest by
    ``1 / (1 - p)``; see dropout."""
    return _feature_dropout("dropout1d", input, p, training, inplace, 1, False)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, H, W) or (C, H, W) with probability ``p`` and scale the
    rest by ``1 / (1 - p)``.

    A 3-D input is read as (N, C, L), as PyTorch 2.x still does (it warns; use dropout1d
    for that).
    """
    _check("dropout2d", input, p)
    if input.ndim == 3:
        return _feature_dropout("dropout2d", input, p, training, inplace, 1, False)
    return _feature_dropout("dropout2d", input, p, training, inplace, 2, False)


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) with probability ``p``; see
    dropout2d."""
    return _feature_dropout("dropout3d", input, p, training, inplace, 3, False)


def _alpha(op, input, p, mask_shape, inplace):
    xp = input.device.xp
    if p == 1.0:
        return _apply(op, input, xp.zeros(mask_shape, input._data.dtype), None, inplace)
    a = ((1.0 - p) * (1.0 + p * _ALPHA_P * _ALPHA_P)) ** -0.5
    keep = _keep_mask(input, mask_shape, p, 1.0)
    # kept: a * x + b; dropped: a * alpha' + b, with b = -a * alpha' * p.
    b = -a * _ALPHA_P * p
    add = (1.0 - keep) * (a * _ALPHA_P) + b
    keep *= a
    return _apply(op, input, keep, add, inplace)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout for SELU networks: dropped units take SELU's negative saturation value and the
    output is rescaled so that zero mean and unit variance are kept.

    Args:
        input (Tensor): any shape. p (float): drop probability. Default: 0.5.
        training (bool): Default: False (as in PyTorch). inplace (bool): Default: False.
    """
    _check("alpha_dropout", input, p)
    if not training or p == 0.0:
        return input
    return _alpha("alpha_dropout", input, p, tuple(input.shape), inplace)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """alpha_dropout over whole channels of (N, C, *) inputs."""
    _check("feature_alpha_dropout", input, p)
    if not training or p == 0.0:
        return input
    if input.ndim < 2:
        raise errors.ShapeError(
            f"feature_alpha_dropout: expected an input of shape (N, C, *), got "
            f"{errors.shape_str(input.shape)}"
        )
    mask_shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    return _alpha("feature_alpha_dropout", input, p, mask_shape, inplace)


TENSOR_METHODS = {}
