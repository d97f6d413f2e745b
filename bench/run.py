"""Training throughput, peak memory, import time and installed size: ember against PyTorch
eager and JAX (jit of the whole step) on the five workloads of bench/workloads/common.py.

    python bench/run.py [--workloads W1,W3] [--repeats 3] [--threads 2,1] [--seconds 1.0]
                        [--frameworks ember,torch,jax] [--write docs/benchmarks.md | --no-write]

How it measures:

- **One process per framework x workload x thread count.** Peak resident memory
  (``ru_maxrss``) is a property of a process, and importing PyTorch alone costs ~200 MiB, so
  each framework's workload runs in a fresh worker (bench/measure.py) that imports nothing
  else. The worker builds the model from the shared NumPy weights and batch, runs the first
  step (JAX compiles here), and then waits for orders.
- **Interleaved timing.** The parent keeps the workers of one workload alive together and
  asks each in turn for a timed chunk of steps (``--seconds`` long), in the order A B C,
  then C B A, and so on for ``--repeats`` rounds after one warm-up round, so that load from
  other processes on this shared machine lands on all frameworks alike. It reports the
  median samples/s. Orders and answers are one JSON object per line over the worker's
  stdin/stdout; nothing is pickled.
- **Threads.** Each thread count in ``--threads`` is a separate set of workers with
  OMP/MKL/OpenBLAS threads, ``torch.set_num_threads`` and XLA's intra-op threads set to it.
  Two-thread figures collapse when another process holds a core (PERF-NOTES.md), so the
  default measures 2 and 1 threads, and every row records the 1-minute load average and the
  CPU time each framework got per second of wall time.
- **Import time** is the median over fresh interpreters, frameworks alternating; **installed
  size** sums the files of the framework's distribution and of its required dependencies,
  recursively (importlib.metadata; extras are not counted).

Frameworks that are not installed are reported as missing. The table goes to stdout and, with
``--write`` (default docs/benchmarks.md), replaces the "Training workloads" section there
(``--section`` names another, for a partial rerun); other sections (the eager overhead
table of bench/overhead.py, the profile notes) are kept.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import _timing, measure  # noqa: E402
from bench.workloads import common  # noqa: E402

NAMES = {"ember": "ember", "torch": "PyTorch", "jax": "JAX"}
# ember samples/s as a fraction of PyTorch eager's, from issue 7
SPEED_TARGET = {"W1": 1.0, "W2": 1.0, "W3": 0.8, "W4": 0.8, "W5": 1.0}
MEMORY_TARGET = 0.5      # ember peak RSS / PyTorch's
IMPORT_TARGET_S = 0.25
SIZE_TARGET_MB = 100
SECTION = "Training workloads"


def _load():
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def measure_workload(workload, frameworks, threads, repeats, seconds, log):
    """Interleaved timing of one workload; returns {framework: result dict}."""
    results, workers = {}, {}
    load_start = _load()
    for fw in frameworks:
        try:
            workers[fw] = measure.Worker(fw, workload, threads, log)
        except RuntimeError as exc:
            results[fw] = {"error": str(exc).splitlines()[0]}
            print(f"  {fw}: {exc}", file=sys.stderr)
    samples = {fw: [] for fw in workers}
    cpu = {fw: [] for fw in workers}
    batch = common.batch_size(workload)
    order = list(workers)
    for round_ in range(repeats + 1):           # round 0 is the warm-up
        for fw in order if round_ % 2 == 0 else order[::-1]:
            if fw not in workers:
                continue
            try:
                r = workers[fw].run(seconds)
            except RuntimeError as exc:
                results[fw] = {"error": str(exc).splitlines()[0]}
                print(f"  {fw}: {exc}", file=sys.stderr)
                workers.pop(fw).kill()
                continue
            if round_ > 0:
                samples[fw].append(r["steps"] * batch / r["seconds"])
                cpu[fw].append(r["cpu_seconds"] / r["seconds"])
    for fw, w in workers.items():
        results[fw] = {
            "samples_per_s": statistics.median(samples[fw]),
            "samples": samples[fw],
            "cpu_per_wall": statistics.median(cpu[fw]),
            "peak_mib": w.close(),
            "first_step_s": w.info["first_step_s"],
            "loss0": w.info["loss0"],
            "version": w.info["version"],
        }
    for fw in frameworks:
        results.setdefault(fw, {"error": "not run"})
    results["_load"] = (load_start, _load())
    return results


def _rate(x):
    if x is None:
        return "—"
    return f"{x / 1000:.1f}k" if x >= 10000 else (f"{x / 1000:.2f}k" if x >= 1000 else f"{x:.0f}")


def _get(res, fw, key):
    r = res.get(fw) or {}
    return r.get(key)


def _ratio(a, b):
    return a / b if a is not None and b else None


def _fmt_ratio(x, target=None):
    if x is None:
        return "—"
    text = f"{x:.2f}x"
    if target is not None:
        text += " ✓" if x >= target else " ✗"
    return text


def workload_table(results, frameworks, threads):
    """Markdown table for one thread count."""
    head = ["workload", "batch"] + [f"{NAMES[fw]} samples/s" for fw in frameworks]
    if "torch" in frameworks:
        head.append("ember / PyTorch (target)")
    if "jax" in frameworks:
        head.append("ember / JAX")
    head += [f"peak MiB {NAMES[fw]}" for fw in frameworks]
    if "torch" in frameworks:
        head.append(f"memory ember / PyTorch (≤ {MEMORY_TARGET})")
    head += ["CPU s per s (" + "/".join(NAMES[fw] for fw in frameworks) + ")", "load 1-min"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for wl, res in results.items():
        e = _get(res, "ember", "samples_per_s")
        row = [f"{wl} {common.WORKLOADS[wl][0]}", str(common.batch_size(wl))]
        for fw in frameworks:
            err = _get(res, fw, "error")
            row.append("failed" if err else _rate(_get(res, fw, "samples_per_s")))
        if "torch" in frameworks:
            row.append(_fmt_ratio(_ratio(e, _get(res, "torch", "samples_per_s")),
                                  SPEED_TARGET[wl]) + f" ({SPEED_TARGET[wl]:.1f}x)")
        if "jax" in frameworks:
            row.append(_fmt_ratio(_ratio(e, _get(res, "jax", "samples_per_s"))))
        for fw in frameworks:
            m = _get(res, fw, "peak_mib")
            row.append("—" if m is None else f"{m:.0f}")
        if "torch" in frameworks:
            mem = _ratio(_get(res, "ember", "peak_mib"), _get(res, "torch", "peak_mib"))
            row.append("—" if mem is None else f"{mem:.2f} " + ("✓" if mem <= MEMORY_TARGET
                                                                else "✗"))
        row.append("/".join("—" if _get(res, fw, "cpu_per_wall") is None
                            else f"{_get(res, fw, 'cpu_per_wall'):.1f}" for fw in frameworks))
        row.append("{:.1f}→{:.1f}".format(*res["_load"]))
        lines.append("| " + " | ".join(row) + " |")
    return f"**{threads} thread{'s' if threads > 1 else ''}**\n\n" + "\n".join(lines)


def startup_table(imports, sizes, frameworks):
    lines = ["| framework | version | import s, wall (CPU), fresh process, median | "
             "installed MB with "
             "required dependencies | dependencies counted |", "|---|---|---|---|---|"]
    for fw in frameworks:
        total, parts, missing = sizes[fw]
        deps = ", ".join(f"{k} {v / 1e6:.1f}" for k, v in sorted(parts.items(),
                                                                  key=lambda kv: -kv[1]))
        if missing:
            deps += "; not installed: " + ", ".join(missing)
        imp, imp_cpu = imports[fw]
        imp_text = f"{imp:.3f} ({imp_cpu:.3f})"
        size_text = f"{total / 1e6:.0f}"
        if fw == "ember":
            imp_text += " ✓" if imp < IMPORT_TARGET_S else f" ✗ (target < {IMPORT_TARGET_S})"
            size_text += (" ✓" if total / 1e6 < SIZE_TARGET_MB
                          else f" ✗ (target < {SIZE_TARGET_MB})")
        lines.append(f"| {NAMES[fw]} | {_version(fw)} | {imp_text} | {size_text} | {deps} |")
    return "\n".join(lines)


def _version(fw):
    import importlib.metadata

    try:
        return importlib.metadata.version(measure.FRAMEWORKS[fw][1])
    except importlib.metadata.PackageNotFoundError:
        return "?"


def machine_description():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import importlib.metadata

    numpy_version = importlib.metadata.version("numpy")
    return (f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, NumPy {numpy_version}")


def _csv(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default=",".join(common.WORKLOADS))
    parser.add_argument("--frameworks", default="ember,torch,jax")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per workload")
    parser.add_argument("--threads", default="2,1", help="thread counts, e.g. 2,1")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of a timed chunk")
    parser.add_argument("--import-repeats", type=int, default=5)
    parser.add_argument("--write", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    parser.add_argument("--section", default=SECTION,
                        help="title of the section to replace (a partial rerun can get its own)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", default=None, help="also save the raw results here")
    args = parser.parse_args(argv)

    workloads = _csv(args.workloads)
    for wl in workloads:
        if wl not in common.WORKLOADS:
            parser.error(f"unknown workload {wl!r}; choose from {','.join(common.WORKLOADS)}")
    wanted = _csv(args.frameworks)
    for fw in wanted:
        if fw not in measure.FRAMEWORKS:
            parser.error(f"unknown framework {fw!r}; choose from {','.join(measure.FRAMEWORKS)}")
    frameworks = [fw for fw in wanted if measure.is_installed(fw)]
    missing = [fw for fw in wanted if fw not in frameworks]
    if missing:
        print("missing (not installed, not measured): " + ", ".join(missing))
    thread_counts = [int(t) for t in _csv(args.threads)]
    started = datetime.datetime.now().astimezone()

    log = tempfile.TemporaryFile(mode="w+")     # the workers' stderr; shown if one fails
    tables, raw = [], {"threads": {}}
    try:
        for threads in thread_counts:
            per_workload = {}
            for wl in workloads:
                print(f"{wl} with {threads} thread(s) ...", flush=True)
                per_workload[wl] = measure_workload(wl, frameworks, threads, args.repeats,
                                                    args.seconds, log)
            raw["threads"][threads] = per_workload
            tables.append(workload_table(per_workload, frameworks, threads))
            print(tables[-1] + "\n", flush=True)
    except BaseException:
        log.seek(0)
        sys.stderr.write(log.read()[-4000:])
        raise
    imports = measure.import_times(frameworks, args.import_repeats)
    sizes = {fw: measure.installed_size(measure.FRAMEWORKS[fw][1]) for fw in frameworks}
    startup = startup_table(imports, sizes, frameworks)
    print(startup)

    header = (
        f"Measured by `python bench/run.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
        f" on {started:%Y-%m-%d %H:%M %Z}: {machine_description()}. "
        f"Versions: " + ", ".join(f"{NAMES[fw]} {_version(fw)}" for fw in frameworks)
        + (f"; missing (not installed, not measured): {', '.join(missing)}" if missing else "")
        + ".\n\nSamples/s are medians of "
        f"{args.repeats} interleaved rounds of {args.seconds:g} s after a warm-up round, "
        "one process per framework and workload (see bench/run.py). ✓/✗ compare with the "
        "targets of issue 7: ember ≥ 1.0x PyTorch eager on W1, W2, W5 and ≥ 0.8x on W3, W4; "
        "peak memory ≤ half of PyTorch's; import < 0.25 s; < 100 MB installed. 'CPU s per s' "
        "is the CPU time each framework's process got per second of wall time (2.0 = both "
        "cores); the machine is shared, so compare only within a row, and read the 1-thread "
        "table when the 2-thread one shows starved runs. Peak memory is the worker's "
        "ru_maxrss: import, data, model, optimizer state and the steps."
    )
    body = header + "\n\n" + "\n\n".join(tables) + "\n\n**Start-up and size**\n\n" + startup
    if not args.no_write:
        _timing.write_section(args.write, args.section, body)
        print(f"wrote the '{args.section}' section of {args.write}")
    if args.json:
        raw.update(imports=imports, sizes={fw: sizes[fw][0] for fw in frameworks},
                   missing=missing, machine=machine_description(), date=started.isoformat())
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)
    return raw


if __name__ == "__main__":
    main()
