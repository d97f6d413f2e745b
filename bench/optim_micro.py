"""Micro-benchmark: one optimizer step, ember against PyTorch, on the parameter sets of the
benchmark workloads (bench/workloads/common.py), with fixed random gradients.

    python bench/optim_micro.py [--threads 2] [--repeats 5] [--clock cpu] [--cases W1,W4,W5]

Cases: W1 (MLP 784-512-512-10, 6 params, 0.67M floats; SGD momentum 0.9, lr 0.01), W4 (LSTM
classifier, 7 params, 0.77M floats; Adam lr 1e-3), W5 (Transformer encoder, 27 params, 1.04M
floats; AdamW lr 1e-3, weight decay 0.01). PyTorch runs its default implementation (on CPU the
per-parameter loop). Each case runs ember and PyTorch interleaved (A B A B ...) in one process
and prints the median time per ``step()`` and the ratio ember / torch (below 1: ember faster).

``--threads`` sets ember's thread count, torch's, and OpenBLAS's (OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS, before NumPy loads). ``--clock cpu`` times process CPU time instead of
wall time: far less disturbed by other processes on a shared machine, but only meaningful with
``--threads 1`` (PERF-NOTES.md).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _timing  # noqa: E402


_timing.setup_env()  # OPENBLAS_CORETYPE before NumPy loads (PERF-NOTES.md)
if "numpy" not in sys.modules:  # run as a script; imported by a test, leave the env alone
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = \
        _timing.early_threads()

import numpy  # noqa: E402
import torch  # noqa: E402

import ember  # noqa: E402
from bench.workloads import common  # noqa: E402

CASES = {  # name -> (ember / torch optimizer class name, options)
    "W1": ("SGD", {"lr": 0.01, "momentum": 0.9}),
    "W4": ("Adam", {"lr": 1e-3}),
    "W5": ("AdamW", {"lr": 1e-3, "weight_decay": 0.01}),
}


def _interleaved(candidates, args):
    return _timing.interleaved(candidates, args.repeats, args.min_time, args.clock)


def make_optimizers(case, scale=1.0):
    """ember's and torch's optimizer over the same parameters of workload ``case`` with the
    same fixed gradients (``scale`` shrinks every dimension, for quick tests)."""
    kind, options = CASES[case]
    rng = numpy.random.default_rng(0)
    e_params, t_params = [], []
    for _, shape, *_ in common.param_specs(case):
        shape = tuple(max(1, int(d * scale)) for d in shape)
        p = rng.standard_normal(shape).astype(numpy.float32)
        g = rng.standard_normal(shape).astype(numpy.float32)
        e = ember.tensor(p.copy(), requires_grad=True)
        e.grad = ember.tensor(g.copy())
        t = torch.tensor(p.copy(), requires_grad=True)
        t.grad = torch.tensor(g.copy())
        e_params.append(e)
        t_params.append(t)
    return (getattr(ember.optim, kind)(e_params, **options),
            getattr(torch.optim, kind)(t_params, **options))


def race(case, args, scale=1.0):
    """``(ember seconds, torch seconds)`` per step of ``case``; prints one line."""
    e_opt, t_opt = make_optimizers(case, scale)
    times = _interleaved({"ember": e_opt.step, "torch": t_opt.step}, args)
    e, t = times["ember"], times["torch"]
    kind, options = CASES[case]
    label = f"{case} {kind}({', '.join(f'{k}={v}' for k, v in options.items())})"
    print(f"{label:<40} ember {e * 1e6:8.1f} us   torch {t * 1e6:8.1f} us   ratio {e / t:5.2f}")
    return e, t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _timing.add_timing_args(parser)
    parser.add_argument("--cases", default="W1,W4,W5", help="comma-separated subset of W1,W4,W5")
    parser.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    ember.set_num_threads(args.threads)
    print(f"{_timing.machine_line()}; threads ember {ember.get_num_threads()} torch "
          f"{torch.get_num_threads()}, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS')}, clock {args.clock}")
    results = {case: race(case, args, args.scale) for case in args.cases.split(",")}
    print(f"load average after: {os.getloadavg()}")
    return results


if __name__ == "__main__":
    main()
