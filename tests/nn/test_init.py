"""nn.init: distributions checked statistically on large tensors, shapes, errors, seeding."""

import math

import numpy
import pytest
import torch

import ember
from ember import errors, nn
from ember.nn import init


def _values(t):
    return t.detach().numpy().astype(numpy.float64)


def test_calculate_gain_matches_torch():
    for name in ["linear", "conv2d", "sigmoid", "tanh", "relu", "selu"]:
        assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2))
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")


def test_uniform_normal_constant():
    t = ember.empty(200, 500)
    assert init.uniform_(t, -2.0, 3.0) is t
    v = _values(t)
    assert v.min() >= -2 and v.max() <= 3 and abs(v.mean() - 0.5) < 0.02
    assert abs(v.std() - 5 / math.sqrt(12)) < 0.01
    v = _values(init.normal_(t, 1.0, 0.5))
    assert abs(v.mean() - 1.0) < 0.005 and abs(v.std() - 0.5) < 0.005
    assert (_values(init.constant_(t, 0.25)) == 0.25).all()
    assert (_values(init.ones_(t)) == 1).all() and (_values(init.zeros_(t)) == 0).all()


def test_init_is_in_place_without_graph_and_seeded():
    p = nn.Parameter(ember.empty(50, 40))
    version = p._version_count
    init.xavier_uniform_(p)
    assert p.requires_grad and p.grad_fn is None and p._version_count > version
    ember.manual_seed(7)
    a = _values(init.kaiming_normal_(ember.empty(30, 20)))
    ember.manual_seed(7)
    b = _values(init.kaiming_normal_(ember.empty(30, 20)))
    numpy.testing.assert_array_equal(a, b)
    g = ember.Generator(3)
    c = _values(init.normal_(ember.empty(5), generator=g))
    d = _values(init.normal_(ember.empty(5), generator=ember.Generator(3)))
    numpy.testing.assert_array_equal(c, d)


def test_xavier_and_kaiming_scales():
    t = ember.empty(300, 200)
    bound = math.sqrt(6 / 500)
    v = _values(init.xavier_uniform_(t, gain=1.0))
    assert v.min() >= -bound and v.max() <= bound and abs(v.std() - bound / math.sqrt(3)) < 1e-3
    v = _values(init.xavier_normal_(t, gain=2.0))
    assert abs(v.std() - 2 * math.sqrt(2 / 500)) < 2e-3
    v = _values(init.kaiming_uniform_(t, a=math.sqrt(5)))
    assert v.max() <= 1 / math.sqrt(200) and abs(v.std() - 1 / math.sqrt(3 * 200)) < 1e-3
    v = _values(init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"))
    assert abs(v.std() - math.sqrt(2 / 300)) < 1e-3
    conv = ember.empty(16, 8, 3, 3)
    v = _values(init.kaiming_normal_(conv, nonlinearity="relu"))
    assert abs(v.std() - math.sqrt(2 / 72)) < 0.01
    with pytest.raises(errors.ShapeError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(ember.empty(5))
    with pytest.raises(ValueError, match="mode 'fan_avg' not supported"):
        init.kaiming_uniform_(t, mode="fan_avg")


def test_trunc_normal():
    v = _values(init.trunc_normal_(ember.empty(400, 250), mean=0.5, std=1.0, a=-0.5, b=1.5))
    assert v.min() >= -0.5 and v.max() <= 1.5
    # Mean of N(0.5, 1) truncated symmetric around its mean is 0.5.
    assert abs(v.mean() - 0.5) < 0.01
    v = _values(init.trunc_normal_(ember.empty(100000), std=0.02))
    assert abs(v.std() - 0.02) < 5e-4
    narrow = _values(init.trunc_normal_(ember.empty(1000), a=3.0, b=3.5))
    assert narrow.min() >= 3.0 and narrow.max() <= 3.5


def test_orthogonal_eye_dirac():
    w = _values(init.orthogonal_(ember.empty(20, 50)))
    numpy.testing.assert_allclose(w @ w.T, numpy.eye(20), atol=1e-5)
    w = _values(init.orthogonal_(ember.empty(50, 20), gain=2.0))
    numpy.testing.assert_allclose(w.T @ w, 4 * numpy.eye(20), atol=1e-4)
    w = _values(init.orthogonal_(ember.empty(6, 2, 3)))
    numpy.testing.assert_allclose(w.reshape(6, 6) @ w.reshape(6, 6).T, numpy.eye(6), atol=1e-5)
    numpy.testing.assert_array_equal(_values(init.eye_(ember.empty(3, 4))), numpy.eye(3, 4))
    e, t = ember.empty(4, 2, 3, 3), torch.empty(4, 2, 3, 3)
    numpy.testing.assert_array_equal(_values(init.dirac_(e, groups=2)),
                                     torch.nn.init.dirac_(t, groups=2).numpy())


def test_init_on_unbuilt_parameter_raises():
    lazy = nn.Linear(out_features=3)
    with pytest.raises(errors.ModuleError, match="has not been built yet"):
        init.zeros_(lazy.weight)
