"""BatchNorm, InstanceNorm, LayerNorm, GroupNorm and RMSNorm layers against torch.nn on copied
weights, in train and eval mode, running statistics included."""

import numpy
import pytest
import torch

import ember
from ember import errors, nn
from tests.nn.layer_check import check_buffers, compare_layer, copy_state


def _randomize_affine(t_layer):
    with torch.no_grad():
        for p in t_layer.parameters():
            p.uniform_(0.5, 1.5)


@pytest.mark.parametrize("kwargs", [
    {}, {"momentum": 0.3}, {"momentum": None}, {"affine": False}, {"eps": 1e-3},
    {"track_running_stats": False}, {"bias": False},
], ids=str)
@pytest.mark.parametrize("cls, shape", [("BatchNorm1d", (8, 4)), ("BatchNorm1d", (6, 4, 5)),
                                        ("BatchNorm2d", (4, 4, 3, 5))])
def test_batchnorm_matches_torch(cls, shape, kwargs):
    torch.manual_seed(0)
    t = getattr(torch.nn, cls)(4, **kwargs)
    _randomize_affine(t)
    e = getattr(nn, cls)(4, **kwargs)
    # Several train steps: running statistics follow torch's; then eval uses them.
    compare_layer(e, t, [shape], steps=3)
    if t.track_running_stats:
        assert int(e.num_batches_tracked.numpy()) == 3 == int(t.num_batches_tracked)
    assert repr(e) == repr(t)


def test_batchnorm_eval_uses_running_stats_of_shifted_data():
    torch.manual_seed(1)
    t = torch.nn.BatchNorm2d(3, momentum=0.5)
    e = nn.BatchNorm2d(3, momentum=0.5)
    copy_state(e, t)
    rng = numpy.random.default_rng(0)
    for _ in range(4):
        x = (rng.standard_normal((5, 3, 4, 4)) * 3 + 2).astype(numpy.float32)
        e(ember.tensor(x))
        t(torch.tensor(x))
    check_buffers(e, t)
    e.eval()
    t.eval()
    x = rng.standard_normal((2, 3, 4, 4)).astype(numpy.float32)
    numpy.testing.assert_allclose(e(ember.tensor(x)).detach().numpy(),
                                  t(torch.tensor(x)).detach().numpy(),
                                  1e-5, 1e-5)


def test_batchnorm_float64_and_state_dict_keys():
    t = torch.nn.BatchNorm1d(3).double()
    _randomize_affine(t)
    e = nn.BatchNorm1d(3, dtype=ember.float64)
    compare_layer(e, t, [(5, 3, 2)], dtype=numpy.float64, rtol=1e-10, atol=1e-10, steps=2)
    assert list(e.state_dict()) == list(t.state_dict())
    assert e.num_batches_tracked.dtype == ember.int64


def test_lazy_batchnorm2d():
    bn = nn.BatchNorm2d()
    assert bn.num_features is None
    with pytest.raises(errors.ModuleError, match="running_mean' has not been built yet"):
        bn.running_mean.shape  # noqa: B018
    y = bn(ember.randn(4, 6, 3, 3))
    assert y.shape == (4, 6, 3, 3) and bn.num_features == 6
    assert bn.weight.shape == (6,) and bn.running_var.shape == (6,)
    assert repr(bn) == repr(torch.nn.BatchNorm2d(6))
    t = torch.nn.BatchNorm2d(6)
    _randomize_affine(t)
    compare_layer(bn, t, [(4, 6, 3, 3)], steps=2)
    lazy = nn.LazyBatchNorm1d(affine=False)
    lazy.build(ember.zeros(3, 5))
    assert lazy.num_features == 5 and lazy.weight is None
    assert float(lazy.num_batches_tracked.numpy()) == 0  # build runs in eval mode


def test_batchnorm_errors_name_the_layer():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    with pytest.raises(errors.ShapeError) as info:
        model[1](ember.zeros(2, 4, 3, 3))
    assert str(info.value) == (
        "BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, bias=True, "
        "track_running_stats=True) '1' "
        "expected a 2-D or 3-D input (N, C) or (N, C, L), got input of shape (2, 4, 3, 3)"
    )
    with pytest.raises(errors.ShapeError, match=r"BatchNorm2d\(3, .*expected a 4-D input \(N, C, "
                                                r"H, W\), got input of shape \(2, 3, 5\)"):
        nn.BatchNorm2d(3)(ember.zeros(2, 3, 5))
    with pytest.raises(errors.ShapeError, match=r"BatchNorm2d\(3, .*expected input with 3 "
                                                r"channels \(dim 1\), got input of shape "
                                                r"\(2, 4, 5, 5\)"):
        nn.BatchNorm2d(3)(ember.zeros(2, 4, 5, 5))
    with pytest.raises(ValueError, match="more than 1 value per channel when training"):
        nn.BatchNorm1d(3)(ember.zeros(1, 3))
    nn.BatchNorm1d(3).eval()(ember.zeros(1, 3))  # fine in eval mode


