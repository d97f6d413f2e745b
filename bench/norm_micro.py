"""Micro-benchmark: ember's layer_norm and batch_norm (forward, forward + backward) against
PyTorch eager on the shapes of workloads W5 and W3 and two larger layer_norm cases.

    python bench/norm_micro.py [--threads 1] [--repeats 5] [--min-time 0.2] [--only ln|bn]
                               [--clock cpu]

``--threads`` sets PyTorch's threads and OpenBLAS's (read before NumPy loads). Each case runs
ember and PyTorch interleaved (A B A B ...) in one process and prints the median time per call
and the ratio ember / torch (below 1: ember is faster). The backward is seeded with a fixed
random gradient, so no loss op is timed. ``--clock cpu`` times process CPU time instead of the
wall clock (with ``--threads 1``: steadier on a shared machine, where other processes take
turns on the cores) and reports the median of the repeats.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _timing  # noqa: E402


os.environ.setdefault("OPENBLAS_NUM_THREADS", _timing.early_threads(default="1"))
_timing.setup_env()

import numpy  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as TF  # noqa: E402

import ember  # noqa: E402
from ember.nn import functional as F  # noqa: E402


def _pair(shape, fn_e, fn_t, params, backward):
    """Callables for ember and torch: fn(x, *params) forward, optionally backward."""
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal(shape).astype(numpy.float32)
    g = rng.standard_normal(shape).astype(numpy.float32)
    ps = [rng.uniform(0.5, 1.5, p).astype(numpy.float32) for p in params]
    ex = ember.tensor(x, requires_grad=backward)
    eps_ = [ember.tensor(p, requires_grad=backward) for p in ps]
    eg = ember.tensor(g)
    tx = torch.tensor(x, requires_grad=backward)
    tps = [torch.tensor(p, requires_grad=backward) for p in ps]
    tg = torch.tensor(g)

    if backward:
        def run_e():
            ex.grad = None
            for p in eps_:
                p.grad = None
            fn_e(ex, *eps_).backward(eg)

        def run_t():
            tx.grad = None
            for p in tps:
                p.grad = None
            fn_t(tx, *tps).backward(tg)
    else:
        def run_e():
            with ember.no_grad():
                fn_e(ex, *eps_)

        def run_t():
            with torch.no_grad():
                fn_t(tx, *tps)
    return run_e, run_t


def _cases(only):
    out = []
    if only in (None, "ln"):
        # W5's shape, and rows of 256 and 768 (BERT-base width) over 1 MB, where the input
        # gradient runs in row chunks (ember/ops/norm.py, NOTE at _ROW_CHUNK_BYTES).
        for shape in [(16, 64, 128), (16, 128, 256), (8, 256, 768)]:
            d = shape[-1]
            for bwd in (False, True):
                out.append((f"layer_norm {shape} {'fwd+bwd' if bwd else 'fwd'}", shape,
                            lambda x, w, b, d=d: F.layer_norm(x, (d,), w, b),
                            lambda x, w, b, d=d: TF.layer_norm(x, (d,), w, b), [d, d], bwd))
    if only in (None, "bn"):
        for shape in [(32, 32, 32, 32), (32, 64, 16, 16)]:
            c = shape[1]
            for bwd in (False, True):
                out.append((f"batch_norm train {shape} {'fwd+bwd' if bwd else 'fwd'}", shape,
                            lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                            lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True),
                            [c, c], bwd))
            rm = numpy.zeros(c, numpy.float32) + 0.1
            rv = numpy.ones(c, numpy.float32) * 1.3
            erm, erv = ember.tensor(rm), ember.tensor(rv)
            trm, trv = torch.tensor(rm), torch.tensor(rv)
            out.append((f"batch_norm eval {shape} fwd", shape,
                        lambda x, w, b, m=erm, v=erv: F.batch_norm(x, m, v, w, b),
                        lambda x, w, b, m=trm, v=trv: TF.batch_norm(x, m, v, w, b),
                        [c, c], False))
    return out


def main():
    ap = argparse.ArgumentParser()
    _timing.add_timing_args(ap, threads=1)
    ap.add_argument("--only", choices=["ln", "bn"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ember.set_num_threads(args.threads)  # ember's pool and OpenBLAS, like torch's
    print(_timing.machine_line(), f"| threads {args.threads} | clock {args.clock}")
    for name, shape, fe, ft, params, bwd in _cases(args.only):
        run_e, run_t = _pair(shape, fe, ft, params, bwd)
        r = _timing.interleaved({"ember": run_e, "torch": run_t}, args.repeats, args.min_time,
                                args.clock)
        print(f"{name:48s} ember {r['ember'] * 1e3:8.3f} ms  torch {r['torch'] * 1e3:8.3f} ms"
              f"  ratio {r['ember'] / r['torch']:5.2f}", flush=True)
    print("load average at end:", f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
