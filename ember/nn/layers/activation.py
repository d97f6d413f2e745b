"""Activation layers: one Module per function of ``ember/ops/activation.py``, with PyTorch's
names, arguments and printouts. ``inplace=True`` writes the result into the input's storage,
as in PyTorch (under autograd the input must not be a leaf that requires grad)."""

import warnings

from ember import errors
from ember.nn import functional as F
from ember.nn import module as _module
from ember.ops import _common, elementwise

__all__ = [
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Softplus",
    "Softsign", "Hardtanh", "Hardsigmoid", "Hardswish", "Sigmoid", "LogSigmoid", "Tanh",
    "Softmax", "LogSoftmax", "Softmin", "Threshold",
]


class _Activation(_module.Module):
    """An elementwise function with fixed arguments; subclasses set ``_fn`` and ``_args``."""

    _args = ()  # names of the attributes passed to _fn after the input

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def _compute(self, input):
        return type(self)._fn(input, *(getattr(self, a) for a in self._args))

    def forward(self, input):
        try:
            if self.inplace:
                return _common.inplace(input, self._compute, type(self).__name__.lower() + "_")
            return self._compute(input)
        except (errors.ShapeError, errors.DTypeError) as exc:
            raise type(exc)(f"{self._layer_label()}: {exc}") from None

    def _args_repr(self):
        return ", ".join(f"{a}={getattr(self, a)}" for a in self._args)

    def extra_repr(self):
        parts = [self._args_repr()] if self._args else []
        if self.inplace:
            parts.append("inplace=True")
        return ", ".join(parts)


class ReLU(_Activation):
    """``max(x, 0)`` elementwise.

    Args:
        inplace (bool): write the result into the input. Default: False.

    Shape:
        Input: any shape. Output: the same shape.

    Example::

        >>> nn.ReLU()(ember.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    _fn = staticmethod(F.relu)


class Hardtanh(_Activation):
    """``x`` clamped to ``[min_val, max_val]``.

    Args:
        min_val (float): Default: -1. max_val (float): Default: 1.
        inplace (bool): Default: False.

    Example::

        >>> nn.Hardtanh(-2, 2)(ember.tensor([-3.0, 0.5, 3.0]))
        tensor([-2.0000,  0.5000,  2.0000])
    """

    _fn = staticmethod(F.hardtanh)
    _args = ("min_val", "max_val")

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__(inplace)
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) cannot be greater than max_val "
                             f"({max_val})")
        self.min_val = min_val
        self.max_val = max_val


class ReLU6(Hardtanh):
    """``min(max(x, 0), 6)``.

    Example::

        >>> nn.ReLU6()(ember.tensor([-1.0, 3.0, 8.0]))
        tensor([0., 3., 6.])
    """

    _args = ()

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def _compute(self, input):
        return F.hardtanh(input, 0.0, 6.0)


class LeakyReLU(_Activation):
    """``x`` where positive, ``negative_slope * x`` elsewhere.

    Args:
        negative_slope (float): Default: 0.01. inplace (bool): Default: False.

    Example::

        >>> nn.LeakyReLU(0.1)(ember.tensor([-2.0, 3.0]))
        tensor([-0.2000,  3.0000])
    """

    _fn = staticmethod(F.leaky_relu)
    _args = ("negative_slope",)

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__(inplace)
        self.negative_slope = negative_slope


class ELU(_Activation):
    """``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise.

    Args:
        alpha (float): Default: 1.0. inplace (bool): Default: False.

    Example::

        >>> nn.ELU()(ember.randn(2)).shape
        ember.Size([2])
    """

    _fn = staticmethod(F.elu)
    _args = ("alpha",)

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__(inplace)
        self.alpha = alpha


class CELU(ELU):
    """``x`` for x > 0, ``alpha * (exp(x / alpha) - 1)`` otherwise.

    Args:
        alpha (float): Default: 1.0. inplace (bool): Default: False.
    """

    _fn = staticmethod(F.celu)


class SELU(_Activation):
    """``scale * elu(x, alpha)`` with the self-normalizing constants (alpha ~ 1.6733,
    scale ~ 1.0507).

    Args:
        inplace (bool): Default: False.
    """

    _fn = staticmethod(F.selu)


class GELU(_Activation):
    """``x * Phi(x)``, Phi the standard normal CDF; ``approximate='tanh'`` uses the tanh
    formula.

    Args:
        approximate (str): 'none' or 'tanh'. Default: 'none'.

    Example::

        >>> nn.GELU(approximate="tanh")(ember.randn(3)).shape
        ember.Size([3])
    """

    _fn = staticmethod(F.gelu)
    _args = ("approximate",)

    def __init__(self, approximate="none"):
        super().__init__(False)
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh'. Received: "
                             f"approximate={approximate!r}")
        self.approximate = approximate

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(_Activation):
    """``x * sigmoid(x)`` (swish).

    Args:
        inplace (bool): Default: False.
    """

    _fn = staticmethod(F.silu)


class Mish(_Activation):
    """``x * tanh(softplus(x))``.

    Args:
        inplace (bool): Default: False.
    """

    _fn = staticmethod(F.mish)


class Softplus(_Activation):
    """``log(1 + exp(beta * x)) / beta``; linear above ``threshold`` (in beta * x).

    Args:
        beta (float): Default: 1.0. threshold (float): Default: 20.0.
    """

    _fn = staticmethod(F.softplus)
    _args = ("beta", "threshold")

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__(False)
        self.beta = beta
        self.threshold = threshold


class Softsign(_Activation):
    """``x / (1 + |x|)``."""

    _fn = staticmethod(F.softsign)

    def __init__(self):
        super().__init__(False)


class Hardsigmoid(_Activation):
    """``relu6(x + 3) / 6``.

    Args:
        inplace (bool): Default: False.
    """

    _fn = staticmethod(F.hardsigmoid)

    def extra_repr(self):
        return ""  # PyTorch prints no arguments for Hardsigmoid


class Hardswish(_Activation):
    """``x * relu6(x + 3) / 6``.

    Args:
        inplace (bool): Default: False.
    """

    _fn = staticmethod(F.hardswish)

    def extra_repr(self):
        return ""


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``."""

    _fn = staticmethod(F.sigmoid)

    def __init__(self):
        super().__init__(False)


