"""conv1d/2d/3d and conv_transpose1d/2d/3d against PyTorch, finite differences, double backward."""

import numpy
import pytest
import torch
import torch.nn.functional as F

import ember
from ember import errors
from tests.oracle import check_double_backward, check_op

# torch warns that it copies the input for 'same' with even kernels; ember pads either way.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

# (input shape, weight shape, has bias, kwargs): small shapes, many geometries.
CONV2D = [
    ((2, 3, 7, 6), (4, 3, 3, 2), True, {}),
    ((2, 3, 7, 6), (4, 3, 3, 3), False, {"stride": 2, "padding": 1}),
    ((1, 2, 8, 7), (3, 2, 3, 2), True, {"stride": (2, 3), "padding": (2, 0), "dilation": (1, 2)}),
    ((2, 4, 6, 6), (6, 2, 3, 3), True, {"groups": 2, "padding": 1}),
    ((2, 4, 6, 5), (8, 1, 3, 3), True, {"groups": 4, "stride": 2}),  # depthwise, multiplier 2
    ((2, 4, 6, 5), (4, 1, 3, 3), False, {"groups": 4, "padding": "same"}),  # depthwise
    ((1, 3, 6, 7), (2, 3, 2, 4), True, {"padding": "same"}),  # even kernels: extra on the right
    ((1, 3, 6, 7), (2, 3, 2, 3), True, {"padding": "same", "dilation": (2, 1)}),
    ((2, 3, 5, 6), (2, 3, 3, 3), True, {"padding": "valid"}),
    ((3, 5, 6), (4, 3, 3, 3), True, {"padding": 1}),  # unbatched
    ((2, 3, 4, 4), (5, 3, 1, 1), True, {}),  # 1x1
    ((2, 2, 5, 5), (3, 2, 5, 5), True, {}),  # kernel == input
]


@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV2D)
def test_conv2d(x_shape, w_shape, bias, kwargs):
    shapes = [x_shape, w_shape] + ([(w_shape[0],)] if bias else [])
    check_op(ember.conv2d, shapes, torch_fn=F.conv2d, kwargs=kwargs)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((2, 3, 9), (4, 3, 3), {"stride": 2, "padding": 1}),
    ((2, 4, 9), (4, 2, 2), {"groups": 2, "dilation": 3, "padding": "same"}),
    ((3, 8), (2, 3, 4), {"padding": "same"}),  # unbatched, even kernel
    ((1, 2, 6), (2, 2, 3), {"padding": "valid", "stride": (3,)}),
])
def test_conv1d(x_shape, w_shape, kwargs):
    check_op(ember.conv1d, [x_shape, w_shape, (w_shape[0],)], torch_fn=F.conv1d, kwargs=kwargs)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((1, 2, 4, 5, 4), (3, 2, 2, 3, 2), {"stride": (1, 2, 1), "padding": 1}),
    ((2, 4, 3, 4, 4), (4, 2, 2, 2, 2), {"groups": 2, "dilation": (1, 2, 1), "padding": "same"}),
    ((2, 3, 4, 4), (2, 2, 2, 2, 2), {}),  # unbatched
])
def test_conv3d(x_shape, w_shape, kwargs):
    check_op(ember.conv3d, [x_shape, w_shape, (w_shape[0],)], torch_fn=F.conv3d, kwargs=kwargs)


CONV_T2D = [
    ((2, 4, 3, 4), (4, 3, 3, 2), True, {}),
    ((2, 4, 3, 4), (4, 3, 3, 3), True, {"stride": 2, "padding": 1, "output_padding": 1}),
    ((1, 4, 3, 3), (4, 2, 3, 2), False, {"stride": (2, 3), "output_padding": (1, 2),
                                         "groups": 2}),
    ((2, 2, 3, 4), (2, 3, 2, 3), True, {"dilation": 2, "padding": (1, 2), "stride": 2}),
    ((1, 2, 3, 4), (2, 3, 3, 3), True, {"dilation": 2, "output_padding": 1}),  # op < dilation
    ((3, 4, 3), (3, 2, 2, 2), True, {"stride": 2}),  # unbatched
    ((2, 4, 3, 3), (4, 1, 3, 3), True, {"groups": 4, "stride": 2, "padding": 1}),  # depthwise
]


