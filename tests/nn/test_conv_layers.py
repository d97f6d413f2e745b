"""Conv1d/2d/3d and ConvTranspose1d/2d layers against torch.nn on copied weights."""

import numpy
import pytest
import torch

import ember
from ember import errors, nn
from tests.nn.layer_check import compare_layer, copy_state, run_both

CONV2D_CONFIGS = [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
    dict(padding="same", dilation=2),
    dict(padding="valid", bias=False),
    dict(groups=2, padding=1),
    dict(padding=2, padding_mode="reflect"),
    dict(padding=(1, 2), padding_mode="replicate", stride=2),
    dict(padding=1, padding_mode="circular"),
    dict(padding="same", padding_mode="reflect"),
]


@pytest.mark.parametrize("cfg", CONV2D_CONFIGS, ids=str)
def test_conv2d_matches_torch(cfg):
    torch.manual_seed(0)
    t = torch.nn.Conv2d(4, 6, 3, **cfg)
    e = nn.Conv2d(4, 6, 3, **cfg)
    compare_layer(e, t, [(2, 4, 7, 8)])
    assert repr(e) == repr(t)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's note
def test_conv2d_depthwise_and_even_kernel_same():
    torch.manual_seed(1)
    compare_layer(nn.Conv2d(4, 8, 3, groups=4, padding=1), torch.nn.Conv2d(4, 8, 3, groups=4,
                  padding=1), [(2, 4, 6, 6)])
    compare_layer(nn.Conv2d(3, 2, (2, 4), padding="same"),
                  torch.nn.Conv2d(3, 2, (2, 4), padding="same"), [(1, 3, 5, 6)])
    # unbatched input
    compare_layer(nn.Conv2d(3, 2, 3), torch.nn.Conv2d(3, 2, 3), [(3, 5, 5)])


@pytest.mark.parametrize("cfg", [dict(), dict(stride=2, padding=2, dilation=2),
                                 dict(groups=3, padding="same", padding_mode="circular"),
                                 dict(padding=3, padding_mode="reflect", bias=False)], ids=str)
def test_conv1d_matches_torch(cfg):
    torch.manual_seed(2)
    t = torch.nn.Conv1d(3, 6, 3, **cfg)
    e = nn.Conv1d(3, 6, 3, **cfg)
    compare_layer(e, t, [(2, 3, 11)])
    assert repr(e) == repr(t)


@pytest.mark.parametrize("cfg", [dict(), dict(stride=(1, 2, 1), padding=1, groups=2),
                                 dict(padding=1, padding_mode="replicate")], ids=str)
def test_conv3d_matches_torch(cfg):
    torch.manual_seed(3)
    t = torch.nn.Conv3d(2, 4, 2, **cfg)
    e = nn.Conv3d(2, 4, 2, **cfg)
    compare_layer(e, t, [(2, 2, 4, 5, 4)])
    assert repr(e) == repr(t)


@pytest.mark.parametrize("cfg", [
    dict(),
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=(2, 3), output_padding=(1, 2), dilation=1),
    dict(groups=2, dilation=2, bias=False),
], ids=str)
def test_conv_transpose2d_matches_torch(cfg):
    torch.manual_seed(4)
    t = torch.nn.ConvTranspose2d(4, 6, 3, **cfg)
    e = nn.ConvTranspose2d(4, 6, 3, **cfg)
    compare_layer(e, t, [(2, 4, 5, 4)])
    assert repr(e) == repr(t)


def test_conv_transpose1d_and_output_size():
    torch.manual_seed(5)
    t = torch.nn.ConvTranspose1d(3, 2, 3, stride=2, padding=1)
    e = nn.ConvTranspose1d(3, 2, 3, stride=2, padding=1)
    compare_layer(e, t, [(2, 3, 6)])
    for size in ([11], [12], [2, 2, 12]):
        compare_layer(e, t, [(2, 3, 6)], kwargs={"output_size": size})
    t2 = torch.nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1)
    e2 = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1)
    compare_layer(e2, t2, [(1, 8, 6, 5)], kwargs={"output_size": (12, 10)})
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(8, 4.*valid sizes .* from 11 to 12"):
        e2(ember.zeros(1, 8, 6, 5), output_size=(13, 10))


def test_float64_tight_tolerance():
    torch.manual_seed(6)
    t = torch.nn.Conv2d(3, 4, 3, padding=1, groups=1).double()
    e = nn.Conv2d(3, 4, 3, padding=1, dtype=ember.float64)
    compare_layer(e, t, [(2, 3, 5, 5)], dtype=numpy.float64, rtol=1e-10, atol=1e-10)


def test_default_init_is_torch_distribution():
    ember.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3)
    bound = 1 / (16 * 9) ** 0.5
    w = conv.weight.detach().numpy()
    assert w.shape == (32, 16, 3, 3) and abs(w).max() <= bound
    assert abs(w.std() - bound / 3**0.5) < 0.05 * bound
    assert abs(conv.bias.detach().numpy()).max() <= bound
    ember.manual_seed(0)
    again = nn.Conv2d(16, 32, 3)
    numpy.testing.assert_array_equal(again.weight.detach().numpy(), w)
    assert nn.ConvTranspose2d(4, 6, 3, groups=2).weight.shape == (4, 3, 3, 3)


