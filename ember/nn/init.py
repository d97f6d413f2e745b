"""Parameter initializers, PyTorch's ``torch.nn.init``.

Each function fills a tensor in place, without recording a graph, and returns it. Random
values come from ember.random's default generator (or ``generator=``), drawn on the host in
float64 and cast, so ``ember.manual_seed(s)`` makes an initialization repeat on any device.

Example::

    >>> w = ember.empty(3, 5)
    >>> nn.init.kaiming_uniform_(w, mode="fan_in", nonlinearity="relu").shape
    ember.Size([3, 5])
"""

import math

import numpy

from ember import errors
from ember import random as _random

_LINEAR_LIKE = (
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "sigmoid",
)


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for an activation (the factor that keeps activations' variance).

    Args:
        nonlinearity (str): 'linear', 'conv1d'..'conv_transpose3d', 'sigmoid', 'tanh', 'relu',
            'leaky_relu' or 'selu'.
        param (float, optional): the negative slope for 'leaky_relu' (default 0.01).

    Example::

        >>> nn.init.calculate_gain("leaky_relu", 0.2)
        1.3867504905630728
    """
    if nonlinearity in _LINEAR_LIKE:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; use one of "
        + ", ".join(_LINEAR_LIKE + ("tanh", "relu", "leaky_relu", "selu"))
    )


def _calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out): dim 1 and dim 0 sizes times the receptive field (dims 2..)."""
    if tensor.ndim < 2:
        raise errors.ShapeError(
            f"fan in and fan out can not be computed for a tensor with fewer than 2 dimensions "
            f"(got shape {errors.shape_str(tensor.shape)}); use uniform_/normal_ for biases"
        )
    receptive = math.prod(tensor.shape[2:]) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} not supported, use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _rng(generator):
    return (generator or _random.default_generator).numpy


def _write(tensor, values):
    """Copy host ``values`` into ``tensor``'s storage (any device) and bump its version."""
    data = tensor._data
    if isinstance(data, numpy.ndarray):
        data[...] = values
    else:
        data[...] = tensor.device.xp.asarray(values.astype(data.dtype))
    tensor._bump_version()
    return tensor


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with values from U(a, b)."""
    return _write(tensor, _rng(generator).uniform(a, b, size=tuple(tensor.shape)))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with values from N(mean, std**2)."""
    return _write(tensor, _rng(generator).normal(mean, std, size=tuple(tensor.shape)))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill with values from N(mean, std**2) truncated to [a, b] (redrawn until inside).

    Example::

        >>> nn.init.trunc_normal_(ember.empty(3, 5), std=0.02)
    """
    if not a < b:
        raise ValueError(f"trunc_normal_: need a < b, got a={a}, b={b}")
    rng = _rng(generator)
    n = tensor.numel()
    # Acceptance probability, to draw enough in few rounds even for narrow windows.
    cdf = lambda x: 0.5 * (1 + math.erf((x - mean) / (std * math.sqrt(2))))  # noqa: E731
    accept = max(cdf(b) - cdf(a), 1e-6)
    out = numpy.empty(n)
    filled = 0
    while filled < n:
        draw = rng.normal(mean, std, size=int((n - filled) / accept * 1.1) + 16)
        draw = draw[(draw >= a) & (draw <= b)][: n - filled]
        out[filled:filled + draw.size] = draw
        filled += draw.size
    return _write(tensor, out.reshape(tuple(tensor.shape)))


def constant_(tensor, val):
    """Fill with the value ``val``."""
    return _write(tensor, numpy.full(tuple(tensor.shape), val))


def ones_(tensor):
    """Fill with ones."""
    return constant_(tensor, 1.0)


def zeros_(tensor):
    """Fill with zeros."""
    return constant_(tensor, 0.0)


def eye_(tensor):
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal, zeros elsewhere)."""
    if tensor.ndim != 2:
        raise errors.ShapeError(
            f"eye_: only 2-D tensors are supported, got shape {errors.shape_str(tensor.shape)}"
        )
    return _write(tensor, numpy.eye(*tensor.shape))


def dirac_(tensor, groups=1):
    """Fill a 3/4/5-D conv weight with the Dirac delta, so the convolution is the identity on
    as many channels as possible (per group)."""
    shape = tuple(tensor.shape)
    if len(shape) not in (3, 4, 5):
        raise errors.ShapeError(
            f"dirac_: only 3, 4 or 5-D tensors are supported, got {errors.shape_str(shape)}"
        )
    if shape[0] % groups != 0:
        raise ValueError(f"dirac_: dim 0 ({shape[0]}) must be divisible by groups ({groups})")
    out_per_group = shape[0] // groups
    values = numpy.zeros(shape)
    centre = tuple(s // 2 for s in shape[2:])
    for g in range(groups):
        for d in range(min(out_per_group, shape[1])):
            values[(g * out_per_group + d, d) + centre] = 1
    return _write(tensor, values)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot uniform: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot normal: N(0, std**2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def _kaiming_std(tensor, a, mode, nonlinearity, who):
    if 0 in tuple(tensor.shape):
        return None
    fan = _calculate_correct_fan(tensor, mode)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He uniform: U(-bound, bound) with ``bound = gain * sqrt(3 / fan_mode)``.

    Args:
        a (float): the negative slope of the leaky_relu after this layer.
        mode (str): 'fan_in' keeps the forward variance, 'fan_out' the backward one.
        nonlinearity (str): 'relu' or 'leaky_relu' (default), see ``calculate_gain``.
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He normal: N(0, std**2) with ``std = gain / sqrt(fan_mode)``."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_")
    if std is None:
        return tensor
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor, gain=1, generator=None):
    """Fill with a (semi-)orthogonal matrix (dims after the first are flattened), scaled by
    ``gain``: rows are orthonormal when rows <= columns, columns otherwise."""
    if tensor.ndim < 2:
        raise errors.ShapeError(
            f"orthogonal_: only tensors with 2 or more dimensions are supported, got "
            f"{errors.shape_str(tensor.shape)}"
        )
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = _rng(generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = numpy.linalg.qr(flat)
    # Sign fix so Q is uniformly distributed (Mezzadri, 2007).
    q *= numpy.sign(numpy.diag(r))
    if rows < cols:
        q = q.T
    return _write(tensor, (gain * q).reshape(tuple(tensor.shape)))


def sparse_(tensor, sparsity, std=0.01, generator=None):
    """Fill a 2-D tensor from N(0, std**2) with a fraction ``sparsity`` of each column zero."""
    if tensor.ndim != 2:
        raise errors.ShapeError(
            f"sparse_: only 2-D tensors are supported, got {errors.shape_str(tensor.shape)}"
        )
    rng = _rng(generator)
    rows, cols = tensor.shape
    zeros = int(math.ceil(sparsity * rows))
    values = rng.normal(0.0, std, size=(rows, cols))
    for c in range(cols):
        values[rng.permutation(rows)[:zeros], c] = 0
    return _write(tensor, values)
