"""Timing helpers shared by the bench scripts: interleaved repeats, medians, machine facts."""

import os
import platform
import statistics
import sys
import time


def setup_env():
    """Environment settings that must precede the first numpy import (see PERF-NOTES.md)."""
    os.environ.setdefault("OPENBLAS_CORETYPE", "SkylakeX")


def early_threads(argv=None, default="2"):
    """The value of ``--threads N`` on the command line, read before NumPy loads (OpenBLAS
    takes its thread count from the environment when it starts)."""
    argv = sys.argv if argv is None else argv
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return default


def per_call_cpu_seconds(fn, min_time=0.2):
    """Process CPU seconds per call of ``fn`` (at least one call after two warm-up calls).
    Steadier than wall time on a shared machine, but it counts every thread's time, so it
    only compares like with like at one thread."""
    for _ in range(2):
        fn()
    calls, start = 0, time.process_time()
    while calls == 0 or time.process_time() - start < min_time:
        fn()
        calls += 1
    return (time.process_time() - start) / calls


def per_call_seconds(fn, min_time=0.2, max_calls=100000):
    """Seconds per call of ``fn`` after a warm-up, timed over at least ``min_time``."""
    for _ in range(3):
        fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time or calls >= max_calls:
            return elapsed / calls


def interleaved(candidates, repeats=5, min_time=0.2, clock="wall"):
    """Median seconds per call for each named callable, run A B A B ... so drift hits all;
    ``clock="cpu"`` times process CPU time (see ``per_call_cpu_seconds``)."""
    timer = per_call_cpu_seconds if clock == "cpu" else per_call_seconds
    samples = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            samples[name].append(timer(fn, min_time))
    return {name: statistics.median(values) for name, values in samples.items()}


def machine_line():
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, load average {load:.2f}")


def write_section(path, title, body):
    """Replace (or append) the '## title' section of a markdown file, keeping the rest; the
    file is replaced atomically."""
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    marker = f"## {title}\n"
    start = text.find(marker)
    section = marker + "\n" + body.rstrip("\n") + "\n\n"
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(marker))
        text = text[:start] + section + (text[end + 1:] if end != -1 else "")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text.rstrip("\n") + "\n")
    os.replace(tmp, path)


def add_timing_args(parser, threads=2, repeats=5, min_time=0.2):
    """The options every micro-benchmark takes: --threads, --repeats, --min-time, --clock."""
    parser.add_argument("--threads", type=int, default=threads)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--min-time", type=float, default=min_time, help="seconds per sample")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or process CPU time (meaningful with --threads 1)")
    return parser
