"""Measurements that need a process of their own: the training-step worker, import time in
a fresh interpreter, and the installed size of a framework with its required dependencies.

The worker (``python bench/measure.py worker FRAMEWORK WORKLOAD``) imports one framework,
builds one workload, runs its first step, and then answers commands from its parent, one
JSON object per line on stdin and stdout (no pickle):

    {"op": "run", "seconds": 1.0, "min_steps": 2}  ->  {"steps", "seconds", "cpu_seconds", "loss"}
    {"op": "close"}                                ->  {"maxrss_mib"}, then it exits

Its first line is ``{"ready": true, "import_s", "build_s", "first_step_s", "loss0", "version"}``
or ``{"error": "..."}``. Anything the framework prints goes to stderr: the protocol has the
original stdout to itself. Thread counts come from the environment the parent sets
(:func:`thread_env`) before the framework is imported.
"""

import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# framework -> (module imported to use it, distribution whose size counts)
FRAMEWORKS = {"ember": ("ember", "ember"), "torch": ("torch", "torch"), "jax": ("jax", "jax")}


def is_installed(framework):
    return importlib.util.find_spec(FRAMEWORKS[framework][0]) is not None


def thread_env(threads, base=None):
    """A copy of ``base`` (default: os.environ) that holds every framework to ``threads``
    threads: OpenMP/MKL/OpenBLAS pools (ember's NumPy, PyTorch) and XLA's CPU client."""
    env = dict(os.environ if base is None else base)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    eigen = "true" if threads > 1 else "false"
    env["XLA_FLAGS"] = (f"--xla_cpu_multi_thread_eigen={eigen} "
                        f"intra_op_parallelism_threads={threads}")
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ---- worker --------------------------------------------------------------------------------

def _maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed_steps(step, to_float, seconds, min_steps):
    """Run steps until ``seconds`` have passed and at least ``min_steps`` ran; the clock stops
    after the last loss is read, so asynchronous frameworks are charged for all their work."""
    cpu0, start = _cpu_seconds(), time.perf_counter()
    steps = 0
    while True:
        loss = step()
        steps += 1
        if steps >= min_steps and time.perf_counter() - start >= seconds:
            break
    value = to_float(loss)
    return {"steps": steps, "seconds": time.perf_counter() - start,
            "cpu_seconds": _cpu_seconds() - cpu0, "loss": value}


def worker(framework, workload, threads, out):
    start = time.perf_counter()
    # The framework first: ember must see NumPy unimported to tune OpenBLAS (ember/_env.py).
    module = importlib.import_module(FRAMEWORKS[framework][0])
    fw = importlib.import_module(f"bench.workloads.{framework}_w")
    from bench.workloads import common

    import_s = time.perf_counter() - start
    fw.setup(threads)
    start = time.perf_counter()
    step = fw.make_step(workload, common.initial_state(workload), common.make_batch(workload))
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    loss0 = fw.to_float(step())
    first_step_s = time.perf_counter() - start
    _send(out, {"ready": True, "import_s": import_s, "build_s": build_s,
                "first_step_s": first_step_s, "loss0": loss0,
                "version": getattr(module, "__version__", "?")})
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["op"] == "run":
            _send(out, _timed_steps(step, fw.to_float, msg["seconds"], msg.get("min_steps", 1)))
        elif msg["op"] == "close":
            _send(out, {"maxrss_mib": _maxrss_mib()})
            return
        else:
            _send(out, {"error": f"unknown op {msg['op']!r}"})


def _send(out, obj):
    out.write(json.dumps(obj) + "\n")
    out.flush()


def _worker_main(framework, workload, threads):
    # Keep the protocol on a private copy of stdout; fd 1 now points at stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        worker(framework, workload, threads, out)
    except BaseException:
        _send(out, {"error": traceback.format_exc()})
        raise SystemExit(1)


