"""Stateless layer functions, PyTorch's ``torch.nn.functional`` (import as ``F``).

This module is the hub: the ops themselves live in the ``ember.ops`` families (forward and
backward on one screen) and are re-exported here under their PyTorch names. The table at the
bottom maps each ``F`` name to the families that may define it; a name appears here as soon as
one of them does, so a missing op never breaks ``import ember.nn.functional``. Authors of new
ops can either add their name to the table or import it explicitly below.

``linear`` and ``bilinear`` are defined here; ``linear`` is one fused Function because it is
the hot path of every MLP, and ``_linear_relu`` (a Linear and the ReLU after it, what
nn.Sequential and the Transformer layers run for that pair) another.
"""

import importlib

import numpy

from ember import errors
from ember.autograd.function import Function, _Tracing
from ember.backend import gemm
from ember.ops import _common, _relu_native, activation, linalg, reduce, shape
from ember.tensor import Tensor


class _Linear(Function):
    """y = x @ W.T + b in one node.

    NOTE: fused (instead of matmul + transpose + add, three nodes) because it is the MLP hot
    path; the bias is added in the product's own pass (gemm.matmul). The backward is written
    with ember ops when a graph is being recorded (create_graph: double backward works), else
    on the arrays (each op's Function.apply costs ~5-10 us, five of them per layer). Measured
    (W1, two threads, 200-step runs): the three layers' time besides their products 0.34 ->
    0.18 ms a step.
    """

    @staticmethod
    def forward(ctx, x, w, b):
        y = _affine(x, w, b, False)
        ctx.save_for_backward(x, w)
        return y

    @staticmethod
    def backward(ctx, gy):
        if not _common._State.enabled:
            x, w = ctx.saved_arrays
            return _linear_grads_arrays(ctx.needs_input_grad, x, w, gy._data)
        x, w = ctx.saved_tensors
        return _linear_grads(ctx.needs_input_grad, x, w, gy)


