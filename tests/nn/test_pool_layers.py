"""Pooling layers against torch.nn: outputs, input gradients, indices, printouts, errors."""

import numpy
import pytest
import torch

import ember
from ember import errors, nn
from tests.nn.layer_check import compare_layer


@pytest.mark.parametrize("cls, args, kwargs, shape", [
    ("MaxPool1d", (3,), {}, (2, 3, 10)),
    ("MaxPool1d", (3, 2, 1), {"dilation": 2, "ceil_mode": True}, (2, 3, 11)),
    ("MaxPool2d", (2,), {}, (2, 3, 8, 6)),
    ("MaxPool2d", ((3, 2), (2, 1), (1, 0)), {"ceil_mode": True}, (2, 3, 9, 7)),
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "dilation": (1, 2)}, (3, 9, 9)),
    ("AvgPool1d", (3,), {}, (2, 3, 10)),
    ("AvgPool1d", (4, 3, 2), {"ceil_mode": True, "count_include_pad": False}, (2, 3, 11)),
    ("AvgPool2d", (2,), {}, (2, 3, 8, 6)),
    ("AvgPool2d", (3, 2, 1), {"ceil_mode": True, "count_include_pad": False}, (2, 3, 8, 7)),
    ("AvgPool2d", ((3, 2),), {"padding": (1, 1), "divisor_override": 5}, (2, 3, 7, 6)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 10)),
    ("AdaptiveAvgPool2d", ((3, None),), {}, (2, 3, 7, 5)),
    ("AdaptiveAvgPool2d", (1,), {}, (2, 3, 7, 5)),
    ("AdaptiveMaxPool1d", (4,), {}, (2, 3, 10)),
    ("AdaptiveMaxPool2d", ((3, 4),), {}, (2, 3, 7, 9)),
    ("AdaptiveMaxPool2d", (2,), {}, (3, 6, 6)),
], ids=str)
def test_pool_matches_torch(cls, args, kwargs, shape):
    e = getattr(nn, cls)(*args, **kwargs)
    t = getattr(torch.nn, cls)(*args, **kwargs)
    compare_layer(e, t, [shape])
    assert repr(e) == repr(t)


@pytest.mark.parametrize("cls, args, shape", [
    ("MaxPool1d", (2,), (2, 3, 9)),
    ("MaxPool2d", (3, 2, 1), (2, 3, 8, 7)),
    ("AdaptiveMaxPool2d", ((3, 2),), (2, 3, 7, 5)),
    ("AdaptiveMaxPool1d", (3,), (2, 3, 8)),
])
def test_return_indices_matches_torch(cls, args, shape):
    e = getattr(nn, cls)(*args, return_indices=True)
    t = getattr(torch.nn, cls)(*args, return_indices=True)
    compare_layer(e, t, [shape])
    x = numpy.random.default_rng(0).standard_normal(shape).astype(numpy.float32)
    e_out, e_idx = e(ember.tensor(x))
    t_out, t_idx = t(torch.tensor(x))
    numpy.testing.assert_array_equal(e_idx.numpy(), t_idx.numpy())
    assert e_idx.dtype == ember.int64


def test_pool_in_a_model_and_eval_mode():
    model = nn.Sequential(nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1))
    tmodel = torch.nn.Sequential(torch.nn.MaxPool2d(2), torch.nn.AvgPool2d(2),
                                 torch.nn.AdaptiveAvgPool2d(1))
    compare_layer(model, tmodel, [(2, 3, 12, 12)], dtype=numpy.float64, rtol=1e-12, atol=1e-12)
    assert repr(model) == repr(tmodel)


def test_pool_errors_name_the_layer():
    model = nn.Sequential(nn.MaxPool2d(2))
    with pytest.raises(errors.ShapeError, match=r"MaxPool2d\(kernel_size=2.*\) '0' expected a "
                                                r"4-D input \(N, C, H, W\) or 3-D \(C, H, W\), "
                                                r"got input of shape \(5, 5\)"):
        model(ember.zeros(5, 5))
    with pytest.raises(errors.ShapeError, match=r"AvgPool1d\(.*expected a 3-D input"):
        nn.AvgPool1d(2)(ember.zeros(1, 2, 3, 4))
    with pytest.raises(errors.ShapeError, match=r"AdaptiveAvgPool2d\(output_size=2\)"):
        nn.AdaptiveAvgPool2d(2)(ember.zeros(4))
    with pytest.raises(errors.ShapeError, match=r"MaxPool1d\(kernel_size=5.*with input of shape"):
        nn.MaxPool1d(5)(ember.zeros(1, 1, 3))