@pytest.mark.parametrize("x_shape, w_shape, bias, kwargs", CONV_T2D)
def test_conv_transpose2d(x_shape, w_shape, bias, kwargs):
    groups = kwargs.get("groups", 1)
    shapes = [x_shape, w_shape] + ([(w_shape[1] * groups,)] if bias else [])
    check_op(ember.conv_transpose2d, shapes, torch_fn=F.conv_transpose2d, kwargs=kwargs)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((2, 4, 5), (4, 2, 3), {"stride": 3, "padding": 1, "output_padding": 2}),
    ((2, 4, 5), (4, 1, 2), {"groups": 2, "dilation": 2}),
    ((4, 5), (4, 3, 3), {"stride": 2}),
])
def test_conv_transpose1d(x_shape, w_shape, kwargs):
    cout = w_shape[1] * kwargs.get("groups", 1)
    check_op(ember.conv_transpose1d, [x_shape, w_shape, (cout,)], torch_fn=F.conv_transpose1d,
             kwargs=kwargs)


def test_conv_transpose3d():
    check_op(ember.conv_transpose3d, [(1, 2, 2, 3, 2), (2, 3, 2, 2, 2), (3,)],
             torch_fn=F.conv_transpose3d, kwargs={"stride": 2, "output_padding": (1, 0, 1)})


@pytest.mark.parametrize("fn, tfn, shapes, kwargs", [
    (ember.conv2d, F.conv2d, [(4, 3, 12, 11), (8, 3, 3, 3), (8,)], {"padding": 1}),
    (ember.conv2d, F.conv2d, [(2, 8, 9, 9), (8, 2, 3, 3), (8,)], {"groups": 4, "stride": 2}),
    (ember.conv_transpose2d, F.conv_transpose2d, [(2, 4, 5, 5), (4, 3, 3, 3), (3,)],
     {"stride": 2, "padding": 1, "output_padding": 1}),
    (ember.conv1d, F.conv1d, [(2, 3, 20), (4, 3, 5), (4,)], {"padding": "same"}),
])
def test_float32_matches_torch(fn, tfn, shapes, kwargs):
    check_op(fn, shapes, torch_fn=tfn, kwargs=kwargs, dtype=numpy.float32, rtol=1e-4, atol=1e-4)


def test_lenet_shapes_float32():
    """The hot path (column matrix reused for the weight gradient) on the W2 shapes. The weight
    gradient sums 12,544 float32 products per entry (values ~100), hence the absolute slack."""
    check_op(ember.conv2d, [(64, 16, 14, 14), (32, 16, 3, 3), (32,)], torch_fn=F.conv2d,
             kwargs={"padding": 1}, dtype=numpy.float32, rtol=1e-4, atol=5e-3)


def test_input_without_grad_and_output_contiguous():
    x = ember.randn(2, 3, 6, 6)
    w = ember.randn(4, 3, 3, 3, requires_grad=True)
    y = ember.conv2d(x, w, padding=1)
    assert y.shape == (2, 4, 6, 6) and y.is_contiguous()
    (gw,) = ember.autograd.grad(y.sum(), [w])
    xt = torch.tensor(x.numpy())
    wt = torch.tensor(w.detach().numpy(), requires_grad=True)
    (gwt,) = torch.autograd.grad(F.conv2d(xt, wt, padding=1).sum(), [wt])
    numpy.testing.assert_allclose(gw.numpy(), gwt.numpy(), rtol=1e-4, atol=1e-4)


# ---- double backward (create_graph): every gradient is built from the conv Functions -----------


def test_conv2d_double_backward():
    check_double_backward(lambda x, w, b: ember.conv2d(x, w, b, stride=2, padding=1),
                          [(1, 2, 5, 5), (3, 2, 3, 3), (3,)])
    check_double_backward(lambda x, w: ember.conv2d(x, w, groups=2, dilation=(2, 1)),
                          [(2, 4, 5, 4), (2, 2, 2, 2)])


