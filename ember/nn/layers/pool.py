"""Pooling layers over F's pooling ops: MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d,
AdaptiveMaxPool1d/2d."""

from ember import errors
from ember.nn import functional as F
from ember.nn import module as _module

__all__ = [
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
]


class _Pool(_module.Module):
    _nd = 2
    _fn = None

    def _check_rank(self, input):
        if not hasattr(input, "shape"):
            raise errors.DTypeError(
                f"{self._layer_label()} expected a Tensor input, got {type(input).__name__}"
            )
        nd = self._nd
        if input.ndim not in (nd + 1, nd + 2):
            dims = "L" if nd == 1 else "H, W"
            raise errors.ShapeError(
                f"{self._layer_label()} expected a {nd + 2}-D input (N, C, {dims}) or "
                f"{nd + 1}-D (C, {dims}), got input of shape {errors.shape_str(input.shape)}"
            )

    def _call(self, input, *args):
        self._check_rank(input)
        try:
            return type(self)._fn(input, *args)
        except errors.ShapeError as exc:
            raise errors.ShapeError(
                f"{self._layer_label()} with input of shape {errors.shape_str(input.shape)}: "
                f"{exc}"
            ) from None


class _MaxPoolNd(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input):
        return self._call(input, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max over sliding windows of (N, C, L) or (C, L).

    Args:
        kernel_size (int): window size. stride (int): Default: kernel_size.
        padding (int): implicit -inf on both sides. Default: 0.
        dilation (int): spacing between window elements. Default: 1.
        return_indices (bool): also return the argmax positions (for MaxUnpool). Default:
            False.
        ceil_mode (bool): round the output size up. Default: False.

    Shape:
        Output: (N, C, L_out), L_out = (L + 2p - d(k - 1) - 1) / s + 1, floored (or ceiled).

    Example::

        >>> nn.MaxPool1d(2)(ember.randn(4, 3, 10)).shape
        ember.Size([4, 3, 5])
    """

    _nd = 1
    _fn = staticmethod(F.max_pool1d)


class MaxPool2d(_MaxPoolNd):
    """Max over sliding kH x kW windows of (N, C, H, W) or (C, H, W); arguments as MaxPool1d,
    each an int or a pair.

    Example::

        >>> nn.MaxPool2d(3, stride=2)(ember.randn(1, 16, 50, 32)).shape
        ember.Size([1, 16, 24, 15])
    """

    _nd = 2
    _fn = staticmethod(F.max_pool2d)


class _AvgPoolNd(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad


class AvgPool1d(_AvgPoolNd):
    """Average over sliding windows of (N, C, L) or (C, L).

    Args:
        kernel_size (int): window size. stride (int): Default: kernel_size.
        padding (int): implicit zeros on both sides. Default: 0.
        ceil_mode (bool): round the output size up. Default: False.
        count_include_pad (bool): count the padded zeros in the divisor. Default: True.

    Example::

        >>> nn.AvgPool1d(3, stride=2)(ember.ones(1, 1, 7))
        tensor([[[1., 1., 1.]]])
    """

    _nd = 1
    _fn = staticmethod(F.avg_pool1d)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(_one(kernel_size), _one(stride), _one(padding), ceil_mode,
                         count_include_pad)

    def forward(self, input):
        return self._call(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")


def _one(value):
    """PyTorch's AvgPool1d stores its sizes as 1-tuples."""
    return None if value is None else tuple(value) if isinstance(value, (tuple, list)) else \
        (value,)


class AvgPool2d(_AvgPoolNd):
    """Average over sliding kH x kW windows of (N, C, H, W) or (C, H, W); arguments as
    AvgPool1d, plus ``divisor_override`` (divide every window sum by this instead).

    Example::

        >>> nn.AvgPool2d((3, 2), stride=(2, 1))(ember.randn(20, 16, 50, 32)).shape
        ember.Size([20, 16, 24, 31])
    """

    _nd = 2
    _fn = staticmethod(F.avg_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, input):
        return self._call(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptivePool(_Pool):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return self._call(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePool):
    """Average pooling of (N, C, L) or (C, L) to length ``output_size``, whatever L is.

    Example::

        >>> nn.AdaptiveAvgPool1d(5)(ember.randn(1, 64, 8)).shape
        ember.Size([1, 64, 5])
    """

    _nd = 1
    _fn = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptivePool):
    """Average pooling of (N, C, H, W) or (C, H, W) to ``output_size`` (an int, a pair, or
    None entries that keep the input size).

    Example::

        >>> nn.AdaptiveAvgPool2d((5, 7))(ember.randn(1, 64, 8, 9)).shape
        ember.Size([1, 64, 5, 7])
        >>> nn.AdaptiveAvgPool2d(1)(ember.randn(2, 64, 8, 9)).shape
        ember.Size([2, 64, 1, 1])
    """

    _nd = 2
    _fn = staticmethod(F.adaptive_avg_pool2d)


class _AdaptiveMaxPool(_AdaptivePool):
    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input):
        return self._call(input, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """Max pooling of (N, C, L) or (C, L) to length ``output_size``; ``return_indices``
    also returns the argmax positions.

    Example::

        >>> nn.AdaptiveMaxPool1d(5)(ember.randn(1, 64, 8)).shape
        ember.Size([1, 64, 5])
    """

    _nd = 1
    _fn = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """Max pooling of (N, C, H, W) or (C, H, W) to ``output_size`` (int, pair, None entries
    keep the size); ``return_indices`` also returns flat h * W + w argmax positions.

    Example::

        >>> nn.AdaptiveMaxPool2d((5, 7))(ember.randn(1, 64, 8, 9)).shape
        ember.Size([1, 64, 5, 7])
    """

    _nd = 2
    _fn = staticmethod(F.adaptive_max_pool2d)
