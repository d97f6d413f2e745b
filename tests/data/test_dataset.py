"""Datasets, samplers and the worker wire format."""

import numpy
import pytest

import ember
from ember.data import (
    BatchSampler, ConcatDataset, RandomSampler, SequentialSampler, Subset, SubsetRandomSampler,
    TensorDataset, WeightedRandomSampler, random_split,
)
from ember.data import _wire


def test_tensor_dataset_and_length_mismatch():
    ds = TensorDataset(ember.arange(5), ember.arange(5) * 2)
    assert len(ds) == 5 and [t.item() for t in ds[3]] == [3, 6]
    with pytest.raises(ember.errors.ShapeError, match="tensor 0 has 5 rows, tensor 1 has 4"):
        TensorDataset(ember.arange(5), ember.arange(4))


def test_subset_concat_and_random_split():
    ds = TensorDataset(ember.arange(10))
    sub = Subset(ds, [9, 0, 4])
    assert [s[0].item() for s in (sub[0], sub[1], sub[2])] == [9, 0, 4]
    cat = ConcatDataset([Subset(ds, [1, 2]), Subset(ds, [7])])
    assert len(cat) == 3 and cat[2][0].item() == 7 and cat[-1][0].item() == 7
    with pytest.raises(IndexError):
        cat[3]
    ember.manual_seed(0)
    a, b = random_split(ds, [7, 3])
    assert len(a) == 7 and len(b) == 3 and sorted(a.indices + b.indices) == list(range(10))
    c, d, e = random_split(ds, [0.5, 0.3, 0.2])
    assert (len(c), len(d), len(e)) == (5, 3, 2)
    with pytest.raises(ValueError, match="sum to 9"):
        random_split(ds, [5, 4])


def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    ember.manual_seed(0)
    perm = list(RandomSampler(range(6)))
    assert sorted(perm) == list(range(6))
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=50))
    assert len(drawn) == 50 and set(drawn) <= {0, 1, 2}
    assert sorted(SubsetRandomSampler([5, 7, 9])) == [5, 7, 9]
    w = list(WeightedRandomSampler([0.0, 1.0, 0.0], 10))
    assert w == [1] * 10
    assert list(BatchSampler(range(5), 2, False)) == [[0, 1], [2, 3], [4]]
    assert len(BatchSampler(range(5), 2, True)) == 2


def test_wire_round_trip_and_refusals():
    obj = {"a": (numpy.arange(6).reshape(2, 3), ember.ones(2)), "b": [1, 2.5, "s", None, True]}
    back = _wire.decode(_wire.encode(obj))
    numpy.testing.assert_array_equal(back["a"][0], obj["a"][0])
    assert isinstance(back["a"][1], ember.Tensor) and back["a"][1].tolist() == [1.0, 1.0]
    assert back["b"] == [1, 2.5, "s", None, True]
    with pytest.raises(TypeError, match="cannot send a object"):
        _wire.encode(object())
    with pytest.raises(TypeError, match="dtype object"):
        _wire.encode(numpy.array([object()]))