def test_conv_transpose2d_double_backward():
    check_double_backward(
        lambda x, w, b: ember.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
        [(1, 2, 3, 3), (2, 3, 3, 3), (3,)],
    )


def test_conv1d_double_backward_through_nonlinearity():
    # (conv(x, w))**2 makes the first gradient depend on x and w in every slot.
    check_double_backward(lambda x, w: ember.conv1d(x, w, padding="same") ** 2,
                          [(2, 2, 6), (3, 2, 4)])


def test_hessian_vector_product_matches_torch():
    rng = numpy.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    v = rng.standard_normal((4, 3, 3, 3))
    results = []
    for lib, conv in ((ember, ember.conv2d), (torch, F.conv2d)):
        xe, we = lib.tensor(x, requires_grad=True), lib.tensor(w, requires_grad=True)
        y = conv(xe, we, stride=2, padding=1)
        (gw,) = (ember.autograd.grad if lib is ember else torch.autograd.grad)(
            (y * y).sum(), [we], create_graph=True)
        (hx,) = (ember.autograd.grad if lib is ember else torch.autograd.grad)(
            (gw * lib.tensor(v)).sum(), [xe])
        results.append(numpy.asarray(hx.detach().numpy()))
    numpy.testing.assert_allclose(results[0], results[1], rtol=1e-9, atol=1e-9)


# ---- errors ------------------------------------------------------------------------------------


def _raises(exc, match, fn, *args, **kwargs):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


def test_error_channels():
    _raises(errors.ShapeError,
            r"conv2d: expected input with 3 channels \(weight \(16, 3, 3, 3\), groups=1\), got "
            r"input of shape \(8, 1, 28, 28\)",
            ember.conv2d, ember.zeros(8, 1, 28, 28), ember.zeros(16, 3, 3, 3))
    _raises(errors.ShapeError, r"conv2d: expected input with 4 channels .*groups=2",
            ember.conv2d, ember.zeros(1, 3, 5, 5), ember.zeros(4, 2, 3, 3), groups=2)
    _raises(errors.ShapeError, r"conv_transpose2d: expected input with 4 channels",
            ember.conv_transpose2d, ember.zeros(1, 3, 5, 5), ember.zeros(4, 2, 3, 3))


def test_error_ranks_and_bias():
    _raises(errors.ShapeError, r"conv2d: expected a 3-D \(unbatched\) or 4-D \(batched\) input, "
            r"got input of shape \(28, 28\)", ember.conv2d, ember.zeros(28, 28),
            ember.zeros(4, 1, 3, 3))
    _raises(errors.ShapeError, r"conv1d: expected a 3-D weight", ember.conv1d,
            ember.zeros(1, 2, 5), ember.zeros(4, 2))
    _raises(errors.ShapeError, r"conv2d: expected bias of shape \(4,\).*got \(3,\)",
            ember.conv2d, ember.zeros(1, 2, 5, 5), ember.zeros(4, 2, 3, 3), ember.zeros(3))


def test_error_groups_and_sizes():
    _raises(errors.ShapeError, r"out_channels \(5.*divisible by groups=2", ember.conv2d,
            ember.zeros(1, 4, 5, 5), ember.zeros(5, 2, 3, 3), groups=2)
    _raises(errors.ShapeError, r"conv2d: the padded input \(4, 4\) is smaller than the "
            r"\(dilated\) kernel \(5, 5\)", ember.conv2d, ember.zeros(1, 1, 4, 4),
            ember.zeros(1, 1, 3, 3), dilation=2)
    _raises(ValueError, r"padding='same' is not supported for strided convolutions",
            ember.conv2d, ember.zeros(1, 1, 4, 4), ember.zeros(1, 1, 3, 3), stride=2,
            padding="same")
    _raises(ValueError, r"conv2d: padding must be an int, a tuple, 'same' or 'valid', got 'full'",
            ember.conv2d, ember.zeros(1, 1, 4, 4), ember.zeros(1, 1, 3, 3), padding="full")
    _raises(ValueError, r"conv2d: stride must be positive", ember.conv2d,
            ember.zeros(1, 1, 4, 4), ember.zeros(1, 1, 3, 3), stride=0)
    _raises(ValueError, r"conv_transpose2d: output_padding \(2, 2\) must be smaller than stride",
            ember.conv_transpose2d, ember.zeros(1, 1, 4, 4), ember.zeros(1, 1, 3, 3), stride=2,
            output_padding=2)


