"""Affine layers and shape helpers: Identity, Linear (lazy-capable), Bilinear, Flatten,
Unflatten."""

import math

from ember import errors
from ember.nn import functional as F
from ember.nn import init
from ember.nn import module as _module
from ember.nn.parameter import Parameter, UninitializedParameter
from ember.ops import shape as shape_ops

__all__ = ["Identity", "Linear", "LazyLinear", "Bilinear", "Flatten", "Unflatten"]


def _empty(shape, device, dtype):
    from ember import creation  # noqa: PLC0415

    return creation.empty(*shape, device=device, dtype=dtype)


def _check_size(layer, name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"{layer}: {name} must be a non-negative integer"
            + (" (or None to infer it from the first input)" if allow_none else "")
            + f". Received: {name}={value!r}"
        )
    return value


class Identity(_module.Module):
    """Return the input unchanged; any arguments are accepted and ignored.

    Shape:
        Input: ``(*)``; Output: ``(*)``, the same tensor.

    Example::

        >>> nn.Identity(54, unused="argument")(ember.ones(2)).shape
        ember.Size([2])
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(_module.LazyMixin, _module.Module):
    """Apply an affine map to the last dim: ``y = x @ weight.T + bias``.

    Leave ``in_features`` out (``Linear(out_features=10)``) and the layer learns it from its
    first input, as Keras's Dense does (or call ``model.build(example_input)``).

    Args:
        in_features (int or None): size of each input sample; None to infer it.
        out_features (int): size of each output sample.
        bias (bool): learn an additive bias. Default: True.
        device, dtype: where and in which dtype to create the parameters.

    Shape:
        Input: ``(*, in_features)``; Output: ``(*, out_features)``.

    Attributes:
        weight: ``(out_features, in_features)``, initialized from
            U(-1/sqrt(in_features), 1/sqrt(in_features)) (kaiming_uniform_ with a=sqrt(5)).
        bias: ``(out_features,)``, from the same distribution.

    Example::

        >>> fc = nn.Linear(20, 30)
        >>> fc(ember.randn(128, 20)).shape
        ember.Size([128, 30])
        >>> lazy = nn.Linear(out_features=30)
        >>> lazy(ember.randn(128, 20)).shape, lazy.in_features
        (ember.Size([128, 30]), 20)
    """

    def __init__(self, in_features=None, out_features=None, bias=True, device=None, dtype=None):
        super().__init__()
        if out_features is None:
            raise TypeError(
                f"Linear({in_features!r}): out_features is missing; write "
                f"Linear(in_features, out_features), or Linear(out_features={in_features!r}) "
                "to infer in_features from the first input"
            )
        self.in_features = _check_size("Linear", "in_features", in_features, allow_none=True)
        self.out_features = _check_size("Linear", "out_features", out_features)
        if in_features is None:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(device=device, dtype=dtype)
            else:
                self.register_parameter("bias", None)
            self._make_lazy()
        else:
            self.weight = Parameter(_empty((out_features, in_features), device, dtype))
            if bias:
                self.bias = Parameter(_empty((out_features,), device, dtype))
            else:
                self.register_parameter("bias", None)
            self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: weight ~ kaiming_uniform(a=sqrt(5)), i.e.
        U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias from the same bounds."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def initialize_parameters(self, input, *args, **kwargs):
        self.in_features = int(input.shape[-1]) if input.ndim else 0
        self.weight.materialize((self.out_features, self.in_features))
        if self.bias is not None:
            self.bias.materialize((self.out_features,))
        self.reset_parameters()

    def _sizes_from_parameters(self):
        self.in_features = int(self.weight.shape[1])

    def forward(self, input):
        try:
            return F.linear(input, self.weight, self.bias)
        except (errors.ShapeError, errors.DTypeError) as exc:
            raise self._input_error(input, exc) from None

    def _forward_relu(self, input):
        """``relu(self(input))`` as one node where it can be (nn.Sequential's Linear + ReLU
        pairs; F._linear_relu), with the layer's own errors."""
        try:
            return F._linear_relu(input, self.weight, self.bias)
        except (errors.ShapeError, errors.DTypeError) as exc:
            raise self._input_error(input, exc) from None

    def _input_error(self, input, exc):
        label = self._layer_label()
        if not hasattr(input, "shape"):
            return errors.DTypeError(
                f"{label} expected a Tensor input, got {type(input).__name__}; wrap it with "
                "ember.tensor(...)"
            )
        if isinstance(exc, errors.DTypeError):
            return errors.DTypeError(
                f"{label} got input of dtype {input.dtype} but its weight is "
                f"{self.weight.dtype}; convert the input (x.to({self.weight.dtype})) or the "
                "model (model.to(dtype))"
            )
        got = tuple(input.shape)
        n = self.in_features
        hint = "check in_features or the output size of the layer before"
        if len(got) > 2 and math.prod(got[1:]) == n:
            hint = "flatten first?"
        elif len(got) == 0:
            hint = "the input needs at least one dimension"
        return errors.ShapeError(
            f"{label} expected input (..., {n}), got {errors.shape_str(got)}; {hint}"
        )

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class LazyLinear(Linear):
    """``Linear`` whose ``in_features`` comes from the first input (PyTorch's name for
    ``Linear(out_features=...)``).

    Example::

        >>> nn.LazyLinear(10)(ember.ones(2, 7)).shape
        ember.Size([2, 10])
    """

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        super().__init__(None, out_features, bias, device, dtype)

    def _get_name(self):
        return "Linear" if not self.has_uninitialized_params() else "LazyLinear"


