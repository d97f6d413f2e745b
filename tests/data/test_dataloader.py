"""DataLoader: batching, shuffling determinism, workers (same batches as num_workers=0),
worker errors reported with the sample index, dead workers that do not hang the loop."""

import collections
import os
import signal

import numpy
import pytest

import ember
from ember.data import (
    DataLoader, DataLoaderWorkerError, Dataset, IterableDataset, TensorDataset, get_worker_info,
)


def _dataset(n=23):
    x = ember.tensor(numpy.arange(n * 3, dtype=numpy.float32).reshape(n, 3))
    y = ember.tensor(numpy.arange(n))
    return TensorDataset(x, y)


def _epoch(loader):
    return [(xb.numpy().copy(), yb.tolist()) for xb, yb in loader]


def test_batches_in_order_with_last_partial_batch():
    batches = _epoch(DataLoader(_dataset(), batch_size=5))
    assert [len(y) for _, y in batches] == [5, 5, 5, 5, 3]
    assert sum((y for _, y in batches), []) == list(range(23))
    assert batches[0][0].shape == (5, 3) and batches[0][0].dtype == numpy.float32
    assert len(DataLoader(_dataset(), batch_size=5)) == 5
    assert len(DataLoader(_dataset(), batch_size=5, drop_last=True)) == 4
    assert [len(y) for _, y in _epoch(DataLoader(_dataset(), batch_size=5, drop_last=True))] == [5] * 4


def test_shuffle_is_seeded_and_changes_every_epoch():
    ember.manual_seed(3)
    loader = DataLoader(_dataset(), batch_size=4, shuffle=True)
    first, second = _epoch(loader), _epoch(loader)
    ember.manual_seed(3)
    again = _epoch(DataLoader(_dataset(), batch_size=4, shuffle=True))
    assert [y for _, y in first] == [y for _, y in again]
    assert [y for _, y in first] != [y for _, y in second]
    assert sorted(sum((y for _, y in first), [])) == list(range(23))


def test_generator_argument_controls_order():
    g1, g2 = ember.Generator(5), ember.Generator(5)
    a = _epoch(DataLoader(_dataset(), batch_size=4, shuffle=True, generator=g1))
    b = _epoch(DataLoader(_dataset(), batch_size=4, shuffle=True, generator=g2))
    assert [y for _, y in a] == [y for _, y in b]


@pytest.mark.parametrize("shuffle", [False, True])
def test_workers_give_the_same_batches_in_the_same_order(shuffle):
    results = []
    for workers in (0, 2, 3):
        ember.manual_seed(11)
        loader = DataLoader(_dataset(), batch_size=4, shuffle=shuffle, num_workers=workers,
                            prefetch_factor=2 if workers else None)
        results.append(_epoch(loader) + _epoch(loader))
    for other in results[1:]:
        assert [y for _, y in other] == [y for _, y in results[0]]
        for (xa, _), (xb, _) in zip(other, results[0]):
            numpy.testing.assert_array_equal(xa, xb)


class _Flaky(Dataset):
    def __len__(self):
        return 20

    def __getitem__(self, i):
        if i == 13:
            raise ValueError("sample 13 is corrupt")
        return numpy.full(2, i, dtype=numpy.float32)


def test_worker_error_names_the_sample_index():
    loader = DataLoader(_Flaky(), batch_size=4, num_workers=2)
    with pytest.raises(DataLoaderWorkerError, match=r"sample index 13.*ValueError: sample 13 is corrupt"):
        list(loader)


def test_same_error_without_workers_is_the_original_exception():
    with pytest.raises(ValueError, match="corrupt"):
        list(DataLoader(_Flaky(), batch_size=4))


class _Killer(Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        if i == 9 and get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return numpy.zeros(1, dtype=numpy.float32)


def test_dead_worker_raises_instead_of_hanging():
    loader = DataLoader(_Killer(), batch_size=2, num_workers=2, timeout=60)
    with pytest.raises(RuntimeError, match=r"exited unexpectedly.*signal 9"):
        list(loader)


def test_task_sent_to_a_dead_worker_raises_the_same_error():
    """A worker that died before its next task arrives (a closed pipe on send, not on
    receive) gets the same clear error, not a BrokenPipeError."""
    from ember.data import _worker

    pool = _worker.WorkerPool(DataLoader(_Killer(), batch_size=2, num_workers=1), 0)
    try:
        os.kill(pool.procs[0].pid, signal.SIGKILL)
        pool.procs[0].join(timeout=10)
        with pytest.raises(RuntimeError, match=r"exited unexpectedly.*signal 9"):
            for _ in range(64):  # the pipe's buffer takes a few before it reports the close
                pool.send(0, {"batch": 0, "indices": list(range(1000))})
    finally:
        pool.shutdown()


class _Slow(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        import time

        time.sleep(30)
        return 0


def test_timeout_raises():
    with pytest.raises(RuntimeError, match="timed out after 1"):
        list(DataLoader(_Slow(), batch_size=2, num_workers=1, timeout=1))


class _Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))


def test_iterable_dataset_with_and_without_workers():
    single = [b.tolist() for b in DataLoader(_Stream(10), batch_size=3)]
    assert single == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    multi = [b.tolist() for b in DataLoader(_Stream(10), batch_size=2, num_workers=2)]
    assert sorted(sum(multi, [])) == list(range(10))
    with pytest.raises(TypeError, match="no length"):
        len(DataLoader(_Stream(3)))
    with pytest.raises(ValueError, match="IterableDataset decides its own order"):
        DataLoader(_Stream(3), shuffle=True)


def test_persistent_workers_reuse_processes_across_epochs():
    loader = DataLoader(_dataset(), batch_size=8, num_workers=2, persistent_workers=True)
    a = _epoch(loader)
    pids = [p.pid for p in loader._pool.procs]
    b = _epoch(loader)
    assert [p.pid for p in loader._pool.procs] == pids
    assert [y for _, y in a] == [y for _, y in b]
    loader._pool.shutdown()


Pair = collections.namedtuple("Pair", "image label")


class _Structured(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return {"pair": Pair(numpy.ones((2, 2)) * i, i), "name": f"item{i}", "w": 0.5 * i,
                "flag": i % 2 == 0}


@pytest.mark.parametrize("workers", [0, 2])
def test_default_collate_structures(workers):
    batch = next(iter(DataLoader(_Structured(), batch_size=3, num_workers=workers)))
    assert isinstance(batch["pair"], Pair)
    assert batch["pair"].image.shape == (3, 2, 2) and batch["pair"].image.dtype == ember.float64
    assert batch["pair"].label.dtype == ember.int64 and batch["pair"].label.tolist() == [0, 1, 2]
    assert batch["name"] == ["item0", "item1", "item2"]
    assert batch["w"].dtype == ember.float64 and batch["flag"].dtype == ember.bool


def test_batch_size_none_yields_samples_and_custom_collate():
    items = list(DataLoader(_dataset(4), batch_size=None))
    assert len(items) == 4 and items[0][0].shape == (3,)
    sums = list(DataLoader(_dataset(4), batch_size=2, collate_fn=lambda b: len(b)))
    assert sums == [2, 2]


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(_dataset(), num_workers=-1)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DataLoader(_dataset(), batch_size=0)
    with pytest.raises(ValueError, match="sampler is exclusive with shuffle"):
        DataLoader(_dataset(), sampler=[0, 1], shuffle=True)
    with pytest.raises(ember.errors.ShapeError, match="different shapes"):
        ember.data.default_collate([numpy.zeros(2), numpy.zeros(3)])
