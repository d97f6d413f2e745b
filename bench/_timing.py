"""Timing helpers shared by the bench scripts: interleaved repeats, medians, machine facts."""

import os
import platform
import statistics
import time


def setup_env():
    """Environment settings that must precede the first numpy import (see PERF-NOTES.md)."""
    os.environ.setdefault("OPENBLAS_CORETYPE", "SkylakeX")


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


def interleaved(candidates, repeats=5, min_time=0.2):
    """Median seconds per call for each named callable, run A B A B ... so drift hits all."""
    samples = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            samples[name].append(per_call_seconds(fn, min_time))
    return {name: statistics.median(values) for name, values in samples.items()}


def machine_line():
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, load average {load:.2f}")
