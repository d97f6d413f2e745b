"""Creation functions and their dtype inference, against PyTorch."""

import numpy
import pytest
import torch

import ember
from ember import errors


def _same(e, t):
    assert e.dtype.name == str(t.dtype).replace("torch.", ""), (e.dtype, t.dtype)
    assert tuple(e.shape) == tuple(t.shape)
    numpy.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.tensor(3),
        lambda lib: lib.tensor(3.5),
        lambda lib: lib.tensor(True),
        lambda lib: lib.tensor([1, 2.5]),
        lambda lib: lib.tensor([[1, 2], [3, 4]], dtype=lib.float64),
        lambda lib: lib.tensor([]),
        lambda lib: lib.zeros(2, 3),
        lambda lib: lib.zeros((2, 3), dtype=lib.int32),
        lambda lib: lib.ones([4]),
        lambda lib: lib.full((2, 2), 7),
        lambda lib: lib.full((2, 2), 7.5),
        lambda lib: lib.full((2,), True),
        lambda lib: lib.arange(5),
        lambda lib: lib.arange(1, 4, 0.5),
        lambda lib: lib.arange(0.0, 1.0, 0.25),
        lambda lib: lib.linspace(0, 1, 5),
        lambda lib: lib.eye(3),
        lambda lib: lib.eye(2, 4, dtype=lib.int64),
        lambda lib: lib.zeros_like(lib.ones(2, 3, dtype=lib.float64)),
        lambda lib: lib.ones_like(lib.ones(2, dtype=lib.int16)),
        lambda lib: lib.full_like(lib.ones(2), 3.0),
    ],
)
def test_creation_matches_torch(make):
    _same(make(ember), make(torch))


def test_tensor_from_numpy_keeps_dtype_and_copies():
    a = numpy.arange(6, dtype=numpy.float64).reshape(2, 3)
    t = ember.tensor(a)
    assert t.dtype == ember.float64
    a[0, 0] = 100
    assert t[0, 0].item() == 0


def test_from_numpy_shares_memory():
    a = numpy.zeros(3, dtype=numpy.float32)
    t = ember.from_numpy(a)
    a[1] = 5
    assert t.tolist() == [0.0, 5.0, 0.0]
    with pytest.raises(errors.DTypeError, match="complex128"):
        ember.from_numpy(numpy.zeros(2, dtype=numpy.complex128))


def test_empty_has_shape_and_dtype():
    t = ember.empty(2, 3, dtype=ember.int8)
    assert t.shape == (2, 3) and t.dtype == ember.int8


def test_bad_sizes_and_values_are_clear():
    with pytest.raises(errors.ShapeError, match="negative dimension"):
        ember.zeros(-1, 2)
    with pytest.raises(errors.ShapeError, match="integers"):
        ember.zeros(2.5)
    with pytest.raises(errors.DTypeError, match="str"):
        ember.tensor(["a"])


def test_tensor_of_tensors():
    t = ember.tensor([ember.tensor(1.0), ember.tensor(2.0)])
    assert t.tolist() == [1.0, 2.0]


def test_default_dtype():
    ember.set_default_dtype(ember.float64)
    try:
        assert ember.tensor([1.5]).dtype == ember.float64
        assert ember.zeros(1).dtype == ember.float64
        assert ember.get_default_dtype() == ember.float64
    finally:
        ember.set_default_dtype(ember.float32)
    with pytest.raises(errors.DTypeError, match="floating"):
        ember.set_default_dtype(ember.int32)