class LogSigmoid(_Activation):
    """``log(sigmoid(x))``, computed stably."""

    _fn = staticmethod(F.logsigmoid)

    def __init__(self):
        super().__init__(False)


class Tanh(_Activation):
    """``tanh(x)``."""

    _fn = staticmethod(F.tanh)

    def __init__(self):
        super().__init__(False)


class Threshold(_Activation):
    """``x`` where ``x > threshold``, ``value`` elsewhere.

    Args:
        threshold (float): the threshold. value (float): the replacement.
        inplace (bool): Default: False.

    Example::

        >>> nn.Threshold(0.1, 20)(ember.tensor([0.0, 0.5]))
        tensor([20.0000,  0.5000])
    """

    _args = ("threshold", "value")

    def __init__(self, threshold, value, inplace=False):
        super().__init__(inplace)
        self.threshold = threshold
        self.value = value

    def _compute(self, input):
        return elementwise.where(input > self.threshold, input, self.value)


def _legacy_softmax_dim(name, ndim):
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to "
        "include dim=X as an argument.",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


class _SoftmaxBase(_module.Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def _dim(self, input):
        if self.dim is None:
            return _legacy_softmax_dim(type(self).__name__.lower(), input.ndim)
        return self.dim

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """``exp(x) / sum(exp(x))`` along ``dim``.

    Args:
        dim (int): the dim the values sum to 1 along.

    Example::

        >>> nn.Softmax(dim=1)(ember.randn(2, 3)).sum(1)
        tensor([1., 1.])
    """

    def forward(self, input):
        return F.softmax(input, self._dim(input))


class LogSoftmax(_SoftmaxBase):
    """``log(softmax(x))`` along ``dim``, computed stably.

    Args:
        dim (int): the dim to normalize along.
    """

    def forward(self, input):
        return F.log_softmax(input, self._dim(input))


class Softmin(_SoftmaxBase):
    """``softmax(-x)`` along ``dim``.

    Args:
        dim (int): the dim the values sum to 1 along.
    """

    def forward(self, input):
        return F.softmax(-input, self._dim(input))
