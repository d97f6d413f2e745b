"""Dropout layers: Dropout, Dropout1d/2d/3d (whole channels), AlphaDropout,
FeatureAlphaDropout. Active in training mode only; in eval mode they return the input."""

from ember import errors
from ember.nn import functional as F
from ember.nn import module as _module

__all__ = [
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
]


class _DropoutNd(_module.Module):
    _fn = None

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"{type(self).__name__}: dropout probability has to be between 0 "
                             f"and 1, but got {p!r}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        try:
            return type(self)._fn(input, self.p, self.training, self.inplace)
        except (errors.ShapeError, errors.DTypeError) as exc:
            raise type(exc)(f"{self._layer_label()}: {exc}") from None

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """In training, zero each element with probability ``p`` and scale the others by
    ``1 / (1 - p)``; in eval mode, return the input. Masks come from ember's default generator,
    so ``ember.manual_seed`` makes them repeat.

    Args:
        p (float): probability of an element to be zeroed. Default: 0.5.
        inplace (bool): write the result into the input. Default: False.

    Shape:
        Input: any shape. Output: the same shape.

    Example::

        >>> m = nn.Dropout(p=0.2)
        >>> m(ember.randn(20, 16)).shape
        ember.Size([20, 16])
    """

    _fn = staticmethod(F.dropout)


class Dropout1d(_DropoutNd):
    """Zero whole channels of (N, C, L) or (C, L) inputs with probability ``p`` (training
    only), scaling the others by ``1 / (1 - p)``; see Dropout.

    Example::

        >>> nn.Dropout1d(p=0.2)(ember.randn(20, 16, 32)).shape
        ember.Size([20, 16, 32])
    """

    _fn = staticmethod(F.dropout1d)


class Dropout2d(_DropoutNd):
    """Zero whole channels of (N, C, H, W) or (C, H, W) inputs with probability ``p``
    (training only), scaling the others by ``1 / (1 - p)``; see Dropout.

    Example::

        >>> nn.Dropout2d(p=0.2)(ember.randn(20, 16, 32, 32)).shape
        ember.Size([20, 16, 32, 32])
    """

    _fn = staticmethod(F.dropout2d)


class Dropout3d(_DropoutNd):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) inputs with probability ``p``
    (training only); see Dropout2d."""

    _fn = staticmethod(F.dropout3d)


class AlphaDropout(_DropoutNd):
    """Dropout for SELU networks: dropped units take SELU's negative saturation value and the
    output is rescaled to keep zero mean and unit variance (training only).

    Example::

        >>> nn.AlphaDropout(p=0.2)(ember.randn(20, 16)).shape
        ember.Size([20, 16])
    """

    _fn = staticmethod(F.alpha_dropout)


class FeatureAlphaDropout(_DropoutNd):
    """AlphaDropout over whole channels of (N, C, *) inputs (training only)."""

    _fn = staticmethod(F.feature_alpha_dropout)
