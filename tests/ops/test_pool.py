"""Max, average and adaptive pooling against PyTorch, finite differences, double backward."""

import numpy
import pytest
import torch
import torch.nn.functional as F

import ember
from ember import errors
from tests.oracle import check_double_backward, check_op, make_inputs


def _distinct(shape, seed=0):
    """Inputs without ties (a permutation of spaced values) so finite differences of a max are
    well defined: the winner cannot change within eps."""
    rng = numpy.random.default_rng(seed)
    n = int(numpy.prod(shape))
    return (rng.permutation(n).astype(numpy.float64) * 0.1 - n * 0.05).reshape(shape)


MAX2D = [
    ((2, 3, 6, 6), {"kernel_size": 2}),
    ((2, 3, 7, 6), {"kernel_size": (3, 2), "stride": (2, 1), "padding": 1}),
    ((1, 2, 7, 8), {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
    ((1, 2, 8, 7), {"kernel_size": (2, 3), "stride": 2, "padding": (1, 1), "dilation": (2, 1),
                    "ceil_mode": True}),
    ((1, 2, 6, 6), {"kernel_size": 3, "stride": 1}),  # overlapping windows
    ((3, 5, 5), {"kernel_size": 2, "stride": [], "ceil_mode": True}),  # unbatched, stride []
]


@pytest.mark.parametrize("shape, kwargs", MAX2D)
@pytest.mark.parametrize("return_indices", [False, True])
def test_max_pool2d(shape, kwargs, return_indices):
    kwargs = dict(kwargs, return_indices=return_indices)
    check_op(ember.max_pool2d, [], torch_fn=F.max_pool2d, kwargs=kwargs,
             inputs=[_distinct(shape)])


@pytest.mark.parametrize("shape, kwargs", [
    ((2, 3, 9), {"kernel_size": 3, "stride": 2, "padding": 1, "return_indices": True}),
    ((2, 3, 10), {"kernel_size": 2, "dilation": 3, "ceil_mode": True, "return_indices": True}),
    ((3, 7), {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True}),
])
def test_max_pool1d(shape, kwargs):
    check_op(ember.max_pool1d, [], torch_fn=F.max_pool1d, kwargs=kwargs, inputs=[_distinct(shape)])


def test_max_pool3d():
    check_op(ember.max_pool3d, [], torch_fn=F.max_pool3d,
             kwargs={"kernel_size": 2, "stride": (1, 2, 2), "padding": (1, 0, 1),
                     "return_indices": True}, inputs=[_distinct((1, 2, 4, 5, 5))])


def test_max_pool_ties_take_the_first_maximum():
    x = numpy.zeros((1, 1, 5, 5))
    x[0, 0, 1:4, 1:4] = 1.0  # overlapping windows share tied maxima
    for stride in (1, 2):
        e = ember.tensor(x, requires_grad=True)
        t = torch.tensor(x, requires_grad=True)
        ey, ei = ember.max_pool2d(e, 3, stride, padding=1, return_indices=True)
        ty, ti = F.max_pool2d(t, 3, stride, padding=1, return_indices=True)
        ey.sum().backward()
        ty.sum().backward()
        numpy.testing.assert_array_equal(ei.numpy(), ti.numpy())
        numpy.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())


def test_max_pool_float32_lenet_shape():
    check_op(ember.max_pool2d, [(64, 16, 28, 28)], torch_fn=F.max_pool2d,
             kwargs={"kernel_size": 2, "return_indices": True}, dtype=numpy.float32)


# ---- the tiling fast path (stride == kernel, no padding or dilation, sizes divisible) -------

TILES = [
    ("max_pool2d", (3, 2, 6, 8), {"kernel_size": 2}),  # odd batch
    ("max_pool2d", (1, 3, 6, 6), {"kernel_size": 3}),  # k > 2: small int codes
    ("max_pool2d", (2, 2, 6, 4), {"kernel_size": (3, 2)}),
    ("max_pool2d", (2, 2, 4, 6), {"kernel_size": (1, 3)}),  # an axis that is not reduced
    ("max_pool2d", (2, 2, 4, 6), {"kernel_size": 2, "stride": 2, "ceil_mode": True}),
    ("max_pool1d", (3, 2, 8), {"kernel_size": 4}),
    ("max_pool3d", (2, 2, 4, 4, 6), {"kernel_size": 2}),
    ("max_pool3d", (1, 2, 2, 6, 4), {"kernel_size": (1, 3, 2)}),
]


@pytest.mark.parametrize("name, shape, kwargs", TILES)
@pytest.mark.parametrize("return_indices", [False, True])
def test_max_pool_tiles(name, shape, kwargs, return_indices):
    from ember.ops import pool as pool_ops

    assert pool_ops._tiles(pool_ops._geometry(name, len(shape) - 2, shape[2:],
                                              kwargs["kernel_size"], kwargs.get("stride"), 0,
                                              1, False))
    kwargs = dict(kwargs, return_indices=return_indices)
    check_op(getattr(ember, name), [], torch_fn=getattr(F, name), kwargs=kwargs,
             inputs=[_distinct(shape)])


@pytest.mark.parametrize("shape", [(5, 3, 8, 6), (1, 2, 4, 4), (64, 2, 4, 4)])
def test_max_pool_tiles_split_over_threads(shape, monkeypatch):
    """Parts of the batch on two threads (forced with a tiny split size): odd, 1 and many."""
    from ember.backend import threads
    from ember.ops import pool as pool_ops

    monkeypatch.setattr(threads, "_COUNT", [2])
    monkeypatch.setattr(pool_ops, "_SPLIT_BYTES", 1)
    for k in (2, (2, 3)):
        check_op(ember.max_pool2d, [], torch_fn=F.max_pool2d, inputs=[_distinct(shape)],
                 kwargs={"kernel_size": k, "return_indices": True})


def test_max_pool_tiles_ties_nan_and_float32():
    """Ties (zeros after a ReLU) go to the first maximum in row-major order, like PyTorch; a
    NaN makes its window's value NaN."""
    rng = numpy.random.default_rng(3)
    x = numpy.maximum(rng.standard_normal((4, 3, 8, 8)), 0).astype(numpy.float32)
    x[0, 0, :2, :2] = [[1.0, 2.0], [2.0, 0.5]]
    x[0, 1, :3, :3] = 7.0
    for k in (2, 3, (1, 2)):
        xs = x[..., :6, :6] if k == 3 else x
        e = ember.tensor(xs, requires_grad=True)
        t = torch.tensor(xs, requires_grad=True)
        ey, ei = ember.max_pool2d(e, k, return_indices=True)
        ty, ti = F.max_pool2d(t, k, return_indices=True)
        g = rng.standard_normal(ty.shape).astype(numpy.float32)
        ey.backward(ember.tensor(g))
        ty.backward(torch.tensor(g))
        numpy.testing.assert_array_equal(ey.detach().numpy(), ty.detach().numpy())
        numpy.testing.assert_array_equal(ei.numpy(), ti.numpy())
        numpy.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())
    x[1, 2, 0, 1] = numpy.nan
    y = ember.max_pool2d(ember.tensor(x), 2).numpy()
    assert numpy.isnan(y[1, 2, 0, 0]) and numpy.isnan(y).sum() == 1


