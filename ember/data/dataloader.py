"""DataLoader: batches from a dataset, in order, optionally fetched by worker processes.

With ``num_workers > 0`` each worker is a forked process that receives lists of indices and
sends collated batches back; batches are yielded in sampler order whatever order workers
finish in, so a run gives the same batches as ``num_workers=0``. A sample that raises is
reported with its index; a worker that dies raises instead of hanging the loop.
"""

import builtins

from ember import errors, random
from ember.data import _wire, _worker
from ember.data.collate import default_collate
from ember.data.dataset import IterableDataset
from ember.data.sampler import BatchSampler, RandomSampler, SequentialSampler


class DataLoaderWorkerError(errors.EmberError, RuntimeError):
    """A sample or a collate call failed inside a DataLoader worker."""


class DataLoader:
    """Iterate over ``dataset`` in batches.

    Args:
        dataset: a map-style Dataset (``__getitem__``/``__len__``) or an IterableDataset.
        batch_size: samples per batch (None: yield single samples uncollated).
        shuffle: reshuffle every epoch, drawing from ``generator`` (or ember's default
            generator, so ``ember.manual_seed`` fixes the order).
        sampler / batch_sampler: choose indices yourself (exclusive with shuffle).
        num_workers: worker processes (0: load in the main process).
        collate_fn: turns a list of samples into a batch (default: stack into Tensors).
        drop_last: drop the last incomplete batch.
        timeout: seconds to wait for a worker's batch before raising (0: forever).
        worker_init_fn: called with the worker id in each worker after seeding.
        prefetch_factor: batches requested ahead per worker.
        persistent_workers: keep the workers alive between epochs.

    Example:
        >>> loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
        >>> for xb, yb in loader: ...
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, generator=None, prefetch_factor=None,
                 persistent_workers=False):
        if not isinstance(num_workers, builtins.int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be an int >= 0, got {num_workers!r}")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout must be >= 0, got {timeout}")
        self.dataset = dataset
        self.num_workers = num_workers
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self.prefetch_factor = 2 if prefetch_factor is None else prefetch_factor
        self.persistent_workers = persistent_workers and num_workers > 0
        self.pin_memory = pin_memory
        self._iterable = isinstance(dataset, IterableDataset)
        self._pool = None
        if self._iterable:
            if shuffle or sampler is not None or batch_sampler is not None:
                raise ValueError(
                    "DataLoader: an IterableDataset decides its own order; shuffle, sampler "
                    "and batch_sampler cannot be used with it"
                )
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "DataLoader: batch_sampler is exclusive with batch_size, shuffle, sampler "
                    "and drop_last"
                )
            batch_size, drop_last = None, False
        elif sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler is exclusive with shuffle")
        self.batch_size = batch_size
        self.drop_last = drop_last
        if not self._iterable:
            if sampler is None:
                sampler = (RandomSampler(dataset, generator=generator) if shuffle
                           else SequentialSampler(dataset))
            if batch_sampler is None and batch_size is not None:
                batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        if collate_fn is None:
            collate_fn = default_collate if (batch_size is not None or batch_sampler) else _identity
        self.collate_fn = collate_fn

    def __len__(self):
        if self._iterable:
            raise TypeError("DataLoader over an IterableDataset has no length")
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    def _index_batches(self):
        if self.batch_sampler is not None:
            return iter(self.batch_sampler)
        return ([i] for i in self.sampler)

    def __iter__(self):
        # A base seed is drawn in both modes (as PyTorch does), so the shuffle that follows
        # sees the same generator state with and without workers.
        base_seed = int(random._gen(self.generator).integers(0, 2**62))
        if self.num_workers == 0:
            return self._single_process()
        return self._multi_process(base_seed)

    # ---- num_workers == 0 ---------------------------------------------------------------

    def _single_process(self):
        if self._iterable:
            yield from self._iterate_stream()
            return
        unbatched = self.batch_sampler is None
        for indices in self._index_batches():
            samples = [self.dataset[i] for i in indices]
            yield self.collate_fn(samples[0]) if unbatched else self.collate_fn(samples)

    def _iterate_stream(self):
        if self.batch_size is None:
            for item in self.dataset:
                yield self.collate_fn(item)
            return
        batch = []
        for item in self.dataset:
            batch.append(item)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)

    # ---- num_workers > 0 ----------------------------------------------------------------

    def _multi_process(self, base_seed):
        pool = self._pool if self.persistent_workers and self._pool is not None else None
        if pool is None:
            pool = _worker.WorkerPool(self, base_seed)
            if self.persistent_workers:
                self._pool = pool
        timeout = self.timeout or None
        try:
            if self._iterable:
                yield from self._stream_from_workers(pool, timeout)
            else:
                yield from self._map_from_workers(pool, timeout)
        finally:
            if not self.persistent_workers:
                pool.shutdown()

    def _map_from_workers(self, pool, timeout):
        batches = self._index_batches()
        unbatched = self.batch_sampler is None
        pending = {}
        results = {}
        next_send = 0
        next_yield = 0
        exhausted = False

        def submit(worker):
            nonlocal next_send, exhausted
            indices = next(batches, None)
            if indices is None:
                exhausted = True
                return
            pool.send(worker, {"batch": next_send, "indices": [int(i) for i in indices]})
            pending[next_send] = worker
            next_send += 1

        for _ in range(self.prefetch_factor):
            for worker in range(self.num_workers):
                if not exhausted:
                    submit(worker)
        while pending or results:
            while next_yield not in results:
                worker, header, payload = pool.receive(timeout)
                self._raise_if_failed(header, worker, pool)
                results[header["batch"]] = payload
                pending.pop(header["batch"], None)
                if not exhausted:
                    submit(worker)
            batch = _wire.decode(results.pop(next_yield))
            next_yield += 1
            yield batch[0] if unbatched and isinstance(batch, list) and self.collate_fn is _identity else batch

    def _stream_from_workers(self, pool, timeout):
        active = list(range(self.num_workers))
        for worker in active:
            pool.send(worker, {"next": True})
        while active:
            for worker in list(active):
                header, payload = self._receive_from(pool, worker, timeout)
                self._raise_if_failed(header, worker, pool)
                if header.get("end"):
                    active.remove(worker)
                    continue
                pool.send(worker, {"next": True})
                yield _wire.decode(payload)

    def _receive_from(self, pool, worker, timeout):
        """Messages arrive in order per worker; buffer those from other workers."""
        buffered = self.__dict__.setdefault("_stream_buffer", {})
        while worker not in buffered:
            w, header, payload = pool.receive(timeout)
            buffered[w] = (header, payload)
        return buffered.pop(worker)

    def _raise_if_failed(self, header, worker, pool):
        if "error" not in header:
            return
        pool.shutdown()
        self._pool = None
        where = f"sample index {header['index']}" if header.get("index") is not None else "collate"
        raise DataLoaderWorkerError(
            f"DataLoader worker {worker} failed on {where} (batch {header['batch']}): "
            f"{header['error']}\n\nOriginal traceback in the worker:\n{header['traceback']}"
        )

    def __del__(self):
        pool = self.__dict__.get("_pool")
        if pool is not None:
            pool.shutdown()


def _identity(x):
    return x
