"""DataLoader worker processes: each owns one end of a pipe, fetches the samples it is asked
for, collates them, and sends the batch (or the error, with the failing sample's index) back
in the ``_wire`` format."""

import json
import multiprocessing
import multiprocessing.connection
import os
import traceback

import numpy

from ember.data import _wire


class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker process."""

    def __init__(self, id, num_workers, seed, dataset):
        self.id = id
        self.num_workers = num_workers
        self.seed = seed
        self.dataset = dataset

    def __repr__(self):
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed})"


_INFO = [None]


def get_worker_info():
    """Inside a DataLoader worker: its WorkerInfo (id, num_workers, seed, dataset); else None."""
    return _INFO[0]


class _SampleError(Exception):
    def __init__(self, index, exc):
        super().__init__(str(exc))
        self.index = index
        self.exc = exc


def _seed_worker(seed):
    from ember import random  # noqa: PLC0415

    random.manual_seed(seed)
    numpy.random.seed(seed % 2**32)


def _error_message(batch, exc):
    index = exc.index if isinstance(exc, _SampleError) else None
    inner = exc.exc if isinstance(exc, _SampleError) else exc
    text = "".join(traceback.format_exception(type(inner), inner, inner.__traceback__))
    return {"batch": batch, "error": f"{type(inner).__name__}: {inner}", "index": index,
            "traceback": text}


def _fetch_map(dataset, indices):
    samples = []
    for i in indices:
        try:
            samples.append(dataset[i])
        except Exception as exc:  # reported to the main process with the sample index
            raise _SampleError(i, exc) from exc
    return samples


def worker_loop(conn, dataset, collate_fn, worker_id, num_workers, seed, init_fn,
                iterable, batch_size, drop_last):
    """Serve batch requests until told to stop (map-style) or the stream ends (iterable)."""
    _INFO[0] = WorkerInfo(worker_id, num_workers, seed, dataset)
    _seed_worker(seed)
    try:
        if init_fn is not None:
            init_fn(worker_id)
        if iterable:
            _serve_iterable(conn, dataset, collate_fn, batch_size, drop_last)
        else:
            _serve_map(conn, dataset, collate_fn)
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        conn.close()
        os._exit(0)


def _send(conn, header, payload=None):
    conn.send_bytes(json.dumps(header).encode())
    if payload is not None:
        conn.send_bytes(payload)


def _serve_map(conn, dataset, collate_fn):
    while True:
        task = json.loads(conn.recv_bytes())
        if task.get("stop"):
            return
        batch = task["batch"]
        try:
            data = collate_fn(_fetch_map(dataset, task["indices"]))
            payload = _wire.encode(data)
        except Exception as exc:
            _send(conn, _error_message(batch, exc))
            continue
        _send(conn, {"batch": batch}, payload)


def _serve_iterable(conn, dataset, collate_fn, batch_size, drop_last):
    it = iter(dataset)
    batch_no = 0
    while True:
        task = json.loads(conn.recv_bytes())
        if task.get("stop"):
            return
        try:
            if batch_size is None:
                item = next(it, _END)
                samples = None if item is _END else item
                data = None if item is _END else item
            else:
                samples = []
                for _ in range(batch_size):
                    item = next(it, _END)
                    if item is _END:
                        break
                    samples.append(item)
                if not samples or (drop_last and len(samples) < batch_size):
                    samples = None
                data = None if samples is None else collate_fn(samples)
            if samples is None:
                _send(conn, {"batch": batch_no, "end": True})
                return
            payload = _wire.encode(data)
        except Exception as exc:
            _send(conn, _error_message(batch_no, exc))
            return
        _send(conn, {"batch": batch_no}, payload)
        batch_no += 1


_END = object()


class WorkerPool:
    """The worker processes of one DataLoader, with a duplex pipe each."""

    def __init__(self, loader, base_seed):
        ctx = multiprocessing.get_context("fork")
        self.loader = loader
        self.conns = []
        self.procs = []
        self.finished = set()  # workers whose stream has ended (their pipe closes next)
        iterable = loader._iterable
        for wid in range(loader.num_workers):
            parent, child = ctx.Pipe(duplex=True)
            proc = ctx.Process(
                target=worker_loop,
                args=(child, loader.dataset, loader.collate_fn, wid, loader.num_workers,
                      base_seed + wid, loader.worker_init_fn, iterable,
                      loader.batch_size, loader.drop_last),
                daemon=True,
            )
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)

    def send(self, worker, task):
        try:
            self.conns[worker].send_bytes(json.dumps(task).encode())
        except (BrokenPipeError, ConnectionResetError):
            # the worker died before its next task reached it: say so, as receive() does
            self._raise_dead(worker)

    def receive(self, timeout):
        """(worker, header, payload) from the first worker with a message; raises if a worker
        died or nothing arrived within ``timeout`` seconds (None waits forever)."""
        waited = 0.0
        step = 1.0 if timeout is None else min(1.0, timeout)
        while True:
            live = [c for i, c in enumerate(self.conns) if i not in self.finished]
            ready = multiprocessing.connection.wait(live, timeout=step)
            for conn in ready:
                worker = self.conns.index(conn)
                try:
                    header = json.loads(conn.recv_bytes())
                    payload = None
                    if header.get("end"):
                        self.finished.add(worker)
                    elif "error" not in header:
                        payload = conn.recv_bytes()
                except (EOFError, ConnectionResetError, OSError):
                    self._raise_dead(worker)
                return worker, header, payload
            self._check_alive()
            waited += step
            if timeout is not None and waited >= timeout:
                self.shutdown()
                raise RuntimeError(
                    f"DataLoader timed out after {timeout} s waiting for a batch from its workers"
                )

    def _check_alive(self):
        for worker, proc in enumerate(self.procs):
            if worker not in self.finished and not proc.is_alive():
                self._raise_dead(worker)

    def _raise_dead(self, worker):
        proc = self.procs[worker]
        proc.join(timeout=1)
        code = proc.exitcode
        self.shutdown()
        raise RuntimeError(
            f"DataLoader worker {worker} (pid {proc.pid}) exited unexpectedly with exit code "
            f"{code}" + (f" (killed by signal {-code})" if code is not None and code < 0 else "")
            + ". It may have run out of memory or crashed in native code; try num_workers=0 "
            "to see the error in the main process."
        )

    def shutdown(self):
        for conn in self.conns:
            try:
                conn.send_bytes(json.dumps({"stop": True}).encode())
            except (OSError, BrokenPipeError):
                pass
        for proc in self.procs:
            proc.join(timeout=2)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=2)
        for conn in self.conns:
            conn.close()
        self.conns, self.procs = [], []
