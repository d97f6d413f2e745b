"""Micro-benchmark: ember's conv2d / max_pool2d (forward + backward) against PyTorch eager on the
LeNet shapes of workload W2 (batch 64, 1x28x28; conv 1->16 3x3 pad 1, relu, maxpool 2,
conv 16->32 3x3 pad 1, relu, maxpool 2, flatten, linear 1568->128, relu, linear 128->10) and
the convs of W3's residual blocks (batch 32, 32 -> 32 channels, 32x32, 3x3 pad 1).

    python bench/conv_micro.py [--threads 2] [--repeats 5] [--cpu-time] [--im2col]
                               [--only conv,pool,relu,lenet]

``--threads`` sets PyTorch's threads, ember's (``ember.set_num_threads``: the batch of a conv or
pool is split over that many threads) and OpenBLAS's (OPENBLAS_NUM_THREADS, which must be set
before NumPy loads, so it is read from the command line first). ``--cpu-time`` times by the
process's CPU time instead of the wall clock: on a shared machine it is steadier for one
thread, but it counts every thread's time, so it means nothing for ratios at 2 threads.
``--im2col`` adds a column for ember with its stride-1 'same' conv path switched off.
Each case runs ember and PyTorch interleaved (A B A B ...) in one process and prints the median
time per call and the ratio ember / torch (below 1 means ember is faster). The loss of the
full step is a fixed random weighting of the logits, so no loss op is needed.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _timing  # noqa: E402


def _early_threads(argv):
    """--threads N from the command line, before NumPy (and OpenBLAS) load."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "2"


os.environ.setdefault("OPENBLAS_NUM_THREADS", _early_threads(sys.argv[1:]))
_timing.setup_env()  # OPENBLAS_CORETYPE before NumPy loads (PERF-NOTES.md)

import numpy  # noqa: E402
import torch  # noqa: E402

import ember  # noqa: E402

_ARGS = argparse.Namespace(repeats=5, min_time=0.2, cpu_time=False, im2col=False)


def _cpu_interleaved(candidates, repeats, min_time):
    """_timing.interleaved, timed by process CPU time."""
    samples = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            for _ in range(3):
                fn()
            calls, start = 0, time.process_time()
            while True:
                fn()
                calls += 1
                elapsed = time.process_time() - start
                if elapsed >= min_time:
                    break
            samples[name].append(elapsed / calls)
    return {name: statistics.median(v) for name, v in samples.items()}


def _im2col_only(fn):
    """``fn`` with ember's stride-1 'same' conv path switched off (the general im2col path)."""
    from ember.ops import conv as conv_ops  # noqa: PLC0415

    def run():
        saved = conv_ops._same
        conv_ops._same = lambda g: False
        try:
            return fn()
        finally:
            conv_ops._same = saved

    return run


def _race(name, e_fn, t_fn):
    """Interleaved medians of ember and torch; prints both and their ratio."""
    candidates = {"ember": e_fn, "torch": t_fn}
    if _ARGS.im2col:
        candidates["im2col"] = _im2col_only(e_fn)
    timer = _cpu_interleaved if _ARGS.cpu_time else _timing.interleaved
    times = timer(candidates, _ARGS.repeats, _ARGS.min_time)
    e, t = times["ember"], times["torch"]
    extra = ""
    if _ARGS.im2col:
        i = times["im2col"]
        extra = f"   (im2col path {i * 1e3:7.2f} ms, ratio {i / t:5.2f})"
    print(f"{name:<34} ember {e * 1e3:7.2f} ms   torch {t * 1e3:7.2f} ms   ratio {e / t:5.2f}"
          + extra)