class Worker:
    """The parent's handle on one worker process (one framework x workload x thread count)."""

    def __init__(self, framework, workload, threads, log):
        self.name = f"{framework}/{workload}"
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "worker", framework, workload,
             str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT,
            env=thread_env(threads),
        )
        self.info = self._receive()

    def _receive(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name}: worker exited (code {self.proc.wait()}) without "
                               "answering; see its stderr")
        msg = json.loads(line)
        if "error" in msg:
            raise RuntimeError(f"{self.name}: worker failed:\n{msg['error']}")
        return msg

    def request(self, **msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return self._receive()

    def run(self, seconds, min_steps=2):
        return self.request(op="run", seconds=seconds, min_steps=min_steps)

    def close(self):
        """Stop the worker; returns its peak resident memory in MiB."""
        try:
            return self.request(op="close")["maxrss_mib"]
        finally:
            self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- import time ---------------------------------------------------------------------------

_IMPORT_CODE = ("import time; t = time.perf_counter(); c = time.process_time(); import {mod}; "
                "print(time.perf_counter() - t, time.process_time() - c)")


def import_seconds(framework, threads=2):
    """``(wall, cpu)`` seconds to import the framework in a fresh interpreter (one sample).
    The CPU time is what the import costs when it has a core to itself; on a loaded machine
    the wall time also counts waiting for one."""
    mod = FRAMEWORKS[framework][0]
    if mod == "jax":
        mod = "jax, jax.numpy"
    result = subprocess.run([sys.executable, "-c", _IMPORT_CODE.format(mod=mod)], cwd=ROOT,
                            env=thread_env(threads), capture_output=True, text=True, check=True)
    wall, cpu = result.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def ensure_bytecode():
    """Compile ember's sources to ``__pycache__`` as ``pip install`` does for a wheel.

    NOTE: an editable checkout run with PYTHONDONTWRITEBYTECODE=1 (this project's machines set
    it) never gets bytecode, so every import recompiles all of ember's modules: 0.30 s CPU
    against 0.16 s with bytecode (NumPy alone 0.13 s; medians of 9 fresh processes). PyTorch,
    NumPy and JAX come from wheels, compiled at install; timing ember without its bytecode
    would time the compiler, not the import."""
    import compileall  # noqa: PLC0415

    compileall.compile_dir(os.path.join(ROOT, "ember"), quiet=1)


def import_times(frameworks, repeats=5):
    """Median fresh-process ``(wall, cpu)`` import seconds per framework, sampled
    A B C A B C ..."""
    if "ember" in frameworks:
        ensure_bytecode()
    samples = {fw: [] for fw in frameworks}
    for _ in range(repeats):
        for fw in frameworks:
            samples[fw].append(import_seconds(fw))
    return {fw: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
            for fw, v in samples.items()}


# ---- installed size ------------------------------------------------------------------------

def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _required(requirements):
    """Names of the unconditional requirements (markers are evaluated for this interpreter;
    requirements that only come with an extra are left out)."""
    names = []
    for req in requirements or ():
        spec, _, marker = req.partition(";")
        if marker.strip():
            if "extra" in marker:
                continue
            try:
                from packaging.markers import Marker
                if not Marker(marker.strip()).evaluate():
                    continue
            except ImportError:
                pass
        names.append(re.split(r"[\s\[<>=!~;(]", spec.strip(), maxsplit=1)[0])
    return names


def _tree_bytes(path):
    total = 0
    for folder, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total


def _source_checkout(dist):
    """For a distribution used from a source checkout (an editable install, or metadata in
    the source tree), recognised by a pyproject.toml beside the package folder: (bytes of
    the package folders, the requirements written in pyproject.toml), else None. The
    metadata of such an install may be older than the source."""
    size, requires, found = 0, dist.requires, False
    top = (dist.read_text("top_level.txt") or dist.metadata["Name"]).split()
    for name in top:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        folder = list(spec.submodule_search_locations)[0]
        pyproject = os.path.join(os.path.dirname(folder), "pyproject.toml")
        if not os.path.exists(pyproject):
            continue
        import tomllib

        found = True
        size += _tree_bytes(folder)
        with open(pyproject, "rb") as f:
            requires = tomllib.load(f).get("project", {}).get("dependencies", requires)
    return (size, requires) if found else None


def installed_size(dist_name):
    """``(bytes, {distribution: bytes}, [required but not installed])`` for a distribution
    and, recursively, its required dependencies, summing the files each one installed.
    An editable install counts its source package folders without ``__pycache__``."""
    sizes, missing, todo = {}, [], [dist_name]
    while todo:
        name = todo.pop()
        if _norm(name) in sizes or name in missing:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
            continue
        editable = _source_checkout(dist)
        if editable is not None:
            size, requires = editable
        else:
            size, requires = 0, dist.requires
            for f in dist.files or ():
                try:
                    size += os.path.getsize(f.locate())
                except OSError:
                    pass
        sizes[_norm(name)] = size
        todo.extend(_required(requires))
    return sum(sizes.values()), sizes, missing


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "worker":
        sys.path.insert(0, ROOT)
        _worker_main(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        raise SystemExit("usage: measure.py worker FRAMEWORK WORKLOAD THREADS")