def test_error_dtypes():
    _raises(errors.DTypeError, r"conv2d: input, weight and bias must share one floating dtype, "
            r"got input=float64, weight=float32", ember.conv2d,
            ember.zeros(1, 1, 4, 4, dtype=ember.float64), ember.zeros(1, 1, 3, 3))
    _raises(errors.DTypeError, r"conv1d: input, weight and bias must share one floating dtype",
            ember.conv1d, ember.zeros(1, 1, 4, dtype=ember.int64),
            ember.zeros(1, 1, 3, dtype=ember.int64))


def test_noncontiguous_inputs():
    check_op(lambda x, w: ember.conv2d(x.transpose(2, 3), w.transpose(2, 3), padding=1),
             [(2, 3, 6, 5), (4, 3, 2, 3)],
             torch_fn=lambda x, w: F.conv2d(x.transpose(2, 3), w.transpose(2, 3), padding=1))
    check_op(lambda x, w: ember.conv_transpose2d(x.transpose(2, 3), w, stride=2),
             [(2, 3, 4, 5), (3, 2, 3, 3)],
             torch_fn=lambda x, w: F.conv_transpose2d(x.transpose(2, 3), w, stride=2))


def test_empty_batch():
    x = ember.zeros(0, 3, 5, 5, requires_grad=True)
    w = ember.randn(4, 3, 3, 3, requires_grad=True)
    y = ember.conv2d(x, w, padding=1)
    assert y.shape == (0, 4, 5, 5)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 5, 5) and float(w.grad.abs().sum()) == 0.0
    assert ember.conv_transpose2d(x, w.transpose(0, 1), stride=2).shape == (0, 4, 11, 11)


# ---- the stride-1 'same' path (shifted copies of whole planes, chunked over the batch) ---------

