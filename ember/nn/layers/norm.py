"""Normalization layers: BatchNorm1d/2d (lazy-capable), InstanceNorm1d/2d, LayerNorm,
GroupNorm, RMSNorm, over the fused ops of ``ember/ops/norm.py``."""

import numbers

from ember import creation, errors
from ember.nn import functional as F
from ember.nn import init
from ember.nn import module as _module
from ember.nn.parameter import Parameter, UninitializedBuffer, UninitializedParameter

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "LazyBatchNorm1d", "LazyBatchNorm2d", "InstanceNorm1d",
    "InstanceNorm2d", "LayerNorm", "GroupNorm", "RMSNorm",
]


def _relabel(layer, input, exc):
    kind = type(exc) if isinstance(exc, errors.EmberError) else errors.ShapeError
    return kind(f"{layer._layer_label()} with input of shape "
                f"{errors.shape_str(input.shape)}: {exc}")


class _NormBase(_module.LazyMixin, _module.Module):
    """Parameters and running statistics shared by BatchNorm and InstanceNorm."""

    _dims = ()  # accepted input ranks
    _layout = ""  # the expected layout, for error messages

    def __init__(self, num_features=None, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        name = type(self).__name__
        if num_features is not None and (isinstance(num_features, bool) or
                                         not isinstance(num_features, int) or num_features < 1):
            raise ValueError(f"{name}: num_features must be a positive integer (or None to "
                             f"infer it). Received: num_features={num_features!r}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        lazy = num_features is None

        def param():
            if lazy:
                return UninitializedParameter(device=device, dtype=dtype)
            return Parameter(creation.empty(num_features, device=device, dtype=dtype))

        def buffer():
            if lazy:
                return UninitializedBuffer(device=device, dtype=dtype)
            return creation.zeros(num_features, device=device, dtype=dtype)

        self.register_parameter("weight", param() if affine else None)
        if affine and bias:
            self.bias = param()
        else:
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", buffer())
            self.register_buffer("running_var", buffer())
            self.register_buffer("num_batches_tracked",
                                 creation.tensor(0, dtype="int64", device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        if lazy:
            self._make_lazy()
        else:
            self.reset_parameters()

    def reset_running_stats(self):
        """running_mean = 0, running_var = 1, num_batches_tracked = 0."""
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked._data[...] = 0
            self.num_batches_tracked._bump_version()

    def reset_parameters(self):
        """Running statistics reset; weight = 1, bias = 0."""
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def initialize_parameters(self, input, *args, **kwargs):
        self._check_rank(input)
        self.num_features = int(input.shape[self._channel_dim(input)])
        for t in (self.weight, self.bias, self.running_mean, self.running_var):
            if t is not None:
                t.materialize((self.num_features,))
        self.reset_parameters()

    def _sizes_from_parameters(self):
        t = self.weight if self.weight is not None else self.running_mean
        if t is not None:
            self.num_features = int(t.shape[0])

    def _channel_dim(self, input):
        return 1

    def _check_rank(self, input):
        if not hasattr(input, "shape"):
            raise errors.DTypeError(
                f"{self._layer_label()} expected a Tensor input, got {type(input).__name__}"
            )
        if input.ndim not in self._dims:
            ranks = " or ".join(f"{d}-D" for d in self._dims)
            raise errors.ShapeError(
                f"{self._layer_label()} expected a {ranks} input {self._layout}, got input of "
                f"shape {errors.shape_str(input.shape)}"
            )

    def _check_input(self, input):
        self._check_rank(input)
        c = input.shape[self._channel_dim(input)]
        if c != self.num_features:
            raise errors.ShapeError(
                f"{self._layer_label()} expected input with {self.num_features} channels "
                f"(dim {self._channel_dim(input)}), got input of shape "
                f"{errors.shape_str(input.shape)}"
            )

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    def forward(self, input):
        self._check_input(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked._data += 1
            self.num_batches_tracked._bump_version()
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked._data)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        try:
            return F.batch_norm(
                input, self.running_mean if track else None,
                self.running_var if track else None, self.weight, self.bias, use_batch,
                factor, self.eps,
            )
        except (errors.ShapeError, ValueError) as exc:
            raise _relabel(self, input, exc) from None


_BN_DOC = """Batch normalization over {what}: each channel is normalized with the mean and
    (biased) variance of the batch, then scaled by ``weight`` and shifted by ``bias``.

    In training, running estimates are kept: ``running = (1 - momentum) * running +
    momentum * batch_stat`` (the unbiased batch variance for ``running_var``), or a cumulative
    average when ``momentum=None``; ``num_batches_tracked`` counts the batches. In eval mode
    the running estimates normalize the input. Leave ``num_features`` out
    (``nn.BatchNorm{n}d()``) to learn it from the first input.

    Args:
        num_features (int or None): C, the number of channels; None infers it.
        eps (float): added to the variance for stability. Default: 1e-5.
        momentum (float or None): weight of the new statistic; None for a cumulative
            average. Default: 0.1.
        affine (bool): learn ``weight`` (ones) and ``bias`` (zeros). Default: True.
        track_running_stats (bool): keep running estimates; if False, batch statistics are
            used in eval mode too. Default: True.
        device, dtype: where and in which dtype to create parameters and buffers.
        bias (bool, keyword-only): learn ``bias`` too (with affine). Default: True.

    Shape:
        Input: {shape}. Output: the same shape.

    Example::

        >>> bn = nn.BatchNorm{n}d(100)
        >>> bn(ember.randn({example})).shape
        ember.Size([{example}])
    """


class BatchNorm1d(_BatchNorm):
    __doc__ = _BN_DOC.format(what="(N, C) or (N, C, L) inputs", n=1,
                             shape="(N, C) or (N, C, L)", example="20, 100")
    _dims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    __doc__ = _BN_DOC.format(what="(N, C, H, W) inputs", n=2, shape="(N, C, H, W)",
                             example="20, 100, 35, 45")
    _dims = (4,)
    _layout = "(N, C, H, W)"


def _lazy_bn(base):
    class Lazy(base):
        def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                     device=None, dtype=None, *, bias=True):
            super().__init__(None, eps, momentum, affine, track_running_stats, device, dtype,
                             bias=bias)

        def _get_name(self):
            return base.__name__ if not self.has_uninitialized_params() else "Lazy" + \
                base.__name__

    Lazy.__name__ = Lazy.__qualname__ = "Lazy" + base.__name__
    Lazy.__doc__ = (f"``{base.__name__}`` whose ``num_features`` comes from the first input "
                    f"(the same as ``{base.__name__}()``).")
    return Lazy


LazyBatchNorm1d = _lazy_bn(BatchNorm1d)
LazyBatchNorm2d = _lazy_bn(BatchNorm2d)


class _InstanceNorm(_NormBase):
    def __init__(self, num_features=None, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    def _channel_dim(self, input):
        return 1 if input.ndim == max(self._dims) else 0

    def forward(self, input):
        self._check_input(input)
        from ember.ops import shape as shape_ops  # noqa: PLC0415

        unbatched = input.ndim == min(self._dims)
        x = shape_ops.reshape(input, (1,) + tuple(input.shape)) if unbatched else input
        use_input_stats = self.training or not self.track_running_stats
        try:
            y = F.instance_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias,
                use_input_stats, self.momentum if self.momentum is not None else 0.0, self.eps,
            )
        except (errors.ShapeError, ValueError) as exc:
            raise _relabel(self, input, exc) from None
        return shape_ops.reshape(y, tuple(input.shape)) if unbatched else y


_IN_DOC = """Instance normalization: each channel of each sample is normalized over its
    {what} dims, then optionally scaled and shifted per channel.

    Args:
        num_features (int): C, the number of channels.
        eps (float): Default: 1e-5.
        momentum (float or None): for the running estimates. Default: 0.1.
        affine (bool): learn per-channel ``weight`` and ``bias``. Default: False.
        track_running_stats (bool): keep running estimates and use them in eval mode.
            Default: False.
        bias (bool, keyword-only): learn ``bias`` too (with affine). Default: True.

    Shape:
        Input: {shape}. Output: the same shape.

    Example::

        >>> nn.InstanceNorm{n}d(100, affine=True)(ember.randn({example})).shape
        ember.Size([{example}])
    """


class InstanceNorm1d(_InstanceNorm):
    __doc__ = _IN_DOC.format(what="length", shape="(N, C, L) or (C, L)", n=1,
                             example="20, 100, 40")
    _dims = (2, 3)
    _layout = "(N, C, L) or (C, L)"


class InstanceNorm2d(_InstanceNorm):
    __doc__ = _IN_DOC.format(what="spatial", shape="(N, C, H, W) or (C, H, W)", n=2,
                             example="20, 100, 35, 45")
    _dims = (3, 4)
    _layout = "(N, C, H, W) or (C, H, W)"


def _shape_tuple(layer, normalized_shape):
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape,)
    try:
        shape = tuple(int(s) for s in normalized_shape)
    except TypeError:
        raise TypeError(f"{layer}: normalized_shape must be an int or a tuple of ints. "
                        f"Received: normalized_shape={normalized_shape!r}") from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"{layer}: normalized_shape must be non-empty and positive. "
                         f"Received: normalized_shape={normalized_shape!r}")
    return shape


class LayerNorm(_module.Module):
    """Layer normalization: normalize over the last dims (``normalized_shape``) of each
    sample, then scale and shift elementwise.

    Args:
        normalized_shape (int or tuple): the trailing shape to normalize over.
        eps (float): added to the variance. Default: 1e-5.
        elementwise_affine (bool): learn ``weight`` (ones) and ``bias`` (zeros) of
            ``normalized_shape``. Default: True.
        bias (bool): learn the bias too (with elementwise_affine). Default: True.
        device, dtype: where and in which dtype to create the parameters.

    Shape:
        Input: ``(*, *normalized_shape)``. Output: the same shape.

    Example::

        >>> ln = nn.LayerNorm(10)
        >>> ln(ember.randn(20, 5, 10)).shape
        ember.Size([20, 5, 10])
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _shape_tuple("LayerNorm", normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(creation.empty(*self.normalized_shape, device=device,
                                                   dtype=dtype))
            if bias:
                self.bias = Parameter(creation.empty(*self.normalized_shape, device=device,
                                                     dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input):
        try:
            return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)
        except errors.ShapeError:
            raise errors.ShapeError(
                f"{self._layer_label()} expected input of shape (*, "
                f"{', '.join(map(str, self.normalized_shape))}), got input of shape "
                f"{errors.shape_str(input.shape)}"
            ) from None

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class RMSNorm(_module.Module):
    """Root-mean-square normalization: ``x / sqrt(mean(x**2) + eps) * weight`` over the last
    dims (``normalized_shape``).

    Args:
        normalized_shape (int or tuple): the trailing shape to normalize over.
        eps (float or None): Default: None, the machine epsilon of the input's dtype.
        elementwise_affine (bool): learn ``weight`` (ones). Default: True.
        device, dtype: where and in which dtype to create the parameter.

    Shape:
        Input: ``(*, *normalized_shape)``. Output: the same shape.

    Example::

        >>> nn.RMSNorm([5, 10])(ember.randn(20, 5, 10)).shape
        ember.Size([20, 5, 10])
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None):
        super().__init__()
        self.normalized_shape = _shape_tuple("RMSNorm", normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(creation.empty(*self.normalized_shape, device=device,
                                                   dtype=dtype))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, input):
        try:
            return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)
        except errors.ShapeError:
            raise errors.ShapeError(
                f"{self._layer_label()} expected input of shape (*, "
                f"{', '.join(map(str, self.normalized_shape))}), got input of shape "
                f"{errors.shape_str(input.shape)}"
            ) from None

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(_module.Module):
    """Group normalization: the channels of each sample are split into ``num_groups``
    groups, each normalized over its channels and spatial dims, then scaled and shifted per
    channel.

    Args:
        num_groups (int): number of groups; must divide ``num_channels``.
        num_channels (int): C, the number of channels.
        eps (float): Default: 1e-5.
        affine (bool): learn per-channel ``weight`` (ones) and ``bias`` (zeros). Default: True.
        device, dtype: where and in which dtype to create the parameters.
        bias (bool, keyword-only): learn the bias too (with affine). Default: True.

    Shape:
        Input: (N, C, *). Output: the same shape.

    Example::

        >>> nn.GroupNorm(3, 6)(ember.randn(20, 6, 10, 10)).shape
        ember.Size([20, 6, 10, 10])
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        if affine:
            self.weight = Parameter(creation.empty(num_channels, device=device, dtype=dtype))
            if bias:
                self.bias = Parameter(creation.empty(num_channels, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input):
        if not hasattr(input, "shape") or input.ndim < 2 or input.shape[1] != self.num_channels:
            raise errors.ShapeError(
                f"{self._layer_label()} expected input of shape (N, {self.num_channels}, *), "
                f"got input of shape {errors.shape_str(getattr(input, 'shape', ()))}"
            )
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")
