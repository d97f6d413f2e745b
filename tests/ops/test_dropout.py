"""F.dropout and friends: statistics, scaling, seeding, channel masks, gradients, inplace."""

import numpy
import pytest

import ember
from ember import errors
from ember.nn import functional as F
from tests.oracle import check_double_backward


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_fraction_zeroed_and_scale(p):
    y = F.dropout(ember.ones(100_000), p).numpy()
    assert abs((y == 0).mean() - p) < 0.01
    kept = y[y != 0]
    numpy.testing.assert_allclose(kept, 1 / (1 - p), rtol=1e-6)


def test_seeded_repeatability_and_dtype():
    x = ember.randn(64, 32, dtype=ember.float64)
    ember.manual_seed(7)
    a = F.dropout(x, 0.5)
    ember.manual_seed(7)
    b = F.dropout(x, 0.5)
    numpy.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.dtype == ember.float64
    ember.manual_seed(7)
    c = F.dropout2d(ember.ones(4, 8, 2, 2), 0.5)
    ember.manual_seed(7)
    numpy.testing.assert_array_equal(c.numpy(), F.dropout2d(ember.ones(4, 8, 2, 2), 0.5).numpy())


def test_not_training_returns_the_input():
    x = ember.randn(3, 4)
    for fn in (F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout,
               F.feature_alpha_dropout):
        shape_x = x if fn is not F.dropout2d else ember.randn(2, 3, 4)
        assert fn(shape_x, 0.5, training=False) is shape_x
    assert F.alpha_dropout(x, 0.5) is x  # alpha_dropout defaults to training=False, as torch


def test_gradient_is_the_scaled_mask():
    x = ember.randn(40, 30, requires_grad=True)
    y = F.dropout(x, 0.25)
    g = numpy.random.default_rng(0).standard_normal((40, 30)).astype(numpy.float32)
    y.backward(ember.tensor(g))
    mask = (y.detach().numpy() != 0) / 0.75
    numpy.testing.assert_allclose(x.grad.numpy(), g * mask, rtol=1e-6)
    # the mask is a constant: gradients of any order go through it (reseeded on every call,
    # so that finite differences see one mask)
    def fn(t):
        ember.manual_seed(3)
        return F.dropout(t, 0.3) * t

    check_double_backward(fn, [(5, 4)])


@pytest.mark.parametrize("fn, shape, mask_shape", [
    (F.dropout1d, (4, 6, 5), (4, 6, 1)), (F.dropout1d, (6, 5), (6, 1)),
    (F.dropout2d, (4, 6, 3, 3), (4, 6, 1, 1)), (F.dropout2d, (4, 6, 3), (4, 6, 1)),
    (F.dropout3d, (2, 6, 2, 2, 2), (2, 6, 1, 1, 1)), (F.dropout3d, (6, 2, 2, 2), (6, 1, 1, 1)),
])
def test_channel_dropout_masks_whole_channels(fn, shape, mask_shape):
    y = fn(ember.ones(*shape), 0.5).numpy()
    per = y.reshape(mask_shape[:len(mask_shape) - mask_shape.count(1)] + (-1,)) \
        if mask_shape.count(1) else y
    assert (per.min(-1) == per.max(-1)).all()
    assert set(numpy.unique(y).tolist()) <= {0.0, 2.0}


def test_inplace_semantics():
    x = ember.ones(100)
    version = x._version[0]
    y = F.dropout(x, 0.5, inplace=True)
    assert y is x and x._version[0] > version
    assert set(numpy.unique(x.numpy()).tolist()) == {0.0, 2.0}
    leaf = ember.ones(5, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        F.dropout(leaf, 0.5, inplace=True)
    # on a non-leaf, the gradient flows as for the out-of-place op
    w = ember.ones(50, requires_grad=True)
    h = w * 3.0
    out = F.dropout(h, 0.5, inplace=True)
    out.sum().backward()
    numpy.testing.assert_allclose(w.grad.numpy(), (out.detach().numpy() != 0) * 6.0)


def test_alpha_dropout_statistics_and_grad():
    x = ember.randn(300_000, dtype=ember.float64, requires_grad=True)
    y = F.alpha_dropout(x, 0.3, training=True)
    yn = y.detach().numpy()
    assert abs(yn.mean()) < 0.01 and abs(yn.std() - 1) < 0.01
    y.sum().backward()
    a = ((1 - 0.3) * (1 + 0.3 * 1.7580993408473766**2)) ** -0.5
    assert set(numpy.round(numpy.unique(x.grad.numpy()), 12).tolist()) == {0.0, round(a, 12)}
    z = F.feature_alpha_dropout(ember.ones(4, 6, 3), 0.5, training=True).numpy()
    assert (z.min(-1) == z.max(-1)).all()
    assert (F.alpha_dropout(ember.ones(3), 1.0, training=True).numpy() == 0).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="between 0 and 1, but got -0.1"):
        F.dropout(ember.ones(3), -0.1)
    with pytest.raises(errors.DTypeError, match="expected a floating-point input"):
        F.dropout(ember.ones(3, dtype=ember.int64), 0.5)
    with pytest.raises(errors.ShapeError, match=r"dropout1d: expected a 2-D \(unbatched\) or 3-D"):
        F.dropout1d(ember.ones(2, 3, 4, 5), 0.5)
