"""Eager overhead: per-op time on tiny tensors (forward, and forward+backward), and one
784-512-512-10 MLP training step at batch 128, ember against PyTorch in the same run.

    python bench/overhead.py [--repeats 5] [--threads 2] [--clock cpu] [--write docs/benchmarks.md]

``--threads`` sets PyTorch's and OpenBLAS's thread counts (OpenBLAS's before NumPy loads);
``--clock cpu`` times process CPU time instead of the wall clock: with ``--threads 1`` it is
steadier on a shared machine.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import _timing  # noqa: E402

_timing.setup_env()
os.environ.setdefault("OPENBLAS_NUM_THREADS", _timing.early_threads(default="2"))

import numpy  # noqa: E402

import ember  # noqa: E402

OPS = {
    "add": lambda lib, a, b: a + b,
    "mul": lambda lib, a, b: a * b,
    "matmul": lambda lib, a, b: a @ b,
    "exp": lambda lib, a, b: a.exp(),
    "relu": lambda lib, a, b: a.relu(),
    "sum": lambda lib, a, b: a.sum(),
    "reshape": lambda lib, a, b: a.reshape(-1),
    "getitem": lambda lib, a, b: a[1:3],
}


def _op_cases(lib, tensor):
    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((4, 4)).astype(numpy.float32)
    b = rng.standard_normal((4, 4)).astype(numpy.float32)
    cases = {}
    for name, op in OPS.items():
        x, y = tensor(a), tensor(b)
        xg, yg = tensor(a).requires_grad_(), tensor(b).requires_grad_()
        cases[f"{name} fwd"] = (lambda op=op, x=x, y=y: op(lib, x, y))
        cases[f"{name} fwd+bwd"] = (lambda op=op, x=xg, y=yg: op(lib, x, y).sum().backward())
    return cases


def _mlp(lib, tensor, functional):
    """One training step of the 784-512-512-10 MLP as a user writes it in either framework:
    Linear layers, ReLU, cross-entropy, SGD with momentum; equal initial weights and data."""
    rng = numpy.random.default_rng(0)
    sizes = [784, 512, 512, 10]
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layer = lib.nn.Linear(fan_in, fan_out)
        bound = 1 / fan_in**0.5
        with lib.no_grad():
            layer.weight.copy_(tensor(rng.uniform(-bound, bound, (fan_out, fan_in)).astype("float32")))
            layer.bias.copy_(tensor(rng.uniform(-bound, bound, (fan_out,)).astype("float32")))
        layers += [layer, lib.nn.ReLU()]
    model = lib.nn.Sequential(*layers[:-1])
    opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = tensor(rng.standard_normal((128, 784)).astype("float32"))
    y = tensor(rng.integers(0, 10, 128))

    def step():
        loss = functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    _timing.add_timing_args(parser, threads=2, repeats=5, min_time=0.2)
    parser.add_argument("--write", default=None, help="markdown file to update")
    args = parser.parse_args(argv)

    import torch
    import torch.nn.functional as tF

    from ember.nn import functional as eF

    torch.set_num_threads(args.threads)
    ember.set_num_threads(args.threads)  # ember's pool and OpenBLAS, like torch's
    e_cases, t_cases = _op_cases(ember, ember.tensor), _op_cases(torch, torch.tensor)
    rows = []
    for name in e_cases:
        r = _timing.interleaved({"ember": e_cases[name], "torch": t_cases[name]},
                                args.repeats, args.min_time, args.clock)
        rows.append((name, r["ember"] * 1e6, r["torch"] * 1e6))
    mlp = _timing.interleaved(
        {"ember": _mlp(ember, ember.tensor, eF), "torch": _mlp(torch, torch.tensor, tF)},
        args.repeats, max(args.min_time, 1.0), args.clock,
    )
    lines = ["| op (4x4 float32) | ember µs | PyTorch µs | ember / PyTorch |", "|---|---|---|---|"]
    for name, e, t in rows:
        lines.append(f"| {name} | {e:.1f} | {t:.1f} | {e / t:.2f} |")
    lines.append(
        f"| MLP 784-512-512-10 step, batch 128 | {mlp['ember'] * 1e3:.2f} ms | "
        f"{mlp['torch'] * 1e3:.2f} ms | {mlp['ember'] / mlp['torch']:.2f} |"
    )
    table = "\n".join(lines)
    header = (f"Measured by `python bench/overhead.py` on {_timing.machine_line()}; "
              f"NumPy {numpy.__version__}, PyTorch {torch.__version__} with {args.threads} "
              f"threads; {args.clock} clock, medians of {args.repeats} interleaved repeats. "
              "Lower ratio is better.")
    print(header)
    print(table)
    if args.write:
        _timing.write_section(args.write, "Eager overhead", header + "\n\n" + table)


if __name__ == "__main__":
    main()