class _LinearReLU(Function):
    """y = relu(x @ W.T + b) in one node: the product's last pass adds the bias and applies
    ReLU while the output tile is in registers (nn.Sequential runs its Linear + ReLU pairs
    this way, the Transformer encoder and decoder layers their feed-forward's first half).

    NOTE: a separate ReLU re-reads the product's output after the product wrote it, half of
    it from the other core's cache (the product is split by columns, the ReLU by rows): in
    W1's step 33 us a call against 15 us on warm data. The backward takes its mask from y
    (not (y <= 0), what ReLU's forward saves as a mask), so the forward writes y alone.
    """

    @staticmethod
    def forward(ctx, x, w, b):
        y = _affine(x, w, b, True)
        ctx.save_for_backward(x, w, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        if not _common._State.enabled:
            x, w, y = ctx.saved_arrays
            g = _relu_native.backward_from_output(gy._data, y)
            return _linear_grads_arrays(ctx.needs_input_grad, x, w, g)
        x, w, y = ctx.saved_tensors
        y = y._data
        mask = _common.constant(_relu_native.output_mask(y))
        return _linear_grads(ctx.needs_input_grad, x, w, gy * mask)


def _affine(x, w, b, relu):
    """x @ w.T + b (then ReLU) on arrays: one product over every leading dim of x."""
    if x.ndim > 2 and x.flags.c_contiguous:
        # One GEMM over all leading dims instead of a batched loop.
        y = gemm.matmul(x.reshape(-1, x.shape[-1]), w.T, bias=b, relu=relu)
        return y.reshape(x.shape[:-1] + (w.shape[0],))
    return gemm.matmul(x, w.T, bias=b, relu=relu)


def _linear_grads(needs, x, w, gy):
    """The gradients of x @ w.T + b for output gradient ``gy``, in ember ops (recorded when a
    graph is: double backward works)."""
    need_x, need_w, need_b = needs
    lead = gy.shape[:-1]
    if gy.ndim != 2:
        # NOTE: one (rows, out) @ (out, in) GEMM, not a batched matmul over the leading
        # dims: a (64, 32, 512) gradient (an LSTM's input projection, W4) took 2.9 ms as
        # 64 small products against 2.1 ms as one, even counting the copy a
        # non-contiguous gradient needs to flatten.
        gy = shape.reshape(gy, (-1, gy.shape[-1]))
    gx = None
    if need_x:
        gx = linalg.matmul(gy, w)
        if len(lead) != 1:
            gx = shape.reshape(gx, lead + (w.shape[-1],))
    gw = gb = None
    if need_w:
        x2 = x if x.ndim == 2 else shape.reshape(x, (-1, x.shape[-1]))
        gw = linalg.matmul(gy.mT, x2)
    if need_b:
        gb = reduce.sum(gy, 0)
    return gx, gw, gb


def _linear_grads_arrays(needs, x, w, gy):
    """_linear_grads on arrays, for when no graph is recorded (the same products)."""
    need_x, need_w, need_b = needs
    lead = gy.shape[:-1]
    if gy.ndim != 2:
        gy = gy.reshape(-1, gy.shape[-1])
    gx = gw = gb = None
    if need_x:
        gx = _common.constant(gemm.matmul(gy, w).reshape(lead + (w.shape[-1],)))
    if need_w:
        x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        gw = _common.constant(gemm.matmul(gy.T, x2))
    if need_b:
        gb = _common.constant(gy.sum(0))
    return gx, gw, gb


def linear(input, weight, bias=None):
    """Apply an affine map: ``input @ weight.T + bias``.

    Args:
        input (Tensor): shape ``(*, in_features)``.
        weight (Tensor): shape ``(out_features, in_features)``.
        bias (Tensor, optional): shape ``(out_features,)``.

    Shape:
        Output: ``(*, out_features)``.

    Example::

        >>> F.linear(ember.ones(2, 3), ember.ones(4, 3), ember.zeros(4)).shape
        ember.Size([2, 4])
    """
    _check_linear(input, weight, bias)
    return _Linear.apply(input, weight, bias)


def _linear_relu(input, weight, bias=None):
    """``relu(linear(input, weight, bias))`` as one node where the product can apply the
    ReLU itself (NumPy arrays, no graph tracer), else as the two ops: what nn.Sequential
    runs for a Linear followed by a ReLU."""
    if type(getattr(input, "_data", None)) is not numpy.ndarray or _Tracing.tracer is not None:
        return activation.relu(linear(input, weight, bias))
    _check_linear(input, weight, bias)
    return _LinearReLU.apply(input, weight, bias)


def _check_linear(input, weight, bias):
    """Raise linear's errors: non-Tensor arguments, mixed dtypes, shapes that do not fit."""
    try:
        x, w = input._data, weight._data
    except AttributeError:
        bad = input if not isinstance(input, Tensor) else weight
        raise errors.DTypeError(
            f"linear: expected Tensors, got {type(bad).__name__}; wrap arrays with "
            "ember.tensor(...)"
        ) from None
    if x.dtype != w.dtype or (bias is not None and bias._data.dtype != w.dtype):
        raise errors.DTypeError(
            f"linear: input dtype {x.dtype} does not match weight dtype {w.dtype}"
            + ("" if bias is None else f" and bias dtype {bias._data.dtype}")
            + "; convert the input (x.float() / x.double()) or the layer (.to(dtype))"
        )
    if x.ndim == 0 or w.ndim != 2 or x.shape[-1] != w.shape[1] or (
        bias is not None and bias._data.shape not in ((w.shape[0],), ())
    ):
        raise errors.ShapeError(
            f"linear: input {errors.shape_str(x.shape)}, weight {errors.shape_str(w.shape)}"
            + ("" if bias is None else f", bias {errors.shape_str(bias._data.shape)}")
            + " do not fit: expected input (..., in_features), weight (out_features, "
            "in_features) and bias (out_features,)"
        )


def bilinear(input1, input2, weight, bias=None):
    """Apply a bilinear map: ``y[..., o] = sum_ij x1[..., i] * weight[o, i, j] * x2[..., j]
    + bias[o]``.

    Args:
        input1 (Tensor): shape ``(*, in1_features)``.
        input2 (Tensor): shape ``(*, in2_features)`` with the same leading dims.
        weight (Tensor): shape ``(out_features, in1_features, in2_features)``.
        bias (Tensor, optional): shape ``(out_features,)``.

    Shape:
        Output: ``(*, out_features)``.

    Example::

        >>> F.bilinear(ember.ones(2, 3), ember.ones(2, 4), ember.ones(5, 3, 4)).shape
        ember.Size([2, 5])
    """
    if weight.ndim != 3 or input1.shape[-1] != weight.shape[1] or \
            input2.shape[-1] != weight.shape[2] or input1.shape[:-1] != input2.shape[:-1]:
        raise errors.ShapeError(
            f"bilinear: input1 {errors.shape_str(input1.shape)}, input2 "
            f"{errors.shape_str(input2.shape)} and weight {errors.shape_str(weight.shape)} do "
            "not fit: expected (*, in1), (*, in2) with equal leading dims and weight "
            "(out, in1, in2)"
        )
    out_f, in1, in2 = weight.shape
    lead = tuple(input1.shape[:-1])
    x1 = shape.reshape(input1, (-1, in1))
    x2 = shape.reshape(input2, (-1, 1, in2))
    # x1 @ W viewed as (in1, out * in2), then a dot with x2 over in2 for every output.
    w = shape.reshape(shape.permute(weight, (1, 0, 2)), (in1, out_f * in2))
    u = shape.reshape(linalg.matmul(x1, w), (-1, out_f, in2))
    y = reduce.sum(u * x2, -1)
    if bias is not None:
        y = y + bias
    return shape.reshape(y, lead + (out_f,))


# ---- re-exports from the op families --------------------------------------------------------

_FAMILIES = (
    "activation", "loss", "loss_margin", "conv", "pool", "norm", "dropout", "embedding",
    "attention", "elementwise", "unary", "piecewise", "compare", "reduce", "shape", "join",
    "reorder", "diagonals", "pad", "index", "sort", "linalg", "random",
)

_NAMES = (
    # activations
    "relu", "relu_", "relu6", "elu", "elu_", "selu", "celu", "leaky_relu", "leaky_relu_",
    "prelu", "rrelu", "gelu", "silu", "mish", "hardtanh", "hardtanh_", "hardswish",
    "hardsigmoid", "sigmoid", "tanh", "softplus", "softsign", "softshrink", "hardshrink",
    "tanhshrink", "threshold", "logsigmoid", "softmax", "log_softmax", "softmin", "glu",
    "gumbel_softmax",
    # losses
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "poisson_nll_loss",
    "gaussian_nll_loss", "cosine_embedding_loss", "hinge_embedding_loss", "margin_ranking_loss",
    "multilabel_margin_loss", "multilabel_soft_margin_loss", "multi_margin_loss",
    "soft_margin_loss", "triplet_margin_loss", "ctc_loss",
    # convolution and pooling
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "unfold", "fold", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d",
    "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d", "lp_pool1d",
    "lp_pool2d", "max_unpool1d", "max_unpool2d",
    # normalization, dropout, embedding, attention
    "batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm", "normalize",
    "local_response_norm", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout", "embedding", "embedding_bag", "one_hot",
    "scaled_dot_product_attention", "multi_head_attention_forward",
    # shape and misc
    "pad", "interpolate", "upsample", "grid_sample", "affine_grid", "pixel_shuffle",
    "pixel_unshuffle", "cosine_similarity", "pairwise_distance", "pdist",
)


def _reexport():
    """Bind each name of ``_NAMES`` from the first family that defines it; families that do
    not exist yet are skipped."""
    g = globals()
    families = []
    for fam in _FAMILIES:
        try:
            families.append(importlib.import_module("ember.ops." + fam))
        except ModuleNotFoundError as exc:
            if exc.name != "ember.ops." + fam:
                raise
    for name in _NAMES:
        if name in g:
            continue
        for family in families:
            fn = getattr(family, name, None)
            if callable(fn):
                g[name] = fn
                break


_reexport()
