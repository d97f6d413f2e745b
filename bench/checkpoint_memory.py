"""Memory saved by gradient checkpointing on a deep MLP.

Peak memory of one forward+backward of a 24-layer, 512-wide MLP at batch 2048, plain and with
``ember.utils.checkpoint.checkpoint_sequential`` over 4 and 8 segments. NumPy reports its
allocations to tracemalloc, so the peak counts every activation and gradient array.

    python bench/checkpoint_memory.py [--layers 24] [--width 512] [--batch 2048]
"""

import argparse
import os
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ember  # noqa: E402
from ember import nn  # noqa: E402
from ember.utils import checkpoint as ckpt  # noqa: E402


def _model(layers, width):
    ember.manual_seed(0)
    blocks = []
    for _ in range(layers):
        blocks += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*blocks)


def measure(model, x, segments):
    """(peak MiB above the baseline, seconds) of one forward+backward."""
    model.zero_grad()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    if segments:
        out = ckpt.checkpoint_sequential(model, segments, x, use_reentrant=False)
    else:
        out = model(x)
    out.sum().backward()
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak / 2**20, elapsed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--layers", type=int, default=24)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--write", default=None, help="markdown file whose section to update")
    args = p.parse_args(argv)
    model = _model(args.layers, args.width)
    x = ember.randn(args.batch, args.width, requires_grad=True)
    rows = []
    for segments in (0, 4, 8):
        peak, secs = measure(model, x, segments)
        rows.append((segments, peak, secs))
    lines = [f"{args.layers}-layer MLP, width {args.width}, batch {args.batch} (float32), one "
             "forward+backward; peak memory from tracemalloc, measured by "
             "`python bench/checkpoint_memory.py`.", "",
             "| checkpointing | peak MiB | time s |", "|---|---|---|"]
    for segments, peak, secs in rows:
        label = "none" if not segments else f"checkpoint_sequential, {segments} segments"
        lines.append(f"| {label} | {peak:.0f} | {secs:.2f} |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        from bench import _timing  # noqa: PLC0415

        _timing.write_section(args.write, "Gradient checkpointing", text)
    return rows


if __name__ == "__main__":
    main()
