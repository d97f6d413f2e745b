"""Tensor attributes, conversions and printing."""

import numpy
import pytest
import torch

import ember
from ember import errors


def test_attributes():
    t = ember.zeros(2, 3)
    assert t.shape == (2, 3) and t.size() == (2, 3) and t.size(1) == 3 and t.size(-1) == 3
    assert t.ndim == 2 and t.dim() == 2 and t.numel() == 6 and len(t) == 2
    assert t.dtype == ember.float32 and t.device == "cpu" and str(t.device) == "cpu"
    assert repr(t.shape) == "ember.Size([2, 3])"
    with pytest.raises(IndexError, match="dimension 2 out of range"):
        t.size(2)


def test_item_tolist_numpy_array_protocol():
    t = ember.tensor([[1.5, 2.0], [3.0, 4.0]])
    assert t[0, 0].item() == 1.5 and isinstance(t[0, 0].item(), float)
    assert t.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert numpy.asarray(t).dtype == numpy.float32
    assert numpy.shares_memory(t.numpy(), t.numpy())
    with pytest.raises(errors.ShapeError, match="only one-element tensors"):
        t.item()
    r = ember.tensor([1.0], requires_grad=True)
    with pytest.raises(errors.AutogradError, match="detach"):
        r.numpy()
    assert float(ember.tensor(2.5)) == 2.5 and int(ember.tensor(7)) == 7


def test_to_dtype_and_shortcuts():
    t = ember.tensor([1.7, -2.2])
    assert t.to(ember.float64).dtype == ember.float64
    assert t.double().dtype == ember.float64 and t.half().dtype == ember.float16
    assert t.long().tolist() == [1, -2] and t.int().dtype == ember.int32
    assert t.bool().dtype == ember.bool and t.to("cpu") is t
    assert t.to(ember.zeros(1, dtype=ember.float64)).dtype == ember.float64
    assert t.to("float64").dtype == ember.float64


def test_cast_is_differentiable():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x.double() * 3.0
    y.sum().backward()
    assert x.grad.dtype == ember.float32
    numpy.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_unknown_device_is_a_clear_error():
    with pytest.raises(errors.DeviceError, match="unknown device 'tpu'"):
        ember.zeros(2).to("tpu")


def test_cuda_without_cupy_says_how_to_get_it():
    try:
        import cupy  # noqa: F401

        pytest.skip("CuPy is installed: this test is about machines without it")
    except ImportError:
        pass
    with pytest.raises(errors.DeviceError, match="CuPy"):
        ember.zeros(2).to("cuda")


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.tensor([[1.0, 2.5], [3.0, 4.0]]),
        lambda lib: lib.tensor([1, 2, 3]),
        lambda lib: lib.tensor([True, False]),
        lambda lib: lib.tensor([1.0, 2.0], dtype=lib.float64),
        lambda lib: lib.tensor(3.0),
        lambda lib: lib.tensor([1.0, 2.0], requires_grad=True),
    ],
)
def test_repr_matches_torch(make):
    assert repr(make(ember)) == repr(make(torch)).replace("torch.", "ember.")


def test_repr_shows_grad_fn():
    y = ember.tensor([1.0], requires_grad=True) * 2.0
    assert "grad_fn=<MulBackward>" in repr(y)


def test_bool_of_multi_element_tensor_is_an_error():
    assert bool(ember.tensor([1.0]))
    with pytest.raises(errors.ShapeError, match="ambiguous"):
        bool(ember.ones(2))


def test_tensors_refuse_pickle():
    import pickle

    with pytest.raises(TypeError, match="ember.save"):
        pickle.dumps(ember.ones(2))


def test_requires_grad_setter_and_requires_grad_():
    t = ember.ones(2)
    t.requires_grad = True
    assert t.requires_grad
    y = t * 2.0
    with pytest.raises(errors.AutogradError, match="detach"):
        y.requires_grad_(False)