@pytest.mark.parametrize("kwargs", [{}, {"affine": True}, {"track_running_stats": True},
                                    {"affine": True, "track_running_stats": True,
                                     "momentum": 0.4}], ids=str)
def test_instancenorm2d_matches_torch(kwargs):
    torch.manual_seed(2)
    t = torch.nn.InstanceNorm2d(3, **kwargs)
    _randomize_affine(t)
    e = nn.InstanceNorm2d(3, **kwargs)
    compare_layer(e, t, [(4, 3, 5, 4)], steps=2)
    compare_layer(e, t, [(3, 5, 4)])  # unbatched
    assert repr(e) == repr(t)


def test_instancenorm1d_matches_torch():
    t = torch.nn.InstanceNorm1d(3, affine=True, track_running_stats=True)
    _randomize_affine(t)
    compare_layer(nn.InstanceNorm1d(3, affine=True, track_running_stats=True), t, [(4, 3, 7)],
                  steps=2)


@pytest.mark.parametrize("args, kwargs, shape", [
    ((5,), {}, (3, 5)),
    ((5,), {"bias": False}, (2, 3, 5)),
    (((3, 5),), {"eps": 1e-3}, (2, 3, 5)),
    ((5,), {"elementwise_affine": False}, (4, 5)),
], ids=str)
def test_layernorm_matches_torch(args, kwargs, shape):
    torch.manual_seed(3)
    t = torch.nn.LayerNorm(*args, **kwargs)
    _randomize_affine(t)
    e = nn.LayerNorm(*args, **kwargs)
    compare_layer(e, t, [shape])
    assert repr(e) == repr(t)


@pytest.mark.parametrize("args, kwargs, shape", [
    ((2, 4), {}, (3, 4, 5)), ((1, 6), {}, (2, 6, 3, 3)), ((6, 6), {"affine": False}, (2, 6, 4)),
    ((3, 6), {"eps": 1e-3}, (2, 6)), ((2, 4), {"bias": False}, (3, 4, 2)),
], ids=str)
def test_groupnorm_matches_torch(args, kwargs, shape):
    torch.manual_seed(4)
    t = torch.nn.GroupNorm(*args, **kwargs)
    _randomize_affine(t)
    e = nn.GroupNorm(*args, **kwargs)
    compare_layer(e, t, [shape])
    assert repr(e) == repr(t)


@pytest.mark.parametrize("args, kwargs, shape", [
    ((5,), {}, (3, 5)), (((2, 5),), {"eps": 1e-4}, (4, 2, 5)),
    ((5,), {"elementwise_affine": False}, (2, 5)),
], ids=str)
def test_rmsnorm_matches_torch(args, kwargs, shape):
    torch.manual_seed(5)
    t = torch.nn.RMSNorm(*args, **kwargs)
    _randomize_affine(t)
    e = nn.RMSNorm(*args, **kwargs)
    compare_layer(e, t, [shape])
    assert repr(e) == repr(t)


def test_rmsnorm_default_eps_is_finfo_eps():
    x = numpy.full((1, 4), 1e-4, dtype=numpy.float32)
    e = nn.RMSNorm(4)(ember.tensor(x)).detach().numpy()
    t = torch.nn.RMSNorm(4)(torch.tensor(x)).detach().numpy()
    numpy.testing.assert_allclose(e, t, 1e-5)


def test_norm_layer_errors():
    with pytest.raises(errors.ShapeError, match=r"LayerNorm\(\(5,\).*'ln' expected input of "
                                                r"shape \(\*, 5\), got input of shape \(2, 4\)"):
        model = nn.Sequential()
        model.add_module("ln", nn.LayerNorm(5))
        model(ember.zeros(2, 4))
    with pytest.raises(errors.ShapeError, match=r"GroupNorm\(2, 4.*expected input of shape "
                                                r"\(N, 4, \*\)"):
        nn.GroupNorm(2, 4)(ember.zeros(2, 3, 5))
    with pytest.raises(ValueError, match="num_channels \\(5\\) must be divisible"):
        nn.GroupNorm(2, 5)
    with pytest.raises(errors.ShapeError, match=r"RMSNorm\(\(3,\).*expected input"):
        nn.RMSNorm(3)(ember.zeros(3, 4))
    with pytest.raises(errors.ShapeError, match=r"InstanceNorm2d\(3.*expected a 3-D or 4-D"):
        nn.InstanceNorm2d(3)(ember.zeros(3, 4))


def test_lazy_batchnorm_loads_a_state_dict():
    t = torch.nn.BatchNorm1d(5)
    _randomize_affine(t)
    t(torch.randn(8, 5))  # moves the running statistics
    e = nn.BatchNorm1d()
    copy_state(e, t)
    assert e.num_features == 5 and not e.has_uninitialized_params()
    check_buffers(e, t)
    compare_layer(e, t, [(6, 5)], modes=("eval", "train"))