def _pair(shape, requires_grad, rng):
    a = rng.standard_normal(shape).astype(numpy.float32) * 0.1
    return (ember.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def _conv_case(n, cin, cout, hw, input_grad, rng):
    ex, tx = _pair((n, cin, hw, hw), input_grad, rng)
    ew, tw = _pair((cout, cin, 3, 3), True, rng)
    eb, tb = _pair((cout,), True, rng)
    g = rng.standard_normal((n, cout, hw, hw)).astype(numpy.float32)
    eg, tg = ember.tensor(g), torch.tensor(g)
    e_in = [t for t in (ex, ew, eb) if t.requires_grad]
    t_in = [t for t in (tx, tw, tb) if t.requires_grad]

    def e_step():
        y = ember.conv2d(ex, ew, eb, padding=1)
        ember.autograd.grad(y, e_in, eg)

    def t_step():
        y = torch.nn.functional.conv2d(tx, tw, tb, padding=1)
        torch.autograd.grad(y, t_in, tg)

    name = f"conv2d {cin}->{cout} {hw}x{hw} fwd+bwd"
    _race(name, e_step, t_step)
    with ember.no_grad(), torch.no_grad():
        _race(f"conv2d {cin}->{cout} {hw}x{hw} fwd", lambda: ember.conv2d(ex, ew, eb, padding=1),
              lambda: torch.nn.functional.conv2d(tx, tw, tb, padding=1))


def _pool_case(n, c, hw, rng):
    ex, tx = _pair((n, c, hw, hw), True, rng)
    g = rng.standard_normal((n, c, hw // 2, hw // 2)).astype(numpy.float32)
    eg, tg = ember.tensor(g), torch.tensor(g)

    def e_step():
        ember.autograd.grad(ember.max_pool2d(ex, 2), [ex], eg)

    def t_step():
        torch.autograd.grad(torch.nn.functional.max_pool2d(tx, 2), [tx], tg)

    _race(f"max_pool2d {c}x{hw}x{hw} fwd+bwd", e_step, t_step)


def _relu_case(shape, rng):
    """relu forward + backward (warm arrays: in a training step they are colder, so this
    understates what the backward costs there; see ember/ops/activation.py's NOTE)."""
    ex, tx = _pair(shape, True, rng)
    g = rng.standard_normal(shape).astype(numpy.float32)
    eg, tg = ember.tensor(g), torch.tensor(g)

    def e_step():
        ember.autograd.grad(ember.relu(ex), [ex], eg)

    def t_step():
        torch.autograd.grad(torch.relu(tx), [tx], tg)

    _race(f"relu {'x'.join(map(str, shape))} fwd+bwd", e_step, t_step)


def _lenet_case(rng):
    shapes = [(16, 1, 3, 3), (16,), (32, 16, 3, 3), (32,), (128, 1568), (128,), (10, 128), (10,)]
    pairs = [_pair(s, True, rng) for s in shapes]
    ep, tp = [p[0] for p in pairs], [p[1] for p in pairs]
    ex, tx = _pair((64, 1, 28, 28), False, rng)
    g = rng.standard_normal((64, 10)).astype(numpy.float32)
    eg, tg = ember.tensor(g), torch.tensor(g)

    def e_step():
        w1, b1, w2, b2, w3, b3, w4, b4 = ep
        h = ember.max_pool2d(ember.relu(ember.conv2d(ex, w1, b1, padding=1)), 2)
        h = ember.max_pool2d(ember.relu(ember.conv2d(h, w2, b2, padding=1)), 2)
        h = ember.relu(h.reshape(64, -1) @ w3.permute(1, 0) + b3)
        out = h @ w4.permute(1, 0) + b4
        ember.autograd.grad(out, ep, eg)

    def t_step():
        F = torch.nn.functional
        w1, b1, w2, b2, w3, b3, w4, b4 = tp
        h = F.max_pool2d(torch.relu(F.conv2d(tx, w1, b1, padding=1)), 2)
        h = F.max_pool2d(torch.relu(F.conv2d(h, w2, b2, padding=1)), 2)
        h = torch.relu(h.reshape(64, -1) @ w3.T + b3)
        out = h @ w4.T + b4
        torch.autograd.grad(out, tp, tg)

    _race("LeNet step (no loss op) b=64", e_step, t_step)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.2)
    parser.add_argument("--cpu-time", action="store_true",
                        help="time by process CPU time (steadier on a shared machine; 1 thread)")
    parser.add_argument("--im2col", action="store_true",
                        help="also time ember with its 'same' conv path off (before/after)")
    parser.add_argument("--only", default="conv,pool,relu,lenet",
                        help="comma-separated cases to run (conv, pool, relu, lenet)")
    args = parser.parse_args(namespace=_ARGS)
    torch.set_num_threads(args.threads)
    ember.set_num_threads(args.threads)  # ember's split kernels and OpenBLAS, like torch's
    rng = numpy.random.default_rng(0)
    print(f"{_timing.machine_line()}; torch threads {torch.get_num_threads()}, "
          f"ember threads {ember.get_num_threads()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"clock {'process CPU time' if args.cpu_time else 'wall'}")
    only = set(args.only.split(","))
    if "conv" in only:
        _conv_case(64, 1, 16, 28, False, rng)
        _conv_case(64, 16, 32, 14, True, rng)
        _conv_case(32, 32, 32, 32, True, rng)  # W3's residual blocks
    if "pool" in only:
        _pool_case(64, 16, 28, rng)
        _pool_case(64, 32, 14, rng)
    if "relu" in only:
        _relu_case((64, 16, 28, 28), rng)  # W2
        _relu_case((64, 32, 14, 14), rng)
        _relu_case((32, 32, 32, 32), rng)  # W3
    if "lenet" in only:
        _lenet_case(rng)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