SAME = [
    ((5, 3, 6, 7), (4, 3, 3, 3), {"padding": 1}),
    ((3, 4, 5, 6), (6, 2, 3, 3), {"padding": 1, "groups": 2}),
    ((2, 3, 4, 5), (2, 3, 4, 2), {"padding": "same"}),  # even kernels: more on the right
    ((2, 2, 3, 3), (3, 2, 3, 3), {"padding": 3, "dilation": 3}),  # off-centre taps read padding
    ((2, 2, 2, 3), (3, 2, 5, 5), {"padding": 2}),  # kernel larger than the input
    ((2, 3, 4, 4), (5, 3, 1, 1), {}),  # 1x1: out == in, no shifts
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs", SAME)
@pytest.mark.parametrize("chunk_bytes", [1 << 20, 1])
def test_same_path_conv2d(x_shape, w_shape, kwargs, chunk_bytes, monkeypatch):
    """Chunked over the batch (1 byte: one sample per chunk) or in one chunk."""
    from ember.ops import conv as conv_ops

    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", chunk_bytes)
    check_op(ember.conv2d, [x_shape, w_shape, (w_shape[0],)], torch_fn=F.conv2d, kwargs=kwargs)


@pytest.mark.parametrize("per_sample_rows", [0, 1 << 20])
def test_same_path_weight_grad_remakes_columns(per_sample_rows, monkeypatch):
    """The weight gradient remakes the columns chunk by chunk; 7 samples in chunks of 2
    leave a short last chunk."""
    from ember.ops import conv as conv_ops

    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", 3 * 9 * 25 * 8 * 2)
    monkeypatch.setattr(conv_ops, "_WGRAD_PER_SAMPLE_ROWS", per_sample_rows)
    rng = numpy.random.default_rng(1)
    x, w = rng.standard_normal((7, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3))
    gy = rng.standard_normal((7, 4, 5, 5))
    g = conv_ops._Geom((5, 5), (5, 5), (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1)
    gw, gb = conv_ops._same_weight_grad(numpy, x, gy, w.shape, g, bias=True)
    wt = torch.tensor(w, requires_grad=True)
    (gwt,) = torch.autograd.grad(F.conv2d(torch.tensor(x), wt, padding=1), [wt], torch.tensor(gy))
    numpy.testing.assert_allclose(gw, gwt.numpy(), rtol=1e-10, atol=1e-10)
    numpy.testing.assert_allclose(gb, gy.sum(axis=(0, 2, 3)), rtol=1e-10, atol=1e-10)


def test_same_path_conv1d_conv3d_and_transpose():
    check_op(ember.conv1d, [(3, 4, 9), (6, 2, 5), (6,)], torch_fn=F.conv1d,
             kwargs={"padding": 4, "dilation": 2, "groups": 2})
    check_op(ember.conv3d, [(2, 2, 3, 4, 5), (3, 2, 3, 3, 3), (3,)], torch_fn=F.conv3d,
             kwargs={"padding": 1})
    # stride 1 with padding (k-1)/2: the transposed conv is a 'same' geometry too
    check_op(ember.conv_transpose2d, [(3, 4, 5, 6), (4, 3, 3, 3), (3,)],
             torch_fn=F.conv_transpose2d, kwargs={"padding": 1})
    check_op(ember.conv_transpose2d, [(2, 4, 5, 5), (4, 1, 3, 3), (2,)],
             torch_fn=F.conv_transpose2d, kwargs={"padding": 1, "groups": 2})


def test_same_path_double_backward():
    check_double_backward(lambda x, w, b: ember.conv2d(x, w, b, padding=1) ** 2,
                          [(3, 2, 4, 5), (3, 2, 3, 3), (3,)])
    check_double_backward(lambda x, w: ember.conv_transpose2d(x, w, padding=1, groups=2) ** 2,
                          [(2, 4, 4, 3), (4, 1, 3, 3)])
    check_double_backward(lambda x, w: ember.conv2d(x, w, padding="same", dilation=2),
                          [(2, 2, 5, 4), (2, 2, 2, 3)])


def test_same_path_noncontiguous_input():
    check_op(lambda x, w: ember.conv2d(x.transpose(2, 3), w, padding=1),
             [(3, 2, 5, 4), (3, 2, 3, 3)],
             torch_fn=lambda x, w: F.conv2d(x.transpose(2, 3), w, padding=1))


def test_same_path_float32_lenet_conv1():
    """LeNet's first conv (1 input channel, 28 x 28): more samples per chunk."""
    check_op(ember.conv2d, [(64, 1, 28, 28), (16, 1, 3, 3), (16,)], torch_fn=F.conv2d,
             kwargs={"padding": 1}, dtype=numpy.float32, rtol=1e-4, atol=5e-3, gradcheck=False)


# ---- the same path split over threads (parts of the batch side by side) ------------------------


@pytest.mark.parametrize("x_shape, w_shape, kwargs", SAME[:4] + [
    ((1, 3, 5, 6), (4, 3, 3, 3), {"padding": 1}),  # batch 1: one part
    ((7, 2, 4, 5), (3, 2, 3, 3), {"padding": 1}),  # odd batch, parts of 4 and 3
])
@pytest.mark.parametrize("chunk_bytes", [1 << 20, 1])
@pytest.mark.parametrize("per_sample_rows", [0, 1 << 20])
def test_same_path_split_over_threads(x_shape, w_shape, kwargs, chunk_bytes, per_sample_rows,
                                      monkeypatch):
    """Forced with a tiny split size: forward, input and weight gradients (partial sums
    added) by parts, chunked within each part or not, the weight gradient by one GEMM per
    chunk or per sample."""
    from ember.backend import threads
    from ember.ops import conv as conv_ops

    monkeypatch.setattr(threads, "_COUNT", [2])
    monkeypatch.setattr(conv_ops, "_SPLIT_BYTES", 1)
    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(conv_ops, "_PART_CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(conv_ops, "_WGRAD_PER_SAMPLE_ROWS", per_sample_rows)
    check_op(ember.conv2d, [x_shape, w_shape, (w_shape[0],)], torch_fn=F.conv2d, kwargs=kwargs)


def test_same_path_split_transpose(monkeypatch):
    """The transposed conv runs the input-gradient kernel forward, bias added by parts."""
    from ember.backend import threads
    from ember.ops import conv as conv_ops

    monkeypatch.setattr(threads, "_COUNT", [2])
    monkeypatch.setattr(conv_ops, "_SPLIT_BYTES", 1)
    check_op(ember.conv_transpose2d, [(5, 4, 5, 6), (4, 3, 3, 3), (3,)],
             torch_fn=F.conv_transpose2d, kwargs={"padding": 1})
    check_op(ember.conv_transpose2d, [(3, 4, 5, 5), (4, 1, 3, 3), (2,)],
             torch_fn=F.conv_transpose2d, kwargs={"padding": 1, "groups": 2})


def test_same_path_split_double_backward_and_float32(monkeypatch):
    from ember.backend import threads
    from ember.ops import conv as conv_ops

    monkeypatch.setattr(threads, "_COUNT", [2])
    monkeypatch.setattr(conv_ops, "_SPLIT_BYTES", 1)
    check_double_backward(lambda x, w, b: ember.conv2d(x, w, b, padding=1) ** 2,
                          [(3, 2, 4, 5), (3, 2, 3, 3), (3,)])
    check_op(ember.conv2d, [(9, 16, 14, 14), (32, 16, 3, 3), (32,)], torch_fn=F.conv2d,
             kwargs={"padding": 1}, dtype=numpy.float32, rtol=1e-4, atol=5e-3, gradcheck=False)


# ---- the row-shift forward (1-D and 2-D 'same' convs with C_in/groups * k[-1] >= _ROWS_MIN_K) ---

ROWS = SAME + [
    ((1, 3, 5, 7), (4, 3, 3, 3), {"padding": 1}),  # batch 1, odd sizes
    ((3, 2, 1, 6), (3, 2, 3, 3), {"padding": 1}),  # one row: every vertical tap reads padding
    ((2, 2, 6, 1), (3, 2, 3, 3), {"padding": 1}),  # one column: every horizontal tap wraps
    ((2, 2, 7, 6), (4, 2, 5, 3), {"padding": (2, 1)}),  # 5 row offsets, asymmetric
    ((2, 2, 6, 7), (3, 2, 4, 4), {"padding": "same", "dilation": (1, 2)}),  # pads lo != hi
    ((2, 4, 5, 5), (4, 1, 3, 3), {"padding": 1, "groups": 4}),  # depthwise
    ((2, 2, 6, 5), (3, 2, 2, 3), {"padding": "same", "dilation": 2}),  # no unshifted row offset
    ((2, 2, 2, 3), (3, 2, 7, 3), {"padding": (3, 1)}),  # row shifts past the whole plane
    ((3, 4, 5, 6), (6, 2, 3, 3), {"padding": (1, 2), "dilation": (1, 2), "groups": 2}),
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs", ROWS)
@pytest.mark.parametrize("rows_min_k, chunk_bytes, stack_k", [
    (0, 1 << 20, 0), (0, 1, 0), (0, 1 << 20, 1 << 30), (0, 1, 1 << 30), (1 << 30, 1, 0)])
def test_same_path_rows_forward(x_shape, w_shape, kwargs, rows_min_k, chunk_bytes, stack_k,
                                monkeypatch):
    """The row-shift forward and gradients (_rows_backward) forced on (0) or off (1 << 30)
    for any channel count, in one chunk or one sample per chunk, the leading offsets' GEMMs
    stacked into one (stack_k 0) or one per offset (1 << 30); with and without bias (fused
    as a row of ones in the forward and the weight gradient)."""
    from ember.ops import conv as conv_ops

    monkeypatch.setattr(conv_ops, "_ROWS_MIN_K", rows_min_k)
    monkeypatch.setattr(conv_ops, "_ROWS_MIN_GRAD", rows_min_k)
    monkeypatch.setattr(conv_ops, "_ROWS_STACK_K", stack_k)
    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", chunk_bytes)
    check_op(ember.conv2d, [x_shape, w_shape, (w_shape[0],)], torch_fn=F.conv2d, kwargs=kwargs)
    check_op(ember.conv2d, [x_shape, w_shape], torch_fn=F.conv2d, kwargs=kwargs)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((3, 4, 7), (5, 4, 3), {"padding": 1}),
    ((2, 4, 9), (4, 2, 5), {"padding": "same", "dilation": 2, "groups": 2}),
    ((2, 2, 1), (3, 2, 3), {"padding": 1}),
])
def test_same_path_rows_forward_conv1d(x_shape, w_shape, kwargs, monkeypatch):
    from ember.ops import conv as conv_ops

    monkeypatch.setattr(conv_ops, "_ROWS_MIN_K", 0)
    monkeypatch.setattr(conv_ops, "_ROWS_MIN_GRAD", 0)
    check_op(ember.conv1d, [x_shape, w_shape, (w_shape[0],)], torch_fn=F.conv1d, kwargs=kwargs)


@pytest.mark.parametrize("x_shape", [(7, 3, 5, 6), (1, 3, 5, 6)])
@pytest.mark.parametrize("chunk_bytes", [1 << 20, 1])
def test_same_path_rows_forward_split_over_threads(x_shape, chunk_bytes, monkeypatch):
    """Parts of 4 and 3 samples (or one part) on two threads, chunked or not, float64 and
    float32 against torch (weight gradients summed over the parts), and double backward
    through the row-shift forward and gradients."""
    from ember.backend import threads
    from ember.ops import conv as conv_ops

    monkeypatch.setattr(threads, "_COUNT", [2])
    monkeypatch.setattr(conv_ops, "_ROWS_MIN_K", 0)
    monkeypatch.setattr(conv_ops, "_ROWS_MIN_GRAD", 0)
    monkeypatch.setattr(conv_ops, "_SPLIT_BYTES", 1)
    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(conv_ops, "_PART_CHUNK_BYTES", chunk_bytes)
    shapes = [x_shape, (4, 3, 3, 3), (4,)]
    check_op(ember.conv2d, shapes, torch_fn=F.conv2d, kwargs={"padding": 1})
    rng = numpy.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(numpy.float32) for s in shapes)
    got = ember.conv2d(ember.tensor(x), ember.tensor(w), ember.tensor(b), padding=1).numpy()
    want = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1).numpy()
    numpy.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    check_double_backward(lambda x, w, b: ember.conv2d(x, w, b, padding=1),
                          [(x_shape[0], 3, 3, 4), (4, 3, 3, 3), (4,)])


