"""Turning a list of samples into a batch (``default_collate``)."""

import collections.abc
import numbers

import numpy

from ember import errors
from ember.tensor import Tensor


def _stack(items):
    arrays = [x.numpy(force=True) if isinstance(x, Tensor) else x for x in items]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise errors.ShapeError(
            f"default_collate: samples in a batch have different shapes {sorted(shapes)}; pad "
            "them to one shape or pass a collate_fn to the DataLoader"
        )
    return Tensor._make(numpy.stack(arrays), False, None, 0)


def default_collate(batch):
    """Stack samples into a batch: tensors and arrays -> one Tensor with a new first dimension,
    ints -> int64, floats -> float64, bools -> bool Tensors; tuples, lists, dicts and
    namedtuples are collated field by field; strings and None are kept in a list."""
    first = batch[0]
    if isinstance(first, (Tensor, numpy.ndarray)):
        return _stack(batch)
    if isinstance(first, (bool, numpy.bool_)):
        return Tensor._make(numpy.array(batch, dtype=numpy.bool_), False, None, 0)
    if isinstance(first, numbers.Integral):
        return Tensor._make(numpy.array(batch, dtype=numpy.int64), False, None, 0)
    if isinstance(first, numbers.Real):
        return Tensor._make(numpy.array(batch, dtype=numpy.float64), False, None, 0)
    if isinstance(first, (str, bytes)) or first is None:
        return list(batch)
    if isinstance(first, collections.abc.Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in first}
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(first, collections.abc.Sequence):
        sizes = {len(s) for s in batch}
        if len(sizes) != 1:
            raise errors.ShapeError(
                f"default_collate: samples are sequences of different lengths {sorted(sizes)}"
            )
        columns = [default_collate(list(s)) for s in zip(*batch)]
        return tuple(columns) if isinstance(first, tuple) else columns
    raise TypeError(
        f"default_collate: don't know how to batch samples of type {type(first).__name__}; "
        "pass a collate_fn to the DataLoader"
    )