def test_lazy_conv2d_builds_from_first_input():
    ember.manual_seed(0)
    conv = nn.Conv2d(out_channels=16, kernel_size=3)
    assert conv.in_channels is None and conv.has_uninitialized_params()
    with pytest.raises(errors.ModuleError, match="has not been built yet"):
        conv.weight.shape  # noqa: B018
    y = conv(ember.randn(2, 5, 8, 8))
    assert y.shape == (2, 16, 6, 6)
    assert conv.in_channels == 5 and conv.weight.shape == (16, 5, 3, 3)
    assert repr(conv) == "Conv2d(5, 16, kernel_size=(3, 3), stride=(1, 1))"
    # after building, it is an ordinary Conv2d: compare with torch
    t = torch.nn.Conv2d(5, 16, 3)
    compare_layer(conv, t, [(2, 5, 8, 8)])
    lazy = nn.LazyConv2d(4, 3, groups=2, padding=1)
    assert lazy(ember.randn(1, 6, 5, 5)).shape == (1, 4, 5, 5)
    assert lazy.weight.shape == (4, 3, 3, 3)
    model = nn.Sequential(nn.Conv1d(out_channels=4, kernel_size=3), nn.ReLU())
    model.build(ember.zeros(1, 7, 9))
    assert model[0].in_channels == 7


def test_lazy_conv_loads_a_state_dict():
    t = torch.nn.Conv2d(3, 8, 3)
    e = nn.Conv2d(out_channels=8, kernel_size=3)
    copy_state(e, t)
    assert e.in_channels == 3
    rng = numpy.random.default_rng(0)
    run_both(e, t, [rng.standard_normal((1, 3, 5, 5)).astype(numpy.float32)], rng, 1e-4, 1e-5)


def test_channel_mismatch_names_the_layer():
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(nn.Conv2d(3, 16, kernel_size=3)))
    with pytest.raises(errors.ShapeError) as info:
        model(ember.zeros(8, 1, 28, 28))
    assert str(info.value) == (
        "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1)) 'features.0' expected input with 3 "
        "channels, got input of shape (8, 1, 28, 28)"
    )
    with pytest.raises(errors.ShapeError, match=r"Conv2d\(3, 16.*expected a 4-D input \(N, C, H, "
                                                r"W\) or 3-D unbatched \(C, H, W\), got input of "
                                                r"shape \(28, 28\)"):
        nn.Conv2d(3, 16, 3)(ember.zeros(28, 28))
    with pytest.raises(errors.ShapeError, match=r"ConvTranspose1d\(4, 2.*expected input with 4 "
                                                r"channels"):
        nn.ConvTranspose1d(4, 2, 3)(ember.zeros(1, 3, 5))
    with pytest.raises(errors.ShapeError, match="Conv1d.*smaller than the .*kernel"):
        nn.Conv1d(1, 1, 5)(ember.zeros(1, 1, 3))
    with pytest.raises(errors.DTypeError, match=r"Conv2d\(3, 16.*float64"):
        nn.Conv2d(3, 16, 3)(ember.zeros(1, 3, 5, 5, dtype=ember.float64))
    lazy = nn.Conv2d(out_channels=4, kernel_size=3, groups=2)
    with pytest.raises(errors.ShapeError, match="not divisible by groups=2"):
        lazy(ember.zeros(1, 3, 5, 5))


def test_bad_arguments():
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        nn.Conv2d(3, 4, 3, padding="same", stride=2)
    with pytest.raises(ValueError, match="in_channels \\(3\\) must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels \\(5\\) must be divisible by groups"):
        nn.Conv2d(4, 5, 3, groups=2)
    with pytest.raises(ValueError, match='Only "zeros" padding mode'):
        nn.ConvTranspose2d(4, 5, 3, padding_mode="reflect")
    with pytest.raises(TypeError, match="out_channels and kernel_size are required"):
        nn.Conv2d(3)
    with pytest.raises(ValueError, match="Received: kernel_size=\\(3, 3, 3\\)"):
        nn.Conv2d(3, 4, (3, 3, 3))


def test_lazy_conv_transpose():
    up = nn.ConvTranspose2d(out_channels=4, kernel_size=3, stride=2, groups=2)
    y = up(ember.randn(1, 6, 5, 5))
    assert up.in_channels == 6 and up.weight.shape == (6, 2, 3, 3) and y.shape == (1, 4, 11, 11)
    compare_layer(up, torch.nn.ConvTranspose2d(6, 4, 3, stride=2, groups=2), [(1, 6, 5, 5)])