def test_same_path_rows_forward_lenet_conv2_float32():
    """LeNet's conv 16->32 (C_in * k[-1] = 48) takes the row-shift path by default."""
    from ember.ops import conv as conv_ops

    assert 16 * 3 >= conv_ops._ROWS_MIN_K
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((9, 16, 14, 14)).astype(numpy.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(numpy.float32) * 0.1
    b = rng.standard_normal(32).astype(numpy.float32)
    got = ember.conv2d(ember.tensor(x), ember.tensor(w), ember.tensor(b), padding=1).numpy()
    want = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1).numpy()
    numpy.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("groups, bias", [(1, True), (1, False), (2, True)])
@pytest.mark.parametrize("n, chunk_bytes", [(7, 1), (7, 1 << 20), (1, 1)])
@pytest.mark.parametrize("stack_k", [0, 1 << 30])
def test_same_path_rows_backward_kernel(groups, bias, n, chunk_bytes, stack_k, monkeypatch):
    """_rows_backward on arrays against torch: the input gradient (plus the transposed conv's
    bias), the weight gradient and the bias gradient (fused in the weight gradient's GEMM with
    one group, summed apart with two), all together and each alone (the same values: the
    transposed conv and _ConvWeight call it alone); odd sizes, batch 1, one sample per chunk."""
    from ember.ops import conv as conv_ops

    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(conv_ops, "_ROWS_STACK_K", stack_k)
    rng = numpy.random.default_rng(2)
    x, gy = rng.standard_normal((n, 4, 5, 7)), rng.standard_normal((n, 6, 5, 7))
    w, b = rng.standard_normal((6, 4 // groups, 3, 3)), rng.standard_normal(4)
    g = conv_ops._Geom((5, 7), (5, 7), (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), groups)
    gx, gw, gb = conv_ops._rows_backward(numpy, x, gy, w, b if bias else None, g,
                                         need_b=bias)
    wt = torch.tensor(w, requires_grad=True)
    y = F.conv2d(torch.tensor(x), wt, padding=1, groups=groups)
    (gwt,) = torch.autograd.grad(y, [wt], torch.tensor(gy))
    numpy.testing.assert_allclose(gw, gwt.numpy(), rtol=1e-10, atol=1e-10)
    if bias:
        numpy.testing.assert_allclose(gb, gy.sum(axis=(0, 2, 3)), rtol=1e-10, atol=1e-10)
    else:
        assert gb is None
    want = F.conv_transpose2d(torch.tensor(gy), torch.tensor(w),
                              torch.tensor(b) if bias else None, padding=1, groups=groups)
    numpy.testing.assert_allclose(gx, want.numpy(), rtol=1e-10, atol=1e-10)
    alone_x = conv_ops._rows_backward(numpy, None, gy, w, b if bias else None, g, need_w=False)
    alone_w = conv_ops._rows_backward(numpy, x, gy, None, None, g, need_x=False, need_b=bias,
                                      w_shape=w.shape)
    assert alone_x[1:] == (None, None) and alone_w[0] is None
    numpy.testing.assert_array_equal(alone_x[0], gx)
    numpy.testing.assert_array_equal(alone_w[1], gw)
    if bias:
        numpy.testing.assert_array_equal(alone_w[2], gb)


@pytest.mark.parametrize("x_shape, w_shape, pads, dilation", [
    ((2, 2, 6, 7), (3, 2, 4, 4), ((1, 3), (2, 3)), (1, 2)),  # pads lo != hi: flipped geometry
    ((2, 2, 2, 3), (3, 2, 7, 3), ((3, 1), (3, 1)), (1, 1)),  # row shifts past the plane
    ((2, 2, 9), (3, 2, 4), ((1,), (2,)), (1,)),  # 1-D, even kernel
])
def test_same_path_rows_backward_flipped_geometries(x_shape, w_shape, pads, dilation):
    """The input gradient as the conv of gy in the flipped geometry (paddings swapped) and the
    weight gradient's flipped kernel index, where the paddings differ, against torch."""
    from ember.ops import conv as conv_ops

    rng = numpy.random.default_rng(3)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    gy = rng.standard_normal((x_shape[0], w_shape[0]) + x_shape[2:])
    size, k = x_shape[2:], w_shape[2:]
    g = conv_ops._Geom(size, size, k, (1,) * len(k), dilation, pads[0], pads[1], 1)
    gx, gw, gb = conv_ops._rows_backward(numpy, x, gy, w, None, g, need_b=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    pad = [p for lo, hi in zip(reversed(pads[0]), reversed(pads[1])) for p in (lo, hi)]
    conv = F.conv2d if len(k) == 2 else F.conv1d
    conv(F.pad(tx, pad), tw, dilation=dilation).backward(torch.tensor(gy))
    numpy.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-10, atol=1e-10)
    numpy.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-10, atol=1e-10)
    numpy.testing.assert_allclose(gb, gy.sum(axis=(0,) + tuple(range(2, gy.ndim))),
                                  rtol=1e-10, atol=1e-10)


def test_same_path_rows_gradients_w3_float32():
    """W3's block conv (32 -> 32, C_in * k[-1] = 96) takes the row-shift gradients
    (_rows_backward) and the stacked GEMM by default; float32 against torch."""
    from ember.ops import conv as conv_ops

    assert 32 * 3 >= max(conv_ops._ROWS_MIN_K, conv_ops._ROWS_MIN_GRAD, conv_ops._ROWS_STACK_K)
    check_op(ember.conv2d, [(3, 32, 9, 10), (32, 32, 3, 3), (32,)], torch_fn=F.conv2d,
             kwargs={"padding": 1}, dtype=numpy.float32, rtol=1e-4, atol=5e-3, gradcheck=False)