def test_max_pool_tiles_noncontiguous_input():
    check_op(lambda x: ember.max_pool2d(x.transpose(2, 3), 2), [], inputs=[_distinct((3, 2, 6, 8))],
             torch_fn=lambda x: F.max_pool2d(x.transpose(2, 3), 2))


def test_max_pool_tiles_double_backward():
    for k in (2, 3):
        x = ember.tensor(_distinct((3, 2, 6, 6)), requires_grad=True)
        assert ember.autograd.gradgradcheck(lambda x, k=k: ember.max_pool2d(x, k) ** 2, [x])


AVG2D = [
    ((2, 3, 6, 6), {"kernel_size": 2}),
    ((2, 3, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((2, 3, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ((1, 2, 7, 8), {"kernel_size": (3, 2), "stride": 2, "padding": (1, 0), "ceil_mode": True}),
    ((1, 2, 8, 7), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                    "count_include_pad": False}),
    ((1, 2, 6, 6), {"kernel_size": 3, "stride": 1, "divisor_override": 4}),
    ((3, 5, 6), {"kernel_size": 2, "stride": 1, "padding": 1}),  # unbatched
]


@pytest.mark.parametrize("shape, kwargs", AVG2D)
def test_avg_pool2d(shape, kwargs):
    check_op(ember.avg_pool2d, [shape], torch_fn=F.avg_pool2d, kwargs=kwargs)


@pytest.mark.parametrize("shape, kwargs", [
    ((2, 3, 9), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((2, 3, 10), {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True,
                  "count_include_pad": False}),
    ((3, 7), {"kernel_size": 2, "ceil_mode": True}),
])
def test_avg_pool1d(shape, kwargs):
    check_op(ember.avg_pool1d, [shape], torch_fn=F.avg_pool1d, kwargs=kwargs)


def test_avg_pool3d():
    check_op(ember.avg_pool3d, [(1, 2, 4, 5, 5)], torch_fn=F.avg_pool3d,
             kwargs={"kernel_size": 2, "stride": (1, 2, 2), "padding": 1,
                     "count_include_pad": False, "ceil_mode": True})


def test_avg_pool_float32():
    check_op(ember.avg_pool2d, [(8, 4, 15, 15)], torch_fn=F.avg_pool2d,
             kwargs={"kernel_size": 3, "stride": 2, "padding": 1}, dtype=numpy.float32)


@pytest.mark.parametrize("shape, size", [
    ((2, 3, 7, 5), (3, 4)),  # non-divisible: overlapping variable windows
    ((2, 3, 7, 5), (3, None)),  # None keeps the size
    ((2, 3, 6, 6), 3),
    ((2, 3, 5, 5), 1),  # global
    ((3, 5, 7), (5, 2)),  # unbatched
    ((1, 2, 4, 3), (6, 5)),  # upsampling: windows of one element, repeated
])
def test_adaptive_avg_pool2d(shape, size):
    check_op(ember.adaptive_avg_pool2d, [shape], torch_fn=F.adaptive_avg_pool2d,
             kwargs={"output_size": size})


@pytest.mark.parametrize("shape, size", [((2, 3, 10), 4), ((3, 7), 3), ((2, 2, 5), 8)])
def test_adaptive_avg_pool1d(shape, size):
    check_op(ember.adaptive_avg_pool1d, [shape], torch_fn=F.adaptive_avg_pool1d,
             kwargs={"output_size": size})


@pytest.mark.parametrize("shape, size", [
    ((2, 3, 7, 5), (3, 4)),
    ((2, 3, 7, 5), (None, 2)),
    ((2, 3, 6, 6), 2),
    ((3, 5, 7), (5, 3)),  # unbatched
    ((1, 2, 3, 4), (5, 6)),  # more outputs than inputs
])
@pytest.mark.parametrize("return_indices", [False, True])
def test_adaptive_max_pool2d(shape, size, return_indices):
    check_op(ember.adaptive_max_pool2d, [], torch_fn=F.adaptive_max_pool2d,
             kwargs={"output_size": size, "return_indices": return_indices},
             inputs=[_distinct(shape)])


def test_adaptive_max_pool1d():
    check_op(ember.adaptive_max_pool1d, [], torch_fn=F.adaptive_max_pool1d,
             kwargs={"output_size": 4, "return_indices": True}, inputs=[_distinct((2, 3, 10))])


def test_adaptive_max_pool2d_ties_and_float32():
    x = numpy.zeros((1, 2, 7, 5), dtype=numpy.float32)
    e, t = ember.adaptive_max_pool2d(ember.tensor(x), (3, 4), True), F.adaptive_max_pool2d(
        torch.tensor(x), (3, 4), True)
    numpy.testing.assert_array_equal(e[1].numpy(), t[1].numpy())
    check_op(ember.adaptive_max_pool2d, [(4, 3, 13, 11)], torch_fn=F.adaptive_max_pool2d,
             kwargs={"output_size": (5, 4)}, dtype=numpy.float32)


# ---- double backward ---------------------------------------------------------------------------
# Pooling is linear (avg) or piecewise linear (max) in its input, so the first gradient only
# depends on x through the incoming gradient: square the output to make it do so.


def test_max_pool2d_double_backward():
    for kwargs in ({"kernel_size": 3, "stride": 2, "padding": 1}, {"kernel_size": 2}):
        x = ember.tensor(_distinct((1, 2, 5, 5)), requires_grad=True)
        assert ember.autograd.gradgradcheck(lambda x: ember.max_pool2d(x, **kwargs) ** 2, [x])


def test_avg_pool2d_double_backward():
    check_double_backward(lambda x: ember.avg_pool2d(x, 3, 2, 1, ceil_mode=True) ** 2,
                          [(1, 2, 5, 5)])
    check_double_backward(lambda x: ember.adaptive_avg_pool2d(x, (3, 2)) ** 2, [(1, 2, 5, 5)])


def test_adaptive_max_pool2d_double_backward():
    x = ember.tensor(_distinct((1, 2, 5, 5)), requires_grad=True)
    assert ember.autograd.gradgradcheck(lambda x: ember.adaptive_max_pool2d(x, 3) ** 2, [x])


def test_second_derivative_matches_torch():
    x = make_inputs([(2, 2, 6, 6)])[0]
    results = []
    for lib, grad, pool in ((ember, ember.autograd.grad, ember.avg_pool2d),
                            (torch, torch.autograd.grad, F.avg_pool2d)):
        xt = lib.tensor(x, requires_grad=True)
        (g,) = grad((pool(xt, 3, 2, 1) ** 3).sum(), [xt], create_graph=True)
        (h,) = grad((g * g).sum(), [xt])
        results.append(h.detach().numpy())
    numpy.testing.assert_allclose(results[0], results[1], rtol=1e-9, atol=1e-12)


# ---- errors ------------------------------------------------------------------------------------


def _raises(exc, match, fn, *args, **kwargs):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


def test_errors():
    x = ember.zeros(1, 1, 4, 4)
    _raises(ValueError, r"max_pool2d: padding should be at most half of the effective kernel "
            r"size, got padding=\(2, 2\), kernel_size=\(2, 2\)", ember.max_pool2d, x, 2, padding=2)
    _raises(ValueError, r"avg_pool2d: padding should be at most half", ember.avg_pool2d, x, 3,
            padding=2)
    _raises(errors.ShapeError, r"max_pool2d: input of spatial size \(4, 4\) is too small for "
            r"kernel \(5, 5\)", ember.max_pool2d, x, 5)
    _raises(errors.ShapeError, r"max_pool2d: expected a 3-D \(unbatched\) or 4-D \(batched\) "
            r"input.*got input of shape \(4, 4\)", ember.max_pool2d, ember.zeros(4, 4), 2)
    _raises(ValueError, r"max_pool1d: stride must be positive", ember.max_pool1d,
            ember.zeros(1, 1, 4), 2, 0)
    _raises(ValueError, r"avg_pool2d: kernel_size must be an int or a tuple of 2 ints, got "
            r"\(1, 2, 3\)", ember.avg_pool2d, x, (1, 2, 3))
    _raises(errors.DTypeError, r"max_pool2d: expected a floating-point input, got int64",
            ember.max_pool2d, ember.zeros(1, 1, 4, 4, dtype=ember.int64), 2)
    _raises(ValueError, r"adaptive_avg_pool2d: output_size must be positive",
            ember.adaptive_avg_pool2d, x, (0, 2))
    _raises(ValueError, r"adaptive_max_pool2d: output_size must be an int or 2 ints",
            ember.adaptive_max_pool2d, x, (1, 2, 3))
    _raises(ValueError, r"avg_pool2d: divisor_override must be a non-zero int",
            ember.avg_pool2d, x, 2, divisor_override=0)


def test_noncontiguous_input():
    x = _distinct((2, 3, 6, 7))
    check_op(lambda x: ember.max_pool2d(x.transpose(2, 3), 2, 1), [], inputs=[x],
             torch_fn=lambda x: F.max_pool2d(x.transpose(2, 3), 2, 1))
    check_op(lambda x: ember.avg_pool2d(x.transpose(2, 3), 3, 2, 1), [], inputs=[x],
             torch_fn=lambda x: F.avg_pool2d(x.transpose(2, 3), 3, 2, 1))


def test_empty_batch_and_large_windows():
    x = ember.zeros(0, 3, 5, 5, requires_grad=True)
    out = (ember.max_pool2d(x, 2).sum() + ember.avg_pool2d(x, 2).sum()
           + ember.adaptive_max_pool2d(x, 3).sum() + ember.adaptive_avg_pool2d(x, 3).sum())
    out.backward()
    assert x.grad.shape == (0, 3, 5, 5)
    # 12x12 windows: 144 offsets need a wider offset code than int8.
    check_op(ember.max_pool2d, [], torch_fn=F.max_pool2d, inputs=[_distinct((1, 2, 13, 14))],
             kwargs={"kernel_size": 12, "stride": 1, "return_indices": True})
