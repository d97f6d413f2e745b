"""Convolution layers: Conv1d/2d/3d and ConvTranspose1d/2d (lazy-capable), over F.conv*.

``in_channels`` may be left out (``nn.Conv2d(out_channels=16, kernel_size=3)``): the layer
learns it from its first input (see the lazy-size mechanism in ``nn/module.py``).
"""

import math

from ember import errors
from ember.nn import functional as F
from ember.nn import init
from ember.nn import module as _module
from ember.nn.parameter import Parameter, UninitializedParameter
from ember.ops import pad as pad_ops

__all__ = [
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
    "LazyConv1d", "LazyConv2d", "LazyConv3d",
]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(value, n, name, layer):
    if isinstance(value, (tuple, list)):
        if len(value) != n or not all(isinstance(v, int) for v in value):
            raise ValueError(f"{layer}: {name} must be an int or a tuple of {n} ints. "
                             f"Received: {name}={value!r}")
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{layer}: {name} must be an int or a tuple of {n} ints. "
                        f"Received: {name}={value!r}")
    return (value,) * n


def _empty(shape, device, dtype):
    from ember import creation  # noqa: PLC0415

    return creation.empty(*shape, device=device, dtype=dtype)


class _ConvNd(_module.LazyMixin, _module.Module):
    """What Conv and ConvTranspose layers share: arguments, parameters, init and repr."""

    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, padding_mode, output_padding=0, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        nd = self._nd
        if out_channels is None or kernel_size is None:
            raise TypeError(
                f"{name}: out_channels and kernel_size are required; write {name}(in_channels, "
                f"out_channels, kernel_size), or {name}(out_channels=..., kernel_size=...) to "
                "infer in_channels from the first input"
            )
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value is None and arg == "in_channels":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer. "
                                 f"Received: {arg}={value!r}")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{name}: groups must be a positive integer. Received: "
                             f"groups={groups!r}")
        if in_channels is not None and in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by "
                             f"groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}. "
                             f"Received: padding_mode={padding_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _ntuple(kernel_size, nd, "kernel_size", name)
        self.stride = _ntuple(stride, nd, "stride", name)
        self.dilation = _ntuple(dilation, nd, "dilation", name)
        if isinstance(padding, str):
            if padding not in ("same", "valid") or self._transposed:
                raise ValueError(f"{name}: padding must be an int, a tuple"
                                 + ("" if self._transposed else ", 'same' or 'valid'")
                                 + f". Received: padding={padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions (stride={self.stride})")
            self.padding = padding
        else:
            self.padding = _ntuple(padding, nd, "padding", name)
        self.output_padding = _ntuple(output_padding, nd, "output_padding", name)
        self.groups = groups
        self.padding_mode = padding_mode
        self._pad_pairs = self._reversed_padding()
        if in_channels is None:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(device=device, dtype=dtype)
            else:
                self.register_parameter("bias", None)
            self._make_lazy()
        else:
            self.weight = Parameter(_empty(self._weight_shape(), device, dtype))
            if bias:
                self.bias = Parameter(_empty((out_channels,), device, dtype))
            else:
                self.register_parameter("bias", None)
            self.reset_parameters()

    def _weight_shape(self):
        if self._transposed:
            return (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        return (self.out_channels, self.in_channels // self.groups) + self.kernel_size

    def _reversed_padding(self):
        """F.pad's pad tuple (last dim first) for the non-'zeros' padding modes."""
        pairs = []
        for i in reversed(range(self._nd)):
            if self.padding == "valid":
                lo = hi = 0
            elif self.padding == "same":
                total = self.dilation[i] * (self.kernel_size[i] - 1)
                lo, hi = total // 2, total - total // 2
            else:
                lo = hi = self.padding[i]
            pairs += [lo, hi]
        return tuple(pairs)

    def reset_parameters(self):
        """PyTorch's default: weight ~ kaiming_uniform(a=sqrt(5)); bias ~ U(-1/sqrt(fan_in),
        1/sqrt(fan_in))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def initialize_parameters(self, input, *args, **kwargs):
        self._check_rank(input)
        channels = int(input.shape[1 if input.ndim == self._nd + 2 else 0])
        if channels % self.groups:
            raise errors.ShapeError(
                f"{self._layer_label()} got input of shape {errors.shape_str(input.shape)} with "
                f"{channels} channels, which is not divisible by groups={self.groups}"
            )
        self.in_channels = channels
        self.weight.materialize(self._weight_shape())
        if self.bias is not None:
            self.bias.materialize((self.out_channels,))
        self.reset_parameters()

    def _sizes_from_parameters(self):
        w = self.weight.shape
        self.in_channels = int(w[0] if self._transposed else w[1] * self.groups)

    def _check_rank(self, input):
        if not hasattr(input, "shape"):
            raise errors.DTypeError(
                f"{self._layer_label()} expected a Tensor input, got {type(input).__name__}; "
                "wrap it with ember.tensor(...)"
            )
        nd = self._nd
        if input.ndim not in (nd + 1, nd + 2):
            dims = ", ".join(["C"] + ["L"] if nd == 1 else ["C", "H", "W"] if nd == 2 else
                             ["C", "D", "H", "W"])
            raise errors.ShapeError(
                f"{self._layer_label()} expected a {nd + 2}-D input (N, {dims}) or {nd + 1}-D "
                f"unbatched ({dims}), got input of shape {errors.shape_str(input.shape)}"
            )

    def _check_input(self, input):
        self._check_rank(input)
        channels = input.shape[1 if input.ndim == self._nd + 2 else 0]
        if channels != self.in_channels:
            raise errors.ShapeError(
                f"{self._layer_label()} expected input with {self.in_channels} channels, got "
                f"input of shape {errors.shape_str(input.shape)}"
            )

    def _relabel(self, input, exc):
        """An error from F.conv* re-raised with this layer's name in front."""
        kind = type(exc) if isinstance(exc, errors.EmberError) else errors.ShapeError
        return kind(f"{self._layer_label()} with input of shape "
                    f"{errors.shape_str(input.shape)}: {exc}")

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    _conv = None  # F.conv1d / conv2d / conv3d, set by the subclasses

    def __init__(self, in_channels=None, out_channels=None, kernel_size=None, stride=1,
                 padding=0, dilation=1, groups=1, bias=True, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, 0, device, dtype)

    def forward(self, input):
        self._check_input(input)
        conv = type(self)._conv
        try:
            if self.padding_mode != "zeros":
                x = pad_ops.pad(input, self._pad_pairs, mode=self.padding_mode)
                return conv(x, self.weight, self.bias, self.stride, 0, self.dilation,
                            self.groups)
            return conv(input, self.weight, self.bias, self.stride, self.padding,
                        self.dilation, self.groups)
        except (errors.ShapeError, errors.DTypeError) as exc:
            raise self._relabel(input, exc) from None


_CONV_DOC = """Apply a {nd}-D convolution over an input of shape (N, C_in, {dims}).

    Args:
        in_channels (int or None): channels of the input; None infers it from the first input.
        out_channels (int): channels produced.
        kernel_size (int or tuple): size of the convolving kernel.
        stride (int or tuple): Default: 1.
        padding (int, tuple or str): zero-padding on both sides, or 'valid' (none) or 'same'
            (output size = input size; stride 1 only). Default: 0.
        dilation (int or tuple): spacing between kernel elements. Default: 1.
        groups (int): blocked connections from input to output channels; groups =
            in_channels is a depthwise convolution. Default: 1.
        bias (bool): learn an additive bias. Default: True.
        padding_mode (str): 'zeros', 'reflect', 'replicate' or 'circular'. Default: 'zeros'.
        device, dtype: where and in which dtype to create the parameters.

    Shape:
        Input: (N, C_in, {dims}) or (C_in, {dims}). Output: (N, C_out, {outs}) with
        out = (in + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1.

    Attributes:
        weight: (out_channels, in_channels / groups, *kernel_size) and bias (out_channels,),
            both from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels / groups *
            prod(kernel_size).

    Example::

        >>> m = nn.Conv{nd}d(4, 8, 3, padding=1)
        >>> m(ember.randn(2, 4, {example})).shape
        ember.Size([2, 8, {example}])
        >>> nn.Conv{nd}d(out_channels=8, kernel_size=3)(ember.randn(2, 4, {example})).shape[1]
        8
    """


class Conv1d(_Conv):
    __doc__ = _CONV_DOC.format(nd=1, dims="L", outs="L_out", example="10")
    _nd = 1
    _conv = staticmethod(F.conv1d)


class Conv2d(_Conv):
    __doc__ = _CONV_DOC.format(nd=2, dims="H, W", outs="H_out, W_out", example="10, 10")
    _nd = 2
    _conv = staticmethod(F.conv2d)


class Conv3d(_Conv):
    __doc__ = _CONV_DOC.format(nd=3, dims="D, H, W", outs="D_out, H_out, W_out",
                               example="5, 5, 5")
    _nd = 3
    _conv = staticmethod(F.conv3d)


def _lazy(base):
    class Lazy(base):
        def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                     groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
            super().__init__(None, out_channels, kernel_size, stride, padding, dilation,
                             groups, bias, padding_mode, device, dtype)

        def _get_name(self):
            return base.__name__ if not self.has_uninitialized_params() else "Lazy" + \
                base.__name__

    Lazy.__name__ = Lazy.__qualname__ = "Lazy" + base.__name__
    Lazy.__doc__ = (f"``{base.__name__}`` whose ``in_channels`` comes from the first input "
                    f"(PyTorch's name for ``{base.__name__}(out_channels=..., "
                    "kernel_size=...)``).")
    return Lazy


LazyConv1d = _lazy(Conv1d)
LazyConv2d = _lazy(Conv2d)
LazyConv3d = _lazy(Conv3d)


class _ConvTranspose(_ConvNd):
    _transposed = True
    _conv = None

    def __init__(self, in_channels=None, out_channels=None, kernel_size=None, stride=1,
                 padding=0, output_padding=0, groups=1, bias=True, dilation=1,
                 padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for '
                             f"{type(self).__name__}. Received: padding_mode={padding_mode!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, device, dtype)

    def _output_padding(self, input, output_size):
        """output_padding that makes the output exactly ``output_size`` (PyTorch's rule)."""
        if output_size is None:
            return self.output_padding
        nd = self._nd
        output_size = tuple(int(s) for s in output_size)
        lead = 2 if input.ndim == nd + 2 else 1
        if len(output_size) == nd + lead:
            output_size = output_size[lead:]
        if len(output_size) != nd:
            raise ValueError(
                f"{self._layer_label()}: output_size must have {nd} or {nd + lead} elements "
                f"(got {len(output_size)})"
            )
        result = []
        for d in range(nd):
            smallest = ((input.shape[d + lead] - 1) * self.stride[d] - 2 * self.padding[d]
                        + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            largest = smallest + self.stride[d] - 1
            if not smallest <= output_size[d] <= largest:
                raise ValueError(
                    f"{self._layer_label()}: requested an output size of {output_size}, but "
                    f"valid sizes for input {errors.shape_str(input.shape)} range from "
                    f"{smallest} to {largest} in dim {d} (for an input of "
                    f"{errors.shape_str(input.shape[lead:])})"
                )
            result.append(output_size[d] - smallest)
        return tuple(result)

    def forward(self, input, output_size=None):
        self._check_input(input)
        output_padding = self._output_padding(input, output_size)
        try:
            return type(self)._conv(input, self.weight, self.bias, self.stride, self.padding,
                                    output_padding, self.groups, self.dilation)
        except (errors.ShapeError, errors.DTypeError) as exc:
            raise self._relabel(input, exc) from None


_CONVT_DOC = """Apply a {nd}-D transposed convolution (the gradient of Conv{nd}d w.r.t. its
    input) over an input of shape (N, C_in, {dims}).

    Args:
        in_channels (int or None): channels of the input; None infers it from the first input.
        out_channels (int): channels produced.
        kernel_size (int or tuple): size of the convolving kernel.
        stride (int or tuple): Default: 1.
        padding (int or tuple): ``dilation * (kernel_size - 1) - padding`` zeros are added to
            both sides of the input. Default: 0.
        output_padding (int or tuple): extra size on one side of the output. Default: 0.
        groups (int): Default: 1. bias (bool): Default: True.
        dilation (int or tuple): Default: 1. padding_mode: only 'zeros'.

    Shape:
        Input: (N, C_in, {dims}) or unbatched. Output: (N, C_out, {outs}) with
        out = (in - 1) * stride - 2 * padding + dilation * (kernel_size - 1)
        + output_padding + 1. ``forward(input, output_size)`` picks output_padding so that
        the output has ``output_size``.

    Attributes:
        weight: (in_channels, out_channels / groups, *kernel_size); bias: (out_channels,).

    Example::

        >>> up = nn.ConvTranspose{nd}d(8, 4, 3, stride=2, padding=1)
        >>> x = ember.randn(1, 8, {example})
        >>> up(x, output_size=(1, 4, {target})).shape
        ember.Size([1, 4, {target}])
    """


class ConvTranspose1d(_ConvTranspose):
    __doc__ = _CONVT_DOC.format(nd=1, dims="L", outs="L_out", example="6", target="12")
    _nd = 1
    _conv = staticmethod(F.conv_transpose1d)


class ConvTranspose2d(_ConvTranspose):
    __doc__ = _CONVT_DOC.format(nd=2, dims="H, W", outs="H_out, W_out", example="6, 6",
                                target="12, 12")
    _nd = 2
    _conv = staticmethod(F.conv_transpose2d)