class Bilinear(_module.Module):
    """Apply a bilinear map to two inputs: ``y = x1.T @ A @ x2 + b`` for every output feature.

    Args:
        in1_features (int): size of each first input sample.
        in2_features (int): size of each second input sample.
        out_features (int): size of each output sample.
        bias (bool): learn an additive bias. Default: True.

    Shape:
        Input1: ``(*, in1_features)``; Input2: ``(*, in2_features)`` (same leading dims);
        Output: ``(*, out_features)``.

    Attributes:
        weight: ``(out_features, in1_features, in2_features)`` and bias ``(out_features,)``,
            both from U(-1/sqrt(in1_features), 1/sqrt(in1_features)).

    Example::

        >>> m = nn.Bilinear(20, 30, 40)
        >>> m(ember.randn(128, 20), ember.randn(128, 30)).shape
        ember.Size([128, 40])
    """

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None,
                 dtype=None):
        super().__init__()
        self.in1_features = _check_size("Bilinear", "in1_features", in1_features)
        self.in2_features = _check_size("Bilinear", "in2_features", in2_features)
        self.out_features = _check_size("Bilinear", "out_features", out_features)
        self.weight = Parameter(_empty((out_features, in1_features, in2_features), device, dtype))
        if bias:
            self.bias = Parameter(_empty((out_features,), device, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.weight.shape[1]) if self.weight.shape[1] else 0
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        try:
            return F.bilinear(input1, input2, self.weight, self.bias)
        except errors.ShapeError:
            raise errors.ShapeError(
                f"{self._layer_label()} expected inputs (..., {self.in1_features}) and "
                f"(..., {self.in2_features}) with equal leading dims, got "
                f"{errors.shape_str(input1.shape)} and {errors.shape_str(input2.shape)}"
            ) from None

    def extra_repr(self):
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )


class Flatten(_module.Module):
    """Flatten the dims ``start_dim..end_dim`` into one.

    Args:
        start_dim (int): first dim to flatten. Default: 1 (keeps the batch dim).
        end_dim (int): last dim to flatten. Default: -1.

    Shape:
        Input: ``(*, S_start, ..., S_end, *)``; Output: ``(*, prod(S_start..S_end), *)``.

    Example::

        >>> nn.Flatten()(ember.ones(32, 1, 5, 5)).shape
        ember.Size([32, 25])
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        n = input.ndim
        if n == 0:
            return shape_ops.reshape(input, (1,))
        lo, hi = self.start_dim, self.end_dim
        if not (-n <= lo < n and -n <= hi < n):
            raise errors.ShapeError(
                f"{self._layer_label()}: dims out of range for an input of shape "
                f"{errors.shape_str(input.shape)} ({n} dims)"
            )
        lo, hi = lo % n, hi % n
        if lo > hi:
            raise errors.ShapeError(
                f"{self._layer_label()}: start_dim ({self.start_dim}) comes after end_dim "
                f"({self.end_dim}) for an input with {n} dims"
            )
        dims = tuple(input.shape)
        new = dims[:lo] + (math.prod(dims[lo:hi + 1]),) + dims[hi + 1:]
        return shape_ops.reshape(input, new)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(_module.Module):
    """Expand dim ``dim`` of the input into the shape ``unflattened_size``.

    Args:
        dim (int): the dim to unflatten.
        unflattened_size (tuple of int): its new shape; one entry may be -1.

    Shape:
        Input: ``(*, S_dim, *)``; Output: ``(*, U_1, ..., U_n, *)`` with ``prod(U) = S_dim``.

    Example::

        >>> nn.Unflatten(1, (2, 5, 5))(ember.ones(2, 50)).shape
        ember.Size([2, 2, 5, 5])
    """

    def __init__(self, dim, unflattened_size):
        super().__init__()
        if isinstance(dim, str):
            raise TypeError("Unflatten with a named dim is not supported; pass an int dim")
        if not isinstance(unflattened_size, (tuple, list)) or not all(
            isinstance(s, int) for s in unflattened_size
        ):
            raise TypeError(
                f"Unflatten: unflattened_size must be a tuple of ints, got {unflattened_size!r}"
            )
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input):
        n = input.ndim
        if not -n <= self.dim < max(n, 1):
            raise errors.ShapeError(
                f"{self._layer_label()}: dim {self.dim} is out of range for an input of shape "
                f"{errors.shape_str(input.shape)}"
            )
        d = self.dim % n
        dims = tuple(input.shape)
        sizes = self.unflattened_size
        known = math.prod(s for s in sizes if s != -1)
        ok = (known == dims[d]) if -1 not in sizes else (known and dims[d] % known == 0)
        if not ok or sizes.count(-1) > 1:
            raise errors.ShapeError(
                f"{self._layer_label()}: cannot unflatten dim {self.dim} of size {dims[d]} "
                f"(input {errors.shape_str(dims)}) into {sizes}; the sizes must multiply to "
                f"{dims[d]}"
            )
        return shape_ops.reshape(input, dims[:d] + sizes + dims[d + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
