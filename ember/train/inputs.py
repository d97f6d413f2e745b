"""What ``fit``, ``evaluate`` and ``predict`` accept as data, turned into batches.

Data comes as arrays (NumPy arrays or ember Tensors; for several inputs a tuple/list or dict of
them) or as a ``Dataset``/``DataLoader``. Both become a *source* with ``steps`` (batches per
pass, or None if unknown) and ``epoch()``, which yields ``(x, y, sample_weight)`` per batch as
Tensors on the model's device (y and sample_weight may be None).

Arrays are indexed directly (no Dataset/collate per sample), and floating inputs are cast once
to the model's float dtype, so a float64 NumPy array trains a float32 model.
"""

import numpy

from ember import data as _data
from ember import random
from ember.tensor import Tensor


def is_loader(obj):
    return isinstance(obj, (_data.DataLoader, _data.Dataset, _data.IterableDataset))


# ---- structures of arrays ------------------------------------------------------------------


def leaves(structure, name):
    """(label, array) for every array in a tensor/array or a tuple/list/dict of them."""
    if isinstance(structure, dict):
        out = []
        for key, value in structure.items():
            out += leaves(value, f"{name}[{key!r}]")
        return out
    if isinstance(structure, (tuple, list)):
        out = []
        for i, value in enumerate(structure):
            out += leaves(value, f"{name}[{i}]")
        return out
    return [(name, structure)]


def map_structure(fn, structure):
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    if isinstance(structure, (tuple, list)):
        return tuple(map_structure(fn, v) for v in structure)
    return fn(structure)


def to_array(value, who, name):
    """The array behind a Tensor, or a NumPy array from anything array-like."""
    if isinstance(value, Tensor):
        return value._data
    if isinstance(value, numpy.ndarray) or hasattr(value, "__cuda_array_interface__"):
        return value
    try:
        return numpy.asarray(value)
    except Exception:  # noqa: BLE001 - say which argument was wrong
        raise TypeError(
            f"{who}: {name} must be a NumPy array, an ember Tensor, or a tuple/dict of them; got "
            f"{type(value).__name__}"
        ) from None


def as_arrays(structure, who, name):
    return map_structure(lambda v: to_array(v, who, name), structure)


def count(structures, who):
    """The common number of samples of named array structures; an error names the mismatch,
    e.g. 'fit: x has 1000 samples but y has 999'."""
    sizes = []
    for name, structure in structures:
        if structure is None:
            continue
        for label, arr in leaves(structure, name):
            if getattr(arr, "ndim", 0) == 0:
                raise ValueError(f"{who}: {label} is a scalar; it needs one row per sample")
            sizes.append((label, len(arr)))
    if not sizes:
        raise ValueError(f"{who}: no input data was given (x is None)")
    first_label, n = sizes[0]
    for label, size in sizes[1:]:
        if size != n:
            raise ValueError(f"{who}: {first_label} has {n} samples but {label} has {size}")
    return n


def wrap(arr, device):
    t = Tensor._make(arr, False, None, 0)
    if device is not None and t.device != device:
        t = t.to(device=device)
    return t


# ---- sources -------------------------------------------------------------------------------


class ArraySource:
    """Batches from in-memory arrays: ``x`` (a structure), ``y`` and ``w`` (arrays or None)."""

    def __init__(self, x, y, w, batch_size, shuffle, device, who="fit"):
        self.x, self.y, self.w = x, y, w
        self.n = count([("x", x), ("y", y), ("sample_weight", w)], who)
        self.who = who
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = device
        self.steps = -(-self.n // batch_size)

    def split(self, fraction):
        """(first part, last ``fraction`` of the samples), Keras's validation_split: the
        last samples before any shuffling."""
        n_val = int(self.n * fraction)
        if n_val == 0 or n_val == self.n:
            raise ValueError(
                f"{self.who}: validation_split={fraction} of {self.n} samples leaves "
                f"{'no validation' if n_val == 0 else 'no training'} samples"
            )
        cut = self.n - n_val
        head = slice(0, cut)
        tail = slice(cut, self.n)

        def take(structure, sl):
            return None if structure is None else map_structure(lambda a: a[sl], structure)

        return (ArraySource(take(self.x, head), take(self.y, head), take(self.w, head),
                            self.batch_size, self.shuffle, self.device, self.who),
                ArraySource(take(self.x, tail), take(self.y, tail), take(self.w, tail),
                            self.batch_size, False, self.device, self.who))

    def first(self):
        """The first batch, without shuffling (for the checks before training)."""
        return self._batch(slice(0, min(self.batch_size, self.n)))

    def epoch(self):
        if self.shuffle:
            order = random.randperm(self.n).numpy()
            for start in range(0, self.n, self.batch_size):
                yield self._batch(order[start:start + self.batch_size])
        else:
            for start in range(0, self.n, self.batch_size):
                yield self._batch(slice(start, start + self.batch_size))

    def _batch(self, index):
        device = self.device
        x = map_structure(lambda a: wrap(a[index], device), self.x)
        y = None if self.y is None else wrap(self.y[index], device)
        w = None if self.w is None else wrap(self.w[index], device)
        return x, y, w


class LoaderSource:
    """Batches from a DataLoader (a Dataset is wrapped in one). Each batch is ``x``,
    ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``; ``prepare(x, y, w)`` converts the arrays
    of each batch (dtypes, class weights) as the trainer does once for whole arrays."""

    def __init__(self, data, batch_size, shuffle, device, prepare, who="fit"):
        if isinstance(data, _data.DataLoader):
            self.loader = data
        else:
            shuffle = shuffle and not isinstance(data, _data.IterableDataset)
            self.loader = _data.DataLoader(data, batch_size=batch_size, shuffle=shuffle)
        try:
            self.steps = len(self.loader)
        except TypeError:
            self.steps = None
        self.device = device
        self.prepare = prepare
        self.who = who

    def first(self):
        for batch in self.loader:
            return self._split(batch)
        raise ValueError(f"{self.who}: the dataset is empty")

    def epoch(self):
        for batch in self.loader:
            yield self._split(batch)

    def _split(self, batch):
        if isinstance(batch, (tuple, list)) and len(batch) in (1, 2, 3):
            parts = list(batch) + [None] * (3 - len(batch))
        else:
            parts = [batch, None, None]
        who = self.who
        x, y, w = (None if p is None else as_arrays(p, who, "a batch") for p in parts)
        x, y, w = self.prepare(x, y, w)
        device = self.device
        x = map_structure(lambda a: wrap(a, device), x)
        return (x, None if y is None else wrap(y, device), None if w is None else wrap(w, device))


def forever(source):
    """Batches across epochs without end (for steps_per_epoch): a new pass starts, reshuffled,
    when one runs out."""
    while True:
        empty = True
        for batch in source.epoch():
            empty = False
            yield batch
        if empty:
            raise ValueError(f"{source.who}: the data gave no batches")
