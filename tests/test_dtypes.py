"""PyTorch's type promotion, checked against torch itself for every pair of dtypes."""

import itertools

import pytest
import torch

import ember
from ember import dtypes

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def _t(name, lib, ndim):
    shape = (2,) if ndim else ()
    return lib.zeros(shape, dtype=getattr(lib, name if name != "bool" else "bool"))


@pytest.mark.parametrize("a,b", list(itertools.product(NAMES, NAMES)))
def test_tensor_tensor_promotion(a, b):
    for nda, ndb in [(1, 1), (1, 0), (0, 1), (0, 0)]:
        expected = torch.result_type(_t(a, torch, nda), _t(b, torch, ndb))
        got = dtypes.result_type(_t(a, ember, nda), _t(b, ember, ndb))
        assert got.name == str(expected).replace("torch.", ""), (a, b, nda, ndb)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scalar", [True, 2, 2.5])
def test_tensor_scalar_promotion(name, scalar):
    expected = torch.result_type(_t(name, torch, 1), scalar)
    got = dtypes.result_type(_t(name, ember, 1), scalar)
    assert got.name == str(expected).replace("torch.", "")


def test_python_scalar_never_upcasts_float32():
    x = ember.ones(3)
    assert (x * 2.5).dtype == ember.float32
    assert (2 + x).dtype == ember.float32
    assert (ember.ones(3, dtype=ember.float16) * 1e-3).dtype == ember.float16


def test_int_tensor_with_float_scalar_gives_default_float():
    assert (ember.arange(3) * 0.5).dtype == ember.float32
    assert (ember.arange(3) / 2).dtype == ember.float32


def test_mixed_ops_use_promoted_dtype():
    a = ember.ones(2, dtype=ember.int64)
    b = ember.ones(2, dtype=ember.float16)
    assert (a + b).dtype == ember.float16
    assert (ember.ones(2) + ember.ones(2, dtype=ember.float64)).dtype == ember.float64
