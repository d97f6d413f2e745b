"""Micro-benchmark: the matrix products of the training workloads in ember (``gemm.matmul``:
its own AVX-512 kernel for float32 where built, else the OpenBLAS bundled with NumPy's wheel,
split over ember's threads), in NumPy itself (that OpenBLAS) and in PyTorch (MKL), on the same
arrays.

    python bench/gemm_micro.py [--threads 1] [--repeats 7] [--clock cpu]

This is the floor under ember's GEMM-bound steps (W1 is ~70% GEMM): a ratio above 1 here is
time ember cannot win back in Python. Each product is timed in the layouts the workloads use:
the forward ``x @ W.T`` (weight stored out x in, as in PyTorch), the input gradient
``g @ W`` and the weight gradient ``g.T @ x``. ``--threads`` sets ember's, OpenBLAS's and
PyTorch's thread counts (before NumPy loads); ``--clock cpu`` times process CPU time, steadier
on a shared machine but only meaningful with one thread. With more than one thread the three
libraries' idle workers spin in one process and take each other's cores, so compare at one
thread (bench/run.py compares whole steps in separate processes).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _timing  # noqa: E402


if "numpy" not in sys.modules:  # run as a script: set BLAS up before NumPy loads
    _timing.setup_env()
    os.environ["OPENBLAS_NUM_THREADS"] = _timing.early_threads(default="1")

import numpy  # noqa: E402
import torch  # noqa: E402

import ember  # noqa: E402
from ember.backend import gemm, threads  # noqa: E402

# (label, rows of x, in features, out features): the Linear layers of W1, the LSTM step and
# input projection of W4, the attention projection and feed-forward layers of W5 (batch 16 x
# 64 tokens).
SHAPES = [
    ("W1 linear 784->512", 128, 784, 512),
    ("W1 linear 512->512", 128, 512, 512),
    ("W4 LSTM step 128->512", 32, 128, 512),
    ("W4 input projection 128->512", 2048, 128, 512),
    ("W5 q/k/v projection 128->384", 1024, 128, 384),
    ("W5 feed-forward 128->512", 1024, 128, 512),
    ("W5 feed-forward 512->128", 1024, 512, 128),
]


def _products(mm, x, w, g, w_t):
    """The three products of a Linear layer's step through ``mm`` (and the forward with the
    weight stored transposed, as ember's recurrences keep it)."""
    return {
        "forward x @ W.T": lambda: mm(x, w.T),
        "forward x @ Wt (W.T stored contiguous)": lambda: mm(x, w_t),
        "input grad g @ W": lambda: mm(g, w),
        "weight grad g.T @ x": lambda: mm(g.T, x),
    }


def _openblas_matmul(a, b, count):
    """NumPy's own product on ``count`` OpenBLAS threads (ember's products leave OpenBLAS on
    one thread, as its blocks run on ember's pool; set back after the call)."""
    fns = threads.openblas_threads()
    if fns is None:
        return numpy.matmul(a, b)
    fns[1](count)
    try:
        return numpy.matmul(a, b)
    finally:
        fns[1](1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _timing.add_timing_args(parser, threads=1, repeats=7, min_time=0.1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    ember.set_num_threads(args.threads)
    gemm.native_kernels()
    rng = numpy.random.default_rng(0)
    print(f"# {_timing.machine_line()}; NumPy {numpy.__version__}, PyTorch {torch.__version__}, "
          f"{args.threads} thread(s), {args.clock} clock, ember's own float32 kernel: "
          f"{'yes' if gemm._own(numpy.dtype(numpy.float32)) else 'no'}")
    print("| product | ember ms | NumPy ms | PyTorch ms | ember / PyTorch | NumPy / PyTorch |")
    print("|---|---|---|---|---|---|")
    results = []
    for label, rows, fan_in, fan_out in SHAPES:
        x = rng.standard_normal((rows, fan_in)).astype(numpy.float32)
        w = rng.standard_normal((fan_out, fan_in)).astype(numpy.float32)
        g = rng.standard_normal((rows, fan_out)).astype(numpy.float32)
        w_t = numpy.ascontiguousarray(w.T)
        ours = _products(gemm.matmul, x, w, g, w_t)
        blas = _products(lambda a, b: _openblas_matmul(a, b, args.threads), x, w, g, w_t)
        theirs = _products(torch.mm, torch.from_numpy(x), torch.from_numpy(w),
                           torch.from_numpy(g), torch.from_numpy(w_t))
        for name in ours:
            times = _timing.interleaved(
                {"ember": ours[name], "numpy": blas[name], "torch": theirs[name]},
                args.repeats, args.min_time, args.clock)
            e, a, b = (times[k] * 1e3 for k in ("ember", "numpy", "torch"))
            results.append((f"{label}: {name}", e, a, b))
            print(f"| {label}: {name} | {e:.3f} | {a:.3f} | {b:.3f} | {e / b:.2f} | {a / b:.2f} |",
                  flush=True)
    return results


if __name__ == "__main__":
    main()
